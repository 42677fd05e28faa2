#!/usr/bin/env bash
# Regenerates docs/openapi.json from the running code's description of its API,
# and the TypeScript client's types from it (clients/typescript/src/schema.d.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
# Through a temporary file: a failed build must not leave an empty document.
generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT
cargo run --quiet -p calsync-server -- openapi > "$generated"
mv "$generated" docs/openapi.json
echo "wrote docs/openapi.json"
if command -v npm >/dev/null 2>&1; then
  (
    cd clients/typescript
    [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
      || npm ci --no-audit --no-fund --loglevel=error
    node scripts/generate-schema.mjs
  )
  echo "wrote clients/typescript/src/schema.d.ts"
else
  echo "npm not found: clients/typescript/src/schema.d.ts was not regenerated" >&2
  exit 1
fi
