"""A light YAML node tree that remembers where every node sits in the text.

We compose the tree ourselves from parser events (instead of `yaml.compose`) because we need
what the standard composer throws away: which node was reached through an alias, which keys
came from a merge (`<<: *default`), which anchors are actually used, and exact character
offsets. libyaml (when PyYAML was built with it) makes this fast; its marks are code-point
offsets into the decoded text, which is what we splice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from tagsync.catalog.path import WILDCARD, Path, format_path
from tagsync.errors import (
    EncodingError,
    NotAScalarError,
    PathNotFoundError,
    SharedValueError,
    YamlSyntaxError,
)

try:  # pragma: no cover - depends on how PyYAML was built
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - pure-Python fallback, same events, slower
    from yaml.loader import BaseLoader as _Parser  # type: ignore[assignment]

_BOM = "\ufeff"
MERGE_KEY = "<<"
# Collections nest at most this deep. Real manifests stay under 30 levels; the walkers that read
# the tree recurse, and a hostile `[[[[…` would otherwise end in a RecursionError.
MAX_DEPTH = 200


@dataclass(eq=False)
class Node:
    start: int
    end: int
    line: int  # 1-based
    column: int  # 1-based
    anchor: str | None


@dataclass(eq=False)
class Scalar(Node):
    value: str
    style: str  # "" plain, "'", '"', "|", ">"
    tag: str | None
    value_start: int = 0


@dataclass(eq=False)
class Sequence(Node):
    items: list[Node] = field(default_factory=list)
    flow: bool = False
    tag: str | None = None


@dataclass(eq=False)
class Mapping(Node):
    pairs: list[tuple[Node, Node]] = field(default_factory=list)
    flow: bool = False
    tag: str | None = None
    # key -> positions in `pairs`, built on the first lookup (after parsing), so that finding
    # many keys of a mapping with thousands of them stays linear
    keys: dict[str, list[int]] | None = field(default=None, repr=False)

    def positions(self, key: str) -> list[int]:
        if self.keys is None:
            self.keys = {}
            for i, (k, _) in enumerate(self.pairs):
                if isinstance(k, Scalar):
                    self.keys.setdefault(k.value, []).append(i)
        return self.keys.get(key, [])


@dataclass(eq=False)
class Alias(Node):
    name: str = ""
    target: Node | None = None


@dataclass(frozen=True)
class AnchorInfo:
    name: str
    line: int
    column: int
    used: bool


@dataclass
class Document:
    root: Node | None
    anchors: dict[int, AnchorInfo]  # id(node) -> anchor facts


@dataclass
class Located:
    """Where a path led: the node, whether it belongs to a flow collection, and what shares it."""

    node: Node
    in_flow: bool
    shared_by: AnchorInfo | None  # an anchor whose aliases would also see an edit here
    via: str | None  # why the value is shared ("alias" / "merge key"), for error messages
    parent: Node | None = None  # the collection holding the node (None for a document's root)
    key: Node | None = None  # the node's key when the parent is a mapping


def decode(data: bytes, file: str | None = None) -> tuple[str, bool]:
    """UTF-8 bytes → (text without BOM, had_bom). Non-UTF-8 input is an error with a position."""
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        raise EncodingError("file is UTF-16; only UTF-8 is supported", file=file, line=1, column=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise EncodingError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", file=file, line=line, column=column
        ) from exc
    if text.startswith(_BOM):
        return text[1:], True
    return text, False


def encode(text: str, had_bom: bool) -> bytes:
    return ((_BOM if had_bom else "") + text).encode("utf-8")


def _value_start(text: str, start: int, end: int, has_props: bool) -> int:
    """Skip `&anchor` and `!tag` properties that the event's start mark includes."""
    if not has_props:
        return start
    i = start
    while i < end and text[i] in "&!":
        while i < end and text[i] not in " \t\r\n":
            i += 1
        while i < end and text[i] in " \t\r\n":
            i += 1
    return i


def parser_for(text: str) -> tuple[Any, int]:
    """The event parser over `text`, and how far its marks fall short of offsets in `text`:
    libyaml drops a byte order mark at the start of its input without counting it, so after
    the one `decode` strips, a second one (a file saved twice with a BOM) shifts every mark."""
    shift = 1 if text.startswith(_BOM) and _Parser.__module__.startswith("yaml._yaml") else 0
    return _Parser(text), shift


