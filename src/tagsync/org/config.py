"""`org.yaml`, and the trust boundary between it and each repository's own `tagsync.yaml`.

The organisation's config holds everything that can reach a secret or a host: the GitHub
credentials, the registries and their credentials, the trusted root, the run's limits. A
repository's config says only what to follow in its own files and how to propose changes to its
own branches. Anything else in it is refused with its key and line, before any request is made
for that repository, so a repository author can never point the organisation's credentials at a
host of their choosing or write to another repository.
"""

# No `from __future__ import annotations`: pydantic evaluates the annotations (see config.py).
import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from tagsync.config import (
    Config,
    GitHubAppConfig,
    RegistryConfig,
    RunConfig,
    _Model,
    parse_config,
)
from tagsync.config_words import line_of
from tagsync.errors import ConfigError
from tagsync.reference import host_key, host_pattern
from tagsync.secrets import validate_ref

# What a repository's config may say under `github:`: how to propose, never where or as whom.
REPO_GITHUB_KEYS = frozenset({"branch", "mode", "pr_branch", "pr_title", "labels", "reviewers",
                              "team_reviewers", "auto_merge", "message"})
# Top-level keys a repository's config may hold; `registries`, `git`, `run` are the org's.
REPO_KEYS = frozenset({"catalogs", "github"})
_SECRET_SCHEMES = ("env:", "file:", "aws-secretsmanager:", "aws-ssm:")


class OrgGitHub(_Model):
    """How tagsync reaches the organisation's repositories (one token or one App for all)."""

    api_url: str = "https://api.github.com"
    """The REST API root; GHES: https://HOST/api/v3."""
    graphql_url: str | None = None
    """The GraphQL endpoint; default derived from api_url."""
    api: Literal["graphql", "rest"] = "graphql"
    """graphql (one verified commit per run), or rest."""
    token: str | None = None
    """A secret reference, e.g. env:GITHUB_TOKEN."""
    app: GitHubAppConfig | None = None
    """A GitHub App installed on the organisation (`installation_id` required here): runs the
    repositories the installation was granted, never the org's other public ones."""
    retries: int = Field(3, ge=0, le=10)
    """How many times a moved branch is re-read and re-planned."""
    max_wait: float = Field(60.0, ge=0)
    """The longest rate-limit wait (seconds) sat out before failing."""

    _refs = field_validator("token")(validate_ref)

    @model_validator(mode="after")
    def _one_auth(self) -> "OrgGitHub":
        if bool(self.token) == bool(self.app):
            raise ValueError("set exactly one of `token` (e.g. env:GITHUB_TOKEN) or `app`")
        if self.app is not None and self.app.installation_id is None:
            raise ValueError("`app.installation_id` is required in organisation mode (the "
                             "installation on the organisation)")
        return self


class RepoSelection(_Model):
    """Which of the organisation's repositories are kept in step: globs on the name."""

    include: list[str] = Field(default_factory=lambda: ["*"])
    """Name globs (`*`, `?`, `[abc]`; any case), e.g. `svc-*`; every repository by default."""
    exclude: list[str] = Field(default_factory=list)
    """Name globs left out, even when included."""
    forks: bool = False
    """Run forks too. Off by default: a fork's config was written upstream, by people outside
    the organisation, and would run with the organisation's credentials."""

    def admits(self, name: str) -> bool:
        """Case-insensitive, as GitHub's names are: `Legacy-pay` is excluded by `legacy-*`."""
        name = name.lower()
        return (any(fnmatch.fnmatchcase(name, g.lower()) for g in self.include)
                and not any(fnmatch.fnmatchcase(name, g.lower()) for g in self.exclude))


class RepoShare(_Model):
    """What one repository may spend of the organisation's run, so none starves the others."""

    max_duration: float | None = Field(None, gt=0)
    """Seconds a repository may take to read its files, and again to be planned and published;
    default: its even share of the run's time left (at least 30 s), or 600 s without a bound."""
    github_requests: int = Field(1000, ge=1)
    """GitHub requests one repository may send (its files, its commit or pull request)."""
    registry_questions: int = Field(1000, ge=1)
    """Registry questions newly asked for one repository beyond the shared ones (signatures,
    ages, explanations, a re-plan's)."""


