"""Amazon ECR as a source, through ECR's own API (boto3) instead of the registry protocol.

`DescribeImages` lists every tag of a repository with its manifest digest and push time in one
paginated call, so a repository with many followed tags costs one request, not one per tag, and
`newest` needs no image configs. Manifests (for `image-id` digests and platform choice) come from
`BatchGetImage`. Credentials and endpoint are the usual AWS environment (role, profile,
`AWS_ENDPOINT_URL`); the account and region come from the host name unless configured.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import ssl
from datetime import datetime
from typing import Any

import httpx

from tagsync.errors import (
    ImageNotFoundError,
    MalformedAnswerError,
    RegistryAuthError,
    RegistryError,
)
from tagsync.http_policy import tls_context
from tagsync.reference import ImageName, parse_ecr_host, validate_tag
from tagsync.registry.base import refuse_past, time_left
from tagsync.registry.manifest import ACCEPT, Descriptor, media_type_of, parse_manifest

__all__ = ["EcrSource", "parse_ecr_host"]


@functools.cache
def _download_tls(bundle: str | None, folder: str | None) -> ssl.SSLContext:
    """One context per trust setting for the process, ECR's downloads' own: httpx sets ALPN on
    the context it is given, so it is not shared with aiohttp's (`registry.transport`)."""
    return tls_context()


