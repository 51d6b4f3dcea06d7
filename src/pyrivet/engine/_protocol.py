"""The envoy protocol of Rivet Engine 2.3.19, version 8, as BARE schema values.

Declared from the engine's generated codec (npm ``@rivetkit/engine-envoy-protocol``
2.3.19, ``VERSION = 8``), type by type and field by field in the same order, so the
bytes match it exactly (pinned by tests/engine/test_protocol.py against that package).
Each WebSocket frame is one `TO_RIVET` (envoy to engine) or `TO_ENVOY` (engine to
envoy) value with no version prefix: the version travels in the connect URL.

`encode_to_rivet` / `decode_to_envoy` are what the envoy uses; decoded values are the
plain data described in `pyrivet.engine._schema` (dicts, `Tagged`, ...). A decode of bad
bytes raises `InvalidMessageError`; an encode of a bad value raises `EncodingError`.
"""

from __future__ import annotations

from typing import Any, Final

from ._schema import (
    BOOL,
    DATA,
    I64,
    STR,
    U16,
    U32,
    U32_ARRAY,
    U64,
    Enum,
    FixedData,
    ListOf,
    MapOf,
    Optional,
    Struct,
    Tagged,
    Union,
)

__all__ = [
    "ACTOR_COMMAND_KEY_DATA",
    "PROTOCOL_VERSION",
    "TO_ENVOY",
    "TO_ENVOY_CONN",
    "TO_GATEWAY",
    "TO_OUTBOUND",
    "TO_RIVET",
    "decode_to_envoy",
    "decode_to_rivet",
    "encode_to_envoy",
    "encode_to_rivet",
]

#: The envoy protocol version this module speaks (``protocol_version`` in the URL).
PROTOCOL_VERSION: Final = 8

ID: Final = STR
JSON: Final = STR
GATEWAY_ID: Final = FixedData(4)
REQUEST_ID: Final = FixedData(4)
MESSAGE_INDEX: Final = U16
KV_KEY: Final = DATA
KV_VALUE: Final = DATA
KV_KEYS: Final = ListOf(KV_KEY)
STR_MAP: Final = MapOf(STR, STR)

# MARK: KV

KV_METADATA: Final = Struct("KvMetadata", ("version", DATA), ("update_ts", I64))
KV_LIST_QUERY: Final = Union(
    "KvListQuery",
    ("KvListAllQuery", None),
    (
        "KvListRangeQuery",
        Struct("KvListRangeQuery", ("start", KV_KEY), ("end", KV_KEY), ("exclusive", BOOL)),
    ),
    ("KvListPrefixQuery", Struct("KvListPrefixQuery", ("key", KV_KEY))),
)
KV_REQUEST_DATA: Final = Union(
    "KvRequestData",
    ("KvGetRequest", Struct("KvGetRequest", ("keys", KV_KEYS))),
    (
        "KvListRequest",
        Struct(
            "KvListRequest",
            ("query", KV_LIST_QUERY),
            ("reverse", Optional(BOOL)),
            ("limit", Optional(U64)),
        ),
    ),
    (
        "KvPutRequest",
        Struct("KvPutRequest", ("keys", KV_KEYS), ("values", ListOf(KV_VALUE))),
    ),
    ("KvDeleteRequest", Struct("KvDeleteRequest", ("keys", KV_KEYS))),
    ("KvDeleteRangeRequest", Struct("KvDeleteRangeRequest", ("start", KV_KEY), ("end", KV_KEY))),
    ("KvDropRequest", None),
)
_KV_ENTRIES: Final = (
    ("keys", KV_KEYS),
    ("values", ListOf(KV_VALUE)),
    ("metadata", ListOf(KV_METADATA)),
)
KV_RESPONSE_DATA: Final = Union(
    "KvResponseData",
    ("KvErrorResponse", Struct("KvErrorResponse", ("message", STR))),
    ("KvGetResponse", Struct("KvGetResponse", *_KV_ENTRIES)),
    ("KvListResponse", Struct("KvListResponse", *_KV_ENTRIES)),
    ("KvPutResponse", None),
    ("KvDeleteResponse", None),
    ("KvDropResponse", None),
)

# MARK: SQLite (declared for completeness of the wire; pyrivet does not send these yet)

