"""Organisation mode as a GitHub App runs exactly what the installation was granted.

`GET /orgs/{org}/repos` shows an installation on "only select repositories" the organisation's
public repositories too: it could read them, never write them nor open their onboarding pull
request. As an App, tagsync lists `GET /installation/repositories` (of it, the organisation's
own); with a token, the organisation's listing as before. The contract server models the
installation's reach (tests/test_github_contract.py proves its refusals).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagsync.aws.handler import handler
from tagsync.errors import PublishError
from tagsync.org.config import load_org_config
from tagsync.org.repos import MAX_PAGES, list_repositories
from tagsync.org.run import org_run
from tagsync.publish import github as gh
from tests.servers.fixtures import serve_wsgi
from tests.servers.github import GitHubServer
from tests.test_org_run import REPO_CONFIG, Org, org  # noqa: F401  (the organisation fixture)
from tests.test_org_statemachine import BUCKET

INSTALLATION = 777
NOT_GRANTED = "acme/public-not-granted"


@pytest.fixture
def app_org(org: Org, tmp_path: Path) -> Iterator[Org]:  # noqa: F811
    """The organisation, authenticated as App 4242's installation on selected repositories:
    svc-a, svc-b, no-config and legacy-x; `acme/public-not-granted` (public, configured) is
    the organisation's but not granted."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    org.github.apps[4242] = key.public_key()
    org.github.installations[INSTALLATION] = (4242, "acme/svc-a")
    org.github.selected[INSTALLATION] = {"acme/svc-a", "acme/svc-b", "acme/no-config",
                                         "acme/legacy-x"}
    org.github.create_repo(NOT_GRANTED, {"tagsync.yaml": REPO_CONFIG.encode(),
                                         "deploy/app.yaml": org.kube()})
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    text = org.config.read_text()
    assert "  token: env:TEST_ORG_TOKEN\n" in text
    org.config.write_text(text.replace(
        "  token: env:TEST_ORG_TOKEN\n",
        f"  app: {{app_id: 4242, private_key: 'file:{pem}', installation_id: {INSTALLATION}}}\n"))
    gh._INSTALLATION_TOKENS.clear()
    yield org
    gh._INSTALLATION_TOKENS.clear()


def _touched(world: Org, repo: str) -> list[str]:
    """Every request that named the repository: REST paths and GraphQL reads."""
    return ([h.path for h in world.github.hits if f"/repos/{repo}/" in h.path + "/"]
            + [r for r in world.github.graphql_reads if r.lower() == repo.lower()])


def test_an_app_on_selected_repositories_runs_exactly_those(app_org: Org) -> None:
    summary = org_run(load_org_config(app_org.config))
    statuses = {r.repo: r.status for r in summary.repositories}
    assert statuses == {"acme/svc-a": "changed", "acme/svc-b": "changed",
                        "acme/no-config": "skipped"}  # legacy-x: excluded by the selection
    assert not summary.partial


def test_an_app_lists_the_installation_s_repositories_not_the_organisation_s(
        app_org: Org) -> None:
    org_run(load_org_config(app_org.config))
    paths = [h.path for h in app_org.github.hits]
    assert "/installation/repositories" in paths
    assert not any(p.startswith("/orgs/") for p in paths)


def test_a_public_repository_not_granted_is_never_read_nor_written(app_org: Org) -> None:
    org_run(load_org_config(app_org.config))
    assert _touched(app_org, NOT_GRANTED) == []
    assert app_org.github.read(NOT_GRANTED, "deploy/app.yaml") == app_org.kube()
    assert app_org.github.open_pulls(NOT_GRANTED) == []


def test_a_public_repository_not_granted_is_never_offered_onboarding(app_org: Org) -> None:
    app_org.config.write_text(app_org.config.read_text() + "onboarding: true\n")
    app_org.github.create_repo("acme/public-new", {"k8s/app.yaml": app_org.kube()})
    app_org.github.create_repo("acme/granted-new", {"k8s/app.yaml": app_org.kube()})
    app_org.github.selected[INSTALLATION].add("acme/granted-new")
    summary = org_run(load_org_config(app_org.config))
    assert "acme/public-new" not in {r.repo for r in summary.repositories}
    assert app_org.github.open_pulls("acme/public-new") == []
    assert _touched(app_org, "acme/public-new") == []
    assert len(app_org.github.open_pulls("acme/granted-new")) == 1  # granted: offered


