"""Review of session 9's work: each test pins a bug found in review, fixed with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import yaml

from tagsync.catalog import Catalog
from tagsync.catalog.append import Append
from tagsync.config import CatalogConfig
from tagsync.errors import PublishError, RegistryError
from tagsync.find import References, find_references, open_source
from tagsync.publish import github as gh
from tagsync.reference import ImageName
from tagsync.registry.discover import DockerHub
from tagsync.registry.oci import OciRegistry
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


# --- Helm: a registry reached through a merge key inside the merged mapping ------------------


def helm_refs(text: str) -> References:
    config = CatalogConfig.model_validate({"name": "t", "file": "values.yaml", "pin_digests": True})
    return find_references(config, open_source(text.encode(), "values.yaml", config))


def test_a_registry_merged_into_the_merged_mapping_names_the_host() -> None:
    """YAML reads `image.registry` as quay.io here (merges nest): reading docker.io would
    fetch the digest from the wrong registry."""
    found = helm_refs("base: &base {registry: quay.io}\n"
                      "defaults: &defaults {<<: *base, pullPolicy: Always}\n"
                      "image: {<<: *defaults, repository: a/b, tag: \"1\"}\n")
    assert yaml.safe_load("base: &base {registry: quay.io}\n"
                          "defaults: &defaults {<<: *base}\nimage: {<<: *defaults}\n"
                          )["image"]["registry"] == "quay.io"
    [slot] = found.slots
    assert str(slot.image) == "quay.io/a/b"


def test_merge_keys_that_loop_back_end_the_search_for_a_registry() -> None:
    """`a` merges `b`, which merges `a` (an alias may name a mapping still open): no registry
    anywhere, so Docker Hub's, and no endless search."""
    [slot] = helm_refs("a: &a {b: &b {<<: *a}, <<: *b}\n"
                       "image: {<<: *a, repository: a/b, tag: \"1\"}\n").slots
    assert str(slot.image) == "docker.io/a/b"


# --- append: an anchor after a verbatim tag -------------------------------------------------


def test_a_copied_pair_drops_an_anchor_that_follows_a_verbatim_tag() -> None:
    """`!<tag:yaml.org,2002:str>` is a tag like `!!str` (its `,` is inside the brackets): the
    anchor after it is left out of the copy with the tag, not reported missing."""
    text = "tags:\n  - [!<tag:yaml.org,2002:str> &t '3.6', abc]\n"
    out = Catalog(text).apply([Append(("tags",), ("3.7", "def"))])
    assert out == text + "  - ['3.7', def]\n"
    assert yaml.safe_load(out)["tags"][1] == ["3.7", "def"]


def test_a_schemeless_proxy_url_is_used_for_a_registry_and_keeps_its_password_out(
        guarded_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """`HTTPS_PROXY=user:password@host:port` is an http:// proxy to httpx and curl; aiohttp
    refused it as an invalid URL and the error showed the password."""
    monkeypatch.setenv("HTTPS_PROXY", schemeless_with_wrong_password(guarded_proxy))

    async def go() -> None:
        client = OciRegistry("https://127.0.0.1:9")
        try:
            await client.head(ImageName.parse("127.0.0.1:9/a/b"), "1")
        finally:
            await client.aclose()

    with pytest.raises(RegistryError) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert "wr0ng-pa55" not in message
    assert "proxy" in message and "407" in message
    assert len(guarded_proxy.refused) == 1
