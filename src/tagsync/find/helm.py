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

from dataclasses import dataclass

from tagsync.catalog.document import Alias, Mapping, Node, Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path, format_path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, get, is_null, keys, scalar, walk
from tagsync.find.model import Note, References
from tagsync.reference import templated

SPLIT_FIELDS = ("registry", "repository", "image", "name", "tag", "digest", "sha")


def image_key(key: object) -> bool:
    """`image`, `*Image` (camelCase) and `*_image` (snake_case) name an image."""
    return isinstance(key, str) and (key == "image" or key.endswith(("Image", "_image")))


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "helm")
    for doc, document in enumerate(catalog.documents):
        scan(f, doc, document.root)
    return f.references()


def _is_split(key: object, fields: dict[str, Node]) -> bool:
    flat = {k for k, v in fields.items() if not isinstance(v, (Mapping, Sequence))}
    if image_key(key) and (flat & set(SPLIT_FIELDS) - {"name"} or ("version" in flat and "name" in flat)):
        return True  # (an `image:` mapping holding another `image:` mapping is not one)
    return ("repository" in fields and "tag" in fields) or (
        isinstance(fields.get("image"), Scalar) and "tag" in fields)


def scan(f: Finder, doc: int, root: Node | None, base: Path = ()) -> None:
    """Every image in the values at `root` (found at `base` in the document: a HelmRelease's
    `spec.values`, an Argo CD Application's `valuesObject`)."""
    if isinstance(root, Alias):  # a whole values block shared with others: not edited here
        where = f" (line {root.target.line})" if root.target is not None else ""
        f.note(doc, base, root, f"values shared through anchor &{root.name}{where}: editing "
               "them here would change every user of the anchor", value="")
        return
    chart = Global.of(root, base)
    for path, node in walk(root, base):
        if not isinstance(node, Mapping):
            continue
        fields = keys(node)
        key = path[-1] if path else None
        split = _is_split(key, fields)
        if split:
            _split(f, doc, path, node, key, fields, chart)
        for child_key, child in fields.items():
            if not image_key(child_key) or not isinstance(child, Scalar) or is_null(child):
                continue
            if split and child_key == "image":
                continue  # the image field of the mapping handled above
            tag_key = next((k for k in (child_key + "Tag", child_key + "_tag") if k in fields), None)
            if tag_key is not None:  # `image: name` beside `imageTag: 1.2`
                digest_key = next((k for k in (child_key + "Digest", child_key + "_digest")
                                   if k in fields), None)
                f.split(doc, path, node, child.value, tag_key, digest_key, insert_key=None,
                        report=(*path, child_key))
            else:
                f.whole(doc, (*path, child_key), child)


@dataclass(frozen=True)
class Global:
    """The registry a chart puts before every image when its values set one: Bitnami's
    `global.imageRegistry`, ingress-nginx's and many others' `global.image.registry`."""

    registry: str
    key: str  # as written, for messages
    at: Path  # the `global.image` mapping (a registry alone there is not an image)

    @classmethod
    def of(cls, root: Node | None, base: Path) -> Global | None:
        chart = get(root, "global")
        for key, node in (("global.image.registry", get(get(chart, "image"), "registry")),
                          ("global.imageRegistry", get(chart, "imageRegistry"))):
            if isinstance(node, Scalar) and not is_null(node) and node.value.strip("/ "):
                return cls(node.value.strip().rstrip("/"), key, (*base, "global", "image"))
        return None


def _has_host(name: str) -> bool:
    first, _, rest = name.partition("/")
    return bool(rest) and ("." in first or ":" in first or first == "localhost")


def _split(f: Finder, doc: int, path: Path, node: Mapping, key: object,
           fields: dict[str, Node], chart: Global | None) -> None:
    names = ("repository", "image", "name") if image_key(key) else ("repository", "image")
    repo_key = next((k for k in names if isinstance(fields.get(k), Scalar)), None)
    repo = scalar(fields.get(repo_key)) if repo_key else None
    if repo is None or is_null(repo):
        if chart is not None and path == chart.at:
            f.ignored.append(Note(f.cfg.name, f.file, node.line, "?", "", f"{chart.key}: the "
                                  "registry the chart puts before every image", doc,
                                  format_path(path), chart.registry, f.shape))
            return
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
    own = registry.value.strip().rstrip("/") if registry is not None and not is_null(registry) \
        and registry.value.strip("/ ") else None  # `""`, as charts write "none", is absent
    if chart is not None and own is not None and own != chart.registry:
        f.note(doc, path, node, f"the chart chooses between `registry: {own}` and {chart.key} "
               f"{chart.registry} (charts differ on which wins)", value=text)
        return
    if chart is not None and own is None and _has_host(text):
        f.note(doc, path, node, f"the repository names a host and {chart.key} is "
               f"{chart.registry} (charts differ on whether it is put before)", value=text)
        return
    host = own or (chart.registry if chart is not None and not templated(text) else None)
    if host is not None:
        text = f"{host}/{text}"
    tag_key = "tag" if "tag" in fields or "version" not in fields else "version"
    digest_key = "digest" if "digest" in fields else None
    f.split(doc, path, node, text, tag_key, digest_key,
            insert_key=None if "sha" in fields else "digest", written=repo.value)


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
