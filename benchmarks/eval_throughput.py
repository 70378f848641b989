"""CPU (or GPU) throughput of each `dove eval` metric at 720p: frames per second.

The networks are the real architectures at full size with random weights (the arithmetic is the
same as with the published weights, and nothing is downloaded). Each metric sees the same random
1280x720 frames; the first call is a warm-up and is not timed. E*warp counts one frame per pair
(two RAFT passes: forward and backward flow at 640x360, 20 iterations).

    python benchmarks/eval_throughput.py [--frames 3] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch


def _init(model: torch.nn.Module) -> torch.nn.Module:
    """Trained-like scales (activations neither vanish into slow denormals nor blow up)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=m.in_features**-0.5)
    for name, p in model.named_parameters():
        if name.endswith(("positional_embedding", "text_projection", "in_proj_weight", "token_embedding.weight")):
            torch.nn.init.normal_(p, std=0.02)
    return model


def build(name: str, device: torch.device):
    from dove_cli.metrics import psnr_ssim
    from dove_cli.metrics.clipiqa import CLIPIQA, CLIPRN50
    from dove_cli.metrics.dists import DISTS
    from dove_cli.metrics.ewarp import EWarp, raft_flow
    from dove_cli.metrics.lpips import LPIPS
    from dove_cli.metrics.raft import RAFT
    from dove_cli.metrics.selection import FrameScore, PairScore

    if name == "psnr":
        return PairScore(name, psnr_ssim.psnr)
    if name == "ssim":
        return PairScore(name, psnr_ssim.ssim)
    if name == "lpips":
        return PairScore(name, LPIPS().to(device).eval())
    if name == "dists":
        return PairScore(name, DISTS(warn=False).to(device).eval())
    if name == "clipiqa":
        return FrameScore(name, CLIPIQA(_init(CLIPRN50()).eval()).to(device).eval())
    if name == "ewarp":
        return EWarp(raft_flow(RAFT().to(device).eval()))
    raise ValueError(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=3, help="timed frames per metric (after one warm-up)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--metrics", default="psnr,ssim,lpips,dists,clipiqa,ewarp")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    frames = [torch.rand(3, 720, 1280, generator=g).to(device) for _ in range(args.frames + 2)]
    gts = [(f + 0.05 * torch.randn(f.shape, generator=g).to(device)).clamp(0, 1) for f in frames]
    rows = {}
    for name in args.metrics.split(","):
        metric = build(name, device)
        metric.start_video()
        with torch.no_grad():
            metric.add(frames[0], gts[0])
            if name == "ewarp":
                metric.add(frames[1], gts[1])  # the first pair is the warm-up
            start = time.perf_counter()
            for i in range(2, 2 + args.frames):
                metric.add(frames[i], gts[i])
            if device.type == "cuda":
                torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.frames
        rows[name] = {"seconds_per_frame": seconds, "frames_per_second": 1 / seconds}
        print(f"{name:8s} {1 / seconds:8.3f} frames/s  ({seconds:.2f} s/frame)", flush=True)
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "frame": "1280x720",
        "metrics": rows,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(info, fh, indent=1)


if __name__ == "__main__":
    main()
