"""Verify before bump: real cosign signatures and Sigstore bundles (../shared/fixtures/signatures)
served by the real CNCF registry, checked offline against the pinned public-good trust root.

Every test runs with non-loopback sockets refused: nothing here may reach Rekor, Fulcio or TUF.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tagsync.errors import ConfigError, InvalidReferenceError, RegistryError
from tagsync.http_policy import RetryPolicy
from tagsync.registry.oci import OciRegistry
from tagsync.verify import Reason, RegistryFetch, Verdict, Verifier, VerifyPolicy
from tests.servers.fixtures import _start_registry, _stop, serve_wsgi, unique_namespace
from tests.servers.images import lambda_base
from tests.servers.signed import (
    CosignLayer,
    ReferrersProxy,
    SignedRegistry,
    load_signed,
    loopback,
    loopback_only,
    rekor_bundle,
    sha256,
    signatures_dir,
    simple_signing,
    with_payload_digest,
)

pytestmark = [pytest.mark.servers, pytest.mark.usefixtures("loopback_only")]
assert loopback_only  # a fixture, used through pytestmark

MITR = "mitr@redhat.com"
GITHUB_OAUTH = "https://github.com/login/oauth"
ACTIONS = "https://token.actions.githubusercontent.com"
ATTESTATION_SUBJECT = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
WHEEL_SHA256 = "sha256:c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
WHEEL_IDENTITY = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"


@dataclass
class Registries:
    plain: SignedRegistry  # Debian's distribution 2.8: no referrers API
    proxied: SignedRegistry  # the same storage behind a referrers API
    proxy: ReferrersProxy


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    tmp = tmp_path_factory.mktemp("signed-registry")
    server = _start_registry(tmp)
    proxy = ReferrersProxy(server.url)
    wsgi = serve_wsgi(proxy)
    storage = tmp / "data"
    plain = SignedRegistry(server.url, server.host, storage, server.url)
    proxied = SignedRegistry(wsgi.url, wsgi.url.removeprefix("http://"), storage, server.url)
    yield Registries(plain, proxied, proxy)
    wsgi.stop()
    _stop(server.process)


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    return unique_namespace("signed/app", request)


def fixture_path(*parts: str) -> Path:
    return signatures_dir().joinpath(*parts)


def production_root() -> str:
    return str(fixture_path("sigstore-python", "trusted_root.json"))


def staging_root() -> str:
    """The staging (sigstage.dev) trust root that ships inside sigstore-python."""
    import sigstore

    path = (Path(sigstore.__file__).parent / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"
            / "trusted_root.json")
    assert path.exists(), path
    return str(path)


def key_policy(name: str = "cosign.pub", **extra: Any) -> VerifyPolicy:
    return VerifyPolicy(key=str(fixture_path("containers-image", name)), **extra)


def keyless_policy(identity: str = MITR, issuer: str = GITHUB_OAUTH, root: str | None = None,
                   **extra: Any) -> VerifyPolicy:
    return VerifyPolicy(identity=identity, issuer=issuer, trusted_root=root or production_root(),
                        **extra)


def check(registry: SignedRegistry, repository: str, digest: str,
          policy: VerifyPolicy | Verifier) -> Verdict:
    """Verify through the real OCI client and the adapter, as a run would."""
    async def go() -> Verdict:
        client = OciRegistry(registry.url, retry=RetryPolicy(attempts=0))
        try:
            verifier = policy if isinstance(policy, Verifier) else Verifier(policy)
            return await verifier.verify(RegistryFetch(client), f"{registry.host}/{repository}", digest)
        finally:
            await client.aclose()

    return asyncio.run(go())


def serve_signed(registry: SignedRegistry, repository: str, fixture: str,
                 layer: CosignLayer | None = None) -> str:
    """The fixture's signed manifest under `latest`, and its `.sig` around the real bytes."""
    signed = load_signed(fixture)
    digest = registry.seed_manifest(repository, "latest", signed.manifest)
    registry.push_sig(repository, digest, [layer or signed.layer])
    return digest


# --- key-based cosign `.sig` --------------------------------------------------------------------


