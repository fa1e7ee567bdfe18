"""The sealed-stream format: Tink as an independent oracle, attacks, live writing, ranged reads.

Tink (``tink`` from PyPI, pinned in the dev extra) holds our raw 32-byte key
as an ``AesGcmHkdfStreamingKey`` (derived key 32 bytes, HKDF-SHA256, our
segment size): it must open our bodies, and we must open its, byte for byte.
"""

from __future__ import annotations

import io
import itertools
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import tink
from hypothesis import given, settings
from hypothesis import strategies as st
from tink import cleartext_keyset_handle, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from callvault.crypto import SealContext, _stream_body
from callvault.crypto.stream import (
    DEFAULT_SEGMENT_SIZE,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
    TINK_HEADER_BYTES,
    RangeReader,
    StreamHeader,
    StreamWriter,
    open_body,
    open_prefix,
    open_stream,
    read_header,
    seal_body,
    seal_stream,
    sealed_length,
)
from callvault.errors import CryptoError, DecryptionError, InvalidInputError

KEY = secrets.token_bytes(32)
AD = b"callvault sealed-stream test"
CTX = SealContext(tenant_id="ten_a", purpose="recording", object_id="call_1", deployment_id="dep_a")
SMALL = 256  # segment size that makes many segments out of little data
TAG = 16


def first_plain(segment_size: int) -> int:
    return segment_size - TINK_HEADER_BYTES - TAG


def header(segment_size: int = SMALL, **changes: Any) -> StreamHeader:
    fields: dict[str, Any] = {
        "tenant_id": CTX.tenant_id,
        "deployment_id": CTX.deployment_id,
        "object_id": CTX.object_id,
        "purpose": CTX.purpose,
        "key_ref": "dk_1/v1",
        "segment_size": segment_size,
    }
    fields.update(changes)
    return StreamHeader(**fields)


# -- Tink, the oracle -------------------------------------------------------------------


@cache
def tink_aead(key: bytes, segment_size: int) -> streaming_aead.StreamingAead:
    streaming_aead.register()
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
        ciphertext_segment_size=segment_size, derived_key_size=32, hkdf_hash_type=common_pb2.SHA256
    )
    raw = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(version=0, params=params, key_value=key)
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
                    value=raw.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=1,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    handle = cleartext_keyset_handle.from_keyset(keyset)
    return handle.primitive(streaming_aead.StreamingAead)


class _KeepOpen(io.BytesIO):
    def close(self) -> None:  # Tink closes its destination; keep the bytes readable
        pass


def tink_seal(key: bytes, ad: bytes, plaintext: bytes, segment_size: int) -> bytes:
    out = _KeepOpen()
    with tink_aead(key, segment_size).new_encrypting_stream(out, ad) as enc:
        enc.write(plaintext)
    return out.getvalue()


def tink_open(key: bytes, ad: bytes, body: bytes, segment_size: int) -> bytes:
    with tink_aead(key, segment_size).new_decrypting_stream(io.BytesIO(body), ad) as dec:
        return dec.read()


def boundary_sizes(segment_size: int) -> list[int]:
    first, plain = first_plain(segment_size), segment_size - TAG
    return sorted(
        {0, 1, first - 1, first, first + 1}
        | {first + k * plain + d for k in (1, 2, 5) for d in (-1, 0, 1)}
    )


SIZES = [(s, n) for s in (4096, DEFAULT_SEGMENT_SIZE) for n in boundary_sizes(s)]
SIZES += [(DEFAULT_SEGMENT_SIZE, 3 * 1024 * 1024 + 12345), (1024 * 1024, 5 * 1024 * 1024 + 1)]


@pytest.mark.parametrize(("segment_size", "size"), SIZES)
def test_tink_opens_our_bodies(segment_size: int, size: int) -> None:
    plaintext = os.urandom(size)
    body = bytes(seal_body(KEY, AD, plaintext, segment_size=segment_size))
    assert tink_open(KEY, AD, body, segment_size) == plaintext


@pytest.mark.parametrize(("segment_size", "size"), SIZES)
def test_we_open_tinks_bodies_and_seal_the_same_length(segment_size: int, size: int) -> None:
    plaintext = os.urandom(size)
    body = tink_seal(KEY, AD, plaintext, segment_size)
    assert open_body(KEY, AD, body, segment_size=segment_size) == plaintext
    assert len(seal_body(KEY, AD, plaintext, segment_size=segment_size)) == len(body)


