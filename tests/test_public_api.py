"""The public names of each public package are pinned: adding or removing one is a decision."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "pyrivet": [
        "__version__",
        "actor",
        "ActorDefinition",
        "ActorOptions",
        "ActorContext",
        "Conn",
        "Registry",
        "Runtime",
        "ActorStatus",
        "HistoryRecord",
        "MemoryDriver",
        "SQLiteDriver",
        "Client",
        "PyrivetError",
        "ActorError",
        "UserError",
        "ActorNotFoundError",
        "ActionNotFoundError",
        "ActionTimeoutError",
        "CommitError",
        "DataDirLockedError",
        "DefinitionError",
        "DuplicateKeyError",
        "EncodingError",
        "InternalError",
        "InvalidArgumentsError",
    ],
    "pyrivet.actor": [
        "KV",
        "AbortSignal",
        "ActionSpec",
        "ActorContext",
        "ActorDefinition",
        "ActorOptions",
        "Conn",
        "Schedule",
        "ScheduleEntry",
        "actor",
    ],
    "pyrivet.client": [
        "ActorConnection",
        "ActorHandle",
        "Backoff",
        "Client",
        "ConnectionClosedError",
        "ConnectionListener",
        "ConnectionLostError",
        "EventStream",
        "HttpRequestError",
        "NetworkError",
        "NetworkOptions",
        "RawResponse",
        "RawWebSocket",
        "SyncActorConnection",
        "SyncActorHandle",
        "SyncClient",
        "SyncRawWebSocket",
        "Transport",
        "TransportConnection",
        "TransportSource",
    ],
    "pyrivet.storage": [
        "ActorRecord",
        "ActorStore",
        "AlarmRecord",
        "CommitRecord",
        "HistoryEntry",
        "MemoryDriver",
        "SQLiteDriver",
        "StoredState",
    ],
    "pyrivet.testing": ["MockClock", "ServedApp", "run_actors"],
    "pyrivet.errors": [
        "PyrivetError",
        "DefinitionError",
        "StorageError",
        "DataDirLockedError",
        "ActorError",
        "UserError",
        "ActorNotFoundError",
        "DuplicateKeyError",
        "ActionNotFoundError",
        "InvalidArgumentsError",
        "ActionTimeoutError",
        "ActorStoppingError",
        "EncodingError",
        "CommitError",
        "ScheduleError",
        "KVError",
        "InternalError",
        "ActorAborted",
        "error_from_wire",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name} is missing"