def test_a_key_signed_image_is_accepted_with_its_key(registries: Registries, repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-valid")
    verdict = check(registries.plain, repo, digest, key_policy())
    assert verdict.ok, verdict
    assert verdict.reason is Reason.ok
    assert verdict.signer is not None and verdict.signer.startswith("key SHA256:")
    assert verdict.accepted is not None and verdict.accepted.form == "cosign-key"


def test_another_key_is_a_bad_signature(registries: Registries, repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-valid")
    verdict = check(registries.plain, repo, digest, key_policy("cosign2.pub"))
    assert not verdict.ok
    assert verdict.reason is Reason.bad_signature
    assert ".sig layer 0" in verdict.detail


def test_a_key_signature_with_a_rekor_entry_has_its_set_checked(registries: Registries,
                                                                 repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-key-rekor-valid")
    verdict = check(registries.plain, repo, digest,
                    key_policy("cosign2.pub", trusted_root=production_root()))
    assert verdict.ok, verdict
    assert verdict.accepted is not None
    assert verdict.accepted.signed_at == dt.datetime.fromtimestamp(1674251859, dt.UTC)


def test_an_edited_set_time_is_refused(registries: Registries, repo: str) -> None:
    signed = load_signed("dir-img-cosign-key-rekor-valid")
    layer = rekor_bundle(signed.layer, lambda b: b["Payload"].update(integratedTime=1674251860))
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-key-rekor-valid", layer)
    verdict = check(registries.plain, repo, digest,
                    key_policy("cosign2.pub", trusted_root=production_root()))
    assert verdict.reason is Reason.bad_tlog
    assert "SET" in verdict.detail


def test_a_signature_for_another_image_is_a_digest_mismatch(registries: Registries,
                                                            repo: str) -> None:
    """The real, valid signature of image 0489… attached to image 634a…."""
    other = load_signed("dir-img-cosign-key-rekor-valid")
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-valid", other.layer)
    verdict = check(registries.plain, repo, digest, key_policy("cosign2.pub"))
    assert verdict.reason is Reason.digest_mismatch
    assert other.digest in verdict.detail and digest in verdict.detail


def test_an_edited_payload_digest_breaks_the_key_signature(registries: Registries,
                                                           repo: str) -> None:
    signed = load_signed("dir-img-cosign-valid")
    layer = with_payload_digest(signed.layer, "sha256:" + "ab" * 32)
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-valid", layer)
    assert check(registries.plain, repo, digest, key_policy()).reason is Reason.bad_signature


def test_an_unsigned_image_has_no_signature(registries: Registries, repo: str) -> None:
    digest = registries.plain.seed_manifest(repo, "latest",
                                            load_signed("dir-img-cosign-valid").manifest)
    verdict = check(registries.plain, repo, digest, key_policy())
    assert not verdict.ok
    assert verdict.reason is Reason.no_signature
    assert verdict.findings == ()


def test_require_tlog_refuses_a_signature_without_rekor_entry(registries: Registries,
                                                              repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-valid")
    verdict = check(registries.plain, repo, digest,
                    key_policy(trusted_root=production_root(), require_tlog=True))
    assert verdict.reason is Reason.missing_tlog


def _sign(kind: str) -> tuple[bytes, Any]:
    """A fresh key of `kind` and a signer over bytes, as cosign signs with it."""
    if kind == "ecdsa-p384":
        key: Any = ec.generate_private_key(ec.SECP384R1())
        return _pem(key), lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _pem(key), lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    key = ed25519.Ed25519PrivateKey.generate()
    return _pem(key), key.sign


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("kind", ["ecdsa-p384", "rsa", "ed25519"])
def test_rsa_ed25519_and_other_ecdsa_keys_verify(registries: Registries, repo: str, kind: str,
                                                 tmp_path: Path) -> None:
    reg = registries.plain
    digest = reg.seed_manifest(repo, "latest", load_signed("dir-img-cosign-valid").manifest)
    pem, sign = _sign(kind)
    payload = simple_signing(digest)
    layer = CosignLayer("application/vnd.dev.cosign.simplesigning.v1+json", payload,
                        {"dev.cosignproject.cosign/signature": base64.b64encode(sign(payload)).decode()})
    reg.push_sig(repo, digest, [layer])
    (tmp_path / "key.pub").write_bytes(pem)
    assert check(reg, repo, digest, VerifyPolicy(key=str(tmp_path / "key.pub"))).ok


def test_one_good_signature_among_bad_ones_is_enough(registries: Registries, repo: str) -> None:
    reg = registries.plain
    good = load_signed("dir-img-cosign-valid")
    digest = reg.seed_manifest(repo, "latest", good.manifest)
    reg.push_sig(repo, digest, [load_signed("dir-img-cosign-key-rekor-valid").layer, good.layer])
    verdict = check(reg, repo, digest, key_policy())
    assert verdict.ok
    assert [f.reason for f in verdict.findings] == [Reason.bad_signature, Reason.ok]


# --- keyless, the legacy `.sig` form --------------------------------------------------------------


def test_a_keyless_signature_is_accepted_for_its_identity(registries: Registries,
                                                          repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    verdict = check(registries.plain, repo, digest, keyless_policy())
    assert verdict.ok, verdict
    assert verdict.signer == f"{MITR} (issuer {GITHUB_OAUTH})"
    assert verdict.accepted is not None
    assert verdict.accepted.signed_at == dt.datetime.fromtimestamp(1674247893, dt.UTC)


def test_an_identity_regex_matches_the_certificate(registries: Registries, repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    policy = VerifyPolicy(identity_regex=r".*@redhat\.com", issuer=GITHUB_OAUTH,
                          trusted_root=production_root())
    assert check(registries.plain, repo, digest, policy).ok


STALLS = r"^(?:.|.|.|.)*[#%]$"  # backtracks exponentially on any long identity (no `#`, `%`)


def test_a_backtracking_identity_regex_runs_out_of_time_naming_the_key() -> None:
    """The certificate's identity (`mitr@redhat.com`) meets a pattern written to backtrack: a
    typed error naming `verify.identity_regex` and the pattern, never a stall."""
    from cryptography import x509

    from tagsync.errors import PatternTimeoutError
    from tagsync.patterns import Budget, spending
    from tagsync.verify.trust import IdentityRule

    pem = load_signed("dir-img-cosign-fulcio-rekor-valid").layer.annotations[
        "dev.sigstore.cosign/certificate"]
    rule = IdentityRule(GITHUB_OAUTH, identity_regex=STALLS)
    with spending(Budget(per_match=0.02)), pytest.raises(PatternTimeoutError) as caught:
        rule.check(x509.load_pem_x509_certificate(pem.encode()))
    assert caught.value.key == "verify.identity_regex" and caught.value.pattern == STALLS


def test_a_backtracking_identity_regex_is_not_passed_off_as_a_bad_bundle() -> None:
    """sigstore-python calls the identity check: its running out of time comes back out as the
    config's error, not as a refused (malformed) bundle."""
    from tagsync.errors import PatternTimeoutError
    from tagsync.patterns import Budget, spending

    bundle = fixture_path("sigstore-python", "bundle_v3_github.whl.sigstore").read_bytes()
    policy = VerifyPolicy(identity_regex=STALLS, issuer=ACTIONS, trusted_root=production_root())
    with spending(Budget(per_match=0.02)), pytest.raises(PatternTimeoutError, match="identity_regex"):
        Verifier(policy).verify_bundle(bundle, WHEEL_SHA256)


def test_a_wrong_identity_is_refused(registries: Registries, repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    verdict = check(registries.plain, repo, digest, keyless_policy(identity="someone@example.com"))
    assert verdict.reason is Reason.wrong_identity
    assert MITR in verdict.detail and "someone@example.com" in verdict.detail


def test_a_partial_identity_regex_does_not_match(registries: Registries, repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    policy = VerifyPolicy(identity_regex="mitr", issuer=GITHUB_OAUTH, trusted_root=production_root())
    assert check(registries.plain, repo, digest, policy).reason is Reason.wrong_identity


def test_a_wrong_issuer_is_refused(registries: Registries, repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    verdict = check(registries.plain, repo, digest, keyless_policy(issuer=ACTIONS))
    assert verdict.reason is Reason.wrong_identity
    assert "issuer" in verdict.detail and GITHUB_OAUTH in verdict.detail


def test_the_staging_root_does_not_trust_a_production_signature(registries: Registries,
                                                                repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    verdict = check(registries.plain, repo, digest, keyless_policy(root=staging_root()))
    assert verdict.reason is Reason.untrusted_root
    assert "Rekor log" in verdict.detail


def test_a_certificate_without_a_known_ct_log_entry_is_untrusted(registries: Registries, repo: str,
                                                                  tmp_path: Path) -> None:
    """The same production root with its CT logs removed: the embedded SCT proves nothing."""
    root = json.loads(Path(production_root()).read_bytes())
    root["ctlogs"] = []
    (tmp_path / "no-ct.json").write_text(json.dumps(root))
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid")
    verdict = check(registries.plain, repo, digest, keyless_policy(root=str(tmp_path / "no-ct.json")))
    assert verdict.reason is Reason.untrusted_root
    assert "SCT" in verdict.detail


def test_an_edited_keyless_payload_no_longer_matches_its_log_entry(registries: Registries,
                                                                   repo: str) -> None:
    signed = load_signed("dir-img-cosign-fulcio-rekor-valid")
    layer = with_payload_digest(signed.layer, "sha256:" + "cd" * 32)
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid", layer)
    verdict = check(registries.plain, repo, digest, keyless_policy())
    assert verdict.reason is Reason.bad_tlog
    assert "payload's sha256" in verdict.detail


def test_an_edited_keyless_set_time_is_refused(registries: Registries, repo: str) -> None:
    signed = load_signed("dir-img-cosign-fulcio-rekor-valid")
    layer = rekor_bundle(signed.layer, lambda b: b["Payload"].update(integratedTime=1674247894))
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-fulcio-rekor-valid", layer)
    assert check(registries.plain, repo, digest, keyless_policy()).reason is Reason.bad_tlog


def test_a_key_signature_does_not_satisfy_an_identity_policy(registries: Registries,
                                                             repo: str) -> None:
    digest = serve_signed(registries.plain, repo, "dir-img-cosign-valid")
    verdict = check(registries.plain, repo, digest, keyless_policy())
    assert verdict.reason is Reason.wrong_identity
    assert "plain key" in verdict.detail


# --- Sigstore bundles as OCI 1.1 referrers -----------------------------------------------------


def attestation_bundle() -> bytes:
    return fixture_path("cosign", "oci-attestation.sigstore.json").read_bytes()


CODY = {"identity": "cody@soyland.com", "issuer": GITHUB_OAUTH}


def test_a_bundle_found_through_the_referrers_api_is_accepted(registries: Registries,
                                                              repo: str) -> None:
    reg = registries.proxied
    response_subject = reg.push_bundle_referrer(repo, ATTESTATION_SUBJECT, attestation_bundle(),
                                                through=reg.url)
    verdict = check(reg, repo, ATTESTATION_SUBJECT, keyless_policy(**CODY))
    assert verdict.ok, verdict
    assert verdict.accepted is not None and verdict.accepted.form == "sigstore-bundle"
    assert "referrers API" in verdict.accepted.location and response_subject in verdict.accepted.location
    assert verdict.signer == f"cody@soyland.com (issuer {GITHUB_OAUTH})"
    assert verdict.accepted.signed_at == dt.datetime.fromtimestamp(1740770291, dt.UTC)
    asked = [s for s in registries.proxy.seen if "/referrers/" in s]
    assert asked and "artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson" in asked[-1]


def test_a_bundle_is_found_through_the_tag_schema_without_a_referrers_api(registries: Registries,
                                                                          repo: str) -> None:
    reg = registries.plain
    reg.push_bundle_referrer(repo, ATTESTATION_SUBJECT, attestation_bundle(), fallback_tag=True)
    verdict = check(reg, repo, ATTESTATION_SUBJECT, keyless_policy(**CODY))
    assert verdict.ok, verdict
    assert verdict.accepted is not None and "tag sha256-7321" in verdict.accepted.location


def test_a_message_signature_bundle_over_a_files_digest_checks_out() -> None:
    """sigstore-python's real bundle over a wheel's sha256: valid as a bundle about that digest
    (identity, chain, SCT, log entry, signature)."""
    bundle = fixture_path("sigstore-python", "bundle_v3_github.whl.sigstore").read_bytes()
    finding = Verifier(keyless_policy(WHEEL_IDENTITY, ACTIONS)).verify_bundle(bundle, WHEEL_SHA256)
    assert finding.reason is Reason.ok, finding


def test_a_message_signature_over_a_file_does_not_sign_an_image(registries: Registries,
                                                                repo: str) -> None:
    """The same bundle attached to the wheel's digest in a registry: no image has that digest,
    so it signs no image (a release workflow that also signs wheels must not pass one off)."""
    reg = registries.proxied
    bundle = fixture_path("sigstore-python", "bundle_v3_github.whl.sigstore").read_bytes()
    reg.push_bundle_referrer(repo, WHEEL_SHA256, bundle, through=reg.url)
    verdict = check(reg, repo, WHEEL_SHA256, keyless_policy(WHEEL_IDENTITY, ACTIONS))
    assert verdict.reason is Reason.malformed
    assert "not an image manifest" in verdict.detail


def _tampered(edit: Any) -> bytes:
    doc = json.loads(attestation_bundle())
    edit(doc)
    return json.dumps(doc).encode()


def _edit_subject(doc: dict[str, Any]) -> None:
    envelope = doc["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "ef" * 32
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def _flip_set(doc: dict[str, Any]) -> None:
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    raw = bytearray(base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"]))
    raw[10] ^= 0x01
    entry["inclusionPromise"]["signedEntryTimestamp"] = base64.b64encode(bytes(raw)).decode()


def _replace_proof_hash(doc: dict[str, Any]) -> None:
    proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = base64.b64encode(b"\x00" * 32).decode()


@pytest.mark.parametrize(("edit", "reason"), [
    (_edit_subject, Reason.bad_signature),
    (_flip_set, Reason.bad_tlog),
    (_replace_proof_hash, Reason.bad_tlog),
], ids=["subject-edited", "set-flipped", "inclusion-proof-hash-replaced"])
def test_a_tampered_bundle_is_refused(registries: Registries, repo: str, edit: Any,
                                      reason: Reason) -> None:
    reg = registries.proxied
    reg.push_bundle_referrer(repo, ATTESTATION_SUBJECT, _tampered(edit), through=reg.url)
    verdict = check(reg, repo, ATTESTATION_SUBJECT, keyless_policy(**CODY))
    assert verdict.reason is reason, verdict


@pytest.mark.parametrize(("policy", "reason"), [
    ({"identity": "someone@example.com", "issuer": GITHUB_OAUTH}, Reason.wrong_identity),
    ({"identity": "cody@soyland.com", "issuer": ACTIONS}, Reason.wrong_identity),
    ({**CODY, "root": "staging"}, Reason.untrusted_root),
], ids=["wrong-san", "wrong-issuer", "staging-root"])
def test_a_bundle_refuses_the_wrong_signer_or_root(registries: Registries, repo: str,
                                                   policy: dict[str, str], reason: Reason) -> None:
    reg = registries.proxied
    reg.push_bundle_referrer(repo, ATTESTATION_SUBJECT, attestation_bundle(), through=reg.url)
    root = staging_root() if policy.pop("root", None) else None
    verdict = check(reg, repo, ATTESTATION_SUBJECT, keyless_policy(root=root, **policy))
    assert verdict.reason is reason, verdict


def test_a_message_signature_bundle_for_another_digest_is_a_mismatch() -> None:
    """The wheel's bundle taken for another digest."""
    bundle = fixture_path("sigstore-python", "bundle_v3_github.whl.sigstore").read_bytes()
    finding = Verifier(keyless_policy(WHEEL_IDENTITY, ACTIONS)).verify_bundle(
        bundle, "sha256:" + "12" * 32)
    assert finding.reason is Reason.digest_mismatch


def test_an_attestation_about_another_image_is_a_mismatch(registries: Registries,
                                                          repo: str) -> None:
    reg = registries.proxied
    other = "sha256:" + "34" * 32
    reg.push_bundle_referrer(repo, other, attestation_bundle(), through=reg.url)
    verdict = check(reg, repo, other, keyless_policy(**CODY))
    assert verdict.reason is Reason.digest_mismatch
    assert ATTESTATION_SUBJECT.removeprefix("sha256:") in verdict.detail


def test_bundles_are_not_fetched_once_a_sig_signature_is_accepted(registries: Registries,
                                                                  repo: str) -> None:
    reg = registries.proxied
    digest = serve_signed(reg, repo, "dir-img-cosign-fulcio-rekor-valid")
    before = len(registries.proxy.seen)
    assert check(reg, repo, digest, keyless_policy()).ok
    assert not any("/referrers/" in s for s in registries.proxy.seen[before:])


def test_other_referrers_than_bundles_are_ignored(registries: Registries, repo: str) -> None:
    """An SBOM listed in the tag-schema index is no signature (that index is not filtered)."""
    reg = registries.plain
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    reg.push_blob(repo, sbom)
    reg.push_blob(repo, b"{}")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sha256(sbom), "size": len(sbom)}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": ATTESTATION_SUBJECT, "size": 0}}).encode()
    reg.put_manifest(repo, sha256(manifest), manifest, "application/vnd.oci.image.manifest.v1+json")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "digest": sha256(manifest), "size": len(manifest),
                                       "artifactType": "application/spdx+json"}]}).encode()
    reg.put_manifest(repo, ATTESTATION_SUBJECT.replace(":", "-"), index,
                     "application/vnd.oci.image.index.v1+json")
    verdict = check(reg, repo, ATTESTATION_SUBJECT, keyless_policy(**CODY))
    assert verdict.reason is Reason.no_signature


def test_a_signature_whose_payload_blob_is_gone_is_malformed(registries: Registries,
                                                             repo: str) -> None:
    """The registry answers 404 for the layer: that signature is unusable, the run goes on."""
    reg = registries.plain
    signed = load_signed("dir-img-cosign-valid")
    digest = reg.seed_manifest(repo, "latest", signed.manifest)
    sig = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha256(b"{}"), "size": 2},
                      "layers": [signed.layer.descriptor()]}).encode()
    reg.seed_manifest(repo, digest.replace(":", "-") + ".sig", sig)
    verdict = check(reg, repo, digest, key_policy())
    assert verdict.reason is Reason.malformed
    assert "missing" in verdict.detail


def test_bundles_without_the_verify_extra_are_a_config_error(registries: Registries, repo: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reg = registries.proxied
    reg.push_bundle_referrer(repo, ATTESTATION_SUBJECT, attestation_bundle(), through=reg.url)
    monkeypatch.setitem(sys.modules, "sigstore.errors", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"tagsync\[verify\]"):
        check(reg, repo, ATTESTATION_SUBJECT, keyless_policy(**CODY))


# --- multi-arch indexes ---------------------------------------------------------------------------


def _push_index(reg: SignedRegistry, repo: str) -> tuple[str, list[str], Any]:
    """A two-platform index; returns its digest, the platform digests and a signing key."""
    from tests.servers.fixtures import RegistryServer

    built = lambda_base(noise=1000)
    RegistryServer(reg.registry_url, reg.host, None).push(repo, "multi", built)  # type: ignore[arg-type]
    return built.digest, list(built.children), ec.generate_private_key(ec.SECP256R1())


def _sign_digest(reg: SignedRegistry, repo: str, digest: str, key: Any) -> None:
    payload = simple_signing(digest)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    reg.push_sig(repo, digest, [CosignLayer(
        "application/vnd.dev.cosign.simplesigning.v1+json", payload,
        {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()})])


def _key_file(key: Any, tmp_path: Path) -> str:
    (tmp_path / "k.pub").write_bytes(_pem(key))
    return str(tmp_path / "k.pub")


def test_an_index_signature_suffices_by_default(registries: Registries, repo: str,
                                                tmp_path: Path) -> None:
    reg = registries.plain
    index, _, key = _push_index(reg, repo)
    _sign_digest(reg, repo, index, key)
    assert check(reg, repo, index, VerifyPolicy(key=_key_file(key, tmp_path))).ok


def test_each_platform_must_be_signed_when_the_policy_says_so(registries: Registries, repo: str,
                                                              tmp_path: Path) -> None:
    reg = registries.plain
    index, platforms, key = _push_index(reg, repo)
    _sign_digest(reg, repo, index, key)
    _sign_digest(reg, repo, platforms[0], key)
    verdict = check(reg, repo, index, VerifyPolicy(key=_key_file(key, tmp_path),
                                                   multi_arch="platforms"))
    assert verdict.reason is Reason.no_signature
    assert "platform linux/arm64/v8" in verdict.detail and platforms[1] in verdict.detail
    assert [v.ok for v in verdict.platforms] == [True, False]


def test_every_platform_signed_is_accepted(registries: Registries, repo: str,
                                           tmp_path: Path) -> None:
    reg = registries.plain
    index, platforms, key = _push_index(reg, repo)
    for digest in platforms:
        _sign_digest(reg, repo, digest, key)
    verdict = check(reg, repo, index, VerifyPolicy(key=_key_file(key, tmp_path),
                                                   multi_arch="platforms"))
    assert verdict.ok, verdict
    assert len(verdict.platforms) == 2


# --- the registry adapter -------------------------------------------------------------------------


def test_verification_reads_through_a_registry_that_wants_bearer_tokens(
        token_registry: Any, repo: str) -> None:
    """Signature manifests and blobs are pulled with the same challenge-driven auth as a scan."""
    from tagsync.image.tiny import Built, build_image

    image = token_registry.push(repo, "v1", build_image("signed behind tokens"))
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing(image.digest)
    layer = CosignLayer("application/vnd.dev.cosign.simplesigning.v1+json", payload, {
        "dev.cosignproject.cosign/signature":
            base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()})
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha256(payload)]}}).encode()
    oci_manifest = "application/vnd.oci.image.manifest.v1+json"
    sig = json.dumps({"schemaVersion": 2, "mediaType": oci_manifest,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha256(config), "size": len(config)},
                      "layers": [layer.descriptor()]}).encode()
    token_registry.push(repo, image.digest.replace(":", "-") + ".sig",
                        Built({sha256(config): config, sha256(payload): payload}, sig, oci_manifest, {}))
    policy = VerifyPolicy(key=_pem(key).decode())

    async def go() -> Verdict:
        client = OciRegistry(token_registry.url, username="robot", password="s3cret")
        try:
            return await Verifier(policy).verify(RegistryFetch(client),
                                                 f"{token_registry.host}/{repo}", image.digest)
        finally:
            await client.aclose()

    assert asyncio.run(go()).ok


