"""GitOps shapes, one behaviour each: Flux HelmRelease values and Kustomization images, Argo CD
Applications (valuesObject, values as a string, parameters, kustomize images). Pure: no registry."""

from __future__ import annotations

from tests.test_find_shapes import D1, by_path, found

HELMRELEASE = f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: podinfo}}
spec: {{url: oci://ghcr.io/stefanprodan/charts}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: web}}
spec:
  chart: {{spec: {{chart: web, version: 1.0.0}}}}
  values:
    image:
      repository: ghcr.io/acme/web
      tag: "1.4.2"
      digest: {D1}
    workers:
      queue:
        sidecar:
          image: docker.io/acme/side:2.0@{D1}
    containers: [{{name: x, image: "nginx:1.25"}}]
  postRenderers:
    - kustomize:
        images:
          - {{name: busybox, newTag: "1.36", digest: {D1}}}
"""


def test_a_helmrelease_values_are_read_with_the_helm_rules_at_any_depth() -> None:
    table = by_path(found("apps/web.yaml", HELMRELEASE))
    image = table[".spec.values.image"]
    assert (image["status"], image["shape"], image["image"], image["tag"], image["digest"]) == (
        "tracked", "flux", "ghcr.io/acme/web", "1.4.2", D1)
    side = table[".spec.values.workers.queue.sidecar.image"]
    assert (side["status"], side["image"]) == ("tracked", "docker.io/acme/side")


def test_a_helmrelease_values_are_not_read_as_pod_templates() -> None:
    """`containers:` inside values is a chart's own key: the Helm rules read its `image:` as a
    whole reference under an image key, once, not also as a Kubernetes container."""
    table = found("apps/web.yaml", HELMRELEASE)
    rows = [r for r in table if r["path"] == ".spec.values.containers[0].image"]
    assert [(r["shape"], r["status"]) for r in rows] == [("flux", "left-alone")]


def test_a_helmrelease_post_renderer_images_are_kustomize_entries() -> None:
    table = by_path(found("apps/web.yaml", HELMRELEASE))
    entry = table[".spec.postRenderers[0].kustomize.images[0]"]
    assert (entry["status"], entry["image"], entry["tag"]) == ("tracked", "docker.io/library/busybox", "1.36")


def test_a_flux_kustomization_spec_images_are_read_like_kustomize_images() -> None:
    text = f"""\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps}}
spec:
  path: ./apps
  images:
    - name: podinfo
      newName: ghcr.io/stefanprodan/podinfo
      newTag: 6.8.0
      digest: {D1}
    - name: web
"""
    table = by_path(found("clusters/apps.yaml", text))
    assert (table[".spec.images[0]"]["status"], table[".spec.images[0]"]["image"],
            table[".spec.images[0]"]["shape"]) == ("tracked", "ghcr.io/stefanprodan/podinfo", "flux")
    assert "comes from elsewhere" in str(table[".spec.images[1]"]["reason"])


APPLICATION = f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: web}}
spec:
  source:
    repoURL: https://charts.example.com
    chart: web
    helm:
      valuesObject:
        image: {{repository: ghcr.io/acme/web, tag: "1.4.2", digest: {D1}}}
      parameters:
        - name: worker.image.repository
          value: ghcr.io/acme/worker
        - name: worker.image.tag
          value: "2.0"
        - name: worker.image.digest
          value: {D1}
        - name: cron.image
          value: ghcr.io/acme/cron:3.1@{D1}
        - name: replicas
          value: "2"
      values: |
        proxy:
          image:
            repository: ghcr.io/acme/proxy
            tag: "0.9"
"""


def test_an_argocd_value_object_is_helm_values() -> None:
    row = by_path(found("argo/web.yaml", APPLICATION))[".spec.source.helm.valuesObject.image"]
    assert (row["status"], row["shape"], row["image"]) == ("tracked", "argocd", "ghcr.io/acme/web")


def test_argocd_parameters_are_grouped_into_images() -> None:
    table = by_path(found("argo/web.yaml", APPLICATION))
    worker = table[".spec.source.helm.parameters[0].value"]
    assert (worker["status"], worker["image"], worker["tag"], worker["digest"]) == (
        "tracked", "ghcr.io/acme/worker", "2.0", D1)
    cron = table[".spec.source.helm.parameters[3].value"]
    assert (cron["status"], cron["image"]) == ("tracked", "ghcr.io/acme/cron")
    assert ".spec.source.helm.parameters[4].value" not in table


def test_argocd_values_written_as_a_string_are_listed_and_left_alone() -> None:
    [row] = [r for r in found("argo/web.yaml", APPLICATION) if r["path"] == ".spec.source.helm.values"]
    assert (row["status"], row["image"], row["tag"], row["line"]) == (
        "left-alone", "ghcr.io/acme/proxy", "0.9", 26)
    assert "valuesObject" in str(row["reason"])


def test_argocd_kustomize_images_keep_their_name_prefix() -> None:
    text = f"""\
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
spec:
  template:
    spec:
      sources:
        - repoURL: https://git.example.com/apps
          kustomize:
            images: ["web=ghcr.io/acme/web:1.2@{D1}", "nginx:1.25"]
"""
    table = by_path(found("argo/set.yaml", text))
    first = table[".spec.template.spec.sources[0].kustomize.images[0]"]
    assert (first["status"], first["image"], first["tag"]) == ("tracked", "ghcr.io/acme/web", "1.2")
    second = table[".spec.template.spec.sources[0].kustomize.images[1]"]
    assert second["status"] == "left-alone" and "tag only" in str(second["reason"])


def test_helmrelease_values_shared_through_an_anchor_are_left_alone_and_said() -> None:
    text = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  labels: &common {image: {repository: ghcr.io/acme/web, tag: "1.0"}}
spec:
  values: *common
"""
    [row] = [r for r in found("apps/web.yaml", text) if r["path"] == ".spec.values"]
    assert row["status"] == "left-alone" and "anchor &common" in str(row["reason"])
