"""How ``c.client()`` gets a client without the runtime importing the client package.

The runtime (L3) may not import ``pyrivet.client`` (L3', beside it), yet ``c.client()``
must return that very client, so actor code calls other actors exactly as outside code
does: same handles, same typed errors, same copies of values. The dependency is
inverted: the runtime knows only `ClientFactory` (a callable from its in-process
transport to an `ActorClient`) and the facade ``pyrivet/__init__.py`` (L5, which
imports both sides and is imported before any module of the package runs) installs
``pyrivet.client.Client`` as the factory at import time; mypy checks there that
`Client` is an `ActorClient`.

Each `Runtime` builds its client once, when it starts (a client over the in-process
transport does no I/O and holds no resources), so ``c.client()`` is an attribute read
in a hot action. Later client features (``handle.send`` for queues) come with the
client class itself and need nothing here.
"""

from __future__ import annotations

from collections.abc import Callable

from ..actor._client import ActorClient
from .local_transport import LocalTransport

__all__ = ["ClientFactory", "install_client_factory", "new_actor_client"]

#: Builds the client ``c.client()`` returns from the runtime's in-process transport.
ClientFactory = Callable[[LocalTransport], ActorClient]

_factory: ClientFactory | None = None


def install_client_factory(factory: ClientFactory) -> None:
    """Make ``factory`` build the client of every runtime started from now on."""
    global _factory
    _factory = factory


def new_actor_client(transport: LocalTransport) -> ActorClient:
    """The client for a runtime's actors, over ``transport``.

    Raises:
        RuntimeError: no factory is installed (only if the package was imported
            without running its facade, which Python never does).
    """
    if _factory is None:
        raise RuntimeError("pyrivet's facade did not install the actor client; import pyrivet")
    return _factory(transport)
