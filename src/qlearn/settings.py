"""Settings as typed dataclass fields: checking a value against its field's type, ``--set key=value``
parsing, overrides, and the JSON form of a config. Generic over any config dataclass; the configs
themselves are in :mod:`qlearn.config`."""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from qlearn.errors import QlearnError, did_you_mean

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        return isinstance(value, tuple) and all(_matches(v, typing.get_args(hint)[0]) for v in value)
    if origin in (types.UnionType, typing.Union):
        return any(value is None if a is type(None) else _matches(value, a) for a in typing.get_args(hint))
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if origin is tuple:
        elem = typing.get_args(hint)[0]
        return "a list of " + {int: "integers", float: "numbers", str: "texts"}.get(elem, str(elem))
    if origin in (types.UnionType, typing.Union):
        return " or ".join("empty" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(hint, str(hint))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A config class's field types (resolved once: resolving string annotations costs ~0.5 ms a config)."""
    return typing.get_type_hints(cls)


def check_types(cfg: Any) -> None:
    """Each field must have its declared type (a string where a number belongs fails here, clearly)."""
    cls: type = type(cfg)
    hints = _hints(cls)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not _matches(value, hints[f.name]):
            raise QlearnError(f"invalid config value {f.name}={value!r}: must be {_describe(hints[f.name])}")


def _parse_value(name: str, raw: str, annotation: Any) -> Any:
    """Convert the text of ``--set name=raw`` to the field's declared type."""
    hint = annotation
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            val = float(raw)
            if not val.is_integer():
                raise ValueError
            return int(val)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
        if origin is Literal:
            options = typing.get_args(hint)
            if raw not in options:
                raise QlearnError(f"invalid value for {name}: {raw!r}; choose one of {', '.join(map(str, options))}")
            return raw
        if origin is tuple:
            elem = typing.get_args(hint)[0]
            parts = [p for p in raw.replace("x", ",").split(",") if p.strip()]
            return tuple(elem(float(p)) if elem is int and float(p).is_integer() else elem(p) for p in parts)
        if origin in (types.UnionType, typing.Union):
            inner = [a for a in typing.get_args(hint) if a is not type(None)]
            if raw.strip().lower() in ("none", "null", ""):
                return None
            return _parse_value(name, raw, inner[0])
    except QlearnError:
        raise
    except (ValueError, TypeError, json.JSONDecodeError):
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(hint, "e.g. 64,64")
        raise QlearnError(f"invalid value for {name}: {raw!r} is not {kind}") from None
    return raw


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def with_overrides(cfg: C, overrides: dict[str, Any] | None = None, **kwargs: Any) -> C:
    """Return a copy of ``cfg`` with fields replaced; unknown keys are a clear error."""
    changes = {**(overrides or {}), **kwargs}
    names = field_names(type(cfg))
    for key in changes:
        if key not in names:
            raise QlearnError(f"unknown setting {key!r} for {type(cfg).__name__}{did_you_mean(key, names)}")
    try:
        return dataclasses.replace(cfg, **changes)
    except TypeError as exc:  # pragma: no cover - defensive
        raise QlearnError(str(exc)) from None


def parse_sets(items: list[str], *classes: type) -> list[dict[str, Any]]:
    """Split ``["lr=1e-3", "steps=20000"]`` into one typed dict per dataclass in ``classes``.

    A key belongs to the first class that declares it; a key no class declares is an error that lists
    the closest known keys.
    """
    out: list[dict[str, Any]] = [{} for _ in classes]
    hints = [typing.get_type_hints(c) for c in classes]
    known = [n for c in classes for n in field_names(c)]
    for item in items:
        if "=" not in item:
            raise QlearnError(f"bad --set {item!r}: expected key=value, e.g. --set lr=0.001")
        key, raw = item.split("=", 1)
        key = key.strip()
        for i, cls in enumerate(classes):
            if key in hints[i] and key in field_names(cls):
                out[i][key] = _parse_value(key, raw.strip(), hints[i][key])
                break
        else:
            raise QlearnError(
                f"unknown setting {key!r} in --set{did_you_mean(key, known)}; known: {', '.join(sorted(set(known)))}"
            )
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config from :func:`to_dict` output, with the same validation."""
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise QlearnError(f"unknown setting {unknown[0]!r} in saved {cls.__name__}{did_you_mean(unknown[0], names)}")
    fixed = {k: tuple(v) if typing.get_origin(hints[k]) is tuple else v for k, v in data.items()}
    return cls(**fixed)
