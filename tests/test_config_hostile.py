"""A hostile `tagsync.yaml` (issue #27, item 8): every way YAML can fail is exit 2 with the
file, line and column; nothing parses until the process is killed; no message quotes a value
that may be a secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.config import load_config, parse_config
from tagsync.config_yaml import MAX_CHARS, MAX_DEPTH
from tagsync.errors import EXIT_USAGE, ConfigError

CATALOG = "catalogs: [{name: c, file: f.yml, image: x/y, tag: .t, digest: .d}]\n"


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "tagsync.yaml", Path("."))
    return info.value


def test_a_nul_byte_is_refused_at_its_line_and_column() -> None:
    error = refused(CATALOG + "run:\n  timeout: 1\x00\n")
    assert (error.line, error.column) == (3, 13)
    assert "#x0000 is not allowed" in error.message


def test_nesting_too_deep_is_refused_at_its_line_and_column_without_recursing() -> None:
    start = time.monotonic()
    error = refused(CATALOG + "x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert time.monotonic() - start < 5  # refused near the limit, not after reading it all
    assert f"nested deeper than {MAX_DEPTH} levels" in error.message
    assert error.line == 2 and error.column is not None and error.column > MAX_DEPTH


def test_nesting_within_the_limit_reaches_validation() -> None:
    error = refused(CATALOG + "x: " + "[" * 50 + "]" * 50 + "\n")
    assert "x" in error.message and "nested" not in error.message  # pydantic: extra key


def test_a_key_given_twice_is_refused_naming_both_lines() -> None:
    error = refused(CATALOG + "run:\n  timeout: 5\nrun:\n  timeout: 60\n")
    assert error.message == "key 'run' appears twice in one mapping (lines 2 and 4); keep one"
    assert (error.line, error.column) == (4, 1)


def test_a_key_given_twice_deeper_down_is_refused_too() -> None:
    error = refused("catalogs:\n  - name: a\n    file: f.yml\n    name: b\n")
    assert "key 'name' appears twice" in error.message and error.line == 4


def test_a_merge_key_beside_the_keys_it_overrides_is_not_a_duplicate() -> None:
    config = parse_config("catalogs:\n  - &c {name: c, file: f.yml, image: x/y, tag: .t, "
                          "digest: .d}\n  - <<: *c\n    name: d\n", "tagsync.yaml", Path("."))
    assert [c.name for c in config.catalogs] == ["c", "d"]


def test_aliases_that_expand_beyond_the_limit_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    start = time.monotonic()
    error = refused(CATALOG + "\n".join(lines) + "\n")
    assert time.monotonic() - start < 5
    assert "expands to over" in error.message


def test_a_config_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    start = time.monotonic()
    error = refused(CATALOG + "#" * MAX_CHARS)
    assert time.monotonic() - start < 1
    assert f"over the {MAX_CHARS}-character limit" in error.message


def test_a_huge_config_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "tagsync.yaml"
    with path.open("wb") as fh:
        fh.write(CATALOG.encode())
        fh.truncate(48 << 20)  # 48 MB, sparse: the reader must stop long before the end
    with pytest.raises(ConfigError, match=r"over the .*-character limit"):
        load_config(path)


def test_a_literal_password_is_refused_without_quoting_it() -> None:
    error = refused(CATALOG + "registries:\n  - host: r.example\n    username: bot\n"
                    "    password: S3cr3t-Hunter2\n")
    assert "S3cr3t" not in str(error)
    assert 'registry "r.example": password' in error.message
    assert "not a secret reference" in error.message


@pytest.mark.parametrize(("text", "where"), [
    (CATALOG + "run:\n  timeout: 1\x00\n", ":3:13:"),
    (CATALOG + "x: " + "[" * 5000 + "\n", ":2:"),
    (CATALOG + "run: {}\nrun: {}\n", ":3:1:"),
])
def test_the_cli_says_where_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        text: str, where: str) -> None:
    path = tmp_path / "tagsync.yaml"
    path.write_text(text)
    assert main(["run", "-c", str(path), "--json"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{path}{where}" in err and "Traceback" not in err
