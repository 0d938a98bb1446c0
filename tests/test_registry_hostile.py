"""A hostile registry, case by case, through `tagsync run`: every case is bounded in time and
requests, fails only its own image with a one-line reason, leaves its entry as written, lets the
well-behaved image be updated, and never shows a traceback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.config import DigestFormat
from tagsync.errors import EXIT_PARTIAL
from tagsync.reference import ImageName, short
from tagsync.registry import Observation, Want, observe
from tagsync.registry.oci import OciRegistry
from tests.servers.hostile import CASES, HostileRegistry, kernels_config

TIMEOUT = 1.0  # run.timeout in these configs: a case that hangs would take 20 times longer
BOUND = 12.0  # seconds a case may take, far below what a hang or a retry storm costs
OLD = "0123456789ab"

CATALOG = """\
images:
  - name: good/app
    tag: "1.0.0"
    digest: "{old}"
  - name: {hostile}
    tag: "1.0.0"
    digest: "{old}"
"""


@dataclass
class World:
    registry: HostileRegistry
    folder: Path
    config: Path

    @property
    def catalog(self) -> Path:
        return self.folder / "images.yml"

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str, float]:
        start = time.monotonic()
        code = main(["run", "-c", str(self.config), "--json", *args])
        elapsed = time.monotonic() - start
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip() else {}, err, elapsed


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileRegistry]:
    server = HostileRegistry(tags={"good/app": ["1.0.0", "1.1.0"]},
                             credentials=("robot", "s3cret-pass")).start()
    monkeypatch.setenv("HOSTILE_PASSWORD", "s3cret-pass")
    try:
        yield server
    finally:
        server.stop()


def make_world(server: HostileRegistry, tmp_path: Path, hostile_repo: str,
               extra_run: str = "") -> World:
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / "images.yml").write_text(CATALOG.format(old=OLD, hostile=hostile_repo))
    config = folder / "tagsync.yaml"
    config.write_text(kernels_config(
        server, catalog_extra="    policy: {kind: semver}\n",
        registry_extra="    username: robot\n    password: env:HOSTILE_PASSWORD\n",
        run=f"  timeout: {TIMEOUT}\n  retries: 2\n  max_wait: 5\n{extra_run}"))
    return World(server, folder, config)


def good_entry(server: HostileRegistry) -> str:
    _, config = server.manifest("good/app", "1.1.0")
    return f'  - name: good/app\n    tag: "1.1.0"\n    digest: "{short(config)}"\n'


CONTAINED = sorted(set(CASES) - {"retry-after"})  # retry-after defers the whole registry


@pytest.mark.parametrize("case", CONTAINED)
def test_a_hostile_answer_fails_only_its_image(case: str, hostile: HostileRegistry,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(hostile, tmp_path, f"h/{case}")
    code, summary, err, elapsed = world.run(capsys)
    assert code == EXIT_PARTIAL
    assert "Traceback" not in err
    assert elapsed < BOUND
    (failure,) = summary["failures"]
    assert failure["image"] == f"{hostile.host}/h/{case}"
    assert CASES[case] in failure["error"]
    assert "\n" not in failure["error"]
    text = world.catalog.read_text()
    assert good_entry(hostile) in text  # the other image is still updated
    assert f'  - name: h/{case}\n    tag: "1.0.0"\n    digest: "{OLD}"\n' in text  # left alone
    assert len(hostile.requests_for(f"h/{case}")) <= 210  # a page cap, never a retry storm
    assert "s3cret-pass" not in err + json.dumps(summary)


def test_credentials_and_requests_never_go_to_the_host_a_page_links_to(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(hostile, tmp_path, "h/link-foreign")
    world.run(capsys)
    assert [r for r in hostile.seen if r.port == hostile.other_port] == []
    assert "9.9.9" not in world.catalog.read_text()


def test_a_page_that_links_to_itself_costs_one_request(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(hostile, tmp_path, "h/link-self")
    world.run(capsys)
    tag_pages = [r for r in hostile.requests_for("h/link-self") if "/tags/list" in r.path
                 and "authorization" in r.headers]
    assert len(tag_pages) == 1


def test_a_trickling_body_costs_one_request_timeout(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Headers at once, then a byte every half second: not retried (a retry would trickle too)."""
    world = make_world(hostile, tmp_path, "h/trickle")
    world.run(capsys)
    assert len([r for r in hostile.requests_for("h/trickle") if "authorization" in r.headers]) == 1


