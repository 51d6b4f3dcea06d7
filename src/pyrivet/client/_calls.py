"""How every client object calls actions: by name, by attribute, typed by function.

`ActionCalls` (async: handles, connections) and `SyncActionCalls` (the sync wrapper)
give a class that defines ``action(name, *args)`` the two other spellings:

```python
await handle.increment(5)             # by attribute
await handle.call(increment, 5)       # typed: the result has increment's return type
```

A typed call converts the plain result it receives (a dataclass result arrives as a
dict, over the network and in-process alike) into the action's return annotation,
with the converter the definition API built for it; a call by name returns the plain
data as it arrived.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from ..errors import ActorError

__all__ = ["ActionCalls", "SyncActionCalls", "action_args", "action_name", "typed_result"]

P = ParamSpec("P")
R = TypeVar("R")

#: Set by ``@definition.action`` on action functions (see pyrivet.actor).
_ACTION_NAME_ATTR = "__pyrivet_action__"
#: Set by ``@definition.action`` on action functions with a return annotation: the
#: converter from plain data into that type.
_RESULT_CONVERTER_ATTR = "__pyrivet_result__"


def action_name(fn: Callable[..., Any]) -> str:
    """The action name registered for ``fn`` (its ``__name__`` if not registered)."""
    name = getattr(fn, _ACTION_NAME_ATTR, None) or getattr(fn, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"{fn!r} is not an action function; pass the action's name instead")
    return name


def action_args(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Positional arguments for a typed call, binding keyword arguments by name.

    Raises:
        TypeError: the arguments do not fit ``fn``'s signature, or name keyword-only
            parameters (actions take positional arguments on the wire).
    """
    if not kwargs:
        return list(args)
    bound = inspect.signature(fn).bind(None, *args, **kwargs)
    if bound.kwargs:
        raise TypeError(
            f"actions take positional arguments; {sorted(bound.kwargs)} are keyword-only"
        )
    return list(bound.args[1:])


def typed_result(action: Callable[..., Any], value: Any) -> Any:
    """``value`` (a call's plain result) converted into ``action``'s return annotation.

    Raises:
        ActorError: ``client/invalid_result``: the action returned something that does
            not fit its own return annotation (the action ran; this is its bug).
    """
    convert = getattr(action, _RESULT_CONVERTER_ATTR, None)
    if convert is None:
        return value
    try:
        return convert(value)
    except (ValueError, TypeError) as exc:
        raise ActorError(
            f"the result of action {action_name(action)!r} does not fit its return "
            f"annotation: {exc}",
            group="client",
            code="invalid_result",
        ) from None


class ActionCalls:
    """Mixin for async callers; subclasses implement `action`."""

    async def action(self, name: str, *args: Any) -> Any:
        """Call action ``name`` with positional ``args`` and return its result."""
        raise NotImplementedError

    @overload
    async def call(
        self,
        action: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @overload
    async def call(
        self, action: Callable[Concatenate[Any, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    async def call(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call an action by its function; the result has the action's return type."""
        result = await self.action(action_name(action), *action_args(action, args, kwargs))
        return typed_result(action, result)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        # Reached only after a failed lookup, which formats an AttributeError message
        # (~6% of an in-process call on the memory driver). A descriptor on the class
        # answers the next ``obj.name`` of every instance directly; the instances hold
        # nothing more.
        setattr(type(self), name, _CallByName(name))
        return functools.partial(self.action, name)


class _CallByName:
    """``obj.<name>`` on an `ActionCalls` class: ``partial(obj.action, name)``.

    A partial, not a wrapper coroutine: one coroutine less on every call.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: ActionCalls | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return functools.partial(obj.action, self.name)


class SyncActionCalls:
    """Mixin for blocking callers; subclasses implement `action`."""

    def action(self, name: str, *args: Any) -> Any:
        """Call action ``name`` with positional ``args`` and return its result."""
        raise NotImplementedError

    @overload
    def call(
        self,
        action: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @overload
    def call(
        self, action: Callable[Concatenate[Any, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    def call(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call an action by its function; the result has the action's return type."""
        return typed_result(
            action, self.action(action_name(action), *action_args(action, args, kwargs))
        )

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call_by_name(*args: Any) -> Any:
            return self.action(name, *args)

        call_by_name.__name__ = name
        return call_by_name
