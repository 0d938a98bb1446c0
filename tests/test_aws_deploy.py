"""`tagsync deploy`, rollback and destroy against a moto server (real AWS API shapes on loopback)."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.aws.deploy import Deployer
from tagsync.aws.names import environment_name, validate_schedule
from tagsync.aws.policies import role_policy
from tagsync.aws.spec import DeploySpec
from tagsync.aws.teardown import destroy, rollback
from tagsync.errors import ConfigError

SHA1 = "a" * 40
SHA2 = "b" * 40
ACCOUNT = "123456789012"


def spec(**kw: Any) -> DeploySpec:
    base: dict[str, Any] = {"repo": "acme/catalogs", "branch": "main", "sha": SHA1,
                            "secret_refs": ("aws-ssm:/tagsync/token",)}
    return DeploySpec(**{**base, **kw})


def deploy(moto: Any, **kw: Any) -> Deployer:
    d = Deployer(spec(**kw), sleep=lambda s: None)
    d.deploy()
    return d


def push_image(sha: str, name: str = "catalogs-main") -> str:
    """An image tagged `sha` in ECR, as CI pushes it (the repository is created when missing)."""
    ecr = boto3.client("ecr")
    with suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + sha[:1] * 64, "size": 2},
                           # moto's digest hashes the layers' digests: one per SHA, distinct digests
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": "sha256:" + sha[-1:] * 64, "size": 2}]})
    with suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=sha)
    return f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/{name}:{sha}"


def live_version() -> str:
    return str(boto3.client("lambda").get_alias(FunctionName="catalogs-main", Name="live")["FunctionVersion"])


@pytest.fixture
def first(moto: Any) -> Deployer:
    """A first deploy whose image is already in ECR (pushed as CI would)."""
    boto3.client("ecr").create_repository(repositoryName="catalogs-main", imageTagMutability="IMMUTABLE",
                                          imageScanningConfiguration={"scanOnPush": True})
    push_image(SHA1)
    return deploy(moto)


def test_names_follow_every_services_rules() -> None:
    assert environment_name("acme/catalogs", "main") == "catalogs-main"
    assert environment_name("acme/catalogs", "feature/Foo_bar").startswith("catalogs-feature-foo-bar-")
    long = environment_name("acme/catalogs", "feature/" + "x" * 80)
    assert len(long) <= 56 and long != environment_name("acme/catalogs", "feature/" + "x" * 81)


@pytest.mark.parametrize("branch", ["bad..name", "-x", "a b", "x.lock", "a:b", ""])
def test_bad_branch_names_are_refused_before_any_call(branch: str) -> None:
    with pytest.raises(ConfigError, match="not a valid Git branch name"):
        spec(branch=branch).check()


@pytest.mark.parametrize("expr", ["rate(1 hours)", "rate(5 minute)", "rate(0 minutes)", "cron(0 6 * * *)",
                                  "cron(0 6 * * 1 *)", "every hour"])
def test_bad_schedules_are_refused_with_a_teaching_message(expr: str) -> None:
    with pytest.raises(ConfigError, match="schedule"):
        validate_schedule(expr)


def test_good_schedules_pass() -> None:
    for expr in ("rate(1 hour)", "rate(15 minutes)", "cron(0 6 * * ? *)", "cron(0/30 8-18 ? * MON-FRI *)"):
        validate_schedule(expr)


def test_first_deploy_creates_everything_with_the_right_settings(first: Deployer) -> None:
    ecr, lam, iam, events = (boto3.client(s) for s in ("ecr", "lambda", "iam", "events"))
    repo = ecr.describe_repositories(repositoryNames=["catalogs-main"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"]
    assert "countNumber" in ecr.get_lifecycle_policy(repositoryName="catalogs-main")["lifecyclePolicyText"]
    fn = lam.get_function(FunctionName="catalogs-main")
    conf = fn["Configuration"]
    assert fn["Code"]["ImageUri"].endswith(f"/catalogs-main:{SHA1}")
    assert (conf["Timeout"], conf["MemorySize"], conf["Architectures"]) == (300, 512, ["x86_64"])
    assert conf["Environment"]["Variables"]["TAGSYNC_CONFIG"] == "/var/task/tagsync.yaml"
    alias = lam.get_alias(FunctionName="catalogs-main", Name="live")
    assert alias["FunctionVersion"] == "1"
    role = iam.get_role(RoleName="catalogs-main-role")["Role"]
    attached = iam.list_attached_role_policies(RoleName="catalogs-main-role")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    rule = events.describe_rule(Name="catalogs-main")
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    targets = events.list_targets_by_rule(Rule="catalogs-main")["Targets"]
    assert [t["Arn"] for t in targets] == [alias["AliasArn"]]
    policy = json.loads(lam.get_policy(FunctionName="catalogs-main", Qualifier="live")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}


def test_role_can_read_exactly_the_named_parameter(first: Deployer) -> None:
    doc = boto3.client("iam").get_role_policy(RoleName="catalogs-main-role", PolicyName="tagsync-read")
    document = doc["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    arn = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/tagsync/token"
    assert document["Statement"] == [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": [arn]}]


def test_second_deploy_of_the_same_sha_changes_nothing(first: Deployer, moto: Any) -> None:
    again = deploy(moto)
    assert [s.action for s in again.steps] == ["none"] * len(again.steps)
    assert live_version() == "1"


def test_new_sha_updates_the_code_and_moves_the_alias(first: Deployer, moto: Any) -> None:
    push_image(SHA2)
    d = deploy(moto, sha=SHA2)
    lam = boto3.client("lambda")
    assert lam.get_function(FunctionName="catalogs-main")["Code"]["ImageUri"].endswith(SHA2)
    assert lam.get_alias(FunctionName="catalogs-main", Name="live")["FunctionVersion"] == "2"
    assert {s.resource.split(" ")[0]: s.action for s in d.steps}["Lambda"] == "update"


def test_plan_reports_and_changes_nothing(moto: Any) -> None:
    d = Deployer(spec(image=push_image(SHA1, "elsewhere")), dry=True)
    steps = d.deploy()
    assert {s.action for s in steps} == {"create", "none"}
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert [r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]] == [
        "elsewhere"]


def test_role_propagation_error_is_retried_without_a_fixed_sleep(moto: Any) -> None:
    """The first CreateFunction calls fail as a brand-new role does on AWS; deploy retries that error."""
    session = boto3.session.Session()
    failures = {"left": 3}

    def not_yet(request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        if failures["left"] == 0:
            return None
        failures["left"] -= 1
        body = json.dumps({"__type": "InvalidParameterValueException",
                           "message": "The role defined for the function cannot be assumed by Lambda."})

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield body.encode()

        return AWSResponse(request.url, 400, {"x-amzn-errortype": "InvalidParameterValueException"}, Raw())

    slept: list[float] = []
    d = Deployer(spec(image=push_image(SHA1, "elsewhere")), session=session,
                 sleep=slept.append)
    d.client("lambda").meta.events.register("before-send.lambda.CreateFunction", not_yet)
    d.deploy()
    assert d.role_retries == 3 and slept == [1.0, 2.0, 4.0]
    assert boto3.client("lambda").get_function(FunctionName="catalogs-main")


def test_without_docker_a_config_to_build_in_is_required(moto: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="pass --config so it is built in"):
        deploy(moto)
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert boto3.client("ecr").describe_repositories()["repositories"] == []


def test_the_docker_builder_without_a_daemon_is_a_usage_error_before_any_write(
        moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="no Docker daemon"):
        deploy(moto, builder="docker")
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert boto3.client("ecr").describe_repositories()["repositories"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_without_docker_deploy_builds_with_tagsync_and_pushes_to_ecr(
        moto: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, lambda_base_ref: str,
        wheelhouse: Any) -> None:
    """The image is built by tagsync itself and pushed with ECR's token; the function runs it."""
    from tagsync.image.pipeline import BuildSpec, PipOptions
    from tests.servers.fixtures import _stop, start_ecr_registry
    from tests.test_build import pull_and_unpack

    host, server = start_ecr_registry(tmp_path / "ecr", ACCOUNT, "eu-west-1")
    moto.contract.strict.images_elsewhere = True  # pushed to the registry standing in for ECR's
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker at all
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs: []\n")
    try:
        d = Deployer(spec(config_file=config, base_image=lambda_base_ref), sleep=lambda s: None,
                     build_template=BuildSpec(requirements=("purepkg",), pip=PipOptions(
                         find_links=(str(wheelhouse),), no_index=True)),
                     registry_endpoints={host: server.url}, build_cache=tmp_path / "cache")
        steps = d.deploy()
        monkeypatch.setenv("PATH", path)
        uri = f"{host}/catalogs-main:{SHA1}"
        assert any(str(s).startswith(f"create    image {uri}") and "tagsync build" in str(s)
                   for s in steps)
        fn = boto3.client("lambda").get_function(FunctionName="catalogs-main")
        assert fn["Code"]["ImageUri"] == uri
        rootfs, _ = pull_and_unpack(server.host, f"catalogs-main:{SHA1}", tmp_path, server.auth)
        assert (rootfs / "var" / "task" / "tagsync.yaml").read_text() == "catalogs: []\n"
    finally:
        _stop(server.process)


