"""The registry's auth, as its own `WWW-Authenticate` challenge asks instead of per-vendor code:
Bearer (anonymous or with credentials, a token cached per scope) or Basic. Credentials go only to
the registry's origin and to the token realm its challenge names. `_request` is every API call:
auth, then the answer's status as a typed error."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from tagsync.errors import (
    ImageNotFoundError,
    MalformedAnswerError,
    RegistryAuthError,
    RegistryError,
)
from tagsync.http_policy import redact, remember_secret
from tagsync.reference import ImageName
from tagsync.registry.answers import read_challenge, show_origin
from tagsync.registry.transport import (
    _TRANSPORT_ERRORS,
    BODY_LIMITS,
    REDIRECT_STATUSES,
    Answer,
    Transport,
    _read_capped,
    _tls,
    _unreachable,
    _untrusted,
    origin_of,
)


@dataclass
class _Token:
    value: str
    expires: float


class Authenticated(Transport):
    """Requests with the registry's auth, learnt from its first challenge."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._tokens: dict[str, _Token] = {}
        self._scheme: str | None = None  # learned from the first challenge
        self._challenge: dict[str, str] = {}
        self._token_lock = asyncio.Lock()

    async def _request(
        self, method: str, url: str, image: ImageName | None, what: str,
        headers: dict[str, str] | None = None, scope: str | None = None,
        content: bytes | None = None, retry: bool = True,
    ) -> Answer:
        name = str(image) if image else self.name
        if scope is None:
            scope = f"repository:{image.repository}:pull" if image else ""
        full = self._absolute(url)
        ours = origin_of(full) == self._origin  # credentials never leave the registry's origin
        authed_once = False
        while True:
            hdrs = dict(headers or {})
            auth = await self._auth_header(scope) if ours else None
            if auth:
                hdrs["Authorization"] = auth
            resp = await self._send(method, full, hdrs, name, content, retry, what)
            if resp.status == 401 and origin_of(resp.url or full) != self._origin:
                # a host a redirect led to asks for credentials: they are the registry's,
                # never answered there, and its challenge is never remembered for the registry
                raise RegistryAuthError(
                    f"{method} {what} was answered by {show_origin(resp.url)} (a redirect away "
                    "from the registry), which asked for credentials; the registry's are never "
                    "sent to another origin", image=name)
            if resp.status == 401 and not authed_once and ours:
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
        if resp.status in REDIRECT_STATUSES:
            raise MalformedAnswerError(f"{method} {what}: HTTP {resp.status} without a Location",
                                       image=name)
        return resp

    async def _auth_header(self, scope: str) -> str | None:
        if self._scheme == "basic" and self.username is not None:
            return self._basic()
        if self._scheme == "bearer":
            token = self._tokens.get(scope)
            if token and token.expires > time.monotonic():
                return f"Bearer {token.value}"
            return await self._fetch_token(scope)
        return None

    async def _learn_challenge(self, resp: Answer, scope: str, name: str) -> None:
        # checked before it is remembered: one repository's bad challenge fails that image,
        # and the registry keeps the challenge it had
        scheme, params = read_challenge(resp.headers.get("WWW-Authenticate"), self.base_url, name)
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
                raise RegistryAuthError("Bearer challenge without a realm", image=self.name)
            params: list[tuple[str, str]] = [
                ("service", self._challenge.get("service", ""))]
            wanted = scope or challenged_scope
            # several scopes (push here, pull from a mount's source) go as repeated parameters
            params.extend(("scope", one) for one in (wanted or "").split())
            headers = {"Authorization": self._basic()} if self.username else {}
            where = urlsplit(realm)  # checked by read_challenge when it was learnt
            # its host, which a firewall or proxy must let through, named in every error below
            service = redact(f"{where.scheme}://{where.netloc.rpartition('@')[2]}")
            self.stats.token_requests += 1
            self.stats.kinds["token GET"] = self.stats.kinds.get("token GET", 0) + 1
            got_headers = False
            try:
                async with asyncio.timeout(self._time_left()):
                    proxy = self._proxy(URL(realm))
                    async with self._session().get(realm, params=params, headers=headers,
                                                   proxy=proxy, ssl=_tls(URL(realm), proxy),
                                                   allow_redirects=False) as r:
                        got_headers = True
                        status = r.status
                        raw = await _read_capped(r, BODY_LIMITS["token"], "token", self.name)
            except TimeoutError:
                raise (MalformedAnswerError(f"the token service {service}'s answer did not arrive "
                                            f"within {self.timeout:g}s", image=self.name)
                       if got_headers else RegistryError(f"the token service {service} did not "
                                                         f"answer within {self.timeout:g}s",
                                                         image=self.name)
                       ) from None
            except aiohttp.ClientConnectorCertificateError as exc:
                raise RegistryError(_untrusted(exc), image=self.name) from None
            except _TRANSPORT_ERRORS as exc:
                raise RegistryError(f"cannot reach the token service {service}: "
                                    f"{_unreachable(exc)}", image=self.name) from None
            except aiohttp.ClientHttpProxyError as exc:  # the proxy answered, not the service
                proxy = redact(self._proxy(URL(realm)) or "the proxy")
                raise RegistryError(f"the proxy {proxy} refused the way to the token service "
                                    f"{service}: HTTP {exc.status} {exc.message}",
                                    image=self.name) from None
            except aiohttp.ClientError as exc:
                raise MalformedAnswerError(f"unreadable answer from the token service: "
                                           f"{type(exc).__name__}", image=self.name) from None
            if status in (401, 403):
                raise RegistryAuthError("the token service refused our credentials",
                                        image=self.name)
            if status >= 300:
                raise RegistryError(f"the token service {service} answered HTTP {status}",
                                    image=self.name)
            body = Answer(status, {}, raw).json_object("token service", self.name)
            value = body.get("token") or body.get("access_token")
            if not isinstance(value, str) or not value or not value.isprintable():
                raise RegistryAuthError("token service returned no usable token",
                                        image=self.name)
            expires = body.get("expires_in")
            # a day at most: a huge `expires_in` (10**400 overflows a float) is still a number
            ttl = (float(min(expires, 86400)) if isinstance(expires, (int, float))
                   and not isinstance(expires, bool) and expires > 0 else 60.0)
            remember_secret(value)
            self._tokens[scope] = _Token(value, time.monotonic() + max(ttl - 10, ttl / 2))
            return f"Bearer {value}"


def _error_detail(resp: Answer) -> str:
    """The distribution spec's `{"errors": [{"code", "message"}]}`, when the body has it."""
    try:
        errors = resp.json().get("errors") or []
        first = errors[0]
        detail = f" ({first.get('code')}: {first.get('message')})"
        return detail if len(detail) < 200 and detail.isprintable() else ""
    except (ValueError, AttributeError, IndexError, TypeError, KeyError, RecursionError):
        return ""


def _not_found(url: str, what: str) -> str:
    if what == "manifest":
        ref = url.rsplit("/", 1)[-1]
        return f"tag or digest {ref!r} not found"
    return "repository not found"
