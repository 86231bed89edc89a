"""Hostile and broken clients on the TLS port: handshakes that never finish (closed after
--request-timeout), clients that vanish mid-handshake, plain text (a plain 400), random bytes, and
a seeded run of 200 such connections after which the server still serves wss and /health with
as many file descriptors as before."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Closed, Conn, get, wait_until
from tls_helpers import client_hello

CHANNEL = "news"
SEED = 20141
REQUEST_TIMEOUT = 2


def reset(conn: Conn) -> None:
    """Close with RST rather than FIN: a client that vanishes."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def settled_fd_count(server) -> int:
    """The server's fd count once closing connections are gone (two equal readings in a row)."""
    previous = server.fd_count()
    for _ in range(20):
        time.sleep(0.5)
        now = server.fd_count()
        if now == previous:
            return now
        previous = now
    raise AssertionError(f"fd count does not settle: {previous}")


def problem_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " WARN " in line or " ERROR " in line
            or ("TLS" in line and " DEBUG " not in line)]


def assert_serves_wss(server) -> None:
    assert get(server.port, "/health").status == 200
    assert server.https_get("/health").data.startswith(b"HTTP/1.1 200 ")
    with server.ws() as ws:
        ws.subscribe_ok(CHANNEL)
        server.api().trigger(CHANNEL, "still-serving", "yes")
        assert ws.wait_for("still-serving", CHANNEL)["data"] == "yes"


