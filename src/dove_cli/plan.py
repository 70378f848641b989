"""The plan of a run, decided before the first frame: window sizes, memory and time estimates.

Pure functions of the input's description, the model's cost model (`Restorer.estimate_*`) and the
free memory; `--dry-run` prints a plan and stops.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction

import psutil
import torch

from dove_cli import release_layout
from dove_cli.engine import TEMPORAL_PAD, Restorer
from dove_cli.errors import InputError
from dove_cli.options import AUTO, DEFAULT_CHUNK, Offload, UpscaleOptions, check_options, is_given, parse_preview
from dove_cli.video_io import VideoInfo
from dove_cli.windows import ANY_LENGTH, Lengths, Span, fitting_tile_overlap, plan_spans, plan_tiles

log = logging.getLogger(__name__)

MIN_TILE = 64  # smallest tile an OOM retry goes down to (output px)
PIXEL_LOCAL_CHUNK = 1  # --chunk auto without temporal context (--model bilinear): one frame at a time
ACCUMULATOR_MAX_DEVICE_BYTES = 8 << 30  # blend on the GPU only up to this much (and 1/4 of the budget)


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
    vae_tiling: bool = False  # the VAE decodes in tiles: asked (--vae-tiling, --parity), or past one piece
    work_ratio: float = 1.0  # pixel-frames the model processes per output pixel-frame (overlaps, padding)
    frame_lengths: Lengths = ANY_LENGTH  # window lengths in frames the model takes (the last chunk's)
    model_note: str = ""  # how the model was sized when no weights were read (--dry-run)
    blend_on_device: bool = False  # the float frame accumulators live on the GPU (see make_plan)
    saved_frames: int = 0  # output frames an interrupted run saved, which this one continues after
    codec: str = ""  # the output's codec (hevc; png for images) and pixel format, as the writer chose them
    pix_fmt: str = ""

    def summary(self) -> str:
        """One line for `-v`: `4 windows of 33 frames (8 shared) x 16 tiles of 320 px (32 px overlap), work
        ratio 1.48, est. peak GPU 17.5 GiB, host 0.6 GiB`."""
        length = self.chunk or self.frames
        chunks = f"{self.chunks} window{'s' * (self.chunks != 1)} of {length} frame{'s' * (length != 1)}"
        chunks += f" ({self.chunk_overlap} shared)" if self.chunks > 1 and self.chunk_overlap else ""
        tiles = f" x {self.tiles} tiles of {self.tile} px ({self.tile_overlap} px overlap)" if self.tiles > 1 else ""
        gpu = f"GPU {self.est_peak_device_bytes / 2**30:.1f} GiB, " if self.est_peak_device_bytes else ""
        return (f"plan: {chunks}{tiles}, work ratio {self.work_ratio:.2f}, est. peak {gpu}host "
                f"{self.est_peak_host_bytes / 2**30:.1f} GiB")  # fmt: skip

    def windows(self) -> int:
        return self.tiles * self.chunks


def lq_block(scale: int, multiple: int) -> int:
    """LQ padding block: the smallest q such that scale * q is a multiple of the model's block."""
    return multiple // math.gcd(multiple, scale)


HOST_BASE_BYTES = 512 << 20  # the process before any frame: torch, diffusers and PyAV (331 MiB), codec buffers
CUDA_CONTEXT_BYTES = 600 << 20  # what a CUDA context and cuDNN/cuBLAS take on a card before any tensor


def memory_budget(device: torch.device, not_yet_loaded: int = 0, vram_gib: float | None = None) -> int:
    """Bytes a window may use, of what is free now less the weights that will arrive later.
    vram_gib: plan for a card of that size (less its CUDA context), or at most that on this one."""
    if device.type == "cuda":
        if vram_gib is not None and not torch.cuda.is_available():  # --vram without a GPU: a card on paper
            free = int(vram_gib * (1 << 30)) - CUDA_CONTEXT_BYTES
        else:
            free, _ = torch.cuda.mem_get_info(device)
            free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's cache is ours
            if vram_gib is not None:
                free = min(free, int(vram_gib * (1 << 30)) - CUDA_CONTEXT_BYTES)
        return int(max(0, free - not_yet_loaded) * 0.85)
    return int(max(0, psutil.virtual_memory().available - not_yet_loaded) * 0.5)


