"""Dockerfiles: `FROM` (with `--platform=`, `AS name`, digests) and `COPY/ADD --from=<image>`.

Stage names, `scratch` and numbered stages are not images; a `FROM ${ARG}` follows the ARG's
default, which is where the reference is written and updated. Edits are splices by offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from tagsync.catalog.document import Scalar
from tagsync.catalog.text import TextFile
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder
from tagsync.find.model import Note, References

_ARG_ONLY = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    line: int


def instructions(text: str) -> Iterator[list[Token]]:
    """Logical instructions as tokens with offsets; continuation lines joined, comments skipped."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        tokens: list[Token] = []
        first = i
        while i < len(lines):
            body = lines[i].rstrip("\r\n")
            stripped = body.rstrip()
            continued = stripped.endswith("\\")
            if continued:
                body = stripped[:-1]
            if i == first or not body.lstrip().startswith("#"):
                tokens += [Token(m.group(), offsets[i] + m.start(), offsets[i] + m.end(), i + 1)
                           for m in re.finditer(r"\S+", body)]
            i += 1
            if not continued:
                break
        if tokens:
            yield tokens


def _stand_in(token: Token, value: str, start: int) -> Scalar:
    return Scalar(start, token.end, token.line, start - token.start + 1, None, value, "", None, start)


def find(cfg: CatalogConfig, source: TextFile) -> References:
    f = Finder(cfg, None, "dockerfile", source.file)
    stages: set[str] = set()
    args: dict[str, Token] = {}  # ARG name -> the token holding NAME=default (before FROM)
    used_args: dict[str, Token] = {}
    seen_from = False
    for tokens in instructions(source.text):
        word = tokens[0].text.upper()
        if word == "ARG" and not seen_from:
            for t in tokens[1:]:
                name, eq, _ = t.text.partition("=")
                if eq:
                    args[name] = t
        elif word == "FROM":
            seen_from = True
            rest = [t for t in tokens[1:] if not t.text.startswith("--")]
            if not rest:
                continue
            image = rest[0]
            if len(rest) >= 3 and rest[1].text.lower() == "as":
                stages.add(rest[2].text.lower())
            _reference(f, image, image.text, image.start, stages, args, used_args)
        elif word in ("COPY", "ADD"):
            for t in tokens[1:]:
                if t.text.startswith("--from="):
                    value = t.text[len("--from="):]
                    _reference(f, t, value, t.start + len("--from="), stages, args, used_args)
    for name, token in sorted(used_args.items(), key=lambda kv: kv[1].start):
        default = token.text.partition("=")[2]
        quote = default[:1] if default[:1] in "\"'" and default.endswith(default[:1]) else ""
        value = default[1:-1] if quote and len(default) >= 2 else default
        start = token.start + len(name) + 1 + len(quote)
        f.whole(0, None, _stand_in(token, value, start), span=(start, start + len(value)))
    return f.references()


def _reference(f: Finder, token: Token, value: str, start: int, stages: set[str],
               args: dict[str, Token], used_args: dict[str, Token]) -> None:
    if value.lower() == "scratch" or value.lower() in stages or value.isdigit():
        what = "the empty image" if value.lower() == "scratch" else "a build stage"
        f.ignored.append(Note(f.cfg.name, f.file, token.line, value, "", f"{what}, not an image",
                              0, None, value, "dockerfile"))
        return
    whole_arg = _ARG_ONLY.fullmatch(value)
    if whole_arg:
        name = whole_arg.group(1) or whole_arg.group(2)
        if name in args and args[name].text.partition("=")[2]:
            used_args.setdefault(name, args[name])
            reason = f"follows ARG {name}, whose default (line {args[name].line}) is followed instead"
        else:
            reason = f"set by the build argument {name}, which has no default here"
        f.note(0, None, _stand_in(token, value, start), reason)
        return
    f.whole(0, None, _stand_in(token, value, start), span=(start, start + len(value)))
