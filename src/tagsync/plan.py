"""Plan: what the catalogs hold + what the registries say → an ordered list of changes.

Pure and deterministic: the same inputs always give the same plan in the same order (file,
then position), so dry-runs, commits and retries after a moved branch agree with each other.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from tagsync.catalog.append import Append, fill_template
from tagsync.catalog.edit import Edit
from tagsync.catalog.insert import InsertKey
from tagsync.catalog.path import format_path, parse_path
from tagsync.catalog.text import SpliceAt
from tagsync.config import Config
from tagsync.errors import CatalogError
from tagsync.find.model import Discovery, Growth, Note, Slot
from tagsync.patterns import blame, compile_pattern
from tagsync.policy import Kind, Policy, format_age
from tagsync.reference import ImageName, short
from tagsync.registry import Observation, RepoList, RepoQuery, TagList, TagQuery, Want


@dataclass(frozen=True)
class Change:
    """One edit: `set` a value (digest, the tag a policy moved, or a whole reference), `insert`
    a key (`key`) into the mapping at `path`, or `append` a new [tag, digest] item (`values`) or
    a new entry (`entry`, YAML text) to the list at `path`. Outside YAML, `span` locates the
    value (a Dockerfile) and `path` is empty."""

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
    kind: str = "set"
    values: tuple[str, ...] = ()
    entry: str | None = None
    key: str | None = None
    span: tuple[int, int] | None = None
    old_tag: str | None = None  # a whole reference's tag before the change
    why: str | None = None  # verified facts that vouch for the new value (the gate's), for people
    slot: str = ""  # the reference this edit belongs to (a tag and its digest are one image)
    # What the gate checks (tagsync.gate): the digest this edit writes (None for a tag), the
    # platform it was resolved for, and the `min_age` of the policy that asked for it.
    digest: str | None = None
    platform: str | None = None
    min_age: timedelta | None = None
    claims: str | None = None  # what the image's labels say (its publisher's claims), for people

    def edit(self) -> Edit | Append | InsertKey | SpliceAt:
        if self.span is not None:
            return SpliceAt(self.span[0], self.span[1], self.old, self.new)
        if self.kind == "append":
            return Append(parse_path(self.path), self.values, self.entry, self.doc)
        if self.kind == "insert":
            assert self.key is not None
            return InsertKey(parse_path(self.path), self.key, self.new, self.doc)
        return Edit.parse(self.path, self.new, self.doc)

    def describe(self) -> str:
        """In words about images, not fields: `nginx 1.25.3 -> 1.25.4 and its digest`."""
        if self.kind == "append" and self.entry is not None:
            return f"new entry {self.image}:{self.tag} @ {self.new}"
        if self.kind == "append":
            return f"new tag {self.image}:{self.tag} @ {self.new}"
        if self.kind == "insert":
            return f"{self.image}:{self.tag} pinned to {short(self.new)}"
        if self.old_tag is not None:
            if self.old_tag != self.tag:
                digest = " and its digest" if "@" in self.new else ""
                return f"{self.image} {self.old_tag} -> {self.tag}{digest}"
            if "@" not in self.old:
                return f"{self.image}:{self.tag} pinned to {short(self.new.rsplit('@', 1)[-1])}"
            return (f"{self.image}:{self.tag} {short(self.old.rsplit('@', 1)[-1])} -> "
                    f"{short(self.new.rsplit('@', 1)[-1])}")
        if self.reason.startswith("policy"):
            return f"{self.image} tag {self.old} -> {self.new} ({self.reason})"
        return f"{self.image}:{self.tag} {self.old or '(empty)'} -> {self.new}"

    def explanation(self) -> list[str]:
        """What vouches for the change, verified facts apart from the image's own claims."""
        out = [f"verified: {self.why}"] if self.why else []
        if self.claims:
            out.append(f"claimed by the image's labels (not verified): {self.claims}")
        return out


@dataclass(frozen=True)
class Failure:
    """An image (a reference) not updated this run, and why; `column` where the reason points
    into the file (an edit the engine refused)."""

    catalog: str
    file: str
    line: int
    image: str
    tag: str
    error: str
    column: int | None = None


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


