"""Appends (`new_tags` pairs, `new_images` entries) over generated catalogs: the file still
parses, every byte outside the inserted text is the same, and the new values read back as the
strings they are for a YAML 1.1 reader (PyYAML) and a YAML 1.2 one (ruamel, pure), so a tag
such as `1.10` or `on` never turns into a number or a boolean.

Catalogs vary in what the appender copies or must step around: the last item's quoting and
spacing, flow lists on one or several lines, comments after the list, other keys after it,
CRLF line ends and a missing final newline. Hypothesis runs derandomized: a failure is a bug.
Two bugs they found are pinned as plain tests at the end (anchors copied into new items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tagsync.catalog import Catalog
from tagsync.catalog.append import Append, fill_template
from tagsync.errors import CatalogError

# Tags and digests that YAML readers would take for something else when written plain.
TRICKY = ["1.10", "1.0", "on", "off", "yes", "no", "y", "n", "true", "null", "~", "1e3", "0o17",
          "0x1F", "1_000", "010", "1:20", "2001-12-14", ".inf", "<<", "=", "-", "3.6-ubuntu",
          "latest", "ca7b9f52b6c2", "sha256:" + "a" * 64, ":3.6-ubuntu", "a,b", "x: y", "#x",
          "[x]", "{x}", "'q'", '"q"', "x #y", " x", "x ", ""]
OCI_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}"
values = st.one_of(st.sampled_from(TRICKY), st.from_regex(OCI_TAG, fullmatch=True),
                   st.text(max_size=8))


def readers() -> list[Any]:
    return [yaml.safe_load, YAML(typ="safe", pure=True).load]


def fast(examples: int) -> settings:
    return settings(derandomize=True, deadline=None, database=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.too_slow])


def inserted(before: str, after: str) -> str:
    """The text `after` adds to `before` in one place; fails if anything else changed."""
    grown = len(after) - len(before)
    assert grown > 0
    common = 0
    while common < len(before) and before[common] == after[common]:
        common += 1
    assert after[:common] == before[:common] and after[common + grown:] == before[common:], (
        f"bytes outside the insertion changed:\n{before!r}\n{after!r}")
    return after[common:common + grown]


def reads_back(before: str, after: str, path: tuple[Any, ...], new_items: list[Any]) -> None:
    """Each reader reads `after` as `before` with `new_items` at the end of the list at `path`."""
    for load in readers():
        expected = load(before)
        target = expected
        for key in path:
            target = target[key]
        target.extend(new_items)
        assert load(after) == expected, load.__qualname__


# --- new tags: [tag, digest] pairs copied from the last pair ---------------------------------


@dataclass(frozen=True)
class PairStyle:
    quotes: tuple[str, str]  # the last pair's quoting of its tag and of its digest
    inner: str  # spaces inside the brackets
    comma: str  # what follows the comma
    dash: str  # what follows `-`
    comment: str  # after the last pair, on its line
    anchor: str  # on the last pair (`&last [a, b]`) or on its tag (`[&t a, b]`)
    flow: str  # "block": `- [a, b]` items (indented or not); "line": `[[a, b], [c, d]]`;
    # "lines": one per line; "commented": one per line, each with a comment after its comma
    after: str  # what follows the list: nothing, a comment, another key
    nl: str
    final_newline: bool


pair_styles = st.builds(
    PairStyle,
    quotes=st.tuples(st.sampled_from(["", "'", '"']), st.sampled_from(["", "'", '"'])),
    inner=st.sampled_from(["", " "]),
    comma=st.sampled_from([" ", "", "   "]),
    dash=st.sampled_from([" ", "   "]),
    comment=st.sampled_from(["", "  # keep me", " #"]),
    anchor=st.sampled_from(["", "pair", "tag"]),
    flow=st.sampled_from(["block", "indentless", "line", "lines", "commented"]),
    after=st.sampled_from(["", "# trailer\n", "  # indented trailer\n", "other: 1\n",
                           "\n# after a blank line\nother: [1]\n", "...\n"]),
    nl=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)


def pair(style: PairStyle, tag: str, digest: str, last: bool) -> str:
    (qt, qd), i = style.quotes, style.inner
    item = "&last " if last and style.anchor == "pair" else ""
    scalar = "&t " if last and style.anchor == "tag" else ""
    return f"{item}[{i}{scalar}{qt}{tag}{qt},{style.comma}{qd}{digest}{qd}{i}]"


def pair_catalog(style: PairStyle, count: int) -> str:
    """Two entries; the second one's `tags` is the list that grows (so text follows it too)."""
    pairs = [pair(style, f"3.{n}-ubuntu", f"ca7b9f52b6c{n}", n == count - 1) for n in range(count)]
    if style.flow in ("block", "indentless"):
        indent = "      " if style.flow == "block" else "    "
        tags = "    tags:\n" + "".join(f"{indent}-{style.dash}{p}\n" for p in pairs)
        tags = tags[:-1] + style.comment + "\n"
    elif style.flow == "line":
        tags = f"    tags: [{', '.join(pairs)}]{style.comment}\n"
    elif style.flow == "lines":
        tags = "    tags: [\n" + ",\n".join(f"      {p}" for p in pairs) + f"\n    ]{style.comment}\n"
    else:  # a comment after each pair, the separators then hold them
        tags = ("    tags: [\n" + "".join(f"      {p},  # {n}\n" for n, p in enumerate(pairs))
                + f"    ]{style.comment}\n")
    text = ("# image catalog\nimages:\n  - name: python\n    tags:\n      - [latest, ':3.6']\n"
            "  - name: r   # second\n" + tags + style.after)
    text = text.replace("\n", style.nl)
    return text if style.final_newline else text.rstrip("\r\n")


