"""One refused edit fails its own change, never the whole run.

The edit engine's last word (`catalog.readback`) refuses an edit whose text would not read back
as intended; a file holding one is left as it was, whole (never a partial file), its changes are
failures that name the file, line, column and reason, every other file is still written, and the
run exits 3 (partial). The adversary is a real file: a tag under an anchor whose name holds a `:`
(`&t:x 1.0.0`), which YAML 1.2 readers take as the anchor `t:x` and PyYAML as the anchor `t`
before the value `:x 1.0.0`; no rendering of the new tag reads back right for both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagsync.catalog.edit import Catalog
from tagsync.cli import main
from tagsync.config import load_config
from tagsync.errors import EXIT_PARTIAL
from tagsync.plan import Change, Plan
from tagsync.render import render_files
from tagsync.run import run
from tests.servers.hostile import HostileRegistry

GOOD_A = 'images:\n  - name: good/a\n    tag: "1.0.0"\n    digest: "0123456789ab"\n'
REFUSED = '  - name: good/b\n    tag: &t:x 1.0.0\n    digest: "0123456789ab"\n'
GOOD_C = '  - name: good/c\n    tag: "1.0.0"\n    digest: "0123456789ab"\n'


@pytest.fixture
def registry() -> Iterator[HostileRegistry]:
    server = HostileRegistry(tags={"good/a": ["1.0.0", "1.1.0"], "good/b": ["1.0.0", "1.1.0"],
                                   "good/c": ["1.0.0", "1.1.0"]}).start()
    try:
        yield server
    finally:
        server.stop()


def checkout(tmp_path: Path, registry: HostileRegistry, b: str) -> Path:
    """Two catalog files beside a config: `cat/a.yml` (fine) and `cat/b.yml` (`b`)."""
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.yml").write_text(GOOD_A)
    (tmp_path / "cat" / "b.yml").write_text(b)
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
catalogs:
  - name: kernels
    files: ["cat/*.yml"]
    entries: .images[*]
    image: "{registry.host}/{{name}}"
    tag: .tag
    digest: .digest
    digest_format: image-id
    policy: {{kind: semver}}
registries:
  - host: "{registry.host}"
    url: {registry.url}
""")
    return config


