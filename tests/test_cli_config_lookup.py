"""Where commands find their config, and the root's options after a command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tagsync.cli import main

POD = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: nginx:1.25\n"


def test_refs_without_a_config_suggests_init(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["refs"]) == 2
    err = capsys.readouterr().err
    assert "no tagsync.yaml in" in err and "`tagsync init` writes one" in err


def test_a_named_config_that_is_missing_suggests_init(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refs", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "`tagsync init` writes a starting one" in capsys.readouterr().err


def test_refs_finds_the_config_in_a_parent_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "deploy" / "deep").mkdir(parents=True)
    (tmp_path / "deploy" / "pod.yaml").write_text(POD)
    (tmp_path / "tagsync.yaml").write_text("catalogs:\n  - name: a\n    files: ['deploy/*.yaml']\n"
                                           "    policy: {kind: semver}\n")
    monkeypatch.chdir(tmp_path / "deploy" / "deep")
    assert main(["refs"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "1 tracked, 0 left alone"
    assert f"using {tmp_path / 'tagsync.yaml'}" in err


@pytest.mark.parametrize("argv", [["refs", "-v", "X"], ["refs", "X", "--verbose"], ["-v", "refs", "X"]])
def test_verbose_works_before_or_after_the_command(
        tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    levels: list[int] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: levels.append(kw["level"]))
    assert main([str(tmp_path / "pod.yaml") if a == "X" else a for a in argv]) == 0
    assert levels == [logging.INFO]


def test_arguments_after_a_double_dash_stay_arguments(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text("k: v\n")
    assert main(["set", str(tmp_path / "a.yaml"), ".k", "--", "-v"]) == 0
    assert capsys.readouterr().out == 'k: "-v"\n'
