"""The media frame read without the JSON parser: the same event or the same refusal, always.

``parse_inbound`` reads a ``media`` frame written exactly as Twilio writes it
with one regular expression; everything else goes through the JSON parser.
These tests hold the two ways to the same answer on valid frames, frames one
edit away from valid, and frames built from arbitrary field values.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.calls import _twilio
from callvault.calls._twilio import Media, ProtocolError, parse_inbound
from callvault.calls._twilio_frames import FrameWriter
from callvault.calls._twilio_stream import TwilioStream

MAX = 64 * 1024
PAYLOAD_MAX = 8000


def outcome(parse: Any, text: str | bytes, payload_max: int = PAYLOAD_MAX) -> tuple[Any, ...]:
    """An event, or a refusal as everything a caller can see of it."""
    try:
        return ("event", parse(text, payload_max))
    except ProtocolError as exc:
        return ("refused", exc.code, str(exc), exc.field, exc.close_code)


def fast_or_general(text: str | bytes, payload_max: int) -> object:
    return parse_inbound(text, max_bytes=MAX, max_payload_bytes=payload_max)


def general(text: str | bytes, payload_max: int) -> object:
    return _twilio._parse_json_frame(_twilio._frame_text(text, MAX), payload_max)


def takes_fast_way(text: str | bytes) -> bool:
    return isinstance(text, str) and _twilio._MEDIA_FRAME.fullmatch(text) is not None


def assert_same(text: str | bytes, payload_max: int = PAYLOAD_MAX) -> tuple[Any, ...]:
    got = outcome(fast_or_general, text, payload_max)
    assert got == outcome(general, text, payload_max), text
    return got


def media_frame(**fields: Any) -> str:
    """A media frame in Twilio's layout with any field values (JSON-encoded as given)."""
    msg = {
        "event": "media",
        "sequenceNumber": fields.get("sequence", "7"),
        "media": {
            "track": fields.get("track", "inbound"),
            "chunk": fields.get("chunk", "5"),
            "timestamp": fields.get("timestamp", "80"),
            "payload": fields.get("payload", base64.b64encode(bytes(range(160))).decode()),
        },
        "streamSid": fields.get("sid", "MZ18ad3ab5a668481ce02b83e7395059f0"),
    }
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=fields.get("ascii", True))


def test_frames_as_twilio_writes_them_take_the_fast_way_and_read_the_same() -> None:
    writer = FrameWriter()
    writer.start()
    rng = random.Random(5)  # noqa: S311 - reproducible test data, not a secret
    for size in (1, 2, 3, 159, 160, 161, 800, 7999, 8000, 8001):
        for track in ("inbound", "outbound"):
            text = writer.media(rng.randbytes(size), track)
            assert takes_fast_way(text)
            got = assert_same(text)
            assert (got[0] == "event") == (size <= PAYLOAD_MAX)
    text = media_frame(track="inbound_track", sequence="000000000042", chunk="999999999999")
    assert takes_fast_way(text)
    event = assert_same(text)[1]
    assert isinstance(event, Media)
    assert (event.track, event.sequence, event.chunk) == ("inbound", 42, 999_999_999_999)


