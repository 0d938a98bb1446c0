"""Replacing a file so that readers see the old bytes or the new, never half of them: a
temporary file beside it, fsynced, then one rename; and a lock on a folder, so two processes
writing into it take turns.

Used by `tagsync set` (one catalog), the files publisher (several files staged before any is
replaced) and `update-trust-root` (a pinned trust root, and its TUF metadata cache). Each names
the error its users expect.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

from tagsync.errors import PublishError, TagsyncError


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def stage_file(path: Path, data: bytes, name: str | None = None,
               error: type[TagsyncError] = PublishError, made: list[str] | None = None) -> str:
    """Write `data` into a new temporary file beside `path`, fsynced, with `path`'s permissions
    (a new file: the umask's, as any editor would create it), and return its name for the caller
    to rename: several files can be staged before any is replaced. A read-only target or a full
    disk is `error` naming the file (`name`, or the path). `made`: the temporary file's name is
    added as soon as it exists, so a caller stopped before this returns can still remove it."""
    shown = name or str(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _umask_mode()
    except OSError as exc:
        raise error(f"cannot write: {exc.strerror}; nothing was written", file=shown) from None
    if not mode & 0o222:
        raise error(f"the file is read-only (mode {mode:04o}); nothing was written", file=shown)
    import tempfile  # with shutil and its compressors, ~3 ms that a run writing nothing skips

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tagsync", dir=path.parent)
    except OSError as exc:
        raise error(f"cannot write: {exc.strerror}; nothing was written", file=shown) from None
    try:
        if made is not None:
            made.append(tmp)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException as exc:  # an interrupt too: no temporary file is left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise error(f"cannot write: {exc.strerror}; nothing was written", file=shown) from None
        raise
    return tmp


def write_atomic(path: Path, data: bytes, error: type[TagsyncError] = PublishError) -> None:
    """Replace one file in one rename, keeping its permissions. A symlink is written through:
    its target changes, the link stays a link."""
    target = Path(os.path.realpath(path))
    tmp = stage_file(target, data, str(path), error)
    try:
        os.replace(tmp, target)
    except BaseException as exc:  # an interrupt too: no temporary file is left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise error(f"cannot write: {exc.strerror}; nothing was written",
                        file=str(path)) from None
        raise


# The signals that end a run early (Ctrl-C, a scheduler's or CI's stop): `tagsync`'s CLI turns
# them into exceptions (cli.main), so the `except BaseException` above removes what was staged.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while several renames complete: a stop arriving among them takes
    effect after the last one, so a run's files are all replaced or none (each file is whole
    either way). Only in the main thread, where Python's handlers run."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """An advisory lock on the folder itself (no lock file left behind): concurrent tagsync
    processes on one folder (runs on a checkout, refreshes of one TUF cache) take turns."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
