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
from tagsync.catalog.path import Path, parse_path
from tagsync.catalog.text import TextFile
from tagsync.config import CONFIG_NAMES, CatalogConfig
from tagsync.find import (
    actions,
    compose,
    dockerfile,
    gitlab,
    helm,
    kubernetes,
    kustomize,
    markers,
    paths,
)
from tagsync.find.common import get
from tagsync.find.model import Discovery, Growth, Note, References, Slot

__all__ = ["Discovery", "Growth", "Note", "References", "Slot", "detect", "find_references",
           "is_dockerfile", "open_source", "rows", "scan"]

Source = Catalog | TextFile

_YAML_FINDERS: dict[str, Callable[[CatalogConfig, Catalog], References]] = {
    "paths": paths.find_references,
    "kubernetes": kubernetes.find,
    "flux": kubernetes.find,  # the shapes rows name Flux's and Argo CD's kinds by: valid kinds too
    "argocd": kubernetes.find,
    "helm": helm.find,
    "kustomize": kustomize.find,
    "compose": compose.find,
    "actions": actions.find,
    "gitlab": gitlab.find,
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
    if base.endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")):
        return "gitlab"
    root: Node | None = next((d.root for d in catalog.documents if d.root is not None), None)
    if not isinstance(root, Mapping):
        return "helm"
    kind = get(root, "kind")
    api = get(root, "apiVersion")
    flux_kind = isinstance(api, Scalar) and api.value.startswith("kustomize.toolkit.fluxcd.io/")
    if (isinstance(kind, Scalar) and kind.value == "Kustomization" and not flux_kind) or (
            isinstance(api, Scalar) and api.value.startswith("kustomize.config.k8s.io/")):
        return "kustomize"
    images = get(root, "images")
    if (api is None and isinstance(images, Sequence) and images.items
            and all(isinstance(get(i, "name"), Scalar) for i in images.items)
            and any(get(root, k) is not None for k in _KUSTOMIZE_KEYS)):
        return "kustomize"
    if api is not None and kind is not None:
        return "kubernetes"
    workflow = "/.github/workflows/" in f"/{file}"  # GitHub runs every file there (`on:` or not)
    if isinstance(get(root, "jobs"), Mapping) and (
            workflow or get(root, "on") is not None or get(root, "name") is not None):
        return "actions"
    if gitlab.is_pipeline(file, root):
        return "gitlab"
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
    return _owned(found, marked)


def _owned(found: References, marked: References) -> References:
    """A marked value is its marker's: the file's shape does not also follow it. Where the
    marker follows it, the shape's reading goes; where the marker leaves it alone (a policy
    the config does not define, a marker that cannot be read), the value is left alone once,
    by the marker, and a mapping around it that the shape read is left alone, saying why."""
    following = [(s.doc, parse_path(p)) for s in marked.slots for p, _, _ in s.marks]
    leaving = {(n.doc, parse_path(n.path)): n for n in marked.notes if n.path is not None}
    if not following and not leaving:
        found.extend(marked)
        return found
    claimed = [*following, *leaving]
    whole = set(claimed)  # sets, not a scan per slot: a file may hold thousands of each
    inside: dict[tuple[int, Path], list[tuple[int, Path]]] = {}
    for d, p in claimed:
        for k in range(len(p) + 1):
            inside.setdefault((d, p[:k]), []).append((d, p))

    def owners(doc: int, where: Path | str | None) -> list[tuple[int, Path]]:
        """The marked values a place is, is inside of, or holds."""
        if where is None:
            return []
        at = parse_path(where) if isinstance(where, str) else where
        return inside.get((doc, at), []) + [(doc, at[:k]) for k in range(len(at))
                                            if (doc, at[:k]) in whole]

    def reading(doc: int, places: tuple[Path | str | None, ...], note: Note) -> Note | None:
        """The shape's reading of a place near marked values: unchanged when none is near,
        gone when a marker follows one of them or says the same place, else left alone."""
        claims = [c for p in places for c in owners(doc, p)]
        if not claims:
            return note
        at = (doc, parse_path(note.path)) if note.path is not None else None
        if any(c not in leaving or c == at for c in claims):
            return None
        first = leaving[claims[0]]
        return replace(note, reason=f"a value in it is marked (line {first.line}) and the marker "
                       f"leaves it alone: {first.reason}")

    kept: list[Slot] = []
    notes: list[Note] = []
    for s in found.slots:
        places = (s.path, s.tag_path, s.entry)
        if not any(owners(s.doc, p) for p in places):
            kept.append(s)
            continue
        as_note = Note(s.catalog, s.file, s.line, str(s.image), s.tag, "", s.doc, s.where,
                       s.written, s.shape, s.current)
        stays = reading(s.doc, places, as_note)
        if stays is not None:
            notes.append(stays)
    for n in found.notes:
        stays = reading(n.doc, (n.path,), n)
        if stays is not None:
            notes.append(stays)
    found = replace(found, slots=kept, notes=notes)
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
            out += [{**base, "path": path, "line": line, "value": text}
                    for path, line, text in slot.marks]
        else:
            out.append(base)
    for status, notes in (("left-alone", refs.notes), ("ignored", refs.ignored)):
        for note in notes:
            out.append({
                "file": note.file, "doc": note.doc, "line": note.line, "path": note.path,
                "value": note.value, "shape": note.shape,
                "image": None if note.image == "?" else note.image, "tag": note.tag or None,
                "digest": note.digest or None, "status": status, "reason": note.reason,
                "policy": None,
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
    return found, warnings + found.warnings
