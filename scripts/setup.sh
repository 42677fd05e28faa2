#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, idempotently:
# nothing is fetched when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need python3; then
  echo "python3 is required (the iCalendar conformance check runs on it)" >&2
  exit 1
fi
if ! need psql && [ "$(id -u)" = 0 ] && need apt-get; then
  apt-get install -y --no-install-recommends postgresql-client >/dev/null
fi
echo "test prerequisites present"
