"""The served WebSocket protocol reads data frames itself: differential against uvicorn's.

The same bytes, split at every point (and at random ones), go to
:class:`~callvault.api.ws_protocol.IngestWebSocketProtocol` and to uvicorn's
``websockets-sansio`` protocol; the application MUST receive the same ASGI
messages and the client the same bytes back (pongs, close frames), and the
connection MUST end the same way.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode

from callvault.api.ws_protocol import TEXT_SINK, IngestWebSocketProtocol

MAX_SIZE = 64 * 1024

_REQUEST = (
    b"GET /v1/ingest/twilio/dep HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 443)}.get(name, default)


def _run(protocol_class: type[WebSocketsSansIOProtocol], chunks: list[bytes]) -> dict[str, Any]:
    """Feed the upgrade request, let the app accept, then feed ``chunks``; what happened."""
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            received.append(dict(message))
            if message["type"] == "websocket.disconnect":
                return

    async def main() -> dict[str, Any]:
        config = Config(app=app, ws_max_size=MAX_SIZE, ws_per_message_deflate=False, lifespan="off")
        config.load()
        protocol = protocol_class(config, ServerState(), {}, _loop=asyncio.get_running_loop())
        transport = _Transport()
        protocol.connection_made(transport)
        protocol.data_received(_REQUEST)
        for _ in range(5):
            await asyncio.sleep(0)
        assert protocol.handshake_complete
        handshake = len(transport.written)
        for chunk in chunks:
            protocol.data_received(chunk)
            for _ in range(3):
                await asyncio.sleep(0)
        protocol.connection_lost(None)
        for _ in range(5):
            await asyncio.sleep(0)
        return {
            "received": received,
            "written": b"".join(transport.written[handshake:]),
            "closed": transport.closed,
        }

    return asyncio.run(main())


def _frame(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


def _first_byte(frame: bytes, first: int) -> bytes:
    """``frame`` with another first header byte (FIN, RSV bits, opcode): frames that
    ``websockets`` refuses to build."""
    return bytes([first]) + frame[1:]


def _unmasked(opcode: Opcode, data: bytes) -> bytes:
    return Frame(opcode, data).serialize(mask=False, extensions=[])


def _text(n: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)  # noqa: S311 - reproducible test text, not a secret
    return bytes(rng.choice(b"abcdefghij0123456789+/=") for _ in range(n))


_STREAMS: dict[str, list[bytes]] = {
    "text and binary, every length form": [
        _frame(Opcode.TEXT, b'{"event":"media"}'),
        _frame(Opcode.TEXT, _text(380, 1)),
        _frame(Opcode.BINARY, os.urandom(125)),
        _frame(Opcode.TEXT, _text(126, 2)),
        _frame(Opcode.TEXT, b""),
        _frame(Opcode.BINARY, os.urandom(300)),
    ],
    "a long frame (64-bit length)": [
        _frame(Opcode.TEXT, _text(MAX_SIZE, 3)),
        _frame(Opcode.TEXT, b"after"),
    ],
    "ping and pong between frames": [
        _frame(Opcode.TEXT, b"one"),
        _frame(Opcode.PING, b"are you there"),
        _frame(Opcode.TEXT, b"two"),
        _frame(Opcode.PONG, b"unsolicited"),
        _frame(Opcode.TEXT, b"three"),
    ],
    "close, then frames": [
        _frame(Opcode.TEXT, b"one"),
        _frame(Opcode.CLOSE, struct.pack("!H", 1000) + b"bye"),
        _frame(Opcode.TEXT, b"after close"),
    ],
    "a fragmented message": [
        _frame(Opcode.TEXT, b"one"),
        _frame(Opcode.TEXT, b"fra", fin=False),
        _frame(Opcode.CONT, b"gmen", fin=False),
        _frame(Opcode.CONT, b"ted"),
        _frame(Opcode.TEXT, b"two"),
    ],
    "an unmasked frame": [
        _frame(Opcode.TEXT, b"one"),
        _unmasked(Opcode.TEXT, b"two"),
        _frame(Opcode.TEXT, b"three"),
    ],
    "a frame over the size limit": [
        _frame(Opcode.TEXT, b"one"),
        _frame(Opcode.TEXT, _text(MAX_SIZE + 1, 4)),
    ],
    "invalid UTF-8 in a text frame": [
        _frame(Opcode.TEXT, b"one"),
        _frame(Opcode.TEXT, b"\xff\xfe"),
        _frame(Opcode.TEXT, b"three"),
    ],
    "an RSV bit without an extension": [
        _frame(Opcode.TEXT, b"one"),
        _first_byte(_frame(Opcode.TEXT, b"two"), 0xC1),
    ],
    "a control frame too long": [
        _frame(Opcode.TEXT, b"one"),
        _first_byte(_frame(Opcode.TEXT, _text(126, 5)), 0x89),
    ],
    "a fragmented control frame": [
        _frame(Opcode.TEXT, b"one"),
        _first_byte(_frame(Opcode.TEXT, b"x"), 0x09),
    ],
    "a reserved opcode": [_frame(Opcode.TEXT, b"one"), b"\x83\x80" + os.urandom(4)],
    "a continuation with nothing to continue": [
        _frame(Opcode.TEXT, b"one"),
        _frame(Opcode.CONT, b"two"),
    ],
}


def _same(frames: list[bytes], chunks: list[bytes]) -> None:
    """``chunks`` (``frames`` cut anywhere) read by ours as uvicorn's reads the frames
    one read each.

    One read each, because uvicorn's protocol drops the messages of a read that
    also holds a frame it refuses (it closes before handing them on); ours hands
    on every message before the refused frame, whatever the reads.
    """
    assert b"".join(chunks) == b"".join(frames)
    assert _run(IngestWebSocketProtocol, chunks) == _run(WebSocketsSansIOProtocol, frames)


#: The streams without a frame the parser refuses.
_CLEAN = (
    "text and binary, every length form",
    "a long frame (64-bit length)",
    "ping and pong between frames",
    "close, then frames",
    "a fragmented message",
)


@pytest.mark.parametrize("name", _CLEAN)
def test_the_reference_is_uvicorns_reading_whatever_the_reads(name: str) -> None:
    """Where nothing is refused, uvicorn's protocol reads a stream whole as frame by frame."""
    frames = _STREAMS[name]
    whole = _run(WebSocketsSansIOProtocol, [b"".join(frames)])
    assert whole == _run(WebSocketsSansIOProtocol, frames)
    assert len(whole["received"]) > 1


