#!/usr/bin/env bash
# Benchmarks for docs/BENCHMARKS.md, sections "Foundation", "Google sync" and "Microsoft sync".
#
#   bench/run.sh [--skip-clean-build] [--calsync PATH] [sync-bench options...]
#
# 1. (unless --skip-clean-build) times `cargo build --release -p calsync-server`
#    in an empty target folder ($BENCH_CLEAN_TARGET, default /tmp/calsync-bench-target);
# 2. builds the release `calsync` and the driver (bench/sync-bench) in
#    $CARGO_TARGET_DIR (default ./target), or measures the binary given with --calsync;
# 3. runs the driver: idle RSS and `GET /api/calendar/events/upcoming/` under wrk
#    on an empty database, then the Google emulator: initial sync of 10,000 events,
#    no-change syncs, a 90,000-event calendar and upcoming events over 100,000
#    events; then the Microsoft emulator: initial delta round of 10,000 events
#    and no-change deltas; on SQLite and on PostgreSQL ($BENCH_POSTGRES_URL, default
#    postgres://127.0.0.1:5432/test; a fresh database is created and dropped).
#
# Options after the ones above go to the driver (see `sync-bench --help`), e.g.
#   bench/run.sh --skip-clean-build --backends sqlite --events 2500 --bulk-events 0
#   bench/run.sh --skip-clean-build --parts microsoft --backends sqlite
set -euo pipefail
cd "$(dirname "$0")/.."

clean_build=1
calsync=""
passthrough=()
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-clean-build) clean_build=0 ;;
        --calsync) calsync="$2"; shift ;;
        *) passthrough+=("$1") ;;
    esac
    shift
done

need() { # command, Debian package
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2 (for $1)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    else sudo apt-get install -y "$2" >/dev/null; fi
}
need wrk wrk
need /usr/bin/time time
need psql postgresql-client
need getconf libc-bin

target="${CARGO_TARGET_DIR:-target}"
summary=()

if [ "$clean_build" = 1 ]; then
    clean="${BENCH_CLEAN_TARGET:-/tmp/calsync-bench-target}"
    rm -rf "$clean"
    echo "== clean release build into $clean (several minutes on 2 cores)"
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    timing=$(mktemp)
    CARGO_TARGET_DIR="$clean" /usr/bin/time -o "$timing" -f "%e %U %S" \
        cargo build --release -p calsync-server --quiet
    read -r wall user sys < "$timing"
    rm -f "$timing"
    build=$(awk -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f s wall, %.0f s CPU (user+sys)", w, u + s }')
    summary+=("| Foundation | - | release build from clean (\`cargo build --release -p calsync-server\`), load average before ${load_before} | $build |")
fi

echo "== release build of calsync and the driver into $target"
cargo build --release -p calsync-server -p calsync-sync-bench --quiet
if [ -z "$calsync" ]; then calsync="$target/release/calsync"; fi
size=$(stat -c %s "$calsync")
summary+=("| Foundation | - | binary size ($calsync) | $(awk -v s="$size" 'BEGIN { printf "%.1f MiB (%d bytes)", s / 1048576, s }') |")

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(mktemp)
"$target/release/sync-bench" --calsync "$calsync" \
    --postgres-url "${BENCH_POSTGRES_URL:-postgres://127.0.0.1:5432/test}" \
    "${passthrough[@]}" | tee "$out"

echo
echo "== summary"
echo "| section | backend | figure | value |"
echo "|---|---|---|---|"
printf '%s\n' "${summary[@]}"
sed -n '/^| section /,$p' "$out" | tail -n +3
rm -f "$out"
