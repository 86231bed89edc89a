"""Fixtures and raw-socket helpers for the real-client tests of the `bridge` binary.

Every server is started on 127.0.0.1 with an ephemeral port; every wait has a bound.
"""

from __future__ import annotations

import base64
import email.utils
import errno
import hashlib
import os
import re
import resource
import select
import signal
import ssl
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BRIDGE_BIN = Path(os.environ.get("BRIDGE_BIN", REPO_ROOT / ".build" / "debug" / "bridge"))

LISTENING_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def bridge_path() -> Path:
    if not BRIDGE_BIN.is_file() or not os.access(BRIDGE_BIN, os.X_OK):
        pytest.fail(f"bridge binary not found at {BRIDGE_BIN} (set BRIDGE_BIN or run `swift build`)")
    return BRIDGE_BIN


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any BRIDGE_* settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(extra or {})
    return env


# ----------------------------------------------------------------------------------------------
# The server process
# ----------------------------------------------------------------------------------------------


class BridgeProcess:
    """One running `bridge serve`, its port and its stderr captured line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, fd_limit: int | None = None):
        self.args = args
        self.signals_sent: set[int] = set()
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            [str(bridge_path()), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))) if fd_limit else None,
        )
        self._reader = threading.Thread(target=self._drain, name="bridge-stderr", daemon=True)
        self._reader.start()
        match = self.wait_for_log(LISTENING_RE, START_TIMEOUT)
        if match is None:
            code = self.proc.poll()
            self.kill()
            pytest.fail(
                f"bridge did not print 'listening on http://127.0.0.1:PORT' within {START_TIMEOUT}s "
                f"(exit={code}); args={args}\nstderr:\n{self.stderr_text}"
            )
        self.port = int(match.group(1))
        assert 0 < self.port < 65536

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr_lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    @property
    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def wait_for_log(self, pattern: re.Pattern[str] | str, timeout: float, start: int = 0):
        """The first match of `pattern` in stderr lines from index `start`, or None after `timeout`."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                while seen < len(self._lines):
                    match = regex.search(self._lines[seen])
                    seen += 1
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    return None
                self._cond.wait(remaining)

    def send_signal(self, sig: int) -> None:
        self.signals_sent.add(sig)
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.signals_sent.add(signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def stop(self) -> str | None:
        """Stop the process (SIGTERM, then SIGKILL) and describe a crash, if there was one."""
        exited_on_its_own = self.proc.poll() is not None and not self.signals_sent
        if self.proc.poll() is None:
            self.send_signal(signal.SIGTERM)
            if self.wait(STOP_TIMEOUT) is None:
                self.kill()
        self._reader.join(5)
        code = self.proc.returncode
        if code < 0 and -code not in self.signals_sent:
            return f"bridge crashed with signal {signal.Signals(-code).name}"
        if exited_on_its_own:
            return f"bridge exited on its own during the test with status {code}"
        return None


@pytest.fixture
def bridge(tmp_path, request):
    """Factory: `bridge(*flags, env=None, port=True, echo_path="/echo")` starts a server.

    The base command is `bridge serve --host 127.0.0.1 --port 0 --threads 2 --echo-path /echo`
    plus a fresh `--data-dir` unless one is given; `port=False` or `echo_path=None` leave those
    flags out (to test env and config sources).
    """
    started: list[BridgeProcess] = []

    def start(*flags: str, env: dict[str, str] | None = None, port: bool = True,
              echo_path: str | None = "/echo", fd_limit: int | None = None) -> BridgeProcess:
        args = ["serve", "--host", "127.0.0.1"]
        if port:
            args += ["--port", "0"]
        args += ["--threads", "2"]
        if echo_path is not None:
            args += ["--echo-path", echo_path]
        args += list(flags)
        # One data directory per server: its webhook outbox admits a single process.
        if "--data-dir" not in flags and not any(f.startswith("--data-dir=") for f in flags) \
                and "BRIDGE_DATA_DIR" not in (env or {}):
            args += ["--data-dir", str(tmp_path / f"data-{len(started)}")]
        server = BridgeProcess(args, clean_env(env), tmp_path, fd_limit)
        started.append(server)
        return server

    yield start

    problems = []
    for server in started:
        problem = server.stop()
        if problem:
            tail = "\n".join(server.stderr_lines[-40:])
            problems.append(f"{problem}; args={server.args}\nstderr tail:\n{tail}")
    if problems:
        pytest.fail("\n\n".join(problems))


# ----------------------------------------------------------------------------------------------
# Raw HTTP over a socket
# ----------------------------------------------------------------------------------------------


class Closed(Exception):
    """The peer closed the connection (EOF or reset) before the expected bytes arrived."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    head: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of the first header called `name` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def has_token(self, name: str, token: str) -> bool:
        """Whether the comma-separated header `name` contains `token` (case-insensitive)."""
        values = ",".join(self.header_all(name))
        return token.lower() in (part.strip().lower() for part in values.split(","))


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Conn:
    """A blocking loopback TCP connection with a read buffer and deadline-bounded reads."""

    def __init__(self, port: int, timeout: float = 5.0, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Must be set before connect for the window to stay small (socket(7)).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float, size: int = 65536) -> None:
        """Read at least one more byte into the buffer before `deadline`; raise Closed at EOF."""
        if self.eof:
            raise Closed("connection closed by peer")
        # Over TLS, decrypted bytes OpenSSL already holds do not make the socket readable again.
        if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not wait_readable(self.sock, remaining):
                raise TimeoutError("deadline passed waiting for data")
        try:
            chunk = self.sock.recv(size)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as error:
            self.eof = True
            raise Closed(f"connection reset: {error}") from error
        if not chunk:
            self.eof = True
            raise Closed("connection closed by peer")
        self.buf += chunk

    def read_exact(self, count: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < count:
            self._fill(deadline)
        data = bytes(self.buf[:count])
        del self.buf[:count]
        return data

    def read_until(self, marker: bytes, timeout: float = 5.0, limit: int = 1 << 20) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            index = self.buf.find(marker)
            if index >= 0:
                end = index + len(marker)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            if len(self.buf) > limit:
                raise AssertionError(f"no {marker!r} within {limit} bytes")
            self._fill(deadline)

    def read_response(self, timeout: float = 5.0, head_only: bool = False) -> Response:
        """One HTTP/1.1 response: status line, headers, and a Content-Length or chunked body."""
        deadline = time.monotonic() + timeout
        head = self.read_until(b"\r\n\r\n", max(0.0, deadline - time.monotonic()))
        lines = head[:-4].split(b"\r\n")
        match = re.fullmatch(rb"(HTTP/\d\.\d) (\d{3}) ?(.*)", lines[0])
        assert match, f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            assert sep and name and name == name.strip(), f"bad header line {line!r}"
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        response = Response(match.group(1).decode(), int(match.group(2)),
                            match.group(3).decode("latin-1"), headers, head=head)
        if head_only or 100 <= response.status < 200 or response.status in (204, 304):
            return response
        if response.has_token("Transfer-Encoding", "chunked"):
            response.body = self._read_chunked(deadline)
        elif response.header("Content-Length") is not None:
            length = int(response.header("Content-Length"))
            response.body = self.read_exact(length, max(0.0, deadline - time.monotonic()))
        else:
            # RFC 9112 §6.3: no length means the body runs to the close of the connection.
            response.body = self.read_to_eof(max(0.0, deadline - time.monotonic()))
        return response

    def _read_chunked(self, deadline: float) -> bytes:
        body = bytearray()
        for _ in range(100_000):
            size_line = self.read_until(b"\r\n", max(0.0, deadline - time.monotonic()))
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # RFC 9112 §7.1.2: trailer fields, then an empty line.
                while self.read_until(b"\r\n", max(0.0, deadline - time.monotonic())) != b"\r\n":
                    pass
                return bytes(body)
            body += self.read_exact(size, max(0.0, deadline - time.monotonic()))
            assert self.read_exact(2, max(0.0, deadline - time.monotonic())) == b"\r\n"
        raise AssertionError("too many chunks")

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Everything until the peer closes; TimeoutError if it stays open past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except Closed:
                data = bytes(self.buf)
                self.buf.clear()
                return data

    def wait_closed(self, timeout: float = 5.0) -> bytes:
        """Assert the peer closes within `timeout`; returns any bytes that came first."""
        try:
            return self.read_to_eof(timeout)
        except TimeoutError:
            raise AssertionError(f"connection still open after {timeout}s") from None

    def is_open(self, wait: float = 0.0) -> bool:
        """True when nothing (no EOF, no reset) arrives within `wait`; buffers any data."""
        try:
            self._fill(time.monotonic() + wait)
        except TimeoutError:
            return True
        except Closed:
            return False
        return True

    # --- WebSocket (RFC 6455) ---

    def ws_handshake(self, path: str = "/echo", key: str | None = None,
                     extra: list[tuple[str, str]] | None = None, timeout: float = 5.0) -> Response:
        key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        self.send(ws_upgrade_request(path, key, extra))
        response = self.read_response(timeout, head_only=True)
        return response

    def upgrade(self, path: str = "/echo", timeout: float = 5.0) -> Response:
        key = base64.b64encode(os.urandom(16)).decode()
        response = self.ws_handshake(path, key, timeout=timeout)
        assert response.status == 101, f"expected 101, got {response.status} {response.head!r}"
        assert response.header("Sec-WebSocket-Accept") == ws_accept(key)
        return response

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
                   rsv: int = 0) -> None:
        self.send(encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def read_frame(self, timeout: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_frame(self.buf)
            if parsed is not None:
                frame, used = parsed
                del self.buf[:used]
                return frame
            self._fill(deadline)

    def read_message(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """One whole data message (reassembling fragments), answering nothing. Control frames
        other than close between fragments are skipped; a close frame raises AssertionError."""
        deadline = time.monotonic() + timeout
        opcode = None
        data = bytearray()
        for _ in range(1_000_000):
            frame = self.read_frame(max(0.0, deadline - time.monotonic()))
            assert not frame.masked, "RFC 6455 §5.1: server frames must not be masked"
            assert frame.rsv == 0, f"unexpected RSV bits {frame.rsv}"
            if frame.opcode in (OP_PING, OP_PONG):
                continue
            if frame.opcode == OP_CLOSE:
                raise AssertionError(f"unexpected close frame {parse_close(frame.payload)}")
            if opcode is None:
                assert frame.opcode in (OP_TEXT, OP_BINARY), f"first frame opcode {frame.opcode}"
                opcode = frame.opcode
            else:
                assert frame.opcode == OP_CONT, f"expected continuation, got {frame.opcode}"
            data += frame.payload
            if frame.fin:
                return opcode, bytes(data)
        raise AssertionError("too many frames")

    def read_close(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Skip data and ping/pong frames until a close frame; return its (code, reason)."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            frame = self.read_frame(max(0.0, deadline - time.monotonic()))
            assert not frame.masked, "RFC 6455 §5.1: server frames must not be masked"
            if frame.opcode == OP_CLOSE:
                return parse_close(frame.payload)
        raise AssertionError("too many frames before close")


def parse_frame(buf: bytes | bytearray) -> tuple[Frame, int] | None:
    """The first whole RFC 6455 §5.2 frame in `buf` and its size in bytes, or None if partial."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    length = b1 & 0x7F
    offset = 2
    if length == 126:
        if len(buf) < 4:
            return None
        (length,) = struct.unpack_from("!H", buf, 2)
        offset = 4
    elif length == 127:
        if len(buf) < 10:
            return None
        (length,) = struct.unpack_from("!Q", buf, 2)
        offset = 10
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        if len(buf) < offset + 4:
            return None
        key = bytes(buf[offset:offset + 4])
        offset += 4
    if len(buf) < offset + length:
        return None
    payload = bytes(buf[offset:offset + length])
    if masked:
        payload = apply_mask(payload, key)
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, masked, payload), offset + length


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    """poll(2) rather than select(2): descriptors past 1024 appear in the load tests."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def ws_upgrade_request(path: str, key: str | None,
                       extra: list[tuple[str, str]] | None = None,
                       version: str = "13") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade"]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    names = {name.lower() for name, _ in (extra or [])}
    if "sec-websocket-version" not in names:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += [f"{name}: {value}" for name, value in (extra or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def apply_mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    # XOR through big integers: fast enough for megabyte payloads in pure Python.
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


def encode_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
                 rsv: int = 0, mask_key: bytes | None = None) -> bytes:
    """One RFC 6455 §5.2 frame; client frames are masked unless `mask=False`."""
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if len(payload) < 126:
        head.append(bit | len(payload))
    elif len(payload) < 1 << 16:
        head.append(bit | 126)
        head += struct.pack("!H", len(payload))
    else:
        head.append(bit | 127)
        head += struct.pack("!Q", len(payload))
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return bytes(head) + key + apply_mask(payload, key)
    return bytes(head) + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def parse_close(payload: bytes) -> tuple[int | None, str]:
    if not payload:
        return None, ""
    assert len(payload) >= 2, f"close payload of 1 byte: {payload!r}"
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")


# ----------------------------------------------------------------------------------------------
# Small HTTP helpers
# ----------------------------------------------------------------------------------------------


def wait_until(check, timeout: float = 5.0, interval: float = 0.05, what: str = "condition"):
    """Poll `check()` until truthy; fail with `what` after `timeout`. Returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(interval)


