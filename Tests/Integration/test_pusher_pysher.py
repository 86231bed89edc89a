"""pysher (a Pusher WebSocket client for Python, protocol 6) against bridge: public, private and
presence channels receiving events published with the official `pusher` HTTP library."""

from __future__ import annotations

import json
import logging
import threading
import time

import pysher
import pytest

from pusher_helpers import make_app, retry_until

TIMEOUT = 5.0


class Recorder:
    """Every channel event a pysher client receives, seen below its Channel objects (pysher drops
    events for channels it hasn't registered yet, and registers a channel after sending subscribe)."""

    def __init__(self, client: pysher.Pusher):
        self.events: list[tuple[str, str, object]] = []
        self.errors: list[object] = []
        self.cond = threading.Condition()
        original = client.connection.event_handler

        def handler(event_name, data, channel_name):
            with self.cond:
                self.events.append((event_name, channel_name, data))
                self.cond.notify_all()
            original(event_name, data, channel_name)

        client.connection.event_handler = handler
        client.connection.bind("pusher:error", self._error)

    def _error(self, data):
        with self.cond:
            self.errors.append(data)
            self.cond.notify_all()

    def wait(self, event: str, channel: str, timeout: float = TIMEOUT, where=None):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for name, chan, data in self.events:
                    if name == event and chan == channel and (where is None or where(data)):
                        return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"pysher got no {event} on {channel} in {timeout}s: "
                                         f"{self.events[-10:]} errors={self.errors}")
                self.cond.wait(remaining)

    def count(self, event: str, channel: str) -> int:
        with self.cond:
            return sum(1 for name, chan, _ in self.events if name == event and chan == channel)


class Inbox:
    """A pysher Channel.bind callback that keeps what it gets."""

    def __init__(self):
        self.items: list[object] = []
        self.cond = threading.Condition()

    def __call__(self, data):
        with self.cond:
            self.items.append(data)
            self.cond.notify_all()

    def wait(self, count: int = 1, timeout: float = TIMEOUT) -> list[object]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"callback got {len(self.items)} of {count} in {timeout}s: {self.items}")
                self.cond.wait(remaining)
            return list(self.items)


@pytest.fixture
def pysher_clients():
    clients: list[pysher.Pusher] = []
    yield clients
    for client in clients:
        try:
            client.disconnect(timeout=0.5)  # the thread is a daemon; don't wait long for it
        except Exception:
            pass


def connect(server, clients, user_data=None, secret=True) -> tuple[pysher.Pusher, Recorder]:
    app = server.app(0)
    client = pysher.Pusher(app["key"], secure=False, secret=app["secret"] if secret else "",
                           custom_host="127.0.0.1", port=server.port, user_data=user_data,
                           log_level=logging.WARNING, reconnect_interval=1)
    recorder = Recorder(client)
    clients.append(client)
    client.connect()
    connected = retry_until(lambda: client.connection.state == "connected" and client.connection.socket_id, TIMEOUT)
    assert connected, f"pysher not connected in {TIMEOUT}s (state {client.connection.state})"
    return client, recorder


