"""Rewrite the value of a block scalar (`|`, `>`) in place, keeping its indentation.

Real files keep scripts and configs in block scalars, with image names inside. A change that
stays within one line of the value is spliced into that line (literal and folded alike); a
block scalar may also be rewritten whole (a folded one with a blank line for each line break).
How the value ends (its trailing line breaks) is the header's chomping indicator, part of the
scalar: when the new value ends differently, only that indicator changes (`|` to `|-` for a
value without a final line break, `|-` to `|` for one with it). Anything else is refused; the
engine re-parses every result and refuses too if it does not read back as the new value.
"""

from __future__ import annotations

import re

from tagsync.catalog.document import Scalar

_HEADER = re.compile(r"([|>])([1-9+-]{0,2})")
_BREAKS = re.compile(r"\n+")


def _lines(text: str, node: Scalar, parent: int | None
           ) -> tuple[int, int, list[tuple[int, str]]] | None:
    """(content indentation, header chomping sign, [(offset of line start, line text)])."""
    header = _HEADER.match(text, node.value_start)
    if header is None:
        return None
    indicators = header.group(2)
    first = text.find("\n", header.end())
    if first < 0:
        return None
    pos = first + 1
    lines: list[tuple[int, str]] = []
    while pos < node.end:
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        lines.append((pos, text[pos:end].rstrip("\r")))
        pos = end + 1
    digits = [c for c in indicators if c.isdigit()]
    nonblank = [line for _, line in lines if line.strip()]
    if not nonblank:
        return None
    base = max(parent, 0) if parent is not None else _parent_indent(text, node)
    indent = int(digits[0]) + base if digits else (
        len(nonblank[0]) - len(nonblank[0].lstrip(" ")))
    sign = -1 if "-" in indicators else 1 if "+" in indicators else 0
    return indent, sign, [(start, line) for start, line in lines]


def _parent_indent(text: str, node: Scalar) -> int:
    line_start = text.rfind("\n", 0, node.start) + 1
    line = text[line_start:node.start]
    return len(line) - len(line.lstrip(" "))


def _chomping(sign: int, old_breaks: int, new_breaks: int) -> str | None:
    """The chomping indicator the new value needs: "" clip, "-" strip, "+" keep; None if none
    can say it without adding lines."""
    if new_breaks == old_breaks:
        return {-1: "-", 0: "", 1: "+"}[sign]
    if new_breaks == 0:
        return "-"
    if new_breaks == 1:
        return ""
    return None  # more trailing line breaks than the text holds: that would add lines


def _splice_body(text: str, node: Scalar, indent: int, lines: list[tuple[int, str]],
                 old: str, new: str, explicit: bool) -> tuple[int, int, str] | None:
    """(start, end, replacement) that turns the body `old` (trailing line breaks aside) into
    `new`: within one line for both styles, or the whole body."""
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[len(old) - 1 - s] == new[len(new) - 1 - s]:
        s += 1
    old_mid, new_mid = old[p:len(old) - s], new[p:len(new) - s]
    if "\n" not in old_mid and "\n" not in new_mid:
        cursor = 0
        for start, line in lines:
            content = line[indent:] if line.strip() else ""
            at = old.find(content, cursor) if content else -1
            if at < 0:
                continue
            if at <= p and p + len(old_mid) <= at + len(content):
                offset = start + indent + (p - at)
                return offset, offset + len(old_mid), new_mid
            cursor = at + len(content)
    if (new.split("\n", 1)[0].startswith(" ") and not explicit) or any(c in new for c in "\t\r"):
        return None
    if node.style == ">":
        if any(line.startswith(" ") for line in new.split("\n")):
            return None  # a more-indented line keeps its line breaks: folding differs there
        # folding reads a line break between two lines as a space and each empty line as one
        # line break: n line breaks in the value are written as n + 1
        new = _BREAKS.sub(lambda m: m.group() + "\n", new)
    # from the first line after the header (leading blank lines are content too) to the end of
    # the last line holding content (blanks beyond the indentation are content)
    filled = [(start, line) for start, line in lines if line.strip() or len(line) > indent]
    first, last = lines[0][0], filled[-1][0] + len(filled[-1][1])
    pad = " " * indent
    return first, last, "\n".join(pad + line if line else "" for line in new.split("\n"))


def splice_block(text: str, node: Scalar, new: str, parent: int | None = None
                 ) -> tuple[int, int, str] | None:
    """(start, end, replacement) in `text` giving `node` the value `new`, or None.

    `parent` is the indentation of the block collection holding the scalar (-1 for a document's
    root, None when unknown): an indentation indicator counts from it, and one is added when
    the new value's first line starts with a space (which would otherwise read as indentation).
    """
    parsed = _lines(text, node, parent)
    if parsed is None or not new.strip("\n"):
        return None  # an empty body: readers disagree on the indentation of blank lines
    indent, sign, lines = parsed
    header = _HEADER.match(text, node.value_start)
    assert header is not None  # `_lines` matched it
    digits = "".join(c for c in header.group(2) if c.isdigit())
    old_body, new_body = node.value.rstrip("\n"), new.rstrip("\n")
    first_line = next((line for line in new_body.split("\n") if line), "")
    added = first_line.startswith(" ") and not digits
    if added:
        if parent is None or not 1 <= indent - max(parent, 0) <= 9:
            return None
        digits = str(indent - max(parent, 0))
    chomp = _chomping(sign, len(node.value) - len(old_body), len(new) - len(new_body))
    body = _splice_body(text, node, indent, lines, old_body, new_body, bool(digits))
    if chomp is None or body is None:
        return None
    if not added and chomp == {-1: "-", 0: "", 1: "+"}[sign]:
        return body
    start, end, replacement = body
    return (header.start(2), end,
            digits + chomp + text[header.end(2):start] + replacement)
