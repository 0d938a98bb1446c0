"""Find the image references a catalog config describes: one `Slot` per (image, tag, digest).

Pure: a parsed file and a config in, slots and notes out. Entries tagsync must leave alone
(placeholders, pointers to another tag, values shared through anchors) become notes that say
why, so the report can show them instead of silently skipping.
"""

from __future__ import annotations

import re

from tagsync.catalog.document import Alias, Located, Mapping, Node, Scalar, Sequence, locate
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import WILDCARD, Path, format_path, parse_path
from tagsync.config import TEMPLATE_FIELD, CatalogConfig
from tagsync.errors import CatalogError, InvalidReferenceError
from tagsync.find.common import foreign_tag
from tagsync.find.model import Discovery, Growth, Note, References, Slot
from tagsync.policy import Kind, Policy
from tagsync.reference import ImageName


def repository_pattern(image_template: str) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    """`lablup/kernel-{name}` → (registry, namespace, regex, fields) for namespace discovery."""
    sample = ImageName.parse(TEMPLATE_FIELD.sub("x", image_template))
    registry = sample.registry
    text = image_template
    first = text.split("/", 1)[0]
    if "/" in text and ("." in first or ":" in first or first == "localhost"):
        text = text.split("/", 1)[1]
    if registry == "docker.io" and "/" not in text:
        text = "library/" + text
    parts: list[str] = []
    fields: list[tuple[str, str]] = []
    pos = 0
    for i, m in enumerate(TEMPLATE_FIELD.finditer(text)):
        parts.append(re.escape(text[pos:m.start()]))
        parts.append(f"(?P<f{i}>[^/]+)")
        fields.append((f"f{i}", m.group(1)))
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    literal = text.split("{", 1)[0]
    namespace = literal.rsplit("/", 1)[0] if "/" in literal else ""
    return registry, namespace, "^" + "".join(parts) + "$", tuple(fields)




def _expand(doc_root: Node | None, pattern: Path) -> list[tuple[Path, Node]]:
    """All concrete paths matching a pattern with [*] wildcards, in document order."""
    results: list[tuple[Path, Node]] = [((), doc_root)] if doc_root is not None else []
    for seg in pattern:
        nxt: list[tuple[Path, Node]] = []
        for path, node in results:
            target = node.target if isinstance(node, Alias) and node.target is not None else node
            if seg is WILDCARD:
                if isinstance(target, Sequence):
                    nxt.extend(((*path, i), item) for i, item in enumerate(target.items))
                elif isinstance(target, Mapping):
                    nxt.extend(((*path, k.value), v) for k, v in target.pairs
                               if isinstance(k, Scalar) and k.value != "<<")
            elif isinstance(seg, int) and isinstance(target, Sequence) and seg < len(target.items):
                nxt.append(((*path, seg), target.items[seg]))
            elif isinstance(seg, str) and isinstance(target, Mapping):
                nxt.extend(((*path, seg), v) for k, v in target.pairs
                           if isinstance(k, Scalar) and k.value == seg)
        results = nxt
    return results


def _located(catalog: Catalog, doc: int, path: Path) -> Located | None:
    try:
        return locate(catalog.document(doc), path, catalog.file)
    except CatalogError:
        return None


def _scalar(catalog: Catalog, doc: int, path: Path) -> Scalar | None:
    found = _located(catalog, doc, path)
    return found.node if found is not None and isinstance(found.node, Scalar) else None


def _image_name(cfg: CatalogConfig, catalog: Catalog, entry: Path) -> str:
    assert cfg.image is not None
    def field(name: str) -> str:
        node = _scalar(catalog, cfg.doc, entry + parse_path(name))
        if node is None:
            raise CatalogError(
                f"entry {format_path(entry)} has no value {name!r} for the image template "
                f"{cfg.image!r}", file=catalog.file,
            )
        return node.value

    return TEMPLATE_FIELD.sub(lambda m: field(m.group(1)), cfg.image)


