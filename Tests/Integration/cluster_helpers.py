"""Helpers of the cluster tests (test_cluster.py, test_cluster_state.py).

- `RedisServer`: a real redis-server on a free loopback port, restartable on that port (the
  `redis` fixture of conftest.py starts one per test).
- `cluster_flags(redis, prefix, lease)`: the `bridge serve` flags of a cluster node.
- `Deployment`: the nodes of one deployment, a standalone server or a Redis cluster, with the same
  apps and options (`standalone(...)`, `cluster(...)`); clients are spread round-robin.
- `wait_ready`, `drain`, `read_for`, `member_events`: bounded waits (`wait_until` is in conftest).
"""
from __future__ import annotations

import functools
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from conftest import bridge_path, get

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None):
        self.port = free_port()
        self.workdir = workdir
        self.password = password
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--logfile", str(self.log)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log.read_text() if self.log.exists() else ''}")
                time.sleep(0.05)
        raise RuntimeError("redis-server did not listen within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def cluster_flags(redis: RedisServer, prefix: str | None = None, lease: float | None = None) -> list[str]:
    """`bridge serve` flags that join the cluster on `redis` (a fresh key prefix per test), with a
    node lease of `lease` seconds (--cluster-lease) when given."""
    flags = ["--adapter", "redis", "--redis-url", redis.url, "--redis-prefix", prefix or f"t{uuid.uuid4().hex[:8]}"]
    if lease is not None:
        flags += ["--cluster-lease", f"{lease:g}"]
    return flags


@functools.cache
def serve_help() -> str:
    result = subprocess.run([str(bridge_path()), "serve", "--help"], capture_output=True, timeout=10,
                            stdin=subprocess.DEVNULL)
    return result.stdout.decode("utf-8", "replace")


def knows_flag(flag: str) -> bool:
    """Whether `bridge serve --help` lists `flag`."""
    return f"{flag} " in serve_help()


# ----------------------------------------------------------------------------------------------
# Deployments: one standalone node, or several nodes of a Redis cluster
# ----------------------------------------------------------------------------------------------


class Deployment:
    """The nodes (PusherServer) of one deployment; every node serves the same apps."""

    def __init__(self, kind: str, nodes: list):
        self.kind = kind
        self.nodes = nodes

    def node(self, index: int):
        """Node `index` modulo the node count: clients spread round-robin over the nodes."""
        return self.nodes[index % len(self.nodes)]

    def ws(self, index: int, **kwargs: Any):
        return self.node(index).ws(**kwargs)

    def __len__(self) -> int:
        return len(self.nodes)


def standalone(pusher_bridge, apps: list[dict] | None = None, options: dict | None = None) -> Deployment:
    """One `bridge serve` without --adapter (the local adapter)."""
    return Deployment("standalone", [pusher_bridge(apps, options=options)])


def cluster(pusher_bridge, redis: RedisServer, count: int, apps: list[dict] | None = None,
            options: dict | None = None, lease: float | None = None) -> Deployment:
    """`count` nodes on `redis` with one fresh key prefix, each ready (/ready 200)."""
    flags = cluster_flags(redis, lease=lease)
    nodes = [pusher_bridge(apps, *flags, options=options) for _ in range(count)]
    for node in nodes:
        wait_ready(node.port)
    return Deployment("cluster", nodes)


# ----------------------------------------------------------------------------------------------
# Bounded waits
# ----------------------------------------------------------------------------------------------


def wait_ready(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(port, "/ready").status == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"node on {port} not ready within {timeout}s: {get(port, '/ready')}")


def drain(ws, event: str, expected: int, timeout: float = 10) -> list[str]:
    """The data of `expected` frames named `event`, read within `timeout`; fails on fewer."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < expected:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{len(seen)} of {expected} {event!r} events within {timeout}s"
        try:
            frame = ws.recv(remaining)
        except TimeoutError:
            continue
        if frame.get("event") == event:
            seen.append(frame["data"])
    return seen


def read_for(ws, seconds: float) -> None:
    """Read (into `ws.received`) whatever arrives within `seconds`."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            ws.recv(remaining)
        except TimeoutError:
            return


MEMBER_EVENTS = {"pusher_internal:member_added": "added", "pusher_internal:member_removed": "removed"}


def member_events(ws, channel: str) -> Counter:
    """How many member_added/member_removed frames for each user `ws` has received on `channel`
    so far: Counter of ("added" | "removed", user_id)."""
    counts: Counter = Counter()
    for frame in ws.received:
        kind = MEMBER_EVENTS.get(frame.get("event"))
        if kind and frame.get("channel") == channel:
            counts[(kind, json.loads(frame["data"])["user_id"])] += 1
    return counts


def wait_member_events(ws, channel: str, want: Counter, timeout: float) -> None:
    """Read until `ws` has received at least the member events `want` on `channel`."""
    deadline = time.monotonic() + timeout
    while True:
        have = member_events(ws, channel)
        if all(have[key] >= count for key, count in want.items()):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"subscriber on :{ws.port} ({ws.socket_id}) got member events "
                                 f"{dict(have)} on {channel} within {timeout}s, expected at least {dict(want)}")
        try:
            ws.recv(min(remaining, 0.5))
        except TimeoutError:
            pass
