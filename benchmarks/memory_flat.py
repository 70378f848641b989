"""Peak host memory of `dove upscale --model bilinear` for a short and a 10x longer clip.

Shows that memory does not grow with video length (frames are streamed through fixed windows).
Usage: python benchmarks/memory_flat.py [--frames 300 3000] [--size 160x90]
Each run is a fresh `dove` process; its peak RSS is read with getrusage(RUSAGE_CHILDREN) from a
wrapper process that starts only that one child.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

WRAPPER = (
    "import resource, subprocess, sys;"
    "rc = subprocess.run(sys.argv[1:]).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024);"
    "sys.exit(rc)"
)


def make_clip(path: Path, frames: int, size: str) -> Path:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24", "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def peak_rss(cmd: list[str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[300, 3000])
    ap.add_argument("--size", default="160x90")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=["--chunk", "33", "--tile", "0"])
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.frames:
            clip = make_clip(Path(tmp) / f"in{n}.mp4", n, args.size)
            out = Path(tmp) / f"out{n}.mp4"
            cmd = ["dove", "upscale", str(clip), "-o", str(out), "--model", "bilinear", "--quiet", *args.extra]
            rss, seconds = peak_rss(cmd)
            results.append({"frames": n, "peak_rss_mib": round(rss / 2**20, 1), "seconds": round(seconds, 1)})
            print(json.dumps(results[-1]), flush=True)
    base = results[0]["peak_rss_mib"]
    for r in results[1:]:
        print(f"{r['frames']} vs {results[0]['frames']} frames: peak RSS ratio {r['peak_rss_mib'] / base:.3f}")


if __name__ == "__main__":
    main()
