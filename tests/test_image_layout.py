"""Our own image writer and the OCI-layout source used by the demo and air-gapped users."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tagsync.config import DigestFormat
from tagsync.errors import ImageNotFoundError
from tagsync.image.tiny import build_image, write_layout
from tagsync.reference import ImageName, short
from tagsync.registry.base import digest_value
from tagsync.registry.layout import LayoutSource


def test_same_content_gives_the_same_digest() -> None:
    assert build_image("a").digest == build_image("a").digest
    assert build_image("a").digest != build_image("b").digest


def test_layout_answers_like_a_registry(tmp_path: Path) -> None:
    built = build_image("x", ("linux/amd64", "linux/arm64"))
    write_layout(tmp_path / "org" / "app", "1.0", built)
    src = LayoutSource(tmp_path)
    img = ImageName("docker.io", "org/app")
    assert asyncio.run(digest_value(src, img, "1.0", DigestFormat.full, None)) == built.digest
    assert asyncio.run(digest_value(src, img, "1.0", DigestFormat.image_id, "linux/arm64")) == \
        short(built.config_digest("linux/arm64"))
    assert asyncio.run(src.list_tags(img)) == ["1.0"]


def test_layout_retag_replaces_the_old_entry(tmp_path: Path) -> None:
    write_layout(tmp_path / "a", "v", build_image("one"))
    write_layout(tmp_path / "a", "v", build_image("two"))
    assert asyncio.run(LayoutSource(tmp_path).list_tags(ImageName("r", "a"))) == ["v"]


def test_missing_layout_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no OCI layout"):
        asyncio.run(LayoutSource(tmp_path).head(ImageName("r", "nope"), "v"))
