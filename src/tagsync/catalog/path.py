"""yq-style paths: `.images[0].tags[1][1]`, `.a.b`, `.["key.with.dots"]`, `.images[*]`.

A path is a tuple of segments: `str` for a mapping key, `int` for a sequence index and
`WILDCARD` for every item (used by catalog selectors, never by an edit).
"""

from __future__ import annotations

import json
from typing import Final

from tagsync.errors import PathSyntaxError


class _Wildcard:
    __slots__ = ()

    def __repr__(self) -> str:
        return "*"


WILDCARD: Final = _Wildcard()

Segment = str | int | _Wildcard
Path = tuple[Segment, ...]

_BARE_KEY_STOP = ".[]"


def parse_path(text: str) -> Path:
    """Parse a yq-style path; the leading dot is optional, `.` alone is the document root."""
    s = text.strip()
    if not s:
        raise PathSyntaxError("empty path (use '.' for the document root)")
    segments: list[Segment] = []
    i = 0
    n = len(s)
    if s[0] != "." and s[0] != "[":
        s = "." + s
        n += 1
    while i < n:
        c = s[i]
        if c == ".":
            i += 1
            if i >= n:
                if segments:
                    raise PathSyntaxError(f"path {text!r} ends with '.'")
                break
            if s[i] == "[":
                continue
            j = i
            while j < n and s[j] not in _BARE_KEY_STOP:
                j += 1
            if j == i:
                raise PathSyntaxError(f"path {text!r} has an empty key at offset {i}")
            segments.append(s[i:j])
            i = j
        elif c == "[":
            close, segment = _parse_bracket(s, i, text)
            segments.append(segment)
            i = close + 1
        else:
            raise PathSyntaxError(f"path {text!r}: unexpected {c!r} at offset {i}")
    return tuple(segments)


def _parse_bracket(s: str, start: int, original: str) -> tuple[int, Segment]:
    i = start + 1
    if i < len(s) and s[i] in "\"'":
        quote = s[i]
        j = i + 1
        while j < len(s):
            if s[j] == "\\" and quote == '"':
                j += 2
                continue
            if s[j] == quote:
                if quote == "'" and j + 1 < len(s) and s[j + 1] == "'":
                    j += 2  # '' is an escaped quote inside single quotes
                    continue
                break
            j += 1
        if j >= len(s) or j + 1 >= len(s) or s[j + 1] != "]":
            raise PathSyntaxError(f"path {original!r}: unterminated quoted key at offset {i}")
        raw = s[i : j + 1]
        if quote == '"':
            try:
                key = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise PathSyntaxError(f"path {original!r}: bad escape in {raw}") from exc
        else:
            key = raw[1:-1].replace("''", "'")
        return j + 1, str(key)
    close = s.find("]", i)
    if close < 0:
        raise PathSyntaxError(f"path {original!r}: missing ']' after offset {start}")
    inner = s[i:close].strip()
    if inner == "*":
        return close, WILDCARD
    if inner.isdigit():
        return close, int(inner)
    if inner.startswith("-") and inner[1:].isdigit():
        raise PathSyntaxError(f"path {original!r}: negative indexes are not supported")
    raise PathSyntaxError(
        f"path {original!r}: [{inner}] is neither an index nor a quoted key (write [\"{inner}\"])"
    )


def format_path(path: Path) -> str:
    """The canonical text of a path, parseable by `parse_path`."""
    if not path:
        return "."
    out: list[str] = []
    for seg in path:
        if isinstance(seg, _Wildcard):
            out.append("[*]")
        elif isinstance(seg, int):
            out.append(f"[{seg}]")
        elif seg and all(ch not in _BARE_KEY_STOP + "\"'" and ch.isprintable() and not ch.isspace()
                         for ch in seg):
            out.append(f".{seg}")
        else:
            out.append(f".[{json.dumps(seg, ensure_ascii=False)}]")
    text = "".join(out)
    return text if text.startswith(".") else "." + text
