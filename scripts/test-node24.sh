#!/usr/bin/env bash
# `npm test` on Node 24, whatever Node the machine has. Node 24 comes from the npm registry (the
# `node` package puts a node binary in node_modules/.bin) into a cache folder, so nothing
# system-wide changes and a second run reuses it. CI runs the whole suite this way.
#
# Usage: scripts/test-node24.sh [vitest filters…]   (default: every suite; Vitest filters are
# substrings of file paths, hence the slashes: `client` alone would match test/e2e/client-sdk…)
# Environment: IMGUP_NODE24_DIR (cache folder, default ~/.cache/imgup-node24), plus what the suites
# read (DATABASE_URL, REDIS_URL, TEST_S3_*), exactly as for `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${IMGUP_NODE24_DIR:-$HOME/.cache/imgup-node24}"
node24="$dir/node_modules/.bin/node"
if ! "$node24" -v 2>/dev/null | grep -q '^v24\.'; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save node@24 >/dev/null
fi
version="$("$node24" -v)"
case "$version" in
  v24.*) ;;
  *) echo "test-node24: expected Node 24 in $dir, got '$version'" >&2; exit 1 ;;
esac
echo "test-node24: running the suites on Node $version ($node24)"

# npm's `#!/usr/bin/env node` finds Node 24 first on PATH; Vitest's workers and the processes the
# tests spawn use process.execPath: Node 24 all the way down.
PATH="$(dirname "$(readlink -f "$node24")"):$PATH" exec npm test -- "$@"
