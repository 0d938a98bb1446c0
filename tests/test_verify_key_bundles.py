"""Key-based Sigstore bundles (`cosign sign --new-bundle-format --key …`): a bundle v0.3 whose
verification material is a `publicKey` hint, not a certificate, attached as an OCI 1.1 referrer.
Checked with the policy's key and `cryptography` alone, never sigstore-python.

The bundles are built here as protobuf-specs' JSON writes them (camelCase, bytes in standard
base64, int64 as strings), signed with fresh ECDSA P-256, Ed25519 and RSA keys; their Rekor
entries are signed by a test log whose key sits in a test trusted root.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tagsync.registry.layout import LayoutSource
from tagsync.verify import Reason, SourceFetch, Verdict, Verifier, VerifyPolicy
from tests.servers.signed import BUNDLE_TYPE, OCI_INDEX, OCI_MANIFEST, load_signed, loopback_only, sha256
from tests.test_verify import (
    ACTIONS,
    CODY,
    GITHUB_OAUTH,
    Registries,
    attestation_bundle,
    check,
    keyless_policy,
    registries,
    repo,
)
from tests.test_verify_sources import Layout

pytestmark = [pytest.mark.servers, pytest.mark.usefixtures("loopback_only")]
assert loopback_only and registries and repo  # fixtures, used by name

IN_TOTO = "application/vnd.in-toto+json"
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
WHEN = 1767225600  # 2026-01-01T00:00:00Z


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pem(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class Signer:
    """A private key, signing as cosign does with it: ECDSA and RSA (PKCS#1 v1.5) over SHA-256,
    Ed25519 over the message itself."""

    kind: str
    key: Any

    @classmethod
    def new(cls, kind: str = "ecdsa") -> Signer:
        if kind == "ecdsa":
            return cls(kind, ec.generate_private_key(ec.SECP256R1()))
        if kind == "rsa":
            return cls(kind, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return cls(kind, ed25519.Ed25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        if self.kind == "ecdsa":
            return bytes(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        if self.kind == "rsa":
            return bytes(self.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        return bytes(self.key.sign(data))

    @property
    def pem(self) -> bytes:
        return pem(self.key.public_key())

    def policy(self, tmp_path: Path, **extra: Any) -> VerifyPolicy:
        path = tmp_path / f"{self.kind}-{id(self)}.pub"
        path.write_bytes(self.pem)
        return VerifyPolicy(key=str(path), **extra)


@dataclass
class RekorLog:
    """A Rekor stand-in: its key in a trusted root, and inclusion promises (SETs) it signs."""

    key: ec.EllipticCurvePrivateKey
    root: Path

    @property
    def log_id(self) -> bytes:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(der).digest()

    @classmethod
    def new(cls, tmp_path: Path) -> RekorLog:
        key = ec.generate_private_key(ec.SECP256R1())
        log = cls(key, tmp_path / "trusted_root.json")
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        log.root.write_text(json.dumps({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "https://rekor.test", "hashAlgorithm": "SHA2_256",
                       "publicKey": {"rawBytes": b64(der), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                     "validFor": {"start": "2025-01-01T00:00:00Z"}},
                       "logId": {"keyId": b64(log.log_id)}}],
            "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []}))
        return log

    def entry(self, body: dict[str, Any], index: int = 42) -> dict[str, Any]:
        """A tlog entry as bundles carry it, with a SET over (body, time, log id, index)."""
        canonical_body = b64(json.dumps(body, separators=(",", ":")).encode())
        promise = json.dumps({"body": canonical_body, "integratedTime": WHEN,
                              "logID": self.log_id.hex(), "logIndex": index},
                             sort_keys=True, separators=(",", ":")).encode()
        return {"logIndex": str(index), "logId": {"keyId": b64(self.log_id)},
                "kindVersion": {"kind": body["kind"], "version": "0.0.1"},
                "integratedTime": str(WHEN),
                "inclusionPromise": {"signedEntryTimestamp": b64(self.key.sign(
                    promise, ec.ECDSA(hashes.SHA256())))},
                "canonicalizedBody": canonical_body}


def statement(*digests: str) -> bytes:
    """cosign's in-toto statement for `cosign sign` in the new bundle format."""
    return json.dumps({"_type": "https://in-toto.io/Statement/v1",
                       "subject": [{"name": "example.test/app",
                                    "digest": {"sha256": d.removeprefix("sha256:")}}
                                   for d in digests],
                       "predicateType": COSIGN_SIGN, "predicate": {}}).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def dsse_bundle(signer: Signer, payload: bytes, log: RekorLog | None = None,
                payload_type: str = IN_TOTO, logged: bytes | None = None,
                logged_key: bytes | None = None) -> dict[str, Any]:
    """A DSSE bundle; with `log`, its `dsse` Rekor entry (of `logged` instead of the signature,
    and `logged_key` instead of the signer's public key, when given)."""
    signature = signer.sign(pae(payload_type, payload))
    material: dict[str, Any] = {"publicKey": {"hint": b64(hashlib.sha256(signer.pem).digest())}}
    if log is not None:
        material["tlogEntries"] = [log.entry({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": "00" * 32},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": b64(logged or signature),
                            "verifier": b64(logged_key or signer.pem)}]}})]
    return {"mediaType": BUNDLE_TYPE, "verificationMaterial": material,
            "dsseEnvelope": {"payload": b64(payload), "payloadType": payload_type,
                             "signatures": [{"sig": b64(signature), "keyid": ""}]}}


