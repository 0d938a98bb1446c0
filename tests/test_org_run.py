"""Organisation mode: every repository of an organisation in one run, registries asked once.

The organisation lives on the GitHub contract server (repositories listed through
`GET /orgs/{org}/repos`, checked against GitHub's spec); images on the real local registry,
behind a proxy that records every request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tagsync.cli import main
from tagsync.errors import ConfigError
from tagsync.org import answers
from tagsync.org.config import load_org_config, parse_org_config, repo_config
from tagsync.org.run import org_run
from tests.servers.fixtures import FaultyRegistry, serve_wsgi, unique_namespace
from tests.servers.github import GitHubServer, PullRequest

TOKEN = "ghp_orgtoken0123456789abcdefABCDEF"
OLD = "sha256:" + "0" * 64
KUBE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {host}/{ns}/app:1.0@{digest}   # pinned
"""
REPO_CONFIG = """\
catalogs:
  - name: deploy
    files: ["deploy/*.yaml"]
"""


@dataclass
class Org:
    github: GitHubServer
    registry: FaultyRegistry
    config: Path
    ns: str
    digest: str

    def kube(self, digest: str = OLD) -> bytes:
        return KUBE.format(host=self.registry.host, ns=self.ns, digest=digest).encode()

    def heads(self) -> list[str]:
        return [s for s in self.registry.faults.seen
                if s.startswith("HEAD ") and "/manifests/" in s]


