"""The errors of envoy mode: what went wrong between pyrivet and the Rivet Engine."""

from __future__ import annotations

from ..errors import PyrivetError

__all__ = ["EngineError", "EngineKVError", "EngineUnavailableError", "EngineVersionError"]


class EngineError(PyrivetError):
    """Raised when the Rivet Engine refuses or breaks the envoy protocol."""


class EngineVersionError(EngineError):
    """The engine speaks another envoy protocol version than this pyrivet.

    Not retried: reconnecting cannot fix it. The message names both versions and the
    engine release to install.
    """


class EngineUnavailableError(EngineError):
    """The engine could not be reached within the bound the envoy was given."""


class EngineKVError(EngineError):
    """The engine answered a KV request with an error (its message is included)."""
