"""Files that are not YAML (Dockerfiles): edited the same way, by splicing at known offsets.

Knows nothing of images: a finder records where a value starts and ends, and an edit replaces
exactly those characters after checking they still read as what the finder saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tagsync.catalog.document import decode, encode
from tagsync.errors import EditConflictError


@dataclass(frozen=True)
class SpliceAt:
    """Replace `old`, found at [start, end) of the decoded text, with `value`."""

    start: int
    end: int
    old: str
    value: str


class TextFile:
    """A UTF-8 text file (BOM and line endings kept) and offset edits on it."""

    def __init__(self, data: bytes, file: str | None = None) -> None:
        self.file = file
        self.text, self.had_bom = decode(data, file)

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def apply(self, edits: Iterable[SpliceAt]) -> str:
        """The new text with every edit applied, or an error and no partial result."""
        ordered: dict[int, SpliceAt] = {}
        for edit in edits:
            if self.text[edit.start:edit.end] != edit.old:
                raise EditConflictError(
                    f"expected {edit.old!r} at line {self.line_of(edit.start)}; the file changed",
                    file=self.file, line=self.line_of(edit.start))
            other = ordered.get(edit.start)
            if other is not None and other != edit:
                raise EditConflictError(
                    f"line {self.line_of(edit.start)} is edited twice with different values "
                    f"({other.value!r} and {edit.value!r})", file=self.file)
            ordered[edit.start] = edit
        pieces: list[str] = []
        pos = 0
        for edit in sorted(ordered.values(), key=lambda e: e.start):
            if edit.start < pos:
                raise EditConflictError("overlapping edits", file=self.file,
                                        line=self.line_of(edit.start))
            pieces += [self.text[pos:edit.start], edit.value]
            pos = edit.end
        pieces.append(self.text[pos:])
        return "".join(pieces)

    def render(self, text: str) -> bytes:
        return encode(text, self.had_bom)
