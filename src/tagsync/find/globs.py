"""Which files of a tree a catalog reads: `file:` and `files:` globs, `!` excludes.

`*` and `?` stay within one folder, `**` crosses folders (`deploy/**/*.yaml` matches
`deploy/a.yaml` and `deploy/x/y/a.yaml`). Paths are the tree's, with `/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_MAGIC = re.compile(r"[*?\[]")


def is_glob(pattern: str) -> bool:
    return bool(_MAGIC.search(pattern))


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def matches(pattern: str, path: str) -> bool:
    return _compile(pattern).fullmatch(path) is not None


def select(patterns: Iterable[str], paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """(files matched by an including pattern and no `!` pattern, including patterns that
    matched nothing), files in tree order."""
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    hit: set[str] = set()
    chosen: list[str] = []
    for path in sorted(paths):
        if any(matches(x, path) for x in exclude):
            continue
        which = [p for p in include if matches(p, path)]
        if which:
            hit.update(which)
            chosen.append(path)
    return chosen, [p for p in include if p not in hit]
