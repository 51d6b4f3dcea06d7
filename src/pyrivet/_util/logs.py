"""pyrivet's logs reach stderr when the application configured no logging.

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

import logging
import sys
from typing import TextIO

__all__ = ["FallbackHandler", "install_fallback_handler"]

_FORMAT = "%(levelname)s %(name)s: %(message)s"


class FallbackHandler(logging.StreamHandler[TextIO]):
    """Writes WARNING and above to stderr while no other handler would receive them."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter(_FORMAT))

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
