"""HTTPS clients other than the registry's manifest requests, through a CONNECT proxy
(`HTTPS_PROXY`): the registry's token service, reached on its own host, and httpx's two users,
GitHub's API and Docker Hub's listing API, served over TLS by their contract fakes. Whatever
the proxy refuses is a typed error naming the proxy (without its credentials), asked once."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

import pytest

from tagsync.cli import main
from tagsync.errors import ImageNotFoundError, PublishError, RegistryAuthError, RegistryError
from tagsync.publish import github as gh
from tagsync.reference import ImageName
from tagsync.registry.discover import DockerHub
from tagsync.registry.oci import OciRegistry
from tests.servers.connect_proxy import ConnectProxy, start_connect_proxy
from tests.servers.fixtures import (
    RegistryServer,
    WsgiThread,
    _QuietHandler,
    _start_registry,
    _stop,
    _ThreadingWSGIServer,
    _token_issuer,
    token_signer,
)
from tests.servers.github import GitHubServer, contract_files_present, serve
from tests.servers.hub import HubServer
from tests.servers.tls import CertificateAuthority

PROXY_USER, PROXY_SECRET = "corp", "pr0xy-s3cret"
TOKEN_HOST = "auth.corp.test"  # not loopback: the proxy's allow-list refuses it (403)
REPO = "acme/catalogs"
GITHUB_TOKEN = "ghp_proxytest0123456789abcdefABCDEF"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the machine's environment decides trust or routing in these tests."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                 "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"))


def serve_wsgi_tls(app: Callable[..., Any], ca: CertificateAuthority, folder: Path) -> WsgiThread:
    """`serve_wsgi`, over HTTPS with a certificate from `ca` for 127.0.0.1. The handshake happens
    in the request's thread (on its first read), so one client cannot hold up the others."""
    cert, key = ca.issue(folder, ("127.0.0.1",))
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return WsgiThread(f"https://127.0.0.1:{server.server_port}", server, thread)


@pytest.fixture(scope="module")
def remote_token_registry(tmp_path_factory: pytest.TempPathFactory,
                          ca: CertificateAuthority) -> Iterator[RegistryServer]:
    """The real CNCF registry over TLS whose Bearer challenge names a token service on another
    host, as Docker Hub's names auth.docker.io."""
    tmp = tmp_path_factory.mktemp("remote-token-registry")
    cert, key = ca.issue(tmp / "tls", ("127.0.0.1",))
    server = _start_registry(
        tmp, ("auth:\n  token:\n"
              f"    realm: https://{TOKEN_HOST}/token\n    service: corp-registry\n"
              f"    issuer: corp-issuer\n    rootcertbundle: {ca.cert}\n"),
        http_extra=f"  tls:\n    certificate: {cert}\n    key: {key}\n", tls=ca.context())
    yield server
    _stop(server.process)


@pytest.fixture
def guarded_proxy() -> Iterator[ConnectProxy]:
    """A proxy that wants credentials, and tunnels only to loopback targets."""
    proxy = start_connect_proxy((PROXY_USER, PROXY_SECRET))
    yield proxy
    proxy.stop()


def with_credentials(proxy: ConnectProxy) -> str:
    return proxy.url.replace("://", f"://{PROXY_USER}:{PROXY_SECRET}@")


def head(server: RegistryServer) -> None:
    async def go() -> None:
        client = OciRegistry(server.url)
        try:
            await client.head(ImageName.parse(f"{server.host}/team/web"), "1.0")
        finally:
            await client.aclose()

    asyncio.run(go())


@pytest.fixture(scope="module")
def tunnelled_token_registry(tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority
                             ) -> Iterator[tuple[RegistryServer, WsgiThread, list[dict[str, Any]]]]:
    """The real CNCF registry over TLS, and its token issuer (JWTs it checks) over TLS on another
    port: two hosts a proxy tunnels to. (registry, issuer, tokens issued)."""
    tmp = tmp_path_factory.mktemp("tunnelled-token-registry")
    key, der = token_signer(tmp / "signer.pem", "proxy test token issuer")
    issued: list[dict[str, Any]] = []
    issuer = serve_wsgi_tls(_token_issuer(key, der, {}, issued), ca, tmp / "issuer-tls")
    cert, tls_key = ca.issue(tmp / "tls", ("127.0.0.1",))
    server = _start_registry(
        tmp, ("auth:\n  token:\n"
              f"    realm: {issuer.url}/token\n    service: test-registry\n"
              f"    issuer: tagsync-test-issuer\n    rootcertbundle: {tmp / 'signer.pem'}\n"),
        http_extra=f"  tls:\n    certificate: {cert}\n    key: {tls_key}\n", tls=ca.context())
    yield server, issuer, issued
    _stop(server.process)
    issuer.stop()


