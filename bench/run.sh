#!/usr/bin/env bash
# shellcheck disable=SC2086  # unquoted $vars are result keys built from plain numbers and words
# Transport benchmarks for Bridge: idle-connection memory, WebSocket echo,
# HTTP keep-alive and WebSocket handshakes, then the fan-out comparison with
# nginx + nchan (bench/fanout.sh), the Pusher workloads (bench/pusher_bench.sh), webhook delivery (bench/webhooks_bench.sh)
# and cluster fan-out through Redis (bench/cluster.sh). Prints a Markdown report ready for
# BENCHMARKS.md. Loopback only; every step has a timeout.
#
# Usage: bench/run.sh [--quick] [--bridge PATH] [--no-fanout]
#   --quick        shorter runs and smaller idle counts (a smoke test of the harness)
#   --bridge PATH  use this bridge binary instead of building one with `swift build -c release`
#   --no-fanout    leave out the fan-out section
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/.build-bench"
QUICK=0
BRIDGE=""
FANOUT=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --bridge) BRIDGE="$2"; shift ;;
        --no-fanout) FANOUT=0 ;;
        -h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    IDLE_COUNTS="2000 4000"; TOUCH_COUNT=2000; ECHO_SECS=2; WRK_SECS=3; HS_SECS=2
else
    IDLE_COUNTS="10000 19000"; TOUCH_COUNT=10000; ECHO_SECS=5; WRK_SECS=10; HS_SECS=5
fi
IDLE_BASE=100          # connections held while taking the baseline RSS
IDLE_PER_PROC=9500     # one loadgen process stays well under a 20,000 fd limit
ECHO_CONNS="1 10 100"
ECHO_WINDOWS="1 16"
SERVER_CPU=0
CLIENT_CPU=1

LOGS="$WORK/logs"
DATA="$WORK/data"
mkdir -p "$LOGS"
RESULTS="$WORK/results.txt"
: >"$RESULTS"
COMMANDS=()
IDLE_CMDS=()
SERVER_PID=""
BG_PIDS=()

TAG=bench
source "$ROOT/bench/lib.sh"

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# ---- setup -----------------------------------------------------------------

HARD=$(ulimit -Hn)
ulimit -n "$HARD"
log "open-file limit raised to $HARD"

command -v taskset >/dev/null || fail "taskset is missing (package util-linux)"
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; CLIENT_CPU=0; log "one CPU only: server and client share it"; fi

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing wrk"
        timeout 300 apt-get install -y -qq wrk >/dev/null 2>&1 ||
            { timeout 300 apt-get update -qq >/dev/null 2>&1 && timeout 300 apt-get install -y -qq wrk >/dev/null 2>&1; } ||
            log "could not install wrk: the HTTP benchmark is skipped"
    else
        log "wrk is missing and cannot be installed here: the HTTP benchmark is skipped"
    fi
fi

LOADGEN="$WORK/loadgen"
log "building the load generator"
timeout 120 gcc -O2 -Wall -Wextra -o "$LOADGEN" "$ROOT/bench/loadgen.c" -lssl -lcrypto ||
    fail "loadgen did not build (it needs libssl-dev for -lssl -lcrypto)"

build_bridge "$WORK/logs"

SERVER_FLAGS=(--host 127.0.0.1 --port 0 --threads 1 --max-connections 19500 --echo-path /echo
    --shutdown-grace 5 --data-dir "$DATA")

# ---- server control ----------------------------------------------------------

# stop_server: SIGTERM, then SIGKILL after the grace period; records the exit status.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i rc=0
    for i in $(seq 1 80); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "bridge did not exit within 8 s of SIGTERM: killed"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        record "server_sigterm_timeout" 1
    fi
    wait "$SERVER_PID" 2>/dev/null || rc=$?
    [ "$rc" = 0 ] || log "bridge exited with status $rc"
    SERVER_PID=""
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
tcp_mem_pages() { awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }
slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }

# wait_for FILE KEY SECONDS PID: waits until FILE has a KEY= line; fails if PID exits first.
wait_for() {
    local i
    for i in $(seq 1 $(($3 * 10))); do
        grep -aq "^$2=" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || { grep -aq "^$2=" "$1" 2>/dev/null && return 0; return 1; }
        sleep 0.1
    done
    return 1
}

# ---- (a) idle connections --------------------------------------------------

# start_idle NAME COUNT SRC_FIRST [EXTRA FLAGS]: a loadgen holding COUNT connections, in the background.
start_idle() {
    local name=$1 count=$2 src=$3
    shift 3
    taskset -c "$CLIENT_CPU" "$LOADGEN" idle --port "$PORT" --connections "$count" --src-first "$src" \
        --per-src 5000 --hold 120 --deadline 150 --quiet "$@" >"$WORK/logs/idle-$name.out" 2>"$WORK/logs/idle-$name.err" &
    IDLE_PID=$!
    BG_PIDS+=("$IDLE_PID")
    IDLE_CMDS+=("taskset -c $CLIENT_CPU loadgen idle --port PORT --connections $count --src-first $src --per-src 5000 --hold 120${*:+ $*}")
}

stop_idle() {
    local pid
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
        timeout 20 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BG_PIDS=()
}

# bench_idle KEY TOTAL [LOADGEN FLAGS]: a fresh server; IDLE_BASE connections for the
# baseline, then the rest up to TOTAL in processes of at most IDLE_PER_PROC.
bench_idle() {
    local key=$1 total=$2
    shift 2
    IDLE_CMDS=()
    start_server "$key"
    sleep 0.5
    local rss_empty slab0
    rss_empty=$(rss_kib "$SERVER_PID")
    slab0=$(slab_kib)

    start_idle "$key-base" "$IDLE_BASE" 2 "$@"
    local base_pid=$IDLE_PID base_out="$WORK/logs/idle-$key-base.out"
    wait_for "$base_out" idle_connections 30 "$base_pid" || fail "idle $key: the baseline connections did not come up"
    sleep 1
    local rss_base
    rss_base=$(rss_kib "$SERVER_PID")

    local rest=$((total - IDLE_BASE)) src=3 part=0 pids=() outs=() t0 t1 n
    t0=$(date +%s.%N)
    while [ "$rest" -gt 0 ]; do
        n=$((rest < IDLE_PER_PROC ? rest : IDLE_PER_PROC))
        part=$((part + 1))
        start_idle "$key-$part" "$n" "$src" "$@"
        pids+=("$IDLE_PID"); outs+=("$WORK/logs/idle-$key-$part.out")
        src=$((src + (n + 4999) / 5000))
        rest=$((rest - n))
    done
    local up=0 failed=0 i
    for i in "${!pids[@]}"; do
        wait_for "${outs[$i]}" idle_connections 90 "${pids[$i]}" || fail "idle $key: ${outs[$i]} did not finish connecting"
        up=$((up + $(kv "${outs[$i]}" idle_connections)))
        failed=$((failed + $(kv "${outs[$i]}" idle_failed)))
    done
    t1=$(date +%s.%N)
    up=$((up + $(kv "$base_out" idle_connections)))
    sleep 2
    local rss_full tcp1 slab1 ss_line
    rss_full=$(rss_kib "$SERVER_PID")
    tcp1=$(tcp_mem_pages); slab1=$(slab_kib)
    ss_line=$(ss -s | awk '/^TCP:/' | head -1)

    stop_idle "$base_pid" "${pids[@]}"
    local dropped=0 f
    for f in "$base_out" "${outs[@]}"; do dropped=$((dropped + $(kv "$f" idle_dropped))); done
    sleep 1
    local rss_after
    rss_after=$(rss_kib "$SERVER_PID")
    stop_server

    local extra=$((up - IDLE_BASE))
    [ "$extra" -gt 0 ] || extra=1
    record "${key}_connections" "$up"
    record "${key}_failed" "$failed"
    record "${key}_dropped" "$dropped"
    record "${key}_connects_per_sec" "$(awk -v n=$((up - IDLE_BASE)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')"
    record "${key}_rss_empty_kib" "$rss_empty"
    record "${key}_rss_base_kib" "$rss_base"
    record "${key}_rss_full_kib" "$rss_full"
    record "${key}_rss_after_close_kib" "$rss_after"
    record "${key}_bytes_per_conn" "$(((rss_full - rss_base) * 1024 / extra))"
    record "${key}_bytes_per_conn_from_empty" "$(((rss_full - rss_empty) * 1024 / up))"
    record "${key}_kernel_tcp_mem_kib" "$((tcp1 * 4))"
    record "${key}_kernel_slab_delta_kib" "$((slab1 - slab0))"
    record "${key}_kernel_slab_bytes_per_conn" "$(((slab1 - slab0) * 1024 / up))"
    record "${key}_ss" "$ss_line"
    for f in "${IDLE_CMDS[@]}"; do note_command "$f"; done
    log "$key: $up up ($failed failed, $dropped dropped), RSS $rss_base -> $rss_full KiB, $(kv "$RESULTS" "${key}_bytes_per_conn") B/conn"
}