class DashboardConfig(_Model):
    """An issue with a row per repository, updated in place after every run."""

    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """owner/name of the repository that holds the dashboard issue."""
    title: str = "tagsync: image updates across the organisation"
    """The issue's title when tagsync opens it (found again by a marker, not by title)."""


class OrgConfig(_Model):
    """One deployment for a whole organisation."""

    organisation: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
    """The GitHub organisation (or user) whose repositories are kept in step."""
    github: OrgGitHub
    """Credentials and endpoints for GitHub."""
    repositories: RepoSelection = Field(default_factory=dict, validate_default=True)
    """Which repositories; archived ones are always skipped."""
    config_paths: list[str] = Field(["tagsync.yaml", ".github/tagsync.yaml"], min_length=1)
    """Where a repository keeps its own config (one of them: a repository with two fails)."""
    registries: list[RegistryConfig] = Field(default_factory=list)
    """The registries and their credentials: the organisation's alone."""
    allowed_registries: list[str] | None = None
    """The registry hosts repositories' references may make tagsync ask (globs like
    `*.example.com`; each host under `registries:` too); a reference on another host is reported
    and never asked. Unset: any host."""
    trusted_root: str | None = None
    """A pinned Sigstore trusted_root.json for repositories' keyless verify policies."""
    run: RunConfig = Field(default_factory=dict, validate_default=True)
    """Limits of the whole organisation's run (max_duration covers every repository)."""
    per_repository: RepoShare = Field(default_factory=dict, validate_default=True)
    """One repository's share of the run: its time, GitHub requests and registry questions."""
    onboarding: bool = False
    """Offer a repository without a config one pull request with the config `tagsync init`
    would write (never twice: a closed one is the answer)."""
    dashboard: DashboardConfig | None = None
    """An issue kept up to date with every repository's state (optional)."""
    base_dir: Path = Field(Path("."), exclude=True)

    @field_validator("allowed_registries")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [host_pattern(v) for v in value]

    def allowed_hosts(self) -> tuple[str, ...] | None:
        """The allow-list as `reference.host_allowed` reads it: the listed hosts and globs, and
        every host the organisation configured (its credentials go nowhere else); None: any."""
        if self.allowed_registries is None:
            return None
        return (*self.allowed_registries, *(host_key(r.host) for r in self.registries))


def org_secret_refs(org: OrgConfig) -> tuple[str, ...]:
    """Every secret reference the organisation's config names (its function's role may read
    exactly these)."""
    refs = [org.github.token, org.github.app.private_key if org.github.app else None,
            *(r.password for r in org.registries)]
    return tuple(r for r in refs if r)


def load_org_config(path: Path) -> OrgConfig:
    """Read and validate `org.yaml`; every failure is a ConfigError with file and line."""
    from tagsync.config_yaml import read_text

    return parse_org_config(read_text(path, str(path)), str(path), path.parent)


def parse_org_config(text: str, file: str, base_dir: Path) -> OrgConfig:
    """As hardened as `tagsync.yaml`: NUL, depth, duplicate keys, size (line:col, exit 2), and
    every mistake in words, never quoting a value."""
    from tagsync.config_words import in_words
    from tagsync.config_yaml import load_yaml

    root, data = load_yaml(text, file)
    if not isinstance(data, dict):
        raise ConfigError("an organisation config must be a mapping with `organisation:` and "
                          "`github:`", file=file, line=1)
    data.setdefault("base_dir", base_dir)
    try:
        return OrgConfig.model_validate(data)
    except ValidationError as exc:
        raise in_words(exc, OrgConfig, data, root, file) from None


def repo_config(org: OrgConfig, repo: str, default_branch: str, text: str, file: str) -> Config:
    """A repository's `tagsync.yaml` as a full `Config`: its catalogs and publishing choices,
    the organisation's GitHub credentials (for this repository only), registries and limits.
    Raises ConfigError naming `file` (`owner/name:path`), key and line for anything the
    repository may not say."""

    def overlay(data: dict[str, Any], root: yaml.Node | None) -> dict[str, Any]:
        check_repo_config(data, root, file, org)
        own = dict(data.get("github") or {})
        github: dict[str, Any] = {
            "branch": default_branch, **own, "repo": repo, "api_url": org.github.api_url,
            "graphql_url": org.github.graphql_url, "api": org.github.api,
            "retries": org.github.retries, "max_wait": org.github.max_wait}
        if org.github.token:
            github["token"] = org.github.token
        else:
            github["app"] = org.github.app
        catalogs = data.get("catalogs")
        if isinstance(catalogs, list):  # anything else: the schema says what is wrong
            catalogs = [_with_root(c, org) for c in catalogs]
        return {**data, "catalogs": catalogs, "github": github, "registries": org.registries,
                "run": org.run}

    config = parse_config(text, file, org.base_dir, overlay)
    allowed = org.allowed_hosts()
    return config if allowed is None else config.allowing(allowed)


