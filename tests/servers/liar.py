"""A second hostile registry on 127.0.0.1 (issue #27): it lies about who it is, where things
are and what it sent, and it wants the credentials it was given.

Three listeners, three origins:
- `registry`: the registry tagsync is configured with. Well-behaved for ordinary repositories,
  as strict as the CNCF registry: Basic credentials (`auth="basic"`), or Bearer tokens from its
  own `/token` realm that checks the Basic credentials (`auth="bearer"`), answering 401 with
  the challenge when a request lacks them; manifests only for an `Accept` naming their type,
  with `Docker-Content-Digest`; the spec's JSON error bodies. The repositories `l/<case>` each
  play one lie of `CASES`.
- `foreign`: another host that a redirect leads to. It serves `l/blob-cdn`'s blobs (a CDN, as
  Docker Hub's), answers `9.9.9` to any tag list, and answers 401 naming the `evil` realm to
  everything else, as the host of issue #27 item 1 did.
- `evil`: a token realm on another host that issues tokens to anyone.

Every request any listener sees is recorded with its headers, so a test can prove which
secrets reached which listener: `foreign` and `evil` must never see one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.servers.hostile import OCI_MANIFEST, blob_digest, error, image_for, response

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
USER, PASSWORD = "robot", "s3cret-Pa55word"

# Every lie, with the words tagsync's one-line reason for its image must hold. Each fails only
# its own image; none may reach a catalog, a listener other than the registry, or a traceback.
CASES: dict[str, str] = {
    # item 1 and 9: credentials and answers bound to the registry's origin
    "manifest-redirect-foreign": "manifest was redirected to another origin",
    "tags-redirect-foreign": "GET tags was redirected to another origin",
    "blob-redirect-asks-auth": "asked for credentials; the registry's are never sent",
    # item 2: a manifest is a manifest
    "portal": "is not a manifest (Content-Type text/html)",
    "portal-no-digest": "is not a manifest (Content-Type text/html)",
    "json-not-manifest": "names no manifest or index media type",
    "mediatype-mismatch": "is not the type the registry sent it as",
    "digest-header-lies": "Docker-Content-Digest sha256:",
    "manifest-no-config": "manifest has no config descriptor",
    # item 3: every header a server controls, parsed defensively
    "link-backslash": "the Link header is not a well-formed URL",
    "link-garbage": "the Link header is not well-formed",
    "link-two-next": "the Link header names more than one next page",
    "location-backslash": "the Location header is not a well-formed URL",
    "location-bad-port": "the Location header is not a well-formed URL",
    "location-ipv6-open": "the Location header is not a well-formed URL",
    "location-ftp": "the Location header names a non-HTTP URL",
    "retry-after-garbage": "Retry-After header that is unreadable",
    "retry-after-nan": "Retry-After header that is unreadable",
    # item 5: one repository's bad challenge fails that image only
    "challenge-file-realm": "names a realm that is not an HTTP URL",
    "challenge-ftp-realm": "names a realm that is not an HTTP URL",
    "challenge-realm-userinfo": "names a realm with credentials of its own",
    "challenge-realm-backslash": "the Bearer challenge's realm is not a well-formed URL",
    "challenge-unknown-scheme": "unsupported auth challenge (negotiate)",
    "challenge-missing": "401 without a WWW-Authenticate challenge",
    "challenge-no-realm": "the Bearer challenge names no realm",
    # item 4: a server that quotes our credentials back
    "echo-authorization": "(DENIED: you sent",
}

# Repositories that must be updated although they are served in an unusual, legitimate way.
GOOD = ("good/app", "l/blob-cdn", "l/location-userinfo", "l/digits-not-ascii")


@dataclass(frozen=True)
class Seen:
    listener: str
    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


@dataclass
class LiarRegistry:
    """Start with `start()`; `url`, `foreign_url`, `evil_url` are the three origins."""

    auth: str = "basic"  # or "bearer"
    redirect_status: int = 302  # how the registry's own redirects are sent (every shape: 30x)
    seen: list[Seen] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)  # issued by the registry's own realm

    def start(self) -> LiarRegistry:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main() -> None:
            self._servers = {}
            for name in ("registry", "foreign", "evil"):
                self._servers[name] = await asyncio.start_server(
                    lambda r, w, name=name: self._serve(name, r, w), "127.0.0.1", 0)
            self.ports = {n: s.sockets[0].getsockname()[1] for n, s in self._servers.items()}
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop)
        if not ready.wait(10):
            raise RuntimeError("the liar registry did not start")
        return self

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers.values():
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.ports['registry']}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def foreign_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['foreign']}"

    @property
    def evil_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['evil']}"

    def manifest(self, repo: str, tag: str) -> tuple[str, str]:
        """(manifest digest, config digest) a well-behaved tag serves."""
        config, manifest = image_for(repo, tag)
        return blob_digest(manifest), blob_digest(config)

    def secrets(self) -> list[str]:
        """Every credential the registry gave or was given, in every form it travels in."""
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return [PASSWORD, basic, *sorted(self.tokens)]

    def at(self, listener: str) -> list[Seen]:
        return [r for r in self.seen if r.listener == listener]

    # --- the wire --------------------------------------------------------------------------

    async def _serve(self, listener: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
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
                req = Seen(listener, method, target, headers)
                self.seen.append(req)
                answer = {"registry": self._registry, "foreign": self._foreign,
                          "evil": self._evil}[listener](req)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _evil(self, req: Seen) -> bytes:
        """A token service on another host: hands a token to anyone."""
        return response(200, json.dumps({"token": "evil-token", "expires_in": 300}).encode(),
                        {"Content-Type": "application/json"})

    def _foreign(self, req: Seen) -> bytes:
        head = req.method == "HEAD"
        if req.path.startswith("/v2/l/blob-cdn/blobs/") or \
                req.path.startswith("/v2/l/location-userinfo/blobs/"):
            repo, _, digest = req.path.removeprefix("/v2/").partition("/blobs/")
            configs = {blob_digest(c): c for c in (image_for(repo, t)[0] for t in ("1.0.0", "1.1.0"))}
            if digest not in configs:
                return error(404, "BLOB_UNKNOWN", "blob unknown", head)
            return response(200, configs[digest], {"Content-Type": "application/octet-stream"},
                            head)
        if "/tags/list" in req.path:
            return response(200, json.dumps({"name": "x", "tags": ["9.9.9"]}).encode(),
                            {"Content-Type": "application/json"}, head)
        return response(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                        {"WWW-Authenticate": f'Bearer realm="{self.evil_url}/token",'
                                             'service="evil"',
                         "Content-Type": "application/json"}, head)

    # --- the registry ---------------------------------------------------------------------

    def _challenge(self) -> str:
        if self.auth == "basic":
            return 'Basic realm="liar"'
        return f'Bearer realm="{self.url}/token",service="liar"'

    def _authorized(self, req: Seen) -> bool:
        got = req.headers.get("authorization", "")
        if self.auth == "basic":
            return got == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return got.startswith("Bearer ") and got.removeprefix("Bearer ") in self.tokens

    def _token(self, req: Seen) -> bytes:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if req.headers.get("authorization") != expected:
            return response(401, b'{"details":"bad credentials"}',
                            {"Content-Type": "application/json"})
        token = "tok-" + secrets.token_hex(12)
        self.tokens.add(token)
        query = parse_qs(urlsplit(req.target).query)
        assert query.get("service") == ["liar"], query  # the challenge's service, sent back
        # valid "forever": 10**400 seconds, a JSON number no float holds
        return response(200, b'{"token": "%s", "expires_in": 1%s}' % (token.encode(), b"0" * 400),
                        {"Content-Type": "application/json"})

    def _registry(self, req: Seen) -> bytes:
        head = req.method == "HEAD"
        if req.path == "/token" and self.auth == "bearer":
            return self._token(req)
        rest = req.path.removeprefix("/v2/")
        repo = rest.split("/tags/list")[0].split("/manifests/")[0].split("/blobs/")[0]
        case = repo.removeprefix("l/") if repo.startswith("l/") else None
        early = self._before_auth(req, case)
        if early is not None:
            return early
        if not self._authorized(req):
            return response(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                            {"WWW-Authenticate": self._challenge(),
                             "Content-Type": "application/json"}, head)
        if req.path == "/v2/":
            return response(200, b"{}", {"Content-Type": "application/json"}, head)
        if "/tags/list" in rest:
            return self._tags(req, repo, case)
        if "/manifests/" in rest:
            return self._manifest(req, repo, case, rest.rpartition("/manifests/")[2])
        if "/blobs/" in rest:
            return self._blob(req, repo, case, rest.rpartition("/blobs/")[2])
        return error(404, "NOT_FOUND", "no such endpoint", head)

    def _before_auth(self, req: Seen, case: str | None) -> bytes | None:
        """Cases that answer whatever credentials came: a portal, a bad challenge."""
        head = req.method == "HEAD"
        if case == "portal":  # a captive portal: 200 HTML to everything, a digest header too
            page = b"<html><body>Please log in to the hotel Wi-Fi</body></html>"
            return response(200, page, {"Content-Type": "text/html",
                                        "Docker-Content-Digest": blob_digest(page)}, head)
        challenges = {
            "challenge-file-realm": 'Bearer realm="file:///etc/passwd",service="liar"',
            "challenge-ftp-realm": f'Bearer realm="ftp://127.0.0.1:{self.ports["evil"]}/t"',
            "challenge-realm-userinfo":
                f'Bearer realm="http://x:y@127.0.0.1:{self.ports["evil"]}/token"',
            "challenge-realm-backslash": 'Bearer realm="http://a\\@127.0.0.1/token"',
            "challenge-unknown-scheme": "Negotiate abcdef",
            "challenge-no-realm": 'Bearer service="liar"',
        }
        if case in challenges:
            return response(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                            {"WWW-Authenticate": challenges[case],
                             "Content-Type": "application/json"}, head)
        if case == "challenge-missing":
            return response(401, b"{}", {"Content-Type": "application/json"}, head)
        if case and case.startswith("retry-after-"):
            value = {"retry-after-garbage": "soon", "retry-after-nan": "nan"}[case]
            return response(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}',
                            {"Content-Type": "application/json", "Retry-After": value}, head)
        return None

    def _tags(self, req: Seen, repo: str, case: str | None) -> bytes:
        json_type = {"Content-Type": "application/json"}
        page = json.dumps({"name": repo, "tags": ["1.0.0", "1.1.0"]}).encode()
        foreign = f"127.0.0.1:{self.ports['foreign']}"
        links = {
            "link-backslash": f'<http://a\\@{foreign}/v2/{repo}/tags/list?last=1>; rel="next"',
            "link-garbage": "garbage; rel=next",
            "link-two-next": (f'</v2/{repo}/tags/list?last=a>; rel="next", '
                              f'</v2/{repo}/tags/list?last=b>; rel="next"'),
        }
        if case in links:
            return response(200, page, {**json_type, "Link": links[case]})
        if case == "tags-redirect-foreign":
            return response(self.redirect_status, b"",
                            {"Location": f"{self.foreign_url}{req.target}"})
        return response(200, page, json_type)

    def _manifest(self, req: Seen, repo: str, case: str | None, ref: str) -> bytes:
        head = req.method == "HEAD"
        if OCI_MANIFEST not in req.headers.get("accept", ""):
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
        if case == "echo-authorization":  # an error page that quotes the request back
            if head:  # no digest on HEAD: the client GETs the body, and meets the page
                return response(200, b"", {"Content-Type": OCI_MANIFEST}, head)
            return error(400, "DENIED", f"you sent Authorization: "
                                        f"{req.headers.get('authorization')}")
        redirects = {
            "manifest-redirect-foreign": f"{self.foreign_url}{req.target}",
            "location-backslash": f"http://a\\@127.0.0.1:{self.ports['foreign']}{req.target}",
            "location-bad-port": f"http://127.0.0.1:99999{req.target}",
            "location-ipv6-open": f"http://[::1{req.target}",
            "location-ftp": f"ftp://127.0.0.1:{self.ports['foreign']}{req.target}",
        }
        if case in redirects:
            return response(self.redirect_status, b"", {"Location": redirects[case]}, head)
        by_tag = {t: self._served(repo, case, t) for t in ("1.0.0", "1.1.0")}
        manifest = by_tag.get(ref) or {blob_digest(m): m for m in by_tag.values()}.get(ref)
        if manifest is None:
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": blob_digest(manifest)}
        if case == "digits-not-ascii":  # digits to str.isdigit, not to int
            headers["ratelimit-remaining"] = "\u00b2\u00b3;w=21600"
        if case == "portal-no-digest":
            page = b"<html>maintenance</html>"
            return response(200, page, {"Content-Type": "text/html"}, head)
        if case == "json-not-manifest":
            return response(200, b'{"hello": "world", "schemaVersion": 2}',
                            {"Content-Type": "application/json"}, head)
        if case == "digest-header-lies":  # HEAD says nothing; GET vouches for other bytes
            if head:
                del headers["Docker-Content-Digest"]
            else:
                headers["Docker-Content-Digest"] = blob_digest(b"something else")
        return response(200, manifest, headers, head)

    def _served(self, repo: str, case: str | None, tag: str) -> bytes:
        """The manifest bytes a tag serves: the image's own, or a case's lie about it."""
        manifest = image_for(repo, tag)[1]
        if case == "mediatype-mismatch":  # sent as a manifest, says it is an index
            return json.dumps({**json.loads(manifest), "mediaType": OCI_INDEX}).encode()
        if case == "manifest-no-config":
            return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "layers": []}).encode()
        return manifest

    def _blob(self, req: Seen, repo: str, case: str | None, digest: str) -> bytes:
        head = req.method == "HEAD"
        if repo in ("l/blob-cdn", "l/blob-redirect-asks-auth"):  # storage on another host
            return response(307, b"", {"Location": f"{self.foreign_url}{req.target}"}, head)
        if repo == "l/location-userinfo":  # a Location carrying credentials of its choosing
            foreign = f"evil:hunter2@127.0.0.1:{self.ports['foreign']}"
            return response(307, b"", {"Location": f"http://{foreign}{req.target}"}, head)
        configs = {blob_digest(c): c for c in (image_for(repo, t)[0] for t in ("1.0.0", "1.1.0"))}
        if digest not in configs:
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry", head)
        return response(200, configs[digest], {"Content-Type": "application/octet-stream",
                                               "Docker-Content-Digest": digest}, head)
