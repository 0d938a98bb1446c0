"""The contract server itself: it must refuse what GitHub's spec refuses, or it proves nothing."""

from __future__ import annotations

from typing import Any

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


# --- path parameters ------------------------------------------------------------------------


def _violations(server: GitHubServer) -> list[str]:
    """The violations so far, cleared: each self-test provokes them on purpose."""
    found = list(server.violations)
    server.violations.clear()
    return found


def test_a_path_parameter_outside_its_schema_is_a_violation(server: GitHubServer) -> None:
    r = httpx.get(f"{server.url}/repos/acme/r/pulls/first", headers=HEADERS)
    assert r.status_code == 500
    assert any("path pull_number: 'first' is not an integer" in v for v in _violations(server))


def test_a_ref_that_is_not_heads_or_tags_is_a_violation(server: GitHubServer) -> None:
    httpx.get(f"{server.url}/repos/acme/r/git/ref/main", headers=HEADERS)
    assert any("path ref: 'main' is not heads/<branch>" in v for v in _violations(server))


def test_a_commit_sha_that_is_not_an_object_id_is_a_violation(server: GitHubServer) -> None:
    httpx.get(f"{server.url}/repos/acme/r/git/commits/main", headers=HEADERS)
    assert any("path commit_sha: 'main' is not a full 40-hex object id" in v for v in _violations(server))


def test_a_slash_in_a_single_segment_parameter_matches_no_operation(server: GitHubServer) -> None:
    httpx.get(f"{server.url}/repos/acme/r/extra/git/ref/heads/main", headers=HEADERS)
    assert any("no such operation" in v for v in _violations(server))


# --- throttled answers, gaps and crashes ------------------------------------------------------


def test_a_throttled_exchange_is_still_validated(server: GitHubServer) -> None:
    server.throttle = [(403, {"Retry-After": "0"})]
    httpx.patch(f"{server.url}/repos/acme/r/git/refs/heads/main", headers=HEADERS, json={"force": True})
    assert any("'sha' is a required property" in v for v in _violations(server))


def test_a_throttled_answer_is_githubs_shape(server: GitHubServer) -> None:
    server.throttle = [(429, {"Retry-After": "1"})]
    r = httpx.get(f"{server.url}/repos/acme/r/git/ref/heads/main", headers=HEADERS)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "secondary rate limit" in r.json()["message"]


def test_a_documented_endpoint_the_server_lacks_is_a_violation(server: GitHubServer) -> None:
    r = httpx.get(f"{server.url}/repos/acme/r/branches", headers=HEADERS)
    assert r.status_code == 404
    assert any("does not implement" in v for v in _violations(server))


