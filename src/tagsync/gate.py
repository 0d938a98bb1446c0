"""The gate: every value a draft plan would write passes the same checks before the plan is final.

The plan says what the catalogs and the registries suggest; the gate says what may be written.
Every change names the digest it writes (a slot's digest or pin, an appended [tag, digest], a new
repository's entry, a promotion: `Change.digest`), and no change reaches a file unless:

- under a `verify:` policy, a signature on that digest passed the catalog's policy (a change
  that writes no digest cannot be checked, and is refused);
- under `min_age`, the new digest is old enough by the later of the registry's clock and the
  transparency log's time of the verified signature (a time its publisher cannot backdate);
  a digest whose age cannot be told never passes;
- under `refuse_rollback`, the new digest is not older than the one it replaces.

The edits of one reference (a tag and its digest) pass or stay together. `gate` is pure: the
facts (signature checks, ages) are gathered first by `collect` and come in as data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tagsync.errors import PatternTimeoutError, TagsyncError
from tagsync.find.model import Note
from tagsync.plan import Change, Failure, Plan
from tagsync.policy import format_age
from tagsync.reference import ImageName, short

log = logging.getLogger(__name__)

REKOR = "the transparency log (Rekor)"
_CLOCKS = {"EcrSource": "ECR's push time", "DockerHub": "Docker Hub's push time"}
CREATED = "the image's `created` (its publisher's claim)"


@dataclass(frozen=True)
class Checked:
    """A signature check of one digest: passed or not, in words (signer, or why not), and the
    transparency log's time of the accepting signature when one was verified."""

    ok: bool
    text: str
    signer: str | None = None
    logged_at: datetime | None = None
    held: bool = False  # no verdict: the check did not finish in its time (`run.image_timeout`)


@dataclass(frozen=True)
class Seen:
    """When a digest appeared, and by whose clock (`clock` names it for people); `pending`
    says why that clock cannot date this digest yet (it knows another one)."""

    when: datetime | None
    clock: str
    pending: str | None = None
    held: str | None = None  # why the age was not read in its time (`run.image_timeout`)


@dataclass(frozen=True)
class Rule:
    """What one change must satisfy: its catalog's verify policy (any hashable), `min_age`, and
    whether a digest older than the current one is refused."""

    verify: Any = None
    min_age: timedelta | None = None
    refuse_rollback: bool = False


@dataclass
class Facts:
    """What the gate decides from: signature checks by (policy, image, digest), ages by (image,
    tag, digest)."""

    verdicts: dict[tuple[Any, ImageName, str], Checked] = field(default_factory=dict)
    ages: dict[tuple[ImageName, str, str], Seen] = field(default_factory=dict)


def group_of(change: Change) -> str:
    """The reference an edit belongs to: a tag and its digest pass or stay together."""
    return change.slot or (f"{change.file}:{change.line}:{change.path}:{change.kind}:"
                           f"{change.image}:{change.tag}:{change.new}")


def _groups(changes: Iterable[Change]) -> dict[str, list[Change]]:
    out: dict[str, list[Change]] = {}
    for c in changes:
        out.setdefault(group_of(c), []).append(c)
    return out


def _written(group: list[Change]) -> list[Change]:
    """The edits of a group that write a digest."""
    return [c for c in group if c.digest]


def _fresh(change: Change, group: list[Change]) -> bool:
    """Is the digest new here (not already written in the reference it replaces)?"""
    assert change.digest is not None
    return not any(change.digest in c.old for c in group if c.old)


def old_digest(group: list[Change]) -> str | None:
    """The digest the group replaces, where the file held a full one."""
    for c in group:
        value = c.old.rsplit("@", 1)[-1]
        if value.startswith("sha256:") and len(value) == 71:
            return value
    return None


def needed(plan: Plan, rule_of: Callable[[Change], Rule]
           ) -> tuple[set[tuple[Any, ImageName, str, str, str | None]], set[tuple[ImageName, str, str]]]:
    """The facts a draft plan needs: signature checks (policy, image, digest, tag, platform),
    and ages (image, tag, digest) of new digests under `min_age` or `refuse_rollback`."""
    checks: set[tuple[Any, ImageName, str, str, str | None]] = set()
    ages: set[tuple[ImageName, str, str]] = set()
    for group in _groups(plan.changes).values():
        rule = rule_of(group[0])
        for c in _written(group):
            assert c.digest is not None
            image = ImageName.parse(c.image)
            if rule.verify is not None:
                checks.add((rule.verify, image, c.digest, c.tag, c.platform))
            if not _fresh(c, group):
                continue
            if rule.min_age:
                ages.add((image, c.tag, c.digest))
            previous = old_digest(group)
            if rule.refuse_rollback and previous is not None:
                ages |= {(image, "", c.digest), (image, "", previous)}
    return checks, ages


