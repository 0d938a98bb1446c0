"""Pull-request upkeep as one decision: what GitHub holds for our (base, branch) → one action.

Why a pure function: every promise of PR mode (a person's commit is kept, a closed proposal is
not reopened, one PR per base, no commit when nothing changed) is a rule over observed state.
Written as one decision over plain data, each rule is a line here and the whole table is tested
exhaustively; the GitHub publisher only observes the state and carries the action out.

Also here: the PR body and the hidden markers that let the next run recognise the PR, its base
and the proposal it carries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tagsync.plan import Change, inert_path
from tagsync.reference import ImageName, registry_page

BEGIN = "<!-- tagsync:begin (generated; edit outside this part) -->"
END = "<!-- tagsync:end -->"
MARKER = "<!-- tagsync:pull-request branch={branch} -->"
BASE_MARKER = "<!-- tagsync:base {base} -->"
PROPOSAL_MARKER = "<!-- tagsync:proposal {proposal} -->"
TRAILER = "Tagsync-Branch: {branch}"  # in every commit tagsync puts on a PR branch: proof it owns it
MAX_BODY = 65536  # GitHub refuses an issue's or a pull request's body longer than this (characters)
MAX_TITLE = 256  # and a title longer than this
FILES_BUDGET = 16384  # the most of a body the list of changed files may take (characters)

Kind = Literal["create", "update", "leave", "close", "merged", "declined", "kept", "refuse",
               "nothing"]


@dataclass(frozen=True)
class OpenPr:
    """Our open PR into this base, as observed."""

    number: int
    proposal: str | None  # the proposal its marker names; None for a PR of an older tagsync
    mine_only: bool  # every commit its branch has beyond the base carries our trailer
    conflicts: bool | None = None  # GitHub's `mergeable` negated; None: not known (yet)
    base_has_it: bool = False  # the base already holds what the PR changes


@dataclass(frozen=True)
class ClosedPr:
    """One of our earlier PRs into this base, closed or merged."""

    number: int
    proposal: str | None
    merged: bool


@dataclass(frozen=True)
class PrView:
    """What one run observed, and what it would propose (None: nothing to change)."""

    desired: str | None
    open: OpenPr | None = None
    closed: tuple[ClosedPr, ...] = ()  # newest first
    foreign: int | None = None  # an open PR from our branch that tagsync did not open
    branch: Literal["absent", "mine", "person"] = "absent"  # whose commits the branch holds


@dataclass(frozen=True)
class Action:
    kind: Kind
    number: int | None = None
    reason: str = ""
    supersedes: int | None = None


def decide(view: PrView) -> Action:
    """The one action for this state. Rules, in order: never write to a PR someone else opened;
    keep a person's commit (leave their PR alone and say so); a current PR stays as it is (a
    moving base changes nothing unless GitHub says the PR conflicts); a PR the base caught up
    with is closed; a proposal a person closed unmerged is not proposed again; a different one
    opens a new PR that names the one it supersedes."""
    if view.foreign is not None:
        return Action("refuse", view.foreign, f"an open pull request #{view.foreign} from the "
                      "branch was not opened by tagsync; close it or choose another `pr_branch` "
                      "(tagsync leaves it alone)")
    pr = view.open
    if pr is not None:
        if view.desired is None:
            if pr.base_has_it and pr.mine_only:
                return Action("close", pr.number, "the base already has these changes")
            return Action("leave", pr.number)
        if not pr.mine_only:
            return Action("kept", pr.number, f"pull request #{pr.number} holds a commit "
                          "tagsync did not make; tagsync leaves it alone (merge or close it to "
                          "let tagsync propose again)")
        if pr.proposal == view.desired and not pr.conflicts:
            return Action("leave", pr.number)
        return Action("update", pr.number)
    since_merge: list[ClosedPr] = []
    for closed in view.closed:
        if closed.merged:
            break
        since_merge.append(closed)
    if view.desired is None:
        latest = view.closed[0] if view.closed else None
        if latest is not None and latest.merged:
            return Action("merged", latest.number)
        return Action("nothing")
    declined = next((c for c in since_merge if c.proposal == view.desired), None)
    if declined is not None:
        return Action("declined", declined.number, f"pull request #{declined.number} proposed "
                      "the same values and was closed without merging; tagsync does not reopen "
                      "it (a different proposal will open a new one)")
    if view.branch == "person":
        return Action("refuse", None, "the branch holds a commit tagsync did not make, and no "
                      "open pull request of tagsync's; tagsync will not overwrite it: merge or "
                      "delete the branch, or choose another `pr_branch`")
    return Action("create", None, supersedes=since_merge[0].number if since_merge else None)


def proposal_of(changes: Sequence[Change]) -> str:
    """What a PR proposes, as an id: the new values per file, image and tag. Lines and old
    values are left out, so a base that moves under the PR does not make it another proposal."""
    lines = sorted({f"{c.file}\t{c.image}\t{c.tag}\t{c.new}" for c in changes})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def generated(body: str) -> str:
    """The part of a PR body tagsync wrote (between its markers; the whole body of a PR from an
    older tagsync), where alone its markers are read: a person's text around it is not
    tagsync's word."""
    if BEGIN in body and END in body.split(BEGIN, 1)[1]:
        return body.split(BEGIN, 1)[1].split(END, 1)[0]
    return body


