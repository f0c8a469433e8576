#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every suite.
# Idempotent; works on a fresh Debian machine as root. Usage: test/run-all.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

step "system packages (redis-server, redis-tools, prometheus for promtool, python3-venv)"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
    || ! command -v promtool >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        redis-server redis-tools prometheus python3-venv
    # The prometheus package starts a server we do not want; tests only use promtool.
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

step "python venv test/.venv"
venv="$repo_root/test/.venv"
requirements="$repo_root/test/requirements.txt"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" > "$stamp"
fi

step "cargo build --workspace --bins"
cargo build --workspace --bins

# Every suite runs even when an earlier one fails, so one run shows all
# failures; the exit status is non-zero if any failed.
failed=()
run_suite() {
    local name="$1"
    shift
    step "$name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

if cargo nextest --version >/dev/null 2>&1; then
    run_suite "cargo nextest run --workspace" cargo nextest run --workspace --no-fail-fast
else
    run_suite "cargo test --workspace (cargo-nextest not installed)" cargo test --workspace --no-fail-fast
fi
run_suite "cargo fmt --check" cargo fmt --all -- --check
run_suite "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
# The binaries were just built; the harness need not rebuild them.
run_suite "pytest test/" env MODELPLANE_TEST_NO_BUILD=1 "$venv/bin/python" -m pytest test/ -q

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\n==> FAILED: %s\n' "${failed[@]}"
    exit 1
fi
step "all tests passed"
