"""Explain a bump: where the new image comes from and what changed, from the images' own labels.

OCI labels and annotations (`org.opencontainers.image.source`, `.revision`, `.version`,
`.created`) of the old and the new image give the source repository, a compare view between the
two revisions when the source is on a forge whose URL scheme is known, the new version and its
age. Reading them costs a manifest and a config read per image, only for what a run changes
(the old image only when the new one names a forge's revision to compare with), once per
(image, digest) in a run; an image without labels simply explains less.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tagsync.errors import TagsyncError
from tagsync.reference import ImageName, Reference
from tagsync.registry.base import Source, parse_time, time_left
from tagsync.registry.manifest import INDEX_TYPES, config_digest, media_type_of, parse_manifest

log = logging.getLogger(__name__)

SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
CREATED = "org.opencontainers.image.created"
_FULL = re.compile(r"^sha256:[0-9a-f]{64}$")
_FORGES = {
    "github.com": "{repo}/compare/{old}...{new}",
    "codeberg.org": "{repo}/compare/{old}...{new}",
    "gitlab.com": "{repo}/-/compare/{old}...{new}",
}


@dataclass(frozen=True)
class Provenance:
    source: str | None = None
    revision: str | None = None
    version: str | None = None
    created: datetime | None = None


async def provenance(source: Source, image: ImageName, reference: str,
                     revision_only: bool = False) -> Provenance | None:
    """The image's labels and annotations (the manifest's win); None when it cannot be read.
    `revision_only`: an old image needs only its revision; when the manifest's annotations
    carry it, its config is not read."""
    name = str(image)
    try:
        body, media_type = await source.get(image, reference)
        doc = parse_manifest(body, name)
        notes = dict(doc.get("annotations") or {})
        if media_type_of(doc, media_type) in INDEX_TYPES:
            manifests = doc.get("manifests") or []
            if not manifests:
                return _provenance(notes, {})
            body, _ = await source.get(image, str(manifests[0]["digest"]))
            doc = parse_manifest(body, name)
            notes = {**(doc.get("annotations") or {}), **notes}
        if revision_only and isinstance(notes.get(REVISION), str):
            return _provenance(notes, {})
        config = json.loads(await source.blob(image, config_digest(doc, name)))
    except (TagsyncError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(config, dict):
        return None
    labels = (config.get("config") or {}).get("Labels") or {}
    return _provenance(notes, {**labels, "created": config.get("created")})


# A label is its image publisher's claim, and its words go into every commit message and pull
# request that bumps the image (in organisation mode, into every repository using it): each is
# held to its own grammar, without spaces, `#` or `@`, so that no label can say `fixes #1` (a
# commit pushed to a default branch closes that issue, `acme/other#1` another repository's),
# mention anyone or reference anything. A label off its grammar explains nothing.
_GRAMMAR = {
    VERSION: re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}"),
    REVISION: re.compile(r"[0-9A-Za-z._/-]{1,100}"),
    SOURCE: re.compile(r"https://[A-Za-z0-9.-]+/[A-Za-z0-9._~/%+-]*"),
}


def _provenance(annotations: dict[str, object], labels: dict[str, object]) -> Provenance:
    merged = {**labels, **annotations}

    def text(key: str) -> str | None:
        value = merged.get(key)
        return value if isinstance(value, str) and _GRAMMAR[key].fullmatch(value) else None

    return Provenance(_clean_url(text(SOURCE)), text(REVISION), text(VERSION),
                      parse_time(merged.get(CREATED) or labels.get("created")))


def _clean_url(url: str | None) -> str | None:
    if url is None or not _GRAMMAR[SOURCE].fullmatch(url):
        return None
    return url.removesuffix("/").removesuffix(".git")


def compare_url(source: str | None, old: str | None, new: str | None) -> str | None:
    """A forge's compare view between two revisions of the source repository."""
    if not source or not old or not new or old == new:
        return None
    if not (re.fullmatch(r"[0-9A-Za-z._/-]{1,100}", old) and re.fullmatch(r"[0-9A-Za-z._/-]{1,100}", new)):
        return None
    host = source.split("/")[2]
    pattern = _FORGES.get(host)
    return pattern.format(repo=source, old=old, new=new) if pattern else None


