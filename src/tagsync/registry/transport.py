"""How the OCI client talks HTTP to a registry: one aiohttp session per event loop, proxies as
the environment says, polite retries (429/502/503/504 and transport errors back off, honouring
`Retry-After`, one wait shared by every request to the registry, capped by `max_wait`),
redirects followed by hand (credentials dropped across origins, a hop limit), bodies size-capped
by kind, and `timeout` covering the whole exchange, body included. The client's API and its
auth build on `Transport` (`registry.oci`, `registry.auth`, `registry.upload`).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import socket
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from yarl import URL

from tagsync.errors import (
    MalformedAnswerError,
    RateLimitReserveError,
    RegistryDeferredError,
    RegistryError,
)
from tagsync.http_policy import (
    RETRY_STATUSES,
    RetryPolicy,
    header_int,
    redact,
    remember_secret,
    tls_context,
    wait_from,
)
from tagsync.reference import ImageName
from tagsync.registry.answers import origin, server_url, show_origin
from tagsync.registry.base import refuse_past, time_left
from tagsync.registry.pacing import RateLimiter, parse_ratelimit

log = logging.getLogger("tagsync.registry.oci")  # the client's lines, whichever layer logs

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
# What may be redirected to another origin (a CDN, a bucket), always without credentials: the
# content is checked against the digest it was asked by. Tag lists, manifests and every other
# answer are the registry's word, which another host cannot give.
LEAVES_ORIGIN = frozenset({"blob"})
MAX_PAGES = 200
# The most a registry may send us per kind of answer: distribution itself refuses manifests
# over 4 MiB; tag and catalog pages of 1000 names are far below it.
BODY_LIMITS = {"manifest": 4 << 20, "tags": 4 << 20, "catalog": 4 << 20, "blob": 16 << 20,
               "token": 1 << 20}
DEFAULT_BODY_LIMIT = 1 << 20


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what "same origin" compares."""
    return origin(url)


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """A `url:` may carry `user:password@`: the credentials are taken out of the URL, so the
    URL can be logged and shown, and they are sent only as the registry's auth asks."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return (urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
            parts.username, parts.password)


class _BodyStalled(Exception):
    """Headers arrived, the body did not within the request's time: not worth a retry."""


@dataclass
class Stats:
    """Counters for the run summary and the benchmarks: what did polling cost?"""

    requests: int = 0
    heads: int = 0
    manifest_gets: int = 0
    token_requests: int = 0
    retries: int = 0
    ratelimit_remaining: str | None = None
    # requests sent, by what was asked and how ("manifest HEAD", "blob GET", "tags GET"...)
    kinds: dict[str, int] = field(default_factory=dict)


def _tls_mismatch(text: str, host: str | None) -> str:
    """A hint when TLS met a plain-HTTP server (OpenSSL's WRONG_VERSION_NUMBER), or ''."""
    if "WRONG_VERSION_NUMBER" not in text.upper().replace(" ", "_"):
        return ""
    return (f"; the server answers in plain HTTP, not TLS: write `url: http://{host or 'HOST'}` "
            "in its `registries:` entry")


@dataclass(frozen=True)
class Answer:
    """One whole HTTP answer. Registry answers are small (manifests, tag lists, upload
    sessions); blobs are streamed by `download_blob` instead."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDict)
    content: bytes
    url: str = ""  # who answered: the last hop of any redirects

    def json(self) -> Any:
        return json.loads(self.content)

    def json_object(self, what: str, name: str) -> dict[str, Any]:
        """The body as a JSON object, or a one-line reason why the answer is unusable."""
        try:
            doc = json.loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedAnswerError(f"the {what} answer is not JSON", image=name) from None
        if not isinstance(doc, dict):
            raise MalformedAnswerError(f"the {what} answer is not a JSON object",
                                       image=name) from None
        return doc


# what a retry may fix: the connection failed or stalled, not what the registry answered
_TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                     asyncio.TimeoutError)


def _unreachable(exc: BaseException) -> str:
    """A transport failure in words: aiohttp's own text for a refused connection or a failed DNS
    lookup carries its TLS context's repr (`ssl:<ssl.SSLContext object at 0x…>`)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        why = os_error.strerror or str(os_error) or type(os_error).__name__
        if isinstance(os_error, socket.gaierror):
            return f"{type(exc).__name__}: the name {exc.host} does not resolve ({why})"
        if (isinstance(os_error.errno, int) and os_error.errno > 0
                and not isinstance(os_error, ssl.SSLError)):  # whose errno is OpenSSL's code
            why = os.strerror(os_error.errno)  # asyncio's text is "Connect call failed (addr)"
        return (f"{type(exc).__name__}: cannot connect to {exc.host}:{exc.port} ({why})"
                + _tls_mismatch(f"{why} {exc}", f"{exc.host}:{exc.port}"))
    text = f"{type(exc).__name__}: {redact(str(exc))}".rstrip(": ")
    return text + _tls_mismatch(text, None)


