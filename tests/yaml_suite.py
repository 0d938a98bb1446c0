"""The edit engine's adversary: the YAML test suite's valid inputs, every addressable scalar set to
values that are hard to write, each result judged by independent readers.

A result is *right* when every reader that reads the original reads the output with the edited
scalar as exactly the new string (typed `str`) and every other node as before (same structure,
same resolved types and values), and no byte outside the edited node changed. A refusal is a
typed `TagsyncError`; anything else raised is a traceback. The readers: PyYAML pure and with
libyaml (YAML 1.1), ruamel.yaml pure (YAML 1.2), and eemeli's `yaml` from npm under Node (1.2
and 1.1), read through their node trees (compose), so merge keys, duplicate keys and key types
need no special handling. Shared by tests/test_catalog_yaml_suite.py and bench/yaml_suite.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tagsync.catalog import Edit, apply_edits
from tagsync.catalog.document import Mapping, Node, Scalar, Sequence, parse_documents
from tagsync.errors import TagsyncError

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT.parent / "shared" / "corpus" / "yaml-test-suite"
NODE_YAML = ROOT / ".cache" / "npm" / "node_modules" / "yaml"

HARD_VALUES = ("1.10", "yes", "null", "~", ": x", "- y", "#c", "a #b", "it's \"q\"", "a\nb",
               " lead", "", "caf\u00e9 \U0001f600", "sha256:" + "0123456789abcdef" * 4)
STR = "tag:yaml.org,2002:str"

Canon = Any  # nested tuples: ("s", type, value) | ("seq", (...)) | ("map", ((k, v), ...))
IndexPath = tuple[int, ...]  # document, then item index or 2*pair+1 for a mapping value


CORPUS = ROOT.parent / "shared" / "corpus"


def real_files() -> list[tuple[str, str]]:
    """(name, text) of the real YAML files of ../shared/corpus: catalogs, manifests, values."""
    files = [*CORPUS.glob("*.yml"), *(CORPUS / "manifests").glob("*.y*ml")]
    return [(p.name, p.read_bytes().decode("utf-8")) for p in sorted(files)]


def valid_cases() -> list[tuple[str, str]]:
    """(case id, input text) of every valid case, in a stable order."""
    cases = []
    for inp in sorted(SUITE.rglob("in.yaml")):
        if (inp.parent / "error").exists():
            continue
        cases.append((str(inp.parent.relative_to(SUITE)), inp.read_bytes().decode("utf-8")))
    return cases


@dataclass(frozen=True)
class Target:
    doc: int
    path: tuple[str | int, ...]
    index: IndexPath
    lo: int  # bytes before this offset must not change (the key's end for a mapping value)
    hi: int  # nor bytes from this offset on (the node's end)


def targets(text: str) -> list[Target]:
    """Every scalar an edit can address: reached by string keys and indexes, not through an alias."""
    try:
        docs = parse_documents(text)
    except TagsyncError:
        return []
    out: list[Target] = []

    def walk(d: int, node: Node, path: tuple[str | int, ...], index: IndexPath, lo: int) -> None:
        if isinstance(node, Scalar):
            out.append(Target(d, path, index, lo, node.end))
        elif isinstance(node, Sequence):
            for i, item in enumerate(node.items):
                walk(d, item, (*path, i), (*index, i), item.start)
        elif isinstance(node, Mapping):
            keys = [k.value for k, _ in node.pairs if isinstance(k, Scalar)]
            for i, (k, v) in enumerate(node.pairs):
                if isinstance(k, Scalar) and keys.count(k.value) == 1 and k.value != "<<":
                    walk(d, v, (*path, k.value), (*index, 2 * i + 1), k.end)

    for d, doc in enumerate(docs):
        if doc.root is not None:
            walk(d, doc.root, (), (d,), doc.root.start)
    return out


# --- readers: a node tree as plain tuples -------------------------------------------------


def _canon_node(node: Any, tag_of: Callable[[Any], str]) -> Canon:
    kind = type(node).__name__
    if kind == "ScalarNode":
        return ("s", tag_of(node), node.value)
    if kind == "SequenceNode":
        return ("seq", tuple(_canon_node(n, tag_of) for n in node.value))
    return ("map", tuple((_canon_node(k, tag_of), _canon_node(v, tag_of)) for k, v in node.value))


def _pyyaml(loader: Any) -> Callable[[str], Canon]:
    def read(text: str) -> Canon:
        return tuple(_canon_node(n, lambda x: str(x.tag))
                     for n in yaml.compose_all(text, Loader=loader))
    return read


def _ruamel(text: str) -> Canon:
    from ruamel.yaml import YAML

    with warnings.catch_warnings():  # a repeated anchor is legal YAML 1.2; ruamel warns
        warnings.simplefilter("ignore")
        docs = YAML(typ="safe", pure=True).compose_all(text)
        return tuple(_canon_node(n, lambda x: str(getattr(x.tag, "value", x.tag))) for n in docs)


def python_readers() -> dict[str, Callable[[str], Canon]]:
    readers = {"pyyaml": _pyyaml(yaml.SafeLoader), "ruamel-1.2": _ruamel}
    if hasattr(yaml, "CSafeLoader"):
        readers["pyyaml-libyaml"] = _pyyaml(yaml.CSafeLoader)
    return readers


_NODE_SCRIPT = r"""
const YAML = require(process.argv[1]);
const texts = JSON.parse(require("fs").readFileSync(0, "utf8"));
function canon(n) {
  if (n === null || n === undefined) return ["s", "null", "null"];
  if (YAML.isAlias(n)) return ["alias", n.source];
  if (YAML.isScalar(n)) {
    const v = n.value;
    const t = v === null ? "null" : v instanceof Date ? "date" : typeof v === "object"
      ? v.constructor.name : typeof v;
    return ["s", t, v instanceof Date ? v.toISOString() : String(v)];
  }
  if (YAML.isPair(n)) return ["map", [[canon(n.key), canon(n.value)]]];  // !!omap, !!pairs
  if (YAML.isSeq(n)) return ["seq", n.items.map(canon)];
  if (YAML.isMap(n)) return ["map", n.items.map(p => [canon(p.key), canon(p.value)])];
  return ["?", String(n)];
}
const out = texts.map(text => {
  const r = {};
  for (const version of ["1.2", "1.1"]) {
    try {
      const docs = YAML.parseAllDocuments(text, {version, uniqueKeys: false});
      if (!Array.isArray(docs) || docs.some(d => d.errors.length)) { r[version] = null; continue; }
      r[version] = docs.map(d => canon(d.contents));
    } catch (e) { r[version] = null; }
  }
  return r;
});
process.stdout.write(JSON.stringify(out));
"""


def node_available() -> bool:
    return shutil.which("node") is not None and (NODE_YAML / "package.json").exists()


def node_readers(texts: list[str]) -> list[dict[str, Canon]]:
    """eemeli's `yaml` (1.2 and 1.1 schemas) over many texts in one Node process."""
    done = subprocess.run([shutil.which("node") or "node", "-e", _NODE_SCRIPT, str(NODE_YAML)],
                          input=json.dumps(texts), capture_output=True, text=True, check=True,
                          timeout=600)
    answers = json.loads(done.stdout)
    return [{f"yaml-npm-{v}": _tuples(a[v]) for v in ("1.2", "1.1")} for a in answers]


