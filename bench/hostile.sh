#!/usr/bin/env bash
# shellcheck disable=SC2086  # unquoted $vars are result keys built from plain numbers and words
# Hostile soak: one Bridge server (one core) under a mix of attacks for --minutes while a
# legitimate fan-out runs beside it, and the same fan-out without the attacks (the
# baseline) for comparison. Prints a Markdown report for BENCHMARKS.md; exits 1 unless
# every legitimate delivery arrived (ratio 1.0) and the server was still running at the end.
#
# The fan-out: 1,000 WebSocket subscribers of the public channel broadcast-bench of app 1,
# events published through the signed HTTP API at 20/s (pusher_bench broadcast); latency is
# from each event's scheduled send time to its arrival. The attacks (bench/hostile.c; app 2
# is the attackers' own tenant): non-reading subscribers of the same channel flooding pings,
# ping floods, subscribe/unsubscribe churn, malformed frames, slowloris request heads,
# oversized bodies, bad signatures and absurd auth_timestamp values, each with a fixed number
# of connections and a fixed rate. The server's VmRSS and VmHWM are sampled every second.
# If the server dies, each attack is then run alone against a fresh server for 20 s to name
# the one(s) that kill it, and its crash report is quoted.
#
# Usage: bench/hostile.sh [--minutes N] [--baseline-minutes N] [--bridge PATH]
#                         [--only LIST] [--skip LIST] [--scale F] [--no-attribution]
#   --minutes N           length of the attacked fan-out (10; decimals allowed: 0.5)
#   --baseline-minutes N  length of the fan-out alone (2; 0: no baseline)
#   --bridge PATH         use this bridge binary instead of building one with `swift build -c release`
#   --only LIST, --skip LIST  attacks to run (comma-separated; default all:
#                         nonreader,pingflood,churn,malformed,slowloris,bigbody,badsig,badtime)
#   --scale F             multiply every attack's connections and rate by F (0.1 to 5; default 1)
#   --no-attribution      if the server dies, do not replay the attacks one by one
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/.build-bench"
TAG=hostile
source "$ROOT/bench/lib.sh"

MINUTES=10
BASELINE_MINUTES=2
BRIDGE=""
ONLY=""
SKIP=""
SCALE=1
ATTRIBUTION=1
is_number() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) [ $# -ge 2 ] && is_number "$2" || usage_error "--minutes needs a number"; MINUTES=$2; shift ;;
        --baseline-minutes) [ $# -ge 2 ] && is_number "$2" || usage_error "--baseline-minutes needs a number"; BASELINE_MINUTES=$2; shift ;;
        --bridge) [ $# -ge 2 ] || usage_error "--bridge needs a path"; BRIDGE="$2"; shift ;;
        --only) [ $# -ge 2 ] || usage_error "--only needs a list"; ONLY="$2"; shift ;;
        --skip) [ $# -ge 2 ] || usage_error "--skip needs a list"; SKIP="$2"; shift ;;
        --scale) [ $# -ge 2 ] && is_number "$2" || usage_error "--scale needs a number"; SCALE=$2; shift ;;
        --no-attribution) ATTRIBUTION=0 ;;
        -h|--help) awk 'NR > 1 && /^# shellcheck/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) usage_error "unknown argument $1" ;;
    esac
    shift
done
secs_of() { awk -v m="$1" 'BEGIN { printf "%d", m * 60 + 0.5 }'; }
ATTACK_SECS=$(secs_of "$MINUTES")
BASELINE_SECS=$(secs_of "$BASELINE_MINUTES")
[ "$ATTACK_SECS" -ge 20 ] && [ "$ATTACK_SECS" -le 7200 ] || usage_error "--minutes must be between 0.34 and 120"
[ "$BASELINE_SECS" = 0 ] || [ "$BASELINE_SECS" -ge 20 ] && [ "$BASELINE_SECS" -le 7200 ] || usage_error "--baseline-minutes must be 0 or between 0.34 and 120"
awk -v s="$SCALE" 'BEGIN { exit !(s >= 0.1 && s <= 5) }' || usage_error "--scale must be between 0.1 and 5"

