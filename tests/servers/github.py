"""A GitHub API contract server: just the endpoints tagsync uses, checked against GitHub's own spec.

There is no GitHub to run on 127.0.0.1, and a hand-written fake drifts from the real thing. So
every request this server receives and every response it sends is validated against GitHub's
published OpenAPI description (npm `@octokit/openapi`), and every GraphQL document and its
variables against the published schema (npm `@octokit/graphql-schema`); GraphQL answers are
produced by executing the query on that schema, so their shape is the schema's. A mismatch is a
*violation*: the request fails with 500 and the fixture fails the test.

State is real Git: each repository is a dulwich MemoryRepo, so shas, trees and commits are the
objects GitHub would compute.
"""

from __future__ import annotations

import base64
import itertools
import json
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from dulwich.object_store import commit_tree_changes, tree_lookup_path
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import MemoryRepo

from tests.servers.fixtures import commit_to_ref

ROOT = Path(__file__).resolve().parents[2]
NPM = ROOT / ".cache" / "npm" / "node_modules" / "@octokit"
OPENAPI = NPM / "openapi" / "generated" / "api.github.com.json"
GRAPHQL_SCHEMA = NPM / "graphql-schema" / "schema.graphql"


class ContractViolation(AssertionError):
    pass


# --- the REST contract -------------------------------------------------------------------


@dataclass
class Operation:
    method: str
    template: str
    spec: dict[str, Any]
    regex: re.Pattern[str]
    literal: int


@cache
def rest_contract() -> RestContract:
    return RestContract(json.loads(OPENAPI.read_text()))


