"""`tagsync org deploy` / `org destroy` on moto: the fan-out converges from any state, refuses
what is not its own before the first write, and cleans up after itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tagsync.aws.org_deploy import OrgDeployer, OrgDeploySpec
from tagsync.cli import main
from tagsync.errors import ConfigError
from tests.test_aws_deploy import push_image

SPEC = OrgDeploySpec("Acme", "tagsync-acme-main", "rate(2 hours)", 25)
NAME = "tagsync-org-acme"


@pytest.fixture
def function(moto: Any) -> str:
    """A tagsync function as `tagsync deploy` leaves it (image package, its own role)."""
    import boto3

    iam = boto3.client("iam")
    role = iam.create_role(RoleName="tagsync-acme-main-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    lam = boto3.client("lambda")
    lam.create_function(FunctionName=SPEC.function, PackageType="Image", Role=role["Role"]["Arn"],
                        Code={"ImageUri": push_image("abc1234", "tagsync")})
    return str(role["Role"]["RoleName"])


def actions(steps: list[Any]) -> dict[str, str]:
    return {s.resource: s.action for s in steps}


def test_a_first_deploy_creates_the_fan_out(function: str) -> None:
    import boto3

    steps = actions(OrgDeployer(SPEC).deploy())
    assert set(steps.values()) == {"create"}
    account = boto3.client("sts").get_caller_identity()["Account"]
    machine = f"arn:aws:states:eu-west-1:{account}:stateMachine:{NAME}"
    doc = json.loads(boto3.client("stepfunctions").describe_state_machine(
        stateMachineArn=machine)["definition"])
    assert doc["States"]["Repositories"]["MaxConcurrency"] == 25
    assert doc["States"]["Discover"]["Parameters"]["FunctionName"].endswith(
        f":function:{SPEC.function}:live")
    schedule = boto3.client("scheduler").get_schedule(Name=NAME)
    assert (schedule["ScheduleExpression"], schedule["Target"]["Arn"]) == ("rate(2 hours)", machine)
    policy = boto3.client("iam").get_role_policy(RoleName=function, PolicyName="tagsync-org-runs")
    assert f"{NAME}-{account}-eu-west-1/*" in json.dumps(policy["PolicyDocument"])


def test_a_second_deploy_changes_nothing(function: str) -> None:
    OrgDeployer(SPEC).deploy()
    assert set(actions(OrgDeployer(SPEC).deploy()).values()) == {"none"}


def test_a_changed_schedule_or_concurrency_updates_only_what_differs(function: str) -> None:
    OrgDeployer(SPEC).deploy()
    changed = OrgDeploySpec(SPEC.organisation, SPEC.function, "rate(30 minutes)", 5)
    steps = actions(OrgDeployer(changed).deploy())
    assert {r for r, a in steps.items() if a != "none"} == {f"schedule {NAME}",
                                                            f"state machine {NAME}"}


def test_a_missing_function_is_refused_before_anything_is_created(moto: Any) -> None:
    import boto3

    with pytest.raises(ConfigError, match="tagsync deploy"):
        OrgDeployer(SPEC).deploy()
    assert boto3.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_a_state_machine_of_that_name_not_ours_is_refused_before_the_first_write(function: str) -> None:
    import boto3

    role = boto3.client("iam").create_role(RoleName="someone", AssumeRolePolicyDocument="{}")
    boto3.client("stepfunctions").create_state_machine(
        name=NAME, roleArn=role["Role"]["Arn"],
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}))
    with pytest.raises(ConfigError, match="not created by tagsync"):
        OrgDeployer(SPEC).deploy()
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_plan_reports_and_writes_nothing(function: str) -> None:
    import boto3

    checked, *steps = OrgDeployer(SPEC, dry=True).deploy()
    assert checked.resource.startswith("permissions of") and checked.action == "none"
    assert steps and all(s.action == "create" for s in steps)
    assert boto3.client("scheduler").list_schedules()["Schedules"] == []


def test_destroy_removes_what_deploy_made_and_keeps_the_function(function: str) -> None:
    import boto3

    OrgDeployer(SPEC).deploy()
    OrgDeployer(SPEC).destroy()
    assert boto3.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert boto3.client("scheduler").list_schedules()["Schedules"] == []
    assert boto3.client("iam").list_role_policies(RoleName=function)["PolicyNames"] == []
    assert boto3.client("lambda").get_function(FunctionName=SPEC.function)
    assert set(actions(OrgDeployer(SPEC).destroy()).values()) <= {"delete"}  # nothing left


@pytest.mark.parametrize(("spec", "why"), [
    (OrgDeploySpec("-bad", "f"), "GitHub account name"),
    (OrgDeploySpec("acme", "f", "rate(1 hours)"), "rate"),
    (OrgDeploySpec("acme", "f", max_concurrency=0), "concurrency"),
])
def test_bad_names_are_refused_before_any_call(spec: OrgDeploySpec, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        OrgDeployer(spec)


def test_a_long_organisation_gets_a_bucket_name_within_s3_s_rules() -> None:
    from tagsync.aws.org_deploy import bucket_name

    name = bucket_name(OrgDeploySpec("a" * 39, "f"), "123456789012", "ap-southeast-2")
    assert len(name) <= 63 and name == bucket_name(OrgDeploySpec("A" * 39, "f"), "123456789012",
                                                   "ap-southeast-2")


def test_cli_org_deploy_prints_the_steps(function: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["org", "deploy", "--organisation", "acme", "--function", SPEC.function,
                 "--plan"]) == 0
    assert f"state machine {NAME}" in capsys.readouterr().out


# --- `tagsync deploy --org`: the organisation's function and its fan-out in one command ----------


def test_deploy_org_makes_the_function_and_its_fan_out_and_no_eventbridge_rule(
        moto: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import boto3

    org_yaml = tmp_path / "org.yaml"
    org_yaml.write_text("organisation: acme\ngithub: {token: 'aws-ssm:/tagsync/github-token'}\n")
    image = push_image("b" * 40, "platform-main")
    argv = ["deploy", "--org", "-c", str(org_yaml), "--repo", "acme/platform", "--branch", "main",
            "--sha", "b" * 40, "--image", image, "--schedule", "rate(2 hours)"]
    assert main([*argv, "--plan"]) == 0
    planned = capsys.readouterr().out
    assert "state machine tagsync-org-acme" in planned and "nothing was changed" in planned
    assert main(argv) == 0
    capsys.readouterr()
    env = boto3.client("lambda").get_function_configuration(
        FunctionName="platform-main")["Environment"]["Variables"]
    assert env["TAGSYNC_ORG_CONFIG"] == "/var/task/org.yaml" and "TAGSYNC_CONFIG" not in env
    assert boto3.client("events").list_rules()["Rules"] == []
    schedule = boto3.client("scheduler").get_schedule(Name=NAME)
    assert schedule["ScheduleExpression"] == "rate(2 hours)"
    role_policy = json.dumps(boto3.client("iam").get_role_policy(
        RoleName="platform-main-role", PolicyName="tagsync-read")["PolicyDocument"])
    assert "tagsync/github-token" in role_policy  # the org config's secret, and only what it names
    assert main(argv) == 0
    assert "no change" in capsys.readouterr().out


def test_deploy_org_without_a_config_is_a_usage_error(moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--org", "--repo", "acme/platform", "--branch", "main", "--sha",
                 "b" * 40]) == 2
    assert "--org needs --config" in capsys.readouterr().err


# --- org destroy reads every ownership before its first deletion ---------------------------------


def test_destroy_keeps_a_state_machine_not_ours_and_the_schedule_starting_it(function: str) -> None:
    import boto3

    OrgDeployer(SPEC).deploy()
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    sfn.untag_resource(resourceArn=machine, tagKeys=["tagsync:org"])
    steps = actions(OrgDeployer(SPEC).destroy())
    assert steps[f"state machine {NAME}"] == "keep" and steps[f"schedule {NAME}"] == "keep"
    assert steps[f"IAM role {NAME}-sfn"] == "delete"
    assert sfn.describe_state_machine(stateMachineArn=machine)
    assert boto3.client("scheduler").get_schedule(Name=NAME)


def test_destroy_keeps_a_schedule_of_that_name_starting_something_else(function: str) -> None:
    import boto3

    OrgDeployer(SPEC).deploy()
    scheduler = boto3.client("scheduler")
    current = scheduler.get_schedule(Name=NAME)
    target = {**current["Target"], "Arn": current["Target"]["Arn"].replace(NAME, "someone-elses")}
    scheduler.update_schedule(Name=NAME, ScheduleExpression=current["ScheduleExpression"],
                              FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    destroyed = OrgDeployer(SPEC).destroy()
    kept = {s.resource: s.detail for s in destroyed if s.action == "keep"}
    assert list(kept) == [f"schedule {NAME}"] and "someone-elses" in kept[f"schedule {NAME}"]
    assert scheduler.get_schedule(Name=NAME)


def test_a_refused_read_during_destroy_deletes_nothing(moto: Any, function: str) -> None:
    """Before, the schedule was deleted and then the state machine's tags were refused."""
    import boto3

    from tagsync.aws.calls import DeployError
    from tagsync.aws.policies import deploy_permission_policy

    OrgDeployer(SPEC).deploy()
    policy = deploy_permission_policy("acme/tagsync", "123456789012", "eu-west-1", "acme")
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "states:ListTagsForResource"]
    moto.contract.strict.caller = policy
    with pytest.raises(DeployError, match="states:ListTagsForResource"):
        OrgDeployer(SPEC).destroy()
    moto.contract.strict.caller = None
    assert boto3.client("scheduler").get_schedule(Name=NAME)
    assert boto3.client("stepfunctions").list_state_machines()["stateMachines"]