def json_run(capsys: pytest.CaptureFixture[str], config: Path, *args: str
             ) -> tuple[int, dict[str, Any], str]:
    code = main(["run", "-c", str(config), "--json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_a_refused_edit_fails_its_change_and_the_other_file_is_written(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = "images:\n" + REFUSED
    config = checkout(tmp_path, registry, b)
    code, summary, err = json_run(capsys, config)
    assert code == EXIT_PARTIAL and "Traceback" not in err
    assert summary["status"] == "partial"
    assert (tmp_path / "cat" / "b.yml").read_text() == b  # byte for byte
    assert 'tag: "1.1.0"' in (tmp_path / "cat" / "a.yml").read_text()
    [failure] = summary["failures"]
    assert (failure["file"], failure["line"], failure["column"]) == ("cat/b.yml", 3, 10)
    assert failure["image"] == f"{registry.host}/good/b"
    assert "would read back as ':x 1.1.0' instead of '1.1.0'" in failure["error"]
    assert "cat/b.yml is left as it was" in failure["error"]
    assert [c["file"] for c in summary["changes"]] == ["cat/a.yml", "cat/a.yml"]


def test_a_file_with_a_refused_edit_is_left_whole_and_each_of_its_changes_says_why(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = "images:\n" + GOOD_C + REFUSED
    config = checkout(tmp_path, registry, b)
    code, summary, _ = json_run(capsys, config)
    assert code == EXIT_PARTIAL
    assert (tmp_path / "cat" / "b.yml").read_text() == b  # never a partial file
    failures = {f["image"].rsplit("/", 1)[1]: f for f in summary["failures"]}
    assert set(failures) == {"b", "c"}
    assert (failures["b"]["line"], failures["b"]["column"]) == (6, 10)
    assert "would read back as" in failures["b"]["error"]
    # the bystander names the edit that kept its file as it was, and where
    assert failures["c"]["line"] == 3
    assert "cat/b.yml:6:10" in failures["c"]["error"] and "left as it was" in failures["c"]["error"]
    assert all(c["file"] == "cat/a.yml" for c in summary["changes"])


def test_a_dry_run_shows_the_refusal_and_only_the_other_file_s_diff(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = checkout(tmp_path, registry, "images:\n" + REFUSED)
    code, summary, _ = json_run(capsys, config, "--dry-run")
    assert code == EXIT_PARTIAL
    assert "+++ b/cat/a.yml" in str(summary["diff"]) and "cat/b.yml" not in str(summary["diff"])
    assert len(summary["failures"]) == 1


def test_the_cli_names_file_line_and_column_of_the_refused_change(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = checkout(tmp_path, registry, "images:\n" + REFUSED)
    assert main(["run", "-c", str(config)]) == EXIT_PARTIAL
    out, err = capsys.readouterr()
    assert f"failed {registry.host}/good/b:1.1.0 (cat/b.yml:3:10): " in err
    assert "1 failed" in out and "Traceback" not in err


def test_when_every_file_is_refused_nothing_is_written_and_the_run_is_partial(
        registry: HostileRegistry, tmp_path: Path) -> None:
    config = checkout(tmp_path, registry, "images:\n" + REFUSED)
    (tmp_path / "cat" / "a.yml").write_text("images:\n" + REFUSED.replace("good/b", "good/a"))
    before = {p: p.read_bytes() for p in (tmp_path / "cat").iterdir()}
    summary = run(load_config(config))
    assert summary.partial and not summary.changes and len(summary.failures) == 2
    assert {p: p.read_bytes() for p in (tmp_path / "cat").iterdir()} == before


def test_two_catalogs_writing_one_value_differently_fail_that_file_only(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same class: an edit the engine refuses for another reason (two edits of one value)."""
    b = "images:\n" + GOOD_C
    config = checkout(tmp_path, registry, b)
    text = config.read_text()
    head, _, rest = text.partition("registries:")
    other = head.split("catalogs:\n", 1)[1].replace("name: kernels", "name: pinned").replace(
        'files: ["cat/*.yml"]', "file: cat/b.yml").replace("policy: {kind: semver}",
                                                            "policy: {kind: same}")
    config.write_text(f"{head}{other}registries:{rest}")
    code, summary, err = json_run(capsys, config)
    assert code == EXIT_PARTIAL and "Traceback" not in err
    assert (tmp_path / "cat" / "b.yml").read_text() == b
    assert 'tag: "1.1.0"' in (tmp_path / "cat" / "a.yml").read_text()
    assert {f["file"] for f in summary["failures"]} == {"cat/b.yml"}
    assert all("edited twice" in f["error"] for f in summary["failures"])


# --- the edit stage alone: whatever files hold a refused edit, no other file is lost --------

TRAP = "&t:x 1.0.0"  # no rendering of a new tag here reads back right for every reader


@settings(derandomize=True, deadline=None, database=None, max_examples=60,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=4), min_size=1, max_size=4))
def test_each_file_is_written_whole_or_left_whole_and_every_change_is_accounted_for(
        files: list[list[bool]]) -> None:
    """`files[i][j]`: whether entry j of file i is a trap. A file with a trap is left as it was
    and each of its entries is a failure (the trap's with its column); every other file gets
    every one of its edits."""
    catalogs: dict[str, Catalog] = {}
    changes: list[Change] = []
    for i, traps in enumerate(files):
        name = f"f{i}.yml"
        text = "images:\n" + "".join(f"  - tag: {TRAP if trap else '1.0.0'}\n" for trap in traps)
        catalogs[name] = Catalog(text, name)
        changes += [Change("c", name, 0, f".images[{j}].tag", j + 2, f"r.test/i{i}e{j}", "1.0.0",
                           "1.0.0", "2.0.0", "policy", slot=f"{name}:{j}")
                    for j in range(len(traps))]
    plan, written = render_files(catalogs, Plan(changes=list(changes)))
    clean = {f"f{i}.yml" for i, traps in enumerate(files) if not any(traps)}
    assert set(written) == clean
    for name in clean:
        assert written[name].decode() == catalogs[name].text.replace("1.0.0", "2.0.0")
    assert [c for c in changes if c.file in clean] == plan.changes
    failed = {(f.file, f.image): f for f in plan.failures}
    assert set(failed) == {(c.file, c.image) for c in changes if c.file not in clean}
    for i, traps in enumerate(files):
        for j, trap in enumerate(traps):
            failure = failed.get((f"f{i}.yml", f"r.test/i{i}e{j}"))
            if failure is not None and trap:
                assert failure.column is not None and "would read back as" in failure.error
            elif failure is not None:
                assert "another edit in it was refused" in failure.error


def test_a_file_with_too_many_references_to_try_one_by_one_names_the_refusal_in_each_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagsync.render.MAX_TRIES", 1)
    catalog = Catalog(f"images:\n  - tag: 1.0.0\n  - tag: {TRAP}\n", "f.yml")
    changes = [Change("c", "f.yml", 0, f".images[{j}].tag", j + 2, f"r.test/e{j}", "1.0.0",
                      "1.0.0", "2.0.0", "policy", slot=f"f.yml:{j}") for j in range(2)]
    plan, written = render_files({"f.yml": catalog}, Plan(changes=changes))
    assert written == {} and plan.changes == []
    assert [f.line for f in plan.failures] == [2, 3]
    assert all("an edit in it was refused (f.yml:3:" in f.error for f in plan.failures)
