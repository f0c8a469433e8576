#!/usr/bin/env bash
# Builds the function-signals Function package without Docker:
#
#   1. function-signals as a static x86_64 Linux binary (glibc, +crt-static),
#      so the runtime image needs no base layer at all;
#   2. a runtime image tarball holding only that binary (and a passwd entry
#      for its non-root user), assembled with crane;
#   3. the package, `crossplane xpkg build --embed-runtime-image-tarball`.
#
# Usage: package/function/build-runtime.sh [--binary PATH] OUT_DIR
#
#   OUT_DIR receives runtime.tar (the OCI image, loadable with
#   `crane push runtime.tar REF` or `docker load`) and function-signals.xpkg
#   (push with `crossplane xpkg push -f OUT_DIR/function-signals.xpkg REF`).
#   --binary skips the cargo build and packages PATH, which must be a static
#   Linux x86_64 executable.
#
# Needs cargo, crane (go-containerregistry) and the Crossplane CLI v2; set
# CRANE and CROSSPLANE to their paths when they are not on PATH
# (test/peers/build.sh builds both).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
crane="${CRANE:-crane}"
crossplane="${CROSSPLANE:-crossplane}"
target=x86_64-unknown-linux-gnu

binary=""
if [ "${1:-}" = "--binary" ]; then
    binary="$2"
    shift 2
fi
if [ $# -ne 1 ]; then
    sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"

version="v$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)"

if [ -z "$binary" ]; then
    # RUSTFLAGS with an explicit --target apply to the target artefacts only,
    # not to build scripts and proc macros, which must stay dynamic.
    (cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static' \
        cargo build --release --locked --target "$target" -p function-signals)
    binary="${CARGO_TARGET_DIR:-$repo/target}/$target/release/function-signals"
fi

# The image has no libc and no dynamic loader: a dynamically linked binary
# would fail at exec with a bare "no such file or directory".
if readelf -l "$binary" | grep -q 'Requesting program interpreter'; then
    echo "build-runtime: $binary is dynamically linked; the runtime image has no libc" >&2
    exit 1
fi

rootfs="$out/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs/etc"
# Release builds keep line tables (profile.release debug = 1) for backtraces
# on the build machine; the image does not need them (75 MB -> 10 MB).
strip -o "$rootfs/function-signals" "$binary"
chmod 0755 "$rootfs/function-signals"
# Crossplane runs functions as UID 2000 with its own securityContext; 65532
# is distroless' nonroot, for runtimes that use the image's user. Numeric in
# the config so a kubelet can check runAsNonRoot; named here for `ps` and
# `id` in a debug container.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
# Same bytes for the same binary: fixed owner, mode order and timestamps.
tar --create --file "$out/rootfs.tar" --directory "$rootfs" \
    --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name \
    function-signals etc

# `crane mutate` (entrypoint, user, ports, platform) reads its input from a
# registry, so a throwaway in-memory one serves on a loopback port (crane
# talks plain HTTP to 127.0.0.1) for the two steps.
registry_log="$out/registry.log"
"$crane" registry serve --address 127.0.0.1:0 >"$registry_log" 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
    port="$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$registry_log")"
    [ -n "$port" ] && break
    kill -0 "$registry_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "build-runtime: crane registry did not start:" >&2
    cat "$registry_log" >&2
    exit 1
fi
staging="127.0.0.1:$port/function-signals"

"$crane" append --oci-empty-base -f "$out/rootfs.tar" -t "$staging:layer" >/dev/null
"$crane" mutate "$staging:layer" \
    --entrypoint=/function-signals \
    --user=65532:65532 \
    --exposed-ports=9443/tcp \
    --set-platform=linux/amd64 \
    --label=org.opencontainers.image.title=function-signals \
    --label=org.opencontainers.image.source=https://github.com/modelplaneai/modelplane-signals \
    --label=org.opencontainers.image.version="$version" \
    -t "function-signals-runtime:$version" -o "$out/runtime.tar" >/dev/null

# Examples come from the repository's examples/ (XRs, Compositions and the
# Development-runtime Function), as `crossplane xpkg build` expects.
"$crossplane" xpkg build \
    --package-root="$here" \
    --examples-root="$repo/examples" \
    --embed-runtime-image-tarball="$out/runtime.tar" \
    --package-file="$out/function-signals.xpkg"

echo "build-runtime: $out/runtime.tar and $out/function-signals.xpkg ($version)"
