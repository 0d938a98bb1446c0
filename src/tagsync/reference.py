"""Image references and the OCI grammar that guards everything a registry tells us.

A registry is untrusted input: a tag or digest only reaches a catalog after it matched the
grammar of the OCI distribution spec, so a hostile or broken registry cannot inject YAML.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tagsync.errors import InvalidReferenceError

# Every pattern is used with `fullmatch`: `$` would also accept a trailing newline, and a
# "1.2.0\n" from a registry must never reach a catalog.
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
SHA256_RE = re.compile(r"sha256:[a-f0-9]{64}")
SHA512_RE = re.compile(r"sha512:[a-f0-9]{128}")

# A registry host as the distribution spec's reference grammar spells it (DNS labels of at most
# 63 characters, or a bracketed IPv6 address) with a port 1-65535: anything else would reach a
# URL parser or a resolver, which fail in their own ways (ValueError, UnicodeError).
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::([0-9]{{1,5}}))?")

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# Spellings of Docker Hub that image names use; each is `docker.io` to tagsync.
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, DOCKER_HUB_API, "index.docker.io"})
ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")


def parse_ecr_host(host: str) -> tuple[str, str] | None:
    """(account, region) of an ECR registry host, or None for any other host."""
    m = ECR_HOST.fullmatch(host)
    return (m.group(1), m.group(2)) if m else None


def is_tag(value: object) -> bool:
    """Does `value` (anything a registry sent) follow the OCI tag grammar?"""
    return isinstance(value, str) and TAG_RE.fullmatch(value) is not None


def is_repository(value: object) -> bool:
    """Does `value` (anything a registry sent) follow the OCI repository grammar?"""
    return (isinstance(value, str) and len(value) <= 255
            and REPOSITORY_RE.fullmatch(value) is not None)


def validate_tag(tag: str, image: str | None = None) -> str:
    if not is_tag(tag):
        raise InvalidReferenceError(f"tag {_shown(tag)} does not follow the OCI tag grammar", image=image)
    return tag


def validate_digest(digest: str, image: str | None = None) -> str:
    """Accept only well-formed digests of registered algorithms (sha256, sha512)."""
    if (not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest)
            or not (SHA256_RE.fullmatch(digest) or SHA512_RE.fullmatch(digest))):
        raise InvalidReferenceError(f"digest {_shown(digest)} is not a valid sha256/sha512 digest",
                                    image=image)
    return digest


def is_host(value: object) -> bool:
    """Is `value` a registry host (`name[:port]`) a URL can be made of?"""
    if not isinstance(value, str) or len(value) > 255:
        return False
    m = HOST_RE.fullmatch(value)
    return m is not None and (m.group(1) is None or 0 < int(m.group(1)) < 65536)


def host_key(host: str) -> str:
    """One spelling per registry endpoint, for comparing hosts (an allow-list): lower case
    (DNS is), no trailing dot, an IPv6 address in its short form, HTTPS's port 443 left out
    where a reference without a port is reached over HTTPS (not `localhost` or a loopback
    address, which are reached over HTTP), and Docker Hub's spellings as `docker.io`. Anything
    it does not recognise is kept as written, so two spellings it cannot prove equal stay apart."""
    text = host.strip().lower()
    if text.startswith("["):
        name, bracket, rest = text.partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return text
        name, port = name + "]", rest[1:] if rest else None
        with contextlib.suppress(ValueError):
            name = f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
    else:
        name, colon, port_text = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        port = port_text if colon else None
        name = name[:-1] if name.endswith(".") and len(name) > 1 else name
    if port == "443" and not _loopback(name):
        port = None
    if port is None and name in DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    return name if port is None else f"{name}:{port}"


def is_loopback(host: str) -> bool:
    """`localhost`, `127.0.0.1:5000`, `[::1]:5000`: a registry on this machine (reached over
    plain HTTP unless its `url:` asks for TLS)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return _loopback(name)


