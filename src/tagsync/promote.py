"""Promotion lanes: a catalog follows another instead of a registry.

`follow: {catalog: staging, after: 24h}` takes each image's reference from the staging
catalog once staging has held that exact value for 24 hours, by its Git history (the time of
the commit that wrote it), and only while staging still holds it. Pure: the history comes in as
data, and the verdict for each following slot is a promotion, a note (waiting), or a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tagsync.find.model import Slot
from tagsync.policy import format_age
from tagsync.reference import ImageName

History = list[tuple[datetime, bytes | None]]  # newest first: (commit time, file at that commit)


@dataclass(frozen=True)
class Promotion:
    tag: str
    digest: str
    since: datetime


@dataclass(frozen=True)
class Held:
    """Why a following slot does not move this run (`waiting` is not a failure)."""

    reason: str
    waiting: bool


def value(slot: Slot) -> tuple[str, str] | None:
    """The (tag, digest) a slot holds now; None without a digest (nothing exact to promote)."""
    digest = slot.ref.digest if slot.ref is not None else slot.current
    tag = (slot.ref.tag if slot.ref is not None else slot.tag) or "latest"
    return (tag, digest) if digest and digest.startswith("sha256:") else None


def held_since(history: History, current: tuple[str, str],
               value_at: Callable[[bytes], tuple[str, str] | None]) -> datetime | None:
    """When the file started holding `current` without interruption: the time of the oldest
    commit in the newest run of commits whose file holds it."""
    since: datetime | None = None
    for when, data in history:
        if data is None or value_at(data) != current:
            break
        since = when
    return since


def promote(following: Iterable[Slot], staging: Iterable[Slot], after: timedelta, now: datetime,
            history_of: Callable[[Slot], tuple[History, Callable[[bytes], tuple[str, str] | None]]],
            source: str) -> Mapping[Slot, Promotion | Held]:
    """For each following slot: the staging value to write, or why not (yet)."""
    by_image: dict[ImageName, list[Slot]] = {}
    for slot in staging:
        by_image.setdefault(slot.image, []).append(slot)
    out: dict[Slot, Promotion | Held] = {}
    for slot in following:
        candidates = by_image.get(slot.image, [])
        values = {v for s in candidates if (v := value(s)) is not None}
        if not candidates:
            out[slot] = Held(f"catalog {source} has no reference to {slot.image}", waiting=False)
            continue
        if len(values) != 1:
            out[slot] = Held(f"catalog {source} holds {len(values) or 'no'} digest-pinned values "
                             f"for {slot.image}; promotion needs exactly one", waiting=False)
            continue
        current = next(iter(values))
        leader = next(s for s in candidates if value(s) == current)
        history, value_at = history_of(leader)
        since = held_since(history, current, value_at)
        if since is None:
            out[slot] = Held(f"cannot tell since when {source} holds {current[0]}@{current[1][:19]}… "
                             f"({leader.file} has no commit history here)", waiting=False)
        elif now - since < after:
            out[slot] = Held(f"{current[0]} promotes from {source} at "
                             f"{(since + after).strftime('%Y-%m-%d %H:%M UTC')} "
                             f"(held there since {since.strftime('%Y-%m-%d %H:%M UTC')}; "
                             f"after {format_age(after)})", waiting=True)
        else:
            out[slot] = Promotion(current[0], current[1], since)
    return out
