"""The stricter test AWS (tests/servers/aws_strict.py) and what deploy, rollback and destroy do
against it: each rule AWS applies and moto does not has a self-test proving the refusal, then each
case of issue #29 runs through `tagsync deploy/rollback/destroy`."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tagsync.aws.policies import deploy_permission_policy, lambda_may_pull, with_lambda_pull
from tagsync.cli import main
from tests.servers.iam_policy import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Request, decide
from tests.test_aws_deploy import ACCOUNT, SHA1, SHA2, push_image

REGION = "eu-west-1"
NAME = "catalogs-main"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NAME}"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def deploy_args(image: str, sha: str = SHA1, *extra: str) -> list[str]:
    return ["deploy", "--repo", "acme/catalogs", "--branch", "main", "--sha", sha, "--image", image, *extra]


def policy() -> dict[str, Any]:
    return deploy_permission_policy("acme/catalogs", ACCOUNT, REGION)


def zip_function(name: str = NAME, tags: dict[str, str] | None = None) -> None:
    """A function deployed as a Zip package, as a person would have created it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return 1\n")
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="zip-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    boto3.client("lambda").create_function(FunctionName=name, Runtime="python3.11", Role=role,
                                           Handler="app.handler", Code={"ZipFile": buf.getvalue()},
                                           Tags=tags or {})


def nothing_written() -> None:
    with_repo = [r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]]
    assert NAME not in with_repo
    assert [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]] == ["zip-role"]


# --- the policy engine --------------------------------------------------------------------------


def test_an_explicit_deny_wins_over_any_allow() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
                         {"Effect": "Deny", "Action": "lambda:DeleteFunction", "Resource": FN}]}
    assert decide([doc], Request("lambda:DeleteFunction", FN)) == EXPLICIT_DENY
    assert decide([doc], Request("lambda:GetFunction", FN)) == ALLOWED


def test_wildcards_match_actions_case_insensitively_and_resources_exactly() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": "Lambda:Get*", "Resource": f"{FN[:-4]}*"}]}
    assert decide([doc], Request("lambda:GetAlias", FN + ":live")) == ALLOWED
    assert decide([doc], Request("lambda:ListTags", FN)) == IMPLICIT_DENY
    assert decide([doc], Request("lambda:GetAlias", FN.replace("catalogs", "Catalogs"))) == IMPLICIT_DENY


def test_a_condition_without_its_context_key_does_not_allow() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                          "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}]}
    assert decide([doc], Request("iam:PassRole", "r")) == IMPLICIT_DENY
    assert decide([doc], Request("iam:PassRole", "r", {"iam:PassedToService": "ec2.amazonaws.com"})) \
        == IMPLICIT_DENY
    assert decide([doc], Request("iam:PassRole", "r", {"iam:PassedToService": "lambda.amazonaws.com"})) \
        == ALLOWED


