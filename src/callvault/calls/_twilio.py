"""Twilio Media Streams wire protocol: parse, order, build and sign. Values in, values out.

This is the pure layer under the ``/v1/ingest/twilio/{deployment}`` WebSocket
endpoint: no sockets, no storage, no logging. The endpoint feeds each text
frame to :class:`TwilioStream`, seals what comes out, and closes the socket
with :attr:`ProtocolError.close_code` when a frame is refused.

Sources relied on (Twilio's documentation, as stored by the search tool):

- "Media Streams - WebSocket Messages",
  https://www.twilio.com/docs/voice/media-streams/websocket-messages :
  ``connected`` (``protocol``, ``version``) comes first; ``start`` is sent
  once, right after it, with ``sequenceNumber`` ("The first message has a
  value of 1 and then is incremented for each subsequent message"),
  ``start.streamSid/accountSid/callSid``, ``start.tracks`` (``inbound``,
  ``outbound``), ``start.customParameters`` and ``start.mediaFormat``
  (``encoding`` ``audio/x-mulaw``, ``sampleRate`` 8000, ``channels`` 1);
  ``media`` carries ``media.track``, ``media.chunk``, ``media.timestamp``
  (milliseconds from the start of the stream; chunk and timestamp are
  strings) and ``media.payload`` (base64 μ-law); ``dtmf`` carries
  ``dtmf.track`` (``inbound_track``) and ``dtmf.digit``; ``mark`` carries
  ``mark.name``; ``stop`` carries ``stop.accountSid/callSid``. Every message
  but ``connected`` has the top-level ``streamSid``. On a bidirectional
  stream the server may send ``media`` (``media.payload`` only), ``mark``
  and ``clear``, each with ``streamSid``.
- Twilio error 31920 (https://www.twilio.com/docs/api/errors/31920): a
  ``<Stream>`` url takes no query string; per-call values travel as
  ``<Parameter>`` and arrive in ``start.customParameters``.
- "Media Streams Configuration"
  (https://www.twilio.com/docs/global-infrastructure/firewall-configurations/media-streams-configuration):
  the Media Streams endpoint validates ``X-Twilio-Signature`` as described in
  "Security" (https://www.twilio.com/docs/usage/security#validating-requests):
  HMAC-SHA1 keyed with the account auth token over the full URL followed by
  the POST parameters sorted by name (name then value, no separators),
  base64-encoded. A WebSocket upgrade is a GET: no parameters.
- twilio-python ``twilio/request_validator.py`` and its
  ``tests/unit/test_request_validator.py``: the validator accepts a
  signature over the URL without its port or with its port (the scheme's
  default port added when there is none), "since sig generation on back end
  is inconsistent"; the known-answer vectors in our tests come from there and
  from the "Security" page's worked example.

What the layer assumes beyond the text: ``media.chunk`` counts the media
messages of one track, so a jump in it is audio that never arrived (filled
with :class:`Silence`, 20 ms per chunk); ``sequenceNumber`` counts every
message of the stream, so a hole in it is a message that never arrived
(reported as :class:`Gap`; the call is incomplete).

Nothing here logs, and no error message carries a value from a frame: only
field names and fixed text. Events that hold caller content (media payloads,
DTMF digits, custom parameters, mark names) keep it out of their ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias, TypeGuard

from callvault.errors import InvalidInputError

#: Bytes in one 20 ms frame of 8 kHz μ-law (one byte per sample).
FRAME_BYTES: Final = 160
#: Duration of one media chunk as Twilio sends it.
FRAME_MS: Final = 20
#: The only media format accepted: (encoding, sample rate in Hz, channels).
MEDIA_FORMAT: Final = ("audio/x-mulaw", 8000, 1)

#: Largest inbound frame, in bytes of UTF-8 (a 20 ms media frame is about 400).
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024
#: Largest decoded inbound media payload, in bytes (1 s of 8 kHz μ-law).
DEFAULT_MAX_PAYLOAD_BYTES: Final = 8000
#: Largest frame the agent may send, in bytes of UTF-8.
DEFAULT_MAX_AGENT_FRAME_BYTES: Final = 256 * 1024
#: Largest decoded agent media payload, in bytes (24 s of 8 kHz μ-law).
DEFAULT_MAX_AGENT_PAYLOAD_BYTES: Final = 192_000
#: Reorder window, in sequence numbers: a hole this far behind the newest frame is lost.
DEFAULT_WINDOW_FRAMES: Final = 50
#: Reorder window, in seconds: a frame held this long behind a hole releases it as lost.
DEFAULT_WINDOW_SECONDS: Final = 1.0
#: Largest forward jump in sequence numbers (60 s of 20 ms frames); beyond it the stream is refused.
DEFAULT_MAX_JUMP_FRAMES: Final = 3000

_MAX_TEXT: Final = 256
_MAX_PARAM_VALUE: Final = 1024
_MAX_PARAMS: Final = 64
_MAX_UINT: Final = 10**12
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_UINT = re.compile(r"[0-9]{1,12}")
_REASON = re.compile(r"[a-z][a-z0-9-]{0,31}")
_DIGITS: Final = frozenset("0123456789*#ABCD")
_TRACKS: Final = {
    "inbound": "inbound",
    "outbound": "outbound",
    "inbound_track": "inbound",
    "outbound_track": "outbound",
}
_DEFAULT_PORTS: Final = {"https": 443, "wss": 443, "http": 80, "ws": 80}

ProtocolCode: TypeAlias = Literal[
    "frame-too-large",
    "bad-json",
    "unknown-event",
    "missing-field",
    "bad-field",
    "bad-base64",
    "unsupported-format",
    "out-of-order",
    "duplicate-start",
    "before-start",
    "after-stop",
    "stream-mismatch",
    "bad-sequence",
    "closed",
]


class ProtocolError(InvalidInputError):
    """A Media Streams frame or the order of frames is not acceptable.

    ``code`` is one of :data:`ProtocolCode`, stable for logs and metrics;
    the message names the field (when there is one) and never a value.
    """

    def __init__(self, code: ProtocolCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.code = code

    @property
    def close_code(self) -> int:
        """The RFC 6455 close code for the socket: 1009 too big, 1007 bad data, else 1008."""
        if self.code == "frame-too-large":
            return 1009
        if self.code == "bad-json":
            return 1007
        return 1008


# --- inbound events --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    sequence: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    #: Set by the caller's TwiML; may hold caller content: seal it, never log it.
    custom_parameters: dict[str, str] = field(repr=False)
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Media:
    sequence: int
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes = field(repr=False)

    @property
    def standard_size(self) -> bool:
        """True for a 20 ms frame of 8 kHz μ-law (160 bytes)."""
        return len(self.payload) == FRAME_BYTES

    @property
    def duration_ms(self) -> int:
        return len(self.payload) * 1000 // MEDIA_FORMAT[1]


@dataclass(frozen=True, slots=True)
class Dtmf:
    sequence: int
    stream_sid: str
    track: str
    #: One of 0-9, *, #, A-D. Card capture needs it; summaries keep only a count.
    digit: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Mark:
    sequence: int
    stream_sid: str
    name: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Stop:
    sequence: int
    stream_sid: str
    account_sid: str
    call_sid: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Sequence numbers ``first_sequence`` .. ``+ missing - 1`` never arrived in time."""

    first_sequence: int
    missing: int