def http_request(method: str, path: str, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or [])]
    if body and not any(name.lower() in ("content-length", "transfer-encoding")
                        for name, _ in (headers or [])):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(port: int, path: str, headers: list[tuple[str, str]] | None = None,
        timeout: float = 5.0) -> Response:
    with Conn(port, timeout) as conn:
        conn.send(http_request("GET", path, headers))
        return conn.read_response(timeout)


IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT"
)


def assert_date(response: Response) -> None:
    """RFC 9110 §6.6.1: a Date in IMF-fixdate, close to now."""
    value = response.header("Date")
    assert value is not None, f"no Date header in {response.head!r}"
    assert IMF_FIXDATE.fullmatch(value), f"Date not IMF-fixdate: {value!r}"
    when = email.utils.parsedate_to_datetime(value).timestamp()
    assert abs(when - time.time()) < 120, f"Date far from now: {value!r}"


def assert_json_error(response: Response, status: int) -> str:
    """The response has `status`, a JSON `{"error": "..."}` body of the declared length, a Date."""
    import json

    assert response.status == status, f"expected {status}, got {response.status} {response.head!r}"
    assert response.header("Content-Length") is not None, "error response without Content-Length"
    assert int(response.header("Content-Length")) == len(response.body)
    doc = json.loads(response.body)
    assert isinstance(doc, dict) and set(doc) == {"error"}, f"body {response.body!r}"
    assert isinstance(doc["error"], str) and doc["error"], f"body {response.body!r}"
    assert_date(response)
    return doc["error"]