def gate(draft: Plan, rule_of: Callable[[Change], Rule], facts: Facts, now: datetime) -> Plan:
    """The final plan: each group of the draft's changes written, waiting (a note), or refused
    (a failure), by the facts; everything else of the draft as it was."""
    plan = Plan(failures=list(draft.failures), notes=list(draft.notes),
                up_to_date=draft.up_to_date)
    for group in _groups(draft.changes).values():
        verdict = _judge(group, rule_of(group[0]), facts, now)
        if isinstance(verdict, Failure):
            plan.failures.append(verdict)
            continue
        if isinstance(verdict, Note):
            plan.notes.append(verdict)
            continue
        plan.changes.extend(replace(c, why="; ".join(x for x in (c.why, verdict) if x) or None)
                            for c in group)
    plan.failures.sort(key=lambda f: (f.file, f.line))
    plan.notes.sort(key=lambda n: (n.file, n.line))
    return plan


def _judge(group: list[Change], rule: Rule, facts: Facts, now: datetime) -> Failure | Note | str:
    """A refusal, a wait, or the verified facts that let the group through (in words)."""
    first = group[0]
    image = ImageName.parse(first.image)
    written = _written(group)
    verb = "promoted" if first.reason == "promoted" else "written"
    tag = written[0].tag if written else first.tag

    def failure(text: str) -> Failure:
        return Failure(first.catalog, first.file, first.line, first.image, tag, text)

    vouched: list[str] = []
    logged: datetime | None = None
    if rule.verify is not None:
        if not written:
            return failure(f"not {verb}: `verify` has nothing to check, this change writes a tag "
                           "without its digest (write the digest beside the tag)")
        for c in written:
            assert c.digest is not None
            checked = facts.verdicts.get((rule.verify, image, c.digest))
            if checked is None:  # fail closed: a check that did not happen is not a pass
                return failure(f"not {verb}: the signature of {c.digest} was not checked")
            if not checked.ok:
                why = "held back" if checked.held else "signature refused"
                return failure(f"not {verb}, {why}: {checked.text}")
            vouched.append(checked.text)
            if checked.logged_at is not None:
                vouched.append(f"in the transparency log since {_when(checked.logged_at)}")
                logged = checked.logged_at
        vouched.append("digest " + ", ".join(sorted({c.digest or "" for c in written})))
    fresh = [c for c in written if _fresh(c, group)]
    if rule.min_age is not None and rule.min_age > timedelta(0):
        for c in fresh:
            assert c.digest is not None
            seen = facts.ages.get((image, c.tag, c.digest))
            when, clock = later(seen, logged)
            if when is None and seen is not None and seen.pending is not None:
                return Note(first.catalog, first.file, first.line, first.image, tag,
                            f"waiting: new digest of {c.tag}: {seen.pending}")
            if when is None:
                return failure("min_age: the new image's creation time is unknown"
                               + (f": {seen.held}" if seen is not None and seen.held else ""))
            if when > now - rule.min_age:
                note = (f"waiting: new digest of {c.tag} waits until {_when(when + rule.min_age)} "
                        f"(by {clock}: {_since(when, now)}; min_age {format_age(rule.min_age)})")
                return Note(first.catalog, first.file, first.line, first.image, tag, note)
            vouched.append(f"aged {_age(now - when)} by {clock}")
    previous = old_digest(group)
    if rule.refuse_rollback and fresh and previous is not None:
        # like with like: both images' own `created` (a push time dates the tag, not the build)
        old_when = _seen(facts.ages.get((image, "", previous)))
        new_when = _seen(facts.ages.get((image, "", fresh[0].digest or "")))
        if old_when is None or new_when is None:
            held = [s.held for s in (facts.ages.get((image, "", previous)),
                                     facts.ages.get((image, "", fresh[0].digest or "")))
                    if s is not None and s.held]
            return failure("refuse_rollback: when the new or the current image was built is "
                           "unknown" + (f": {held[0]}" if held else ""))
        if new_when < old_when:
            return failure(f"refuse_rollback: the new digest {short(fresh[0].digest or '')} "
                           f"was built {_when(new_when)}, before the current "
                           f"{short(previous)} ({_when(old_when)})")
    return "; ".join(vouched)


