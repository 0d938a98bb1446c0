"""`tagsync status` dates a candidate by the clock that gates it: Docker Hub's push time, not the
image's own `created`; and an image dated ahead of our clock reads as such, not as `0s`. Docker
Hub's push time dates the digest that push was of, no other."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tagsync.cli import main
from tagsync.image.tiny import build_image
from tagsync.status import age
from tests.servers.fixtures import RegistryServer, unique_namespace


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_status_names_docker_hubs_push_time_as_the_clock_that_gates(
        registry: RegistryServer, hub: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    repo = f"{unique_namespace('clock', request)}/web"
    old = registry.push(repo, "1.0", build_image(f"{repo} a", created="2020-01-01T00:00:00Z")).digest
    new = registry.push(repo, "1.0", build_image(f"{repo} b", created="2020-01-02T00:00:00Z"))
    hub.add_tag(repo, "1.0", ago(hours=3), new.digest)
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       f"    - image: docker.io/{repo}:1.0@{old}\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\n    policy: {min_age: 1d}\n"
                      f"registries:\n  - host: docker.io\n    url: {registry.url}\n"
                      f"    hub_url: {hub.url}\n")
    assert main(["status", "-c", str(config), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["state"] == "waiting" and "by Docker Hub's push time" in row["reason"]
    assert row["clock"] == "Docker Hub's push time"
    assert row["candidate_created"] > "2026"  # pushed hours ago, whatever the image claims
    assert main(["status", "-c", str(config)]) == 0
    assert " / 3h by Docker Hub's push time " in capsys.readouterr().out


def test_a_creation_time_ahead_of_our_clock_is_shown_as_future_not_zero() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert age(now + timedelta(hours=5), now) == "future +5h"
    assert age(now - timedelta(hours=5), now) == "5h"


def test_docker_hubs_push_time_of_another_digest_does_not_date_a_new_one(
        registry: RegistryServer, hub: Any, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Docker Hub's API lags the registry: it still says the tag was pushed 40 days ago, with
    the digest before; the digest the registry serves now waits until the API knows it."""
    from tagsync.config import load_config
    from tagsync.run import run

    repo = f"{unique_namespace('lag', request)}/web"
    old = registry.push(repo, "1.0", build_image(f"{repo} a", created=ago(days=50))).digest
    registry.push(repo, "1.0", build_image(f"{repo} b", created=ago(days=45)))
    hub.add_tag(repo, "1.0", ago(days=40), old)
    text = f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: docker.io/{repo}:1.0@{old}\n"
    (tmp_path / "pod.yaml").write_text(text)
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\n    policy: {min_age: 1d}\n"
                      f"registries:\n  - host: docker.io\n    url: {registry.url}\n"
                      f"    hub_url: {hub.url}\n")
    summary = run(load_config(config))
    assert (tmp_path / "pod.yaml").read_text() == text and not summary.failures
    [note] = summary.skipped
    assert "Docker Hub's push time is for another digest of 1.0" in note.reason
