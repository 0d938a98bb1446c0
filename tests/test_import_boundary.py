"""What importing the library costs a Lambda cold start: `import tagsync.run` and the handler
load no terminal, AWS, SSH, Git, HTTP or signature library; each comes on the path that uses it.
(Behaviour, not timing: `make bench` measures the time.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.fixtures import RegistryServer

HEAVY = {"rich", "click", "typer", "pygments", "boto3", "botocore", "paramiko", "dulwich", "httpx",
         "aiohttp", "cryptography", "sigstore", "jwt", "tuf", "securesystemslib"}


def loaded(module: str) -> set[str]:
    code = (f"import {module}, sys, json; print(json.dumps(sorted("
            "{m.split('.')[0] for m, v in sys.modules.items() if v is not None})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("module", ["tagsync.run", "tagsync.aws.handler", "tagsync.find",
                                    "tagsync.config"])
def test_importing_loads_no_heavy_library(module: str) -> None:
    assert loaded(module) & HEAVY == set()


def test_importing_the_run_loads_no_publisher() -> None:
    """Each publisher (files, Git, GitHub) comes with the config that chooses it."""
    code = ("import tagsync.run, sys, json; print(json.dumps(sorted("
            "m for m in sys.modules if m.startswith('tagsync.publish.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert json.loads(out) == []


@pytest.mark.parametrize("module", ["tagsync.publish.github", "tagsync.registry.discover"])
def test_talking_to_github_or_docker_hub_loads_no_terminal_library(module: str) -> None:
    assert loaded(module) & {"rich", "click", "pygments", "typer"} == set()


def test_a_run_against_an_oci_registry_loads_no_docker_hub_client(
        registry: RegistryServer, tmp_path: Path) -> None:
    """Docker Hub's listing and push-time API (httpx) is imported only when docker.io is watched."""
    ns = tmp_path.name[-12:].lower().replace("_", "")
    old = registry.push(f"{ns}/app", "1.0", "old").digest
    registry.push(f"{ns}/app", "1.0", "new")
    (tmp_path / "pod.yaml").write_text(
        f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: {registry.host}/{ns}/app:1.0@{old}\n")
    (tmp_path / "tagsync.yaml").write_text(
        f"catalogs:\n  - name: app\n    file: pod.yaml\n"
        f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n")
    code = ("import sys, json\nfrom tagsync.aws.handler import handler\n"
            "status = handler({}, None)['status']\n"
            "print(json.dumps([status, sorted({m.split('.')[0] for m, v in sys.modules.items() "
            "if v is not None})]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120, cwd=tmp_path,
                         env={**os.environ,
                              "TAGSYNC_CONFIG": str(tmp_path / "tagsync.yaml")}).stdout
    status, modules = json.loads(out.strip().splitlines()[-1])
    assert status == "changed"
    assert "aiohttp" in modules
    assert "httpx" not in modules


def test_loading_a_config_builds_one_validator(tmp_path: Path) -> None:
    """A nested model's default is checked by its parent's validator, and an unconfigured
    registry gets its defaults without one: each model built alone costs a cold start more."""
    (tmp_path / "tagsync.yaml").write_text("catalogs:\n  - name: app\n    file: pod.yaml\n")
    code = ("import json\nfrom pathlib import Path\nfrom tagsync import config as c\n"
            "cfg = c.load_config(Path('tagsync.yaml'))\n"
            "reg = cfg.registry_for('docker.io')\n"
            "print(json.dumps([[m.__name__ for m in (c.Config, c.CatalogConfig, c.PolicyConfig, "
            "c.RunConfig, c.RegistryConfig) if m.__pydantic_complete__], cfg.run.timeout, "
            "cfg.catalogs[0].policy.kind, reg.host, reg.max_concurrency]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60, cwd=tmp_path).stdout
    built, timeout, kind, host, concurrency = json.loads(out.strip().splitlines()[-1])
    assert built == ["Config"]
    assert (timeout, kind, host, concurrency) == (20.0, "same", "docker.io", 8)


def test_the_pattern_engine_loads_with_the_first_pattern_matched(tmp_path: Path) -> None:
    """`regex` (the bounded engine for the config's patterns, ~20 ms to import) is loaded by
    the first match, not by importing the run, nor by reading a config: its patterns are
    checked with `re`."""
    assert "regex" not in loaded("tagsync.run") | loaded("tagsync.aws.handler")
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: app\n    file: pod.yaml\n"
        "    policy: {kind: regex, include: '(\\d+)\\.(\\d+)'}\n")
    code = ("import json, sys\nfrom pathlib import Path\nfrom tagsync import config as c\n"
            "cfg = c.load_config(Path('tagsync.yaml'))\n"
            "before = 'regex' in sys.modules\n"
            "best = cfg.catalogs[0].policy.to_policy().best(['1.9', '1.10', 'x'])\n"
            "print(json.dumps([before, best, 'regex' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60, cwd=tmp_path).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [False, "1.10", True]
