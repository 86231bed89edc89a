"""The cluster state model (issue 7), on bridge nodes joined through a real redis-server.

Presence member lists and member_added/member_removed, webhooks (channel_occupied/vacated,
member_added/removed, the grace window), the HTTP API's channel answers, subscription_count and
per-app max_connections all count the whole cluster, not one node. A node killed with -9 is swept
by the survivors once its lease (--cluster-lease) has expired; after a Redis restart the nodes
rebuild the shared state. A contract suite runs the same assertions against a standalone node
(local adapter) and a two-node Redis cluster.

Nodes run with --cluster-lease 3 (renewed every second) and the config keys "webhook-grace": 1
and short webhook retry delays. The webhook receiver is webhook_receiver.py (the `receiver`
fixture); every node serves the same app with the same webhook URL, so each event the receiver
counts more than once was sent by more than one node."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from cluster_helpers import (
    cluster_flags,
    Deployment,
    cluster,
    knows_flag,
    member_events,
    read_for,
    standalone,
    wait_member_events,
    wait_ready,
)
from conftest import get, wait_until
from pusher_helpers import PusherWS, assert_error_frame, make_app, run_bridge_once
from webhook_receiver import WebhookReceiver, check_webhook, target

LEASE = 3.0            # --cluster-lease: renewed every LEASE/3 s
GRACE = 1.0            # "webhook-grace"
HEARTBEAT = LEASE / 3
OPTIONS = {"webhook-grace": GRACE, "webhook-retry-delay": 0.2, "webhook-retry-max-delay": 1,
           "webhook-timeout": 2}
HOOK_TYPES = ["channel_occupied", "channel_vacated", "member_added", "member_removed"]
SPREAD = 5.0           # how long a change on one node may take to show on the others


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def hook_app(hooks: WebhookReceiver, **settings) -> dict:
    """App 1 with one webhook target for the four state events."""
    return make_app("1", webhooks=[target(hooks, event_types=HOOK_TYPES)], **settings)


def hook_counts(hooks: WebhookReceiver, app: dict) -> Counter:
    """Every state event the receiver got, counted per (name, channel, user_id) over every delivered
    request (no de-duplication by webhook id: two nodes sending one event is two deliveries).
    Each request is checked for headers and signature."""
    counts: Counter = Counter()
    for request in hooks.requests:
        check_webhook(request, app)
    for request in hooks.delivered():
        for event in request.events:
            counts[(event["name"], event["channel"], event.get("user_id"))] += 1
    return counts


def expect_hooks(hooks: WebhookReceiver, app: dict, want: Counter, timeout: float = 10,
                 quiet: float = GRACE + 1.0) -> None:
    """Wait until every event of `want` has arrived, then `quiet` seconds more (anything a second
    node would send, or a grace timer would fire), then the counts must be exactly `want`."""
    def enough():
        have = hook_counts(hooks, app)
        return all(have[key] >= count for key, count in want.items())
    try:
        wait_until(enough, timeout, what="webhooks")
    except AssertionError:
        raise AssertionError(f"webhooks within {timeout}s: {dict(hook_counts(hooks, app))}; "
                             f"expected {dict(want)}") from None
    time.sleep(quiet)
    have = hook_counts(hooks, app)
    assert +have == +want, (f"each webhook must arrive exactly once for the whole cluster; "
                            f"extra {dict(have - want)}, missing {dict(want - have)}")


def occupied(channel: str) -> tuple:
    return ("channel_occupied", channel, None)


def vacated(channel: str) -> tuple:
    return ("channel_vacated", channel, None)


def added(channel: str, user: str) -> tuple:
    return ("member_added", channel, user)


def removed(channel: str, user: str) -> tuple:
    return ("member_removed", channel, user)


def members(*pairs: tuple[str, str]) -> Counter:
    """Counter of member events: members(("added", "1"), ("removed", "1"))."""
    return Counter(pairs)


def settle(sockets: list[PusherWS], seconds: float) -> None:
    """Let `seconds` pass, then read what arrived meanwhile on every socket."""
    time.sleep(seconds)
    for ws in sockets:
        read_for(ws, 0.05)


def assert_members(ws: PusherWS, channel: str, want: Counter, who: str) -> None:
    got = member_events(ws, channel)
    assert +got == +want, f"{who} (:{ws.port}): member events on {channel} {dict(got)}, expected exactly {dict(want)}"


def presence_of(data: dict) -> tuple[list[str], dict, int]:
    presence = data["presence"]
    return sorted(presence["ids"]), presence["hash"], presence["count"]


def unsubscribe(ws: PusherWS, channel: str) -> None:
    ws.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    ws.assert_open()  # the unsubscribe has been handled


def users(node, channel: str) -> list[str]:
    return sorted(user["id"] for user in node.rest().users_info(channel)["users"])


def assert_every_node(dep: Deployment, view, want, timeout: float = SPREAD) -> None:
    """Every node's `view(node)` equals `want` (polled until `timeout`: writes may take a moment)."""
    last: dict[int, object] = {}

    def agree():
        for node in dep.nodes:
            last[node.port] = view(node)
        return all(answer == want for answer in last.values())
    try:
        wait_until(agree, timeout, what="answers")
    except AssertionError:
        wrong = {port: answer for port, answer in last.items() if answer != want}
        raise AssertionError(f"nodes disagree with the cluster state after {timeout}s; expected "
                             f"{want}, got (per port) {wrong}") from None


