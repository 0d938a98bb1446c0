"""Paths in yq style select values; their text form round-trips."""

import pytest

from tagsync.catalog.path import WILDCARD, format_path, parse_path
from tagsync.errors import PathSyntaxError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (".images[0].tags[1][1]", ("images", 0, "tags", 1, 1)),
        (".a.b", ("a", "b")),
        ('.["key.with.dots"]', ("key.with.dots",)),
        (".a['it''s'].b", ("a", "it's", "b")),
        (".", ()),
        ("a.b", ("a", "b")),
        (".images[*].name", ("images", WILDCARD, "name")),
        ('.["quote\\"d"]', ('quote"d',)),
    ],
)
def test_parses_yq_paths(text: str, expected: tuple[object, ...]) -> None:
    assert parse_path(text) == expected


@pytest.mark.parametrize("bad", ["", ".a[", ".a[-1]", ".a[x]", ".a..b", '.["open]', ".a."])
def test_rejects_malformed_paths(bad: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(bad)


@pytest.mark.parametrize(
    "path", [("images", 0, "tags"), ("a.b", "c d", 'q"'), (), ("x", WILDCARD)]
)
def test_format_round_trips(path: tuple[object, ...]) -> None:
    assert parse_path(format_path(path)) == path  # type: ignore[arg-type]
