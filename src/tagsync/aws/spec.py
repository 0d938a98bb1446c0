"""What a deploy is asked for: repository, branch, commit, image, settings and environment
variables, all checked (`DeploySpec.check`) before any AWS call, so a refused request creates
nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tagsync.aws.names import (
    environment_id,
    environment_name,
    validate_branch,
    validate_repo,
    validate_schedule,
)
from tagsync.errors import ConfigError

TASK_ROOT = "/var/task"  # LAMBDA_TASK_ROOT of the AWS base images
# variables tagsync itself sets; the two lists say which of the others it manages
OWN_ENV = ("TAGSYNC_CONFIG", "TAGSYNC_ORG_CONFIG", "TAGSYNC_SHA", "TAGSYNC_MANAGED_ENV",
           "TAGSYNC_SECRET_ENV")
_ENV_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]+$")
_RESERVED_ENV = re.compile(r"^(AWS_|LAMBDA_|_)")
ENV_BYTES = 4096  # Lambda: all variables together


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
