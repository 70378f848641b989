"""The host side of `dove upscale` against ffmpeg doing the same job: wall time and peak memory.

    python benchmarks/host_pipeline.py [--runs 3] [--frames 320]

The job: 320 frames of 318x180 (demo clip 002 looped) upscaled x4 to 1272x720 with plain bilinear
upsampling and encoded with libx264 CRF 16, preset medium. dove runs it with `--model bilinear
--color-fix none` (no network: only decode, windows, blend, finish and encode), ffmpeg with
`-vf scale=iw*4:ih*4:flags=bilinear`. Runs are interleaved (dove, ffmpeg, dove, ...) so that
load from other processes hits both alike; the median wall time of each and the ratio are printed,
with each one's CPU time and peak RSS (the child's rusage).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
DEMO = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo" / "002.mp4"


def timed(cmd: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (user + system) of one child process."""
    t0 = time.perf_counter()
    pid = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).pid
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=320)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "in.mp4"
        subprocess.run([FFMPEG, "-v", "error", "-stream_loop", "-1", "-i", str(DEMO), "-frames:v", str(args.frames),
                        "-c:v", "libx264", "-crf", "18", str(clip)], check=True)  # fmt: skip
        dove = [sys.executable, "-m", "dove_cli.cli", "upscale", str(clip), "-o", str(Path(tmp) / "dove.mp4"),
                "--model", "bilinear", "--color-fix", "none", "--codec", "h264", "--crf", "16", "--preset", "medium",
                "--overwrite", "-q"]  # fmt: skip
        ff = [FFMPEG, "-v", "error", "-y", "-i", str(clip), "-vf", "scale=iw*4:ih*4:flags=bilinear", "-c:v",
              "libx264", "-crf", "16", "-preset", "medium", "-an", str(Path(tmp) / "ff.mp4")]  # fmt: skip
        results: dict[str, list[tuple[float, int, float]]] = {"dove": [], "ffmpeg": []}
        for _ in range(args.runs):
            results["dove"].append(timed(dove))
            results["ffmpeg"].append(timed(ff))
    med = {k: statistics.median(w for w, _, _ in v) for k, v in results.items()}
    for k, runs in results.items():
        walls = ", ".join(f"{w:.1f}" for w, _, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        rss = max(r for _, r, _ in runs)
        print(f"{k:7s} wall {med[k]:.1f} s (runs: {walls}), CPU {cpu:.1f} s, peak RSS {rss / 2**20:.0f} MiB")
    print(f"dove / ffmpeg wall time: {med['dove'] / med['ffmpeg']:.2f}x ({os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
