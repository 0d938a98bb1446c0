"""`tagsync run` on each file shape, end to end: a real registry holding newer tags and digests,
a real Git server; exactly the expected bytes are committed, and a second run commits nothing.

Each case is a file as teams write it (`{old…}` / `{new…}` are filled with real digests), the
catalog config that follows it, and the file expected after one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tagsync.config import load_config
from tagsync.run import run
from tests.servers.fixtures import GitServer, RegistryServer, unique_namespace


@dataclass(frozen=True)
class Case:
    file: str
    before: str
    after: str
    catalog: str  # the catalog entry of tagsync.yaml, after `- name: NAME`
    images: tuple[tuple[str, str], ...]  # (repository, tag) pushed once before and once after


CASES = {
    "kubernetes": Case(
        "deploy/app.yaml",
        """\
# two documents, a pinned container and a pinned init container
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: {h}/{ns}/web:1.25.3@{old0}   # pinned by digest
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - image: "{h}/{ns}/init:2.0@{old1}"
""",
        """\
# two documents, a pinned container and a pinned init container
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    spec:
      containers:
        - name: web
          image: {h}/{ns}/web:1.25.3@{new0}   # pinned by digest
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - image: "{h}/{ns}/init:2.0@{new1}"
""",
        "    files: ['deploy/*.yaml']\n    kind: kubernetes\n",
        (("web", "1.25.3"), ("init", "2.0")),
    ),
    "helm": Case(
        "charts/web/values.yaml",
        """\
image:
  registry: {h}
  repository: {ns}/web
  tag: "1.25.3"
  digest: ""    # filled in by tagsync
sidecar:
  image: {h}/{ns}/side:1.0
""",
        """\
image:
  registry: {h}
  repository: {ns}/web
  tag: "1.25.4"
  digest: "{new0}"    # filled in by tagsync
sidecar:
  image: {h}/{ns}/side:1.0@{new1}
""",
        "    file: charts/web/values.yaml\n    kind: helm\n    pin_digests: true\n"
        "    policies:\n      '*/web': {{kind: semver, range: '^1.25'}}\n",
        (("web", "1.25.4"), ("side", "1.0")),
    ),
    "kustomize": Case(
        "kustomization.yaml",
        """\
resources: [deploy.yaml]
images:
  - name: web
    newName: {h}/{ns}/web
    newTag: "1.25.3"
    digest: {old0}
  - name: side
    newName: {h}/{ns}/side
    newTag: "1.0"
""",
        """\
resources: [deploy.yaml]
images:
  - name: web
    newName: {h}/{ns}/web
    newTag: "1.25.3"
    digest: {new0}
  - name: side
    newName: {h}/{ns}/side
    newTag: "1.0"
    digest: {new1}
""",
        "    file: kustomization.yaml\n    pin_digests: true\n",
        (("web", "1.25.3"), ("side", "1.0")),
    ),
    "compose": Case(
        "compose.yaml",
        """\
services:
  web:
    image: nginx:1.25.3      # Docker Hub, name elided
  app:
    build: .
    image: acme/app:dev      # what compose builds: left alone
""",
        """\
services:
  web:
    image: nginx:1.25.4      # Docker Hub, name elided
  app:
    build: .
    image: acme/app:dev      # what compose builds: left alone
""",
        "    file: compose.yaml\n    policy: {{kind: semver}}\n",
        (("library/nginx", "1.25.4"),),
    ),
    "actions": Case(
        ".github/workflows/ci.yml",
        """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    container: {h}/{ns}/ci:3.1
    steps:
      - uses: docker://{h}/{ns}/lint:1.0@{old1}
""",
        """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    container: {h}/{ns}/ci:3.1@{new0}
    steps:
      - uses: docker://{h}/{ns}/lint:1.0@{new1}
""",
        "    files: ['.github/workflows/*.yml']\n    pin_digests: true\n",
        (("ci", "3.1"), ("lint", "1.0")),
    ),
    "dockerfile": Case(
        "Dockerfile",
        """\
