"""Pull-request mode's executor: observe the PR state, let `upkeep.decide` choose one action,
carry it out through the GitHub publisher's API client and commit builders.

Kept apart from `github` (the API client, the snapshot and push mode): this is where the PR
rules meet GitHub's API (compare-and-swap moves of the PR branch, scratch branches, the PR's
body and upkeep), and `upkeep` is where they are decided.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tagsync.errors import BranchMovedError, CatalogError, PublishError, PushRejectedError
from tagsync.plan import Change
from tagsync.publish import PublishResult
from tagsync.publish.github import (
    _SHAPE_ERRORS,
    GitHubApi,
    GitHubPublisher,
    GitHubSnapshot,
    GraphQLUnavailable,
    PullRequestOptions,
    _http_error,
    _json_of,
    read_file,
)
from tagsync.publish.upkeep import (
    MAX_BODY,
    TRAILER,
    Action,
    ClosedPr,
    OpenPr,
    PrView,
    bounded_title,
    decide,
    is_ours,
    marked,
    marked_files,
    marked_title,
    merge_body,
    pr_body,
    proposal_of,
    size,
    superseded,
)

log = logging.getLogger(__name__)

SCRATCH = "-tagsync-scratch-"  # PR branch + this + unix time + random: GraphQL's commit space
SCRATCH_AGE = 3600.0  # seconds after which a scratch branch is a killed run's leftover

@dataclass(frozen=True)
class PullState:
    """PR mode: the PR branch's head and every PR from it, as read at one moment."""

    head: str | None
    pulls: list[dict[str, Any]]

    def key(self) -> tuple[Any, ...]:
        """What must not change between a run's read and its write."""
        return (self.head, tuple((p.get("number"), p.get("state"), p.get("merged_at") is not None,
                                  (p.get("base") or {}).get("ref")) for p in self.pulls))


@dataclass(frozen=True)
class Owned:
    """Whose commits a PR branch holds beyond the base."""

    mine: bool  # all tagsync's (each carries the trailer)
    person: str  # the first that is not, in words
    contains_base: bool  # the branch already has the base's head

_REPOSITORY_ID = """
query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { id } }
"""

_UPDATE_REFS = """
mutation($input: UpdateRefsInput!) { updateRefs(input: $input) { clientMutationId } }
"""

_AUTO_MERGE = """
mutation($input: EnablePullRequestAutoMergeInput!) {
  enablePullRequestAutoMerge(input: $input) { pullRequest { number } }
}
"""


@dataclass(frozen=True)
class Observed:
    """The decision's input, and what carrying out its action needs besides."""

    view: PrView
    now: PullState
    base: str  # the base head the run planned against
    owned: Owned | None
    open_pr: dict[str, Any] | None  # GitHub's JSON of our open PR
    urls: dict[int, str]  # our PRs' pages, by number


def observe_pulls(pub: GitHubPublisher) -> PullState:
    """Our branch's head and every PR from it (any base, any state), newest first."""
    assert pub.pr is not None
    owner = pub.repo.split("/")[0]
    head = pub._head(pub.pr.branch, missing_ok=True)
    pulls = pub.api.json("GET", f"/repos/{pub.repo}/pulls", "looking for our pull requests",
                         params={"state": "all", "head": f"{owner}:{pub.pr.branch}",
                                 "sort": "created", "direction": "desc", "per_page": 100})
    return PullState(head, [p for p in pulls if isinstance(p, dict)])


