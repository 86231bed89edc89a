#!/usr/bin/env bash
# Builds the libFuzzer targets and fuzzes each for a while.
#
#   scripts/fuzz.sh [seconds-per-target [target…]]      (default 30 s, every target; 0 builds only)
#
# Each target is compiled straight from its source files with swiftc (SwiftPM has no
# fuzzer mode) into .fuzz/<target>, and rebuilt only when a source changed. The parser
# targets (http frame json resp) get their parser's files only; the handler targets
# (api session seedform) drive a whole in-process broker, so they share one binary,
# .fuzz/handlers, built from every source of Support, System and Bridge, and .fuzz/<target> is a
# symlink to it (the name it runs under picks the target). It starts
# from the committed seeds in Tests/Fuzz/corpus/<target>/ (and the words of
# Tests/Fuzz/dicts/<target>.dict when there is one) plus what earlier runs
# found in .fuzz/corpus-<target>/. A crash, leak, timeout or out-of-memory input is
# written to .fuzz/artifacts/<target>/ and fails the target. Writes "passed failed"
# (one per target) to reports/fuzz.counts.
set -euo pipefail

seconds="${1:-30}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Each target's name is also its seed folder, Tests/Fuzz/corpus/<name>/.
targets=(http frame json resp api session seedform)
if [[ $# -gt 1 ]]; then
    targets=("${@:2}")
fi

# The sources of each target: the parser's own files (no syscalls, no Foundation)
# and the harness that defines LLVMFuzzerTestOneInput. Read through a nameref.
# shellcheck disable=SC2034
sources_http=(
    Sources/Bridge/HTTP/HTTPHeaders.swift
    Sources/Bridge/HTTP/HTTPRequest.swift
    Sources/Bridge/HTTP/HTTPParserLimits.swift
    Sources/Bridge/HTTP/HTTPParseError.swift
    Sources/Bridge/HTTP/HTTPParseEvent.swift
    Sources/Bridge/HTTP/HTTPRequestParser.swift
    Sources/Bridge/HTTP/HTTPRequestParser+Head.swift
    Sources/Bridge/HTTP/HTTPRequestParser+Body.swift
    Sources/Bridge/HTTP/HTTPRequestParser+Target.swift
    Sources/Bridge/HTTP/HTTPRequestParser+Bytes.swift
    Tests/Fuzz/HTTPParserFuzz.swift
)
# shellcheck disable=SC2034
sources_frame=(
    Sources/Bridge/WebSocket/Opcode.swift
    Sources/Bridge/WebSocket/CloseCode.swift
    Sources/Bridge/WebSocket/WebSocketLimits.swift
    Sources/Bridge/WebSocket/WebSocketError.swift
    Sources/Bridge/WebSocket/WebSocketMessage.swift
    Sources/Bridge/WebSocket/FrameParser.swift
    Sources/Bridge/WebSocket/UTF8Validator.swift
    Sources/Bridge/WebSocket/WebSocketDecoder.swift
    Tests/Fuzz/FrameParserFuzz.swift
)
# shellcheck disable=SC2034
sources_json=(
    Sources/Support/JSONWriter.swift
    Sources/Bridge/JSON/JSON.swift
    Sources/Bridge/JSON/JSONObject.swift
    Sources/Bridge/JSON/JSONError.swift
    Sources/Bridge/JSON/JSONParser.swift
    Tests/Fuzz/JSONParserFuzz.swift
)
# shellcheck disable=SC2034
sources_resp=(
    Sources/Redis/RESP/RESPValue.swift
    Sources/Redis/RESP/RESPParserLimits.swift
    Sources/Redis/RESP/RESPParseError.swift
    Sources/Redis/RESP/RESPParser.swift
    Sources/Redis/RESP/RedisArgument.swift
    Sources/Redis/RESP/RESPEncoder.swift
    Tests/Fuzz/RESPParserFuzz.swift
)

# The handler targets' build: Support, System, Bridge (with its C shims) and the harness in Tests/Fuzz/Handlers.
# shellcheck disable=SC2034
mapfile -t sources_handlers < <(find Sources/Support Sources/System Sources/Bridge Tests/Fuzz/Handlers -name '*.swift' | LC_ALL=C sort)
# shellcheck disable=SC2034
extra_flags_handlers=(-I Sources/CSystem -I Sources/COpenSSL)

# The binary each target runs: its own, or the shared handler build.
binary_of() {
    case "$1" in
        api | session | seedform) echo handlers ;;
        *) echo "$1" ;;
    esac
}

swiftc_flags=("-sanitize=fuzzer,address" -parse-as-library -O -wmo)
fuzzer_flags=(-rss_limit_mb=2048 -timeout=20 -print_final_stats=1)

