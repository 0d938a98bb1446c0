"""Publish by writing files in a directory: for a checkout another tool commits, or none.

As safe as the Git publishers: a path from the config resolves inside the folder it was given
(no `..`, no absolute path, no symlink leading out; a symlink inside is edited through and stays
a link); every file of a run is staged (written and fsynced beside its target) before the first
rename, so a full disk or a read-only file writes nothing; and the renames happen under an
advisory lock on the folder after re-reading each target, so a concurrent run that wrote first
makes this one re-plan (BranchMovedError) instead of losing its edit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tagsync.atomic import folder_lock, signals_deferred, stage_file
from tagsync.errors import BranchMovedError, CatalogError, PublishError, UnsafePathError
from tagsync.plan import Change
from tagsync.publish import PublishResult, Snapshot


def resolve_inside(root: Path, path: str) -> Path:
    """The real file behind `path` (relative to `root`), refused when it would leave `root`."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UnsafePathError(f"catalog path {path!r} must be relative to {root} without '..'",
                              file=path)
    real_root = root.resolve()
    target = (real_root / relative).resolve()  # follows symlinks, also of missing files
    if not target.is_relative_to(real_root) or target == real_root:
        raise UnsafePathError(f"catalog path {path!r} leads outside {root} (through a symlink)",
                              file=path)
    return target


@dataclass
class DirSnapshot:
    root: Path
    revision: str | None = None
    read_bytes: dict[str, bytes] = field(default_factory=dict)  # what the plan was made from

    def read(self, path: str) -> bytes:
        target = resolve_inside(self.root, path)
        try:
            data = target.read_bytes()
        except OSError as exc:
            raise CatalogError(f"cannot read catalog: {exc.strerror}", file=path) from exc
        self.read_bytes[path] = data
        return data

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

    def publish(self, snapshot: Snapshot, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        targets = {path: resolve_inside(self.root, path) for path in sorted(files)}
        seen = snapshot.read_bytes if isinstance(snapshot, DirSnapshot) else {}
        with folder_lock(self.root):
            for path, target in targets.items():
                try:
                    current: bytes | None = target.read_bytes()
                except FileNotFoundError:
                    current = None
                except OSError as exc:
                    raise PublishError(f"cannot read back: {exc.strerror}; nothing was written",
                                       file=path) from exc
                if current != seen.get(path):
                    raise BranchMovedError(f"{path} changed since this run read it "
                                           "(another run?)", file=path)
            made: list[str] = []  # every temporary file, named as soon as it exists
            replaced: set[str] = set()
            try:
                staged = [(path, stage_file(target, files[path], path, made=made), target)
                          for path, target in targets.items()]
                with signals_deferred():  # a stop among the renames waits for the last one
                    for path, tmp, target in staged:
                        try:
                            os.replace(tmp, target)
                        except OSError as exc:  # pragma: no cover - a rename in one folder
                            raise PublishError(f"cannot replace: {exc.strerror}",  # rarely fails
                                               file=path) from exc
                        replaced.add(tmp)
            finally:  # nothing staged is left in the catalog folder, whatever stopped us
                for tmp in made:
                    if tmp not in replaced:
                        with contextlib.suppress(OSError):
                            os.unlink(tmp)
            for folder in sorted({str(t.parent) for t in targets.values()}):
                _fsync_dir(folder)
        return PublishResult(None, bool(files))

    def describe(self) -> str:
        return f"files in {self.root}"


def _fsync_dir(folder: str) -> None:
    """Make the renames themselves durable."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
