"""CI files, one behaviour each: GitHub Actions service strings and workflows without `on:`,
GitLab CI pipelines read as pipelines (never as Helm values by accident). Pure: no registry."""

from __future__ import annotations

from tagsync.catalog.edit import Catalog
from tagsync.find import detect
from tests.test_find_shapes import D1, by_path, found


def test_an_actions_service_written_as_a_string_is_its_image() -> None:
    text = (f"on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    services:\n"
            f"      postgres: postgres:10@{D1}\n")
    row = by_path(found(".github/workflows/ci.yml", text))[".jobs.t.services.postgres"]
    assert (row["status"], row["image"], row["tag"]) == ("tracked", "docker.io/library/postgres", "10")


def test_a_workflow_without_on_under_github_workflows_is_a_workflow() -> None:
    text = "jobs:\n  t:\n    runs-on: ubuntu-latest\n    container: node:20\n"
    assert detect(".github/workflows/reusable.yml", Catalog(text)) == "actions"
    assert detect("ci/other.yml", Catalog(text)) == "helm"


GITLAB = f"""\
stages: [test]
image: python:3.12@{D1}
default:
  services: ["redis:7@{D1}"]
variables:
  image: not-an-image-setting
test:
  stage: test
  image:
    name: ghcr.io/acme/ci:3.1@{D1}
    entrypoint: [""]
  services:
    - name: postgres:16@{D1}
      alias: db
    - docker:24-dind
  script: [make test]
.deploy:
  image: $CI_REGISTRY_IMAGE/deployer:$CI_COMMIT_SHA
"""


def test_a_gitlab_pipeline_is_detected_by_name_and_by_content() -> None:
    assert detect(".gitlab-ci.yml", Catalog(GITLAB)) == "gitlab"
    assert detect("ci/templates/build.yml", Catalog(GITLAB)) == "gitlab"


def test_gitlab_images_and_services_in_every_form() -> None:
    table = by_path(found(".gitlab-ci.yml", GITLAB))
    assert {p: (r["status"], r["image"]) for p, r in table.items()} == {
        ".image": ("tracked", "docker.io/library/python"),
        ".default.services[0]": ("tracked", "docker.io/library/redis"),
        ".test.image.name": ("tracked", "ghcr.io/acme/ci"),
        ".test.services[0].name": ("tracked", "docker.io/library/postgres"),
        ".test.services[1]": ("left-alone", "docker.io/library/docker"),
        '.[".deploy"].image': ("left-alone", None),
    }
    assert all(r["shape"] == "gitlab" for r in table.values())
    assert "templated" in str(table['.[".deploy"].image']["reason"])


def test_helm_values_with_a_script_key_stay_helm_values() -> None:
    text = "image: {repository: nginx, tag: '1.25'}\nbackup:\n  script: /bin/backup.sh\n  image: alpine:3\n"
    assert detect("values.yaml", Catalog(text)) == "helm"


def test_a_job_file_under_dot_gitlab_is_a_pipeline_and_other_yaml_there_is_not() -> None:
    jobs = "build:\n  image: golang:1.22\n  script: [make]\n"
    assert detect(".gitlab/ci/build.yml", Catalog(jobs)) == "gitlab"
    assert detect(".gitlab/agents/prod/config.yaml", Catalog("gitops:\n  manifest_projects: []\n")) == "helm"
