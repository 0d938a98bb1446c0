"""HTTPS clients other than the registry's manifest requests, through a CONNECT proxy
(`HTTPS_PROXY`): the registry's token service, reached on its own host, and refused by the proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.errors import RegistryAuthError, RegistryError
from tagsync.reference import ImageName
from tagsync.registry.oci import OciRegistry
from tests.servers.connect_proxy import ConnectProxy, start_connect_proxy
from tests.servers.fixtures import RegistryServer, _start_registry, _stop
from tests.servers.tls import CertificateAuthority

PROXY_USER, PROXY_SECRET = "corp", "pr0xy-s3cret"
TOKEN_HOST = "auth.corp.test"  # not loopback: the proxy's allow-list refuses it (403)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the machine's environment decides trust or routing in these tests."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                 "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"))


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
