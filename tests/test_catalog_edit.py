"""The edit engine changes exactly the targeted values and not one other byte."""

from __future__ import annotations

import pytest
import yaml

from tagsync.catalog import Catalog, Edit, apply_edits, get_value
from tagsync.errors import (
    EditConflictError,
    EncodingError,
    NotAScalarError,
    PathNotFoundError,
    ReadBackError,
    SharedValueError,
    UnsupportedScalarError,
    YamlSyntaxError,
)


def edit(text: str, path: str, value: str, **kw: object) -> str:
    return apply_edits(text.encode(), [Edit.parse(path, value)], **kw).decode()  # type: ignore[arg-type]


# --- layouts are kept -------------------------------------------------------------------


def test_plain_value_in_block_mapping() -> None:
    assert edit("a: 1\nb: old\n", ".b", "new") == "a: 1\nb: new\n"


def test_comment_after_value_is_kept() -> None:
    assert edit("tag: v1   # pinned\n", ".tag", "v2") == "tag: v2   # pinned\n"


def test_value_in_flow_sequence_keeps_spacing() -> None:
    src = 'tags:\n  - ["latest",     ":3.6"]\n  - ["3.6", "ca7b9f52b6c2"]\n'
    out = edit(src, ".tags[1][1]", "0123456789ab")
    assert out == 'tags:\n  - ["latest",     ":3.6"]\n  - ["3.6", "0123456789ab"]\n'


def test_value_in_flow_mapping() -> None:
    assert edit("img: {repo: a, tag: v1}\n", ".img.tag", "v2") == "img: {repo: a, tag: v2}\n"


def test_crlf_line_endings_are_kept() -> None:
    assert edit("a: x\r\nb: 'y'\r\n", ".b", "z") == "a: x\r\nb: 'z'\r\n"


def test_bom_is_kept() -> None:
    out = apply_edits("\ufeffa: x\nb: y\n".encode(), [Edit.parse(".b", "z")])
    assert out == "\ufeffa: x\nb: z\n".encode()


def test_unicode_before_the_value_does_not_shift_offsets() -> None:
    src = "name: 日本語😀\ndigest: old # ✓\n"
    assert edit(src, ".digest", "new") == "name: 日本語😀\ndigest: new # ✓\n"


def test_trailing_whitespace_and_blank_lines_are_kept() -> None:
    src = "a: x  \n\n\n# end  \nb: y\t\n"
    assert edit(src, ".b", "z") == "a: x  \n\n\n# end  \nb: z\t\n"


def test_anchor_on_the_value_is_kept_when_unused() -> None:
    assert edit("a: &v old\n", ".a", "new") == "a: &v new\n"


def test_multi_document_file_edits_the_chosen_document() -> None:
    src = "---\na: 1\n...\n---\na: 2 # two\n"
    out = apply_edits(src.encode(), [Edit.parse(".a", "3", doc=1)]).decode()
    assert out == '---\na: 1\n...\n---\na: "3" # two\n'


def test_very_long_line() -> None:
    long = "x" * 100_000
    src = f"pad: {long}\nd: old\n"
    assert edit(src, ".d", "new") == f"pad: {long}\nd: new\n"


def test_empty_value_gets_a_separating_space() -> None:
    assert edit("a:\nb: 1\n", ".a", "v") == "a: v\nb: 1\n"


def test_multi_line_plain_scalar_is_replaced_whole() -> None:
    assert edit("a: multi\n  line\nb: x\n", ".a", "one") == "a: one\nb: x\n"


def test_key_with_dots() -> None:
    assert edit("a.b: 1\na: {b: 2}\n", '.["a.b"]', "x") == "a.b: x\na: {b: 2}\n"


def test_many_edits_in_one_pass() -> None:
    src = "".join(f"- [t{i}, d{i}]\n" for i in range(100))
    edits = [Edit.parse(f".[{i}][1]", f"n{i}") for i in range(100)]
    out = apply_edits(src.encode(), edits).decode()
    assert out == "".join(f"- [t{i}, n{i}]\n" for i in range(100))


def test_unchanged_value_leaves_the_file_identical() -> None:
    src = "a: 'same'   # x\n"
    assert edit(src, ".a", "same") == src


