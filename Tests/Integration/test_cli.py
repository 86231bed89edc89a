"""The `bridge` command line: help, errors, and where settings come from."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import time

import pytest

from conftest import LISTENING_RE, Conn, bridge_path, clean_env

SAFE = ["--host", "127.0.0.1"]


def run_bridge(args: list[str], env: dict[str, str] | None = None, cwd=None,
               timeout: float = 10.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(bridge_path()), *args], env=clean_env(env), cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        # subprocess.run has already killed the child.
        pytest.fail(f"`bridge {' '.join(args)}` still running after {timeout}s; "
                    f"stderr: {expired.stderr!r}")


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"]], ids=["top", "serve"])
def test_help(args, tmp_path):
    result = run_bridge(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"--port" in result.stdout, result.stdout
    assert result.stderr == b"", result.stderr


def assert_usage_error(result: subprocess.CompletedProcess, mention: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("bridge: "), lines[0]
    assert mention.lower() in lines[0].lower(), f"{mention!r} not named in {lines[0]!r}"


@pytest.mark.parametrize("args,mention", [
    (["serve", *SAFE, "--port", "0", "--foo"], "--foo"),
    (["serve", *SAFE, "--port", "abc"], "port"),
    (["serve", *SAFE, "--port", "70000"], "port"),
    (["serve", *SAFE, "--port", "0", "--threads", "0"], "threads"),
    (["serve", *SAFE, "--port", "0", "--threads", "two"], "threads"),
    (["serve", *SAFE, "--port", "0", "--log-level", "loud"], "log-level"),
    (["serve", *SAFE, "--port", "0", "--request-timeout", "soon"], "request-timeout"),
    (["serve", *SAFE, "--port", "0", "--max-connections", "-1"], "max-connections"),
    (["serve", *SAFE, "--port"], "port"),
    (["serve", *SAFE, "--port", "0", "--admin-token", "short"], "admin-token"),
    (["serve", *SAFE, "--port", "0", "--jwt-secret", "x" * 31], "jwt-secret"),
    (["serve", *SAFE, "--port", "0", "--jwt-ttl", "0"], "jwt-ttl"),
    (["serve", *SAFE, "--port", "0", "--adapter", "etcd"], "adapter"),
    (["serve", *SAFE, "--port", "0", "--redis-prefix", ""], "redis-prefix"),
    (["serve", *SAFE, "--port", "0", "--log-format", "xml"], "log-format"),
], ids=["unknown-flag", "port-abc", "port-range", "threads-0", "threads-word", "log-level",
        "duration", "negative", "missing-value", "admin-token-short", "jwt-secret-short", "jwt-ttl-0",
        "adapter", "redis-prefix-empty", "log-format"])
def test_bad_flag_or_value(args, mention, tmp_path):
    assert_usage_error(run_bridge(args, cwd=tmp_path), mention)


@pytest.mark.parametrize("env,mention", [
    ({"BRIDGE_PORT": "abc"}, "port"),
    ({"BRIDGE_THREADS": "0"}, "threads"),
])
def test_bad_env_value(env, mention, tmp_path):
    args = ["serve", *SAFE] + ([] if "BRIDGE_PORT" in env else ["--port", "0"])
    assert_usage_error(run_bridge(args, env=env, cwd=tmp_path), mention)


def test_bad_config_value(tmp_path):
    config = tmp_path / "bridge.json"
    config.write_text(json.dumps({"port": "abc"}))
    result = run_bridge(["serve", *SAFE, "--config", str(config)], cwd=tmp_path)
    assert_usage_error(result, "port")


def test_unknown_subcommand(tmp_path):
    result = run_bridge(["frobnicate"], cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bridge: "), lines


# --- where settings come from ------------------------------------------------------------------


def upgrade_status(port: int, path: str) -> int:
    with Conn(port) as conn:
        return conn.ws_handshake(path).status


def test_listening_log_line_format(bridge):
    server = bridge()
    line = next(line for line in server.stderr_lines if LISTENING_RE.search(line))
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z INFO ", line), line
    assert f"listening on http://127.0.0.1:{server.port}" in line


def test_json_log_format_is_one_object_per_line(bridge):
    server = bridge("--log-format", "json", "--log-level", "debug")
    assert upgrade_status(server.port, "/echo") == 101  # a connection: debug lines with its id
    time.sleep(0.3)
    records = [json.loads(line) for line in server.stderr_lines if line.strip()]
    assert records, "no log lines"
    for record in records:
        assert set(record) <= {"time", "level", "message", "conn"}, record
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", record["time"]), record
        assert record["level"] in {"debug", "info", "warn", "error"}, record
    assert any(f"listening on http://127.0.0.1:{server.port}" in r["message"] and r["level"] == "info" for r in records)
    assert any(isinstance(r.get("conn"), int) and r["level"] == "debug" for r in records), records


def test_env_port_zero_starts(bridge):
    server = bridge(port=False, env={"BRIDGE_PORT": "0"})
    assert upgrade_status(server.port, "/echo") == 101


def test_env_sets_echo_path(bridge):
    server = bridge(echo_path=None, env={"BRIDGE_ECHO_PATH": "/from-env"})
    assert upgrade_status(server.port, "/from-env") == 101
    assert upgrade_status(server.port, "/echo") == 404


def test_flag_overrides_env(bridge):
    server = bridge(env={"BRIDGE_ECHO_PATH": "/from-env"})  # the fixture passes --echo-path /echo
    assert upgrade_status(server.port, "/echo") == 101
    assert upgrade_status(server.port, "/from-env") == 404


def test_flag_port_overrides_env_port(bridge):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        server = bridge(env={"BRIDGE_PORT": str(busy)})  # the fixture passes --port 0
        assert server.port != busy


def test_config_file_and_precedence(bridge, tmp_path):
    config = tmp_path / "bridge.json"
    config.write_text(json.dumps({"echo-path": "/from-config", "max-connections": 100}))
    from_config = bridge("--config", str(config), echo_path=None)
    assert upgrade_status(from_config.port, "/from-config") == 101
    assert upgrade_status(from_config.port, "/echo") == 404

    env_wins = bridge("--config", str(config), echo_path=None,
                      env={"BRIDGE_ECHO_PATH": "/from-env"})
    assert upgrade_status(env_wins.port, "/from-env") == 101
    assert upgrade_status(env_wins.port, "/from-config") == 404

    flag_wins = bridge("--config", str(config), env={"BRIDGE_ECHO_PATH": "/from-env"})
    assert upgrade_status(flag_wins.port, "/echo") == 101
    assert upgrade_status(flag_wins.port, "/from-env") == 404


def test_every_log_line_has_time_and_level(bridge):
    server = bridge("--log-level", "debug")
    with Conn(server.port) as conn:
        conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        conn.wait_closed(5)
    assert server.wait_for_log(r"\[conn \d+\] ", 5), server.stderr_text
    for line in server.stderr_lines:
        assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z (DEBUG|INFO|WARN|ERROR) ",
                        line), line



DEFAULT_SECRET_WARNING = re.compile(r"Z WARN .*app 1 .*default secret \"app-secret\"")
APP_LINE = re.compile(r"INFO app 1 \(default\): key=")


def start_lines(args: list[str], tmp_path, timeout: float = 10.0) -> tuple[subprocess.Popen, list[str]]:
    """Starts `bridge ARGS` and reads its stderr until the app line, the last line of the start
    (or EOF, or `timeout`); the caller stops the process."""
    proc = subprocess.Popen([str(bridge_path()), *args], env=clean_env(), cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    text = b""
    while not APP_LINE.search(text.decode("utf-8", "replace")) and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(proc.stderr.fileno(), 65536) if ready else b""
        if ready and not chunk:
            break
        text += chunk
    return proc, text.decode("utf-8", "replace").splitlines()


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_default_secret_on_a_non_loopback_address_is_warned_about(tmp_path):
    """0.0.0.0 (the default host, as `make run` starts it) with the default app: one WARN line at
    start, and the server serves on as before. It is stopped as soon as its start is logged."""
    proc, lines = start_lines(["serve", "--host", "0.0.0.0", "--port", "0", "--threads", "1",
                               "--data-dir", str(tmp_path / "data")], tmp_path)
    try:
        assert any(APP_LINE.search(line) for line in lines), lines
        port = int(re.search(r"listening on http://0\.0\.0\.0:(\d+)", "\n".join(lines)).group(1))
        assert upgrade_status(port, "/app/app-key?protocol=7") == 101, "the server must still serve"
    finally:
        stop(proc)
    warnings = [line for line in lines if DEFAULT_SECRET_WARNING.search(line)]
    assert len(warnings) == 1, lines
    assert "--app-secret" in warnings[0], warnings[0]


def test_own_secret_on_a_non_loopback_address_is_not_warned_about(tmp_path):
    proc, lines = start_lines(["serve", "--host", "0.0.0.0", "--port", "0", "--threads", "1",
                               "--app-secret", "a-secret-of-our-own", "--data-dir", str(tmp_path / "data")], tmp_path)
    stop(proc)
    assert any(APP_LINE.search(line) for line in lines), lines
    assert not [line for line in lines if " WARN " in line], lines


def test_default_secret_on_loopback_is_not_warned_about(bridge):
    server = bridge("--threads", "1")
    assert server.wait_for_log(APP_LINE, 5), server.stderr_text
    assert not [line for line in server.stderr_lines if " WARN " in line], server.stderr_text
