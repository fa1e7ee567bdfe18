"""RFC 8785 canonical JSON, with a fast path for the values callvault writes most.

``rfc8785`` (the reference implementation we depend on) is pure Python and
costs ~75 µs for one audit entry, the largest single cost of an append. For
values made only of dicts with ASCII keys, lists, strings, booleans, null and
integers within ±(2^53 - 1), the standard library's C JSON encoder with sorted
keys, compact separators and ``ensure_ascii=False`` produces exactly the RFC
8785 bytes: ASCII keys sort the same by UTF-16 code unit as by code point,
such integers print the same in ECMAScript, and the escaping rules agree
(``"``, ``\\``, ``\\b \\f \\n \\r \\t`` short forms, other controls as
lowercase ``\\u00xx``, everything else raw). Anything else (floats, large
integers, non-ASCII keys) goes to ``rfc8785``. A property test checks the two
agree on generated values (tests/unit/test_canonical.py).
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE_INT = 2**53 - 1
_MAX_DEPTH = 32
_json_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _no_default(value: Any) -> Any:
    raise TypeError(f"not JSON: {type(value).__name__}")


# The C encoder itself, made once: JSONEncoder.encode builds one per call,
# which costs more than encoding a small audit detail.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(  # positional only: markers, default, str encoder, indent,
        None,  # key and item separators, sort_keys, skipkeys, allow_nan
        _no_default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        True,  # noqa: FBT003 - sort_keys (the C constructor takes no keywords)
        False,  # noqa: FBT003 - skipkeys
        False,  # noqa: FBT003 - allow_nan
    )
)


def _encode(value: Any) -> str:
    if _c_encode is None:  # pragma: no cover - CPython always has the C encoder
        return _json_encode(value)
    return "".join(_c_encode(value, 0))


def _simple(value: Any, depth: int = 0) -> bool:  # noqa: PLR0911 - one return per kind of value
    # Plain loops, not all(<genexpr>): this runs on every audit append.
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_MAX_SAFE_INT <= value <= _MAX_SAFE_INT)
    if depth > _MAX_DEPTH:
        return False
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                return False
            vkind = type(v)
            if vkind is str or vkind is bool or v is None:
                continue
            if not _simple(v, depth + 1):
                return False
        return True
    if kind is list:
        for v in value:
            vkind = type(v)
            if vkind is str or vkind is bool or v is None:
                continue
            if not _simple(v, depth + 1):
                return False
        return True
    return False


def dumps(value: Any) -> bytes:
    """The RFC 8785 canonical JSON encoding of ``value`` (raises as ``rfc8785`` does)."""
    if _simple(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference say what is wrong
            pass
    return rfc8785.dumps(value)
