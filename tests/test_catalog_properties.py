"""Properties over generated documents: the edit changes exactly one leaf and nothing else."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from ruamel.yaml import YAML

from tagsync.catalog import Edit, apply_edits
from tagsync.catalog.document import Scalar, locate, parse_documents
from tagsync.errors import CatalogError

TRICKY = ["yes", "no", "null", "~", "", "01", "1.10", "0o17", "a: b", "#x", " x", "x ", "-",
          "- x", "[", "}", ",", "'", '"', "\\", "\t", "\n", "sha256:" + "a" * 64, "ca7b9f52b6c2",
          "3.6-ubuntu", ":latest", "1e3", "2001-12-14", "<<", "é", "😀", "\x85", "\u2028"]
values = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20))
# Keys start with a letter: ruamel's 1.2 reader (a reference reader here) crashes on keys such as
# `._`, which it takes for a float; the edit engine never touches keys, so nothing is lost.
keys = st.from_regex(r"[a-z][a-z_.-]{0,7}", fullmatch=True)
leaves = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))


def trees() -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=4),
            st.dictionaries(keys, children, min_size=1, max_size=4),
        ),
        max_leaves=12,
    )


def leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in leaf_paths(v, (*prefix, k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in leaf_paths(v, (*prefix, i))]
    return [prefix]


def set_leaf(data: Any, path: tuple[Any, ...], value: str) -> Any:
    if not path:
        return value
    head, *rest = path
    data[head] = set_leaf(data[head], tuple(rest), value)
    return data


documents = st.builds(
    lambda data, flow, style, width: (
        data,
        yaml.dump(
            {"root": data}, default_flow_style=flow, default_style=style, width=width,
            allow_unicode=True, sort_keys=False,
        ),
    ),
    trees(),
    st.sampled_from([False, True, None]),
    st.sampled_from([None, "'", '"']),
    st.sampled_from([80, 20, 1000]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents, choice=st.integers(min_value=0), value=values)
def test_edit_changes_exactly_one_leaf(doc: tuple[Any, str], choice: int, value: str) -> None:
    _, text = doc
    paths = leaf_paths(yaml.safe_load(text))
    path = paths[choice % len(paths)]
    node = locate(parse_documents(text)[0], path).node
    assert isinstance(node, Scalar)

    out = apply_edits(text.encode(), [Edit(path, value)]).decode()

    # What each reader saw before, with exactly that leaf changed. (The generator's own dump
    # is not always faithful: PyYAML writes `0o17` plain, an int to YAML 1.2 readers.)
    for load in (yaml.safe_load, YAML(typ="safe", pure=True).load):
        assert load(out) == set_leaf(load(text), path, value)
    assert out.startswith(text[: node.value_start])  # bytes before the scalar: identical
    assert out.endswith(text[node.end :])  # bytes after the scalar: identical


catalog_entries = st.lists(
    st.tuples(
        st.from_regex(r"[a-j][a-j-]{0,7}", fullmatch=True),
        st.lists(st.tuples(st.sampled_from(["3.6-ubuntu", "1.10", "latest", "yes"]),
                           st.sampled_from(['"x"', "'abc'", "ca7b9f52b6c2", '":3.6"'])),
                 min_size=1, max_size=3),
        st.booleans(),
    ),
    min_size=1,
    max_size=5,
)


def lablup_like(entries: list[tuple[str, list[tuple[str, str]], bool]]) -> str:
    out = ["# image catalog\nimages:\n"]
    for i, (name, tags, merged) in enumerate(entries):
        out.append(f"  - name: {name}   # entry {i}\n    tags:\n")
        for tag, digest in tags:
            out.append(f'      - ["{tag}",   {digest}]\n')
        out.append("      # - [\"old\", \"\"]\n")
        if i == 0:
            out.append("    slots: &default\n      cpu: 1    # cores\n")
        elif merged:
            out.append("    slots:\n      <<: *default\n")
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(entries=catalog_entries, picks=st.lists(st.tuples(st.integers(0), st.integers(0), values),
                                               min_size=1, max_size=6))
def test_catalog_digest_edits_keep_comments_anchors_and_data(
    entries: list[tuple[str, list[tuple[str, str]], bool]],
    picks: list[tuple[int, int, str]],
) -> None:
    text = lablup_like(entries)
    data = yaml.safe_load(text)
    edits: dict[tuple[Any, ...], str] = {}
    for i, j, value in picks:
        i %= len(entries)
        j %= len(entries[i][1])
        edits[("images", i, "tags", j, 1)] = value
    out = apply_edits(text.encode(), [Edit(p, v) for p, v in edits.items()]).decode()
    for path, value in edits.items():
        set_leaf(data, path, value)
    assert yaml.safe_load(out) == data
    comment_lines = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    assert comment_lines == [ln for ln in out.splitlines() if ln.lstrip().startswith("#")]
    assert out.count("&default") == text.count("&default")
    assert out.count("*default") == text.count("*default")


# --- block scalars: any header, any body, any new value: written right or refused -------------

block_lines = st.lists(st.sampled_from(["x", "nginx:1.25", "a b", "", "  more", "# not a comment"]),
                       min_size=1, max_size=4)
block_values = st.one_of(
    st.sampled_from(["y", "y\n", "y\n\n", "", "\n", "a\nb", "a\nb\n", " lead", "x #y\n",
                     "nginx:1.26", "nginx:1.26\n"]),
    st.text(alphabet="ab \n", max_size=8),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(style=st.sampled_from(["|", ">"]), chomp=st.sampled_from(["", "-", "+"]),
       digit=st.sampled_from(["", "2"]), lines=block_lines, trailer=st.sampled_from(["", "\n"]),
       value=block_values)
def test_block_scalar_edits_read_back_exactly_or_are_refused(
        style: str, chomp: str, digit: str, lines: list[str], trailer: str, value: str) -> None:
    body = "".join(f"    {line}\n" if line else "\n" for line in lines)
    text = f"a: {style}{digit}{chomp}\n{body}{trailer}b: 1\n"
    try:
        before = yaml.safe_load(text)
    except yaml.YAMLError:
        return  # the generator wrote something YAML does not allow
    try:
        out = apply_edits(text.encode(), [Edit(("a",), value)]).decode()
    except CatalogError:
        event("refused")
        return  # refused, with a reason
    event("written")
    for load in (yaml.safe_load, YAML(typ="safe", pure=True).load):
        assert load(out) == {**before, "a": value}, out
    assert out.endswith("b: 1\n")


# --- a file edited run after run: every state reads as the edits say --------------------------

SEEDS = [
    "? a\n? b # set-like\nc:\n",
    "- { single line, a: b}\n- [x, {y: }]\n",
    "run: |\n  docker pull nginx:1.25\nargs: >-\n  --image=a:1\n  --verbose\nkeep: |+\n  x\n\nend: 1\n",
    "---\n---\nk: ! v\n...\n",
    "- # empty\n-\n- &a x\n- 'q'\n- \"d\"\n- multi\n  line\n",
]


class RepeatedEdits(RuleBasedStateMachine):
    """Each step sets one scalar of the current text; refusals leave the text as it was."""

    @initialize(seed=st.sampled_from(SEEDS))
    def start(self, seed: str) -> None:
        self.text = seed

    @rule(pick=st.integers(min_value=0), value=st.sampled_from(TRICKY))
    def set_one(self, pick: int, value: str) -> None:
        from tests import yaml_suite

        found = yaml_suite.targets(self.text)
        if not found:
            return
        target = found[pick % len(found)]
        try:
            out = apply_edits(self.text.encode(), [Edit(target.path, value, target.doc)]).decode()
        except CatalogError:
            event("refused")
            return
        event("written")
        for name, read in yaml_suite.python_readers().items():
            before = yaml_suite._read(read, self.text)
            if before is not None:
                assert not yaml_suite._judge(name, before, yaml_suite._read(read, out),
                                             target.index, value), (self.text, out)
        self.text = out


# no timing health check: on a busy CI machine a slow example is not a failure
RepeatedEdits.TestCase.settings = settings(max_examples=60, stateful_step_count=12, deadline=None,
                                           suppress_health_check=list(HealthCheck))
test_repeated_edits_of_one_file = RepeatedEdits.TestCase
