"""Change values in YAML text without touching any other byte.

The approach: parse once to learn where each target scalar starts and ends, render each new
value in a style that keeps its meaning, and splice the pieces together. Nothing is re-emitted,
so comments, anchors, indentation, quoting, line endings and key order stay as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tagsync.catalog.append import Append, check_appended, plan_append
from tagsync.catalog.block import splice_block
from tagsync.catalog.document import (
    Document,
    Located,
    Node,
    Scalar,
    decode,
    encode,
    locate,
    parse_documents,
    pick_document,
    require_editable,
    to_python,
)
from tagsync.catalog.document import (
    Sequence as SeqNode,
)
from tagsync.catalog.insert import InsertKey, check_inserted, plan_insert
from tagsync.catalog.path import Path, format_path, parse_path
from tagsync.catalog.scalar import render_scalar
from tagsync.errors import (
    EditConflictError,
    NotAScalarError,
    SharedValueError,
    UnsupportedScalarError,
)

_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Edit:
    """Set the scalar at `path` (in document `doc`) to the string `value`."""

    path: Path
    value: str
    doc: int = 0

    @classmethod
    def parse(cls, path: str, value: str, doc: int = 0) -> Edit:
        return cls(parse_path(path), value, doc)


@dataclass(frozen=True)
class Splice:
    start: int
    end: int
    text: str
    edit: Edit | Append | InsertKey
    old: str
    block: bool = False  # inside a block scalar: the result is re-parsed


class Catalog:
    """A parsed YAML file: its text and node trees, ready for lookups and edits."""

    def __init__(self, data: bytes | str, file: str | None = None) -> None:
        self.file = file
        if isinstance(data, bytes):
            self.text, self.had_bom = decode(data, file)
        else:
            self.had_bom = data.startswith("\ufeff")
            self.text = data[1:] if self.had_bom else data
        self.documents: list[Document] = parse_documents(self.text, file)

    def document(self, index: int = 0) -> Document:
        return pick_document(self.documents, index, self.file)

    def locate(self, path: Path, doc: int = 0) -> Located:
        return locate(self.document(doc), path, self.file)

    def get(self, path: Path, doc: int = 0) -> str:
        found = self.locate(path, doc)
        if not isinstance(found.node, Scalar):
            raise NotAScalarError(
                f"{format_path(path)} is a collection, not a single value",
                file=self.file, line=found.node.line, column=found.node.column,
            )
        return found.node.value

    def plan_splice(self, edit: Edit, allow_anchor: bool = False) -> Splice | None:
        """Where and what to write for one edit; None when the value is already right."""
        found = self.locate(edit.path, edit.doc)
        node = require_editable(found, edit.path, self.file, allow_anchor)
        if node.style in ("|", ">"):
            if node.value == edit.value:
                return None
            block = splice_block(self.text, node, edit.value)
            if block is None:
                raise UnsupportedScalarError(
                    f"{format_path(edit.path)} is a block scalar ({node.style}) and the new value "
                    "cannot be written in it without changing its header (a change across lines "
                    "of a folded scalar, or an ending its chomping indicator does not allow)",
                    file=self.file, line=node.line, column=node.column,
                )
            start, end, text = block
            return Splice(start, end, text, edit, node.value, block=True)
        if node.tag is not None and node.tag not in (_STR_TAG, "!"):
            raise UnsupportedScalarError(
                f"{format_path(edit.path)} carries the tag {node.tag}; refusing to write a "
                "string under it",
                file=self.file, line=node.line, column=node.column,
            )
        rendered = render_scalar(edit.value, node.style, found.in_flow)
        # "Already right" means it already reads as that string: plain `1e3` has the right
        # text but is a float to YAML 1.2 readers, and `key:` is null, not "".
        if node.value == edit.value and (node.style or rendered == edit.value):
            return None
        start, end = node.value_start, node.end
        if start == end and (start == 0 or self.text[start - 1] not in " \t"):
            rendered = " " + rendered  # empty value right after `key:` or `-`
        return Splice(start, end, rendered, edit, node.value)

    def apply(self, edits: Iterable[Edit | Append | InsertKey], allow_anchor: bool = False) -> str:
        """The new text with every edit applied, or an error and no partial result."""
        splices: dict[int, Splice] = {}
        inserts: list[Splice] = []
        grown: dict[tuple[int, Path], list[Append]] = {}
        keyed: list[InsertKey] = []
        for edit in edits:
            if isinstance(edit, InsertKey | Append):
                target = self._unshared(edit.path, edit.doc)
                if isinstance(edit, InsertKey):
                    at, text = plan_insert(self.text, target, edit, self.file)
                    keyed.append(edit)
                else:
                    at, text = plan_append(self.text, target, edit, self.file)
                    grown.setdefault((edit.doc, edit.path), []).append(edit)
                inserts.append(Splice(at, at, text, edit, ""))
                continue
            splice = self.plan_splice(edit, allow_anchor)
            if splice is None:
                continue
            other = splices.get(splice.start)
            if other is not None and other.text != splice.text:
                assert isinstance(other.edit, Edit)  # insertions are kept apart
                assert isinstance(edit, Edit)
                raise EditConflictError(
                    f"{format_path(edit.path)} is edited twice with different values "
                    f"({other.edit.value!r} and {edit.value!r})",
                    file=self.file,
                )
            splices[splice.start] = splice
        ordered = sorted([*inserts, *splices.values()], key=lambda s: (s.start, s.end > s.start))
        new_text = splice_text(self.text, ordered)
        for (doc, path), appends in grown.items():
            before = self.locate(path, doc).node
            assert isinstance(before, SeqNode)
            expected = [a if a.entry is None else Append(a.path, a.values, a.entry, a.doc,
                                                         _entry_value(a.entry)) for a in appends]
            check_appended(new_text, doc, path, len(before.items), expected, self.file)
        for insert in keyed:
            check_inserted(new_text, insert, self.file)
        blocks = [s.edit for s in splices.values() if s.block and isinstance(s.edit, Edit)]
        if blocks:
            _check_blocks(new_text, blocks, self.file)
        return new_text

    def _unshared(self, path: Path, doc: int) -> Node:
        """The collection at `path`, which gains an item or a key: never one an anchor shares."""
        found = self.locate(path, doc)
        if found.shared_by is not None:
            raise SharedValueError(
                f"{format_path(path)} is shared through anchor &{found.shared_by.name}; "
                "adding to it would change every user of that anchor",
                file=self.file, line=found.node.line, column=found.node.column)
        return found.node

    def render(self, text: str) -> bytes:
        """Encode edited text the way the file was (UTF-8, BOM kept)."""
        return encode(text, self.had_bom)


def _check_blocks(new_text: str, edits: list[Edit], file: str | None) -> None:
    """A block scalar edited in place must read back as exactly the new value."""
    docs = parse_documents(new_text, file)
    for edit in edits:
        node = locate(docs[edit.doc], edit.path, file).node
        if not isinstance(node, Scalar) or node.value != edit.value:
            raise UnsupportedScalarError(
                f"{format_path(edit.path)}: the block scalar would not read back as the new value",
                file=file)


def _entry_value(entry: str) -> object:
    return to_python(parse_documents(entry, "template")[0].root)


def splice_text(text: str, ordered: Sequence[Splice]) -> str:
    pieces: list[str] = []
    pos = 0
    for s in ordered:
        pieces.append(text[pos : s.start])
        pieces.append(s.text)
        pos = s.end
    pieces.append(text[pos:])
    return "".join(pieces)


def get_value(data: bytes | str, path: str | Path, doc: int = 0, file: str | None = None) -> str:
    parsed = parse_path(path) if isinstance(path, str) else path
    return Catalog(data, file).get(parsed, doc)


def apply_edits(
    data: bytes,
    edits: Iterable[Edit],
    *,
    file: str | None = None,
    allow_anchor: bool = False,
) -> bytes:
    """Bytes in, bytes out: the whole engine behind one call."""
    catalog = Catalog(data, file)
    return catalog.render(catalog.apply(edits, allow_anchor))
