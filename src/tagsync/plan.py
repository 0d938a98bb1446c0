"""Plan: what the catalogs hold + what the registries say → an ordered list of changes.

Pure and deterministic: the same inputs always give the same plan in the same order (file,
then position), so dry-runs, commits and retries after a moved branch agree with each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tagsync.catalog.edit import Edit
from tagsync.catalog.locate import Note, Slot
from tagsync.catalog.path import format_path
from tagsync.config import Config
from tagsync.registry import Observation, Want


@dataclass(frozen=True)
class Change:
    catalog: str
    file: str
    doc: int
    path: str
    line: int
    image: str
    tag: str
    old: str
    new: str
    reason: str

    def edit(self) -> Edit:
        return Edit.parse(self.path, self.new, self.doc)


@dataclass(frozen=True)
class Failure:
    catalog: str
    file: str
    line: int
    image: str
    tag: str
    error: str


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    up_to_date: int = 0

    def by_file(self) -> dict[str, list[Change]]:
        out: dict[str, list[Change]] = {}
        for c in self.changes:
            out.setdefault(c.file, []).append(c)
        return out


def want_of(slot: Slot) -> Want:
    return Want(slot.image, slot.tag, slot.format, slot.platform)


def make_plan(
    slots: Iterable[Slot], observations: Mapping[Want, Observation], notes: Iterable[Note] = ()
) -> Plan:
    plan = Plan(notes=sorted(notes, key=lambda n: (n.file, n.line)))
    for slot in sorted(slots, key=lambda s: (s.file, s.doc, s.line, s.path)):
        obs = observations.get(want_of(slot))
        image = str(slot.image)
        if obs is None or obs.value is None:
            error = obs.error.message if obs is not None and obs.error else "not observed"
            plan.failures.append(Failure(slot.catalog, slot.file, slot.line, image, slot.tag, error))
        elif obs.value == slot.current:
            plan.up_to_date += 1
        else:
            plan.changes.append(Change(
                slot.catalog, slot.file, slot.doc, format_path(slot.path), slot.line, image,
                slot.tag, slot.current, obs.value,
                "digest changed" if slot.current else "digest filled in",
            ))
    return plan


def commit_message(config: Config, plan: Plan) -> str:
    """Subject from the config template; body lists every change, one per line."""
    catalogs = sorted({c.catalog for c in plan.changes})
    target = config.git or config.github
    template = target.message if target is not None else "tagsync: update {count} image digest(s)"
    subject = template.format(count=len(plan.changes), catalogs=", ".join(catalogs))
    body = [f"- {c.image}:{c.tag} {c.old or '(empty)'} -> {c.new} ({c.file}:{c.line})"
            for c in plan.changes]
    return subject + "\n\n" + "\n".join(body) + "\n"
