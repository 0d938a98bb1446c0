"""Shared fixtures. Real servers live in tests/servers/ and are started per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"

pytest_plugins = ["tests.servers.fixtures"]


@pytest.fixture
def lablup_metadata() -> bytes:
    """The real catalog tagsync exists for; skipped where ../shared is not beside the project."""
    path = CORPUS / "lablup-image-metadata.yml"
    if not path.exists():
        pytest.skip(f"corpus file {path} is absent")
    return path.read_bytes()


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tagsync run` refuses to edit only a CI runner's files (CI / GITHUB_ACTIONS set): the
    suite runs in CI too, and every test says itself whether it plays one."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
