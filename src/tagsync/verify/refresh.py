"""Refresh a pinned Sigstore `trusted_root.json` through TUF, on purpose (`tagsync update-trust-root`).

Verification is offline: runs read the pinned file and never fetch it, so a changed trust root is
a reviewed commit, never a side effect. This module is the explicit step that fetches a new one:
python-tuf's `ngclient.Updater` walks the mirror's TUF chain (root rotations, timestamp,
snapshot, targets, expiry, rollback, the target's length and hashes) from a TUF root the user
trusts, and the target is written only if tagsync's own loader accepts it.

`tuf` is imported inside functions only: `import tagsync.run` must not load it (a test holds that).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from tagsync.atomic import folder_lock, write_atomic
from tagsync.errors import (
    ConfigError,
    MirrorError,
    TrustRootRefreshError,
    TrustRootTargetError,
    TufVerificationError,
)

if TYPE_CHECKING:
    from tuf.ngclient.updater import Updater

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "https://tuf-repo-cdn.sigstore.dev"
"""Sigstore's public-good TUF repository."""
TARGET = "trusted_root.json"
TIMEOUT = 30  # seconds without a byte before a download is given up

# The parts of a trust root a summary counts, in the words a reader knows them by
KINDS = {"tlogs": "Rekor log", "certificateAuthorities": "Fulcio CA", "ctlogs": "CT log",
         "timestampAuthorities": "timestamp authority"}
COUNT_KEYS = {"tlogs": "rekor_logs", "certificateAuthorities": "fulcio_cas", "ctlogs": "ct_logs",
              "timestampAuthorities": "timestamp_authorities"}


# --- what changed between two trust roots ---------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One log or authority of a trust root: a log by its key id, an authority by its root
    certificate's fingerprint; `start`/`end` are its validity window as the file writes it."""

    kind: str
    id: str
    url: str
    start: str | None
    end: str | None

    def describe(self) -> str:
        window = f"valid from {self.start or 'the beginning'}" + (f" until {self.end}" if self.end else "")
        return f"{self.kind} {self.url} {self.id[:12]}… ({window})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "url": self.url, "valid_from": self.start,
                "valid_until": self.end}


@dataclass(frozen=True)
class Change:
    """`added`, `removed`, or `window changed` (same key, another validity window: how a log
    or CA is retired)."""

    change: Literal["added", "removed", "window changed"]
    entry: Entry
    before: Entry | None = None

    def describe(self) -> str:
        mark = {"added": "+", "removed": "-", "window changed": "~"}[self.change]
        text = f"{mark} {self.change} {self.entry.describe()}"
        if self.before is not None:
            text += f", was from {self.before.start or 'the beginning'} until {self.before.end or 'open'}"
        return text

    def to_dict(self) -> dict[str, Any]:
        out = {"change": self.change, **self.entry.to_dict()}
        if self.before is not None:
            out["before"] = {"valid_from": self.before.start, "valid_until": self.before.end}
        return out


def entries(data: bytes | None) -> list[Entry]:
    """The logs and authorities of a trust root's bytes; nothing for bytes that are not one
    (an old file that was never a trust root counts as empty: everything is new)."""
    if data is None:
        return []
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    found = []
    for key, kind in KINDS.items():
        for item in doc.get(key) or []:
            with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError, IndexError):
                found.append(_entry(kind, key, item))
    return found


def _entry(kind: str, key: str, item: dict[str, Any]) -> Entry:
    if key in ("tlogs", "ctlogs"):
        ident = base64.b64decode(item["logId"]["keyId"]).hex()
        window = item["publicKey"].get("validFor") or {}
        url = item.get("baseUrl", "")
    else:
        certs = item["certChain"]["certificates"]
        ident = hashlib.sha256(base64.b64decode(certs[-1]["rawBytes"])).hexdigest()
        window = item.get("validFor") or {}
        url = item.get("uri", "")
    return Entry(kind, ident, str(url), window.get("start"), window.get("end"))


def describe_changes(old: bytes | None, new: bytes) -> tuple[Change, ...]:
    """What a reviewer should know about replacing `old` with `new`, entry by entry."""
    before = {(e.kind, e.id): e for e in entries(old)}
    after = {(e.kind, e.id): e for e in entries(new)}
    changes: list[Change] = []
    for ident, entry in after.items():
        previous = before.get(ident)
        if previous is None:
            changes.append(Change("added", entry))
        elif (previous.start, previous.end) != (entry.start, entry.end):
            changes.append(Change("window changed", entry, previous))
    changes += [Change("removed", entry) for ident, entry in before.items() if ident not in after]
    return tuple(changes)


