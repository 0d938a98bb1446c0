"""AWS's length, pattern, enum and range rules, read from botocore's service models.

Deploy checks the requests it is about to make against the same models AWS's services enforce,
before the first write, so an input AWS would refuse (a 300-character schedule expression, a tag
value with `#`) fails with exit 2 instead of after half the resources exist. The rules are not
written by hand: they are whatever the installed botocore's models say.

AWS's patterns are Java regular expressions matched whole; the `\\p{L}`, `\\p{N}` and `\\p{Z}`
classes they use are translated to Python's `re`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_CLASSES = {"L": r"[^\W\d_]", "N": r"\d", "Z": r"[^\S\t\n\r\f\v]"}
_PROPERTY = re.compile(r"\\p\{([LNZ])\}")


def translate(pattern: str) -> str | None:
    """A Java pattern as a Python one; None when it uses what this cannot translate."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c != "[":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(pattern) and pattern[j] != "]":
            j += 2 if pattern[j] == "\\" else 1
        body = pattern[i + 1:j]
        props = _PROPERTY.findall(body)
        if props:
            if body.startswith("^"):
                return None
            rest = _PROPERTY.sub("", body)
            parts = ([f"[{rest}]"] if rest else []) + [_CLASSES[p] for p in props]
            out.append("(?:" + "|".join(parts) + ")")
        else:
            out.append(pattern[i:j + 1])
        i = j + 1
    text = "".join(out)
    if "\\p{" in text:
        return None
    try:
        re.compile(text)
    except re.error:
        return None
    return text


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    text = translate(pattern)
    return re.compile(text) if text is not None else None


@cache
def _model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _size(meta: dict[str, Any], size: int, where: str, unit: str) -> list[str]:
    out = []
    if "min" in meta and size < meta["min"]:
        out.append(f"{where}: {size} {unit}, AWS requires at least {meta['min']}")
    if "max" in meta and size > meta["max"]:
        out.append(f"{where}: {size} {unit}, AWS allows at most {meta['max']}")
    return out


def check(shape: Any, value: Any, where: str) -> list[str]:
    """What `value` breaks of `shape`'s rules (lengths, patterns, enums, ranges, required members)."""
    meta, kind = shape.metadata, shape.type_name
    out: list[str] = []
    if kind == "structure" and isinstance(value, dict):
        out += [f"{where}: {name} is required" for name in shape.required_members if name not in value]
        for name, item in value.items():
            if name in shape.members:
                out += check(shape.members[name], item, f"{where}.{name}")
    elif kind == "list" and isinstance(value, list):
        out += _size(meta, len(value), where, "items")
        for i, item in enumerate(value):
            out += check(shape.member, item, f"{where}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        out += _size(meta, len(value), where, "entries")
        for key, item in value.items():
            out += check(shape.key, key, f"{where} key {key!r}")
            out += check(shape.value, item, f"{where}[{key!r}]")
    elif kind == "string" and isinstance(value, str):
        out += _size(meta, len(value), where, "characters")
        if shape.enum and value not in shape.enum:
            out.append(f"{where}: {value!r} is not one of {', '.join(shape.enum)}")
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            shown = value if len(value) <= 60 else value[:57] + "..."
            out.append(f"{where}: {shown!r} does not match AWS's pattern {pattern}")
    elif kind in ("integer", "long") and isinstance(value, int):
        if "min" in meta and value < meta["min"]:
            out.append(f"{where}: {value}, AWS requires at least {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.append(f"{where}: {value}, AWS allows at most {meta['max']}")
    return out


def violations(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """What AWS would refuse in this request, by its model, as `service Operation.Member: why`."""
    shape = _model(service).operation_model(operation).input_shape
    return check(shape, params, f"{service} {operation}") if shape is not None else []
