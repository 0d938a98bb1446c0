"""OCI Distribution client (Docker Hub, GHCR, Quay, Harbor, ECR's HTTP API, self-hosted).

Auth follows the registry's own `WWW-Authenticate` challenge instead of per-vendor code: Bearer
(anonymous or with credentials, token cached per scope) or Basic. Digests come from `HEAD`, which
Docker Hub does not count as a pull. Retries are polite: 429/502/503/504 and transport errors
back off exponentially, honouring `Retry-After`, a bounded number of times. (aiohttp itself
resends an idempotent request once when a kept-alive connection turns out closed, RFC 9112 9.3.1;
`Stats.retries` counts only ours.)

The HTTP client is aiohttp: a scan sends thousands of small requests, and aiohttp's C parser and
plain connection pool cost far less CPU per request than httpx (`make bench`, registry scan at
scale). On a small Lambda that CPU is the scan's speed.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import json
import logging
import os
import random
import re
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import aiohttp
import certifi
from yarl import URL

from tagsync.errors import (
    ImageNotFoundError,
    RateLimitReserveError,
    RegistryAuthError,
    RegistryError,
)
from tagsync.reference import DOCKER_HUB, DOCKER_HUB_API, ImageName, validate_digest, validate_tag
from tagsync.registry.manifest import ACCEPT, OCI_INDEX, Descriptor

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass
class Stats:
    """Counters for the run summary and the benchmarks: what did polling cost?"""

    requests: int = 0
    heads: int = 0
    manifest_gets: int = 0
    token_requests: int = 0
    retries: int = 0
    ratelimit_remaining: str | None = None


@dataclass
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        backoff = self.base_delay * (2**attempt)
        return float(min(backoff * (0.5 + random.random() / 2), self.max_delay))


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def default_url(host: str, insecure: bool = False) -> str:
    if host == DOCKER_HUB:
        host = DOCKER_HUB_API
    return f"{'http' if insecure else 'https'}://{host}"


class RateLimiter:
    """A token bucket: `rate` requests per second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._last = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited = 0.0

    async def acquire(self) -> None:
        async with self._lock:  # waiters queue here, in order
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                self.waited += wait
                await asyncio.sleep(wait)
                self._last = time.monotonic()
                self._tokens = 1.0
            self._tokens -= 1


def parse_ratelimit(value: str | None) -> int | None:
    """`ratelimit-remaining: 76;w=21600` → 76."""
    if not value:
        return None
    head = value.split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class Upload:
    """An open blob upload session: where the next bytes go."""

    location: str
    min_chunk: int = 0  # OCI-Chunk-Min-Length, when the registry sets one


@dataclass(frozen=True)
class Answer:
    """One whole HTTP answer. Registry answers are small (manifests, tag lists, upload
    sessions); blobs are streamed by `download_blob` instead."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDict)
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


# what a retry may fix: the connection failed or stalled, not what the registry answered
_TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                     asyncio.TimeoutError)


def _ssl_context() -> ssl.SSLContext:
    """certifi's roots, as httpx used them; `SSL_CERT_FILE` points at a private CA bundle."""
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