# --- values keep their meaning ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["yes", "no", "on", "Off", "y", "null", "~", "", "01", "1.10", "1e3", "0o17", "0x1f", "1_000",
     "1:20", "2001-12-14", ".inf", "true", "a: b", "#x", " lead", "trail ", "- x", "[x]", "{a}",
     "*ref", "&a", "!tag", "%x", "@x", "`x", "'q'", '"q"', "<<", "=", "x #y", "---", "...",
     "tab\there", "line\nbreak", "nel\x85x", "\x00nul", "caf\u00e9"],
)
@pytest.mark.parametrize("style", ["plain", "single", "double"])
def test_new_value_stays_a_string_for_yaml_1_1_and_1_2(value: str, style: str) -> None:
    from ruamel.yaml import YAML

    old = {"plain": "old", "single": "'old'", "double": '"old"'}[style]
    for src, path, read in (
        (f"k: {old}\n", ".k", lambda d: d["k"]),
        (f"k: [{old}, z]\n", ".k[0]", lambda d: d["k"][0]),
    ):
        out = edit(src, path, value)
        assert read(yaml.safe_load(out)) == value, out  # YAML 1.1 (PyYAML)
        assert read(YAML(typ="safe", pure=True).load(out)) == value, out  # YAML 1.2 (ruamel)


def test_single_quote_style_is_kept_when_it_can_hold_the_value() -> None:
    assert edit("a: 'x'\n", ".a", "it's") == "a: 'it''s'\n"


def test_single_quote_falls_back_to_double_for_control_characters() -> None:
    assert edit("a: 'x'\n", ".a", "t\tb") == 'a: "t\\tb"\n'


def test_double_quote_style_is_kept() -> None:
    assert edit('a: "x"\n', ".a", "plain") == 'a: "plain"\n'


def test_plain_stays_plain_when_safe() -> None:
    assert edit("a: x\n", ".a", "3.6-ubuntu") == "a: 3.6-ubuntu\n"


def test_colon_is_quoted_inside_flow_collections() -> None:
    assert edit("a: [x]\n", ".a[0]", "sha256:ab") == 'a: ["sha256:ab"]\n'


def test_colon_without_space_stays_plain_in_block_context() -> None:
    assert edit("a: x\n", ".a", "sha256:ab") == "a: sha256:ab\n"


# --- refusals ---------------------------------------------------------------------------


def test_value_reached_through_a_merge_key_is_refused_naming_the_anchor() -> None:
    src = "base: &default\n  cpu: 1\nimg:\n  <<: *default\n"
    with pytest.raises(SharedValueError, match=r"&default defined at line 1") as err:
        edit(src, ".img.cpu", "2", file="f.yml")
    assert err.value.file == "f.yml"


def test_value_reached_through_an_alias_is_refused() -> None:
    src = "base: &b {cpu: 1}\nimg: *b\n"
    with pytest.raises(SharedValueError, match=r"alias of anchor &b"):
        edit(src, ".img.cpu", "2")


def test_value_under_a_used_anchor_is_refused_by_default() -> None:
    src = "base: &b {cpu: 1}\nimg: *b\n"
    with pytest.raises(SharedValueError, match="--allow-anchor"):
        edit(src, ".base.cpu", "2")


def test_value_under_a_used_anchor_can_be_edited_when_allowed() -> None:
    src = "base: &b {cpu: 1}\nimg: *b\n"
    assert edit(src, ".base.cpu", "x", allow_anchor=True) == "base: &b {cpu: x}\nimg: *b\n"


def test_own_keys_beside_a_merge_key_are_editable() -> None:
    src = "base: &d {cpu: 1}\nimg:\n  <<: *d\n  cpu: 2\n"
    assert edit(src, ".img.cpu", "3") == 'base: &d {cpu: 1}\nimg:\n  <<: *d\n  cpu: "3"\n'


def test_a_change_within_one_line_of_a_block_scalar_is_spliced_into_that_line() -> None:
    src = "run: |\n  docker pull nginx:1.25.3   # pinned\n  echo ok\nnext: 1\n"
    new = "docker pull nginx:1.25.4   # pinned\necho ok\n"
    assert edit(src, ".run", new) == src.replace("1.25.3", "1.25.4")


def test_a_folded_block_scalar_keeps_its_folding_and_indicators() -> None:
    src = "args: >-\n    --image=nginx:1.25.3\n    --verbose\n"
    assert edit(src, ".args", "--image=nginx:1.25.4 --verbose") == src.replace("1.25.3", "1.25.4")


