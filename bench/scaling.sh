#!/usr/bin/env bash
# Initial-sync scaling (2,500 to 20,000 events, SQLite and PostgreSQL) and the
# request count with Google-like uneven pages, as recorded in
# docs/BENCHMARKS.md ("Google sync"). Needs the release driver and calsync:
#   cargo build --release -p calsync-server -p calsync-sync-bench
#   SYNC_BENCH=target/release/sync-bench CALSYNC=target/release/calsync bench/scaling.sh
set -euo pipefail
B="${SYNC_BENCH:-${CARGO_TARGET_DIR:-target}/release/sync-bench}"
C="${CALSYNC:-${CARGO_TARGET_DIR:-target}/release/calsync}"
for n in 2500 5000 10000 20000; do
  for be in sqlite postgres; do
    echo "### --events $n --backends $be"
    "$B" --calsync "$C" --parts google --backends "$be" --events "$n" --bulk-events 0 --no-change-runs 3 --wrk-secs 1 | grep -E "load average|initial sync"
  done
done
echo "### uneven pages"
"$B" --calsync "$C" --parts google --backends sqlite --events 10000 --bulk-events 0 --no-change-runs 3 --wrk-secs 1 --uneven-pages | grep -E "load average|initial sync|no-change"
