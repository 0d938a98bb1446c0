"""Publish through GitHub's API: no git, no clone, one commit per run.

Why the API rather than a push: a Lambda has no git binary and a short deadline, and GraphQL's
`createCommitOnBranch` writes every edited file in one request, guarded by `expectedHeadOid`, and
GitHub signs the result (a verified commit). The REST Git Data API (tree → commit → non-forced ref
update) is the fallback for GitHub Enterprise Server versions without that mutation.

Protected branches get a pull request from `tagsync/<base>/<catalog>`, kept by one decision over
the PR state the run observed (`upkeep.decide`, carried out by `pull_request`): one open PR per
base carrying our hidden marker, edited in place; a person's commit or a closed proposal is
respected, never overwritten.
"""

from __future__ import annotations

import base64
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

import httpx

from tagsync.config import GitHubConfig
from tagsync.errors import (
    BranchMovedError,
    CatalogError,
    PublishAuthError,
    PublishError,
    PushRejectedError,
)
from tagsync.http_policy import (
    RETRY_STATUSES,
    RetryPolicy,
    environment_proxy,
    redact,
    tls_context,
    wait_from,
)
from tagsync.plan import Change
from tagsync.publish import PublishResult, link_target, real_paths
from tagsync.publish.upkeep import pr_body as pr_body  # where the PR body used to live
from tagsync.registry.base import parse_time
from tagsync.secrets import resolve

if TYPE_CHECKING:
    from tagsync.publish.pull_request import PullState

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
_MOVED_HINTS = ("expected branch to point to", "not a fast forward", "stale_data")
_PROTECTED_HINTS = ("protected branch", "rule violation", "must be made through a pull request")
_FILE_MODE = "100644"
_PROTECTED_NOTE = " — the branch is protected; set `github.mode: pull-request`"


def graphql_url_for(api_url: str) -> str:
    """api.github.com/graphql, or HOST/api/graphql for GitHub Enterprise Server (/api/v3)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


class TokenSource:
    """Hands out the current token; an App refreshes its installation token before expiry."""

    def token(self, client: httpx.Client) -> str:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Every secret this source has handed out, so error text can be scrubbed of them."""
        raise NotImplementedError

    def forget(self) -> bool:
        """Drop a cached token GitHub refused; True when a retry may get a fresh one."""
        return False


@dataclass
class StaticToken(TokenSource):
    """A token from the config: nothing to refresh."""

    value: str

    def token(self, client: httpx.Client) -> str:
        return self.value

    def secrets(self) -> list[str]:
        return [self.value]


# Installation tokens live an hour; a warm Lambda reuses one across invocations.
_INSTALLATION_TOKENS: dict[tuple[str, int, int], tuple[str, float]] = {}
REFRESH_MARGIN = 300.0  # seconds before expiry at which a cached token is replaced


