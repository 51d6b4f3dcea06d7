"""`Placement`: who decides when an actor stops and wakes, when not this process alone.

Standalone, the runtime decides by itself: an idle actor sleeps, ``c.destroy()``
destroys, a request or a due schedule wakes. In envoy mode the Rivet Engine decides
(it must know which actors sleep, to wake them anywhere), and the runtime asks it
through a `Placement` (`Runtime.attach_placement`):

* an actor that wants to stop (idle past ``sleep_timeout``, ``c.sleep()``,
  ``c.destroy()``, a failed ``run``) is *not* stopped; the placement is told
  (`request_stop`) and the actor keeps serving until the owner of the placement
  stops it (`Runtime.sleep` / `Runtime.destroy`);
* an actor that is not in memory is woken only if the placement allows it
  (`refuse_wake` returns None); otherwise the request that wanted it fails with the
  error the placement gives (one its transport knows to retry);
* the earliest pending schedule of an actor is reported whenever it changes and
  when the actor stops (`alarm_changed`), so the placement can wake a sleeping actor
  for it; the runtime then fires only schedules of actors in memory.

Every method is called on the runtime's event loop, must not block, and must not
raise (an exception would surface in whatever request or timer triggered it).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Placement"]


class Placement(Protocol):
    """What the runtime asks before stopping or waking an actor (see the module doc)."""

    def request_stop(self, actor_id: str, kind: str) -> None:
        """The actor wants to stop: ``kind`` is ``"sleep"`` or ``"destroy"``. Called
        once per kind per awakening (a destroy may follow a sleep request)."""
        ...

    def refuse_wake(self, actor_id: str) -> BaseException | None:
        """None if the runtime may wake ``actor_id`` now; else the error to raise."""
        ...

    def alarm_changed(self, actor_id: str, fire_at_ms: int | None) -> None:
        """The actor's earliest pending schedule is now ``fire_at_ms`` (None: none)."""
        ...
