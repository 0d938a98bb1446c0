"""Hostile files never crash the finders, and every edit they lead to touches only its value.

Input comes three ways: mutations of the real-file corpus (../shared/corpus/manifests, skipped
when absent), generated YAML (anchors, alias bombs, merge keys, duplicate and non-string keys,
deep nesting, multi-document streams, flow collections, block scalars, tags) and generated
Dockerfiles (continuations, heredocs, ARG substitution, directives, CRLF). Properties:

1. finding raises nothing but `TagsyncError`s that name the file (and the line, for syntax and
   encoding errors); `tagsync refs FILE` exits with a message and no traceback;
2. every slot found, set to a new digest (and a new tag where its policy may move it) through
   the engine (`plan.slot_changes` → `Change.edit` → `apply`), changes only that value's bytes,
   and the result reads back as the same data with that value changed;
3. nothing is found inside a comment, a block scalar that is not an image, a heredoc, or a
   look-alike (every value naming `evil` below is one).

Hypothesis runs derandomized: the same examples every run, so a failure is a bug, not luck.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import json
import math
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tagsync.catalog.document import MAX_DEPTH, Document, Mapping, Scalar, Sequence, parse_documents
from tagsync.catalog.edit import Catalog
from tagsync.catalog.insert import InsertKey
from tagsync.catalog.path import format_path, parse_path
from tagsync.catalog.text import SpliceAt, TextFile
from tagsync.cli import main
from tagsync.config import CatalogConfig
from tagsync.errors import EncodingError, TagsyncError, YamlSyntaxError
from tagsync.find import References, find_references, open_source, rows
from tagsync.find.dockerfile import directives, instructions
from tagsync.find.model import Slot
from tagsync.plan import Change, slot_changes

from .conftest import CORPUS

MANIFESTS = CORPUS / "manifests"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "e" * 64  # the digest every edit writes
NEW_TAG = "99.1.2"  # the tag a moving policy writes
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # safe_load, at libyaml's speed
EVIL = "evil.example/lookalike"  # only ever written where no reference may be found

# The catalogs `tagsync refs` reads with, and two that find more: tag-only references become
# slots (pin_digests: a digest is written or inserted) and tags may move (semver).
CONFIGS = {
    "refs": CatalogConfig(name="refs", files=["**"], kind="auto"),
    "pin": CatalogConfig.model_validate({"name": "pin", "files": ["**"], "kind": "auto",
                                         "pin_digests": True}),
    "move": CatalogConfig.model_validate({"name": "move", "files": ["**"], "kind": "auto",
                                          "pin_digests": True, "policy": {"kind": "semver"}}),
}


def fast(examples: int) -> settings:
    """Derandomized (the same examples every run) and sized for a busy 2-core machine."""
    return settings(derandomize=True, deadline=None, database=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the engine, as a run drives it ---------------------------------------------------------


def find(data: bytes, file: str, cfg: CatalogConfig) -> tuple[Catalog | TextFile, References] | None:
    """Property 1: a file is read, or refused with a typed error that says where."""
    try:
        source = open_source(data, file, cfg)
        return source, find_references(cfg, source)
    except TagsyncError as exc:
        assert exc.file == file, f"{type(exc).__name__} without the file: {exc}"
        if isinstance(exc, (YamlSyntaxError, EncodingError)):
            assert exc.line is not None, f"{type(exc).__name__} without a line: {exc}"
        return None


def changes_of(slot: Slot) -> list[list[Change]]:
    """Each way a run may edit this slot: a new digest, and a new tag where the policy moves."""
    targets = [slot.tag] + ([NEW_TAG] if slot.moves else [])
    return [c for c in (slot_changes(slot, t, D2) for t in targets) if c]


def edited(source: Catalog | TextFile, changes: list[Change]) -> str:
    edits = [c.edit() for c in changes]
    if isinstance(source, TextFile):
        return source.apply(e for e in edits if isinstance(e, SpliceAt))
    return source.apply(e for e in edits if not isinstance(e, SpliceAt))


def check_every_edit(source: Catalog | TextFile, refs: References, data: bytes) -> int:
    """Property 2 for every slot found; returns how many edits were checked."""
    assert source.render(source.text) == data  # reading alone changes no byte
    checked = 0
    for slot in refs.slots:
        for changes in changes_of(slot):
            for change in changes:  # each edit alone: only its bytes move
                out = edited(source, [change])
                if isinstance(source, TextFile):
                    check_text_edit(source.text, out, change)
                else:
                    check_yaml_edit(source, out, change)
                checked += 1
            if len(changes) > 1:  # a tag and its digest together still read back
                out = edited(source, changes)
                if isinstance(source, Catalog):
                    Catalog(out, source.file)
    return checked


def check_text_edit(text: str, out: str, change: Change) -> None:
    assert change.span is not None
    start, end = change.span
    assert text[start:end] == change.old
    assert out == text[:start] + change.new + text[end:]
    before = [[t.text for _, t in directives(text)]] + [[t.text for t in ins] for ins in instructions(text)]
    after = [[t.text for _, t in directives(out)]] + [[t.text for t in ins] for ins in instructions(out)]
    assert len(before) == len(after)
    differ = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(differ) == 1 and len(differ[0][0]) == len(differ[0][1])
    b, a = differ[0]
    assert sum(x != y for x, y in zip(b, a, strict=True)) == 1, (b, a)


def check_yaml_edit(source: Catalog, out: str, change: Change) -> None:
    text = source.text
    edit = change.edit()
    if isinstance(edit, InsertKey):
        prefix = _common_prefix(text, out)
        assert out.endswith(text[prefix:]), "an insertion must keep every byte of the file"
        inserted = out[prefix:len(out) - (len(text) - prefix)]
        pair = yaml.load("{" + inserted.strip(" \t\r\n,") + "}", Loader=SafeLoader)
        assert pair == {change.key: change.new}, inserted
    else:
        node = source.locate(edit.path, edit.doc).node
        assert isinstance(node, Scalar)
        assert out.startswith(text[:node.value_start]), "bytes before the value changed"
        assert out.endswith(text[node.end:]), "bytes after the value changed"
    after = Catalog(out, source.file)
    assert len(after.documents) == len(source.documents)
    if isinstance(edit, InsertKey):
        path, value = (*edit.path, edit.key), edit.value
    else:
        path, value = edit.path, edit.value
    assert after.get(path, change.doc) == value
    check_same_data(text, out, change.doc, path, value)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def check_same_data(text: str, out: str, doc: int, path: tuple[Any, ...], value: str) -> None:
    """What a YAML 1.1 reader (PyYAML) sees: the same data, with exactly that value changed.
    Files PyYAML itself cannot construct (unhashable keys, `!!int x`, a bad !!binary) are compared
    through our own tree only (above)."""
    loaded = _loaded(text)
    if loaded is None:
        return
    before = pickle.loads(loaded)
    after = list(yaml.load_all(out, Loader=SafeLoader))
    tree = _tree(text)[doc].root
    before[doc] = _set(before[doc], tree, path, value, text)
    assert _plain(after) == _plain(before)


@functools.lru_cache(maxsize=4)  # every slot of a file is checked against the same original
def _loaded(text: str) -> bytes | None:
    try:
        return pickle.dumps(list(yaml.load_all(text, Loader=SafeLoader)))
    except (yaml.YAMLError, ValueError, TypeError, IndexError):  # PyYAML's constructors, not ours
        return None


@functools.lru_cache(maxsize=4)
def _tree(text: str) -> list[Document]:
    return parse_documents(text)


def _set(data: Any, node: Any, path: tuple[Any, ...], value: str, text: str) -> Any:
    """Set `path` in PyYAML's data, finding each key as PyYAML resolved it (`1:` is int 1)."""
    if not path:
        return value
    head, *rest = path
    if isinstance(node, Sequence):
        data[head] = _set(data[head], node.items[head], tuple(rest), value, text)
        return data
    assert isinstance(node, Mapping)
    found = [(k, v) for k, v in node.pairs if isinstance(k, Scalar) and k.value == head != "<<"]
    if not found and not rest:  # a key the edit inserts
        data[head] = value
        return data
    key_node, child = found[0]
    key: Any = head
    if key_node.style == "" and key_node.tag is None:
        with contextlib.suppress(yaml.YAMLError, TypeError):  # alone, the text may read otherwise
            resolved = yaml.load(text[key_node.start:key_node.end], Loader=SafeLoader)
            key = resolved if resolved in data else head
    data[key] = _set(data[key], child, tuple(rest), value, text)
    return data


