"""What every finder yields: `Slot`s to follow, `Note`s on what it leaves alone, and lists that
may grow. One shape per finder, one vocabulary for all of them, so `plan` and `publish` never
need to know which shape a reference came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tagsync.catalog.path import Path, format_path
from tagsync.config import DigestFormat
from tagsync.policy import Kind, Policy
from tagsync.reference import ImageName, Reference


@dataclass(frozen=True)
class Slot:
    """A reference in a file that follows (image, tag).

    Split shapes (a catalog's fields, Helm's `repository`/`tag`/`digest`, kustomize's `newTag`/
    `digest`): `path` is where the digest is written (None when there is none), `tag_path` where
    the tag is written when the policy may move it, `insert_digest` a mapping and key to add a
    digest under (digest pinning where no key exists yet).
    Whole references (`image: nginx:1.25@sha256:…`, a Dockerfile `FROM`): `ref` is the reference
    as written, `path` (YAML) or `span` (offsets in other text) locate it, and `pin` says whether
    a digest is written in it.
    """

    catalog: str
    file: str
    doc: int
    path: Path | None
    line: int
    image: ImageName
    tag: str
    current: str
    format: DigestFormat
    platform: str | None
    tag_path: Path | None = None  # set when the policy may rewrite the tag
    tag_line: int = 0
    policy: Policy = field(default_factory=Policy)
    shape: str = "paths"
    ref: Reference | None = None
    span: tuple[int, int] | None = None
    pin: bool = False
    insert_digest: tuple[Path, str] | None = None
    chooses: bool = False  # no tag is written (a digest-only mapping): the policy picks one
    entry: Path | None = None  # the mapping a split reference lives in, for reports
    written: str = ""  # the value as written (a whole reference, or the repository field)
    prefix: str = ""  # text before a whole reference in its scalar (`docker://`, `${IMAGE:-`)
    suffix: str = ""  # text after it (the `}` of `${IMAGE:-nginx:1.25}`)
    bare: bool = False  # the value holds only what follows the name: `tag[@digest]`
    marks: tuple[tuple[str, int, str], ...] = ()  # marked values (path, line, text) it answers to

    def render(self, tag: str | None, digest: str | None) -> str:
        """The text a whole reference's place holds for (tag, digest), in its author's form:
        the same prefix and suffix, the name only where it was written."""
        assert self.ref is not None
        full = Reference(self.ref.name, tag, digest).render()
        body = full[len(self.ref.name):].removeprefix(":") if self.bare else full
        return self.prefix + body + self.suffix

    @property
    def moves(self) -> bool:
        """The policy may choose another tag than the one written."""
        movable = self.tag_path is not None or self.ref is not None or self.chooses
        return movable and self.policy.kind is not Kind.same

    @property
    def wants_digest(self) -> bool:
        """A digest is written for this slot, so the registry must be asked for it."""
        if self.ref is not None:
            return self.pin
        return self.path is not None or self.insert_digest is not None

    @property
    def where(self) -> str | None:
        """The yq-style path reports show: the value, or the mapping of a split reference."""
        at = self.entry if self.entry is not None else self.path
        return format_path(at) if at is not None else None


@dataclass(frozen=True)
class Note:
    """An entry tagsync saw and deliberately did not follow."""

    catalog: str
    file: str
    line: int
    image: str
    tag: str
    reason: str
    doc: int = 0
    path: str | None = None
    value: str = ""
    shape: str = "paths"
    digest: str = ""  # the digest written, when one is (left alone or not, rows show it)


@dataclass(frozen=True)
class Growth:
    """A [tag, digest] list that may gain the new tags its policy admits (`new_tags`)."""

    catalog: str
    file: str
    doc: int
    path: Path  # the list
    line: int
    image: ImageName
    known: tuple[str, ...]
    policy: Policy
    format: DigestFormat
    platform: str | None


@dataclass(frozen=True)
class Discovery:
    """A catalog list that may gain entries for new repositories of a namespace (`new_images`)."""

    catalog: str
    file: str
    doc: int
    path: Path  # the entries list
    line: int
    registry: str
    namespace: str
    pattern: str  # regex over full repository names; named groups are template fields
    fields: tuple[tuple[str, str], ...]  # (group name, template field)
    known: frozenset[str]  # repositories the catalog already has
    template: str
    tag: str
    exclude: tuple[str, ...]
    policy: Policy
    format: DigestFormat
    platform: str | None


@dataclass
class References:
    slots: list[Slot] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    growths: list[Growth] = field(default_factory=list)
    discoveries: list[Discovery] = field(default_factory=list)
    ignored: list[Note] = field(default_factory=list)  # look-alikes that are not images at all
    warnings: list[str] = field(default_factory=list)  # config that finds less than it says

    def extend(self, other: References) -> None:
        self.slots += other.slots
        self.notes += other.notes
        self.growths += other.growths
        self.discoveries += other.discoveries
        self.ignored += other.ignored
        self.warnings += other.warnings
