"""An action's type hints, read once at definition time: argument and result converters.

```python
@board.action
def move(c, to: Point, note: str = "") -> Move: ...
```

`ArgumentTypes` converts the positional arguments of a call from the plain data they
arrive as (over the network and in-process alike) into ``Point`` and ``str`` before
``move`` runs, and raises `InvalidArgumentsError` (``actor/validation_error``, HTTP
400) naming the action, the parameter and the expected type when one does not fit.
Unannotated parameters, ``Any`` and ``object`` are not checked. The result converter
(see `action_types`) turns a typed call's plain result back into ``Move`` on the
client side.

An annotation that cannot be resolved when the action is defined (a string naming a
class that does not exist yet, e.g. one defined inside a function under ``from
__future__ import annotations``) leaves its parameter unchecked and logs a warning.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

from .._codec.typed import SCALARS, Converter, converter_for, describe_type
from ..errors import DefinitionError, InvalidArgumentsError

__all__ = ["ArgumentCheck", "ArgumentTypes", "action_types"]

log = logging.getLogger("pyrivet.actor")

#: An action's positional arguments as the runtime holds them.
Args = list[Any] | tuple[Any, ...]
#: What the runtime calls before each call of a typed action: the arguments, converted
#: (the same sequence when nothing needed converting); raises `InvalidArgumentsError`.
ArgumentCheck = Callable[[Args], Args]

#: The wire code of a type mismatch: RivetKit's code for arguments that fail an
#: action's input schema (the class stays `InvalidArgumentsError`).
VALIDATION_ERROR = "validation_error"


def _hints(fn: Callable[..., Any], owner: str, skip: str) -> dict[str, Any]:
    """``fn``'s resolved annotations, but for ``skip`` (the context's, never checked);
    unresolvable ones are `inspect.Parameter.empty` (with a warning)."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass
    # One bad annotation (often the context's, imported only under TYPE_CHECKING)
    # must not leave the others unchecked: resolve them one at a time.
    hints: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if name == skip:
            continue
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = typing.get_type_hints(
                _Annotated(name, annotation, namespace), include_extras=True
            )[name]
        except Exception as exc:
            hints[name] = inspect.Parameter.empty
            log.warning(
                "actor %r: action %r: the annotation %r of %s cannot be resolved (%s); it "
                "is not checked",
                owner,
                getattr(fn, "__name__", fn),
                annotation,
                name,
                exc,
            )
    return hints


class _Annotated:
    """Something `typing.get_type_hints` resolves: one annotation and its namespace."""

    def __init__(self, name: str, annotation: str, namespace: dict[str, Any]) -> None:
        self.__annotations__ = {name: annotation}
        self.__globals__ = namespace


