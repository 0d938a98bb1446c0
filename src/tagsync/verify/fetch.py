"""What verification needs from a registry, as a protocol, and its adapter to every source.

Verification knows nothing of catalogs or hosts: it asks for a manifest by tag or digest, a
blob, and the referrers of a digest. Anything answering these three (the OCI client, ECR's API,
an image layout, a test double) can be verified against. Digests of what comes back are checked
by the caller, so a fetch need not be trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from tagsync.errors import ImageNotFoundError
from tagsync.reference import ImageName

if TYPE_CHECKING:
    from tagsync.registry.base import Source


class Fetch(Protocol):
    async def manifest(self, image: str, reference: str) -> tuple[bytes, str] | None:
        """Body and media type of a manifest by tag or digest; None when there is none."""
        ...

    async def blob(self, image: str, digest: str) -> bytes:
        """A blob's bytes (signature payloads and bundles are small)."""
        ...

    async def referrers(self, image: str, digest: str,
                        artifact_type: str | None = None) -> list[dict[str, Any]] | None:
        """The descriptors of the OCI 1.1 referrers API for `digest`, or None when the registry
        has no referrers API (the caller then reads the `sha256-<hex>` tag schema instead)."""
        ...


class SourceFetch:
    """`Fetch` over any registry source (`tagsync.registry.base.Source`): the OCI Distribution
    client, ECR's API, an image layout. Same auth, retries, pacing and pull accounting as a scan.

    Referrers come from the source's `referrers` method when it has one (the OCI client reads the
    referrers API); a source without one (ECR's API has no such call, a layout has no API) answers
    None, so the `sha256-<hex>` tag schema is read. Registry failures (unreachable, refused
    credentials, the pull allowance reserve) propagate as the source's typed errors: they are not
    verdicts about the image.
    """

    def __init__(self, source: Source) -> None:
        self.source = source

    @property
    def registry(self) -> Source:
        """The source, under the name `RegistryFetch` gave it."""
        return self.source

    async def manifest(self, image: str, reference: str) -> tuple[bytes, str] | None:
        try:
            return await self.source.get(ImageName.parse(image), reference)
        except ImageNotFoundError:
            return None

    async def blob(self, image: str, digest: str) -> bytes:
        return await self.source.blob(ImageName.parse(image), digest)

    async def referrers(self, image: str, digest: str,
                        artifact_type: str | None = None) -> list[dict[str, Any]] | None:
        method = getattr(self.source, "referrers", None)
        if method is None:
            return None
        index = await method(ImageName.parse(image), digest, artifact_type)
        if not isinstance(index, dict):
            return None
        manifests = index.get("manifests")
        return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


RegistryFetch = SourceFetch
"""The name this adapter had when it served only `OciRegistry`; kept for callers."""
