"""The pull-request decision, over every observed state: each rule is a promise to a person.

`decide` is pure, so the whole space is enumerated: every combination of what is proposed, the
open PR (or none), the closed history, a foreign PR and whose commits the branch holds.
"""

from __future__ import annotations

import itertools

import pytest

from tagsync.publish.upkeep import Action, ClosedPr, OpenPr, PrView, decide, proposal_of

P, Q = "p" * 16, "q" * 16  # two different proposals

OPEN = [None] + [OpenPr(7, prop, mine, conflicts, has)
                 for prop, mine, conflicts, has in itertools.product(
                     [P, Q, None], [True, False], [None, False, True], [False, True])]
HISTORIES = [(), (ClosedPr(5, P, False),), (ClosedPr(5, Q, False),), (ClosedPr(5, P, True),),
             (ClosedPr(6, Q, False), ClosedPr(5, P, False)),
             (ClosedPr(6, Q, True), ClosedPr(5, P, False)),
             (ClosedPr(6, P, False), ClosedPr(5, Q, True))]
VIEWS = [PrView(desired, pr, closed, foreign, branch)
         for desired, pr, closed, foreign, branch in itertools.product(
             [P, None], OPEN, HISTORIES, [None, 99], ["absent", "mine", "person"])
         # an open PR implies its branch exists
         if pr is None or branch != "absent"]


def writes(action: Action) -> bool:
    return action.kind in ("create", "update", "close")


@pytest.mark.parametrize("view", VIEWS, ids=str)
def test_every_state_has_one_action_that_keeps_every_promise(view: PrView) -> None:
    action = decide(view)
    # never write to a branch behind a PR someone else opened
    if view.foreign is not None:
        assert action.kind == "refuse"
        return
    pr = view.open
    # a person's commit on the PR branch is never overwritten
    if (pr is not None and not pr.mine_only) or (pr is None and view.branch == "person"):
        assert action.kind not in ("create", "update", "close")
    # a proposal a person closed without merging (since the last merge) is not proposed again
    since_merge = list(itertools.takewhile(lambda c: not c.merged, view.closed))
    if pr is None and any(c.proposal == view.desired for c in since_merge):
        assert action.kind == "declined" and action.number in [c.number for c in since_merge]
    # one PR per base: an open PR is updated in place, never a second one opened
    if pr is not None:
        assert action.kind != "create" and action.number == pr.number
    # no change, no commit: a current PR that still merges stays as it is, the base moving or not
    if pr is not None and pr.mine_only and view.desired is not None \
            and pr.proposal == view.desired and not pr.conflicts:
        assert action.kind == "leave"
    # nothing proposed: nothing is built
    if view.desired is None:
        assert action.kind not in ("create", "update")
    # a new PR says which closed one it supersedes
    if action.kind == "create":
        assert action.supersedes == (since_merge[0].number if since_merge else None)
    # every action that does not do what a person might expect says why
    if action.kind in ("refuse", "kept", "declined", "close"):
        assert action.reason
    assert writes(action) or action.kind in ("leave", "merged", "declined", "kept", "refuse",
                                             "nothing")


@pytest.mark.parametrize(("view", "expected"), [
    (PrView(P), Action("create")),
    (PrView(P, branch="mine"), Action("create")),
    (PrView(P, OpenPr(7, Q, True), branch="mine"), Action("update", 7)),
    (PrView(P, OpenPr(7, P, True), branch="mine"), Action("leave", 7)),
    (PrView(P, OpenPr(7, P, True, conflicts=None), branch="mine"), Action("leave", 7)),
    (PrView(None, OpenPr(7, P, True), branch="mine"), Action("leave", 7)),
    (PrView(None), Action("nothing")),
    (PrView(None, closed=(ClosedPr(5, P, True),)), Action("merged", 5)),
])
def test_the_plain_cases(view: PrView, expected: Action) -> None:
    assert decide(view) == expected


def test_a_pr_whose_base_moved_into_a_conflict_is_rebuilt() -> None:
    assert decide(PrView(P, OpenPr(7, P, True, conflicts=True), branch="mine")).kind == "update"


def test_a_persons_commit_keeps_the_pr_as_it_is_and_says_why() -> None:
    action = decide(PrView(P, OpenPr(7, Q, False), branch="person"))
    assert action.kind == "kept" and "did not make" in action.reason


def test_a_closed_proposal_is_declined_and_a_different_one_supersedes_it() -> None:
    closed = (ClosedPr(5, P, False),)
    assert decide(PrView(P, closed=closed, branch="mine")).kind == "declined"
    assert decide(PrView(Q, closed=closed, branch="mine")) == Action("create", supersedes=5)


def test_a_merge_ends_what_was_declined_before_it() -> None:
    closed = (ClosedPr(6, Q, True), ClosedPr(5, P, False))
    assert decide(PrView(P, closed=closed)) == Action("create")


def test_a_pr_the_base_caught_up_with_is_closed_unless_a_person_added_to_it() -> None:
    assert decide(PrView(None, OpenPr(7, P, True, base_has_it=True), branch="mine")).kind == "close"
    assert decide(PrView(None, OpenPr(7, P, False, base_has_it=True), branch="person")).kind == "leave"


def test_a_proposal_is_the_new_values_not_where_they_sit_or_what_they_replace() -> None:
    from tagsync.plan import Change

    def change(line: int, old: str, new: str) -> Change:
        return Change(catalog="c", file="f.yml", doc=0, path=".a", line=line, image="x/y",
                      tag="1", old=old, new=new, reason="digest changed")

    assert proposal_of([change(3, "a", "b")]) == proposal_of([change(9, "z", "b")])
    assert proposal_of([change(3, "a", "b")]) != proposal_of([change(3, "a", "c")])
