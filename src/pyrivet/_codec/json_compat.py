"""The JSON-compat transform of user values, as RivetKit's JavaScript side defines it.

RivetKit carries values that JSON cannot express as tagged two-element arrays. The
same tagging is used in the json encoding and inside the CBOR payloads of the bare
encoding (and in CBOR replies, which the JavaScript client revives):

| Python value                        | compat form                        |
|-------------------------------------|------------------------------------|
| int outside ±(2**53 - 1)            | ``["$BigInt", "123..."]``          |
| bytes, bytearray, memoryview        | ``["$Uint8Array", "<base64>"]``    |
| set, frozenset                      | ``["$Set", [...]]``                |
| `UNDEFINED`                         | ``["$Undefined", 0]``              |
| a 2-list whose first item is a str  | first item gets one more ``$``:    |
| starting with ``$``                 | ``["$x", 1]`` -> ``["$$x", 1]``    |

Integers inside the JavaScript safe range stay plain numbers, so a JavaScript peer sees
``number`` for them and ``bigint`` beyond. Reviving also accepts ``["$ArrayBuffer", b64]``
(decoded to bytes). JavaScript ``undefined`` decodes to ``None``.

Other Python values are lowered to this model before tagging: tuples become lists;
Enums their value; dataclasses, msgspec Structs and pydantic models dicts; UUID and
Decimal strings; `datetime` a JavaScript-style ISO string (``...T00:00:00.000Z``, naive
datetimes taken as UTC) in JSON and a native CBOR timestamp in CBOR; `date` and `time`
ISO strings. ``dict`` keys must be ``str`` or ``int`` (JSON turns int keys into strings,
as JavaScript objects do). Floats NaN and infinity become ``null`` in JSON, as with
``JSON.stringify``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from ..errors import EncodingError
from .errors import InvalidMessageError
from .values import lower_model

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "UNDEFINED",
    "UndefinedType",
    "decode",
    "encode",
    "from_compat",
    "parse_json",
    "to_compat",
]

#: Largest integer a JavaScript number holds exactly (``Number.MAX_SAFE_INTEGER``).
MAX_SAFE_INTEGER: Final = 2**53 - 1

#: Deepest nesting of lists/dicts accepted in either direction; deeper values (or a
#: value that contains itself) are rejected instead of exhausting the stack.
MAX_DEPTH: Final = 128

TAG_BIGINT: Final = "$BigInt"
TAG_UINT8_ARRAY: Final = "$Uint8Array"
TAG_ARRAY_BUFFER: Final = "$ArrayBuffer"
TAG_SET: Final = "$Set"
TAG_UNDEFINED: Final = "$Undefined"

_INT_TEXT = re.compile(r"-?[0-9]+")
_UTC = dt.UTC
#: Types `msgspec.to_builtins` must hand back untouched, so the walkers can tag them.
_PASS_THROUGH = (bytes, bytearray, memoryview, dt.datetime, dt.date, dt.time)


class UndefinedType:
    """The type of `UNDEFINED`; it has exactly one instance."""

    __slots__ = ()
    _instance: UndefinedType | None = None

    def __new__(cls) -> UndefinedType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"


#: JavaScript ``undefined``, for a Python peer that must send it (for example to make a
#: JavaScript action use a parameter's default). Decoding never returns it: ``undefined``
#: from the wire becomes ``None``.
UNDEFINED: Final = UndefinedType()


class BadValue(Exception):
    """Internal to ``pyrivet._codec``: a value failed to convert at a nested position.

    Containers add their index or key to `path` while the exception unwinds, so that the
    error raised to callers names where the offending value sits, at no cost when
    nothing fails.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def where(self) -> str:
        """Return the position as ``root``, ``root[2]``, ``root.key[0]``..."""
        return "root" + "".join(reversed(self.path))

    def add_index(self, index: int) -> BadValue:
        """Record that the failing value sits at ``index`` of a list; return self."""
        self.path.append(f"[{index}]")
        return self

    def add_key(self, key: object) -> BadValue:
        """Record that the failing value sits under ``key`` of a dict; return self."""
        self.path.append(f".{key}" if isinstance(key, str) else f"[{key!r}]")
        return self