@fast(400)
@given(style=pair_styles, count=st.integers(1, 3),
       new=st.lists(st.tuples(values, values), min_size=1, max_size=2))
def test_new_pairs_change_nothing_else_and_read_back_as_strings(
        style: PairStyle, count: int, new: list[tuple[str, str]]) -> None:
    text = pair_catalog(style, count)
    out = Catalog(text).apply([Append(("images", 1, "tags"), pair) for pair in new])
    added = inserted(text, out)
    reads_back(text, out, ("images", 1, "tags"), [list(p) for p in new])
    if style.nl == "\r\n":
        assert "\n" not in added.replace("\r\n", "")  # no bare LF in a CRLF file


@fast(150)
@given(style=pair_styles, new=st.tuples(values, values), other=st.tuples(values, values))
def test_appends_to_two_lists_together_are_the_same_as_one_after_the_other(
        style: PairStyle, new: tuple[str, str], other: tuple[str, str]) -> None:
    text = pair_catalog(style, 2)
    first, second = Append(("images", 0, "tags"), other), Append(("images", 1, "tags"), new)
    together = Catalog(text).apply([first, second])
    assert together == Catalog(Catalog(text).apply([first])).apply([second])
    reads_back(text, Catalog(text).apply([first]), ("images", 0, "tags"), [list(other)])


# --- new images: entries from a template -----------------------------------------------------

# Valid YAML only (the config refuses others): `${…}` is plain in block context, quoted in flow.
TEMPLATES = [
    'name: ${name}\ntags:\n  - ["${tag}", "${digest}"]\n',
    "name: ${name}\ntags:\n  - ['${tag}', '${digest}']\n",
    "name: ${name}\ntags:\n  - - ${tag}\n    - ${digest}\n",
    "name: ${name}   # added by tagsync\ntags: [['${tag}', \"${digest}\"]]\n",
    "{name: \"${name}\", tags: [['${tag}', '${digest}']]}\n",
]


@dataclass(frozen=True)
class EntryStyle:
    indent: str  # of the list's `-` under `images:`
    dash: str  # what follows `-`
    last: str  # the last entry's own tail: nothing, a comment, a nested list
    after: str
    nl: str
    final_newline: bool


entry_styles = st.builds(
    EntryStyle,
    indent=st.sampled_from(["", "  ", "    "]),
    dash=st.sampled_from([" ", "   "]),
    last=st.sampled_from(["", "  # last", "\n{i}  slots: {{cpu: 1}}",
                          "\n{i}  tags:\n{i}    - [a, b]\n{i}    # - [old, gone]"]),
    after=st.sampled_from(["", "# trailer\n", "other: 1\n", "\n\n# after blank lines\n"]),
    nl=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)


def entry_catalog(style: EntryStyle) -> str:
    i, pad = style.indent, " " * (len(style.dash) - 1)
    last = style.last.replace("{i}", i + pad).replace("{{", "{").replace("}}", "}")
    text = (f"images:\n{i}-{style.dash}name: python\n{i}{pad}  tags: [[a, b]]\n"
            f"{i}-{style.dash}name: r{last}\n" + style.after)
    text = text.replace("\n", style.nl)
    return text if style.final_newline else text.rstrip("\r\n")


@fast(400)
@given(style=entry_styles, template=st.sampled_from(TEMPLATES), name=values, tag=values,
       digest=values)
def test_new_entries_change_nothing_else_and_read_back_as_strings(
        style: EntryStyle, template: str, name: str, tag: str, digest: str) -> None:
    text = entry_catalog(style)
    entry = fill_template(template, {"name": name, "tag": tag, "digest": digest})
    out = Catalog(text).apply([Append(("images",), entry=entry)])
    added = inserted(text, out)
    reads_back(text, out, ("images",), [{"name": name, "tags": [[tag, digest]]}])
    if style.nl == "\r\n":
        assert "\n" not in added.replace("\r\n", "")


# --- regressions found by the properties above -----------------------------------------------


def test_a_copied_pair_does_not_repeat_the_last_pairs_anchor() -> None:
    text = "tags:\n  - &latest ['3.6', abc]\npinned: *latest\n"
    out = Catalog(text).apply([Append(("tags",), ("3.7", "def"))])
    assert out == "tags:\n  - &latest ['3.6', abc]\n  - ['3.7', def]\npinned: *latest\n"
    assert yaml.safe_load(out)["pinned"] == ["3.6", "abc"]


def test_a_copied_pair_does_not_repeat_an_anchor_inside_it() -> None:
    text = "tags:\n  - [!!str &t '3.6', abc]\n"
    out = Catalog(text).apply([Append(("tags",), ("3.7", "def"))])
    assert out == "tags:\n  - [!!str &t '3.6', abc]\n  - ['3.7', def]\n"
    yaml.safe_load(out)


def test_a_copied_pair_does_not_copy_a_tag_that_would_make_the_new_tag_a_number() -> None:
    text = "tags:\n  - [!!float 3.6, abc]\n"
    out = Catalog(text).apply([Append(("tags",), ("3.7", "def"))])
    assert out == text + '  - ["3.7", def]\n'
    assert yaml.safe_load(out)["tags"][1] == ["3.7", "def"]


def test_an_entry_template_that_defines_an_anchor_is_refused_with_its_line() -> None:
    """A second new entry would define the anchor again, which PyYAML refuses to read."""
    with pytest.raises(CatalogError, match="&slots") as refused:
        fill_template("name: ${name}\nslots: &slots {cpu: 1}\n", {"name": "julia"})
    assert (refused.value.file, refused.value.line) == ("template", 2)