def counts(data: bytes) -> dict[str, int]:
    """How many Rekor logs, Fulcio CAs, CT logs and timestamp authorities a trust root holds."""
    found = entries(data)
    return {COUNT_KEYS[key]: sum(1 for e in found if e.kind == kind) for key, kind in KINDS.items()}


def count_text(numbers: dict[str, int]) -> str:
    names = {"rekor_logs": "Rekor log", "fulcio_cas": "Fulcio CA", "ct_logs": "CT log",
             "timestamp_authorities": "timestamp authority"}
    parts = []
    for key, name in names.items():
        n = numbers.get(key, 0)
        plural = name.replace("authority", "authorities") if name.endswith("authority") else name + "s"
        parts.append(f"{n} {name if n == 1 else plural}")
    return ", ".join(parts)


# --- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refresh:
    """What `update_trust_root` did (or, in a dry run, would do) to PATH."""

    path: Path
    mirror: str
    metadata_dir: Path
    status: Literal["updated", "unchanged"]
    written: bool
    dry_run: bool
    tuf_root_version: int
    sha256: str
    length: int
    counts: dict[str, int]
    changes: tuple[Change, ...] = field(default=())
    created: bool = False  # PATH did not exist before

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "mirror": self.mirror, "metadata_dir": str(self.metadata_dir),
                "status": self.status, "written": self.written, "dry_run": self.dry_run,
                "created": self.created, "tuf_root_version": self.tuf_root_version,
                "sha256": self.sha256, "length": self.length, "counts": self.counts,
                "changes": [c.to_dict() for c in self.changes]}


# --- where things are -----------------------------------------------------------------------------


def normalize_mirror(mirror: str) -> str:
    """The mirror's base URL without a trailing slash; http(s) only."""
    url = mirror.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"--mirror {mirror!r} is not an http(s) URL of a TUF repository")
    return url


def default_metadata_dir(mirror: str) -> Path:
    """`$XDG_CACHE_HOME/tagsync/tuf/<url-quoted mirror>` (`~/.cache` when unset): TUF must
    remember the newest root it trusted, or a rotation would be taken again from the first."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tagsync" / "tuf" / quote(normalize_mirror(mirror), safe="")


def bundled_tuf_root(mirror: str) -> bytes | None:
    """The TUF root the installed sigstore package ships for this mirror (its `_store`), found
    without importing sigstore (half a second); None when it ships none."""
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_store" / quote(normalize_mirror(mirror), safe="") / "root.json"
        with contextlib.suppress(OSError):
            return candidate.read_bytes()
    return None


def _bootstrap(mirror: str, tuf_root: Path | None, metadata_dir: Path) -> tuple[bytes | None, str]:
    """The first TUF root to trust, and where it came from (for errors): the user's file, else
    sigstore's for its mirrors, else the one a previous refresh cached (None: the Updater reads it)."""
    if tuf_root is not None:
        try:
            return tuf_root.expanduser().read_bytes(), str(tuf_root)
        except OSError as exc:
            raise ConfigError(f"cannot read the TUF root: {exc.strerror}", file=str(tuf_root)) from None
    bundled = bundled_tuf_root(mirror)
    if bundled is not None:
        return bundled, f"the TUF root sigstore ships for {mirror}"
    if (metadata_dir / "root.json").is_file():
        log.info("starting from the TUF root cached in %s", metadata_dir)
        return None, str(metadata_dir / "root.json")
    raise ConfigError(f"no TUF root to start from for {mirror}: pass --tuf-root FILE (a root.json of that "
                      "repository you trust, e.g. its 1.root.json obtained out of band); later refreshes "
                      f"use the one cached in {metadata_dir}")


def _check_destination(path: Path) -> None:
    """Refuse before asking the mirror when PATH cannot be written."""
    parent = Path(os.path.realpath(path)).parent
    if path.is_dir():
        raise TrustRootRefreshError("is a folder, not a file; nothing was written", file=str(path))
    if not parent.is_dir():
        raise TrustRootRefreshError(f"the folder {parent} does not exist; nothing was written",
                                    file=str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TrustRootRefreshError(f"the folder {parent} is not writable; nothing was written",
                                    file=str(path))


# --- fetching through TUF -------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """The innermost cause of a download failure a person can act on ("Connection refused",
    a certificate problem, "timed out"), not urllib3's wrapper text."""
    best = ""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verify = getattr(current, "verify_message", None)  # ssl.SSLCertVerificationError
        if verify:
            best = f"TLS certificate: {verify}"
        elif isinstance(current, OSError) and current.strerror:
            best = current.strerror
        elif isinstance(current, TimeoutError) and not best:
            best = "timed out"
        nxt = getattr(current, "reason", None)
        current = nxt if isinstance(nxt, BaseException) else (current.__cause__ or current.__context__)
    return best or type(exc).__name__