SQLITE_DIRTY_PAGE: Final = Struct("SqliteDirtyPage", ("pgno", U32), ("bytes", DATA))
SQLITE_FETCHED_PAGE: Final = Struct("SqliteFetchedPage", ("pgno", U32), ("bytes", Optional(DATA)))
SQLITE_ERROR: Final = Struct("SqliteErrorResponse", ("group", STR), ("code", STR), ("message", STR))
SQLITE_VALUE: Final = (
    ("SqliteValueNull", None),
    ("SqliteValueInteger", Struct("SqliteValueInteger", ("value", I64))),
    ("SqliteValueFloat", Struct("SqliteValueFloat", ("value", FixedData(8)))),
    ("SqliteValueText", Struct("SqliteValueText", ("value", STR))),
    ("SqliteValueBlob", Struct("SqliteValueBlob", ("value", DATA))),
)
SQLITE_BIND_PARAM: Final = Union("SqliteBindParam", *SQLITE_VALUE)
SQLITE_COLUMN_VALUE: Final = Union("SqliteColumnValue", *SQLITE_VALUE)
_COLUMNS_ROWS: Final = (("columns", ListOf(STR)), ("rows", ListOf(ListOf(SQLITE_COLUMN_VALUE))))
SQLITE_QUERY_RESULT: Final = Struct("SqliteQueryResult", *_COLUMNS_ROWS)
SQLITE_EXECUTE_RESULT: Final = Struct(
    "SqliteExecuteResult",
    *_COLUMNS_ROWS,
    ("changes", I64),
    ("last_insert_row_id", Optional(I64)),
)
_OPT_U64: Final = Optional(U64)
_SQL_TARGET: Final = (("namespace_id", ID), ("actor_id", ID), ("generation", U64))
_PARAMS: Final = Optional(ListOf(SQLITE_BIND_PARAM))


def _sqlite_response(name: str, ok: Struct) -> Union:
    return Union(name, (ok.name, ok), ("SqliteErrorResponse", SQLITE_ERROR))


SQLITE_GET_PAGES_REQUEST: Final = Struct(
    "SqliteGetPagesRequest",
    ("actor_id", ID),
    ("pgnos", ListOf(U32)),
    ("expected_generation", _OPT_U64),
    ("expected_head_txid", _OPT_U64),
)
SQLITE_COMMIT_REQUEST: Final = Struct(
    "SqliteCommitRequest",
    ("actor_id", ID),
    ("dirty_pages", ListOf(SQLITE_DIRTY_PAGE)),
    ("db_size_pages", U32),
    ("now_ms", I64),
    ("expected_generation", _OPT_U64),
    ("expected_head_txid", _OPT_U64),
)
SQLITE_STAGE_BEGIN_REQUEST: Final = Struct(
    "SqliteCommitStageBeginRequest",
    ("actor_id", ID),
    ("expected_generation", _OPT_U64),
    ("expected_head_txid", _OPT_U64),
)
SQLITE_STAGE_SEGMENT_REQUEST: Final = Struct(
    "SqliteCommitStageSegmentRequest",
    ("actor_id", ID),
    ("expected_generation", _OPT_U64),
    ("txid", U64),
    ("first_pgno", U32),
    ("dirty_pages", ListOf(SQLITE_DIRTY_PAGE)),
)
SQLITE_FINALIZE_REQUEST: Final = Struct(
    "SqliteCommitFinalizeRequest",
    ("actor_id", ID),
    ("expected_generation", _OPT_U64),
    ("txid", U64),
    ("new_db_size_pages", U32),
    ("now_ms", I64),
    ("segment_first_pgnos", U32_ARRAY),
)
SQLITE_EXEC_REQUEST: Final = Struct("SqliteExecRequest", *_SQL_TARGET, ("sql", STR))
SQLITE_EXECUTE_REQUEST: Final = Struct(
    "SqliteExecuteRequest", *_SQL_TARGET, ("sql", STR), ("params", _PARAMS)
)
SQLITE_EXECUTE_BATCH_REQUEST: Final = Struct(
    "SqliteExecuteBatchRequest",
    *_SQL_TARGET,
    ("statements", ListOf(Struct("SqliteBatchStatement", ("sql", STR), ("params", _PARAMS)))),
)
SQLITE_GET_PAGES_RESPONSE: Final = _sqlite_response(
    "SqliteGetPagesResponse",
    Struct("SqliteGetPagesOk", ("pages", ListOf(SQLITE_FETCHED_PAGE)), ("head_txid", _OPT_U64)),
)
SQLITE_COMMIT_RESPONSE: Final = _sqlite_response(
    "SqliteCommitResponse", Struct("SqliteCommitOk", ("head_txid", _OPT_U64))
)
SQLITE_STAGE_BEGIN_RESPONSE: Final = _sqlite_response(
    "SqliteCommitStageBeginResponse", Struct("SqliteCommitStageBeginOk", ("txid", U64))
)
SQLITE_STAGE_SEGMENT_RESPONSE: Final = _sqlite_response(
    "SqliteCommitStageSegmentResponse",
    Struct("SqliteCommitStageSegmentOk", ("staged_bytes", U64)),
)
SQLITE_FINALIZE_RESPONSE: Final = _sqlite_response(
    "SqliteCommitFinalizeResponse", Struct("SqliteCommitFinalizeOk", ("head_txid", _OPT_U64))
)
SQLITE_EXEC_RESPONSE: Final = _sqlite_response(
    "SqliteExecResponse", Struct("SqliteExecOk", ("result", SQLITE_QUERY_RESULT))
)
SQLITE_EXECUTE_RESPONSE: Final = _sqlite_response(
    "SqliteExecuteResponse", Struct("SqliteExecuteOk", ("result", SQLITE_EXECUTE_RESULT))
)
SQLITE_EXECUTE_BATCH_RESPONSE: Final = _sqlite_response(
    "SqliteExecuteBatchResponse",
    Struct("SqliteExecuteBatchOk", ("results", ListOf(SQLITE_EXECUTE_RESULT))),
)

