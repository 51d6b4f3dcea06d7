"""`actor()` and `ActorDefinition`: what an actor type is, validated at import time.

```python
counter = actor("counter", state={"count": 0})

@counter.action
async def increment(c, amount: int = 1) -> int:
    c.state["count"] += amount
    return c.state["count"]
```

A definition only describes; ``pyrivet._runtime`` reads it and never inspects user
functions again beyond what is recorded here. Every check raises `DefinitionError`
naming the actor and the fix.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from .._codec.values import ValueCodec, is_plain
from .._codec.versioned import VersionedCodec
from ..errors import DefinitionError, EncodingError
from ._options import ActorOptions
from ._queue import Queue, check_queues
from ._typing import ArgumentCheck, action_types
from ._versions import Migration, check_versions

__all__ = ["ActionSpec", "ActorDefinition", "actor"]

S = TypeVar("S")
F = TypeVar("F", bound=Callable[..., Any])

_NAME_MAX = 64
_MISSING: Any = object()

#: Attribute set on action functions so typed calls (`handle.call(fn, ...)`) know the name.
ACTION_NAME_ATTR = "__pyrivet_action__"
#: Attribute set on action functions with a return annotation: the converter a typed
#: call (`handle.call(fn, ...)`) applies to the plain result it receives.
RESULT_CONVERTER_ATTR = "__pyrivet_result__"

#: Lifecycle hooks an actor may define, each at most once.
HOOKS = (
    "on_migrate",
    "on_create",
    "on_wake",
    "on_sleep",
    "on_destroy",
    "on_state_change",
    "run",
    "on_before_connect",
    "on_connect",
    "on_disconnect",
    "on_request",
    "on_websocket",
)


@dataclass(frozen=True, slots=True, eq=False)
class ActionSpec:
    """One action: its function, the positional arity it accepts and its argument types.

    Compared and hashed by identity (``eq=False``): the runtime keys per-action counters
    by the spec, and a generated hash over every field cost about 2,000 instructions
    per lookup.
    """

    name: str
    fn: Callable[..., Any]
    is_async: bool
    min_args: int
    #: None when the function takes ``*args``.
    max_args: int | None
    #: Converts the plain arguments of a call into the annotated types (raising
    #: `InvalidArgumentsError`); None when no parameter is annotated with a type.
    arguments: ArgumentCheck | None = None

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


def _positional_arity(
    owner: str, what: str, fn: Callable[..., Any], fixed: int
) -> tuple[int, int | None]:
    """(min, max) positional arguments after the ``fixed`` leading ones (the context)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return (0, None)
    params = list(sig.parameters.values())
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if len(positional) < fixed and not has_varargs:
        raise DefinitionError(
            f"actor {owner!r}: {what} {fn.__name__!r} must take the context as its first "
            f"parameter, e.g. `def {fn.__name__}(c, ...)`"
        )
    required_kwonly = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if required_kwonly:
        raise DefinitionError(
            f"actor {owner!r}: {what} {fn.__name__!r} has required keyword-only parameters "
            f"{required_kwonly}; actions take positional arguments only, give them defaults "
            "or make them positional"
        )
    rest = positional[fixed:]
    min_args = sum(1 for p in rest if p.default is inspect.Parameter.empty)
    return (min_args, None if has_varargs else len(rest))


#: The arguments the runtime calls each hook and factory with (default: just ``c``).
_CALLED_WITH = {
    "create_state": "c, input",
    "create_vars": "c",
    "create_conn_state": "c, params",
    "on_create": "c, input",
    "on_migrate": "c, db",
    "on_state_change": "c, state",
    "on_before_connect": "c, params",
    "on_connect": "c, conn",
    "on_disconnect": "c, conn",
    "on_request": "c, request",
    "on_websocket": "c, websocket",
}


def _check_called_with(owner: str, what: str, fn: Callable[..., Any]) -> None:
    """Fail now, not at the first call, if ``fn`` cannot take the arguments it is given."""
    params = _CALLED_WITH.get(what, "c")
    extra = params.count(",")
    min_args, max_args = _positional_arity(owner, what, fn, 1)
    if min_args > extra or (max_args is not None and max_args < extra):
        fn_name = getattr(fn, "__name__", what)
        raise DefinitionError(
            f"actor {owner!r}: {what} {fn_name!r} is called as {what}({params}); "
            f"define it as `def {fn_name}({params})` (extra parameters need defaults)"
        )


