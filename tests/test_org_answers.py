"""Stored answers keep every fact the gate decides from: a child reading them decides as the
process that asked would have (a held signature check stays held, a pending age stays pending)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tagsync.gate import Checked, Seen
from tagsync.org import answers
from tagsync.reference import ImageName
from tagsync.run import _Known
from tagsync.verify.policy import VerifyPolicy

IMAGE = ImageName("ghcr.io", "acme/app")
DIGEST = "sha256:" + "a" * 64
WORDS = st.text(st.characters(codec="ascii", categories=("L", "N", "P", "Zs")), max_size=40)
WHEN = st.none() | st.datetimes(timezones=st.just(UTC))


def _round_trip(known: _Known) -> _Known:
    loaded: _Known = answers.load(json.loads(json.dumps(answers.dump(known))), "answers.json")
    return loaded


@given(when=WHEN, clock=WORDS, pending=st.none() | WORDS, held=st.none() | WORDS)
def test_an_age_comes_back_with_why_it_is_pending_or_held(
        when: datetime | None, clock: str, pending: str | None, held: str | None) -> None:
    known = _Known()
    known.facts.ages[(IMAGE, "1.0", DIGEST)] = Seen(when, clock, pending, held)
    assert _round_trip(known).facts.ages == known.facts.ages


@given(ok=st.booleans(), text=WORDS, signer=st.none() | WORDS, logged_at=WHEN, held=st.booleans())
def test_a_signature_verdict_comes_back_held_if_it_was(
        ok: bool, text: str, signer: str | None, logged_at: datetime | None, held: bool) -> None:
    known = _Known()
    policy = VerifyPolicy.model_validate({"key": "cosign.pub"})
    known.facts.verdicts[(policy, IMAGE, DIGEST)] = Checked(ok, text, signer, logged_at, held)
    assert _round_trip(known).facts.verdicts == known.facts.verdicts