SUBSCRIBERS=1000
RATE=20               # legitimate events per second
PAYLOAD=64            # padding bytes in each event's data
WARMUP=2              # seconds of publishing before the measured window
DRAIN=10              # most seconds to wait for the last deliveries
STARTUP=5             # seconds of attack before the fan-out's subscribers connect
ATTRIBUTION_SECS=20   # each attack alone, after a death
SERVER_CPU=0
CLIENT_CPU=1
# The attackers hold about 400 connections at --scale 1 (bench/hostile.c); the fan-out 1,001.
MAX_CONNECTIONS=5000

LOGS="$WORK/logs/hostile"
rm -rf "$LOGS" # nothing of an earlier run may be read as this one's
mkdir -p "$LOGS"
RESULTS="$WORK/hostile-results.txt"
REPORT="$WORK/hostile-report.md"
CONFIG="$WORK/hostile-config.json"
DATA="$WORK/hostile-data"
: >"$RESULTS"
COMMANDS=()
PROBLEMS=()
SERVER_PID=""
BG_PIDS=()

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# ---- setup ------------------------------------------------------------------------

HARD=$(ulimit -Hn)
ulimit -n "$HARD"
[ "$HARD" -ge $((MAX_CONNECTIONS + 200)) ] || fail "open-file limit $HARD is too low for --max-connections $MAX_CONNECTIONS"
command -v taskset >/dev/null || fail "taskset is missing (package util-linux)"
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; CLIENT_CPU=0; log "one CPU only: server and clients share it"; fi

build_pusher_bench
HOSTILE="$WORK/hostile"
log "building the attackers (hostile)"
timeout 120 gcc -O2 -Wall -Wextra -o "$HOSTILE" "$ROOT/bench/hostile.c" -lcrypto ||
    fail "hostile did not build (it needs the OpenSSL headers: package libssl-dev)"
build_bridge "$LOGS"

