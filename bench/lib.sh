# Helpers shared by the bench scripts; sourced after each script sets ROOT, TAG (the log prefix)
# and RESULTS (its key=value results file).

# parse_options "$@": the options every single-purpose bench script takes: --quick, --bridge PATH
# and -h (prints the script's header comment). Sets QUICK and BRIDGE.
parse_options() {
    QUICK=0
    BRIDGE=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --quick) QUICK=1 ;;
            --bridge) [ $# -ge 2 ] || usage_error "--bridge needs a path"; BRIDGE="$2"; shift ;;
            -h|--help) awk 'NR > 1 && /^# shellcheck/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
            *) usage_error "unknown argument $1" ;;
        esac
        shift
    done
}
usage_error() { printf 'bench/%s: %s\n' "$(basename "$0")" "$*" >&2; exit 2; }

log() { printf '[%s] %s\n' "$TAG" "$*" >&2; }
fail() { printf 'bench/%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
record() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
# kv FILE KEY: the last value recorded for KEY in FILE (empty when none).
kv() { grep -a "^$2=" "$1" 2>/dev/null | tail -1 | cut -d= -f2- || true; }
r() { kv "$RESULTS" "$1"; }
note_command() { COMMANDS+=("$*"); }
problem() { PROBLEMS+=("$*"); log "PROBLEM: $*"; }

# The closing parts every report has: the problems seen, the machine, the commands run.
report_problems() {
    [ ${#PROBLEMS[@]} -gt 0 ] || return 0
    echo "### Problems seen"
    echo
    for p in "${PROBLEMS[@]}"; do echo "- $p"; done
    echo
}
machine() {
    echo "$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), load average before the run $LOAD_BEFORE"
}
# report_commands WHAT: the commands noted with note_command, under "Commands (WHAT):".
report_commands() {
    echo "Commands ($1):"
    echo
    echo '```'
    for cmd in "${COMMANDS[@]}"; do echo "$cmd"; done
    echo '```'
    echo
}

# start_server NAME: starts bridge serve "${SERVER_FLAGS[@]}" pinned to SERVER_CPU, with a fresh
# DATA dir and its log in LOGS/server-NAME.log; sets SERVER_PID and PORT.
start_server() {
    local logf="$LOGS/server-$1.log" i
    rm -rf "$DATA"
    taskset -c "$SERVER_CPU" "$BRIDGE" serve "${SERVER_FLAGS[@]}" 2>"$logf" >/dev/null &
    SERVER_PID=$!
    PORT=""
    for i in $(seq 1 100); do
        PORT=$(grep -a -o 'listening on http://[^ ]*' "$logf" 2>/dev/null | head -1 | sed -E 's#.*:([0-9]+)/?$#\1#' || true)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$logf" >&2; fail "bridge exited at start"; }
        sleep 0.1
    done
    [ -n "$PORT" ] || { cat "$logf" >&2; fail "bridge printed no 'listening on' line within 10 s"; }
    log "bridge ($1) pid $SERVER_PID on port $PORT"
}

# stop_bridge PID LOG WHAT REPORT: SIGTERM (once: a second one makes bridge exit at once, without
# draining), SIGKILL after 8 s. Calls REPORT (a function taking one
# message) when the process had to be killed, exited with another status than 0, or logged a crash.
stop_bridge() {
    local pid=$1 logf=$2 what=$3 report=$4 i rc=0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 80); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        "$report" "$what did not exit within 8 s of SIGTERM (killed)"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    [ "$rc" = 0 ] || "$report" "$what exited with status $rc after SIGTERM; see $logf"
    if grep -aqiE 'fatal|panic|crash' "$logf"; then
        "$report" "$what: its log mentions a crash: $(grep -aiE 'fatal|panic|crash' "$logf" | head -1)"
    fi
}

# build_bridge LOGDIR: unless BRIDGE names a binary already, builds one in release mode and sets
# BRIDGE to it; fails unless BRIDGE is executable afterwards.
build_bridge() {
    local logf="$1/swift-build.log"
    if [ -z "$BRIDGE" ]; then
        log "building bridge (swift build -c release)"
        (cd "$ROOT" && timeout 1800 swift build -c release -j 2 >"$logf" 2>&1) ||
            { tail -30 "$logf" >&2; fail "swift build -c release failed (log: $logf)"; }
        BRIDGE="$(cd "$ROOT" && swift build -c release --show-bin-path)/bridge"
    fi
    [ -x "$BRIDGE" ] || fail "no bridge binary at $BRIDGE"
}

# build_pusher_bench: builds bench/pusher_bench.c (the Pusher-protocol load generator that
# pusher_bench.sh and cluster.sh drive) into $WORK/pusher_bench and sets PUSHER_BENCH to it.
build_pusher_bench() {
    PUSHER_BENCH="$WORK/pusher_bench"
    log "building the load generator (pusher_bench)"
    timeout 120 gcc -O2 -Wall -Wextra -o "$PUSHER_BENCH" "$ROOT/bench/pusher_bench.c" -lcrypto ||
        fail "pusher_bench did not build (it needs the OpenSSL headers: package libssl-dev)"
}

# stop_pid PID NAME: SIGTERM, SIGKILL after 8 s.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$2 did not exit within 8 s of SIGTERM: killed"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: the process's utime + stime in clock ticks.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# settle PID: waits (at most 5 s) until the server is idle again, so that work left
# over from an overloaded step does not land in the next one.
settle() {
    local pid=$1 i a b
    for i in $(seq 1 10); do
        a=$(cpu_ticks "$pid" 2>/dev/null) || return 0
        sleep 0.5
        b=$(cpu_ticks "$pid" 2>/dev/null) || return 0
        [ $((b - a)) -le 5 ] && return 0 # <= 10 % of a core at 100 Hz
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 10000))
}