@dataclass(frozen=True, slots=True)
class Silence:
    """Media chunks of ``track`` that never arrived: insert ``duration_ms`` of silence here."""

    track: str
    first_chunk: int
    chunks: int

    @property
    def duration_ms(self) -> int:
        return self.chunks * FRAME_MS


InboundEvent: TypeAlias = Connected | Start | Media | Dtmf | Mark | Stop
StreamEvent: TypeAlias = Connected | Start | Media | Dtmf | Mark | Stop | Gap | Silence
_Sequenced: TypeAlias = Media | Dtmf | Mark | Stop


# --- outbound (agent → Twilio) messages ------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    stream_sid: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OutboundMark:
    stream_sid: str
    name: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class OutboundClear:
    stream_sid: str


OutboundMessage: TypeAlias = OutboundMedia | OutboundMark | OutboundClear


# --- field readers ---------------------------------------------------------


def _fail(code: ProtocolCode, message: str, path: str | None = None) -> ProtocolError:
    return ProtocolError(code, message, field=path)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _no_constant(_name: str) -> None:
    raise ValueError("NaN and Infinity are not JSON")


def _frame_text(frame: str | bytes, max_bytes: int) -> str:
    """The frame as text, within the size limit (in bytes of UTF-8)."""
    if isinstance(frame, bytes):
        if len(frame) > max_bytes:
            raise _fail("frame-too-large", "frame exceeds the size limit")
        try:
            return frame.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail("bad-json", "frame is not valid UTF-8") from None
    if isinstance(frame, str):
        too_big = len(frame) > max_bytes or (
            len(frame) * 4 > max_bytes and len(frame.encode("utf-8", "surrogatepass")) > max_bytes
        )
        if too_big:
            raise _fail("frame-too-large", "frame exceeds the size limit")
        return frame
    raise _fail("bad-json", "frame is neither text nor bytes")


