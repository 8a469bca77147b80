"""Shape-checked readers for the values of a parsed OTLP/JSON document.

Each reader takes what orjson produced for one field and returns the proto3 value, treating
absent/null as the proto3 default, or raises Bad with the field's path and what was expected.
Callers on the hot path check the common type inline and call these only for the rest.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from spanlake.ingest.spanrows import INT64_MAX

UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)

# snake_case -> lowerCamelCase for every multi-word OTLP trace field (proto3 JSON accepts both).
CAMEL = {
    snake: camel
    for camel in (
        "resourceSpans scopeSpans schemaUrl traceId spanId parentSpanId traceState "
        "startTimeUnixNano endTimeUnixNano timeUnixNano droppedAttributesCount "
        "droppedEventsCount droppedLinksCount"
    ).split()
    for snake in ["".join("_" + c.lower() if c.isupper() else c for c in camel)]
}


class Bad(Exception):
    """A shape error at `path` (relative); callers up the walk prefix their part of the path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem


def camelize(d: dict) -> dict:
    """The same object with snake_case field names renamed to lowerCamelCase."""
    return {CAMEL.get(k, k): v for k, v in d.items()}


def either(d: dict, camel: str, snake: str) -> Any:
    """A field by either name, where renaming the whole object is not worth it."""
    value = d.get(camel)
    return d.get(snake) if value is None else value


def obj(value: Any, path: str) -> dict:
    if value is None:
        return {}
    if type(value) is not dict:
        raise Bad(path, f"expected an object, got {show(value)}")
    return value


def array(value: Any, path: str) -> list:
    if value is None:
        return []
    if type(value) is not list:
        raise Bad(path, f"expected a list, got {show(value)}")
    return value


def text(value: Any, path: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise Bad(path, f"expected a string, got {show(value)}")
    return value


def integer(value: Any, path: str, low: int, high: int, what: str) -> int:
    """Integer from a JSON number or decimal string (proto3 JSON writes 64-bit ints as strings)."""
    if value is None:
        return 0
    kind = type(value)
    if kind is int:
        number = value
    elif kind is str and is_decimal(value):
        number = int(value)
    elif kind is float and value.is_integer():
        number = int(value)
    else:
        raise Bad(path, f"expected {what}, got {show(value)}")
    if not low <= number <= high:
        raise Bad(path, f"{number} is out of range for {what}")
    return number


def is_decimal(s: str) -> bool:
    """An optionally signed decimal integer, as int() reads it."""
    s = s.strip()
    return (s[1:] if s[:1] in ("+", "-") else s).isdecimal()


def uint(value: Any, path: str) -> int:
    """uint64 fields: times, counts, flags."""
    kind = type(value)
    if kind is int:
        if 0 <= value <= UINT64_MAX:
            return value  # the common cases first, without the generic checks
    elif kind is str and value.isascii() and value.isdigit():
        number = int(value)
        if number <= UINT64_MAX:
            return number
    return integer(value, path, 0, UINT64_MAX, "an unsigned 64-bit integer")


def int64(value: Any, path: str) -> int:
    """AnyValue intValue."""
    kind = type(value)
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
    elif kind is str and value.isascii() and value.isdigit():
        number = int(value)
        if number <= INT64_MAX:
            return number
    return integer(value, path, INT64_MIN, INT64_MAX, "a signed 64-bit integer")


def double(value: Any, path: str) -> float:
    """Number, or a string: a decimal, "NaN", "Infinity" or "-Infinity" (proto3 JSON)."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int or kind is str:
        try:
            return float(value)
        except (ValueError, OverflowError):
            pass
    raise Bad(path, f"expected a number, got {show(value)}")


def base64_bytes(value: Any, path: str) -> str:
    """Base64 in either alphabet, padded or not (proto3 JSON), normalised to standard padded."""
    if type(value) is not str:
        raise Bad(path, f"expected a base64 string, got {show(value)}")
    standard = value.replace("-", "+").replace("_", "/").rstrip("=")
    standard += "=" * (-len(standard) % 4)
    try:
        raw = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        raise Bad(path, f"expected a base64 string, got {show(value)}") from None
    return base64.b64encode(raw).decode("ascii")


def enum(value: Any, names: dict[str, str], by_number: tuple[str, ...], path: str) -> str:
    """Enum as a number (OTLP/JSON) or, leniently, its name; unknown numbers mean unset."""
    if value is None:
        return by_number[0]
    if type(value) is int:
        return by_number[value] if 0 <= value < len(by_number) else by_number[0]
    if type(value) is str:
        name = names.get(value.upper())
        if name is not None:
            return name
        if value.isdecimal():
            return enum(int(value), names, by_number, path)
    raise Bad(path, f"expected one of {', '.join(by_number)} (or its number), got {show(value)}")


def show(value: Any) -> str:
    """A short rendering of an offending value for error messages."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
