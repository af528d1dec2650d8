#!/usr/bin/env bash
# Download the Flyway command-line jars (PostgreSQL only) from Maven Central for the contract
# tests, into <repo>/.cache/flyway/VERSION/lib/. Idempotent: once complete, a marker file makes
# later runs instant and offline.
#
#   bash scripts/fetch-flyway.sh 11.20.3
#   java -cp '.cache/flyway/11.20.3/lib/*' org.flywaydb.commandline.Main -v
#
# The Maven local repository lives in <repo>/.cache/m2 so CI can cache .cache/ as a whole.
set -euo pipefail

die() {
    echo "fetch-flyway: ERROR: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 VERSION   (e.g. $0 11.20.3)"
version="$1"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "VERSION must look like X.Y.Z (a released Flyway version), got '$version'"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$repo_root/scripts/flyway/pom.xml"
dest="$repo_root/.cache/flyway/$version"
lib="$dest/lib"
marker="$dest/COMPLETE"
m2="$repo_root/.cache/m2"

if [[ -f "$marker" && -f "$lib/flyway-commandline-$version.jar" ]]; then
    echo "fetch-flyway: Flyway $version already present in $lib"
    exit 0
fi

command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is not on PATH; install it (apt-get install maven)"
command -v java >/dev/null 2>&1 || die "java is not on PATH; install a JDK/JRE >= 17"
[[ -f "$pom" ]] || die "missing $pom"

mkdir -p "$dest" "$m2"
tmp="$(mktemp -d "$dest/lib.tmp.XXXXXX")"
log="$dest/mvn.log"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

resolve() { # extra mvn arguments...
    rm -rf "${tmp:?}"/*
    if ! mvn -B -q -f "$pom" \
        -Dmaven.repo.local="$m2" \
        -Dflyway.version="$version" \
        -DoutputDirectory="$tmp" \
        -DincludeScope=runtime \
        "$@" \
        dependency:copy-dependencies >"$log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$log" | tail -n 40 >&2 || true
        die "Maven could not resolve Flyway $version (full log: $log). Is $version a released \
version whose artifacts are all on Maven Central? Try an older one."
    fi
}

echo "fetch-flyway: resolving Flyway $version from Maven Central (local repo $m2) ..."
start=$SECONDS
resolve
if ! compgen -G "$tmp/jackson-dataformat-xml-*.jar" >/dev/null; then
    # See the jackson-xml profile in the pom.
    databind="$(cd "$tmp" && compgen -G 'jackson-databind-*.jar' | head -n 1)" ||
        die "jackson-databind is missing from the resolved jars"
    databind="${databind#jackson-databind-}"
    resolve -Djackson.xml.version="${databind%.jar}"
fi
rm -rf "$repo_root/scripts/flyway/target"

for jar in "flyway-commandline-$version.jar" "flyway-core-$version.jar" \
    "flyway-database-postgresql-$version.jar"; do
    [[ -f "$tmp/$jar" ]] || die "resolution finished but $jar is missing from $tmp"
done
compgen -G "$tmp/postgresql-*.jar" >/dev/null || die "PostgreSQL JDBC driver jar is missing"

# Smoke test: Main must start and report the expected version (catches mixed-up transitive
# versions such as a jackson-core older than jackson-databind).
smoke_dir="$(mktemp -d)"
if ! smoke="$(cd "$smoke_dir" && HOME="$smoke_dir" java -cp "$tmp/*" \
    org.flywaydb.commandline.Main -v 2>&1)"; then
    rm -rf "$smoke_dir"
    echo "$smoke" | tail -n 20 >&2
    die "java -cp '<jars>/*' org.flywaydb.commandline.Main -v failed for Flyway $version"
fi
rm -rf "$smoke_dir"
grep -q "Flyway .*$version" <<<"$smoke" ||
    die "Main -v did not report version $version: $smoke"

rm -rf "$lib"
mv "$tmp" "$lib"
chmod 755 "$lib"
{
    echo "flyway $version"
    (cd "$lib" && ls -1 -- *.jar)
} >"$marker"
rm -f "$log"
echo "fetch-flyway: Flyway $version ready in $lib ($(find "$lib" -name '*.jar' | wc -l) jars, \
$((SECONDS - start))s)"
