"""Many connections at once, and graceful shutdown under traffic."""

from __future__ import annotations

import asyncio
import resource
import signal
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import OP_CLOSE, OP_TEXT, Closed, Conn, close_payload, encode_frame, http_request

CONNECTIONS = 1000
MESSAGES = 5


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == resource.RLIM_INFINITY or soft >= needed, f"open-file limit {soft} < {needed}"


def ws_client(port: int, **kwargs):
    return connect(f"ws://127.0.0.1:{port}/echo", open_timeout=20, close_timeout=5,
                   ping_interval=None, compression=None, **kwargs)


async def settle_all(tasks: list[asyncio.Task], timeout: float) -> int:
    """Wait for `tasks` up to `timeout`, cancel the rest, and return how many had to be cancelled.

    Nothing escapes: a timeout becomes a count the test asserts on with a readable message
    (long chains of cancelled tasks are also hard on pytest's traceback formatting)."""
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(pending)


def test_thousand_concurrent_connections(bridge):
    # Client and server each hold 1,000 sockets; the server inherits our raised limit.
    raise_open_file_limit(2 * CONNECTIONS + 500)
    server = bridge("--max-connections", str(2 * CONNECTIONS))
    opened = 0
    echoed = 0
    failures: list[str] = []

    async def body() -> int:
        all_open = asyncio.Event()
        settled = 0
        handshakes = asyncio.Semaphore(100)  # keep the SYN backlog calm on a 2-core machine

        def settle() -> None:
            nonlocal settled
            settled += 1
            if settled == CONNECTIONS:
                all_open.set()

        async def one(index: int) -> None:
            nonlocal opened, echoed
            try:
                async with handshakes:
                    ws = await ws_client(server.port)
            except Exception as error:  # noqa: BLE001 - every failure is reported below
                failures.append(f"connect {index}: {error!r}")
                settle()
                return
            opened += 1
            settle()
            try:
                await all_open.wait()
                for k in range(MESSAGES):
                    message = f"{index}:{k}:" + "x" * (index % 200)
                    if k % 2:
                        message = message.encode()
                    await ws.send(message)
                    reply = await ws.recv()
                    if reply != message:
                        failures.append(f"echo {index}:{k}: got {reply!r}")
                        return
                    echoed += 1
            except Exception as error:  # noqa: BLE001
                failures.append(f"echo {index}: {error!r}")
            finally:
                await ws.close()

        tasks = [asyncio.create_task(one(i)) for i in range(CONNECTIONS)]
        return await settle_all(tasks, 60)

    started = time.monotonic()
    unfinished = asyncio.run(body())
    elapsed = time.monotonic() - started
    summary = (f"{opened}/{CONNECTIONS} opened, {echoed}/{CONNECTIONS * MESSAGES} echoed, "
               f"{unfinished} unfinished after {elapsed:.1f}s")
    assert not failures, f"{summary}; {len(failures)} failures, first: {failures[:5]}"
    assert unfinished == 0 and echoed == CONNECTIONS * MESSAGES, summary
    print(f"{CONNECTIONS} connections × {MESSAGES} echoes in {elapsed:.1f}s")
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/health"))
        assert conn.read_response().status == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_traffic_closes_1001_and_exits_0(bridge, sig):
    grace = 5
    server = bridge("--shutdown-grace", str(grace))
    clients = 50
    codes: list[int | None] = []
    errors: list[str] = []
    warm = 0

    async def body():
        warmed = asyncio.Event()

        async def one(index: int) -> None:
            nonlocal warm
            try:
                ws = await ws_client(server.port)
            except Exception as error:  # noqa: BLE001
                errors.append(f"connect {index}: {error!r}")
                return
            try:
                for k in range(1_000_000):
                    message = f"{index}:{k}"
                    await ws.send(message)
                    reply = await ws.recv()
                    if reply != message:
                        errors.append(f"{index}: sent {message!r} got {reply!r}")
                        return
                    if k == 2:
                        warm += 1
                        if warm == clients:
                            warmed.set()
            except ConnectionClosed:
                pass
            finally:
                await ws.close()
                received = ws.protocol.close_rcvd
                codes.append(received.code if received else None)

        tasks = [asyncio.create_task(one(i)) for i in range(clients)]
        try:
            await asyncio.wait_for(warmed.wait(), 20)
        except TimeoutError:
            await settle_all(tasks, 0)
            return None, None, 0
        signalled = time.monotonic()
        server.send_signal(sig)
        exit_code = await asyncio.to_thread(server.wait, grace + 3)
        exited_after = time.monotonic() - signalled
        unfinished = await settle_all(tasks, 10)
        return exit_code, exited_after, unfinished

    exit_code, exited_after, unfinished = asyncio.run(body())
    assert exited_after is not None, f"only {warm}/{clients} clients echoing after 20 s: {errors[:5]}"
    assert not errors, errors[:5]
    assert exit_code == 0, f"exit status {exit_code} (None = still running) after {sig.name}"
    assert exited_after <= grace + 1, f"exited {exited_after:.1f}s after {sig.name}"
    assert unfinished == 0, f"{unfinished} clients still connected after the server exited"
    assert codes == [1001] * clients, f"close codes received: {sorted(codes, key=str)}"


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_second_signal_exits_at_once(bridge, second):
    server = bridge("--shutdown-grace", "30", "--close-timeout", "30")
    with Conn(server.port) as ws, Conn(server.port) as http:
        ws.upgrade()
        http.send(http_request("GET", "/ready"))
        assert http.read_response().status == 200

        server.send_signal(signal.SIGTERM)
        # The draining server says goodbye with 1001; this client never answers, so the
        # server has to wait for it until close-timeout or the grace period ends.
        code, _ = ws.read_close(5)
        assert code == 1001
        time.sleep(0.5)
        assert server.proc.poll() is None, "server did not wait for the unanswered close"

        # An idle keep-alive HTTP connection is either told it is draining or closed.
        try:
            http.send(http_request("GET", "/ready"))
            response = http.read_response(3)
            assert response.status == 503, response.head
            assert response.body == b'{"status":"draining"}'
        except (Closed, BrokenPipeError, ConnectionResetError):
            pass

        # Not accepting: refused, or closed without being served.
        try:
            with Conn(server.port, timeout=2) as late:
                late.send(http_request("GET", "/health"))
                data = late.wait_closed(3)
                assert not data.startswith(b"HTTP/1.1 200"), data
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.timeout):
            pass

        server.send_signal(second)
        started = time.monotonic()
        code = server.wait(3)
        assert code is not None, f"still running 3 s after a second signal ({second.name})"
        assert code >= 0 or -code in (signal.SIGTERM, signal.SIGINT), f"exit {code}"
        print(f"exited {time.monotonic() - started:.2f}s after the second signal, status {code}")


def test_sigterm_with_answering_client_exits_0_within_grace(bridge):
    server = bridge("--shutdown-grace", "8")
    with Conn(server.port) as ws:
        ws.upgrade()
        ws.send_frame(OP_TEXT, b"hi")
        assert ws.read_message() == (OP_TEXT, b"hi")
        server.send_signal(signal.SIGTERM)
        code, _ = ws.read_close(5)
        assert code == 1001
        ws.send(encode_frame(OP_CLOSE, close_payload(1001)))
        ws.wait_closed(5)
    code = server.wait(10)
    assert code == 0, f"exit status {code} (None = still running past the 8 s grace)"


def test_drain_close_timeout_when_client_never_answers(bridge):
    # During a long grace, a client that ignores the 1001 is cut off after --close-timeout.
    server = bridge("--shutdown-grace", "20", "--close-timeout", "1")
    with Conn(server.port) as ws:
        ws.upgrade()
        server.send_signal(signal.SIGTERM)
        code, _ = ws.read_close(5)
        assert code == 1001
        started = time.monotonic()
        ws.wait_closed(5)
        assert time.monotonic() - started <= 3.0, "close-timeout 1 not applied"
    code = server.wait(19)
    assert code == 0, f"exit status {code}"
