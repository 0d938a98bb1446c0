"""A hostile OCI registry on 127.0.0.1: well-behaved for ordinary repositories, an attacker for
the repositories named after a case (`h/<case>`).

It speaks HTTP/1.1 by hand on asyncio streams, because several cases are answers no HTTP server
library will send (a duplicate Content-Length, a body that trickles). For ordinary repositories it
is as strict as the CNCF registry: Basic credentials when configured (401 with a challenge
otherwise), manifests only for an `Accept` naming their media type (404 MANIFEST_UNKNOWN
otherwise), `Docker-Content-Digest` on manifest answers, the spec's JSON error bodies.

A second listener (`other`) plays "another host": every request it sees is recorded with its
Authorization header, so a test can tell whether credentials or requests leaked there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# Every case this server can play, with what tagsync must say about the image. `retry-after`
# defers the whole registry (every image on it), the others fail only their own image.
CASES: dict[str, str] = {
    "link-foreign": "a tags page links to another origin",
    "link-self": "the tags pages loop back to",
    "link-endless": "more than 200 pages of tags",
    "html-tags": "the tag list answer is not JSON",
    "array-tags": "the tag list answer is not a JSON object",
    "nonstring-tags": "the tag list's `tags` is not a list of strings",
    "redirect-loop-tags": "GET tags: more than 5 redirects",
    "redirect-loop-head": "HEAD manifest: more than 5 redirects",
    "dup-content-length": "unreadable answer to GET tags: Duplicate Content-Length",
    "trickle": "the tags answer did not arrive within",
    "huge-declared": "the tags answer is 314572800 bytes, over the",
    "huge-chunked": "the tags answer is over the",
    "digest-mismatch": "the manifest fetched by digest",
    "newline-config-digest": "is not a valid sha256/sha512 digest",
    "bad-digest-header": "is not a valid sha256/sha512 digest",
    "retry-after": "the registry asked to wait 100000s (Retry-After)",
    "huge-link-header": "unreadable answer to GET tags: Got more than 8190 bytes",
}


# Tags no catalog may ever receive, listed beside good ones by `h/junk-tags`.
JUNK_TAGS = ["1.2.0\n", "999." + "9" * 196 + ".0", "3.0.0 ", "-1.0.0", "4.0.0\u00a0"]

# What `/v2/namespaces/<ns>/repositories` (Docker Hub's listing API) answers per namespace.
HUB_NAMESPACES = ("hubjunk", "hubforeign", "hubhtml", "hubloop")


def blob_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_for(repo: str, tag: str) -> tuple[bytes, bytes]:
    """(config, manifest) of a tiny image, the same for the same repository and tag."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                         "config": {"Labels": {"repo": repo, "tag": tag}}},
                        sort_keys=True).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": blob_digest(config),
                                      "size": len(config)},
                           "layers": []}, sort_keys=True).encode()
    return config, manifest


@dataclass(frozen=True)
class Request:
    port: int
    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None,
             head: bool = False, reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    hdrs = {"Content-Length": str(len(body)), **(headers or {})}
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


def error(status: int, code: str, message: str, head: bool = False) -> bytes:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return response(status, body, {"Content-Type": "application/json"}, head)


