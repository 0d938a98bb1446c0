"""Build tagsync's Lambda image without Docker, and push it: `tagsync build`.

The pipeline: resolve the base image for the target architecture (documents cached by digest)
→ pip-install the dependencies for that platform into a scratch folder → one reproducible layer
holding them, tagsync itself and an optional config → config and manifest on top of the base's
→ push, blob by blob, only what the target registry lacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import tagsync
from tagsync.errors import BuildError
from tagsync.image.assemble import image_config, image_manifest, sha256, timestamp
from tagsync.image.base import BaseImage, BlobCache, default_cache_dir, resolve_base
from tagsync.image.bytecode import compile_entries
from tagsync.image.deps import PipOptions, install, own_requirements
from tagsync.image.layer import Layer, compress, tree, write_tar
from tagsync.image.platform import Target
from tagsync.image.push import DEFAULT_CHUNK, Blob, PushReport, push
from tagsync.reference import is_loopback, parse_reference
from tagsync.registry.oci import OciRegistry, default_url

log = logging.getLogger(__name__)

HANDLER = "tagsync.aws.handler.handler"
DEFAULT_TASK_ROOT = "/var/task"
# pip's console scripts carry this machine's interpreter path; Lambda never runs them.
_SKIPPED = ("bin",)

__all__ = ["HANDLER", "BlobCache", "BuildResult", "BuildSpec", "Built", "PipOptions", "PushReport",
           "Registries", "Target", "build", "push_built", "run_build", "source_revision"]


@dataclass(frozen=True)
class BuildSpec:
    target: Target = field(default_factory=Target)
    base: str | None = None  # default: the AWS Lambda Python image of target.python
    requirements: tuple[str, ...] | None = None  # default: tagsync's own, with `extras`
    extras: tuple[str, ...] = ("aws", "ssh")
    files: Mapping[str, Path] = field(default_factory=dict)  # path under the task root → file
    revision: str | None = None  # the source commit, as a label
    source_url: str | None = None
    pip: PipOptions = field(default_factory=PipOptions)
    epoch: int | None = None  # SOURCE_DATE_EPOCH: file times and `created`; else the base's
    handler: str = HANDLER

    @property
    def base_reference(self) -> str:
        return self.base or self.target.default_base


@dataclass(frozen=True)
class Built:
    """A built image: its new blobs are in the cache, the base's stay where they are."""

    base: BaseImage
    config: bytes
    manifest: bytes
    media_type: str
    layer: Layer
    bytecode: int = 0  # .pyc files in the layer (0: the build interpreter is not the base's Python)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def blobs(self) -> list[Blob]:
        base = [Blob(str(d["digest"]), int(d["size"])) for d in self.base.layers]
        return [Blob(sha256(self.config), len(self.config)), *base,
                Blob(self.layer.digest, self.layer.size)]


Credentials = Callable[[str], tuple[str | None, str | None]]


class Registries:
    """One client per registry host, opened on first use; loopback hosts speak plain HTTP."""

    def __init__(self, credentials: Credentials | None = None,
                 endpoints: Mapping[str, str] | None = None,
                 insecure: frozenset[str] = frozenset()) -> None:
        from tagsync.registry.credentials import push_credentials

        self.credentials = credentials or push_credentials
        self.endpoints = dict(endpoints or {})
        self.insecure = insecure
        self._open: dict[str, OciRegistry] = {}

    def get(self, host: str) -> OciRegistry:
        if host not in self._open:
            user, password = self.credentials(host)
            url = self.endpoints.get(host) or default_url(host, host in self.insecure or is_loopback(host))
            self._open[host] = OciRegistry(url, username=user, password=password)
        return self._open[host]

    async def aclose(self) -> None:
        for reg in self._open.values():
            await reg.aclose()

    def requests(self) -> int:
        return sum(reg.stats.requests + reg.stats.token_requests for reg in self._open.values())


def base_env(base: BaseImage) -> dict[str, str]:
    items = (str(item).partition("=") for item in (base.config.get("config") or {}).get("Env") or [])
    return {key: value for key, _, value in items}


def task_root(base: BaseImage) -> str:
    """Where Lambda imports the handler from: the base's LAMBDA_TASK_ROOT."""
    value = base_env(base).get("LAMBDA_TASK_ROOT", "")
    return value if value.startswith("/") else DEFAULT_TASK_ROOT


def _package_dir() -> Path:
    return Path(tagsync.__file__).resolve().parent


def layer_entries(site: Path, root: str, files: Mapping[str, Path]) -> dict[str, Path]:
    """Archive names → files: the dependencies, tagsync itself, and extra files."""
    prefix = root.strip("/")
    entries = tree(site, prefix, skip=_SKIPPED)
    entries = {name: path for name, path in entries.items() if not name.endswith("/direct_url.json")}
    entries.update(tree(_package_dir(), f"{prefix}/tagsync"))
    for relative, path in files.items():
        name = PurePosixPath(prefix) / relative
        if ".." in PurePosixPath(relative).parts or PurePosixPath(relative).is_absolute():
            raise BuildError(f"{relative!r}: extra files go below the task root")
        if not path.is_file():
            raise BuildError("not a file", file=str(path))
        entries[str(name)] = path
    return entries


