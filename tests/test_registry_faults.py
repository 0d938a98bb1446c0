"""Polite retries and untrusted answers, through a misbehaving proxy in front of the registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tagsync.config import DigestFormat
from tagsync.errors import InvalidReferenceError, RegistryError
from tagsync.http_policy import RetryPolicy
from tagsync.reference import ImageName
from tagsync.registry.base import digest_value
from tagsync.registry.oci import OciRegistry
from tests.servers.fixtures import FaultyRegistry
from tests.servers.proxy import Fault

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0)


def head(url: str, repo: str, tag: str, **kw: Any) -> tuple[str, OciRegistry]:
    client = OciRegistry(url, retry=kw.pop("retry", FAST), **kw)

    async def go() -> str:
        try:
            return await digest_value(client, ImageName("r", repo), tag, DigestFormat.full, None)
        finally:
            await client.aclose()

    return asyncio.run(go()), client


def test_429_with_retry_after_is_honoured(faulty_registry: FaultyRegistry) -> None:
    built = faulty_registry.upstream.push("f/ratelimited", "v1", "rl")
    faulty_registry.faults.add("HEAD .*/f/ratelimited/", Fault(429, {"Retry-After": "1"}))
    import time

    start = time.monotonic()
    digest, client = head(faulty_registry.url, "f/ratelimited", "v1")
    assert digest == built.digest
    assert client.stats.retries == 1
    assert time.monotonic() - start >= 0.9  # waited as told, not the 10 ms backoff


def test_503_twice_then_success(faulty_registry: FaultyRegistry) -> None:
    built = faulty_registry.upstream.push("f/flaky", "v1", "flaky")
    faulty_registry.faults.add("HEAD .*/f/flaky/", Fault(503), Fault(503))
    digest, client = head(faulty_registry.url, "f/flaky", "v1")
    assert (digest, client.stats.retries) == (built.digest, 2)


def test_connection_reset_is_retried(faulty_registry: FaultyRegistry) -> None:
    built = faulty_registry.upstream.push("f/reset", "v1", "reset")
    faulty_registry.faults.add("HEAD .*/f/reset/", Fault(reset=True))
    digest, _ = head(faulty_registry.url, "f/reset", "v1")
    assert digest == built.digest
    # the HTTP client itself resends an idempotent request once on a dropped connection
    # (RFC 9112, 9.3.1); our retry policy covers what happens after that
    assert [s for s in faulty_registry.faults.seen if "f/reset" in s] == [
        "HEAD /v2/f/reset/manifests/v1"] * 2


def test_a_connection_that_keeps_dropping_ends_in_a_clear_error(
        faulty_registry: FaultyRegistry) -> None:
    faulty_registry.upstream.push("f/gone", "v1", "gone")
    faulty_registry.faults.add("HEAD .*/f/gone/", *[Fault(reset=True)] * 20)
    with pytest.raises(RegistryError, match=r"cannot reach .*ServerDisconnectedError"):
        head(faulty_registry.url, "f/gone", "v1")


def test_retries_are_bounded(faulty_registry: FaultyRegistry) -> None:
    faulty_registry.upstream.push("f/down", "v1", "down")
    faulty_registry.faults.add("HEAD .*/f/down/", *[Fault(503)] * 10)
    with pytest.raises(RegistryError, match="HTTP 503"):
        head(faulty_registry.url, "f/down", "v1")


def test_slow_answer_times_out_then_retries(faulty_registry: FaultyRegistry) -> None:
    built = faulty_registry.upstream.push("f/slow", "v1", "slow")
    faulty_registry.faults.add("HEAD .*/f/slow/", Fault(delay=1.5))
    digest, client = head(faulty_registry.url, "f/slow", "v1", timeout=0.5)
    assert digest == built.digest
    assert client.stats.retries == 1


def test_malformed_digest_from_the_registry_never_passes(faulty_registry: FaultyRegistry) -> None:
    faulty_registry.upstream.push("f/evil", "v1", "evil")
    faulty_registry.faults.add(
        "HEAD .*/f/evil/", Fault(rewrite={"Docker-Content-Digest": 'sha256:zz" && #injected'}))
    with pytest.raises(InvalidReferenceError, match="not a valid sha256"):
        head(faulty_registry.url, "f/evil", "v1")


def test_tag_outside_the_oci_grammar_is_refused_before_any_request() -> None:
    with pytest.raises(InvalidReferenceError, match="OCI tag grammar"):
        head("http://127.0.0.1:9", "f/x", "bad tag!")


def test_unreachable_registry_is_a_clear_error(closed_port: int) -> None:
    with pytest.raises(RegistryError, match=r"cannot reach http://127\.0\.0\.1"):
        head(f"http://127.0.0.1:{closed_port}", "f/x", "v1")


def test_tag_pages_are_followed(faulty_registry: FaultyRegistry) -> None:
    for i in range(5):
        faulty_registry.upstream.push("f/paged", f"t{i}", f"paged {i}")
    client = OciRegistry(faulty_registry.url)

    async def go() -> list[str]:
        try:
            return await client.list_tags(ImageName("r", "f/paged"), page_size=2)
        finally:
            await client.aclose()

    assert asyncio.run(go()) == [f"t{i}" for i in range(5)]
    assert client.stats.requests == 3


def test_http_proxy_from_the_environment_carries_the_requests(
        faulty_registry: FaultyRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    built = faulty_registry.upstream.push("f/proxied", "v1", "proxied")
    monkeypatch.setenv("HTTP_PROXY", faulty_registry.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    digest, _ = head(faulty_registry.upstream.url, "f/proxied", "v1")
    assert digest == built.digest
    assert f"HEAD {faulty_registry.upstream.url}/v2/f/proxied/manifests/v1" in faulty_registry.faults.seen


def test_no_proxy_sends_matching_hosts_directly(
        faulty_registry: FaultyRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    built = faulty_registry.upstream.push("f/direct", "v1", "direct")
    monkeypatch.setenv("HTTP_PROXY", faulty_registry.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    digest, _ = head(faulty_registry.upstream.url, "f/direct", "v1")
    assert digest == built.digest
    assert not [s for s in faulty_registry.faults.seen if "f/direct" in s]