HOSTILE_SELECT=()
[ -z "$ONLY" ] || HOSTILE_SELECT+=(--only "$ONLY")
[ -z "$SKIP" ] || HOSTILE_SELECT+=(--skip "$SKIP")
HOSTILE_SELECT+=(--scale "$SCALE")
# The attacks this run uses, in order (hostile checks the names).
ATTACKS=$("$HOSTILE" --list | while read -r a; do
    if [ -n "$ONLY" ] && ! [[ ",$ONLY," == *",$a,"* ]]; then continue; fi
    if [ -n "$SKIP" ] && [[ ",$SKIP," == *",$a,"* ]]; then continue; fi
    echo "$a"
done | tr '\n' ' ')
for a in ${ONLY//,/ } ${SKIP//,/ }; do
    "$HOSTILE" --list | grep -qx "$a" || usage_error "unknown attack $a (attacks: $("$HOSTILE" --list | tr '\n' ' '))"
done
[ -n "$ATTACKS" ] || usage_error "--only/--skip leave no attack"

cat >"$CONFIG" <<'EOF'
{"apps":[{"id":1,"key":"app-key","secret":"app-secret"},{"id":2,"key":"hostile-key","secret":"hostile-secret"}]}
EOF
SERVER_FLAGS=(--host 127.0.0.1 --port 0 --threads 1 --max-connections $MAX_CONNECTIONS --shutdown-grace 5
    --data-dir "$DATA" --config "$CONFIG")

# q KEY: the recorded value, or ? when there is none.
q() { local v; v=$(r "$1"); printf '%s' "${v:-?}"; }
# exit_status KEY: an exit status, with the signal's name when a signal ended the process.
exit_status() {
    local v
    v=$(r "$1")
    if [ -n "$v" ] && [ "$v" -gt 128 ] 2>/dev/null; then printf '%s: SIG%s' "$v" "$(kill -l $((v - 128)) 2>/dev/null || echo '?')"
    else printf '%s' "${v:-?}"; fi
}
# ---- server control -----------------------------------------------------------------

# server_running: the server process exists and is not a zombie (dead, not yet reaped).
server_running() {
    [ -n "$SERVER_PID" ] && [ -r "/proc/$SERVER_PID/stat" ] || return 1
    local state
    state=$(sed -E 's/.*\) ([A-Z]).*/\1/' "/proc/$SERVER_PID/stat" 2>/dev/null || echo X)
    [ "$state" != Z ] && [ "$state" != X ]
}

# sample_rss FILE PIDS...: every second, "seconds VmRSS VmHWM" (KiB) and the server's CPU time
# (utime + stime, clock ticks) into FILE;
# once the server has died, SIGTERM to PIDS (the load generators) so that the run ends now.
sample_rss() {
    local file=$1 t=0
    shift
    : >"$file"
    while server_running; do
        { awk -v t=$t '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%s %s %s ", t, r, h }' "/proc/$SERVER_PID/status"
          sed -E 's/^.*\) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'; } >>"$file" 2>/dev/null || true
        sleep 1
        t=$((t + 1))
    done
    echo "$t died" >>"$file"
    [ $# = 0 ] || kill -TERM "$@" 2>/dev/null || true
}

# crash_lines LOG: what a Swift crash report says went wrong, and the first frame in our sources.
crash_lines() {
    { grep -a -m1 -E 'Fatal error|Swift runtime failure:' "$1" || true
      grep -a -m1 -E ' at /.*/Sources/' "$1" | sed -E 's/^ *[0-9]+ +(0x[0-9a-f]+ +)?//; s# at /.*/Sources/# at Sources/#' || true; } | sed -E 's/ +/ /g'
}

# finish_server NAME: records the peak RSS; if the server is still running, stops it (a bad
# exit is a problem); if it died, records its status and crash lines. Sets DIED to 0 or 1.
finish_server() {
    local name=$1 rss=$LOGS/rss-$1.txt rc=0
    record "${name}_rss_peak_kib" "$(awk '$2 != "died" && $2 > m { m = $2 } END { print m + 0 }' "$rss")"
    record "${name}_hwm_kib" "$(awk '$2 != "died" && $3 > m { m = $3 } END { print m + 0 }' "$rss")"
    record "${name}_rss_samples" "$(grep -vc died "$rss" || true)"
    record "${name}_server_cpu_pct" "$(awk -v hz="$(getconf CLK_TCK)" '$2 != "died" && NF == 4 { if (!n++) { t0 = $1; c0 = $4 } t1 = $1; c1 = $4 }
        END { if (t1 > t0) printf "%.0f", 100 * (c1 - c0) / hz / (t1 - t0) }' "$rss")"
    if server_running; then
        DIED=0
        record "${name}_rss_end_kib" "$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")"
        stop_bridge "$SERVER_PID" "$LOGS/server-$name.log" "$name: bridge" problem
    else
        DIED=1
        wait "$SERVER_PID" 2>/dev/null || rc=$?
        record "${name}_server_died" 1
        record "${name}_server_exit_status" "$rc"
        record "${name}_server_died_after_s" "$(awk '$2 == "died" { print $1 }' "$rss")"
        record "${name}_crash" "$(crash_lines "$LOGS/server-$name.log" | paste -sd'|' - | sed 's/|/ · /g')"
    fi
    SERVER_PID=""
}

# ---- the legitimate fan-out ----------------------------------------------------------

# run_fanout NAME SECS [ATTACKERS_PID]: pusher_bench broadcast on CLIENT_CPU against the running
# server, in the background (FANOUT_PID); output in $LOGS/NAME-fanout.out. The attackers' CPU is
# measured apart from the other processes' ("other load").
run_fanout() {
    local name=$1 secs=$2 extra=()
    [ $# -lt 3 ] || extra=(--cpu-pid "$3")
    local args=(broadcast --subscribers $SUBSCRIBERS --rate $RATE --duration "$secs" --warmup $WARMUP --drain $DRAIN
        --payload $PAYLOAD --deadline $((secs + 300)))
    timeout $((secs + 330)) taskset -c "$CLIENT_CPU" "$PUSHER_BENCH" "${args[@]}" --port "$PORT" --watch-pid "$SERVER_PID" \
        --cpu-pid "$SERVER_PID" "${extra[@]}" --server-cpu "$SERVER_CPU" --client-cpu "$CLIENT_CPU" >"$LOGS/$name-fanout.out" 2>"$LOGS/$name-fanout.err" &
    FANOUT_PID=$!
    BG_PIDS+=("$FANOUT_PID")
    note_command "taskset -c $CLIENT_CPU pusher_bench ${args[*]} --port PORT --watch-pid SERVER_PID --cpu-pid SERVER_PID${3:+ --cpu-pid HOSTILE_PID}"
}

# fanout_results NAME: the fan-out's numbers under NAME_, and its problems.
fanout_results() {
    local name=$1 out="$LOGS/$1-fanout.out" k v
    for k in broadcast_open_sent broadcast_open_accepted broadcast_open_non200 broadcast_open_skipped \
        broadcast_open_deliveries broadcast_open_publish_seconds broadcast_open_delivery_p50_us broadcast_open_delivery_p99_us \
        broadcast_open_delivery_p999_us broadcast_open_delivery_max_us broadcast_open_http_p99_us broadcast_open_drained \
        broadcast_open_server_cpu_pct broadcast_open_server_core_busy_pct broadcast_open_server_core_steal_pct \
        broadcast_open_loadgen_cpu_pct broadcast_open_other_processes_cpu_pct broadcast_open_pid2_cpu_pct broadcast_open_loadgen_core_steal_pct \
        broadcast_probe_ok broadcast_deliveries_expected broadcast_deliveries_received broadcast_duplicates \
        connections_failed connections_dropped errors bad_channel subscription_errors pusher_errors setup_seconds server_gone; do
        v=$(kv "$out" $k)
        [ -z "$v" ] || record "${name}_${k#broadcast_}" "$v"
    done
    # Expected: every event due in the window (sent or skipped) times every subscriber, so a refused
    # or skipped publish counts as lost, not as "not expected".
    local due got
    local sent skipped
    sent=$(r ${name}_open_sent); skipped=$(r ${name}_open_skipped); got=$(r ${name}_open_deliveries)
    due=$(( ${sent:-0} + ${skipped:-0} ))
    got=${got:-0}
    record "${name}_expected" $((due * SUBSCRIBERS))
    record "${name}_received" "$got"
    # Exactly 1.0 only when every delivery arrived (a rounded 0.9999999 must not print as 1).
    if [ "$due" -gt 0 ] && [ "$got" = $((due * SUBSCRIBERS)) ]; then record "${name}_ratio" 1.0
    else record "${name}_ratio" "$(awk -v g="$got" -v e=$((due * SUBSCRIBERS)) 'BEGIN { if (e == 0) print "0"; else { x = int(g / e * 1e7) / 1e7; printf "%.7f", x } }')"; fi
    [ "$(r ${name}_ratio)" = "1.0" ] || problem "$name: delivery ratio $(r ${name}_ratio) ($got of $((due * SUBSCRIBERS)) deliveries; see $LOGS/$name-fanout.err)"
    [ "$(r ${name}_probe_ok)" = 1 ] || problem "$name: the fan-out's probe event did not reach every subscriber (see $LOGS/$name-fanout.err)"
    for k in open_non200 open_skipped connections_failed connections_dropped errors bad_channel subscription_errors pusher_errors duplicates; do
        v=$(r ${name}_$k)
        [ -z "$v" ] || [ "$v" = 0 ] || problem "$name: fan-out $k=$v (see $LOGS/$name-fanout.err)"
    done
}

# ---- phases -----------------------------------------------------------------------------

baseline() {
    log "baseline: $SUBSCRIBERS subscribers, $RATE events/s for $BASELINE_SECS s, no attack"
    start_server baseline
    run_fanout baseline "$BASELINE_SECS"
    sample_rss "$LOGS/rss-baseline.txt" "$FANOUT_PID" &
    SAMPLER=$!
    wait "$FANOUT_PID" || true
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    finish_server baseline
    fanout_results baseline
    [ "$DIED" = 0 ] || problem "baseline: the server died without any attack (exit status $(exit_status baseline_server_exit_status)): $(r baseline_crash)"
}

attacked() {
    log "attack: $ATTACKS for $ATTACK_SECS s (+ $STARTUP s before the fan-out connects), fan-out beside it"
    start_server attack
    # The attackers get the lowest priority on the CPU they share with the fan-out's client, so
    # the fan-out's latency is the server's, not the load generators' contention.
    nice -n 19 taskset -c "$CLIENT_CPU" "$HOSTILE" --port "$PORT" --duration $((ATTACK_SECS + 400)) --watch-pid "$SERVER_PID" \
        "${HOSTILE_SELECT[@]}" >"$LOGS/attack-hostile.out" 2>"$LOGS/attack-hostile.err" &
    local hostile_pid=$!
    BG_PIDS+=("$hostile_pid")
    note_command "nice -n 19 taskset -c $CLIENT_CPU hostile --port PORT --watch-pid SERVER_PID ${HOSTILE_SELECT[*]} (until the fan-out ends)"
    sample_rss "$LOGS/rss-attack.txt" "$hostile_pid" &
    SAMPLER=$!
    sleep $STARTUP
    if server_running; then
        run_fanout attack "$ATTACK_SECS" "$hostile_pid"
        # The sampler stops the fan-out too if the server dies.
        kill "$SAMPLER" 2>/dev/null || true
        sample_rss "$LOGS/rss-attack.txt" "$hostile_pid" "$FANOUT_PID" &
        SAMPLER=$!
        wait "$FANOUT_PID" || true
    fi
    kill -TERM "$hostile_pid" 2>/dev/null || true
    wait "$hostile_pid" || true
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    grep -a '=' "$LOGS/attack-hostile.out" | sed 's/^/attack_/' >>"$RESULTS" || true
    finish_server attack
    if [ -f "$LOGS/attack-fanout.out" ]; then fanout_results attack
    else problem "attack: the server died during the first $STARTUP s of attack, before the fan-out started"; fi
    if [ "$DIED" = 1 ]; then
        problem "attack: THE SERVER DIED after $(r attack_server_died_after_s) s (exit status $(exit_status attack_server_exit_status)): $(r attack_crash)"
    fi
}

# attribution: each attack alone against a fresh server; those after which it is dead are named.
attribution() {
    local a killers=""
    for a in $ATTACKS; do
        log "attribution: $a alone for $ATTRIBUTION_SECS s"
        start_server "alone-$a"
        "$HOSTILE" --port "$PORT" --duration $ATTRIBUTION_SECS --watch-pid "$SERVER_PID" --only "$a" --scale "$SCALE" \
            >"$LOGS/alone-$a-hostile.out" 2>"$LOGS/alone-$a-hostile.err" || true
        sleep 1
        : >"$LOGS/rss-alone-$a.txt"
        finish_server "alone-$a"
        if [ "$DIED" = 1 ]; then
            killers="$killers $a"
            problem "attribution: \`$a\` alone kills the server (after $(kv "$LOGS/alone-$a-hostile.out" server_gone_after_s) s, exit status $(exit_status alone-${a}_server_exit_status)): $(r alone-${a}_crash)"
        fi
    done
    record attribution_killers "${killers# }"
    note_command "hostile --port PORT --duration $ATTRIBUTION_SECS --watch-pid SERVER_PID --only ATTACK --scale $SCALE (each attack alone, fresh server)"
}

# ---- run ----------------------------------------------------------------------------------

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
note_command "taskset -c $SERVER_CPU bridge serve ${SERVER_FLAGS[*]/#$ROOT\//}"
T0=$(date +%s)
[ "$BASELINE_SECS" = 0 ] || baseline
attacked
ATTACK_DIED=$DIED
if [ "$ATTACK_DIED" = 1 ] && [ "$ATTRIBUTION" = 1 ]; then attribution; fi
T1=$(date +%s)

# ---- report -------------------------------------------------------------------------------------

fmt() { printf '%s' "${1:-?}" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta'; }
us() {
    case "$1" in
        ''|*[!0-9]*) printf '?' ;;
        *) awk -v u="$1" 'BEGIN { if (u < 1000) printf "%d µs", u; else if (u < 10000) printf "%.1f ms", u / 1000; else printf "%.0f ms", u / 1000 }' ;;
    esac
}
mib() { case "$1" in ''|*[!0-9]*) printf '?' ;; *) awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }' ;; esac; }
# hv ATTACK KEY: a counter of the attack run.
hv() { r "attack_hostile_${1}_$2"; }
# answers ATTACK: what the server answered, from the counters: statuses, close codes, pusher errors.
answers() {
    grep -a "^attack_hostile_$1_\(status\|close_code\|pusher_error\)_" "$RESULTS" | sed -E "s/^attack_hostile_$1_//" |
        sed -E 's/^status_([0-9]+)=/HTTP \1 ×/; s/^close_code_([0-9]+)=/close \1 ×/; s/^pusher_error_([0-9]+|null)=/pusher:error \1 ×/' |
        sort | paste -sd, - | sed 's/,/, /g' || true
}
# answers_refused ATTACK: WebSocket upgrades the server refused, by status.
answers_refused() {
    grep -a "^attack_hostile_$1_upgrade_refused_" "$RESULTS" | sed -E "s/^attack_hostile_$1_upgrade_refused_([0-9]+)=/HTTP \1 ×/" |
        paste -sd, - | sed 's/,/, /g' || true
}
fanout_row() { # fanout_row NAME LABEL SECS
    local p=$1
    [ -n "$(r ${p}_expected)" ] || { echo "| $2 | $3 s | did not run (the server died first) | | | | | | | | | |"; return 0; }
    local alive="yes"
    [ "$(r ${p}_server_died)" = 1 ] && alive="**NO: died after $(r ${p}_server_died_after_s) s**"
    echo "| $2 | $3 s | $(fmt "$(r ${p}_open_sent)") | $(fmt "$(r ${p}_received)") / $(fmt "$(r ${p}_expected)") | **$(r ${p}_ratio)** | $(us "$(r ${p}_open_delivery_p50_us)") | **$(us "$(r ${p}_open_delivery_p99_us)")** | $(us "$(r ${p}_open_delivery_p999_us)") / $(us "$(r ${p}_open_delivery_max_us)") | $(mib "$(r ${p}_rss_peak_kib)") ($(mib "$(r ${p}_hwm_kib)")) | $(q ${p}_open_server_cpu_pct)% ($(q ${p}_open_server_core_busy_pct)%) | $(q ${p}_open_other_processes_cpu_pct)% / $(q ${p}_open_server_core_steal_pct)% | $alive |"
}

