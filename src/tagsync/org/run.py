"""`tagsync org run`: every repository of an organisation in one run.

1. list the organisation's repositories (GitHub's API), keep those the org config selects;
2. read each one's own config (`tagsync.yaml` or `.github/tagsync.yaml`) through the trust
   boundary (`org.config`); a repository without one is skipped, a broken one fails alone;
3. read every repository's catalogs, then ask the registries **once** for the union of what they
   need (one tag listing per repository, one digest per tag, whatever the number of repositories
   naming it);
4. plan and publish each repository on its own with those answers (`run.run(known=…)`): one
   repository's failure never stops the others, and none spends more than its share of the
   run's time and rate limits (`org.share`).

A child of the Step Functions fan-out gets its repository from the Map's item (`org.items`)
instead of listing the organisation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tagsync.config import Config
from tagsync.errors import PatternTimeoutError, TagsyncError
from tagsync.find.model import References
from tagsync.org.config import OrgConfig, repo_config
from tagsync.org.repos import Repo, find_configs, list_repositories
from tagsync.org.share import Share, metered, step_seconds
from tagsync.patterns import Budget
from tagsync.publish import Publisher, Snapshot

log = logging.getLogger(__name__)


@dataclass
class RepoResult:
    """One repository's outcome: changed, unchanged, partial, failed or skipped, and why."""

    repo: str
    status: str
    reason: str = ""
    config: str | None = None  # the path of the repository's own config
    summary: dict[str, Any] | None = None  # the repository's run summary (`tagsync run --json`)
    spent: dict[str, int] | None = None  # of its share: GitHub requests, registry questions

    def __post_init__(self) -> None:
        self.reason = printable(self.reason)


MAX_REASON = 2000  # characters of a row's reason: its start (where) and its end (why)


def printable(text: str) -> str:
    """A reason as it may reach a terminal, a log or the dashboard: its words come from
    repositories (keys, file names) and servers, so control characters (an escape sequence
    that clears the operator's screen, a bidi override) are shown as escapes, never sent; and
    a repository's key of 500,000 characters is not quoted whole in every row, summary and log."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(shown) <= MAX_REASON:
        return shown
    cut = len(shown) - MAX_REASON + 60
    return f"{shown[:1200]} …({cut} characters left out)… {shown[1200 + cut:]}"


@dataclass
class OrgSummary:
    dry_run: bool
    organisation: str
    repositories: list[RepoResult] = field(default_factory=list)
    requests: dict[str, Any] = field(default_factory=dict)  # the shared registry questions
    known: Any = field(default=None, repr=False)  # run._Known: the answers, for `answers.dump`
    dashboard: str | None = None  # what became of the dashboard issue, in words
    github_requests: int = 0  # every repository's, through the one client
    items: list[dict[str, str]] = field(default_factory=list)  # answers_only: the Map's items

    @property
    def partial(self) -> bool:
        return any(r.status in ("failed", "partial") for r in self.repositories)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.repositories:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "organisation": self.organisation,
                "status": "partial" if self.partial else "ok", "counts": self.counts(),
                "requests": self.requests, "github_requests": self.github_requests,
                "dashboard": self.dashboard,
                "repositories": [r.__dict__ for r in self.repositories]}


class _Primed:
    """A publisher whose first snapshot is the one already read (catalogs gathered before the
    registries were asked); a re-plan reads a fresh one."""

    def __init__(self, publisher: Publisher, snapshot: Snapshot) -> None:
        self.publisher = publisher
        self.primed: Snapshot | None = snapshot

    def snapshot(self) -> Snapshot:
        snap, self.primed = self.primed, None
        return snap if snap is not None else self.publisher.snapshot()

    def publish(self, snapshot: Snapshot, files: dict[str, bytes], message: str,
                changes: Any = ()) -> Any:
        return self.publisher.publish(snapshot, files, message, changes)

    def describe(self) -> str:
        return self.publisher.describe()


def org_api(org: OrgConfig) -> Any:
    """One GitHub client for the organisation's own questions (listing, reading configs)."""
    from tagsync.publish.github import AppToken, GitHubApi, StaticToken, TokenSource
    from tagsync.secrets import resolve

    auth: TokenSource
    if org.github.app is not None:
        key = resolve(org.github.app.private_key, "github.app.private_key", org.base_dir)
        assert key is not None
        auth = AppToken(org.github.app.app_id, key, "", org.github.api_url.rstrip("/"),
                        org.github.app.installation_id)
    else:
        token = resolve(org.github.token, "github.token", org.base_dir)
        assert token is not None
        auth = StaticToken(token)
    return GitHubApi(org.github.api_url, auth, graphql_url=org.github.graphql_url,
                     retries=org.github.retries, max_wait=org.github.max_wait,
                     timeout=max(org.run.timeout, 10.0))


