"""The streaming loop: reader -> windows -> engine -> blender -> writer, with progress and a plan.

Frames go forward only. LQ frames are kept while a future window may need them; output frames are
accumulated (weighted) while windows overlap them and written as soon as no future window can
touch them, so host memory depends on the window size, never on the video length.

Temporal windows end at scene cuts (scenes.py, found in the reader thread), and the output is
written as closed segments that an interrupted run continues with `resume=True` (resume.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F

from dove_cli import resume, video_io
from dove_cli.color_fix import ColorFix, apply_color_fix
from dove_cli.engine import DTYPES, BilinearModel, DoveModel, Restorer, upsample
from dove_cli.errors import InputError, Interrupted, ModelError, OptionError, OutOfMemory, OutputError
from dove_cli.scenes import SceneDetector
from dove_cli.timing import StageTimer, peak_gpu_bytes, peak_host_bytes
from dove_cli.windows import (
    BlendMode,
    ChunkStream,
    Span,
    axis_weights,
    check_chunk,
    check_tile,
    plan_spans,
    plan_tiles,
    span_weights,
)

log = logging.getLogger(__name__)

AUTO = -1  # tile/chunk value meaning "choose from free memory"
DEFAULT_CHUNK = 33  # the paper's clip length: 33 frames -> 9 latent frames
MIN_TILE = 64  # smallest tile an OOM retry goes down to (output px)
ACCUMULATOR_MAX_DEVICE_BYTES = 8 << 30  # blend on the GPU only up to this much (and 1/4 of the budget)
# Test hook: exit at once (os._exit, as a power loss would) when this many output frames are
# written, so that tests can check --resume after a hard kill. Never set it in normal use.
DIE_AFTER_ENV = "DOVE_TEST_DIE_AFTER_FRAMES"


@dataclass
class UpscaleOptions:
    """Everything `dove upscale` can be told. Sizes are output pixels; AUTO = choose from memory."""

    model: str | None = None  # None: the downloaded default; "bilinear"; "tiny"/"full-random"; path or hub id
    scale: int = 4
    tile: int = AUTO  # output px; 0 = whole frame
    tile_overlap: int = 64
    chunk: int = AUTO  # frames, 4k+1; 0 = whole video
    chunk_overlap: int = 8
    blend: BlendMode = "cosine"
    posterior: Literal["sample", "mode"] = "sample"
    seed: int = 42
    pad: Literal["replicate", "zero"] = "replicate"
    device: str | None = None  # cuda when present, else cpu
    dtype: str | None = None  # bf16 on cuda, fp32 on cpu
    offload: Literal["none", "model", "sequential"] = "none"
    vae_tiling: bool = False
    quantize: Literal["none", "int8", "nf4"] = "none"
    color_fix: ColorFix = "wavelet"
    codec: str | None = None  # None: the container's default (h264; vp9 for .webm)
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    codec_options: dict[str, str] = field(default_factory=dict)
    audio: Literal["copy", "transcode", "none"] = "copy"
    subtitles: Literal["copy", "none"] = "copy"
    fps: str | None = None  # frame rate for image-sequence input
    rotate: Literal["keep", "apply"] = "keep"
    ignore_decode_errors: bool = False
    deinterlace: Literal["off", "frame", "field"] = "off"  # bwdif: a frame per frame, or per field
    overwrite: bool = False
    resume: bool = False  # continue an interrupted run from its work folder (<output>.dove-work)
    scene_cuts: Literal["auto", "off"] = "auto"  # end temporal chunks at detected shot changes
    preview: str | None = None  # "START+DURATION", e.g. "1:20+5s"
    compare: bool = False
    manifest: str | None = None
    download: bool = False


@dataclass
class Plan:
    """What a run will do, decided before the first frame is processed (`--dry-run` prints it)."""

    input_size: tuple[int, int]  # LQ (h, w)
    padded_size: tuple[int, int]  # LQ after padding to the model's block
    output_size: tuple[int, int]  # (s*h, s*w)
    frames: int  # as probed (estimate for some containers)
    fps: Fraction
    chunk: int
    chunk_overlap: int
    tile: int
    tile_overlap: int
    tiles: int
    chunks: int
    device: str
    dtype: str
    est_peak_device_bytes: int
    est_peak_host_bytes: int
    est_seconds: float | None
    model_note: str = ""  # how the model was sized when no weights were read (--dry-run)
    blend_on_device: bool = False  # the float frame accumulators live on the GPU (see make_plan)

    def windows(self) -> int:
        return self.tiles * self.chunks


@dataclass
class Progress:
    frames_done: int
    frames_total: int
    window: str
    seconds: float


@dataclass
class UpscaleResult:
    output: Path
    frames: int
    seconds: float
    peak_host_bytes: int
    peak_device_bytes: int
    plan: Plan
    tile_used: int
    offload_used: str
    retries: int
    stages: dict[str, float]
    resumed_from: int = 0  # output frames that were already saved by an interrupted run
    windows_run: int = 0  # temporal windows the model processed in this run
    windows_skipped: int = 0  # windows whose frames were all saved already (--resume)
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot
    dropped_frames: int = 0  # undecodable frames skipped (--ignore-decode-errors)

    def summary(self) -> str:
        gib = 1024**3
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        dev = f", peak GPU {self.peak_device_bytes / gib:.2f} GiB" if self.peak_device_bytes else ""
        tile = f"tile {self.tile_used or 'none'}"
        retry = f", {self.retries} OOM retries" if self.retries else ""
        extra = f", {len(self.cuts)} scene cuts" if self.cuts else ""
        if self.resumed_from:
            skipped = self.windows_skipped
            extra += f", resumed after frame {self.resumed_from} ({skipped} window{'s' * (skipped != 1)} skipped)"
        if self.dropped_frames:
            extra += f", {self.dropped_frames} undecodable frames dropped"
        return (
            f"{self.frames} frames in {self.seconds:.1f} s ({fps:.2f} fps), peak host "
            f"{self.peak_host_bytes / gib:.2f} GiB{dev}; {tile}, chunk {self.plan.chunk or 'none'}, "
            f"offload {self.offload_used}{retry}{extra} -> {self.output}"
        )


# ---------------------------------------------------------------------------- options and models


def parse_size_option(value: str | int, name: str) -> int:
    """'auto' -> AUTO, otherwise a non-negative integer."""
    if isinstance(value, int):
        return value
    if value.strip().lower() == "auto":
        return AUTO
    try:
        n = int(value)
    except ValueError:
        raise OptionError(f"{name} must be a number or 'auto', got {value!r}") from None
    if n < 0:
        raise OptionError(f"{name} must not be negative, got {n}")
    return n


_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)s?$")


def parse_time(text: str) -> float:
    """'80', '80.5s', '1:20', '01:01:20.5' -> seconds."""
    m = _TIME.match(text.strip())
    if not m:
        raise OptionError(f"cannot read time {text!r} (use seconds, M:SS or H:MM:SS)")
    a, b, c = m.groups()
    parts = [float(x) for x in (a, b) if x is not None] + [float(c)]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def parse_preview(text: str) -> tuple[float, float]:
    """'1:20+5s' -> (80.0, 5.0)."""
    if "+" not in text:
        raise OptionError(f"--preview {text!r} must be START+DURATION, e.g. 1:20+5s")
    start, dur = text.split("+", 1)
    s, d = parse_time(start), parse_time(dur)
    if d <= 0:
        raise OptionError(f"--preview duration must be positive in {text!r}")
    return s, d


def resolve_device(opts: UpscaleOptions) -> tuple[torch.device, torch.dtype]:
    """cuda when present (else cpu, with a warning), bf16 on cuda and fp32 on cpu by default."""
    name = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"unknown --device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda was asked for, but no CUDA GPU is visible")
    if device.type == "cuda":
        if device.index is None:  # "cuda" != "cuda:0" to torch and accelerate: always name the index
            device = torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            raise OptionError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        torch.cuda.set_device(device)  # what libraries that use "the current GPU" (bitsandbytes, timers) see
    if opts.dtype is not None and opts.dtype not in DTYPES:
        raise OptionError(f"--dtype {opts.dtype!r} is not one of {', '.join(DTYPES)}")
    dtype = DTYPES[opts.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    return device, dtype


def load_model(opts: UpscaleOptions, device: torch.device, dtype: torch.dtype) -> Restorer:
    """'bilinear', 'tiny', 'full-random', or real weights (a folder, hub id, or the default)."""
    name = opts.model
    if name == "bilinear":
        if opts.quantize != "none" or opts.offload != "none":
            log.warning("--model bilinear has no network: --quantize and --offload do nothing")
        return BilinearModel(device)
    if dtype == torch.float16:
        log.warning("--dtype fp16: CogVideoX1.5 was trained in bf16 and can overflow in fp16 (the run stops if it "
                    "does); bf16 is the safe choice")
    if size := _random_size(opts):
        from dove_cli.engine import build_random

        return build_random(size, device=device, dtype=dtype, posterior=opts.posterior, offload=opts.offload,
                            vae_tiling=opts.vae_tiling)  # fmt: skip
    from dove_cli.weights import resolve_model

    folder = resolve_model(name, download=opts.download)
    return DoveModel.from_pretrained(
        folder,
        device=device,
        dtype=dtype,
        posterior=opts.posterior,
        quantize=opts.quantize,
        offload=opts.offload,
        vae_tiling=opts.vae_tiling,
    )


def _random_size(opts: UpscaleOptions) -> Literal["tiny", "full"] | None:
    """'tiny' / 'full' for --model tiny / full-random (random weights built in memory), else None."""
    if opts.model not in ("tiny", "full-random"):
        return None
    if opts.quantize != "none":
        raise OptionError(f"--quantize is applied while loading weights; --model {opts.model} is built in memory")
    return "tiny" if opts.model == "tiny" else "full"


def planning_model(opts: UpscaleOptions, device: torch.device, dtype: torch.dtype) -> tuple[Restorer, str]:
    """The model for a --dry-run: its architecture on the meta device, no weights read or downloaded.

    A folder's own configs when the weights are here; before `dove download-weights`, the
    CogVideoX1.5-5B architecture every DOVE checkpoint shares, so a plan can come before 11 GB of
    downloads. Returns the model and a note on how it was sized.
    """
    from dove_cli import engine, weights

    name = opts.model
    if name == "bilinear":
        return load_model(opts, device, dtype), ""
    if size := _random_size(opts):
        return engine.skeleton(*engine.RANDOM_CONFIGS[size], device=device, dtype=dtype), ""
    try:
        folder = weights.resolve_model(name, download=False)
    except ModelError:
        if name and (Path(name).expanduser().exists() or not weights.is_hub_id(name)):
            raise  # a folder that is broken or absent: the same error a real run gives
        note = "weights not downloaded yet: planned for the CogVideoX1.5-5B architecture of every DOVE checkpoint"
        return engine.skeleton(*engine.RANDOM_CONFIGS["full"], device=device, dtype=dtype, quantize=opts.quantize), note
    configs = []
    for part in ("transformer", "vae"):
        try:
            configs.append(json.loads((folder / part / "config.json").read_text()))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{folder / part / 'config.json'}: cannot read the model config ({exc})") from None
    return engine.skeleton(*configs, device=device, dtype=dtype, quantize=opts.quantize), f"sized from {folder}"


def validate(opts: UpscaleOptions) -> None:
    if opts.scale < 1 or opts.scale > 8:
        raise OptionError(f"--scale {opts.scale} is out of range (1 to 8)")
    if opts.chunk != AUTO:
        check_chunk(opts.chunk, opts.chunk_overlap)
    elif opts.chunk_overlap < 0:
        raise OptionError("--chunk-overlap must not be negative")
    if opts.tile != AUTO:
        check_tile(opts.tile, opts.tile_overlap, 16)
    elif opts.tile_overlap < 0:
        raise OptionError(f"--tile-overlap {opts.tile_overlap} must not be negative")
    if opts.preview:
        parse_preview(opts.preview)
    if opts.fps is not None:
        try:
            rate = Fraction(str(opts.fps))
        except (ValueError, ZeroDivisionError):
            rate = Fraction(0)
        if rate <= 0:
            raise OptionError(f"--fps {opts.fps} is not a positive frame rate (e.g. 24, 29.97 or 30000/1001)")
    if opts.scene_cuts not in ("auto", "off"):
        raise OptionError(f"--scene-cuts {opts.scene_cuts!r} is not one of: auto, off")


# ---------------------------------------------------------------------------- planning


def _block(scale: int, multiple: int) -> int:
    """LQ padding block: the smallest q such that scale * q is a multiple of the model's block."""
    return multiple // math.gcd(multiple, scale)


