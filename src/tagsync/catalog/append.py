"""Add an item to a YAML list without touching any other byte.

A new item is written the way the list already writes its items: the last item is the example.
For `[tag, digest]` pairs its text is copied and each scalar replaced in its own quoting
(`- ["3.6-ubuntu", "ca7b9f52b6c2"]` gives `- ["3.7-ubuntu", "<digest>"]`, a flow list gets
`, <item>` with the list's own separator). A whole new entry comes from a template (`fill_template`)
and is indented like its siblings. Every insertion is checked by parsing the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tagsync.catalog.document import (
    Alias,
    Document,
    Mapping,
    Node,
    Scalar,
    Sequence,
    locate,
    parse_documents,
    to_python,
)
from tagsync.catalog.path import Path, format_path
from tagsync.catalog.scalar import render_scalar
from tagsync.errors import CatalogError, SharedValueError

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BLOCK_ITEM_PREFIX = re.compile(r"^[ \t]*-[ \t]+$")
_TAG_PROPERTY = re.compile(r"!(?:<[^>\s]*>|[^ \t\r\n,\[\]{}]*)[ \t]+")  # `!<…>` is verbatim


@dataclass(frozen=True)
class Append:
    """Add one item at the end of the sequence at `path`: either `values` (one per scalar of
    the last item, in order) or `entry` (YAML text of a mapping, from `fill_template`)."""

    path: Path
    values: tuple[str, ...] = ()
    entry: str | None = None
    doc: int = 0
    expect: object = field(default=None, compare=False)  # what the new item must read back as


def _scalars(node: Node) -> list[tuple[Scalar, bool]]:
    """Scalars under a node in document order, with whether each sits in a flow collection."""
    out: list[tuple[Scalar, bool]] = []
    for n, in_flow in _nodes(node):
        if isinstance(n, Alias):
            raise SharedValueError("the example item uses an alias; cannot copy it safely")
        if isinstance(n, Scalar):
            out.append((n, in_flow))
    return out


def content_end(node: Node) -> int:
    """Where a node's own text ends (a block collection's end mark can run past comments)."""
    if isinstance(node, Sequence) and not node.flow and node.items:
        return content_end(node.items[-1])
    if isinstance(node, Mapping) and not node.flow and node.pairs:
        return content_end(node.pairs[-1][1])
    if isinstance(node, Scalar) and node.style in ("|", ">"):
        return max(node.start, node.end - 1)  # its end mark is already past its last line break
    return node.end


def newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _anchors(text: str, node: Node) -> list[tuple[int, int]]:
    """Spans of the `&name ` properties of the collections under a node: a copy must not define
    them again (a repeated anchor is an error to YAML 1.1 readers, PyYAML among them). A
    scalar's properties go with its value (`render_item`)."""
    spans: list[tuple[int, int]] = []
    for n, _ in _nodes(node):
        if not n.anchor or isinstance(n, Scalar):
            continue
        at = n.start
        tag = _TAG_PROPERTY.match(text, at)  # properties come in either order: `!t &a`
        if tag is not None and not text.startswith("&", at):
            at = tag.end()
        found = re.compile(rf"&{re.escape(n.anchor)}[ \t]*").match(text, at)
        if found is None:  # the parser saw an anchor here: its text must be there too
            raise CatalogError(f"cannot find anchor &{n.anchor} in the example item",
                               line=n.line, column=n.column)
        spans.append(found.span())
    return spans


def _nodes(node: Node, in_flow: bool = False) -> Iterator[tuple[Node, bool]]:
    """Every node under `node` (itself first) in document order, with whether it sits in a flow
    collection."""
    yield node, in_flow
    if isinstance(node, Sequence):
        for item in node.items:
            yield from _nodes(item, in_flow or node.flow)
    elif isinstance(node, Mapping):
        for k, v in node.pairs:
            yield from _nodes(k, in_flow or node.flow)
            yield from _nodes(v, in_flow or node.flow)


def render_item(text: str, example: Node, values: tuple[str, ...]) -> str:
    """The example item's text with each scalar replaced by the next value, same quoting, and
    without the example's anchors or its scalars' tags: a copied `!!float 3.6` would make the
    new tag `"3.7"` a number, while a value written alone is quoted to read as a string."""
    scalars = _scalars(example)
    if len(scalars) != len(values):
        raise CatalogError(f"the last item holds {len(scalars)} values, not {len(values)}; "
                           "cannot use it as the example", line=example.line, column=example.column)
    replaced: list[tuple[int, int, str]] = [(start, end, "") for start, end in _anchors(text, example)]
    for (scalar, in_flow), value in zip(scalars, values, strict=True):
        if scalar.style in ("|", ">"):
            raise CatalogError("the example item holds a block scalar", line=scalar.line)
        replaced.append((scalar.start, scalar.end, render_scalar(value, scalar.style, in_flow)))
    pieces: list[str] = []
    pos = example.start
    for start, end, new in sorted(replaced):
        pieces.append(text[pos:start])
        pieces.append(new)
        pos = end
    pieces.append(text[pos:example.end])
    return "".join(pieces)


