"""The configuration reference (docs/config.md), generated from the pydantic models: every key,
its type, default and description, so the documentation cannot drift from what is accepted.

`python -m tagsync.reference_doc > docs/config.md` regenerates it; a test compares.
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import itertools
import json
import textwrap
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from tagsync.config import Config

HEADER = """\
# Configuration reference (`tagsync.yaml`)

Generated from tagsync's own models by `python -m tagsync.reference_doc`; a test fails when a key
is undocumented or this file is stale. Secrets are always references (`env:NAME`, `file:PATH`,
`aws-secretsmanager:ID[#key]`, `aws-ssm:NAME`), never values.
"""


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "text", int: "integer", float: "number", bool: "`true` \\| `false`"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple, dict)) and not value:
        return ""
    return f"`{json.dumps(list(value))}`" if isinstance(value, (list, tuple)) else f"`{value}`"


def models(root: type[BaseModel] = Config) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from the root, with the key paths where it appears, in order."""
    found: dict[type[BaseModel], list[str]] = {root: [""]}
    queue: list[tuple[type[BaseModel], str]] = [(root, "")]
    while queue:
        model, prefix = queue.pop(0)
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            for inner, suffix in _nested(field.annotation, f"{prefix}{name}"):
                if inner not in found:
                    found[inner] = []
                    queue.append((inner, suffix + "."))
                if suffix not in found[inner]:
                    found[inner].append(suffix)
    return found


def _nested(annotation: Any, path: str) -> list[tuple[type[BaseModel], str]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, path)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and args:
        return _nested(args[0], f"{path}[]")
    if origin is dict and args:
        return _nested(args[1], f"{path}.<name>")
    if origin is typing.Annotated:
        return _nested(args[0], path)
    return [x for a in args for x in _nested(a, path)]


@functools.cache
def descriptions(model: type[BaseModel]) -> dict[str, str]:
    """The docstring under each field of `model` (and of its bases), read from the source.

    Pydantic can do this itself (`use_attribute_docstrings`), but it parses the module's source
    at every import of the class, on every cold start; the reference is the only reader.
    """
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                found[node.target.id] = inspect.cleandoc(after.value.value)
    return found


def undocumented() -> list[str]:
    return [f"{m.__name__}.{n}" for m in models() for n, f in m.model_fields.items()
            if not f.exclude and not (f.description or descriptions(m).get(n))]


def reference() -> str:
    out = [HEADER]
    for model, paths in models().items():
        where = ", ".join(f"`{p}`" for p in paths if p) or "the top level"
        out.append(f"\n## {where}\n")
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc and model is not Config:
            out.append(f"{doc}\n")
        out.append("| key | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            text = field.description or descriptions(model).get(name, "")
            text = text.replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{name}` | {type_name(field.annotation)} | {default_text(field)} | {text} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
