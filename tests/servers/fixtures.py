"""Real servers on 127.0.0.1 with free ports, started and stopped by fixtures.

- `registry`: the CNCF distribution registry (Debian `docker-registry`), no auth;
- `basic_registry`: the same with htpasswd (bcrypt) auth;
- `token_registry`: the same with Bearer token auth and our own token issuer (JWT, x5c);
- `git_server`: real `git http-backend` (smart HTTP) with token (Basic) auth and a pre-receive
  hook that can refuse pushes to a protected branch.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from tagsync.image.tiny import Built, build_image
from tests.servers.images import push_image


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test: bound by this process and
    never listening, so no other server (another test run on the machine, a session server)
    can take it between the pick and the connect, as it could a port only checked free."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def free_port() -> int:
    """A free loopback port for a server started as another process (the registry, moto), or
    one to leave closed. Each pytest-xdist worker draws from a range of its own below the
    kernel's ephemeral range, so two workers never hand out the same port, and no client's
    outgoing connection can take it between the check and the bind. Another test run on the
    machine still can: starters check that the port answers from their process. Servers in
    this process bind port 0 instead (the kernel's choice, race-free)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = 10000 + 4000 * (int(worker) % 5 if worker.isdigit() else 0)
    for _ in range(200):
        port = random.randrange(low, low + 4000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's range")


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (make test installs it)")
    return path


def wait_http(url: str, timeout: float = 15.0, ok: Callable[[int], bool] = lambda s: s < 500) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ok(httpx.get(url, timeout=1.0).status_code):
                return
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up: {last}")


@dataclass
class RegistryServer:
    url: str
    host: str  # host:port, as an image name's registry part
    process: subprocess.Popen[bytes]
    auth: tuple[str, str] | None = None
    token_url: str | None = None
    pushed: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None  # an HTTPS registry: the context that trusts it

    def client(self) -> httpx.Client:
        return httpx.Client(auth=self._auth_flow(), timeout=10, verify=self.tls or True)

    def _auth_flow(self) -> httpx.Auth | None:
        if self.token_url:
            return _TokenAuth(self.token_url, self.auth)
        return httpx.BasicAuth(*self.auth) if self.auth else None

    def push(self, repository: str, tag: str, image: Built | str) -> Built:
        """Push with our own client (blobs, then manifest) and return what was pushed."""
        built = build_image(image) if isinstance(image, str) else image
        with self.client() as c:
            push_image(c, self.url, repository, tag, built)
        self.pushed[f"{repository}:{tag}"] = built.digest
        return built


class _TokenAuth(httpx.Auth):
    """Test-side Bearer flow for pushing to the token registry (push+pull scope)."""

    def __init__(self, token_url: str, creds: tuple[str, str] | None) -> None:
        self.token_url, self.creds = token_url, creds

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers["WWW-Authenticate"]
        params = dict(p.split("=", 1) for p in challenge.split(" ", 1)[1].split('",'))
        params = {k.strip(): v.strip('"') for k, v in params.items()}
        scope = params.get("scope", "").replace(":pull", ":pull,push") if "scope" in params else ""
        auth = httpx.BasicAuth(*self.creds) if self.creds else None
        token = httpx.get(self.token_url, params={"service": params["service"], "scope": scope},
                          auth=auth).json()["token"]
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def _start_registry(tmp: Path, extra: str = "", *, http_extra: str = "",
                    tls: ssl.SSLContext | None = None) -> RegistryServer:
    """The CNCF registry on a free port. Another process (a second test run on this machine) may
    take the port between the check and the registry's bind: then our registry exits and the
    port answers for someone else, so every answer must carry this instance's header, and a
    start that loses the race is tried again on another port.

    `http_extra`: more of the config's `http:` block (indented two spaces), e.g. `tls:`; with
    `tls` (a client context that trusts it) the registry is reached over HTTPS."""
    binary = _need("docker-registry")
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    instance = uuid.uuid4().hex
    for _ in range(5):
        port = free_port()
        cfg = tmp / "config.yml"
        cfg.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  headers:\n    X-Test-Instance: [{instance}]\n"
            + http_extra + extra
        )
        proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        if _answers_as(url + "/v2/", instance, proc, tls=tls):
            return RegistryServer(url, f"127.0.0.1:{port}", proc, tls=tls)
        _stop(proc)
    raise RuntimeError("the registry could not start on a free port (5 tries)")


def _answers_as(url: str, instance: str, proc: subprocess.Popen[bytes], timeout: float = 15.0,
                tls: ssl.SSLContext | None = None) -> bool:
    """Does `url` answer from our process (its instance header), before it exits or times out?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            answer = httpx.get(url, timeout=1.0, verify=tls or True)
            if answer.headers.get("X-Test-Instance") == instance:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = _start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    _stop(server.process)


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    import bcrypt

    tmp = tmp_path_factory.mktemp("basic-registry")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    (tmp / "htpasswd").write_text(f"robot:{hashed}\n")
    server = _start_registry(
        tmp, f"auth:\n  htpasswd:\n    realm: test\n    path: {tmp / 'htpasswd'}\n")
    server.auth = ("robot", "s3cret")
    yield server
    _stop(server.process)


# --- Bearer token auth: a token issuer of our own, as Docker Hub's auth.docker.io -----------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class WsgiThread:
    url: str
    server: WSGIServer
    thread: threading.Thread
    hits: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_wsgi(app: Callable[..., Any], *, can_cut: bool = False) -> WsgiThread:
    """`can_cut`: the app may raise `ConnectionCut` to drop the connection without an answer.
    The kernel picks the port as the server binds it: no other process can take it first."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                         handler_class=_DropHandler if can_cut else _QuietHandler)
    port = server.server_port
    if can_cut:
        server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return WsgiThread(f"http://127.0.0.1:{port}", server, thread)


def serve_json(data: Any) -> WsgiThread:
    """A server answering every request with `data` as JSON (a listing a test makes up)."""
    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        body = json.dumps(data).encode()
        start("200 OK", [("Content-Type", "application/json"),
                         ("Content-Length", str(len(body)))])
        return [body]
    return serve_wsgi(app)


def _token_issuer(key: Any, cert_der: bytes, users: dict[str, str], issued: list[dict[str, Any]]
                  ) -> Callable[..., Any]:
    from urllib.parse import parse_qs

    import jwt

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        user = ""
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if users.get(name) != password:
                start("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"details":"incorrect username or password"}']
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            allowed = actions.split(",") if user or name.startswith("public/") else []
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": "tagsync-test-issuer", "sub": user, "aud": query.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                  "access": access}
        token = jwt.encode(claims, key, algorithm="RS256",
                           headers={"x5c": [base64.b64encode(cert_der).decode()]})
        issued.append({"user": user, "scope": query.get("scope", [])})
        start("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"token": token, "expires_in": 300}).encode()]

    return app


def token_signer(pem: Path, common_name: str) -> tuple[Any, bytes]:
    """A token issuer's signing key and self-signed certificate (DER); the certificate is also
    written to `pem`, the registry's `rootcertbundle`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    tmp = tmp_path_factory.mktemp("token-registry")
    key, der = token_signer(tmp / "root.crt", "tagsync test token issuer")
    issued: list[dict[str, Any]] = []
    issuer = serve_wsgi(_token_issuer(key, der, {"robot": "s3cret"}, issued))
    server = _start_registry(tmp, (
        "auth:\n  token:\n"
        f"    realm: {issuer.url}/token\n    service: test-registry\n"
        f"    issuer: tagsync-test-issuer\n    rootcertbundle: {tmp / 'root.crt'}\n"))
    server.auth = ("robot", "s3cret")
    server.token_url = f"{issuer.url}/token"
    server.token_root = tmp / "root.crt"  # type: ignore[attr-defined]
    server.issued = issued  # type: ignore[attr-defined]
    yield server
    _stop(server.process)
    issuer.stop()


# --- Git over smart HTTP (real git http-backend), token required, optional protected branch --


class PushGate:
    """Test controls on pushes (receive-pack over HTTP or SSH), to stage races and lost answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hold: threading.Barrier | None = None
        self.cut_before = 0  # the next N pushes: connection cut before git sees them
        self.cut_after = 0  # the next N pushes: git carries them out, the answer is cut

    def hold(self, parties: int = 2, timeout: float = 30.0) -> None:
        """The next `parties` pushes wait for each other: all of them read the branch head
        before any of them writes, so git's compare-and-swap decides who wins."""
        self._hold = threading.Barrier(parties, timeout=timeout)

    def arrive(self) -> None:
        with self._lock:
            barrier = self._hold
        if barrier is not None:
            barrier.wait()
            with self._lock:
                if self._hold is barrier:
                    self._hold = None

    def take(self, which: str) -> bool:
        with self._lock:
            if getattr(self, which) > 0:
                setattr(self, which, getattr(self, which) - 1)
                return True
            return False


@dataclass
class GitServer:
    url: str  # http://127.0.0.1:port/repo.git
    path: Path  # the served bare repository
    token: str
    wsgi: WsgiThread
    requests: list[str]
    gate: PushGate = field(default_factory=PushGate)

    def head(self, branch: str = "main") -> bytes:
        from dulwich.repo import Repo

        with Repo(str(self.path)) as repo:
            return repo.refs[f"refs/heads/{branch}".encode()]

    def read(self, file: str, branch: str = "main") -> bytes:
        from dulwich.object_store import tree_lookup_path
        from dulwich.repo import Repo

        with Repo(str(self.path)) as repo:
            commit = repo[repo.refs[f"refs/heads/{branch}".encode()]]
            _, sha = tree_lookup_path(repo.__getitem__, commit.tree, file.encode())
            return bytes(repo[sha].data)

    def commit_count(self, branch: str = "main") -> int:
        from dulwich.repo import Repo

        with Repo(str(self.path)) as repo:
            head = repo.refs[f"refs/heads/{branch}".encode()]
            return sum(1 for _ in repo.get_walker(include=[head]))

    def commit_directly(self, files: dict[str, bytes], message: str = "someone else",
                        when: int | None = None) -> bytes:
        """A commit by somebody else, straight into the served repository."""
        return commit_files(self.path, files, message, when=when)

    def protect(self, branch: str = "main") -> None:
        hook = self.path / "hooks" / "pre-receive"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(
            "#!/bin/sh\n"
            'while read old new ref || [ -n "$ref" ]; do\n'
            f'  if [ "$ref" = "refs/heads/{branch}" ]; then\n'
            f'    echo "branch {branch} is protected: open a pull request" >&2; exit 1\n'
            "  fi\n"
            "done\n"
        )
        os.chmod(hook, 0o755)


def commit_files(path: Path, files: dict[str, bytes], message: str,
                 branch: str = "main", when: int | None = None) -> bytes:
    from dulwich.repo import Repo

    with Repo(str(path)) as repo:
        return commit_to_ref(repo, files, message, f"refs/heads/{branch}".encode(), when)


def commit_to_ref(repo: Any, files: dict[str, bytes], message: str, ref: bytes,
                  when: int | None = None) -> bytes:
    """One commit with `files` on top of `ref` (or a root commit), and `ref` moved to it;
    `when` sets its time (seconds since the epoch), for tests that read history."""
    parent = repo.refs[ref] if ref in repo.refs else None  # noqa: SIM401 (refs has no .get)
    made = commit_entries(repo, parent, [(name, 0o100644, data) for name, data in files.items()],
                          message, int(time.time()) if when is None else when)
    repo.refs[ref] = made
    return made


def commit_entries(repo: Any, parent: bytes | None, entries: list[tuple[str, int, bytes]],
                   message: str, when: int = 1_700_000_000) -> bytes:
    """A commit on `parent` (or a root commit) setting exactly these (path, mode, data) entries
    (0o120000: a symbolic link), by someone; no ref is moved (the caller says where it goes)."""
    from dulwich.object_store import commit_tree_changes
    from dulwich.objects import Blob, Commit, Tree

    base_tree = repo[parent].tree if parent else None
    if base_tree is None:
        empty = Tree()
        repo.object_store.add_object(empty)
        base_tree = empty.id
    changes = []
    for name, mode, data in entries:
        blob = Blob.from_string(data)
        repo.object_store.add_object(blob)
        changes.append((name.encode(), mode, blob.id))
    commit = Commit()
    commit.tree = commit_tree_changes(repo.object_store, base_tree, changes)
    commit.parents = [parent] if parent else []
    commit.author = commit.committer = b"someone <someone@localhost>"
    commit.author_time = commit.commit_time = when
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode()
    repo.object_store.add_object(commit)
    return bytes(commit.id)


def _basic_auth(app: Callable[..., Any], token: str, log: list[str]) -> Callable[..., Any]:
    def guarded(environ: dict[str, Any], start: Callable[..., Any]) -> Any:
        log.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}?"
                   f"{environ.get('QUERY_STRING', '')}")
        header = environ.get("HTTP_AUTHORIZATION", "")
        ok = False
        if header.startswith("Basic "):
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
            ok = password == token
        if not ok:
            start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'),
                                       ("Content-Type", "text/plain")])
            return [b"authentication required\n"]
        return app(environ, start)

    return guarded


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    server = start_git_server(tmp_path)
    yield server
    server.wsgi.stop()


