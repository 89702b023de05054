"""Typed YAML: a mapping checked against dataclasses, every problem reported at once.

    problems: list[str] = []
    cfg = build(Config, yaml.safe_load(text), "", problems)   # defaults for what is absent

Unknown keys, wrong types and values outside a field's `in_range(lo, hi)` each add one
line (`key.path: the value found ...; allowed: ...`); a field marked `{"secret": True}`
never has its value echoed. Field types: bool, int, float, str (non-empty), Literal[...],
X | None, tuple[X, ...] and list / list[X] (a YAML list), nested dataclasses. A value of
any other type is refused (a schema this validator cannot check lets nothing through).

This module exists twice, byte for byte: hydrus_motion/typed_yaml.py (the config) and
trainer/typed_yaml.py (RUN.yaml), vendored because the trainer package imports nothing
of hydrus_motion. Change both together; tests/test_typed_yaml.py keeps them identical.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal


def in_range(lo: float | None = None, hi: float | None = None, *,
             above: bool = False) -> dict[str, Any]:
    """Field metadata: the value must lie in [lo, hi] ((lo, hi] with `above`); None:
    unbounded on that side."""
    return {"range": (lo, hi, above)}


def build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{prefix or '(top level)'}: expected a mapping of keys, got "
                        f"{show(data)}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            problems.append(f"{prefix}{key}: unknown key; allowed keys here: "
                            f"{', '.join(fields)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        path = f"{prefix}{name}"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = build(hint, data[name], path + ".", problems)
            continue
        value, problem = check_value(data[name], hint, f.metadata.get("range"))
        if problem and f.metadata.get("secret"):  # never echo a secret back
            problems.append(f"{path}: (value hidden) is not allowed; allowed: "
                            f"{problem.rpartition('allowed: ')[2]}")
        elif problem:
            problems.append(f"{path}: {problem}")
        else:
            values[name] = value
    return cls(**values)


def check_value(value: Any, hint: Any, bounds: tuple | None) -> tuple[Any, str | None]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None, None
        (hint,) = [a for a in args if a is not type(None)]
        return check_value(value, hint, bounds)
    if (origin is tuple and args[1:] == (Ellipsis,)) or hint is list or origin is list:
        if not isinstance(value, (list, tuple)):  # a YAML list, of one item type if named
            return None, f"{show(value)} is not allowed; allowed: a list"
        items = []
        for n, item in enumerate(value):
            checked, problem = check_value(item, args[0], bounds) if args else (item, None)
            if problem:
                return None, f"item {n}: {problem}"
            items.append(checked)
        return (tuple(items) if origin is tuple else items), None
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            return None, f"{show(value)} is not allowed; allowed: {', '.join(map(str, allowed))}"
        return value, None
    if hint is bool:
        if not isinstance(value, bool):
            return None, f"{show(value)} is not allowed; allowed: true or false"
        return value, None
    if hint in (int, float):
        ok = isinstance(value, int) if hint is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            return None, f"{show(value)} is not allowed; allowed: {describe(hint, bounds)}"
        lo, hi, above = _bounds(bounds)
        low = lo is not None and (value <= lo if above else value < lo)
        if low or (hi is not None and value > hi):
            return None, f"{show(value)} is out of range; allowed: {describe(hint, bounds)}"
        return hint(value), None
    if hint is str:
        if not isinstance(value, str) or not value:
            return None, f"{show(value)} is not allowed; allowed: a non-empty string"
        return value, None
    return None, f"cannot be checked (type {hint!r} is unknown to the validator)"


def describe(hint: type, bounds: tuple | None) -> str:
    kind = "an integer" if hint is int else "a number"
    lo, hi, above = _bounds(bounds)
    if above:
        return f"{kind} above {lo}" + (f", at most {hi}" if hi is not None else "")
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    if lo is not None:
        return f"{kind} >= {lo}"
    if hi is not None:
        return f"{kind} <= {hi}"
    return kind


def _bounds(bounds: tuple | None) -> tuple[Any, Any, bool]:
    """(lo, hi, above) from a field's range metadata."""
    if not bounds:
        return None, None, False
    lo, hi, *rest = bounds
    return lo, hi, bool(rest and rest[0])


def show(value: Any) -> str:
    return "null" if value is None else repr(value)
