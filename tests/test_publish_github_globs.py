"""Catalogs given by glob in GitHub mode: the tree is listed through the API (one request),
the matching files are read at the head that was listed, and every edit is one commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.config import load_config
from tagsync.run import run
from tests.servers.fixtures import RegistryServer, unique_namespace
from tests.servers.github import GitHubServer

REPO = "acme/deploy"
TOKEN = "ghp_globtesttoken0123456789abcdefABC"


@pytest.mark.parametrize("truncated", [False, True])
def test_files_matched_by_glob_are_updated_in_one_commit(
        registry: RegistryServer, github: GitHubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, truncated: bool) -> None:
    """Also when GitHub truncates the recursive listing: then folder by folder."""
    ns = unique_namespace("ghglob", request)
    h = registry.host
    old = {app: registry.push(f"{ns}/{app}", "1.0", f"{ns} {app} old").digest for app in ("a", "b", "c")}
    new = {app: registry.push(f"{ns}/{app}", "1.0", f"{ns} {app} new").digest for app in ("a", "b", "c")}

    def pod(app: str, digest: str) -> bytes:
        return (f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                f"    - image: {h}/{ns}/{app}:1.0@{digest}\n").encode()

    github.create_repo(REPO, {"deploy/a.yaml": pod("a", old["a"]), "deploy/x/b.yaml": pod("b", old["b"]),
                              "deploy/vendor/c.yaml": pod("c", old["c"]), "README.md": b"hi\n"})
    github.tokens[TOKEN] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    config = tmp_path / "tagsync.yaml"
    config.write_text(
        "catalogs:\n  - name: deploy\n    files: ['deploy/**/*.yaml', '!deploy/vendor/**']\n"
        f"registries:\n  - host: '{h}'\n    url: {registry.url}\n"
        f"github:\n  repo: {REPO}\n  api_url: {github.url}\n  token: env:TEST_GITHUB_TOKEN\n")

    if truncated:
        github.tree_limit = 3  # each folder fits one answer; the whole tree does not
    summary = run(load_config(config))

    assert summary.pushed and len(summary.changes) == 2
    assert github.read(REPO, "deploy/a.yaml") == pod("a", new["a"])
    assert github.read(REPO, "deploy/x/b.yaml") == pod("b", new["b"])
    assert github.read(REPO, "deploy/vendor/c.yaml") == pod("c", old["c"])  # excluded
    assert [h.graphql for h in github.writes()] == ["createCommitOnBranch"]
