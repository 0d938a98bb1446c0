"""SIGTERM and SIGINT during a run that writes many files (issue #27, item 6): the run ends with
128 + the signal's number, no staged `.tagsync` file is left in the catalog folder, and no file
is half-written: before the renames every file is as it was, among them the stop waits for the
last one. The signal is raised from inside the publisher at a chosen step (no timing)."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tagsync.cli import main
from tests.servers.hostile import HostileRegistry

FILES = 30
STALE = "sha256:" + "0" * 64


@pytest.fixture
def registry() -> Iterator[HostileRegistry]:
    server = HostileRegistry(tags={"good/app": ["1.0.0"]}).start()
    try:
        yield server
    finally:
        server.stop()


def checkout(tmp_path: Path, server: HostileRegistry) -> tuple[Path, dict[Path, bytes]]:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for i in range(FILES):
        (deploy / f"pod{i:02}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers:\n"
            f"    - name: app\n      image: {server.host}/good/app:1.0.0@{STALE}\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
catalogs:
  - name: deploy
    kind: kubernetes
    files: ["deploy/*.yaml"]
registries:
  - host: "{server.host}"
    url: {server.url}
""")
    return config, {p: p.read_bytes() for p in deploy.iterdir()}


def leftovers(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.name.endswith(".tagsync")]


def stop_at(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, call: int,
            signum: int) -> None:
    """Raise `signum` in this process right after the `call`-th call of `target.name`."""
    real: Callable[..., Any] = getattr(target, name)
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = real(*args, **kwargs)
        calls += 1
        if calls == call:
            signal.raise_signal(signum)
        return result

    monkeypatch.setattr(target, name, wrapped)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_staging_leaves_nothing_staged_and_every_file_as_it_was(
        signum: int, registry: HostileRegistry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import tagsync.publish.files as files

    config, before = checkout(tmp_path, registry)
    stop_at(monkeypatch, files, "stage_file", FILES // 2, signum)
    assert main(["run", "-c", str(config)]) == 128 + signum
    err = capsys.readouterr().err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert leftovers(tmp_path) == []
    assert {p: p.read_bytes() for p in before} == before


def test_a_stop_among_the_renames_waits_for_the_last_one(
        registry: HostileRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config, before = checkout(tmp_path, registry)
    stop_at(monkeypatch, os, "replace", 3, signal.SIGTERM)
    assert main(["run", "-c", str(config)]) == 128 + signal.SIGTERM
    assert leftovers(tmp_path) == []
    digest, _ = registry.manifest("good/app", "1.0.0")
    assert all(digest.encode() in p.read_bytes() for p in before)  # all replaced, none half


def test_the_previous_handlers_are_back_after_a_run(registry: HostileRegistry,
                                                     tmp_path: Path) -> None:
    config, _ = checkout(tmp_path, registry)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["run", "-c", str(config), "--dry-run"]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_a_stop_while_the_registries_are_asked_ends_the_run_with_nothing_written(
        registry: HostileRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Inside the event loop: the stop ends every request, not only the one it met."""
    from tagsync.registry.oci import OciRegistry

    config, before = checkout(tmp_path, registry)
    stop_at(monkeypatch, OciRegistry, "_check_allowance", 1, signal.SIGTERM)  # before a GET
    monkeypatch.setattr(OciRegistry, "head", _head_then_get)
    assert main(["run", "-c", str(config)]) == 128 + signal.SIGTERM
    assert "Traceback" not in capsys.readouterr().err
    assert leftovers(tmp_path) == [] and {p: p.read_bytes() for p in before} == before


async def _head_then_get(self: Any, image: Any, reference: str) -> Any:
    """A HEAD that is followed by a GET, as for a registry that omits the digest on HEAD."""
    from tagsync.registry.manifest import Descriptor

    body, media_type = await self.get(image, reference)
    return Descriptor("sha256:" + hashlib.sha256(body).hexdigest(), media_type, len(body))
