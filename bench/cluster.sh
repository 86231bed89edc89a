#!/usr/bin/env bash
# shellcheck disable=SC2086  # unquoted $vars are result keys built from plain numbers and words
# Cluster fan-out through Redis: one channel, its subscribers spread round-robin over
# 1, 2 or 3 Bridge nodes joined by `--adapter redis`, events published through the
# signed HTTP API of the first node only. Compared with one node without an adapter:
# deliveries/s and publish-to-receive latency at a fixed rate and in closed loop, and the
# CPU time each published event costs the nodes and redis-server. Prints a Markdown report.
# Loopback only; every step has a timeout.
#
# Usage: bench/cluster.sh [--quick] [--bridge PATH]
#   --quick        200 subscribers and 1-2 s runs (a smoke test of the harness, about a minute)
#   --bridge PATH  use this bridge binary instead of building one with `swift build -c release`
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/.build-bench"
source "$ROOT/bench/lib.sh"
parse_options "$@"

if [ "$QUICK" = 1 ]; then
    SUBS=200; RATE=50; SECS=2; CLOSED=2; WARMUP=0.5
    COST_RATE=1000; COST_SECS=1
    BUDGET=60; QUIET_WAIT=5
else
    SUBS=1000; RATE=50; SECS=8; CLOSED=5; WARMUP=1
    COST_RATE=3000; COST_SECS=5
    BUDGET=240; QUIET_WAIT=20
fi
WINDOW=16            # closed loop: events in flight (each until all SUBS deliveries and its 200 are in)
PAYLOAD=64           # padding bytes in each event's data
NOISY_PCT=20         # other programs used >= 20 % of a core during a run: run the setup again
MAX_ATTEMPTS=3       # ... at most this many times in all, while the script is under BUDGET seconds
# QUIET_WAIT: before each attempt, wait up to this many seconds for a second with the machine < 10 % busy
# The setups: KEY:NODES:ADAPTER
SETUPS="single:1:local single_redis:1:redis nodes2:2:redis nodes3:3:redis"
SERVER_CPU=0         # every node and redis-server
CLIENT_CPU=1         # the load generator

