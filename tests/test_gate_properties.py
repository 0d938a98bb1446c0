"""The gate as a property: for random catalogs (pairs that grow, new repositories, whole
references under a moving policy, promoted references), random registries and random facts
(signature checks that pass, fail or never happened; ages old, young, unknown or in the future;
Rekor times), no digest in what the final plan writes lacks a passing verdict when `verify:` is
on, and none is younger than `min_age` by the later of its clocks. The written digests are read
from the edits' own text, not from what the plan says it writes: a path that forgot to name its
digest would show here. And the edits of one reference are written together or not at all."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagsync.config import CatalogConfig
from tagsync.find import References, find_references, open_source
from tagsync.gate import Checked, Facts, Rule, Seen, gate, group_of, later, needed
from tagsync.plan import Change, make_plan
from tagsync.policy import parse_age
from tagsync.reference import ImageName
from tagsync.registry import Observation, RepoList, RepoQuery, TagList, TagQuery, Want

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HOST = "reg.test"
NAMES = ("a", "b", "c", "d")
TAGS = ("1.0", "1.1", "1.2")
POOL = tuple("sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(6))
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
KEY = "cosign.pub"


def catalogs(verify: bool, min_age: str | None) -> list[CatalogConfig]:
    policy: dict[str, Any] = {"kind": "semver", **({"min_age": min_age} if min_age else {})}
    extra: dict[str, Any] = {"verify": {"key": KEY}} if verify else {}
    return [
        CatalogConfig.model_validate({
            "name": "kernels", "file": "images.yaml", "image": f"{HOST}/ns/{{name}}",
            "entries": ".images[*]", "pairs": ".tags", "new_tags": True, "policy": policy,
            "new_images": {"template": "name: ${name}\ntags:\n  - ['${tag}', '${digest}']\n",
                           "tag": "1.0"}, **extra}),
        CatalogConfig.model_validate({"name": "staging", "file": "staging.yaml",
                                      "kind": "kubernetes", "pin_digests": True,
                                      "policy": policy, **extra}),
        CatalogConfig.model_validate({"name": "prod", "file": "prod.yaml", "kind": "kubernetes",
                                      "pin_digests": True, "policy": policy, **extra}),
    ]


def pod(images: list[tuple[str, str, str]]) -> bytes:
    return ("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n" + "".join(
        f"    - image: {HOST}/ns/{n}:{t}@{d}\n" for n, t, d in images)).encode()


def pairs(entries: list[tuple[str, str, str]]) -> bytes:
    return ("images:\n" + "".join(f"  - name: {n}\n    tags:\n      - ['{t}', '{d}']\n"
                                  for n, t, d in entries)).encode()


entry = st.tuples(st.sampled_from(NAMES[:2]), st.sampled_from(TAGS[:2]), st.sampled_from(POOL))
moment = st.one_of(st.none(), st.integers(-3 * 24, 40 * 24).map(lambda h: NOW - timedelta(hours=h)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), verify=st.booleans(), min_age=st.sampled_from([None, "1d", "3d"]),
       kernels=st.lists(entry, min_size=1, max_size=2, unique_by=lambda e: e[0]),
       staging=st.lists(entry, min_size=1, max_size=3),
       prod=st.lists(entry, min_size=1, max_size=3),
       listed=st.sets(st.sampled_from(NAMES), min_size=1))
def test_nothing_written_lacks_a_passing_verdict_or_is_younger_than_min_age(
        data: st.DataObject, verify: bool, min_age: str | None,
        kernels: list[tuple[str, str, str]], staging: list[tuple[str, str, str]],
        prod: list[tuple[str, str, str]], listed: set[str]) -> None:
    configs = catalogs(verify, min_age)
    files = {"images.yaml": pairs(kernels), "staging.yaml": pod(staging), "prod.yaml": pod(prod)}
    refs = References()
    for cfg in configs:
        refs.extend(find_references(cfg, open_source(files[cfg.file or ""], cfg.file or "", cfg)))
    registry = {(name, tag): data.draw(st.sampled_from(POOL)) for name in NAMES for tag in TAGS}
    created = {key: data.draw(moment) for key in registry}
    observations: dict[Want, Observation] = {}
    tag_lists: dict[TagQuery, TagList] = {}
    for name in NAMES:
        image = ImageName(HOST, f"ns/{name}")
        for tag in TAGS:
            for platform in (None,):
                want = Want(image, tag, configs[0].digest_format, platform)
                observations[want] = Observation(want, registry[(name, tag)], None)
        for times in (True, False):
            q = TagQuery(image, times)
            tag_lists[q] = TagList(q, TAGS, {t: w for t in TAGS if (w := created[(name, t)])})
    repo_lists = {RepoQuery(HOST, "ns"): RepoList(RepoQuery(HOST, "ns"),
                                                  tuple(f"ns/{n}" for n in sorted(listed)))}
    prod_slots = [s for s in refs.slots if s.catalog == "prod"]
    promoted: dict[Any, tuple[str, str] | tuple[str, bool]] = {
        s: (data.draw(st.sampled_from(TAGS)), data.draw(st.sampled_from(POOL)))
        for s in prod_slots if data.draw(st.booleans())}
    draft = make_plan(refs.slots, observations, refs.notes, tag_lists, refs.growths,
                      refs.discoveries, repo_lists, NOW, promoted)
    policy = configs[0].verify

    def rule_of(change: Change) -> Rule:
        return Rule(policy, change.min_age)

    checks, ages = needed(draft, rule_of)
    facts = Facts()
    for p, image, digest, _tag, _platform in sorted(checks, key=str):
        if data.draw(st.booleans()):  # some checks never happened (the gate fails closed)
            facts.verdicts[(p, image, digest)] = Checked(data.draw(st.booleans()), "checked",
                                                          None, data.draw(moment))
    for key in sorted(ages, key=str):
        if data.draw(st.booleans()):
            facts.ages[key] = Seen(data.draw(moment), "the registry's clock")
    final = gate(draft, rule_of, facts, NOW)

    limit = parse_age(min_age) if min_age else None
    groups = {group_of(c) for c in draft.changes}
    written = {group_of(c) for c in final.changes}
    for g in written:  # a reference is written whole or not at all
        assert [(c.file, c.path, c.new) for c in final.changes if group_of(c) == g] == [
            (c.file, c.path, c.new) for c in draft.changes if group_of(c) == g]
    assert written <= groups
    for change in final.changes:
        text = " ".join([change.new, *change.values, change.entry or ""])
        image = ImageName.parse(change.image)
        for digest in set(DIGEST.findall(text)):
            checked = facts.verdicts.get((policy, image, digest)) if verify else None
            if verify:
                assert checked is not None and checked.ok, (change, digest)
            if limit is None or digest in change.old:
                continue
            logged = checked.logged_at if checked is not None else None
            # by the clock of the tag it is written for; the log's time, when the signature
            # was logged, is a clock too (the digest existed then)
            seen = facts.ages.get((image, change.tag, digest))
            when = later(seen, logged)[0]
            assert when is not None and when <= NOW - limit, (change, digest, seen, logged)
