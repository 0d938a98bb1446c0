"""The job: config → observe registries → plan → edit text → publish → report.

Everything is computed before anything is written: a run either publishes one complete change
or nothing. When the branch moves under us, the run re-reads and re-plans (registry answers are
kept, they do not depend on the branch) a bounded number of times.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tagsync.catalog.edit import Catalog
from tagsync.catalog.locate import Note, References, find_references
from tagsync.config import Config
from tagsync.errors import BranchMovedError, DeadlineError, RegistryError
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
from tagsync.publish import Publisher, Snapshot
from tagsync.publish.files import FilesPublisher
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
    open_listers,
    open_sources,
    stats_of,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


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
    requests: dict[str, Any] = field(default_factory=dict)
    diff: str = ""

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

        return github_publisher(config.github, config.catalogs[0].name, config.base_dir)
    if config.git is None:
        return FilesPublisher(config.base_dir)
    from tagsync.publish.git import git_publisher

    return git_publisher(config.git, config.base_dir)


def _read_catalogs(config: Config, snap: Snapshot) -> tuple[dict[str, Catalog], References]:
    catalogs: dict[str, Catalog] = {}
    read = References()
    for cfg in config.catalogs:
        if cfg.file not in catalogs:
            catalogs[cfg.file] = Catalog(snap.read(cfg.file), cfg.file)
        read.extend(find_references(cfg, catalogs[cfg.file]))
    return catalogs, read


@dataclass
class _Known:
    """Registry answers kept across re-plans: they do not depend on the branch."""

    repos: dict[RepoQuery, RepoList] = field(default_factory=dict)
    tags: dict[TagQuery, TagList] = field(default_factory=dict)
    digests: dict[Want, Observation] = field(default_factory=dict)


async def _observe(config: Config, read: References, known: _Known, progress: Progress | None,
                   deadline: float | None = None) -> dict[str, Any]:
    """Ask the registries what the plan needs and `known` lacks: namespaces first (new
    repositories), then tag lists (policies choose tags from them), then one digest per tag."""
    namespaces = repo_queries(read.discoveries)
    rqueries = namespaces - known.repos.keys()
    hosts = ({q.registry for q in namespaces}
             | {s.image.registry for s in read.slots} | {g.image.registry for g in read.growths})
    if not hosts:
        return {}
    sources = open_sources(config, hosts)
    listers = open_listers(config, {q.registry for q in rqueries}, sources)
    own = [lister for lister in listers.values() if lister not in sources.values()]
    try:
        if rqueries:
            known.repos.update(await list_repositories(rqueries, listers))
        repos = new_repositories(read.discoveries, known.repos)
        queries = (tag_queries(read.slots, read.growths)
                   | {r.query for r in repos if r.discovery.policy.kind != "same"}) - known.tags.keys()
        if queries:
            known.tags.update(await list_tags(queries, sources, config.run.concurrency, deadline))
        needed = wants(choose_tags(read.slots, known.tags), new_tags(read.growths, known.tags),
                       repos, known.tags)
        missing = needed - known.digests.keys()
        if missing:
            known.digests.update(
                await observe(missing, sources, config.run.concurrency, progress, deadline))
        stats = stats_of(sources)
        stats.requests += sum(lister.requests for lister in own)
        return {k: v for k, v in asdict(stats).items() if v is not None}
    finally:
        for closable in [*sources.values(), *own]:
            await closable.aclose()


def render_files(catalogs: dict[str, Catalog], plan: Plan) -> dict[str, bytes]:
    """New bytes for every file the plan touches; raises before anything is written."""
    out: dict[str, bytes] = {}
    for file, changes in plan.by_file().items():
        cat = catalogs[file]
        out[file] = cat.render(cat.apply(c.edit() for c in changes))
    return out


def unified_diff(catalogs: dict[str, Catalog], files: dict[str, bytes]) -> str:
    chunks: list[str] = []
    for file, new in sorted(files.items()):
        old = catalogs[file].render(catalogs[file].text)
        chunks.extend(difflib.unified_diff(
            old.decode().splitlines(keepends=True), new.decode().splitlines(keepends=True),
            fromfile=f"a/{file}", tofile=f"b/{file}",
        ))
    return "".join(chunks)


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
    summary = Summary(dry_run=dry_run, target=publisher.describe())
    known = _Known()
    attempts = config.publish_retries + 1
    for attempt in range(1, attempts + 1):
        summary.attempts = attempt
        snap = publisher.snapshot()
        catalogs, read = _read_catalogs(config, snap)
        stats = asyncio.run(_observe(config, read, known, progress, deadline))
        for key, value in stats.items():  # a re-plan adds to what the first pass cost
            if isinstance(value, int):
                summary.requests[key] = summary.requests.get(key, 0) + value
            else:
                summary.requests[key] = value
        errors = ([o.error for o in known.digests.values()] + [t.error for t in known.tags.values()]
                  + [r.error for r in known.repos.values()])
        summary.deferred = sorted({e.image or "?" for e in errors if isinstance(e, DeadlineError)})
        answered = [e for e in errors if e is None]
        if errors and not answered and not summary.deferred:
            first = next(e for e in errors if e is not None)
            raise RegistryError(f"no registry answered; first error: {first.message}",
                                image=first.image)
        plan = make_plan(read.slots, known.digests, read.notes, known.tags, read.growths,
                         read.discoveries, known.repos)
        files = render_files(catalogs, plan)
        summary.changes, summary.failures = plan.changes, plan.failures
        summary.skipped, summary.up_to_date = plan.notes, plan.up_to_date
        summary.diff = unified_diff(catalogs, files)
        if dry_run or not files:
            summary.commit = snap.revision
            if not dry_run:  # nothing to write; PR mode may close a PR the base caught up with
                publisher.publish(snap, {}, "", [])
            return summary
        message = commit_message(config, plan)
        try:
            result = publisher.publish(snap, files, message, plan.changes)
        except BranchMovedError as exc:
            if attempt == attempts:
                raise BranchMovedError(
                    f"{exc.message}; gave up after {attempts} attempts") from None
            log.warning("%s (attempt %d of %d)", exc.message, attempt, attempts)
            continue
        summary.commit, summary.pushed, summary.url = result.revision, result.pushed, result.url
        summary.pull_request, summary.pull_request_action = result.pull_request, result.action
        return summary
    raise AssertionError("unreachable")  # pragma: no cover
