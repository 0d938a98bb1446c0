"""People and tagsync, interleaved at random, in pull-request mode against the contract server.

A model-based test: a person commits to the base or to the PR branch, closes, merges or
reopens the PR, deletes its branch; the tag moves; tagsync runs, alone or two runs racing (one
held between its read and its write while the other runs). After every step the promises hold:
no person's commit is lost, a proposal a person closed is not opened again, the PR branch is
never level with its base, the newest digest wins, and at most one PR is open per base.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tagsync.config import load_config
from tagsync.errors import PushRejectedError
from tagsync.publish.upkeep import marked
from tagsync.reference import short
from tagsync.run import make_publisher, run
from tests.servers.fixtures import RegistryServer, kernels_yaml, unique_namespace
from tests.servers.github import GitHubServer, _is_ancestor
from tests.test_publish_replan import HeldPublisher

TOKEN = "ghp_modeltoken0123456789abcdefABCDEF"
BRANCH = "tagsync/main/kernels"
CATALOG = 'images:\n  - name: python\n    tags:\n      - ["3.6-ubuntu", "{py}"]\n'


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_people_and_runs_interleaved_keep_every_promise(
        github: GitHubServer, registry: RegistryServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, api: str) -> None:
    github.tokens[TOKEN] = "write"
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    base_ns = unique_namespace("model", request)
    examples = itertools.count()

    class PeopleAndRuns(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(examples)
            self.repo = f"acme/model{n}"
            self.ns = f"{base_ns}x{n}"
            self.seeds = itertools.count()
            self.newest = self.push()
            github.create_repo(self.repo, {"images.yml": CATALOG.format(py="0123456789ab").encode()})
            self.configs = []
            for who in ("a", "b"):
                config = tmp_path / f"{n}-{who}.yaml"
                config.write_text(
                    kernels_yaml(registry, self.ns) + f"github:\n  repo: {self.repo}\n"
                    f"  api_url: {github.url}\n  token: env:TEST_GITHUB_TOKEN\n"
                    f"  mode: pull-request\n  api: {api}\n"
                    f'  message: "tagsync (run {who}): update {{count}} image(s)"\n')
                self.configs.append(config)
            self.people: list[str] = []  # a person's commits on the PR branch still owed to them
            self.declined: set[str] = set()  # proposals a person closed unmerged (since a merge)
            self.seen_prs: set[int] = set()

        # -- helpers ------------------------------------------------------------------------

        def push(self) -> str:
            return short(registry.push(f"{self.ns}/kernel-python", "3.6-ubuntu",
                                       f"{self.ns} {next(self.seeds)}").digest)

        def pulls(self) -> list[Any]:
            return list(github.repos[self.repo].pulls)

        def open_pr(self) -> Any:
            return next((p for p in self.pulls() if p.state == "open"), None)

        def run(self, config: Path, meanwhile: Any = None) -> Any:
            loaded = load_config(config)
            publisher = make_publisher(loaded)
            if meanwhile is not None:
                publisher = HeldPublisher(publisher, meanwhile)  # type: ignore[assignment]
            try:
                return run(loaded, publisher=publisher)
            except PushRejectedError:
                return None  # refused with a reason (a person's branch): allowed, never a loss

        # -- steps ----------------------------------------------------------------------------

        @rule()
        def tag_moves(self) -> None:
            self.newest = self.push()

        @rule(which=st.sampled_from([0, 1]))
        def tagsync_runs(self, which: int) -> None:
            summary = self.run(self.configs[which])
            event(f"run: {summary.pull_request_action if summary else 'refused'}")
            self.check_newest(summary)

        @rule()
        def two_runs_race(self) -> None:
            self.run(self.configs[0], meanwhile=lambda: self.run(self.configs[1]))

        @rule()
        def person_commits_to_base(self) -> None:
            github.commit_directly(self.repo, {"OTHER.md": f"{next(self.seeds)}\n".encode()})

        @precondition(lambda self: self.open_pr() is not None)
        @rule()
        def person_commits_to_pr(self) -> None:
            sha = github.commit_directly(self.repo, {"NOTES.md": f"{next(self.seeds)}\n".encode()},
                                         "a reviewer's fix", branch=BRANCH)
            self.people.append(sha)

        @precondition(lambda self: self.open_pr() is not None)
        @rule()
        def person_closes_pr(self) -> None:
            pr = self.open_pr()
            pr.state = "closed"
            proposal = marked(pr.body, "proposal")
            if proposal and not self.people:
                self.declined.add(proposal)

        @precondition(lambda self: self.open_pr() is not None)
        @rule()
        def person_merges_pr(self) -> None:
            github.merge(self.repo, self.open_pr().number)
            self.people.clear()  # their commits are in the base now
            self.declined.clear()

        @precondition(lambda self: any(p.state == "closed" and not p.merged
                                       and p.closed_because is None for p in self.pulls())
                      and self.open_pr() is None
                      and github.head(self.repo, BRANCH) is not None)
        @rule()
        def person_reopens_pr(self) -> None:
            pr = next(p for p in reversed(self.pulls()) if p.state == "closed" and not p.merged)
            pr.state = "open"
            self.declined.discard(marked(pr.body, "proposal") or "")

        @precondition(lambda self: github.head(self.repo, BRANCH) is not None)
        @rule()
        def person_deletes_branch(self) -> None:
            repo = github.repos[self.repo]
            github._set_ref(repo, f"refs/heads/{BRANCH}".encode(), None)
            self.people.clear()  # a person's own decision to drop them

        # -- promises -------------------------------------------------------------------------

        def check_newest(self, summary: Any) -> None:
            """A run that opened, updated or found its PR current leaves the newest digest there."""
            if summary is None or summary.pull_request_action not in ("opened", "updated",
                                                                      "unchanged"):
                return
            if github.head(self.repo, BRANCH) is None:
                return
            assert self.newest.encode() in github.read(self.repo, "images.yml", BRANCH)

        @invariant()
        def no_persons_commit_is_lost(self) -> None:
            head = github.head(self.repo, BRANCH)
            for sha in self.people:
                assert head is not None and _is_ancestor(github.repos[self.repo].git,
                                                         sha.encode(), head.encode())

        @invariant()
        def a_declined_proposal_is_never_opened_again(self) -> None:
            for pr in self.pulls():
                if pr.number in self.seen_prs:
                    continue
                self.seen_prs.add(pr.number)
                assert marked(pr.body, "proposal") not in self.declined

        @invariant()
        def the_pr_branch_is_never_level_with_its_base(self) -> None:
            assert all(p.closed_because != "head reset to the base" for p in self.pulls())

        @invariant()
        def at_most_one_open_pr_per_base(self) -> None:
            assert len([p for p in self.pulls() if p.state == "open"]) <= 1

    PeopleAndRuns.TestCase.settings = settings(
        max_examples=8, stateful_step_count=8, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck))
    PeopleAndRuns.TestCase().runTest()