def retry_until(check, timeout: float, interval: float = 0.1):
    """Call `check()` until it returns a truthy value or `timeout` passes; return the last value."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = check()
    return result


def send_ignoring_reset(conn: Conn, data: bytes) -> bool:
    """Send, returning False instead of raising when the peer has already reset or closed."""
    try:
        conn.send(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False
    except OSError as error:
        if error.errno in (errno.EPIPE, errno.ECONNRESET):
            return False
        raise


@pytest.fixture
def pusher_bridge(bridge, tmp_path):
    """Factory: `pusher_bridge(apps=None, *flags, options=None, env=None)` → a running
    `bridge serve --config FILE` with those apps and server options (see pusher_helpers.py)."""
    from pusher_helpers import pusher_bridge_factory

    return pusher_bridge_factory(bridge, tmp_path)


@pytest.fixture
def seed_bridge(bridge, tmp_path):
    """Factory: `seed_bridge(*flags, data_dir=None, admin_token=ADMIN_TOKEN, apps=None, env=None)`
    → a running `bridge serve` with a data dir and an admin token (see seed_helpers.py)."""
    from seed_helpers import seed_bridge_factory

    return seed_bridge_factory(bridge, tmp_path)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A test CA and its server certificates, made once per run with `openssl` (tls_helpers.py)."""
    from tls_helpers import TestPKI

    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_bridge(pusher_bridge, pki):
    """Factory: `tls_bridge(*flags, cert=pki.server, apps=None, options=None)` → a running
    `pusher_bridge` with a TLS listener on an ephemeral port (see tls_helpers.py)."""
    from tls_helpers import tls_bridge_factory

    return tls_bridge_factory(pusher_bridge, pki)


@pytest.fixture
def redis(tmp_path):
    """A real redis-server on a free loopback port, restartable on that port (cluster_helpers.py)."""
    from cluster_helpers import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver():
    """Factory: `receiver()` → a started WebhookReceiver (webhook_receiver.py); all are stopped
    after the test."""
    from webhook_receiver import WebhookReceiver

    started = []

    def start():
        hooks = WebhookReceiver().start()
        started.append(hooks)
        return hooks

    yield start
    for hooks in started:
        hooks.stop()
