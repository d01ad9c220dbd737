#!/usr/bin/env bash
# The default job (what `make run` makes: the paper's title, 8 scenes, the [pipeline]
# defaults) end to end with the release build: wall time, peak resident memory of the
# whole process (every stage's model in it), and the report's per-stage breakdown.
#   scripts/bench/default_job.sh [SEED]      (make bench runs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
seed="${1:-7}"
title="Eight Great Wonders of the China and World (4 each)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo build --release -q -p storyreel-gateway --bin storyreel
/usr/bin/time -v -o "$out/time.txt" target/release/storyreel generate "$title" --scenes 8 \
  --seed "$seed" --job-id default-job --out "$out" >/dev/null 2>"$out/stderr.txt" || {
  cat "$out/stderr.txt" >&2
  exit 1
}
python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
time = open(f"{out}/time.txt").read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", time).group(1)
parts = [float(p) for p in wall.split(":")]
wall_s = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_gib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time).group(1)) / 2**20
report = json.load(open(f"{out}/default-job.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"default job: 8 scenes, {report['video']['width']}x{report['video']['height']} at {report['video']['fps']} fps, "
      f"backend {report['backend']}, {report['video']['duration_s']:.1f} s of video")
print(f"cpu: {cpu}, {sum(1 for l in open('/proc/cpuinfo') if l.startswith('processor'))} cores")
print(f"wall {wall_s:.1f} s (process, model loading included; job {report['timings']['total_s']:.1f} s), "
      f"peak RSS {rss_gib:.2f} GiB")
print("| stage | calls | summed call time s |")
print("|---|---|---|")
calls = {}
for c in report["calls"]:
    calls[c["step"]] = calls.get(c["step"], 0) + 1
for stage, seconds in sorted(report["timings"]["per_stage_s"].items(), key=lambda kv: -kv[1]):
    print(f"| {stage} | {calls.get(stage, 1)} | {seconds:.1f} |")
PY
