"""Each image's gate reads (signatures, ages) get `run.image_timeout` in all, counted from the
image's turn: a registry that trickles one image's signature or config, each request within
`run.timeout`, holds back that image's bump (a failure that says so: the gate fails closed),
never the run. No assertion here depends on how fast anything runs: the trickling answers
would take minutes to finish, a fake check that hangs never ends, and a healthy one never waits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tagsync.cli import main
from tagsync.errors import EXIT_PARTIAL
from tagsync.gate import Facts, Rule, collect, gate
from tagsync.plan import Change, Plan
from tagsync.reference import ImageName
from tests.servers.hostile import HostileRegistry

OLD = "sha256:" + "0" * 64
BUDGET = 0.3  # run.image_timeout in these tests; run.timeout is 600 s, so only it can stop a read


@pytest.fixture
def registry() -> Iterator[HostileRegistry]:
    server = HostileRegistry(tags={"slow/app": ["1.0.0"], "good/app": ["1.0.0"]},
                             trickle_blobs={"slow/app"}, trickle_signatures={"slow/app"},
                             trickle_interval=0.05).start()
    try:
        yield server
    finally:
        server.stop()


def checkout(tmp_path: Path, registry: HostileRegistry, gated: str) -> Path:
    """`gated.yml` (slow/app, under `gated`'s rule) and `plain.yml` (good/app, no rule)."""
    entry = '  - name: {}\n    tag: "1.0.0"\n    digest: "' + OLD + '"\n'
    (tmp_path / "gated.yml").write_text("images:\n" + entry.format("slow/app"))
    (tmp_path / "plain.yml").write_text("images:\n" + entry.format("good/app"))
    catalog = ("  - name: {name}\n    file: {name}.yml\n    entries: .images[*]\n"
               f"    image: \"{registry.host}/{{{{name}}}}\"\n    tag: .tag\n    digest: .digest\n")
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n" + catalog.format(name="gated") + gated
                      + catalog.format(name="plain")
                      + f"registries:\n  - host: \"{registry.host}\"\n    url: {registry.url}\n"
                      + f"run:\n  timeout: 600\n  retries: 0\n  image_timeout: {BUDGET}\n"
                      "  explain: false\n")
    return config


def cosign_key(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = tmp_path / "cosign.pub"
    path.write_bytes(key.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def json_run(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict[str, Any], str]:
    code = main(["run", "-c", str(config), "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def held_back(registry: HostileRegistry, tmp_path: Path, summary: dict[str, Any]) -> str:
    """The one failure (slow/app's), with good/app written and slow/app's file as it was."""
    [failure] = summary["failures"]
    assert failure["image"] == f"{registry.host}/slow/app"
    assert f"run.image_timeout ({BUDGET:g}s)" in failure["error"]
    assert OLD in (tmp_path / "gated.yml").read_text()
    assert OLD not in (tmp_path / "plain.yml").read_text()
    return str(failure["error"])


def test_a_trickling_image_config_holds_back_that_image_s_age_and_not_the_run(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = checkout(tmp_path, registry, "    policy: {kind: same, min_age: 1h}\n")
    code, summary, err = json_run(capsys, config)
    assert code == EXIT_PARTIAL and "Traceback" not in err
    assert held_back(registry, tmp_path, summary).startswith("min_age: ")
    blobs = [r for r in registry.requests_for("slow/app") if "/blobs/" in r.path]
    assert len(blobs) == 1  # cut once, never retried into another trickle


def test_a_trickling_signature_holds_back_that_image_s_bump_and_not_the_run(
        registry: HostileRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = checkout(tmp_path, registry, f"    verify: {{key: '{cosign_key(tmp_path)}'}}\n")
    code, summary, err = json_run(capsys, config)
    assert code == EXIT_PARTIAL and "Traceback" not in err
    error = held_back(registry, tmp_path, summary)
    assert error.startswith("not written, held back: ")  # not "signature refused": unchecked
    reads = [r.path for r in registry.requests_for("slow/app")
             if "/referrers/" in r.path or "/manifests/sha256-" in r.path]
    assert 1 <= len(reads) <= 2  # the trickling ones, each cut once: no retry into another


# --- the budget, in isolation: one image that never answers, one that needs no wait --------


class Verifier:
    """A verifier whose check of `hung` never ends and whose other checks pass at once."""

    def __init__(self, hung: ImageName) -> None:
        self.hung = hung

    async def verify(self, fetch: Any, image: str, digest: str) -> Any:
        if image == str(self.hung):
            await asyncio.Event().wait()
        return SimpleNamespace(ok=True, signer="key SHA256:test", accepted=None)


def change(image: ImageName, digest: str) -> Change:
    return Change("c", "f.yml", 0, ".digest", 1, str(image), "1.0.0", OLD, digest,
                  "digest changed", slot=f"f.yml:0:{image.repository}", digest=digest)


def test_each_image_gets_its_own_budget_from_its_turn() -> None:
    """One image at a time, the hung one first: it is held back when its budget ends, and the
    next image's budget starts only then, so its checks pass."""
    hung, fine = ImageName("r.test", "a/hung"), ImageName("r.test", "b/fine")
    policy: Any = object()
    facts = Facts()
    checks: set[tuple[Any, ImageName, str, str, str | None]] = {
        (policy, hung, "sha256:" + "1" * 64, "1.0.0", None),
        (policy, fine, "sha256:" + "2" * 64, "1.0.0", None)}
    seen: list[tuple[str, int, int]] = []
    asyncio.run(collect(checks, set(), facts, {id(policy): Verifier(hung)},
                        {"r.test": object()}, {}, lambda *p: seen.append(p),
                        concurrency=1, budget=0.05))
    held = facts.verdicts[(policy, hung, "sha256:" + "1" * 64)]
    assert not held.ok and held.held and "run.image_timeout (0.05s)" in held.text
    assert facts.verdicts[(policy, fine, "sha256:" + "2" * 64)].ok
    assert sorted(seen) == [("verify", 1, 2), ("verify", 2, 2)]  # the held one counts as done
    draft = Plan(changes=[change(hung, "sha256:" + "1" * 64), change(fine, "sha256:" + "2" * 64)])
    plan = gate(draft, lambda c: Rule(policy), facts, datetime.now(UTC))
    assert [c.image for c in plan.changes] == [str(fine)]
    [failure] = plan.failures
    assert failure.image == str(hung) and failure.error.startswith("not written, held back: ")


def test_an_age_not_read_within_the_budget_is_unknown_and_says_why() -> None:
    class Hung:
        async def get(self, image: ImageName, reference: str) -> Any:
            await asyncio.Event().wait()

        async def head(self, image: ImageName, reference: str) -> Any:
            await asyncio.Event().wait()

    image = ImageName("r.test", "a/hung")
    digest = "sha256:" + "1" * 64
    facts = Facts()
    asyncio.run(collect(set(), {(image, "1.0.0", digest)}, facts, {}, {"r.test": Hung()}, {},
                        budget=0.05))
    seen = facts.ages[(image, "1.0.0", digest)]
    assert seen.when is None and seen.held is not None and "run.image_timeout" in seen.held
    from datetime import timedelta

    plan = gate(Plan(changes=[change(image, digest)]), lambda c: Rule(None, timedelta(hours=1)),
                facts, datetime.now(UTC))
    [failure] = plan.failures
    assert failure.error.startswith("min_age: the new image's creation time is unknown: ")
