"""Add a key to a YAML mapping in the mapping's own style, without touching any other byte.

A block mapping gains a line indented like its keys, after its last value (and any comment on
that line); a flow mapping gains `, key: value` after its last value. Like `append`, every
insertion is checked by parsing the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagsync.catalog.append import content_end, newline
from tagsync.catalog.document import Document, Mapping, Node, Scalar, locate
from tagsync.catalog.path import Path, format_path
from tagsync.catalog.scalar import render_scalar
from tagsync.errors import CatalogError


@dataclass(frozen=True)
class InsertKey:
    """Add `key: value` (a string) to the mapping at `path`, which must not have `key` yet."""

    path: Path
    key: str
    value: str
    doc: int = 0


def plan_insert(text: str, mapping: Node, insert: InsertKey, file: str | None) -> tuple[int, str]:
    """(offset, text to insert); raises with the mapping's position when it cannot be done."""
    where = format_path(insert.path)
    if not isinstance(mapping, Mapping):
        raise CatalogError(f"{where} is not a mapping; cannot add {insert.key!r}", file=file,
                           line=mapping.line, column=mapping.column)
    if any(isinstance(k, Scalar) and k.value == insert.key for k, _ in mapping.pairs):
        raise CatalogError(f"{where} already has {insert.key!r}", file=file, line=mapping.line)
    key = render_scalar(insert.key, "", mapping.flow)
    value = render_scalar(insert.value, "", mapping.flow)
    if mapping.flow:
        if not mapping.pairs:
            return mapping.end - 1, f"{key}: {value}"
        return mapping.pairs[-1][1].end, f", {key}: {value}"
    if not mapping.pairs:
        raise CatalogError(f"{where} is empty: there is no key to copy the indentation from",
                           file=file, line=mapping.line, column=mapping.column)
    first = mapping.pairs[0][0]
    line_start = text.rfind("\n", 0, first.start) + 1
    indent = " " * len(text[line_start:first.start].replace("-", " ").expandtabs())
    nl = newline(text)
    end = content_end(mapping.pairs[-1][1])
    line_end = text.find("\n", end)
    if line_end == -1:
        return len(text), f"{nl}{indent}{key}: {value}"
    return line_end + 1, f"{indent}{key}: {value}{nl}"


def check_inserted(docs: list[Document], insert: InsertKey, file: str | None) -> None:
    """The parsed result: the new key must read back as the string written."""
    try:
        node = locate(docs[insert.doc], (*insert.path, insert.key), file).node
    except CatalogError as exc:
        raise CatalogError(f"adding {insert.key!r} to {format_path(insert.path)} would break the "
                           f"file: {exc.message}", file=file) from exc
    if not isinstance(node, Scalar) or node.value != insert.value:
        raise CatalogError(f"adding {insert.key!r} to {format_path(insert.path)} did not read back "
                           "as written", file=file)