def template_root(template: str) -> Mapping:
    """An entry template's mapping, checked as the config loads and again before each use: a
    mapping, defining no anchor (the second new entry would define it again)."""
    docs = parse_documents(template, "template")
    if not docs or not isinstance(docs[0].root, Mapping):
        raise CatalogError("an entry template must be a YAML mapping", file="template")
    anchored = next((n for n, _ in _nodes(docs[0].root) if n.anchor), None)
    if anchored is not None:
        raise CatalogError(f"an entry template must not define an anchor (&{anchored.anchor}): "
                           "every new entry would repeat it, and YAML 1.1 readers refuse a "
                           "repeated anchor", file="template", line=anchored.line,
                           column=anchored.column)
    return docs[0].root


def fill_template(template: str, fields: dict[str, str]) -> str:
    """Fill `${field}`s of an entry template, each written so it reads back as the string."""
    pieces: list[str] = []
    pos = 0
    for scalar, in_flow in _scalars(template_root(template)):
        if not _PLACEHOLDER.search(scalar.value):
            continue
        missing = sorted(set(_PLACEHOLDER.findall(scalar.value)) - fields.keys())
        if missing:
            raise CatalogError(f"template field ${{{missing[0]}}} has no value "
                               f"(known: {', '.join(sorted(fields))})", file="template",
                               line=scalar.line, column=scalar.column)
        value = _PLACEHOLDER.sub(lambda m: fields[m.group(1)], scalar.value)
        style = scalar.style if scalar.style in ("'", '"') else ""
        pieces.append(template[pos:scalar.value_start])
        pieces.append(render_scalar(value, style, in_flow))
        pos = scalar.end
    pieces.append(template[pos:])
    return "".join(pieces).strip("\n")


def plan_append(text: str, seq: Node, append: Append, file: str | None) -> tuple[int, str]:
    """(offset, text to insert) for one append; raises with the list's position when unsafe."""
    where = format_path(append.path)
    if not isinstance(seq, Sequence):
        raise CatalogError(f"{where} is not a list; cannot add an item", file=file,
                           line=seq.line, column=seq.column)
    if not seq.items:
        raise CatalogError(f"{where} is empty: there is no item to copy the style from",
                           file=file, line=seq.line, column=seq.column)
    last = seq.items[-1]
    if isinstance(last, Alias):
        raise SharedValueError(f"the last item of {where} is an alias; cannot copy it",
                               file=file, line=last.line, column=last.column)
    nl = newline(text)
    if seq.flow:
        if append.entry is not None:
            raise CatalogError(f"{where} is a flow list [...]; new entries go into block lists only",
                               file=file, line=seq.line, column=seq.column)
        if len(seq.items) >= 2 and re.fullmatch(r"\s*,\s*", text[seq.items[-2].end:last.start]):
            sep = text[seq.items[-2].end:last.start]
        else:
            sep = ", "
        return last.end, sep + render_item(text, last, append.values)
    line_start = text.rfind("\n", 0, last.start) + 1
    prefix = text[line_start:last.start]
    if not _BLOCK_ITEM_PREFIX.match(prefix):
        raise CatalogError(f"the last item of {where} does not start its own line (`- `); "
                           "cannot add after it safely", file=file, line=last.line, column=last.column)
    end = content_end(last)
    if append.entry is None:
        if "\n" in text[last.start:end]:
            raise CatalogError(f"the last item of {where} spans lines; only one-line items are "
                               "copied", file=file, line=last.line, column=last.column)
        body = render_item(text, last, append.values)
    else:
        indent = " " * len(prefix.expandtabs())
        body = (nl + indent).join(append.entry.splitlines())
    line_end = text.find("\n", end)
    if line_end == -1:
        return len(text), nl + prefix + body
    return line_end + 1, prefix + body + nl


def check_appended(docs: list[Document], doc: int, path: Path, before: int,
                   appends: list[Append], file: str | None) -> None:
    """The parsed result: the list must have grown by exactly these items, reading as expected."""
    try:
        seq = locate(docs[doc], path, file).node
    except CatalogError as exc:
        raise CatalogError(f"adding to {format_path(path)} would break the file: {exc.message}",
                           file=file) from exc
    if not isinstance(seq, Sequence) or len(seq.items) != before + len(appends):
        raise CatalogError(f"adding to {format_path(path)} did not read back as new items",
                           file=file)
    for item, append in zip(seq.items[before:], appends, strict=True):
        got = to_python(item)
        expected = append.expect if append.expect is not None else (
            list(append.values) if len(append.values) != 1 else append.values[0])
        if got != expected:
            raise CatalogError(f"a new item of {format_path(path)} would read back as {got!r}, "
                               f"not {expected!r}", file=file, line=item.line)
