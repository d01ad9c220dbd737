#!/usr/bin/env bash
# Installs what the web UI's browser test (services/gateway/tests/browser) needs, and
# prints the directory whose node_modules holds its npm packages (STORYREEL_NODE_MODULES):
#
# - Debian's chromium when /usr/bin/chromium is missing and CHROMIUM is unset, and
#   Node.js (18 or newer) and npm when they are missing (apt-get; sudo when not root);
# - playwright-core and axe-core, the exact versions of the test's package-lock.json,
#   with `npm ci` into $STORYREEL_CACHE/browser (default ~/.cache/storyreel/browser).
#   A rerun with the same package.json and lock does nothing.
#
# Progress goes to stderr; stdout is only the directory.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/services/gateway/tests/browser"
cache="${STORYREEL_CACHE:-$HOME/.cache/storyreel}"
dir="$cache/browser"

missing=()
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup-browser: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
  echo "setup-browser: Node.js 18 or newer is needed, found $(node --version)" >&2
  exit 1
fi

# npm ci again only when package.json or the lock changed, or the install is incomplete.
want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
have="$(cat "$dir/.installed-sha256" 2>/dev/null || true)"
if [ "$want" != "$have" ] || [ ! -f "$dir/node_modules/playwright-core/package.json" ] \
  || [ ! -f "$dir/node_modules/axe-core/axe.min.js" ]; then
  echo "setup-browser: installing playwright-core and axe-core into $dir" >&2
  mkdir -p "$dir"
  rm -f "$dir/.installed-sha256"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$dir/.installed-sha256"
fi
echo "$dir"
