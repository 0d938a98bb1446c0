"""Publish through GitHub's API: no git, no clone, one commit per run.

Why the API rather than a push: a Lambda has no git binary and a short deadline, and GraphQL's
`createCommitOnBranch` writes every edited file in one request, guarded by `expectedHeadOid`, and
GitHub signs the result (a verified commit). The REST Git Data API (tree → commit → non-forced ref
update) is the fallback for GitHub Enterprise Server versions without that mutation.

Protected branches get a pull request from `tagsync/<catalog>`: the branch is reset to one fresh
commit on the current base at every run and the one open PR carrying our hidden marker is edited
in place, so there is never a second PR and never a pile of commits.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
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
from tagsync.plan import Change
from tagsync.publish import PublishResult
from tagsync.publish.git import redact
from tagsync.reference import ImageName, registry_page
from tagsync.secrets import resolve

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
MARKER = "<!-- tagsync:pull-request branch={branch} -->"
_MOVED_HINTS = ("expected branch to point to", "not a fast forward", "stale_data")
_PROTECTED_HINTS = ("protected branch", "rule violation", "must be made through a pull request")


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


@dataclass
class StaticToken(TokenSource):
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

    def secrets(self) -> list[str]:
        cached = [t for (api, app, _), (t, _) in _INSTALLATION_TOKENS.items()
                  if api == self.api_url and app == self.app_id]
        return [self.private_key, *self._issued, *cached]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = redact(text, s)
    return text


def _checked(response: httpx.Response, doing: str, secrets: Sequence[str]) -> Any:
    """The JSON body of a 2xx answer, or a typed error saying what we were doing."""
    if response.is_success:
        return response.json() if response.content else {}
    raise _http_error(response, doing, secrets)


def _http_error(response: httpx.Response, doing: str, secrets: Sequence[str]) -> PublishError:
    try:
        body = response.json()
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            detail += " (" + "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                                       for e in errors) + ")"
    except ValueError:
        detail = response.text[:200]
    status = response.status_code
    text = _scrub(f"{doing}: GitHub answered {status} {detail}".rstrip(), secrets)
    lowered = detail.lower()
    if status == 401:
        return PublishAuthError(text + " — the token is wrong, expired or revoked")
    if status == 403:
        return PushRejectedError(text + " — the token lacks a permission (contents: write, "
                                        "pull requests: write) or the repository forbids this")
    if status == 404:
        return PublishError(text + " — the repository, branch or file does not exist, or the "
                                   "token cannot see it")
    if any(h in lowered for h in _MOVED_HINTS):
        return BranchMovedError(text)
    if any(h in lowered for h in _PROTECTED_HINTS):
        return PushRejectedError(text + " — the branch is protected; set `github.mode: pull-request`")
    return PublishError(text)


class GraphQLUnavailable(PublishError):
    """The server has no GraphQL endpoint (older GitHub Enterprise Server): use REST instead."""


class GitHubApi:
    """httpx with GitHub's headers, rate-limit waits and typed errors; nothing more."""

    def __init__(self, api_url: str, auth: TokenSource, *, graphql_url: str | None = None,
                 retries: int = 3, max_wait: float = 60.0, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.graphql_url = graphql_url or graphql_url_for(self.api_url)
        self.auth = auth
        self.retries = retries
        self.max_wait = max_wait
        self.requests = 0
        self.writes = 0
        self.client = httpx.Client(
            base_url=self.api_url, timeout=timeout, transport=transport,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                     "User-Agent": "tagsync"},
        )

    def close(self) -> None:
        self.client.close()

    def secrets(self) -> list[str]:
        return self.auth.secrets()

    def _wait_for(self, response: httpx.Response) -> float | None:
        """Seconds to sit out a primary or secondary rate limit, or None if this is no limit."""
        if response.status_code not in (403, 429):
            return None
        headers = response.headers
        if "retry-after" in headers:
            try:
                return max(0.0, float(headers["retry-after"]))
            except ValueError:
                return None
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            try:
                return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
            except ValueError:
                return None
        if response.status_code == 429:
            return 60.0
        return None

    def request(self, method: str, url: str, doing: str, *, json: Any = None,
                params: dict[str, Any] | None = None, allow: tuple[int, ...] = ()) -> httpx.Response:
        """Send with auth; wait out rate limits up to `max_wait`; raise typed errors otherwise."""
        write = method != "GET"
        for attempt in range(self.retries + 1):
            headers = {"Authorization": f"Bearer {self.auth.token(self.client)}"}
            try:
                response = self.client.request(method, url, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                if write or attempt == self.retries:
                    raise PublishError(_scrub(f"{doing}: {type(exc).__name__}: {exc}",
                                              self.secrets())) from None
                time.sleep(min(2.0 ** attempt, 8.0))
                continue
            self.requests += 1
            self.writes += write
            if response.is_success or response.status_code in allow:
                return response
            wait = self._wait_for(response)
            if wait is not None and attempt < self.retries:
                if wait > self.max_wait:
                    raise PublishError(f"{doing}: GitHub's rate limit resets in {wait:.0f} s, more "
                                       f"than max_wait ({self.max_wait:.0f} s); the next run will "
                                       "pick this up")
                log.warning("%s: rate limited (%d); waiting %.1f s", doing, response.status_code, wait)
                time.sleep(wait)
                continue
            if response.status_code >= 500 and not write and attempt < self.retries:
                time.sleep(min(2.0 ** attempt, 8.0))
                continue
            raise _http_error(response, doing, self.secrets())
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, url: str, doing: str, **kwargs: Any) -> Any:
        response = self.request(method, url, doing, **kwargs)
        return response.json() if response.content else {}

    def graphql(self, query: str, variables: dict[str, Any], doing: str) -> dict[str, Any]:
        response = self.request("POST", self.graphql_url, doing, allow=(404,),
                                json={"query": query, "variables": variables})
        if response.status_code == 404:
            raise GraphQLUnavailable(f"{doing}: {self.graphql_url} answered 404; this GitHub has "
                                     "no GraphQL API (set `github.api: rest`)")
        body = response.json()
        errors = body.get("errors") or []
        if errors:
            detail = "; ".join(f"{e.get('type', 'ERROR')}: {e.get('message', '')}" for e in errors)
            lowered = detail.lower()
            text = _scrub(f"{doing}: {detail}", self.secrets())
            if any(h in lowered for h in _MOVED_HINTS):
                raise BranchMovedError(text)
            if any(h in lowered for h in _PROTECTED_HINTS):
                raise PushRejectedError(text + " — the branch is protected; set "
                                               "`github.mode: pull-request`")
            if "FORBIDDEN" in detail or "not accessible" in lowered:
                raise PushRejectedError(text + " — the token lacks contents: write")
            if "NOT_FOUND" in detail:
                raise PublishError(text + " — the repository or branch does not exist, or the "
                                          "token cannot see it")
            raise PublishError(text)
        return dict(body.get("data") or {})


