"""`tagsync deploy`: ECR repository, IAM role, Lambda function, alias and schedule, idempotently.

One environment per Git branch, named `<repo>-<branch>` after the naming rules of Lambda, ECR,
IAM and EventBridge. Every step reads the current state first and changes only what differs, so
`--plan` is the same code with the writes switched off, and a second deploy of the same commit
reports "no change". IAM propagation is handled by retrying the one error it causes
(`InvalidParameterValueException: … cannot be assumed by Lambda`) with backoff, never a blind sleep.

Everything tagsync creates carries the tags `tagsync:environment` and `tagsync:managed`, which is
what `destroy` trusts before deleting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsync.errors import ConfigError, TagsyncError

if TYPE_CHECKING:
    from tagsync.build import BuildSpec

log = logging.getLogger(__name__)

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ALIAS = "live"
STATEMENT_ID = "tagsync-schedule"
TARGET_ID = "tagsync"
TASK_ROOT = "/var/task"  # LAMBDA_TASK_ROOT of the AWS base images
NAME_LIMIT = 56  # leaves room for "-role" within IAM's and Lambda's 64 characters


class DeployError(TagsyncError):
    """AWS refused a step, or a prerequisite is missing; earlier steps stay as they are."""


# --- names and expressions, checked before any API call -------------------------------------


_GIT_REF_BAD = re.compile(r"(^[-/.])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(/$)|(\.lock$)|(@\{)|(//)|(\.$)")


def validate_branch(branch: str) -> str:
    """Git's ref-name rules (git check-ref-format), so a typo fails before anything is created."""
    if not branch or _GIT_REF_BAD.search(branch) or branch == "@":
        raise ConfigError(f"branch {branch!r} is not a valid Git branch name")
    return branch


def environment_name(repo: str, branch: str) -> str:
    """`<repo>-<branch>` in the characters every service accepts; long names get a hash suffix.

    `feature/Foo_bar` → `myrepo-feature-foo-bar`. Lowercase because ECR requires it.
    """
    validate_branch(branch)
    raw = f"{repo.rsplit('/', 1)[-1]}-{branch}"
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    if not name:
        raise ConfigError(f"cannot make an environment name from repo {repo!r} and branch {branch!r}")
    if len(name) > NAME_LIMIT:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[: NAME_LIMIT - 9].rstrip("-") + "-" + digest
    return name


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#L W-]+$")


