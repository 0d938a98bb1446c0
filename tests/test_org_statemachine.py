"""The organisation run on Step Functions: the definition is valid Amazon States Language,
deploys, and each step's handler works on its own against S3 (moto), the GitHub contract server
and the real registry; a child planning from stored answers writes what one process would."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tagsync.aws.handler import handler
from tagsync.org.statemachine import definition, role_policy
from tests.test_org_run import Org, org  # noqa: F401  (the organisation fixture)

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "asl-validator"
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:tagsync-acme:live"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:tagsync-acme"
BUCKET = "tagsync-acme-runs"


def asl_problems(doc: dict[str, Any], tmp: Path) -> str:
    """npm asl-validator's verdict: '' when valid, else its complaints."""
    if not VALIDATOR.exists() or shutil.which("node") is None:
        pytest.fail("npm asl-validator is missing: run `make deps`")
    path = tmp / "machine.json"
    path.write_text(json.dumps(doc))
    done = subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True,
                          text=True, timeout=60)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_the_definition_is_valid_amazon_states_language(tmp_path: Path) -> None:
    assert asl_problems(definition(FUNCTION, BUCKET), tmp_path) == ""


def test_the_validator_refuses_a_definition_with_a_missing_state(tmp_path: Path) -> None:
    broken = definition(FUNCTION, BUCKET)
    broken["States"]["Summary"]["Next"] = "Nowhere"
    assert "Nowhere" in asl_problems(broken, tmp_path)


def test_the_map_reads_its_items_from_s3_and_tolerates_a_failed_repository() -> None:
    repos = definition(FUNCTION, BUCKET)["States"]["Repositories"]
    assert repos["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert repos["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert repos["ToleratedFailurePercentage"] == 100
    assert "ResultWriter" in repos


def test_the_role_may_do_what_the_definition_asks() -> None:
    statements = role_policy(FUNCTION, BUCKET, MACHINE)["Statement"]

    def allowed(action: str, resource: str) -> bool:
        import fnmatch

        return any(action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                   and any(fnmatch.fnmatchcase(resource, r)
                           for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                     else s["Resource"]))
                   for s in statements)

    assert allowed("lambda:InvokeFunction", FUNCTION)
    assert allowed("s3:GetObject", f"arn:aws:s3:::{BUCKET}/run-1/repositories.json")
    assert allowed("s3:PutObject", f"arn:aws:s3:::{BUCKET}/run-1/results/manifest.json")
    assert allowed("states:StartExecution", MACHINE)
    assert not allowed("s3:GetObject", "arn:aws:s3:::another-bucket/x")


def test_the_state_machine_deploys(moto: Any) -> None:
    import boto3

    iam = boto3.client("iam")
    role = iam.create_role(RoleName="tagsync-acme-sfn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "states.amazonaws.com"}}]}))
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name="tagsync-acme", roleArn=role["Role"]["Arn"],
                                   definition=json.dumps(definition(FUNCTION, BUCKET)))["stateMachineArn"]
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == \
        definition(FUNCTION, BUCKET)


# --- each step's handler, on its own ----------------------------------------------------------


@pytest.fixture
def steps(org: Org, moto: Any, monkeypatch: pytest.MonkeyPatch) -> Org:  # noqa: F811
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("TAGSYNC_ORG_CONFIG", str(org.config))
    return org


def _s3_json(key: str) -> Any:
    import boto3

    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_discover_stores_the_answers_and_the_repositories_to_run(steps: Org) -> None:
    out = handler({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"}, None)
    assert out["repositories"] == "run-1/repositories.json"
    assert _s3_json(out["repositories"]) == [
        {"repo": "acme/svc-a", "branch": "main", "config": "tagsync.yaml"},
        {"repo": "acme/svc-b", "branch": "main", "config": ".github/tagsync.yaml"}]
    assert [r["repo"] for r in _s3_json(out["selection"])] == ["acme/no-config"]
    assert _s3_json(out["answers"])["digests"]
    assert steps.github.writes() == []


def child_event(discovered: dict[str, Any], repo: str) -> dict[str, Any]:
    """A child's event as the Map's ItemSelector builds it from the item Discover stored."""
    [item] = [i for i in _s3_json(discovered["repositories"]) if i["repo"] == repo]
    selector = definition(FUNCTION, BUCKET)["States"]["Repositories"]["ItemSelector"]
    assert selector["item.$"] == "$$.Map.Item.Value"
    return {"tagsync": "org-repo", "repo": item["repo"], "item": item, "bucket": BUCKET,
            "answers": discovered["answers"]}


def test_a_child_writes_its_repository_from_the_stored_answers(steps: Org) -> None:
    out = handler({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"}, None)
    asked = len(steps.heads())
    row = handler(child_event(out, "acme/svc-a"), None)
    assert row["repo"] == "acme/svc-a" and row["status"] == "changed"
    assert steps.github.read("acme/svc-a", "deploy/app.yaml") == steps.kube(steps.digest)
    assert len(steps.heads()) == asked


def test_the_summary_reads_the_map_s_results_and_fails_on_a_failed_repository(steps: Org) -> None:
    import boto3

    out = handler({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"}, None)
    s3 = boto3.client("s3")
    ok = {"Status": "SUCCEEDED", "Input": json.dumps({"repo": "acme/svc-a"}),
          "Output": json.dumps({"repo": "acme/svc-a", "status": "changed", "reason": "1 changed"})}
    crashed = {"Status": "FAILED", "Input": json.dumps({"repo": "acme/svc-b"}),
               "Error": "Lambda.Unknown", "Cause": "the function timed out"}
    s3.put_object(Bucket=BUCKET, Key="run-1/results/x/SUCCEEDED_0.json", Body=json.dumps([ok]))
    s3.put_object(Bucket=BUCKET, Key="run-1/results/x/FAILED_0.json", Body=json.dumps([crashed]))
    s3.put_object(Bucket=BUCKET, Key="run-1/results/x/manifest.json", Body=json.dumps({
        "DestinationBucket": BUCKET, "ResultFiles": {
            "SUCCEEDED": [{"Key": "run-1/results/x/SUCCEEDED_0.json", "Size": 1}],
            "FAILED": [{"Key": "run-1/results/x/FAILED_0.json", "Size": 1}], "PENDING": []}}))
    result = handler({"tagsync": "org-summary", "bucket": BUCKET, "selection": out["selection"],
                      "written": {"ResultWriterDetails": {"Bucket": BUCKET,
                                                          "Key": "run-1/results/x/manifest.json"}}},
                     None)
    assert result["status"] == "partial"
    assert {r["repo"]: r["status"] for r in result["repositories"]} == {
        "acme/no-config": "skipped", "acme/svc-a": "changed", "acme/svc-b": "failed"}
    assert "timed out" in next(r for r in result["repositories"] if r["repo"] == "acme/svc-b")["reason"]


def test_a_step_without_a_bucket_is_a_config_error(steps: Org) -> None:
    from tagsync.errors import ConfigError

    with pytest.raises(ConfigError, match="bucket"):
        handler({"tagsync": "org-discover"}, None)


def test_the_summary_step_updates_the_dashboard(steps: Org) -> None:
    steps.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    steps.config.write_text(steps.config.read_text() + "dashboard: {repo: acme/ops}\n")
    out = handler({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-2"}, None)
    result = handler({"tagsync": "org-summary", "bucket": BUCKET, "selection": out["selection"]},
                     None)
    [issue] = steps.github.repos["acme/ops"].issues
    assert result["dashboard"] == f"dashboard acme/ops#{issue.number} opened"
    assert "| acme/no-config | skipped |" in issue.body
