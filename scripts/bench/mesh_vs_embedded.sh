#!/usr/bin/env bash
# The same job in the embedded mode (`storyreel generate`: every stage in one process) and
# in mesh mode (`storyreel mesh`: every stage its own process, the gateway running the
# job as a Temporal workflow whose stage calls are activities over gRPC), one after the
# other in one run, on the release build. Both start with empty stage caches; both
# figures are the job's own time from its report (`timings.total_s`: from the job's
# start to its last file, model loading excluded), so the ratio is the cost of the
# mesh: gRPC, Temporal's scheduling, Redis instead of process memory.
#   scripts/bench/mesh_vs_embedded.sh [SCENES] [SEED]      (make bench runs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
scenes="${1:-2}"
seed="${2:-7}"
title="A lighthouse keeper's last night"
work="$(mktemp -d)"
mesh_pid=""
cleanup() {
  if [[ -n "$mesh_pid" ]]; then kill -TERM "$mesh_pid" 2>/dev/null || true; wait "$mesh_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release -q --workspace --bins
bin=target/release/storyreel
common=(--scenes "$scenes" --seed "$seed" --resolution 512)

target/release/storyreel generate "$title" "${common[@]}" --job-id embedded --out "$work/embedded" \
  >/dev/null 2>"$work/embedded.log" || { cat "$work/embedded.log" >&2; exit 1; }

"$bin" mesh --run-dir "$work/mesh" >"$work/mesh.out" 2>"$work/mesh.log" &
mesh_pid=$!
for _ in $(seq 1 600); do
  grep -q '^gateway:' "$work/mesh.out" 2>/dev/null && break
  kill -0 "$mesh_pid" 2>/dev/null || { cat "$work/mesh.log" >&2; exit 1; }
  sleep 0.5
done
export STORYREEL_GATEWAY="$(awk '/^gateway:/ {print $2}' "$work/mesh.out")"
export STORYREEL_API_KEY="$(cat "$work/mesh/api-key")"
resolution=(--resolution 512)
"$bin" submit --watch --scenes "$scenes" --seed "$seed" "${resolution[@]}" --out "$work/mesh-out" "$title" \
  >"$work/submit.log" 2>&1 || { cat "$work/submit.log" >&2; exit 1; }

python3 - "$work" <<'PY'
import glob, json, sys
work = sys.argv[1]
embedded = json.load(open(f"{work}/embedded/embedded.json"))
mesh = json.load(open(glob.glob(f"{work}/mesh-out/*/job.json")[0]))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cores = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
e, m = embedded["timings"]["total_s"], mesh["timings"]["total_s"]
print(f"cpu: {cpu}, {cores} cores")
print(f"job: {len(embedded['scenes'])} scenes, {embedded['video']['width']}x{embedded['video']['height']}, "
      f"backend {embedded['backend']}")
print(f"embedded {e:.1f} s, mesh {m:.1f} s, mesh / embedded {m / e:.3f}")
PY
