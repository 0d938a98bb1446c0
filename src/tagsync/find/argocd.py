"""Argo CD: an `Application`'s (or an `ApplicationSet` template's) sources: `helm.valuesObject`
(Helm values, read with the Helm rules), `helm.parameters` (`{name: image.tag, value: …}` items,
grouped by the part before the last dot the way Helm reads `--set`), `kustomize.images`
(`[name=]image[:tag][@digest]` strings), and `helm.values`.

`helm.values` is Helm values written as one string: its references are listed, left alone with
the reason. Editing inside a string would change text the YAML reader returns, not a value,
and its quoting and indentation belong to the outer file; `valuesObject` is the same values as
YAML, which tagsync edits.
"""

from __future__ import annotations

from tagsync.catalog.document import Node, Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path, format_path
from tagsync.errors import CatalogError
from tagsync.find import helm
from tagsync.find.common import Field, Finder, get, is_null, scalar
from tagsync.find.model import Note

API = "argoproj.io/"
STRING_VALUES = ("inside `helm.values`, Helm values written as one string: tagsync does not edit "
                 "inside a string (write them under `helm.valuesObject` to have them followed)")


def scan(f: Finder, doc: int, root: Node | None) -> bool:
    """Read one document if it is an Argo CD Application or ApplicationSet; False otherwise."""
    api, kind = get(root, "apiVersion"), get(root, "kind")
    if not (isinstance(api, Scalar) and api.value.startswith(API) and isinstance(kind, Scalar)):
        return False
    spec: Path = ("spec",)
    if kind.value == "ApplicationSet":
        spec = ("spec", "template", "spec")
    elif kind.value != "Application":
        return False
    node = root
    for key in spec:
        node = get(node, str(key))
    source = get(node, "source")
    if source is not None:
        _source(f, doc, source, (*spec, "source"))
    sources = get(node, "sources")
    for i, item in enumerate(sources.items if isinstance(sources, Sequence) else []):
        _source(f, doc, item, (*spec, "sources", i))
    return True


def _source(f: Finder, doc: int, source: Node, at: Path) -> None:
    chart = get(source, "helm")
    helm.scan(f, doc, get(chart, "valuesObject"), (*at, "helm", "valuesObject"))
    values = get(chart, "values")
    if isinstance(values, Scalar) and not is_null(values):
        _string_values(f, doc, values, (*at, "helm", "values"))
    parameters = get(chart, "parameters")
    if isinstance(parameters, Sequence):
        _parameters(f, doc, parameters, (*at, "helm", "parameters"))
    images = get(get(source, "kustomize"), "images")
    for i, item in enumerate(images.items if isinstance(images, Sequence) else []):
        text = item.value if isinstance(item, Scalar) else ""
        name, eq, _ = text.partition("=")
        f.whole(doc, (*at, "kustomize", "images", i), item, prefix=f"{name}=" if eq else "")


def _string_values(f: Finder, doc: int, node: Scalar, at: Path) -> None:
    """The references inside a `values: |` string, each left alone at the line it is on."""
    try:
        inner = Catalog(node.value, f.file)
    except CatalogError as exc:
        f.note(doc, at, node, f"`helm.values` is a string that does not read as YAML: {exc.message}",
               value="")
        return
    inside = Finder(f.cfg, inner, f.shape, f.file)
    for i, document in enumerate(inner.documents):
        helm.scan(inside, i, document.root)
    offset = node.line if node.style in ("|", ">") else 0
    for slot in inside.slots:
        f.notes.append(Note(f.cfg.name, f.file, offset + slot.line if offset else node.line,
                            str(slot.image), "" if slot.ref is not None and slot.ref.tag is None
                            else slot.tag, STRING_VALUES, doc, format_path(at), slot.written,
                            f.shape, slot.current))
    for note in inside.notes:
        f.notes.append(Note(f.cfg.name, f.file, offset + note.line if offset else node.line,
                            note.image, note.tag, STRING_VALUES,
                            doc, format_path(at), note.value, f.shape, note.digest))


def _parameters(f: Finder, doc: int, items: Sequence, at: Path) -> None:
    """`--set`-style parameters: `X.repository` + `X.tag` (+ `X.registry`, `X.digest`) are one
    image; `X.image` (or `*Image`, `*_image`) alone is a whole reference."""
    groups: dict[str, dict[str, Field]] = {}
    for i, item in enumerate(items.items):
        name, value = scalar(get(item, "name")), get(item, "value")
        if name is None or value is None:
            continue
        head, _, last = name.value.rpartition(".")
        groups.setdefault(head, {})[last] = Field((*at, i, "value"), value, f"parameter {name.value}")
    for fields in groups.values():
        repo = fields.get("repository") or (fields.get("image") if "tag" in fields else None)
        if repo is not None:
            repo_node = scalar(repo.node)
            if repo_node is None:
                continue
            text = repo_node.value
            registry = scalar(fields["registry"].node) if "registry" in fields else None
            if registry is not None and not is_null(registry) and registry.value.strip("/ "):
                text = f"{registry.value.rstrip('/')}/{text}"
            f.fields(doc, at, repo_node, text, fields.get("tag"), fields.get("digest"),
                     report=repo.path)
            continue
        for last, one in fields.items():
            if helm.image_key(last) and isinstance(one.node, Scalar) and not is_null(one.node):
                f.whole(doc, one.path, one.node)



