"""The deploy role `tagsync scaffold` writes: what deploy and destroy call is allowed, and only that.

Every API call tagsync makes against moto is recorded as the IAM action it needs (see
tests/servers/aws_contract.py) over a life cycle that takes every path: first deploy, update,
rollback, drift repair, plan, destroy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tagsync.aws.deploy import Deployer
from tagsync.aws.policies import BASIC_EXECUTION
from tagsync.aws.spec import DeploySpec
from tagsync.aws.teardown import destroy, rollback
from tagsync.errors import ConfigError
from tagsync.scaffold import ScaffoldOptions, scaffold
from tests.servers.aws_contract import allowing
from tests.test_aws_deploy import ACCOUNT, SHA1, SHA2, push_image

REGION = "eu-west-1"
# Pushing goes through the registry protocol (docker push, tagsync build), which moto does not
# serve; tests/test_build.py pushes to a registry that accepts exactly ECR's token instead.
REGISTRY_PROTOCOL = {"EcrPush"}


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto: Any) -> Path:
    """A `docker` whose daemon answers and whose build and push succeed (none runs here)."""
    moto.contract.strict.images_elsewhere = True
    stub = tmp_path / "bin" / "docker"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}:/usr/bin:/bin")
    return stub


def policies(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    options = ScaffoldOptions.make(repo="acme/catalogs", account=ACCOUNT, region=REGION,
                                   source="git+https://github.com/acme/tagsync@" + "d" * 40)
    scaffold(tmp_path, options)
    return (json.loads((tmp_path / "aws/tagsync-deploy-trust.json").read_text()),
            json.loads((tmp_path / "aws/tagsync-deploy-policy.json").read_text()))


def life_cycle(moto: Any, branch: str) -> None:
    """Every code path of deploy, rollback and destroy, with the test's own set-up not recorded."""
    with moto.contract.paused():
        image1, image2 = push_image(SHA1, "catalogs-images"), push_image(SHA2, "catalogs-images")

    def deploy(**kw: Any) -> None:
        spec = DeploySpec(**{"repo": "acme/catalogs", "branch": branch, "sha": SHA1, "image": image1,
                             "secret_refs": ("aws-ssm:/tagsync/token",), **kw})
        Deployer(spec, sleep=lambda s: None).deploy()

    Deployer(DeploySpec("acme/catalogs", branch, SHA1, image=image1), dry=True).deploy()
    deploy(image=None)  # built with Docker: logs in to ECR
    deploy(sha=SHA2, image=image2, memory=1024, schedule="cron(0 6 * * ? *)")
    rollback("acme/catalogs", branch)
    name = Deployer(DeploySpec("acme/catalogs", branch, SHA1)).name
    with moto.contract.paused():  # drift made by hand
        iam = boto3.client("iam")
        iam.detach_role_policy(RoleName=f"{name}-role", PolicyArn=BASIC_EXECUTION)
        iam.update_assume_role_policy(RoleName=f"{name}-role", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "ec2.amazonaws.com"}}]}))
        boto3.client("ecr").put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
        boto3.client("ecr").put_image_scanning_configuration(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": False})
        boto3.client("lambda").remove_permission(FunctionName=name, Qualifier="live",
                                                 StatementId="tagsync-schedule")
        boto3.client("lambda").add_permission(
            FunctionName=name, Qualifier="live", StatementId="tagsync-schedule",
            Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
            SourceArn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/elsewhere")
        boto3.client("events").put_targets(Rule=name, Targets=[
            {"Id": "other", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"}])
        boto3.client("logs").create_log_group(logGroupName=f"/aws/lambda/{name}")
    deploy(sha=SHA2, image=image2, secret_refs=())
    destroy("acme/catalogs", branch, dry=True)
    destroy("acme/catalogs", branch, delete_repository=True)


@pytest.mark.parametrize("branch", ["main", "feature/Foo_bar"])
def test_every_call_deploy_and_destroy_make_is_allowed_by_the_scaffolded_policy(
        moto: Any, tmp_path: Path, branch: str, docker: Path) -> None:
    """The test AWS evaluates every call against the scaffolded policy as it is made (the same
    engine answers iam:SimulatePrincipalPolicy): a missing permission fails the life cycle."""
    _, policy = policies(tmp_path)
    moto.contract.strict.caller = policy
    life_cycle(moto, branch)
    assert moto.contract.strict.refused == []
    for call in moto.contract.calls:
        if call.action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
            assert call.params["PolicyArn"] == BASIC_EXECUTION
    with moto.contract.paused():
        assert boto3.client("lambda").list_functions()["Functions"] == []


def test_a_policy_missing_one_action_fails_the_life_cycle(moto: Any, tmp_path: Path, docker: Path) -> None:
    """Guards the guard: the test AWS refuses what the caller's policy does not allow."""
    from tagsync.aws.calls import DeployError

    _, policy = policies(tmp_path)
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "lambda:ListTags"]
    moto.contract.strict.caller = policy
    with pytest.raises((DeployError, ConfigError), match="lambda:ListTags"):
        life_cycle(moto, "main")


def test_the_scaffolded_policy_allows_nothing_deploy_and_destroy_never_call(moto: Any, tmp_path: Path,
                                                                             docker: Path) -> None:
    _, policy = policies(tmp_path)
    life_cycle(moto, "main")
    called = moto.contract.actions()
    allowed = {a for s in policy["Statement"] if s["Sid"] not in REGISTRY_PROTOCOL for a in s["Action"]}
    assert sorted(allowed - called) == []


def test_the_deploy_role_trusts_only_this_repositorys_branches_through_github_oidc(tmp_path: Path) -> None:
    trust, _ = policies(tmp_path)
    statement = trust["Statement"][0]
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": [
            "repo:acme/catalogs:ref:refs/heads/main", "repo:acme/catalogs:ref:refs/heads/dev"]}}


def test_pass_role_is_scoped_to_the_function_roles_and_to_lambda(tmp_path: Path) -> None:
    _, policy = policies(tmp_path)
    passing = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing == [{"Sid": "PassFunctionRole", "Effect": "Allow",
                        "Resource": f"arn:aws:iam::{ACCOUNT}:role/catalogs-*-role",
                        "Action": ["iam:PassRole"],
                        "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}]
    assert not allowing(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin")
    assert not allowing(policy, "lambda:DeleteFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other")


# what only rollback and destroy call: the deploy's preflight does not ask for them
NOT_DEPLOY = {"events:DeleteRule", "lambda:DeleteFunction", "iam:DetachRolePolicy", "iam:DeleteRole",
              "logs:DescribeLogGroups", "logs:DeleteLogGroup", "ecr:DeleteRepository"}


def test_the_permissions_preflight_asks_for_every_action_deploy_calls(
        moto: Any, tmp_path: Path, docker: Path) -> None:
    """Else a permission missing from the policy would be found after the first write."""
    from tagsync.aws.policies import deploy_needs

    life_cycle(moto, "main")
    called = moto.contract.actions() - {"sts:GetCallerIdentity", "iam:SimulatePrincipalPolicy"}
    needs = deploy_needs("catalogs-main", ACCOUNT, REGION, image_repository="catalogs-images",
                         build=True, replace=True)
    asked = {a for _, actions, _ in needs for a in actions}
    assert sorted(called - NOT_DEPLOY - asked) == []