@dataclass
class HostileRegistry:
    """Start with `start()`; `url` and `other_url` are the two origins; `seen` every request."""

    tags: dict[str, list[str]] = field(default_factory=dict)  # well-behaved repositories
    credentials: tuple[str, str] | None = None
    catalog: list[object] = field(default_factory=list)  # what /v2/_catalog lists
    trickle_interval: float = 0.5
    limited_for: float = 0.0  # > 0: every manifest request 429s for this long after the first
    # well-behaved repositories whose later reads trickle (what the gate reads, after the scan):
    # config blobs (an image's age), and where signatures live: the `sha256-<hex>[.sig]` tags
    # and the referrers API (which other repositories lack: 404, as distribution 2.8)
    trickle_blobs: set[str] = field(default_factory=set)
    trickle_signatures: set[str] = field(default_factory=set)
    seen: list[Request] = field(default_factory=list)

    def start(self) -> HostileRegistry:
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        ready = threading.Event()

        async def main() -> None:
            self._main = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self._other = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._main.sockets[0].getsockname()[1]
            self.other_port = self._other.sockets[0].getsockname()[1]
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop)
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            for server in (self._main, self._other):
                server.close()
            for writer in list(self._writers):  # trickling answers end now, not when they would
                writer.transport.abort()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:  # each notices its closed connection within one trickle interval
                await asyncio.wait(pending, timeout=self.trickle_interval + 5)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def other_url(self) -> str:
        return f"http://127.0.0.1:{self.other_port}"

    def requests_for(self, repo: str) -> list[Request]:
        return [r for r in self.seen if f"/v2/{repo}/" in r.path]

    def manifest(self, repo: str, tag: str) -> tuple[str, str]:
        """(manifest digest, config digest) a well-behaved tag serves."""
        config, manifest = image_for(repo, tag)
        return blob_digest(manifest), blob_digest(config)

    # --- the wire --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = first.split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (line.partition(":") for line in lines if line)}
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                req = Request(port, method, target, headers)
                self.seen.append(req)
                answer = self._answer(req) if port == self.port else self._foreign(req)
                if isinstance(answer, bytes):
                    writer.write(answer)
                    await writer.drain()
                else:
                    await answer(writer)
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _foreign(self, req: Request) -> bytes:
        """Another host: a CDN for `h/cdn`'s manifests (which tagsync refuses to follow there:
        a manifest is the registry's word), else a tag list of its own."""
        head = req.method == "HEAD"
        if req.path.startswith("/v2/h/cdn/manifests/"):
            manifest = image_for("h/cdn", "1.0.0")[1]
            return response(200, manifest, {"Content-Type": OCI_MANIFEST,
                                             "Docker-Content-Digest": blob_digest(manifest)}, head)
        body = json.dumps({"name": "x", "tags": ["9.9.9"]}).encode()
        return response(200, body, {"Content-Type": "application/json"}, head)

    def _authorized(self, req: Request) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        return req.headers.get("authorization") == expected

    def _answer(self, req: Request) -> bytes | Writer:
        head = req.method == "HEAD"
        if req.path.startswith("/v2/namespaces/"):  # Docker Hub's API: not the registry's auth
            return self._hub(req, req.path.split("/")[3])
        if not self._authorized(req):
            return response(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                            {"WWW-Authenticate": 'Basic realm="hostile"',
                             "Content-Type": "application/json"}, head)
        path = req.path
        if path == "/v2/":
            return response(200, b"{}", {"Content-Type": "application/json"}, head)
        if path == "/v2/_catalog":
            body = json.dumps({"repositories": self.catalog}).encode()
            return response(200, body, {"Content-Type": "application/json"}, head)
        rest = path.removeprefix("/v2/")
        if "/tags/list" in rest:
            repo = rest.rsplit("/tags/list", 1)[0]
            return self._tags(req, repo)
        if "/manifests/" in rest:
            repo, _, ref = rest.rpartition("/manifests/")
            return self._manifest(req, repo, ref)
        if "/blobs/" in rest:
            repo, _, digest = rest.rpartition("/blobs/")
            return self._blob(req, repo, digest)
        if "/referrers/" in rest and rest.rpartition("/referrers/")[0] in self.trickle_signatures:
            return self._trickle(b'{"schemaVersion": 2, "manifests": []}',
                                 "application/vnd.oci.image.index.v1+json")
        return error(404, "NOT_FOUND", "no such endpoint", head)

    def _hub(self, req: Request, namespace: str) -> bytes:
        """Docker Hub's repository listing, as a hostile Hub would answer it."""
        json_type = {"Content-Type": "application/json"}
        results = [{"namespace": namespace, "name": n, "repository_type": "image"}
                   for n in ["fine", "UPPER", "a..b%2Fc", "x" * 300, 'x",evil:"y', "ok-too"]]
        page: dict[str, object] = {"count": len(results), "next": None, "results": results}
        if namespace == "hubforeign":
            page["next"] = f"{self.other_url}/v2/namespaces/{namespace}/repositories?page=2"
        elif namespace == "hubloop":
            page["next"] = f"{self.url}{req.target}"
        elif namespace == "hubhtml":
            return response(200, b"<html>rate limited</html>", {"Content-Type": "text/html"})
        elif namespace not in HUB_NAMESPACES:
            return response(404, b'{"message": "object not found"}', json_type)
        return response(200, json.dumps(page).encode(), json_type)

    def _case(self, repo: str) -> str | None:
        case = repo.removeprefix("h/")
        return case if repo.startswith("h/") and case in CASES else None

    def _known_tags(self, repo: str) -> list[str] | None:
        if repo in self.tags:
            return self.tags[repo]
        if repo == "h/junk-tags":
            return ["1.0.0", "1.1.0", *JUNK_TAGS]
        if repo == "h/cdn":
            return ["1.0.0"]
        return ["1.0.0"] if self._case(repo) else None

    def _tags(self, req: Request, repo: str) -> bytes | Writer:
        case = self._case(repo)
        json_type = {"Content-Type": "application/json"}
        page = json.dumps({"name": repo, "tags": self._known_tags(repo)}).encode()
        if case == "retry-after":
            return response(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}',
                            {"Content-Type": "application/json", "Retry-After": "100000"})
        if case == "link-foreign":
            link = f'<{self.other_url}/v2/{repo}/tags/list?last=1.0.0>; rel="next"'
            return response(200, page, {**json_type, "Link": link})
        if case == "link-self":
            return response(200, page, {**json_type, "Link": f'<{req.target}>; rel="next"'})
        if case == "link-endless":
            n = int(parse_qs(urlsplit(req.target).query).get("page", ["0"])[0]) + 1
            link = f'</v2/{repo}/tags/list?page={n}>; rel="next"'
            return response(200, page, {**json_type, "Link": link})
        if case == "huge-link-header":  # over the HTTP client's bound on one header
            link = f'</v2/{repo}/tags/list?last={"a" * 20000}>; rel="next"'
            return response(200, page, {**json_type, "Link": link})
        if case == "html-tags":
            return response(200, b"<html><body>maintenance</body></html>",
                            {"Content-Type": "text/html"})
        if case == "array-tags":
            return response(200, b'["1.0.0"]', json_type)
        if case == "nonstring-tags":
            return response(200, b'{"name": "x", "tags": ["1.0.0", 7, null]}', json_type)
        if case == "redirect-loop-tags":
            return response(302, b"", {"Location": req.target})
        if case == "dup-content-length":
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(page)).encode() + b"\r\nContent-Length: 3\r\n\r\n" + page)
        if case == "trickle":
            return self._trickle(page)
        if case == "huge-declared":
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 314572800\r\n\r\n" + page)
        if case == "huge-chunked":
            return self._endless_chunks()
        tags = self._known_tags(repo)
        if tags is None:
            return error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return response(200, json.dumps({"name": repo, "tags": tags}).encode(), json_type)

    def _trickle(self, body: bytes, content_type: str = "application/json") -> Writer:
        async def send(writer: asyncio.StreamWriter) -> None:
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n".encode()
                         + b"Content-Length: " + str(len(body) + 10_000).encode() + b"\r\n\r\n")
            for byte in (body + b" " * 10_000):
                if writer.is_closing():
                    return
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.trickle_interval)
        return send

    def _endless_chunks(self) -> Writer:
        async def send(writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b" " * (1 << 20)
            for _ in range(300):  # 300 MB if nobody stops reading
                if writer.is_closing():
                    return
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return send

    def _manifest(self, req: Request, repo: str, ref: str) -> bytes | Writer:
        head = req.method == "HEAD"
        if repo in self.trickle_signatures and ref.startswith("sha256-") and not head:
            return self._trickle(b"{}", OCI_MANIFEST)  # a signature that never quite arrives
        case = self._case(repo)
        tags = self._known_tags(repo)
        if tags is None:
            return error(404, "NAME_UNKNOWN", "repository name not known to registry", head)
        if OCI_MANIFEST not in req.headers.get("accept", ""):
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
        if case == "retry-after":
            return response(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}',
                            {"Content-Type": "application/json", "Retry-After": "100000"}, head)
        if self.limited_for:  # a rate limit of the whole registry, as Docker Hub's
            now = time.monotonic()
            self._limited_since = getattr(self, "_limited_since", None) or now
            left = self._limited_since + self.limited_for - now
            if left > 0:
                return response(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"x"}]}',
                                {"Content-Type": "application/json",
                                 "Retry-After": str(math.ceil(left))}, head)
        if repo == "h/cdn":  # manifests served from another host, as a CDN would
            return response(307, b"", {"Location": f"{self.other_url}{req.target}"}, head)
        if case == "redirect-loop-head" and head:
            return response(302, b"", {"Location": req.target}, head)
        by_tag = {t: image_for(repo, t)[1] for t in tags}
        if case == "newline-config-digest":
            by_tag = {t: m.replace(b'", "mediaType": "' + OCI_CONFIG.encode(),
                                   b'\\n", "mediaType": "' + OCI_CONFIG.encode())
                      for t, m in by_tag.items()}
        by_digest = {blob_digest(m): m for m in by_tag.values()}
        manifest = by_tag.get(ref) or by_digest.get(ref)
        if manifest is None:
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
        digest = blob_digest(manifest)
        if case == "digest-mismatch" and not head:  # HEAD says A, GET by A returns B
            manifest = image_for(repo, "something-else")[1]
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}
        if case == "bad-digest-header":
            headers["Docker-Content-Digest"] = 'sha256:zz" && #injected'
        return response(200, manifest, headers, head)

    def _blob(self, req: Request, repo: str, digest: str) -> bytes | Writer:
        head = req.method == "HEAD"
        tags = self._known_tags(repo) or []
        configs = {blob_digest(c): c for c in (image_for(repo, t)[0] for t in tags)}
        if digest not in configs:
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry", head)
        if repo in self.trickle_blobs and not head:
            return self._trickle(configs[digest], "application/octet-stream")
        return response(200, configs[digest], {"Content-Type": "application/octet-stream",
                                               "Docker-Content-Digest": digest}, head)


def kernels_config(server: HostileRegistry, *, catalog_extra: str = "", url: str | None = None,
                   registry_extra: str = "", run: str = "") -> str:
    """The tagsync.yaml the hostile-registry tests share: a catalog of `name`/`tag`/`digest`
    entries on this server, plus what each test adds."""
    return f"""\
catalogs:
  - name: kernels
    file: images.yml
    entries: .images[*]
    image: "{server.host}/{{name}}"
    tag: .tag
    digest: .digest
    digest_format: image-id
{catalog_extra}registries:
  - host: "{server.host}"
    url: {url or server.url}
{registry_extra}run:
{run}"""