@dataclass
class AppToken(TokenSource):
    """GitHub App: RS256 JWT from the private key → installation access token, cached."""

    app_id: int
    private_key: str
    repo: str
    api_url: str
    installation_id: int | None = None
    _issued: list[str] = field(default_factory=list)

    def _jwt(self) -> str:
        import jwt  # PyJWT; imported here so token users never pay for it

        now = int(time.time())
        # iat 60 s in the past absorbs clock drift; GitHub rejects exp more than 10 min ahead.
        payload = {"iat": now - 60, "exp": now + 540, "iss": str(self.app_id)}
        try:
            encoded = jwt.encode(payload, self.private_key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise PublishAuthError(f"GitHub App {self.app_id}: the private key is not a usable RSA "
                                   f"PEM key ({type(exc).__name__})") from None
        self._issued.append(encoded)
        return encoded

    def token(self, client: httpx.Client) -> str:
        installation = self.installation_id
        if installation is not None:
            cached = _INSTALLATION_TOKENS.get((self.api_url, self.app_id, installation))
            if cached and cached[1] - REFRESH_MARGIN > time.time():
                return cached[0]
        app_jwt = self._jwt()
        headers = {"Authorization": f"Bearer {app_jwt}"}
        if installation is None:
            found = _checked(client.get(f"/repos/{self.repo}/installation", headers=headers),
                             f"finding the installation of GitHub App {self.app_id} on {self.repo}",
                             self.secrets())
            installation = self.installation_id = int(found["id"])
            cached = _INSTALLATION_TOKENS.get((self.api_url, self.app_id, installation))
            if cached and cached[1] - REFRESH_MARGIN > time.time():
                return cached[0]
        answer = _checked(
            client.post(f"/app/installations/{installation}/access_tokens", headers=headers, json={}),
            f"exchanging GitHub App {self.app_id}'s JWT for an installation token", self.secrets())
        token = str(answer["token"])
        expires = datetime.fromisoformat(str(answer["expires_at"]).replace("Z", "+00:00")).timestamp()
        _INSTALLATION_TOKENS[(self.api_url, self.app_id, installation)] = (token, expires)
        self._issued.append(token)
        log.info("GitHub App %s: installation token for %s valid until %s", self.app_id,
                 installation, answer["expires_at"])
        return token

    def forget(self) -> bool:
        """Drop the cached installation token (GitHub refused it: revoked, or the clock lies);
        True when there was one, so one retry with a fresh token is worth it."""
        if self.installation_id is None:
            return False
        return _INSTALLATION_TOKENS.pop((self.api_url, self.app_id, self.installation_id),
                                        None) is not None

    def secrets(self) -> list[str]:
        cached = [t for (api, app, _), (t, _) in _INSTALLATION_TOKENS.items()
                  if api == self.api_url and app == self.app_id]
        return [self.private_key, *self._issued, *cached]


def _checked(response: httpx.Response, doing: str, secrets: Sequence[str]) -> Any:
    """The JSON body of a 2xx answer, or a typed error saying what we were doing."""
    if response.is_success:
        return _json_of(response, doing)
    raise _http_error(response, doing, secrets)


def _json_of(response: httpx.Response, doing: str) -> Any:
    """The answer's JSON (`{}` when empty). Anything else, such as a captive portal's page or a
    web server at a wrong `api_url`, is a PublishError that says what came instead."""
    if not response.content:
        return {}
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past reading
        kind = response.headers.get("content-type", "no content type").split(";")[0].strip()
        raise PublishError(f"{doing}: the answer (HTTP {response.status_code}, {kind}) is not "
                           "JSON; is `github.api_url` GitHub's API, or is a proxy answering for "
                           "it?") from None


_P = ParamSpec("_P")
_R = TypeVar("_R")
# What reading an answer of another shape than documented raises (a missing key, a list where an
# object was promised, a number that is not one)
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def _as_documented(step: Callable[_P, _R]) -> Callable[_P, _R]:
    """A publishing step reads GitHub's answers as its documentation describes them; an answer
    of another shape (a proxy's JSON, an older Enterprise Server) is a PublishError naming the
    step, not a traceback. The traceback goes to the debug log."""

    @functools.wraps(step)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return step(*args, **kwargs)
        except _SHAPE_ERRORS as exc:
            log.debug("GitHub's answer did not have the documented shape", exc_info=True)
            raise PublishError(f"{step.__name__.strip('_')}: GitHub's API answered with a shape "
                               f"its documentation does not describe ({type(exc).__name__}: "
                               f"{str(exc)[:120]})") from None

    return guarded


def _http_error(response: httpx.Response, doing: str, secrets: Sequence[str]) -> PublishError:
    try:
        body = response.json()
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            detail += " (" + "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                                       for e in errors) + ")"
    except (ValueError, TypeError, RecursionError):  # not JSON, or `errors` not a list
        detail = response.text[:200]
    status = response.status_code
    text = redact(f"{doing}: GitHub answered {status} {detail}".rstrip(), *secrets)
    lowered = detail.lower()
    if status == 401 and "claim" in lowered:  # a JWT's time claims, judged by GitHub's clock
        return PublishAuthError(text + " — GitHub judges a GitHub App's JWT by its own clock "
                                       "(issued in the past, expiring within 10 minutes): this "
                                       "machine's clock is off; set it right (NTP)")
    if status == 401:
        return PublishAuthError(text + " — the token is wrong, expired or revoked")
    if status == 429 or (status == 403 and _is_rate_limit(response)):
        return PublishError(text + " — rate limited by GitHub; the next run will pick this up")
    if status == 403:
        return PushRejectedError(text + " — the token lacks a permission (contents: write, "
                                        "pull requests: write) or the repository forbids this")
    if status == 404:
        return PublishError(text + " — the repository, branch or file does not exist, or the "
                                   "token cannot see it")
    if any(h in lowered for h in _MOVED_HINTS):
        return BranchMovedError(text)
    if any(h in lowered for h in _PROTECTED_HINTS):
        return PushRejectedError(text + _PROTECTED_NOTE)
    return PublishError(text)


