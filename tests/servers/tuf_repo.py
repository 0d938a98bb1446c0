"""A real TUF repository, built with python-tuf's metadata API and ed25519 keys, served over
HTTP on 127.0.0.1 the way Sigstore's `tuf-repo-cdn.sigstore.dev` is laid out:

    <n>.root.json          every root version (consistent snapshots)
    timestamp.json         the only unversioned file
    <v>.snapshot.json      consistent snapshot names
    <v>.targets.json
    targets/<sha256>.<name>

As a static CDN does, it answers GET (and HEAD) for files it holds and 404 for anything else; it
knows nothing of TUF, so a client's checks are the only checks. Tests change it as a repository
owner (new target versions, root rotation) or as an attacker (expired or tampered files).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from tests.servers.fixtures import WsgiThread, serve_wsgi

ROLES = ("root", "timestamp", "snapshot", "targets")


def _in(days: float) -> dt.datetime:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(microsecond=0)


@dataclass
class TufRepository:
    """The repository owner's side: keys, the four top-level roles, and the files published."""

    signers: dict[str, Signer] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    short: set[str] = field(default_factory=set)  # paths sent cut short (cut_short)

    def __post_init__(self) -> None:
        self.signers = {role: CryptoSigner.generate_ed25519() for role in ROLES}
        root = Root(expires=_in(365), consistent_snapshot=True)
        for role in ROLES:
            root.add_key(self.signers[role].public_key, role)
        self.root: Metadata[Root] = Metadata(root)
        self.targets: Metadata[Targets] = Metadata(Targets(expires=_in(30)))
        self.snapshot: Metadata[Snapshot] = Metadata(Snapshot(expires=_in(7)))
        self.timestamp: Metadata[Timestamp] = Metadata(Timestamp(expires=_in(1)))
        self._sign_root([self.signers["root"]])
        self.first_root = self.files["1.root.json"]
        self.targets.signed.version = 0  # publish() moves every role to version 1
        self.snapshot.signed.version = 0
        self.timestamp.signed.version = 0

    # --- the owner publishing ------------------------------------------------------------------

    def _sign_root(self, signers: Iterable[Signer]) -> None:
        self.root.signatures.clear()
        for signer in signers:
            self.root.sign(signer, append=True)
        self.files[f"{self.root.signed.version}.root.json"] = self.root.to_bytes()

    def publish(self, targets: dict[str, bytes] | None = None) -> None:
        """A new version of targets (with `targets` set as its files), snapshot and timestamp."""
        if targets is not None:
            self.targets.signed.targets = {}
            for name, data in targets.items():
                info = TargetFile.from_data(name, data, ["sha256"])
                self.targets.signed.targets[name] = info
                self.files[f"targets/{info.hashes['sha256']}.{name}"] = data
        self.targets.signed.version += 1
        self._sign(self.targets, "targets")
        self.files[f"{self.targets.signed.version}.targets.json"] = self.targets.to_bytes()
        self.snapshot.signed.version += 1
        self.snapshot.signed.meta["targets.json"] = MetaFile(version=self.targets.signed.version)
        self._sign(self.snapshot, "snapshot")
        self.files[f"{self.snapshot.signed.version}.snapshot.json"] = self.snapshot.to_bytes()
        self.publish_timestamp()

    def publish_timestamp(self, *, expires: dt.datetime | None = None, version: int | None = None,
                          signer: Signer | None = None) -> None:
        """A new timestamp.json; the arguments are for attackers and careless owners."""
        self.timestamp.signed.version = version if version is not None else self.timestamp.signed.version + 1
        self.timestamp.signed.expires = expires or _in(1)
        self.timestamp.signed.snapshot_meta = MetaFile(version=self.snapshot.signed.version)
        self.timestamp.signatures.clear()
        self.timestamp.sign(signer or self.signers["timestamp"])
        self.files["timestamp.json"] = self.timestamp.to_bytes()

    def _sign(self, md: Metadata[Any], role: str) -> None:
        md.signatures.clear()
        md.sign(self.signers[role])

    def rotate_root(self) -> None:
        """Root version n+1 with a new root key (and a new timestamp key), signed by the old
        root key and the new one, as the TUF specification requires of a rotation."""
        old = self.signers["root"]
        for role in ("root", "timestamp"):
            self.root.signed.revoke_key(self.signers[role].public_key.keyid, role)
            self.signers[role] = CryptoSigner.generate_ed25519()
            self.root.signed.add_key(self.signers[role].public_key, role)
        self.root.signed.version += 1
        self._sign_root([old, self.signers["root"]])
        self.publish_timestamp()

    def cut_short(self, name: str) -> None:
        """Send the target `name` with its full Content-Length but only half its bytes, then
        close: a connection lost mid-body."""
        info = self.targets.signed.targets[name]
        self.short.add(f"targets/{info.hashes['sha256']}.{name}")

    def tamper(self, name: str, data: bytes) -> None:
        """Serve `data` where the target `name` is published, metadata unchanged."""
        info = self.targets.signed.targets[name]
        self.files[f"targets/{info.hashes['sha256']}.{name}"] = data

    # --- the CDN -------------------------------------------------------------------------------

    def app(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        self.hits.append(path)
        if method not in ("GET", "HEAD"):
            start("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return []
        body = self.files.get(path.removeprefix("/"))
        if body is None:
            text = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
            start("404 Not Found", [("Content-Type", "application/xml"),
                                    ("Content-Length", str(len(text)))])
            return [text] if method == "GET" else []
        start("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body))),
                         ("ETag", f'"{hashlib.md5(body).hexdigest()}"')])
        if path.removeprefix("/") in self.short:
            return [body[: len(body) // 2]] if method == "GET" else []
        return [body] if method == "GET" else []


@dataclass
class ServedRepository:
    repo: TufRepository
    server: WsgiThread

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


def serve(repo: TufRepository) -> ServedRepository:
    return ServedRepository(repo, serve_wsgi(repo.app))