def _untrusted(exc: aiohttp.ClientConnectorCertificateError) -> str:
    """Why a server's certificate was refused, naming the server: no retry changes a
    certificate, and "cannot reach" would send the user looking at the network."""
    error = exc.certificate_error
    reason = (getattr(error, "verify_message", None) or str(error).splitlines()[0][:120]).rstrip(".")
    message = f"the TLS certificate of {exc.host}:{exc.port} is not trusted ({reason})"
    if "mismatch" in reason:  # issued for another name: no CA bundle fixes that
        return message
    return message + ("; for a private CA, set SSL_CERT_FILE to a PEM bundle that holds it (or "
                      "SSL_CERT_DIR to a hashed folder)")


@functools.cache
def _ssl_context(bundle: str | None, folder: str | None) -> ssl.SSLContext:
    # One context per trust setting for the process: aiohttp never changes a context it is
    # given, so every session shares it (each load of a CA bundle costs ~25 ms of CPU).
    return tls_context()


def _https() -> ssl.SSLContext:
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def _tls(url: URL, proxy: str | None) -> ssl.SSLContext | bool:
    """The TLS context for one request: built only when the request, or the proxy it goes
    through, is HTTPS, so a run against plain-HTTP registries (a local mirror, the demo) never
    pays for reading CA roots."""
    https = url.scheme == "https" or (proxy is not None and proxy.startswith("https:"))
    return _https() if https else True


