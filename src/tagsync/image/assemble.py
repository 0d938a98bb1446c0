"""The new image's config and manifest, from the base's and one added layer: pure functions.

The base's environment, entrypoint and working directory stay (the Lambda runtime needs them);
only CMD, labels, the environment (where the CA roots are), the layer list and history grow.
Serialisation is canonical (sorted keys, no spaces) so that equal inputs always give equal
digests.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import Any

from tagsync.errors import BuildError
from tagsync.image.layer import Layer
from tagsync.registry.manifest import DOCKER_MANIFEST, OCI_MANIFEST

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def timestamp(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(base: dict[str, Any], layer: Layer, cmd: list[str], labels: dict[str, str],
                 created: str, comment: str, env: dict[str, str] | None = None) -> bytes:
    """The base config with our layer on top, CMD set and labels added; `env` is added to the
    base's environment where the base does not set the same variable itself."""
    config = copy.deepcopy(base)
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise BuildError("the base image's config has no rootfs.diff_ids")
    rootfs["diff_ids"] = [*rootfs["diff_ids"], layer.diff_id]
    inner = config.setdefault("config", {})
    inner["Cmd"] = cmd
    if env:
        have = inner.get("Env") or []
        names = {str(item).partition("=")[0] for item in have}
        inner["Env"] = [*have, *(f"{k}={v}" for k, v in sorted(env.items()) if k not in names)]
    inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
    config["created"] = created
    config["history"] = [*(config.get("history") or []),
                         {"created": created, "created_by": "tagsync build", "comment": comment}]
    return canonical(config)


def image_manifest(base: dict[str, Any], config: bytes, layer: Layer,
                   annotations: dict[str, str]) -> tuple[bytes, str]:
    """(manifest, media type) in the base's own format, so Docker v2 bases stay Docker v2."""
    docker = base.get("mediaType") == DOCKER_MANIFEST
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                   "digest": sha256(config), "size": len(config)},
        "layers": [*base.get("layers", []),
                   {"mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                    "digest": layer.digest, "size": layer.size}],
    }
    if not docker and annotations:
        doc["annotations"] = annotations
    return canonical(doc), media_type
