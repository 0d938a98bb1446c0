"""Properties of references assembled from parts (a compose `${VAR:-default}`, a Dockerfile
ARG default holding the tag, a `tag@digest` tag field): rendering what was read gives back the
bytes as written, and an update moves only the tag and digest, in the author's form."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tagsync.config import CatalogConfig
from tagsync.find import find_references, open_source
from tagsync.find.model import Slot
from tests.test_find_properties import fast

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
NAMES = ["nginx", "ghcr.io/acme/web", "localhost:5000/team/app", "docker.io/library/redis"]
TAGS = ["1.25", "v2.0.1-rc.1", "11.5.0-debian-9-r0", "latest"]


def read(file: str, text: str) -> list[Slot]:
    config = CatalogConfig.model_validate({"name": "t", "file": file, "pin_digests": True,
                                           "policy": {"kind": "newest"}})
    return find_references(config, open_source(text.encode(), file, config)).slots


@st.composite
def compose_values(draw: st.DrawFn) -> tuple[str, str, str, str | None]:
    name, tag = draw(st.sampled_from(NAMES)), draw(st.sampled_from(TAGS))
    digest = draw(st.sampled_from([None, D1]))
    var = draw(st.sampled_from(["IMAGE", "TAG", "REG"]))
    op = draw(st.sampled_from([":-", "-"]))
    tail = tag + (f"@{digest}" if digest else "")
    if var == "IMAGE":
        value = f"${{{var}{op}{name}:{tail}}}"
    elif var == "TAG":
        value = f"{name}:${{{var}{op}{tail}}}"
    else:
        value = f"${{{var}{op}registry.example.com}}/{name.rsplit('/', 1)[-1]}:{tail}"
    return value, name, tag, digest


@fast(150)
@given(compose_values(), st.sampled_from(["", "'", '"']))
def test_a_compose_default_renders_back_as_written_and_moves_only_its_tail(
        case: tuple[str, str, str, str | None], quote: str) -> None:
    value, _, tag, digest = case
    [slot] = read("compose.yaml", f"services:\n  web:\n    image: {quote}{value}{quote}\n")
    assert slot.render(tag, digest) == value
    new = slot.render("9.9", D2)
    old_tail = tag + (f"@{digest}" if digest else "")
    assert new == value.replace(old_tail, f"9.9@{D2}", 1)


@fast(100)
@given(st.sampled_from(NAMES), st.sampled_from(TAGS), st.sampled_from([None, D1]),
       st.sampled_from(['', '"']))
def test_an_arg_default_holding_the_tag_is_spliced_alone(
        name: str, tag: str, digest: str | None, quote: str) -> None:
    tail = tag + (f"@{digest}" if digest else "")
    text = f"ARG V={quote}{tail}{quote}\nFROM {name}:${{V}} AS build\n"
    slots = read("Dockerfile", text)
    [slot] = slots
    assert slot.span is not None and text[slot.span[0]:slot.span[1]] == tail
    assert slot.render(tag, digest) == tail
    assert slot.pin == (digest is not None)  # no digest is pushed into a variable without one


@fast(100)
@given(st.sampled_from(NAMES), st.sampled_from(TAGS[:3]))
def test_a_tag_at_digest_field_renders_back_as_written(name: str, tag: str) -> None:
    [slot] = read("values.yaml", f"image:\n  repository: {name}\n  tag: {tag}@{D1}\n")
    assert slot.render(tag, D1) == f"{tag}@{D1}"
    assert slot.render("9.9", D2) == f"9.9@{D2}"
