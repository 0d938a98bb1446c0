"""Promotion lanes: production follows staging, taking each image's digest once staging has
held it for `after`, by staging's Git history, and only while staging still holds it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tagsync.config import load_config
from tagsync.run import run
from tests.servers.fixtures import GitServer, RegistryServer, unique_namespace
from tests.servers.github import GitHubServer

HOUR = 3600


def pod(image: str) -> bytes:
    return f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {image}\n".encode()


def lanes_config(registry: RegistryServer) -> str:
    """Production follows staging once staging has held a value for 24 hours."""
    return (
        "catalogs:\n"
        "  - name: staging\n    file: staging/app.yaml\n    pin_digests: true\n"
        "  - name: production\n    file: prod/app.yaml\n    pin_digests: true\n"
        "    follow: {catalog: staging, after: 24h}\n"
        f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")


@pytest.fixture
def lanes(registry: RegistryServer, git_server: GitServer, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> tuple[Path, str, str, str]:
    ns = unique_namespace("promote", request)
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = registry.push(f"{ns}/web", "1.1", f"{ns} new").digest
    config = tmp_path / "tagsync.yaml"
    config.write_text(lanes_config(registry)
                      + f"git:\n  repo: {git_server.url}\n  token_env: TEST_GIT_TOKEN\n")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    image = f"{registry.host}/{ns}/web"
    git_server.commit_directly({"prod/app.yaml": pod(f"{image}:1.0@{old}"),
                                "staging/app.yaml": pod(f"{image}:1.0@{old}")}, "start",
                               when=int(time.time()) - 100 * HOUR)
    return config, image, old, new


def test_a_digest_staging_held_long_enough_is_promoted(lanes: tuple[Path, str, str, str],
                                                       git_server: GitServer) -> None:
    config, image, _old, new = lanes
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "staging moves",
                               when=int(time.time()) - 48 * HOUR)
    summary = run(load_config(config))
    assert not summary.failures
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.1@{new}")
    assert [c.reason for c in summary.changes] == ["promoted"]


def test_a_digest_staging_took_recently_waits_and_says_until_when(
        lanes: tuple[Path, str, str, str], git_server: GitServer) -> None:
    config, image, old, new = lanes
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "staging moves",
                               when=int(time.time()) - 2 * HOUR)
    summary = run(load_config(config))
    assert not summary.changes and not summary.failures
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.0@{old}")
    [note] = [n for n in summary.skipped if n.file == "prod/app.yaml"]
    assert note.reason.startswith("waiting: 1.1 promotes from staging at ")


def test_an_unrelated_commit_to_the_staging_file_does_not_restart_the_clock(
        lanes: tuple[Path, str, str, str], git_server: GitServer) -> None:
    config, image, _old, new = lanes
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "staging moves",
                               when=int(time.time()) - 30 * HOUR)
    git_server.commit_directly({"staging/app.yaml": b"# reviewed\n" + pod(f"{image}:1.1@{new}")},
                               "a comment", when=int(time.time()) - HOUR)
    run(load_config(config))
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.1@{new}")


def test_following_a_catalog_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    from tagsync.errors import ConfigError

    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: prod\n    file: a.yaml\n    follow: {catalog: stagin}\n")
    with pytest.raises(ConfigError, match="must name another catalog"):
        load_config(config)


def test_promotion_reads_staging_history_through_githubs_api(
        registry: RegistryServer, github: GitHubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("ghpromote", request)
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = registry.push(f"{ns}/web", "1.1", f"{ns} new").digest
    image = f"{registry.host}/{ns}/web"
    repo, token = "acme/lanes", "ghp_promotetoken0123456789abcdefABCD"
    github.create_repo(repo, {"prod/app.yaml": pod(f"{image}:1.0@{old}"),
                              "staging/app.yaml": pod(f"{image}:1.0@{old}")},
                       when=int(time.time()) - 100 * HOUR)
    github.commit_directly(repo, {"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "staging moves",
                           when=int(time.time()) - 48 * HOUR)
    github.tokens[token] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", token)
    config = tmp_path / "tagsync.yaml"
    config.write_text(lanes_config(registry)
                      + f"github:\n  repo: {repo}\n  api_url: {github.url}\n"
                      "  token: env:TEST_GITHUB_TOKEN\n")
    summary = run(load_config(config))
    assert not summary.failures
    assert github.read(repo, "prod/app.yaml") == pod(f"{image}:1.1@{new}")
