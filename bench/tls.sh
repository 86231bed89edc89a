#!/usr/bin/env bash
# TLS benchmark: Bridge terminating TLS itself vs nginx + nchan terminating TLS, one server
# core each (servers on CPU 0, the client on CPU 1), loopback only, every run bounded in time.
# A throwaway CA and an ECDSA P-256 server certificate are made with the openssl command; both
# servers serve that certificate with TLS 1.2/1.3. Bridge and nginx runs alternate. Measured:
#   1. server RSS per idle wss connection (subscribed to one channel), 10,000 connections
#   2. full TLS 1.3 handshakes + WebSocket upgrades per second: a closed loop of 32 clients,
#      each connect, handshake (no resumption), upgrade, close
#   3. fan-out deliveries/s over wss: 1,000 subscribers, publishes over https at 50 to 400 msg/s
#   4. what TLS costs Bridge: the same fan-out steps on its plain port; CPU µs per delivery,
#      and the TLS records per delivery that the subscribers receive (coalescing)
# Prints a Markdown report (also .build-bench/tls-report.md; raw numbers in
# .build-bench/tls-results.txt, every run's output in .build-bench/logs/tls/).
#
# Usage: bench/tls.sh [--quick] [--bridge PATH]
#   --quick        small counts and 2-3 s runs (a smoke test of the harness, about a minute)
#   --bridge PATH  use this bridge binary instead of building one with `swift build -c release`
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/.build-bench"
TAG=tls
RESULTS="$WORK/tls-results.txt"
LOGS="$WORK/logs/tls"
CERTS="$WORK/tls"
NCHAN_PREFIX="$WORK/nchan-tls"
DATA="$WORK/tls-data"
source "$ROOT/bench/lib.sh"
parse_options "$@"

if [ "$QUICK" = 1 ]; then
    IDLE_N=1000; HS_SECS=3; HS_ROUNDS=1
    SUBS=500; RATES="100"; DURATION=2; WARMUP=0.5; DRAIN=2
else
    IDLE_N=10000; HS_SECS=10; HS_ROUNDS=2
    SUBS=1000; RATES="50 100 200 400"; DURATION=8; WARMUP=1; DRAIN=3
fi
HS_INFLIGHT=32
SIZE=100
PUBLISHERS=8
P99_LIMIT_US=1000000
NOISY_PCT=20
SERVER_CPU=0
CLIENT_CPU=1
BRIDGE_WS_PATH='/app/app-key?protocol=7&client=bench&version=1'