@dataclass
class Transport:
    """One registry endpoint's connections, pacing and retries (the fields are the client's)."""

    base_url: str
    username: str | None = None
    password: str | None = None
    timeout: float = 20.0
    max_concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stats: Stats = field(default_factory=Stats)
    requests_per_second: float | None = None
    ratelimit_reserve: int = 10  # no pulls (GETs) once `ratelimit-remaining` is this low
    max_wait: float = 60.0  # longest `Retry-After` (in total) sat out before deferring the rest
    deadline: float | None = None  # `time.monotonic()` when the run's time is up
    max_pages: int = MAX_PAGES

    def __post_init__(self) -> None:
        self._limiter = RateLimiter(self.requests_per_second) if self.requests_per_second else None
        base, user, password = _split_credentials(self.base_url.rstrip("/"))
        self.base_url = base
        if self.username is None and user is not None:
            self.username, self.password = user, password
        if self.username is not None:  # in whatever form it travels, it never shows
            remember_secret(self.password, self._basic().removeprefix("Basic "))
        self.name = redact(self.base_url)
        self._origin = origin_of(self.base_url)
        self._pause_until = 0.0  # a Retry-After holds every request to this registry until then
        self._waited = 0.0
        self._deferred: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._gate = asyncio.Semaphore(self.max_concurrency)

    def _proxy(self, url: URL) -> str | None:
        """HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as users of any HTTP client expect; read once per
        host, because aiohttp's `trust_env` reads the environment on every request, which at
        scan rates costs a fifth of the client's CPU (`make bench`)."""
        key = (url.scheme, url.raw_authority)
        if key not in self._proxies:
            bypass = urllib.request.proxy_bypass(url.raw_authority)
            found = None if bypass else urllib.request.getproxies().get(url.scheme)
            # `user:pw@host:port` without a scheme is an http:// proxy, as to curl and httpx
            # (aiohttp refuses it as a URL, and its error would show the password)
            self._proxies[key] = f"http://{found}" if found and "://" not in found else found
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
                connector=aiohttp.TCPConnector(limit=self.max_concurrency),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                              sock_read=self.timeout),
                headers={"User-Agent": "tagsync"},
                # digests are over the bytes as sent: never ask for, or undo, a compression
                auto_decompress=False, skip_auto_headers=("Accept-Encoding",),
                # a server's headers are bounded before anything parses them (aiohttp's own
                # defaults, written out so that no upgrade lifts them): one header 8190 bytes,
                # 128 headers; `registry.answers` reads a Link or a challenge only in that bound
                max_line_size=8190, max_field_size=8190, max_headers=128,
            )
            self._http_loop = loop
        return self._http

    def _check_open(self, name: str) -> None:
        """Refuse new requests once this registry is deferred or the run's time is up."""
        if self._deferred is not None:
            raise RegistryDeferredError(self._deferred, image=name)
        refuse_past(self.deadline, name)

    def _hold(self, retry_after: float, name: str) -> None:
        """A `Retry-After` pauses the whole registry once (not each image); a pause beyond
        `max_wait` in total, or past the run's deadline, defers the rest of its work."""
        now = time.monotonic()
        until = now + retry_after
        added = max(0.0, until - max(self._pause_until, now))
        past_deadline = self.deadline is not None and until >= self.deadline
        if self._waited + added > self.max_wait or past_deadline:
            self._deferred = (f"the registry asked to wait {retry_after:.0f}s (Retry-After), more "
                              f"than run.max_wait ({self.max_wait:.0f}s) or the run's time allows; "
                              "left for the next run")
            log.warning("%s: %s", self.name, self._deferred)
            raise RegistryDeferredError(self._deferred, image=name)
        self._waited += added
        self._pause_until = max(self._pause_until, until)

    async def _send(self, method: str, url: str, headers: dict[str, str], name: str,
                    content: bytes | None = None, retry: bool = True, what: str = "") -> Answer:
        """One request, retried politely; `retry=False` for bodies a retry could apply twice."""
        attempt = 0
        while True:
            self._check_open(name)
            pause = self._pause_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                self._check_open(name)
            try:
                if self._limiter is not None:
                    await self._limiter.acquire()
                resp = await self._exchange(method, url, headers, name, content, what)
            except _BodyStalled:
                self._check_open(name)
                raise MalformedAnswerError(
                    f"the {what or 'registry'} answer did not arrive within {self.timeout:g}s "
                    "(body too slow)", image=name) from None
            except aiohttp.ClientConnectorCertificateError as exc:
                raise RegistryError(_untrusted(exc), image=name) from None
            except _TRANSPORT_ERRORS as exc:
                self._check_open(name)
                if attempt >= self.retry.attempts or not retry:
                    raise RegistryError(f"cannot reach {self.name}: {_unreachable(exc)}",
                                        image=name) from None
            except aiohttp.ClientHttpProxyError as exc:  # the proxy answered, not the registry
                proxy = redact(self._proxy(URL(url, encoded=True)) or "the proxy")
                raise RegistryError(f"the proxy {proxy} refused the way to {self.name}: HTTP "
                                    f"{exc.status} {exc.message}", image=name) from None
            except aiohttp.ClientError as exc:  # an answer HTTP itself forbids
                raise MalformedAnswerError(f"unreadable answer to {method} {what}: "
                                           f"{_one_line(exc)}", image=name) from None
            else:
                if resp.status not in RETRY_STATUSES or attempt >= self.retry.attempts:
                    return resp
                try:
                    retry_after = wait_from(resp.headers.get("Retry-After"), strict=True)
                except ValueError as exc:  # a wait it cannot say is no wait to guess
                    raise MalformedAnswerError(
                        f"the registry answered HTTP {resp.status} with a Retry-After header "
                        f"that is unreadable ({exc})", image=name) from None
                if retry_after is not None:
                    self._hold(retry_after, name)
                    attempt += 1
                    self.stats.retries += 1
                    log.info("%s: retrying %s %s after Retry-After %.2fs (attempt %d)",
                             self.name, method, redact(url), retry_after, attempt)
                    continue
            delay = self.retry.delay(attempt)
            attempt += 1
            self.stats.retries += 1
            log.info("retrying %s %s in %.2fs (attempt %d)", method, redact(url), delay, attempt)
            await asyncio.sleep(delay)

    def _time_left(self) -> float:
        """The request's time: `timeout`, or less when the run's deadline is nearer."""
        return time_left(self.deadline, self.timeout, floor=0.001)

    async def _exchange(self, method: str, url: str, headers: dict[str, str], name: str,
                        content: bytes | None, what: str) -> Answer:
        """Send, follow redirects by hand (credentials dropped across origins, at most
        MAX_REDIRECTS hops) and read a size-capped body, all within the request's time."""
        limit = BODY_LIMITS.get(what, DEFAULT_BODY_LIMIT)
        for _ in range(MAX_REDIRECTS + 1):
            target = URL(url, encoded=True)  # ours or the registry's Location, already encoded
            got_headers = False
            async with self._gate:
                # a Retry-After that arrived while this request queued holds it too (one wait
                # for the registry, not a 429 per queued request); all of it waits anyway
                pause = self._pause_until - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                self._check_open(name)
                self.stats.requests += 1
                kind = f"{what or 'other'} {method}"
                self.stats.kinds[kind] = self.stats.kinds.get(kind, 0) + 1
                try:
                    async with asyncio.timeout(self._time_left()):
                        proxy = self._proxy(target)
                        async with self._session().request(
                                method, target, headers=headers, data=content, proxy=proxy,
                                ssl=_tls(target, proxy), allow_redirects=False) as r:
                            got_headers = True
                            location = r.headers.get("Location")
                            if r.status in REDIRECT_STATUSES and location:
                                answer = Answer(r.status, r.headers, b"", url)
                            elif method == "HEAD":  # Content-Length is the object's, not sent
                                return Answer(r.status, r.headers, b"", url)
                            else:
                                body = await _read_capped(r, limit, what, name)
                                return Answer(r.status, r.headers, body, url)
                except TimeoutError:
                    if got_headers:
                        raise _BodyStalled from None
                    raise
            nxt = server_url(url, location, "Location", name)  # userinfo stripped
            if origin_of(nxt) != origin_of(url):
                if what not in LEAVES_ORIGIN:
                    raise MalformedAnswerError(
                        f"{method} {what} was redirected to another origin "
                        f"({show_origin(nxt)}); not followed: only blobs may be served elsewhere",
                        image=name)
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if answer.status == 303 and method != "HEAD":
                method, content = "GET", None
            url = nxt
        raise MalformedAnswerError(f"{method} {what}: more than {MAX_REDIRECTS} redirects",
                                   image=name)

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _note_ratelimit(self, resp: Answer) -> None:
        remaining = resp.headers.get("ratelimit-remaining")
        if remaining is not None:
            self.stats.ratelimit_remaining = remaining

    def _check_allowance(self, image: ImageName) -> None:
        """Docker Hub counts GETs (not HEADs) against a pull allowance it reports in
        `ratelimit-remaining`; stop before it runs out so the next run starts with room."""
        remaining = parse_ratelimit(self.stats.ratelimit_remaining)
        if remaining is not None and remaining <= self.ratelimit_reserve:
            raise RateLimitReserveError(
                f"not pulled: the registry's allowance is down to {remaining} "
                f"(reserve {self.ratelimit_reserve}); left for the next run", image=str(image))

    def _absolute(self, url: str) -> str:
        return url if url.startswith(("http://", "https://")) else \
            f"{self.base_url}/{url.lstrip('/')}"


async def _read_capped(r: aiohttp.ClientResponse, limit: int, what: str, name: str) -> bytes:
    """The body, refused as soon as it is over `limit` bytes (declared or actually sent)."""
    declared = header_int(r.headers.get("Content-Length"))
    if declared is not None and declared > limit:
        raise MalformedAnswerError(f"the {what} answer is {declared} bytes, over the "
                                   f"{limit}-byte limit", image=name)
    chunks: list[bytes] = []
    size = 0
    async for chunk in r.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise MalformedAnswerError(f"the {what} answer is over the {limit}-byte limit",
                                       image=name)
        chunks.append(chunk)
    return b"".join(chunks)


def _one_line(exc: aiohttp.ClientError) -> str:
    """What the HTTP parser objected to, in a few words (its message quotes the raw bytes)."""
    text = exc.message if isinstance(exc, aiohttp.ClientResponseError) else str(exc)
    first = redact(text).splitlines()[0].rstrip(": ") if text.strip() else ""
    return first[:120] or type(exc).__name__
