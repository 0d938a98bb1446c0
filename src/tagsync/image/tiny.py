"""Tiny OCI images made in memory, and OCI layouts on disk: for the offline demo, the test
fixtures and the benchmarks, so none of them needs Docker.

Layers come from `tagsync.image.layer`, the Lambda image's own writer: same input, same
digest. (Pushing them is the tests' business: `tests/servers/images.py`.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsync.image.assemble import OCI_CONFIG, OCI_LAYER, sha256
from tagsync.image.layer import layer_bytes
from tagsync.registry.manifest import OCI_INDEX, OCI_MANIFEST

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Built:
    """An image as blobs: what a layout or a registry needs to hold."""

    blobs: dict[str, bytes]  # digest -> content: configs and layers
    manifest: bytes
    media_type: str
    children: dict[str, bytes]  # digest -> platform manifest, when `manifest` is an index

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def config_digest(self, platform: str = "linux/amd64") -> str:
        doc = json.loads(self.manifest)
        if self.media_type == OCI_INDEX:
            wanted = platform.split("/")
            for m in doc["manifests"]:
                if [m["platform"]["os"], m["platform"]["architecture"]] == wanted:
                    doc = json.loads(self.children[m["digest"]])
                    break
        return str(doc["config"]["digest"])


def build_image(content: str, platforms: tuple[str, ...] = ("linux/amd64",),
                created: str | None = None, labels: dict[str, str] | None = None) -> Built:
    """A tiny image whose digests depend only on `content` (and the platforms)."""
    blobs: dict[str, bytes] = {}
    manifests: list[tuple[str, bytes]] = []
    for platform in platforms:
        os_, arch = platform.split("/")[:2]
        layer, diff_id = layer_bytes({"etc/tagsync-demo": f"{content}\n{platform}\n".encode()})
        config = json.dumps({
            "architecture": arch, "os": os_, **({"created": created} if created else {}),
            "config": {"Env": ["PATH=/usr/bin"], "Labels": {"content": content, **(labels or {})}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }, sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        }, sort_keys=True).encode()
        blobs[sha256(config)] = config
        blobs[sha256(layer)] = layer
        manifests.append((platform, manifest))
    if len(manifests) == 1:
        return Built(blobs, manifests[0][1], OCI_MANIFEST, {})
    entries = []
    children = {}
    for platform, manifest in manifests:
        os_, arch = platform.split("/")[:2]
        children[sha256(manifest)] = manifest
        entries.append({"mediaType": OCI_MANIFEST, "digest": sha256(manifest),
                        "size": len(manifest), "platform": {"os": os_, "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                       sort_keys=True).encode()
    return Built(blobs, index, OCI_INDEX, children)


def write_layout(directory: Path, tag: str, image: Built) -> None:
    """Add `image` under `tag` to the OCI layout in `directory` (created when missing)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for digest, data in {**image.blobs, **image.children, image.digest: image.manifest}.items():
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
    index_path = directory / "index.json"
    index: dict[str, Any] = (json.loads(index_path.read_text()) if index_path.exists()
                             else {"schemaVersion": 2, "manifests": []})
    index["manifests"] = [m for m in index["manifests"]
                          if (m.get("annotations") or {}).get(REF_NAME) != tag]
    index["manifests"].append({"mediaType": image.media_type, "digest": image.digest,
                               "size": len(image.manifest), "annotations": {REF_NAME: tag}})
    index_path.write_text(json.dumps(index, indent=2))
