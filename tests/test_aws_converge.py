"""Deploys converge from any state: half-finished deploys, rollbacks, drift; and refuse early.

Every request is also checked against botocore's service models by the `moto` fixture, so a
deploy that would send AWS something it refuses fails here even though moto accepts it.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError

from tagsync.aws.calls import DeployError
from tagsync.aws.deploy import Deployer
from tagsync.aws.names import environment_name, validate_schedule
from tagsync.aws.spec import DeploySpec
from tagsync.aws.teardown import destroy, rollback
from tagsync.errors import ConfigError
from tests.test_aws_deploy import ACCOUNT, SHA1, SHA2, push_image

NAME = "catalogs-main"
FIRST_WRITES = ["CreateRepository", "PutLifecyclePolicy", "SetRepositoryPolicy", "CreateRole",
                "AttachRolePolicy", "PutRolePolicy", "CreateFunction", "PublishVersion", "CreateAlias",
                "PutRule", "PutTargets", "AddPermission"]
UPDATE_WRITES = ["UpdateFunctionConfiguration", "UpdateFunctionCode", "PublishVersion", "UpdateAlias"]


def spec(**kw: Any) -> DeploySpec:
    base: dict[str, Any] = {"repo": "acme/catalogs", "branch": "main", "sha": SHA1,
                            "secret_refs": ("aws-ssm:/tagsync/token",)}
    return DeploySpec(**{**base, **kw})


class Writes:
    """Counts the writes a deploy makes and fails the connection right after the chosen one."""

    def __init__(self, fail_after: str | None = None) -> None:
        self.fail_after, self.seen = fail_after, []  # type: ignore[var-annotated]

    def session(self) -> Any:
        session = boto3.session.Session()
        session.events.register("after-call", self.after)
        return session

    def after(self, model: Any, **_: Any) -> None:
        if model.name.startswith(("Get", "List", "Describe", "Simulate")):
            return
        self.seen.append(model.name)
        if model.name == self.fail_after:
            self.fail_after = None
            raise ConnectionClosedError(endpoint_url="injected: the connection dropped after the write")


def run(writes: Writes | None = None, **kw: Any) -> Deployer:
    d = Deployer(spec(**kw), session=writes.session() if writes else None, sleep=lambda s: None)
    d.deploy()
    return d


def assert_converged(sha: str, memory: int = 512) -> None:
    lam, events, iam = boto3.client("lambda"), boto3.client("events"), boto3.client("iam")
    alias = lam.get_alias(FunctionName=NAME, Name="live")
    live = lam.get_function(FunctionName=NAME, Qualifier=alias["FunctionVersion"])
    assert live["Code"]["ImageUri"].endswith(f":{sha}")
    assert live["Configuration"]["MemorySize"] == memory
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=NAME)["Targets"]] == [alias["AliasArn"]]
    policy = json.loads(lam.get_policy(FunctionName=NAME, Qualifier="live")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["tagsync-schedule"]
    attached = iam.list_attached_role_policies(RoleName=f"{NAME}-role")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]
    assert iam.list_role_policies(RoleName=f"{NAME}-role")["PolicyNames"] == ["tagsync-read"]
    again = run(image=live["Code"]["ImageUri"], sha=sha, memory=memory)
    assert [s.action for s in again.steps] == ["none"] * len(again.steps), again.steps


# --- convergence ----------------------------------------------------------------------------


def test_a_first_deploy_writes_in_this_order(moto: Any) -> None:
    writes = Writes()
    run(writes, image=push_image(SHA1, "elsewhere"))
    assert writes.seen == FIRST_WRITES


@pytest.mark.parametrize("failed_after", FIRST_WRITES)
def test_a_first_deploy_interrupted_after_any_write_converges_on_the_next(moto: Any,
                                                                          failed_after: str) -> None:
    image = push_image(SHA1, "elsewhere")
    with pytest.raises(DeployError, match="injected"):
        run(Writes(failed_after), image=image)
    run(image=image)
    assert_converged(SHA1)


@pytest.mark.parametrize("failed_after", UPDATE_WRITES)
def test_an_update_interrupted_after_any_write_converges_on_the_next(moto: Any, failed_after: str) -> None:
    run(image=push_image(SHA1, "elsewhere"))
    image2 = push_image(SHA2, "elsewhere")
    writes = Writes(failed_after)
    with pytest.raises(DeployError, match="injected"):
        run(writes, image=image2, sha=SHA2, memory=1024)
    run(image=image2, sha=SHA2, memory=1024)
    assert_converged(SHA2, memory=1024)


REPAIR_WRITES = ["PutImageTagMutability", "PutImageScanningConfiguration", "PutLifecyclePolicy",
                 "UpdateAssumeRolePolicy", "AttachRolePolicy", "PutRolePolicy", "PutRule", "RemoveTargets",
                 "PutTargets", "RemovePermission", "AddPermission"]


def drift_everything() -> None:
    """Every part of a deployed environment changed by hand."""
    ecr, iam, lam, events = (boto3.client(s) for s in ("ecr", "iam", "lambda", "events"))
    ecr.put_image_tag_mutability(repositoryName=NAME, imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(repositoryName=NAME,
                                         imageScanningConfiguration={"scanOnPush": False})
    ecr.delete_lifecycle_policy(repositoryName=NAME)
    role = f"{NAME}-role"
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    iam.detach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/"
                                                    "AWSLambdaBasicExecutionRole")
    iam.delete_role_policy(RoleName=role, PolicyName="tagsync-read")
    events.put_rule(Name=NAME, ScheduleExpression="rate(5 minutes)", State="DISABLED")
    events.put_targets(Rule=NAME, Targets=[{"Id": "other", "Arn": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:"
                                                                   "function:someone-else"}])
    lam.remove_permission(FunctionName=NAME, Qualifier="live", StatementId="tagsync-schedule")
    lam.add_permission(FunctionName=NAME, Qualifier="live", StatementId="tagsync-schedule",
                       Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                       SourceArn=f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/elsewhere")


def test_a_repair_of_every_part_writes_in_this_order(moto: Any) -> None:
    image = push_image(SHA1, "elsewhere")
    run(image=image)
    drift_everything()
    writes = Writes()
    run(writes, image=image)
    assert writes.seen == REPAIR_WRITES


@pytest.mark.parametrize("failed_after", REPAIR_WRITES)
def test_a_repair_interrupted_after_any_write_converges_on_the_next(moto: Any, failed_after: str) -> None:
    image = push_image(SHA1, "elsewhere")
    run(image=image)
    drift_everything()
    with pytest.raises(DeployError, match="injected"):
        run(Writes(failed_after), image=image)
    run(image=image)
    assert_converged(SHA1)
    repo = boto3.client("ecr").describe_repositories(repositoryNames=[NAME])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"]
    assert boto3.client("events").describe_rule(Name=NAME)["State"] == "ENABLED"


def test_redeploying_a_sha_after_a_rollback_moves_live_back_to_it(moto: Any) -> None:
    image1, image2 = push_image(SHA1, "elsewhere"), push_image(SHA2, "elsewhere")
    run(image=image1)
    run(image=image2, sha=SHA2)
    assert rollback("acme/catalogs", "main") == ("2", "1")
    d = run(image=image2, sha=SHA2)
    assert boto3.client("lambda").get_alias(FunctionName=NAME, Name="live")["FunctionVersion"] == "2"
    assert {s.resource.split(" ")[0]: s.action for s in d.steps}["version"] == "none"  # not published again
    assert_converged(SHA2)


def test_a_settings_change_for_the_same_sha_publishes_a_version_with_them(moto: Any) -> None:
    image = push_image(SHA1, "elsewhere")
    run(image=image)
    run(image=image, memory=1024)
    assert_converged(SHA1, memory=1024)


def test_a_deleted_schedule_target_and_permission_are_restored(moto: Any) -> None:
    image = push_image(SHA1, "elsewhere")
    run(image=image)
    boto3.client("events").remove_targets(Rule=NAME, Ids=["tagsync"])
    boto3.client("lambda").remove_permission(FunctionName=NAME, Qualifier="live",
                                             StatementId="tagsync-schedule")
    run(image=image)
    assert_converged(SHA1)


@pytest.mark.parametrize("drift", ["basic execution detached", "read grants deleted", "trust changed",
                                   "everything"])
def test_a_drifted_role_is_repaired_from_any_starting_point(moto: Any, drift: str) -> None:
    image = push_image(SHA1, "elsewhere")
    run(image=image)
    iam, role = boto3.client("iam"), f"{NAME}-role"
    if drift in ("basic execution detached", "everything"):
        iam.detach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/"
                                                        "AWSLambdaBasicExecutionRole")
    if drift in ("read grants deleted", "everything"):
        iam.delete_role_policy(RoleName=role, PolicyName="tagsync-read")
    if drift in ("trust changed", "everything"):
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
                "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    d = run(image=image)
    assert [s.action for s in d.steps if s.resource.startswith("IAM role")] == ["update"]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert_converged(SHA1)


def test_a_role_without_basic_execution_and_without_read_grants_is_repaired(moto: Any) -> None:
    """No secrets named: the repair must not delete an inline policy that is not there."""
    image = push_image(SHA1, "elsewhere")
    run(image=image, secret_refs=())
    boto3.client("iam").detach_role_policy(
        RoleName=f"{NAME}-role", PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    run(image=image, secret_refs=())
    attached = boto3.client("iam").list_attached_role_policies(RoleName=f"{NAME}-role")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]


def test_the_role_reads_the_ecr_registries_the_config_names(moto: Any) -> None:
    run(image=push_image(SHA1, "elsewhere"), ecr_registries=(("210987654321", "us-east-1"),))
    doc = boto3.client("iam").get_role_policy(RoleName=f"{NAME}-role", PolicyName="tagsync-read")
    statements = doc["PolicyDocument"]["Statement"]
    ecr = [s for s in statements if "ecr:DescribeImages" in s["Action"]]
    assert ecr == [{"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:DescribeImages",
                                                  "ecr:DescribeRepositories", "ecr:GetDownloadUrlForLayer"],
                    "Resource": ["arn:aws:ecr:us-east-1:210987654321:repository/*"]}]


# --- names that never collide -----------------------------------------------------------------


def test_branches_that_sanitise_alike_get_different_environments() -> None:
    names = {environment_name("acme/catalogs", b) for b in ("feature/foo-bar", "feature/Foo_bar",
                                                              "feature/FOO.BAR", "feature/foo_bar")}
    assert len(names) == 4


def test_case_only_differences_never_share_an_environment() -> None:
    assert environment_name("acme/catalogs", "Main") != environment_name("acme/catalogs", "main")
    assert environment_name("acme/Catalogs", "main") != environment_name("acme/catalogs", "main")


def test_a_branch_of_only_non_ascii_letters_is_not_the_bare_repository_name() -> None:
    name = environment_name("acme/catalogs", "ÄÖÜ")
    assert name.startswith("catalogs-") and name != "catalogs"


def test_a_repository_of_the_same_name_under_another_owner_is_named_apart(moto: Any) -> None:
    run(image=push_image(SHA1, "elsewhere"))
    assert {s.action for s in destroy("other-org/catalogs", "main", dry=True)} <= {"keep"}
    other = run(image=push_image(SHA1, "elsewhere"), repo="other-org/catalogs")
    assert other.name != NAME and other.name.startswith("catalogs-main-")
    assert_converged(SHA1)  # acme's environment is untouched
    again = run(image=push_image(SHA1, "elsewhere"), repo="other-org/catalogs")
    assert again.name == other.name and {s.action for s in again.steps} == {"none"}
    steps = destroy("other-org/catalogs", "main")
    assert all(other.name in s.resource for s in steps) and {s.action for s in steps} == {"delete"}
    assert_converged(SHA1)


def test_an_environment_at_the_qualified_name_stays_there_when_the_plain_name_frees_up(moto: Any) -> None:
    run(image=push_image(SHA1, "elsewhere"))
    other = run(image=push_image(SHA1, "elsewhere"), repo="other-org/catalogs")
    destroy("acme/catalogs", "main", delete_repository=True)
    again = run(image=push_image(SHA1, "elsewhere"), repo="other-org/catalogs")
    assert again.name == other.name and {s.action for s in again.steps} == {"none"}


def test_an_ecr_repository_of_another_environment_is_not_shared(moto: Any) -> None:
    run(image=push_image(SHA1, "elsewhere"))
    destroy("acme/catalogs", "main")  # the repository stays, still tagged as acme's
    other = run(image=push_image(SHA1, "elsewhere"), repo="other-org/catalogs")
    assert other.name != NAME
    tags = boto3.client("ecr").list_tags_for_resource(resourceArn=boto3.client("ecr").describe_repositories(
        repositoryNames=[NAME])["repositories"][0]["repositoryArn"])["tags"]
    assert {"Key": "tagsync:repo", "Value": "acme/catalogs"} in tags


@pytest.mark.parametrize("branch", ["feature/" + "x" * 267, "y" * 250, "fix/issue#12", "feat/it's", "ÄÖÜ"])
def test_any_git_branch_deploys_within_every_services_rules(moto: Any, branch: str) -> None:
    """Names, tag values and descriptions are checked by the botocore-model contract."""
    d = run(image=push_image(SHA1, "elsewhere"), branch=branch)
    fn = boto3.client("lambda").get_function(FunctionName=d.name)
    assert len(fn["Configuration"]["Description"]) <= 256
    assert len(fn["Tags"]["tagsync:branch"]) <= 256


# --- checked before the first write -----------------------------------------------------------


@pytest.mark.parametrize("expr", ["cron(99 99 * * ? *)", "cron(0 25 ? * MON-FRI *)", "cron(0 6 32 13 ? *)",
                                  "cron(0 6 * * ? 1900)", "cron(0 6 * * ? 2200)", "cron(0 6 ? * 8 *)",
                                  "cron(0 6 ? * MON#6 *)", "cron(0 6 LW,3 * ? *)", "cron(0 6 * * MON *)",
                                  "cron(0 6 ? * ? *)", "cron(0/0 * * * ? *)", "cron(0 6 ? JANUARY MON *)",
                                  "cron(0  6 * * ? *)", "rate(0 hours)"])
def test_schedules_aws_would_refuse_are_refused(expr: str) -> None:
    with pytest.raises(ConfigError, match="schedule"):
        validate_schedule(expr)


@pytest.mark.parametrize("expr", ["cron(0 6 * * ? *)", "cron(0/30 8-18 ? * MON-FRI *)", "cron(15 10 L * ? *)",
                                  "cron(0 9 ? * 6L 2026-2030)", "cron(0 9 ? * FRI#3 *)",
                                  "cron(0 9 15W * ? *)",
                                  "cron(0 12 1,15 JAN-MAR ? *)", "cron(5,35 */2 ? * SUN-SAT 1970)",
                                  "rate(1 minute)", "rate(90 days)"])
def test_schedules_aws_accepts_pass(expr: str) -> None:
    validate_schedule(expr)


def _nothing_created() -> None:
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert [r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]
            if r["repositoryName"] == NAME] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


@pytest.mark.parametrize(("image", "why"), [
    ("not a uri", "--image"),
    ("docker.io/library/python:3.11", "ECR only"),
    (f"210987654321.dkr.ecr.eu-west-1.amazonaws.com/elsewhere:{SHA1}", "account 210987654321"),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/elsewhere:{SHA1}", "region us-east-1"),
    (f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/elsewhere:{SHA2}", "is not in elsewhere"),
    (f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/missing:{SHA1}", "no repository missing"),
])
def test_an_image_lambda_could_not_run_is_refused_before_anything_is_created(
        moto: Any, image: str, why: str) -> None:
    push_image(SHA1, "elsewhere")
    with pytest.raises(ConfigError, match=why):
        run(image=image)
    _nothing_created()


# --- function settings ------------------------------------------------------------------------


def variables() -> dict[str, str]:
    fn = boto3.client("lambda").get_function(FunctionName=NAME)
    return dict(fn["Configuration"]["Environment"]["Variables"])


def test_env_and_secret_env_are_set_and_the_role_reads_exactly_the_secret(moto: Any) -> None:
    run(image=push_image(SHA1, "elsewhere"), environment={"LOG_FORMAT": "json"},
        secret_environment={"TAGSYNC_GIT_TOKEN": "aws-secretsmanager:tagsync/git-token"})
    env = variables()
    assert env["LOG_FORMAT"] == "json"
    assert env["TAGSYNC_GIT_TOKEN"] == "aws-secretsmanager:tagsync/git-token"  # a reference, not the value
    assert env["TAGSYNC_SECRET_ENV"] == "TAGSYNC_GIT_TOKEN"
    doc = boto3.client("iam").get_role_policy(RoleName=f"{NAME}-role", PolicyName="tagsync-read")
    resources = [r for s in doc["PolicyDocument"]["Statement"] for r in s["Resource"]]
    assert f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:tagsync/git-token-??????" in resources


def test_variables_are_kept_declaratively_and_those_set_by_hand_are_reported_not_removed(moto: Any) -> None:
    image = push_image(SHA1, "elsewhere")
    run(image=image, environment={"ALPHA": "1", "BETA": "2"})
    lam = boto3.client("lambda")
    lam.update_function_configuration(FunctionName=NAME,
                                      Environment={"Variables": {**variables(), "MINE": "x"}})
    d = run(image=image, environment={"ALPHA": "1"})
    env = variables()
    assert env["ALPHA"] == "1" and "BETA" not in env and env["MINE"] == "x"
    assert any("kept variables set by hand: MINE" in str(s) for s in d.steps)
    again = run(image=image, environment={"ALPHA": "1"})
    assert [s.action for s in again.steps] == ["none"] * len(again.steps)


@pytest.mark.parametrize(("kw", "why"), [
    ({"environment": {"AWS_REGION": "x"}}, "reserved"),
    ({"environment": {"1X": "x"}}, "letters, digits"),
    ({"secret_environment": {"TOKEN": "env:T"}}, "aws-secretsmanager"),
    ({"secret_environment": {"TOKEN": "plain"}}, "not a secret reference"),
])
def test_bad_variables_are_refused_before_any_call(kw: dict[str, Any], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        spec(**kw).check()


def test_the_handler_resolves_the_secret_environment_once(moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import tagsync.aws.handler as handler

    with moto.contract.paused():
        boto3.client("secretsmanager").create_secret(Name="tagsync/git-token", SecretString="s3cr3t")
    monkeypatch.setattr(handler, "_resolved_env", False)
    monkeypatch.setenv("TAGSYNC_SECRET_ENV", "TAGSYNC_GIT_TOKEN")
    monkeypatch.setenv("TAGSYNC_GIT_TOKEN", "aws-secretsmanager:tagsync/git-token")
    assert handler.resolve_secret_environment() == ["TAGSYNC_GIT_TOKEN"]
    assert handler.resolve_secret_environment() == []  # a warm start keeps the value
    import os

    assert os.environ["TAGSYNC_GIT_TOKEN"] == "s3cr3t"


# --- endpoints that do not speak AWS; destroy's logs ---------------------------------------------


@pytest.mark.parametrize("status", ["200 OK", "404 Not Found", "500 Internal Server Error"])
def test_an_endpoint_that_does_not_speak_aws_is_a_clean_error(moto: Any, monkeypatch: pytest.MonkeyPatch,
                                                               status: str) -> None:
    """AWS_ENDPOINT_URL at some web server: a typed error naming the endpoint, no traceback."""
    from tests.servers.fixtures import serve_wsgi

    def web_page(environ: dict[str, Any], start: Any) -> list[bytes]:
        start(status, [("Content-Type", "text/html")])
        return [b"<html><body>Welcome to nginx!</body></html>"]

    server = serve_wsgi(web_page)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        with pytest.raises(DeployError, match="does not answer like AWS"):
            run(image=f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/elsewhere:{SHA1}")
    finally:
        server.stop()


def test_destroy_removes_the_log_group_unless_asked_to_keep_it(moto: Any) -> None:
    run(image=push_image(SHA1, "elsewhere"))
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=f"/aws/lambda/{NAME}")
    steps = destroy("acme/catalogs", "main", keep_logs=True)
    assert not any("log group" in s.resource for s in steps)
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    steps = destroy("acme/catalogs", "main")
    assert [s.resource for s in steps] == [f"log group /aws/lambda/{NAME}"]
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"] == []


def test_the_contract_refuses_what_aws_would_refuse(moto: Any) -> None:
    """Guards the guard: moto accepts this description, AWS's model does not."""
    contract = moto.contract
    found = contract.check(boto3.client("lambda").meta.service_model.operation_model(
        "PublishVersion").input_shape, {"FunctionName": NAME, "Description": "x" * 257}, "t")
    assert found == ["t.Description: 257 characters, at most 256 allowed"]
    found = contract.check(boto3.client("iam").meta.service_model.operation_model("TagRole").input_shape,
                           {"RoleName": "r", "Tags": [{"Key": "k", "Value": "fix/issue#12"}]}, "t")
    assert len(found) == 1 and "does not match" in found[0]


