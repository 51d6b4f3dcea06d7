"""`Callbacks`: a list of plain callbacks that are all called with one value.

Used for status listeners: registering returns a function that unregisters, and a
callback that raises is logged and skipped, so one bad listener never stops the others
(or the code that reports the change). Runs wherever `call` is called; not thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Callbacks"]

T = TypeVar("T")


class Callbacks(Generic[T]):
    """Callbacks taking one value; ``what`` names them in the log of a failure."""

    __slots__ = ("_callbacks", "_log", "_what")

    def __init__(self, what: str, log: logging.Logger) -> None:
        self._callbacks: list[Callable[[T], object]] = []
        self._what = what
        self._log = log

    def add(self, callback: Callable[[T], object]) -> Callable[[], None]:
        """Register ``callback``; returns a function that unregisters it (idempotent)."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def __len__(self) -> int:
        return len(self._callbacks)

    def call(self, value: T) -> None:
        """Call every callback with ``value``, in registration order."""
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                self._log.exception("%s failed", self._what)
