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

step "toolchains (cargo, rustfmt, clippy, go)"
missing_tools=()
cargo --version >/dev/null 2>&1 || missing_tools+=("cargo (install Rust with rustup)")
go version >/dev/null 2>&1 || missing_tools+=("go >= 1.26 (the real peers build from Go modules)")
if cargo --version >/dev/null 2>&1; then
    # rustup components come from static.rust-lang.org, which some machines
    # cannot reach; try, then say which is missing.
    for component in rustfmt clippy; do
        if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
            rustup component add "$component" >/dev/null 2>&1 \
                || missing_tools+=("$component (rustup component add $component)")
        fi
    done
fi
if [ "${#missing_tools[@]}" -gt 0 ]; then
    printf 'missing and not installable here: %s\n' "${missing_tools[@]}" >&2
    exit 1
fi
cargo --version && cargo fmt --version && cargo clippy --version && go version

step "cargo-nextest"
# From crates.io, built once into ~/.cargo/bin (a few minutes the first time).
nextest_version=0.9.151
if [ "$(cargo nextest --version 2>/dev/null | head -n1 | awk '{print $2}')" != "$nextest_version" ]; then
    cargo install --locked --quiet cargo-nextest --version "$nextest_version"
fi
cargo nextest --version | head -n1

step "cargo-fuzz (the fuzz smoke suite)"
# From crates.io like cargo-nextest. libFuzzer is built from source, so it
# also needs a C++ compiler (installed with the system packages below).
fuzz_version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$fuzz_version" ]; then
    cargo install --locked --quiet cargo-fuzz --version "$fuzz_version"
fi
cargo fuzz --version

step "system packages (redis-server, redis-tools, prometheus for promtool, python3-venv, g++ for libFuzzer)"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
    || ! command -v promtool >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null \
    || ! command -v c++ >/dev/null; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        redis-server redis-tools prometheus python3-venv g++
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

step "real peers (test/peers/build.sh: collector, Crossplane CLI and core, ...)"
test/peers/build.sh

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

run_suite "cargo nextest run --workspace" cargo nextest run --workspace --no-fail-fast
run_suite "cargo fmt --check" cargo fmt --all -- --check
run_suite "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
# Every fuzz target for 20 s on its corpus (fuzz/README.md; the long runs are
# in RELIABILITY.md). Its own workspace and target dir, stable Rust.
run_suite "fuzz smoke (fuzz/smoke.sh, 20 s per target)" fuzz/smoke.sh 20
# The binaries were just built; the harness need not rebuild them.
run_suite "pytest test/" env MODELPLANE_TEST_NO_BUILD=1 "$venv/bin/python" -m pytest test/ -q

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\n==> FAILED: %s\n' "${failed[@]}"
    exit 1
fi
step "all tests passed"