def ca_folder(site: Path, root: str, out: Path, env: dict[str, str]
              ) -> tuple[dict[str, Path], dict[str, str]]:
    """certifi's roots as a hashed folder in the layer, and the environment that points OpenSSL
    at it (see `tagsync.image.certs`); nothing when the requirements leave certifi out, or when
    the base chose its roots itself (the two variables only make sense as a pair)."""
    from tagsync.image.certs import EMPTY, FOLDER, hashed_folder

    bundle = site / "certifi" / "cacert.pem"
    if not bundle.is_file():
        log.info("no certifi in the requirements: the image keeps its base's CA roots")
        return {}, {}
    chosen = sorted(k for k in ("SSL_CERT_FILE", "SSL_CERT_DIR") if k in env)
    if chosen:
        log.info("the base sets %s: the image keeps its base's CA roots", " and ".join(chosen))
        return {}, {}
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"{root.strip('/')}/{FOLDER}"
    entries: dict[str, Path] = {}
    for name, pem in {**hashed_folder(bundle.read_bytes()), EMPTY: b""}.items():
        (out / name).write_bytes(pem)
        entries[f"{prefix}/{name}"] = out / name
    folder = f"{root.rstrip('/')}/{FOLDER}"
    return entries, {"SSL_CERT_DIR": folder, "SSL_CERT_FILE": f"{folder}/{EMPTY}"}


def _layer(entries: dict[str, Path], scratch: Path, cache: BlobCache, mtime: int) -> Layer:
    diff_id, _ = write_tar(entries, scratch / "layer.tar", mtime)
    known = cache.compressed(diff_id)
    if known is not None:
        log.info("layer %s: compressed before, reused from the cache", diff_id)
        path = cache.path(known)
        return Layer(path, known, diff_id, path.stat().st_size)
    digest, size = compress(scratch / "layer.tar", scratch / "layer.tar.gz")
    path = cache.adopt(digest, scratch / "layer.tar.gz")
    cache.remember(diff_id, digest)
    return Layer(path, digest, diff_id, size)


async def build(spec: BuildSpec, cache: BlobCache, registries: Registries) -> Built:
    name, reference = parse_reference(spec.base_reference)
    base = await resolve_base(registries.get(name.registry), name, reference, spec.target, cache)
    log.info("base %s → %s", base, base.digest)
    requirements = list(spec.requirements if spec.requirements is not None
                        else own_requirements(spec.extras))
    scratch = cache.scratch()
    try:
        site = scratch / "site"
        site.mkdir()
        if requirements:
            await asyncio.to_thread(install, requirements, site, spec.target, spec.pip)
        root = task_root(base)
        entries = layer_entries(site, root, spec.files)
        roots, env = ca_folder(site, root, scratch / "ca", base_env(base))
        entries.update(roots)
        pyc = await asyncio.to_thread(compile_entries, entries, scratch / "pyc", spec.target.python)
        entries.update(pyc)
        layer = await asyncio.to_thread(_layer, entries, scratch, cache, spec.epoch or 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    labels = {"org.opencontainers.image.title": "tagsync",
              "org.opencontainers.image.version": tagsync.__version__}
    if spec.revision:
        labels["org.opencontainers.image.revision"] = spec.revision
    if spec.source_url:
        labels["org.opencontainers.image.source"] = spec.source_url
    created = (timestamp(spec.epoch) if spec.epoch is not None
               else str(base.config.get("created") or timestamp(0)))
    config = image_config(base.config, layer, [spec.handler], labels, created,
                          f"tagsync {tagsync.__version__} and {len(requirements)} requirements", env)
    cache.put(sha256(config), config)
    manifest, media_type = image_manifest(
        base.manifest, config, layer,
        {"org.opencontainers.image.base.name": str(base),
         "org.opencontainers.image.base.digest": base.digest})
    return Built(base, config, manifest, media_type, layer, len(pyc))


async def push_built(built: Built, reference: str, cache: BlobCache, registries: Registries,
                     chunk_size: int = DEFAULT_CHUNK) -> PushReport:
    """Push to `registry/repository:tag`; base layers come from the cache, else the base's
    registry, and only when the target has neither the blob nor a way to mount it."""
    name, tag = parse_reference(reference)
    if tag.startswith("sha256:"):
        raise BuildError(f"{reference!r}: push to a tag, not a digest")
    target = registries.get(name.registry)
    base_name = built.base.name

    async def fetch(digest: str) -> Path:
        path = cache.path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            log.info("downloading base layer %s from %s", digest, base_name)
            await registries.get(base_name.registry).download_blob(base_name, digest, path)
        return path

    mount_from = base_name.repository if base_name.registry == name.registry else None
    return await push(target, name, tag, built.blobs(), fetch, built.manifest, built.media_type,
                      mount_from=mount_from, chunk_size=chunk_size)


@dataclass
class BuildResult:
    built: Built
    push: PushReport | None
    requests: int  # to registries, tokens included: what a build costs the rate limits

    def to_dict(self) -> dict[str, object]:
        b = self.built
        return {"digest": b.digest, "media_type": b.media_type,
                "architecture": json.loads(b.config).get("architecture"),
                "base": str(b.base), "base_digest": b.base.digest,
                "layer": {"digest": b.layer.digest, "size": b.layer.size, "bytecode": b.bytecode},
                "push": self.push.to_dict() if self.push else None, "requests": self.requests}


def run_build(spec: BuildSpec, push_to: str | None = None, *, cache: BlobCache | None = None,
              registries: Registries | None = None, chunk_size: int = DEFAULT_CHUNK) -> BuildResult:
    """Build, and push when `push_to` is given; the one entry point of the CLI and deploy."""
    cache = cache or BlobCache(default_cache_dir())

    async def go() -> BuildResult:
        regs = registries or Registries()
        try:
            built = await build(spec, cache, regs)
            report = (await push_built(built, push_to, cache, regs, chunk_size)
                      if push_to else None)
            return BuildResult(built, report, regs.requests())
        finally:
            await regs.aclose()

    return asyncio.run(go())


def source_revision(directory: Path) -> str | None:
    """The commit checked out in `directory` (or a parent), for the revision label."""
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    try:
        with Repo.discover(str(directory)) as repo:
            return repo.head().decode("ascii")
    except (NotGitRepository, KeyError):
        return None
