"""Flux: a `HelmRelease`'s `spec.values` (Helm values, read with the Helm rules at any depth)
and its post-renderers' `kustomize.images`, and a Flux `Kustomization`'s `spec.images` (the same
entries as a kustomization's `images:`).

These are Kubernetes documents, found by the Kubernetes reader; without this module the values
were skipped (they are not pod templates) and the images list was not read at all.
"""

from __future__ import annotations

from tagsync.catalog.document import Node, Scalar, Sequence
from tagsync.find import helm, kustomize
from tagsync.find.common import Finder, get

HELM_API = "helm.toolkit.fluxcd.io/"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/"


def kind(root: Node | None) -> str | None:
    """"HelmRelease" or "Kustomization" for Flux's kinds, None for any other document."""
    api, name = get(root, "apiVersion"), get(root, "kind")
    if not isinstance(api, Scalar) or not isinstance(name, Scalar):
        return None
    if api.value.startswith(HELM_API) and name.value == "HelmRelease":
        return "HelmRelease"
    if api.value.startswith(KUSTOMIZE_API) and name.value == "Kustomization":
        return "Kustomization"
    return None


def scan(f: Finder, doc: int, root: Node | None) -> bool:
    """Read one document if it is one of Flux's kinds; False otherwise."""
    which = kind(root)
    spec = get(root, "spec")
    if which == "HelmRelease":
        helm.scan(f, doc, get(spec, "values"), ("spec", "values"))
        renderers = get(spec, "postRenderers")
        for i, renderer in enumerate(renderers.items if isinstance(renderers, Sequence) else []):
            kustomize.entries(f, doc, get(get(renderer, "kustomize"), "images"),
                              ("spec", "postRenderers", i, "kustomize", "images"))
        return True
    if which == "Kustomization":
        kustomize.entries(f, doc, get(spec, "images"), ("spec", "images"))
        return True
    return False