def _marker_line(body: str, pattern: str) -> re.Match[str] | None:
    """A hidden marker on a line of its own in tagsync's part: a table row (where an image's
    labels are shown) never starts a line with one, so words from outside cannot forge it."""
    return re.search(r"^<!-- tagsync:" + pattern + r" -->\r?$", generated(body), re.MULTILINE)


def marked(body: str, marker: str) -> str | None:
    """The value of a `<!-- tagsync:NAME value -->` marker in a PR body, if there is one."""
    m = _marker_line(body, re.escape(marker) + r" (\S+)")
    return m.group(1) if m else None


def is_ours(body: str, branch: str, base: str) -> bool:
    """The PR body carries our marker for this branch and, if it names one, this base (PRs of
    an older tagsync name no base: the PR's own base decides)."""
    if _marker_line(body, re.escape(MARKER.format(branch=branch)[len("<!-- tagsync:"):-4])) is None:
        return False
    named = marked(body, "base")
    return named is None or named == json.dumps(base)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# Words GitHub renders as nothing but themselves: no `@` (a mention), `#` (a reference), `[`,
# `<` or `&` (a link, an image, HTML) or `` ` ``; URLs stay links.
_PLAIN = re.compile(r"[A-Za-z0-9 .,:;/()+=~%'_-]*")


def _inert(text: str) -> str:
    """Words from outside (an image's labels, a signer's identity) as a table cell that says
    what they say and does nothing else: in organisation mode one image's label is proposed to
    every repository that uses it, and `@acme/everyone` in it would notify the organisation once
    per pull request. Anything but plain words goes in a code span, as on the dashboard."""
    text = " ".join(text.split())
    if _PLAIN.fullmatch(text):
        return text
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def title_marker(title: str) -> str:
    """The title as JSON with `<` and `>` escaped: no title ends the comment or forges a marker."""
    text = json.dumps(title).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- tagsync:title {text} -->"


def marked_title(body: str) -> str | None:
    """The title tagsync last set (from its hidden marker); None for a PR without one."""
    m = _marker_line(body, r"title (\".*\")")
    if not m:
        return None
    try:
        return str(json.loads(m.group(1)))
    except ValueError:
        return None


def superseded(body: str) -> int | None:
    """The PR a body says it supersedes (kept across updates of the generated part)."""
    m = re.search(r"^Supersedes #([0-9]+),", generated(body), re.MULTILINE)
    return int(m.group(1)) if m else None


def marked_files(body: str) -> list[str]:
    m = _marker_line(body, r"files (\[.*\])")
    if not m:
        return []
    try:
        return [str(p) for p in json.loads(m.group(1))]
    except ValueError:
        return []


def merge_body(old: str, generated: str) -> str:
    """`generated` in place of the part between our markers; a person's text around it stays.
    A body without the markers (a PR from an older tagsync) is replaced whole."""
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        before, _, rest = old.partition(BEGIN)
        _, _, after = rest.partition(END)
        return before + generated.strip("\n") + after
    return generated


def bounded_title(title: str, limit: int = MAX_TITLE) -> str:
    """A title GitHub takes: one line, at most `limit` characters (an ellipsis says it was cut)."""
    title = " ".join(title.split())
    return title if len(title) <= limit else title[:limit - 1] + "…"


