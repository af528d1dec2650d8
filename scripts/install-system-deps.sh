#!/usr/bin/env bash
# Install the system tools the tests and the local stack need, from Debian's packages, only
# where missing:
#   PostgreSQL >= 15 (server and client)  package postgresql         (scripts/install-postgres.sh)
#   Java >= 17 (runs Flyway)               package openjdk-17-jre-headless
#   Maven (fetches Flyway's jars)          package maven
#   ShellCheck (checks the scripts)        package shellcheck
#   the local cluster's node: a C compiler and libseccomp (runc is built with seccomp),
#   debootstrap (its images' Debian root filesystems), iptables (kube-proxy), iproute2,
#   util-linux's unshare and nsenter (the node's own namespaces), openssl (its certificates)
# and checks Go (builds actionlint and the engine): Go >= 1.21 fetches the newer toolchain a
# module asks for from the module proxy by itself; an older one is refused with the fix.
# apt-get runs as root, or through passwordless sudo; it prints each package it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'install-system-deps: %s\n' "$*" >&2; }

java_major() {
    java -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p'
}

missing=()
if ! command -v java >/dev/null 2>&1 || (($(java_major) < 17)); then
    missing+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists libseccomp 2>/dev/null || missing+=(libseccomp-dev)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if ((${#missing[@]} > 0)); then
    as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            log "ERROR: missing ${missing[*]} and no root rights to install them. Run:"
            log "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
            exit 1
        fi
    fi
    log "installing Debian packages (as root): ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/install-postgres.sh

if ! command -v go >/dev/null 2>&1; then
    log "ERROR: Go is not on PATH. Install Go >= 1.21 (https://go.dev/doc/install); it builds"
    log "  actionlint and the deployment engine from the Go module proxy."
    exit 1
fi
go_version=$(go env GOVERSION)
go_version=${go_version#go}
if [[ "$(printf '%s\n1.21\n' "$go_version" | sort -V | head -1)" != "1.21" ]]; then
    log "ERROR: Go $go_version is too old (Debian 12's golang is 1.19). Install Go >= 1.21"
    log "  (https://go.dev/doc/install); newer toolchains then come from the module proxy."
    exit 1
fi
log "java $(java_major), $(mvn -B -v 2>/dev/null | head -1), shellcheck $(shellcheck --version | sed -n 's/^version: //p'), go $go_version"
