"""The image's CA roots as a hashed folder, and the one trust decision every HTTPS client makes.

OpenSSL parses a CA bundle whole each time a context loads it; from a hashed folder it reads
the one root a handshake names. These tests hold the folder to OpenSSL's own naming and lookup,
and `tls_context` to how OpenSSL reads SSL_CERT_FILE and SSL_CERT_DIR.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tagsync.errors import BuildError, ConfigError
from tagsync.http_policy import tls_context
from tagsync.image.certs import EMPTY, hashed_folder, subject_hash

SYSTEM = Path("/etc/ssl/certs")  # Debian's ca-certificates: OpenSSL's own hashed links


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(name: x509.Name) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _folder(tmp: Path, bundle: bytes) -> Path:
    folder = tmp / "ca"
    folder.mkdir()
    for name, pem in {**hashed_folder(bundle), EMPTY: b""}.items():
        (folder / name).write_bytes(pem)
    return folder


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    """A TLS server on 127.0.0.1 whose certificate a private CA signed: (port, the CA's PEM)."""
    # The root's subject: one two-valued RDN in PrintableString; the leaf names its issuer in
    # UTF8String, lowercase, padded, members the other way round. OpenSSL matches them by their
    # canonical form, so the folder must be named by it too.
    printable = x509.name._ASN1Type.PrintableString  # cryptography has no public way to choose it
    ca, ca_key = _ca(x509.Name([x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Zeta  Unit", printable),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tagsync Test CA", printable)])]))
    issuer = x509.Name([x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.COMMON_NAME, "tagsync test ca"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, " zeta unit ")])])
    key = _key()
    now = dt.datetime.now(dt.UTC)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.test")]))
            .issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    (tmp_path / "leaf.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello")
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], _pem(ca)
    stop.set()
    thread.join()
    listener.close()


def _handshake(ctx: ssl.SSLContext, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.recv(5)


def _count(bundle: Path) -> int:
    return bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----")


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@pytest.mark.skipif(not (SYSTEM / "ca-certificates.crt").is_file(), reason="Debian's ca-certificates")
def test_each_root_is_named_by_the_hash_openssl_looks_it_up_by() -> None:
    """Debian's /etc/ssl/certs holds OpenSSL's own hashed links to the same kind of roots."""
    folder = hashed_folder((SYSTEM / "ca-certificates.crt").read_bytes())
    for name, pem in folder.items():
        linked = {_der(p.resolve().read_bytes()) for p in SYSTEM.glob(f"{name[:8]}.*")}
        assert _der(pem) in linked, name
    assert len(folder) == _count(SYSTEM / "ca-certificates.crt") > 100


def _name(string_type: int, value: str) -> bytes:
    """The DER of a Name with one common name of the given ASN.1 string type."""
    def tlv(tag: int, body: bytes) -> bytes:
        return bytes([tag, len(body)]) + body

    cn = tlv(0x06, bytes([0x55, 0x04, 0x03]))  # 2.5.4.3
    return tlv(0x30, tlv(0x31, tlv(0x30, cn + tlv(string_type, value.encode()))))


def test_names_are_hashed_as_openssl_canonicalises_them() -> None:
    """Case, inner and outer whitespace and the string type do not change OpenSSL's hash."""
    utf8, printable = 0x0C, 0x13
    plain = subject_hash(_name(utf8, "tagsync test ca"))
    assert subject_hash(_name(utf8, "  TagSync \t Test   CA ")) == plain
    assert subject_hash(_name(printable, "tagsync test ca")) == plain
    assert subject_hash(_name(utf8, "other")) != plain
    assert plain == subject_hash(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                               "Tagsync Test CA")]).public_bytes())


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command (make test installs it)")
@pytest.mark.parametrize("subject", [
    [[(NameOID.COMMON_NAME, "T61 caf\xe9 \x9c\xff", 0x14)]],
    [[(NameOID.COMMON_NAME, "BMP  Name\u00a0Here ", 0x1E)]],
    [[(NameOID.COMMON_NAME, "Universal \U0001F600 X", 0x1C)]],
    [[(NameOID.COMMON_NAME, " A\v\fB\r\nC ", 0x0C)]],
    [[(NameOID.ORGANIZATIONAL_UNIT_NAME, "Zeta", 0x13), (NameOID.COMMON_NAME, "Alpha", 0x13)]],
    [[(NameOID.COMMON_NAME, "Alpha", 0x13), (NameOID.ORGANIZATIONAL_UNIT_NAME, "Zeta", 0x13)]],
    [[(NameOID.COUNTRY_NAME, "DE", 0x13)], [], [(NameOID.COMMON_NAME, "ÄÖÜ Root", 0x0C)]],
    [[(NameOID.SERIAL_NUMBER, "0042", 0x12)]],  # NumericString: not canonicalised
], ids=["t61", "bmp", "universal", "whitespace", "multi-valued", "multi-valued-reversed",
        "empty-rdn", "numeric"])