@contextlib.contextmanager
def _tuf_errors(mirror: str, fetcher: Any) -> Iterator[None]:
    """python-tuf's exceptions as tagsync's typed errors, naming the URL being fetched."""
    import urllib3
    from tuf.api import exceptions as tuf_exc

    try:
        yield
    except tuf_exc.DownloadHTTPError as exc:
        raise MirrorError(f"{fetcher.url}: the mirror answered HTTP {exc.status_code}") from None
    except tuf_exc.DownloadLengthMismatchError as exc:
        raise TufVerificationError(f"{fetcher.url}: {exc} (more than TUF allows for this file)") from None
    except tuf_exc.DownloadError as exc:
        raise MirrorError(f"cannot fetch {fetcher.url or mirror}: {_reason(exc)}") from None
    except (urllib3.exceptions.HTTPError, ConnectionError) as exc:
        # python-tuf wraps what fails while connecting, not what fails while reading the body
        raise MirrorError(f"cannot fetch {fetcher.url or mirror}: the connection broke off "
                          f"({type(exc).__name__})") from None
    except tuf_exc.ExpiredMetadataError as exc:
        raise TufVerificationError(f"{exc} (the mirror serves expired metadata, or this machine's clock "
                                   "is wrong)") from None
    except tuf_exc.UnsignedMetadataError as exc:
        raise TufVerificationError(f"bad signatures: {exc}") from None
    except tuf_exc.BadVersionNumberError as exc:
        raise TufVerificationError(f"rollback refused: {exc}") from None
    except tuf_exc.LengthOrHashMismatchError as exc:
        raise TufVerificationError(f"{fetcher.url}: does not match its TUF metadata: {exc}") from None
    except tuf_exc.RepositoryError as exc:
        raise TufVerificationError(f"the mirror's TUF metadata does not verify: "
                                   f"{exc or type(exc).__name__}") from None
    except (ValueError, TypeError, KeyError) as exc:  # metadata python-tuf could not interpret
        raise TufVerificationError(f"the mirror's TUF metadata is malformed: {type(exc).__name__}: "
                                   f"{exc}") from None


def _updater(work: Path, mirror: str, bootstrap: bytes | None, source: str) -> tuple[Updater, Any]:
    from tuf.api.exceptions import RepositoryError
    from tuf.ngclient.config import UpdaterConfig
    from tuf.ngclient.updater import Updater
    from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

    from tagsync import __version__

    class Fetcher(Urllib3Fetcher):
        """Remembers the URL being fetched, so an error can name it."""

        url = ""

        def _fetch(self, url: str) -> Iterator[bytes]:
            self.url = url
            return super()._fetch(url)

    fetcher = Fetcher(socket_timeout=TIMEOUT, app_user_agent=f"tagsync/{__version__}")
    try:
        updater = Updater(metadata_dir=str(work), metadata_base_url=f"{mirror}/",
                          target_base_url=f"{mirror}/targets/", fetcher=fetcher,
                          config=UpdaterConfig(app_user_agent=f"tagsync/{__version__}"),
                          bootstrap=bootstrap)
    except RepositoryError as exc:
        raise ConfigError(f"not a usable TUF root.json: {exc or type(exc).__name__}", file=source) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"not a usable TUF root.json: {type(exc).__name__}: {exc}", file=source) from None
    return updater, fetcher


def fetch_trusted_root(mirror: str, work: Path, bootstrap: bytes | None,
                       source: str = "the bootstrap TUF root") -> tuple[bytes, int]:
    """The target `trusted_root.json` as the TUF chain vouches for it, and the version of the
    TUF root it was verified under. `work` holds the TUF metadata (read and updated); `bootstrap`
    None starts from the root cached there."""
    updater, fetcher = _updater(work, mirror, bootstrap, source)
    with _tuf_errors(mirror, fetcher), tempfile.TemporaryDirectory(prefix="tagsync-tuf-") as scratch:
        updater.refresh()
        info = updater.get_targetinfo(TARGET)
        if info is None:
            raise TrustRootTargetError(f"the TUF repository {mirror} lists no target {TARGET}")
        downloaded = updater.download_target(info, filepath=str(Path(scratch) / TARGET))
        data = Path(downloaded).read_bytes()
    return data, _root_version(work)