def _is_rate_limit(response: httpx.Response) -> bool:
    """A 403 is a rate limit, not a permission, when GitHub says so: exhausted primary quota,
    Retry-After, or a secondary limit named in the message (which may come without headers)."""
    headers = response.headers
    if "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0":
        return True
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and "rate limit" in str(body.get("message", "")).lower()


def _sleep(seconds: float) -> None:
    """Rate-limit waits go through here (one place to observe them in tests)."""
    time.sleep(seconds)


SECONDARY_WAIT = 60.0  # GitHub: without headers, wait at least a minute, then longer each time


class GraphQLUnavailable(PublishError):
    """The server has no GraphQL endpoint (older GitHub Enterprise Server): use REST instead."""


class Meter(Protocol):
    """What may still be spent through the client (`org.share.Share`): each method raises to
    refuse."""

    def github(self, doing: str) -> None:
        """Before each request is sent (each retry too)."""

    def wait(self, seconds: float, doing: str) -> None:
        """Before a rate limit is sat out for `seconds`."""


class GitHubApi:
    """httpx with GitHub's headers, rate-limit waits and typed errors; nothing more."""

    def __init__(self, api_url: str, auth: TokenSource, *, graphql_url: str | None = None,
                 retries: int = 3, max_wait: float = 60.0, timeout: float = 20.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.graphql_url = graphql_url or graphql_url_for(self.api_url)
        self.auth = auth
        self.retries = retries
        # 5xx on reads and lost connections: the registries' backoff, shorter (a run waits on it)
        self.backoff = RetryPolicy(attempts=retries, base_delay=1.0, max_delay=8.0)
        self.max_wait = max_wait
        self.requests = 0
        self.writes = 0
        # organisation mode: one repository's share of the shared rate limit and of the run's
        # time, told of every request and every rate-limit wait; it raises to refuse them
        self.meter: Meter | None = None
        self.client = httpx.Client(
            base_url=self.api_url, timeout=timeout, transport=transport,
            verify=tls_context() if transport is None else True,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                     "User-Agent": "tagsync"},
        )

    def close(self) -> None:
        self.client.close()

    def secrets(self) -> list[str]:
        return self.auth.secrets()

    def _wait_for(self, response: httpx.Response, secondary_hits: int) -> float | None:
        """Seconds to sit out a primary or secondary rate limit, or None if this is no limit
        (GitHub's documented order: Retry-After; x-ratelimit-remaining 0 → until
        x-ratelimit-reset; otherwise a secondary limit: at least a minute, exponentially longer)."""
        if response.status_code not in (403, 429) or not (
                response.status_code == 429 or _is_rate_limit(response)):
            return None
        headers = response.headers
        wait = wait_from(headers.get("retry-after"))
        if wait is None and headers.get("x-ratelimit-remaining") == "0":
            wait = wait_from(headers.get("x-ratelimit-reset"))  # epoch seconds
        return wait if wait is not None else SECONDARY_WAIT * 2.0 ** secondary_hits

    def _sit_out(self, wait: float, doing: str, why: str) -> None:
        if self.meter is not None:
            self.meter.wait(wait, doing)
        if wait > self.max_wait:
            raise PublishError(f"{doing}: rate limited by GitHub ({why}); the limit resets in "
                               f"{wait:.0f} s, more than max_wait ({self.max_wait:.0f} s); the next "
                               "run will pick this up")
        log.warning("%s: rate limited by GitHub (%s); waiting %.1f s", doing, why, wait)
        _sleep(wait)

    def request(self, method: str, url: str, doing: str, *, json: Any = None,
                params: dict[str, Any] | None = None, allow: tuple[int, ...] = ()) -> httpx.Response:
        """Send with auth; wait out rate limits up to `max_wait`; raise typed errors otherwise."""
        write = method != "GET"
        secondary_hits = 0
        refreshed = False
        for attempt in range(self.retries + 1):
            if self.meter is not None:
                self.meter.github(doing)
            try:  # an App's token exchange goes the same way (proxy, TLS) as the request
                token = self.auth.token(self.client)
                if not (token.isascii() and token.isprintable()):  # httpx's error would quote it
                    raise PublishAuthError(f"{doing}: the GitHub token holds a character an HTTP "
                                           "header cannot carry (a line break, a non-ASCII "
                                           "character): check how it is stored")
                headers = {"Authorization": f"Bearer {token}"}
                response = self.client.request(method, url, json=json, params=params, headers=headers)
            except httpx.ProxyError as exc:  # the proxy answered, not GitHub: no retry changes it
                raise PublishError(redact(f"{doing}: the proxy {environment_proxy()} refused the way "
                                          f"to {self.api_url}: HTTP {exc}", *self.secrets())
                                   ) from None
            except httpx.TransportError as exc:
                if write or attempt == self.retries:
                    raise PublishError(redact(f"{doing}: {type(exc).__name__}: {exc}",
                                              *self.secrets())) from None
                time.sleep(self.backoff.delay(attempt))
                continue
            self.requests += 1
            self.writes += write
            if response.is_success or response.status_code in allow:
                return response
            if response.status_code == 401 and not refreshed and self.auth.forget():
                refreshed = True  # a cached App token GitHub no longer takes: one fresh one
                log.warning("%s: GitHub refused the cached installation token; asking for a new "
                            "one", doing)
                continue
            wait = self._wait_for(response, secondary_hits)
            if wait is not None and attempt < self.retries:
                secondary = "retry-after" not in response.headers and \
                    response.headers.get("x-ratelimit-remaining") != "0"
                secondary_hits += secondary
                self._sit_out(wait, doing, f"HTTP {response.status_code}"
                              + (", secondary limit" if secondary else ""))
                continue
            if response.status_code in RETRY_STATUSES and not write and attempt < self.retries:
                time.sleep(self.backoff.delay(attempt))
                continue
            raise _http_error(response, doing, self.secrets())
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, url: str, doing: str, **kwargs: Any) -> Any:
        return _json_of(self.request(method, url, doing, **kwargs), doing)

    def graphql(self, query: str, variables: dict[str, Any], doing: str) -> dict[str, Any]:
        """One GraphQL request; a RATE_LIMITED answer (HTTP 200) is waited out like a 429."""
        for attempt in range(self.retries + 1):
            response = self.request("POST", self.graphql_url, doing, allow=(404,),
                                    json={"query": query, "variables": variables})
            if response.status_code == 404:
                raise GraphQLUnavailable(f"{doing}: {self.graphql_url} answered 404; this GitHub "
                                         "has no GraphQL API (set `github.api: rest`)")
            body = _json_of(response, doing)
            if not isinstance(body, dict):
                raise PublishError(f"{doing}: GitHub's GraphQL API answered with JSON that is "
                                   "not an object")
            errors = body.get("errors") or []
            if any(isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors):
                if attempt == self.retries:
                    raise PublishError(f"{doing}: rate limited by GitHub (GraphQL RATE_LIMITED) "
                                       f"after {attempt + 1} attempts; the next run will pick this up")
                reset = response.headers.get("x-ratelimit-reset")
                try:
                    wait = max(0.0, float(reset) - time.time()) if reset else SECONDARY_WAIT
                except ValueError:
                    wait = SECONDARY_WAIT
                self._sit_out(wait, doing, "GraphQL RATE_LIMITED")
                continue
            if errors:
                _raise_graphql_errors(errors, doing, self.secrets())
            return dict(body.get("data") or {})
        raise AssertionError("unreachable")  # pragma: no cover


