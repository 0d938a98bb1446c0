"""`tagsync update-trust-root`: the explicit refresh of a pinned Sigstore trusted_root.json,
through a real TUF repository (python-tuf's metadata API, ed25519 keys) served on 127.0.0.1.

The target is the real public-good trusted_root.json (../shared/fixtures/signatures). Every test
runs with non-loopback sockets refused: nothing here may reach Sigstore's TUF CDN.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from securesystemslib.signer import CryptoSigner

from tagsync.atomic import folder_lock
from tagsync.cli import main
from tagsync.verify.refresh import (
    DEFAULT_MIRROR,
    TARGET,
    bundled_tuf_root,
    default_metadata_dir,
    describe_changes,
    update_trust_root,
)
from tagsync.verify.trust import load_trust_root
from tests.servers.signed import loopback_only, signatures_dir
from tests.servers.tuf_repo import ServedRepository, TufRepository, serve

pytestmark = pytest.mark.usefixtures("loopback_only")
assert loopback_only  # a fixture, used through pytestmark

REKOR_V1 = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
REKOR_V2_URL = "https://log2025-1.rekor.sigstore.dev"


def real_root() -> bytes:
    return (signatures_dir() / "sigstore-python" / "trusted_root.json").read_bytes()


def older_root() -> bytes:
    """The real root as it was before the Rekor v2 log was added: the second target version."""
    doc = json.loads(real_root())
    doc["tlogs"] = [t for t in doc["tlogs"] if t["baseUrl"] != REKOR_V2_URL]
    return json.dumps(doc, indent=2).encode()


@dataclass
class Setup:
    served: ServedRepository
    tuf_root: Path  # the repository's 1.root.json, the user's first trusted root
    metadata: Path
    path: Path  # the trusted_root.json being refreshed

    @property
    def repo(self) -> TufRepository:
        return self.served.repo

    def argv(self, *extra: str, tuf_root: bool = True) -> list[str]:
        args = ["update-trust-root", str(self.path), "--mirror", self.served.url,
                "--metadata-dir", str(self.metadata)]
        return args + (["--tuf-root", str(self.tuf_root)] if tuf_root else []) + list(extra)


@pytest.fixture
def tuf(tmp_path: Path) -> Iterator[Setup]:
    repo = TufRepository()
    repo.publish({TARGET: older_root()})
    served = serve(repo)
    tuf_root = tmp_path / "1.root.json"
    tuf_root.write_bytes(repo.first_root)
    (tmp_path / "sigstore").mkdir()
    yield Setup(served, tuf_root, tmp_path / "tuf-cache", tmp_path / "sigstore" / "trusted_root.json")
    served.stop()


def cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- refreshing --------------------------------------------------------------------------------


def test_the_first_refresh_writes_the_verified_target(tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, tuf.argv())
    assert (code, err) == (0, "")
    assert tuf.path.read_bytes() == older_root()
    assert out.startswith(f"updated {tuf.path} from {tuf.served.url} (TUF root version 1): "
                          "1 Rekor log, 2 Fulcio CAs, 2 CT logs, 1 timestamp authority\n")


def test_a_second_refresh_with_nothing_new_is_unchanged_and_does_not_rewrite(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, tuf.argv())[0] == 0
    os.utime(tuf.path, ns=(1_000_000_000, 1_000_000_000))
    inode = tuf.path.stat().st_ino
    code, out, _ = cli(capsys, tuf.argv())
    assert code == 0
    assert out.startswith(f"unchanged {tuf.path}: 1 Rekor log")
    assert (tuf.path.stat().st_mtime_ns, tuf.path.stat().st_ino) == (1_000_000_000, inode)


def test_a_new_target_version_is_updated_and_lists_what_was_added(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, tuf.argv())[0] == 0
    tuf.repo.publish({TARGET: real_root()})
    code, out, _ = cli(capsys, tuf.argv())
    assert code == 0
    assert tuf.path.read_bytes() == real_root()
    assert "2 Rekor logs" in out.splitlines()[0]
    assert f"  + added Rekor log {REKOR_V2_URL} cf1199155bdd… (valid from 2025-09-23T00:00:00Z)" in out


def test_a_root_rotation_is_followed_and_persisted_in_the_metadata_dir(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.repo.rotate_root()  # the old root key is gone from version 2; only the chain leads there
    tuf.repo.publish({TARGET: real_root()})
    code, out, _ = cli(capsys, tuf.argv())
    assert code == 0
    assert "(TUF root version 2)" in out
    assert json.loads((tuf.metadata / "root.json").read_bytes())["signed"]["version"] == 2
    assert (tuf.metadata / "root_history" / "2.root.json").read_bytes() == tuf.repo.files["2.root.json"]


def test_a_later_refresh_of_another_mirror_starts_from_the_cached_root(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.repo.rotate_root()
    assert cli(capsys, tuf.argv())[0] == 0
    tuf.repo.publish({TARGET: real_root()})
    code, out, _ = cli(capsys, tuf.argv(tuf_root=False))
    assert code == 0
    assert "updated" in out and "(TUF root version 2)" in out


def test_a_refresh_waits_while_another_holds_the_metadata_cache(tuf: Setup) -> None:
    """python-tuf's cache is not safe for two updaters at once: the second waits its turn."""
    tuf.metadata.mkdir()
    done: list[BaseException | None] = []

    def refresh() -> None:
        try:
            update_trust_root(tuf.path, mirror=tuf.served.url, tuf_root=tuf.tuf_root,
                              metadata_dir=tuf.metadata)
            done.append(None)
        except BaseException as exc:  # handed to the test's thread
            done.append(exc)

    with folder_lock(tuf.metadata):
        waiting = threading.Thread(target=refresh)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and tuf.repo.hits == []  # blocked before asking the mirror
    waiting.join(30)
    assert done == [None]
    assert tuf.path.read_bytes() == older_root()