def start_git_server(tmp_path: Path) -> GitServer:
    """Real `git http-backend` over a bare repo with `main` as HEAD; the caller stops it.

    Real git rather than dulwich's server: it is what people push to, so the compare-and-swap on
    the old head, ref locks, hooks and per-ref reports are git's own and cannot be kinder than
    production (dulwich's server ignored a failed compare-and-swap and answered "ok").
    """
    git = _need("git")
    root = tmp_path / "git-http"
    path = root / "repo.git"
    root.mkdir()
    subprocess.run([git, "init", "--quiet", "--bare", "--initial-branch=main", str(path)],
                   check=True, env=_git_env(root))
    token = "ghs_" + uuid.uuid4().hex
    requests: list[str] = []
    gate = PushGate()
    wsgi = serve_wsgi(_basic_auth(_gated(_git_http_backend(git, root), gate), token, requests),
                      can_cut=True)
    return GitServer(f"{wsgi.url}/repo.git", path, token, wsgi, requests, gate)


class ConnectionCut(Exception):
    """Raised by a test server's app after it shut the client's connection down."""


def cut_connection() -> None:
    _current.connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionCut


def _gated(app: Callable[..., Any], gate: PushGate) -> Callable[..., Any]:
    def gated(environ: dict[str, Any], start: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO", "").endswith(
                "/git-receive-pack"):
            gate.arrive()
            if gate.take("cut_before"):
                cut_connection()
            if gate.take("cut_after"):
                app(environ, lambda *args: None)  # git carries the push out; nobody hears how
                cut_connection()
        return app(environ, start)

    return gated


