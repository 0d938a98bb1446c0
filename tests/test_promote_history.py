"""Promotion that time cannot fool: staging's hold on a value is dated by the first-parent
commit of the staging branch where the value appeared, each commit's time clamped to be no
earlier than its parent's, a future time counted as now (and warned about). Real git history,
with commit times set, served by `git http-backend` and by the GitHub contract server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tagsync.config import load_config
from tagsync.run import run
from tests.servers.fixtures import GitServer, RegistryServer, commit_to_ref, unique_namespace
from tests.servers.github import GitHubServer

HOUR = 3600
DAY = 24 * HOUR


def pod(image: str) -> bytes:
    return f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {image}\n".encode()


def lanes(registry: RegistryServer) -> str:
    return ("catalogs:\n"
            "  - name: staging\n    file: staging/app.yaml\n    pin_digests: true\n"
            "  - name: production\n    file: prod/app.yaml\n    pin_digests: true\n"
            "    follow: {catalog: staging, after: 24h}\n"
            f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")


def merge_no_ff(repo: Any, files: dict[str, bytes], branch_time: int, merge_time: int) -> bytes:
    """`git checkout -b feature; commit (dated branch_time); git checkout main; git merge
    --no-ff feature` (dated merge_time): a merge whose second parent is the older commit."""
    from dulwich.objects import Commit

    main = repo.refs[b"refs/heads/main"]
    repo.refs[b"refs/heads/feature"] = main
    side = commit_to_ref(repo, files, "staging moves (on a branch)", b"refs/heads/feature",
                         branch_time)
    merge = Commit()
    merge.tree = repo[side].tree
    merge.parents = [main, side]
    merge.author = merge.committer = b"someone <someone@localhost>"
    merge.author_time = merge.commit_time = merge_time
    merge.author_timezone = merge.commit_timezone = 0
    merge.message = b"Merge branch 'feature'"
    repo.object_store.add_object(merge)
    repo.refs[b"refs/heads/main"] = merge.id
    return bytes(merge.id)


@pytest.fixture
def staged(registry: RegistryServer, git_server: GitServer, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
           ) -> tuple[Path, str, str, str]:
    ns = unique_namespace("history", request)
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = registry.push(f"{ns}/web", "1.1", f"{ns} new").digest
    config = tmp_path / "tagsync.yaml"
    config.write_text(lanes(registry)
                      + f"git:\n  repo: {git_server.url}\n  token_env: TEST_GIT_TOKEN\n")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    image = f"{registry.host}/{ns}/web"
    git_server.commit_directly({"prod/app.yaml": pod(f"{image}:1.0@{old}"),
                                "staging/app.yaml": pod(f"{image}:1.0@{old}")}, "start",
                               when=int(time.time()) - 10 * DAY)
    return config, image, old, new


def production_waits(config: Path, git_server: GitServer, image: str, old: str) -> str:
    summary = run(load_config(config))
    assert not summary.changes and not summary.failures
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.0@{old}")
    [note] = [n for n in summary.skipped if n.file == "prod/app.yaml"]
    assert note.reason.startswith("waiting: 1.1 promotes from staging at ")
    return note.reason


def test_a_merge_today_of_a_commit_made_three_days_ago_counts_from_today(
        staged: tuple[Path, str, str, str], git_server: GitServer) -> None:
    from dulwich.repo import Repo

    config, image, old, new = staged
    with Repo(str(git_server.path)) as repo:
        merge_no_ff(repo, {"staging/app.yaml": pod(f"{image}:1.1@{new}")},
                    int(time.time()) - 3 * DAY, int(time.time()) - 60)
    production_waits(config, git_server, image, old)


def test_a_commit_backdated_three_days_counts_from_its_parents_time(
        staged: tuple[Path, str, str, str], git_server: GitServer) -> None:
    config, image, old, new = staged
    parent = int(time.time()) - HOUR
    git_server.commit_directly({"README": b"docs\n"}, "an honest commit", when=parent)
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")},
                               "backdated", when=int(time.time()) - 3 * DAY)
    reason = production_waits(config, git_server, image, old)
    assert time.strftime("held there since %Y-%m-%d %H:%M UTC", time.gmtime(parent)) in reason


def test_an_amend_pushed_with_force_and_an_old_date_counts_from_its_parent(
        staged: tuple[Path, str, str, str], git_server: GitServer) -> None:
    """The first push is honest (an hour ago); the amend replaces it with a commit dated three
    days back on the same parent: the parent (an hour old) is the earliest it can count from."""
    from dulwich.repo import Repo

    config, image, old, new = staged
    git_server.commit_directly({"README": b"docs\n"}, "an honest commit",
                               when=int(time.time()) - 2 * HOUR)
    honest = git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")},
                                        "staging moves", when=int(time.time()) - HOUR)
    with Repo(str(git_server.path)) as repo:
        parent = repo[honest].parents[0]
        repo.refs[b"refs/heads/main"] = parent  # the force push drops the honest commit …
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")},
                               "staging moves (amended)", when=int(time.time()) - 3 * DAY)
    production_waits(config, git_server, image, old)  # … and its replacement waits


def test_a_future_dated_commit_is_warned_about_and_counts_as_now(
        staged: tuple[Path, str, str, str], git_server: GitServer) -> None:
    config, image, old, new = staged
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")},
                               "from the future", when=int(time.time()) + 30 * DAY)
    before = time.strftime("%Y-%m-%d", time.gmtime(time.time() + DAY))
    summary = run(load_config(config))
    after = time.strftime("%Y-%m-%d", time.gmtime(time.time() + DAY))
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.0@{old}")
    assert any("in the future: it counts as now" in w for w in summary.warnings)
    [note] = [n for n in summary.skipped if n.file == "prod/app.yaml"]
    tomorrow = note.reason.removeprefix("waiting: 1.1 promotes from staging at ")[:10]
    assert tomorrow in (before, after)  # a day from now, not in 30 days


def test_a_future_dated_commit_after_the_value_does_not_hold_it_back(
        staged: tuple[Path, str, str, str], git_server: GitServer) -> None:
    config, image, _old, new = staged
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "staging moves",
                               when=int(time.time()) - 2 * DAY)
    git_server.commit_directly({"README": b"x\n"}, "a skewed clock", when=int(time.time()) + 30 * DAY)
    summary = run(load_config(config))
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.1@{new}")
    [change] = summary.changes
    assert change.why is not None and change.why.startswith("promoted from catalog staging, which "
                                                             "holds it since ")
    assert any("in the future" in w for w in summary.warnings)


def test_a_merge_through_githubs_api_counts_from_the_merge(
        registry: RegistryServer, github: GitHubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("ghhistory", request)
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = registry.push(f"{ns}/web", "1.1", f"{ns} new").digest
    image = f"{registry.host}/{ns}/web"
    repo, token = "acme/history", "ghp_historytoken0123456789abcdefABCD"
    github.create_repo(repo, {"prod/app.yaml": pod(f"{image}:1.0@{old}"),
                              "staging/app.yaml": pod(f"{image}:1.0@{old}")},
                       when=int(time.time()) - 10 * DAY)
    merge_no_ff(github.repos[repo].git, {"staging/app.yaml": pod(f"{image}:1.1@{new}")},
                int(time.time()) - 3 * DAY, int(time.time()) - 60)
    github.tokens[token] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", token)
    config = tmp_path / "tagsync.yaml"
    config.write_text(lanes(registry) + f"github:\n  repo: {repo}\n  api_url: {github.url}\n"
                      "  token: env:TEST_GITHUB_TOKEN\n")
    summary = run(load_config(config))
    assert github.read(repo, "prod/app.yaml") == pod(f"{image}:1.0@{old}")
    [note] = [n for n in summary.skipped if n.file == "prod/app.yaml"]
    assert note.reason.startswith("waiting: 1.1 promotes from staging at ")


@pytest.fixture
def gh_lanes(registry: RegistryServer, github: GitHubServer, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
             ) -> tuple[Path, str, str, str, str]:
    """Lanes on GitHub, staging quiet for ten days (an honest start, pushed then)."""
    ns = unique_namespace("ghpush", request)
    old = registry.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = registry.push(f"{ns}/web", "1.1", f"{ns} new").digest
    image = f"{registry.host}/{ns}/web"
    repo, token = f"acme/{ns.replace('/', '-')}", "ghp_pushlogtoken0123456789abcdefABCD"
    github.create_repo(repo, {"prod/app.yaml": pod(f"{image}:1.0@{old}"),
                              "staging/app.yaml": pod(f"{image}:1.0@{old}")},
                       when=int(time.time()) - 10 * DAY)
    github.tokens[token] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", token)
    config = tmp_path / "tagsync.yaml"
    config.write_text(lanes(registry) + f"github:\n  repo: {repo}\n  api_url: {github.url}\n"
                      "  token: env:TEST_GITHUB_TOKEN\n")
    return config, repo, image, old, new


def test_on_github_a_backdated_commit_on_a_quiet_branch_counts_from_its_push(
        gh_lanes: tuple[Path, str, str, str, str], github: GitHubServer) -> None:
    """The case history alone cannot catch (the parent is ten days old): GitHub's activity log
    says when the commit was pushed, by GitHub's clock."""
    config, repo, image, old, new = gh_lanes
    github.commit_directly(repo, {"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "backdated",
                           when=int(time.time()) - 3 * DAY, pushed=int(time.time()) - 60)
    summary = run(load_config(config))
    assert github.read(repo, "prod/app.yaml") == pod(f"{image}:1.0@{old}")
    [note] = [n for n in summary.skipped if n.file == "prod/app.yaml"]
    assert note.reason.startswith("waiting: 1.1 promotes from staging at ")


def test_on_github_a_history_rewritten_by_force_push_counts_from_the_force_push(
        gh_lanes: tuple[Path, str, str, str, str], github: GitHubServer) -> None:
    from tests.servers.fixtures import commit_to_ref

    config, repo, image, old, new = gh_lanes
    git = github.repos[repo].git
    start = git.refs[b"refs/heads/main"]
    github.commit_directly(repo, {"README": b"honest\n"}, "honest", when=int(time.time()) - HOUR)
    git.refs[b"refs/heads/rewrite"] = start  # the forger's history leaves the honest commit out
    forged = commit_to_ref(git, {"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "forged",
                           b"refs/heads/rewrite", int(time.time()) - 9 * DAY)
    github.push_ref(repo, forged, pushed=int(time.time()) - 60)  # git push --force
    summary = run(load_config(config))
    assert github.read(repo, "prod/app.yaml") == pod(f"{image}:1.0@{old}")
    assert any(n.reason.startswith("waiting: 1.1 promotes") for n in summary.skipped)


def test_on_github_a_value_pushed_long_enough_ago_is_promoted(
        gh_lanes: tuple[Path, str, str, str, str], github: GitHubServer) -> None:
    config, repo, image, _old, new = gh_lanes
    github.commit_directly(repo, {"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "honest",
                           when=int(time.time()) - 2 * DAY)
    github.commit_directly(repo, {"README": b"x\n"}, "later", when=int(time.time()) - HOUR)
    run(load_config(config))
    assert github.read(repo, "prod/app.yaml") == pod(f"{image}:1.1@{new}")


def test_the_fake_activity_log_answers_as_documented_newest_first_by_ref(
        github: GitHubServer) -> None:
    """A self-test of the GitHub server's activity log: each ref move, newest first, its
    `after` the commit the branch moved to, a force push told apart; per_page is bounded."""
    import httpx

    github.create_repo("acme/log", {"a": b"1\n"}, when=int(time.time()) - DAY)
    first = github.head("acme/log")
    second = github.commit_directly("acme/log", {"a": b"2\n"}, when=int(time.time()) - HOUR)
    assert first is not None
    github.push_ref("acme/log", first.encode())  # back: a force push
    github.tokens["ghp_activity"] = "read"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
               "Authorization": "Bearer ghp_activity"}
    answer = httpx.get(f"{github.url}/repos/acme/log/activity", headers=headers,
                       params={"ref": "main", "per_page": "100"}).json()
    assert [(a["activity_type"], a["after"]) for a in answer] == [
        ("force_push", first), ("push", second), ("branch_creation", first)]
    refused = httpx.get(f"{github.url}/repos/acme/log/activity", headers=headers,
                        params={"per_page": "500"})
    assert refused.status_code == 422
    assert not github.violations


def test_a_promotion_waits_for_the_following_catalogs_own_min_age(
        registry: RegistryServer, git_server: GitServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Staging has held the value two days, past `after`; production's own policy wants images
    a week old: the promoted digest passes production's gate like any other write."""
    from tagsync.image.tiny import build_image

    ns = unique_namespace("promote-age", request)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * DAY))
    old = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} old", created=when)).digest
    new = registry.push(f"{ns}/web", "1.1", build_image(f"{ns} new", created=when)).digest
    config = tmp_path / "tagsync.yaml"
    config.write_text(lanes(registry).replace("    follow:", "    policy: {min_age: 7d}\n    follow:")
                      + f"git:\n  repo: {git_server.url}\n  token_env: TEST_GIT_TOKEN\n")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    image = f"{registry.host}/{ns}/web"
    git_server.commit_directly({"prod/app.yaml": pod(f"{image}:1.0@{old}"),
                                "staging/app.yaml": pod(f"{image}:1.0@{old}")}, "start",
                               when=int(time.time()) - 10 * DAY)
    git_server.commit_directly({"staging/app.yaml": pod(f"{image}:1.1@{new}")}, "staging moves",
                               when=int(time.time()) - 2 * DAY)
    summary = run(load_config(config))
    assert git_server.read("prod/app.yaml") == pod(f"{image}:1.0@{old}")
    [note] = [n for n in summary.skipped if n.file == "prod/app.yaml"]
    assert note.reason.startswith("waiting: new digest of 1.1 waits until ")
    assert "min_age 1w" in note.reason