def test_another_owner_s_repository_the_installation_can_see_is_not_run(app_org: Org) -> None:
    app_org.github.create_repo("other/svc", {"tagsync.yaml": REPO_CONFIG.encode(),
                                             "deploy/app.yaml": app_org.kube()})
    app_org.github.selected[INSTALLATION].add("other/svc")
    summary = org_run(load_org_config(app_org.config))
    assert "other/svc" not in {r.repo for r in summary.repositories}
    assert _touched(app_org, "other/svc") == []
    assert app_org.github.read("other/svc", "deploy/app.yaml") == app_org.kube()


def test_a_name_asked_for_that_the_installation_was_not_granted_is_said(app_org: Org) -> None:
    summary = org_run(load_org_config(app_org.config), only=frozenset({NOT_GRANTED}))
    [row] = summary.repositories
    assert (row.repo, row.status) == (NOT_GRANTED, "skipped")
    assert "not visible to its credentials" in row.reason
    assert _touched(app_org, NOT_GRANTED) == []


def test_with_a_token_the_organisation_s_listing_is_kept(org: Org) -> None:  # noqa: F811
    org.github.create_repo("acme/public-svc", {"tagsync.yaml": REPO_CONFIG.encode(),
                                               "deploy/app.yaml": org.kube()})
    summary = org_run(load_org_config(org.config))
    paths = [h.path for h in org.github.hits]
    assert "/orgs/acme/repos" in paths and "/installation/repositories" not in paths
    assert {r.repo: r.status for r in summary.repositories}["acme/public-svc"] == "changed"


@pytest.fixture
def app_steps(app_org: Org, moto: Any, monkeypatch: pytest.MonkeyPatch) -> Org:
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("TAGSYNC_ORG_CONFIG", str(app_org.config))
    return app_org