def test_the_servers_own_crash_is_a_violation(server: GitHubServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("bug in the fake")

    monkeypatch.setattr(server, "_compare", broken)
    r = httpx.get(f"{server.url}/repos/acme/r/compare/main...main", headers=HEADERS)
    assert r.status_code == 500
    assert any("crashed" in v and "ZeroDivisionError" in v for v in _violations(server))


# --- createCommitOnBranch as GitHub runs it ------------------------------------------------------

COMMIT = ("mutation($input: CreateCommitOnBranchInput!) "
          "{ createCommitOnBranch(input: $input) { commit { oid } } }")


def commit_on_branch(server: GitHubServer, changes: dict[str, Any], expected: str | None = None,
                     branch: str = "main") -> dict[str, Any]:
    variables = {"input": {
        "branch": {"repositoryNameWithOwner": "acme/r", "branchName": branch},
        "expectedHeadOid": expected or server.head("acme/r", branch),
        "message": {"headline": "change"}, "fileChanges": changes}}
    r = httpx.post(f"{server.url}/graphql", headers=HEADERS, json={"query": COMMIT, "variables": variables})
    assert r.status_code == 200
    return dict(r.json())


def test_create_commit_on_branch_deletes_files(server: GitHubServer) -> None:
    server.commit_directly("acme/r", {"b.yml": b"b: 2\n"})
    answer = commit_on_branch(server, {"deletions": [{"path": "b.yml"}],
                                       "additions": [{"path": "c.yml", "contents": "YzogMwo="}]})
    assert "errors" not in answer
    with pytest.raises(KeyError):
        server.read("acme/r", "b.yml")
    assert server.read("acme/r", "c.yml") == b"c: 3\n"
    assert server.read("acme/r", "a.yml") == b"a: 1\n"


def test_create_commit_on_branch_refuses_deleting_a_missing_file(server: GitHubServer) -> None:
    head = server.head("acme/r")
    answer = commit_on_branch(server, {"deletions": [{"path": "nope.yml"}]})
    assert "does not exist" in answer["errors"][0]["message"]
    assert server.head("acme/r") == head


def test_create_commit_on_branch_refuses_invalid_base64(server: GitHubServer) -> None:
    head = server.head("acme/r")
    answer = commit_on_branch(server, {"additions": [{"path": "a.yml", "contents": "not base64!"}]})
    assert answer["errors"] and server.head("acme/r") == head
    assert any("not valid Base64" in v for v in _violations(server))


def test_create_commit_on_branch_refuses_a_malformed_object_id(server: GitHubServer) -> None:
    answer = commit_on_branch(server, {"additions": []}, expected="main")
    assert answer["errors"]
    assert any("not a valid GitObjectID" in v for v in _violations(server))


def test_create_commit_on_branch_with_a_stale_head_is_stale_data(server: GitHubServer) -> None:
    old = server.head("acme/r")
    server.commit_directly("acme/r", {"b.yml": b"b\n"})
    answer = commit_on_branch(server, {"additions": []}, expected=old)
    assert answer["errors"][0]["type"] == "STALE_DATA"


# --- refs and pull requests as GitHub ties them ---------------------------------------------------

UPDATE_REFS = "mutation($input: UpdateRefsInput!) { updateRefs(input: $input) { clientMutationId } }"


def _open_pr(server: GitHubServer) -> tuple[str, str]:
    base = server.head("acme/r")
    assert base is not None
    server.repos["acme/r"].git.refs[b"refs/heads/feature"] = base.encode()
    head = server.commit_directly("acme/r", {"b.yml": b"b\n"}, branch="feature")
    r = httpx.post(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                   json={"title": "t", "head": "feature", "base": "main", "body": "b"})
    assert r.status_code == 201, r.text
    return base, head


def test_a_pull_request_with_no_commits_cannot_be_opened(server: GitHubServer) -> None:
    server.repos["acme/r"].git.refs[b"refs/heads/feature"] = server.head("acme/r").encode()  # type: ignore[union-attr]
    r = httpx.post(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                   json={"title": "t", "head": "feature", "base": "main"})
    assert r.status_code == 422 and "No commits between" in r.json()["message"]


def test_resetting_a_pr_head_to_its_base_closes_the_pr_for_good(server: GitHubServer) -> None:
    base, _ = _open_pr(server)
    r = httpx.patch(f"{server.url}/repos/acme/r/git/refs/heads/feature", headers=HEADERS,
                    json={"sha": base, "force": True})
    assert r.status_code == 200
    [pr] = server.repos["acme/r"].pulls
    assert pr.state == "closed" and pr.closed_because == "head reset to the base"
    r = httpx.patch(f"{server.url}/repos/acme/r/pulls/{pr.number}", headers=HEADERS, json={"state": "open"})
    assert r.status_code == 422 and pr.state == "closed"


def test_deleting_a_pr_head_branch_closes_the_pr(server: GitHubServer) -> None:
    _open_pr(server)
    r = httpx.delete(f"{server.url}/repos/acme/r/git/refs/heads/feature", headers=HEADERS)
    assert r.status_code == 204
    assert server.repos["acme/r"].pulls[0].state == "closed"


def test_update_refs_is_a_compare_and_swap(server: GitHubServer) -> None:
    base, head = _open_pr(server)
    repo_id = httpx.post(f"{server.url}/graphql", headers=HEADERS, json={
        "query": "query($o: String!, $n: String!) { repository(owner: $o, name: $n) { id } }",
        "variables": {"o": "acme", "n": "r"}}).json()["data"]["repository"]["id"]
    move = {"name": "refs/heads/feature", "afterOid": base, "beforeOid": base, "force": True}
    r = httpx.post(f"{server.url}/graphql", headers=HEADERS, json={
        "query": UPDATE_REFS, "variables": {"input": {"repositoryId": repo_id, "refUpdates": [move]}}})
    assert r.json()["errors"][0]["type"] == "STALE_DATA"
    assert server.head("acme/r", "feature") == head


def test_a_body_that_is_not_json_is_refused_as_github_does(github: GitHubServer) -> None:
    github.create_repo("acme/json", {"a.txt": b"a\n"})
    resp = httpx.post(f"{github.url}/repos/acme/json/git/refs", content=b"{not json",
                      headers={"Authorization": "Bearer x", "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["message"] == "Problems parsing JSON"
    assert any("not JSON" in v for v in github.violations)
    github.violations.clear()  # the refusal was the point; the fixture's own check stays quiet


# --- GitHub's limits and clocks, as documented -----------------------------------------------------


def _app(server: GitHubServer) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.apps[4242] = key.public_key()
    server.installations[777] = (4242, "acme/r")
    return key


@pytest.mark.parametrize(("iat", "exp"), [(-1000, -500), (300, 840), (-60, 660)],
                         ids=["expired", "issued-in-the-future", "over-ten-minutes-ahead"])
def test_an_app_jwt_window_is_absolute_against_githubs_clock(server: GitHubServer, iat: int,
                                                             exp: int) -> None:
    import time

    import jwt

    key = _app(server)
    now = int(time.time())
    token = jwt.encode({"iat": now + iat, "exp": now + exp, "iss": "4242"}, key, algorithm="RS256")
    r = httpx.post(f"{server.url}/app/installations/777/access_tokens", json={},
                   headers={**HEADERS, "Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text


def test_an_app_jwt_within_the_window_is_taken(server: GitHubServer) -> None:
    import time

    import jwt

    key = _app(server)
    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "4242"}, key, algorithm="RS256")
    r = httpx.post(f"{server.url}/app/installations/777/access_tokens", json={},
                   headers={**HEADERS, "Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text


def test_contents_over_one_megabyte_come_without_content(server: GitHubServer) -> None:
    big = b"x" * (1024 * 1024 + 1)
    server.commit_directly("acme/r", {"big.yml": big})
    body = httpx.get(f"{server.url}/repos/acme/r/contents/big.yml", headers=HEADERS).json()
    assert (body["content"], body["encoding"], body["size"]) == ("", "none", len(big))


def test_a_recursive_tree_over_the_limit_is_truncated(server: GitHubServer) -> None:
    server.commit_directly("acme/r", {"d/b.yml": b"b\n", "d/c.yml": b"c\n"})
    server.tree_limit = 3
    body = httpx.get(f"{server.url}/repos/acme/r/git/trees/main", params={"recursive": "1"},
                     headers=HEADERS).json()
    assert body["truncated"] is True and len(body["tree"]) == 3


def test_a_second_open_pull_request_from_one_branch_is_refused(server: GitHubServer) -> None:
    _open_pr(server)
    r = httpx.post(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                   json={"title": "again", "head": "feature", "base": "main"})
    assert r.status_code == 422 and "already exists" in r.json()["message"]


def test_pull_requests_list_newest_first_with_their_merge_state(server: GitHubServer) -> None:
    _open_pr(server)
    [pr] = server.repos["acme/r"].pulls
    server.merge("acme/r", pr.number)
    [listed] = httpx.get(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                         params={"state": "all", "base": "main"}).json()
    assert listed["state"] == "closed" and listed["merged_at"] is not None
    assert httpx.get(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                     params={"state": "all", "base": "other"}).json() == []


def test_a_pr_no_longer_merges_once_the_base_changed_its_file_otherwise(server: GitHubServer) -> None:
    _open_pr(server)  # the PR adds b.yml
    [pr] = server.repos["acme/r"].pulls

    def mergeable() -> Any:
        return httpx.get(f"{server.url}/repos/acme/r/pulls/{pr.number}", headers=HEADERS).json()[
            "mergeable"]

    server.commit_directly("acme/r", {"c.yml": b"c\n"})
    assert mergeable() is True  # the base moved, elsewhere
    server.commit_directly("acme/r", {"b.yml": b"not the PR's b\n"})
    assert mergeable() is False


# --- a body or title over GitHub's limit is refused whole, for pull requests as for issues ------


def test_a_pull_request_body_over_the_limit_cannot_be_opened(server: GitHubServer) -> None:
    server.repos["acme/r"].git.refs[b"refs/heads/feature"] = server.head("acme/r").encode()  # type: ignore[union-attr]
    server.commit_directly("acme/r", {"b.yml": b"b\n"}, branch="feature")
    r = httpx.post(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                   json={"title": "t", "head": "feature", "base": "main",
                         "body": "x" * (server.body_limit + 1)})
    assert r.status_code == 422 and "body is too long" in r.json()["message"]
    assert server.repos["acme/r"].pulls == []


def test_a_pull_request_body_at_the_limit_is_taken(server: GitHubServer) -> None:
    _open_pr(server)
    [pr] = server.repos["acme/r"].pulls
    r = httpx.patch(f"{server.url}/repos/acme/r/pulls/{pr.number}", headers=HEADERS,
                    json={"body": "é" * server.body_limit})  # characters, not bytes
    assert r.status_code == 200 and len(pr.body) == server.body_limit


def test_a_pull_request_edit_over_the_body_limit_changes_nothing(server: GitHubServer) -> None:
    _open_pr(server)
    [pr] = server.repos["acme/r"].pulls
    r = httpx.patch(f"{server.url}/repos/acme/r/pulls/{pr.number}", headers=HEADERS,
                    json={"title": "new", "body": "x" * (server.body_limit + 1)})
    assert r.status_code == 422 and "body is too long" in r.json()["message"]
    assert (pr.title, pr.body) == ("t", "b")


def test_a_pull_request_title_over_the_limit_is_refused(server: GitHubServer) -> None:
    _open_pr(server)
    [pr] = server.repos["acme/r"].pulls
    r = httpx.patch(f"{server.url}/repos/acme/r/pulls/{pr.number}", headers=HEADERS,
                    json={"title": "t" * (server.title_limit + 1)})
    assert r.status_code == 422 and "title is too long" in r.json()["message"]
    assert pr.title == "t"


def test_an_issue_title_over_the_limit_is_refused(server: GitHubServer) -> None:
    r = httpx.post(f"{server.url}/repos/acme/r/issues", headers=HEADERS,
                   json={"title": "t" * (server.title_limit + 1), "body": "b"})
    assert r.status_code == 422 and server.repos["acme/r"].issues == []


def test_a_comment_over_the_body_limit_is_refused(server: GitHubServer) -> None:
    _open_pr(server)
    [pr] = server.repos["acme/r"].pulls
    r = httpx.post(f"{server.url}/repos/acme/r/issues/{pr.number}/comments", headers=HEADERS,
                   json={"body": "x" * (server.body_limit + 1)})
    assert r.status_code == 422 and pr.comments == []


def test_a_pull_request_title_over_the_limit_cannot_be_opened(server: GitHubServer) -> None:
    server.repos["acme/r"].git.refs[b"refs/heads/feature"] = server.head("acme/r").encode()  # type: ignore[union-attr]
    server.commit_directly("acme/r", {"b.yml": b"b\n"}, branch="feature")
    r = httpx.post(f"{server.url}/repos/acme/r/pulls", headers=HEADERS,
                   json={"title": "t" * (server.title_limit + 1), "head": "feature", "base": "main"})
    assert r.status_code == 422 and "title is too long" in r.json()["message"]
    assert server.repos["acme/r"].pulls == []

# --- issues: listed a page at a time, in creation order, filtered by label ---------------------


def _issues(server: GitHubServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/repos/acme/r/issues", headers=HEADERS, params=params)


def test_issues_list_newest_first_a_page_at_a_time_with_a_link_to_the_next(
        server: GitHubServer) -> None:
    numbers = [server.open_issue("acme/r", f"i{n}", "").number for n in range(250)]
    first = _issues(server, state="all", per_page="100")
    assert [i["number"] for i in first.json()] == numbers[::-1][:100]
    assert 'rel="next"' in first.headers["link"] and "page=2" in first.headers["link"]
    last = _issues(server, state="all", per_page="100", page="3")
    assert [i["number"] for i in last.json()] == numbers[::-1][200:]
    assert "link" not in last.headers
    assert len(_issues(server, state="all", per_page="500").json()) == 100  # GitHub's cap


def test_issues_list_oldest_first_when_asked(server: GitHubServer) -> None:
    numbers = [server.open_issue("acme/r", f"i{n}", "").number for n in range(3)]
    listed = _issues(server, state="all", sort="created", direction="asc").json()
    assert [i["number"] for i in listed] == numbers


def test_issues_list_filters_by_every_label_named_pull_requests_included(
        server: GitHubServer) -> None:
    both = server.open_issue("acme/r", "both", "", labels=("a", "b"))
    server.open_issue("acme/r", "only a", "", labels=("a",))
    server.open_issue("acme/r", "none", "")
    _open_pr(server)
    [pr] = server.repos["acme/r"].pulls
    pr.labels = ["a", "b"]
    listed = _issues(server, state="all", labels="a,b").json()
    assert [i["number"] for i in listed] == [pr.number, both.number]
    assert "pull_request" in listed[0] and [x["name"] for x in listed[1]["labels"]] == ["a", "b"]


def test_an_issue_s_labels_are_set_when_opened_replaced_by_an_edit_and_added_to(
        server: GitHubServer) -> None:
    made = httpx.post(f"{server.url}/repos/acme/r/issues", headers=HEADERS,
                      json={"title": "t", "body": "b", "labels": ["x"]}).json()
    [issue] = server.repos["acme/r"].issues
    assert [x["name"] for x in made["labels"]] == ["x"] and issue.labels == ["x"]
    httpx.post(f"{server.url}/repos/acme/r/issues/{issue.number}/labels", headers=HEADERS,
               json={"labels": ["y"]})
    assert issue.labels == ["x", "y"]
    httpx.patch(f"{server.url}/repos/acme/r/issues/{issue.number}", headers=HEADERS,
                json={"labels": ["z"]})
    assert issue.labels == ["z"]
    assert server.violations == []


def test_an_issue_order_the_server_does_not_model_is_a_violation(server: GitHubServer) -> None:
    _issues(server, sort="comments")
    assert any("sort=comments" in v for v in server.violations)
    server.violations.clear()


def test_an_issue_listing_parameter_outside_the_spec_is_a_violation(server: GitHubServer) -> None:
    _issues(server, label="x")  # `labels`
    assert any("'label' is not in the spec" in v for v in server.violations)
    server.violations.clear()


# --- an App installation's reach: "all repositories" or "only select repositories" ------------------


def _installation_token(server: GitHubServer, selected: set[str] | None = None) -> dict[str, str]:
    """Headers with a token of installation 777 (on `acme`), granted `selected` alone if given."""
    import time

    import jwt

    key = _app(server)
    if selected is not None:
        server.selected[777] = selected
    now = int(time.time())
    app_jwt = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "4242"}, key, algorithm="RS256")
    r = httpx.post(f"{server.url}/app/installations/777/access_tokens", json={},
                   headers={**HEADERS, "Authorization": f"Bearer {app_jwt}"})
    assert r.status_code == 201, r.text
    return {**HEADERS, "Authorization": f"token {r.json()['token']}"}


def test_installation_repositories_refuses_a_token_that_is_not_an_installations(
        server: GitHubServer) -> None:
    r = httpx.get(f"{server.url}/installation/repositories", headers=HEADERS)
    assert r.status_code == 403
    assert "installation access token" in r.json()["message"]


def test_installation_repositories_lists_only_the_selected_ones_paged(server: GitHubServer) -> None:
    for name in ("acme/a", "acme/b", "acme/not-granted"):
        server.create_repo(name, {"x": b"x\n"})
    headers = _installation_token(server, {"acme/a", "acme/b"})
    first = httpx.get(f"{server.url}/installation/repositories", headers=headers,
                      params={"per_page": "1"})
    assert first.status_code == 200
    assert 'rel="next"' in first.headers["link"]
    body = first.json()
    assert (body["total_count"], body["repository_selection"]) == (2, "selected")
    second = httpx.get(f"{server.url}/installation/repositories", headers=headers,
                       params={"per_page": "1", "page": "2"})
    assert "link" not in second.headers
    names = [r["full_name"] for r in body["repositories"] + second.json()["repositories"]]
    assert names == ["acme/a", "acme/b"]
    assert body["repositories"][0]["owner"]["login"] == "acme"


def test_an_installation_on_all_repositories_sees_its_accounts_only(server: GitHubServer) -> None:
    server.create_repo("other/x", {"x": b"x\n"})
    headers = _installation_token(server)
    body = httpx.get(f"{server.url}/installation/repositories", headers=headers).json()
    assert [r["full_name"] for r in body["repositories"]] == ["acme/r"]
    assert body["repository_selection"] == "all"


def test_a_public_repository_not_granted_reads_but_refuses_writes(server: GitHubServer) -> None:
    server.create_repo("acme/public", {"x": b"x\n"})
    headers = _installation_token(server, {"acme/r"})
    read = httpx.get(f"{server.url}/repos/acme/public/contents/x", headers=headers)
    assert read.status_code == 200
    write = httpx.post(f"{server.url}/repos/acme/public/git/refs", headers=headers,
                       json={"ref": "refs/heads/b", "sha": server.head("acme/public")})
    assert write.status_code == 403
    assert write.json()["message"] == "Resource not accessible by integration"
    assert server.head("acme/public", "b") is None


def test_a_private_repository_not_granted_does_not_exist_for_the_installation(
        server: GitHubServer) -> None:
    server.create_repo("acme/secret", {"x": b"x\n"}).private = True
    headers = _installation_token(server, {"acme/r"})
    assert httpx.get(f"{server.url}/repos/acme/secret/contents/x",
                     headers=headers).status_code == 404
    query = '{ repository(owner: "acme", name: "secret") { nameWithOwner } }'
    body = httpx.post(f"{server.url}/graphql", headers=headers,
                      json={"query": query, "variables": {}}).json()
    assert body["data"]["repository"] is None
    assert body["errors"][0]["type"] == "NOT_FOUND"


def test_the_org_listing_shows_an_installation_public_repositories_it_was_not_granted(
        server: GitHubServer) -> None:
    """GitHub's `/orgs/{org}/repos` is every repository the caller can *see*: for an installation
    on selected repositories, that is also the org's public ones it cannot write."""
    server.create_repo("acme/public", {"x": b"x\n"})
    server.create_repo("acme/secret", {"x": b"x\n"}).private = True
    headers = _installation_token(server, {"acme/r"})
    body = httpx.get(f"{server.url}/orgs/acme/repos", headers=headers).json()
    assert [r["full_name"] for r in body] == ["acme/public", "acme/r"]