# MARK: actors, commands, events

STOP_CODE: Final = Enum("StopCode", ("Ok", "Error"))
STOP_ACTOR_REASON: Final = Enum(
    "StopActorReason", ("SleepIntent", "StopIntent", "Destroy", "GoingAway", "Lost")
)
ACTOR_NAME: Final = Struct("ActorName", ("metadata", JSON))
ACTOR_CONFIG: Final = Struct(
    "ActorConfig",
    ("name", STR),
    ("key", Optional(STR)),
    ("create_ts", I64),
    ("input", Optional(DATA)),
)
ACTOR_CHECKPOINT: Final = Struct(
    "ActorCheckpoint", ("actor_id", ID), ("generation", U32), ("index", I64)
)
ACTOR_INTENT: Final = Union("ActorIntent", ("ActorIntentSleep", None), ("ActorIntentStop", None))
ACTOR_STATE: Final = Union(
    "ActorState",
    ("ActorStateRunning", None),
    (
        "ActorStateStopped",
        Struct("ActorStateStopped", ("code", STOP_CODE), ("message", Optional(STR))),
    ),
)
EVENT: Final = Union(
    "Event",
    ("EventActorIntent", Struct("EventActorIntent", ("intent", ACTOR_INTENT))),
    ("EventActorStateUpdate", Struct("EventActorStateUpdate", ("state", ACTOR_STATE))),
    ("EventActorSetAlarm", Struct("EventActorSetAlarm", ("alarm_ts", Optional(I64)))),
)
EVENT_WRAPPER: Final = Struct("EventWrapper", ("checkpoint", ACTOR_CHECKPOINT), ("inner", EVENT))
PRELOADED_KV: Final = Struct(
    "PreloadedKv",
    (
        "entries",
        ListOf(
            Struct(
                "PreloadedKvEntry", ("key", KV_KEY), ("value", KV_VALUE), ("metadata", KV_METADATA)
            )
        ),
    ),
    ("requested_get_keys", KV_KEYS),
    ("requested_prefixes", KV_KEYS),
)
HIBERNATING_REQUEST: Final = Struct(
    "HibernatingRequest", ("gateway_id", GATEWAY_ID), ("request_id", REQUEST_ID)
)
COMMAND_START_ACTOR: Final = Struct(
    "CommandStartActor",
    ("config", ACTOR_CONFIG),
    ("hibernating_requests", ListOf(HIBERNATING_REQUEST)),
    ("preloaded_kv", Optional(PRELOADED_KV)),
)
COMMAND_STOP_ACTOR: Final = Struct("CommandStopActor", ("reason", STOP_ACTOR_REASON))
_COMMAND_VARIANTS: Final = (
    ("CommandStartActor", COMMAND_START_ACTOR),
    ("CommandStopActor", COMMAND_STOP_ACTOR),
)
COMMAND: Final = Union("Command", *_COMMAND_VARIANTS)
COMMAND_WRAPPER: Final = Struct(
    "CommandWrapper", ("checkpoint", ACTOR_CHECKPOINT), ("inner", COMMAND)
)
ACTOR_COMMAND_KEY_DATA: Final = Union("ActorCommandKeyData", *_COMMAND_VARIANTS)

