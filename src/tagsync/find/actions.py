"""GitHub Actions workflows: job containers, service containers (a mapping with `image`, or the
image as a string) and `docker://` steps."""

from __future__ import annotations

from tagsync.catalog.document import Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, get, keys
from tagsync.find.model import References


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "actions")
    for doc, document in enumerate(catalog.documents):
        for name, job in keys(get(document.root, "jobs")).items():
            container = get(job, "container")
            if isinstance(container, Scalar):
                f.whole(doc, ("jobs", name, "container"), container)
            elif get(container, "image") is not None:
                image = get(container, "image")
                assert image is not None
                f.whole(doc, ("jobs", name, "container", "image"), image)
            for service, spec in keys(get(job, "services")).items():
                image = get(spec, "image")
                if isinstance(spec, Scalar):  # `postgres: postgres:16`, as the schema allows
                    f.whole(doc, ("jobs", name, "services", service), spec)
                elif image is not None:
                    f.whole(doc, ("jobs", name, "services", service, "image"), image)
            steps = get(job, "steps")
            if isinstance(steps, Sequence):
                for i, step in enumerate(steps.items):
                    uses = get(step, "uses")
                    if isinstance(uses, Scalar) and uses.value.startswith("docker://"):
                        f.whole(doc, ("jobs", name, "steps", i, "uses"), uses, prefix="docker://")
    return f.references()
