#!/usr/bin/env bash
# Install the real deployment path and the local Kubernetes it deploys to, pinned, idempotent:
#   pulumi         the Pulumi CLI
#   provider       the kubernetes resource provider
#   control-plane  etcd, kube-apiserver, kube-controller-manager, kube-scheduler
#   node           kubelet, kube-proxy, containerd (+ its runc shim and ctr), runc, the CNI
#                  plugins (bridge, host-local, loopback, portmap), CoreDNS, the pause program
#   operator       the CloudNativePG operator (its one `manager` binary is also the instance
#                  manager) and its Barman Cloud plugin, with the install manifests their
#                  modules ship
#   images         the container images the local node runs, built from Debian packages and
#                  Maven jars (python -m standins.images; as root; needs `operator`)
#   promtool       Prometheus' rule checker and tester, for the tests of the program's alerts
#
#   bash scripts/install-engine.sh [pulumi|provider|control-plane|node|operator|images|promtool|all]
#                                                                                 (default: all)
#   bash scripts/install-engine.sh path PART        where PART is cached
#
# An installed `pulumi` of at least PULUMI_VERSION is used as it is. Everything else is built
# from the Go module proxy (the only source of these binaries that needs no download site)
# into a cache outside the clone, keyed by version, so a fresh clone reuses it:
#   ${TRADESTREAM_CACHE:-~/.cache/tradestream-database}/bin/<name>-<version>/
# Every step prints its time. A step's cold build time is kept beside what it built
# (.built-<name>), so a later run prints, per step, the cold time and this run's (cached: 0 s).
set -euo pipefail

PULUMI_VERSION=3.276.0
# The provider's Go module is published under a pseudo-version; this one is release 4.25.0.
PROVIDER_VERSION=4.25.0
PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
KUBERNETES_VERSION=1.34.2
ETCD_VERSION=3.6.4
CONTAINERD_VERSION=2.4.2
RUNC_VERSION=1.5.3
CNI_PLUGINS_VERSION=1.9.1
COREDNS_VERSION=1.14.7
PAUSE_VERSION=3.10.1
CNPG_VERSION=1.27.1
BARMAN_PLUGIN_VERSION=0.15.0
# The plugin's go.mod requires machinery and barman-cloud v0.6.0, which the module proxy does
# not serve; these are the versions its previous release (0.14.0) pins, which it does.
BARMAN_PLUGIN_REPLACES=(
    github.com/cloudnative-pg/machinery=github.com/cloudnative-pg/machinery@v0.5.0
    github.com/cloudnative-pg/barman-cloud=github.com/cloudnative-pg/barman-cloud@v0.5.2-0.20260720143032-950b0f57e122
)
# Prometheus' Go module numbers release 3.y.z as v0.3yy.z.
PROMETHEUS_VERSION=3.16.0
PROMETHEUS_MODULE_VERSION=v0.316.0

CNI_PLUGINS=(main/bridge main/loopback ipam/host-local meta/portmap)
CONTROL_PLANE=(kube-apiserver kube-controller-manager etcd kube-scheduler)
NODE_KUBERNETES=(kubelet kube-proxy)

cache="${TRADESTREAM_CACHE:-$HOME/.cache/tradestream-database}"
bin="$cache/bin"
build="$cache/build"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'install-engine: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# One line per step for the summary: name, cold seconds, this run's seconds.
summary=()

timed() { # name command...
    local name=$1 start=$SECONDS
    shift
    log "$name ..."
    "$@"
    log "$name done in $((SECONDS - start)) s"
}

# Build `file` with `command...` unless it is there; either way record the step for the summary.
# The cold time is kept in <dir>/.built-<file name> ("seconds date") by the run that built it.
step() { # name file command...
    local name=$1 file=$2 start=$SECONDS stamp cold when
    shift 2
    stamp="$(dirname "$file")/.built-$(basename "$file")"
    if [[ -x "$file" ]]; then
        cold=$(cut -d' ' -f1 "$stamp" 2>/dev/null || echo "?")
        when=$(cut -d' ' -f2 "$stamp" 2>/dev/null || echo "an earlier run")
        log "$name: cached (built cold in $cold s on $when) at $file"
        summary+=("$name|$cold|0")
        return
    fi
    log "$name ..."
    "$@"
    [[ -x "$file" ]] || die "$name: $file was not built"
    cold=$((SECONDS - start))
    printf '%s %s\n' "$cold" "$(date -u +%Y-%m-%dT%H:%MZ)" >"$stamp"
    log "$name: built in $cold s"
    summary+=("$name|$cold|$cold")
}

