"""Frugal polling: pull allowances, steady request rates, and `docker login` credentials."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from tagsync.config import Config, DigestFormat, RegistryConfig
from tagsync.errors import ConfigError, RateLimitReserveError, RegistryAuthError
from tagsync.reference import ImageName
from tagsync.registry import Want, observe, open_sources
from tagsync.registry.credentials import docker_credentials
from tagsync.registry.oci import OciRegistry
from tagsync.registry.pacing import RateLimiter, parse_ratelimit
from tests.servers.fixtures import FaultyRegistry, RegistryServer
from tests.servers.proxy import Fault


def test_ratelimit_header_is_read_with_its_window():
    assert parse_ratelimit("76;w=21600") == 76
    assert parse_ratelimit("garbage") is None


def test_pulls_stop_at_the_reserve_but_heads_go_on(faulty_registry: FaultyRegistry):
    faulty_registry.upstream.push("lim/a", "v1", "lim a")
    faulty_registry.faults.add("HEAD .*/lim/a/", Fault(rewrite={"ratelimit-remaining": "5;w=21600"}))
    image = ImageName(faulty_registry.host, "lim/a")
    head = Want(image, "v1", DigestFormat.full, None)
    pull = Want(image, "v1", DigestFormat.image_id, None)
    client = OciRegistry(faulty_registry.url, ratelimit_reserve=10)

    async def go():
        try:
            first = await observe([head], {faulty_registry.host: client})
            second = await observe([pull, head], {faulty_registry.host: client})
            return first, second
        finally:
            await client.aclose()

    first, second = asyncio.run(go())
    assert first[head].value is not None
    assert client.stats.ratelimit_remaining == "5;w=21600"
    assert isinstance(second[pull].error, RateLimitReserveError)
    assert "left for the next run" in second[pull].error.message
    assert second[head].value is not None  # HEADs are not pulls
    assert not any(s.startswith("GET") and "/manifests/" in s for s in faulty_registry.faults.seen)


def test_rate_limiter_spaces_requests_after_a_burst(monkeypatch: pytest.MonkeyPatch):
    clock = [100.0]
    monkeypatch.setattr("tagsync.registry.pacing.time.monotonic", lambda: clock[0])

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr("tagsync.registry.pacing.asyncio.sleep", fake_sleep)
    limiter = RateLimiter(rate=5)  # bursts of 5, then one every 0.2 s

    async def go():
        for _ in range(15):
            await limiter.acquire()

    asyncio.run(go())
    assert clock[0] == pytest.approx(102.0)  # 10 requests beyond the burst, 0.2 s apart


def write_docker_config(tmp_path: Path, host: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return tmp_path


def test_docker_config_auths_are_found_by_host(tmp_path: Path):
    write_docker_config(tmp_path, "https://index.docker.io/v1/", "bot", "s3cret")
    assert docker_credentials("docker.io", tmp_path / "config.json") == ("bot", "s3cret")
    assert docker_credentials("ghcr.io", tmp_path / "config.json") is None


def test_bad_auth_entry_names_the_file(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": "%%%"}}}))
    with pytest.raises(ConfigError, match="not base64") as err:
        docker_credentials("ghcr.io", tmp_path / "config.json")
    assert str(tmp_path / "config.json") in str(err.value)


def _scan(config: Config, host: str, repo: str):
    want = Want(ImageName(host, repo), "v1", DigestFormat.full, None)

    async def go():
        sources = open_sources(config, [host])
        try:
            return (await observe([want], sources))[want]
        finally:
            for s in sources.values():
                await s.aclose()

    return asyncio.run(go())


def test_basic_auth_registry_uses_docker_login_credentials(
        basic_registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    built = basic_registry.push("cred/a", "v1", "cred a")
    assert basic_registry.auth is not None
    monkeypatch.setenv("DOCKER_CONFIG", str(write_docker_config(tmp_path, basic_registry.host,
                                                                *basic_registry.auth)))
    config = Config(catalogs=[{"name": "c", "file": "f", "image": "x", "pairs": ".t"}],
                    registries=[RegistryConfig(host=basic_registry.host, url=basic_registry.url)])
    assert _scan(config, basic_registry.host, "cred/a").value == built.digest


def test_without_any_credentials_the_error_says_how_to_give_them(
        basic_registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    basic_registry.push("cred/b", "v1", "cred b")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no config.json there
    config = Config(catalogs=[{"name": "c", "file": "f", "image": "x", "pairs": ".t"}],
                    registries=[RegistryConfig(host=basic_registry.host, url=basic_registry.url)])
    obs = _scan(config, basic_registry.host, "cred/b")
    assert isinstance(obs.error, RegistryAuthError)
    assert "credentials" in obs.error.message
