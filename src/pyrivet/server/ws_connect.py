"""The WebSocket ``connect`` protocol (protocol reference §9): one client connection.

Opening: the socket is accepted selecting subprotocol ``rivet`` (RivetKit's Node
client aborts otherwise) with the encoding from ``rivet_encoding.<enc>`` (json when
absent) and params from ``rivet_conn_params.<uri-encoded JSON>``. An unknown encoding
closes it at once with 1003 ``actor.unsupported_websocket_encoding``. Then the target
is resolved (``getOrCreate`` creates the actor) and the runtime opens the connection,
running ``on_before_connect`` / conn state / ``on_connect``. Any failure there is sent
as an ``Error`` frame without ``actionId``, then the socket closes with 1011 and reason
``group.code``. On success the first frame is ``Init {actorId, connectionId}``.

Serving, in the handler's task: frames are read one at a time. A
``SubscriptionRequest`` changes the connection's subscriptions (no reply). Each
``ActionRequest`` runs as its own task owned by this connection, so several run at
once and replies (``ActionResponse`` or ``Error`` with ``actionId``) go out in
completion order. An action written as a plain function starts in the handler's task
instead (`TaskSupervisor.spawn_eager`): in relaxed mode it ends there, its reply sent
with the events it broadcast, and only what has to wait (its commit, in strict mode)
goes on in a task. Events reach the socket only for subscribed names (broadcasts) or
when sent to this connection. All frames leave through one `Outbox`; the reply of the
only action in flight is sent from its task (`Outbox.reply`: no hop through the
writer task), the others' through the writer, which batches them.

Bad input closes only this socket: a frame over the incoming limit
(``message/incoming_too_long``, its metadata giving the frame's ``size``) or one that
does not decode (``actor/invalid_request``) stops the reading; the actions already in
flight finish and send their replies, then come an ``Error`` frame and a 1011 close.
Nothing the bad frame (or any later one) asked for runs, and the client's other calls
get their own replies instead of the bad frame's error. A reply over the
outgoing limit fails that action with ``message/outgoing_too_long``.

Closing: when the client goes, in-flight actions finish (their changes are committed;
their replies are dropped), then ``on_disconnect`` runs. When the actor closes the
connection (sleep, destroy, ``conn.disconnect()``), in-flight replies are sent first,
then the socket closes with 1000 and the runtime's reason.

A socket another process served (envoy mode: the engine's gateway kept it open while
the actor moved here; ``_runtime/handoff.py``) arrives with a `RevivedSocket` in its
scope: it is not opened again (no hooks, no ``Init``: the client has its own) but
parked for its stored connection, which the actor's wake attaches; from then on it is
served as above. The transport's `SocketIdentity` is kept on the session for the
connection's stored record.

Server stop (`ServerState.go_away`, called by `pyrivet.server.serve` once it stopped
accepting): every socket closes with 1012 ``ws.going_away`` after its in-flight
replies are sent; a socket accepted while the server stops is closed that way at
once (RivetKit's client retries such an attempt with backoff).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from functools import partial
from typing import Any, Final

from .._codec import values
from .._protocol.errors import ProtocolError, UnsupportedEncodingError
from .._protocol.messages import (
    ActionRequest,
    ActionResponse,
    ActorSpecifier,
    Encoding,
    Event,
    Init,
    SubscriptionRequest,
    decode_to_server,
    encode_to_client,
    parse_encoding,
)
from .._runtime.connections import ConnImpl, HibernatableSink
from .._runtime.handoff import RevivedSocket, SocketIdentity
from .._util.tasks import TaskSupervisor
from ..errors import ActorError, ActorStoppingError, EncodingError, InternalError
from ._asgi import Receive, RequestInfo, Send
from ._state import ServerState
from ._uvicorn_ws import DirectReceive, DirectSend
from ._websocket import Outbox
from .conn_params import PARAMS_HEADER, parse_params
from .errors import (
    CLOSE_ERROR,
    CLOSE_RESTART,
    CLOSE_UNSUPPORTED_DATA,
    GOING_AWAY_REASON,
    check_storable,
    close_reason,
    error_frame,
    incoming_too_long,
    outgoing_too_long,
    to_wire,
)
from .gateway import route_target
from .resume import EVENT_FRAME, HELLO_EVENT, parse_resume
from .routing import Route

__all__ = ["ENCODING_SUBPROTOCOL", "RIVET_SUBPROTOCOL", "accept_subprotocol", "handle_connect"]

log = logging.getLogger("pyrivet.server")

RIVET_SUBPROTOCOL: Final = "rivet"
ENCODING_SUBPROTOCOL: Final = "rivet_encoding."
#: Most actions one connection may have in flight; more fail with ``actor/overloaded``.
MAX_IN_FLIGHT: Final = 1024
#: Most messages held for a hibernated connection while its actor wakes; more actions
#: fail with ``connection/wake_buffer_full``.
MAX_WAKE_BUFFER: Final = 256


def accept_subprotocol(protocols: list[str]) -> str | None:
    """The subprotocol to select: ``rivet`` when offered."""
    return RIVET_SUBPROTOCOL if RIVET_SUBPROTOCOL in protocols else None


def _requested_encoding(protocols: list[str]) -> str | None:
    for protocol in protocols:
        if protocol.startswith(ENCODING_SUBPROTOCOL):
            return protocol[len(ENCODING_SUBPROTOCOL) :]
    return None


def frame_size(data: str | bytes) -> int:
    """Bytes on the wire of a frame (text frames are UTF-8)."""
    return len(data) if isinstance(data, bytes) else len(data.encode())


class ConnectSession(HibernatableSink):
    """One accepted ``connect`` socket; also the runtime's `EventSink` for it.

    While its actor sleeps the session is *hibernated*: it keeps reading the socket but
    holds no connection object (``conn`` is None, ``conn_id`` says which one it
    serves). A message then wakes the actor (`_wake`); messages that arrive meanwhile
    wait in ``_held`` (at most `MAX_WAKE_BUFFER`; past it an action fails at once with
    ``connection/wake_buffer_full``), then run in order. A client that leaves meanwhile
    is reported to the runtime without waking the actor.
    """

    __slots__ = (
        "_eager",
        "_early",
        "_encoding",
        "_failure",
        "_held",
        "_in_flight",
        "_outbox",
        "_plain",
        "_state",
        "_tasks",
        "_text",
        "actor",
        "conn",
        "conn_id",
        "handoff",
        "hibernatable",
        "sequenced",
    )

    def __init__(
        self, state: ServerState, encoding: Encoding, outbox: Outbox, tasks: TaskSupervisor
    ) -> None:
        self._state = state
        self._encoding = encoding
        self._text = encoding == "json"
        self._outbox = outbox
        self._tasks = tasks
        #: Action tasks running (a dict, not a set: emptied, it shrinks back to 64 bytes).
        self._in_flight: dict[asyncio.Task[None], None] = {}
        #: 1 while an action runs its first step in this task (`_start_action`): in
        #: flight too, though not in ``_in_flight``.
        self._eager = 0
        #: Per action name: whether it may start in this task
        #: (`Runtime.runs_without_waiting`; the actor's definition does not change).
        self._plain: dict[str, bool] = {}
        #: Frames (events) produced before Init was queued.
        self._early: list[str | bytes] | None = []
        self.conn: ConnImpl | None = None
        self.actor: ActorSpecifier | None = None
        #: Why reading stopped on a bad frame: sent by `finish` after in-flight replies.
        self._failure: ActorError | None = None
        #: The client negotiated numbered events (``resume.py``).
        self.sequenced = False
        #: The actor type lets connections hibernate (set once it is resolved).
        self.hibernatable = False
        self.conn_id: str | None = None
        #: How another process can serve this socket again (its transport's, if any).
        self.handoff: SocketIdentity | None = None
        #: Messages waiting for the actor to wake (None: not waking).
        self._held: deque[ActionRequest | SubscriptionRequest] | None = None

    def _wire(self, data: bytes) -> str | bytes:
        return data.decode() if self._text else data

    def fail(self, exc: BaseException) -> None:
        """Send a connection-level Error frame, then close with 1011 ``group.code``."""
        error = to_wire(exc)
        self._outbox.frame(self._wire(error_frame(error, self._encoding, actor=self.actor)))
        self._outbox.close(CLOSE_ERROR, close_reason(error))

    def ready(self, conn: ConnImpl) -> None:
        """Queue Init, then whatever events the connect hooks produced."""
        self.conn = conn
        self.conn_id = conn.id
        assert self.actor is not None
        init = Init(self.actor.actor_id, conn.id)
        self._outbox.frame(self._wire(encode_to_client(init, self._encoding)))
        early, self._early = self._early or [], None
        for frame in early:
            self._outbox.frame(frame)

    # -- EventSink (called by the runtime on the event loop) -----------------------

    def deliver(self, event: str, payload: bytes) -> None:
        try:
            self._queue_event(event, values.decode(payload), event)
        except EncodingError as exc:
            log.warning("event %r not sent: %s", event, exc.message)

    def _queue_event(self, name: str, args: Any, event: str) -> None:
        data = encode_to_client(Event(name, args), self._encoding)
        size = len(data)  # json: UTF-8 bytes, as the text frame is on the wire
        if size > self._state.max_outgoing:
            log.warning(
                "event %r not sent: %d bytes, above the outgoing limit (%d)",
                event,
                size,
                self._state.max_outgoing,
            )
            return
        frame = data.decode() if self._text else data
        if self._early is not None:
            self._early.append(frame)
        else:
            self._outbox.frame(frame, wake_soon=True)

    def closed(self, reason: str | None) -> None:
        self._close_after_in_flight(1000, reason or "")

    def deliver_seq(self, event: str, payload: bytes, epoch: str, seq: int) -> None:
        try:
            args = values.decode(payload)
            self._queue_event(EVENT_FRAME, [seq, epoch, event, args], event)
        except EncodingError as exc:
            log.warning("event %r not sent: %s", event, exc.message)

    def hello(self, info: dict[str, Any]) -> None:
        frame = self._wire(encode_to_client(Event(HELLO_EVENT, [info]), self._encoding))
        if self._early is not None:
            self._early.insert(0, frame)
        else:
            self._outbox.frame(frame)

    def hibernate(self) -> None:
        self.conn = None
        if not self._in_flight and not self._eager:
            self._outbox.park()  # no writer task while nothing is sent

    def attach(self, conn: ConnImpl) -> None:
        self.conn = conn

    # -- server stop (`Leaving`) ---------------------------------------------------

    def go_away(self) -> None:
        self._close_after_in_flight(CLOSE_RESTART, GOING_AWAY_REASON)

    async def wait_closed(self) -> None:
        await self._outbox.done.wait()

    def _close_after_in_flight(self, code: int, reason: str) -> None:
        if self._outbox.closing:
            return
        if not self._in_flight and not self._eager:
            self._outbox.close(code, reason)
            return
        self._tasks.spawn(self._close_when_idle(code, reason), name="conn-close")

    async def _close_when_idle(self, code: int, reason: str) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._outbox.close(code, reason)

    # -- reading -------------------------------------------------------------------

    async def serve(self, receive: Receive, direct: DirectReceive | None = None) -> None:
        """Read frames until the client disconnects or a frame is rejected.

        With ``direct`` (`pyrivet serve`'s protocol), most frames come to `_take_direct`
        in the transport's callback instead, in this task's context (a trace the
        handler continued reaches the actions); ``receive`` still brings the others,
        in order, and the end."""
        if direct is not None:
            run = contextvars.copy_context().run
            # (mypy's partial does not see that the message completes run's arguments)
            direct.attach(partial(run, self._take_direct, direct))  # type: ignore[call-arg]
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                data: str | bytes | None = message.get("bytes")
                if data is None:
                    data = message.get("text") or ""
                if not self._take(data):
                    return
        finally:
            if direct is not None:
                direct.detach()

    def _take(self, data: str | bytes) -> bool:
        """Act on one message: False when it was rejected (reading stops; ``_failure``
        says why). It does not raise: an unexpected error is logged and stops the
        reading as a rejected message does, with an internal error."""
        try:
            return self._take_message(data)
        except Exception:
            log.exception("a WebSocket message could not be handled")
            self._failure = InternalError()
            return False

    def _take_message(self, data: str | bytes) -> bool:
        size = len(data) if type(data) is bytes else frame_size(data)
        limit = self._state.max_incoming
        if size > limit:
            self._failure = incoming_too_long("a message", size, limit)
            return False
        try:
            request = decode_to_server(data, self._encoding)
        except ProtocolError as exc:
            self._failure = exc
            return False
        if self.conn is None or self._held is not None:
            self._hold(request)
        elif type(request) is ActionRequest:
            self._start_action(request)  # `_dispatch` without its call, for every action
        else:
            self._dispatch(request)
        return True

    def _take_direct(self, direct: DirectReceive, data: str | bytes) -> None:
        """`_take`, called by the protocol in ``data_received``."""
        if not self._take(data):
            direct.detach(stop=True)  # `serve` returns

    def _dispatch(self, request: ActionRequest | SubscriptionRequest) -> None:
        conn = self.conn
        assert conn is not None
        if isinstance(request, ActionRequest):
            self._start_action(request)
        elif request.subscribe:
            conn.subscribe(request.event_name)
        else:
            conn.unsubscribe(request.event_name)

    # -- hibernation -----------------------------------------------------------------

    def _hold(self, request: ActionRequest | SubscriptionRequest) -> None:
        """Keep a message of a hibernated connection until its actor is awake."""
        held = self._held
        if held is None:
            held = self._held = deque()
            self._tasks.spawn(self._wake(), name="conn-wake")
        if len(held) >= MAX_WAKE_BUFFER and isinstance(request, ActionRequest):
            error = ActorError(
                f"the actor is waking up and {MAX_WAKE_BUFFER} messages of this connection "
                "already wait for it; wait for replies before sending more",
                group="connection",
                code="wake_buffer_full",
            )
            self._reply_error(error, request.id)
            return
        held.append(request)

    async def _wake(self) -> None:
        """Wake the actor for the held messages, then run them in order."""
        assert self.actor is not None and self.conn_id is not None
        try:
            await self._state.runtime.wake_parked(self.actor.actor_id, self.conn_id, self)
        except Exception as exc:
            self._held = None
            self.fail(exc)
            return
        held = self._held or deque()
        while held:
            self._dispatch(held.popleft())
        self._held = None

    def _start_action(self, request: ActionRequest) -> None:
        try:
            check_storable(request.args, "args")
        except ActorError as exc:
            self._reply_error(exc, request.id)
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            error = ActorError(
                f"this connection already has {MAX_IN_FLIGHT} actions in flight; wait for "
                "replies before sending more",
                code="overloaded",
            )
            self._reply_error(error, request.id)
            return
        name = request.name
        plain = self._plain.get(name)
        if plain is None:
            conn = self.conn
            assert conn is not None
            plain = self._plain[name] = self._state.runtime.runs_without_waiting(conn, name)
        if plain:
            # Events the action queues wait for its reply (one write for all of them);
            # the outbox wakes its writer after the step if something is left queued.
            outbox = self._outbox
            self._eager = 1
            outbox.defer_wakes()
            try:
                task = self._tasks.spawn_eager(self._run_action(request))
            finally:
                self._eager = 0
                outbox.resume_wakes()
            if task is None:
                return
            task.set_name(f"action:{name}")
        else:
            task = self._tasks.spawn(self._run_action(request), name=f"action:{name}")
        self._in_flight[task] = None
        task.add_done_callback(self._action_done)

    def _action_done(self, task: asyncio.Task[None]) -> None:
        in_flight = self._in_flight
        in_flight.pop(task, None)
        if not in_flight:
            in_flight.clear()  # frees the table a burst of actions grew

    def _reply_error(self, exc: BaseException, action_id: int) -> None:
        frame = error_frame(exc, self._encoding, action_id=action_id, actor=self.actor)
        self._outbox.frame(self._wire(frame), reply=True)

    async def _run_action(self, request: ActionRequest) -> None:
        conn = self.conn
        assert conn is not None
        limit = self._state.max_outgoing
        try:
            try:
                output: Any = await self._state.runtime.call_on_conn(
                    conn, request.name, request.args
                )
            except ActorStoppingError:
                if not conn.hibernatable or conn.sink is not self:
                    raise
                # The actor started to sleep: once this connection is hibernated, the
                # request waits for the wake like any message sent after it.
                await self._state.runtime.wait_conn_settled(conn)
                if self.conn is not None:
                    raise
                self._hold(request)
                return
            data = encode_to_client(ActionResponse(request.id, output), self._encoding)
            if len(data) > limit:
                raise outgoing_too_long("the action result", len(data), limit)
        except Exception as exc:
            self._reply_error(exc, request.id)
        else:
            frame = data.decode() if self._text else data
            outbox = self._outbox
            if len(self._in_flight) + self._eager > 1:
                outbox.frame(frame, reply=True)  # batched with the others'
            elif not outbox.reply_now(frame):
                await outbox.reply(frame)

    async def finish(self) -> None:
        """After reading stopped: let in-flight actions end (their replies are sent),
        fail the socket if a bad frame stopped the reading, then disconnect."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._failure is not None:
            self.fail(self._failure)
        conn = self.conn
        runtime = self._state.runtime
        if conn is None:
            if self.conn_id is not None and self.actor is not None and not self._outbox.closing:
                # Hibernated: the client left (or a ping timed out) while its actor slept.
                runtime.parked_left(self.actor.actor_id, self.conn_id, self)
        elif conn.is_open and conn.sink is self:
            if self._state.going_away and conn.hibernatable:
                runtime.detach(conn)  # the client may resume it after the restart
            else:
                await conn.disconnect()


async def _open(
    state: ServerState,
    session: ConnectSession,
    request: RequestInfo,
    route: Route,
    protocols: list[str],
) -> bool:
    """Resolve the actor and open the connection; False when it failed (the session
    sent the error and closes)."""
    try:
        params = parse_params(request.header(PARAMS_HEADER), protocols)
        offer = parse_resume(protocols)
        target = route_target(route, request.query_string, max_input_size=state.max_incoming)
        actor = await state.directory.resolve(target)
        session.actor = actor.specifier()
        options = state.runtime.definition(actor.name).options
        session.hibernatable = options.hibernatable_connections
        resume, subscriptions = offer if offer is not None else (None, None)
        session.sequenced = resume is not None
        conn = await state.runtime.connect(
            actor.actor_id, params, session, subscriptions, request.for_actor(), resume
        )
    except Exception as exc:
        session.fail(exc)
        return False
    session.ready(conn)
    return True


async def _revive(state: ServerState, session: ConnectSession, revive: RevivedSocket) -> bool:
    """Take a socket another process served (``handoff.py``) as the hibernated socket of
    its stored connection: parked until the actor's wake attaches it; no hooks run and
    no ``Init`` is sent (the client has its own). False when it failed (the session
    sent the error and closes)."""
    try:
        actor = await state.directory.by_id(revive.actor_id)
        session.actor = actor.specifier()
        session.hibernatable = True
        session.sequenced = revive.sequenced
        session.conn_id = revive.conn_id
        session._early = None  # events go straight out: there is no Init to wait for
        state.runtime.park(revive.actor_id, revive.conn_id, session)
    except Exception as exc:
        revive.parked(exc)
        session.fail(exc)
        return False
    revive.parked(None)
    return True


async def handle_connect(
    state: ServerState,
    request: RequestInfo,
    route: Route,
    receive: Receive,
    send: Send,
    *,
    handoff: SocketIdentity | None = None,
    revive: RevivedSocket | None = None,
    direct: DirectReceive | None = None,
    direct_send: DirectSend | None = None,
) -> None:
    """Serve one ``…/connect`` WebSocket from handshake to close (see the module doc).

    ``handoff`` (from the transport) is kept for the connection's stored record;
    ``revive`` marks a socket another process served (`_revive`); ``direct`` (from
    `pyrivet serve`'s protocol) takes frames without a hop through ``receive``, and
    ``direct_send`` writes them without ``send`` (`Outbox`)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    protocols = request.subprotocols()
    await send({"type": "websocket.accept", "subprotocol": accept_subprotocol(protocols)})
    try:
        encoding = parse_encoding(_requested_encoding(protocols))
    except UnsupportedEncodingError:
        await send(
            {
                "type": "websocket.close",
                "code": CLOSE_UNSUPPORTED_DATA,
                "reason": "actor.unsupported_websocket_encoding",
            }
        )
        return
    # Owns the writer, the action tasks and the close task; whatever is left when
    # the handler ends (only on cancellation) is cancelled.
    tasks = TaskSupervisor("pyrivet connection", asyncio.get_running_loop())
    options = state.options
    outbox = Outbox(
        send,
        options.max_send_queue,
        tasks,
        reply_first=options.reply_before_events,
        direct=direct_send,
    )
    session = ConnectSession(state, encoding, outbox, tasks)
    outbox.start()
    session.handoff = handoff
    state.sockets.add(session)
    try:
        if state.going_away:
            # The server stops: do not wake an actor for a socket about to close.
            session.go_away()
        elif await (
            _revive(state, session, revive)
            if revive is not None
            else _open(state, session, request, route, protocols)
        ):
            # Nothing of the upgrade request is kept while the socket lives (a
            # hibernated connection should cost little more than its socket).
            del request, route, protocols
            await session.serve(receive, direct)
            await session.finish()
            outbox.close(1000)
        await outbox.done.wait()
    finally:
        state.sockets.discard(session)
        await tasks.aclose()
