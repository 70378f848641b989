"""Seam error against overlap: how much tile and chunk overlap seamless blending needs.

    python benchmarks/overlap_seams.py [--clip 002.mp4] [--frames 17]

Runs the tiny random DOVE (`--model tiny`, posterior mode, no colour fix, x2) on a demo clip once
whole (no tiles, no chunks) and then tiled or chunked with cosine blending at several overlaps,
all to PNG (lossless). For each layout it reports, against the whole-window output:

- PSNR over all pixels;
- seam jump: a seam shows as a step, so this compares steps. For tiles, the difference between
  neighbouring pixels across each window boundary (rows and columns), minus the same difference in
  the whole-window output, in absolute value, averaged along the boundary; for chunks, the change
  from frame to frame across each chunk boundary, likewise. Reported as a ratio to the same measure
  at places that are not boundaries: 1.0 means the boundaries step no more than anywhere else
  (seamless); a visible seam or a temporal pop is a ratio well above 1.

A random network's attention mixes its whole window, so it is a worst case for how far context
travels; no real weights could be measured here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dove_cli import upscale
from dove_cli.engine import build_random
from dove_cli.windows import plan_spans, plan_tiles

DEMO = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo"


def frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), dtype=np.float64) for p in sorted(folder.glob("*.png"))])


def band_ratio(err: np.ndarray, mask: np.ndarray) -> float:
    return float(err[mask].mean() / max(err[~mask].mean(), 1e-12))


def cuts(a, b, overlap: int) -> list[int]:
    """Steps (index i: between positions i and i+1) inside the band two windows share; the first
    step after the earlier window's end with no overlap."""
    if overlap == 0 or b.start >= a.stop:
        return [a.stop - 1]
    return list(range(b.start, a.stop - 1))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="002.mp4")
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--tile", type=int, default=192)
    ap.add_argument("--chunk", type=int, default=9)
    args = ap.parse_args()
    model = build_random("tiny", seed=0, posterior="mode")
    common = dict(restorer=model, posterior="mode", scale=2, color_fix="none", blend="cosine", codec="png",
                  preview=f"0+{args.frames / 16:.4f}s")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        whole_result = upscale(DEMO / args.clip, t / "whole" / "%04d.png", tile=0, chunk=0, **common)
        whole = frames(t / "whole")
        n, h, w = whole.shape[:3]
        print(f"{args.clip}: {n} frames, {w}x{h} output, tiny DOVE, cosine blending; PSNR and seam jump "
              "vs the whole-window run")  # fmt: skip
        print(f"{'layout':<28}{'PSNR dB':>10}{'seam jump':>15}")
        assert whole_result.frames == n
        for overlap in (0, 8, 16, 32, 64):
            out = t / f"tile{overlap}"
            upscale(DEMO / args.clip, out / "%04d.png", tile=args.tile, tile_overlap=overlap, chunk=0, **common)
            got = frames(out)
            ys, xs, used = plan_tiles(h + (-h % 16), w + (-w % 16), args.tile, overlap, 16)
            ratios = []
            for spans, axis in ((ys, 1), (xs, 2)):  # rows: steps between rows; columns: between columns
                step = np.abs(np.diff(got, axis=axis) - np.diff(whole, axis=axis)).mean(axis=(0, 3, 3 - axis))
                seams = {c for a, b in zip(spans, spans[1:], strict=False) for c in cuts(a, b, overlap)}
                mask = np.zeros(step.shape[0], bool)
                mask[[c for c in seams if c < step.shape[0]]] = True
                if mask.any():
                    ratios.append(band_ratio(step, mask))
            label = f"tile {args.tile}, overlap {used} px"
            print(f"{label:<28}{psnr(got, whole):>10.2f}{max(ratios):>15.2f}")
        for overlap in (o for o in (0, 2, 4, 8) if 2 * o < args.chunk):  # a chunk holds its overlap twice
            out = t / f"chunk{overlap}"
            upscale(DEMO / args.clip, out / "%04d.png", tile=0, chunk=args.chunk, chunk_overlap=overlap, **common)
            got = frames(out)
            spans = plan_spans(n, args.chunk, overlap)
            step = np.abs(np.diff(got, axis=0) - np.diff(whole, axis=0)).mean(axis=(1, 2, 3))
            mask = np.zeros(n - 1, bool)
            for a, b in zip(spans, spans[1:], strict=False):
                mask[[c for c in cuts(a, b, overlap) if c < n - 1]] = True
            err = step
            label = f"chunk {args.chunk}, overlap {overlap}"
            print(f"{label:<28}{psnr(got, whole):>10.2f}{band_ratio(err, mask):>15.2f}")


if __name__ == "__main__":
    main()