def want_of(slot: Slot, tag: str | None = None) -> Want:
    return Want(slot.image, tag or slot.tag, slot.format, slot.platform)


def tag_queries(slots: Iterable[Slot], growths: Iterable[Growth]) -> set[TagQuery]:
    """Which repositories must list their tags: those whose entries a policy may move or grow."""
    out = {_query(s.image, s.policy) for s in slots if s.moves}
    out |= {_query(g.image, g.policy) for g in growths}
    return out


def _query(image: ImageName, policy: Policy) -> TagQuery:
    """`newest` and `min_age` need creation times with the tags; the rest need names only."""
    return TagQuery(image, policy.needs_times)


def _tag_list(tag_lists: Mapping[TagQuery, TagList], image: ImageName, policy: Policy) -> TagList | None:
    return tag_lists.get(_query(image, policy))


def choose_tags(slots: Iterable[Slot], tag_lists: Mapping[TagQuery, TagList],
                now: datetime | None = None) -> dict[Slot, str | None]:
    """The tag each slot should follow after this run (None: the registry could not say).
    Under `min_age`, only tags old enough compete (the current tag always does)."""
    out: dict[Slot, str | None] = {}
    for slot in slots:
        if not slot.moves:
            out[slot] = slot.tag
            continue
        listing = _tag_list(tag_lists, slot.image, slot.policy)
        if listing is None or listing.error is not None:
            out[slot] = None
            continue
        tags: Iterable[str] = listing.tags
        if slot.policy.min_age is not None:
            ripe = slot.policy.ripe(listing.tags, listing.created, now or datetime.now(UTC))
            tags = [*ripe, *([slot.tag] if slot.tag in listing.tags else [])]
        with blame(str(slot.image), f"catalog {slot.catalog}"):
            out[slot] = slot.policy.best(tags, listing.created)
    return out


def waiting_for(slot: Slot, target: str, tag_lists: Mapping[TagQuery, TagList],
                now: datetime) -> str | None:
    """Why a better tag is held back by `min_age` ("… waits until …; following … meanwhile"),
    or None. Whether the digest written may go is the gate's question (`tagsync.gate`)."""
    min_age = slot.policy.min_age
    if min_age is None or not slot.moves:
        return None
    listing = _tag_list(tag_lists, slot.image, slot.policy)
    if listing is None:
        return None
    created = listing.created
    with blame(str(slot.image), f"catalog {slot.catalog}"):
        best = slot.policy.best(listing.tags, created)
    if best is not None and best != target and best in created:
        return (f"{best} waits until {_when(created[best] + min_age)} "
                f"(min_age {format_age(min_age)}); following {target} meanwhile")
    return None


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def new_tags(growths: Iterable[Growth], tag_lists: Mapping[TagQuery, TagList]) -> dict[Growth, list[str]]:
    """Tags each growing list should gain, in the policy's order."""
    out: dict[Growth, list[str]] = {}
    for g in growths:
        listing = _tag_list(tag_lists, g.image, g.policy)
        if listing is not None and listing.error is None:
            with blame(str(g.image), f"catalog {g.catalog}"):
                found = g.policy.newer(listing.tags, g.known, listing.created)
            if found:
                out[g] = found
    return out


@dataclass(frozen=True)
class NewRepository:
    discovery: Discovery
    image: ImageName
    fields: tuple[tuple[str, str], ...]  # template field -> value

    @property
    def query(self) -> TagQuery:
        return _query(self.image, self.discovery.policy)


def repo_queries(discoveries: Iterable[Discovery]) -> set[RepoQuery]:
    return {RepoQuery(d.registry, d.namespace) for d in discoveries}


