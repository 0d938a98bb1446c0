"""Publish edited files: the `Publisher` protocol and its implementations.

- `files`: edit files in place in a working directory (a checkout in CI, or no Git at all);
- `git`: pure-Python Git (dulwich) over HTTPS, SSH or to a local path, one commit per run;
- `github`: GitHub's API (GraphQL or REST), pushing or through one pull request kept up to date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tagsync.plan import Change


def link_target(path: str, target: str) -> str | None:
    """The repository path a symlink at `path` holding `target` names, or None when it leaves
    the repository (absolute, or `..` past the root): a symlinked catalog is edited at its
    target, never replaced by a file."""
    if target.startswith("/"):
        return None
    parts = path.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or None


def real_paths(files: dict[str, bytes], links: dict[str, str]) -> dict[str, bytes]:
    """The files to write, a symlinked catalog's at its target; a link and its target both
    edited, differently, is refused (one of the two edits would be lost)."""
    from tagsync.errors import CatalogError

    out: dict[str, bytes] = {}
    for path, data in sorted(files.items()):
        real = links.get(path, path)
        if real in out and out[real] != data:
            raise CatalogError(f"is a symlink to {real}, which this run also edits differently; "
                               "name one of the two in the config", file=path)
        out[real] = data
    return out


@dataclass(frozen=True)
class PublishResult:
    revision: str | None  # commit id, or None when the target has no history (files mode)
    pushed: bool
    url: str | None = None  # the commit or pull request, for people
    pull_request: int | None = None
    # pull-request mode: opened | updated | unchanged | closed | merged | kept | declined
    action: str | None = None
    note: str | None = None  # why a PR was left as it is (a person's commit, a closed proposal)


class Snapshot(Protocol):
    """The catalogs as the target holds them right now."""

    revision: str | None

    def read(self, path: str) -> bytes:
        ...

    def files(self) -> list[str]:
        """Every file path in the tree (`/`-separated), for catalogs given by glob."""
        ...


class Publisher(Protocol):
    def snapshot(self) -> Snapshot:
        ...

    def publish(self, snapshot: Snapshot, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        """Write all files as one change; raise BranchMovedError if the target moved.

        `changes` is what the files say in words, for targets that describe it (a PR body).
        """
        ...

    def describe(self) -> str:
        ...
