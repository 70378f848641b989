"""How good are `--dry-run` time estimates? Plan, then run, the tiny DOVE model on the CPU.

    python benchmarks/estimate_check.py

Prints, per case, the estimate (and its range) and the time the run took. The estimate is the
window FLOPs over this machine's measured convolution and matmul rates (dove_cli/speed.py);
README "Performance" records the ratios measured on the development machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dove_cli.humanize import ESTIMATE_RANGE, human_range
from dove_cli.upscaling import upscale

DEMO = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo"
CASES = [  # clip, options
    ("003.mp4", dict(scale=2, chunk=17, chunk_overlap=4)),
    ("001.mp4", dict(scale=2, preview="0+3s")),
    ("002.mp4", dict(scale=4, chunk=9, chunk_overlap=2, tile=256, tile_overlap=32)),
]


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for clip, opts in CASES:
            common = dict(model="tiny", device="cpu", color_fix="none", overwrite=True, **opts)
            plan = upscale(DEMO / clip, Path(tmp) / "out.mp4", dry_run=True, **common)
            t0 = time.perf_counter()
            upscale(DEMO / clip, Path(tmp) / "out.mp4", **common)
            took = time.perf_counter() - t0
            est = plan.est_seconds or float("nan")
            inside = ESTIMATE_RANGE[0] <= took / est <= ESTIMATE_RANGE[1]
            print(
                f"{clip} {opts}: estimated {human_range(est)}; took {took:.1f} s = {took / est:.2f} x the "
                f"estimate ({'inside' if inside else 'OUTSIDE'} the range)"
            )


if __name__ == "__main__":
    main()
