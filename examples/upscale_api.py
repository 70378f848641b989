"""Upscale the demo clip through the Python API and print what happened.

Run:  python examples/upscale_api.py [--model bilinear|tiny|PATH] [--output FILE]
It writes FILE (default: demo_x4.mp4 in the current folder). With no --model it uses the weights
fetched by `dove download-weights`; without them, --model bilinear runs in seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dove_cli
from dove_cli import DoveError

ap = argparse.ArgumentParser()
ap.add_argument("--model", default=None)
ap.add_argument("--output", default="demo_x4.mp4")
args = ap.parse_args()

clip = Path(__file__).parent / "data" / "demo_316x178.mp4"
try:
    result = dove_cli.upscale(clip, args.output, model=args.model, overwrite=True, chunk=33, tile=0)
except DoveError as exc:  # user-facing problems (no weights yet, bad options...) are one line
    raise SystemExit(f"error: {exc}") from None
print(result.summary())
for stage, seconds in result.stages.items():
    print(f"  {stage:12s} {seconds:7.2f} s")
