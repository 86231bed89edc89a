"""End to end: examples/rails chatting through Bridge (issue 6).

Bridge runs with an organization and an app made by the CLI, the app's webhook pointing at the
Rails example (`bin/rails server`, development environment, its SQLite file in tmp_path). Two
clients join the chat as the page does, with the JWT, app key and user name the page rendered
for them, over a real WebSocket: they talk over the socket (seed mode) and through the app's form
(stored, then published by an ActiveJob with a signed HTTP API request). Every message must reach
both clients and be stored exactly once (read back from the app's history as JSON). Then the
Rails server stops, the clients keep talking, it starts again on the same port and database, and
Bridge's retried webhooks must land: nothing lost, nothing stored twice. Last, the page itself
(chat.js) joins in from headless Chromium: it lists who is online, shows what arrives and sends
both ways.

Needs Debian's ruby-rails, ruby-sqlite3, bundler, puma, ruby-webrick and Chromium
(scripts/install-deps.sh test).
"""

from __future__ import annotations

import collections
import http.cookiejar
import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

# `browser` is a fixture: imported so that pytest finds it here.
from browser_helpers import browser, wait_js  # noqa: F401
from conftest import REPO_ROOT, clean_env
from pusher_helpers import PusherWS
from seed_helpers import cli_ok, seed_query, wait_until

RAILS_DIR = REPO_ROOT / "examples" / "rails"
BOOT_TIMEOUT = 90.0      # bin/rails server until it answers, on a busy 2-core machine
DELIVERY_TIMEOUT = 20.0  # a message to every client, or into the database
CHAT, PRESENCE, EVENT = "general", "presence-general", "new_message"


# ----------------------------------------------------------------------------------------------
# The Rails app
# ----------------------------------------------------------------------------------------------