# nchan_setup: sets NGINX and NCHAN_MODULE; when they are missing and the script runs as root,
# installs Debian's nginx-light and libnginx-mod-nchan with apt-get first. False if still missing.
NGINX=""; NCHAN_MODULE=""
find_nchan() {
    NGINX=$(command -v nginx || true)
    [ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
    NCHAN_MODULE=$(ls /usr/lib/nginx/modules/ngx_nchan_module.so 2>/dev/null || true)
    [ -n "$NGINX" ] && [ -n "$NCHAN_MODULE" ]
}
nchan_setup() {
    find_nchan && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing nginx-light and libnginx-mod-nchan"
        export DEBIAN_FRONTEND=noninteractive
        timeout 300 apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null 2>&1 ||
            { timeout 300 apt-get update -qq >/dev/null 2>&1 &&
              timeout 300 apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null 2>&1; } || true
    fi
    find_nchan
}

# start_nginx NAME TEMPLATE PREFIX [SED-EXPRESSION...]: nginx + nchan from the config TEMPLATE,
# rendered into PREFIX/nginx.conf (@PREFIX@, @PORT@ with a free port, @NCHAN_MODULE@, then the
# extra sed expressions), pinned to SERVER_CPU, its output in LOGS/nginx-stdout-NAME.log. Sets
# NGINX_PID (the master, in the foreground), NGINX_WORKER (the one worker) and NGINX_PORT.
start_nginx() {
    local name=$1 template=$2 prefix=$3 i try
    shift 3
    local extra=() e
    for e in "$@"; do extra+=(-e "$e"); done
    for try in 1 2 3; do
        rm -rf "$prefix"
        mkdir -p "$prefix"
        NGINX_PORT=$(free_port)
        sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@NCHAN_MODULE@#$NCHAN_MODULE#g" \
            "${extra[@]}" "$template" >"$prefix/nginx.conf"
        # daemon off: the master started here stays in the foreground; its one worker serves.
        taskset -c "$SERVER_CPU" "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
            >"$LOGS/nginx-stdout-$name.log" 2>&1 &
        NGINX_PID=$!
        for i in $(seq 1 50); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1 || true)
            if [ -n "$NGINX_WORKER" ] && (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null; then
                log "nginx+nchan master pid $NGINX_PID, worker pid $NGINX_WORKER, on port $NGINX_PORT"
                return 0
            fi
            sleep 0.1
        done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
        log "nginx did not start (try $try): $(tail -3 "$prefix/error.log" "$LOGS/nginx-stdout-$name.log" 2>/dev/null | tr '\n' ' ')"
    done
    fail "nginx+nchan did not start (logs: $prefix/error.log)"
}
