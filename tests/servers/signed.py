"""Signed images on the real CNCF registry, built around the real signature bytes in
`../shared/fixtures/signatures/`, and a referrers API in front of it.

- The signed image manifests of the containers/image fixtures name config and layer blobs that
  were never published, and distribution refuses a manifest whose blobs it lacks; so those
  manifests are written into the registry's own storage (the layout `docker-registry` uses),
  and the registry serves them as any other. Everything else is pushed through the API.
- The `.sig` manifest is built as cosign writes it: an OCI manifest whose layers are the
  simple-signing payloads (the exact registry bytes of the fixture) with the fixture's
  annotations, and a config listing them.
- Debian's registry 2.8 has no referrers API (404). `ReferrersProxy` adds it as distribution
  1.1 registries answer it: recorded from manifest PUTs carrying a `subject` (answered with
  `OCI-Subject`), served as an OCI index, filtered by `artifactType` with
  `OCI-Filters-Applied`. Everything else passes through untouched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

SIGNATURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "signatures"
SIGSTORE_PREFIX = b"\x00sigstore-json\n"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def signatures_dir() -> Path:
    """The shared real signatures; tests skip where ../shared is not beside the project."""
    if not (SIGNATURES / "README.md").exists():
        pytest.skip(f"signature fixtures {SIGNATURES} are absent")
    return SIGNATURES


# --- the containers/image `dir:` fixtures ---------------------------------------------------------


@dataclass
class CosignLayer:
    """One layer of a `.sig` manifest: the payload bytes as the registry held them, and its
    annotations (signature, and for keyless the certificate, chain and Rekor bundle)."""

    media_type: str
    payload: bytes
    annotations: dict[str, str]

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": sha256(self.payload),
                "size": len(self.payload), "annotations": self.annotations}


@dataclass
class SignedFixture:
    manifest: bytes  # the signed image manifest; its sha256 is the image digest
    layer: CosignLayer

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def load_signed(name: str) -> SignedFixture:
    """A `dir-img-cosign-*` fixture: `signature-1` is `\\0sigstore-json\\n` + JSON."""
    folder = signatures_dir() / "containers-image" / name
    raw = (folder / "signature-1").read_bytes()
    assert raw.startswith(SIGSTORE_PREFIX), raw[:20]
    doc = json.loads(raw[len(SIGSTORE_PREFIX):])
    layer = CosignLayer(doc["mimeType"], base64.b64decode(doc["payload"]), dict(doc["annotations"]))
    return SignedFixture((folder / "manifest.json").read_bytes(), layer)


def rekor_bundle(layer: CosignLayer, edit: Callable[[dict[str, Any]], None]) -> CosignLayer:
    """The layer with its `dev.sigstore.cosign/bundle` annotation edited by `edit`."""
    bundle = json.loads(layer.annotations["dev.sigstore.cosign/bundle"])
    edit(bundle)
    annotations = {**layer.annotations, "dev.sigstore.cosign/bundle": json.dumps(bundle)}
    return CosignLayer(layer.media_type, layer.payload, annotations)


def with_payload_digest(layer: CosignLayer, digest: str) -> CosignLayer:
    """The same layer whose payload names another image digest (the signature is left as is)."""
    doc = json.loads(layer.payload)
    doc["critical"]["image"]["docker-manifest-digest"] = digest
    return CosignLayer(layer.media_type, json.dumps(doc).encode(), layer.annotations)


def simple_signing(digest: str, reference: str = "example.test/app") -> bytes:
    """A cosign simple-signing payload for `digest`, as `cosign sign` writes it."""
    return json.dumps({"critical": {"identity": {"docker-reference": reference},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}, separators=(",", ":")).encode()


# --- the registry, with its storage reachable ---------------------------------------------------


@dataclass
class SignedRegistry:
    url: str  # where clients talk: the registry itself, or the referrers proxy in front of it
    host: str
    storage: Path  # the registry's `rootdirectory`
    registry_url: str  # the registry itself (pushes of the test set-up go here)

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=10)

    def seed_manifest(self, repository: str, tag: str, body: bytes) -> str:
        """Store a manifest whose blobs were never published, as the registry stores a pushed
        one: the blob under its digest, a revision link, and the tag's current and index links."""
        digest = sha256(body)
        hexdigest = digest.removeprefix("sha256:")
        v2 = self.storage / "docker" / "registry" / "v2"
        blob = v2 / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(body)
        manifests = v2 / "repositories" / repository / "_manifests"
        for link in (manifests / "revisions" / "sha256" / hexdigest / "link",
                     manifests / "tags" / tag / "current" / "link",
                     manifests / "tags" / tag / "index" / "sha256" / hexdigest / "link"):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.write_text(digest)
        return digest

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        with self.client() as c:
            start = c.post(f"{self.registry_url}/v2/{repository}/blobs/uploads/")
            start.raise_for_status()
            location = start.headers["Location"]
            if location.startswith("/"):
                location = self.registry_url + location
            sep = "&" if "?" in location else "?"
            c.put(f"{location}{sep}digest={digest}", content=data,
                  headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str,
                     through: str | None = None) -> httpx.Response:
        """PUT a manifest (through the referrers proxy when `through` is its URL)."""
        with self.client() as c:
            resp = c.put(f"{through or self.registry_url}/v2/{repository}/manifests/{reference}",
                         content=body, headers={"Content-Type": media_type})
        resp.raise_for_status()
        return resp

    def push_sig(self, repository: str, digest: str, layers: list[CosignLayer]) -> str:
        """cosign's `sha256-<hex>.sig`: an OCI manifest of simple-signing layers."""
        for layer in layers:
            self.push_blob(repository, layer.payload)
        config = json.dumps({
            "architecture": "", "os": "", "created": "0001-01-01T00:00:00Z",
            "config": {}, "history": [{"created": "0001-01-01T00:00:00Z"}],
            "rootfs": {"type": "layers", "diff_ids": [sha256(x.payload) for x in layers]},
        }).encode()
        self.push_blob(repository, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(config), "size": len(config)},
            "layers": [x.descriptor() for x in layers],
        }).encode()
        self.put_manifest(repository, digest.replace(":", "-") + ".sig", manifest, OCI_MANIFEST)
        return sha256(manifest)

    def push_bundle_referrer(self, repository: str, subject: str, bundle: bytes,
                             through: str | None = None, fallback_tag: bool = False) -> str:
        """A Sigstore bundle as an OCI 1.1 referrer of `subject` (cosign's new bundle format);
        with `fallback_tag`, also the `sha256-<hex>` index a client writes when the registry
        has no referrers API."""
        self.push_blob(repository, bundle)
        self.push_blob(repository, EMPTY_BLOB)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_TYPE,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256(EMPTY_BLOB), "size": 2,
                       "data": base64.b64encode(EMPTY_BLOB).decode()},
            "layers": [{"mediaType": BUNDLE_TYPE, "digest": sha256(bundle), "size": len(bundle)}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 0},
            "annotations": {"dev.sigstore.bundle.content": "dsse-envelope"},
        }).encode()
        digest = sha256(manifest)
        self.put_manifest(repository, digest, manifest, OCI_MANIFEST, through)
        if fallback_tag:
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
                 "artifactType": BUNDLE_TYPE}]}).encode()
            self.put_manifest(repository, subject.replace(":", "-"), index, OCI_INDEX)
        return digest


