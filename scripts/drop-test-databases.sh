#!/usr/bin/env bash
# Drops the calsync_test_* databases that earlier test runs left on the
# PostgreSQL test server, so they do not pile up on a long-lived machine.
set -euo pipefail
url="${CALSYNC_TEST_POSTGRES_URL:-postgres://127.0.0.1:5432/test}"
command -v psql >/dev/null 2>&1 || { echo "psql not found; leaving test databases"; exit 0; }
names=$(psql "$url" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'calsync\_test\_%'" 2>/dev/null) || {
  echo "PostgreSQL at $url unreachable; nothing to drop"
  exit 0
}
for name in $names; do
  psql "$url" -qc "DROP DATABASE IF EXISTS \"$name\"" >/dev/null
done
echo "dropped $(printf '%s\n' $names | grep -c . || true) test databases"
