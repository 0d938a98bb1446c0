"""`tagsync.yaml`: what to watch, where it is written, and where to publish.

Validation errors name the key path and the line in the config file, because a user staring at
"field required" with no position gives up.
"""

# No `from __future__ import annotations` here: pydantic would eval every field's annotation
# string at import (~3 ms of a cold start); self-references in validators are quoted instead.
import fnmatch
import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tagsync.catalog.append import template_root
from tagsync.catalog.path import WILDCARD, parse_path
from tagsync.errors import CatalogError, ConfigError, PathSyntaxError, TagsyncError
from tagsync.http_policy import redact
from tagsync.policy import Kind, Policy, parse_age
from tagsync.reference import ImageName, host_allowed, parse_ecr_host
from tagsync.secrets import resolve, validate_ref
from tagsync.verify.policy import VerifyPolicy

TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
CONFIG_NAMES = ("tagsync.yaml", "tagsync.yml")  # a config's names: found by name, never a catalog


class FieldError(ValueError):
    """A check of a whole mapping whose fault is one key's: errors point at that key's line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class DigestFormat(StrEnum):
    """How a digest is written in the catalog."""

    full = "full"  # sha256:<64 hex> of the manifest (or index)
    short = "short"  # first 12 hex of the manifest digest
    image_id = "image-id"  # first 12 hex of the config digest, as `docker images` shows


def secret_from_env(variable: str | None, owner: str) -> str | None:
    """Secrets are named in the config, never written in it; a named one must exist."""
    return resolve(f"env:{variable}", owner) if variable else None


class _Model(BaseModel):
    # Schemas are built on first use, not at import: a cold start pays only for what it validates.
    # A nested model's default is `Field(default_factory=dict, validate_default=True)`, checked by
    # its parent's validator: `default_factory=PolicyConfig` would build one more for it alone.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class PolicyConfig(_Model):
    """Which tag an entry follows (see `tagsync.policy`); `same` keeps the tag, follows its digest."""

    kind: Kind = Kind.same
    """How the tag is chosen: same, semver, regex, numeric or newest."""
    range: str | None = None
    """semver: the versions admitted, e.g. `>=1.2 <2`, `^1.2`, `~1.2.3` (at most 256 characters)."""
    prerelease: bool = False
    """semver: admit pre-releases such as `1.3.0-rc1`."""
    include: str | None = None
    """A regular expression (Python syntax) a tag must match; for regex and numeric its groups
    order the tags. Bounded: at most 1000 characters, time-limited (see Tag policies)."""
    exclude: str | None = None
    """A regular expression (Python syntax) no chosen tag may match; bounded like `include`."""
    min_age: str | None = None
    """A new tag or digest waits until it has existed this long (`30m`, `12h`, `3d`, `2w`); `0s`
    is no wait, and asks no registry for ages."""
    within: Literal["major", "minor"] | None = None
    """semver: each reference moves only to tags of its own major (or major.minor) version, written
    the same way (`v`, number of parts, suffix such as `-alpine`); a tag that is no version keeps
    its tag and follows its digest."""

    @field_validator("min_age")
    @classmethod
    def _is_age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_age(value)
        return value

    @model_validator(mode="after")
    def _sensible(self) -> "PolicyConfig":
        self.to_policy().check()
        return self

    def to_policy(self) -> Policy:
        age = parse_age(self.min_age) if self.min_age else None
        return Policy(self.kind, self.range, self.prerelease, self.include, self.exclude,
                      age if age else None, self.within)


class NewImagesConfig(_Model):
    """Add repositories that appear in the registry as new catalog entries, from a template.

    The namespace is the image template's (`lablup/kernel-{name}` → `lablup`, names matching
    `kernel-*`). `template` is YAML for one entry; `${name}` (any image template field),
    `${repository}`, `${tag}` and `${digest}` are filled in and written in the template's quoting.
    """

    template: str
    """YAML of one new entry; `${name}` (any image template field), `${repository}`, `${tag}`, `${digest}`
    are filled in."""
    tag: str = "latest"
    """The tag a new entry starts with, unless the policy chooses one."""
    exclude: list[str] = []
    """Repository names (globs) never added."""

    @field_validator("template")
    @classmethod
    def _is_mapping(cls, value: str) -> str:
        try:
            data = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"template is not YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("template must be a YAML mapping (one catalog entry)")
        try:  # what a run would refuse when it adds an entry, refused before any run
            template_root(value)
        except CatalogError as exc:
            raise ValueError(exc.message) from None
        return value


SHAPES = ("paths", "auto", "kubernetes", "flux", "argocd", "helm", "kustomize", "compose", "actions",
          "gitlab", "dockerfile", "markers")
Shape = Literal["paths", "auto", "kubernetes", "flux", "argocd", "helm", "kustomize", "compose",
                "actions", "gitlab", "dockerfile", "markers"]


class MarkerPolicy(_Model):
    """What a marker comment names: the image it follows and the policy that picks its tag.

    Keyed by the marker's name: Flux's `# {"$imagepolicy": "flux-system:podinfo"}` names
    `flux-system:podinfo`; tagsync's own `# tagsync: podinfo` names `podinfo`.
    """

    image: str
    """The image the marked value follows (its registry and repository)."""
    policy: PolicyConfig = Field(default_factory=dict, validate_default=True)
    """How the marked value's tag is chosen."""

    @field_validator("image")
    @classmethod
    def _is_name(cls, value: str) -> str:
        ImageName.parse(value)
        return value


