#!/usr/bin/env bash
# shellcheck disable=SC2086  # unquoted $vars are result keys built from plain numbers and words
# Pusher-protocol benchmarks for Bridge, one server core: many channels (publish
# through the signed HTTP API to 10,000 connections' personal and group channels),
# presence churn (members leaving and re-joining 1,000 presence channels, then an
# exact check of the member counts) and the HTTP publish API alone. Prints a
# Markdown report. Loopback only; every step has a timeout.
#
# Usage: bench/pusher_bench.sh [--quick] [--bridge PATH]
#   --quick        smaller counts and 1-2 s runs (a smoke test of the harness, < 45 s)
#   --bridge PATH  use this bridge binary instead of building one with `swift build -c release`
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/.build-bench"
source "$ROOT/bench/lib.sh"
parse_options "$@"

if [ "$QUICK" = 1 ]; then
    CH_CONNS=2000; CH_RATES="2000,10000"; CH_STEP=1; CH_CLOSED=1
    PR_CONNS=1000; PR_PER_CONN=10; PR_ROOMS=200; PR_SECS=2
    API_SECS=1; API_WARMUP=0.5
else
    CH_CONNS=10000; CH_RATES="2500,5000,10000,15000,20000,30000"; CH_STEP=1.5; CH_CLOSED=2
    PR_CONNS=5000; PR_PER_CONN=10; PR_ROOMS=1000; PR_SECS=10
    API_SECS=4; API_WARMUP=1
fi
CH_GROUP=10          # members of each group-<i/10> channel
CH_GROUP_FRAC=0.5    # share of publishes that go to a group channel (the rest: a personal one)
CH_HTTP=16           # HTTP keep-alive connections publishing
CH_DEPTH=16          # closed loop: requests pipelined on each of them
CH_QUEUE=64          # open loop: at most this many queued per connection, else the publish is skipped
PR_INFLIGHT=64       # presence: leave + re-join operations in flight
PR_LEAVE=0.1         # presence: share of members leaving for good before the count check
API_RUNS="1:1 1:16 32:1"  # connections:depth
PAYLOAD=64           # padding bytes in each event's data
SERVER_CPU=0
CLIENT_CPU=1

LOGS="$WORK/logs/pusher"
mkdir -p "$LOGS"
RESULTS="$WORK/pusher-results.txt"
REPORT="$WORK/pusher-report.md"
CONFIG="$WORK/pusher-config.json"
DATA="$WORK/pusher-data"
: >"$RESULTS"
COMMANDS=()
SERVER_PID=""
PROBLEMS=()

TAG=pusher

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# ---- setup -----------------------------------------------------------------------

HARD=$(ulimit -Hn)
ulimit -n "$HARD"
log "open-file limit raised to $HARD"
[ "$HARD" -ge $((CH_CONNS + 100)) ] || fail "open-file limit $HARD is too low for $CH_CONNS connections"
command -v taskset >/dev/null || fail "taskset is missing (package util-linux)"
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; CLIENT_CPU=0; log "one CPU only: server and client share it"; fi

build_pusher_bench
BENCH="$PUSHER_BENCH"

build_bridge "$LOGS"

cat >"$CONFIG" <<'EOF'
{"apps":[{"id":1,"key":"app-key","secret":"app-secret","max_presence_members_per_channel":100,"max_backend_events_per_sec":-1}]}
EOF
SERVER_FLAGS=(--host 127.0.0.1 --port 0 --threads 1 --max-connections 19500 --shutdown-grace 5
    --data-dir "$DATA" --config "$CONFIG")

# ---- server control ----------------------------------------------------------------

stop_server() { # stop_server NAME: SIGTERM, SIGKILL after 8 s; a crash or a bad exit is a problem
    [ -n "$SERVER_PID" ] || return 0
    local rc=0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || rc=$?
        problem "$1: bridge had already exited (status $rc) before the end of the benchmark; see $LOGS/server-$1.log"
        SERVER_PID=""
        return 0
    fi
    record "${1}_server_rss_kib" "$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")"
    stop_bridge "$SERVER_PID" "$LOGS/server-$1.log" "$1: bridge" problem
    SERVER_PID=""
}

