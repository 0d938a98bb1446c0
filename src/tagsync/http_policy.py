"""What every HTTP exchange of tagsync follows, whichever client sends it (aiohttp for the
registries, httpx for Docker Hub's API and GitHub; docs/architecture.md says why two): which
answers are worth another try, how long to back off, how to read a server's "wait until", and
what never reaches a message or a log.

Pure functions and one small dataclass, no client: each client keeps its own loop (async or
not) and asks this module the questions, so the answers cannot differ between them.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

# Answers a retry may fix: rate limited, or a proxy/gateway that lost the backend for a moment.
# (500 is a bug on the server's side; retrying it hammers a broken server.)
RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Anything above this is a point in time (epoch seconds, as Docker Hub's `X-Retry-After` and
# GitHub's `x-ratelimit-reset` send it), not a number of seconds to wait.
_EPOCH = 10**9


@dataclass
class RetryPolicy:
    """`attempts` retries after the first try, exponentially spaced, with jitter so that many
    clients told to back off at once do not come back at once."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        backoff = self.base_delay * (2**attempt)
        return float(min(backoff * (0.5 + random.random() / 2), self.max_delay))


def wait_from(value: str | None, now: float | None = None, *, strict: bool = False
              ) -> float | None:
    """Seconds to wait from a server's header: delta-seconds or an HTTP-date (`Retry-After`,
    RFC 9110), or epoch seconds (`X-Retry-After`, `x-ratelimit-reset`). None when absent or
    unreadable; never negative. `strict`: a header that is present but unreadable raises
    ValueError instead, for a client that fails the request with a reason rather than guess."""
    if not value or not value.strip():
        return None
    value = value.strip()
    current = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        import email.utils  # only an HTTP-date needs it (~4 ms to import)

        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - current)
        except (TypeError, ValueError, OverflowError, IndexError):
            if strict:
                raise ValueError("not a number of seconds or an HTTP date") from None
            return None
    if number != number or number in (float("inf"), float("-inf")):  # nan, inf
        if strict:
            raise ValueError("not a finite number of seconds")
        return None
    return max(0.0, number - current if number > _EPOCH else number)


def header_int(value: str | None) -> int | None:
    """A header's non-negative decimal number (Content-Length, `ratelimit-remaining`'s count):
    ASCII digits only, as RFC 9110 writes them, so a server's `²` or `١٢` (digits to
    `str.isdigit`, not to `int`) is no number rather than a ValueError; None otherwise."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 30 else None


# Userinfo runs to the last `@` before the host's end: a password may hold an `@` itself. A
# scheme is at most 32 characters: unbounded, the search tried it from every word of a run such
# as `a.a.a.…` (a repository's long value quoted in an error took minutes to redact).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/?#\s]*@")
_LEADING_USERINFO = re.compile(r"(?i)^([a-z][a-z0-9+.-]{0,31}://)?[^/?#\s]*@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:[a-z0-9_-]*token|password|passwd|secret|sig|signature|x-amz-[a-z-]+)=)[^&#\s]*")


# An `Authorization` value quoted back by a server (an error body, a proxy's page): the scheme
# stays, the credentials go. A credential is a token68 with a digit, a `=` pad or 16+ characters,
# so that prose ("Bearer challenge without a realm") is left as it is.
_AUTH_VALUE = re.compile(
    r"(?i)\b(basic|bearer|token)(\s+)(?=[a-z0-9._~+/-]*(?:\d|=|[a-z0-9._~+/-]{16}))"
    r"[a-z0-9._~+/-]+=*")
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
                          r"(?!(?:basic|bearer|token)\s)[^\s\"',;]+")
_MIN_SECRET = 6  # shorter "secrets" would blank out ordinary words of a message
# Every secret tagsync holds in this process (passwords, tokens, and the forms they travel in:
# base64 of `user:password`, URL-encoded): whatever text reaches a message, a log line or
# `--json` passes `redact`, which removes them even where a server quoted them back.
_KNOWN: set[str] = set()


def remember_secret(value: str | None, *also: str) -> None:
    """Register a secret (and the encodings it is sent in) for every later `redact`."""
    from urllib.parse import quote

    for one in (value, *also):
        if one and len(one) >= _MIN_SECRET:
            _KNOWN.add(one)
            encoded = quote(one, safe="")
            if encoded != one:
                _KNOWN.add(encoded)


def redact(text: str, *secrets: str | None, one_url: bool = False) -> str:
    """`text` as it may be logged or shown: credentials in URLs (`scheme://user:pass@`), secret
    query parameters (`?token=`, `X-Amz-Signature=`, …), `Authorization` values a server quoted
    back, every secret given here and every secret remembered (`remember_secret`) replaced by
    `***`.

    `one_url`: `text` is a single URL as a user wrote it, perhaps without its scheme
    (`user:pass@host:5000`), so anything before an `@` at its start is a credential too. (Not
    for prose: `app:1.0@sha256:…` at the start of a message is an image, not a login.)
    """
    out = _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1***@", text))
    out = _AUTH_HEADER.sub(r"\1***", _AUTH_VALUE.sub(r"\1\2***", out))
    if one_url:
        out = _LEADING_USERINFO.sub(lambda m: f"{m.group(1) or ''}***@", out)
    # longest first: a secret that contains another is removed whole
    for secret in sorted({s for s in (*secrets, *_KNOWN) if s}, key=len, reverse=True):
        out = out.replace(secret, "***")
    return out


def shown(text: str) -> str:
    """`text` with every control character but line breaks and tabs written as an escape: a
    log line may quote a repository's file names or a server's words, and an escape sequence
    in them would drive the reader's terminal (clear it, retitle it, hide what follows)."""
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


