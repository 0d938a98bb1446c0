"""Rewrite the value of a block scalar (`|`, `>`) in place, keeping its header and indentation.

Real files keep scripts and configs in block scalars, with image names inside. A change that
stays within one line of the value is spliced into that line (literal and folded alike); a
literal scalar may also be rewritten whole when the new value ends the way its chomping
indicator says (`|` one newline, `|-` none). Anything else is refused: the caller re-parses
the result and refuses too if it does not read back as the new value.
"""

from __future__ import annotations

import re

from tagsync.catalog.document import Scalar

_HEADER = re.compile(r"([|>])([1-9+-]{0,2})")


def _lines(text: str, node: Scalar) -> tuple[int, int, list[tuple[int, str]]] | None:
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
    indent = int(digits[0]) + _parent_indent(text, node) if digits else (
        len(nonblank[0]) - len(nonblank[0].lstrip(" ")))
    sign = -1 if "-" in indicators else 1 if "+" in indicators else 0
    return indent, sign, [(start, line) for start, line in lines]


def _parent_indent(text: str, node: Scalar) -> int:
    line_start = text.rfind("\n", 0, node.start) + 1
    line = text[line_start:node.start]
    return len(line) - len(line.lstrip(" "))


def splice_block(text: str, node: Scalar, new: str) -> tuple[int, int, str] | None:
    """(start, end, replacement) in `text` giving `node` the value `new`, or None."""
    parsed = _lines(text, node)
    if parsed is None:
        return None
    indent, sign, lines = parsed
    old = node.value
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
    if node.style != "|" or sign == 1 or not new.strip("\n"):
        return None
    if (sign == 0 and not (new.endswith("\n") and not new.endswith("\n\n"))) or (
            sign == -1 and new.endswith("\n")):
        return None
    body = new[:-1] if sign == 0 else new
    if body.split("\n", 1)[0].startswith(" ") or any(c in body for c in "\t\r"):
        return None
    filled = [(start, line) for start, line in lines if line.strip()]
    first, last = filled[0][0], filled[-1][0] + len(filled[-1][1])
    pad = " " * indent
    return first, last, "\n".join(pad + line if line else "" for line in body.split("\n"))
