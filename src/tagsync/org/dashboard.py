"""The organisation's dashboard: one issue (or a Markdown file) with a row per repository,
updated in place after every run.

The issue is found by a marker in its body, never by its title (people retitle issues). A
dashboard a person closed stays closed: tagsync says so and writes nothing, as it does for a
closed pull request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

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


def update_issue(api: Any, repo: str, organisation: str, text: str, title: str) -> str:
    """Open, update in place, or leave alone (closed by a person, or already current); says
    which. Pull requests in GitHub's issue listing are skipped; of several issues carrying the
    marker, the first opened is the dashboard. The marker is where tagsync writes it, first:
    another organisation's dashboard quotes a repository's words, which may spell ours."""
    tag = marker(organisation)
    found = api.json("GET", f"/repos/{repo}/issues", "finding the dashboard issue",
                     params={"state": "all", "per_page": "100"})
    mine = [i for i in found if isinstance(i, dict) and "pull_request" not in i
            and str(i.get("body") or "").startswith(tag)] if isinstance(found, list) else []
    # The first one opened is the dashboard: anyone who can open issues there can copy the
    # marker into a later one, which is never taken for it (nor, closed, for the answer).
    mine.sort(key=_number)
    if mine and mine[0].get("state") != "open":
        return f"dashboard {repo}#{mine[0].get('number')} was closed by a person: left closed"
    if mine:
        issue = mine[0]
        if str(issue.get("body") or "") == text:
            return f"dashboard {repo}#{issue.get('number')} already current"
        api.json("PATCH", f"/repos/{repo}/issues/{issue['number']}", "updating the dashboard",
                 json={"body": text})
        return f"dashboard {repo}#{issue.get('number')} updated"
    made = api.json("POST", f"/repos/{repo}/issues", "opening the dashboard",
                    json={"title": title, "body": text})
    number = made.get("number") if isinstance(made, dict) else None
    earlier = _opened_before(api, repo, tag, number) if isinstance(number, int) else None
    if earlier is not None:  # another run opened one at the same moment: the first one stays
        api.json("PATCH", f"/repos/{repo}/issues/{number}", "closing a second dashboard",
                 json={"state": "closed"})
        return (f"dashboard {repo}#{earlier} kept (another run opened it at the same moment; "
                f"#{number} closed)")
    return f"dashboard {repo}#{number if number is not None else '?'} opened"


def _opened_before(api: Any, repo: str, tag: str, number: int) -> int | None:
    """The number of a dashboard opened before ours (by a run racing this one), if any: the
    newest issues hold both."""
    found = api.json("GET", f"/repos/{repo}/issues", "looking for a second dashboard",
                     params={"state": "open", "per_page": "100"})
    earlier = [_number(i) for i in found if isinstance(i, dict) and "pull_request" not in i
               and str(i.get("body") or "").startswith(tag)] if isinstance(found, list) else []
    first = min(earlier, default=number)
    return first if first < number else None


def _number(issue: dict[str, Any]) -> int:
    number = issue.get("number")
    return number if isinstance(number, int) else 1 << 62