def _loopback(name: str) -> bool:
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


_GLOB_NAME = re.compile(r"[a-z0-9*?](?:[a-z0-9.*?-]*[a-z0-9*?])?")


def host_pattern(text: str) -> str:
    """An allow-list entry as `host_allowed` reads it: a host (in `host_key`'s spelling; a
    Unicode name in its IDNA form, as references must write it), or a glob whose `*` and `?`
    stand for characters of the name (never for a port: `ghcr.io:*` admits any port). Raises
    ValueError saying what a host looks like."""
    value = text.strip()
    if "*" not in value and "?" not in value:
        if value and not value.isascii():
            name, colon, port = value.rpartition(":") if ":" in value else (value, "", "")
            try:
                value = name.rstrip(".").encode("idna").decode("ascii") + colon + port
            except UnicodeError:
                raise ValueError(f"{_shown(text)} is not a host name") from None
        key = host_key(value)
        if not is_host(key):
            raise ValueError(f"{_shown(text)} is not a registry host: write it as image names do "
                             "(ghcr.io, registry.example.com:5000, [::1]:5000), without a scheme "
                             "or a path")
        return key
    glob = value.lower()
    name, colon, port = glob.rpartition(":") if ":" in glob else (glob, "", "")
    if (not _GLOB_NAME.fullmatch(name) or ".." in name
            or (colon and not (port == "*" or is_host(f"a:{port}")))):
        raise ValueError(f"{_shown(text)} is not a host glob: `*` and `?` stand for characters of "
                         "a host name (*.example.com, registry-?.example.com), `:*` for any port; "
                         "IPv6 addresses are listed exactly")
    labels = name.split(".")
    if any(x.isdigit() for x in labels) and not any(c.isalpha() for c in name):
        raise ValueError(f"{_shown(text)} reads as a range of addresses, but a glob matches names: "
                         "it would admit DNS names such as 10.evil.example too; list addresses "
                         "exactly")
    return glob


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Does one of `patterns` (from `host_pattern`) admit the registry `host` as a reference
    spells it? Compared in `host_key`'s spelling; `*` never reaches into a port."""
    key = host_key(host)
    for pattern in patterns:
        if "*" not in pattern and "?" not in pattern:
            if key == pattern:
                return True
            continue
        if _glob_admits(pattern, key):
            return True
    return False


def _glob_admits(pattern: str, key: str) -> bool:
    """Does the host glob `pattern` admit `key`? `*` and `?` stand for characters other than
    `:`; a port of `*` is any port or none. Read by a scan, not a regular expression: as one,
    `*a*a*a*…` backtracked through every way of placing its stars (minutes on one host)."""
    name, colon, port = pattern.rpartition(":") if ":" in pattern else (pattern, "", "")
    key_name, key_colon, key_port = key.partition(":")
    if ":" in key_port:
        return False
    if not colon:
        port_ok = not key_colon
    elif port == "*":
        port_ok = not key_colon or (key_port != "" and all(c in "0123456789" for c in key_port))
    else:
        port_ok = bool(key_colon) and key_port == port
    return port_ok and wildcard_match(name, key_name)


def wildcard_match(glob: str, text: str) -> bool:
    """`glob` (`*`: any run of characters, `?`: any one) matches the whole of `text`. Each piece
    between stars is placed at its leftmost fit (a later fit never helps a later piece), so the
    work is at most len(glob) x len(text), whatever the stars."""
    first, *rest = glob.split("*")
    if not rest:
        return len(first) == len(text) and _fits(first, text, 0)
    *middle, last = rest
    end = len(text) - len(last)
    if end < len(first) or not _fits(first, text, 0) or not _fits(last, text, end):
        return False
    at = len(first)
    for piece in middle:
        found = next((i for i in range(at, end - len(piece) + 1) if _fits(piece, text, i)), -1)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def _fits(piece: str, text: str, at: int) -> bool:
    """`piece` (`?`: any one character) matches `text` at `at`."""
    return all(c == "?" or c == text[at + k] for k, c in enumerate(piece))