# ---- (b) echo, (c) HTTP, (d) handshakes on one server core ------------------

bench_echo() {
    local c w out
    for c in $ECHO_CONNS; do
        for w in $ECHO_WINDOWS; do
            out="$WORK/logs/echo-c$c-w$w.out"
            timeout 60 taskset -c "$CLIENT_CPU" "$LOADGEN" echo --port "$PORT" --connections "$c" --window "$w" \
                --size 32 --duration "$ECHO_SECS" --warmup 1 --deadline 40 --watch-pid "$SERVER_PID" --quiet \
                >"$out" 2>"$WORK/logs/echo-c$c-w$w.err" || log "echo c=$c w=$w: loadgen exited with an error"
            record "echo_c${c}_w${w}_msgs_per_sec" "$(kv "$out" echo_msgs_per_sec)"
            record "echo_c${c}_w${w}_p50_us" "$(kv "$out" echo_latency_p50_us)"
            record "echo_c${c}_w${w}_p99_us" "$(kv "$out" echo_latency_p99_us)"
            record "echo_c${c}_w${w}_server_cpu_pct" "$(kv "$out" echo_server_cpu_pct)"
            record "echo_c${c}_w${w}_loadgen_cpu_pct" "$(kv "$out" echo_loadgen_cpu_pct)"
            record "echo_c${c}_w${w}_errors" "$(kv "$out" echo_errors)"
            log "echo c=$c w=$w: $(kv "$out" echo_msgs_per_sec) msg/s p50 $(kv "$out" echo_latency_p50_us) us p99 $(kv "$out" echo_latency_p99_us) us, server CPU $(kv "$out" echo_server_cpu_pct)%"
        done
    done
    note_command "taskset -c $CLIENT_CPU loadgen echo --port PORT --connections {$(echo $ECHO_CONNS | tr ' ' ,)} --window {$(echo $ECHO_WINDOWS | tr ' ' ,)} --size 32 --duration $ECHO_SECS --warmup 1"
}

bench_http() {
    command -v wrk >/dev/null || { record http_skipped "wrk missing"; return 0; }
    local out="$WORK/logs/wrk.out" t0 c0 t1 c1
    t0=$(date +%s.%N); c0=$(cpu_ticks "$SERVER_PID")
    timeout $((WRK_SECS + 20)) taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"${WRK_SECS}s" --latency \
        "http://127.0.0.1:$PORT/health" >"$out" 2>&1 || log "wrk exited with an error"
    t1=$(date +%s.%N); c1=$(cpu_ticks "$SERVER_PID")
    record http_requests_per_sec "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
    record http_p50 "$(awk '$1 == "50%" {print $2}' "$out")"
    record http_p99 "$(awk '$1 == "99%" {print $2}' "$out")"
    record http_errors "$(awk '/Non-2xx|Socket errors/' "$out" | tr -s ' ' | paste -sd ';' -)"
    record http_server_cpu_pct "$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }')"
    note_command "taskset -c $CLIENT_CPU wrk -t1 -c50 -d${WRK_SECS}s --latency http://127.0.0.1:PORT/health"
    log "http: $(kv "$RESULTS" http_requests_per_sec) req/s"
}

