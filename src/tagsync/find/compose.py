"""docker-compose: `services.*.image`, `build.cache_from`, and `image` keys in `x-*` extensions.

A service with `build:` names the image compose builds, not one it pulls: left alone.
`${VAR:-default}` (and `${VAR-default}`) is filled in with its default when VAR is unset: the
default is the reference (or its tag), followed and rewritten in place.
"""

from __future__ import annotations

import re

from tagsync.catalog.document import Node, Scalar, Sequence
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path
from tagsync.config import CatalogConfig
from tagsync.find.common import Finder, foreign_tag, get, keys, walk
from tagsync.find.model import References
from tagsync.find.substitute import Piece, locate_tail

_DEFAULTED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-)([^}$]*)\}")


def find(cfg: CatalogConfig, catalog: Catalog) -> References:
    f = Finder(cfg, catalog, "compose")
    for doc, document in enumerate(catalog.documents):
        root = document.root
        for name, service in keys(get(root, "services")).items():
            image = get(service, "image")
            path = ("services", name, "image")
            if image is not None and get(service, "build") is not None:
                f.note(doc, path, image, "the name of the image compose builds (build:)")
            elif image is not None:
                image_at(f, doc, path, image)
            cache_from = get(get(service, "build"), "cache_from")
            if isinstance(cache_from, Sequence):
                for i, item in enumerate(cache_from.items):
                    f.note(doc, ("services", name, "build", "cache_from", i), item,
                           "a build cache source, not an image the service runs")
        for key, value in keys(root).items():
            if not key.startswith("x-"):
                continue
            for at, node in walk(value, (key,)):
                if at[-1] == "image" and isinstance(node, Scalar):
                    image_at(f, doc, at, node)
    return f.references()


def image_at(f: Finder, doc: int, path: Path, node: Node) -> None:
    """An `image:` value: a whole reference, or one assembled from `${VAR:-default}`s."""
    pieces = _pieces(node)
    if pieces is None:
        f.whole(doc, path, node)
        return
    assert isinstance(node, Scalar)
    tail = locate_tail(pieces)
    if isinstance(tail, str):
        f.note(doc, path, node, tail)
        return
    text = node.value
    begin, end = tail.piece.at + tail.start, tail.piece.at + tail.end
    f.follow(doc, path, node, tail.ref, text, prefix=text[:begin], suffix=text[end:], bare=True)


def _pieces(node: Node) -> list[Piece] | None:
    """The parts of a value whose every substitution has a default; None for anything else
    (a plain reference, or a value templated in a way the file does not settle)."""
    if not isinstance(node, Scalar) or "${" not in node.value or node.style in ("|", ">"):
        return None
    if foreign_tag(node) is not None:
        return None
    text = node.value
    pieces: list[Piece] = []
    at = 0
    for m in _DEFAULTED.finditer(text):
        if m.start() > at:
            pieces.append(Piece(text[at:m.start()], at))
        pieces.append(Piece(m.group(2), m.start(2), m.group(1)))
        at = m.end()
    if at < len(text):
        pieces.append(Piece(text[at:], at))
    if not any(p.var for p in pieces) or any("$" in p.text for p in pieces if p.var is None):
        return None
    return pieces
