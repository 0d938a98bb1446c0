"""What a run follows: `ignore:` globs, `run --catalog` / `--image`, a tag-less reference pinned
with the tag it implied, and a loopback registry reached over plain HTTP without a `url:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.cli import main
from tests.servers.fixtures import RegistryServer, unique_namespace


@pytest.fixture
def checkout(registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """Two catalogs over two pods, each image pushed once; no `registries:` (loopback: HTTP)."""
    ns = unique_namespace("select", request)
    h = registry.host
    for name in ("web", "api", "db"):
        registry.push(f"{ns}/{name}", "1.0", f"{ns} {name}")
    registry.push(f"{ns}/plain", "latest", f"{ns} plain")
    pod = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
    (tmp_path / "a.yaml").write_text(pod + f"    - image: {h}/{ns}/web:1.0\n"
                                           f"    - image: {h}/{ns}/db:1.0\n"
                                           f"    - image: {h}/{ns}/plain\n")
    (tmp_path / "b.yaml").write_text(pod + f"    - image: {h}/{ns}/api:1.0\n")
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: a\n    file: a.yaml\n    pin_digests: true\n"
        f"    ignore: ['*/{ns}/db']\n"
        "  - name: b\n    file: b.yaml\n    pin_digests: true\n")
    return tmp_path, ns


def test_an_ignored_image_is_left_alone_and_said(
        checkout: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    tmp, ns = checkout
    assert main(["run", "-c", str(tmp / "tagsync.yaml")]) == 0
    assert f"{ns}/db:1.0\n" in (tmp / "a.yaml").read_text()
    assert f"{ns}/web:1.0@sha256:" in (tmp / "a.yaml").read_text()
    assert "ignored by the config (ignore: */" in capsys.readouterr().out


def test_a_tagless_reference_is_pinned_with_the_tag_it_implied(checkout: tuple[Path, str]) -> None:
    """`plain` means `plain:latest`: pinned as `plain@sha256:…` it would have no tag to follow."""
    tmp, ns = checkout
    assert main(["run", "-c", str(tmp / "tagsync.yaml"), "--catalog", "a"]) == 0
    assert f"{ns}/plain:latest@sha256:" in (tmp / "a.yaml").read_text()


def test_run_limited_to_a_catalog_leaves_the_others_alone(checkout: tuple[Path, str]) -> None:
    tmp, ns = checkout
    before = (tmp / "a.yaml").read_text()
    assert main(["run", "-c", str(tmp / "tagsync.yaml"), "--catalog", "b"]) == 0
    assert (tmp / "a.yaml").read_text() == before
    assert f"{ns}/api:1.0@sha256:" in (tmp / "b.yaml").read_text()


def test_run_limited_to_an_image_glob_changes_only_it(checkout: tuple[Path, str]) -> None:
    tmp, ns = checkout
    assert main(["run", "-c", str(tmp / "tagsync.yaml"), "--image", f"*/{ns}/web"]) == 0
    text = (tmp / "a.yaml").read_text()
    assert f"{ns}/web:1.0@sha256:" in text and f"{ns}/plain\n" in text
    assert "@sha256:" not in (tmp / "b.yaml").read_text()


@pytest.mark.parametrize("argv, says", [
    (["--catalog", "nope"], "no catalog named nope (the config has a, b)"),
    (["--image", "ghcr.io/none/*"], "no reference matches --image ghcr.io/none/*"),
])
def test_a_limit_that_selects_nothing_is_an_error(
        checkout: tuple[Path, str], capsys: pytest.CaptureFixture[str], argv: list[str],
        says: str) -> None:
    tmp, _ = checkout
    assert main(["run", "-c", str(tmp / "tagsync.yaml"), *argv]) == 2
    assert says in capsys.readouterr().err


def test_tls_spoken_to_a_plain_http_registry_says_to_write_http(
        registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("select-tls", request)
    registry.push(f"{ns}/web", "1.0", f"{ns} web")
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       f"    - image: {registry.host}/{ns}/web:1.0\n")
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: a\n    file: pod.yaml\n    pin_digests: true\n"
        f"registries:\n  - host: '{registry.host}'\n    url: https://{registry.host}\n"
        "run: {retries: 0}\n")
    assert main(["run", "-c", str(tmp_path / "tagsync.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"write `url: http://{registry.host}`" in err


@pytest.mark.parametrize("host, url", [
    ("127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("localhost:5000", "http://localhost:5000"),
    ("LocalHost:5000", "http://LocalHost:5000"),  # host names are case-blind: the allow-list agrees
    ("localhost.evil.example", "https://localhost.evil.example"),
    ("[::1]:5000", "http://[::1]:5000"),
    ("registry.example.com", "https://registry.example.com"),
    ("127.0.0.1.example.com", "https://127.0.0.1.example.com"),
])
def test_only_loopback_hosts_default_to_plain_http(host: str, url: str) -> None:
    from tagsync.registry.oci import default_url

    assert default_url(host) == url


def test_a_catalog_that_follows_another_brings_it_along(tmp_path: Path) -> None:
    from tagsync.config import load_config

    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: staging\n    file: s.yaml\n  - name: prod\n    file: p.yaml\n"
        "    follow: {catalog: staging}\n  - name: other\n    file: o.yaml\n")
    limited = load_config(tmp_path / "tagsync.yaml").limited(["prod"], ["ghcr.io/*"])
    assert [c.name for c in limited.catalogs] == ["staging", "prod"]
    assert limited.only_images == ("ghcr.io/*",)


@pytest.mark.parametrize("env, refused", [
    ({"CI": "true"}, True), ({"GITHUB_ACTIONS": "true"}, True), ({"CI": "1"}, True),
    ({"CI": "false"}, False), ({"CI": ""}, False), ({}, False),
])
def test_only_a_ci_environment_refuses_a_files_run(
        checkout: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
        refused: bool) -> None:
    tmp, _ = checkout
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "-c", str(tmp / "tagsync.yaml")]) == (2 if refused else 0)


def test_a_dry_run_in_ci_is_fine_without_a_publisher(
        checkout: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    tmp, _ = checkout
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    before = (tmp / "a.yaml").read_text()
    assert main(["run", "-c", str(tmp / "tagsync.yaml"), "--dry-run"]) == 0
    assert (tmp / "a.yaml").read_text() == before
