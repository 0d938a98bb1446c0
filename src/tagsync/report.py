"""The last stage: a run's summary turned into what a CI system shows people and later steps.

`tagsync run --json` is the one machine-readable account of a run; this module only reshapes it.
For GitHub Actions (the composite action in `action.yml`): step outputs in `$GITHUB_OUTPUT` and a
Markdown job summary in `$GITHUB_STEP_SUMMARY`. Rendering is pure; writing is `github_action`.

    python -m tagsync.report github-action SUMMARY.json EXIT_CODE
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tagsync.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE

_EXIT_WORDS = {EXIT_OK: "done", EXIT_ERROR: "error (nothing written)",
               EXIT_USAGE: "bad config or usage",
               EXIT_PARTIAL: "partial (some images failed; the rest was published)"}
_MAX_ROWS = 200  # a job summary is capped at 1 MiB; a first run on a big catalog can be larger


def action_outputs(summary: Mapping[str, Any] | None, exit_code: int) -> dict[str, str]:
    """Step outputs: strings, empty when the run produced no summary (it failed early)."""
    if summary is None:
        return {"status": "error" if exit_code else "unchanged", "changes": "0", "commit": "",
                "pull-request": ""}
    pr = summary.get("pull_request")
    return {"status": str(summary.get("status") or ("error" if exit_code else "unchanged")),
            "changes": str(len(summary.get("changes") or [])),
            "commit": str(summary.get("commit") or "") if summary.get("pushed") else "",
            "pull-request": "" if pr is None else str(pr)}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(summary: Mapping[str, Any] | None, exit_code: int) -> str:
    """The job summary: what changed, what failed, where it went."""
    if summary is None:
        return (f"### tagsync: {_EXIT_WORDS.get(exit_code, f'exit {exit_code}')}\n\n"
                "No summary was produced; the step's log has the error.\n")
    changes = summary.get("changes") or []
    failures = summary.get("failures") or []
    status = summary.get("status", "unchanged")
    title = f"### tagsync: {status}" + (" (dry run)" if summary.get("dry_run") else "")
    lines = [title, ""]
    where = summary.get("target")
    if summary.get("pull_request"):
        action = summary.get("pull_request_action") or "updated"
        lines.append(f"Pull request #{summary['pull_request']} {action}"
                     + (f": {summary['url']}" if summary.get("url") else "") + ".")
    elif summary.get("commit") and summary.get("pushed"):
        lines.append(f"Commit `{summary['commit'][:12]}` on {where}"
                     + (f": {summary['url']}" if summary.get("url") else "") + ".")
    elif where:
        lines.append(f"Target: {where}.")
    lines.append(f"{len(changes)} changed, {summary.get('up_to_date', 0)} up to date, "
                 f"{len(failures)} failed.")
    if changes:
        lines += ["", "| image | tag | old | new | file | reason |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for c in changes[:_MAX_ROWS]:
            new = c.get("new") or ", ".join(c.get("values") or []) or "(new entry)"
            lines.append(f"| {_cell(c.get('image'))} | {_cell(c.get('tag'))} | "
                         f"`{_cell(c.get('old') or '')}` | `{_cell(new)}` | "
                         f"{_cell(c.get('file'))}:{c.get('line')} | {_cell(c.get('reason'))} |")
        if len(changes) > _MAX_ROWS:
            lines.append(f"\n… and {len(changes) - _MAX_ROWS} more (see the JSON summary).")
    if failures:
        lines += ["", "| failed image | tag | where | error |", "| --- | --- | --- | --- |"]
        lines += [f"| {_cell(f.get('image'))} | {_cell(f.get('tag'))} | {_cell(_where(f))} | "
                  f"{_cell(f.get('error'))} |" for f in failures[:_MAX_ROWS]]
    if summary.get("deferred"):
        lines += ["", f"Left for the next run: {len(summary['deferred'])} image(s)."]
    diff = summary.get("diff")
    if diff:
        lines += ["", "<details><summary>diff</summary>", "", "```diff", diff.rstrip("\n"), "```",
                  "", "</details>"]
    return "\n".join(lines) + "\n"


def _where(failure: Mapping[str, Any]) -> str:
    """`file:line[:column]` of a failure, as far as it says."""
    parts = [failure.get(k) for k in ("file", "line", "column")]
    return ":".join(str(p) for p in parts if p not in (None, ""))


def _output_lines(outputs: Mapping[str, str]) -> str:
    """`$GITHUB_OUTPUT` syntax; the heredoc form with a random delimiter takes any value."""
    out = []
    for key, value in outputs.items():
        delimiter = f"tagsync_{uuid.uuid4().hex}"
        out.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(out)


def read_summary(path: Path) -> dict[str, Any] | None:
    """The JSON `tagsync run --json` printed, or None when it failed before printing one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def github_action(summary_path: Path, exit_code: int, env: Mapping[str, str]) -> None:
    """Write the step outputs and the job summary where the runner says (when it says)."""
    summary = read_summary(summary_path)
    outputs = {**action_outputs(summary, exit_code), "summary": str(summary_path)}
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as f:
            f.write(_output_lines(outputs))
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(markdown(summary, exit_code))


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "github-action" or not argv[2].lstrip("-").isdigit():
        sys.stderr.write("usage: python -m tagsync.report github-action SUMMARY.json EXIT_CODE\n")
        return 2
    github_action(Path(argv[1]), int(argv[2]), os.environ)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
