"""The plan of a run, decided before the first frame: window sizes, memory and time estimates.

`make_plan` is a function of the input's description, the model's cost model (`Restorer.estimate_*`),
checked options and a memory budget that its caller measures once (`measured_budget`: free memory
now, so the same options may plan other tiles a moment later); it says nothing itself, and hands
back its notes for the caller to say (`say_notes`). The checks and advice after it (memory short,
a better plan) re-plan with other options, and log. `--dry-run` prints a plan and stops.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import av
import psutil
import torch

from dove_cli import release_layout
from dove_cli.engine import TEMPORAL_PAD, DoveModel, Restorer, bnb_config, loaded_weight_bytes
from dove_cli.errors import InputError, OptionError, OutOfMemory, advice, as_given
from dove_cli.geometry import output_size, target_size
from dove_cli.humanize import busy_note, human_duration
from dove_cli.options import (
    AUTO,
    DEFAULT_CHUNK,
    CheckedOptions,
    Offload,
    UpscaleOptions,
    is_given,
    preview_span,
)
from dove_cli.reports import Plan
from dove_cli.scenes import SceneDetector
from dove_cli.video_io import VideoInfo
from dove_cli.windows import ANY_LENGTH, Lengths, Span, fitting_tile_overlap, plan_spans, plan_tiles

log = logging.getLogger(__name__)

MIN_TILE = 64  # smallest tile an OOM retry goes down to (output px)
PIXEL_LOCAL_CHUNK = 1  # --chunk auto without temporal context (--model bilinear): one frame at a time
ACCUMULATOR_MAX_DEVICE_BYTES = 8 << 30  # blend on the GPU only up to this much (and 1/4 of the budget)
POOR_WORK_RATIO = 1.6  # more than 60% of the model's work done twice: worth a word when an option plans better
# Scene cuts are found while frames are read (scenes.py), so a plan made before (--dry-run, the run's
# `plan:` line) cannot count them. Each cut ends its shot's windows and starts new ones: one window
# more at most (it can also be fewer: tests/test_scenes.py), plus the time of that window.
SCENE_CUTS_NOTE = "found while running, not counted in this plan (each adds at most one window, and its time)"


def lq_block(scale: int, multiple: int) -> int:
    """LQ padding block: the smallest q such that scale * q is a multiple of the model's block."""
    return multiple // math.gcd(multiple, scale)


HOST_BASE_BYTES = 512 << 20  # the process before any frame: torch, diffusers and PyAV (331 MiB), codec buffers
# What a video encoder holds (lookahead, frame threads, references, B-frames) once it is full, in pictures
# of the output's size and pixel format, and per frame given it until then (x264: 2.6). Measured with the
# writer's 8 threads at 1708x960 and 3416x1920, 8-bit 4:2:0, 30 to 200 frames: x264 medium 143-165 (1.35
# GiB at 3416x1920, which the plan left out: 1.0 GiB estimated, 1.52 measured), x265 medium 188, SVT-AV1
# preset 8 136 (on 2 cores), libvpx-vp9 79, ffv1 22. Other outputs hold none to speak of (images are
# written one by one, NVENC's frames wait on the GPU, frames in memory have no encoder).
ENCODER_FRAMES = {"h264": 165, "hevc": 190, "av1": 140, "vp9": 80, "ffv1": 24, "prores": 24}
ENCODER_FRAMES_PER_FRAME = 2.6
CUDA_CONTEXT_BYTES = 600 << 20  # what a CUDA context and cuDNN/cuBLAS take on a card before any tensor
# Of the memory the weights leave, what windows may take: the rest for estimate error, the allocator.
WINDOW_SHARE = 0.85


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
        return int(max(0, free - not_yet_loaded) * WINDOW_SHARE)
    return int(max(0, psutil.virtual_memory().available - not_yet_loaded) * 0.5)


def vram_limit(vram_gib: float, weights_on_device: int) -> int:
    """The most GPU memory a plan for a card of vram_gib GiB may take by memory_budget's rule: its
    weights and WINDOW_SHARE of what they and the CUDA context leave (the card less its context
    when the weights alone do not fit)."""
    card = max(0, int(vram_gib * (1 << 30)) - CUDA_CONTEXT_BYTES)
    return weights_on_device + int((card - weights_on_device) * WINDOW_SHARE) if card > weights_on_device else card


