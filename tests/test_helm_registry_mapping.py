"""Helm's `registry:` beside `repository:`: a plain value names the host; anything else leaves the
image alone with a note, since reading it as Docker Hub's would fetch digests from the wrong host."""

from __future__ import annotations

import pytest

from tagsync.config import CatalogConfig
from tagsync.find import References, find_references, open_source, rows


def refs(text: str) -> References:
    config = CatalogConfig.model_validate({"name": "t", "file": "values.yaml", "pin_digests": True})
    return find_references(config, open_source(text.encode(), "values.yaml", config))


@pytest.mark.parametrize(("registry", "kind"), [
    ("{url: x}", "a mapping"),
    ("[quay.io]", "a list"),
    ("\n    url: quay.io\n    insecure: false", "a mapping"),
])
def test_a_registry_that_is_not_a_plain_value_is_a_note_and_no_slot(registry: str, kind: str) -> None:
    found = refs(f"image:\n  registry: {registry}\n  repository: a/b\n  tag: \"1\"\n")
    assert found.slots == []
    [note] = found.notes
    assert note.path == ".image"
    assert f"`registry` is {kind}" in note.reason


def test_the_note_is_listed_by_refs_as_left_alone() -> None:
    [row] = rows(refs("image: {registry: {url: x}, repository: a/b, tag: \"1\"}\n"))
    assert (row["path"], row["status"]) == (".image", "left-alone")
    assert "registry" in str(row["reason"])


def test_a_plain_registry_names_the_host() -> None:
    [slot] = refs("image: {registry: quay.io, repository: a/b, tag: \"1\"}\n").slots
    assert (str(slot.image), slot.tag) == ("quay.io/a/b", "1")


def test_a_null_registry_is_docker_hub() -> None:
    [slot] = refs("image: {registry: null, repository: a/b, tag: \"1\"}\n").slots
    assert str(slot.image) == "docker.io/a/b"


def test_an_empty_registry_is_docker_hub_as_charts_mean_it() -> None:
    """Charts write `registry: ""` for "none" (`{{ if .Values.image.registry }}…`)."""
    [slot] = refs("image:\n  registry: \"\"\n  repository: a/b\n  tag: \"1\"\n").slots
    assert str(slot.image) == "docker.io/a/b"


def test_a_registry_through_an_alias_names_the_host() -> None:
    [slot] = refs("r: &r quay.io\nimage: {registry: *r, repository: a/b, tag: \"1\"}\n").slots
    assert str(slot.image) == "quay.io/a/b"


def test_a_registry_through_a_merge_key_names_the_host() -> None:
    [slot] = refs("base: &b {registry: quay.io}\nimage: {<<: *b, repository: a/b, tag: \"1\"}\n").slots
    assert str(slot.image) == "quay.io/a/b"


def test_the_mappings_own_registry_wins_over_a_merged_one() -> None:
    [slot] = refs("base: &b {registry: quay.io}\n"
                  "image: {<<: *b, registry: ghcr.io, repository: a/b, tag: \"1\"}\n").slots
    assert str(slot.image) == "ghcr.io/a/b"


def test_a_merged_registry_that_is_a_mapping_is_a_note() -> None:
    found = refs("base: &b {registry: {url: x}}\nimage: {<<: *b, repository: a/b, tag: \"1\"}\n")
    assert found.slots == [] and "`registry` is a mapping" in found.notes[0].reason