LOGS="$WORK/logs/cluster"
mkdir -p "$LOGS"
rm -f "$LOGS"/*.out "$LOGS"/*.err "$LOGS"/*.log  # no attempt of an earlier run left to mistake for this one's
RESULTS="$WORK/cluster-results.txt"
REPORT="$WORK/cluster-report.md"
CONFIG="$WORK/cluster-config.json"
DATA="$WORK/cluster-data"
: >"$RESULTS"
COMMANDS=()
PROBLEMS=()
NODE_PIDS=()
NODE_PORTS=()
REDIS_PID=""
REDIS_PORT=""

TAG=cluster

cleanup() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -n "$REDIS_PID" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        timeout 5 tail --pid="$REDIS_PID" -f /dev/null 2>/dev/null || kill -KILL "$REDIS_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---- setup -----------------------------------------------------------------------

HARD=$(ulimit -Hn)
ulimit -n "$HARD"
log "open-file limit raised to $HARD"
[ "$HARD" -ge $((SUBS + 100)) ] || fail "open-file limit $HARD is too low for $SUBS connections"
command -v taskset >/dev/null || fail "taskset is missing (package util-linux)"
command -v curl >/dev/null || fail "curl is missing (it asks each node's /ready)"
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; CLIENT_CPU=0; log "one CPU only: servers and client share it"; fi
if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing redis-server"
        timeout 300 apt-get install -y -qq redis-server >/dev/null 2>&1 ||
            { timeout 300 apt-get update -qq >/dev/null 2>&1 && timeout 300 apt-get install -y -qq redis-server >/dev/null 2>&1; } ||
            fail "redis-server is missing and could not be installed"
    else
        fail "redis-server is missing (package redis-server)"
    fi
fi

build_pusher_bench
build_bridge "$LOGS"

cat >"$CONFIG" <<'EOF'
{"apps":[{"id":1,"key":"app-key","secret":"app-secret","max_backend_events_per_sec":-1}]}
EOF
NODE_FLAGS=(--host 127.0.0.1 --port 0 --threads 1 --max-connections 19500 --max-outbound-bytes 16777216
    --shutdown-grace 5 --config "$CONFIG")

# ---- redis-server ------------------------------------------------------------------

# redis_ping PORT: true when a Redis server answers PING on 127.0.0.1:PORT.
redis_ping() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null | grep -q PONG
}

# start_redis: one redis-server for the whole run, pinned with the nodes, no persistence, on a
# free loopback port (a random one in 20000-29999; another is tried when it is taken).
start_redis() {
    local try port i
    mkdir -p "$WORK/cluster-redis"
    for try in $(seq 1 20); do
        port=$((20000 + RANDOM % 10000))
        redis_ping "$port" && continue
        taskset -c "$SERVER_CPU" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$WORK/cluster-redis" --logfile "$LOGS/redis.log" >/dev/null 2>&1 &
        REDIS_PID=$!
        for i in $(seq 1 50); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            if redis_ping "$port"; then REDIS_PORT=$port; log "redis-server pid $REDIS_PID on port $port"; return 0; fi
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    done
    fail "redis-server did not start (log: $LOGS/redis.log)"
}

# ---- nodes -------------------------------------------------------------------------

# start_nodes NAME N ADAPTER: N fresh nodes pinned to SERVER_CPU, with their own data
# directories; with ADAPTER redis all share REDIS_PORT and the prefix NAME. Sets NODE_PIDS
# and NODE_PORTS; with redis, waits until every node's /ready says 200 (both Redis links up).
start_nodes() {
    local name=$1 n=$2 adapter=$3 k i logf port code
    NODE_PIDS=(); NODE_PORTS=()
    local extra=()
    if [ "$adapter" = redis ]; then
        extra=(--adapter redis --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --redis-prefix "bench-$name-$$")
    fi
    for k in $(seq 1 "$n"); do
        logf="$LOGS/$name-node$k.log"
        rm -rf "$DATA/node$k"
        taskset -c "$SERVER_CPU" "$BRIDGE" serve "${NODE_FLAGS[@]}" --data-dir "$DATA/node$k" "${extra[@]}" \
            2>"$logf" >/dev/null &
        NODE_PIDS+=($!)
    done
    for k in $(seq 1 "$n"); do
        logf="$LOGS/$name-node$k.log"
        port=""
        for i in $(seq 1 100); do
            port=$(grep -a -o 'listening on http://[^ ]*' "$logf" 2>/dev/null | head -1 | sed -E 's#.*:([0-9]+)/?$#\1#' || true)
            [ -n "$port" ] && break
            kill -0 "${NODE_PIDS[$((k - 1))]}" 2>/dev/null || { cat "$logf" >&2; fail "$name: node $k exited at start"; }
            sleep 0.1
        done
        [ -n "$port" ] || { cat "$logf" >&2; fail "$name: node $k printed no 'listening on' line within 10 s"; }
        NODE_PORTS+=("$port")
    done
    if [ "$adapter" = redis ]; then
        for k in $(seq 1 "$n"); do
            port=${NODE_PORTS[$((k - 1))]}
            for i in $(seq 1 100); do
                code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/ready" || true)
                [ "$code" = 200 ] && break
                sleep 0.1
            done
            [ "$code" = 200 ] || fail "$name: node $k (port $port) not ready within 10 s: $(curl -s -m 1 "http://127.0.0.1:$port/ready" || true)"
        done
    fi
    log "$name: $n node(s), pids ${NODE_PIDS[*]}, ports ${NODE_PORTS[*]}"
}

# stop_nodes NAME: SIGTERM, SIGKILL after 8 s; a crash or a bad exit is a problem.
stop_nodes() {
    local name=$1 k
    for k in "${!NODE_PIDS[@]}"; do
        stop_bridge "${NODE_PIDS[$k]}" "$LOGS/$name-node$((k + 1)).log" "$name: node $((k + 1))" attempt_problem
    done
    NODE_PIDS=(); NODE_PORTS=()
}

# ---- one run of the load generator -----------------------------------------------------

ATTEMPT_PROBLEMS=()
attempt_problem() { ATTEMPT_PROBLEMS+=("$*"); log "problem: $*"; }

# run_pb OUT ARGS...: pusher_bench broadcast on CLIENT_CPU against the current nodes (WebSocket
# subscribers round-robin over them, publishes to the first), reporting the CPU of each node and
# of redis-server. Its results go to OUT.out, its stderr to OUT.err.
run_pb() {
    local out=$1 rc=0 pid k v
    shift
    local ports cpu=()
    ports=$(IFS=,; echo "${NODE_PORTS[*]}")
    for pid in "${NODE_PIDS[@]}" "$REDIS_PID"; do cpu+=(--cpu-pid "$pid"); done
    timeout 150 taskset -c "$CLIENT_CPU" "$PUSHER_BENCH" broadcast --ports "$ports" "$@" "${cpu[@]}" \
        --watch-pid "${NODE_PIDS[0]}" --server-cpu "$SERVER_CPU" --client-cpu "$CLIENT_CPU" --quiet --deadline 140 \
        >"$out.out" 2>"$out.err" || rc=$?
    [ "$rc" = 0 ] || attempt_problem "$(basename "$out"): pusher_bench exited with status $rc ($(tail -3 "$out.err" | tr '\n' ' '))"
    for k in connections_failed connections_dropped errors bad_channel subscription_errors pusher_errors broadcast_late broadcast_duplicates; do
        v=$(kv "$out.out" $k)
        [ -z "$v" ] || [ "$v" = 0 ] || attempt_problem "$(basename "$out"): $k=$v (see $out.err)"
    done
    v=$(kv "$out.out" broadcast_deliveries_missing)
    [ -z "$v" ] || [ "$v" = 0 ] || attempt_problem "$(basename "$out"): $v deliveries never arrived"
    [ -z "$(kv "$out.out" server_gone)" ] || attempt_problem "$(basename "$out"): node 1 disappeared during the run"
}

# other_load FILE...: the highest "other processes" CPU % of any measured phase in these outputs.
other_load() {
    cat "$@" 2>/dev/null | awk -F= '/_other_processes_cpu_pct=/ { if ($2 > m) m = $2 } END { print m + 0 }'
}

# ---- one setup ---------------------------------------------------------------------------

# machine_busy: % of one core the whole machine (both CPUs: user, nice, system, irq, softirq,
# steal) was busy during one second.
machine_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    echo "$a $b" | awk -v n="$(nproc)" '{ printf "%.0f", 100 * n * ($3 - $1) / ($4 - $2) }'
}

# wait_quiet: before an attempt (no node running, redis-server idle), waits up to QUIET_WAIT
# seconds for a second in which the machine is < 10 % busy, so that a burst of some other
# program's work is less likely to overlap the runs. Goes on regardless after that.
wait_quiet() {
    local i busy=0
    for i in $(seq 1 "$QUIET_WAIT"); do
        busy=$(machine_busy)
        [ "$busy" -lt 10 ] && return 0
    done
    log "the machine stayed busy (${busy}% of a core in the last second) for ${QUIET_WAIT} s: going on"
}

# bench_setup KEY N ADAPTER: fresh nodes; the cost run (no subscribers, COST_RATE events/s),
# then the fan-out run (SUBS subscribers: RATE events/s, then a closed loop of WINDOW events).
# A run during which other programs used NOISY_PCT % of a core or more is done again (fresh
# nodes), up to MAX_ATTEMPTS while under BUDGET; the attempt with the least other load counts.
bench_setup() {
    local key=$1 n=$2 adapter=$3 a best=0 best_other=999 other out
    local -a best_problems=()
    for a in $(seq 1 "$MAX_ATTEMPTS"); do
        ATTEMPT_PROBLEMS=()
        out="$LOGS/$key-a$a"
        wait_quiet
        start_nodes "$key" "$n" "$adapter"
        log "$key: cost run, no subscribers, $COST_RATE events/s for $COST_SECS s"
        run_pb "$out-cost" --subscribers 0 --rate "$COST_RATE" --duration "$COST_SECS" --warmup "$WARMUP" \
            --payload "$PAYLOAD" --channel "cost-$key"
        log "$key: fan-out run, $SUBS subscribers over $n node(s), $RATE events/s for $SECS s, then $WINDOW in flight for $CLOSED s"
        run_pb "$out-fanout" --subscribers "$SUBS" --rate "$RATE" --duration "$SECS" --warmup "$WARMUP" \
            --closed "$CLOSED" --window "$WINDOW" --payload "$PAYLOAD" --channel "fanout-$key"
        stop_nodes "$key"
        other=$(other_load "$out-cost.out" "$out-fanout.out")
        log "$key attempt $a: $(kv "$out-fanout.out" broadcast_open_deliveries_per_sec) deliveries/s at $RATE events/s (p50 $(kv "$out-fanout.out" broadcast_open_delivery_p50_us) us, p99 $(kv "$out-fanout.out" broadcast_open_delivery_p99_us) us), closed loop $(kv "$out-fanout.out" broadcast_closed_deliveries_per_sec)/s; other load ${other}%"
        if [ "$other" -lt "$best_other" ]; then
            best=$a; best_other=$other
            best_problems=("${ATTEMPT_PROBLEMS[@]+"${ATTEMPT_PROBLEMS[@]}"}")
        fi
        [ "$other" -ge "$NOISY_PCT" ] || break
        if [ $(($(date +%s) - T0)) -ge "$BUDGET" ]; then log "$key: noisy, but the run is past ${BUDGET} s: no new attempt"; break; fi
        if [ "$a" -lt "$MAX_ATTEMPTS" ]; then log "$key: other programs used ${other}% of a core: running it again"; fi
    done
    local p
    for p in "${best_problems[@]+"${best_problems[@]}"}"; do problem "$p"; done
    out="$LOGS/$key-a$best"
    sed -e "s/^broadcast_/${key}_cost_/" -e "t" -e "s/^/${key}_cost_/" "$out-cost.out" | grep -a '=' >>"$RESULTS" || true
    sed -e "s/^broadcast_/${key}_/" -e "t" -e "s/^/${key}_/" "$out-fanout.out" | grep -a '=' >>"$RESULTS" || true
    record "${key}_nodes" "$n"
    record "${key}_adapter" "$adapter"
    record "${key}_attempts" "$a"
    record "${key}_attempt_used" "$best"
    record "${key}_other_cpu_pct" "$best_other"
    derive "$key" "$n"
}

# sum_pids KEY PHASE FIRST LAST FIELD: the sum of KEY_PHASE_pid<k>_FIELD for k in FIRST..LAST.
sum_pids() {
    local k s=0 v
    for k in $(seq "$3" "$4"); do
        v=$(r "${1}_${2}_pid${k}_$5")
        s=$(awk -v a="$s" -v b="${v:-0}" 'BEGIN { print a + b }')
    done
    echo "$s"
}

# ratio A B SCALE FORMAT: A / B * SCALE, or "?" when B is empty or 0.
ratio() { awk -v a="$1" -v b="$2" -v s="$3" -v f="$4" 'BEGIN { if (b == "" || b + 0 == 0 || a == "") print "?"; else printf f, a / b * s }'; }

# derive KEY N: CPU per event from the per-process CPU seconds (pids 1..N: the nodes; N+1: redis-server).
derive() {
    local key=$1 n=$2 rp=$(($2 + 1)) bridge redis phase events
    for phase in cost_open open closed; do
        case "$phase" in
            cost_open) events=$(r ${key}_cost_open_accepted) ;;
            open) events=$(r ${key}_open_accepted) ;;
            closed) events=$(r ${key}_closed_completed) ;;
        esac
        bridge=$(sum_pids "$key" "$phase" 1 "$n" cpu_s)
        redis=$(r ${key}_${phase}_pid${rp}_cpu_s)
        record "${key}_${phase}_bridge_cpu_s" "$bridge"
        record "${key}_${phase}_bridge_cpu_pct" "$(sum_pids "$key" "$phase" 1 "$n" cpu_pct)"
        record "${key}_${phase}_redis_cpu_pct" "$(r ${key}_${phase}_pid${rp}_cpu_pct)"
        record "${key}_${phase}_bridge_us_per_event" "$(ratio "$bridge" "$events" 1000000 %.1f)"
        record "${key}_${phase}_redis_us_per_event" "$(ratio "${redis:-}" "$events" 1000000 %.1f)"
    done
    record "${key}_open_bridge_us_per_delivery" "$(ratio "$(r ${key}_open_bridge_cpu_s)" "$(r ${key}_open_deliveries)" 1000000 %.2f)"
}

# ---- run ---------------------------------------------------------------------------------------

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
start_redis
note_command "taskset -c $SERVER_CPU redis-server --port RPORT --bind 127.0.0.1 --save \"\" --appendonly no"
note_command "taskset -c $SERVER_CPU bridge serve ${NODE_FLAGS[*]/#$ROOT\//} --data-dir DIR [--adapter redis --redis-url redis://127.0.0.1:RPORT/0 --redis-prefix PFX]   # once per node"
note_command "taskset -c $CLIENT_CPU pusher_bench broadcast --ports P1[,P2[,P3]] --subscribers 0 --rate $COST_RATE --duration $COST_SECS --warmup $WARMUP --payload $PAYLOAD --cpu-pid NODE... --cpu-pid REDIS --watch-pid NODE1 --server-cpu $SERVER_CPU --client-cpu $CLIENT_CPU"
note_command "taskset -c $CLIENT_CPU pusher_bench broadcast --ports P1[,P2[,P3]] --subscribers $SUBS --rate $RATE --duration $SECS --warmup $WARMUP --closed $CLOSED --window $WINDOW --payload $PAYLOAD --cpu-pid NODE... --cpu-pid REDIS --watch-pid NODE1 --server-cpu $SERVER_CPU --client-cpu $CLIENT_CPU"
for setup in $SETUPS; do
    IFS=: read -r key n adapter <<<"$setup"
    bench_setup "$key" "$n" "$adapter"
done
T1=$(date +%s)

# ---- report ---------------------------------------------------------------------------------------

fmt() { printf '%s' "${1:-?}" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta'; }
ms() { # ms N: microseconds as ms
    case "$1" in
        ''|*[!0-9]*) printf '?' ;;
        *) awk -v u="$1" 'BEGIN { if (u < 10000) printf "%.2f ms", u / 1000; else if (u < 100000) printf "%.1f ms", u / 1000; else printf "%.0f ms", u / 1000 }' ;;
    esac
}
label() {
    case "$1" in
        single) echo "1 node, no adapter" ;;
        single_redis) echo "1 node, \`--adapter redis\`" ;;
        nodes2) echo "2 nodes through Redis" ;;
        nodes3) echo "3 nodes through Redis" ;;
    esac
}
keys() { for s in $SETUPS; do echo "${s%%:*}"; done; }
# list FIELD: KEY_FIELD of every setup, "a / b / c / d".
list() { local k out=""; for k in $(keys); do out="$out${out:+ / }$(fmt "$(r "${k}_$1")")"; done; echo "$out"; }
# by_node KEY PHASE: the p50 of the subscribers of each node, node 1 (the publisher's) first.
by_node() {
    local k n=$(r "${1}_nodes") out=""
    for k in $(seq 1 "$n"); do out="$out${out:+ / }$(ms "$(r "${1}_${2}_node${k}_delivery_p50_us")")"; done
    echo "$out"
}
# usf X: a µs figure, whole and with separators from 1,000 up.
usf() { case "$1" in ''|'?') printf '?' ;; *) if awk -v x="$1" 'BEGIN { exit !(x >= 1000) }'; then fmt "$(printf '%.0f' "$1")"; else printf '%s' "$1"; fi ;; esac; }
times_single() { ratio "$1" "$(r "single_$2")" 1 %.2f×; }
plus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "?" || b == "?" || a == "" || b == "") print "?"; else printf "%+.1f", a - b }'; }

{
    echo "## Cluster fan-out through Redis ($STARTED)"
    echo
    echo "One public channel with $(fmt $SUBS) WebSocket subscribers, spread round-robin over the nodes; every event is a signed \`POST /apps/1/events\` ($PAYLOAD B of padding in its data) to the first node on one keep-alive connection, so the other nodes get it through Redis pub/sub. Every node (\`--threads 1\`) and redis-server run on CPU $SERVER_CPU, the load generator on CPU $CLIENT_CPU: the total work for the same deliveries is compared on one server core. Latency: from the event's send time (in its data) to its arrival at a subscriber."
    echo
    echo "### Deliveries and latency"
    echo
    echo "| setup | open loop $RATE events/s: deliveries/s | p50 | p99 | p50 by node (node 1 publishes) | closed loop, $WINDOW events in flight: deliveries/s | vs 1 node | p50 | p99 | CPU $SERVER_CPU busy | loadgen CPU | other load |"
    echo "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for k in $(keys); do
        echo "| $(label $k) | $(fmt "$(r ${k}_open_deliveries_per_sec)") | $(ms "$(r ${k}_open_delivery_p50_us)") | $(ms "$(r ${k}_open_delivery_p99_us)") | $(by_node $k open) | **$(fmt "$(r ${k}_closed_deliveries_per_sec)")** | $(times_single "$(r ${k}_closed_deliveries_per_sec)" closed_deliveries_per_sec) | $(ms "$(r ${k}_closed_delivery_p50_us)") | $(ms "$(r ${k}_closed_delivery_p99_us)") | $(r ${k}_closed_server_core_busy_pct)% | $(r ${k}_closed_loadgen_cpu_pct)% | $(r ${k}_other_cpu_pct)% |"
    done
    echo
    echo "### CPU per published event"
    echo
    echo "Bridge CPU: the user + system time (\`/proc/PID/stat\`) of all nodes together, from the first measured publish to the last delivery, ÷ events accepted; redis-server's the same way. The cost run publishes $(fmt $COST_RATE) events/s for $COST_SECS s to a channel nobody subscribes to, so nothing but the HTTP request and the adapter costs anything; the Δ column is what the adapter (and each further node) adds per event. CPU times come in clock ticks of 10 ms: redis-server's closed-loop figures rest on about ten of them (±10 %)."
    echo
    echo "| setup | cost run: bridge µs/event | Δ vs 1 node, no adapter | redis-server µs/event | API p50 / p99 | fan-out at $RATE events/s: bridge µs/event | vs 1 node | µs/delivery | closed loop: bridge µs/event | redis-server µs/event | bridge CPU | redis-server CPU |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for k in $(keys); do
        echo "| $(label $k) | **$(r ${k}_cost_open_bridge_us_per_event)** | $(plus "$(r ${k}_cost_open_bridge_us_per_event)" "$(r single_cost_open_bridge_us_per_event)") | $(r ${k}_cost_open_redis_us_per_event) | $(ms "$(r ${k}_cost_open_http_p50_us)") / $(ms "$(r ${k}_cost_open_http_p99_us)") | $(usf "$(r ${k}_open_bridge_us_per_event)") | $(times_single "$(r ${k}_open_bridge_us_per_event)" open_bridge_us_per_event) | $(r ${k}_open_bridge_us_per_delivery) | $(usf "$(r ${k}_closed_bridge_us_per_event)") | $(r ${k}_closed_redis_us_per_event) | $(r ${k}_closed_bridge_cpu_pct)% | $(r ${k}_closed_redis_cpu_pct)% |"
    done
    echo
    echo "Events accepted, per setup in table order: cost run $(list cost_open_accepted) (a publish is skipped when 64 are outstanding: $(list cost_open_skipped)); fan-out $(list open_accepted) at $RATE/s, with $(list open_deliveries) deliveries; $(list closed_completed) in the $CLOSED s closed loops. Deliveries missing: $(list deliveries_missing). \"CPU $SERVER_CPU busy\": the whole server core (all processes, irq and softirq) during the closed loop. Other load: CPU of every other process on the machine during the runs, in % of one core (kernel threads left out); a setup with ≥ $NOISY_PCT % is run again, up to $MAX_ATTEMPTS times in all, and the quietest attempt is shown (attempts: $(list attempts))."
    echo
    report_problems
    echo "Machine: $(machine); the run took $((T1 - T0)) s."
    echo "Nodes (\`--threads 1\`, plus each Redis adapter's two connection threads) and $(redis-server --version | awk '{print $1, $2, $3}' | sed 's/ v=/ /') pinned to CPU $SERVER_CPU, pusher_bench to CPU $CLIENT_CPU (taskset); open-file limit $HARD. $(basename "$BRIDGE") built with \`swift build -c release\`; pusher_bench with \`gcc -O2 … -lcrypto\`."
    if [ "$QUICK" = 1 ]; then echo "(--quick run: shortened, not for publishing)"; fi
    echo
    report_commands "bench/cluster.sh runs them all; fresh nodes for each setup, one redis-server for the run"
    echo "<details><summary>Raw numbers (.build-bench/cluster-results.txt)</summary>"
    echo
    echo '```'
    grep -aE '_(nodes|attempts|other_cpu_pct|(cost_open|open|closed)_(accepted|completed|deliveries|deliveries_per_sec|delivery_p50_us|delivery_p99_us|delivery_p999_us|node[0-9]_delivery_p50_us|node[0-9]_delivery_p99_us|pid[0-9]_cpu_s|server_core_busy_pct|server_core_irq_pct|loadgen_cpu_pct|other_processes_cpu_pct|bridge_us_per_event|redis_us_per_event|http_p50_us|http_p99_us)|deliveries_missing)=' "$RESULTS"
    echo '```'
    echo
    echo "</details>"
} | tee "$REPORT"
log "report: $REPORT, raw numbers: $RESULTS, logs: $LOGS/"
[ ${#PROBLEMS[@]} = 0 ] || exit 1
