"""`min_age`: a new tag or digest waits until it has existed that long, by the registry's own
clock where it has one (ECR's push time) and the image config's `created` otherwise. Young
candidates are reported as waiting, not as failures; an unknown age never passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tagsync.config import load_config
from tagsync.image.tiny import build_image
from tagsync.run import run
from tests.servers.fixtures import MotoServer, RegistryServer, unique_namespace


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def setup(tmp_path: Path, registry: RegistryServer, text: str, policy: str) -> Path:
    (tmp_path / "app.yaml").write_text(text)
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"catalogs:\n  - name: app\n    file: app.yaml\n    policy: {policy}\n"
                      f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")
    return config


def pod(image: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {image}\n"


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    return unique_namespace("age", request)


def test_a_digest_younger_than_min_age_waits_and_is_not_a_failure(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    old = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} old", created=ago(days=30))).digest
    registry.push(f"{ns}/web", "1.0", build_image(f"{ns} new", created=ago(hours=1)))
    config = setup(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{old}"),
                   "{kind: same, min_age: 3d}")
    summary = run(load_config(config))
    assert not summary.changes and not summary.failures
    [note] = summary.skipped
    assert note.reason.startswith("waiting: new digest of 1.0 waits until ")
    assert "min_age 3d" in note.reason


def test_a_digest_older_than_min_age_is_written(registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    old = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} old", created=ago(days=30))).digest
    new = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} new", created=ago(days=4))).digest
    config = setup(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{old}"),
                   "{kind: same, min_age: 3d}")
    run(load_config(config))
    assert (tmp_path / "app.yaml").read_text() == pod(f"{registry.host}/{ns}/web:1.0@{new}")


def test_a_policy_picks_the_best_tag_old_enough_and_names_the_one_waiting(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    for tag, created in (("1.0", ago(days=60)), ("1.1", ago(days=10)), ("1.2", ago(hours=2))):
        registry.push(f"{ns}/web", tag, build_image(f"{ns} {tag}", created=created))
    config = setup(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0"), "{kind: semver, min_age: 1d}")
    summary = run(load_config(config))
    assert (tmp_path / "app.yaml").read_text() == pod(f"{registry.host}/{ns}/web:1.1")
    assert any(n.reason.startswith("waiting: 1.2 waits until ") for n in summary.skipped)


def test_an_image_without_a_creation_time_never_passes_min_age(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    registry.push(f"{ns}/web", "1.0", f"{ns} new")  # no `created` in its config
    config = setup(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{old}"),
                   "{kind: same, min_age: 1h}")
    summary = run(load_config(config))
    assert not summary.changes
    assert [f.error for f in summary.failures] == ["min_age: the new image's creation time is unknown"]


def test_a_zero_min_age_asks_no_age_and_writes_at_once(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = registry.push(f"{ns}/web", "1.0", f"{ns} new").digest  # no `created`: never needed
    config = setup(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{old}"),
                   "{kind: same, min_age: 0s}")
    summary = run(load_config(config))
    assert not summary.failures
    assert (tmp_path / "app.yaml").read_text() == pod(f"{registry.host}/{ns}/web:1.0@{new}")


def test_ecr_push_time_is_the_clock(moto: MotoServer, tmp_path: Path) -> None:
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    client = boto3.client("ecr", region_name="eu-west-1")
    client.create_repository(repositoryName="team/web")
    for n, tag in enumerate(["1.0", "1.1"], start=1):
        client.put_image(repositoryName="team/web", imageTag=tag, imageManifest=json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + f"{n:064x}", "size": 10}, "layers": []}),
            imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    (tmp_path / "app.yaml").write_text(pod(f"{host}/team/web:1.0"))
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: app.yaml\n"
                      "    policy: {kind: semver, min_age: 1d}\n")
    summary = run(load_config(config))
    assert not summary.changes and not summary.failures  # pushed just now: 1.1 waits
    assert any(n.reason.startswith("waiting: 1.1 waits until ") for n in summary.skipped)


def test_docker_hub_push_time_is_the_clock_not_the_images_claim(
        registry: RegistryServer, hub: Any, tmp_path: Path, ns: str) -> None:
    """An image built long ago (`created` in 2020, as reproducible builds often say) but pushed an
    hour ago is young: Docker Hub's `tag_last_pushed` decides, through its documented API."""
    repo = f"{ns}/web"
    for tag in ("1.0", "1.1"):
        registry.push(repo, tag, build_image(f"{ns} {tag}", created="2020-01-01T00:00:00Z"))
    hub.add_tag(repo, "1.0", ago(days=40))
    hub.add_tag(repo, "1.1", ago(hours=1))
    (tmp_path / "app.yaml").write_text(pod(f"docker.io/{repo}:1.0"))
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: app.yaml\n"
                      "    policy: {kind: semver, min_age: 1d}\n"
                      f"registries:\n  - host: docker.io\n    url: {registry.url}\n"
                      f"    hub_url: {hub.url}\n")
    summary = run(load_config(config))
    assert not summary.changes and not summary.failures
    assert any(n.reason.startswith("waiting: 1.1 waits until ") for n in summary.skipped)
    assert any("/tags" in h for h in hub.hits)
