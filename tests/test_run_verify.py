"""Verify before bump, in a run: a digest is written only when its signature satisfies the
catalog's verify policy; a refusal is a per-image failure (exit 3) that says why, and the
commit message names the signer. Real cosign signatures, served by the real CNCF registry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.config import load_config
from tagsync.run import run
from tests.servers.fixtures import GitServer, _start_registry, _stop, unique_namespace
from tests.servers.signed import SignedRegistry, load_signed, loopback_only, signatures_dir

pytestmark = [pytest.mark.servers, pytest.mark.usefixtures("loopback_only")]

OLD = "sha256:" + "0" * 64
assert loopback_only  # a fixture, used through pytestmark


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedRegistry]:
    if not signatures_dir().exists():
        pytest.skip("the signature fixtures in ../shared are absent")
    tmp = tmp_path_factory.mktemp("run-verify")
    server = _start_registry(tmp)
    yield SignedRegistry(server.url, server.host, tmp / "data", server.url)
    _stop(server.process)


def checkout(tmp_path: Path, registry: SignedRegistry, repo: str, verify: str) -> Path:
    fixture = load_signed("dir-img-cosign-valid")
    digest = registry.seed_manifest(repo, "latest", fixture.manifest)
    registry.push_sig(repo, digest, [fixture.layer])
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: {registry.host}/{repo}:latest@{OLD}\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n"
                      f"    verify: {verify}\n"
                      f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")
    return config


def key(name: str) -> str:
    return "{key: '" + str(signatures_dir() / "containers-image" / name) + "'}"


def test_a_signed_digest_is_written_and_the_signer_named(
        signed: SignedRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    repo = unique_namespace("verified/app", request)
    config = checkout(tmp_path, signed, repo, key("cosign.pub"))
    assert main(["run", "-c", str(config), "--json"]) == 0
    text = (tmp_path / "pod.yaml").read_text()
    assert OLD not in text and "@sha256:" in text
    [change] = json.loads(capsys.readouterr().out)["changes"]
    assert change["why"].startswith("signed by key SHA256:")


def test_a_signature_by_another_key_is_not_written_and_says_why(
        signed: SignedRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    repo = unique_namespace("refused/app", request)
    config = checkout(tmp_path, signed, repo, key("cosign2.pub"))
    before = (tmp_path / "pod.yaml").read_text()
    assert main(["run", "-c", str(config)]) == 3
    assert (tmp_path / "pod.yaml").read_text() == before
    assert "not written, signature refused: bad signature" in capsys.readouterr().err


def test_a_key_that_cannot_be_read_is_a_config_error_before_any_request(
        signed: SignedRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    repo = unique_namespace("nokey/app", request)
    config = checkout(tmp_path, signed, repo, "{key: 'file:missing.pub'}")
    assert main(["run", "-c", str(config)]) == 2
    assert "missing.pub" in capsys.readouterr().err


def test_a_catalog_on_an_image_layout_writes_the_signed_digest_and_refuses_the_unsigned(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Verification reads signatures from any registry kind: here an OCI layout on disk."""
    from tests.test_verify_sources import Layout

    fixture = load_signed("dir-img-cosign-valid")
    signed = Layout(tmp_path / "layouts", "team/signed")
    digest = signed.tag("latest", fixture.manifest)
    signed.sign(digest, [fixture.layer])
    unsigned = Layout(tmp_path / "layouts", "team/unsigned")
    bare = unsigned.tag("latest", fixture.manifest)
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: images.test/team/signed:latest@{OLD}\n"
        f"    - image: images.test/team/unsigned:latest@{OLD}\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n"
                      f"    verify: {key('cosign.pub')}\n"
                      "registries:\n  - host: images.test\n    layout: layouts\n")
    assert main(["run", "-c", str(config)]) == 3
    text = (tmp_path / "pod.yaml").read_text()
    assert f"images.test/team/signed:latest@{digest}" in text
    assert f"images.test/team/unsigned:latest@{OLD}" in text  # same bytes, but unsigned there
    assert bare == digest
    err = capsys.readouterr().err
    assert "images.test/team/unsigned" in err and "not written, signature refused: no signature" in err


