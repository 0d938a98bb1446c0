"""One repository's share of an organisation's run: its time in each step, its GitHub requests
and the registry questions newly asked for it. A repository past its share fails alone, saying
which share and which setting; the others still run. Time is a fake clock the contract server
moves (a slow GitHub for one repository), never a measured duration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tagsync.errors import ConfigError, ShareSpentError
from tagsync.org.config import load_org_config, parse_org_config, repo_config
from tagsync.org.run import org_run
from tagsync.org.share import MIN_SECONDS, UNBOUNDED_SECONDS, Share, step_seconds
from tests.servers.github import GitHubServer
from tests.test_org_run import REPO_CONFIG, Org, org  # noqa: F401  (the fixture)


class Clock:
    """The run's clock: it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def slow(github: GitHubServer, clock: Clock, repo: str, seconds: float, *,
         writes_only: bool = False) -> None:
    """GitHub takes `seconds` (on `clock`) to answer each request about `repo`."""
    dispatch = github._dispatch

    def slowed(method: str, path: str, *rest: Any) -> Any:
        if path.startswith(f"/repos/{repo}/") and not (writes_only and method == "GET"):
            clock.now += seconds
        return dispatch(method, path, *rest)

    github._dispatch = slowed  # type: ignore[method-assign]


def _with(org: Org, text: str) -> Any:  # noqa: F811
    org.config.write_text(org.config.read_text() + text)
    return load_org_config(org.config)


def _rows(summary: Any) -> dict[str, Any]:
    return {r.repo: r for r in summary.repositories}


# --- a step's share of the time: a pure function ----------------------------------------------


def test_a_set_max_duration_is_every_step_s_share() -> None:
    assert step_seconds(45.0, 10.0, 100) == 45.0
    assert step_seconds(45.0, None, 1) == 45.0


def test_without_a_setting_a_step_gets_its_even_share_of_the_time_left() -> None:
    assert step_seconds(None, 600.0, 4) == 150.0
    assert step_seconds(None, 600.0, 1) == 600.0


def test_a_step_gets_at_least_the_least_share_even_when_the_run_s_time_is_gone() -> None:
    assert step_seconds(None, 60.0, 100) == MIN_SECONDS
    assert step_seconds(None, -5.0, 3) == MIN_SECONDS


def test_a_run_without_a_bound_still_bounds_each_step() -> None:
    assert step_seconds(None, None, 10) == UNBOUNDED_SECONDS


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing: a busy CI
@given(total=st.floats(min_value=1.0, max_value=10_000.0),
       needs=st.lists(st.floats(min_value=0.0, max_value=20_000.0), min_size=1, max_size=30))
def test_whatever_the_others_need_each_repository_gets_its_even_share(
        total: float, needs: list[float]) -> None:
    """Repositories taking what they need, up to their share: none gets less than the run's
    time divided evenly (or the least share), and the run ends within its time plus what the
    least share grants."""
    n, used = len(needs), 0.0
    for i, need in enumerate(needs):
        share = step_seconds(None, total - used, n - i)
        assert share >= total / n - 1e-6
        used += min(need, share)
    assert used <= max(total, n * MIN_SECONDS) + 1e-6


# --- the share's meters ------------------------------------------------------------------------


def test_the_github_meter_refuses_the_request_past_the_cap() -> None:
    share = Share("acme/x", github_requests=2, registry_questions=10, clock=Clock())
    share.github("reading a")
    share.github("reading b")
    with pytest.raises(ShareSpentError, match=r"GitHub requests \(2; `per_repository"):
        share.github("reading c")
    assert share.requests == 2


def test_the_question_meter_refuses_a_batch_that_would_pass_the_cap() -> None:
    share = Share("acme/x", github_requests=2, registry_questions=3, clock=Clock())
    share.ask(2, "digests")
    with pytest.raises(ShareSpentError, match=r"needs 4 registry questions .*digests"):
        share.ask(2, "digests")
    assert share.questions == 2


