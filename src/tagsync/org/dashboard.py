"""The organisation's dashboard: one issue (or a Markdown file) with a row per repository,
updated in place after every run.

The issue is found by a marker in its body, never by its title (people retitle issues), through
a label tagsync gives it (`tagsync-dashboard`): GitHub filters by label, so a busy repository
costs one request. A dashboard a person closed stays closed: tagsync says so and writes nothing,
as it does for a closed pull request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from tagsync.errors import TagsyncError

log = logging.getLogger(__name__)

_ICON = {"changed": "changed", "unchanged": "up to date", "partial": "**partial**",
         "failed": "**failed**", "skipped": "skipped", "planned": "planned",
         "onboarding": "onboarding"}


def marker(organisation: str) -> str:
    return f"<!-- tagsync:dashboard:{organisation.lower()} -->"


MAX_BODY = 65536  # GitHub refuses an issue body longer than this (characters)
_PLAIN = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?")


def _cell(text: Any) -> str:
    """A table cell that says what a repository's words say and does nothing else: anything but
    a plain name goes in a code span, where GitHub neither mentions (`@team`), links, embeds
    (`<img>`) nor cross-references (`#12`); one line, no control character, at most 300."""
    words = "".join(c if c.isprintable() else " " for c in str(text))
    words = " ".join(words.split())[:300]
    if _PLAIN.fullmatch(words):
        return words
    return "`" + words.replace("`", "'").replace("|", "\\|") + "`" if words else ""


def render(organisation: str, rows: Iterable[Mapping[str, Any]], when: datetime | None = None,
           limit: int | None = MAX_BODY) -> str:
    """Markdown: failures first (what needs a person), then the rest by name, as many rows as
    an issue holds (GitHub refuses a longer body, and the dashboard would stop updating once
    the organisation grew past a few hundred repositories); `limit=None`: every row (a file)."""
    rows = sorted(rows, key=lambda r: (r.get("status") not in ("failed", "partial"),
                                       str(r.get("repo", "")).lower()))
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [marker(organisation), f"# tagsync: {organisation}", "",
             f"Last run {stamp}: " + (", ".join(f"{n} {_ICON.get(s, _cell(s))}".replace("**", "")
                                                for s, n in sorted(counts.items())) or "nothing"),
             "", "| repository | state | what happened |", "| --- | --- | --- |"]
    size = sum(len(line) + 1 for line in lines)
    for shown, r in enumerate(rows):
        state = _ICON.get(str(r.get("status")), _cell(r.get("status", "")))
        line = f"| {_cell(r.get('repo', '?'))} | {state} | {_cell(r.get('reason', ''))} |"
        if limit is not None and size + len(line) + 1 > limit - 300:  # room for the last line
            lines += ["", f"{len(rows) - shown} more repositories are not shown: an issue holds "
                          f"{limit} characters (`tagsync org run --json` lists every one)."]
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


LABEL = "tagsync-dashboard"
MAX_PAGES = 100  # issues examined before giving up: 10,000, oldest first


def update_issue(api: Any, repo: str, organisation: str, text: str, title: str) -> str:
    """Open, update in place, or leave alone (closed by a person, or already current); says
    which. Never opens a second dashboard: one it cannot rule out is an error, not a new issue;
    of two runs opening one at the same moment, the later closes its own."""
    tag = marker(organisation)
    issue, labelled = find_issue(api, repo, tag)
    if issue is not None and issue.get("state") != "open":
        return f"dashboard {repo}#{issue.get('number')} was closed by a person: left closed"
    if issue is not None:
        number = issue["number"]
        said = f"dashboard {repo}#{number} already current"
        if str(issue.get("body") or "") != text:
            api.json("PATCH", f"/repos/{repo}/issues/{number}", "updating the dashboard",
                     json={"body": text})
            said = f"dashboard {repo}#{number} updated"
        if not labelled:  # found the long way: the label finds it in one request next time
            try:  # added, never replacing a person's labels
                api.json("POST", f"/repos/{repo}/issues/{number}/labels",
                         "labelling the dashboard", json={"labels": [LABEL]})
            except TagsyncError as exc:  # the table is up to date; finding it stays slower
                log.warning("dashboard %s#%s: %s", repo, number, exc)
                said += f" (not labelled `{LABEL}`: {exc})"
        return said
    made = api.json("POST", f"/repos/{repo}/issues", "opening the dashboard",
                    json={"title": title, "body": text, "labels": [LABEL]})
    number = made.get("number") if isinstance(made, dict) else None
    if isinstance(number, int):  # another run may have opened one at the same moment
        first, _ = find_issue(api, repo, tag)
        earlier = first.get("number") if first is not None else None
        if isinstance(earlier, int) and earlier < number:  # the first one opened stays
            api.json("PATCH", f"/repos/{repo}/issues/{number}", "closing a second dashboard",
                     json={"state": "closed"})
            return (f"dashboard {repo}#{earlier} kept (another run opened it at the same moment; "
                    f"#{number} closed)")
    return f"dashboard {repo}#{number if number is not None else '?'} opened"


def find_issue(api: Any, repo: str, tag: str) -> tuple[dict[str, Any] | None, bool]:
    """The dashboard issue and whether it carries `LABEL`: the first opened of the issues (not
    pull requests) whose body begins with the marker (where tagsync writes it: another
    organisation's dashboard quotes a repository's words, which may spell ours), looked for
    among those with the label (one request, however busy the repository), else among every
    issue, oldest first (a dashboard opened before the label, or one a person unlabelled).
    Anyone who can open issues there can copy the marker into a later one, which is never taken
    for it (nor, closed, for the answer).
    Raises PublishError when the repository has more issues than are examined."""
    for labels in (LABEL, None):
        for issue in _oldest_first(api, repo, labels):
            if "pull_request" not in issue and str(issue.get("body") or "").startswith(tag):
                return issue, labels is not None
    return None, False


def _oldest_first(api: Any, repo: str, labels: str | None) -> Iterator[dict[str, Any]]:
    """Every issue of `repo` (with `labels`), in the order they were opened, 100 a request."""
    from tagsync.errors import PublishError

    params = {"state": "all", "sort": "created", "direction": "asc", "per_page": "100"}
    if labels is not None:
        params["labels"] = labels
    from tagsync.org.repos import pages

    for body in pages(api, f"/repos/{repo}/issues", f"finding the dashboard issue in {repo}", params,
                      f"more than {MAX_PAGES * 100} issues and none labelled `{LABEL}` carries "
                      f"the dashboard's marker; not opening another: label the dashboard "
                      f"`{LABEL}`, or keep it in a repository with fewer issues", MAX_PAGES):
        if not isinstance(body, list):
            raise PublishError(f"finding the dashboard issue in {repo}: GitHub answered with "
                               "something other than a list")
        yield from (i for i in body if isinstance(i, dict) and isinstance(i.get("number"), int))
