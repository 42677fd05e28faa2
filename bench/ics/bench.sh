#!/usr/bin/env bash
# Side-by-side benchmark: parse + expand one year of a large calendar with
# calsync, Python icalendar + recurring-ical-events, and Node ical.js.
# Installs the other two into bench/ics/.venv and bench/ics/node_modules
# (gitignored), runs each under /usr/bin/time -v, and checks that the
# occurrence lists agree.
#
#   bench/ics/bench.sh [FILE.ics] [FROM] [TO]
#
# Without FILE, generates out/large.ics (20,000 VEVENTs) with gen.py.
# CALSYNC points at the binary (default: release build in CARGO_TARGET_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"
mkdir -p out

file="${1:-out/large.ics}"
from="${2:-2026-01-01T00:00:00Z}"
to="${3:-2027-01-01T00:00:00Z}"
[[ -f "$file" ]] || python3 gen.py "$file"

calsync="${CALSYNC:-${CARGO_TARGET_DIR:-$root/target}/release/calsync}"
if [[ -z "${CALSYNC:-}" ]]; then
    (cd "$root" && cargo build --release -p calsync-server)
fi
[[ -x .venv/bin/python ]] || { python3 -m venv .venv && .venv/bin/pip install -q icalendar recurring-ical-events; }
[[ -d node_modules/ical.js ]] || npm install --no-audit --no-fund --silent

run() { # name, output, command...
    local name="$1" out="$2"; shift 2
    /usr/bin/time -v "$@" > "$out" 2> "out/$name.time" || { echo "$name failed:"; tail -5 "out/$name.time"; return 1; }
    local wall rss n
    wall=$(grep "Elapsed (wall clock)" "out/$name.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "out/$name.time" | awk '{print $NF}')
    n=$(wc -l < "$out")
    python3 - "$name" "$wall" "$rss" "$n" <<'PY'
import sys
name, wall, rss, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print(f"{name:10} {secs:8.2f} s  {n / secs:12,.0f} occ/s  {rss / 1024:8.1f} MiB  {n:8d} occurrences")
PY
}

echo "file: $file ($(du -h "$file" | cut -f1), $(grep -c '^BEGIN:VEVENT' "$file") VEVENTs), range [$from, $to)"
echo "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run calsync out/calsync.jsonl "$calsync" ics expand "$file" --from "$from" --to "$to" --format jsonl
run python out/python.jsonl .venv/bin/python py_expand.py "$file" "$from" "$to"
run icaljs out/icaljs.jsonl node js_expand.mjs "$file" "$from" "$to"
echo
python3 compare.py out/python.jsonl out/calsync.jsonl || true
python3 compare.py out/python.jsonl out/icaljs.jsonl || true
