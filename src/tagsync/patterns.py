"""Regular expressions a config supplies (`policy.include`/`exclude`, `verify.identity_regex`,
the pattern an image template becomes), compiled and matched with bounds.

Why: Python's `re` has no time limit. `^(a|a)*(\\d+)$` meeting sixty `a`s and a dash backtracks
for longer than any run lasts, and in organisation mode one repository's pattern would stall
every repository after it. So a pattern is checked when the config is read:

- Python `re` syntax (configs keep their meaning; `regex`'s own extensions are refused, and so
  is verbose mode, whose comments `regex` reads otherwise);
- at most `MAX_LENGTH` characters, groups nested at most `MAX_DEPTH` deep;
- an estimated compiled size (each atom times the counted repeats around it) of at most
  `MAX_SIZE`: `regex` unrolls counted repeats when it compiles, and `((a{1000}){1000}){1000}`
  would take it minutes;

and matched by the `regex` package (VERSION0: Python's syntax and meaning), whose matching stops
after a CPU-time `timeout`. Each match gets at most `MATCH_SECONDS`; every match of a run (one
repository's, in organisation mode) draws on one `Budget` of `RUN_SECONDS`, so ten thousand tags
at just under the per-match limit cannot add up to a stall either. Running out raises
`PatternTimeoutError`, naming the key and the pattern. `regex` is imported on first use: a
config without patterns never loads it.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Protocol

from tagsync.errors import ConfigError, PatternTimeoutError

MAX_LENGTH = 1000  # characters of one pattern
MAX_DEPTH = 20  # nested groups (`regex` recurses per level when it compiles)
MAX_SIZE = 100_000  # estimated compiled size: `a{100000}` compiles in ~30 ms
MATCH_SECONDS = 0.1  # CPU time of one match (a tag is at most 128 characters)
RUN_SECONDS = 5.0  # CPU time of every match of one run (one repository's, in organisation mode)
_MEMO = 200_000  # results a budget remembers (the same tag list meets many slots' policies)


class Match(Protocol):
    """What callers read of a match (the `re.Match` methods tagsync uses)."""

    def group(self, index: int | str = 0, /) -> str | Any: ...

    def groups(self) -> tuple[str | Any, ...]: ...


class Budget:
    """CPU seconds of pattern matching one run may spend: `seconds` in all, `per_match` at most
    on any one match. `clock` measures what a match cost (this thread's CPU time, which a busy
    machine does not inflate; `regex`'s own timeout is CPU time too). The results are
    remembered for the run (every slot of an image ranks the same tag list): a repeated match
    costs nothing, and what is remembered goes with the run, at most `_MEMO` of them."""

    def __init__(self, seconds: float | None = None, per_match: float | None = None,
                 clock: Callable[[], float] = time.thread_time) -> None:
        self.seconds = RUN_SECONDS if seconds is None else seconds
        self.per_match = MATCH_SECONDS if per_match is None else per_match
        self.clock = clock
        self.spent = 0.0
        self.memo: dict[tuple[str, bool, str], Match | None] = {}
        self._lock = threading.Lock()

    def allowance(self) -> float:
        """How long the next match may take."""
        return min(self.per_match, self.seconds - self.spent)

    def charge(self, seconds: float) -> None:
        with self._lock:
            self.spent += max(seconds, 0.0)


_BUDGET: ContextVar[Budget | None] = ContextVar("tagsync_pattern_budget", default=None)


@contextmanager
def spending(budget: Budget) -> Iterator[Budget]:
    """Every match inside (and in the tasks and threads started inside) draws on `budget`.
    Outside any, each match is still bounded by `MATCH_SECONDS`."""
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


@contextmanager
def blame(image: str, where: str | None = None) -> Iterator[None]:
    """A pattern that runs out of time inside says which image (and catalog) it was for."""
    try:
        yield
    except PatternTimeoutError as exc:
        if exc.image is None:
            exc.image = image
            if where:
                exc.message = f"{where}: {exc.message}"
        raise


_VERBOSE = re.compile(r"\(\?[aiLmsu]*x[aiLmsux]*[-:)]")  # `(?x)`, `(?x:…)`, `(?ix-s:…)`
_QUANTIFIER = re.compile(r"\{(\d*)(?:,(\d*))?\}")  # `re`'s; any other brace is a character


def measure(pattern: str) -> tuple[int, int]:
    """(estimated compiled size, deepest group nesting) of a pattern, without compiling it.

    Each atom (a character, an escape, a class) counts 1; a group counts what it holds (every
    branch of an alternation); a counted repeat `{m,n}` multiplies what it repeats by
    max(m, n). It over-counts rather than under-counts: what it cannot read counts as atoms."""
    frames: list[list[int]] = [[0, 0]]  # per open group: [size so far, size of the last atom]
    depth = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        atom = 1
        if c == "\\":
            i += 2
        elif c == "[":
            i = _class_end(pattern, i)
        elif c == "(":
            frames.append([0, 0])
            depth = max(depth, len(frames) - 1)
            i += 1
            continue
        elif c == ")" and len(frames) > 1:
            atom = frames.pop()[0] + 1
            i += 1
        elif c == "|":
            frames[-1][1] = 0
            i += 1
            continue
        elif c in "*+?":
            i += 1
            continue
        elif c == "{" and (m := _QUANTIFIER.match(pattern, i)) and (m.group(1) or m.group(2)):
            factor = max(int(m.group(1) or 0), int(m.group(2) or 0), 1)
            frame = frames[-1]
            frame[0] += frame[1] * (factor - 1)
            frame[1] *= factor
            i = m.end()
            continue
        else:
            i += 1
        frames[-1][0] += atom
        frames[-1][1] = atom
    size = sum(f[0] for f in frames)  # an unclosed group (which `re` refuses anyway) counts too
    return size, depth


def _class_end(pattern: str, i: int) -> int:
    """Just past the `]` closing the class that opens at `i` (or the end of the pattern)."""
    j = i + 1
    if pattern.startswith("^", j):
        j += 1
    if pattern.startswith("]", j):
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def as_python_means(pattern: str) -> str:
    """The pattern as `regex` (VERSION0) reads it with the meaning Python's `re` gives it. The
    two differ where `re` reads plain characters and `regex` an extension: `{e<=2}` after an
    item (fuzzy matching in `regex`, the characters `{e<=2}` in `re`) and `[[:alpha:]]` (a POSIX
    class in `regex`, `[`, `:`, `a`, `l`, `p`, `h` and a `]` in `re`). Such braces and a `[`
    inside a class are escaped; the rest is left as written."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            end = i + 2
            if pattern.startswith("N{", i + 1):  # \N{NAME}
                close = pattern.find("}", i)
                end = n if close < 0 else close + 1
            out.append(pattern[i:end])
            i = end
        elif pattern.startswith("(?#", i):  # a comment, to its `)`
            close = pattern.find(")", i)
            end = n if close < 0 else close + 1
            out.append(pattern[i:end])
            i = end
        elif c == "[":
            end = min(_class_end(pattern, i), n)
            out.append(_class(pattern[i:end]))
            i = end
        elif c == "{" and (m := _QUANTIFIER.match(pattern, i)) and m.group(2) is not None:
            out.append("{" + (m.group(1) or "0") + "," + m.group(2) + "}")
            i = m.end()
        elif c == "{" and (m := _QUANTIFIER.match(pattern, i)) and m.group(1):
            out.append(m.group(0))
            i = m.end()
        elif c in "{}":
            out.append("\\" + c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _class(text: str) -> str:
    """A class as written, with every `[` in it (and a leading `]`) escaped."""
    out = ["["]
    j = 1
    if text.startswith("^", j):
        out.append("^")
        j += 1
    if text.startswith("]", j):
        out.append("\\]")
        j += 1
    while j < len(text):
        if text[j] == "\\":
            out.append(text[j:j + 2])
            j += 2
        else:
            out.append("\\[" if text[j] == "[" else text[j])
            j += 1
    return "".join(out)


def check(pattern: str) -> None:
    """Raise ValueError (its message for the config key that holds the pattern) for a pattern
    tagsync will not evaluate: not Python syntax, or over a limit."""
    if len(pattern) > MAX_LENGTH:
        raise ValueError(f"the regular expression is {len(pattern)} characters long; "
                         f"at most {MAX_LENGTH} are allowed")
    size, depth = measure(pattern)
    if depth > MAX_DEPTH:
        raise ValueError(f"the regular expression nests groups {depth} deep; at most "
                         f"{MAX_DEPTH} are allowed")
    if size > MAX_SIZE:
        raise ValueError(f"the regular expression is too large once its counted repeats are "
                         f"unrolled (about {size:,} elements; at most {MAX_SIZE:,}): use smaller "
                         "counts, or `+`/`*`")
    try:
        with warnings.catch_warnings():  # "possible nested set": `[[` is read as `re` reads it
            warnings.simplefilter("ignore", FutureWarning)
            compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    if compiled.flags & re.VERBOSE or _VERBOSE.search(pattern):
        # `regex` reads a verbose pattern's comments otherwise than `re` (a `\` ending one)
        raise ValueError("verbose mode (the `x` flag) is not supported: write the pattern "
                         "without comments and insignificant spaces")


class Pattern:
    """A checked pattern, compiled by `regex`, whose every match is bounded; `key` names the
    config key it came from (for the error)."""

    def __init__(self, text: str, key: str) -> None:
        import regex

        try:
            check(text)
            self._compiled: Any = regex.compile(as_python_means(text), flags=regex.VERSION0)
        except (ValueError, regex.error, RecursionError, OverflowError) as exc:
            # validated configs never get here: a pattern made without one (a library caller)
            raise ConfigError(f"{key} {_clip(text)}: {exc}") from None
        self.text = text
        self.key = key

    def fullmatch(self, value: str) -> Match | None:
        return self._match(True, value)

    def search(self, value: str) -> Match | None:
        return self._match(False, value)

    def _match(self, whole: bool, value: str) -> Match | None:
        budget = _BUDGET.get()
        key = (self.text, whole, value)
        if budget is not None and key in budget.memo:
            return budget.memo[key]
        limit = MATCH_SECONDS if budget is None else budget.allowance()
        if limit <= 0:
            raise self._ran_out(value, budget)
        method = self._compiled.fullmatch if whole else self._compiled.search
        start = budget.clock() if budget is not None else 0.0
        try:
            found: Match | None = method(value, timeout=limit)
        except TimeoutError:
            if budget is not None and limit < budget.per_match:
                raise self._ran_out(value, budget) from None
            raise PatternTimeoutError(
                f"{self.key} {_clip(self.text)} took more than {limit:g} s of CPU on "
                f"{_clip(value)}: it backtracks; write it without nested or overlapping "
                "repeats (e.g. `(a|a)*`, `(a+)+`)", key=self.key, pattern=self.text) from None
        finally:
            if budget is not None:
                budget.charge(budget.clock() - start)
        if budget is not None:
            if len(budget.memo) >= _MEMO:
                budget.memo.clear()
            budget.memo[key] = found
        return found

    def _ran_out(self, value: str, budget: Budget | None) -> PatternTimeoutError:
        return _used_up(self.key, self.text, budget or Budget(0.0), f"at {_clip(value)}")

    def __repr__(self) -> str:
        return f"Pattern({self.text!r}, {self.key!r})"


def compile_pattern(text: str, key: str) -> Pattern:
    """The pattern, checked and compiled once per process (policies are made per reference,
    and an organisation's repositories often share theirs). Compiling draws on the budget too:
    one compile is bounded by `MAX_SIZE` (tens of milliseconds), and a config with thousands
    of patterns cannot add those up to a stall."""
    budget = _BUDGET.get()
    if budget is None:
        return _compiled(text, key)
    if budget.allowance() <= 0:
        raise _used_up(key, text, budget, "while compiling it")
    start = budget.clock()
    try:
        return _compiled(text, key)
    finally:
        budget.charge(budget.clock() - start)


@lru_cache(maxsize=256)
def _compiled(text: str, key: str) -> Pattern:
    return Pattern(text, key)


def _used_up(key: str, text: str, budget: Budget, where: str) -> PatternTimeoutError:
    return PatternTimeoutError(
        f"{key} {_clip(text)}: the run's regular expressions used up their {budget.seconds:g} s "
        f"of CPU ({where}); write patterns that do not backtrack", key=key, pattern=text)


def _clip(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
