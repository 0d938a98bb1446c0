"""Verify before bump, in a run: a digest is written only when its signature satisfies the
catalog's verify policy; a refusal is a per-image failure (exit 3) that says why, and the
commit message names the signer. Real cosign signatures, served by the real CNCF registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagsync.cli import main
from tests.servers.fixtures import _start_registry, _stop, unique_namespace
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