@settings(max_examples=60, deadline=None)
@given(
    segment_size=st.integers(MIN_SEGMENT_SIZE, 600),
    plaintext=st.binary(max_size=3000),
    ad=st.binary(max_size=64),
)
def test_tink_agrees_at_any_segment_size(segment_size: int, plaintext: bytes, ad: bytes) -> None:
    ours = bytes(seal_body(KEY, ad, plaintext, segment_size=segment_size))
    assert tink_open(KEY, ad, ours, segment_size) == plaintext
    theirs = tink_seal(KEY, ad, plaintext, segment_size)
    assert open_body(KEY, ad, theirs, segment_size=segment_size) == plaintext


def test_tink_opens_a_sealed_stream_body_with_the_header_as_associated_data() -> None:
    h = header(4096)
    plaintext = os.urandom(20_000)
    sealed = bytes(seal_stream(KEY, h, plaintext))
    assert sealed[: h.size] == h.encode()
    assert tink_open(KEY, h.encode(), sealed[h.size :], 4096) == plaintext


def test_tink_opens_what_the_writer_wrote() -> None:
    h = header(4096)
    plaintext = os.urandom(50_000)
    sink = io.BytesIO()
    with StreamWriter(KEY, h, sink) as w:
        for i in range(0, len(plaintext), 1000):
            w.write(plaintext[i : i + 1000])
    assert tink_open(KEY, h.encode(), sink.getvalue()[h.size :], 4096) == plaintext


def test_tink_also_rejects_what_we_reject() -> None:
    body = bytes(seal_body(KEY, AD, os.urandom(3000), segment_size=SMALL))
    for bad in (body[:-1], body[: SMALL * 3], body + b"\0", body[:-TAG] + bytes(TAG)):
        with pytest.raises(tink.TinkError):
            tink_open(KEY, AD, bad, SMALL)
        with pytest.raises(DecryptionError):
            open_body(KEY, AD, bad, segment_size=SMALL)
    with pytest.raises(tink.TinkError):
        tink_open(KEY, AD + b"x", body, SMALL)


# -- the header --------------------------------------------------------------------------

ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(
    tenant=ids.filter(lambda s: len(s) <= 255),
    deployment=st.none() | ids.filter(lambda s: len(s) <= 255),
    obj=ids.filter(lambda s: len(s) <= 255),
    key_ref=ids.filter(lambda s: len(s) <= 255),
    segment_size=st.integers(MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE),
)
def test_header_encoding_is_canonical_and_round_trips(
    tenant: str, deployment: str | None, obj: str, key_ref: str, segment_size: int
) -> None:
    h = StreamHeader(
        tenant_id=tenant,
        deployment_id=deployment,
        object_id=obj,
        purpose="recording",
        key_ref=key_ref,
        segment_size=segment_size,
    )
    encoded = h.encode()
    assert len(encoded) == h.size
    assert read_header(encoded + b"body follows") == h
    assert read_header(encoded).encode() == encoded


