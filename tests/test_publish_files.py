"""Files mode is as safe as Git mode: inside its folder, all files or none, no lost update."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tagsync.atomic import folder_lock
from tagsync.cli import main
from tagsync.config import load_config
from tagsync.errors import BranchMovedError, PublishError, UnsafePathError, YamlSyntaxError
from tagsync.plan import Change
from tagsync.publish import PublishResult, Snapshot
from tagsync.publish.files import DirSnapshot, FilesPublisher
from tagsync.run import run
from tests.servers.hostile import HostileRegistry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "a.yml").write_text("a: old\n")
    (root / "b.yml").write_text("b: old\n")
    return root


def test_a_path_with_dotdot_is_refused(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "victim.yml").write_text("v: 1\n")
    with pytest.raises(UnsafePathError, match=r"without '\.\.'"):
        FilesPublisher(folder).snapshot().read("../victim.yml")


def test_an_absolute_path_is_refused(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "victim.yml").write_text("v: 1\n")
    with pytest.raises(UnsafePathError):
        FilesPublisher(folder).snapshot().read(str(tmp_path / "victim.yml"))


def test_a_symlink_leading_outside_is_refused_for_reading_and_writing(folder: Path,
                                                                        tmp_path: Path) -> None:
    (tmp_path / "victim.yml").write_text("v: 1\n")
    (folder / "link.yml").symlink_to(tmp_path / "victim.yml")
    publisher = FilesPublisher(folder)
    with pytest.raises(UnsafePathError, match="outside"):
        publisher.snapshot().read("link.yml")
    with pytest.raises(UnsafePathError):
        publisher.publish(DirSnapshot(folder), {"link.yml": b"v: 2\n"}, "m")
    assert (tmp_path / "victim.yml").read_text() == "v: 1\n"
    assert (folder / "link.yml").is_symlink()


def test_a_symlink_inside_is_edited_through_and_stays_a_link(folder: Path) -> None:
    (folder / "real").mkdir()
    (folder / "real" / "c.yml").write_text("c: old\n")
    (folder / "c.yml").symlink_to("real/c.yml")
    publisher = FilesPublisher(folder)
    snap = publisher.snapshot()
    assert snap.read("c.yml") == b"c: old\n"
    publisher.publish(snap, {"c.yml": b"c: new\n"}, "m")
    assert (folder / "c.yml").is_symlink()
    assert (folder / "real" / "c.yml").read_text() == "c: new\n"


def test_a_file_changed_since_it_was_read_makes_the_run_replan(folder: Path) -> None:
    publisher = FilesPublisher(folder)
    mine, theirs = publisher.snapshot(), publisher.snapshot()
    mine.read("a.yml")
    theirs.read("a.yml")
    publisher.publish(theirs, {"a.yml": b"a: theirs\n"}, "m")
    with pytest.raises(BranchMovedError, match=r"a\.yml changed since this run read it"):
        publisher.publish(mine, {"a.yml": b"a: mine\n"}, "m")
    assert (folder / "a.yml").read_text() == "a: theirs\n"


def test_a_read_only_file_writes_nothing_at_all(folder: Path) -> None:
    os.chmod(folder / "b.yml", 0o444)
    publisher = FilesPublisher(folder)
    snap = publisher.snapshot()
    snap.read("a.yml")
    snap.read("b.yml")
    with pytest.raises(PublishError, match="read-only"):
        publisher.publish(snap, {"a.yml": b"a: new\n", "b.yml": b"b: new\n"}, "m")
    assert (folder / "a.yml").read_text() == "a: old\n"
    assert sorted(p.name for p in folder.iterdir()) == ["a.yml", "b.yml"]  # no temp file left


def test_a_write_failing_midway_renames_nothing(folder: Path) -> None:
    """A real write error on the second file (the file size limit, as a full disk would):
    the first file, already staged, is not renamed either."""
    code = f"""
