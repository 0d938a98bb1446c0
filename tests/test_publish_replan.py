"""A run that loses a race re-plans from what the registries say *now*, on every publisher.

Run A reads the branch and asks the registry (digest 2); the tag moves to 3; run B reads, asks
(3) and publishes. A's write is refused because the target moved, and A re-plans: it must ask
the registry again and end with nothing to write, never put 2 back over 3. The race is staged
deterministically: A's publisher runs the tag move and the whole of run B between A's read and
A's first write (no sleeps, no timing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tagsync.config import load_config
from tagsync.plan import Change
from tagsync.publish import PublishResult, Snapshot
from tagsync.reference import short
from tagsync.run import Summary, make_publisher, run
from tests.servers.fixtures import GitServer, RegistryServer, kernels_yaml, unique_namespace
from tests.servers.github import GitHubServer

REPO = "acme/catalogs"
TOKEN = "ghp_testtoken0123456789abcdefABCDEF"
CATALOG = 'images:\n  - name: python\n    tags:\n      - ["3.6-ubuntu", "{py}"]\n'
OLD = "0123456789ab"


class HeldPublisher:
    """Run A's publisher: `meanwhile` (the tag moving, run B) happens once, after A has read the
    target and asked the registry, before A's first write."""

    def __init__(self, inner: Any, meanwhile: Callable[[], None]) -> None:
        self.inner = inner
        self.meanwhile: Callable[[], None] | None = meanwhile
        self.publishes = 0

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()  # type: ignore[no-any-return]

    def publish(self, snapshot: Snapshot, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        self.publishes += 1
        if self.meanwhile is not None:
            step, self.meanwhile = self.meanwhile, None
            step()
        return self.inner.publish(snapshot, files, message, changes)  # type: ignore[no-any-return]

    def describe(self) -> str:
        return self.inner.describe()  # type: ignore[no-any-return]


@dataclass
class Race:
    registry: RegistryServer
    ns: str
    a: Path  # run A's config
    b: Path  # run B's config (another commit message, so the two commits differ)
    read: Callable[[], bytes]  # the catalog as the target holds it now (PR mode: the PR's)
    commits: Callable[[], int]  # commits on the target branch

    def push(self, seed: str) -> str:
        return short(self.registry.push(f"{self.ns}/kernel-python", "3.6-ubuntu",
                                        f"{self.ns} {seed}").digest)

    def run_a_while_b_wins(self) -> tuple[Summary, Summary, str]:
        """A asks (digest 2); the tag moves to 3 and B runs to the end; then A writes."""
        self.push("two")
        out: dict[str, Any] = {}

        def meanwhile() -> None:
            out["newest"] = self.push("three")
            out["b"] = run(load_config(self.b))

        config = load_config(self.a)
        summary_a = run(config, publisher=HeldPublisher(make_publisher(config), meanwhile))
        return summary_a, out["b"], out["newest"]


def _configs(tmp_path: Path, registry: RegistryServer, ns: str, target: str) -> tuple[Path, Path]:
    out = []
    for who in ("a", "b"):
        config = tmp_path / f"tagsync-{who}.yaml"
        message = f'  message: "tagsync (run {who}): update {{count}} image(s)"\n' if target else ""
        config.write_text(kernels_yaml(registry, ns) + target + message)
        out.append(config)
    return out[0], out[1]


def _github_race(github: GitHubServer, registry: RegistryServer, tmp_path: Path, ns: str,
                 monkeypatch: pytest.MonkeyPatch, extra: str, pr: bool) -> Race:
    github.create_repo(REPO, {"images.yml": CATALOG.format(py=OLD).encode()})
    github.tokens[TOKEN] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    a, b = _configs(tmp_path, registry, ns, f"github:\n  repo: {REPO}\n  api_url: {github.url}\n"
                                            f"  token: env:TEST_GITHUB_TOKEN\n{extra}")
    where = "tagsync/main/kernels" if pr else "main"
    return Race(registry, ns, a, b, lambda: github.read(REPO, "images.yml", where),
                lambda: len(list(github.repos[REPO].git.get_walker(
                    include=[(github.head(REPO, where) or "").encode()]))))


GITHUB_TARGETS = {
    "graphql": ("", False),
    "rest": ("  api: rest\n", False),
    "graphql-pr": ("  mode: pull-request\n", True),
    "rest-pr": ("  mode: pull-request\n  api: rest\n", True),
}


@pytest.mark.parametrize("target", sorted(GITHUB_TARGETS))
def test_a_run_that_lost_the_race_on_github_never_writes_an_older_digest(
        github: GitHubServer, registry: RegistryServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, target: str) -> None:
    extra, pr = GITHUB_TARGETS[target]
    race = _github_race(github, registry, tmp_path, unique_namespace("replan", request),
                        monkeypatch, extra, pr)
    summary_a, summary_b, newest = race.run_a_while_b_wins()
    assert race.read() == CATALOG.format(py=newest).encode()
    assert summary_b.pushed and not summary_a.pushed
    assert summary_a.attempts == 2
    if pr:  # the plan is against the base; the PR B opened already proposes it
        assert summary_a.pull_request_action == "unchanged"
        assert len(github.repos[REPO].pulls) == 1
        assert summary_a.pull_request == summary_b.pull_request
    else:
        assert summary_a.changes == []
        assert race.commits() == 2  # the initial commit and B's: A made none


def test_a_run_that_lost_the_race_over_git_http_never_writes_an_older_digest(
        git_server: GitServer, registry: RegistryServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    git_server.commit_directly({"images.yml": CATALOG.format(py=OLD).encode()}, "initial")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    ns = unique_namespace("replan", request)
    a, b = _configs(tmp_path, registry, ns,
                    f"git:\n  repo: {git_server.url}\n  token: env:TEST_GIT_TOKEN\n")
    race = Race(registry, ns, a, b, lambda: git_server.read("images.yml"), git_server.commit_count)
    summary_a, summary_b, newest = race.run_a_while_b_wins()
    assert git_server.read("images.yml") == CATALOG.format(py=newest).encode()
    assert summary_b.pushed and not summary_a.pushed
    assert summary_a.attempts == 2 and summary_a.changes == []
    assert git_server.commit_count() == 2


def test_a_run_that_lost_the_race_in_files_mode_never_writes_an_older_digest(
        registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    (tmp_path / "images.yml").write_text(CATALOG.format(py=OLD))
    ns = unique_namespace("replan", request)
    a, b = _configs(tmp_path, registry, ns, "")
    race = Race(registry, ns, a, b, lambda: (tmp_path / "images.yml").read_bytes(), lambda: 0)
    summary_a, _, newest = race.run_a_while_b_wins()
    assert (tmp_path / "images.yml").read_text() == CATALOG.format(py=newest)
    assert summary_a.attempts == 2 and summary_a.changes == []