def new_repositories(discoveries: Iterable[Discovery],
                     repo_lists: Mapping[RepoQuery, RepoList]) -> list[NewRepository]:
    """Repositories of the namespace that match the image template and the catalog lacks."""
    out: list[NewRepository] = []
    for d in discoveries:
        listing = repo_lists.get(RepoQuery(d.registry, d.namespace))
        if listing is None or listing.error is not None:
            continue
        # the image template's pattern: its fields can backtrack against a listed name
        pattern = compile_pattern(d.pattern, "image")
        for name in listing.names:
            with blame(f"{d.registry}/{name}", f"catalog {d.catalog}"):
                m = pattern.search(name)
            if m is None or name in d.known or any(fnmatch.fnmatchcase(name, x) for x in d.exclude):
                continue
            fields = tuple((field, m.group(group)) for group, field in d.fields)
            out.append(NewRepository(d, ImageName(d.registry, name), (*fields, ("repository", name))))
    return out


def new_repository_tag(repo: NewRepository, tag_lists: Mapping[TagQuery, TagList]) -> str | None:
    policy = repo.discovery.policy
    if policy.kind is Kind.same:
        return repo.discovery.tag
    listing = tag_lists.get(repo.query)
    if not listing or listing.error:
        return None
    with blame(str(repo.image), f"catalog {repo.discovery.catalog}"):
        return policy.best(listing.tags, listing.created)


def wants(targets: Mapping[Slot, str | None], growing: Mapping[Growth, list[str]],
          repos: Iterable[NewRepository] = (), tag_lists: Mapping[TagQuery, TagList] | None = None,
          ) -> set[Want]:
    out = {want_of(s, t) for s, t in targets.items() if t is not None and s.wants_digest}
    out |= {Want(g.image, t, g.format, g.platform) for g, tags in growing.items() for t in tags}
    for repo in repos:
        tag = new_repository_tag(repo, tag_lists or {})
        if tag is not None:
            out.add(Want(repo.image, tag, repo.discovery.format, repo.discovery.platform))
    return out


def _error(obs: Observation | None) -> str:
    return obs.error.message if obs is not None and obs.error else "not observed"


