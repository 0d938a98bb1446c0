"""Config mistakes in words: every validation error pydantic finds, said the way a person reads
it (`unknown key pin_digest in catalog "deploy" (did you mean pin_digests?)`), each with its line
and column, a list item by its name instead of its index.

Only `config.parse_config` calls it, when a config does not validate.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from tagsync.errors import ConfigError


def in_words(exc: ValidationError, model: type[BaseModel], data: Any, root: yaml.Node | None,
             file: str) -> ConfigError:
    """One ConfigError listing every mistake, the first line's position as its own."""
    found = sorted((_one(e, model, data, root) for e in exc.errors()),
                   key=lambda f: (f[0] is None, f[0] or 0, f[1] or 0))
    line, column, first = found[0]
    rest = [f"{file}:{ln}:{col}: {text}" if ln is not None else f"{file}: {text}"
            for ln, col, text in found[1:_SHOWN]]
    if len(found) > _SHOWN:
        rest.append(f"(and {len(found) - _SHOWN} more)")
    return ConfigError("\n".join([first, *rest]), file=file, line=line, column=column)


def line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    """Where the value at a key path starts (1-based line and column), as far as the path leads."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


# list items named by a key of theirs: `catalog "deploy"`, not `catalogs.0`
_OWNERS = {"catalogs": ("catalog", "name"), "registries": ("registry", "host")}
_PRINTABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\[\]-]{0,99}")
_SHOWN = 50  # a config with thousands of mistakes is not a thousand-line message


def _model_in(annotation: Any) -> Any:
    """The pydantic model a field holds (itself, in a list, a dict's values or an Optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _one(error: Any, model: Any, data: Any, root: yaml.Node | None
         ) -> tuple[int | None, int | None, str]:
    """One validation error as a person reads it, with its line and column: `unknown key
    pin_digest in catalog "deploy" (did you mean pin_digests?)`; list items by their name."""
    loc = tuple(error["loc"])
    key = getattr((error.get("ctx") or {}).get("error"), "key", None)
    if isinstance(key, str):
        loc = (*loc, key)  # config.FieldError: a mapping's check whose fault is one key's
    line, column = line_of(root, loc)
    owner: list[str] = []
    keys: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int) and keys and keys[-1] in _OWNERS:
            noun, name_key = _OWNERS[keys[-1]]
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get(name_key) if isinstance(item, dict) else None
            named = isinstance(name, str) and _PRINTABLE_NAME.fullmatch(name)
            owner = [*owner, *keys[:-1], f'{noun} "{name}"' if named else f"{noun} {part + 1}"
                     + (" (unnamed)" if not name else "")]
            keys, node = [], item
            continue
        field = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        keys.append(str(part))
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node)
            else None)
        if field is not None:
            model = _model_in(field.annotation)
        elif not isinstance(part, int) and model is not None and part not in model.model_fields:
            model = model if error["type"] == "extra_forbidden" else None
    where = " ".join(owner) if owner else ""
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden" and keys:
        unknown = keys[-1]
        parent = ".".join(keys[:-1])
        place = " in ".join(p for p in (parent and f"`{parent}`", where) if p)
        text = f"unknown key {unknown}" + (f" in {place}" if place else "")
        names = list(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(unknown, names, n=1, cutoff=0.6)
        return line, column, text + (f" (did you mean {close[0]}?)" if close else "")
    if error["type"] == "missing" and keys:
        place = ".".join(keys[:-1])
        return line, column, (f"{where}: " if where else "") + (
            f"`{place}` " if place else "") + f"needs `{keys[-1]}`"
    subject = ": ".join(p for p in (where, ".".join(keys)) if p) or "(top level)"
    return line, column, f"{subject}: {msg}"
