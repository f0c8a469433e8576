#!/usr/bin/env bash
# Builds the real programs the tests run beside ours, from the Go module proxy,
# into a cache outside the tracked tree:
#   otelcol-k8s          the OpenTelemetry Collector, otelcol-k8s component list
#   crossplane           the Crossplane CLI
#   crossplane-core      the Crossplane core binary (the CLI's render engine)
#   function-auto-ready  function-auto-ready, a second real composition function
#   crane                go-containerregistry's crane (OCI image tarballs)
#   crds/                provider-kubernetes' and Crossplane's CRDs from their modules
#   kube                 kube-apiserver and kube-controller-manager (k8s.io/kubernetes)
#   etcd                 etcd (go.etcd.io/etcd/server/v3)
#   kustomize            kustomize (sigs.k8s.io/kustomize/kustomize/v5)
#   ecosystem-crds/      Argo CD's, Flux's and the Prometheus Operator's CRDs
#
# Versions: test/peers/versions.env. Idempotent: a peer whose inputs are
# unchanged is not rebuilt. Writes $PEERS_DIR/peers.env (absolute paths) for
# the test kits. A peer that fails to build fails this script, naming it.
#
# Usage: test/peers/build.sh            (PEERS_DIR defaults to
#        ~/.cache/modelplane-signals/peers; MODELPLANE_PEERS_DIR overrides)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

peers_dir="${MODELPLANE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelplane-signals/peers}"
mkdir -p "$peers_dir"

# One toolchain (the machine's), no cgo, two compile jobs (peak memory on
# 2 cores), and nothing but the module proxy.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-p=2"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
case "$GOPROXY" in *direct*) export GOPROXY=https://proxy.golang.org ;; esac

if ! command -v go >/dev/null; then
    echo "peers: 'go' is not on PATH; the peers build from Go modules (Go >= 1.26)" >&2
    exit 1
fi

started_all=$SECONDS
failed=()

# build NAME KEY COMMAND...: runs COMMAND with $out set to a fresh directory
# unless $peers_dir/NAME/KEY already holds a finished build.
build() {
    local name="$1" key="$2"
    shift 2
    local dest="$peers_dir/$name/$key"
    if [ -f "$dest/.built" ]; then
        printf 'peers: %-16s %s (cached)\n' "$name" "$key"
        return 0
    fi
    printf 'peers: %-16s %s building ...\n' "$name" "$key"
    local started=$SECONDS log="$peers_dir/$name-$key.log"
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    # In the background and waited for: a subshell tested by `if` or `||`
    # runs with `set -e` ignored, and a failed step would pass as a build.
    local status=0
    (set -e; out="$dest.tmp"; cd "$dest.tmp"; "$@") >"$log" 2>&1 &
    wait $! || status=$?
    if [ "$status" -eq 0 ]; then
        rm -rf "$dest"
        mv "$dest.tmp" "$dest"
        touch "$dest/.built"
        printf 'peers: %-16s %s built in %ss\n' "$name" "$key" "$((SECONDS - started))"
    else
        printf 'peers: %-16s %s FAILED after %ss; last lines of %s:\n' \
            "$name" "$key" "$((SECONDS - started))" "$log" >&2
        tail -n 25 "$log" >&2
        failed+=("$name")
    fi
}

# go_tool BINARY PACKAGE MODULE@VERSION...: builds PACKAGE as $out/bin/BINARY
# through a throwaway wrapper module requiring the given module versions. Not
# `go install`: it asks the proxy for the module's version list (deprecation
# check), which the proxy refuses for some modules, and it refuses modules
# whose go.mod has `replace` lines (Crossplane core), which a dependency's
# go.mod may have.
go_tool() {
    local binary="$1" package="$2"
    shift 2
    go mod init local/peer-wrapper
    go get -tool "$@"
    go build -trimpath -ldflags "${ldflags:-}" -o "$out/bin/$binary" "$package"
    rm -f go.mod go.sum
}

# go_module_main BINARY MODULE@VERSION: builds the module's root package from
# its own go.mod. For a module the proxy serves under a path other than the
# one its go.mod declares (function-auto-ready moved from crossplane-contrib
# to crossplane), which no requiring module can import.
go_module_main() {
    local dir
    dir="$(go mod download -json "$2" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
    cp -r "$dir" src
    chmod -R u+w src
    (cd src && go build -trimpath -o "$out/bin/$1" .)
    rm -rf src
}

