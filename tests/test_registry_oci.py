"""The OCI client against the real CNCF registry (plain, Basic auth, Bearer tokens)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tagsync.config import DigestFormat
from tagsync.errors import ImageNotFoundError, RegistryAuthError, RegistryError, TagsyncError
from tagsync.http_policy import RetryPolicy
from tagsync.image.tiny import build_image
from tagsync.reference import ImageName, short
from tagsync.registry.base import digest_value
from tagsync.registry.oci import OciRegistry
from tests.servers.fixtures import RegistryServer, _start_registry, _stop, skopeo_push_umoci_image


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with(client: OciRegistry, fn: Any) -> Any:
    try:
        return await fn(client)
    finally:
        await client.aclose()


def name(server: RegistryServer, repo: str) -> ImageName:
    return ImageName.parse(f"{server.host}/{repo}")


def head_of(server: RegistryServer, repo: str, **client: Any) -> Any:
    """HEAD `repo:v1` with a fresh client (its own auth state), closing it afterwards."""
    return run(_with(OciRegistry(server.url, **client), lambda c: c.head(name(server, repo), "v1")))


def test_a_plain_http_registry_never_loads_a_ca_bundle(registry: RegistryServer) -> None:
    """Reading a CA bundle costs ~25 ms of a cold start; only an HTTPS request needs one."""
    from tagsync.registry import transport

    registry.push("team/plain", "v1", "plain v1")
    transport._ssl_context.cache_clear()
    assert head_of(registry, "team/plain").digest.startswith("sha256:")
    assert transport._ssl_context.cache_info().currsize == 0


def test_head_gives_the_pushed_digest_without_a_manifest_get(registry: RegistryServer) -> None:
    built = registry.push("team/head", "v1", "head v1")
    client = OciRegistry(registry.url)
    desc = run(_with(client, lambda c: c.head(name(registry, "team/head"), "v1")))
    assert desc.digest == built.digest
    assert (client.stats.heads, client.stats.manifest_gets) == (1, 0)


def test_short_digest_costs_one_head(registry: RegistryServer) -> None:
    built = registry.push("team/short", "v1", "short v1")
    client = OciRegistry(registry.url)
    value = run(_with(client, lambda c: digest_value(
        c, name(registry, "team/short"), "v1", DigestFormat.short, None)))
    assert value == short(built.digest)
    assert client.stats.requests == 1


def test_image_id_reads_the_config_digest(registry: RegistryServer) -> None:
    built = registry.push("team/imageid", "v1", "image id v1")
    client = OciRegistry(registry.url)
    value = run(_with(client, lambda c: digest_value(
        c, name(registry, "team/imageid"), "v1", DigestFormat.image_id, None)))
    assert value == short(built.config_digest())
    assert client.stats.manifest_gets == 1


def test_multi_arch_index_digest_by_default(registry: RegistryServer) -> None:
    built = registry.push("team/multi", "v1", build_image("multi", ("linux/amd64", "linux/arm64")))
    value = run(_with(OciRegistry(registry.url), lambda c: digest_value(
        c, name(registry, "team/multi"), "v1", DigestFormat.full, None)))
    assert value == built.digest


def test_multi_arch_platform_manifest_digest_on_request(registry: RegistryServer) -> None:
    built = registry.push("team/multi2", "v1", build_image("m2", ("linux/amd64", "linux/arm64")))
    index = json.loads(built.manifest)
    arm = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    value = run(_with(OciRegistry(registry.url), lambda c: digest_value(
        c, name(registry, "team/multi2"), "v1", DigestFormat.full, "linux/arm64")))
    assert value == arm


def test_image_id_of_multi_arch_uses_the_platform(registry: RegistryServer) -> None:
    built = registry.push("team/multi3", "v1", build_image("m3", ("linux/amd64", "linux/arm64")))
    value = run(_with(OciRegistry(registry.url), lambda c: digest_value(
        c, name(registry, "team/multi3"), "v1", DigestFormat.image_id, "linux/arm64")))
    assert value == short(built.config_digest("linux/arm64"))



def test_unknown_tag_is_not_found(registry: RegistryServer) -> None:
    registry.push("team/known", "v1", "known")
    with pytest.raises(ImageNotFoundError, match="'nope' not found"):
        run(_with(OciRegistry(registry.url), lambda c: c.head(name(registry, "team/known"), "nope")))


def test_a_tag_that_starts_like_a_digest_is_still_a_tag(registry: RegistryServer) -> None:
    pushed = registry.push("team/shas", "sha-0123abc", "sha tag")
    got = run(_with(OciRegistry(registry.url),
                    lambda c: c.head(name(registry, "team/shas"), "sha-0123abc")))
    assert got.digest == pushed.digest


def test_a_malformed_digest_is_refused_before_any_request(registry: RegistryServer) -> None:
    client = OciRegistry(registry.url)
    with pytest.raises(TagsyncError, match="sha256:zz"):
        run(_with(client, lambda c: c.head(name(registry, "team/shas"), "sha256:zz")))
    assert client.stats.requests == 0


def test_image_built_by_umoci_and_pushed_by_skopeo(registry: RegistryServer, tmp_path: Path) -> None:
    digest = skopeo_push_umoci_image(registry, tmp_path, "team/umoci", "1.0", "hello")
    desc = run(_with(OciRegistry(registry.url), lambda c: c.head(name(registry, "team/umoci"), "1.0")))
    assert desc.digest == digest


# --- Basic auth -------------------------------------------------------------------------


def test_basic_auth_with_credentials(basic_registry: RegistryServer) -> None:
    built = basic_registry.push("private/app", "v1", "basic v1")
    client = OciRegistry(basic_registry.url, username="robot", password="s3cret")
    desc = run(_with(client, lambda c: c.head(name(basic_registry, "private/app"), "v1")))
    assert desc.digest == built.digest


def test_basic_auth_without_credentials_says_so(basic_registry: RegistryServer) -> None:
    basic_registry.push("private/app2", "v1", "basic v1")
    with pytest.raises(RegistryAuthError, match="requires credentials"):
        head_of(basic_registry, "private/app2")


def test_basic_auth_wrong_password_is_refused(basic_registry: RegistryServer) -> None:
    basic_registry.push("private/app3", "v1", "basic v1")
    with pytest.raises(RegistryAuthError, match="refused our credentials"):
        head_of(basic_registry, "private/app3", username="robot", password="wrong")


# --- Bearer tokens (the Docker Hub flow) ------------------------------------------------


def test_anonymous_bearer_token_for_public_images(token_registry: RegistryServer) -> None:
    built = token_registry.push("public/web", "v1", "public v1")
    desc = head_of(token_registry, "public/web")
    assert desc.digest == built.digest
    assert token_registry.issued[-1]["user"] == ""  # type: ignore[attr-defined]


def test_credentialed_bearer_token_for_private_images(token_registry: RegistryServer) -> None:
    built = token_registry.push("private/db", "v1", "private v1")
    client = OciRegistry(token_registry.url, username="robot", password="s3cret")
    desc = run(_with(client, lambda c: c.head(name(token_registry, "private/db"), "v1")))
    assert desc.digest == built.digest
    assert token_registry.issued[-1]["scope"] == ["repository:private/db:pull"]  # type: ignore[attr-defined]


def test_token_is_reused_within_its_lifetime(token_registry: RegistryServer) -> None:
    token_registry.push("private/cache", "v1", "c1")
    token_registry.push("private/cache", "v2", "c2")
    client = OciRegistry(token_registry.url, username="robot", password="s3cret")

    async def both(c: OciRegistry) -> None:
        await c.head(name(token_registry, "private/cache"), "v1")
        await c.head(name(token_registry, "private/cache"), "v2")

    run(_with(client, both))
    assert client.stats.token_requests == 1


def test_anonymous_pull_of_private_images_is_refused(token_registry: RegistryServer) -> None:
    token_registry.push("private/secret", "v1", "s1")
    with pytest.raises(RegistryAuthError):
        head_of(token_registry, "private/secret")


def test_wrong_password_at_the_token_service(token_registry: RegistryServer) -> None:
    token_registry.push("private/wrong", "v1", "w1")
    with pytest.raises(RegistryAuthError, match="token service refused"):
        head_of(token_registry, "private/wrong", username="robot", password="nope")


def test_an_unreachable_token_service_is_named_in_the_error(
        token_registry: RegistryServer, tmp_path: Path) -> None:
    """The token service often lives on another host (auth.docker.io): the error names it, since
    that is the host a firewall or proxy must let through."""
    closed = socket.socket()  # bound, never listening: a connection is refused, and no one else
    closed.bind(("127.0.0.1", 0))  # can take the port meanwhile
    realm = f"http://127.0.0.1:{closed.getsockname()[1]}"
    server = _start_registry(tmp_path, (
        f"auth:\n  token:\n    realm: {realm}/token\n    service: test-registry\n"
        f"    issuer: tagsync-test-issuer\n"
        f"    rootcertbundle: {token_registry.token_root}\n"))  # type: ignore[attr-defined]
    try:
        with pytest.raises(RegistryError, match=f"cannot reach the token service {realm}: "):
            head_of(server, "any/repo")
    finally:
        _stop(server.process)
        closed.close()


def test_a_refused_connection_is_said_in_words(tmp_path: Path) -> None:
    """Not aiohttp's text, which carries its TLS context's repr (`ssl:<ssl.SSLContext object at
    0x…>`): the host, the port and the system's reason."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    client = OciRegistry(f"https://127.0.0.1:{port}", retry=RetryPolicy(attempts=0))
    try:
        with pytest.raises(RegistryError) as err:
            run(_with(client, lambda c: c.head(ImageName.parse(f"127.0.0.1:{port}/a/b"), "v1")))
    finally:
        closed.close()
    # the system's reason: asyncio's own "Connect call failed (address)" reads alike for every errno
    assert f"cannot connect to 127.0.0.1:{port} (Connection refused)" in err.value.message
    assert "SSLContext" not in err.value.message and "0x" not in err.value.message


