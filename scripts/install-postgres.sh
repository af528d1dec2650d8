#!/usr/bin/env bash
# Make sure PostgreSQL >= 15 binaries (initdb, pg_ctl, postgres, psql) exist under
# /usr/lib/postgresql/<major>/bin, for the contract tests. Idempotent: does nothing when they do.
# The tests start their own throwaway clusters; the Debian package's system cluster is
# stopped again after installation, nothing depends on it.
set -euo pipefail

min_major=15

find_bindir() {
    local dir major best="" best_major=0
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -d "$dir" ]] || continue
        major="$(basename "$(dirname "$dir")")"
        [[ "$major" =~ ^[0-9]+$ ]] || continue
        ((major >= min_major)) || continue
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" && -x "$dir/psql" ]] || continue
        if ((major > best_major)); then
            best="$dir"
            best_major="$major"
        fi
    done
    [[ -n "$best" ]] && echo "$best"
}

describe() {
    echo "$1 PostgreSQL server binaries: $2 ($("$2/postgres" --version))"
}

if bindir="$(find_bindir)"; then
    describe "install-postgres: found" "$bindir"
    exit 0
fi

# As root here; through passwordless sudo elsewhere (hosted CI runners).
as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-postgres: ERROR: no PostgreSQL >= $min_major server binaries under" \
            "/usr/lib/postgresql/*/bin and no root rights to install them. Run:" \
            "sudo apt-get install -y --no-install-recommends postgresql" >&2
        exit 1
    fi
fi

echo "install-postgres: installing Debian package 'postgresql' ..."
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null

# The package creates and (where an init system runs) starts a 'main' cluster. The tests never
# use it; stop it so it holds no port or memory. Failure to stop is not an error.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
        if [[ "$status" == online* ]]; then
            "${as_root[@]}" pg_ctlcluster "$ver" "$name" stop || true
        fi
    done
fi

if ! bindir="$(find_bindir)"; then
    echo "install-postgres: ERROR: installed 'postgresql' but found no PostgreSQL >= $min_major" \
        "server binaries under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
describe "install-postgres: installed" "$bindir"