def find_slots(cfg: CatalogConfig, catalog: Catalog) -> tuple[list[Slot], list[Note]]:
    """Every digest reference the config describes in this file."""
    refs = find_references(cfg, catalog)
    return refs.slots, refs.notes




def find_references(cfg: CatalogConfig, catalog: Catalog) -> References:
    """Slots to follow, entries left alone (and why), lists that may grow."""
    assert cfg.image is not None  # the config requires it for `kind: paths`
    refs = References()
    file = catalog.file or cfg.file or ""
    slots, notes, growths = refs.slots, refs.notes, refs.growths
    repositories: set[str] = set()
    root = catalog.document(cfg.doc).root
    entries = _expand(root, parse_path(cfg.entries))
    if not entries:
        raise CatalogError(f"`entries: {cfg.entries}` matches nothing", file=file)

    no_name: list[int] = []  # lines of entries missing an image template field
    no_path: list[int] = []  # lines of entries where `tag:` / `pairs:` matches nothing
    for entry_path, entry_node in entries:
        try:
            name = _image_name(cfg, catalog, entry_path)
        except CatalogError:
            no_name.append(entry_node.line)
            continue
        try:
            image = ImageName.parse(name)
        except InvalidReferenceError as exc:
            notes.append(Note(cfg.name, file, entry_node.line, "?", "", exc.message,
                              cfg.doc, format_path(entry_path), name))
            continue
        repositories.add(image.repository)
        policy = cfg.policy_for(str(image))
        if cfg.tag is not None:
            slot_or_note = _tag_slot(cfg, catalog, file, entry_path, image, policy)
            if isinstance(slot_or_note, Slot):
                slots.append(slot_or_note)
            elif slot_or_note is not None:
                notes.append(slot_or_note)
            else:
                no_path.append(entry_node.line)
            continue
        pairs = _pairs(cfg, catalog, entry_path)
        if not pairs:
            no_path.append(entry_node.line)
        if cfg.new_tags:
            growth = _growth(cfg, catalog, file, entry_path, image, policy, pairs)
            if growth is not None:
                growths.append(growth)
        for tag_path, digest_path in pairs:
            tag_node = _scalar(catalog, cfg.doc, tag_path)
            found = _located(catalog, cfg.doc, digest_path)
            if tag_node is None or found is None or not isinstance(found.node, Scalar):
                continue
            digest_node = found.node
            tag, current = tag_node.value, digest_node.value
            reason = _leave_alone(cfg, tag, current) or foreign_tag(digest_node)
            if reason is None and found.shared_by is not None:
                reason = (f"value is shared through anchor &{found.shared_by.name} "
                          f"(line {found.shared_by.line}); edit the anchor's entry")
            if reason is not None:
                notes.append(Note(cfg.name, file, digest_node.line, str(image), tag, reason,
                                  digest=current))
                continue
            # a pair's tag never moves, but its new digest waits for `min_age` like any other
            slots.append(Slot(cfg.name, file, cfg.doc, digest_path, digest_node.line, image, tag,
                              current, cfg.digest_format, cfg.platform,
                              policy=Policy(min_age=policy.min_age)))
    what = f"`tag: {cfg.tag}`" + (f" / `digest: {cfg.digest}`" if cfg.digest else "") \
        if cfg.tag is not None else f"`pairs: {cfg.pairs}`"
    for lines, problem in ((no_name, f"lack a field of the image template {cfg.image!r}"),
                           (no_path, f"have nothing at {what}")):
        if lines:
            shown = ", ".join(str(n) for n in lines[:5]) + (" …" if len(lines) > 5 else "")
            refs.warnings.append(f"catalog {cfg.name}: {len(lines)} of {len(entries)} entries in "
                                 f"{file} {problem} (lines {shown})")
    if cfg.new_images is not None:
        list_path = parse_path(cfg.entries)[:-1]
        found = _located(catalog, cfg.doc, list_path)
        registry, namespace, pattern, fields = repository_pattern(cfg.image)
        refs.discoveries.append(Discovery(
            cfg.name, file, cfg.doc, list_path, found.node.line if found else 1, registry,
            namespace, pattern, fields, frozenset(repositories), cfg.new_images.template,
            cfg.new_images.tag, tuple(cfg.new_images.exclude), cfg.policy.to_policy(),
            cfg.digest_format, cfg.platform))
    return refs


