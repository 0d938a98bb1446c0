"""OCI Distribution client (Docker Hub, GHCR, Quay, Harbor, ECR's HTTP API, self-hosted).

Auth follows the registry's own `WWW-Authenticate` challenge instead of per-vendor code: Bearer
(anonymous or with credentials, token cached per scope) or Basic. Digests come from `HEAD`, which
Docker Hub does not count as a pull. Retries are polite: 429/502/503/504 and transport errors
back off exponentially, honouring `Retry-After`, a bounded number of times. (aiohttp itself
resends an idempotent request once when a kept-alive connection turns out closed, RFC 9112 9.3.1;
`Stats.retries` counts only ours.)

Every answer is untrusted input: pages are followed only within the registry's origin (with a
page cap and loop detection), credentials go only to that origin and to the token realm its
challenge names, redirects are followed by hand (credentials dropped across origins, a hop
limit), bodies are size-capped by kind, and `timeout` covers the whole exchange, body included,
so a trickling answer cannot hold a run. A `Retry-After` is one wait shared by every request to
the registry, capped by `max_wait`; beyond it the registry's remaining work is deferred.

The HTTP client is aiohttp: a scan sends thousands of small requests, and aiohttp's C parser and
plain connection pool cost far less CPU per request than httpx (`make bench`, registry scan at
scale). On a small Lambda that CPU is the scan's speed.

The client is built in layers, one concept each: `transport.Transport` (connections, retries,
redirects, body caps), `auth.Authenticated` (challenges, tokens, every API request),
`upload.Uploads` (the push side) and, here, `OciRegistry` (reading: digests, manifests, blobs,
referrers, tag and catalog pages).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from tagsync.errors import ImageNotFoundError, MalformedAnswerError, RegistryError
from tagsync.http_policy import header_int, redact
from tagsync.reference import (
    DOCKER_HUB,
    DOCKER_HUB_API,
    ImageName,
    is_loopback,
    is_repository,
    validate_digest,
    validate_tag,
)
from tagsync.registry.answers import next_link
from tagsync.registry.manifest import ACCEPT, OCI_INDEX, Descriptor, check_manifest, manifest_header
from tagsync.registry.readonce import ReadOnce
from tagsync.registry.transport import Answer, origin_of
from tagsync.registry.upload import Uploads

log = logging.getLogger(__name__)


def default_url(host: str, insecure: bool = False) -> str:
    """Where a host without `url:` is reached: HTTPS, except loopback hosts and `insecure: true`
    (a registry on this machine is a test or a tunnel; `url: https://…` asks for TLS there)."""
    if host == DOCKER_HUB:
        host = DOCKER_HUB_API
    return f"{'http' if insecure or is_loopback(host) else 'https'}://{host}"


class OciRegistry(Uploads):
    """One registry endpoint; share one instance per host so tokens and connections are reused."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._reads = ReadOnce()

    # --- public API ----------------------------------------------------------------------

    async def ping(self) -> None:
        """`GET /v2/`: is this a registry, and do our credentials work?"""
        await self._request("GET", "/v2/", None, "ping")

    async def head(self, image: ImageName, reference: str) -> Descriptor:
        if ":" in reference:  # a digest; tags never hold a colon
            validate_digest(reference, str(image))
        else:
            validate_tag(reference, str(image))
        resp = await self._request(
            "HEAD", f"/v2/{image.repository}/manifests/{reference}", image, "manifest",
            headers={"Accept": ACCEPT},
        )
        self.stats.heads += 1
        digest = resp.headers.get("Docker-Content-Digest")
        media_type = manifest_header(resp.headers.get("Content-Type"), "HEAD", str(image))
        if not digest or not media_type:  # some registries omit them on HEAD; the GET body
            body, media_type = await self.get(image, reference)  # is the source of truth
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        size = resp.headers.get("Content-Length")
        return Descriptor(digest, media_type, header_int(size))

    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]:
        """A manifest; by digest, read once per client (verification, ages and explanations
        ask for the same images, and on Docker Hub each read is a pull). What the registry says
        it sent must be what it sent, and a manifest."""
        async def fetch() -> tuple[bytes, str]:
            self._check_allowance(image)
            resp = await self._request(
                "GET", f"/v2/{image.repository}/manifests/{reference}", image, "manifest",
                headers={"Accept": ACCEPT},
            )
            self.stats.manifest_gets += 1
            if ":" in reference:
                _verify(resp.content, reference, "manifest", str(image))
            vouched = resp.headers.get("Docker-Content-Digest")
            if vouched:
                validate_digest(vouched, str(image))
                _verify(resp.content, vouched, "manifest", str(image),
                        claim="the manifest's Docker-Content-Digest")
            _, media_type = check_manifest(resp.content, resp.headers.get("Content-Type"), str(image))
            return resp.content, media_type

        if ":" not in reference:  # a tag may move: asked each time
            return await fetch()
        return await self._reads.once(("manifest", image.repository, reference), fetch)

    async def list_repositories(self, namespace: str, page_size: int = 1000) -> list[str]:
        """Repositories under `namespace/` from `/v2/_catalog` (registries may disable it)."""
        names: list[str] = []
        dropped = 0
        async for resp in self._pages(f"/v2/_catalog?n={page_size}", None, "catalog",
                                      scope="registry:catalog:*"):
            listed = resp.json_object("catalog", self.name).get("repositories") or []
            if not isinstance(listed, list):
                raise MalformedAnswerError("the catalog's `repositories` is not a list",
                                           image=self.name)
            for name in listed:
                if is_repository(name):
                    names.append(name)
                else:  # never a new catalog entry: it could be anything
                    dropped += 1
        if dropped:
            log.warning("%s: %d repository name(s) outside the OCI grammar ignored",
                        self.name, dropped)
        prefix = f"{namespace}/" if namespace else ""
        return sorted({n for n in names if n.startswith(prefix)})

    async def blob(self, image: ImageName, digest: str) -> bytes:
        """A small blob (an image config, a signature), read once per client."""
        validate_digest(digest, str(image))

        async def fetch() -> tuple[bytes, str]:
            self._check_allowance(image)
            resp = await self._request("GET", f"/v2/{image.repository}/blobs/{digest}", image,
                                       "blob")
            _verify(resp.content, digest, "blob", str(image))
            return resp.content, ""

        return (await self._reads.once(("blob", image.repository, digest), fetch))[0]

    async def referrers(self, image: ImageName, digest: str,
                        artifact_type: str | None = None) -> dict[str, Any] | None:
        """The OCI 1.1 referrers index of `digest` (signatures, SBOMs…), or None when the registry
        has no referrers API (it answers 404: clients then read the `sha256-<hex>` tag)."""
        validate_digest(digest, str(image))
        url = f"/v2/{image.repository}/referrers/{digest}"
        if artifact_type:
            url += "?artifactType=" + quote(artifact_type, safe="")
        try:
            resp = await self._request("GET", url, image, "referrers", headers={"Accept": OCI_INDEX})
        except ImageNotFoundError:
            return None
        try:
            body = resp.json()
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past reading
            raise RegistryError("the referrers answer is not JSON", image=str(image)) from None
        if not isinstance(body, dict):
            raise RegistryError("the referrers answer is not an index", image=str(image))
        return body

    async def list_tags(self, image: ImageName, page_size: int = 1000) -> list[str]:
        """Every tag, following `Link: <…>; rel="next"` pages; order as the registry gives it.

        Strings outside the tag grammar are returned too: the caller drops them with a note."""
        tags: list[str] = []
        async for resp in self._pages(f"/v2/{image.repository}/tags/list?n={page_size}",
                                      image, "tags"):
            listed = resp.json_object("tag list", str(image)).get("tags") or []
            if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
                raise MalformedAnswerError("the tag list's `tags` is not a list of strings",
                                           image=str(image))
            tags.extend(listed)
        return tags

    async def _pages(self, first: str, image: ImageName | None, what: str,
                     scope: str | None = None) -> AsyncIterator[Answer]:
        """Each page of a `Link: <…>; rel="next"` listing, within this registry's origin only,
        at most `max_pages`, never the same page twice."""
        name = str(image) if image else self.name
        url = self._absolute(first)
        seen: set[str] = set()
        while True:
            if url in seen:
                raise MalformedAnswerError(f"the {what} pages loop back to {redact(url)}",
                                           image=name)
            if len(seen) >= self.max_pages:
                raise MalformedAnswerError(f"more than {self.max_pages} pages of {what}",
                                           image=name)
            seen.add(url)
            resp = await self._request("GET", url, image, what, scope=scope)
            link = next_link(resp.headers.get("Link"), url, name)
            yield resp
            if link is None:
                return
            url = link
            if origin_of(url) != self._origin:
                raise MalformedAnswerError(
                    f"a {what} page links to another origin ({redact(url)}); not followed",
                    image=name)


def _verify(content: bytes, digest: str, what: str, name: str, claim: str = "") -> None:
    """Content fetched by digest must be that digest: anything else is not what we asked for.
    `claim`: the digest is what the answer said of itself (`Docker-Content-Digest`), not ours."""
    algorithm, _, expected = validate_digest(digest, name).partition(":")
    actual = hashlib.new(algorithm, content).hexdigest()
    if actual != expected:
        lie = (f"{claim} {digest[:19]}… does not match its content" if claim
               else f"the {what} fetched by digest {digest[:19]}… has another digest")
        raise MalformedAnswerError(f"{lie} ({algorithm}:{actual[:12]}…)", image=name)
