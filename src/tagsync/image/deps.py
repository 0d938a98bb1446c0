"""Install tagsync's dependencies for the target platform with pip, without running any of them.

pip's cross-platform options (`--platform`, `--python-version`, `--abi`, `--implementation`)
choose wheels for Lambda instead of for this machine; `--only-binary=:all:` is what makes that
safe (nothing is compiled here for the wrong platform), and also why a package without such a
wheel must be named clearly rather than left to a pip traceback.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any

from tagsync.errors import BuildError, NoWheelError
from tagsync.image.platform import Target

log = logging.getLogger(__name__)

_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)")
_NO_VERSION = re.compile(
    r"Could not find a version that satisfies the requirement ([A-Za-z0-9][A-Za-z0-9._-]*)"
    r"[^(\n]*\(from versions: ([^)]*)\)")
_EXTRA_ONLY = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class PipOptions:
    """Where pip looks: an index (default PyPI), more indexes, or local wheel folders."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def argv(self) -> list[str]:
        out: list[str] = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        for place in self.find_links:
            out += ["--find-links", place]
        if self.no_index:
            out.append("--no-index")
        return out


def own_requirements(extras: Sequence[str] = ("aws", "ssh"), dist: str = "tagsync") -> list[str]:
    """tagsync's declared dependencies, with the chosen extras, as pip requirement strings."""
    try:
        declared = requires(dist) or []
    except PackageNotFoundError:
        raise BuildError(f"{dist} is not installed as a distribution, so its dependencies are "
                         "unknown; install it (pip install -e .) or pass the requirements") from None
    out = []
    for line in declared:
        requirement, _, marker = (part.strip() for part in line.partition(";"))
        extra = _EXTRA_ONLY.fullmatch(marker)
        if extra is None:
            out.append(line.strip())
        elif extra.group(1) in extras:
            out.append(requirement)
    return out


def pip_command(requirements: Sequence[str], target_dir: Path, target: Target,
                options: PipOptions) -> list[str]:
    nodot = target.python.replace(".", "")
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--quiet", "--target", str(target_dir), "--implementation", "cp",
            "--python-version", target.python, "--abi", f"cp{nodot}", "--only-binary=:all:",
            "--no-compile"]
    for platform in target.pip_platforms():
        argv += ["--platform", platform]
    return [*argv, *options.argv(), *requirements]


def install(requirements: Sequence[str], target_dir: Path, target: Target,
            options: PipOptions = PipOptions(), runner: Runner = subprocess.run) -> None:
    """pip-install `requirements` into `target_dir` for `target`; NoWheelError names the package."""
    argv = pip_command(requirements, target_dir, target, options)
    log.info("pip: installing %d requirements for %s/Python %s", len(requirements), target.arch,
             target.python)
    env: dict[str, Any] = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PIP_NO_INPUT": "1"}
    done = runner(argv, capture_output=True, text=True, env=env)
    if done.returncode == 0:
        return
    stderr = done.stderr or ""
    platform = f"Python {target.python} on manylinux {target.machine}"
    missing = _NO_VERSION.search(stderr)
    if missing:
        versions = missing.group(2).strip()
        raise NoWheelError(missing.group(1), platform,
                           "no release has such a wheel" if versions == "none"
                           else f"versions with wheels: {versions}")
    missing_any = _NO_MATCH.search(stderr)
    if missing_any:
        raise NoWheelError(missing_any.group(1), platform)
    if "No module named pip" in stderr:
        raise BuildError(f"pip is not installed for {sys.executable}")
    raise BuildError("pip could not install the dependencies:\n" + stderr.strip()[-2000:])