print_summary() {
    ((${#summary[@]} > 0)) || return 0
    log "step                                      built (s)   this run (s)"
    local line name cold now
    for line in "${summary[@]}"; do
        IFS='|' read -r name cold now <<<"$line"
        log "$(printf '%-42s %8s   %12s' "$name" "$cold" "$now")"
    done
}

require_go() {
    command -v go >/dev/null 2>&1 || die "Go is not on PATH; install Go >= 1.24 (https://go.dev/dl/)"
    local have
    have=$(go env GOVERSION)
    have=${have#go}
    [[ "$(printf '%s\n1.24\n' "$have" | sort -V | head -1)" == "1.24" ]] ||
        die "Go $have is too old to build Pulumi $PULUMI_VERSION; install Go >= 1.24"
}

# Copy a module from the module cache into a writable source tree.
module_dir() { # module@version
    go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

version_at_least() { # have want
    [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" == "$2" ]]
}

install_pulumi() {
    local target="$bin/pulumi-v$PULUMI_VERSION/bin/pulumi"
    if command -v pulumi >/dev/null 2>&1 && [[ "$(command -v pulumi)" != "$target" ]]; then
        local have
        have=$(pulumi version 2>/dev/null | sed 's/^v//')
        if version_at_least "$have" "$PULUMI_VERSION"; then
            log "Pulumi CLI $have found at $(command -v pulumi)"
            return
        fi
        log "Pulumi CLI $have is older than $PULUMI_VERSION; building $PULUMI_VERSION"
    fi
    step "Pulumi CLI $PULUMI_VERSION" "$target" _build_pulumi "$target"
}

_build_pulumi() {
    local target=$1
    require_go
    local src="$build/pulumi-$PULUMI_VERSION"
    rm -rf "$src"
    mkdir -p "$src"
    timed "download Pulumi $PULUMI_VERSION sources" _fetch_pulumi "$src"
    timed "build the Pulumi CLI $PULUMI_VERSION (about 14 min cold)" \
        bash -c "cd '$src/pkg' && go build -trimpath -ldflags '-s -w \
            -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION' \
            -o '$src/pulumi' ./cmd/pulumi"
    mkdir -p "$(dirname "$target")"
    mv "$src/pulumi" "$target"
    rm -rf "$src"
}

_fetch_pulumi() {
    local src=$1
    cp -r "$(module_dir "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION")" "$src/pkg"
    cp -r "$(module_dir "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION")" "$src/sdk"
    chmod -R u+w "$src"
}

install_provider() {
    local target="$bin/pulumi-resource-kubernetes-v$PROVIDER_VERSION/pulumi-resource-kubernetes"
    step "kubernetes provider $PROVIDER_VERSION" "$target" _build_provider "$target"
}

_build_provider() {
    local target=$1
    require_go
    local src="$build/pulumi-kubernetes-$PROVIDER_VERSION"
    rm -rf "$src"
    mkdir -p "$src"
    timed "download the kubernetes provider $PROVIDER_VERSION sources" _fetch_provider "$src"
    timed "generate the provider schema" \
        bash -c "cd '$src/provider/cmd/pulumi-resource-kubernetes' && VERSION=$PROVIDER_VERSION go run generate.go >/dev/null"
    timed "build the kubernetes provider $PROVIDER_VERSION (about 10 min cold)" \
        bash -c "cd '$src/provider' && go build -trimpath -ldflags '-s -w \
            -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PROVIDER_VERSION' \
            -o '$src/pulumi-resource-kubernetes' ./cmd/pulumi-resource-kubernetes"
    mkdir -p "$(dirname "$target")"
    mv "$src/pulumi-resource-kubernetes" "$target"
    rm -rf "$src"
}

_fetch_provider() {
    local src=$1
    cp -r "$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$PROVIDER_MODULE_VERSION")" "$src/provider"
    cp -r "$(module_dir "github.com/pulumi/pulumi-kubernetes/sdk/v4@v$PROVIDER_VERSION")" "$src/sdk"
    chmod -R u+w "$src"
}

kubernetes_dir() { echo "$bin/kubernetes-v$KUBERNETES_VERSION-etcd-v$ETCD_VERSION"; }

# The Kubernetes components and etcd come from one module of our own (see _kubernetes_module),
# prepared once per run that builds any of them.
kubernetes_module_ready=""

install_kubernetes() { # component...
    local target component version_flags major=${KUBERNETES_VERSION%%.*} minor
    target=$(kubernetes_dir)
    if [[ -x "$target/kube-apiserver" ]] && ! "$target/kube-apiserver" --version | grep -q "v$KUBERNETES_VERSION\$"; then
        rm -rf "$target" # built before the version was stamped in
    fi
    minor=${KUBERNETES_VERSION#*.}
    minor=${minor%%.*}
    # The API server reports this version, and clients (the Pulumi provider among them) read it.
    version_flags="-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION"
    version_flags+=" -X k8s.io/component-base/version.gitMajor=$major"
    version_flags+=" -X k8s.io/component-base/version.gitMinor=$minor"
    version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    mkdir -p "$target"
    for component in "$@"; do
        if [[ $component == etcd ]]; then
            step "etcd $ETCD_VERSION" "$target/etcd" _go_build_in_module "$target/etcd" '-s -w' \
                go.etcd.io/etcd/server/v3
        else
            step "$component $KUBERNETES_VERSION" "$target/$component" _go_build_in_module \
                "$target/$component" "-s -w $version_flags" "k8s.io/kubernetes/cmd/$component"
        fi
    done
}

_go_build_in_module() { # output ldflags package
    local src="$build/kubernetes-$KUBERNETES_VERSION"
    require_go
    if [[ -z "$kubernetes_module_ready" ]]; then
        rm -rf "$src"
        mkdir -p "$src"
        timed "prepare the Kubernetes $KUBERNETES_VERSION module (go mod tidy, download)" \
            _kubernetes_module "$src"
        kubernetes_module_ready=1
    fi
    (cd "$src" && go build -trimpath -ldflags "$2" -o "$1.tmp" "$3")
    mv "$1.tmp" "$1"
}

# k8s.io/kubernetes replaces its k8s.io/* dependencies with ./staging paths, so it cannot be
# required as it is; a module of our own requires it and points each of those at its release.
_kubernetes_module() {
    local src=$1 gomod staging_version component
    staging_version="v0.${KUBERNETES_VERSION#1.}"
    gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    {
        echo "module local/control-plane"
        echo
        echo "go 1.24"
        echo
        echo "require ("
        echo "    k8s.io/kubernetes v$KUBERNETES_VERSION"
        echo "    go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
        echo ")"
        echo
        grep -E '^\s*k8s.io/[a-z0-9.-]+ => \./staging/' "$gomod" |
            awk -v v="$staging_version" '{ print "replace " $1 " => " $1 " " v }'
    } >"$src/go.mod"
    {
        printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3"\n'
        for component in kube-apiserver kube-controller-manager kube-scheduler "${NODE_KUBERNETES[@]}"; do
            printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$component"
        done
        printf ')\n'
    } >"$src/tools.go"
    (cd "$src" && go mod tidy)
    (cd "$src" && go mod download)
}

# `go install MODULE/PKG@VERSION` for modules without replace directives, into `output`.
_go_install() { # output cgo package@version [go flags...]
    local output=$1 cgo=$2 package=$3 gobin
    shift 3
    require_go
    gobin=$(mktemp -d "$build/gobin.XXXXXX")
    GOBIN="$gobin" CGO_ENABLED="$cgo" go install -trimpath "$@" "$package"
    mv "$gobin/$(basename "${package%@*}")" "$output"
    rm -rf "$gobin"
}

install_containerd() {
    local target="$bin/containerd-v$CONTAINERD_VERSION" module=github.com/containerd/containerd/v2 command tags
    local flags="-s -w -X $module/version.Version=v$CONTAINERD_VERSION -X $module/version.Package=$module"
    mkdir -p "$target"
    for command in containerd containerd-shim-runc-v2 ctr; do
        tags=urfave_cli_no_docs
        [[ $command == containerd-shim-runc-v2 ]] && tags+=" no_grpc"
        # cgo off: static binaries, without the btrfs snapshotter (which needs cgo; unused).
        step "$command $CONTAINERD_VERSION" "$target/$command" _go_install "$target/$command" 0 \
            "$module/cmd/$command@v$CONTAINERD_VERSION" -tags "$tags" -ldflags "$flags"
    done
}

install_runc() {
    local target="$bin/runc-v$RUNC_VERSION"
    mkdir -p "$target"
    # cgo and libseccomp (Debian's libseccomp-dev) for seccomp filters. runc's Makefile adds the
    # libpathrs tag, a Rust library Debian does not package: runc then uses its Go resolver.
    step "runc $RUNC_VERSION" "$target/runc" _build_runc "$target/runc"
}

_build_runc() {
    pkg-config --exists libseccomp || die "libseccomp-dev is missing: bash scripts/install-system-deps.sh"
    _go_install "$1" 1 "github.com/opencontainers/runc@v$RUNC_VERSION" \
        -tags "seccomp urfave_cli_no_docs" -ldflags "-s -w -X main.version=$RUNC_VERSION"
    "$1" --version | grep -q '^libseccomp: ' || die "runc was built without seccomp"
}

install_cni() {
    local target="$bin/cni-plugins-v$CNI_PLUGINS_VERSION" plugin name
    mkdir -p "$target"
    for plugin in "${CNI_PLUGINS[@]}"; do
        name=$(basename "$plugin")
        step "CNI plugin $name $CNI_PLUGINS_VERSION" "$target/$name" _go_install "$target/$name" 0 \
            "github.com/containernetworking/plugins/plugins/$plugin@v$CNI_PLUGINS_VERSION" \
            -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v$CNI_PLUGINS_VERSION"
    done
}

install_coredns() {
    local target="$bin/coredns-v$COREDNS_VERSION"
    mkdir -p "$target"
    step "CoreDNS $COREDNS_VERSION" "$target/coredns" _go_install "$target/coredns" 0 \
        "github.com/coredns/coredns@v$COREDNS_VERSION" \
        -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v$COREDNS_VERSION"
}

# The pod sandbox's process: holds the pod's namespaces, reaps orphans, exits 0 on SIGINT or
# SIGTERM, as Kubernetes' own pause does; a few lines of Go, so no C toolchain or registry.
PAUSE_SOURCE='package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
'

pause_dir() { echo "$bin/pause-v$PAUSE_VERSION-$(printf '%s' "$PAUSE_SOURCE" | sha256sum | cut -c1-12)"; }

install_pause() {
    local target
    target=$(pause_dir)
    mkdir -p "$target"
    step "pause $PAUSE_VERSION" "$target/pause" _build_pause "$target/pause"
}

_build_pause() {
    local src
    require_go
    src=$(mktemp -d "$build/pause.XXXXXX")
    printf '%s' "$PAUSE_SOURCE" >"$src/main.go"
    printf 'module local/pause\n\ngo 1.21\n' >"$src/go.mod"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$1" .)
    rm -rf "$src"
}

cnpg_dir() { echo "$bin/cloudnative-pg-v$CNPG_VERSION"; }
barman_plugin_dir() { echo "$bin/plugin-barman-cloud-v$BARMAN_PLUGIN_VERSION"; }

# As upstream's release build (.goreleaser.yml): static, stripped, the version stamped in.
install_operator() {
    local target module=github.com/cloudnative-pg/cloudnative-pg versions
    target=$(cnpg_dir)
    versions="$module/pkg/versions"
    mkdir -p "$target"
    step "CloudNativePG manager $CNPG_VERSION" "$target/manager" _build_module "$target/manager" \
        "$module@v$CNPG_VERSION" ./cmd/manager "releases/cnpg-$CNPG_VERSION.yaml" \
        "-s -w -X $versions.buildVersion=$CNPG_VERSION -X $versions.buildCommit=v$CNPG_VERSION"
    target=$(barman_plugin_dir)
    mkdir -p "$target"
    step "Barman Cloud plugin $BARMAN_PLUGIN_VERSION" "$target/manager" _build_module \
        "$target/manager" "github.com/cloudnative-pg/plugin-barman-cloud@v$BARMAN_PLUGIN_VERSION" \
        ./cmd/manager manifest.yaml "-s -w" "${BARMAN_PLUGIN_REPLACES[@]}"
}

# Build `package` of a module as its own main module (its go.mod and go.sum), with `replace`s,
# and keep one file of it (the install manifest) beside the binary.
_build_module() { # output module@version package manifest ldflags [replace...]
    local output=$1 module=$2 package=$3 manifest=$4 ldflags=$5 src replace
    shift 5
    require_go
    src=$(mktemp -d "$build/module.XXXXXX")
    cp -r "$(module_dir "$module")/." "$src"
    chmod -R u+w "$src"
    if (($# > 0)); then
        for replace in "$@"; do
            (cd "$src" && go mod edit -replace "$replace")
        done
        (cd "$src" && GOFLAGS=-mod=mod go mod tidy)
    fi
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$output.tmp" "$package")
    cp "$src/$manifest" "$(dirname "$output")/$(basename "$manifest")"
    mv "$output.tmp" "$output"
    rm -rf "$src"
}

# Prometheus' rule checker and tester, for the tests of the program's alerts. Built without
# the service discovery plugins (remove_all_sd: the cloud SDKs, most of a full build's time),
# which rule files never use.
install_promtool() {
    local target="$bin/promtool-v$PROMETHEUS_VERSION"
    mkdir -p "$target"
    step "promtool $PROMETHEUS_VERSION" "$target/promtool" _go_install "$target/promtool" 0 \
        "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" \
        -tags remove_all_sd \
        -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
}

install_node() {
    install_kubernetes "${NODE_KUBERNETES[@]}"
    install_containerd
    install_runc
    install_cni
    install_coredns
    install_pause
}

# The images are built by Python (debootstrap, apt in overlay layers, Maven's jars), which
# prints and records its own steps the same way.
install_images() {
    local python=python3
    [[ -x "$repo/.venv/bin/python" ]] && python="$repo/.venv/bin/python"
    [[ "$(id -u)" -eq 0 ]] || die "the images are built as root (debootstrap, mount, chroot); run as root"
    (cd "$repo" && "$python" -m standins.images build)
}

# Everything. The images (network and disk: debootstrap, apt, Maven's jars) are built beside
# the Go builds (CPU), in a process of their own with its own cache, so on a cold machine
# their minutes overlap; their output is printed after the Go steps', from a log. The
# operator's binaries go into its images, so they are built first.
images_pid=""
install_all() {
    local images_log images_ok=""
    install_operator
    images_log=$(mktemp "$build/images.XXXXXX.log") # one per run: runs may overlap
    install_images >"$images_log" 2>&1 &
    images_pid=$!
    # A failed Go step ends this script: the images' build finishes (and unmounts) first.
    trap 'wait "$images_pid" 2>/dev/null || true' EXIT
    log "images: building beside the Go builds (log: $images_log)"
    install_pulumi
    install_provider
    install_kubernetes "${CONTROL_PLANE[@]}"
    install_node
    install_promtool
    log "images: waiting for their build"
    wait "$images_pid" && images_ok=1
    trap - EXIT
    sed 's/^/  /' "$images_log" >&2
    rm -f "$images_log"
    [[ -n "$images_ok" ]] || die "the images did not build (their log above)"
}

main() {
    local what=${1:-all} start=$SECONDS
    case "$what" in
    path)
        case "${2:-}" in
        pulumi) echo "$bin/pulumi-v$PULUMI_VERSION/bin/pulumi" ;;
        provider) echo "$bin/pulumi-resource-kubernetes-v$PROVIDER_VERSION/pulumi-resource-kubernetes" ;;
        control-plane | kubernetes) kubernetes_dir ;;
        containerd) echo "$bin/containerd-v$CONTAINERD_VERSION" ;;
        runc) echo "$bin/runc-v$RUNC_VERSION" ;;
        cni) echo "$bin/cni-plugins-v$CNI_PLUGINS_VERSION" ;;
        coredns) echo "$bin/coredns-v$COREDNS_VERSION" ;;
        pause) pause_dir ;;
        cnpg) cnpg_dir ;;
        barman-plugin) barman_plugin_dir ;;
        images) echo "$cache/images" ;;
        promtool) echo "$bin/promtool-v$PROMETHEUS_VERSION/promtool" ;;
        *) die "usage: $0 path pulumi|provider|control-plane|containerd|runc|cni|coredns|pause|cnpg|barman-plugin|images|promtool" ;;
        esac
        return
        ;;
    versions)
        printf '%s\n' "kubernetes $KUBERNETES_VERSION" "etcd $ETCD_VERSION" \
            "containerd $CONTAINERD_VERSION" "runc $RUNC_VERSION" "cni-plugins $CNI_PLUGINS_VERSION" \
            "coredns $COREDNS_VERSION" "pause $PAUSE_VERSION" "cloudnative-pg $CNPG_VERSION" \
            "plugin-barman-cloud $BARMAN_PLUGIN_VERSION" "prometheus $PROMETHEUS_VERSION"
        return
        ;;
    esac
    mkdir -p "$bin" "$build"
    case "$what" in
    pulumi) install_pulumi ;;
    provider) install_provider ;;
    control-plane) install_kubernetes "${CONTROL_PLANE[@]}" ;;
    node) install_node ;;
    operator) install_operator ;;
    images) install_images ;;
    promtool) install_promtool ;;
    all)
        install_all
        ;;
    *) die "usage: $0 [pulumi|provider|control-plane|node|operator|images|promtool|all] | path PART | versions" ;;
    esac
    print_summary
    log "ready in $((SECONDS - start)) s (cache: $cache)"
}

main "$@"
