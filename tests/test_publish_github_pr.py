"""Pull-request mode keeps people's decisions, through `tagsync run` against the contract server:
a person's commit on the PR branch, a PR a person closed, a PR per base, a base that moves
alone, a PR merged while a run works, and a concurrent push in REST mode."""

# ruff: noqa: F811 (`world` is the fixture imported below)
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tagsync.config import load_config
from tagsync.run import Summary, make_publisher, run
from tests.servers.fixtures import commit_entries
from tests.test_publish_github import (  # noqa: F401
    REPO,
    TOKEN,
    World,
    _both_runs,
    app_config,
    app_key,
    new_images,
    pr_mode,
    waits,
    world,
)
from tests.test_publish_replan import HeldPublisher

BRANCH = "tagsync/main/kernels"


def run_once(world: World, meanwhile: Callable[[], None] | None = None) -> Summary:
    config = load_config(world.config)
    if meanwhile is None:
        return run(config)
    return run(config, publisher=HeldPublisher(make_publisher(config), meanwhile))


def pr_head(world: World, branch: str = BRANCH) -> str | None:
    return world.github.head(REPO, branch)


# --- a person's commit on the PR branch is kept (issue item 2) ----------------------------------


@pytest.mark.parametrize("api", ["graphql", "rest"])
@pytest.mark.parametrize("registry_moves", [False, True])
def test_a_persons_commit_on_an_open_pr_is_kept_and_the_run_says_so(
        world: World, api: str, registry_moves: bool) -> None:
    new_images(world)
    pr_mode(world, api=api)
    run_once(world)
    fix = world.github.commit_directly(REPO, {"NOTES.md": b"reviewer's fix\n"}, "reviewer's fix",
                                       branch=BRANCH)
    if registry_moves:
        world.push("python", "3.6-ubuntu", "py newer")
    writes = len(world.github.writes())
    summary = run_once(world)
    assert pr_head(world) == fix and len(world.github.writes()) == writes
    assert summary.pull_request_action == "kept" and not summary.pushed
    assert any("did not make" in w for w in summary.warnings)


# --- a closed PR stays closed (issue item 3) -------------------------------------------------------


@pytest.mark.parametrize("branch_deleted", [False, True])
def test_a_pr_a_person_closed_is_not_reopened_for_the_same_proposal(world: World,
                                                                     branch_deleted: bool) -> None:
    new_images(world)
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    pr.state = "closed"
    if branch_deleted:
        github = world.github
        github._set_ref(github.repos[REPO], f"refs/heads/{BRANCH}".encode(), None)
    summaries = [run_once(world) for _ in range(3)]
    assert world.github.open_pulls(REPO) == [] and len(world.github.repos[REPO].pulls) == 1
    assert {s.pull_request_action for s in summaries} == {"declined"}
    assert all(s.pull_request == pr.number and any("closed without merging" in w for w in s.warnings)
               for s in summaries)


