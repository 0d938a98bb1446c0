"""No silent nothing: a config that finds less than it says is told so, and one that finds
nothing at all fails (exit 2) before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.cli import main


def write(tmp_path: Path, config: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cfg = tmp_path / "tagsync.yaml"
    cfg.write_text(config)
    return cfg


def test_a_glob_matching_no_file_is_a_warning_and_finding_nothing_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "catalogs:\n  - name: k8s\n    files: ['deploy/**/*.yaml']\n", {})
    assert main(["run", "-c", str(cfg), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "`deploy/**/*.yaml` matches no file" in err
    assert "catalog k8s finds no image reference" in err


def test_a_file_with_no_reference_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "catalogs:\n  - name: k8s\n    file: svc.yaml\n    kind: kubernetes\n",
                {"svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"})
    assert main(["run", "-c", str(cfg), "--dry-run"]) == 2
    assert "catalog k8s finds no image reference in svc.yaml" in capsys.readouterr().err


def test_a_tag_path_matching_nothing_in_every_entry_is_exit_2_with_the_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "catalogs:\n  - name: web\n    file: values.yaml\n    entries: .apps[*]\n"
                "    image: '{image.repository}'\n    tag: .image.tag\n    digest: .image.digest\n",
                {"values.yaml": "apps:\n  - image: {repository: nginx, version: '1.2'}\n"})
    assert main(["run", "-c", str(cfg), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "1 of 1 entries in values.yaml have nothing at `tag: .image.tag`" in err


def test_a_template_field_missing_in_every_entry_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "catalogs:\n  - name: k\n    file: m.yml\n    entries: .images[*]\n"
                "    image: 'lablup/kernel-{name}'\n    pairs: .tags\n",
                {"m.yml": "images:\n  - title: python\n    tags: [['3.6', 'x']]\n"})
    assert main(["run", "-c", str(cfg), "--dry-run"]) == 2
    assert "lack a field of the image template 'lablup/kernel-{name}' (lines 2)" in capsys.readouterr().err


def test_a_kustomize_entry_without_digest_or_tag_is_reported_not_dropped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "catalogs:\n  - name: k\n    file: kustomization.yaml\n",
                {"kustomization.yaml": "resources: [a.yaml]\nimages:\n  - name: nginx\n    newName: "
                 "registry.example.com/nginx\n"})
    assert main(["refs", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "kustomization.yaml:3  kustomize  left-alone  registry.example.com/nginx" in out
    assert "the tag comes from elsewhere" in out


def test_left_alone_reasons_are_listed_in_the_text_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "catalogs:\n  - name: k8s\n    files: ['*.yaml']\n",
                {"pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                 "    - image: registry.example.com/nginx:1.25.3\n    - image: ${IMAGE}\n"})
    assert main(["run", "-c", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "left alone 1: tag only: with policy `same` there is nothing to update" in out
    assert "left alone 1: templated value: filled in outside this file (pod.yaml:6)" in out
    assert "0 changed, 0 up to date, 0 failed, 2 left alone" in out


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_refs_finding_nothing_is_exit_2_for_people_and_machines_alike(
        flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("no images here\n")
    assert main(["refs", str(tmp_path), *flags]) == 2
    out, err = capsys.readouterr()
    assert "no image reference found" in err
    if flags:
        assert out.strip() == "[]"  # still valid JSON for whoever parses it
