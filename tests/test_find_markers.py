"""Marker comments, one behaviour each: a marked value is its marker's; a whole-reference marker
follows the image its `markers:` entry names; markers are read exactly or said not to be."""

from __future__ import annotations

from tests.test_find_shapes import D1, by_path, found

WEB = {"ns:web": {"image": "ghcr.io/acme/web", "policy": {"kind": "semver"}}}


def test_an_undefined_marker_owns_its_value_and_says_so_once() -> None:
    """#31 item 5: not left alone by the marker and also edited through the file's shape."""
    text = 'image:\n  repository: ghcr.io/acme/web\n  tag: "1.2" # {"$imagepolicy": "ns:nope:tag"}\n'
    table = found("values.yaml", text, policy={"kind": "semver"})
    assert [r["status"] for r in table] == ["left-alone", "left-alone"]
    assert not [r for r in table if r["status"] == "tracked"]
    mapping, marked = sorted(table, key=lambda r: str(r["path"]))
    assert mapping["path"] == ".image" and "marker leaves it alone" in str(mapping["reason"])
    assert marked["path"] == ".image.tag" and "does not define" in str(marked["reason"])


def test_an_undefined_marker_on_a_whole_reference_is_one_row() -> None:
    text = 'containers:\n  - image: nginx:1.25 # {"$imagepolicy": "ns:nope"}\n'
    [row] = found("values.yaml", text, policy={"kind": "semver"})
    assert row["shape"] == "markers" and "does not define" in str(row["reason"])


def test_a_whole_reference_marker_follows_the_image_its_entry_names() -> None:
    from tagsync.config import CatalogConfig
    from tagsync.find import find_references, open_source

    text = 'spec:\n  image: index.repo.fake/old:v1.0.0 # {"$imagepolicy": "ns:web"}\n'
    config = CatalogConfig.model_validate({"name": "t", "file": "a.yaml", "kind": "markers",
                                           "markers": WEB})
    refs = find_references(config, open_source(text.encode(), "a.yaml", config))
    [slot] = refs.slots
    assert str(slot.image) == "ghcr.io/acme/web"
    assert slot.render("v1.0.1", None) == "ghcr.io/acme/web:v1.0.1"
    assert refs.warnings and "index.repo.fake/old" in refs.warnings[0]
    assert "ghcr.io/acme/web" in refs.warnings[0]


def test_a_whole_reference_marker_on_the_same_image_keeps_the_authors_spelling() -> None:
    from tagsync.config import CatalogConfig
    from tagsync.find import find_references, open_source

    text = 'image: nginx:1.25 # {"$imagepolicy": "ns:nginx"}\n'
    config = CatalogConfig.model_validate({"name": "t", "file": "a.yaml", "kind": "markers",
                                           "markers": {"ns:nginx": {"image": "docker.io/library/nginx"}},
                                           "pin_digests": True})
    refs = find_references(config, open_source(text.encode(), "a.yaml", config))
    assert refs.slots[0].render("1.25", D1) == f"nginx:1.25@{D1}" and not refs.warnings


def test_a_tag_under_a_whole_reference_marker_is_not_an_image() -> None:
    text = 'tagonly: 1.0.0 # {"$imagepolicy": "ns:web"}\n'
    [row] = found("a.yaml", text, kind="markers", markers=WEB)
    assert row["status"] == "left-alone" and "`:tag`" in str(row["reason"])
    assert row["image"] == "ghcr.io/acme/web"


def test_a_marker_after_a_block_scalar_or_a_flow_mapping_is_a_note() -> None:
    text = ('script: |  # {"$imagepolicy": "ns:web"}\n  run nginx:1.25\n'
            'image: {repository: ghcr.io/acme/web, tag: "1.2"} # {"$imagepolicy": "ns:web:tag"}\n')
    table = by_path(found("values.yaml", text, markers=WEB, policy={"kind": "semver"}))
    assert "after a block scalar" in str(table[".script"]["reason"])
    assert "after a mapping" in str(table[".image"]["reason"])
    assert [r["status"] for r in table.values()] == ["left-alone", "left-alone"]


def test_text_after_the_markers_json_is_not_read_and_is_said() -> None:
    text = ('a: nginx:1.25 # {"$imagepolicy": "ns:web"} keep this\n'
            'b: nginx:1.25 # {"$imagepolicy": "ns:web", "x": 1}\n'
            "c: nginx:1.25 # tagsync: web and more\n")
    table = by_path(found("a.yaml", text, kind="markers", markers=WEB))
    assert all("marker comment not read" in str(table[k]["reason"]) for k in (".a", ".b", ".c"))


def test_marker_rows_show_the_text_written_at_the_marked_place() -> None:
    text = ('image:\n  repository: ghcr.io/acme/web # {"$imagepolicy": "ns:web:name"}\n'
            f'  tag: "1.2" # {{"$imagepolicy": "ns:web:tag"}}\n'
            f'  digest: {D1} # {{"$imagepolicy": "ns:web:digest"}}\n')
    table = by_path(found("values.yaml", text, markers=WEB))
    assert table[".image.tag"]["value"] == "1.2" and table[".image.digest"]["value"] == D1
    assert table[".image.tag"]["status"] == "tracked"


# --- finding comments that look like markers: linear in the line ---------------------------------

_LOOKS = r"(?:^|[ \t])#[ \t]*(\{.*\$imagepolicy.*|tagsync:.*)$"  # what the scan must find


def test_a_line_made_to_rescan_itself_is_read_once() -> None:
    """` #{` repeated: the regular expression this replaced rescanned the rest of the line from
    every `#` (minutes for a repository's 1 MiB line); the scan reads it once and finds nothing."""
    from tagsync.find.markers import looks_like_markers

    assert list(looks_like_markers(" #{" * 300_000 + "\n# tagsync: app\n")) == [
        (900_003, "tagsync: app")]


def test_the_scan_finds_what_the_regular_expression_found() -> None:
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tagsync.find.markers import looks_like_markers

    pieces = st.sampled_from(["#", " ", "\t", "{", "$imagepolicy", "tagsync:", "\n", "\r", "a", "}"])

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(pieces, max_size=14))
    def same(parts: list[str]) -> None:
        text = "".join(parts)
        expected = [(m.start(1), m.group(1)) for m in re.finditer(_LOOKS, text, re.MULTILINE)]
        assert list(looks_like_markers(text)) == expected, text

    same()