def _tuples(x: Any) -> Any:
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


# --- judging ------------------------------------------------------------------------------


def _replace(tree: Canon, index: IndexPath, leaf: Canon) -> Canon:
    if not index:
        return leaf
    head, rest = index[0], index[1:]
    if tree[0] == "map":
        pairs = list(tree[1])
        k, v = pairs[head // 2]
        pairs[head // 2] = (k, _replace(v, rest, leaf))
        return ("map", tuple(pairs))
    if tree[0] == "seq":
        items = list(tree[1])
        items[head] = _replace(items[head], rest, leaf)
        return ("seq", tuple(items))
    docs = list(tree)  # the stream: a tuple of documents
    docs[head] = _replace(docs[head], rest, leaf)
    return tuple(docs)


def expected(before: Canon, index: IndexPath, value: str, reader: str) -> Canon | None:
    try:
        leaf = ("s", "string", value) if reader.startswith("yaml-npm") else ("s", STR, value)
        return _replace(before, index, leaf)
    except (IndexError, TypeError):  # the reader sees another structure: not comparable
        return None


@dataclass
class Outcome:
    case: str
    doc: int
    path: tuple[str | int, ...]
    value: str
    kind: str  # "right", "refused", "wrong", "traceback"
    detail: str = ""
    output: str | None = None


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    def of(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]


def edits(cases: list[tuple[str, str]], sample: int | None = None
          ) -> Iterator[tuple[str, str, Target, str]]:
    """(case, text, target, value); with `sample`, a deterministic share of 1 in `sample`."""
    for case, text in cases:
        for target in targets(text):
            for value in HARD_VALUES:
                if sample is not None:
                    key = f"{case}|{target.doc}|{target.path}|{value}".encode()
                    if int(hashlib.sha256(key).hexdigest()[:8], 16) % sample:
                        continue
                yield case, text, target, value


def _outside_changed(text: str, out: str, target: Target) -> bool:
    tail = len(text) - target.hi
    return not (out.startswith(text[:target.lo]) and out.endswith(text[target.hi:])
                and len(out) >= target.lo + tail)


def run(sample: int | None = None, use_node: bool = True,
        cases: list[tuple[str, str]] | None = None) -> Tally:
    """Every edit judged (of the suite's valid cases unless `cases` says otherwise); node's
    readers (one process for the lot) when asked and installed."""
    readers = python_readers()
    tally = Tally()
    before_cache: dict[str, dict[str, Canon | None]] = {}
    pending: list[tuple[Outcome, str, Target]] = []
    for case, text, target, value in edits(valid_cases() if cases is None else cases, sample):
        outcome = Outcome(case, target.doc, target.path, value, "right")
        tally.outcomes.append(outcome)
        try:
            out = apply_edits(text.encode(), [Edit(target.path, value, target.doc)]).decode()
        except TagsyncError as exc:
            outcome.kind, outcome.detail = "refused", str(exc)
            continue
        except Exception as exc:
            outcome.kind, outcome.detail = "traceback", f"{type(exc).__name__}: {exc}"
            continue
        outcome.output = out
        if _outside_changed(text, out, target):
            outcome.kind, outcome.detail = "wrong", "bytes outside the edited value changed"
            continue
        if case not in before_cache:
            before_cache[case] = {name: _read(read, text) for name, read in readers.items()}
        for name, read in readers.items():
            before = before_cache[case][name]
            if before is None:
                continue
            problem = _judge(name, before, _read(read, out), target.index, value)
            if problem:
                outcome.kind, outcome.detail = "wrong", problem
                break
        if outcome.kind == "right":
            pending.append((outcome, text, target))
    if use_node and node_available() and pending:
        texts = sorted({t for _, t, _ in pending} | {o.output or "" for o, _, _ in pending})
        seen = dict(zip(texts, node_readers(texts), strict=True))
        for outcome, text, target in pending:
            for name, before in seen[text].items():
                if before is None:
                    continue
                problem = _judge(name, before, seen[outcome.output or ""][name], target.index,
                                 outcome.value)
                if problem:
                    outcome.kind, outcome.detail = "wrong", problem
                    break
    return tally


def run_multi(use_node: bool = True) -> Tally:
    """One pass per case setting every addressable scalar at once (as a run edits a catalog),
    each to a hard value picked by its position; judged like single edits."""
    readers = python_readers()
    tally = Tally()
    pending: list[tuple[Outcome, str, list[tuple[Target, str]]]] = []
    for case, text in valid_cases():
        chosen = [(t, HARD_VALUES[(i + len(case)) % len(HARD_VALUES)])
                  for i, t in enumerate(targets(text))]
        if not chosen:
            continue
        outcome = Outcome(case, -1, (), f"{len(chosen)} values", "right")
        tally.outcomes.append(outcome)
        try:
            out = apply_edits(text.encode(), [Edit(t.path, v, t.doc) for t, v in chosen]).decode()
        except TagsyncError as exc:
            outcome.kind, outcome.detail = "refused", str(exc)
            continue
        except Exception as exc:
            outcome.kind, outcome.detail = "traceback", f"{type(exc).__name__}: {exc}"
            continue
        outcome.output = out
        for name, read in readers.items():
            problem = _judge_all(name, _read(read, text), _read(read, out), chosen)
            if problem:
                outcome.kind, outcome.detail = "wrong", problem
                break
        if outcome.kind == "right":
            pending.append((outcome, text, chosen))
    if use_node and node_available() and pending:
        texts = sorted({t for _, t, _ in pending} | {o.output or "" for o, _, _ in pending})
        seen = dict(zip(texts, node_readers(texts), strict=True))
        for outcome, text, chosen in pending:
            for name, before in seen[text].items():
                problem = _judge_all(name, before, seen[outcome.output or ""][name], chosen)
                if problem:
                    outcome.kind, outcome.detail = "wrong", problem
                    break
    return tally


def _judge_all(name: str, before: Canon | None, after: Canon | None,
               chosen: list[tuple[Target, str]]) -> str:
    if before is None:
        return ""
    if after is None:
        return f"{name} cannot read the output"
    want = before
    for target, value in chosen:
        want = expected(want, target.index, value, name)
        if want is None:
            return ""
    return "" if after == want else f"{name} reads something else"


def _read(read: Callable[[str], Canon], text: str) -> Canon | None:
    try:
        return read(text)
    except Exception:
        return None


def _judge(name: str, before: Canon, after: Canon | None, index: IndexPath, value: str) -> str:
    if after is None:
        return f"{name} cannot read the output"
    want = expected(before, index, value, name)
    if want is None:
        return ""  # this reader sees the original differently from ours: not comparable
    if after != want:
        return f"{name} reads something else"
    return ""


def report(tally: Tally, limit: int = 5) -> str:
    lines = [f"{len(tally.outcomes)} edits: {tally.count('right')} right, "
             f"{tally.count('refused')} refused, {tally.count('wrong')} wrong, "
             f"{tally.count('traceback')} tracebacks"]
    for o in (tally.of("traceback") + tally.of("wrong"))[:limit]:
        lines.append(f"  {o.kind} {o.case} doc {o.doc} {o.path} := {o.value!r}: {o.detail}\n"
                     f"    {o.output!r}")
    return "\n".join(lines)