def message_bundle(signer: Signer, message: bytes, log: RekorLog | None = None) -> dict[str, Any]:
    """A message-signature bundle over `message` (here, the image manifest itself)."""
    signature = signer.sign(message)
    digest = hashlib.sha256(message).digest()
    material: dict[str, Any] = {"publicKey": {"hint": ""}}
    if log is not None:
        material["tlogEntries"] = [log.entry({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
            "signature": {"content": b64(signature),
                          "publicKey": {"content": b64(signer.pem)}}}})]
    return {"mediaType": BUNDLE_TYPE, "verificationMaterial": material,
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
                                 "signature": b64(signature)}}


def image(registries: Registries, repo: str) -> tuple[bytes, str]:
    """A real image manifest in the registry; returns its bytes and digest."""
    manifest = load_signed("dir-img-cosign-valid").manifest
    return manifest, registries.proxied.seed_manifest(repo, "latest", manifest)


def attach(registries: Registries, repo: str, subject: str, bundle: dict[str, Any] | bytes) -> None:
    """The bundle as an OCI 1.1 referrer of `subject`, pushed through the referrers API."""
    raw = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    registries.proxied.push_bundle_referrer(repo, subject, raw, through=registries.proxied.url)


def verify(registries: Registries, repo: str, digest: str, policy: VerifyPolicy) -> Verdict:
    return check(registries.proxied, repo, digest, policy)


KINDS = ["ecdsa", "ed25519", "rsa"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_signed_dsse_bundle_is_accepted(registries: Registries, repo: str, kind: str,
                                              tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer = Signer.new(kind)
    attach(registries, repo, digest, dsse_bundle(signer, statement(digest)))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path))
    assert verdict.ok, verdict
    assert verdict.accepted is not None and verdict.accepted.form == "sigstore-bundle"
    assert verdict.signer is not None and verdict.signer.startswith("key SHA256:")
    assert "referrers API" in verdict.accepted.location


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_signed_message_signature_bundle_over_the_manifest_is_accepted(
        registries: Registries, repo: str, kind: str, tmp_path: Path) -> None:
    manifest, digest = image(registries, repo)
    signer = Signer.new(kind)
    attach(registries, repo, digest, message_bundle(signer, manifest))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path))
    assert verdict.ok, verdict


