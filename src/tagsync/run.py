"""The job: config → observe registries → plan → edit text → publish → report.

Everything is computed before anything is written: a run either publishes one complete change
or nothing. When the target moves under us, the run re-reads it, asks the registries again and
re-plans, a bounded number of times: whoever moved the target may have seen a newer answer than
ours, and writing ours would put an older value back (signature verdicts, which belong to a
digest, are kept).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tagsync.catalog.edit import Catalog
from tagsync.catalog.text import SpliceAt
from tagsync.config import CatalogConfig, Config
from tagsync.errors import (
    BranchMovedError,
    CatalogError,
    DeadlineError,
    ImageNotFoundError,
    MalformedAnswerError,
    NothingFoundError,
    RegistryError,
    TagsyncError,
)
from tagsync.find import Note, References, Source, find_references, open_source
from tagsync.find.globs import is_glob, select
from tagsync.find.model import Slot
from tagsync.plan import (
    Change,
    Failure,
    Plan,
    choose_tags,
    commit_message,
    make_plan,
    new_repositories,
    new_tags,
    repo_queries,
    tag_queries,
    want_of,
    wants,
)
from tagsync.policy import parse_age
from tagsync.promote import Held, Promotion, promote
from tagsync.promote import value as held_value
from tagsync.publish import Publisher, Snapshot
from tagsync.reference import ImageName
from tagsync.registry import (
    Observation,
    RepoList,
    RepoQuery,
    TagList,
    TagQuery,
    Want,
    list_repositories,
    list_tags,
    observe,
    open_clocks,
    open_listers,
    open_sources,
    stats_of,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_ANSWERS = (ImageNotFoundError, MalformedAnswerError)


@dataclass
class Summary:
    """What a run did, for people (CLI) and machines (`--json`, the Lambda's return value)."""

    dry_run: bool
    target: str
    changes: list[Change] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Note] = field(default_factory=list)
    up_to_date: int = 0
    commit: str | None = None
    pushed: bool = False
    url: str | None = None
    pull_request: int | None = None
    pull_request_action: str | None = None
    attempts: int = 1
    deferred: list[str] = field(default_factory=list)  # images left for the next run (deadline)
    warnings: list[str] = field(default_factory=list)  # config that finds less than it says
    requests: dict[str, Any] = field(default_factory=dict)
    diff: str = ""  # dry runs only: what would be written

    @property
    def partial(self) -> bool:
        return bool(self.failures)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        written = self.changes and (self.pushed or self.dry_run)  # a current PR writes nothing
        out["status"] = "partial" if self.partial else ("changed" if written else "unchanged")
        out.pop("diff")
        return out


def make_publisher(config: Config) -> Publisher:
    if config.github is not None:
        from tagsync.publish.github import github_publisher

        # GitHub ends requests that take over 10 s itself: never give up on one sooner
        return github_publisher(config.github, config.catalogs[0].name, config.base_dir,
                                timeout=max(config.run.timeout, 10.0))
    if config.git is None:
        from tagsync.publish.files import FilesPublisher

        return FilesPublisher(config.base_dir)
    from tagsync.publish.git import git_publisher

    return git_publisher(config.git, config.base_dir)


@dataclass
class Read:
    """The files the catalogs name, as the target holds them, and what was found in them."""

    sources: dict[str, Source] = field(default_factory=dict)
    refs: References = field(default_factory=References)
    warnings: list[str] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)  # catalog -> files it read


def catalog_files(cfg: CatalogConfig, snap: Snapshot, listing: list[str] | None,
                  warnings: list[str]) -> tuple[list[str], list[str] | None]:
    """The files one catalog reads: `file:` as named, `files:` globs against the tree."""
    if not any(is_glob(p) for p in cfg.patterns) and not (cfg.files or []):
        return list(cfg.patterns), listing
    if listing is None:
        listing = snap.files()
    literal = [p for p in cfg.patterns if not is_glob(p) and not p.startswith("!")]
    chosen, unmatched = select(cfg.patterns, listing)
    for pattern in unmatched:
        if pattern not in literal:
            warnings.append(f"catalog {cfg.name}: `{pattern}` matches no file")
    missing = [p for p in literal if p not in listing]
    for path in missing:
        warnings.append(f"catalog {cfg.name}: `{path}` is not in the tree")
    return chosen, listing


