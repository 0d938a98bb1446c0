"""Explain the bump: the commit says where the new image comes from and what changed, from the
images' own OCI labels (source, revision, version, created)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.explain import Provenance, compare_url, describe
from tagsync.image.tiny import build_image
from tests.servers.fixtures import RegistryServer, unique_namespace

SRC = "org.opencontainers.image.source"
REV = "org.opencontainers.image.revision"
VER = "org.opencontainers.image.version"


def test_a_compare_view_on_known_forges_only() -> None:
    gh, gl = "https://github.com/acme/web", "https://gitlab.com/acme/web"
    assert compare_url(gh, "a1", "b2") == f"{gh}/compare/a1...b2"
    assert compare_url(gl, "a1", "b2") == f"{gl}/-/compare/a1...b2"
    assert compare_url("https://git.example.com/acme/web", "a1", "b2") is None
    assert compare_url("https://github.com/acme/web", "a1", "a1") is None
    assert compare_url("https://github.com/acme/web", "a1", "b2;rm -rf") is None


def test_the_line_names_version_changes_and_age() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    old = Provenance("https://github.com/acme/web", "a1")
    new = Provenance("https://github.com/acme/web", "b2", "1.4.3", now - timedelta(hours=30))
    assert describe(old, new, now) == ("version 1.4.3; changes https://github.com/acme/web/compare/a1...b2; "
                                       "built 1d 6h ago")
    assert describe(None, Provenance(), now) is None


def test_a_build_time_ahead_of_our_clock_says_so_rather_than_0h_ago() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    line = describe(None, Provenance(created=now + timedelta(days=30)), now)
    assert line == "says it was built 2026-12-23 12:00 UTC, in the future"


def test_a_run_explains_each_bump_from_the_labels(
        registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("explain", request)
    labels = {SRC: "https://github.com/acme/web.git"}
    old = registry.push(f"{ns}/web", "1.4", build_image(f"{ns} a", labels={**labels, REV: "aaa111"})).digest
    registry.push(f"{ns}/web", "1.4", build_image(f"{ns} b", created="2026-01-01T00:00:00Z",
                                                  labels={**labels, REV: "bbb222", VER: "1.4.3"}))
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       f"    - image: {registry.host}/{ns}/web:1.4@{old}\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\n"
                      f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")
    assert main(["run", "-c", str(config), "--json"]) == 0
    [change] = json.loads(capsys.readouterr().out)["changes"]
    assert change["claims"].startswith(
        "version 1.4.3; changes https://github.com/acme/web/compare/aaa111...bbb222; built ")
    assert change["why"] is None  # nothing verified: a label is its publisher's claim


def test_the_pull_request_table_carries_the_explanation() -> None:
    from tagsync.plan import Change
    from tagsync.publish.github import pr_body

    change = Change("app", "pod.yaml", 0, ".spec.containers[0].image", 5, "ghcr.io/acme/web", "1.4",
                    "ghcr.io/acme/web:1.4@sha256:" + "a" * 64, "ghcr.io/acme/web:1.4@sha256:" + "b" * 64,
                    "digest changed", why="signed by key SHA256:x", claims="version 1.4.3")
    body = pr_body([change], "tagsync/app")
    assert "| Image | Tag | Old | New | File | Why |" in body
    assert ("| pod.yaml:5 | verified: signed by key SHA256:x<br>claimed by the image's labels "
            "(not verified): version 1.4.3 |") in body


def test_explaining_a_bump_asks_through_the_runs_own_registry_clients(
        token_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """One token per repository for the whole run: reading the labels reuses the token (and
    the rate-limit pauses and deadline) the digest check got, and its reads are counted."""
    ns = "public/" + unique_namespace("explain-token", request)
    labels = {SRC: "https://github.com/acme/web", REV: "aaa111"}
    old = token_registry.push(f"{ns}/web", "1.4", build_image(f"{ns} a", labels=labels)).digest
    token_registry.push(f"{ns}/web", "1.4", build_image(f"{ns} b", labels={**labels, REV: "bbb222"}))
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       f"    - image: {token_registry.host}/{ns}/web:1.4@{old}\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\nregistries:\n"
                      f"  - host: '{token_registry.host}'\n    url: {token_registry.url}\n")
    issued = token_registry.issued  # type: ignore[attr-defined]
    before = len(issued)
    assert main(["run", "-c", str(config), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [change] = out["changes"]
    assert "compare/aaa111...bbb222" in change["claims"]
    assert [t["scope"] for t in issued[before:]] == [[f"repository:{ns}/web:pull"]]
    assert out["requests"]["token_requests"] == 1
    assert out["requests"]["manifest_gets"] >= 2  # the old and new manifests, read for labels