def _git_env(home: Path) -> dict[str, str]:
    """No user or system git configuration leaks into the served repository."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


def _request_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, with HTTP/1.1 chunked transfer decoding (wsgiref leaves it to us)."""
    stream = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return bytes(stream.read(length)) if length else b""
    out = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            stream.readline()
            return bytes(out)
        out += stream.read(size)
        stream.readline()


def _git_http_backend(git: str, root: Path) -> Callable[..., Any]:
    """`git http-backend` as a CGI program behind WSGI, as Apache or nginx+fcgiwrap run it."""
    def app(environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        body = _request_body(environ)
        env = {**_git_env(root), "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
               "REMOTE_USER": "tagsync-test", "REMOTE_ADDR": "127.0.0.1",
               "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
               "REQUEST_METHOD": environ["REQUEST_METHOD"], "PATH_INFO": environ.get("PATH_INFO", ""),
               "QUERY_STRING": environ.get("QUERY_STRING", ""),
               "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""), "CONTENT_LENGTH": str(len(body))}
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
            if key in environ:
                env[key] = environ[key]
        proc = subprocess.run([git, "http-backend"], input=body, env=env, capture_output=True,
                              timeout=120)
        end = re.search(rb"\r?\n\r?\n", proc.stdout)
        head, payload = (proc.stdout[:end.start()], proc.stdout[end.end():]) if end else (b"", b"")
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        if proc.returncode != 0 and not proc.stdout:
            status, headers, payload = "500 Internal Server Error", [("Content-Type", "text/plain")], \
                proc.stderr
        start(status, headers)
        return [payload]

    return app


# --- images made with umoci and pushed with skopeo, as a user's pipeline would --------------


def skopeo_push_umoci_image(registry: RegistryServer, tmp: Path, repository: str, tag: str,
                            content: str) -> str:
    """Build with umoci (rootless), push with skopeo; returns the pushed manifest digest."""
    umoci, skopeo = _need("umoci"), _need("skopeo")
    layout = tmp / f"layout-{uuid.uuid4().hex[:8]}"
    bundle = tmp / f"bundle-{uuid.uuid4().hex[:8]}"
    subprocess.run([umoci, "init", "--layout", str(layout)], check=True)
    subprocess.run([umoci, "new", "--image", f"{layout}:base"], check=True)
    subprocess.run([umoci, "unpack", "--rootless", "--image", f"{layout}:base", str(bundle)],
                   check=True, capture_output=True)
    (bundle / "rootfs" / "content.txt").write_text(content)
    subprocess.run([umoci, "repack", "--image", f"{layout}:{tag}", str(bundle)], check=True,
                   capture_output=True)
    digest_file = tmp / f"digest-{uuid.uuid4().hex[:8]}"
    subprocess.run([skopeo, "copy", "--quiet", "--dest-tls-verify=false",
                    "--digestfile", str(digest_file),
                    f"oci:{layout}:{tag}", f"docker://{registry.host}/{repository}:{tag}"],
                   check=True)
    return digest_file.read_text().strip()


# --- a misbehaving proxy in front of the real registry --------------------------------------


@dataclass
class FaultyRegistry:
    url: str
    host: str
    faults: Any  # FaultPlan
    upstream: RegistryServer


_current = threading.local()


class _DropHandler(_QuietHandler):
    """Remembers its socket so a fault can cut the connection without an answer."""

    def handle(self) -> None:
        _current.connection = self.connection
        super().handle()


@pytest.fixture
def faulty_registry(registry: RegistryServer) -> Iterator[FaultyRegistry]:
    from tests.servers.proxy import FaultPlan, make_proxy

    plan = FaultPlan()
    app = make_proxy(registry.url, plan)

    def wrapped(environ: dict[str, Any], start: Callable[..., Any]) -> Any:
        from tests.servers.proxy import ConnectionDropped

        try:
            return app(environ, start)
        except ConnectionDropped:
            _current.connection.shutdown(socket.SHUT_RDWR)
            raise

    server = make_server("127.0.0.1", 0, wrapped, server_class=_ThreadingWSGIServer,
                         handler_class=_DropHandler)
    port = server.server_port
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FaultyRegistry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", plan, registry)
    server.shutdown()
    server.server_close()


# --- GitHub API contract server ------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[Any]:
    """GitHub's REST + GraphQL API as far as tagsync uses it, validated against GitHub's spec."""
    from tests.servers.github import contract_files_present, serve

    if not contract_files_present():
        pytest.fail("GitHub's API description is missing: run `make deps` (npm @octokit/openapi, "
                    "@octokit/graphql-schema into .cache/npm)")
    gen = serve(serve_wsgi)
    server = next(gen)
    yield server
    next(gen, None)
    assert server.violations == [], "contract violations:\n" + "\n".join(server.violations)


# --- Docker Hub listing API contract server --------------------------------------------------


@pytest.fixture
def hub() -> Iterator[Any]:
    """Docker Hub's repository listing API as documented; fails the test on any off-spec exchange."""
    from tests.servers.hub import HubServer

    server = HubServer()
    thread = serve_wsgi(server)
    server.url = thread.url
    yield server
    thread.stop()
    assert server.violations == [], "Hub contract violations:\n" + "\n".join(server.violations)


# --- moto server (AWS APIs) ---------------------------------------------------------------


@dataclass
class MotoServer:
    url: str
    contract: Any = None  # tests.servers.aws_contract.AwsContract of the running test

    def reset(self) -> None:
        # A reset reloads AWS's managed IAM policies: seconds on a busy 2-core machine, past
        # httpx's 5 s default. Slow is fine here; a spurious timeout is a flaky test.
        httpx.post(f"{self.url}/moto-api/reset", timeout=120)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point boto3 in this process at the server, with throwaway credentials."""
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server per session, with AWS managed IAM policies loaded; `moto` resets state."""
    import sys

    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    for _ in range(5):  # a port another process took between the check and moto's bind: again
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                     "-p", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/moto-api/", timeout=60)
        except Exception:
            proc.kill()
            raise
        if proc.poll() is None:
            break
    else:
        raise RuntimeError("moto could not start on a free port (5 tries)")
    try:
        httpx.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=120)
        yield MotoServer(url)
    finally:
        _stop(proc)


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A clean AWS account on the session's moto server, with boto3 pointed at it.

    Every request a client in this process sends is checked against botocore's model of the
    service (lengths, patterns, enums, required members), which moto does not enforce: a
    request AWS would refuse fails the test. `moto.contract` also records the IAM actions called.
    """
    from tests.servers.aws_contract import AwsContract

    moto_server.reset()
    moto_server.env(monkeypatch)
    contract = AwsContract()
    contract.install(monkeypatch)
    moto_server.contract = contract
    yield moto_server
    assert contract.violations == [], "requests AWS would refuse:\n" + "\n".join(contract.violations)


# --- Git over SSH (paramiko server, dulwich handlers) -------------------------------------


@dataclass
class SshGit:
    git: GitServer  # the same bare repository, for set-up and inspection helpers
    ssh: Any  # tests.servers.ssh.SshGitServer


@pytest.fixture
def ssh_git(tmp_path: Path) -> Iterator[SshGit]:
    from tests.servers.ssh import start_ssh_git_server

    git = start_git_server(tmp_path)
    ssh = start_ssh_git_server(git.path, 0, git.gate)
    yield SshGit(git, ssh)
    ssh.stop()
    git.wsgi.stop()


# --- the image builder: a Lambda-like base, an offline wheelhouse, an ECR-like registry ------


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.servers.wheels import make_wheelhouse

    return make_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="session")
def lambda_base_ref(registry: RegistryServer) -> str:
    """A multi-arch Lambda-shaped base in the local registry, as `--base` takes it."""
    from tests.servers.images import lambda_base

    registry.push("lambda/python", "3.11", lambda_base())
    return f"{registry.host}/lambda/python:3.11"


def start_ecr_registry(tmp: Path, account: str, region: str) -> tuple[str, RegistryServer]:
    """A registry accepting exactly the password ECR's GetAuthorizationToken (moto) hands out,
    and the ECR host name to route to it: the ECR login path, end to end."""
    import bcrypt
    import boto3

    token = boto3.client("ecr", region_name=region).get_authorization_token(
        registryIds=[account])["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "htpasswd").write_text(f"{user}:{hashed}\n")
    server = _start_registry(tmp, f"auth:\n  htpasswd:\n    realm: ecr\n    path: {tmp / 'htpasswd'}\n")
    server.auth = (user, password)
    return f"{account}.dkr.ecr.{region}.amazonaws.com", server


# --- the kernel catalog most end-to-end tests share -------------------------------------------


def unique_namespace(prefix: str, request: pytest.FixtureRequest) -> str:
    """A registry namespace of this test's own, so tests sharing one registry never collide."""
    return prefix + str(abs(hash(request.node.name)) % 10**8)


def kernels_yaml(registry: RegistryServer, ns: str, file: str = "images.yml") -> str:
    """The `catalogs:` and `registries:` part of a tagsync.yaml for the Lablup-shaped catalog."""
    return f"""\
catalogs:
  - name: kernels
    file: {file}
    entries: .images[*]
    image: "{registry.host}/{ns}/kernel-{{name}}"
    pairs: .tags
    digest_format: short
registries:
  - host: "{registry.host}"
    url: {registry.url}
"""
