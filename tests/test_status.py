"""`tagsync status`: every tracked image at a glance, against a real registry; nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.cli import main
from tagsync.image.tiny import build_image
from tests.servers.fixtures import RegistryServer, unique_namespace


@pytest.fixture
def checkout(registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    ns = unique_namespace("status", request)
    h = registry.host
    old = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} web 1.0 old",
                                                        created="2026-01-01T00:00:00Z")).digest
    registry.push(f"{ns}/web", "1.0", build_image(f"{ns} web 1.0 new", created="2026-03-01T00:00:00Z"))
    for tag in ("1.1", "1.2", "2.0"):
        registry.push(f"{ns}/api", tag, f"{ns} api {tag}")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "app.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: {h}/{ns}/web:1.0@{old}\n"
        f"    - image: {h}/{ns}/gone:1.0@{old}\n"
        "    - image: ${IMAGE}\n")
    (tmp_path / "values.yaml").write_text(f"api:\n  image:\n    repository: {h}/{ns}/api\n    tag: '1.0'\n")
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n"
        "  - name: deploy\n    files: ['deploy/*.yaml']\n"
        "  - name: chart\n    file: values.yaml\n    policy: {kind: semver, range: '^1'}\n"
        f"registries:\n  - host: '{h}'\n    url: {registry.url}\n")
    return tmp_path


def status(checkout: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    before = {p: p.read_bytes() for p in checkout.rglob("*.yaml")}
    code = main(["status", "-c", str(checkout / "tagsync.yaml"), *flags])
    assert {p: p.read_bytes() for p in checkout.rglob("*.yaml")} == before  # writes nothing
    return code, capsys.readouterr().out


def test_json_has_a_row_per_reference_with_state_candidate_and_distance(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = status(checkout, capsys, "--json")
    assert code == 0
    rows = {(r["file"].split("/")[-1], r["line"]): r for r in json.loads(out)}
    web, gone, templated = rows[("app.yaml", 5)], rows[("app.yaml", 6)], rows[("app.yaml", 7)]
    api = rows[("values.yaml", 4)]
    assert web["state"] == "behind" and web["candidate"] == "1.0"
    assert web["candidate_digest"] != web["digest"]
    assert (web["created"], web["candidate_created"]) == ("2026-01-01T00:00:00+00:00",
                                                          "2026-03-01T00:00:00+00:00")
    assert gone["state"] == "failed" and "not found" in gone["reason"]
    assert templated["state"] == "left alone" and "templated" in templated["reason"]
    assert (api["state"], api["tag"], api["candidate"], api["behind"]) == ("behind", "1.0", "1.2", 2)


def test_the_plain_table_has_every_column_and_a_count(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = status(checkout, capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["where", "image", "current", "policy", "candidate", "behind", "age",
                                "state"]
    assert any("values.yaml:4" in line and "semver ^1" in line and "behind" in line for line in lines)
    assert lines[-1] == "4 references: 2 behind, 1 failed, 1 left alone"
    assert "\x1b[" not in out  # no colour when not on a terminal


def test_markdown_is_a_table_for_a_job_summary(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = status(checkout, capsys, "--markdown", "--no-ages")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "| where | image | current | policy | candidate | behind | age | state |"
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert len(lines) == 6
    assert any("- / -" in line for line in lines[2:])  # --no-ages


def test_ages_are_read_through_the_surveys_own_registry_clients(
        token_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    """One token per repository for the whole status: the ages (a manifest and a config read
    per image) reuse what the digest check authenticated, rate-limit state included."""
    ns = "public/" + unique_namespace("status-token", request)
    old = token_registry.push(f"{ns}/web", "1.0", build_image(
        f"{ns} old", created="2026-01-01T00:00:00Z")).digest
    token_registry.push(f"{ns}/web", "1.0", build_image(f"{ns} new", created="2026-03-01T00:00:00Z"))
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                       f"    - image: {token_registry.host}/{ns}/web:1.0@{old}\n")
    (tmp_path / "tagsync.yaml").write_text(
        "catalogs:\n  - name: app\n    file: pod.yaml\nregistries:\n"
        f"  - host: '{token_registry.host}'\n    url: {token_registry.url}\n")
    issued = token_registry.issued  # type: ignore[attr-defined]
    before = len(issued)
    assert main(["status", "-c", str(tmp_path / "tagsync.yaml"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["state"] == "behind"
    assert row["created"].startswith("2026-01-01") and row["candidate_created"].startswith("2026-03-01")
    assert [t["scope"] for t in issued[before:]] == [[f"repository:{ns}/web:pull"]]


def test_behind_shows_only_what_a_run_would_change_and_sort_orders_them(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = status(checkout, capsys, "--json", "--behind", "--sort", "behind", "--no-ages")
    assert code == 0
    rows = json.loads(out)
    assert [(r["state"], r["behind"]) for r in rows] == [("behind", 2), ("behind", None)]
    code, out = status(checkout, capsys, "--json", "--sort", "state", "--no-ages")
    assert [r["state"] for r in json.loads(out)] == ["failed", "behind", "behind", "left alone"]


def test_an_unknown_sort_is_a_usage_error(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "-c", str(checkout / "tagsync.yaml"), "--sort", "size"]) == 2
    assert "one of where, image, behind, state, age" in capsys.readouterr().err


# --- fitting the terminal: rendered at 80 and 120 columns, 300 rows ---------------------------

def many_rows() -> list[Any]:
    from tagsync.status import Row

    long_reason = ("the registry could not say: GET https://registry.example.com/v2/team/svc/tags/"
                   "list answered 503 Service Unavailable after 4 attempts; the next run asks again "
                   "and nothing was written for this image meanwhile")
    rows = []
    for i in range(300):
        state, reason = [("behind", None), ("up to date", None), ("failed", long_reason),
                         ("left alone", "tag only: with policy `same` there is nothing to update "
                          "(choose a policy, or set pin_digests: true)")][i % 4]
        rows.append(Row(f"deploy/environments/production/services/svc{i:03}.yaml", 12 + i,
                        f"docker.io/teamplatform/service-number-{i:03}", "1.2.3",
                        "sha256:" + "ab" * 32, "semver within major", "1.4.0", "sha256:" + "cd" * 32,
                        2, state, reason))
    return rows


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_fits_the_terminal_and_no_cell_is_over_three_lines(width: int) -> None:
    from tagsync.status import fit, render

    rows = many_rows()
    head, body, caption = fit(rows, width)
    assert all(len(cell) <= 3 for row in body for cell in row)
    text = render(rows, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "files under deploy/environments/production/services/" in caption
    assert "images under docker.io/teamplatform/" in caption
    assert "files under deploy/environments/production/services/" in " ".join(text.splitlines())
    first = dict(zip(head, (cell[0] for cell in body[0]), strict=True))
    assert first["where"] == "svc000.yaml:12"  # the name, not `deploy/svc000.…`
    assert first["image"] == ("service-number-000" if width == 120 else "…-number-000")


def test_a_narrow_terminal_drops_policy_and_age_and_says_so() -> None:
    from tagsync.status import fit

    head, _, caption = fit(many_rows(), 80)
    assert "policy" not in head and "age" not in head
    assert "policy and age: --json or a wider terminal" in caption
    assert "policy" in fit(many_rows(), 120)[0]


@pytest.mark.parametrize("width", [80, 120])
def test_at_a_terminal_the_table_is_as_wide_as_it(
        checkout: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        width: int) -> None:
    import re
    import sys

    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out = status(checkout, capsys, "--no-ages")
    assert code == 0
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.splitlines()]
    assert lines[0].split()[:2] == ["where", "image"]
    assert max(len(line) for line in lines) <= width
    assert lines[-1] == "4 references: 2 behind, 1 failed, 1 left alone"


_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=90)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(_TEXT, _TEXT, _TEXT, st.sampled_from(
    ["behind", "up to date", "failed", "left alone", "waiting"]), st.one_of(st.none(), st.text(
        st.sampled_from("ab c-/:"), max_size=400))), min_size=1, max_size=12),
       width=st.integers(80, 200))
def test_any_rows_fit_any_terminal_of_80_columns_or_more(
        rows: list[tuple[str, str, str, str, str | None]], width: int) -> None:
    from tagsync.status import Row, fit, render

    made = [Row(f"{f}.yaml", 1, image, tag, None, "same", None, None, None, state, reason)
            for f, image, tag, state, reason in rows]
    _, body, _ = fit(made, width)
    assert all(len(cell) <= 3 for row in body for cell in row)
    assert max(len(line) for line in render(made, width).splitlines()) <= width