bench_handshake() {
    local out="$WORK/logs/handshake.out"
    timeout 60 taskset -c "$CLIENT_CPU" "$LOADGEN" handshake --port "$PORT" --inflight 32 \
        --duration "$HS_SECS" --warmup 1 --deadline 40 --watch-pid "$SERVER_PID" --quiet \
        >"$out" 2>"$WORK/logs/handshake.err" || log "handshake: loadgen exited with an error"
    record handshakes_per_sec "$(kv "$out" handshakes_per_sec)"
    record handshake_p50_us "$(kv "$out" handshake_latency_p50_us)"
    record handshake_p99_us "$(kv "$out" handshake_latency_p99_us)"
    record handshake_failed "$(kv "$out" handshake_failed)"
    record handshake_server_cpu_pct "$(kv "$out" handshake_server_cpu_pct)"
    note_command "taskset -c $CLIENT_CPU loadgen handshake --port PORT --inflight 32 --duration $HS_SECS --warmup 1"
    log "handshake: $(kv "$out" handshakes_per_sec)/s"
}

# ---- run -----------------------------------------------------------------------

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
note_command "taskset -c $SERVER_CPU bridge serve ${SERVER_FLAGS[*]/#$ROOT\//}"
for n in $IDLE_COUNTS; do bench_idle "idle_$n" "$n"; done
bench_idle "idle_${TOUCH_COUNT}_touched" "$TOUCH_COUNT" --touch --size 1000
start_server cpu
bench_echo
bench_http
bench_handshake
RSS_END=$(rss_kib "$SERVER_PID")
stop_server
record server_rss_after_cpu_benchmarks_kib "$RSS_END"

# ---- report --------------------------------------------------------------------

