"""Test images: a synthetic AWS Lambda Python base image (the same shape: Env, Entrypoint,
WorkingDir, multi-arch index, several layers, in a few hundred kilobytes) for the image builder's
tests, and a plain pusher the fixtures use to seed the local registries."""

from __future__ import annotations

import json
import random

import httpx

from tagsync.image.assemble import DOCKER_CONFIG, DOCKER_LAYER, OCI_CONFIG, OCI_LAYER, sha256
from tagsync.image.layer import layer_bytes
from tagsync.image.tiny import Built
from tagsync.registry.manifest import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

LAMBDA_ENV = [
    "LANG=en_US.UTF-8",
    "TZ=:/etc/localtime",
    "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task",
    "LAMBDA_TASK_ROOT=/var/task",
    "LAMBDA_RUNTIME_DIR=/var/runtime",
]


def lambda_base(platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"), noise: int = 200_000,
                docker: bool = False, seed: int = 7) -> Built:
    """Two layers per platform: the runtime files, and `noise` incompressible bytes (so chunked
    uploads have something to chunk)."""
    manifest_type, list_type = (DOCKER_MANIFEST, DOCKER_LIST) if docker else (OCI_MANIFEST, OCI_INDEX)
    config_type, layer_type = (DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_CONFIG, OCI_LAYER)
    blobs: dict[str, bytes] = {}
    children: dict[str, bytes] = {}
    entries = []
    for platform in platforms:
        os_, arch = platform.split("/")[:2]
        rng = random.Random(f"{seed}-{platform}")
        made = [
            layer_bytes({"lambda-entrypoint.sh": b"#!/bin/sh\nexec /var/runtime/bootstrap\n",
                         "var/runtime/bootstrap": f"runtime for {arch}\n".encode(),
                         "var/task/.keep": b""}),
            layer_bytes({"var/lang/lib/noise.bin": rng.randbytes(noise)}),
        ]
        layers = [blob for blob, _ in made]
        config = json.dumps({
            "architecture": arch, "os": os_, "created": "2024-01-01T00:00:00Z",
            **({"variant": "v8"} if arch == "arm64" else {}),
            "config": {"Env": LAMBDA_ENV, "Entrypoint": ["/lambda-entrypoint.sh"],
                       "WorkingDir": "/var/task", "Labels": {"vendor": "tests"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in made]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "runtime"},
                        {"created": "2024-01-01T00:00:00Z", "created_by": "noise"}],
        }, sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": sha256(x), "size": len(x)} for x in layers],
        }, sort_keys=True).encode()
        blobs[sha256(config)] = config
        blobs.update({sha256(x): x for x in layers})
        children[sha256(manifest)] = manifest
        entries.append({"mediaType": manifest_type, "digest": sha256(manifest), "size": len(manifest),
                        "platform": {"os": os_, "architecture": arch,
                                     **({"variant": "v8"} if arch == "arm64" else {})}})
    if len(entries) == 1:
        only = next(iter(children.values()))
        return Built(blobs, only, manifest_type, {})
    index = json.dumps({"schemaVersion": 2, "mediaType": list_type, "manifests": entries},
                       sort_keys=True).encode()
    return Built(blobs, index, list_type, children)


def push_image(client: httpx.Client, base_url: str, repository: str, tag: str, image: Built) -> str:
    """Push blobs (skipping those present), then the manifest; returns the manifest digest.

    A plain synchronous client on purpose: fixtures seed registries from test code, whatever
    loop the test runs; tagsync's own pushing (`tagsync.image.push`) is what the tests test.
    """
    base = base_url.rstrip("/")
    for digest, data in image.blobs.items():
        if client.head(f"{base}/v2/{repository}/blobs/{digest}").status_code == 200:
            continue
        start = client.post(f"{base}/v2/{repository}/blobs/uploads/")
        start.raise_for_status()
        location = start.headers["Location"]
        if location.startswith("/"):
            location = base + location
        sep = "&" if "?" in location else "?"
        client.put(f"{location}{sep}digest={digest}", content=data,
                   headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    for digest, child in image.children.items():
        client.put(f"{base}/v2/{repository}/manifests/{digest}", content=child,
                   headers={"Content-Type": json.loads(child).get("mediaType", OCI_MANIFEST)}
                   ).raise_for_status()
    client.put(f"{base}/v2/{repository}/manifests/{tag}", content=image.manifest,
               headers={"Content-Type": image.media_type}).raise_for_status()
    return image.digest