build_otelcol() {
    (mkdir tools && cd tools && out="$out/tools" && go_tool builder \
        "$OTELCOL_BUILDER_MODULE" "$OTELCOL_BUILDER_MODULE@v$OTELCOL_VERSION")
    sed -e "s#OUTPUT_PATH#$out/src#" "$here/otelcol-k8s/manifest.yaml" >"$out/manifest.yaml"
    "$out/tools/bin/builder" --config "$out/manifest.yaml"
    mkdir -p "$out/bin"
    mv "$out/src/otelcol-k8s" "$out/bin/otelcol-k8s"
    # The generated sources and the builder are only needed to build.
    rm -rf "$out/src" "$out/tools"
}

# CRDs shipped inside the modules: provider-kubernetes' Object and
# ProviderConfig, and Crossplane's own (Composition, Function, ...).
copy_crds() {
    local dir
    dir="$(go mod download -json "$PROVIDER_KUBERNETES_MODULE@$PROVIDER_KUBERNETES_VERSION" \
        | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
    mkdir -p "$out/provider-kubernetes" "$out/crossplane"
    cp "$dir"/package/crds/*.yaml "$out/provider-kubernetes/"
    dir="$(go mod download -json "$CROSSPLANE_CORE_MODULE@$CROSSPLANE_CORE_VERSION" \
        | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
    cp "$dir"/cluster/crds/*.yaml "$out/crossplane/"
    chmod -R u+w "$out"
}

# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver,
# ...) at v0.0.0 and replaces them with ./staging, which the module zip leaves
# out. The wrapper replaces each with its published release of the same minor
# (the pattern kubernetes#79384 recommends) and stamps the version the binaries
# report. Both programs share one module graph and build cache.
build_kube() {
    go mod init local/kube-wrapper
    local gomod module
    gomod="$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" \
        | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
    for module in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
        go mod edit -replace "$module=$module@v$KUBERNETES_STAGING_VERSION"
    done
    go get "k8s.io/kubernetes@v$KUBERNETES_VERSION"
    go get -tool k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    local version_pkg=k8s.io/component-base/version minor="${KUBERNETES_VERSION#*.}"
    local stamp="-X $version_pkg.gitVersion=v$KUBERNETES_VERSION -X $version_pkg.gitMajor=${KUBERNETES_VERSION%%.*}"
    stamp="$stamp -X $version_pkg.gitMinor=${minor%%.*} -X $version_pkg.gitTreeState=clean"
    for program in kube-apiserver kube-controller-manager; do
        go build -trimpath -ldflags "$stamp" -o "$out/bin/$program" "k8s.io/kubernetes/cmd/$program"
    done
    rm -f go.mod go.sum
}

# The CRDs of what users install us with (Argo CD, Flux) and monitor us with
# (the Prometheus Operator), as their modules ship them.
copy_ecosystem_crds() {
    local dir
    mkdir -p "$out/argo-cd" "$out/flux" "$out/prometheus-operator"
    dir="$(module_dir "$ARGOCD_MODULE@$ARGOCD_VERSION")"
    cp "$dir"/manifests/crds/*-crd.yaml "$out/argo-cd/"
    dir="$(module_dir "$FLUX_KUSTOMIZE_MODULE@$FLUX_KUSTOMIZE_VERSION")"
    cp "$dir"/config/crd/bases/*.yaml "$out/flux/"
    dir="$(module_dir "$FLUX_SOURCE_MODULE@$FLUX_SOURCE_VERSION")"
    cp "$dir"/config/crd/bases/*.yaml "$out/flux/"
    dir="$(module_dir "$PROMETHEUS_OPERATOR_MODULE@$PROMETHEUS_OPERATOR_VERSION")"
    cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml \
        "$out/prometheus-operator/"
    chmod -R u+w "$out"
}

module_dir() {
    go mod download -json "$1" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p'
}

manifest_sum="$(sha256sum "$here/otelcol-k8s/manifest.yaml" | cut -c1-12)"
build otelcol-k8s "$OTELCOL_VERSION-$manifest_sum" build_otelcol
otelcol_dir="$peers_dir/otelcol-k8s/$OTELCOL_VERSION-$manifest_sum"

# Crossplane stamps its version at link time; the CLI prints and checks it.
crossplane_version=github.com/crossplane/crossplane-runtime/v2/pkg/version.version
ldflags="-X $crossplane_version=$CROSSPLANE_CLI_VERSION" \
    build crossplane "$CROSSPLANE_CLI_VERSION-stamped" go_tool crossplane \
    "$CROSSPLANE_CLI_MODULE/cmd/crossplane" "$CROSSPLANE_CLI_MODULE/cmd/crossplane@$CROSSPLANE_CLI_VERSION"
# Core's own go.mod replaces its apis module with a local path; the wrapper
# requires the published apis module at the same tag instead.
ldflags="-X $crossplane_version=$CROSSPLANE_CORE_VERSION" \
    build crossplane-core "$CROSSPLANE_CORE_VERSION-stamped" go_tool crossplane-core \
    "$CROSSPLANE_CORE_MODULE/cmd/crossplane" \
    "$CROSSPLANE_CORE_MODULE/cmd/crossplane@$CROSSPLANE_CORE_VERSION" \
    "github.com/crossplane/crossplane/apis/v2@$CROSSPLANE_CORE_VERSION"
build function-auto-ready "$FUNCTION_AUTO_READY_VERSION" go_module_main function-auto-ready \
    "$FUNCTION_AUTO_READY_MODULE@$FUNCTION_AUTO_READY_VERSION"
build crane "$CRANE_VERSION" go_tool crane \
    "$CRANE_MODULE/cmd/crane" "$CRANE_MODULE/cmd/crane@$CRANE_VERSION"
build crds "pk-$PROVIDER_KUBERNETES_VERSION-xp-$CROSSPLANE_CORE_VERSION" copy_crds
build kube "$KUBERNETES_VERSION" build_kube
# etcd's own go.mod replaces its sibling modules; as a wrapper's dependency
# those replaces are ignored and the published siblings are used.
build etcd "$ETCD_VERSION" go_tool etcd "$ETCD_MODULE" "$ETCD_MODULE@v$ETCD_VERSION"
build kustomize "$KUSTOMIZE_VERSION" go_tool kustomize "$KUSTOMIZE_MODULE" "$KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION"
ecosystem_key="argocd-$ARGOCD_VERSION-flux-$FLUX_KUSTOMIZE_VERSION-$FLUX_SOURCE_VERSION-pom-$PROMETHEUS_OPERATOR_VERSION"
build ecosystem-crds "$ecosystem_key" copy_ecosystem_crds

if [ "${#failed[@]}" -gt 0 ]; then
    echo "peers: could not build: ${failed[*]} (logs in $peers_dir)" >&2
    exit 1
fi

cat >"$peers_dir/peers.env" <<EOF
# Written by test/peers/build.sh; absolute paths of the built peers.
OTELCOL_BIN=$otelcol_dir/bin/otelcol-k8s
OTELCOL_VERSION=$OTELCOL_VERSION
CROSSPLANE_BIN=$peers_dir/crossplane/$CROSSPLANE_CLI_VERSION-stamped/bin/crossplane
CROSSPLANE_CORE_BIN=$peers_dir/crossplane-core/$CROSSPLANE_CORE_VERSION-stamped/bin/crossplane-core
FUNCTION_AUTO_READY_BIN=$peers_dir/function-auto-ready/$FUNCTION_AUTO_READY_VERSION/bin/function-auto-ready
CRANE_BIN=$peers_dir/crane/$CRANE_VERSION/bin/crane
PROVIDER_KUBERNETES_CRDS=$peers_dir/crds/pk-$PROVIDER_KUBERNETES_VERSION-xp-$CROSSPLANE_CORE_VERSION/provider-kubernetes
CROSSPLANE_CRDS=$peers_dir/crds/pk-$PROVIDER_KUBERNETES_VERSION-xp-$CROSSPLANE_CORE_VERSION/crossplane
KUBE_APISERVER_BIN=$peers_dir/kube/$KUBERNETES_VERSION/bin/kube-apiserver
KUBE_CONTROLLER_MANAGER_BIN=$peers_dir/kube/$KUBERNETES_VERSION/bin/kube-controller-manager
KUBERNETES_VERSION=$KUBERNETES_VERSION
ETCD_BIN=$peers_dir/etcd/$ETCD_VERSION/bin/etcd
KUSTOMIZE_BIN=$peers_dir/kustomize/$KUSTOMIZE_VERSION/bin/kustomize
ARGOCD_CRDS=$peers_dir/ecosystem-crds/$ecosystem_key/argo-cd
FLUX_CRDS=$peers_dir/ecosystem-crds/$ecosystem_key/flux
PROMETHEUS_OPERATOR_CRDS=$peers_dir/ecosystem-crds/$ecosystem_key/prometheus-operator
EOF
echo "peers: all built in $((SECONDS - started_all))s; paths in $peers_dir/peers.env"