def weights_to_come(model: Restorer, offload: Offload, device: torch.device) -> int:
    """Weight bytes that will share the window's memory during the run but do not take any now.

    A skeleton (--dry-run) has none loaded yet. Offloaded weights wait on the host and take their
    turn on the GPU: with --offload model the larger part (the transformer; the VAE's turn is
    counted with its pass), sequential offload one layer at a time (left out).
    """
    if device.type == "cuda" and offload != "none":
        return model.weights_on_device(offload)
    return model.weights_bytes() if model.is_skeleton else 0


def resolve_chunk(chunk: int, frames: int, pixel_local: bool = False) -> int:
    """--chunk auto: the whole clip when it is no longer than the paper's 33 frames, else 33; for a
    model without temporal context, short chunks (memory, not context, is what they cost)."""
    if chunk != AUTO:
        return chunk
    window = PIXEL_LOCAL_CHUNK if pixel_local else DEFAULT_CHUNK
    return 0 if 0 < frames <= window else window


def frame_lengths(model: Restorer) -> Lengths:
    """Window lengths in frames the model takes without padding: 8k+1 (DOVE pads time to that),
    any for a model without temporal context."""
    return ANY_LENGTH if model.pixel_local else Lengths(TEMPORAL_PAD, 1)


def work_ratio(
    frames: int, spans: list[Span], ys: list[Span], xs: list[Span], out_h: int, out_w: int, time_multiple: int
) -> float:
    """Pixel-frames the model runs per output pixel-frame: overlaps, end-aligned windows, padding
    to the model's block and to time_multiple k + 1 frames (the engine's time padding) all count."""
    if not frames:
        return 1.0
    model_frames = sum(s.length + (-(s.length - 1)) % time_multiple for s in spans)
    model_pixels = sum(y.length for y in ys) * sum(x.length for x in xs)
    return model_frames * model_pixels / (frames * out_h * out_w)


