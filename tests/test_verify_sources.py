"""Verify before bump from every kind of registry source: an OCI image layout on disk and ECR's
API (under moto, its requests checked against botocore's model), through `SourceFetch`.

A cosign `.sig` is an OCI manifest under the tag `sha256-<hex>.sig`, whose layers are
simple-signing payloads: tags that begin like a digest must still be read as tags.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tagsync.reference import ImageName
from tagsync.registry.ecr import EcrSource
from tagsync.registry.layout import REF_NAME, LayoutSource
from tagsync.verify import Reason, RegistryFetch, SourceFetch, Verdict, Verifier, VerifyPolicy
from tests.servers.fixtures import MotoServer
from tests.servers.signed import (
    OCI_INDEX,
    OCI_MANIFEST,
    SIMPLE_SIGNING,
    CosignLayer,
    load_signed,
    sha256,
    signatures_dir,
    with_payload_digest,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def key_policy(name: str = "cosign.pub") -> VerifyPolicy:
    return VerifyPolicy(key=str(signatures_dir() / "containers-image" / name))


def sig_manifest(layers: list[CosignLayer]) -> tuple[bytes, bytes]:
    """cosign's `.sig` manifest around `layers`, and its config blob."""
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": [sha256(x.payload) for x in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": sha256(config),
                                      "size": len(config)},
                           "layers": [x.descriptor() for x in layers]}).encode()
    return manifest, config


def sig_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"


# --- an OCI image layout ----------------------------------------------------------------------


@dataclass
class Layout:
    """`<root>/<repository>/` as `skopeo copy … oci:<dir>:<tag>` writes it: blobs by digest,
    tags as `org.opencontainers.image.ref.name` annotations in `index.json`."""

    root: Path
    repository: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.root / self.repository

    def blob(self, data: bytes) -> str:
        digest = sha256(data)
        path = self.dir / "blobs" / "sha256" / digest.removeprefix("sha256:")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return digest

    def tag(self, tag: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
        digest = self.blob(manifest)
        self.entries = [e for e in self.entries if e["annotations"][REF_NAME] != tag]
        self.entries.append({"mediaType": media_type, "digest": digest, "size": len(manifest),
                             "annotations": {REF_NAME: tag}})
        (self.dir / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (self.dir / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries}))
        return digest

    def sign(self, digest: str, layers: list[CosignLayer]) -> None:
        manifest, config = sig_manifest(layers)
        self.blob(config)
        for layer in layers:
            self.blob(layer.payload)
        self.tag(sig_tag(digest), manifest)


def layout_with(tmp_path: Path, fixture: str, layer: CosignLayer | None = None) -> tuple[Layout, str]:
    """The fixture's signed image as `app:latest` in a layout, and its `.sig`."""
    signed = load_signed(fixture)
    layout = Layout(tmp_path / "layouts", "team/app")
    digest = layout.tag("latest", signed.manifest)
    layout.sign(digest, [layer or signed.layer])
    return layout, digest


def verify_layout(layout: Layout, digest: str, policy: VerifyPolicy) -> Verdict:
    fetch = SourceFetch(LayoutSource(layout.root))
    return asyncio.run(Verifier(policy).verify(fetch, f"example.test/{layout.repository}", digest))


def test_a_key_signed_image_in_an_image_layout_is_accepted(tmp_path: Path) -> None:
    layout, digest = layout_with(tmp_path, "dir-img-cosign-valid")
    verdict = verify_layout(layout, digest, key_policy())
    assert verdict.ok, verdict
    assert verdict.accepted is not None and verdict.accepted.location == f"{sig_tag(digest)} layer 0"


def test_a_tampered_signature_in_an_image_layout_is_refused_with_its_reason(tmp_path: Path) -> None:
    signed = load_signed("dir-img-cosign-valid")
    layout, digest = layout_with(tmp_path, "dir-img-cosign-valid",
                                 with_payload_digest(signed.layer, "sha256:" + "ab" * 32))
    verdict = verify_layout(layout, digest, key_policy())
    assert verdict.reason is Reason.bad_signature
    assert "does not verify" in verdict.detail