@pytest.mark.parametrize(("public_key", "promoted"), [("cosign.pub", True), ("cosign2.pub", False)])
def test_a_promoted_digest_passes_the_same_verification_policy(
        signed: SignedRegistry, git_server: GitServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        public_key: str, promoted: bool) -> None:
    """Production follows staging; staging has held a digest for two days, but production
    writes it only if its signature satisfies production's own policy. Staging, without a
    policy, holds it unquestioned."""
    repo = unique_namespace("lanes/app", request)
    fixture = load_signed("dir-img-cosign-valid")
    digest = signed.seed_manifest(repo, "latest", fixture.manifest)
    signed.push_sig(repo, digest, [fixture.layer])
    image = f"{signed.host}/{repo}:latest"
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n"
        "  - name: staging\n    file: staging/app.yaml\n    pin_digests: true\n"
        "  - name: production\n    file: prod/app.yaml\n    pin_digests: true\n"
        f"    follow: {{catalog: staging, after: 24h}}\n    verify: {key(public_key)}\n"
        f"registries:\n  - host: '{signed.host}'\n    url: {signed.url}\n"
        f"git:\n  repo: {git_server.url}\n  token_env: TEST_GIT_TOKEN\n")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    pod = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {}\n"
    git_server.commit_directly({"prod/app.yaml": pod.format(f"{image}@{OLD}").encode(),
                                "staging/app.yaml": pod.format(f"{image}@{OLD}").encode()},
                               "start", when=int(time.time()) - 100 * 3600)
    git_server.commit_directly({"staging/app.yaml": pod.format(f"{image}@{digest}").encode()},
                               "staging moves", when=int(time.time()) - 48 * 3600)
    summary = run(load_config(tmp_path / "tagsync.yaml"))
    if promoted:
        assert git_server.read("prod/app.yaml") == pod.format(f"{image}@{digest}").encode()
        assert not summary.failures
    else:
        assert git_server.read("prod/app.yaml") == pod.format(f"{image}@{OLD}").encode()
        [failure] = summary.failures  # production's refusal says nothing to staging
        assert failure.catalog == "production"
        assert failure.error.startswith("not promoted, signature refused: bad signature")


def test_a_slot_already_at_a_refused_digest_is_up_to_date_not_a_failure(
        signed: SignedRegistry, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Verification gates what a run writes: a reference that already holds the digest (put
    there by hand) is left alone and not reported, though its twin that would move is refused."""
    repo = unique_namespace("held/app", request)
    config = checkout(tmp_path, signed, repo, key("cosign2.pub"))
    fixture = load_signed("dir-img-cosign-valid")
    image = f"{signed.host}/{repo}:latest"
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: {image}@{OLD}\n    - image: {image}@{fixture.digest}\n")
    summary = run(load_config(config))
    [failure] = summary.failures
    assert failure.line == 5 and "signature refused" in failure.error
    assert summary.up_to_date == 1


def keyless_checkout(tmp_path: Path, registry: SignedRegistry, repo: str, extra: str) -> Path:
    """The real keyless `.sig` (Fulcio + Rekor, logged 2023-01-20) replayed on the registry."""
    fixture = load_signed("dir-img-cosign-fulcio-rekor-valid")
    digest = registry.seed_manifest(repo, "latest", fixture.manifest)
    registry.push_sig(repo, digest, [fixture.layer])
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: {registry.host}/{repo}:latest@{OLD}\n")
    root = signatures_dir() / "sigstore-python" / "trusted_root.json"
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n{extra}"
                      "    verify: {identity: mitr@redhat.com, issuer: 'https://github.com/login/oauth', "
                      f"trusted_root: '{root}'" + "}\n"
                      f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")
    return config


def test_a_real_keyless_signature_is_aged_by_its_rekor_time_the_clock_named(
        signed: SignedRegistry, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The image's own config cannot be read (its blobs were never published): Rekor's time,
    which its publisher cannot backdate, is the clock, and the explanation says so."""
    repo = unique_namespace("keyless-age/app", request)
    config = keyless_checkout(tmp_path, signed, repo, "    policy: {min_age: 30d}\n")
    summary = run(load_config(config))
    [change] = summary.changes
    assert change.why is not None
    assert "signed by mitr@redhat.com (issuer https://github.com/login/oauth)" in change.why
    assert "in the transparency log since 2023-01-20 20:51 UTC" in change.why
    assert "by the transparency log (Rekor)" in change.why


def test_a_backtracking_identity_regex_ends_the_run_with_a_config_error(
        signed: SignedRegistry, tmp_path: Path, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The real keyless signature's identity meets an `identity_regex` written to backtrack: the
    run stops (exit 2) naming the key and the pattern, with nothing written; never a refused
    signature passed off as the image's fault, never a stall."""
    repo = unique_namespace("keyless-stall/app", request)
    config = keyless_checkout(tmp_path, signed, repo, "")
    config.write_text(config.read_text().replace(
        "identity: mitr@redhat.com", "identity_regex: '^(?:.|.|.|.)*[#%]$'"))
    before = (tmp_path / "pod.yaml").read_text()
    assert main(["run", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "verify.identity_regex '^(?:.|.|.|.)*[#%]$' took more than" in err, err
    assert "Traceback" not in err
    assert (tmp_path / "pod.yaml").read_text() == before


def test_a_real_signature_made_for_another_repository_is_refused_with_match_reference(
        signed: SignedRegistry, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    repo = unique_namespace("keyless-ref/app", request)
    config = keyless_checkout(tmp_path, signed, repo, "")
    config.write_text(config.read_text().replace("trusted_root:", "match_reference: true, trusted_root:"))
    before = (tmp_path / "pod.yaml").read_text()
    [failure] = run(load_config(config)).failures
    assert failure.error.startswith("not written, signature refused: reference mismatch: the "
                                    "signature was made for '192.168.64.2:5000/cosign-signed/fulcio-rekor-1'")
    assert (tmp_path / "pod.yaml").read_text() == before