def validate_repository(name: str) -> str:
    if not is_repository(name):
        raise InvalidReferenceError(
            f"repository name {_shown(name)} does not follow the OCI grammar")
    return name


def _shown(value: object, limit: int = 80) -> str:
    """A value from outside, quoted and cut short: error messages stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True, order=True)
class ImageName:
    """A repository in a registry: `registry/repository` without tag or digest."""

    registry: str
    repository: str

    @classmethod
    def parse(cls, text: str) -> ImageName:
        """Docker-style names: `python` → docker.io/library/python, `ghcr.io/o/n` keeps its host."""
        name = text.strip()
        if "@" in name or (":" in name.rsplit("/", 1)[-1]):
            raise InvalidReferenceError(
                f"{text!r}: give the repository only; tags and digests come from the catalog",
                image=text,
            )
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry in DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        if not is_host(registry):
            raise InvalidReferenceError(f"registry host {_shown(registry)} is not a host name "
                                        "(with a port from 1 to 65535)", image=text)
        validate_repository(repository)
        return cls(registry, repository)

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


def registry_page(image: ImageName) -> str | None:
    """A human page listing the image's tags, where the registry has a well-known one."""
    repo = image.repository
    if image.registry == DOCKER_HUB:
        if repo.startswith("library/"):
            return f"https://hub.docker.com/_/{repo.removeprefix('library/')}/tags"
        return f"https://hub.docker.com/r/{repo}/tags"
    if image.registry == "quay.io":
        return f"https://quay.io/repository/{repo}?tab=tags"
    if image.registry == "ghcr.io" and "/" in repo:
        owner, _, name = repo.partition("/")
        return f"https://github.com/{owner}/{name}/pkgs/container/{name.rsplit('/', 1)[-1]}"
    return None


def short(digest: str, length: int = 12) -> str:
    """The first hex characters of a digest, as `docker images` shows them."""
    return digest.split(":", 1)[-1][:length]


def parse_reference(text: str) -> tuple[ImageName, str]:
    """`name:tag` or `name@digest` → (name, tag or digest); a bare name means `latest`."""
    name, at, digest = text.partition("@")
    if at:
        return ImageName.parse(name), validate_digest(digest, text)
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        return ImageName.parse(name), validate_tag(tag, text)
    return ImageName.parse(name), "latest"


_TEMPLATED = re.compile(r"\$\{\{|\$\{|\$[A-Za-z_]|\{\{|\{%|<[^<>]*>")


def templated(text: str) -> bool:
    """`${VAR}`, `$VAR`, `{{ .Values.x }}`, `${{ matrix.image }}`, `<YOUR-IMAGE>`: not a name yet."""
    return bool(_TEMPLATED.search(text))


@dataclass(frozen=True)
class Reference:
    """A whole reference as its author wrote it: `[registry/]repository[:tag][@digest]`.

    `name` keeps the author's spelling (`nginx`, `docker.io/library/nginx`, `localhost:5000/x`);
    only the tag and digest parts are ever replaced, so parse → render is the identity and a
    bump changes nothing else in the string.
    """

    name: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not text or text != text.strip() or any(c.isspace() for c in text):
            raise InvalidReferenceError(f"{text!r} is not an image reference", image=text)
        name, at, digest = text.partition("@")
        if at:
            validate_digest(digest, text)
        tag: str | None = None
        if ":" in name.rsplit("/", 1)[-1]:
            name, _, tag = name.rpartition(":")
            validate_tag(tag, text)
        ImageName.parse(name)  # the grammar, or an error naming the text
        return cls(name, tag, digest or None)

    @property
    def image(self) -> ImageName:
        return ImageName.parse(self.name)

    def render(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.render()
