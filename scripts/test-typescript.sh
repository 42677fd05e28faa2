#!/usr/bin/env bash
# The TypeScript client's checks (clients/typescript/), as CI runs them from
# scripts/test.sh. Run from anywhere:
#   1. its npm packages from the lockfile (npm ci), unless node_modules is
#      already an install of that lockfile,
#   2. src/schema.d.ts is exactly what openapi-typescript makes of the
#      committed docs/openapi.json (scripts/test.sh checks that the server
#      still writes that document: together, server, document and types agree),
#   3. type-check and build (tsc: ESM + .d.ts into dist/), then the tests,
#   4. node --test against the real calsync and its Google emulator.
# The binary: $CALSYNC_BIN, else $CARGO_TARGET_DIR/debug/calsync, built with
# cargo when it is missing (scripts/test.sh's cargo tests have just built it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}"
export CALSYNC_BIN="${CALSYNC_BIN:-$CARGO_TARGET_DIR/debug/calsync}"

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is required for the TypeScript client's tests" >&2; exit 1; }
done

cd clients/typescript
if [ ! -d node_modules ] || [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "-- npm ci (from package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "-- src/schema.d.ts matches docs/openapi.json"
generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT
node scripts/generate-schema.mjs ../../docs/openapi.json "$generated"
diff -u src/schema.d.ts "$generated" \
  || { echo "clients/typescript/src/schema.d.ts is stale: run scripts/openapi.sh (or npm run generate in clients/typescript)"; exit 1; }

echo "-- type-check and build"
rm -rf dist build-test
npm run --silent build
npm run --silent build:test

if [ ! -x "$CALSYNC_BIN" ]; then
  echo "-- building calsync (no binary at $CALSYNC_BIN)"
  (cd ../.. && cargo build --quiet --locked -p calsync-server)
fi

echo "-- node --test (calsync: $CALSYNC_BIN)"
node --test --test-concurrency=1 build-test/test/*.test.js