@pytest.mark.parametrize("name", sorted(_STREAMS))
def test_the_stream_whole_and_split_in_two_everywhere(name: str) -> None:
    frames = _STREAMS[name]
    data = b"".join(frames)
    _same(frames, [data])
    step = max(1, len(data) // 200)  # every point of the short streams, 200 of the long one
    for cut in range(1, len(data), step):
        _same(frames, [data[:cut], data[cut:]])


@pytest.mark.parametrize("name", sorted(_STREAMS))
def test_the_stream_in_random_pieces(name: str) -> None:
    frames = _STREAMS[name]
    data = b"".join(frames)
    rng = random.Random(name)  # noqa: S311 - reproducible cut points, not a secret
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
        _same(frames, [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)])


def test_one_byte_at_a_time() -> None:
    frames = _STREAMS["ping and pong between frames"] + _STREAMS["close, then frames"]
    data = b"".join(frames)
    _same(frames, [data[i : i + 1] for i in range(len(data))])


def test_ordinary_frames_are_read_without_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the protocol: whole data frames never reach the websockets parser."""
    fed: list[bytes] = []
    original = WebSocketsSansIOProtocol.data_received

    def spy(self: WebSocketsSansIOProtocol, data: bytes) -> None:
        fed.append(data)
        original(self, data)

    monkeypatch.setattr(WebSocketsSansIOProtocol, "data_received", spy)
    frames = [_frame(Opcode.TEXT, _text(380, i)) for i in range(20)]
    result = _run(IngestWebSocketProtocol, [b"".join(frames[:7]), *frames[7:]])
    assert fed == [_REQUEST]
    assert [m.get("text") for m in result["received"][:-1]] == [
        _text(380, i).decode() for i in range(20)
    ]


def test_bytes_sent_before_the_upgrade_is_accepted_stay_with_the_parser() -> None:
    """A client that does not wait for the 101: the parser reads that connection."""
    received: list[dict[str, Any]] = []
    accept = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await accept.wait()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] != "websocket.disconnect":
            received.append(dict(message))

    async def main() -> None:
        config = Config(app=app, ws_max_size=MAX_SIZE, ws_per_message_deflate=False, lifespan="off")
        config.load()
        protocol = IngestWebSocketProtocol(
            config, ServerState(), {}, _loop=asyncio.get_running_loop()
        )
        protocol.connection_made(_Transport())
        protocol.data_received(_REQUEST)
        early = _frame(Opcode.TEXT, b"early")
        protocol.data_received(early[:3])  # part of a frame before the accept
        await asyncio.sleep(0)
        accept.set()
        for _ in range(5):
            await asyncio.sleep(0)
        protocol.data_received(early[3:] + _frame(Opcode.TEXT, b"later"))
        for _ in range(5):
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        for _ in range(5):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert [m.get("text") for m in received] == ["early", "later"]


def test_a_text_sink_never_lets_a_frame_overtake_one_the_application_holds() -> None:
    """The text sink (live ingest feeds frames as they are read) takes a text frame
    only while nothing waits in the queue and the application holds no message."""
    order: list[tuple[str, str]] = []
    step = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        install = scope["extensions"][TEXT_SINK]["set"]

        def sink(text: str) -> None:
            order.append(("sink", text))

        while True:
            install(sink)
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            order.append(("queue", message.get("text") or "<bytes>"))
            await step.wait()  # holds the message a while: later frames must queue
            step.clear()

    async def main() -> None:
        config = Config(app=app, ws_max_size=MAX_SIZE, ws_per_message_deflate=False, lifespan="off")
        config.load()
        protocol = IngestWebSocketProtocol(
            config, ServerState(), {}, _loop=asyncio.get_running_loop()
        )
        protocol.connection_made(_Transport())
        protocol.data_received(_REQUEST)

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        await settle()
        protocol.data_received(_frame(Opcode.TEXT, b"t1"))  # sunk: nothing waits
        protocol.data_received(
            _frame(Opcode.BINARY, b"b") + _frame(Opcode.TEXT, b"t2") + _frame(Opcode.TEXT, b"t3")
        )  # the binary frame queues, and the text behind it
        await settle()  # the application took the binary frame and holds it
        protocol.data_received(_frame(Opcode.TEXT, b"t4"))  # queued behind t2, t3
        for _ in range(4):
            step.set()
            await settle()
        protocol.data_received(_frame(Opcode.TEXT, b"t5"))  # all taken: sunk again
        protocol.connection_lost(None)
        step.set()
        await settle()

    asyncio.run(main())
    assert order == [
        ("sink", "t1"),
        ("queue", "<bytes>"),
        ("queue", "t2"),
        ("queue", "t3"),
        ("queue", "t4"),
        ("sink", "t5"),
    ]