def _plain(data: Any, inside: frozenset[int] = frozenset()) -> Any:
    """Data comparable with ==: NaN equals NaN, a recursive alias (`&a [*a]`) is a marker."""
    if isinstance(data, float) and math.isnan(data):
        return "<nan>"
    if isinstance(data, (dict, list)) and id(data) in inside:
        return "<cycle>"
    if isinstance(data, dict):
        return {k: _plain(v, inside | {id(data)}) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v, inside | {id(data)}) for v in data]
    return data


def found_texts(refs: References) -> list[str]:
    return [str(r["value"]) for r in rows(refs)]


# --- property 1 and 2 on the real-file corpus, mutated ----------------------------------------


def corpus_files() -> list[Path]:
    if not MANIFESTS.exists():
        return []
    return sorted(p for p in MANIFESTS.iterdir()
                  if p.suffix in (".yaml", ".yml") or "Dockerfile" in p.name)


CORPUS_FILES = {p.name: p.read_bytes() for p in corpus_files()}


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    if not CORPUS_FILES:
        pytest.skip(f"corpus {MANIFESTS} is absent")
    return CORPUS_FILES


INJECTED = [b"\x00", b"\r\n", b"\r", b"\xef\xbb\xbf", b"\t", b"\xff", b"\xc3", b"\xed\xa0\x80",
            b"\\\n", b"&a ", b"*a ", b"<<: *a\n", b"- ", b": ", b"? ", b"{", b"}", b"[", b"]",
            b"'", b'"', b"|\n", b">-\n", b"!!binary ", b"!!int ", b"#", b"\n", b"---\n",
            b"...\n", b"%YAML 1.1\n", b"${X}", b"{{ .Values.x }}", b"@sha256:", b":", b"\xc2\x85",
            b"\xe2\x80\xa8", b"\x0c", b"RUN <<EOF\n", b"EOF\n", b"FROM ", b" AS ", b"--from="]