class EcrSource:
    """One ECR registry (an account in a region); tag facts cached per repository for the run."""

    def __init__(self, registry_id: str, region: str, max_concurrency: int = 8,
                 client: Any = None, deadline: float | None = None) -> None:
        self.registry_id, self.region = registry_id, region
        self.deadline = deadline  # `time.monotonic()` when the run's time is up
        if client is None:
            import boto3

            client = boto3.client("ecr", region_name=region)
        self._ecr = client
        self._gate = asyncio.Semaphore(max_concurrency)
        self._tags: dict[str, dict[str, dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.requests = 0

    async def _call(self, image: ImageName | None, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        name = str(image) if image else f"{self.registry_id}.dkr.ecr.{self.region}"
        async with self._gate:
            refuse_past(self.deadline, name)
            self.requests += 1
            try:
                return await asyncio.to_thread(getattr(self._ecr, method), **kwargs)
            except NoCredentialsError:
                raise RegistryAuthError("no AWS credentials for ECR (role, profile or "
                                        "AWS_ACCESS_KEY_ID)", image=name) from None
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", code)
                if code in ("RepositoryNotFoundException", "ImageNotFoundException",
                            "LayersNotFoundException", "LayerInaccessibleException"):
                    raise ImageNotFoundError(message, image=name) from None
                if code in ("AccessDeniedException", "UnrecognizedClientException",
                            "ExpiredTokenException"):
                    raise RegistryAuthError(f"ECR refused: {message}", image=name) from None
                raise RegistryError(f"ECR {method}: {code}: {message}", image=name) from None
            except BotoCoreError as exc:
                raise RegistryError(f"cannot reach ECR: {exc}", image=name) from None

    async def _repository(self, image: ImageName) -> dict[str, dict[str, Any]]:
        """tag -> image detail, from one paginated DescribeImages per repository."""
        repo = image.repository
        lock = self._locks.setdefault(repo, asyncio.Lock())
        async with lock:
            if repo not in self._tags:
                tags: dict[str, dict[str, Any]] = {}
                token: str | None = None
                tokens: set[str] = set()
                while True:
                    kwargs: dict[str, Any] = {"registryId": self.registry_id,
                                              "repositoryName": repo, "maxResults": 1000,
                                              "filter": {"tagStatus": "TAGGED"}}
                    if token:
                        kwargs["nextToken"] = token
                    page = await self._call(image, "describe_images", **kwargs)
                    for detail in page.get("imageDetails", []):
                        for tag in detail.get("imageTags") or []:
                            if isinstance(tag, str):  # the grammar is checked by the caller
                                tags[tag] = detail
                    token = _next_token(page, tokens, image)
                    if not token:
                        break
                self._tags[repo] = tags
            return self._tags[repo]

    async def head(self, image: ImageName, reference: str) -> Descriptor:
        if ":" in reference:  # a digest; tags such as `sha256-<hex>.sig` have no colon
            body, media_type = await self.get(image, reference)
            return Descriptor(reference, media_type, len(body))
        validate_tag(reference, str(image))
        detail = (await self._repository(image)).get(reference)
        if detail is None:
            raise ImageNotFoundError(f"tag or digest {reference!r} not found", image=str(image))
        digest = detail.get("imageDigest")
        if not isinstance(digest, str):
            raise MalformedAnswerError("DescribeImages gave no digest", image=str(image))
        return Descriptor(digest, str(detail.get("imageManifestMediaType") or ""),
                          detail.get("imageSizeInBytes"))

    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]:
        key = "imageDigest" if ":" in reference else "imageTag"  # `sha256-….sig` is a tag
        answer = await self._call(
            image, "batch_get_image", registryId=self.registry_id, repositoryName=image.repository,
            imageIds=[{key: reference}], acceptedMediaTypes=ACCEPT.split(", "))
        images = answer.get("images") or []
        if not images:
            failure = (answer.get("failures") or [{}])[0]
            raise ImageNotFoundError(
                f"tag or digest {reference!r} not found ({failure.get('failureCode', 'no image')})",
                image=str(image))
        manifest = images[0].get("imageManifest")
        if not isinstance(manifest, str):
            raise MalformedAnswerError("BatchGetImage gave no manifest", image=str(image))
        # Not re-hashed: ECR's signed API answers for itself here (and moto's digests are not
        # real manifest digests); blobs from download URLs are checked below.
        body = manifest.encode()
        declared = images[0].get("imageManifestMediaType")
        return body, media_type_of(parse_manifest(body, str(image)), declared)

    async def blob(self, image: ImageName, digest: str) -> bytes:
        answer = await self._call(image, "get_download_url_for_layer", registryId=self.registry_id,
                                  repositoryName=image.repository, layerDigest=digest)
        url = answer.get("downloadUrl")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise MalformedAnswerError("ECR gave no HTTPS download URL", image=str(image))
        try:
            refuse_past(self.deadline, str(image))
            tls = _download_tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
            self.requests += 1  # the presigned download is a request of the run's, too
            async with httpx.AsyncClient(timeout=30, follow_redirects=True, max_redirects=5,
                                         verify=tls) as client, \
                    asyncio.timeout(time_left(self.deadline, 60)):
                resp = await client.get(url)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise RegistryError(f"blob download failed: {type(exc).__name__}",
                                image=str(image)) from None
        if resp.status_code >= 400:
            raise RegistryError(f"blob download failed: HTTP {resp.status_code}", image=str(image))
        algorithm, _, expected = digest.partition(":")
        if algorithm != "sha256" or hashlib.sha256(resp.content).hexdigest() != expected:
            raise MalformedAnswerError(f"the blob fetched by digest {digest[:19]}… has another "
                                       "digest", image=str(image))
        return resp.content

    async def list_tags(self, image: ImageName) -> list[str]:
        return sorted(await self._repository(image))

    async def pushed_at(self, image: ImageName) -> dict[str, datetime]:
        """Push time per tag, already known from DescribeImages: `newest` costs nothing more."""
        return {tag: d["imagePushedAt"] for tag, d in (await self._repository(image)).items()
                if isinstance(d.get("imagePushedAt"), datetime)}

    async def list_repositories(self, namespace: str) -> list[str]:
        """Repository names under `namespace/` (all when empty)."""
        names: list[str] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {"registryId": self.registry_id, "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = await self._call(None, "describe_repositories", **kwargs)
            names += [r.get("repositoryName") for r in page.get("repositories", [])
                      if isinstance(r.get("repositoryName"), str)]
            token = _next_token(page, seen, None)
            if not token:
                break
        prefix = f"{namespace}/" if namespace else ""
        return sorted(n for n in names if n.startswith(prefix))

    async def aclose(self) -> None:
        return None


MAX_PAGES = 1000


def _next_token(page: dict[str, Any], seen: set[str], image: ImageName | None) -> str | None:
    """The next page's token; a token seen before or too many pages is a malformed answer."""
    token = page.get("nextToken")
    if not token:
        return None
    if not isinstance(token, str) or token in seen or len(seen) >= MAX_PAGES:
        raise MalformedAnswerError("ECR's pages do not end (a repeated nextToken or over "
                                   f"{MAX_PAGES} pages)", image=str(image) if image else None)
    seen.add(token)
    return token
