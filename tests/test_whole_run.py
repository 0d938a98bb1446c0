"""The whole run, not only the scan: the reads after it (explanations, ages, signatures) overlap
within the run's limits and its deadline, each image is read once, `--json` counts what the
registry saw (Docker Hub pulls included), and progress covers every phase."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.cli import main
from tagsync.config import load_config
from tagsync.explain import explain_all
from tagsync.image.tiny import build_image
from tagsync.progress import PhaseLines
from tagsync.reference import ImageName
from tagsync.run import run
from tests.servers.fixtures import FaultyRegistry, RegistryServer, unique_namespace
from tests.servers.proxy import Fault

SRC = "org.opencontainers.image.source"
REV = "org.opencontainers.image.revision"
CREATED = "2026-01-01T00:00:00Z"
T = TypeVar("T")


# --- a fake registry on a fake clock: every read takes one tick ---------------------------------


class Ticks:
    """A fake clock for reads: each call waits for the next tick, and a tick lets every waiting
    call through at once. The ticks a piece of work takes are its rounds of round trips;
    `widest` is the most reads that were in flight together."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []
        self.ticks = 0
        self.widest = 0

    async def wait(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        await future

    async def drive(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(100):  # everything runnable runs until it waits on the clock
                await asyncio.sleep(0)
            if self.waiting:
                batch, self.waiting = self.waiting, []
                self.ticks += 1
                self.widest = max(self.widest, len(batch))
                for future in batch:
                    future.set_result(None)
        return task.result()


def _config_blob(labels: dict[str, str]) -> bytes:
    return json.dumps({"created": "2026-01-01T00:00:00Z", "config": {"Labels": labels}}).encode()


class FakeSource:
    """Images by reference (any string): a manifest naming a config blob with `labels`.
    `stuck` names references whose reads never answer."""

    def __init__(self, ticks: Ticks, labels: dict[str, dict[str, str]],
                 stuck: frozenset[str] = frozenset(),
                 annotations: dict[str, dict[str, str]] | None = None) -> None:
        self.ticks, self.labels, self.stuck = ticks, labels, stuck
        self.annotations = annotations or {}
        self.calls: list[tuple[str, str]] = []
        self.blobs: dict[str, bytes] = {}

    async def get(self, image: ImageName, reference: str) -> tuple[bytes, str]:
        self.calls.append(("manifest", reference))
        if reference in self.stuck:
            await asyncio.Event().wait()
        await self.ticks.wait()
        config = _config_blob(self.labels.get(reference, {}))
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blobs[digest] = config
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": digest, "size": len(config)}, "layers": [],
                    "annotations": self.annotations.get(reference, {})}
        return json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json"

    async def blob(self, image: ImageName, digest: str) -> bytes:
        self.calls.append(("blob", digest))
        await self.ticks.wait()
        return self.blobs[digest]


def _changes(n: int) -> list[tuple[ImageName, str, str]]:
    return [(ImageName("reg.example", f"acme/app{i}"), f"old{i}", f"new{i}") for i in range(n)]


@pytest.mark.parametrize(("n", "concurrency"), [(20, 4), (33, 8), (5, 16)])
def test_the_label_reads_of_n_changes_overlap_in_ceil_n_over_concurrency_rounds(
        n: int, concurrency: int) -> None:
    """Each change reads its new image (a manifest, then its config): two round trips. N
    changes take ceil(N / concurrency) rounds of them, never more reads at once than allowed."""
    ticks = Ticks()
    source = FakeSource(ticks, {f"new{i}": {"org.opencontainers.image.version": "1"}
                                for i in range(n)})

    lines = asyncio.run(ticks.drive(explain_all({"reg.example": source}, _changes(n),
                                                concurrency=concurrency)))
    assert all(line == "version 1; built " + line.split("built ")[1] for line in lines.values())
    assert len(lines) == n
    assert ticks.ticks <= math.ceil(n / concurrency) * 2
    assert ticks.widest <= concurrency


def test_the_old_image_is_read_only_for_a_compare_view_and_still_overlaps() -> None:
    n, concurrency = 12, 4
    ticks = Ticks()
    forge = {f"new{i}": {SRC: "https://github.com/acme/app", REV: f"b{i}"} for i in range(0, n, 2)}
    elsewhere = {f"new{i}": {SRC: "https://git.example.com/acme/app", REV: f"b{i}"}
                 for i in range(1, n, 2)}
    olds = {f"old{i}": {SRC: "https://github.com/acme/app", REV: f"a{i}"} for i in range(n)}
    source = FakeSource(ticks, {**forge, **elsewhere, **olds})

    lines = asyncio.run(ticks.drive(explain_all({"reg.example": source}, _changes(n),
                                                concurrency=concurrency)))
    read_old = sorted(ref for kind, ref in source.calls if kind == "manifest" and "old" in ref)
    assert read_old == sorted(f"old{i}" for i in range(0, n, 2))  # the forge's changes only
    assert "compare/a0...b0" in (lines[_changes(n)[0]] or "")
    assert ticks.ticks <= math.ceil(n / concurrency) * 4
    assert ticks.widest <= concurrency


def test_an_old_image_whose_manifest_names_its_revision_costs_no_config_read() -> None:
    ticks = Ticks()
    source = FakeSource(ticks, {"new0": {SRC: "https://github.com/acme/app", REV: "b0"}},
                        annotations={"old0": {REV: "a0"}})
    lines = asyncio.run(ticks.drive(explain_all({"reg.example": source}, _changes(1))))
    assert "compare/a0...b0" in (lines[_changes(1)[0]] or "")
    assert [kind for kind, ref in source.calls] == ["manifest", "blob", "manifest"]


def test_an_image_that_never_answers_explains_less_and_holds_nothing() -> None:
    """A hostile image answers its HEAD, then never its labels: its change is explained less
    after the change's budget, while the others are explained."""
    ticks = Ticks()
    source = FakeSource(ticks, {"new0": {"org.opencontainers.image.version": "2"}},
                        stuck=frozenset({"new1"}))
    lines = asyncio.run(ticks.drive(explain_all({"reg.example": source}, _changes(2), budget=0.05)))
    assert (lines[_changes(2)[0]] or "").startswith("version 2")
    assert lines[_changes(2)[1]] is None


def test_past_the_runs_deadline_no_label_is_read() -> None:
    ticks = Ticks()
    source = FakeSource(ticks, {})
    lines = asyncio.run(ticks.drive(explain_all({"reg.example": source}, _changes(3),
                                                deadline=time.monotonic() - 1)))
    assert source.calls == [] and set(lines.values()) == {None}


# --- progress lines without a terminal ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quick_run_prints_no_progress_line() -> None:
    clock, out = Clock(), []
    lines = PhaseLines(out.append, every=5.0, clock=clock)
    for phase in ("scan", "verify", "ages", "explain", "publish"):
        clock.now += 0.5
        lines(phase, 1, 1)
    assert out == []


def test_a_slow_phase_says_where_it_is_at_most_every_few_seconds_and_when_it_ends() -> None:
    clock, out = Clock(), []
    lines = PhaseLines(out.append, every=5.0, clock=clock)
    for done in range(1, 101):  # one tag every 0.25 s: 25 s in all
        clock.now += 0.25
        lines("scan", done, 100)
    assert out[-1] == "tagsync: scan 100/100 tags done (25s)\n"
    assert out[0] == "tagsync: scan 20/100 tags (5s)\n"
    assert len(out) == 5  # 5 s, 10 s, 15 s, 20 s, then the end
    lines("scan", 100, 100)
    assert len(out) == 5  # an ended phase is not said again


def test_a_run_that_turns_out_slow_says_the_phases_it_ended_while_quiet() -> None:
    clock, out = Clock(), []
    lines = PhaseLines(out.append, every=5.0, clock=clock)
    clock.now += 1
    lines("tags", 3, 3)
    clock.now += 1
    lines("scan", 300, 300)
    clock.now += 4
    lines("explain", 10, 150)
    assert out == ["tagsync: tags 3/3 repositories done (1s)\n",
                   "tagsync: scan 300/300 tags done (2s)\n",
                   "tagsync: explain 10/150 changes (6s)\n"]


def test_every_phase_gets_its_own_line() -> None:
    clock, out = Clock(), []
    lines = PhaseLines(out.append, every=5.0, clock=clock)
    clock.now += 6
    for phase in ("scan", "verify", "ages", "explain", "publish"):
        lines(phase, 0, 2)
        lines(phase, 2, 2)
    assert [line.split()[1] for line in out] == [p for p in ("scan", "verify", "ages", "explain",
                                                             "publish") for _ in (0, 1)]


# --- whole runs against the real registry -------------------------------------------------------


def _catalog(tmp_path: Path, host: str, url: str, entries: list[str], extra: str = "",
             registry_extra: str = "") -> Path:
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       + "".join(f"    - image: {e}\n" for e in entries))
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"catalogs:\n  - name: app\n    file: pod.yaml\n{extra}"
                      f"registries:\n  - host: '{host}'\n    url: {url}\n{registry_extra}")
    return config


