"""ECR as a source, against the moto server: tags, digests and push times from ECR's API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import boto3
import pytest

from tagsync.config import DigestFormat, RegistryConfig, load_config
from tagsync.errors import ImageNotFoundError
from tagsync.reference import ImageName
from tagsync.registry import TagQuery, Want, list_tags, observe
from tagsync.registry.ecr import EcrSource, parse_ecr_host
from tagsync.run import run
from tests.servers.fixtures import MotoServer

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"


def manifest(n: int) -> str:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + f"{n:064x}", "size": 10},
        "layers": [],
    })


@pytest.fixture
def ecr(moto: MotoServer) -> object:
    client = boto3.client("ecr", region_name="eu-west-1")
    client.create_repository(repositoryName="team/api")
    for n, tag in enumerate(["1.0.0", "1.1.0", "2.0.0-rc1"], start=1):
        client.put_image(repositoryName="team/api", imageManifest=manifest(n), imageTag=tag,
                         imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    return client


def test_ecr_hosts_are_recognised_and_others_are_not():
    assert parse_ecr_host(HOST) == (ACCOUNT, "eu-west-1")
    assert parse_ecr_host("ghcr.io") is None
    assert RegistryConfig(host=HOST).source_kind() == "ecr"
    assert RegistryConfig(host=HOST, url="https://x").source_kind() == "oci"


def test_digests_come_from_one_describe_images_call_per_repository(ecr):
    source = EcrSource(ACCOUNT, "eu-west-1")
    image = ImageName(HOST, "team/api")
    wants = [Want(image, t, DigestFormat.full, None) for t in ("1.0.0", "1.1.0")]
    found = asyncio.run(observe(wants, {HOST: source}))
    expected = {d["imageTags"][0]: d["imageDigest"]
                for d in ecr.describe_images(repositoryName="team/api")["imageDetails"]}
    assert {w.tag: o.value for w, o in found.items()} == {t: expected[t] for t in ("1.0.0", "1.1.0")}
    assert source.requests == 1


def test_tags_and_push_times_need_no_manifests(ecr):
    source = EcrSource(ACCOUNT, "eu-west-1")
    q = TagQuery(ImageName(HOST, "team/api"), times=True)
    listing = asyncio.run(list_tags([q], {HOST: source}))[q]
    assert listing.tags == ("1.0.0", "1.1.0", "2.0.0-rc1")
    assert set(listing.created) == set(listing.tags)
    assert source.requests == 1


def test_image_id_format_reads_the_manifest_with_batch_get_image(ecr):
    source = EcrSource(ACCOUNT, "eu-west-1")
    want = Want(ImageName(HOST, "team/api"), "1.1.0", DigestFormat.image_id, None)
    found = asyncio.run(observe([want], {HOST: source}))
    assert found[want].value == f"{2:064x}"[:12]


def test_a_missing_repository_is_a_per_image_failure(ecr):
    source = EcrSource(ACCOUNT, "eu-west-1")
    want = Want(ImageName(HOST, "team/nope"), "1", DigestFormat.full, None)
    found = asyncio.run(observe([want], {HOST: source}))
    assert isinstance(found[want].error, ImageNotFoundError)
    assert found[want].error.image == f"{HOST}/team/nope"


def test_run_follows_a_semver_policy_on_ecr(ecr, tmp_path: Path):
    (tmp_path / "values.yaml").write_text(f"image: {HOST}/team/api\ntag: 1.0.0\n")
    (tmp_path / "tagsync.yaml").write_text("""\
catalogs:
  - name: api
    file: values.yaml
    image: "{image}"
    tag: .tag
    policy: {kind: semver}
""")
    summary = run(load_config(tmp_path / "tagsync.yaml"))
    assert (tmp_path / "values.yaml").read_text().endswith("tag: 1.1.0\n")
    # one DescribeImages lists the tags with their digests; two reads explain the bump (the new
    # image's manifest and config, for its labels; they name no source, so the old image, only
    # read for a compare view, is not)
    assert summary.requests["requests"] == 3


def test_no_ecr_call_once_the_runs_time_is_up(ecr):
    """The deadline reaches ECR as it reaches the registry protocol, explanations included."""
    import time

    from tagsync.errors import DeadlineError

    source = EcrSource(ACCOUNT, "eu-west-1", deadline=time.monotonic() - 1)
    want = Want(ImageName(HOST, "team/api"), "1.0.0", DigestFormat.full, None)
    found = asyncio.run(observe([want], {HOST: source}))
    assert isinstance(found[want].error, DeadlineError)
    assert source.requests == 0
