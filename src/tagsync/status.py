"""`tagsync status`: every tracked image at a glance, like a dependency dashboard.

One row per reference: where it is written, what it holds now, what its policy would choose,
how far behind it is (versions the policy ranks above it, and the age of the current and the
candidate image), and why an entry is left alone or failed. It asks the registries what
`run --dry-run` asks, plus the creation time of the current and candidate images, and writes
nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tagsync.config import Config
from tagsync.errors import TagsyncError
from tagsync.find.model import Slot
from tagsync.gate import CREATED, REKOR
from tagsync.patterns import blame
from tagsync.plan import Plan, choose_tags, slot_changes, want_of
from tagsync.publish import Publisher
from tagsync.reference import ImageName, short
from tagsync.registry import TagQuery
from tagsync.registry.base import created_at

if TYPE_CHECKING:
    from tagsync.run import Read, _Known


@dataclass
class Row:
    file: str
    line: int
    image: str
    tag: str
    digest: str | None
    policy: str
    candidate: str | None  # the tag the policy chooses now
    candidate_digest: str | None
    behind: int | None  # versions the policy ranks above the current tag (None: not listed)
    state: str  # up to date | behind | waiting | left alone | failed
    reason: str | None
    created: datetime | None = None  # the current image
    candidate_created: datetime | None = None
    clock: str | None = None  # whose clock dates the candidate (what `min_age` goes by)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("created", "candidate_created"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def status(config: Config, publisher: Publisher | None = None, ages: bool = True) -> list[Row]:
    """The rows, in file order; nothing is written."""
    from tagsync.run import _Known, make_publisher, survey

    publisher = publisher or make_publisher(config)
    known = _Known()
    rows: list[Row] = []

    async def then(found: Read, plan: Plan, sources: dict[str, Any]) -> None:
        rows.extend(_rows(found, plan, known))
        if ages:  # through the survey's clients: their tokens, rate-limit state and connections
            _gated(rows, known)
            await _ages(rows, sources)

    survey(config, publisher.snapshot(), known, then=then)
    return rows


def _rows(found: Read, plan: Plan, known: _Known) -> list[Row]:
    slots = sorted(found.refs.slots, key=lambda s: (s.file, s.doc, s.line))
    targets = choose_tags(slots, known.tags)
    failed = {(f.file, f.line): f.error for f in plan.failures}
    waiting = {(n.file, n.line): n.reason for n in plan.notes if n.reason.startswith("waiting: ")}
    rows: list[Row] = []
    for slot in slots:
        target = targets[slot]
        obs = known.digests.get(want_of(slot, target)) if target is not None else None
        digest = obs.value if obs is not None else None
        current = (slot.ref.digest if slot.ref is not None else slot.current) or None
        row = Row(slot.file, slot.line, str(slot.image), slot.tag, current, slot.policy.describe(),
                  target, digest, _behind(slot, known.tags), "up to date", None)
        error = failed.get((slot.file, slot.line))
        if error is not None or target is None:
            row.state, row.reason = "failed", error or "the registry could not say"
        elif (slot.file, slot.line) in waiting:
            row.state, row.reason = "waiting", waiting[(slot.file, slot.line)].removeprefix("waiting: ")
        elif slot_changes(slot, target, digest if slot.wants_digest else None):
            row.state = "behind"
        rows.append(row)
    for note in found.refs.notes:
        rows.append(Row(note.file, note.line, note.image, note.tag, None, "-", None, None, None,
                        "left alone", note.reason))
    rows.sort(key=lambda r: (r.file, r.line))
    return rows


def _behind(slot: Slot, tag_lists: dict[TagQuery, Any]) -> int | None:
    if not slot.moves:
        return None
    listing = tag_lists.get(TagQuery(slot.image, slot.policy.needs_times))
    if listing is None or listing.error is not None:
        return None
    with blame(str(slot.image), f"catalog {slot.catalog}"):
        return len(slot.policy.newer(listing.tags, (slot.tag,), listing.created))


def _gated(rows: list[Row], known: _Known) -> None:
    """The candidate's age as the gate judged it (`min_age`): the later of the registry's clock
    and a verified signature's transparency log time, and which of them it was."""
    from tagsync.gate import later

    logged = {(image, digest): c.logged_at for (_, image, digest), c in known.facts.verdicts.items()
              if c.ok and c.logged_at is not None}
    for row in rows:
        if not row.candidate or not row.candidate_digest:
            continue
        name = ImageName.parse(row.image)
        seen = known.facts.ages.get((name, row.candidate, row.candidate_digest))
        tlog = logged.get((name, row.candidate_digest))
        if seen is not None or tlog is not None:
            row.candidate_created, row.clock = later(seen, tlog)


