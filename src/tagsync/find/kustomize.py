"""kustomize: `images:` entries (`name`, `newName`, `newTag`, `digest`).

The image followed is `newName` when set, else `name`. Without `newTag` the tag comes from the
resources the kustomization patches, which this file cannot see: such an entry is left alone.
"""

from __future__ import annotations

from tagsync.catalog.document import Node, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, get, is_null, keys, scalar
from tagsync.find.model import References


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "kustomize")
    for doc, document in enumerate(catalog.documents):
        entries(f, doc, get(document.root, "images"), ("images",))
    return f.references()


def entries(f: Finder, doc: int, images: Node | None, base: Path) -> None:
    """kustomize's `images:` list at `base` (a kustomization's, a Flux Kustomization's
    `spec.images`, a HelmRelease post-renderer's)."""
    if not isinstance(images, Sequence):
        return
    for i, entry in enumerate(images.items):
        path = (*base, i)
        fields = keys(entry)
        name = scalar(fields.get("newName")) or scalar(fields.get("name"))
        if name is None or is_null(name):
            f.note(doc, path, entry, "no `name` or `newName`", value="")
            continue
        f.split(doc, path, entry, name.value, "newTag", "digest")
