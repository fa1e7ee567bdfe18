"""Coverage-guided fuzzing of the sealed-stream parsers with atheris (longer than the suite's).

Not collected by pytest. Needs ``atheris==3.0.0`` in the venv::

    .venv/bin/python tests/fuzz/fuzz_sealed_stream.py -max_total_time=600 [corpus_dir]

Each input is read three ways: as a whole sealed stream, as a valid header
followed by the input as the body, and as a valid stream with the input's
first bytes used to mutate it. Anything but ``DecryptionError`` escaping, or
an opener returning bytes other than the true plaintext (a prefix of it for
``open_prefix``), crashes the run and leaves the input as a reproducer.
"""

from __future__ import annotations

import contextlib
import io
import sys

import atheris

with atheris.instrument_imports():
    from callvault.crypto import SealContext
    from callvault.crypto.stream import (
        RangeReader,
        StreamHeader,
        open_body,
        open_prefix,
        open_stream,
        read_header,
        seal_stream,
    )
    from callvault.errors import DecryptionError

KEY = bytes(range(32))
CTX = SealContext(tenant_id="ten_a", purpose="recording", object_id="call_1", deployment_id="dep_a")
HEADER = StreamHeader.for_context(CTX, key_ref="dk_1/v1", segment_size=128)
PLAIN = bytes(i % 251 for i in range(700))
VALID = bytes(seal_stream(KEY, HEADER, PLAIN))


def _check(data: bytes) -> None:
    try:
        header = read_header(data)
    except DecryptionError:
        pass
    else:
        if not data.startswith(header.encode()):
            raise AssertionError("header parsed to another encoding")
    try:
        if open_stream(KEY, data, CTX) != PLAIN or data != VALID:
            raise AssertionError("a stream that is not ours opened")
    except DecryptionError:
        pass
    try:
        prefix = open_prefix(KEY, data, CTX)
        if not PLAIN.startswith(prefix.plaintext) or (prefix.complete and data != VALID):
            raise AssertionError("open_prefix returned unauthenticated bytes")
    except DecryptionError:
        pass
    try:
        reader = RangeReader(KEY, io.BytesIO(data), len(data), CTX)
        if reader.read_range(0, len(PLAIN)) != PLAIN:
            raise AssertionError("ranged read returned other bytes")
    except DecryptionError:
        pass


def test_one_input(raw: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(raw)
    segment_size = fdp.ConsumeIntInRange(0, 1 << 24)
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    _check(data)
    _check(HEADER.encode() + data)
    mutated = bytearray(VALID)
    for i in range(0, len(data) - 2, 3):
        mutated[(data[i] << 8 | data[i + 1]) % len(mutated)] ^= data[i + 2] or 1
    _check(bytes(mutated))
    with contextlib.suppress(DecryptionError):
        open_body(KEY, b"", data, segment_size=segment_size)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
