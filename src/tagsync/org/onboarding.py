"""Onboarding: a repository without a config gets one pull request proposing the config
`tagsync init` would write for it (its catalogs; as publishing hints only what a repository may
say in organisation mode), never twice.

The proposal is made from the repository's own files (the ones whose names a finder reads:
YAML, Dockerfiles), read through GraphQL many at a time, laid out in a temporary folder and
given to `init`; the config is checked through the same trust boundary as any repository's
before it is proposed. A pull request from the onboarding branch that a person closed (or
merged) is the answer: no second one is opened.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from tagsync.errors import TagsyncError

log = logging.getLogger(__name__)

BRANCH = "tagsync/onboarding"
TITLE = "tagsync: keep this repository's image references in step"
MAX_FILES = 300  # files examined per repository (a proposal, not an audit)
BLOBS_PER_QUERY = 100


@dataclass(frozen=True)
class Onboarding:
    status: str  # proposed | waiting | declined | nothing
    reason: str
    pull_request: int | None = None


def worth_reading(path: str) -> bool:
    """A file a finder may read: YAML (manifests, values, compose, workflows), Dockerfiles."""
    name = PurePosixPath(path).name.lower()
    return (name.endswith((".yaml", ".yml")) or name.startswith(("dockerfile", "containerfile"))
            or name.endswith((".dockerfile", ".containerfile")))


def previous(api: Any, repo: str) -> dict[str, Any] | None:
    """The newest pull request ever opened from the onboarding branch, in any state."""
    owner = repo.split("/", 1)[0]
    pulls = api.json("GET", f"/repos/{repo}/pulls", "looking for an onboarding pull request",
                     params={"state": "all", "head": f"{owner}:{BRANCH}", "per_page": "10"})
    found = [p for p in pulls if isinstance(p, dict)] if isinstance(pulls, list) else []
    return max(found, key=lambda p: int(p.get("number") or 0)) if found else None


def read_files(api: Any, repo: str, head: str, paths: list[str]) -> dict[str, str]:
    """Text of each path at `head`, `BLOBS_PER_QUERY` a GraphQL request (REST where there is no
    GraphQL API); binary files, and files too large for GraphQL to give whole, are left out."""
    from tagsync.errors import CatalogError
    from tagsync.publish.github import GraphQLUnavailable, read_file

    owner, name = repo.split("/", 1)
    out: dict[str, str] = {}
    rest: list[str] = []
    for start in range(0, len(paths), BLOBS_PER_QUERY):
        batch = paths[start:start + BLOBS_PER_QUERY]
        variables = {"o": owner, "n": name, **{f"e{i}": f"{head}:{p}" for i, p in enumerate(batch)}}
        fields = " ".join(f"f{i}: object(expression: $e{i}) {{ ... on Blob {{ text isTruncated }} }}"
                          for i in range(len(batch)))
        declared = ", ".join(f"${k}: String!" for k in variables)
        try:
            data = api.graphql(f"query({declared}) {{ repository(owner: $o, name: $n) {{ {fields} }} }}",
                               variables, f"reading {repo}'s files for onboarding")
        except GraphQLUnavailable:
            rest += paths[start:]
            break
        node = data.get("repository") or {}
        for i, path in enumerate(batch):
            blob = node.get(f"f{i}") if isinstance(node, dict) else None
            # one GraphQL cannot give whole is not read at all: a proposal needs no file that
            # large, and a repository of 300 such files would fill the run's memory
            if (isinstance(blob, dict) and isinstance(blob.get("text"), str)
                    and not blob.get("isTruncated")):
                out[path] = blob["text"]
    for path in rest:
        try:
            out[path] = read_file(api, repo, path, head).decode("utf-8")
        except (CatalogError, UnicodeDecodeError):
            continue
    return out


def propose(api: Any, org: Any, repo: str, branch: str, *, dry_run: bool = False) -> Onboarding:
    """One step of onboarding for a repository without a config: look, then propose or not."""
    from tagsync.init import starting_config
    from tagsync.org.config import repo_config
    from tagsync.publish.github import GitHubPublisher, PullRequestOptions

    before = previous(api, repo)
    if before is not None and before.get("state") == "open":
        return Onboarding("waiting", f"onboarding pull request #{before.get('number')} is open",
                          before.get("number"))
    if before is not None:
        merged = before.get("merged_at") is not None
        return Onboarding("declined", f"onboarding pull request #{before.get('number')} was "
                          f"{'merged' if merged else 'closed'}; not proposed again",
                          before.get("number"))
    found = api.request("GET", f"/repos/{repo}/git/ref/heads/{quote(branch)}",
                        f"reading branch {branch} of {repo}", allow=(404, 409))
    if found.status_code in (404, 409):  # GitHub: 409 for a repository with no commit yet
        return Onboarding("nothing", "the repository is empty: nothing to propose"
                          if found.status_code == 409 else f"no branch {branch}: nothing to propose")
    publisher = GitHubPublisher(api, repo, branch, use_graphql=org.github.api == "graphql",
                                pull_request=PullRequestOptions(BRANCH, TITLE))
    snap = publisher.snapshot()
    paths = sorted(p for p in snap.files() if worth_reading(p))
    examined = paths[:MAX_FILES]
    texts = read_files(api, repo, snap.head, examined)
    with tempfile.TemporaryDirectory(prefix="tagsync-onboarding-") as tmp:
        root = Path(tmp)
        for path, text in texts.items():
            parts = PurePosixPath(path).parts
            if PurePosixPath(path).is_absolute() or ".." in parts:
                continue  # git trees hold neither; never write outside the folder
            target = root.joinpath(*parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            except (OSError, ValueError):  # a name this file system refuses (too long), text
                continue  # that is not UTF-8: a file a proposal can do without
        text, found = starting_config(str(root), organisation=True)
    if not (found.slots or found.notes):
        return Onboarding("nothing", f"no image reference in {len(examined)} file(s) examined")
    try:  # what is proposed must be what tagsync would accept from this repository
        repo_config(org, repo, branch, text, f"{repo}:tagsync.yaml (proposed)")
    except TagsyncError as exc:
        log.warning("onboarding %s: the proposed config does not load: %s", repo, exc)
        return Onboarding("nothing", f"the config init wrote does not load: {exc}")
    refs = len(found.slots) + len(found.notes)
    more = f" (first {MAX_FILES} of {len(paths)} files)" if len(paths) > MAX_FILES else ""
    if dry_run:
        return Onboarding("proposed", f"would propose tagsync.yaml for {refs} reference(s){more}")
    message = f"tagsync: add tagsync.yaml ({refs} image reference(s) found)"
    result = publisher.publish(snap, {"tagsync.yaml": text.encode()}, message, [])
    return Onboarding("proposed", f"proposed tagsync.yaml in pull request #{result.pull_request} "
                      f"({refs} image reference(s) found{more})", result.pull_request)
