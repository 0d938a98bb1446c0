"""A pull request's body and title stay within GitHub's limits whatever the number of changes,
through `tagsync run` against the contract server (which refuses a body over 65,536 characters
and a title over 256, as GitHub does): the PR opens, later runs update it in place, and upkeep
still reads its markers back (one PR per base, a closed PR stays closed)."""

# ruff: noqa: F811 (`world` is the fixture imported below)
from __future__ import annotations

import pytest

from tagsync.config import load_config
from tagsync.publish.upkeep import MAX_BODY, MAX_TITLE, marked, marked_files, marked_title
from tagsync.run import Summary, run
from tests.test_publish_github import (  # noqa: F401
    REPO,
    World,
    app_config,
    app_key,
    pr_mode,
    waits,
    world,
)

BRANCH = "tagsync/main/kernels"
FOLDER = "deploy/" + "a-folder-with-a-long-name-as-monorepos-have/" * 3  # ~140 characters
COUNT = 300  # rows of ~260 characters: a table of ~78,000 characters, past the limit


def path(n: int) -> str:
    return f"{FOLDER}service-{n:04d}.yml"


def many_files(world: World) -> str:
    """COUNT catalog files, each pinning the same image at an old digest; the new one pushed."""
    entry = "images:\n  - name: python\n    tags:\n      - [\"3.6-ubuntu\", \"0123456789ab\"]\n"
    world.github.commit_directly(REPO, {path(n): entry.encode() for n in range(COUNT)}, "services")
    world.config.write_text(world.config.read_text().replace(
        "    file: images.yml\n", f"    files: [\"{FOLDER}*.yml\"]\n"))
    return world.push("python", "3.6-ubuntu", "py new")


def run_once(world: World) -> Summary:
    return run(load_config(world.config))


def test_a_run_with_changes_past_the_body_limit_opens_the_pr(world: World) -> None:
    new = many_files(world)
    pr_mode(world)
    summary = run_once(world)
    [pr] = world.github.open_pulls(REPO)
    assert summary.pull_request_action == "opened" and summary.pull_request == pr.number
    assert len(summary.changes) == COUNT
    assert len(pr.body) <= MAX_BODY
    shown = pr.body.count(f"| `{new}` |")
    assert 0 < shown < COUNT
    assert f"{COUNT - shown} more change(s) not shown" in pr.body
    assert "The commit holds every change." in pr.body
    # the rows shown are the first ones; the commit holds every change
    assert f"{path(shown - 1)}:4" in pr.body and f"{path(shown)}:4" not in pr.body
    assert new.encode() in world.github.read(REPO, path(COUNT - 1), BRANCH)


def test_a_second_run_updates_the_long_pr_in_place_and_reads_its_markers(world: World) -> None:
    many_files(world)
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    first = marked(pr.body, "proposal")
    newer = world.push("python", "3.6-ubuntu", "py newer")
    summary = run_once(world)
    assert summary.pull_request_action == "updated" and summary.pull_request == pr.number
    assert world.github.open_pulls(REPO) == [pr] and len(world.github.repos[REPO].pulls) == 1
    assert len(pr.body) <= MAX_BODY and marked(pr.body, "proposal") not in (None, first)
    assert f"| `{newer}` |" in pr.body
    writes = len(world.github.writes())
    again = run_once(world)  # the markers say it already proposes this: nothing is written
    assert again.pull_request_action == "unchanged" and len(world.github.writes()) == writes


def test_a_closed_long_pr_stays_closed(world: World) -> None:
    many_files(world)
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    pr.state = "closed"
    summary = run_once(world)
    assert summary.pull_request_action == "declined" and summary.pull_request == pr.number
    assert world.github.open_pulls(REPO) == [] and len(world.github.repos[REPO].pulls) == 1


def test_a_persons_text_around_the_long_table_is_kept_within_the_limit(world: World) -> None:
    many_files(world)
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    note = "A reviewer's notes. " * 1500  # 30,000 characters of a person's text
    pr.body = note + "\n" + pr.body + "\nSigned off.\n"
    world.push("python", "3.6-ubuntu", "py newer")
    summary = run_once(world)
    assert summary.pull_request_action == "updated"
    assert len(pr.body) <= MAX_BODY
    assert pr.body.startswith(note) and pr.body.endswith("\nSigned off.\n")
    assert "more change(s) not shown" in pr.body


def test_the_files_marker_too_long_to_carry_is_left_out_and_the_pr_is_never_closed_on_a_guess(
        world: World) -> None:
    """The list of files is what upkeep compares to decide that the base caught up (and close
    the PR): past its share of the body it is not carried, and the PR is left to people."""
    many_files(world)
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    assert marked_files(pr.body) == [] and f"<!-- tagsync:files-omitted {COUNT} -->" in pr.body
    # the base catches up with one file only: the PR must not be closed
    pushed = world.github.read(REPO, path(0), BRANCH)
    world.github.commit_directly(REPO, {path(0): pushed}, "a person applied one change")
    run_once(world)
    assert pr.state == "open"


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_title_past_githubs_limit_is_shortened_and_kept_as_tagsyncs(world: World,
                                                                     api: str) -> None:
    world.push("python", "3.6-ubuntu", "py new")
    pr_mode(world, api=api, pr_title="'" + "Update the kernels " * 20 + "'")
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    assert len(pr.title) == MAX_TITLE and pr.title.endswith("…")
    assert marked_title(pr.body) == pr.title  # still tagsync's title: later runs may set it
    world.push("python", "3.6-ubuntu", "py newer")
    assert run_once(world).pull_request_action == "updated" and len(pr.title) == MAX_TITLE


def test_a_persons_text_that_leaves_no_room_keeps_the_description_and_warns(world: World) -> None:
    """GitHub would refuse any body with tagsync's markers in it: the description is left as the
    person wrote it, the commit stands, and the run says why (never a 422 that fails the run)."""
    world.push("python", "3.6-ubuntu", "py new")
    pr_mode(world)
    run_once(world)
    [pr] = world.github.open_pulls(REPO)
    pr.body = "n" * (MAX_BODY - len(pr.body) - 10) + "\n" + pr.body  # as GitHub took it
    pr_mode(world, pr_title="T" * MAX_TITLE)  # tagsync's part grows past the room left
    before = pr.body
    newer = world.push("python", "3.6-ubuntu", "py newer")
    summary = run_once(world)
    assert summary.pull_request_action == "updated" and pr.body == before
    assert pr.title != "T" * MAX_TITLE  # with its marker in the body left as it was
    assert newer.encode() in world.github.read(REPO, "images.yml", BRANCH)
    assert any("leaves no room" in w for w in summary.warnings)
    again = run_once(world)  # documented: the proposal cannot be read back, so it is rebuilt
    assert again.pull_request_action == "updated" and pr.body == before
    assert any("leaves no room" in w for w in again.warnings)