# run_bench NAME TIMEOUT ARGS...: runs pusher_bench on CLIENT_CPU, output in $LOGS/NAME.out
run_bench() {
    local name=$1 secs=$2 rc=0
    shift 2
    timeout "$secs" taskset -c "$CLIENT_CPU" "$BENCH" "$@" --port "$PORT" --watch-pid "$SERVER_PID" --server-cpu "$SERVER_CPU" \
        --client-cpu "$CLIENT_CPU" --quiet \
        >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    [ "$rc" = 0 ] || problem "$name: pusher_bench exited with status $rc ($(tail -3 "$LOGS/$name.err" | tr '\n' ' '))"
    grep -a '=' "$LOGS/$name.out" | sed "s/^/${name}_/" | sed "s/^${name}_${name}_/${name}_/" >>"$RESULTS" || true
    for k in connections_failed connections_dropped errors bad_channel subscription_errors pusher_errors; do
        local v
        v=$(kv "$LOGS/$name.out" $k)
        [ -z "$v" ] || [ "$v" = 0 ] || problem "$name: $k=$v (see $LOGS/$name.err)"
    done
    [ -z "$(kv "$LOGS/$name.out" server_gone)" ] || problem "$name: the server process disappeared during the run"
    # CPU SERVER_CPU busier than the server itself: something else ran there and the numbers are unreliable.
    local line key proc core
    while IFS= read -r line; do
        key=${line%%_server_core_busy_pct=*}
        core=${line##*=}
        proc=$(kv "$LOGS/$name.out" "${key}_server_cpu_pct")
        if [ -n "$proc" ] && [ $((core - proc)) -ge 10 ]; then
            problem "$name ($key): CPU $SERVER_CPU was ${core}% busy but the server used only ${proc}%: other processes competed, these numbers are unreliable"
        fi
    done < <(grep -a '_server_core_busy_pct=' "$LOGS/$name.out" || true)
    while IFS= read -r line; do
        key=${line%%_loadgen_core_busy_pct=*}
        core=${line##*=}
        proc=$(kv "$LOGS/$name.out" "${key}_loadgen_cpu_pct")
        if [ -n "$proc" ] && [ $((core - proc)) -ge 15 ]; then
            problem "$name ($key): CPU $CLIENT_CPU was ${core}% busy but the load generator used only ${proc}%: other processes competed with it"
        fi
    done < <(grep -a '_loadgen_core_busy_pct=' "$LOGS/$name.out" || true)
    local args="$*"
    note_command "taskset -c $CLIENT_CPU pusher_bench $args --port PORT --watch-pid SERVER_PID --server-cpu $SERVER_CPU --client-cpu $CLIENT_CPU"
}

# ---- 1. many channels ----------------------------------------------------------------------

bench_channels() {
    start_server channels
    log "channels: $CH_CONNS connections, rates $CH_RATES/s, $CH_STEP s each, then closed loop"
    run_bench channels 150 channels --connections "$CH_CONNS" --group-size $CH_GROUP --group-frac $CH_GROUP_FRAC \
        --rates "$CH_RATES" --step $CH_STEP --closed $CH_CLOSED --http-conns $CH_HTTP --depth $CH_DEPTH \
        --queue-cap $CH_QUEUE --payload $PAYLOAD --deadline 140
    stop_server channels
    local missing
    missing=$(r channels_deliveries_missing)
    [ -z "$missing" ] || [ "$missing" = 0 ] || problem "channels: $missing deliveries never arrived"
}

# ---- 2. presence churn -----------------------------------------------------------------------

bench_presence() {
    start_server presence
    log "presence: $PR_CONNS connections x $PR_PER_CONN presence channels over $PR_ROOMS rooms, churn for $PR_SECS s"
    run_bench presence 150 presence --connections "$PR_CONNS" --per-conn $PR_PER_CONN --rooms $PR_ROOMS \
        --duration $PR_SECS --inflight $PR_INFLIGHT --leave-frac $PR_LEAVE --deadline 140
    stop_server presence
    [ "$(r presence_verified)" = 1 ] || problem "presence: member counts not verified (mismatches: $(r presence_count_mismatches), pongs missing: $(r presence_pongs_missing))"
}

# ---- 3. HTTP publish API -------------------------------------------------------------------------

bench_api() {
    start_server api
    local subs run c d
    for subs in 0 1; do
        for run in $API_RUNS; do
            c=${run%%:*}; d=${run##*:}
            log "api: $c connection(s) x depth $d, $subs subscriber(s)"
            run_bench "api_s${subs}_c${c}_d${d}" 60 api --subscribers $subs --http-conns $c --depth $d \
                --duration $API_SECS --warmup $API_WARMUP --payload $PAYLOAD --deadline 50
        done
    done
    stop_server api
}

# ---- run ---------------------------------------------------------------------------------------

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
note_command "taskset -c $SERVER_CPU bridge serve ${SERVER_FLAGS[*]/#$ROOT\//}"
T0=$(date +%s)
bench_channels
bench_presence
bench_api
T1=$(date +%s)

# ---- report ---------------------------------------------------------------------------------------

fmt() { printf '%s' "${1:-?}" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta'; }
us() { # us N: microseconds as µs or ms
    case "$1" in
        ''|*[!0-9]*) printf '?' ;;
        *) awk -v u="$1" 'BEGIN { if (u < 1000) printf "%d µs", u; else if (u < 10000) printf "%.1f ms", u / 1000; else printf "%.0f ms", u / 1000 }' ;;
    esac
}
# cpu PREFIX: "the server process's CPU (how busy its whole core was)"
cpu() { printf '%s%% (%s%%)' "$(r "$1_server_cpu_pct")" "$(r "$1_server_core_busy_pct")"; }
pct() { awk -v f="$1" 'BEGIN { printf "%g", 100 * f }'; }
# per_core RATE CPU_PCT: the rate per fully busy server core (RATE / CPU share).
per_core() {
    case "$1$2" in *[!0-9]*|"") printf '?'; return 0 ;; esac
    [ "$2" -gt 0 ] || { printf '?'; return 0; }
    fmt $(($1 * 100 / $2))
}

{
    echo "## Pusher benchmarks ($STARTED)"
    echo
    echo "### 1. Many channels: publish through the HTTP API to personal and group channels"
    echo
    echo "$(fmt "$(r channels_setup_ws_connections)") WebSocket connections and $(r channels_setup_http_connections) HTTP publisher connections; connection *i* subscribed to \`user-i\` and to \`group-⌊i/$CH_GROUP⌋\` ($(fmt $((CH_CONNS * 2))) subscriptions, set up in $(r channels_setup_seconds) s). Each event goes to a random channel, $(pct $CH_GROUP_FRAC) % to a group (→ $CH_GROUP deliveries) and the rest to a personal one (→ 1), through signed \`POST /apps/1/events\` on $CH_HTTP keep-alive connections; open-loop rate steps of $CH_STEP s (a publish is skipped when its connection already has $CH_QUEUE queued), then closed loop with $CH_HTTP×$CH_DEPTH requests in flight. Latency: from the event's intended send time (in its data) to its arrival at the subscriber."
    echo
    echo "| rate offered | publishes accepted (200) | deliveries received | delivery p50 | delivery p99 | API p50 / p99 | skipped | server CPU (whole core) | publishes per busy core | loadgen CPU |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    n=$(r channels_steps)
    for s in $(seq 1 "${n:-0}") closed; do
        if [ "$s" = closed ]; then p=channels_closed; what="closed loop, $CH_HTTP×$CH_DEPTH in flight"
            [ -n "$(r ${p}_accepted_per_sec)" ] || continue
        else p=channels_step$s; what="$(fmt "$(r ${p}_offered_per_sec)")/s"; fi
        echo "| $what | **$(fmt "$(r ${p}_accepted_per_sec)")/s** | $(fmt "$(r ${p}_deliveries_per_sec)")/s | $(us "$(r ${p}_delivery_p50_us)") | $(us "$(r ${p}_delivery_p99_us)") | $(us "$(r ${p}_http_p50_us)") / $(us "$(r ${p}_http_p99_us)") | $(fmt "$(r ${p}_skipped)") | $(cpu $p) | $(per_core "$(r ${p}_accepted_per_sec)" "$(r ${p}_server_cpu_pct)")/s | $(r ${p}_loadgen_cpu_pct)% |"
    done
    echo
    echo "Deliveries: $(fmt "$(r channels_deliveries_received)") received of $(fmt "$(r channels_deliveries_expected)") expected for the accepted publishes ($(r channels_deliveries_missing) missing, $(r channels_bad_channel) on a wrong channel). Server VmRSS at the end: $(fmt "$(r channels_server_rss_kib)") KiB. Target: ≥ 10,000 publishes/s per server core."
    echo
    echo "### 2. Presence churn"
    echo
    echo "$(fmt "$PR_CONNS") connections × $PR_PER_CONN presence channels = $(fmt "$(r presence_subscriptions)") memberships in $(fmt "$PR_ROOMS") channels \`presence-room-k\` ($((PR_CONNS * PR_PER_CONN / PR_ROOMS)) members each, set up in $(r presence_setup_seconds) s). Then for $PR_SECS s, $PR_INFLIGHT at a time, a random member leaves (\`pusher:unsubscribe\`) and re-joins with a freshly signed \`channel_data\` in the same write; a join (and its leave) counts when its \`subscription_succeeded\` arrives. Every leave and join sends \`member_removed\`/\`member_added\` to the other members."
    echo
    echo "| memberships | in flight | joins/s | leaves/s | joins + leaves/s | member_added + member_removed frames/s | re-join p50 / p99 | server CPU (whole core) | joins + leaves per busy core | loadgen CPU | member counts |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    p=presence
    jl=$(r ${p}_joins_leaves_per_sec)
    frames=$(awk -v a="$(r ${p}_member_added_per_sec)" -v b="$(r ${p}_member_removed_per_sec)" 'BEGIN { printf "%.0f", a + b }')
    if [ "$(r ${p}_verified)" = 1 ]; then check="exact: $(fmt "$(r ${p}_rooms_checked)") channels agree ($(fmt "$(r ${p}_members_server)") members after $(fmt "$(r ${p}_left_for_good)") left for good)"
    else check="**MISMATCH**: $(r ${p}_count_mismatches) channels differ (server $(r ${p}_members_server), client $(r ${p}_members_believed))"; fi
    echo "| $(fmt "$(r ${p}_subscriptions)") | $(r ${p}_inflight) | $(fmt "$(r ${p}_joins_per_sec)") | $(fmt "$(r ${p}_leaves_per_sec)") | **$(fmt "$jl")** | $(fmt "$frames") | $(us "$(r ${p}_join_p50_us)") / $(us "$(r ${p}_join_p99_us)") | $(cpu presence) | $(per_core "$jl" "$(r presence_server_cpu_pct)") | $(r presence_loadgen_cpu_pct)% | $check |"
    echo
    echo "Member counts: after the churn, $(r ${p}_left_for_good) memberships ($(pct $PR_LEAVE) %) left for good, every connection's \`pusher:ping\` was answered, then signed \`GET /apps/1/channels?filter_by_prefix=presence-&info=user_count\` ($(fmt "$(r ${p}_query_bytes)") B, answered in $(us "$(r ${p}_query_us)")) was compared with the client's count for every channel. Server VmRSS at the end: $(fmt "$(r presence_server_rss_kib)") KiB. Target: ≥ 2,000 joins and leaves per second."
    echo
    echo "### 3. HTTP publish API"
    echo
    echo "Closed loop, signed \`POST /apps/1/events\` ($PAYLOAD B of padding in data) to one channel, $API_SECS s after $API_WARMUP s of warm-up."
    echo
    echo "| channel subscribers | connections × pipelined | requests/s | p50 | p99 | server CPU (whole core) | requests per busy core | loadgen CPU | non-200 |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for subs in 0 1; do
        for run in $API_RUNS; do
            c=${run%%:*}; d=${run##*:}; p="api_s${subs}_c${c}_d${d}_api"
            echo "| $subs | $c × $d | **$(fmt "$(r ${p}_requests_per_sec)")** | $(us "$(r ${p}_http_p50_us)") | $(us "$(r ${p}_http_p99_us)") | $(cpu $p) | $(per_core "$(r ${p}_requests_per_sec)" "$(r ${p}_server_cpu_pct)") | $(r ${p}_loadgen_cpu_pct)% | $(r ${p}_non200) |"
        done
    done
    echo
    echo "Target: ≥ 30,000 requests/s per server core."
    echo
    echo "Server CPU: the bridge process's user + system time over the measured window, and in brackets how busy CPU $SERVER_CPU was as a whole (all processes, irq and softirq; a gap of 10 points or more means something else ran there and is listed under problems). \"Per busy core\" = rate ÷ the process's CPU share: the rate itself at 100 %, an extrapolation when the load generator could not keep the server busy."
    echo
    report_problems
    echo "Machine: $(machine); the run took $((T1 - T0)) s."
    echo "Server pinned to CPU $SERVER_CPU (\`--threads 1\`), load generator to CPU $CLIENT_CPU (taskset); open-file limit $HARD. $(basename "$BRIDGE") built with \`swift build -c release\`; pusher_bench with \`gcc -O2 … -lcrypto\`."
    if [ "$QUICK" = 1 ]; then echo "(--quick run: shortened, not for publishing)"; fi
    echo
    report_commands "bench/pusher_bench.sh runs them all; a fresh server for each scenario"
    echo "<details><summary>Raw numbers (.build-bench/pusher-results.txt)</summary>"
    echo
    echo '```'
    cat "$RESULTS"
    echo '```'
    echo
    echo "</details>"
} | tee "$REPORT"
log "report: $REPORT, raw numbers: $RESULTS, logs: $LOGS/"
[ ${#PROBLEMS[@]} = 0 ] || exit 1
