"""The cost of Ray on one machine: `--ray local` with 1 and 2 workers against one process, same clip.

Usage: python benchmarks/ray_overhead.py [--repeat 3] [--tiny-frames 64] [--bilinear-frames 240]

For each model (bilinear, tiny) it times, in one session and rotating the order:
  - `dove upscale` as one process with torch on every core ("one") and with one torch thread
    ("one-1t": OMP_NUM_THREADS=1), and with `--ray local --workers 1` ("ray1": one worker with
    every core) and `--workers 2` ("ray2": two workers, the cores shared out); a fresh process and
    a fresh Ray runtime each time, so the start of Ray, the model loads and the shutdown are
    included;
  - the same inside one Python process, the Ray workers already started and warm
    (dove_cli.distributed.Cluster) and the one-process runs given a model loaded beforehand, which
    is what a long job or a folder of files sees.
Every output is checked to be byte-identical to the one-process output. Prints JSON lines, then
the median wall times and ratios (rayN / one and rayN / one-1t; below 1 is faster). CPU numbers
only say what Ray itself costs; on GPUs the model dominates and the time scales with the number of
GPUs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory_flat import make_clip  # benchmarks/ is on sys.path when run as a script

MODELS = {  # model -> (input size, scale, frames option)
    "bilinear": ("160x90", 4, "bilinear_frames"),
    "tiny": ("64x48", 2, "tiny_frames"),
}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


HOWS = ("one", "one-1t", "ray1", "ray2")


def cli(clip: Path, out: Path, model: str, scale: int, how: str) -> float:
    cmd = [sys.executable, "-m", "dove_cli.cli", "upscale", str(clip), "-o", str(out), "--model", model, "--scale",
           str(scale), "--chunk", "33", "--tile", "0", "--device", "cpu", "--quiet", "--overwrite"]  # fmt: skip
    env = dict(os.environ)
    if how.startswith("ray"):
        cmd += ["--ray", "local", "--workers", how[3:]]
    if how == "one-1t":
        env["OMP_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tiny-frames", type=int, default=64)
    ap.add_argument("--bilinear-frames", type=int, default=240)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()

    import ray
    import torch

    from dove_cli.distributed import Cluster
    from dove_cli.models import load_model, resolve_device
    from dove_cli.options import UpscaleOptions
    from dove_cli.upscaling import upscale

    threads = torch.get_num_threads()
    print(json.dumps({"cpus": os.cpu_count(), "torch_threads": threads, "load": os.getloadavg()}), flush=True)
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for model in args.models:
            size, scale, key = MODELS[model]
            clips[model] = make_clip(Path(tmp) / f"{model}.mp4", getattr(args, key), size)
        # End to end: fresh processes, a fresh Ray runtime each time.
        for model in args.models:
            _, scale, _ = MODELS[model]
            for r in range(args.repeat):
                for how in HOWS[r % len(HOWS) :] + HOWS[: r % len(HOWS)]:
                    out = Path(tmp) / f"{model}_{how}.mp4"
                    seconds = cli(clips[model], out, model, scale, how)
                    times.setdefault((model, "cli", how), []).append(seconds)
                    print(json.dumps({"model": model, "run": "cli", "how": how, "seconds": round(seconds, 2),
                                      "load": os.getloadavg()[0]}), flush=True)  # fmt: skip
                ref = md5(Path(tmp) / f"{model}_one.mp4")
                assert all(md5(Path(tmp) / f"{model}_{how}.mp4") == ref for how in HOWS), "outputs differ"
        # Steady state: the workers started once, warm: one worker with every core, and two with
        # half of them each (both sets idle while the other works).
        cpus = os.cpu_count() or 2
        ray.init(num_cpus=2 * cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        with (
            Cluster("local", 1, device="cpu", cpus=cpus) as c1,
            Cluster("local", 2, device="cpu", cpus=cpus // 2) as c2,
        ):
            clusters = {"ray1": c1, "ray2": c2}
            for name, c in clusters.items():
                threads_seen = [h["threads"] for h in ray.get([a.hello.remote() for a in c.actors])]
                print(json.dumps({"workers": name, "torch_threads": threads_seen}), flush=True)
            for model in args.models:
                _, scale, _ = MODELS[model]
                opts = dict(model=model, scale=scale, chunk=33, tile=0, device="cpu", overwrite=True)
                ref = md5(Path(tmp) / f"{model}_one.mp4")
                for c in clusters.values():  # load the models
                    upscale(clips[model], Path(tmp) / "warm.mp4", cluster=c, **opts)
                loaded = load_model(UpscaleOptions(**opts), *resolve_device(UpscaleOptions(**opts)))
                for r in range(args.repeat):
                    for how in HOWS[r % len(HOWS) :] + HOWS[: r % len(HOWS)]:
                        out = Path(tmp) / f"{model}_{how}_warm.mp4"
                        torch.set_num_threads(1 if how == "one-1t" else threads)
                        t0 = time.perf_counter()
                        if how in clusters:
                            upscale(clips[model], out, cluster=clusters[how], **opts)
                        else:
                            upscale(clips[model], out, restorer=loaded, **opts)
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
                              **{f"{r}/{o}": round(med[r] / med[o], 2) for r in ("ray1", "ray2") for o in ("one", "one-1t")}}),
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
