"""Effect of VAE tiling on the training passes (memory and time), on the CPU.

    python benchmarks/vae_tiling.py [--height 320 --width 640 --frames 1 --width-scale 0.5]

Runs the CogVideoX VAE architecture (diffusers' defaults = the published one, random weights; with
--width-scale < 1 every block is narrower, which keeps the geometry of the tiles and makes a CPU
run affordable) in a fresh process per setting and reports, tiled vs untiled:
- stage 1: encode of a frames x height x width clip (no gradients);
- stage 2: encode of one frame, then decode of its latent frame with gradients (backward included),
  as stage 2 runs through the frozen decoder.
Peak memory is the process's peak RSS above its RSS after building the model (activation memory);
time is the process's CPU time on one thread, so other load on the machine barely moves it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def run_one(tiling: bool, pass_name: str, frames: int, height: int, width: int, width_scale: float) -> dict:
    import torch
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    torch.set_num_threads(1)
    channels = tuple(max(8, int(c * width_scale)) // 8 * 8 for c in (128, 256, 256, 512))
    vae: Any = AutoencoderKLCogVideoX(block_out_channels=channels, scaling_factor=0.7)
    vae.eval().requires_grad_(False)
    vae.enable_slicing()
    if tiling:
        vae.enable_tiling()
    x = torch.rand(1, 3, frames if pass_name == "encode" else 1, height, width) * 2 - 1
    base = _rss_mb()
    t0 = time.process_time()
    if pass_name == "encode":
        with torch.no_grad():
            vae.encode(x).latent_dist.mode()
    else:
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        z.requires_grad_(True)
        vae.decode(z).sample.float().square().mean().backward()
    seconds = time.process_time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"tiling": tiling, "pass": pass_name, "seconds": seconds, "activation_mb": peak - base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--frames", type=int, default=1, help="stage-1 clip length (4k+1)")
    ap.add_argument("--width-scale", type=float, default=0.5, help="VAE channel widths x this (1 = published)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        tiling, pass_name = args.one.split(",")
        result = run_one(tiling == "1", pass_name, args.frames, args.height, args.width, args.width_scale)
        print(json.dumps(result))
        return
    rows = []
    for pass_name in ("encode", "decode+backward"):
        for tiling in (False, True):
            cmd = [sys.executable, __file__, "--one", f"{int(tiling)},{pass_name}", "--frames", str(args.frames),
                   "--height", str(args.height), "--width", str(args.width), "--width-scale", str(args.width_scale)]  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            out = (
                subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
            )
            rows.append(json.loads(out))
            print(rows[-1], flush=True)
    print(f"\n{args.frames}x{args.height}x{args.width}, VAE widths x{args.width_scale}: tiled / untiled")
    for pass_name in ("encode", "decode+backward"):
        off, on = (next(r for r in rows if r["pass"] == pass_name and r["tiling"] == t) for t in (False, True))
        print(
            f"  {pass_name:16s} time x{on['seconds'] / off['seconds']:.2f}, "
            f"activation memory x{on['activation_mb'] / max(off['activation_mb'], 1):.2f} "
            f"({off['activation_mb']:.0f} -> {on['activation_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