# --- starting states real AWS adds: a Zip function, a deleted version, adopted resources ---------


def _untag_everything() -> None:
    lam, iam, events, ecr = (boto3.client(s) for s in ("lambda", "iam", "events", "ecr"))
    arn = lam.get_function(FunctionName=NAME)["Configuration"]["FunctionArn"]
    keys = list(lam.list_tags(Resource=arn)["Tags"])
    lam.untag_resource(Resource=arn, TagKeys=keys)
    iam.untag_role(RoleName=f"{NAME}-role", TagKeys=keys)
    events.untag_resource(ResourceARN=events.describe_rule(Name=NAME)["Arn"], TagKeys=keys)
    repo = ecr.describe_repositories(repositoryNames=[NAME])["repositories"][0]["repositoryArn"]
    ecr.untag_resource(resourceArn=repo, tagKeys=keys)


@pytest.mark.parametrize("state", ["zip function of this environment", "live on a version since deleted",
                                   "resources without tags (adopted)", "repository policy removed"])
def test_deploy_converges_from_states_only_real_aws_has(moto: Any, state: str) -> None:
    from tagsync.aws.names import environment_id
    from tagsync.aws.policies import lambda_may_pull
    from tests.test_aws_strict import zip_function

    image1, image2 = push_image(SHA1, "elsewhere"), push_image(SHA2, "elsewhere")
    sha, image = SHA1, image1
    if state == "zip function of this environment":
        zip_function(tags={"tagsync:environment": NAME,
                           "tagsync:id": environment_id("acme/catalogs", "main")})
    elif state == "live on a version since deleted":
        run(image=image1)
        run(image=image2, sha=SHA2)
        rollback("acme/catalogs", "main")
        boto3.client("lambda").delete_function(FunctionName=NAME, Qualifier="2")
        sha, image = SHA2, image2
    elif state == "resources without tags (adopted)":
        run(image=image1)
        _untag_everything()
    else:
        run(image=image1)
        boto3.client("ecr").delete_repository_policy(repositoryName="elsewhere")
    run(image=image, sha=sha)
    assert_converged(sha)
    lam, ecr = boto3.client("lambda"), boto3.client("ecr")
    assert lam.get_function(FunctionName=NAME)["Configuration"]["PackageType"] == "Image"
    arn = lam.get_function(FunctionName=NAME)["Configuration"]["FunctionArn"]
    assert lam.list_tags(Resource=arn)["Tags"]["tagsync:environment"] == NAME
    assert lambda_may_pull(json.loads(ecr.get_repository_policy(repositoryName="elsewhere")["policyText"]),
                           arn)
