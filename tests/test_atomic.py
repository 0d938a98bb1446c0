"""Replacing a file whole: readers see the old bytes or the new; permissions are kept, and a new
file gets what any editor would give it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tagsync.atomic import write_atomic
from tagsync.errors import PublishError, TrustRootRefreshError


def test_a_new_file_gets_the_umasks_permissions_not_a_temporary_files(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.yaml", b"a: 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.yaml").stat().st_mode) == 0o644


def test_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "kept.yaml"
    path.write_bytes(b"a: 1\n")
    path.chmod(0o640)
    write_atomic(path, b"a: 2\n")
    assert (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) == (b"a: 2\n", 0o640)


def test_a_read_only_file_is_refused_with_the_callers_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(b"{}")
    path.chmod(0o444)
    with pytest.raises(TrustRootRefreshError, match="read-only"):
        write_atomic(path, b"{ }", TrustRootRefreshError)
    assert path.read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["root.json"]  # no temporary file left


def test_a_missing_folder_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="nothing was written") as caught:
        write_atomic(tmp_path / "no" / "such.yaml", b"a: 1\n")
    assert caught.value.file == str(tmp_path / "no" / "such.yaml")
