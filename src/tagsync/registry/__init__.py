"""Observe registries: one client per kind, all behind the `Source` protocol."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsync.config import Config, DigestFormat
from tagsync.errors import DeadlineError, RegistryError, TagsyncError
from tagsync.reference import ImageName, is_repository, is_tag, parse_ecr_host
from tagsync.registry.base import Source, digest_value, tag_times
from tagsync.registry.credentials import registry_credentials
from tagsync.registry.layout import LayoutSource

if TYPE_CHECKING:
    from tagsync.registry.transport import Stats

# The OCI client (and aiohttp, ~100 ms to import) loads when the first source is opened, not
# with this module: planning, `refs` and the Lambda handler's import do not pay for it.

__all__ = ["Observation", "RepoList", "RepoQuery", "Source", "TagList", "TagQuery", "Want",
           "list_repositories", "list_tags", "observe", "open_listers", "open_sources",
           "stats_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Want:
    """One question for a registry: what should the catalog hold for this tag?"""

    image: ImageName
    tag: str
    format: DigestFormat
    platform: str | None

    def sort_key(self) -> tuple[ImageName, str, str, str]:
        """Questions in a stable order; the same tag with and without `platform` compare."""
        return (self.image, self.tag, self.format.value, self.platform or "")


@dataclass(frozen=True)
class Observation:
    want: Want
    value: str | None
    error: TagsyncError | None


@dataclass(frozen=True)
class TagQuery:
    """Which tags does this repository have (and, for `newest`, when was each created)?"""

    image: ImageName
    times: bool = False


@dataclass(frozen=True)
class TagList:
    query: TagQuery
    tags: tuple[str, ...] = ()
    created: dict[str, datetime] = field(default_factory=dict, compare=False, hash=False)
    error: TagsyncError | None = field(default=None, compare=False, hash=False)
    # listed strings outside the OCI tag grammar: never ranked, never written
    dropped: tuple[str, ...] = field(default=(), compare=False, hash=False)


async def list_tags(
    queries: Iterable[TagQuery],
    sources: dict[str, Source],
    concurrency: int = 16,
    deadline: float | None = None,
    clocks: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[TagQuery, TagList]:
    """List each repository's tags once; a failure is recorded per repository. `clocks`: per
    host, something that knows push times better than the images' own `created` (Docker Hub)."""
    gate = asyncio.Semaphore(concurrency)
    for source in [*sources.values(), *(clocks or {}).values()]:
        _bound(source, deadline)
    unique = sorted(set(queries), key=str)
    done = 0

    async def one(q: TagQuery) -> TagList:
        nonlocal done
        listed = await listing(q)
        done += 1
        if progress is not None:
            progress(done, len(unique))
        return listed

    async def listing(q: TagQuery) -> TagList:
        async with gate:
            if deadline is not None and time.monotonic() >= deadline:
                return TagList(q, error=DeadlineError(
                    "tags not listed: the run's time was up; left for the next run",
                    image=str(q.image)))
            try:
                source = sources[q.image.registry]
                listed = await source.list_tags(q.image)
                tags = tuple(t for t in listed if is_tag(t))
                dropped = tuple(t for t in listed if not is_tag(t))
                if dropped:
                    log.warning("%s: %d listed tag(s) outside the OCI tag grammar ignored: %s",
                                q.image, len(dropped),
                                ", ".join(repr(t)[:40] for t in dropped[:3]))
                clock = (clocks or {}).get(q.image.registry, source)
                created = await tag_times(clock, q.image, tags) if q.times else {}
                return TagList(q, tags, created, dropped=dropped)
            except TagsyncError as exc:
                if exc.image is None:
                    exc.image = str(q.image)
                log.info("%s", exc)
                return TagList(q, error=exc)

    results = await asyncio.gather(*(one(q) for q in unique))
    return {r.query: r for r in results}


@dataclass(frozen=True)
class RepoQuery:
    """Which repositories live under this namespace of this registry?"""

    registry: str
    namespace: str


@dataclass(frozen=True)
class RepoList:
    query: RepoQuery
    names: tuple[str, ...] = ()
    error: TagsyncError | None = field(default=None, compare=False, hash=False)


def open_listers(config: Config, hosts: Iterable[str], sources: dict[str, Source]) -> dict[str, Any]:
    """Who lists a registry's repositories: Docker Hub's API for docker.io, else the source."""
    from tagsync.reference import DOCKER_HUB

    listers: dict[str, Any] = {}
    for host in set(hosts):
        if host == DOCKER_HUB:
            from tagsync.http_policy import RetryPolicy
            from tagsync.registry.discover import HUB_API, DockerHub  # httpx: ~50 ms to import

            reg = config.registry_for(host)
            username, secret = registry_credentials(reg, config.base_dir)
            listers[host] = DockerHub(reg.hub_url or HUB_API, username, secret,
                                      timeout=config.run.timeout, max_wait=config.run.max_wait,
                                      retry=RetryPolicy(attempts=config.run.retries))
        else:
            listers[host] = sources[host]
    return listers


