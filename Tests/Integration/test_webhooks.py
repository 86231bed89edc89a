"""Webhooks (shared/PROTOCOL.md §1.16) against a real HTTP receiver (webhook_receiver.py).

Real WebSocket activity (PusherWS, the official `pusher` library) produces the events; the receiver
records what arrives and answers from a per-test script (status sequences, Retry-After, hangs,
dropped connections, being down for a while). Every webhook is checked for its exact headers and
with the official library's `validate_webhook`. Also: filters, extra headers, batching, `time_ms`,
the grace window, retries and dead letters, durability across kill -9 and SIGTERM,
`bridge webhooks replay`, the outbox bound (4301) and `/ready`, and config errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import conftest
from conftest import assert_json_error, get
from pusher_helpers import assert_error_frame, make_app, retry_until, run_bridge_once
from webhook_receiver import Reply, check_webhook, occupied, target, vacated, wait_events

DEAD_LETTERS = "webhooks-dead-letter.jsonl"
SAFE = ["serve", "--host", "127.0.0.1", "--port", "0", "--threads", "2"]


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def hook_flags(data_dir: Path, **overrides) -> list[str]:
    """Server flags for fast tests: short grace, retry delays and timeout; `data_dir` for state."""
    options = {"webhook-grace": 0.5, "webhook-retry-delay": 0.2, "webhook-retry-max-delay": 1,
               "webhook-timeout": 2, "data-dir": data_dir}
    options.update({key.replace("_", "-"): value for key, value in overrides.items()})
    return [part for key, value in options.items() if value is not None
            for part in (f"--{key}", str(value))]


def start_server(pusher_bridge, data_dir: Path, apps: list[dict], **overrides):
    return pusher_bridge(apps, *hook_flags(data_dir, **overrides))


def dead_letters(data_dir: Path) -> list[dict]:
    path = data_dir / DEAD_LETTERS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def subscribe_burst(ws, channels: list[str]) -> None:
    """Send every subscribe at once, then wait for each success (public channels)."""
    for channel in channels:
        ws.subscribe(channel)
    for channel in channels:
        ws.wait_for_subscription(channel)


def unsubscribe(ws, channel: str) -> None:
    ws.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})


def collect_client_events(ws, name: str, count: int, timeout: float) -> list[str]:
    """The data of `count` client events called `name` (fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(got)} of {count} {name} events within {timeout}s"
        got.append(ws.wait_for(name, timeout=remaining)["data"])
    return got


# ----------------------------------------------------------------------------------------------
# What is sent: every event type, signatures, headers, filters, batching, time_ms
# ----------------------------------------------------------------------------------------------


def test_every_event_type_reaches_the_receiver_signed(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", enable_subscription_count=True, webhooks=[target(hooks)])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    with server.ws() as a, server.ws() as b, server.ws() as c, server.ws() as d:
        a.subscribe_ok("room")
        d.subscribe_ok("room")
        b.subscribe_ok("presence-chat", "alice")
        c.subscribe_ok("presence-chat", "bob")
        b.client_event("presence-chat", "client-hi", "hello", user_id="mallory")
        c.wait_for("client-hi", "presence-chat")
        a.subscribe_ok("private-chat")
        c.subscribe_ok("private-chat")
        a.client_event("private-chat", "client-typing", {"k": [1, 2]})
        c.wait_for("client-typing", "private-chat")
        a.subscribe_ok("cache-news")
        b.subscribe_ok("cache-news")  # two misses on an empty cache channel: one webhook
        server.rest().trigger("cache-other", "warm", {"v": 1})
        a.subscribe_ok("cache-other")  # a cached event: no cache_miss
        unsubscribe(c, "presence-chat")
        unsubscribe(d, "room")
        c.assert_open()
        d.assert_open()

        want = [
            occupied("room"), occupied("presence-chat"), occupied("private-chat"),
            occupied("cache-news"), occupied("cache-other"),
            {"name": "member_added", "channel": "presence-chat", "user_id": "alice"},
            {"name": "member_added", "channel": "presence-chat", "user_id": "bob"},
            {"name": "member_removed", "channel": "presence-chat", "user_id": "bob"},
            {"name": "client_event", "channel": "presence-chat", "event": "client-hi", "data": "hello",
             "socket_id": b.socket_id, "user_id": "alice"},
            {"name": "cache_miss", "channel": "cache-news"},
            {"name": "subscription_count", "channel": "room", "subscription_count": 1},
            {"name": "subscription_count", "channel": "room", "subscription_count": 2},
        ]
        wait_events(hooks, want, 10)
        hooks.wait_for(lambda _: [e for e in hooks.delivered_events() if e.get("event") == "client-typing"],
                       5, "client-typing webhook")
        time.sleep(0.8)  # longer than the grace: anything pending has been sent
        events = hooks.delivered_events()

    typing = [e for e in events if e.get("event") == "client-typing"]
    assert len(typing) == 1, typing
    assert set(typing[0]) == {"name", "channel", "event", "data", "socket_id"}, typing  # no user_id off presence
    assert typing[0]["name"] == "client_event" and typing[0]["channel"] == "private-chat", typing
    assert typing[0]["socket_id"] == a.socket_id, typing
    assert isinstance(typing[0]["data"], str) and json.loads(typing[0]["data"]) == {"k": [1, 2]}, typing

    names = Counter((e["name"], e["channel"]) for e in events)
    assert names[("cache_miss", "cache-news")] == 1, f"cache_miss not de-duplicated: {events}"
    assert names[("cache_miss", "cache-other")] == 0, events
    assert names[("member_removed", "presence-chat")] == 1, events
    assert names[("channel_vacated", "room")] == 0 and names[("channel_vacated", "presence-chat")] == 0, \
        f"vacated for a channel that still has subscribers: {events}"
    assert names[("channel_occupied", "room")] == 1, events
    assert not [e for e in events if e["name"] == "subscription_count" and e["channel"].startswith("presence-")]
    room_counts = Counter(e["subscription_count"] for e in events
                          if e["name"] == "subscription_count" and e["channel"] == "room")
    assert room_counts[1] >= 2 and room_counts[2] == 1 and set(room_counts) <= {0, 1, 2}, room_counts
    for event in events:
        assert event["name"] in {"channel_occupied", "channel_vacated", "member_added", "member_removed",
                                 "client_event", "cache_miss", "subscription_count"}, event

    requests = hooks.requests
    for request in requests:
        body = check_webhook(request, app)
        assert len(body["events"]) == 1, f"batching is off: {request}"
        assert request.path == "/hook" and request.attempt == 1, request
        assert abs(body["time_ms"] - request.wall * 1000) < 2000, request
    ids = [r.id for r in requests]
    assert len(set(ids)) == len(ids), f"webhook ids not unique: {ids}"


def test_event_types_and_channel_filters_with_two_targets(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", webhooks=[
        target(hooks, "/a", event_types=["channel_occupied", "client_event"],
               filter={"channel_name_starts_with": "private-"}),
        target(hooks, "/b", event_types=["channel_occupied", "channel_vacated"],
               filter={"channel_name_ends_with": "-b"}),
    ])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    with server.ws() as one, server.ws() as two:
        for channel in ("private-x-b", "private-y", "room-b", "room"):
            one.subscribe_ok(channel)
        two.subscribe_ok("private-y")
        one.client_event("private-y", "client-go", "1")
        two.wait_for("client-go", "private-y")
        one.client_event("private-x-b", "client-solo", "2")  # no one else there: still a webhook
    # Both sockets closed: vacated for every channel after the grace.
    want_a = [occupied("private-x-b"), occupied("private-y")]
    want_b = [occupied("private-x-b"), occupied("room-b"), vacated("private-x-b"), vacated("room-b")]
    wait_events(hooks, want_a, 10, "/a")
    wait_events(hooks, want_b, 10, "/b")
    time.sleep(0.8)
    got_a = hooks.delivered_events("/a")
    got_b = hooks.delivered_events("/b")
    clients_a = sorted((e["channel"], e["event"]) for e in got_a if e["name"] == "client_event")
    assert clients_a == [("private-x-b", "client-solo"), ("private-y", "client-go")], got_a
    assert sorted(json.dumps(e, sort_keys=True) for e in got_a if e["name"] != "client_event") == \
        sorted(json.dumps(e, sort_keys=True) for e in want_a), f"/a got unfiltered events: {got_a}"
    assert sorted(json.dumps(e, sort_keys=True) for e in got_b) == \
        sorted(json.dumps(e, sort_keys=True) for e in want_b), f"/b got unfiltered events: {got_b}"
    for request in hooks.requests:
        check_webhook(request, app)


