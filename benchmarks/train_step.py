"""Training-step speed on the tiny random model (CPU), for one or more source trees, in one run.

    python benchmarks/train_step.py --src OLD/src --src src [--stage 1 --stage 2 --steps 6 --repeats 3]

Each measurement runs in a fresh single-threaded process with PYTHONPATH=<src>: load the model as
`dove train` does (fp32, posterior mode), then time forward + backward + clipping + AdamW on a fixed
batch (B = 2; stage 1: 9 x 64 x 64 clips, stage 2: 2 x 32 x 32 with DISTS), after 2 warm-up steps.
Time is the process's CPU time (one thread), so other load on the machine barely moves it; sources
are measured in turns (A B A B ...). The median steps/s of each is reported, with the ratio to the
first source. TrainConfig fields can follow a source after "::"
(`--src src::vae_slicing=false`); they are applied where that source's TrainConfig has them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SHAPES = {1: (9, 64, 64), 2: (2, 32, 32)}


def child(model_dir: str, stage: int, steps: int, sets: dict[str, str]) -> float:
    import dataclasses
    import time

    import torch

    import dove_cli.train.loop as L
    from dove_cli.train.config import TrainConfig
    from dove_cli.train.losses import DISTS, PixelLoss

    torch.manual_seed(0)
    torch.set_num_threads(1)
    f, h, w = SHAPES[stage]
    fields = {fl.name for fl in dataclasses.fields(TrainConfig)}
    extra = {k: (v.lower() == "true" if v.lower() in ("true", "false") else v) for k, v in sets.items() if k in fields}
    cfg = TrainConfig.for_stage(stage, model=model_dir, posterior="mode", resolution=f"{f}x{h}x{w}", **extra)
    pixel = PixelLoss(DISTS(seed=0)) if stage == 2 else None
    if hasattr(L, "load_training_model"):  # after the issue-14 changes
        from dove_cli.train.forward import training_loss

        model = L.load_training_model(Path(model_dir), torch.device("cpu"), cfg, "no")

        def loss_fn(batch: dict) -> torch.Tensor:
            return training_loss(
                model, batch, stage=stage, seed=0, dtype=torch.float32, pixel_loss=pixel, latent_slots=cfg.latent_loss
            )[0]
    else:
        model = L.load_model(Path(model_dir), torch.device("cpu"), cfg, "no")

        def loss_fn(batch: dict) -> torch.Tensor:
            return L.training_loss(model, batch, stage, 0, pixel)[0]

    params = [p for p in model.transformer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    g = torch.Generator().manual_seed(0)
    batch = {
        "lq": torch.rand(2, 3, f, h, w, generator=g) * 2 - 1,
        "hq": torch.rand(2, 3, f, h, w, generator=g) * 2 - 1,
        "step": 0,
        "positions": [0, 1],
    }
    t0 = 0.0
    for i in range(2 + steps):
        if i == 2:
            t0 = time.process_time()
        loss = loss_fn(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss)
    return steps / (time.process_time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", required=True, help="SRC[::field=value,...], repeatable")
    ap.add_argument("--set", default="", help=argparse.SUPPRESS)
    ap.add_argument("--stage", action="append", type=int, help="1 and/or 2 (default both)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sets = dict(kv.split("=", 1) for kv in args.set.split(",") if kv)
    if args.child:
        model_dir, stage = args.child.rsplit(",", 1)
        print(json.dumps(child(model_dir, int(stage), args.steps, sets)))
        return
    here = Path(__file__).resolve().parent.parent / "src"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(here)}
        subprocess.run(
            [sys.executable, "-c", "import sys; from dove_cli.engine import build_random, save_pretrained; "
             "save_pretrained(build_random('tiny', seed=0, posterior='mode'), sys.argv[1])", tmp],
            check=True, env=env,
        )  # fmt: skip
        for stage in args.stage or [1, 2]:
            rates: dict[str, list[float]] = {s: [] for s in args.src}
            for _ in range(args.repeats):
                for src in args.src:
                    path, _, fields = src.partition("::")
                    cmd = [
                        sys.executable,
                        __file__,
                        "--src",
                        path,
                        "--child",
                        f"{tmp},{stage}",
                        "--steps",
                        str(args.steps),
                    ]
                    out = subprocess.run(
                        [*cmd, "--set", fields], check=True, capture_output=True, text=True,
                        env={**os.environ, "PYTHONPATH": str(Path(path).resolve()), "OMP_NUM_THREADS": "1"},
                    )  # fmt: skip
                    rates[src].append(float(out.stdout.strip().splitlines()[-1]))
            first = statistics.median(rates[args.src[0]])
            print(f"stage {stage} ({'x'.join(map(str, SHAPES[stage]))}, batch 2), steps/s (median of {args.repeats}):")
            for src, r in rates.items():
                med = statistics.median(r)
                print(f"  {src}: {med:.3f}  (x{med / first:.2f})  runs {[round(x, 3) for x in r]}")


if __name__ == "__main__":
    main()