def test_a_blob_redirected_to_another_host_is_fetched_without_our_credentials(
        basic_registry: RegistryServer) -> None:
    """Docker Hub answers blob GETs with a 307 to its CDN: follow it, but the registry's
    credentials stay with the registry."""
    from tests.servers.fixtures import serve_wsgi
    from tests.servers.proxy import Fault, FaultPlan, make_proxy

    blob = b'{"created": "2026-01-01T00:00:00Z"}'
    cdn_saw: list[str | None] = []

    def cdn(environ: dict[str, Any], start: Any) -> list[bytes]:
        cdn_saw.append(environ.get("HTTP_AUTHORIZATION"))
        start("200 OK", [("Content-Type", "application/octet-stream"),
                         ("Content-Length", str(len(blob)))])
        return [blob]

    cdn_server = serve_wsgi(cdn)
    plan = FaultPlan()
    plan.add("GET .*/blobs/", Fault(307, {"Location": f"{cdn_server.url}/signed/blob?sig=x%3D"}))
    front = serve_wsgi(make_proxy(basic_registry.url, plan))
    try:
        client = OciRegistry(front.url, username="robot", password="s3cret")

        async def go(c: OciRegistry) -> bytes:
            await c.ping()  # learns the Basic challenge: the blob GET then carries credentials
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()  # content is checked against it
            return await c.blob(ImageName("front", "private/app"), digest)

        assert run(_with(client, go)) == blob
        assert cdn_saw == [None]
        assert any(s.startswith("GET /v2/private/app/blobs/") for s in plan.seen)
    finally:
        front.stop()
        cdn_server.stop()
