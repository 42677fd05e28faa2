#!/usr/bin/env bash
# Sync capacity for docs/BENCHMARKS.md ("Sync capacity"): how many connections
# one `calsync serve` carries at a 5-minute interval, against the emulator with
# 100-300 ms per provider request; CPU, RSS, schedule lag, rounds per second.
#
#   bench/capacity.sh [RUN...] [-- sync-bench options...]
#
# RUN is any of `sqlite`, `postgres` (one instance each) and `postgres-3`
# (three instances on one PostgreSQL database, 3 x N connections); default
# `sqlite postgres`. Environment:
#
#   N=10000          connections per instance (N=1000 for a quick check)
#   DURATION=600     measured seconds (after set-up, first rounds and settling)
#   CALSYNC=PATH     measure this binary (and SYNC_BENCH=PATH as the driver)
#                    instead of building both
#   OUT=bench/results  where the raw outputs go
#
# Unless CALSYNC is given, both binaries are built (release) from an export of
# HEAD (`git archive`), so that the results name a commit: uncommitted changes
# are not measured. CARGO_TARGET_DIR (default ~/.cache/calsync-target) is
# shared with the other builds; the binaries are copied aside at once.
#
# Each run writes OUT/<date>-<commit>-capacity-<run>-<N>.txt (the driver's
# whole output, with its timings), .json (the figures) and .csv (per-second
# samples of every instance), and prints how long it took.
#
# Examples:
#   N=1000 DURATION=300 bench/capacity.sh sqlite
#   bench/capacity.sh sqlite postgres postgres-3
#   bench/capacity.sh postgres -- --latency 50,150 --sync-concurrency 64
set -euo pipefail
cd "$(dirname "$0")/.."

runs=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; extra=("$@"); break ;;
        sqlite|postgres|postgres-3) runs+=("$1") ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "unknown run $1 (sqlite, postgres, postgres-3; options for the driver after --)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#runs[@]} -gt 0 ] || runs=(sqlite postgres)

n="${N:-10000}"
duration="${DURATION:-600}"
out="${OUT:-bench/results}"
mkdir -p "$out"
commit=$(git rev-parse --short HEAD)
day=$(date -u +%F)

need() { # command, Debian package
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2 (for $1)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    else sudo apt-get install -y "$2" >/dev/null; fi
}
need psql postgresql-client
need getconf libc-bin

if [ -n "${CALSYNC:-}" ]; then
    calsync="$CALSYNC"
    bench="${SYNC_BENCH:-${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}/release/sync-bench}"
    commit="$commit-given"
else
    if [ -n "$(git status --porcelain -- crates bench/sync-bench Cargo.toml Cargo.lock)" ]; then
        echo "note: the working tree has uncommitted changes; measuring HEAD ($commit) without them" >&2
    fi
    work="${TMPDIR:-/tmp}/cs-capacity-$commit"
    rm -rf "$work/src"
    mkdir -p "$work/src" "$work/bin"
    git archive HEAD | tar -x -C "$work/src"
    target="${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}"
    echo "== release build of $commit (calsync + sync-bench) into $target"
    started=$(date +%s)
    (cd "$work/src" && CARGO_TARGET_DIR="$target" cargo build --release --quiet -p calsync-server -p calsync-sync-bench)
    # Copied under other names: a `pkill calsync` or `killall calsync` of
    # another session on a shared machine would otherwise end the run.
    cp "$target/release/calsync" "$work/bin/cs-capacity"
    cp "$target/release/sync-bench" "$work/bin/cs-capacity-bench"
    echo "   built in $(( $(date +%s) - started )) s"
    calsync="$work/bin/cs-capacity"
    bench="$work/bin/cs-capacity-bench"
fi

for run in "${runs[@]}"; do
    case "$run" in
        sqlite) backend=sqlite; instances=1 ;;
        postgres) backend=postgres; instances=1 ;;
        postgres-3) backend=postgres; instances=3 ;;
    esac
    base="$out/$day-$commit-capacity-$run-$n"
    echo "== $run: $instances instance(s) x $n connections, $duration s measured -> $base.txt"
    started=$(date +%s)
    {
        echo "# bench/capacity.sh $run, N=$n, DURATION=$duration, commit $commit, $(date -u +%FT%TZ)"
        echo "# $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r), $(rustc --version 2>/dev/null || true)"
        [ "$backend" = postgres ] && echo "# $(psql "${BENCH_POSTGRES_URL:-postgres://127.0.0.1:5432/test}" -Atc 'select version()' 2>/dev/null || true)"
        "$bench" --calsync "$calsync" --parts capacity --backends "$backend" \
            --postgres-url "${BENCH_POSTGRES_URL:-postgres://127.0.0.1:5432/test}" \
            --connections "$n" --instances "$instances" --duration "$duration" \
            --json "$base.json" --samples "$base.csv" "${extra[@]}"
        echo "# run took $(( $(date +%s) - started )) s"
    } 2>&1 | tee "$base.txt"
    echo "== $run took $(( $(date +%s) - started )) s"
done
