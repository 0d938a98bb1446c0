"""How far a run is, for the person waiting on it: a bar at a terminal, lines in a log.

A run reports `(phase, done, total)` for each phase it goes through: `tags` (a tag list per
repository, for policies that choose tags, with creation times where they need them), `scan` (a
digest per tag), `verify` (a signature per digest), `ages` (a creation time per image),
`explain` (labels per change) and `publish` (the commit). The CLI picks a reporter; the library never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EVERY = 5.0  # seconds between two lines of a phase, and before the first
UNITS = {"tags": "repositories", "scan": "tags", "verify": "digests", "ages": "images", "explain": "changes",
         "publish": "commit"}


class PhaseLines:
    """Without a terminal (CI logs, a redirect): a run that lasts beyond `every` seconds says
    where it is, one line per phase at most every `every` seconds, and the line that ends a
    phase (the phases that ended before it spoke first, then). A quick run says nothing."""

    def __init__(self, write: Callable[[str], None], every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write, self.every, self.clock = write, EVERY if every is None else every, clock
        self.start = clock()
        self.last: dict[str, float] = {}  # phase -> when its last line was written
        self.ended: set[str] = set()
        self.unsaid: list[tuple[str, int, int, float]] = []  # phases that ended while quiet

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self.clock()
        if phase in self.ended:
            return
        ending = done >= total
        if now - self.start < self.every:
            if ending:
                self.ended.add(phase)
                self.unsaid.append((phase, done, total, now))
            return
        for said in self.unsaid:  # the run turned out slow: its first phases, in order
            self._line(*said, ending=True)
        self.unsaid.clear()
        last = self.last.get(phase)
        if not ending and last is not None and now - last < self.every:
            return
        if ending:
            self.ended.add(phase)
        self.last[phase] = now
        self._line(phase, done, total, now, ending)

    def _line(self, phase: str, done: int, total: int, when: float, ending: bool) -> None:
        unit = UNITS.get(phase, "")
        self.write(f"tagsync: {phase} {done}/{total} {unit}".rstrip()
                   + f"{' done' if ending else ''} ({when - self.start:.0f}s)\n")


def bar() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """At a terminal: one bar per phase on stderr, gone when the run ends."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    shown = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), transient=True, console=Console(stderr=True))
    tasks: dict[str, object] = {}
    shown.start()

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = shown.add_task(f"{phase:<8} {UNITS.get(phase, ''):<8}", total=total)
        shown.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

    return update, shown.stop