class ArgumentTypes:
    """Converts an action's positional arguments into their annotated types.

    Built once per action; the runtime calls its `checker` before every call (see
    `ActionSpec.arguments`). It never runs user code (pydantic validators aside).
    """

    __slots__ = ("_action", "_converters", "_defaults", "_names", "_owner", "_rest", "_types")

    def __init__(
        self,
        owner: str,
        action: str,
        params: list[tuple[str, Any, Converter | None, Any]],
        rest: tuple[str, Any, Converter] | None,
    ) -> None:
        self._owner = owner
        self._action = action
        self._names = [name for name, _, _, _ in params]
        self._types = [tp for _, tp, _, _ in params]
        self._converters = [convert for _, _, convert, _ in params]
        self._defaults = [default for _, _, _, default in params]
        #: ``*args``: (name, element type, converter), or None.
        self._rest = rest

    def checker(self) -> ArgumentCheck:
        """The function to call per call (`ActionSpec.arguments`).

        When every annotated parameter is a scalar (``int``, ``str``, ...) and there is
        no typed ``*args``, it first compares each argument's exact type with its
        annotation and hands ``args`` back unchanged when all match (the common case,
        a few comparisons); otherwise, or on the first difference, it converts.
        """
        convert = self.convert
        if self._rest is not None:
            return convert
        exact: list[type | None] = []
        for tp, converter in zip(self._types, self._converters, strict=True):
            if converter is not None and tp not in SCALARS:
                return convert
            exact.append(tp if converter is not None else None)
        exact_types = tuple(exact)
        if len(exact_types) == 1:
            # One typed scalar parameter (`amount: int`), the most common signature.
            only = exact_types[0]

            def check_one(args: Args) -> Args:
                if not args or type(args[0]) is only:
                    return args
                return convert(args)

            return check_one

        def check(args: Args) -> Args:
            # Fewer arguments than parameters when defaults are used, so not strict;
            # and without the keyword: `strict=False` makes zip() 3x slower here.
            for value, tp in zip(args, exact_types):  # noqa: B905
                if tp is not None and type(value) is not tp:
                    return convert(args)
            return args

        return check

    def convert(self, args: Args) -> list[Any]:
        """``args`` converted, as a new list.

        Raises:
            InvalidArgumentsError: an argument does not fit its parameter's type.
        """
        converted = list(args)
        converters = self._converters
        count = len(converters)
        for index, value in enumerate(converted):
            if index < count:
                convert = converters[index]
            elif self._rest is not None:
                convert = self._rest[2]
            else:
                break  # more arguments than parameters: the arity check reports it
            if convert is None:
                continue
            try:
                converted[index] = convert(value)
            except (ValueError, TypeError) as exc:
                if index < count and value is self._defaults[index]:
                    continue  # the parameter's own default, e.g. None for `x: int = None`
                raise self._mismatch(index, exc) from None
        return converted

    def _mismatch(self, index: int, exc: Exception) -> InvalidArgumentsError:
        if index < len(self._names):
            name, tp = self._names[index], self._types[index]
        else:
            assert self._rest is not None
            name, tp = f"*{self._rest[0]}", self._rest[1]
        expected = describe_type(tp)
        return InvalidArgumentsError(
            f"action {self._action!r} of actor {self._owner!r}: argument {index + 1} "
            f"({name}) must be {expected}: {_one_line(exc)}",
            code=VALIDATION_ERROR,
            metadata={"parameter": name, "position": index, "expected": expected},
        )


def _one_line(exc: Exception) -> str:
    """A conversion error on one line. Pydantic's run over several lines and end with a
    link (after which msgspec appends the path, `` - at `$.a` ``): keep the facts."""
    parts = []
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith("For further information"):
            _, found, path = line.partition(" - at ")
            line = f"at {path}" if found else ""
        if line:
            parts.append(line)
    return " ".join(parts)


def _converter(owner: str, action: str, name: str, tp: Any) -> Converter | None:
    try:
        return converter_for(tp)
    except TypeError as exc:
        raise DefinitionError(
            f"actor {owner!r}: action {action!r}: parameter {name!r}: {exc}; annotate it "
            "with plain data, a dataclass, a msgspec Struct, a pydantic model or Any"
        ) from None


def action_types(
    owner: str, action: str, fn: Callable[..., Any]
) -> tuple[ArgumentCheck | None, Converter | None]:
    """(the converters of ``fn``'s parameters after the context, the converter of its
    return annotation); each None when nothing needs converting.

    Raises:
        DefinitionError: an annotation names a type that cannot be built from plain
            data (an arbitrary class).
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, None
    context, *rest_params = signature.parameters.values()
    hints = _hints(fn, owner, context.name)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params: list[tuple[str, Any, Converter | None, Any]] = []
    rest: tuple[str, Any, Converter] | None = None
    for param in rest_params:
        tp = hints.get(param.name, inspect.Parameter.empty)
        if param.kind in positional:
            params.append(
                (param.name, tp, _converter(owner, action, param.name, tp), param.default)
            )
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            convert = _converter(owner, action, param.name, tp)
            if convert is not None:
                rest = (param.name, tp, convert)
    arguments = None
    if rest is not None or any(convert is not None for _, _, convert, _ in params):
        arguments = ArgumentTypes(owner, action, params, rest).checker()
    result = hints.get("return", inspect.Parameter.empty)
    if result is None or result is type(None):
        return arguments, None
    return arguments, _converter(owner, action, "return", result)
