"""`dove bench`: per-stage times and peak memory of the real pipeline on a synthetic or given clip."""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dove_cli import note, video_io
from dove_cli.errors import OptionError
from dove_cli.models import check_quantize, load_model, resolve_device
from dove_cli.options import UpscaleOptions, check_options
from dove_cli.reports import STAGE_NAMES, UpscaleResult
from dove_cli.threads import THREAD_STAGES
from dove_cli.timing import StageTimer
from dove_cli.upscaling import probe_input, refuse_before_loading, upscale

log = logging.getLogger(__name__)


def synthetic_clip(path: Path, frames: int, height: int, width: int, fps: int = 16) -> Path:
    """A moving, textured LQ clip (smooth gradients + detail), so codecs and models see real work."""
    info = video_io.VideoInfo(path=path, width=width, height=height, num_frames=frames, fps=Fraction(fps),
                              time_base=Fraction(1, fps))  # fmt: skip
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # warn=False: what a temporary clip loses (its RGB's chroma, in 4:2:0) is no news, and no option of bench's keeps it
    with video_io.open_writer(path, info, width, height, codec="h264", crf=18, audio="none", warn=False) as writer:
        for t in range(frames):
            phase = 2 * math.pi * t / max(frames, 1)
            r = 0.5 + 0.5 * np.sin(xx / 7.0 + phase)
            g = 0.5 + 0.5 * np.sin(yy / 5.0 - phase)
            b = 0.5 + 0.5 * np.sin((xx + yy) / 11.0 + 2 * phase)
            rgb = (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
            writer.write(rgb, t)
    return path


def run_bench(
    options: UpscaleOptions,
    *,
    input: Path | None = None,
    frames: int = 33,
    height: int = 720,
    width: int = 1280,
    warmup: int | None = None,
    repeat: int = 1,
) -> dict[str, Any]:
    """Run the streaming pipeline `warmup + repeat` times; report the fastest timed run.

    options: model, scale, windows and device as for `upscale`; the synthetic clip (unless `input`)
    has `frames` frames whose *output* size is about height x width.
    """
    scale, model = options.scale, options.model
    if input is None and frames < 1:
        raise OptionError(f"--frames {frames}: the synthetic clip needs at least 1 frame")
    if input is None and min(height, width) < 16 * scale:
        raise OptionError(f"--height/--width {height}x{width}: at --scale {scale} the output needs at least "
                          f"{16 * scale} px a side (16 input px)")  # fmt: skip
    if repeat < 1 or (warmup is not None and warmup < 0):
        raise OptionError("--repeat must be at least 1 and --warmup at least 0")
    opts = check_options(replace(options, color_fix="wavelet", overwrite=True, audio="none"))  # once, for every run
    dev, dt = resolve_device(opts)
    check_quantize(opts, dev)  # one line before anything is made or loaded
    if warmup is None:
        warmup = 1 if dev.type == "cuda" else 0
    with tempfile.TemporaryDirectory(prefix="dove-bench-") as tmp:
        # Even input sizes (4:2:0 H.264); the report gives the output size that really ran.
        clip = input or synthetic_clip(Path(tmp) / "lq.mp4", frames, height // scale // 2 * 2, width // scale // 2 * 2)
        refuse_before_loading(probe_input(clip, opts)[0], opts, dev, dt)  # the model may not fit at all
        if model == "full-random" and dev.type == "cpu":
            log.warning("building the 5.6e9-parameter model on the CPU: about %d GB of RAM and a very slow run",
                        11 if dt != torch.float32 else 22)  # fmt: skip
        note.info("dove bench: loading %s on %s", model, dev)  # (the table comes at the end: say what runs)
        restorer = load_model(opts, dev, dt)
        best: tuple[UpscaleResult, StageTimer] | None = None
        first = 0.0  # the first run's seconds: with --compile, the compilation (a one-time cost)
        for i in range(warmup + max(repeat, 1)):
            note.info("dove bench: run %d of %d%s", i + 1, warmup + repeat, " (warm-up, not timed)" * (i < warmup))
            timer = StageTimer(sync=True)
            result = upscale(clip, Path(tmp) / "out.mp4", opts, restorer=restorer, timer=timer)
            first = result.seconds if i == 0 else first
            if i >= warmup and (best is None or result.seconds < best[0].seconds):
                best = (result, timer)
    assert best is not None
    result, timer = best
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {
        "input": None if input is None else str(input.absolute()),  # None: the synthetic clip
        "model": model,
        "device": str(dev),
        "device_name": name,
        "dtype": str(dt).replace("torch.", ""),
        "frames": result.frames,
        "input_size": f"{result.plan.input_size[1]}x{result.plan.input_size[0]}",  # width x height, as ffmpeg
        "output_size": f"{result.plan.output_size[1]}x{result.plan.output_size[0]}",
        "tile": result.tile_used,
        "tiles": result.plan.tiles,  # per window, as planned
        "vae_tiles": result.plan.vae_tiling,  # the VAE decoded in tiles (asked, or past one piece)
        "chunk": result.plan.chunk,
        "seconds": result.seconds,
        "first_seconds": first,
        "fps": result.frames / result.seconds if result.seconds else 0.0,
        "stages": {k: round(v, 4) for k, v in timer.seconds.items()},
        "peak_host_bytes": result.peak_host_bytes,
        "peak_device_bytes": result.peak_device_bytes,
        "est_peak_device_bytes": result.plan.est_peak_device_bytes,
        "est_peak_host_bytes": result.plan.est_peak_host_bytes,
        "work_ratio": round(result.plan.work_ratio, 4),
        "options": {k: getattr(opts, k) for k in ("offload", "quantize", "compile", "vae_tiling")},
        "torch": torch.__version__,
    }


def stage_rows(stages: dict[str, float], total: float) -> list[tuple[str, float, str]]:
    """(stage in words, seconds, share of the wall time) for the bench table. The main thread's
    stages and "other" (opening, planning, start-up) add up to the total; decoding and encoding run
    on threads of their own beside them, so their shares are of the same wall time, not parts of it."""

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:.0f}%" if total > 0 else "-"

    main = {k: v for k, v in stages.items() if k not in THREAD_STAGES}
    other = max(total - sum(main.values()), 0.0)
    rows = [(STAGE_NAMES.get(k, k), v, share(v)) for k, v in main.items()]
    rows.append(("other (opening, planning)", other, share(other)))
    rows += [
        (f"{STAGE_NAMES.get(k, k)} (own thread)", stages[k], share(stages[k])) for k in THREAD_STAGES if k in stages
    ]
    return rows