@dataclass
class _Planned:
    repo: Repo
    config: Config
    path: str
    share: Share
    publisher: Any = None
    snapshot: Any = None
    refs: References | None = None  # what its catalogs hold (in the shared survey)
    # the CPU time its config's regular expressions may take, in the shared survey and its own
    # run together: one repository's patterns never spend another's
    budget: Budget = field(default_factory=Budget)
    stalled: PatternTimeoutError | None = None  # its pattern ran out of time in the shared survey


def org_run(org: OrgConfig, *, dry_run: bool = False, api: Any = None, known: Any = None,
            only: frozenset[str] | None = None, answers_only: bool = False,
            deadline: float | None = None, items: list[Any] | None = None,
            clock: Callable[[], float] = time.monotonic) -> OrgSummary:
    """One run over the organisation; never raises for one repository's trouble (it is that
    repository's result), only for the organisation's own (listing its repositories).

    `known`: stored registry answers (a child of the Step Functions fan-out) instead of asking;
    `only`: these repositories (`owner/name`) alone; `answers_only`: stop once the registries
    have answered (the fan-out's first step), planning and writing nothing; `items`: the
    repositories as the first step found them (`org.items`), admitted by the org config
    without listing the organisation; `clock`: what time shares and `deadline` are read on
    (tests pass a fake one)."""
    from tagsync.org.items import Item
    from tagsync.run import _Known

    api = api if api is not None else org_api(org)
    summary = OrgSummary(dry_run=dry_run or answers_only, organisation=org.organisation)
    if org.run.max_duration is not None:  # the organisation's bound, whoever else sets one
        end = clock() + org.run.max_duration
        deadline = end if deadline is None else min(deadline, end)
    bound = _Bound(clock, deadline, org.per_repository.max_duration)
    planned = _select(org, api, summary, only, items, bound)
    ready, union = _gather(planned, summary, api, bound)
    if known is None:
        known = _Known()
        if ready:
            summary.requests = _observe_once(ready[0].config, union, known,
                                             bound.monotonic(deadline), ready)
    summary.known = known
    ready = _without_stalled(ready, summary)
    # Each repository planned (and its gate and explanations asked) with the shared answers:
    # the same bump in two repositories is verified, aged and explained once. The fan-out's
    # first step plans them all dry, so its children read everything from the stored answers.
    _publish_each(ready, known, summary, dry_run or answers_only, bound, api)
    if answers_only:
        failed = {r.repo for r in summary.repositories if r.status == "failed"}
        summary.repositories = [r if r.repo not in {p.repo.full_name for p in ready}
                                or r.status == "failed"
                                else RepoResult(r.repo, "planned", r.reason, r.config)
                                for r in summary.repositories]
        summary.items = [Item(p.repo.full_name, p.repo.default_branch, p.path).to_dict()
                         for p in ready if p.repo.full_name not in failed]
    shares = {p.repo.full_name: p.share for p in planned}
    for row in summary.repositories:
        if (share := shares.get(row.repo)) is not None:
            row.spent = {"github_requests": share.requests, "registry_questions": share.questions}
    summary.repositories.sort(key=lambda r: r.repo.lower())
    if org.dashboard is not None and not (dry_run or answers_only or only is not None
                                          or items is not None):
        summary.dashboard = printable(update_dashboard(org, api,
                                                       [r.__dict__ for r in summary.repositories]))
    summary.github_requests = int(getattr(api, "requests", 0))
    return summary


