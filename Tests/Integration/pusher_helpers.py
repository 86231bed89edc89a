"""Helpers and fixtures for the Pusher-protocol tests of `bridge` (protocol 7 and the HTTP API).

- the `pusher_bridge(apps, *flags, options=..., env=...)` fixture writes a JSON config file
  (server options plus "apps") into tmp_path and starts `bridge serve --config FILE` through
  conftest's `bridge` fixture.
- `PusherWS` is a synchronous Pusher client over the `websockets` library: it reads
  `pusher:connection_established`, subscribes (auth from the official `pusher` library), reads
  frames with bounded timeouts and asserts close codes.
- `RawAPI` sends HTTP API requests signed by our own signer (`sign_params`, rest-api.md
  "Generating authentication signatures"), so negative cases can break one part of a request.
- `PusherServer.rest()` is the official library's client, `pusher.Pusher(..., ssl=False)`.

conftest.py defines the `pusher_bridge` fixture with `pusher_bridge_factory` from here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pusher
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from conftest import BridgeProcess, bridge_path, clean_env, retry_until

# The app a server without "apps" in its config serves (no --app-* flags).
DEFAULT_APP = {"id": "1", "key": "app-key", "secret": "app-secret"}
# The official library needs a master key to authorise and publish on private-encrypted- channels.
MASTER_KEY_B64 = base64.b64encode(bytes(range(32))).decode()
DEFAULT_QUERY = "protocol=7&client=py&version=1.0"
SOCKET_ID_RE = re.compile(r"\A\d+\.\d+\Z")
TIMEOUT = 5.0


def make_app(app_id: str | int = "1", **settings: Any) -> dict:
    """One app entry of the config's "apps": id, key `key-<id>`, secret `secret-<id>`, plus settings."""
    app: dict[str, Any] = {"id": app_id, "key": f"key-{app_id}", "secret": f"secret-{app_id}"}
    app.update(settings)
    return app


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


class PusherServer:
    """A running `bridge serve --config FILE` and the apps of that file."""

    def __init__(self, proc: BridgeProcess, config_path: Path, config: dict):
        self.proc = proc
        self.config_path = config_path
        self.config = config

    @property
    def port(self) -> int:
        return self.proc.port

    @property
    def apps(self) -> list[dict]:
        return self.config.get("apps") or [DEFAULT_APP]

    def app(self, which: int | str = 0) -> dict:
        """An app by index in "apps" (int) or by id (str)."""
        if isinstance(which, int):
            return self.apps[which]
        for app in self.apps:
            if str(app["id"]) == which:
                return app
        raise KeyError(which)

    def rest(self, which: int | str = 0, **overrides: Any) -> pusher.Pusher:
        """The official library's HTTP client for an app (overrides: app_id, key, secret)."""
        app = self.app(which)
        return make_rest(self.port, str(overrides.get("app_id", app["id"])),
                         overrides.get("key", app["key"]), overrides.get("secret", app["secret"]))

    def api(self, which: int | str = 0) -> RawAPI:
        app = self.app(which)
        return RawAPI(self.port, str(app["id"]), app["key"], app["secret"])

    def ws(self, which: int | str = 0, **kwargs: Any) -> PusherWS:
        """A connected PusherWS for an app; `key=` to connect with another key."""
        app = self.app(which)
        kwargs.setdefault("key", app["key"])
        return PusherWS(self.port, rest=self.rest(which), **kwargs)

    def write_config(self, config: dict | str) -> None:
        text = config if isinstance(config, str) else json.dumps(config)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)
        if not isinstance(config, str):
            self.config = config

    def reload(self, config: dict | str) -> int:
        """Rewrite the config file and send SIGHUP; returns the stderr line count before it."""
        mark = len(self.proc.stderr_lines)
        self.write_config(config)
        self.proc.send_signal(signal.SIGHUP)
        return mark

    def rss_bytes(self) -> int:
        return rss_bytes(self.proc.pid)


def make_rest(port: int, app_id: str, key: str, secret: str) -> pusher.Pusher:
    return pusher.Pusher(app_id=app_id, key=key, secret=secret, host="127.0.0.1", port=port,
                         ssl=False, timeout=TIMEOUT, encryption_master_key_base64=MASTER_KEY_B64)


def write_config_file(path: Path, apps: list[dict] | None, options: dict | None) -> dict:
    config: dict[str, Any] = dict(options or {})
    if apps is not None:
        config["apps"] = apps
    path.write_text(json.dumps(config))
    return config


