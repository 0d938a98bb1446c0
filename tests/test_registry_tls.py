"""HTTPS registries: the real CNCF registry serving TLS with a private CA, reached through
tagsync's own run (`tagsync run` on a small catalog), directly and through a CONNECT proxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tagsync.cli import main
from tests.servers.connect_proxy import ConnectProxy, start_connect_proxy
from tests.servers.fixtures import RegistryServer, unique_namespace
from tests.servers.tls import CertificateAuthority, alpn_offer, start_tls_registry, stop_tls_registry

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: web
          image: {host}/{ns}/web:1.0@{digest}   # pinned
"""


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory,
                 ca: CertificateAuthority) -> Iterator[RegistryServer]:
    server = start_tls_registry(tmp_path_factory.mktemp("tls-registry"), ca)
    yield server
    stop_tls_registry(server)


@pytest.fixture(scope="module")
def misnamed_registry(tmp_path_factory: pytest.TempPathFactory,
                      ca: CertificateAuthority) -> Iterator[RegistryServer]:
    """Trusted CA, but its certificate names registry.other.test, not 127.0.0.1."""
    server = start_tls_registry(tmp_path_factory.mktemp("misnamed-registry"), ca,
                                ("registry.other.test",))
    yield server
    stop_tls_registry(server)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    server = start_connect_proxy()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the machine's environment decides trust or routing in these tests."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                 "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Checkout:
    config: Path
    deploy: Path
    host: str
    ns: str
    old: str  # the digest the file pins
    new: str  # the registry's digest for the same tag now

    def pinned(self, digest: str) -> bytes:
        """The deploy file pinning `digest`."""
        return DEPLOY.format(host=self.host, ns=self.ns, digest=digest).encode()

    def before(self) -> bytes:
        return self.pinned(self.old)