def close_all(*sockets: PusherWS) -> None:
    for ws in sockets:
        ws.close()


def connect_or_4004(node, timeout: float = 5.0) -> PusherWS | None:
    """A connection to app 1 of `node`: the PusherWS if established, None when refused with 4004."""
    ws = PusherWS(node.port, key=node.app(0)["key"], established=False, rest=node.rest())
    try:
        frame = ws.recv(timeout)
    except BaseException:
        ws.close()
        raise
    if frame.get("event") == "pusher:connection_established":
        ws.socket_id = json.loads(frame["data"])["socket_id"]
        return ws
    assert_error_frame(frame, 4004)
    ws.expect_close(4004, timeout)
    ws.close()
    return None


# ----------------------------------------------------------------------------------------------
# The lease option
# ----------------------------------------------------------------------------------------------


def test_cluster_lease_is_a_serve_option(tmp_path):
    assert knows_flag("--cluster-lease"), "`bridge serve --help` does not list --cluster-lease"
    for bad in ("soon", "-1", "2", "301"):   # whole seconds, 3 to 300
        result = run_bridge_once(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path),
                                  "--adapter", "redis", "--cluster-lease", bad])
        lines = result.stderr.decode("utf-8", "replace").splitlines()
        assert result.returncode == 2, (bad, result.returncode, lines)
        assert len(lines) == 1 and lines[0].startswith("bridge: ") and "--cluster-lease" in lines[0], lines


# ----------------------------------------------------------------------------------------------
# 1. Presence across nodes
# ----------------------------------------------------------------------------------------------


def test_presence_member_list_spans_every_node(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 3, [make_app("1")], OPTIONS, LEASE)
    channel = "presence-room"
    ann, bob, cat = dep.ws(0), dep.ws(1), dep.ws(2)
    try:
        assert ann.subscribe_ok(channel, "1", {"name": "Ann"}) == \
            {"presence": {"ids": ["1"], "hash": {"1": {"name": "Ann"}}, "count": 1}}
        # Bob joins on node B after Ann joined on node A: his list has Ann.
        assert presence_of(bob.subscribe_ok(channel, "2", {"name": "Bob"})) == \
            (["1", "2"], {"1": {"name": "Ann"}, "2": {"name": "Bob"}}, 2)
        assert presence_of(cat.subscribe_ok(channel, "3", {"name": "Cat"})) == \
            (["1", "2", "3"], {"1": {"name": "Ann"}, "2": {"name": "Bob"}, "3": {"name": "Cat"}}, 3)
        wait_member_events(ann, channel, members(("added", "2"), ("added", "3")), SPREAD)
        wait_member_events(bob, channel, members(("added", "3")), SPREAD)
        frames = [f for f in bob.received if f.get("event") == "pusher_internal:member_added"]
        assert json.loads(frames[0]["data"]) == {"user_id": "3", "user_info": {"name": "Cat"}}, frames[0].raw
        settle([ann, bob, cat], 0.7)
        assert_members(ann, channel, members(("added", "2"), ("added", "3")), "ann")
        assert_members(bob, channel, members(("added", "3")), "bob")
        assert_members(cat, channel, members(), "cat")
    finally:
        close_all(ann, bob, cat)


def test_member_events_once_per_user_across_nodes(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 3, [make_app("1")], OPTIONS, LEASE)
    channel = "presence-chat"
    wa, wb, wc = dep.ws(0), dep.ws(1), dep.ws(2)
    tab_a, tab_b = dep.ws(0), dep.ws(1)
    watchers = {"wa": wa, "wb": wb, "wc": wc}
    try:
        for name, ws in watchers.items():
            ws.subscribe_ok(channel, name)
        want = {"wa": members(("added", "wb"), ("added", "wc")), "wb": members(("added", "wc")), "wc": members()}
        for name, ws in watchers.items():
            wait_member_events(ws, channel, want[name], SPREAD)

        # User u's first connection anywhere (node A): member_added for every watcher, once.
        tab_a.subscribe_ok(channel, "u", {"tab": "a"})
        for name, ws in watchers.items():
            want[name][("added", "u")] += 1
            wait_member_events(ws, channel, want[name], SPREAD)
        # Its second connection (node B): the full list, no member_added for anyone.
        assert presence_of(tab_b.subscribe_ok(channel, "u", {"tab": "a"}))[0] == ["u", "wa", "wb", "wc"]
        settle(list(watchers.values()) + [tab_a], 1.0)
        for name, ws in watchers.items():
            assert_members(ws, channel, want[name], name)
        assert_members(tab_a, channel, members(), "u's first tab")

        # u closes on node A but is still on node B: no member_removed.
        tab_a.close()
        settle(list(watchers.values()), 1.5)
        for name, ws in watchers.items():
            assert_members(ws, channel, want[name], f"{name} after u left node A only")
        assert users(dep.node(2), channel) == ["u", "wa", "wb", "wc"]

        # u's last connection (node B) closes: member_removed once for every watcher.
        tab_b.close()
        for name, ws in watchers.items():
            want[name][("removed", "u")] += 1
            wait_member_events(ws, channel, want[name], SPREAD)
        settle(list(watchers.values()), 1.0)
        for name, ws in watchers.items():
            assert_members(ws, channel, want[name], name)
        removal = [f for f in wc.received if f.get("event") == "pusher_internal:member_removed"]
        assert json.loads(removal[0]["data"]) == {"user_id": "u"}, removal[0].raw
    finally:
        close_all(wa, wb, wc, tab_a, tab_b)


