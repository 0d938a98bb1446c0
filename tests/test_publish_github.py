"""Publishing through GitHub's API, against a contract server checked by GitHub's own spec.

Registry answers come from the real local registry; what GitHub sees is validated against
@octokit/openapi (REST) and @octokit/graphql-schema (GraphQL) on every request and response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tagsync.config import load_config
from tagsync.errors import PublishAuthError, PublishError, PushRejectedError
from tagsync.publish import github as gh
from tagsync.reference import short
from tagsync.run import run
from tests.servers.fixtures import RegistryServer, kernels_yaml, unique_namespace
from tests.servers.github import GitHubServer

REPO = "acme/catalogs"
TOKEN = "ghp_testtoken0123456789abcdefABCDEF"
CATALOG = """\
images:
  - name: python   # the default kernel
    tags:
      - ["3.6-ubuntu", "{py}"]
  - name: r
    tags:
      - ['3.5', '{r}']
"""


@dataclass
class World:
    registry: RegistryServer
    github: GitHubServer
    config: Path
    ns: str
    old: dict[str, str]

    def expected(self, **new: str) -> bytes:
        return CATALOG.format(**{**self.old, **new}).encode()

    def configure(self, **github: Any) -> None:
        extra = "".join(f"  {k}: {v}\n" for k, v in github.items())
        self.config.write_text(self.config.read_text().split("github:\n")[0] + "github:\n"
                               + self._base + extra)

    _base = ""

    def push(self, name: str, tag: str, seed: str) -> str:
        return short(self.registry.push(f"{self.ns}/kernel-{name}", tag, f"{self.ns} {seed}").digest)


@pytest.fixture
def world(registry: RegistryServer, github: GitHubServer, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> World:
    ns = unique_namespace("gh", request)
    old = {"py": "0123456789ab", "r": "ba9876543210"}
    github.create_repo(REPO, {"images.yml": CATALOG.format(**old).encode(), "README.md": b"hi\n"})
    github.tokens[TOKEN] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
{kernels_yaml(registry, ns)}github:
""")
    w = World(registry, github, config, ns, old)
    w._base = f"  repo: {REPO}\n  api_url: {github.url}\n"
    w.configure(token="env:TEST_GITHUB_TOKEN")
    return w


def new_images(w: World) -> dict[str, str]:
    return {"py": w.push("python", "3.6-ubuntu", "py new"), "r": w.push("r", "3.5", "r new")}


def write_calls(w: World) -> list[str]:
    return [h.graphql or f"{h.method} {h.path}" for h in w.github.writes()]


# --- push mode -------------------------------------------------------------------------------


def test_push_mode_commits_every_change_in_one_graphql_request(world: World) -> None:
    new = new_images(world)
    summary = run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)
    assert world.github.read(REPO, "README.md") == b"hi\n"
    assert write_calls(world) == ["createCommitOnBranch"]
    assert summary.pushed and summary.commit == world.github.head(REPO)


def test_graphql_commit_message_has_subject_and_body(world: World) -> None:
    new_images(world)
    run(load_config(world.config))
    message = world.github.commit(REPO, world.github.head(REPO) or "").message.decode()
    assert message.startswith("tagsync: update 2 image(s) in kernels\n\n- ")


def test_rest_fallback_commits_with_tree_commit_and_a_fast_forward_ref_update(world: World) -> None:
    new = new_images(world)
    world.configure(token="env:TEST_GITHUB_TOKEN", api="rest")
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)
    assert [c.split(" ")[0] for c in write_calls(world)] == ["POST", "POST", "PATCH"]
    commit = world.github.commit(REPO, world.github.head(REPO) or "")
    assert len(commit.parents) == 1


def test_graphql_missing_falls_back_to_rest(world: World) -> None:
    new = new_images(world)
    world.github.graphql_enabled = False
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_no_change_sends_no_request_that_writes(world: World) -> None:
    new_images(world)
    run(load_config(world.config))
    before = len(world.github.writes())
    summary = run(load_config(world.config))
    assert len(world.github.writes()) == before
    assert not summary.pushed and summary.changes == []


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_base_moved_between_read_and_commit_is_replanned_without_losing_either_update(
        world: World, api: str) -> None:
    new = new_images(world)
    world.configure(token="env:TEST_GITHUB_TOKEN", api=api)
    world.github.before_write = lambda *_: world.github.commit_directly(
        REPO, {"OTHER.md": b"someone else's work\n"})
    summary = run(load_config(world.config))
    assert summary.attempts == 2
    assert world.github.read(REPO, "OTHER.md") == b"someone else's work\n"
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