def test_a_literal_block_scalar_is_rewritten_whole_in_its_indentation() -> None:
    src = "a: |\n    x\n    y\nb: 1\n"
    assert edit(src, ".a", "one\ntwo\nthree\n") == "a: |\n    one\n    two\n    three\nb: 1\n"


def test_a_value_without_a_final_line_break_changes_clip_to_strip() -> None:
    assert edit("a: |\n  x\nb: 1\n", ".a", "y") == "a: |-\n  y\nb: 1\n"


def test_a_folded_one_line_value_changes_only_its_chomping_indicator() -> None:
    src = "args: >  # flags\n    --image=nginx:1.25.3\n"
    out = edit(src, ".args", "--image=nginx:1.25.4")
    assert out == "args: >-  # flags\n    --image=nginx:1.25.4\n"


def test_a_folded_block_scalar_is_rewritten_whole_by_a_one_line_value() -> None:
    src = "args: >\n  --image=nginx:1.25.3\n  --verbose\nnext: 1\n"
    assert edit(src, ".args", "--image=nginx:1.25.4") == "args: >-\n  --image=nginx:1.25.4\nnext: 1\n"


def test_several_lines_into_a_folded_block_scalar_get_a_blank_line_per_line_break() -> None:
    out = edit("args: >\n  --a\n  --b\nnext: 1\n", ".args", "x\ny\n\nz\n")
    assert out == "args: >\n  x\n\n  y\n\n\n  z\nnext: 1\n"
    assert yaml.safe_load(out)["args"] == "x\ny\n\nz\n"


def test_a_more_indented_line_into_a_folded_block_scalar_is_refused() -> None:
    with pytest.raises(UnsupportedScalarError, match="in a folded scalar a line"):
        edit("args: >\n  --a\n  --b\n", ".args", "x\n  y\n")


def test_a_value_with_a_final_line_break_changes_strip_to_clip() -> None:
    assert edit("a: |-\n  x\nb: 1\n", ".a", "x\n") == "a: |\n  x\nb: 1\n"


def test_an_indentation_indicator_is_kept_when_the_chomping_changes() -> None:
    assert edit("a: |2\n    x\n", ".a", "  y") == "a: |2-\n    y\n"


def test_keep_chomping_with_trailing_blank_lines_becomes_strip() -> None:
    out = edit("a: |+\n  x\n\nb: 1\n", ".a", "y")
    assert out == "a: |-\n  y\n\nb: 1\n"
    assert yaml.safe_load(out) == {"a": "y", "b": 1}


def test_more_trailing_line_breaks_than_the_text_holds_is_refused() -> None:
    with pytest.raises(UnsupportedScalarError, match="more than one trailing line break"):
        edit("a: |\n  x\n", ".a", "y\n\n")


def test_an_empty_value_in_a_block_scalar_is_refused() -> None:
    with pytest.raises(UnsupportedScalarError, match="empty value"):
        edit("a: |\n  x\n", ".a", "")


def test_custom_tag_is_refused() -> None:
    with pytest.raises(UnsupportedScalarError, match="!secret"):
        edit("a: !secret x\n", ".a", "y")


def test_malformed_yaml_names_line_and_column() -> None:
    with pytest.raises(YamlSyntaxError) as err:
        edit("a: [1, 2\nb: 3\n", ".a", "x", file="bad.yml")
    assert (err.value.file, err.value.line) == ("bad.yml", 2)
    assert str(err.value).startswith("bad.yml:2:")


def test_missing_key_names_the_mapping_position() -> None:
    with pytest.raises(PathNotFoundError, match=r"\.a\.c: no key 'c'") as err:
        edit("a:\n  b: 1\n", ".a.c", "x")
    assert err.value.line == 2


def test_index_out_of_range() -> None:
    with pytest.raises(PathNotFoundError, match="out of range"):
        edit("a: [1]\n", ".a[3]", "x")


def test_path_ending_at_a_collection_is_refused() -> None:
    with pytest.raises(NotAScalarError, match="is a mapping"):
        edit("a: {b: 1}\n", ".a", "x")


def test_duplicate_keys_are_ambiguous() -> None:
    with pytest.raises(PathNotFoundError, match="twice"):
        edit("a: 1\na: 2\n", ".a", "x")


