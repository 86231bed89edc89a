"""WebSocket echo endpoint of `bridge serve`: the `websockets` client, and raw frames where the
exact bytes matter."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time

import pytest
from websockets.asyncio.client import connect

from conftest import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Closed,
    Conn,
    close_payload,
    encode_frame,
    get,
    parse_close,
    parse_frame,
    send_ignoring_reset,
    ws_upgrade_request,
)


def url(server, path: str = "/echo") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def run(coro, timeout: float = 30.0):
    """Run an asyncio test body with an overall bound."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def client(server, **kwargs):
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("ping_interval", None)
    return connect(url(server), **kwargs)


# --- with the websockets library ---------------------------------------------------------------


def test_text_and_binary_echo(bridge):
    server = bridge()

    async def body():
        async with client(server) as ws:
            await ws.send("héllo, wörld ✓")
            assert await ws.recv() == "héllo, wörld ✓"
            await ws.send(b"\x00\x01\xfe\xff")
            assert await ws.recv() == b"\x00\x01\xfe\xff"
            await ws.send("")
            assert await ws.recv() == ""
            await ws.send(b"")
            assert await ws.recv() == b""
    run(body())


def test_100kb_message(bridge):
    server = bridge()
    text = ("0123456789abcdef" * 6400)  # 102,400 bytes
    data = os.urandom(100_000)

    async def body():
        async with client(server) as ws:
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(data)
            assert await ws.recv() == data
    run(body())


def test_fragmented_message_echoed_as_one(bridge):
    server = bridge()

    async def body():
        async with client(server) as ws:
            await ws.send(["frag", "ment", "ed ✓"])
            assert await ws.recv() == "fragmented ✓"
            await ws.send([b"\x01\x02", b"", b"\x03"])
            assert await ws.recv() == b"\x01\x02\x03"
    run(body())


def test_ping_pong_with_payload(bridge):
    server = bridge()

    async def body():
        async with client(server) as ws:
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, 5)
            await ws.send("after ping")
            assert await ws.recv() == "after ping"
    run(body())


async def close_with(server, code: int, reason: str):
    ws = await client(server)
    await ws.send("bye soon")
    assert await ws.recv() == "bye soon"
    await ws.close(code, reason)
    received = ws.protocol.close_rcvd
    assert received is not None, "server did not answer the close frame"
    return received


def test_close_code_echoed(bridge):
    server = bridge()
    for code in (1000, 4321):
        assert run(close_with(server, code, "done here")).code == code


def test_close_reason_echoed(bridge):
    # The contract fixes the echoed code; the brief also asks for the reason back.
    server = bridge()
    assert run(close_with(server, 1000, "done here")).reason == "done here"


def test_permessage_deflate_offer_is_declined(bridge):
    server = bridge()

    async def body():
        async with client(server, compression="deflate") as ws:
            assert "permessage-deflate" in (ws.request.headers.get("Sec-WebSocket-Extensions") or "")
            assert ws.response.status_code == 101
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
            for message in ("a" * 1000, b"b" * 1000, "short"):
                await ws.send(message)
                assert await ws.recv() == message
    run(body())


def test_unknown_path_upgrade_is_404(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        response = conn.ws_handshake("/not-echo")
        assert response.status == 404, response.head


# --- raw handshake -----------------------------------------------------------------------------


def test_handshake_accept_value_rfc_example(bridge):
    # RFC 6455 §1.3: key "dGhlIHNhbXBsZSBub25jZQ==" → accept "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    server = bridge()
    with Conn(server.port) as conn:
        response = conn.ws_handshake("/echo", key="dGhlIHNhbXBsZSBub25jZQ==")
        assert response.head.startswith(b"HTTP/1.1 101 "), response.head
        assert response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert response.has_token("Upgrade", "websocket")
        assert response.has_token("Connection", "upgrade")
        assert response.header("Sec-WebSocket-Extensions") is None
        conn.send_frame(OP_TEXT, b"raw hello")
        assert conn.read_message() == (OP_TEXT, b"raw hello")


def test_bad_version_is_426(bridge):
    server = bridge()
    key = base64.b64encode(os.urandom(16)).decode()
    with Conn(server.port) as conn:
        conn.send(ws_upgrade_request("/echo", key, version="8"))
        response = conn.read_response()
        assert response.status == 426, response.head
        assert response.header("Sec-WebSocket-Version") == "13", response.head


@pytest.mark.parametrize("key", [None, "", "not-base64!!", base64.b64encode(b"short").decode()])
def test_missing_or_bad_key_is_400(bridge, key):
    server = bridge()
    with Conn(server.port) as conn:
        send_ignoring_reset(conn, ws_upgrade_request("/echo", key))
        response = conn.read_response()
        assert response.status == 400, response.head


# --- raw frames: protocol errors ---------------------------------------------------------------


def expect_close(conn: Conn, code: int, timeout: float = 5.0) -> None:
    """The server sends a close frame with `code`, then closes TCP (after our close reply)."""
    received, _reason = conn.read_close(timeout)
    assert received == code, f"expected close {code}, got {received}"
    send_ignoring_reset(conn, encode_frame(OP_CLOSE, close_payload(code)))
    conn.wait_closed(timeout)


def test_unmasked_frame_is_1002(bridge):
    # RFC 6455 §5.1: a server must close on an unmasked client frame.
    server = bridge()
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_TEXT, b"no mask", mask=False)
        expect_close(conn, 1002)