def _memory_budget(device: torch.device, not_yet_loaded: int = 0) -> int:
    """Bytes a window may use, of what is free now less the weights that will arrive later."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's own cache is ours
        return int(max(0, free - not_yet_loaded) * 0.85)
    import psutil

    return int(max(0, psutil.virtual_memory().available - not_yet_loaded) * 0.5)


def weights_to_come(model: Restorer, offload: str, device: torch.device) -> int:
    """Weight bytes that will share the window's memory during the run but do not take any now.

    A skeleton (--dry-run) has none loaded yet; with --offload model the parts wait on the host and
    take their turn on the GPU (sequential offload brings one layer at a time: left out).
    """
    if not isinstance(model, DoveModel):
        return 0
    if device.type == "cuda" and offload == "model":
        return model.weights_bytes()
    if model.is_skeleton and (device.type != "cuda" or offload == "none"):
        return model.weights_bytes()
    return 0


def resolve_chunk(chunk: int, frames: int) -> int:
    """--chunk auto: the whole clip when it is no longer than the paper's 33 frames, else 33."""
    if chunk != AUTO:
        return chunk
    return 0 if 0 < frames <= DEFAULT_CHUNK else DEFAULT_CHUNK


def choose_windows(
    model: Restorer, frames: int, height: int, width: int, opts: UpscaleOptions, budget: int
) -> tuple[int, int]:
    """(chunk, tile) from the options, choosing AUTO values so that one window fits `budget`."""
    m = model.spatial_multiple
    chunk = resolve_chunk(opts.chunk, frames)
    tile = opts.tile
    max_pixels = getattr(model, "max_window_pixels", None)
    if tile == AUTO:
        win_frames = chunk or frames
        tile = 0
        side = max(height, width)
        while True:
            th, tw = min(side, height), min(side, width)
            fits = model.estimate_window_bytes(win_frames, th, tw) <= budget
            if (fits and (max_pixels is None or th * tw <= max_pixels)) or side <= MIN_TILE:
                break
            side = max(MIN_TILE, (side * 3 // 4) // m * m)
        if side < max(height, width):
            tile = side
    elif max_pixels is not None:
        th, tw = min(tile or height, height), min(tile or width, width)
        if th * tw > max_pixels:
            raise OptionError(
                f"--tile {tile or 0}: {tw}x{th} windows are more than the CogVideoX VAE decodes in one piece "
                f"(about {max_pixels / 1e6:.1f} MP, a diffusers limit); use --tile {math.isqrt(max_pixels) // m * m} "
                "or smaller, or --vae-tiling"
            )
    return chunk, tile


def make_plan(info: "video_io.VideoInfo", model: Restorer, opts: UpscaleOptions, device: torch.device, dtype: torch.dtype) -> Plan:
    h, w = info.height, info.width
    if min(h, w) < 8:
        raise InputError(f"{info.path}: frame size {w}x{h} is too small (at least 8 px a side)")
    q = _block(opts.scale, model.spatial_multiple)
    hp, wp = -(-h // q) * q, -(-w // q) * q
    big_h, big_w = hp * opts.scale, wp * opts.scale
    frames = info.num_frames or 0
    if opts.preview:
        start, dur = parse_preview(opts.preview)
        frames = max(1, min(frames or 10**9, math.ceil(dur * float(info.fps or 25))))
    budget = _memory_budget(device, weights_to_come(model, opts.offload, device))
    # The float accumulators of the frames being blended: on the GPU when they are small next to it
    # (then only 8-bit frames cross to the host), and then the windows get that much less room.
    accumulators = _accumulator_bytes(resolve_chunk(opts.chunk, frames), frames, big_h, big_w, opts.chunk_overlap)
    blend_on_device = device.type == "cuda" and accumulators < min(budget // 4, ACCUMULATOR_MAX_DEVICE_BYTES)
    chunk, tile = choose_windows(model, frames, big_h, big_w, opts, budget - accumulators * blend_on_device)
    ys, xs, tile_overlap = plan_tiles(big_h, big_w, tile, opts.tile_overlap, model.spatial_multiple)
    chunks = len(plan_spans(frames, chunk, opts.chunk_overlap)) if frames else 0
    win_f = chunk or frames
    th, tw = ys[0].length, xs[0].length
    weights = model.weights_bytes()
    act = model.estimate_window_bytes(max(win_f, 1), th, tw)
    lq_frames = (win_f + chunk) * hp * wp * 3 * 2
    host = lq_frames + (0 if blend_on_device else accumulators)
    if device.type == "cpu":
        host += weights + act
    per_window = _estimate_seconds(model, device, max(win_f, 1), th, tw)
    est = None if per_window is None else per_window * len(ys) * len(xs) * max(chunks, 1)
    return Plan(
        input_size=(h, w),
        padded_size=(hp, wp),
        output_size=(h * opts.scale, w * opts.scale),
        frames=frames,
        fps=info.fps,
        chunk=chunk,
        chunk_overlap=opts.chunk_overlap if chunk else 0,
        tile=ys[0].length if len(ys) > 1 or len(xs) > 1 else 0,
        tile_overlap=tile_overlap,
        tiles=len(ys) * len(xs),
        chunks=chunks,
        device=str(device),
        dtype=str(dtype).replace("torch.", ""),
        est_peak_device_bytes=(weights + act + accumulators * blend_on_device) if device.type == "cuda" else 0,
        est_peak_host_bytes=int(host),
        est_seconds=est,
        blend_on_device=blend_on_device,
    )


def _warn_if_host_memory_short(plan: Plan) -> None:
    """Say so before hours of swapping (or an OOM kill) when the plan needs more RAM than is free."""
    import psutil

    available = psutil.virtual_memory().available
    if plan.est_peak_host_bytes > available:
        log.warning("this run needs about %.1f GiB of host memory and %.1f GiB is available: it may swap or be "
                    "killed; a shorter --chunk or a smaller --scale needs less", plan.est_peak_host_bytes / 2**30,
                    available / 2**30)


def _accumulator_bytes(chunk: int, frames: int, height: int, width: int, overlap: int) -> int:
    """float32 output frames held while they are blended: two windows' worth and the overlap."""
    return (2 * (chunk or frames or 1) + overlap + 2) * 3 * height * width * 4


def _estimate_seconds(model: Restorer, device: torch.device, frames: int, h: int, w: int) -> float | None:
    """FLOP-count estimate at an assumed sustained rate (rough: a guide for --dry-run only)."""
    if not isinstance(model, DoveModel):
        return None
    cfg = model.transformer.config
    frames += (-(frames - 1)) % 8
    lat = 1 + (frames - 1) // 4
    tokens = math.ceil(lat / (cfg.patch_size_t or 1)) * (h // 16) * (w // 16) + cfg.max_text_seq_length
    params = sum(p.numel() for p in model.transformer.parameters())
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    flops = 2 * params * tokens + 4 * tokens * tokens * dim * cfg.num_layers
    flops += 2 * 3.0e12 * frames * h * w / (720 * 1280)  # VAE encode+decode: ~3 TFLOP per 720p frame
    rate = 4.0e14 if device.type == "cuda" else 2.0e11
    return flops / rate


# ---------------------------------------------------------------------------- frames and windows


def pad_frame(frame: torch.Tensor, hp: int, wp: int, mode: str) -> torch.Tensor:
    """[3, h, w] -> [3, hp, wp], padding on the right/bottom (zeros, or repeating the edge)."""
    _, h, w = frame.shape
    if (h, w) == (hp, wp):
        return frame
    if mode == "zero":
        return F.pad(frame, (0, wp - w, 0, hp - h))
    rows = torch.cat([frame, frame[:, -1:].expand(-1, hp - h, -1)], dim=1)
    return torch.cat([rows, rows[:, :, -1:].expand(-1, -1, wp - w)], dim=2)


def lq_window(frames: list[torch.Tensor], ys: Span, xs: Span, scale: int) -> tuple[torch.Tensor, int, int]:
    """The LQ crop whose upsampling covers an output window exactly, with a 1 px context margin.

    Returns ([F, 3, lh, lw], row offset, column offset) of the window inside the upsampled crop.
    """
    hp, wp = frames[0].shape[-2:]
    ly0, ly1 = max(ys.start // scale - 1, 0), min(-(-ys.stop // scale) + 1, hp)
    lx0, lx1 = max(xs.start // scale - 1, 0), min(-(-xs.stop // scale) + 1, wp)
    crop = torch.stack([f[:, ly0:ly1, lx0:lx1] for f in frames])
    return crop, ys.start - ly0 * scale, xs.start - lx0 * scale


def quantize(x: torch.Tensor, bits16: bool) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> [H, W, 3] uint8/uint16, rounding (the release truncates)."""
    top = 65535.0 if bits16 else 255.0
    q = (x * top).round_().clamp_(0, top)  # on the accumulator's device: only bytes cross to the host
    return q.to(torch.int32 if bits16 else torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy().astype(
        np.uint16 if bits16 else np.uint8, copy=False
    )


def _threaded(items: Iterable[Any], timer: StageTimer, depth: int = 8) -> Iterator[Any]:
    """Iterate `items` in a background thread, so decoding overlaps model work."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            it = iter(items)
            while True:
                t0 = time.perf_counter()
                item = next(it, done)
                timer.seconds["decode"] += time.perf_counter() - t0
                if item is done:
                    break
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=work, name="dove-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class _Writer:
    """Encodes on a background thread behind a bounded queue, so the model never waits for it.

    Items are (frame index, rgb, pts, end of segment); see resume.SegmentedWriter.end_segment.
    """

    def __init__(self, writer: Any, timer: StageTimer, depth: int = 8) -> None:
        self.writer, self.timer = writer, timer
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.die_after = int(os.environ.get(DIE_AFTER_ENV) or 0)
        self.thread = threading.Thread(target=self._run, name="dove-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None:
                try:
                    index, rgb, pts, end = item
                    t0 = time.perf_counter()
                    self.writer.write(rgb, pts)
                    if end:
                        self.writer.end_segment()
                    self.timer.seconds["encode"] += time.perf_counter() - t0
                    if self.die_after and index + 1 >= self.die_after:
                        os._exit(1)  # the test hook: die like a power loss, no clean-up
                except BaseException as exc:
                    self.error = exc

    def write(self, index: int, rgb: np.ndarray, pts: int | None, end: bool = False) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((index, rgb, pts, end))

    def finish(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


# ---------------------------------------------------------------------------- the loop


class _Runner:
    """State of one streaming run: buffers, accumulators and the current tiling."""

    def __init__(self, model: Restorer, plan: Plan, opts: UpscaleOptions, timer: StageTimer) -> None:
        self.model, self.plan, self.opts, self.timer = model, plan, opts, timer
        self.scale = opts.scale
        hp, wp = plan.padded_size
        self.big = (hp * self.scale, wp * self.scale)
        self.lq: dict[int, torch.Tensor] = {}  # frame index -> padded LQ frame [3, hp, wp]
        self.pts: dict[int, int | None] = {}
        self.acc: dict[int, torch.Tensor] = {}  # frame index -> weighted mean so far [3, H, W] float32
        self.wsum: dict[int, float] = {}  # frame index -> weight so far
        self.max_value = 255
        self.tile = plan.tile
        self.tile_overlap = plan.tile_overlap
        self.tile_changes: list[list[int]] = []  # shared with the resume journal
        self.on_tile_change: Callable[[], None] | None = None
        self.retries = 0
        self.offload_used = opts.offload
        # Blend and finish on the GPU when the plan made room there (only 8-bit frames cross to the host).
        self.acc_device = model.device if plan.blend_on_device else torch.device("cpu")
        self._set_tiles(self.tile)

    def _set_tiles(self, tile: int) -> None:
        ys, xs, overlap = plan_tiles(*self.big, tile, self.tile_overlap, self.model.spatial_multiple)
        self.ys, self.xs = ys, xs
        self.wy = axis_weights(ys, overlap, self.opts.blend)
        self.wx = axis_weights(xs, overlap, self.opts.blend)
        self.tile = tile

    def run_chunk(self, span: Span) -> None:
        """Restore every tile of one temporal window and add it, weighted, to the accumulators."""
        scheduled = [tile for start, tile in self.tile_changes if start <= span.start]
        if scheduled and scheduled[-1] != self.tile:  # a resume repeats the interrupted run's shrinks
            self._set_tiles(scheduled[-1])
        while True:
            try:
                out = self._restore_chunk(span)
                break
            except torch.OutOfMemoryError:
                pass
            self._shrink(span)  # out of the except block: the failed attempt's tensors are freed by now
        with self.timer.stage("blend"):
            wt = span_weights(span, self.opts.chunk_overlap, self.opts.blend)
            for i, t in enumerate(range(span.start, span.stop)):
                if wt[i] == 0.0:
                    continue
                if t in self.acc:
                    self.wsum[t] += float(wt[i])
                    self.acc[t].add_(out[i] - self.acc[t], alpha=float(wt[i]) / self.wsum[t])
                else:
                    self.acc[t], self.wsum[t] = out[i].clone(), float(wt[i])  # not a view: frees `out`

    def _change_tiles(self, span: Span, tile: int) -> None:
        """Tile from this chunk on, journaled so that a resume repeats the change."""
        self._set_tiles(tile)
        self.tile_changes.append([span.start, tile])
        if self.on_tile_change:
            self.on_tile_change()

    def _shrink(self, span: Span) -> None:
        """After a device OOM: smaller tiles, then offload, then give up with a clear message."""
        self.retries += 1
        if self.model.device.type == "cuda":
            torch.cuda.empty_cache()
        current = self.tile or max(self.big)
        m = self.model.spatial_multiple
        if current > MIN_TILE:
            new = max(MIN_TILE, (current // 2) // m * m)
            log.warning("out of GPU memory at frames %d-%d; retrying with --tile %d", span.start, span.stop, new)
            self._change_tiles(span, new)
            return
        if isinstance(self.model, DoveModel) and self.offload_used == "none" and self.model.quantize == "none":
            log.warning("out of GPU memory at the smallest tile; retrying with --offload model and the planned tiles")
            self.model.transformer.to("cpu")
            self.model.vae.to("cpu")
            self.model._place("model", vae_tiling=True)
            self.offload_used = "model"
            if self.plan.tile != self.tile:  # 11 GB of weights left the GPU: the planned tiles may fit now
                self._change_tiles(span, self.plan.tile)
            return
        raise OutOfMemory(
            f"out of GPU memory even with --tile {current} and --offload {self.offload_used}; "
            "try --quantize nf4, --offload sequential or a shorter --chunk"
        )

    def _restore_chunk(self, span: Span) -> torch.Tensor:
        frames = [self.lq[t] for t in range(span.start, span.stop)]
        if len(self.ys) * len(self.xs) == 1:  # one tile, weight 1 everywhere: its output is the result
            return self._restore_tile(frames, self.ys[0], self.xs[0], span).to(self.acc_device)
        out = torch.zeros(len(frames), 3, *self.big, dtype=torch.float32, device=self.acc_device)
        covered = torch.zeros(*self.big, dtype=torch.float32, device=self.acc_device)  # weight so far
        for iy, ys in enumerate(self.ys):
            for ix, xs in enumerate(self.xs):
                res = self._restore_tile(frames, ys, xs, span)
                with self.timer.stage("blend"):
                    weight = torch.from_numpy(np.outer(self.wy[iy], self.wx[ix])).float().to(self.acc_device)
                    region = (slice(ys.start, ys.stop), slice(xs.start, xs.stop))
                    blend_into(out[:, :, region[0], region[1]], covered[region], res.to(self.acc_device), weight)
        return out

    def _restore_tile(self, frames: list[torch.Tensor], ys: Span, xs: Span, span: Span) -> torch.Tensor:
        """One window through the model: [F, 3, h, w] in [0, 1] on the model's device."""
        device = self.model.device
        with self.timer.stage("upsample"):
            crop, oy, ox = lq_window(frames, ys, xs, self.scale)
            # Interpolate code values (as the release does): with k/(2s) weights the
            # sums are exact in float32, so a tile equals the same crop of the whole frame.
            up = upsample(crop.to(device).float(), self.scale)[:, :, oy : oy + ys.length, ox : ox + xs.length]
            video = (up / self.max_value * 2.0 - 1.0).permute(1, 0, 2, 3)[None]  # [1, 3, F, H, W]
            del crop, up  # not held through the transformer and the decode
        gen = torch.Generator(device).manual_seed(self.opts.seed)
        res = self.model.restore(video, generator=gen, timer=self.timer)[0].permute(1, 0, 2, 3)
        if isinstance(self.model, DoveModel) and not bool(torch.isfinite(res).all()):
            hint = " (fp16 overflows in this model: use --dtype bf16)" if self.model.dtype == torch.float16 else ""
            raise ModelError(f"the model's output for frames {span.start}-{span.stop - 1} is not finite "
                             f"(NaN/Inf){hint}")
        return res

    def discard(self, t: int) -> None:
        """Forget frame t without finishing it (already saved by an interrupted run)."""
        self.acc.pop(t, None)
        self.wsum.pop(t, None)
        self.pts.pop(t, None)

    def finish_frame(self, t: int) -> tuple[np.ndarray, int | None]:
        """Normalise, crop the padding, colour-fix and quantise one final frame."""
        frame = self.acc.pop(t)  # already the weighted mean
        self.wsum.pop(t)
        h, w = self.plan.output_size
        frame = frame[:, :h, :w]
        opts = self.opts
        need_ref = (opts.color_fix != "none" and not isinstance(self.model, BilinearModel)) or opts.compare
        if need_ref:
            lq = self.lq[t][:, : self.plan.input_size[0], : self.plan.input_size[1]].to(self.acc_device)
            # the same expression as the model input and the bilinear model, so `--compare` halves agree
            ref = ((upsample(lq[None].float(), self.scale)[0] / self.max_value * 2.0 - 1.0) * 0.5 + 0.5).clamp(0, 1)
            if opts.color_fix != "none" and not isinstance(self.model, BilinearModel):
                frame = apply_color_fix(opts.color_fix, frame[None], ref[None])[0]
            if opts.compare:
                frame = torch.cat([ref, frame], dim=2)
        return quantize(frame, self.out16), self.pts.pop(t)


def blend_into(mean: torch.Tensor, covered: torch.Tensor, value: torch.Tensor, weight: torch.Tensor) -> None:
    """Fold `value` with `weight` into a running weighted mean, in place (`covered`: weight so far).

    A running mean (m += (v - m) * w / W) instead of sum-then-divide: where overlapping windows
    agree, the result is exactly that value, so tiles and chunks cannot add rounding seams.
    """
    covered += weight
    ratio = torch.where(covered > 0, weight / covered.clamp_min(1e-30), torch.zeros_like(weight))
    mean.add_((value - mean) * ratio)


def upscale(
    input: str | Path,
    output: str | Path,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: bool = False,
    timer: StageTimer | None = None,
    **overrides: Any,
) -> UpscaleResult | Plan:
    """Upscale `input` into `output` (a video file or an image pattern like frames/%06d.png).

    Options are an `UpscaleOptions` and/or keyword overrides of its fields. Returns the plan when
    `dry_run`, else the result with timings and peak memory. Raises DoveError for user mistakes,
    Interrupted (exit code 130) on Ctrl-C, with the finished part kept for `resume=True`.
    """
    opts = replace(options or UpscaleOptions(), **overrides)
    validate(opts)
    timer = timer or StageTimer()
    t_start = time.perf_counter()
    with video_io.open_reader(input, fps=opts.fps, rotate=opts.rotate, deinterlace=opts.deinterlace) as probe:
        info = probe.info
    output = Path(output)
    inputs = info.files or [Path(info.path)]
    if opts.resume and not opts.overwrite and output.exists() and not resume.work_folder(output).exists():
        raise OutputError(f"{output}: already exists and no run into it was interrupted, so there is nothing to "
                          "resume (use --overwrite to redo it)")
    video_io.check_output(output, overwrite=opts.overwrite, inputs=inputs)
    if not dry_run and (dropped := video_io.attachments_dropped(info, output, opts.subtitles)):
        log.warning("%s", dropped)
    manifest = Path(opts.manifest) if opts.manifest else None
    if manifest is not None:
        if manifest.absolute() == output.absolute():
            raise OptionError(f"--manifest {manifest} is the output file; give it its own name, like {output}.json")
        video_io.check_output(manifest, overwrite=opts.overwrite, inputs=inputs)
    device, dtype = resolve_device(opts)
    work = resume.Work(output) if resume.resumable(output) else None
    fingerprint = run_fingerprint(opts, info, device, dtype)
    try:  # the work folder's lock is held from work.check() on
        journal = None  # the interrupted run to continue (a dry run looks only when told to --resume)
        if work is not None and (opts.resume or not dry_run):
            journal = work.check(fingerprint, resume=opts.resume, overwrite=opts.overwrite)
        resumed = journal is not None
        if device.type == "cpu" and opts.model not in ("bilinear", "tiny"):
            log.warning("running on the CPU: this is very slow; a CUDA GPU is strongly recommended")
        if restorer is not None:
            model, note = restorer, ""
        elif dry_run:  # plans from the architecture alone: nothing loaded, nothing downloaded
            model, note = planning_model(opts, device, dtype)
        else:
            model, note = load_model(opts, device, dtype), ""
        # A resumed run must use the windows the interrupted one chose ('auto' depends on free memory).
        plan_opts = replace(opts, chunk=journal.chunk, tile=journal.tile) if journal else opts
        plan = replace(make_plan(info, model, plan_opts, device, dtype), model_note=note)
        _warn_if_host_memory_short(plan)
        if dry_run:
            return plan
        if journal is None:
            journal = resume.Journal(fingerprint, chunk=plan.chunk, tile=plan.tile)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        runner = _Runner(model, plan, opts, timer)
        runner.tile_changes = journal.tile_changes
        if work is not None:
            runner.on_tile_change = lambda: work.save(journal)
        made = video_io.make_folder(output.parent, output)  # the resume work folder sits beside the output
        try:
            stats = _stream(input, output, info, runner, plan, opts, progress, t_start, timer, work, journal, resumed)
        except KeyboardInterrupt:
            video_io.remove_made_folders(made)  # only if still empty
            if work is None:
                raise Interrupted(f"{output}: interrupted; nothing was kept") from None
            raise Interrupted(
                f"{output}: interrupted; {work.saved(journal)} frames are saved in {work.path}; "
                "run the same command with --resume to continue"
            ) from None
        except BaseException:
            if work is not None and work.path.exists():
                if work.saved(journal):
                    log.warning("%s: %d finished frames are kept; run the same command with --resume to continue",
                                work.path, work.saved(journal))
                else:
                    work.remove()
            video_io.remove_made_folders(made)
            raise
        if work is not None:
            work.remove()
        result = UpscaleResult(
            output=output,
            frames=stats.written,
            seconds=time.perf_counter() - t_start,
            peak_host_bytes=peak_host_bytes(),
            peak_device_bytes=peak_gpu_bytes(device),
            plan=plan,
            tile_used=runner.tile,
            offload_used=runner.offload_used,
            retries=runner.retries,
            stages=dict(timer.seconds),
            resumed_from=stats.resumed_from,
            windows_run=stats.windows_run,
            windows_skipped=stats.windows_skipped,
            cuts=stats.cuts,
            dropped_frames=stats.dropped_frames,
        )
        if manifest is not None:
            write_manifest(manifest, input, opts, result, model)
        return result
    finally:
        if work is not None:
            work.release()


# Options that do not change the output's pixels or video stream: a resume may change them.
_NOT_PIXELS = ("overwrite", "resume", "manifest", "download", "audio", "subtitles", "device", "dtype", "offload",
               "ignore_decode_errors")


def run_fingerprint(
    opts: UpscaleOptions, info: "video_io.VideoInfo", device: torch.device, dtype: torch.dtype
) -> dict[str, Any]:
    """Everything that must be equal for a resumed run to continue an interrupted one exactly."""
    fp = {k: v for k, v in asdict(opts).items() if k not in _NOT_PIXELS}
    fp["codec_options"] = resume.encoder_options(opts.codec_options)
    fp.update(device=device.type, dtype=str(dtype).replace("torch.", ""), segment_min_frames=resume.SEGMENT_MIN_FRAMES)
    fp.update(resume.input_identity(info))
    return json.loads(json.dumps(fp, default=str))  # as it reads back from the journal


@dataclass
class _StreamStats:
    written: int = 0
    resumed_from: int = 0
    windows_run: int = 0
    windows_skipped: int = 0
    cuts: list[int] = field(default_factory=list)
    dropped_frames: int = 0


def _with_cuts(frames: Iterable["video_io.Frame"], detector: SceneDetector | None) -> Iterator[tuple[Any, bool]]:
    """(frame, starts a new shot); runs in the reader thread, so detection overlaps model work."""
    for frame in frames:
        yield frame, (detector.push(frame.rgb) if detector is not None else False)


def _stream(
    input: str | Path,
    output: Path,
    info: "video_io.VideoInfo",
    runner: _Runner,
    plan: Plan,
    opts: UpscaleOptions,
    progress: Callable[[Progress], None] | None,
    t_start: float,
    timer: StageTimer,
    work: resume.Work | None,
    journal: resume.Journal,
    resumed: bool,
) -> _StreamStats:
    """Read, plan windows (shot-aware), restore, blend, write; skip the model for saved frames.

    A resumed run replays the same plan from the first frame (decoding is cheap next to the
    model), runs only windows that reach past the saved frames, and closes segments at the same
    frames as an uninterrupted run: at the first `final` position SEGMENT_MIN_FRAMES past the
    previous boundary, which depends only on the plan.
    """
    hp, wp = plan.padded_size
    out_h, out_w = plan.output_size
    if opts.compare:
        out_w *= 2
    start, duration = parse_preview(opts.preview) if opts.preview else (None, None)
    runner.out16 = _wants_16bit(opts.pix_fmt, info)
    chunks = ChunkStream(plan.chunk, plan.chunk_overlap)
    detector = SceneDetector() if opts.scene_cuts == "auto" else None
    first = work.start(journal, resumed) if work is not None else 0
    stats = _StreamStats(resumed_from=first)
    if first:
        log.info("%s: resuming after %d saved frames", output, first)
    written = 0
    read = 0
    seg_start = first
    total = plan.frames
    reader_opts = dict(fps=opts.fps, rotate=opts.rotate, ignore_decode_errors=opts.ignore_decode_errors,
                       deinterlace=opts.deinterlace, warn=False)  # the probe above warned once
    writer_options = dict(codec=opts.codec, crf=opts.crf, preset=opts.preset, pix_fmt=opts.pix_fmt,
                          codec_options=resume.encoder_options(opts.codec_options))  # fmt: skip
    join_options = dict(audio=opts.audio, subtitles=opts.subtitles, overwrite=opts.overwrite, start=start,
                        end=None if start is None else start + duration)  # fmt: skip
    with video_io.open_reader(input, start=start, duration=duration, **reader_opts) as reader, resume.open_output(
        work, journal, output, info, out_w, out_h, first=first, writer_options=writer_options, join_options=join_options
    ) as raw_writer:
        writer = _Writer(raw_writer, timer)
        frames = _threaded(_with_cuts(reader, detector), timer)
        try:
            eof = False
            while not eof:
                with timer.stage("wait_input"):
                    item = next(frames, None)
                if item is None:
                    eof = True
                else:
                    frame, cut = item
                    if cut:
                        chunks.cut(read)
                    rgb = torch.from_numpy(np.ascontiguousarray(frame.rgb)).permute(2, 0, 1)
                    if rgb.dtype == torch.uint16 or frame.rgb.dtype == np.uint16:
                        runner.max_value = 65535
                        rgb = rgb.to(torch.int32)
                    runner.lq[read] = pad_frame(rgb, hp, wp, opts.pad)
                    runner.pts[read] = frame.pts
                    read += 1
                for span in chunks.ready(read, eof):
                    if span.stop <= first:  # every frame it touches is saved already
                        stats.windows_skipped += 1
                        continue
                    runner.run_chunk(span)
                    stats.windows_run += 1
                    if progress:
                        progress(Progress(written, max(total, read), f"frames {span.start}-{span.stop - 1}", time.perf_counter() - t_start))
                final = chunks.final_before(read, eof)
                boundary = final if final - seg_start >= resume.SEGMENT_MIN_FRAMES else None
                while written < final:
                    if written < first:
                        runner.discard(written)
                    else:
                        with timer.stage("finish"):
                            rgb_out, pts = runner.finish_frame(written)
                        with timer.stage("wait_output"):
                            writer.write(written, rgb_out, pts, end=written + 1 == boundary)
                    written += 1
                if boundary is not None:
                    seg_start = boundary
                for t in [t for t in runner.lq if t < final]:
                    del runner.lq[t]
            if read == 0:
                raise InputError(f"{input}: no video frames" + (" in the --preview range" if opts.preview else ""))
            if progress:
                progress(Progress(written, written, "done", time.perf_counter() - t_start))
            with timer.stage("wait_output"):
                writer.finish()
            with timer.stage("finalize"):  # flush, join the segments, rename into place
                raw_writer.close()
        except BaseException:
            writer.q.put(None)
            writer.thread.join()
            raise
        finally:
            frames.close()  # stop the reader thread before the container closes under it
        stats.dropped_frames = reader.dropped_frames
    stats.written = written
    stats.cuts = list(chunks.cuts)
    return stats


def _wants_16bit(pix_fmt: str | None, info: Any) -> bool:
    if pix_fmt:
        return bool(re.search(r"(1[0246]|9)(le|be)?$", pix_fmt)) or pix_fmt.startswith(("rgb48", "gbrp1"))
    return getattr(info, "bit_depth", 8) > 8


# ---------------------------------------------------------------------------- manifest


def write_manifest(path: Path, input: str | Path, opts: UpscaleOptions, result: UpscaleResult, model: Restorer) -> None:
    """A JSON sidecar with everything needed to reproduce or report a run."""
    import platform

    import diffusers

    from dove_cli import __version__

    doc = {
        "dove": __version__,
        "input": str(Path(input).absolute()),
        "output": str(Path(result.output).absolute()),
        "options": asdict(opts),
        "plan": {k: (str(v) if isinstance(v, Fraction) else v) for k, v in asdict(result.plan).items()},
        "result": {
            "frames": result.frames,
            "seconds": round(result.seconds, 3),
            "peak_host_bytes": result.peak_host_bytes,
            "peak_device_bytes": result.peak_device_bytes,
            "tile_used": result.tile_used,
            "offload_used": result.offload_used,
            "oom_retries": result.retries,
            "stages_seconds": {k: round(v, 4) for k, v in result.stages.items()},
        },
        "model": model_fingerprint(model),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "av": __import__("av").__version__,
            "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
    }
    tmp = path.with_name(f".{path.name}.dove-tmp")
    try:
        video_io.make_folder(path.parent, path)
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write the manifest ({exc.strerror}); the video is complete") from None


def model_fingerprint(model: Restorer) -> dict[str, Any]:
    """A sha256 over the weights in memory (cheap next to a run) and the configs."""
    import hashlib

    if not isinstance(model, DoveModel):
        return {"name": type(model).__name__}
    out: dict[str, Any] = {}
    for name, module in (("transformer", model.transformer), ("vae", model.vae)):
        h = hashlib.sha256()
        for key, tensor in sorted(module.state_dict().items()):
            if tensor.is_meta:  # --offload sequential: the weight waits in its layer's accelerate hook
                owner, _, local = key.rpartition(".")
                tensor = module.get_submodule(owner)._hf_hook.weights_map[local]
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        out[name] = {"sha256": h.hexdigest(), "config": dict(module.config)}
    out["prompt_embedding_sha256"] = hashlib.sha256(
        model.prompt_embedding.float().contiguous().numpy().tobytes()
    ).hexdigest()
    return out
