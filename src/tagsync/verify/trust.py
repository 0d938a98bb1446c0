"""A pinned Sigstore trust root, read with `cryptography` alone, and the checks built on it.

The legacy cosign `.sig` form carries a Rekor SET and a Fulcio certificate but no inclusion
proof, which sigstore-python refuses; so the SET, the certificate chain at the log's time, its
SCT and the signer's identity are checked here. Reading `trusted_root.json` here too keeps key-based
and legacy keyless verification free of the `verify` extra (sigstore costs ~0.5 s to import).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from tagsync.errors import ConfigError
from tagsync.patterns import compile_pattern

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json"
# Fulcio's OIDC issuer extensions: v2 holds a DER UTF8String, v1 (deprecated) the raw bytes
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
# Fulcio puts some identities (e.g. GitHub usernames) in an otherName SAN of this type
_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class TrustError(Exception):
    """A check against the trust root failed; `reason` is a `Reason` value name."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Window:
    start: dt.datetime | None
    end: dt.datetime | None

    def holds(self, when: dt.datetime) -> bool:
        return (self.start is None or self.start <= when) and (self.end is None or when <= self.end)


@dataclass(frozen=True)
class TransparencyLog:
    url: str
    log_id: bytes  # sha256 of the key's DER SubjectPublicKeyInfo
    key: PublicKey
    valid: Window


@dataclass(frozen=True)
class CertificateAuthority:
    url: str
    chain: tuple[x509.Certificate, ...]  # leaf-most first, root last
    valid: Window


@dataclass(frozen=True)
class TrustRoot:
    path: Path
    tlogs: tuple[TransparencyLog, ...]
    authorities: tuple[CertificateAuthority, ...]
    ctlogs: tuple[TransparencyLog, ...] = ()

    def log(self, log_id: bytes) -> TransparencyLog | None:
        return next((t for t in self.tlogs if t.log_id == log_id), None)

    def ctlog(self, log_id: bytes) -> TransparencyLog | None:
        return next((t for t in self.ctlogs if t.log_id == log_id), None)


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _window(node: dict[str, Any] | None) -> Window:
    node = node or {}
    return Window(_time(node.get("start")), _time(node.get("end")))


def load_trust_root(path: Path) -> TrustRoot:
    """Read a `trusted_root.json`; a broken or foreign file is a configuration error."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the trust root: {exc.strerror}", file=str(path)) from None
    except ValueError:
        raise ConfigError("the trust root is not JSON", file=str(path)) from None
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(
            TRUSTED_ROOT_MEDIA_TYPE):
        raise ConfigError(f"not a Sigstore trust root (mediaType {TRUSTED_ROOT_MEDIA_TYPE})",
                          file=str(path))
    try:
        tlogs, ctlogs = _logs(doc.get("tlogs")), _logs(doc.get("ctlogs"))
        authorities = []
        for c in doc.get("certificateAuthorities") or []:
            chain = tuple(x509.load_der_x509_certificate(base64.b64decode(raw["rawBytes"]))
                          for raw in c["certChain"]["certificates"])
            authorities.append(CertificateAuthority(c.get("uri", ""), chain, _window(c.get("validFor"))))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the trust root is malformed: {type(exc).__name__}: {exc}",
                          file=str(path)) from None
    return TrustRoot(path, tuple(tlogs), tuple(authorities), tuple(ctlogs))


def _logs(entries: Any) -> list[TransparencyLog]:
    logs = []
    for t in entries or []:
        try:
            key = serialization.load_der_public_key(base64.b64decode(t["publicKey"]["rawBytes"]))
        except UnsupportedAlgorithm:
            continue  # a key type this cryptography cannot load (a newer log's); it verifies nothing here
        if not isinstance(key, PublicKey):
            continue  # a key type no log uses today; it can verify nothing here
        logs.append(TransparencyLog(t.get("baseUrl", ""), base64.b64decode(t["logId"]["keyId"]),
                                    key, _window(t["publicKey"].get("validFor"))))
    return logs


# --- signatures -------------------------------------------------------------------------------


def verify_with_key(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    """cosign's algorithms: ECDSA and RSA (PKCS#1 v1.5) over SHA-256, Ed25519 over the payload."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


