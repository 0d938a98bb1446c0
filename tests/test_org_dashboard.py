"""The organisation's dashboard issue is found however busy its repository is, and never opened
twice: found by its label (one request), else among every issue oldest first, else not opened
when the repository has more issues than tagsync examines."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tagsync.org import dashboard
from tagsync.org.config import load_org_config
from tagsync.org.dashboard import LABEL, marker, update_issue
from tagsync.org.run import org_run
from tagsync.publish.github import GitHubApi, StaticToken
from tests import test_org_run
from tests.servers.github import GitHubServer, Issue
from tests.test_org_run import Org

org = test_org_run.org  # the fixture: an organisation on the contract server and a registry


def _with_dashboard(org: Org) -> None:
    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    org.config.write_text(org.config.read_text() + "dashboard: {repo: acme/ops}\n")


def _busy(org: Org, n: int) -> None:
    for i in range(n):
        org.github.open_issue("acme/ops", f"issue {i}", "words")


def _listings(org: Org) -> int:
    return sum(h.method == "GET" and h.path == "/repos/acme/ops/issues" for h in org.github.hits)


def _dashboards(org: Org) -> list[int]:
    return [i.number for i in org.github.repos["acme/ops"].issues if marker("acme") in i.body]


def test_a_dashboard_behind_more_than_a_hundred_newer_issues_is_updated_in_place(org: Org) -> None:
    _with_dashboard(org)
    org_run(load_org_config(org.config))
    [number] = _dashboards(org)
    _busy(org, 150)
    org.github.create_repo("acme/broken", {"tagsync.yaml": b"catalogs: 3\n"})
    before = _listings(org)
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard == f"dashboard acme/ops#{number} updated"
    assert _dashboards(org) == [number]
    assert _listings(org) - before == 1  # found by its label, whatever the issues around it


def test_a_dashboard_opened_by_tagsync_carries_its_label(org: Org) -> None:
    _with_dashboard(org)
    org_run(load_org_config(org.config))
    [issue] = org.github.repos["acme/ops"].issues
    assert issue.labels == [LABEL]


def test_an_unlabelled_dashboard_behind_many_issues_is_found_and_labelled_once(org: Org) -> None:
    """A dashboard opened before the label (or one a person unlabelled): found among every
    issue, oldest first, and given the label so that the next run finds it at once."""
    _with_dashboard(org)
    _busy(org, 120)
    old = org.github.open_issue("acme/ops", "tagsync", marker("acme") + "\nold table\n")
    _busy(org, 150)
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard == f"dashboard acme/ops#{old.number} updated"
    assert _dashboards(org) == [old.number] and old.labels == [LABEL]
    assert "acme/svc-a" in old.body
    before = _listings(org)
    org_run(load_org_config(org.config))
    assert _listings(org) - before == 1


def test_a_dashboard_that_cannot_be_labelled_is_still_updated_and_says_so(org: Org) -> None:
    _with_dashboard(org)
    old = org.github.open_issue("acme/ops", "tagsync", marker("acme") + "\nold table\n")
    org.github.faults["POST /repos/{owner}/{repo}/issues/{issue_number}/labels"] = 422
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard is not None
    assert summary.dashboard.startswith(f"dashboard acme/ops#{old.number} updated (not labelled")
    assert "acme/svc-a" in old.body and old.labels == [] and _dashboards(org) == [old.number]


def test_a_closed_dashboard_behind_many_issues_stays_closed_and_alone(org: Org) -> None:
    _with_dashboard(org)
    old = org.github.open_issue("acme/ops", "tagsync", marker("acme") + "\nold\n", state="closed")
    _busy(org, 150)
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard is not None and "left closed" in summary.dashboard
    assert _dashboards(org) == [old.number] and old.body == marker("acme") + "\nold\n"


def test_a_later_labelled_copy_of_the_dashboard_is_never_taken_for_it(org: Org) -> None:
    _with_dashboard(org)
    org_run(load_org_config(org.config))
    [real] = org.github.repos["acme/ops"].issues
    copy = org.github.open_issue("acme/ops", "look", real.body + "\n[login](https://evil)\n",
                                 labels=(LABEL,), state="closed")
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard in (f"dashboard acme/ops#{real.number} updated",
                                 f"dashboard acme/ops#{real.number} already current")
    assert "evil" in copy.body and copy.state == "closed"


def test_more_issues_than_examined_and_no_labelled_dashboard_opens_none(
        org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard may be among the issues not examined: a second one is never opened."""
    monkeypatch.setattr(dashboard, "MAX_PAGES", 2)
    _with_dashboard(org)
    _busy(org, 250)
    summary = org_run(load_org_config(org.config))
    assert summary.dashboard is not None and summary.dashboard.startswith("dashboard not updated")
    assert LABEL in summary.dashboard and "more than 200 issues" in summary.dashboard
    assert _dashboards(org) == []
    assert {r.repo: r.status for r in summary.repositories}["acme/svc-a"] == "changed"


