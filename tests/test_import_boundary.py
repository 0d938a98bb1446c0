"""What importing the library costs a Lambda cold start: `import tagsync.run` and the handler
load no terminal, AWS, SSH, Git, HTTP or signature library; each comes on the path that uses it.
(Behaviour, not timing: `make bench` measures the time.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("module", ["tagsync.publish.github", "tagsync.registry.discover"])
def test_talking_to_github_or_docker_hub_loads_no_terminal_library(module: str) -> None:
    assert loaded(module) & {"rich", "click", "pygments", "typer"} == set()