def _raise_graphql_errors(errors: list[Any], doing: str, secrets: Sequence[str]) -> None:
    detail = "; ".join(f"{e.get('type', 'ERROR')}: {e.get('message', '')}" if isinstance(e, dict)
                       else str(e) for e in errors)
    lowered = detail.lower()
    text = redact(f"{doing}: {detail}", *secrets)
    if any(h in lowered for h in _MOVED_HINTS):
        raise BranchMovedError(text)
    if any(h in lowered for h in _PROTECTED_HINTS):
        raise PushRejectedError(text + _PROTECTED_NOTE)
    if "FORBIDDEN" in detail or "not accessible" in lowered:
        raise PushRejectedError(text + " — the token lacks contents: write")
    if "NOT_FOUND" in detail:
        raise PublishError(text + " — the repository or branch does not exist, or the token "
                                  "cannot see it")
    raise PublishError(text)


@dataclass
class GitHubSnapshot:
    api: GitHubApi
    repo: str
    branch: str
    head: str
    revision: str | None
    _cache: dict[str, bytes] = field(default_factory=dict)
    pulls: PullState | None = None  # PR mode: the PR state this run plans against
    links: dict[str, str] = field(default_factory=dict)  # a symlinked catalog → its target
    modes: dict[str, str] = field(default_factory=dict)  # a file read → its mode ("100755")
    _trees: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _first_parents: list[tuple[str, datetime]] | None = None
    _files_at: dict[tuple[str, str], bytes | None] = field(default_factory=dict)

    @_as_documented
    def read(self, path: str) -> bytes:
        """The file at `path`, found through the trees (their modes say what is a link and
        what is executable) and read as a blob (any size up to GitHub's 100 MB)."""
        if path not in self._cache:
            real, mode, sha = self._resolve(path, path)
            if real != path:
                self.links[path] = real
            self.modes[real] = mode
            blob = self.api.json("GET", f"/repos/{self.repo}/git/blobs/{sha}", f"reading {real}")
            self._cache[path] = base64.b64decode(blob["content"])
        return self._cache[path]

    def _listing(self, sha: str) -> list[dict[str, Any]]:
        """One folder's entries (one request per folder, kept for the run)."""
        if sha not in self._trees:
            body = self.api.json("GET", f"/repos/{self.repo}/git/trees/{sha}", "reading a folder")
            if body.get("truncated"):
                raise PublishError(f"{self.repo}: a folder holds more entries than GitHub lists "
                                   "in one answer")
            self._trees[sha] = [e for e in body.get("tree", []) if isinstance(e, dict)]
        return self._trees[sha]

    def _resolve(self, asked: str, path: str, depth: int = 0) -> tuple[str, str, str]:
        """(path, mode, blob sha) of the file behind `path`, through symlinks in the repo."""
        sha, entry = self.head, None
        parts = path.split("/")
        for i, part in enumerate(parts):
            entry = next((e for e in self._listing(sha) if e.get("path") == part), None)
            if entry is None or (i < len(parts) - 1 and entry.get("type") != "tree"):
                where = f" (the symlink's target {path})" if path != asked else ""
                raise CatalogError(f"no such file in {self.repo} at {self.head[:12]}{where}",
                                   file=asked)
            sha = str(entry["sha"])
        assert entry is not None
        mode = str(entry.get("mode"))
        if entry.get("type") != "blob":
            raise CatalogError(f"is not a file in {self.repo}", file=asked)
        if mode != "120000":
            return path, mode, sha
        link = self.api.json("GET", f"/repos/{self.repo}/git/blobs/{sha}", f"reading link {path}")
        target = link_target(path, base64.b64decode(link["content"]).decode("utf-8", "replace"))
        if target is None or depth >= 8:
            raise CatalogError("is a symlink leading outside the repository (or a loop): "
                               "tagsync edits a link's target only inside it", file=asked)
        return self._resolve(asked, target, depth + 1)

    @_as_documented
    def history(self, path: str, limit: int = 100
                ) -> list[tuple[str, datetime, Callable[[], bytes | None]]]:
        """The branch's first-parent commits, newest first (at most `limit`), with the time
        each counts from and the file as each left it (read only when asked, one request per
        commit, kept for the run: every image of a file shares them)."""
        return [(c, when, functools.partial(self._file_at, path, c))
                for c, when in self._chain(limit)]

    def _chain(self, limit: int) -> list[tuple[str, datetime]]:
        """The first-parent chain from the head, read once per snapshot: GitHub lists commits
        of every parent, so the chain follows `parents[0]`, listing again where a page ends;
        each commit's time is raised to its push time where the activity log knows it."""
        if self._first_parents is not None and len(self._first_parents) >= limit:
            return self._first_parents[:limit]
        listed: dict[str, dict[str, Any]] = {}
        out: list[tuple[str, datetime]] = []
        sha: str | None = self.head
        while sha is not None and len(out) < limit:
            if sha not in listed:
                page = self.api.json("GET", f"/repos/{self.repo}/commits",
                                     "reading the branch's history",
                                     params={"sha": sha, "per_page": "100"})
                listed.update({str(c["sha"]): c for c in page if isinstance(c, dict)}
                              if isinstance(page, list) else {})
                if sha not in listed:
                    break
            c = listed[sha]
            when = parse_time((c.get("commit") or {}).get("committer", {}).get("date"))
            if when is None:
                break
            out.append((sha, when))
            parents = c.get("parents") or []
            sha = str(parents[0]["sha"]) if parents and isinstance(parents[0], dict) else None
        pushed = self._pushed([c for c, _ in out])
        self._first_parents = [(c, max(when, pushed[c]) if c in pushed else when)
                               for c, when in out]
        return self._first_parents

    @_as_documented
    def _pushed(self, chain: list[str]) -> dict[str, datetime]:
        """When each commit of the first-parent chain reached the branch, by GitHub's activity
        log (GitHub's clock, which no committer sets): the push that brought it, provided every
        later push kept it on the branch. Commits newer than the newest logged push (the log
        lags) count as pushed now; commits older than the log keep their own (clamped) time. A
        GitHub without the log (an older Enterprise Server) leaves the committer times, said
        in the log."""
        doing = "reading the branch's push log"
        response = self.api.request("GET", f"/repos/{self.repo}/activity", doing, allow=(404,),
                                    params={"ref": f"refs/heads/{self.branch}", "per_page": "100"})
        if response.status_code == 404:
            log.warning("%s has no activity log here: promotion goes by committer times alone",
                        self.repo)
            return {}
        body = _json_of(response, doing)
        pushes = sorted(((when, str(a["after"])) for a in body if isinstance(a, dict)
                         and (when := parse_time(a.get("timestamp"))) is not None),
                        reverse=True) if isinstance(body, list) else []
        index = {sha: i for i, sha in enumerate(chain)}
        newest = index.get(pushes[0][1], len(chain)) if pushes else 0
        now = datetime.now(UTC)
        out: dict[str, datetime] = {}
        for sha, i in index.items():
            if i < newest:  # not logged yet: it is on the branch now, and no longer than that
                out[sha] = now
                continue
            since: datetime | None = None
            for when, after in pushes:
                j = index.get(after)
                if j is None or j > i:  # a push before it, or to another history: `since`
                    if since is not None:  # is the push that brought it
                        out[sha] = since
                    break
                since = when
            # else it was on the branch before the page's oldest push: its own (clamped) time
        return out

    @_as_documented
    def _file_at(self, path: str, sha: str) -> bytes | None:
        if (path, sha) not in self._files_at:
            try:
                self._files_at[(path, sha)] = read_file(self.api, self.repo, path, sha)
            except CatalogError:
                self._files_at[(path, sha)] = None
        return self._files_at[(path, sha)]

    @_as_documented
    def files(self) -> list[str]:
        """The files (not links) in the tree at the head we read: in one request
        (`recursive=1`), or folder by folder when GitHub truncated that listing (over 100,000
        entries)."""
        body = self.api.json("GET", f"/repos/{self.repo}/git/trees/{self.head}", "listing files",
                             params={"recursive": "1"})
        if not body.get("truncated"):
            return sorted(e["path"] for e in body.get("tree", []) if _is_file(e))
        log.info("%s: the tree listing was truncated; listing folder by folder", self.repo)
        out: list[str] = []
        todo = [("", self.head)]
        while todo:
            prefix, sha = todo.pop()
            for entry in self._listing(sha):
                path = prefix + str(entry["path"])
                if entry.get("type") == "tree":
                    todo.append((path + "/", str(entry["sha"])))
                elif _is_file(entry):
                    out.append(path)
        return sorted(out)


