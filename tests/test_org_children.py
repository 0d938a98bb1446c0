"""A child of the Step Functions fan-out lists nothing: its repository, default branch and config
path come from the Map's item that Discover stored, and the item (read back from S3: input like
any other) is admitted only if the org config itself would have selected it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tagsync.aws.handler import handler
from tagsync.org.config import parse_org_config
from tagsync.org.items import Refused, admit
from tests.servers.fixtures import commit_to_ref
from tests.test_org_run import REPO_CONFIG, Org, org  # noqa: F401  (the organisation fixture)
from tests.test_org_statemachine import BUCKET, child_event, steps  # noqa: F401

LISTING = "/orgs/acme/repos"


def _discover(steps: Org) -> dict[str, Any]:  # noqa: F811
    return handler({"tagsync": "org-discover", "bucket": BUCKET, "execution": "run-1"}, None)


def _no_answers() -> str:
    """Stored answers with nothing in them (a child refused before planning needs no more)."""
    import json

    import boto3

    from tagsync.org import answers
    from tagsync.run import _Known

    boto3.client("s3").put_object(Bucket=BUCKET, Key="run-0/answers.json",
                                  Body=json.dumps(answers.dump(_Known())).encode())
    return "run-0/answers.json"


def test_a_child_makes_no_listing_request(steps: Org) -> None:  # noqa: F811
    out = _discover(steps)
    assert any(h.path == LISTING for h in steps.github.hits)  # Discover lists, once
    before = len(steps.github.hits)
    row = handler(child_event(out, "acme/svc-b"), None)
    assert row["status"] == "changed"
    child = steps.github.hits[before:]
    assert child and not any(h.path.startswith("/orgs/") for h in child)
    assert not any(h.path == "/repos/acme/svc-b" for h in child)  # nor asks for the repository


def test_a_child_writes_to_the_default_branch_discover_found(steps: Org) -> None:  # noqa: F811
    steps.github.create_repo("acme/trunk", {"tagsync.yaml": REPO_CONFIG.encode(),
                                            "deploy/app.yaml": steps.kube()}, branch="trunk")
    out = _discover(steps)
    event = child_event(out, "acme/trunk")
    assert event["item"]["branch"] == "trunk"
    assert handler(event, None)["status"] == "changed"
    assert steps.github.read("acme/trunk", "deploy/app.yaml", "trunk") == steps.kube(steps.digest)


ORG = """\
organisation: acme
github: {token: env:T}
repositories: {exclude: ["legacy-*"]}
"""


@pytest.mark.parametrize(("item", "why"), [
    ({"repo": "acme/legacy-x", "branch": "main", "config": "tagsync.yaml"}, "`repositories`"),
    ({"repo": "other/svc-a", "branch": "main", "config": "tagsync.yaml"}, "not a repository of acme"),
    ({"repo": "acme/..", "branch": "main", "config": "tagsync.yaml"}, "not a repository of acme"),
    ({"repo": "acme/svc-a/../legacy-x", "branch": "main", "config": "tagsync.yaml"},
     "not a repository of acme"),
    ({"repo": "acme/svc-a", "branch": "main/../../x", "config": "tagsync.yaml"}, "branch"),
    ({"repo": "acme/svc-a", "branch": "refs/heads/main", "config": "tagsync.yaml"}, "branch"),
    ({"repo": "acme/svc-a", "branch": "b" * 100_000, "config": "tagsync.yaml"}, "branch"),
    ({"repo": "acme/svc-a", "branch": "main", "config": "deploy/app.yaml"}, "`config_paths`"),
    ({"repo": "acme/svc-a", "branch": "main", "config": "../tagsync.yaml"}, "`config_paths`"),
    ({"repo": "acme/svc-a", "branch": "main"}, "not one Discover writes"),
    ({"repo": "acme/svc-a", "branch": 3, "config": "tagsync.yaml"}, "not one Discover writes"),
    ("acme/svc-a", "not one Discover writes"),
])
def test_an_item_the_org_config_would_not_select_is_refused(item: Any, why: str) -> None:
    with pytest.raises(Refused) as caught:
        admit(parse_org_config(ORG, "org.yaml", Path(".")), item)
    assert why in str(caught.value)


def test_an_item_the_org_config_selects_is_admitted_as_written() -> None:
    item = {"repo": "ACME/svc-a", "branch": "release/1.x", "config": ".github/tagsync.yaml"}
    assert admit(parse_org_config(ORG, "org.yaml", Path(".")), item).to_dict() == item


def test_a_child_refuses_an_excluded_repository_before_any_request(
        steps: Org) -> None:  # noqa: F811
    before = len(steps.github.hits)
    row = handler({"tagsync": "org-repo", "repo": "acme/legacy-x", "bucket": BUCKET,
                   "answers": _no_answers(), "item": {"repo": "acme/legacy-x", "branch": "main",
                                                      "config": "tagsync.yaml"}}, None)
    assert row["status"] == "failed" and row["reason"].startswith("refused: ")
    assert steps.github.hits[before:] == []
    assert steps.github.read("acme/legacy-x", "deploy/app.yaml") == steps.kube()


def test_an_item_s_name_reaches_the_summary_without_control_characters(
        steps: Org) -> None:  # noqa: F811
    row = handler({"tagsync": "org-repo", "repo": "x", "bucket": BUCKET, "answers": _no_answers(),
                   "item": {"repo": "acme/\x1b[2Jx", "branch": "main", "config": "tagsync.yaml"}},
                  None)
    assert row["status"] == "failed" and "\x1b" not in row["repo"]


def test_an_execution_started_before_items_carried_a_branch_fails_that_child_saying_why(
        steps: Org) -> None:  # noqa: F811
    row = handler({"tagsync": "org-repo", "repo": "acme/svc-a", "bucket": BUCKET,
                   "answers": _no_answers()}, None)
    assert row == {"repo": "acme/svc-a", "status": "failed", "reason": row["reason"]}
    assert "older tagsync" in row["reason"]


def test_a_config_gone_since_discover_is_skipped_and_never_onboarded(
        steps: Org) -> None:  # noqa: F811
    steps.config.write_text(steps.config.read_text() + "onboarding: true\n")
    out = _discover(steps)
    event = child_event(out, "acme/svc-a")
    repo = steps.github.repos["acme/svc-a"]
    # someone replaced the branch with a tree that has no config
    bare = commit_to_ref(repo.git, {"deploy/app.yaml": steps.kube()}, "no config", b"refs/heads/x")
    steps.github.push_ref("acme/svc-a", bare)
    row = handler(event, None)
    assert row["status"] == "skipped" and "tagsync.yaml" in row["reason"]
    assert repo.pulls == [] and steps.github.writes() == []


def test_the_config_is_read_where_discover_found_it_and_nowhere_else(
        steps: Org) -> None:  # noqa: F811
    """svc-b keeps its config in .github/: an item saying tagsync.yaml finds none there."""
    out = _discover(steps)
    event = child_event(out, "acme/svc-b")
    event["item"] = {**event["item"], "config": "tagsync.yaml"}
    row = handler(event, None)
    assert row["status"] == "skipped" and "no tagsync.yaml on main" in row["reason"]
    assert steps.github.writes() == []
