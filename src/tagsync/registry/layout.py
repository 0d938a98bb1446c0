"""An OCI image layout on disk as a registry: for the offline demo and air-gapped users.

Layout: `<root>/<repository>/index.json` (what `skopeo copy … oci:<root>/<repository>:<tag>`
writes), tags from the `org.opencontainers.image.ref.name` annotation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tagsync.errors import ImageNotFoundError, RegistryError
from tagsync.reference import ImageName, validate_tag
from tagsync.registry.manifest import Descriptor, media_type_of, parse_manifest

REF_NAME = "org.opencontainers.image.ref.name"


class LayoutSource:
    """Read-only view of image layouts under a root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, image: ImageName) -> Path:
        d = self.root / image.repository
        if not (d / "index.json").is_file():
            raise ImageNotFoundError(f"no OCI layout at {d}", image=str(image))
        return d

    def _index(self, image: ImageName) -> list[dict[str, Any]]:
        path = self._dir(image) / "index.json"
        try:
            doc = json.loads(path.read_bytes())
        except (ValueError, RecursionError) as exc:
            raise RegistryError(f"{path} is not JSON", image=str(image)) from exc
        except OSError as exc:
            raise RegistryError(f"cannot read {path}: {exc.strerror}", image=str(image)) from exc
        entries = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise RegistryError(f"{path} has no list of manifests", image=str(image))
        return entries

    async def head(self, image: ImageName, reference: str) -> Descriptor:
        if ":" in reference:  # a digest; tags such as `sha256-<hex>.sig` have no colon
            body, media_type = await self.get(image, reference)
            return Descriptor(reference, media_type, len(body))
        validate_tag(reference, str(image))
        for entry in self._index(image):
            if (entry.get("annotations") or {}).get(REF_NAME) == reference:
                return Descriptor(entry["digest"], entry.get("mediaType", ""), entry.get("size"))
        raise ImageNotFoundError(f"tag or digest {reference!r} not found", image=str(image))

    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]:
        if ":" not in reference:  # a tag, `sha256-<hex>.sig` included
            reference = (await self.head(image, reference)).digest
        algo, _, hexpart = reference.partition(":")
        blob = self._dir(image) / "blobs" / algo / hexpart
        try:
            body = blob.read_bytes()
        except OSError as exc:
            raise ImageNotFoundError(f"blob {reference} missing from layout",
                                     image=str(image)) from exc
        return body, media_type_of(parse_manifest(body, str(image)), None)

    async def blob(self, image: ImageName, digest: str) -> bytes:
        algo, _, hexpart = digest.partition(":")
        try:
            return (self._dir(image) / "blobs" / algo / hexpart).read_bytes()
        except OSError as exc:
            raise ImageNotFoundError(f"blob {digest} missing from layout", image=str(image)) from exc

    async def list_repositories(self, namespace: str) -> list[str]:
        base = self.root / namespace if namespace else self.root
        return sorted(str(p.parent.relative_to(self.root)) for p in base.rglob("index.json"))

    async def list_tags(self, image: ImageName) -> list[str]:
        return [t for e in self._index(image)
                if isinstance(t := (e.get("annotations") or {}).get(REF_NAME), str) and t]

    async def aclose(self) -> None:
        return None