def read_references(config: Config, snap: Snapshot) -> Read:
    """Every catalog's files, parsed, and the references found in them. Raises
    NothingFoundError when a catalog finds no reference at all, before anything is written."""
    read = Read()
    listing: list[str] | None = None
    for cfg in config.catalogs:
        files, listing = catalog_files(cfg, snap, listing, read.warnings)
        read.files[cfg.name] = files
        globbed = bool(cfg.files)
        found = References()
        for file in files:
            try:
                if file not in read.sources:
                    read.sources[file] = open_source(snap.read(file), file, cfg)
                found.extend(find_references(cfg, read.sources[file]))
            except CatalogError as exc:
                if not globbed:
                    raise
                read.warnings.append(f"catalog {cfg.name}: skipped {exc}")
        read.warnings += found.warnings
        if not found.slots and not found.notes and not found.growths and not found.discoveries:
            where = ", ".join(cfg.patterns)
            raise NothingFoundError(
                f"catalog {cfg.name} finds no image reference in {where} "
                f"({len(files)} file(s) read, kind {cfg.shape})"
                + (f"; {'; '.join(read.warnings)}" if read.warnings else ""))
        read.refs.extend(found)
    return read


@dataclass
class _Known:
    """What the registries answered in one attempt. A re-plan starts afresh and keeps only
    the signature verdicts: the moved target may hold newer values than these answers."""

    repos: dict[RepoQuery, RepoList] = field(default_factory=dict)
    tags: dict[TagQuery, TagList] = field(default_factory=dict)
    digests: dict[Want, Observation] = field(default_factory=dict)
    ages: dict[tuple[ImageName, str], datetime | None] = field(default_factory=dict)
    # by (policy, image, digest): one check per policy, whichever catalogs share it
    verdicts: dict[tuple[Any, ImageName, str], Checked] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """A signature check of one digest: passed or not, and in words (signer, or why not)."""

    ok: bool
    text: str


def _hosts(refs: References) -> set[str]:
    """Every registry a survey may ask: its references' (promoted ones included), the new
    repositories' and the growing entries'."""
    return ({q.registry for q in repo_queries(refs.discoveries)} | {s.image.registry for s in refs.slots}
            | {g.image.registry for g in refs.growths})


async def _observe(config: Config, read: References, known: _Known, sources: dict[str, Any],
                   progress: Progress | None, deadline: float | None = None,
                   verifiers: dict[int, Any] | None = None,
                   promoted: Mapping[Slot, Promotion | Held] | None = None) -> dict[str, Any]:
    """Ask the registries what the plan needs and `known` lacks: namespaces first (new
    repositories), then tag lists (policies choose tags from them), then one digest per tag.
    `sources` belong to the caller, who closes them (the survey reads more through them)."""
    if not sources:
        return {}
    rqueries = repo_queries(read.discoveries) - known.repos.keys()
    listers = open_listers(config, {q.registry for q in rqueries}, sources)
    own = [lister for lister in listers.values() if lister not in sources.values()]
    try:
        if rqueries:
            known.repos.update(await list_repositories(rqueries, listers, deadline))
        repos = new_repositories(read.discoveries, known.repos)
        queries = (tag_queries(read.slots, read.growths)
                   | {r.query for r in repos if r.discovery.policy.kind != "same"}) - known.tags.keys()
        timed = {q.image.registry for q in queries if q.times} | {
            s.image.registry for s in read.slots if s.policy.min_age is not None}
        clocks = open_clocks(config, timed)
        own += list(clocks.values())
        if queries:
            known.tags.update(await list_tags(queries, sources, config.run.concurrency, deadline,
                                              clocks))
        needed = wants(choose_tags(read.slots, known.tags), new_tags(read.growths, known.tags),
                       repos, known.tags)
        missing = needed - known.digests.keys()
        if missing:
            known.digests.update(
                await observe(missing, sources, config.run.concurrency, progress, deadline))
        await _ages(read, known, {**sources, **clocks})
        await _verify(config, read, known, sources, verifiers or {}, promoted or {})
        stats = stats_of(sources)
        stats.requests += sum(lister.requests for lister in own)
        return {k: v for k, v in asdict(stats).items() if v is not None}
    finally:
        for closable in own:
            await closable.aclose()


async def _ages(read: References, known: _Known, sources: dict[str, Any]) -> None:
    """When the image now behind each tag was built, for `min_age` on digest changes (tags a
    policy moves carry their times with the listing): ECR's push time, else the image config's
    `created` (the publisher's claim)."""
    from tagsync.registry.base import tag_times

    asked: set[tuple[ImageName, str]] = set()
    for slot in read.slots:
        if slot.policy.min_age is None or slot.moves or not slot.wants_digest:
            continue
        obs = known.digests.get(want_of(slot))
        key = (slot.image, slot.tag)
        if obs is None or obs.value is None or obs.value == slot.current or key in known.ages:
            continue
        asked.add(key)

    async def one(key: tuple[ImageName, str]) -> None:
        image, tag = key
        try:
            times = await tag_times(sources[image.registry], image, (tag,))
        except TagsyncError as exc:
            log.info("%s: creation time unknown: %s", image, exc.message)
            times = {}
        known.ages[key] = times.get(tag)

    await asyncio.gather(*(one(k) for k in sorted(asked, key=str)))


