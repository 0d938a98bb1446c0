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
# pip's "Could not find a version that satisfies the requirement NAME … (from versions: …)", read
# by `no_version`: as one pattern, `NAME` and the `[^(\n]*` after it split a line in every way,
# and a search retried every repeat of the phrase on a line to the line's end (quadratic).
_NO_VERSION_HEAD = "Could not find a version that satisfies the requirement "
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNTIL_PAREN = re.compile(r"[^(\n]*")
_VERSIONS = re.compile(r"\(from versions: ([^)]*)\)")
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


def no_version(stderr: str) -> tuple[str, str] | None:
    r"""(name, versions) of the first "Could not find a version that satisfies the requirement"
    that names its versions: what the search of `HEAD([A-Za-z0-9][A-Za-z0-9._-]*)[^(\n]*\(from
    versions: ([^)]*)\)` finds, in linear time. A phrase whose line has no `(from versions:` before
    its next `(` or line break fails for every repeat of the phrase up to there, so those are
    skipped; one with no `)` after it fails for every later one too."""
    at = 0
    while (head := stderr.find(_NO_VERSION_HEAD, at)) >= 0:
        name = _NAME.match(stderr, head + len(_NO_VERSION_HEAD))
        if name is None:
            at = head + 1
            continue
        rest = _UNTIL_PAREN.match(stderr, name.end())  # always matches, perhaps empty
        stop = rest.end() if rest else name.end()
        versions = _VERSIONS.match(stderr, stop)
        if versions is not None:
            return name.group(), versions.group(1)
        if stderr.startswith("(from versions: ", stop):  # no `)` anywhere after it
            return None
        at = stop
    return None


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
    missing = no_version(stderr)
    if missing:
        versions = missing[1].strip()
        raise NoWheelError(missing[0], platform,
                           "no release has such a wheel" if versions == "none"
                           else f"versions with wheels: {versions}")
    missing_any = _NO_MATCH.search(stderr)
    if missing_any:
        raise NoWheelError(missing_any.group(1), platform)
    if "No module named pip" in stderr:
        raise BuildError(f"pip is not installed for {sys.executable}")
    raise BuildError("pip could not install the dependencies:\n" + stderr.strip()[-2000:])
