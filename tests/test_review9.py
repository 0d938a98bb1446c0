"""Review of session 9's work: each test pins a bug found in review, fixed with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tagsync.errors import PublishError, RegistryError
from tagsync.publish import github as gh
from tagsync.registry.discover import DockerHub
from tests.servers.connect_proxy import ConnectProxy, start_connect_proxy

PROXY_USER, PROXY_SECRET = "corp", "pr0xy-s3cret"


@pytest.fixture
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def guarded_proxy(clean_proxy_environment: None) -> Iterator[ConnectProxy]:
    proxy = start_connect_proxy((PROXY_USER, PROXY_SECRET))
    yield proxy
    proxy.stop()


def schemeless_with_wrong_password(proxy: ConnectProxy) -> str:
    """`HTTPS_PROXY=user:password@host:port`: httpx reads it as an http:// proxy."""
    return f"{PROXY_USER}:wr0ng-pa55@{proxy.url.removeprefix('http://')}"


def test_a_schemeless_proxy_url_keeps_its_password_out_of_a_github_error(
        guarded_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", schemeless_with_wrong_password(guarded_proxy))
    api = gh.GitHubApi("https://127.0.0.1:9", gh.StaticToken("ghp_x"), retries=1)
    try:
        with pytest.raises(PublishError) as caught:
            api.request("GET", "/repos/a/b", "reading a/b")
    finally:
        api.close()
    message = str(caught.value)
    assert "407" in message and "proxy" in message
    assert "wr0ng-pa55" not in message
    assert len(guarded_proxy.refused) == 1


def test_a_schemeless_proxy_url_keeps_its_password_out_of_a_docker_hub_error(
        guarded_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", schemeless_with_wrong_password(guarded_proxy))

    async def go() -> list[str]:
        client = DockerHub("https://127.0.0.1:9")
        try:
            return await client.list_repositories("acme")
        finally:
            await client.aclose()

    with pytest.raises(RegistryError) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert "407" in message and "proxy" in message
    assert "wr0ng-pa55" not in message
    assert len(guarded_proxy.refused) == 1
