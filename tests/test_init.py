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


def test_init_writes_one_catalog_per_shape_with_globs_that_pick_up_new_files(checkout: Path) -> None:
    assert main(["init", str(checkout)]) == 0
    cfg = load_config(checkout / "tagsync.yaml")
    assert {(c.name, c.shape, tuple(c.files or ())) for c in cfg.catalogs} == {
        ("dockerfile", "dockerfile", ("**/*Dockerfile*",)),
        ("helm", "helm", ("**/values*.yaml",)),
        ("kubernetes", "kubernetes", ("deploy/**/*.yaml",)),
    }


def test_a_glob_never_reaches_a_file_of_another_shape(tmp_path: Path) -> None:
    """A folder holding manifests and Helm values gets file names, not `*.yaml`: a values file
    read as a manifest (or the reverse) would be edited through the wrong shape."""
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "pod.yaml").write_text(FILES["deploy/web.yaml"])
    (tmp_path / "mixed" / "chart.yaml").write_text(FILES["charts/web/values.yaml"])
    assert main(["init", str(tmp_path)]) == 0
    cfg = load_config(tmp_path / "tagsync.yaml")
    assert {c.name: c.files for c in cfg.catalogs} == {"helm": ["mixed/chart.yaml"],
                                                       "kubernetes": ["mixed/pod.yaml"]}


def test_the_default_policy_moves_tags_within_their_major_and_pins_where_files_pin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest = "sha256:" + "a" * 64
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.12-slim@{digest}\nFROM nginx:1.25@{digest}\n"
                                         "FROM alpine:3.20\n")
    (tmp_path / "pod.yaml").write_text(FILES["deploy/web.yaml"] + "        - image: redis\n")
    assert main(["init", str(tmp_path)]) == 0
    cfg = {c.name: c for c in load_config(tmp_path / "tagsync.yaml").catalogs}
    assert cfg["dockerfile"].pin_digests and not cfg["kubernetes"].pin_digests
    policy = cfg["kubernetes"].policy
    assert (policy.kind, policy.within) == ("semver", "major")
    out = capsys.readouterr().out
    assert "wrote" in out and "tracks 4:" in out
    assert "leaves alone 1: tag is no version" in out  # redis (latest), not pinned here


def test_the_header_counts_in_words_that_agree(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(FILES["deploy/web.yaml"])
    assert main(["init", str(tmp_path)]) == 0
    assert "#   1 reference in 1 file (kubernetes 1)" in (tmp_path / "tagsync.yaml").read_text()


def test_the_written_config_tracks_what_a_user_expects_in_the_checkout(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(checkout)]) == 0
    capsys.readouterr()
    assert main(["refs", "-c", str(checkout / "tagsync.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 tracked, 0 left alone"


def test_a_second_init_never_reads_the_config_as_helm_values(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(checkout)]) == 0
    first = (checkout / "tagsync.yaml").read_text()
    assert main(["init", str(checkout), "--force"]) == 0
    assert (checkout / "tagsync.yaml").read_text() == first


def test_no_catalog_reads_the_config_whatever_its_globs(tmp_path: Path) -> None:
    from tagsync.publish.files import FilesPublisher
    from tagsync.run import read_references

    (tmp_path / "values.yaml").write_text(FILES["charts/web/values.yaml"])
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: all\n    kind: helm\n    files: ['**/*.yaml']\n"
        "    pin_digests: true\n    # image: ghcr.io/acme/web:1.0\n")
    cfg = load_config(tmp_path / "tagsync.yaml")
    read = read_references(cfg, FilesPublisher(tmp_path).snapshot())
    assert read.files["all"] == ["values.yaml"]


def test_a_flux_marker_gets_a_markers_stub_with_its_image(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n"
        "  - name: podinfo\n"
        '    newName: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}\n'
        '    newTag: 6.8.0 # {"$imagepolicy": "flux-system:podinfo:tag"}\n')
    assert main(["init", str(tmp_path)]) == 0
    [catalog] = load_config(tmp_path / "tagsync.yaml").catalogs
    marker = catalog.markers["flux-system:podinfo"]
    assert marker.image == "ghcr.io/stefanprodan/podinfo"
    assert (marker.policy.kind, marker.policy.within) == ("semver", "major")


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "manifests"
# why a reference may stay untracked, in words a person accepts: nothing tagsync could follow
ACCEPTED = ("no tag written", "templated", "not an image", "the name of the image compose builds",
            "pinned by digest only", "marker ")


def test_init_on_real_manifests_tracks_what_a_user_would_expect(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every reference with a version tag is tracked; a tag that is no version (`latest`) is
    left alone only where the files pin nothing; the rest has a reason a person accepts."""
    import json
    import shutil

    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is absent")
    root = tmp_path / "checkout"
    root.mkdir()
    for f in CORPUS.iterdir():
        if f.name.endswith((".yaml", ".yml")) or "Dockerfile" in f.name:
            shutil.copy(f, root / f.name)
    assert main(["init", str(root)]) == 0
    capsys.readouterr()
    assert main(["refs", "-c", str(root / "tagsync.yaml"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert main(["refs", str(root), "--json"]) == 0
    seen = {(r["file"].rsplit("/", 1)[-1], r["line"]) for r in json.loads(
        capsys.readouterr().out) if r["status"] != "ignored"}
    assert {(r["file"], r["line"]) for r in rows if r["status"] != "ignored"} == seen
    for row in rows:
        if row["status"] != "left-alone":
            continue
        reason = row["reason"]
        assert reason.startswith(ACCEPTED) or "is no version" in reason, row
    assert sum(r["status"] == "tracked" for r in rows) >= 57


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


def test_vendored_folders_are_excluded_from_the_globs_that_reach_them(checkout: Path) -> None:
    (checkout / "deploy" / "vendor").mkdir()
    (checkout / "deploy" / "vendor" / "x.yaml").write_text("services:\n  a:\n    image: redis:7\n")
    (checkout / "node_modules" / "pkg").mkdir(parents=True)
    (checkout / "node_modules" / "pkg" / "Dockerfile").write_text("FROM node:20\n")
    assert main(["init", str(checkout)]) == 0
    cfg = {c.name: c.files for c in load_config(checkout / "tagsync.yaml").catalogs}
    assert cfg["kubernetes"] == ["deploy/**/*.yaml", "!deploy/vendor/**"]
    assert cfg["dockerfile"] == ["**/*Dockerfile*", "!node_modules/**", "!deploy/vendor/**"]


def test_the_github_hint_names_the_checkouts_own_repository(checkout: Path) -> None:
    (checkout / ".git").mkdir()
    (checkout / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = git@github.com:acme/deploy.git\n\tfetch = +refs/heads/*\n')
    assert main(["init", str(checkout)]) == 0
    assert "#   repo: acme/deploy\n" in (checkout / "tagsync.yaml").read_text()
