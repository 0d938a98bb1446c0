"""Locating references and planning changes: pure functions, deterministic output."""

from __future__ import annotations

from tagsync.catalog import Catalog
from tagsync.config import CatalogConfig, DigestFormat
from tagsync.errors import ImageNotFoundError
from tagsync.find.paths import find_slots
from tagsync.plan import make_plan, want_of
from tagsync.reference import ImageName
from tagsync.registry import Observation

TEXT = """\
images:
  - name: python
    tags:
      - ["latest", ":3.6"]
      - ["3.6", "aaaaaaaaaaaa"]
      - ["2.7", "x"]
    base: &b
      cpu: 1
  - name: r
    tags:
      - ["3.5", "bbbbbbbbbbbb"]
"""

CFG = CatalogConfig(name="k", file="c.yml", entries=".images[*]", image="org/kernel-{name}",
                    pairs=".tags", digest_format=DigestFormat.short)


def test_slots_are_the_followed_pairs() -> None:
    slots, _ = find_slots(CFG, Catalog(TEXT, "c.yml"))
    assert [(str(s.image), s.tag, s.current, s.line) for s in slots] == [
        ("docker.io/org/kernel-python", "3.6", "aaaaaaaaaaaa", 5),
        ("docker.io/org/kernel-r", "3.5", "bbbbbbbbbbbb", 11),
    ]


def test_pointers_and_placeholders_are_noted_not_followed() -> None:
    _, notes = find_slots(CFG, Catalog(TEXT, "c.yml"))
    assert [(n.tag, n.reason.split(" (")[0]) for n in notes] == [
        ("latest", "points at another tag"),
        ("2.7", "placeholder digest 'x'"),
    ]


def test_placeholders_are_followed_when_configured() -> None:
    cfg = CFG.model_copy(update={"update_placeholders": True})
    slots, _ = find_slots(cfg, Catalog(TEXT, "c.yml"))
    assert "2.7" in [s.tag for s in slots]


def test_values_shared_through_an_anchor_are_noted() -> None:
    text = "base: &b [\"1.0\", \"cccccccccccc\"]\nimages:\n  - name: a\n    tags:\n      - *b\n"
    slots, notes = find_slots(CFG, Catalog(text, "c.yml"))
    assert slots == []
    assert "anchor &b" in notes[0].reason


def test_helm_style_fields() -> None:
    cfg = CatalogConfig(name="h", file="v.yaml", image="{image.repository}", tag=".image.tag",
                        digest=".image.digest")
    text = "image:\n  repository: ghcr.io/acme/web\n  tag: \"1.2\"\n  digest: sha256:00\n"
    slots, _ = find_slots(cfg, Catalog(text, "v.yaml"))
    assert [(str(s.image), s.tag, s.current) for s in slots] == [("ghcr.io/acme/web", "1.2", "sha256:00")]


def observed(slots, values):  # type: ignore[no-untyped-def]
    out = {}
    for s in slots:
        v = values.get(s.tag)
        err = None if v else ImageNotFoundError("tag not found", image=str(s.image))
        out[want_of(s)] = Observation(want_of(s), v, err)
    return out


def test_plan_lists_changes_failures_and_up_to_date_in_file_order() -> None:
    slots, notes = find_slots(CFG, Catalog(TEXT, "c.yml"))
    plan = make_plan(reversed(slots), observed(slots, {"3.6": "cccccccccccc"}), notes)
    assert [(c.path, c.old, c.new) for c in plan.changes] == [
        (".images[0].tags[1][1]", "aaaaaaaaaaaa", "cccccccccccc")]
    assert [(f.tag, f.error) for f in plan.failures] == [("3.5", "tag not found")]
    assert plan.up_to_date == 0


def test_plan_is_deterministic() -> None:
    slots, notes = find_slots(CFG, Catalog(TEXT, "c.yml"))
    obs = observed(slots, {"3.6": "c" * 12, "3.5": "d" * 12})
    assert make_plan(slots, obs, notes) == make_plan(list(reversed(slots)), obs, notes)


def test_unchanged_digest_is_up_to_date() -> None:
    slots, _ = find_slots(CFG, Catalog(TEXT, "c.yml"))
    plan = make_plan(slots, observed(slots, {"3.6": "aaaaaaaaaaaa", "3.5": "bbbbbbbbbbbb"}))
    assert (plan.changes, plan.up_to_date) == ([], 2)


def test_image_names_follow_docker_conventions() -> None:
    assert ImageName.parse("python") == ImageName("docker.io", "library/python")
    assert ImageName.parse("ghcr.io/a/b") == ImageName("ghcr.io", "a/b")
    assert ImageName.parse("localhost:5000/a") == ImageName("localhost:5000", "a")