def test_a_step_s_time_runs_on_the_injected_clock_and_only_within_the_step() -> None:
    clock = Clock()
    share = Share("acme/x", github_requests=9, registry_questions=9, clock=clock)
    share.check("idle")  # no step under way: no time counts
    share.start("reading its files", 60.0)
    clock.now += 59.0
    share.github("reading a")
    clock.now += 1.0
    with pytest.raises(ShareSpentError, match=r"reading its files took its whole share .*60 s"):
        share.github("reading b")
    share.stop()
    clock.now += 1000.0
    share.check("between steps")


# --- the settings ------------------------------------------------------------------------------


ORG = "organisation: acme\ngithub: {token: env:T}\n"


@pytest.mark.parametrize("text", ["per_repository: {github_requests: 0}\n",
                                  "per_repository: {max_duration: -1}\n",
                                  "per_repository: {registry_questions: many}\n",
                                  "per_repository: {seconds: 3}\n"])
def test_a_share_setting_out_of_range_is_a_config_error_naming_it(text: str) -> None:
    with pytest.raises(ConfigError, match=r"per_repository"):
        parse_org_config(ORG + text, "org.yaml", Path("."))


def test_a_repository_cannot_give_itself_a_bigger_share() -> None:
    with pytest.raises(ConfigError, match="per_repository: a repository's config may not set"):
        repo_config(parse_org_config(ORG, "org.yaml", Path(".")), "acme/x", "main",
                    REPO_CONFIG + "per_repository: {github_requests: 100000}\n", "acme/x:tagsync.yaml")


# --- in a run: the others still get theirs ----------------------------------------------------


def test_a_repository_slow_to_read_fails_alone_when_its_time_is_spent(org: Org) -> None:  # noqa: F811
    clock = Clock()
    org.github.create_repo("acme/slow", {"tagsync.yaml": REPO_CONFIG.encode(),
                                         "deploy/app.yaml": org.kube()})
    slow(org.github, clock, "acme/slow", 100.0)
    summary = org_run(_with(org, "per_repository: {max_duration: 60}\n"), clock=clock)
    rows = _rows(summary)
    assert rows["acme/slow"].status == "failed"
    assert "reading its files took its whole share of the run (60 s" in rows["acme/slow"].reason
    assert rows["acme/svc-a"].status == rows["acme/svc-b"].status == "changed"
    assert org.github.read("acme/slow", "deploy/app.yaml") == org.kube()


def test_a_slow_publish_fails_alone_and_moves_no_branch(org: Org) -> None:  # noqa: F811
    clock = Clock()
    org.github.create_repo("acme/slow", {"tagsync.yaml": REPO_CONFIG.encode(),
                                         "deploy/app.yaml": org.kube()})
    slow(org.github, clock, "acme/slow", 100.0, writes_only=True)
    head = org.github.head("acme/slow")
    # over REST a commit is several requests (blobs, tree, commit, ref): the first one is slow
    org.config.write_text(org.config.read_text().replace("  token:", "  api: rest\n  token:"))
    summary = org_run(_with(org, "per_repository: {max_duration: 60}\n"), clock=clock)
    rows = _rows(summary)
    assert rows["acme/slow"].status == "failed"
    assert "planning and publishing it took its whole share" in rows["acme/slow"].reason
    assert org.github.head("acme/slow") == head
    assert rows["acme/svc-a"].status == rows["acme/svc-b"].status == "changed"


def test_by_default_a_repository_s_share_comes_from_the_run_s_max_duration(
        org: Org) -> None:  # noqa: F811
    """300 s for three repositories, each read then planned and published: six steps, 50 s
    for the first. The slow one (60 s a request) is stopped after its first request; the rest
    of the run's time is still there for the others and for the registries."""
    clock = Clock()
    org.github.create_repo("acme/slow", {"tagsync.yaml": REPO_CONFIG.encode(),
                                         "deploy/app.yaml": org.kube()})
    slow(org.github, clock, "acme/slow", 60.0)
    rows = _rows(org_run(_with(org, "run: {max_duration: 300}\n"), clock=clock))
    assert rows["acme/slow"].status == "failed" and "(50 s;" in rows["acme/slow"].reason
    assert rows["acme/svc-a"].status == rows["acme/svc-b"].status == "changed"