def _push_scope(image: ImageName) -> str:
    return f"repository:{image.repository}:pull,push"


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class OciRegistry:
    """One registry endpoint; share one instance per host so tokens and connections are reused."""

    base_url: str
    username: str | None = None
    password: str | None = None
    timeout: float = 20.0
    max_concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stats: Stats = field(default_factory=Stats)
    requests_per_second: float | None = None
    ratelimit_reserve: int = 10  # no pulls (GETs) once `ratelimit-remaining` is this low

    def __post_init__(self) -> None:
        self._limiter = RateLimiter(self.requests_per_second) if self.requests_per_second else None
        self.base_url = self.base_url.rstrip("/")
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._gate = asyncio.Semaphore(self.max_concurrency)
        self._tokens: dict[str, _Token] = {}
        self._scheme: str | None = None  # learned from the first challenge
        self._challenge: dict[str, str] = {}
        self._token_lock = asyncio.Lock()

    def _proxy(self, url: URL) -> str | None:
        """HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as users of any HTTP client expect; read once per
        host, because aiohttp's `trust_env` reads the environment on every request, which at
        scan rates costs a fifth of the client's CPU (`make bench`)."""
        key = (url.scheme, url.raw_authority)
        if key not in self._proxies:
            bypass = urllib.request.proxy_bypass(url.raw_authority)
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(url.scheme)
        return self._proxies[key]

    async def aclose(self) -> None:
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            await self._http.close()
        self._http = None

    def _session(self) -> aiohttp.ClientSession:
        """One connection pool per event loop (a session cannot outlive the loop it was made in)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_concurrency, ssl=_ssl_context()),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                              sock_read=self.timeout),
                headers={"User-Agent": "tagsync"},
                # digests are over the bytes as sent: never ask for, or undo, a compression
                auto_decompress=False, skip_auto_headers=("Accept-Encoding",),
            )
            self._http_loop = loop
        return self._http

    # --- public API ----------------------------------------------------------------------

    async def ping(self) -> None:
        """`GET /v2/`: is this a registry, and do our credentials work?"""
        await self._request("GET", "/v2/", None, "ping")

    async def head(self, image: ImageName, reference: str) -> Descriptor:
        if not reference.startswith("sha"):
            validate_tag(reference, str(image))
        resp = await self._request(
            "HEAD", f"/v2/{image.repository}/manifests/{reference}", image, "manifest",
            headers={"Accept": ACCEPT},
        )
        self.stats.heads += 1
        digest = resp.headers.get("Docker-Content-Digest")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not digest:  # some registries omit it on HEAD; the GET body is the source of truth
            body, media_type = await self.get(image, reference)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        size = resp.headers.get("Content-Length")
        return Descriptor(digest, media_type, int(size) if size and size.isdigit() else None)

    def _check_allowance(self, image: ImageName) -> None:
        """Docker Hub counts GETs (not HEADs) against a pull allowance it reports in
        `ratelimit-remaining`; stop before it runs out so the next run starts with room."""
        remaining = parse_ratelimit(self.stats.ratelimit_remaining)
        if remaining is not None and remaining <= self.ratelimit_reserve:
            raise RateLimitReserveError(
                f"not pulled: the registry's allowance is down to {remaining} "
                f"(reserve {self.ratelimit_reserve}); left for the next run", image=str(image))

    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]:
        self._check_allowance(image)
        resp = await self._request(
            "GET", f"/v2/{image.repository}/manifests/{reference}", image, "manifest",
            headers={"Accept": ACCEPT},
        )
        self.stats.manifest_gets += 1
        return resp.content, resp.headers.get("Content-Type", "").split(";")[0].strip()

    async def list_repositories(self, namespace: str, page_size: int = 1000) -> list[str]:
        """Repositories under `namespace/` from `/v2/_catalog` (registries may disable it)."""
        names: list[str] = []
        url: str | None = f"/v2/_catalog?n={page_size}"
        while url:
            resp = await self._request("GET", url, None, "catalog", scope="registry:catalog:*")
            names.extend(resp.json().get("repositories") or [])
            link = _LINK_NEXT.search(resp.headers.get("Link", ""))
            url = link.group(1) if link else None
        prefix = f"{namespace}/" if namespace else ""
        return sorted(n for n in names if n.startswith(prefix))

    async def blob(self, image: ImageName, digest: str) -> bytes:
        self._check_allowance(image)
        resp = await self._request("GET", f"/v2/{image.repository}/blobs/{digest}", image, "blob")
        return resp.content

    async def referrers(self, image: ImageName, digest: str,
                        artifact_type: str | None = None) -> dict[str, Any] | None:
        """The OCI 1.1 referrers index of `digest` (signatures, SBOMs…), or None when the registry
        has no referrers API (it answers 404: clients then read the `sha256-<hex>` tag)."""
        validate_digest(digest, str(image))
        url = f"/v2/{image.repository}/referrers/{digest}"
        if artifact_type:
            url += "?artifactType=" + quote(artifact_type, safe="")
        try:
            resp = await self._request("GET", url, image, "referrers", headers={"Accept": OCI_INDEX})
        except ImageNotFoundError:
            return None
        try:
            body = resp.json()
        except ValueError:
            raise RegistryError("the referrers answer is not JSON", image=str(image)) from None
        if not isinstance(body, dict):
            raise RegistryError("the referrers answer is not an index", image=str(image))
        return body

    async def list_tags(self, image: ImageName, page_size: int = 1000) -> list[str]:
        """Every tag, following `Link: <…>; rel="next"` pages; order as the registry gives it."""
        tags: list[str] = []
        url: str | None = f"/v2/{image.repository}/tags/list?n={page_size}"
        while url:
            resp = await self._request("GET", url, image, "tags")
            body: dict[str, Any] = resp.json()
            tags.extend(body.get("tags") or [])
            link = _LINK_NEXT.search(resp.headers.get("Link", ""))
            url = link.group(1) if link else None
        return tags

    # --- pushing (the image builder) ---------------------------------------------------------

    async def has_blob(self, image: ImageName, digest: str) -> bool:
        """`HEAD` a blob: present blobs are never uploaded again."""
        try:
            await self._request("HEAD", f"/v2/{image.repository}/blobs/{digest}", image, "blob",
                                scope=_push_scope(image))
        except ImageNotFoundError:
            return False
        return True

    async def start_upload(self, image: ImageName, mount: str | None = None,
                           mount_from: str | None = None) -> Upload | None:
        """Open an upload session, or mount `mount` from another repository of this registry.

        None means the blob was mounted (201): nothing to send. A registry that cannot mount
        answers 202 with an ordinary session, so asking costs nothing extra.
        """
        url = f"/v2/{image.repository}/blobs/uploads/"
        scope = _push_scope(image)
        if mount and mount_from:
            url += f"?mount={mount}&from={mount_from}"
            scope += f" repository:{mount_from}:pull"
        resp = await self._request("POST", url, image, "upload", scope=scope)
        if resp.status == 201:
            return None
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError("the registry opened an upload without a Location", image=str(image))
        min_chunk = resp.headers.get("OCI-Chunk-Min-Length", "")
        return Upload(urljoin(self.base_url + "/", location),
                      int(min_chunk) if min_chunk.isdigit() else 0)

    async def upload_chunk(self, image: ImageName, upload: Upload, data: bytes, offset: int) -> Upload:
        """`PATCH` one chunk; the registry answers with where the next one goes."""
        resp = await self._request(
            "PATCH", upload.location, image, "upload", scope=_push_scope(image), content=data,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Range": f"{offset}-{offset + len(data) - 1}"}, retry=False)
        location = resp.headers.get("Location") or upload.location
        return Upload(urljoin(self.base_url + "/", location), upload.min_chunk)

    async def finish_upload(self, image: ImageName, upload: Upload, digest: str,
                            data: bytes = b"") -> None:
        """`PUT …?digest=`: with the whole blob (monolithic) or empty after chunks."""
        sep = "&" if "?" in upload.location else "?"
        await self._request(
            "PUT", f"{upload.location}{sep}digest={digest}", image, "upload",
            scope=_push_scope(image), content=data,
            headers={"Content-Type": "application/octet-stream"}, retry=False)

    async def put_manifest(self, image: ImageName, reference: str, body: bytes,
                           media_type: str) -> str:
        resp = await self._request(
            "PUT", f"/v2/{image.repository}/manifests/{reference}", image, "manifest upload",
            scope=_push_scope(image), content=body, headers={"Content-Type": media_type})
        return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()

    async def download_blob(self, image: ImageName, digest: str, dest: Path) -> None:
        """Stream a blob to `dest`, checking its digest; large base layers never sit in memory."""
        self._check_allowance(image)
        url = f"{self.base_url}/v2/{image.repository}/blobs/{digest}"
        scope = f"repository:{image.repository}:pull"
        await self._request("HEAD", url, image, "blob")  # learns the auth challenge, finds 404s
        headers = {}
        auth = await self._auth_header(scope)
        if auth:
            headers["Authorization"] = auth
        algorithm, _, expected = digest.partition(":")
        hasher = hashlib.new(algorithm)
        partial = dest.with_name(dest.name + ".part")
        async with self._gate:
            self.stats.requests += 1
            try:
                target = URL(url, encoded=True)
                async with self._session().get(target, headers=headers,
                                               proxy=self._proxy(target)) as resp:
                    if resp.status >= 400:
                        raise RegistryError(f"GET blob {digest} failed: HTTP {resp.status}",
                                            image=str(image))
                    with partial.open("wb") as out:
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            hasher.update(chunk)
                            out.write(chunk)
            except _TRANSPORT_ERRORS as exc:
                partial.unlink(missing_ok=True)
                raise RegistryError(f"cannot download blob {digest}: {type(exc).__name__}",
                                    image=str(image)) from None
        if hasher.hexdigest() != expected:
            partial.unlink(missing_ok=True)
            raise RegistryError(f"blob {digest} arrived with a different digest", image=str(image))
        partial.replace(dest)

    # --- plumbing ------------------------------------------------------------------------

    async def _request(
        self, method: str, url: str, image: ImageName | None, what: str,
        headers: dict[str, str] | None = None, scope: str | None = None,
        content: bytes | None = None, retry: bool = True,
    ) -> Answer:
        name = str(image) if image else self.base_url
        if scope is None:
            scope = f"repository:{image.repository}:pull" if image else ""
        full = url if url.startswith("http") else f"{self.base_url}/{url.lstrip('/')}"
        authed_once = False
        while True:
            hdrs = dict(headers or {})
            auth = await self._auth_header(scope)
            if auth:
                hdrs["Authorization"] = auth
            resp = await self._send(method, full, hdrs, name, content, retry)
            if resp.status == 401 and not authed_once:
                authed_once = True
                await self._learn_challenge(resp, scope, name)
                continue
            break
        self._note_ratelimit(resp)
        if resp.status == 401:
            raise RegistryAuthError(
                f"the registry refused our credentials ({what})" if self.username
                else f"the registry requires credentials ({what}); set username/password_env",
                image=name,
            )
        if resp.status == 403:
            raise RegistryAuthError(f"access denied ({what})", image=name)
        if resp.status == 404:
            raise ImageNotFoundError(_not_found(url, what), image=name)
        if resp.status >= 400:
            raise RegistryError(f"{method} {what} failed: HTTP {resp.status}"
                                f"{_error_detail(resp)}", image=name)
        return resp

    async def _send(self, method: str, url: str, headers: dict[str, str], name: str,
                    content: bytes | None = None, retry: bool = True) -> Answer:
        """One request, retried politely; `retry=False` for bodies a retry could apply twice."""
        attempt = 0
        while True:
            try:
                if self._limiter is not None:
                    await self._limiter.acquire()
                async with self._gate:
                    self.stats.requests += 1
                    # the URL is ours or the registry's Location, already encoded: sent as is
                    target = URL(url, encoded=True)
                    async with self._session().request(method, target, headers=headers,
                                                       data=content, proxy=self._proxy(target)) as r:
                        resp = Answer(r.status, r.headers, await r.read())
            except _TRANSPORT_ERRORS as exc:
                if attempt >= self.retry.attempts or not retry:
                    raise RegistryError(
                        f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}", image=name
                    ) from None
                retry_after = None
            else:
                if resp.status not in RETRY_STATUSES or attempt >= self.retry.attempts:
                    return resp
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            delay = self.retry.delay(attempt, retry_after)
            attempt += 1
            self.stats.retries += 1
            log.info("retrying %s %s in %.2fs (attempt %d)", method, url, delay, attempt)
            await asyncio.sleep(delay)

    async def _auth_header(self, scope: str) -> str | None:
        if self._scheme == "basic" and self.username is not None:
            return self._basic()
        if self._scheme == "bearer":
            token = self._tokens.get(scope)
            if token and token.expires > time.monotonic():
                return f"Bearer {token.value}"
            return await self._fetch_token(scope)
        return None

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    async def _learn_challenge(self, resp: Answer, scope: str, name: str) -> None:
        header = resp.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(header)
        if scheme not in ("bearer", "basic"):
            raise RegistryAuthError(f"unsupported auth challenge {header!r}", image=name)
        self._scheme, self._challenge = scheme, params
        if scheme == "basic" and self.username is None:
            raise RegistryAuthError("the registry requires credentials (Basic); "
                                    "set username/password_env", image=name)
        if scheme == "bearer":
            self._tokens.pop(scope, None)
            await self._fetch_token(scope, params.get("scope"))

    async def _fetch_token(self, scope: str, challenged_scope: str | None = None) -> str:
        async with self._token_lock:
            cached = self._tokens.get(scope)
            if cached and cached.expires > time.monotonic():
                return f"Bearer {cached.value}"
            realm = self._challenge.get("realm")
            if not realm:
                raise RegistryAuthError("Bearer challenge without a realm", image=self.base_url)
            params: list[tuple[str, str]] = [
                ("service", self._challenge.get("service", ""))]
            wanted = scope or challenged_scope
            # several scopes (push here, pull from a mount's source) go as repeated parameters
            params.extend(("scope", one) for one in (wanted or "").split())
            headers = {"Authorization": self._basic()} if self.username else {}
            self.stats.token_requests += 1
            try:
                async with self._session().get(realm, params=params, headers=headers,
                                               proxy=self._proxy(URL(realm))) as r:
                    status, raw = r.status, await r.read()
            except _TRANSPORT_ERRORS as exc:
                raise RegistryError(f"cannot reach the token service: {type(exc).__name__}",
                                    image=self.base_url) from None
            if status in (401, 403):
                raise RegistryAuthError("the token service refused our credentials",
                                        image=self.base_url)
            if status >= 400:
                raise RegistryError(f"token service answered HTTP {status}", image=self.base_url)
            try:
                body = json.loads(raw)
            except ValueError:
                raise RegistryAuthError("the token service answered something other than JSON",
                                        image=self.base_url) from None
            value = body.get("token") or body.get("access_token")
            if not value:
                raise RegistryAuthError("token service returned no token", image=self.base_url)
            ttl = float(body.get("expires_in") or 60)
            self._tokens[scope] = _Token(value, time.monotonic() + max(ttl - 10, ttl / 2))
            return f"Bearer {value}"

    def _note_ratelimit(self, resp: Answer) -> None:
        remaining = resp.headers.get("ratelimit-remaining")
        if remaining is not None:
            self.stats.ratelimit_remaining = remaining


def _error_detail(resp: Answer) -> str:
    """The distribution spec's `{"errors": [{"code", "message"}]}`, when the body has it."""
    try:
        errors = resp.json().get("errors") or []
        first = errors[0]
        return f" ({first.get('code')}: {first.get('message')})"
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def _not_found(url: str, what: str) -> str:
    if what == "manifest":
        ref = url.rsplit("/", 1)[-1]
        return f"tag or digest {ref!r} not found"
    return "repository not found"
