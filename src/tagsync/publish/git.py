"""Publish with pure-Python Git (dulwich): no git executable, no working tree, no disk.

One run = fetch the branch into memory, read the catalogs from its tree, write one commit with
every edited file, push it with a compare-and-swap on the old head. If the branch moved, the
push is refused and the caller re-plans on the new head.
"""

from __future__ import annotations

import logging
import re
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

from dulwich.client import HTTPUnauthorized, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.object_store import commit_tree_changes, tree_lookup_path
from dulwich.objects import Blob, Commit
from dulwich.repo import MemoryRepo

from tagsync.config import GitConfig
from tagsync.errors import (
    BranchMovedError,
    CatalogError,
    ConfigError,
    PublishAuthError,
    PublishError,
    PushRejectedError,
)
from tagsync.http_policy import redact
from tagsync.plan import Change
from tagsync.publish import PublishResult, link_target, real_paths
from tagsync.secrets import resolve

log = logging.getLogger(__name__)

_FILE_MODE = 0o100644


@dataclass
class GitSnapshot:
    repo: MemoryRepo
    head: bytes
    revision: str | None
    links: dict[str, str] = field(default_factory=dict)  # a symlinked catalog → its target
    modes: dict[str, int] = field(default_factory=dict)  # a file read → its mode (+x kept)

    def read(self, path: str) -> bytes:
        real, mode, sha = self._resolve(path, path)
        blob = self.repo[sha]
        if not isinstance(blob, Blob):
            raise CatalogError("is a directory, not a file", file=path)
        if real != path:
            self.links[path] = real
        self.modes[real] = mode
        return bytes(blob.data)

    def _resolve(self, asked: str, path: str, depth: int = 0) -> tuple[str, int, bytes]:
        """The file behind `path`, through symlinks inside the repository."""
        commit = self.repo[self.head]
        assert isinstance(commit, Commit)
        try:
            mode, sha = tree_lookup_path(self.repo.__getitem__, commit.tree, path.encode())
        except KeyError as exc:
            where = (self.revision or "?")[:12]
            raise CatalogError(f"no such file on branch head {where}"
                               + (f" (the symlink's target {path})" if path != asked else ""),
                               file=asked) from exc
        if not stat.S_ISLNK(mode):
            return path, mode, sha
        link = self.repo[sha]
        assert isinstance(link, Blob)
        target = link_target(path, bytes(link.data).decode("utf-8", "replace"))
        if target is None or depth >= 8:
            raise CatalogError("is a symlink leading outside the repository (or a loop): "
                               "tagsync edits a link's target only inside it", file=asked)
        return self._resolve(asked, target, depth + 1)

    def history(self, path: str, limit: int = 500
                ) -> list[tuple[str, datetime, Callable[[], bytes | None]]]:
        """The branch's first-parent commits, newest first: (id, committer time, the file as
        that commit left it, read when asked; None where it has no such file). A merge counts
        as one commit at its own time: what it brought in appeared on the branch then. The
        fetch brought the branch's whole history."""
        out: list[tuple[str, datetime, Callable[[], bytes | None]]] = []
        sha: bytes | None = self.head
        while sha is not None and len(out) < limit:
            try:
                commit = self.repo[sha]
            except KeyError:  # a shallow end: what is known is all there is
                break
            if not isinstance(commit, Commit):
                break
            out.append((commit.id.decode(), datetime.fromtimestamp(commit.commit_time, UTC),
                        partial(self._file_at, commit, path)))
            sha = commit.parents[0] if commit.parents else None
        return out

    def _file_at(self, commit: Commit, path: str) -> bytes | None:
        try:
            _, sha = tree_lookup_path(self.repo.__getitem__, commit.tree, path.encode())
        except KeyError:
            return None
        blob = self.repo[sha]
        return bytes(blob.data) if isinstance(blob, Blob) else None

    def files(self) -> list[str]:
        commit = self.repo[self.head]
        assert isinstance(commit, Commit)
        return sorted(entry.path.decode("utf-8", "surrogateescape")
                      for entry in self.repo.object_store.iter_tree_contents(commit.tree)
                      if not stat.S_ISDIR(entry.mode) and not stat.S_ISLNK(entry.mode)
                      and entry.mode != 0o160000)