def measured_budget(model: Restorer, opts: UpscaleOptions, device: torch.device) -> int:
    """memory_budget for a plan of `model` with these options: the free memory measured now, less
    the weights their offload brings later (weights_to_come), at most --vram's."""
    offload = opts.offload if device.type == "cuda" else "none"  # offloading does nothing on the CPU
    return memory_budget(device, weights_to_come(model, offload, device), opts.vram)


def weights_to_come(model: Restorer, offload: Offload, device: torch.device) -> int:
    """Weight bytes that will share the window's memory during the run beyond those taking it now
    (negative when `offload` moves off the GPU weights that a loaded model holds there).

    A skeleton (--dry-run) has none loaded yet; a model placed without offload holds them all on the
    GPU, an offloaded one none. Offloaded weights wait on the host and take their turn on the GPU:
    with --offload model the larger part (the transformer; the VAE's turn is counted with its pass),
    sequential offload one layer at a time (left out).
    """
    if device.type != "cuda":  # the host's memory: a loaded model's weights are in it already
        return model.weights_bytes() if model.is_skeleton else 0
    placed_on_device = not model.is_skeleton and getattr(model, "offload", "none") == "none"
    return model.weights_on_device(offload) - (model.weights_bytes() if placed_on_device else 0)


def resolve_chunk(chunk: int, frames: int, pixel_local: bool = False, parity: bool = False) -> int:
    """--chunk auto: the paper's 33 frames; for a model without temporal context, short chunks
    (memory, not context, is what they cost). A chunk at least as long as the clip is the clip (0):
    windows.ChunkStream runs such a chunk as one window of the clip's frames, so it is planned (memory,
    time, tiles) for those. --parity keeps its chunk: the release lays it over the video padded to
    8k+1 frames."""
    if chunk == AUTO:
        chunk = PIXEL_LOCAL_CHUNK if pixel_local else DEFAULT_CHUNK
    elif parity:
        return chunk
    return 0 if 0 < frames <= chunk else chunk


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
    model: Restorer,
    frames: int,
    height: int,
    width: int,
    opts: UpscaleOptions,
    budget: int,
    offload: Offload = "none",
    tile_overlap: int = 0,
) -> tuple[int, int, bool]:
    """(chunk, tile, VAE tiling) from the options, choosing AUTO values so that one window fits
    `budget`. A window larger than the VAE decodes in one piece (about 1.3 MP, diffusers' limit)
    gets the VAE's own tiling instead of tiles for the whole model: the transformer still sees the
    whole window, and no work is done twice. With --vae-tiling every window is sized for a tiling VAE
    (its point: larger windows on the same card). An auto tile is the one of least work (overlaps
    and padding, with `tile_overlap` as the tile gets it) among the sizes that fit, the larger on a
    tie: a larger tile can keep an overlap that a smaller one cuts, and do more work (96 px tiles
    sharing 32 px against 64 px ones sharing 16)."""
    m = model.spatial_multiple
    chunk = resolve_chunk(opts.chunk, frames, model.pixel_local, opts.parity)
    tile = opts.tile
    max_pixels = model.max_window_pixels

    def vae_tiles(th: int, tw: int) -> bool:
        return opts.vae_tiling or (max_pixels is not None and th * tw > max_pixels)

    def fits(side: int) -> bool:
        th, tw = min(side, height), min(side, width)
        return model.estimate_window_bytes(chunk or frames, th, tw, vae_tiles(th, tw), offload) <= budget

    def work(side: int) -> int:
        tile = 0 if side >= max(height, width) else side
        ys, xs, _ = plan_tiles(height, width, tile, tile_overlap_for(opts, tile, tile_overlap), m)
        return sum(y.length for y in ys) * sum(x.length for x in xs)

    if tile == AUTO:
        sides = [max(height, width)]
        while sides[-1] > MIN_TILE:
            sides.append(max(MIN_TILE, (sides[-1] * 3 // 4) // m * m))
        fitting = [side for side in sides if fits(side)] or sides[-1:]  # none fits: the smallest, and a warning
        side = min(fitting, key=lambda side: (work(side), -side))
        tile = side if side < max(height, width) else 0
    th, tw = min(tile or height, height), min(tile or width, width)
    return chunk, tile, vae_tiles(th, tw)


def tile_overlap_for(opts: UpscaleOptions, tile: int, overlap: int) -> int:
    """The overlap asked of `tile`: --tile-overlap as given, or the default cut to what the tile can
    share without a word (a quarter of it, as a --tile given gets)."""
    return overlap if is_given(opts, "tile_overlap") else fitting_tile_overlap(tile, overlap)


def make_plan(
    info: VideoInfo, model: Restorer, opts: CheckedOptions, device: torch.device, dtype: torch.dtype, budget: int
) -> tuple[Plan, list[str]]:
    """The plan of a run of `info` by `model` whose windows fit `budget` bytes (measured_budget), and
    the notes to say with it (a --tile-overlap larger than the tile --tile auto chose can share):
    sizes and frames here, the windows' chunk and tile (`choose_windows`), where they lie
    (`_layout`), their memory (`_memory`) and time, assembled into a `Plan`."""
    h, w = info.height, info.width
    if min(h, w) < 8:
        raise InputError(f"{info.path}: frame size {w}x{h} is too small (at least 8 px a side)")
    out_h, out_w = output_size(opts, h, w)  # (--parity: refused where the authors' crop leaves nothing)
    if opts.parity:  # the release pads the LQ frame to multiples of 16, whatever the model's block
        hp, wp = release_layout.padded_lq_size(h, w)
    else:
        q = lq_block(opts.scale, model.spatial_multiple)
        hp, wp = -(-h // q) * q, -(-w // q) * q
    big_h, big_w = hp * opts.scale, wp * opts.scale
    frames = info.num_frames or 0
    if (preview := preview_span(opts.preview)).start is not None:
        frames = max(1, info.span_frames(preview.start, preview.duration))  # as the reader keeps them (_select_span)
    offload = opts.offload if device.type == "cuda" else "none"  # offloading does nothing on the CPU
    # The float accumulators of the frames being blended: on the GPU when they are small next to it
    # (then only 8-bit frames cross to the host), and then the windows get that much less room.
    # A pixel-local model gives the same pixels in any window: overlaps would only be work done twice
    # (--parity keeps the release's layout whatever the model).
    pixel_local = model.pixel_local and not opts.parity
    chunk_overlap, want_tile_overlap = (0, 0) if pixel_local else (opts.chunk_overlap, opts.tile_overlap)
    accumulators = accumulator_bytes(
        resolve_chunk(opts.chunk, frames, pixel_local, opts.parity), frames, big_h, big_w, chunk_overlap
    )
    blend_on_device = device.type == "cuda" and accumulators < min(budget // 4, ACCUMULATOR_MAX_DEVICE_BYTES)
    room = budget - accumulators * blend_on_device
    chunk, tile, vae_tiling = choose_windows(model, frames, big_h, big_w, opts, room, offload, want_tile_overlap)
    layout = _layout(info, model, opts, frames, (big_h, big_w), chunk, tile, chunk_overlap, want_tile_overlap)
    spans, ys, xs, tile_overlap, win_f = layout.spans, layout.ys, layout.xs, layout.tile_overlap, layout.window_frames
    chunks = len(spans)
    th, tw = max(s.length for s in ys), max(s.length for s in xs)
    on_device, host = _memory(model, device, offload, opts.parity, (win_f, th, tw), chunk, (hp, wp), (big_h, big_w),
                              vae_tiling, accumulators, blend_on_device)  # fmt: skip
    per_window = model.estimate_seconds(max(win_f, 1), th, tw)
    tiled = ys if len(ys) > 1 else xs  # the tile is a tiled side's window: a frame lower than it is one row
    est = None if per_window is None else per_window * len(ys) * len(xs) * max(chunks, 1)
    est_note = busy_note() if est is not None and device.type == "cpu" else ""  # a GPU's rates are the GPU's
    plan = Plan(
        input_size=(h, w),
        padded_size=(hp, wp),
        output_size=(out_h, out_w),
        compare=opts.compare,
        sample_aspect_ratio=info.sample_aspect_ratio,
        crop=opts.crop,
        size=target_size(opts, info),
        rotation=info.rotation,
        frames_exact=info.num_frames_exact,
        frames=frames,
        fps=info.fps,
        variable_rate=info.variable_rate,
        rate_sample=info.rate_sample,
        chunk=chunk,
        chunk_overlap=chunk_overlap if chunk else 0,
        tile=(tile if opts.parity else tiled[0].length) if len(ys) > 1 or len(xs) > 1 else 0,
        tile_overlap=tile_overlap,
        tiles=len(ys) * len(xs),
        tile_asked=opts.tile if not opts.parity and len(ys) * len(xs) > 1 and 0 < tiled[0].length < opts.tile else 0,
        chunks=chunks,
        device=str(device),
        dtype=str(dtype).replace("torch.", ""),
        offload=offload,
        quantize=opts.quantize if isinstance(model, DoveModel) else "none",
        est_peak_device_bytes=on_device if device.type == "cuda" else 0,
        est_peak_host_bytes=int(host),
        est_seconds=est,
        est_note=est_note,
        blend_on_device=blend_on_device,
        frame_lengths=frame_lengths(model),
        vae_tiling=vae_tiling,
        window_frames=tuple(s.length for s in spans),
        parity=opts.parity,
        scene_cuts=SCENE_CUTS_NOTE if cuts_may_change(opts, chunk, frames) else "",
        work_ratio=work_ratio(frames, spans, ys, xs, out_h, out_w, layout.time_multiple),
    )
    return plan, layout.notes


class _Layout(NamedTuple):
    """Where a plan's windows lie (`_layout`): in time (`spans`) and on the frame (tiles `ys`, `xs`)."""

    spans: list[Span]
    ys: list[Span]
    xs: list[Span]
    tile_overlap: int  # as laid out (the overlap asked, cut to what the tiles can share)
    window_frames: int  # frames of the longest window
    time_multiple: int  # the engine pads each window to time_multiple k + 1 frames (1: none)
    notes: list[str]


def _layout(
    info: VideoInfo,
    model: Restorer,
    opts: CheckedOptions,
    frames: int,
    big: tuple[int, int],
    chunk: int,
    tile: int,
    chunk_overlap: int,
    want_tile_overlap: int,
) -> _Layout:
    """The windows of a run over `frames` frames padded to `big` (height, width) at the model's
    scale, for the chunk and tile `choose_windows` chose: the release's chunks and tiles with
    --parity, else dove's own (`plan_spans`, `plan_tiles`), with the note for a --tile-overlap given
    that the tile cannot share."""
    big_h, big_w = big
    notes = []
    if opts.parity:  # the release's tiles and chunks (over the video padded to 8k+1 frames), as given
        ys, xs = release_layout.check_release_tiles(big_h, big_w, tile, opts.tile_overlap)
        tile_overlap = opts.tile_overlap if len(ys) > 1 or len(xs) > 1 else 0
        spans = _release_chunks(frames, exact=info.num_frames_exact and not opts.preview, chunk=chunk,
                                overlap=chunk_overlap)  # fmt: skip
        win_f = max(s.length for s in spans)
        time_multiple = 1  # the release pads the whole video, not each window
    else:
        given = is_given(opts, "tile_overlap")
        want_tile_overlap = tile_overlap_for(opts, tile, want_tile_overlap)
        ys, xs, tile_overlap = plan_tiles(big_h, big_w, tile, want_tile_overlap, model.spatial_multiple)
        if len(ys) * len(xs) > 1 and tile_overlap < want_tile_overlap and given:
            notes.append(f"--tile-overlap {opts.tile_overlap} is more than a {ys[0].length} px tile can share "
                         f"(--tile auto chose {ys[0].length} px): using {tile_overlap}")  # fmt: skip
        spans = plan_spans(frames, chunk, chunk_overlap, frame_lengths(model)) if frames else []
        win_f = chunk or frames
        time_multiple = 1 if model.pixel_local else TEMPORAL_PAD
    return _Layout(spans, ys, xs, tile_overlap, win_f, time_multiple, notes)


def _memory(
    model: Restorer,
    device: torch.device,
    offload: Offload,
    parity: bool,
    window: tuple[int, int, int],
    chunk: int,
    padded: tuple[int, int],
    big: tuple[int, int],
    vae_tiling: bool,
    accumulators: int,
    blend_on_device: bool,
) -> tuple[int, int]:
    """Estimated peak bytes (on the device, on the host) of a run whose largest window is `window`
    (frames, tile height, tile width) of frames padded to `padded` (LQ) and `big` (at the model's
    scale): the weights where they wait, the window's activations, the frames read and written
    around it, and the blend's float accumulators (on the device with `blend_on_device`)."""
    win_f, th, tw = window
    (hp, wp), (big_h, big_w) = padded, big
    weights = model.weights_bytes()
    act = model.estimate_window_bytes(max(win_f, 1), th, tw, vae_tiling, offload)
    on_device = model.weights_on_device(offload) + act + accumulators * blend_on_device
    lq_frames = (win_f + chunk) * hp * wp * 3 * 2
    out_frames = max(win_f, 1) * big_h * big_w * 3  # a window's 8-bit frames on their way to the encoder
    host = HOST_BASE_BYTES + lq_frames + out_frames + (0 if blend_on_device else accumulators)
    if parity:  # the window's model input, whole frames upsampled on the CPU (tiled._tile_input)
        host += max(win_f, 1) * big_h * big_w * 3 * 4
    if device.type == "cpu":
        host += weights + act
    elif offload != "none":
        host += weights  # offloaded weights wait on the host between their turns on the GPU
    return on_device, host


def say_notes(notes: list[str]) -> None:
    """Log make_plan's notes on the plan a run makes (not those of the plans tried for advice)."""
    for text in notes:
        log.warning("%s", text)


def cuts_may_change(opts: UpscaleOptions, chunk: int, frames: int) -> bool:
    """Whether scene cuts, found while running, may change the planned windows: not with --scene-cuts
    off (--parity sets it), one-frame windows, or a clip too short to hold a cut."""
    return opts.scene_cuts == "auto" and chunk != 1 and frames > SceneDetector.min_shot


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


def with_encoder(plan: Plan) -> Plan:
    """The plan with its host memory counting what its output's encoder holds (ENCODER_FRAMES), once the
    writer has chosen the codec and pixel format (`plan.codec`, `plan.pix_fmt`)."""
    held = min(ENCODER_FRAMES.get(plan.codec, 0), ENCODER_FRAMES_PER_FRAME * max(plan.frames, 1))
    if not held or not plan.pix_fmt:
        return plan
    height, width = plan.output_size
    picture = sum(
        c.width * c.height * (2 if c.bits > 8 else 1) for c in av.VideoFormat(plan.pix_fmt, width, height).components
    )
    return dataclasses.replace(plan, est_peak_host_bytes=plan.est_peak_host_bytes + int(held * picture))


HOST_MARGIN = 1.25  # a plan this far past RAM and swap together is refused, not only warned about


def refuse_past_host_memory(plan: Plan, fitting: Callable[[int], str] | None = None) -> None:
    """Before the weights load: a plan needing clearly more host memory than the machine has, RAM and
    swap together, can only be killed (the 5B model on a CPU: 101 GiB for 33 frames of 720p), after
    minutes of building it and with the machine's memory gone for everyone: OutOfMemory in one line instead, with
    `fitting`'s advice for the memory available (fitting_host_change) where the caller can re-plan."""
    has = psutil.virtual_memory().total + psutil.swap_memory().total
    if plan.est_peak_host_bytes <= HOST_MARGIN * has:  # near it, the estimate may be off: warned (below)
        return
    how = ("a CUDA GPU keeps the weights and the windows off the host" if plan.device == "cpu"
           else f"less {advice('--offload', 'offload=')} keeps the weights on the GPU")  # fmt: skip
    if fitting is not None:
        how = fitting(psutil.virtual_memory().available)
    else:
        how += (f", and a shorter {advice('--chunk', 'chunk=')}, a smaller {advice('--tile', 'tile=')} or "
                f"{as_given('dtype', 'bf16')} needs less")  # fmt: skip
    raise OutOfMemory(f"this run needs about {plan.est_peak_host_bytes / 2**30:.1f} GiB of host memory and this "
                      f"machine has {has / 2**30:.1f} GiB (RAM and swap): it would be killed; {how}")  # fmt: skip


IMPRACTICAL_SECONDS = 7 * 86400  # past a week, an estimate says the run is not practical here (README)


def warn_if_impractical(plan: Plan, opts: UpscaleOptions) -> bool:
    """Say so in one line, with what to do instead, when the estimate is past IMPRACTICAL_SECONDS
    (the real model on a laptop's CPU: decades for a 3-minute HD clip). Whether it said so."""
    if plan.est_seconds is None or plan.est_seconds <= IMPRACTICAL_SECONDS:
        return False
    ways = ["a CUDA GPU"] if plan.device == "cpu" else []
    if opts.model != "bilinear":
        ways.append(f"{as_given('model', 'bilinear')} for a quick preview")
    h, w = plan.input_size
    if plan.output_size[0] > 2 * h and not plan.size and not opts.parity:
        ways.append(f"{as_given('scale', 2)} ({2 * w}x{2 * h}) or {advice('--size', 'size=')} for a smaller output")
    if not opts.preview:
        ways.append(f"{as_given('preview', '0+5s')} to try 5 seconds first")
    where = "this machine's CPU" if plan.device == "cpu" else "this GPU"
    instead = f"; instead: {', '.join(ways)}" if ways else ""
    log.warning("this run would take about %s on %s (estimate): not practical%s", human_duration(plan.est_seconds),
                where, instead)  # fmt: skip
    return True


def refuse_download_past_ram(plan: Plan) -> None:
    """--download on a machine without a GPU, before fetching about 20 GB: refused in one line when
    the plan (from the architecture alone) needs more than the machine's RAM, else said with its time."""
    ram = psutil.virtual_memory().total
    if plan.est_peak_host_bytes > ram:
        raise OptionError(f"--download: this run needs about {plan.est_peak_host_bytes / 2**30:.1f} GiB of host "
                          f"memory on the CPU and this machine has {ram / 2**30:.1f} GiB: the 20 GB of weights would "
                          f"not run here; {as_given('model', 'bilinear')} (a plain upscale, nothing to download) "
                          "does, or a machine with a CUDA GPU")  # fmt: skip
    took = f", then about {human_duration(plan.est_seconds)} on this CPU (estimate)" if plan.est_seconds else ""
    log.warning("--download on a machine without a GPU: about 20 GB to fetch%s; `--dry-run` shows the plan", took)


def warn_if_host_memory_short(
    plan: Plan, info: VideoInfo, model: Restorer, opts: CheckedOptions, device: torch.device, dtype: torch.dtype
) -> None:
    """Say so before hours of swapping (or an OOM kill) when the plan needs more RAM than is free,
    with the advice that fits (fitting_host_change)."""
    available = psutil.virtual_memory().available
    # a loaded model's weights are missing from what is available already (and a change frees them)
    loaded = model.weights_bytes() if _weights_on_host(plan, model) and not model.is_skeleton else 0
    if plan.est_peak_host_bytes - loaded <= available:
        return
    log.warning("this run needs about %.1f GiB of host memory and %.1f GiB is available: it may swap or be killed; %s",
                (plan.est_peak_host_bytes - loaded) / 2**30, available / 2**30,
                fitting_host_change(plan, info, model, opts, device, dtype, available + loaded))  # fmt: skip


def _weights_on_host(plan: Plan, model: Restorer) -> bool:
    return plan.device == "cpu" or getattr(model, "offload", "none") != "none"  # offloaded: on the host too


def fitting_host_change(
    plan: Plan, info: VideoInfo, model: Restorer, opts: CheckedOptions, device: torch.device, dtype: torch.dtype,
    limit: int,
) -> str:  # fmt: skip
    """The least change whose plan (each one planned by make_plan) needs at most `limit` bytes of host
    memory, in the caller's words (errors.as_given): bf16 weights, the smallest windows (MIN_TILE
    tiles, 9-frame chunks: a chunk's float frames at 8K take 0.4 GiB each), half the scale; else
    that none does, and what the smallest plan needs. An 8K output is named: x4 of HD is 7680x4320."""
    steps = _host_steps(plan, model, opts)
    subsets = [c for n in range(1, len(steps) + 1) for c in itertools.combinations(steps, n)]  # fewest first
    tried: list[tuple[int, str]] = []
    for chosen in subsets:
        changes: dict[str, Any] = {}
        alt_model, alt_dtype = model, dtype
        for _, change, bf16 in chosen:
            changes.update(change)
            if bf16:
                alt_model, alt_dtype = _in_bf16(alt_model), torch.bfloat16
        try:
            alt_opts = dataclasses.replace(opts, **changes)  # (checked again: CheckedOptions)
            budget = measured_budget(alt_model, alt_opts, device)
            alt, _ = make_plan(info, alt_model, alt_opts, device, alt_dtype, budget)  # (its notes: not this run's)
            need = with_encoder(dataclasses.replace(alt, codec=plan.codec, pix_fmt=plan.pix_fmt)).est_peak_host_bytes
        except OptionError:  # a change the user's other options refuse (--tile 64 with --tile-overlap 1000)
            continue
        words = advice(" ", ", ").join(word for word, _, _ in chosen)
        if need <= limit:
            tried = []
            fix = f"{words} plans {need / 2**30:.1f} GiB"
            break
        tried.append((need, words))
    else:
        fix = "nothing fits this machine" if steps else "dove has no smaller plan for it"
        if tried:
            least, words = min(tried)
            fix += f": the smallest plan (with {words}) needs {least / 2**30:.1f} GiB"
    h, w = plan.output_size
    if max(h, w) >= 7680 and not plan.size:
        ih, iw = plan.input_size
        size = "8K" if max(h, w) <= 8192 else "larger than 8K"
        fix = f"the output is {size} ({w}x{h}, x{h // ih} of {iw}x{ih}); {fix}"
    if plan.device == "cpu" and model.weights_bytes():
        fix += "; a CUDA GPU keeps the weights and windows off the host"
    return fix


def _host_steps(plan: Plan, model: Restorer, opts: CheckedOptions) -> list[tuple[str, dict[str, Any], bool]]:
    """(words, option changes, whether in bf16) that take less host memory than the plan, cheapest first."""
    steps: list[tuple[str, dict[str, Any], bool]] = []
    if _weights_on_host(plan, model) and isinstance(model, DoveModel) and model.dtype == torch.float32:
        steps.append((as_given("dtype", "bf16"), {"dtype": "bf16"}, True))
    if model.pixel_local and plan.chunk != PIXEL_LOCAL_CHUNK:  # its auto chunk: a frame at a time
        steps.append((as_given("chunk", AUTO), {"chunk": AUTO}, False))
    elif not model.pixel_local and not opts.parity:
        if plan.tiles == 1 or plan.tile > MIN_TILE:
            steps.append((as_given("tile", MIN_TILE), {"tile": MIN_TILE}, False))
        if not plan.chunk or plan.chunk > TEMPORAL_PAD + 1:
            steps.append((as_given("chunk", TEMPORAL_PAD + 1), {"chunk": TEMPORAL_PAD + 1}, False))
    if opts.scale > 2 and not opts.parity:
        steps.append((as_given("scale", 2), {"scale": 2}, False))
    return steps


def _in_bf16(model: Restorer) -> Restorer:
    """The model planned with bf16 weights (a skeleton's copy: shapes only)."""
    assert isinstance(model, DoveModel)
    planned = loaded_weight_bytes(model.transformer, model.vae, torch.bfloat16, model.quantize)
    return dataclasses.replace(model, dtype=torch.bfloat16, planned_weights_bytes=planned)


def warn_if_device_memory_short(
    plan: Plan, info: VideoInfo, model: Restorer, opts: CheckedOptions, device: torch.device, dtype: torch.dtype
) -> None:
    """--vram N: say so when the chosen windows are estimated past what the planner allows on that card
    (vram_limit: auto tiles stop at MIN_TILE, and given --tile/--chunk are kept), with a change whose
    plan fits, each planned by make_plan: the least offload (`--offload model` still brings the 10.4 GiB
    transformer onto an 8 GiB card), else smaller windows; else that nothing fits, and what the
    smallest of those plans needs."""
    if opts.vram is None or plan.est_peak_device_bytes <= _limit(opts, model):
        return
    tried = [(plan.est_peak_device_bytes, "")]
    for flag, changes in _roomier(plan, opts, model):
        alt_opts = dataclasses.replace(opts, **changes)  # (checked again: CheckedOptions)
        alt, _ = make_plan(info, model, alt_opts, device, dtype, measured_budget(model, alt_opts, device))
        if alt.est_peak_device_bytes <= _limit(alt_opts, model):
            tries = f"try {flag}"
            break
        tried.append((alt.est_peak_device_bytes, flag))
    else:
        least, flag = min(tried)
        tries = f"nothing fits this card: the smallest plan{f' (with {flag})' if flag else ''} needs {_gib(least)}"
    log.warning("the plan's estimated peak GPU memory, %s, is past the %s a plan may take on "
                "--vram %g GiB (%d%% of what the weights and the CUDA context leave is kept free): it may run out of memory; %s",
                _gib(plan.est_peak_device_bytes), _gib(_limit(opts, model)), opts.vram,
                round((1 - WINDOW_SHARE) * 100), tries)  # fmt: skip


def _gib(nbytes: float) -> str:
    """GPU memory as the plan says it: `11.3 GiB`, or MiB below a tenth of a GiB (`0.0 GiB` said nothing)."""
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 0.1 * 2**30 else f"{nbytes / 2**20:.0f} MiB"


def _limit(opts: UpscaleOptions, model: Restorer) -> int:
    return vram_limit(opts.vram or 0, model.weights_on_device(opts.offload))


def _roomier(plan: Plan, opts: UpscaleOptions, model: Restorer) -> list[tuple[str, dict[str, Any]]]:
    """(flag, option changes) that may make room, in the order warn_if_device_memory_short tries them:
    more offload, least first, then smaller windows (auto tiles, and the paper's chunk for a whole clip)."""
    out: list[tuple[str, dict[str, Any]]] = [(f"--offload {o}", {"offload": o}) for o in _more_offload(opts)]
    out = out if model.weights_bytes() else []
    tile = AUTO if plan.tiles == 1 or plan.tile > MIN_TILE else opts.tile
    chunk = DEFAULT_CHUNK if not plan.chunk and plan.frames > DEFAULT_CHUNK else opts.chunk
    words = ["a smaller --tile"] * (tile != opts.tile) + [f"--chunk {chunk}"] * (chunk != opts.chunk)
    if words:
        out.append((" and ".join(words), {"tile": tile, "chunk": chunk}))
    return out


def _more_offload(opts: UpscaleOptions) -> list[Offload]:
    """The offloads past the options' that a run takes, least first: bitsandbytes weights cannot
    move layer by layer, torchao's fp8 weights not at all."""
    order: list[Offload] = [] if opts.quantize == "fp8" else ["none", "model"]
    order += ["sequential"] if opts.quantize == "none" else []
    return order[order.index(opts.offload) + 1 :] if opts.offload in order else []


def suggest_better_plan(
    plan: Plan, info: VideoInfo, model: Restorer, opts: CheckedOptions, device: torch.device, dtype: torch.dtype
) -> None:
    """Say so, in one line with both plans' numbers, when the plan is poor (tiles of the smallest
    size, or a work ratio above POOR_WORK_RATIO) and an option the user left alone plans at most half
    the model calls: --offload model, else --offload sequential, else (a dry run on a GPU that has
    bitsandbytes) --quantize nf4. Each is planned by make_plan, and only for a poor plan."""
    poor = (plan.tiles > 1 and plan.tile <= MIN_TILE) or plan.work_ratio > POOR_WORK_RATIO
    if not poor or device.type != "cuda" or not model.weights_bytes():
        return
    for flag, changes, alt_model in _alternatives(opts, model, device):
        alt_opts = dataclasses.replace(opts, **changes)  # (checked again: CheckedOptions)
        budget = measured_budget(alt_model, alt_opts, device)  # auto tiles fit what it leaves: no --vram check
        alt, _ = make_plan(info, alt_model, alt_opts, device, dtype, budget)
        if 2 * alt.windows() <= plan.windows():
            n = alt.windows()
            log.warning("%s (%d model calls, work ratio %.2f); %s plans %s (%d call%s, work ratio %.2f, est. peak GPU "
                        "%.1f GiB)", _tiling(plan), plan.windows(), plan.work_ratio, flag, _tiling(alt), n,
                        "s" * (n != 1), alt.work_ratio, alt.est_peak_device_bytes / 2**30)  # fmt: skip
            return


def _alternatives(
    opts: UpscaleOptions, model: Restorer, device: torch.device
) -> list[tuple[str, dict[str, Any], Restorer]]:
    """(flag, option changes, model) of the settings suggest_better_plan tries, in the order it tries
    them: the one that costs least speed and no quality first."""
    out: list[tuple[str, dict[str, Any], Restorer]] = []
    if not is_given(opts, "offload"):
        out += [(f"--offload {o}", {"offload": o}, model) for o in _more_offload(opts)]
    # nf4 in a dry run (a loaded model's weights would have to load again), where this machine runs it
    takes_nf4 = opts.offload != "sequential" and not is_given(opts, "quantize")  # options.check_quantize_offload
    if isinstance(model, DoveModel) and model.is_skeleton and takes_nf4 and _has_bnb(device):
        nf4 = loaded_weight_bytes(model.transformer, model.vae, model.dtype, "nf4")
        out.append(("--quantize nf4", {"quantize": "nf4"}, dataclasses.replace(model, planned_weights_bytes=nf4)))
    return out


def _has_bnb(device: torch.device) -> bool:
    """A CUDA GPU here and a bitsandbytes that --quantize takes (models.check_quantize's test)."""
    if not torch.cuda.is_available():
        return False
    try:
        bnb_config("nf4", torch.bfloat16, device)
    except OptionError:
        return False
    return True


def _tiling(plan: Plan) -> str:
    """`405 tiles of 64 px` or `the whole frame`."""
    return f"{plan.tiles} tiles of {plan.tile} px" if plan.tiles > 1 else "the whole frame"


def accumulator_bytes(chunk: int, frames: int, height: int, width: int, overlap: int) -> int:
    """float32 output frames held while they are blended: two windows' worth and the overlap."""
    return (2 * (chunk or frames or 1) + overlap + 2) * 3 * height * width * 4
