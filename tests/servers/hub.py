"""Docker Hub's repository listing API, as documented, for tests (no real Hub on loopback).

Facts from Docker's published description of the Hub API (docs.docker.com/reference/api/hub,
`listNamespaceRepositories` and `AuthCreateAccessToken`): query parameters `page` (>= 1),
`page_size` (1..1000), `name`, `ordering` (name, last_updated, pull_count, each optionally
descending with `-`); a page is `{count, next, previous, results}`; anonymous callers see public
repositories, Bearer tokens from `POST /v2/auth/token {identifier, secret}` see private ones;
429 carries `X-Retry-After` as a Unix time. Every request we receive and every answer we send
is checked against these schemas; a mismatch is recorded as a violation and fails the test.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jsonschema

ORDERINGS = ["name", "-name", "last_updated", "-last_updated", "pull_count", "-pull_count"]

LIST_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "page": {"type": "integer", "minimum": 1},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
        "name": {"type": "string"},
        "ordering": {"enum": ORDERINGS},
    },
}

REPOSITORY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "repository_type": {"enum": ["image", "plugin", None]},
        "status": {"type": "integer"},
        "status_description": {"type": "string"},
        "description": {"type": "string"},
        "is_private": {"type": "boolean"},
        "star_count": {"type": "integer"},
        "pull_count": {"type": "integer"},
        "last_updated": {"type": "string"},
        "last_modified": {"type": "string"},
        "date_registered": {"type": "string"},
        "affiliation": {"type": "string"},
        "media_types": {"type": "array", "items": {"type": "string"}},
        "content_types": {"type": "array", "items": {"type": "string"}},
        "categories": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "slug": {"type": "string"}}}},
        "storage_size": {"type": "integer"},
    },
}

PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["count", "next", "previous", "results"],
    "properties": {
        "count": {"type": "integer"},
        "next": {"type": ["string", "null"]},
        "previous": {"type": ["string", "null"]},
        "results": {"type": "array", "items": REPOSITORY},
    },
}

# listRepositoryTags: GET /v2/namespaces/{namespace}/repositories/{repository}/tags, `page`,
# `page_size` (max 100); a page of `paginated_tags` whose tags carry `tag_last_pushed`.
TAGS_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"page": {"type": "integer", "minimum": 1},
                   "page_size": {"type": "integer", "minimum": 1, "maximum": 100}},
}
TAG: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "id": {"type": "integer"}, "creator": {"type": "integer"}, "name": {"type": "string"},
        "full_size": {"type": "integer"}, "last_updated": {"type": "string"},
        "last_updater": {"type": "integer"}, "last_updater_username": {"type": "string"},
        "repository": {"type": "integer"}, "v2": {"type": "boolean"},
        "status": {"enum": ["active", "inactive"]}, "tag_last_pulled": {"type": ["string", "null"]},
        "tag_last_pushed": {"type": "string"}, "media_type": {"type": "string"},
        "content_type": {"type": "string"}, "digest": {"type": "string"},
        "images": {"type": "array"},
    },
}
TAGS_PAGE: dict[str, Any] = {**PAGE, "properties": {**PAGE["properties"],
                                                     "results": {"type": "array", "items": TAG}}}

TOKEN_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["identifier", "secret"],
    "properties": {"identifier": {"type": "string"}, "secret": {"type": "string"}},
}
TOKEN_RESPONSE: dict[str, Any] = {
    "type": "object", "required": ["access_token"],
    "properties": {"access_token": {"type": "string"}},
}
ERROR: dict[str, Any] = {"type": "object", "properties": {"message": {"type": "string"},
                                                          "errinfo": {}}}


@dataclass
class HubServer:
    url: str = ""
    repositories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # identifier -> secret
    violations: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    throttle: int = 0  # answer this many next requests with 429
    throttle_until: int | str | None = None  # X-Retry-After of those 429s (default: in 1 s)
    unavailable: int = 0  # answer this many next requests with 503 (the gateway lost the backend)
    tags: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "ns/name" -> tags
    _tokens: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, namespace: str, name: str, private: bool = False, kind: str | None = "image") -> None:
        self.repositories.setdefault(namespace, []).append({
            "name": name, "namespace": namespace, "repository_type": kind, "status": 1,
            "status_description": "active", "description": "", "is_private": private,
            "star_count": 0, "pull_count": 7, "last_updated": "2026-11-01T10:00:00.000000Z",
            "date_registered": "2020-01-01T00:00:00Z", "affiliation": "",
            "media_types": ["application/vnd.oci.image.index.v1+json"], "content_types": ["image"],
            "categories": [], "storage_size": 1000,
        })

    def add_tag(self, repository: str, name: str, pushed: str, digest: str = "") -> None:
        """A tag Docker Hub lists for `namespace/name`, last pushed at `pushed` (RFC 3339)."""
        self.tags.setdefault(repository, []).append({
            "id": len(self.tags.get(repository, [])) + 1, "creator": 1, "name": name,
            "full_size": 1000, "last_updated": pushed, "last_updater": 1,
            "last_updater_username": "bot", "repository": 1, "v2": True, "status": "active",
            "tag_last_pulled": None, "tag_last_pushed": pushed, "media_type":
            "application/vnd.oci.image.index.v1+json", "content_type": "image",
            "digest": digest or "sha256:" + "0" * 64, "images": []})

    def _check(self, schema: dict[str, Any], instance: Any, what: str) -> None:
        for error in jsonschema.Draft202012Validator(schema).iter_errors(instance):
            self.violations.append(f"{what}: {error.message}")

    def _answer(self, start: Callable[..., Any], status: int, body: Any, schema: dict[str, Any],
                headers: dict[str, str] | None = None) -> list[bytes]:
        self._check(schema, body, f"response {status}")
        start(f"{status} X", [("Content-Type", "application/json"),
                              ("X-RateLimit-Limit", "180"), ("X-RateLimit-Remaining", "179"),
                              *(headers or {}).items()])
        return [json.dumps(body).encode()]

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        with self._lock:
            self.hits.append(f"{method} {path}?{environ.get('QUERY_STRING', '')}")
            if self.throttle > 0:
                self.throttle -= 1
                start("429 Too Many Requests", [("Content-Type", "application/json"),
                                                ("X-Retry-After", str(
                                                    int(time.time()) + 1 if self.throttle_until is None
                                                    else self.throttle_until))])
                return [b'{"message": "too many requests"}']
            if self.unavailable > 0:
                self.unavailable -= 1
                start("503 Service Unavailable", [("Content-Type", "text/html")])
                return [b"<html><body>503 Service Temporarily Unavailable</body></html>"]
        if method == "POST" and path == "/v2/auth/token":
            return self._token(environ, start)
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 4 and parts[:2] == ["v2", "namespaces"] \
                and parts[3] == "repositories":
            return self._list(environ, start, parts[2])
        if method == "GET" and len(parts) == 6 and parts[:2] == ["v2", "namespaces"] \
                and parts[3] == "repositories" and parts[5] == "tags":
            return self._tags(environ, start, f"{parts[2]}/{parts[4]}")
        self.violations.append(f"{method} {path} is not an operation tagsync should call")
        return self._answer(start, 404, {"message": "not found"}, ERROR)

    def _token(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = json.loads(environ["wsgi.input"].read(length) or b"null")
        except ValueError:
            body = None
        self._check(TOKEN_REQUEST, body, "POST /v2/auth/token body")
        if not isinstance(body, dict) or self.accounts.get(body.get("identifier", "")) != body.get("secret"):
            return self._answer(start, 401, {"message": "unauthorized", "errinfo": None}, ERROR)
        token = secrets.token_hex(16)
        self._tokens.add(token)
        return self._answer(start, 200, {"access_token": token}, TOKEN_RESPONSE)

    def _tags(self, environ: dict[str, Any], start: Callable[..., Any], repository: str) -> list[bytes]:
        query: dict[str, Any] = {}
        for key, values in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items():
            value: Any = values[-1]
            query[key] = int(value) if value.lstrip("-").isdigit() else value
        self._check(TAGS_QUERY, query, "GET tags query")
        if repository not in self.tags:
            return self._answer(start, 404, {"message": "not found", "errinfo": None}, ERROR)
        listed = self.tags[repository]
        page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
        base = f"{self.url}/v2/namespaces/{repository.replace('/', '/repositories/', 1)}/tags"

        def link(p: int) -> str:
            return base + "?" + urlencode({"page_size": size, "page": p})

        body = {"count": len(listed), "results": listed[(page - 1) * size: page * size],
                "next": link(page + 1) if page * size < len(listed) else None,
                "previous": link(page - 1) if page > 1 else None}
        return self._answer(start, 200, body, TAGS_PAGE)

    def _list(self, environ: dict[str, Any], start: Callable[..., Any], namespace: str) -> list[bytes]:
        raw = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        query: dict[str, Any] = {}
        for key, values in raw.items():
            value: Any = values[-1]
            if key in ("page", "page_size") and value.lstrip("-").isdigit():
                value = int(value)  # a non-number stays a string and fails the schema
            query[key] = value
        self._check(LIST_QUERY, query, "GET repositories query")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth and auth.removeprefix("Bearer ") not in self._tokens:
            return self._answer(start, 401, {"message": "unauthorized", "errinfo": None}, ERROR)
        if namespace not in self.repositories:
            return self._answer(start, 404, {"message": "not found", "errinfo": None}, ERROR)
        visible = [r for r in self.repositories[namespace] if bool(auth) or not r["is_private"]]
        ordering = str(query.get("ordering", "name"))
        visible.sort(key=lambda r: r[ordering.lstrip("-")], reverse=ordering.startswith("-"))
        page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
        chunk = visible[(page - 1) * size: page * size]
        base = f"{self.url}/v2/namespaces/{namespace}/repositories"

        def link(p: int) -> str:
            return base + "?" + urlencode({**{k: v for k, v in query.items() if k != "page"},
                                           "page": p})

        body = {"count": len(visible), "results": chunk,
                "next": link(page + 1) if page * size < len(visible) else None,
                "previous": link(page - 1) if page > 1 else None}
        return self._answer(start, 200, body, PAGE)
