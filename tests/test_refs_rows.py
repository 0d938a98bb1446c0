"""`tagsync refs --json` rows: the parsed image, tag and digest of every row, left alone or not,
and `value` as the text written at that place."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from tagsync.cli import main
from tests.test_find_shapes import D1, by_path, found


def test_a_left_alone_digest_only_reference_shows_its_digest_and_no_tag() -> None:
    [row] = found("deploy.yaml", f"kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - image: node@{D1}\n")
    assert row["status"] == "left-alone"
    assert (row["image"], row["tag"], row["digest"]) == ("docker.io/library/node", None, D1)


def test_a_left_alone_split_reference_shows_its_digest() -> None:
    [row] = found("kustomization.yaml", f"resources: []\nimages:\n  - {{name: web, digest: {D1}}}\n")
    assert row["status"] == "left-alone" and row["digest"] == D1


def test_a_left_alone_tag_only_reference_shows_its_tag() -> None:
    [row] = found("compose.yaml", "services:\n  web:\n    image: ghcr.io/acme/web:1.2\n")
    assert (row["status"], row["image"], row["tag"], row["digest"]) == (
        "left-alone", "ghcr.io/acme/web", "1.2", None)


def test_a_templated_value_has_no_parsed_parts() -> None:
    [row] = found("compose.yaml", "services:\n  web:\n    image: ${IMAGE}\n")
    assert (row["image"], row["tag"], row["digest"], row["value"]) == (None, None, None, "${IMAGE}")


def test_a_tag_at_digest_row_shows_the_tag_field_as_written() -> None:
    table = by_path(found("values.yaml", f"image:\n  repository: web\n  tag: 1.0@{D1}\n"))
    row = table[".image.tag"]
    assert (row["value"], row["tag"], row["digest"]) == (f"1.0@{D1}", "1.0", D1)


def test_refs_json_gives_every_field_for_every_row(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  a: {{image: 'nginx:1.25@{D1}'}}\n  b: {{image: '${{X}}'}}\n  c: {{image: redis}}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["refs", str(tmp_path), "--json"]) == 0
    rows = json.loads(out.getvalue())
    assert len(rows) == 3
    assert all(set(r) >= {"file", "line", "path", "value", "image", "tag", "digest", "status", "reason"}
               for r in rows)
    assert [(r["status"], r["image"]) for r in rows] == [
        ("tracked", "docker.io/library/nginx"), ("left-alone", None),
        ("left-alone", "docker.io/library/redis")]


def test_refs_names_the_image_of_a_row_whose_value_is_only_a_tag(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"ARG V=1.79-slim@{D1}\nFROM rust:${{V}}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["refs", str(tmp_path / "Dockerfile")]) == 0
    first = out.getvalue().splitlines()[0]
    assert f"tracked  1.79-slim@{D1}  [docker.io/library/rust]" in first
