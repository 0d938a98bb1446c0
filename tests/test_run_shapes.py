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
    "flux-helmrelease": Case(
        "apps/web.yaml",
        """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: web}}
spec:
  chart: {{spec: {{chart: web, version: 1.0.0}}}}
  values:
    global:
      image:
        registry: {h}/{ns}
    web:
      image:
        repository: web
        tag: "1.0"
        digest: {old0}   # the chart puts global.image.registry before it
    workers:
      - name: queue
        image: {h}/{ns}/side:2.0@{old1}
""",
        """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: web}}
spec:
  chart: {{spec: {{chart: web, version: 1.0.0}}}}
  values:
    global:
      image:
        registry: {h}/{ns}
    web:
      image:
        repository: web
        tag: "1.0"
        digest: {new0}   # the chart puts global.image.registry before it
    workers:
      - name: queue
        image: {h}/{ns}/side:2.0@{new1}
""",
        "    files: ['apps/*.yaml']\n",
        (("web", "1.0"), ("side", "2.0")),
    ),
    "flux-kustomization": Case(
        "clusters/apps.yaml",
        """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps}}
spec:
  images:
    - name: web
      newName: {h}/{ns}/web
      newTag: "1.0"
      digest: {old0}
    - name: side
      newName: {h}/{ns}/side
      newTag: 2.0@{old1}   # tag@digest in the tag field
""",
        """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps}}
spec:
  images:
    - name: web
      newName: {h}/{ns}/web
      newTag: "1.0"
      digest: {new0}
    - name: side
      newName: {h}/{ns}/side
      newTag: 2.0@{new1}   # tag@digest in the tag field
""",
        "    files: ['clusters/*.yaml']\n",
        (("web", "1.0"), ("side", "2.0")),
    ),
    "argocd": Case(
        "argo/web.yaml",
        """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: web}}
spec:
  source:
    helm:
      valuesObject:
        image: {{repository: {h}/{ns}/web, tag: "1.0", digest: "{old0}"}}
      parameters:
        - name: side.image.repository
          value: {h}/{ns}/side
        - name: side.image.tag
          value: "2.0"
        - name: side.image.digest
          value: {old1}
""",
        """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: web}}
spec:
  source:
    helm:
      valuesObject:
        image: {{repository: {h}/{ns}/web, tag: "1.0", digest: "{new0}"}}
      parameters:
        - name: side.image.repository
          value: {h}/{ns}/side
        - name: side.image.tag
          value: "2.0"
        - name: side.image.digest
          value: {new1}
""",
        "    file: argo/web.yaml\n",
        (("web", "1.0"), ("side", "2.0")),
    ),
    "gitlab": Case(
        ".gitlab-ci.yml",
        """\
stages: [test]
test:
  stage: test
  image:
    name: {h}/{ns}/ci:3.1@{old0}
  services:
    - {h}/{ns}/db:16@{old1}
  script: [make test]
""",
        """\
stages: [test]
test:
  stage: test
  image:
    name: {h}/{ns}/ci:3.1@{new0}
  services:
    - {h}/{ns}/db:16@{new1}
  script: [make test]
""",
        "    file: .gitlab-ci.yml\n",
        (("ci", "3.1"), ("db", "16")),
    ),
    "dockerfile-buildkit": Case(
        "Dockerfile",
        """\
 # syntax={h}/{ns}/frontend:1.7@{old0}
ARG VARIANT=1.0@{old1}
FROM {h}/{ns}/base:${{VARIANT}} AS build
RUN --mount=type=cache,target=/c,from={h}/{ns}/cache:3.0@{old2} make
""",
        """\
 # syntax={h}/{ns}/frontend:1.7@{new0}
ARG VARIANT=1.0@{new1}
FROM {h}/{ns}/base:${{VARIANT}} AS build
RUN --mount=type=cache,target=/c,from={h}/{ns}/cache:3.0@{new2} make
""",
        "    file: Dockerfile\n",
        (("frontend", "1.7"), ("base", "1.0"), ("cache", "3.0")),
    ),
    "compose-default": Case(
        "compose.yaml",
        """\
services:
  web:
    image: ${{WEB_IMAGE:-{h}/{ns}/web:1.0@{old0}}}
  side:
    image: "{h}/{ns}/side:${{SIDE_TAG:-2.0@{old1}}}"
""",
        """\
services:
  web:
    image: ${{WEB_IMAGE:-{h}/{ns}/web:1.0@{new0}}}
  side:
    image: "{h}/{ns}/side:${{SIDE_TAG:-2.0@{new1}}}"
""",
        "    file: compose.yaml\n",
        (("web", "1.0"), ("side", "2.0")),
    ),
    "markers-whole": Case(
        "apps/web.yaml",
        """\
spec:
  image: {h}/{ns}/old:1.0 # {{"$imagepolicy": "flux-system:web"}}
""",
        """\
spec:
  image: {h}/{ns}/web:1.0@{new0} # {{"$imagepolicy": "flux-system:web"}}
""",
        "    file: apps/web.yaml\n    kind: markers\n    pin_digests: true\n    markers:\n"
        "      flux-system:web:\n        image: {h}/{ns}/web\n",
        (("web", "1.0"),),
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


def test_a_value_marked_for_an_undefined_policy_is_not_edited_through_the_files_shape(
        registry: RegistryServer, git_server: GitServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """#31 item 5: the marker owns the value; with no `markers:` entry for it, a newer digest in
    the registry changes nothing, and the run says why once."""
    ns = unique_namespace("owned", request)
    old = registry.push(f"{ns}/web", "1.0", f"{ns} web before").digest
    registry.push(f"{ns}/web", "1.0", f"{ns} web after")
    text = (f"image:\n  repository: {registry.host}/{ns}/web\n"
            f'  tag: "1.0" # {{"$imagepolicy": "flux-system:web:tag"}}\n  digest: {old}\n')
    git_server.commit_directly({"values.yaml": text.encode()}, "initial")
    config = tmp_path / "tagsync.yaml"
    config.write_text(
        "catalogs:\n  - name: chart\n    file: values.yaml\n    pin_digests: true\n"
        f"registries:\n  - host: {registry.host}\n    url: {registry.url}\n"
        f"git:\n  repo: {git_server.url}\n  token_env: TEST_GIT_TOKEN\n")
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)

    result = run(load_config(config))
    assert not result.changes and not result.pushed
    assert git_server.read("values.yaml") == text.encode()
    reasons = [n.reason for n in result.skipped if n.line == 3]
    assert len(reasons) == 1 and "does not define" in reasons[0]
