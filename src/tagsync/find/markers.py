"""Marker comments: a comment after a value names the policy that value follows.

Flux's setters (`# {"$imagepolicy": "flux-system:podinfo"}`, with `:tag`, `:name` or `:digest`
after the name for a value holding only that part) and tagsync's own `# tagsync: podinfo`
(same suffixes), in any YAML file. The name is looked up in the catalog's `markers:`, which says
which image it is and which policy picks its tag. A tag and a digest marked with the same name
in one mapping are one reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tagsync.catalog.document import Mapping, Node, Scalar
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path, format_path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, walk
from tagsync.find.model import References
from tagsync.reference import is_tag

FLUX = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}')
TAGSYNC = re.compile(r"#\s*tagsync:\s*([A-Za-z0-9._/-]+(?::[A-Za-z0-9._/-]+)*)")
SETTERS = ("tag", "name", "digest")


def has_markers(text: str) -> bool:
    return "$imagepolicy" in text or "tagsync:" in text


@dataclass(frozen=True)
class Mark:
    doc: int
    path: Path
    node: Scalar
    name: str
    setter: str  # image | tag | name | digest


def marks(catalog: Catalog) -> list[Mark]:
    """Every value followed by a marker comment on its line."""
    text = catalog.text
    out: list[Mark] = []
    for doc, document in enumerate(catalog.documents):
        for path, node in walk(document.root):
            if not isinstance(node, Scalar) or not path:
                continue
            eol = text.find("\n", node.end)
            rest = text[node.end: eol if eol >= 0 else len(text)]
            m = FLUX.match(rest.strip()) or TAGSYNC.match(rest.strip())
            if m is None:
                continue
            name, setter = m.group(1), "image"
            head, _, last = name.rpartition(":")
            if head and last in SETTERS:
                name, setter = head, last
            out.append(Mark(doc, path, node, name, setter))
    return out


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "markers")
    found = marks(catalog)
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
            before = len(f.slots)
            f.whole(mark.doc, mark.path, mark.node, policy=chosen)
            _mark(f, before, (mark,))
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
