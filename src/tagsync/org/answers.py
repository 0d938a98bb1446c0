"""Registry answers as JSON: asked once by the organisation's first step, read by every
per-repository child (a Step Functions Map item, or `tagsync org run --answers`).

What is stored is what the registries said (repository listings, tag listings with their times,
one value per digest question, release ages) and, for a question that failed, the error's kind
and words, so a child plans exactly as the single process would. Loading is strict: a stored
file is input like any other, and anything off its shape is a ConfigError, never a traceback.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tagsync import errors
from tagsync.config import DigestFormat
from tagsync.errors import ConfigError, TagsyncError
from tagsync.gate import Checked, Seen
from tagsync.reference import ImageName, is_repository, is_tag, validate_digest
from tagsync.registry import Observation, RepoList, RepoQuery, TagList, TagQuery, Want
from tagsync.verify.policy import VerifyPolicy

VERSION = 3  # 3: ages keep `pending`/`held`, verdicts `held` (a child decides as Discover would)
MAX_NAMES = 100_000  # names in one namespace listing


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
                  "at": seen.when.isoformat() if seen.when else None, "clock": seen.clock,
                  "pending": seen.pending, "held": seen.held}
                 for (i, t, d), seen in known.facts.ages.items()],
        "verdicts": [{"policy": policy.model_dump(mode="json"), "image": _image(i), "digest": d,
                      "ok": c.ok, "text": c.text, "signer": c.signer,
                      "logged_at": c.logged_at.isoformat() if c.logged_at else None,
                      "held": c.held}
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
            if not _HOST.fullmatch(query.registry) or len(r["names"]) > MAX_NAMES:
                raise ValueError("a repository listing is off the grammar or too long")
            known.repos[query] = RepoList(query, tuple(n for n in r["names"] if is_repository(n)),
                                          _load_error(r["error"]))
        for t in data["tags"]:
            tq = TagQuery(_load_image(t["image"]), bool(t["times"]))
            known.tags[tq] = TagList(
                tq, tuple(map(_tag, t["tags"])),
                {_tag(k): datetime.fromisoformat(v) for k, v in t["created"].items()},
                _load_error(t["error"]), tuple(map(_words, t["dropped"][:MAX_NAMES])))
        for d in data["digests"]:
            platform = d["platform"]
            if platform is not None and not (isinstance(platform, str) and _PLATFORM.fullmatch(platform)):
                raise ValueError("a platform is os/architecture[/variant]")
            want = Want(_load_image(d["image"]), _tag(d["tag"]), DigestFormat(d["format"]), platform)
            known.digests[want] = Observation(want, _value(d["value"], want.format),
                                              _load_error(d["error"]))
        for a in data["ages"]:
            known.facts.ages[(_load_image(a["image"]), _tag(a["tag"]), _digest(a["digest"]))] = Seen(
                None if a["at"] is None else datetime.fromisoformat(a["at"]), _words(a["clock"]),
                _maybe_words(a["pending"]), _maybe_words(a["held"]))
        for v in data["verdicts"]:
            key = (VerifyPolicy.model_validate(v["policy"]), _load_image(v["image"]), _digest(v["digest"]))
            known.facts.verdicts[key] = Checked(
                bool(v["ok"]), _words(v["text"]), None if v["signer"] is None else _words(v["signer"]),
                None if v["logged_at"] is None else datetime.fromisoformat(v["logged_at"]),
                _flag(v["held"]))
        for e in data["explained"]:
            known.explained[(_load_image(e["image"]), _words(e["old"]), _words(e["new"]))] = (
                None if e["line"] is None else _words(e["line"]))
        return known
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError, TagsyncError) as exc:
        raise ConfigError(f"stored registry answers are unreadable ({type(exc).__name__}: "
                          f"{_words(exc)[:200]})",
                          file=source) from None


# What a registry's answers are held to when they arrive is what they are held to when read back:
# a value written into a repository's files comes from here.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                   r"(?::[0-9]{1,5})?")
_HEX = re.compile(r"[0-9a-f]{12,128}")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9]+(/[a-z0-9.]+)?")
MAX_WORDS = 1000  # an error's or an explanation's words


def _load_image(value: Any) -> ImageName:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError("an image is [registry, repository]")
    registry, repository = value
    if not _HOST.fullmatch(registry) or not is_repository(repository):
        raise ValueError("an image's registry or repository is off the grammar")
    return ImageName(registry, repository)


def _tag(value: Any) -> str:
    if not is_tag(value):
        raise ValueError("a tag is off the OCI tag grammar")
    return str(value)


def _digest(value: Any) -> str:
    validate_digest(value)
    return str(value)


def _value(value: Any, fmt: DigestFormat) -> str | None:
    """A digest question's answer in the format asked: a full digest, or its hex."""
    if value is None:
        return None
    if fmt is DigestFormat.full:
        return _digest(value)
    if not (isinstance(value, str) and _HEX.fullmatch(value)):
        raise ValueError(f"a {fmt.value} digest is hex")
    return value


def _words(value: Any) -> str:
    """Stored words, as they may reach a terminal or an issue: one printable line, bounded."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return text[:MAX_WORDS]


def _maybe_words(value: Any) -> str | None:
    return None if value is None else _words(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("a flag is true or false")
    return value


def _load_error(value: Any) -> TagsyncError | None:
    if value is None:
        return None
    kind = getattr(errors, str(value["kind"]), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.RegistryError)):
        kind = errors.RegistryError  # only a registry's kinds of failure are ever stored
    return kind(_words(value["message"]),
                image=None if value["image"] is None else _words(value["image"]))