def parse_documents(text: str, file: str | None = None) -> list[Document]:
    """Compose every document of a stream into our node tree."""
    docs: list[Document] = []
    stack: list[Node] = []
    pending_key: list[Node | None] = []
    anchors_by_name: dict[str, Node] = {}
    anchor_facts: dict[int, list[Any]] = {}
    root: Node | None = None

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        parent = stack[-1]
        if isinstance(parent, Sequence):
            parent.items.append(node)
        else:
            assert isinstance(parent, Mapping)
            key = pending_key[-1]
            if key is None:
                pending_key[-1] = node
            else:
                parent.pairs.append((key, node))
                pending_key[-1] = None

    def enter(node: Node) -> None:
        if len(stack) >= MAX_DEPTH:
            raise YamlSyntaxError(f"collections nested deeper than {MAX_DEPTH} levels", file=file,
                                  line=node.line, column=node.column)
        stack.append(node)

    def register(node: Node, anchor: str | None) -> None:
        if anchor:
            anchors_by_name[anchor] = node
            anchor_facts[id(node)] = [anchor, node.line, node.column, False]

    parser, shift = parser_for(text)
    try:
        while True:
            event = parser.get_event()
            if event is None:
                break
            sm, em = event.start_mark, event.end_mark
            assert sm is not None and em is not None  # both parsers always set marks
            start, end = sm.index + shift, em.index + shift
            line, column = sm.line + 1, sm.column + 1 + (shift if sm.line == 0 else 0)
            if isinstance(event, yaml.ScalarEvent):
                has_props = bool(event.anchor) or (event.tag is not None and text[start] == "!")
                scalar = Scalar(
                    start, end, line, column, event.anchor,
                    value=event.value, style=event.style or "", tag=event.tag,
                )
                scalar.value_start = _value_start(text, start, end, has_props)
                register(scalar, event.anchor)
                attach(scalar)
            elif isinstance(event, yaml.SequenceStartEvent):
                seq = Sequence(start, start, line, column, event.anchor,
                               flow=bool(event.flow_style), tag=event.tag)
                register(seq, event.anchor)
                attach(seq)
                enter(seq)
            elif isinstance(event, yaml.MappingStartEvent):
                mapping = Mapping(start, start, line, column, event.anchor,
                                  flow=bool(event.flow_style), tag=event.tag)
                register(mapping, event.anchor)
                attach(mapping)
                enter(mapping)
                pending_key.append(None)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                done = stack.pop()
                done.end = end
                if isinstance(done, Mapping):
                    pending_key.pop()
            elif isinstance(event, yaml.AliasEvent):
                target = anchors_by_name.get(event.anchor or "")
                if target is None:
                    raise YamlSyntaxError(
                        f"alias *{event.anchor} refers to an undefined anchor",
                        file=file, line=line, column=column,
                    )
                anchor_facts[id(target)][3] = True
                attach(Alias(start, end, line, column, None,
                             name=event.anchor or "", target=target))
            elif isinstance(event, yaml.DocumentEndEvent):
                facts = {k: AnchorInfo(v[0], v[1], v[2], v[3]) for k, v in anchor_facts.items()}
                docs.append(Document(root, facts))
                root = None
                anchors_by_name = {}
                anchor_facts = {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "malformed YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YamlSyntaxError(
            problem,
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.reader.ReaderError as exc:  # a NUL or other control character: say where
        before = text[: exc.position]
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlSyntaxError(
            f"character #x{char:04x} is not allowed in YAML", file=file,
            line=before.count("\n") + 1, column=exc.position - (before.rfind("\n") + 1) + 1,
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), file=file) from exc
    return docs


def pick_document(docs: list[Document], index: int, file: str | None) -> Document:
    if not docs:
        raise PathNotFoundError("the file holds no YAML document", file=file)
    if index < 0 or index >= len(docs):
        raise PathNotFoundError(
            f"document {index} does not exist (the file has {len(docs)})", file=file
        )
    return docs[index]


def _where(node: Node, file: str | None) -> dict[str, Any]:
    return {"file": file, "line": node.line, "column": node.column}


def _find_pair(mapping: Mapping, key: str, file: str | None, path: Path
               ) -> tuple[Node, Node] | None:
    if key == MERGE_KEY:
        return None
    at = mapping.positions(key)
    if len(at) > 1:
        raise PathNotFoundError(
            f"key {key!r} appears twice in this mapping ({format_path(path)}): ambiguous",
            **_where(mapping.pairs[at[1]][0], file),
        )
    return mapping.pairs[at[0]] if at else None


def _merge_sources(mapping: Mapping) -> list[tuple[Alias | Node, Mapping]]:
    """The mappings a `<<` key merges in, in YAML's precedence order."""
    sources: list[tuple[Alias | Node, Mapping]] = []
    for k, v in mapping.pairs:
        if isinstance(k, Scalar) and k.value == MERGE_KEY and k.style == "":
            items = v.items if isinstance(v, Sequence) else [v]
            for item in items:
                target = item.target if isinstance(item, Alias) else item
                if isinstance(target, Mapping):
                    sources.append((item, target))
    return sources


