"""Change values in YAML text without touching any other byte.

The approach: parse once to learn where each target scalar starts and ends, render each new
value in a style that keeps its meaning, and splice the pieces together. Nothing is re-emitted,
so comments, anchors, indentation, quoting, line endings and key order stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tagsync.catalog.append import Append, check_appended, content_end, newline, plan_append
from tagsync.catalog.block import splice_block
from tagsync.catalog.document import (
    Document,
    Located,
    Mapping,
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
from tagsync.catalog.readback import check_read_back
from tagsync.catalog.scalar import render_scalar, resolves_to_string
from tagsync.errors import (
    EditConflictError,
    NotAScalarError,
    SharedValueError,
    UnsupportedScalarError,
)

_STR_TAG = "tag:yaml.org,2002:str"
_SET_TAG = "tag:yaml.org,2002:set"
_COMMENT = re.compile(r"(?:^|(?<=[ \t\n]))#[^\n]*")


def _has_value_indicator(between: str) -> bool:
    """Whether the text between a key and its (empty) value holds the `:` that separates them."""
    return ":" in _COMMENT.sub("", between)


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
    node: Scalar | None = None  # the scalar an edit rewrites


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
        where: dict[str, Any] = {"file": self.file, "line": node.line, "column": node.column}
        _refuse_unreadable(found, node, edit, where)
        if node.style in ("|", ">"):
            tail = self.text[self.text.rfind("\n") + 1:]
            if tail and not self.text[node.end:].strip() and not tail.strip():
                raise UnsupportedScalarError(
                    f"{format_path(edit.path)} is a block scalar ending the file with a line of "
                    "blanks and no line break, which YAML readers read differently", **where)
            if node.value == edit.value:
                return None
            block = splice_block(self.text, node, edit.value, _block_indent(self.text, found))
            if block is None:
                raise UnsupportedScalarError(
                    f"{format_path(edit.path)} is a block scalar ({node.style}) and the new value "
                    "cannot be written in it (an empty value, more than one trailing line "
                    "break, or in a folded scalar a line that starts with a space)", **where)
            start, end, text = block
            return Splice(start, end, text, edit, node.value, node)
        rendered = render_scalar(edit.value, node.style, found.in_flow)
        # "Already right" means it already reads as that string: plain `1e3` has the right
        # text but is a float to YAML 1.2 readers, and `key:` is null, not "".
        if node.value == edit.value and (node.style or rendered == edit.value):
            return None
        if node.value_start == node.end:
            start, end, rendered = self._fill_empty(found, node, rendered, edit)
        else:
            start, end = node.value_start, node.end
        return Splice(start, end, rendered, edit, node.value, node)

    def _fill_empty(self, found: Located, node: Scalar, rendered: str, edit: Edit
                    ) -> tuple[int, int, str]:
        """Write a value where there was none: what goes there depends on what precedes it.

        After `key:` or `-` (or a property) the value follows a space. After a key with no `:`
        (`? key` in a block mapping, `{ key, ...}` in a flow one) the parser puts the empty
        value at the next token, so `: value` goes right after the key: on a line of its own
        under the `?` in a block mapping. An empty document gets its value on a line of its own.
        """
        text, at = self.text, node.value_start
        parent, key = found.parent, found.key
        if isinstance(parent, Mapping) and key is not None:
            key_end = content_end(key)
            if not _has_value_indicator(text[key_end:at]):
                question = key.start - 1
                while question >= 0 and text[question] in " \t\r\n":
                    question -= 1
                explicit = question >= 0 and text[question] == "?"
                if "\n" in text[key.start:key_end] and not explicit:
                    raise UnsupportedScalarError(
                        f"{format_path(edit.path)} is an empty value whose key spans lines: a "
                        "`:` after it would not make it a key (implicit keys fit on one line)",
                        file=self.file, line=key.line, column=key.column)
                if parent.flow:
                    if text[key.start - 1:key.start] == "?":
                        raise UnsupportedScalarError(
                            f"{format_path(edit.path)}: `{text[key.start - 1:key_end]}` in a flow "
                            "collection is a key to some YAML readers (PyYAML) and a plain "
                            "scalar to others",
                            file=self.file, line=key.line, column=key.column)
                    return key_end, key_end, ": " + rendered
                if not explicit:
                    raise UnsupportedScalarError(
                        f"{format_path(edit.path)} is an empty value with no `:` after its key; "
                        "cannot tell where to write one", file=self.file, line=node.line,
                        column=node.column)
                indent = question - (text.rfind("\n", 0, question) + 1)
                eol = text.find("\n", key_end)
                eol = len(text) if eol < 0 else eol - (text[eol - 1] == "\r")
                return eol, eol, f"{newline(text)}{' ' * indent}: {rendered}"
        if parent is None and (at == 0 or text[at - 1] == "\n"):
            return at, at, rendered + newline(text)
        if at == 0 or text[at - 1] not in " \t":
            rendered = " " + rendered  # empty value right after `key:` or `-`
        return at, at, rendered

    def apply(self, edits: Iterable[Edit | Append | InsertKey], allow_anchor: bool = False) -> str:
        """The new text with every edit applied, or an error and no partial result.

        The result is parsed once and compared with the original (`readback`): whatever rule
        chose the text, what is returned reads as intended or is refused.
        """
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
        if not splices and not inserts:
            return self.text
        ordered = sorted([*inserts, *splices.values()], key=lambda s: (s.start, s.end > s.start))
        new_text = splice_text(self.text, ordered)
        edited: dict[tuple[int, int], tuple[str, str]] = {}
        for splice in splices.values():
            assert isinstance(splice.edit, Edit) and splice.node is not None
            edited[(splice.node.start, splice.node.end)] = (splice.edit.value,
                                                            format_path(splice.edit.path))
        extra: dict[tuple[type, int], int] = {}
        for insert in keyed:
            start = self.locate(insert.path, insert.doc).node.start
            extra[(yaml.MappingStartEvent, start)] = extra.get((yaml.MappingStartEvent, start), 0) + 1
        for (doc, path), appends in grown.items():
            extra[(yaml.SequenceStartEvent, self.locate(path, doc).node.start)] = len(appends)
        check_read_back(self.text, new_text, edited, extra, self.file)
        if grown or keyed:
            docs = parse_documents(new_text, self.file)
            for (doc, path), appends in grown.items():
                before = self.locate(path, doc).node
                assert isinstance(before, SeqNode)
                expected = [a if a.entry is None else Append(a.path, a.values, a.entry, a.doc,
                                                             _entry_value(a.entry)) for a in appends]
                check_appended(docs, doc, path, len(before.items), expected, self.file)
            for insert in keyed:
                check_inserted(docs, insert, self.file)
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


def _block_indent(text: str, found: Located) -> int | None:
    """The indentation YAML counts a block scalar's indentation indicator from: the column of
    its key or of its `-` (-1 for a document's root); None where it is not that simple."""
    parent = found.parent
    if parent is None:
        return -1
    if isinstance(parent, Mapping) and found.key is not None:
        before = text[found.key.start - 2:found.key.start] if found.key.start >= 2 else ""
        return None if "?" in before else found.key.column - 1
    at = found.node.start - 1
    while at >= 0 and text[at] in " \t":
        at -= 1
    if at < 0 or text[at] != "-":
        return None
    return at - (text.rfind("\n", 0, at) + 1)


def _refuse_unreadable(found: Located, node: Scalar, edit: Edit, where: dict[str, Any]) -> None:
    """Places where no text reads as the new string for every YAML reader: said up front, with
    the reason (the read-back would refuse them too, less clearly)."""
    if isinstance(found.parent, Mapping) and found.parent.tag == _SET_TAG:
        raise UnsupportedScalarError(
            f"{format_path(edit.path)} is a member of a !!set, whose values stay empty "
            "(null); a set has no value to write", **where)
    if node.tag is not None and node.tag not in (_STR_TAG, "!"):
        raise UnsupportedScalarError(
            f"{format_path(edit.path)} carries the tag {node.tag}; refusing to write a "
            "string under it", **where)
    if node.tag == "!" and (not edit.value or not resolves_to_string(edit.value)):
        raise UnsupportedScalarError(
            f"{format_path(edit.path)} carries the non-specific tag `!`, under which YAML 1.1 "
            f"readers (PyYAML) resolve {edit.value!r} by its text, even quoted: it would not "
            "read as a string everywhere", **where)


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
