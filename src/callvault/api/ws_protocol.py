"""The WebSocket protocol ``callvault serve`` runs: uvicorn's sans-I/O one, reading data
frames directly.

Live ingest receives fifty small text frames a second per call (Twilio Media
Streams: one 20 ms μ-law frame, about 380 bytes on the wire), and with
hundreds of calls on one worker process the per-frame cost of the transport
decides how many calls it keeps up with. uvicorn's ``websockets-sansio``
protocol hands every received byte to the ``websockets`` parser, a generator
that reads each frame field by field: about 10 µs per media frame on this
machine, where reading it here takes 1.5 µs.

:class:`IngestWebSocketProtocol` is that protocol, reading the common frame
itself: a whole, unfragmented, masked text or binary frame (FIN set, no RSV
bit, no extension negotiated: ``callvault serve`` turns per-message deflate
off) within the size limit, unmasked with ``websockets``' own C routine and
handed to the application as the parent hands a message it parsed
(:meth:`IngestWebSocketProtocol.send_receive_event_to_app`: the same ASGI
message, UTF-8 checked the same way, dropped after the application closed).
Everything else
stays the parser's, so it is answered exactly as before:

- a control frame (ping, pong, close; FIN set, at most 125 bytes) is handed
  to the parser whole, once it has all arrived; the parser replies (pong,
  closing handshake) and, after a close, reads everything that follows;
- any other frame (fragmented, RSV bits, reserved opcode, unmasked, over
  the size limit) ends the direct reading for the connection: that frame and
  everything after it go to the parser, which refuses or reads them as it
  always did;
- bytes that arrive before the application accepted the upgrade (a client
  that does not wait for the 101), or a handshake that left bytes in the
  parser's buffer, keep the whole connection on the parser.

The parser only ever receives whole frames from here, so it is always at a
frame boundary when it does: its state is the one it would have had reading
every byte itself. Differential tests (``tests/unit/api/test_ingest_ws_protocol.py``)
feed the same bytes, split at every point, to this protocol and to uvicorn's,
and compare what the application receives and what goes back on the wire.
One difference is deliberate: uvicorn's protocol drops the messages of a read
that also holds a frame the parser refuses; this one hands them on first.

Two more per-frame costs go:

- the queue to the application is a lean one (:class:`_Messages`), and
  reading pauses when sixteen messages (or one long one) wait, not after every
  message (uvicorn pauses and resumes, a scheduled read, for each);
- an application may take text messages as they are read, through the
  :data:`TEXT_SINK` scope extension, instead of a queued message, a future and
  a task step each: live ingest does, once a call has started
  (:func:`callvault.api.routers.ingest._sink`). A message is handed to the
  sink only when none waits in the queue and the application holds none
  (taking one from the queue removes the sink), so nothing overtakes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Final

from uvicorn._types import ASGIReceiveEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets ships the C routine on every wheel we use
    from websockets.utils import apply_mask

#: The ASGI scope extension through which an application may take text messages as they
#: are read: ``scope["extensions"][TEXT_SINK]["set"](sink)`` installs ``sink`` (None
#: removes it; see :meth:`IngestWebSocketProtocol._set_sink`).
TEXT_SINK: Final = "callvault.text_sink"

#: First header byte of a frame read here: FIN, no RSV bit, text (0x1) or binary (0x2).
_TEXT: Final = 0x81
_BINARY: Final = 0x82
#: First header byte of a control frame handed to the parser whole: FIN, close/ping/pong.
_CONTROL: Final = frozenset((0x88, 0x89, 0x8A))
_MASKED: Final = 0x80
_MAX_CONTROL: Final = 125
#: Reading pauses once this many messages wait for the application (uvicorn's: one)...
_QUEUE_HIGH: Final = 16
#: ... or once a message longer than this, in bytes, waits (so the queue stays small).
_SMALL: Final = 4096


class _Messages:
    """What the protocol hands the application: :class:`asyncio.Queue`'s ``put_nowait``,
    ``get``, ``empty`` and ``qsize``, without its task accounting and bound.

    The parent puts a message and pauses reading after every one, and resumes
    when the application took the last; a queue of one message. Here reading
    pauses only at :data:`_QUEUE_HIGH` messages (or one over :data:`_SMALL`
    bytes), so a burst of small frames is read on without a pause and a resume
    (a scheduled read) each; still bounded, as the parent's.
    """

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: deque[ASGIReceiveEvent] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self._items.append(item)
        if self._waiters:
            self._wake_next()

    def _wake_next(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def get(self) -> ASGIReceiveEvent:
        items = self._items
        while not items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # cancellation too: drop the waiter, hand on a wake-up, re-raise
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if items and not waiter.cancelled():
                    self._wake_next()  # woken but leaving: the next getter takes it
                raise
        return items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


def _at_frame_boundary(conn: object) -> bool:
    """True when the parser has read every byte it was given up to a frame boundary.

    Called once the upgrade request was parsed (with whatever bytes came along in the
    same read). The parser is a generator; between frames it waits in
    ``StreamReader.at_eof`` with nothing buffered, within a frame in ``read_exact``
    (possibly with nothing buffered either: a header read, its mask not yet come).
    Anything else, or a ``websockets`` laid out otherwise, answers False: the
    connection then stays on the parser.
    """
    reader = getattr(conn, "reader", None)
    buffer = getattr(reader, "buffer", None)
    if not isinstance(buffer, bytearray) or buffer:
        return False
    gen = getattr(conn, "parser", None)
    while (inner := getattr(gen, "gi_yieldfrom", None)) is not None:
        gen = inner
    code = getattr(gen, "gi_code", None)
    return getattr(code, "co_name", None) == "at_eof"


class IngestWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, reading whole data frames directly."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Duck-typed for the parent, which only puts, gets and asks if empty.
        self.queue = _Messages()  # type: ignore[assignment]
        self._sink: Callable[[str], None] | None = None
        #: Read frames here; False for good once a frame only the parser may read came.
        self._direct = False
        #: Bytes of a frame not yet whole (only while reading directly).
        self._partial = bytearray()
        limits = [
            size
            for size in (
                getattr(self.conn, "max_message_size", None),
                getattr(self.conn, "max_fragment_size", None),
            )
            if size is not None
        ]
        self._max_size: int | None = min(limits) if limits else None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if getattr(self, "scope", None) is not None:  # an upgrade handed to the application
            self.scope["extensions"][TEXT_SINK] = {"set": self._set_sink}
        self._direct = self.conn.state is State.CONNECTING and _at_frame_boundary(self.conn)

    def data_received(self, data: bytes) -> None:  # noqa: PLR0912 - one pass per read, on purpose
        if not self._direct:
            super().data_received(data)
            return
        if not self.handshake_complete:
            # Frames before the application accepted the upgrade: the parser's, all of them.
            self._to_parser(data)
            return
        partial = self._partial
        if partial:
            partial += data
            buf: bytes | bytearray = partial
        else:
            buf = data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            if self.conn.state is not State.OPEN:  # closing: the parser reads the rest
                self._to_parser(buf[pos:])
                return
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, pos + 2
            if length == 126:
                if end - head < 2:
                    break
                length, head = int.from_bytes(buf[head : head + 2], "big"), head + 2
            elif length == 127:
                if end - head < 8:
                    break
                length, head = int.from_bytes(buf[head : head + 8], "big"), head + 8
            data_frame = first == _TEXT or first == _BINARY  # noqa: PLR1714 - ints, fastest so
            if not second & _MASKED or not (
                (data_frame and (self._max_size is None or length <= self._max_size))
                or (first in _CONTROL and length <= _MAX_CONTROL)
            ):
                self._to_parser(buf[pos:])  # refused or read by the parser, as ever
                return
            stop = head + 4 + length
            if stop > end:
                break
            if data_frame:
                self.curr_msg_data_type = "text" if first == _TEXT else "bytes"
                self.frames = [apply_mask(buf[head + 4 : stop], buf[head : head + 4])]
                self.send_receive_event_to_app()
            else:
                super().data_received(bytes(buf[pos:stop]))  # a whole control frame
            pos = stop
        if partial:
            del partial[:pos]
        elif pos < end:
            partial += buf[pos:]

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, with the lean queue, its flow control (see :class:`_Messages`), and
        a UTF-8 error logged without the decoder's message (it quotes a byte)."""
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        if self.close_sent:
            # The app is past 'websocket.close': discard (reads stay on for the close reply).
            return
        message: ASGIReceiveEvent
        queue = self.queue
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.logger.warning("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            sink = self._sink
            if sink is not None and not queue.qsize():  # in order: nothing waits before it
                sink(text)
                return
            message = {"type": "websocket.receive", "text": text}
        else:
            message = {"type": "websocket.receive", "bytes": data}
        queue.put_nowait(message)
        if not self.read_paused and (queue.qsize() >= _QUEUE_HIGH or len(data) > _SMALL):
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> ASGIReceiveEvent:
        message = await super().receive()
        # The application holds a message now: nothing read later may overtake it, so
        # the sink is removed in the same step (the application installs it again).
        self._sink = None
        return message

    def _set_sink(self, sink: Callable[[str], None] | None) -> None:
        """Hand text messages to ``sink`` as they are read, while no message waits in the
        queue, until the application takes one (:meth:`receive`) or removes it (None).
        ``sink`` MUST NOT raise; it runs in the read."""
        self._sink = sink

    def _to_parser(self, data: bytes | bytearray) -> None:
        """From here on the parser reads everything (``data`` starts at a frame boundary)."""
        self._direct = False
        self._partial = bytearray()
        super().data_received(bytes(data))