def test_deploys_reading_of_a_repository_policy_agrees_with_the_engine() -> None:
    repo = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{NAME}"
    for doc in (None, {"Statement": []}, with_lambda_pull(None, "X", FN),
                with_lambda_pull(None, "X", FN.replace(NAME, "other")),
                {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "ecr:BatchGetImage"}]},
                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}):
        engine = doc is not None and all(
            decide([doc], Request(a, repo, {"aws:SourceArn": FN}, principal="lambda.amazonaws.com"))
            == ALLOWED for a in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"))
        assert lambda_may_pull(doc, FN) == engine, doc


# --- each rule of the test AWS, proved -----------------------------------------------------------


def test_get_function_returns_tags_only_to_a_caller_allowed_list_tags(moto: Any) -> None:
    with moto.contract.paused():
        zip_function(tags={"team": "a"})
    lam = boto3.client("lambda")
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": FN}]}
    assert "Tags" not in lam.get_function(FunctionName=NAME)
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": ["lambda:GetFunction", "lambda:ListTags"], "Resource": FN}]}
    assert lam.get_function(FunctionName=NAME)["Tags"] == {"team": "a"}


def test_a_call_the_callers_policy_does_not_allow_is_refused(moto: Any) -> None:
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": "ecr:Describe*", "Resource": "*"}]}
    with pytest.raises(ClientError, match=r"AccessDenied.*ecr:CreateRepository"):
        boto3.client("ecr").create_repository(repositoryName=NAME)


def test_image_uri_for_a_zip_function_is_refused(moto: Any) -> None:
    image = push_image(SHA1, "elsewhere")
    zip_function()
    with pytest.raises(ClientError, match="packageType Zip"):
        boto3.client("lambda").update_function_code(FunctionName=NAME, ImageUri=image)


def test_publish_version_without_a_change_answers_the_last_version(moto: Any) -> None:
    zip_function()
    lam = boto3.client("lambda")
    first = lam.publish_version(FunctionName=NAME)["Version"]
    assert lam.publish_version(FunctionName=NAME, Description="other")["Version"] == first


def test_lambda_cannot_pull_without_the_repository_policy_nor_the_right_to_set_it(moto: Any) -> None:
    image = push_image(SHA1, "elsewhere")
    with moto.contract.paused():
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    moto.contract.strict.caller = {"Statement": [
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "iam:PassRole"], "Resource": "*"}]}
    lam = boto3.client("lambda")
    with pytest.raises(ClientError, match="Lambda does not have permission to access the ECR image"):
        lam.create_function(FunctionName=NAME, PackageType="Image", Code={"ImageUri": image}, Role=role)
    moto.contract.strict.caller["Statement"].append(
        {"Effect": "Allow", "Action": ["ecr:GetRepositoryPolicy", "ecr:SetRepositoryPolicy"],
         "Resource": "*"})
    lam.create_function(FunctionName=NAME, PackageType="Image", Code={"ImageUri": image}, Role=role)
    with moto.contract.paused():
        text = boto3.client("ecr").get_repository_policy(repositoryName="elsewhere")["policyText"]
    assert lambda_may_pull(json.loads(text), FN)


def test_an_image_ecr_does_not_hold_is_refused(moto: Any) -> None:
    push_image(SHA1, "elsewhere")
    with moto.contract.paused():
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    with pytest.raises(ClientError, match="does not exist"):
        boto3.client("lambda").create_function(
            FunctionName=NAME, PackageType="Image", Role=role,
            Code={"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/elsewhere:{SHA2}"})


# --- the cases, through the CLI, as the scaffolded deploy role ---------------------------


