"""Promotion lanes: a catalog follows another instead of a registry.

`follow: {catalog: staging, after: 24h}` takes each image's reference from the staging
catalog once staging has held that exact value for 24 hours, and only while staging still
holds it. Pure: the history comes in as data, and the verdict for each following slot is a
promotion, a note (waiting), or a failure.

Time comes from the staging branch's first-parent history: a value is held from the commit on
the branch itself (a merge, not the merged branch's old commits) where it first appeared. A
committer time is what its committer says, so each is clamped to be no earlier than its
parent's (a backdated commit counts from its parent's time at the earliest), and a time in the
future counts as now, with a warning. See docs/verify.md for what this stops and what it cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tagsync.find.model import Slot
from tagsync.policy import format_age
from tagsync.reference import ImageName

# Newest first along first parents: (commit id, committer time, the file at that commit, read
# when asked; None where the commit has no such file).
History = list[tuple[str, datetime, Callable[[], bytes | None]]]


@dataclass(frozen=True)
class Promotion:
    tag: str
    digest: str
    since: datetime
    source: str = ""  # the catalog it came from
    commit: str = ""  # the first-parent commit of the source branch where the value appeared


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


@dataclass(frozen=True)
class Since:
    """Since when a value is held (None: no history says), and what about the clock was odd."""

    when: datetime | None
    commit: str = ""
    warnings: tuple[str, ...] = field(default=())


def observed_times(history: History, now: datetime) -> tuple[list[datetime], list[str]]:
    """Each commit's time as the gate trusts it, newest first: a future time counts as now
    (warned), and none is earlier than its parent's (the running maximum from the oldest)."""
    warnings: list[str] = []
    times: list[datetime] = []
    latest: datetime | None = None
    for commit, when, _ in reversed(history):
        if when > now:
            warnings.append(f"commit {commit[:12]} is dated {when:%Y-%m-%d %H:%M UTC}, in the "
                            "future: it counts as now")
            when = now
        latest = when if latest is None or when > latest else latest
        times.append(latest)
    return list(reversed(times)), list(reversed(warnings))


def held_since(history: History, current: tuple[str, str],
               value_at: Callable[[bytes], tuple[str, str] | None],
               now: datetime | None = None) -> Since:
    """When the file started holding `current` without interruption: the observed time of the
    oldest first-parent commit in the newest run of commits whose file holds it."""
    times, warnings = observed_times(history, now or datetime.now(UTC))
    since = Since(None, "", tuple(warnings))
    for (commit, _, load), when in zip(history, times, strict=True):
        data = load()
        if data is None or value_at(data) != current:
            break
        since = Since(when, commit, tuple(warnings))
    return since


def promote(following: Iterable[Slot], staging: Iterable[Slot], after: timedelta, now: datetime,
            history_of: Callable[[Slot], tuple[History, Callable[[bytes], tuple[str, str] | None]]],
            source: str, warnings: list[str] | None = None) -> Mapping[Slot, Promotion | Held]:
    """For each following slot: the staging value to write, or why not (yet); what about the
    source's clock was odd is added to `warnings`."""
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
        held = held_since(history, current, value_at, now)
        if warnings is not None:
            warnings.extend(f"catalog {source}, {leader.file}: {w}" for w in held.warnings
                            if f"catalog {source}, {leader.file}: {w}" not in warnings)
        since = held.when
        if since is None:
            out[slot] = Held(f"cannot tell since when {source} holds {current[0]}@{current[1][:19]}… "
                             f"({leader.file} has no commit history here)", waiting=False)
        elif now - since < after:
            out[slot] = Held(f"{current[0]} promotes from {source} at "
                             f"{(since + after).strftime('%Y-%m-%d %H:%M UTC')} "
                             f"(held there since {since.strftime('%Y-%m-%d %H:%M UTC')}; "
                             f"after {format_age(after)})", waiting=True)
        else:
            out[slot] = Promotion(current[0], current[1], since, source, held.commit)
    return out