def update_dashboard(org: OrgConfig, api: Any, rows: list[dict[str, Any]]) -> str:
    """The dashboard issue after a run; its failure is said, never the run's failure."""
    from tagsync.org.dashboard import render, update_issue

    assert org.dashboard is not None
    try:
        return update_issue(api, org.dashboard.repo, org.organisation,
                            render(org.organisation, rows), org.dashboard.title)
    except TagsyncError as exc:
        log.warning("dashboard: %s", exc)
        return f"dashboard not updated: {exc}"


@dataclass(frozen=True)
class _Bound:
    """The run's clock and deadline (on that clock), and a repository step's share of it."""

    clock: Callable[[], float]
    deadline: float | None
    cap: float | None  # per_repository.max_duration

    def seconds(self, waiting: int) -> float:
        """A step's share when `waiting` repository steps (this one included) are still to come."""
        left = None if self.deadline is None else self.deadline - self.clock()
        return step_seconds(self.cap, left, waiting)

    def monotonic(self, when: float | None) -> float | None:
        """`when` (on the run's clock) as `time.monotonic()`, which the registry clients read."""
        return None if when is None else time.monotonic() + (when - self.clock())

    def share(self, org: OrgConfig, repo: str) -> Share:
        return Share(repo, org.per_repository.github_requests,
                     org.per_repository.registry_questions, self.clock)


def _select(org: OrgConfig, api: Any, summary: OrgSummary, only: frozenset[str] | None,
            items: list[Any] | None, bound: _Bound) -> list[_Planned]:
    """The repositories to run, each with its own config read through the trust boundary."""
    chosen = (_listed_and_selected(org, api, summary, only) if items is None
              else _admitted(org, summary, items))
    configs = find_configs(api, org, chosen)
    # repository steps still to come: each one without a config onboarded, each other one
    # read, then planned and published
    unconfigured = sum(configs.get(r.full_name) is None for r in chosen)
    steps = unconfigured + 2 * (len(chosen) - unconfigured)
    planned: list[_Planned] = []
    for repo in chosen:
        found = configs.get(repo.full_name)
        share = bound.share(org, repo.full_name)
        if found is None and repo.config_paths:  # an item: its config was there for Discover
            summary.repositories.append(RepoResult(
                repo.full_name, "skipped", f"no {repo.config_paths[0]} on {repo.default_branch} "
                "any more (it was there when the run began); left for the next run"))
            continue
        if found is None:
            try:
                with metered(api, share, "onboarding", bound.seconds(steps)):
                    summary.repositories.append(_without_config(org, api, repo, summary.dry_run))
            except TagsyncError as exc:  # its share, spent
                summary.repositories.append(RepoResult(repo.full_name, "failed", str(exc)))
            steps -= 1
            continue
        try:
            if isinstance(found, TagsyncError):
                raise found
            path, text = found
            config = repo_config(org, repo.full_name, repo.default_branch, text,
                                 f"{repo.full_name}:{path}")
        except TagsyncError as exc:
            summary.repositories.append(RepoResult(repo.full_name, "failed", str(exc)))
            continue
        except Exception as exc:  # one repository's trouble is its own
            summary.repositories.append(RepoResult(repo.full_name, "failed", _unexpected(exc)))
            continue
        planned.append(_Planned(repo, config, path, share))
    return planned


def _listed_and_selected(org: OrgConfig, api: Any, summary: OrgSummary,
                         only: frozenset[str] | None) -> list[Repo]:
    """The organisation's repositories its config selects (archived, disabled and, unless
    `repositories.forks`, forked ones: skipped rows); a name asked for (`--repo`) that does not
    run is said."""
    chosen: list[Repo] = []
    listed = list_repositories(api, org.organisation,
                               installation=org.github.app is not None)
    asked = None if only is None else {name.lower() for name in only}  # names: any case
    if only is not None:
        names = {r.full_name.lower(): r for r in listed}
        summary.repositories += [
            RepoResult(printable(name), "skipped", "not listed in the organisation (deleted, "
                       "renamed, or not visible to its credentials)" if name.lower() not in names
                       else "excluded by the organisation's `repositories` selection")
            for name in sorted(only) if name.lower() not in names
            or not org.repositories.admits(names[name.lower()].name)]
    for repo in listed:
        if not org.repositories.admits(repo.name) or (
                asked is not None and repo.full_name.lower() not in asked):
            continue
        if repo.archived:
            summary.repositories.append(RepoResult(repo.full_name, "skipped",
                                                   "disabled" if repo.disabled else "archived"))
            continue
        if repo.fork and not org.repositories.forks:
            summary.repositories.append(RepoResult(
                repo.full_name, "skipped", "a fork: its config was written upstream, outside "
                "the organisation (`repositories.forks: true` runs forks)"))
            continue
        chosen.append(repo)
    return chosen