import resource, signal, sys
sys.path.insert(0, {str(ROOT / 'src')!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
from pathlib import Path
from tagsync.errors import PublishError
from tagsync.publish.files import FilesPublisher
p = FilesPublisher(Path({str(folder)!r}))
snap = p.snapshot(); snap.read("a.yml"); snap.read("b.yml")
try:
    p.publish(snap, {{"a.yml": b"a: new\\n", "b.yml": b"b: " + b"x" * 10000 + b"\\n"}}, "m")
except PublishError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("b.yml: cannot write: File too large; nothing was written")
    assert (folder / "a.yml").read_text() == "a: old\n"
    assert (folder / "b.yml").read_text() == "b: old\n"
    assert sorted(p.name for p in folder.iterdir()) == ["a.yml", "b.yml"]


# --- through `tagsync run` and `tagsync set` ------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[HostileRegistry]:
    server = HostileRegistry(tags={"good/app": ["1.0.0"], "good/other": ["2.0.0"]}).start()
    try:
        yield server
    finally:
        server.stop()


def files_config(folder: Path, registry: HostileRegistry, file: str = "images.yml") -> Path:
    config = folder / "tagsync.yaml"
    config.write_text(f"""\
catalogs:
  - name: kernels
    file: {file}
    entries: .images[*]
    image: "{registry.host}/{{name}}"
    tag: .tag
    digest: .digest
registries:
  - host: "{registry.host}"
    url: {registry.url}
""")
    return config


def test_a_catalog_path_leaving_the_folder_is_a_config_error(
        folder: Path, tmp_path: Path, registry: HostileRegistry,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "victim.yml").write_text('images:\n  - {name: good/app, tag: "1.0.0", digest: x}\n')
    config = files_config(folder, registry, "../victim.yml")
    assert main(["run", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "must be relative" in err and "Traceback" not in err
    assert "digest: x" in (tmp_path / "victim.yml").read_text()


class RacingPublisher(FilesPublisher):
    """Another run writes the catalog between this run's read and its first publish."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.publishes = 0

    def publish(self, snapshot: Snapshot, files: dict[str, bytes], message: str,
                changes: Sequence[Change] = ()) -> PublishResult:
        self.publishes += 1
        if self.publishes == 1:
            path = self.root / "images.yml"
            path.write_text(path.read_text() + "# written by the other run\n")
        return super().publish(snapshot, files, message, changes)


def test_two_runs_at_once_keep_both_edits(folder: Path, registry: HostileRegistry) -> None:
    (folder / "images.yml").write_text(
        'images:\n  - name: good/app\n    tag: "1.0.0"\n    digest: old\n'
        '  - name: good/other\n    tag: "2.0.0"\n    digest: other-old\n')
    config = load_config(files_config(folder, registry))
    publisher = RacingPublisher(folder)
    summary = run(config, publisher=publisher)
    digest, _ = registry.manifest("good/app", "1.0.0")
    other, _ = registry.manifest("good/other", "2.0.0")
    assert summary.attempts == 2  # re-read and re-planned, as after a moved branch
    assert (folder / "images.yml").read_text() == (
        f'images:\n  - name: good/app\n    tag: "1.0.0"\n    digest: {digest}\n'
        f'  - name: good/other\n    tag: "2.0.0"\n    digest: {other}\n'
        "# written by the other run\n")


def test_set_in_place_on_a_symlink_edits_the_target(folder: Path) -> None:
    (folder / "real.yml").write_text("a: old  # kept\n")
    (folder / "link.yml").symlink_to("real.yml")
    assert main(["set", "-i", str(folder / "link.yml"), ".a", "new"]) == 0
    assert (folder / "link.yml").is_symlink()
    assert (folder / "real.yml").read_text() == "a: new  # kept\n"


def test_set_with_a_value_that_is_not_utf8_is_a_clear_error(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    value = b"v1\xff".decode("utf-8", "surrogateescape")  # how such argv bytes reach Python
    assert main(["set", "-i", str(folder / "a.yml"), ".a", value]) == 1
    assert "VALUE is not valid UTF-8" in capsys.readouterr().err
    assert (folder / "a.yml").read_text() == "a: old\n"


def test_set_on_a_read_only_file_is_a_clean_error(folder: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    os.chmod(folder / "a.yml", 0o444)
    assert main(["set", "-i", str(folder / "a.yml"), ".a", "new"]) == 1
    err = capsys.readouterr().err
    assert "a.yml: the file is read-only (mode 0444)" in err and "Traceback" not in err


def test_a_nul_byte_in_a_catalog_is_reported_with_line_and_column(folder: Path) -> None:
    from tagsync.catalog.edit import Catalog

    with pytest.raises(YamlSyntaxError) as info:
        Catalog(b"a: 1\nb: x\x00y\n", "c.yml")
    assert str(info.value) == "c.yml:2:5: character #x0000 is not allowed in YAML"


def test_a_run_waits_for_the_folder_lock_then_sees_the_other_runs_write(folder: Path) -> None:
    """The compare and the renames happen under the lock: a run that holds it (here, the test)
    finishes its write first, and the waiting run then finds the file changed and re-plans."""
    publisher = FilesPublisher(folder)
    snap = publisher.snapshot()
    snap.read("a.yml")
    outcome: list[BaseException | None] = []

    def publish() -> None:
        try:
            publisher.publish(snap, {"a.yml": b"a: mine\n"}, "m")
            outcome.append(None)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    with folder_lock(folder):
        waiting = threading.Thread(target=publish)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked on the lock, nothing written
        (folder / "a.yml").write_text("a: theirs\n")
    waiting.join(10)
    assert isinstance(outcome[0], BranchMovedError)
    assert (folder / "a.yml").read_text() == "a: theirs\n"