# --- errors ------------------------------------------------------------------------------------


def test_bad_token_is_an_auth_error_and_nothing_is_written(world: World,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    new_images(world)
    head = world.github.head(REPO)
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_wrongtoken")
    with pytest.raises(PublishAuthError, match="401 Bad credentials"):
        run(load_config(world.config))
    assert world.github.head(REPO) == head


def test_read_only_token_is_refused_with_the_permission_it_lacks(world: World) -> None:
    new_images(world)
    world.github.tokens[TOKEN] = "read"
    head = world.github.head(REPO)
    with pytest.raises(PushRejectedError, match="contents: write"):
        world.configure(token="env:TEST_GITHUB_TOKEN", api="rest")
        run(load_config(world.config))
    assert world.github.head(REPO) == head


def test_unknown_repository_says_so(world: World) -> None:
    world.configure(token="env:TEST_GITHUB_TOKEN")
    world.config.write_text(world.config.read_text().replace(f"repo: {REPO}", "repo: acme/nope"))
    with pytest.raises(PublishError, match="404 Not Found — the repository"):
        run(load_config(world.config))


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_protected_branch_push_is_refused_with_a_hint_to_use_pull_requests(world: World, api: str) -> None:
    new_images(world)
    world.github.repos[REPO].protected.add("main")
    world.configure(token="env:TEST_GITHUB_TOKEN", api=api)
    head = world.github.head(REPO)
    with pytest.raises(PushRejectedError, match="mode: pull-request"):
        run(load_config(world.config))
    assert world.github.head(REPO) == head


def test_secondary_rate_limit_is_waited_out_then_the_commit_lands(world: World) -> None:
    new = new_images(world)
    world.github.throttle = [(403, {"Retry-After": "0"}), (429, {"Retry-After": "0"})]
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_rate_limit_longer_than_max_wait_fails_cleanly(world: World) -> None:
    new_images(world)
    head = world.github.head(REPO)
    world.github.throttle = [(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "99999999999"})]
    with pytest.raises(PublishError, match="more than max_wait"):
        run(load_config(world.config))
    assert world.github.head(REPO) == head


# --- pull-request mode --------------------------------------------------------------------------


def pr_mode(world: World, **extra: Any) -> None:
    world.configure(token="env:TEST_GITHUB_TOKEN", mode="pull-request", **extra)


def test_pull_request_mode_leaves_the_base_alone_and_opens_one_pr(world: World) -> None:
    new = new_images(world)
    pr_mode(world)
    base = world.github.head(REPO)
    summary = run(load_config(world.config))
    assert world.github.head(REPO) == base
    [pr] = world.github.open_pulls(REPO)
    assert (pr.head, pr.base) == ("tagsync/main/kernels", "main")
    assert world.github.read(REPO, "images.yml", "tagsync/main/kernels") == world.expected(**new)
    assert summary.pull_request == pr.number and summary.pull_request_action == "opened"


def test_pull_request_body_is_a_table_with_a_hidden_marker(world: World) -> None:
    new = new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    assert "| Image | Tag | Old | New | File |" in pr.body
    row = f"| `{world.registry.host}/{world.ns}/kernel-r` | `3.5` | `ba9876543210` | `{new['r']}` |"
    assert row in pr.body
    assert "<!-- tagsync:pull-request branch=tagsync/main/kernels -->" in pr.body


