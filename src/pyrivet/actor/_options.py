"""`ActorOptions`: per-actor-type tunables, with RivetKit's defaults (in seconds)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import DefinitionError
from ..types import Durability

__all__ = ["ActorOptions"]


@dataclass(frozen=True, slots=True)
class ActorOptions:
    """Options of one actor type. Durations are float seconds.

    ```python
    ActorOptions(sleep_timeout=5, durability="relaxed")
    ```
    """

    #: How long an action may run before its caller gets `ActionTimeoutError`.
    action_timeout: float = 60.0
    #: Continuous idle time (no work, connections or keep-awake) before the actor sleeps.
    sleep_timeout: float = 30.0
    #: Total budget for a graceful shutdown (on_sleep/on_destroy, run, wait_until).
    sleep_grace_period: float = 15.0
    #: "strict": replies wait until the change they report is durable (default).
    #: "relaxed": state is saved at most every ``state_save_interval`` and on sleep.
    durability: Durability = "strict"
    #: Throttle for saves in relaxed mode.
    state_save_interval: float = 1.0
    #: Time limits of lifecycle hooks.
    create_state_timeout: float = 5.0
    on_create_timeout: float = 5.0
    create_vars_timeout: float = 5.0
    on_wake_timeout: float = 30.0
    #: Time limit of ``on_migrate`` (actors with a SQL database).
    on_migrate_timeout: float = 30.0
    on_before_connect_timeout: float = 5.0
    create_conn_state_timeout: float = 5.0
    on_connect_timeout: float = 5.0
    #: Never sleep when idle.
    no_sleep: bool = False
    #: Most pending schedules (one-off and cron) per actor.
    max_schedules: int = 1000
    #: Most queued messages per actor and the largest encoded message.
    max_queue_size: int = 1000
    max_queue_message_size: int = 65_536
    #: Largest encoded state; a change past it fails with EncodingError.
    max_state_size: int = 16 * 1024 * 1024
    #: History entries kept per actor; None keeps all of them.
    history_limit: int | None = 100
    #: Network connections (``.connect()`` WebSockets) stay open while the actor sleeps
    #: and do not keep it awake: a message on one wakes the actor (RivetKit's default).
    #: False: an open connection keeps its actor awake and is closed if it sleeps.
    hibernatable_connections: bool = True
    #: Raw ``on_websocket`` sockets stay open while the actor sleeps, and the hook runs
    #: again after each wake (RivetKit's ``canHibernateWebSocket``; off by default).
    can_hibernate_websocket: bool = False
    #: Without its client, a connection restored after a server restart waits this long
    #: for the client to resume it, then ``on_disconnect`` runs.
    connection_resume_window: float = 30.0
    #: Recent events kept for clients that resume after a reconnect: at most this many
    #: (0 keeps none) ...
    event_retention: int = 100
    #: ... and none older than this.
    event_retention_age: float = 300.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "durability":
                continue
            if field.name in ("no_sleep", "hibernatable_connections", "can_hibernate_websocket"):
                if not isinstance(value, bool):
                    raise DefinitionError(
                        f"ActorOptions.{field.name} must be True or False, got {value!r}"
                    )
                continue
            if field.name == "event_retention" and value == 0 and not isinstance(value, bool):
                continue
            if value is None and field.name == "history_limit":
                continue
            whole = str(field.type).startswith("int")
            kind = int if whole else int | float
            # bool is an int; `not value > 0` also rejects NaN.
            if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
                raise DefinitionError(
                    f"ActorOptions.{field.name} must be a positive "
                    f"{'whole number' if whole else 'number'}, got {value!r}"
                )
        if self.durability not in ("strict", "relaxed"):
            raise DefinitionError(
                f'ActorOptions.durability must be "strict" or "relaxed", got {self.durability!r}'
            )