def test_target_headers_are_added(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", webhooks=[target(hooks, headers={"X-Custom": "v1", "Authorization": "Bearer t0ken"})])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    with server.ws() as ws:
        ws.subscribe_ok("room")
        request = hooks.wait_count(1, 5)[0]
    check_webhook(request, app)
    assert request.header_all("X-Custom") == ["v1"], request.headers
    assert request.header_all("Authorization") == ["Bearer t0ken"], request.headers
    assert request.json["events"] == [occupied("room")]


@pytest.mark.parametrize("batching", [True, {"window_ms": 300, "max_events": 100}], ids=["true", "window"])
def test_batching_puts_several_events_in_one_body_per_app(pusher_bridge, receiver, tmp_path, batching):
    hooks = receiver()
    apps = [make_app(str(n), webhooks=[target(hooks, event_types=["channel_occupied"], batching=batching)])
            for n in (1, 2)]
    server = start_server(pusher_bridge, tmp_path / "data", apps)
    by_key = {app["key"]: app for app in apps}
    with server.ws(0) as first, server.ws(1) as second:
        for n in range(5):
            first.subscribe(f"one-{n}")
            if n < 3:
                second.subscribe(f"two-{n}")
        for n in range(5):
            first.wait_for_subscription(f"one-{n}")
        for n in range(3):
            second.wait_for_subscription(f"two-{n}")
        wait_events(hooks, [occupied(f"one-{n}") for n in range(5)] + [occupied(f"two-{n}") for n in range(3)], 10)
        time.sleep(0.4)
    requests = hooks.requests
    bodies: dict[str, list[list[dict]]] = {"1": [], "2": []}
    for request in requests:
        app = by_key.get(request.header("X-Pusher-Key"))
        assert app is not None, request
        body = check_webhook(request, app)
        prefix = "one-" if app["id"] == "1" else "two-"
        assert all(e["channel"].startswith(prefix) for e in body["events"]), \
            f"a batch mixes apps: key {app['key']} with {body['events']}"
        bodies[app["id"]].append(body["events"])
    assert sorted(e["channel"] for b in bodies["1"] for e in b) == [f"one-{n}" for n in range(5)], bodies
    assert sorted(e["channel"] for b in bodies["2"] for e in b) == [f"two-{n}" for n in range(3)], bodies
    assert max(len(b) for b in bodies["1"]) >= 2, f"no batch has several events: {bodies['1']}"
    assert len(bodies["1"]) <= 2, f"5 events within one window took {len(bodies['1'])} bodies"


def test_batching_max_events_flushes_early(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"],
                                         batching={"window_ms": 3000, "max_events": 3})])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    with server.ws() as ws:
        started = time.monotonic()
        subscribe_burst(ws, [f"c-{n}" for n in range(7)])
        first = hooks.wait_count(1, 5)[0]
        assert first.mono - started < 2.0, "a full batch (max_events) waited for the window"
        wait_events(hooks, [occupied(f"c-{n}") for n in range(7)], 8)
    sizes = []
    for request in hooks.requests:
        sizes.append(len(check_webhook(request, app)["events"]))
    assert max(sizes) <= 3 and sum(sizes) == 7 and len(sizes) >= 3, sizes