def pusher_bridge_factory(bridge, tmp_path):
    """The `pusher_bridge` fixture of conftest.py: `start(apps=None, *flags, options=None, env=None)`
    → PusherServer.

    `apps` None leaves "apps" out of the file (the default app, or the --app-* flags);
    `options` are server option keys in kebab-case ("ws-pong-timeout": 1, ...).
    """
    count = 0

    def start(apps: list[dict] | None = None, *flags: str, options: dict | None = None,
              env: dict[str, str] | None = None) -> PusherServer:
        nonlocal count
        count += 1
        path = tmp_path / f"bridge-{count}.json"
        config = write_config_file(path, apps, options)
        proc = bridge("--config", str(path), *flags, env=env, echo_path=None)
        return PusherServer(proc, path, config)

    return start


def run_bridge_once(args: list[str], env: dict[str, str] | None = None, cwd=None,
                    timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Run `bridge ARGS` to its exit (for configuration errors); fail if it keeps running."""
    try:
        return subprocess.run([str(bridge_path()), *args], env=clean_env(env), cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"`bridge {' '.join(args)}` still running after {timeout}s; "
                    f"stderr: {expired.stderr!r}")


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS) or at its peak (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/PID/status")


# ----------------------------------------------------------------------------------------------
# Signatures
# ----------------------------------------------------------------------------------------------


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def string_to_sign(method: str, path: str, params: dict[str, str]) -> str:
    """rest-api.md: METHOD\\nPATH\\nQUERY, QUERY = params but auth_signature, keys lowercased,
    sorted by key, `k=v` joined by `&`, values as they are (not URL-escaped)."""
    lowered = {key.lower(): str(value) for key, value in params.items() if key.lower() != "auth_signature"}
    query = "&".join(f"{key}={lowered[key]}" for key in sorted(lowered))
    return f"{method.upper()}\n{path}\n{query}"


def sign_params(method: str, path: str, key: str, secret: str, body: bytes = b"",
                params: dict[str, str] | None = None, timestamp: int | None = None,
                body_md5: str | None | bool = True) -> dict[str, str]:
    """The query parameters of a signed request: `params` plus auth_key, auth_timestamp,
    auth_version=1.0, body_md5 (True: MD5 of `body` when it is non-empty; a string: that value;
    None/False: none) and auth_signature."""
    signed = dict(params or {})
    signed["auth_key"] = key
    signed["auth_timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    signed["auth_version"] = "1.0"
    if body_md5 is True:
        if body:
            signed["body_md5"] = hashlib.md5(body).hexdigest()
    elif body_md5:
        signed["body_md5"] = body_md5
    signed["auth_signature"] = hmac_hex(secret, string_to_sign(method, path, signed))
    return signed


def channel_auth(key: str, secret: str, socket_id: str, channel: str,
                 channel_data: str | None = None) -> str:
    """`key:hex(HMAC(secret, socket_id:channel[:channel_data]))`, our own computation (§1.7)."""
    message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{key}:{hmac_hex(secret, message)}"


def user_auth(key: str, secret: str, socket_id: str, user_data: str) -> str:
    return f"{key}:{hmac_hex(secret, f'{socket_id}::user::{user_data}')}"


# ----------------------------------------------------------------------------------------------
# HTTP API with our own signer
# ----------------------------------------------------------------------------------------------


@dataclass
class ApiResult:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def __repr__(self) -> str:
        return f"ApiResult({self.status}, {self.body[:300]!r})"


class RawAPI:
    """Signed HTTP API requests over http.client, every part of which a test can change."""

    def __init__(self, port: int, app_id: str, key: str, secret: str,
                 ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        self.port = port
        self.app_id = app_id
        self.key = key
        self.secret = secret
        self.ssl_context = ssl_context  # https when set
        self.host = host

    def request(self, method: str, path: str, params: dict[str, str] | None = None,
                body: bytes | str | dict | list | None = None, *, key: str | None = None,
                secret: str | None = None, timestamp: int | None = None,
                body_md5: str | None | bool = True, drop: tuple[str, ...] = (),
                sign_path: str | None = None, send_body: bytes | None = None,
                encode: Callable[[str], str] | None = None, sign: bool = True) -> ApiResult:
        """`path` starts at "/apps/…" unless it is absolute from the root (it always is).
        `drop` removes query parameters after signing; `sign_path` signs another path;
        `send_body` sends other bytes than were signed; `encode` percent-encodes values."""
        if isinstance(body, (dict, list)):
            raw = json.dumps(body).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body or b""
        if sign:
            query = sign_params(method, sign_path or path, key or self.key, secret or self.secret,
                                raw, params, timestamp, body_md5)
        else:
            query = dict(params or {})
        for name in drop:
            query.pop(name, None)
        quote = encode or (lambda value: urllib.parse.quote(value, safe=""))
        query_string = "&".join(f"{urllib.parse.quote(k, safe='')}={quote(v)}" for k, v in query.items())
        target = path + (f"?{query_string}" if query_string else "")
        payload = raw if send_body is None else send_body
        if self.ssl_context is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            headers = {"Content-Type": "application/json"} if method == "POST" else {}
            conn.request(method, target, body=payload if method == "POST" else None, headers=headers)
            response = conn.getresponse()
            return ApiResult(response.status, response.read(), response.getheaders())
        finally:
            conn.close()

    def post(self, path: str, body: Any, **kwargs: Any) -> ApiResult:
        return self.request("POST", f"/apps/{self.app_id}{path}", body=body, **kwargs)

    def get(self, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> ApiResult:
        return self.request("GET", f"/apps/{self.app_id}{path}", params=params, **kwargs)

    def events(self, body: Any, **kwargs: Any) -> ApiResult:
        return self.post("/events", body, **kwargs)

    def trigger(self, channel: str | list[str], name: str, data: str, **extra: Any) -> ApiResult:
        body: dict[str, Any] = {"name": name, "data": data}
        if isinstance(channel, list):
            body["channels"] = channel
        else:
            body["channel"] = channel
        body.update(extra)
        result = self.events(body)
        assert result.status == 200, result
        return result

    def batch(self, items: list[dict], **kwargs: Any) -> ApiResult:
        return self.post("/batch_events", {"batch": items}, **kwargs)


# ----------------------------------------------------------------------------------------------
# The WebSocket client
# ----------------------------------------------------------------------------------------------


class Event(dict):
    """One received frame, parsed, with its text in `.raw`."""

    raw: str = ""

    def data_json(self) -> Any:
        """`data` parsed again (the double-encoded string of pusher: and pusher_internal: events)."""
        data = self.get("data")
        assert isinstance(data, str), f"data is not a string: {self.raw}"
        return json.loads(data)


class Closed(AssertionError):
    pass


class PusherWS:
    """A Pusher protocol 7 client over `websockets` (sync). Every read has a deadline."""

    def __init__(self, port: int, key: str = DEFAULT_APP["key"], query: str | None = DEFAULT_QUERY,
                 established: bool = True, rest: pusher.Pusher | None = None,
                 timeout: float = TIMEOUT, max_queue: int | None = 1024,
                 ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        scheme = "ws" if ssl_context is None else "wss"
        self.url = f"{scheme}://{host}:{port}/app/{key}" + (f"?{query}" if query is not None else "")
        self.port = port
        self.key = key
        self.rest = rest
        self.received: list[Event] = []
        self.skipped: list[Event] = []
        self.socket_id: str | None = None
        self.activity_timeout: Any = None
        self.conn = ws_connect(self.url, open_timeout=timeout, close_timeout=2, ping_interval=None,
                               compression=None, max_size=None, proxy=None,
                               max_queue=max_queue, legacy=True, ssl=ssl_context)
        if established:
            first = self.recv(timeout)
            assert first.get("event") == "pusher:connection_established", f"first frame {first.raw}"
            assert isinstance(first.get("data"), str), f"connection_established data not a string: {first.raw}"
            info = json.loads(first["data"])
            self.socket_id = info.get("socket_id")
            self.activity_timeout = info.get("activity_timeout")
            assert isinstance(self.socket_id, str) and SOCKET_ID_RE.match(self.socket_id), first.raw

    # --- plumbing ---

    def __enter__(self) -> PusherWS:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass

    def send(self, frame: dict | str) -> None:
        self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    def recv(self, timeout: float = TIMEOUT) -> Event:
        """The next frame; TimeoutError after `timeout`; Closed (with the code) when the server closed."""
        try:
            text = self.conn.recv(timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"no frame within {timeout}s") from None
        except ConnectionClosed as closed:
            raise Closed(f"connection closed: code={close_code(closed)}") from closed
        assert isinstance(text, str), f"binary frame {text!r}"
        event = Event(json.loads(text))
        event.raw = text
        self.received.append(event)
        return event

    def wait_for(self, event: str, channel: str | None = None, timeout: float = TIMEOUT,
                 where: Callable[[Event], bool] | None = None) -> Event:
        """Read until a frame with this event (and channel, and `where`); others go to `skipped`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} (channel {channel!r}) within {timeout}s; "
                                     f"skipped {[e.raw for e in self.skipped[-10:]]}")
            try:
                frame = self.recv(remaining)
            except TimeoutError:
                continue
            if frame.get("event") == event and (channel is None or frame.get("channel") == channel) \
                    and (where is None or where(frame)):
                return frame
            self.skipped.append(frame)

    def frames_until_pong(self, timeout: float = TIMEOUT) -> list[Event]:
        """A barrier: send pusher:ping and return every frame that arrives before the pong."""
        self.send({"event": "pusher:ping", "data": {}})
        deadline = time.monotonic() + timeout
        before = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no pusher:pong within {timeout}s; got {[e.raw for e in before]}")
            try:
                frame = self.recv(remaining)
            except TimeoutError:
                continue
            if frame.get("event") == "pusher:pong":
                return before
            before.append(frame)

    def assert_open(self) -> None:
        """The connection still answers pusher:ping (frames before the pong are kept in skipped)."""
        self.skipped.extend(self.frames_until_pong())

    def assert_silent(self, duration: float, what: Callable[[Event], bool] | None = None) -> None:
        """No frame (or none matching `what`) within `duration`, then a ping/pong barrier."""
        deadline = time.monotonic() + duration
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = self.recv(remaining)
            except TimeoutError:
                break
            assert what is not None and not what(frame), f"unexpected frame {frame.raw}"
            self.skipped.append(frame)
        for frame in self.frames_until_pong():
            assert what is not None and not what(frame), f"unexpected frame {frame.raw}"
            self.skipped.append(frame)

    def wait_closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str, list[Event]]:
        """Read to the close; returns (code or None for no close frame, reason, frames before)."""
        deadline = time.monotonic() + timeout
        frames: list[Event] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout}s; frames: "
                                     f"{[f.raw for f in frames[-10:]]}")
            try:
                text = self.conn.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                return close_code(closed), close_reason(closed), frames
            if isinstance(text, str):
                event = Event(json.loads(text))
                event.raw = text
                frames.append(event)

    def expect_close(self, code: int, timeout: float = TIMEOUT) -> list[Event]:
        got, reason, frames = self.wait_closed(timeout)
        assert got == code, f"close code {got} (reason {reason!r}), expected {code}; " \
                            f"frames before: {[f.raw for f in frames[-5:]]}"
        return frames

    def expect_error(self, code: int, timeout: float = TIMEOUT) -> Event:
        frame = self.wait_for("pusher:error", timeout=timeout)
        assert_error_frame(frame, code)
        return frame

    # --- Pusher operations ---

    def subscribe(self, channel: str, auth: str | None = None, channel_data: str | None = None) -> None:
        data: dict[str, Any] = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})

    def auth_for(self, channel: str, user_id: Any = None, user_info: Any = None) -> dict:
        """The official library's auth payload for this socket (presence when user_id is given)."""
        assert self.rest is not None and self.socket_id is not None
        if user_id is None:
            return self.rest.authenticate(channel=channel, socket_id=self.socket_id)
        custom: dict[str, Any] = {"user_id": user_id}
        if user_info is not None:
            custom["user_info"] = user_info
        return self.rest.authenticate(channel=channel, socket_id=self.socket_id, custom_data=custom)

    def subscribe_ok(self, channel: str, user_id: Any = None, user_info: Any = None,
                     timeout: float = TIMEOUT) -> Any:
        """Subscribe (signing private/presence channels) and return the parsed success data."""
        if channel.startswith(("private-", "presence-")):
            payload = self.auth_for(channel, user_id, user_info)
            self.subscribe(channel, payload["auth"], payload.get("channel_data"))
        else:
            self.subscribe(channel)
        frame = self.wait_for_subscription(channel, timeout)
        return frame.data_json()

    def wait_for_subscription(self, channel: str, timeout: float = TIMEOUT) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no subscription_succeeded for {channel} within {timeout}s; "
                                     f"got {[e.raw for e in self.skipped[-10:]]}")
            try:
                frame = self.recv(remaining)
            except TimeoutError:
                continue
            if frame.get("event") == "pusher_internal:subscription_succeeded" and frame.get("channel") == channel:
                assert isinstance(frame.get("data"), str), f"data not a string: {frame.raw}"
                return frame
            if frame.get("event") in ("pusher:subscription_error", "pusher:error"):
                raise AssertionError(f"subscription to {channel} failed: {frame.raw}")
            self.skipped.append(frame)

    def expect_subscription_error(self, channel: str, kind: str | None, status: int | None = None,
                                  timeout: float = TIMEOUT) -> tuple[Event, dict]:
        """Both a pusher:error 4009 and a pusher:subscription_error for `channel`, in any order.
        Returns (the error frame, the parsed subscription_error data)."""
        deadline = time.monotonic() + timeout
        error = failure = None
        while error is None or failure is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"subscription to {channel}: pusher:error={error and error.raw} "
                                     f"subscription_error={failure and failure.raw} within {timeout}s; "
                                     f"other frames {[e.raw for e in self.skipped[-10:]]}")
            try:
                frame = self.recv(remaining)
            except TimeoutError:
                continue
            name = frame.get("event")
            assert name != "pusher_internal:subscription_succeeded" or frame.get("channel") != channel, \
                f"subscription to {channel} succeeded: {frame.raw}"
            if name == "pusher:error" and error is None:
                error = frame
            elif name == "pusher:subscription_error" and frame.get("channel") == channel and failure is None:
                failure = frame
            else:
                self.skipped.append(frame)
        assert_error_frame(error, 4009)
        assert isinstance(failure.get("data"), str), f"subscription_error data not a string: {failure.raw}"
        data = json.loads(failure["data"])
        assert isinstance(data, dict) and {"type", "error", "status"} <= set(data), failure.raw
        if kind is not None:
            assert data["type"] == kind, failure.raw
        if status is not None:
            assert data["status"] == status, failure.raw
        return error, data

    def signin(self, user_data: dict, timeout: float = TIMEOUT) -> Event:
        """pusher:signin with the official library's token; returns signin_success."""
        assert self.rest is not None and self.socket_id is not None
        payload = self.rest.authenticate_user(socket_id=self.socket_id, user_data=user_data)
        self.send({"event": "pusher:signin", "data": payload})
        frame = self.wait_for("pusher:signin_success", timeout=timeout)
        assert isinstance(frame.get("data"), str), f"signin_success data not a string: {frame.raw}"
        assert json.loads(frame["data"]) == {"user_data": payload["user_data"]}, frame.raw
        return frame

    def client_event(self, channel: str, event: str, data: Any, **extra: Any) -> None:
        frame = {"event": event, "channel": channel, "data": data}
        frame.update(extra)
        self.send(frame)