def test_the_client_reads_a_registry_without_referrers_api_as_none(registries: Registries,
                                                                    repo: str) -> None:
    from tagsync.reference import ImageName

    async def go() -> Any:
        client = OciRegistry(registries.plain.url)
        try:
            return await client.referrers(ImageName(registries.plain.host, repo), WHEEL_SHA256)
        finally:
            await client.aclose()

    assert asyncio.run(go()) is None


def test_an_unreachable_registry_is_an_error_not_a_verdict(registries: Registries,
                                                           closed_port: int) -> None:
    port = closed_port
    dead = SignedRegistry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", Path("/nonexistent"), "")
    with pytest.raises(RegistryError, match="cannot reach"):
        check(dead, "signed/app", WHEEL_SHA256, key_policy())


def test_a_malformed_digest_is_refused_before_any_request() -> None:
    class NoFetch:
        async def manifest(self, image: str, reference: str) -> None:
            raise AssertionError("asked the registry")

        blob = referrers = manifest

    with pytest.raises(InvalidReferenceError):
        asyncio.run(Verifier(key_policy()).verify(NoFetch(), "example.test/app",  # type: ignore[arg-type]
                                                  "sha256:nothex"))


def test_a_payload_that_does_not_match_its_digest_is_malformed() -> None:
    """A fetch (or a registry) answering other bytes than asked for cannot pass a signature off."""
    signed = load_signed("dir-img-cosign-valid")
    sig = json.dumps({"schemaVersion": 2, "layers": [signed.layer.descriptor()]}).encode()

    class Lying:
        async def manifest(self, image: str, reference: str) -> tuple[bytes, str] | None:
            return (sig, "application/vnd.oci.image.manifest.v1+json") if reference.endswith(".sig") else None

        async def blob(self, image: str, digest: str) -> bytes:
            return signed.layer.payload + b" "

        async def referrers(self, image: str, digest: str, artifact_type: str | None = None) -> None:
            return None

    verdict = asyncio.run(Verifier(key_policy()).verify(Lying(), "example.test/app", signed.digest))
    assert verdict.reason is Reason.malformed


