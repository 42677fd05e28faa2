#!/usr/bin/env bash
# CalDAV sync benchmark: initial and no-change sync of a 5,000-event Radicale
# calendar by calsync and by vdirsyncer (into a local folder), side by side
# in one run: requests to Radicale, wall time, CPU, peak RSS.
#
#   bench/caldav/bench.sh [bench.py options]
#       --resources N        calendar size (default 5000)
#       --repeat N           no-change rounds per tool, median reported (default 3)
#       --vdirsyncer-first   run vdirsyncer's rounds before calsync's
#   CALSYNC=/path/to/calsync bench/caldav/bench.sh   # skip the cargo build
#
# Installs vdirsyncer (pinned) into bench/caldav/.venv (gitignored), GNU time
# with apt-get when /usr/bin/time is missing, and checks Radicale
# (python3 -m radicale, as scripts/setup.sh installs it). Builds the release
# binary into CARGO_TARGET_DIR (default ~/.cache/calsync-bench-target, a
# target folder of the benchmark's own). Prints a Markdown table and appends
# the raw numbers to bench/results/caldav-<date>.txt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
VDIRSYNCER_VERSION=0.21.0

[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import radicale" 2>/dev/null || python3 -m pip install -q radicale
if [[ ! -x "$here/.venv/bin/vdirsyncer" ]] || [[ "$("$here/.venv/bin/vdirsyncer" --version)" != *"$VDIRSYNCER_VERSION"* ]]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install -q "vdirsyncer==$VDIRSYNCER_VERSION"
fi

if [[ -z "${CALSYNC:-}" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/calsync-bench-target}"
    (cd "$root" && cargo build --release -p calsync-server)
    CALSYNC="$CARGO_TARGET_DIR/release/calsync"
fi

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
out="$root/bench/results/caldav-$(date -u +%Y-%m-%d).txt"
mkdir -p "$root/bench/results"
{
    echo "## run $(date -u +%Y-%m-%dT%H:%M:%SZ), checkout $commit, calsync $CALSYNC, args: $*"
} >> "$out"
python3 "$here/bench.py" --calsync "$CALSYNC" --vdirsyncer "$here/.venv/bin/vdirsyncer" --out "$out" "$@"
