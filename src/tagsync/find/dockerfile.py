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


_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"\d*<<(-?)([\"']?)([^\"'<\s]+)\2")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})


def instructions(text: str) -> Iterator[list[Token]]:
    """Logical instructions as tokens with offsets, read the way BuildKit reads them: lines end
    at line feeds only (not at U+2028 or U+0085); the escape character (a backslash, or the one
    `# escape=` names) continues a line; comment and blank lines inside a continuation are
    dropped; heredoc bodies (`RUN <<EOF`) are content, never instructions."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    escape = "\\"
    i = 0
    while i < len(lines):  # parser directives: only before any other line
        directive = _DIRECTIVE.match(lines[i].rstrip("\r"))
        if directive is None:
            break
        if directive.group(1).lower() == "escape" and directive.group(2) in ("\\", "`"):
            escape = directive.group(2)
        i += 1
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        tokens: list[Token] = []
        first = i
        while i < len(lines):
            body = lines[i].removesuffix("\r")
            if i > first and (not body.strip() or body.lstrip().startswith("#")):
                i += 1  # inside a continuation: dropped, and the instruction goes on
                continue
            stripped = body.rstrip()
            continued = stripped.endswith(escape)
            if continued:
                body = stripped[:-1]
            tokens += [Token(m.group(), offsets[i] + m.start(), offsets[i] + m.end(), i + 1)
                       for m in re.finditer(r"\S+", body)]
            i += 1
            if not continued:
                break
        if tokens and tokens[0].text.upper() in _HEREDOC_INSTRUCTIONS:
            i = _skip_heredocs(lines, i, tokens)
        if tokens:
            yield tokens


def _skip_heredocs(lines: list[str], i: int, tokens: list[Token]) -> int:
    """The line after the heredoc bodies this instruction opens (each ends at its word)."""
    for token in tokens[1:]:
        heredoc = _HEREDOC.match(token.text)
        if heredoc is None:
            continue
        strip_tabs, word = heredoc.group(1) == "-", heredoc.group(3)
        while i < len(lines):
            body = lines[i].removesuffix("\r")
            i += 1
            if (body.lstrip("\t") if strip_tabs else body) == word:
                break
    return i


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
        quoted = len(default) >= 2 and default[0] in "\"'" and default.endswith(default[0])
        quote = default[0] if quoted else ""
        value = default[1:-1] if quote else default
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