def test_the_metadata_dir_defaults_to_the_mirror_under_xdg_cache_home(
        tuf: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    result = update_trust_root(tuf.path, mirror=tuf.served.url, tuf_root=tuf.tuf_root)
    expected = tmp_path / "xdg" / "tagsync" / "tuf" / quote(tuf.served.url, safe="")
    assert result.metadata_dir == expected
    assert (expected / "timestamp.json").is_file()


def test_without_xdg_cache_home_the_metadata_dir_is_under_dot_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_metadata_dir(DEFAULT_MIRROR + "/") == (
        tmp_path / ".cache" / "tagsync" / "tuf" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev")


def test_an_existing_file_keeps_its_permissions(tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.path.write_bytes(b"{}")
    tuf.path.chmod(0o640)
    assert cli(capsys, tuf.argv())[0] == 0
    assert (tuf.path.read_bytes(), stat.S_IMODE(tuf.path.stat().st_mode)) == (older_root(), 0o640)


def test_a_symlinked_file_is_written_through_the_link(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    shared = tuf.path.parent.parent / "shared-trusted-root.json"
    shared.write_bytes(b"{}")
    tuf.path.symlink_to(shared)
    assert cli(capsys, tuf.argv())[0] == 0
    assert tuf.path.is_symlink()
    assert shared.read_bytes() == older_root()


def test_sigstore_ships_a_first_root_for_its_staging_mirror_too() -> None:
    root = bundled_tuf_root("https://tuf-repo-cdn.sigstage.dev/")
    assert root is not None
    assert json.loads(root)["signed"]["_type"] == "root"


# --- what is refused, leaving PATH as it was ---------------------------------------------------


def test_an_odd_file_in_place_is_replaced_not_a_traceback(tuf: Setup,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever was at PATH is not trusted, only compared: a CA with an empty chain is nothing."""
    tuf.path.write_text('{"certificateAuthorities": [{"certChain": {"certificates": []}}]}')
    code, out, _ = cli(capsys, tuf.argv())
    assert code == 0 and "updated" in out
    assert tuf.path.read_bytes() == older_root()


def test_a_log_key_of_a_type_cryptography_cannot_load_is_skipped(tmp_path: Path) -> None:
    """A future log's key type (say, post-quantum) must not make the whole root unreadable."""
    doc = json.loads(real_root())
    unknown = bytes.fromhex("300e300506032a030403050001020304")  # SPKI of algorithm 1.2.3.4
    doc["ctlogs"].append({**doc["ctlogs"][0], "publicKey": {
        **doc["ctlogs"][0]["publicKey"], "rawBytes": base64.b64encode(unknown).decode()}})
    (tmp_path / "root.json").write_text(json.dumps(doc))
    root = load_trust_root(tmp_path / "root.json")
    assert len(root.ctlogs) == len(doc["ctlogs"]) - 1


def refreshed_once(tuf: Setup, capsys: pytest.CaptureFixture[str]) -> bytes:
    assert cli(capsys, tuf.argv())[0] == 0
    return tuf.path.read_bytes()


def test_an_expired_timestamp_is_refused_and_leaves_the_file(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = refreshed_once(tuf, capsys)
    tuf.repo.publish({TARGET: real_root()})
    tuf.repo.publish_timestamp(expires=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    code, out, err = cli(capsys, tuf.argv())
    assert (code, out) == (1, "")
    assert err.startswith("tagsync: error: timestamp.json is expired")
    assert tuf.path.read_bytes() == before


def test_a_tampered_target_is_refused_and_leaves_the_file(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = refreshed_once(tuf, capsys)
    tuf.repo.publish({TARGET: real_root()})
    tuf.repo.tamper(TARGET, real_root().replace(b"rekor.sigstore.dev", b"rekor.attacker.io", 1))
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert f"{TARGET}: does not match its TUF metadata" in err
    assert tuf.path.read_bytes() == before


def test_a_connection_lost_mid_file_is_a_clean_error_and_leaves_the_file(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = refreshed_once(tuf, capsys)
    tuf.repo.publish({TARGET: real_root()})
    tuf.repo.cut_short(TARGET)
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert err.startswith("tagsync: error: cannot fetch ") and TARGET in err
    assert "Traceback" not in err
    assert tuf.path.read_bytes() == before


def test_a_timestamp_signed_by_another_key_is_refused(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = refreshed_once(tuf, capsys)
    tuf.repo.publish({TARGET: real_root()})
    tuf.repo.publish_timestamp(signer=CryptoSigner.generate_ed25519())
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert "tagsync: error: bad signatures: timestamp was signed by 0/1 keys" in err
    assert tuf.path.read_bytes() == before


def test_a_rolled_back_timestamp_is_refused(tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.repo.publish_timestamp()  # version 2, cached by the first refresh
    before = refreshed_once(tuf, capsys)
    tuf.repo.publish_timestamp(version=1)
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert "tagsync: error: rollback refused: New timestamp version 1 must be >= 2" in err
    assert tuf.path.read_bytes() == before


def test_a_verified_target_that_is_not_a_trust_root_is_refused(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = refreshed_once(tuf, capsys)
    tuf.repo.publish({TARGET: b'{"mediaType": "application/vnd.in-toto+json"}'})
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert (f"{tuf.served.url}'s {TARGET} is not a trust root tagsync can use: not a Sigstore trust root"
            in err)
    assert tuf.path.read_bytes() == before


def test_a_repository_without_the_target_is_refused(tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.repo.publish({"signing_config.v0.2.json": b"{}"})
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert f"tagsync: error: the TUF repository {tuf.served.url} lists no target {TARGET}" in err
    assert not tuf.path.exists()


def test_an_unreachable_mirror_is_a_clean_error(tuf: Setup, capsys: pytest.CaptureFixture[str],
                                                closed_port: int) -> None:
    closed = f"http://127.0.0.1:{closed_port}"
    argv = tuf.argv()
    argv[argv.index(tuf.served.url)] = closed
    code, out, err = cli(capsys, argv)
    assert (code, out) == (1, "")
    assert err == f"tagsync: error: cannot fetch {closed}/2.root.json: Connection refused\n"


def test_a_url_that_is_no_tuf_repository_names_the_http_error(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    argv = tuf.argv()
    argv[argv.index(tuf.served.url)] = f"{tuf.served.url}/elsewhere"
    code, _, err = cli(capsys, argv)
    assert code == 1
    assert err == (f"tagsync: error: {tuf.served.url}/elsewhere/timestamp.json: the mirror answered "
                   "HTTP 404\n")


def test_another_mirror_without_a_tuf_root_is_a_usage_error(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, tuf.argv(tuf_root=False))
    assert code == 2
    assert f"no TUF root to start from for {tuf.served.url}: pass --tuf-root FILE" in err
    assert tuf.served.repo.hits == []


def test_a_mirror_that_is_not_an_http_url_is_a_usage_error(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    argv = tuf.argv()
    argv[argv.index(tuf.served.url)] = "file:///srv/tuf"
    code, _, err = cli(capsys, argv)
    assert code == 2
    assert "--mirror 'file:///srv/tuf' is not an http(s) URL of a TUF repository" in err


def test_a_tuf_root_that_is_not_one_is_a_usage_error(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.tuf_root.write_bytes(real_root())  # a Sigstore trust root, not a TUF root
    code, _, err = cli(capsys, tuf.argv())
    assert code == 2
    assert err.startswith(f"tagsync: error: {tuf.tuf_root}: not a usable TUF root.json")


def test_the_default_mirror_starts_from_the_root_sigstore_ships(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], loopback_only: list[str]) -> None:
    code, _, err = cli(capsys, ["update-trust-root", str(tmp_path / TARGET),
                                "--metadata-dir", str(tmp_path / "cache")])
    assert code == 1  # past the bootstrap (no usage error), stopped at the network
    assert err.startswith(f"tagsync: error: cannot fetch {DEFAULT_MIRROR}/")
    assert "resolve tuf-repo-cdn.sigstore.dev" in loopback_only
    assert (tmp_path / "cache" / "root_history").is_dir()


def test_a_missing_folder_is_refused_before_the_mirror_is_asked(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    tuf.path = tuf.path.parent / "missing" / TARGET
    code, _, err = cli(capsys, tuf.argv())
    assert code == 1
    assert f"the folder {tuf.path.parent} does not exist; nothing was written" in err
    assert tuf.served.repo.hits == []


# --- dry run, JSON, and what runs make of the file ------------------------------------------------


def test_dry_run_says_what_would_change_and_writes_nothing(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = refreshed_once(tuf, capsys)
    cache = {p: p.read_bytes() for p in tuf.metadata.rglob("*") if p.is_file()}
    tuf.repo.rotate_root()
    tuf.repo.publish({TARGET: real_root()})
    code, out, _ = cli(capsys, tuf.argv("--dry-run"))
    assert code == 0
    assert out.startswith(f"would update {tuf.path}")
    assert out.endswith("dry run: nothing written\n")
    assert tuf.path.read_bytes() == before
    assert {p: p.read_bytes() for p in tuf.metadata.rglob("*") if p.is_file()} == cache


def test_json_describes_the_result(tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    refreshed_once(tuf, capsys)
    tuf.repo.publish({TARGET: real_root()})
    code, out, _ = cli(capsys, tuf.argv("--json"))
    assert code == 0
    result = json.loads(out)
    assert result.pop("sha256") == hashlib.sha256(real_root()).hexdigest()
    assert result == {
        "path": str(tuf.path), "mirror": tuf.served.url, "metadata_dir": str(tuf.metadata),
        "status": "updated", "written": True, "dry_run": False, "created": False,
        "tuf_root_version": 1, "length": len(real_root()),
        "counts": {"rekor_logs": 2, "fulcio_cas": 2, "ct_logs": 2, "timestamp_authorities": 1},
        "changes": [{"change": "added", "kind": "Rekor log",
                     "id": "cf1199155bddd051268d1f16ac5c0c75c009f6fb5a63f4177f8e18d7051e3fa0",
                     "url": REKOR_V2_URL, "valid_from": "2025-09-23T00:00:00Z", "valid_until": None}],
    }


def test_the_written_file_is_accepted_by_a_keyless_verify_policy_run(
        tuf: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    from tagsync.config import load_config
    from tagsync.run import make_verifiers

    tuf.repo.publish({TARGET: real_root()})
    assert cli(capsys, tuf.argv())[0] == 0
    config = tuf.path.parent.parent / "tagsync.yaml"
    config.write_text(
        "catalogs:\n"
        "  - name: prod\n"
        "    file: deploy.yaml\n"
        "    pin_digests: true\n"
        "    verify:\n"
        "      identity: https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1\n"
        "      issuer: https://token.actions.githubusercontent.com\n"
        "      trusted_root: sigstore/trusted_root.json\n")
    (verifier,) = make_verifiers(load_config(config)).values()
    assert verifier.root.path == tuf.path
    assert verifier.root.log(bytes.fromhex(REKOR_V1)) is not None
    assert len(verifier.root.authorities) == 2


def test_a_retired_log_is_reported_as_a_window_change() -> None:
    old = real_root()
    doc = json.loads(old)
    doc["tlogs"][0]["publicKey"]["validFor"]["end"] = "2026-01-01T00:00:00Z"
    (change,) = describe_changes(old, json.dumps(doc).encode())
    assert change.describe() == ("~ window changed Rekor log https://rekor.sigstore.dev c0d23d6ad406… "
                                 "(valid from 2021-01-12T11:53:27Z until 2026-01-01T00:00:00Z), "
                                 "was from 2021-01-12T11:53:27Z until open")