# ----------------------------------------------------------------------------------------------
# 2. Webhooks once for the whole cluster, and the grace window across nodes
# ----------------------------------------------------------------------------------------------


def test_webhooks_once_for_the_whole_cluster(pusher_bridge, redis, receiver):
    hooks = receiver()
    app = hook_app(hooks)
    dep = cluster(pusher_bridge, redis, 3, [app], OPTIONS, LEASE)
    s_a, s_b = dep.ws(0), dep.ws(1)
    p_a, p_b, p_c = dep.ws(0), dep.ws(1), dep.ws(2)
    try:
        s_a.subscribe_ok("room")
        s_b.subscribe_ok("room")
        p_a.subscribe_ok("presence-x", "1")
        p_b.subscribe_ok("presence-x", "1")   # user 1 again, on another node
        p_c.subscribe_ok("presence-x", "2")
        want = Counter([occupied("room"), occupied("presence-x"), added("presence-x", "1"),
                        added("presence-x", "2")])
        expect_hooks(hooks, app, want)

        # User 1 leaves node A but stays on node B: nothing, even after the grace.
        p_a.close()
        s_a.close()   # room still has s_b
        expect_hooks(hooks, app, want, timeout=1, quiet=GRACE + 1.0)

        p_b.close()
        want[removed("presence-x", "1")] += 1
        expect_hooks(hooks, app, want)
        p_c.close()
        unsubscribe(s_b, "room")
        want.update([removed("presence-x", "2"), vacated("presence-x"), vacated("room")])
        expect_hooks(hooks, app, want)
    finally:
        close_all(s_a, s_b, p_a, p_b, p_c)


def test_grace_window_spans_nodes(pusher_bridge, redis, receiver):
    hooks = receiver()
    app = hook_app(hooks)
    dep = cluster(pusher_bridge, redis, 2, [app], OPTIONS, LEASE)
    first, member = dep.ws(0), dep.ws(0)
    again = again_member = None
    try:
        first.subscribe_ok("lobby")
        member.subscribe_ok("presence-g", "7")
        want = Counter([occupied("lobby"), occupied("presence-g"), added("presence-g", "7")])
        expect_hooks(hooks, app, want, quiet=0.3)

        # Leave on node A, come back on node B within the grace: neither vacated nor occupied
        # (nor member_removed/member_added).
        unsubscribe(first, "lobby")
        member.close()
        left = time.monotonic()
        again, again_member = dep.ws(1), dep.ws(1)
        again.subscribe_ok("lobby")
        again_member.subscribe_ok("presence-g", "7")
        assert time.monotonic() - left < 0.6 * GRACE, "the rejoin took too long for the test"
        expect_hooks(hooks, app, want, timeout=1, quiet=2 * GRACE + 1.0)

        # A real leave: each once, after the grace.
        again.close()
        again_member.close()
        want.update([vacated("lobby"), vacated("presence-g"), removed("presence-g", "7")])
        expect_hooks(hooks, app, want)
    finally:
        close_all(*[ws for ws in (first, member, again, again_member) if ws is not None])


# ----------------------------------------------------------------------------------------------
# 3. A node killed with -9: the survivors sweep it after its lease
# ----------------------------------------------------------------------------------------------


def test_killed_node_is_swept_after_its_lease(pusher_bridge, redis, receiver):
    hooks = receiver()
    app = hook_app(hooks)
    dep = cluster(pusher_bridge, redis, 3, [app], OPTIONS, LEASE)
    victim, survivor_b, survivor_c = dep.nodes
    watcher = survivor_b.ws()
    shared_c = survivor_c.ws()
    on_victim = [victim.ws() for _ in range(3)]
    try:
        watcher.subscribe_ok("presence-x", "w")
        on_victim[0].subscribe_ok("presence-x", "a1")
        on_victim[0].subscribe_ok("room-a")           # a channel only the victim has
        on_victim[1].subscribe_ok("presence-x", "shared")
        shared_c.subscribe_ok("presence-x", "shared")  # user "shared" is on a survivor too
        on_victim[2].subscribe_ok("presence-solo", "solo")
        wait_member_events(watcher, "presence-x", members(("added", "a1"), ("added", "shared")), SPREAD)
        want = Counter([occupied("presence-x"), occupied("room-a"), occupied("presence-solo"),
                        added("presence-x", "w"), added("presence-x", "a1"), added("presence-x", "shared"),
                        added("presence-solo", "solo")])
        expect_hooks(hooks, app, want, quiet=0.3)  # delivered before the kill: nothing pending on A

        victim.proc.kill()
        killed = time.monotonic()
        wait_member_events(watcher, "presence-x", members(("added", "a1"), ("added", "shared"), ("removed", "a1")),
                           15)
        took = time.monotonic() - killed
        settle([watcher, shared_c], 1.0)
        assert_members(watcher, "presence-x", members(("added", "a1"), ("added", "shared"), ("removed", "a1")),
                       f"watcher ({took:.1f}s after the kill)")

        want.update([removed("presence-x", "a1"), removed("presence-solo", "solo"),
                     vacated("presence-solo"), vacated("room-a")])
        expect_hooks(hooks, app, want, timeout=10)

        survivors = Deployment("cluster", [survivor_b, survivor_c])
        assert_every_node(survivors, lambda node: (node.rest().channels_info(),
                                                   users(node, "presence-x")),
                          ({"channels": {"presence-x": {}}}, ["shared", "w"]))
    finally:
        close_all(watcher, shared_c, *on_victim)