async def list_repositories(
    queries: Iterable[RepoQuery], listers: dict[str, Any], deadline: float | None = None
) -> dict[RepoQuery, RepoList]:
    for lister in listers.values():
        _bound(lister, deadline)

    async def one(q: RepoQuery) -> RepoList:
        lister = listers[q.registry]
        if not hasattr(lister, "list_repositories"):
            return RepoList(q, error=RegistryError("this registry cannot list its repositories",
                                                   image=q.registry))
        try:
            listed = await lister.list_repositories(q.namespace)
            names = tuple(n for n in listed if is_repository(n))
            if len(names) < len(listed):
                log.warning("%s/%s: %d listed repository name(s) outside the OCI grammar ignored",
                            q.registry, q.namespace, len(listed) - len(names))
            return RepoList(q, names)
        except TagsyncError as exc:
            log.info("%s", exc)
            return RepoList(q, error=exc)

    results = await asyncio.gather(*(one(q) for q in sorted(set(queries), key=str)))
    return {r.query: r for r in results}


def open_clocks(config: Config, hosts: Iterable[str]) -> dict[str, Any]:
    """Docker Hub's API for docker.io push times, unless docker.io is pointed elsewhere (a
    mirror without that API) and no `hub_url` says where the API is."""
    from tagsync.reference import DOCKER_HUB

    if DOCKER_HUB not in set(hosts):
        return {}
    reg = config.registry_for(DOCKER_HUB)
    if reg.url is not None and reg.hub_url is None:
        return {}
    from tagsync.http_policy import RetryPolicy
    from tagsync.registry.discover import HUB_API, DockerHub  # httpx: ~50 ms to import

    username, secret = registry_credentials(reg, config.base_dir)
    return {DOCKER_HUB: DockerHub(reg.hub_url or HUB_API, username, secret,
                                  timeout=config.run.timeout, max_wait=config.run.max_wait,
                                  retry=RetryPolicy(attempts=config.run.retries))}


def open_sources(config: Config, hosts: Iterable[str],
                 deadline: float | None = None) -> dict[str, Source]:
    """A client per registry host the catalogs name; nothing is contacted yet.

    `deadline` (`time.monotonic()`) bounds every request, in flight ones included."""
    sources: dict[str, Source] = {}
    for host in sorted(set(hosts)):
        reg = config.registry_for(host)
        kind = reg.source_kind()
        if kind == "layout":
            assert reg.layout is not None
            root = Path(reg.layout)
            sources[host] = LayoutSource(root if root.is_absolute() else config.base_dir / root)
        elif kind == "ecr":
            from tagsync.registry.ecr import EcrSource

            account, region = parse_ecr_host(host) or ("", "")
            sources[host] = EcrSource(reg.registry_id or account, reg.region or region,
                                      max_concurrency=reg.max_concurrency, deadline=deadline)
        else:
            from tagsync.http_policy import RetryPolicy
            from tagsync.registry.oci import OciRegistry, default_url

            username, password = registry_credentials(reg, config.base_dir)
            sources[host] = OciRegistry(
                reg.url or default_url(host, reg.insecure),
                username=username,
                password=password,
                requests_per_second=reg.requests_per_second,
                ratelimit_reserve=reg.ratelimit_reserve,
                timeout=config.run.timeout,
                max_concurrency=reg.max_concurrency,
                retry=RetryPolicy(attempts=config.run.retries),
                max_wait=config.run.max_wait,
                deadline=deadline,
            )
    return sources


def _bound(source: Source, deadline: float | None) -> None:
    """Requests already under way stop at the run's deadline too, not only new questions."""
    if deadline is not None and hasattr(source, "deadline"):
        source.deadline = deadline if source.deadline is None else min(source.deadline, deadline)


def stats_of(sources: dict[str, Source]) -> Stats:
    from tagsync.registry.oci import OciRegistry
    from tagsync.registry.transport import Stats

    total = Stats()
    for s in sources.values():
        ecr_requests = getattr(s, "requests", None)
        if isinstance(ecr_requests, int):
            total.requests += ecr_requests
        if isinstance(s, OciRegistry):
            for k in ("requests", "heads", "manifest_gets", "token_requests", "retries"):
                setattr(total, k, getattr(total, k) + getattr(s.stats, k))
            for kind, n in s.stats.kinds.items():
                total.kinds[kind] = total.kinds.get(kind, 0) + n
            total.ratelimit_remaining = s.stats.ratelimit_remaining or total.ratelimit_remaining
    return total


async def observe(
    wants: Iterable[Want],
    sources: dict[str, Source],
    concurrency: int = 16,
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
) -> dict[Want, Observation]:
    """Ask every question once, concurrently; a failure is recorded per image, never fatal.

    `deadline` (a `time.monotonic()` value): questions not started by then are not asked; they
    come back as DeadlineError observations, left for the next run (a Lambda's time is up).
    """
    unique = sorted(set(wants), key=Want.sort_key)
    for source in sources.values():
        _bound(source, deadline)
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(want: Want) -> Observation:
        nonlocal done
        async with gate:
            if deadline is not None and time.monotonic() >= deadline:
                done += 1
                return Observation(want, None, DeadlineError(
                    "not checked: the run's time was up; left for the next run",
                    image=f"{want.image}:{want.tag}"))
            try:
                value = await digest_value(sources[want.image.registry], want.image, want.tag,
                                           want.format, want.platform)
                obs = Observation(want, value, None)
            except TagsyncError as exc:
                if exc.image is None:
                    exc.image = f"{want.image}:{want.tag}"
                log.info("%s", exc)
                obs = Observation(want, None, exc)
        done += 1
        if progress is not None:
            progress(done, len(unique))
        return obs

    results = await asyncio.gather(*(one(w) for w in unique))
    return {o.want: o for o in results}