def describe(old: Provenance | None, new: Provenance | None, now: datetime | None = None) -> str | None:
    """One line for the commit message and the PR body; None when the images say nothing."""
    if new is None:
        return None
    parts: list[str] = []
    if new.version:
        parts.append(f"version {new.version}")
    compare = compare_url(new.source, old.revision if old else None, new.revision)
    if compare:
        parts.append(f"changes {compare}")
    elif new.source:
        parts.append(f"source {new.source}" + (f" at {new.revision[:12]}" if new.revision else ""))
    if new.created:
        seconds = ((now or datetime.now(UTC)) - new.created).total_seconds()
        hours = int(abs(seconds) // 3600)
        if seconds < 0:  # a clock ahead of ours: not "0h ago"
            parts.append(f"says it was built {new.created:%Y-%m-%d %H:%M UTC}, in the future")
        else:
            parts.append(f"built {hours // 24}d {hours % 24}h ago" if hours >= 24
                         else f"built {hours}h ago")
    return "; ".join(parts) or None


def references(old: str, new: str, old_tag: str, new_tag: str) -> tuple[str, str] | None:
    """What to read for a change's old and new image: a full digest where one is written,
    else the tag (a short digest or an image id cannot be fetched)."""
    def pick(value: str, tag: str) -> str | None:
        text = value.split("://", 1)[-1]
        try:
            ref = Reference.parse(text)
        except TagsyncError:
            ref = None
        if ref is not None and ref.digest:
            return ref.digest
        if _FULL.match(value):
            return value
        return tag or (ref.tag if ref else None)

    a, b = pick(old, old_tag), pick(new, new_tag)
    return (a, b) if a and b else None


def needs_old(new: Provenance | None) -> bool:
    """The old image's labels add only the compare view's start: read them only when the new
    image names a revision of a source on a forge whose compare view is known."""
    if new is None or not new.source or not new.revision:
        return False
    return new.source.split("/")[2] in _FORGES


async def explain_all(sources: dict[str, Source], wanted: list[tuple[ImageName, str, str]],
                      now: datetime | None = None, *, concurrency: int = 16,
                      deadline: float | None = None, budget: float = 20.0,
                      progress: Callable[[int, int], None] | None = None,
                      ) -> dict[tuple[ImageName, str, str], str | None]:
    """(image, old reference, new reference) → the line, reading each image once.

    Images are read `concurrency` at a time (each registry's own connection limit holds too),
    every change's new image first, then the old ones a compare view needs. One image's reads
    get `budget` seconds in all, never past `deadline` (`time.monotonic()`): an image that
    answers slowly explains less, it does not hold the run."""
    gate = asyncio.Semaphore(concurrency)
    cache: dict[tuple[ImageName, str, bool], asyncio.Future[Provenance | None]] = {}
    out: dict[tuple[ImageName, str, str], str | None] = {}
    todo = [w for w in wanted if w[0].registry in sources]
    done = 0

    async def lane(image: ImageName, ref: str, revision_only: bool) -> Provenance | None:
        async with gate:
            seconds = time_left(deadline, budget)
            if seconds <= 0:
                return None
            try:
                async with asyncio.timeout(seconds):
                    return await provenance(sources[image.registry], image, ref, revision_only)
            except TimeoutError:
                log.info("%s: labels of %s not read within %.0fs; explained less", image,
                         ref[:19], seconds)
                return None

    async def read(image: ImageName, ref: str, revision_only: bool = False) -> Provenance | None:
        key = (image, ref, revision_only)
        if key not in cache:
            cache[key] = asyncio.ensure_future(lane(image, ref, revision_only))
        # shared by the changes that name this image
        return await asyncio.shield(cache[key])

    async def one(key: tuple[ImageName, str, str]) -> None:
        nonlocal done
        image, old, new = key
        later = await read(image, new)
        earlier = await read(image, old, True) if old != new and needs_old(later) else None
        out[key] = describe(earlier, later, now)
        done += 1
        if progress is not None:
            progress(done, len(todo))

    try:
        await asyncio.gather(*(one(w) for w in todo))
    finally:
        for task in cache.values():  # nothing left running when the caller moves on
            task.cancel()
    return out
