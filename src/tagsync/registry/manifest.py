"""Manifest media types and the small amount of manifest reading tagsync needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tagsync.errors import MalformedAnswerError, RegistryError

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
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedAnswerError("manifest is not JSON", image=image) from None
    if not isinstance(doc, dict):
        raise MalformedAnswerError("manifest is not a JSON object", image=image)
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
    for entry in index_entries(index, image):
        p = entry.get("platform")
        p = p if isinstance(p, dict) else {}
        have = [str(p.get("os", "")), str(p.get("architecture", ""))]
        if len(want) == 3:
            have.append(str(p.get("variant", "")))
        available.append("/".join(x for x in have if x))
        if have == want:
            return entry_digest(entry, image)
    raise RegistryError(
        f"no manifest for platform {'/'.join(want)} in the index "
        f"(has: {', '.join(available) or 'none'})",
        image=image,
    )


def index_entries(index: dict[str, Any], image: str) -> list[dict[str, Any]]:
    """An index's `manifests`, each an object, or a one-line reason why not."""
    entries = index.get("manifests") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MalformedAnswerError("the index's `manifests` is not a list of objects", image=image)
    return entries


def entry_digest(entry: dict[str, Any], image: str) -> str:
    digest = entry.get("digest")
    if not isinstance(digest, str):
        raise MalformedAnswerError("an index entry has no digest", image=image)
    return digest


def config_digest(manifest: dict[str, Any], image: str) -> str:
    config = manifest.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise MalformedAnswerError("manifest has no config descriptor", image=image)
    return str(config["digest"])
