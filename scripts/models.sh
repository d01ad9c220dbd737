#!/usr/bin/env bash
# Fetches and converts the default model weights into $STORYREEL_CACHE/models (DESIGN.md §3),
# reusing what is already there. Each model issue adds its step here.
set -euo pipefail
cache="${STORYREEL_CACHE:-$HOME/.cache/storyreel}"
mkdir -p "$cache/models"
echo "models: no model weights are needed yet (the language, diffusion, interpolation and tts issues add them)"