# MARK: tunnel

MESSAGE_ID: Final = Struct(
    "MessageId",
    ("gateway_id", GATEWAY_ID),
    ("request_id", REQUEST_ID),
    ("message_index", MESSAGE_INDEX),
)
HTTP_STREAM_ABORT_REASON: Final = Struct(
    "HttpStreamAbortReason",
    (
        "kind",
        Enum(
            "HttpStreamAbortReasonKind", ("Unknown", "Cancelled", "HandlerError", "InternalError")
        ),
    ),
    ("detail", Optional(STR)),
)
_BODY_CHUNK: Final = (("body", DATA), ("finish", BOOL))
_WS_DATA: Final = (("data", DATA), ("binary", BOOL))
_WS_CLOSE: Final = (("code", Optional(U16)), ("reason", Optional(STR)))
TO_RIVET_TUNNEL_MESSAGE_KIND: Final = Union(
    "ToRivetTunnelMessageKind",
    (
        "ToRivetResponseStart",
        Struct(
            "ToRivetResponseStart",
            ("status", U16),
            ("headers", STR_MAP),
            ("body", Optional(DATA)),
            ("stream", BOOL),
        ),
    ),
    ("ToRivetResponseChunk", Struct("ToRivetResponseChunk", *_BODY_CHUNK)),
    ("ToRivetResponseAbort", Struct("ToRivetResponseAbort", ("reason", HTTP_STREAM_ABORT_REASON))),
    (
        "ToRivetRequestBodyWindowUpdate",
        Struct("ToRivetRequestBodyWindowUpdate", ("consumed_bytes", U64)),
    ),
    ("ToRivetRequestBodyCancel", None),
    ("ToRivetWebSocketOpen", Struct("ToRivetWebSocketOpen", ("can_hibernate", BOOL))),
    ("ToRivetWebSocketMessage", Struct("ToRivetWebSocketMessage", *_WS_DATA)),
    ("ToRivetWebSocketMessageAck", Struct("ToRivetWebSocketMessageAck", ("index", MESSAGE_INDEX))),
    (
        "ToRivetWebSocketClose",
        Struct("ToRivetWebSocketClose", *_WS_CLOSE, ("hibernate", BOOL)),
    ),
)
TO_RIVET_TUNNEL_MESSAGE: Final = Struct(
    "ToRivetTunnelMessage",
    ("message_id", MESSAGE_ID),
    ("message_kind", TO_RIVET_TUNNEL_MESSAGE_KIND),
)
TO_ENVOY_TUNNEL_MESSAGE_KIND: Final = Union(
    "ToEnvoyTunnelMessageKind",
    (
        "ToEnvoyRequestStart",
        Struct(
            "ToEnvoyRequestStart",
            ("actor_id", ID),
            ("actor_generation", Optional(U32)),
            ("method", STR),
            ("path", STR),
            ("headers", STR_MAP),
            ("body", Optional(DATA)),
            ("stream", BOOL),
            ("response_stream", BOOL),
        ),
    ),
    ("ToEnvoyRequestChunk", Struct("ToEnvoyRequestChunk", *_BODY_CHUNK)),
    (
        "ToEnvoyRequestAbort",
        Struct(
            "ToEnvoyRequestAbort",
            ("actor_id", Optional(ID)),
            ("actor_generation", Optional(U32)),
            ("reason", HTTP_STREAM_ABORT_REASON),
        ),
    ),
    ("ToEnvoyRequestBodyCancel", None),
    (
        "ToEnvoyResponseBodyWindowUpdate",
        Struct("ToEnvoyResponseBodyWindowUpdate", ("consumed_bytes", U64)),
    ),
    (
        "ToEnvoyWebSocketOpen",
        Struct(
            "ToEnvoyWebSocketOpen",
            ("actor_id", ID),
            ("actor_generation", Optional(U32)),
            ("path", STR),
            ("headers", STR_MAP),
        ),
    ),
    ("ToEnvoyWebSocketMessage", Struct("ToEnvoyWebSocketMessage", *_WS_DATA)),
    ("ToEnvoyWebSocketClose", Struct("ToEnvoyWebSocketClose", *_WS_CLOSE)),
)
TO_ENVOY_TUNNEL_MESSAGE: Final = Struct(
    "ToEnvoyTunnelMessage",
    ("message_id", MESSAGE_ID),
    ("message_kind", TO_ENVOY_TUNNEL_MESSAGE_KIND),
)

