"""Kubernetes manifests: every container of every pod template, in every document.

Pod templates sit at different depths per kind (Pod, Deployment, CronJob, custom resources), so
containers are found by their list's name rather than by kind: `containers`, `initContainers`,
`ephemeralContainers`. Image volumes (`volumes[*].image.reference`) and the `image` field of a
single `container:` mapping (custom kinds, kustomize transformer configs) count too, as do the
Prometheus operator's kinds that name their image in `spec.image`.
"""

from __future__ import annotations

from tagsync.catalog.document import Mapping, Node, Scalar
from tagsync.catalog.edit import Catalog
from tagsync.config import CatalogConfig
from tagsync.find import argocd, flux
from tagsync.find.common import Finder, get, walk
from tagsync.find.model import References

CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
SPEC_IMAGE_KINDS = frozenset({"Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent"})


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    """Every document: GitOps kinds (Flux, Argo CD) by their own readers, the rest here."""
    f = Finder(cfg, catalog, "kubernetes")
    gitops = Finder(cfg, catalog, "flux"), Finder(cfg, catalog, "argocd")
    for doc, document in enumerate(catalog.documents):
        if not (flux.scan(gitops[0], doc, document.root)
                or argocd.scan(gitops[1], doc, document.root)):
            scan(f, doc, document.root)
    found = f.references()
    for other in gitops:
        found.extend(other.references())
    return found


def scan(f: Finder, doc: int, root: Node | None) -> None:
    for path, node in walk(root):
        if not path or not isinstance(node, Mapping):
            continue
        parent = path[-2] if len(path) >= 2 else None
        image = get(node, "image")
        container = isinstance(path[-1], int) and parent in CONTAINER_LISTS
        if image is not None and (container or (path[-1] == "container" and isinstance(image, Scalar))):
            f.whole(doc, (*path, "image"), image)
        elif isinstance(path[-1], int) and parent == "volumes" and isinstance(image, Mapping):
            reference = get(image, "reference")
            if reference is not None:
                f.whole(doc, (*path, "image", "reference"), reference)
    kind = get(root, "kind")
    spec_image = get(get(root, "spec"), "image")
    if (isinstance(kind, Scalar) and kind.value in SPEC_IMAGE_KINDS
            and isinstance(spec_image, Scalar)):
        f.whole(doc, ("spec", "image"), spec_image)
