"""Adding list items: the new item copies the last item's style; every other byte stays."""

from __future__ import annotations

import pytest
import yaml

from tagsync.catalog import Catalog
from tagsync.catalog.append import Append, fill_template
from tagsync.errors import CatalogError, SharedValueError

LABLUP = """\
images:
  - name: python   # the seed's shape
    tags:
      - ["latest",     ":3.6-ubuntu"]
      - ["3.6-ubuntu", "ca7b9f52b6c2"]  # keep me
  - name: r
    tags:
      - ['3.3', 'x']
"""


def appended(text: str, *appends: Append) -> str:
    return Catalog(text).apply(appends)


def test_new_pair_is_written_like_the_last_pair_after_its_comment():
    out = appended(LABLUP, Append(("images", 0, "tags"), ("3.7-ubuntu", "0123456789ab")))
    assert out == LABLUP.replace(
        '"ca7b9f52b6c2"]  # keep me\n',
        '"ca7b9f52b6c2"]  # keep me\n      - ["3.7-ubuntu", "0123456789ab"]\n')


def test_new_pair_keeps_single_quotes_and_keeps_numbers_strings():
    out = appended(LABLUP, Append(("images", 1, "tags"), ("3.10", "abc")))
    assert out.endswith("      - ['3.3', 'x']\n      - ['3.10', 'abc']\n")
    assert yaml.safe_load(out)["images"][1]["tags"][-1] == ["3.10", "abc"]


def test_plain_values_that_would_change_type_are_quoted():
    text = "tags:\n  - [a, b]\n"
    out = appended(text, Append(("tags",), ("1.10", "yes")))
    assert out == 'tags:\n  - [a, b]\n  - ["1.10", "yes"]\n'


def test_two_new_items_keep_their_order():
    text = "tags:\n  - [a, b]\n"
    out = appended(text, Append(("tags",), ("c", "d")), Append(("tags",), ("e", "f")))
    assert out == "tags:\n  - [a, b]\n  - [c, d]\n  - [e, f]\n"


def test_flow_list_gets_the_lists_own_separator():
    text = "tags: [[a, b],  [c, d]]  # flow\n"
    out = appended(text, Append(("tags",), ("e", "f")))
    assert out == "tags: [[a, b],  [c, d],  [e, f]]  # flow\n"


def test_crlf_and_missing_final_newline_are_respected():
    text = "tags:\r\n  - [a, b]"
    assert appended(text, Append(("tags",), ("c", "d"))) == "tags:\r\n  - [a, b]\r\n  - [c, d]"


def test_empty_list_has_no_example_and_is_refused_with_its_line():
    with pytest.raises(CatalogError, match="empty") as err:
        appended("x: 1\ntags: []\n", Append(("tags",), ("a", "b")))
    assert err.value.line == 2


def test_list_shared_through_an_anchor_is_refused():
    text = "a: &t\n  - [a, b]\nb: *t\n"
    with pytest.raises(SharedValueError):
        appended(text, Append(("a",), ("c", "d")))


def test_new_entry_from_a_template_is_indented_like_its_siblings():
    entry = fill_template('name: ${name}\ntags:\n  - ["${tag}", "${digest}"]\n',
                          {"name": "julia", "tag": "1.10", "digest": "abc"})
    out = appended(LABLUP, Append(("images",), entry=entry))
    assert out == LABLUP + '  - name: julia\n    tags:\n      - ["1.10", "abc"]\n'
    assert yaml.safe_load(out)["images"][2] == {"name": "julia", "tags": [["1.10", "abc"]]}


def test_template_values_that_look_like_numbers_stay_strings():
    entry = fill_template("name: ${name}\n", {"name": "1.10"})
    assert entry == 'name: "1.10"'


def test_template_with_an_unknown_field_names_it():
    with pytest.raises(CatalogError, match=r"\$\{nope\}"):
        fill_template("name: ${nope}\n", {"name": "x"})


def test_new_entry_goes_before_comments_that_follow_the_list():
    text = "images:\n  - name: a\n    tag: x\n# trailer\nother: 1\n"
    out = appended(text, Append(("images",), entry="name: b\ntag: y"))
    assert out == "images:\n  - name: a\n    tag: x\n  - name: b\n    tag: y\n# trailer\nother: 1\n"
