"""Split references (Helm values, kustomize entries), one behaviour each: the tag grammar,
`tag@digest` in a tag field, how charts spell images, and Helm's global registry."""

from __future__ import annotations

import pytest

from tagsync.config import CatalogConfig
from tagsync.find import find_references, open_source
from tests.test_find_shapes import D1, by_path, found

D2 = "sha256:" + "2" * 64


@pytest.mark.parametrize(("file", "text"), [
    ("values.yaml", f"image:\n  repository: bitnami/postgresql\n  tag: 11.5.0-debian-9-r0@{D1}\n"),
    ("kustomization.yaml", f"resources: []\nimages:\n  - name: postgres\n    newTag: 11@{D1}\n"),
])
def test_tag_at_digest_in_a_tag_field_is_split_into_its_parts(file: str, text: str) -> None:
    [row] = found(file, text)
    assert row["status"] == "tracked"
    assert str(row["tag"]).startswith("11") and row["digest"] == D1 and "@" not in str(row["tag"])


def test_tag_at_digest_is_rewritten_in_the_same_form() -> None:
    text = f"image:\n  repository: bitnami/postgresql\n  tag: 11.5.0-debian-9-r0@{D1}\n"
    config = CatalogConfig.model_validate({"name": "t", "file": "values.yaml"})
    [slot] = find_references(config, open_source(text.encode(), "values.yaml", config)).slots
    assert slot.path == ("image", "tag") and slot.bare
    assert slot.render("11.5.0-debian-9-r0", D2) == f"11.5.0-debian-9-r0@{D2}"


def test_a_digest_written_both_inline_and_beside_is_left_alone() -> None:
    [row] = found("values.yaml", f"image:\n  repository: web\n  tag: 1.0@{D1}\n  digest: {D2}\n")
    assert row["status"] == "left-alone" and "written twice" in str(row["reason"])


def test_a_digest_in_new_tag_is_not_a_tag() -> None:
    [row] = found("kustomization.yaml", f"resources: []\nimages:\n  - name: web\n    newTag: {D1}\n",
                  policy={"kind": "semver"})
    assert row["status"] == "left-alone" and "is a digest, not a tag" in str(row["reason"])


@pytest.mark.parametrize("tag", ["'-1.2'", "'1.2 beta'", "'.hidden'", "'a/b'"])
def test_a_split_tag_outside_the_grammar_is_left_alone_with_the_reason(tag: str) -> None:
    [row] = found("values.yaml", f"image:\n  repository: web\n  tag: {tag}\n  digest: {D1}\n")
    assert row["status"] == "left-alone" and "tag grammar" in str(row["reason"])


def test_snake_case_image_keys_are_images() -> None:
    table = by_path(found("values.yaml", f"""\
sidecar_image: busybox:1.36@{D1}
init_image:
  repository: ghcr.io/acme/init
  tag: "2.0"
  digest: {D1}
"""))
    assert table[".sidecar_image"]["status"] == table[".init_image"]["status"] == "tracked"


def test_a_version_field_is_the_tag_of_an_image_mapping() -> None:
    [row] = found("values.yaml", f"coreImage:\n  repository: ghcr.io/acme/core\n  version: v1.2.0\n"
                  f"  digest: {D1}\n")
    assert (row["status"], row["tag"]) == ("tracked", "v1.2.0")


def test_an_image_mapping_holding_an_image_mapping_is_read_once() -> None:
    [row] = found("values.yaml", "app:\n  image:\n    image:\n      repository: ghcr.io/acme/web\n"
                  f"      tag: '1.0'\n      digest: {D1}\n")
    assert (row["path"], row["status"]) == (".app.image.image", "tracked")


INGRESS = f"""\
global:
  image:
    registry: registry.k8s.io
controller:
  image:
    image: ingress-nginx/controller
    tag: "v1.9.4"
    digest: {D1}
"""


def test_the_global_image_registry_goes_before_every_image() -> None:
    """#31 item 4: ingress-nginx's values name registry.k8s.io only under global.image."""
    table = by_path(found("values.yaml", INGRESS))
    row = table[".controller.image"]
    assert (row["status"], row["image"]) == ("tracked", "registry.k8s.io/ingress-nginx/controller")
    assert row["value"] == "ingress-nginx/controller"  # the text written there
    assert table[".global.image"]["status"] == "ignored"


def test_bitnamis_global_image_registry_goes_before_every_image() -> None:
    text = ("global:\n  imageRegistry: my.registry.io\n"
            f"image:\n  repository: bitnami/redis\n  tag: 7.2.4\n  digest: {D1}\n")
    [row] = [r for r in found("values.yaml", text) if r["status"] != "ignored"]
    assert row["image"] == "my.registry.io/bitnami/redis"


def test_an_own_registry_other_than_the_global_one_is_left_alone() -> None:
    text = INGRESS.replace("    image: ingress-nginx", "    registry: quay.io\n    image: ingress-nginx")
    row = by_path(found("values.yaml", text))[".controller.image"]
    assert row["status"] == "left-alone" and "charts differ on which wins" in str(row["reason"])


def test_an_empty_global_registry_changes_nothing() -> None:
    text = INGRESS.replace("registry: registry.k8s.io", 'registry: ""')
    row = by_path(found("values.yaml", text))[".controller.image"]
    assert row["image"] == "docker.io/ingress-nginx/controller"


def test_a_helmrelease_global_registry_goes_before_its_values_images() -> None:
    body = "".join(f"    {line}\n" for line in INGRESS.splitlines())
    text = f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n{body}"
    row = by_path(found("apps/ingress.yaml", text))[".spec.values.controller.image"]
    assert row["image"] == "registry.k8s.io/ingress-nginx/controller"


@pytest.mark.parametrize("tag", ["1.0@", f"@{D1}", "1.0@sha256:abc", f"1.0@{D1}@x", f"1.0 @{D1}"])
def test_a_malformed_tag_at_digest_is_left_alone_with_the_reason(tag: str) -> None:
    [row] = found("values.yaml", f"image:\n  repository: web\n  tag: '{tag}'\n")
    assert row["status"] == "left-alone" and "is not `tag@digest`" in str(row["reason"])