# ----------------------------------------------------------------------------------------------
# 4. Redis restarted under connected clients
# ----------------------------------------------------------------------------------------------


def cluster_view(node) -> dict:
    rest = node.rest()
    return {
        "channels": rest.channels_info(),
        "presence": rest.channels_info(prefix_filter="presence-", attributes=["user_count"]),
        "room": rest.channel_info("room", ["subscription_count"]),
        "presence-x": rest.channel_info("presence-x", ["user_count", "subscription_count"]),
        "users": users(node, "presence-x"),
    }


def test_redis_restart_rebuilds_the_cluster_state(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 3, [make_app("1")], OPTIONS, LEASE)
    a_room, b_room, c_room = dep.ws(0), dep.ws(1), dep.ws(2)
    a_member, b_member = dep.ws(0), dep.ws(1)
    c_member = None
    try:
        for ws in (a_room, b_room, c_room):
            ws.subscribe_ok("room")
        a_member.subscribe_ok("presence-x", "1")
        b_member.subscribe_ok("presence-x", "2")

        redis.stop()
        wait_until(lambda: get(dep.node(0).port, "/ready").status == 503, 10, what="/ready 503 with Redis down")
        assert dep.node(0).api().trigger("room", "during", "1").status == 200
        assert a_room.wait_for("during", "room")["data"] == "1"   # local delivery goes on
        # The cluster changes while Redis is away: user 2 leaves on B, user 3 joins on C.
        b_member.close()
        c_member = dep.ws(2)
        c_member.subscribe_ok("presence-x", "3")

        redis.start()   # empty: every key is gone
        restarted = time.monotonic()
        for node in dep.nodes:
            wait_ready(node.port, timeout=15)
        want = {
            "channels": {"channels": {"room": {}, "presence-x": {}}},
            "presence": {"channels": {"presence-x": {"user_count": 2}}},
            "room": {"occupied": True, "subscription_count": 3},
            "presence-x": {"occupied": True, "user_count": 2, "subscription_count": 2},
            "users": ["1", "3"],
        }
        assert_every_node(dep, cluster_view, want, timeout=max(1.0, 2 * LEASE + 2 - (time.monotonic() - restarted)))

        assert dep.node(2).api().trigger("room", "after", "2").status == 200
        for ws in (a_room, b_room, c_room):
            assert ws.wait_for("after", "room")["data"] == "2"
    finally:
        close_all(*[ws for ws in (a_room, b_room, c_room, a_member, b_member, c_member) if ws is not None])


# ----------------------------------------------------------------------------------------------
# 5. HTTP API answers are cluster-wide, on every node
# ----------------------------------------------------------------------------------------------


