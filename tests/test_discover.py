"""Namespace discovery: new repositories become catalog entries (Docker Hub API, OCI catalog)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tagsync.config import load_config
from tagsync.errors import DeadlineError, MalformedAnswerError, RegistryAuthError, RegistryError
from tagsync.find.paths import repository_pattern
from tagsync.http_policy import RetryPolicy
from tagsync.reference import short
from tagsync.registry.discover import DockerHub
from tagsync.run import run
from tests.servers.fixtures import RegistryServer


def listed(hub, **kw) -> list[str]:
    client = DockerHub(hub.url, **kw)

    async def go():
        try:
            return await client.list_repositories("acme")
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_hub_listing_follows_every_page(hub):
    for i in range(5):
        hub.add("acme", f"svc-{i}")
    assert listed(hub, page_size=2) == [f"acme/svc-{i}" for i in range(5)]
    assert sum("repositories" in h for h in hub.hits) == 3


def test_hub_private_repositories_need_a_token(hub):
    hub.add("acme", "public")
    hub.add("acme", "secret", private=True)
    hub.accounts["acme"] = "dckr_oat_x"
    assert listed(hub) == ["acme/public"]
    assert listed(hub, username="acme", secret="dckr_oat_x") == ["acme/public", "acme/secret"]


def test_hub_refused_credentials_are_an_auth_error(hub):
    hub.add("acme", "public")
    with pytest.raises(RegistryAuthError, match="access token"):
        listed(hub, username="acme", secret="wrong")


def test_hub_plugins_are_not_images(hub):
    hub.add("acme", "app")
    hub.add("acme", "volume-driver", kind="plugin")
    assert listed(hub) == ["acme/app"]


def test_hub_api_limit_waits_for_x_retry_after(hub):
    hub.add("acme", "app")
    hub.throttle = 1
    assert listed(hub) == ["acme/app"]
    assert len(hub.hits) == 2


def test_hub_api_unavailable_for_a_moment_is_retried_with_backoff(hub):
    hub.add("acme", "app")
    hub.unavailable = 2
    assert listed(hub, retry=RetryPolicy(attempts=3, base_delay=0.01)) == ["acme/app"]
    assert len(hub.hits) == 3


def test_hub_api_unavailable_beyond_the_retries_is_an_error_not_a_traceback(hub):
    hub.add("acme", "app")
    hub.unavailable = 5
    with pytest.raises(RegistryError, match="HTTP 503"):
        listed(hub, retry=RetryPolicy(attempts=1, base_delay=0.01))
    assert len(hub.hits) == 2


def test_hub_token_request_is_not_repeated_on_a_503(hub):
    """A POST could act twice: only reads are retried."""
    hub.add("acme", "app", private=True)
    hub.accounts["acme"] = "dckr_oat_x"
    hub.unavailable = 1
    with pytest.raises(RegistryError, match="token request failed: HTTP 503"):
        listed(hub, username="acme", secret="dckr_oat_x", retry=RetryPolicy(attempts=3, base_delay=0.01))
    assert len(hub.hits) == 1


def test_hub_api_limit_with_a_wait_already_past_is_retried_a_bounded_number_of_times(hub):
    """A reset time in the past (clock skew) is no reason to hammer the API: the backoff
    applies, and `retries` bounds the attempts."""
    hub.add("acme", "app")
    hub.throttle = 50
    hub.throttle_until = 0  # an X-Retry-After long past
    with pytest.raises(RegistryError, match="limit is reached"):
        listed(hub, retry=RetryPolicy(attempts=2, base_delay=0.01))
    assert len(hub.hits) == 3


@pytest.mark.parametrize("wait", ["soon", "nan", "Thu, 99 Foo 2027"])
def test_hub_api_limit_with_an_unreadable_wait_fails_at_once(hub, wait):
    """A wait the server cannot say is a reason, not a guess (issue #27)."""
    hub.add("acme", "app")
    hub.throttle = 50
    hub.throttle_until = wait
    with pytest.raises(MalformedAnswerError, match="429 with a wait that is unreadable"):
        listed(hub, retry=RetryPolicy(attempts=2, base_delay=0.01))
    assert len(hub.hits) == 1


def test_hub_api_waits_end_at_the_runs_deadline(hub):
    hub.add("acme", "app")
    hub.unavailable = 5
    client = DockerHub(hub.url, retry=RetryPolicy(attempts=4, base_delay=30.0, max_delay=30.0))
    client.deadline = time.monotonic() + 5

    async def go():
        try:
            return await client.list_repositories("acme")
        finally:
            await client.aclose()

    with pytest.raises(DeadlineError, match="run's time is up"):
        asyncio.run(go())
    assert len(hub.hits) == 1


def test_the_contract_server_refuses_off_spec_requests(hub):
    hub.add("acme", "app")
    httpx.get(f"{hub.url}/v2/namespaces/acme/repositories", params={"page_size": 5000, "n": 1})
    assert len(hub.violations) == 2
    hub.violations.clear()


def test_image_templates_become_namespace_patterns():
    assert repository_pattern("lablup/kernel-{name}")[:3] == (
        "docker.io", "lablup", r"^lablup/kernel\-(?P<f0>[^/]+)$")
    assert repository_pattern("python-{v}")[1] == "library"
    assert repository_pattern("127.0.0.1:5000/team/{name}")[:2] == ("127.0.0.1:5000", "team")


CATALOG = """\
images:
  - name: python   # first
    tags:
      - ["latest", "{py}"]
"""

TEMPLATE = 'name: ${name}\n    tags:\n      - ["${tag}", "${digest}"]\n'


def write(tmp_path: Path, catalog: str, image: str, registries: str) -> Path:
    (tmp_path / "images.yml").write_text(catalog)
    (tmp_path / "tagsync.yaml").write_text(f"""\
catalogs:
  - name: kernels
    file: images.yml
    entries: .images[*]
    image: "{image}"
    pairs: .tags
    digest_format: short
    new_images:
      template: |
        name: ${{name}}
        tags:
          - ["${{tag}}", "${{digest}}"]
      exclude: ["*/kernel-legacy"]
registries:
{registries}
""")
    return tmp_path / "tagsync.yaml"


def test_new_docker_hub_repositories_are_appended_from_the_template(hub, registry: RegistryServer,
                                                                     tmp_path: Path):
    py = registry.push("acme/kernel-python", "latest", "hub py")
    jl = registry.push("acme/kernel-julia", "latest", "hub julia")
    for name in ("kernel-python", "kernel-julia", "kernel-legacy", "website"):
        hub.add("acme", name)
    before = CATALOG.format(py=short(py.digest))
    config = write(tmp_path, before, "acme/kernel-{name}", f"""\
  - host: docker.io
    url: {registry.url}
    hub_url: {hub.url}
""")
    summary = run(load_config(config))
    text = (tmp_path / "images.yml").read_text()
    assert text == before + f'  - name: julia\n    tags:\n      - ["latest", "{short(jl.digest)}"]\n'
    assert [c.reason for c in summary.changes] == ["new repository"]
    assert yaml.safe_load(text)["images"][1]["name"] == "julia"
    assert run(load_config(config)).changes == []  # idempotent: the catalog is the state


def test_oci_registries_are_discovered_through_the_catalog_endpoint(registry: RegistryServer,
                                                                     tmp_path: Path):
    ns = "disc" + str(abs(hash(str(tmp_path))) % 10**6)
    py = registry.push(f"{ns}/kernel-python", "latest", f"{ns} py")
    registry.push(f"{ns}/kernel-r", "latest", f"{ns} r")
    registry.push(f"{ns}-other/kernel-x", "latest", f"{ns} x")
    before = CATALOG.format(py=short(py.digest))
    config = write(tmp_path, before, f"{registry.host}/{ns}/kernel-{{name}}", f"""\
  - host: "{registry.host}"
    url: {registry.url}
""")
    summary = run(load_config(config), dry_run=True)
    assert [c.image for c in summary.changes] == [f"{registry.host}/{ns}/kernel-r"]
    assert "+  - name: r\n" in summary.diff
    assert (tmp_path / "images.yml").read_text() == before  # dry run writes nothing


def test_a_namespace_that_cannot_be_listed_is_reported_and_the_rest_proceeds(hub, registry,
                                                                            tmp_path: Path):
    py = registry.push("acme/kernel-python", "latest", "hub py 2")
    config = write(tmp_path, CATALOG.format(py="000000000000"), "acme/kernel-{name}", f"""\
  - host: docker.io
    url: {registry.url}
    hub_url: {hub.url}
""")
    summary = run(load_config(config))  # the Hub has no namespace "acme" here
    assert any("cannot list repositories" in f.error for f in summary.failures)
    assert [c.new for c in summary.changes] == [short(py.digest)]