def test_next_run_with_a_further_change_updates_the_same_pr(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    newer = world.push("python", "3.6-ubuntu", "py newer")
    summary = run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    assert summary.pull_request == pr.number and summary.pull_request_action == "updated"
    assert newer in pr.body
    head = world.github.commit(REPO, world.github.head(REPO, "tagsync/main/kernels") or "")
    assert [p.decode() for p in head.parents] == [world.github.head(REPO)]


def test_pr_branch_is_rebuilt_on_the_current_base(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    world.github.commit_directly(REPO, {"OTHER.md": b"merged meanwhile\n"})
    world.push("r", "3.5", "r newer")
    run(load_config(world.config))
    assert world.github.read(REPO, "OTHER.md", "tagsync/main/kernels") == b"merged meanwhile\n"
    assert len(world.github.open_pulls(REPO)) == 1


def test_rerun_with_the_pr_already_current_writes_nothing(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    before = len(world.github.writes())
    summary = run(load_config(world.config))
    assert len(world.github.writes()) == before
    assert summary.pull_request_action == "unchanged"


def test_rest_pull_request_mode_opens_then_updates_one_pr(world: World) -> None:
    new_images(world)
    pr_mode(world, api="rest")
    run(load_config(world.config))
    world.push("r", "3.5", "r newer")
    run(load_config(world.config))
    assert len(world.github.open_pulls(REPO)) == 1
    assert len(world.github.repos[REPO].pulls) == 1


def test_labels_reviewers_and_auto_merge_are_requested_when_the_pr_opens(world: World) -> None:
    new_images(world)
    pr_mode(world, labels='["dependencies", "images"]', reviewers='["alice"]',
            team_reviewers='["platform"]', auto_merge="squash")
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    assert pr.labels == ["dependencies", "images"]
    assert pr.reviewers == ["alice", "team:platform"]
    assert pr.auto_merge == "SQUASH"


def test_a_pr_tagsync_did_not_open_is_left_alone(world: World) -> None:
    new_images(world)
    pr_mode(world)
    from tests.servers.github import PullRequest

    world.github.commit_directly(REPO, {"x": b"mine\n"}, branch="tagsync/main/kernels")
    world.github.repos[REPO].pulls.append(PullRequest(99, "tagsync/main/kernels", "main", "mine", "by hand"))
    with pytest.raises(PushRejectedError, match=r"#99 .* was not opened by tagsync"):
        run(load_config(world.config))
    assert world.github.read(REPO, "x", "tagsync/main/kernels") == b"mine\n"


# --- GitHub App -----------------------------------------------------------------------------------


@pytest.fixture
def app_key(world: World, tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    world.github.apps[4242] = key.public_key()
    world.github.installations[777] = (4242, REPO)
    path = tmp_path / "app.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    gh._INSTALLATION_TOKENS.clear()
    return path


def app_config(world: World, key: Path, installation: str = "") -> None:
    world.configure(app=f"{{app_id: 4242, private_key: 'file:{key}'{installation}}}")


def test_github_app_exchanges_a_jwt_for_an_installation_token(world: World, app_key: Path) -> None:
    new = new_images(world)
    app_config(world, app_key)
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)
    assert len(world.github.issued) == 1
    calls = [h.path for h in world.github.hits]
    assert calls[:2] == [f"/repos/{REPO}/installation", "/app/installations/777/access_tokens"]


def test_installation_token_is_reused_until_shortly_before_expiry(world: World, app_key: Path) -> None:
    new_images(world)
    app_config(world, app_key, ", installation_id: 777")
    run(load_config(world.config))
    world.push("r", "3.5", "r newer")
    run(load_config(world.config))
    assert len(world.github.issued) == 1
    key = next(iter(gh._INSTALLATION_TOKENS))
    token, _ = gh._INSTALLATION_TOKENS[key]
    gh._INSTALLATION_TOKENS[key] = (token, gh.time.time() + gh.REFRESH_MARGIN - 1)
    world.push("r", "3.5", "r newest")
    run(load_config(world.config))
    assert len(world.github.issued) == 2


def test_app_with_a_key_github_does_not_know_fails_with_an_auth_error(world: World, app_key: Path,
                                                                       tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app_key.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    new_images(world)
    app_config(world, app_key)
    with pytest.raises(PublishAuthError, match="401"):
        run(load_config(world.config))


# --- secrets never leak ----------------------------------------------------------------------------


def test_no_token_key_or_jwt_appears_in_logs_or_errors(world: World, app_key: Path,
                                                        caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    new_images(world)
    errors: list[str] = []
    run(load_config(world.config))  # token
    app_config(world, app_key)
    world.push("r", "3.5", "r newer")
    run(load_config(world.config))  # app
    world.github.repos[REPO].protected.add("main")
    world.push("r", "3.5", "r newest")
    try:
        run(load_config(world.config))
    except PublishError as exc:
        errors.append(str(exc))
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN + "x")
    world.configure(token="env:TEST_GITHUB_TOKEN")
    try:
        run(load_config(world.config))
    except PublishError as exc:
        errors.append(str(exc))
    assert len(errors) == 2
    seen = caplog.text + "\n".join(errors)
    key_body = app_key.read_text().splitlines()[1]
    secrets = [TOKEN, key_body, *(i["token"] for i in world.github.issued)]
    jwts = [h.get("authorization", "").split(" ")[-1] for h in world.github.seen_headers]
    assert all(s not in seen for s in secrets + [j for j in jwts if j])


# --- token sources ------------------------------------------------------------------------------------


def test_token_from_a_file(world: World, tmp_path: Path) -> None:
    new = new_images(world)
    (tmp_path / "token").write_text(TOKEN + "\n")
    world.configure(token=f"file:{tmp_path / 'token'}")
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_token_from_secrets_manager_json_key(world: World, moto: Any) -> None:
    import boto3

    boto3.client("secretsmanager").create_secret(Name="tagsync/github",
                                                 SecretString=f'{{"token": "{TOKEN}"}}')
    new = new_images(world)
    world.configure(token="aws-secretsmanager:tagsync/github#token")
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_token_from_ssm_securestring(world: World, moto: Any) -> None:
    import boto3

    boto3.client("ssm").put_parameter(Name="/tagsync/github-token", Value=TOKEN, Type="SecureString")
    new = new_images(world)
    world.configure(token="aws-ssm:/tagsync/github-token")
    run(load_config(world.config))
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_missing_aws_secret_names_the_reference_not_a_value(world: World, moto: Any) -> None:
    from tagsync.errors import ConfigError

    world.configure(token="aws-ssm:/tagsync/absent")
    with pytest.raises(ConfigError, match=r"github\.token: cannot read parameter /tagsync/absent: "
                                          r"ParameterNotFound"):
        run(load_config(world.config))


def test_graphql_url_of_github_enterprise_server() -> None:
    assert gh.graphql_url_for("https://ghe.example.com/api/v3") == "https://ghe.example.com/api/graphql"
    assert gh.graphql_url_for("https://api.github.com") == "https://api.github.com/graphql"


# --- rate limits as GitHub documents them ---------------------------------------------------------


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The rate-limit waits tagsync asks for, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr(gh, "_sleep", asked.append)
    return asked


def test_secondary_rate_limit_without_headers_waits_at_least_a_minute(world: World,
                                                                      waits: list[float]) -> None:
    new = new_images(world)
    world.github.throttle = [(403, {}), (403, {})]
    world.configure(token="env:TEST_GITHUB_TOKEN", max_wait=300)
    run(load_config(world.config))
    assert waits == [60.0, 120.0]  # at least a minute, then exponentially longer
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


def test_secondary_rate_limit_beyond_max_wait_says_rate_limited_not_permission(
        world: World, waits: list[float]) -> None:
    new_images(world)
    head = world.github.head(REPO)
    world.github.throttle = [(403, {})]
    world.configure(token="env:TEST_GITHUB_TOKEN", max_wait=30)
    with pytest.raises(PublishError, match="rate limited") as caught:
        run(load_config(world.config))
    assert "permission" not in str(caught.value) and waits == []
    assert world.github.head(REPO) == head


def test_rate_limit_that_outlasts_the_retries_says_rate_limited(world: World, waits: list[float]) -> None:
    new_images(world)
    world.github.throttle = [(429, {"Retry-After": "1"})] * 4
    world.configure(token="env:TEST_GITHUB_TOKEN", retries=1)
    with pytest.raises(PublishError, match="rate limited by GitHub"):
        run(load_config(world.config))


def test_graphql_rate_limited_error_is_waited_out_then_the_commit_lands(world: World,
                                                                        waits: list[float]) -> None:
    new = new_images(world)
    world.github.graphql_rate_limited = 1
    run(load_config(world.config))
    assert len(waits) == 1 and 0 <= waits[0] <= 60
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


# --- pull-request mode never lets GitHub close the PR ---------------------------------------------


def pr_branch_levels(w: World) -> list[str]:
    """Every value the PR branch took that was also a value of the base: must stay empty."""
    base_values = {sha for repo, ref, sha in w.github.ref_log if ref == "refs/heads/main"}
    return [sha for repo, ref, sha in w.github.ref_log
            if ref == "refs/heads/tagsync/main/kernels" and sha in base_values]


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_further_change_keeps_the_same_pr_open_and_never_level_with_its_base(world: World,
                                                                              api: str) -> None:
    new_images(world)
    pr_mode(world, api=api)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    world.push("python", "3.6-ubuntu", "py newer")
    summary = run(load_config(world.config))
    assert summary.pull_request == pr.number and pr.state == "open"
    assert pr_branch_levels(world) == []
    assert [r for r in world.github.repos[REPO].git.refs.allkeys() if b"scratch" in r] == []


def test_a_failed_commit_leaves_the_pr_as_it_was(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    before = world.github.head(REPO, "tagsync/main/kernels")
    world.push("python", "3.6-ubuntu", "py newer")
    world.github.faults["createCommitOnBranch"] = 502
    with pytest.raises(PublishError):
        run(load_config(world.config))
    assert pr.state == "open" and world.github.head(REPO, "tagsync/main/kernels") == before
    assert [r for r in world.github.repos[REPO].git.refs.allkeys() if b"scratch" in r] == []


def test_a_pr_branch_commit_is_tagsyncs_by_its_trailer(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    message = world.github.commit(REPO, world.github.head(REPO, "tagsync/main/kernels") or "").message
    assert message.decode().splitlines()[-1] == "Tagsync-Branch: tagsync/main/kernels"


# --- tagsync only rewrites a branch it owns --------------------------------------------------------


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_a_branch_holding_someone_elses_commit_without_a_pr_is_never_overwritten(world: World,
                                                                                api: str) -> None:
    new_images(world)
    pr_mode(world, api=api)
    base = world.github.head(REPO) or ""
    world.github.repos[REPO].git.refs[b"refs/heads/tagsync/main/kernels"] = base.encode()
    theirs = world.github.commit_directly(REPO, {"notes.md": b"mine\n"}, "my work",
                                          branch="tagsync/main/kernels")
    with pytest.raises(PushRejectedError, match=rf"branch tagsync/main/kernels holds commit {theirs[:12]}"):
        run(load_config(world.config))
    assert world.github.head(REPO, "tagsync/main/kernels") == theirs
    assert world.github.open_pulls(REPO) == []


def test_a_branch_left_by_tagsync_after_its_pr_was_closed_is_reused(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    pr.state = "closed"  # a person closed it; the branch holds only tagsync's commit
    world.push("python", "3.6-ubuntu", "py newer")
    summary = run(load_config(world.config))
    assert summary.pull_request_action == "opened" and len(world.github.open_pulls(REPO)) == 1


# --- pull request upkeep ----------------------------------------------------------------------------


def test_missing_labels_reviewers_and_auto_merge_are_requested_again(world: World) -> None:
    new_images(world)
    pr_mode(world, labels='["dependencies"]', reviewers='["alice"]', auto_merge="squash")
    world.github.faults["POST /repos/{owner}/{repo}/issues/{issue_number}/labels"] = 422
    summary = run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    assert summary.pushed and pr.labels == []  # the failure warned; the commit stands
    pr.reviewers.clear()
    pr.auto_merge = None
    run(load_config(world.config))
    assert pr.labels == ["dependencies"] and pr.reviewers == ["alice"] and pr.auto_merge == "SQUASH"


def test_a_reviewer_who_already_reviewed_is_not_asked_again(world: World) -> None:
    new_images(world)
    pr_mode(world, reviewers='["alice"]')
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    pr.reviewers.clear()
    pr.reviews.append(("alice", "COMMENTED"))
    run(load_config(world.config))
    assert pr.reviewers == []


def test_upkeep_failure_is_a_warning_and_the_run_succeeds(world: World,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    new_images(world)
    pr_mode(world, reviewers='["alice"]')
    world.github.faults["POST /repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"] = 422
    summary = run(load_config(world.config))
    assert summary.pull_request_action == "opened"
    assert any("requesting reviews failed" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


def test_a_persons_title_and_text_around_the_generated_part_are_kept(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    pr.title = "Kernel digests (please merge before Friday)"
    pr.body = "Context from a person.\n\n" + pr.body + "\nMore notes.\n"
    newer = world.push("python", "3.6-ubuntu", "py newer")
    run(load_config(world.config))
    assert pr.title == "Kernel digests (please merge before Friday)"
    assert pr.body.startswith("Context from a person.\n\n<!-- tagsync:begin")
    assert pr.body.endswith("<!-- tagsync:end -->\n\nMore notes.\n")
    assert newer in pr.body and pr.body.count("<!-- tagsync:begin") == 1


def test_a_title_nobody_changed_follows_the_change(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    world.push("python", "3.6-ubuntu", "py newer")
    world.configure(token="env:TEST_GITHUB_TOKEN", mode="pull-request", pr_title='"Digest bump"')
    run(load_config(world.config))
    assert pr.title == "Digest bump"


def test_a_pr_whose_change_the_base_already_has_is_closed_with_a_comment(world: World) -> None:
    new = new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    [pr] = world.github.open_pulls(REPO)
    world.github.commit_directly(REPO, {"images.yml": world.expected(**new)}, "applied by hand")
    summary = run(load_config(world.config))
    assert pr.state == "closed" and "already has these changes" in pr.comments[-1]
    assert summary.to_dict()["status"] == "unchanged"


def test_a_current_pr_reports_unchanged(world: World) -> None:
    new_images(world)
    pr_mode(world)
    run(load_config(world.config))
    summary = run(load_config(world.config))
    assert summary.pull_request_action == "unchanged" and summary.to_dict()["status"] == "unchanged"


# --- two runs at once, both reading before either writes ------------------------------------------


def _both_runs(world: World) -> list[Any]:
    """Two runs at once, held so both read before either writes. Their commit messages differ
    (a second config), so their commits differ: the same commit built twice in one second would
    have one id, and a race between equals proves nothing."""
    import threading

    other = world.config.with_name("tagsync-b.yaml")
    other.write_text(world.config.read_text()
                     + '  message: "tagsync (run b): update {count} image digest(s)"\n')
    out: list[Any] = [None, None]

    def call(i: int, config: Path) -> None:
        try:
            out[i] = run(load_config(config))
        except Exception as exc:  # the test inspects it
            out[i] = exc

    world.github.hold_writes(2)
    threads = [threading.Thread(target=call, args=(i, c)) for i, c in enumerate([world.config, other])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not [s for s in out if isinstance(s, Exception)], out
    return out


def test_two_concurrent_push_runs_make_one_commit_and_the_loser_replans(world: World) -> None:
    new = new_images(world)
    before = world.github.head(REPO) or ""
    summaries = _both_runs(world)
    assert sorted(s.pushed for s in summaries) == [False, True]
    loser = next(s for s in summaries if not s.pushed)
    assert loser.attempts == 2 and loser.to_dict()["status"] == "unchanged"
    head = world.github.commit(REPO, world.github.head(REPO) or "")
    assert [p.decode() for p in head.parents] == [before]  # exactly one commit
    assert world.github.read(REPO, "images.yml") == world.expected(**new)


@pytest.mark.parametrize("existing_pr", [False, True])
def test_two_concurrent_pr_runs_leave_one_pr_with_one_commit(world: World, existing_pr: bool) -> None:
    new = new_images(world)
    pr_mode(world)
    if existing_pr:
        world.push("r", "3.5", "r first")
        run(load_config(world.config))
        new = new_images(world) | {"py": world.push("python", "3.6-ubuntu", "py later")}
        new["r"] = world.push("r", "3.5", "r later")
    summaries = _both_runs(world)
    assert sorted(s.pushed for s in summaries) == [False, True]
    loser = next(s for s in summaries if not s.pushed)
    assert loser.attempts == 2 and loser.to_dict()["status"] == "unchanged"
    assert len(world.github.open_pulls(REPO)) == 1 and len(world.github.repos[REPO].pulls) == 1
    head = world.github.commit(REPO, world.github.head(REPO, "tagsync/main/kernels") or "")
    assert [p.decode() for p in head.parents] == [world.github.head(REPO)]
    assert world.github.read(REPO, "images.yml", "tagsync/main/kernels") == world.expected(**new)
    assert pr_branch_levels(world) == []
