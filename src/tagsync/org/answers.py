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

from pydantic import ValidationError

from tagsync import errors
from tagsync.config import DigestFormat
from tagsync.errors import ConfigError, TagsyncError
from tagsync.gate import Checked, Seen
from tagsync.reference import ImageName
from tagsync.registry import Observation, RepoList, RepoQuery, TagList, TagQuery, Want
from tagsync.verify.policy import VerifyPolicy

VERSION = 2


def _error(exc: TagsyncError | None) -> dict[str, Any] | None:
    if exc is None:
        return None
    return {"kind": type(exc).__name__, "message": exc.message, "image": exc.image}


def _image(name: ImageName) -> list[str]:
    return [name.registry, name.repository]


def dump(known: Any) -> dict[str, Any]:
    """`run._Known` as plain JSON-able data: the registries' answers, the gate's facts
    (signature verdicts under their policy, ages) and the explanations."""
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
        "ages": [{"image": _image(i), "tag": t, "digest": d,
                  "at": seen.when.isoformat() if seen.when else None, "clock": seen.clock}
                 for (i, t, d), seen in known.facts.ages.items()],
        "verdicts": [{"policy": policy.model_dump(mode="json"), "image": _image(i), "digest": d,
                      "ok": c.ok, "text": c.text, "signer": c.signer,
                      "logged_at": c.logged_at.isoformat() if c.logged_at else None}
                     for (policy, i, d), c in known.facts.verdicts.items()],
        "explained": [{"image": _image(i), "old": old, "new": new, "line": line}
                      for (i, old, new), line in known.explained.items()],
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
            known.facts.ages[(_load_image(a["image"]), str(a["tag"]), str(a["digest"]))] = Seen(
                None if a["at"] is None else datetime.fromisoformat(a["at"]), str(a["clock"]))
        for v in data["verdicts"]:
            key = (VerifyPolicy.model_validate(v["policy"]), _load_image(v["image"]), str(v["digest"]))
            known.facts.verdicts[key] = Checked(
                bool(v["ok"]), str(v["text"]), None if v["signer"] is None else str(v["signer"]),
                None if v["logged_at"] is None else datetime.fromisoformat(v["logged_at"]))
        for e in data["explained"]:
            known.explained[(_load_image(e["image"]), str(e["old"]), str(e["new"]))] = (
                None if e["line"] is None else str(e["line"]))
        return known
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
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