async def explain_changes(changes: list[Change], sources: dict[str, Any]) -> list[Change]:
    """Each change with a line from the old and new images' labels (source, compare view,
    version, age) added to what vouches for it; reads only the images that change, through the
    survey's own clients (its tokens, rate-limit pauses, deadline and connections)."""
    from tagsync.explain import explain_all, references
    from tagsync.reference import ImageName as Name

    wanted: dict[int, tuple[Name, str, str]] = {}
    for i, c in enumerate(changes):
        if c.kind == "append":
            continue
        whole = c.old_tag is not None
        digest = c.new.startswith("sha256:")
        if not (whole or digest or c.reason.startswith("policy")):
            continue
        if c.reason.startswith("policy") and not whole:
            refs: tuple[str, str] | None = (c.old, c.new)
        else:
            refs = references(c.old, c.new, c.old_tag or c.tag, c.tag)
        if refs is not None:
            wanted[i] = (Name.parse(c.image), *refs)
    if not wanted:
        return changes
    lines = await explain_all(sources, sorted(set(wanted.values()), key=str))
    out = list(changes)
    for i, key in wanted.items():
        line = lines.get(key)
        if line:
            out[i] = replace(out[i], why="; ".join(x for x in (out[i].why, line) if x))
    return out


def promotions(config: Config, snap: Snapshot, found: Read, now: datetime
               ) -> dict[Slot, Promotion | Held]:
    """For every slot of a catalog that follows another: what to promote, or why not yet."""
    following = [c for c in config.catalogs if c.follow is not None]
    if not following:
        return {}
    history = getattr(snap, "history", None)
    catalogs = {c.name: c for c in config.catalogs}
    out: dict[Slot, Promotion | Held] = {}
    for cfg in following:
        assert cfg.follow is not None
        source = catalogs[cfg.follow.catalog]
        mine = [s for s in found.refs.slots if s.catalog == cfg.name]
        staging = [s for s in found.refs.slots if s.catalog == source.name]

        def history_of(slot: Slot, source: CatalogConfig = source
                       ) -> tuple[list[tuple[datetime, bytes | None]], Any]:
            def value_at(data: bytes) -> tuple[str, str] | None:
                try:
                    refs = find_references(source, open_source(data, slot.file, source))
                except TagsyncError:
                    return None
                same = [v for s in refs.slots if s.image == slot.image and (v := held_value(s))]
                return same[0] if len(set(same)) == 1 else None

            return (history(slot.file) if history is not None else []), value_at

        out.update(promote(mine, staging, parse_age(cfg.follow.after), now, history_of, source.name))
    return out


def make_verifiers(config: Config) -> dict[int, Any]:
    """One verifier per verify policy the config names, keys and trust roots read now: a bad
    key or root is a config error before any registry is asked or anything written."""
    policies = [p for c in config.catalogs for p in (c.verify, *c.verify_images.values()) if p]
    if not policies:
        return {}
    from tagsync.verify import Verifier

    return {id(p): Verifier(p, config.base_dir) for p in policies}


async def _verify(config: Config, read: References, known: _Known, sources: dict[str, Any],
                  verifiers: dict[int, Any], promoted: Mapping[Slot, Promotion | Held]) -> None:
    """Check the signature of every digest about to be written under a verify policy."""
    if not verifiers:
        return
    from tagsync.verify import SourceFetch

    catalogs = {c.name: c for c in config.catalogs}
    targets = choose_tags(read.slots, known.tags)
    todo: dict[tuple[Any, ImageName, str], Any] = {}
    for slot in read.slots:
        policy = catalogs[slot.catalog].verify_for(str(slot.image))
        target = targets.get(slot)
        if policy is None or target is None or not slot.wants_digest:
            continue
        obs = known.digests.get(want_of(slot, target))
        if obs is None or obs.value is None or (obs.value == slot.current and target == slot.tag):
            continue
        if (policy, slot.image, obs.value) not in known.verdicts:
            todo[(policy, slot.image, obs.value)] = verifiers[id(policy)]
    for slot, promotion in promoted.items():
        policy = catalogs[slot.catalog].verify_for(str(slot.image))
        if (policy is not None and isinstance(promotion, Promotion)
                and (policy, slot.image, promotion.digest) not in known.verdicts):
            todo[(policy, slot.image, promotion.digest)] = verifiers[id(policy)]

    async def one(key: tuple[Any, ImageName, str], verifier: Any) -> None:
        _policy, image, digest = key
        source = sources.get(image.registry)
        if source is None:  # every host a digest was observed on has a source
            known.verdicts[key] = Checked(False, "no registry client for this host")
            return
        try:  # any source kind: OCI registry, ECR's API, an image layout
            verdict = await verifier.verify(SourceFetch(source), str(image), digest)
        except TagsyncError as exc:
            known.verdicts[key] = Checked(False, f"cannot check the signature: {exc.message}")
            return
        known.verdicts[key] = Checked(verdict.ok, f"signed by {verdict.signer}" if verdict.ok
                                      else f"{verdict.reason}: {verdict.detail}")

    await asyncio.gather(*(one(k, v) for k, v in sorted(todo.items(),
                                                         key=lambda kv: (str(kv[0][1]), kv[0][2]))))


