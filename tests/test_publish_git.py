"""Pushing with dulwich to real git (http-backend and over SSH): what git's answer means.

The servers are real git, so the compare-and-swap on the old head, hooks and per-ref reports
are the ones production sees; `PushGate` stages races (both runs read before either writes)
and answers lost after the push went out.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tagsync.config import load_config
from tagsync.errors import BranchMovedError, PublishError, PushRejectedError
from tagsync.publish.git import GitPublisher
from tagsync.reference import short
from tagsync.run import Summary, run
from tests.servers.fixtures import GitServer, RegistryServer, SshGit, kernels_yaml, unique_namespace

CATALOG = 'images:\n  - name: python\n    tags:\n      - ["3.6-ubuntu", "0123456789ab"]\n'


def publisher(git: GitServer) -> GitPublisher:
    return GitPublisher(git.url, "main", token=git.token)


def both(*jobs: Any) -> list[Any]:
    """Run the jobs in threads at once; each result is its return value or its exception."""
    out: list[Any] = [None] * len(jobs)

    def call(i: int) -> None:
        try:
            out[i] = jobs[i]()
        except Exception as exc:  # the test inspects it
            out[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


@pytest.fixture
def repo(git_server: GitServer) -> GitServer:
    git_server.commit_directly({"images.yml": CATALOG.encode(), "OTHER.md": b"x\n"}, "initial")
    return git_server


# --- the server itself: real git cannot be talked into a lost update -------------------------


def test_two_pushes_from_the_same_head_one_lands_the_other_is_told_the_branch_moved(
        repo: GitServer) -> None:
    a, b = publisher(repo), publisher(repo)
    snap_a, snap_b = a.snapshot(), b.snapshot()
    repo.gate.hold(2)
    results = both(lambda: a.publish(snap_a, {"a.txt": b"a\n"}, "a"),
                   lambda: b.publish(snap_b, {"b.txt": b"b\n"}, "b"))
    landed = [r for r in results if not isinstance(r, Exception)]
    moved = [r for r in results if isinstance(r, BranchMovedError)]
    assert len(landed) == 1 and len(moved) == 1, results
    assert landed[0].pushed and repo.head() == landed[0].revision.encode()
    assert repo.commit_count() == 2


# --- what a push's answer means --------------------------------------------------------------


def test_a_hook_refusal_is_a_clear_error_with_the_hooks_message(repo: GitServer) -> None:
    repo.protect("main")
    pub = publisher(repo)
    head = repo.head()
    with pytest.raises(PushRejectedError, match=r"refused the push to main: .*hook declined.*"
                                                r"branch main is protected"):
        pub.publish(pub.snapshot(), {"a.txt": b"a\n"}, "a")
    assert repo.head() == head


def test_an_answer_lost_after_the_push_landed_is_settled_by_reading_the_branch(repo: GitServer) -> None:
    pub = publisher(repo)
    snap = pub.snapshot()
    repo.gate.cut_after = 1
    result = pub.publish(snap, {"a.txt": b"a\n"}, "a")
    assert result.pushed and repo.head() == result.revision.encode()
    assert repo.read("a.txt") == b"a\n"


def test_a_connection_cut_before_the_server_took_the_push_says_nothing_changed(repo: GitServer) -> None:
    pub = publisher(repo)
    snap = pub.snapshot()
    head = repo.head()
    repo.gate.cut_before = 1
    with pytest.raises(PublishError, match="main is unchanged") as caught:
        pub.publish(snap, {"a.txt": b"a\n"}, "a")
    assert not isinstance(caught.value, BranchMovedError)
    assert repo.head() == head


def test_a_branch_moved_before_the_advertisement_is_a_branch_moved_error(repo: GitServer) -> None:
    pub = publisher(repo)
    snap = pub.snapshot()
    repo.commit_directly({"OTHER.md": b"y\n"})
    with pytest.raises(BranchMovedError):
        pub.publish(snap, {"a.txt": b"a\n"}, "a")


# --- two whole runs at once ----------------------------------------------------------------


def _configs(tmp_path: Path, registry: RegistryServer, ns: str, git: str) -> list[Path]:
    """Two configs for two runs that differ only in the commit author, so their commits differ
    (the same commit built twice in one second would have one id and prove nothing)."""
    out = []
    for who in ("a", "b"):
        config = tmp_path / f"tagsync-{who}.yaml"
        config.write_text(f'{kernels_yaml(registry, ns)}git:\n{git}  author: "run {who} <{who}@x>"\n')
        out.append(config)
    return out


def _two_runs(configs: list[Path], gate: Any) -> list[Summary]:
    gate.hold(2)
    summaries = both(*[lambda c=c: run(load_config(c)) for c in configs])
    assert not [s for s in summaries if isinstance(s, Exception)], summaries
    return summaries


def _check_one_winner(summaries: list[Summary], git: GitServer, new: str) -> None:
    """Exactly one commit for the change, nobody's work lost, the loser re-planned to nothing."""
    winners = [s for s in summaries if s.pushed]
    losers = [s for s in summaries if not s.pushed]
    assert len(winners) == 1 and len(losers) == 1, summaries
    assert winners[0].commit == git.head().decode() and winners[0].to_dict()["status"] == "changed"
    assert losers[0].attempts == 2 and losers[0].changes == []
    assert losers[0].to_dict()["status"] == "unchanged"
    assert git.read("images.yml") == CATALOG.replace("0123456789ab", new).encode()
    assert git.read("OTHER.md") == b"x\n"
    assert git.commit_count() == 2