def test_destroy_as_the_deploy_role_sees_the_tags_and_removes_everything(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    moto.contract.strict.caller = policy()
    assert cli(capsys, *deploy_args(image))[0] == 0
    code, out, _ = cli(capsys, "destroy", "--repo", "acme/catalogs", "--branch", "main")
    assert code == 0 and "deleted 3 resource(s)" in out and "keep" not in out
    with moto.contract.paused():
        assert boto3.client("iam").list_roles()["Roles"] == []


def test_destroy_without_list_tags_deletes_nothing(moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    assert cli(capsys, *deploy_args(image))[0] == 0
    narrowed = policy()
    for statement in narrowed["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "lambda:ListTags"]
    moto.contract.strict.caller = narrowed
    code, _, err = cli(capsys, "destroy", "--repo", "acme/catalogs", "--branch", "main")
    assert code == 1 and "lambda:ListTags" in err
    with moto.contract.paused():
        assert boto3.client("events").describe_rule(Name=NAME)
        assert boto3.client("iam").get_role(RoleName=f"{NAME}-role")


def test_destroy_keeps_the_role_while_a_function_not_provably_foreign_remains(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    assert cli(capsys, *deploy_args(image))[0] == 0
    lam = boto3.client("lambda")
    lam.untag_resource(Resource=FN, TagKeys=list(lam.list_tags(Resource=FN)["Tags"]))
    code, out, _ = cli(capsys, "destroy", "--repo", "acme/catalogs", "--branch", "main")
    assert code == 0
    assert f"keep      IAM role {NAME}-role  (Lambda function {NAME} is kept and may run with it)" in out
    assert boto3.client("iam").get_role(RoleName=f"{NAME}-role")


def test_deploy_lets_lambda_pull_from_the_repository_it_sets_the_policy_of(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    moto.contract.strict.caller = policy()
    code, out, _ = cli(capsys, *deploy_args(image))
    assert code == 0 and "create    ECR repository policy of catalogs-images" in out
    with moto.contract.paused():
        text = boto3.client("ecr").get_repository_policy(repositoryName="catalogs-images")["policyText"]
    statements = json.loads(text)["Statement"]
    assert [s["Sid"] for s in statements] == [f"TagsyncLambdaPull{_id()}"]  # set by deploy, not by AWS
    assert cli(capsys, *deploy_args(image))[1].count("unchanged ECR repository policy") == 1


def _id() -> str:
    from tagsync.aws.names import environment_id

    return environment_id("acme/catalogs", "main")


def test_a_zip_function_of_ours_is_replaced_by_the_image_function(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    zip_function(tags={"tagsync:environment": NAME, "tagsync:id": _id()})
    code, out, err = cli(capsys, *deploy_args(image))
    assert code == 0, err
    assert f"replace   Lambda function {NAME}" in out
    lam = boto3.client("lambda")
    alias = lam.get_alias(FunctionName=NAME, Name="live")
    live = lam.get_function(FunctionName=NAME, Qualifier=alias["FunctionVersion"])
    assert live["Configuration"]["PackageType"] == "Image" and live["Code"]["ImageUri"] == image
    assert "no change" in cli(capsys, *deploy_args(image))[1]


def test_a_zip_function_of_someone_else_is_refused_before_the_first_write(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    zip_function()
    code, _, err = cli(capsys, *deploy_args(image))
    assert code == 2 and "exists as a Zip package" in err and "aws lambda delete-function" in err
    nothing_written()


def test_a_deleted_version_is_republished_and_live_runs_the_sha_asked_for(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image1, image2 = push_image(SHA1, "catalogs-images"), push_image(SHA2, "catalogs-images")
    assert cli(capsys, *deploy_args(image1))[0] == 0
    assert cli(capsys, *deploy_args(image2, SHA2))[0] == 0
    assert cli(capsys, "rollback", "--repo", "acme/catalogs", "--branch", "main")[0] == 0
    lam = boto3.client("lambda")
    lam.delete_function(FunctionName=NAME, Qualifier="2")
    code, _, err = cli(capsys, *deploy_args(image2, SHA2))
    assert code == 0, err
    alias = lam.get_alias(FunctionName=NAME, Name="live")
    live = lam.get_function(FunctionName=NAME, Qualifier=alias["FunctionVersion"])
    assert live["Code"]["ImageUri"] == image2
    assert live["Configuration"]["Environment"]["Variables"]["TAGSYNC_SHA"] == SHA2
    assert "no change" in cli(capsys, *deploy_args(image2, SHA2))[1]


def test_adopted_resources_get_our_tags_so_destroy_removes_them(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    assert cli(capsys, *deploy_args(image))[0] == 0
    lam, iam, events, ecr = (boto3.client(s) for s in ("lambda", "iam", "events", "ecr"))
    keys = list(lam.list_tags(Resource=FN)["Tags"])
    lam.untag_resource(Resource=FN, TagKeys=keys)
    iam.untag_role(RoleName=f"{NAME}-role", TagKeys=keys)
    rule = events.describe_rule(Name=NAME)["Arn"]
    events.untag_resource(ResourceARN=rule, TagKeys=keys)
    repo = ecr.describe_repositories(repositoryNames=[NAME])["repositories"][0]["repositoryArn"]
    ecr.untag_resource(resourceArn=repo, tagKeys=keys)
    code, out, _ = cli(capsys, *deploy_args(image))
    assert code == 0 and out.count("tags") >= 4
    assert lam.list_tags(Resource=FN)["Tags"]["tagsync:id"] == _id()
    code, out, _ = cli(capsys, "destroy", "--repo", "acme/catalogs", "--branch", "main",
                       "--delete-repository")
    assert code == 0 and "keep" not in out and "deleted 4 resource(s)" in out


# one per service and the implicit ones; that the preflight asks for every action deploy calls is
# test_aws_deploy_role.py's test_the_permissions_preflight_asks_for_every_action_deploy_calls
@pytest.mark.parametrize("action", ["ecr:SetRepositoryPolicy", "iam:PassRole", "lambda:TagResource",
                                    "lambda:PublishVersion", "events:PutTargets"])
def test_a_missing_permission_is_said_before_the_first_write(
        moto: Any, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """Without the preflight, most of these were refused after some resources existed."""
    image = push_image(SHA1, "catalogs-images")
    narrowed = policy()
    for statement in narrowed["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != action]
    moto.contract.strict.caller = narrowed
    code, _, err = cli(capsys, *deploy_args(image))
    assert code == 2 and f"{action} on arn:aws:" in err and "Nothing was changed" in err
    with moto.contract.paused():
        assert boto3.client("iam").list_roles()["Roles"] == []
        assert [r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]] \
            == ["catalogs-images"]


def test_without_the_simulator_the_plan_lists_the_actions_deploy_needs(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    narrowed = policy()
    narrowed["Statement"] = [s for s in narrowed["Statement"] if s.get("Sid") != "Preflight"]
    moto.contract.strict.caller = narrowed
    code, out, _ = cli(capsys, *deploy_args(image, SHA1, "--plan"))
    assert code == 0 and "not checked (AccessDenied to iam:SimulatePrincipalPolicy)" in out
    assert "lambda:ListTags" in out and "ecr:SetRepositoryPolicy" in out


def test_the_scaffolded_policy_file_is_the_one_tested(tmp_path: Path) -> None:
    from tagsync.scaffold import ScaffoldOptions, scaffold

    scaffold(tmp_path, ScaffoldOptions.make(repo="acme/catalogs", account=ACCOUNT, region=REGION,
                                            source="git+https://github.com/acme/tagsync@" + "d" * 40))
    assert json.loads((tmp_path / "aws/tagsync-deploy-policy.json").read_text()) == policy()


# --- AWS's rules from botocore's models, before the first write ----------------------------------


def test_a_schedule_longer_than_aws_allows_is_refused_before_the_first_write(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = push_image(SHA1, "catalogs-images")
    schedule = "cron(" + ",".join(str(m) for m in range(60)) + " " + ",".join(str(h) for h in range(24)) \
        + " 1,2,3,4,5,6,7,8,9,10 * ? *)"
    assert len(schedule) > 256
    code, _, err = cli(capsys, *deploy_args(image, SHA1, "--schedule", schedule))
    assert code == 2 and "events PutRule.ScheduleExpression" in err and "at most 256" in err
    with moto.contract.paused():
        assert boto3.client("iam").list_roles()["Roles"] == []


def test_the_model_rules_translate_awss_unicode_classes() -> None:
    from tagsync.aws.limits import translate, violations

    assert translate(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*") is not None
    assert violations("iam", "TagRole", {"RoleName": "r", "Tags": [{"Key": "k", "Value": "Ünï 12"}]}) == []
    found = violations("iam", "TagRole", {"RoleName": "r", "Tags": [{"Key": "k", "Value": "fix#12"}]})
    assert len(found) == 1 and "Tags[0].Value" in found[0]
    assert violations("lambda", "CreateAlias", {"FunctionName": "f", "Name": "1", "FunctionVersion": "1"})


def test_images_published_versions_run_are_kept_by_the_lifecycle_policy(
        moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """ECR never lets a lower-priority rule expire an image matching a higher one's tags."""
    images = [push_image(sha, NAME) for sha in (SHA1, SHA2)]
    assert cli(capsys, *deploy_args(images[0], SHA1, "--keep-images", "1"))[0] == 0
    code, out, _ = cli(capsys, *deploy_args(images[1], SHA2, "--keep-images", "1"))
    assert code == 0 and f"tag published-{SHA2}" in out
    ecr = boto3.client("ecr")
    rules = json.loads(ecr.get_lifecycle_policy(repositoryName=NAME)["lifecyclePolicyText"])["rules"]
    keep = min(rules, key=lambda r: r["rulePriority"])
    assert keep["selection"]["tagPrefixList"] == ["published-"]
    assert max(rules, key=lambda r: r["rulePriority"])["selection"]["tagStatus"] == "any"
    tags = {t for d in ecr.describe_images(repositoryName=NAME)["imageDetails"] for t in d["imageTags"]}
    assert {f"published-{SHA1}", f"published-{SHA2}"} <= tags
    assert "no change" in cli(capsys, *deploy_args(images[1], SHA2, "--keep-images", "1"))[1]


def test_an_endpoint_without_a_simulator_is_not_checked_and_deploys(
        moto: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """moto (and LocalStack) answer SimulatePrincipalPolicy with an HTML 500 page."""
    from botocore.parsers import ResponseParserError

    def no_simulator(params: dict[str, Any]) -> dict[str, Any]:
        raise ResponseParserError("Unable to parse response, invalid XML received")

    monkeypatch.setattr(moto.contract.strict, "_simulate", no_simulator)
    code, out, _ = cli(capsys, *deploy_args(push_image(SHA1, "catalogs-images")))
    assert code == 0 and "not checked (ResponseParserError to iam:SimulatePrincipalPolicy)" in out
