"""`tagsync status` dates a candidate by the clock that gates it: Docker Hub's push time, not the
image's own `created`; and an image dated ahead of our clock reads as such, not as `0s`."""

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
    registry.push(repo, "1.0", build_image(f"{repo} b", created="2020-01-02T00:00:00Z"))
    hub.add_tag(repo, "1.0", ago(hours=3))
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
