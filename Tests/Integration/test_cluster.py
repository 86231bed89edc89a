"""Several bridge nodes joined through a real redis-server (issue 7: event fan-out across nodes)."""
from __future__ import annotations

import json
import time

from cluster_helpers import RedisServer, cluster_flags, drain, wait_ready
from conftest import get

NODES = 3


def start_nodes(pusher_bridge, redis: RedisServer, count: int = NODES):
    flags = cluster_flags(redis)
    nodes = [pusher_bridge(None, *flags) for _ in range(count)]
    for node in nodes:
        wait_ready(node.port)
    return nodes


def test_every_subscriber_on_every_node_gets_every_event_once(pusher_bridge, redis):
    nodes = start_nodes(pusher_bridge, redis)
    subscribers = [node.ws() for node in nodes for _ in range(2)]
    for ws in subscribers:
        ws.subscribe_ok("room")
    per_node = 300
    sent = set()
    for index in range(per_node):
        for number, node in enumerate(nodes):
            data = f"n{number}-{index}"
            assert node.api().trigger("room", "tick", data).status == 200
            sent.add(data)
    for ws in subscribers:
        got = drain(ws, "tick", len(sent))
        assert len(got) == len(set(got)) and set(got) == sent, f"duplicates or gaps on a subscriber of {ws.port}"
        ws.assert_silent(0.3, lambda frame: frame.get("event") == "tick")
        ws.close()


def test_socket_id_exclusion_works_across_nodes(pusher_bridge, redis):
    first, second = start_nodes(pusher_bridge, redis, 2)
    excluded, other, local = second.ws(), second.ws(), first.ws()
    for ws in (excluded, other, local):
        ws.subscribe_ok("room")
    assert first.api().trigger("room", "hello", "x", socket_id=excluded.socket_id).status == 200
    assert other.wait_for("hello", "room")["data"] == "x"
    assert local.wait_for("hello", "room")["data"] == "x"
    excluded.assert_silent(0.5, lambda frame: frame.get("event") == "hello")


def test_client_events_reach_other_nodes_and_not_the_sender(pusher_bridge, redis):
    first, second = start_nodes(pusher_bridge, redis, 2)
    sender, here, there = first.ws(), first.ws(), second.ws()
    for ws in (sender, here, there):
        ws.subscribe_ok("private-room")
    sender.client_event("private-room", "client-typing", {"who": "ana"})
    for ws in (here, there):
        assert json.loads(json.dumps(ws.wait_for("client-typing", "private-room")["data"])) == {"who": "ana"}
    sender.assert_silent(0.5, lambda frame: frame.get("event") == "client-typing")


def test_cache_channels_keep_the_last_event_on_every_node(pusher_bridge, redis):
    first, second = start_nodes(pusher_bridge, redis, 2)
    assert first.api().trigger("cache-news", "headline", "v1").status == 200
    deadline = time.monotonic() + 5
    while True:
        with second.ws() as late:
            late.subscribe("cache-news")
            late.wait_for_subscription("cache-news")
            frame = late.recv()
        if frame.get("event") == "headline" or time.monotonic() > deadline:
            break
    assert frame.get("event") == "headline" and frame["data"] == "v1", frame.raw


def test_redis_down_local_delivery_goes_on_and_the_cluster_resumes(pusher_bridge, redis):
    first, second = start_nodes(pusher_bridge, redis, 2)
    local, remote = first.ws(), second.ws()
    for ws in (local, remote):
        ws.subscribe_ok("room")
    redis.stop()
    deadline = time.monotonic() + 10
    while get(first.port, "/ready").status == 200:
        assert time.monotonic() < deadline, "/ready still 200 with Redis down"
        time.sleep(0.1)
    assert first.api().trigger("room", "during", "1").status == 200
    assert local.wait_for("during", "room")["data"] == "1"
    remote.assert_silent(0.3, lambda frame: frame.get("event") == "during")

    redis.start()
    wait_ready(first.port, timeout=15)
    wait_ready(second.port, timeout=15)
    assert first.api().trigger("room", "after", "2").status == 200
    assert remote.wait_for("after", "room")["data"] == "2"
    assert local.wait_for("after", "room")["data"] == "2"


def test_bad_redis_url_is_a_clear_startup_error(bridge):
    from pusher_helpers import run_bridge_once

    result = run_bridge_once(["serve", "--adapter", "redis", "--redis-url", "http://127.0.0.1:1"])
    assert result.returncode == 2, result
    assert result.stderr.decode().startswith("bridge: --redis-url"), result.stderr


def test_terminate_connections_reaches_every_node(pusher_bridge, redis):
    first, second = start_nodes(pusher_bridge, redis, 2)
    here, there, stranger = first.ws(), second.ws(), second.ws()
    here.signin({"id": "42"})
    there.signin({"id": "42"})
    stranger.signin({"id": "43"})
    assert first.rest().terminate_user_connections("42") == {}
    here.expect_close(4009)
    there.expect_close(4009)
    stranger.assert_open()
    stranger.close()


def test_server_to_user_events_reach_every_node(pusher_bridge, redis):
    first, second = start_nodes(pusher_bridge, redis, 2)
    with second.ws() as there, second.ws() as stranger:
        there.signin({"id": "42"})
        stranger.signin({"id": "43"})
        assert first.api().trigger("#server-to-user-42", "note", "hi").status == 200
        assert there.wait_for("note")["data"] == "hi"
        stranger.assert_silent(0.5, lambda frame: frame.get("event") == "note")
