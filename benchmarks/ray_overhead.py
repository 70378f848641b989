"""The cost of Ray on one machine: `--ray local --workers 2` against one process, on the same clip.

Usage: python benchmarks/ray_overhead.py [--repeat 3] [--tiny-frames 64] [--bilinear-frames 240]

For each model (bilinear, tiny) it times, in one session and rotating the order:
  - `dove upscale` as one process with torch on every core ("one"), as one process with one torch
    thread ("one-1t", what each worker gets), and with `--ray local --workers 2` ("ray": a fresh
    Ray runtime and two workers of one core each; start, model loads and shutdown included);
  - the same inside one Python process, the Ray workers already started and warm
    (dove_cli.distributed.Cluster), which is what a long job or a folder of files sees.
Every output is checked to be byte-identical to the one-process output. Prints JSON lines, then
the median wall times and ratios (ray / one; below 1 is faster). CPU numbers only say what Ray
itself costs; on GPUs the model dominates and the time scales with the number of GPUs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

MODELS = {  # model -> (input size, scale, frames option)
    "bilinear": ("160x90", 4, "bilinear_frames"),
    "tiny": ("64x48", 2, "tiny_frames"),
}


def make_clip(path: Path, frames: int, size: str) -> Path:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24", "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


HOWS = ("one", "one-1t", "ray")


def cli(clip: Path, out: Path, model: str, scale: int, how: str) -> float:
    cmd = [sys.executable, "-m", "dove_cli.cli", "upscale", str(clip), "-o", str(out), "--model", model, "--scale",
           str(scale), "--chunk", "33", "--tile", "0", "--device", "cpu", "--quiet", "--overwrite"]  # fmt: skip
    env = dict(os.environ)
    if how == "ray":
        cmd += ["--ray", "local", "--workers", "2"]
    if how == "one-1t":
        env["OMP_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tiny-frames", type=int, default=64)
    ap.add_argument("--bilinear-frames", type=int, default=240)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()

    import ray
    import torch

    from dove_cli.distributed import Cluster
    from dove_cli.upscaling import upscale

    threads = torch.get_num_threads()
    print(json.dumps({"cpus": os.cpu_count(), "torch_threads": threads, "load": os.getloadavg()}), flush=True)
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for model in args.models:
            size, scale, key = MODELS[model]
            clips[model] = make_clip(Path(tmp) / f"{model}.mp4", getattr(args, key), size)
        # End to end: fresh processes, a fresh Ray runtime each time.
        for model in args.models:
            _, scale, _ = MODELS[model]
            for r in range(args.repeat):
                for how in HOWS[r % 3 :] + HOWS[: r % 3]:
                    out = Path(tmp) / f"{model}_{how}.mp4"
                    seconds = cli(clips[model], out, model, scale, how)
                    times.setdefault((model, "cli", how), []).append(seconds)
                    print(json.dumps({"model": model, "run": "cli", "how": how, "seconds": round(seconds, 2),
                                      "load": os.getloadavg()[0]}), flush=True)  # fmt: skip
                ref = md5(Path(tmp) / f"{model}_one.mp4")
                assert md5(Path(tmp) / f"{model}_ray.mp4") == md5(Path(tmp) / f"{model}_one-1t.mp4") == ref
        # Steady state: the workers started once, warm.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        with Cluster("local", 2, device="cpu", cpus=1) as cluster:
            for model in args.models:
                _, scale, _ = MODELS[model]
                opts = dict(model=model, scale=scale, chunk=33, tile=0, device="cpu", overwrite=True)
                upscale(clips[model], Path(tmp) / "warm.mp4", cluster=cluster, **opts)  # load the models
                ref = md5(Path(tmp) / f"{model}_one.mp4")
                for r in range(args.repeat):
                    for how in HOWS[r % 3 :] + HOWS[: r % 3]:
                        out = Path(tmp) / f"{model}_{how}_warm.mp4"
                        torch.set_num_threads(1 if how == "one-1t" else threads)
                        t0 = time.perf_counter()
                        upscale(clips[model], out, cluster=cluster if how == "ray" else None, **opts)
                        seconds = time.perf_counter() - t0
                        times.setdefault((model, "warm", how), []).append(seconds)
                        print(json.dumps({"model": model, "run": "warm", "how": how, "seconds": round(seconds, 2),
                                          "load": os.getloadavg()[0]}), flush=True)  # fmt: skip
                        assert md5(out) == ref, "outputs differ"
        ray.shutdown()
    for model in args.models:
        for run in ("cli", "warm"):
            med = {how: statistics.median(times[(model, run, how)]) for how in HOWS}
            print(json.dumps({"model": model, "run": run, **{f"{h}_s": round(v, 2) for h, v in med.items()},
                              "ray/one": round(med["ray"] / med["one"], 2),
                              "ray/one-1t": round(med["ray"] / med["one-1t"], 2)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