def choose_windows(
    model: Restorer, frames: int, height: int, width: int, opts: UpscaleOptions, budget: int, offload: Offload = "none"
) -> tuple[int, int, bool]:
    """(chunk, tile, VAE tiling) from the options, choosing AUTO values so that one window fits
    `budget`. A window larger than the VAE decodes in one piece (about 1.3 MP, diffusers' limit)
    gets the VAE's own tiling instead of tiles for the whole model: the transformer still sees the
    whole window, and no work is done twice."""
    m = model.spatial_multiple
    chunk = resolve_chunk(opts.chunk, frames, model.pixel_local)
    tile = opts.tile
    max_pixels = model.max_window_pixels

    def past_vae_limit(th: int, tw: int) -> bool:
        return max_pixels is not None and th * tw > max_pixels

    if tile == AUTO:
        win_frames = chunk or frames
        tile = 0
        side = max(height, width)
        while True:
            th, tw = min(side, height), min(side, width)
            need = model.estimate_window_bytes(win_frames, th, tw, past_vae_limit(th, tw), offload)
            if need <= budget or side <= MIN_TILE:
                break
            side = max(MIN_TILE, (side * 3 // 4) // m * m)
        if side < max(height, width):
            tile = side
    th, tw = min(tile or height, height), min(tile or width, width)
    return chunk, tile, past_vae_limit(th, tw)


def make_plan(info: VideoInfo, model: Restorer, opts: UpscaleOptions, device: torch.device, dtype: torch.dtype) -> Plan:
    opts = check_options(opts)  # what --parity sets, when called with options as given
    h, w = info.height, info.width
    if min(h, w) < 8:
        raise InputError(f"{info.path}: frame size {w}x{h} is too small (at least 8 px a side)")
    if opts.parity:  # the release pads the LQ frame to multiples of 16, whatever the model's block
        hp, wp = release_layout.padded_lq_size(h, w)
        release_layout.check_release_scale(opts.scale, (h, w), (hp, wp))
    else:
        q = lq_block(opts.scale, model.spatial_multiple)
        hp, wp = -(-h // q) * q, -(-w // q) * q
    big_h, big_w = hp * opts.scale, wp * opts.scale
    frames = info.num_frames or 0
    if opts.preview:
        start, dur = parse_preview(opts.preview)
        frames = max(1, min(frames or 10**9, math.ceil(dur * float(info.fps or 25))))
    offload = opts.offload if device.type == "cuda" else "none"  # offloading does nothing on the CPU
    budget = memory_budget(device, weights_to_come(model, offload, device), opts.vram)
    # The float accumulators of the frames being blended: on the GPU when they are small next to it
    # (then only 8-bit frames cross to the host), and then the windows get that much less room.
    # A pixel-local model gives the same pixels in any window: overlaps would only be work done twice
    # (--parity keeps the release's layout whatever the model).
    pixel_local = model.pixel_local and not opts.parity
    chunk_overlap, want_tile_overlap = (0, 0) if pixel_local else (opts.chunk_overlap, opts.tile_overlap)
    accumulators = accumulator_bytes(
        resolve_chunk(opts.chunk, frames, pixel_local), frames, big_h, big_w, chunk_overlap
    )
    blend_on_device = device.type == "cuda" and accumulators < min(budget // 4, ACCUMULATOR_MAX_DEVICE_BYTES)
    room = budget - accumulators * blend_on_device
    chunk, tile, vae_tiling = choose_windows(model, frames, big_h, big_w, opts, room, offload)
    vae_tiling = vae_tiling or opts.vae_tiling
    if opts.parity:  # the release's tiles and chunks (over the video padded to 8k+1 frames), as given
        ys, xs = release_layout.check_release_tiles(big_h, big_w, tile, opts.tile_overlap)
        tile_overlap = opts.tile_overlap if len(ys) > 1 or len(xs) > 1 else 0
        spans = _release_chunks(frames, exact=info.num_frames_exact and not opts.preview, chunk=chunk,
                                overlap=chunk_overlap)  # fmt: skip
        chunks, win_f = len(spans), max(s.length for s in spans)
        time_multiple = 1  # the release pads the whole video, not each window
    else:
        given = is_given(opts, "tile_overlap")  # the default is cut to fit without a word
        if not given:  # an auto tile too small for it shares a quarter of itself, as a --tile given does
            want_tile_overlap = fitting_tile_overlap(tile, want_tile_overlap)
        ys, xs, tile_overlap = plan_tiles(big_h, big_w, tile, want_tile_overlap, model.spatial_multiple)
        if len(ys) * len(xs) > 1 and tile_overlap < want_tile_overlap and given:
            log.warning("--tile-overlap %d is more than a %d px tile can share (--tile auto chose %d px): using %d",
                        opts.tile_overlap, ys[0].length, ys[0].length, tile_overlap)  # fmt: skip
        spans = plan_spans(frames, chunk, chunk_overlap, frame_lengths(model)) if frames else []
        chunks = len(spans)
        win_f = chunk or frames
        time_multiple = 1 if model.pixel_local else TEMPORAL_PAD
    th, tw = max(s.length for s in ys), max(s.length for s in xs)
    weights = model.weights_bytes()
    act = model.estimate_window_bytes(max(win_f, 1), th, tw, vae_tiling, offload)
    on_device = model.weights_on_device(offload) + act + accumulators * blend_on_device
    lq_frames = (win_f + chunk) * hp * wp * 3 * 2
    out_frames = max(win_f, 1) * big_h * big_w * 3  # a window's 8-bit frames on their way to the encoder
    host = HOST_BASE_BYTES + lq_frames + out_frames + (0 if blend_on_device else accumulators)
    if device.type == "cpu":
        host += weights + act
    elif offload != "none":
        host += weights  # offloaded weights wait on the host between their turns on the GPU
    per_window = model.estimate_seconds(max(win_f, 1), th, tw)
    est = None if per_window is None else per_window * len(ys) * len(xs) * max(chunks, 1)
    return Plan(
        input_size=(h, w),
        padded_size=(hp, wp),
        output_size=(h * opts.scale, w * opts.scale),
        frames=frames,
        fps=info.fps,
        chunk=chunk,
        chunk_overlap=chunk_overlap if chunk else 0,
        tile=(tile if opts.parity else ys[0].length) if len(ys) > 1 or len(xs) > 1 else 0,
        tile_overlap=tile_overlap,
        tiles=len(ys) * len(xs),
        chunks=chunks,
        device=str(device),
        dtype=str(dtype).replace("torch.", ""),
        est_peak_device_bytes=on_device if device.type == "cuda" else 0,
        est_peak_host_bytes=int(host),
        est_seconds=est,
        blend_on_device=blend_on_device,
        frame_lengths=frame_lengths(model),
        vae_tiling=vae_tiling,
        work_ratio=work_ratio(frames, spans, ys, xs, h * opts.scale, w * opts.scale, time_multiple),
    )


def _release_chunks(frames: int, *, exact: bool, chunk: int, overlap: int) -> list[Span]:
    """--parity: the release's chunks over the video padded to 8k+1 frames. A layout the release
    fails on is refused here when the frame count is exact, else when the run reaches its end."""
    if not frames:
        return [Span(0, 0)]
    padded = frames + release_layout.time_pad(frames)
    if exact:
        return release_layout.check_release_chunks(padded, chunk, overlap)
    try:
        return release_layout.release_chunks(padded, chunk, overlap)
    except release_layout.LayoutError:
        return [Span(0, padded)]


def warn_if_host_memory_short(plan: Plan, model: Restorer) -> None:
    """Say so before hours of swapping (or an OOM kill) when the plan needs more RAM than is free,
    with the advice that fits what takes the memory."""
    available = psutil.virtual_memory().available
    need = plan.est_peak_host_bytes
    on_host = plan.device == "cpu" or getattr(model, "offload", "none") != "none"  # offloaded: on the host too
    weights = model.weights_bytes() if on_host else 0
    if weights and not model.is_skeleton:
        need -= weights  # loaded already, so already missing from what is available
    if need <= available:
        return
    if weights > plan.est_peak_host_bytes / 2:
        advice = "the weights take most of it" + (": --dtype bf16 halves them" if plan.dtype == "float32" else "")
        advice += "; a CUDA GPU keeps them off the host"
    else:
        advice = "a shorter --chunk, a smaller --tile or a smaller --scale needs less"
    log.warning("this run needs about %.1f GiB of host memory and %.1f GiB is available: it may swap or be killed; %s",
                need / 2**30, available / 2**30, advice)  # fmt: skip


def warn_if_device_memory_short(plan: Plan, opts: UpscaleOptions, model: Restorer) -> None:
    """--vram N: say so when even the chosen windows are estimated past N GiB (auto tiles stop at
    MIN_TILE, and given --tile/--chunk are kept), with what would make room."""
    if opts.vram is None or plan.est_peak_device_bytes <= opts.vram * 2**30:
        return
    more_offload = {"none": "--offload model", "model": "--offload sequential"}.get(opts.offload)
    advice = [more_offload] if more_offload and model.weights_bytes() else []
    advice += ["a smaller --tile"] if plan.tile == 0 or plan.tile > MIN_TILE else []
    advice += ["a shorter --chunk" if plan.chunk else f"--chunk {DEFAULT_CHUNK}"]
    tries = ", ".join(advice[:-1]) + (" or " if len(advice) > 1 else "") + advice[-1]
    log.warning("the plan's estimated peak GPU memory, %.1f GiB, is more than --vram %g GiB: it may run out of "
                "memory; try %s", plan.est_peak_device_bytes / 2**30, opts.vram, tries)  # fmt: skip


def accumulator_bytes(chunk: int, frames: int, height: int, width: int, overlap: int) -> int:
    """float32 output frames held while they are blended: two windows' worth and the overlap."""
    return (2 * (chunk or frames or 1) + overlap + 2) * 3 * height * width * 4