@pytest.mark.parametrize("frames", [
    pytest.param([encode_frame(0x3, b"x")], id="reserved-opcode"),
    pytest.param([encode_frame(OP_TEXT, b"x", rsv=4)], id="rsv1-without-extension"),
    pytest.param([encode_frame(OP_CONT, b"x")], id="continuation-without-start"),
    pytest.param([encode_frame(OP_TEXT, b"a", fin=False), encode_frame(OP_TEXT, b"b")],
                 id="new-message-inside-fragmented"),
    pytest.param([encode_frame(OP_PING, b"p", fin=False)], id="fragmented-control"),
    pytest.param([encode_frame(OP_PING, b"p" * 126)], id="control-over-125"),
    pytest.param([encode_frame(OP_CLOSE, b"\x03")], id="close-payload-1-byte"),
    pytest.param([encode_frame(OP_CLOSE, close_payload(1005))], id="close-code-1005"),
])
def test_protocol_errors_are_1002(bridge, frames):
    server = bridge()
    with Conn(server.port) as conn:
        conn.upgrade()
        for frame in frames:
            send_ignoring_reset(conn, frame)
        expect_close(conn, 1002)


@pytest.mark.parametrize("frames", [
    pytest.param([encode_frame(OP_TEXT, b"\xff\xfe")], id="invalid-bytes"),
    pytest.param([encode_frame(OP_TEXT, b"\xed\xa0\x80")], id="surrogate"),
    pytest.param([encode_frame(OP_TEXT, "ok ✓".encode()[:-1])], id="truncated"),
    pytest.param([encode_frame(OP_TEXT, b"ab\xce", fin=False),
                  encode_frame(OP_CONT, b"\xff")], id="split-invalid"),
])
def test_invalid_utf8_is_1007(bridge, frames):
    server = bridge()
    with Conn(server.port) as conn:
        conn.upgrade()
        for frame in frames:
            send_ignoring_reset(conn, frame)
        expect_close(conn, 1007)


def test_utf8_split_across_fragments_is_valid(bridge):
    server = bridge()
    encoded = "✓✓".encode()
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_TEXT, encoded[:2], fin=False)
        conn.send_frame(OP_PING, b"mid")  # RFC 6455 §5.4: control frames may interleave
        conn.send_frame(OP_CONT, encoded[2:4], fin=False)
        conn.send_frame(OP_CONT, encoded[4:])
        frames = [conn.read_frame(), conn.read_frame()]
        by_opcode = {frame.opcode: frame for frame in frames}
        assert by_opcode[OP_PONG].payload == b"mid"
        text = by_opcode.get(OP_TEXT)
        assert text is not None and text.fin and text.payload == encoded, frames


def test_raw_ping_gets_pong_with_same_payload(bridge):
    server = bridge()
    payload = bytes(range(125))
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_PING, payload)
        frame = conn.read_frame()
        assert (frame.fin, frame.opcode, frame.masked, frame.payload) == (True, OP_PONG, False,
                                                                          payload)


def test_raw_close_is_echoed_then_tcp_closed(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_CLOSE, close_payload(4000, "app"))
        frame = conn.read_frame()
        assert frame.opcode == OP_CLOSE and not frame.masked
        assert parse_close(frame.payload)[0] == 4000
        conn.wait_closed(5)


def test_empty_close_is_answered(bridge):
    # RFC 6455 §5.5.1/§7.4.1: no status code received; 1005 must never be sent on the wire.
    server = bridge()
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_CLOSE, b"")
        code, _ = conn.read_close()
        assert code in (None, 1000), code
        conn.wait_closed(5)


def test_frame_pipelined_behind_upgrade_request(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        key = base64.b64encode(os.urandom(16)).decode()
        conn.send(ws_upgrade_request("/echo", key) + encode_frame(OP_TEXT, b"right behind"))
        response = conn.read_response(head_only=True)
        assert response.status == 101, response.head
        assert conn.read_message() == (OP_TEXT, b"right behind")


def test_failed_connection_closed_when_client_never_answers(bridge):
    # --close-timeout: after the server's close frame, TCP is closed at the latest after this.
    server = bridge("--close-timeout", "1")
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_TEXT, b"\xff")  # invalid UTF-8: the server closes with 1007
        code, _ = conn.read_close()
        assert code == 1007
        started = time.monotonic()
        conn.wait_closed(4)  # never answer the close frame
        assert time.monotonic() - started <= 3.0


def test_message_over_limit_is_1009(bridge):
    server = bridge("--max-message-bytes", "1024")
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_BINARY, b"k" * 1024)
        assert conn.read_message() == (OP_BINARY, b"k" * 1024)
        send_ignoring_reset(conn, encode_frame(OP_BINARY, b"x" * 1025))
        expect_close(conn, 1009)


