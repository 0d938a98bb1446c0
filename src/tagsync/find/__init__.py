"""Find image references: one finder per file shape, all yielding the same `Slot`s and `Note`s.

`paths` follows a catalog described field by field in the config (the original Lablup shape);
the others know a shape (Kubernetes, Helm values, kustomize, compose, GitHub Actions,
Dockerfiles, marker comments). `auto` picks the shape per file from its name and content.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import replace

from tagsync.catalog.document import Mapping, Node, Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import format_path, parse_path
from tagsync.catalog.text import TextFile
from tagsync.config import CONFIG_NAMES, CatalogConfig
from tagsync.find import actions, compose, dockerfile, helm, kubernetes, kustomize, markers, paths
from tagsync.find.common import get
from tagsync.find.model import Discovery, Growth, Note, References, Slot

__all__ = ["Discovery", "Growth", "Note", "References", "Slot", "detect", "find_references",
           "is_dockerfile", "open_source", "rows", "scan"]

Source = Catalog | TextFile

_YAML_FINDERS: dict[str, Callable[[CatalogConfig, Catalog], References]] = {
    "paths": paths.find_references,
    "kubernetes": kubernetes.find,
    "helm": helm.find,
    "kustomize": kustomize.find,
    "compose": compose.find,
    "actions": actions.find,
    "markers": markers.find,
}
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", "vendor"})
_KUSTOMIZE_KEYS = ("resources", "bases", "components", "patches", "patchesStrategicMerge",
                   "namePrefix", "nameSuffix", "configurations", "generators", "transformers")
_COMPOSE_NAME = re.compile(r"^(docker-)?compose([.-].*)?\.ya?ml$")


def is_dockerfile(file: str) -> bool:
    base = posixpath.basename(file)
    lower = base.lower()
    if lower.endswith((".yaml", ".yml", ".json")):
        return False
    return ("dockerfile" in lower or lower.startswith("containerfile")) and not lower.endswith(".md")


def open_source(data: bytes, file: str, cfg: CatalogConfig) -> Source:
    """Parse a file the way its catalog's shape reads it (YAML, or text for Dockerfiles)."""
    if cfg.shape == "dockerfile" or (cfg.shape == "auto" and is_dockerfile(file)):
        return TextFile(data, file)
    return Catalog(data, file)


def detect(file: str, catalog: Catalog) -> str:
    """A YAML file's shape, from its name first and its first document's keys otherwise."""
    base = posixpath.basename(file).lower()
    if base in ("kustomization.yaml", "kustomization.yml", "kustomization"):
        return "kustomize"
    if _COMPOSE_NAME.match(base):
        return "compose"
    root: Node | None = next((d.root for d in catalog.documents if d.root is not None), None)
    if not isinstance(root, Mapping):
        return "helm"
    kind = get(root, "kind")
    api = get(root, "apiVersion")
    if (isinstance(kind, Scalar) and kind.value == "Kustomization") or (
            isinstance(api, Scalar) and api.value.startswith("kustomize.config.k8s.io/")):
        return "kustomize"
    images = get(root, "images")
    if (api is None and isinstance(images, Sequence) and images.items
            and all(isinstance(get(i, "name"), Scalar) for i in images.items)
            and any(get(root, k) is not None for k in _KUSTOMIZE_KEYS)):
        return "kustomize"
    if api is not None and kind is not None:
        return "kubernetes"
    if isinstance(get(root, "jobs"), Mapping) and (get(root, "on") is not None
                                                   or get(root, "name") is not None):
        return "actions"
    services = get(root, "services")
    if isinstance(services, Mapping) and all(isinstance(v, Mapping) for _, v in services.pairs):
        return "compose"
    return "helm"


def find_references(cfg: CatalogConfig, source: Source) -> References:
    """Slots to follow, entries left alone (and why), lists that may grow."""
    if isinstance(source, TextFile):
        return dockerfile.find(cfg, source)
    shape = cfg.shape if cfg.shape != "auto" else detect(source.file or "", source)
    found = _YAML_FINDERS[shape](cfg, source)
    if shape in ("paths", "markers") or not (cfg.markers or markers.has_markers(source.text)):
        return found
    marked = markers.find(cfg, source)
    claimed = [(s.doc, parse_path(p)) for s in marked.slots for p, _ in s.marks]
    if claimed:
        whole = set(claimed)  # sets, not a scan per slot: a file may hold thousands of each
        inside = {(d, p[:k]) for d, p in claimed for k in range(len(p) + 1)}

        def overlaps(doc: int, where: str | None) -> bool:
            if where is None:
                return False
            at = parse_path(where)
            return (doc, at) in inside or any((doc, at[:k]) in whole for k in range(len(at) + 1))

        found = replace(
            found,
            slots=[s for s in found.slots
                   if not any(overlaps(s.doc, format_path(p)) for p in (s.path, s.tag_path, s.entry)
                              if p is not None)],
            notes=[n for n in found.notes if not overlaps(n.doc, n.path)])
    found.extend(marked)
    return found


def rows(refs: References) -> list[dict[str, object]]:
    """One row per reference for `tagsync refs`: tracked slots, left-alone notes, ignored
    look-alikes; a marker slot has a row per marked value. Sorted by file and position."""
    out: list[dict[str, object]] = []
    for slot in refs.slots:
        ref = slot.ref
        base: dict[str, object] = {
            "file": slot.file, "doc": slot.doc, "line": slot.line, "path": slot.where,
            "value": slot.written or slot.current, "shape": slot.shape, "image": str(slot.image),
            "tag": (ref.tag if ref is not None else slot.tag) or None,
            "digest": (ref.digest if ref is not None else slot.current) or None,
            "status": "tracked", "reason": None, "policy": slot.policy.describe(),
        }
        if slot.marks:
            out += [{**base, "path": path, "line": line} for path, line in slot.marks]
        else:
            out.append(base)
    for status, notes in (("left-alone", refs.notes), ("ignored", refs.ignored)):
        for note in notes:
            out.append({
                "file": note.file, "doc": note.doc, "line": note.line, "path": note.path,
                "value": note.value, "shape": note.shape,
                "image": None if note.image == "?" else note.image, "tag": note.tag or None,
                "digest": None, "status": status, "reason": note.reason, "policy": None,
            })
    out.sort(key=lambda r: (str(r["file"]), int(str(r["doc"])), int(str(r["line"])), str(r["path"])))
    return out


def scan(paths: list[str]) -> tuple[References, list[str]]:
    """Every supported file under the paths (folders recursively), each read with shape
    detection; files that do not parse are skipped with a warning, never fatal."""
    import os

    from tagsync.errors import CatalogError

    cfg = CatalogConfig(name="refs", files=["**"], kind="auto")
    found = References()
    warnings: list[str] = []
    files: list[str] = []
    for root in paths:
        if os.path.isdir(root):
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                # regular files only: opening a named pipe found in a folder would wait forever
                files += [os.path.join(folder, n) for n in sorted(names)
                          if (n.endswith((".yaml", ".yml")) or is_dockerfile(n))
                          and n not in CONFIG_NAMES  # a config, no catalog
                          and os.path.isfile(os.path.join(folder, n))]
        elif os.path.exists(root):
            files.append(root)
        else:
            warnings.append(f"{root}: no such file or folder")
    for file in files:
        try:
            with open(file, "rb") as fh:
                data = fh.read()
            found.extend(find_references(cfg, open_source(data, file, cfg)))
        except OSError as exc:
            warnings.append(f"{file}: cannot read: {exc.strerror}")
        except CatalogError as exc:
            warnings.append(f"skipped {exc}")
    return found, warnings