def test_a_later_different_proposal_opens_a_new_pr_naming_the_one_it_supersedes(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run_once(world)
    [first] = world.github.open_pulls(REPO)
    first.state = "closed"
    world.push("python", "3.6-ubuntu", "py newer")
    summary = run_once(world)
    [second] = world.github.open_pulls(REPO)
    assert summary.pull_request_action == "opened" and second.number != first.number
    assert f"Supersedes #{first.number}" in second.body


# --- one PR per base (issue item 4) ------------------------------------------------------------------


def test_configs_for_two_bases_keep_two_prs_that_never_flip(world: World) -> None:
    new = new_images(world)
    github = world.github
    github.commit_directly(REPO, {"images.yml": github.read(REPO, "images.yml")}, "release",
                           branch="release")
    github.commit_directly(REPO, {"RELEASE.md": b"only on release\n"}, branch="release")
    pr_mode(world)
    main_config = world.config.read_text()
    release = world.config.with_name("release.yaml")
    release.write_text(main_config + "  branch: release\n")
    for _ in range(2):
        run(load_config(world.config))
        run(load_config(release))
    prs = world.github.open_pulls(REPO)
    assert sorted((p.head, p.base) for p in prs) == [("tagsync/main/kernels", "main"),
                                                      ("tagsync/release/kernels", "release")]
    assert github.read(REPO, "RELEASE.md", "tagsync/release/kernels") == b"only on release\n"
    assert github.read(REPO, "images.yml", "tagsync/main/kernels") == world.expected(**new)
    assert len(github.repos[REPO].pulls) == 2
    for pr in prs:  # each marker names its base
        assert f'<!-- tagsync:base "{pr.base}" -->' in pr.body


def test_pr_branch_equal_to_the_base_is_a_config_error(world: World) -> None:
    from tagsync.errors import ConfigError

    pr_mode(world, pr_branch="main")
    with pytest.raises(ConfigError, match="pr_branch"):
        load_config(world.config)


# --- the base moving alone changes nothing (issue item 6) ---------------------------------------------


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_the_base_moving_alone_leaves_a_current_pr_alone(world: World, api: str) -> None:
    new_images(world)
    pr_mode(world, api=api)
    run_once(world)
    head = pr_head(world)
    world.github.commit_directly(REPO, {"OTHER.md": b"busy main\n"})
    writes = len(world.github.writes())
    summary = run_once(world)
    assert pr_head(world) == head and len(world.github.writes()) == writes
    assert summary.pull_request_action == "unchanged"


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_pr_the_base_moved_into_a_conflict_is_rebuilt_on_it(world: World, api: str) -> None:
    new = new_images(world)
    pr_mode(world, api=api)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    # a person sets the same digest to another value on the base: the PR no longer merges
    world.github.commit_directly(REPO, {"images.yml": world.expected(py="aaaaaaaaaaaa")})
    summary = run_once(world)
    assert summary.pull_request_action == "updated" and summary.pull_request == pr.number
    assert world.github.read(REPO, "images.yml", BRANCH) == world.expected(**new)
    assert world.github._mergeable(world.github.repos[REPO], pr) is True


# --- a PR merged during the run is reported as merged (issue item 7) ----------------------------------


def test_a_pr_merged_while_the_run_works_is_reported_merged(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    summary = run_once(world, lambda: world.github.merge(REPO, pr.number) and None)
    assert summary.attempts == 2
    assert (summary.pull_request, summary.pull_request_action) == (pr.number, "merged")
    assert world.github.repos[REPO].pulls == [pr] and pr.merged


# --- REST compare-and-swap (issue item 5) ----------------------------------------------------------------


def test_rest_a_persons_push_after_the_read_is_never_overwritten(world: World) -> None:
    new_images(world)
    pr_mode(world, api="rest")
    run_once(world)
    world.push("python", "3.6-ubuntu", "py newer")
    pushed: dict[str, Any] = {}

    def person(*_: Any) -> None:  # at tagsync's first write, after it read the PR branch
        pushed["sha"] = world.github.commit_directly(REPO, {"NOTES.md": b"mine\n"}, "mine",
                                                     branch=BRANCH)

    world.github.before_write = person
    summary = run_once(world)
    assert pr_head(world) == pushed["sha"]
    assert summary.attempts == 2 and summary.pull_request_action == "kept"


def test_rest_pr_commits_only_fast_forward_the_pr_branch(world: World) -> None:
    new_images(world)
    pr_mode(world, api="rest")
    run_once(world)
    world.push("python", "3.6-ubuntu", "py newer")
    run_once(world)
    patches = [h for h in world.github.hits if h.method == "PATCH" and "git/refs" in h.path]
    assert patches and all(h.status == 200 for h in patches) and world.github.forced == []
    before = [sha for _, ref, sha in world.github.ref_log if ref == f"refs/heads/{BRANCH}"]
    head = world.github.commit(REPO, before[-1])
    assert before[-2].encode() in head.parents  # a child of the head it read


def test_rest_two_runs_updating_one_pr_at_once_make_one_commit_and_the_loser_replans(
        world: World) -> None:
    new_images(world)
    pr_mode(world, api="rest")
    run_once(world)
    newer = world.push("python", "3.6-ubuntu", "py newer")
    before = pr_head(world)
    summaries = _both_runs(world)
    assert sorted(str(s.pull_request_action) for s in summaries) == ["unchanged", "updated"]
    loser = next(s for s in summaries if s.pull_request_action == "unchanged")
    assert loser.attempts == 2
    head = world.github.commit(REPO, pr_head(world) or "")
    assert [p.decode() for p in head.parents] == [before]  # one commit, on the head both read
    assert newer.encode() in world.github.read(REPO, "images.yml", BRANCH)


# --- smaller promises (issue item 7) -------------------------------------------------------------


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_protected_pr_branch_says_so_not_to_use_pull_request_mode(world: World, api: str) -> None:
    from tagsync.errors import PushRejectedError

    new_images(world)
    pr_mode(world, api=api)
    run_once(world)
    world.github.repos[REPO].protected.add(BRANCH)
    world.push("python", "3.6-ubuntu", "py newer")
    with pytest.raises(PushRejectedError, match=f"protects the pull requests' branch {BRANCH}") as caught:
        run_once(world)
    assert "mode: pull-request" not in str(caught.value)


def test_a_cached_app_token_github_refuses_is_dropped_and_a_new_one_used(world: World,
                                                                        app_key: Path) -> None:
    new = new_images(world)
    app_config(world, app_key, ", installation_id: 777")
    world.push("r", "3.5", "r first")
    run_once(world)
    world.github.issued[0]["expires"] = 0  # revoked: GitHub answers 401 to it from now on
    new["r"] = world.push("r", "3.5", "r later")
    summary = run_once(world)
    assert summary.pushed and len(world.github.issued) == 2
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_scratch_branches_a_killed_run_left_are_deleted_and_a_running_ones_kept(world: World) -> None:
    import time

    from tagsync.publish.pull_request import SCRATCH

    new_images(world)
    pr_mode(world)
    base = (world.github.head(REPO) or "").encode()
    refs = world.github.repos[REPO].git.refs
    stale = [f"refs/heads/{BRANCH}{SCRATCH}{int(time.time()) - 7200}-0badc0de",
             f"refs/heads/{BRANCH}{SCRATCH}0badc0de"]  # an older tagsync's name
    fresh = f"refs/heads/{BRANCH}{SCRATCH}{int(time.time())}-600dc0de"
    for ref in [*stale, fresh]:
        refs[ref.encode()] = base
    run_once(world)
    left = [r.decode() for r in refs.allkeys() if SCRATCH.encode() in r]
    assert left == [fresh]


def _commit_entries(world: World, entries: list[tuple[str, int, bytes]], message: str) -> None:
    """A commit on main setting exactly these (path, mode, data) entries, made with dulwich."""
    git = world.github.repos[REPO].git
    made = commit_entries(git, git.refs[b"refs/heads/main"], entries, message)
    world.github._set_ref(world.github.repos[REPO], b"refs/heads/main", made)


def _links_and_modes(world: World) -> None:
    """images.yml becomes a link to catalogs/kernels.yml, an executable file."""
    _commit_entries(world, [("images.yml", 0o120000, b"catalogs/kernels.yml"),
                            ("catalogs/kernels.yml", 0o100755, world.expected())], "links")


def _entry(world: World, path: str, branch: str = "main") -> tuple[int, bytes]:
    from dulwich.object_store import tree_lookup_path

    git = world.github.repos[REPO].git
    tree = git[git.refs[f"refs/heads/{branch}".encode()]].tree
    mode, sha = tree_lookup_path(git.__getitem__, tree, path.encode())
    return mode, bytes(git[sha].data)


@pytest.mark.parametrize("mode", ["graphql", "rest", "pull-request"])
def test_a_symlinked_catalog_is_edited_at_its_target_and_keeps_its_mode(world: World,
                                                                       mode: str) -> None:
    _links_and_modes(world)
    new = new_images(world)
    if mode == "pull-request":
        pr_mode(world)
    else:
        world.configure(token="env:TEST_GITHUB_TOKEN", api=mode)
    run_once(world)
    branch = BRANCH if mode == "pull-request" else "main"
    assert _entry(world, "images.yml", branch) == (0o120000, b"catalogs/kernels.yml")
    assert _entry(world, "catalogs/kernels.yml", branch) == (0o100755, world.expected(**new))


def test_a_glob_matches_files_not_links(world: World) -> None:
    """As the git publisher lists a tree: a link is followed when named, never matched by a glob
    beside its target (one file, edited once)."""
    from tagsync.publish import github as gh

    _links_and_modes(world)
    api = gh.GitHubApi(world.github.url, gh.StaticToken(TOKEN))
    try:
        snap = gh.GitHubPublisher(api, REPO, "main").snapshot()
        assert "images.yml" not in snap.files() and "catalogs/kernels.yml" in snap.files()
    finally:
        api.close()


def test_a_symlinked_catalog_leading_out_of_the_repository_is_refused(world: World) -> None:
    from tagsync.errors import CatalogError

    _commit_entries(world, [("images.yml", 0o120000, b"../../etc/passwd")], "a link leading out")
    new_images(world)
    head = world.github.head(REPO)
    with pytest.raises(CatalogError, match="symlink leading outside the repository"):
        run_once(world)
    assert world.github.head(REPO) == head


def test_a_symlink_the_contents_api_cannot_follow_is_described_as_a_link(world: World) -> None:
    """The contract server's contents API, as documented: a link to a file answers with the
    file; a link leading elsewhere answers with the link itself."""
    import httpx

    _links_and_modes(world)
    url = f"{world.github.url}/repos/{REPO}/contents/images.yml"
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28"}
    assert httpx.get(url, headers=headers).json()["type"] == "file"
    _commit_entries(world, [("images.yml", 0o120000, b"../outside.yml")], "a link leading out")
    answer = httpx.get(url, headers=headers).json()
    assert (answer["type"], answer["target"]) == ("symlink", "../outside.yml")


# --- the client keeps GitHub's documented behaviour (issue item 8) ------------------------------------


def test_retry_after_is_waited_for_exactly_as_long_as_github_says(world: World,
                                                                  waits: list[float]) -> None:
    new = new_images(world)
    world.github.throttle = [(429, {"Retry-After": "7"}), (403, {"Retry-After": "3"})]
    run_once(world)
    assert waits == [7.0, 3.0]
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_a_file_over_one_megabyte_is_read_as_a_blob(world: World) -> None:
    from tagsync.publish import github as gh

    big = b"# padding\n" * 110_000
    world.github.commit_directly(REPO, {"big.yml": big})
    api = gh.GitHubApi(world.github.url, gh.StaticToken(TOKEN))
    try:
        assert gh.read_file(api, REPO, "big.yml", world.github.head(REPO) or "") == big
    finally:
        api.close()


def test_a_pull_request_another_run_opened_first_makes_this_run_replan(world: World) -> None:
    """GitHub's 422 for a second PR from one branch, met for real: another run opens the PR
    between this run's branch update and its own request to open one."""
    from tagsync.publish.upkeep import pr_body, proposal_of
    from tests.servers.github import PullRequest

    new_images(world)
    pr_mode(world)
    github = world.github
    # the other run proposes what this one proposes: same marker, base and proposal
    planned = run(load_config(world.config), dry_run=True).changes
    body = pr_body(planned, BRANCH, ["images.yml"], "t", base="main", proposal=proposal_of(planned))

    def other_run(method: str, template: str) -> None:
        if template != "/repos/{owner}/{repo}/pulls":
            github.before_write = other_run  # not yet: wait for the request that opens the PR
            return
        github.repos[REPO].pulls.append(PullRequest(50, BRANCH, "main", "by the other run", body))

    github.before_write = other_run
    summary = run_once(world)
    assert summary.attempts == 2
    assert (summary.pull_request, summary.pull_request_action) == (50, "unchanged")
    assert [p.number for p in github.repos[REPO].pulls] == [50]


def test_an_open_pr_from_the_older_default_branch_is_closed_as_superseded(world: World) -> None:
    """tagsync used to open PRs from `tagsync/<catalog>` whatever the base: the first PR from the
    per-base branch closes such an open PR, saying which one supersedes it."""
    from tagsync.publish.upkeep import MARKER
    from tests.servers.github import PullRequest

    new_images(world)
    pr_mode(world)
    github = world.github
    github.commit_directly(REPO, {"images.yml": world.expected(py="aaaaaaaaaaaa")},
                           "tagsync: update\n\nTagsync-Branch: tagsync/kernels",
                           branch="tagsync/kernels")
    old = PullRequest(40, "tagsync/kernels", "main", "tagsync: update",
                      "table\n" + MARKER.format(branch="tagsync/kernels") + "\n")
    github.repos[REPO].pulls.append(old)
    summary = run_once(world)
    [new] = world.github.open_pulls(REPO)
    assert (new.head, summary.pull_request_action) == (BRANCH, "opened")
    assert old.state == "closed" and f"Superseded by #{new.number}" in old.comments[-1]
    assert any("closed #40" in w for w in summary.warnings)


@pytest.mark.parametrize("skew", [-1200, 1200], ids=["our-clock-ahead", "our-clock-behind"])
def test_an_app_jwt_refused_for_a_wrong_clock_says_to_fix_the_clock(world: World, app_key: Path,
                                                                    skew: int) -> None:
    import time

    from tagsync.errors import PublishAuthError

    new_images(world)
    app_config(world, app_key)
    world.github.clock = lambda: time.time() + skew  # GitHub's time, ours off by 20 minutes
    head = world.github.head(REPO)
    with pytest.raises(PublishAuthError, match="clock is off"):
        run_once(world)
    assert world.github.head(REPO) == head