{
    echo "## Hostile soak ($STARTED)"
    echo
    if [ "$ATTACK_SECS" -lt 600 ]; then echo "**Smoke run: ${MINUTES} min of attack, not the full 10-minute soak.**"; echo; fi
    echo "One server (\`--threads 1\`, CPU $SERVER_CPU). The legitimate side: $(fmt $SUBSCRIBERS) WebSocket subscribers of the public channel \`broadcast-bench\` (app 1); events published through the signed HTTP API at $RATE/s on one keep-alive connection, each carrying its scheduled send time; latency from that time to arrival at each subscriber. Delivery ratio: deliveries received ÷ (events due × subscribers), a refused or skipped publish counting as lost. The attacks ran for $ATTACK_SECS s of fan-out (+ $STARTUP s before its subscribers connected, and during their setup), on CPU $CLIENT_CPU at the lowest priority (nice 19), below the fan-out's client."
    echo
    echo "| run | length | events | deliveries received / expected | ratio | p50 | p99 | p99.9 / max | server peak VmRSS (VmHWM) | server CPU (CPU 0 busy) | other load / steal | server alive at end |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    [ "$BASELINE_SECS" = 0 ] || fanout_row baseline "baseline (no attack)" "$BASELINE_SECS"
    fanout_row attack "under attack" "$ATTACK_SECS"
    echo
    echo "Server VmRSS and VmHWM: sampled every second from /proc/PID/status, from the server's start to its end. Server CPU: the process's user + system time over the measured window (/proc/PID/stat), and how busy CPU $SERVER_CPU was as a whole. Other load: the CPU every other process on the machine used in that window, in % of one core (the attackers not counted: they used $(q attack_open_pid2_cpu_pct)% of CPU $CLIENT_CPU, the fan-out client $(q attack_open_loadgen_cpu_pct)%); steal: CPU $SERVER_CPU's steal time (the hypervisor ran something else). Both explain latency outliers that are not the server's."
    echo
    # Latency is the server's only on a quiet machine: say so when other programs competed.
    for p in baseline attack; do
        o=$(r ${p}_open_other_processes_cpu_pct)
        if [ -n "$o" ] && [ "$o" -ge 20 ]; then
            echo "**Caveat ($p run): other processes used $o % of a core during the window** (CPU $SERVER_CPU was $(q ${p}_open_server_core_busy_pct) % busy while the server itself used $(q ${p}_open_server_cpu_pct) %): its latency figures include waiting for the CPU and are not the server's alone; run again on a quiet machine for a clean comparison. Delivery ratio, RSS and survival are unaffected."
            echo
        fi
    done
    echo "The attacks (\`bench/hostile.c\`; slots = connections at once, a slot reopening 100 ms after its connection ends; rates are operations per second of all slots together, scale $SCALE):"
    echo
    echo "| attack | slots | rate | connections opened | operations | ended by the server | longest held | open at end | what the server answered |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for a in $ATTACKS; do
        held=$(hv $a held_max_ms)
        [ -z "$held" ] || held="$(awk -v m="$held" 'BEGIN { printf "%.1f s", m / 1000 }')"
        ans=$(answers $a)
        if [ -z "$ans" ]; then ans="–"; [ $a != nonreader ] || ans="(it never reads)"; fi
        extra=""
        nc=$(hv $a not_closed_in_10s); [ -z "$nc" ] || extra="; **$nc not closed within 10 s**"
        nc=$(hv $a no_answer_in_10s); [ -z "$nc" ] || extra="$extra; **$nc requests not answered within 10 s**"
        nc=$(hv $a no_upgrade_in_10s); [ -z "$nc" ] || extra="$extra; **$nc upgrades not answered within 10 s**"
        nc=$(answers_refused $a); [ -z "$nc" ] || extra="$extra; upgrades refused: $nc"
        sk=$(hv $a skipped_output_full); [ -z "$sk" ] || extra="$extra; $sk operations skipped (the server stopped reading)"
        echo "| $a | $(hv $a slots) | $(fmt "$(hv $a rate)")/s | $(fmt "$(hv $a connections)") | $(fmt "$(hv $a ops)") | $(fmt "$(hv $a closed_by_server)") | ${held:-–} | $(hv $a open_at_end) | $ans$extra |"
    done
    echo
    echo "Operations: nonreader and pingflood send one WebSocket ping (125 B) or one \`pusher:ping\`, alternating; churn a subscribe + unsubscribe pair; slowloris one byte of a request head that never ends; badsig and badtime one API request (one in flight per connection). malformed and bigbody open one connection per operation for one of these variants (each must be answered or closed within 10 s):"
    echo
    [ -z "$(hv malformed slots)" ] || echo "- malformed: $(hv malformed variants)"
    [ -z "$(hv bigbody slots)" ] || echo "- bigbody (\`POST /apps/1/events\`, 64 KiB of body sent): $(hv bigbody variants)"
    echo
    if [ "$ATTACK_DIED" = 1 ]; then
        echo "**The server died** during the attacked run, after $(r attack_server_died_after_s) s (exit status $(exit_status attack_server_exit_status)). Its crash report: \`$(r attack_crash | sed 's/ · /` · `/g')\`."
        if [ "$ATTRIBUTION" = 1 ]; then
            if [ -n "$(r attribution_killers)" ]; then
                echo "Each attack alone against a fresh server for $ATTRIBUTION_SECS s: **$(r attribution_killers)** killed it."
            else
                echo "Each attack alone against a fresh server for $ATTRIBUTION_SECS s: none killed it on its own (the death needs the mix, or a longer run)."
            fi
        fi
        echo
    fi
    report_problems
    echo "Machine: $(machine); the run took $((T1 - T0)) s."
    echo "Server pinned to CPU $SERVER_CPU (\`--threads 1\`), the fan-out client and the attackers to CPU $CLIENT_CPU (taskset); open-file limit $HARD. $(basename "$BRIDGE") built with \`swift build -c release\`; pusher_bench and hostile with \`gcc -O2 … -lcrypto\`. Server RSS sampled every second from /proc/PID/status."
    echo
    report_commands "bench/hostile.sh --minutes $MINUTES --baseline-minutes $BASELINE_MINUTES runs them; a fresh server for each run"
    echo "<details><summary>Raw numbers (.build-bench/hostile-results.txt)</summary>"
    echo
    echo '```'
    grep -av 'variants=' "$RESULTS"
    echo '```'
    echo
    echo "</details>"
} | tee "$REPORT"
log "report: $REPORT, raw numbers: $RESULTS, logs: $LOGS/"
[ ${#PROBLEMS[@]} = 0 ] || exit 1
