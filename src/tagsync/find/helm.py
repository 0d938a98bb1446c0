"""Helm values: image mappings (`repository` + `tag`, with `registry` and `digest`) at any depth,
and whole references under `image:` keys.

Charts spell images many ways; the rules below follow what charts in the wild do. An image-like
key (`image`, `*Image`) holding a mapping with any image field is one image; elsewhere a mapping
with `repository` and `tag` is. An empty `tag` means the chart's appVersion and is never filled.
`sha` (a bare hex digest some charts use) is recognised but not written. A `registry` that is
not one plain value (a mapping, a list) is left alone with a note: reading the image without it
would name the wrong host, and its digest would come from the wrong registry.
"""

from __future__ import annotations

from tagsync.catalog.document import Alias, Mapping, Node, Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, get, is_null, keys, scalar, walk
from tagsync.find.model import References

SPLIT_FIELDS = ("registry", "repository", "image", "name", "tag", "digest", "sha")


def image_key(key: object) -> bool:
    return isinstance(key, str) and (key == "image" or key.endswith("Image"))


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "helm")
    for doc, document in enumerate(catalog.documents):
        scan(f, doc, document.root)
    return f.references()


def _is_split(key: object, fields: dict[str, Node]) -> bool:
    if image_key(key) and any(k in fields for k in SPLIT_FIELDS if k != "name"):
        return True
    return ("repository" in fields and "tag" in fields) or (
        isinstance(fields.get("image"), Scalar) and "tag" in fields)


def scan(f: Finder, doc: int, root: Node | None, base: Path = ()) -> None:
    """Every image in the values at `root` (found at `base` in the document: a HelmRelease's
    `spec.values`, an Argo CD Application's `valuesObject`)."""
    for path, node in walk(root, base):
        if not isinstance(node, Mapping):
            continue
        fields = keys(node)
        key = path[-1] if path else None
        split = _is_split(key, fields)
        if split:
            _split(f, doc, path, node, key, fields)
        for child_key, child in fields.items():
            if not image_key(child_key) or not isinstance(child, Scalar) or is_null(child):
                continue
            if split and child_key == "image":
                continue  # the image field of the mapping handled above
            if child_key + "Tag" in fields:  # `image: name` beside `imageTag: 1.2`
                digest_key = child_key + "Digest" if child_key + "Digest" in fields else None
                f.split(doc, path, node, child.value, child_key + "Tag", digest_key, insert_key=None,
                        report=(*path, child_key))
            else:
                f.whole(doc, (*path, child_key), child)


def _split(f: Finder, doc: int, path: Path, node: Mapping, key: object,
           fields: dict[str, Node]) -> None:
    names = ("repository", "image", "name") if image_key(key) else ("repository", "image")
    repo_key = next((k for k in names if isinstance(fields.get(k), Scalar)), None)
    repo = scalar(fields.get(repo_key)) if repo_key else None
    if repo is None or is_null(repo):
        f.note(doc, path, node, "no repository written: the chart builds the name "
               "(global registry or namespace values)", value="")
        return
    registry = _registry(node, fields)
    if registry is not None and not isinstance(registry, Scalar):
        kind = "a mapping" if isinstance(registry, Mapping) else "a list"
        f.note(doc, path, node, f"`registry` is {kind}: the chart builds the host from it, "
               "which tagsync cannot read", value="")
        return
    text = repo.value
    if registry is not None and not is_null(registry) and registry.value.strip("/ "):
        text = f"{registry.value.rstrip('/')}/{text}"  # `""`, as charts write "none", is absent
    digest_key = "digest" if "digest" in fields else None
    f.split(doc, path, node, text, "tag", digest_key,
            insert_key=None if "sha" in fields else "digest")


def _registry(node: Mapping, fields: dict[str, Node]) -> Node | None:
    """The mapping's `registry` value as YAML reads it: its own key, else a merge key's (`<<`),
    aliases followed. None when there is none; any other node than a scalar is the caller's note."""
    found = fields.get("registry")
    if found is None:
        found = _merged(node, "registry", set())
    if isinstance(found, Alias):
        found = found.target
    return found


def _merged(node: Mapping, key: str, seen: set[int]) -> Node | None:
    """`key`'s value from the mappings `node` merges in (`<<`), in YAML's order; a merged
    mapping's own merges count too. `seen`: an alias may point back at an enclosing mapping."""
    seen.add(id(node))
    for k, value in node.pairs:
        if not (isinstance(k, Scalar) and k.value == "<<" and k.style == ""):
            continue
        for item in value.items if isinstance(value, Sequence) else [value]:
            source = item.target if isinstance(item, Alias) else item
            if not isinstance(source, Mapping) or id(source) in seen:
                continue
            found = get(source, key)
            if found is None:
                found = _merged(source, key, seen)
            if found is not None:
                return found
        break
    return None