def _is_file(entry: dict[str, Any]) -> bool:
    """A tree entry a glob may match: a file, not a link (as the git publisher lists them: a
    link is followed when a catalog names it, never matched twice beside its target)."""
    return entry.get("type") == "blob" and entry.get("mode") != "120000"


class FileTooLarge(CatalogError):
    """A file over the size its reader takes, refused before its content is fetched."""

    def __init__(self, message: str, *, file: str, size: int) -> None:
        super().__init__(message, file=file)
        self.size = size


def read_file(api: GitHubApi, repo: str, path: str, ref: str,
              max_size: int | None = None) -> bytes:
    """A file's bytes at `ref`; with `max_size`, a larger one raises FileTooLarge before its
    content is read (the listing says its size; up to 100 MB would come through the blob API)."""
    response = api.request("GET", f"/repos/{repo}/contents/{quote(path)}", f"reading {path}",
                           params={"ref": ref}, allow=(404,))
    if response.status_code == 404:
        raise CatalogError(f"no such file in {repo} at {ref[:12]}", file=path)
    body = _json_of(response, f"reading {path}")
    if isinstance(body, list) or body.get("type") != "file":
        raise CatalogError(f"is not a file in {repo}", file=path)
    size = body.get("size")
    if max_size is not None and isinstance(size, int) and size > max_size:
        raise FileTooLarge(f"is {size} bytes, over the {max_size} read", file=path, size=size)
    if body.get("encoding") == "base64" and (body.get("content") or not body.get("size")):
        return base64.b64decode(body["content"])
    # Files over 1 MB come without content: fetch the blob by its sha (up to 100 MB).
    blob = api.json("GET", f"/repos/{repo}/git/blobs/{body['sha']}", f"reading {path} (large)")
    return base64.b64decode(blob["content"])


