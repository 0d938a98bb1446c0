"""`tagsync init`: a starting config for the references found in a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.cli import main
from tagsync.config import load_config

FILES = {
    "deploy/web.yaml": "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n"
                       "      containers:\n        - image: ghcr.io/acme/web:1.4.2\n",
    "charts/web/values.yaml": "image:\n  repository: ghcr.io/acme/web\n  tag: 1.4.2\n",
    "Dockerfile": "FROM python:3.12-slim AS build\nFROM build\n",
    "notes.txt": "image: not-a-yaml-file\n",
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_init_writes_one_catalog_per_shape_found(checkout: Path) -> None:
    assert main(["init", str(checkout)]) == 0
    cfg = load_config(checkout / "tagsync.yaml")
    assert {(c.name, c.shape, tuple(c.files or ())) for c in cfg.catalogs} == {
        ("dockerfile", "dockerfile", ("Dockerfile",)),
        ("helm", "helm", ("charts/web/values.yaml",)),
        ("kubernetes", "kubernetes", ("deploy/web.yaml",)),
    }


def test_the_header_counts_in_words_that_agree(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(FILES["deploy/web.yaml"])
    assert main(["init", str(tmp_path)]) == 0
    assert "#   1 reference in 1 file (kubernetes 1)" in (tmp_path / "tagsync.yaml").read_text()


def test_the_written_config_tracks_what_refs_finds_in_the_checkout(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(checkout)]) == 0
    capsys.readouterr()
    assert main(["refs", str(checkout)]) == 0
    direct = capsys.readouterr().out.splitlines()[-1]
    assert main(["refs", "-c", str(checkout / "tagsync.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == direct == "0 tracked, 3 left alone"


def test_init_never_replaces_a_config_unless_forced(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (checkout / "tagsync.yaml").write_text("# mine\n")
    assert main(["init", str(checkout)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (checkout / "tagsync.yaml").read_text() == "# mine\n"
    assert main(["init", str(checkout), "--force"]) == 0


def test_init_in_a_checkout_without_references_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("hello\n")
    assert main(["init", str(tmp_path)]) == 2
    assert "no image reference found" in capsys.readouterr().err
    assert not (tmp_path / "tagsync.yaml").exists()


def test_scaffold_writes_the_config_init_would(checkout: Path) -> None:
    from tagsync.init import starting_config
    from tagsync.scaffold import scaffold

    scaffold(checkout)
    assert (checkout / "tagsync.yaml").read_text() == starting_config(str(checkout))[0]


@pytest.mark.parametrize("where, says", [("missing", "no such folder"), ("pod.yaml", "not a folder")])
def test_init_outside_a_folder_says_so_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, says: str) -> None:
    (tmp_path / "pod.yaml").write_text(FILES["deploy/web.yaml"])
    assert main(["init", str(tmp_path / where)]) == 2
    assert says in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pod.yaml"]


def test_init_that_cannot_write_its_config_says_why(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (checkout / "tagsync.yaml").mkdir()  # --force replaces a file, never a folder
    assert main(["init", str(checkout), "--force"]) == 2
    assert "tagsync.yaml: cannot write: Is a directory" in capsys.readouterr().err
