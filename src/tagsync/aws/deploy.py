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
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsync.aws.names import (
    description,
    environment_id,
    environment_name,
    qualified_name,
    tag_value,
    validate_branch,
    validate_repo,
    validate_schedule,
)
from tagsync.aws.policies import (
    BASIC_EXECUTION,
    LAMBDA_TRUST,
    RUNS_POLICY,
    Needed,
    deploy_needs,
    lambda_may_pull,
    principal_of,
    role_policy,
    with_lambda_pull,
)
from tagsync.errors import ConfigError, TagsyncError

if TYPE_CHECKING:
    from tagsync.image.pipeline import BuildSpec

log = logging.getLogger(__name__)

__all__ = ["ALIAS", "DeployError", "DeploySpec", "Deployer", "Step", "environment_name", "resolve_name",
           "validate_branch", "validate_schedule"]

ALIAS = "live"
STATEMENT_ID = "tagsync-schedule"
TARGET_ID = "tagsync"
TASK_ROOT = "/var/task"  # LAMBDA_TASK_ROOT of the AWS base images
READ_POLICY = "tagsync-read"
PUBLISHED = "published-"  # tag prefix of the images published versions run
# variables tagsync itself sets; the two lists say which of the others it manages
OWN_ENV = ("TAGSYNC_CONFIG", "TAGSYNC_ORG_CONFIG", "TAGSYNC_SHA", "TAGSYNC_MANAGED_ENV",
           "TAGSYNC_SECRET_ENV")
_ENV_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]+$")
_RESERVED_ENV = re.compile(r"^(AWS_|LAMBDA_|_)")
ENV_BYTES = 4096  # Lambda: all variables together


class DeployError(TagsyncError):
    """AWS refused a step, or could not be reached; earlier steps stay as they are."""


# --- the spec -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploySpec:
    repo: str
    branch: str
    sha: str
    image: str | None = None  # a ready image URI in this account's ECR; else built and tagged `sha`
    architecture: str = "x86_64"
    memory: int = 512
    timeout: int = 300  # Lambda's default of 3 s is far too short for a registry scan
    schedule: str = "rate(1 hour)"
    config_ref: str = "/var/task/tagsync.yaml"  # TAGSYNC_CONFIG inside the function
    secret_refs: tuple[str, ...] = ()  # aws-secretsmanager:/aws-ssm: references the run reads
    ecr_registries: tuple[tuple[str, str], ...] = ()  # (account, region) of ECR hosts the run reads
    keep_images: int = 10
    environment: Mapping[str, str] = field(default_factory=dict)  # --env NAME=VALUE
    secret_environment: Mapping[str, str] = field(default_factory=dict)  # --secret-env NAME=REF
    builder: str = "auto"  # docker | tagsync | auto: Docker when a daemon answers, else tagsync
    base_image: str | None = None  # tagsync builder: default the Lambda Python image of `python`
    python: str = "3.11"
    config_file: Path | None = None  # built in at config_ref when that is a path in the image
    org: bool = False  # the organisation's function: config_ref is org.yaml, Step Functions starts it

    @property
    def name(self) -> str:
        return environment_name(self.repo, self.branch)

    @property
    def id(self) -> str:
        return environment_id(self.repo, self.branch)

    def check(self) -> None:
        """Everything that needs no AWS call."""
        validate_repo(self.repo)
        validate_branch(self.branch)
        validate_schedule(self.schedule)
        if self.architecture not in ("x86_64", "arm64"):
            raise ConfigError(f"architecture {self.architecture!r}: choose x86_64 or arm64")
        if not re.fullmatch(r"[0-9a-f]{7,40}", self.sha):
            raise ConfigError(f"sha {self.sha!r} is not a Git commit id")
        if not 128 <= self.memory <= 10240:
            raise ConfigError("memory must be between 128 and 10240 MB")
        if not 1 <= self.timeout <= 900:
            raise ConfigError("timeout must be between 1 and 900 seconds")
        if not 1 <= self.keep_images <= 1000:
            raise ConfigError("keep-images must be between 1 and 1000")
        if self.builder not in ("auto", "docker", "tagsync"):
            raise ConfigError(f"builder {self.builder!r}: choose auto, docker or tagsync")
        if not (self.config_ref.startswith(("s3://", "ssm:")) or self.config_ref.startswith(TASK_ROOT + "/")):
            raise ConfigError(f"config-ref {self.config_ref!r}: a path under {TASK_ROOT}/, "
                              "s3://bucket/key or ssm:/name")
        self._check_environment()

    def _check_environment(self) -> None:
        from tagsync.secrets import SecretRef

        both = set(self.environment) & set(self.secret_environment)
        if both:
            raise ConfigError(f"{', '.join(sorted(both))}: given with both --env and --secret-env")
        for name in [*self.environment, *self.secret_environment]:
            if not _ENV_NAME.match(name):
                raise ConfigError(f"environment variable {name!r}: letters, digits and _, "
                                  "starting with a letter (Lambda's rule)")
            if _RESERVED_ENV.match(name) or name in OWN_ENV:
                raise ConfigError(f"environment variable {name}: reserved by Lambda or tagsync")
        for name, ref in self.secret_environment.items():
            try:
                parsed = SecretRef.parse(ref)
            except ValueError as exc:
                raise ConfigError(f"--secret-env {name}: {exc}") from None
            if parsed.scheme not in ("aws-secretsmanager", "aws-ssm"):
                raise ConfigError(f"--secret-env {name}={ref}: the function reads aws-secretsmanager:… "
                                  "or aws-ssm:… references (use --env for a plain value)")
        size = sum(len(k) + len(v) for k, v in self.desired_environment().items())
        if size > ENV_BYTES - 512:  # room for variables set by hand, which are kept
            raise ConfigError(f"environment variables take {size} bytes; Lambda allows {ENV_BYTES} in all")

    def desired_environment(self) -> dict[str, str]:
        """The variables tagsync sets; names it manages are listed so a later deploy can drop them."""
        env = {"TAGSYNC_ORG_CONFIG" if self.org else "TAGSYNC_CONFIG": self.config_ref,
               "TAGSYNC_SHA": self.sha,
               **self.environment, **self.secret_environment}
        managed = sorted([*self.environment, *self.secret_environment])
        if managed:
            env["TAGSYNC_MANAGED_ENV"] = ",".join(managed)
        if self.secret_environment:
            env["TAGSYNC_SECRET_ENV"] = ",".join(sorted(self.secret_environment))
        return env

    @property
    def all_secret_refs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.secret_refs, *self.secret_environment.values()]))


