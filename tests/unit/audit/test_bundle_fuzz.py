"""Fuzzed bundle parsing: arbitrary bytes are a verdict or a BundleError, never a crash.

Properties:

- the entries parser, the manifest parser and the key-file parser raise only
  :class:`BundleError` on any input;
- where the entries parser accepts, the file is exactly the canonical framing
  of the entries it sliced out, and the chunking of the input never matters;
- the JSON check split out for helper processes agrees with the parser;
- any JSON object (as Python serialises it without spaces) round-trips
  through the writer and the verifier;
- mutating any file of a valid bundle gives a verdict, and an OK verdict only
  when the entries and the checkpoint are byte for byte the original.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from callvault.audit.bundle import (
    CHECKPOINT_FILE,
    DATA_FILES,
    ENTRIES_FILE,
    MANIFEST_FILE,
    BundleError,
    EntriesDigest,
    EntryParser,
    digest_entries,
    entry_problem,
    json_failure,
    parse_key_file,
    parse_manifest,
    verify_bundle,
    write_bundle,
)
from callvault.audit.merkle import leaf_hash, root
from tests.unit.audit.test_bundle import KEY, entries, make_bundle, note_for

FUZZ = settings(max_examples=500, deadline=None)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_json_objects = st.dictionaries(st.text(max_size=8), _json_values, max_size=6)


def _digest(chunks: list[bytes]) -> EntriesDigest | str:
    """The digest, or the failure as "reason: message"; anything else fails the test."""
    try:
        return digest_entries(chunks, prefix_size=1, max_entry_bytes=4096)
    except BundleError as exc:
        return f"{exc.reason}: {exc.message}"


def _line(i: int, e: bytes) -> bytes:
    return b'{"index":%d,"entry":%b}\n' % (i, e)


# Lines that are nearly right, so the fuzzer gets past the framing.
_near_lines = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.builds(
            lambda i, e, tail: b'{"index":%d,"entry":%b}%b' % (i, e, tail),
            st.integers(0, 3),
            st.sampled_from([b"{}", b'{"a":1}', b'{"a":1,"a":2}', b"[]", b"{", b'{"a":NaN}']),
            st.sampled_from([b"\n", b"\r\n", b" \n", b"", b"\n\n"]),
        ),
    ),
    max_size=5,
).map(b"".join)


@FUZZ
@given(data=st.binary(max_size=600) | _near_lines, cuts=st.lists(st.integers(0, 600), max_size=4))
def test_the_entries_parser_only_raises_bundle_error_and_ignores_chunking(
    data: bytes, cuts: list[int]
) -> None:
    whole = _digest([data])
    points = sorted({c for c in cuts if c <= len(data)})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert _digest(pieces) == whole
    if isinstance(whole, EntriesDigest):
        # Accepted: the bytes are exactly the framing of the entries in them.
        lines = data.split(b"\n")[:-1]
        sliced = [ln[len(b'{"index":%d,"entry":' % i) : -1] for i, ln in enumerate(lines)]
        assert b"".join(_line(i, e) for i, e in enumerate(sliced)) == data
        assert whole.root_hash == root([leaf_hash(e) for e in sliced])
        assert all(entry_problem(e) is None for e in sliced)


@FUZZ
@given(data=st.binary(max_size=300) | _near_lines)
def test_framing_here_and_json_in_a_helper_agree_with_the_inline_parser(data: bytes) -> None:
    # What the verifier does with helper processes, in one process: the framing
    # pass stops at line L, the helper's first JSON failure J wins when J < L.
    framing = EntryParser(prefix_size=1, max_entry_bytes=4096, check_json=False)
    combined: EntriesDigest | str
    try:
        framing.feed(data)
        combined = framing.finish()
        stopped = None
    except BundleError as exc:
        combined, stopped = f"{exc.reason}: {exc.message}", framing.count
    failure = json_failure(data[: data.rfind(b"\n") + 1], 0, max_entry_bytes=4096)
    if failure is not None and (stopped is None or failure[0] < stopped):
        combined = f"bad-entry: {ENTRIES_FILE} line {failure[0] + 1}: {failure[1]}"
    assert combined == _digest([data])


@FUZZ
@given(st.binary(max_size=300))
def test_entry_problem_never_raises(entry: bytes) -> None:
    problem = entry_problem(entry)
    if problem is None:
        assert isinstance(json.loads(entry), dict)


@FUZZ
@given(st.binary(max_size=400) | st.builds(lambda v: json.dumps(v).encode(), _json_values))
def test_the_manifest_parser_only_raises_bundle_error(data: bytes) -> None:
    try:
        manifest = parse_manifest(data)
    except BundleError:
        return
    assert set(manifest.files) == set(DATA_FILES)


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=120).map(lambda t: (t + "\n").encode()))
def test_the_key_file_parser_only_raises_bundle_error(data: bytes) -> None:
    try:
        verifier = parse_key_file(data)
    except BundleError:
        return
    assert (verifier.key_string() + "\n").encode() == data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_json_objects, max_size=12))
def test_any_json_objects_round_trip_through_writer_and_verifier(
    objects: list[dict[str, Any]],
) -> None:
    es = [json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode() for o in objects]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b"
        write_bundle(
            path,
            tenant="ten_x",
            entries=enumerate(es),
            checkpoint_note=note_for(es),
            verifier_key=KEY,
        )
        verdict = verify_bundle(
            path, trusted_key=KEY, trusted_checkpoint=note_for(es[: len(es) // 2])
        )
        assert verdict.ok, verdict.lines()


_ORIGINAL = entries(6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from([*DATA_FILES, MANIFEST_FILE]),
    position=st.floats(0, 1),
    operation=st.sampled_from(["flip", "insert", "delete", "replace", "truncate"]),
    payload=st.binary(min_size=1, max_size=8),
)
def test_mutating_any_file_gives_a_verdict_and_never_a_false_ok(
    name: str, position: float, operation: str, payload: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = make_bundle(Path(tmp) / "b", _ORIGINAL)
        original = {n: (path / n).read_bytes() for n in (ENTRIES_FILE, CHECKPOINT_FILE)}
        data = (path / name).read_bytes()
        at = min(int(position * len(data)), max(len(data) - 1, 0))
        if operation == "flip" and data:
            data = data[:at] + bytes([data[at] ^ payload[0] or 1]) + data[at + 1 :]
        elif operation == "insert":
            data = data[:at] + payload + data[at:]
        elif operation == "delete":
            data = data[:at] + data[at + len(payload) :]
        elif operation == "replace":
            data = data[:at] + payload + data[at + len(payload) :]
        else:
            data = data[:at]
        assume(data != (path / name).read_bytes())
        (path / name).write_bytes(data)
        for verdict in (verify_bundle(path), verify_bundle(path, trusted_key=KEY)):
            if verdict.ok:
                # Only a harmless change (say, to the manifest's whitespace) may pass.
                assert {n: (path / n).read_bytes() for n in original} == original
            else:
                assert verdict.failures
