#!/usr/bin/env bash
# Runs the Django example's own tests (examples/django: `manage.py test`) with the project venv's
# Python (.venv/py3, where scripts/install-deps.sh installs examples/django/requirements.txt) and
# writes "PASSED FAILED" to reports/django.counts for scripts/test.sh. Exits non-zero on failure.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1

reports="$root/reports"
counts="$reports/django.counts"
log="$reports/django.log"
python="$root/.venv/py3/bin/python"
mkdir -p "$reports"
rm -f "$counts"

if [[ ! -x $python ]]; then
    echo "examples-django: $python is missing (run scripts/install-deps.sh test)" >&2
    echo "0 1" >"$counts"
    exit 1
fi

(cd examples/django && exec "$python" manage.py test --noinput) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# unittest ends with "Ran N tests in Xs" and "OK (skipped=S)" or
# "FAILED (failures=F, errors=E, skipped=S, unexpected successes=U)".
number() { grep -oE "$1=[0-9]+" <<<"$2" | grep -oE '[0-9]+$' || echo 0; }
ran="$(grep -oE '^Ran [0-9]+ tests?' "$log" | tail -n 1 | grep -oE '[0-9]+')"
verdict="$(grep -E '^(OK|FAILED)( \(.*\))?$' "$log" | tail -n 1)"
if [[ -z $ran || -z $verdict ]]; then
    echo "examples-django: no unittest summary in $log (exit $status)" >&2
    echo "0 1" >"$counts"
    exit 1
fi
failed=$(( $(number failures "$verdict") + $(number errors "$verdict") + $(number 'unexpected successes' "$verdict") ))
passed=$(( ran - failed - $(number skipped "$verdict") - $(number 'expected failures' "$verdict") ))
if [[ $status -ne 0 && $failed -eq 0 ]]; then
    failed=1
fi
echo "$passed $failed" >"$counts"
echo "examples-django: $passed passed, $failed failed"
[[ $status -eq 0 && $failed -eq 0 ]]
