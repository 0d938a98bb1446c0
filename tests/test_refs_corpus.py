"""`tagsync refs --json` on the real-file corpus finds every listed reference and nothing else.

The corpus (../shared/corpus/manifests, public files byte for byte) comes with truth.json: every
image reference a reader sees, look-alikes included (templated values, names compose builds).
A row matches a truth entry by file, document and path (YAML) or line (Dockerfiles); marker
rows match marker entries. Rows for stage names and `scratch` are `ignored`, not references.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from tagsync.catalog.path import parse_path
from tagsync.cli import main

from .conftest import CORPUS

MANIFESTS = CORPUS / "manifests"
CORE = {"k8s", "kustomize", "compose", "actions", "helm-split", "helm-string", "dockerfile", "marker"}


def truth_keys() -> set[tuple[str, int, str, bool]]:
    data = json.loads((MANIFESTS / "truth.json").read_text())
    return {(file, e["doc"], _norm(e["path"]), e["kind"] == "marker")
            for file, entries in data["files"].items() for e in entries if e["kind"] in CORE}


def in_scope(row: dict[str, object]) -> bool:
    """Rows of the kinds truth.json lists: it predates reading the BuildKit frontend of a
    Dockerfile's `# syntax=` line (tests/test_find_dockerfile.py checks those), and `ignored`
    rows are not references."""
    if row["status"] == "ignored":
        return False
    if row["shape"] == "dockerfile":
        line = Path(str(row["file"])).read_text().split("\n")[int(str(row["line"])) - 1]
        return not line.lstrip().startswith("#")
    return True


def row_key(row: dict[str, object]) -> tuple[str, int, str, bool]:
    file = Path(str(row["file"])).name
    path = row["path"] if row["path"] is not None else f"line:{row['line']}"
    return (file, int(str(row["doc"])), _norm(str(path)), row["shape"] == "markers")


def _norm(path: str) -> str:
    """One spelling per path (`.a["b-c"]` and `.a.b-c` name the same key)."""
    return path if path.startswith("line:") else repr(parse_path(path))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    if not MANIFESTS.exists():
        pytest.skip(f"corpus {MANIFESTS} is absent")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["refs", str(MANIFESTS), "--json"]) == 0
    return [r for r in json.loads(out.getvalue()) if in_scope(r)]


def test_every_listed_reference_is_found(rows: list[dict[str, object]]) -> None:
    missing = truth_keys() - {row_key(r) for r in rows}
    assert not missing, sorted(missing)


def test_nothing_else_is_found(rows: list[dict[str, object]]) -> None:
    extra = {row_key(r) for r in rows} - truth_keys()
    assert not extra, sorted(extra)


def test_templated_values_are_left_alone_with_a_reason(rows: list[dict[str, object]]) -> None:
    templated = [r for r in rows if "${" in str(r["value"]) or "<YOUR" in str(r["value"])]
    assert templated
    assert all(r["status"] == "left-alone" and "templated" in str(r["reason"]) for r in templated)


def test_an_image_compose_builds_is_left_alone(rows: list[dict[str, object]]) -> None:
    built = [r for r in rows if r["path"] == ".services.etl.image"]
    assert [r["status"] for r in built] == ["left-alone"]
    assert "builds" in str(built[0]["reason"])