def _tag_slot(cfg: CatalogConfig, catalog: Catalog, file: str, entry: Path, image: ImageName,
              policy: Policy) -> Slot | Note | None:
    """The `tag` (+ `digest`) shape: one slot per entry; a moving policy may rewrite the tag."""
    assert cfg.tag is not None
    tag_path = entry + parse_path(cfg.tag)
    tag_found = _located(catalog, cfg.doc, tag_path)
    if tag_found is None or not isinstance(tag_found.node, Scalar):
        return None
    tag_node = tag_found.node
    tag = tag_node.value
    policy = policy.anchored(tag)
    moves = policy.kind is not Kind.same
    if moves and foreign_tag(tag_node) is not None:
        return Note(cfg.name, file, tag_node.line, str(image), tag, str(foreign_tag(tag_node)))
    if moves and tag_found.shared_by is not None:
        return Note(cfg.name, file, tag_node.line, str(image), tag,
                    f"tag is shared through anchor &{tag_found.shared_by.name} "
                    f"(line {tag_found.shared_by.line}); the policy cannot move it here")
    digest_path = entry + parse_path(cfg.digest) if cfg.digest is not None else None
    current, line = "", tag_node.line
    if digest_path is not None:
        found = _located(catalog, cfg.doc, digest_path)
        if found is None or not isinstance(found.node, Scalar):
            return None
        current, line = found.node.value, found.node.line
        reason = _leave_alone(cfg, tag, current) or foreign_tag(found.node)
        if reason is None and found.shared_by is not None:
            reason = (f"value is shared through anchor &{found.shared_by.name} "
                      f"(line {found.shared_by.line}); edit the anchor's entry")
        if reason is not None:
            return Note(cfg.name, file, line, str(image), tag, reason, digest=current)
    return Slot(cfg.name, file, cfg.doc, digest_path, line, image, tag, current,
                cfg.digest_format, cfg.platform,
                tag_path if moves else None, tag_node.line, policy)


def _growth(cfg: CatalogConfig, catalog: Catalog, file: str, entry: Path, image: ImageName,
            policy: Policy, pairs: list[tuple[Path, Path]]) -> Growth | None:
    assert cfg.pairs is not None
    list_path = entry + parse_path(cfg.pairs)
    found = _located(catalog, cfg.doc, list_path)
    if found is None or not isinstance(found.node, Sequence) or found.shared_by is not None:
        return None
    known = tuple(n.value for p, _ in pairs if (n := _scalar(catalog, cfg.doc, p)) is not None)
    return Growth(cfg.name, file, cfg.doc, list_path, found.node.line, image, known, policy,
                  cfg.digest_format, cfg.platform)


def _pairs(cfg: CatalogConfig, catalog: Catalog, entry: Path) -> list[tuple[Path, Path]]:
    if cfg.pairs is not None:
        list_path = entry + parse_path(cfg.pairs)
        try:
            node = locate(catalog.document(cfg.doc), list_path, catalog.file).node
        except CatalogError:
            return []
        if not isinstance(node, Sequence):
            return []
        out = []
        for i, item in enumerate(node.items):
            pair = item.target if isinstance(item, Alias) else item  # reported as shared later
            if isinstance(pair, Sequence) and len(pair.items) >= 2:
                out.append(((*list_path, i, 0), (*list_path, i, 1)))
        return out
    assert cfg.tag is not None and cfg.digest is not None
    return [(entry + parse_path(cfg.tag), entry + parse_path(cfg.digest))]


def _leave_alone(cfg: CatalogConfig, tag: str, current: str) -> str | None:
    if cfg.pointer_prefix and current.startswith(cfg.pointer_prefix):
        return f"points at another tag ({current})"
    if current in cfg.placeholders and not cfg.update_placeholders:
        return f"placeholder digest {current!r} (set update_placeholders to fill it)"
    return None