say() { printf 'fuzz: %s\n' "$*" >&2; }

mkdir -p .fuzz reports/fuzz
counts=reports/fuzz.counts
rm -f "$counts"
passed=0
failed=0

# Builds .fuzz/<target> unless its stamp matches the sources, flags and compiler.
build_target() {
    local target="$1" binary=".fuzz/$1" stamp=".fuzz/$1.stamp" log="reports/fuzz/$1-build.log" want
    local -n sources="sources_$target"
    local extra=()
    if declare -p "extra_flags_$target" >/dev/null 2>&1; then
        local -n extra_flags="extra_flags_$target"
        extra=("${extra_flags[@]}")
    fi
    local missing=() file
    for file in "${sources[@]}"; do
        [[ -f $file ]] || missing+=("$file")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        say "$target: missing sources: ${missing[*]}"
        return 1
    fi
    want="$(cat "${sources[@]}" | sha256sum | cut -d' ' -f1) ${#sources[@]} ${swiftc_flags[*]} ${extra[*]} $(swiftc --version 2>&1 | head -n 1)"
    if [[ -x $binary && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    say "$target: building"
    rm -f "$binary" "$stamp"
    # Each target is one module, so the package's module imports among its files (Support,
    # System) are dropped from copies of the sources. The file names of Support, System and
    # Bridge are unique across their folders.
    local staged=".fuzz/src-$target" copies=()
    rm -rf "$staged"
    mkdir -p "$staged"
    for file in "${sources[@]}"; do
        sed '/^import Support$/d; /^import System$/d' "$file" >"$staged/$(basename "$file")"
        copies+=("$staged/$(basename "$file")")
    done
    local started=$SECONDS
    if ! swiftc "${swiftc_flags[@]}" "${extra[@]}" -module-name "${target^}Fuzz" "${copies[@]}" -o "$binary" >"$log" 2>&1; then
        say "$target: build failed (log: $log)"
        tail -n 30 "$log" >&2
        return 1
    fi
    printf '%s\n' "$want" >"$stamp"
    say "$target: built in $((SECONDS - started))s"
}

run_target() {
    local target="$1" binary=".fuzz/$1" corpus=".fuzz/corpus-$1" seeds="Tests/Fuzz/corpus/$1"
    local artifacts=".fuzz/artifacts/$1" log="reports/fuzz/$1.log" status=0 artifact
    mkdir -p "$corpus" "$artifacts"
    if [[ -d $seeds ]]; then
        cp -R "$seeds/." "$corpus/"
    else
        say "$target: no seed corpus at $seeds; starting empty"
    fi
    touch "$log.start"
    # Swift's own crash handler would run inside ASan and muddle the report; a trap
    # lets libFuzzer report the crash and save the input.
    local dict=() words="Tests/Fuzz/dicts/$1.dict"
    [[ -f $words ]] && dict=(-dict="$words")
    SWIFT_BACKTRACE=enable=no "$binary" "${fuzzer_flags[@]}" "${dict[@]}" -max_total_time="$seconds" \
        -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || status=$?
    artifact="$(find "$artifacts" -type f -newer "$log.start" 2>/dev/null | head -n 1)"
    if [[ $status -ne 0 ]]; then
        say "$target: FAILED (exit $status, log: $log)"
        grep -i -E 'fatal error|==[0-9]+== ?ERROR|^SUMMARY' "$log" | head -n 5 >&2 || true
        if [[ -n $artifact ]]; then
            say "$target: input: $artifact"
            say "$target: reproduce: $binary $artifact"
        fi
        return 1
    fi
    local runs
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    say "$target: ok, ${runs:-?} inputs in ${seconds}s, corpus $(find "$corpus" -type f | wc -l) files"
}

# A shared binary is checked (and built) once per run: build name -> 1 (ok) or 0 (failed).
declare -A build_ok=()
for target in "${targets[@]}"; do
    build="$(binary_of "$target")"
    if [[ -z ${build_ok[$build]+set} ]]; then
        if build_target "$build"; then build_ok[$build]=1; else build_ok[$build]=0; fi
    fi
    if [[ ${build_ok[$build]} == 1 ]]; then
        [[ $build == "$target" ]] || ln -sfn "$build" ".fuzz/$target"
        # 0 s builds only (libFuzzer would read -max_total_time=0 as "forever").
        if [[ $seconds == 0 ]]; then
            passed=$((passed + 1))
            continue
        fi
        if run_target "$target"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    else
        failed=$((failed + 1))
    fi
done

echo "$passed $failed" >"$counts"
echo "fuzz: $passed passed, $failed failed (${seconds}s per target)"
[[ $failed -eq 0 ]]