def test_an_unsigned_image_in_an_image_layout_has_no_signature(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layouts", "team/app")
    digest = layout.tag("latest", load_signed("dir-img-cosign-valid").manifest)
    assert verify_layout(layout, digest, key_policy()).reason is Reason.no_signature


def test_an_image_layout_has_no_referrers_api_so_the_tag_schema_is_read(tmp_path: Path) -> None:
    fetch = SourceFetch(LayoutSource(tmp_path))
    assert asyncio.run(fetch.referrers("example.test/team/app", "sha256:" + "0" * 64)) is None


def test_the_old_adapter_name_still_adapts_any_source(tmp_path: Path) -> None:
    assert RegistryFetch is SourceFetch
    assert RegistryFetch(LayoutSource(tmp_path)).source.root == tmp_path  # type: ignore[attr-defined]


# --- ECR's API, under moto ------------------------------------------------------------------------


def _tls_files(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the stand-in for S3's presigned URLs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "layers.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "layers.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "layers.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return tmp / "layers.crt", tmp / "layers.key"


@dataclass
class LayerStore:
    """What ECR's `GetDownloadUrlForLayer` points at (an S3 presigned HTTPS URL), over TLS on
    loopback: serves a layer only under the path of its own digest, and only while asked for."""

    url: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    served: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        digest = environ.get("PATH_INFO", "").removeprefix("/layers/")
        self.served.append(digest)
        data = self.blobs.get(digest)
        if data is None:
            start("403 Forbidden", [("Content-Type", "application/xml")])
            return [b"<Error><Code>AccessDenied</Code></Error>"]
        start("200 OK", [("Content-Type", "application/octet-stream"),
                         ("Content-Length", str(len(data)))])
        return [data]


@pytest.fixture
def layer_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LayerStore]:
    cert, key = _tls_files(tmp_path)
    store = LayerStore("")
    # port 0: the kernel's choice (a port picked first could be taken before the bind)
    server: WSGIServer = make_server("127.0.0.1", 0, store)
    store.url = f"https://127.0.0.1:{server.server_port}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts this CA, as it would a real one
    yield store
    server.shutdown()
    server.server_close()


@dataclass
class Ecr:
    """A repository on moto's ECR, pushed to as a client pushes through ECR's API: layers by
    InitiateLayerUpload/UploadLayerPart/CompleteLayerUpload, manifests by PutImage with their
    real digest (moto would otherwise invent one)."""

    client: Any
    store: LayerStore
    repository: str = "team/app"

    def layer(self, data: bytes) -> str:
        upload = self.client.initiate_layer_upload(repositoryName=self.repository)
        self.client.upload_layer_part(repositoryName=self.repository, uploadId=upload["uploadId"],
                                      partFirstByte=0, partLastByte=len(data) - 1,
                                      layerPartBlob=data)
        done = self.client.complete_layer_upload(repositoryName=self.repository,
                                                 uploadId=upload["uploadId"],
                                                 layerDigests=[sha256(data)])
        assert done["layerDigest"] == sha256(data)
        self.store.blobs[sha256(data)] = data
        return sha256(data)

    def put(self, tag: str, manifest: bytes) -> str:
        self.client.put_image(repositoryName=self.repository, imageManifest=manifest.decode(),
                              imageTag=tag, imageDigest=sha256(manifest),
                              imageManifestMediaType=json.loads(manifest)["mediaType"])
        return sha256(manifest)

    def sign(self, digest: str, layers: list[CosignLayer]) -> None:
        manifest, config = sig_manifest(layers)
        self.layer(config)
        for layer in layers:
            self.layer(layer.payload)
        self.put(sig_tag(digest), manifest)


def _download_urls(client: Any, store: LayerStore) -> Callable[..., Any]:
    """moto has no GetDownloadUrlForLayer (NotImplementedError). This answers it as ECR does,
    after the contract has checked the request: a URL for a layer the repository holds (asked of
    moto with BatchCheckLayerAvailability), LayersNotFoundException for any other."""
    from botocore.awsrequest import AWSResponse

    def answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        asked = json.loads(params["body"])
        found = client.batch_check_layer_availability(repositoryName=asked["repositoryName"],
                                                      layerDigests=[asked["layerDigest"]])
        meta = {"HTTPStatusCode": 200, "RequestId": "test"}
        if not found["layers"]:
            return AWSResponse("", 400, {}, None), {
                "Error": {"Code": "LayersNotFoundException",
                          "Message": f"The image layer '{asked['layerDigest']}' does not exist"},
                "ResponseMetadata": {**meta, "HTTPStatusCode": 400}}
        return AWSResponse("", 200, {}, None), {
            "downloadUrl": f"{store.url}/layers/{asked['layerDigest']}",
            "layerDigest": asked["layerDigest"], "ResponseMetadata": meta}

    return answer


@pytest.fixture
def ecr(moto: MotoServer, layer_store: LayerStore) -> Ecr:
    client = boto3.client("ecr", region_name=REGION)
    client.create_repository(repositoryName="team/app")
    helper = boto3.client("ecr", region_name=REGION)
    client.meta.events.register("before-call.ecr.GetDownloadUrlForLayer",
                                _download_urls(helper, layer_store))
    return Ecr(client, layer_store)


def verify_ecr(ecr: Ecr, digest: str, policy: VerifyPolicy) -> Verdict:
    source = EcrSource(ACCOUNT, REGION, client=ecr.client)
    return asyncio.run(Verifier(policy).verify(SourceFetch(source), f"{HOST}/{ecr.repository}",
                                               digest))


def test_a_key_signed_image_on_ecr_is_accepted(ecr: Ecr) -> None:
    signed = load_signed("dir-img-cosign-valid")
    digest = ecr.put("latest", signed.manifest)
    ecr.sign(digest, [signed.layer])
    verdict = verify_ecr(ecr, digest, key_policy())
    assert verdict.ok, verdict
    assert ecr.store.served == [sha256(signed.layer.payload)]


def test_an_ecr_layer_download_is_counted_with_the_api_call_that_gave_its_url(ecr: Ecr) -> None:
    """The presigned download is one of the run's requests too: the summary's count is honest."""
    data = b"a layer"
    digest = ecr.layer(data)
    source = EcrSource(ACCOUNT, REGION, client=ecr.client)
    assert asyncio.run(source.blob(ecr_image(ecr), digest)) == data
    assert source.requests == 2  # GetDownloadUrlForLayer, then the download


def test_a_tampered_signature_on_ecr_is_refused_with_its_reason(ecr: Ecr) -> None:
    signed = load_signed("dir-img-cosign-valid")
    digest = ecr.put("latest", signed.manifest)
    ecr.sign(digest, [with_payload_digest(signed.layer, "sha256:" + "cd" * 32)])
    verdict = verify_ecr(ecr, digest, key_policy())
    assert verdict.reason is Reason.bad_signature
    assert f"{sig_tag(digest)} layer 0" in verdict.detail


def test_an_unsigned_image_on_ecr_has_no_signature(ecr: Ecr) -> None:
    digest = ecr.put("latest", load_signed("dir-img-cosign-valid").manifest)
    assert verify_ecr(ecr, digest, key_policy()).reason is Reason.no_signature


def test_a_signature_layer_ecr_does_not_hold_is_malformed_not_a_crash(ecr: Ecr) -> None:
    """The `.sig` names a payload never uploaded: ECR refuses its download URL."""
    signed = load_signed("dir-img-cosign-valid")
    digest = ecr.put("latest", signed.manifest)
    manifest, config = sig_manifest([signed.layer])
    ecr.layer(config)
    ecr.put(sig_tag(digest), manifest)
    verdict = verify_ecr(ecr, digest, key_policy())
    assert verdict.reason is Reason.malformed
    assert "missing" in verdict.detail


def test_ecr_reads_a_sig_tag_as_a_tag_not_a_digest(ecr: Ecr) -> None:
    signed = load_signed("dir-img-cosign-valid")
    digest = ecr.put("latest", signed.manifest)
    ecr.sign(digest, [signed.layer])
    source = EcrSource(ACCOUNT, REGION, client=ecr.client)
    body, media_type = asyncio.run(source.get(ecr_image(ecr), sig_tag(digest)))
    assert media_type == OCI_MANIFEST
    assert json.loads(body)["layers"][0]["mediaType"] == SIMPLE_SIGNING


def ecr_image(ecr: Ecr) -> ImageName:
    return ImageName(HOST, ecr.repository)
