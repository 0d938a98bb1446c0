"""References assembled from parts: a Dockerfile's `FROM rust:${VARIANT}` with `ARG
VARIANT=1.79-slim`, a compose file's `image: ${IMAGE:-nginx:1.25}`.

When every variable has its default written in the file, the reference is known. Only the
tag and digest ever change, and they must be written in one place (one literal, or one
variable's default) for an update to be one splice there; otherwise the true reason is said.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagsync.errors import InvalidReferenceError
from tagsync.reference import Reference


@dataclass(frozen=True)
class Piece:
    """What one part of the text expands to: a literal, or a variable's default; `at` is where
    that text is written (an offset in the file, or in the scalar)."""

    text: str
    at: int
    var: str | None = None


@dataclass(frozen=True)
class Tail:
    """Where the `tag[@digest]` of an assembled reference is written."""

    ref: Reference
    piece: Piece
    start: int  # offsets of the tail in the piece's text
    end: int


def locate_tail(pieces: list[Piece]) -> Tail | str:
    """The reference the pieces expand to, and the one piece holding its tag and digest; or
    why it cannot be followed."""
    expanded = "".join(p.text for p in pieces)
    try:
        ref = Reference.parse(expanded)
    except InvalidReferenceError as exc:
        return f"{expanded!r} (defaults filled in) is not an image reference: {exc.message}"
    start = len(ref.name) + (1 if ref.tag is not None else 0)
    if start >= len(expanded):
        return f"no tag written in {expanded!r} (defaults filled in): nothing to follow"
    offset = 0
    for piece in pieces:
        end = offset + len(piece.text)
        if offset <= start < end:
            if end == len(expanded):
                return Tail(ref, piece, start - offset, len(piece.text))
            break
        offset = end
    names = ", ".join(sorted({p.var for p in pieces if p.var}))
    return (f"the tag of {expanded!r} is assembled from several parts (defaults of {names} and "
            "text): no one place to update")
