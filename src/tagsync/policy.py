"""Tag policies: which of a repository's tags a catalog entry should follow.

Pure functions over tag lists. `same` is the seed's case (the tag never changes, only its
digest); the others choose the best tag among what the registry lists:

- `semver`: highest version inside `range` (`>=1.2 <2`, `^1.2`, `~1.2.3`, `1.x || 2.0.1`);
  pre-releases (`1.3.0-rc1`) only with `prerelease: true`; a leading `v` and missing minor/patch
  (`3.12`) are accepted, and lose ties against the more specific tag.
- `regex`: tags matching `include` (and not `exclude`); the capture groups order them, each
  compared as a number when it is all digits (so `3.10` sorts after `3.9`).
- `numeric`: tags that are numbers (or whose first `include` group is), highest first.
- `newest`: the most recently created tag, when the registry says when (ECR, OCI config).

`within: major` (or `minor`) keeps each reference of a semver policy inside its own major (or
major.minor) line and its own way of writing the tag (`v`, how many parts, a suffix such as
`-alpine`): `v5.2` may become `v5.4`, never `v6.0` nor `v5.4.1`; `anchored` binds it to the tag
a reference holds. A tag that is no version (`latest`) keeps its tag and follows its digest.

`include`/`exclude` filter every kind. They are the config's regular expressions, so they are
evaluated through `tagsync.patterns` (bounded in size and time: one written to backtrack fails
its run with `PatternTimeoutError` instead of stalling it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

from tagsync.patterns import Pattern, compile_pattern
from tagsync.patterns import check as check_pattern


class Kind(StrEnum):
    same = "same"
    semver = "semver"
    regex = "regex"
    numeric = "numeric"
    newest = "newest"


_SEMVER = re.compile(
    r"^[vV]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?)?(?:-([0-9A-Za-z.-]+))?$"
)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|==|=|!=|\^|~)?\s*(.+)$")
# A tag as a version line writes it: `v` or not, 1-3 numeric parts, then any suffix (`-alpine`).
_LINE = re.compile(r"^([vV]?)(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?((?:[-_+].*)?)$")


def _shape_of(tag: str) -> tuple[str, int, str, tuple[int, ...]] | None:
    """(`v` prefix, number of parts, suffix, the numbers) of a version-like tag, else None."""
    m = _LINE.match(tag)
    if m is None:
        return None
    numbers = tuple(int(g) for g in m.groups()[1:4] if g is not None)
    return m.group(1), len(numbers), m.group(5), numbers


@dataclass(frozen=True, order=True)
class Version:
    """A semantic version; `parts` says how many of major.minor.patch the tag wrote."""

    major: int
    minor: int
    patch: int
    pre: tuple[tuple[int, int | str], ...]  # () = release; sorts after any pre-release
    parts: int

    @classmethod
    def parse(cls, text: str) -> Version | None:
        m = _SEMVER.match(text)
        if m is None:
            return None
        major, minor, patch, pre = m.groups()
        idents: list[tuple[int, int | str]] = []
        for ident in (pre.split(".") if pre else []):
            if not ident:
                return None
            idents.append((0, int(ident)) if ident.isdigit() else (1, ident))
        parts = 1 + (minor is not None) + (patch is not None)
        return cls(int(major), int(minor or 0), int(patch or 0), tuple(idents), parts)

    @property
    def core(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch

    def key(self) -> tuple[Any, ...]:
        # Release after its pre-releases; at equal value, the more specific tag wins (1.2 < 1.2.0).
        return (self.core, 1 if not self.pre else 0, self.pre, self.parts)


@dataclass(frozen=True)
class _Bound:
    op: str
    version: Version

    def allows(self, v: Version) -> bool:
        a, b = (v.core, v.pre == (), v.pre), (self.version.core, self.version.pre == (), self.version.pre)
        return {
            ">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b, "=": a == b, "!=": a != b,
        }[self.op]


def _expand(op: str, text: str) -> list[_Bound]:
    wildcard = text
    while len(wildcard) >= 2 and wildcard[-2] == "." and wildcard[-1] in "xX*":
        wildcard = wildcard[:-2]  # `1.x`, `1.2.*`: what a trailing wildcard leaves
    version = Version.parse(wildcard)
    if version is None:
        raise ValueError(f"{text!r} is not a version")
    parts = version.parts if wildcard == text else len(wildcard.split("."))
    if op in ("", "=", "==") and parts < 3 and not version.pre:
        op = "~"  # `1.2` and `1.x` mean any 1.2.*
    if op == "^":
        if version.major > 0 or parts == 1:
            upper = Version(version.major + 1, 0, 0, (), 3)
        elif version.minor > 0 or parts == 2:
            upper = Version(0, version.minor + 1, 0, (), 3)
        else:
            upper = Version(0, 0, version.patch + 1, (), 3)
        return [_Bound(">=", version), _Bound("<", _floor(upper))]
    if op == "~":
        upper = (Version(version.major + 1, 0, 0, (), 3) if parts == 1
                 else Version(version.major, version.minor + 1, 0, (), 3))
        return [_Bound(">=", version), _Bound("<", _floor(upper))]
    if op == "<" and not version.pre:
        version = _floor(version)  # `<2` excludes 2.0.0-rc1 too
    return [_Bound({"==": "=", "": "="}.get(op, op), version)]


def _floor(v: Version) -> Version:
    """The lowest pre-release of v, so `<2` also excludes `2.0.0-rc1`."""
    return Version(v.major, v.minor, v.patch, ((0, 0),), 3)


MAX_RANGE = 256  # characters of a version range: reading one is quadratic in its length


def parse_range(text: str) -> list[list[_Bound]]:
    """`>=1.2 <2 || 3.x` → alternatives of ANDed bounds; ValueError names the bad part.
    A range over `MAX_RANGE` characters is refused before it is read (a repository's config
    writes it, and a long run of spaces or `.x` would take its scan minutes)."""
    if len(text) > MAX_RANGE:
        raise ValueError(f"a version range is at most {MAX_RANGE} characters; this one has "
                         f"{len(text)}")
    alternatives: list[list[_Bound]] = []
    for alt in text.split("||"):
        bounds: list[_Bound] = []
        tokens = re.findall(r"(?:>=|<=|==|!=|[<>=^~])?\s*[^\s,<>=!^~|]+", alt.replace(",", " "))
        if not tokens and alt.strip() not in ("", "*"):
            raise ValueError(f"cannot read version range {text!r}")
        for token in tokens:
            token = token.strip()
            if token == "*":
                continue
            m = _COMPARATOR.match(token)
            if m is None:
                raise ValueError(f"cannot read {token!r} in version range {text!r}")
            try:
                bounds.extend(_expand(m.group(1) or "", m.group(2).strip()))
            except ValueError as exc:
                raise ValueError(f"version range {text!r}: {exc}") from None
        alternatives.append(bounds)
    return alternatives


_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> timedelta:
    """`90s`, `30m`, `12h`, `3d`, `2w` → a duration."""
    m = _AGE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 12h, 3d or 2w")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def format_age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _natural(part: str) -> tuple[int, int | str]:
    return (0, int(part)) if part.isdigit() else (1, part)


@dataclass(frozen=True)
class Policy:
    kind: Kind = Kind.same
    range: str | None = None
    prerelease: bool = False
    include: str | None = None
    exclude: str | None = None
    min_age: timedelta | None = None  # a candidate younger than this waits for a later run
    within: str | None = None  # semver: "major" or "minor" line of the reference's own tag
    anchor: str | None = None  # the tag `within` is measured from (set by `anchored`)

    def anchored(self, tag: str) -> Policy:
        """This policy as it applies to a reference holding `tag`: `within` measured from it.
        A tag that is no version keeps `same` (its digest is still followed)."""
        if self.within is None or self.anchor is not None:
            return self
        if _shape_of(tag) is None:
            return Policy(Kind.same, None, False, self.include, self.exclude, self.min_age,
                          self.within, tag)
        return Policy(self.kind, self.range, self.prerelease, self.include, self.exclude,
                      self.min_age, self.within, tag)

    def _in_line(self, tag: str) -> bool:
        """Written like the anchor and in its major (or major.minor) line."""
        if self.anchor is None:
            return True
        mine, theirs = _shape_of(self.anchor), _shape_of(tag)
        if mine is None or theirs is None or mine[:3] != theirs[:3]:
            return False
        keep = 1 if self.within == "major" else 2
        return theirs[3][:keep] == mine[3][:keep]

    def check(self) -> None:
        """Raise ValueError for a policy that could never choose sensibly."""
        for name in ("include", "exclude"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    check_pattern(pattern)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if self.range is not None:
            if self.kind is not Kind.semver:
                raise ValueError("`range` applies to `kind: semver` only")
            parse_range(self.range)
        if self.within is not None and self.kind is not Kind.semver:
            raise ValueError("`within` applies to `kind: semver` only")
        if self.kind is Kind.regex and not self.include:
            raise ValueError("`kind: regex` needs `include`, a pattern whose groups order the tags")

    @cached_property
    def _include(self) -> Pattern | None:
        return compile_pattern(self.include, "policy.include") if self.include else None

    @cached_property
    def _exclude(self) -> Pattern | None:
        return compile_pattern(self.exclude, "policy.exclude") if self.exclude else None

    @cached_property
    def _range(self) -> list[list[_Bound]] | None:
        return parse_range(self.range) if self.range else None

    def describe(self) -> str:
        bits = [self.kind.value]
        if self.within and self.kind is Kind.semver:
            bits.append(f"within {self.within}")
        elif self.within:
            bits.append(f"({self.anchor or 'the tag'} is no version)")
        if self.range:
            bits.append(self.range)
        if self.include:
            bits.append(f"include {self.include}")
        if self.exclude:
            bits.append(f"exclude {self.exclude}")
        if self.min_age:
            bits.append(f"min_age {format_age(self.min_age)}")
        return " ".join(bits)

    @property
    def needs_times(self) -> bool:
        """Choosing needs each tag's creation time (`newest`, or a minimum age to respect)."""
        return self.kind is Kind.newest or self.min_age is not None

    def ripe(self, tags: Iterable[str], created: Mapping[str, datetime], now: datetime) -> list[str]:
        """The tags old enough to be chosen (all of them without `min_age`); a tag whose age
        is unknown is not."""
        if self.min_age is None:
            return list(tags)
        limit = now - self.min_age
        return [t for t in tags if t in created and created[t] <= limit]

    def sort_key(self, tag: str, created: Mapping[str, datetime] | None = None) -> tuple[Any, ...] | None:
        """Where a tag ranks under this policy; None when the policy does not admit it."""
        match = self._include.fullmatch(tag) if self._include else None
        if self._include is not None and match is None:
            return None
        if self._exclude is not None and self._exclude.search(tag):
            return None
        if self.kind is Kind.same:
            return (tag,)
        if self.kind is Kind.semver:
            if not self._in_line(tag):
                return None
            text = match.group(1) if match is not None and match.groups() else tag
            v = Version.parse(text)
            if self.anchor is not None and v is not None and v.pre and not self.prerelease:
                shape = _shape_of(tag)  # a suffix the anchor shares (`-alpine`) is no pre-release
                if shape is not None and shape[2]:
                    nums = (*shape[3], 0, 0)
                    v = Version(nums[0], nums[1], nums[2], (), shape[1])
            if v is None or (v.pre and not self.prerelease):
                return None
            if self._range is not None and not any(all(b.allows(v) for b in alt) for alt in self._range):
                return None
            return (*v.key(), tag)
        if self.kind is Kind.numeric:
            text = match.group(1) if match is not None and match.groups() else tag
            if not _NUMBER.match(text):
                return None
            return (float(text), tag)
        if self.kind is Kind.regex:
            assert match is not None
            groups = match.groups() or (tag,)
            return (*(_natural(g or "") for g in groups), tag)
        when = (created or {}).get(tag)
        if when is None:
            return None
        return (when.timestamp(), tag)

    def admitted(self, tags: Iterable[str], created: Mapping[str, datetime] | None = None) -> list[str]:
        """The tags this policy admits, lowest rank first."""
        keyed = [(k, t) for t in set(tags) if (k := self.sort_key(t, created)) is not None]
        return [t for _, t in sorted(keyed)]

    def best(self, tags: Iterable[str], created: Mapping[str, datetime] | None = None) -> str | None:
        ranked = self.admitted(tags, created)
        return ranked[-1] if ranked else None

    def newer(self, tags: Iterable[str], known: Iterable[str],
              created: Mapping[str, datetime] | None = None) -> list[str]:
        """Admitted tags not in `known` that rank above every admitted known tag (new releases,
        not the history the catalog chose to leave out)."""
        known_set = set(known)
        ranked = self.admitted(set(tags) | known_set, created)
        admitted_known = [i for i, t in enumerate(ranked) if t in known_set]
        start = admitted_known[-1] + 1 if admitted_known else 0
        return [t for t in ranked[start:] if t not in known_set]
