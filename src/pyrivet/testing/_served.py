"""`ServedApp`: what the ``pyrivet_server`` fixture of the pytest plugin gives a test."""

from __future__ import annotations

from dataclasses import dataclass

from .._runtime.runtime import Runtime

__all__ = ["ServedApp"]


@dataclass(frozen=True)
class ServedApp:
    """A runtime served over HTTP and WebSocket on a loopback port, for a test."""

    #: Base URL, e.g. ``http://127.0.0.1:41234``: pass it to ``Client(url)``.
    url: str
    port: int
    runtime: Runtime
