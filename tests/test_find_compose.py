"""Compose values with `${VAR:-default}`: the default is in the file, so it is followed and
rewritten in place; what it cannot settle says why. Pure: no registry."""

from __future__ import annotations

import pytest

from tagsync.config import CatalogConfig
from tagsync.find import find_references, open_source
from tagsync.find.model import Slot
from tests.test_find_shapes import D1, found

D2 = "sha256:" + "2" * 64


def one_slot(value: str) -> Slot:
    text = f"services:\n  web:\n    image: {value}\n"
    config = CatalogConfig.model_validate({"name": "t", "file": "compose.yaml"})
    [slot] = find_references(config, open_source(text.encode(), "compose.yaml", config)).slots
    return slot


@pytest.mark.parametrize(("value", "image", "rendered"), [
    (f"${{WEB_IMAGE:-nginx:1.25@{D1}}}", "docker.io/library/nginx", f"${{WEB_IMAGE:-nginx:1.26@{D2}}}"),
    (f"nginx:${{TAG-1.25@{D1}}}", "docker.io/library/nginx", f"nginx:${{TAG-1.26@{D2}}}"),
    (f"${{REGISTRY:-ghcr.io}}/acme/web:1.25@{D1}", "ghcr.io/acme/web",
     f"${{REGISTRY:-ghcr.io}}/acme/web:1.26@{D2}"),
])
def test_a_default_is_followed_and_rewritten_in_place(value: str, image: str, rendered: str) -> None:
    slot = one_slot(value)
    assert str(slot.image) == image
    assert slot.render("1.26", D2) == rendered


def test_a_defaulted_image_row_shows_the_value_as_written() -> None:
    [row] = found("compose.yaml", f"services:\n  web:\n    image: ${{IMG:-nginx:1.25@{D1}}}\n")
    assert (row["status"], row["value"], row["tag"]) == ("tracked", f"${{IMG:-nginx:1.25@{D1}}}", "1.25")


@pytest.mark.parametrize(("value", "reason"), [
    ("${IMAGE}", "templated"),
    ("${IMAGE:?set it}", "templated"),
    ("nginx:${MAJOR:-1}.${MINOR:-25}", "assembled from several parts"),
    ("${IMAGE:-nginx}", "no tag written"),
])
def test_what_a_default_cannot_settle_is_said(value: str, reason: str) -> None:
    [row] = found("compose.yaml", f"services:\n  web:\n    image: '{value}'\n")
    assert row["status"] == "left-alone" and reason in str(row["reason"])
