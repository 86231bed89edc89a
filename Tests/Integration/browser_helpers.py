"""Headless Chromium for the browser tests, and a small "test backend" web app beside bridge.

- `browser` fixture: a factory; `browser()` starts one headless Chromium (selenium, chromedriver
  at /usr/bin/chromedriver) and returns its driver; `browser(flag, ...)` adds command-line flags.
  Two calls give two independent pages (two users). Every driver quits at teardown; the console
  logs of each are printed then, so pytest shows them with a failing test.
- `wait_js(driver, expression, timeout)`: polls a JavaScript expression until it is truthy and
  returns its value; on timeout it fails with the expression, its last value and the console log.
- `web_backend` fixture: a `TestBackend` (threaded http.server on 127.0.0.1:0, so another origin
  than bridge) serving HTML pages, /jquery.js (Debian's libjs-jquery), any file, and
  POST /pusher/auth, which signs private and presence subscriptions with the app secret
  (PROTOCOL.md §1.7) as an application's auth endpoint would. `TestBackend(tls=context)` serves
  the same over https (test_browser_tls.py).
- `fetch_session_jwt(port, token)`: the article's PageController step, done server-side:
  POST /api/sessions with the organization's secret token, returns the JWT.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
JQUERY = Path("/usr/share/javascript/jquery/jquery.min.js")
WAIT_TIMEOUT = 10.0
PAGE_LOAD_TIMEOUT = 15.0


# ----------------------------------------------------------------------------------------------
# The browser
# ----------------------------------------------------------------------------------------------


def start_chromium(*extra_flags: str) -> webdriver.Chrome:
    """One headless Chromium with its own throw-away profile (plus `extra_flags`); the caller
    quits it."""
    for path in (CHROMEDRIVER, CHROMIUM):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: run scripts/install-deps.sh test "
                        "(apt packages chromium and chromium-driver)")
    profile = tempfile.mkdtemp(prefix="bridge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--user-data-dir={profile}", "--window-size=1024,768",
                 # Nothing but the test: no first-run UI, no background downloads or services.
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--mute-audio",
                 "--disable-features=Translate,OptimizationHints,MediaRouter", *extra_flags):
        options.add_argument(flag)
    # Keep every console message (the default level drops console.log).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    driver.set_script_timeout(PAGE_LOAD_TIMEOUT)
    driver.bridge_profile = profile
    driver.bridge_console = []
    return driver


def console_logs(driver: webdriver.Chrome) -> list[str]:
    """Every console message of this driver so far, as "LEVEL message" lines.

    chromedriver hands out each entry once, so entries are kept on the driver as they are read."""
    try:
        for entry in driver.get_log("browser"):
            driver.bridge_console.append(f"{entry.get('level')} {entry.get('message')}")
    except WebDriverException:
        pass  # the browser is gone; what was read before is all there is
    return list(driver.bridge_console)


def quit_chromium(driver: webdriver.Chrome) -> None:
    try:
        driver.quit()
    except WebDriverException:
        pass
    shutil.rmtree(getattr(driver, "bridge_profile", ""), ignore_errors=True)


@pytest.fixture
def browser():
    """Factory: `browser(*flags)` → a new headless Chromium driver; all quit at teardown."""
    drivers: list[webdriver.Chrome] = []

    def open_browser(*flags: str) -> webdriver.Chrome:
        driver = start_chromium(*flags)
        drivers.append(driver)
        return driver

    yield open_browser

    for index, driver in enumerate(drivers):
        logs = console_logs(driver)
        if logs:
            # Captured output: pytest shows it only when the test failed.
            print(f"--- console of browser {index} ---")
            print("\n".join(logs))
        quit_chromium(driver)


def evaluate(driver: webdriver.Chrome, expression: str) -> Any:
    """The value of one JavaScript expression in the page."""
    return driver.execute_script(f"return ({expression});")


def wait_js(driver: webdriver.Chrome, expression: str, timeout: float = WAIT_TIMEOUT,
            message: str = "") -> Any:
    """Poll `expression` until it is truthy for JavaScript; returns its value. Fails after
    `timeout` seconds with the last value (or exception) and the page's console log."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            # JavaScript's truthiness, not Python's: [] and {} count, a function comes back as {}.
            truthy, last = driver.execute_script(f"var value = ({expression}); return [!!value, value];")
            if truthy:
                return last
        except WebDriverException as error:
            last = f"<{type(error).__name__}: {error.msg}>"
        if time.monotonic() >= deadline:
            logs = "\n".join(console_logs(driver)[-30:])
            pytest.fail(f"{message or 'condition'} not true within {timeout}s: {expression}\n"
                        f"last value: {last!r}\nconsole:\n{logs}")
        time.sleep(0.05)


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_TIMEOUT, message: str = "") -> Any:
    """Poll a Python predicate until truthy; returns its value or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{message or 'condition'} not true within {timeout}s")
        time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# The test backend (an application's web server, on its own origin)
# ----------------------------------------------------------------------------------------------


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def channel_auth(key: str, secret: str, socket_id: str, channel: str,
                 channel_data: str | None = None) -> dict[str, str]:
    """The auth endpoint's answer (PROTOCOL.md §1.7): `{"auth":"key:hex"}`, plus the exact
    channel_data string that was signed for presence channels."""
    if channel_data is None:
        return {"auth": f"{key}:{sign(secret, f'{socket_id}:{channel}')}"}
    return {"auth": f"{key}:{sign(secret, f'{socket_id}:{channel}:{channel_data}')}",
            "channel_data": channel_data}


Route = Callable[["Request"], tuple[int, str, bytes]]


class Request:
    """What a route sees: method, path, query and form fields (first value of each), headers."""

    def __init__(self, method: str, path: str, query: dict[str, str], form: dict[str, str],
                 headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.form = form
        self.headers = headers
        self.body = body


class TestBackend:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) standing in for an application.

    `page(path, html)` / `file(path, file, type)` / `route(path, fn)` add GET routes (a route
    function gets a Request and returns (status, content type, body)); /jquery.js is built in.
    `set_app(key, secret)` turns on POST /pusher/auth: it signs `socket_id:channel_name` and,
    for presence channels, channel_data {"user_id": form user_id, "user_info": {"name": form
    user_name}} (the page chooses them through the client's auth params). Every request is
    recorded in `requests` as (method, path, form).

    With `tls` (a server SSLContext) it speaks https only; handshakes the client gave up on (a
    browser refusing the certificate) are recorded in `tls_failures`.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.tls_failures: list[str] = []
        self.app_key: str | None = None
        self.app_secret: str | None = None
        self._lock = threading.Lock()
        self.file("/jquery.js", JQUERY, "application/javascript")
        self.route("/favicon.ico", lambda _: (204, "image/x-icon", b""))  # no 404 noise in the console
        self.route("/pusher/auth", self._pusher_auth, method="POST")
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                backend._dispatch(self, "GET")

            def do_POST(self) -> None:
                backend._dispatch(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass  # keep pytest's output clean

        self.server = _BackendServer(("127.0.0.1", 0), Handler, tls, self._tls_failed)
        self.port = self.server.server_address[1]
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="test-backend",
                                        daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # --- routes ---

    def route(self, path: str, handler: Route, method: str = "GET") -> None:
        self.routes[(method, path)] = handler

    def page(self, path: str, html: str | Callable[[], str]) -> None:
        """An HTML page; a callable is rendered on every request (a fresh JWT per page view)."""
        def render(_: Request) -> tuple[int, str, bytes]:
            text = html() if callable(html) else html
            return 200, "text/html; charset=utf-8", text.encode()
        self.route(path, render)

    def file(self, path: str, file: Path | str, content_type: str) -> None:
        """A file read on every request (so a rebuilt file is served fresh)."""
        self.route(path, lambda _: (200, content_type, Path(file).read_bytes()))

    def _tls_failed(self, error: Exception) -> None:
        with self._lock:
            self.tls_failures.append(str(error))

    def set_app(self, key: str, secret: str) -> None:
        self.app_key, self.app_secret = key, secret

    def auth_requests(self) -> list[dict[str, str]]:
        with self._lock:
            return [form for method, path, form in self.requests if path == "/pusher/auth"]

    def _pusher_auth(self, request: Request) -> tuple[int, str, bytes]:
        if self.app_key is None or self.app_secret is None:
            return 500, "text/plain", b"no app configured (TestBackend.set_app)"
        socket_id = request.form.get("socket_id", "")
        channel = request.form.get("channel_name", "")
        if not socket_id or not channel.startswith(("private-", "presence-")):
            return 403, "application/json", b'{"error":"forbidden"}'
        channel_data = None
        if channel.startswith("presence-"):
            user_id = request.form.get("user_id") or socket_id
            channel_data = json.dumps({"user_id": user_id,
                                       "user_info": {"name": request.form.get("user_name", user_id)}})
        answer = channel_auth(self.app_key, self.app_secret, socket_id, channel, channel_data)
        return 200, "application/json", json.dumps(answer).encode()

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        form: dict[str, str] = {}
        if "application/x-www-form-urlencoded" in (handler.headers.get("Content-Type") or ""):
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append((method, parsed.path, form))
        route = self.routes.get((method, parsed.path))
        if route is None:
            status, content_type, payload = 404, "text/plain", b"not found"
        else:
            request = Request(method, parsed.path, query, form, dict(handler.headers.items()), body)
            try:
                status, content_type, payload = route(request)
            except Exception as error:  # shown to the test through the page, never swallowed silently
                status, content_type, payload = 500, "text/plain", f"route failed: {error!r}".encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(payload)


class _BackendServer(ThreadingHTTPServer):
    """ThreadingHTTPServer, with the TLS handshake (when there is a context) done in the
    connection's own thread, so that a client stalling or refusing it holds up no other."""

    daemon_threads = True
    HANDSHAKE_TIMEOUT = 10.0

    def __init__(self, address, handler, tls: ssl.SSLContext | None,
                 on_tls_failure: Callable[[Exception], None]):
        super().__init__(address, handler)
        self.tls = tls
        self.on_tls_failure = on_tls_failure

    def finish_request(self, request: socket.socket, client_address) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(self.HANDSHAKE_TIMEOUT)
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.on_tls_failure(error)
            return
        secure.settimeout(None)  # then as the plain server: a kept-alive connection may idle
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()


@pytest.fixture
def web_backend():
    backend = TestBackend()
    yield backend
    backend.close()


# ----------------------------------------------------------------------------------------------
# Seed sessions
# ----------------------------------------------------------------------------------------------


def fetch_session_jwt(bridge_port: int, token: str, timeout: float = 5.0) -> str:
    """The article's PageController: POST /api/sessions token=SECRET (form), read "jwt"."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{bridge_port}/api/sessions",
        data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    jwt = answer.get("jwt")
    assert isinstance(jwt, str) and jwt.count(".") == 2, f"no JWT in {answer}"
    return jwt


__all__ = [
    "CHROMEDRIVER", "JQUERY", "Request", "TestBackend", "WAIT_TIMEOUT", "browser", "channel_auth",
    "console_logs", "evaluate", "fetch_session_jwt", "quit_chromium", "start_chromium", "wait_js",
    "wait_until", "web_backend",
]