def test_retry_after_beyond_max_wait_defers_the_registry_without_waiting(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The registry's work is left for the next run: both its images, listed, nothing written."""
    world = make_world(hostile, tmp_path, "h/retry-after")
    before = world.catalog.read_bytes()
    code, summary, err, elapsed = world.run(capsys)
    assert code == EXIT_PARTIAL and "Traceback" not in err and elapsed < BOUND
    assert f"{hostile.host}/h/retry-after" in summary["deferred"]
    reasons = {f["image"]: f["error"] for f in summary["failures"]}
    assert CASES["retry-after"] in reasons[f"{hostile.host}/h/retry-after"]
    assert "left for the next run" in reasons[f"{hostile.host}/good/app"]
    authed = [r for r in hostile.requests_for("h/retry-after") if "authorization" in r.headers]
    assert len(authed) == 1  # deferred at the first answer: no per-image or per-attempt retry
    assert world.catalog.read_bytes() == before


def test_a_manifest_that_fails_its_digest_is_not_used(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(hostile, tmp_path, "h/digest-mismatch")
    world.run(capsys)
    _, other = hostile.manifest("h/digest-mismatch", "something-else")
    assert short(other) not in world.catalog.read_text()


def test_all_cases_at_once_with_one_good_image_stay_within_two_request_timeouts(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(hostile, tmp_path, "h/trickle")
    entries = "".join(f'  - name: h/{case}\n    tag: "1.0.0"\n    digest: "{OLD}"\n'
                      for case in CONTAINED)
    world.catalog.write_text(f'images:\n  - name: good/app\n    tag: "1.0.0"\n'
                             f'    digest: "{OLD}"\n{entries}')
    code, summary, err, elapsed = world.run(capsys)
    assert code == EXIT_PARTIAL and "Traceback" not in err
    assert {f["image"].removeprefix(f"{hostile.host}/h/") for f in summary["failures"]} == set(CONTAINED)
    assert good_entry(hostile) in world.catalog.read_text()
    assert elapsed < BOUND


def test_max_duration_bounds_the_whole_run(
        hostile: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A trickle under a long request timeout is still cut at run.max_duration."""
    world = make_world(hostile, tmp_path, "h/trickle", "  max_duration: 1\n")
    world.config.write_text(world.config.read_text().replace(f"timeout: {TIMEOUT}", "timeout: 60"))
    code, summary, err, elapsed = world.run(capsys)
    assert code == EXIT_PARTIAL and "Traceback" not in err
    assert f"{hostile.host}/h/trickle" in summary["deferred"]
    assert elapsed < BOUND


def test_retry_after_is_one_wait_for_the_whole_registry(tmp_path: Path) -> None:
    """16 images, 4 connections, a registry limited for a second: only the 4 requests already
    sent meet the 429; the other 12 wait for the shared pause instead of each getting a 429."""
    repos = [f"good/r{i}" for i in range(16)]
    server = HostileRegistry(tags={r: ["1.0.0"] for r in repos}, limited_for=1.0).start()
    try:
        client = OciRegistry(server.url, max_concurrency=4, max_wait=5)
        wants = [Want(ImageName(server.host, r), "1.0.0", DigestFormat.full, None) for r in repos]

        async def go() -> dict[Want, Observation]:
            try:
                return await observe(wants, {server.host: client}, concurrency=16)
            finally:
                await client.aclose()

        found = asyncio.run(go())
        assert all(found[w].value == server.manifest(w.image.repository, "1.0.0")[0]
                   for w in wants)
        assert len(server.seen) == 16 + 4
    finally:
        server.stop()