def test_a_bundle_signed_with_another_key_is_a_bad_signature(registries: Registries, repo: str,
                                                             tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    attach(registries, repo, digest, dsse_bundle(Signer.new(), statement(digest)))
    verdict = verify(registries, repo, digest, Signer.new().policy(tmp_path))
    assert verdict.reason is Reason.bad_signature
    assert "does not verify with key SHA256:" in verdict.detail


def test_a_message_signature_with_another_key_is_a_bad_signature(registries: Registries, repo: str,
                                                                 tmp_path: Path) -> None:
    manifest, digest = image(registries, repo)
    attach(registries, repo, digest, message_bundle(Signer.new("rsa"), manifest))
    assert verify(registries, repo, digest,
                  Signer.new("rsa").policy(tmp_path)).reason is Reason.bad_signature


def test_a_statement_about_another_digest_is_a_digest_mismatch(registries: Registries, repo: str,
                                                               tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer = Signer.new()
    other = "sha256:" + "ab" * 32
    attach(registries, repo, digest, dsse_bundle(signer, statement(other)))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path))
    assert verdict.reason is Reason.digest_mismatch
    assert "ab" * 32 in verdict.detail and digest in verdict.detail


def test_a_message_signature_over_another_artifact_is_a_digest_mismatch(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer = Signer.new()
    attach(registries, repo, digest, message_bundle(signer, b"another artifact"))
    assert verify(registries, repo, digest, signer.policy(tmp_path)).reason is Reason.digest_mismatch


def test_a_tampered_payload_is_a_bad_signature(registries: Registries, repo: str,
                                               tmp_path: Path) -> None:
    """The statement swapped for one about this digest after signing (the envelope's signature
    was over another statement)."""
    _, digest = image(registries, repo)
    signer = Signer.new()
    bundle = dsse_bundle(signer, statement("sha256:" + "cd" * 32))
    bundle["dsseEnvelope"]["payload"] = b64(statement(digest))
    attach(registries, repo, digest, bundle)
    assert verify(registries, repo, digest, signer.policy(tmp_path)).reason is Reason.bad_signature


def test_a_tampered_payload_type_is_a_bad_signature(registries: Registries, repo: str,
                                                    tmp_path: Path) -> None:
    """DSSE signs the payload type too (PAE)."""
    _, digest = image(registries, repo)
    signer = Signer.new("ed25519")
    bundle = dsse_bundle(signer, statement(digest), payload_type="application/json")
    bundle["dsseEnvelope"]["payloadType"] = IN_TOTO
    attach(registries, repo, digest, bundle)
    assert verify(registries, repo, digest, signer.policy(tmp_path)).reason is Reason.bad_signature


def test_a_keyless_policy_refuses_a_key_bundle_as_the_wrong_identity(registries: Registries,
                                                                     repo: str) -> None:
    _, digest = image(registries, repo)
    attach(registries, repo, digest, dsse_bundle(Signer.new(), statement(digest)))
    verdict = verify(registries, repo, digest, keyless_policy("ci@example.test", ACTIONS))
    assert verdict.reason is Reason.wrong_identity
    assert "plain key" in verdict.detail


def test_a_key_policy_refuses_a_certificate_bundle_as_the_wrong_identity(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    """The real keyless attestation bundle, under a key policy."""
    from tests.test_verify import ATTESTATION_SUBJECT

    attach(registries, repo, ATTESTATION_SUBJECT, attestation_bundle())
    verdict = verify(registries, repo, ATTESTATION_SUBJECT, Signer.new().policy(tmp_path))
    assert verdict.reason is Reason.wrong_identity
    assert "certificate" in verdict.detail
    assert CODY["issuer"] == GITHUB_OAUTH  # the bundle is Cody's, through GitHub: not our key


def test_require_tlog_refuses_a_bundle_without_a_log_entry(registries: Registries, repo: str,
                                                           tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer, log = Signer.new(), RekorLog.new(tmp_path)
    attach(registries, repo, digest, dsse_bundle(signer, statement(digest)))
    verdict = verify(registries, repo, digest,
                     signer.policy(tmp_path, trusted_root=str(log.root), require_tlog=True))
    assert verdict.reason is Reason.missing_tlog


@pytest.mark.parametrize("form", ["dsse", "message"])
def test_a_set_from_a_log_of_the_trusted_root_is_accepted_with_its_time(
        registries: Registries, repo: str, tmp_path: Path, form: str) -> None:
    manifest, digest = image(registries, repo)
    signer, log = Signer.new(), RekorLog.new(tmp_path)
    bundle = (dsse_bundle(signer, statement(digest), log) if form == "dsse"
              else message_bundle(signer, manifest, log))
    attach(registries, repo, digest, bundle)
    verdict = verify(registries, repo, digest,
                     signer.policy(tmp_path, trusted_root=str(log.root), require_tlog=True))
    assert verdict.ok, verdict
    assert verdict.accepted is not None and verdict.accepted.signed_at is not None
    assert int(verdict.accepted.signed_at.timestamp()) == WHEN


def _flip_set(bundle: dict[str, Any]) -> None:
    promise = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    raw = bytearray(base64.b64decode(promise["signedEntryTimestamp"]))
    raw[10] ^= 0x01
    promise["signedEntryTimestamp"] = b64(bytes(raw))


def _edit_time(bundle: dict[str, Any]) -> None:
    bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = str(WHEN + 1)


@pytest.mark.parametrize("edit", [_flip_set, _edit_time], ids=["set-flipped", "time-edited"])
def test_a_wrong_set_is_a_bad_transparency_log_entry(registries: Registries, repo: str,
                                                     tmp_path: Path,
                                                     edit: Callable[[dict[str, Any]], None]) -> None:
    _, digest = image(registries, repo)
    signer, log = Signer.new(), RekorLog.new(tmp_path)
    bundle = dsse_bundle(signer, statement(digest), log)
    edit(bundle)
    attach(registries, repo, digest, bundle)
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, trusted_root=str(log.root)))
    assert verdict.reason is Reason.bad_tlog
    assert "SET" in verdict.detail


def test_a_log_entry_of_another_signature_is_a_bad_transparency_log_entry(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    """A valid SET, but over an entry that logged some other signature of the key."""
    _, digest = image(registries, repo)
    signer, log = Signer.new(), RekorLog.new(tmp_path)
    other = signer.sign(b"something else")
    attach(registries, repo, digest, dsse_bundle(signer, statement(digest), log, logged=other))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, trusted_root=str(log.root)))
    assert verdict.reason is Reason.bad_tlog
    assert "another signature" in verdict.detail


