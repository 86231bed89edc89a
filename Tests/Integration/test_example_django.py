"""End to end: the Django example (examples/django) chatting through a real Bridge.

Bridge runs with the example's bridge.json (its webhook pointed at the Django server under test),
Django runs with `manage.py runserver` on a fresh SQLite database. Two chatters, each a Django
session plus a real WebSocket client, join the presence channel with signatures from Django's auth
endpoint and send messages both ways the page does: client events straight through Bridge (stored
from its client_event webhooks) and form posts that Django's worker publishes. Every message must
reach the other chatter and be stored exactly once. Then Django is killed, the chat goes on, and
after a restart the webhooks Bridge held during the outage must all land.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, get
from pusher_helpers import PusherWS, retry_until

EXAMPLE = REPO_ROOT / "examples" / "django"
CHANNEL = "presence-chat"
START_TIMEOUT = 30.0
STORE_TIMEOUT = 20.0
FAST_RETRIES = ["--webhook-retry-delay", "0.2", "--webhook-retry-max-delay", "1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DjangoServer:
    """`manage.py runserver --noreload` on a fixed port (Bridge's webhook URL names it), its output
    in a log file."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path):
        self.port = port
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=EXAMPLE, env=self.env, check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                cwd=EXAMPLE, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if not retry_until(self.answers, START_TIMEOUT, 0.1):
            self.stop()
            pytest.fail(f"Django did not answer within {START_TIMEOUT}s; log:\n{self.log_tail()}")

    def answers(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            return requests.get(f"{self.url}/history", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """Like a crash: no clean-up in the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Chatter:
    """One person in the chat: a Django session (cookies, CSRF token) and a Bridge WebSocket."""

    def __init__(self, django: DjangoServer, bridge_port: int, name: str):
        self.name = name
        self.django = django
        self.http = requests.Session()
        page = self.http.get(django.url + "/", timeout=5)
        assert page.status_code == 200 and 'action="/join"' in page.text, page.text[:300]
        joined = self.http.post(django.url + "/join", {"name": name}, headers=self.csrf(), timeout=5)
        assert joined.status_code == 200 and "bridge-config" in joined.text, joined.text[:300]
        self.ws = PusherWS(bridge_port, key="app-key")
        self.user_id: str | None = None

    def csrf(self) -> dict[str, str]:
        return {"X-CSRFToken": self.http.cookies["csrftoken"]}

    def join_channel(self) -> dict:
        """Subscribe to the presence channel with the auth Django signs; returns the presence data."""
        answer = self.http.post(self.django.url + "/pusher/auth",
                                {"socket_id": self.ws.socket_id, "channel_name": CHANNEL},
                                headers=self.csrf(), timeout=5)
        assert answer.status_code == 200, answer.text
        auth = answer.json()
        self.user_id = json.loads(auth["channel_data"])["user_id"]
        self.ws.subscribe(CHANNEL, auth["auth"], auth["channel_data"])
        return self.ws.wait_for_subscription(CHANNEL).data_json()["presence"]

    def send_direct(self, text: str) -> str:
        """A client event, as the page's "Send directly" button sends it."""
        uid = uuid.uuid4().hex
        self.ws.client_event(CHANNEL, "client-message", {"id": uid, "name": self.name, "text": text})
        return uid

    def post(self, text: str) -> str:
        """A form post, as the page's "Send" button sends it (Django publishes it from its worker)."""
        uid = uuid.uuid4().hex
        answer = self.http.post(self.django.url + "/messages", {"id": uid, "text": text},
                                headers={**self.csrf(), "Accept": "application/json"}, timeout=5)
        assert answer.status_code == 202 and answer.json() == {"id": uid}, answer.text
        return uid

    def expect(self, event: str, uid: str, text: str) -> None:
        frame = self.ws.wait_for(event, CHANNEL, timeout=10, where=lambda f: event_data(f).get("id") == uid)
        assert event_data(frame)["text"] == text, frame.raw


def event_data(frame: dict) -> dict:
    """An event's data: a JSON string from the HTTP API, passed through as sent for client events."""
    data = frame.get("data")
    return json.loads(data) if isinstance(data, str) else data


def stored_messages(database: Path) -> list[tuple[str, str, str, str, str]]:
    with closing(sqlite3.connect(database, timeout=10)) as db:
        return db.execute("SELECT uid, user_id, user_name, text, source FROM chat_message").fetchall()


def wait_stored(database: Path, expected: dict[str, tuple[str, str, str, str]], django: DjangoServer) -> None:
    """Until the table holds exactly `expected` ({uid: (user_id, name, text, source)}), bounded."""
    def exact() -> bool:
        rows = stored_messages(database)
        return len(rows) == len(expected) and {uid: rest for uid, *rest in rows} == \
            {uid: list(fields) for uid, fields in expected.items()}

    if not retry_until(exact, STORE_TIMEOUT, 0.2):
        rows = stored_messages(database)
        missing = set(expected) - {row[0] for row in rows}
        pytest.fail(f"stored {len(rows)} messages, expected {len(expected)}; missing {missing}; "
                    f"rows {rows}\nDjango log:\n{django.log_tail()}")


def webhook_status(port: int) -> dict:
    # The app of the example's bridge.json (checked in `chat`): its key:secret reads the backlog.
    response = get(port, "/webhooks/status", [("Authorization", "Bearer app-key:app-secret")])
    assert response.status == 200, response
    return json.loads(response.body)


@pytest.fixture
def chat(bridge, tmp_path):
    """Bridge (with the example's bridge.json, webhook to a free port) and Django on that port."""
    if importlib.util.find_spec("django") is None:
        pytest.fail("Django is not in this venv: scripts/install-deps.sh test installs "
                    "examples/django/requirements.txt into .venv/py3")
    django_port = free_port()
    config = json.loads((EXAMPLE / "bridge.json").read_text())
    app = config["apps"][0]
    assert (str(app["id"]), app["key"], app["secret"]) == ("1", "app-key", "app-secret"), \
        "bridge.json must serve bridge's default app, the example's default settings"
    [hook] = app["webhooks"]
    assert hook["url"] == "http://127.0.0.1:8000/bridge/webhooks", hook
    hook["url"] = f"http://127.0.0.1:{django_port}/bridge/webhooks"
    config_path = tmp_path / "bridge.json"
    config_path.write_text(json.dumps(config))
    server = bridge("--config", str(config_path), *FAST_RETRIES, echo_path=None)

    database = tmp_path / "chat.sqlite3"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PUSHER_", "DJANGO_", "CHAT_"))}
    env.update(PUSHER_PORT=str(server.port), CHAT_DATABASE=str(database), PYTHONUNBUFFERED="1")
    django = DjangoServer(django_port, env, tmp_path / "django.log")
    django.manage("migrate", "--noinput")
    django.start()
    yield server, django, database
    django.stop()


def test_two_chatters_through_bridge_and_django_and_an_outage_loses_nothing(chat):
    server, django, database = chat
    ann = Chatter(django, server.port, "ann")
    bob = Chatter(django, server.port, "bob")
    try:
        # Presence: both are listed with the names Django signed.
        assert ann.join_channel()["count"] == 1
        presence = bob.join_channel()
        assert presence["count"] == 2 and presence["hash"] == {ann.user_id: {"name": "ann"},
                                                               bob.user_id: {"name": "bob"}}, presence
        added = ann.ws.wait_for("pusher_internal:member_added", CHANNEL)
        assert added.data_json() == {"user_id": bob.user_id, "user_info": {"name": "bob"}}, added.raw

        expected: dict[str, tuple[str, str, str, str]] = {}
        for round_ in range(3):
            # Client events reach the other chatter (never echoed to the sender).
            for sender, other in ((ann, bob), (bob, ann)):
                text = f"{sender.name} direct {round_}"
                uid = sender.send_direct(text)
                other.expect("client-message", uid, text)
                expected[uid] = (sender.user_id, sender.name, text, "client_event")
            # Form posts: Django publishes them to everyone, the sender included.
            for sender in (ann, bob):
                text = f"{sender.name} via django {round_}"
                uid = sender.post(text)
                for chatter in (ann, bob):
                    chatter.expect("message", uid, text)
                expected[uid] = (sender.user_id, sender.name, text, "form")
        wait_stored(database, expected, django)
        assert retry_until(lambda: webhook_status(server.port)["pending"] == 0, STORE_TIMEOUT), \
            webhook_status(server.port)

        # Outage: Django dies (with these webhooks perhaps in flight); the chat goes on through
        # Bridge, which keeps the webhooks until Django is back.
        outage: dict[str, tuple[str, str, str, str]] = {}
        just_before = []
        for sender, other in ((ann, bob), (bob, ann)):
            text = f"{sender.name} just before the outage"
            uid = sender.send_direct(text)
            just_before.append((other, uid, text))
            outage[uid] = (sender.user_id, sender.name, text, "client_event")
        django.kill()
        for other, uid, text in just_before:
            other.expect("client-message", uid, text)
        for round_ in range(3):
            for sender, other in ((ann, bob), (bob, ann)):
                text = f"{sender.name} during the outage {round_}"
                uid = sender.send_direct(text)
                other.expect("client-message", uid, text)
                outage[uid] = (sender.user_id, sender.name, text, "client_event")
        assert retry_until(lambda: webhook_status(server.port)["pending"] >= 6, 5), webhook_status(server.port)

        django.start()
        expected.update(outage)
        wait_stored(database, expected, django)
        assert retry_until(lambda: webhook_status(server.port)["pending"] == 0, STORE_TIMEOUT), \
            webhook_status(server.port)
        assert webhook_status(server.port)["dead"] == 0

        # After the restart the form path works again, and history shows everything once.
        text = "ann after the restart"
        uid = ann.post(text)
        bob.expect("message", uid, text)
        expected[uid] = (ann.user_id, "ann", text, "form")
        wait_stored(database, expected, django)
        history = requests.get(django.url + "/history", timeout=5).text
        for _, _, text, _ in expected.values():
            assert history.count(f"<td>{text}</td>") == 1, text
    finally:
        ann.ws.close()
        bob.ws.close()
