#!/usr/bin/env bash
# Installs what building and testing Bridge needs on a Debian 12 machine.
# Idempotent: a second run installs nothing and takes about a second.
#
#   scripts/install-deps.sh runtime   C libraries the server links (libcurl, OpenSSL)
#   scripts/install-deps.sh test      runtime + wrk, headless Chromium with chromedriver and
#                                     jQuery (browser tests), Ruby with Rails 6.1 (examples/rails),
#                                     redis-server (Redis client tests),
#                                     the pytest venv and the Autobahn venv
#
# Virtual environments live under .venv/; each keeps a stamp with the hash of the
# requirements it was built from and is rebuilt only when that hash changes.
set -euo pipefail

mode="${1:-test}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

runtime_apt=(libcurl4-openssl-dev libssl-dev)
optional_apt=(wrk)
# The browser tests drive headless Chromium through chromedriver (/usr/bin/chromedriver) and
# serve Debian's jQuery to the pages they load.
browser_apt=(chromium chromium-driver libjs-jquery)
# examples/rails: Rails 6.1 and its gems from Debian (bundle install --local, no network). Not the
# `rails` metapackage, which cannot be installed beside the machine's Node.js.
rails_example_apt=(ruby-rails ruby-sqlite3 bundler puma ruby-webrick)
# The Redis client and cluster tests (Tests/RedisTests, Tests/RedisClusterTests) start their own redis-server on a loopback port.
test_apt=(redis-server)
# The TLS tests (Swift and Python) make their test certificates with the openssl command, which
# libssl-dev does not bring.
test_apt+=(openssl)
# .venv/py3 runs the integration tests and the Django example (its tests and the end-to-end run).
py3_requirements=(Tests/Integration/requirements.txt examples/django/requirements.txt)
autobahn_requirements="scripts/autobahn-requirements.txt"
virtualenv_version="20.15.1"
python27_version="2.7.18"

say() { printf 'install-deps: %s\n' "$*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

apt_updated=0
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "apt-get install ${missing[*]}"
    if [[ $apt_updated -eq 0 ]]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

file_hash() {
    cat "$@" | sha256sum | cut -d' ' -f1
}

# Runs a command with its output in a log; shows the log's tail only when it fails.
# Callers add `|| return 1`: errexit is off inside a function called from `||`.
logged() {
    local log="$1"; shift
    if ! "$@" >>"$log" 2>&1; then
        say "failed: $* (log: $log)"
        tail -n 30 "$log" >&2
        return 1
    fi
}

ensure_python3_venv() {
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv
    fi
}

# .venv/py3: pytest and websockets for Tests/Integration, Django for examples/django.
ensure_py3_venv() {
    local venv=.venv/py3 stamp=.venv/py3.stamp want file pip_args=()
    for file in "${py3_requirements[@]}"; do
        if [[ ! -f $file ]]; then
            say "warning: $file is missing; .venv/py3 not built"
            return 1
        fi
        pip_args+=(-r "$file")
    done
    want="$(file_hash "${py3_requirements[@]}") $(python3 --version 2>&1)"
    if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    say "building $venv from ${py3_requirements[*]}"
    ensure_python3_venv || return 1
    rm -rf "$venv" "$stamp" || return 1
    mkdir -p .venv && : >.venv/py3.log
    logged .venv/py3.log python3 -m venv "$venv" || return 1
    logged .venv/py3.log "$venv/bin/pip" install -q "${pip_args[@]}" || return 1
    printf '%s\n' "$want" >"$stamp"
}

find_python27() {
    local candidate
    if command -v pyenv >/dev/null 2>&1; then
        candidate="$(pyenv root)/versions/$python27_version/bin/python2.7"
        if [[ -x $candidate ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    fi
    candidate="$HOME/.pyenv/versions/$python27_version/bin/python2.7"
    if [[ -x $candidate ]]; then
        printf '%s\n' "$candidate"
        return 0
    fi
    command -v python2.7
}

# .venv/autobahn: Python 2.7 with Autobahn|Testsuite's wstest. virtualenv 20.15.1
# still creates 2.7 environments (20.22 dropped that); it runs from its own
# Python 3 venv, .venv/virtualenv.
ensure_autobahn_venv() {
    local venv=.venv/autobahn stamp=.venv/autobahn.stamp python27 want
    if ! python27="$(find_python27)"; then
        say "error: no Python $python27_version interpreter (pyenv or python2.7 on PATH)"
        return 1
    fi
    want="$(file_hash "$autobahn_requirements") $python27"
    if [[ -x $venv/bin/wstest && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    say "building $venv with $python27"
    ensure_python3_venv || return 1
    rm -rf "$venv" "$stamp" || return 1
    mkdir -p .venv && : >.venv/autobahn.log
    if [[ ! -x .venv/virtualenv/bin/virtualenv ]]; then
        rm -rf .venv/virtualenv
        logged .venv/autobahn.log python3 -m venv .venv/virtualenv || return 1
        logged .venv/autobahn.log .venv/virtualenv/bin/pip install -q "virtualenv==$virtualenv_version" || return 1
    fi
    logged .venv/autobahn.log .venv/virtualenv/bin/virtualenv -q -p "$python27" "$venv" || return 1
    logged .venv/autobahn.log "$venv/bin/pip" install -q --no-python-version-warning -r "$autobahn_requirements" || return 1
    logged .venv/autobahn.log "$venv/bin/wstest" --help || return 1
    printf '%s\n' "$want" >"$stamp"
}

case "$mode" in
runtime)
    apt_install "${runtime_apt[@]}"
    ;;
test)
    apt_install "${runtime_apt[@]}"
    apt_install "${browser_apt[@]}"
    apt_install "${rails_example_apt[@]}"
    apt_install "${test_apt[@]}"
    apt_install "${optional_apt[@]}" || say "warning: could not install ${optional_apt[*]} (only the benchmarks need it)"
    status=0
    ensure_py3_venv || status=1
    ensure_autobahn_venv || status=1
    exit "$status"
    ;;
*)
    say "usage: $0 runtime|test"
    exit 2
    ;;
esac
