"""Live recordings: sealed as they arrive, stored whole on finish, nothing on abort."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from callvault.calls._recording import (
    LiveRecording,
    header_context,
    open_recording,
    recording_context,
    recording_key,
)
from callvault.crypto import stream_key
from callvault.crypto.stream import open_stream
from callvault.errors import DecryptionError, InvalidInputError, NotFoundError
from callvault.runtime import Runtime
from callvault.store.objects import ObjectStore

TENANT, DEPLOYMENT, CALL = "ten_" + "a" * 26, "dep_" + "b" * 26, "call_" + "c" * 26
KEY = secrets.token_bytes(32)
SMALL = 4096  # segment size: several segments in a short test


def _store(rt: Runtime) -> ObjectStore:
    return rt.objects.for_region("eu-west-2")


def _all_bytes_under(root: Path) -> bytes:
    out = bytearray()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out += (Path(dirpath) / name).read_bytes()
    return bytes(out)


def _audio(n: int) -> bytes:
    # A distinctive plaintext pattern to look for on disk.
    return (b"PLAINTEXT-AUDIO-" * (n // 16 + 1))[:n]


def test_audio_is_sealed_as_it_arrives_and_opens_whole_after_finish(rt: Runtime) -> None:
    store = _store(rt)
    ctx = recording_context(TENANT, DEPLOYMENT, CALL)
    rec = LiveRecording.open(store, KEY, ctx, codec="mulaw", sample_rate=8000, segment_size=SMALL)
    audio = _audio(50_000)
    for i in range(0, len(audio), 160):  # 20 ms μ-law frames
        rec.write(audio[i : i + 160])
        if i == 160 * 200:
            # Mid-call: segments already went to disk, and none of it is plaintext.
            on_disk = _all_bytes_under(rt.settings.data_dir)
            assert b"PLAINTEXT-AUDIO" not in on_disk
    assert not store.exists(recording_key(TENANT, DEPLOYMENT, CALL))  # invisible until finished
    result = rec.finish(complete=True)
    assert result.samples == len(audio)
    assert result.duration_ms == len(audio) // 8
    assert result.complete
    sealed = store.get(result.object_ref)
    assert len(sealed) == result.size_bytes
    assert b"PLAINTEXT-AUDIO" not in _all_bytes_under(rt.settings.data_dir)
    assert bytes(open_recording(KEY, sealed, ctx)) == audio


def test_the_recording_does_not_open_for_another_call_or_under_the_raw_data_key(
    rt: Runtime,
) -> None:
    store = _store(rt)
    ctx = recording_context(TENANT, DEPLOYMENT, CALL)
    rec = LiveRecording.open(store, KEY, ctx, codec="pcm16", sample_rate=16000)
    rec.write(b"\x01\x00" * 1000)
    sealed = store.get(rec.finish(complete=False).object_ref)
    other = recording_context(TENANT, DEPLOYMENT, "call_" + "d" * 26)
    assert bytes(open_recording(KEY, sealed, ctx)) == b"\x01\x00" * 1000
    with pytest.raises(DecryptionError):  # another call's key derivation
        open_stream(stream_key(KEY, other), sealed, header_context(ctx))
    with pytest.raises(DecryptionError):  # another call's object
        open_recording(KEY, sealed, other)
    with pytest.raises(DecryptionError):  # the data key never keys a stream directly
        open_stream(KEY, sealed, header_context(ctx))


def test_abort_leaves_nothing(rt: Runtime) -> None:
    store = _store(rt)
    ctx = recording_context(TENANT, DEPLOYMENT, CALL)
    rec = LiveRecording.open(store, KEY, ctx, codec="mulaw", sample_rate=8000, segment_size=SMALL)
    rec.write(_audio(20_000))
    rec.abort()
    rec.abort()  # idempotent
    with pytest.raises(NotFoundError):
        store.get(recording_key(TENANT, DEPLOYMENT, CALL))
    assert b"PLAINTEXT-AUDIO" not in _all_bytes_under(rt.settings.data_dir)


def test_bad_input_is_refused_and_loses_nothing(rt: Runtime) -> None:
    store = _store(rt)
    ctx = recording_context(TENANT, DEPLOYMENT, CALL)
    with pytest.raises(InvalidInputError, match="codec"):
        LiveRecording.open(store, KEY, ctx, codec="opus", sample_rate=8000)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="sample rate"):
        LiveRecording.open(store, KEY, ctx, codec="mulaw", sample_rate=11025)
    rec = LiveRecording.open(store, KEY, ctx, codec="pcm16", sample_rate=8000)
    rec.write(b"\x00\x01" * 10)
    with pytest.raises(InvalidInputError, match="not whole pcm16 samples"):
        rec.write(b"\x00\x01\x02")
    result = rec.finish(complete=True)
    assert result.samples == 10  # the refused chunk changed nothing
    with pytest.raises(InvalidInputError, match="finished"):
        rec.write(b"\x00\x00")
    with pytest.raises(InvalidInputError, match="finished"):
        rec.finish(complete=True)