def _root_version(work: Path) -> int:
    """The version of the TUF root the Updater trusts now (it keeps root.json pointing at it)."""
    version = json.loads((work / "root.json").read_bytes())["signed"]["version"]
    return int(version)


# --- the command --------------------------------------------------------------------------------


def check_trust_root(data: bytes, mirror: str) -> None:
    """The target must load with the loader runs use, and hold something to verify with."""
    from tagsync.verify.trust import load_trust_root

    with tempfile.TemporaryDirectory(prefix="tagsync-root-") as scratch:
        candidate = Path(scratch) / TARGET
        candidate.write_bytes(data)
        try:
            root = load_trust_root(candidate)
        except ConfigError as exc:
            raise TrustRootTargetError(f"{mirror}'s {TARGET} is not a trust root tagsync can use: "
                                       f"{exc.message}") from None
    if not root.tlogs and not root.authorities:
        raise TrustRootTargetError(f"{mirror}'s {TARGET} holds no Rekor log and no Fulcio CA: "
                                   "nothing could be verified with it")


def _read_current(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TrustRootRefreshError(f"cannot read: {exc.strerror}; nothing was written",
                                    file=str(path)) from None


def update_trust_root(path: Path, *, mirror: str = DEFAULT_MIRROR, tuf_root: Path | None = None,
                      metadata_dir: Path | None = None, dry_run: bool = False) -> Refresh:
    """Fetch `trusted_root.json` from a TUF mirror, verified, and write it to PATH if it differs.

    A dry run works on a throwaway copy of the TUF metadata cache and writes nothing at all.
    Every failure is a `TagsyncError` and leaves PATH as it was.
    """
    mirror = normalize_mirror(mirror)
    cache = metadata_dir.expanduser() if metadata_dir is not None else default_metadata_dir(mirror)
    bootstrap, source = _bootstrap(mirror, tuf_root, cache)
    if importlib.util.find_spec("tuf") is None:
        raise ConfigError("update-trust-root needs python-tuf: pip install 'tagsync[verify]'")
    if not dry_run:
        _check_destination(path)
    with contextlib.ExitStack() as stack:
        if dry_run:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tagsync-tuf-dry-")))
            work = _copy_cache(cache, work / "metadata")
        else:
            work = cache
            try:
                work.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrustRootRefreshError(f"cannot create the TUF metadata cache: {exc.strerror}",
                                            file=str(work)) from None
            # python-tuf's cache is not safe for two updaters at once: they take turns
            stack.enter_context(folder_lock(work))
        log.info("refreshing %s from %s (TUF metadata in %s)", TARGET, mirror, cache)
        try:
            data, version = fetch_trusted_root(mirror, work, bootstrap, source)
        except OSError as exc:  # the metadata cache could not be written
            raise TrustRootRefreshError(f"cannot write the TUF metadata cache: {exc.strerror}",
                                        file=str(cache)) from None
    check_trust_root(data, mirror)
    current = _read_current(path)
    changed = current != data
    if changed and not dry_run:
        write_atomic(path, data, TrustRootRefreshError)
    log.info("%s %s (TUF root version %d)", "updated" if changed else "unchanged", path, version)
    return Refresh(path=path, mirror=mirror, metadata_dir=cache,
                   status="updated" if changed else "unchanged", written=changed and not dry_run,
                   dry_run=dry_run, tuf_root_version=version, sha256=hashlib.sha256(data).hexdigest(),
                   length=len(data), counts=counts(data),
                   changes=describe_changes(current, data) if changed else (), created=current is None)


def _copy_cache(cache: Path, into: Path) -> Path:
    """The cached TUF metadata, copied for a dry run (the copy may be updated and thrown away)."""
    try:
        if cache.is_dir():
            shutil.copytree(cache, into, symlinks=True)
        else:
            into.mkdir()
    except OSError as exc:
        raise TrustRootRefreshError(f"cannot read the TUF metadata cache: {exc.strerror or exc}",
                                    file=str(cache)) from None
    return into


__all__ = ["DEFAULT_MIRROR", "Change", "Entry", "Refresh", "bundled_tuf_root", "default_metadata_dir",
           "describe_changes", "update_trust_root"]
