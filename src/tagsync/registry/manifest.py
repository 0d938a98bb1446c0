"""Manifest media types and the small amount of manifest reading tagsync needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tagsync.errors import RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

# Registries answer 404 to a manifest request whose Accept names none of its types.
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class Descriptor:
    """What a HEAD (or an index.json entry) tells: digest and media type, nothing pulled."""

    digest: str
    media_type: str
    size: int | None = None


def parse_manifest(body: bytes, image: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError("manifest is not JSON", image=image) from exc
    if not isinstance(doc, dict):
        raise RegistryError("manifest is not a JSON object", image=image)
    return doc


def media_type_of(doc: dict[str, Any], header: str | None) -> str:
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in doc:
        return OCI_INDEX
    return (header or OCI_MANIFEST).split(";")[0].strip()


def select_platform(index: dict[str, Any], platform: str | None, image: str) -> str:
    """The digest of the manifest for `os/arch[/variant]` inside an index."""
    want = (platform or DEFAULT_PLATFORM).split("/")
    available = []
    for entry in index.get("manifests", []):
        p = entry.get("platform") or {}
        have = [p.get("os", ""), p.get("architecture", "")]
        if len(want) == 3:
            have.append(p.get("variant", ""))
        available.append("/".join(x for x in have if x))
        if have == want:
            return str(entry["digest"])
    raise RegistryError(
        f"no manifest for platform {'/'.join(want)} in the index "
        f"(has: {', '.join(available) or 'none'})",
        image=image,
    )


def config_digest(manifest: dict[str, Any], image: str) -> str:
    config = manifest.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise RegistryError("manifest has no config descriptor", image=image)
    return str(config["digest"])
