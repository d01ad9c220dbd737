#!/usr/bin/env bash
# Builds a CPU libtorch 2.13.0 from the PyPI torch wheel (DESIGN.md §7) into the cache,
# and does nothing when it is already there. Prints the libtorch directory on stdout.
#
#   torch==2.13.0 wheel         -> lib/libtorch_cpu.so, libc10.so, libgomp, include/
#   cuda-toolkit[cudart,cupti]  -> libcudart.so.13, libcupti.so.13 (libtorch_cpu links them)
#   stub libtorch.so            -> depends only on libtorch_cpu + libc10, so the 470 MB
#                                  CUDA library of the wheel is never needed
set -euo pipefail

TORCH_VERSION=2.13.0
CUDA_TOOLKIT_VERSION=13.0.3
cache="${STORYREEL_CACHE:-$HOME/.cache/storyreel}"
dest="$cache/libtorch-$TORCH_VERSION-cpu"
stamp="$dest/.complete"

if [ -f "$stamp" ]; then
  echo "$dest"
  exit 0
fi

log() { echo "setup-libtorch: $*" >&2; }
work="$cache/libtorch-build.$$"
rm -rf "$work" && mkdir -p "$work/wheels" "$work/cuda"
trap 'rm -rf "$work"' EXIT

wheels="$cache/wheels"
mkdir -p "$wheels"
if ! ls "$wheels"/torch-$TORCH_VERSION-*.whl >/dev/null 2>&1; then
  log "downloading torch==$TORCH_VERSION (about 530 MB, once)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -d "$wheels" "torch==$TORCH_VERSION" >&2
fi
if ! ls "$wheels"/nvidia_cuda_runtime*.whl >/dev/null 2>&1 || ! ls "$wheels"/nvidia_cuda_cupti*.whl >/dev/null 2>&1; then
  log "downloading cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT_VERSION (about 13 MB, once)"
  python3 -m pip download --quiet --only-binary=:all: \
    -d "$wheels" "cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT_VERSION" >&2
fi

log "unpacking into $dest"
python3 - "$wheels" "$work" "$TORCH_VERSION" <<'PY'
import glob, os, sys, zipfile
wheels, work, version = sys.argv[1:4]
torch_whl = glob.glob(os.path.join(wheels, f"torch-{version}-*.whl"))[0]
with zipfile.ZipFile(torch_whl) as z:
    for name in z.namelist():
        if name.startswith(("torch/lib/", "torch/include/", "torch/share/cmake/")):
            z.extract(name, work)
wanted = ("libcudart.so.13", "libcupti.so.13")
for whl in glob.glob(os.path.join(wheels, "nvidia_*.whl")):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if os.path.basename(name) in wanted:
                with open(os.path.join(work, "cuda", os.path.basename(name)), "wb") as f:
                    f.write(z.read(name))
missing = [w for w in wanted if not os.path.exists(os.path.join(work, "cuda", w))]
if missing:
    sys.exit(f"setup-libtorch: the cuda-toolkit wheels lack {missing}")
PY

mkdir -p "$work/out"
mv "$work/torch/lib" "$work/out/lib"
mv "$work/torch/include" "$work/out/include"
[ -d "$work/torch/share" ] && mv "$work/torch/share" "$work/out/share"
cp "$work"/cuda/* "$work/out/lib/"
# The wheel's libtorch.so pulls in libtorch_cuda.so; replace it by a stub for CPU builds.
rm -f "$work/out/lib/libtorch.so" "$work/out/lib/libtorch_cuda.so"
echo 'void storyreel_libtorch_cpu_stub(void) {}' > "$work/stub.c"
gcc -shared -fPIC -o "$work/out/lib/libtorch.so" "$work/stub.c" \
  -L"$work/out/lib" -Wl,--no-as-needed -ltorch_cpu -lc10 -Wl,-rpath,'$ORIGIN'
echo "$TORCH_VERSION" > "$work/out/build-version"

rm -rf "$dest"
mv "$work/out" "$dest"
touch "$stamp"
log "ready: $dest"
echo "$dest"
