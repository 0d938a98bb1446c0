"""Reading `tagsync.yaml` as YAML, as hardened as reading a catalog: a config is input too (a
pull request can change it), so every way YAML can fail is a `ConfigError` at a line and column,
never a traceback or a process that parses until it is killed.

- a control character (a NUL) or nesting deeper than `MAX_DEPTH`: line:col;
- a key twice in one mapping (`run:` twice): refused, naming both lines, since YAML readers
  disagree on which one wins;
- over `MAX_CHARS`, or aliases that expand past `MAX_NODES` (a "billion laughs"): refused with
  the limit, before the work.

Messages name keys and positions, never a value: a value may be a secret written where its
reference belongs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tagsync.errors import ConfigError

MAX_CHARS = 1 << 20  # 1 MiB: a config of a thousand catalogs is a tenth of it
MAX_DEPTH = 100  # collections nested deeper: no config is, and the reader recurses
MAX_NODES = 1_000_000  # nodes the document holds once its aliases are expanded


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, counting how deep the composer is."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self._file = file
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ConfigError(f"collections nested deeper than {MAX_DEPTH} levels",
                                  file=self._file, line=mark.line + 1, column=mark.column + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_large(size: str, file: str) -> ConfigError:
    return ConfigError(f"the config is {size}, over the {MAX_CHARS}-character limit tagsync "
                       "reads; is this the right file?", file=file)


def read_text(path: Path, file: str) -> str:
    """A config file's text, reading no more than the limit allows (UTF-8: 4 bytes a
    character at most), so that a huge file is refused before it fills memory."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(4 * MAX_CHARS + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}; `tagsync init` writes a starting "
                          "one for a checkout", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=file) from None
    if len(raw) > 4 * MAX_CHARS:
        raise _too_large(f"over {4 * MAX_CHARS} bytes", file)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config is not UTF-8", file=file) from None


def load_yaml(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """(the composed node tree, for error positions; the Python data) of a config's text."""
    if len(text) > MAX_CHARS:
        raise _too_large(f"{len(text)} characters", file)
    loader: _Loader | None = None
    try:
        loader = _Loader(text, file)  # the reader checks every character here
        root = loader.get_single_node()
        if root is not None:
            _check_tree(root, file)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            str(exc.problem or "malformed YAML"), file=file,
            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:  # a NUL or another control character: say where
        before = text[: exc.position]
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(f"character #x{char:04x} is not allowed in YAML", file=file,
                          line=before.count("\n") + 1,
                          column=exc.position - (before.rfind("\n") + 1) + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not readable as YAML ({type(exc).__name__})", file=file) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps the composer far from it
        raise ConfigError(f"collections nested deeper than {MAX_DEPTH} levels",
                          file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


def _check_tree(root: yaml.Node, file: str) -> None:
    """Duplicate keys, and the size of the document with its aliases expanded."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:  # depth is bounded by MAX_DEPTH
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # an alias cycle (a recursive anchor) counts once
        total = 1
        if isinstance(node, yaml.MappingNode):
            _no_duplicates(node, file)
            for key, value in node.value:
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        if total > MAX_NODES:
            raise ConfigError(f"the config expands to over {MAX_NODES} values through its "
                              "aliases; refused", file=file, line=node.start_mark.line + 1,
                              column=node.start_mark.column + 1)
        sizes[id(node)] = total
        return total

    size(root)


def _no_duplicates(node: yaml.MappingNode, file: str) -> None:
    first: dict[str, yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
            continue
        earlier = first.setdefault(key.value, key)
        if earlier is not key:
            shown = key.value if key.value.isprintable() and len(key.value) <= 60 else "a key"
            raise ConfigError(
                f"key {shown!r} appears twice in one mapping (lines "
                f"{earlier.start_mark.line + 1} and {key.start_mark.line + 1}); keep one",
                file=file, line=key.start_mark.line + 1, column=key.start_mark.column + 1)