def test_the_step_functions_discover_step_uses_the_installation_s_listing(
        app_steps: Org) -> None:
    import boto3

    out = handler({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"}, None)
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=out["repositories"])["Body"].read()
    names = sorted(item["repo"] for item in json.loads(stored))
    assert names == ["acme/svc-a", "acme/svc-b"]
    assert "/installation/repositories" in [h.path for h in app_steps.github.hits]
    assert _touched(app_steps, NOT_GRANTED) == []


# --- the installation's answer is untrusted ---------------------------------------------------


def _answering(pages: Any, *, endless: bool = False) -> Any:
    """A server answering `/installation/repositories` with `pages` (a list: one per page),
    every page saying a next one follows when `endless`."""
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", ""))
        page = int(dict(p.split("=") for p in environ["QUERY_STRING"].split("&"))["page"])
        body = json.dumps(pages[min(page, len(pages)) - 1]).encode()
        more = endless or page < len(pages)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if more:
            headers.append(("Link", f'<http://x/installation/repositories?page={page + 1}>; '
                                    'rel="next"'))
        start("200 OK", headers)
        return [body]
    server = serve_wsgi(app)
    server.seen = seen  # type: ignore[attr-defined]
    return server


def _list(pages: Any, *, endless: bool = False) -> tuple[list[str], list[str]]:
    server = _answering(pages, endless=endless)
    try:
        api = gh.GitHubApi(server.url, gh.StaticToken("t"), retries=0)
        repos = list_repositories(api, "acme", installation=True)
    finally:
        server.stop()
    return [r.full_name for r in repos], server.seen


def _repo(full_name: str, owner: str | None = None) -> dict[str, Any]:
    return {"full_name": full_name, "default_branch": "main", "fork": False,
            "owner": {"login": owner if owner is not None else full_name.split("/")[0]}}


def test_every_page_is_read_and_only_the_organisation_s_own_kept_in_any_case() -> None:
    names, seen = _list([
        {"total_count": 3, "repositories": [_repo("acme/b"), _repo("other/x")]},
        {"total_count": 3, "repositories": [_repo("ACME/a")]}])
    assert names == ["ACME/a", "acme/b"]
    assert len(seen) == 2 and all(s.startswith("/installation/repositories?") for s in seen)


def test_an_entry_whose_owner_and_full_name_disagree_is_left_out() -> None:
    names, _ = _list([{"total_count": 2, "repositories": [_repo("acme/a", owner="other"),
                                                          _repo("acme/b")]}])
    assert names == ["acme/b"]


@pytest.mark.parametrize("page", [
    [_repo("acme/a")],  # the organisation listing's shape, not the installation's
    {"repositories": [_repo("acme/a")]},  # no total_count
    {"total_count": "1", "repositories": [_repo("acme/a")]},
    {"total_count": True, "repositories": [_repo("acme/a")]},
    {"total_count": -1, "repositories": []},
    {"total_count": 1, "repositories": {"acme/a": {}}},
    {"total_count": MAX_PAGES * 100 + 1, "repositories": [_repo("acme/a")]},
    None,
], ids=["a-list", "no-count", "count-a-string", "count-a-boolean", "count-negative",
        "repositories-not-a-list", "count-over-the-bound", "null"])
def test_an_answer_of_the_wrong_shape_is_a_clear_error(page: Any) -> None:
    with pytest.raises(PublishError, match=r"listing acme's repositories \(the App installation"):
        _list([page])


def test_a_listing_that_never_ends_stops_at_the_page_bound() -> None:
    server = _answering([{"total_count": 1, "repositories": [_repo("acme/a")]}], endless=True)
    try:
        api = gh.GitHubApi(server.url, gh.StaticToken("t"), retries=0)
        with pytest.raises(PublishError, match=f"more than {MAX_PAGES * 100}"):
            list_repositories(api, "acme", installation=True)
    finally:
        server.stop()
    assert len(server.seen) == MAX_PAGES


# --- the listing, for any organisation and any grant ---------------------------------------------

_REPOS = st.lists(st.tuples(st.sampled_from(["acme", "other"]),
                            st.text("abcxyz-", min_size=1, max_size=4).filter(
                                lambda n: n not in (".", "..")),
                            st.booleans(), st.booleans()),  # private, granted
                  max_size=8, unique_by=lambda r: (r[0], r[1].lower()))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(repos=_REPOS, select=st.booleans())
def test_an_installation_lists_exactly_the_organisation_s_repositories_it_was_granted(
        github: GitHubServer, app_key: Any, repos: list[tuple[str, str, bool, bool]],
        select: bool) -> None:
    github.repos.clear()
    github.installations[INSTALLATION] = (4242, "acme/anchor")  # on the `acme` account
    github.selected.pop(INSTALLATION, None)
    if select:
        github.selected[INSTALLATION] = {f"{o}/{n}" for o, n, _, granted in repos if granted}
    for owner, name, private, _ in repos:
        github.create_repo(f"{owner}/{name}", {"x": b"x\n"}).private = private
    api = gh.GitHubApi(github.url, gh.AppToken(4242, app_key, "", github.url, INSTALLATION),
                       retries=0)
    listed = [r.full_name for r in list_repositories(api, "acme", installation=True)]
    expected = sorted((f"{o}/{n}" for o, n, _, granted in repos
                       if o == "acme" and (granted or not select)), key=str.lower)
    assert listed == expected


@pytest.fixture
def app_key(github: GitHubServer) -> str:
    """App 4242's private key (PEM), its public half known to the contract server."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    github.apps[4242] = key.public_key()
    gh._INSTALLATION_TOKENS.clear()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_grant_withdrawn_during_the_run_fails_that_repository_alone(app_org: Org) -> None:
    """Listed, then taken from the App before its write: GitHub refuses the write (403), and
    that repository alone fails, saying so; the others are published."""
    def withdraw(method: str, template: str) -> None:
        app_org.github.selected[INSTALLATION].discard("acme/svc-a")

    app_org.github.before_write = withdraw
    summary = org_run(load_org_config(app_org.config))
    rows = {r.repo: r for r in summary.repositories}
    assert rows["acme/svc-a"].status == "failed"
    assert "not accessible" in rows["acme/svc-a"].reason.lower()
    assert app_org.github.read("acme/svc-a", "deploy/app.yaml") == app_org.kube()
    assert rows["acme/svc-b"].status == "changed"
    assert summary.partial


def test_an_app_skips_a_granted_archived_repository_and_fork_as_a_token_does(
        app_org: Org) -> None:
    for name in ("acme/old", "acme/forked"):
        app_org.github.create_repo(name, {"tagsync.yaml": REPO_CONFIG.encode(),
                                          "deploy/app.yaml": app_org.kube()})
        app_org.github.selected[INSTALLATION].add(name)
    app_org.github.repos["acme/old"].archived = True
    app_org.github.repos["acme/forked"].fork = True
    summary = org_run(load_org_config(app_org.config))
    rows = {r.repo: r for r in summary.repositories}
    assert (rows["acme/old"].status, rows["acme/old"].reason) == ("skipped", "archived")
    assert rows["acme/forked"].status == "skipped" and "a fork" in rows["acme/forked"].reason
