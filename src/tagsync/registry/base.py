"""The one protocol every registry client implements, and what observing a tag means."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from typing import Protocol

from tagsync.config import DigestFormat
from tagsync.errors import DeadlineError, MalformedAnswerError
from tagsync.reference import ImageName, short, validate_digest
from tagsync.registry.manifest import (
    INDEX_TYPES,
    Descriptor,
    config_digest,
    entry_digest,
    index_entries,
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

    async def blob(self, image: ImageName, digest: str) -> bytes:
        """A blob's bytes (image configs: small)."""
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


_FRACTION = re.compile(r"(\.\d{6})\d+")


def refuse_past(deadline: float | None, name: str) -> None:
    """A source asks nothing new once the run's time (`time.monotonic()`) is up."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineError("not asked: the run's time was up (run.max_duration); left for the "
                            "next run", image=name)


def time_left(deadline: float | None, cap: float, floor: float = 0.0) -> float:
    """Seconds one request may take: `cap`, or less when the run's deadline is nearer."""
    return cap if deadline is None else max(floor, min(cap, deadline - time.monotonic()))


def parse_time(value: object) -> datetime | None:
    """RFC 3339 as image configs write it (nanoseconds, `Z`); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", value).replace("Z", "+00:00"))
    except ValueError:
        return None


async def created_at(source: Source, image: ImageName, tag: str) -> datetime | None:
    """When the image behind a tag was built, from its config's `created` (one manifest GET,
    one more for an index, one blob GET)."""
    name = str(image)
    body, media_type = await source.get(image, tag)
    doc = parse_manifest(body, name)
    if media_type_of(doc, media_type) in INDEX_TYPES:
        manifests = index_entries(doc, name)
        if not manifests:
            return None
        body, _ = await source.get(image, validate_digest(entry_digest(manifests[0], name), name))
        doc = parse_manifest(body, name)
    try:
        config = json.loads(await source.blob(image, validate_digest(config_digest(doc, name), name)))
    except (ValueError, RecursionError):
        raise MalformedAnswerError("image config is not JSON", image=name) from None
    return parse_time(config.get("created")) if isinstance(config, dict) else None


async def tag_times(source: Source, image: ImageName, tags: tuple[str, ...]) -> dict[str, datetime]:
    """Creation time per tag; sources that know push times cheaply (ECR) answer directly."""
    direct = getattr(source, "pushed_at", None)
    if direct is not None:
        known: dict[str, datetime] = await direct(image)
        return {t: known[t] for t in tags if t in known}
    times = await asyncio.gather(*(created_at(source, image, t) for t in tags))
    return {t: when for t, when in zip(tags, times, strict=True) if when is not None}
