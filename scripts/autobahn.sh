#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client against bridge's WebSocket echo endpoint.
#
#   scripts/autobahn.sh [quick|full] [tls]
#
# Needs .venv/autobahn (scripts/install-deps.sh test) and a built server
# (.build/debug/bridge, or the binary named by BRIDGE_BIN). Writes the reports to
# reports/autobahn/ (index.html for people, index.json for this script) and
# "passed failed" to reports/autobahn.counts. Exits non-zero when any case fails.
#
# "tls" runs the same cases over wss:// against the TLS listener (--tls-port) with a
# throwaway self-signed certificate made by `openssl`; wstest's client (Twisted's
# ClientContextFactory) does not verify certificates. Reports go to reports/autobahn-tls/
# and reports/autobahn-tls.counts.
#
# Two passes: "defaults" runs the server with its default limits (a message of exactly
# --max-message-bytes must be echoed, whatever the outbound bound), leaving out only the
# cases whose messages are larger than that limit, where closing with 1009 is the right
# answer (Tests/Integration test it); "large" runs the cases with larger messages against
# raised limits.
set -euo pipefail

mode="${1:-quick}"
transport="${2:-plain}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bridge="${BRIDGE_BIN:-.build/debug/bridge}"
wstest=.venv/autobahn/bin/wstest
pass="${AUTOBAHN_PASS:-}"
case "$transport" in
plain) reports_name=autobahn ;;
tls) reports_name=autobahn-tls ;;
*)
    echo "usage: $0 [quick|full] [tls]" >&2
    exit 2
    ;;
esac
outdir="$root/reports/$reports_name/$pass"
counts="$outdir/counts"
startup_seconds=30

# permessage-deflate (12.*, 13.*) is never negotiated, by design.
excluded='["12.*", "13.*"]'  # the large pass; the defaults pass adds the oversized cases
# Cases whose messages exceed the default 1 MiB message limit: 4, 8 and 16 MiB in 9.1/9.2,
# 4 MiB in every 9.3/9.4 case.
oversized='"9.1.4", "9.1.5", "9.1.6", "9.2.4", "9.2.5", "9.2.6", "9.3.*", "9.4.*"'
case "$mode" in
quick)
    cases='"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"'
    wstest_timeout=300
    stall_seconds=60
    ;;
full)
    cases='"*"'
    wstest_timeout=1800
    stall_seconds=300
    ;;
*)
    echo "usage: $0 [quick|full] [tls]" >&2
    exit 2
    ;;
esac

say() { printf 'autobahn: %s\n' "$*" >&2; }

# The script runs itself once per pass and adds up their counts.
if [[ -z $pass ]]; then
    rm -rf "$root/reports/$reports_name" "$root/reports/$reports_name.counts"
    total_passed=0 total_failed=0 status=0
    for pass in defaults large; do
        AUTOBAHN_PASS=$pass "$0" "$mode" "$transport" || status=1
        read -r p f <"$root/reports/$reports_name/$pass/counts" || { p=0 f=1; }
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
    done
    echo "$total_passed $total_failed" >"$root/reports/$reports_name.counts"
    exit "$status"
fi
case "$pass" in
defaults)
    server_limits=()
    pass_cases="[$cases]"
    excluded="[\"12.*\", \"13.*\", $oversized]"
    ;;
large)
    # 9.1.6 and 9.2.6 echo a 16 MiB message: frame and message limits above that.
    server_limits=(--max-frame-bytes 20000000 --max-message-bytes 20000000)
    pass_cases="[$oversized]"
    ;;
*)
    say "unknown AUTOBAHN_PASS $pass"
    exit 2
    ;;
esac

mkdir -p "$root/reports"
rm -rf "$outdir"
mkdir -p "$outdir"

# Whatever happens below, a run that gets no verdict counts as one failure.
echo "0 1" >"$counts"

if [[ ! -x $wstest ]]; then
    say "$wstest is missing; run scripts/install-deps.sh test"
    exit 1
fi
if [[ ! -x $bridge ]]; then
    say "$bridge is missing; run swift build"
    exit 1
fi

tls_flags=()
scheme=ws
listening='http'
if [[ $transport == tls ]]; then
    # A key made for this run only, in the reports directory; never committed.
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$outdir/tls.key" -out "$outdir/tls.pem" >"$outdir/openssl.log" 2>&1; then
        say "openssl could not make a certificate:"
        cat "$outdir/openssl.log" >&2
        exit 1
    fi
    tls_flags=(--tls-port 0 --tls-cert "$outdir/tls.pem" --tls-key "$outdir/tls.key")
    scheme=wss
    listening='https'
fi

server_log="$outdir/server.log"
# Created here, not by the background job's redirection: the loop below may read it first.
: >"$server_log"
"$bridge" serve --host 127.0.0.1 --port 0 --echo-path /echo --threads 1 "${server_limits[@]}" "${tls_flags[@]}" \
    >"$server_log" 2>&1 &
children=($!)
server_pid=$!
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    kill "${children[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM INT

