"""Registry answers as JSON: asked once by the organisation's first step, read by every
per-repository child (a Step Functions Map item, or `tagsync org run --answers`).

What is stored is what the registries said (repository listings, tag listings with their times,
one value per digest question, release ages) and, for a question that failed, the error's kind
and words, so a child plans exactly as the single process would. Loading is strict: a stored
file is input like any other, and anything off its shape is a ConfigError, never a traceback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tagsync import errors
from tagsync.config import DigestFormat
from tagsync.errors import ConfigError, TagsyncError
from tagsync.reference import ImageName
from tagsync.registry import Observation, RepoList, RepoQuery, TagList, TagQuery, Want

VERSION = 1


def _error(exc: TagsyncError | None) -> dict[str, Any] | None:
    if exc is None:
        return None
    return {"kind": type(exc).__name__, "message": exc.message, "image": exc.image}


def _image(name: ImageName) -> list[str]:
    return [name.registry, name.repository]


def dump(known: Any) -> dict[str, Any]:
    """`run._Known` as plain JSON-able data (signature verdicts are not stored: each child
    checks under its own repository's policy)."""
    return {
        "version": VERSION,
        "repos": [{"registry": q.registry, "namespace": q.namespace, "names": list(r.names),
                   "error": _error(r.error)} for q, r in known.repos.items()],
        "tags": [{"image": _image(q.image), "times": q.times, "tags": list(t.tags),
                  "created": {k: v.isoformat() for k, v in t.created.items()},
                  "dropped": list(t.dropped), "error": _error(t.error)}
                 for q, t in known.tags.items()],
        "digests": [{"image": _image(w.image), "tag": w.tag, "format": w.format.value,
                     "platform": w.platform, "value": o.value, "error": _error(o.error)}
                    for w, o in known.digests.items()],
        "ages": [{"image": _image(i), "tag": t, "at": at.isoformat() if at else None}
                 for (i, t), at in known.ages.items()],
    }


def load(data: Any, source: str) -> Any:
    """The `run._Known` that `dump` wrote; `source` names the file in errors."""
    from tagsync.run import _Known

    try:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not version {VERSION} of tagsync's stored answers")
        known = _Known()
        for r in data["repos"]:
            query = RepoQuery(str(r["registry"]), str(r["namespace"]))
            known.repos[query] = RepoList(query, tuple(map(str, r["names"])), _load_error(r["error"]))
        for t in data["tags"]:
            tq = TagQuery(_load_image(t["image"]), bool(t["times"]))
            known.tags[tq] = TagList(
                tq, tuple(map(str, t["tags"])),
                {str(k): datetime.fromisoformat(v) for k, v in t["created"].items()},
                _load_error(t["error"]), tuple(map(str, t["dropped"])))
        for d in data["digests"]:
            want = Want(_load_image(d["image"]), str(d["tag"]), DigestFormat(d["format"]),
                        None if d["platform"] is None else str(d["platform"]))
            value = d["value"]
            known.digests[want] = Observation(want, None if value is None else str(value),
                                              _load_error(d["error"]))
        for a in data["ages"]:
            known.ages[(_load_image(a["image"]), str(a["tag"]))] = (
                None if a["at"] is None else datetime.fromisoformat(a["at"]))
        return known
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"stored registry answers are unreadable ({type(exc).__name__}: {exc})",
                          file=source) from None


def _load_image(value: Any) -> ImageName:
    registry, repository = value
    return ImageName(str(registry), str(repository))


def _load_error(value: Any) -> TagsyncError | None:
    if value is None:
        return None
    kind = getattr(errors, str(value["kind"]), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.RegistryError)):
        kind = errors.RegistryError  # only a registry's kinds of failure are ever stored
    return kind(str(value["message"]), image=None if value["image"] is None else str(value["image"]))
