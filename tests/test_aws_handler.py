"""The Lambda handler, driven with real EventBridge payloads and a fake Lambda context."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tagsync.aws.handler import event_kind, handler
from tagsync.errors import ConfigError
from tagsync.reference import short
from tests.servers.fixtures import FaultyRegistry, GitServer, RegistryServer, unique_namespace
from tests.servers.proxy import Fault

# As EventBridge delivers a rule's scheduled event (AWS documentation sample).
RULE_EVENT = {
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2015-10-08T16:53:06Z",
    "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],
    "detail": {},
}
# EventBridge Scheduler delivers the target's Input verbatim; tagsync deploy sets this one.
SCHEDULER_EVENT = {"source": "tagsync.scheduler"}


@dataclass
class FakeContext:
    """What the Lambda runtime passes: a request id and a clock running down."""

    millis: int = 300_000
    aws_request_id: str = "req-0001"

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        return int(self.millis - (time.monotonic() - self.started) * 1000)


CATALOG = """\
images:
  - name: a
    tags: [["1", "{a}"]]
  - name: b
    tags: [["1", "{b}"]]
  - name: c
    tags: [["1", "{c}"]]
"""


def make_config(tmp_path: Path, registry_url: str, host: str, ns: str, git: GitServer,
                concurrency: int = 16) -> Path:
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
catalogs:
  - name: k
    file: images.yml
    entries: .images[*]
    image: "{host}/{ns}/{{name}}"
    pairs: .tags
    digest_format: short
registries:
  - host: "{host}"
    url: {registry_url}
git:
  repo: {git.url}
  token: env:TEST_GIT_TOKEN
run:
  concurrency: {concurrency}
  retries: 0
""")
    return config


@pytest.fixture
def setup(registry: RegistryServer, git_server: GitServer, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> dict[str, str]:
    ns = unique_namespace("lambda", request)
    git_server.commit_directly({"images.yml": CATALOG.format(a="0" * 12, b="0" * 12, c="0" * 12).encode()})
    new = {n: short(registry.push(f"{ns}/{n}", "1", f"{ns} {n}").digest) for n in "abc"}
    monkeypatch.setenv("TEST_GIT_TOKEN", git_server.token)
    monkeypatch.setenv("TAGSYNC_CONFIG", str(make_config(tmp_path, registry.url, registry.host, ns,
                                                         git_server)))
    return {"ns": ns, **new}


def test_scheduled_rule_event_runs_and_returns_the_summary(setup: dict[str, str],
                                                           git_server: GitServer) -> None:
    result = handler(RULE_EVENT, FakeContext())
    assert result["status"] == "changed" and result["pushed"]
    assert result["event_kind"] == "eventbridge-rule"
    assert git_server.read("images.yml") == CATALOG.format(**setup).encode()


def test_the_event_kinds_are_told_apart() -> None:
    assert event_kind(RULE_EVENT) == "eventbridge-rule"
    assert event_kind(SCHEDULER_EVENT) == "eventbridge-scheduler"
    assert event_kind({"dry_run": True}) == "manual"


def test_manual_dry_run_event_returns_the_diff_and_pushes_nothing(setup: dict[str, str],
                                                                  git_server: GitServer) -> None:
    head = git_server.head()
    result = handler({"dry_run": True}, FakeContext())
    assert result["diff"].startswith("--- a/images.yml")
    assert git_server.head() == head


def test_logs_are_one_json_object_per_line_without_secrets(setup: dict[str, str], git_server: GitServer,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    handler(SCHEDULER_EVENT, FakeContext())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["message"] == "tagsync run starting"
    assert lines[-1]["summary"]["status"] == "changed"
    assert all(line["request_id"] == "req-0001" for line in lines)
    assert git_server.token not in json.dumps(lines)


def test_deadline_stops_new_registry_work_and_lists_what_is_left(
        setup: dict[str, str], faulty_registry: FaultyRegistry, git_server: GitServer,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: RegistryServer) -> None:
    monkeypatch.setenv("TAGSYNC_CONFIG", str(make_config(
        tmp_path, faulty_registry.url, registry.host, setup["ns"], git_server, concurrency=1)))
    monkeypatch.setenv("TAGSYNC_RESERVE_SECONDS", "0")
    faulty_registry.faults.add("HEAD .*/manifests/", *[Fault(delay=0.6)] * 3)
    result = handler(RULE_EVENT, FakeContext(millis=1000))
    assert result["status"] == "partial"
    assert 1 <= len(result["deferred"]) <= 2
    assert result["pushed"]  # what was learnt in time is published
    assert len(result["changes"]) == 3 - len(result["deferred"])


def test_config_from_ssm_parameter(setup: dict[str, str], moto: object, git_server: GitServer,
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    import boto3

    text = Path(os.environ["TAGSYNC_CONFIG"]).read_text()
    boto3.client("ssm").put_parameter(Name="/tagsync/config", Value=text, Type="String")
    monkeypatch.setenv("TAGSYNC_CONFIG", "ssm:/tagsync/config")
    assert handler(RULE_EVENT, FakeContext())["pushed"]


def test_config_from_s3(setup: dict[str, str], moto: object, git_server: GitServer,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cfg", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="cfg", Key="tagsync.yaml", Body=Path(os.environ["TAGSYNC_CONFIG"]).read_bytes())
    monkeypatch.setenv("TAGSYNC_CONFIG", "s3://cfg/tagsync.yaml")
    assert handler(RULE_EVENT, FakeContext())["pushed"]


def test_missing_config_object_is_a_config_error(moto: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGSYNC_CONFIG", "ssm:/tagsync/absent")
    with pytest.raises(ConfigError, match="ParameterNotFound"):
        handler(RULE_EVENT, FakeContext())
