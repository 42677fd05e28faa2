#!/usr/bin/env bash
# Regenerates docs/openapi.json from the running code's description of its API.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p calsync-server -- openapi > docs/openapi.json
echo "wrote docs/openapi.json"
