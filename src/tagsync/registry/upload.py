"""Pushing to a registry (the image builder): blobs found by `HEAD`, mounted from another
repository or uploaded (monolithic or in chunks), manifests put, and a blob streamed to a file
with its digest checked, so large base layers never sit in memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from tagsync.errors import ImageNotFoundError, RegistryError
from tagsync.http_policy import header_int
from tagsync.reference import ImageName
from tagsync.registry.answers import server_url
from tagsync.registry.auth import Authenticated
from tagsync.registry.transport import (
    _TRANSPORT_ERRORS,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    _https,
    _untrusted,
    origin_of,
)


@dataclass(frozen=True)
class Upload:
    """An open blob upload session: where the next bytes go."""

    location: str
    min_chunk: int = 0  # OCI-Chunk-Min-Length, when the registry sets one


def _push_scope(image: ImageName) -> str:
    return f"repository:{image.repository}:pull,push"


class Uploads(Authenticated):
    """The client's push side: every write it makes to a registry."""

    async def has_blob(self, image: ImageName, digest: str) -> bool:
        """`HEAD` a blob: present blobs are never uploaded again."""
        try:
            await self._request("HEAD", f"/v2/{image.repository}/blobs/{digest}", image, "blob",
                                scope=_push_scope(image))
        except ImageNotFoundError:
            return False
        return True

    async def start_upload(self, image: ImageName, mount: str | None = None,
                           mount_from: str | None = None) -> Upload | None:
        """Open an upload session, or mount `mount` from another repository of this registry.

        None means the blob was mounted (201): nothing to send. A registry that cannot mount
        answers 202 with an ordinary session, so asking costs nothing extra.
        """
        url = f"/v2/{image.repository}/blobs/uploads/"
        scope = _push_scope(image)
        if mount and mount_from:
            url += f"?mount={mount}&from={mount_from}"
            scope += f" repository:{mount_from}:pull"
        resp = await self._request("POST", url, image, "upload", scope=scope)
        if resp.status == 201:
            return None
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError("the registry opened an upload without a Location", image=str(image))
        min_chunk = resp.headers.get("OCI-Chunk-Min-Length", "")
        return Upload(server_url(self.base_url + "/", location, "Location", str(image)),
                      header_int(min_chunk) or 0)

    async def upload_chunk(self, image: ImageName, upload: Upload, data: bytes, offset: int) -> Upload:
        """`PATCH` one chunk; the registry answers with where the next one goes."""
        resp = await self._request(
            "PATCH", upload.location, image, "upload", scope=_push_scope(image), content=data,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Range": f"{offset}-{offset + len(data) - 1}"}, retry=False)
        location = resp.headers.get("Location") or upload.location
        return Upload(server_url(self.base_url + "/", location, "Location", str(image)),
                      upload.min_chunk)

    async def finish_upload(self, image: ImageName, upload: Upload, digest: str,
                            data: bytes = b"") -> None:
        """`PUT …?digest=`: with the whole blob (monolithic) or empty after chunks."""
        sep = "&" if "?" in upload.location else "?"
        await self._request(
            "PUT", f"{upload.location}{sep}digest={digest}", image, "upload",
            scope=_push_scope(image), content=data,
            headers={"Content-Type": "application/octet-stream"}, retry=False)

    async def put_manifest(self, image: ImageName, reference: str, body: bytes,
                           media_type: str) -> str:
        resp = await self._request(
            "PUT", f"/v2/{image.repository}/manifests/{reference}", image, "manifest upload",
            scope=_push_scope(image), content=body, headers={"Content-Type": media_type})
        return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()

    async def download_blob(self, image: ImageName, digest: str, dest: Path) -> None:
        """Stream a blob to `dest`, checking its digest; large base layers never sit in memory."""
        self._check_allowance(image)
        url = f"{self.base_url}/v2/{image.repository}/blobs/{digest}"
        scope = f"repository:{image.repository}:pull"
        await self._request("HEAD", url, image, "blob")  # learns the auth challenge, finds 404s
        headers = {}
        auth = await self._auth_header(scope)
        if auth:
            headers["Authorization"] = auth
        algorithm, _, expected = digest.partition(":")
        hasher = hashlib.new(algorithm)
        partial = dest.with_name(dest.name + ".part")
        async with self._gate:
            try:
                # redirects followed by hand, as every other answer's (to storage elsewhere,
                # HTTPS even from HTTP): credentials dropped across origins, userinfo stripped
                for _ in range(MAX_REDIRECTS + 1):
                    self.stats.requests += 1
                    target = URL(url, encoded=True)
                    async with self._session().get(target, headers=headers, allow_redirects=False,
                                                   proxy=self._proxy(target),
                                                   ssl=_https()) as resp:
                        location = resp.headers.get("Location")
                        if resp.status in REDIRECT_STATUSES and location:
                            nxt = server_url(url, location, "Location", str(image))
                            if origin_of(nxt) != origin_of(url):
                                headers.pop("Authorization", None)
                            url = nxt
                            continue
                        if resp.status >= 400:
                            raise RegistryError(f"GET blob {digest} failed: HTTP {resp.status}",
                                                image=str(image))
                        with partial.open("wb") as out:
                            async for chunk in resp.content.iter_chunked(1 << 20):
                                hasher.update(chunk)
                                out.write(chunk)
                        break
                else:
                    raise RegistryError(f"cannot download blob {digest}: TooManyRedirects "
                                        f"(more than {MAX_REDIRECTS})", image=str(image))
            except (*_TRANSPORT_ERRORS, aiohttp.ClientError) as exc:  # proxies too
                partial.unlink(missing_ok=True)
                if isinstance(exc, aiohttp.ClientConnectorCertificateError):
                    raise RegistryError(_untrusted(exc), image=str(image)) from None
                raise RegistryError(f"cannot download blob {digest}: {type(exc).__name__}",
                                    image=str(image)) from None
        if hasher.hexdigest() != expected:
            partial.unlink(missing_ok=True)
            raise RegistryError(f"blob {digest} arrived with a different digest", image=str(image))
        partial.replace(dest)
