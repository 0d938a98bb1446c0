"""What the YAML finders share: walking a document, and turning one scalar into a slot or a note.

A finder says *where* references are in its shape; whether a value can be followed (templated,
empty, shared through an anchor, not an image name, nothing to follow under the policy) is
decided here once, with the same words for every shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tagsync.catalog.document import Alias, Mapping, Node, Scalar, Sequence, locate
from tagsync.catalog.edit import Catalog
from tagsync.catalog.path import Path, format_path
from tagsync.config import CatalogConfig, DigestFormat
from tagsync.errors import CatalogError, InvalidReferenceError
from tagsync.find.model import Note, References, Slot
from tagsync.policy import Kind, Policy
from tagsync.reference import (
    ImageName,
    Reference,
    is_tag,
    templated,
    validate_digest,
    validate_tag,
)

NULLS = ("", "~", "null", "Null", "NULL")


_STR_TAGS = (None, "!", "tag:yaml.org,2002:str")


def foreign_tag(node: Node | None) -> str | None:
    """Why a scalar cannot be written (a tag other than a string's: `!custom`, `!!binary`)."""
    if isinstance(node, Scalar) and node.tag not in _STR_TAGS:
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        return f"the value carries the tag {tag}; tagsync writes only strings"
    return None


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, Scalar) and node.style == "" and node.value in NULLS)


def walk(node: Node | None, path: Path = ()) -> Iterator[tuple[Path, Node]]:
    """Every node with its path, in document order. Aliases are not followed (the anchored
    value is visited where it is defined) and merge keys are skipped."""
    if node is None or isinstance(node, Alias):
        return
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.pairs:
            if isinstance(key, Scalar) and key.value != "<<":
                yield from walk(value, (*path, key.value))
    elif isinstance(node, Sequence):
        for i, item in enumerate(node.items):
            yield from walk(item, (*path, i))


def get(node: Node | None, key: str) -> Node | None:
    """A mapping's value for `key` (None if absent or not a mapping)."""
    if isinstance(node, Mapping):
        for k, v in node.pairs:
            if isinstance(k, Scalar) and k.value == key:
                return v
    return None


def keys(node: Node | None) -> dict[str, Node]:
    if not isinstance(node, Mapping):
        return {}
    return {k.value: v for k, v in node.pairs if isinstance(k, Scalar) and k.value != "<<"}


def scalar(node: Node | None) -> Scalar | None:
    return node if isinstance(node, Scalar) else None


def _tag_only(policy: Policy, tag: str) -> str:
    """Why a tag without a digest has nothing to follow under `same`."""
    if policy.within:
        return (f"tag {tag} is no version, so `within: {policy.within}` keeps it; "
                "set pin_digests: true to follow its digest")
    return ("tag only: with policy `same` there is nothing to update "
            "(choose a policy, or set pin_digests: true)")


@dataclass(frozen=True)
class Field:
    """One part of a split reference: where it is, what is written there, and its name in
    messages (`tag`, `newTag`, `parameters[3]`)."""

    path: Path
    node: Node | None
    name: str


def parts(text: str) -> tuple[str, str, str]:
    """(image, tag, digest) of a whole reference as written, for reports; ("?", "", "") when
    it does not parse (templated, not a reference)."""
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError:
        return "?", "", ""
    return str(ref.image), ref.tag or "", ref.digest or ""


