"""Dockerfiles read as BuildKit reads them, one behaviour each: directives, the `# syntax=`
frontend, `RUN --mount=…,from=`, ARG defaults that are not images, references assembled from
ARG defaults. Pure: no registry."""

from __future__ import annotations

from tagsync.config import CatalogConfig
from tagsync.find import find_references, open_source
from tagsync.find.model import Slot
from tests.test_find_shapes import D1, found

D2 = "sha256:" + "2" * 64


def slots(text: str, **cfg: object) -> list[Slot]:
    config = CatalogConfig.model_validate({"name": "t", "file": "Dockerfile", **cfg})
    return find_references(config, open_source(text.encode(), "Dockerfile", config)).slots


def by_line(table: list[dict[str, object]]) -> dict[object, list[dict[str, object]]]:
    out: dict[object, list[dict[str, object]]] = {}
    for row in table:
        out.setdefault(row["line"], []).append(row)
    return out


def test_a_directive_with_leading_whitespace_is_a_directive() -> None:
    text = (" # escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022 AS base\n"
            "RUN dir `\n  c:\\\nFROM nginx:1.25@" + D1 + "\n")
    table = [r for r in found("Dockerfile", text) if r["status"] != "ignored"]
    assert [(r["line"], r["image"]) for r in table] == [
        (2, "mcr.microsoft.com/windows/servercore"), (5, "docker.io/library/nginx")]


def test_the_syntax_directive_names_an_image() -> None:
    text = f"# syntax=docker/dockerfile:1.7@{D1}\nFROM alpine:3.20@{D1}\n"
    row = by_line(found("Dockerfile", text))[1][0]
    assert (row["status"], row["image"], row["tag"]) == (
        "tracked", "docker.io/docker/dockerfile", "1.7")


def test_a_syntax_line_after_an_instruction_is_a_comment() -> None:
    text = f"FROM alpine:3.20@{D1}\n# syntax=docker/dockerfile:1.7\n"
    assert [r["line"] for r in found("Dockerfile", text)] == [1]


def test_run_mount_from_names_an_image_or_a_stage() -> None:
    text = (f"FROM golang:1.22@{D1} AS build\n"
            f"RUN --mount=type=cache,target=/go,from=ghcr.io/acme/cache:1@{D1} "
            "--mount=from=build,source=/out,target=/in make\n")
    rows = by_line(found("Dockerfile", text))[2]
    assert {(r["status"], r["value"]) for r in rows} == {
        ("tracked", f"ghcr.io/acme/cache:1@{D1}"), ("ignored", "build")}


def test_run_mount_from_is_rewritten_in_place() -> None:
    text = f"FROM scratch\nRUN --mount=type=bind,from=ghcr.io/acme/tools:1@{D1},target=/t ls\n"
    [slot] = slots(text)
    assert slot.span is not None and text[slot.span[0]:slot.span[1]] == f"ghcr.io/acme/tools:1@{D1}"


def test_an_arg_default_of_scratch_is_not_an_image() -> None:
    table = found("Dockerfile", "ARG BASE=scratch\nFROM ${BASE}\nCOPY a /a\n")
    assert [(r["status"], r["line"]) for r in table] == [("ignored", 2)]
    assert "scratch" in str(table[0]["reason"])


def test_a_partial_substitution_follows_the_args_default_that_holds_the_tag() -> None:
    text = f"ARG VARIANT=1.79-slim@{D1}\nFROM rust:${{VARIANT}} AS build\n"
    table = by_line(found("Dockerfile", text))
    arg, = table[1]
    assert (arg["status"], arg["image"], arg["tag"], arg["digest"]) == (
        "tracked", "docker.io/library/rust", "1.79-slim", D1)
    assert "follows ARG VARIANT" in str(table[2][0]["reason"])
    [slot] = slots(text)
    assert slot.span is not None and text[slot.span[0]:slot.span[1]] == f"1.79-slim@{D1}"
    assert slot.render("1.80-slim", D2) == f"1.80-slim@{D2}"


def test_a_templated_registry_with_a_written_tag_follows_the_tag_where_it_is() -> None:
    text = f"ARG REGISTRY=ghcr.io/acme\nFROM ${{REGISTRY}}/app:1.2@{D1}\n"
    [slot] = slots(text)
    assert str(slot.image) == "ghcr.io/acme/app"
    assert slot.span is not None and text[slot.span[0]:slot.span[1]] == f"1.2@{D1}"


def test_a_substitution_without_a_default_says_so() -> None:
    [row] = found("Dockerfile", "ARG VARIANT\nFROM rust:${VARIANT}\n")
    assert "VARIANT, which has no default here" in str(row["reason"])


def test_a_tag_assembled_from_parts_is_left_alone_with_the_reason() -> None:
    [row] = found("Dockerfile", "ARG V=1.79\nARG F=slim\nFROM rust:${V}-${F}\n")
    assert "assembled from several parts" in str(row["reason"])


def test_one_arg_in_two_different_references_is_left_alone() -> None:
    table = found("Dockerfile", f"ARG V=1.79@{D1}\nFROM rust:${{V}}\nFROM ghcr.io/x/y:${{V}}\n")
    [arg] = [r for r in table if r["line"] == 1]
    assert arg["status"] == "left-alone" and "more than one reference" in str(arg["reason"])


def test_a_substitution_with_a_word_follows_the_word_written_in_the_line() -> None:
    text = f"FROM ${{BASE:-alpine:3.20@{D1}}}\n"
    [slot] = slots(text)
    assert str(slot.image) == "docker.io/library/alpine"
    assert slot.span is not None and text[slot.span[0]:slot.span[1]] == f"3.20@{D1}"


def test_a_substitution_with_a_word_follows_the_args_default_when_there_is_one() -> None:
    [slot] = slots(f"ARG TAG=1.25@{D1}\nFROM nginx:${{TAG:-1.0}}\n")
    assert (slot.tag, slot.line) == ("1.25", 1)


def test_an_arg_declared_in_a_stage_is_not_seen_by_from_and_says_so() -> None:
    [row] = [r for r in found("Dockerfile", f"FROM alpine:3@{D1}\nARG TAG=1.25\nFROM nginx:${{TAG}}\n")
             if r["line"] == 3]
    assert "declared inside a stage (line 2)" in str(row["reason"])


# --- parser directives: read in time linear in the line ------------------------------------------

_DIRECTIVE = r"[ \t]*#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*"  # what it must read


def test_a_directive_made_to_backtrack_is_read_once() -> None:
    """Blanks inside a directive's value: the regular expression this replaced tried the blanks
    after every character of it (minutes for a repository's 1 MiB first line)."""
    from tagsync.find.dockerfile import directives

    value = "docker/dockerfile:1" + " " * 500_000 + "x"
    [(name, token)] = directives(f"# syntax={value}  \nFROM alpine\n")
    assert (name, token.text) == ("syntax", value)


def test_directives_are_read_as_the_regular_expression_read_them() -> None:
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tagsync.find.dockerfile import _directive

    pieces = st.sampled_from([" ", "\t", "#", "=", "syntax", "a1", "x", "\r", "==", "é"])

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(pieces, max_size=10))
    def same(parts: list[str]) -> None:
        line = "".join(parts)
        m = re.fullmatch(_DIRECTIVE, line)
        assert _directive(line) == (None if m is None else (m.group(1), m.start(2), m.end(2)))

    same()
