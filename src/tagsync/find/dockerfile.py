"""Dockerfiles: `FROM` (with `--platform=`, `AS name`, digests), `COPY/ADD --from=<image>`,
`RUN --mount=…,from=<image>`, and the `# syntax=` directive's frontend image.

Stage names, `scratch` and numbered stages are not images; a `FROM ${ARG}` follows the ARG's
default, which is where the reference is written and updated; `FROM rust:${VARIANT}` follows
VARIANT's default when it is the whole tag. Edits are splices by offsets.
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
from tagsync.find.substitute import Piece, Tail, locate_tail

# `${NAME}`, `$NAME`, and `${NAME:-word}` (word when NAME is unset or empty)
_SUBST = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}$]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    line: int


# BuildKit trims the line, then reads `#key=value` with spaces allowed around both; only the
# known keys are directives, and the first line that is not one ends them.
_DIRECTIVE_KEY = re.compile(r"[ \t]*#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=")


def _directive(line: str) -> tuple[str, int, int] | None:
    """(key, where the value starts, where it ends) of a `#key=value` line, else None: what
    `[ \t]*#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*` reads in full, in linear
    time (that expression tried the blanks after every character of the value: a repository's
    first line with a long run of blanks inside its value took minutes)."""
    m = _DIRECTIVE_KEY.match(line)
    if m is None:
        return None
    start, end = m.end(), len(line)
    while start < end and line[start] in " \t":
        start += 1
    while end > start and line[end - 1] in " \t":
        end -= 1
    if start == end:  # blanks alone: the value is the last of them, or there is none
        return (m.group(1), len(line) - 1, len(line)) if len(line) > m.end() else None
    return m.group(1), start, end
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
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
    found, i = _directives(lines, offsets)
    escape = next((t.text for name, t in found if name == "escape" and t.text in ("\\", "`")), "\\")
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


def directives(text: str) -> list[tuple[str, Token]]:
    """The parser directives (`# syntax=…`, `# escape=…`) at the top: (name, value token)."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    return _directives(lines, offsets)[0]


def _directives(lines: list[str], offsets: list[int]) -> tuple[list[tuple[str, Token]], int]:
    found: list[tuple[str, Token]] = []
    i = 0
    while i < len(lines):
        line = lines[i].removesuffix("\r")
        m = _directive(line)
        name = m[0].lower() if m else ""
        if m is None or name not in _KNOWN_DIRECTIVES or any(n == name for n, _ in found):
            break
        found.append((name, Token(line[m[1]:m[2]], offsets[i] + m[1], offsets[i] + m[2], i + 1)))
        i += 1
    return found, i


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
    read = _Read(f)
    for name, token in directives(source.text):
        if name == "syntax":  # the BuildKit frontend: an image like any other
            f.whole(0, None, _stand_in(token, token.text, token.start),
                    span=(token.start, token.end))
    seen_from = False
    for tokens in instructions(source.text):
        word = tokens[0].text.upper()
        if word == "ARG":
            for t in tokens[1:]:
                name, eq, _ = t.text.partition("=")
                if seen_from:
                    read.in_stage.setdefault(name, t.line)
                elif eq:
                    read.args[name] = t
        elif word == "FROM":
            seen_from = True
            rest = [t for t in tokens[1:] if not t.text.startswith("--")]
            if not rest:
                continue
            image = rest[0]
            if len(rest) >= 3 and rest[1].text.lower() == "as":
                read.stages.add(rest[2].text.lower())
            read.reference(image, image.text, image.start)
        elif word in ("COPY", "ADD"):
            for t in tokens[1:]:
                if t.text.startswith("--from="):
                    read.reference(t, t.text[len("--from="):], t.start + len("--from="))
        elif word == "RUN":
            for t in tokens[1:]:
                if t.text.startswith("--mount="):
                    _mount(read, t)
    read.finish()
    return f.references()


def _mount(read: _Read, token: Token) -> None:
    """`RUN --mount=type=cache,from=<image>,…`: `from` is a stage or an image."""
    offset = len("--mount=")
    for part in token.text[offset:].split(","):
        key, eq, value = part.partition("=")
        if eq and key.strip().lower() == "from" and value:
            read.reference(token, value, token.start + offset + len(key) + 1)
        offset += len(part) + 1


def _default(token: Token) -> tuple[str, int]:
    """An `ARG NAME=default` token's default, unquoted, and its offset in the file."""
    name, _, default = token.text.partition("=")
    quoted = len(default) >= 2 and default[0] in "\"'" and default.endswith(default[0])
    start = token.start + len(name) + 1 + (1 if quoted else 0)
    return (default[1:-1] if quoted else default), start