def close_code(closed: ConnectionClosed) -> int | None:
    return closed.rcvd.code if closed.rcvd is not None else None


def close_reason(closed: ConnectionClosed) -> str:
    return closed.rcvd.reason if closed.rcvd is not None else ""


def assert_error_frame(frame: Event, code: int) -> None:
    """`{"event":"pusher:error","data":{"code":C,"message":"…"}}`: data is an OBJECT."""
    assert frame.get("event") == "pusher:error", frame.raw
    data = frame.get("data")
    assert isinstance(data, dict), f"pusher:error data must be an object: {frame.raw}"
    assert data.get("code") == code, f"expected code {code}: {frame.raw}"
    assert isinstance(data.get("message"), str) and data["message"], frame.raw


def connect_error(port: int, path_query: str, code: int, timeout: float = TIMEOUT) -> Event:
    """Open /app/…, expect a pusher:error with `code` as the first frame, then close `code`."""
    key, _, query = path_query.partition("?")
    ws = PusherWS(port, key=key, query=query if query else None, established=False)
    try:
        frame = ws.recv(timeout)
        assert_error_frame(frame, code)
        ws.expect_close(code, timeout)
        return frame
    finally:
        ws.close()


def retry_connect(port: int, key: str, timeout: float = TIMEOUT) -> PusherWS:
    """Connect until connection_established arrives (after a reload); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return PusherWS(port, key=key, timeout=2)
        except (AssertionError, OSError, ConnectionClosed) as error:
            last = error
            time.sleep(0.1)
    raise AssertionError(f"could not connect with key {key} within {timeout}s: {last}")


__all__ = [
    "DEFAULT_APP", "MASTER_KEY_B64", "SOCKET_ID_RE", "ApiResult", "Closed", "Event", "PusherServer",
    "PusherWS", "RawAPI", "assert_error_frame", "channel_auth", "connect_error", "hmac_hex",
    "make_app", "make_rest", "pusher_bridge_factory", "retry_connect", "retry_until", "rss_bytes",
    "run_bridge_once", "sign_params", "string_to_sign", "user_auth", "write_config_file",
]
