"""The organisation's dashboard issue is found however busy its repository is, and never opened
twice: found by its label (one request), else among every issue oldest first, else not opened
when the repository has more issues than tagsync examines."""

from __future__ import annotations

import pytest

from tagsync.org import dashboard
from tagsync.org.config import load_org_config
from tagsync.org.dashboard import LABEL, marker
from tagsync.org.run import org_run
from tests import test_org_run
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