class FollowConfig(_Model):
    """Promotion: take references from another catalog once it has held them long enough."""

    catalog: str
    """The catalog whose references this one takes (e.g. staging)."""
    after: str = "24h"
    """How long that catalog must have held a value, by its Git history, before it is taken."""

    @field_validator("after")
    @classmethod
    def _is_age(cls, value: str) -> str:
        parse_age(value)
        return value


class CatalogConfig(_Model):
    """Where image references are written and how to follow them.

    `kind: paths` (the default when `image:` is set) describes a catalog field by field;
    every other kind finds references by the file's shape (`auto` detects it per file).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Names the catalog in messages, commit subjects and the default PR branch."""
    file: str | None = None
    """One file, relative to the repository root (or the config's folder without git/github)."""
    files: list[str] | None = None
    """Globs in the tree (`*`, `?`, `**` across folders); `!glob` excludes."""
    kind: Shape | None = None
    """The file shape: auto (detected per file), kubernetes (with Flux and Argo CD kinds; `flux`
    and `argocd` read the same way), helm, kustomize, compose, actions, gitlab, dockerfile,
    markers, or paths (field by field). Default: paths with `image:`, else auto."""
    doc: int = Field(0, ge=0)
    """paths: which document of a multi-document file (0 = first)."""
    entries: str = "."
    """paths: where the entries are, e.g. `.images[*]`; `[*]` walks a list or a mapping's values; `.` is
    the whole document."""
    image: str | None = None
    """paths: the image name, with `{field}` taken from each entry (dotted paths allowed)."""
    pairs: str | None = None
    """paths: a list of [tag, digest] pairs under each entry."""
    tag: str | None = None
    """paths: the field holding the tag (moved by a policy other than same)."""
    digest: str | None = None
    """paths: the field holding the digest beside `tag`."""
    digest_format: DigestFormat = DigestFormat.full
    """paths: full (sha256:…), short (12 hex of the manifest digest) or image-id (12 hex of the config
    digest)."""
    platform: str | None = Field(None, pattern=r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9.]+)?$")
    """Pick one platform of a multi-arch index, e.g. linux/arm64."""
    placeholders: tuple[str, ...] = ("x", "")
    """paths: digest values never filled in (left alone)."""
    update_placeholders: bool = False
    """paths: fill placeholder digests too."""
    pointer_prefix: str = ":"
    """paths: a digest starting with this points at another tag and is left alone."""
    policy: PolicyConfig = Field(default_factory=dict, validate_default=True)
    """How tags are chosen for every image of the catalog."""
    policies: dict[str, PolicyConfig] = {}
    """Image name glob -> policy; the first match wins over `policy`."""
    new_tags: bool = False
    """paths: append tags the policy admits as new [tag, digest] pairs."""
    new_images: NewImagesConfig | None = None
    """paths: add repositories that appear in the registry as entries from a template."""
    pin_digests: bool = False
    """Add @sha256:… (or a digest key) to references written without one."""
    verify: VerifyPolicy | None = None
    """A digest is written only if its signature satisfies this policy (see docs/verify.md)."""
    verify_images: dict[str, VerifyPolicy] = {}
    """Image name glob -> verify policy; the first match wins over `verify`."""
    refuse_rollback: bool = False
    """Refuse a new digest built before the one it replaces (by the images' `created`)."""
    follow: FollowConfig | None = None
    """Take references from another catalog (promotion) instead of asking registries."""
    markers: dict[str, MarkerPolicy] = {}
    """Marker name -> the image and policy a marker comment names."""
    ignore: list[str] = []
    """Image name globs left alone, e.g. `docker.io/library/postgres`, `ghcr.io/acme/*`."""

    @property
    def shape(self) -> str:
        return self.kind or ("paths" if self.image is not None else "auto")

    @property
    def patterns(self) -> list[str]:
        """The file globs, `file:` included (a plain path is a glob matching itself)."""
        return [*([self.file] if self.file else []), *(self.files or [])]

    @field_validator("entries", "pairs", "tag", "digest")
    @classmethod
    def _is_path(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_path(value)
            except PathSyntaxError as exc:
                raise ValueError(exc.message) from exc
        return value

    @field_validator("image")
    @classmethod
    def _is_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        probe = TEMPLATE_FIELD.sub("x", value)
        if "{" in probe or "}" in probe:
            raise ValueError(f"unbalanced braces in image template {value!r}")
        if not TEMPLATE_FIELD.search(value):
            ImageName.parse(value)  # a fixed name must already be valid
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> "CatalogConfig":
        if not self.patterns:
            raise ValueError("set `file` (one path) or `files` (globs such as deploy/**/*.yaml)")
        if any(not p.lstrip("!") or p.lstrip("!").startswith("/") or ".." in p.split("/")
               for p in self.patterns):
            raise ValueError("file patterns must be relative to the repository root, without `..`")
        if self.file is None and all(p.startswith("!") for p in self.files or []):
            raise ValueError("`files` needs at least one pattern that is not an exclusion (`!…`)")
        if (self.verify or self.verify_images) and self.digest_format is not DigestFormat.full:
            raise ValueError("`verify` checks full digests: it needs `digest_format: full`")
        verified = "verify" if self.verify else "verify_images"
        if (self.verify or self.verify_images) and self.shape != "paths" and not self.pin_digests:
            raise FieldError(verified, "`verify` checks the digest tagsync writes: set "
                             "`pin_digests: true` so every reference carries one")
        if self.shape != "paths":
            extra = [k for k in ("image", "pairs", "tag", "digest", "new_images") if getattr(self, k)]
            extra += ["new_tags"] if self.new_tags else []
            extra += ["entries"] if self.entries != "." else []
            extra += ["digest_format"] if self.digest_format is not DigestFormat.full else []
            if extra:
                raise ValueError(f"`{extra[0]}` describes a catalog field by field (`kind: paths`); "
                                 f"`kind: {self.shape}` finds references by the file's shape")
            return self
        if self.image is None:
            raise ValueError("`kind: paths` needs `image:` (e.g. lablup/kernel-{name})")
        if self.pairs is None and self.tag is None:
            raise ValueError("set either `pairs` (a list of [tag, digest]) or `tag` (+ `digest`)")
        if self.pairs is not None and (self.digest is not None or self.tag is not None):
            raise ValueError("`pairs` and `tag`/`digest` are two shapes; choose one")
        if self.digest is not None and self.tag is None:
            raise ValueError("`digest` needs `tag`: the field holding the tag to follow")
        if (self.verify or self.verify_images) and self.tag is not None and self.digest is None:
            raise FieldError("tag", f"`verify` checks the digest tagsync writes, and `tag: {self.tag}` "
                             "has no digest beside it: add `digest:` (the field holding the "
                             "image's digest), or the tag would move to an image nobody checked")
        if ((self.verify or self.verify_images) and self.new_images is not None
                and "${digest}" not in self.new_images.template):
            raise FieldError("new_images", "`verify` checks the digest tagsync writes, and the "
                             "`new_images.template` writes none: add `${digest}` to it")
        # The default applies unless a catch-all `"*"` entry shadows it.
        policies = [*self.policies.values(), *([self.policy] if "*" not in self.policies else [])]
        if self.tag is not None and self.digest is None and any(p.kind is Kind.same for p in policies):
            raise ValueError("`tag` without `digest` only makes sense with a policy that moves the "
                             "tag (semver, regex, numeric, newest)")
        if self.new_images is not None:
            path = parse_path(self.entries)
            if not path or path[-1] is not WILDCARD or WILDCARD in path[:-1]:
                raise ValueError("`new_images` adds to the list `entries` walks: `entries` must end "
                                 "in [*] with no other wildcard (e.g. .images[*])")
            if not self.template_fields():
                raise ValueError("`new_images` needs an image template with a {field}, "
                                 "e.g. lablup/kernel-{name}")
            self._template_pattern()
        if self.new_tags and self.pairs is None:
            raise ValueError("`new_tags` appends [tag, digest] pairs: it needs the `pairs` shape")
        if self.new_tags and any(p.kind is Kind.same and not p.include for p in policies):
            raise ValueError("`new_tags` needs a policy that says which tags to add "
                             "(a kind other than `same`, or `include`)")
        return self

    def _template_pattern(self) -> None:
        """`new_images` matches every listed repository name against the image template as a
        regular expression: it must be one tagsync evaluates (`tagsync.patterns`)."""
        from tagsync.find.paths import repository_pattern
        from tagsync.patterns import check

        assert self.image is not None
        try:
            pattern = repository_pattern(self.image)[2]
        except TagsyncError:
            return  # not an image name once filled in: the run says so, as before
        try:
            check(pattern)
        except ValueError as exc:
            raise FieldError("image", f"with `new_images`, the image template is matched as a "
                             f"regular expression, and {exc}") from None

    def verify_for(self, image: str) -> VerifyPolicy | None:
        for pattern, policy in self.verify_images.items():
            if fnmatch.fnmatchcase(image, pattern):
                return policy
        return self.verify

    def policy_for(self, image: str) -> Policy:
        for pattern, policy in self.policies.items():
            if fnmatch.fnmatchcase(image, pattern):
                return policy.to_policy()
        return self.policy.to_policy()

    def template_fields(self) -> list[str]:
        return TEMPLATE_FIELD.findall(self.image or "")


class RegistryConfig(_Model):
    """How to reach one registry host named by the catalog's images."""

    host: str
    """The registry host as image names spell it (docker.io, ghcr.io, 127.0.0.1:5000)."""
    kind: Literal["oci", "ecr", "layout"] | None = None
    """oci, ecr or layout; default from `url`/`layout`/the host name."""
    url: str | None = None
    """Where to reach it, scheme included; `http://` for a plain-HTTP registry."""
    hub_url: str | None = None
    """docker.io: Docker Hub's API for listing a namespace."""
    layout: str | None = None
    """A folder of OCI image layouts (`<layout>/<repository>/index.json`) to read instead."""
    region: str | None = None
    """ECR: the region; default from the host name."""
    registry_id: str | None = None
    """ECR: the account id; default from the host name."""
    insecure: bool = False
    """Without `url`: speak plain HTTP to this host."""
    username: str | None = None
    """The registry user (a Hub access token's owner, a robot account)."""
    password: str | None = None
    """A secret reference: env:NAME, file:PATH, aws-secretsmanager:ID[#key], aws-ssm:NAME."""
    password_env: str | None = None
    """Shorthand for `password: env:NAME`."""
    docker_config: bool = True
    """Without `username`: use `docker login`'s config.json auths."""
    max_concurrency: int = Field(8, ge=1, le=256)
    """Connections to this registry at once."""
    requests_per_second: float | None = Field(None, gt=0)
    """A steady request rate for this registry (bursts up to 1 s)."""
    ratelimit_reserve: int = Field(10, ge=0)
    """Docker Hub: no pulls (GETs) once ratelimit-remaining is this low; deferred to the next run."""
    explain: bool | None = None
    """Read the labels of this registry's changed images to explain each bump (default: `run.explain`)."""

    _refs = field_validator("password")(validate_ref)

    @field_validator("url", "hub_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        """`127.0.0.1:5000` (no scheme) would otherwise fail deep in the HTTP client."""
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{redact(value, one_url=True)!r} is not an http:// or https:// URL "
                             "(e.g. https://registry.example.com or http://127.0.0.1:5000)")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError(f"{redact(value, one_url=True)!r} has an invalid port") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "RegistryConfig":
        if self.url and self.layout:
            raise ValueError("a registry is either reached at `url` or read from `layout`")
        if self.password and self.password_env:
            raise ValueError("`password` and `password_env` say the same thing; keep one")
        if (self.password or self.password_env) and self.username is None:
            raise ValueError("a password needs `username`")
        if self.kind == "layout" and not self.layout:
            raise ValueError("`kind: layout` needs `layout`, the folder holding the OCI layouts")
        if (self.source_kind() == "ecr" and not (self.region and self.registry_id)
                and parse_ecr_host(self.host) is None):
            raise ValueError("`kind: ecr` on a host that is not ACCOUNT.dkr.ecr.REGION."
                             "amazonaws.com needs `region` and `registry_id`")
        return self

    def source_kind(self) -> str:
        """How this registry is read: explicit `kind`, else a layout, ECR by host name, or OCI."""
        if self.kind:
            return self.kind
        if self.layout is not None:
            return "layout"
        if self.url is None and parse_ecr_host(self.host) is not None:
            return "ecr"
        return "oci"



DEFAULT_MESSAGE = "tagsync: update {images} image(s) in {catalogs}"
MESSAGE_FIELDS = ("images", "count", "catalogs")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def check_message(value: str) -> str:
    """A commit subject template fills in `{images}`, `{count}` and `{catalogs}` and nothing
    else: `{0}` or `{count.__class__}` would fail (or say too much) only when a commit is made."""
    import string

    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value)
                  if name is not None]
    except ValueError:
        fields = [("{", "", None)]
    if any(name not in MESSAGE_FIELDS or spec or conv for name, spec, conv in fields):
        raise ValueError("a message template fills in only {images}, {count} and {catalogs} "
                         "(write {{ or }} for a brace)")
    return value


def check_branch(value: str | None) -> str | None:
    """A branch name as git allows it (`git check-ref-format`), without `refs/`: names are
    put into API paths, where `..`, `.` or `//` would name another place, even another
    repository."""
    if value is None:
        return None
    parts = value.split("/")
    if (not value or value.startswith(("-", "refs/")) or value in ("@", "HEAD")
            or value.endswith(".") or _REF_FORBIDDEN.search(value) is not None
            or not value.isprintable()
            or any(not p or p.startswith(".") or p.endswith(".lock") for p in parts)):
        raise ValueError("is not a branch name git accepts (no `..`, `//`, `@{`, leading `/`, "
                         "`-` or `.`, trailing `/`, `.` or `.lock`, spaces, control characters or "
                         "any of ~^:?*[\\; the name alone, without refs/heads/)")
    return value


class GitConfig(_Model):
    """Where the catalogs live, reached with pure-Python Git (HTTPS with a token, or SSH)."""

    repo: str
    """The repository: an https:// or ssh:// URL, git@host:path, or a local path."""
    branch: str = "main"
    """The branch read and pushed to."""
    token: str | None = None
    """A secret reference, sent as the HTTP Basic password."""
    token_env: str | None = None
    """Shorthand for `token: env:NAME`."""
    username: str = "x-access-token"
    """The HTTP Basic user name sent with the token."""
    ssh_key: str | None = None
    """A secret reference to a private key (PEM/OpenSSH), for ssh:// URLs."""
    known_hosts: str | None = None
    """A secret reference to the server's known_hosts lines (an unknown host key is refused)."""
    author: str = "tagsync <tagsync@localhost>"
    """The commit author, as `Name <email>`."""
    committer: str | None = None
    """The committer, as `Name <email>`; defaults to the author."""
    message: str = DEFAULT_MESSAGE
    """The commit subject template: {images}, {count}, {catalogs}."""
    retries: int = Field(3, ge=0, le=10)
    """How many times a moved branch is re-read and re-planned."""

    _refs = field_validator("token", "ssh_key", "known_hosts")(validate_ref)
    _branch = field_validator("branch")(check_branch)
    _message = field_validator("message")(check_message)

    @field_validator("author", "committer")
    @classmethod
    def _is_identity(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^<>]+ <[^<>]*>$", value):
            raise ValueError("must look like 'Name <email>'")
        return value

    @model_validator(mode="after")
    def _one_token(self) -> "GitConfig":
        if self.token and self.token_env:
            raise ValueError("`token` and `token_env` say the same thing; keep one")
        return self

    def resolve_token(self, base_dir: Path | None = None) -> str | None:
        if self.token_env:
            return secret_from_env(self.token_env, "git")
        return resolve(self.token, "git.token", base_dir)


class GitHubAppConfig(_Model):
    """Authenticate as a GitHub App installation: commits show as the app, tokens expire in 1 h."""

    app_id: int = Field(gt=0)
    """The GitHub App's id."""
    private_key: str
    """A secret reference to the App's PEM private key."""
    installation_id: int | None = Field(None, gt=0)
    """The installation; found from the repository when omitted."""

    _refs = field_validator("private_key")(validate_ref)


class GitHubConfig(_Model):
    """Publish through GitHub's API: no git, one request per commit, PRs for protected branches."""

    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """owner/name."""
    branch: str = "main"
    """Where changes land: pushed to, or the pull requests' base."""
    mode: Literal["push", "pull-request"] = "push"
    """push, or pull-request (one PR from `pr_branch`, kept up to date)."""
    api: Literal["graphql", "rest"] = "graphql"
    """graphql (one verified commit per run), or rest for GitHub Enterprise Server without GraphQL."""
    api_url: str = "https://api.github.com"
    """The REST API root; GHES: https://HOST/api/v3."""
    graphql_url: str | None = None
    """The GraphQL endpoint; default derived from api_url."""
    token: str | None = None
    """A secret reference, e.g. env:GITHUB_TOKEN."""
    app: GitHubAppConfig | None = None
    """Authenticate as a GitHub App instead of with a token."""
    pr_branch: str | None = None
    """The pull requests' branch; default tagsync/<branch>/<first catalog name>."""
    pr_title: str | None = None
    """The pull requests' title; default the commit subject."""
    labels: list[str] = []
    """Labels the pull request carries."""
    reviewers: list[str] = []
    """Users asked to review."""
    team_reviewers: list[str] = []
    """Teams asked to review."""
    auto_merge: Literal["merge", "squash", "rebase"] | None = None
    """Enable auto-merge with merge, squash or rebase."""
    message: str = DEFAULT_MESSAGE
    """The commit subject template: {images}, {count}, {catalogs}."""
    retries: int = Field(3, ge=0, le=10)
    """How many times a moved branch is re-read and re-planned."""
    max_wait: float = Field(60.0, ge=0)
    """The longest rate-limit wait (seconds) sat out before failing."""

    _refs = field_validator("token")(validate_ref)
    _branches = field_validator("branch", "pr_branch")(check_branch)
    _message = field_validator("message")(check_message)

    @model_validator(mode="after")
    def _one_auth(self) -> "GitHubConfig":
        if self.token and self.app:
            raise ValueError("authenticate with `token` or `app`, not both")
        if not self.token and not self.app:
            raise ValueError("set `token` (e.g. env:GITHUB_TOKEN) or `app`")
        if self.pr_branch is not None and self.pr_branch == self.branch:
            raise ValueError(f"`pr_branch` is the base branch `{self.branch}`: a pull request "
                             "needs a branch of its own (omit `pr_branch` for "
                             f"tagsync/{self.branch}/<catalog>)")
        return self


class RunConfig(_Model):
    concurrency: int = Field(16, ge=1, le=512)
    """Registry questions asked at once."""
    timeout: float = Field(20.0, gt=0)
    """Seconds per request, its whole answer included (registries, Docker Hub); GitHub's client
    takes it per connect/read/write, and never below GitHub's own 10 s."""
    retries: int = Field(4, ge=0, le=10)
    """Retries on 429/502/503/504 and transport errors."""
    # seconds the whole run may spend asking registries; what is left is deferred (None: no limit)
    max_duration: float | None = Field(None, gt=0)
    """Seconds the whole run may spend asking registries; what is left is deferred."""
    # longest total `Retry-After` wait per registry; beyond it its work is left for the next run
    max_wait: float = Field(60.0, ge=0)
    """Longest total Retry-After wait per registry; beyond it its work is left for the next run."""
    image_timeout: float = Field(60.0, gt=0)
    """Seconds one signature check (an image's digest), or one image's age reads, may take in
    all; past it that image's bump is held back (a failure) and the next run tries again."""
    explain: bool = True
    """Explain bumps from image labels: a manifest GET (a Hub pull) and a config read per image."""


class Config(_Model):
    catalogs: Annotated[list[CatalogConfig], Field(min_length=1)]
    """Where image references are written and how to follow them."""
    registries: list[RegistryConfig] = []
    """How to reach registries that need more than their host name."""
    git: GitConfig | None = None
    """Publish with pure-Python Git (omit git and github to edit the files beside the config)."""
    github: GitHubConfig | None = None
    """Publish through GitHub's API."""
    run: RunConfig = Field(default_factory=dict, validate_default=True)
    """Limits of one run."""
    base_dir: Path = Field(Path("."), exclude=True)
    config_file: str | None = Field(None, exclude=True)
    """The config's own path beside the catalogs (`tagsync.yaml`): no catalog ever reads it."""
    _only: tuple[str, ...] = PrivateAttr(())
    _allowed: tuple[str, ...] | None = PrivateAttr(None)

    @property
    def only_images(self) -> tuple[str, ...]:
        """Image globs this run is limited to (`run --image`); empty: every image."""
        return self._only

    def allows(self, host: str) -> bool:
        """May tagsync ask the registry `host` a reference names? Any host, unless the
        organisation's allow-list came with this config (`allowing`)."""
        return self._allowed is None or host_allowed(host, self._allowed)

    def allowing(self, patterns: Sequence[str]) -> "Config":
        """This config with an allow-list of registry hosts (`reference.host_pattern`s): a
        reference on any other host is reported and never asked (organisation mode)."""
        out = self.model_copy()
        out._allowed = tuple(patterns)
        return out

    def limited(self, catalogs: Sequence[str] = (), images: Sequence[str] = ()) -> "Config":
        """This config for a run limited to some catalogs (by name) and images (by glob);
        ConfigError names a catalog that does not exist."""
        names = [c.name for c in self.catalogs]
        unknown = [n for n in catalogs if n not in names]
        if unknown:
            raise ConfigError(f"no catalog named {', '.join(unknown)} (the config has "
                              f"{', '.join(names)})", file=self.config_file)
        keep = [c for c in self.catalogs if not catalogs or c.name in catalogs
                or any(c.name == o.follow.catalog for o in self.catalogs
                       if o.name in catalogs and o.follow is not None)]
        out = self.model_copy(update={"catalogs": keep})
        out._only = tuple(images)
        return out

    @model_validator(mode="after")
    def _unique(self) -> "Config":
        if self.git is not None and self.github is not None:
            raise ValueError("publish with `git` or `github`, not both")
        names = [c.name for c in self.catalogs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"catalog names must be unique: {', '.join(dupes)}")
        for c in self.catalogs:
            if c.follow is not None and (c.follow.catalog not in names or c.follow.catalog == c.name):
                raise ValueError(f"catalog {c.name}: `follow.catalog` must name another catalog "
                                 f"({', '.join(n for n in names if n != c.name) or 'there is none'})")
        hosts = [r.host for r in self.registries]
        dupes = sorted({h for h in hosts if hosts.count(h) > 1})
        if dupes:
            raise ValueError(f"registry hosts must be unique: {', '.join(dupes)}")
        return self

    def secret_refs(self) -> tuple[str, ...]:
        """Every secret reference the config names (deploy grants read access to exactly these)."""
        refs: list[str | None] = []
        if self.git is not None:
            refs += [self.git.token, self.git.ssh_key, self.git.known_hosts]
        if self.github is not None:
            refs += [self.github.token, self.github.app.private_key if self.github.app else None]
        refs += [r.password for r in self.registries]
        refs += [p.key for c in self.catalogs for p in (c.verify, *c.verify_images.values())
                 if p is not None and p.key and p.key.startswith(("aws-secretsmanager:", "aws-ssm:"))]
        return tuple(r for r in refs if r)

    def named_hosts(self) -> set[str]:
        """Registry hosts the config itself names (registries, image templates, markers); the
        files may name more, which only reading them tells."""
        names = [*(c.image for c in self.catalogs if c.image),
                 *(m.image for c in self.catalogs for m in c.markers.values())]
        hosts = {r.host for r in self.registries}
        for name in names:
            try:
                hosts.add(ImageName.parse(TEMPLATE_FIELD.sub("x", name)).registry)
            except TagsyncError:
                continue
        return hosts

    @property
    def publish_retries(self) -> int:
        """How many times a moved branch is re-read and re-planned."""
        target = self.git or self.github
        return target.retries if target is not None else 3  # files mode: a concurrent run wrote

    def registry_for(self, host: str) -> RegistryConfig:
        for reg in self.registries:
            if reg.host == host:
                return reg
        # Defaults only, nothing to check: validating would build this model's own validator
        # (a few ms of a cold start) for a host the references already spelled.
        return RegistryConfig.model_construct(host=host)


def load_config(path: Path) -> Config:
    """Read and validate a config file; every failure is a ConfigError with file and line."""
    from tagsync.config_yaml import read_text

    file = str(path)
    text = read_text(path, file)  # never more than the size limit into memory
    return parse_config(text, file, path.parent)


def parse_config(text: str, file: str, base_dir: Path,
                 overlay: "Callable[[dict[str, Any], yaml.Node | None], dict[str, Any]] | None" = None
                 ) -> Config:
    """Validate config text from anywhere (a file, S3, SSM); `file` names it in errors.
    `overlay` checks and completes the data before validation (organisation mode: a
    repository's config, the organisation's registries and credentials)."""
    from tagsync.config_yaml import load_yaml

    root, data = load_yaml(text, file)  # NUL, depth, duplicate keys, size: line:col, exit 2
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping with at least `catalogs:`", file=file, line=1)
    if overlay is not None:
        data = overlay(data, root)
    data.setdefault("base_dir", base_dir)
    local = Path(file)
    data["config_file"] = local.name if local.parent == base_dir else None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        from tagsync.config_words import in_words

        raise in_words(exc, Config, data, root, file) from exc


# A starting point that expresses the Lablup-style catalog; a test keeps it valid.
EXAMPLE = """\
# tagsync.yaml: which images to follow and where their references are written.
catalogs:
  - name: kernels                     # used in commit messages
    file: image-metadata.yml          # path inside the Git repository
    entries: .images[*]               # every entry describes one image repository
    image: "lablup/kernel-{name}"     # {field} comes from the entry
    pairs: .tags                      # a list of ["<tag>", "<digest>"] under each entry
    digest_format: image-id           # full | short | image-id (12 hex of the config digest)
    placeholders: ["x", ""]           # digests never filled in; left alone
    update_placeholders: false
    # new_tags: true                  # append tags the policy admits as new [tag, digest] pairs
    # policy: {kind: regex, include: '(\\d+)\\.(\\d+)-ubuntu'}   # same | semver | regex | numeric | newest
registries:
  - host: docker.io                   # images without a host live on Docker Hub
    # url: https://registry-1.docker.io
    # username: mybot
    # password_env: DOCKERHUB_TOKEN
git:
  repo: https://github.com/example/catalogs.git
  branch: main
  token_env: TAGSYNC_GIT_TOKEN
  author: "tagsync <tagsync@example.com>"
"""
