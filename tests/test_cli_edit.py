"""`tagsync get` and `tagsync set` on files, as a user types them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tagsync.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_get_prints_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yml"
    f.write_text('tags:\n  - ["3.6", "abc"]\n')
    assert run(capsys, "get", str(f), ".tags[0][1]") == (0, "abc\n", "")


def test_set_prints_the_edited_file_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.yml"
    f.write_text("a: 1 # c\n")
    code, out, _ = run(capsys, "set", str(f), ".a", "yes")
    assert (code, out) == (0, 'a: "yes" # c\n')
    assert f.read_text() == "a: 1 # c\n"


def test_set_in_place_keeps_permissions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yml"
    f.write_text("a: 1\n")
    os.chmod(f, 0o640)
    assert run(capsys, "set", "-i", str(f), ".a", "two")[0] == 0
    assert f.read_text() == "a: two\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["c.yml"]


def test_second_document_with_doc_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yml"
    f.write_text("a: 1\n---\na: 2\n")
    assert run(capsys, "get", str(f), ".a", "--doc", "1")[1] == "2\n"


def test_error_names_file_line_column_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.yml"
    f.write_text("a: [1\nb: 2\n")
    code, _out, err = run(capsys, "set", "-i", str(f), ".a", "x")
    assert code == 1
    assert f"{f}:2:" in err
    assert f.read_text() == "a: [1\nb: 2\n"


def test_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "get")[0] == 2


def test_set_refuses_with_a_reason_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.yml"
    f.write_text("a: ! x\n")
    code, out, err = run(capsys, "set", "-i", str(f), ".a", "1.10")
    assert (code, out) == (1, "")
    assert f"{f}:1:4:" in err and "non-specific tag" in err and "Traceback" not in err
    assert f.read_text() == "a: ! x\n"


def test_set_fills_an_empty_value_after_an_explicit_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "s.yml"
    f.write_text("? Mark McGwire\n? Sammy Sosa\n")
    code, out, _ = run(capsys, "set", str(f), '.["Mark McGwire"]', "1.10")
    assert (code, out) == (0, '? Mark McGwire\n: "1.10"\n? Sammy Sosa\n')


def test_set_changes_only_the_chomping_indicator_of_a_block_scalar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "w.yml"
    f.write_text("run: |\n  docker pull nginx:1.25.3\nnext: 1\n")
    code, out, _ = run(capsys, "set", str(f), ".run", "docker pull nginx:1.25.4")
    assert (code, out) == (0, "run: |-\n  docker pull nginx:1.25.4\nnext: 1\n")
