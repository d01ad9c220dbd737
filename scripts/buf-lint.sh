#!/usr/bin/env bash
# Lint (and compile) the v1 protos with buf. Called by `make lint`.
#
# buf comes from npm (@bufbuild/buf, pinned below), installed once into
# ${STORYREEL_CACHE:-$HOME/.cache/storyreel}/npm and reused afterwards.
# Exits non-zero when buf reports a lint or compile error.
set -euo pipefail

BUF_VERSION="1.75.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${STORYREEL_CACHE:-$HOME/.cache/storyreel}"
npm_prefix="${cache_dir}/npm"
buf_bin="${npm_prefix}/node_modules/.bin/buf"

installed_version() {
  [[ -x "$buf_bin" ]] || return 1
  "$buf_bin" --version 2>/dev/null
}

if [[ "$(installed_version || true)" != "$BUF_VERSION" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "buf-lint: npm not found; install Node.js/npm (Debian: apt-get install npm)" >&2
    exit 1
  fi
  echo "buf-lint: installing @bufbuild/buf@${BUF_VERSION} into ${npm_prefix}" >&2
  mkdir -p "$npm_prefix"
  npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error \
    --save-exact "@bufbuild/buf@${BUF_VERSION}" >&2
fi

cd "$repo_root"
# Cache buf's own module data inside our cache dir, not in $HOME/.cache/buf.
export BUF_CACHE_DIR="${BUF_CACHE_DIR:-${cache_dir}/buf}"

"$buf_bin" build
"$buf_bin" lint
echo "buf-lint: ok (buf ${BUF_VERSION})"