class MemoryFetch:
    """A `Fetch` over a dict of manifests and blobs, counting blob reads."""

    def __init__(self, manifests: dict[str, bytes], blobs: dict[str, bytes]) -> None:
        self.manifests, self.blobs, self.blob_reads = manifests, blobs, 0

    async def manifest(self, image: str, reference: str) -> tuple[bytes, str] | None:
        body = self.manifests.get(reference)
        return None if body is None else (body, "application/vnd.oci.image.manifest.v1+json")

    async def blob(self, image: str, digest: str) -> bytes:
        self.blob_reads += 1
        return self.blobs[digest]

    async def referrers(self, image: str, digest: str, artifact_type: str | None = None) -> None:
        return None


def test_only_the_first_sixteen_signatures_are_read() -> None:
    """A registry listing thousands of layers cannot make a run fetch thousands of blobs."""
    signed = load_signed("dir-img-cosign-key-rekor-valid")  # valid, but not with cosign.pub
    layers = [signed.layer.descriptor()] * 40
    fetch = MemoryFetch({signed.digest.replace(":", "-") + ".sig":
                         json.dumps({"schemaVersion": 2, "layers": layers}).encode()},
                        {sha256(signed.layer.payload): signed.layer.payload})
    verdict = asyncio.run(Verifier(key_policy()).verify(fetch, "example.test/app", signed.digest))
    assert verdict.reason is Reason.bad_signature
    assert fetch.blob_reads == 16 and len(verdict.findings) == 16


