"""What each of dove's deliberate differences from the authors' script changes, one at a time.

Starts from `--parity` (the authors' inference_script.py) and changes one thing per step towards
dove's defaults; each step's output is compared with the step before: PSNR, mean and max absolute
difference and mean signed difference, in 8-bit levels. Then the window layouts (dove's cosine and
hard blending, the release's cut) against one whole window, and scene-cut splitting on a clip with
a shot change. Models: the tiny random DOVE (`--model tiny`, posterior mode: the real code path
with random weights) and `--model bilinear` (no network). The README's "What is computed" quotes
these numbers.

Usage: python benchmarks/parity_effects.py [--size 318x180] [--frames 9] [--models tiny bilinear]
(the demo clip tests/data/demo/002.mp4, 318x180, scaled to --size; a few minutes on a 2-core CPU)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import imageio_ffmpeg
import numpy as np

from dove_cli import blend, upscaling

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "data" / "demo"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: object) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, args)], check=True)


def frames_of(folder: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(folder / "%06d.png"), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).astype(np.float64)


def compare(a: np.ndarray, b: np.ndarray) -> str:
    d = b - a
    mse = float(np.mean(d**2))
    db = "identical" if mse == 0 else f"{10 * np.log10(255**2 / mse):5.1f} dB"
    return f"{db}, mean |d| {np.abs(d).mean():.2f}, max {np.abs(d).max():.0f}, mean d {d.mean():+.2f}"


def rounding_instead_of_truncation():
    """--parity, but rounding to code values (what dove does) instead of the release's truncation."""
    return mock.patch.object(
        upscaling,
        "to_code_values",
        lambda x, bits16, scratch=None, truncate=False: blend.to_code_values(x, bits16, scratch),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="318x180")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--models", nargs="+", default=["tiny", "bilinear"])
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="parity-effects-"))
    clip = tmp / "clip"
    clip.mkdir()
    ffmpeg("-i", DEMO / "002.mp4", "-frames:v", args.frames, "-vf", f"scale={w}:{h}", clip / "%06d.png")
    cut = tmp / "cut"  # a shot change after 8 frames: 8 frames of one demo clip, then 9 of another
    cut.mkdir()
    ffmpeg("-i", DEMO / "002.mp4", "-i", DEMO / "007.mp4", "-filter_complex",
           f"[0:v]trim=end_frame=8,scale={w}:{h},setpts=PTS-STARTPTS[a];[1:v]trim=end_frame=9,scale={w}:{h},"
           "setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]", cut / "%06d.png")  # fmt: skip
    n = 0

    def run(model: str, src: Path = clip, patch=None, **opts) -> np.ndarray:
        nonlocal n
        n += 1
        out = tmp / f"out{n}"
        out.mkdir()
        base = dict(model=model, posterior="mode", device="cpu", scale=4)
        if patch is not None:
            with patch:
                upscaling.upscale(src / "%06d.png", out / "%06d.png", **{**base, **opts})
        else:
            upscaling.upscale(src / "%06d.png", out / "%06d.png", **{**base, **opts})
        return frames_of(out, 4 * w, 4 * h)

    release_like = dict(pad="zero", blend="hard", color_fix="none", scene_cuts="off", vae_tiling=True, tile=0, chunk=0)
    for model in args.models:
        print(f"\n== --model {model}, {args.size} x{args.frames} frames -> {4 * w}x{4 * h}", flush=True)
        steps = [
            ("--parity (the release)", dict(parity=True), None),
            ("rounding instead of truncation", dict(parity=True), rounding_instead_of_truncation()),
            ("dove's padding block (LQ to 4 px, zeros)", release_like, None),
            ("replicate padding", {**release_like, "pad": "replicate"}, None),
            ("no VAE tiling (dove's default)", {**release_like, "pad": "replicate", "vae_tiling": False}, None),
            ("wavelet colour fix = dove's defaults, whole video",
             {**release_like, "pad": "replicate", "vae_tiling": False, "color_fix": "wavelet"}, None),
        ]  # fmt: skip
        outs = []
        for i, (name, opts, patch) in enumerate(steps):
            outs.append(run(model, patch=patch, **opts))
            if i:
                print(f"{name:55s} vs the step before: {compare(outs[i - 1], outs[i])}", flush=True)
        print(f"{'dove defaults (whole video) vs --parity':55s} {compare(outs[0], outs[-1])}")
        dove_whole = run(model, **{**release_like, "pad": "replicate", "vae_tiling": False})
        layout = dict(tile=512, tile_overlap=32, chunk=5, chunk_overlap=2)  # dove's default tile overlap
        for mode in ("cosine", "hard"):
            tiled = run(model, **{**release_like, "pad": "replicate", "vae_tiling": False, "blend": mode, **layout})
            print(f"{'dove tiles 512/32 + chunks 5/2, ' + mode:55s} vs one window: {compare(dove_whole, tiled)}")
        tiled = run(model, parity=True, tile=512)
        print(f"{'--parity --tile 512 (their cut, 32 px overlap)':55s} vs one window: {compare(outs[0], tiled)}")
        whole = run(model, cut, **{**release_like, "pad": "replicate", "vae_tiling": False})
        split = run(model, cut, **{**release_like, "pad": "replicate", "vae_tiling": False, "scene_cuts": "auto"})
        print(f"{'scene cuts (a window per shot), 8 + 9 frames':55s} vs one window: {compare(whole, split)}")
        print(f"{'  of which the 8 frames before the cut':55s} {compare(whole[:8], split[:8])}")


if __name__ == "__main__":
    sys.exit(main())