def _changed_images(registry: RegistryServer, ns: str, n: int,
                    labels: Callable[[int], dict[str, str]]) -> list[tuple[str, str]]:
    """n repositories whose `1.0` moved: (old digest, new digest) each."""
    out = []
    for i in range(n):
        old = registry.push(f"{ns}/app{i}", "1.0", build_image(f"{ns} {i} a", labels=labels(i),
                                                               created=CREATED))
        new = registry.push(f"{ns}/app{i}", "1.0", build_image(f"{ns} {i} b", labels=labels(i),
                                                               created=CREATED))
        out.append((old.digest, new.digest))
    return out


def _seen(faulty: FaultyRegistry) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for line in faulty.faults.seen:
        method, path = line.split(" ", 1)
        what = ("manifest" if "/manifests/" in path else "blob" if "/blobs/" in path
                else "tags" if path.endswith("/tags/list") else path)
        kinds[f"{what} {method}"] += 1
    return kinds


def test_json_request_counts_match_what_the_registry_saw(
        faulty_registry: FaultyRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("counted", request)
    host = faulty_registry.host
    digests = _changed_images(faulty_registry.upstream, ns, 3,
                              lambda i: {SRC: "https://github.com/acme/app", REV: f"r{i}"})
    entries = [f"{host}/{ns}/app{i}:1.0@{old}" for i, (old, _) in enumerate(digests)]
    config = _catalog(tmp_path, host, faulty_registry.url, entries)
    faulty_registry.faults.seen.clear()

    assert main(["run", "-c", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    counts = out["requests"]
    seen = _seen(faulty_registry)
    mine = {k: v for k, v in counts["by_host"][host].items() if k != "pulls"}
    assert mine == dict(seen)
    assert counts["requests"] == sum(seen.values()) == len(faulty_registry.faults.seen)
    assert counts["by_host"][host]["pulls"] == seen["manifest GET"] == counts["manifest_gets"]
    assert counts["by_kind"] == dict(seen)
    assert counts["docker_hub_pulls"] == 0  # no docker.io image here
    # per changed image: its HEAD, then the new and the old image's manifest and config
    assert seen == Counter({"manifest HEAD": 3, "manifest GET": 6, "blob GET": 6})


def test_each_image_is_read_once_however_many_references_and_phases_need_it(
        faulty_registry: FaultyRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """Two references to the same moved image, `min_age` reading its creation time and the
    explanation reading its labels: one manifest GET and one config GET of the new image; the
    old image is not read (its labels name no forge a compare view could use)."""
    ns = unique_namespace("once", request)
    host = faulty_registry.host
    [(old, new)] = _changed_images(faulty_registry.upstream, ns, 1,
                                   lambda i: {SRC: "https://git.example.com/acme/app"})
    entry = f"{host}/{ns}/app0:1.0@{old}"
    config = _catalog(tmp_path, host, faulty_registry.url, [entry, entry],
                      "    policy: {kind: same, min_age: 1h}\n")
    faulty_registry.faults.seen.clear()

    assert main(["run", "-c", str(config), "--json", "--quiet"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert len(changes) == 2 and all("source https://git.example.com/acme/app" in c["claims"]
                                     for c in changes)
    gets = [s for s in faulty_registry.faults.seen if s.startswith("GET")]
    assert [s for s in gets if "/manifests/" in s] == [f"GET /v2/{ns}/app0/manifests/{new}"]
    assert len([s for s in gets if "/blobs/" in s]) == 1
    assert not any(old in s for s in faulty_registry.faults.seen)


@pytest.mark.parametrize("where", ["run", "registry"])
def test_explain_false_saves_every_pull(
        where: str, faulty_registry: FaultyRegistry, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    ns = unique_namespace(f"noexplain-{where}", request)
    host = faulty_registry.host
    digests = _changed_images(faulty_registry.upstream, ns, 2,
                              lambda i: {SRC: "https://github.com/acme/app", REV: f"r{i}"})
    entries = [f"{host}/{ns}/app{i}:1.0@{old}" for i, (old, _) in enumerate(digests)]
    config = _catalog(tmp_path, host, faulty_registry.url, entries,
                      registry_extra="    explain: false\n" if where == "registry" else "")
    if where == "run":
        config.write_text(config.read_text() + "run:\n  explain: false\n")
    faulty_registry.faults.seen.clear()

    assert main(["run", "-c", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["changes"]) == 2 and not any(c["claims"] for c in out["changes"])
    assert out["requests"]["manifest_gets"] == out["requests"]["by_host"][host]["pulls"] == 0
    assert all(s.startswith("HEAD") for s in faulty_registry.faults.seen)


def test_an_image_answering_slowly_after_a_good_head_does_not_hold_the_run(
        faulty_registry: FaultyRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """Its labels' manifest takes far longer than a request may: the run ends after one
    request's time, every image is still written, the slow one explained less."""
    ns = unique_namespace("slowlabels", request)
    host = faulty_registry.host
    digests = _changed_images(faulty_registry.upstream, ns, 2,
                              lambda i: {"org.opencontainers.image.version": f"1.{i}"})
    entries = [f"{host}/{ns}/app{i}:1.0@{old}" for i, (old, _) in enumerate(digests)]
    config = _catalog(tmp_path, host, faulty_registry.url, entries, extra="")
    config.write_text(config.read_text() + "run:\n  timeout: 3\n")
    faulty_registry.faults.add(f"GET /v2/{ns}/app1/manifests/", *[Fault(delay=10)] * 2)

    assert main(["run", "-c", str(config), "--json", "--quiet"]) == 0
    changes = {c["image"].rsplit("/", 1)[1]: c for c in json.loads(capsys.readouterr().out)["changes"]}
    assert changes["app0"]["claims"].startswith("version 1.0")
    assert not changes["app1"]["claims"] and changes["app1"]["new"].endswith(digests[1][1])


def test_a_run_reports_every_phase_it_goes_through(
        registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("phases", request)
    digests = _changed_images(registry, ns, 3,
                              lambda i: {"org.opencontainers.image.version": f"1.{i}"})
    entries = [f"{registry.host}/{ns}/app{i}:1.0@{old}" for i, (old, _) in enumerate(digests)]
    config = _catalog(tmp_path, registry.host, registry.url, entries,
                      "    policy: {kind: same, min_age: 1h}\n")
    seen: list[tuple[str, int, int]] = []

    summary = run(load_config(config), progress=lambda *report: seen.append(report))
    assert len(summary.changes) == 3
    ends = [s for s in seen if s[1] == s[2]]
    assert [s[0] for s in ends] == ["scan", "ages", "explain", "publish"]
    assert ("scan", 3, 3) in ends and ("ages", 3, 3) in ends and ("explain", 3, 3) in ends
    for phase in ("scan", "ages", "explain"):  # counts only go up, to the total
        done = [s[1] for s in seen if s[0] == phase]
        assert done == sorted(done) == list(range(1, 4))


def test_without_a_terminal_progress_goes_to_stderr_and_quiet_silences_it(
        registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    import tagsync.progress

    monkeypatch.setattr(tagsync.progress, "EVERY", 0.0)  # every line, not one per 5 s
    ns = unique_namespace("quiet", request)
    [(old, _)] = _changed_images(registry, ns, 1, lambda i: {})
    config = _catalog(tmp_path, registry.host, registry.url, [f"{registry.host}/{ns}/app0:1.0@{old}"])

    assert main(["run", "-c", str(config), "--dry-run", "--quiet"]) == 0
    assert "tagsync: scan" not in capsys.readouterr().err
    assert main(["run", "-c", str(config), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "tagsync: scan 1/1 tags done" in err and "tagsync: explain 1/1 changes done" in err


def test_verification_reports_its_progress_too(tmp_path: Path, request: pytest.FixtureRequest
                                                ) -> None:
    from tests.servers.fixtures import _start_registry, _stop
    from tests.servers.signed import SignedRegistry, load_signed, signatures_dir

    if not signatures_dir().exists():
        pytest.skip("the signature fixtures in ../shared are absent")
    server = _start_registry(tmp_path / "registry")
    try:
        signed = SignedRegistry(server.url, server.host, tmp_path / "registry" / "data", server.url)
        fixture = load_signed("dir-img-cosign-valid")
        digest = signed.seed_manifest("verified/app", "latest", fixture.manifest)
        signed.push_sig("verified/app", digest, [fixture.layer])
        key = signatures_dir() / "containers-image" / "cosign.pub"
        config = _catalog(tmp_path, server.host, server.url,
                          [f"{server.host}/verified/app:latest@sha256:{'0' * 64}"],
                          f"    pin_digests: true\n    verify: {{key: '{key}'}}\n")
        seen: list[tuple[str, int, int]] = []
        summary = run(load_config(config), progress=lambda *report: seen.append(report))
    finally:
        _stop(server.process)
    assert len(summary.changes) == 1 and not summary.failures
    assert [s for s in seen if s[0] == "verify"] == [("verify", 1, 1)]


def test_the_runs_deadline_bounds_the_label_reads_of_a_slow_image(
        faulty_registry: FaultyRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """Its labels would arrive within a request's time (20 s), but after `run.max_duration`:
    they are not waited for, and every image is still written."""
    ns = unique_namespace("deadlinelabels", request)
    host = faulty_registry.host
    digests = _changed_images(faulty_registry.upstream, ns, 2,
                              lambda i: {"org.opencontainers.image.version": f"1.{i}"})
    entries = [f"{host}/{ns}/app{i}:1.0@{old}" for i, (old, _) in enumerate(digests)]
    config = _catalog(tmp_path, host, faulty_registry.url, entries)
    config.write_text(config.read_text() + "run:\n  max_duration: 6\n")
    faulty_registry.faults.add(f"GET /v2/{ns}/app1/manifests/", Fault(delay=15))

    assert main(["run", "-c", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    changes = {c["image"].rsplit("/", 1)[1]: c for c in out["changes"]}
    assert changes["app0"]["claims"].startswith("version 1.0")
    assert not changes["app1"]["claims"] and changes["app1"]["new"].endswith(digests[1][1])
    assert out["deferred"] == []  # the digests were all known: only an explanation was cut


def test_a_re_plan_adds_its_requests_to_the_first_pass_kind_by_kind_and_host_by_host() -> None:
    from tagsync.registry.counts import add_counts

    first = {"requests": 3, "heads": 3, "by_kind": {"manifest HEAD": 3},
             "by_host": {"r": {"manifest HEAD": 3, "pulls": 0}}, "ratelimit_remaining": "90;w=1"}
    again = {"requests": 2, "heads": 1, "by_kind": {"manifest HEAD": 1, "manifest GET": 1},
             "by_host": {"r": {"manifest HEAD": 1, "manifest GET": 1, "pulls": 1}},
             "ratelimit_remaining": "88;w=1"}
    assert add_counts(first, again) == {
        "requests": 5, "heads": 4, "by_kind": {"manifest HEAD": 4, "manifest GET": 1},
        "by_host": {"r": {"manifest HEAD": 4, "manifest GET": 1, "pulls": 1}},
        "ratelimit_remaining": "88;w=1"}


def test_tag_listing_reports_its_progress(
        registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("tagphase", request)
    for i in range(2):
        registry.push(f"{ns}/app{i}", "1.0.0", build_image(f"{ns} {i} a"))
        registry.push(f"{ns}/app{i}", "1.1.0", build_image(f"{ns} {i} b"))
    config = _catalog(tmp_path, registry.host, registry.url,
                      [f"{registry.host}/{ns}/app{i}:1.0.0" for i in range(2)],
                      "    policy: {kind: semver}\n")
    seen: list[tuple[str, int, int]] = []
    summary = run(load_config(config), dry_run=True, progress=lambda *report: seen.append(report))
    assert len(summary.changes) == 2
    assert [s for s in seen if s[0] == "tags"] == [("tags", 1, 2), ("tags", 2, 2)]


def test_docker_hub_pulls_are_the_manifest_gets_docker_io_saw(
        faulty_registry: FaultyRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """docker.io pointed at a local registry (a mirror): its manifest GETs are the pulls Docker
    Hub would count; its HEADs and blob GETs are not."""
    ns = unique_namespace("hubpulls", request)
    digests = _changed_images(faulty_registry.upstream, ns, 2,
                              lambda i: {SRC: "https://github.com/acme/app", REV: f"r{i}"})
    entries = [f"docker.io/{ns}/app{i}:1.0@{old}" for i, (old, _) in enumerate(digests)]
    config = _catalog(tmp_path, "docker.io", faulty_registry.url, entries)
    faulty_registry.faults.seen.clear()

    assert main(["run", "-c", str(config), "--json", "--quiet"]) == 0
    counts = json.loads(capsys.readouterr().out)["requests"]
    seen = _seen(faulty_registry)
    assert counts["docker_hub_pulls"] == seen["manifest GET"] == 4  # new and old, per image
    assert counts["by_host"]["docker.io"]["manifest HEAD"] == seen["manifest HEAD"] == 2


def test_read_once_shares_one_fetch_keeps_only_successes_and_survives_a_cancelled_caller() -> None:
    from tagsync.registry.readonce import ReadOnce

    async def scenario() -> None:
        reads = ReadOnce()
        calls: list[str] = []
        release = asyncio.Event()

        async def fetch() -> tuple[bytes, str]:
            calls.append("fetch")
            await release.wait()
            return b"body", "type"

        key = ("manifest", "acme/app", "sha256:" + "a" * 64)
        first = asyncio.ensure_future(reads.once(key, fetch))
        second = asyncio.ensure_future(reads.once(key, fetch))
        await asyncio.sleep(0)
        first.cancel()  # one caller gives up (its deadline): the other still gets the answer
        release.set()
        assert await second == (b"body", "type")
        assert await reads.once(key, fetch) == (b"body", "type")
        assert calls == ["fetch"]

        async def failing() -> tuple[bytes, str]:
            calls.append("failing")
            raise ValueError("a lying answer")

        other = ("blob", "acme/app", "sha256:" + "b" * 64)
        for _ in range(2):  # a failure is not kept: asked again, fetched again
            with pytest.raises(ValueError):
                await reads.once(other, failing)
        assert calls == ["fetch", "failing", "failing"]

    asyncio.run(scenario())


PHASES = ("tags", "scan", "verify", "ages", "explain", "publish")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 4, allow_nan=False), st.sampled_from(PHASES),
                          st.integers(0, 5), st.integers(1, 5)), max_size=60))
def test_progress_lines_are_never_more_often_than_every_few_seconds(
        calls: list[tuple[float, str, int, int]]) -> None:
    """Whatever the reports: nothing in the first 5 s, a phase's lines at least 5 s apart
    except the one that ends it, and a phase ends at most once."""
    clock, out = Clock(), []
    lines = PhaseLines(out.append, every=5.0, clock=clock)
    start = clock.now
    written: dict[str, list[tuple[float, bool]]] = {}
    for step, phase, done, total in calls:
        clock.now += step
        before = len(out)
        lines(phase, min(done, total), total)
        for line in out[before:]:
            assert clock.now - start >= 5.0
            said = line.split()[1]
            written.setdefault(said, []).append((clock.now, " done (" in line))
    for times in written.values():
        assert sum(ending for _, ending in times) <= 1
        assert all(not ending for _, ending in times[:-1])  # nothing after the end
        plain = [t for t, ending in times if not ending]
        assert all(b - a >= 5.0 for a, b in itertools.pairwise(plain))
