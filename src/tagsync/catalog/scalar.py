"""Write a string as a YAML scalar that every reader takes back as exactly that string.

"Every reader" means YAML 1.1 (PyYAML, Go yaml.v2, most tools: `yes`, `on`, `1_000`, `1:20`,
`2001-12-14` are not strings there) and YAML 1.2 core (`0o17`, `.inf`). A plain scalar is kept
plain only when both schemas resolve it to a string and the parser reads it back unchanged in
its context (flow collections forbid `,[]{}` and, for PyYAML, any `:`).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import yaml

# YAML 1.1 implicit types, as the 1.1 type repository defines them (a superset of PyYAML's).
_YAML11_NON_STRING = (
    r"""^(?:
      y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    | ~|null|Null|NULL
    | [-+]?0b[0-1_]+
    | [-+]?0[0-7_]+
    | [-+]?(?:0|[1-9][0-9_]*)
    | [-+]?0x[0-9a-fA-F_]+
    | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    | [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    | [-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)
    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    | [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    | [0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]
      :[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)?
    | <<|=
    )$"""
)

# YAML 1.2 core schema.
_YAML12_NON_STRING = (
    r"""^(?:
      null|Null|NULL|~
    | true|True|TRUE|false|False|FALSE
    | [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
    | [-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
    )$"""
)

_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_FLOW_UNSAFE = set(",[]{}:")
_PRINTABLE_ASCII = re.compile("^[\t\x20-\x7e]*$")
# NEL, LS and PS are line breaks to YAML 1.1 readers: never leave them raw outside "…".
_LINE_BREAKS = re.compile("[\n\r\x85\u2028\u2029]")


# Compiled when a value is first written, not at import: a run that changes nothing never needs
# them, and the wide character class alone took ~7 ms of a cold start to compile.
@cache
def _pattern(name: str) -> re.Pattern[str]:
    if name == "printable":  # what YAML may hold unescaped (the 1.1/1.2 printable set)
        return re.compile("^[\t\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
    return re.compile({"1.1": _YAML11_NON_STRING, "1.2": _YAML12_NON_STRING}[name], re.VERBOSE)


def _printable(value: str) -> bool:
    if value.isascii():
        return _PRINTABLE_ASCII.match(value) is not None
    return _pattern("printable").match(value) is not None


def resolves_to_string(value: str) -> bool:
    """True when neither a YAML 1.1 nor a 1.2 reader would type this plain scalar."""
    return not (_pattern("1.1").match(value) or _pattern("1.2").match(value))


def _plain_is_safe(value: str, in_flow: bool) -> bool:
    if not value or value != value.strip(" \t") or _LINE_BREAKS.search(value):
        return False
    if not _printable(value) or "\t" in value or "\ufeff" in value:
        return False
    if value[0] in _INDICATORS:
        return False
    if ": " in value or value.endswith(":") or " #" in value:
        return False
    if in_flow and any(c in _FLOW_UNSAFE for c in value):
        return False
    if value in ("---", "...") or value.startswith(("--- ", "... ")):
        return False
    if not resolves_to_string(value):
        return False
    return _reads_back(value, in_flow)


@lru_cache(maxsize=4096)
def _reads_back(candidate: str, in_flow: bool) -> bool:
    """The last word: does PyYAML read this plain text back as the same string?"""
    doc = f"[{candidate}]" if in_flow else f"k: {candidate}\n"
    try:
        data = yaml.safe_load(doc)
    except yaml.YAMLError:
        return False
    got = data[0] if in_flow and isinstance(data, list) and len(data) == 1 else None
    if not in_flow:
        got = data.get("k") if isinstance(data, dict) and len(data) == 1 else None
    return isinstance(got, str) and got == candidate


def single_quoted(value: str) -> str | None:
    """A single-quoted scalar, or None when the style cannot hold the value on one line."""
    if _LINE_BREAKS.search(value) or not _printable(value) or "\t" in value:
        return None
    return "'" + value.replace("'", "''") + "'"


_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    "\x85": "\\N",
    "\xa0": "\\_",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def double_quoted(value: str) -> str:
    out = ['"']
    for ch in value:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch == "\ufeff" or not _printable(ch):
            code = ord(ch)
            if code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def render_scalar(value: str, old_style: str, in_flow: bool) -> str:
    """Text for `value` replacing a scalar written in `old_style` ("" plain, "'" or '"')."""
    if old_style == "'":
        quoted = single_quoted(value)
        if quoted is not None:
            return quoted
        return double_quoted(value)
    if old_style == '"':
        return double_quoted(value)
    if _plain_is_safe(value, in_flow):
        return value
    return double_quoted(value)