# --- a referrers API in front of a registry without one ----------------------------------------

_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass
class ReferrersProxy:
    """Distribution 1.1's referrers API over a registry that lacks it (see the module doc)."""

    upstream: str
    referrers: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    refuse: int | None = None  # answer the referrers API with this status (off-spec, not 404)
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        self.seen.append(f"{method} {path}{'?' + query if query else ''}")
        m = _REFERRERS.match(path)
        if m and method == "GET" and self.refuse is not None:  # an off-spec registry
            data = b'{"errors": [{"code": "UNSUPPORTED", "message": "not supported"}]}'
            start(f"{self.refuse} Refused", [("Content-Type", "application/json"),
                                            ("Content-Length", str(len(data)))])
            return [data]
        if m and method == "GET":
            return self._referrers(m["name"], m["digest"], query, start)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_") and k != "HTTP_CONNECTION"}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        with httpx.Client(timeout=30) as c:
            resp = c.request(method, f"{self.upstream}{path}{'?' + query if query else ''}",
                             headers=headers, content=body)
        out = [(k, v) for k, v in resp.headers.items()
               if k.lower() not in ("transfer-encoding", "connection", "content-encoding")]
        m = _MANIFEST.match(path)
        if m and method == "PUT" and resp.status_code == 201 and body:
            subject = self._record(m["name"], body, environ.get("CONTENT_TYPE", ""))
            if subject:
                out.append(("OCI-Subject", subject))
        start(f"{resp.status_code} {resp.reason_phrase}", out)
        return [resp.content]

    def _record(self, name: str, body: bytes, media_type: str) -> str | None:
        doc = json.loads(body)
        subject = (doc.get("subject") or {}).get("digest")
        if not subject:
            return None
        descriptor = {"mediaType": doc.get("mediaType") or media_type, "digest": sha256(body),
                      "size": len(body),
                      "artifactType": doc.get("artifactType") or doc["config"]["mediaType"]}
        if doc.get("annotations"):
            descriptor["annotations"] = doc["annotations"]
        with self.lock:
            self.referrers.setdefault((name, subject), []).append(descriptor)
        return str(subject)

    def _referrers(self, name: str, digest: str, query: str,
                   start: Callable[..., Any]) -> list[bytes]:
        if not _DIGEST.match(digest):
            data = json.dumps({"errors": [{"code": "DIGEST_INVALID",
                                           "message": "provided digest did not match"}]}).encode()
            start("400 Bad Request", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(data)))])
            return [data]
        from urllib.parse import parse_qs

        wanted = parse_qs(query).get("artifactType", [])
        with self.lock:
            found = list(self.referrers.get((name, digest), []))
        headers = [("Content-Type", OCI_INDEX)]
        if wanted:
            found = [d for d in found if d["artifactType"] in wanted]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}).encode()
        start("200 OK", [*headers, ("Content-Length", str(len(data)))])
        return [data]


# --- no traffic but loopback ---------------------------------------------------------------------


def loopback(address: Any) -> bool:
    """Is this socket address on this machine (127.0.0.0/8, ::1, a Unix socket path)?"""
    if isinstance(address, str | bytes):
        return True  # AF_UNIX
    host = str(address[0])
    return host == "localhost" or host.startswith("127.") or host in ("::1", "0:0:0:0:0:0:0:1")


class NetworkBlocked(OSError):
    pass


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (before any packet) every connection and name lookup that is not loopback; yields
    the attempts refused, which a test may assert is empty."""
    refused: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not loopback(address):
            refused.append(f"connect {address}")
            raise NetworkBlocked(f"test tried to reach {address}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not loopback(address):
            refused.append(f"connect {address}")
            raise NetworkBlocked(f"test tried to reach {address}")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not loopback((host.decode() if isinstance(host, bytes) else host,)):
            refused.append(f"resolve {host}")
            raise NetworkBlocked(f"test tried to resolve {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield refused
