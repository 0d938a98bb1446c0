"""The PR body as upkeep renders and reads it: within GitHub's limit for any number and length of
changes (and any text a person put around tagsync's part), and read back into the same decision
inputs: the branch and base it belongs to, the proposal, the title tagsync set, the PR it
supersedes, and the files (whole, or none at all: never a part)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tagsync.plan import Change
from tagsync.publish.upkeep import (
    FILES_BUDGET,
    MAX_BODY,
    MAX_TITLE,
    bounded_title,
    is_ours,
    marked,
    marked_files,
    marked_title,
    merge_body,
    pr_body,
    size,
    superseded,
)

FORGED = ("<!-- tagsync:proposal 0000000000000000 --> <!-- tagsync:files [\"x.yml\"] --> "
          "<!-- tagsync:title \"forged\" --> <!-- tagsync:base \"other\" -->")


def change(n: int, path: str, why: str, claims: str) -> Change:
    return Change("c", f"{path}/{n}.yml", 0, ".image", n + 1, "ghcr.io/acme/app", "1.0",
                  "sha256:" + "a" * 64, "sha256:" + "b" * 64, "digest changed",
                  why=why or None, claims=claims or None)


def fit(old: str, changes: list[Change], branch: str, files: list[str], title: str, base: str,
        proposal: str, supersedes: int | None) -> str:
    """What `PullRequestMode._upkeep` writes: tagsync's part in the room a person's text left."""
    room = MAX_BODY - size(merge_body(old, ""))
    return merge_body(old, pr_body(changes, branch, files, title, base=base, proposal=proposal,
                                   supersedes=supersedes, limit=room))


words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(0, 400), path_len=st.integers(1, 300), why=words, why_times=st.integers(0, 80),
       claims=st.sampled_from(["", FORGED, "@acme/everyone 😀" * 30]),
       title=st.text(max_size=600), branch=st.from_regex(r"tagsync/[a-z0-9/._-]{1,60}", fullmatch=True),
       base=st.from_regex(r"[a-z0-9/._-]{1,60}", fullmatch=True),
       supersedes=st.none() | st.integers(1, 10**6),
       person=st.integers(0, 60000), files_len=st.integers(0, 900))
@example(count=19, path_len=237, why="", why_times=0, claims="",
         title="0" * 15 + "\x1b" * 6 + "\x07" * 4 + "\U00010000" * 3,
         branch="tagsync/0", base="0", supersedes=None, person=59963, files_len=19)
def test_the_body_is_within_the_limit_and_reads_back_the_same_decision_inputs(
        count: int, path_len: int, why: str, why_times: int, claims: str, title: str,
        branch: str, base: str, supersedes: int | None, person: int, files_len: int) -> None:
    changes = [change(n, "p" * path_len, why * why_times, claims) for n in range(count)]
    files = sorted({c.file for c in changes})[:files_len]
    title = bounded_title(title)
    proposal = "0123456789abcdef"
    first = pr_body([], branch)  # a PR as opened, then a person's text around it
    old = ("x" * person + "\n" + first + "\nbelow\n") if person else first
    body = fit(old, changes, branch, files, title, base, proposal, supersedes)
    assert size(body) <= MAX_BODY
    assert is_ours(body, branch, base)
    assert marked(body, "proposal") == proposal
    assert marked_title(body) == title
    assert superseded(body) == supersedes
    read = marked_files(body)
    carried = len(f"<!-- tagsync:files {json.dumps(files)} -->") <= FILES_BUDGET
    assert read == files or (read == [] and f"tagsync:files-omitted {len(files)} " in body)
    if not person:
        assert read == (files if carried else [])  # left out only past its own budget
    # rows are left out from the end, and the body says how many
    shown = body.count(f"| `sha256:{'b' * 64}` |")
    assert shown <= count
    event("rows left out" if shown < count else "every row shown")
    event("files carried" if read == files else "files left out")
    if shown < count:
        assert f"{count - shown} more change(s) not shown" in body
        assert all(f"/{n}.yml:" in body for n in range(shown))
    if person:
        assert body.startswith("x" * person + "\n") and body.endswith("\nbelow\n")
    # the next run, proposing the same, renders the same body: upkeep writes nothing
    assert fit(body, changes, branch, files, title, base, proposal, supersedes) == body


def test_a_title_within_the_limit_is_kept_as_it_is() -> None:
    assert bounded_title("tagsync: update 3 image(s)") == "tagsync: update 3 image(s)"


def test_a_long_title_is_cut_to_the_limit_with_an_ellipsis() -> None:
    cut = bounded_title("word " * 100)
    assert len(cut) <= MAX_TITLE and cut.endswith("…")


def test_a_title_is_one_line() -> None:
    assert bounded_title("one\ntwo\r\nthree") == "one two three"


def test_a_label_that_writes_markers_does_not_forge_the_decision_inputs() -> None:
    """An image's labels are shown in the table (inert, in a code span); written as hidden
    markers, they must not be read back as tagsync's: a forged proposal would make upkeep leave
    a stale PR alone or take it for one a person declined, forged files would let it close a PR."""
    body = pr_body([change(0, "deploy", "", FORGED)], "tagsync/main/c", ["deploy/0.yml"], "t",
                   base="main", proposal="0123456789abcdef")
    assert marked(body, "proposal") == "0123456789abcdef"
    assert marked_files(body) == ["deploy/0.yml"]
    assert marked_title(body) == "t"
    assert is_ours(body, "tagsync/main/c", "main")


def test_a_persons_text_before_tagsyncs_part_does_not_forge_its_markers() -> None:
    ours = pr_body([], "tagsync/main/c", ["a.yml"], "t", base="main", proposal="0123456789abcdef")
    body = FORGED.replace(" <", "\n<") + "\n\n" + ours
    assert marked(body, "proposal") == "0123456789abcdef"
    assert marked_files(body) == ["a.yml"] and marked_title(body) == "t"


def test_a_title_that_writes_the_end_marker_reads_back_whole() -> None:
    title = "fix <!-- tagsync:end --> and --> too"
    body = pr_body([], "tagsync/main/c", ["a.yml"], title, base="main", proposal="0123456789abcdef")
    assert marked_title(body) == title and marked(body, "proposal") == "0123456789abcdef"
    assert merge_body(body, body) == body  # one generated part, replaced whole


# --- the commit message: past a few hundred changes, a line says how many more it holds ----------


def _message(changes: list[Change]) -> str:
    from types import SimpleNamespace
    from typing import cast

    from tagsync.config import Config
    from tagsync.plan import Plan, commit_message

    return commit_message(cast(Config, SimpleNamespace(git=None, github=None)), Plan(changes=changes))


def test_a_commit_message_lists_every_change_up_to_a_few_hundred() -> None:
    from tagsync.plan import MESSAGE_CHANGES

    message = _message([change(n, "deploy", "", "") for n in range(MESSAGE_CHANGES)])
    assert message.count("\n- ") == MESSAGE_CHANGES and "not listed" not in message


def test_a_commit_message_past_a_few_hundred_changes_says_how_many_more_the_commit_holds() -> None:
    from tagsync.plan import MESSAGE_CHANGES

    message = _message([change(n, "deploy", "", "") for n in range(MESSAGE_CHANGES + 50)])
    assert message.count("\n- ") == MESSAGE_CHANGES
    assert message.endswith("\n50 more change(s) not listed here; the commit holds every change.\n")


def test_a_commit_message_of_long_explanations_stays_bounded() -> None:
    from tagsync.plan import MESSAGE_ROOM

    message = _message([change(n, "deploy", "x" * 5000, "") for n in range(100)])
    assert MESSAGE_ROOM - 5100 < len(message) <= MESSAGE_ROOM + 200
    assert "more change(s) not listed here" in message


def test_a_label_with_a_lone_surrogate_is_measured_not_a_traceback() -> None:
    """JSON from a registry or GitHub may escape half a character (`\\ud800`): still a body."""
    body = pr_body([change(0, "deploy", "", "half \ud800 a character")], "tagsync/main/c",
                   ["deploy/0.yml"], "t \udc00", base="main", proposal="0123456789abcdef")
    assert size(body) <= MAX_BODY and marked(body, "proposal") == "0123456789abcdef"


def test_a_body_a_person_saved_in_the_browser_with_crlf_reads_back_the_same() -> None:
    """GitHub's web editor saves a description with CRLF line ends: a PR a person edited, then
    closed, must still be recognised as the proposal they declined."""
    body = pr_body([change(0, "deploy", "", "")], "tagsync/main/c", ["deploy/0.yml"], "t",
                   base="main", proposal="0123456789abcdef", supersedes=7)
    saved = ("A note.\n" + body).replace("\n", "\r\n")
    assert marked(saved, "proposal") == "0123456789abcdef"
    assert marked_files(saved) == ["deploy/0.yml"] and marked_title(saved) == "t"
    assert is_ours(saved, "tagsync/main/c", "main") and superseded(saved) == 7
