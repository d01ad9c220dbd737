#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages storyreel needs, only those that are missing.
# Idempotent: a machine that has them all does nothing (no apt-get update either).
set -euo pipefail

# package -> a file whose presence proves it is installed
declare -A probe=(
  [redis-server]=/usr/bin/redis-server
  [ffmpeg]=/usr/bin/ffmpeg
  [espeak-ng]=/usr/bin/espeak-ng
  [libespeak-ng-dev]=/usr/include/espeak-ng/speak_lib.h
  [protobuf-compiler]=/usr/bin/protoc
  [libprotobuf-dev]=/usr/include/google/protobuf/empty.proto
  [pkg-config]=/usr/bin/pkg-config
  [clang]=/usr/bin/clang
  [time]=/usr/bin/time
  # the quality evaluation's dictionary (make eval)
  [wamerican]=/usr/share/dict/words
)

missing=()
for pkg in "${!probe[@]}"; do
  [ -e "${probe[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
