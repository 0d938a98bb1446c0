"""The real CNCF registry serving HTTPS on 127.0.0.1, with a private CA made for the test.

Registries are reached over TLS in production; this is the same server as
`tests/servers/fixtures.py` starts (Debian `docker-registry`), with an `http.tls` block, so the
handshake, certificate checks and ALPN are Go's own, not a test double's. The CA and the server
certificate are generated here with `cryptography`; the certificate's names are the caller's
choice, so a test can also serve one issued for another name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.servers.fixtures import RegistryServer, _start_registry, _stop

__all__ = ["CertificateAuthority", "alpn_offer", "start_tls_registry", "stop_tls_registry"]


@dataclass(frozen=True)
class CertificateAuthority:
    """A private CA on disk: `cert` is the PEM bundle `SSL_CERT_FILE` names."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, folder: Path, name: str = "tagsync test CA") -> CertificateAuthority:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=7))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        ca = cls(folder / "ca.pem", folder / "ca.key")
        ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ca.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        return ca

    def issue(self, folder: Path, names: tuple[str, ...]) -> tuple[Path, Path]:
        """A server certificate for `names` (IP addresses or DNS names, as subjectAltName):
        (certificate PEM, key PEM) written under `folder`."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "server.pem", folder / "server.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path

    def hashed_folder(self, folder: Path) -> Path:
        """A folder as `SSL_CERT_DIR` names one: the CA under OpenSSL's subject-hash name."""
        folder.mkdir(parents=True, exist_ok=True)
        subject_hash = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in",
                                       str(self.cert)], check=True, capture_output=True,
                                      text=True).stdout.strip()
        shutil.copy(self.cert, folder / f"{subject_hash}.0")
        return folder

    def context(self, check_hostname: bool = True) -> ssl.SSLContext:
        """A client context trusting only this CA (the test side's pushes and checks)."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.check_hostname = check_hostname
        return ctx


def start_tls_registry(tmp: Path, ca: CertificateAuthority,
                       names: tuple[str, ...] = ("127.0.0.1",), *,
                       http2: bool = True) -> RegistryServer:
    """The CNCF registry serving HTTPS with a certificate from `ca` for `names`. The test side
    (readiness check, pushes through `RegistryServer.client`) trusts `ca`; for a certificate
    that does not name 127.0.0.1 it checks the chain but not the name, so the server can still
    be seeded. `http2=False` sets distribution's `http.http2.disabled`."""
    cert, key = ca.issue(tmp / "tls", names)
    block = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
    if not http2:
        block += "  http2:\n    disabled: true\n"
    return _start_registry(tmp, http_extra=block,
                           tls=ca.context(check_hostname="127.0.0.1" in names))


def stop_tls_registry(server: RegistryServer) -> None:
    _stop(server.process)


def alpn_offer(host: str, port: int, ca: CertificateAuthority,
               protocols: tuple[str, ...] = ("h2", "http/1.1")) -> str | None:
    """The application protocol the server picks from `protocols` in the TLS handshake."""
    ctx = ca.context(check_hostname=False)
    ctx.set_alpn_protocols(list(protocols))
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        return tls.selected_alpn_protocol()