@pytest.mark.parametrize(
    "changes",
    [
        {"tenant_id": ""},
        {"tenant_id": "ten a"},
        {"tenant_id": "tén"},
        {"object_id": "x" * 256},
        {"purpose": "line\nbreak"},
        {"key_ref": ""},
        {"deployment_id": ""},
        {"segment_size": MIN_SEGMENT_SIZE - 1},
        {"segment_size": MAX_SEGMENT_SIZE + 1},
        {"segment_size": True},
        {"version": 2},
    ],
)
def test_header_cannot_be_constructed_invalid(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        header(**changes)


def test_header_binds_to_its_context() -> None:
    assert StreamHeader.for_context(CTX, key_ref="dk_1/v1", segment_size=SMALL) == header()
    assert header().context == CTX


@pytest.mark.parametrize(
    ("offset", "value"),
    [(0, ord("X")), (4, 2), (4, 0), (5, 2), (5, 0), (6, 0xFF), (7, 0x00), (12, 0xFF)],
    ids=["magic", "version-2", "version-0", "algorithm-2", "algorithm-0", "length", "len", "field"],
)
def test_header_with_unknown_version_algorithm_or_bad_lengths_is_rejected(
    offset: int, value: int
) -> None:
    sealed = bytearray(seal_stream(KEY, header(), b"audio"))
    sealed[offset] = value
    with pytest.raises(DecryptionError):
        read_header(sealed)
    with pytest.raises(DecryptionError):
        open_stream(KEY, sealed, CTX)


def test_header_declaring_more_than_the_data_holds_is_rejected() -> None:
    encoded = header().encode()
    for cut in range(len(encoded)):
        with pytest.raises(DecryptionError):
            read_header(encoded[:cut])


# -- one-shot sealing and the attacks it resists ----------------------------------------


@settings(max_examples=80, deadline=None)
@given(plaintext=st.binary(max_size=5000), segment_size=st.sampled_from([64, 100, SMALL, 4096]))
def test_sealed_stream_round_trips(plaintext: bytes, segment_size: int) -> None:
    h = header(segment_size)
    sealed = seal_stream(KEY, h, plaintext)
    assert len(sealed) == sealed_length(h, len(plaintext))
    assert open_stream(KEY, sealed, CTX) == plaintext


def test_sealing_twice_gives_different_bytes_without_the_plaintext() -> None:
    secret = b"my card number is 4111 1111 1111 1111" * 10
    a, b = seal_stream(KEY, header(), secret), seal_stream(KEY, header(), secret)
    assert a != b
    assert b"4111" not in a


def test_wrong_key_is_rejected() -> None:
    sealed = seal_stream(KEY, header(), b"audio" * 100)
    with pytest.raises(DecryptionError):
        open_stream(secrets.token_bytes(32), sealed, CTX)
    with pytest.raises(DecryptionError):
        open_stream(KEY[:16], sealed, CTX)


def test_sealing_with_a_short_key_is_refused() -> None:
    with pytest.raises(CryptoError):
        seal_stream(KEY[:16], header(), b"audio")


@pytest.mark.parametrize(
    "other",
    [
        SealContext("ten_b", "recording", "call_1", "dep_a"),
        SealContext("ten_a", "recording", "call_1", "dep_b"),
        SealContext("ten_a", "recording", "call_1", None),
        SealContext("ten_a", "recording", "call_2", "dep_a"),
        SealContext("ten_a", "transcript", "call_1", "dep_a"),
    ],
    ids=["tenant", "deployment", "no-deployment", "call", "purpose"],
)
def test_object_of_another_tenant_deployment_or_call_is_rejected(other: SealContext) -> None:
    sealed = seal_stream(KEY, header(), b"audio" * 100)
    for opener in (open_stream, open_prefix):
        with pytest.raises(DecryptionError):
            opener(KEY, sealed, other)
    with pytest.raises(DecryptionError):
        RangeReader(KEY, io.BytesIO(sealed), len(sealed), other)


def test_header_swapped_for_another_objects_is_rejected() -> None:
    mine = seal_stream(KEY, header(), b"caller audio" * 100)
    theirs = header(object_id="call_2")
    swapped = theirs.encode() + mine[header().size :]
    with pytest.raises(DecryptionError):
        open_stream(KEY, swapped, theirs.context)


@pytest.mark.parametrize(
    "changes", [{"key_ref": "dk_1/v2"}, {"segment_size": SMALL + 16}], ids=["key-ref", "segment"]
)
def test_edited_header_is_rejected(changes: dict[str, Any]) -> None:
    sealed = seal_stream(KEY, header(), b"audio" * 100)
    edited = header(**changes).encode() + sealed[header().size :]
    with pytest.raises(DecryptionError):
        open_stream(KEY, edited, CTX)


def segments(sealed: bytes, segment_size: int = SMALL) -> tuple[bytes, list[bytes]]:
    """Split into (callvault header + tink header, ciphertext segments)."""
    start = header(segment_size).size
    body = sealed[start:]
    cuts = [TINK_HEADER_BYTES, *range(segment_size, len(body), segment_size), len(body)]
    return sealed[: start + TINK_HEADER_BYTES], [body[a:b] for a, b in itertools.pairwise(cuts)]


PLAIN = os.urandom(5 * (SMALL - TAG) + 77)  # six segments


@pytest.fixture
def sealed() -> bytes:
    return bytes(seal_stream(KEY, header(), PLAIN))


def test_truncated_stream_is_rejected_at_every_length(sealed: bytes) -> None:
    for cut in range(len(sealed)):
        with pytest.raises(DecryptionError):
            open_stream(KEY, sealed[:cut], CTX)


def test_truncation_at_a_segment_boundary_is_rejected(sealed: bytes) -> None:
    head, segs = segments(sealed)
    for k in range(1, len(segs)):
        with pytest.raises(DecryptionError):
            open_stream(KEY, head + b"".join(segs[:k]), CTX)


@pytest.mark.parametrize("extra", [b"\0", bytes(TAG), os.urandom(SMALL), b"last"])
def test_trailing_bytes_are_rejected(sealed: bytes, extra: bytes) -> None:
    if extra == b"last":
        extra = segments(sealed)[1][-1]
    with pytest.raises(DecryptionError):
        open_stream(KEY, sealed + extra, CTX)


def test_reordered_segments_are_rejected(sealed: bytes) -> None:
    head, segs = segments(sealed)
    segs[1], segs[2] = segs[2], segs[1]
    with pytest.raises(DecryptionError):
        open_stream(KEY, head + b"".join(segs), CTX)


def test_duplicated_segment_is_rejected(sealed: bytes) -> None:
    head, segs = segments(sealed)
    with pytest.raises(DecryptionError):
        open_stream(KEY, head + b"".join([*segs[:2], segs[1], *segs[2:]]), CTX)


def test_dropped_middle_segment_is_rejected(sealed: bytes) -> None:
    head, segs = segments(sealed)
    with pytest.raises(DecryptionError):
        open_stream(KEY, head + b"".join(segs[:2] + segs[3:]), CTX)


def test_segment_from_another_stream_under_the_same_key_is_rejected(sealed: bytes) -> None:
    head, segs = segments(sealed)
    _, other = segments(bytes(seal_stream(KEY, header(), PLAIN)))
    segs[2] = other[2]
    with pytest.raises(DecryptionError):
        open_stream(KEY, head + b"".join(segs), CTX)


def test_every_flipped_bit_is_detected() -> None:
    sealed = seal_stream(KEY, header(), b"hello caller" * 30)
    for i in range(len(sealed) * 8):
        tampered = bytearray(sealed)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            open_stream(KEY, tampered, CTX)


def test_every_failure_says_the_same_thing(sealed: bytes) -> None:
    messages = set()
    for bad_key, blob, ctx in [
        (secrets.token_bytes(32), sealed, CTX),
        (KEY, sealed[:-1], CTX),
        (KEY, sealed + b"x", CTX),
        (KEY, sealed, SealContext("ten_b", "recording", "call_1", "dep_a")),
        (KEY, b"garbage", CTX),
    ]:
        with pytest.raises(DecryptionError) as info:
            open_stream(bad_key, blob, ctx)
        messages.add(str(info.value))
    assert messages == {"sealed object could not be opened"}


# -- writing while the call is live ------------------------------------------------------


@contextmanager
def fixed_randomness() -> Iterator[None]:
    """Same salt and nonce prefix for every stream, to compare bytes."""
    with mock.patch.object(_stream_body, "_random_bytes", lambda n: bytes(range(n))):
        yield


@settings(max_examples=80, deadline=None)
@given(
    plaintext=st.binary(max_size=4000),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    segment_size=st.sampled_from([64, 100, SMALL]),
)
def test_writer_with_any_chunking_equals_one_shot_sealing(
    plaintext: bytes, cuts: list[int], segment_size: int
) -> None:
    h = header(segment_size)
    bounds = sorted({0, len(plaintext), *(c for c in cuts if c <= len(plaintext))})
    sink = io.BytesIO()
    with fixed_randomness():
        expected = seal_stream(KEY, h, plaintext)
        with StreamWriter(KEY, h, sink) as w:
            for a, b in itertools.pairwise(bounds):
                w.write(memoryview(plaintext)[a:b])
            w.write(b"")
    assert sink.getvalue() == expected
    assert w.finished
    assert w.written == len(expected)


class RecordingSink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: memoryview) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def test_writer_writes_the_headers_at_once_and_each_segment_when_known_not_last() -> None:
    h = header()
    sink = RecordingSink()
    w = StreamWriter(KEY, h, sink)
    assert len(sink.data) == h.size + TINK_HEADER_BYTES
    w.write(bytes(first_plain(SMALL)))  # segment 0 is full but might be the last
    assert len(sink.data) == h.size + TINK_HEADER_BYTES
    w.write(b"x")  # now it is not
    assert len(sink.data) == h.size + SMALL


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(0, 700), max_size=20))
def test_writer_holds_at_most_one_segment_of_plaintext(chunks: list[int]) -> None:
    sink = RecordingSink()
    w = StreamWriter(KEY, header(), sink)
    fed = 0
    for n in chunks:
        w.write(bytes(n))
        fed += n
        got = open_prefix(KEY, sink.data, CTX)
        assert not got.complete
        assert fed - len(got.plaintext) <= SMALL - TAG