def _too_deep() -> BadValue:
    return BadValue(f"nested deeper than {MAX_DEPTH} levels (does a value contain itself?)")


def js_iso_format(value: dt.datetime) -> str:
    """Format ``value`` as JavaScript's ``Date.prototype.toJSON`` does.

    Args:
        value: a datetime; a naive one is taken as UTC.

    Returns:
        ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC.
    """
    if value.tzinfo is not None:
        value = value.astimezone(_UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def lower(value: Any) -> Any:
    """Turn an object of a type the walkers do not know into builtins.

    Handles Enums, dataclasses, msgspec Structs, pydantic models (via ``model_dump``),
    UUID and Decimal (as strings) and whatever else `msgspec.to_builtins` supports.
    Bytes-likes and datetime/date/time inside are left as they are.

    Args:
        value: any object.

    Returns:
        Builtin data that the compat walkers can convert.

    Raises:
        BadValue: the type is not supported.
    """
    if isinstance(value, enum.Enum):
        return value.value
    try:
        return msgspec.to_builtins(value, builtin_types=_PASS_THROUGH, enc_hook=lower_model)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        name = type(value).__name__
        if dataclasses.is_dataclass(value) or isinstance(value, msgspec.Struct):
            raise BadValue(f"cannot convert {name}: {exc}") from None
        raise BadValue(
            f"values of type {name} are not supported; use None, bool, int, float, str, "
            "bytes, list, tuple, dict, set, a dataclass, a msgspec Struct or a pydantic model"
        ) from None


def dict_key(key: object, *, json: bool) -> str | int:
    """Check a dict key for the wire and return it as sent.

    Args:
        key: the key.
        json: True when the target is JSON, where int keys become strings.

    Returns:
        The key as a plain ``str`` or ``int``.

    Raises:
        BadValue: the key is neither ``str`` nor ``int``.
    """
    if isinstance(key, str):
        return key if type(key) is str else str.__str__(key)
    if isinstance(key, int) and not isinstance(key, bool):
        plain = int(key)
        return str(plain) if json else plain
    raise BadValue(f"dict keys must be str or int, got {type(key).__name__}")


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        raise BadValue("integer has too many digits to encode") from None


class ValueWalker:
    """Turns a Python value into a tree of plain containers, checking depth and keys.

    The leaves JSON has no type for (bytes, sets, ``undefined``, datetimes) and big
    integers are written by the `_bytes`, `_set`, `_undefined`, `_datetime` and `_int`
    hooks; `_CompatEncoder` writes the compat tags, ``cbor._NativeEncoder`` what cbor-x
    writes natively.
    """

    __slots__ = ("_json",)

    def __init__(self, *, json: bool) -> None:
        self._json = json

    def walk(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if value is None or kind is str or kind is bool or kind is float:
            return value
        if kind is int:
            return self._int(value)
        if depth >= MAX_DEPTH:
            raise _too_deep()
        if kind is list or kind is tuple:
            return self._sequence(value, depth)
        if kind is dict:
            return self._mapping(value, depth)
        return self._other(value, depth)

    def _int(self, value: int) -> Any:
        return value

    def _sequence(self, items: Any, depth: int) -> list[Any]:
        return self._items(items, depth)

    def _bytes(self, value: bytes) -> Any:
        raise NotImplementedError

    def _set(self, items: list[Any]) -> Any:
        raise NotImplementedError

    def _undefined(self) -> Any:
        raise NotImplementedError

    def _datetime(self, value: dt.datetime) -> Any:
        return value if value.tzinfo is not None else value.replace(tzinfo=_UTC)

    def _items(self, items: Any, depth: int) -> list[Any]:
        out: list[Any] = []
        index = 0
        try:
            for index, item in enumerate(items):  # noqa: B007 - index is read in except
                out.append(self.walk(item, depth + 1))
        except BadValue as bad:
            raise bad.add_index(index) from None
        return out

    def _mapping(self, mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        key: object = None
        try:
            for key, item in mapping.items():
                out[dict_key(key, json=self._json)] = self.walk(item, depth + 1)
        except BadValue as bad:
            raise bad.add_key(key) from None
        return out

    def _other(self, value: Any, depth: int) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._bytes(bytes(value))
        if isinstance(value, (set, frozenset)):
            return self._set(self._items(value, depth))
        if value is UNDEFINED:
            return self._undefined()
        if isinstance(value, enum.Enum):
            return self.walk(value.value, depth + 1)
        if isinstance(value, int):
            return self.walk(int(value), depth)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, (list, tuple)):
            return self._sequence(value, depth)
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, dt.datetime):
            return self._datetime(value)
        if isinstance(value, (dt.date, dt.time)):
            return value.isoformat()
        return self.walk(lower(value), depth + 1)


class _CompatEncoder(ValueWalker):
    """Converts a Python value to its compat form; one instance per target."""

    __slots__ = ()

    def _int(self, value: int) -> Any:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        return [TAG_BIGINT, _int_text(value)]

    def _sequence(self, items: Any, depth: int) -> list[Any]:
        out = self._items(items, depth)
        if len(out) == 2 and type(out[0]) is str and out[0].startswith("$"):
            out[0] = "$" + out[0]
        return out

    def _bytes(self, value: bytes) -> Any:
        return [TAG_UINT8_ARRAY, base64.b64encode(value).decode("ascii")]

    def _set(self, items: list[Any]) -> Any:
        # The item list of a set is not escaped: the tag already says what it is.
        return [TAG_SET, items]

    def _undefined(self) -> Any:
        return [TAG_UNDEFINED, 0]

    def _datetime(self, value: dt.datetime) -> Any:
        return js_iso_format(value) if self._json else super()._datetime(value)


_TO_JSON = _CompatEncoder(json=True)
_TO_CBOR = _CompatEncoder(json=False)


def to_compat(value: Any, *, json: bool = True) -> Any:
    """Convert a Python value to its JSON-compat form.

    Args:
        value: the value (see the module docstring for what is supported).
        json: True for a JSON target. False for a CBOR target, which keeps int dict
            keys and datetimes (with UTC for naive ones) for native CBOR encoding.

    Returns:
        A tree of dict/list/str/int/float/bool/None (plus datetime when ``json`` is
        False) whose only non-JSON values are the compat tags.

    Raises:
        EncodingError: something inside ``value`` cannot be sent; the message gives its
            position, e.g. ``root.items[3]``.
    """
    try:
        return (_TO_JSON if json else _TO_CBOR).walk(value, 0)
    except BadValue as bad:
        raise EncodingError(
            f"cannot encode value at {bad.where()}: {bad.reason}",
            metadata={"path": bad.where()},
        ) from None


def _revive_bytes(tag: str, payload: Any) -> bytes:
    if not isinstance(payload, str):
        raise BadValue(f"{tag} payload must be a base64 string, got {type(payload).__name__}")
    text = payload.strip()
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadValue(f"{tag} payload is not valid base64") from None


def _revive_bigint(payload: Any) -> int:
    if not isinstance(payload, str) or not _INT_TEXT.fullmatch(payload):
        raise BadValue(f"{TAG_BIGINT} payload must be a string of decimal digits, got {payload!r}")
    try:
        return int(payload)
    except ValueError:  # over sys.get_int_max_str_digits()
        raise BadValue(f"{TAG_BIGINT} payload has too many digits") from None


def _revive_items(items: list[Any], depth: int) -> list[Any]:
    out: list[Any] = []
    index = 0
    try:
        for index, item in enumerate(items):  # noqa: B007 - index is read in except
            out.append(_revive(item, depth + 1))
    except BadValue as bad:
        raise bad.add_index(index) from None
    return out


def _revive(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is list:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        if len(value) == 2 and type(value[0]) is str and value[0].startswith("$"):
            return _revive_tagged(value[0], value[1], depth)
        return _revive_items(value, depth)
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        revived: dict[Any, Any] = {}
        key: object = None
        try:
            for key, item in value.items():
                revived[key] = _revive(item, depth + 1)
        except BadValue as bad:
            raise bad.add_key(key) from None
        return revived
    return value


def _revive_tagged(tag: str, payload: Any, depth: int) -> Any:
    if tag == TAG_BIGINT:
        return _revive_bigint(payload)
    if tag in (TAG_UINT8_ARRAY, TAG_ARRAY_BUFFER):
        return _revive_bytes(tag, payload)
    if tag == TAG_UNDEFINED:
        return None
    if tag == TAG_SET:
        if type(payload) is not list:
            raise BadValue(f"{TAG_SET} payload must be an array, got {type(payload).__name__}")
        try:
            items = _revive_items(payload, depth + 1)
        except BadValue as bad:
            raise bad.add_index(1) from None
        try:
            return set(items)
        except TypeError:  # JavaScript sets may hold objects and arrays
            return items
    if tag.startswith("$$"):
        try:
            return [tag[1:], _revive(payload, depth + 1)]
        except BadValue as bad:
            raise bad.add_index(1) from None
    raise BadValue(
        f"unknown JSON-compat tag {tag!r} (a 2-element array whose first item starts "
        "with '$' must be a known tag, or escaped as '$$...')"
    )


def from_compat(tree: Any) -> Any:
    """Revive a decoded JSON-compat tree into Python values; the inverse of `to_compat`.

    Args:
        tree: a value as decoded from JSON or CBOR (dicts, lists, scalars, and for CBOR
            also bytes, datetimes, sets...), possibly containing compat tags.

    Returns:
        The value with tags replaced: ints, bytes, sets (a list when the items are not
        hashable), ``None`` for undefined, and ``$$``-escaped strings unescaped.

    Raises:
        InvalidMessageError: an unknown ``$`` tag, a malformed tag payload, or nesting
            deeper than `MAX_DEPTH`; the message gives the position.
    """
    try:
        return _revive(tree, 0)
    except BadValue as bad:
        raise InvalidMessageError(f"invalid value at {bad.where()}: {bad.reason}") from None


def parse_json(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text into builtins, without reviving compat tags.

    Args:
        data: UTF-8 bytes or text.

    Returns:
        The parsed dict/list/str/int/float/bool/None tree.

    Raises:
        InvalidMessageError: the input is not valid JSON, is empty or nests too deeply.
    """
    if not data:
        raise InvalidMessageError("invalid JSON: the message is empty")
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidMessageError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise InvalidMessageError("invalid JSON: nested too deeply") from None


def encode_tree(tree: Any) -> bytes:
    """Serialize an already converted tree (see `to_compat`) as compact JSON.

    Raises:
        EncodingError: the tree holds something JSON cannot carry (for example a string
            with a lone surrogate).
    """
    try:
        return msgspec.json.encode(tree)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise EncodingError(f"cannot encode value as JSON: {exc}") from None


def encode(value: Any) -> bytes:
    """Encode a Python value as JSON text a RivetKit JavaScript peer revives correctly.

    Args:
        value: the value (see the module docstring).

    Returns:
        Compact UTF-8 JSON.

    Raises:
        EncodingError: the value (or something inside it) cannot be encoded.
    """
    return encode_tree(to_compat(value, json=True))


def decode(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text produced by a RivetKit peer, reviving compat tags.

    Args:
        data: UTF-8 bytes or text.

    Returns:
        The Python value.

    Raises:
        InvalidMessageError: not valid JSON, or an invalid compat tag inside.
    """
    return from_compat(parse_json(data))