def run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, cwd=RAILS_DIR, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(args)}` still running after {timeout}s")


def setup_app(env: dict[str, str]) -> None:
    """bin/setup: `bundle install --local` when needed (Debian's gems), then `bin/rails db:prepare`."""
    if shutil.which("bundle") is None or shutil.which("ruby") is None:
        pytest.fail("ruby and bundler are missing: run scripts/install-deps.sh test")
    done = run(["bin/setup"], env, BOOT_TIMEOUT)
    assert done.returncode == 0, f"bin/setup failed:\n{done.stdout}\n{done.stderr}"


def free_port() -> int:
    # The webhook URL needs the port before the server starts (and again after its restart).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RailsServer:
    """`bin/rails server` on a fixed loopback port; stop() and start() again keep port and database."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path, pid_path: Path):
        self.port = port
        self.env = env
        self.log_path = log_path
        self.pid_path = pid_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                ["bin/rails", "server", "-b", "127.0.0.1", "-p", str(self.port), "-P", str(self.pid_path)],
                cwd=RAILS_DIR, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"bin/rails server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/messages.json", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        pytest.fail(f"bin/rails server did not answer within {BOOT_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def history(self) -> list[dict]:
        """Every stored message, oldest first (the history page as JSON)."""
        with urllib.request.urlopen(self.url + "/messages.json", timeout=10) as answer:
            return json.loads(answer.read())


class Visitor:
    """One visitor of the chat page: a cookie session with the app, what the page rendered for
    it, and a WebSocket to Bridge opened with that (as chat.js does)."""

    PAGE_VARIABLE = re.compile(r'window\.(\w+) = "([^"]*)";')

    def __init__(self, rails: RailsServer, bridge_port: int):
        self.rails = rails
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with self.opener.open(rails.url + "/", timeout=30) as answer:
            html = answer.read().decode()
        self.page = dict(self.PAGE_VARIABLE.findall(html))
        assert self.page.get("guardian_token", "").count(".") == 2, f"no JWT in the page: {self.page}"
        assert self.page["pusher_host"] == f"127.0.0.1:{bridge_port}", self.page
        assert f'src="http://127.0.0.1:{bridge_port}/js/pusher.js"' in html
        self.csrf_token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
        self.name = self.page["user_name"]
        self.ws = PusherWS(bridge_port, key=self.page["app_key"],
                           query=seed_query(self.page["guardian_token"], self.name))
        self.received: collections.Counter[str] = collections.Counter()

    def join(self, channel: str) -> dict:
        self.ws.subscribe(channel)  # seed mode: no auth, even for presence
        return self.ws.wait_for_subscription(channel).data_json()

    def send_over_socket(self, text: str) -> None:
        """chat.js's sendPusher: trigger new_message on the chat channel."""
        self.ws.client_event(CHAT, EVENT, {"name": self.name, "message": text})

    def send_through_app(self, text: str) -> None:
        """chat.js's sendApp: the form, posted to the app (which answers 202 and enqueues the job)."""
        form = urllib.parse.urlencode({"message[name]": self.name, "message[body]": text,
                                       "authenticity_token": self.csrf_token}).encode()
        request = urllib.request.Request(self.rails.url + "/messages", data=form,
                                         headers={"Accept": "application/json"})
        with self.opener.open(request, timeout=30) as answer:
            assert answer.status == 202, answer.status
            assert json.loads(answer.read())["message"] == text

    def receive(self, texts: set[str], timeout: float = DELIVERY_TIMEOUT) -> None:
        """Read new_message events until every one of `texts` arrived."""
        deadline = time.monotonic() + timeout
        while not texts <= set(self.received):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.name} never got {sorted(texts - set(self.received))}"
            self.received[message_text(self.ws.wait_for(EVENT, CHAT, timeout=remaining))] += 1

    def assert_each_once(self) -> None:
        self.ws.assert_open()  # a ping/pong barrier: anything sent before is in by now
        for frame in self.ws.skipped:
            if frame.get("event") == EVENT:
                self.received[message_text(frame)] += 1
        self.ws.skipped.clear()
        twice = {text: n for text, n in self.received.items() if n != 1}
        assert not twice, f"{self.name} got messages more than once: {twice}"


def message_text(frame: dict) -> str:
    # Over the socket the sender's object passes through; the HTTP API sends a JSON string.
    data = frame["data"]
    return (json.loads(data) if isinstance(data, str) else data)["message"]


def backlog(bridge_port: int) -> dict:
    # The server also serves its default app (no config file): its key:secret reads the backlog.
    request = urllib.request.Request(f"http://127.0.0.1:{bridge_port}/webhooks/status",
                                     headers={"Authorization": "Bearer app-key:app-secret"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def undelivered(status: dict) -> int:
    return status["pending"] + status["in_flight"] + status["waiting"]


def assert_stored_once(rails: RailsServer, bridge_port: int, expected: dict[str, str]) -> None:
    """Wait for every expected message (text → "socket" or "app") in the database and for Bridge
    to have nothing left to deliver; then each is there exactly once, from the right source."""
    wait_until(lambda: expected.keys() <= {m["body"] for m in rails.history()}, DELIVERY_TIMEOUT,
               0.2, f"all {len(expected)} messages stored")
    wait_until(lambda: undelivered(backlog(bridge_port)) == 0, DELIVERY_TIMEOUT, 0.2, "webhook backlog empty")
    stored = collections.Counter((m["body"], m["source"]) for m in rails.history())
    assert stored == collections.Counter(expected.items()), \
        f"stored {dict(stored)}, expected each of {expected} once"


def text_of(element_id: str) -> str:
    """A JavaScript expression: the text of the page's element with this id."""
    return f"document.getElementById({json.dumps(element_id)}).textContent"


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------------------------------


def test_rails_example_chats_stores_every_message_once_and_survives_its_own_restart(bridge, browser, tmp_path):
    data_dir = tmp_path / "bridge-data"
    rails_port = free_port()
    org = cli_ok(data_dir, "orgs", "create", "acme-inc", "--name", "Acme Inc")
    app = cli_ok(data_dir, "apps", "create", "--org", "acme-inc", "--name", "chat",
                 "--webhook", f"http://127.0.0.1:{rails_port}/bridge/webhooks")
    server = bridge("--data-dir", str(data_dir), "--webhook-retry-delay", "0.2",
                    "--webhook-retry-max-delay", "1", echo_path=None)

    # The README's exports, a development server, and its database in tmp_path.
    env = {k: v for k, v in clean_env().items() if not k.startswith(("PUSHER_LITE_", "RAILS_", "DATABASE_URL"))}
    env.update(PUSHER_LITE_HOST=f"127.0.0.1:{server.port}", PUSHER_LITE_ORGANIZATION=org["slug"],
               PUSHER_LITE_SECRET_TOKEN=org["secret_token"], PUSHER_LITE_APP_ID=app["id"],
               PUSHER_LITE_APP_KEY=app["key"], PUSHER_LITE_APP_SECRET=app["secret"],
               RAILS_ENV="development", RAILS_LOG_TO_STDOUT="1", DATABASE_URL=f"sqlite3:{tmp_path / 'chat.sqlite3'}")
    setup_app(env)
    rails = RailsServer(rails_port, env, tmp_path / "rails.log", tmp_path / "rails.pid")
    rails.start()
    ana = bob = None
    try:
        ana = Visitor(rails, server.port)
        bob = Visitor(rails, server.port)
        assert ana.name != bob.name
        for visitor in (ana, bob):
            visitor.join(CHAT)
        assert ana.join(PRESENCE)["presence"]["ids"] == [ana.name]
        assert sorted(bob.join(PRESENCE)["presence"]["ids"]) == sorted([ana.name, bob.name])
        joined = ana.ws.wait_for("pusher_internal:member_added", PRESENCE)
        assert joined.data_json()["user_id"] == bob.name

        # Both ways of sending, from both visitors.
        expected: dict[str, str] = {}
        for round_ in range(3):
            for visitor in (ana, bob):
                text = unique(f"{visitor.name} socket {round_}")
                visitor.send_over_socket(text)
                expected[text] = "socket"
        for visitor in (ana, bob):
            text = unique(f"{visitor.name} app")
            visitor.send_through_app(text)
            expected[text] = "app"
        for visitor in (ana, bob):
            visitor.receive(set(expected))
        assert_stored_once(rails, server.port, expected)

        # The app goes away; the chat goes on; its webhooks wait in Bridge.
        rails.stop()
        during_outage = {}
        for visitor, count in ((ana, 3), (bob, 2)):
            for n in range(count):
                text = unique(f"{visitor.name} outage {n}")
                visitor.send_over_socket(text)
                during_outage[text] = "socket"
        for visitor in (ana, bob):
            visitor.receive(set(during_outage))
        wait_until(lambda: backlog(server.port)["waiting"] + backlog(server.port)["in_flight"] > 0,
                   DELIVERY_TIMEOUT, 0.1, "Bridge retrying webhooks to the stopped app")
        expected.update(during_outage)

        rails.start()
        assert_stored_once(rails, server.port, expected)

        # And the job still publishes after the restart.
        text = unique(f"{bob.name} after restart")
        bob.send_through_app(text)
        expected[text] = "app"
        for visitor in (ana, bob):
            visitor.receive({text})
        assert_stored_once(rails, server.port, expected)

        # The page itself (chat.js) in Chromium: who is online, what arrives, both ways of sending.
        page = browser()
        page.get(rails.url + "/")
        carol = wait_js(page, "window.user_name")
        for other in (ana, bob):
            other.ws.wait_for("pusher_internal:member_added", PRESENCE,
                              where=lambda frame: frame.data_json()["user_id"] == carol)
        everyone = ", ".join(sorted([ana.name, bob.name, carol]))
        wait_js(page, f"{text_of('members')} === {json.dumps(everyone)}", message="the page lists who is online")
        text = unique(f"{ana.name} to the page")
        ana.send_over_socket(text)
        expected[text] = "socket"
        wait_js(page, f"{text_of('chat')}.includes({json.dumps(text)})", message="the page shows what arrives")
        for through_app in (False, True):
            if through_app:
                page.find_element(By.ID, "channel").click()  # "send through the app"
            text = unique(f"{carol} from the page" + (" through the app" if through_app else ""))
            page.find_element(By.ID, "message").send_keys(text, Keys.ENTER)
            expected[text] = "app" if through_app else "socket"
            wait_js(page, f"{text_of('chat')}.includes({json.dumps(text)})", message="the page shows its own message")
        for other in (ana, bob):
            other.receive(set(expected))
        assert_stored_once(rails, server.port, expected)

        for other in (ana, bob):
            other.assert_each_once()
            assert set(other.received) == set(expected)
        assert backlog(server.port)["dead"] == 0
    except BaseException:
        print(f"--- rails log (tail) ---\n{rails.log_tail(80)}")
        raise
    finally:
        for visitor in (ana, bob):
            if visitor is not None:
                visitor.ws.close()
        rails.stop()