def test_http_api_answers_are_cluster_wide_on_every_node(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 3, [make_app("1")], OPTIONS, LEASE)
    sockets = {name: dep.ws(index) for name, index in
               [("a1", 0), ("a2", 0), ("b1", 1), ("b2", 1), ("c1", 2), ("c2", 2)]}
    s = sockets
    try:
        for name in ("a1", "a2", "b1", "c1"):
            s[name].subscribe_ok("room")
        s["a1"].subscribe_ok("private-a")
        s["a2"].subscribe_ok("presence-x", "1")
        s["b1"].subscribe_ok("presence-x", "1")   # user 1 on two nodes
        s["b2"].subscribe_ok("presence-x", "2")
        s["b2"].subscribe_ok("presence-y", "3")
        s["c2"].subscribe_ok("presence-y", "4")

        def view(node):
            rest = node.rest()
            return {
                "all": rest.channels_info(),
                "presence": rest.channels_info(prefix_filter="presence-", attributes=["user_count"]),
                "private": rest.channels_info(prefix_filter="private-"),
                "room": rest.channel_info("room", ["subscription_count"]),
                "x": rest.channel_info("presence-x", ["subscription_count", "user_count"]),
                "y": rest.channel_info("presence-y", ["user_count"]),
                "empty": rest.channel_info("nobody-here", ["subscription_count"]),
                "x-users": users(node, "presence-x"),
                "y-users": users(node, "presence-y"),
                # The counts a trigger answers with `info` are the cluster's too.
                "trigger": node.api().events({"name": "ping", "channels": ["room", "presence-x"], "data": "{}",
                                              "info": "subscription_count,user_count"}).json,
                "batch": node.api().batch([{"channel": "presence-y", "name": "ping", "data": "{}",
                                            "info": "user_count"}]).json,
            }
        want = {
            "all": {"channels": {"room": {}, "private-a": {}, "presence-x": {}, "presence-y": {}}},
            "presence": {"channels": {"presence-x": {"user_count": 2}, "presence-y": {"user_count": 2}}},
            "private": {"channels": {"private-a": {}}},
            "room": {"occupied": True, "subscription_count": 4},
            "x": {"occupied": True, "subscription_count": 3, "user_count": 2},
            "y": {"occupied": True, "user_count": 2},
            "empty": {"occupied": False, "subscription_count": 0},
            "x-users": ["1", "2"],
            "y-users": ["3", "4"],
            "trigger": {"channels": {"room": {"subscription_count": 4},
                                     "presence-x": {"subscription_count": 3, "user_count": 2}}},
            "batch": {"batch": [{"user_count": 2}]},
        }
        assert_every_node(dep, view, want)

        # Leaves on every node: the answers follow, on every node.
        s["a1"].close()                      # room 3, private-a empty
        unsubscribe(s["b1"], "presence-x")   # user 1 is still on node A (a2)
        unsubscribe(s["b1"], "room")
        unsubscribe(s["c1"], "room")         # room: a2 only
        s["c2"].close()                      # user 4 gone
        want.update({
            "all": {"channels": {"room": {}, "presence-x": {}, "presence-y": {}}},
            "presence": {"channels": {"presence-x": {"user_count": 2}, "presence-y": {"user_count": 1}}},
            "private": {"channels": {}},
            "room": {"occupied": True, "subscription_count": 1},
            "x": {"occupied": True, "subscription_count": 2, "user_count": 2},
            "y": {"occupied": True, "user_count": 1},
            "y-users": ["3"],
            "trigger": {"channels": {"room": {"subscription_count": 1},
                                     "presence-x": {"subscription_count": 2, "user_count": 2}}},
            "batch": {"batch": [{"user_count": 1}]},
        })
        assert_every_node(dep, view, want)
    finally:
        close_all(*sockets.values())


# ----------------------------------------------------------------------------------------------
# 6. subscription_count and 7. max_connections count the cluster
# ----------------------------------------------------------------------------------------------


def subscription_count(frame) -> int:
    return json.loads(frame["data"])["subscription_count"]


def wait_count(ws: PusherWS, channel: str, count: int, timeout: float = SPREAD):
    return ws.wait_for("pusher_internal:subscription_count", channel, timeout,
                       where=lambda frame: subscription_count(frame) == count)


def test_subscription_count_counts_every_node(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 2, [make_app("1", enable_subscription_count=True)], OPTIONS, LEASE)
    here, there, third = dep.ws(0), dep.ws(1), dep.ws(1)
    try:
        here.subscribe_ok("room")
        wait_count(here, "room", 1)
        there.subscribe_ok("room")
        wait_count(there, "room", 2)   # includes the subscription on node A
        wait_count(here, "room", 2)    # node A learns of node B's
        third.subscribe_ok("room")
        wait_count(here, "room", 3)
        unsubscribe(there, "room")
        wait_count(here, "room", 2)
        wait_count(third, "room", 2)
    finally:
        close_all(here, there, third)


def test_max_connections_counts_every_node(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 2, [make_app("1", max_connections=4)], OPTIONS, LEASE)
    held = [dep.ws(0), dep.ws(0), dep.ws(1), dep.ws(1)]
    try:
        for node in dep.nodes:
            # Within a heartbeat (LEASE/3) plus slack, a fifth connection on either node is refused.
            def refused(node=node):
                ws = connect_or_4004(node)
                if ws is None:
                    return True
                ws.close()
                return False
            wait_until(refused, HEARTBEAT + 3, what=f"4004 for a 5th connection on :{node.port} "
                                               f"(max_connections 4, 2 per node)", interval=0.2)
        for ws in held:
            ws.assert_open()
        # One closes on node A: node B accepts a new one within a heartbeat.
        held.pop(0).close()
        accepted = wait_until(lambda: connect_or_4004(dep.node(1)), HEARTBEAT + 3,
                              what="a connection on node B after one closed on node A", interval=0.2)
        held.append(accepted)
    finally:
        close_all(*held)


# ----------------------------------------------------------------------------------------------
# 8. The contract: the same assertions against a standalone node and a 2-node Redis cluster
# ----------------------------------------------------------------------------------------------


@pytest.fixture(params=["standalone", "cluster"])
def deploy(request, pusher_bridge):
    """Factory: `deploy(apps)` → a Deployment of the parametrized kind serving `apps`."""
    def make(apps: list[dict]) -> Deployment:
        if request.param == "standalone":
            return standalone(pusher_bridge, apps, OPTIONS)
        return cluster(pusher_bridge, request.getfixturevalue("redis"), 2, apps, OPTIONS, LEASE)
    return make