def key_id(key: PublicKey) -> str:
    """A short fingerprint for reports: `SHA256:` + base64 of the SPKI's hash, as ssh shows keys."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


# --- Rekor's signed entry timestamp -----------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """A verified Rekor entry: when it was logged and what its hashedrekord body says."""

    integrated_time: dt.datetime
    log_index: int
    payload_sha256: str
    signature: bytes
    public_material: bytes  # the PEM of the key or certificate the entry was made with


def verify_set(root: TrustRoot, bundle_annotation: str) -> LogEntry:
    """Check cosign's `dev.sigstore.cosign/bundle` annotation: the SET is the log's signature
    over the canonical JSON of body, integratedTime, logID and logIndex."""
    try:
        doc = json.loads(bundle_annotation)
        set_sig = base64.b64decode(doc["SignedEntryTimestamp"], validate=True)
        payload = doc["Payload"]
        body, when, log_id, index = (payload["body"], payload["integratedTime"], payload["logID"],
                                     payload["logIndex"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TrustError("malformed", f"the Rekor bundle annotation is unreadable: {exc}") from None
    promise = verify_promise(root, set_sig, body, when, log_id, index)
    return hashedrekord(promise)


@dataclass(frozen=True)
class Promise:
    """A Rekor entry whose inclusion promise (SET) verified: when, where, and its decoded body."""

    integrated_time: dt.datetime
    log_index: int
    body: dict[str, Any]


def verify_promise(root: TrustRoot, set_sig: bytes, body: Any, when: Any, log_id: Any,
                   index: Any) -> Promise:
    """The SET is the log's signature over the canonical JSON of body (base64), integratedTime,
    logID (hex) and logIndex; the log must be one of the trust root's, valid at that time."""
    try:
        if not (isinstance(body, str) and isinstance(log_id, str) and type(when) is int
                and type(index) is int):
            raise TypeError("unexpected field types")
        log_id_bytes = bytes.fromhex(log_id)
    except (ValueError, TypeError) as exc:
        raise TrustError("malformed", f"the Rekor entry is unreadable: {exc}") from None
    log = root.log(log_id_bytes)
    if log is None:
        raise TrustError("untrusted_root", f"Rekor log {log_id[:16]}… is not in the trust root "
                                           f"{root.path.name}")
    # RFC 8785 canonical JSON; for ASCII strings and integers this is sorted compact JSON
    canonical = json.dumps({"body": body, "integratedTime": when, "logID": log_id, "logIndex": index},
                           sort_keys=True, separators=(",", ":")).encode()
    integrated = dt.datetime.fromtimestamp(when, dt.UTC)
    if not verify_with_key(log.key, set_sig, canonical):
        raise TrustError("bad_tlog", "the Rekor SET does not verify (entry edited or not from "
                                     "this log)")
    if not log.valid.holds(integrated):
        raise TrustError("untrusted_root", f"the Rekor key was not valid at {integrated:%Y-%m-%dT%H:%M:%SZ}")
    try:
        entry = json.loads(base64.b64decode(body, validate=True))
        if not isinstance(entry, dict):
            raise TypeError("the entry is not an object")
    except (ValueError, TypeError) as exc:
        raise TrustError("malformed", f"the Rekor entry body is unreadable: {exc}") from None
    return Promise(integrated, index, entry)


