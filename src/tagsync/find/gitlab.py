"""GitLab CI: `image` (a string, or `image.name`) and `services` (strings, or `.name`) at the
top level, under `default:`, and in every job (hidden `.template` jobs too).

A pipeline file has keys a Helm values file also uses (`image`, `services`): it gets a reader of
its own so that `services: [postgres:16]` is read as GitLab reads it, and `$CI_REGISTRY_IMAGE`
values are templated, not image names.
"""

from __future__ import annotations

import posixpath

from tagsync.catalog.document import Mapping, Node, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, get, keys
from tagsync.find.model import References

# Top-level keys that are settings, not jobs (GitLab's `.gitlab-ci.yml` keyword reference).
GLOBAL_KEYS = frozenset({"default", "include", "stages", "variables", "workflow", "image",
                         "services", "cache", "before_script", "after_script", "spec"})
JOB_KEYS = frozenset({"script", "stage", "extends", "needs", "rules", "trigger", "when"})


def is_pipeline(file: str, root: Node | None) -> bool:
    """`.gitlab-ci.yml` by name; else a job (a top-level mapping with `script:` or `trigger:`)
    in a file under `.gitlab/`, or beside `stages:`/`include:`/`default:`/`workflow:`, or with
    a job keyword only GitLab uses (`stage`, `extends`, `needs`, `rules`, `when`)."""
    base = posixpath.basename(file).lower()
    if base.endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")):
        return True
    if not isinstance(root, Mapping):
        return False
    top = keys(root)
    jobs = [keys(v) for k, v in top.items() if k not in GLOBAL_KEYS and isinstance(v, Mapping)]
    scripted = [job for job in jobs if "script" in job or "trigger" in job]
    if not scripted:
        return False
    return ("/.gitlab/" in f"/{file}" or any(k in top for k in ("stages", "include", "default", "workflow"))
            or any(JOB_KEYS & set(job) - {"script"} for job in scripted))


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "gitlab")
    for doc, document in enumerate(catalog.documents):
        root = document.root
        _containers(f, doc, root, ())
        for name, value in keys(root).items():
            if name == "default" or (name not in GLOBAL_KEYS and isinstance(value, Mapping)):
                _containers(f, doc, value, (name,))
    return f.references()


def _containers(f: Finder, doc: int, at: Node | None, path: Path) -> None:
    image = get(at, "image")
    if isinstance(image, Mapping):
        name = get(image, "name")
        if name is not None:
            f.whole(doc, (*path, "image", "name"), name)
    elif image is not None:
        f.whole(doc, (*path, "image"), image)
    services = get(at, "services")
    for i, item in enumerate(services.items if isinstance(services, Sequence) else []):
        if isinstance(item, Mapping):
            name = get(item, "name")
            if name is not None:
                f.whole(doc, (*path, "services", i, "name"), name)
        else:
            f.whole(doc, (*path, "services", i), item)