port=""
for _ in $(seq $((startup_seconds * 10))); do
    port="$(sed -n "s|.*listening on $listening://127\\.0\\.0\\.1:\\([0-9][0-9]*\\).*|\\1|p" "$server_log" | head -n 1)"
    [[ -n $port ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        say "server exited before listening:"
        tail -n 20 "$server_log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $port ]]; then
    say "no 'listening on $listening://' line from the server within ${startup_seconds}s"
    exit 1
fi

spec="$outdir/spec.json"
cat >"$spec" <<EOF
{
  "outdir": "$outdir",
  "servers": [{"agent": "bridge", "url": "$scheme://127.0.0.1:$port/echo"}],
  "cases": $pass_cases,
  "exclude-cases": $excluded,
  "exclude-agent-cases": {}
}
EOF

say "$mode run, $pass pass, against $scheme://127.0.0.1:$port/echo (log: $outdir/wstest.log)"
# wstest waits forever on a server that stops answering, so it runs in the
# background under a watchdog: no new case within stall_seconds, or the whole run
# over wstest_timeout, and it is stopped.
: >"$outdir/wstest.log"
PYTHONWARNINGS=ignore "$wstest" -m fuzzingclient -s "$spec" >"$outdir/wstest.log" 2>&1 &
wstest_pid=$!
children+=("$wstest_pid")
started=$SECONDS
last_progress=$SECONDS
seen=0
stopped=""
while kill -0 "$wstest_pid" 2>/dev/null; do
    now="$(grep -c '^Running test case ID' "$outdir/wstest.log" || true)"
    if [[ $now -ne $seen ]]; then
        seen=$now
        last_progress=$SECONDS
    fi
    if ((SECONDS - last_progress > stall_seconds)); then
        current="$(grep '^Running test case ID' "$outdir/wstest.log" | tail -n 1 | awk '{print $5}' || true)"
        stopped="no progress for ${stall_seconds}s in case ${current:-before the first case}"
    elif ((SECONDS - started > wstest_timeout)); then
        stopped="over ${wstest_timeout}s"
    fi
    if [[ -n $stopped ]]; then
        kill "$wstest_pid" 2>/dev/null || true
        break
    fi
    sleep 1
done
wstest_status=0
wait "$wstest_pid" || wstest_status=$?
elapsed=$((SECONDS - started))
if [[ -n $stopped ]]; then
    say "wstest stopped: $stopped"
    exit 1
fi

server_alive=1
kill -0 "$server_pid" 2>/dev/null || server_alive=0

if [[ ! -f $outdir/index.json ]]; then
    say "wstest wrote no index.json (exit $wstest_status after ${elapsed}s):"
    tail -n 20 "$outdir/wstest.log" >&2
    exit 1
fi

# A case fails on a FAILED behaviour, or when the close handshake was FAILED,
# UNCLEAN or had the WRONG CODE. NON-STRICT, INFORMATIONAL and UNIMPLEMENTED pass.
python=python3
[[ -x .venv/py3/bin/python ]] && python=.venv/py3/bin/python
verdict_status=0
"$python" - "$outdir/index.json" "$counts" "$mode" "$elapsed" "$server_alive" "$wstest_status" "$pass" \
    "$([[ $transport == tls ]] && echo ', over TLS')" <<'EOF' || verdict_status=$?
import collections, json, sys

index_path, counts_path, mode, elapsed, server_alive, wstest_status = sys.argv[1:7]
failing_close = {"FAILED", "UNCLEAN", "WRONG CODE"}
with open(index_path) as f:
    agents = json.load(f)
cases = {case_id: result for agent in agents.values() for case_id, result in agent.items()}

def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))

behaviors = collections.Counter(r["behavior"] for r in cases.values())
closes = collections.Counter(r["behaviorClose"] for r in cases.values())
failed = sorted(
    (c for c, r in cases.items() if r["behavior"] == "FAILED" or r["behaviorClose"] in failing_close),
    key=case_key,
)
extra = []
if server_alive != "1":
    extra.append("server died")
if wstest_status != "0":
    extra.append(f"wstest exit {wstest_status}")
passed = len(cases) - len(failed)
failures = len(failed) + (1 if extra else 0)
with open(counts_path, "w") as f:
    f.write(f"{passed} {failures}\n")

for case_id in failed:
    r = cases[case_id]
    print(f"autobahn: FAILED {case_id}: behavior={r['behavior']} close={r['behaviorClose']} "
          f"remoteCloseCode={r['remoteCloseCode']}", file=sys.stderr)
slow = sorted(cases.items(), key=lambda item: -item[1]["duration"])[:3]
order = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
summary = " ".join(f"{b}={behaviors.get(b, 0)}" for b in order)
others = {b: n for b, n in behaviors.items() if b not in order}
if others:
    summary += " " + " ".join(f"{b}={n}" for b, n in sorted(others.items()))
close_summary = ",".join(f"{b}={n}" for b, n in sorted(closes.items()))
slowest = ",".join(f"{c}={r['duration']}ms" for c, r in slow)
print(f"autobahn {mode} ({sys.argv[7]}{sys.argv[8]}): {len(cases)} cases in {elapsed}s: {summary} close[{close_summary}] "
      f"slowest[{slowest}]" + (f" ({'; '.join(extra)})" if extra else ""))
sys.exit(1 if failures else 0)
EOF
exit "$verdict_status"