def test_non_utf8_file_names_the_position() -> None:
    with pytest.raises(EncodingError) as err:
        apply_edits(b"a: ok\nb: caf\xe9\n", [Edit.parse(".a", "x")], file="latin1.yml")
    assert (err.value.line, err.value.column) == (2, 7)


def test_missing_document_index() -> None:
    with pytest.raises(PathNotFoundError, match="document 2 does not exist"):
        apply_edits(b"a: 1\n", [Edit.parse(".a", "x", doc=2)])


def test_conflicting_edits_are_refused() -> None:
    with pytest.raises(EditConflictError):
        apply_edits(b"a: 1\n", [Edit.parse(".a", "x"), Edit.parse(".a", "y")])


def test_one_bad_edit_means_no_output_at_all() -> None:
    with pytest.raises(PathNotFoundError):
        apply_edits(b"a: 1\nb: 2\n", [Edit.parse(".a", "x"), Edit.parse(".zzz", "y")])


# --- the real catalog -------------------------------------------------------------------


def test_real_catalog_digest_edit_changes_one_line(lablup_metadata: bytes) -> None:
    out = apply_edits(lablup_metadata, [Edit.parse(".images[0].tags[1][1]", "0123456789ab")])
    before, after = lablup_metadata.decode().splitlines(), out.decode().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [('      - ["3.6-ubuntu", "ca7b9f52b6c2"]', '      - ["3.6-ubuntu", "0123456789ab"]')]


def test_real_catalog_every_digest_edited_keeps_data(lablup_metadata: bytes) -> None:
    data = yaml.safe_load(lablup_metadata)
    edits = []
    for i, image in enumerate(data["images"]):
        for j, pair in enumerate(image.get("tags") or []):
            if not pair[1].startswith(":"):
                edits.append(Edit.parse(f".images[{i}].tags[{j}][1]", f"{i:06d}{j:06d}"))
                pair[1] = f"{i:06d}{j:06d}"
    out = apply_edits(lablup_metadata, edits)
    assert yaml.safe_load(out) == data
    assert out.count(b"#") == lablup_metadata.count(b"#")


def test_real_catalog_merge_key_user_is_refused(lablup_metadata: bytes) -> None:
    with pytest.raises(SharedValueError, match="&default"):
        apply_edits(lablup_metadata, [Edit.parse(".images[1].slots.cpu", "2")])


def test_get_reads_through_merge_keys(lablup_metadata: bytes) -> None:
    assert get_value(lablup_metadata, ".images[1].slots.mem") == "1.0"


def test_same_text_that_is_not_a_string_yet_gets_quoted() -> None:
    assert edit("a: 1e3\n", ".a", "1e3") == 'a: "1e3"\n'


def test_empty_value_set_to_empty_string_is_quoted() -> None:
    assert edit("a:\n", ".a", "") == 'a: ""\n'


# --- empty values get what their position needs (issue 34) ---------------------------------


def test_an_empty_value_after_an_explicit_key_gets_its_own_colon_line() -> None:
    assert edit("? a # c\n? b\nc: d\n", ".a", "1.10") == '? a # c\n: "1.10"\n? b\nc: d\n'


def test_an_explicit_key_inside_a_sequence_item_gets_the_colon_under_its_question_mark() -> None:
    assert edit("- ? a\n  ? b\n", "[0].a", "v") == "- ? a\n  : v\n  ? b\n"


def test_a_key_without_value_in_a_flow_mapping_gets_colon_and_value() -> None:
    assert edit("- { single line, a: b}\n", "[0].['single line']", "yes") == \
        '- { single line: "yes", a: b}\n'


def test_an_empty_document_gets_its_value_on_a_line_of_its_own() -> None:
    out = apply_edits(b"a: 1\n---\n# empty\n---\nb: 2\n", [Edit.parse(".", "1.10", doc=1)])
    assert out == b'a: 1\n---\n# empty\n"1.10"\n---\nb: 2\n'


def test_an_empty_sequence_item_before_a_comment_keeps_the_comment() -> None:
    assert edit("- # Empty\n- b\n", "[0]", "1.10") == '- "1.10" # Empty\n- b\n'


def test_an_empty_value_whose_key_spans_lines_is_refused() -> None:
    with pytest.raises(UnsupportedScalarError, match="key spans lines"):
        edit("- { multi\n  line, a: b}\n", "[0].['multi line']", "x")


def test_a_member_of_a_set_is_refused() -> None:
    with pytest.raises(UnsupportedScalarError, match="!!set"):
        edit("--- !!set\n? Mark McGwire\n? Sammy Sosa\n", '.["Mark McGwire"]', "1.10")