def make_plan(
    slots: Iterable[Slot],
    observations: Mapping[Want, Observation],
    notes: Iterable[Note] = (),
    tag_lists: Mapping[TagQuery, TagList] | None = None,
    growths: Iterable[Growth] = (),
    discoveries: Iterable[Discovery] = (),
    repo_lists: Mapping[RepoQuery, RepoList] | None = None,
    now: datetime | None = None,
    promoted: Mapping[Slot, tuple[str, str] | tuple[str, bool]] | None = None,
) -> Plan:
    """The draft of what a run would write. `now`: the run's clock (a parameter, so the plan
    stays a pure function); `promoted`: for slots of a catalog that follows another, (tag,
    digest) to write, or (why not, waiting). Every change names the digest it writes and the
    `min_age` it answers to: `tagsync.gate` decides which of them may be written."""
    promoted = promoted or {}
    tag_lists, repo_lists = tag_lists or {}, repo_lists or {}
    now = now or datetime.now(UTC)
    plan = Plan(notes=sorted(notes, key=lambda n: (n.file, n.line)))
    discoveries = list(discoveries)
    for d in discoveries:
        repo_list = repo_lists.get(RepoQuery(d.registry, d.namespace))
        if repo_list is not None and repo_list.error is not None:
            plan.failures.append(Failure(d.catalog, d.file, d.line, f"{d.registry}/{d.namespace}", "",
                                         f"cannot list repositories: {repo_list.error.message}"))
    repos = new_repositories(discoveries, repo_lists)
    slot_list = sorted(slots, key=lambda s: (s.file, s.doc, s.line, format_path(s.path or ())))
    targets = choose_tags([s for s in slot_list if s not in promoted], tag_lists, now)
    for slot in slot_list:
        image = str(slot.image)
        if slot in promoted:
            tag, what = promoted[slot]
            if isinstance(what, bool):
                if what:
                    plan.notes.append(Note(slot.catalog, slot.file, slot.line, image, slot.tag,
                                           f"waiting: {tag}", slot.doc, slot.where, slot.written,
                                           slot.shape))
                else:
                    plan.failures.append(Failure(slot.catalog, slot.file, slot.line, image,
                                                 slot.tag, tag))
                continue
            changes = [replace(c, reason="promoted") for c in slot_changes(slot, tag, what)]
            if changes:
                plan.changes.extend(changes)
            else:
                plan.up_to_date += 1
            continue
        target = targets[slot]
        listed = _tag_list(tag_lists, slot.image, slot.policy) if slot.moves else None
        if listed is not None and listed.dropped:  # a registry's junk is never ranked
            plan.notes.append(Note(slot.catalog, slot.file, slot.line, image, slot.tag,
                                   f"{len(listed.dropped)} listed tag(s) outside the OCI tag "
                                   "grammar not ranked"))
        if target is None:
            listing = _tag_list(tag_lists, slot.image, slot.policy)
            error = (listing.error.message if listing is not None and listing.error is not None
                     else f"no tag matches the policy ({slot.policy.describe()})")
            plan.failures.append(Failure(slot.catalog, slot.file, slot.line, image, slot.tag, error))
            continue
        digest: str | None = None
        if slot.wants_digest:
            obs = observations.get(want_of(slot, target))
            if obs is None or obs.value is None:  # never move a tag whose digest is unknown
                plan.failures.append(Failure(slot.catalog, slot.file, slot.line, image, target,
                                             _error(obs)))
                continue
            digest = obs.value
        waiting = waiting_for(slot, target, tag_lists, now)
        if waiting is not None:
            plan.notes.append(Note(slot.catalog, slot.file, slot.line, image, slot.tag,
                                   f"waiting: {waiting}", slot.doc, slot.where, slot.written,
                                   slot.shape))
        changes = slot_changes(slot, target, digest)
        if changes:
            plan.changes.extend(changes)
        else:
            plan.up_to_date += 1
    for growth, tags in sorted(new_tags(growths, tag_lists).items(),
                               key=lambda kv: (kv[0].file, kv[0].line)):
        for tag in tags:
            obs = observations.get(Want(growth.image, tag, growth.format, growth.platform))
            if obs is None or obs.value is None:
                plan.failures.append(Failure(growth.catalog, growth.file, growth.line,
                                             str(growth.image), tag, _error(obs)))
                continue
            plan.changes.append(Change(
                growth.catalog, growth.file, growth.doc, format_path(growth.path), growth.line,
                str(growth.image), tag, "", obs.value, f"new tag ({growth.policy.describe()})",
                kind="append", values=(tag, obs.value), digest=obs.value,
                platform=growth.platform, min_age=growth.policy.min_age))
    for repo in sorted(repos, key=lambda r: (r.discovery.file, r.discovery.line, str(r.image))):
        d = repo.discovery
        new_tag = new_repository_tag(repo, tag_lists)
        if new_tag is None:
            plan.failures.append(Failure(d.catalog, d.file, d.line, str(repo.image), "",
                                         f"new repository: no tag matches the policy "
                                         f"({d.policy.describe()})"))
            continue
        obs = observations.get(Want(repo.image, new_tag, d.format, d.platform))
        if obs is None or obs.value is None:
            plan.failures.append(Failure(d.catalog, d.file, d.line, str(repo.image), new_tag,
                                         _error(obs)))
            continue
        fields = {**dict(repo.fields), "tag": new_tag, "digest": obs.value}
        try:
            entry = fill_template(d.template, fields)
        except CatalogError as exc:
            plan.failures.append(Failure(d.catalog, d.file, d.line, str(repo.image), new_tag,
                                         f"new_images.template: {exc.message}"))
            continue
        plan.changes.append(Change(
            d.catalog, d.file, d.doc, format_path(d.path), d.line, str(repo.image), new_tag, "",
            obs.value, "new repository", kind="append", entry=entry, digest=obs.value,
            platform=d.platform, min_age=d.policy.min_age))
    return plan


def images_changed(changes: Iterable[Change]) -> int:
    """How many references the edits change: a tag moved with its digest is one image."""
    return len({c.slot or f"{c.file}:{c.line}:{c.kind}:{c.tag}" for c in changes})


def slot_changes(slot: Slot, target: str, digest: str | None) -> list[Change]:
    """The edits that make one slot follow `target` (and its `digest`, when one is written)."""
    key = f"{slot.file}:{slot.doc}:{slot.line}"
    return [replace(c, slot=key, platform=slot.platform, min_age=slot.policy.min_age,
                    digest=_written_digest(c, digest))
            for c in _slot_changes(slot, target, digest)]


