"""pyrivet's log output: a fallback handler, and text and JSON formatters with actor fields.

Records about an actor carry ``actor`` (its type), ``actor_key`` (a list of strings)
and ``actor_id`` as attributes (the runtime passes them as ``extra``; ``c.log`` does
too). `ActorTextFormatter` appends them to the line, `JsonFormatter` writes one JSON
object per record with them as fields; ``pyrivet serve --log-format json`` installs
the latter on the root logger.

The fallback:

A library usually attaches a `logging.NullHandler` and leaves output to the
application; then an action's traceback or a ``c.log.warning`` goes nowhere until the
user configures logging, and a failing actor looks silent. pyrivet attaches
`FallbackHandler` to its ``pyrivet`` logger instead: it writes warnings and errors to
the current ``sys.stderr`` (as Python's own last-resort handler would) *only while*
neither the root logger nor the ``pyrivet`` logger has another handler. Once the
application configures logging (``logging.basicConfig``, ``dictConfig``, uvicorn's
config, pytest's capture), records go only to its handlers, so no line is printed
twice. Levels stay the application's to set: the handler adds none of its own below
WARNING.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "ActorTextFormatter",
    "FallbackHandler",
    "JsonFormatter",
    "actor_suffix",
    "install_fallback_handler",
]

_FORMAT = "%(levelname)s %(name)s: %(message)s"


class FallbackHandler(logging.StreamHandler[TextIO]):
    """Writes WARNING and above to stderr while no other handler would receive them."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger
        self.setLevel(logging.WARNING)
        self.setFormatter(ActorTextFormatter(_FORMAT))

    @property
    def stream(self) -> TextIO:
        # The stderr of the moment (pytest's capsys, a redirected stderr), not the one
        # at import time.
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def handle(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().handlers or any(h is not self for h in self._logger.handlers):
            return False  # the application configured logging: it receives the record
        return super().handle(record)


def install_fallback_handler(name: str = "pyrivet") -> None:
    """Attach a `FallbackHandler` to logger ``name`` once (idempotent)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, FallbackHandler) for h in logger.handlers):
        logger.addHandler(FallbackHandler(logger))


_ACTOR_FIELDS = ("actor", "actor_key", "actor_id")


def actor_suffix(record: logging.LogRecord) -> str:
    """`` [actor=counter key=room-1 id=…]`` for a record about an actor, else ``""``."""
    actor_id = getattr(record, "actor_id", None)
    if actor_id is None:
        return ""
    key = getattr(record, "actor_key", None)
    key_text = "/".join(key) if isinstance(key, list | tuple) else str(key)
    return f" [actor={getattr(record, 'actor', '?')} key={key_text} id={actor_id}]"


class ActorTextFormatter(logging.Formatter):
    """A `logging.Formatter` that appends the actor's name, key and id (`actor_suffix`)
    to the message line of a record about an actor."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record) + actor_suffix(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601), ``level``,
    ``logger``, ``message``, the actor fields when the record is about an actor
    (``actor``, ``actor_key``, ``actor_id``), and ``exc_info`` (the formatted
    traceback) when it carries an exception. Values JSON cannot hold are written as
    their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _ACTOR_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                out[field] = list(value) if isinstance(value, tuple) else value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)