class RedactingFilter:
    """A `logging` filter for handlers: every record's text passes `redact` (a library log line
    may quote a server's words, and a server may quote our credentials) and `shown`."""

    def filter(self, record: object) -> bool:
        import logging

        if isinstance(record, logging.LogRecord):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a malformed call: leave it to logging's own report
                return True
            cleaned = shown(redact(message))
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def environment_proxy() -> str:
    """The HTTPS proxy httpx takes from the environment (`HTTPS_PROXY`, else `ALL_PROXY`), as an
    error may name it: redacted as one URL, since it may lack its scheme (`user:pw@host:port`)."""
    from urllib.request import getproxies

    proxies = getproxies()
    found = proxies.get("https") or proxies.get("all")
    return redact(found, one_url=True) if found else "from the environment"


def tls_context() -> ssl.SSLContext:
    """The roots every HTTPS client of tagsync trusts (registries, Docker Hub, GitHub), read
    from the environment as OpenSSL reads it: `SSL_CERT_FILE`, a bundle parsed whole, and
    `SSL_CERT_DIR`, a hashed folder read one root at a time as handshakes need them (the
    Lambda image ships its roots so); certifi's bundle when neither is set. A new context per
    call: an HTTP client may set its own ALPN on it."""
    import ssl

    from tagsync.errors import ConfigError

    bundle = os.environ.get("SSL_CERT_FILE") or None
    folder = os.environ.get("SSL_CERT_DIR") or None
    if folder is not None and not os.path.isdir(folder):  # OpenSSL would only fail handshakes
        raise ConfigError(f"cannot load the trusted CA roots (SSL_CERT_DIR={folder}): "
                          "not a folder")
    if bundle is None and folder is None:
        import certifi

        bundle = certifi.where()
    elif bundle is not None and folder is not None and _empty(bundle):
        bundle = None  # the image's empty bundle beside its folder: the folder holds the roots
    try:
        return ssl.create_default_context(cafile=bundle, capath=folder)
    except (OSError, ssl.SSLError) as exc:
        where = f"SSL_CERT_FILE={bundle}" if bundle else f"SSL_CERT_DIR={folder}"
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot load the trusted CA roots ({where}): {reason}") from None


def _empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False