def test_crash_leaves_an_authenticated_prefix_that_only_open_prefix_reads() -> None:
    audio = os.urandom(10_000)
    sink = io.BytesIO()
    w = StreamWriter(KEY, header(), sink)
    for i in range(0, len(audio), 333):
        w.write(audio[i : i + 333])
    # the process dies here: no finish()
    got = open_prefix(KEY, sink.getvalue(), CTX)
    assert not got.complete
    assert audio.startswith(got.plaintext)
    assert len(audio) - len(got.plaintext) <= SMALL - TAG
    with pytest.raises(DecryptionError):
        open_stream(KEY, sink.getvalue(), CTX)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 3000), cut=st.integers(0, 4000))
def test_torn_write_never_yields_garbage(size: int, cut: int) -> None:
    audio = os.urandom(size)
    sealed = bytes(seal_stream(KEY, header(), audio))
    cut = min(cut, len(sealed))
    if cut < header().size:
        with pytest.raises(DecryptionError):
            open_prefix(KEY, sealed[:cut], CTX)
        return
    got = open_prefix(KEY, sealed[:cut], CTX)
    assert audio.startswith(got.plaintext)
    assert got.complete == (cut == len(sealed))


def test_exception_inside_with_leaves_the_stream_incomplete() -> None:
    sink = io.BytesIO()
    writer = StreamWriter(KEY, header(), sink)

    def record() -> None:
        with writer as w:
            w.write(b"a" * 1000)
            raise RuntimeError("carrier hung up badly")

    with pytest.raises(RuntimeError):
        record()
    assert not writer.finished
    assert open_prefix(KEY, sink.getvalue(), CTX).complete is False