# --- a role created moments ago (IAM propagation), as real AWS answers it ------------------------


def not_assumable(code: str, message: str, times: int) -> Any:
    """A before-send hook answering `times` requests with the error AWS gives for a new role."""
    from botocore.awsrequest import AWSResponse

    left = {"n": times}

    def hook(request: Any, **_: Any) -> Any:
        if left["n"] == 0:
            return None
        left["n"] -= 1
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield body

        return AWSResponse(request.url, 400, {"x-amzn-errortype": code}, Raw())

    return hook


def test_a_new_role_not_yet_assumable_is_retried_with_backoff_not_a_fixed_sleep(function: str) -> None:
    import boto3

    slept: list[float] = []
    deployer = OrgDeployer(SPEC, session=boto3.session.Session(), sleep=slept.append)
    deployer.client("stepfunctions").meta.events.register(
        "before-send.sfn.CreateStateMachine", not_assumable(
            "AccessDeniedException", "Neither the global service principal states.amazonaws.com, "
            "nor the regional one is authorized to assume the provided role.", 2))
    deployer.client("scheduler").meta.events.register(
        "before-send.scheduler.CreateSchedule", not_assumable(
            "ValidationException", "The execution role you provide must allow AWS "
            "EventBridge Scheduler to assume the role.", 1))
    deployer.deploy()
    assert deployer.role_retries == 3 and slept == [1.0, 2.0, 1.0]
    assert boto3.client("scheduler").get_schedule(Name=NAME)


def test_a_role_never_assumable_fails_within_the_budget_naming_why(function: str) -> None:
    import boto3

    from tagsync.aws.calls import DeployError

    slept: list[float] = []
    deployer = OrgDeployer(SPEC, session=boto3.session.Session(), sleep=slept.append, role_retry_budget=10)
    deployer.client("scheduler").meta.events.register(
        "before-send.scheduler.CreateSchedule", not_assumable(
            "ValidationException", "The execution role you provide must allow AWS "
            "EventBridge Scheduler to assume the role.", 100))
    with pytest.raises(DeployError, match="still not assumable after 7 s"):
        deployer.deploy()
    assert slept == [1.0, 2.0, 4.0]


def test_another_validation_error_is_not_retried(function: str) -> None:
    import boto3

    from tagsync.aws.calls import DeployError

    slept: list[float] = []
    deployer = OrgDeployer(SPEC, session=boto3.session.Session(), sleep=slept.append)
    deployer.client("scheduler").meta.events.register(
        "before-send.scheduler.CreateSchedule", not_assumable(
            "ValidationException", "Invalid Schedule Expression", 1))
    with pytest.raises(DeployError, match="Invalid Schedule Expression"):
        deployer.deploy()
    assert slept == []