def test_subject_hashes_match_openssls_own(subject: list[list[tuple[x509.ObjectIdentifier, str, int]]],
                                           tmp_path: Path) -> None:
    """Every string type, whitespace rule and RDN shape OpenSSL canonicalises, against
    `openssl x509 -subject_hash` on a certificate whose subject is written byte for byte."""
    codecs = {0x0C: "utf-8", 0x13: "ascii", 0x12: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be",
              0x1C: "utf-32-be"}

    def tlv(tag: int, body: bytes) -> bytes:
        size = len(body)
        head = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
        return bytes([tag]) + head + body

    def oid(dotted: str) -> bytes:
        first, second, *rest = (int(x) for x in dotted.split("."))
        out = bytes([40 * first + second])
        for n in rest:
            chunk = [n & 0x7F]
            while n > 0x7F:
                n >>= 7
                chunk.insert(0, 0x80 | (n & 0x7F))
            out += bytes(chunk)
        return tlv(0x06, out)

    name = tlv(0x30, b"".join(
        tlv(0x31, b"".join(tlv(0x30, oid(o.dotted_string) + tlv(t, v.encode(codecs[t])))
                           for o, v, t in rdn)) for rdn in subject))
    # A certificate carrying that subject: build one, splice the exact bytes in for its issuer
    # and subject, and sign it again (Certificate = SEQUENCE {tbs, algorithm, signature}).
    cert, key = _ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placeholder")]))
    placeholder = cert.subject.public_bytes()
    tbs = tlv(0x30, _strip(cert.tbs_certificate_bytes.replace(placeholder, name)))
    _, rest = _split(_strip(cert.public_bytes(serialization.Encoding.DER)))
    algorithm, _ = _split(rest)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    spliced = tlv(0x30, tbs + algorithm + tlv(0x03, b"\x00" + signature))
    pem = ssl.DER_cert_to_PEM_cert(spliced).encode()
    (tmp_path / "c.pem").write_bytes(pem)
    assert OPENSSL is not None
    want = subprocess.run([OPENSSL, "x509", "-noout", "-subject_hash", "-in", str(tmp_path / "c.pem")],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert f"{subject_hash(name):08x}" == want
    assert list(hashed_folder(pem)) == [f"{want}.0"]


def _strip(der: bytes) -> bytes:
    """The contents of the outermost DER element."""
    size = der[1]
    if size & 0x80:
        count = size & 0x7F
        return der[2 + count:]
    return der[2:]


def _split(data: bytes) -> tuple[bytes, bytes]:
    """(the first DER element, what follows it)."""
    size, at = data[1], 2
    if size & 0x80:
        count = size & 0x7F
        size, at = int.from_bytes(data[2:2 + count], "big"), 2 + count
    return data[:at + size], data[at + size:]


def test_the_folder_holds_every_root_once_and_shares_a_hash_by_counting() -> None:
    bundle = Path(certifi.where()).read_bytes()
    folder = hashed_folder(bundle + bundle)  # a root twice is one file
    assert len(folder) == _count(Path(certifi.where()))
    twin, _ = _ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Twin")]))
    other, _ = _ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twin")]))  # same hash
    names = sorted(hashed_folder(_pem(twin) + _pem(other)))
    assert [n[-2:] for n in names] == [".0", ".1"] and names[0][:8] == names[1][:8]


def test_a_bundle_that_does_not_parse_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="does not parse"):
        hashed_folder(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    with pytest.raises(BuildError, match="no certificate"):
        hashed_folder(b"")


def test_a_handshake_verifies_from_the_folder_alone(
        tls_server: tuple[int, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port, ca = tls_server
    folder = _folder(tmp_path, Path(certifi.where()).read_bytes() + ca)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / EMPTY))
    ctx = tls_context()
    assert ctx.cert_store_stats()["x509_ca"] == 0  # nothing parsed up front
    assert _handshake(ctx, port) == b"hello"


def test_a_root_missing_from_the_folder_fails_the_handshake(
        tls_server: tuple[int, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port, _ = tls_server
    folder = _folder(tmp_path, Path(certifi.where()).read_bytes())
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / EMPTY))
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_context(), port)


