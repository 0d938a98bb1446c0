"""Find the repositories of a namespace, so new ones can become catalog entries.

Docker Hub has no registry-side listing (`/v2/_catalog` is disabled there); its Hub API does:
`GET /v2/namespaces/{namespace}/repositories`, paginated by `next` links, anonymous for public
repositories, Bearer (`POST /v2/auth/token` with a PAT or an organisation token) for private
ones. Hub answers 429 with `X-Retry-After` (a Unix time) when its API limit is reached. Other
registries list through `/v2/_catalog` (OCI) or `DescribeRepositories` (ECR).

Its answers are untrusted like a registry's: `next` pages are followed only on the API's own
origin, at most MAX_PAGES and never twice, bodies are size-capped and must arrive whole within
the timeout, and anything malformed is a one-line MalformedAnswerError for that namespace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Any, Protocol

import httpx

from tagsync.errors import (
    DeadlineError,
    ImageNotFoundError,
    MalformedAnswerError,
    RegistryAuthError,
    RegistryError,
)
from tagsync.http_policy import (
    RETRY_STATUSES,
    RetryPolicy,
    environment_proxy,
    header_int,
    redact,
    tls_context,
    wait_from,
)
from tagsync.reference import ImageName
from tagsync.registry.answers import origin, server_url
from tagsync.registry.base import parse_time

log = logging.getLogger(__name__)

HUB_API = "https://hub.docker.com"
MAX_PAGES = 200
BODY_LIMIT = 4 << 20


class RepositoryLister(Protocol):
    async def list_repositories(self, namespace: str) -> list[str]:
        """Full repository names (`namespace/name`) under a namespace."""
        ...

    async def aclose(self) -> None:
        ...


class DockerHub:
    """Docker Hub's own API (not the registry): repositories of a user or organisation."""

    def __init__(self, api_url: str = HUB_API, username: str | None = None,
                 secret: str | None = None, page_size: int = 100, max_wait: float = 60.0,
                 timeout: float = 20.0, retry: RetryPolicy | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.name = redact(self.api_url)  # what errors show
        self.username, self.secret = username, secret
        self.page_size = page_size
        self.max_wait = max_wait
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.deadline: float | None = None  # `time.monotonic()` when the run's time is up
        self._client = httpx.AsyncClient(timeout=timeout, headers={"User-Agent": "tagsync"},
                                         verify=tls_context())
        self._token: str | None = None
        self.requests = 0
        self.ratelimit_remaining: str | None = None
        # (repository, tag) -> the digests Docker Hub says the tag's push was of (the index and
        # its images), so a push time dates those digests only (`tagsync.gate`)
        self.pushed_digests: dict[tuple[str, str], frozenset[str]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _exchange(self, method: str, url: str, timeout: float | None = None,
                        **kwargs: Any) -> httpx.Response:
        """One request whose whole answer (body included) arrives within the timeout (or the
        run's time left, when less) and under BODY_LIMIT; redirects are not followed (the API
        has none to give)."""
        got_headers = False
        limit = self.timeout if timeout is None else max(0.001, min(self.timeout, timeout))
        try:
            async with asyncio.timeout(limit):
                async with self._client.stream(method, url, **kwargs) as resp:
                    got_headers = True
                    declared = header_int(resp.headers.get("Content-Length"))
                    if declared is not None and declared > BODY_LIMIT:
                        raise MalformedAnswerError(
                            f"Docker Hub's answer is {declared} bytes, over the "
                            f"{BODY_LIMIT}-byte limit", image=self.name)
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():  # decoded: a gzip bomb is capped too
                        body += chunk
                        if len(body) > BODY_LIMIT:
                            raise MalformedAnswerError(
                                f"Docker Hub's answer is over the {BODY_LIMIT}-byte limit",
                                image=self.name)
                    headers = [(k, v) for k, v in resp.headers.multi_items()
                               if k.lower() not in ("content-encoding", "content-length")]
                    return httpx.Response(resp.status_code, headers=headers, content=bytes(body),
                                          request=resp.request)
        except TimeoutError:
            if got_headers:
                raise MalformedAnswerError(f"Docker Hub's answer did not arrive within "
                                           f"{limit:g}s (body too slow)",
                                           image=self.name) from None
            raise httpx.ReadTimeout("no answer") from None

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            doc = json.loads(resp.content)
        except (ValueError, RecursionError):
            raise MalformedAnswerError("Docker Hub's answer is not JSON",
                                       image=self.name) from None
        if not isinstance(doc, dict):
            raise MalformedAnswerError("Docker Hub's answer is not a JSON object",
                                       image=self.name)
        return doc

    def _time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    async def _pause(self, wait: float, why: str) -> None:
        """Sit out `wait` seconds, unless that runs past the run's deadline."""
        left = self._time_left()
        if left is not None and wait >= left:
            raise DeadlineError(f"Docker Hub's API {why}; the run's time is up before it could "
                                "try again (run.max_duration); left for the next run",
                                image=self.name)
        await asyncio.sleep(wait)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request under the shared policy (`tagsync.http_policy`): transport failures and
        502/503/504 retried with backoff (GETs only: a repeated POST could act twice), 429 waited
        out by its `X-Retry-After`/`Retry-After` (at least the backoff, so a wait already past
        never turns into a busy loop), within `run.retries`, `max_wait` in all and the run's
        deadline."""
        waited = 0.0
        attempt = 0
        while True:
            left = self._time_left()
            if left is not None and left <= 0:
                raise DeadlineError("Docker Hub's API not asked: the run's time was up "
                                    "(run.max_duration); left for the next run", image=self.name)
            self.requests += 1
            retryable = attempt < self.retry.attempts
            try:
                resp = await self._exchange(method, url, timeout=left, **kwargs)
            except httpx.ProxyError as exc:  # the proxy answered, not Hub: no retry changes it
                raise RegistryError(f"the proxy {environment_proxy()} refused the way to Docker "
                                    "Hub's API: "
                                    f"HTTP {exc}", image=self.name) from None
            except httpx.TransportError as exc:
                if method != "GET" or not retryable:
                    raise RegistryError(f"cannot reach Docker Hub's API: {type(exc).__name__}",
                                        image=self.name) from None
                resp = None
            except httpx.HTTPError as exc:
                raise MalformedAnswerError(f"unreadable answer from Docker Hub's API: "
                                           f"{type(exc).__name__}", image=self.name) from None
            if resp is not None:
                self.ratelimit_remaining = resp.headers.get("X-RateLimit-Remaining",
                                                            self.ratelimit_remaining)
                if resp.status_code == 429:
                    try:  # a wait the server cannot say is no wait to guess (issue #27)
                        said = wait_from(resp.headers.get("X-Retry-After")
                                         or resp.headers.get("Retry-After"), strict=True)
                    except ValueError as exc:
                        raise MalformedAnswerError(f"Docker Hub's API answered 429 with a wait "
                                                   f"that is unreadable ({exc})",
                                                   image=self.name) from None
                    wait = max(said or 0.0, self.retry.delay(attempt))
                    if not retryable or waited + wait > self.max_wait:
                        raise RegistryError(f"Docker Hub's API limit is reached for {wait:.0f}s "
                                            "more; try the next run", image=self.name)
                    log.info("Docker Hub API limit reached; waiting %.1fs", wait)
                    waited += wait
                    attempt += 1
                    await self._pause(wait, "limit is reached")
                    continue
                if resp.status_code not in RETRY_STATUSES or method != "GET" or not retryable:
                    return resp
            delay = self.retry.delay(attempt)
            attempt += 1
            log.info("retrying %s %s in %.2fs (attempt %d)", method, redact(url), delay, attempt)
            await self._pause(delay, "did not answer")

    async def _auth(self) -> dict[str, str]:
        if self.username is None:
            return {}
        if self._token is None:
            resp = await self._send("POST", f"{self.api_url}/v2/auth/token",
                                    json={"identifier": self.username, "secret": self.secret or ""})
            if resp.status_code in (401, 403):
                raise RegistryAuthError("Docker Hub refused the credentials (use a personal or "
                                        "organisation access token)", image=self.name)
            if resp.status_code >= 400:
                raise RegistryError(f"Docker Hub token request failed: HTTP {resp.status_code}",
                                    image=self.name)
            token = self._json(resp).get("access_token")
            if not isinstance(token, str) or not token or not token.isprintable():
                raise RegistryAuthError("Docker Hub returned no usable token", image=self.name)
            self._token = token
        return {"Authorization": f"Bearer {self._token}"}

    async def list_repositories(self, namespace: str) -> list[str]:
        names: list[str] = []
        url: str | None = f"{self.api_url}/v2/namespaces/{namespace}/repositories"
        params: dict[str, Any] | None = {"page_size": self.page_size, "ordering": "name"}
        seen: set[str] = set()
        while url:
            if url in seen:
                raise MalformedAnswerError(f"Docker Hub's pages loop back to {redact(url)}",
                                           image=f"docker.io/{namespace}")
            if len(seen) >= MAX_PAGES:
                raise MalformedAnswerError(f"more than {MAX_PAGES} pages of repositories",
                                           image=f"docker.io/{namespace}")
            seen.add(url)
            resp = await self._send("GET", url, params=params, headers=await self._auth())
            if resp.status_code == 404:
                raise ImageNotFoundError(f"Docker Hub has no namespace {namespace!r}",
                                         image=f"docker.io/{namespace}")
            if resp.status_code in (401, 403):
                raise RegistryAuthError(f"Docker Hub refused to list {namespace!r}",
                                        image=f"docker.io/{namespace}")
            if resp.status_code >= 400:
                raise RegistryError(f"listing {namespace!r} failed: HTTP {resp.status_code}",
                                    image=f"docker.io/{namespace}")
            body = self._json(resp)
            results = body.get("results") or []
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise MalformedAnswerError("Docker Hub's `results` is not a list of objects",
                                           image=f"docker.io/{namespace}")
            for repo in results:
                owner, name = repo.get("namespace") or namespace, repo.get("name")
                if (repo.get("repository_type") in (None, "image") and isinstance(owner, str)
                        and isinstance(name, str)):
                    names.append(f"{owner}/{name}")  # the grammar is checked by the caller
            nxt = _next_page(body.get("next"), str(url), self.api_url, f"docker.io/{namespace}")
            url, params = nxt, None  # `next` carries the query
        return sorted(set(names))

    async def pushed_at(self, image: ImageName) -> dict[str, datetime]:
        """When each tag was last pushed (`tag_last_pushed`), by Docker Hub's own clock: what
        `min_age` and `newest` go by on docker.io instead of the image's own `created` claim."""
        namespace, _, name = image.repository.partition("/")
        url: str | None = f"{self.api_url}/v2/namespaces/{namespace}/repositories/{name}/tags"
        params: dict[str, Any] | None = {"page_size": min(self.page_size, 100)}
        seen: set[str] = set()
        out: dict[str, datetime] = {}
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise MalformedAnswerError("Docker Hub's tag pages loop back or never end",
                                           image=str(image))
            seen.add(url)
            resp = await self._send("GET", url, params=params, headers=await self._auth())
            if resp.status_code == 404:
                raise ImageNotFoundError("Docker Hub has no such repository", image=str(image))
            if resp.status_code >= 400:
                raise RegistryError(f"listing tags on Docker Hub failed: HTTP {resp.status_code}",
                                    image=str(image))
            body = self._json(resp)
            results = body.get("results") or []
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise MalformedAnswerError("Docker Hub's `results` is not a list of objects",
                                           image=str(image))
            for tag in results:
                when = parse_time(tag.get("tag_last_pushed") or tag.get("last_updated"))
                if isinstance(tag.get("name"), str) and when is not None:
                    out[tag["name"]] = when
                    images = tag.get("images") if isinstance(tag.get("images"), list) else []
                    self.pushed_digests[(image.repository, tag["name"])] = frozenset(
                        d for d in (tag.get("digest"), *(i.get("digest") for i in images
                                                         if isinstance(i, dict)))
                        if isinstance(d, str))
            nxt = _next_page(body.get("next"), str(url), self.api_url, str(image))
            url, params = nxt, None
        return out


def _next_page(nxt: object, url: str, api_url: str, name: str) -> str | None:
    """Docker Hub's `next`, read as any server's URL (`answers.server_url`), and only within its
    own origin."""
    if nxt is None:
        return None
    if not isinstance(nxt, str):
        raise MalformedAnswerError("Docker Hub's `next` is not a URL", image=name)
    found = server_url(url, nxt, "`next`", name)
    if origin(found) != origin(api_url):
        raise MalformedAnswerError("a Docker Hub page links to another origin; not followed",
                                   image=name)
    return found
