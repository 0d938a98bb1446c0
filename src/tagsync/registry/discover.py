"""Find the repositories of a namespace, so new ones can become catalog entries.

Docker Hub has no registry-side listing (`/v2/_catalog` is disabled there); its Hub API does:
`GET /v2/namespaces/{namespace}/repositories`, paginated by `next` links, anonymous for public
repositories, Bearer (`POST /v2/auth/token` with a PAT or an organisation token) for private
ones. Hub answers 429 with `X-Retry-After` (a Unix time) when its API limit is reached. Other
registries list through `/v2/_catalog` (OCI) or `DescribeRepositories` (ECR).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import httpx

from tagsync.errors import ImageNotFoundError, RegistryAuthError, RegistryError

log = logging.getLogger(__name__)

HUB_API = "https://hub.docker.com"


class RepositoryLister(Protocol):
    async def list_repositories(self, namespace: str) -> list[str]:
        """Full repository names (`namespace/name`) under a namespace."""
        ...

    async def aclose(self) -> None:
        ...


class DockerHub:
    """Docker Hub's own API (not the registry): repositories of a user or organisation."""

    def __init__(self, api_url: str = HUB_API, username: str | None = None,
                 secret: str | None = None, page_size: int = 100, max_wait: float = 60.0,
                 timeout: float = 20.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.username, self.secret = username, secret
        self.page_size = page_size
        self.max_wait = max_wait
        self._client = httpx.AsyncClient(timeout=timeout, headers={"User-Agent": "tagsync"})
        self._token: str | None = None
        self.requests = 0
        self.ratelimit_remaining: str | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        waited = 0.0
        while True:
            self.requests += 1
            try:
                resp = await self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                raise RegistryError(f"cannot reach Docker Hub's API: {type(exc).__name__}",
                                    image=self.api_url) from None
            self.ratelimit_remaining = resp.headers.get("X-RateLimit-Remaining",
                                                        self.ratelimit_remaining)
            if resp.status_code != 429:
                return resp
            until = resp.headers.get("X-Retry-After") or resp.headers.get("Retry-After") or ""
            wait = float(until) - time.time() if until.isdigit() and int(until) > 10**9 else (
                float(until) if until.replace(".", "", 1).isdigit() else 1.0)
            wait = max(0.0, wait)
            if waited + wait > self.max_wait:
                raise RegistryError(f"Docker Hub's API limit is reached for {wait:.0f}s more; "
                                    "try the next run", image=self.api_url)
            log.info("Docker Hub API limit reached; waiting %.1fs", wait)
            waited += wait
            await asyncio.sleep(wait)

    async def _auth(self) -> dict[str, str]:
        if self.username is None:
            return {}
        if self._token is None:
            resp = await self._send("POST", f"{self.api_url}/v2/auth/token",
                                    json={"identifier": self.username, "secret": self.secret or ""})
            if resp.status_code in (401, 403):
                raise RegistryAuthError("Docker Hub refused the credentials (use a personal or "
                                        "organisation access token)", image=self.api_url)
            if resp.status_code >= 400:
                raise RegistryError(f"Docker Hub token request failed: HTTP {resp.status_code}",
                                    image=self.api_url)
            self._token = str(resp.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    async def list_repositories(self, namespace: str) -> list[str]:
        names: list[str] = []
        url: str | None = f"{self.api_url}/v2/namespaces/{namespace}/repositories"
        params: dict[str, Any] | None = {"page_size": self.page_size, "ordering": "name"}
        while url:
            resp = await self._send("GET", url, params=params, headers=await self._auth())
            if resp.status_code == 404:
                raise ImageNotFoundError(f"Docker Hub has no namespace {namespace!r}",
                                         image=f"docker.io/{namespace}")
            if resp.status_code in (401, 403):
                raise RegistryAuthError(f"Docker Hub refused to list {namespace!r}",
                                        image=f"docker.io/{namespace}")
            if resp.status_code >= 400:
                raise RegistryError(f"listing {namespace!r} failed: HTTP {resp.status_code}",
                                    image=f"docker.io/{namespace}")
            body = resp.json()
            for repo in body.get("results") or []:
                if repo.get("repository_type") in (None, "image"):
                    names.append(f"{repo.get('namespace') or namespace}/{repo['name']}")
            url, params = body.get("next"), None  # `next` carries the query
        return sorted(set(names))