def test_a_multi_line_plain_scalar_in_a_flow_mapping_is_replaced_whole() -> None:
    assert edit("a: {x: multi\n    line, b: c}\n", ".a.x", "one") == "a: {x: one, b: c}\n"


# --- the non-specific tag `!` and anchors readers disagree on -----------------------------


def test_a_value_under_the_non_specific_tag_that_is_not_string_like_is_refused() -> None:
    # PyYAML reads `! "1.10"` as a float (it resolves `!` by the text, even quoted)
    with pytest.raises(UnsupportedScalarError, match="non-specific tag"):
        edit("a: ! x\n", ".a", "1.10")


def test_a_string_like_value_under_the_non_specific_tag_is_written() -> None:
    assert edit("a: ! x\n", ".a", "nginx:1.25") == "a: ! nginx:1.25\n"


def test_a_value_whose_anchor_name_readers_split_differently_is_refused() -> None:
    # `an:chor` is one anchor to YAML 1.2 readers; PyYAML ends it at `:` and reads ":chor value"
    with pytest.raises(ReadBackError, match="':chor v'"):
        edit("key: &an:chor value\n", ".key", "v")


# --- the read-back: whatever a rule writes, a wrong result is refused ----------------------


def test_a_rendering_that_would_change_the_type_is_refused_by_the_read_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagsync.catalog.edit.render_scalar", lambda value, style, flow: value)
    with pytest.raises(ReadBackError, match="not as a string") as err:
        edit("a: x\nb: y\n", ".a", "yes", file="f.yml")
    assert (err.value.file, err.value.line) == ("f.yml", 1)


def test_a_rendering_that_would_change_another_value_is_refused_by_the_read_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagsync.catalog.edit.render_scalar",
                        lambda value, style, flow: value + "\nb: changed")
    with pytest.raises(ReadBackError):
        edit("a: x\nb: y\n", ".a", "v")


def test_a_rendering_that_would_break_the_file_is_refused_by_the_read_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagsync.catalog.edit.render_scalar", lambda value, style, flow: '"x')
    with pytest.raises(ReadBackError, match="not be valid YAML"):
        edit("a: x\nb: y\n", ".a", "v")


def test_the_read_back_checks_appends_in_the_same_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from tagsync.catalog.append import Append

    src = "tags:\n  - [a, b]\nother: 1\n"
    catalog = Catalog(src)
    out = catalog.apply([Append(("tags",), ("c", "d")), Edit.parse(".other", "2")])
    assert out == 'tags:\n  - [a, b]\n  - [c, d]\nother: "2"\n'


def test_the_read_back_checks_inserted_keys_in_the_same_pass() -> None:
    from tagsync.catalog.insert import InsertKey

    src = "image:\n  repository: nginx # pinned\n  tag: '1.25'\nflow: {a: 1}\n"
    out = Catalog(src).apply([InsertKey(("image",), "digest", "sha256:" + "a" * 64),
                              InsertKey(("flow",), "b", "yes"), Edit.parse(".image.tag", "1.26")])
    assert out == ("image:\n  repository: nginx # pinned\n  tag: '1.26'\n"
                   f"  digest: sha256:{'a' * 64}\nflow: {{a: 1, b: \"yes\"}}\n")


def test_an_explicit_key_spanning_lines_gets_its_colon_line_after_the_key() -> None:
    assert edit("? e\n  42\nz: 1\n", '.["e 42"]', "v") == "? e\n  42\n: v\nz: 1\n"


def test_a_literal_block_rewritten_whole_drops_its_leading_blank_lines() -> None:
    assert edit("a: |\n\n  x\n  y\nb: 1\n", ".a", "z\n") == "a: |\n  z\nb: 1\n"


def test_a_value_starting_with_a_space_gets_an_indentation_indicator() -> None:
    assert edit("a: |\n  x\nb: 1\n", ".a", " lead") == "a: |2-\n   lead\nb: 1\n"
    assert edit("- |\n  x\n", "[0]", "  two\n") == "- |2\n    two\n"


def test_an_indentation_indicator_counts_from_the_key_of_a_compact_mapping() -> None:
    assert edit("- aaa: |2\n    xxx\n", "[0].aaa", "yyy\n") == "- aaa: |2\n    yyy\n"