@dataclass(frozen=True)
class Step:
    resource: str
    action: str  # create | update | none | delete | keep
    detail: str = ""

    def __str__(self) -> str:
        verb = {"none": "unchanged", "create": "create", "update": "update", "delete": "delete",
                "keep": "keep", "replace": "replace"}[self.action]
        return f"{verb:9s} {self.resource}" + (f"  ({self.detail})" if self.detail else "")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _message(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", exc))


@contextmanager
def aws_errors(endpoint: str | None) -> Iterator[None]:
    """botocore's exceptions as typed errors: AWS refusals, unreachable or non-AWS endpoints."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
    )

    where = endpoint or "AWS"
    try:
        yield
    except NoCredentialsError:
        raise ConfigError("no AWS credentials: in GitHub Actions use "
                          "aws-actions/configure-aws-credentials with OIDC; locally set "
                          "AWS_PROFILE or AWS_ACCESS_KEY_ID") from None
    except NoRegionError:
        raise ConfigError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)") from None
    except ClientError as exc:
        op, code = exc.operation_name, _code(exc)
        if code.isdigit() or not code:
            raise DeployError(f"{where} does not answer like AWS: HTTP {code or '?'} to {op}") from None
        raise DeployError(f"AWS refused {op}: {code}: {_message(exc)}") from None
    except ParamValidationError as exc:  # a bug of ours: the request breaks the service's model
        raise DeployError(f"tagsync built a request AWS would refuse: {exc}") from None
    except BotoCoreError as exc:
        kind = type(exc).__name__
        if "Parser" in kind or "Parse" in kind:
            raise DeployError(f"{where} does not answer like AWS ({kind}): is AWS_ENDPOINT_URL "
                              "right?") from None
        raise DeployError(f"cannot talk to {where}: {exc}") from None


def _tags_of(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in items or []}


def _claims(client: Callable[[str], Any], name: str) -> set[str]:
    """The `tagsync:id`s on the resources named `name` (function, role, repository, rule)."""
    lam, iam, ecr, events = (client(s) for s in ("lambda", "iam", "ecr", "events"))
    found: list[dict[str, str]] = []
    with suppress(lam.exceptions.ResourceNotFoundException):
        arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        found.append(dict(lam.list_tags(Resource=arn).get("Tags", {})))
    with suppress(iam.exceptions.NoSuchEntityException):
        found.append(_tags_of(iam.get_role(RoleName=f"{name}-role")["Role"].get("Tags")))
    with suppress(ecr.exceptions.RepositoryNotFoundException):
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryArn"]
        found.append(_tags_of(ecr.list_tags_for_resource(resourceArn=repo).get("tags")))
    with suppress(events.exceptions.ResourceNotFoundException):
        rule = events.describe_rule(Name=name)["Arn"]
        found.append(_tags_of(events.list_tags_for_resource(ResourceARN=rule).get("Tags")))
    return {tags["tagsync:id"] for tags in found if "tagsync:id" in tags}


def resolve_name(client: Callable[[str], Any], repo: str, branch: str) -> str:
    """The environment's name: `<repo>-<branch>`, unless that belongs to a repository of the same
    name under another owner (or this environment already lives at the qualified name), then
    the qualified name (with a hash of owner/repo/branch). Both start with the policy's prefix."""
    plain, qualified = environment_name(repo, branch), qualified_name(repo, branch)
    if plain == qualified:
        return plain
    env_id = environment_id(repo, branch)
    if env_id in _claims(client, qualified) or _claims(client, plain) - {env_id}:
        return qualified
    return plain


def identity(session: Any, sts: Any = None, caller: list[str] | None = None) -> tuple[str, str]:
    """(account, region) from STS, which needs no permission: also proves the endpoint is AWS.
    The caller's ARN is appended to `caller` when given."""
    region = session.region_name
    if not region:
        raise ConfigError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)")
    sts = sts or session.client("sts")
    try:
        answer = sts.get_caller_identity()
        account = answer.get("Account")
        if caller is not None and isinstance(answer.get("Arn"), str):
            caller.append(answer["Arn"])
    except (KeyError, ValueError, TypeError, AttributeError):  # botocore read a body that is not AWS's
        account = None
    if not isinstance(account, str) or not re.fullmatch(r"\d{12}", account):
        raise DeployError(f"{sts.meta.endpoint_url} does not answer like AWS (STS "
                          "GetCallerIdentity gave no account): is AWS_ENDPOINT_URL right?")
    return account, str(region)