_COMMIT = """
mutation($input: CreateCommitOnBranchInput!) {
  createCommitOnBranch(input: $input) { commit { oid url } }
}
"""

@dataclass(frozen=True)
class PullRequestOptions:
    branch: str
    title: str | None = None
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    team_reviewers: tuple[str, ...] = ()
    auto_merge: str | None = None  # merge | squash | rebase
    # the default branch of tagsync before PRs were kept per base (`tagsync/<catalog>`): an open
    # PR from it is closed as superseded when the first PR from `branch` opens
    legacy_branch: str | None = None


class GitHubPublisher:
    def __init__(self, api: GitHubApi, repo: str, branch: str, *, use_graphql: bool = True,
                 pull_request: PullRequestOptions | None = None) -> None:
        self.api = api
        self.repo = repo
        self.branch = branch
        self.use_graphql = use_graphql
        self.pr = pull_request
        self._repo_id: str | None = None
        self._modes: dict[str, str] = {}  # this publish's files → the modes they keep

    def describe(self) -> str:
        where = f"github:{self.repo} ({self.branch})"
        return where + (f" via pull request from {self.pr.branch}" if self.pr else "")

    def _head(self, branch: str, *, missing_ok: bool = False) -> str | None:
        response = self.api.request("GET", f"/repos/{self.repo}/git/ref/heads/{quote(branch)}",
                                    f"reading branch {branch} of {self.repo}",
                                    allow=(404,) if missing_ok else ())
        if response.status_code == 404:
            return None
        return str(_json_of(response, f"reading branch {branch} of {self.repo}")["object"]["sha"])

    @_as_documented
    def snapshot(self) -> GitHubSnapshot:
        head = self._head(self.branch)
        assert head is not None
        pulls = None
        if self.pr is not None:
            from tagsync.publish.pull_request import observe_pulls

            pulls = observe_pulls(self)
        return GitHubSnapshot(self.api, self.repo, self.branch, head, head, pulls=pulls)

    @_as_documented
    def publish(self, snapshot: object, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        assert isinstance(snapshot, GitHubSnapshot)
        files = real_paths(files, snapshot.links)  # a link stays a link: its target is written
        self._modes = {p: snapshot.modes.get(p, _FILE_MODE) for p in files}
        if self.pr is not None:
            from tagsync.publish.pull_request import PullRequestMode

            try:
                return PullRequestMode(self).publish(snapshot, files, message, changes)
            except PushRejectedError as exc:
                if _PROTECTED_NOTE not in exc.message:
                    raise
                raise PushRejectedError(exc.message.replace(
                    _PROTECTED_NOTE, f" — a rule protects the pull requests' branch "
                                     f"{self.pr.branch}: choose a `pr_branch` no rule protects"
                )) from None
        if not files:
            return PublishResult(snapshot.revision, False)
        sha, url = self._commit(self.branch, snapshot.head, files, message, force=False)
        log.info("committed %s to %s", sha[:12], self.describe())
        return PublishResult(sha, True, url=url)

    # -- one commit ------------------------------------------------------------------------

    def _commit(self, branch: str, parent: str, files: dict[str, bytes], message: str,
                *, force: bool) -> tuple[str, str | None]:
        if self.use_graphql and self._plain():
            try:
                return self._graphql_commit(branch, parent, files, message)
            except GraphQLUnavailable as exc:
                log.warning("%s; falling back to the REST Git Data API", exc.message)
                self.use_graphql = False
        return self._rest_commit(branch, parent, files, message, force=force)

    def _plain(self) -> bool:
        """Every file written is a plain one: GraphQL writes 100644 only, so an executable file
        goes through REST, which keeps its mode (an unsigned commit, said in the log)."""
        plain = all(m == _FILE_MODE for m in self._modes.values())
        if not plain:
            log.info("an edited file is executable: committing through REST to keep its mode")
        return plain

    def _graphql_commit(self, branch: str, parent: str, files: dict[str, bytes],
                        message: str) -> tuple[str, str | None]:
        headline, _, body = message.partition("\n")
        data = self.api.graphql(_COMMIT, {"input": {
            "branch": {"repositoryNameWithOwner": self.repo, "branchName": branch},
            "expectedHeadOid": parent,
            "message": {"headline": headline, "body": body.strip("\n")},
            "fileChanges": {"additions": [
                {"path": p, "contents": base64.b64encode(d).decode()}
                for p, d in sorted(files.items())]},
        }}, f"committing to {branch} of {self.repo}")
        commit = data["createCommitOnBranch"]["commit"]
        return str(commit["oid"]), commit.get("url")

    def _rest_commit(self, branch: str, parent: str, files: dict[str, bytes], message: str,
                     *, force: bool) -> tuple[str, str | None]:
        sha, url = self._rest_commit_on(parent, files, message)
        self.api.json("PATCH", f"/repos/{self.repo}/git/refs/heads/{quote(branch)}",
                      f"moving {branch} to the new commit", json={"sha": sha, "force": force})
        return sha, url

    def _rest_commit_on(self, parent: str, files: dict[str, bytes], message: str,
                        parents: Sequence[str] | None = None) -> tuple[str, str | None]:
        """Tree (`parent`'s, with `files` inline) and a commit of it on `parents` (default
        `parent`); no ref moves yet."""
        base = self.api.json("GET", f"/repos/{self.repo}/git/commits/{parent}", "reading the parent commit")
        tree = self.api.json("POST", f"/repos/{self.repo}/git/trees", "writing the tree", json={
            "base_tree": base["tree"]["sha"],
            "tree": [{"path": p, "mode": self._modes.get(p, _FILE_MODE), "type": "blob",
                      "content": d.decode("utf-8")} for p, d in sorted(files.items())],
        })
        commit = self.api.json("POST", f"/repos/{self.repo}/git/commits", "writing the commit",
                               json={"message": message, "tree": tree["sha"],
                                     "parents": list(parents or [parent])})
        return str(commit["sha"]), commit.get("html_url")


def default_pr_branch(base: str, catalog: str) -> str:
    """`tagsync/<base>/<catalog>`: one PR branch per base, so configs for two bases never
    share (and flip) one PR."""
    return f"tagsync/{base}/{catalog}"


def github_publisher(config: GitHubConfig, first_catalog: str, base_dir: Path, *,
                     timeout: float = 20.0, api: GitHubApi | None = None) -> GitHubPublisher:
    """Build the publisher from config; secrets are resolved here, at the edge. `api`: a
    client to share (organisation mode: one token, one rate-limit budget for every repository)."""
    if api is not None:
        return GitHubPublisher(api, config.repo, config.branch, use_graphql=config.api == "graphql",
                               pull_request=_pr_options(config, first_catalog))
    auth: TokenSource
    if config.app is not None:
        key = resolve(config.app.private_key, "github.app.private_key", base_dir)
        assert key is not None
        auth = AppToken(config.app.app_id, key, config.repo, config.api_url.rstrip("/"),
                        config.app.installation_id)
    else:
        token = resolve(config.token, "github.token", base_dir)
        assert token is not None
        auth = StaticToken(token)
    api = GitHubApi(config.api_url, auth, graphql_url=config.graphql_url, retries=config.retries,
                    max_wait=config.max_wait, timeout=timeout)
    return GitHubPublisher(api, config.repo, config.branch, use_graphql=config.api == "graphql",
                           pull_request=_pr_options(config, first_catalog))


def _pr_options(config: GitHubConfig, first_catalog: str) -> PullRequestOptions | None:
    if config.mode != "pull-request":
        return None
    return PullRequestOptions(
        branch=config.pr_branch or default_pr_branch(config.branch, first_catalog),
        legacy_branch=None if config.pr_branch else f"tagsync/{first_catalog}",
        title=config.pr_title,
        labels=tuple(config.labels), reviewers=tuple(config.reviewers),
        team_reviewers=tuple(config.team_reviewers), auto_merge=config.auto_merge)