def test_a_signature_declared_huge_is_not_downloaded() -> None:
    signed = load_signed("dir-img-cosign-valid")
    layer = {**signed.layer.descriptor(), "size": 50 << 20}
    fetch = MemoryFetch({signed.digest.replace(":", "-") + ".sig":
                         json.dumps({"schemaVersion": 2, "layers": [layer]}).encode()}, {})
    verdict = asyncio.run(Verifier(key_policy()).verify(fetch, "example.test/app", signed.digest))
    assert verdict.reason is Reason.malformed
    assert fetch.blob_reads == 0


# --- policies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "needs `key`"),
    ({"key": "k.pub", "identity": "a@b"}, "not both"),
    ({"identity": "a@b", "trusted_root": "r.json"}, "needs `issuer`"),
    ({"identity": "a@b", "issuer": "https://i"}, "needs `trusted_root`"),
    ({"identity": "a@b", "identity_regex": "a.*", "issuer": "https://i", "trusted_root": "r"},
     "not both"),
    ({"identity_regex": "(", "issuer": "https://i", "trusted_root": "r"}, "not a regular expression"),
    ({"key": "k.pub", "require_tlog": True}, "require_tlog needs"),
    ({"key": "k.pub", "multi_arch": "some"}, "multi_arch"),
])
def test_a_policy_that_cannot_be_satisfied_sensibly_is_refused(fields: dict[str, Any],
                                                                message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        VerifyPolicy(**fields)


def test_the_key_may_be_a_secret_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSIGN_PUBLIC_KEY", fixture_path("containers-image", "cosign.pub").read_text())
    assert Verifier(VerifyPolicy(key="env:COSIGN_PUBLIC_KEY")).key is not None


def test_a_relative_key_path_is_read_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    key = fixture_path("containers-image", "cosign.pub").read_bytes()
    (tmp_path / "keys" / "cosign.pub").write_bytes(key)
    assert Verifier(VerifyPolicy(key="keys/cosign.pub"), base_dir=tmp_path).key is not None


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    (b"not a key", "not a PEM public key"),
])
def test_an_unusable_key_is_a_config_error(tmp_path: Path, content: bytes | None,
                                           message: str) -> None:
    if content is not None:
        (tmp_path / "k.pub").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        Verifier(VerifyPolicy(key=str(tmp_path / "k.pub")))