# MARK: top level


def _request(name: str, data: Struct | Union) -> Struct:
    return Struct(name, ("request_id", U32), ("data", data))


TO_ENVOY_COMMANDS: Final = ListOf(COMMAND_WRAPPER)
TO_ENVOY_ACK_EVENTS: Final = Struct(
    "ToEnvoyAckEvents", ("last_event_checkpoints", ListOf(ACTOR_CHECKPOINT))
)

TO_RIVET: Final = Union(
    "ToRivet",
    (
        "ToRivetMetadata",
        Struct(
            "ToRivetMetadata",
            ("prepopulate_actor_names", Optional(MapOf(STR, ACTOR_NAME))),
            ("metadata", Optional(JSON)),
        ),
    ),
    ("ToRivetEvents", ListOf(EVENT_WRAPPER)),
    (
        "ToRivetAckCommands",
        Struct("ToRivetAckCommands", ("last_command_checkpoints", ListOf(ACTOR_CHECKPOINT))),
    ),
    ("ToRivetStopping", None),
    ("ToRivetPong", Struct("ToRivetPong", ("ts", I64))),
    (
        "ToRivetKvRequest",
        Struct(
            "ToRivetKvRequest", ("actor_id", ID), ("request_id", U32), ("data", KV_REQUEST_DATA)
        ),
    ),
    ("ToRivetTunnelMessage", TO_RIVET_TUNNEL_MESSAGE),
    (
        "ToRivetSqliteGetPagesRequest",
        _request("ToRivetSqliteGetPagesRequest", SQLITE_GET_PAGES_REQUEST),
    ),
    ("ToRivetSqliteCommitRequest", _request("ToRivetSqliteCommitRequest", SQLITE_COMMIT_REQUEST)),
    (
        "ToRivetSqliteCommitStageBeginRequest",
        _request("ToRivetSqliteCommitStageBeginRequest", SQLITE_STAGE_BEGIN_REQUEST),
    ),
    (
        "ToRivetSqliteCommitStageSegmentRequest",
        _request("ToRivetSqliteCommitStageSegmentRequest", SQLITE_STAGE_SEGMENT_REQUEST),
    ),
    (
        "ToRivetSqliteCommitFinalizeRequest",
        _request("ToRivetSqliteCommitFinalizeRequest", SQLITE_FINALIZE_REQUEST),
    ),
    ("ToRivetSqliteExecRequest", _request("ToRivetSqliteExecRequest", SQLITE_EXEC_REQUEST)),
    (
        "ToRivetSqliteExecuteRequest",
        _request("ToRivetSqliteExecuteRequest", SQLITE_EXECUTE_REQUEST),
    ),
    (
        "ToRivetSqliteExecuteBatchRequest",
        _request("ToRivetSqliteExecuteBatchRequest", SQLITE_EXECUTE_BATCH_REQUEST),
    ),
)