def _admitted(org: OrgConfig, summary: OrgSummary, items: list[Any]) -> list[Repo]:
    """The Map's items the org config admits, each read at the config path Discover found;
    a refused one is a failed row (it came from storage: someone changed it)."""
    from tagsync.org.items import Refused, admit

    chosen: list[Repo] = []
    for data in items:
        try:
            item = admit(org, data)
        except Refused as exc:
            named = data.get("repo") if isinstance(data, dict) else None
            summary.repositories.append(RepoResult(
                printable(named[:200]) if isinstance(named, str) else "?", "failed", str(exc)))
            continue
        chosen.append(Repo(item.repo, item.branch, config_paths=(item.config,)))
    return chosen


def _without_config(org: OrgConfig, api: Any, repo: Repo, dry_run: bool) -> RepoResult:
    """Skipped, or (`onboarding: true`) offered a config once, in a pull request."""
    missing = f"no {' or '.join(org.config_paths)} on {repo.default_branch}"
    if not org.onboarding:
        return RepoResult(repo.full_name, "skipped", missing)
    from tagsync.org.onboarding import propose

    try:
        offer = propose(api, org, repo.full_name, repo.default_branch, dry_run=dry_run)
    except TagsyncError as exc:
        return RepoResult(repo.full_name, "failed", f"{missing}; onboarding failed: {exc}")
    except Exception as exc:  # one repository's trouble is its own
        return RepoResult(repo.full_name, "failed", f"{missing}; onboarding failed: "
                          + _unexpected(exc))
    status = "onboarding" if offer.status in ("proposed", "waiting") else "skipped"
    return RepoResult(repo.full_name, status, f"{missing}; {offer.reason}")


def _gather(planned: list[_Planned], summary: OrgSummary, api: Any,
            bound: _Bound) -> tuple[list[_Planned], References]:
    """Every repository's references, before any registry is asked: the union is asked once.
    Every repository is published through the organisation's one GitHub client (one token,
    one rate-limit budget, warm connections), each within its share: a step's time is the
    run's time left divided by the steps still to come (each repository is read here, then
    planned and published)."""
    from tagsync.publish.github import github_publisher
    from tagsync.run import read_references

    union = References()
    ready: list[_Planned] = []
    for i, p in enumerate(planned):
        try:
            with metered(api, p.share, "reading its files",
                         bound.seconds(2 * len(planned) - i)):
                assert p.config.github is not None
                p.publisher = github_publisher(p.config.github, p.config.catalogs[0].name,
                                               p.config.base_dir, api=api)
                p.snapshot = p.publisher.snapshot()
                read = read_references(p.config, p.snapshot)
                p.share.check("finding its references")
        except Exception as exc:  # one repository's trouble is its own
            summary.repositories.append(_failed(p, exc))
            continue
        following = {c.name for c in p.config.catalogs if c.follow is not None}
        read.refs.slots = [s for s in read.refs.slots if s.catalog not in following]
        union.extend(read.refs)
        p.refs = read.refs
        ready.append(p)
    return ready, union


def _without_stalled(ready: list[_Planned], summary: OrgSummary) -> list[_Planned]:
    """The repositories still to plan: one whose pattern ran out of time while the shared
    survey chose its tags has failed, alone, with that error."""
    from tagsync.run import in_config

    out: list[_Planned] = []
    for p in ready:
        if p.stalled is not None:
            summary.repositories.append(_failed(p, in_config(p.stalled, p.config)))
        else:
            out.append(p)
    return out


