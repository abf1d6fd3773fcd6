#!/usr/bin/env bash
# Fails when src/graphql/generated is not what `npm run codegen` makes from schema/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r src/graphql/generated "$tmp/before"
npm run -s codegen >/dev/null
if ! diff -r "$tmp/before" src/graphql/generated; then
  echo "src/graphql/generated is stale: run 'npm run codegen' and commit the result." >&2
  exit 1
fi
echo "generated types are up to date"
