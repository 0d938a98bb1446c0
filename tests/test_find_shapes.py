"""Finders, one behaviour each: what is tracked, what is left alone and why (pure, no registry)."""

from __future__ import annotations

import pytest

from tagsync.config import CatalogConfig
from tagsync.find import References, find_references, open_source, rows

D1 = "sha256:" + "1" * 64


def found(file: str, text: str, **cfg: object) -> list[dict[str, object]]:
    config = CatalogConfig.model_validate({"name": "t", "file": file, **cfg})
    refs: References = find_references(config, open_source(text.encode(), file, config))
    return rows(refs)


def by_path(table: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {r["path"] if r["path"] is not None else r["line"]: r for r in table}


def test_a_list_kind_with_image_volumes_and_ephemeral_containers() -> None:
    table = by_path(found("l.yaml", f"""\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    spec:
      ephemeralContainers: [{{name: dbg, image: "busybox:1.36@{D1}"}}]
      volumes:
        - name: models
          image: {{reference: "registry.example.com/models:v2@{D1}", pullPolicy: IfNotPresent}}
"""))
    assert table[".items[0].spec.ephemeralContainers[0].image"]["status"] == "tracked"
    assert table[".items[0].spec.volumes[0].image.reference"]["image"] == "registry.example.com/models"


@pytest.mark.parametrize(("entry", "status", "reason"), [
    ("{name: web, newTag: '1.2', digest: " + D1 + "}", "tracked", None),
    ("{name: web, newTag: '1.2'}", "left-alone", "tag only"),
    ("{name: web, digest: " + D1 + "}", "left-alone", "pinned by digest only"),
    ("{name: web}", "left-alone", "the tag comes from elsewhere"),
    ("{newTag: '1.2'}", "left-alone", "no `name` or `newName`"),
])
def test_kustomize_entries_in_every_combination_of_keys(entry: str, status: str, reason: str | None) -> None:
    [row] = found("kustomization.yaml", f"resources: [a.yaml]\nimages:\n  - {entry}\n")
    assert row["status"] == status
    assert reason is None or reason in str(row["reason"])


def test_kustomize_tag_only_entries_are_tracked_when_digests_are_pinned() -> None:
    [row] = found("kustomization.yaml", "images:\n  - {name: web, newTag: '1.2'}\nresources: []\n",
                  pin_digests=True)
    assert row["status"] == "tracked"


def test_a_helm_digest_only_mapping_follows_a_moving_policy() -> None:
    [row] = found("values.yaml", f"image:\n  repository: ghcr.io/acme/web\n  digest: {D1}\n",
                  policy={"kind": "semver"})
    assert (row["status"], row["digest"]) == ("tracked", D1)


def test_a_helm_empty_tag_is_the_charts_app_version_and_never_filled() -> None:
    [row] = found("values.yaml", "image:\n  repository: ghcr.io/acme/web\n  tag: ''\n",
                  policy={"kind": "semver"}, pin_digests=True)
    assert row["status"] == "left-alone" and "appVersion" in str(row["reason"])


def test_tagsync_markers_name_a_policy_from_the_config() -> None:
    table = found("any.yaml", "x:\n  y: ghcr.io/acme/web:1.2  # tagsync: web\n  z: nginx  # tagsync: nope\n",
                  kind="markers",
                  markers={"web": {"image": "ghcr.io/acme/web", "policy": {"kind": "semver"}}})
    rows_by = by_path(table)
    assert rows_by[".x.y"]["status"] == "tracked" and rows_by[".x.y"]["policy"] == "semver"
    assert "does not define" in str(rows_by[".x.z"]["reason"])


def test_a_marked_value_follows_its_marker_not_the_files_shape() -> None:
    text = 'image:\n  repository: ghcr.io/acme/web\n  tag: "1.2" # {"$imagepolicy": "ns:web:tag"}\n'
    table = found("values.yaml", text,
                  markers={"ns:web": {"image": "ghcr.io/acme/web", "policy": {"kind": "semver"}}})
    assert [(r["shape"], r["status"]) for r in table] == [("markers", "tracked")]


def test_a_tag_marker_on_a_whole_reference_is_left_alone_with_the_reason() -> None:
    """`:tag` says the value holds only a tag; a whole reference there is a marking mistake, not
    a tag to look up (the registry would be asked for `nginx:1.25@sha256:…` as a tag)."""
    text = f'a: nginx:1.25@{D1}  # {{"$imagepolicy": "ns:web:tag"}}\n'
    [row] = found("any.yaml", text, kind="markers",
                  markers={"ns:web": {"image": "docker.io/library/nginx"}})
    assert row["status"] == "left-alone" and "not a tag" in str(row["reason"])


def test_dockerfile_stages_scratch_and_args() -> None:
    table = by_path(found("Dockerfile", """\
ARG BASE="golang:1.22"
ARG TOOL
FROM ${BASE} AS build
FROM $TOOL AS tool
FROM scratch
COPY --from=build /a /a
COPY --from=ghcr.io/acme/tools:1.0 /b /b
COPY --from=0 /c /c
""", pin_digests=True))
    assert table[1]["status"] == "tracked" and table[1]["value"] == "golang:1.22"
    assert "follows ARG BASE" in str(table[3]["reason"])
    assert "has no default" in str(table[4]["reason"])
    assert table[5]["status"] == table[6]["status"] == table[8]["status"] == "ignored"
    assert table[7]["status"] == "tracked" and table[7]["image"] == "ghcr.io/acme/tools"


def test_a_reference_shared_through_an_anchor_is_left_alone() -> None:
    table = found("compose.yaml", "x-img: &img nginx:1.25@" + D1 + "\nservices:\n  a: {image: *img}\n")
    assert [r["status"] for r in table] == ["left-alone"]
    assert "anchor &img" in str(table[0]["reason"])
