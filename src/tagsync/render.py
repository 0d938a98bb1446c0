"""Edit text: the new bytes of every file a plan touches, each file whole or not at all.

The edit engine refuses an edit it cannot make right (the read-back of `catalog.readback`, a
value it will not write, two edits of one value): that is one file's trouble, not the run's.
Such a file is left as it was, whole (never a partial file: its other edits may depend on the
refused one, a tag on its digest), each of its changes becomes a failure that names the file,
line, column and reason, and the other files are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tagsync.catalog.edit import Catalog
from tagsync.catalog.text import SpliceAt
from tagsync.errors import CatalogError
from tagsync.find import Source
from tagsync.gate import group_of
from tagsync.plan import Change, Failure, Plan

# Edits of a refused file tried one reference at a time to find the one refused on its own:
# each try reads the whole file back (a 2 MB catalog: ~0.3 s), so a file with more references
# is judged as a whole (each failure still names the refusal's line, column and reason).
MAX_TRIES = 16


def render_files(catalogs: Mapping[str, Source], plan: Plan) -> tuple[Plan, dict[str, bytes]]:
    """The plan as it can be written, and new bytes for every file it touches. The changes of
    a file the engine refuses leave the plan for its failures; nothing here is written."""
    files: dict[str, bytes] = {}
    refused: list[Failure] = []
    for file, changes in plan.by_file().items():
        try:
            files[file] = render_one(catalogs[file], changes)
        except CatalogError as exc:
            refused += refusals(catalogs[file], file, changes, exc)
    if not refused:
        return plan, files
    failures = sorted([*plan.failures, *refused], key=lambda f: (f.file, f.line))
    return replace(plan, changes=[c for c in plan.changes if c.file in files],
                   failures=failures), files


def render_one(source: Source, changes: list[Change]) -> bytes:
    """One file's new bytes with all of its changes, or the engine's refusal (CatalogError)."""
    edits = [c.edit() for c in changes]
    if isinstance(source, Catalog):
        text = source.apply(e for e in edits if not isinstance(e, SpliceAt))
    else:
        text = source.apply(e for e in edits if isinstance(e, SpliceAt))
    return source.render(text)


def refusals(source: Source, file: str, changes: list[Change],
             exc: CatalogError) -> list[Failure]:
    """A failure per reference of a refused file: the reference refused on its own says its
    own reason; the others say which refusal kept the file as it was. When no reference is
    refused alone (two edits of one value), each says the file's refusal."""
    groups: dict[str, list[Change]] = {}
    for c in changes:
        groups.setdefault(group_of(c), []).append(c)
    own: dict[str, CatalogError] = {}
    tried = 1 < len(groups) <= MAX_TRIES
    if tried:
        for key, group in groups.items():
            try:
                render_one(source, group)
            except CatalogError as alone:
                own[key] = alone
    elif len(groups) == 1:
        own = {next(iter(groups)): exc}
    first = next(iter(own.values()), None)
    out: list[Failure] = []
    for key, group in groups.items():
        why = own.get(key)
        if why is not None:
            text = f"not written, the edit was refused: {why.message}; {file} is left as it was"
        elif first is not None:
            text = (f"not written: {file} is left as it was, whole, because another edit in it "
                    f"was refused ({_where(first, file)}: {first.message})")
        elif tried:  # each alone is fine: together they are not (two edits of one value)
            text = (f"not written, the edits of {file} were refused together: {exc.message}; "
                    f"{file} is left as it was")
        else:
            text = (f"not written: {file} is left as it was, whole, because an edit in it was "
                    f"refused ({_where(exc, file)}: {exc.message})")
        out.append(_failure(group, text, why if why is not None else
                            exc if first is None and tried else None))
    return out


def _failure(group: list[Change], text: str, exc: CatalogError | None = None) -> Failure:
    first = group[0]
    written = [c for c in group if c.digest]
    tag = written[0].tag if written else first.tag
    line = exc.line if exc is not None and exc.line is not None else first.line
    column = exc.column if exc is not None and exc.line is not None else None
    return Failure(first.catalog, first.file, line, first.image, tag, text, column)


def _where(exc: CatalogError, file: str) -> str:
    return ":".join(str(p) for p in (file, exc.line, exc.column) if p is not None)


def unified_diff(catalogs: Mapping[str, Source], files: Mapping[str, bytes]) -> str:
    """What a dry run would write, as `git diff` shows it (~150 ms for a 30,000-line catalog:
    only dry runs pay for it)."""
    import difflib

    chunks: list[str] = []
    for file, new in sorted(files.items()):
        old = catalogs[file].render(catalogs[file].text)
        chunks.extend(difflib.unified_diff(
            old.decode().splitlines(keepends=True), new.decode().splitlines(keepends=True),
            fromfile=f"a/{file}", tofile=f"b/{file}",
        ))
    return "".join(chunks)
