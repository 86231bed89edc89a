#!/usr/bin/env bash
# The Rails example's own tests: `bin/rails test` (Minitest) in examples/rails.
#
#   scripts/examples-rails.sh
#
# Installs nothing: Ruby, Rails and the gems come from Debian's packages, which
# scripts/install-deps.sh test installs. bin/setup runs `bundle install --local` when the
# bundle is not resolved yet and prepares the test database. Writes the output to
# reports/rails.log and "passed failed" to reports/rails.counts; exits non-zero when a test
# fails or the suite cannot run.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app="$root/examples/rails"
reports="$root/reports"
log="$reports/rails.log"
counts="$reports/rails.counts"
suite_timeout=600

mkdir -p "$reports"
: >"$log"
echo "0 1" >"$counts" # what a suite that could not run counts as, until it ran

if ! command -v ruby >/dev/null || ! command -v bundle >/dev/null; then
    echo "examples-rails: ruby or bundler missing (scripts/install-deps.sh test installs them)" | tee -a "$log" >&2
    exit 1
fi

cd "$app" || exit 1
# The tests set their own Bridge configuration; nothing of the caller's may redirect the database.
unset DATABASE_URL PUSHER_LITE_HOST PUSHER_LITE_ORGANIZATION PUSHER_LITE_SECRET_TOKEN \
    PUSHER_LITE_APP_ID PUSHER_LITE_APP_KEY PUSHER_LITE_APP_SECRET
export RAILS_ENV=test

if ! timeout --kill-after=10 "$suite_timeout" bin/setup >>"$log" 2>&1; then
    echo "examples-rails: bin/setup failed (reports/rails.log):" >&2
    tail -n 30 "$log" >&2
    exit 1
fi

status=0
timeout --kill-after=10 "$suite_timeout" bin/rails test 2>&1 | tee -a "$log" || status=$?

# Minitest's last word: "N runs, N assertions, N failures, N errors, N skips".
summary="$(grep -E '^[0-9]+ runs, [0-9]+ assertions, [0-9]+ failures, [0-9]+ errors, [0-9]+ skips' "$log" | tail -n 1)"
if [[ -z $summary ]]; then
    echo "examples-rails: no Minitest summary (exit $status)" >&2
    exit 1
fi
read -r runs _ _ _ failures _ errors _ skips _ <<<"${summary//,/}"
failed=$((failures + errors))
passed=$((runs - failed - skips))
[[ $status -ne 0 && $failed -eq 0 ]] && failed=1
echo "$passed $failed" >"$counts"
[[ $status -eq 0 && $failed -eq 0 ]]