async def _ages(rows: list[Row], sources: dict[str, Any]) -> None:
    """Creation times of the current and candidate images (one manifest and one config read
    each, cached per image and reference)."""
    tracked = [r for r in rows if r.state != "left alone"]
    cache: dict[tuple[str, str], asyncio.Task[datetime | None]] = {}

    async def when(image: str, reference: str | None) -> datetime | None:
        if not reference:
            return None
        name = ImageName.parse(image)
        source = sources.get(name.registry)
        if source is None:
            return None
        try:
            return await created_at(source, name, reference)
        except TagsyncError:
            return None

    def task(image: str, reference: str | None) -> asyncio.Task[datetime | None]:
        key = (image, reference or "")
        if key not in cache:
            cache[key] = asyncio.ensure_future(when(image, reference))
        return cache[key]

    pairs = [(r, task(r.image, r.digest or r.tag),
              task(r.image, r.candidate_digest or r.candidate) if r.clock is None else task(r.image, ""))
             for r in tracked]
    for row, current, candidate in pairs:
        row.created = await current
        if row.clock is None:
            row.candidate_created = await candidate
            row.clock = CREATED if row.candidate_created is not None else None


def age(when: datetime | None, now: datetime | None = None) -> str:
    """`3d`, `5h`, `12m` (how long ago), `future +2h` (a clock ahead of ours), or `-`."""
    if when is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    ahead = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"future +{seconds // size}{unit}" if ahead else f"{seconds // size}{unit}"
    return f"future +{seconds}s" if ahead else f"{seconds}s"


_SHORT_CLOCKS = {REKOR: "Rekor", CREATED: "created"}


def clock_name(clock: str | None) -> str:
    """A clock's short name for a table cell: `Rekor`, `created`, `ECR's push time`."""
    return _SHORT_CLOCKS.get(clock or "", clock or "")


COLUMNS = ("where", "image", "current", "policy", "candidate", "behind", "age", "state")


def cells(row: Row, now: datetime | None = None) -> list[str]:
    current = row.tag + (f"@{short(row.digest)}" if row.digest else "")
    candidate = (row.candidate or "-") + (f"@{short(row.candidate_digest)}"
                                          if row.candidate_digest else "")
    behind = "-" if row.behind is None else str(row.behind)
    ages = f"{age(row.created, now)} / {age(row.candidate_created, now)}"
    if row.candidate_created is not None and row.clock not in (None, CREATED):
        ages += f" by {clock_name(row.clock)}"
    state = row.state + (f": {row.reason}" if row.reason else "")
    return [f"{row.file}:{row.line}", row.image, current, row.policy, candidate, behind, ages, state]


SORTS = ("where", "image", "behind", "state", "age")
_STATE_ORDER = {"failed": 0, "behind": 1, "waiting": 2, "up to date": 3, "left alone": 4}


def select(rows: list[Row], behind_only: bool = False, sort: str = "where") -> list[Row]:
    """The rows to show: only those behind (`--behind`), in the order `--sort` asks for:
    where (file and line), image, behind (most versions behind first), state (failed first),
    age (oldest current image first)."""
    out = [r for r in rows if r.state == "behind"] if behind_only else list(rows)
    oldest = datetime.max.replace(tzinfo=UTC)
    keys: dict[str, Any] = {
        "where": lambda r: (r.file, r.line),
        "image": lambda r: (r.image, r.file, r.line),
        "behind": lambda r: (-(r.behind or 0), r.state != "behind", r.file, r.line),
        "state": lambda r: (_STATE_ORDER.get(r.state, 9), r.file, r.line),
        "age": lambda r: (r.created or oldest, r.file, r.line),
    }
    return sorted(out, key=keys[sort])


def markdown(rows: list[Row], now: datetime | None = None) -> str:
    """A table for a GitHub job summary or a PR comment."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(esc(c) for c in cells(r, now)) + " |" for r in rows]
    return "\n".join(out) + "\n"


def plain(rows: list[Row], now: datetime | None = None) -> str:
    """Aligned columns for a terminal or a log (no colour, no wrapping)."""
    table = [list(COLUMNS), *(cells(r, now) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)),
                                line[-1]]).rstrip() for line in table) + "\n"


# --- a table that fits the terminal -----------------------------------------------------------

MAX_LINES = 3  # no cell is taller: a reason longer than that is cut with an ellipsis
_GAP = 2  # spaces between columns
# the least a column is squeezed to, and whether it is dropped first on a narrow terminal
_MIN = {"where": 14, "image": 12, "current": 10, "policy": 8, "candidate": 10, "behind": 6,
        "age": 9, "state": 14}
_OPTIONAL = ("policy", "age")  # left out below this many columns (`--json` has them all)
_NARROW = 110


def _common_prefix(names: list[str]) -> str:
    """The folders every `/`-separated name shares (`deploy/`, `docker.io/team/`), shown once
    in the caption instead of per row."""
    parts = [n.split("/")[:-1] for n in names]
    if not parts:
        return ""
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common) + "/" if common else ""


def _common_dir(files: list[str]) -> str:
    """The folder every file is in (`deploy/`)."""
    return _common_prefix(files)


def _common_image_prefix(images: list[str]) -> str:
    """The registry and namespace every image shares (`docker.io/team/`)."""
    return _common_prefix(images)


def _clip(text: str, width: int, left: bool = False) -> str:
    """One line of at most `width`; cut with an ellipsis (at the start for paths and names,
    whose end says the most)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return "…" + text[-(width - 1):] if left else text[:width - 1] + "…"