ARG RUNTIME={h}/{ns}/run:2.0@{old1}
FROM --platform=$BUILDPLATFORM {h}/{ns}/base:1.0@{old0} AS build
RUN make
FROM ${{RUNTIME}}
COPY --from=build /out /app\r
""",
        """\
ARG RUNTIME={h}/{ns}/run:2.0@{new1}
FROM --platform=$BUILDPLATFORM {h}/{ns}/base:1.0@{new0} AS build
RUN make
FROM ${{RUNTIME}}
COPY --from=build /out /app\r
""",
        "    file: Dockerfile\n",
        (("base", "1.0"), ("run", "2.0")),
    ),
    "markers": Case(
        "apps/web.yaml",
        """\
spec:
  values:
    image:
      repository: {h}/{ns}/web # {{"$imagepolicy": "flux-system:web:name"}}
      tag: 1.25.3 # {{"$imagepolicy": "flux-system:web:tag"}}
""",
        """\
spec:
  values:
    image:
      repository: {h}/{ns}/web # {{"$imagepolicy": "flux-system:web:name"}}
      tag: 1.25.4 # {{"$imagepolicy": "flux-system:web:tag"}}
""",
        "    file: apps/web.yaml\n    kind: markers\n    markers:\n"
        "      flux-system:web:\n        image: {h}/{ns}/web\n        policy: {{kind: semver}}\n",
        (("web", "1.25.4"),),
    ),
}


@pytest.mark.parametrize("shape", sorted(CASES))
def test_one_run_commits_exactly_the_expected_bytes(
        shape: str, registry: RegistryServer, git_server: GitServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    case = CASES[shape]
    ns = unique_namespace("shape", request)
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    for i, (repo, tag) in enumerate(case.images):
        repository = repo if "/" in repo else f"{ns}/{repo}"
        if "/" in repo:  # Docker Hub names: the old tag exists too, the new one is newer
            registry.push(repository, "1.25.3", f"{ns} {repo} old")
        old[f"old{i}"] = registry.push(repository, tag, f"{ns} {repo} {tag} before").digest
        new[f"new{i}"] = registry.push(repository, tag, f"{ns} {repo} {tag} after").digest
    fill = {"h": registry.host, "ns": ns, **old, **new}
    git_server.commit_directly({case.file: case.before.format(**fill).encode()}, "initial")
    config = tmp_path / "tagsync.yaml"
    config.write_text(
        f"catalogs:\n  - name: {shape}\n{case.catalog.format(**fill)}"
        f"registries:\n  - host: {registry.host}\n    url: {registry.url}\n"
        f"  - host: docker.io\n    url: {registry.url}\n"
        f"git:\n  repo: {git_server.url}\n  token_env: TEST_GIT_TOKEN\n")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    cfg = load_config(config)

    first = run(cfg)
    assert not first.failures, first.failures
    assert first.pushed
    assert git_server.read(case.file) == case.after.format(**fill).encode()

    commits = git_server.commit_count()
    second = run(cfg)
    assert not second.changes and not second.pushed
    assert git_server.commit_count() == commits


def test_a_tag_moved_with_its_digest_counts_as_one_image() -> None:
    from tagsync.config import DigestFormat
    from tagsync.find.model import Slot
    from tagsync.plan import images_changed, slot_changes
    from tagsync.policy import Kind, Policy
    from tagsync.reference import ImageName

    slot = Slot("c", "values.yaml", 0, ("image", "digest"), 4, ImageName("ghcr.io", "acme/web"), "1.0",
                "sha256:" + "a" * 64, DigestFormat.full, None, ("image", "tag"), 3, Policy(Kind.semver))
    changes = slot_changes(slot, "1.1", "sha256:" + "b" * 64)
    assert len(changes) == 2 and images_changed(changes) == 1