@dataclass(frozen=True)
class Mutation:
    kind: str
    at: int  # a fraction of the file, in 1/1000
    size: int
    piece: int

    def apply(self, data: bytes) -> bytes:
        i = len(data) * self.at // 1000
        j = min(len(data), i + self.size)
        if self.kind == "delete":
            return data[:i] + data[j:]
        if self.kind == "insert":
            return data[:i] + INJECTED[self.piece % len(INJECTED)] + data[i:]
        if self.kind == "duplicate":
            return data[:j] + data[i:j] + data[j:]
        if self.kind == "truncate":
            return data[:i]
        if self.kind == "byte":
            return data[:i] + bytes([self.piece % 256]) + data[j:]
        if self.kind == "crlf":
            return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self.kind == "bom":
            return b"\xef\xbb\xbf" + data
        assert self.kind == "tabs"
        return data.replace(b"  ", b"\t", self.piece % 8 + 1)


mutations = st.builds(
    Mutation, st.sampled_from(["delete", "insert", "duplicate", "truncate", "byte", "crlf",
                               "bom", "tabs"]),
    st.integers(0, 1000), st.integers(1, 80), st.integers(0, 255))


@pytest.mark.usefixtures("corpus")
@fast(400)
@given(pick=st.integers(0), steps=st.lists(mutations, min_size=1, max_size=4),
       config=st.sampled_from(sorted(CONFIGS)))
def test_mutated_corpus_files_are_read_or_refused_with_a_place(
        pick: int, steps: list[Mutation], config: str) -> None:
    name = sorted(CORPUS_FILES)[pick % len(CORPUS_FILES)]
    data = CORPUS_FILES[name]
    for step in steps:
        data = step.apply(data)
    read = find(data, name, CONFIGS[config])
    event("refused" if read is None else "read, with slots" if read[1].slots else "read")
    if read is not None:
        check_every_edit(*read, data)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_corpus_slot_edit_changes_only_its_value(corpus: dict[str, bytes], config: str) -> None:
    checked = 0
    for name, data in corpus.items():
        read = find(data, name, CONFIGS[config])
        assert read is not None, name
        checked += check_every_edit(*read, data)
    assert checked > (5 if config == "refs" else 50)


def boundaries(data: bytes) -> Iterator[int]:
    """Every place a file may be cut that means something: each line end, indentation end,
    `:`/`-`/quote/bracket, the first and last byte, and inside a multi-byte character."""
    seen: set[int] = set()
    for i, byte in enumerate(data):
        if byte in b"\n\r:-'\"[]{}#,|>&*!@\\ " or byte >= 0x80:
            for at in (i, i + 1):
                if at not in seen:
                    seen.add(at)
                    yield at