@pytest.mark.parametrize("sends", ["nothing", "half a ClientHello", "a ClientHello byte by byte"])
def test_an_unfinished_handshake_is_closed_after_the_request_timeout(tls_bridge, sends):
    server = tls_bridge("--request-timeout", str(REQUEST_TIMEOUT))
    hello = client_hello()
    with Conn(server.tls_port, timeout=10) as conn:
        started = time.monotonic()
        if sends == "half a ClientHello":
            conn.send(hello[: len(hello) // 2])
        elif sends == "a ClientHello byte by byte":
            # Trickling bytes does not move the deadline: the handshake as a whole must finish in time.
            for index in range(len(hello) - 1):
                if time.monotonic() - started > REQUEST_TIMEOUT + 2:
                    break
                try:
                    conn.send(hello[index:index + 1])
                except (BrokenPipeError, ConnectionResetError):
                    break
                time.sleep(0.05)
        if sends == "nothing":
            assert conn.is_open(wait=REQUEST_TIMEOUT / 2), "closed long before the request timeout"
        try:
            leftover = conn.read_to_eof(timeout=REQUEST_TIMEOUT + 3 - (time.monotonic() - started))
        except TimeoutError:
            pytest.fail(f"still open {REQUEST_TIMEOUT + 3}s after connecting ({sends})")
        except Closed:
            leftover = b""
        elapsed = time.monotonic() - started
    assert elapsed >= REQUEST_TIMEOUT - 1, f"closed after {elapsed:.1f}s, before the request timeout"
    assert not leftover.startswith(b"HTTP/"), leftover[:40]
    assert_serves_wss(server)


def test_a_slow_request_after_the_handshake_gets_408_over_tls(tls_bridge):
    server = tls_bridge("--request-timeout", str(REQUEST_TIMEOUT))
    with server.conn() as conn:
        conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        response = conn.read_response(timeout=REQUEST_TIMEOUT + 3)
        assert response.status == 408


def test_clients_that_vanish_mid_handshake_cost_nothing(tls_bridge):
    server = tls_bridge("--close-timeout", "1")
    server.https_get("/health")
    baseline = settled_fd_count(server)
    mark = len(server.proc.stderr_lines)
    hello = client_hello()
    for index in range(60):
        conn = Conn(server.tls_port)
        cut = [1, 5, len(hello) // 2, len(hello)][index % 4]
        conn.send(hello[:cut])
        if cut == len(hello) and index % 8 == 3:
            conn.read_exact(5)  # the server's answer has begun
        reset(conn) if index % 2 else conn.close()
    wait_until(lambda: server.fd_count() <= baseline, 10, what=f"fd count back to {baseline}")
    assert_serves_wss(server)
    assert server.fd_count() <= baseline + 2
    assert problem_lines(server.proc.stderr_lines[mark:]) == []


@pytest.mark.parametrize("request_line", [b"GET / HTTP/1.1", b"GET /app/key-1?protocol=7 HTTP/1.1", b"POST /apps/1/events HTTP/1.1"])
def test_plain_http_on_the_tls_port_gets_a_plain_400(tls_bridge, request_line):
    server = tls_bridge()
    with Conn(server.tls_port) as conn:
        conn.send(request_line + b"\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        response = conn.read_response()
        assert response.status == 400 and response.version == "HTTP/1.1"
        assert b"speaks TLS" in response.body and b"https://" in response.body, response.body
        assert response.has_token("Connection", "close")
        conn.wait_closed()
    assert_serves_wss(server)


@pytest.mark.parametrize("first", [0x00, 0x16, 0x80, 0xFF, 0x47])
def test_random_bytes_get_a_close(tls_bridge, first):
    server = tls_bridge("--request-timeout", str(REQUEST_TIMEOUT))
    rng = random.Random(SEED + first)
    with Conn(server.tls_port) as conn:
        sent = bytes([first]) + rng.randbytes(300)
        if first == 0x16:
            sent = b"\x16\x03\x01\x00\x40" + rng.randbytes(300)  # a handshake record that is noise
        try:
            conn.send(sent)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            conn.wait_closed(REQUEST_TIMEOUT + 3)
        except Closed:
            pass
    assert_serves_wss(server)


def fuzz_case(rng: random.Random, hello: bytes) -> tuple[str, bytes]:
    """One seeded hostile opening: what it is, and its bytes."""
    kind = rng.choice(["random", "record of noise", "truncated hello", "hello then garbage",
                       "hello with flipped bytes", "two hellos"])
    if kind == "random":
        data = rng.randbytes(rng.randint(1, 3000))
    elif kind == "record of noise":
        data = bytes([22, 3, rng.randint(0, 4)]) + rng.randbytes(rng.randint(0, 2000))
    elif kind == "truncated hello":
        data = hello[: rng.randint(1, len(hello) - 1)]
    elif kind == "hello then garbage":
        data = hello + rng.randbytes(rng.randint(1, 2000))
    elif kind == "hello with flipped bytes":
        flipped = bytearray(hello)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        data = bytes(flipped)
    else:
        data = hello + hello
    return kind, data


def run_fuzz_case(port: int, kind: str, data: bytes, chunked: bool, vanish: bool, limit: float) -> str | None:
    """Sends `data` (in small writes when `chunked`); unless it `vanish`es, waits for the server
    to close. Returns a problem, or None."""
    try:
        conn = Conn(port, timeout=limit)
    except OSError as error:
        return f"{kind}: connect failed: {error}"
    try:
        try:
            if chunked:
                for start in range(0, len(data), 7):
                    conn.send(data[start:start + 7])
            else:
                conn.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return None
        if vanish:
            reset(conn)
            return None
        try:
            conn.read_to_eof(limit)
        except TimeoutError:
            return f"{kind}: still open after {limit}s"
        except Closed:
            pass
        return None
    finally:
        conn.close()


def test_seeded_hostile_connections_leave_no_trace(tls_bridge):
    """200 connections of random bytes, truncated and corrupted ClientHellos and ClientHellos
    followed by garbage: each is closed by the server (in at most the request timeout), and
    afterwards the server serves wss and /health with its file descriptors back where they were."""
    request_timeout = 1
    server = tls_bridge("--request-timeout", str(request_timeout), "--close-timeout", "1")
    assert_serves_wss(server)
    baseline = settled_fd_count(server)
    rng = random.Random(SEED)
    hellos = [client_hello(), client_hello(ssl.TLSVersion.TLSv1_2), client_hello(server_name="a.test")]
    cases = []
    for _ in range(200):
        kind, data = fuzz_case(rng, rng.choice(hellos))
        cases.append((kind, data, rng.random() < 0.3, rng.random() < 0.2))
    limit = request_timeout + 4
    with ThreadPoolExecutor(max_workers=40) as pool:
        problems = [p for p in pool.map(lambda case: run_fuzz_case(server.tls_port, *case, limit), cases) if p]
    assert problems == [], f"seed {SEED}: {problems[:10]}"
    assert server.proc.proc.poll() is None, "the server exited"
    wait_until(lambda: server.fd_count() <= baseline, 10, what=f"seed {SEED}: fd count back to {baseline}")
    assert_serves_wss(server)
    assert not [line for line in server.proc.stderr_lines if " ERROR " in line]