mkdir -p "$LOGS" "$CERTS"
: >"$RESULTS"
rm -f "$LOGS"/*.out "$LOGS"/*.err
COMMANDS=(); PROBLEMS=()
BRIDGE_PID=""; NGINX_PID=""; CLIENT_PID=""
cleanup() {
    local p
    for p in "$CLIENT_PID" "$BRIDGE_PID" "$NGINX_PID"; do [ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# ---- setup ---------------------------------------------------------------------

HARD=$(ulimit -Hn)
ulimit -n "$HARD"
[ "$HARD" -ge $((IDLE_N + 200)) ] || fail "the open-file limit $HARD is too low for $IDLE_N connections"
command -v taskset >/dev/null || fail "taskset is missing (package util-linux)"
if ! command -v openssl >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing the openssl command"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq openssl >/dev/null 2>&1 || true
fi
command -v openssl >/dev/null || fail "the openssl command is missing (package openssl)"
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; CLIENT_CPU=0; log "one CPU only: server and client share it"; fi

FANOUT="$WORK/fanout"
LOADGEN="$WORK/loadgen"
log "building the clients (fanout, loadgen)"
for c in fanout loadgen; do
    timeout 120 gcc -O2 -Wall -Wextra -o "$WORK/$c" "$ROOT/bench/$c.c" -lssl -lcrypto ||
        fail "bench/$c.c did not build (it needs libssl-dev for -lssl -lcrypto)"
done
build_bridge "$LOGS"
nchan_setup || fail "nginx with the nchan module is not available (packages nginx-light, libnginx-mod-nchan)"

# A throwaway CA and a server certificate for 127.0.0.1 signed by it, both ECDSA P-256, valid
# two days: made fresh for every run, never trusted outside it.
make_certs() {
    local d=$CERTS
    rm -f "$d"/*
    {
        openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" &&
        openssl req -x509 -new -key "$d/ca.key" -sha256 -days 2 -subj "/CN=bridge bench throwaway CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$d/ca.pem" &&
        openssl ecparam -name prime256v1 -genkey -noout -out "$d/server.key" &&
        openssl req -new -key "$d/server.key" -subj "/CN=127.0.0.1" -out "$d/server.csr" &&
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
            "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$d/server.ext" &&
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 -sha256 \
            -extfile "$d/server.ext" -out "$d/server.pem" &&
        openssl verify -CAfile "$d/ca.pem" "$d/server.pem"
    } >"$LOGS/openssl.log" 2>&1 || { cat "$LOGS/openssl.log" >&2; fail "making the certificates failed"; }
}
make_certs
CA="$CERTS/ca.pem"

# ---- servers -------------------------------------------------------------------

BRIDGE_FLAGS=(--host 127.0.0.1 --port 0 --tls-port 0 --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server.key"
    --threads 1 --max-connections 19500 --max-outbound-bytes 16777216 --shutdown-grace 5 --data-dir "$DATA")

# start_bridge NAME: a fresh bridge pinned to SERVER_CPU; sets BRIDGE_PID, BRIDGE_PORT (plain), BRIDGE_TLS_PORT.
start_bridge() {
    local logf="$LOGS/bridge-$1.log" i
    rm -rf "$DATA"
    taskset -c "$SERVER_CPU" "$BRIDGE" serve "${BRIDGE_FLAGS[@]}" 2>"$logf" >/dev/null &
    BRIDGE_PID=$!
    BRIDGE_PORT=""; BRIDGE_TLS_PORT=""
    for i in $(seq 1 100); do
        BRIDGE_PORT=$(grep -a -o 'listening on http://[^ ]*' "$logf" | head -1 | sed -E 's#.*:([0-9]+)/?$#\1#' || true)
        BRIDGE_TLS_PORT=$(grep -a -o 'listening on https://[^ ]*' "$logf" | head -1 | sed -E 's#.*:([0-9]+)/?$#\1#' || true)
        [ -n "$BRIDGE_PORT" ] && [ -n "$BRIDGE_TLS_PORT" ] && break
        kill -0 "$BRIDGE_PID" 2>/dev/null || { cat "$logf" >&2; fail "bridge exited at start"; }
        sleep 0.1
    done
    [ -n "$BRIDGE_TLS_PORT" ] || { cat "$logf" >&2; fail "bridge printed no 'listening on https://' line within 10 s"; }
    log "bridge ($1) pid $BRIDGE_PID, plain port $BRIDGE_PORT, TLS port $BRIDGE_TLS_PORT"
}
stop_bridge_now() { [ -z "$BRIDGE_PID" ] || stop_bridge "$BRIDGE_PID" "$LOGS/bridge-$1.log" "bridge ($1)" problem; BRIDGE_PID=""; }

start_nchan() {
    start_nginx "$1" "$ROOT/bench/nginx-nchan-tls.conf" "$NCHAN_PREFIX" \
        "s#@CERT@#$CERTS/server.pem#g" "s#@KEY@#$CERTS/server.key#g"
}
stop_nchan_now() { stop_pid "$NGINX_PID" nginx; NGINX_PID=""; }

# The process measured for each target (nginx: its one worker), its port, and the client flags.
server_pid() { if [ "$1" = nchan ]; then echo "$NGINX_WORKER"; else echo "$BRIDGE_PID"; fi; }
server_port() { case $1 in nchan) echo "$NGINX_PORT" ;; bridge) echo "$BRIDGE_TLS_PORT" ;; *) echo "$BRIDGE_PORT" ;; esac; }
tls_flags() { if [ "$1" = plain ]; then echo ""; else echo "--tls --ca $CA"; fi; }
fanout_target() { if [ "$1" = nchan ]; then echo nchan; else echo bridge; fi; }
label() { case $1 in nchan) echo "nginx+nchan, TLS" ;; bridge) echo "Bridge, TLS" ;; *) echo "Bridge, plain" ;; esac; }

rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# other_ticks PID...: CPU ticks (user + system, and reaped children's) of every user-space process
# but these, this script and its children: what else ran on the machine meanwhile.
other_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v skip=" $* $$ " '
        { pid = $1; sub(/.*\) /, ""); if (int($7 / 2097152) % 2) next; if (index(skip, " " pid " ")) next; t += $12 + $13 + $14 + $15 }
        END { print t + 0 }'
}
# other_pct TICKS0 SECONDS PID...: other load since TICKS0, in % of one core.
other_pct() {
    local t0=$1 secs=$2
    shift 2
    awk -v a="$t0" -v b="$(other_ticks "$@")" -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (s > 0 ? 100 * (b - a) / hz / s : 0) }'
}

# ---- 1. idle connections -----------------------------------------------------------

# bench_idle TARGET: a fresh server; RSS before, then IDLE_N subscribers connected over TLS (or
# plain) and subscribed to one channel, held idle; RSS again 2 s after the last one is ready.
bench_idle() {
    local t=$1 key="idle_$1" out="$LOGS/idle-$1.out" pid port i t0 o0
    if [ "$t" = nchan ]; then start_nchan idle; else start_bridge "idle-$t"; fi
    pid=$(server_pid "$t"); port=$(server_port "$t")
    settle "$pid"; sleep 1
    record "${key}_rss_before_kib" "$(rss_kib "$pid" VmRSS)"
    record "${key}_anon_before_kib" "$(rss_kib "$pid" RssAnon)"
    t0=$(date +%s.%N); o0=$(other_ticks "$pid" "$NGINX_PID")
    # shellcheck disable=SC2046
    taskset -c "$CLIENT_CPU" "$FANOUT" --target "$(fanout_target "$t")" --port "$port" $(tls_flags "$t") \
        --subscribers "$IDLE_N" --hold 120 --channel idle-bench --deadline 180 --quiet >"$out" 2>"$LOGS/idle-$t.err" &
    CLIENT_PID=$!
    for i in $(seq 1 $((60 + IDLE_N / 200))); do
        [ -z "$(kv "$out" fanout_subscribers_ready)" ] || break
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.5
    done
    [ -n "$(kv "$out" fanout_subscribers_ready)" ] || problem "idle $t: the subscribers did not come up (see $LOGS/idle-$t.err)"
    sleep 2
    record "${key}_rss_after_kib" "$(rss_kib "$pid" VmRSS)"
    record "${key}_anon_after_kib" "$(rss_kib "$pid" RssAnon)"
    record "${key}_other_cpu_pct" "$(other_pct "$o0" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$pid" "$NGINX_PID" "$CLIENT_PID")"
    kill -TERM "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
    CLIENT_PID=""
    record "${key}_ready" "$(kv "$out" fanout_subscribers_ready)"
    record "${key}_failed" "$(kv "$out" fanout_subscribe_failed)"
    record "${key}_dropped" "$(kv "$out" fanout_subscribers_dropped)"
    record "${key}_connect_s" "$(kv "$out" fanout_subscribe_seconds)"
    log "idle $t: $(r "${key}_ready") up in $(r "${key}_connect_s") s, RSS $(r "${key}_rss_before_kib") → $(r "${key}_rss_after_kib") KiB"
    if [ "$t" = nchan ]; then stop_nchan_now; else stop_bridge_now "idle-$t"; fi
}

# ---- 2. handshakes -------------------------------------------------------------------

# bench_handshake TARGET ROUND: loadgen's closed loop of HS_INFLIGHT full TLS 1.3 handshakes + upgrades.
bench_handshake() {
    local t=$1 key="hs_$1_$2" out="$LOGS/handshake-$1-$2.out" pid port path o0
    pid=$(server_pid "$t"); port=$(server_port "$t")
    path=$BRIDGE_WS_PATH; [ "$t" != nchan ] || path=/sub/handshake-bench
    settle "$pid"
    o0=$(other_ticks "$pid" "$NGINX_PID")
    timeout $((HS_SECS + 40)) taskset -c "$CLIENT_CPU" "$LOADGEN" handshake --tls --port "$port" --path "$path" \
        --inflight "$HS_INFLIGHT" --duration "$HS_SECS" --warmup 1 --watch-pid "$pid" --deadline $((HS_SECS + 30)) --quiet \
        >"$out" 2>"$LOGS/handshake-$t-$2.err" || problem "handshake $t round $2: loadgen exited with an error"
    record "${key}_other_cpu_pct" "$(other_pct "$o0" $((HS_SECS + 1)) "$pid" "$NGINX_PID")"
    local k
    for k in handshakes_per_sec handshake_latency_p50_us handshake_latency_p99_us handshake_failed \
        handshake_server_cpu_pct handshake_loadgen_cpu_pct; do
        record "${key}_$k" "$(kv "$out" "$k")"
    done
    log "handshakes $t round $2: $(r "${key}_handshakes_per_sec")/s, server CPU $(r "${key}_handshake_server_cpu_pct")%," \
        "client CPU $(r "${key}_handshake_loadgen_cpu_pct")%, other load $(r "${key}_other_cpu_pct")%"
}

# ---- 3 and 4. fan-out ------------------------------------------------------------------

# bench_fanout TARGET RATE: one fanout run (TARGET bridge and nchan over TLS, plain: Bridge's plain port).
bench_fanout() {
    local t=$1 rate=$2 key="fan_$1_$2" out="$LOGS/fanout-$1-$2.out" pid port deadline rc=0
    pid=$(server_pid "$t"); port=$(server_port "$t")
    settle "$pid"
    deadline=$(awk -v s="$SUBS" -v d="$DURATION" -v w="$WARMUP" -v r="$DRAIN" 'BEGIN { printf "%d", 30 + s / 1000 + d + w + r }')
    # shellcheck disable=SC2046
    timeout $((deadline + 15)) taskset -c "$CLIENT_CPU" "$FANOUT" --target "$(fanout_target "$t")" --port "$port" $(tls_flags "$t") \
        --subscribers "$SUBS" --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN" --size "$SIZE" \
        --publishers "$PUBLISHERS" --channel "tls-$t-$rate" --server-pid "$pid" --deadline "$deadline" --quiet \
        >"$out" 2>"$LOGS/fanout-$t-$rate.err" || rc=$?
    kill -0 "$pid" 2>/dev/null || { tail -20 "$LOGS/fanout-$t-$rate.err" >&2; fail "$t died during the $rate msg/s step"; }
    local k
    for k in subscribers_ready deliveries_per_sec deliveries_expected delivery_ratio latency_p50_us latency_p99_us \
        server_cpu_pct server_cpu_us_per_delivery server_rss_max_kib client_cpu_pct other_processes_cpu_pct \
        published scheduled tls_records_per_delivery tls_bytes_per_record subscribers_dropped; do
        record "${key}_$k" "$(kv "$out" "fanout_$k")"
    done
    record "${key}_exit" "$rc"
    log "fanout $t $rate msg/s: $(r "${key}_deliveries_per_sec") deliveries/s ($(r "${key}_delivery_ratio")), server CPU" \
        "$(r "${key}_server_cpu_pct")%, $(r "${key}_server_cpu_us_per_delivery") µs/delivery, records/delivery" \
        "$(r "${key}_tls_records_per_delivery"), client CPU $(r "${key}_client_cpu_pct")%, other load $(r "${key}_other_processes_cpu_pct")% (exit $rc)"
}

# ---- run ---------------------------------------------------------------------------

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)

for t in bridge nchan plain; do bench_idle "$t"; done
note_command "taskset -c $CLIENT_CPU fanout --target {bridge,nchan} --port PORT [--tls --ca ca.pem] --subscribers $IDLE_N --hold 120 --channel idle-bench"

start_bridge handshake
start_nchan handshake
for round in $(seq 1 "$HS_ROUNDS"); do
    order="bridge nchan"; [ $((round % 2)) = 1 ] || order="nchan bridge"
    for t in $order; do bench_handshake "$t" "$round"; done
done
stop_bridge_now handshake
stop_nchan_now
note_command "taskset -c $CLIENT_CPU loadgen handshake --tls --port PORT --path {'$BRIDGE_WS_PATH',/sub/handshake-bench} --inflight $HS_INFLIGHT --duration $HS_SECS --warmup 1 --watch-pid PID"

start_bridge fanout
start_nchan fanout
step=0
for rate in $RATES; do
    order="bridge nchan plain"; [ $((step % 2)) = 0 ] || order="plain nchan bridge"
    for t in $order; do bench_fanout "$t" "$rate"; done
    step=$((step + 1))
done
stop_bridge_now fanout
stop_nchan_now
note_command "taskset -c $CLIENT_CPU fanout --target {bridge,nchan} --port PORT [--tls --ca ca.pem] --subscribers $SUBS --rate R --duration $DURATION --warmup $WARMUP --drain $DRAIN --size $SIZE --publishers $PUBLISHERS --channel tls-T-R --server-pid PID"
ELAPSED=$(($(date +%s) - T0))

# ---- report --------------------------------------------------------------------------

fmt() { printf '%s' "${1:-?}" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9.]\)/\1,\2\3/' -e 'ta'; }
ms() { [ -n "$1" ] || { printf '?'; return; }; awk -v u="$1" 'BEGIN { m = u / 1000; if (m < 10) printf "%.2f ms", m; else printf "%.0f ms", m }'; }
calc() { awk "BEGIN { $1 }" 2>/dev/null || printf '?'; } # calc 'printf ...': arithmetic on recorded values
noisy() { awk -v o="${1:-0}" -v n="$NOISY_PCT" 'BEGIN { if (o + 0 >= n) printf " (noisy)" }'; }
kib_per_conn() { # kib_per_conn KEY FIELD: (after - before) / connections up, in KiB
    calc "a = $(r "$1_$2_after_kib") + 0; b = $(r "$1_$2_before_kib") + 0; n = $(r "$1_ready") + 0; if (n) printf \"%.2f\", (a - b) / n; else printf \"?\""
}
hs_per_core() { # handshakes per second of server CPU, over a run
    calc "c = $(r "$1_handshake_server_cpu_pct") + 0; if (c) printf \"%.0f\", $(r "$1_handshakes_per_sec") * 100 / c; else printf \"?\""
}
hs_mean() { # hs_mean TARGET FIELD: the mean over the rounds
    local n=0 sum=0 v i
    for i in $(seq 1 "$HS_ROUNDS"); do
        v=$([ "$2" = per_core ] && hs_per_core "hs_$1_$i" || r "hs_$1_${i}_$2")
        case $v in ''|'?') continue ;; esac
        sum=$(calc "print $sum + $v"); n=$((n + 1))
    done
    [ "$n" -gt 0 ] && calc "printf \"%.0f\", $sum / $n" || printf '?'
}
ratio() { calc "a = ${1:-0} + 0; b = ${2:-0} + 0; if (b) printf \"%.2f\", a / b; else printf \"?\""; }
goal() { # goal RATIO OP LIMIT: met / not met
    if [ "$1" = "?" ]; then printf 'not measured'; return; fi
    calc "if ($1 $2 $3) printf \"**met**\"; else printf \"**not met**\""
}
sustained() {
    calc "a = $(r "$1_delivery_ratio") + 0; p = $(r "$1_latency_p99_us") + 0; printf \"%s\", ((a >= 0.999 && p < $P99_LIMIT_US) ? \"yes\" : \"no\")"
}

tls_report() {
    local t k rate top
    echo "## TLS: Bridge vs nginx + nchan, each terminating TLS ($STARTED)"
    echo
    echo "Both servers on one core (CPU $SERVER_CPU), the client on CPU $CLIENT_CPU, loopback only. Both serve the same throwaway"
    echo "ECDSA P-256 certificate (signed by a throwaway CA, made with the openssl command), TLS 1.2/1.3; the clients"
    echo "(OpenSSL $(openssl version | awk '{print $2}')) negotiate TLS 1.3 with OpenSSL's defaults (X25519, TLS_AES_256_GCM_SHA384) and verify the chain."
    echo
    echo "### 1. Memory per idle wss connection"
    echo
    echo "$(fmt "$IDLE_N") subscribers of one channel, connected and held idle; a fresh server for each row. RSS is VmRSS"
    echo "of the server process (nginx: its worker) before the first connection and 2 s after the last is ready."
    echo
    echo "| server | connections up | RSS before | RSS after | **RSS per connection** | of it anonymous | connect time | other load |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in bridge nchan plain; do
        k="idle_$t"
        echo "| $(label $t) | $(fmt "$(r ${k}_ready)") | $(fmt "$(r ${k}_rss_before_kib)") KiB | $(fmt "$(r ${k}_rss_after_kib)") KiB | **$(kib_per_conn $k rss) KiB** | $(kib_per_conn $k anon) KiB | $(r ${k}_connect_s) s | $(r ${k}_other_cpu_pct)%$(noisy "$(r ${k}_other_cpu_pct)") |"
    done
    local mem_ratio
    mem_ratio=$(ratio "$(kib_per_conn idle_bridge rss)" "$(kib_per_conn idle_nchan rss)")
    echo
    echo "Bridge ÷ nginx+nchan, RSS per TLS connection: **$mem_ratio** (goal ≤ 0.5: $(goal "$mem_ratio" "<=" 0.5))."
    echo
    echo "### 2. Full TLS 1.3 handshakes + WebSocket upgrades"
    echo
    echo "A closed loop of $HS_INFLIGHT clients, each: TCP connect, a full TLS 1.3 handshake (no session offered, so no"
    echo "resumption), the WebSocket upgrade (Bridge: \`$BRIDGE_WS_PATH\`, nchan: \`/sub/handshake-bench\`), the 101"
    echo "checked, then close (RST, no close_notify). ${HS_SECS} s measured after 1 s of warm-up, $HS_ROUNDS round(s), alternating."
    echo "Per server core = handshakes ÷ server CPU seconds: the rate one fully busy core would reach, which is the"
    echo "figure to compare when the client's core (which verifies an ECDSA signature per handshake) is the limit."
    echo
    echo "| server | round | handshakes/s | server CPU | **per server core** | client CPU | p50 | p99 | failed | other load |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local i
    for t in bridge nchan; do
        for i in $(seq 1 "$HS_ROUNDS"); do
            k="hs_${t}_$i"
            echo "| $(label $t) | $i | $(fmt "$(r ${k}_handshakes_per_sec)") | $(r ${k}_handshake_server_cpu_pct)% | **$(fmt "$(hs_per_core $k)")/s** | $(r ${k}_handshake_loadgen_cpu_pct)% | $(ms "$(r ${k}_handshake_latency_p50_us)") | $(ms "$(r ${k}_handshake_latency_p99_us)") | $(r ${k}_handshake_failed) | $(r ${k}_other_cpu_pct)%$(noisy "$(r ${k}_other_cpu_pct)") |"
        done
    done
    local hs_ratio
    hs_ratio=$(ratio "$(hs_mean bridge per_core)" "$(hs_mean nchan per_core)")
    echo
    echo "Bridge ÷ nginx+nchan, handshakes per server core (mean of the rounds): **$hs_ratio** (goal ≥ 1: $(goal "$hs_ratio" ">=" 1));"
    echo "handshakes/s as measured: $(ratio "$(hs_mean bridge handshakes_per_sec)" "$(hs_mean nchan handshakes_per_sec)")."
    echo
    echo "### 3. Fan-out over wss, $(fmt "$SUBS") subscribers"
    echo
    echo "One channel, $(fmt "$SUBS") wss subscribers, $SIZE B messages published over https keep-alive ($PUBLISHERS connections) at a steady"
    echo "open-loop rate for ${DURATION} s after ${WARMUP} s of warm-up, as in bench/fanout.sh. Records/delivery: TLS application-data"
    echo "records the subscribers received ÷ messages they received (below 1: the server put several messages in one record)."
    echo
    echo "| server | publish rate | published | deliveries/s | delivered | p50 | p99 | server CPU | CPU µs/delivery | records/delivery | bytes/record | client CPU | other load | sustained |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for rate in $RATES; do
        for t in bridge nchan plain; do
            k="fan_${t}_$rate"
            local sent delivered
            sent=$(calc "p = $(r ${k}_published) + 0; s = $(r ${k}_scheduled) + 0; if (s) printf \"%.0f %%\", 100 * p / s; else printf \"?\"")
            delivered=$(calc "printf \"%.2f %%\", 100 * ($(r ${k}_delivery_ratio) + 0)")
            echo "| $(label $t) | $rate msg/s → $(fmt $((SUBS * rate)))/s | $sent | **$(fmt "$(r ${k}_deliveries_per_sec)")** | $delivered | $(ms "$(r ${k}_latency_p50_us)") | $(ms "$(r ${k}_latency_p99_us)") | $(r ${k}_server_cpu_pct)% | $(r ${k}_server_cpu_us_per_delivery) | $(r ${k}_tls_records_per_delivery) | $(r ${k}_tls_bytes_per_record) | $(r ${k}_client_cpu_pct)% | $(r ${k}_other_processes_cpu_pct)%$(noisy "$(r ${k}_other_processes_cpu_pct)") | $(sustained $k) |"
        done
    done
    top=${RATES##* }
    local fan_ratio
    fan_ratio=$(ratio "$(r fan_bridge_${top}_deliveries_per_sec)" "$(r fan_nchan_${top}_deliveries_per_sec)")
    echo
    printf 'Bridge ÷ nginx+nchan over TLS, deliveries/s:'
    for rate in $RATES; do printf ' %s msg/s: %s;' "$rate" "$(ratio "$(r fan_bridge_${rate}_deliveries_per_sec)" "$(r fan_nchan_${rate}_deliveries_per_sec)")"; done
    echo " at the highest rate, the overload step: **$fan_ratio** (goal ≥ 1.5: $(goal "$fan_ratio" ">=" 1.5))."
    echo
    echo "### 4. What TLS costs Bridge"
    echo
    echo "The same steps on Bridge's plain port and on its TLS port, same server process."
    echo
    echo "| publish rate | deliveries/s plain → TLS | CPU µs/delivery plain → TLS | TLS extra per delivery | records/delivery | bytes/record |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
    for rate in $RATES; do
        local p="fan_plain_$rate" b="fan_bridge_$rate"
        echo "| $rate msg/s | $(fmt "$(r ${p}_deliveries_per_sec)") → $(fmt "$(r ${b}_deliveries_per_sec)") | $(r ${p}_server_cpu_us_per_delivery) → $(r ${b}_server_cpu_us_per_delivery) | $(calc "a = $(r ${p}_server_cpu_us_per_delivery) + 0; b = $(r ${b}_server_cpu_us_per_delivery) + 0; if (a) printf \"%+.2f µs (%+.0f %%)\", b - a, 100 * (b - a) / a; else printf \"?\"") | $(r ${b}_tls_records_per_delivery) | $(r ${b}_tls_bytes_per_record) |"
    done
    echo
    echo "Coalescing: a record carries what one loop turn queued for the connection, so records/delivery below 1 means"
    echo "several messages shared one record (and one SSL_write); at 1.00 every message went out alone."
    echo
    report_problems
    echo "Other load: CPU used by every other process on the machine during the run (kernel threads left out), in % of"
    echo "one core; (noisy) marks ≥ $NOISY_PCT %, not a clean measurement. Load average before the run: $LOAD_BEFORE."
    echo
    echo "Machine: $(machine); $ELAPSED s in all."
    echo "Servers pinned to CPU $SERVER_CPU, the client to CPU $CLIENT_CPU (taskset); open-file limit $HARD."
    echo "Bridge: \`$(basename "$BRIDGE") serve ${BRIDGE_FLAGS[*]}\`" | sed "s#$WORK/##g"
    echo "nginx+nchan: $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(dpkg-query -W -f='libnginx-mod-nchan ${Version}' libnginx-mod-nchan 2>/dev/null || echo nchan), one worker process (CPU and RSS are the worker's), config bench/nginx-nchan-tls.conf."
    if [ "$QUICK" = 1 ]; then echo "(--quick run: shortened, not for publishing)"; fi
    echo
    report_commands "PORT: the server's TLS port, or Bridge's plain one for the plain rows; PID: the server process"
}

tls_report | tee "$WORK/tls-report.md"
log "report: $WORK/tls-report.md, raw numbers: $RESULTS, logs: $LOGS/"
[ ${#PROBLEMS[@]} = 0 ]
