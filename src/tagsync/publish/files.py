"""Publish by writing files in a directory: for a checkout another tool commits, or none."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tagsync.catalog.edit import write_atomic
from tagsync.errors import CatalogError
from tagsync.plan import Change
from tagsync.publish import PublishResult


@dataclass
class DirSnapshot:
    root: Path
    revision: str | None = None

    def read(self, path: str) -> bytes:
        target = self.root / path
        try:
            return target.read_bytes()
        except OSError as exc:
            raise CatalogError(f"cannot read catalog: {exc.strerror}", file=str(target)) from exc

    def files(self) -> list[str]:
        out: list[str] = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            rel = Path(folder).relative_to(self.root)
            out += [(rel / n).as_posix() for n in names]
        return sorted(out)


class FilesPublisher:
    def __init__(self, root: Path) -> None:
        self.root = root

    def snapshot(self) -> DirSnapshot:
        return DirSnapshot(self.root)

    def publish(self, snapshot: object, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        # Every file was rendered before the first write; a rename per file keeps each whole.
        for path, data in sorted(files.items()):
            write_atomic(self.root / path, data)
        return PublishResult(None, bool(files))

    def describe(self) -> str:
        return f"files in {self.root}"