class PullRequestMode:
    """One publish in PR mode, on behalf of a GitHub publisher."""

    def __init__(self, pub: GitHubPublisher) -> None:
        assert pub.pr is not None
        self.pub = pub
        self.api: GitHubApi = pub.api
        self.repo: str = pub.repo
        self.branch: str = pub.branch
        self.pr: PullRequestOptions = pub.pr

    @property
    def use_graphql(self) -> bool:
        return self.pub.use_graphql

    @use_graphql.setter
    def use_graphql(self, value: bool) -> None:
        self.pub.use_graphql = value

    def _ownership(self, head: str, base: str) -> Owned:
        """Whose commits the branch has beyond the base: tagsync's carry its trailer."""
        branch = self.pr.branch
        compared = self.api.json("GET", f"/repos/{self.repo}/compare/{base}...{head}",
                                 f"checking who made the commits on {branch}")
        commits = compared.get("commits") or []
        trailer = TRAILER.format(branch=branch)
        person = ""
        for commit in commits:
            text = str((commit.get("commit") or {}).get("message") or "")
            if trailer not in text.splitlines():
                person = (f"commit {str(commit.get('sha'))[:12]} "
                          f"({text.partition(chr(10))[0][:60]!r})")
                break
        total = int(compared.get("total_commits") or 0)
        if not person and total > len(commits):
            person = f"{total} commits, too many to be tagsync's"
        return Owned(not person, person, int(compared.get("behind_by") or 0) == 0)

    def _conflicts(self, pr: dict[str, Any]) -> bool | None:
        """GitHub's word on whether the PR still merges (None while it computes it)."""
        full = self.api.json("GET", f"/repos/{self.repo}/pulls/{pr['number']}",
                             "reading the pull request's mergeability")
        mergeable = full.get("mergeable")
        return None if mergeable is None else not mergeable

    def publish(self, snapshot: GitHubSnapshot, files: dict[str, bytes], message: str,
                changes: Sequence[Change]) -> PublishResult:
        """Observe the PR state, decide one action (`upkeep.decide`), carry it out. What this run
        planned from must still hold when it writes: a branch or PR that changed since the
        snapshot is a moved target (re-plan); the branch then moves by compare-and-swap."""
        seen = snapshot.pulls if snapshot.pulls is not None else observe_pulls(self.pub)
        now = observe_pulls(self.pub) if files else seen
        if now.key() != seen.key():
            raise BranchMovedError(f"{self.pr.branch} or its pull requests changed while we "
                                   "worked; re-planning")
        observed = self._observe(now, snapshot.head, proposal_of(changes) if files else None)
        action = decide(observed.view)
        log.debug("pull request upkeep: %s -> %s", observed.view, action)
        return self._carry_out(action, observed, snapshot, files, message, changes)

    def _observe(self, now: PullState, base: str, desired: str | None) -> Observed:
        """The decision's input from what GitHub holds: our PRs into this base, a foreign one,
        whose commits the branch holds, GitHub's `mergeable`, whether the base caught up."""
        ours = [p for p in now.pulls
                if is_ours(str(p.get("body") or ""), self.pr.branch, self.branch)
                and (p.get("base") or {}).get("ref") == self.branch]
        open_ours = next((p for p in ours if p.get("state") == "open"), None)
        foreign = next((p for p in now.pulls if p.get("state") == "open" and p not in ours), None)
        owned = (self._ownership(now.head, base)
                 if now.head and (open_ours is not None or desired is not None) else None)
        open_pr = None
        if open_ours is not None:
            proposal = marked(str(open_ours.get("body") or ""), "proposal")
            conflicts = (self._conflicts(open_ours)
                         if desired is not None and proposal == desired else None)
            base_has_it = (desired is None and now.head is not None
                           and self._base_has(open_ours, now.head, base))
            open_pr = OpenPr(int(open_ours["number"]), proposal, owned is None or owned.mine,
                             conflicts, base_has_it)
        closed = tuple(ClosedPr(int(p["number"]), marked(str(p.get("body") or ""), "proposal"),
                                p.get("merged_at") is not None)
                       for p in ours if p.get("state") != "open")
        view = PrView(desired, open_pr, closed, int(foreign["number"]) if foreign else None,
                      "absent" if owned is None else "mine" if owned.mine else "person")
        return Observed(view, now, base, owned, open_ours,
                        {int(p["number"]): str(p.get("html_url") or "") for p in ours})

    def _carry_out(self, action: Action, seen: Observed, snapshot: GitHubSnapshot,
                   files: dict[str, bytes], message: str, changes: Sequence[Change]
                   ) -> PublishResult:
        branch, base, pr = self.pr.branch, seen.base, seen.open_pr
        url = seen.urls.get(action.number or 0) or None
        if action.kind == "refuse":
            if action.number is None and seen.owned is not None:
                raise PushRejectedError(
                    f"branch {branch} holds {seen.owned.person} that tagsync did not make, and no "
                    "open pull request of tagsync's; tagsync will not overwrite it: merge or "
                    "delete the branch, or choose another `pr_branch`")
            raise PushRejectedError(action.reason.replace("the branch", branch))
        if action.kind in ("kept", "declined", "merged"):
            if action.reason:
                log.warning("%s", action.reason)
            return PublishResult(snapshot.revision, False, url=url, pull_request=action.number,
                                 action=action.kind, note=action.reason or None)
        if action.kind == "nothing":
            return PublishResult(snapshot.revision, False)
        if action.kind == "close":
            assert pr is not None
            self._close(pr, base)
            return PublishResult(snapshot.revision, False, url=url, pull_request=action.number,
                                 action="closed", note=action.reason)
        desired = seen.view.desired
        title = bounded_title(self.pr.title or message.partition("\n")[0])
        if action.kind == "leave":
            note = None
            if files and pr is not None:
                note = self._upkeep(pr, title, changes, sorted(files), desired)
                log.info("pull request #%s already holds these changes", action.number)
            return PublishResult(seen.now.head if files else snapshot.revision, False, url=url,
                                 pull_request=action.number, action="unchanged", note=note)
        # The new commit is built beside the PR branch, then the branch moves to it in one step
        # guarded by the head read: the PR never has zero commits (GitHub would close it for
        # good), a failure on the way leaves it as it was, and a concurrent write is refused.
        head = seen.now.head
        sha = self._build(base, head, seen.owned, files,
                          f"{message.rstrip()}\n\n{TRAILER.format(branch=branch)}\n")
        self._move_branch(branch, head, sha)
        if pr is not None:
            note = self._upkeep(pr, title, changes, sorted(files), desired)
            log.info("updated pull request #%s with %s", pr["number"], sha[:12])
            return PublishResult(sha, True, url=url, pull_request=int(pr["number"]),
                                 action="updated", note=note)
        return self._open(sha, title, files, changes, desired, action.supersedes)

    def _open(self, sha: str, title: str, files: dict[str, bytes], changes: Sequence[Change],
              desired: str | None, supersedes: int | None) -> PublishResult:
        branch = self.pr.branch
        body = pr_body(changes, branch, sorted(files), title, base=self.branch, proposal=desired,
                       supersedes=supersedes)
        response = self.api.request("POST", f"/repos/{self.repo}/pulls", "opening the pull request",
                                    json={"title": title, "head": branch, "base": self.branch,
                                          "body": body}, allow=(422,))
        if response.status_code == 422:
            if any(p.get("state") == "open" for p in observe_pulls(self.pub).pulls):
                # another run opened it meanwhile: re-plan
                raise BranchMovedError(f"a pull request from {branch} was opened while we worked; "
                                       "re-planning")
            raise _http_error(response, "opening the pull request", self.api.secrets())
        created = _json_of(response, "opening the pull request")
        number = int(created["number"])
        kept = self._upkeep(created, title, changes, sorted(files), desired)
        log.info("opened pull request #%s", number)
        legacy = self._supersede_legacy(number)
        notes = [f"supersedes #{supersedes}, closed without merging"
                 if supersedes is not None else "",
                 f"closed #{legacy} from {self.pr.legacy_branch}, superseded by this one"
                 if legacy is not None else "", kept or ""]
        return PublishResult(sha, True, url=created.get("html_url"), pull_request=number,
                             action="opened", note="; ".join(n for n in notes if n) or None)

    def _supersede_legacy(self, number: int) -> int | None:
        """An open PR of an older tagsync from `tagsync/<catalog>` into this base is closed as
        superseded by the PR just opened (one PR per base). A failure only warns."""
        legacy = self.pr.legacy_branch
        if legacy is None:
            return None
        owner = self.repo.split("/")[0]
        try:
            pulls = self.api.json("GET", f"/repos/{self.repo}/pulls", "looking for an older PR",
                                  params={"state": "open", "head": f"{owner}:{legacy}",
                                          "base": self.branch, "per_page": 100})
            old = next((p for p in pulls if isinstance(p, dict)
                        and is_ours(str(p.get("body") or ""), legacy, self.branch)), None)
            if old is None:
                return None
            self.api.json("POST", f"/repos/{self.repo}/issues/{old['number']}/comments",
                          "commenting on the older pull request", json={
                              "body": f"Superseded by #{number}: tagsync now keeps one pull "
                                      f"request per base, from {self.pr.branch}. — tagsync"})
            self.api.json("PATCH", f"/repos/{self.repo}/pulls/{old['number']}",
                          "closing the older pull request", json={"state": "closed"})
        except PublishError as exc:
            log.warning("could not close the older pull request from %s: %s", legacy, exc.message)
            return None
        log.info("closed pull request #%s from %s: superseded by #%s", old["number"], legacy,
                 number)
        return int(old["number"])

    def _build(self, base: str, head: str | None, owned: Owned | None, files: dict[str, bytes],
               message: str) -> str:
        """The PR branch's next commit; no branch a person sees moves.

        GraphQL (signed commits) can only commit on a branch: one fresh commit on the base, made
        on a scratch branch deleted afterwards; `updateRefs` then moves the PR branch with a
        compare-and-swap. REST moves a ref safely only by a fast-forward: the commit is a child
        of the PR head read (and of the base, when the head lacks it), holding the base's tree
        with our files."""
        if self.use_graphql and self.pub._plain():
            self._clean_scratch()
            scratch = f"{self.pr.branch}{SCRATCH}{int(time.time())}-{uuid.uuid4().hex[:8]}"
            self.api.json("POST", f"/repos/{self.repo}/git/refs", f"creating {scratch}",
                          json={"ref": f"refs/heads/{scratch}", "sha": base})
            try:
                sha, _ = self.pub._graphql_commit(scratch, base, files, message)
                return sha
            except GraphQLUnavailable as exc:
                log.warning("%s; falling back to the REST Git Data API", exc.message)
                self.use_graphql = False
            finally:
                self._delete_branch(scratch)
        parents = [base] if head is None else [head] + (
            [] if owned is not None and owned.contains_base else [base])
        sha, _ = self.pub._rest_commit_on(base, files, message, parents)
        return sha

    def _clean_scratch(self) -> None:
        """Delete the scratch branches a killed run left: those made over an hour ago (no run
        lasts that long; a younger one may be a concurrent run's), or named by an older tagsync
        without a time. A failure only warns: the run does not need it."""
        try:
            refs = self.api.json("GET", f"/repos/{self.repo}/git/matching-refs/heads/"
                                        f"{quote(self.pr.branch + SCRATCH)}", "listing scratch branches")
        except PublishError as exc:
            log.warning("could not list leftover scratch branches: %s", exc.message)
            return
        for ref in refs if isinstance(refs, list) else []:
            name = str(ref.get("ref", "")).removeprefix("refs/heads/")
            made = re.fullmatch(r"([0-9]+)-[0-9a-f]+", name.rpartition(SCRATCH)[2])
            if made is None or int(made.group(1)) < time.time() - SCRATCH_AGE:
                log.info("deleting the scratch branch %s a stopped run left", name)
                self._delete_branch(name)

    def _delete_branch(self, branch: str) -> None:
        try:
            self.api.request("DELETE", f"/repos/{self.repo}/git/refs/heads/{quote(branch)}",
                             f"deleting {branch}")
        except PublishError as exc:
            log.warning("could not delete the scratch branch %s: %s", branch, exc.message)

    def _repository_id(self) -> str:
        if self.pub._repo_id is None:
            owner, name = self.repo.split("/", 1)
            data = self.api.graphql(_REPOSITORY_ID, {"owner": owner, "name": name},
                                    f"reading the id of {self.repo}")
            self.pub._repo_id = str(data["repository"]["id"])
        return self.pub._repo_id

    def _move_branch(self, branch: str, old: str | None, new: str) -> None:
        """Point the PR branch at `new` in one step, only if it is still at `old`: GraphQL
        `updateRefs` with `beforeOid`; REST a fast-forward (no force), which the REST-built
        commit is (a child of `old`); creating it fails if it exists."""
        if old is None:
            response = self.api.request("POST", f"/repos/{self.repo}/git/refs", f"creating {branch}",
                                        json={"ref": f"refs/heads/{branch}", "sha": new},
                                        allow=(422,))
            if response.status_code == 422:
                if self.pub._head(branch, missing_ok=True) is not None:
                    raise BranchMovedError(f"{branch} was created while we worked; re-planning")
                raise _http_error(response, f"creating {branch}", self.api.secrets())
            return
        if self.use_graphql:
            try:
                self.api.graphql(_UPDATE_REFS, {"input": {
                    "repositoryId": self._repository_id(),
                    "refUpdates": [{"name": f"refs/heads/{branch}", "beforeOid": old,
                                    "afterOid": new, "force": True}]}}, f"moving {branch}")
                return
            except PublishError as exc:
                now = self.pub._head(branch, missing_ok=True)
                if now == new:
                    return
                if now != old:
                    raise BranchMovedError(f"{branch} moved while we worked ({exc.message}); "
                                           "re-planning") from None
                if isinstance(exc, GraphQLUnavailable) or (
                        "updateRefs" in exc.message and "exist" in exc.message):
                    # No way to move a ref by compare-and-swap here: refuse rather than force
                    raise PublishError(f"moving {branch}: {exc.message}; this GitHub cannot move "
                                       "a branch with a compare-and-swap through GraphQL: set "
                                       "`github.api: rest`") from None
                raise
        self.api.json("PATCH", f"/repos/{self.repo}/git/refs/heads/{quote(branch)}",
                      f"moving {branch}", json={"sha": new, "force": False})

    def _base_has(self, pr: dict[str, Any], pr_head: str, base: str) -> bool:
        """The base already holds what the PR changes (every file its marker names)."""
        paths = marked_files(str(pr.get("body") or ""))
        if not paths:
            return False
        try:
            return all(read_file(self.api, self.repo, p, base) == read_file(self.api, self.repo, p, pr_head)
                       for p in paths)
        except CatalogError:
            return False

    def _close(self, pr: dict[str, Any], base: str) -> None:
        number = pr["number"]
        self.api.json("POST", f"/repos/{self.repo}/issues/{number}/comments",
                      "commenting on the pull request", json={
                          "body": f"Closing: {self.branch} already has these changes "
                                  f"(at {base[:12]}). — tagsync"})
        self.api.json("PATCH", f"/repos/{self.repo}/pulls/{number}", "closing the pull request",
                      json={"state": "closed"})
        log.info("closed pull request #%s: %s already has its changes", number, self.branch)

    def _upkeep(self, pr: dict[str, Any], title: str, changes: Sequence[Change],
                files: Sequence[str], proposal: str | None) -> str | None:
        """Keep the PR as configured without undoing a person's edits: the generated part of the
        body is replaced between markers, the title only while it is still the one tagsync set;
        labels, reviewers and auto-merge are (re-)requested when missing. Failing upkeep only
        warns: the commit stands. Returns what the run must say (a description left as it was)."""
        number = pr["number"]
        old_body = pr.get("body") or ""
        ours = marked_title(old_body)
        keep_title = ours is not None and ours != pr.get("title")  # a person retitled it
        new_title = str(pr.get("title")) if keep_title else title
        room = MAX_BODY - size(merge_body(old_body, ""))  # a person's text around ours stays
        body = merge_body(old_body, pr_body(changes, self.pr.branch, files,
                                            ours if keep_title else title, base=self.branch,
                                            proposal=proposal, supersedes=superseded(old_body),
                                            limit=room))
        note = None
        if size(body) > MAX_BODY:
            note = (f"pull request #{number}: the text people added to its description leaves "
                    f"no room within GitHub's limit ({MAX_BODY:,} characters) for tagsync's "
                    "part; the description is left as it is, so the next run cannot tell this "
                    "proposal is already there (shorten that text to let tagsync update it)")
            log.warning("%s", note)
            # the title too: its marker is in the body, and a title that moved without it
            # would read as a person's from then on
            body, new_title = old_body, str(pr.get("title"))
        if body != old_body or new_title != pr.get("title"):
            self.api.json("PATCH", f"/repos/{self.repo}/pulls/{number}", "updating the pull request",
                          json={"title": new_title, "body": body})
        have = {str(label.get("name")) for label in pr.get("labels") or []}
        missing = [x for x in self.pr.labels if x not in have]
        self._try("labelling the PR", lambda: self.api.json(
            "POST", f"/repos/{self.repo}/issues/{number}/labels", "labelling the PR",
            json={"labels": missing}) if missing else None)
        self._request_reviews(pr)
        if self.pr.auto_merge and not pr.get("auto_merge"):
            auto_merge = self.pr.auto_merge
            self._try("requesting auto-merge", lambda: self.api.graphql(_AUTO_MERGE, {"input": {
                "pullRequestId": pr["node_id"], "mergeMethod": auto_merge.upper()}},
                "requesting auto-merge"))
        return note

    def _request_reviews(self, pr: dict[str, Any]) -> None:
        if not (self.pr.reviewers or self.pr.team_reviewers):
            return
        number = pr["number"]
        requested = {str(u.get("login")).lower() for u in pr.get("requested_reviewers") or []}
        teams = {str(t.get("slug")).lower() for t in pr.get("requested_teams") or []}
        try:
            reviews = self.api.json("GET", f"/repos/{self.repo}/pulls/{number}/reviews",
                                    "reading the reviews", params={"per_page": 100})
        except PublishError as exc:
            log.warning("pull request #%s: reading the reviews failed: %s", number, exc.message)
            return
        reviewed = {str((r.get("user") or {}).get("login")).lower()
                    for r in (reviews if isinstance(reviews, list) else []) if isinstance(r, dict)}
        users = [u for u in self.pr.reviewers if u.lower() not in requested | reviewed]
        team_list = [t for t in self.pr.team_reviewers if t.lower() not in teams]
        if users or team_list:
            self._try("requesting reviews", lambda: self.api.json(
                "POST", f"/repos/{self.repo}/pulls/{number}/requested_reviewers", "requesting reviews",
                json={"reviewers": users, "team_reviewers": team_list}))

    def _try(self, doing: str, call: Any) -> None:
        """Upkeep after the commit has landed: a refusal, or an answer not of the documented
        shape, only warns, so the run does not report as failed a commit that stands."""
        try:
            call()
        except PublishError as exc:
            log.warning("pull request upkeep: %s failed (the commit stands; the next run "
                        "retries): %s", doing, exc.message)
        except _SHAPE_ERRORS as exc:
            log.warning("pull request upkeep: %s failed on an answer of another shape than "
                        "documented (the commit stands; the next run retries): %s: %s", doing,
                        type(exc).__name__, str(exc)[:120])
