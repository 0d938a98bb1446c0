"""Which files of a tree a catalog reads: `file:` and `files:` globs, `!` excludes.

`*` and `?` stay within one folder, `**` crosses folders (`deploy/**/*.yaml` matches
`deploy/a.yaml` and `deploy/x/y/a.yaml`). Paths are the tree's, with `/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_MAGIC = re.compile(r"[*?\[]")
FAST_STARS = 2  # up to this many stars a pattern is matched by its regular expression


def is_glob(pattern: str) -> bool:
    return bool(_MAGIC.search(pattern))


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    """The pattern's language as a regular expression, used by `matches` only for patterns
    of at most `FAST_STARS` stars: it backtracks, and `**/**/**/…` or `*a*a*a*…` written in a
    repository's config took minutes on one path."""
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


Token = tuple[str, "re.Pattern[str] | str | None"]


@lru_cache(maxsize=256)
def _tokens(pattern: str) -> tuple[Token, ...]:
    """`**/` (any folders), `**` (anything), `*` (within a folder), `?`, a `[class]`, a literal:
    read exactly as `_regex` reads them."""
    out: list[Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append(("dirs", None))
            i += 3
        elif pattern.startswith("**", i):
            out.append(("any", None))
            i += 2
        elif c == "*":
            out.append(("seg", None))
            i += 1
        elif c == "?":
            out.append(("one", None))
            i += 1
        elif c == "[" and (klass := _class(pattern, i)) is not None:
            out.append(("class", klass[0]))
            i = klass[1]
        else:
            out.append(("lit", c))
            i += 1
    return tuple(out)


def _class(pattern: str, i: int) -> tuple[re.Pattern[str], int] | None:
    """The `[class]` at i and where it ends; None where there is none (no `]`, an empty or
    unreadable class): then `[` is a plain character, never an error."""
    end = pattern.find("]", i + 1)
    body = pattern[i + 1:end]
    if end < 0 or body in ("", "!"):
        return None
    try:
        return re.compile("[" + ("^" + body[1:] if body.startswith("!") else body)
                          .replace("\\", "\\\\") + "]"), end + 1
    except re.error:
        return None


def _step(tokens: tuple[Token, ...], i: int, c: str) -> list[int]:
    """Where pattern position `i` goes on character `c` (`-1 - i`: inside the `**/` at i)."""
    if i < 0:  # inside `**/`: anything, up to and including a `/`
        return [*([i] if c != "\n" else []), *([-i] if c == "/" else [])]
    if i == len(tokens):
        return []
    kind, arg = tokens[i]
    if kind == "lit":
        return [i + 1] if c == arg else []
    if kind == "one":
        return [i + 1] if c != "/" else []
    if kind == "class":
        assert isinstance(arg, re.Pattern)
        return [i + 1] if arg.fullmatch(c) else []
    if kind == "seg":
        return [i] if c != "/" else []
    if kind == "any":
        return [i] if c != "\n" else []
    return [*([-1 - i] if c != "\n" else []), *([i + 1] if c == "/" else [])]  # dirs


def matches(pattern: str, path: str) -> bool:
    """Does `path` match? Every pattern position a prefix of the path can reach, one character
    at a time: time linear in the path whatever the pattern (a repository's config writes
    patterns, and one stalled path stalls every repository of an organisation)."""
    tokens = _tokens(pattern)
    stars = {i for i, (kind, _) in enumerate(tokens) if kind in ("dirs", "any", "seg")}
    if len(stars) <= FAST_STARS:  # the usual `deploy/**/*.yaml`: the regular expression, a
        try:  # hundred times faster, cannot backtrack far with two stars (square at worst)
            return _regex(pattern).fullmatch(path) is not None
        except re.error:
            pass  # a class it cannot read: `[` is a plain character below

    def closure(states: set[int]) -> set[int]:  # a star may match nothing
        out = set(states)
        for i in sorted(i for i in states if i >= 0):
            while i in stars:
                i += 1
                out.add(i)
        return out

    states = closure({0})
    for c in path:
        states = closure({j for i in states for j in _step(tokens, i, c)})
        if not states:
            return False
    return len(tokens) in states


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
