"""The last word on every edit: parse the new text and compare it with the old, node by node.

Rules that choose how to write a value are right most of the time; this check cannot be wrong
about what it checks. The new text must parse; every edited scalar must read as exactly its new
string (typed a string by YAML 1.1 and 1.2 readers alike); every other node must read as before
(structure, values, how each scalar resolves, tags, anchors, aliases); lists may only grow at the
end where an item was appended, mappings only by the keys inserted. Otherwise the engine refuses
and nothing is written. One parse of the result serves every check of one `Catalog.apply`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tagsync.catalog.document import (
    Alias,
    Document,
    Mapping,
    Node,
    Scalar,
    Sequence,
    locate,
)
from tagsync.catalog.path import Path, format_path
from tagsync.catalog.scalar import resolves_to_string
from tagsync.errors import CatalogError, ReadBackError

STR_TAG = "tag:yaml.org,2002:str"


def reads_as_string(node: Scalar) -> bool:
    """Whether YAML 1.1 and 1.2 readers both take this scalar as the string `node.value`.

    Under the non-specific tag `!`, PyYAML resolves even a quoted value by its text (`! "1.10"`
    is a float there, a string to the spec), so the text itself must be string-like.
    """
    if node.tag == STR_TAG:
        return True
    if node.tag == "!":
        return node.value != "" and resolves_to_string(node.value)
    if node.tag is not None:
        return False
    if node.style:
        return True
    return node.value != "" and resolves_to_string(node.value)


def check_read_back(
    old: list[Document],
    new: list[Document],
    values: Iterable[tuple[int, Path, str]],
    grown: Iterable[tuple[int, Path, int]],
    keyed: Iterable[tuple[int, Path, int]],
    file: str | None,
) -> None:
    """Raise `ReadBackError` unless `new` is `old` with exactly these changes.

    `values`: (document, path, new string) per edited scalar; `grown`: (document, path, items
    appended) per list; `keyed`: (document, path, keys inserted) per mapping.
    """
    if len(old) != len(new):
        raise ReadBackError(f"the edited text holds {len(new)} documents instead of {len(old)}",
                            file=file)
    edited: dict[int, tuple[Path, str]] = {}
    extra: dict[int, int] = {}
    try:
        for doc, path, value in values:
            node = locate(new[doc], path, file).node
            if not isinstance(node, Scalar) or node.value != value or not reads_as_string(node):
                got = node.value if isinstance(node, Scalar) else type(node).__name__.lower()
                raise ReadBackError(
                    f"{format_path(path)} would read back as {got!r} "
                    f"{'' if isinstance(node, Scalar) and reads_as_string(node) else '(not a string) '}"
                    f"instead of the string {value!r}", file=file, line=node.line,
                    column=node.column)
            edited[id(node)] = (path, value)
        for doc, path, count in [*grown, *keyed]:
            extra[id(locate(new[doc], path, file).node)] = count
    except ReadBackError:
        raise
    except CatalogError as exc:
        raise ReadBackError(f"the edited text no longer has the edited path: {exc.message}",
                            file=file) from exc
    for before, after in zip(old, new, strict=True):
        _same(before.root, after.root, edited, extra, file)


def _differs(node: Node, what: str, file: str | None) -> ReadBackError:
    return ReadBackError(f"the edit would change how another value reads ({what}, line "
                         f"{node.line}, column {node.column} of the edited text)", file=file,
                         line=node.line, column=node.column)


def _same(a: Node | None, b: Node | None, edited: dict[int, tuple[Path, str]],
          extra: dict[int, int], file: str | None) -> None:
    """Walk both trees together (iteratively: a deep tree must not hit the recursion limit)."""
    stack: list[tuple[Node | None, Node | None]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is None or y is None:
            if x is not y:
                raise _differs(y or x, "a document appeared or vanished", file)  # type: ignore[arg-type]
            continue
        if type(x) is not type(y) or x.anchor != y.anchor or getattr(x, "tag", None) != getattr(
                y, "tag", None):
            raise _differs(y, "its kind, tag or anchor", file)
        if isinstance(x, Scalar):
            assert isinstance(y, Scalar)
            if id(y) in edited:
                continue
            if (x.value, x.style == "") != (y.value, y.style == ""):
                raise _differs(y, f"{x.value!r} would read as {y.value!r}", file)
        elif isinstance(x, Alias):
            assert isinstance(y, Alias)
            if x.name != y.name:
                raise _differs(y, "an alias", file)
        elif isinstance(x, Sequence):
            assert isinstance(y, Sequence)
            if len(y.items) != len(x.items) + extra.get(id(y), 0):
                raise _differs(y, "the number of items of a list", file)
            stack.extend(zip(x.items, y.items[:len(x.items)], strict=True))
        else:
            assert isinstance(x, Mapping) and isinstance(y, Mapping)
            if len(y.pairs) != len(x.pairs) + extra.get(id(y), 0):
                raise _differs(y, "the number of keys of a mapping", file)
            for (k1, v1), (k2, v2) in zip(x.pairs, y.pairs[:len(x.pairs)], strict=True):
                stack.append((k1, k2))
                stack.append((v1, v2))