def _written_digest(change: Change, digest: str | None) -> str | None:
    """The digest an edit writes: a digest field, a pin, or a whole reference carrying one (a
    tag field's edit writes none; its slot's digest edit does)."""
    if digest is None:
        return None
    if change.span is not None or change.old_tag is not None:  # a whole reference
        return digest if change.new.endswith("@" + digest) else None
    return digest if change.new == digest else None


def _slot_changes(slot: Slot, target: str, digest: str | None) -> list[Change]:
    image = str(slot.image)
    where = format_path(slot.path) if slot.path is not None else ""
    if slot.ref is not None:
        ref = slot.ref
        # a digest added to `nginx` keeps the tag it implied (`nginx:latest@sha256:…`): a
        # digest alone would leave no tag to follow from then on
        pinning = slot.pin and digest is not None and ref.digest is None
        tag = target if ref.tag is not None or target != slot.tag or pinning else None
        new = slot.render(tag, digest if slot.pin else None)
        if new == slot.written:
            return []
        reason = (f"policy {slot.policy.describe()}" if target != slot.tag
                  else "digest pinned" if not ref.digest else "digest changed")
        return [Change(slot.catalog, slot.file, slot.doc, where, slot.line, image, target,
                       slot.written, new, reason, span=slot.span, old_tag=slot.tag)]
    changes: list[Change] = []
    if digest is not None and slot.path is not None and (digest != slot.current or target != slot.tag):
        changes.append(Change(
            slot.catalog, slot.file, slot.doc, where, slot.line, image, target, slot.current, digest,
            "digest filled in" if not slot.current else
            "digest changed" if target == slot.tag else f"tag moved to {target}"))
    elif digest is not None and slot.insert_digest is not None:
        mapping, key = slot.insert_digest
        changes.append(Change(slot.catalog, slot.file, slot.doc, format_path(mapping), slot.line,
                              image, target, "", digest, "digest pinned", kind="insert", key=key))
    if target != slot.tag and slot.tag_path is not None:
        changes.insert(0, Change(
            slot.catalog, slot.file, slot.doc, format_path(slot.tag_path), slot.tag_line, image,
            slot.tag, slot.tag, target, f"policy {slot.policy.describe()}"))
    return changes


# A commit message lists this many changes at most, in at most about this many characters: past
# a few hundred, a list is read by no one, and `git log` and GitHub's pages slow down on it.
MESSAGE_CHANGES = 300
MESSAGE_ROOM = 60_000


def commit_message(config: Config, plan: Plan) -> str:
    """Subject from the config template; body lists each change, one per line (the first
    MESSAGE_CHANGES, then a line saying how many more the commit holds)."""
    catalogs = sorted({c.catalog for c in plan.changes})
    target = config.git or config.github
    template = target.message if target is not None else "tagsync: update {images} image(s)"
    images = images_changed(plan.changes)
    subject = template.format(count=len(plan.changes), images=images, catalogs=", ".join(catalogs))
    body: list[str] = []
    room = MESSAGE_ROOM
    for c in plan.changes:
        item = (f"- {c.describe()} ({inert_path(c.file)}:{c.line})"
                + "".join(f"\n  {line}" for line in c.explanation()))
        room -= len(item) + 1
        if len(body) == MESSAGE_CHANGES or room < 0:
            body.append(f"{len(plan.changes) - len(body)} more change(s) not listed here; the "
                        "commit holds every change.")
            break
        body.append(item)
    return subject + "\n\n" + "\n".join(body) + "\n"


def inert_path(path: str) -> str:
    """A file's path as a commit message may carry it: GitHub acts on a pushed message's words
    (`fixes acme/other#1` closes another repository's issue, with the pusher's rights), and a
    path is its repository author's choice; a space, `#` or `@` is shown %-escaped."""
    return re.sub(r"[\s#@%]", lambda m: "%" + format(ord(m.group()), "02X"), path)
