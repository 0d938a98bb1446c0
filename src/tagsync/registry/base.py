"""The one protocol every registry client implements, and what observing a tag means."""

from __future__ import annotations

from typing import Protocol

from tagsync.config import DigestFormat
from tagsync.reference import ImageName, short, validate_digest
from tagsync.registry.manifest import (
    INDEX_TYPES,
    Descriptor,
    config_digest,
    media_type_of,
    parse_manifest,
    select_platform,
)


class Source(Protocol):
    """Read-only access to one registry (over HTTP, from ECR, from an OCI layout on disk)."""

    async def head(self, image: ImageName, reference: str) -> Descriptor:
        """Digest of a tag or digest without downloading the manifest (a HEAD)."""
        ...

    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]:
        """The manifest bytes and media type."""
        ...

    async def list_tags(self, image: ImageName) -> list[str]:
        ...

    async def aclose(self) -> None:
        ...


async def digest_value(
    source: Source, image: ImageName, tag: str, fmt: DigestFormat, platform: str | None
) -> str:
    """The value a catalog should hold for (image, tag) in the configured format.

    `full`/`short` cost one HEAD (no pull, not rate-limited on Docker Hub) unless a platform is
    asked for; `image-id` needs the manifest itself to read its config digest.
    """
    name = str(image)
    head = await source.head(image, tag)
    digest = validate_digest(head.digest, name)
    if platform is not None and head.media_type in INDEX_TYPES:
        body, media_type = await source.get(image, digest)
        digest = validate_digest(select_platform(parse_manifest(body, name), platform, name), name)
    if fmt is DigestFormat.full:
        return digest
    if fmt is DigestFormat.short:
        return short(digest)
    body, media_type = await source.get(image, digest)
    doc = parse_manifest(body, name)
    if media_type_of(doc, media_type) in INDEX_TYPES:
        chosen = validate_digest(select_platform(doc, platform, name), name)
        body, media_type = await source.get(image, chosen)
        doc = parse_manifest(body, name)
    return short(validate_digest(config_digest(doc, name), name))