def _seen(seen: Seen | None) -> datetime | None:
    return seen.when if seen is not None else None


def later(seen: Seen | None, logged: datetime | None) -> tuple[datetime | None, str]:
    """The later of the registry's clock and the transparency log's time, and which it was:
    a publisher can backdate `created`, not the log."""
    registry = seen.when if seen is not None else None
    if logged is not None and (registry is None or logged > registry):
        return logged, REKOR
    return registry, seen.clock if seen is not None else "no clock"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _since(when: datetime, now: datetime) -> str:
    return f"{_when(when)}, in the future" if when > now else _when(when)


def _age(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"


# --- gathering the facts (I/O, through the survey's own registry clients) --------------------


async def collect(checks: set[tuple[Any, ImageName, str, str, str | None]],
                  ages: set[tuple[ImageName, str, str]], facts: Facts,
                  verifiers: Mapping[int, Any], sources: Mapping[str, Any],
                  clocks: Mapping[str, Any],
                  progress: Callable[[str, int, int], None] | None = None,
                  *, concurrency: int = 16, budget: float = 60.0) -> None:
    """Check each signature and read each age `facts` lacks (kept across re-plans: they do
    not depend on the branch), `concurrency` at a time: the signatures and the ages overlap.
    A registry error is a refusal or an unknown age, never a pass.

    Each signature check (an image's digest) and each image's age reads get `budget` seconds
    in all (`run.image_timeout`), counted from their turn: a registry that answers one image
    slowly, request after request each within `run.timeout`, holds back that image (a refusal
    or an unknown age that says so), not the run. `progress(phase, done, total)` counts
    "verify" and "ages"."""
    todo = {(p, i, d): (t, plat) for p, i, d, t, plat in checks if (p, i, d) not in facts.verdicts}
    missing = sorted(a for a in ages if a not in facts.ages)
    by_image: dict[ImageName, list[tuple[str, str]]] = {}
    for image, tag, digest in missing:
        by_image.setdefault(image, []).append((tag, digest))
    done = {"verify": 0, "ages": 0}
    totals = {"verify": len(todo), "ages": len(by_image)}
    turns = asyncio.Semaphore(concurrency)

    def held(image: ImageName, what: str) -> str:
        text = (f"its {what} took longer than run.image_timeout ({budget:g}s); held back, the "
                "next run tries again")
        log.warning("%s: %s", image, text)
        return text

    async def bounded(phase: str, work: Awaitable[None], cut: Callable[[], None]) -> None:
        async with turns:
            try:
                async with asyncio.timeout(budget):
                    await work
            except TimeoutError:
                cut()  # fail closed: what did not finish is no pass
        done[phase] += 1
        if progress is not None:
            progress(phase, done[phase], totals[phase])

    def unchecked(key: tuple[Any, ImageName, str]) -> Callable[[], None]:
        def cut() -> None:
            if key not in facts.verdicts:
                facts.verdicts[key] = Checked(False, held(key[1], "signature check"), held=True)
        return cut

    def unaged(image: ImageName, wanted: list[tuple[str, str]]) -> Callable[[], None]:
        def cut() -> None:
            why = held(image, "age reads")
            for tag, digest in wanted:
                facts.ages.setdefault((image, tag, digest), Seen(None, "no clock", held=why))
        return cut

    work = [bounded("verify", _check(key, *extra, facts, verifiers, sources), unchecked(key))
            for key, extra in sorted(todo.items(), key=lambda kv: str(kv[0][1:]))]
    work += [bounded("ages", _ages(image, wanted, facts, sources, clocks), unaged(image, wanted))
             for image, wanted in sorted(by_image.items(), key=lambda kv: str(kv[0]))]
    await asyncio.gather(*work)


async def _check(key: tuple[Any, ImageName, str], tag: str, platform: str | None, facts: Facts,
                 verifiers: Mapping[int, Any], sources: Mapping[str, Any]) -> None:
    from tagsync.verify import Reason, SourceFetch

    policy, image, digest = key
    source = sources.get(image.registry)
    if source is None:  # every host a digest was observed on has a source
        facts.verdicts[key] = Checked(False, "no registry client for this host")
        return
    verifier = verifiers[id(policy)]
    try:  # any source kind: OCI registry, ECR's API, an image layout
        verdict = await verifier.verify(SourceFetch(source), str(image), digest)
    except PatternTimeoutError as exc:  # the config's `identity_regex`: the run's fault, not the image's
        if exc.image is None:
            exc.image = str(image)
        raise
    except TagsyncError as exc:
        facts.verdicts[key] = Checked(False, f"cannot check the signature: {exc.message}")
        return
    if verdict.ok:
        logged = verdict.accepted.signed_at if verdict.accepted is not None else None
        facts.verdicts[key] = Checked(True, f"signed by {verdict.signer}", verdict.signer, logged)
        return
    text = f"{verdict.reason}: {verdict.detail}"
    if verdict.reason is Reason.no_signature and platform is not None:
        text = await _platform_hint(verifier, source, image, tag, platform, digest) or text
    facts.verdicts[key] = Checked(False, text)


async def _platform_hint(verifier: Any, source: Any, image: ImageName, tag: str, platform: str,
                         digest: str) -> str | None:
    """cosign signs a multi-arch image's index, not its platform manifests (unless
    `--recursive`): when the index is signed, say so, and how to verify it instead."""
    from tagsync.verify import SourceFetch

    try:
        index = (await source.head(image, tag)).digest
        if index == digest:
            return None
        verdict = await verifier.verify(SourceFetch(source), str(image), index)
    except PatternTimeoutError:
        raise
    except TagsyncError:
        return None
    if not verdict.ok:
        return None
    return (f"no signature: the {platform} manifest {digest} is not signed, but its index "
            f"{index} is (signed by {verdict.signer}); cosign signs only the index unless "
            "`cosign sign --recursive`. To verify the index, remove `platform:` so the index "
            "digest is written, or have every platform signed")


async def _ages(image: ImageName, wanted: list[tuple[str, str]], facts: Facts,
                sources: Mapping[str, Any], clocks: Mapping[str, Any]) -> None:
    """When each (tag, digest) appeared: the registry's push time where it keeps one (ECR,
    Docker Hub's API), read after the digest was observed (a later re-push can only make it
    younger), else the image config's `created`, read by digest."""
    from tagsync.registry.base import tag_times

    source = clocks.get(image.registry) or sources.get(image.registry)
    if source is None:
        for tag, digest in wanted:
            facts.ages[(image, tag, digest)] = Seen(None, "no clock")
        return
    pushed = getattr(source, "pushed_at", None) is not None
    tags = tuple(sorted({t for t, _ in wanted if t})) if pushed else ()
    times: dict[str, datetime] = {}
    if tags:
        try:
            times = await tag_times(source, image, tags)
        except TagsyncError as exc:
            log.info("%s: push times unknown: %s", image, exc.message)
    clock = _CLOCKS.get(type(source).__name__, "the registry's push time")
    named: Mapping[tuple[str, str], frozenset[str]] = getattr(source, "pushed_digests", {})
    by_digest = [(t, d) for t, d in wanted if not (t and pushed)]
    created = await asyncio.gather(*(_created(image, t, d, sources) for t, d in by_digest))
    facts.ages.update({(image, t, d): seen for (t, d), seen in zip(by_digest, created, strict=True)})
    for tag, digest in wanted:
        known = named.get((image.repository, tag))
        if tag and pushed and known is not None and digest not in known:
            # a tag's push time dates the digest it was pushed with: Docker Hub's API may
            # not know the newest push yet (it lags the registry), so this digest waits
            facts.ages[(image, tag, digest)] = Seen(
                None, clock, f"{clock} is for another digest of {tag} "
                             f"({', '.join(sorted(known))[:80]}); it waits until {clock} "
                             "knows this one")
        elif tag and pushed:
            facts.ages[(image, tag, digest)] = Seen(times.get(tag), clock)


async def _created(image: ImageName, tag: str, digest: str, sources: Mapping[str, Any]) -> Seen:
    from tagsync.registry.base import created_at

    reader = sources.get(image.registry)
    if reader is None:
        return Seen(None, CREATED)
    try:
        # a short digest (`digest_format`) cannot be fetched: its tag was just observed at it
        reference = digest if digest.startswith("sha256:") or not tag else tag
        return Seen(await created_at(reader, image, reference), CREATED)
    except TagsyncError as exc:
        log.info("%s@%s: creation time unknown: %s", image, digest, exc.message)
        return Seen(None, CREATED)