def test_a_token_service_on_another_host_is_reached_through_the_proxys_tunnel_too(
        tunnelled_token_registry: tuple[RegistryServer, WsgiThread, list[dict[str, Any]]],
        ca: CertificateAuthority, guarded_proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An anonymous pull token for a public repository, fetched through the proxy: the registry
    then answers the question (this tag is not there) with the token accepted."""
    server, issuer, issued = tunnelled_token_registry
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", with_credentials(guarded_proxy))

    async def go() -> None:
        client = OciRegistry(server.url)
        try:
            await client.head(ImageName.parse(f"{server.host}/public/web"), "1.0")
        finally:
            await client.aclose()

    with pytest.raises(ImageNotFoundError):
        asyncio.run(go())
    assert issued and issued[-1]["scope"] == ["repository:public/web:pull"]
    assert set(guarded_proxy.connects) == {server.host, host_of(issuer.url)}
    assert guarded_proxy.refused == []


def test_a_proxy_refusing_the_way_to_the_token_service_is_a_registry_error_naming_both(
        remote_token_registry: RegistryServer, ca: CertificateAuthority,
        guarded_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", with_credentials(guarded_proxy))
    with pytest.raises(RegistryError) as caught:
        head(remote_token_registry)
    assert not isinstance(caught.value, RegistryAuthError)  # the proxy refused, not the service
    message = str(caught.value)
    assert guarded_proxy.url.removeprefix("http://") in message and "proxy" in message
    assert TOKEN_HOST in message and "token service" in message and "403" in message
    assert PROXY_SECRET not in message


def test_the_refused_way_to_the_token_service_is_asked_once(
        remote_token_registry: RegistryServer, ca: CertificateAuthority,
        guarded_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's challenge went through the tunnel; the token service's CONNECT was refused
    once and not asked again: no retry can change a proxy's policy."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", with_credentials(guarded_proxy))
    with pytest.raises(RegistryError):
        head(remote_token_registry)
    assert set(guarded_proxy.connects) == {remote_token_registry.host}
    assert guarded_proxy.refused == [f"CONNECT {TOKEN_HOST}:443 HTTP/1.1"]


def test_a_run_through_that_proxy_fails_cleanly_once_and_writes_nothing(
        remote_token_registry: RegistryServer, ca: CertificateAuthority,
        guarded_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`tagsync run` with a retry allowed: the message reaches stderr without the proxy's secret,
    the file is untouched, and the token service's CONNECT was refused once."""
    deploy = tmp_path / "deploy.yaml"
    before = (f"kind: Pod\nspec:\n  containers:\n    - name: web\n"
              f"      image: {remote_token_registry.host}/team/web:1.0@sha256:{'1' * 64}\n")
    deploy.write_text(before)
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: deploy\n    files: ['deploy.yaml']\n    kind: kubernetes\n"
                      f"registries:\n  - host: '{remote_token_registry.host}'\n"
                      f"    url: {remote_token_registry.url}\nrun:\n  retries: 1\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", with_credentials(guarded_proxy))
    code = main(["run", "-c", str(config)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "refused the way to the token service" in err and TOKEN_HOST in err
    assert PROXY_SECRET not in out + err and "Traceback" not in out + err
    assert deploy.read_text() == before
    assert guarded_proxy.refused == [f"CONNECT {TOKEN_HOST}:443 HTTP/1.1"]


# --- httpx's users: GitHub's API and Docker Hub's listing API, over TLS -----------------------


@pytest.fixture
def tls_github(ca: CertificateAuthority, tmp_path: Path) -> Iterator[GitHubServer]:
    """GitHub's contract server (REST and GraphQL checked against GitHub's own descriptions)
    over TLS, holding one repository our token may write."""
    if not contract_files_present():
        pytest.fail("GitHub's API description is missing: run `make deps`")
    gen = serve(lambda app: serve_wsgi_tls(app, ca, tmp_path / "github-tls"))
    server = next(gen)
    server.create_repo(REPO, {"images.yml": b"images: []\n"})
    server.tokens[GITHUB_TOKEN] = "write"
    yield server
    next(gen, None)
    assert server.violations == [], "contract violations:\n" + "\n".join(server.violations)


@pytest.fixture
def tls_hub(ca: CertificateAuthority, tmp_path: Path) -> Iterator[HubServer]:
    """Docker Hub's listing API as documented, over TLS, with two repositories under acme."""
    server = HubServer()
    thread = serve_wsgi_tls(server, ca, tmp_path / "hub-tls")
    server.url = thread.url
    server.add("acme", "api")
    server.add("acme", "web")
    yield server
    thread.stop()
    assert server.violations == [], "Hub contract violations:\n" + "\n".join(server.violations)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    server = start_connect_proxy()
    yield server
    server.stop()


def host_of(url: str) -> str:
    return url.partition("://")[2]


def read_branch_head(github: GitHubServer, auth: gh.TokenSource | None = None) -> str:
    """One REST read, as a run's snapshot makes it: the branch head's sha."""
    api = gh.GitHubApi(github.url, auth or gh.StaticToken(GITHUB_TOKEN), retries=2)
    try:
        return gh.GitHubPublisher(api, REPO, "main").snapshot().head
    finally:
        api.close()


def list_hub(hub: HubServer) -> list[str]:
    async def go() -> list[str]:
        client = DockerHub(hub.url)
        try:
            return await client.list_repositories("acme")
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_githubs_api_is_read_through_the_proxys_tunnel(
        tls_github: GitHubServer, ca: CertificateAuthority, proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert read_branch_head(tls_github) == tls_github.head(REPO)
    assert proxy.connects and set(proxy.connects) == {host_of(tls_github.url)}
    assert proxy.refused == []


def test_a_proxy_refusing_githubs_api_is_a_publish_error_naming_it_once(
        tls_github: GitHubServer, ca: CertificateAuthority, guarded_proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong proxy credentials: 407, asked once (reads are retried, a proxy's refusal is not)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", guarded_proxy.url.replace("://", "://corp:wr0ng-pa55@"))
    with pytest.raises(PublishError) as caught:
        read_branch_head(tls_github)
    message = str(caught.value)
    assert f"the proxy http://***@{host_of(guarded_proxy.url)}" in message
    assert "407" in message and tls_github.url in message
    assert "wr0ng-pa55" not in message and GITHUB_TOKEN not in message
    assert guarded_proxy.connects == [] and len(guarded_proxy.refused) == 1
    assert tls_github.hits == []


def test_a_proxy_refusing_a_github_apps_token_exchange_is_the_same_publish_error(
        tls_github: GitHubServer, ca: CertificateAuthority, guarded_proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The App's JWT → installation token requests go through the proxy first; its refusal
    there is typed too, and the JWT stays out of the message."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    app = gh.AppToken(4242, pem, REPO, tls_github.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", guarded_proxy.url.replace("://", "://corp:wr0ng-pa55@"))
    with pytest.raises(PublishError) as caught:
        read_branch_head(tls_github, app)
    message = str(caught.value)
    assert "proxy" in message and "407" in message and "wr0ng-pa55" not in message
    assert not any(secret in message for secret in app.secrets())
    assert len(guarded_proxy.refused) == 1


def test_docker_hubs_listing_is_read_through_the_proxys_tunnel(
        tls_hub: HubServer, ca: CertificateAuthority, proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert list_hub(tls_hub) == ["acme/api", "acme/web"]
    assert proxy.connects and set(proxy.connects) == {host_of(tls_hub.url)}
    assert proxy.refused == []


def test_a_proxy_refusing_docker_hubs_api_is_a_registry_error_naming_it_once(
        tls_hub: HubServer, ca: CertificateAuthority, guarded_proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", guarded_proxy.url.replace("://", "://corp:wr0ng-pa55@"))
    with pytest.raises(RegistryError) as caught:
        list_hub(tls_hub)
    message = str(caught.value)
    assert f"the proxy http://***@{host_of(guarded_proxy.url)}" in message
    assert "Docker Hub's API" in message and "407" in message and "wr0ng-pa55" not in message
    assert guarded_proxy.connects == [] and len(guarded_proxy.refused) == 1
    assert tls_hub.hits == []
