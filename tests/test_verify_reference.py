"""`match_reference: true` for Sigstore bundles: the in-toto statement's subject must name the
image's repository for the digest, and a message signature, which names none, cannot satisfy
it. Key-based bundles made here, attached as OCI 1.1 referrers on the real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagsync.verify import Reason
from tests.servers.signed import loopback_only
from tests.test_verify import Registries, registries, repo
from tests.test_verify_key_bundles import Signer, attach, dsse_bundle, image, message_bundle, verify

pytestmark = [pytest.mark.servers, pytest.mark.usefixtures("loopback_only")]
assert loopback_only and registries and repo  # fixtures, used by name

COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"


def statement(name: str, digest: str) -> bytes:
    return json.dumps({"_type": "https://in-toto.io/Statement/v1",
                       "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
                       "predicateType": COSIGN_SIGN, "predicate": {}}).encode()


def test_a_statement_naming_this_repository_passes(registries: Registries, repo: str,
                                                   tmp_path: Path) -> None:
    signer = Signer.new()
    _manifest, digest = image(registries, repo)
    attach(registries, repo, digest,
           dsse_bundle(signer, statement(f"{registries.proxied.host}/{repo}", digest)))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, match_reference=True))
    assert verdict.ok, verdict


def test_a_statement_naming_another_repository_is_a_reference_mismatch(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    signer = Signer.new()
    _manifest, digest = image(registries, repo)
    attach(registries, repo, digest, dsse_bundle(signer, statement("evil.example/other", digest)))
    policy = signer.policy(tmp_path, match_reference=True)
    verdict = verify(registries, repo, digest, policy)
    assert verdict.reason is Reason.reference_mismatch
    assert "names evil.example/other" in verdict.detail
    assert verify(registries, repo, digest, signer.policy(tmp_path)).ok  # off: not compared


def test_a_message_signature_names_no_repository_so_match_reference_refuses_it(
        registries: Registries, repo: str, tmp_path: Path) -> None:
    signer = Signer.new()
    manifest, digest = image(registries, repo)
    attach(registries, repo, digest, message_bundle(signer, manifest))
    verdict = verify(registries, repo, digest, signer.policy(tmp_path, match_reference=True))
    assert verdict.reason is Reason.reference_mismatch
    assert "names no repository" in verdict.detail
