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
