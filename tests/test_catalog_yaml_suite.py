"""The edit engine against the YAML test suite: never a wrong file, whatever the YAML (issue 34).

Every valid input of yaml/yaml-test-suite (../shared/corpus/yaml-test-suite, skipped when absent),
every scalar a path can address set to each hard value (`1.10`, `yes`, `null`, `~`, `: x`, `- y`,
`#c`, `a #b`, quotes, a newline, a leading space, "", unicode, a digest): each edit is either
refused with a typed error or gives a file that PyYAML (pure and libyaml), ruamel.yaml and
eemeli's `yaml` (1.2 and 1.1) read with the edited scalar as exactly the new string and every
other node as before, and no byte outside the edited node changed. The judge is
tests/yaml_suite.py; `make bench` prints the same rates (bench/yaml_suite.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import yaml_suite

pytestmark = pytest.mark.skipif(not yaml_suite.SUITE.is_dir(),
                                reason=f"{yaml_suite.SUITE} is absent")


@pytest.fixture(scope="module")
def tally() -> yaml_suite.Tally:
    if not yaml_suite.node_available():
        pytest.fail("npm yaml (eemeli) or node is missing: run `make deps`")
    return yaml_suite.run(sample=2)  # a fixed half; `make bench` prints the rates of all


def test_no_edit_of_the_suite_gives_a_wrong_file(tally: yaml_suite.Tally) -> None:
    assert tally.of("wrong") == [], yaml_suite.report(tally)


def test_no_edit_of_the_suite_ends_in_a_traceback(tally: yaml_suite.Tally) -> None:
    assert tally.of("traceback") == [], yaml_suite.report(tally)


def test_the_suite_is_mostly_written_not_refused(tally: yaml_suite.Tally) -> None:
    # A judge that refuses everything passes the two tests above: the engine must write most
    # edits (about 88% today; the rest are tags, anchors, block scalars it cannot hold).
    assert tally.count("right") > 0.8 * len(tally.outcomes), yaml_suite.report(tally)


def test_the_judge_catches_a_wrong_file() -> None:
    """The adversary's own check: an output that reads differently is called wrong."""
    text = "? a\n? b\nc: d\n"
    target = next(t for t in yaml_suite.targets(text) if t.path == ("a",))
    for read in yaml_suite.python_readers().values():
        before = read(text)
        assert yaml_suite._judge("r", before, read('? a\n "1.10"? b\nc: d\n'), target.index,
                                 "1.10")
        assert not yaml_suite._judge("r", before, read('? a\n: "1.10"\n? b\nc: d\n'),
                                     target.index, "1.10")


def test_set_on_the_command_line_gives_the_engines_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tagsync set` is the engine: its output, or a refusal with exit 1 and no traceback."""
    from tagsync.catalog import Edit, apply_edits, format_path
    from tagsync.cli import main
    from tagsync.errors import TagsyncError

    f = tmp_path / "in.yaml"
    for _case, text, target, value in yaml_suite.edits(yaml_suite.valid_cases(), sample=40):
        f.write_bytes(text.encode())
        try:
            want: bytes | None = apply_edits(text.encode(), [Edit(target.path, value, target.doc)])
        except TagsyncError:
            want = None
        code = main(["set", "--doc", str(target.doc), "--", str(f), format_path(target.path),
                     value])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        assert f.read_bytes() == text.encode()
        if want is None:
            assert (code, out) == (1, ""), err
            assert str(f) in err
        else:
            assert (code, out.encode()) == (0, want), err


def test_every_scalar_of_a_case_set_in_one_pass_is_right_or_refused() -> None:
    """As a run edits a catalog: many values in one pass, one read-back for all of them."""
    tally = yaml_suite.run_multi()
    assert tally.of("wrong") + tally.of("traceback") == [], yaml_suite.report(tally)
    assert tally.count("right") > 0.7 * len(tally.outcomes), yaml_suite.report(tally)