def _resolve_alias(node: Node) -> tuple[Node, Alias | None]:
    if isinstance(node, Alias):
        assert node.target is not None
        return node.target, node
    return node, None


def locate(doc: Document, path: Path, file: str | None = None) -> Located:
    """Follow a path; report (not refuse) whether the value is shared through an anchor.

    Reading may follow aliases and merge keys. Writers call `require_editable` afterwards.
    """
    if doc.root is None:
        raise PathNotFoundError("the document is empty", file=file)
    node: Node = doc.root
    in_flow = False
    shared: AnchorInfo | None = None
    via: str | None = None
    walked: list[Any] = []
    parent: Node | None = None
    key: Node | None = None

    def note_anchor(n: Node) -> None:
        nonlocal shared, via
        info = doc.anchors.get(id(n))
        if shared is None and info is not None and info.used:
            shared, via = info, "anchor"

    note_anchor(node)
    for seg in path:
        if seg is WILDCARD:
            raise PathNotFoundError("a wildcard [*] cannot be used here", file=file)
        walked.append(seg)
        here = tuple(walked)
        if isinstance(node, Mapping):
            in_flow = node.flow
            found = _find_pair(node, str(seg), file, here) if isinstance(seg, str) else None
            child = found[1] if found else None
            parent, key = node, found[0] if found else None
            if child is None and isinstance(seg, str):
                for origin, source in _merge_sources(node):
                    pair = _find_pair(source, seg, file, here)
                    if pair is not None:
                        parent, key = source, pair[0]
                        child = pair[1]
                        if shared is None:
                            info = doc.anchors.get(id(source))
                            if info is not None:
                                shared, via = info, "merge key"
                            elif isinstance(origin, Alias):  # pragma: no cover - defensive
                                shared = AnchorInfo(origin.name, origin.line, origin.column, True)
                                via = "merge key"
                        break
            if child is None:
                what = f"key {seg!r}" if isinstance(seg, str) else f"index [{seg}]"
                raise PathNotFoundError(
                    f"{format_path(here)}: no {what} in this mapping", **_where(node, file)
                )
        elif isinstance(node, Sequence):
            in_flow = node.flow
            if not isinstance(seg, int):
                raise PathNotFoundError(
                    f"{format_path(here)}: {seg!r} is a key but this is a sequence",
                    **_where(node, file),
                )
            if seg >= len(node.items):
                raise PathNotFoundError(
                    f"{format_path(here)}: index {seg} is out of range "
                    f"(the sequence has {len(node.items)} items)",
                    **_where(node, file),
                )
            child = node.items[seg]
            parent, key = node, None
        else:
            raise PathNotFoundError(
                f"{format_path(here)}: cannot descend into a scalar", **_where(node, file)
            )
        node, alias = _resolve_alias(child)
        if alias is not None and shared is None:
            info = doc.anchors.get(id(node))
            shared = info or AnchorInfo(alias.name, node.line, node.column, True)
            via = "alias"
        note_anchor(node)
    return Located(node, in_flow, shared, via, parent, key)


def require_editable(found: Located, path: Path, file: str | None, allow_anchor: bool) -> Scalar:
    node = found.node
    if not isinstance(node, Scalar):
        kind = "a mapping" if isinstance(node, Mapping) else "a sequence"
        raise NotAScalarError(
            f"{format_path(path)} is {kind}, not a single value", **_where(node, file)
        )
    if found.shared_by is not None:
        anchor = found.shared_by
        reached = {
            "alias": "is reached through an alias of",
            "merge key": "comes from a merge key (<<) of",
            "anchor": "lies inside",
        }[found.via or "anchor"]
        if found.via != "anchor" or not allow_anchor:
            hint = (
                " (pass allow_anchor / --allow-anchor to edit the anchor itself)"
                if found.via == "anchor"
                else f" (edit the value under &{anchor.name} itself)"
            )
            raise SharedValueError(
                f"{format_path(path)} {reached} anchor &{anchor.name} defined at line "
                f"{anchor.line}, column {anchor.column}; editing it would change every user "
                f"of that anchor{hint}",
                **_where(node, file),
            )
    return node


def to_python(node: Node | None) -> Any:
    """Plain data as a YAML 1.1 reader sees it; only used for checks and read-only lookups."""
    if node is None:
        return None
    if isinstance(node, Alias):
        return to_python(node.target)
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Sequence):
        return [to_python(i) for i in node.items]
    assert isinstance(node, Mapping)
    out: dict[Any, Any] = {}
    for _, source in reversed(_merge_sources(node)):
        out.update(to_python(source))
    for k, v in node.pairs:
        if isinstance(k, Scalar) and k.value == MERGE_KEY and k.style == "":
            continue
        out[to_python(k)] = to_python(v)
    return out