class RestContract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.components = spec["components"]
        self.ops: list[Operation] = []
        for template, item in spec["paths"].items():
            literal = template.count("/") - template.count("{")
            for method, op in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                params = [self._deref(p) for p in op.get("parameters", [])]
                # Only a parameter the spec marks `x-multi-segment` may hold slashes
                # (heads/tagsync/x, dir/file.yml); any other takes exactly one segment.
                multi = {p["name"] for p in params if p["in"] == "path" and p.get("x-multi-segment")}
                parts = []
                for segment in template.strip("/").split("/"):
                    names = re.findall(r"\{([^}]+)\}", segment)
                    pattern = re.escape(segment)
                    for name in names:
                        value = r"(?P<%s>.+)" if name in multi else r"(?P<%s>[^/]+)"
                        pattern = pattern.replace(re.escape("{" + name + "}"),
                                                  value % name.replace("-", "_"))
                    parts.append(pattern)
                regex = re.compile("^/" + "/".join(parts) + "$")
                self.ops.append(Operation(method.upper(), template, op, regex, literal))
        self.ops.sort(key=lambda o: -o.literal)

    def match(self, method: str, path: str) -> Operation | None:
        for op in self.ops:
            if op.method == method and op.regex.match(path):
                return op
        return None

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ptr = node["$ref"].removeprefix("#/").split("/")
            cur: Any = self.spec
            for p in ptr:
                cur = cur[p.replace("~1", "/").replace("~0", "~")]
            node = cur
        return node

    def _validate(self, schema: dict[str, Any], instance: Any, *, write: bool) -> list[str]:
        from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

        cls = OAS30WriteValidator if write else OAS30ReadValidator
        validator = cls({**schema, "components": self.components})
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
                for e in validator.iter_errors(instance)]

    def check_path(self, op: Operation, values: dict[str, str]) -> list[str]:
        """Path parameters against their schemas, and against what GitHub documents about them
        in words: names of owners and repositories, `heads/…`/`tags/…` refs, full object ids."""
        problems: list[str] = []
        for p in (self._deref(p) for p in op.spec.get("parameters", [])):
            if p["in"] != "path":
                continue
            raw = values.get(p["name"].replace("-", "_"))
            if raw is None:
                problems.append(f"path parameter {p['name']!r} missing")
                continue
            schema = p.get("schema", {})
            value: Any = raw
            if schema.get("type") == "integer":
                if not re.fullmatch(r"[0-9]+", raw):
                    problems.append(f"path {p['name']}: {raw!r} is not an integer")
                    continue
                value = int(raw)
            problems += [f"path {p['name']}: {m}" for m in self._validate(schema, value, write=True)]
            rule = _PATH_RULES.get((p["name"], op.template)) or _PATH_RULES.get((p["name"], ""))
            if rule is not None and not re.fullmatch(rule[0], raw):
                problems.append(f"path {p['name']}: {raw!r} is not {rule[1]}")
        return problems

    def check_request(self, op: Operation, query: dict[str, list[str]], body: Any) -> list[str]:
        problems: list[str] = []
        params = [self._deref(p) for p in op.spec.get("parameters", [])]
        known = {p["name"] for p in params if p["in"] == "query"}
        for name in query:
            if name not in known:
                problems.append(
                    f"query parameter {name!r} is not in the spec of {op.method} {op.template}")
        for p in params:
            if p["in"] == "query" and p.get("required") and p["name"] not in query:
                problems.append(f"required query parameter {p['name']!r} missing")
            if p["in"] == "query" and p["name"] in query and "schema" in p:
                raw = query[p["name"]][0]
                value: Any = int(raw) if p["schema"].get("type") == "integer" and raw.isdigit() else raw
                found = self._validate(p["schema"], value, write=True)
                problems += [f"query {p['name']}: {m}" for m in found]
        rb = op.spec.get("requestBody")
        if rb is not None:
            rb = self._deref(rb)
            if body is None and rb.get("required"):
                problems.append("request body required")
            elif body is not None:
                schema = rb["content"].get("application/json", {}).get("schema")
                if schema is not None:
                    problems += [f"request body {m}" for m in self._validate(schema, body, write=True)]
        elif body is not None:
            problems.append(f"{op.method} {op.template} takes no request body")
        return problems

    def response_schema(self, op: Operation, status: int) -> dict[str, Any] | None:
        responses = op.spec["responses"]
        spec = responses.get(str(status)) or responses.get("default")
        if spec is None:
            return None
        spec = self._deref(spec)
        content = spec.get("content", {}).get("application/json")
        return content.get("schema") if content else None

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        responses = op.spec["responses"]
        if str(status) not in responses and status not in (401, 403, 404, 429, 500, 502, 503):
            return [f"status {status} is not documented for {op.method} {op.template}"]
        schema = self.response_schema(op, status)
        if schema is None or body is None:
            return []
        return [f"response {status} {m}" for m in self._validate(schema, body, write=False)]

    def instance(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """The smallest value the schema accepts: required fields only, nulls where allowed."""
        schema = self._deref(schema)
        if schema.get("nullable") and depth > 0 and "type" in schema:
            return None
        if "allOf" in schema:
            out: dict[str, Any] = {}
            for part in schema["allOf"]:
                out.update(self.instance(part, depth + 1))
            return out
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return self.instance(schema[key][0], depth + 1)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            return {k: self.instance(props.get(k, {"type": "string"}), depth + 1)
                    for k in schema.get("required", [])}
        if kind == "array":
            return []
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        fmt = schema.get("format")
        if fmt == "uri":
            return "https://github.invalid/"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "email":
            return "bot@example.invalid"
        return "x"


# What GitHub's reference pages say about path parameters beyond their JSON schema (a string).
# Key: (parameter, operation template or "" for every operation).
_GIT_REF = (r"(heads|tags)/[^\s~^:?*\[\\]+", "heads/<branch> or tags/<tag> (a fully qualified ref "
            "without refs/)")
_SHA = (r"[0-9a-f]{40}", "a full 40-hex object id")
_PATH_RULES: dict[tuple[str, str], tuple[str, str]] = {
    ("owner", ""): (r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", "a GitHub account name"),
    ("repo", ""): (r"[A-Za-z0-9._-]{1,100}", "a repository name"),
    ("ref", "/repos/{owner}/{repo}/git/ref/{ref}"): _GIT_REF,
    ("ref", "/repos/{owner}/{repo}/git/refs/{ref}"): _GIT_REF,
    ("ref", "/repos/{owner}/{repo}/git/matching-refs/{ref}"): _GIT_REF,
    ("commit_sha", "/repos/{owner}/{repo}/git/commits/{commit_sha}"): _SHA,
    ("file_sha", ""): _SHA,
    ("path", ""): (r"[^/].*[^/]|[^/]", "a path without leading or trailing slash"),
    ("basehead", ""): (r"[^.]+(\.[^.]+)*\.\.\.[^.]+(\.[^.]+)*", "BASE...HEAD"),
}

_OID = re.compile(r"[0-9a-f]{40}")


# --- the GraphQL contract ----------------------------------------------------------------


@cache
def graphql_schema() -> Any:
    from graphql import build_schema

    # The published SDL repeats two fields and marks some interface fields deprecated in only one
    # place; GitHub's own server accepts it, graphql-core's strict checks do not. Skip those checks
    # for the *schema*; documents are still validated against it in full.
    schema = build_schema(GRAPHQL_SCHEMA.read_text(), assume_valid_sdl=True)
    schema._validation_errors = []
    return schema


# --- the server --------------------------------------------------------------------------


@dataclass
class PullRequest:
    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    auto_merge: str | None = None
    opened_by: str = "tagsync-bot"
    closed_because: str | None = None  # set when GitHub itself closed it (see _set_ref)
    mergeable: bool | None = None  # forced by a test; None: computed as GitHub would
    comments: list[str] = field(default_factory=list)
    reviews: list[tuple[str, str]] = field(default_factory=list)  # (login, state) submitted

    @property
    def merged(self) -> bool:
        return self.closed_because == "merged"


@dataclass
class Issue:
    number: int
    title: str
    body: str
    state: str = "open"
    labels: list[str] = field(default_factory=list)


@dataclass
class Repository:
    full_name: str
    git: MemoryRepo
    protected: set[str] = field(default_factory=set)
    pulls: list[PullRequest] = field(default_factory=list)
    default_branch: str = "main"
    archived: bool = False
    fork: bool = False
    private: bool = False  # public by default: anyone (any installation) may read it
    issues: list[Issue] = field(default_factory=list)
    # GitHub's activity log (`GET /repos/{owner}/{repo}/activity`): every ref move, with when
    # it happened by GitHub's clock (a test may set it: a push made in the past)
    activity: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Hit:
    method: str
    path: str
    status: int
    graphql: str | None = None  # the mutation's root field, for POST /graphql

    @property
    def writes(self) -> bool:
        return self.method != "GET" and not (self.graphql or "").startswith("query")


class GitHubServer:
    """Repos, refs, commits and PRs in memory; tests set it up and look inside."""

    def __init__(self) -> None:
        self.url = ""
        self.contract = rest_contract()
        self.repos: dict[str, Repository] = {}
        self.tokens: dict[str, str] = {}  # token → scope: "write" | "read"
        self.apps: dict[int, Any] = {}  # app id → RSA public key
        self.installations: dict[int, tuple[int, str]] = {}  # installation id → (app id, repo)
        # An installation on "only select repositories": installation id → those (full names);
        # one absent here is on "all repositories" of its account (the owner of its repo)
        self.selected: dict[int, set[str]] = {}
        self.issued: list[dict[str, Any]] = []  # installation tokens handed out (and for which)
        self.graphql_reads: list[str] = []  # repositories a GraphQL query resolved, in order
        self.hits: list[Hit] = []
        self.violations: list[str] = []
        self.seen_headers: list[dict[str, str]] = []
        self.before_write: Callable[[str, str], None] | None = None
        self.throttle: list[tuple[int, dict[str, str]]] = []  # next answers: (status, headers)
        self.graphql_rate_limited = 0  # next GraphQL answers: 200 with a RATE_LIMITED error
        # Writes that fail once, without effect: "createCommitOnBranch" or "POST <template>" → status.
        self.faults: dict[str, int] = {}
        self.ref_log: list[tuple[str, str, str | None]] = []  # (repo, ref, sha) on every move
        self.next_headers: dict[str, str] = {}  # headers of the answer being built (Link)
        self.forced: list[str] = []  # refs moved by a forced REST update (no compare-and-swap)
        self._hold: threading.Barrier | None = None
        self.graphql_enabled = True
        self.lock = threading.Lock()
        self._pr_numbers = itertools.count(1)  # issues and pull requests share one numbering
        self.clock: Callable[[], float] = time.time  # GitHub's clock (tests may set it apart)
        # GitHub's limits: a recursive tree lists at most 100,000 entries (then `truncated`);
        # the contents API serves a file's content inline up to 1 MB
        self.tree_limit = 100_000
        self.contents_limit = 1024 * 1024
        self.body_limit = 65536  # an issue's or a pull request's body, in characters
        self.title_limit = 256  # an issue's or a pull request's title, in characters
        self.without_workflows: set[str] = set()  # tokens that may not touch .github/workflows/

    # -- set-up for tests ----------------------------------------------------------------

    def create_repo(self, full_name: str, files: dict[str, bytes], branch: str = "main",
                    when: int | None = None) -> Repository:
        repo = Repository(full_name, MemoryRepo(), default_branch=branch)
        self.repos[full_name] = repo
        self.commit_directly(full_name, files, "initial", branch=branch, when=when)
        return repo

    def commit_directly(self, full_name: str, files: dict[str, bytes], message: str = "someone else",
                        branch: str = "main", when: int | None = None,
                        pushed: int | None = None) -> str:
        """A commit dated `when`, pushed at `pushed` (by GitHub's clock; default: `when`, an
        honest commit, or now)."""
        repo = self.repos[full_name]
        ref = f"refs/heads/{branch}".encode()
        before = repo.git.refs[ref] if ref in repo.git.refs else None  # noqa: SIM401
        sha = commit_to_ref(repo.git, files, message, ref, when)
        # GitHub's reaction on pull requests, as for any push
        self._set_ref(repo, ref, sha, pushed=pushed if pushed is not None else when,
                      before=before or b"")  # b"": the branch did not exist
        return sha.decode()

    def push_ref(self, full_name: str, sha: bytes, branch: str = "main",
                 pushed: int | None = None) -> None:
        """A push (or a force push) that moves a branch to a commit already in the repository."""
        repo = self.repos[full_name]
        self._set_ref(repo, f"refs/heads/{branch}".encode(), sha, pushed=pushed)

    def head(self, full_name: str, branch: str = "main") -> str | None:
        refs = self.repos[full_name].git.refs
        ref = f"refs/heads/{branch}".encode()
        return refs[ref].decode() if ref in refs else None

    def read(self, full_name: str, path: str, ref: str = "main") -> bytes:
        repo = self.repos[full_name].git
        sha = repo.refs[f"refs/heads/{ref}".encode()] if len(ref) != 40 else ref.encode()
        return _read(repo, sha, path)

    def commit(self, full_name: str, sha: str) -> Commit:
        obj = self.repos[full_name].git[sha.encode()]
        assert isinstance(obj, Commit)
        return obj

    def writes(self) -> list[Hit]:
        return [h for h in self.hits if h.writes]

    def open_pulls(self, full_name: str) -> list[PullRequest]:
        return [p for p in self.repos[full_name].pulls if p.state == "open"]

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        path = unquote(environ.get("PATH_INFO", ""))
        query = parse_qs(environ.get("QUERY_STRING", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if method != "GET" and not (path == "/graphql" and b"mutation" not in raw):
            self._arrive()
        with self.lock:
            self.seen_headers.append(headers)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:  # GitHub: 400 "Problems parsing JSON"; never something we send
                self.violations.append(f"{method} {path}: the request body is not JSON")
                body = _NOT_JSON
            try:
                if body is _NOT_JSON:
                    status, out, extra, gql = 400, {"message": "Problems parsing JSON"}, {}, None
                else:
                    status, out, extra, gql = self._dispatch(method, path, query, body, headers)
            except Exception:  # the server's own bug: the test must fail, not see a quiet 500
                import traceback

                self.violations.append(f"{method} {path}: contract server crashed:\n"
                                       + traceback.format_exc())
                status, out, extra, gql = 500, {"message": "contract server crashed"}, {}, None
            self.hits.append(Hit(method, path, status, gql))
        data = json.dumps(out).encode() if out is not None else b""
        reason = {200: "OK", 201: "Created", 204: "No Content"}.get(status, "Error")
        start(f"{status} {reason}", [("Content-Type", "application/json; charset=utf-8"),
                                     ("Content-Length", str(len(data))), *extra.items()])
        return [data]

    def hold_writes(self, parties: int = 2, timeout: float = 30.0) -> None:
        """The next `parties` writing requests wait for each other (outside the server's lock):
        runs that each read first all read before any of them writes."""
        self._hold = threading.Barrier(parties, timeout=timeout)

    def _arrive(self) -> None:
        barrier = self._hold
        if barrier is not None:
            barrier.wait()
            self._hold = None

    def _throttled(self, status: int, extra: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """A rate-limit answer as GitHub sends it: 403 or 429 with GitHub's error body."""
        return status, {"message": "You have exceeded a secondary rate limit. Please wait a few "
                                   "minutes before you try again.",
                        "documentation_url": "https://docs.github.com/rest/using-the-rest-api/"
                                             "rate-limits-for-the-rest-api"}, extra

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], body: Any,
                  headers: dict[str, str]) -> tuple[int, Any, dict[str, str], str | None]:
        if headers.get("accept") != "application/vnd.github+json":
            self.violations.append(f"{method} {path}: Accept is {headers.get('accept')!r}")
        if headers.get("x-github-api-version") != "2022-11-28":
            self.violations.append(f"{method} {path}: no X-GitHub-Api-Version header")
        if path == "/graphql" and method == "POST":
            if not self.graphql_enabled:
                return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com"}, {}, None
            status, out, extra = self._graphql(body, headers)
            root = _root_field(body)
            return status, out, extra, root
        op = self.contract.match(method, path)
        if op is None:
            self.violations.append(f"{method} {path}: no such operation in GitHub's REST API")
            return 500, {"message": "contract violation"}, {}, None
        params = {k: v for k, v in (op.regex.match(path) or re.match("", "")).groupdict().items()}  # type: ignore[union-attr]
        problems = self.contract.check_path(op, params) + self.contract.check_request(op, query, body)
        if problems:
            self.violations += [f"{method} {op.template}: {p}" for p in problems]
            return 500, {"message": "contract violation: " + "; ".join(problems)}, {}, None
        extra: dict[str, str] = {}
        fault = self.faults.pop(f"{method} {op.template}", None)
        if self.throttle:
            status, out, extra = self._throttled(*self.throttle.pop(0))
        elif fault is not None:
            status, out = fault, {"message": "Server Error" if fault >= 500 else "Validation Failed",
                                  "documentation_url": "https://docs.github.com/rest"}
        else:
            try:
                status, out = self._rest(op, method, params, query, body, headers)
                extra.update(self.next_headers)
            except _Answer as answer:
                status, out = answer.status, {"message": answer.message,
                                              "documentation_url": "https://docs.github.com/rest"}
        self.next_headers = {}
        problems = self.contract.check_response(op, status, out)
        if problems:
            self.violations += [f"{method} {op.template}: {p}" for p in problems]
            return 500, {"message": "contract violation: " + "; ".join(problems)}, {}, None
        return status, out, extra, None

    # -- auth --------------------------------------------------------------------------------

    def _user(self, headers: dict[str, str], *, write: bool) -> str:
        auth = headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        scope = self.tokens.get(token)
        if scope is None:
            for issued in self.issued:
                if issued["token"] == token and issued["expires"] > time.time():
                    scope = "write"
        if scope is None:
            raise _Answer(401, "Bad credentials")
        if write and scope != "write":
            raise _Answer(403, "Resource not accessible by personal access token")
        return token

    def _app(self, headers: dict[str, str]) -> int:
        import jwt

        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise _Answer(401, "A JSON web token could not be decoded")
        token = auth[7:]
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app_id = int(claims["iss"])
            jwt.decode(token, self.apps[app_id], algorithms=["RS256"])
        except Exception as exc:
            raise _Answer(401, f"A JSON web token could not be decoded ({type(exc).__name__})") from None
        # GitHub's window is absolute, against its own clock: `exp` at most 10 minutes ahead
        # of now and not past, `iat` not in the future (a relative `exp - iat` check would
        # take a token minted by a clock set back or forward)
        now = self.clock()
        if int(claims["exp"]) > now + 600:
            raise _Answer(401, "'Expiration time' claim ('exp') is too far in the future")
        if int(claims["exp"]) <= now:
            raise _Answer(401, "'Expiration time' claim ('exp') must be a numeric value "
                               "representing the future time at which the assertion expires")
        if int(claims["iat"]) > now:
            raise _Answer(401, "'Issued at' claim ('iat') must be an Integer representing the "
                               "time that the assertion was issued")
        return app_id

    # -- REST ---------------------------------------------------------------------------------

    def _repo(self, params: dict[str, str]) -> Repository:
        repo = self.repos.get(f"{params['owner']}/{params['repo']}")
        if repo is None:
            raise _Answer(404, "Not Found")
        return repo

    def _rest(self, op: Operation, method: str, params: dict[str, str], query: dict[str, list[str]],
              body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        t = op.template
        if t == "/app/installations/{installation_id}/access_tokens":
            app_id = self._app(headers)
            inst = self.installations.get(int(params["installation_id"]))
            if inst is None or inst[0] != app_id:
                raise _Answer(404, "Not Found")
            token = f"ghs_{len(self.issued):04d}installationtoken"
            expires = time.time() + 3600
            self.issued.append({"token": token, "expires": expires,
                                "installation": int(params["installation_id"])})
            out = self.contract.instance(self.contract.response_schema(op, 201) or {})
            out.update(token=token, expires_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)))
            return 201, out
        if t == "/repos/{owner}/{repo}/installation":
            self._app(headers)
            full = f"{params['owner']}/{params['repo']}"
            for inst_id, (_, repo_name) in self.installations.items():
                if repo_name == full:
                    out = self.contract.instance(self.contract.response_schema(op, 200) or {})
                    out["id"] = inst_id
                    return 200, out
            raise _Answer(404, "Not Found")

        if t == "/orgs/{org}/repos":
            token = self._user(headers, write=False)
            return self._org_repos(op, params["org"], query, token)
        if t == "/installation/repositories":
            return self._installation_repos(op, self._user(headers, write=False), query)

        write = method != "GET"
        token = self._user(headers, write=write)
        repo = self._repo(params)
        git = repo.git
        if write and self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook(method, t)
        self._reach(token, repo, write=write)  # after the hook: a grant withdrawn just before
        if write and repo.archived:  # as GitHub: an archived repository refuses every write
            raise _Answer(403, "Repository was archived so is read-only.")
        base = f"https://api.github.invalid/repos/{repo.full_name}"
        if (t in ("/repos/{owner}/{repo}/git/ref/{ref}", "/repos/{owner}/{repo}/git/trees/{tree_sha}",
                  "/repos/{owner}/{repo}/git/matching-refs/{ref}")
                and not list(git.refs.allkeys())):
            raise _Answer(409, "Git Repository is empty.")  # documented: a repository just created

        if t == "/repos/{owner}/{repo}/git/ref/{ref}":
            ref = f"refs/{params['ref']}".encode()
            if ref not in git.refs:
                raise _Answer(404, "Not Found")
            return 200, _ref_json(base, ref.decode(), git.refs[ref].decode())
        if t == "/repos/{owner}/{repo}/git/matching-refs/{ref}":
            # every ref that starts with refs/<ref>, as documented (a prefix, not a path segment)
            prefix = f"refs/{params['ref']}".encode()
            return 200, [_ref_json(base, r.decode(), git.refs[r].decode())
                         for r in sorted(git.refs.allkeys()) if r.startswith(prefix)]
        if t == "/repos/{owner}/{repo}/contents/{path}":
            sha = _resolve(git, query.get("ref", ["main"])[0])
            path = params["path"]
            try:
                mode, _ = tree_lookup_path(git.__getitem__, git[sha].tree, path.encode())
                if mode == 0o120000:
                    # documented: a link to a file in the repository answers with that file's
                    # content; any other link, with an object describing the link itself
                    target = _read(git, sha, path).decode()
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                    try:
                        _read(git, sha, resolved)
                    except (KeyError, TypeError):
                        out = self.contract.instance({"$ref": "#/components/schemas/content-symlink"})
                        out.update(type="symlink", target=target, path=path, size=len(target),
                                   name=path.rsplit("/", 1)[-1])
                        return 200, out
                    path = resolved
                data = _read(git, sha, path)
            except KeyError:
                raise _Answer(404, "Not Found") from None
            blob_sha = Blob.from_string(data).id.decode()
            out = self.contract.instance({"$ref": "#/components/schemas/content-file"})
            out.update(type="file", encoding="base64", size=len(data), name=params["path"].rsplit("/", 1)[-1],
                       path=params["path"], sha=blob_sha, content=base64.encodebytes(data).decode(),
                       url=f"{base}/contents/{params['path']}")
            if len(data) > self.contents_limit:  # documented: 1-100 MB come without content
                out.update(content="", encoding="none")
            return 200, out
        if t == "/repos/{owner}/{repo}/git/blobs/{file_sha}":
            blob = git[params["file_sha"].encode()]
            return 200, {"content": base64.b64encode(blob.as_raw_string()).decode(), "encoding": "base64",
                         "url": f"{base}/git/blobs/{blob.id.decode()}", "sha": blob.id.decode(),
                         "size": len(blob.as_raw_string()), "node_id": "B_x"}
        if t == "/repos/{owner}/{repo}/git/commits/{commit_sha}":
            try:
                commit = git[params["commit_sha"].encode()]
            except KeyError:
                raise _Answer(404, "Not Found") from None
            return 200, _commit_json(base, commit)
        if t == "/repos/{owner}/{repo}/git/trees":
            return 201, self._create_tree(git, body, base)
        if t == "/repos/{owner}/{repo}/git/trees/{tree_sha}":
            return 200, self._list_tree(git, params["tree_sha"], query.get("recursive"), base)
        if t == "/repos/{owner}/{repo}/git/commits":
            commit = Commit()
            commit.tree = body["tree"].encode()
            commit.parents = [p.encode() for p in body.get("parents", [])]
            commit.author = commit.committer = b"tagsync-bot <bot@example.invalid>"
            commit.author_time = commit.commit_time = int(time.time())
            commit.author_timezone = commit.commit_timezone = 0
            commit.message = body["message"].encode()
            git.object_store.add_object(commit)
            return 201, _commit_json(base, commit)
        if t == "/repos/{owner}/{repo}/git/refs/{ref}" and method == "PATCH":
            ref = f"refs/{params['ref']}"
            if ref.encode() not in git.refs:
                raise _Answer(422, "Reference does not exist")
            new = body["sha"]
            if ref.removeprefix("refs/heads/") in repo.protected:
                raise _Answer(422, f"Protected branch update failed for {ref}.")
            if not _OID.fullmatch(new) or not isinstance(self._object(repo, new.encode()), Commit):
                raise _Answer(422, "Object does not exist")
            if not body.get("force") and not _is_ancestor(git, git.refs[ref.encode()], new.encode()):
                raise _Answer(422, "Update is not a fast forward")
            if body.get("force"):
                self.forced.append(ref)
            self._set_ref(repo, ref.encode(), new.encode())
            return 200, _ref_json(base, ref, new)
        if t == "/repos/{owner}/{repo}/git/refs/{ref}" and method == "DELETE":
            ref = f"refs/{params['ref']}"
            if ref.encode() not in git.refs:
                raise _Answer(422, "Reference does not exist")
            if ref == "refs/heads/main" or ref.removeprefix("refs/heads/") in repo.protected:
                raise _Answer(422, f"Cannot delete {ref}")
            self._set_ref(repo, ref.encode(), None)
            return 204, None
        if t == "/repos/{owner}/{repo}/git/refs" and method == "POST":
            ref = body["ref"]
            if not re.fullmatch(r"refs/(heads|tags)/.+", ref) or ref.count("/") < 2:
                raise _Answer(422, "Reference name must start with 'refs/' and have at least two slashes.")
            if ref.encode() in git.refs or any(
                    r.startswith(ref.encode() + b"/") or ref.encode().startswith(r + b"/")
                    for r in git.refs.allkeys()):
                raise _Answer(422, "Reference already exists")
            if not _OID.fullmatch(body["sha"]) or self._object(repo, body["sha"].encode()) is None:
                raise _Answer(422, "Object does not exist")
            self._set_ref(repo, ref.encode(), body["sha"].encode())
            return 201, _ref_json(base, ref, body["sha"])
        if t in ("/repos/{owner}/{repo}/issues", "/repos/{owner}/{repo}/issues/{issue_number}"):
            return self._issues(op, method, repo, params, query, body)
        if t == "/repos/{owner}/{repo}/compare/{basehead}":
            return 200, self._compare(op, repo, params["basehead"], base)
        if t == "/repos/{owner}/{repo}/commits" and method == "GET":
            return 200, self._list_commits(repo, query, base)
        if t == "/repos/{owner}/{repo}/activity" and method == "GET":
            return 200, _activity(repo, query)
        if t == "/repos/{owner}/{repo}/issues/{issue_number}/comments" and method == "POST":
            pr = self._pull(repo, params["issue_number"])
            self._check_text(body)
            pr.comments.append(body["body"])
            out = self.contract.instance(self.contract.response_schema(op, 201) or {})
            out.update(body=body["body"], id=len(pr.comments))
            return 201, out
        if t == "/repos/{owner}/{repo}/pulls" and method == "GET":
            # GitHub's order: `sort` created by default, `direction` desc then (newest first)
            state = query.get("state", ["open"])[0]
            head = query.get("head", [None])[0]
            base_ref = query.get("base", [None])[0]
            found = [p for p in repo.pulls if (state == "all" or p.state == state)
                     and (head is None or f"{repo.full_name.split('/')[0]}:{p.head}" == head)
                     and (base_ref is None or p.base == base_ref)]
            if query.get("direction", ["desc"])[0] == "desc":
                found.reverse()
            per_page = int(query.get("per_page", ["30"])[0])
            schema = self.contract.response_schema(op, 200) or {}
            return 200, [self._pr_json(repo, p, schema.get("items", schema)) for p in found[:per_page]]
        if t == "/repos/{owner}/{repo}/pulls/{pull_number}" and method == "GET":
            pr = self._pull(repo, params["pull_number"])
            out = self._pr_json(repo, pr, self.contract.response_schema(op, 200) or {})
            out.update(merged=pr.merged, mergeable=self._mergeable(repo, pr),
                       mergeable_state="dirty" if self._mergeable(repo, pr) is False else "clean")
            return 200, out
        if t == "/repos/{owner}/{repo}/pulls" and method == "POST":
            self._check_text(body)
            head_sha = self.head(repo.full_name, body["head"])
            base_sha = self.head(repo.full_name, body["base"])
            if head_sha is None or base_sha is None:
                raise _Answer(422, "Validation Failed")
            if any(p.head == body["head"] and p.state == "open" for p in repo.pulls):
                raise _Answer(422, f"A pull request already exists for {body['head']}.")
            if _is_ancestor(git, head_sha.encode(), base_sha.encode()):
                raise _Answer(422, f"No commits between {body['base']} and {body['head']}")
            pr = PullRequest(next(self._pr_numbers), body["head"], body["base"], body["title"],
                             body.get("body") or "")
            repo.pulls.append(pr)
            return 201, self._pr_json(repo, pr, self.contract.response_schema(op, 201) or {})
        if t == "/repos/{owner}/{repo}/pulls/{pull_number}" and method == "PATCH":
            pr = self._pull(repo, params["pull_number"])
            self._check_text(body)
            if body.get("state") == "open" and pr.state != "open" and pr.closed_because:
                raise _Answer(422, f"state cannot be changed. The {pr.head} branch has been "
                                   "force-pushed or recreated.")
            pr.title = body.get("title", pr.title)
            pr.body = body.get("body", pr.body)
            if body.get("state"):
                pr.state = body["state"]
            return 200, self._pr_json(repo, pr, self.contract.response_schema(op, 200) or {})
        if t == "/repos/{owner}/{repo}/pulls/{pull_number}/reviews" and method == "GET":
            pr = self._pull(repo, params["pull_number"])
            schema = self.contract.response_schema(op, 200) or {}
            item = schema.get("items", schema)
            out = []
            for n, (login, state) in enumerate(pr.reviews, 1):
                review = self.contract.instance(item)
                review.update(id=n, state=state, user={
                    **self.contract.instance({"$ref": "#/components/schemas/simple-user"}), "login": login})
                out.append(review)
            return 200, out
        if t == "/repos/{owner}/{repo}/issues/{issue_number}/labels" and method == "POST":
            # adds to the set (a pull request is an issue here too)
            issue = next((i for i in repo.issues if str(i.number) == params["issue_number"]), None)
            carrier: Issue | PullRequest = issue or self._pull(repo, params["issue_number"])
            added = _label_names(body["labels"] if isinstance(body, dict) else body)
            carrier.labels += [x for x in added if x not in carrier.labels]
            schema = self.contract.response_schema(op, 200) or {}
            item = schema.get("items", schema)
            out = []
            for name in carrier.labels:
                label = self.contract.instance(item)
                label["name"] = name
                out.append(label)
            return 200, out
        if t == "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers" and method == "POST":
            pr = self._pull(repo, params["pull_number"])
            pr.reviewers += body.get("reviewers", []) + [f"team:{x}" for x in body.get("team_reviewers", [])]
            return 201, self._pr_json(repo, pr, self.contract.response_schema(op, 201) or {})
        self.violations.append(f"{method} {t}: documented, but the contract server does not "
                               "implement it (add it, faithfully)")
        raise _Answer(404, f"contract server does not implement {method} {t}")

    def _issues(self, op: Operation, method: str, repo: Repository, params: dict[str, str],
                query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        """List, open and edit issues. As on GitHub, issues and pull requests share one numbering
        and the issue listing includes pull requests (with a `pull_request` key): a client that
        does not skip them reads a PR as an issue."""
        schema = self.contract.response_schema(op, 201 if method == "POST" else 200) or {}
        item_schema = schema.get("items", schema)

        def issue_json(number: int, title: str, text: str, state: str, pr: bool,
                       labels: list[str]) -> dict[str, Any]:
            out = self.contract.instance(item_schema)
            out.update(number=number, title=title, body=text, state=state,
                       html_url=f"https://github.invalid/{repo.full_name}/issues/{number}")
            # the spec allows a name or an object per label; GitHub answers with objects
            items = (self.contract._deref(item_schema).get("properties", {}).get("labels", {})
                     .get("items", {}))
            shape = next((o for o in items.get("oneOf", [items]) if o.get("type") == "object"),
                         {"type": "object"})
            out["labels"] = [{**self.contract.instance(shape), "name": n} for n in labels]
            if pr:
                shape = self.contract._deref(item_schema).get("properties", {}).get("pull_request", {})
                out["pull_request"] = {**self.contract.instance(shape), "url": (
                    f"https://api.github.invalid/repos/{repo.full_name}/pulls/{number}")}
            return out

        if method == "GET" and "issue_number" not in params:
            # GitHub's documented listing: `state` (open), `labels` (comma-separated, every one
            # carried), `sort` created and `direction` desc by default, `per_page` at most 100,
            # `page`, and a `Link` header (rel="next", rel="last") while more pages follow.
            # Issues and pull requests share one numbering, so a number orders by creation.
            state = query.get("state", ["open"])[0]
            wanted = [x.strip() for x in query.get("labels", [""])[0].split(",") if x.strip()]
            sort = query.get("sort", ["created"])[0]
            if sort != "created":
                self.violations.append(f"GET issues sort={sort}: documented, but the contract "
                                       "server does not model it (add it, faithfully)")
                raise _Answer(404, f"contract server does not model sort={sort}")
            rows = [(i.number, i.title, i.body, i.state, False, i.labels) for i in repo.issues]
            rows += [(p.number, p.title, p.body, "closed" if p.state == "merged" else p.state, True,
                      p.labels) for p in repo.pulls]
            rows = [r for r in rows if (state == "all" or r[3] == state)
                    and all(w in r[5] for w in wanted)]
            rows.sort(reverse=query.get("direction", ["desc"])[0] == "desc")
            per_page = min(int(query.get("per_page", ["30"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            last = max(1, -(-len(rows) // per_page))
            if page < last:
                kept = {k: v[0] for k, v in query.items() if k != "page"}
                link = f"{self.url}/repos/{repo.full_name}/issues?{urlencode(kept)}"
                self.next_headers["Link"] = (f'<{link}&page={page + 1}>; rel="next", '
                                             f'<{link}&page={last}>; rel="last"')
            return 200, [issue_json(*r) for r in rows[(page - 1) * per_page: page * per_page]]
        if method in ("POST", "PATCH"):
            self._check_text(body)
        if method == "POST":
            issue = Issue(next(self._pr_numbers), body["title"], body.get("body") or "",
                          labels=_label_names(body.get("labels")))
            repo.issues.append(issue)
            return 201, issue_json(issue.number, issue.title, issue.body, issue.state, False,
                                   issue.labels)
        found = [i for i in repo.issues if str(i.number) == params.get("issue_number")]
        if not found:
            raise _Answer(404, "Not Found")
        issue = found[0]
        if method == "PATCH":
            issue.title = body.get("title", issue.title)
            issue.body = body.get("body", issue.body)
            issue.state = body.get("state", issue.state)
            if "labels" in body:  # documented: the set is replaced
                issue.labels = _label_names(body["labels"])
        return 200, issue_json(issue.number, issue.title, issue.body, issue.state, False,
                               issue.labels)

    def _check_text(self, body: Any) -> None:
        """GitHub's limits on an issue's or a pull request's body and title, in characters:
        over either, the write is refused whole (422) and nothing changes."""
        if not isinstance(body, dict):
            return
        if len(str(body.get("body") or "")) > self.body_limit:
            raise _Answer(422, f"Validation Failed: body is too long (maximum is "
                               f"{self.body_limit} characters)")
        if len(str(body.get("title") or "")) > self.title_limit:
            raise _Answer(422, f"Validation Failed: title is too long (maximum is "
                               f"{self.title_limit} characters)")

    def open_issue(self, full_name: str, title: str, body: str, *, labels: tuple[str, ...] = (),
                   state: str = "open") -> Issue:
        """An issue a person opened (in the one numbering issues and pull requests share)."""
        issue = Issue(next(self._pr_numbers), title, body, state, list(labels))
        self.repos[full_name].issues.append(issue)
        return issue

    def _org_repos(self, op: Operation, org: str, query: dict[str, list[str]],
                   token: str = "") -> tuple[int, Any]:
        """GET /orgs/{org}/repos: a page (per_page at most 100, GitHub's cap) in name order, with
        the `Link: <…>; rel="next"` header GitHub sends while more pages follow. An installation
        sees the organisation's public repositories, granted or not, and its private ones only
        if granted (the hole `/installation/repositories` closes)."""
        names = sorted(n for n in self.repos if n.split("/")[0].lower() == org.lower())
        if not names:
            raise _Answer(404, "Not Found")
        names = [n for n in names if not self.repos[n].private or self._granted(token, n)]
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        chosen = names[(page - 1) * per_page: page * per_page]
        schema = self.contract.response_schema(op, 200) or {}
        out = []
        for name in chosen:
            out.append(self._repo_item(schema.get("items", schema), name))
        if page * per_page < len(names):
            self.next_headers["Link"] = (f'<{self.url}/orgs/{org}/repos?per_page={per_page}'
                                         f'&page={page + 1}>; rel="next"')
        return 200, out

    def _repo_item(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        """A repository as a listing shows it: the schema's instance, with this one's facts."""
        repo = self.repos[name]
        item: dict[str, Any] = self.contract.instance(schema)
        item.update(name=name.split("/")[1], full_name=name, archived=repo.archived, fork=repo.fork,
                    private=repo.private, default_branch=repo.default_branch)
        if isinstance(item.get("owner"), dict):
            item["owner"]["login"] = name.split("/")[0]
        return item

    def _installation_repos(self, op: Operation, token: str,
                            query: dict[str, list[str]]) -> tuple[int, Any]:
        """GET /installation/repositories: what the installation behind the token was granted
        (every account it can see, in name order), `{total_count, repositories,
        repository_selection}`, paged with `Link` like every list; any other token is refused
        with GitHub's 403."""
        installation = self._installation(token)
        if installation is None:
            raise _Answer(403, "You must authenticate with an installation access token in order "
                               "to list repositories for an installation.")
        names = sorted((n for n in self.repos if self._granted(token, n)), key=str.lower)
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        schema = self.contract.response_schema(op, 200) or {}
        item_schema = schema.get("properties", {}).get("repositories", {}).get("items", {})
        out = []
        for name in names[(page - 1) * per_page: page * per_page]:
            item = self._repo_item(item_schema, name)
            item["visibility"] = "private" if self.repos[name].private else "public"
            out.append(item)
        if page * per_page < len(names):
            self.next_headers["Link"] = (f'<{self.url}/installation/repositories?per_page='
                                         f'{per_page}&page={page + 1}>; rel="next"')
        selection = "selected" if installation in self.selected else "all"
        return 200, {"total_count": len(names), "repositories": out,
                     "repository_selection": selection}

    def _installation(self, token: str) -> int | None:
        """The installation an installation token was issued for; None for any other token."""
        return next((int(i["installation"]) for i in self.issued
                     if i["token"] == token and "installation" in i), None)

    def _granted(self, token: str, full_name: str) -> bool:
        """Whether the token's installation was granted this repository (a token that is not an
        installation's is its owner's: everything)."""
        installation = self._installation(token)
        if installation is None:
            return True
        if installation in self.selected:
            return full_name in self.selected[installation]
        account = self.installations.get(installation, (0, "/"))[1].split("/")[0]
        return full_name.split("/")[0].lower() == account.lower()

    def _reach(self, token: str, repo: Repository, *, write: bool) -> None:
        """GitHub's answer to an installation outside its grant: a private repository does not
        exist for it (404); a public one may be read, never written (403)."""
        if self._granted(token, repo.full_name):
            return
        if repo.private:
            raise _Answer(404, "Not Found")
        if write:
            raise _Answer(403, "Resource not accessible by integration")

    def _mergeable(self, repo: Repository, pr: PullRequest) -> bool | None:
        """GitHub's `mergeable` of an open PR: False when a file both sides changed since their
        merge base ends up different on each (GitHub merges by lines; this server, by whole
        files, says "conflict" in more cases than GitHub, never in fewer); None once closed."""
        if pr.state != "open" or pr.mergeable is not None:
            return pr.mergeable if pr.state == "open" else None
        head, base = self.head(repo.full_name, pr.head), self.head(repo.full_name, pr.base)
        if head is None or base is None:
            return None
        git = repo.git
        behind = _reachable(git, base.encode())
        common = next((c for c in _walk(git, head.encode()) if c.id in behind), None)
        if common is None:
            return False

        def files(sha: bytes) -> dict[bytes, tuple[int, bytes]]:
            commit = git[sha]
            return {e.path: (e.mode, e.sha) for e in git.object_store.iter_tree_contents(commit.tree)}

        at, ours, theirs = files(common.id), files(head.encode()), files(base.encode())
        for path in set(at) | set(ours) | set(theirs):
            was, mine, other = at.get(path), ours.get(path), theirs.get(path)
            if mine != was and other != was and mine != other:
                return False
        return True

    def merge(self, full_name: str, number: int) -> str:
        """A person merges the PR: a merge commit on its base (GitHub then marks it merged)."""
        repo = self.repos[full_name]
        pr = self._pull(repo, str(number))
        base_ref, head = f"refs/heads/{pr.base}".encode(), repo.git.refs[f"refs/heads/{pr.head}".encode()]
        merge = Commit()
        merge.tree = repo.git[head].tree
        merge.parents = [repo.git.refs[base_ref], head]
        merge.author = merge.committer = b"someone <someone@localhost>"
        merge.author_time = merge.commit_time = int(time.time())
        merge.author_timezone = merge.commit_timezone = 0
        merge.message = f"Merge pull request #{number}".encode()
        repo.git.object_store.add_object(merge)
        self._set_ref(repo, base_ref, merge.id)
        return merge.id.decode()

    def _pull(self, repo: Repository, number: str) -> PullRequest:
        for p in repo.pulls:
            if p.number == int(number):
                return p
        raise _Answer(404, "Not Found")

    def _pr_json(self, repo: Repository, pr: PullRequest, schema: dict[str, Any]) -> dict[str, Any]:
        out = self.contract.instance(schema)
        head_sha = self.head(repo.full_name, pr.head) or "0" * 40
        merged_at = "2026-01-01T00:00:00Z" if pr.merged else None
        closed_at = "2026-01-01T00:00:00Z" if pr.state == "closed" else None
        out.update(number=pr.number, title=pr.title, body=pr.body, state=pr.state,
                   merged_at=merged_at, closed_at=closed_at,
                   node_id=f"PR_{pr.number}",
                   html_url=f"https://github.invalid/{repo.full_name}/pull/{pr.number}")
        out["head"] = {**out["head"], "ref": pr.head, "sha": head_sha}
        out["base"] = {**out["base"], "ref": pr.base, "sha": self.head(repo.full_name, pr.base) or "0" * 40}
        props = self.contract._deref(schema).get("properties", {}) if schema else {}
        label_schema = props.get("labels", {}).get("items", {"type": "object"})
        out["labels"] = [{**self.contract.instance(label_schema), "name": n} for n in pr.labels]
        users = [r for r in pr.reviewers if not r.startswith("team:")]
        teams = [r[5:] for r in pr.reviewers if r.startswith("team:")]
        user_schema = {"$ref": "#/components/schemas/simple-user"}
        out["requested_reviewers"] = [{**self.contract.instance(user_schema), "login": u} for u in users]
        team_schema = {"$ref": "#/components/schemas/team"}
        out["requested_teams"] = [{**self.contract.instance(team_schema), "slug": t, "name": t}
                                  for t in teams]
        if pr.auto_merge:
            auto = self.contract.instance({"$ref": "#/components/schemas/auto-merge"})
            auto["merge_method"] = pr.auto_merge.lower()
            out["auto_merge"] = auto
        else:
            out["auto_merge"] = None
        return out

    def _compare(self, op: Operation, repo: Repository, basehead: str, base: str) -> dict[str, Any]:
        """BASE...HEAD: the commits HEAD has that BASE lacks (oldest first), as GitHub counts them."""
        left, _, right = basehead.partition("...")
        try:
            old, new = _resolve(repo.git, left), _resolve(repo.git, right)
        except _Answer:
            raise _Answer(404, "Not Found") from None
        behind = _reachable(repo.git, old)
        ahead_set = _reachable(repo.git, new)
        ahead = [c for c in _walk(repo.git, new) if c.id not in behind]
        ahead.reverse()
        behind_by = len(behind - ahead_set)
        status = ("identical" if old == new else "ahead" if not behind_by else
                  "behind" if not ahead else "diverged")
        common = next((c for c in _walk(repo.git, new) if c.id in behind), None)
        out = self.contract.instance(self.contract.response_schema(op, 200) or {})
        commit_schema = {"$ref": "#/components/schemas/commit"}

        def commit_json(c: Commit) -> dict[str, Any]:
            item = self.contract.instance(commit_schema)
            raw = _commit_json(base, c)
            item.update(sha=c.id.decode(), parents=[{"sha": p.decode(), "url": base} for p in c.parents])
            item["commit"] = {**item["commit"], "message": raw["message"], "author": raw["author"],
                              "committer": raw["committer"]}
            return item

        out.update(status=status, ahead_by=len(ahead), behind_by=behind_by, total_commits=len(ahead),
                   commits=[commit_json(c) for c in ahead[:250]])
        if common is not None:
            out["merge_base_commit"] = commit_json(common)
        return out

    def _create_tree(self, git: MemoryRepo, body: dict[str, Any], base: str) -> dict[str, Any]:
        changes = []
        for entry in body["tree"]:
            if entry.get("content") is not None:
                blob = Blob.from_string(entry["content"].encode())
                git.object_store.add_object(blob)
                sha = blob.id
            else:
                sha = entry["sha"].encode()
            changes.append((entry["path"].encode(), int(entry["mode"], 8), sha))
        base_tree = body.get("base_tree")
        tree_id = commit_tree_changes(git.object_store, base_tree.encode() if base_tree else _empty_tree(git),
                                      changes)
        tree = git[tree_id]
        assert isinstance(tree, Tree)
        return {"sha": tree_id.decode(), "url": f"{base}/git/trees/{tree_id.decode()}", "truncated": False,
                "tree": [{"path": e.path.decode(), "mode": f"{e.mode:06o}",
                          "type": "tree" if e.mode == 0o040000 else "blob", "sha": e.sha.decode(),
                          "url": f"{base}/git/blobs/{e.sha.decode()}"} for e in tree.iteritems()]}

    def _list_commits(self, repo: Repository, query: dict[str, list[str]], base: str
                      ) -> list[dict[str, Any]]:
        """GET /commits as documented: newest first from `sha` (a branch or commit, default the
        default branch), only commits that changed `path` when given, `per_page` up to 100."""
        git = repo.git
        start = _resolve(git, query.get("sha", ["main"])[0])
        per_page = int(query.get("per_page", ["30"])[0])
        if not 1 <= per_page <= 100:
            raise _Answer(422, "per_page must be between 1 and 100")
        path = query.get("path", [None])[0]
        walker = git.get_walker(include=[start], paths=[path.encode()] if path else None,
                                max_entries=per_page)
        out = []
        for entry in walker:
            c = entry.commit
            item = self.contract.instance({"$ref": "#/components/schemas/commit"})
            raw = _commit_json(base, c)
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.commit_time))
            item.update(sha=c.id.decode(), parents=[{"sha": p.decode(), "url": base} for p in c.parents])
            item["commit"] = {**item["commit"], "message": raw["message"],
                              "author": {**raw["author"], "date": when},
                              "committer": {**raw["committer"], "date": when}}
            out.append(item)
        return out

    def _list_tree(self, git: MemoryRepo, ref: str, recursive: list[str] | None, base: str
                   ) -> dict[str, Any]:
        """GET a tree by tree sha, commit sha or branch name, as GitHub documents it: any
        `recursive` value lists every entry below it ("0" and "false" included)."""
        try:
            obj = git[_resolve(git, ref)]
        except (KeyError, ValueError):
            raise _Answer(404, "Not Found") from None
        if isinstance(obj, Commit):
            obj = git[obj.tree]
        if not isinstance(obj, Tree):
            raise _Answer(422, "Invalid tree")
        entries = []

        def walk(tree: Tree, prefix: str) -> None:
            for e in tree.iteritems():
                path = prefix + e.path.decode()
                is_tree = e.mode == 0o040000
                entry: dict[str, Any] = {"path": path, "mode": f"{e.mode:06o}",
                                         "type": "tree" if is_tree else "blob", "sha": e.sha.decode(),
                                         "url": f"{base}/git/{'trees' if is_tree else 'blobs'}/"
                                                f"{e.sha.decode()}"}
                if not is_tree:
                    entry["size"] = len(git[e.sha].as_raw_string())
                entries.append(entry)
                if is_tree and recursive is not None:
                    sub = git[e.sha]
                    assert isinstance(sub, Tree)
                    walk(sub, path + "/")

        walk(obj, "")
        truncated = len(entries) > self.tree_limit  # GitHub's limit for one listing
        return {"sha": obj.id.decode(), "url": f"{base}/git/trees/{obj.id.decode()}",
                "truncated": truncated, "tree": entries[:self.tree_limit]}

    # -- GraphQL --------------------------------------------------------------------------------

    def _graphql(self, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        from graphql import default_field_resolver, graphql_sync, parse, validate
        from graphql.execution.values import get_argument_values, get_variable_values
        from graphql.language import OperationDefinitionNode

        doc_url = {"documentation_url": "https://docs.github.com/graphql"}
        try:
            reader = self._user(headers, write=False)
        except _Answer as answer:
            return answer.status, {"message": answer.message, **doc_url}, {}
        schema = graphql_schema()
        try:
            doc = parse(body["query"])
        except Exception as exc:
            self.violations.append(f"GraphQL does not parse: {exc}")
            return 500, {"message": "contract violation"}, {}
        errors = validate(schema, doc)
        if errors:
            self.violations += [f"GraphQL: {e.message}" for e in errors]
            return 500, {"message": "contract violation"}, {}
        op = next(d for d in doc.definitions if isinstance(d, OperationDefinitionNode))
        coerced = get_variable_values(schema, op.variable_definitions or (), body.get("variables") or {})
        if isinstance(coerced, list):
            self.violations += [f"GraphQL variables: {e.message}" for e in coerced]
            return 500, {"message": "contract violation"}, {}
        if self.throttle:
            status, out, extra = self._throttled(*self.throttle.pop(0))
            return status, out, extra
        if self.graphql_rate_limited:
            # Primary GraphQL limit: HTTP 200, data null, an error of type RATE_LIMITED.
            self.graphql_rate_limited -= 1
            return 200, {"data": None, "errors": [
                {"type": "RATE_LIMITED", "code": "graphql_rate_limit",
                 "message": "API rate limit already exceeded for user ID 1."}]}, {
                "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000", "x-ratelimit-resource": "graphql",
                "x-ratelimit-reset": str(int(time.time()) + 1)}
        mutation = op.operation.value == "mutation"
        parent = schema.mutation_type if mutation else schema.query_type
        root: dict[str, Any] = {}
        errs: list[dict[str, Any]] = []
        for sel in op.selection_set.selections:
            name = sel.name.value  # type: ignore[attr-defined]
            key = sel.alias.value if getattr(sel, "alias", None) else name  # type: ignore[attr-defined]
            args = get_argument_values(parent.fields[name], sel, coerced)  # type: ignore[arg-type]
            if name in self.faults:
                status = self.faults.pop(name)
                return status, {"message": "Server Error"}, {}
            try:
                if not mutation:
                    root[key] = self._query(name, args, sel, coerced, reader)
                    continue
                token = self._user(headers, write=True)
                if self.before_write is not None:
                    hook, self.before_write = self.before_write, None
                    hook("POST", f"graphql:{name}")
                root[name] = self._mutation(name, (body.get("variables") or {})[_input_var(sel)],
                                            token)
            except _Answer as answer:
                root[key] = None
                errs.append({"type": answer.kind, "message": answer.message, "path": [key]})

        def by_alias(source: Any, info: Any, **args: Any) -> Any:
            """Values are kept under the name the query gave them (an alias, else the field)."""
            if isinstance(source, dict) and info.path.key in source:
                return source[info.path.key]
            return default_field_resolver(source, info, **args)

        result = graphql_sync(schema, body["query"], root_value=root, variable_values=body.get("variables"),
                              field_resolver=by_alias)
        if result.errors:
            self.violations += [f"GraphQL answer does not fit the schema: {e.message}" for e in result.errors
                                if root.get(e.path[0] if e.path else "") is not None]
        out: dict[str, Any] = {"data": result.data}
        if errs:
            out["errors"] = errs
        return 200, out, {}

    def _query(self, name: str, args: dict[str, Any], sel: Any = None,
               variables: Any = None, token: str = "") -> dict[str, Any] | None:
        if name == "repository":
            full = f"{args['owner']}/{args['name']}"
            if full not in self.repos or (self.repos[full].private
                                          and not self._granted(token, full)):
                raise _Answer(404, f"Could not resolve to a Repository with the name '{full}'.",
                              "NOT_FOUND")
            self.graphql_reads.append(full)
            out: dict[str, Any] = {"id": _repo_id(full), "nameWithOwner": full}
            for field_node in (sel.selection_set.selections if sel is not None else ()):
                if getattr(field_node, "name", None) is not None and field_node.name.value == "object":
                    from graphql.execution.values import get_argument_values

                    schema = graphql_schema()
                    obj_args = get_argument_values(schema.get_type("Repository").fields["object"],
                                                   field_node, variables)
                    key = field_node.alias.value if field_node.alias else "object"
                    out[key] = self._git_object(self.repos[full], obj_args.get("expression"))
            return out
        self.violations.append(f"GraphQL query field {name}: the contract server does not implement it")
        raise _Answer(400, f"contract server does not implement {name}", "INTERNAL")

    # GitHub truncates Blob.text past some size (isTruncated); modelled at 512 KiB here, so a
    # client must read such a file another way.
    BLOB_TEXT_LIMIT = 512 * 1024

    def _git_object(self, repo: Repository, expression: str | None) -> dict[str, Any] | None:
        """`object(expression: "<rev>:<path>")`: the blob at that path, or null when absent."""
        if not expression or ":" not in expression:
            return None
        rev, path = expression.split(":", 1)
        try:
            data = _read(repo.git, _resolve(repo.git, rev), path)
        except Exception:  # no such revision or path: GitHub answers null, not an error
            return None
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        truncated = len(data) > self.BLOB_TEXT_LIMIT
        return {"__typename": "Blob", "byteSize": len(data), "isBinary": text is None,
                "isTruncated": truncated,
                "text": None if text is None else (text[: self.BLOB_TEXT_LIMIT] if truncated else text)}

    def _mutation(self, name: str, inp: dict[str, Any], token: str = "") -> dict[str, Any]:
        if name == "createCommitOnBranch":
            self._check_workflows(inp, token)
            return self._create_commit_on_branch(inp, token)
        if name == "updateRefs":
            target = self._repo_by_id(inp.get("repositoryId"))
            if target is not None and not self._granted(token, target.full_name):
                raise _Answer(403, "Resource not accessible by integration", "FORBIDDEN")
            return self._update_refs(inp)
        if name == "enablePullRequestAutoMerge":
            number = int(str(inp["pullRequestId"]).removeprefix("PR_"))
            for repo in self.repos.values():
                for pr in repo.pulls:
                    if pr.number == number:
                        if pr.state != "open":
                            raise _Answer(422, "Pull request is not open", "UNPROCESSABLE")
                        pr.auto_merge = inp.get("mergeMethod") or "MERGE"
                        return {"pullRequest": {"number": number}}
            raise _Answer(404, "Could not resolve to a node", "NOT_FOUND")
        self.violations.append(f"GraphQL mutation {name}: the contract server does not implement it")
        raise _Answer(400, f"contract server does not implement {name}", "INTERNAL")

    def _check_workflows(self, inp: dict[str, Any], token: str) -> None:
        """GitHub refuses a commit that touches `.github/workflows/` from a token without the
        `workflow` scope (an App without the `workflows` permission), whole."""
        if token not in self.without_workflows:
            return
        changes = inp.get("fileChanges") or {}
        for change in [*(changes.get("additions") or []), *(changes.get("deletions") or [])]:
            if str(change.get("path", "")).startswith(".github/workflows/"):
                raise _Answer(403, f"refusing to allow a GitHub App to create or update workflow "
                                   f"`{change['path']}` without `workflows` permission",
                              "FORBIDDEN")

    def _invalid(self, message: str) -> _Answer:
        """Input GitHub rejects as malformed: a bug in the client, so also a violation."""
        self.violations.append(f"GraphQL input: {message}")
        return _Answer(422, message, "INVALID")

    def _create_commit_on_branch(self, inp: dict[str, Any], token: str = "") -> dict[str, Any]:
        full = inp["branch"].get("repositoryNameWithOwner")
        repo = self.repos.get(full) if full else self._repo_by_id(inp["branch"].get("repositoryId"))
        if repo is None or (repo.private and not self._granted(token, repo.full_name)):
            raise _Answer(404, f"Could not resolve to a Repository with the name '{full}'.", "NOT_FOUND")
        if not self._granted(token, repo.full_name):
            raise _Answer(403, "Resource not accessible by integration", "FORBIDDEN")
        if repo.archived:
            raise _Answer(403, "Repository was archived so is read-only.", "FORBIDDEN")
        expected = inp["expectedHeadOid"]
        if not _OID.fullmatch(str(expected)):
            raise self._invalid(f"expectedHeadOid {expected!r} is not a valid GitObjectID")
        changes = inp.get("fileChanges") or {}
        additions: list[tuple[bytes, int | None, bytes | None]] = []
        for add in changes.get("additions") or []:
            try:
                data = base64.b64decode(add["contents"], validate=True)
            except (ValueError, TypeError):
                raise self._invalid(f"contents of {add['path']!r} is not valid Base64") from None
            blob = Blob.from_string(data)
            repo.git.object_store.add_object(blob)
            additions.append((add["path"].encode(), 0o100644, blob.id))
        branch = inp["branch"]["branchName"]
        ref = f"refs/heads/{branch}".encode()
        if ref not in repo.git.refs:
            raise _Answer(404, f"A ref named \"{branch}\" does not exist.", "NOT_FOUND")
        head = repo.git.refs[ref]
        if head.decode() != expected:
            raise _Answer(422, f"Expected branch to point to \"{expected}\" but it did not. Pull and "
                               "try again.", "STALE_DATA")
        if branch in repo.protected:
            raise _Answer(422, "Repository rule violations found\n\nChanges must be made through a "
                               "pull request.", "UNPROCESSABLE")
        parent = repo.git[head]
        assert isinstance(parent, Commit)
        deletions: list[tuple[bytes, int | None, bytes | None]] = []
        for gone in changes.get("deletions") or []:
            try:
                _read(repo.git, head, gone["path"])
            except KeyError:
                raise _Answer(422, f"A path was requested for deletion which does not exist as of "
                                   f"commit oid `{expected}`", "UNPROCESSABLE") from None
            deletions.append((gone["path"].encode(), None, None))
        commit = Commit()
        commit.tree = commit_tree_changes(repo.git.object_store, parent.tree, deletions + additions)
        commit.parents = [head]
        commit.author = b"tagsync-bot <bot@example.invalid>"
        commit.committer = b"GitHub <noreply@github.com>"
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        message = inp["message"]
        commit.message = (message["headline"] + ("\n\n" + message["body"] if message.get("body")
                                                 else "")).encode()
        repo.git.object_store.add_object(commit)
        self._set_ref(repo, ref, commit.id)
        sha = commit.id.decode()
        return {"commit": {"oid": sha, "url": f"https://github.invalid/{repo.full_name}/commit/{sha}"}}

    def _update_refs(self, inp: dict[str, Any]) -> dict[str, Any]:
        """All updates or none; `beforeOid` is a compare-and-swap (zeros: must not exist)."""
        repo = self._repo_by_id(inp["repositoryId"])
        if repo is None:
            raise _Answer(404, f"Could not resolve to a node with the global id of "
                               f"'{inp['repositoryId']}'", "NOT_FOUND")
        if repo.archived:
            raise _Answer(403, "Repository was archived so is read-only.", "FORBIDDEN")
        planned: list[tuple[bytes, bytes | None]] = []
        for update in inp["refUpdates"]:
            name, after = update["name"], update["afterOid"]
            if not name.startswith("refs/"):
                raise self._invalid(f"{name!r} is not a fully qualified ref name (refs/heads/…)")
            for oid in (after, update.get("beforeOid")):
                if oid is not None and not _OID.fullmatch(str(oid)):
                    raise self._invalid(f"{oid!r} is not a valid GitObjectID")
            ref = name.encode()
            current = repo.git.refs[ref] if ref in repo.git.refs else None  # noqa: SIM401
            before = update.get("beforeOid")
            if before is not None and (current or b"0" * 40).decode() != before:
                raise _Answer(422, f"{name} is at {(current or b'0' * 40).decode()} but expected "
                                   f"{before}", "STALE_DATA")
            if name.removeprefix("refs/heads/") in repo.protected:
                raise _Answer(422, "Repository rule violations found\n\nCannot update this "
                                   "protected ref.", "UNPROCESSABLE")
            if after == "0" * 40:
                planned.append((ref, None))
                continue
            if not isinstance(self._object(repo, after.encode()), Commit):
                raise _Answer(422, f"Object {after} does not exist", "UNPROCESSABLE")
            if current is not None and not update.get("force") and not _is_ancestor(
                    repo.git, current, after.encode()):
                raise _Answer(422, f"Cannot update {name}: not a fast forward", "UNPROCESSABLE")
            planned.append((ref, after.encode()))
        for ref, sha in planned:
            self._set_ref(repo, ref, sha)
        return {"clientMutationId": inp.get("clientMutationId")}

    # -- what GitHub does when refs move ---------------------------------------------------------

    def _object(self, repo: Repository, sha: bytes) -> Any:
        try:
            return repo.git[sha]
        except KeyError:
            return None

    def _repo_by_id(self, node_id: Any) -> Repository | None:
        return next((r for n, r in self.repos.items() if _repo_id(n) == node_id), None)

    def _set_ref(self, repo: Repository, ref: bytes, sha: bytes | None, *,
                 pushed: int | None = None, before: bytes | None = None) -> None:
        """Move, create or delete (None) a ref, logged in the activity log at `pushed` (now by
        default); then GitHub's reaction on pull requests: a PR whose head branch is gone or
        has no commit ahead of its base is closed, and one closed because its head was reset
        cannot be reopened."""
        if before is None:  # the ref as it is now (b"": none)
            before = repo.git.refs[ref] if ref in repo.git.refs else b""  # noqa: SIM401
        previous = before or None
        if sha is None:
            del repo.git.refs[ref]
        else:
            repo.git.refs[ref] = sha
        self.ref_log.append((repo.full_name, ref.decode(), sha.decode() if sha else None))
        kind = ("branch_creation" if previous is None else "branch_deletion" if sha is None
                else "push" if _is_ancestor(repo.git, previous, sha) else "force_push")
        repo.activity.append({
            "id": len(repo.activity) + 1, "node_id": f"A_{len(repo.activity) + 1}",
            "before": (previous or b"0" * 40).decode(), "after": (sha or b"0" * 40).decode(),
            "ref": ref.decode(), "activity_type": kind, "actor": None,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                       time.gmtime(time.time() if pushed is None else pushed))})
        for pr in repo.pulls:
            if pr.state != "open":
                continue
            head = self.head(repo.full_name, pr.head)
            base = self.head(repo.full_name, pr.base)
            if head is None:
                pr.state, pr.closed_because = "closed", "head branch deleted"
            elif base is not None and _is_ancestor(repo.git, head.encode(), base.encode()):
                pr.state = "closed"
                pr.closed_because = ("merged" if ref == f"refs/heads/{pr.base}".encode()
                                     else "head reset to the base")

class _Answer(Exception):
    def __init__(self, status: int, message: str, kind: str = "UNPROCESSABLE") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _repo_id(full_name: str) -> str:
    return "R_" + base64.b64encode(full_name.encode()).decode().rstrip("=")


def _root_field(body: Any) -> str | None:
    """A mutation's root field (`createCommitOnBranch`); a query's as `query:<field>`, which
    `Hit.writes` tells apart from writes."""
    text = (body or {}).get("query", "")
    m = re.search(r"\{\s*(?:\w+\s*:\s*)?(\w+)", text)
    if m is None:
        return None
    return m.group(1) if text.lstrip().startswith("mutation") else f"query:{m.group(1)}"


def _input_var(sel: Any) -> str:
    for arg in sel.arguments:
        if arg.name.value == "input":
            return str(arg.value.name.value)
    raise _Answer(400, "mutation without $input", "INTERNAL")


_NOT_JSON = object()


def _resolve(git: MemoryRepo, ref: str) -> bytes:
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref.encode()
    for candidate in (ref, f"refs/heads/{ref}"):
        if candidate.encode() in git.refs:
            return git.refs[candidate.encode()]
    raise _Answer(404, "No commit found for the ref")


def _read(git: MemoryRepo, commit_sha: bytes, path: str) -> bytes:
    commit = git[commit_sha]
    _, sha = tree_lookup_path(git.__getitem__, commit.tree, path.encode())
    blob = git[sha]
    if not isinstance(blob, Blob):
        raise KeyError(path)
    return bytes(blob.data)


def _empty_tree(git: MemoryRepo) -> bytes:
    tree = Tree()
    git.object_store.add_object(tree)
    return bytes(tree.id)


def _walk(git: MemoryRepo, head: bytes) -> list[Commit]:
    """Every commit reachable from head, newest first (parents after children)."""
    out, todo, seen = [], [head], set()
    while todo:
        sha = todo.pop(0)
        if sha in seen:
            continue
        seen.add(sha)
        commit = git[sha]
        assert isinstance(commit, Commit)
        out.append(commit)
        todo.extend(commit.parents)
    return out


def _reachable(git: MemoryRepo, head: bytes) -> set[bytes]:
    return {c.id for c in _walk(git, head)}


def _is_ancestor(git: MemoryRepo, old: bytes, new: bytes) -> bool:
    todo, seen = [new], set()
    while todo:
        sha = todo.pop()
        if sha == old:
            return True
        if sha in seen:
            continue
        seen.add(sha)
        try:
            commit = git[sha]
        except KeyError:
            continue
        todo.extend(commit.parents)
    return False


def _ref_json(base: str, ref: str, sha: str) -> dict[str, Any]:
    return {"ref": ref, "node_id": "REF_x", "url": f"{base}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{base}/git/commits/{sha}"}}


def _activity(repo: Repository, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The activity log as documented: newest first (`direction=asc` reverses it), filtered by
    `ref` (`refs/heads/x` or `x`) and `activity_type`, `per_page` up to 100 (the first page;
    the tests here never need a second)."""
    per_page = int(query.get("per_page", ["30"])[0])
    if not 1 <= per_page <= 100:
        raise _Answer(422, "per_page must be between 1 and 100")
    items = sorted(repo.activity, key=lambda a: (a["timestamp"], a["id"]),
                   reverse=query.get("direction", ["desc"])[0] != "asc")
    ref = query.get("ref", [None])[0]
    if ref is not None:
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        items = [a for a in items if a["ref"] == full]
    kind = query.get("activity_type", [None])[0]
    if kind is not None:
        items = [a for a in items if a["activity_type"] == kind]
    return items[:per_page]


def _commit_json(base: str, commit: Commit) -> dict[str, Any]:
    sha = commit.id.decode()

    def person(raw: bytes) -> dict[str, str]:
        name, _, email = raw.decode().partition(" <")
        return {"name": name, "email": email.rstrip(">"), "date": "2026-01-01T00:00:00Z"}

    return {
        "sha": sha, "node_id": "C_x", "url": f"{base}/git/commits/{sha}",
        "html_url": f"https://github.invalid/commit/{sha}",
        "author": person(commit.author), "committer": person(commit.committer),
        "message": commit.message.decode(),
        "tree": {"sha": commit.tree.decode(), "url": f"{base}/git/trees/{commit.tree.decode()}"},
        "parents": [{"sha": p.decode(), "url": f"{base}/git/commits/{p.decode()}",
                     "html_url": f"https://github.invalid/commit/{p.decode()}"} for p in commit.parents],
        "verification": {"verified": True, "reason": "valid", "signature": None, "payload": None,
                         "verified_at": None},
    }


def contract_files_present() -> bool:
    return OPENAPI.exists() and GRAPHQL_SCHEMA.exists()


def serve(start: Callable[[Any], Any]) -> Iterator[GitHubServer]:
    server = GitHubServer()
    thread = start(server)
    server.url = thread.url
    yield server
    thread.stop()


def _label_names(value: Any) -> list[str]:
    """Label names as a request gives them: names, or objects with a `name` (both documented)."""
    items = value if isinstance(value, list) else []
    names = [x if isinstance(x, str) else x.get("name") for x in items if isinstance(x, str | dict)]
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))