def _return_type(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    tp = hints.get("return")
    if tp is None or tp is type(None):
        return None
    origin = typing.get_origin(tp)
    if origin is not None:
        # dict[str, int], list[...]: plain data, decoded without a type.
        return None
    if isinstance(tp, type) and tp in (dict, list, str, int, float, bool, bytes):
        return None
    return tp


class ActorDefinition(Generic[S]):
    """An actor type: name, state, hooks, actions and options. Create with `actor()`."""

    def __init__(
        self,
        name: str,
        *,
        state: S = _MISSING,
        create_state: Callable[..., Any] | None = None,
        state_type: type[S] | None = None,
        state_version: int = 1,
        migrations: Mapping[int, Migration] | None = None,
        vars: Any = _MISSING,
        create_vars: Callable[..., Any] | None = None,
        conn_state: Any = _MISSING,
        create_conn_state: Callable[..., Any] | None = None,
        options: ActorOptions | None = None,
        queues: Mapping[str, Queue] | Iterable[str] | None = None,
        db: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name or len(name) > _NAME_MAX:
            raise DefinitionError(
                f"actor name must be a non-empty string of at most {_NAME_MAX} characters, "
                f"got {name!r}"
            )
        self.name = name
        self.options = options if options is not None else ActorOptions()
        if not isinstance(self.options, ActorOptions):
            raise DefinitionError(f"actor {name!r}: options must be an ActorOptions instance")
        self._check_pair("state", state, "create_state", create_state)
        self._check_pair("vars", vars, "create_vars", create_vars)
        self._check_pair("conn_state", conn_state, "create_conn_state", create_conn_state)

        self.has_state = state is not _MISSING or create_state is not None
        self.create_state = create_state
        self.create_vars = create_vars
        self.create_conn_state = create_conn_state
        self.static_vars = None if vars is _MISSING else vars
        self.static_conn_state = None if conn_state is _MISSING else conn_state
        if create_state is not None:
            _check_called_with(name, "create_state", create_state)
        if create_vars is not None:
            _check_called_with(name, "create_vars", create_vars)
        if create_conn_state is not None:
            _check_called_with(name, "create_conn_state", create_conn_state)

        if state_type is None and state is not _MISSING and not is_plain(state):
            state_type = type(state)
        if state_type is None and create_state is not None:
            state_type = _return_type(create_state)
        #: The version of the state's shape (1 unless declared) and the migrations that
        #: bring older stored states to it, by the version each starts from.
        self.state_version = state_version
        self.migrations = check_versions(name, self.has_state, state_version, migrations)
        try:
            self.state_codec: ValueCodec = (
                ValueCodec(state_type)
                if state_version == 1
                else VersionedCodec(state_type, state_version)
            )
        except TypeError as exc:
            raise DefinitionError(f"actor {name!r}: {exc}") from None
        #: The static initial state, encoded once; every new actor decodes a fresh copy.
        self.initial_state: bytes | None = None
        if state is not _MISSING:
            try:
                self.initial_state = self.state_codec.encode(state, "the initial state")
            except EncodingError as exc:
                raise DefinitionError(f"actor {name!r}: {exc.message}") from None

        #: Declared queues by name; sends to other names are ignored (RivetKit's rule).
        self.queues: dict[str, Queue] = check_queues(name, queues)
        self.actions: dict[str, ActionSpec] = {}
        self.hooks: dict[str, Callable[..., Any]] = {}
        if not isinstance(db, bool):
            raise DefinitionError(f"actor {name!r}: db must be True or False, got {db!r}")
        #: Whether each actor has its own SQL database (``c.db``); see docs/sql.md.
        self.has_db = db

    def _check_pair(
        self, value_name: str, value: Any, factory_name: str, factory: Callable[..., Any] | None
    ) -> None:
        if value is not _MISSING and factory is not None:
            raise DefinitionError(
                f"actor {self.name!r}: cannot define both {value_name}= and {factory_name}=; "
                f"pass a value as {value_name}= or a function as {factory_name}="
            )
        if value is not _MISSING and callable(value) and not isinstance(value, type):
            raise DefinitionError(
                f"actor {self.name!r}: {value_name}= takes a value, got a function; "
                f"pass the function as {factory_name}= instead"
            )
        if factory is not None and not callable(factory):
            raise DefinitionError(f"actor {self.name!r}: {factory_name}= must be a function")

    # -- actions -------------------------------------------------------------------

    @overload
    def action(self, fn: F, /) -> F: ...
    @overload
    def action(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...

    def action(self, fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register an action: ``fn(c, *args)``, async or plain. Returns ``fn`` unchanged.

        Arguments are converted into the parameters' annotated types before each call
        (a mismatch is `InvalidArgumentsError`, ``actor/validation_error``); see
        ``pyrivet.actor._typing``.

        Raises:
            DefinitionError: ``fn`` is not a function taking the context first, takes
                required keyword-only parameters, annotates a parameter with a type that
                cannot be built from plain data, or the name is already used.
        """

        def register(func: F) -> F:
            self._add_action(func, name)
            return func

        return register(fn) if fn is not None else register

    def _add_action(self, fn: Callable[..., Any], name: str | None) -> None:
        if not callable(fn):
            raise DefinitionError(f"actor {self.name!r}: an action must be a function, got {fn!r}")
        action_name = name or getattr(fn, "__name__", None)
        if not isinstance(action_name, str) or not action_name or action_name.startswith("_"):
            raise DefinitionError(
                f"actor {self.name!r}: invalid action name {action_name!r}; names are "
                "non-empty and do not start with '_' (pass name=...)"
            )
        if action_name in self.actions:
            raise DefinitionError(
                f"actor {self.name!r}: duplicate action name {action_name!r}; rename one "
                "of them or pass name=... to @action"
            )
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise DefinitionError(
                f"actor {self.name!r}: action {action_name!r} is a generator; actions return "
                "one value (stream results with c.broadcast or conn.send)"
            )
        min_args, max_args = _positional_arity(self.name, "action", fn, 1)
        arguments, result = action_types(self.name, action_name, fn)
        self.actions[action_name] = ActionSpec(
            action_name, fn, inspect.iscoroutinefunction(fn), min_args, max_args, arguments
        )
        with contextlib.suppress(AttributeError, TypeError):
            setattr(fn, ACTION_NAME_ATTR, action_name)
            if result is not None:
                setattr(fn, RESULT_CONVERTER_ATTR, result)

    # -- hooks ---------------------------------------------------------------------

    def _hook(self, hook: str, fn: F) -> F:
        if not callable(fn):
            raise DefinitionError(f"actor {self.name!r}: {hook} must be a function")
        if hook in self.hooks:
            raise DefinitionError(
                f"actor {self.name!r}: {hook} is already defined "
                f"({self.hooks[hook].__name__}); define it once"
            )
        _check_called_with(self.name, hook, fn)
        self.hooks[hook] = fn
        return fn

    def on_migrate(self, fn: F) -> F:
        """``on_migrate(c, db)``: on every start, before every other hook, in a transaction
        of the actor's SQL database (``db`` is ``c.db``). Defining it gives the actor a
        database. If it raises, its changes are rolled back and the start fails."""
        self._hook("on_migrate", fn)
        self.has_db = True
        return fn

    def on_create(self, fn: F) -> F:
        """``on_create(c, input)``: once, after the first ``create_state``, before ``on_wake``."""
        return self._hook("on_create", fn)

    def on_wake(self, fn: F) -> F:
        """``on_wake(c)``: on every start, after ``create_vars``; requests wait for it."""
        return self._hook("on_wake", fn)

    def on_sleep(self, fn: F) -> F:
        """``on_sleep(c)``: when going to sleep, before the final save (not on a crash)."""
        return self._hook("on_sleep", fn)

    def on_destroy(self, fn: F) -> F:
        """``on_destroy(c)``: when destroyed, before all of the actor's data is deleted."""
        return self._hook("on_destroy", fn)

    def on_state_change(self, fn: F) -> F:
        """``on_state_change(c, state)``: synchronously after each commit that changed state."""
        return self._hook("on_state_change", fn)

    def run(self, fn: F) -> F:
        """``run(c)``: a background task started after ``on_wake``; watch ``c.aborted``."""
        return self._hook("run", fn)

    def on_before_connect(self, fn: F) -> F:
        """``on_before_connect(c, params)``: raise to reject a connection."""
        return self._hook("on_before_connect", fn)

    def on_connect(self, fn: F) -> F:
        """``on_connect(c, conn)``: after a connection is added to ``c.conns``."""
        return self._hook("on_connect", fn)

    def on_disconnect(self, fn: F) -> F:
        """``on_disconnect(c, conn)``: after a connection closed."""
        return self._hook("on_disconnect", fn)

    def on_request(self, fn: F) -> F:
        """``on_request(c, request)``: raw HTTP requests to the actor."""
        return self._hook("on_request", fn)

    def on_websocket(self, fn: F) -> F:
        """``on_websocket(c, websocket)``: raw WebSocket connections to the actor."""
        return self._hook("on_websocket", fn)

    @property
    def uses_connections(self) -> bool:
        """Whether calls need a (transient) connection: connection hooks or state exist."""
        hooks = self.hooks
        return (
            self.create_conn_state is not None
            or self.static_conn_state is not None
            or "on_before_connect" in hooks
            or "on_connect" in hooks
            or "on_disconnect" in hooks
        )

    def __repr__(self) -> str:
        return f"<ActorDefinition {self.name!r} actions={sorted(self.actions)}>"


def actor(
    name: str,
    *,
    state: Any = _MISSING,
    create_state: Callable[..., Any] | None = None,
    state_type: Any = None,
    state_version: int = 1,
    migrations: Mapping[int, Migration] | None = None,
    vars: Any = _MISSING,
    create_vars: Callable[..., Any] | None = None,
    conn_state: Any = _MISSING,
    create_conn_state: Callable[..., Any] | None = None,
    options: ActorOptions | None = None,
    queues: Mapping[str, Queue] | Iterable[str] | None = None,
    db: bool = False,
) -> ActorDefinition[Any]:
    """Define an actor type.

    Args:
        name: the name clients address it by (unique within a registry).
        state: the initial state of every new actor (copied per actor), or
        create_state: ``create_state(c, input)`` computing it once, at creation.
        state_type: the type to decode state into on wake, when it is not plain data
            and cannot be inferred from ``state`` or ``create_state``'s return annotation.
        state_version: the version of the state's shape; raise it when the shape
            changes (a field added, removed or renamed) and add a migration.
        migrations: ``{v: fn}``, ``fn(old)`` turning a stored state of version ``v``
            (plain data) into version ``v + 1``, for every ``v`` below
            ``state_version``; run on wake (see docs/state-versions.md).
        vars: ephemeral per-instance values (copied per instance), or
        create_vars: ``create_vars(c)`` computing them on every start.
        conn_state: initial per-connection state, or
        create_conn_state: ``create_conn_state(c, params)`` computing it per connection.
        options: `ActorOptions`; RivetKit's defaults when omitted.
        queues: the queues it accepts messages on: ``{"jobs": Queue(Job)}``, or a list
            of names for queues of plain data (see docs/queues.md).
        db: give each actor its own SQL database, ``c.db`` (see docs/sql.md); implied
            by an ``on_migrate`` hook.

    Raises:
        DefinitionError: both a value and its factory are given, a value is a function,
            the initial state cannot be encoded, the name is invalid, or a migration
            is missing or starts from a version that does not exist.
    """
    return ActorDefinition(
        name,
        state=state,
        create_state=create_state,
        state_type=state_type,
        state_version=state_version,
        migrations=migrations,
        vars=vars,
        create_vars=create_vars,
        conn_state=conn_state,
        create_conn_state=create_conn_state,
        options=options,
        queues=queues,
        db=db,
    )