def test_batching_off_sends_one_event_per_webhook(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", webhooks=[target(hooks, batching=False)])  # no enable_subscription_count
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    with server.ws() as ws:
        subscribe_burst(ws, [f"c-{n}" for n in range(6)])
        wait_events(hooks, [occupied(f"c-{n}") for n in range(6)], 8)
        time.sleep(0.3)
    requests = hooks.requests
    assert len(requests) == 6, requests
    for request in requests:
        assert len(check_webhook(request, app)["events"]) == 1, request
    assert len({r.id for r in requests}) == 6
    assert not [e for e in hooks.delivered_events() if e["name"] == "subscription_count"], \
        "subscription_count without enable_subscription_count"


def test_time_ms_created_vs_delivery_across_retries(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.respond_with(lambda r: 503 if (r.attempt or 1) <= 2 else 200)
    app = make_app("1", webhooks=[target(hooks, "/created", event_types=["channel_occupied"]),
                                  target(hooks, "/delivery", event_types=["channel_occupied"], time_ms="delivery")])
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_retry_delay=0.4)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        hooks.wait_for(lambda _: len(hooks.delivered("/created")) == 1 and len(hooks.delivered("/delivery")) == 1,
                       8, "both targets delivered")
    for path in ("/created", "/delivery"):
        groups = hooks.by_id(path)
        assert len(groups) == 1, groups
        (attempts,) = groups.values()
        assert [r.attempt for r in attempts] == [1, 2, 3], attempts
        assert [r.answered for r in attempts] == [503, 503, 200], attempts
        bodies = [check_webhook(r, app) for r in attempts]  # the official library accepts every attempt
        assert all(b["events"] == [occupied("room")] for b in bodies), bodies
        # Backoff 0.4 s doubling, with jitter down to half: the third attempt comes 0.6–1.2 s after the first.
        assert attempts[-1].mono - attempts[0].mono >= 0.55, "three attempts with 0.4 s doubling took < 0.6 s"
        if path == "/created":
            assert len({b["time_ms"] for b in bodies}) == 1, f"time_ms changed across retries: {bodies}"
            assert abs(bodies[0]["time_ms"] - attempts[0].wall * 1000) < 500, bodies
            assert attempts[-1].wall * 1000 - bodies[-1]["time_ms"] >= 550, bodies
        else:
            for request, body in zip(attempts, bodies):
                assert abs(body["time_ms"] - request.wall * 1000) < 500, (body, request.wall)
            assert bodies[0]["time_ms"] < bodies[1]["time_ms"] < bodies[2]["time_ms"], bodies


# ----------------------------------------------------------------------------------------------
# The grace window
# ----------------------------------------------------------------------------------------------


def test_grace_rejoin_sends_nothing(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", webhooks=[target(hooks)])
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_grace=1)
    first = server.ws()
    first.subscribe_ok("presence-g", "u1")
    first.subscribe_ok("room-g")
    wait_events(hooks, [occupied("presence-g"), occupied("room-g"),
                        {"name": "member_added", "channel": "presence-g", "user_id": "u1"}], 5)
    before = len(hooks.requests)
    first.close()  # a page reload: the same user is back within the grace
    closed = time.monotonic()
    time.sleep(0.4)  # well inside the 1 s grace, well past an instant re-check
    with server.ws() as again:
        again.subscribe_ok("presence-g", "u1")
        again.subscribe_ok("room-g")
        assert time.monotonic() - closed < 0.8, "the rejoin took longer than the grace"
        late = hooks.quiet(2.0)
    assert late == [], f"a rejoin within the grace sent webhooks: {late}"
    assert len(hooks.requests) == before


def test_grace_real_leave_sends_vacated_and_removed_once_after_the_grace(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    app = make_app("1", webhooks=[target(hooks)])
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_grace=1)
    with server.ws() as stays:
        stays.subscribe_ok("presence-l", "u2")
        leaver = server.ws()
        leaver.subscribe_ok("presence-l", "u1")
        leaver.subscribe_ok("room-l")
        wait_events(hooks, [occupied("presence-l"), occupied("room-l"),
                            {"name": "member_added", "channel": "presence-l", "user_id": "u1"}], 5)
        leaver.close()
        left = time.monotonic()
        removed = {"name": "member_removed", "channel": "presence-l", "user_id": "u1"}
        wait_events(hooks, [removed, vacated("room-l")], 5)
        time.sleep(0.5)
        requests = hooks.requests
    late = [r for r in requests if r.events[0]["name"] in ("member_removed", "channel_vacated")]
    assert sorted(json.dumps(r.events[0], sort_keys=True) for r in late) == \
        sorted(json.dumps(e, sort_keys=True) for e in (removed, vacated("room-l"))), late
    for request in late:
        waited = request.mono - left
        assert 0.9 <= waited <= 3.0, f"{request.events} sent {waited:.2f}s after the leave (grace 1 s)"
        check_webhook(request, app)


# ----------------------------------------------------------------------------------------------
# Retries, dead letters, receivers that are down or hang
# ----------------------------------------------------------------------------------------------


def test_500_then_200_is_delivered_once_with_the_same_id(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.reply(500, 200)
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    with server.ws() as ws:
        ws.subscribe_ok("room")
        first, second = hooks.wait_count(2, 5)
        assert hooks.quiet(1.0) == [], "retried after a 200"
    assert (first.answered, second.answered) == (500, 200)
    assert first.id == second.id, (first, second)
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.body == second.body, "time_ms \"created\": a retry sends the same body"
    check_webhook(first, app)
    check_webhook(second, app)
    assert dead_letters(tmp_path / "data") == []


def test_every_retryable_failure_is_retried(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    failures = [Reply(drop=True), 500, 502, 503, 504, 408, 409, 425, 429]
    hooks.reply(*failures, 200)
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    server = start_server(pusher_bridge, tmp_path / "data", [app],
                          webhook_retry_delay=0.05, webhook_retry_max_delay=0.2)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        requests = hooks.wait_count(len(failures) + 1, 10)
        assert hooks.quiet(0.6) == [], "retried after a 200"
    assert [r.answered for r in requests] == [None, 500, 502, 503, 504, 408, 409, 425, 429, 200]
    assert len({r.id for r in requests}) == 1, requests
    assert [r.attempt for r in requests] == list(range(1, len(failures) + 2))
    for request in requests:
        check_webhook(request, app)


def test_retry_after_is_honoured(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.reply(Reply(429, headers={"Retry-After": "2"}), 200)
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    # A max delay above the hint: Retry-After is honoured up to --webhook-retry-max-delay.
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_retry_delay=0.1,
                          webhook_retry_max_delay=10)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        first, second = hooks.wait_count(2, 6)
    gap = second.mono - first.mono
    assert gap >= 1.9, f"retried {gap:.2f}s after Retry-After: 2"
    assert gap <= 4.0, f"retried only {gap:.2f}s after Retry-After: 2"
    assert first.id == second.id and second.answered == 200


@pytest.mark.parametrize("status", [400, 404])
def test_final_4xx_is_not_retried_and_is_dead_lettered(pusher_bridge, receiver, tmp_path, status):
    hooks = receiver()
    hooks.reply(status)
    data = tmp_path / "data"
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    server = start_server(pusher_bridge, data, [app])
    with server.ws() as ws:
        ws.subscribe_ok("room")
        (request,) = hooks.wait_count(1, 5)
        letters = retry_until(lambda: dead_letters(data), 5)
        assert letters, f"no line in {DEAD_LETTERS} after a {status}"
        assert hooks.quiet(1.0) == [], f"a {status} was retried"
    body = check_webhook(request, app)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert {"id", "app", "url", "created_ms", "failed_ms", "attempts", "error", "events"} <= set(letter), letter
    assert letter["id"] == request.id and str(letter["app"]) == "1" and letter["url"] == hooks.url("/hook"), letter
    assert letter["attempts"] == 1 and letter["events"] == body["events"], letter
    assert abs(letter["created_ms"] - body["time_ms"]) < 1000, letter
    assert letter["failed_ms"] >= letter["created_ms"], letter
    assert str(status) in str(letter["error"]), f"error doesn't name the status: {letter}"


def test_receiver_down_then_up_gets_everything(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.stop()  # refused connections while it is down
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_retry_max_delay=0.5)
    with server.ws() as ws:
        subscribe_burst(ws, [f"c-{n}" for n in range(10)])
        time.sleep(1.5)
        hooks.start()
        wait_events(hooks, [occupied(f"c-{n}") for n in range(10)], 10)
    for request in hooks.requests:
        check_webhook(request, app)
        assert request.attempt >= 2, f"delivered on the first attempt while the receiver was down: {request}"


def test_hanging_receiver_times_out_is_retried_and_the_broker_keeps_serving(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.respond_with(lambda r: Reply(hang=True) if r.attempt == 1 else 200)
    app = make_app("1", webhooks=[target(hooks, filter={"channel_name_starts_with": "hook-"})])
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_timeout=1.5, webhook_retry_delay=0.2)
    rest = server.rest()
    with server.ws() as listener, server.ws() as trigger:
        listener.subscribe_ok("news")
        trigger.subscribe_ok("hook-1")
        (hung,) = hooks.wait_count(1, 5)
        for n in range(3):  # during the hang
            started = time.monotonic()
            rest.trigger("news", "ping", {"n": n})
            frame = listener.wait_for("ping", "news", timeout=3)
            elapsed = time.monotonic() - started
            assert json.loads(frame["data"]) == {"n": n}
            assert elapsed < 1.0, f"a publish took {elapsed:.2f}s to reach a subscriber during the hang"
            time.sleep(0.2)
        first, second = hooks.wait_count(2, 6)
        assert hooks.quiet(0.5) == []
    gap = second.mono - first.mono
    assert 1.3 <= gap <= 4.5, f"second attempt {gap:.2f}s after a hung one (timeout 1.5 s)"
    assert first.id == second.id and (first.attempt, second.attempt) == (1, 2)
    assert first.answered is None and second.answered == 200
    check_webhook(second, app)


# ----------------------------------------------------------------------------------------------
# Durability: kill -9, SIGTERM, max-age and replay
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["failing-default-fsync", "down-fsync-always"])
def test_kill_9_loses_no_webhook(pusher_bridge, receiver, tmp_path, mode):
    hooks = receiver()
    data = tmp_path / "data"
    count = 400 if mode.startswith("failing") else 300
    fsync = "always" if mode.endswith("always") else None
    if mode.startswith("failing"):
        hooks.reply(503)  # ids are seen, nothing is delivered
    else:
        hooks.stop()
    app = make_app("1", max_client_events_per_sec=100000,
                   webhooks=[target(hooks, event_types=["client_event"])])
    options = dict(webhook_fsync=fsync, webhook_retry_delay=1, webhook_retry_max_delay=1)
    server = start_server(pusher_bridge, data, [app], **options)
    sender, peer = server.ws(), server.ws()
    try:
        sender.subscribe_ok("private-bulk")
        peer.subscribe_ok("private-bulk")
        for n in range(count):
            sender.client_event("private-bulk", "client-n", f"n:{n}")
        got = collect_client_events(peer, "client-n", count, 15)
        assert sorted(got) == sorted(f"n:{n}" for n in range(count))
        if hooks.running:
            retry_until(lambda: len(hooks.by_id()) >= count, 5)
        else:
            time.sleep(0.5)
    finally:
        sender.close()
        peer.close()
    seen_before = {r.id: r.body for r in hooks.requests}
    assert not hooks.delivered(), "nothing may be delivered before the kill"
    server.proc.kill()

    hooks.reply(200)
    if not hooks.running:
        hooks.start()
    start_server(pusher_bridge, data, [app], **options)
    want = [{"name": "client_event", "channel": "private-bulk", "event": "client-n", "data": f"n:{n}",
             "socket_id": sender.socket_id} for n in range(count)]
    wait_events(hooks, want, 30)
    delivered = {r.id: r for r in hooks.delivered()}
    lost = set(seen_before) - set(delivered)
    assert not lost, f"{len(lost)} webhook ids emitted before kill -9 never delivered: {sorted(lost)[:5]}"
    for webhook_id, body in seen_before.items():
        assert json.loads(delivered[webhook_id].body)["events"] == json.loads(body)["events"], \
            f"webhook {webhook_id} came back with other events"
    for request in delivered.values():
        check_webhook(request, app)


def test_sigterm_keeps_pending_webhooks_for_the_next_start(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.reply(503)
    data = tmp_path / "data"
    app = make_app("1", max_client_events_per_sec=1000,
                   webhooks=[target(hooks, event_types=["channel_occupied", "client_event"])])
    options = dict(webhook_retry_delay=1, webhook_retry_max_delay=1)
    server = start_server(pusher_bridge, data, [app], **options)
    with server.ws() as ws, server.ws() as peer:
        subscribe_burst(ws, [f"c-{n}" for n in range(20)])
        ws.subscribe_ok("private-s")
        peer.subscribe_ok("private-s")
        for n in range(30):
            ws.client_event("private-s", "client-s", f"s:{n}")
        collect_client_events(peer, "client-s", 30, 5)
        want = [occupied(f"c-{n}") for n in range(20)] + [occupied("private-s")] + \
            [{"name": "client_event", "channel": "private-s", "event": "client-s", "data": f"s:{n}",
              "socket_id": ws.socket_id} for n in range(30)]
        retry_until(lambda: len(hooks.by_id()) >= len(want), 5)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) is not None, "bridge still running 10 s after SIGTERM"
    seen_before = set(hooks.by_id())
    assert not hooks.delivered()
    hooks.reply(200)
    start_server(pusher_bridge, data, [app], **options)
    wait_events(hooks, want, 15)
    lost = seen_before - {r.id for r in hooks.delivered()}
    assert not lost, f"pending webhooks lost across SIGTERM: {sorted(lost)[:5]}"
    for request in hooks.delivered():
        check_webhook(request, app)


def test_max_age_dead_letters_then_replay_delivers_and_empties_the_file(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.reply(503)
    data = tmp_path / "data"
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    server = start_server(pusher_bridge, data, [app], webhook_max_age=1, webhook_retry_delay=0.2)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        letters = retry_until(lambda: dead_letters(data), 6)
        assert len(letters) == 1, f"no dead letter 6 s after a 1 s max-age: {hooks.requests}"
        assert hooks.quiet(0.6) == [], "retried after the dead letter"
    attempts = hooks.requests
    letter = letters[0]
    assert len(attempts) >= 2 and {r.id for r in attempts} == {letter["id"]}, (attempts, letter)
    assert letter["attempts"] == len(attempts), (letter, attempts)
    assert letter["events"] == [occupied("room")], letter
    assert 150 <= letter["failed_ms"] - letter["created_ms"] <= 4000, letter
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) is not None

    replay = ["webhooks", "replay", "--config", str(server.config_path), "--data-dir", str(data),
              "--webhook-timeout", "1"]
    hooks.reply(400)  # still failing (a final status, so the replay doesn't wait)
    result = run_bridge_once(replay, cwd=tmp_path, timeout=20)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 1, (result.returncode, output)
    assert "replayed 1 webhooks: 0 delivered, 1 still failing" in output, output
    kept = dead_letters(data)
    assert [l["id"] for l in kept] == [letter["id"]], kept

    hooks.reply(200)
    before = len(hooks.requests)
    result = run_bridge_once(replay, cwd=tmp_path, timeout=20)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, (result.returncode, output)
    assert "replayed 1 webhooks: 1 delivered, 0 still failing" in output, output
    assert dead_letters(data) == [], "delivered dead letters still in the file"
    replayed = [r for r in hooks.requests[before:] if r.delivered]
    assert len(replayed) == 1, hooks.requests[before:]
    body = check_webhook(replayed[0], app)  # time_ms = now, so the library accepts it
    assert replayed[0].id == letter["id"]
    assert body["events"] == letter["events"]
    assert abs(body["time_ms"] - replayed[0].wall * 1000) < 2000, body


# ----------------------------------------------------------------------------------------------
# The outbox bound and /ready
# ----------------------------------------------------------------------------------------------


OUTBOX_BOUND = 65536
PADDING = "x" * 495


def _full_outbox_server(pusher_bridge, hooks, tmp_path):
    app = make_app("1", max_client_events_per_sec=100000, webhooks=[target(hooks)])
    return start_server(pusher_bridge, tmp_path / "data", [app], webhook_outbox_bytes=OUTBOX_BOUND,
                        webhook_retry_max_delay=0.5)


def _fill_outbox(sender, peer, total: int, pace: float) -> tuple[list[str], list]:
    """Send `total` client events of ~500 B (`pace` seconds apart; 0 = one burst); returns the
    data the peer received and the sender's pusher:error frames."""
    for n in range(total):
        sender.client_event("private-full", "client-big", f"{n:04d}:{PADDING}")
        if pace:
            time.sleep(pace)
    refusals = [f for f in sender.frames_until_pong(10) if f.get("event") == "pusher:error"]
    accepted: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            frame = peer.recv(0.5)
        except TimeoutError:
            break
        if frame.get("event") == "client-big":
            accepted.append(frame["data"])
    return accepted, refusals


@pytest.mark.parametrize("pace", [0.0, 0.01], ids=["burst", "paced"])
def test_full_outbox_refuses_client_events_with_4301(pusher_bridge, receiver, tmp_path, pace):
    hooks = receiver()
    hooks.stop()
    server = _full_outbox_server(pusher_bridge, hooks, tmp_path)
    total = 300
    with server.ws() as sender, server.ws() as peer:
        sender.subscribe_ok("private-full")
        peer.subscribe_ok("private-full")
        accepted, refusals = _fill_outbox(sender, peer, total, pace)
        assert refusals, f"{total} client events of 500 B, a {OUTBOX_BOUND} B outbox, no receiver: none refused"
        for frame in refusals:
            assert_error_frame(frame, 4301)
            message = frame["data"]["message"].lower()
            assert any(word in message for word in ("backlog", "webhook", "outbox")), frame.raw
        assert len(accepted) + len(refusals) == total, (len(accepted), len(refusals))
        # The outbox only grows while the receiver is down: the accepted ones are the first ones.
        assert accepted == [f"{n:04d}:{PADDING}" for n in range(len(accepted))], "refused events reached a peer"
        assert len(accepted) >= 10, f"refused after only {len(accepted)} events of 500 B"
        assert len(accepted) * 500 <= 0.8 * OUTBOX_BOUND + 1000, \
            f"{len(accepted)} events of 500 B accepted: past 80% of a {OUTBOX_BOUND} B outbox"

        ready = get(server.port, "/ready")
        assert ready.status == 200, f"/ready {ready.status} {ready.body!r} with a full (but writable) outbox"
        with server.ws() as late:  # lifecycle events are still accepted
            late.subscribe_ok("private-after")
            hooks.start()
            want = [{"name": "client_event", "channel": "private-full", "event": "client-big", "data": data,
                     "socket_id": sender.socket_id} for data in accepted] + [occupied("private-after")]
            events = wait_events(hooks, want, 15)
        refused = {e["data"] for e in events if e["name"] == "client_event"} - set(accepted)
        assert not refused, f"refused client events were sent as webhooks: {sorted(refused)[:3]}"


def test_client_events_are_accepted_again_once_the_backlog_drains(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.stop()
    server = _full_outbox_server(pusher_bridge, hooks, tmp_path)
    with server.ws() as sender, server.ws() as peer:
        sender.subscribe_ok("private-full")
        peer.subscribe_ok("private-full")
        accepted, refusals = _fill_outbox(sender, peer, 200, 0.01)
        assert refusals and accepted, (len(accepted), len(refusals))
        hooks.start()
        hooks.wait_for(lambda _: len([e for e in hooks.delivered_events() if e["name"] == "client_event"])
                       >= len(accepted), 15, "the backlog delivered")

        def accepted_again() -> bool:
            sender.client_event("private-full", "client-again", "1")
            try:
                peer.wait_for("client-again", "private-full", timeout=0.5)
                return True
            except AssertionError:
                return False
        assert retry_until(accepted_again, 8, 0.2), \
            "client events still refused 8 s after the whole backlog was delivered"


def test_ready_is_503_when_the_outbox_cannot_be_written(pusher_bridge, receiver, tmp_path, monkeypatch):
    # chmod does not stop root, so the server runs with a small RLIMIT_FSIZE (SIGXFSZ ignored):
    # writes past it fail with EFBIG for any user.
    limit = 32768
    real = conftest.bridge_path()
    wrapper = tmp_path / "bridge-small-files"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        f"os.execv({str(real)!r}, [{str(real)!r}] + sys.argv[1:])\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(conftest, "BRIDGE_BIN", wrapper)

    hooks = receiver()
    hooks.stop()
    app = make_app("1", max_client_events_per_sec=100000, webhooks=[target(hooks, event_types=["client_event"])])
    server = start_server(pusher_bridge, tmp_path / "data", [app], webhook_fsync="always")
    assert get(server.port, "/ready").status == 200
    padding = "y" * 500
    ready = None
    with server.ws() as sender, server.ws() as peer:
        sender.subscribe_ok("private-w")
        peer.subscribe_ok("private-w")
        for batch in range(20):  # up to 200 KB of events, far past the 32 KB file limit
            for n in range(10):
                sender.client_event("private-w", "client-w", f"{batch}-{n}:{padding}")
            sender.frames_until_pong()
        # The outbox is written by the pipeline's thread, behind the WebSocket traffic.
        deadline = time.monotonic() + 10
        while True:
            ready = get(server.port, "/ready")
            if ready.status == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert ready is not None and ready.status == 503, \
        f"/ready {ready and ready.status} after 200 KB of webhooks into a 32 KB-per-file outbox"
    assert "outbox" in ready.body.decode("utf-8", "replace").lower(), ready.body


# ----------------------------------------------------------------------------------------------
# Per-app shares of the backlog, drop counters and their log lines
# ----------------------------------------------------------------------------------------------


FLOOD_CHANNELS = [f"flood-{n:03d}-" + "x" * 140 for n in range(200)]  # ~556 B of backlog each
DROP_LINE = re.compile(r"webhooks: app 1: dropped (\d+) webhooks")


def webhook_status(port: int, credential: str | None) -> tuple[int, dict]:
    headers = [("Authorization", f"Bearer {credential}")] if credential is not None else []
    response = get(port, "/webhooks/status", headers)
    return response.status, json.loads(response.body)


def _two_app_server(pusher_bridge, hooks, tmp_path):
    """App 1 floods, app 2 is the neighbour; a 64 KiB outbox, so each app's share (50%) is 32 KiB."""
    flooder = make_app("1", webhooks=[target(hooks, "/a", event_types=["channel_occupied"])])
    neighbour = make_app("2", max_client_events_per_sec=100000, webhooks=[target(hooks, "/b")])
    return start_server(pusher_bridge, tmp_path / "data", [flooder, neighbour], webhook_outbox_bytes=OUTBOX_BOUND,
                        webhook_retry_max_delay=0.5, admin_token=ADMIN)


def _flood(server, channels: list[str]) -> list:
    """Occupies `channels` of app 1, ten per connection (few requests per connection); returns the
    connections, which keep the channels occupied."""
    sockets = []
    for start in range(0, len(channels), 10):
        ws = server.ws(0)
        sockets.append(ws)
        subscribe_burst(ws, channels[start:start + 10])
    for ws in sockets:  # a barrier: every subscribe of every connection has been handled
        ws.frames_until_pong()
    return sockets


ADMIN = "admin-token-for-webhook-tests-0123"


def test_one_apps_flood_leaves_the_other_apps_share_and_is_counted(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.stop()
    server = _two_app_server(pusher_bridge, hooks, tmp_path)
    flooders = _flood(server, FLOOD_CHANNELS)
    try:
        status, report = webhook_status(server.port, ADMIN)
        assert status == 200, report
        dropped = report["apps"]["1"]["dropped"]
        assert 0 < dropped < len(FLOOD_CHANNELS), report
        assert report["apps"]["1"]["backlog_bytes"] <= report["app_share_bytes"] == OUTBOX_BOUND // 2, report
        # App 2's client events and webhooks still pass: its share is untouched.
        with server.ws(1) as sender, server.ws(1) as peer:
            sender.subscribe_ok("private-b")
            peer.subscribe_ok("private-b")
            for n in range(20):
                sender.client_event("private-b", "client-b", f"b{n}")
            refusals = [f for f in sender.frames_until_pong() if f.get("event") == "pusher:error"]
            assert not refusals, f"app 2's client events refused while app 1 floods: {refusals[:2]}"
            assert collect_client_events(peer, "client-b", 20, 5) == [f"b{n}" for n in range(20)]
            hooks.start()
            want = [occupied("private-b")] + [
                {"name": "client_event", "channel": "private-b", "event": "client-b", "data": f"b{n}",
                 "socket_id": sender.socket_id} for n in range(20)]
            wait_events(hooks, want, 15, path="/b")
        # Every occupied webhook of app 1 was either delivered or counted as dropped, never both.
        delivered = hooks.wait_for(
            lambda _: (lambda got: got if len(got) == len(FLOOD_CHANNELS) - dropped else None)(
                [e["channel"] for e in hooks.delivered_events("/a")]),
            15, "app 1's accepted webhooks delivered")
        assert len(set(delivered)) == len(delivered) and set(delivered) <= set(FLOOD_CHANNELS)
        final = webhook_status(server.port, ADMIN)[1]["apps"]
        assert final["1"]["dropped"] == dropped and final["2"]["dropped"] == 0, final
        assert final["2"]["refused"] == 0, final
    finally:
        for ws in flooders:
            ws.close()


def test_drops_are_logged_at_most_once_per_app_per_interval_with_their_count(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.stop()
    started = time.monotonic()
    server = _two_app_server(pusher_bridge, hooks, tmp_path)
    mark = len(server.proc.stderr_lines)
    # Two waves, a moment apart, so that drops keep coming after the first line was written.
    flooders = _flood(server, FLOOD_CHANNELS[:150])
    server.proc.wait_for_log(DROP_LINE, 5, mark)
    flooders += _flood(server, FLOOD_CHANNELS[150:])
    try:
        dropped = webhook_status(server.port, ADMIN)[1]["apps"]["1"]["dropped"]
        assert dropped > 60, dropped

        def logged() -> list[int]:
            return [int(m.group(1)) for line in server.proc.stderr_lines[mark:] if (m := DROP_LINE.search(line))]
        # The count dropped since the last line is reported once the interval (10 s) has passed.
        counts = retry_until(lambda: (lambda c: c if sum(c) == dropped else None)(logged()), 15)
        assert counts, f"drop lines {logged()} never added up to the {dropped} drops counted"
        elapsed = time.monotonic() - started
        assert len(counts) <= 2 + elapsed // 10, f"{len(counts)} drop lines in {elapsed:.1f} s: {counts}"
        lines = [line for line in server.proc.stderr_lines[mark:] if "app 1" in line and "drop" in line.lower()]
        assert len(lines) == len(counts), lines[:5]
        assert not [line for line in server.proc.stderr_lines[mark:] if "app 2" in line and "drop" in line.lower()]
    finally:
        for ws in flooders:
            ws.close()


def test_webhooks_status_needs_the_admin_token_or_an_apps_credential(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    server = _two_app_server(pusher_bridge, hooks, tmp_path)
    for credential in (None, "wrong", "key-1:secret-2", "key-1:", f"{ADMIN}x"):
        response = get(server.port, "/webhooks/status",
                       [("Authorization", f"Bearer {credential}")] if credential is not None else [])
        assert_json_error(response, 401)
        assert "pending" not in response.body.decode()
    status, everything = webhook_status(server.port, ADMIN)
    assert status == 200 and set(everything["apps"]) == {"1", "2"}, everything
    status, own = webhook_status(server.port, "key-2:secret-2")
    assert status == 200 and set(own["apps"]) == {"2"}, own
    assert {"pending", "in_flight", "waiting", "dead", "outbox_bytes"} <= set(own), own


def test_webhook_flags_for_shares_and_dead_letters_are_checked(tmp_path):
    for flag, value, allowed in (("--webhook-app-share", "0", "1...100"), ("--webhook-app-share", "101", "1...100"),
                                 ("--webhook-dead-letter-bytes", "100", "4096...")):
        result = run_bridge_once([*SAFE, flag, value], cwd=tmp_path)
        lines = result.stderr.decode("utf-8", "replace").splitlines()
        assert result.returncode == 2 and len(lines) == 1 and flag.lstrip("-") in lines[0], (flag, value, lines)
        assert allowed in lines[0], lines[0]


def test_dead_letter_file_is_bounded_and_refused_letters_stay_in_the_outbox(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.reply(410)  # final: every webhook is dead-lettered at once
    app = make_app("1", max_client_events_per_sec=100000,
                   webhooks=[target(hooks, event_types=["client_event"])])
    data = tmp_path / "data"
    server = start_server(pusher_bridge, data, [app], webhook_dead_letter_bytes=4096, admin_token=ADMIN)
    total = 30
    with server.ws() as sender, server.ws() as peer:
        sender.subscribe_ok("private-dl")
        peer.subscribe_ok("private-dl")
        for n in range(total):
            sender.client_event("private-dl", "client-dl", f"{n:02d}:{PADDING}")
        assert not [f for f in sender.frames_until_pong() if f.get("event") == "pusher:error"]
        hooks.wait_count(total, 10)
    full = server.proc.wait_for_log(r"dead-letter file .* is full", 10)
    assert full, "no log line saying the dead-letter file is full"
    letters = dead_letters(data)
    assert 0 < len(letters) < total, len(letters)
    assert (data / DEAD_LETTERS).stat().st_size <= 4096
    # Every refused letter is still in the outbox (delivered again after a restart), none lost.
    report = retry_until(lambda: (lambda r: r if r["pending"] + len(letters) == total else None)(
        webhook_status(server.port, ADMIN)[1]), 5)
    assert report, (webhook_status(server.port, ADMIN)[1], len(letters))
    assert report["dead"] == len(letters), report
    full_lines = [line for line in server.proc.stderr_lines if "is full" in line]
    assert len(full_lines) == 1, full_lines


# ----------------------------------------------------------------------------------------------
# Configuration errors
# ----------------------------------------------------------------------------------------------


def _config_with(entry, app_index: int = 0, position: int = 0) -> dict:
    apps = [make_app("1"), make_app("2")]
    targets = [{"url": "http://127.0.0.1:9/ok"} for _ in range(position)] + [entry]
    apps[app_index]["webhooks"] = targets
    return {"apps": apps}


URL = "http://127.0.0.1:9/hook"


@pytest.mark.parametrize("entry,where,mention", [
    ({"url": URL, "event_types": ["channel_occupied", "bogus"]}, (0, 0), "apps[0].webhooks[0].event_types"),
    ({"url": URL, "event_types": "channel_occupied"}, (0, 0), "apps[0].webhooks[0].event_types"),
    ({"url": URL, "event_types": ["member_joined"]}, (1, 1), "apps[1].webhooks[1].event_types"),
    ({"url": URL, "filter": {"channel_name_contains": "x"}}, (0, 0), "apps[0].webhooks[0].filter"),
    ({"url": URL, "filter": {"channel_name_starts_with": 5}}, (0, 0), "apps[0].webhooks[0].filter"),
    ({"url": URL, "headers": {"X-A": 5}}, (0, 0), "apps[0].webhooks[0].headers"),
    ({"url": URL, "batching": "yes"}, (0, 0), "apps[0].webhooks[0].batching"),
    ({"url": URL, "batching": {"window_ms": 50, "flush": 1}}, (0, 0), "apps[0].webhooks[0].batching"),
    ({"url": URL, "time_ms": "sent"}, (0, 0), "apps[0].webhooks[0].time_ms"),
    ({"url": URL, "retries": 3}, (0, 0), "retries"),
    ({"event_types": ["channel_occupied"]}, (0, 0), "apps[0].webhooks[0].url"),
    ("http://127.0.0.1:9/hook", (1, 0), "apps[1].webhooks[0]"),
], ids=["unknown-type", "types-string", "second-app-second-target", "filter-key", "filter-number",
        "header-number", "batching-string", "batching-key", "time_ms", "unknown-key", "no-url",
        "entry-string"])
def test_bad_webhook_entry_is_a_startup_error(tmp_path, entry, where, mention):
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps(_config_with(entry, *where)))
    result = run_bridge_once([*SAFE, "--config", str(path)], cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("bridge:"), lines[0]
    assert mention in lines[0], f"{mention!r} not named in {lines[0]!r}"
    if mention == "retries":
        assert "apps[0].webhooks[0]" in lines[0], lines[0]


@pytest.mark.parametrize("flag,value", [
    ("--webhook-fsync", "sometimes"),
    ("--webhook-grace", "-1"),
    ("--webhook-outbox-bytes", "lots"),
    ("--webhook-max-age", "0"),
])
def test_bad_webhook_flag_is_a_usage_error(tmp_path, flag, value):
    result = run_bridge_once([*SAFE, flag, value], cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1 and lines[0].startswith("bridge:"), lines
    assert flag.lstrip("-") in lines[0], lines[0]


# ----------------------------------------------------------------------------------------------
# Operator tools: verify and status
# ----------------------------------------------------------------------------------------------


def _verify(body: bytes, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(conftest.bridge_path()), "webhooks", "verify", *flags], input=body,
                          capture_output=True, timeout=10, env=conftest.clean_env())


def test_webhooks_verify_checks_signature_key_and_age():
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": []}).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

    good = _verify(body, "--secret", "s3cret", "--signature", signature, "--key", "k", "--received-key", "k")
    assert good.returncode == 0 and good.stdout.decode().strip() == "valid", good

    tampered = _verify(body.replace(b"events", b"evenTs"), "--secret", "s3cret", "--signature", signature)
    assert tampered.returncode == 1 and "Signature" in tampered.stdout.decode(), tampered

    wrong_key = _verify(body, "--secret", "s3cret", "--signature", signature, "--key", "k", "--received-key", "other")
    assert wrong_key.returncode == 1 and "X-Pusher-Key" in wrong_key.stdout.decode(), wrong_key

    old = json.dumps({"time_ms": int(time.time() * 1000) - 400_000, "events": []}).encode()
    stale = _verify(old, "--secret", "s3cret", "--signature", hmac.new(b"s3cret", old, hashlib.sha256).hexdigest())
    assert stale.returncode == 1 and "time_ms" in stale.stdout.decode(), stale

    missing = _verify(body, "--secret", "s3cret")
    assert missing.returncode == 2 and missing.stderr.decode().startswith("bridge:"), missing


def test_webhooks_status_reports_the_running_servers_backlog(pusher_bridge, receiver, tmp_path):
    hooks = receiver()
    hooks.reply(503)
    app = make_app("1", webhooks=[{"url": hooks.url(), "event_types": ["channel_occupied"]}])
    server = pusher_bridge([app], *hook_flags(tmp_path / "data", **{"webhook-retry-delay": "5", "admin-token": ADMIN}))
    with server.ws() as ws:
        ws.subscribe_ok("status-check")
        hooks.wait_count(1, timeout=5)

        # The endpoint wants a credential: the command takes an app's key:secret from the same config.
        where = ["--host", "127.0.0.1", "--port", str(server.port)]
        refused = run_bridge_once(["webhooks", "status", *where])
        assert refused.returncode == 1 and "refused the credential" in refused.stdout.decode(), refused

        def status():
            result = run_bridge_once(["webhooks", "status", "--config", str(server.config_path), *where])
            assert result.returncode == 0, result
            return json.loads(result.stdout)

        report = retry_until(lambda: (lambda s: s if s["pending"] == 1 else None)(status()), 5)
        assert report, "status never showed the undelivered webhook"
        assert report["dead"] == 0 and report["outbox_bytes"] > 0
        assert set(report["apps"]) == {"1"}, report
        # The admin token (here from the environment, as `serve` reads it) goes first.
        with_token = run_bridge_once(["webhooks", "status", *where], env={"BRIDGE_ADMIN_TOKEN": ADMIN})
        assert with_token.returncode == 0 and json.loads(with_token.stdout)["pending"] == 1, with_token


def test_replay_knows_the_apps_of_organizations(pusher_bridge, receiver, tmp_path):
    """An app created with `bridge apps create --webhook` has webhooks from the server's start, and
    `bridge webhooks replay` signs its dead letters with its secret."""
    from seed_helpers import cli_ok

    hooks = receiver()
    hooks.reply(503)
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    settings = json.dumps({"webhooks": [target(hooks, event_types=["channel_occupied"])]})
    org_app = cli_ok(data, "apps", "create", "--org", "acme-inc", "--name", "chat", "--settings", settings)
    server = start_server(pusher_bridge, data, [make_app("1")], webhook_max_age=1)
    with server.ws(key=org_app["key"]) as ws:
        ws.subscribe_ok("room")
        letters = retry_until(lambda: dead_letters(data), 6)
        assert len(letters) == 1 and letters[0]["app"] == org_app["id"], letters
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) is not None

    hooks.reply(200)
    before = len(hooks.requests)
    replay = ["webhooks", "replay", "--config", str(server.config_path), "--data-dir", str(data)]
    result = run_bridge_once(replay, cwd=tmp_path, timeout=20)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and "1 delivered, 0 still failing" in output, output
    delivered = [r for r in hooks.requests[before:] if r.delivered]
    assert len(delivered) == 1, hooks.requests[before:]
    assert check_webhook(delivered[0], org_app)["events"] == [occupied("room")]
