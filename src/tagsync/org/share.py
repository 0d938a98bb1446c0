"""One repository's share of an organisation's run.

Every repository of an organisation is run by one process, through one GitHub client (one
token, one rate limit) and with registry answers asked once for all of them. Unbounded, one
repository (10,000 references, a slow publish, a re-plan asking its questions again) could spend
the run's time and the shared rate limits, and the repositories after it would get nothing.

A `Share` is what one repository may spend: time in each of its steps (reading its files; then
planning and publishing it), GitHub requests, and registry questions newly asked for it after the
shared ones. Spending past it raises ShareSpentError, which the organisation's run makes that
repository's failure alone. Time is read from an injected clock: tests use a fake one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tagsync.errors import ShareSpentError

MIN_SECONDS = 30.0  # a step's least share: a run whose registry phase used its time still publishes
UNBOUNDED_SECONDS = 600.0  # a step's share when the run itself has no time bound


def step_seconds(cap: float | None, time_left: float | None, waiting: int) -> float:
    """How long one repository's step may take. `cap`: the org config's
    `per_repository.max_duration`, when set. Otherwise its even share of the run's time left
    (`time_left` divided by the `waiting` repositories, itself included, so every one of them
    gets its turn; time a repository leaves unused passes on), never under MIN_SECONDS; and
    UNBOUNDED_SECONDS when the run has no bound (`time_left` None)."""
    if cap is not None:
        return cap
    if time_left is None:
        return UNBOUNDED_SECONDS
    return max(time_left / max(waiting, 1), MIN_SECONDS)


@dataclass
class Share:
    """What one repository may still spend; `github` and `ask` are the two meters."""

    repo: str
    github_requests: int
    registry_questions: int
    clock: Callable[[], float] = time.monotonic
    requests: int = 0  # GitHub requests sent for it
    questions: int = 0  # registry questions newly asked for it
    step: str = ""
    seconds: float = 0.0
    until: float | None = None  # by `clock`; None between steps

    def start(self, step: str, seconds: float) -> None:
        """A step begins: it may take `seconds` from now."""
        self.step, self.seconds, self.until = step, seconds, self.clock() + seconds

    def stop(self) -> None:
        self.until = None

    def left(self) -> float | None:
        """Seconds left in the current step (None: no step under way)."""
        return None if self.until is None else self.until - self.clock()

    def check(self, doing: str) -> None:
        """ShareSpentError once the current step has had its time."""
        left = self.left()
        if left is not None and left <= 0:
            raise ShareSpentError(
                f"{self.step} took its whole share of the run ({self.seconds:.0f} s; "
                f"`per_repository.max_duration` in the org config) and stopped while {doing}; "
                "the other repositories still ran, this one is left for the next run")

    def github(self, doing: str) -> None:
        """Before each GitHub request sent for this repository (retries too: each counts
        against the rate limit)."""
        self.check(doing)
        if self.requests >= self.github_requests:
            raise ShareSpentError(
                f"used its share of GitHub requests ({self.github_requests}; "
                f"`per_repository.github_requests` in the org config) and stopped before {doing}; "
                "the other repositories keep the rest of the rate limit")
        self.requests += 1

    def wait(self, seconds: float, doing: str) -> None:
        """Before GitHub's rate limit is sat out: refused at once when the wait would outlast
        the step (sleeping first would only spend the time the others need)."""
        left = self.left()
        if left is not None and seconds >= left:
            raise ShareSpentError(
                f"{self.step}: GitHub asked to wait {seconds:.0f} s (a rate limit) while {doing}, "
                f"past the end of its share of the run ({self.seconds:.0f} s; "
                "`per_repository.max_duration` in the org config); left for the next run")

    def ask(self, count: int, what: str) -> None:
        """Before `count` registry questions are newly asked for this repository."""
        self.check(f"asking {what}")
        if self.questions + count > self.registry_questions:
            raise ShareSpentError(
                f"needs {self.questions + count} registry questions of its own ({what}), more than "
                f"its share ({self.registry_questions}; `per_repository.registry_questions` in the "
                "org config); the other repositories keep the registries' rate limits")
        self.questions += count


@contextmanager
def metered(api: Any, share: Share, step: str, seconds: float) -> Iterator[Share]:
    """Within: `share`'s step runs, and every request through `api` (the organisation's one
    GitHub client) is counted against it. The meter is removed on the way out, whatever happens."""
    share.start(step, seconds)
    before = getattr(api, "meter", None)
    api.meter = share
    try:
        yield share
    finally:
        api.meter = before
        share.stop()