def test_pysher_connects_and_gets_pong(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    client, recorder = connect(server, pysher_clients)
    # pysher sends {"event":"pusher:ping","data":""} as soon as the socket opens.
    assert retry_until(lambda: client.connection.pong_received, TIMEOUT), "no pusher:pong for pysher's ping"
    assert recorder.errors == []
    assert client.connection.socket_id.count(".") == 1


def test_pysher_public_channel(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    client, recorder = connect(server, pysher_clients)
    channel = client.subscribe("news")
    inbox = Inbox()
    channel.bind("breaking", inbox)
    recorder.wait("pusher_internal:subscription_succeeded", "news")
    server.rest().trigger("news", "breaking", {"title": "Hello é"})
    assert inbox.wait() == ['{"title": "Hello é"}']
    assert recorder.errors == []


def test_pysher_private_channel_signed_by_pysher(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    client, recorder = connect(server, pysher_clients)
    channel = client.subscribe("private-orders")  # pysher signs with the app secret itself
    inbox = Inbox()
    channel.bind("created", inbox)
    recorder.wait("pusher_internal:subscription_succeeded", "private-orders")
    server.rest().trigger("private-orders", "created", {"id": 7})
    assert inbox.wait() == ['{"id": 7}']


def test_pysher_private_channel_auth_from_official_library(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    client, recorder = connect(server, pysher_clients, secret=False)
    auth = server.rest().authenticate(channel="private-inbox", socket_id=client.connection.socket_id)
    channel = client.subscribe("private-inbox", auth=auth["auth"])
    inbox = Inbox()
    channel.bind("mail", inbox)
    recorder.wait("pusher_internal:subscription_succeeded", "private-inbox")
    server.rest().trigger(["private-inbox", "elsewhere"], "mail", "you have mail")
    assert inbox.wait() == ["you have mail"]


def test_pysher_bad_private_signature_gets_subscription_error(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    client, recorder = connect(server, pysher_clients, secret=False)
    client.subscribe("private-inbox", auth="key-1:" + "0" * 64)
    # pysher drops the connection itself on a pusher:error in 4000-4099, so it may see only one of
    # the two frames (pusher:error 4009, pusher:subscription_error) the server sends.

    def told() -> bool:
        errors = [e for e in recorder.errors if isinstance(e, dict) and e.get("code") == 4009]
        failures = [json.loads(data) for name, chan, data in recorder.events
                    if name == "pusher:subscription_error" and chan == "private-inbox"]
        return bool(errors) or any(f.get("type") == "AuthError" for f in failures)

    assert retry_until(told, TIMEOUT), (recorder.events, recorder.errors)
    assert recorder.count("pusher_internal:subscription_succeeded", "private-inbox") == 0


def test_pysher_presence_channel(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    alice, alice_events = connect(server, pysher_clients, {"user_id": "alice", "user_info": {"name": "Alice"}})
    bob, bob_events = connect(server, pysher_clients, {"user_id": "bob", "user_info": {"name": "Bob"}})
    alice_channel = alice.subscribe("presence-lobby")
    alice_inbox, alice_waves = Inbox(), Inbox()
    alice_channel.bind("announcement", alice_inbox)
    alice_channel.bind("client-wave", alice_waves)
    first = json.loads(alice_events.wait("pusher_internal:subscription_succeeded", "presence-lobby"))
    assert first["presence"] == {"ids": ["alice"], "hash": {"alice": {"name": "Alice"}}, "count": 1}

    bob_channel = bob.subscribe("presence-lobby")
    bob_inbox = Inbox()
    bob_channel.bind("announcement", bob_inbox)
    second = json.loads(bob_events.wait("pusher_internal:subscription_succeeded", "presence-lobby"))
    assert sorted(second["presence"]["ids"]) == ["alice", "bob"] and second["presence"]["count"] == 2
    added = json.loads(alice_events.wait("pusher_internal:member_added", "presence-lobby"))
    assert added == {"user_id": "bob", "user_info": {"name": "Bob"}}

    assert server.rest().trigger("presence-lobby", "announcement", "hi all") == {}
    assert alice_inbox.wait() == ["hi all"]
    assert bob_inbox.wait() == ["hi all"]

    bob_channel.trigger("client-wave", {"from": "bob"})  # a client event through pysher
    assert alice_waves.wait() == [{"from": "bob"}]

    users = server.rest().users_info("presence-lobby")["users"]
    assert sorted(user["id"] for user in users) == ["alice", "bob"]

    bob.disconnect(timeout=2)
    removed = json.loads(alice_events.wait("pusher_internal:member_removed", "presence-lobby"))
    assert removed == {"user_id": "bob"}
    assert alice_events.errors == [] and bob_events.errors == []


def test_pysher_unsubscribe(pusher_bridge, pysher_clients):
    server = pusher_bridge([make_app("1")])
    client, recorder = connect(server, pysher_clients)
    client.subscribe("news")
    recorder.wait("pusher_internal:subscription_succeeded", "news")
    client.unsubscribe("news")
    rest = server.rest()
    assert retry_until(lambda: rest.channel_info("news") == {"occupied": False}, TIMEOUT), \
        "channel still occupied after pysher unsubscribed"
    rest.trigger("news", "late", "x")
    time.sleep(0.3)
    assert recorder.count("late", "news") == 0
