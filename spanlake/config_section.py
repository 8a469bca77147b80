"""One way to read a section of the config file: into its package's frozen dataclass, or refuse it.

Every section (`scoring:`, `runs:`, `pricing:`, `retention:` ...) goes through `parse_section`
when the settings load (settings.py), so a typo or a wrong type stops `spanlake serve` before it
opens the store, with a message that names the key as the user wrote it. The dataclass is the
one declaration of the section: its fields are the keys, their annotations the types, their
defaults the defaults. Range checks stay in each dataclass's `validate()`.

This module imports nothing of spanlake, so every package's config can use it without a loop.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it as the user wrote it."""


def parse_section(raw: Any, cls: type[T], where: str, error: type[Exception] = SettingsError) -> T:
    """`raw` (a mapping from YAML, or None for an absent section) as `cls`.

    Unknown keys, missing required keys and values of the wrong type raise `error` naming
    `where.key`. Numbers are exact: a whole number is refused where true/false is expected and
    2.5 where a whole number is; a whole number is accepted where a number is (as a float).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise error(f"{where}: expected a mapping of keys, got {_shown(raw)}")
    declared = {f.name: f for f in fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(str(key) for key in raw if key not in declared)
    if unknown:
        raise error(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(declared))}")
    missing = [name for name, f in declared.items()
               if name not in raw and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise error(f"{where}.{missing[0]}: required")
    hints = get_type_hints(cls)
    return cls(**{key: _convert(value, hints[key], f"{where}.{key}", error) for key, value in raw.items()})


def _convert(value: Any, hint: Any, where: str, error: type[Exception]) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # only `X | None` is declared
        return _convert(value, inner, where, error)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise error(f"{where}: expected true or false, got {_shown(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise error(f"{where}: expected a whole number, got {_shown(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise error(f"{where}: expected a number, got {_shown(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise error(f"{where}: expected a string, got {_shown(value)}")
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise error(f"{where}: expected a mapping, got {_shown(value)}")
        value_hint = args[1] if args else Any
        return {str(k): _convert(v, value_hint, f"{where}.{k}", error) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise error(f"{where}: expected a list, got {_shown(value)}")
        return tuple(_convert(v, args[0], f"{where}[{i}]", error) for i, v in enumerate(value))
    if isinstance(hint, type) and is_dataclass(hint):
        return parse_section(value, hint, where, error)
    raise TypeError(f"parse_section cannot read a field of type {hint!r} ({where})")


def _shown(value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return "a mapping" if isinstance(value, Mapping) else "a list"
    return repr(value)