def test_fragmented_message_over_limit_is_1009(bridge):
    server = bridge("--max-message-bytes", "1024")
    with Conn(server.port) as conn:
        conn.upgrade()
        conn.send_frame(OP_TEXT, b"a" * 600, fin=False)
        send_ignoring_reset(conn, encode_frame(OP_CONT, b"b" * 600))
        expect_close(conn, 1009)


def test_frame_over_limit_is_1009(bridge):
    server = bridge("--max-frame-bytes", "2048")
    with Conn(server.port) as conn:
        conn.upgrade()
        send_ignoring_reset(conn, encode_frame(OP_BINARY, b"f" * 4096))
        expect_close(conn, 1009)


# --- server pings ------------------------------------------------------------------------------


def test_server_pings_idle_client_and_drops_it(bridge):
    server = bridge("--ws-ping-interval", "0.5", "--ws-pong-timeout", "0.5")
    with Conn(server.port) as conn:
        conn.upgrade()
        started = time.monotonic()
        frame = conn.read_frame(5)
        assert frame.opcode == OP_PING and not frame.masked, frame
        pinged = time.monotonic()
        assert pinged - started <= 3.0, f"first ping after {pinged - started:.2f}s"
        # Never answer. A close frame may come first; then TCP must close.
        deadline = pinged + 5.0
        closed = False
        for _ in range(1000):
            try:
                frame = conn.read_frame(max(0.0, deadline - time.monotonic()))
            except Closed:
                closed = True
                break
            except TimeoutError:
                break
            assert frame.opcode in (OP_PING, OP_CLOSE), frame
        assert closed, "server kept a client that never answers pings"
        assert time.monotonic() - pinged <= 5.0


def test_client_answering_pings_stays_connected(bridge):
    server = bridge("--ws-ping-interval", "0.5", "--ws-pong-timeout", "0.5")
    with Conn(server.port) as conn:
        conn.upgrade()
        pings = 0
        end = time.monotonic() + 3.0  # six ping intervals
        for _ in range(1000):
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            try:
                frame = conn.read_frame(remaining)
            except TimeoutError:
                break
            assert frame.opcode == OP_PING, f"unexpected frame {frame}"
            pings += 1
            conn.send_frame(OP_PONG, frame.payload)
        assert pings >= 2, f"only {pings} pings in 3 s with --ws-ping-interval 0.5"
        conn.send_frame(OP_TEXT, b"alive")
        assert conn.read_message() == (OP_TEXT, b"alive")


def test_websockets_client_auto_pong_stays_connected(bridge):
    server = bridge("--ws-ping-interval", "0.5", "--ws-pong-timeout", "0.5")

    async def body():
        async with client(server) as ws:
            await asyncio.sleep(2.5)
            await ws.send("still")
            assert await ws.recv() == "still"
    run(body())


# --- flow control ------------------------------------------------------------------------------


def test_slow_reader_is_disconnected(bridge):
    server = bridge("--max-outbound-bytes", "65536")
    message = encode_frame(OP_BINARY, os.urandom(60 * 1024))
    with Conn(server.port, timeout=2, rcvbuf=4096) as conn:
        conn.upgrade()
        deadline = time.monotonic() + 20
        dropped = False
        sent = 0
        for _ in range(2000):  # 2000 × 60 KiB = 120 MiB at most
            if time.monotonic() > deadline:
                break
            try:
                conn.send(message)
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            except socket.timeout:
                # The server stopped reading; it must still drop us, so wait for that below.
                break
        if not dropped:
            # Read nothing of the echoes: just look for the reset or EOF at the end (bounded).
            try:
                conn.read_to_eof(max(1.0, deadline - time.monotonic()))
                dropped = True
            except TimeoutError:
                dropped = False
        assert dropped, f"slow reader still connected after sending {sent} × 60 KiB"
        print(f"dropped after {sent} messages of 60 KiB")
    assert get(server.port, "/health").status == 200


def test_large_echo_read_slowly(bridge):
    server = bridge()
    payload = os.urandom(512 * 1024)
    with Conn(server.port, timeout=10, rcvbuf=8192) as conn:
        conn.upgrade()
        conn.send_frame(OP_BINARY, payload)
        received = bytearray()
        opcode = None
        buf = bytearray()
        deadline = time.monotonic() + 30
        # Read in 4 KiB pieces with pauses so the server has to finish its write in parts.
        for _ in range(100_000):
            parsed = parse_frame(buf)
            if parsed is not None:
                frame, used = parsed
                del buf[:used]
                assert not frame.masked and frame.rsv == 0, frame
                assert frame.opcode == (OP_BINARY if opcode is None else OP_CONT), frame.opcode
                opcode = OP_BINARY
                received += frame.payload
                if frame.fin:
                    break
                continue
            assert time.monotonic() < deadline, f"only {len(received) + len(buf)} bytes in 30 s"
            try:
                chunk = conn.sock.recv(4096)
            except socket.timeout:
                continue
            assert chunk, "server closed during the echo"
            buf += chunk
            time.sleep(0.005)
        assert opcode == OP_BINARY
        assert len(received) == len(payload)
        assert bytes(received) == payload
        assert not buf