def test_a_log_entry_naming_another_key_is_a_bad_transparency_log_entry(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer, log = Signer.new(), RekorLog.new(tmp_path)
    bundle = dsse_bundle(signer, statement(digest), log, logged_key=Signer.new().pem)
    attach(registries, repo, digest, bundle)
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, trusted_root=str(log.root)))
    assert verdict.reason is Reason.bad_tlog
    assert "another key" in verdict.detail


def test_a_message_signature_logged_for_another_digest_is_a_bad_transparency_log_entry(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    """The hashedrekord entry's hash must be the digest the bundle signs."""
    manifest, digest = image(registries, repo)
    signer, log = Signer.new(), RekorLog.new(tmp_path)
    bundle = message_bundle(signer, manifest, log)
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    body["spec"]["data"]["hash"]["value"] = hashlib.sha256(b"another artifact").hexdigest()
    bundle["verificationMaterial"]["tlogEntries"] = [log.entry(body)]
    attach(registries, repo, digest, bundle)
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, trusted_root=str(log.root)))
    assert verdict.reason is Reason.bad_tlog
    assert "hash" in verdict.detail


def test_a_set_from_a_log_outside_the_trusted_root_is_untrusted(registries: Registries, repo: str,
                                                                tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer = Signer.new()
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours, theirs = RekorLog.new(tmp_path / "ours"), RekorLog.new(tmp_path / "theirs")
    attach(registries, repo, digest, dsse_bundle(signer, statement(digest), theirs))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, trusted_root=str(ours.root)))
    assert verdict.reason is Reason.untrusted_root


