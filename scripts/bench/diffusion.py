#!/usr/bin/env python3
"""tch against diffusers (PyTorch eager) on the same CPU threads: one motion-UNet step and
one VAE decode, as a ratio in one run (issue 4, item 10; target tch / diffusers <= 1.05).

Pinned reference stack (DESIGN.md §9): torch==2.13.0, diffusers==0.42.1 (the fixture venv).
Run by a developer from the repository root:

  ~/.cache/storyreel/fixture-venv/bin/python scripts/bench/diffusion.py \
      [--sizes tiny,sd15] [--threads 2] [--iters 5] [--frames 16] [--latent 32]

Sizes: `tiny` is the default keyframe model (`storyreel-convert tiny-keyframe`); `sd15`
is SD 1.5's UNet + the AnimateDiff v1.5-2 adapter + SD 1.5's VAE, randomly initialised
from their published configs (~5 GB of f32 weights per side; the two sides run one after
the other). Inputs: one video (batch 1) of FRAMES frames of LATENTxLATENT latents, 77 text
tokens; the VAE decodes the FRAMES latents in slices of 4 frames. Each side loads the same
safetensors, warms up once, and times ITERS calls; the rounds alternate tch, diffusers,
tch, diffusers. The tch side runs with `storyreel_nn::allocator::keep_freed_memory` (as a
diffusion worker does; `--default-malloc` leaves glibc as it is); diffusers with PyTorch's
defaults. Two ratios are printed: of the fastest calls (the headline: on a shared
machine other processes only ever add time) and of the medians over both rounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
from diffusion import ANIMATEDIFF_V15_2, PINNED, SD15_UNET, SD15_VAE  # noqa: E402

VAE_SLICE = 4


def check_versions() -> None:
    found = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__}
    for name, want in found.items():
        if PINNED[name] != want:
            raise SystemExit(f"{name} {want} installed, the benchmark is pinned to {PINNED[name]}")


def kwargs(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def write_models(size: str, out: Path) -> None:
    if size == "tiny":
        subprocess.run(
            ["cargo", "run", "--quiet", "-p", "storyreel-nn", "--bin", "storyreel-convert", "--",
             "tiny-keyframe", "--out", str(out), "--seed", "0"],
            cwd=ROOT, check=True,
        )
        return
    torch.manual_seed(0)
    for name, model in [
        ("unet", lambda: UNet2DConditionModel(**kwargs(SD15_UNET))),
        ("motion_adapter", lambda: MotionAdapter(**kwargs(ANIMATEDIFF_V15_2))),
        ("vae", lambda: AutoencoderKL(**kwargs(SD15_VAE))),
    ]:
        m = model()
        m.save_pretrained(str(out / name), safe_serialization=True)
        del m
        gc.collect()


def write_inputs(out: Path, frames: int, latent: int, cross_dim: int) -> None:
    g = torch.Generator().manual_seed(1)
    save_file(
        {
            "sample": torch.randn((1, 4, frames, latent, latent), generator=g),
            "timestep": torch.tensor(500, dtype=torch.int64),
            "encoder_hidden_states": torch.randn((frames, 77, cross_dim), generator=g),
        },
        str(out / "unet_inputs.safetensors"),
    )
    save_file(
        {
            "latents": torch.randn((frames, 4, latent, latent), generator=g),
            "slice": torch.tensor(VAE_SLICE, dtype=torch.int64),
        },
        str(out / "vae_inputs.safetensors"),
    )


def run_tch(what: str, out: Path, threads: int, iters: int, default_malloc: bool) -> list[float]:
    cmd = [
        "cargo", "bench", "--quiet", "-p", "storyreel-nn", "--bench", "diffusion", "--",
        "--what", what, "--dir", str(out), "--inputs", str(out / f"{what}_inputs.safetensors"),
        "--threads", str(threads), "--iters", str(iters),
    ] + (["--default-malloc"] if default_malloc else [])
    result = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["times_ms"]


def run_torch(what: str, out: Path, threads: int, iters: int) -> list[float]:
    from safetensors.torch import load_file

    torch.set_num_threads(threads)
    inputs = load_file(str(out / f"{what}_inputs.safetensors"))
    if what == "unet":
        unet = UNet2DConditionModel.from_pretrained(str(out / "unet"))
        adapter = MotionAdapter.from_pretrained(str(out / "motion_adapter"))
        model = UNetMotionModel.from_unet2d(unet, adapter).eval()
        del unet, adapter

        def call():
            model(inputs["sample"], inputs["timestep"], encoder_hidden_states=inputs["encoder_hidden_states"])
    else:
        model = AutoencoderKL.from_pretrained(str(out / "vae")).eval()
        latents, step = inputs["latents"], int(inputs["slice"])

        def call():
            torch.cat([model.decode(latents[i : i + step]).sample for i in range(0, latents.shape[0], step)])

    times = []
    with torch.no_grad():
        call()
        for _ in range(iters):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
    del model
    gc.collect()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="tiny")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--what", default="unet,vae")
    parser.add_argument("--default-malloc", action="store_true",
                        help="run the tch side with glibc's default malloc, not keep_freed_memory")
    args = parser.parse_args()
    check_versions()
    torch.set_num_interop_threads(1)
    # Build the tch side first so that compilation is not timed.
    subprocess.run(["cargo", "bench", "--quiet", "-p", "storyreel-nn", "--bench", "diffusion", "--no-run"],
                   cwd=ROOT, check=True)
    rows = []
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"storyreel-bench-{size}-") as tmp:
            out = Path(tmp)
            write_models(size, out)
            cross = json.loads((out / "unet" / "config.json").read_text())["cross_attention_dim"]
            write_inputs(out, args.frames, args.latent, cross)
            for what in args.what.split(","):
                tch_times, torch_times = [], []
                for _ in range(2):
                    tch_times += run_tch(what, out, args.threads, args.iters, args.default_malloc)
                    torch_times += run_torch(what, out, args.threads, args.iters)
                t, d = min(tch_times), min(torch_times)
                tm, dm = statistics.median(tch_times), statistics.median(torch_times)
                row = {"size": size, "what": what, "threads": args.threads,
                       "tch_malloc": "default" if args.default_malloc else "keep-freed", "frames": args.frames,
                       "latent": args.latent, "tch_ms": round(t, 1), "diffusers_ms": round(d, 1),
                       "ratio": round(t / d, 3), "median_ratio": round(tm / dm, 3),
                       "tch_times_ms": [round(x, 1) for x in tch_times],
                       "diffusers_times_ms": [round(x, 1) for x in torch_times]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("size  what  fastest: tch ms  diffusers ms  ratio (tch / diffusers)  median ratio")
    for r in rows:
        print(f"{r['size']:5} {r['what']:5} {r['tch_ms']:15.1f} {r['diffusers_ms']:13.1f}  "
              f"{r['ratio']:23.3f}  {r['median_ratio']:.3f}")


if __name__ == "__main__":
    main()