def test_contract_publish_subscribe(deploy):
    dep = deploy([make_app("1")])
    room = [dep.ws(index) for index in range(4)]
    other = dep.ws(1)
    try:
        for ws in room:
            ws.subscribe_ok("room")
        other.subscribe_ok("other")
        per_node = 20
        for index in range(per_node):
            for number, node in enumerate(dep.nodes):
                assert node.api().trigger("room", "tick", f"n{number}-{index}").status == 200
        for ws in room:
            got = [ws.wait_for("tick", "room")["data"] for _ in range(per_node * len(dep))]
            for number in range(len(dep)):
                mine = [data for data in got if data.startswith(f"n{number}-")]
                assert mine == [f"n{number}-{index}" for index in range(per_node)], \
                    f"gaps, duplicates or reordering from node {number} on :{ws.port}: {mine}"
            ws.assert_silent(0.2, lambda frame: frame.get("event") == "tick")
        other.assert_silent(0.2, lambda frame: frame.get("event") == "tick")
        # socket_id exclusion, published on the node the excluded socket is not on (when there is one)
        excluded = room[1]
        assert dep.node(0).api().trigger("room", "hello", "x", socket_id=excluded.socket_id).status == 200
        for ws in room:
            if ws is not excluded:
                assert ws.wait_for("hello", "room")["data"] == "x"
        excluded.assert_silent(0.3, lambda frame: frame.get("event") == "hello")
    finally:
        close_all(*room, other)


def test_contract_presence(deploy):
    dep = deploy([make_app("1")])
    channel = "presence-team"
    one, two, three, one_again = dep.ws(0), dep.ws(1), dep.ws(2), dep.ws(3)
    try:
        assert presence_of(one.subscribe_ok(channel, "1", {"n": 1})) == (["1"], {"1": {"n": 1}}, 1)
        assert presence_of(two.subscribe_ok(channel, "2", {"n": 2}))[::2] == (["1", "2"], 2)
        assert presence_of(three.subscribe_ok(channel, "3", {"n": 3}))[::2] == (["1", "2", "3"], 3)
        assert presence_of(one_again.subscribe_ok(channel, "1", {"n": 1})) == \
            (["1", "2", "3"], {"1": {"n": 1}, "2": {"n": 2}, "3": {"n": 3}}, 3)
        wait_member_events(one, channel, members(("added", "2"), ("added", "3")), SPREAD)
        wait_member_events(two, channel, members(("added", "3")), SPREAD)
        one.close()                     # user 1 still has one_again
        unsubscribe(two, channel)       # user 2 leaves
        wait_member_events(three, channel, members(("removed", "2")), SPREAD)
        one_again.close()               # user 1's last connection
        wait_member_events(three, channel, members(("removed", "2"), ("removed", "1")), SPREAD)
        settle([two, three], 0.7)
        assert_members(two, channel, members(("added", "3")), "user 2")
        assert_members(three, channel, members(("removed", "2"), ("removed", "1")), "user 3")
        assert_every_node(dep, lambda node: users(node, channel), ["3"])
    finally:
        close_all(one, two, three, one_again)


def test_contract_occupied_and_vacated_webhooks(deploy, receiver):
    hooks = receiver()
    app = hook_app(hooks)
    dep = deploy([app])
    sockets = [dep.ws(index) for index in range(4)]
    try:
        sockets[0].subscribe_ok("room")
        sockets[1].subscribe_ok("room")
        sockets[2].subscribe_ok("presence-x", "1")
        sockets[3].subscribe_ok("presence-x", "2")
        want = Counter([occupied("room"), occupied("presence-x"), added("presence-x", "1"),
                        added("presence-x", "2")])
        expect_hooks(hooks, app, want, quiet=0.5)
        close_all(*sockets)
        want.update([vacated("room"), vacated("presence-x"), removed("presence-x", "1"),
                     removed("presence-x", "2")])
        expect_hooks(hooks, app, want)
    finally:
        close_all(*sockets)


def test_contract_channels_and_users_answers(deploy):
    dep = deploy([make_app("1")])
    sockets = [dep.ws(index) for index in range(4)]
    try:
        sockets[0].subscribe_ok("room")
        sockets[1].subscribe_ok("room")
        sockets[1].subscribe_ok("private-p")
        sockets[2].subscribe_ok("presence-x", "1")
        sockets[3].subscribe_ok("presence-x", "2")
        sockets[3].subscribe_ok("presence-y", "3")

        def view(node):
            rest = node.rest()
            return (rest.channels_info(),
                    rest.channels_info(prefix_filter="presence-", attributes=["user_count"]),
                    users(node, "presence-x"))
        assert_every_node(dep, view, (
            {"channels": {"room": {}, "private-p": {}, "presence-x": {}, "presence-y": {}}},
            {"channels": {"presence-x": {"user_count": 2}, "presence-y": {"user_count": 1}}},
            ["1", "2"]))
        sockets[0].close()
        sockets[3].close()
        assert_every_node(dep, view, (
            {"channels": {"room": {}, "private-p": {}, "presence-x": {}}},
            {"channels": {"presence-x": {"user_count": 1}}},
            ["1"]))
    finally:
        close_all(*sockets)


# ----------------------------------------------------------------------------------------------
# A node that is shut down (SIGTERM) leaves at once; queries while Redis is down
# ----------------------------------------------------------------------------------------------


