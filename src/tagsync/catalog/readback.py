"""The last word on every edit: parse the new text and compare it with the old, event by event.

Rules that choose how to write a value are right most of the time; this check cannot be wrong
about what it checks. The new text must parse; every edited scalar must read as exactly its new
string (typed a string by YAML 1.1 and 1.2 readers alike); every other node must read as before
(structure, values, how each scalar resolves, tags, anchors, aliases, directives); lists may only
grow at their end where items were appended, mappings only by the keys inserted. Otherwise the
engine refuses and nothing is written.

Both texts go through the parser's event stream side by side, without building node trees: on
a 2 MB catalog that costs about a third of composing the new text into a tree.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from typing import Any

import yaml

from tagsync.catalog.document import parser_for
from tagsync.catalog.scalar import resolves_to_string
from tagsync.errors import ReadBackError, YamlSyntaxError

STR_TAG = "tag:yaml.org,2002:str"
_START = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def reads_as_string(value: str, style: str, tag: str | None) -> bool:
    """Whether YAML 1.1 and 1.2 readers both take this scalar as the string `value`.

    Under the non-specific tag `!`, PyYAML resolves even a quoted value by its text (`! "1.10"`
    is a float there, a string to the spec), so the text itself must be string-like.
    """
    if tag == STR_TAG:
        return True
    if tag is not None and tag != "!":
        return False
    if style and tag is None:
        return True
    return value != "" and resolves_to_string(value)


def check_read_back(
    old_text: str,
    new_text: str,
    edited: MappingType[tuple[int, int], tuple[str, str]],
    grown: MappingType[tuple[type, int], int],
    file: str | None,
) -> None:
    """Raise `ReadBackError` unless `new_text` reads as `old_text` with exactly these changes.

    `edited`: the new value (and the path, for messages) of each edited scalar, by its
    (start, end) in the old text. `grown`: how many items (or keys) each collection gains at its
    end, by (start event type, start offset) in the old text.
    """
    (old, shift), (new, _) = parser_for(old_text), parser_for(new_text)
    stack: list[int] = []  # items (keys) each open collection of the old text gains
    pending = dict(edited)
    a: Any
    b: Any
    try:
        while True:
            a, b = old.get_event(), new.get_event()
            if a is None or b is None:
                if a is not b:
                    raise ReadBackError("the edited text ends at another place than the original",
                                        file=file)
                break
            kind = type(a)
            if kind is yaml.ScalarEvent:  # most events: compared inline, the rest by signature
                if pending:
                    key = (a.start_mark.index + shift, a.end_mark.index + shift)
                    if key in pending:
                        value, path = pending.pop(key)
                        _check_edited(a, b, value, path, file)
                        continue
                if (type(b) is not kind or a.value != b.value or a.tag != b.tag
                        or a.anchor != b.anchor or (not a.style) != (not b.style)):
                    raise _differs(a, b, file)
                continue
            if kind in _START:
                mark: Any = a.start_mark
                stack.append(grown.get((kind, mark.index + shift), 0))
            elif kind in _END:
                extra = stack.pop()
                if extra:
                    b = _skip_items(new, b, extra, file)
            if _signature(a) != _signature(b):
                raise _differs(a, b, file)
    except (yaml.YAMLError, YamlSyntaxError) as exc:
        raise ReadBackError(f"the edited text would not be valid YAML ({exc}); nothing was "
                            "written", file=file) from exc
    if pending:  # pragma: no cover - every edited scalar is an event of the old text
        raise ReadBackError("an edited value was not found again in the original", file=file)


def _skip_items(new: Any, b: Any, extra: int, file: str | None) -> Any:
    """Consume the `extra` appended nodes (a mapping's keys count as two) up to the end event."""
    nodes = depth = 0
    while not (depth == 0 and isinstance(b, _END)):
        if depth == 0:
            nodes += 1
        if isinstance(b, _START):
            depth += 1
        elif isinstance(b, _END):
            depth -= 1
        b = new.get_event()
        if b is None:
            raise ReadBackError("the edited text ends inside an added item", file=file)
    want = extra * (2 if isinstance(b, yaml.MappingEndEvent) else 1)
    if nodes != want:
        mark: Any = b.start_mark
        raise ReadBackError(f"the edit adds {nodes} nodes where {want} were expected", file=file,
                            line=mark.line + 1, column=mark.column + 1)
    return b


def _check_edited(a: Any, b: Any, value: str, path: str, file: str | None) -> None:
    where = {"file": file, "line": b.start_mark.line + 1, "column": b.start_mark.column + 1}
    if not isinstance(b, yaml.ScalarEvent):
        raise ReadBackError(f"{path} would no longer read as a single value", **where)
    if b.value != value:
        raise ReadBackError(f"{path} would read back as {b.value!r} instead of {value!r}", **where)
    if not reads_as_string(b.value, b.style or "", b.tag):
        raise ReadBackError(f"{path} would read back as {value!r} but not as a string for every "
                            "YAML 1.1 and 1.2 reader", **where)
    if b.anchor != a.anchor:
        raise ReadBackError(f"{path} would lose or change its anchor", **where)


def _signature(event: Any) -> tuple[Any, ...]:
    """What a reader takes from an event (not where it sits, nor how it was quoted, except
    plain or not: that decides how a scalar resolves)."""
    kind = type(event)
    if kind is yaml.ScalarEvent:
        return kind, event.value, event.tag, event.anchor, not event.style
    if kind in (yaml.SequenceStartEvent, yaml.MappingStartEvent):
        return kind, event.tag, event.anchor
    if kind is yaml.AliasEvent:
        return kind, event.anchor
    if kind is yaml.DocumentStartEvent:
        return kind, event.version, event.tags
    return (kind,)


def _differs(a: Any, b: Any, file: str | None) -> ReadBackError:
    what = (f"{a.value!r} would read as {b.value!r}"
            if isinstance(a, yaml.ScalarEvent) and isinstance(b, yaml.ScalarEvent)
            else f"a {type(a).__name__.removesuffix('Event')} would become a "
                 f"{type(b).__name__.removesuffix('Event')}")
    return ReadBackError(f"the edit would change how another part of the file reads ({what})",
                         file=file, line=b.start_mark.line + 1, column=b.start_mark.column + 1)