def test_a_repository_past_its_github_requests_fails_alone(org: Org) -> None:  # noqa: F811
    files = {f"deploy/app-{i:02d}.yaml": org.kube() for i in range(30)}
    org.github.create_repo("acme/big", {"tagsync.yaml": REPO_CONFIG.encode(), **files})
    summary = org_run(_with(org, "per_repository: {github_requests: 20}\n"))
    rows = _rows(summary)
    assert rows["acme/big"].status == "failed"
    assert "GitHub requests (20; `per_repository.github_requests`" in rows["acme/big"].reason
    assert sum(h.path.startswith("/repos/acme/big/") for h in org.github.hits) <= 20
    assert rows["acme/svc-a"].status == rows["acme/svc-b"].status == "changed"
    assert org.github.read("acme/big", "deploy/app-00.yaml") == org.kube()


def test_a_repository_past_its_registry_questions_fails_alone_before_asking(
        org: Org) -> None:  # noqa: F811
    """Explanations are asked per repository (the first that needs one pays for it): two
    images' explanations are more than a share of one; the other repository's single one is
    within its own."""
    web = org.registry.upstream.push(f"{org.ns}/web", "1.0", f"{org.ns} web").digest
    assert web
    both = org.kube() + b"---\n" + org.kube().replace(b"/app:", b"/web:")
    org.github.create_repo("acme/a-two", {"tagsync.yaml": REPO_CONFIG.encode(),
                                          "deploy/app.yaml": both})
    summary = org_run(_with(org, "per_repository: {registry_questions: 1}\n"))
    rows = _rows(summary)
    assert rows["acme/a-two"].status == "failed"
    assert "needs 2 registry questions of its own (explanations)" in rows["acme/a-two"].reason
    assert rows["acme/svc-a"].status == rows["acme/svc-b"].status == "changed"
    assert not [s for s in org.registry.faults.seen if f"/{org.ns}/web/blobs/" in s]


def test_a_spent_share_never_meters_what_comes_after_it(org: Org) -> None:  # noqa: F811
    """The last repository's GitHub share runs out; the dashboard (the organisation's own
    request) is still written."""
    files = {f"deploy/app-{i:02d}.yaml": org.kube() for i in range(30)}
    org.github.create_repo("acme/zz-big", {"tagsync.yaml": REPO_CONFIG.encode(), **files})
    org.github.create_repo("acme/ops", {"README.md": b"ops\n"})
    summary = org_run(_with(org, "per_repository: {github_requests: 20}\n"
                                 "dashboard: {repo: acme/ops}\n"))
    assert _rows(summary)["acme/zz-big"].status == "failed"
    [issue] = org.github.repos["acme/ops"].issues
    assert "acme/zz-big" in issue.body
    assert summary.dashboard is not None and "opened" in summary.dashboard


def test_a_share_spent_while_onboarding_fails_that_repository_alone(org: Org) -> None:  # noqa: F811
    org.github.create_repo("acme/new-svc", {f"k8s/app-{i}.yaml": org.kube() for i in range(3)})
    summary = org_run(_with(org, "onboarding: true\nper_repository: {github_requests: 1}\n"))
    rows = _rows(summary)
    assert rows["acme/new-svc"].status == "failed"
    assert "per_repository.github_requests" in rows["acme/new-svc"].reason
    assert org.github.repos["acme/new-svc"].pulls == []



def test_a_re_plan_asks_its_questions_again_within_the_same_share(org: Org) -> None:  # noqa: F811
    """A person's commit lands while svc-a publishes: the re-plan asks the registries afresh
    (the moved branch may name newer images), and those questions count against svc-a's share,
    not against nobody's."""
    def person_commits(method: str, what: str) -> None:
        org.github.commit_directly("acme/svc-a", {"NOTES.md": b"a person's commit\n"})

    org.github.before_write = person_commits
    summary = org_run(_with(org, "per_repository: {registry_questions: 1}\n"))
    rows = _rows(summary)
    assert rows["acme/svc-a"].status == "failed"
    assert "needs 2 registry questions of its own (digests)" in rows["acme/svc-a"].reason
    assert org.github.read("acme/svc-a", "NOTES.md") == b"a person's commit\n"
    assert org.github.read("acme/svc-a", "deploy/app.yaml") == org.kube()
    assert rows["acme/svc-b"].status == "changed"


