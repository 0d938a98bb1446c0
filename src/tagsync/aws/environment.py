"""One environment as a deploy finds and changes it: the request, the AWS clients, the caller's
account, what preflight read (used once by the steps) and the steps recorded so far. The step
groups (`artifact`, `function`) and the `Deployer` build on it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsync.aws.calls import Step, identity
from tagsync.aws.names import tag_value
from tagsync.aws.spec import DeploySpec
from tagsync.errors import ConfigError

if TYPE_CHECKING:
    from tagsync.image.pipeline import BuildSpec

log = logging.getLogger("tagsync.aws.deploy")  # every step's line names the deploy


class Environment:
    """The state the steps share; `dry=True` reads state and reports, writing nothing."""

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

    def _missing_tags(self, tags: dict[str, str]) -> dict[str, str]:
        """Our tags an adopted resource lacks (those it has are checked by `_owned`)."""
        return {k: v for k, v in self.tags.items() if tags.get(k) != v}