def validate_schedule(expression: str) -> str:
    """EventBridge `rate(…)` and `cron(…)` rules, checked locally with a message that teaches."""
    m = _RATE.match(expression)
    if m:
        value, unit = int(m[1]), m[2]
        if value < 1:
            raise ConfigError(f"schedule {expression!r}: the rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):
            fix = unit.rstrip("s") if value == 1 else unit + "s"
            raise ConfigError(f"schedule {expression!r}: write rate({value} {fix}) "
                              "(singular unit for 1, plural otherwise)")
        return expression
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6:
            raise ConfigError(f"schedule {expression!r}: cron needs 6 fields (minutes hours "
                              "day-of-month month day-of-week year), e.g. cron(0 6 * * ? *)")
        if not all(_CRON_FIELD.match(f) for f in fields):
            raise ConfigError(f"schedule {expression!r}: unexpected characters in a cron field")
        dom, dow = fields[2], fields[4]
        if (dom == "?") == (dow == "?"):
            raise ConfigError(f"schedule {expression!r}: exactly one of day-of-month and "
                              "day-of-week must be '?', e.g. cron(0 6 * * ? *)")
        return expression
    raise ConfigError(f"schedule {expression!r}: use rate(N minutes|hours|days) or cron(…)")


# --- the spec and the steps ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeploySpec:
    repo: str
    branch: str
    sha: str
    image: str | None = None  # a ready image URI; else the ECR repository's image tagged `sha`
    architecture: str = "x86_64"
    memory: int = 512
    timeout: int = 300  # Lambda's default of 3 s is far too short for a registry scan
    schedule: str = "rate(1 hour)"
    config_ref: str = "/var/task/tagsync.yaml"  # TAGSYNC_CONFIG inside the function
    secret_refs: tuple[str, ...] = ()  # aws-secretsmanager:/aws-ssm: references the run reads
    keep_images: int = 10
    environment: dict[str, str] = field(default_factory=dict)
    builder: str = "auto"  # docker | tagsync | auto: Docker when a daemon answers, else tagsync
    base_image: str | None = None  # tagsync builder: default the Lambda Python image of `python`
    python: str = "3.11"
    config_file: Path | None = None  # built in at config_ref when that is a path in the image

    @property
    def name(self) -> str:
        return environment_name(self.repo, self.branch)

    def check(self) -> None:
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
        if self.builder not in ("auto", "docker", "tagsync"):
            raise ConfigError(f"builder {self.builder!r}: choose auto, docker or tagsync")


@dataclass(frozen=True)
class Step:
    resource: str
    action: str  # create | update | none | delete
    detail: str = ""

    def __str__(self) -> str:
        verb = {"none": "unchanged", "create": "create", "update": "update", "delete": "delete"}[self.action]
        return f"{verb:9s} {self.resource}" + (f"  ({self.detail})" if self.detail else "")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _message(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", exc))


class Deployer:
    """The steps of one environment; `dry=True` reads state and reports, writing nothing."""

    def __init__(self, spec: DeploySpec, *, session: Any = None, dry: bool = False,
                 sleep: Callable[[float], None] = time.sleep, role_retry_budget: float = 120.0,
                 build_template: BuildSpec | None = None,
                 registry_endpoints: Mapping[str, str] | None = None,
                 build_cache: Path | None = None) -> None:
        spec.check()
        import boto3

        self.spec, self.dry, self.sleep = spec, dry, sleep
        # the tagsync builder's knobs that deploy does not decide (pip options, requirements)
        self.build_template = build_template
        self.registry_endpoints = dict(registry_endpoints or {})
        self.build_cache = build_cache
        self.session = session or boto3.session.Session()
        self.steps: list[Step] = []
        self.role_retry_budget = role_retry_budget
        self.role_retries = 0
        self.name = spec.name
        self.tags = {"tagsync:environment": self.name, "tagsync:managed": "true",
                     "tagsync:repo": spec.repo, "tagsync:branch": spec.branch}
        self._clients: dict[str, Any] = {}
        self._identity: tuple[str, str] | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def _step(self, resource: str, action: str, detail: str = "") -> bool:
        """Record a step; True when it should be carried out now."""
        self.steps.append(Step(resource, action, detail))
        if action != "none":
            log.info("%s %s %s", "would" if self.dry else "will", action, resource)
        return action != "none" and not self.dry

    # -- account ----------------------------------------------------------------------------

    def identity(self) -> tuple[str, str]:
        """(account, region); fails clearly without credentials, before anything is created."""
        if self._identity is None:
            self._identity = self._ask_identity()
        return self._identity

    def _ask_identity(self) -> tuple[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        region = self.session.region_name
        if not region:
            raise ConfigError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)")
        try:
            account = self.client("sts").get_caller_identity()["Account"]
        except NoCredentialsError:
            raise ConfigError("no AWS credentials: in GitHub Actions use "
                              "aws-actions/configure-aws-credentials with OIDC; locally set "
                              "AWS_PROFILE or AWS_ACCESS_KEY_ID") from None
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"AWS refused the credentials: {_message(exc)}") from None
        return str(account), str(region)

    # -- steps --------------------------------------------------------------------------------

    def ecr_repository(self) -> str:
        ecr = self.client("ecr")
        lifecycle = json.dumps({"rules": [{
            "rulePriority": 1, "description": f"keep the last {self.spec.keep_images} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                          "countNumber": self.spec.keep_images},
            "action": {"type": "expire"}}]}, sort_keys=True)
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
        fixes = []
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
            ecr.put_image_tag_mutability(repositoryName=self.name, imageTagMutability="IMMUTABLE")
            ecr.put_image_scanning_configuration(repositoryName=self.name,
                                                 imageScanningConfiguration={"scanOnPush": True})
            ecr.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lifecycle)
        return str(repo["repositoryUri"])

    def image(self, repository_uri: str) -> str:
        if self.spec.image:
            self._step(f"image {self.spec.image}", "none", "given with --image")
            return self.spec.image
        uri = f"{repository_uri}:{self.spec.sha}"
        ecr = self.client("ecr")
        try:
            ecr.describe_images(repositoryName=self.name, imageIds=[{"imageTag": self.spec.sha}])
            self._step(f"image {uri}", "none", "already pushed")
            return uri
        except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
            pass
        if self._builder(uri) == "docker":
            if self._step(f"image {uri}", "create", "docker build and push"):
                docker_build_and_push(uri, self.spec.architecture, ecr)
        else:
            files = self._baked_files()
            if self._step(f"image {uri}", "create", "built by tagsync build, no Docker"):
                self._tagsync_build(uri, files)
        return uri

    def _builder(self, uri: str) -> str:
        if self.spec.builder == "tagsync":
            return "tagsync"
        if docker_daemon():
            return "docker"
        if self.spec.builder == "docker":
            raise DeployError(f"{uri} is not in ECR and there is no Docker daemon to build it; use "
                              "--builder tagsync, or build and push it elsewhere and pass --image URI")
        return "tagsync"

    def _baked_files(self) -> dict[str, Path]:
        """The config goes into the image when the function is to read it from there."""
        ref = self.spec.config_ref
        if not ref.startswith(TASK_ROOT + "/"):
            return {}
        if self.spec.config_file is None:
            raise DeployError(f"the function reads its config from {ref} in the image: pass "
                              "--config so it is built in, or --config-ref s3://… or ssm:…")
        return {ref[len(TASK_ROOT) + 1:]: self.spec.config_file}

    def _tagsync_build(self, uri: str, files: dict[str, Path]) -> None:
        from tagsync.build import BlobCache, BuildSpec, Registries, Target, run_build
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
        iam = self.client("iam")
        name = f"{self.name}-role"
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}
        inline = least_privilege_policy(self.spec.secret_refs, self.spec.config_ref, account, region)
        try:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            if self._step(f"IAM role {name}", "create", "Lambda trust, basic execution, "
                                                        f"{len(inline['Statement'])} read grants"):
                created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                          Description=f"tagsync {self.name}",
                                          Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
                arn = created["Role"]["Arn"]
                iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
                if inline["Statement"]:
                    iam.put_role_policy(RoleName=name, PolicyName="tagsync-read",
                                        PolicyDocument=json.dumps(inline))
                return str(arn)
            return f"arn:aws:iam::{account}:role/{name}"
        listed = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        attached = [p["PolicyArn"] for p in listed]
        try:
            current = iam.get_role_policy(RoleName=name, PolicyName="tagsync-read")["PolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
        except iam.exceptions.NoSuchEntityException:
            current = None
        wanted = inline if inline["Statement"] else None
        fixes = ([] if BASIC_EXECUTION in attached else ["basic execution"]) + (
            [] if current == wanted else ["read grants"])
        if self._step(f"IAM role {name}", "update" if fixes else "none", ", ".join(fixes)):
            if BASIC_EXECUTION not in attached:
                iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
            if wanted is None:
                iam.delete_role_policy(RoleName=name, PolicyName="tagsync-read")
            else:
                iam.put_role_policy(RoleName=name, PolicyName="tagsync-read",
                                    PolicyDocument=json.dumps(wanted))
        return str(arn)

    def _environment(self) -> dict[str, str]:
        return {"TAGSYNC_CONFIG": self.spec.config_ref, "TAGSYNC_SHA": self.spec.sha,
                **self.spec.environment}

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

    def function(self, image: str, role: str) -> bool:
        """Create or update code and configuration; True when a new version is due."""
        lam = self.client("lambda")
        env = self._environment()
        try:
            current = lam.get_function(FunctionName=self.name)
        except lam.exceptions.ResourceNotFoundException:
            if self._step(f"Lambda function {self.name}", "create",
                          f"{self.spec.architecture}, {self.spec.memory} MB, {self.spec.timeout} s"):
                self._retry_role(lambda: lam.create_function(
                    FunctionName=self.name, PackageType="Image", Code={"ImageUri": image}, Role=role,
                    Timeout=self.spec.timeout, MemorySize=self.spec.memory,
                    Architectures=[self.spec.architecture], Environment={"Variables": env},
                    Description=f"tagsync {self.spec.repo}@{self.spec.branch}", Tags=self.tags))
                lam.get_waiter("function_active_v2").wait(FunctionName=self.name)
            return True
        conf = current["Configuration"]
        changed = []
        if (current.get("Code", {}).get("ImageUri") != image
                or conf.get("Architectures") != [self.spec.architecture]):
            changed.append("image " + image.rsplit(":", 1)[-1][:12])
        settings = {"Role": role, "Timeout": self.spec.timeout, "MemorySize": self.spec.memory,
                    "Environment": {"Variables": env}}
        now = {**conf, "Environment": {"Variables": conf.get("Environment", {}).get("Variables", {})}}
        differs = [k for k, v in settings.items() if now.get(k) != v]
        if differs:
            changed.append("configuration: " + ", ".join(differs))
        if self._step(f"Lambda function {self.name}", "update" if changed else "none", "; ".join(changed)):
            if differs:
                self._retry_role(lambda: lam.update_function_configuration(FunctionName=self.name,
                                                                           **settings))
                lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
            if changed and changed[0].startswith("image"):
                lam.update_function_code(FunctionName=self.name, ImageUri=image,
                                         Architectures=[self.spec.architecture])
                lam.get_waiter("function_updated_v2").wait(FunctionName=self.name)
        return bool(changed)

    def alias(self, new_version_due: bool) -> str:
        lam = self.client("lambda")
        try:
            alias = lam.get_alias(FunctionName=self.name, Name=ALIAS)
        except lam.exceptions.ResourceNotFoundException:
            alias = None
        if alias is not None and not new_version_due:
            self._step(f"alias {self.name}:{ALIAS}", "none", f"version {alias['FunctionVersion']}")
            return str(alias["AliasArn"])
        if self._step(f"alias {self.name}:{ALIAS}", "create" if alias is None else "update",
                      "to a new published version"):
            version = lam.publish_version(FunctionName=self.name, Description=self.spec.sha)["Version"]
            if alias is None:
                return str(lam.create_alias(FunctionName=self.name, Name=ALIAS, FunctionVersion=version,
                                            Description="what the schedule invokes")["AliasArn"])
            moved = lam.update_alias(FunctionName=self.name, Name=ALIAS, FunctionVersion=version)
            return str(moved["AliasArn"])
        return str(alias["AliasArn"]) if alias else f"(alias {ALIAS} of {self.name})"

    def schedule(self, alias_arn: str) -> None:
        events, lam = self.client("events"), self.client("lambda")
        try:
            rule = events.describe_rule(Name=self.name)
        except events.exceptions.ResourceNotFoundException:
            rule = None
        if (rule is None or rule.get("ScheduleExpression") != self.spec.schedule
                or rule.get("State") != "ENABLED"):
            action = "create" if rule is None else "update"
            if self._step(f"EventBridge rule {self.name}", action, self.spec.schedule):
                arn = events.put_rule(Name=self.name, ScheduleExpression=self.spec.schedule, State="ENABLED",
                                      Description=f"tagsync {self.name}",
                                      Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])["RuleArn"]
                rule = {"Arn": arn}
        else:
            self._step(f"EventBridge rule {self.name}", "none", self.spec.schedule)
        if rule is None:  # dry run of a first deploy
            self._step(f"schedule target and invoke permission for {self.name}:{ALIAS}", "create")
            return
        targets = events.list_targets_by_rule(Rule=self.name)["Targets"]
        if [t["Arn"] for t in targets] != [alias_arn]:
            if self._step(f"schedule target {self.name} → {ALIAS}", "create" if not targets else "update"):
                stale = [t["Id"] for t in targets if t["Arn"] != alias_arn]
                if stale:
                    events.remove_targets(Rule=self.name, Ids=stale)
                events.put_targets(Rule=self.name, Targets=[{"Id": TARGET_ID, "Arn": alias_arn}])
        else:
            self._step(f"schedule target {self.name} → {ALIAS}", "none")
        if self._has_permission():
            self._step(f"invoke permission for the rule on {self.name}:{ALIAS}", "none")
        elif self._step(f"invoke permission for the rule on {self.name}:{ALIAS}", "create"):
            lam.add_permission(FunctionName=self.name, Qualifier=ALIAS, StatementId=STATEMENT_ID,
                               Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                               SourceArn=rule["Arn"])

    def _has_permission(self) -> bool:
        lam = self.client("lambda")
        try:
            policy = json.loads(lam.get_policy(FunctionName=self.name, Qualifier=ALIAS)["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            return False
        return any(s.get("Sid") == STATEMENT_ID for s in policy.get("Statement", []))

    # -- the whole deploy -------------------------------------------------------------------------

    def deploy(self) -> list[Step]:
        account, region = self.identity()
        repository = self.ecr_repository()
        image = self.image(repository)
        role = self.role(account, region)
        due = self.function(image, role)
        alias_arn = self.alias(due)
        self.schedule(alias_arn)
        return self.steps


def least_privilege_policy(refs: tuple[str, ...], config_ref: str, account: str,
                           region: str) -> dict[str, Any]:
    """Read access to exactly the secrets, parameters and config object the run names."""
    from tagsync.secrets import SecretRef

    secrets, params, objects = [], [], []
    for text in refs:
        ref = SecretRef.parse(text)
        if ref.scheme == "aws-secretsmanager":
            name = ref.name.partition("#")[0]
            # Secret ARNs end in a random 6-character suffix: match it, nothing more.
            secrets.append(name if name.startswith("arn:") else
                           f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????")
        elif ref.scheme == "aws-ssm":
            params.append(ref.name if ref.name.startswith("arn:") else
                          f"arn:aws:ssm:{region}:{account}:parameter/{ref.name.lstrip('/')}")
    if config_ref.startswith("ssm:"):
        params.append(f"arn:aws:ssm:{region}:{account}:parameter/{config_ref[4:].lstrip('/')}")
    elif config_ref.startswith("s3://"):
        objects.append(f"arn:aws:s3:::{config_ref[5:]}")
    statements = []
    if secrets:
        statements.append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": sorted(set(secrets))})
    if params:
        statements.append({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": sorted(set(params))})
    if objects:
        statements.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": sorted(set(objects))})
    return {"Version": "2012-10-17", "Statement": statements}


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


# --- rollback and destroy ----------------------------------------------------------------------


def rollback(repo: str, branch: str, *, session: Any = None) -> tuple[str, str]:
    """Move `live` to the version published before the current one; (from, to)."""
    import boto3

    name = environment_name(repo, branch)
    lam = (session or boto3.session.Session()).client("lambda")
    try:
        current = lam.get_alias(FunctionName=name, Name=ALIAS)["FunctionVersion"]
    except lam.exceptions.ResourceNotFoundException:
        raise DeployError(f"{name} has no `{ALIAS}` alias: nothing deployed to roll back") from None
    versions = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
        versions += [int(v["Version"]) for v in page["Versions"] if v["Version"] != "$LATEST"]
    older = [v for v in versions if v < int(current)]
    if not older:
        raise DeployError(f"{name}: version {current} is the oldest; nothing to roll back to")
    target = str(max(older))
    lam.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=target)
    return current, target


def destroy(repo: str, branch: str, *, delete_repository: bool = False, session: Any = None,
            dry: bool = False) -> list[Step]:
    """Remove what tagsync created for this environment (checked by its tags)."""
    import boto3

    name = environment_name(repo, branch)
    session = session or boto3.session.Session()
    events, lam, iam, ecr = (session.client(s) for s in ("events", "lambda", "iam", "ecr"))
    steps: list[Step] = []

    def step(resource: str) -> bool:
        steps.append(Step(resource, "delete"))
        return not dry

    try:
        rule = events.describe_rule(Name=name)
        tags = {t["Key"]: t["Value"] for t in events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]}
        if tags.get("tagsync:environment") == name and step(f"EventBridge rule {name}"):
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]]
            if ids:
                events.remove_targets(Rule=name, Ids=ids)
            events.delete_rule(Name=name)
    except events.exceptions.ResourceNotFoundException:
        pass
    try:
        fn = lam.get_function(FunctionName=name)
        if fn.get("Tags", {}).get("tagsync:environment") == name and step(f"Lambda function {name}"):
            lam.delete_function(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        pass
    role = f"{name}-role"
    try:
        tags = {t["Key"]: t["Value"] for t in iam.get_role(RoleName=role)["Role"].get("Tags", [])}
        if tags.get("tagsync:environment") == name and step(f"IAM role {role}"):
            for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
            for p in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=p)
            iam.delete_role(RoleName=role)
    except iam.exceptions.NoSuchEntityException:
        pass
    if delete_repository:
        try:
            repo_arn = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryArn"]
            tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo_arn)["tags"]}
            if tags.get("tagsync:environment") == name and step(f"ECR repository {name} (and its images)"):
                ecr.delete_repository(repositoryName=name, force=True)
        except ecr.exceptions.RepositoryNotFoundException:
            pass
    return steps