class Finder:
    """One file of one catalog: the helpers a shape needs to emit slots and notes."""

    def __init__(self, cfg: CatalogConfig, catalog: Catalog | None, shape: str,
                 file: str | None = None) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.file = file or (catalog.file if catalog is not None else None) or ""
        self.shape = shape
        self.slots: list[Slot] = []
        self.notes: list[Note] = []
        self.ignored: list[Note] = []
        self.warnings: list[str] = []

    def references(self) -> References:
        return References(self.slots, self.notes, ignored=self.ignored, warnings=self.warnings)

    def note(self, doc: int, path: Path | None, node: Node, reason: str, image: str = "?",
             tag: str = "", value: str | None = None, digest: str = "") -> None:
        written = value if value is not None else node.value if isinstance(node, Scalar) else ""
        if image == "?" and written:  # a whole reference: its parts, when it parses
            image, tag, digest = parts(written)
        self.notes.append(Note(self.cfg.name, self.file, node.line, image, tag, reason, doc,
                               format_path(path) if path is not None else None, written, self.shape,
                               digest))

    def shared(self, doc: int, path: Path) -> str | None:
        """Why a value must not be edited in place (an anchor shares it), or None."""
        if self.catalog is None:
            return None
        try:
            found = locate(self.catalog.document(doc), path, self.file)
        except CatalogError as exc:
            return exc.message
        if found.shared_by is not None:
            return (f"value is shared through anchor &{found.shared_by.name} "
                    f"(line {found.shared_by.line}); edit the anchor's entry")
        return None

    def policy(self, image: ImageName, override: Policy | None = None) -> Policy:
        return override if override is not None else self.cfg.policy_for(str(image))

    def whole(self, doc: int, path: Path | None, node: Node, prefix: str = "",
              policy: Policy | None = None, span: tuple[int, int] | None = None,
              follows: str | None = None) -> None:
        """A scalar holding `[registry/]repository[:tag][@digest]` (after `prefix`); outside
        YAML, `node` is a stand-in scalar and `span` its offsets in the text. `follows`: the
        image a marker names; when it is another image than the written one, it is the image
        followed and the name written on the next update."""
        if isinstance(node, Alias):
            target = node.target
            self.note(doc, path, node, f"value is shared through anchor &{node.name}"
                      + (f" (line {target.line})" if target is not None else "")
                      + "; edit the anchor's entry",
                      value=target.value if isinstance(target, Scalar) else "")
            return
        if not isinstance(node, Scalar):
            self.note(doc, path, node, "not a single value", value="")
            return
        text = node.value
        if is_null(node):
            self.note(doc, path, node, "empty value")
            return
        if templated(text):
            self.note(doc, path, node, "templated value: filled in outside this file")
            return
        if node.style in ("|", ">"):
            self.note(doc, path, node, "a block scalar (| or >) holds more than a reference")
            return
        tagged = foreign_tag(node)
        if tagged is not None:
            self.note(doc, path, node, tagged)
            return
        try:
            ref = Reference.parse(text.removeprefix(prefix))
        except InvalidReferenceError as exc:
            self.note(doc, path, node, f"not an image reference: {exc.message}")
            return
        if follows is not None and ImageName.parse(follows) != ref.image:
            ref = Reference(follows, ref.tag, ref.digest)
        self.follow(doc, path, node, ref, text, prefix=prefix, policy=policy, span=span)

    def follow(self, doc: int, path: Path | None, node: Scalar, ref: Reference, written: str, *,
               prefix: str = "", suffix: str = "", bare: bool = False, policy: Policy | None = None,
               span: tuple[int, int] | None = None, pin: bool | None = None,
               image: ImageName | None = None) -> None:
        """A parsed whole reference at `node` (or only its `tag[@digest]` when `bare`), written
        as `written` (= prefix + reference + suffix): a slot, or a note saying why not.
        `pin`: whether a digest may be written (default: one is, or `pin_digests`);
        `image`: the image followed when it is not the written one (a marker's)."""
        image = image if image is not None else ref.image
        chosen = self.policy(image, policy).anchored(ref.tag or "latest")
        pinned = ref.digest is not None or (self.cfg.pin_digests if pin is None else pin)
        reason = self.shared(doc, path) if path is not None else None
        if reason is None and ref.tag is None and ref.digest is not None and chosen.kind is Kind.same:
            reason = "pinned by digest only: no tag to follow (a policy other than `same` can move it)"
        if reason is None and bare and ref.tag is None and chosen.kind is not Kind.same:
            reason = "no tag written here to move (only a digest)"
        if reason is None and not pinned and chosen.kind is Kind.same:
            reason = _tag_only(chosen, ref.tag or "latest")
        if reason is not None:
            self.note(doc, path, node, reason, str(image), ref.tag or "", value=written,
                      digest=ref.digest or "")
            return
        self.slots.append(Slot(
            self.cfg.name, self.file, doc, path, node.line, image, ref.tag or "latest",
            ref.digest or "", DigestFormat.full, self.cfg.platform, path, node.line, chosen,
            self.shape, ref, span=span, pin=pinned, written=written, prefix=prefix, suffix=suffix,
            bare=bare))

    def split(self, doc: int, entry: Path, node: Node, image_text: str, tag_key: str | None,
              digest_key: str | None, *, policy: Policy | None = None,
              insert_key: str | None = "digest", report: Path | None = None,
              written: str | None = None) -> None:
        """A mapping that keeps the image, the tag and the digest in separate fields.
        `report` is the path reports show (default: the mapping's)."""
        fields = keys(node)
        tag = Field((*entry, tag_key), fields.get(tag_key), tag_key) if tag_key else None
        digest = Field((*entry, digest_key), fields.get(digest_key), digest_key) if digest_key else None
        insert = ((entry, insert_key) if insert_key and isinstance(node, Mapping) else None)
        self.fields(doc, entry, node, image_text, tag, digest, policy=policy, insert=insert,
                    report=report, written=written)

    def fields(self, doc: int, entry: Path, node: Node, image_text: str, tag_at: Field | None,
               digest_at: Field | None, *, policy: Policy | None = None,
               insert: tuple[Path, str] | None = None, report: Path | None = None,
               written: str | None = None) -> None:
        """An image whose name, tag and digest are written in separate places (a mapping's
        fields, or list items such as Argo CD's `parameters`). `entry` is where they live
        (checked for shared anchors), `insert` where a digest may be added under pinning;
        `written` the name as written, when `image_text` has a registry put before it."""
        shown = report if report is not None else entry
        as_written = written if written is not None else image_text
        if templated(image_text):
            self.note(doc, shown, node, "templated image name: filled in outside this file",
                      value=as_written)
            return
        try:
            image = ImageName.parse(image_text)
        except InvalidReferenceError as exc:
            self.note(doc, shown, node, f"not an image name: {exc.message}", value=as_written)
            return
        chosen = self.policy(image, policy)
        tag_node = scalar(tag_at.node) if tag_at else None
        digest_node = scalar(digest_at.node) if digest_at else None
        tag_key = tag_at.name if tag_at else None
        digest_key = digest_at.name if digest_at else None
        tag = "" if is_null(tag_node) or tag_node is None else tag_node.value
        digest = "" if is_null(digest_node) or digest_node is None else digest_node.value
        chosen = chosen.anchored(tag or "latest")
        moving = chosen.kind is not Kind.same
        at = tag_node or node
        reason: str | None = None
        if tag and templated(tag):
            reason = "templated tag: filled in outside this file"
        elif tag and "@" in tag and tag_at is not None and tag_node is not None:
            self._tag_at_digest(doc, tag_at, tag_node, image_text, image, digest, policy, shown)
            return
        elif tag and not is_tag(tag):
            reason = (f"{tag_key} {tag!r} is a digest, not a tag"
                      + (f" (a digest belongs under `{digest_key}:`)" if digest_key else "")
                      if tag.startswith(("sha256:", "sha512:")) else
                      f"{tag_key} {tag!r} does not follow the tag grammar (letters, digits, `_`, "
                      "`.`, `-`; at most 128; not starting with `.` or `-`)")
        elif not tag and not digest:
            reason = ("no tag written: the tag comes from elsewhere (a chart's appVersion, "
                      "the resources); never filled in")
        elif not tag and not moving:
            reason = "pinned by digest only: no tag to follow (a policy other than `same` can move it)"
        elif digest_node is None and not moving and not self.cfg.pin_digests:
            reason = _tag_only(chosen, tag)
        if reason is None:
            reason = foreign_tag(digest_node) or (foreign_tag(tag_node) if moving else None)
        raw = digest_at.node if digest_at else None
        if reason is None and raw is not None and digest_node is None:  # not a scalar
            reason = (f"{digest_key} is shared through anchor &{raw.name}; edit the anchor's entry"
                      if isinstance(raw, Alias) else f"{digest_key} is not a single value")
        if reason is None and digest and not digest.startswith(("sha256:", "sha512:")):
            reason = f"{digest_key} {digest!r} is not a digest (sha256:…)"
        for where, sub in ((tag_at, tag_node if moving else None), (digest_at, digest_node)):
            if reason is None and sub is not None and where is not None:
                reason = self.shared(doc, where.path)
        if reason is None:  # the mapping itself: a key written twice on the way makes it ambiguous
            reason = self.shared(doc, entry)
        if reason is not None:
            self.note(doc, shown, at, reason, str(image), tag, value=as_written,
                      digest=digest if digest.startswith(("sha256:", "sha512:")) else "")
            return
        digest_path = digest_at.path if digest_node is not None and digest_at else None
        insert = insert if digest_node is None and self.cfg.pin_digests else None
        tag_path = tag_at.path if moving and tag and tag_at else None
        line = digest_node.line if digest_node is not None else at.line
        self.slots.append(Slot(
            self.cfg.name, self.file, doc, digest_path, line, image, tag or "latest", digest,
            DigestFormat.full, self.cfg.platform, tag_path, tag_node.line if tag_node else 0,
            chosen, self.shape, insert_digest=insert, chooses=moving and not tag, entry=shown,
            written=as_written))

    def _tag_at_digest(self, doc: int, tag_at: Field, node: Scalar, image_text: str,
                       image: ImageName, digest: str, policy: Policy | None, shown: Path) -> None:
        """`tag: 1.2@sha256:…`: the tag field holds both parts; followed as one reference and
        rewritten in the same form (a separate digest field as well would be two answers)."""
        text = node.value
        tag, _, inline = text.partition("@")
        reason: str | None = None
        if digest:
            reason = f"a digest is written twice: in {tag_at.name} ({text}) and beside it"
        else:
            try:
                validate_tag(tag, text)
                validate_digest(inline, text)
            except InvalidReferenceError as exc:
                reason = f"{tag_at.name} {text!r} is not `tag@digest`: {exc.message}"
        reason = reason or foreign_tag(node)
        if reason is not None:
            self.note(doc, shown, node, reason, str(image), tag, value=text)
            return
        self.follow(doc, tag_at.path, node, Reference(image_text, tag, inline), text, bare=True,
                    policy=policy, image=image)

