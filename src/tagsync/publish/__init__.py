"""Publish edited files: the `Publisher` protocol and its implementations.

- `files`: edit files in place in a working directory (a checkout in CI, or no Git at all);
- `git`: pure-Python Git (dulwich) over HTTPS or to a local path, one commit per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PublishResult:
    revision: str | None  # commit id, or None when the target has no history (files mode)
    pushed: bool


class Snapshot(Protocol):
    """The catalogs as the target holds them right now."""

    revision: str | None

    def read(self, path: str) -> bytes:
        ...


class Publisher(Protocol):
    def snapshot(self) -> Snapshot:
        ...

    def publish(self, snapshot: Snapshot, files: dict[str, bytes], message: str) -> PublishResult:
        """Write all files as one change; raise BranchMovedError if the target moved."""
        ...

    def describe(self) -> str:
        ...
