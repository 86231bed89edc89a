#!/usr/bin/env bash
# `make test`: installs what the tests need, builds, and runs every suite:
# Swift unit tests (Swift Testing and XCTest), the Python integration tests (with the examples'
# end-to-end runs), the Django and Rails examples' own tests, Autobahn|Testsuite (quick, over ws://
# and over wss://) and the fuzzers (FUZZ_SECONDS per target, default 30).
#
# Every suite runs even when an earlier one failed; a failed build stops the run.
# Reports land in reports/. The last line is "N passed, N failed" summed over the
# suites, where a suite that could not run at all counts as one failure.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1

fuzz_seconds="${FUZZ_SECONDS:-30}"
autobahn_mode="${AUTOBAHN_MODE:-quick}"
suite_timeout=900
reports="$root/reports"
bridge="$root/.build/debug/bridge"

names=() passed=() failed=() seconds=() notes=()
record() {
    names+=("$1") passed+=("$2") failed+=("$3") seconds+=("$4") notes+=("${5:-}")
}

banner() { printf '\n=== %s ===\n' "$*"; }

python=python3
[[ -x .venv/py3/bin/python ]] && python="$root/.venv/py3/bin/python"

# Prints "passed failed skipped" for the JUnit/xUnit files given: a testcase with a
# <failure> or <error> failed, one with <skipped> was skipped, any other passed.
count_xml() {
    "$python" - "$@" <<'EOF'
import sys
import xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for case in ET.parse(path).iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
print(passed, failed, skipped)
EOF
}

# Reads "passed failed" from a counts file a suite script wrote; none means one failure.
read_counts() {
    local file="$1" p f
    if [[ -f $file ]] && read -r p f <"$file" && [[ $p =~ ^[0-9]+$ && $f =~ ^[0-9]+$ ]]; then
        echo "$p $f"
    else
        echo "0 1"
    fi
}

summary() {
    local i total_passed=0 total_failed=0
    banner summary
    printf '%-12s %7s %7s %8s  %s\n' suite passed failed seconds note
    for i in "${!names[@]}"; do
        printf '%-12s %7s %7s %8s  %s\n' "${names[$i]}" "${passed[$i]}" "${failed[$i]}" "${seconds[$i]}" "${notes[$i]}"
        [[ ${passed[$i]} =~ ^[0-9]+$ ]] && total_passed=$((total_passed + passed[i]))
        [[ ${failed[$i]} =~ ^[0-9]+$ ]] && total_failed=$((total_failed + failed[i]))
    done
    printf '%-12s %7s %7s %8s\n' total "$total_passed" "$total_failed" "$SECONDS"
    local line="$total_passed passed, $total_failed failed"
    echo "$line" >"$reports/summary.txt"
    echo "$line"
    [[ $total_failed -eq 0 ]]
}

rm -rf "$reports"
mkdir -p "$reports"

banner "dependencies"
start=$SECONDS
if scripts/install-deps.sh test; then
    record deps - - $((SECONDS - start)) ok
else
    record deps 0 1 $((SECONDS - start)) "install failed (see .venv/*.log)"
fi

banner "build"
start=$SECONDS
if swift build --build-tests 2>&1 | tee "$reports/build.log" && [[ -x $bridge ]]; then
    record build - - $((SECONDS - start)) ok
else
    record build 0 1 $((SECONDS - start)) "build failed (reports/build.log)"
    summary
    exit 1
fi

banner "swift test"
start=$SECONDS
mkdir -p "$reports/swift"
status=0
# xUnit files are only written with --parallel: xunit.xml (XCTest) and
# xunit-swift-testing.xml (Swift Testing).
timeout --kill-after=10 "$suite_timeout" swift test --skip-build --parallel \
    --xunit-output "$reports/swift/xunit.xml" 2>&1 | tee "$reports/swift/output.log" || status=$?
shopt -s nullglob
xml_files=("$reports"/swift/*.xml)
shopt -u nullglob
if [[ ${#xml_files[@]} -gt 0 ]] && counted="$(count_xml "${xml_files[@]}")"; then
    read -r p f s <<<"$counted"
    note="exit $status"
    [[ $s -gt 0 ]] && note+=", $s skipped"
    if [[ $status -ne 0 && $f -eq 0 ]]; then
        f=1
        note+=" with no failing test in the xUnit files (crash or timeout?)"
    fi
    record swift-test "$p" "$f" $((SECONDS - start)) "$note"
else
    record swift-test 0 1 $((SECONDS - start)) "no xUnit output (exit $status)"
fi

banner "integration (pytest)"
start=$SECONDS
status=0
if [[ -x .venv/py3/bin/pytest ]]; then
    BRIDGE_BIN="$bridge" timeout --kill-after=10 "$suite_timeout" .venv/py3/bin/pytest Tests/Integration \
        -q --tb=short -p no:cacheprovider --junitxml="$reports/pytest.xml" || status=$?
    if [[ $status -eq 5 ]]; then
        record pytest 0 0 $((SECONDS - start)) "no tests collected"
    elif [[ -f $reports/pytest.xml ]] && counted="$(count_xml "$reports/pytest.xml")"; then
        read -r p f s <<<"$counted"
        note="exit $status"
        [[ $s -gt 0 ]] && note+=", $s skipped"
        [[ $status -ne 0 && $f -eq 0 ]] && f=1
        record pytest "$p" "$f" $((SECONDS - start)) "$note"
    else
        record pytest 0 1 $((SECONDS - start)) "no JUnit output (exit $status)"
    fi
else
    record pytest 0 1 0 ".venv/py3 missing"
fi

# A suite run by a script that writes "passed failed" to reports/NAME.counts.
#   counted_suite NAME "banner" "note" command…
counted_suite() {
    local name="$1" title="$2" note="$3" status=0 p f
    shift 3
    banner "$title"
    start=$SECONDS
    timeout --kill-after=10 "$suite_timeout" "$@" || status=$?
    read -r p f <<<"$(read_counts "$reports/$name.counts")"
    [[ $status -ne 0 && $f -eq 0 ]] && f=1
    record "$name" "$p" "$f" $((SECONDS - start)) "exit $status${note:+ ($note)}"
}

counted_suite django "examples/django (manage.py test)" reports/django.log scripts/examples-django.sh
counted_suite rails "examples/rails (bin/rails test)" reports/rails.log scripts/examples-rails.sh
BRIDGE_BIN="$bridge" counted_suite autobahn "autobahn ($autobahn_mode)" reports/autobahn/ \
    scripts/autobahn.sh "$autobahn_mode"
BRIDGE_BIN="$bridge" counted_suite autobahn-tls "autobahn ($autobahn_mode, wss)" reports/autobahn-tls/ \
    scripts/autobahn.sh "$autobahn_mode" tls
counted_suite fuzz "fuzz (${fuzz_seconds}s per target)" "" scripts/fuzz.sh "$fuzz_seconds"

summary
