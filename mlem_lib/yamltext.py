"""Block-style YAML for JSON-like data, written without importing PyYAML.

A ``.mlem`` file is written once per save; importing PyYAML only to write it costs more
than writing it (15 ms of a cold save). What is written here is plain data (what
``model_dump(mode="json")`` returns: dicts with string keys, lists, strings, ints,
floats, bools and None), in PyYAML's own block layout: ``key: value``, nested mappings
indented by two spaces, list items ``- `` at their key's indent. A string is written
bare only when no YAML 1.1 loader can read it as anything else; otherwise it is
double-quoted with escapes for everything a YAML reader would not keep as is. Floats
keep every digit (``repr``), with YAML's ``.nan`` and ``.inf`` spellings.

Example:
    >>> print(dump({"type": "dataframe", "columns": ["a b", "yes"], "shape": [None, 4],
    ...             "ratio": 1e-05, "empty": {}}), end="")
    type: dataframe
    columns:
    - a b
    - "yes"
    shape:
    - null
    - 4
    ratio: 1.0e-05
    empty: {}
"""

from __future__ import annotations

import math
import re
from typing import Any

# starts with a letter, digit or underscore (never .inf, ~, - or a YAML indicator) and
# holds only characters that are plain everywhere in block context
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+()\-]*(?: [A-Za-z0-9_./+()\-]+)*\Z")
# words YAML 1.1 reads as booleans or null, whatever their case
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}
# what a YAML 1.1 (PyYAML) or 1.2 (core schema) reader takes for a number or a date
_NUMBER_OR_DATE = re.compile(r"""
    [-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?0x[0-9a-fA-F_]+ | [-+]?[0-9][0-9_]*
  | [-+]?(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][-+]?[0-9]+)?
  | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*
""", re.VERBOSE)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0",
            "\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P", "\ufeff": "\\uFEFF"}


def _printable(ch: str) -> bool:
    """YAML 1.1's printable set, less the characters that have a named escape."""
    code = ord(ch)
    return (0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF) and ch not in _ESCAPES


def scalar(value: Any) -> str:
    """One scalar as YAML text.

    Example:
        >>> [scalar(v) for v in (None, True, 3, 0.5, float("-inf"), "on", "x: y", "1.0")]
        ['null', 'true', '3', '0.5', '-.inf', '"on"', '"x: y"', '"1.0"']
    """
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "." not in text and "e" in text:  # YAML 1.1 floats need the dot: 1.0e-05
            text = text.replace("e", ".0e", 1)
        return text
    if isinstance(value, str):
        if (_PLAIN.match(value) and value.lower() not in _RESERVED
                and not (value[0].isdigit() and _NUMBER_OR_DATE.fullmatch(value))):
            return value
        return _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML: expected JSON-like data")


def _quoted(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _printable(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02X}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(f"\\U{ord(ch):08X}")
    out.append('"')
    return "".join(out)


def _lines(value: Any, indent: str, out: list[str]) -> None:
    """Append the block lines of a mapping or a non-empty list at ``indent``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mapping keys must be strings, got {type(key).__name__}")
            head = f"{indent}{scalar(key)}:"
            if isinstance(item, dict) and item:
                out.append(head)
                _lines(item, indent + "  ", out)
            elif isinstance(item, list) and item:
                out.append(head)
                _lines(item, indent, out)  # PyYAML's layout: "- " at the key's indent
            else:
                out.append(f"{head} {_inline(item)}")
        return
    for item in value:
        if isinstance(item, dict) and item:
            nested: list[str] = []
            _lines(item, indent + "  ", nested)
            nested[0] = f"{indent}- {nested[0][len(indent) + 2:]}"
            out.extend(nested)
        elif isinstance(item, list) and item:
            nested = []
            _lines(item, indent + "  ", nested)
            nested[0] = f"{indent}- {nested[0][len(indent) + 2:]}"
            out.extend(nested)
        else:
            out.append(f"{indent}- {_inline(item)}")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def dump(data: Any) -> str:
    """The YAML document for ``data`` (a dict, list or scalar of JSON-like values).

    Raises:
        TypeError: a value that is not JSON-like (a set, bytes, an object).
    """
    if isinstance(data, dict | list) and data:
        out: list[str] = []
        _lines(data, "", out)
        return "\n".join(out) + "\n"
    return _inline(data) + "\n"
