"""The configuration reference is generated from the models: no key goes undocumented, and
docs/config.md is what the models say today."""

from __future__ import annotations

from pathlib import Path

from tagsync.reference_doc import reference, undocumented

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_every_config_key_has_a_description() -> None:
    assert undocumented() == []


def test_docs_config_md_is_current() -> None:
    assert DOC.read_text() == reference(), "run: python -m tagsync.reference_doc > docs/config.md"


def test_the_readme_points_at_the_reference() -> None:
    assert "docs/config.md" in (DOC.parents[1] / "README.md").read_text()
