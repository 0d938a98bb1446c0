"""`make demo` keeps working: the bundled example runs offline and commits once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_commits_once_and_second_run_changes_nothing(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "demo" / "run_demo.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("committed ") == 1
    assert "nothing to change: 0 changed, 5 up to date" in out
    assert '+      - ["3.6-ubuntu", "' in out
    assert "    # Python 3 is the default; Python 2 stays listed as legacy." in out


def _runtime_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [str(r) for r in project["dependencies"]]


def test_demo_runs_with_only_the_runtime_dependencies(tmp_path: Path) -> None:
    """What `make demo` installs (no test tools) is enough; every run ends in exit 0 or says why."""
    import os
    import venv

    import pytest

    wheelhouse = ROOT / ".cache" / "wheelhouse"
    if not (wheelhouse / ".complete").exists():
        pytest.skip("the wheelhouse `make deps` downloads is absent")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
                    str(wheelhouse), *_runtime_requirements()], check=True, timeout=300,
                   capture_output=True)
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], check=True,
                               capture_output=True, text=True).stdout.lower()
    assert not {"pytest", "moto", "mypy", "hypothesis"} & {line.split("==")[0] for line in
                                                           installed.splitlines()}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([str(python), str(ROOT / "examples" / "demo" / "run_demo.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "$ cat image-metadata.yml" in out
    assert out.count("(exit 3, partial, on purpose:") == 3
    assert "demo done: one commit on remote.git's main" in out