@dataclass
class GitHubSnapshot:
    api: GitHubApi
    repo: str
    branch: str
    head: str
    revision: str | None
    _cache: dict[str, bytes] = field(default_factory=dict)

    def read(self, path: str) -> bytes:
        if path not in self._cache:
            self._cache[path] = read_file(self.api, self.repo, path, self.head)
        return self._cache[path]

    def files(self) -> list[str]:
        """The tree at the head we read, in one request (`recursive=1`)."""
        body = self.api.json("GET", f"/repos/{self.repo}/git/trees/{self.head}", "listing files",
                             params={"recursive": "1"})
        if body.get("truncated"):
            raise PublishError(f"{self.repo}'s tree is too large for one listing; name files "
                               "without globs")
        return sorted(e["path"] for e in body.get("tree", []) if e.get("type") == "blob")


def read_file(api: GitHubApi, repo: str, path: str, ref: str) -> bytes:
    response = api.request("GET", f"/repos/{repo}/contents/{quote(path)}", f"reading {path}",
                           params={"ref": ref}, allow=(404,))
    if response.status_code == 404:
        raise CatalogError(f"no such file in {repo} at {ref[:12]}", file=path)
    body = response.json()
    if isinstance(body, list) or body.get("type") != "file":
        raise CatalogError(f"is not a file in {repo}", file=path)
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