def test_a_key_bundle_is_found_through_the_tag_schema_without_a_referrers_api(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    _, digest = image(registries, repo)
    signer = Signer.new()
    raw = json.dumps(dsse_bundle(signer, statement(digest))).encode()
    registries.plain.push_bundle_referrer(repo, digest, raw, fallback_tag=True)
    verdict = check(registries.plain, repo, digest, signer.policy(tmp_path))
    assert verdict.ok, verdict
    assert verdict.accepted is not None and f"tag {digest.replace(':', '-')}" in verdict.accepted.location


def test_a_referrers_api_that_errs_is_passed_over_for_the_tag_schema(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    """The spec says 404 without the API; a registry that answers 405 is read like one without."""
    _, digest = image(registries, repo)
    signer = Signer.new()
    raw = json.dumps(dsse_bundle(signer, statement(digest))).encode()
    registries.plain.push_bundle_referrer(repo, digest, raw, fallback_tag=True)
    registries.proxy.refuse = 405
    try:
        verdict = check(registries.proxied, repo, digest, signer.policy(tmp_path))
    finally:
        registries.proxy.refuse = None
    assert verdict.ok, verdict
    assert verdict.accepted is not None and f"tag {digest.replace(':', '-')}" in verdict.accepted.location


def in_a_layout(tmp_path: Path, subject: bytes, signer: Signer) -> tuple[Verdict, bytes]:
    """`subject` tagged `latest` in an image layout, with a message-signature bundle over it
    under the `sha256-<hex>` tag schema; verified through the layout. Returns the verdict and
    the referrer manifest."""
    layout = Layout(tmp_path / "layouts", "team/app")
    digest = layout.tag("latest", subject)
    bundle = json.dumps(message_bundle(signer, subject)).encode()
    empty = layout.blob(b"{}")
    referrer = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": BUNDLE_TYPE, "digest": layout.blob(bundle), "size": len(bundle)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(subject)}}).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": layout.blob(referrer), "size": len(referrer),
         "artifactType": BUNDLE_TYPE}]}).encode()
    layout.tag(digest.replace(":", "-"), index, OCI_INDEX)
    verdict = asyncio.run(Verifier(signer.policy(tmp_path)).verify(
        SourceFetch(LayoutSource(layout.root)), "example.test/team/app", digest))
    return verdict, referrer


def test_a_key_bundle_in_an_image_layout_is_found_through_the_tag_schema(tmp_path: Path) -> None:
    manifest = load_signed("dir-img-cosign-valid").manifest
    verdict, referrer = in_a_layout(tmp_path, manifest, Signer.new("ed25519"))
    assert verdict.ok, verdict
    assert sha256(referrer) in verdict.accepted.location  # type: ignore[union-attr]


def test_a_message_signature_over_bytes_that_are_no_image_is_refused(tmp_path: Path) -> None:
    """A key that also signs release tarballs (`cosign sign-blob`) must not make a tarball's
    digest pass for a signed image, whatever a hostile registry serves under that digest."""
    verdict, _ = in_a_layout(tmp_path, b"release-1.0.tar.gz: not an image manifest",
                             Signer.new("ecdsa"))
    assert verdict.reason is Reason.malformed
    assert "not an image manifest" in verdict.detail


def test_key_bundles_never_import_sigstore(tmp_path: Path) -> None:
    """The `verify` extra stays optional for key-based bundles."""
    manifest = load_signed("dir-img-cosign-valid").manifest
    digest = sha256(manifest)
    signer = Signer.new()
    (tmp_path / "k.pub").write_bytes(signer.pem)
    bundle = json.dumps(dsse_bundle(signer, statement(digest))).encode()
    referrer = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_TYPE,
                           "layers": [{"mediaType": BUNDLE_TYPE, "digest": sha256(bundle),
                                       "size": len(bundle)}],
                           "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}})
    (tmp_path / "bundle.json").write_bytes(bundle)
    (tmp_path / "referrer.json").write_text(referrer)
    code = f"""
import asyncio, sys
from pathlib import Path
from tagsync.verify import Verifier, VerifyPolicy
tmp = Path({str(tmp_path)!r})
bundle, referrer = (tmp / "bundle.json").read_bytes(), (tmp / "referrer.json").read_bytes()
class Mem:
    async def manifest(self, image, ref):
        return (referrer, "") if ref == {sha256(referrer.encode())!r} else None
    async def blob(self, image, digest):
        return bundle
    async def referrers(self, image, digest, artifact_type=None):
        return [{{"artifactType": {BUNDLE_TYPE!r}, "digest": {sha256(referrer.encode())!r}}}]
verifier = Verifier(VerifyPolicy(key=str(tmp / "k.pub")))
verdict = asyncio.run(verifier.verify(Mem(), "example.test/app", {digest!r}))
print(verdict.ok, any(m.split(".")[0] in ("sigstore", "sigstore_models") for m in sys.modules))
"""
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["True", "False"], out.stderr