def test_corpus_files_cut_at_every_boundary_are_read_or_refused(corpus: dict[str, bytes]) -> None:
    for name, data in corpus.items():
        cuts = sorted(set(boundaries(data)))
        step = max(1, len(cuts) // 60)  # ~60 cuts per file, spread over it; every 4th edited
        for n, at in enumerate(cuts[::step]):
            read = find(data[:at], name, CONFIGS["pin"])
            if read is not None and n % 4 == 0:
                check_every_edit(*read, data[:at])


def test_a_comment_line_naming_an_image_finds_nothing_new(corpus: dict[str, bytes]) -> None:
    """Property 3: a comment that looks like a reference, at any line of any file, adds nothing
    (or, inside a block scalar or a heredoc, is text and not a reference either)."""
    comment = f"# image: {EVIL}:1.0@{D1}\n# FROM {EVIL}:1.0@{D1}\n".encode()
    for name, data in corpus.items():
        starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
        for at in starts[:: max(1, len(starts) // 25)]:
            mutated = data[:at] + comment + data[at:]
            read = find(mutated, name, CONFIGS["pin"])
            if read is not None:
                assert not any(EVIL in t for t in found_texts(read[1])), (name, at)


LABLUP = CatalogConfig.model_validate({
    "name": "k", "file": "images.yml", "entries": ".images[*]", "image": "lablup/kernel-{name}",
    "pairs": ".tags", "digest_format": "short"})
LABLUP_MOVING = LABLUP.model_copy(update={"new_tags": True, "policy": CatalogConfig.model_validate({
    "name": "p", "file": "f", "policy": {"kind": "regex", "include": r"(\\d+)\\.(\\d+)-ubuntu"}}).policy})


@fast(40)  # ~25 slots a file, each edited and read back: the costliest example here
@given(steps=st.lists(mutations, min_size=1, max_size=3), moving=st.booleans())
def test_a_mutated_field_by_field_catalog_is_read_or_refused(steps: list[Mutation], moving: bool) -> None:
    path = CORPUS / "lablup-image-metadata.yml"
    if not path.exists():
        pytest.skip(f"corpus file {path} is absent")
    data = path.read_bytes()
    for step in steps:
        data = step.apply(data)
    read = find(data, "images.yml", LABLUP_MOVING if moving else LABLUP)
    if read is not None:
        check_every_edit(*read, data)


# --- property 1: the CLI --------------------------------------------------------------------


HOSTILE = {
    "nul.yaml": b"image: nginx:1.25\x00\n",
    "latin1.yaml": b"image: caf\xe9:1\n",
    "utf16.yaml": "image: nginx\n".encode("utf-16"),
    "deep.yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "tabs.yaml": b"a:\n\t- image: nginx\n",
    "alias.yaml": b"a: *nowhere\n",
    "Dockerfile": b"FROM \xff\xfe\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_refs_on_a_hostile_file_exits_with_a_message(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["refs", str(path)])
    assert code != 0
    assert name in err.getvalue() and "Traceback" not in err.getvalue() + out.getvalue()


def test_refs_on_corpus_files_cut_and_poisoned_never_shows_a_traceback(
        corpus: dict[str, bytes], tmp_path: Path) -> None:
    for n, (name, data) in enumerate(sorted(corpus.items())):
        folder = tmp_path / str(n)
        folder.mkdir()
        half = len(data) // 2
        (folder / name).write_bytes(data[:half] + (b"\x00" if n % 2 else b"\t") + data[half:])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["refs", str(folder)])
        assert code in (0, 2), (name, err.getvalue())
        assert "Traceback" not in out.getvalue() + err.getvalue()
        assert code == 0 or err.getvalue().strip(), name


@pytest.mark.parametrize("name", ["deep.yaml", "Dockerfile"])
def test_refs_in_a_process_on_a_hostile_file_prints_no_traceback(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    done = subprocess.run([sys.executable, "-m", "tagsync.cli", "refs", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert name in done.stderr and "Traceback" not in done.stderr + done.stdout


# --- generated YAML ------------------------------------------------------------------------
# A small emitter writes what a dumper never would: anchors and aliases anywhere, merge keys,
# duplicate and non-string keys, comments that look like references, block scalars holding
# manifests, tags, flow collections inside block ones, deep nesting, empty documents.

COMMENTED = "evil.example/in-a-comment"  # no row may ever show it
REFS = [f"nginx:1.25.3@{D1}", f"ghcr.io/acme/web:1.4.2@{D1}", "registry.example.com:5000/app:v2",
        "busybox:1.36", f"alpine@{D1}"]
# (EVIL is no leaf: a leaf may land under `image:`, where it is a reference like any other.)
LEAVES = [*REFS, "${IMAGE}", "{{ .Values.image }}", "", "~", "null", "yes",
          "01", "1.10", "a: b", "#x", "- x", "[", "'", '"', "é", "\t", "sha256:" + "a" * 64]
KEYS = ["image", "repository", "tag", "digest", "registry", "name", "newName", "newTag",
        "containers", "initContainers", "services", "jobs", "container", "steps", "uses",
        "spec", "template", "sidecarImage", "imageTag", "x-common", "build", "values", "data"]
ODD_KEYS = ["1", "~", "true", "2001-01-01", "[a, b]", "{k: v}", "'quoted key'", '"tab\\tkey"']

Node = tuple[Any, ...]


def _leaf(value: str, style: str, tag: str) -> Node:
    return ("scalar", value, style, tag)


leaf_nodes = st.builds(_leaf, st.sampled_from(LEAVES), st.sampled_from(["", "", "'", '"', "|", ">-"]),
                       st.sampled_from(["", "", "", "!!str ", "!custom "]))
special_nodes = st.one_of(
    st.integers(0, 9).map(lambda k: ("alias", k)),
    st.just(("scalar", "aGVsbG8=", "", "!!binary ")),
    st.just(("scalar", f"image: {EVIL}:1@{D1}\nFROM {EVIL}:2", "|", "")),
    st.integers(30, MAX_DEPTH - 20).map(lambda n: ("deep", n)),
)
key_names = st.one_of(st.sampled_from(KEYS), st.sampled_from(ODD_KEYS))


def _collections(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    pairs = st.lists(st.tuples(key_names, children), min_size=1, max_size=4)
    anchor = st.sampled_from(["", "", "&a1 ", "&a2 ", "&a3 "])
    merge = st.one_of(st.none(), st.integers(0, 9))
    return st.one_of(
        st.builds(lambda p, a, m, f: ("map", p, a, m, f), pairs, anchor, merge, st.booleans()),
        st.builds(lambda i, a, f: ("seq", i, a, f), st.lists(children, min_size=1, max_size=3),
                  anchor, st.booleans()),
    )


yaml_nodes = st.recursive(st.one_of(leaf_nodes, special_nodes), _collections, max_leaves=14)


class Emitter:
    """Writes nodes as YAML text, remembering anchors so aliases and merges point backwards."""

    def __init__(self) -> None:
        self.anchors: list[str] = []
        self.maps: list[str] = []

    def props(self, anchor: str, is_map: bool = False) -> str:
        if anchor:
            name = anchor[1:].strip()
            self.anchors.append(name)
            if is_map:
                self.maps.append(name)
        return anchor

    def flow(self, node: Node) -> str:
        kind = node[0]
        if kind == "scalar":
            _, value, style, tag = node
            return tag + json.dumps(value) if style in ("|", ">-") or style == '"' or not value \
                else tag + (value if style == "" and _plain_in_flow(value) else json.dumps(value))
        if kind == "alias":
            return f"*{self.anchors[node[1] % len(self.anchors)]}" if self.anchors else "x"
        if kind == "deep":
            return "[" * node[1] + "x" + "]" * node[1]
        if kind == "seq":
            prefix = self.props(node[2])
            return prefix + "[" + ", ".join(self.flow(i) for i in node[1]) + "]"
        prefix = self.props(node[2], True)
        pairs = [f"{_flow_key(k)}: {self.flow(v)}" for k, v in node[1]]
        return prefix + "{" + ", ".join(pairs) + "}"

    def value(self, node: Node, col: int) -> str:
        """What follows `key:` or `-` at column `col`, through the end of its last line."""
        kind = node[0]
        pad = " " * (col + 2)
        if kind == "scalar" and node[2] in ("|", ">-"):
            _, value, style, tag = node
            body = "".join(f"{pad}{line}\n" for line in (value or "x").split("\n"))
            return f" {tag}{style}\n{body}"
        if kind in ("scalar", "alias", "deep") or node[-1] is True:  # flow, or a leaf
            comment = f"  # image: {COMMENTED}:1@{D1}" if kind == "scalar" and node[1] in REFS else ""
            return f" {self.flow(node)}{comment}\n"
        if kind == "seq":
            out = " " + self.props(node[2]) if node[2] else ""
            return out + "\n" + "".join(f"{pad}-{self.value(i, col + 2)}" for i in node[1])
        out = (" " + self.props(node[2], True)) if node[2] else ""
        out += f"\n{pad}# FROM {COMMENTED}:1\n"
        if node[3] is not None and self.maps:
            out += f"{pad}<<: *{self.maps[node[3] % len(self.maps)]}\n"
        for key, child in node[1]:
            if key.startswith(("[", "{")):
                out += f"{pad}? {key}\n{pad}:{self.value(child, col + 2)}"
            else:
                out += f"{pad}{key}:{self.value(child, col + 2)}"
        return out


def _plain_in_flow(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in "._/@-" for c in value)


def _flow_key(key: str) -> str:
    return json.dumps(key) if key.startswith(("[", "{")) else key


SKELETONS: dict[str, Callable[[Node, Node], Node]] = {
    "deploy.yaml": lambda img, extra: ("map", [
        ("apiVersion", _leaf("apps/v1", "", "")), ("kind", _leaf("Deployment", "", "")),
        ("spec", ("map", [("template", ("map", [("spec", ("map", [
            ("containers", ("seq", [("map", [("name", _leaf("web", "", "")), ("image", img),
                                             ("extra", extra)], "", None, False)], "", False))],
            "", None, False))], "", None, False))], "", None, False))], "", None, False),
    "values.yaml": lambda img, extra: ("map", [
        ("image", ("map", [("repository", _leaf("ghcr.io/acme/web", "", "")),
                           ("tag", _leaf("1.4.2", '"', "")), ("digest", _leaf(D1, "", "")),
                           ("extra", extra)], "&img ", None, False)),
        ("sidecarImage", img)], "", None, False),
    "compose.yaml": lambda img, extra: ("map", [
        ("x-common", ("map", [("restart", _leaf("always", "", ""))], "&common ", None, False)),
        ("services", ("map", [("web", ("map", [("image", img), ("extra", extra)], "", 0, False)),
                              ("app", ("map", [("build", _leaf(".", "", "")), ("image", img)],
                                       "", None, False))], "", None, False))], "", None, False),
    "workflow.yml": lambda img, extra: ("map", [
        ("on", _leaf("push", "", "")),
        ("jobs", ("map", [("test", ("map", [
            ("container", img), ("services", ("map", [("db", ("map", [("image", img)], "", None,
                                                               False))], "", None, False)),
            ("steps", ("seq", [("map", [("uses", _leaf(f"docker://{REFS[1]}", "", ""))], "",
                                None, False), extra], "", False))], "", None, False))], "", None,
                  False))], "", None, False),
    "kustomization.yaml": lambda img, extra: ("map", [
        ("resources", ("seq", [_leaf("deploy.yaml", "", "")], "", False)),
        ("images", ("seq", [("map", [("name", _leaf("web", "", "")), ("newTag", _leaf("1.4.2", "", "")),
                                      ("digest", _leaf(D1, "", "")), ("extra", extra)], "", None,
                             False)], "", False))], "", None, False),
    # no digest: pinning inserts one after whatever the entry ends with
    "kustomization.yml": lambda img, extra: ("map", [
        ("resources", ("seq", [_leaf("deploy.yaml", "", "")], "", False)),
        ("images", ("seq", [("map", [("name", _leaf("web", "", "")), ("newTag", _leaf("1.4.2", "", "")),
                                      ("extra", extra)], "", None, False)], "", False))], "", None,
                                           False),
}


@st.composite
def yaml_files(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SKELETONS)))
    docs: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        emitter = Emitter()
        image = draw(st.one_of(st.builds(_leaf, st.sampled_from(REFS), st.sampled_from(["", "'", '"']),
                                         st.just("")), yaml_nodes))
        root = SKELETONS[name](image, draw(yaml_nodes))
        extra = draw(st.lists(st.tuples(key_names, yaml_nodes), max_size=3))
        root = ("map", root[1] + extra, *root[2:])
        text = emitter.value(root, -2).lstrip("\n")
        docs.append(text)
        docs += draw(st.sampled_from([[], [""], ["# only a comment\n"]]))
    separator = draw(st.sampled_from(["---\n", "--- # next\n", "...\n---\n"]))
    head = draw(st.sampled_from(["", "---\n", "%YAML 1.1\n---\n"]))
    text = head + separator.join(docs)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return name, text


@fast(120)
@given(generated=yaml_files())
def test_generated_yaml_is_read_or_refused_and_every_slot_edits_only_its_value(
        generated: tuple[str, str]) -> None:
    name, text = generated
    data = text.encode()
    read = find(data, name, CONFIGS["move"])
    event("refused" if read is None else "read, with slots" if read[1].slots else "read")
    if read is None:
        return
    found = rows(read[1])
    assert not [r for r in found if COMMENTED in str(r["value"])]
    assert not [r for r in found if EVIL in str(r["value"]) and r["status"] == "tracked"]
    check_every_edit(*read, data)


def alias_bomb(levels: int = 12, width: int = 10) -> str:
    """`billion laughs`: each anchor lists the previous one `width` times (width**levels leaves)."""
    names = [f"l{i}" for i in range(levels)]
    out = f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]\n"
    for prev, name in itertools.pairwise(names):
        out += f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]\n"
    return out


@pytest.mark.parametrize(("name", "tail"), [
    ("values.yaml", f"image: {{repository: nginx, tag: '1.25', digest: {D1}}}\nuses: *l11\n"),
    ("deploy.yaml",
     f"apiVersion: v1\nkind: Pod\nspec: {{containers: [{{name: a, image: 'nginx:1@{D1}'}}]}}\n"),
    ("compose.yaml", f"services: {{web: {{image: 'nginx:1@{D1}', <<: {{x: *l11}}}}}}\n"),
    ("workflow.yml", f"on: push\njobs: {{t: {{container: 'nginx:1@{D1}', steps: *l11}}}}\n"),
])
def test_an_alias_bomb_is_read_without_expanding_it(name: str, tail: str) -> None:
    import tracemalloc

    data = (alias_bomb() + tail).encode()
    tracemalloc.start()
    try:
        read = find(data, name, CONFIGS["move"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read is not None and len(read[1].slots) == 1
    assert peak < 20_000_000  # 10**12 leaves, never expanded: the tree is the text's size
    source, refs = read
    [change] = changes_of(refs.slots[0])[0]
    out = edited(source, [change])
    assert Catalog(out, name).get(parse_path(change.path), change.doc) == change.new
    assert len(out) - len(source.text) <= len(change.new) - len(change.old) + 2  # quotes at most


def test_thousands_of_marked_references_in_one_file_are_all_read() -> None:
    cfg = CatalogConfig.model_validate({"name": "m", "files": ["**"], "kind": "auto", "markers": {
        "web": {"image": "nginx", "policy": {"kind": "semver"}}}})
    text = "".join(f"k{i}:\n  repository: nginx\n  tag: '1.{i}'  # tagsync: web:tag\n"
                   f"  digest: {D1}  # tagsync: web:digest\n" for i in range(3000))
    read = find(text.encode(), "values.yaml", cfg)
    assert read is not None
    assert len(read[1].slots) == 3000 and not read[1].notes


# --- generated Dockerfiles ------------------------------------------------------------------

IMAGES = ["alpine:3.19", f"ghcr.io/acme/web:1.4.2@{D1}", "registry.example.com:5000/team/app:v2",
          "golang:1.22", f"python:3.12-slim@{D1}"]


@dataclass
class Dockerfile:
    """A generated Dockerfile and what a reader must find in it."""

    lines: list[str]
    tracked: list[str]  # the references, in any order
    newline: str = "\n"
    escape: str = "\\"

    def text(self, tail: str) -> str:
        return self.newline.join(self.lines) + tail


@st.composite
def dockerfiles(draw: st.DrawFn) -> tuple[str, list[str]]:
    escape = draw(st.sampled_from(["\\", "`"]))
    out = Dockerfile([], [], draw(st.sampled_from(["\n", "\r\n"])), escape)
    if draw(st.booleans()):  # the BuildKit frontend is an image too
        out.lines.append("# syntax=docker/dockerfile:1")
        out.tracked.append("docker/dockerfile:1")
    if escape == "`" or draw(st.booleans()):
        out.lines.append(f"# escape={escape}")
    stages: list[str] = []
    args = draw(st.lists(st.sampled_from(IMAGES), max_size=2))
    for n, image in enumerate(args):
        quote = draw(st.sampled_from(["", '"', "'"]))
        out.lines.append(f"ARG BASE{n}={quote}{image}{quote}")
        out.tracked.append(image)
    for n in range(len(args)):  # each ARG is used by one FROM
        if draw(st.booleans()):
            out.lines.append(f"FROM $BASE{n} AS a{n}")
            stages.append(f"a{n}")
        else:
            out.lines.append(f"FROM ${{BASE{n}}}")
    for step in draw(st.lists(st.sampled_from(
            ["from", "from-split", "stage", "scratch", "copy", "copy-stage", "heredoc",
             "heredoc-tabs", "comment", "run-split", "env", "from-env", "from-default"]),
            min_size=1, max_size=8)):
        image = draw(st.sampled_from(IMAGES))
        evil = f"{COMMENTED}:1.0@{D1}"  # never a row: script, comments, ENV
        cont = f" {escape}"
        if step == "from":
            platform = draw(st.sampled_from(["", "--platform=$BUILDPLATFORM ", "--platform=linux/arm64 "]))
            name = f"s{len(stages)}"
            word = draw(st.sampled_from(["FROM", "from", "From"]))
            out.lines.append(f"{word} {platform}{image} {draw(st.sampled_from(['AS', 'as']))} {name}")
            stages.append(name)
            out.tracked.append(image)
        elif step == "from-split":  # continued over lines, with a comment and a blank line inside
            out.lines += [f"FROM{cont}", f"# FROM {evil}", "", f"  {image}{cont}", f"  AS x{len(stages)}"]
            stages.append(f"x{len(stages)}")
            out.tracked.append(image)
        elif step == "stage" and stages:
            out.lines.append(f"FROM {draw(st.sampled_from(stages)).upper()}")
        elif step == "scratch":
            out.lines.append("FROM scratch")
        elif step == "copy":
            out.lines.append(f"COPY --from={image} /out /app")
            out.tracked.append(image)
        elif step == "copy-stage" and stages:
            out.lines.append(f"COPY --from={draw(st.sampled_from(stages))} /out /app")
        elif step == "heredoc":
            word = draw(st.sampled_from(["RUN <<EOF", "RUN <<'EOF' sh", 'COPY <<"EOF" /x']))
            out.lines += [word, f"FROM {evil}", f"COPY --from={evil} / /", "EOF"]
        elif step == "heredoc-tabs":
            out.lines += ["RUN <<-EOT cat", f"\tFROM {evil}", "\tEOT"]
        elif step == "comment":
            out.lines.append(f"# FROM {evil}")
        elif step == "run-split":
            out.lines += [f"RUN echo{cont}", f"  FROM {evil}{cont}", f"  --from={evil}"]
        elif step == "env":
            out.lines.append(f"ENV IMAGE={evil}")
        elif step == "from-env":  # ENV does not reach FROM; an ARG without a default says nothing
            out.lines += [f"ENV BASE_ENV={evil}", "ARG NODEFAULT", "FROM $BASE_ENV",
                          "FROM ${NODEFAULT}"]
        elif step == "from-default":  # FROM sees only ARGs declared before it: UNSET is
            out.lines.append("FROM ${UNSET:-alpine:3.19}")  # never set, so the word is the image
            out.tracked.append("3.19")  # (its tag, where it is written, is what is updated)
    tail = draw(st.sampled_from(["", out.newline, f" {escape}", f"{out.newline}RUN true {escape}"]))
    text = out.text(tail)
    return (("\ufeff" if draw(st.booleans()) else "") + text), out.tracked


@fast(300)
@given(generated=dockerfiles())
def test_a_generated_dockerfile_yields_its_references_and_edits_only_them(
        generated: tuple[str, list[str]]) -> None:
    text, tracked = generated
    data = text.encode()
    read = find(data, "Dockerfile", CONFIGS["pin"])
    assert read is not None
    source, refs = read
    found = rows(refs)
    assert not [r for r in found if COMMENTED in str(r["value"])]
    assert not [r for r in found if EVIL in str(r["value"]) and r["status"] == "tracked"]
    assert sorted(str(r["value"]) for r in found if r["status"] == "tracked") == sorted(tracked)
    for row in found:  # every row points at the line its value is on
        assert str(row["value"]) in source.text.split("\n")[int(str(row["line"])) - 1]
    check_every_edit(source, refs, data)


# --- regressions the properties found, one behaviour each -----------------------------------


def edit_every_slot(text: str | bytes, file: str = "values.yaml", config: str = "pin") -> bytes:
    data = text.encode() if isinstance(text, str) else text
    read = find(data, file, CONFIGS[config])
    assert read is not None
    source, refs = read
    assert refs.slots
    changes = [c for slot in refs.slots for c in slot_changes(slot, slot.tag, D2)]
    return source.render(edited(source, changes))


@fast(200)
@given(st.lists(st.one_of(st.text(max_size=8), st.integers(0, 99)), max_size=4))
def test_every_path_reads_back_as_written(path: list[str | int]) -> None:
    """Slots and notes travel as text (`Change.path`, `refs --json`): any key must survive."""
    assert parse_path(format_path(tuple(path))) == tuple(path)


def test_a_key_ending_in_whitespace_keeps_its_path() -> None:
    assert parse_path(format_path(("web", "tag\t"))) == ("web", "tag\t")


def test_a_marked_value_under_a_key_ending_in_a_tab_is_edited_in_place() -> None:
    cfg = CatalogConfig.model_validate({"name": "m", "files": ["**"], "kind": "auto", "markers": {
        "web": {"image": "nginx", "policy": {"kind": "semver"}}}})
    text = 'web:\n  "tag\\t": "1.25"  # tagsync: web:tag\n'
    read = find(text.encode(), "values.yaml", cfg)
    assert read is not None and len(read[1].slots) == 1
    [change] = slot_changes(read[1].slots[0], "1.26", None)
    assert edited(read[0], [change]) == text.replace("1.25", "1.26")


def test_collections_nested_too_deep_are_refused_with_a_place() -> None:
    data = b"a:\n  b: " + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"\n"
    with pytest.raises(YamlSyntaxError, match="nested deeper") as caught:
        find_references(CONFIGS["refs"], open_source(data, "deep.yaml", CONFIGS["refs"]))
    assert (caught.value.file, caught.value.line) == ("deep.yaml", 2)


def test_a_file_with_two_byte_order_marks_is_edited_at_the_right_place() -> None:
    bom = "\ufeff".encode()
    out = edit_every_slot(bom + bom + f"image: nginx:1.25@{D1}\nx: 1\n".encode())
    assert out == bom + bom + f"image: nginx:1.25@{D2}\nx: 1\n".encode()


def test_an_entry_behind_a_key_written_twice_is_left_alone_as_ambiguous() -> None:
    read = find(b"images:\n  - name: web\n    newTag: '1.0'\nresources: [a.yaml]\n"
                b"images: []\n", "kustomization.yaml", CONFIGS["pin"])
    assert read is not None
    assert not read[1].slots
    assert ["appears twice" in str(r["reason"]) for r in rows(read[1])] == [True]


def dockerfile_rows(text: str) -> list[tuple[int, str, str]]:
    read = find(text.encode(), "Dockerfile", CONFIGS["pin"])
    assert read is not None
    return [(int(str(r["line"])), str(r["value"]), str(r["status"])) for r in rows(read[1])]


def test_a_from_line_inside_a_heredoc_is_script_not_an_instruction() -> None:
    assert dockerfile_rows("FROM alpine:3.19\nRUN <<EOF\nFROM evil:1\nEOF\nFROM golang:1.22\n") == [
        (1, "alpine:3.19", "tracked"), (5, "golang:1.22", "tracked")]


def test_a_tab_stripping_heredoc_ends_at_its_indented_word() -> None:
    assert dockerfile_rows("FROM alpine:3.19\nCOPY <<-EOT /x\n\tFROM evil:1\n\tEOT\nFROM golang:1.22\n") == [
        (1, "alpine:3.19", "tracked"), (5, "golang:1.22", "tracked")]


def test_a_unicode_line_separator_does_not_start_a_dockerfile_line() -> None:
    assert dockerfile_rows("FROM alpine:3.19\n# note\u2028FROM evil:1\nRUN a\x85FROM evil:2\n") == [
        (1, "alpine:3.19", "tracked")]


def test_the_escape_directive_names_the_continuation_character() -> None:
    text = "# escape=`\nFROM alpine:3.19 `\n  AS build\nRUN dir c:\\\nFROM build\n"
    assert dockerfile_rows(text) == [(2, "alpine:3.19", "tracked"), (5, "build", "ignored")]


def test_comment_and_blank_lines_inside_a_continuation_do_not_end_it() -> None:
    assert dockerfile_rows("FROM \\\n# a comment\n\n  alpine:3.19 \\\n  AS build\n") == [
        (4, "alpine:3.19", "tracked")]


def test_a_reference_under_a_custom_tag_is_left_alone_with_the_tag_named() -> None:
    read = find(f"services:\n  web:\n    image: !custom 'nginx:1.25@{D1}'\n".encode(),
                "compose.yaml", CONFIGS["pin"])
    assert read is not None and not read[1].slots
    assert [r["reason"] for r in rows(read[1])] == [
        "the value carries the tag !custom; tagsync writes only strings"]


def test_a_split_digest_under_a_binary_tag_is_left_alone() -> None:
    read = find(b"image:\n  repository: nginx\n  tag: '1.25'\n  digest: !!binary aGVsbG8=\n",
                "values.yaml", CONFIGS["pin"])
    assert read is not None and not read[1].slots
    assert "!!binary" in str(rows(read[1])[0]["reason"])


def test_a_catalog_digest_under_a_custom_tag_is_left_alone() -> None:
    text = b'images:\n  - name: python\n    tags:\n      - ["3.6", !custom "ca7b9f52b6c2"]\n'
    read = find(text, "images.yml", LABLUP)
    assert read is not None and not read[1].slots
    assert "!custom" in str(rows(read[1])[0]["reason"])


def test_a_digest_is_inserted_after_an_entry_ending_in_a_block_scalar() -> None:
    text = "images:\n  - name: web\n    newTag: '1.0'\n    note: |\n      a\n\nresources: [a]\n"
    out = edit_every_slot(text, "kustomization.yaml").decode()
    assert out == text.replace("\nresources", f"\n    digest: {D2}\nresources")


def test_refs_over_a_folder_skips_a_named_pipe_instead_of_waiting_on_it(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "Dockerfile")
    (tmp_path / "values.yaml").write_text(f"image: nginx:1.25@{D1}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["refs", str(tmp_path), "--json"]) == 0
    assert [r["file"] for r in json.loads(out.getvalue())] == [str(tmp_path / "values.yaml")]


def test_a_digest_field_holding_a_list_is_left_alone_not_inserted_again() -> None:
    read = find(b"image:\n  repository: nginx\n  tag: '1.25'\n  digest: [x]\n", "values.yaml",
                CONFIGS["pin"])
    assert read is not None and not read[1].slots
    assert [r["reason"] for r in rows(read[1])] == ["digest is not a single value"]


def test_a_digest_field_that_is_an_alias_is_left_alone_as_shared() -> None:
    read = find(f"d: &d {D1}\nimage:\n  repository: nginx\n  tag: '1.25'\n  digest: *d\n".encode(),
                "values.yaml", CONFIGS["pin"])
    assert read is not None and not read[1].slots
    assert "shared through anchor &d" in str(rows(read[1])[0]["reason"])
