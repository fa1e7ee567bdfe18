"""Fuzzing the sealed-stream parsers: only DecryptionError may escape, and nothing is unbounded.

Random bytes and mutations of valid streams go through the header parser,
the body geometry and every opener. Any exception other than
:class:`DecryptionError` fails the test (a ``MemoryError`` from a length
taken on trust included), and whatever does open MUST be the true plaintext
or, for ``open_prefix``, a prefix of it. A longer run with atheris:
``tests/fuzz/fuzz_sealed_stream.py``.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.crypto import SealContext
from callvault.crypto._stream_body import Layout
from callvault.crypto.stream import (
    MAX_HEADER_BYTES,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
    TINK_HEADER_BYTES,
    RangeReader,
    StreamHeader,
    open_body,
    open_prefix,
    open_stream,
    read_header,
    seal_stream,
)
from callvault.errors import DecryptionError

T = TypeVar("T")

KEY = secrets.token_bytes(32)
CTX = SealContext(tenant_id="ten_a", purpose="recording", object_id="call_1", deployment_id="dep_a")
HEADER = StreamHeader.for_context(CTX, key_ref="dk_1/v1", segment_size=128)
PLAIN = secrets.token_bytes(700)  # seven segments of 128 bytes
VALID = bytes(seal_stream(KEY, HEADER, PLAIN))
EXAMPLES = settings(max_examples=1000, deadline=None)


def guarded(fn: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """Call ``fn``; a DecryptionError means None, anything else escapes and fails the test."""
    try:
        return fn(*args, **kwargs)
    except DecryptionError:
        return None


ops = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate", "max"]),
        st.integers(0, 2**16),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, operations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in operations:
        i = where % (len(out) + 1)
        if op == "flip" and i < len(out):
            out[i] ^= 1 << (value % 8)
        elif op == "set" and i < len(out):
            out[i] = value
        elif op == "max" and i < len(out):
            out[i] = 0xFF
        elif op == "insert":
            out[i:i] = bytes([value]) * (1 + value % 17)
        elif op == "delete":
            del out[i : i + 1 + value % 17]
        elif op == "truncate":
            del out[i:]
        elif op == "duplicate":
            out[i:i] = out[i : i + 1 + value * 3]
    return bytes(out)


def check_opens(data: bytes) -> None:
    """Every opener on ``data``: fail cleanly, or return the truth."""
    full = guarded(open_stream, KEY, data, CTX)
    assert full is None or (data == VALID and full == PLAIN)
    prefix = guarded(open_prefix, KEY, data, CTX)
    if prefix is not None:
        assert PLAIN.startswith(prefix.plaintext)
        assert not prefix.complete or data == VALID
    reader = guarded(RangeReader, KEY, io.BytesIO(data), len(data), CTX)
    if reader is not None:  # the final segment authenticated; the others are checked when read
        assert reader.plaintext_length == len(PLAIN)
        for start, end in [(0, 1), (100, 400), (650, 700), (0, 700)]:
            piece = guarded(reader.read_range, start, end)
            assert piece is None or piece == PLAIN[start:end]


# -- the header parser -------------------------------------------------------------------


@EXAMPLES
@given(st.binary(max_size=MAX_HEADER_BYTES + 50))
def test_random_bytes_never_escape_the_header_parser(data: bytes) -> None:
    parsed = guarded(read_header, data)
    assert parsed is None or data.startswith(parsed.encode())


@EXAMPLES
@given(st.binary(max_size=400))
def test_random_bytes_after_a_valid_magic_never_escape_the_header_parser(data: bytes) -> None:
    parsed = guarded(read_header, VALID[:6] + data)
    assert parsed is None or (VALID[:6] + data).startswith(parsed.encode())


@EXAMPLES
@given(ops)
def test_mutated_headers_parse_to_their_own_encoding_or_fail(
    operations: list[tuple[str, int, int]],
) -> None:
    data = mutate(HEADER.encode(), operations)
    parsed = guarded(read_header, data)
    assert parsed is None or data.startswith(parsed.encode())


def test_extreme_declared_lengths_are_refused_without_allocating() -> None:
    encoded = bytearray(HEADER.encode())
    for offset, value in [(6, 0xFF), (7, 0xFF), (8, 0xFF), (12, 0xFF), (18, 0xFF)]:
        bad = bytearray(encoded)
        bad[offset] = value
        assert guarded(read_header, bytes(bad)) is None
        assert guarded(read_header, bytes(bad) + bytes(70_000)) is None


# -- the body: geometry and openers ------------------------------------------------------


@EXAMPLES
@given(segment_size=st.integers(MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE), length=st.integers(0, 2**48))
def test_segment_geometry_partitions_any_body_or_refuses_it(segment_size: int, length: int) -> None:
    layout = Layout(segment_size)
    count = guarded(layout.segment_count, length)
    if count is None:
        return
    first, last = layout.span(0, length), layout.span(count - 1, length)
    assert first[0] == TINK_HEADER_BYTES
    assert last[1] == length
    assert last[1] - last[0] >= 16
    for i in range(max(0, count - 3), count - 1):
        assert layout.span(i, length)[1] == layout.span(i + 1, length)[0]
    plaintext = length - TINK_HEADER_BYTES - 16 * count
    empty_last = count > 1 and last[1] - last[0] == 16  # valid; Tink reads it, neither writes it
    assert layout.body_length(plaintext) == length - (16 if empty_last else 0)


@settings(max_examples=1200, deadline=None)
@given(ops)
def test_mutated_streams_fail_cleanly_or_open_to_the_truth(
    operations: list[tuple[str, int, int]],
) -> None:
    check_opens(mutate(VALID, operations))


@EXAMPLES
@given(st.binary(max_size=2000))
def test_random_bodies_behind_a_valid_header_fail_cleanly(body: bytes) -> None:
    check_opens(HEADER.encode() + body)


@EXAMPLES
@given(st.binary(max_size=1500))
def test_random_bytes_fail_cleanly(data: bytes) -> None:
    check_opens(data)


@settings(max_examples=600, deadline=None)
@given(
    data=st.binary(max_size=1500),
    segment_size=st.integers(-10, 2000) | st.sampled_from([2**31, 2**63, MAX_SEGMENT_SIZE + 1]),
    key=st.binary(min_size=0, max_size=40),
)
def test_raw_body_opener_fails_cleanly(data: bytes, segment_size: int, key: bytes) -> None:
    assert guarded(open_body, key, b"", data, segment_size=segment_size) is None


@settings(max_examples=100, deadline=None)
@given(length=st.integers(-(2**63), 2**63), source=st.binary(max_size=300))
def test_range_reader_trusts_no_declared_length(length: int, source: bytes) -> None:
    data = VALID[:200] + source  # always shorter than a valid stream
    assert guarded(RangeReader, KEY, io.BytesIO(data), length, CTX) is None