def test_without_either_variable_certifis_roots_are_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert tls_context().cert_store_stats()["x509_ca"] == _count(Path(certifi.where()))


def test_a_bundle_named_by_ssl_cert_file_is_trusted(
        tls_server: tuple[int, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port, ca = tls_server
    (tmp_path / "private.pem").write_bytes(ca)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "private.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert _handshake(tls_context(), port) == b"hello"


def test_an_unreadable_bundle_is_a_config_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"missing\.pem"):
        tls_context()


def test_with_the_images_environment_no_context_parses_a_bundle_at_all(tmp_path: Path) -> None:
    """What makes the cold start cheap: aiohttp's two import-time contexts and tagsync's own
    read no root until a handshake names one."""
    folder = _folder(tmp_path, Path(certifi.where()).read_bytes())
    code = ("import json, ssl, aiohttp.connector as c\n"
            "from tagsync.http_policy import tls_context\n"
            "print(json.dumps([x.cert_store_stats()['x509_ca'] for x in "
            "(c._SSL_CONTEXT_VERIFIED, ssl.create_default_context(), tls_context())]))")
    env = {"PATH": "/usr/bin:/bin", "SSL_CERT_DIR": str(folder), "SSL_CERT_FILE": str(folder / EMPTY),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == [0, 0, 0]


def _site(tmp: Path) -> Path:
    (tmp / "site" / "certifi").mkdir(parents=True)
    (tmp / "site" / "certifi" / "cacert.pem").write_bytes(Path(certifi.where()).read_bytes())
    return tmp / "site"


def test_the_image_points_openssl_at_the_folder_and_an_empty_bundle(tmp_path: Path) -> None:
    from tagsync.image.pipeline import ca_folder

    entries, env = ca_folder(_site(tmp_path), "/var/task", tmp_path / "out", {})
    assert env == {"SSL_CERT_DIR": "/var/task/tagsync-ca", "SSL_CERT_FILE": "/var/task/tagsync-ca/none.pem"}
    assert "var/task/tagsync-ca/none.pem" in entries and len(entries) == _count(Path(certifi.where())) + 1


@pytest.mark.parametrize("chosen", ["SSL_CERT_DIR", "SSL_CERT_FILE"])
def test_a_base_that_chooses_its_own_roots_keeps_them(chosen: str, tmp_path: Path) -> None:
    """The two variables only work as a pair: half of ours beside half of the base's would
    trust a folder that is not hashed, or add to a bundle the base meant to be the whole."""
    from tagsync.image.pipeline import ca_folder

    assert ca_folder(_site(tmp_path), "/var/task", tmp_path / "out", {chosen: "/etc/pki/x"}) == ({}, {})


def test_a_missing_ca_folder_is_a_config_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL takes a folder that is not there and fails every handshake later; say it now."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-folder"))
    with pytest.raises(ConfigError, match=r"SSL_CERT_DIR=.*no-such-folder.*not a folder"):
        tls_context()