# per_core RATE CPU_PCT UNIT: when the server was not saturated (the client was the
# limit), what the rate would be per fully busy server core.
per_core() {
    case "$1$2" in *[!0-9]*|"") return 0 ;; esac
    [ "$2" -gt 0 ] && [ "$2" -lt 90 ] || return 0
    printf ' → ≈ %s%s per busy server core' "$(fmt $(($1 * 100 / $2)))" "$3"
}
# fmt N: thousands separators (12345 -> 12,345), independent of the locale.
fmt() { printf '%s' "${1:-?}" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta'; }

{
    echo "## Transport benchmarks ($STARTED)"
    echo
    echo "| Benchmark | Setting | Result |"
    echo "| --- | --- | --- |"
    for key in $(for n in $IDLE_COUNTS; do echo "idle_$n"; done) "idle_${TOUCH_COUNT}_touched"; do
        case "$key" in
            *_touched) what="Idle WebSocket connections after one 1,000 B echo each" ;;
            *) what="Idle WebSocket connections" ;;
        esac
        echo "| $what, server RSS | $(fmt "$(r ${key}_connections)") open ($(r ${key}_failed) failed, $(r ${key}_dropped) dropped), opened at $(fmt "$(r ${key}_connects_per_sec)")/s | **$(fmt "$(r ${key}_bytes_per_conn)") B/connection** (VmRSS $(fmt "$(r ${key}_rss_empty_kib)") KiB empty, $(fmt "$(r ${key}_rss_base_kib)") KiB with $IDLE_BASE, $(fmt "$(r ${key}_rss_full_kib)") KiB with all; $(fmt "$(r ${key}_bytes_per_conn_from_empty)") B/connection counted from empty) |"
        echo "| $what, kernel | same, both ends on loopback | slab +$(fmt "$(r ${key}_kernel_slab_delta_kib)") KiB = $(fmt "$(r ${key}_kernel_slab_bytes_per_conn)") B per client+server socket pair; TCP buffer pages $(fmt "$(r ${key}_kernel_tcp_mem_kib)") KiB |"
    done
    for c in $ECHO_CONNS; do
        for w in $ECHO_WINDOWS; do
            echo "| WebSocket echo, 32 B text, 1 server thread | $c conn × $w in flight | **$(fmt "$(r echo_c${c}_w${w}_msgs_per_sec)") msg/s**, p50 $(r echo_c${c}_w${w}_p50_us) µs, p99 $(r echo_c${c}_w${w}_p99_us) µs (server CPU $(r echo_c${c}_w${w}_server_cpu_pct)%$(per_core "$(r echo_c${c}_w${w}_msgs_per_sec)" "$(r echo_c${c}_w${w}_server_cpu_pct)" " msg/s"), loadgen $(r echo_c${c}_w${w}_loadgen_cpu_pct)%) |"
        done
    done
    if [ -n "$(r http_requests_per_sec)" ]; then
        echo "| HTTP keep-alive \`GET /health\`, 1 server thread | wrk -t1 -c50 | **$(fmt "$(r http_requests_per_sec)") req/s**, p50 $(r http_p50), p99 $(r http_p99) (server CPU $(r http_server_cpu_pct)%$(per_core "$(r http_requests_per_sec)" "$(r http_server_cpu_pct)" " req/s")) |"
    fi
    echo "| WebSocket handshakes, 1 server thread | 32 in flight, connect + upgrade + RST | **$(fmt "$(r handshakes_per_sec)")/s**, p50 $(r handshake_p50_us) µs, p99 $(r handshake_p99_us) µs, $(r handshake_failed) failed (server CPU $(r handshake_server_cpu_pct)%$(per_core "$(r handshakes_per_sec)" "$(r handshake_server_cpu_pct)" /s)) |"
    echo
    echo "Bytes per idle connection = (server VmRSS with all open − VmRSS with $IDLE_BASE open) / (open − $IDLE_BASE)."
    echo "Kernel figures: the /proc/meminfo \`Slab\` delta and /proc/net/sockstat \`TCP mem\` with all open, for the client and server sockets together."
    echo
    echo "Machine: $(machine)."
    echo "Server pinned to CPU $SERVER_CPU, load generator to CPU $CLIENT_CPU (taskset); open-file limit $HARD. $(basename "$BRIDGE") built with \`swift build -c release\`; loadgen with \`gcc -O2 … -lssl -lcrypto\`."
    if [ "$QUICK" = 1 ]; then echo "(--quick run: shortened, not for publishing)"; fi
    echo
    report_commands "bench/run.sh runs them all; PORT is the server's ephemeral port"
} | tee "$WORK/report.md"

# ---- (e)–(h) the Pusher-era benchmarks, each a script of its own ------------------

# run_section TITLE NAME SCRIPT TIMEOUT: runs bench/SCRIPT (--bridge, and --quick when asked),
# and appends the report it wrote ($WORK/NAME-report.md) to ours, also when it reported problems
# (never a stale one from an earlier run).
run_section() {
    local title="$1" name="$2" script="$3" limit="$4"
    local args=(--bridge "$BRIDGE")
    if [ "$QUICK" = 1 ]; then args+=(--quick); fi
    log "$title (bench/$script; its progress in $WORK/logs/$name.err)"
    touch "$WORK/logs/$name.start"
    if ! timeout "$limit" "$ROOT/bench/$script" "${args[@]}" >"$WORK/logs/$name.md" 2>"$WORK/logs/$name.err"; then
        tail -5 "$WORK/logs/$name.err" >&2
        log "bench/$script failed or reported problems (log: $WORK/logs/$name.err)"
    fi
    if [ "$WORK/$name-report.md" -nt "$WORK/logs/$name.start" ]; then { echo; cat "$WORK/$name-report.md"; } | tee -a "$WORK/report.md"; fi
}

if [ "$FANOUT" = 1 ]; then run_section "fan-out benchmark" fanout fanout.sh 900; fi
run_section "Pusher benchmarks" pusher pusher_bench.sh 600
run_section "webhook benchmarks" webhooks webhooks_bench.sh 600
run_section "cluster benchmarks" cluster cluster.sh 600
log "report: $WORK/report.md, raw numbers: $RESULTS, logs: $WORK/logs/"