def test_missing_credentials_fail_before_anything_is_created(moto: Any, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Any) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials"):
        deploy(moto)


def test_rollback_moves_live_to_the_previous_version(first: Deployer, moto: Any) -> None:
    push_image(SHA2)
    deploy(moto, sha=SHA2)
    assert rollback("acme/catalogs", "main") == ("2", "1")
    assert live_version() == "1"


def test_destroy_removes_what_tagsync_created_and_keeps_the_repository(first: Deployer) -> None:
    steps = destroy("acme/catalogs", "main")
    assert len(steps) == 3
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert boto3.client("events").list_rules()["Rules"] == []
    assert boto3.client("ecr").describe_repositories()["repositories"]


def test_least_privilege_policy_for_a_secrets_manager_json_key() -> None:
    doc = role_policy(("aws-secretsmanager:tagsync/github#token",), "s3://cfg/t.yaml", (),
                      ACCOUNT, "eu-west-1")
    assert doc["Statement"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": [f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:tagsync/github-??????"]},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::cfg/t.yaml"]}]


def test_first_deploy_creates_the_ecr_repository_when_missing(moto: Any) -> None:
    deploy(moto, image=push_image(SHA1, "elsewhere"))
    ecr = boto3.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=["catalogs-main"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"]
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert {"Key": "tagsync:environment", "Value": "catalogs-main"} in tags


def test_without_image_deploy_builds_and_pushes_with_the_docker_cli(moto: Any, tmp_path: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No Docker daemon exists on the test machines: a `docker` stand-in records the calls."""
    log = tmp_path / "docker.log"
    stub = tmp_path / "docker"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexit 0\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    moto.contract.strict.images_elsewhere = True  # "pushed" by the stand-in
    deploy(moto, architecture="arm64")
    calls = log.read_text().splitlines()
    uri = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/catalogs-main:{SHA1}"
    assert calls[0] == "info"
    assert calls[1].startswith("login --username AWS --password-stdin ")
    assert calls[2] == f"build --platform linux/arm64 --provenance=false -t {uri} ."
    assert calls[3] == f"push {uri}"


@settings(max_examples=300, deadline=None)
@given(owner=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,10}", fullmatch=True),
       repo=st.from_regex(r"[A-Za-z0-9_.-]{1,70}", fullmatch=True).filter(lambda r: r not in (".", "..")),
       branch=st.from_regex(r"[A-Za-z0-9_./#'-]{1,90}", fullmatch=True))
def test_every_environment_name_is_within_the_scaffolded_policys_resources(owner: str, repo: str,
                                                                         branch: str) -> None:
    from tagsync.aws.names import qualified_name
    from tagsync.aws.policies import deploy_permission_policy
    from tests.servers.aws_contract import allowing

    full = f"{owner}/{repo}"
    try:
        spec(repo=full, branch=branch).check()
    except ConfigError:
        return
    policy = deploy_permission_policy(full, ACCOUNT, "eu-west-1")
    for name in (environment_name(full, branch), qualified_name(full, branch)):
        assert len(name) <= 56
        assert allowing(policy, "lambda:CreateFunction",
                        f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{name}")
        assert allowing(policy, "iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/{name}-role")
        assert allowing(policy, "ecr:CreateRepository", f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/{name}")
    assert qualified_name(full, branch) != qualified_name(f"x{owner}/{repo}", branch)
