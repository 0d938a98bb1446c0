"""Whole references: parse → render is the identity, and a new tag or digest changes only its part."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tagsync.reference import ImageName, Reference

component = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
host = st.one_of(st.just(""), st.sampled_from(["localhost", "registry.example.com", "ghcr.io",
                                                "docker.io", "127.0.0.1"]).flatmap(
    lambda h: st.one_of(st.just(h + "/"), st.integers(1, 65535).map(lambda p: f"{h}:{p}/"))))
name = st.tuples(host, st.lists(component, min_size=1, max_size=3)).map(
    lambda t: t[0] + "/".join(t[1]))
tag = st.one_of(st.none(), st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}", fullmatch=True))
digest = st.one_of(st.none(), st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True))


def text(n: str, t: str | None, d: str | None) -> str:
    return n + (f":{t}" if t else "") + (f"@{d}" if d else "")


@given(name, tag, digest)
def test_parse_then_render_is_the_identity(n: str, t: str | None, d: str | None) -> None:
    written = text(n, t, d)
    ref = Reference.parse(written)
    assert ref.render() == written
    assert (ref.name, ref.tag, ref.digest) == (n, t, d)


@given(name, tag, digest, tag, digest)
def test_a_new_tag_or_digest_changes_only_its_part(n: str, t: str | None, d: str | None,
                                                   t2: str | None, d2: str | None) -> None:
    ref = Reference.parse(text(n, t, d))
    assert Reference(ref.name, t2, d).render() == text(n, t2, d)
    assert Reference(ref.name, t, d2).render() == text(n, t, d2)


def test_docker_hub_names_keep_their_elided_form() -> None:
    ref = Reference.parse("nginx:1.25.3")
    assert ref.image == ImageName("docker.io", "library/nginx")
    assert Reference(ref.name, "1.25.4", None).render() == "nginx:1.25.4"
