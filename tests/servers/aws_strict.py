"""The stricter test AWS: rules real AWS applies that moto does not know, over the moto fixture.

Installed by the `moto` fixture through the request-shape contract (aws_contract.py), so every
call a client in this process makes passes here before and after moto answers it:

- **permissions**: with `caller` set to an identity policy, each call is evaluated as the IAM
  action(s) it needs (including the implicit ones: tagging on create, iam:PassRole) by the
  policy engine in iam_policy.py; a call not allowed is refused as AWS refuses it. `caller=None`
  is an administrator. The test's own set-up (`contract.paused()`) is not evaluated.
- **tags only with lambda:ListTags**: GetFunction's `Tags` are returned only to a caller allowed
  lambda:ListTags on the function (botocore's model documents it).
- **ImageUri on a Zip function** is refused by UpdateFunctionCode.
- **Lambda's ECR pull**: creating or updating an image function needs the image to exist and
  the repository policy to let lambda.amazonaws.com BatchGetImage and GetDownloadUrlForLayer;
  when it does not, Lambda adds that statement itself only if the caller may
  ecr:GetRepositoryPolicy and ecr:SetRepositoryPolicy, else the call is refused.
- **the resolved image**: Lambda resolves an image tag to its digest when the code is set;
  GetFunction answers `ResolvedImageUri` with that digest (moto makes one up).
- **iam:SimulatePrincipalPolicy** is answered by the same engine against `caller`.
- moto already returns the last version from PublishVersion when nothing changed since it was
  published (as AWS does); a self-test keeps that true.
- **S3 bucket names are global**: `foreign_buckets` are buckets of another account (moto has
  one). Their owner lets anyone read their tags and write to them (recorded in
  `foreign_writes`); a request naming `ExpectedBucketOwner` other than theirs is refused with
  403 AccessDenied, as S3 refuses it; CreateBucket of such a name is BucketAlreadyExists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.servers.iam_policy import ALLOWED, Request, decide

ACCOUNT = "123456789012"
FOREIGN_ACCOUNT = "210987654321"  # the owner of `foreign_buckets`
REGION = "eu-west-1"
LAMBDA = "lambda.amazonaws.com"
PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
DENIED_CODE = {"iam": "AccessDenied"}


def context_of(action: str, params: dict[str, Any]) -> dict[str, str]:
    """The condition keys AWS sets for the calls tagsync makes."""
    if action == "iam:PassRole":  # the service the role is passed to, set by calls_of
        return {"iam:PassedToService": str(params["PassedToService"])}
    if action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
        return {"iam:PolicyARN": str(params["PolicyArn"])}
    return {}


def _image_parts(uri: str) -> tuple[str, dict[str, str]]:
    """(repository, imageId) of an ECR image URI."""
    path = uri.split("/", 1)[1]
    if "@" in path:
        repo, digest = path.split("@", 1)
        return repo, {"imageDigest": digest}
    repo, _, tag = path.rpartition(":")
    return repo, {"imageTag": tag}


@dataclass
class StrictAws:
    caller: dict[str, Any] | None = None  # the caller's identity policy; None: an administrator
    caller_arn: str = f"arn:aws:sts::{ACCOUNT}:assumed-role/tagsync-deploy/github-actions"
    resolved: dict[tuple[str, str], str] = field(default_factory=dict)  # (function, version) -> digest
    refused: list[str] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)
    original: Callable[..., Any] | None = None
    # images pushed through the registry protocol (a docker stand-in, the CNCF registry), which
    # moto does not serve: a tag moto's ECR lacks is taken as pushed there
    images_elsewhere: bool = False
    foreign_buckets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> its tags
    foreign_writes: list[str] = field(default_factory=list)

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, service: str, operation: str, params: dict[str, Any]) -> Any:
        """A call of the fake itself: straight to moto, neither checked nor recorded."""
        import boto3

        if service not in self._clients:
            self._clients[service] = boto3.client(service)
        assert self.original is not None
        return self.original(self._clients[service], operation, params)

    @staticmethod
    def _error(client: Any, operation: str, code: str, message: str) -> Exception:
        cls = client.exceptions.from_code(code)
        return cls({"Error": {"Code": code, "Message": message},  # type: ignore[no-any-return]
                    "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)

    def permitted(self, action: str, resource: str, params: dict[str, Any] | None = None) -> bool:
        if self.caller is None:
            return True
        return decide([self.caller], Request(action, resource, context_of(action, params or {}))) == ALLOWED

    # -- the call ---------------------------------------------------------------------------------

    def call(self, client: Any, operation: str, params: dict[str, Any], calls: list[Any],
             send: Callable[[], Any], *, enforce: bool) -> Any:
        from tests.servers.aws_contract import resource_of

        service = client.meta.service_model.service_name
        caller, self.caller = self.caller, (self.caller if enforce else None)
        try:
            for c in calls if self.caller is not None else []:
                if c.action == "sts:GetCallerIdentity":
                    continue
                resource = resource_of(c, ACCOUNT, REGION)
                if not self.permitted(c.action, resource, c.params):
                    self.refused.append(f"{c.action} on {resource}")
                    raise self._error(client, operation, DENIED_CODE.get(service, "AccessDeniedException"),
                                      f"User: {self.caller_arn} is not authorized to perform: "
                                      f"{c.action} on resource: {resource} because no "
                                      "identity-based policy allows the action")
            if service == "iam" and operation == "SimulatePrincipalPolicy":
                return self._simulate(params)
            if service == "s3" and params.get("Bucket") in self.foreign_buckets:
                return self._foreign_bucket(client, operation, params)
            if service == "lambda":
                self._lambda_before(client, operation, params)
            response = send()
            if service == "lambda":
                self._lambda_after(operation, params, response)
            if service == "sts" and operation == "GetCallerIdentity" and caller is not None:
                response["Arn"] = self.caller_arn
            return response
        finally:
            self.caller = caller

    # -- Lambda's rules ---------------------------------------------------------------------------

    def _function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def _lambda_before(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        image = params.get("ImageUri") if operation == "UpdateFunctionCode" else \
            (params.get("Code") or {}).get("ImageUri") if operation == "CreateFunction" else None
        if operation == "UpdateFunctionCode" and image:
            conf = self._send("lambda", "GetFunctionConfiguration", {"FunctionName": params["FunctionName"]})
            if conf.get("PackageType", "Zip") == "Zip":
                raise self._error(client, operation, "InvalidParameterValueException",
                                  "Please don't provide ImageUri when updating a function with "
                                  "packageType Zip.")
        if image:
            self._pull(client, operation, image, params["FunctionName"])

    def _pull(self, client: Any, operation: str, image: str, function: str) -> None:
        """The image must exist, and Lambda must be allowed to pull it (or allowed to allow itself)."""
        repo, image_id = _image_parts(image)
        from botocore.exceptions import ClientError

        try:
            found = self._send("ecr", "DescribeImages", {"repositoryName": repo, "imageIds": [image_id]})
            digest: str | None = found["imageDetails"][0]["imageDigest"]
        except ClientError:
            if not self.images_elsewhere:
                raise self._error(client, operation, "InvalidParameterValueException",
                                  f"Source image {image} does not exist. Provide a valid source "
                                  "image.") from None
            digest = None
        repo_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repo}"
        try:
            text = self._send("ecr", "GetRepositoryPolicy", {"repositoryName": repo})["policyText"]
            policy = json.loads(text)
        except ClientError:
            policy = {"Version": "2012-10-17", "Statement": []}
        if not self.lambda_may_pull(policy, repo_arn, self._function_arn(function)):
            if not (self.permitted("ecr:GetRepositoryPolicy", repo_arn)
                    and self.permitted("ecr:SetRepositoryPolicy", repo_arn)):
                raise self._error(client, operation, "AccessDeniedException",
                                  "Lambda does not have permission to access the ECR image. "
                                  "Check the ECR permissions.")
            policy["Statement"] = [*policy["Statement"], {
                "Sid": "LambdaECRImageRetrievalPolicy", "Effect": "Allow",
                "Principal": {"Service": LAMBDA}, "Action": list(PULL),
                "Condition": {"StringLike": {
                    "aws:sourceArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*"}}}]
            self._send("ecr", "SetRepositoryPolicy",
                       {"repositoryName": repo, "policyText": json.dumps(policy)})
        if digest is None:
            self.resolved.pop((function, "$LATEST"), None)
        else:
            self.resolved[(function, "$LATEST")] = digest

    @staticmethod
    def lambda_may_pull(policy: dict[str, Any], repo_arn: str, function_arn: str) -> bool:
        return all(decide([policy], Request(a, repo_arn, {"aws:SourceArn": function_arn}, principal=LAMBDA))
                   == ALLOWED for a in PULL)

    def _lambda_after(self, operation: str, params: dict[str, Any], response: Any) -> None:
        name = str(params.get("FunctionName", ""))
        if operation == "PublishVersion":
            version = (name, str(response["Version"]))
            if version not in self.resolved and (name, "$LATEST") in self.resolved:
                self.resolved[version] = self.resolved[(name, "$LATEST")]
        elif operation == "DeleteFunction":
            for key in [k for k in self.resolved if k[0] == name and
                        (params.get("Qualifier") in (None, k[1]))]:
                del self.resolved[key]
        elif operation == "GetFunction":
            arn = response["Configuration"]["FunctionArn"].split(":function:")[0] + f":function:{name}"
            if "Tags" in response and not self.permitted("lambda:ListTags", arn):
                del response["Tags"]  # AWS: only for a caller allowed lambda:ListTags
            code = response.get("Code", {})
            digest = self.resolved.get((name, str(response["Configuration"]["Version"])))
            if "ImageUri" in code:
                repo_uri = code["ImageUri"].split("@")[0].rsplit(":", 1)[0]
                if digest:
                    code["ResolvedImageUri"] = f"{repo_uri}@{digest}"
                else:
                    code.pop("ResolvedImageUri", None)

    # -- S3: a bucket of that name in another account ---------------------------------------------

    def _foreign_bucket(self, client: Any, operation: str, params: dict[str, Any]) -> Any:
        name = str(params["Bucket"])
        if params.get("ExpectedBucketOwner", FOREIGN_ACCOUNT) != FOREIGN_ACCOUNT:
            raise self._error(client, operation, "AccessDenied", "Access Denied")
        if operation == "CreateBucket":
            raise self._error(client, operation, "BucketAlreadyExists", "The requested bucket name is "
                              "not available. The bucket namespace is shared by all users of the system.")
        if operation == "GetBucketTagging":
            return {"TagSet": [{"Key": k, "Value": v} for k, v in self.foreign_buckets[name].items()]}
        self.foreign_writes.append(f"{operation} {name}")
        return {}

    # -- IAM's simulator --------------------------------------------------------------------------

    def _simulate(self, params: dict[str, Any]) -> dict[str, Any]:
        context = {e["ContextKeyName"]: e["ContextKeyValues"][0] for e in params.get("ContextEntries", [])}
        policies = [self.caller] if self.caller is not None else [
            {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns", ["*"]):
                decision = decide(policies, Request(action, resource, context))
                results.append({"EvalActionName": action, "EvalResourceName": resource,
                                "EvalDecision": decision})
        return {"EvaluationResults": results, "IsTruncated": False}
