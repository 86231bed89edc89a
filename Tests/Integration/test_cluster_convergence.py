"""A seeded, bounded convergence test of presence across a 3-node Redis cluster.

A driver performs random operations quickly on one presence channel — open a connection for a
user on some node and subscribe (users get several connections, on several nodes), close a
connection, unsubscribe, subscribe again, unsubscribe and subscribe back to back — without waiting
for the answers. One observer per node (a user that never leaves) watches the whole run.

Once the operations stop and every node's GET …/users shows the users that still have a subscribed
connection, every still-subscribed connection's own view must agree: start from the member list of
its last `subscription_succeeded`, apply each later `member_added` (the user must not be in the
list yet) and `member_removed` (the user must be in it) in order, and end with exactly those users.
The channel's user_count and subscription_count must be the cluster's on every node.

Bounded: at most OPERATIONS operations or DRIVE_SECONDS of driving (in practice under a second),
then at most QUIESCE + CONVERGE + SETTLE seconds of waiting; a run takes about 2 s per seed. A
failure names the seed, the connection, its frames and the operations on the users involved.
"""

from __future__ import annotations

import json
import re
import random
import time
from dataclasses import dataclass, field

import pytest

from cluster_helpers import cluster
from pusher_helpers import Closed, PusherWS, make_app

LEASE = 3.0
CHANNEL = "presence-x"
USERS = [f"u{index}" for index in range(8)]
NODES = 3
OPERATIONS = 150
DRIVE_SECONDS = 20.0     # the driving loop stops after this long, whatever the count
MAX_OPEN = 24            # open driver connections at most (observers aside)
DRAIN_EVERY = 10         # operations between two drains of every open connection
QUIESCE = 10.0           # for every node's GET …/users to show the expected users
CONVERGE = 5.0           # then for every connection's view to reach them
SETTLE = 0.5             # then quiet time for late (duplicate) events before the last check

SUCCEEDED = "pusher_internal:subscription_succeeded"
ADDED = "pusher_internal:member_added"
REMOVED = "pusher_internal:member_removed"


@dataclass(eq=False)
class Client:
    """One driver (or observer) connection and what the driver asked of it."""
    name: str
    user: str
    node: int
    ws: PusherWS
    subscribed: bool = False
    open: bool = True
    requests: list[str] = field(default_factory=list)

    def subscribe(self) -> None:
        payload = self.ws.auth_for(CHANNEL, self.user, {"name": self.user})
        self.ws.subscribe(CHANNEL, payload["auth"], payload["channel_data"])
        self.subscribed = True
        self.requests.append("subscribe")

    def unsubscribe(self) -> None:
        self.ws.send({"event": "pusher:unsubscribe", "data": {"channel": CHANNEL}})
        self.subscribed = False
        self.requests.append("unsubscribe")

    def label(self) -> str:
        return f"{self.name}({self.user}@node{self.node}, {self.ws.socket_id})"