def catalog_verdicts(config: Config, slots: Iterable[Slot],
                     verdicts: Mapping[tuple[Any, ImageName, str], Checked]
                     ) -> dict[tuple[str, ImageName, str], tuple[bool, str]]:
    """The checks as the plan reads them, by (catalog, image, digest): a verdict reached under
    one catalog's policy says nothing to a catalog with another policy, or none."""
    by_policy: dict[tuple[Any, ImageName], list[tuple[str, Checked]]] = {}
    for (policy, image, digest), checked in verdicts.items():
        by_policy.setdefault((policy, image), []).append((digest, checked))
    catalogs = {c.name: c for c in config.catalogs}
    out: dict[tuple[str, ImageName, str], tuple[bool, str]] = {}
    for slot in slots:
        policy = catalogs[slot.catalog].verify_for(str(slot.image))
        for digest, checked in by_policy.get((policy, slot.image), []) if policy else []:
            out[(slot.catalog, slot.image, digest)] = (checked.ok, checked.text)
    return out


def render_files(catalogs: dict[str, Source], plan: Plan) -> dict[str, bytes]:
    """New bytes for every file the plan touches; raises before anything is written."""
    out: dict[str, bytes] = {}
    for file, changes in plan.by_file().items():
        cat = catalogs[file]
        edits = [c.edit() for c in changes]
        if isinstance(cat, Catalog):
            text = cat.apply(e for e in edits if not isinstance(e, SpliceAt))
        else:
            text = cat.apply(e for e in edits if isinstance(e, SpliceAt))
        out[file] = cat.render(text)
    return out


def unified_diff(catalogs: dict[str, Source], files: dict[str, bytes]) -> str:
    """What a dry run would write, as `git diff` shows it (~150 ms for a 30,000-line catalog:
    only dry runs pay for it)."""
    import difflib

    chunks: list[str] = []
    for file, new in sorted(files.items()):
        old = catalogs[file].render(catalogs[file].text)
        chunks.extend(difflib.unified_diff(
            old.decode().splitlines(keepends=True), new.decode().splitlines(keepends=True),
            fromfile=f"a/{file}", tofile=f"b/{file}",
        ))
    return "".join(chunks)


def deferred(known: _Known) -> list[str]:
    """Images whose questions were cut short by the run's deadline (left for the next run)."""
    errors = ([o.error for o in known.digests.values()] + [t.error for t in known.tags.values()]
              + [r.error for r in known.repos.values()])
    return sorted({e.image or "?" for e in errors if isinstance(e, DeadlineError)})


# What a caller reads next through the survey's own clients (explanations, image ages).
Then = Callable[[Read, Plan, dict[str, Any]], Awaitable[None]]


