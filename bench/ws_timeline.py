"""A timeline of each sequential WebSocket call inside a server: a launcher for
``prof_server_ws.py --wrap`` that stamps (``time.perf_counter_ns``) where a call goes.

    python bench/prof_server_ws.py strict 1500 --wrap "python ws_timeline.py /tmp/t.strict"
    python bench/prof_server_ws.py echo-commit 1500 --wrap "python ws_timeline.py /tmp/t.floor"

(The wrapped server runs in bench/, hence the path.)

It runs the server command it is given (``python -c CODE ...`` for ``pyrivet serve``
through `prof_server_ws.LAUNCH`, ``python echo_floor.py ...`` for the floors) in its
own process, after patching, per call:

* **r**: the frame's ``data_received`` (pyrivet's `BatchingWebSocketProtocol`, or
  uvicorn's `WebSocketsSansIOProtocol` that the echo floor runs);
* **c0 / c1**: around the commit (pyrivet's `Writer.commit`, run inline on the loop by
  the SQLite driver's fast path; the floor's `bench_core.bare_commit`);
* pyrivet only: **e**, the encoding of the event the commit released
  (``encode_to_client`` of an `Event`); **s**, the end of the committer's flush
  (`Committer._kicked`: the commit settled, its tickets resolved); **a**, the encoding
  of the action's reply (``encode_to_client`` of an `ActionResponse`), in the action's
  task;
* **w**: the first ``transport.write`` after c1 (the transport is wrapped when the
  protocol is made).

At exit (the server's graceful stop on SIGTERM) it writes to the file named first the
medians of each segment over the last two thirds of the calls (the first third is
warm-up), in µs. Stamps cost a few hundred ns each; segments are wall time, so the
load of the machine is in them. Not a benchmark: a split of one call.
"""

from __future__ import annotations

import atexit
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

import bench_core  # this folder is sys.path[0] as a script
from pyrivet._runtime import committer
from pyrivet.server import ws_connect
from pyrivet.server._uvicorn_ws import BatchingWebSocketProtocol
from pyrivet.storage import _sqlite_writer

SEGMENTS = [
    ("r", "c0", "frame read -> commit start"),
    ("c0", "c1", "the commit (SQLite + fdatasync)"),
    ("c1", "e", "commit end -> the released event's encoding"),
    ("e", "s", "  -> the flush's end (event queued, tickets resolved)"),
    ("s", "a", "  -> the reply's encoding, in the action's task"),
    ("a", "w", "  -> the write (reply encoded, queued, framed)"),
    ("c1", "w", "commit end -> write"),
    ("r", "w", "frame read -> write"),
]

calls: list[dict[str, int]] = []
_now = time.perf_counter_ns


def _current() -> dict[str, int] | None:
    return calls[-1] if calls else None


def frame_read() -> None:
    call = _current()
    if call is None or "w" in call:  # frames before a call's reply are its own
        calls.append({"r": _now()})


def stamp(name: str, after: str) -> None:
    """Stamp ``name`` in the current call once, if ``after`` is stamped already."""
    call = _current()
    if call is not None and after in call and name not in call:
        call[name] = _now()


class StampedTransport:
    """A transport whose writes stamp **w**; everything else is the wrapped one's."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: Any) -> None:
        stamp("w", "c1")
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        stamp("w", "c1")
        self._transport.writelines(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def stamp_protocol(cls: Any) -> None:
    received, made = cls.data_received, cls.connection_made

    def data_received(self: Any, data: bytes) -> None:
        frame_read()
        received(self, data)

    def connection_made(self: Any, transport: Any) -> None:
        made(self, StampedTransport(transport))

    cls.data_received, cls.connection_made = data_received, connection_made


def around(owner: Any, name: str, before: tuple[str, str] | None, after: tuple[str, str]) -> None:
    """Wrap ``owner.name`` to stamp ``before`` on entry and ``after`` on exit."""
    fn = getattr(owner, name)

    def stamped(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            stamp(*before)
        try:
            return fn(*args, **kwargs)
        finally:
            stamp(*after)

    setattr(owner, name, stamped)


def report(path: str) -> None:
    done = [c for c in calls if "w" in c]
    done = done[len(done) // 3 :]
    lines = [f"{len(done)} calls, medians (µs)"]
    for a, b, label in SEGMENTS:
        spans = [(c[b] - c[a]) / 1000 for c in done if a in c and b in c]
        if spans:
            lines.append(f"{a:>2} -> {b:<2} {statistics.median(spans):8.1f}  {label}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def stamp_pyrivet() -> None:
    stamp_protocol(BatchingWebSocketProtocol)
    around(_sqlite_writer.Writer, "commit", ("c0", "r"), ("c1", "c0"))
    around(committer.Committer, "_kicked", None, ("s", "c1"))
    encode: Callable[[Any, Any], bytes] = getattr(ws_connect, "encode_to_client")  # noqa: B009

    def encode_to_client(msg: Any, encoding: Any) -> bytes:
        if type(msg).__name__ == "ActionResponse":
            stamp("a", "c1")
        else:
            stamp("e", "c1")
        return encode(msg, encoding)

    setattr(ws_connect, "encode_to_client", encode_to_client)  # noqa: B010


def stamp_echo_floor() -> None:
    stamp_protocol(WebSocketsSansIOProtocol)
    around(bench_core, "bare_commit", ("c0", "r"), ("c1", "c0"))


def main() -> None:
    out, command = sys.argv[1], sys.argv[3:]  # [2] is the interpreter of the command
    atexit.register(report, out)
    if command[0] == "-c":
        stamp_pyrivet()
        sys.argv = ["-c", *command[2:]]
        exec(compile(command[1], "<launch>", "exec"), {"__name__": "__main__"})
    else:
        stamp_echo_floor()
        sys.argv = command
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    main()
