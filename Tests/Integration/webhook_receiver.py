"""A real webhook receiver for the integration tests: a threaded HTTP/1.1 server on 127.0.0.1.

It records every request (method, path, headers in order, raw body, arrival time, attempt and id
headers) and answers from a script the test sets:

    hooks = WebhookReceiver().start()
    hooks.reply(200)                                   # every request: 200 (the default)
    hooks.reply(500, 200)                              # first 500, then 200 for every later one
    hooks.reply(Reply(429, headers={"Retry-After": "2"}), 200)
    hooks.reply(Reply(hang=True), 200)                 # hold the first request open, then 200
    hooks.reply(Reply(drop=True), 200)                 # close the first connection unanswered
    hooks.respond_with(lambda request: Reply(...))     # any rule (per path, per id, per attempt)

`stop()` closes the listener and every open connection (connections are refused while it is
down); `start()` listens again on the SAME port. Every wait has a deadline, and hangs are bounded.

`WebhookReceiver(tls=context)` (a server `ssl.SSLContext`) serves HTTPS instead (the same script and records);
`url()` then says https://; `tls_handshakes` counts the handshakes that completed, and every one
that failed (the sender refused the certificate) is kept in `tls_failures`. A sender that checks
the host name only after the handshake (libcurl with OpenSSL) completes it and then hangs up.

The HTTP server and the request and reply records are in webhook_http.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

import pusher

from webhook_http import HookServer, Received, Reply, as_reply, reset_connection

MAX_HANG = 30.0  # a hung request is released after this even if the test forgets to
ID_RE = re.compile(r"\A[\x21-\x7e]{1,200}\Z")


class WebhookReceiver:
    """The receiver; thread-safe. Use `start()`, `url(path)`, `reply(...)`, `wait_for(...)`, `stop()`."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None):
        self.port = port
        self._tls = tls
        self._tls_failures: list[str] = []
        self._tls_handshakes = 0
        self._server: HookServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._requests: list[Received] = []
        self._connections: set[socket.socket] = set()
        self._release = threading.Event()
        self._script: list[Reply] = []
        self._then = Reply(200)
        self._responder: Callable[[Received], Reply | int] | None = None

    # --- lifecycle ---

    def start(self, bind_timeout: float = 5.0) -> WebhookReceiver:
        """Listen (again) on 127.0.0.1; the first start picks an ephemeral port, later ones reuse it."""
        assert self._server is None, "receiver already running"
        deadline = time.monotonic() + bind_timeout
        while True:
            try:
                server = HookServer(("127.0.0.1", self.port), self, self._tls)
                break
            except OSError as error:
                if self.port == 0 or time.monotonic() > deadline:
                    raise AssertionError(f"receiver could not listen on 127.0.0.1:{self.port}: {error}")
                time.sleep(0.05)
        self._server = server
        self.port = server.server_address[1]
        self._release.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"webhook-receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection; hung requests are released."""
        server, self._server = self._server, None
        if server is None:
            return
        self._release.set()
        server.shutdown()
        server.server_close()
        with self._cond:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            reset_connection(conn)
        if self._thread is not None:
            self._thread.join(5)

    @property
    def running(self) -> bool:
        return self._server is not None

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        assert self.port, "start() the receiver first"
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    # --- the script ---

    def reply(self, *replies: Reply | int, then: Reply | int | None = None) -> None:
        """Answer the next requests with `replies` in order, then repeat the last one
        (or `then`, when given)."""
        with self._cond:
            self._responder = None
            items = [as_reply(r) for r in replies] or [Reply(200)]
            if then is None:
                self._script, self._then = items[:-1], items[-1]
            else:
                self._script, self._then = items, as_reply(then)

    def respond_with(self, responder: Callable[[Received], Reply | int]) -> None:
        """Decide each answer with `responder(request)` (called with earlier requests recorded)."""
        with self._cond:
            self._responder = responder

    def release(self) -> None:
        """Let go of every hung request (they are closed unanswered)."""
        self._release.set()

    # --- what arrived ---

    @property
    def requests(self) -> list[Received]:
        with self._cond:
            return list(self._requests)

    @property
    def tls_failures(self) -> list[str]:
        """Why each failed TLS handshake failed (the sender's alert, as the ssl module words it)."""
        with self._cond:
            return list(self._tls_failures)

    @property
    def tls_handshakes(self) -> int:
        """TLS handshakes completed so far."""
        with self._cond:
            return self._tls_handshakes

    def delivered(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx (optionally to one path)."""
        return [r for r in self.requests if r.delivered and (path is None or r.path == path)]

    def by_id(self, path: str | None = None) -> dict[str, list[Received]]:
        """Every request grouped by X-Bridge-Webhook-Id, in arrival order."""
        groups: dict[str, list[Received]] = {}
        for request in self.requests:
            if path is None or request.path == path:
                groups.setdefault(request.id or "", []).append(request)
        return groups

    def delivered_events(self, path: str | None = None) -> list[dict]:
        """The events of every webhook answered 2xx, once per webhook id (duplicates collapsed)."""
        seen: set[str] = set()
        events: list[dict] = []
        for request in self.delivered(path):
            key = request.id or f"no-id-{id(request)}"
            if key in seen:
                continue
            seen.add(key)
            events.extend(request.events)
        return events

    def wait_for(self, check: Callable[[list[Received]], Any], timeout: float, what: str = "") -> Any:
        """Wait until `check(requests)` is truthy and return its value; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = check(list(self._requests))
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = self._requests[-8:]
                    raise AssertionError(f"receiver: {what or 'condition'} not met within {timeout}s; "
                                         f"{len(self._requests)} requests, last: {tail}")
                self._cond.wait(min(remaining, 0.1))

    def wait_count(self, count: int, timeout: float, path: str | None = None) -> list[Received]:
        return self.wait_for(
            lambda reqs: [r for r in reqs if path is None or r.path == path]
            if len([r for r in reqs if path is None or r.path == path]) >= count else None,
            timeout, f"{count} requests" + (f" to {path}" if path else ""))

    def quiet(self, duration: float, path: str | None = None) -> list[Received]:
        """Sleep `duration` and return what arrived meanwhile (to assert that nothing did)."""
        before = len(self.requests)
        time.sleep(duration)
        return [r for r in self.requests[before:] if path is None or r.path == path]

    # --- called by the HTTP server's handler (webhook_http.py) ---

    def track_connection(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def record_tls_handshake(self, error: Exception | None) -> None:
        with self._cond:
            if error is None:
                self._tls_handshakes += 1
            else:
                self._tls_failures.append(str(error))
            self._cond.notify_all()

    def _choose(self, request: Received) -> Reply:
        with self._cond:
            if self._responder is not None:
                responder = self._responder
            else:
                responder = None
                reply = self._script.pop(0) if self._script else self._then
        if responder is not None:
            reply = as_reply(responder(request))
        return reply

    def _record(self, request: Received) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    def serve(self, handler: BaseHTTPRequestHandler, request: Received) -> None:
        reply = self._choose(request)  # the responder sees the earlier requests, not this one
        request.reply = reply
        self._record(request)
        if reply.drop:
            handler.close_connection = True
            reset_connection(handler.connection)
            return
        if reply.hang:
            self._release.wait(MAX_HANG)
            handler.close_connection = True
            reset_connection(handler.connection)
            return
        if reply.delay:
            if self._release.wait(reply.delay):
                handler.close_connection = True
                return
        with self._cond:
            request.answered = reply.status  # set first: the sender can't act before the write
            self._cond.notify_all()
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
            handler.wfile.flush()
        except OSError:
            with self._cond:
                request.answered = None
            handler.close_connection = True


# ----------------------------------------------------------------------------------------------
# What the tests assert about webhooks (test_webhooks.py, test_cluster_state.py)
# ----------------------------------------------------------------------------------------------


def target(hooks: WebhookReceiver, path: str = "/hook", **settings) -> dict:
    entry = {"url": hooks.url(path)}
    entry.update(settings)
    return entry


def check_webhook(request: Received, app: dict) -> dict:
    """Every webhook: POST, exact Content-Type, key, HMAC of the exact body, User-Agent, id and
    attempt headers, `{"time_ms","events"}`, and accepted by the official library. Returns the body."""
    assert request.method == "POST", request
    assert request.header_all("Content-Type") == ["application/json"], \
        f"Content-Type must be exactly application/json: {request.headers}"
    assert request.header_all("X-Pusher-Key") == [app["key"]], request.headers
    signature = request.header("X-Pusher-Signature")
    expected = hmac.new(app["secret"].encode(), request.body, hashlib.sha256).hexdigest()
    assert signature == expected, f"signature {signature!r} is not HMAC-SHA256 of the body: {request}"
    assert "Bridge" in (request.header("User-Agent") or ""), request.headers
    assert request.id and ID_RE.match(request.id), f"bad X-Bridge-Webhook-Id: {request.headers}"
    assert request.attempt is not None and request.attempt >= 1, request.headers
    body = json.loads(request.body)
    assert set(body) == {"time_ms", "events"}, request.body
    assert isinstance(body["time_ms"], int), request.body
    assert isinstance(body["events"], list) and body["events"], request.body
    client = pusher.Pusher(app_id=str(app["id"]), key=app["key"], secret=app["secret"])
    assert client.validate_webhook(request.header("X-Pusher-Key"), signature, request.body.decode()) == body, \
        f"official validate_webhook refused {request}"
    return body


def contains_all(have: list[dict], want: list[dict]) -> bool:
    """Whether the multiset `have` contains the multiset `want` (events are dicts)."""
    counts = Counter(json.dumps(event, sort_keys=True) for event in have)
    counts.subtract(json.dumps(event, sort_keys=True) for event in want)
    return all(count >= 0 for count in counts.values())


def wait_events(hooks: WebhookReceiver, want: list[dict], timeout: float, path: str | None = None) -> list[dict]:
    """Wait until every event of `want` has been delivered (answered 2xx); returns all delivered."""
    def check(_):
        have = hooks.delivered_events(path)
        return have if contains_all(have, want) else None
    try:
        return hooks.wait_for(check, timeout, "expected events")
    except AssertionError:
        have = hooks.delivered_events(path)
        missing = [e for e in want if not contains_all(have, [e])]
        raise AssertionError(f"events not delivered within {timeout}s: {missing[:10]}; "
                             f"delivered: {have[-10:]}") from None


def occupied(channel: str) -> dict:
    return {"name": "channel_occupied", "channel": channel}


def vacated(channel: str) -> dict:
    return {"name": "channel_vacated", "channel": channel}