def test_finished_writer_refuses_more_audio() -> None:
    w = StreamWriter(KEY, header(), io.BytesIO())
    w.finish()
    with pytest.raises(CryptoError):
        w.write(b"late")
    with pytest.raises(CryptoError):
        w.finish()


def test_writer_whose_sink_failed_refuses_more_audio() -> None:
    class FailingSink:
        calls = 0

        def write(self, data: memoryview) -> int:
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk full")
            return len(data)

    w = StreamWriter(KEY, header(), FailingSink())
    with pytest.raises(OSError, match="disk full"):
        w.write(bytes(2 * SMALL))
    with pytest.raises(CryptoError):
        w.write(b"more")


def test_open_prefix_of_a_complete_stream_is_complete(sealed: bytes) -> None:
    got = open_prefix(KEY, sealed, CTX)
    assert got.complete
    assert got.plaintext == PLAIN


@pytest.mark.parametrize("size", [0, 1, first_plain(SMALL), 3 * (SMALL - TAG) - 40])
def test_open_prefix_of_complete_streams_at_boundaries(size: int) -> None:
    audio = os.urandom(size)
    got = open_prefix(KEY, seal_stream(KEY, header(), audio), CTX)
    assert (got.plaintext, got.complete) == (audio, True)


def test_open_prefix_rejects_tampering_before_the_tail(sealed: bytes) -> None:
    prefix = bytearray(sealed[: header().size + 3 * SMALL + 50])
    prefix[header().size + SMALL + 5] ^= 1
    with pytest.raises(DecryptionError):
        open_prefix(KEY, prefix, CTX)


