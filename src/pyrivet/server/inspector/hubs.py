"""`LiveHub`, `LiveSocket`, `LiveHubs`: how live inspector sockets get an actor's changes
without slowing it (see ``live.py`` for the protocol).

The first live socket of an actor attaches one `LiveHub` (`Runtime.watch`) whose hooks
only note what changed and set a flag. The hub's pump task wakes on the flag, waits
`INTERVAL` on the runtime's clock (coalescing every commit of that window), builds the
frames once and offers them to each socket. A socket keeps at most one pending value
per kind (newer replaces older) and a bounded list of entries and events, and its own
writer task sends them, the frames of one push in one write (`MORE_KEY`): a slow reader
only gets fewer, later frames; a dead one stops its writer. The last socket to leave
detaches the hub (the actor's hook is None again). Everything runs on the event loop.
What a push costs the server is counted by ``bench/bench_inspector_cost.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..._runtime.watcher import Watcher
from ..._util.tasks import TaskSupervisor
from ...storage._base import CommitRecord, HistoryEntry
from ...workflow import Workflow
from .._asgi import Send
from .._uvicorn_ws import MORE_KEY
from ..gateway import ResolvedActor
from . import views

if TYPE_CHECKING:
    from ..._runtime.runtime import Runtime

__all__ = ["INTERVAL", "MAX_BUFFERED", "LiveHub", "LiveHubs", "LiveSocket"]

log = logging.getLogger("pyrivet.inspector")

#: Seconds the hub gathers changes before it sends them (one frame per kind per window).
INTERVAL: Final = 0.1
#: History entries / events one socket (and the hub) keeps for sending; more set ``gap``.
MAX_BUFFERED: Final = 500


class LiveSocket:
    """One accepted live socket: pending frames and the task that writes them."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._latest: dict[str, dict[str, Any]] = {}
        self._entries: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._gap = {"history": False, "events": False}
        self._ready = asyncio.Event()
        self.dead = False

    def offer(self, frames: list[dict[str, Any]]) -> None:
        """Queue ``frames`` without waiting: values replace older ones of their kind."""
        for frame in frames:
            kind = frame["type"]
            if kind == "history":
                self._buffer(self._entries, frame["entries"], "history")
            elif kind == "events":
                self._buffer(self._events, frame["events"], "events")
            else:
                self._latest[kind] = frame
        self._ready.set()

    def _buffer(self, into: list[dict[str, Any]], items: list[dict[str, Any]], kind: str) -> None:
        room = MAX_BUFFERED - len(into)
        if len(items) > room:
            self._gap[kind] = True
        into.extend(items[: max(room, 0)])

    def _take(self) -> list[dict[str, Any]]:
        frames = list(self._latest.values())
        self._latest = {}
        if self._entries or self._gap["history"]:
            frames.append(
                {"type": "history", "entries": self._entries, "gap": self._gap["history"]}
            )
            self._entries, self._gap["history"] = [], False
        if self._events or self._gap["events"]:
            frames.append({"type": "events", "events": self._events, "gap": self._gap["events"]})
            self._events, self._gap["events"] = [], False
        return frames

    async def write(self) -> None:
        """Send pending frames until the client is gone (then `dead` is set)."""
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                frames = self._take()
                last = len(frames) - 1
                for i, frame in enumerate(frames):
                    text = msgspec.json.encode(frame, enc_hook=repr).decode()
                    message: dict[str, Any] = {"type": "websocket.send", "text": text}
                    if i < last:
                        # The frames of one push leave in one write (see `MORE_KEY`).
                        message[MORE_KEY] = True
                    await self._send(message)
        except Exception:
            # The ASGI server raises on send once the client is gone.
            self.dead = True


