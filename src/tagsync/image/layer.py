"""A reproducible layer: the same files give the same bytes, on any machine, at any time.

Entries are sorted, owned by 0:0 without names, stamped with one fixed time, and their modes
reduced to 0755/0644; gzip carries no name or time. Nothing of the build machine (paths,
users, clocks) reaches the tar, so the layer digest depends only on the file contents.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from tagsync.errors import BuildError

COMPRESS_LEVEL = 6  # part of the digest: changing it changes every layer


@dataclass(frozen=True)
class Layer:
    path: Path  # the gzip blob on disk
    digest: str  # of the compressed blob (the manifest's)
    diff_id: str  # of the uncompressed tar (the config's rootfs)
    size: int


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


class _Hashing:
    """A write-only file that hashes and counts what passes through it on the way to `sink`."""

    def __init__(self, sink: _Sink) -> None:
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


def tree(root: Path, prefix: str, skip: Iterable[str] = ()) -> dict[str, Path]:
    """Files and directories under `root` as archive names under `prefix` (POSIX, relative)."""
    skipped = set(skip)
    out: dict[str, Path] = {}
    for current, dirs, files in os.walk(root):
        rel = Path(current).relative_to(root)
        dirs[:] = [d for d in dirs if d != "__pycache__" and (rel / d).as_posix() not in skipped]
        for name in [*dirs, *files]:
            relative = (rel / name).as_posix()
            if relative in skipped or name.endswith(".pyc"):
                continue
            out[str(PurePosixPath(prefix) / relative)] = Path(current) / name
    return out


def _parents(names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        for parent in PurePosixPath(name).parents:
            if str(parent) != ".":
                found.add(str(parent))
    return found


def _write_tar(entries: Mapping[str, Path | bytes], sink: _Sink, mtime: int) -> tuple[str, int]:
    names = set(entries) | _parents(entries)
    plain = _Hashing(sink)
    with tarfile.open(fileobj=plain, mode="w|",  # type: ignore[call-overload]
                      format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(names):
            _add(tar, name, entries.get(name), mtime)
    return "sha256:" + plain.hash.hexdigest(), plain.size


def write_tar(entries: dict[str, Path], out: Path, mtime: int = 0) -> tuple[str, int]:
    """Write `entries` (archive name → file or directory) as a tar: (diff_id, size)."""
    with out.open("wb") as raw:
        return _write_tar(entries, raw, mtime)


def layer_bytes(files: Mapping[str, bytes], mtime: int = 0) -> tuple[bytes, str]:
    """A small layer made in memory from file contents, by the same rules as `write_layer`:
    (the gzip blob, its diff_id). For the demo's and the tests' tiny images."""
    raw = io.BytesIO()
    diff_id, _ = _write_tar(files, raw, mtime)
    return gzip.compress(raw.getvalue(), compresslevel=COMPRESS_LEVEL, mtime=0), diff_id


def compress(tar: Path, out: Path) -> tuple[str, int]:
    """gzip without a name or time in the header: (digest, size) of the compressed blob."""
    with tar.open("rb") as src, out.open("wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0,
                           compresslevel=COMPRESS_LEVEL) as gz:
            while chunk := src.read(1 << 20):
                gz.write(chunk)
    return "sha256:" + compressed.hash.hexdigest(), compressed.size


def write_layer(entries: dict[str, Path], out: Path, mtime: int = 0) -> Layer:
    """The tar and its gzip in one go (the tar is left beside `out` as `out.tar`)."""
    tar = out.with_name(out.name + ".tar")
    diff_id, _ = write_tar(entries, tar, mtime)
    digest, size = compress(tar, out)
    tar.unlink()
    return Layer(out, digest, diff_id, size)


def _add(tar: tarfile.TarFile, name: str, source: Path | bytes | None, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
    if isinstance(source, bytes):
        info.mode, info.size = 0o644, len(source)
        tar.addfile(info, io.BytesIO(source))
        return
    if source is None or (source.is_dir() and not source.is_symlink()):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    st = source.lstat()
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(source)
        if os.path.isabs(target):
            raise BuildError(f"{source}: a symbolic link to an absolute path ({target}) would "
                             "point into the build machine")
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, target
        tar.addfile(info)
        return
    if not stat.S_ISREG(st.st_mode):
        raise BuildError(f"{source}: only files, directories and links go into a layer")
    info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    info.size = st.st_size
    with source.open("rb") as fh:
        tar.addfile(info, fh)