TO_ENVOY: Final = Union(
    "ToEnvoy",
    (
        "ToEnvoyInit",
        Struct(
            "ToEnvoyInit",
            (
                "metadata",
                Struct(
                    "ProtocolMetadata",
                    ("envoy_lost_threshold", I64),
                    ("actor_stop_threshold", I64),
                    ("max_response_payload_size", U64),
                ),
            ),
        ),
    ),
    ("ToEnvoyCommands", TO_ENVOY_COMMANDS),
    ("ToEnvoyAckEvents", TO_ENVOY_ACK_EVENTS),
    ("ToEnvoyKvResponse", _request("ToEnvoyKvResponse", KV_RESPONSE_DATA)),
    ("ToEnvoyTunnelMessage", TO_ENVOY_TUNNEL_MESSAGE),
    ("ToEnvoyPing", Struct("ToEnvoyPing", ("ts", I64))),
    (
        "ToEnvoySqliteGetPagesResponse",
        _request("ToEnvoySqliteGetPagesResponse", SQLITE_GET_PAGES_RESPONSE),
    ),
    (
        "ToEnvoySqliteCommitResponse",
        _request("ToEnvoySqliteCommitResponse", SQLITE_COMMIT_RESPONSE),
    ),
    (
        "ToEnvoySqliteCommitStageBeginResponse",
        _request("ToEnvoySqliteCommitStageBeginResponse", SQLITE_STAGE_BEGIN_RESPONSE),
    ),
    (
        "ToEnvoySqliteCommitStageSegmentResponse",
        _request("ToEnvoySqliteCommitStageSegmentResponse", SQLITE_STAGE_SEGMENT_RESPONSE),
    ),
    (
        "ToEnvoySqliteCommitFinalizeResponse",
        _request("ToEnvoySqliteCommitFinalizeResponse", SQLITE_FINALIZE_RESPONSE),
    ),
    ("ToEnvoySqliteExecResponse", _request("ToEnvoySqliteExecResponse", SQLITE_EXEC_RESPONSE)),
    (
        "ToEnvoySqliteExecuteResponse",
        _request("ToEnvoySqliteExecuteResponse", SQLITE_EXECUTE_RESPONSE),
    ),
    (
        "ToEnvoySqliteExecuteBatchResponse",
        _request("ToEnvoySqliteExecuteBatchResponse", SQLITE_EXECUTE_BATCH_RESPONSE),
    ),
)

#: What the engine sends over a serverless envoy connection.
TO_ENVOY_CONN: Final = Union(
    "ToEnvoyConn",
    (
        "ToEnvoyConnPing",
        Struct(
            "ToEnvoyConnPing", ("gateway_id", GATEWAY_ID), ("request_id", REQUEST_ID), ("ts", I64)
        ),
    ),
    ("ToEnvoyConnClose", None),
    ("ToEnvoyCommands", TO_ENVOY_COMMANDS),
    ("ToEnvoyAckEvents", TO_ENVOY_ACK_EVENTS),
    ("ToEnvoyTunnelMessage", TO_ENVOY_TUNNEL_MESSAGE),
)
TO_GATEWAY: Final = Union(
    "ToGateway",
    ("ToGatewayPong", Struct("ToGatewayPong", ("request_id", REQUEST_ID), ("ts", I64))),
    ("ToRivetTunnelMessage", TO_RIVET_TUNNEL_MESSAGE),
)
TO_OUTBOUND: Final = Union(
    "ToOutbound",
    (
        "ToOutboundActorStart",
        Struct(
            "ToOutboundActorStart",
            ("namespace_id", ID),
            ("pool_name", STR),
            ("checkpoint", ACTOR_CHECKPOINT),
            ("actor_config", ACTOR_CONFIG),
        ),
    ),
)


def encode_to_rivet(message: Tagged) -> bytes:
    """One envoy-to-engine frame. Raises `EncodingError` for a value that does not fit."""
    return TO_RIVET.encode(message)


def decode_to_rivet(data: bytes | bytearray | memoryview) -> Tagged:
    """Read an envoy-to-engine frame (tests and tools). Raises `InvalidMessageError`."""
    value: Any = TO_RIVET.decode(data)
    return value  # type: ignore[no-any-return]


def encode_to_envoy(message: Tagged) -> bytes:
    """One engine-to-envoy frame (tests play the engine with it)."""
    return TO_ENVOY.encode(message)


def decode_to_envoy(data: bytes | bytearray | memoryview) -> Tagged:
    """Read an engine-to-envoy frame. Raises `InvalidMessageError` for bad bytes."""
    value: Any = TO_ENVOY.decode(data)
    return value  # type: ignore[no-any-return]