def _with_root(catalog: Any, org: OrgConfig) -> Any:
    """A keyless verify policy in a repository uses the organisation's pinned trusted root."""
    if not isinstance(catalog, dict) or org.trusted_root is None:
        return catalog
    out = dict(catalog)
    for key in ("verify",):
        policy = out.get(key)
        if isinstance(policy, dict) and "key" not in policy:
            out[key] = {**policy, "trusted_root": str(org.base_dir / org.trusted_root)}
    images = out.get("verify_images")
    if isinstance(images, dict):
        out["verify_images"] = {
            glob: ({**p, "trusted_root": str(org.base_dir / org.trusted_root)}
                   if isinstance(p, dict) and "key" not in p else p)
            for glob, p in images.items()}
    return out


def check_repo_config(data: dict[str, Any], root: yaml.Node | None, file: str,
                      org: OrgConfig) -> None:
    """The trust boundary, as a check on the parsed data: raise ConfigError at the first key a
    repository may not set. Never quotes a value (it may be a secret pasted by mistake)."""

    def refuse(loc: tuple[Any, ...], why: str) -> None:
        line, column = line_of(root, loc)
        key = ".".join(str(p) for p in loc)
        raise ConfigError(f"{key}: {why}", file=file, line=line, column=column)

    for key in data:
        if key not in REPO_KEYS:
            owner = {"registries": "registries and their credentials are the organisation's "
                                   "(org config)",
                     "git": "a repository is published through the organisation's GitHub access",
                     "run": "the run's limits are the organisation's (org config)",
                     "allowed_registries": "the hosts tagsync may ask are the organisation's "
                                           "(org config)"}
            refuse((key,), "a repository's config may not set this: "
                   + owner.get(str(key), f"only {', '.join(sorted(REPO_KEYS))} are read here"))
    github = data.get("github")
    if github is not None:
        if not isinstance(github, dict):
            refuse(("github",), "must be a mapping")
        for key in github:
            if key not in REPO_GITHUB_KEYS:
                refuse(("github", key), "a repository's config may set only "
                       + ", ".join(sorted(REPO_GITHUB_KEYS))
                       + " here (the repository, endpoints and credentials are the organisation's)")
        for key in ("message", "pr_title"):  # a squash merge makes the title a commit's
            words = github.get(key)
            if isinstance(words, str) and ("#" in words or "@" in words):
                refuse(("github", key), "may not hold `#` or `@`: GitHub acts on a pushed "
                       "commit's words (`fixes acme/other#1` closes another repository's "
                       "issue, with the organisation's credentials; `@` mentions)")
    catalogs = data.get("catalogs")
    for i, catalog in enumerate(catalogs if isinstance(catalogs, list) else []):
        if not isinstance(catalog, dict):
            continue
        policies: list[tuple[tuple[Any, ...], Any]] = [(("catalogs", i, "verify"),
                                                        catalog.get("verify"))]
        images = catalog.get("verify_images")
        if isinstance(images, dict):
            policies += [(("catalogs", i, "verify_images", g), p) for g, p in images.items()]
        for loc, policy in policies:
            if not isinstance(policy, dict):
                continue
            if "trusted_root" in policy:
                refuse((*loc, "trusted_root"), "a repository may not name files on the runner; "
                       "the organisation's `trusted_root` is used")
            if "key" not in policy and org.trusted_root is None:
                refuse(loc, "keyless verification needs the organisation's `trusted_root` "
                       "(org config)")
            pem = policy.get("key")
            if isinstance(pem, str) and not pem.lstrip().startswith("-----BEGIN"):
                kind = "a secret reference" if pem.startswith(_SECRET_SCHEMES) else "a file path"
                refuse((*loc, "key"), f"is {kind}; a repository's config may hold a public key "
                       "only inline (PEM text), never a reference to the runner's secrets or files")
