#!/usr/bin/env bash
# A/B comparison of two revisions on the fan-out (Bridge only) and Pusher benchmarks, in one run:
# both are built with `swift build -c release` in their own worktree, then measured in the order
# A B B A, so that drift of the machine falls on both alike. Prints a Markdown table of the
# figures the redesigns must keep (server CPU per delivery and per publish, latency) with each
# run's value, and leaves every report in .build-bench/ab/.
#
# Usage: bench/ab.sh [--quick] [--no-fanout] REV_A [REV_B]   (REV_B defaults to HEAD)
#   --no-fanout  the Pusher benchmarks only (about 10 minutes instead of 25)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/.build-bench"
AB="$WORK/ab"
QUICK=()
FANOUT=1
while [ "${1:-}" = --quick ] || [ "${1:-}" = --no-fanout ]; do
    if [ "$1" = --quick ]; then QUICK=(--quick); else FANOUT=0; fi
    shift
done
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
REV_A=$(git -C "$ROOT" rev-parse --short "$1")
REV_B=$(git -C "$ROOT" rev-parse --short "${2:-HEAD}")
TAG=ab
source "$ROOT/bench/lib.sh"
mkdir -p "$AB"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# binary REV: builds REV in its own worktree (once) and prints the path of its release binary.
binary() {
    local tree="$AB/tree-$1"
    [ -d "$tree" ] || git -C "$ROOT" worktree add --detach -q "$tree" "$1"
    log "building $1 (release)"
    (cd "$tree" && swift build -c release >"$AB/build-$1.log" 2>&1) || fail "build of $1 failed: $AB/build-$1.log"
    printf '%s/.build/release/bridge' "$tree"
}

BIN_A=$(binary "$REV_A")
BIN_B=$(binary "$REV_B")

# measure LABEL BINARY: one run of each benchmark; keeps its results and report as LABEL-*.
# A benchmark that reports a problem (a noisy machine, a lost delivery) exits 1: its report says
# which, and the A/B goes on; the report lists every run that did.
measure() {
    log "run $1"
    if [ "$FANOUT" = 1 ]; then
        "$ROOT/bench/fanout.sh" "${QUICK[@]}" --targets bridge --bridge "$2" >"$AB/$1-fanout.md" || FLAGGED+=("$1-fanout.md")
        cp "$WORK/fanout-results.txt" "$AB/$1-fanout.txt"
    fi
    "$ROOT/bench/pusher_bench.sh" "${QUICK[@]}" --bridge "$2" >"$AB/$1-pusher.md" || FLAGGED+=("$1-pusher.md")
    cp "$WORK/pusher-results.txt" "$AB/$1-pusher.txt"
}

FLAGGED=()

measure A1 "$BIN_A"
measure B1 "$BIN_B"
measure B2 "$BIN_B"
measure A2 "$BIN_A"

# row NAME FILE KEY: the figure from each run, A1 A2 | B1 B2.
row() {
    printf '| %s | %s | %s | %s | %s |\n' "$1" \
        "$(kv "$AB/A1-$2.txt" "$3")" "$(kv "$AB/A2-$2.txt" "$3")" \
        "$(kv "$AB/B1-$2.txt" "$3")" "$(kv "$AB/B2-$2.txt" "$3")"
}

{
    echo "## A/B: $REV_A (A) against $REV_B (B), $(date -u +%Y-%m-%d)"
    echo
    echo "Command: \`bench/ab.sh ${QUICK[*]} $([ "$FANOUT" = 1 ] || echo --no-fanout) $REV_A $REV_B\`; runs in the order A1 B1 B2 A2 on one machine: $(machine)."
    echo
    echo "| figure | A1 | A2 | B1 | B2 |"
    echo "| --- | --- | --- | --- | --- |"
    [ "$FANOUT" = 1 ] || : >"$AB/A1-fanout.txt"
    for key in $(grep -o '^bridge_[0-9]*_[0-9]*_server_cpu_us_per_delivery' "$AB/A1-fanout.txt" | sort -u -t_ -k2,2n -k3,3n); do
        step=${key%_server_cpu_us_per_delivery}
        row "fan-out ${step#bridge_}: server µs per delivery" fanout "$key"
        row "fan-out ${step#bridge_}: latency p99 µs" fanout "${step}_latency_p99_us"
    done
    for key in $(grep -o '^api_s[01]_c[0-9]*_d[0-9]*_api_requests_per_sec' "$AB/A1-pusher.txt" | sort -u); do
        run=${key%_requests_per_sec}
        row "publish API ${run#api_}: requests/s" pusher "$key"
        row "publish API ${run#api_}: server CPU %" pusher "${run}_server_cpu_pct"
    done
    row "many channels, closed loop: publishes/s" pusher channels_closed_accepted_per_sec
    row "many channels, closed loop: server CPU %" pusher channels_closed_server_cpu_pct
    row "presence churn: joins + leaves/s" pusher presence_joins_leaves_per_sec
    row "presence churn: server CPU %" pusher presence_server_cpu_pct
    echo
    if [ ${#FLAGGED[@]} -gt 0 ]; then
        echo "Runs whose benchmark reported a problem (see its report in .build-bench/ab/): ${FLAGGED[*]}."
    else
        echo "No run reported a problem."
    fi
} | tee "$AB/report.md"