def checkout(server: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> Checkout:
    """A deploy file pinning an old digest of `web:1.0`, whose tag now has another one. One
    retry (`run.retries`), so a failure wrongly retried shows as a second tunnel or refusal."""
    ns = unique_namespace("tls", request)
    old = server.push(f"{ns}/web", "1.0", f"{ns} old").digest
    new = server.push(f"{ns}/web", "1.0", f"{ns} new").digest
    c = Checkout(tmp_path / "tagsync.yaml", tmp_path / "deploy" / "web.yaml", server.host, ns,
                 old, new)
    c.deploy.parent.mkdir()
    c.deploy.write_bytes(c.before())
    c.config.write_text(
        "catalogs:\n  - name: deploy\n    files: ['deploy/*.yaml']\n    kind: kubernetes\n"
        f"registries:\n  - host: '{server.host}'\n    url: {server.url}\n"
        "run:\n  retries: 1\n")
    return c


def run_cli(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, str]:
    code = main(["run", "-c", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_tls_registry_offers_http2_by_alpn(tls_registry: RegistryServer,
                                               ca: CertificateAuthority) -> None:
    host, port = tls_registry.host.split(":")
    assert alpn_offer(host, int(port), ca) == "h2"
    assert alpn_offer(host, int(port), ca, ("http/1.1",)) == "http/1.1"


def test_with_ssl_cert_file_naming_the_private_ca_the_digest_is_read_and_written(
        tls_registry: RegistryServer, ca: CertificateAuthority, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    code, out, err = run_cli(capsys, c.config)
    assert code == 0, out + err
    assert c.deploy.read_bytes() == c.pinned(c.new)


def test_ssl_cert_dir_naming_a_hashed_folder_with_the_ca_is_trusted_too(
        tls_registry: RegistryServer, ca: CertificateAuthority, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """As for httpx (GitHub, Docker Hub's API) and OpenSSL itself: one setting trusts a CA
    for every client of the run."""
    c = checkout(tls_registry, tmp_path, request)
    monkeypatch.setenv("SSL_CERT_DIR", str(ca.hashed_folder(tmp_path / "certs")))
    code, out, err = run_cli(capsys, c.config)
    assert code == 0, out + err
    assert c.deploy.read_bytes() == c.pinned(c.new)


def test_an_untrusted_certificate_is_a_typed_error_naming_the_host(
        tls_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    code, out, err = run_cli(capsys, c.config)
    assert code == 1
    assert tls_registry.host in err
    assert "certificate" in err and "not trusted" in err
    assert "Traceback" not in out + err
    assert c.deploy.read_bytes() == c.before()


def test_a_certificate_for_another_name_is_refused_the_same_way(
        misnamed_registry: RegistryServer, ca: CertificateAuthority, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(misnamed_registry, tmp_path, request)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))  # the CA is trusted; the name is wrong
    code, out, err = run_cli(capsys, c.config)
    assert code == 1
    assert misnamed_registry.host in err
    assert "certificate" in err and "not trusted" in err and "mismatch" in err
    assert "SSL_CERT_FILE" not in err  # no CA bundle fixes a certificate for another name
    assert "Traceback" not in out + err
    assert c.deploy.read_bytes() == c.before()


def assert_went_through(proxy: ConnectProxy, c: Checkout, registry: RegistryServer) -> None:
    """The run wrote the new digest, and every request to the registry took the proxy's tunnel."""
    assert c.deploy.read_bytes() == c.pinned(c.new)
    assert proxy.connects and set(proxy.connects) == {registry.host}
    assert proxy.refused == []


def test_https_proxy_carries_the_requests_through_a_connect_tunnel(
        tls_registry: RegistryServer, ca: CertificateAuthority, proxy: ConnectProxy,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    code, out, err = run_cli(capsys, c.config)
    assert code == 0, out + err
    assert_went_through(proxy, c, tls_registry)


def test_no_proxy_sends_the_registry_around_the_https_proxy(
        tls_registry: RegistryServer, ca: CertificateAuthority, proxy: ConnectProxy,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    code, out, err = run_cli(capsys, c.config)
    assert code == 0, out + err
    assert c.deploy.read_bytes() == c.pinned(c.new)
    assert proxy.connects == [] and proxy.refused == []


def test_an_untrusted_certificate_through_the_proxy_is_the_same_error_and_not_retried(
        tls_registry: RegistryServer, proxy: ConnectProxy, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    code, out, err = run_cli(capsys, c.config)
    assert code == 1
    assert tls_registry.host in err and "certificate" in err and "not trusted" in err
    assert "Traceback" not in out + err
    # the tunnel opened once: the registry's certificate failed, and no retry can change it
    assert proxy.connects == [tls_registry.host]
    assert c.deploy.read_bytes() == c.before()


def run_through_guarded_proxy(credentials: str, c: Checkout, ca: CertificateAuthority,
                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                              ) -> tuple[int, str, str, ConnectProxy]:
    """A run whose HTTPS_PROXY URL carries `credentials`, through a proxy that wants
    corp:pr0xy-s3cret: (exit code, stdout, stderr, the proxy)."""
    proxy = start_connect_proxy(("corp", "pr0xy-s3cret"))
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("://", f"://{credentials}@"))
        code, out, err = run_cli(capsys, c.config)
    finally:
        proxy.stop()
    return code, out, err, proxy


def test_https_proxy_credentials_in_its_url_are_sent_to_the_proxy(
        tls_registry: RegistryServer, ca: CertificateAuthority, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    code, out, err, proxy = run_through_guarded_proxy("corp:pr0xy-s3cret", c, ca, monkeypatch, capsys)
    assert code == 0, out + err
    assert_went_through(proxy, c, tls_registry)


def test_a_proxy_refusing_our_credentials_is_a_clear_error_that_leaks_none(
        tls_registry: RegistryServer, ca: CertificateAuthority, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    c = checkout(tls_registry, tmp_path, request)
    code, out, err, proxy = run_through_guarded_proxy("corp:wr0ng-pa55", c, ca, monkeypatch, capsys)
    assert code == 1
    assert "proxy" in err and "407" in err and tls_registry.host in err
    assert "wr0ng-pa55" not in out + err and "Traceback" not in out + err
    assert proxy.connects == [] and len(proxy.refused) == 1  # refused once, not retried
    assert c.deploy.read_bytes() == c.before()
