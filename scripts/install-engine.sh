#!/usr/bin/env bash
# Install the real deployment path, pinned and idempotent:
#   the Pulumi CLI, the kubernetes resource provider, and a local Kubernetes control plane
#   (etcd, kube-apiserver, kube-controller-manager).
#
#   bash scripts/install-engine.sh [pulumi|provider|control-plane|all]   (default: all)
#
# An installed `pulumi` of at least PULUMI_VERSION is used as it is. Everything else is built
# from the Go module proxy (the only source of these binaries that needs no download site)
# into a cache outside the clone, keyed by version, so a fresh clone reuses it:
#   ${TRADESTREAM_CACHE:-~/.cache/tradestream-database}/bin/<name>-<version>/
# `bash scripts/install-engine.sh path pulumi|provider|control-plane` prints where each is.
# A cold build takes about 35 minutes on two cores; a warm one returns at once.
set -euo pipefail

PULUMI_VERSION=3.276.0
# The provider's Go module is published under a pseudo-version; this one is release 4.25.0.
PROVIDER_VERSION=4.25.0
PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
KUBERNETES_VERSION=1.34.2
ETCD_VERSION=3.6.4

cache="${TRADESTREAM_CACHE:-$HOME/.cache/tradestream-database}"
bin="$cache/bin"
build="$cache/build"

log() { printf 'install-engine: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

timed() { # name command...
    local name=$1 start=$SECONDS
    shift
    log "$name ..."
    "$@"
    log "$name done in $((SECONDS - start)) s"
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
    if [[ -x "$target" ]]; then
        log "Pulumi CLI $PULUMI_VERSION cached at $target"
        return
    fi
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
    if [[ -x "$target" ]]; then
        log "kubernetes provider $PROVIDER_VERSION cached at $target"
        return
    fi
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

install_control_plane() {
    local target="$bin/kubernetes-v$KUBERNETES_VERSION-etcd-v$ETCD_VERSION"
    if [[ -x "$target/kube-apiserver" ]] && ! "$target/kube-apiserver" --version | grep -q "v$KUBERNETES_VERSION\$"; then
        rm -rf "$target" # built before the version was stamped in
    fi
    if [[ -x "$target/kube-apiserver" && -x "$target/kube-controller-manager" && -x "$target/etcd" ]]; then
        log "control plane (Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION) cached at $target"
        return
    fi
    require_go
    local src="$build/control-plane-$KUBERNETES_VERSION"
    rm -rf "$src"
    mkdir -p "$src"
    timed "prepare the control-plane module" _control_plane_module "$src"
    local component version_flags major=${KUBERNETES_VERSION%%.*} minor
    minor=${KUBERNETES_VERSION#*.}
    minor=${minor%%.*}
    # The API server reports this version, and clients (the Pulumi provider among them) read it.
    version_flags="-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION"
    version_flags+=" -X k8s.io/component-base/version.gitMajor=$major"
    version_flags+=" -X k8s.io/component-base/version.gitMinor=$minor"
    version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    for component in kube-apiserver kube-controller-manager; do
        timed "build $component $KUBERNETES_VERSION" \
            bash -c "cd '$src' && go build -trimpath -ldflags '-s -w $version_flags' -o '$src/out/$component' k8s.io/kubernetes/cmd/$component"
    done
    timed "build etcd $ETCD_VERSION" \
        bash -c "cd '$src' && go build -trimpath -ldflags '-s -w' -o '$src/out/etcd' go.etcd.io/etcd/server/v3"
    mkdir -p "$target"
    mv "$src/out/"* "$target/"
    rm -rf "$src"
}

# k8s.io/kubernetes replaces its k8s.io/* dependencies with ./staging paths, so it cannot be
# required as it is; a module of our own requires it and points each of those at its release.
_control_plane_module() {
    local src=$1 gomod staging_version
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
    cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
    (cd "$src" && go mod tidy)
    (cd "$src" && go mod download)
}

main() {
    local what=${1:-all} start=$SECONDS
    case "$what" in
    path)
        case "${2:-}" in
        pulumi) echo "$bin/pulumi-v$PULUMI_VERSION/bin/pulumi" ;;
        provider) echo "$bin/pulumi-resource-kubernetes-v$PROVIDER_VERSION/pulumi-resource-kubernetes" ;;
        control-plane) echo "$bin/kubernetes-v$KUBERNETES_VERSION-etcd-v$ETCD_VERSION" ;;
        *) die "usage: $0 path pulumi|provider|control-plane" ;;
        esac
        return
        ;;
    pulumi) install_pulumi ;;
    provider) install_provider ;;
    control-plane) install_control_plane ;;
    all)
        install_pulumi
        install_provider
        install_control_plane
        ;;
    *) die "usage: $0 [pulumi|provider|control-plane|all] | path pulumi|provider|control-plane" ;;
    esac
    log "ready in $((SECONDS - start)) s (cache: $cache)"
}

main "$@"