def _wrap(text: str, width: int, lines: int = MAX_LINES) -> list[str]:
    """`text` wrapped to `width`, at most `lines` lines, the last cut with an ellipsis."""
    import textwrap

    out = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(out) > lines:
        out = [*out[:lines - 1], _clip(" ".join(out[lines - 1:]), width)]
    return out


def _short_cells(row: Row, now: datetime | None, file_prefix: str, image_prefix: str) -> dict[str, str]:
    def ref(tag: str | None, digest: str | None) -> str:
        return (tag or "-") + (f"@{short(digest, 7)}" if digest else "")

    image = row.image.removeprefix(image_prefix) if image_prefix else row.image
    image = image.removeprefix("docker.io/library/") if not image_prefix else image
    return {
        "where": f"{row.file.removeprefix(file_prefix)}:{row.line}",
        "image": image,
        "current": ref(row.tag, row.digest),
        "policy": row.policy,
        "candidate": ref(row.candidate, row.candidate_digest) if row.candidate else "-",
        "behind": "-" if row.behind is None else str(row.behind),
        "age": f"{age(row.created, now)}/{age(row.candidate_created, now)}",
        "state": row.state + (f": {row.reason}" if row.reason else ""),
    }


def _widths(columns: list[str], table: list[dict[str, str]], total: int) -> dict[str, int]:
    """Each column's width: what its widest cell needs; the state column (which wraps) takes
    what is left, and when even its least does not fit, the widest others are squeezed."""
    want = {c: max([len(c), *(len(r[c]) for r in table)]) for c in columns}
    room = total - _GAP * (len(columns) - 1)
    others = [c for c in columns if c != "state"]
    width = {c: want[c] for c in others}
    state_least = min(want["state"], _MIN["state"])
    while sum(width.values()) + state_least > room:
        squeezable = [c for c in others if width[c] > max(_MIN[c], len(c))]
        if not squeezable:
            break
        width[max(squeezable, key=lambda c: width[c])] -= 1
    width["state"] = max(state_least, min(want["state"], room - sum(width.values())))
    return width


def fit(rows: list[Row], columns_total: int, now: datetime | None = None
        ) -> tuple[list[str], list[list[list[str]]], str]:
    """The table for a terminal `columns_total` wide: column names, each row's cells as lines
    (no cell over MAX_LINES), and a caption naming what was left out of every row."""
    columns = [c for c in COLUMNS if columns_total >= _NARROW or c not in _OPTIONAL]
    file_prefix = _common_dir([r.file for r in rows]) if len(rows) > 1 else ""
    image_prefix = _common_image_prefix([r.image for r in rows]) if len(rows) > 1 else ""
    table = [_short_cells(r, now, file_prefix, image_prefix) for r in rows]
    width = _widths(columns, table, columns_total)
    out: list[list[list[str]]] = []
    for cells_of in table:
        line: list[list[str]] = []
        for c in columns:
            text = cells_of[c]
            if c == "state":
                line.append(_wrap(text, width[c]))
            else:
                line.append([_clip(text, width[c], left=c in ("where", "image"))])
        out.append(line)
    notes = [f"files under {file_prefix}" if file_prefix else "",
             f"images under {image_prefix}" if image_prefix else "",
             "policy and age: --json or a wider terminal" if len(columns) < len(COLUMNS) else ""]
    return [_clip(c, width[c]) for c in columns], out, "; ".join(n for n in notes if n)


def render_lines(rows: list[Row], columns_total: int, now: datetime | None = None
                 ) -> list[tuple[str, str | None]]:
    """`fit` as lines of text, each with the state of the row it belongs to (None: header,
    caption): aligned columns, a state's reason wrapped under it."""
    head, body, caption = fit(rows, columns_total, now)
    widths = [max([len(h), *(len(line) for r in body for line in r[i])]) for i, h in enumerate(head)]
    header = (" " * _GAP).join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()
    out: list[tuple[str, str | None]] = [(header, None)]
    for row, cells_of in zip(rows, body, strict=True):
        for k in range(max(len(cell) for cell in cells_of)):
            text = (" " * _GAP).join((cell[k] if k < len(cell) else "").ljust(w)
                                     for cell, w in zip(cells_of, widths, strict=True))
            out.append((text.rstrip(), row.state))
    if caption:
        import textwrap

        out += [(line, None) for line in textwrap.wrap(f"({caption})", columns_total)]
    return out


def render(rows: list[Row], columns_total: int, now: datetime | None = None) -> str:
    """The table for a terminal `columns_total` wide, as text."""
    return "".join(f"{line}\n" for line, _ in render_lines(rows, columns_total, now))