def check_permissions(iam: Any, caller_arn: str, needs: list[Needed], what: str) -> Step:
    """Ask IAM's simulator whether the caller may call every action `needs` lists, on its
    resource and with its condition keys, before the first write: a ConfigError naming each one
    refused ("Nothing was changed"). A caller that is not an IAM role or user, or may not
    simulate, gets the list of actions in the returned step instead."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    principal = principal_of(caller_arn)
    actions = sorted({a for _, names, _ in needs for a in names})
    resource = f"permissions of {principal or caller_arn}"
    if principal is None:
        return Step(resource, "none", f"not checked (not an IAM role or user); {what} needs: "
                    + ", ".join(actions))
    denied: list[str] = []
    try:
        for arn, names, context in needs:
            answer = iam.simulate_principal_policy(
                PolicySourceArn=principal, ActionNames=list(names), ResourceArns=[arn],
                ContextEntries=[{"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
                                for k, v in context.items()])
            denied += [f"{r['EvalActionName']} on {r['EvalResourceName']}"
                       for r in answer["EvaluationResults"] if r["EvalDecision"] != "allowed"]
    except (ClientError, BotoCoreError, ResponseParserError) as exc:  # not allowed; no simulator
        why = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        log.warning("cannot check permissions (%s): %s needs %s", why, what, ", ".join(actions))
        return Step(resource, "none", f"not checked ({why} to iam:SimulatePrincipalPolicy); "
                    f"{what} needs: " + ", ".join(actions))
    if denied:
        scaffold = "tagsync scaffold --org" if what.startswith("the organisation") else "tagsync scaffold"
        raise ConfigError(f"{principal} may not: {'; '.join(denied)}. Nothing was changed: add them "
                          f"to its policy ({scaffold} writes aws/tagsync-deploy-policy.json)")
    return Step(resource, "none", f"{len(actions)} actions allowed (iam:SimulatePrincipalPolicy)")


# --- the steps ----------------------------------------------------------------------------------


class Deployer:
    """The steps of one environment; `dry=True` reads state and reports, writing nothing."""

    def __init__(self, spec: DeploySpec, *, session: Any = None, dry: bool = False,
                 sleep: Callable[[float], None] = time.sleep, role_retry_budget: float = 120.0,
                 build_template: BuildSpec | None = None,
                 registry_endpoints: Mapping[str, str] | None = None,
                 build_cache: Path | None = None,
                 before_writes: Callable[[str], None] | None = None) -> None:
        spec.check()
        import boto3

        self.spec, self.dry, self.sleep = spec, dry, sleep
        # the tagsync builder's knobs that deploy does not decide (pip options, requirements)
        self.build_template = build_template
        self.registry_endpoints = dict(registry_endpoints or {})
        self.build_cache = build_cache
        # more checks that must pass before the first write (the organisation's fan-out's dry
        # pass), given the environment's settled name
        self.before_writes = before_writes
        self.session = session or boto3.session.Session()
        self.steps: list[Step] = []
        self.role_retry_budget = role_retry_budget
        self.role_retries = 0
        self.name = spec.name
        self.tags = {"tagsync:environment": self.name, "tagsync:id": spec.id, "tagsync:managed": "true",
                     "tagsync:repo": tag_value(spec.repo), "tagsync:branch": tag_value(spec.branch)}
        self._clients: dict[str, Any] = {}
        self._identity: tuple[str, str] | None = None
        self._caller_arn: list[str] = []  # STS's Arn of the caller, filled by identity()
        self._build_with: str | None = None  # decided by preflight: docker | tagsync | None
        self._settings: dict[str, Any] = {}
        self._first: dict[str, Any] = {}  # preflight's reads, used once by the steps
        self._digest: str | None = None  # the image's digest in ECR, when ECR knows it
        self._replace_zip = False  # our function exists as a Zip package: replaced by an image one
        self._function_tags: dict[str, str] = {}
        self._rule_tags: dict[str, str] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def _step(self, resource: str, action: str, detail: str = "") -> bool:
        """Record a step; True when it should be carried out now."""
        self.steps.append(Step(resource, action, detail))
        if action not in ("none", "keep"):
            log.info("%s %s %s", "would" if self.dry else "will", action, resource)
        return action not in ("none", "keep") and not self.dry

    # -- account and checks before the first write ---------------------------------------------

    def identity(self) -> tuple[str, str]:
        """(account, region); fails clearly without credentials, before anything is created."""
        if self._identity is None:
            self._identity = identity(self.session, self.client("sts"), self._caller_arn)
        return self._identity

    @property
    def _caller(self) -> str:
        self.identity()
        return self._caller_arn[0] if self._caller_arn else ""

    def _owned(self, tags: dict[str, str], resource: str) -> None:
        """Refuse a resource of this name that belongs to another repository or branch."""
        env, owner = tags.get("tagsync:environment"), tags.get("tagsync:id")
        if (env is not None and env != self.name) or (owner is not None and owner != self.spec.id):
            who = f"{tags.get('tagsync:repo', '?')}@{tags.get('tagsync:branch', '?')}"
            raise ConfigError(f"{resource} belongs to another environment ({who}); this one "
                              f"({self.spec.repo}@{self.spec.branch}) cannot share it")

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

    def _read(self, kind: str) -> Any:
        """The current function, role or rule (None when missing); a preflight read is used once."""
        if kind in self._first:
            return self._first.pop(kind)
        lam, iam, events = (self.client(s) for s in ("lambda", "iam", "events"))
        try:
            if kind == "function":
                return lam.get_function(FunctionName=self.name)
            if kind == "role":
                return iam.get_role(RoleName=f"{self.name}-role")["Role"]
            return events.describe_rule(Name=self.name)
        except (lam.exceptions.ResourceNotFoundException, iam.exceptions.NoSuchEntityException,
                events.exceptions.ResourceNotFoundException):
            return None

    def _check_image(self, uri: str, account: str, region: str) -> None:
        from tagsync.errors import InvalidReferenceError
        from tagsync.reference import parse_ecr_host, parse_reference

        try:
            name, reference = parse_reference(uri)
        except InvalidReferenceError as exc:
            raise ConfigError(f"--image {uri!r}: {exc.message}") from None
        host = parse_ecr_host(name.registry)
        if host is None or "/" not in uri.split("@")[0]:
            raise ConfigError(f"--image {uri}: Lambda runs images from ECR only; give "
                              f"{account}.dkr.ecr.{region}.amazonaws.com/REPOSITORY:TAG")
        if host != (account, region):
            raise ConfigError(f"--image {uri}: the image is in account {host[0]}, region {host[1]}; "
                              f"this deploy is in account {account}, region {region}")
        if not 2 <= len(name.repository) <= 256:
            raise ConfigError(f"--image {uri}: an ECR repository name has 2 to 256 characters")
        ecr = self.client("ecr")
        key = "imageDigest" if reference.startswith("sha256:") else "imageTag"
        try:
            found = ecr.describe_images(repositoryName=name.repository, imageIds=[{key: reference}])
            self._digest = found["imageDetails"][0].get("imageDigest")
        except ecr.exceptions.RepositoryNotFoundException:
            raise ConfigError(f"--image {uri}: ECR has no repository {name.repository}") from None
        except ecr.exceptions.ImageNotFoundException:
            raise ConfigError(f"--image {uri}: {reference} is not in {name.repository}") from None

    def _builder(self) -> str:
        if self.spec.builder == "tagsync":
            return "tagsync"
        if docker_daemon():
            return "docker"
        if self.spec.builder == "docker":
            raise ConfigError(f"the image for {self.spec.sha[:12]} is not in ECR and there is no Docker "
                              "daemon to build it; use --builder tagsync, or pass --image URI")
        return "tagsync"

    def _baked_files(self) -> dict[str, Path]:
        """The config goes into the image when the function is to read it from there."""
        ref = self.spec.config_ref
        if not ref.startswith(TASK_ROOT + "/"):
            return {}
        if self.spec.config_file is None:
            raise ConfigError(f"the function reads its config from {ref} in the image: pass "
                              "--config so it is built in, or --config-ref s3://… or ssm:…")
        if not self.spec.config_file.is_file():
            raise ConfigError("config file not found", file=str(self.spec.config_file))
        return {ref[len(TASK_ROOT) + 1:]: self.spec.config_file}

    # -- steps ----------------------------------------------------------------------------------

    def _lifecycle(self) -> str:
        """Keep the last N images, but never one a published version runs: those carry a
        `published-<sha>` tag, and ECR never lets a lower-priority rule expire an image that
        matches a higher-priority rule's tags (the first rule only expires past 10000 of them)."""
        return json.dumps({"rules": [
            {"rulePriority": 1, "description": "keep images that published versions run",
             "selection": {"tagStatus": "tagged", "tagPrefixList": [PUBLISHED],
                           "countType": "imageCountMoreThan", "countNumber": 10000},
             "action": {"type": "expire"}},
            {"rulePriority": 2, "description": f"keep the last {self.spec.keep_images} images",
             "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                           "countNumber": self.spec.keep_images},
             "action": {"type": "expire"}}]}, sort_keys=True)

    def keep_published(self, image: str) -> None:
        """Tag the image a published version runs `published-<sha>` (in our repository), so the
        lifecycle policy never expires what `live` or a rollback may point at."""
        repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
        tag = image.rsplit(":", 1)[-1]
        if repository != self.name or "@" in image or self.dry:
            return
        ecr = self.client("ecr")
        mark = f"{PUBLISHED}{self.spec.sha}"
        try:
            found = ecr.describe_images(repositoryName=self.name,
                                        imageIds=[{"imageTag": tag}])["imageDetails"]
        except ecr.exceptions.ImageNotFoundException:
            log.warning("ECR does not list %s: it is not marked as published", image)
            return
        if mark in found[0].get("imageTags", []):
            self._step(f"image {image}", "none", f"kept by the lifecycle policy ({mark})")
            return
        if self._step(f"image {image}", "update", f"tag {mark}: the lifecycle policy keeps it"):
            got = ecr.batch_get_image(repositoryName=self.name, imageIds=[{"imageTag": tag}])["images"]
            ecr.put_image(repositoryName=self.name, imageManifest=got[0]["imageManifest"], imageTag=mark,
                          **({"imageManifestMediaType": got[0]["imageManifestMediaType"]}
                             if got[0].get("imageManifestMediaType") else {}))

    def ecr_repository(self) -> str:
        ecr = self.client("ecr")
        lifecycle = self._lifecycle()
        try:
            repo = ecr.describe_repositories(repositoryNames=[self.name])["repositories"][0]
        except ecr.exceptions.RepositoryNotFoundException:
            if self._step(f"ECR repository {self.name}", "create", "immutable tags, scan on push"):
                repo = ecr.create_repository(
                    repositoryName=self.name, imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])["repository"]
                ecr.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lifecycle)
                return str(repo["repositoryUri"])
            account, region = self.identity()
            return f"{account}.dkr.ecr.{region}.amazonaws.com/{self.name}"
        # the first step: nothing is written yet when another environment's repository is refused
        tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags")
        self._owned(_tags_of(tags), f"ECR repository {self.name}")
        fixes = []
        missing = self._missing_tags(_tags_of(tags))
        if missing:
            fixes.append("tags")
        if repo.get("imageTagMutability") != "IMMUTABLE":
            fixes.append("tag immutability")
        if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
            fixes.append("scan on push")
        try:
            current = json.loads(ecr.get_lifecycle_policy(repositoryName=self.name)["lifecyclePolicyText"])
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            current = None
        if current != json.loads(lifecycle):
            fixes.append("lifecycle policy")
        if self._step(f"ECR repository {self.name}", "update" if fixes else "none", ", ".join(fixes)):
            if "tag immutability" in fixes:
                ecr.put_image_tag_mutability(repositoryName=self.name, imageTagMutability="IMMUTABLE")
            if "scan on push" in fixes:
                ecr.put_image_scanning_configuration(repositoryName=self.name,
                                                     imageScanningConfiguration={"scanOnPush": True})
            if "lifecycle policy" in fixes:
                ecr.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lifecycle)
            if missing:
                ecr.tag_resource(resourceArn=repo["repositoryArn"],
                                 tags=[{"Key": k, "Value": v} for k, v in missing.items()])
        return str(repo["repositoryUri"])

    def image(self, repository_uri: str) -> str:
        if self.spec.image:
            self._step(f"image {self.spec.image}", "none", "given with --image")
            return self.spec.image
        uri = f"{repository_uri}:{self.spec.sha}"
        if self._build_with is None:
            self._step(f"image {uri}", "none", "already pushed")
        elif self._build_with == "docker":
            if self._step(f"image {uri}", "create", "docker build and push"):
                docker_build_and_push(uri, self.spec.architecture, self.client("ecr"))
        elif self._step(f"image {uri}", "create", "built by tagsync build, no Docker"):
            self._tagsync_build(uri, self._baked_files())
        if self._build_with is not None and not self.dry:
            ecr = self.client("ecr")
            try:
                found = ecr.describe_images(repositoryName=self.name, imageIds=[{"imageTag": self.spec.sha}])
                self._digest = found["imageDetails"][0].get("imageDigest")
            except ecr.exceptions.ImageNotFoundException:
                log.warning("ECR does not list %s after the push; its digest is not checked", uri)
        return uri

    def pull_access(self, image: str) -> None:
        """Lambda pulls the image only if the repository policy lets lambda.amazonaws.com: set it."""
        ecr = self.client("ecr")
        account, region = self.identity()
        repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
        function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.name}"
        resource = f"ECR repository policy of {repository}"
        try:
            current = json.loads(ecr.get_repository_policy(repositoryName=repository)["policyText"])
        except (ecr.exceptions.RepositoryPolicyNotFoundException, ecr.exceptions.RepositoryNotFoundException):
            current = None  # none yet, or (dry run) the repository is not created yet
        if lambda_may_pull(current, function_arn):
            self._step(resource, "none", "Lambda may pull")
            return
        if self._step(resource, "create" if current is None else "update", "let Lambda pull the image"):
            wanted = with_lambda_pull(current, f"TagsyncLambdaPull{self.spec.id}", function_arn)
            ecr.set_repository_policy(repositoryName=repository, policyText=json.dumps(wanted))

    def _tagsync_build(self, uri: str, files: dict[str, Path]) -> None:
        from tagsync.image.pipeline import BlobCache, BuildSpec, Registries, Target, run_build
        from tagsync.reference import parse_ecr_host
        from tagsync.registry.credentials import ecr_credentials, push_credentials

        ecr = self.client("ecr")
        template = self.build_template or BuildSpec()
        spec = replace(template, target=Target(self.spec.architecture, self.spec.python),
                       base=self.spec.base_image or template.base, revision=self.spec.sha,
                       files={**template.files, **files})

        def credentials(host: str) -> tuple[str | None, str | None]:
            return ecr_credentials(host, ecr) if parse_ecr_host(host) else push_credentials(host)

        registries = Registries(credentials=credentials, endpoints=self.registry_endpoints)
        result = run_build(spec, uri, registries=registries,
                           cache=BlobCache(self.build_cache) if self.build_cache else None)
        assert result.push is not None
        log.info("pushed %s: %d blobs uploaded (%d bytes)", uri, len(result.push.uploaded),
                 result.push.bytes_uploaded)

    def role(self, account: str, region: str) -> str:
        """The function's role: Lambda trust, basic execution, and exactly the reads the run needs.
        Each part is compared and repaired on its own, so any drift converges."""
        iam = self.client("iam")
        name = f"{self.name}-role"
        inline = role_policy(self.spec.all_secret_refs, self.spec.config_ref,
                             self.spec.ecr_registries, account, region)
        wanted = inline if inline["Statement"] else None
        role = self._read("role")
        if role is None:
            grants = len(inline["Statement"])
            if self._step(f"IAM role {name}", "create",
                          f"Lambda trust, basic execution, {grants} read grants"):
                created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                                          Description=description(f"tagsync {self.name}", 1000),
                                          Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
                iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
                if wanted is not None:
                    iam.put_role_policy(RoleName=name, PolicyName=READ_POLICY,
                                        PolicyDocument=json.dumps(wanted))
                return str(created["Role"]["Arn"])
            return f"arn:aws:iam::{account}:role/{name}"
        trust = role.get("AssumeRolePolicyDocument")
        trust = json.loads(trust) if isinstance(trust, str) else trust
        listed = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        attached = [p["PolicyArn"] for p in listed]
        inline_names = iam.list_role_policies(RoleName=name)["PolicyNames"]
        current = None
        if READ_POLICY in inline_names:
            current = iam.get_role_policy(RoleName=name, PolicyName=READ_POLICY)["PolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
        fixes = []
        if trust != LAMBDA_TRUST:
            fixes.append("trust policy")
        if BASIC_EXECUTION not in attached:
            fixes.append("basic execution")
        if current != wanted:
            fixes.append("read grants")
        missing = self._missing_tags(_tags_of(role.get("Tags")))
        if missing:
            fixes.append("tags")
        ours = (READ_POLICY, RUNS_POLICY) if self.spec.org else (READ_POLICY,)  # RUNS: org_deploy's
        others = sorted([p.rsplit("/", 1)[-1] for p in attached if p != BASIC_EXECUTION]
                        + [p for p in inline_names if p not in ours])
        if others:
            log.warning("IAM role %s has policies tagsync did not set, kept: %s", name, ", ".join(others))
            fixes_detail = ", ".join(fixes) + ("; " if fixes else "") + "kept policies set by hand: " + \
                ", ".join(others)
        else:
            fixes_detail = ", ".join(fixes)
        if self._step(f"IAM role {name}", "update" if fixes else "none", fixes_detail):
            if "trust policy" in fixes:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(LAMBDA_TRUST))
            if "basic execution" in fixes:
                iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
            if "read grants" in fixes:
                if wanted is None:
                    iam.delete_role_policy(RoleName=name, PolicyName=READ_POLICY)
                else:
                    iam.put_role_policy(RoleName=name, PolicyName=READ_POLICY,
                                        PolicyDocument=json.dumps(wanted))
            if missing:
                iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in missing.items()])
        return str(role["Arn"])

    def _retry_role(self, call: Callable[[], Any]) -> Any:
        """Retry the one error IAM propagation causes, with backoff, within a time budget."""
        from botocore.exceptions import ClientError

        delay, waited = 1.0, 0.0
        while True:
            try:
                return call()
            except ClientError as exc:
                if _code(exc) != "InvalidParameterValueException" or "cannot be assumed" not in _message(exc):
                    raise
                if waited + delay > self.role_retry_budget:
                    raise DeployError(f"the new role is still not assumable by Lambda after "
                                      f"{waited:.0f} s: {_message(exc)}") from None
                self.role_retries += 1
                log.info("role not yet assumable (IAM propagation); retrying in %.0f s", delay)
                self.sleep(delay)
                waited += delay
                delay = min(delay * 2, 16.0)

    def _environment(self, current: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """Desired variables plus those set by hand (kept, and named so the user knows)."""
        wanted = self.spec.desired_environment()
        managed = set(filter(None, current.get("TAGSYNC_MANAGED_ENV", "").split(",")))
        foreign = {k: v for k, v in current.items() if k not in wanted and k not in managed
                   and k not in OWN_ENV}
        return {**foreign, **wanted}, sorted(foreign)

    def _fingerprint(self) -> str:
        """What a published version must match: image and settings, as a short hash."""
        text = json.dumps(self._settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def function(self, image: str, role: str) -> None:
        """Converge $LATEST to the image and settings; the version step publishes from it."""
        lam = self.client("lambda")
        resource = f"Lambda function {self.name}"
        current = self._read("function")
        replacing = current is not None and self._replace_zip
        if replacing:
            current = None
        if current is None:
            env, _ = self._environment({})
            self._settings = self._wanted(image, role, env)
            detail = f"{self.spec.architecture}, {self.spec.memory} MB, {self.spec.timeout} s"
            if replacing:
                detail = ("a Zip package function of this environment: deleted, created from the "
                          "image; " + detail)
            if self._step(resource, "replace" if replacing else "create", detail):
                if replacing:
                    lam.delete_function(FunctionName=self.name)
                self._retry_role(lambda: lam.create_function(
                    FunctionName=self.name, PackageType="Image", Code={"ImageUri": image}, Role=role,
                    Timeout=self.spec.timeout, MemorySize=self.spec.memory,
                    Architectures=[self.spec.architecture], Environment={"Variables": env},
                    Description=description(f"tagsync {self.spec.repo}@{self.spec.branch}", 256),
                    Tags=self.tags))
                lam.get_waiter("function_active_v2").wait(FunctionName=self.name)
            return
        conf = current["Configuration"]
        now_env = conf.get("Environment", {}).get("Variables", {})
        env, foreign = self._environment(now_env)
        self._settings = self._wanted(image, role, env)
        changed = []
        code = current.get("Code", {})
        if (code.get("ImageUri") != image or not self._same_digest(code)
                or conf.get("Architectures", ["x86_64"]) != [self.spec.architecture]):
            changed.append("image " + image.rsplit(":", 1)[-1][:12])
        missing = self._missing_tags(self._function_tags)
        if missing:
            changed.append("tags")
        settings = {"Role": role, "Timeout": self.spec.timeout, "MemorySize": self.spec.memory,
                    "Environment": {"Variables": env}}
        now = {**conf, "Environment": {"Variables": now_env}}
        differs = [k for k, v in settings.items() if now.get(k) != v]
        if differs:
            changed.append("configuration: " + ", ".join(differs))
        detail = "; ".join(changed)
        if foreign:
            log.warning("%s has environment variables tagsync did not set, kept: %s",
                        self.name, ", ".join(foreign))
            detail += ("; " if detail else "") + "kept variables set by hand: " + ", ".join(foreign)
        if not self.dry:
            self._ready(conf)  # also before publishing from a function left unchanged
        if self._step(resource, "update" if changed else "none", detail):
            if differs:
                self._retry_role(lambda: lam.update_function_configuration(FunctionName=self.name,
                                                                           **settings))
                lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
            if changed[0].startswith("image"):
                lam.update_function_code(FunctionName=self.name, ImageUri=image,
                                         Architectures=[self.spec.architecture])
                lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
            if missing:
                lam.tag_resource(Resource=conf["FunctionArn"], Tags=missing)

    def _same_digest(self, code: dict[str, Any]) -> bool:
        """Does the code resolve to the image's digest in ECR (a tag pushed again does not)?"""
        resolved = code.get("ResolvedImageUri")
        return self._digest is None or not resolved or resolved.rsplit("@", 1)[-1] == self._digest

    def _missing_tags(self, tags: dict[str, str]) -> dict[str, str]:
        """Our tags an adopted resource lacks (those it has are checked by `_owned`)."""
        return {k: v for k, v in self.tags.items() if tags.get(k) != v}

    def _runs(self, version: str) -> bool:
        """Does this published version run the image (by digest), SHA and settings asked for?
        Its description is ours to write, so it is not proof; what AWS resolved is."""
        fn = self.client("lambda").get_function(FunctionName=self.name, Qualifier=version)
        conf, code = fn["Configuration"], fn.get("Code", {})
        env = conf.get("Environment", {}).get("Variables", {})
        wanted = self._settings
        return (code.get("ImageUri") == wanted["image"] and self._same_digest(code)
                and env.get("TAGSYNC_SHA") == self.spec.sha and env == wanted["environment"]
                and conf.get("Role") == wanted["role"] and conf.get("MemorySize") == wanted["memory"]
                and conf.get("Timeout") == wanted["timeout"]
                and conf.get("Architectures", ["x86_64"]) == [wanted["architecture"]])

    def _ready(self, conf: dict[str, Any]) -> None:
        """A function still being created or updated (a deploy interrupted) takes no update."""
        lam = self.client("lambda")
        if conf.get("State") == "Pending":
            lam.get_waiter("function_active_v2").wait(FunctionName=self.name)
        if conf.get("LastUpdateStatus") == "InProgress":
            lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)

    def _wanted(self, image: str, role: str, env: dict[str, str]) -> dict[str, Any]:
        return {"image": image, "role": role, "timeout": self.spec.timeout, "memory": self.spec.memory,
                "architecture": self.spec.architecture, "environment": env}

    def version(self) -> str | None:
        """The published version running this image with these settings; published if none is."""
        lam = self.client("lambda")
        wanted = f"tagsync {self.spec.sha[:12]} {self._fingerprint()}"
        found: list[int] = []
        try:
            for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=self.name):
                found += [int(v["Version"]) for v in page["Versions"]
                          if v["Version"] != "$LATEST" and v.get("Description") == wanted]
        except lam.exceptions.ResourceNotFoundException:
            pass  # dry run of a first deploy
        for number in sorted(found, reverse=True):
            if self._runs(str(number)):
                self._step(f"version of {self.name}", "none", f"version {number} runs {self.spec.sha[:12]}")
                return str(number)
            log.warning("%s version %s is described as %s but does not run it", self.name, number,
                        self.spec.sha[:12])
        if not self._step(f"version of {self.name}", "create", f"publish {self.spec.sha[:12]}"):
            return None
        version = str(lam.publish_version(FunctionName=self.name, Description=wanted)["Version"])
        if self._runs(version):
            return version
        # AWS publishes nothing when $LATEST has not changed since the last version was published
        # (even when that version was deleted since) and answers with an existing one instead:
        # change $LATEST's description, so the next publish is a new version.
        log.info("PublishVersion answered version %s, which does not run %s: publishing again",
                 version, self.spec.sha[:12])
        lam.update_function_configuration(FunctionName=self.name, Description=description(
            f"tagsync {self.spec.repo}@{self.spec.branch} {self.spec.sha[:12]}, after version {version}",
            256))
        lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
        again = str(lam.publish_version(FunctionName=self.name, Description=wanted)["Version"])
        if not self._runs(again):
            raise DeployError(f"{self.name}: AWS answered PublishVersion with version {again}, which "
                              f"does not run {self._settings['image']}; `live` was left as it is")
        return again

    def alias(self, version: str | None) -> str:
        lam = self.client("lambda")
        resource = f"alias {self.name}:{ALIAS}"
        try:
            alias = lam.get_alias(FunctionName=self.name, Name=ALIAS)
        except lam.exceptions.ResourceNotFoundException:
            alias = None
        if alias is None:
            if self._step(resource, "create", f"version {version or '(new)'}") and version is not None:
                return str(lam.create_alias(FunctionName=self.name, Name=ALIAS, FunctionVersion=version,
                                            Description="what the schedule invokes")["AliasArn"])
            account, region = self.identity()
            return f"arn:aws:lambda:{region}:{account}:function:{self.name}:{ALIAS}"
        if version is not None and alias["FunctionVersion"] == version:
            self._step(resource, "none", f"version {version}")
        elif self._step(resource, "update", f"version {alias['FunctionVersion']} -> {version or '(new)'}"):
            assert version is not None
            lam.update_alias(FunctionName=self.name, Name=ALIAS, FunctionVersion=version)
        return str(alias["AliasArn"])

    def schedule(self, alias_arn: str) -> None:
        events, lam = self.client("events"), self.client("lambda")
        rule = self._read("rule")
        if rule is not None and rule.get("ScheduleExpression") == self.spec.schedule \
                and rule.get("State") == "ENABLED" and self._missing_tags(self._rule_tags):
            if self._step(f"EventBridge rule {self.name}", "update", "tags"):
                events.tag_resource(ResourceARN=rule["Arn"], Tags=[
                    {"Key": k, "Value": v} for k, v in self._missing_tags(self._rule_tags).items()])
        elif (rule is None or rule.get("ScheduleExpression") != self.spec.schedule
                or rule.get("State") != "ENABLED"):
            action = "create" if rule is None else "update"
            if self._step(f"EventBridge rule {self.name}", action, self.spec.schedule):
                arn = events.put_rule(Name=self.name, ScheduleExpression=self.spec.schedule, State="ENABLED",
                                      Description=description(f"tagsync {self.name}", 512),
                                      Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])["RuleArn"]
                if rule is not None and self._missing_tags(self._rule_tags):  # PutRule tags new rules only
                    events.tag_resource(ResourceARN=arn, Tags=[
                        {"Key": k, "Value": v} for k, v in self._missing_tags(self._rule_tags).items()])
                rule = {"Arn": arn}
        else:
            self._step(f"EventBridge rule {self.name}", "none", self.spec.schedule)
        if rule is None:  # dry run of a first deploy
            self._step(f"schedule target and invoke permission for {self.name}:{ALIAS}", "create")
            return
        targets = events.list_targets_by_rule(Rule=self.name)["Targets"]
        if [t["Arn"] for t in targets] != [alias_arn]:
            if self._step(f"schedule target {self.name} -> {ALIAS}", "create" if not targets else "update"):
                stale = [t["Id"] for t in targets if t["Arn"] != alias_arn]
                if stale:
                    events.remove_targets(Rule=self.name, Ids=stale)
                events.put_targets(Rule=self.name, Targets=[{"Id": TARGET_ID, "Arn": alias_arn}])
        else:
            self._step(f"schedule target {self.name} -> {ALIAS}", "none")
        permission = self._permission()
        resource = f"invoke permission for the rule on {self.name}:{ALIAS}"
        if permission is not None and permission.get("Condition", {}).get("ArnLike", {}).get(
                "AWS:SourceArn") == rule["Arn"]:
            self._step(resource, "none")
            return
        if self._step(resource, "create" if permission is None else "update"):
            if permission is not None:
                lam.remove_permission(FunctionName=self.name, Qualifier=ALIAS, StatementId=STATEMENT_ID)
            lam.add_permission(FunctionName=self.name, Qualifier=ALIAS, StatementId=STATEMENT_ID,
                               Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                               SourceArn=rule["Arn"])

    def _permission(self) -> dict[str, Any] | None:
        lam = self.client("lambda")
        try:
            policy = json.loads(lam.get_policy(FunctionName=self.name, Qualifier=ALIAS)["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            return None
        found = [s for s in policy.get("Statement", []) if s.get("Sid") == STATEMENT_ID]
        return dict(found[0]) if found else None

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


def docker_daemon() -> bool:
    """Is there a Docker CLI whose daemon answers?"""
    import shutil
    import subprocess

    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "info"], capture_output=True).returncode == 0


def docker_build_and_push(uri: str, architecture: str, ecr: Any) -> None:
    """Build the Dockerfile in the current directory and push it to ECR with the Docker CLI."""
    import base64
    import shutil
    import subprocess

    docker = shutil.which("docker") or "docker"
    platform = "linux/amd64" if architecture == "x86_64" else "linux/arm64"
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    registry = uri.split("/", 1)[0]
    steps = [[docker, "login", "--username", user, "--password-stdin", registry],
             [docker, "build", "--platform", platform, "--provenance=false", "-t", uri, "."],
             [docker, "push", uri]]
    for argv in steps:
        done = subprocess.run(argv, input=password.encode() if "login" in argv else None,
                              capture_output=True)
        if done.returncode != 0:
            raise DeployError(f"`{' '.join(argv[:2])}` failed: {done.stderr.decode()[-500:]}")
