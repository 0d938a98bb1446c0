"""Push an image over the OCI distribution API, sending only the blobs the registry lacks.

Per blob, cheapest first: `HEAD` (present: skip), cross-repository mount from the base's
repository when both live in one registry (201: nothing sent), else upload, in one `PUT`
up to `chunk_size` and in `PATCH` chunks above it. The manifest goes last, so a failed push
never leaves a tag pointing at missing blobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tagsync.errors import BuildError, RegistryError
from tagsync.reference import ImageName
from tagsync.registry.upload import Upload

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 16 << 20


class PushTarget(Protocol):
    """The part of the registry client a push uses (OciRegistry has it)."""

    async def has_blob(self, image: ImageName, digest: str) -> bool: ...
    async def start_upload(self, image: ImageName, mount: str | None = None,
                           mount_from: str | None = None) -> Upload | None: ...
    async def upload_chunk(self, image: ImageName, upload: Upload, data: bytes,
                           offset: int) -> Upload: ...
    async def finish_upload(self, image: ImageName, upload: Upload, digest: str,
                            data: bytes = b"") -> None: ...
    async def put_manifest(self, image: ImageName, reference: str, body: bytes,
                           media_type: str) -> str: ...


@dataclass
class PushReport:
    """What a push cost: the bench and the JSON summary print it."""

    reference: str = ""
    digest: str = ""
    skipped: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    chunks: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"reference": self.reference, "digest": self.digest,
                "blobs_skipped": len(self.skipped), "blobs_mounted": len(self.mounted),
                "blobs_uploaded": len(self.uploaded), "bytes_uploaded": self.bytes_uploaded,
                "chunks": self.chunks}


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


Fetch = Callable[[str], Awaitable[Path]]  # digest → local file, downloading when needed


async def push(registry: PushTarget, image: ImageName, tag: str, blobs: list[Blob],
               fetch: Fetch, manifest: bytes, media_type: str, *, mount_from: str | None = None,
               chunk_size: int = DEFAULT_CHUNK) -> PushReport:
    report = PushReport(reference=f"{image}:{tag}")
    await asyncio.gather(*(_push_blob(registry, image, b, fetch, mount_from, chunk_size, report)
                           for b in blobs))
    report.digest = await registry.put_manifest(image, tag, manifest, media_type)
    log.info("pushed %s (%s): %d blobs skipped, %d mounted, %d uploaded (%d bytes)",
             report.reference, report.digest, len(report.skipped), len(report.mounted),
             len(report.uploaded), report.bytes_uploaded)
    return report


async def _push_blob(registry: PushTarget, image: ImageName, blob: Blob, fetch: Fetch,
                     mount_from: str | None, chunk_size: int, report: PushReport) -> None:
    if await registry.has_blob(image, blob.digest):
        report.skipped.append(blob.digest)
        return
    upload = await registry.start_upload(image, blob.digest if mount_from else None, mount_from)
    if upload is None:
        report.mounted.append(blob.digest)
        return
    path = await fetch(blob.digest)
    size = path.stat().st_size
    if size != blob.size:
        raise BuildError(f"blob {blob.digest} is {size} bytes on disk, the manifest says {blob.size}")
    chunk = max(chunk_size, upload.min_chunk)
    try:
        if size <= chunk:
            await registry.finish_upload(image, upload, blob.digest, path.read_bytes())
        else:
            offset = 0
            with path.open("rb") as fh:
                while data := fh.read(chunk):
                    upload = await registry.upload_chunk(image, upload, data, offset)
                    offset += len(data)
                    report.chunks += 1
            await registry.finish_upload(image, upload, blob.digest)
    except RegistryError as exc:
        raise BuildError(f"upload of {blob.digest} failed: {exc.message}", image=str(image)) from None
    report.uploaded.append(blob.digest)
    report.bytes_uploaded += size