class _Read:
    """One Dockerfile as it is read: global ARGs, stage names, and the ARG defaults that hold
    (part of) a reference, which are followed once, after every instruction is seen."""

    def __init__(self, f: Finder) -> None:
        self.f = f
        self.stages: set[str] = set()
        self.args: dict[str, Token] = {}  # ARG name -> the token holding NAME=default (before FROM)
        self.in_stage: dict[str, int] = {}  # ARGs declared inside a stage: FROM does not see them
        self.whole: dict[str, Token] = {}  # ARGs whose default is a whole reference
        self.tails: dict[str, list[tuple[Token, Tail]]] = {}  # ARGs whose default ends one

    def ignore(self, token: Token, value: str, why: str) -> None:
        self.f.ignored.append(Note(self.f.cfg.name, self.f.file, token.line, value, "", why,
                                   0, None, value, "dockerfile"))

    def reference(self, token: Token, value: str, start: int) -> None:
        f = self.f
        if value.lower() == "scratch" or value.lower() in self.stages or value.isdigit():
            what = "the empty image" if value.lower() == "scratch" else "a build stage"
            self.ignore(token, value, f"{what}, not an image")
            return
        if "$" not in value:
            f.whole(0, None, _stand_in(token, value, start), span=(start, start + len(value)))
            return
        here = _stand_in(token, value, start)
        whole_arg = _SUBST.fullmatch(value)
        pieces: list[Piece] = []
        at = 0
        for m in _SUBST.finditer(value):
            name = m.group(1) or m.group(3)
            if m.start() > at:
                pieces.append(Piece(value[at:m.start()], start + at))
            held = self.args.get(name)
            default, where = _default(held) if held is not None else ("", 0)
            if not default and m.group(2) is not None:  # `${NAME:-word}`: the word, right here
                pieces.append(Piece(m.group(2), start + m.start(2)))
                at = m.end()
                continue
            if not default:
                f.note(0, None, here, self._unset(name))
                return
            if "$" in default:
                f.note(0, None, here, f"ARG {name}'s default {default!r} is itself substituted")
                return
            pieces.append(Piece(default, where, name))
            at = m.end()
        if "$" in value[at:] or any("$" in p.text for p in pieces if p.var is None):
            f.note(0, None, here, "a substitution other than ${NAME}, $NAME or ${NAME:-word}: "
                   "filled in at build time")
            return
        if at < len(value):
            pieces.append(Piece(value[at:], start + at))
        if whole_arg and pieces[0].var is not None:
            name = pieces[0].var
            assert name is not None
            held = self.args[name]
            if pieces[0].text.lower() == "scratch":
                self.ignore(token, value, f"ARG {name}'s default is scratch, the empty image")
                return
            self.whole.setdefault(name, held)
            f.note(0, None, here, f"follows ARG {name}, whose default (line {held.line}) is "
                   "followed instead")
            return
        tail = locate_tail(pieces)
        if isinstance(tail, str):
            f.note(0, None, here, tail)
            return
        if tail.piece.var is None:  # `${REGISTRY}/app:1.2`: the tag is written right here
            begin = tail.piece.at + tail.start
            f.follow(0, None, _stand_in(token, tail.piece.text[tail.start:], begin),
                     tail.ref, tail.piece.text[tail.start:], bare=True,
                     span=(begin, tail.piece.at + tail.end))
            return
        held = self.args[tail.piece.var]
        self.tails.setdefault(tail.piece.var, []).append((token, tail))
        f.note(0, None, here, f"follows ARG {tail.piece.var}, whose default (line {held.line}) "
               "holds the tag and is followed instead")

    def _unset(self, name: str) -> str:
        if name in self.in_stage:
            return (f"ARG {name} is declared inside a stage (line {self.in_stage[name]}): FROM "
                    "sees only ARGs declared before the first FROM, so it is set at build time")
        return f"set by the build argument {name}, which has no default here"

    def finish(self) -> None:
        """The ARG defaults found above, each followed once (or said why not)."""
        f = self.f
        for name, token in sorted(self.whole.items(), key=lambda kv: kv[1].start):
            if name in self.tails:
                continue
            value, start = _default(token)
            f.whole(0, None, _stand_in(token, value, start), span=(start, start + len(value)))
        for name, uses in sorted(self.tails.items(), key=lambda kv: self.args[kv[0]].start):
            token = self.args[name]
            value, start = _default(token)
            tail = uses[0][1]
            forms = {(str(t.ref.image), t.start) for _, t in uses}
            if name in self.whole or len(forms) > 1:
                images = sorted({image for image, _ in forms})
                also = " and as a whole reference" if name in self.whole else ""
                f.note(0, None, _stand_in(token, value, start),
                       f"ARG {name} is part of more than one reference ({', '.join(images)}{also}): "
                       "left alone")
                continue
            begin = start + tail.start
            f.follow(0, None, _stand_in(token, value[tail.start:], begin), tail.ref,
                     value[tail.start:], bare=True, span=(begin, start + len(value)),
                     pin=tail.ref.digest is not None)
