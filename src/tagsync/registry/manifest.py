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


# What an answer's Content-Type may be while its body names the type: the distribution spec's
# registries send the manifest's own type; a few send JSON's, or none on HEAD.
_GENERIC_TYPES = frozenset({"", "application/json"})
MANIFEST_KINDS = INDEX_TYPES | MANIFEST_TYPES


def manifest_header(content_type: str | None, method: str, image: str) -> str:
    """The media type a manifest answer's `Content-Type` states ("" when it states none, or
    only JSON: then the body decides). Anything else (a captive portal's `text/html`) is not a
    manifest, whatever the status and digest header say."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in MANIFEST_KINDS:
        return media_type
    if media_type in _GENERIC_TYPES:
        return ""
    shown = media_type[:60] if media_type.isprintable() else "unreadable"
    raise MalformedAnswerError(f"the {method} manifest answer is not a manifest (Content-Type "
                               f"{shown}); not used", image=image)


def check_manifest(body: bytes, content_type: str | None, image: str
                   ) -> tuple[dict[str, Any], str]:
    """A manifest answer as tagsync will use it: a JSON object of schema version 2 whose media
    type (the header's, else the body's `mediaType`; the two agree when both are given) is a
    manifest's or an index's, with the fields that type requires. (document, media type), or a
    one-line reason why the answer is not a manifest."""
    header = manifest_header(content_type, "GET", image)
    doc = parse_manifest(body, image)
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise MalformedAnswerError("the manifest's `mediaType` is not a string", image=image)
    if declared and header and declared != header:
        raise MalformedAnswerError(f"the manifest's `mediaType` ({declared[:60]}) is not the "
                                   f"type the registry sent it as ({header})", image=image)
    media_type = header or declared or ""
    if media_type not in MANIFEST_KINDS:
        raise MalformedAnswerError("the answer names no manifest or index media type (neither "
                                   "Content-Type nor `mediaType`); not used", image=image)
    if doc.get("schemaVersion") != 2:
        raise MalformedAnswerError("the manifest's schemaVersion is not 2", image=image)
    if media_type in INDEX_TYPES:
        index_entries(doc, image)
        if not isinstance(doc.get("manifests"), list):
            raise MalformedAnswerError("the index has no `manifests` list", image=image)
    else:
        config_digest(doc, image)
        if not isinstance(doc.get("layers"), list):
            raise MalformedAnswerError("the manifest has no `layers` list", image=image)
    return doc, media_type
