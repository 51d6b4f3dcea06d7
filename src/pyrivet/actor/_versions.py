"""State versions and migrations of an actor type, checked when it is defined.

```python
def add_email(old: dict) -> dict:          # version 1 -> 2
    return {**old, "email": ""}

def rename_name(old: dict) -> dict:        # version 2 -> 3
    old["display_name"] = old.pop("name")
    return old

profile = actor("profile", state=Profile(...), state_version=3,
                migrations={1: add_email, 2: rename_name})
```

``migrations[v]`` turns a state of version ``v`` into one of version ``v + 1``. It
receives the stored state as plain data (dicts, lists, scalars: the old shape need not
fit today's type) and returns plain data of the next shape (or an instance of today's
type, for the last step). A woken actor whose stored state is older runs the steps it
needs, in order, before any hook (see ``pyrivet._runtime.migrate``). A migration is a
plain function of one argument; it runs on the event loop, so it must not block.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DefinitionError

__all__ = ["Migration", "check_versions"]

#: ``fn(old_state) -> new_state``, both plain data.
Migration = Callable[[Any], Any]

_VERSION_MAX = 2**32 - 1


def check_versions(
    owner: str, has_state: bool, state_version: Any, migrations: Any
) -> dict[int, Migration]:
    """The migrations by the version they start from, checked against ``state_version``.

    Raises:
        DefinitionError: the version is not a whole number from 1, the actor has no
            state, a migration starts from a version that does not exist (0, negative,
            or ``state_version`` and above), one is missing, or one is not a plain
            function of one argument. The message says what to write instead.
    """
    if (
        isinstance(state_version, bool)
        or not isinstance(state_version, int)
        or not 1 <= state_version <= _VERSION_MAX
    ):
        raise DefinitionError(
            f"actor {owner!r}: state_version must be a whole number from 1 (the first "
            f"shape of the state) up, got {state_version!r}"
        )
    if migrations is None:
        migrations = {}
    if not isinstance(migrations, Mapping):
        raise DefinitionError(
            f"actor {owner!r}: migrations= takes a dict from the version a migration starts "
            f"from to its function, e.g. migrations={{1: v1_to_v2}}; got {migrations!r}"
        )
    if (state_version > 1 or migrations) and not has_state:
        raise DefinitionError(
            f"actor {owner!r}: state_version= and migrations= need a state; pass state= "
            "or create_state="
        )
    checked: dict[int, Migration] = {}
    for start, fn in migrations.items():
        if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < state_version:
            newest = f"1 to {state_version - 1}" if state_version > 1 else "none (it is 1)"
            raise DefinitionError(
                f"actor {owner!r}: migrations has a migration from version {start!r}, which "
                f"does not exist: the state's version is {state_version}, and migrations[v] "
                f"turns version v into v + 1, so the versions it may start from are "
                f"{newest}. If the migration is new, raise state_version to "
                f"{state_version + 1}"
            )
        _check_function(owner, start, fn)
        checked[start] = fn
    missing = [v for v in range(1, state_version) if v not in checked]
    if missing:
        steps = ", ".join(f"{v}: v{v}_to_v{v + 1}" for v in missing)
        raise DefinitionError(
            f"actor {owner!r}: state_version is {state_version} but no migration starts "
            f"from version {', '.join(map(str, missing))}; every older version needs one, "
            f"so that stored actors of that version can wake: add migrations={{{steps}}}"
        )
    return dict(sorted(checked.items()))


def _check_function(owner: str, start: int, fn: Any) -> None:
    what = f"migrations[{start}]"
    if not callable(fn):
        raise DefinitionError(
            f"actor {owner!r}: {what} must be a function taking the version-{start} state "
            f"and returning the version-{start + 1} state, got {fn!r}"
        )
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise DefinitionError(
            f"actor {owner!r}: {what} ({getattr(fn, '__name__', fn)!r}) is async; a "
            "migration is a plain function (it only reshapes data)"
        )
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        raise DefinitionError(
            f"actor {owner!r}: {what} ({getattr(fn, '__name__', fn)!r}) is called with one "
            f"argument, the version-{start} state; define it as `def fn(old): ...`"
        ) from None
    except ValueError:
        pass  # no signature to inspect (some builtins): it is tried at the first wake