# --- whatever people do with the repository's issues ---------------------------------------------


def test_whatever_people_do_with_issues_a_second_dashboard_is_never_opened(
        github: GitHubServer) -> None:
    """People open issues by the hundred, copy the marker (labelled or not, open or closed),
    unlabel, close and reopen the dashboard, between runs: tagsync opens a dashboard only where
    no issue carries the marker, so at most one ever, and never writes to a later copy while
    the dashboard keeps its label."""
    github.tokens["ghp_dashboard"] = "write"
    api = GitHubApi(github.url, StaticToken("ghp_dashboard"), retries=0)
    tag = marker("acme")
    names = itertools.count()

    class People(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.repo = f"acme/ops-{next(names)}"
            github.create_repo(self.repo, {"README.md": b"ops\n"})
            self.opened: list[Issue] = []  # by tagsync
            self.copies: dict[int, str] = {}  # later copies of the marker, by number: their body
            self.runs = 0

        def issues(self) -> list[Issue]:
            return github.repos[self.repo].issues

        @rule(n=st.integers(1, 150))
        def people_open_issues(self, n: int) -> None:
            for _ in range(n):
                github.open_issue(self.repo, "an issue", "words")

        @rule(label=st.booleans(), closed=st.booleans())
        def someone_copies_the_marker(self, label: bool, closed: bool) -> None:
            copy = github.open_issue(self.repo, "look", f"{tag}\n[login](https://evil)\n",
                                     labels=(LABEL,) if label else (),
                                     state="closed" if closed else "open")
            if self.opened:
                self.copies[copy.number] = copy.body

        @rule()
        def someone_unlabels_the_dashboard(self) -> None:
            for issue in self.opened:
                issue.labels = [x for x in issue.labels if x != LABEL]

        @rule()
        def someone_closes_or_reopens_the_dashboard(self) -> None:
            for issue in self.opened:
                issue.state = "open" if issue.state == "closed" else "closed"

        @rule()
        def a_run(self) -> None:
            before = {i.number for i in self.issues()}
            carried = any(tag in i.body for i in self.issues())
            labelled = bool(self.opened) and LABEL in self.opened[0].labels
            self.runs += 1
            said = update_issue(api, self.repo, "acme", f"{tag}\nrun {self.runs}\n", "tagsync")
            new = [i for i in self.issues() if i.number not in before]
            assert not (new and carried), said
            self.opened += new
            if labelled:
                assert all(self.copies[i.number] == i.body for i in self.issues()
                           if i.number in self.copies)

        @invariant()
        def at_most_one_dashboard_is_ever_opened(self) -> None:
            assert len(self.opened) <= 1

    run_state_machine_as_test(People, settings=settings(max_examples=25, stateful_step_count=8,
                                                        deadline=None))


@pytest.mark.parametrize("lie", ["not-a-list", "endless-pages"])
def test_a_lying_issue_listing_opens_no_dashboard(
        lie: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing that is no list, or a `Link` to a next page that never ends: the dashboard is
    not updated (said), and no issue is opened on the strength of it."""
    import json
    from typing import Any

    from tagsync.errors import PublishError
    from tests.servers.fixtures import serve_wsgi

    monkeypatch.setattr(dashboard, "MAX_PAGES", 3)
    asked: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        asked.append(environ["REQUEST_METHOD"])
        body = json.dumps({"message": "ok"} if lie == "not-a-list" else []).encode()
        start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                         ("Link", '<http://127.0.0.1:1/next>; rel="next"')])
        return [body]

    server = serve_wsgi(app)
    try:
        api = GitHubApi(server.url, StaticToken("t"), retries=0)
        with pytest.raises(PublishError, match="finding the dashboard"):
            update_issue(api, "acme/ops", "acme", marker("acme"), "t")
    finally:
        server.stop()
    assert set(asked) == {"GET"} and len(asked) <= 3