def _failed(p: _Planned, exc: Exception) -> RepoResult:
    """A repository's row for its own trouble: a typed error in its words, anything else as
    unexpected (logged with its traceback)."""
    why = str(exc) if isinstance(exc, TagsyncError) else _unexpected(exc)
    return RepoResult(p.repo.full_name, "failed", why, p.path)


def _publish_each(ready: list[_Planned], known: Any, summary: OrgSummary, dry_run: bool,
                  bound: _Bound, api: Any) -> None:
    """Plan and publish each repository on its own, with the answers already known, within its
    share: its step's time (registry questions stop at its end too), its GitHub requests and
    the registry questions newly asked for it."""
    from tagsync.run import run

    for i, p in enumerate(ready):
        try:
            with metered(api, p.share, "planning and publishing it", bound.seconds(len(ready) - i)):
                ends = [e for e in (bound.deadline, p.share.until) if e is not None]
                result = run(p.config, dry_run=dry_run, publisher=_Primed(p.publisher, p.snapshot),
                             deadline=bound.monotonic(min(ends)) if ends else None, known=known,
                             ask=p.share.ask, budget=p.budget)
                if result.deferred:  # questions cut short: by its own share's end, it failed
                    p.share.check("waiting for the registries")
        except Exception as exc:  # one repository's trouble is its own
            summary.repositories.append(_failed(p, exc))
            continue
        data = result.to_dict()
        if dry_run:
            data["diff"] = result.diff
        summary.repositories.append(RepoResult(p.repo.full_name, str(data["status"]),
                                               _describe(result), p.path, data))


def _unexpected(exc: Exception) -> str:
    """A failure no typed error describes (a bug one repository's files reached): that
    repository fails, with the traceback in the log, and the others go on."""
    log.error("a repository's run failed unexpectedly", exc_info=exc)
    return f"internal error ({type(exc).__name__}: {str(exc)[:200]}); please report it"


def _describe(result: Any) -> str:
    from tagsync.plan import images_changed
    from tagsync.run import NOT_ALLOWED

    parts = [f"{images_changed(result.changes)} changed", f"{result.up_to_date} up to date"]
    if result.skipped:  # references found but not followed (e.g. off the grammar): said
        parts.append(f"{len(result.skipped)} skipped (see --json)")
    refused = sorted({text.split(NOT_ALLOWED, 1)[1].split()[0] for text in
                      [*(n.reason for n in result.skipped), *result.warnings] if NOT_ALLOWED in text})
    if refused:  # the organisation's allow-list: what it kept from the registries, by host
        parts.append(f"registry host not allowed: {', '.join(refused)}")
    if result.failures:
        parts.append(f"{len(result.failures)} failed: " + "; ".join(
            f"{f.image}:{f.tag}: {f.error}" for f in result.failures[:3]))
    if result.pull_request is not None:
        parts.append(f"pull request #{result.pull_request} {result.pull_request_action or ''}".rstrip())
    elif result.pushed and result.commit:
        parts.append(f"commit {result.commit[:12]}")
    return ", ".join(parts)


def _observe_once(config: Config, refs: References, known: Any, deadline: float | None,
                  ready: list[_Planned]) -> dict[str, Any]:
    """Ask the registries for the union of every repository's references, once, with the
    organisation's registries and limits (every repository's config carries the same). Each
    repository's policies choose its tags under its own pattern budget: one whose pattern runs
    out of time is left with the error (`_without_stalled`)."""
    from tagsync.registry import open_sources
    from tagsync.registry.counts import request_counts
    from tagsync.run import Part, _hosts, _observe

    parts = {id(p): Part(p.refs or References(), p.budget) for p in ready}

    async def ask() -> dict[str, Any]:
        sources = open_sources(config, _hosts(refs), deadline)
        try:  # every request counted, the registries' and Docker Hub API's alike
            return request_counts(sources, await _observe(config, refs, known, sources, None,
                                                          deadline, parts=list(parts.values())))
        finally:
            for source in sources.values():
                await source.aclose()

    try:
        return asyncio.run(ask())
    finally:
        for p in ready:
            p.stalled = parts[id(p)].error