def files_marker(files: Sequence[str], budget: int = FILES_BUDGET) -> str:
    """The files a PR changes, for upkeep to see whether the base caught up. A list too long to
    carry whole is not carried at all: upkeep, reading no files, never closes the PR on its own
    (a part of the list could make it close a PR whose other files the base lacks)."""
    whole = f"<!-- tagsync:files {json.dumps(list(files))} -->"
    if len(whole) <= budget:
        return whole
    return f"<!-- tagsync:files-omitted {len(files)} -->"


def pr_body(changes: Sequence[Change], branch: str, files: Sequence[str] = (),
            title: str | None = None, *, base: str | None = None, proposal: str | None = None,
            supersedes: int | None = None, limit: int = MAX_BODY) -> str:
    """A table people can review at a glance, and the markers that let the next run find the PR
    (branch and base), keep a person's edits around the generated part, see whether the base
    caught up, and recognise the proposal once a person closed it.

    At most `limit` characters (GitHub refuses a longer body, and the run with it): the markers
    are always whole; rows that do not fit are left out from the end, and a line says how many
    (the commit holds every change)."""
    why = any(c.explanation() for c in changes)  # verified facts, then the labels' claims
    head = [BEGIN, f"tagsync found {len(changes)} image reference(s) out of date.", "",
            "| Image | Tag | Old | New | File |" + (" Why |" if why else ""),
            "| --- | --- | --- | --- | --- |" + (" --- |" if why else "")]
    tail = _tail(branch, files, title, base, proposal, supersedes, FILES_BUDGET)
    fixed = sum(size(line) + 1 for line in head + tail) + size(_not_shown(len(changes))) + 2
    if fixed > limit:  # a person's text leaves little room: the files go before the markers do
        tail = _tail(branch, files, title, base, proposal, supersedes, 0)
    # every line ends with "\n"; when a row is left out, room is kept for the line saying so
    rows = [_row(c, why) for c in changes]
    room = limit - sum(size(line) + 1 for line in head + tail)
    if sum(size(row) + 1 for row in rows) > room:
        room -= size(_not_shown(len(rows))) + 2
        for n, row in enumerate(rows):
            room -= size(row) + 1
            if room < 0:
                rows = [*rows[:n], "", _not_shown(len(rows) - n)]
                break
    return "\n".join(head + rows + tail) + "\n"


def _tail(branch: str, files: Sequence[str], title: str | None, base: str | None,
          proposal: str | None, supersedes: int | None, files_budget: int) -> list[str]:
    """What follows the table: a note on the PR superseded, a word to people, the markers."""
    tail: list[str] = []
    if supersedes is not None:
        tail += ["", f"Supersedes #{supersedes}, closed without merging: this proposes other "
                     "values."]
    tail += ["", "tagsync keeps this branch one proposal ahead of the base. A commit you push "
             "here is kept: tagsync then leaves the pull request to you. Closing it without "
             "merging declines these values for good. Text outside this generated part, and a "
             "title you change, are kept.",
             "", MARKER.format(branch=branch), files_marker(files, files_budget)]
    if base is not None:
        tail.append(BASE_MARKER.format(base=json.dumps(base)))
    if proposal is not None:
        tail.append(PROPOSAL_MARKER.format(proposal=proposal))
    if title is not None:
        tail.append(title_marker(title))
    tail.append(END)
    return tail


def size(text: str) -> int:
    """A text's length as GitHub may count it: in UTF-16 code units, which is never less than
    in characters (a character outside the BMP counts twice), so a body within it is within
    GitHub's limit either way."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2  # a lone surrogate: one


def _not_shown(count: int) -> str:
    return (f"{count} more change(s) not shown: GitHub limits a pull request's description to "
            f"{MAX_BODY:,} characters. The commit holds every change.")


def _row(c: Change, why: bool) -> str:
    page = registry_page(ImageName.parse(c.image))
    image = f"[{_cell(c.image)}]({page})" if page else f"`{_cell(c.image)}`"
    old = f"`{_cell(c.old)}`" if c.old else "(empty)"
    vouched = "<br>".join(_inert(line) for line in c.explanation())
    return (f"| {image} | `{_cell(c.tag)}` | {old} | `{_cell(c.new)}` | "
            f"{_inert(inert_path(c.file))}:{c.line} |" + (f" {vouched} |" if why else ""))