_AUTO_MERGE = """
mutation($input: EnablePullRequestAutoMergeInput!) {
  enablePullRequestAutoMerge(input: $input) { pullRequest { number } }
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


class GitHubPublisher:
    def __init__(self, api: GitHubApi, repo: str, branch: str, *, use_graphql: bool = True,
                 pull_request: PullRequestOptions | None = None) -> None:
        self.api = api
        self.repo = repo
        self.branch = branch
        self.use_graphql = use_graphql
        self.pr = pull_request

    def describe(self) -> str:
        where = f"github:{self.repo} ({self.branch})"
        return where + (f" via pull request from {self.pr.branch}" if self.pr else "")

    def _head(self, branch: str, *, missing_ok: bool = False) -> str | None:
        response = self.api.request("GET", f"/repos/{self.repo}/git/ref/heads/{quote(branch)}",
                                    f"reading branch {branch} of {self.repo}",
                                    allow=(404,) if missing_ok else ())
        if response.status_code == 404:
            return None
        return str(response.json()["object"]["sha"])

    def snapshot(self) -> GitHubSnapshot:
        head = self._head(self.branch)
        assert head is not None
        return GitHubSnapshot(self.api, self.repo, self.branch, head, head)

    def publish(self, snapshot: object, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        assert isinstance(snapshot, GitHubSnapshot)
        if not files:
            return PublishResult(snapshot.revision, False)
        if self.pr is None:
            sha, url = self._commit(self.branch, snapshot.head, files, message, force=False)
            log.info("committed %s to %s", sha[:12], self.describe())
            return PublishResult(sha, True, url=url)
        return self._pull_request(snapshot, files, message, changes)

    # -- one commit ------------------------------------------------------------------------

    def _commit(self, branch: str, parent: str, files: dict[str, bytes], message: str,
                *, force: bool) -> tuple[str, str | None]:
        if self.use_graphql:
            try:
                return self._graphql_commit(branch, parent, files, message)
            except GraphQLUnavailable as exc:
                log.warning("%s; falling back to the REST Git Data API", exc.message)
                self.use_graphql = False
        return self._rest_commit(branch, parent, files, message, force=force)

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

    # -- pull-request mode -----------------------------------------------------------------

    def _find_pr(self) -> dict[str, Any] | None:
        assert self.pr is not None
        owner = self.repo.split("/")[0]
        pulls = self.api.json("GET", f"/repos/{self.repo}/pulls", "looking for our pull request",
                              params={"state": "open", "head": f"{owner}:{self.pr.branch}",
                                      "per_page": 100})
        marker = MARKER.format(branch=self.pr.branch)
        ours = [p for p in pulls if marker in (p.get("body") or "")]
        if pulls and not ours:
            raise PushRejectedError(
                f"an open pull request #{pulls[0]['number']} from {self.pr.branch} was not opened "
                "by tagsync; close it or choose another `pr_branch` (tagsync leaves it alone)")
        return ours[0] if ours else None

    def _already_there(self, pr_head: str, base: str, files: dict[str, bytes]) -> bool:
        """The PR branch is one commit on the current base holding exactly these files."""
        commit = self.api.json("GET", f"/repos/{self.repo}/git/commits/{pr_head}", "reading the PR head")
        if [p["sha"] for p in commit.get("parents", [])] != [base]:
            return False
        return all(read_file(self.api, self.repo, path, pr_head) == data for path, data in files.items())

    def _pull_request(self, snapshot: GitHubSnapshot, files: dict[str, bytes], message: str,
                      changes: Sequence[Change]) -> PublishResult:
        assert self.pr is not None
        branch, base = self.pr.branch, snapshot.head
        existing = self._find_pr()
        pr_head = self._head(branch, missing_ok=True)
        title = self.pr.title or message.partition("\n")[0]
        body = pr_body(changes, branch)
        if existing and pr_head and self._already_there(pr_head, base, files):
            if existing.get("body") != body or existing.get("title") != title:
                self._edit_pr(existing, title, body)
            log.info("pull request #%s already holds these changes", existing["number"])
            return PublishResult(pr_head, False, url=existing.get("html_url"),
                                 pull_request=int(existing["number"]), action="unchanged")
        if self.use_graphql:
            # createCommitOnBranch commits on top of the branch: point it at the base first.
            self._set_branch(branch, base, exists=pr_head is not None)
            sha, _ = self._commit(branch, base, files, message, force=True)
        else:
            sha, _ = self._rest_commit_on(base, files, message)
            self._set_branch(branch, sha, exists=pr_head is not None)
        if existing:
            self._edit_pr(existing, title, body)
            log.info("updated pull request #%s with %s", existing["number"], sha[:12])
            return PublishResult(sha, True, url=existing.get("html_url"),
                                 pull_request=int(existing["number"]), action="updated")
        created = self.api.json("POST", f"/repos/{self.repo}/pulls", "opening the pull request",
                                json={"title": title, "head": branch, "base": self.branch, "body": body})
        number = int(created["number"])
        self._decorate(created)
        log.info("opened pull request #%s", number)
        return PublishResult(sha, True, url=created.get("html_url"), pull_request=number,
                             action="opened")

    def _rest_commit_on(self, parent: str, files: dict[str, bytes], message: str) -> tuple[str, str | None]:
        """Tree (contents inline) and commit on `parent`; no ref moves yet."""
        base = self.api.json("GET", f"/repos/{self.repo}/git/commits/{parent}", "reading the parent commit")
        tree = self.api.json("POST", f"/repos/{self.repo}/git/trees", "writing the tree", json={
            "base_tree": base["tree"]["sha"],
            "tree": [{"path": p, "mode": "100644", "type": "blob", "content": d.decode("utf-8")}
                     for p, d in sorted(files.items())],
        })
        commit = self.api.json("POST", f"/repos/{self.repo}/git/commits", "writing the commit",
                               json={"message": message, "tree": tree["sha"], "parents": [parent]})
        return str(commit["sha"]), commit.get("html_url")

    def _set_branch(self, branch: str, sha: str, *, exists: bool) -> None:
        if exists:
            self.api.json("PATCH", f"/repos/{self.repo}/git/refs/heads/{quote(branch)}",
                          f"resetting {branch}", json={"sha": sha, "force": True})
        else:
            self.api.json("POST", f"/repos/{self.repo}/git/refs", f"creating {branch}",
                          json={"ref": f"refs/heads/{branch}", "sha": sha})

    def _edit_pr(self, pr: dict[str, Any], title: str, body: str) -> None:
        self.api.json("PATCH", f"/repos/{self.repo}/pulls/{pr['number']}", "updating the pull request",
                      json={"title": title, "body": body})

    def _decorate(self, pr: dict[str, Any]) -> None:
        assert self.pr is not None
        number = pr["number"]
        if self.pr.labels:
            self.api.json("POST", f"/repos/{self.repo}/issues/{number}/labels", "labelling the PR",
                          json={"labels": list(self.pr.labels)})
        if self.pr.reviewers or self.pr.team_reviewers:
            self.api.json("POST", f"/repos/{self.repo}/pulls/{number}/requested_reviewers",
                          "requesting reviews", json={"reviewers": list(self.pr.reviewers),
                                                      "team_reviewers": list(self.pr.team_reviewers)})
        if self.pr.auto_merge:
            self.api.graphql(_AUTO_MERGE, {"input": {
                "pullRequestId": pr["node_id"], "mergeMethod": self.pr.auto_merge.upper()}},
                "requesting auto-merge")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def pr_body(changes: Sequence[Change], branch: str) -> str:
    """A table people can review at a glance, and the marker that lets the next run find the PR."""
    lines = [f"tagsync found {len(changes)} image reference(s) out of date.", "",
             "| Image | Tag | Old | New | File |", "| --- | --- | --- | --- | --- |"]
    for c in changes:
        page = registry_page(ImageName.parse(c.image))
        image = f"[{_cell(c.image)}]({page})" if page else f"`{_cell(c.image)}`"
        old = f"`{_cell(c.old)}`" if c.old else "(empty)"
        lines.append(f"| {image} | `{_cell(c.tag)}` | {old} | `{_cell(c.new)}` | "
                     f"{_cell(c.file)}:{c.line} |")
    lines += ["", "This branch is rewritten by every run; edits pushed to it are replaced.",
              "", MARKER.format(branch=branch)]
    return "\n".join(lines) + "\n"


def github_publisher(config: GitHubConfig, first_catalog: str, base_dir: Path) -> GitHubPublisher:
    """Build the publisher from config; secrets are resolved here, at the edge."""
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
                    max_wait=config.max_wait)
    pr = None
    if config.mode == "pull-request":
        pr = PullRequestOptions(
            branch=config.pr_branch or f"tagsync/{first_catalog}", title=config.pr_title,
            labels=tuple(config.labels), reviewers=tuple(config.reviewers),
            team_reviewers=tuple(config.team_reviewers), auto_merge=config.auto_merge)
    return GitHubPublisher(api, config.repo, config.branch, use_graphql=config.api == "graphql",
                           pull_request=pr)