class GitPublisher:
    def __init__(
        self,
        url: str,
        branch: str,
        *,
        token: str | None = None,
        username: str = "x-access-token",
        author: str = "tagsync <tagsync@localhost>",
        committer: str | None = None,
        ssh_vendor: Any | None = None,
    ) -> None:
        self.url = url
        self._ssh_vendor = ssh_vendor
        self.branch = branch
        self.ref = f"refs/heads/{branch}".encode()
        self._token = token
        self._username = username
        self.author = author.encode()
        self.committer = (committer or author).encode()

    def describe(self) -> str:
        return f"{redact(self.url, self._token)} ({self.branch})"

    def _client(self) -> tuple[Any, str]:
        kwargs: dict[str, Any] = {}
        if self._token is not None and self.url.startswith(("http://", "https://")):
            kwargs = {"username": self._username, "password": self._token}
        client, path = get_transport_and_path(self.url, **kwargs)
        if self._ssh_vendor is not None and hasattr(client, "ssh_vendor"):
            client.ssh_vendor = self._ssh_vendor
        return client, path

    def _fail(self, exc: Exception, doing: str) -> PublishError:
        message = redact(f"{doing} {self.describe()} failed: {exc}", self._token)
        if isinstance(exc, ValueError):  # dulwich read something that is not Git's protocol
            message += (" (the server does not speak Git's protocol there: is the URL right, or "
                        "is a proxy answering for it?)")
        if isinstance(exc, HTTPUnauthorized):
            return PublishAuthError(redact(f"{doing} {self.describe()}: the server refused our "
                                           "credentials (check the token)", self._token))
        return PublishError(message)

    def snapshot(self) -> GitSnapshot:
        client, path = self._client()
        repo = MemoryRepo()
        found: dict[str, bytes] = {}

        def wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            if self.ref not in refs:
                return []
            found["head"] = refs[self.ref]
            return [refs[self.ref]]

        try:
            client.fetch(path, repo, determine_wants=wants)
        except (HTTPUnauthorized, GitProtocolError, HangupException, NotGitRepository, OSError,
                ValueError) as exc:
            raise self._fail(exc, "fetching") from None
        if "head" not in found:
            raise PublishError(f"branch {self.branch!r} does not exist on {self.describe()}")
        head = found["head"]
        return GitSnapshot(repo, head, head.decode())

    def publish(self, snapshot: object, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        assert isinstance(snapshot, GitSnapshot)
        if not files:
            return PublishResult(snapshot.revision, False)
        repo = snapshot.repo
        old = repo[snapshot.head]
        assert isinstance(old, Commit)
        entries: list[tuple[bytes, int | None, Any]] = []
        for path, data in sorted(real_paths(files, snapshot.links).items()):
            blob = Blob.from_string(data)
            repo.object_store.add_object(blob)
            # a link stays a link (its target is written), a file keeps its mode (+x)
            entries.append((path.encode(), snapshot.modes.get(path, _FILE_MODE), blob.id))
        tree = commit_tree_changes(repo.object_store, old.tree, entries)
        commit = Commit()
        commit.tree = tree
        commit.parents = [cast(Any, snapshot.head)]
        commit.author, commit.committer = self.author, self.committer
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = message.encode()
        repo.object_store.add_object(commit)

        client, path = self._client()
        remote: list[str] = []  # what the server printed (hooks' messages), for refusals

        def update_refs(refs: dict[bytes, bytes]) -> dict[bytes, bytes]:
            current = refs.get(self.ref)
            if current != snapshot.head:
                raise _Moved(current)
            return {**refs, self.ref: commit.id}

        def progress(data: bytes) -> None:
            for line in data.decode("utf-8", "replace").splitlines():
                if line.strip() and not _PACK_PROGRESS.match(line.strip()):
                    remote.append(line.strip())

        try:
            result = client.send_pack(path, update_refs, generate_pack_data=repo.generate_pack_data,
                                      progress=progress)
        except _Moved as moved:
            raise BranchMovedError(
                f"{self.branch} moved to {moved.current!r} while we worked; re-planning"
            ) from None
        except HTTPUnauthorized as exc:
            raise self._fail(exc, "pushing to") from None
        except (GitProtocolError, HangupException, OSError, ValueError) as exc:
            # Refused, the connection lost after the pack went out, or an answer that is not
            # Git's protocol: only the remote ref can say whether the commit landed.
            return self._settle(snapshot.head, commit.id, redact(str(exc), self._token), remote,
                                answered=False)
        status = (getattr(result, "ref_status", None) or {}).get(self.ref)
        if status is not None:
            reason = status.decode() if isinstance(status, bytes) else str(status)
            return self._settle(snapshot.head, commit.id, reason, remote, answered=True)
        log.info("pushed %s to %s", commit.id.decode()[:12], self.describe())
        return PublishResult(commit.id.decode(), True)

    def remote_head(self) -> bytes | None:
        """The branch head as the server has it now (one ref advertisement, no objects)."""
        client, path = self._client()
        try:
            refs = client.get_refs(path)
        except HTTPUnauthorized as exc:
            raise self._fail(exc, "reading the branch of") from None
        except (GitProtocolError, HangupException, NotGitRepository, OSError, ValueError) as exc:
            raise self._fail(exc, "reading the branch of") from None
        return cast(dict[bytes, bytes | None], getattr(refs, "refs", refs)).get(self.ref)

    def _settle(self, old: bytes, new: bytes, reason: str, remote: list[str], *,
                answered: bool) -> PublishResult:
        """Decide a push the server refused (`answered`: a per-ref report) or whose answer was
        lost, by what the branch holds now.

        Our commit → it landed. Another commit → we lost the compare-and-swap: re-plan. Still
        the old head → a lost race (lock, stale info, non-fast-forward) re-plans; a hook's or
        the server's "no" is final and says why; a failed exchange changed nothing.
        """
        try:
            current = self.remote_head()
        except PublishError as exc:
            raise PublishError(redact(
                f"pushing to {self.describe()}: {reason}; reading {self.branch} back failed too "
                f"({exc.message}), so whether the commit landed is unknown; the next run will "
                "see", self._token)) from None
        said = f" ({'; '.join(remote)})" if remote else ""
        if current == new:
            log.warning("push to %s reported %r but %s holds our commit %s", self.describe(),
                        reason, self.branch, new.decode()[:12])
            return PublishResult(new.decode(), True)
        if current != old:
            where = current.decode()[:12] if current else "nothing (deleted)"
            raise BranchMovedError(f"{self.branch} moved to {where} while we pushed ({reason}); "
                                   "re-planning")
        lowered = reason.lower()
        if any(hint in lowered for hint in _LOST_RACE):
            raise BranchMovedError(f"pushing to {self.branch} lost a race ({reason}); re-planning")
        if not answered:
            raise PublishError(redact(
                f"pushing to {self.describe()} failed ({reason}){said}; {self.branch} is "
                "unchanged", self._token))
        raise PushRejectedError(redact(
            f"the remote refused the push to {self.branch}: {reason}{said}", self._token))


_PACK_PROGRESS = re.compile(r"(counting|compressing|writing|enumerating|total|delta|resolving)\b",
                            re.IGNORECASE)
_LOST_RACE = ("non-fast-forward", "fetch first", "stale info", "failed to update ref",
              "failed to lock", "cannot lock ref", "incorrect old value")


def is_ssh(url: str) -> bool:
    return url.startswith("ssh://") or bool(re.match(r"^[\w.-]+@[\w.-]+:", url))


def git_publisher(config: GitConfig, base_dir: Path) -> GitPublisher:
    repo = config.repo
    vendor = None
    if is_ssh(repo):
        if not config.ssh_key or not config.known_hosts:
            raise ConfigError("git.repo is an SSH URL: set git.ssh_key (the deploy key) and "
                              "git.known_hosts (the server's host key line, from ssh-keyscan)")
        from tagsync.publish.ssh import ParamikoVendor

        key = resolve(config.ssh_key, "git.ssh_key", base_dir)
        hosts = resolve(config.known_hosts, "git.known_hosts", base_dir)
        assert key is not None and hosts is not None
        vendor = ParamikoVendor(key, hosts)
    elif "://" not in repo and not repo.startswith("/"):
        repo = str((base_dir / repo).resolve())
    return GitPublisher(repo, config.branch, token=config.resolve_token(base_dir),
                        username=config.username, author=config.author, committer=config.committer,
                        ssh_vendor=vendor)


class _Moved(Exception):
    def __init__(self, current: bytes | None) -> None:
        super().__init__("moved")
        self.current = current.decode() if current else None