def test_stopped_node_leaves_without_waiting_for_its_lease(pusher_bridge, redis, receiver):
    hooks = receiver()
    app = hook_app(hooks)
    # A long lease: whatever arrives within seconds was not the sweep.
    dep = cluster(pusher_bridge, redis, 2, [app], OPTIONS, lease=60)
    leaving, staying = dep.nodes
    watcher = staying.ws()
    member = leaving.ws()
    try:
        watcher.subscribe_ok("presence-x", "w")
        member.subscribe_ok("presence-x", "m")
        wait_member_events(watcher, "presence-x", members(("added", "m")), SPREAD)
        leaving.proc.send_signal(signal.SIGTERM)
        wait_member_events(watcher, "presence-x", members(("added", "m"), ("removed", "m")), 10)
        assert leaving.proc.wait(15) == 0
        assert_every_node(Deployment("cluster", [staying]), lambda node: users(node, "presence-x"), ["w"])
        expect_hooks(hooks, app, Counter([occupied("presence-x"), added("presence-x", "w"), added("presence-x", "m"),
                                          removed("presence-x", "m")]))
    finally:
        close_all(watcher, member)


def test_channel_queries_answer_503_while_redis_is_down(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 1, [make_app("1")], OPTIONS, LEASE)
    node = dep.node(0)
    ws = node.ws()
    try:
        ws.subscribe_ok("presence-x", "1")
        redis.stop()
        wait_until(lambda: get(node.port, "/ready").status == 503, 10, what="/ready 503 with Redis down")
        for path in ("/channels", "/channels/presence-x", "/channels/presence-x/users"):
            result = node.api().get(path)
            assert result.status == 503, (path, result)
            assert "cannot be reached" in result.json["error"], (path, result)
        # A trigger is still published (to this node's clients) and answers with this node's counts.
        result = node.api().events({"name": "ev", "channel": "presence-x", "data": "{}", "info": "user_count"})
        assert result.status == 200 and result.json == {"channels": {"presence-x": {"user_count": 1}}}, result
        assert ws.wait_for("ev", "presence-x")["data"] == "{}"
    finally:
        close_all(ws)


# ----------------------------------------------------------------------------------------------
# Cache channels: the last event is the cluster's
# ----------------------------------------------------------------------------------------------


def test_cache_channel_serves_the_last_event_on_a_node_started_after_it(pusher_bridge, redis, receiver):
    hooks = receiver()
    app = make_app("1", webhooks=[target(hooks, event_types=["cache_miss"])])
    flags = cluster_flags(redis, lease=LEASE)
    first = pusher_bridge([app], *flags, options=OPTIONS)
    wait_ready(first.port)
    # Two subscribers on two nodes find the cache empty: one cache_miss webhook for the cluster.
    second = pusher_bridge([app], *flags, options=OPTIONS)
    wait_ready(second.port)
    empty = [first.ws(), second.ws()]
    try:
        for ws in empty:
            ws.subscribe("cache-news")
            ws.wait_for_subscription("cache-news")
            assert ws.recv()["event"] == "pusher:cache_miss"
        wait_until(lambda: hooks.delivered(), 10, what="the cache_miss webhook")
        time.sleep(1.0)
        misses = [event for request in hooks.delivered() for event in request.events]
        assert misses == [{"name": "cache_miss", "channel": "cache-news"}], misses

        assert first.api().trigger("cache-news", "headline", "v1").status == 200
        # A node that was not running when the event was published has it all the same.
        late_node = pusher_bridge([app], *flags, options=OPTIONS)
        wait_ready(late_node.port)
        with late_node.ws() as late:
            late.subscribe("cache-news")
            late.wait_for_subscription("cache-news")
            frame = late.recv()
            assert frame.get("event") == "headline" and frame["data"] == "v1", frame.raw
        info = late_node.rest().channel_info("cache-news", ["cache"])
        assert info["cache"]["data"] == "v1" and 0 < info["cache"]["ttl"] <= 1800, info
    finally:
        close_all(*empty)


# ----------------------------------------------------------------------------------------------
# The presence member cap counts the cluster
# ----------------------------------------------------------------------------------------------


def test_presence_member_cap_counts_every_node(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 3, [make_app("1", max_presence_members_per_channel=2)], OPTIONS, LEASE)
    a, b, c, c_again = dep.ws(0), dep.ws(1), dep.ws(2), dep.ws(2)
    try:
        a.subscribe_ok("presence-room", "1")
        b.subscribe_ok("presence-room", "2")
        payload = c.auth_for("presence-room", "3")
        c.subscribe("presence-room", payload["auth"], payload["channel_data"])
        c.expect_subscription_error("presence-room", "LimitReached")
        # The refused subscription counted nowhere; a known user still gets in, on any node.
        c_again.subscribe_ok("presence-room", "1")
        assert_every_node(dep, lambda node: (users(node, "presence-room"),
                                             node.rest().channel_info("presence-room", ["user_count", "subscription_count"])),
                          (["1", "2"], {"occupied": True, "user_count": 2, "subscription_count": 3}))
        # Once a user leaves there is room again, and the refused client can subscribe.
        b.close()
        wait_until(lambda: users(dep.node(2), "presence-room") == ["1"], SPREAD, what="user 2 gone")
        c.subscribe_ok("presence-room", "3")
    finally:
        close_all(a, b, c, c_again)