class LiveHub(Watcher):
    """The `Watcher` of one actor while live sockets watch it; see the module doc."""

    def __init__(self, runtime: Runtime, actor: ResolvedActor) -> None:
        self._runtime = runtime
        self.actor = actor
        self.sockets: set[LiveSocket] = set()
        self._entries: list[HistoryEntry] = []
        self._events: list[dict[str, Any]] = []
        self._gap = False
        self._events_gap = False
        self._state_changed = False
        self._commits = False
        #: A commit touched the queue since the last push (the first push reads it too),
        #: and the size that push sent: a queue frame goes out only when it changed.
        self._queue_touched = True
        self._queue_size: int | None = None
        self._conns = False
        self._wake = asyncio.Event()
        definition = runtime.definition(actor.name)
        self._workflow = isinstance(definition.hooks.get("run"), Workflow)

    # -- Watcher (runs inside the runtime's work: note and return) ------------------

    def committed(self, record: CommitRecord) -> None:
        self._commits = True
        if record.state is not None:
            self._state_changed = True
        if record.queue_puts or record.queue_deletes:
            self._queue_touched = True
        event = record.event
        if event is not None:
            if len(self._entries) < MAX_BUFFERED:
                self._entries.append(event)
            else:
                self._gap = True
        self._wake.set()

    def connections_changed(self) -> None:
        self._conns = True
        self._wake.set()

    def emitted(self, outgoing: tuple[Any, str, bytes]) -> None:
        target, name, payload = outgoing
        if len(self._events) < MAX_BUFFERED:
            self._events.append(
                {"name": name, "payload": payload, "to": getattr(target, "id", None)}
            )
        else:
            self._events_gap = True
        self._wake.set()

    # -- the pump -------------------------------------------------------------------

    async def pump(self) -> None:
        """Gather changes for `INTERVAL`, then offer them to every socket; forever."""
        runtime = self._runtime
        while True:
            await self._wake.wait()
            await runtime.clock.sleep(INTERVAL)
            self._wake.clear()
            try:
                frames = await self._frames(runtime)
            except Exception:
                log.exception("live inspector of actor %s: building frames failed", self.actor)
                continue
            for sock in list(self.sockets):
                sock.offer(frames)

    async def _frames(self, runtime: Runtime) -> list[dict[str, Any]]:
        actor_id = self.actor.actor_id
        inst = runtime.awake_instance(actor_id)
        frames: list[dict[str, Any]] = []
        if self._state_changed:
            self._state_changed = False
            if inst is not None:
                seq, value = inst.journal.seq, views.state(runtime, inst, None)
            else:
                stored = await runtime.storage.load_state(actor_id)
                seq, value = stored.seq, views.plain_snapshot(stored.snapshot)
            frames.append({"type": "state", "seq": seq, "state": value})
        if self._conns:
            self._conns = False
            frames.append({"type": "connections", "connections": views.connections(inst)})
        if self._commits:
            self._commits = False
            if self._queue_touched:
                self._queue_touched = False
                size = await views.queue_size(runtime, actor_id, inst)
                if size != self._queue_size:
                    self._queue_size = size
                    frames.append({"type": "queue", "size": size})
            if self._workflow:
                history = await runtime.workflow_history(actor_id)
                frames.append({"type": "workflow", "history": views.workflow_json(history)})
        if self._entries or self._gap:
            entries, self._entries = self._entries, []
            frames.append(
                {
                    "type": "history",
                    "entries": [views.entry_json(e, with_state=False) for e in entries],
                }
            )
            if self._gap:
                self._gap = False
                frames[-1]["gap"] = True
        if self._events or self._events_gap:
            events, self._events = self._events, []
            for event in events:
                event["args"] = views.readable_payload(event.pop("payload"))
            frames.append({"type": "events", "events": events, "gap": self._events_gap})
            self._events_gap = False
        return frames


class LiveHubs:
    """The hubs of one server, by actor id; owns their pump tasks."""

    def __init__(self) -> None:
        self._hubs: dict[str, LiveHub] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._supervisor = TaskSupervisor("pyrivet live inspector")

    def join(self, runtime: Runtime, actor: ResolvedActor, sock: LiveSocket) -> LiveHub:
        hub = self._hubs.get(actor.actor_id)
        if hub is None:
            hub = self._hubs[actor.actor_id] = LiveHub(runtime, actor)
            self._tasks[actor.actor_id] = self._supervisor.spawn(
                hub.pump(), name=f"live inspector {actor.actor_id}"
            )
            runtime.watch(actor.actor_id, hub)
        hub.sockets.add(sock)
        return hub

    def leave(self, runtime: Runtime, hub: LiveHub, sock: LiveSocket) -> None:
        hub.sockets.discard(sock)
        actor_id = hub.actor.actor_id
        if not hub.sockets and self._hubs.get(actor_id) is hub:
            del self._hubs[actor_id]
            runtime.watch(actor_id, None)
            task = self._tasks.pop(actor_id, None)
            if task is not None:
                task.cancel()

    def __len__(self) -> int:
        return len(self._hubs)
