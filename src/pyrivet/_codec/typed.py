"""Converting plain data into an annotated type: action arguments and typed results.

Values cross the network, and the in-process transport that copies them the same way,
as plain data: a dataclass argument arrives as a dict. `converter_for` builds, once per
annotation, a function that turns such plain data back into the annotated type
(dataclasses, msgspec Structs, attrs classes, pydantic models, and containers, unions
and scalars of them, as `msgspec.convert` understands them) or raises `ValueError`
saying what did not match and where. Pydantic models are validated with their own
``model_validate``; pydantic is never imported here (it is an optional dependency).

Runs wherever it is called: the runtime converts arguments before an action runs, the
client converts a typed call's result (``handle.call(fn)``) after it arrives.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Final

import msgspec

__all__ = ["SCALARS", "Converter", "converter_for", "describe_type"]

#: Turns plain data into the annotated type; raises `ValueError` when it cannot.
Converter = Callable[[Any], Any]

#: Annotations that accept anything: no converter at all (no cost per call).
_ANYTHING: Final = (Any, object, inspect.Parameter.empty)
#: Scalars checked by their exact type first, so a matching value costs one comparison.
SCALARS: Final = (int, str, float, bool, bytes)


def _is_model(tp: Any) -> bool:
    """A pydantic model class, recognised without importing pydantic."""
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


def _model_hook(tp: Any, value: Any) -> Any:
    # msgspec calls this for the types it does not know; `converter_for` let only
    # pydantic models through. Pydantic's ValidationError is a ValueError: msgspec
    # reports it with the path of the value that failed.
    return tp.model_validate(value)


def _custom_classes(info: Any, seen: set[int], found: list[type]) -> list[type]:
    """Add to ``found`` the classes inside a msgspec type description that msgspec
    does not know (pydantic models, arbitrary classes); return ``found``."""
    if id(info) in seen:
        return found  # a recursive type: this part was looked at already
    seen.add(id(info))
    if isinstance(info, msgspec.inspect.CustomType):
        found.append(info.cls)
    elif isinstance(info, msgspec.inspect.Field):
        _custom_classes(info.type, seen, found)
    elif isinstance(info, tuple | list):
        for item in info:
            _custom_classes(item, seen, found)
    elif isinstance(info, msgspec.inspect.Type):
        for field in msgspec.structs.fields(info):
            _custom_classes(getattr(info, field.name), seen, found)
    return found


def describe_type(tp: Any) -> str:
    """An annotation as a message shows it: ``Point``, ``list[Point]``, ``Size | None``."""
    if tp is type(None) or tp is None:
        return "None"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return describe_type(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(describe_type(arg) for arg in args)
    if origin is not None and args:
        return f"{describe_type(origin)}[{', '.join(describe_type(arg) for arg in args)}]"
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def converter_for(tp: Any) -> Converter | None:
    """A function converting plain data into ``tp``, or None when ``tp`` takes anything.

    Raises:
        TypeError: msgspec cannot describe ``tp``, or it contains a class that neither
            msgspec nor pydantic can build from plain data (an arbitrary class).
    """
    if tp in _ANYTHING:
        return None
    if _is_model(tp):
        return _exact_first(tp, tp.model_validate)
    try:
        info = msgspec.inspect.type_info(tp)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{describe_type(tp)} cannot be built from plain data: {exc}") from None
    if isinstance(info, msgspec.inspect.AnyType):
        return None
    custom = _custom_classes(info, set(), [])
    bad = next((cls for cls in custom if not _is_model(cls)), None)
    if bad is not None:
        raise TypeError(
            f"{describe_type(tp)} cannot be built from plain data: {bad.__qualname__} is "
            "not a dataclass, msgspec Struct, attrs class or pydantic model"
        )
    if tp in SCALARS:
        return _exact_first(tp, functools.partial(msgspec.convert, type=tp))
    return _boxed(tp, with_models=bool(custom))


def _boxed(tp: Any, with_models: bool) -> Converter:
    """Convert through a one-field array-like Struct holding ``tp``.

    msgspec caches what it learns about a Struct class, but not about ``list[Point]``
    or ``Point | None``, which it would work out again on every call (2 µs for
    ``int | None``, 0.2 µs boxed). The box is invisible in errors: their paths are
    rewritten from ``$[0]`` to ``$``. The pydantic hook is passed only when ``tp``
    holds a model (passing one costs even when unused).
    """
    box: Any = msgspec.defstruct("Value", [("value", tp)], array_like=True)
    convert = msgspec.convert
    hook = _model_hook

    def to_type(value: Any) -> Any:
        try:
            if with_models:
                return convert([value], box, dec_hook=hook).value
            return convert([value], box).value
        except msgspec.ValidationError as exc:
            text = str(exc).replace(" - at `$[0]`", "").replace("`$[0]", "`$")
            raise ValueError(text) from None

    return to_type


def _exact_first(tp: type, convert: Converter) -> Converter:
    """``convert``, skipped for a value that already has exactly the type ``tp``."""

    def to_type(value: Any) -> Any:
        if type(value) is tp:
            return value
        return convert(value)

    return to_type