def test_two_concurrent_runs_over_http_make_one_commit_and_the_loser_replans(
        repo: GitServer, registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("race", request)
    new = short(registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} new").digest)
    monkeypatch.setenv("TEST_GIT_TOKEN", repo.token)
    configs = _configs(tmp_path, registry, ns, f"  repo: {repo.url}\n  token: env:TEST_GIT_TOKEN\n")
    _check_one_winner(_two_runs(configs, repo.gate), repo, new)


def test_two_concurrent_runs_over_ssh_make_one_commit_and_the_loser_replans(
        ssh_git: SshGit, registry: RegistryServer, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    ssh_git.git.commit_directly({"images.yml": CATALOG.encode(), "OTHER.md": b"x\n"}, "initial")
    ns = unique_namespace("race", request)
    new = short(registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} new").digest)
    (tmp_path / "deploy_key").write_text(ssh_git.ssh.private_key_text())
    (tmp_path / "known_hosts").write_text(ssh_git.ssh.known_hosts())
    configs = _configs(tmp_path, registry, ns, f"  repo: {ssh_git.ssh.url}\n  ssh_key: file:deploy_key\n"
                                               "  known_hosts: file:known_hosts\n")
    _check_one_winner(_two_runs(configs, ssh_git.git.gate), ssh_git.git, new)


def test_a_server_that_does_not_speak_git_is_a_publish_error_naming_the_url() -> None:
    """A captive portal or a wrong URL answers `info/refs` with a page: a PublishError that says
    so, not dulwich's ValueError as a traceback."""
    from tests.servers.fixtures import serve_wsgi

    def portal(environ: dict[str, Any], start: Any) -> list[bytes]:
        start("200 OK", [("Content-Type", "text/html")])
        return [b"<html>Sign in to the guest network</html>"]

    server = serve_wsgi(portal)
    try:
        with pytest.raises(PublishError) as caught:
            GitPublisher(f"{server.url}/acme/catalogs.git", "main",
                         token="ghp_portal_token").snapshot()
    finally:
        server.stop()
    message = str(caught.value)
    assert f"{server.url}/acme/catalogs.git" in message
    assert "does not speak Git's protocol" in message and "ghp_portal_token" not in message


# --- a link stays a link, a file keeps its mode ----------------------------------------------------


def _commit_tree(git: GitServer, entries: list[tuple[str, int, bytes]]) -> None:
    """A commit of exactly these (path, mode, data) entries on main, made with dulwich."""
    from dulwich.object_store import commit_tree_changes
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import Repo

    with Repo(str(git.path)) as repo:
        empty = Tree()
        repo.object_store.add_object(empty)
        changes = []
        for path, mode, data in entries:
            blob = Blob.from_string(data)
            repo.object_store.add_object(blob)
            changes.append((path.encode(), mode, blob.id))
        commit = Commit()
        commit.tree = commit_tree_changes(repo.object_store, empty.id, changes)
        commit.parents = [repo.refs[b"refs/heads/main"]]
        commit.author = commit.committer = b"someone <someone@localhost>"
        commit.author_time = commit.commit_time = 1_700_000_000
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"links and modes"
        repo.object_store.add_object(commit)
        repo.refs[b"refs/heads/main"] = commit.id


def _mode(git: GitServer, path: str) -> tuple[int, bytes]:
    from dulwich.object_store import tree_lookup_path
    from dulwich.repo import Repo

    with Repo(str(git.path)) as repo:
        commit = repo[repo.refs[b"refs/heads/main"]]
        mode, sha = tree_lookup_path(repo.__getitem__, commit.tree, path.encode())
        return mode, bytes(repo[sha].data)


def test_a_symlinked_catalog_is_edited_at_its_target_and_modes_are_kept(
        repo: GitServer, registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    _commit_tree(repo, [("images.yml", 0o120000, b"catalogs/kernels.yml"),
                        ("catalogs/kernels.yml", 0o100755, CATALOG.encode()),
                        ("OTHER.md", 0o100644, b"x\n")])
    ns = unique_namespace("links", request)
    new = short(registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} new").digest)
    monkeypatch.setenv("TEST_GIT_TOKEN", repo.token)
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"{kernels_yaml(registry, ns)}git:\n  repo: {repo.url}\n"
                      "  token: env:TEST_GIT_TOKEN\n")
    assert run(load_config(config)).pushed
    assert _mode(repo, "images.yml") == (0o120000, b"catalogs/kernels.yml")
    assert _mode(repo, "catalogs/kernels.yml") == (
        0o100755, CATALOG.replace("0123456789ab", new).encode())


def test_a_symlink_leading_out_of_the_repository_is_refused_with_a_reason(
        repo: GitServer, registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    from tagsync.errors import CatalogError

    _commit_tree(repo, [("images.yml", 0o120000, b"../../etc/passwd")])
    ns = unique_namespace("links", request)
    monkeypatch.setenv("TEST_GIT_TOKEN", repo.token)
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"{kernels_yaml(registry, ns)}git:\n  repo: {repo.url}\n"
                      "  token: env:TEST_GIT_TOKEN\n")
    head = repo.head()
    with pytest.raises(CatalogError, match="symlink leading outside the repository"):
        run(load_config(config))
    assert repo.head() == head
