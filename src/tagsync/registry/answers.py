"""What a registry's headers say, read defensively: every `Location`, `Link` and
`WWW-Authenticate` is a server's choice, so each is parsed here into a value tagsync will use or
a one-line reason why not (a `MalformedAnswerError` or `RegistryAuthError` for that image),
never a `ValueError` from a URL parser.

Pure functions over strings; the client (registry.oci and its layers) decides what to send where with them.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from tagsync.errors import MalformedAnswerError, RegistryAuthError

# Anything but visible ASCII: whitespace, control characters, non-ASCII. A backslash too, which
# URL parsers disagree about (`http://a\@b/` is host `a` to a browser, `b` to urllib).
_UNSAFE = re.compile(r"[^\x21-\x7e]|\\")
_MAX_HEADER = 8192
# `(?<!\w)`: a name starts at a word's start. Without it, a search over a long word with no `=`
# (`Bearer aaaa…`) retried from every letter of it, each try running to the word's end: quadratic.
# It finds what it found before, since a word followed by `=` matched from its first letter.
_CHALLENGE_PARAM = re.compile(r'(?<!\w)(\w+)=(?:"([^"]*)"|([^,\s]*))')
# one link-value of RFC 8288: `<uri>` then `; param[=value]` pairs
_LINK_VALUE = re.compile(r'\s*<([^<>]*)>((?:\s*;\s*[\w*-]+(?:\s*=\s*(?:"[^"]*"|[^;,\s]*))?)*)\s*')
_LINK_PARAM = re.compile(r'([\w*-]+)(?:\s*=\s*(?:"([^"]*)"|([^;,\s]*)))?')


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in, of a URL already read
    by `server_url` or written by us."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def show_origin(url: str) -> str:
    """`scheme://host:port` of a URL, for a message: never its path, query or userinfo."""
    scheme, host, port = origin(url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


def server_url(base: str, ref: str, header: str, name: str) -> str:
    """A URL a server sent in `header` (relative or absolute), resolved against `base`.

    Refused with a reason: anything but visible ASCII, a backslash, a scheme other than http(s),
    no host, an invalid port. Userinfo (`user:pass@`) is stripped: a server never chooses the
    credentials tagsync sends."""
    if not ref or len(ref) > _MAX_HEADER or _UNSAFE.search(ref):
        raise MalformedAnswerError(f"the {header} header is not a well-formed URL", image=name)
    try:
        parts = urlsplit(urljoin(base, ref))
        port = parts.port  # raises for a port that is not a number in range
        host = parts.hostname
    except ValueError:
        raise MalformedAnswerError(f"the {header} header is not a well-formed URL",
                                   image=name) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise MalformedAnswerError(f"the {header} header names a non-HTTP URL", image=name)
    if not host:
        raise MalformedAnswerError(f"the {header} header names no host", image=name)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, ""))


def next_link(header: str | None, base: str, name: str) -> str | None:
    """The `rel="next"` target of a `Link` header (RFC 8288), resolved against `base`; None when
    there is none. A header that does not parse as links, or that names two next pages, is a
    reason to stop: a page silently missed is a tag silently missed."""
    if header is None or not header.strip():
        return None
    if len(header) > _MAX_HEADER or not header.isprintable():
        raise MalformedAnswerError("the Link header is not well-formed", image=name)
    found: list[str] = []
    at = 0
    while at < len(header):
        m = _LINK_VALUE.match(header, at)
        if m is None:
            raise MalformedAnswerError("the Link header is not well-formed", image=name)
        rels: list[str] = []
        for p in _LINK_PARAM.finditer(m.group(2)):
            if p.group(1).lower() == "rel":
                rels += (p.group(2) if p.group(2) is not None else p.group(3) or "").lower().split()
        if "next" in rels:
            found.append(m.group(1))
        at = m.end()
        if at < len(header):
            if header[at] != ",":
                raise MalformedAnswerError("the Link header is not well-formed", image=name)
            at += 1
    if len(set(found)) > 1:
        raise MalformedAnswerError("the Link header names more than one next page", image=name)
    return server_url(base, found[0], "Link", name) if found else None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…"` → ("bearer", {"realm": …, "service": …}); lenient, as
    registries write it: `read_challenge` decides whether it is usable."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def read_challenge(header: str | None, registry_url: str, name: str
                   ) -> tuple[str, dict[str, str]]:
    """The registry's own `WWW-Authenticate`, checked before it is remembered for the registry:
    Basic, or Bearer with a realm `check_realm` accepts. Anything else fails the image that
    met it, and nothing about it is kept."""
    if not header or not header.strip():
        raise RegistryAuthError("the registry answered 401 without a WWW-Authenticate challenge",
                                image=name)
    if len(header) > _MAX_HEADER or not header.isprintable():
        raise MalformedAnswerError("the WWW-Authenticate header is not well-formed", image=name)
    scheme, params = parse_challenge(header)
    if scheme not in ("bearer", "basic"):
        shown = scheme[:20] if scheme.isalnum() else "not a scheme"
        raise RegistryAuthError(f"unsupported auth challenge ({shown}); tagsync speaks Basic "
                                "and Bearer", image=name)
    if scheme == "bearer":
        realm = params.get("realm")
        if not realm:
            raise RegistryAuthError("the Bearer challenge names no realm", image=name)
        params["realm"] = check_realm(realm, registry_url, name)
        for key in ("service", "scope"):
            if _UNSAFE.search(params.get(key, "").replace(" ", "")):
                raise MalformedAnswerError(f"the Bearer challenge's {key} is not well-formed",
                                           image=name)
    return scheme, params


def check_realm(realm: str, registry_url: str, name: str) -> str:
    """Where a token is asked for, with our credentials: an absolute `https://` URL (`http://`
    only when the registry itself is configured `http://`), with no userinfo of its own."""
    try:
        if _UNSAFE.search(realm):
            raise ValueError(realm)
        parts = urlsplit(realm)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise MalformedAnswerError("the Bearer challenge's realm is not a well-formed URL",
                                   image=name) from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if urlsplit(registry_url).scheme.lower() == "http" else ("https",)
    if scheme not in ("http", "https"):
        raise RegistryAuthError("the Bearer challenge names a realm that is not an HTTP URL; "
                                "no token asked for", image=name)
    if scheme not in allowed:
        raise RegistryAuthError("the Bearer challenge names a plain-HTTP realm for an HTTPS "
                                "registry; credentials are not sent there", image=name)
    if "@" in parts.netloc:
        raise RegistryAuthError("the Bearer challenge names a realm with credentials of its own; "
                                "not used", image=name)
    return server_url(realm, realm, "WWW-Authenticate realm", name)