@pytest.mark.parametrize(("content", "message"), [
    (b"{", "not JSON"),
    (b'{"mediaType": "application/json"}', "not a Sigstore trust root"),
    (b'{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", '
     b'"tlogs": [{"publicKey": {}}]}', "malformed"),
])
def test_an_unusable_trust_root_is_a_config_error(tmp_path: Path, content: bytes,
                                                  message: str) -> None:
    (tmp_path / "root.json").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        Verifier(keyless_policy(root=str(tmp_path / "root.json")))


def test_key_based_verification_never_imports_sigstore(tmp_path: Path) -> None:
    """The `verify` extra costs ~0.5 s to import; key-based and legacy keyless runs skip it."""
    code = f"""
import asyncio, json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from tests.servers.signed import load_signed
from tagsync.verify import Verifier, VerifyPolicy
signed = load_signed("dir-img-cosign-fulcio-rekor-valid")
sig = json.dumps({{"schemaVersion": 2, "layers": [signed.layer.descriptor()]}}).encode()
class Mem:
    async def manifest(self, image, ref):
        return (sig, "") if ref.endswith(".sig") else None
    async def blob(self, image, digest):
        return signed.layer.payload
    async def referrers(self, image, digest, artifact_type=None):
        return None
policy = VerifyPolicy(identity="{MITR}", issuer="{GITHUB_OAUTH}", trusted_root={production_root()!r})
verdict = asyncio.run(Verifier(policy).verify(Mem(), "example.test/app", signed.digest))
print(verdict.ok, any(m.split(".")[0] == "sigstore" for m in sys.modules))
"""
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["True", "False"]


def test_only_loopback_addresses_pass_the_network_guard() -> None:
    assert loopback(("127.0.0.1", 5000)) and loopback(("::1", 5000, 0, 0))
    assert loopback(("localhost", 80)) and loopback("/run/some.sock")
    assert not loopback(("192.0.2.1", 443)) and not loopback(("rekor.sigstore.dev", 443))


def test_the_network_guard_is_installed(loopback_only: list[str]) -> None:
    import socket

    assert socket.socket.connect.__name__ == "connect" and socket.socket.connect.__module__ == \
        "tests.servers.signed"
    assert socket.getaddrinfo.__module__ == "tests.servers.signed"
    assert sha256(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