def test_json_says_what_each_repository_spent_of_its_share(org: Org) -> None:  # noqa: F811
    summary = org_run(_with(org, ""))
    rows = {r["repo"]: r for r in summary.to_dict()["repositories"]}
    spent = rows["acme/svc-b"]["spent"]
    assert spent["github_requests"] > 0 and spent["registry_questions"] == 0  # svc-a explained it
    assert rows["acme/svc-a"]["spent"]["registry_questions"] == 1
    assert rows["acme/no-config"]["spent"] is None
    assert sum(r["spent"]["github_requests"] for r in rows.values() if r["spent"]) \
        < summary.github_requests  # the rest is the organisation's own (listing, configs)


class ShareMachine(RuleBasedStateMachine):
    """Any sequence of steps, requests, rate-limit waits, questions and clock moves: a share
    never lets a request or a question past its caps, refuses for time exactly when a step's
    time is up (a wait: when it would outlast the step), never between steps, and counts only
    what it let through."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.share = Share("acme/x", github_requests=5, registry_questions=7, clock=self.clock)
        self.until: float | None = None
        self.requests = self.questions = 0

    @rule(seconds=st.floats(min_value=0.0, max_value=100.0))
    def start(self, seconds: float) -> None:
        self.share.start("a step", seconds)
        self.until = self.clock.now + seconds

    @rule()
    def stop(self) -> None:
        self.share.stop()
        self.until = None

    @rule(seconds=st.floats(min_value=0.0, max_value=50.0))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    def _late(self) -> bool:
        return self.until is not None and self.clock.now >= self.until

    @rule()
    def github(self) -> None:
        refused = self._late() or self.requests >= 5
        try:
            self.share.github("a request")
        except ShareSpentError:
            assert refused
            return
        assert not refused
        self.requests += 1

    @rule(seconds=st.floats(min_value=0.0, max_value=100.0))
    def rate_limit_wait(self, seconds: float) -> None:
        refused = self.until is not None and seconds >= self.until - self.clock.now
        try:
            self.share.wait(seconds, "a request")
        except ShareSpentError:
            assert refused
            return
        assert not refused

    @rule(count=st.integers(min_value=1, max_value=4))
    def ask(self, count: int) -> None:
        refused = self._late() or self.questions + count > 7
        try:
            self.share.ask(count, "digests")
        except ShareSpentError:
            assert refused
            return
        assert not refused
        self.questions += count

    @invariant()
    def counted_what_it_let_through(self) -> None:
        assert (self.share.requests, self.share.questions) == (self.requests, self.questions)
        assert self.requests <= 5 and self.questions <= 7


ShareMachine.TestCase.settings = settings(deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestShareMachine = ShareMachine.TestCase


def _rate_limited_once(github: GitHubServer, repo: str, retry_after: str) -> None:
    """GitHub answers the first request about `repo` with a 429 and Retry-After."""
    dispatch = github._dispatch
    pending = [True]

    def limited(method: str, path: str, *rest: Any) -> Any:
        if path.startswith(f"/repos/{repo}/") and pending:
            pending.clear()
            github.throttle.append((429, {"Retry-After": retry_after}))
        return dispatch(method, path, *rest)

    github._dispatch = limited  # type: ignore[method-assign]


@pytest.mark.parametrize(("retry_after", "slept", "status"), [("45", [], "failed"),
                                                              ("5", [5.0], "changed")])
def test_a_rate_limit_wait_past_the_share_s_end_is_refused_instead_of_slept(
        org: Org, monkeypatch: pytest.MonkeyPatch, retry_after: str,  # noqa: F811
        slept: list[float], status: str) -> None:
    waits: list[float] = []
    monkeypatch.setattr("tagsync.publish.github._sleep", waits.append)
    org.github.create_repo("acme/limited", {"tagsync.yaml": REPO_CONFIG.encode(),
                                            "deploy/app.yaml": org.kube()})
    _rate_limited_once(org.github, "acme/limited", retry_after)
    rows = _rows(org_run(_with(org, "per_repository: {max_duration: 30}\n"), clock=Clock()))
    assert waits == slept
    assert rows["acme/limited"].status == status
    if status == "failed":
        assert "GitHub asked to wait 45 s (a rate limit)" in rows["acme/limited"].reason
    assert rows["acme/svc-a"].status == rows["acme/svc-b"].status == "changed"