#: ``json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)``, made once.
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise _fail("bad-json", "frame is not valid JSON") from None
    if not isinstance(value, dict):
        raise _fail("bad-json", "frame is not a JSON object")
    return value


def _load(frame: str | bytes, max_bytes: int) -> dict[str, Any]:
    return _json_object(_frame_text(frame, max_bytes))


def _get(obj: Mapping[str, Any], key: str, path: str) -> object:
    if key not in obj:
        raise _fail("missing-field", f"field '{path}' is missing", path)
    value: object = obj[key]
    return value


def _object(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = _get(obj, key, path)
    if not isinstance(value, dict):
        raise _fail("bad-field", f"field '{path}' must be an object", path)
    return value


def _is_text(value: object, max_len: int) -> TypeGuard[str]:
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800 escape
        return False
    return True


def _text(obj: Mapping[str, Any], key: str, path: str, max_len: int = _MAX_TEXT) -> str:
    value = _get(obj, key, path)
    if not _is_text(value, max_len):
        raise _fail("bad-field", f"field '{path}' must be a non-empty string", path)
    return value


def _ident(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = _get(obj, key, path)
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise _fail("bad-field", f"field '{path}' is not a valid id", path)
    return value


def _uint(obj: Mapping[str, Any], key: str, path: str) -> int:
    value = _get(obj, key, path)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_UINT:
        return value
    if isinstance(value, str) and _UINT.fullmatch(value) is not None:
        return int(value)
    raise _fail("bad-field", f"field '{path}' must be a non-negative integer", path)


def _track(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = _get(obj, key, path)
    track = _TRACKS.get(value) if isinstance(value, str) else None
    if track is None:
        raise _fail("bad-field", f"field '{path}' is not a known track", path)
    return track


def _b64(obj: Mapping[str, Any], key: str, path: str, max_bytes: int) -> bytes:
    return _b64_value(_get(obj, key, path), path, max_bytes)


def _b64_value(value: object, path: str, max_bytes: int) -> bytes:
    if not isinstance(value, str) or not value:
        raise _fail("bad-field", f"field '{path}' must be a non-empty string", path)
    if len(value) > 4 * ((max_bytes + 2) // 3):
        raise _fail("frame-too-large", f"field '{path}' exceeds the payload limit", path)
    try:
        # What base64.b64decode(value, validate=True) does, without its wrapping.
        raw = binascii.a2b_base64(value, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise _fail("bad-base64", f"field '{path}' is not valid base64", path) from None
    # Canonical form only: no stray padding bits, so one payload has one encoding.
    if binascii.b2a_base64(raw, newline=False) != value.encode("ascii"):
        raise _fail("bad-base64", f"field '{path}' is not canonical base64", path)
    if len(raw) > max_bytes:
        raise _fail("frame-too-large", f"field '{path}' exceeds the payload limit", path)
    return raw


def _sequence(msg: Mapping[str, Any]) -> int:
    return _uint(msg, "sequenceNumber", "sequenceNumber")


# --- inbound parsing -------------------------------------------------------


def _parse_start(msg: Mapping[str, Any]) -> Start:
    sequence = _sequence(msg)
    start = _object(msg, "start", "start")
    stream_sid = _ident(start, "streamSid", "start.streamSid")
    if "streamSid" in msg and _ident(msg, "streamSid", "streamSid") != stream_sid:
        raise _fail("bad-field", "field 'streamSid' differs from 'start.streamSid'", "streamSid")
    raw_tracks = _get(start, "tracks", "start.tracks")
    if not isinstance(raw_tracks, list) or not 0 < len(raw_tracks) <= 2:
        raise _fail("bad-field", "field 'start.tracks' must list one or two tracks", "start.tracks")
    tracks = tuple(dict.fromkeys(_track({"t": t}, "t", "start.tracks") for t in raw_tracks))
    params: dict[str, str] = {}
    if "customParameters" in start:
        raw = _object(start, "customParameters", "start.customParameters")
        if len(raw) > _MAX_PARAMS:
            raise _fail("bad-field", "too many custom parameters", "start.customParameters")
        for name, value in raw.items():
            if not _is_text(name, _MAX_TEXT) or not (
                value == "" or _is_text(value, _MAX_PARAM_VALUE)
            ):
                raise _fail(
                    "bad-field",
                    "field 'start.customParameters' must map names to strings",
                    "start.customParameters",
                )
            params[name] = value
    media_format = _object(start, "mediaFormat", "start.mediaFormat")
    return Start(
        sequence=sequence,
        stream_sid=stream_sid,
        account_sid=_ident(start, "accountSid", "start.accountSid"),
        call_sid=_ident(start, "callSid", "start.callSid"),
        tracks=tracks,
        custom_parameters=params,
        encoding=_text(media_format, "encoding", "start.mediaFormat.encoding", 64),
        sample_rate=_uint(media_format, "sampleRate", "start.mediaFormat.sampleRate"),
        channels=_uint(media_format, "channels", "start.mediaFormat.channels"),
    )


def _parse_media(msg: Mapping[str, Any], max_payload_bytes: int) -> Media:
    media = _object(msg, "media", "media")
    return Media(
        sequence=_sequence(msg),
        stream_sid=_ident(msg, "streamSid", "streamSid"),
        track=_track(media, "track", "media.track"),
        chunk=_uint(media, "chunk", "media.chunk"),
        timestamp_ms=_uint(media, "timestamp", "media.timestamp"),
        payload=_b64(media, "payload", "media.payload", max_payload_bytes),
    )


#: A ``media`` frame exactly as Twilio writes it (compact, keys in its order), every value
#: in its valid form: read without the JSON parser. It matches only text that is one JSON
#: object, without duplicate keys or escapes, whose fields :func:`_parse_media` accepts, and
#: gives the same :class:`Media` (the payload is checked by the same function); any other
#: text, valid or not, goes the general way.
_MEDIA_FRAME: Final = re.compile(
    r'\{"event":"media","sequenceNumber":"([0-9]{1,12})",'
    r'"media":\{"track":"(inbound|outbound|inbound_track|outbound_track)",'
    r'"chunk":"([0-9]{1,12})","timestamp":"([0-9]{1,12})","payload":"([A-Za-z0-9+/=]*)"\},'
    r'"streamSid":"([A-Za-z0-9][A-Za-z0-9._:-]{0,127})"\}'
)


def _media_frame(match: re.Match[str], max_payload_bytes: int) -> Media:
    sequence, track, chunk, timestamp, payload, stream_sid = match.groups()
    return Media(
        sequence=int(sequence),
        stream_sid=stream_sid,
        track=_TRACKS[track],
        chunk=int(chunk),
        timestamp_ms=int(timestamp),
        payload=_b64_value(payload, "media.payload", max_payload_bytes),
    )


def _parse_dtmf(msg: Mapping[str, Any]) -> Dtmf:
    dtmf = _object(msg, "dtmf", "dtmf")
    digit = _get(dtmf, "digit", "dtmf.digit")
    if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in _DIGITS:
        raise _fail("bad-field", "field 'dtmf.digit' is not a DTMF digit", "dtmf.digit")
    return Dtmf(
        sequence=_sequence(msg),
        stream_sid=_ident(msg, "streamSid", "streamSid"),
        track=_track(dtmf, "track", "dtmf.track"),
        digit=digit.upper(),
    )


def _parse_mark(msg: Mapping[str, Any]) -> Mark:
    mark = _object(msg, "mark", "mark")
    return Mark(
        sequence=_sequence(msg),
        stream_sid=_ident(msg, "streamSid", "streamSid"),
        name=_text(mark, "name", "mark.name"),
    )


def _parse_stop(msg: Mapping[str, Any]) -> Stop:
    stop = _object(msg, "stop", "stop")
    return Stop(
        sequence=_sequence(msg),
        stream_sid=_ident(msg, "streamSid", "streamSid"),
        account_sid=_ident(stop, "accountSid", "stop.accountSid"),
        call_sid=_ident(stop, "callSid", "stop.callSid"),
    )


def _event_name(msg: Mapping[str, Any]) -> str:
    event = _get(msg, "event", "event")
    if not isinstance(event, str):
        raise _fail("bad-field", "field 'event' must be a string", "event")
    return event


def parse_inbound(
    frame: str | bytes,
    *,
    max_bytes: int,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> InboundEvent:
    """One frame Twilio sent, as a typed event; :class:`ProtocolError` for anything else.

    The frame MUST be at most ``max_bytes`` of UTF-8 JSON: one object, no
    duplicate keys, no NaN. Unknown extra fields are ignored; known fields
    are checked for type, bounds and form (ids, digits, canonical base64).
    A media payload may be any size up to ``max_payload_bytes``;
    :attr:`Media.standard_size` flags one that is not a 20 ms frame.
    """
    text = _frame_text(frame, max_bytes)
    fast = _MEDIA_FRAME.fullmatch(text)
    if fast is not None:  # nearly every frame of a call: the same answer, without the parser
        return _media_frame(fast, max_payload_bytes)
    return _parse_json_frame(text, max_payload_bytes)


def _parse_json_frame(text: str, max_payload_bytes: int) -> InboundEvent:
    """:func:`parse_inbound` of any frame, through the JSON parser."""
    msg = _json_object(text)
    event = _event_name(msg)
    if event == "connected":
        protocol = msg.get("protocol", "")
        version = msg.get("version", "")
        for name, value in (("protocol", protocol), ("version", version)):
            if not (value == "" or _is_text(value, 64)):
                raise _fail("bad-field", f"field '{name}' must be a string", name)
        return Connected(protocol=protocol, version=version)
    if event == "media":
        return _parse_media(msg, max_payload_bytes)
    parser = _PARSERS.get(event)
    if parser is None:
        raise _fail("unknown-event", "frame has an unknown event type", "event")
    return parser(msg)


_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], InboundEvent]]] = {
    "start": _parse_start,
    "dtmf": _parse_dtmf,
    "mark": _parse_mark,
    "stop": _parse_stop,
}


# --- outbound (agent side) -------------------------------------------------


def parse_outbound(
    frame: str | bytes,
    *,
    max_bytes: int,
    max_payload_bytes: int = DEFAULT_MAX_AGENT_PAYLOAD_BYTES,
) -> OutboundMessage:
    """One frame the agent sent for Twilio: ``media``, ``mark`` or ``clear``, with ``streamSid``."""
    msg = _load(frame, max_bytes)
    event = _event_name(msg)
    if event not in {"media", "mark", "clear"}:
        raise _fail("unknown-event", "frame has an unknown event type", "event")
    stream_sid = _ident(msg, "streamSid", "streamSid")
    if event == "media":
        media = _object(msg, "media", "media")
        return OutboundMedia(stream_sid, _b64(media, "payload", "media.payload", max_payload_bytes))
    if event == "mark":
        return OutboundMark(stream_sid, _text(_object(msg, "mark", "mark"), "name", "mark.name"))
    return OutboundClear(stream_sid)


def _checked_sid(stream_sid: str) -> str:
    if _ID.fullmatch(stream_sid) is None:
        raise _fail("bad-field", "stream sid is not a valid id", "streamSid")
    return stream_sid


def _dumps(message: dict[str, object]) -> str:
    return json.dumps(message, separators=(",", ":"))


def media_message(stream_sid: str, payload: bytes) -> str:
    """The ``media`` message that plays ``payload`` (8 kHz μ-law, no file header) on the call."""
    if not payload:
        raise _fail("bad-field", "media payload is empty", "media.payload")
    encoded = base64.b64encode(payload).decode("ascii")
    return _dumps(
        {"event": "media", "streamSid": _checked_sid(stream_sid), "media": {"payload": encoded}}
    )


def mark_message(stream_sid: str, name: str) -> str:
    """The ``mark`` message; Twilio echoes it back once the audio sent before it has played."""
    if not _is_text(name, _MAX_TEXT):
        raise _fail("bad-field", "mark name must be a non-empty string", "mark.name")
    return _dumps({"event": "mark", "streamSid": _checked_sid(stream_sid), "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """The ``clear`` message: Twilio drops the audio it has buffered (barge-in)."""
    return _dumps({"event": "clear", "streamSid": _checked_sid(stream_sid)})


# --- the per-connection state machine --------------------------------------
