"""What verification needs from a registry, as a protocol, and its adapter to `OciRegistry`.

Verification knows nothing of catalogs or hosts: it asks for a manifest by tag or digest, a
blob, and the referrers of a digest. Anything answering these three (the OCI client, an image
layout, a test double) can be verified against. Digests of what comes back are checked by the
caller, so a fetch need not be trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from tagsync.errors import ImageNotFoundError
from tagsync.reference import ImageName

if TYPE_CHECKING:
    from tagsync.registry.oci import OciRegistry


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


class RegistryFetch:
    """`Fetch` over the OCI Distribution client: same auth, retries, pacing and pull accounting.

    Registry failures (unreachable, refused credentials, the pull allowance reserve) propagate
    as the client's typed errors: they are not verdicts about the image.
    """

    def __init__(self, registry: OciRegistry) -> None:
        self.registry = registry

    async def manifest(self, image: str, reference: str) -> tuple[bytes, str] | None:
        try:
            return await self.registry.get(ImageName.parse(image), reference)
        except ImageNotFoundError:
            return None

    async def blob(self, image: str, digest: str) -> bytes:
        return await self.registry.blob(ImageName.parse(image), digest)

    async def referrers(self, image: str, digest: str,
                        artifact_type: str | None = None) -> list[dict[str, Any]] | None:
        index = await self.registry.referrers(ImageName.parse(image), digest, artifact_type)
        if index is None:
            return None
        manifests = index.get("manifests")
        return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