def poll(check, timeout: float, interval: float = 0.1) -> bool:
    """Call `check()` until it is true or `timeout` has passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def drain(client: Client) -> None:
    """Move every frame already queued in the client library into `ws.received`."""
    while True:
        try:
            client.ws.recv(0)
        except TimeoutError:
            return
        except Closed as closed:
            raise AssertionError(f"{client.label()} was closed by the server: {closed}") from None


def replay(client: Client) -> tuple[set[str] | None, list[str]]:
    """The member set of `client`'s own view of CHANNEL after its last subscription_succeeded,
    and the rule violations met on the way (None when it has no subscription_succeeded)."""
    frames = [f for f in client.ws.received if f.get("channel") == CHANNEL]
    starts = [i for i, f in enumerate(frames) if f.get("event") == SUCCEEDED]
    if not starts:
        return None, []
    problems: list[str] = []
    presence = frames[starts[-1]].data_json()["presence"]
    members = set(presence["ids"])
    if len(members) != len(presence["ids"]) or presence["count"] != len(members) \
            or set(presence["hash"]) != members:
        problems.append(f"inconsistent subscription_succeeded {frames[starts[-1]].raw}")
    for frame in frames[starts[-1] + 1:]:
        event = frame.get("event")
        if event == ADDED:
            user = frame.data_json()["user_id"]
            if user in members:
                problems.append(f"member_added {user} already in {sorted(members)}")
            members.add(user)
        elif event == REMOVED:
            user = frame.data_json()["user_id"]
            if user not in members:
                problems.append(f"member_removed {user} not in {sorted(members)}")
            members.discard(user)
    return members, problems


def timeline(client: Client) -> list[str]:
    """`client`'s presence frames, compactly, for failure messages."""
    out = []
    for frame in client.ws.received:
        event = frame.get("event")
        if event == SUCCEEDED and frame.get("channel") == CHANNEL:
            out.append("succeeded" + json.dumps(sorted(frame.data_json()["presence"]["ids"])))
        elif event in (ADDED, REMOVED):
            out.append(("+" if event == ADDED else "-") + frame.data_json()["user_id"])
        elif event not in ("pusher:pong",):
            out.append(frame.raw[:120])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_presence_converges_under_random_churn(pusher_bridge, redis, seed):
    rng = random.Random(seed)
    dep = cluster(pusher_bridge, redis, NODES, [make_app("1")], lease=LEASE)
    clients: list[Client] = []
    log: list[str] = []   # every operation, in order, for failure messages
    started = time.monotonic()

    def open_client(name: str, user: str, node: int) -> Client:
        client = Client(name, user, node, dep.ws(node))
        clients.append(client)
        client.subscribe()
        log.append(f"{time.monotonic() - started:7.3f} open+subscribe {client.label()}")
        return client

    def record(what: str, client: Client) -> None:
        log.append(f"{time.monotonic() - started:7.3f} {what} {client.label()}")

    try:
        observers = [open_client(f"obs{node}", f"obs{node}", node) for node in range(NODES)]
        for observer in observers:
            observer.ws.wait_for_subscription(CHANNEL)

        # --- the churn ---
        count = 0
        deadline = time.monotonic() + DRIVE_SECONDS
        while count < OPERATIONS and time.monotonic() < deadline:
            count += 1
            driven = [c for c in clients if c.open and c not in observers]
            subscribed = [c for c in driven if c.subscribed]
            unsubscribed = [c for c in driven if not c.subscribed]
            choice = rng.choices(["open", "close", "unsubscribe", "resubscribe", "bounce"],
                                 weights=[40, 25, 12, 12, 11])[0]
            if choice == "open" and len(driven) < MAX_OPEN or not driven:
                open_client(f"c{len(clients)}", rng.choice(USERS), rng.randrange(NODES))
            elif choice == "close":
                client = rng.choice(driven)
                drain(client)
                client.ws.close()
                client.open = False
                record("close", client)
            elif choice == "unsubscribe" and subscribed:
                client = rng.choice(subscribed)
                client.unsubscribe()
                record("unsubscribe", client)
            elif choice == "resubscribe" and unsubscribed:
                client = rng.choice(unsubscribed)
                client.subscribe()
                record("resubscribe", client)
            elif choice == "bounce" and subscribed:
                client = rng.choice(subscribed)
                client.unsubscribe()
                client.subscribe()
                record("unsubscribe+subscribe", client)
            else:
                count -= 1   # nothing to do that way: draw again
                continue
            if count % DRAIN_EVERY == 0:
                for client in clients:
                    if client.open:
                        drain(client)
        drive_time = time.monotonic() - started

        # --- the expected end state ---
        live = [c for c in clients if c.open and c.subscribed]
        expected = {c.user for c in live}
        summary = (f"seed {seed}: {count} operations in {drive_time:.1f}s; {len(live)} subscribed connections "
                   f"of users {sorted(expected)}")

        def failure(message: str, involved: list[Client] = (), users_of: set[str] = frozenset()) -> str:
            lines = [summary, message]
            for client in involved:
                lines.append(f"  {client.label()} requests {client.requests}")
                lines.append(f"    frames: {' '.join(timeline(client))}")
            users_of = set(users_of) | {c.user for c in involved}
            lines.append("  operations on those users:" if users_of else "  operations:")
            lines += [f"    {line}" for line in log
                      if not users_of or any(f"({user}@" in line for user in users_of)][-60:]
            return "\n".join(lines)

        # Quiescence: every node answers the expected users.
        answers: dict[int, list[str]] = {}

        def users_agree() -> bool:
            for index, node in enumerate(dep.nodes):
                answers[index] = sorted(u["id"] for u in node.rest().users_info(CHANNEL)["users"])
            return all(answer == sorted(expected) for answer in answers.values())
        if not poll(users_agree, QUIESCE):
            pytest.fail(failure(f"GET /channels/{CHANNEL}/users after {QUIESCE}s: {answers}, "
                                f"expected {sorted(expected)}"))

        # Every subscribed connection's own view reaches the expected users, breaking no rule.
        def views() -> dict[str, set[str] | None]:
            out = {}
            for client in live:
                drain(client)
                members, problems = replay(client)
                if problems:
                    named = {user for problem in problems for user in re.findall(r"member_\w+ (\S+)", problem)}
                    pytest.fail(failure(f"{client.label()} broke the member-event rules: {problems}", [client], named))
                out[client.name] = members
            return out
        last: dict[str, set[str] | None] = {}

        def converged() -> bool:
            last.update(views())
            return all(members == expected for members in last.values())
        if not poll(converged, CONVERGE):
            wrong = [c for c in live if last.get(c.name) != expected]
            pytest.fail(failure(f"views after {CONVERGE}s differ from {sorted(expected)}: "
                                + "; ".join(f"{c.name}: {sorted(last.get(c.name) or [])}" for c in wrong),
                                wrong[:4]))

        # Nothing late (a duplicate, or an event the list already had): a quiet time, then a ping barrier.
        time.sleep(SETTLE)
        for client in live:
            client.ws.frames_until_pong()
        final = views()
        wrong = [c for c in live if final[c.name] != expected]
        assert not wrong, failure(f"views changed after converging: "
                                  + "; ".join(f"{c.name}: {sorted(final[c.name])}" for c in wrong), wrong[:4])
        errors = [(c, f.raw) for c in clients for f in c.ws.received
                  if f.get("event") in ("pusher:error", "pusher:subscription_error")]
        assert not errors, failure(f"error frames: {[(c.name, raw) for c, raw in errors][:5]}")

        # The counts of the HTTP API are the cluster's, on every node.
        want = {"occupied": True, "user_count": len(expected), "subscription_count": len(live)}
        infos: dict[int, dict] = {}
        for index, node in enumerate(dep.nodes):
            result = node.api().get(f"/channels/{CHANNEL}", {"info": "user_count,subscription_count"})
            assert result.status == 200, result
            infos[index] = result.json
        assert all(info == want for info in infos.values()), failure(f"channel info {infos}, expected {want}")
    finally:
        for client in clients:
            client.ws.close()
