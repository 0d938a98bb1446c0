"""Marker comments: a comment after a value names the policy that value follows.

Flux's setters (`# {"$imagepolicy": "flux-system:podinfo"}`, with `:tag`, `:name` or `:digest`
after the name for a value holding only that part) and tagsync's own `# tagsync: podinfo`
(same suffixes), in any YAML file. The name is looked up in the catalog's `markers:`, which says
which image it is and which policy picks its tag. A tag and a digest marked with the same name
in one mapping are one reference.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tagsync.catalog.document import Mapping, Node, Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path, format_path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, parts, walk
from tagsync.find.model import References
from tagsync.reference import is_tag

TAGSYNC = re.compile(r"tagsync:\s*([A-Za-z0-9._/-]+(?::[A-Za-z0-9._/-]+)*)")
SETTERS = ("tag", "name", "digest")
# A whole-reference marker on `1.0.0` or `v2.3`: a tag, which would read as docker.io/library/1.0.0.
_LOOKS_LIKE_TAG = re.compile(r"v?[0-9][A-Za-z0-9._-]*")


def looks_like_markers(text: str) -> Iterator[tuple[int, str]]:
    r"""(offset, text to the end of the line) of each comment that looks like a marker, on any
    line (strict reading is `marker_name`'s job): per line, the first `#` at its start or after
    a blank, then blanks, then `{` with `$imagepolicy` later on the line, or `tagsync:`. What
    the regular expression `(?:^|[ \t])#[ \t]*(\{.*\$imagepolicy.*|tagsync:.*)$` finds, in
    time linear in the line: that one rescanned the rest of the line from every `#`, and a
    repository's line of ` #{` repeated took minutes."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end]
        policy = line.rfind("$imagepolicy")
        hash_at = line.find("#")
        while hash_at >= 0:
            if hash_at == 0 or line[hash_at - 1] in " \t":
                j = hash_at + 1
                while j < len(line) and line[j] in " \t":
                    j += 1
                if (line.startswith("{", j) and policy > j) or line.startswith("tagsync:", j):
                    yield start + j, line[j:]
                    break
            hash_at = line.find("#", hash_at + 1)
        start = end + 1


def has_markers(text: str) -> bool:
    return "$imagepolicy" in text or "tagsync:" in text


@dataclass(frozen=True)
class Mark:
    doc: int
    path: Path
    node: Scalar
    name: str
    setter: str  # image | tag | name | digest


@dataclass(frozen=True)
class Stray:
    """A marker comment tagsync does not act on, and why (a note at `path` when set)."""

    doc: int
    path: Path | None
    node: Node
    reason: str


def marker_name(comment: str) -> str | Exception | None:
    """The name a comment (the text after `#`) marks: Flux's JSON object
    `{"$imagepolicy": "ns:name[:setter]"}` alone, or `tagsync: name[:setter]` alone. None when
    it is not a marker at all; an exception (why) when it looks like one but is not exact."""
    body = comment.strip()
    if body.startswith("{") and "$imagepolicy" in body:
        try:
            data = json.loads(body)
        except ValueError:
            return ValueError("not one JSON object (Flux reads nothing else on the line)")
        if (not isinstance(data, dict) or list(data) != ["$imagepolicy"]
                or not isinstance(data["$imagepolicy"], str) or not data["$imagepolicy"]):
            return ValueError('not `{"$imagepolicy": "namespace:name"}`')
        return str(data["$imagepolicy"])
    if body.startswith("tagsync:"):
        m = TAGSYNC.fullmatch(body)
        return m.group(1) if m else ValueError("not `tagsync: name` (nothing else on the line)")
    return None


def marks(catalog: Catalog) -> tuple[list[Mark], list[Stray]]:
    """Every value followed by a marker comment on its line, and every marker comment that
    cannot be followed (not exact, or after a value that cannot hold a reference)."""
    text = catalog.text
    out: list[Mark] = []
    strays: list[Stray] = []
    seen: set[int] = set()  # lines whose marker was read
    starts = [0] + [m.end() for m in re.finditer("\n", text)]  # offset -> line by bisection

    def line_of(offset: int) -> int:
        return bisect.bisect_right(starts, offset) - 1
    for doc, document in enumerate(catalog.documents):
        for path, node in walk(document.root):
            if not isinstance(node, Scalar) or not path or node.style in ("|", ">"):
                continue
            eol = text.find("\n", node.end)
            rest = text[node.end: eol if eol >= 0 else len(text)].strip()
            if not rest.startswith("#"):
                continue
            found = marker_name(rest[1:])
            if found is None:
                continue
            seen.add(line_of(node.end))
            if isinstance(found, Exception):
                strays.append(Stray(doc, path, node, f"marker comment not read: {found}"))
                continue
            name, setter = found, "image"
            head, _, last = name.rpartition(":")
            if head and last in SETTERS:
                name, setter = head, last
            out.append(Mark(doc, path, node, name, setter))
    holders: dict[int, tuple[int, Path, Node]] | None = None
    for offset, comment in looks_like_markers(text):
        line = line_of(offset)
        if line in seen or marker_name(comment) is None:
            continue
        holders = holders if holders is not None else _holders(catalog)
        if line + 1 in holders:
            doc, path, node = holders[line + 1]
            what = ("a block scalar (| or >)" if isinstance(node, Scalar) else
                    "a mapping" if isinstance(node, Mapping) else "a list")
            strays.append(Stray(doc, path, node, f"marker comment after {what}, which cannot hold "
                                "an image reference: a marker goes after a single value"))
    return out, strays


def _holders(catalog: Catalog) -> dict[int, tuple[int, Path, Node]]:
    """By line: the value a comment there follows when it is not a single-line value (a block
    scalar, or a flow collection, starting on that line). A comment on a line of its own has
    none."""
    out: dict[int, tuple[int, Path, Node]] = {}
    for doc, document in enumerate(catalog.documents):
        for path, node in walk(document.root):
            if path and node.line not in out and (
                    (isinstance(node, Scalar) and node.style in ("|", ">"))
                    or (isinstance(node, (Mapping, Sequence)) and node.flow)):
                out[node.line] = (doc, path, node)
    return out


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "markers")
    found, strays = marks(catalog)
    for stray in strays:
        f.note(stray.doc, stray.path, stray.node, stray.reason, value="")
    parents: dict[tuple[int, Path], Node] = {}
    for doc, document in enumerate(catalog.documents):
        for path, node in walk(document.root):
            if isinstance(node, Mapping):
                parents[(doc, path)] = node
    siblings: dict[tuple[int, Path, str], list[Mark]] = {}  # (doc, mapping, name) -> its marks
    for mark in found:
        siblings.setdefault((mark.doc, mark.path[:-1], mark.name), []).append(mark)
    for mark in found:
        policy = cfg.markers.get(mark.name)
        label = f"marker {mark.name}" + (f":{mark.setter}" if mark.setter != "image" else "")
        if policy is None:
            f.note(mark.doc, mark.path, mark.node,
                   f"{label} names a policy that `markers:` in the config does not define")
            continue
        chosen = policy.policy.to_policy()
        if mark.setter == "image":
            if _LOOKS_LIKE_TAG.fullmatch(mark.node.value):
                f.note(mark.doc, mark.path, mark.node, f"{label} marks {mark.node.value!r}, which "
                       "reads as a tag, not an image: a value holding only the tag takes `:tag`",
                       policy.image, mark.node.value)
                continue
            before = len(f.slots)
            f.whole(mark.doc, mark.path, mark.node, policy=chosen, follows=policy.image)
            _mark(f, before, (mark,))
            written = parts(mark.node.value)[0]
            if len(f.slots) > before and written not in ("?", str(f.slots[-1].image)):
                f.warnings.append(
                    f"{f.file}:{mark.node.line}: {label} follows {policy.image} (its `markers:` "
                    f"entry) but the value names {written}: the next update writes "
                    f"{policy.image}, as Flux does")
        elif mark.setter == "name":
            f.note(mark.doc, mark.path, mark.node,
                   f"{label}: the image name is not changed (tagsync follows {policy.image})",
                   policy.image)
        elif mark.setter == "tag" or not any(
                m.setter == "tag" for m in siblings[(mark.doc, mark.path[:-1], mark.name)]):
            parent = parents.get((mark.doc, mark.path[:-1]))
            key = mark.path[-1]
            if parent is None or not isinstance(key, str):
                f.note(mark.doc, mark.path, mark.node, f"{label}: a marked part must be a "
                       "mapping's value", policy.image)
                continue
            if (mark.setter == "tag" and isinstance(mark.node, Scalar) and mark.node.value
                    and not is_tag(mark.node.value)):
                f.note(mark.doc, mark.path, mark.node, f"{label} marks {mark.node.value!r}, "
                       "which is not a tag (a whole reference takes the marker without `:tag`)",
                       policy.image)
                continue
            partner = next((m for m in siblings[(mark.doc, mark.path[:-1], mark.name)]
                            if m.setter == "digest" and m is not mark), None)
            tag_key = key if mark.setter == "tag" else None
            digest_key = key if mark.setter == "digest" else (
                str(partner.path[-1]) if partner is not None else None)
            group = (mark, partner) if partner is not None else (mark,)
            before = len(f.slots)
            f.split(mark.doc, mark.path[:-1], parent, policy.image, tag_key, digest_key,
                    policy=chosen, insert_key=None)
            _mark(f, before, group)
    return f.references()


def _mark(f: Finder, before: int, group: tuple[Mark, ...]) -> None:
    """The slot just made answers to these marked values (reports list each of them)."""
    from dataclasses import replace

    if len(f.slots) > before:
        slot = f.slots[-1]
        f.slots[-1] = replace(slot, entry=None if slot.ref is not None else group[0].path,
                              marks=tuple((format_path(m.path), m.node.line, m.node.value) for m in group))
