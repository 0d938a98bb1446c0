"""The base image: resolved to one platform's manifest and config, cached by digest.

Only the small documents (index, manifest, config) are fetched to build; base layers are
fetched later, and only when the target registry lacks them and cannot mount them.
A base given by digest and already cached is resolved with no request at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tagsync.errors import BuildError
from tagsync.image.platform import Target
from tagsync.reference import ImageName
from tagsync.registry.manifest import INDEX_TYPES, media_type_of, parse_manifest, select_platform


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "tagsync"


class BlobCache:
    """Content-addressed files (`blobs/sha256/<hex>`, as in an OCI layout); written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, digest: str, data: bytes) -> Path:
        algorithm, _, expected = digest.partition(":")
        if hashlib.new(algorithm, data).hexdigest() != expected:
            raise BuildError(f"refusing to cache {digest}: the content has another digest")
        path = self.path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
        return path

    def adopt(self, digest: str, file: Path) -> Path:
        """Move a file whose digest is known (a layer just written) into the cache."""
        path = self.path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, path)
        return path

    def compressed(self, diff_id: str) -> str | None:
        """The blob digest of a layer built before from the same tar, if it is still here:
        compressing is most of a rebuild's time, and its result depends only on the tar."""
        try:
            digest = (self.root / "layers" / diff_id.replace(":", "-")).read_text().strip()
        except FileNotFoundError:
            return None
        return digest if self.path(digest).exists() else None

    def remember(self, diff_id: str, digest: str) -> None:
        folder = self.root / "layers"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / diff_id.replace(":", "-")).write_text(digest)

    def scratch(self) -> Path:
        """A directory on the cache's file system, so `adopt` is a rename."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=folder))


class ManifestSource(Protocol):
    """What resolving a base needs from a registry client (OciRegistry has it)."""

    async def head(self, image: ImageName, reference: str) -> Any: ...
    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]: ...
    async def blob(self, image: ImageName, digest: str) -> bytes: ...


@dataclass(frozen=True)
class BaseImage:
    name: ImageName
    reference: str  # as asked: a tag or a digest
    digest: str  # the platform manifest's
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers", []))

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.name}{sep}{self.reference}"


async def _document(source: ManifestSource, name: ImageName, digest: str, cache: BlobCache) -> bytes:
    cached = cache.get(digest)
    if cached is not None:
        return cached
    body, _ = await source.get(name, digest)
    cache.put(digest, body)  # checks the digest: a registry cannot hand us something else
    return body


async def resolve_base(source: ManifestSource, name: ImageName, reference: str, target: Target,
                       cache: BlobCache) -> BaseImage:
    """The base's manifest and config for the target platform (`linux/<arch>`)."""
    where = f"{name}:{reference}"
    digest = reference if reference.startswith("sha256:") else (await source.head(name, reference)).digest
    doc = parse_manifest(await _document(source, name, digest, cache), where)
    if media_type_of(doc, None) in INDEX_TYPES:
        digest = select_platform(doc, f"linux/{target.oci_arch}", where)  # any variant (v8)
        doc = parse_manifest(await _document(source, name, digest, cache), where)
    config_digest = str((doc.get("config") or {}).get("digest", ""))
    if not config_digest:
        raise BuildError("the base manifest has no config", image=where)
    config_raw = cache.get(config_digest)
    if config_raw is None:
        config_raw = await source.blob(name, config_digest)
        cache.put(config_digest, config_raw)
    config = json.loads(config_raw)
    arch = config.get("architecture")
    if arch and arch != target.oci_arch:
        raise BuildError(f"the base image is built for {arch}, not {target.oci_arch}; "
                         "choose a base for that architecture", image=where)
    return BaseImage(name, reference, digest, doc, config)
