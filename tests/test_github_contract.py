"""The contract server itself: it must refuse what GitHub's spec refuses, or it proves nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.servers.github import GitHubServer

HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
           "Authorization": "Bearer ghp_contract"}


@pytest.fixture
def server(github: GitHubServer) -> GitHubServer:
    github.create_repo("acme/r", {"a.yml": b"a: 1\n"})
    github.tokens["ghp_contract"] = "write"
    return github


def test_a_request_body_outside_the_spec_is_a_violation(server: GitHubServer) -> None:
    r = httpx.patch(f"{server.url}/repos/acme/r/git/refs/heads/main", headers=HEADERS,
                    json={"force": True})  # `sha` is required
    assert r.status_code == 500
    assert any("'sha' is a required property" in v for v in server.violations)
    server.violations.clear()


def test_an_unknown_endpoint_is_a_violation(server: GitHubServer) -> None:
    httpx.get(f"{server.url}/repos/acme/r/not-an-endpoint", headers=HEADERS)
    assert any("no such operation" in v for v in server.violations)
    server.violations.clear()


def test_an_unknown_query_parameter_is_a_violation(server: GitHubServer) -> None:
    httpx.get(f"{server.url}/repos/acme/r/pulls", params={"status": "open"}, headers=HEADERS)
    assert any("'status' is not in the spec" in v for v in server.violations)
    server.violations.clear()


def test_a_graphql_input_field_outside_the_schema_is_a_violation(server: GitHubServer) -> None:
    query = ("mutation($input: CreateCommitOnBranchInput!) "
             "{ createCommitOnBranch(input: $input) { commit { oid } } }")
    bad = {"branch": {"repositoryNameWithOwner": "acme/r", "branchName": "main"},
           "expectedHeadOid": server.head("acme/r"), "message": {"headline": "x"},
           "fileChanges": {"additions": [{"path": "a.yml", "content": "YQ=="}]}}  # `contents`
    httpx.post(f"{server.url}/graphql", headers=HEADERS, json={"query": query, "variables": {"input": bad}})
    assert any("GraphQL variables" in v and "content" in v for v in server.violations)
    server.violations.clear()


def test_a_graphql_field_outside_the_schema_is_a_violation(server: GitHubServer) -> None:
    httpx.post(f"{server.url}/graphql", headers=HEADERS,
               json={"query": "{ viewer { loginName } }", "variables": {}})
    assert any("Cannot query field 'loginName'" in v for v in server.violations)
    server.violations.clear()


def test_missing_api_version_header_is_a_violation(server: GitHubServer) -> None:
    httpx.get(f"{server.url}/repos/acme/r/git/ref/heads/main",
              headers={**HEADERS, "X-GitHub-Api-Version": ""})
    assert any("X-GitHub-Api-Version" in v for v in server.violations)
    server.violations.clear()
