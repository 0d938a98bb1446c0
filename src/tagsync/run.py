"""The job: config → observe registries → plan → edit text → publish → report.

Everything is computed before anything is written: a run either publishes one complete change
or nothing (a file whose edits the engine refuses is left out whole, its changes reported as
failures: `tagsync.render`). When the target moves under us, the run re-reads it, asks the
registries again and re-plans, a bounded number of times: whoever moved the target may have
seen a newer answer than ours, and writing ours would put an older value back (signature
verdicts, which belong to a digest, are kept).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import posixpath
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from tagsync.config import CONFIG_NAMES, CatalogConfig, Config
from tagsync.errors import (
    BranchMovedError,
    CatalogError,
    DeadlineError,
    ImageNotFoundError,
    MalformedAnswerError,
    NothingFoundError,
    PatternTimeoutError,
    RegistryError,
    TagsyncError,
)
from tagsync.find import Note, References, Source, find_references, open_source
from tagsync.find.globs import is_glob, select
from tagsync.find.model import Slot
from tagsync.gate import Facts, Rule, collect, gate, needed
from tagsync.patterns import Budget, spending
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
    wants,
)
from tagsync.policy import format_age, parse_age
from tagsync.promote import Held, History, Promotion, promote
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
)
from tagsync.registry.counts import add_counts, request_counts
from tagsync.render import render_files, unified_diff

log = logging.getLogger(__name__)

# (phase, done, total): "tags", "scan", "verify", "ages", "explain", "publish"
Progress = Callable[[str, int, int], None]
# told (count, what) before registry questions are newly asked; raising refuses them
Ask = Callable[[int, str], None]
_ANSWERS = (ImageNotFoundError, MalformedAnswerError)
_FULL = re.compile(r"^sha256:[0-9a-f]{64}$")
_T = TypeVar("_T")


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
        for change in out["changes"]:  # the rule it answered to, as the config spells it
            change["min_age"] = format_age(change["min_age"]) if change["min_age"] else None
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


def _is_config(config: Config, cfg: CatalogConfig, file: str) -> bool:
    """The config itself is never a catalog: its own file, and a tagsync.yaml a glob matches
    (it would be read as Helm values and rewritten, and the next run could not load it)."""
    return file == config.config_file or (
        posixpath.basename(file) in CONFIG_NAMES and file not in cfg.patterns)


def read_references(config: Config, snap: Snapshot) -> Read:
    """Every catalog's files, parsed, and the references found in them. Raises
    NothingFoundError when a catalog finds no reference at all, before anything is written."""
    read = Read()
    listing: list[str] | None = None
    for cfg in config.catalogs:
        files, listing = catalog_files(cfg, snap, listing, read.warnings)
        files = [f for f in files if not _is_config(config, cfg, f)]
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
        read.refs.extend(_on_allowed_hosts(config, _selected(config, cfg, found), read.warnings))
    if config.only_images and not read.refs.slots and not read.refs.notes:
        raise NothingFoundError("no reference matches --image "
                                + " ".join(config.only_images))
    return read


def _selected(config: Config, cfg: CatalogConfig, found: References) -> References:
    """The references a run follows: `ignore:` globs left alone (said), `--image` globs kept."""
    def matches(image: str, globs: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(image, g) for g in globs)

    notes = list(found.notes)
    slots: list[Slot] = []
    for slot in found.slots:
        image = str(slot.image)
        hit = next((g for g in cfg.ignore if fnmatch.fnmatchcase(image, g)), None)
        if hit is not None:
            notes.append(Note(slot.catalog, slot.file, slot.line, image, slot.tag,
                              f"ignored by the config (ignore: {hit})", slot.doc, slot.where,
                              slot.written or slot.current, slot.shape))
        else:
            slots.append(slot)
    found = replace(found, growths=[g for g in found.growths if not matches(str(g.image), cfg.ignore)])
    if config.only_images:
        slots = [s for s in slots if matches(str(s.image), config.only_images)]
        notes = [n for n in notes if matches(n.image, config.only_images)]
        found = replace(found, growths=[g for g in found.growths
                                        if matches(str(g.image), config.only_images)],
                        discoveries=[])
    return replace(found, slots=slots, notes=notes)


NOT_ALLOWED = "not asked: the organisation does not allow registry host"


def _on_allowed_hosts(config: Config, found: References, warnings: list[str]) -> References:
    """Organisation mode's allow-list: a reference on any other registry host is said (a note
    for a value, a warning for a list that would grow) and never reaches a registry client."""
    slots: list[Slot] = []
    notes = list(found.notes)
    for s in found.slots:
        if config.allows(s.image.registry):
            slots.append(s)
        else:
            notes.append(Note(s.catalog, s.file, s.line, str(s.image), s.tag,
                              f"{NOT_ALLOWED} {s.image.registry} (allowed_registries)", s.doc,
                              s.where, s.written or s.current, s.shape))
    lists = [*((g.file, g.line, g.image.registry) for g in found.growths),
             *((d.file, d.line, d.registry) for d in found.discoveries)]
    refused = [(file, line, host) for file, line, host in lists if not config.allows(host)]
    if len(slots) == len(found.slots) and not refused:
        return found
    warnings += [f"{file}:{line}: {NOT_ALLOWED} {host} (allowed_registries)"
                 for file, line, host in refused]
    return replace(found, slots=slots, notes=notes,
                   growths=[g for g in found.growths if config.allows(g.image.registry)],
                   discoveries=[d for d in found.discoveries if config.allows(d.registry)])


@dataclass
class _Known:
    """What the registries answered in one attempt. A re-plan starts afresh and keeps only
    the signature verdicts: the moved target may hold newer values than these answers."""

    repos: dict[RepoQuery, RepoList] = field(default_factory=dict)
    tags: dict[TagQuery, TagList] = field(default_factory=dict)
    digests: dict[Want, Observation] = field(default_factory=dict)
    # the gate's: signature checks by (policy, image, digest), one per policy whichever catalogs
    # share it, and the ages of new digests
    facts: Facts = field(default_factory=Facts)
    # explanations by (image, old reference, new reference): the same bump in two repositories
    # of an organisation reads its labels once
    explained: dict[tuple[ImageName, str, str], str | None] = field(default_factory=dict)


def _hosts(refs: References) -> set[str]:
    """Every registry a survey may ask: its references' (promoted ones included), the new
    repositories' and the growing entries'."""
    return ({q.registry for q in repo_queries(refs.discoveries)} | {s.image.registry for s in refs.slots}
            | {g.image.registry for g in refs.growths})


@dataclass
class Part:
    """One repository's references in an organisation's shared survey: its patterns draw on its
    own `budget`; `error` when one ran out of time (that repository fails alone, and asks
    nothing more of the registries)."""

    refs: References
    budget: Budget
    error: PatternTimeoutError | None = None


def _each(read: References, parts: list[Part] | None,
          choose: Callable[[References], Iterable[_T]]) -> list[_T]:
    """What `choose` (which evaluates the config's patterns) gives for the whole survey, or, in
    organisation mode, for each repository under its own budget: one repository's pattern that
    runs out of time is that repository's error, never the survey's."""
    if parts is None:
        return list(choose(read))
    out: list[_T] = []
    for part in parts:
        if part.error is not None:
            continue
        try:
            with spending(part.budget):
                out.extend(choose(part.refs))
        except PatternTimeoutError as exc:
            part.error = exc
    return out


async def _observe(config: Config, read: References, known: _Known, sources: dict[str, Any],
                   progress: Progress | None, deadline: float | None = None,
                   ask: Ask | None = None, parts: list[Part] | None = None) -> dict[str, int]:
    """Ask the registries what the plan needs and `known` lacks: namespaces first (new
    repositories), then tag lists (policies choose tags from them), then one digest per tag,
    then (at once) the creation times and signatures of the digests about to be written.
    `sources` belong to the caller, who closes them (the survey reads more through them);
    returns the requests of the clients it opened itself (Docker Hub's API), by host.
    `ask(count, what)`: told before questions `known` lacks are asked; it may refuse (raise).
    `parts`: `read` is the union of these (organisation mode), each evaluated on its own."""
    if not sources:
        return {}
    rqueries = repo_queries(read.discoveries) - known.repos.keys()
    if rqueries and ask is not None:
        ask(len(rqueries), "namespace listings")
    listers = open_listers(config, {q.registry for q in rqueries}, sources)
    own = [lister for lister in listers.values() if lister not in sources.values()]
    try:
        if rqueries:
            known.repos.update(await list_repositories(rqueries, listers, deadline))
        repos = _each(read, parts, lambda refs: new_repositories(refs.discoveries, known.repos))
        queries = (tag_queries(read.slots, read.growths)
                   | {r.query for r in repos if r.discovery.policy.kind != "same"}) - known.tags.keys()
        timed = {q.image.registry for q in queries if q.times}
        clocks = open_clocks(config, timed)
        own += list(clocks.values())
        if queries:
            if ask is not None:
                ask(len(queries), "tag listings")
            known.tags.update(await list_tags(
                queries, sources, config.run.concurrency, deadline, clocks,
                None if progress is None else lambda done, total: progress("tags", done, total)))
        needed = set(_each(read, parts, lambda refs: wants(
            choose_tags(refs.slots, known.tags), new_tags(refs.growths, known.tags),
            new_repositories(refs.discoveries, known.repos), known.tags)))
        missing = needed - known.digests.keys()
        if missing:
            if ask is not None:
                ask(len(missing), "digests")
            known.digests.update(await observe(
                missing, sources, config.run.concurrency,
                None if progress is None else lambda done, total: progress("scan", done, total),
                deadline))
        apis: dict[str, int] = {}
        for host, api in [*listers.items(), *clocks.items()]:
            if api in own and api.requests:
                apis[host] = apis.get(host, 0) + api.requests
        return apis
    finally:
        for closable in own:
            await closable.aclose()


async def explain_changes(changes: list[Change], sources: dict[str, Any],
                          config: Config | None = None, deadline: float | None = None,
                          progress: Progress | None = None,
                          cache: dict[tuple[ImageName, str, str], str | None] | None = None,
                          ask: Ask | None = None) -> list[Change]:
    """Each change with a line from the old and new images' labels (source, compare view,
    version, age) as its `claims`, apart from the verified facts in `why`; reads only the
    images that change, through the survey's own clients (its tokens, rate-limit pauses,
    deadline and connections), all at once within `run.concurrency`, each image's reads within
    `run.timeout` and the deadline.
    `explain: false` (the run's, or a registry's) reads nothing. `cache`: lines already
    read (and where the new ones go)."""
    from tagsync.explain import explain_all, references
    from tagsync.reference import ImageName as Name

    wanted: dict[int, tuple[Name, str, str]] = {}
    for i, c in enumerate(changes):
        if c.kind == "append":
            continue
        if config is not None and not explains(config, c.image):
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
    run_cfg = config.run if config is not None else None
    cache = {} if cache is None else cache
    lines = {k: cache[k] for k in wanted.values() if k in cache}
    todo = sorted(set(wanted.values()) - lines.keys(), key=str)
    if todo and ask is not None:
        ask(len(todo), "explanations")
    lines |= await explain_all(
        sources, todo,
        concurrency=run_cfg.concurrency if run_cfg else 16, deadline=deadline,
        budget=run_cfg.timeout if run_cfg else 20.0,
        progress=None if progress is None else lambda done, total: progress("explain", done, total))
    cache.update(lines)
    out = list(changes)
    for i, key in wanted.items():
        line = lines.get(key)
        if line:
            out[i] = replace(out[i], claims=line)  # the publisher's labels: never `why`
    return out


def explains(config: Config, image: str) -> bool:
    """Whether a change of this image is explained: the registry's `explain`, else the run's."""
    try:
        host = ImageName.parse(image).registry
    except TagsyncError:
        return config.run.explain
    own = config.registry_for(host).explain
    return config.run.explain if own is None else own


def promotions(config: Config, snap: Snapshot, found: Read, now: datetime
               ) -> dict[Slot, Promotion | Held]:
    """For every slot of a catalog that follows another: what to promote, or why not yet (what
    about the source branch's clock is odd goes to `found.warnings`)."""
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

        def history_of(slot: Slot, source: CatalogConfig = source) -> tuple[History, Any]:
            def value_at(data: bytes) -> tuple[str, str] | None:
                try:
                    refs = find_references(source, open_source(data, slot.file, source))
                except TagsyncError:
                    return None
                same = [v for s in refs.slots if s.image == slot.image and (v := held_value(s))]
                return same[0] if len(set(same)) == 1 else None

            return (history(slot.file) if history is not None else []), value_at

        out.update(promote(mine, staging, parse_age(cfg.follow.after), now, history_of,
                           source.name, found.warnings))
    return out


def make_verifiers(config: Config) -> dict[int, Any]:
    """One verifier per verify policy the config names, keys and trust roots read now: a bad
    key or root is a config error before any registry is asked or anything written."""
    policies = [p for c in config.catalogs for p in (c.verify, *c.verify_images.values()) if p]
    if not policies:
        return {}
    from tagsync.verify import Verifier

    return {id(p): Verifier(p, config.base_dir) for p in policies}


def rules(config: Config) -> Callable[[Change], Rule]:
    """What each change must satisfy at the gate: its catalog's verify policy for the image, the
    `min_age` of the policy that chose it, and the catalog's `refuse_rollback`."""
    catalogs = {c.name: c for c in config.catalogs}

    def rule_of(change: Change) -> Rule:
        cfg = catalogs[change.catalog]
        # the longer of the chooser's and the catalog's: a finder that lost its policy's
        # `min_age` cannot let a digest through younger than the config says
        ages = [a for a in (change.min_age, cfg.policy_for(change.image).min_age) if a]
        return Rule(cfg.verify_for(change.image), max(ages, default=None), cfg.refuse_rollback)

    return rule_of


async def _gate(config: Config, draft: Plan, known: _Known, sources: dict[str, Any],
                verifiers: dict[int, Any], now: datetime, apis: dict[str, int],
                progress: Progress | None = None, ask: Ask | None = None) -> Plan:
    """Every change of the draft through the gate, with the facts it needs gathered first."""
    rule_of = rules(config)
    checks, ages = needed(draft, rule_of)
    if ask is not None:  # what `collect` will ask: each new signature, each image's new ages
        signatures = {(p, i, d) for p, i, d, _, _ in checks} - known.facts.verdicts.keys()
        aged = {i for i, t, d in ages if (i, t, d) not in known.facts.ages}
        if signatures or aged:
            ask(len(signatures) + len(aged), "signatures and ages")
    clocks = open_clocks(config, {image.registry for image, tag, _ in ages if tag})
    try:
        await collect(checks, ages, known.facts, verifiers, sources, clocks, progress,
                      concurrency=config.run.concurrency, budget=config.run.image_timeout)
    finally:
        for host, clock in clocks.items():  # what the clocks asked counts too (by host)
            if clock.requests:
                apis[host] = apis.get(host, 0) + clock.requests
            await clock.aclose()
    return gate(draft, rule_of, known.facts, now)


def deferred(known: _Known) -> list[str]:
    """Images whose questions were cut short by the run's deadline (left for the next run)."""
    errors = ([o.error for o in known.digests.values()] + [t.error for t in known.tags.values()]
              + [r.error for r in known.repos.values()])
    return sorted({e.image or "?" for e in errors if isinstance(e, DeadlineError)})


# What a caller reads next through the survey's own clients (explanations, image ages).
Then = Callable[[Read, Plan, dict[str, Any]], Awaitable[None]]


def survey(config: Config, snap: Snapshot, known: _Known, progress: Progress | None = None,
           deadline: float | None = None, then: Then | None = None, ask: Ask | None = None,
           budget: Budget | None = None) -> tuple[Read, Plan, dict[str, Any]]:
    """Read the catalogs, ask the registries what `known` lacks, and plan: everything a run
    decides, with nothing written (`run` publishes it; `status` reports it). `then` reads more
    (a change's provenance, an image's age) before the registry clients close. `ask`: told
    before registry questions `known` lacks are asked (it may refuse them). `budget`: the
    CPU time the config's regular expressions may take (`tagsync.patterns`; a fresh one when
    not given): a pattern that runs out raises PatternTimeoutError, before anything is written."""
    with spending(budget if budget is not None else Budget()):
        try:
            return _survey(config, snap, known, progress, deadline, then, ask)
        except PatternTimeoutError as exc:
            raise in_config(exc, config) from None


def in_config(exc: PatternTimeoutError, config: Config) -> PatternTimeoutError:
    """The error, located in the config file that holds the pattern."""
    if exc.file is None:
        exc.file = config.config_file
    return exc


def _survey(config: Config, snap: Snapshot, known: _Known, progress: Progress | None,
            deadline: float | None, then: Then | None, ask: Ask | None
            ) -> tuple[Read, Plan, dict[str, Any]]:
    verifiers = make_verifiers(config)
    found = read_references(config, snap)
    now = datetime.now(UTC)
    promoted = promotions(config, snap, found, now)
    read = replace(found.refs, slots=[s for s in found.refs.slots if s not in promoted])

    async def asking() -> tuple[Plan, dict[str, Any]]:
        # One event loop and one client per registry for the whole survey and what follows it:
        # one token dance, one Retry-After budget, one deadline, warm connections. A client
        # contacts nothing until asked, so every host a reference names gets one.
        sources = open_sources(config, _hosts(found.refs), deadline)
        try:
            apis = await _observe(config, read, known, sources, progress, deadline, ask)
            draft = _plan(config, found, read, known, promoted, now)
            plan = await _gate(config, draft, known, sources, verifiers, now, apis, progress, ask)
            if then is not None:
                await then(found, plan, sources)  # what it reads counts too
            return plan, request_counts(sources, apis)
        finally:
            for source in sources.values():
                await source.aclose()

    plan, stats = asyncio.run(asking())
    return found, plan, stats


def explainer(config: Config, deadline: float | None = None, progress: Progress | None = None,
              cache: dict[tuple[ImageName, str, str], str | None] | None = None,
              ask: Ask | None = None) -> Then:
    """`survey(then=explainer(...))`: each change says where its new image comes from."""
    async def explain(found: Read, plan: Plan, sources: dict[str, Any]) -> None:
        if plan.changes:
            plan.changes = await explain_changes(plan.changes, sources, config, deadline,
                                                 progress, cache, ask)
    return explain


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
    plan = make_plan(found.refs.slots, known.digests, read.notes, known.tags, read.growths,
                     read.discoveries, known.repos, now,
                     {s: (p.tag, p.digest) if isinstance(p, Promotion) else (p.reason, p.waiting)
                      for s, p in promoted.items()})
    origins = {f"{s.file}:{s.doc}:{s.line}": p for s, p in promoted.items()
               if isinstance(p, Promotion)}
    plan.changes = [replace(c, why=_origin(origins[c.slot])) if c.slot in origins else c
                    for c in plan.changes]
    return plan


def _origin(p: Promotion) -> str:
    """Where a promoted value came from, and since when (the source branch's observed time)."""
    at = f", commit {p.commit[:12]}" if p.commit else ""
    return f"promoted from catalog {p.source}, which holds it since {p.since:%Y-%m-%d %H:%M UTC}{at}"


def run(
    config: Config,
    *,
    dry_run: bool = False,
    publisher: Publisher | None = None,
    progress: Progress | None = None,
    deadline: float | None = None,
    known: _Known | None = None,
    ask: Ask | None = None,
    budget: Budget | None = None,
) -> Summary:
    """One run. `deadline` (`time.monotonic()`): stop asking registries then; publish what is known.
    `known`: registry answers already asked for (organisation mode asks once for every repository);
    `ask(count, what)`: told before registry questions `known` lacks are asked, and may refuse
    them (organisation mode: one repository's share of the registries' rate limits).
    `budget`: the CPU time the config's regular expressions may take, every attempt together
    (organisation mode gives each repository its own)."""
    publisher = publisher or make_publisher(config)
    budget = budget if budget is not None else Budget()
    if config.run.max_duration is not None:  # the whole run's bound, whoever else sets one
        end = time.monotonic() + config.run.max_duration
        deadline = end if deadline is None else min(deadline, end)
    summary = Summary(dry_run=dry_run, target=publisher.describe())
    known = known if known is not None else _Known()
    attempts = config.publish_retries + 1
    for attempt in range(1, attempts + 1):
        summary.attempts = attempt
        if attempt > 1:  # the target moved: its new values may be newer than our answers
            known = _Known(facts=known.facts, explained=known.explained)
        snap = publisher.snapshot()
        found, plan, stats = survey(config, snap, known, progress, deadline,
                                    then=explainer(config, deadline, progress, known.explained, ask),
                                    ask=ask, budget=budget)
        catalogs = found.sources
        summary.warnings = found.warnings
        summary.requests = add_counts(summary.requests, stats)  # a re-plan adds to the first
        summary.deferred = deferred(known)
        plan, files = render_files(catalogs, plan)  # a refused file: its changes are failures
        summary.changes, summary.failures = plan.changes, plan.failures
        summary.skipped, summary.up_to_date = plan.notes, plan.up_to_date
        summary.diff = unified_diff(catalogs, files) if dry_run else ""
        if dry_run:
            summary.commit = snap.revision
            return summary
        # nothing to write still publishes: PR mode reports, or closes, the PR it finds
        message = commit_message(config, plan) if files else ""
        if progress is not None:
            progress("publish", 0, 1)
        try:
            result = publisher.publish(snap, files, message, plan.changes if files else [])
        except BranchMovedError as exc:
            if attempt == attempts:
                raise BranchMovedError(
                    f"{exc.message}; gave up after {attempts} attempts") from None
            log.warning("%s (attempt %d of %d)", exc.message, attempt, attempts)
            continue
        if progress is not None:
            progress("publish", 1, 1)
        summary.commit = result.revision if files else snap.revision
        summary.pushed, summary.url = result.pushed, result.url
        summary.pull_request, summary.pull_request_action = result.pull_request, result.action
        if result.note:  # what a PR's upkeep left alone, and why: never a silent success
            summary.warnings = [*summary.warnings, result.note]
        return summary
    raise AssertionError("unreachable")  # pragma: no cover