def test_open_prefix_rejects_a_wrong_key_once_a_segment_is_written(sealed: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_prefix(secrets.token_bytes(32), sealed[: header().size + SMALL + 3], CTX)


def test_open_prefix_rejects_trailing_bytes_after_a_complete_stream(sealed: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_prefix(KEY, sealed + bytes(SMALL), CTX)


# -- random access -----------------------------------------------------------------------

BIG = os.urandom(20 * (SMALL - TAG) + 123)


BIG_SEALED = bytes(seal_stream(KEY, header(), BIG))


@pytest.fixture
def big_sealed() -> bytes:
    return BIG_SEALED


def reader_over(data: bytes) -> tuple[Callable[[int, int], bytes], list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def read_at(offset: int, size: int) -> bytes:
        calls.append((offset, size))
        return data[offset : offset + size]

    return read_at, calls


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, len(BIG) + 50), b=st.integers(0, len(BIG) + 50))
def test_ranged_read_equals_the_slice_of_a_full_open(a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    read_at, _ = reader_over(BIG_SEALED)
    reader = RangeReader(KEY, read_at, len(BIG_SEALED), CTX)
    assert reader.plaintext_length == len(BIG)
    assert reader.read_range(start, end) == BIG[start:end]
    assert b"".join(reader.iter_range(start, end)) == BIG[start:end]


def test_ranged_read_decrypts_only_the_segments_it_touches(big_sealed: bytes) -> None:
    read_at, calls = reader_over(big_sealed)
    reader = RangeReader(KEY, read_at, len(big_sealed), CTX)
    opening = len(calls)  # header, tink header, last segment
    assert opening == 3
    mid = len(BIG) // 2
    assert reader.read_range(mid, mid + 1) == BIG[mid : mid + 1]
    assert len(calls) == opening + 1
    assert calls[-1][1] == SMALL
    reader.read_range(mid, mid + 2 * SMALL)
    assert len(calls) == opening + 1 + 3


def test_ranged_read_from_a_file(tmp_path: Path, big_sealed: bytes) -> None:
    path = tmp_path / "call.sealed"
    path.write_bytes(big_sealed)
    with path.open("rb") as f:
        reader = RangeReader(KEY, f, path.stat().st_size, CTX)
        assert reader.read_range(1000, 3000) == BIG[1000:3000]
        assert reader.read_range(0, 10**9) == BIG


def test_ranged_read_of_an_empty_stream() -> None:
    sealed = bytes(seal_stream(KEY, header(), b""))
    reader = RangeReader(KEY, io.BytesIO(sealed), len(sealed), CTX)
    assert reader.plaintext_length == 0
    assert reader.read_range(0, 10) == b""


def test_range_with_negative_or_reversed_bounds_is_invalid(big_sealed: bytes) -> None:
    reader = RangeReader(KEY, io.BytesIO(big_sealed), len(big_sealed), CTX)
    for start, end in [(-1, 5), (10, 5)]:
        with pytest.raises(InvalidInputError):
            reader.iter_range(start, end)


@pytest.mark.parametrize(
    "damage",
    ["truncated", "boundary", "trailing", "short-source", "wrong-key", "header"],
)
def test_range_reader_rejects_a_damaged_object_before_serving(
    big_sealed: bytes, damage: str
) -> None:
    data, length, key = big_sealed, len(big_sealed), KEY
    if damage == "truncated":
        data = data[:-7]
        length = len(data)
    elif damage == "boundary":
        data = data[: header().size + 10 * SMALL]
        length = len(data)
    elif damage == "trailing":
        data += b"\0" * 20
        length = len(data)
    elif damage == "short-source":
        length += 100
    elif damage == "wrong-key":
        key = secrets.token_bytes(32)
    else:
        data = header(key_ref="dk_9").encode() + data[header().size :]
    read_at, _ = reader_over(data)
    with pytest.raises(DecryptionError):
        RangeReader(key, read_at, length, CTX)


def test_range_reader_rejects_a_tampered_segment_when_it_reaches_it(big_sealed: bytes) -> None:
    tampered = bytearray(big_sealed)
    tampered[header().size + 5 * SMALL + 9] ^= 0x80
    reader = RangeReader(KEY, io.BytesIO(bytes(tampered)), len(tampered), CTX)
    assert reader.read_range(0, 100) == BIG[:100]
    with pytest.raises(DecryptionError):
        reader.read_range(0, len(BIG))


def test_range_reader_rejects_swapped_segments(big_sealed: bytes) -> None:
    head, segs = segments(big_sealed)
    segs[3], segs[4] = segs[4], segs[3]
    swapped = head + b"".join(segs)
    reader = RangeReader(KEY, io.BytesIO(swapped), len(swapped), CTX)
    start = 3 * (SMALL - TAG)
    with pytest.raises(DecryptionError):
        reader.read_range(start, start + 1)