def hashedrekord(promise: Promise) -> LogEntry:
    """The fields of a hashedrekord entry this signature must match."""
    entry = promise.body
    try:
        if entry.get("kind") != "hashedrekord":
            raise ValueError(f"entry kind {entry.get('kind')!r}, expected hashedrekord")
        spec = entry["spec"]
        hashed = spec["data"]["hash"]
        if hashed.get("algorithm") != "sha256":
            raise ValueError(f"hash algorithm {hashed.get('algorithm')!r}")
        return LogEntry(promise.integrated_time, promise.log_index, str(hashed["value"]),
                        base64.b64decode(spec["signature"]["content"]),
                        base64.b64decode(spec["signature"]["publicKey"]["content"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrustError("malformed", f"the Rekor entry body is unreadable: {exc}") from None


# --- Fulcio certificates ------------------------------------------------------------------------


def verify_chain(root: TrustRoot, leaf: x509.Certificate, when: dt.datetime) -> list[x509.Certificate]:
    """The leaf must chain to a Fulcio CA of the trust root, every certificate valid at `when`
    (the log's time: Fulcio certificates live ten minutes), and carry the code-signing EKU.
    Returns the chain, leaf first."""
    # Fulcio leaves carry code signing, not the client-auth EKU a client verifier expects
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    last: Exception | None = None
    for ca in root.authorities:
        if not ca.valid.holds(when):
            continue
        verifier = (PolicyBuilder().store(Store([ca.chain[-1]])).time(when)
                    .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
                    .build_client_verifier())
        try:
            chain = verifier.verify(leaf, list(ca.chain[:-1])).chain
        except (VerificationError, x509.UnsupportedGeneralNameType) as exc:
            last = exc
            continue
        break
    else:
        raise TrustError("untrusted_root", "the signing certificate does not chain to a Fulcio CA of "
                         f"{root.path.name} at {when:%Y-%m-%dT%H:%M:%SZ}"
                         + (f" ({last})" if last else ""))
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise TrustError("untrusted_root", "the signing certificate lacks the code-signing usage")
    return list(chain)


def verify_sct(root: TrustRoot, leaf: x509.Certificate, issuer: x509.Certificate) -> None:
    """The certificate was logged in Certificate Transparency: one of its embedded SCTs must be
    signed by a CT log of the trust root, over the precertificate as RFC 6962 (3.2) defines it."""
    try:
        scts = leaf.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        raise TrustError("untrusted_root", "the signing certificate carries no SCT") from None
    issuer_key_hash = hashlib.sha256(issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
    tbs = leaf.tbs_precertificate_bytes
    for sct in scts:
        log = root.ctlog(sct.log_id)
        if log is None or sct.entry_type is not x509.certificate_transparency.LogEntryType.PRE_CERTIFICATE:
            continue
        when = sct.timestamp.replace(tzinfo=dt.UTC)
        millis = round(when.timestamp() * 1000)
        signed = (b"\x00\x00" + millis.to_bytes(8, "big") + b"\x00\x01" + issuer_key_hash
                  + len(tbs).to_bytes(3, "big") + tbs
                  + len(sct.extension_bytes).to_bytes(2, "big") + sct.extension_bytes)
        if _verify_sct_signature(log.key, sct, signed) and log.valid.holds(when):
            return
    raise TrustError("untrusted_root", "no SCT of the signing certificate is from a CT log of "
                                       f"{root.path.name}")


def _verify_sct_signature(key: PublicKey, sct: Any, signed: bytes) -> bool:
    algorithm = sct.signature_hash_algorithm
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sct.signature, signed, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(sct.signature, signed, padding.PKCS1v15(), algorithm)
        else:
            key.verify(sct.signature, signed)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """The SAN values Fulcio uses for identities: emails, URIs and its otherName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    values: list[str] = list(san.get_values_for_type(x509.RFC822Name))
    values += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _OTHERNAME:
            values.append(_der_utf8(other.value))
    return values


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded (v2 extension, else the deprecated v1 one)."""
    for oid, der in ((ISSUER_V2, True), (ISSUER_V1, False)):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw: bytes = ext.value  # type: ignore[attr-defined]  # UnrecognizedExtension
        return _der_utf8(raw) if der else raw.decode("utf-8", "replace")
    return None


def _der_utf8(raw: bytes) -> str:
    """A DER UTF8String (tag 0x0c, short or long length) as text; raw text if it is not one."""
    if len(raw) >= 2 and raw[0] == 0x0C:
        length, offset = raw[1], 2
        if length & 0x80:
            n = length & 0x7F
            length, offset = int.from_bytes(raw[2:2 + n], "big"), 2 + n
        return raw[offset:offset + length].decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class IdentityRule:
    """Who may sign: an exact SAN or a regular expression over it, and the OIDC issuer."""

    issuer: str
    identity: str | None = None
    identity_regex: str | None = None

    def check(self, cert: x509.Certificate) -> str:
        """The matching identity, for the report; raises `TrustError` when none matches."""
        issuer = certificate_issuer(cert)
        identities = certificate_identities(cert)
        if issuer != self.issuer:
            raise TrustError("wrong_identity", f"certificate issuer {issuer!r} is not {self.issuer!r}")
        for value in identities:
            if (value == self.identity if self.identity is not None
                    else compile_pattern(self.identity_regex or "", "verify.identity_regex")
                    .fullmatch(value) is not None):
                return value
        wanted = self.identity if self.identity is not None else f"/{self.identity_regex}/"
        raise TrustError("wrong_identity", f"certificate identity {', '.join(identities) or 'none'} "
                                           f"does not match {wanted}")
