"""docker-compose: `services.*.image`, `build.cache_from`, and `image` keys in `x-*` extensions.

A service with `build:` names the image compose builds, not one it pulls: left alone.
"""

from __future__ import annotations

from tagsync.catalog.document import Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, get, keys, walk
from tagsync.find.model import References


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "compose")
    for doc, document in enumerate(catalog.documents):
        root = document.root
        for name, service in keys(get(root, "services")).items():
            image = get(service, "image")
            path = ("services", name, "image")
            if image is not None and get(service, "build") is not None:
                f.note(doc, path, image, "the name of the image compose builds (build:)")
            elif image is not None:
                f.whole(doc, path, image)
            cache_from = get(get(service, "build"), "cache_from")
            if isinstance(cache_from, Sequence):
                for i, item in enumerate(cache_from.items):
                    f.note(doc, ("services", name, "build", "cache_from", i), item,
                           "a build cache source, not an image the service runs")
        for key, value in keys(root).items():
            if not key.startswith("x-"):
                continue
            for at, node in walk(value, (key,)):
                if at[-1] == "image" and isinstance(node, Scalar):
                    f.whole(doc, at, node)
    return f.references()
