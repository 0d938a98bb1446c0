"""Bytecode for the layer: Lambda's task root is read-only, so without `.pyc` every cold start
compiles the whole dependency tree again (measured: about a second per cold start).

Compiled by this machine's interpreter only when it is the base's Python (same major.minor:
bytecode is version-specific), as unchecked-hash `.pyc` (PEP 552: valid whatever the files'
times, and not checked against the source, which an image cannot change: an import reads the
`.pyc` alone, never the source, so a cold start on Lambda's lazily loaded image fetches and
hashes none of the ~180 sources a run imports), named as they will be in the image (`dfile`), so
no path of this machine gets in. A fresh interpreter with a fixed hash seed compiles them in a
fixed order: the same sources give the same bytes, and the layer stays reproducible.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

_COMPILER = r"""
import json, py_compile, sys
jobs = json.load(open(sys.argv[1]))
failed = []
for source, target, shown in jobs:
    try:
        py_compile.compile(source, cfile=target, dfile=shown, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (py_compile.PyCompileError, UnicodeDecodeError, SyntaxError, ValueError):
        failed.append(shown)
json.dump(failed, sys.stdout)
"""


def interpreter_matches(python: str) -> bool:
    return f"{sys.version_info.major}.{sys.version_info.minor}" == python


def compile_entries(entries: dict[str, Path], out: Path, python: str) -> dict[str, Path]:
    """Archive name → `.pyc` for every `.py` entry, or nothing (with a warning) when this
    interpreter is not the target's Python."""
    if not interpreter_matches(python):
        log.warning("no bytecode in the image: this is Python %d.%d and the base runs Python %s, so "
                    "every cold start compiles the modules it imports (build with Python %s to "
                    "include it)", sys.version_info.major, sys.version_info.minor, python, python)
        return {}
    tag = sys.implementation.cache_tag
    jobs, found = [], {}
    for name, path in sorted(entries.items()):
        if not name.endswith(".py") or not path.is_file() or path.is_symlink():
            continue
        posix = PurePosixPath(name)
        pyc_name = str(posix.parent / "__pycache__" / f"{posix.stem}.{tag}.pyc")
        target = out / pyc_name
        jobs.append((str(path), str(target), "/" + name))
        found[pyc_name] = target
    if not jobs:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    (out / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-I", "-c", _COMPILER, str(out / "jobs.json")],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        log.warning("no bytecode in the image: compiling failed: %s", done.stderr[-500:])
        return {}
    failed = set(json.loads(done.stdout or "[]"))
    if failed:  # e.g. a package's Python 2 test files: imported never, compiled never
        log.info("%d source files do not compile for Python %s; left as source", len(failed), python)
    return {name: path for name, path in found.items() if path.is_file()}
