#!/usr/bin/env node
// Generates src/schema.d.ts from the server's OpenAPI document with
// openapi-typescript: the one source of the client's request and response types.
//
//   node scripts/generate-schema.mjs [INPUT [OUTPUT]]
//
// INPUT defaults to ../../docs/openapi.json (the committed document, written by
// `calsync openapi`), OUTPUT to src/schema.d.ts; `-` as OUTPUT prints to stdout.
//
// One pre-pass: OpenAPI requires operationIds to be unique, and openapi-typescript
// turns each into a member of `operations`; two operations with the same id
// (e.g. both list handlers called `list`) would collapse into a conflicting
// interface member. Duplicated ids are therefore prefixed with the operation's
// first tag (`connections_list`, `calendars_list`). Unique ids pass unchanged,
// so the pass does nothing once the server names them apart. The client itself
// types requests through `paths`, never through operation ids.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const input = path.resolve(process.argv[2] ?? path.join(root, "../../docs/openapi.json"));
const output = process.argv[3] ?? path.join(root, "src/schema.d.ts");

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const doc = JSON.parse(fs.readFileSync(input, "utf8"));
const operations = Object.values(doc.paths ?? {}).flatMap((item) =>
  METHODS.filter((m) => item[m]).map((m) => item[m]),
);
const count = new Map();
for (const op of operations) {
  if (op.operationId) count.set(op.operationId, (count.get(op.operationId) ?? 0) + 1);
}
for (const op of operations) {
  if (op.operationId && count.get(op.operationId) > 1) {
    const tag = (op.tags?.[0] ?? "untagged").replace(/[^A-Za-z0-9_]/g, "_");
    op.operationId = `${tag}_${op.operationId}`;
  }
}
const renamed = new Set(operations.map((op) => op.operationId));
if (renamed.size !== operations.filter((op) => op.operationId).length) {
  console.error("generate-schema: operationIds are still not unique after prefixing with tags");
  process.exit(1);
}

const text = `${COMMENT_HEADER}${astToString(await openapiTS(doc))}`;
if (output === "-") {
  process.stdout.write(text);
} else {
  fs.writeFileSync(output, text);
  console.error(`generate-schema: ${path.relative(process.cwd(), input)} -> ${path.relative(process.cwd(), output)}`);
}
