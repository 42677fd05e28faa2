#!/usr/bin/env bash
# The whole check, as CI runs it: format, lints, the test suite on SQLite and
# PostgreSQL, and the iCalendar conformance corpus. Run from anywhere.
#
# PostgreSQL: tests create fresh databases on CALSYNC_TEST_POSTGRES_URL
# (default postgres://127.0.0.1:5432/test). A test whose dependency is
# missing (PostgreSQL, Radicale, Chromium, the iCalendar corpus) fails;
# CALSYNC_TEST_ALLOW_MISSING=1 turns those into skips with a note, for a
# developer without them (never set in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "install what the tests need"
scripts/setup.sh

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "forget test databases of earlier runs"
scripts/drop-test-databases.sh

step "tests (SQLite and PostgreSQL)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

step "OpenAPI document is current"
cargo run --quiet --locked -p calsync-server -- openapi | diff -u docs/openapi.json - \
  || { echo "docs/openapi.json is stale: run scripts/openapi.sh"; exit 1; }

if [ -x scripts/check-ics.sh ]; then
  step "iCalendar conformance (core and robustness tiers)"
  scripts/check-ics.sh
fi

step "TypeScript client"
scripts/test-typescript.sh

step "all checks passed"