@pytest.fixture
def org(github: GitHubServer, faulty_registry: FaultyRegistry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Org:
    ns = unique_namespace("org", request)
    digest = faulty_registry.upstream.push(f"{ns}/app", "1.0", f"{ns} app").digest
    github.tokens[TOKEN] = "write"
    monkeypatch.setenv("TEST_ORG_TOKEN", TOKEN)
    config = tmp_path / "org.yaml"
    config.write_text(f"""\
organisation: acme
github:
  api_url: {github.url}
  token: env:TEST_ORG_TOKEN
repositories:
  exclude: ["legacy-*"]
registries:
  - host: "{faulty_registry.host}"
    url: {faulty_registry.url}
""")
    o = Org(github, faulty_registry, config, ns, digest)
    github.create_repo("acme/svc-a", {"tagsync.yaml": REPO_CONFIG.encode(),
                                      "deploy/app.yaml": o.kube()})
    github.create_repo("acme/svc-b", {
        ".github/tagsync.yaml": (REPO_CONFIG + "github:\n  mode: pull-request\n").encode(),
        "deploy/app.yaml": o.kube()})
    github.create_repo("acme/no-config", {"README.md": b"hi\n"})
    github.create_repo("acme/legacy-x", {"tagsync.yaml": REPO_CONFIG.encode(),
                                         "deploy/app.yaml": o.kube()})
    return o


def test_every_configured_repository_is_updated_and_each_digest_is_asked_once(org: Org) -> None:
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube(org.digest)
    assert by_repo["acme/svc-a"].status == "changed"
    [pr] = org.github.open_pulls("acme/svc-b")
    assert org.github.read("acme/svc-b", "deploy/app.yaml", pr.head) == org.kube(org.digest)
    assert org.github.read("acme/svc-b", "deploy/app.yaml") == org.kube()  # base untouched
    assert org.heads() == [f"HEAD /v2/{org.ns}/app/manifests/1.0"]  # two repositories, one HEAD
    asked = org.registry.faults.seen
    assert len(asked) == len(set(asked))  # labels too: every question once, whoever needs it
    assert not summary.partial


def test_a_repository_without_config_is_skipped_and_an_excluded_one_is_not_listed(org: Org) -> None:
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/no-config"].status == "skipped"
    assert "tagsync.yaml" in by_repo["acme/no-config"].reason
    assert "acme/legacy-x" not in by_repo
    assert org.github.read("acme/legacy-x", "deploy/app.yaml") == org.kube()


def test_a_second_run_changes_nothing(org: Org) -> None:
    org_run(load_org_config(org.config))
    writes = len(org.github.writes())
    summary = org_run(load_org_config(org.config))
    assert len(org.github.writes()) == writes
    statuses = {r.repo: r.status for r in summary.repositories}
    assert statuses["acme/svc-a"] == statuses["acme/svc-b"] == "unchanged"


def test_a_broken_config_fails_alone_naming_its_file_and_line(org: Org) -> None:
    org.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs:\n  - name: x\n    kind: nope\n"})
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/broken"].status == "failed"
    assert by_repo["acme/broken"].reason.startswith("acme/broken:tagsync.yaml:3:")
    assert by_repo["acme/svc-a"].status == "changed"
    assert summary.partial


def test_a_refused_push_fails_that_repository_only(org: Org) -> None:
    org.github.create_repo("acme/locked", {"tagsync.yaml": REPO_CONFIG.encode(),
                                           "deploy/app.yaml": org.kube()})
    org.github.repos["acme/locked"].protected.add("main")
    summary = org_run(load_org_config(org.config))
    by_repo = {r.repo: r for r in summary.repositories}
    assert by_repo["acme/locked"].status == "failed"
    assert "protected" in by_repo["acme/locked"].reason
    assert by_repo["acme/svc-a"].status == "changed"
    assert org.github.read("acme/locked", "deploy/app.yaml") == org.kube()


def test_a_refused_edit_fails_its_change_and_the_repository_s_other_files_are_written(
        org: Org) -> None:
    """A tag under an anchor named `t:x` reads back differently to YAML 1.1 and 1.2 readers: the
    engine refuses its edit, that file stays as it was, the repository's other file is written."""
    org.registry.upstream.push(f"{org.ns}/app", "1.1", f"{org.ns} app 1.1")
    refused = f'images:\n  - name: app\n    tag: &t:x 1.0\n    digest: "{OLD}"\n'.encode()
    org.github.create_repo("acme/svc-c", {
        "tagsync.yaml": (REPO_CONFIG + "  - name: kernels\n    file: cat/b.yml\n"
                         "    entries: .images[*]\n"
                         f"    image: '{org.registry.host}/{org.ns}/{{name}}'\n"
                         "    tag: .tag\n    digest: .digest\n"
                         "    policy: {kind: semver}\n").encode(),
        "deploy/app.yaml": org.kube(), "cat/b.yml": refused})
    summary = org_run(load_org_config(org.config))
    result = next(r for r in summary.repositories if r.repo == "acme/svc-c")
    assert result.status == "partial" and summary.partial
    assert org.github.read("acme/svc-c", "deploy/app.yaml") == org.kube(org.digest)
    assert org.github.read("acme/svc-c", "cat/b.yml") == refused
    assert result.summary is not None
    [failure] = result.summary["failures"]
    assert (failure["file"], failure["line"], failure["column"]) == ("cat/b.yml", 3, 10)
    assert "would read back as" in failure["error"] and "would read back as" in result.reason


def test_a_dry_run_writes_nothing_and_shows_each_repository_s_diff(org: Org) -> None:
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert org.github.writes() == []
    svc_a = next(r for r in summary.repositories if r.repo == "acme/svc-a")
    assert svc_a.summary is not None and f"+          image: {org.registry.host}" in svc_a.summary["diff"]


def test_the_listing_follows_github_s_pages(org: Org) -> None:
    for i in range(105):
        org.github.create_repo(f"acme/empty-{i:03d}", {"README.md": b"hi\n"})
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert sum(r.repo.startswith("acme/empty-") for r in summary.repositories) == 105
    pages = [h for h in org.github.hits if h.path == "/orgs/acme/repos"]
    assert len(pages) == 2


def test_cli_prints_a_line_per_repository_and_exits_3_when_one_failed(
        org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    org.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs: 3\n"})
    code = main(["org", "run", "-c", str(org.config), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 3
    statuses = {r["repo"]: r["status"] for r in out["repositories"]}
    assert statuses == {"acme/broken": "failed", "acme/no-config": "skipped",
                        "acme/svc-a": "changed", "acme/svc-b": "changed"}


# --- the fan-out: answers asked once, stored, and read by one child per repository --------------


def test_a_child_planning_from_stored_answers_writes_what_one_process_would(
        org: Org, tmp_path: Path) -> None:
    first = org_run(load_org_config(org.config), answers_only=True)
    assert org.github.writes() == []
    assert {r.repo: r.status for r in first.repositories}["acme/svc-a"] == "planned"
    stored = tmp_path / "answers.json"
    stored.write_text(json.dumps(answers.dump(first.known)))
    asked = len(org.heads())

    child = org_run(load_org_config(org.config), only=frozenset({"acme/svc-a"}),
                    known=answers.load(json.loads(stored.read_text()), str(stored)))
    assert [r.repo for r in child.repositories] == ["acme/svc-a"]
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube(org.digest)
    assert len(org.heads()) == asked  # the child asked no registry for a digest
    assert len(org.registry.faults.seen) == len(set(org.registry.faults.seen))  # nor labels
    assert org.github.open_pulls("acme/svc-b") == []  # not this child's repository


def test_the_shared_survey_counts_every_registry_request_it_sent(org: Org) -> None:
    """Discover's summary (and its log line) counts the registries' requests, not only Docker
    Hub API's: an operator reading "0 registry requests" would think nothing was asked."""
    first = org_run(load_org_config(org.config), answers_only=True)
    assert org.heads()
    assert first.requests["requests"] >= len(org.heads())
    assert first.requests["heads"] == len(org.heads())


def test_a_registry_failure_survives_storage_as_the_same_kind_of_failure(org: Org) -> None:
    org.github.create_repo("acme/svc-c", {"tagsync.yaml": REPO_CONFIG.encode(),
                                          "deploy/app.yaml": org.kube().replace(b"app:1.0", b"app:9.9")})
    first = org_run(load_org_config(org.config), answers_only=True)
    known = answers.load(json.loads(json.dumps(answers.dump(first.known))), "answers.json")
    child = org_run(load_org_config(org.config), only=frozenset({"acme/svc-c"}), known=known,
                    dry_run=True)
    [result] = child.repositories
    assert result.status == "partial" and "not found" in result.reason


@pytest.mark.parametrize("text", ["[]", '{"version": 1}', '{"version": 1, "repos": [], "tags": [],'
                                  ' "digests": [{"image": "x"}], "ages": []}', "not json"])
def test_unreadable_stored_answers_are_a_usage_error(
        org: Org, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "answers.json"
    bad.write_text(text)
    assert main(["org", "run", "-c", str(org.config), "--answers", str(bad)]) == 2
    assert "answers" in capsys.readouterr().err
    assert org.github.writes() == []


# --- the trust boundary: what a repository's config can make tagsync do -----------------------


ORG = """\
organisation: acme
github: {token: env:T}
registries:
  - host: ghcr.io
    username: bot
    password: env:GHCR
"""


def _org(extra: str = "") -> Any:
    return parse_org_config(ORG + extra, "org.yaml", Path("/org"))


@pytest.mark.parametrize(("text", "key", "line"), [
    ("catalogs: [{name: a, file: x.yaml}]\nregistries:\n  - host: ghcr.io\n    url: http://evil\n",
     "registries", 3),
    ("catalogs: [{name: a, file: x.yaml}]\ngit: {repo: https://evil/x.git}\n", "git", 2),
    ("catalogs: [{name: a, file: x.yaml}]\nrun: {timeout: 1}\n", "run", 2),
    ("catalogs: [{name: a, file: x.yaml}]\ngithub:\n  repo: acme/other\n", "github.repo", 3),
    ("catalogs: [{name: a, file: x.yaml}]\ngithub:\n  api_url: https://evil\n", "github.api_url", 3),
    ("catalogs: [{name: a, file: x.yaml}]\ngithub:\n  token: env:GHCR\n", "github.token", 3),
    ("catalogs:\n  - name: a\n    file: x.yaml\n    verify: {key: 'env:GHCR'}\n",
     "catalogs.0.verify.key", 4),
    ("catalogs:\n  - name: a\n    file: x.yaml\n    verify: {key: /etc/shadow}\n",
     "catalogs.0.verify.key", 4),
    ("catalogs:\n  - name: a\n    file: x.yaml\n    verify_images:\n      'x/*': {key: 'file:k.pub'}\n",
     "catalogs.0.verify_images.x/*.key", 5),
])
def test_a_repository_config_may_not_reach_credentials_hosts_or_other_repositories(
        text: str, key: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        repo_config(_org(), "acme/svc", "main", text, "acme/svc:tagsync.yaml")
    assert caught.value.message.startswith(f"{key}: ")
    assert (caught.value.file, caught.value.line) == ("acme/svc:tagsync.yaml", line)
    assert "GHCR" not in caught.value.message.removeprefix(f"{key}: ")  # no value quoted back


def test_a_repository_config_gets_the_organisation_s_registries_and_its_own_repository() -> None:
    config = repo_config(_org(), "acme/svc", "trunk",
                         "catalogs: [{name: a, file: x.yaml}]\ngithub: {mode: pull-request}\n",
                         "acme/svc:tagsync.yaml")
    assert config.github is not None
    assert (config.github.repo, config.github.branch, config.github.mode) == (
        "acme/svc", "trunk", "pull-request")
    assert config.github.token == "env:T"
    assert [r.host for r in config.registries] == ["ghcr.io"]


def test_keyless_verify_in_a_repository_uses_the_organisation_s_trusted_root() -> None:
    text = ("catalogs:\n  - name: a\n    file: x.yaml\n    pin_digests: true\n    verify:\n"
            "      identity: me@example.com\n      issuer: https://issuer.example\n")
    with pytest.raises(ConfigError, match="organisation's `trusted_root`"):
        repo_config(_org(), "acme/svc", "main", text, "acme/svc:tagsync.yaml")
    config = repo_config(_org("trusted_root: sigstore/root.json\n"), "acme/svc", "main", text,
                         "acme/svc:tagsync.yaml")
    assert config.catalogs[0].verify is not None
    assert config.catalogs[0].verify.trusted_root == "/org/sigstore/root.json"


def test_an_org_config_needs_one_way_into_github() -> None:
    with pytest.raises(ConfigError, match=r"github: .*exactly one of"):
        parse_org_config("organisation: acme\ngithub: {}\n", "org.yaml", Path("."))


def test_an_image_on_a_foreign_host_gets_no_credential(org: Org) -> None:
    """A repository names an image on a host of its choosing: that host sees no secret."""
    seen: list[str] = []

    def foreign(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_AUTHORIZATION", ""))
        start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="x"'),
                                   ("Content-Length", "0")])
        return [b""]

    server = serve_wsgi(foreign)
    try:
        host = server.url.removeprefix("http://")
        # the organisation lets tagsync reach that host (plain HTTP) but gives it no credential
        org.config.write_text(org.config.read_text() + "    username: bot\n"
                              f"    password: env:TEST_ORG_TOKEN\n  - host: '{host}'\n"
                              f"    url: {server.url}\n")
        org.github.create_repo("acme/hostile", {
            "tagsync.yaml": REPO_CONFIG.encode(),
            "deploy/app.yaml": KUBE.format(host=host, ns="x", digest=OLD).encode()})
        summary = org_run(load_org_config(org.config), dry_run=True)
    finally:
        server.stop()
    assert seen and all(a == "" for a in seen)
    hostile = next(r for r in summary.repositories if r.repo == "acme/hostile")
    assert hostile.status in ("partial", "failed")


# --- the dashboard: one issue, updated in place ----------------------------------------------


def _with_dashboard(org: Org) -> None:
    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    org.config.write_text(org.config.read_text() + "dashboard: {repo: acme/ops}\n")


def test_the_dashboard_issue_is_opened_once_and_then_updated_in_place(org: Org) -> None:
    _with_dashboard(org)
    first = org_run(load_org_config(org.config))
    [issue] = org.github.repos["acme/ops"].issues
    assert first.dashboard == f"dashboard acme/ops#{issue.number} opened"
    assert "| acme/svc-a | changed |" in issue.body and "| acme/no-config | skipped |" in issue.body
    org.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs: 3\n"})
    second = org_run(load_org_config(org.config))
    assert [i.number for i in org.github.repos["acme/ops"].issues] == [issue.number]
    assert second.dashboard == f"dashboard acme/ops#{issue.number} updated"
    assert issue.body.index("acme/broken") < issue.body.index("acme/svc-a")  # failures first


def test_a_dashboard_a_person_closed_stays_closed(org: Org) -> None:
    _with_dashboard(org)
    org_run(load_org_config(org.config))
    [issue] = org.github.repos["acme/ops"].issues
    issue.state, body = "closed", issue.body
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard is not None and "left closed" in summary.dashboard
    assert (issue.state, issue.body, len(org.github.repos["acme/ops"].issues)) == ("closed", body, 1)


def test_a_pull_request_in_the_issue_listing_is_never_taken_for_the_dashboard(org: Org) -> None:
    from tagsync.org.dashboard import marker

    _with_dashboard(org)
    org.github.repos["acme/ops"].pulls.append(PullRequest(900, "x", "main", "t", marker("acme")))
    org_run(load_org_config(org.config))
    assert len(org.github.repos["acme/ops"].issues) == 1


def test_a_dry_run_leaves_the_dashboard_alone_and_markdown_goes_to_a_file(
        org: Org, tmp_path: Path) -> None:
    _with_dashboard(org)
    out = tmp_path / "status.md"
    assert main(["org", "run", "-c", str(org.config), "--dry-run", "--markdown", str(out)]) == 0
    assert org.github.repos["acme/ops"].issues == []
    assert "| acme/svc-a | changed |" in out.read_text()


# --- GitHub requests budgeted: configs read through GraphQL, many repositories a request ------


def _config_reads(org: Org) -> tuple[int, int]:
    """(GraphQL queries reading configs, REST reads of config files)."""
    graphql = sum(h.graphql == "query:repository" for h in org.github.hits)
    rest = sum(h.method == "GET" and h.path.endswith(("/contents/tagsync.yaml",
                                                      "/contents/.github/tagsync.yaml"))
               for h in org.github.hits)
    return graphql, rest


def test_configs_are_read_fifty_repositories_a_graphql_request(org: Org) -> None:
    for i in range(60):
        org.github.create_repo(f"acme/many-{i:02d}", {"README.md": b"hi\n"})
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert _config_reads(org) == (2, 0)  # 64 repositories, both config paths each
    assert {r.repo: r.status for r in summary.repositories}["acme/svc-b"] == "changed"


def test_a_config_graphql_truncates_is_read_whole_over_rest(org: Org) -> None:
    big = REPO_CONFIG + "#" + "x" * (600 * 1024) + "\n"
    org.github.create_repo("acme/big", {"tagsync.yaml": big.encode(), "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert {r.repo: r.status for r in summary.repositories}["acme/big"] == "changed"
    assert _config_reads(org) == (1, 1)


def test_without_graphql_configs_are_read_over_rest(org: Org) -> None:
    org.github.graphql_enabled = False
    org.config.write_text(org.config.read_text().replace("  token:", "  api: rest\n  token:"))
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert {r.repo: r.status for r in summary.repositories}["acme/svc-b"] == "changed"
    graphql, rest = _config_reads(org)
    assert graphql == 0 and rest >= 3


# --- onboarding: one pull request proposing a config, never twice ------------------------------


def _onboarding(org: Org) -> None:
    org.config.write_text(org.config.read_text() + "onboarding: true\n")
    org.github.create_repo("acme/new-svc", {"k8s/app.yaml": org.kube(), "README.md": b"hi\n"})


def test_a_repository_without_config_is_offered_one_in_a_pull_request(org: Org) -> None:
    _onboarding(org)
    summary = org_run(load_org_config(org.config))
    row = {r.repo: r for r in summary.repositories}["acme/new-svc"]
    [pr] = org.github.open_pulls("acme/new-svc")
    assert row.status == "onboarding" and f"#{pr.number}" in row.reason
    proposed = org.github.read("acme/new-svc", "tagsync.yaml", pr.head).decode()
    assert "k8s/**/*.yaml" in proposed and "kind: kubernetes" in proposed
    repo_config(load_org_config(org.config), "acme/new-svc", "main", proposed, "proposed")
    assert {r.repo: r.status for r in summary.repositories}["acme/no-config"] == "skipped"  # no refs


def test_an_open_onboarding_pull_request_is_left_as_it_is(org: Org) -> None:
    _onboarding(org)
    org_run(load_org_config(org.config))
    writes = len(org.github.writes())
    summary = org_run(load_org_config(org.config), dry_run=False)
    assert "is open" in {r.repo: r for r in summary.repositories}["acme/new-svc"].reason
    assert len([h for h in org.github.writes()[writes:] if "new-svc" in h.path]) == 0


def test_a_closed_onboarding_pull_request_is_never_proposed_again(org: Org) -> None:
    _onboarding(org)
    org_run(load_org_config(org.config))
    [pr] = org.github.open_pulls("acme/new-svc")
    pr.state = "closed"
    summary = org_run(load_org_config(org.config))
    row = {r.repo: r for r in summary.repositories}["acme/new-svc"]
    assert row.status == "skipped" and "not proposed again" in row.reason
    assert org.github.open_pulls("acme/new-svc") == []
    assert len(org.github.repos["acme/new-svc"].pulls) == 1


def test_a_dry_run_only_says_what_it_would_propose(org: Org) -> None:
    _onboarding(org)
    summary = org_run(load_org_config(org.config), dry_run=True)
    assert "would propose" in {r.repo: r for r in summary.repositories}["acme/new-svc"].reason
    assert org.github.writes() == []


def test_every_github_request_goes_through_the_organisation_s_one_client(org: Org) -> None:
    summary = org_run(load_org_config(org.config))
    assert summary.github_requests == len(org.github.hits) > 0
