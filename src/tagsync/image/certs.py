"""The image's CA roots as a hashed folder (OpenSSL's `c_rehash` layout), from certifi's bundle.

Why: OpenSSL parses a CA *file* whole each time a TLS context loads it (117 roots in certifi, about 20 ms
here), and a cold start builds three such contexts before its first request (aiohttp builds two
at import, the registry client one). From a hashed *folder* OpenSSL reads only the root a
handshake names, when it names it. The image sets `SSL_CERT_DIR` to this folder and
`SSL_CERT_FILE` to an empty bundle beside it, so every context is cheap and trusts exactly the
roots it trusted before (certifi's).

A file's name is the subject hash OpenSSL looks it up by (`X509_NAME_hash`: SHA-1 over the
subject's canonical DER, the first four bytes read little-endian) and a counter for roots that
share one.
"""

from __future__ import annotations

import hashlib

from tagsync.errors import BuildError

FOLDER = "tagsync-ca"  # beside the task root's packages
EMPTY = "none.pem"  # SSL_CERT_FILE: no bundle to parse whole

# ASN.1 string types OpenSSL canonicalises (ASN1_MASK_CANON), with how each decodes.
_STRINGS = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1A: "latin-1",
            0x1E: "utf-16-be", 0x1C: "utf-32-be"}
_SPACE = " \t\n\v\f\r"


def _read(der: bytes, at: int) -> tuple[int, bytes, int]:
    """One DER element at `at`: (tag, contents, where the next element starts)."""
    if at + 2 > len(der):
        raise ValueError("truncated")
    tag, size, at = der[at], der[at + 1], at + 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4 or at + count > len(der):
            raise ValueError("bad length")
        size, at = int.from_bytes(der[at:at + count], "big"), at + count
    if at + size > len(der):
        raise ValueError("truncated")
    return tag, der[at:at + size], at + size


def _encode(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + contents


def _canonical_text(text: str) -> bytes:
    """Trimmed, inner whitespace runs as one space, ASCII lowercased (as OpenSSL does)."""
    words = "".join(" " if ch in _SPACE else ch for ch in text).split(" ")
    folded = " ".join(w for w in words if w)
    return "".join(ch.lower() if ch < "\x80" else ch for ch in folded).encode()


def subject_hash(name: bytes) -> int:
    """OpenSSL's `X509_NAME_hash_ex` of a DER-encoded Name."""
    tag, rdns, _ = _read(name, 0)
    if tag != 0x30:
        raise ValueError("not a Name")
    canonical = b""
    at = 0
    while at < len(rdns):
        tag, members, at = _read(rdns, at)
        if tag != 0x31:
            raise ValueError("not an RDN")
        encoded: list[bytes] = []
        inner = 0
        while inner < len(members):
            tag, pair, inner = _read(members, inner)
            oid_tag, oid, rest = _read(pair, 0)
            value_tag, value, _ = _read(pair, rest)
            if value_tag in _STRINGS:
                value_tag, value = 0x0C, _canonical_text(value.decode(_STRINGS[value_tag]))
            encoded.append(_encode(0x30, _encode(oid_tag, oid) + _encode(value_tag, value)))
        if encoded:  # OpenSSL leaves an empty RDN out
            canonical += _encode(0x31, b"".join(sorted(encoded)))  # DER: a SET's members in order
    digest = hashlib.sha1(canonical, usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "little")


def _subject(cert: bytes) -> bytes:
    """The subject Name (DER, whole) of a DER certificate: tbsCertificate's sixth field, or its
    fifth when the optional [0] version is absent."""
    _, tbs, _ = _read(cert, 0)
    _, body, _ = _read(tbs, 0)
    at, fields = 0, list[tuple[int, bytes]]()
    while at < len(body) and len(fields) < 6:
        start = at
        tag, _, at = _read(body, at)
        fields.append((tag, body[start:at]))
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    if len(fields) < 5 or fields[4][0] != 0x30:
        raise ValueError("no subject")
    return fields[4][1]


_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"


def pem_blocks(bundle: bytes) -> list[bytes]:
    """The base64 text of each `BEGIN CERTIFICATE` (then a line break) ... `END CERTIFICATE`
    block, in order, as the non-overlapping leftmost matches a lazy `(.*?)` would find. A scan:
    the regular expression retried every BEGIN of a bundle with no END to the bundle's end."""
    out: list[bytes] = []
    at = 0
    while (begin := bundle.find(_BEGIN, at)) >= 0:
        start = begin + len(_BEGIN)
        start += 2 if bundle.startswith(b"\r\n", start) else 1 if bundle.startswith(b"\n", start) else 0
        if start == begin + len(_BEGIN):  # no line break after it: not a block's start
            at = begin + 1
            continue
        end = bundle.find(_END, start)
        if end < 0:  # no END after this BEGIN, so none after any later one
            break
        out.append(bundle[start:end])
        at = end + len(_END)
    return out


def hashed_folder(bundle: bytes) -> dict[str, bytes]:
    """File name → PEM of one root, for every certificate of a PEM bundle (as it is written:
    a root some parser would frown at is still the same root OpenSSL trusted)."""
    import base64

    out: dict[str, bytes] = {}
    seen: set[bytes] = set()
    for block in pem_blocks(bundle):
        try:
            der = base64.b64decode(b"".join(block.split()), validate=True)
            prefix = f"{subject_hash(_subject(der)):08x}"
        except (ValueError, UnicodeDecodeError) as exc:
            raise BuildError(f"a certificate of the CA bundle does not parse: {exc}") from None
        if der in seen:
            continue
        seen.add(der)
        n = 0
        while f"{prefix}.{n}" in out:
            n += 1
        body = base64.encodebytes(der).replace(b"\n", b"")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        out[f"{prefix}.{n}"] = b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + \
            b"\n-----END CERTIFICATE-----\n"
    if not out:
        raise BuildError("the CA bundle holds no certificate")
    return out
