#!/usr/bin/env bash
# Builds the release binary and runs the iCalendar conformance corpus on it.
# Every `core` and `robustness` case must pass; exits non-zero otherwise.
#
#   scripts/check-ics.sh                 core + robustness (what CI requires)
#   TIERS=core,disputed scripts/check-ics.sh -v
#
# CALSYNC_CONFORMANCE points at the corpus (default ../shared/conformance/ics
# next to the project); CARGO_TARGET_DIR is honoured.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpus="${CALSYNC_CONFORMANCE:-$root/../shared/conformance/ics}"
target="${CARGO_TARGET_DIR:-$root/target}"
tiers="${TIERS:-core,robustness}"

if [[ ! -f "$corpus/check.py" ]]; then
    echo "check-ics: no conformance corpus at $corpus (set CALSYNC_CONFORMANCE)" >&2
    exit 2
fi

(cd "$root" && cargo build --release --locked -p calsync-server)
bin="$target/release/calsync"

python3 "$corpus/check.py" \
    --cmd "$bin ics expand {ics} --from {start} --to {end} --format jsonl" \
    --tier "$tiers" "$@"
