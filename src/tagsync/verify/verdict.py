"""The answer to "may this digest be written?", with the reason a person can act on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    """Why a digest was accepted or refused; stable words for reports and `--json`."""

    ok = "ok"
    no_signature = "no signature"  # nothing signature-like is attached to the digest
    digest_mismatch = "digest mismatch"  # a signature, but over another digest
    bad_signature = "bad signature"  # does not verify (wrong key, tampered payload)
    wrong_identity = "wrong identity"  # keyless: certificate SAN or OIDC issuer not the policy's
    untrusted_root = "untrusted root"  # chain or log not in the pinned trust root
    bad_tlog = "bad transparency log entry"  # SET / inclusion proof invalid, or not the signature's
    missing_tlog = "no transparency log entry"  # the policy requires one
    malformed = "malformed signature"  # the signature artifacts cannot be read
    wrong_payload = "wrong payload type"  # signed, but not a cosign image signature payload
    reference_mismatch = "reference mismatch"  # signed for another repository (match_reference)


# when several signatures fail, the one that got furthest explains best what is wrong
_DEPTH = {Reason.no_signature: 0, Reason.malformed: 1, Reason.missing_tlog: 2,
          Reason.untrusted_root: 3, Reason.bad_tlog: 4, Reason.bad_signature: 5,
          Reason.wrong_payload: 6, Reason.digest_mismatch: 6, Reason.reference_mismatch: 6,
          Reason.wrong_identity: 7, Reason.ok: 8}


@dataclass(frozen=True)
class Finding:
    """One signature looked at: what it is, and whether and why it fails the policy."""

    form: str  # "cosign-key", "cosign-keyless", "sigstore-bundle"
    reason: Reason
    detail: str
    signer: str | None = None  # "key SHA256:…", or "<SAN> (issuer <url>)"
    signed_at: dt.datetime | None = None  # the transparency log's time, when verified
    location: str = ""  # where it was found: "sha256-….sig layer 0", "referrer sha256:…"


@dataclass(frozen=True)
class Verdict:
    """`ok` with the accepting signature, or refused with the reason and every finding."""

    image: str
    digest: str
    ok: bool
    reason: Reason
    detail: str
    accepted: Finding | None = None
    findings: tuple[Finding, ...] = ()
    platforms: tuple[Verdict, ...] = field(default=())  # per platform, for `multi_arch: platforms`

    @property
    def signer(self) -> str | None:
        return self.accepted.signer if self.accepted else None

    def __str__(self) -> str:
        if self.ok:
            return f"{self.image}@{self.digest}: signed by {self.signer}"
        return f"{self.image}@{self.digest}: not verified: {self.reason}: {self.detail}"


def from_findings(image: str, digest: str, findings: list[Finding]) -> Verdict:
    """Accept on the first finding that passes; otherwise refuse with the deepest failure."""
    for f in findings:
        if f.reason is Reason.ok:
            return Verdict(image, digest, True, Reason.ok, f.detail, f, tuple(findings))
    if not findings:
        return Verdict(image, digest, False, Reason.no_signature,
                       "no cosign signature or Sigstore bundle is attached to this digest")
    worst = max(findings, key=lambda f: _DEPTH[f.reason])
    where = f" ({worst.location})" if worst.location else ""
    return Verdict(image, digest, False, worst.reason, worst.detail + where, None, tuple(findings))
