#!/usr/bin/env bash
# A short run of every fuzz target on its checked-in corpus (the test
# command's "fuzz smoke" suite). New inputs go to a scratch directory, so the
# tree stays clean. Usage: fuzz/smoke.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-20}"
# The instrumented build takes many minutes from nothing, so it lives in a
# cache outside the tree (like the Go peers) and later runs only rebuild what
# changed. FUZZ_TARGET_DIR overrides.
target_dir="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelplane-signals/fuzz-target}"
# Stable Rust: no sanitizer (AddressSanitizer needs nightly's -Zsanitizer, and
# this code has no unsafe). -O with -a: optimized, with debug assertions and
# overflow checks, so an overflow is a finding too.
flags=(--sanitizer none --release --debug-assertions --target-dir "$target_dir")
# The fuzz workspace takes the main workspace's lock file (it is not checked
# in: it would go stale, and be rewritten in the tree, whenever the aggregator
# gains a dependency); cargo adds libfuzzer-sys and keeps every other version.
cp Cargo.lock fuzz/Cargo.lock
cargo fuzz build "${flags[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target" "$target_dir/artifacts/$target"
    echo "--- $target (${seconds}s)"
    if ! cargo fuzz run "${flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$target_dir/artifacts/$target/" -print_final_stats=1 2>"$scratch/$target.log"; then
        failed+=("$target")
        tail -n 40 "$scratch/$target.log" >&2
        echo "reproducer saved under $target_dir/artifacts/$target/" >&2
    else
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$scratch/$target.log" | tail -n 2 || true
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'fuzz target failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