def test_frames_the_fast_way_refuses_are_refused_the_same_way() -> None:
    payload = base64.b64encode(b"\x01\x02\x03\x04").decode()
    bad_payloads = [
        "",  # empty
        "AQIDBA",  # padding missing
        "AQIDBA=",  # padding short
        "AQIDBA===",  # padding long
        "AQIDBB==",  # stray bits: not canonical
        "=AQIDBA=",  # padding first
        "AQ==IDBA",  # data after padding
        "A" * (4 * ((PAYLOAD_MAX + 2) // 3) + 4),  # over the payload limit
        base64.b64encode(bytes(PAYLOAD_MAX + 1)).decode(),
    ]
    for bad in bad_payloads:
        text = media_frame(payload=bad)
        assert takes_fast_way(text), bad
        assert assert_same(text)[0] == "refused", bad
    for small in (1, 2, 3):  # a payload limit the frame's 4 bytes exceed
        assert assert_same(media_frame(payload=payload), small)[0] == "refused"


def test_frames_off_the_fast_way_read_the_same_through_the_parser() -> None:
    base = media_frame()
    variants = [
        base.replace('"media":{', '"media": {'),  # whitespace
        " " + base,
        base + "\n",
        base.replace('"7"', '"\\u0037"'),  # an escape
        base.replace('"7"', "7"),  # a number, not a string
        base.replace('"streamSid"', '"extra":1,"streamSid"'),  # an unknown field
        base.replace('"event":"media",', '"event":"media","event":"media",'),  # duplicate key
        base.replace('"chunk":"5"', '"chunk":"5","chunk":"6"'),
        base.replace('"7"', '"0000000000007"'),  # 13 digits
        base.replace('"7"', '"-7"'),
        base.replace('"inbound"', '"both"'),
        base.replace('"MZ', '"_MZ'),  # a bad id
        base.replace('"MZ', '"' + "M" * 128),  # an id too long
        base.replace('"MZ', '"MZé'),
        base.replace('"event":"media"', '"event":"Media"'),
        base[:-1],  # cut short
        base + "}",
        base.replace('"},', '",'),
        media_frame(ascii=False, sid="MZé"),
        base.encode(),  # bytes: the general way
        base.encode()[:-1] + b"\xff",
    ]
    for text in variants:
        assert text != base
        assert not takes_fast_way(text), text
        assert_same(text)


def test_every_one_character_edit_of_a_frame_reads_the_same_both_ways() -> None:
    base = media_frame(payload=base64.b64encode(b"\x00\xffab").decode())
    alphabet = '"\\{}[],: 0179azAZ+/=_.-é\x00'
    rng = random.Random(11)  # noqa: S311 - reproducible test data, not a secret
    fast = 0
    for i in range(len(base) + 1):
        edits = [base[:i] + base[i + 1 :]] if i < len(base) else []
        edits += [base[:i] + rng.choice(alphabet) + base[i + 1 :] for _ in range(3)]
        edits += [base[:i] + rng.choice(alphabet) + base[i:] for _ in range(3)]
        for text in edits:
            fast += takes_fast_way(text)
            assert_same(text)
    assert fast > 100  # many edits stay on the fast way (and are judged the same there)


@settings(max_examples=300, deadline=None)
@given(
    sequence=st.one_of(st.from_regex(r"[0-9]{1,13}", fullmatch=True), st.text(max_size=4)),
    track=st.sampled_from(["inbound", "outbound", "inbound_track", "outbound_track", "x", ""]),
    chunk=st.one_of(st.from_regex(r"[0-9]{1,13}", fullmatch=True), st.text(max_size=4)),
    payload=st.one_of(
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
        st.from_regex(r"[A-Za-z0-9+/=]{0,12}", fullmatch=True),
        st.text(max_size=8),
    ),
    sid=st.one_of(st.from_regex(r"[A-Za-z0-9._:-]{0,130}", fullmatch=True), st.text(max_size=6)),
    payload_max=st.integers(min_value=1, max_value=400),
)
def test_any_field_values_read_the_same_both_ways(
    sequence: str, track: str, chunk: str, payload: str, sid: str, payload_max: int
) -> None:
    text = media_frame(sequence=sequence, track=track, chunk=chunk, payload=payload, sid=sid)
    assert_same(text, payload_max)


def _loads(text: str) -> object:
    return json.loads(
        text, object_pairs_hook=_twilio._unique_keys, parse_constant=_twilio._no_constant
    )


def test_the_reused_decoder_is_json_loads_with_the_same_hooks() -> None:
    texts = [media_frame(), '{"a":1,"a":2}', '{"a":NaN}', "[1]", "\ufeff{}", "{", "", "[" * 100_000]
    for text in texts:
        results = []
        for decode in (_loads, _twilio._DECODER.decode):
            try:
                results.append(("value", decode(text)))
            except (ValueError, RecursionError) as exc:  # both refused: bad-json either way
                results.append(("refused", isinstance(exc, RecursionError)))
        assert results[0] == results[1], text[:40]


def _old_b64(value: object, max_bytes: int) -> tuple[Any, ...]:
    """The payload check as it was written with the base64 module (the reference)."""
    path = "media.payload"
    try:
        if not isinstance(value, str) or not value:
            raise _twilio._fail("bad-field", f"field '{path}' must be a non-empty string", path)
        if len(value) > 4 * ((max_bytes + 2) // 3):
            raise _twilio._fail(
                "frame-too-large", f"field '{path}' exceeds the payload limit", path
            )
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise _twilio._fail("bad-base64", f"field '{path}' is not valid base64", path) from None
        if base64.b64encode(raw).decode("ascii") != value:
            raise _twilio._fail("bad-base64", f"field '{path}' is not canonical base64", path)
        if len(raw) > max_bytes:
            raise _twilio._fail(
                "frame-too-large", f"field '{path}' exceeds the payload limit", path
            )
    except ProtocolError as exc:
        return ("refused", exc.code, str(exc))
    return ("ok", raw)


def _new_b64(value: object, max_bytes: int) -> tuple[Any, ...]:
    try:
        return ("ok", _twilio._b64_value(value, "media.payload", max_bytes))
    except ProtocolError as exc:
        return ("refused", exc.code, str(exc))


@settings(max_examples=500, deadline=None)
@given(
    value=st.one_of(
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        st.from_regex(r"[A-Za-z0-9+/=\n ]{0,16}", fullmatch=True),
        st.text(max_size=10),
        st.none(),
    ),
    max_bytes=st.integers(min_value=1, max_value=50),
)
def test_the_payload_check_is_the_base64_modules(value: object, max_bytes: int) -> None:
    assert _new_b64(value, max_bytes) == _old_b64(value, max_bytes)


def test_an_in_order_stream_comes_out_as_before() -> None:
    """The stream's straight-through path for in-order frames keeps order, counts and gaps."""
    writer = FrameWriter()
    frames = [writer.connected(), writer.start()]
    frames += [writer.media(bytes([k]) * 160) for k in range(60)]
    frames.append(writer.stop())
    shuffled = frames[:2] + frames[2:12] + frames[14:20] + frames[12:14] + frames[20:]
    stream = TwilioStream()
    out = [event for frame in shuffled for event in stream.feed(frame)]
    media = [e for e in out if isinstance(e, Media)]
    assert [m.payload[0] for m in media] == list(range(60))
    assert [m.sequence for m in media] == sorted(m.sequence for m in media)
    summary = stream.close("stop").summary
    assert (summary.status, summary.media, summary.reordered, summary.lost) == (
        "completed",
        60,
        2,
        0,
    )