# ----------------------------------------------------------------------------------------------
# Member events keep the shared state's order; a repeated subscribe gets the cluster's members
# ----------------------------------------------------------------------------------------------


def member_signs(ws: PusherWS, channel: str, user: str) -> str:
    """The member events `ws` got for `user` on `channel`, as "+" and "-" in arrival order."""
    return "".join("+" if frame["event"].endswith("added") else "-" for frame in ws.received
                   if frame.get("event") in ("pusher_internal:member_added", "pusher_internal:member_removed")
                   and frame.get("channel") == channel and json.loads(frame["data"])["user_id"] == user)


def test_a_reload_onto_another_node_keeps_the_member_in_every_view(pusher_bridge, redis):
    # The old tab leaves node B while the reloaded one joins node A at once: a watcher on A must
    # hear the leave before the join (as the shared state ordered them), or neither.
    dep = cluster(pusher_bridge, redis, 2, [make_app("1")], OPTIONS, LEASE)
    node_a, node_b = dep.nodes
    channel = "presence-reload"
    watcher = node_a.ws()
    watcher.subscribe_ok(channel, "w")
    wrong = []
    try:
        for attempt in range(15):
            user = f"u{attempt}"
            old, new = node_b.ws(), node_a.ws()
            old.subscribe_ok(channel, user)
            auth = new.auth_for(channel, user)
            watcher.wait_for("pusher_internal:member_added", channel, where=lambda f: json.loads(f["data"])["user_id"] == user)
            old.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
            new.subscribe(channel, auth["auth"], auth["channel_data"])
            new.wait_for_subscription(channel)
            time.sleep(0.2)
            watcher.frames_until_pong()
            if member_signs(watcher, channel, user) not in ("+", "+-+"):
                wrong.append((user, member_signs(watcher, channel, user)))
            close_all(old, new)
        assert not wrong, f"the watcher's member events per user (must end with the user present): {wrong}"
    finally:
        close_all(watcher)


def test_a_repeated_presence_subscribe_answers_with_the_cluster_members(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 2, [make_app("1")], OPTIONS, LEASE)
    a, b = dep.ws(0), dep.ws(1)
    try:
        assert a.subscribe_ok("presence-again", "ua")["presence"]["ids"] == ["ua"]
        assert sorted(b.subscribe_ok("presence-again", "ub")["presence"]["ids"]) == ["ua", "ub"]
        again = b.subscribe_ok("presence-again", "ub")
        assert sorted(again["presence"]["ids"]) == ["ua", "ub"], again
        # Still subscribed once: a's leave reaches b once.
        a.close()
        wait_member_events(b, "presence-again", members(("removed", "ua")), SPREAD)
    finally:
        close_all(a, b)


# ----------------------------------------------------------------------------------------------
# Watchlists: online means signed in on any node
# ----------------------------------------------------------------------------------------------


def watchlist_events(frame) -> dict[str, list[str]]:
    assert frame["event"] == "pusher_internal:watchlist_events", frame.raw
    result: dict[str, list[str]] = {}
    for event in json.loads(frame["data"])["events"]:
        result.setdefault(event["name"], []).extend(event["user_ids"])
    return result


def test_watchlist_follows_users_on_every_node(pusher_bridge, redis):
    dep = cluster(pusher_bridge, redis, 3, [make_app("1")], OPTIONS, LEASE)
    watcher, b_on_b, b_on_c, c_on_b = dep.ws(0), dep.ws(1), dep.ws(2), dep.ws(1)
    try:
        b_on_b.signin({"id": "b"})
        b_on_c.signin({"id": "b"})
        wait_until(lambda: users_online(dep.node(0), ["b"]), SPREAD, what="b online")
        watcher.signin({"id": "a", "watchlist": ["b", "c"]})
        initial = watchlist_events(watcher.wait_for("pusher_internal:watchlist_events"))
        assert initial == {"online": ["b"], "offline": ["c"]}, initial
        c_on_b.signin({"id": "c"})
        assert watchlist_events(watcher.wait_for("pusher_internal:watchlist_events")) == {"online": ["c"]}
        # Who is online is kept like a channel's members, but it is no channel of the app.
        assert_every_node(dep, lambda node: node.rest().channels_info(), {"channels": {}})
        b_on_b.close()   # b is still signed in on node C
        watcher.assert_silent(1.0, what=lambda e: e["event"] == "pusher_internal:watchlist_events")
        b_on_c.close()
        assert watchlist_events(watcher.wait_for("pusher_internal:watchlist_events", timeout=SPREAD)) == {"offline": ["b"]}
    finally:
        close_all(watcher, b_on_b, b_on_c, c_on_b)


def users_online(node, ids: list[str]) -> bool:
    """Whether `ids` are online as node `node`'s watchers would see them: a throwaway signin asks."""
    with node.ws() as probe:
        probe.signin({"id": "probe", "watchlist": ids})
        return watchlist_events(probe.wait_for("pusher_internal:watchlist_events")).get("online") == ids