def survey(config: Config, snap: Snapshot, known: _Known, progress: Progress | None = None,
           deadline: float | None = None, then: Then | None = None
           ) -> tuple[Read, Plan, dict[str, Any]]:
    """Read the catalogs, ask the registries what `known` lacks, and plan: everything a run
    decides, with nothing written (`run` publishes it; `status` reports it). `then` reads more
    (a change's provenance, an image's age) before the registry clients close."""
    verifiers = make_verifiers(config)
    found = read_references(config, snap)
    now = datetime.now(UTC)
    promoted = promotions(config, snap, found, now)
    read = replace(found.refs, slots=[s for s in found.refs.slots if s not in promoted])

    async def ask() -> tuple[Plan, dict[str, Any]]:
        # One event loop and one client per registry for the whole survey and what follows it:
        # one token dance, one Retry-After budget, one deadline, warm connections. A client
        # contacts nothing until asked, so every host a reference names gets one.
        sources = open_sources(config, _hosts(found.refs), deadline)
        try:
            stats = await _observe(config, read, known, sources, progress, deadline, verifiers,
                                   promoted)
            plan = _plan(config, found, read, known, promoted, now)
            if then is not None:
                before = asdict(stats_of(sources))
                await then(found, plan, sources)
                for key, value in asdict(stats_of(sources)).items():  # what it read counts too
                    if key == "ratelimit_remaining":
                        if value is not None:
                            stats[key] = value
                    elif value != before[key]:
                        stats[key] = stats.get(key, 0) + value - before[key]
            return plan, stats
        finally:
            for source in sources.values():
                await source.aclose()

    plan, stats = asyncio.run(ask())
    return found, plan, stats


async def explain(found: Read, plan: Plan, sources: dict[str, Any]) -> None:
    """`survey(then=explain)`: each change says where its new image comes from."""
    if plan.changes:
        plan.changes = await explain_changes(plan.changes, sources)


def _plan(config: Config, found: Read, read: References, known: _Known,
          promoted: Mapping[Slot, Promotion | Held], now: datetime) -> Plan:
    """The plan from what the registries answered; RegistryError when none answered at all."""
    errors = ([o.error for o in known.digests.values()] + [t.error for t in known.tags.values()]
              + [r.error for r in known.repos.values()])
    # a 404 or an unusable answer is still an answer: only silence is "no registry answered"
    answered = [e for e in errors if e is None or isinstance(e, _ANSWERS)]
    if errors and not answered and not deferred(known):
        first = next(e for e in errors if e is not None)
        raise RegistryError(f"no registry answered; first error: {first.message}",
                            image=first.image)
    return make_plan(found.refs.slots, known.digests, read.notes, known.tags, read.growths,
                     read.discoveries, known.repos, known.ages, now,
                     catalog_verdicts(config, [*found.refs.slots, *promoted], known.verdicts),
                     {s: (p.tag, p.digest) if isinstance(p, Promotion) else (p.reason, p.waiting)
                      for s, p in promoted.items()})


def run(
    config: Config,
    *,
    dry_run: bool = False,
    publisher: Publisher | None = None,
    progress: Progress | None = None,
    deadline: float | None = None,
) -> Summary:
    """One run. `deadline` (`time.monotonic()`): stop asking registries then; publish what is known."""
    publisher = publisher or make_publisher(config)
    if config.run.max_duration is not None:  # the whole run's bound, whoever else sets one
        end = time.monotonic() + config.run.max_duration
        deadline = end if deadline is None else min(deadline, end)
    summary = Summary(dry_run=dry_run, target=publisher.describe())
    known = _Known()
    attempts = config.publish_retries + 1
    for attempt in range(1, attempts + 1):
        summary.attempts = attempt
        if attempt > 1:  # the target moved: its new values may be newer than our answers
            known = _Known(verdicts=known.verdicts)
        snap = publisher.snapshot()
        found, plan, stats = survey(config, snap, known, progress, deadline, then=explain)
        catalogs = found.sources
        summary.warnings = found.warnings
        for key, value in stats.items():  # a re-plan adds to what the first pass cost
            if isinstance(value, int):
                summary.requests[key] = summary.requests.get(key, 0) + value
            else:
                summary.requests[key] = value
        summary.deferred = deferred(known)
        files = render_files(catalogs, plan)
        summary.changes, summary.failures = plan.changes, plan.failures
        summary.skipped, summary.up_to_date = plan.notes, plan.up_to_date
        summary.diff = unified_diff(catalogs, files) if dry_run else ""
        if dry_run:
            summary.commit = snap.revision
            return summary
        # nothing to write still publishes: PR mode reports, or closes, the PR it finds
        message = commit_message(config, plan) if files else ""
        try:
            result = publisher.publish(snap, files, message, plan.changes if files else [])
        except BranchMovedError as exc:
            if attempt == attempts:
                raise BranchMovedError(
                    f"{exc.message}; gave up after {attempts} attempts") from None
            log.warning("%s (attempt %d of %d)", exc.message, attempt, attempts)
            continue
        summary.commit = result.revision if files else snap.revision
        summary.pushed, summary.url = result.pushed, result.url
        summary.pull_request, summary.pull_request_action = result.pull_request, result.action
        if result.note:  # what a PR's upkeep left alone, and why: never a silent success
            summary.warnings = [*summary.warnings, result.note]
        return summary
    raise AssertionError("unreachable")  # pragma: no cover
