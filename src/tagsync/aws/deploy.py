"""`tagsync deploy`: ECR repository, IAM role, Lambda function, version, alias and schedule.

Deploys converge: every step reads the current state and changes only what differs from the
desired one, whatever state it finds (a first deploy, a deploy that failed halfway, a rollback).
The desired function is identified by a fingerprint of its image and settings, written into the
published version's description, so `live` ends on the version that runs the requested commit
with the requested settings, published only if no such version exists yet. `--plan` is the same
code with the writes switched off.

Everything the request could get wrong (names, tag values, schedule, `--image`, builder, config)
is checked before the first write: a refused deploy creates nothing. IAM propagation is handled
by retrying the one error it causes, with backoff, never a blind sleep.

Everything tagsync creates carries the tags `tagsync:environment` and `tagsync:id` (a hash of
the raw repo/branch), which is what deploy and `destroy` check before touching a resource.

This module holds the checks before the first write and the order of the steps; the steps are
`artifact.ImageSteps` (the image and its repository) and `function.FunctionSteps` (role,
function, version, alias, schedule), over the state they share (`environment.Environment`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tagsync.aws.artifact import ImageSteps
from tagsync.aws.calls import ALIAS, Step, _tags_of, aws_errors, check_permissions, resolve_name
from tagsync.aws.function import READ_POLICY, STATEMENT_ID, FunctionSteps
from tagsync.aws.names import description
from tagsync.aws.policies import LAMBDA_TRUST, deploy_needs, role_policy, with_lambda_pull
from tagsync.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["Deployer"]


class Deployer(ImageSteps, FunctionSteps):
    """The steps of one environment; `dry=True` reads state and reports, writing nothing."""

    # -- account and checks before the first write ---------------------------------------------

    def preflight(self) -> None:
        """Every read that can refuse the deploy, before the first write (exit 2, nothing created)."""
        account, region = self.identity()
        self.name = resolve_name(self.client, self.spec.repo, self.spec.branch)
        self.tags["tagsync:environment"] = self.name
        self._check_requests(account, region)
        events, ecr = self.client("events"), self.client("ecr")
        function = self._read("function")
        if function is not None:
            self._function_tags = self._tags_of_function(function)
            self._owned(self._function_tags, f"Lambda function {self.name}")
            self._check_package(function)
        role = self._read("role")
        if role is not None:
            self._owned(_tags_of(role.get("Tags")), f"IAM role {self.name}-role")
        rule = self._read("rule")
        if rule is not None:
            self._rule_tags = _tags_of(events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"])
            self._owned(self._rule_tags, f"EventBridge rule {self.name}")
        # the steps reuse these first reads: nothing writes to them before their step
        self._first = {"function": function, "role": role, "rule": rule}
        if self.spec.image:
            self._check_image(self.spec.image, account, region)
            return
        try:
            found = ecr.describe_images(repositoryName=self.name, imageIds=[{"imageTag": self.spec.sha}])
            self._digest = found["imageDetails"][0].get("imageDigest")
            return  # already pushed: nothing to build
        except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
            pass
        self._build_with = self._builder()
        if self._build_with == "tagsync":
            self._baked_files()

    def _check_requests(self, account: str, region: str) -> None:
        """The requests this deploy can make, against AWS's own rules (botocore's models)."""
        from tagsync.aws.limits import violations

        tags = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        role = f"arn:aws:iam::{account}:role/{self.name}-role"
        function = f"arn:aws:lambda:{region}:{account}:function:{self.name}"
        image = self.spec.image or f"{account}.dkr.ecr.{region}.amazonaws.com/{self.name}:{self.spec.sha}"
        env = self.spec.desired_environment()
        inline = role_policy(self.spec.all_secret_refs, self.spec.config_ref, self.spec.ecr_registries,
                             account, region)
        planned: list[tuple[str, str, dict[str, Any]]] = [
            ("ecr", "CreateRepository", {"repositoryName": self.name, "tags": tags}),
            ("ecr", "PutLifecyclePolicy", {"repositoryName": self.name,
                                           "lifecyclePolicyText": self._lifecycle()}),
            ("ecr", "SetRepositoryPolicy", {"repositoryName": self.name, "policyText": json.dumps(
                with_lambda_pull(None, f"TagsyncLambdaPull{self.spec.id}", function))}),
            ("iam", "CreateRole", {"RoleName": f"{self.name}-role", "Tags": tags,
                                   "AssumeRolePolicyDocument": json.dumps(LAMBDA_TRUST),
                                   "Description": description(f"tagsync {self.name}", 1000)}),
            ("iam", "PutRolePolicy", {"RoleName": f"{self.name}-role", "PolicyName": READ_POLICY,
                                      "PolicyDocument": json.dumps(inline)}),
            ("lambda", "CreateFunction", {
                "FunctionName": self.name, "PackageType": "Image", "Code": {"ImageUri": image},
                "Role": role, "Timeout": self.spec.timeout, "MemorySize": self.spec.memory,
                "Architectures": [self.spec.architecture], "Environment": {"Variables": env},
                "Description": description(f"tagsync {self.spec.repo}@{self.spec.branch}", 256),
                "Tags": self.tags}),
            ("lambda", "PublishVersion", {"FunctionName": self.name,
                                          "Description": f"tagsync {self.spec.sha[:12]} {'0' * 16}"}),
            ("events", "PutRule", {"Name": self.name, "ScheduleExpression": self.spec.schedule,
                                   "State": "ENABLED", "Tags": tags,
                                   "Description": description(f"tagsync {self.name}", 512)}),
            ("lambda", "AddPermission", {
                "FunctionName": self.name, "Qualifier": ALIAS, "StatementId": STATEMENT_ID,
                "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
                "SourceArn": f"arn:aws:events:{region}:{account}:rule/{self.name}"}),
        ]
        found = [v for service, op, params in planned for v in violations(service, op, params)]
        if found:
            raise ConfigError("AWS would refuse this deploy (nothing was changed): " + "; ".join(found))

    def permissions(self) -> None:
        """Ask IAM whether the caller may do what this deploy may do, before the first write;
        without iam:SimulatePrincipalPolicy, list what it needs instead."""
        account, region = self.identity()
        image = self.spec.image or f"{account}.dkr.ecr.{region}.amazonaws.com/{self.name}:{self.spec.sha}"
        repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
        needs = deploy_needs(self.name, account, region, image_repository=repository,
                             build=self._build_with is not None, replace=self._replace_zip)
        self.steps.append(check_permissions(self.client("iam"), self._caller, needs, "deploy"))

    def _tags_of_function(self, function: dict[str, Any]) -> dict[str, str]:
        """The function's tags, asked for explicitly: GetFunction returns `Tags` only to a caller
        allowed lambda:ListTags, so their absence proves nothing (a refusal here is an error)."""
        arn = function["Configuration"]["FunctionArn"]
        return dict(self.client("lambda").list_tags(Resource=arn).get("Tags", {}))

    def _check_package(self, function: dict[str, Any]) -> None:
        """AWS refuses an image for a Zip function; ours is replaced, any other is refused now."""
        if function["Configuration"].get("PackageType", "Zip") != "Zip":
            return
        if self._function_tags.get("tagsync:id") == self.spec.id:
            self._replace_zip = True
            return
        raise ConfigError(
            f"Lambda function {self.name} exists as a Zip package and was not created by tagsync "
            f"for {self.spec.repo}@{self.spec.branch}; AWS cannot turn it into an image function. "
            f"Delete it (aws lambda delete-function --function-name {self.name}) if it is no longer "
            "needed, or tag it tagsync:id=" + self.spec.id + " to let deploy replace it, then deploy again")

    # -- the whole deploy -------------------------------------------------------------------------

    def deploy(self) -> list[Step]:
        with aws_errors(self._endpoint()):
            self.preflight()
            self.permissions()
            if self.before_writes is not None and not self.dry:
                self.before_writes(self.name)
            account, region = self.identity()
            repository = self.ecr_repository()
            image = self.image(repository)
            self.pull_access(image)
            role = self.role(account, region)
            self.function(image, role)
            version = self.version()
            self.keep_published(image)
            alias_arn = self.alias(version)
            if self.spec.org:  # the state machine's schedule starts it (`tagsync org deploy`)
                self._step(f"EventBridge rule {self.name}", "none",
                           "organisation mode: started by its Step Functions schedule")
            else:
                self.schedule(alias_arn)
        return self.steps

    def _endpoint(self) -> str | None:
        import os

        return os.environ.get("AWS_ENDPOINT_URL")


