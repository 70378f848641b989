"""The `dove` command line: parses options, wires the library together, turns errors into messages."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from dove_cli.errors import DoveError

app = typer.Typer(
    name="dove",
    help="One-step diffusion video super-resolution (DOVE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


# ---------------------------------------------------------------- upscale / bench (owner: main)

from pathlib import Path  # noqa: E402
from typing import List  # noqa: E402


def _codec_options(pairs: List[str]) -> dict[str, str]:
    from dove_cli.errors import OptionError

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise OptionError(f"--codec-option {pair!r} must be key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


class _UpscaleBar:
    """Rich progress: frames done / total, fps, ETA and the current window; silent with --quiet."""

    def __init__(self, quiet: bool, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.2f} fps"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[window]}"),
            console=err_console,
            disable=quiet,
            transient=False,
        )
        self.task = self.bar.add_task(escape(label), total=None, fps=0.0, window="")
        self.started = False

    def __call__(self, p) -> None:
        if not self.started:  # only once work begins: an early error leaves no empty bar behind
            self.bar.start()
            self.started = True
        fps = p.frames_done / p.seconds if p.seconds > 0 else 0.0
        self.bar.update(self.task, completed=p.frames_done, total=p.frames_total or None, fps=fps, window=escape(p.window))

    def __enter__(self) -> "_UpscaleBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:  # stopping a bar that never started prints a stray blank line
            self.bar.stop()


def _print_plan(plan, console: Console) -> None:
    from rich.table import Table

    gib = 1024**3
    table = Table(title="plan (--dry-run)", show_header=False, show_edge=False)
    h, w = plan.input_size
    oh, ow = plan.output_size
    rows = [
        ("input", f"{w}x{h}, {plan.frames} frames at {float(plan.fps):.3f} fps ({plan.fps})"),
        ("output", f"{ow}x{oh}"),
        ("padded input", f"{plan.padded_size[1]}x{plan.padded_size[0]}"),
        ("chunks", f"{plan.chunks} of {plan.chunk or 'all'} frames, overlap {plan.chunk_overlap}"),
        ("tiles", f"{plan.tiles} of {plan.tile or 'whole frame'} px, overlap {plan.tile_overlap}"),
        ("windows", str(plan.windows())),
        ("device", f"{plan.device}, {plan.dtype}"),
        ("est. peak GPU memory", f"{plan.est_peak_device_bytes / gib:.1f} GiB" if plan.est_peak_device_bytes else "-"),
        ("est. peak host memory", f"{plan.est_peak_host_bytes / gib:.1f} GiB"),
        ("est. time (rough)", f"{plan.est_seconds:.0f} s" if plan.est_seconds is not None else "-"),
    ]
    if plan.model_note:
        rows.insert(0, ("model", plan.model_note))
    for k, v in rows:
        table.add_row(k, escape(v))
    console.print(table)


@app.command("upscale")
def upscale_cmd(
    input: Path = typer.Argument(..., metavar="INPUT", help="Video file, image, image folder or pattern (frames/%06d.png)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output video (container from the extension) or pattern."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model folder or hub id (default: the downloaded DOVE); 'bilinear' for a preview."
    ),
    scale: int = typer.Option(4, "--scale", "-s", help="Upscaling factor."),
    tile: str = typer.Option("auto", "--tile", help="Tile size in output px; 0 = whole frame; auto = fit free memory."),
    tile_overlap: int = typer.Option(64, "--tile-overlap", help="Tile overlap in output px."),
    chunk: str = typer.Option("auto", "--chunk", help="Frames per window, 4k+1 (e.g. 33); 0 = whole video; auto."),
    chunk_overlap: int = typer.Option(8, "--chunk-overlap", help="Frames shared by neighbouring chunks."),
    blend: str = typer.Option("cosine", "--blend", help="cosine (smooth) or hard (the release's valid-region cut)."),
    posterior: str = typer.Option("sample", "--posterior", help="VAE posterior: sample (seeded, the release) or mode."),
    seed: int = typer.Option(42, "--seed", help="Seed for --posterior sample."),
    pad: str = typer.Option("replicate", "--pad", help="Pad to the model block: replicate, or zero (the release)."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1, cpu (default: cuda when present)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="bf16, fp16 or fp32 (default: bf16 on GPU)."),
    offload: str = typer.Option("none", "--offload", help="none, model (one part on the GPU at a time), sequential."),
    vae_tiling: bool = typer.Option(False, "--vae-tiling", help="Let the VAE tile internally (less memory)."),
    quantize: str = typer.Option("none", "--quantize", help="Transformer weights: none, int8 or nf4 (bitsandbytes)."),
    color_fix: str = typer.Option("wavelet", "--color-fix", help="none, wavelet or adain: keep the input's colours."),
    codec: Optional[str] = typer.Option(None, "--codec", help="h264, hevc, av1, vp9, ffv1, prores, png (default: h264; vp9 for .webm)."),
    crf: Optional[int] = typer.Option(None, "--crf", help="Quality (codec default: visually lossless)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Encoder preset."),
    pix_fmt: Optional[str] = typer.Option(None, "--pix-fmt", help="e.g. yuv420p, yuv444p, yuv420p10le."),
    codec_option: List[str] = typer.Option([], "--codec-option", help="key=value passed to the encoder (repeatable)."),
    audio: str = typer.Option("copy", "--audio", help="copy (default), transcode (AAC/Opus) or none."),
    subtitles: str = typer.Option("copy", "--subtitles", help="copy (default) or none."),
    fps: Optional[str] = typer.Option(None, "--fps", help="Frame rate of an image-sequence input (e.g. 24000/1001)."),
    rotate: str = typer.Option("keep", "--rotate", help="keep the rotation tag (phone videos), or apply it to the pixels."),
    ignore_decode_errors: bool = typer.Option(
        False, "--ignore-decode-errors", help="Skip undecodable frames (reported) instead of stopping."
    ),
    deinterlace: str = typer.Option(
        "off", "--deinterlace", help="frame (bwdif, same rate) or field (a frame per field, 50i -> 50p); off."
    ),
    scene_cuts: str = typer.Option("auto", "--scene-cuts", help="auto: no window spans a shot change; off."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run (from OUTPUT.dove-work/)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output (and any unfinished run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (windows, memory, time) and stop."),
    preview: Optional[str] = typer.Option(None, "--preview", help="Only START+DURATION, e.g. 1:20+5s."),
    compare: bool = typer.Option(False, "--compare", help="Write input (bilinear) | output side by side."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Write a JSON sidecar of the run here."),
    download: bool = typer.Option(False, "--download", help="Download the default weights if missing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
) -> None:
    """Upscale a video (or every video in a folder) with DOVE, streaming, with exact timing and audio."""
    from dove_cli.batch import is_batch_input
    from dove_cli.errors import OptionError
    from dove_cli.pipeline import UpscaleOptions, parse_size_option, upscale

    opts = UpscaleOptions(
        model=model, scale=scale, tile=parse_size_option(tile, "--tile"), tile_overlap=tile_overlap,
        chunk=parse_size_option(chunk, "--chunk"), chunk_overlap=chunk_overlap, blend=_choice(blend, "--blend", ("cosine", "hard")),
        posterior=_choice(posterior, "--posterior", ("sample", "mode")), seed=seed,
        pad=_choice(pad, "--pad", ("replicate", "zero")), device=device, dtype=dtype,
        offload=_choice(offload, "--offload", ("none", "model", "sequential")), vae_tiling=vae_tiling,
        quantize=_choice(quantize, "--quantize", ("none", "int8", "nf4")),
        color_fix=_choice(color_fix, "--color-fix", ("none", "wavelet", "adain")), codec=codec, crf=crf,
        preset=preset, pix_fmt=pix_fmt, codec_options=_codec_options(codec_option),
        audio=_choice(audio, "--audio", ("copy", "transcode", "none")), overwrite=overwrite, preview=preview,
        compare=compare, manifest=str(manifest) if manifest else None, download=download,
        subtitles=_choice(subtitles, "--subtitles", ("copy", "none")), fps=fps,
        rotate=_choice(rotate, "--rotate", ("keep", "apply")), ignore_decode_errors=ignore_decode_errors,
        deinterlace=_choice(deinterlace, "--deinterlace", ("off", "frame", "field")),
        scene_cuts=_choice(scene_cuts, "--scene-cuts", ("auto", "off")), resume=resume,
    )  # fmt: skip
    if is_batch_input(input):
        if dry_run or manifest:
            raise OptionError("--dry-run and --manifest take one input file, not a folder")
        _upscale_folder(input, output, opts, quiet)
        return
    if dry_run:
        _print_plan(upscale(input, output, opts, dry_run=True), Console(stderr=True))
        return
    with _UpscaleBar(quiet, input.name) as bar:
        result = upscale(input, output, opts, progress=bar)
    if not quiet:
        err_console.print(result.summary(), markup=False, highlight=False, soft_wrap=True)


class _BatchBars(_UpscaleBar):
    """Two rich bars for a folder: files done / total, and frames of the current file."""

    def __init__(self, quiet: bool, total: int) -> None:
        super().__init__(quiet, "")
        self.files = self.bar.add_task("[bold]all files", total=total, fps=0.0, window="")
        self.done = 0

    def file(self, index: int, item) -> None:
        if item.status == "running":  # a fresh per-file bar (its frame count comes with the first update)
            self.bar.remove_task(self.task)
            self.task = self.bar.add_task(escape(item.input.name), total=None, fps=0.0, window="")
            return
        self.done += 1
        self.bar.update(self.files, completed=self.done, window=escape(f"{item.input.name}: {item.status}"))
        if not self.started:
            self.bar.start()
            self.started = True


def _upscale_folder(input: Path, output: Path, opts, quiet: bool) -> None:
    """`dove upscale DIR -o DIR`: every video, one model load; failures listed at the end, exit 2."""
    from dove_cli.batch import plan_batch, upscale_batch

    total = len(plan_batch(input, output, overwrite=opts.overwrite))
    with _BatchBars(quiet, total) as bars:
        result = upscale_batch(input, output, opts, on_file=bars.file, progress=bars)
    if not quiet:
        err_console.print(
            f"{result.count('done')} upscaled, {result.count('skipped')} skipped (output exists; --overwrite "
            f"to redo), {len(result.failed)} failed -> {output}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    for item in result.failed:
        err_console.print(f"[bold red]failed:[/] {escape(item.error or '')}", highlight=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(2)


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    from dove_cli.errors import OptionError

    if value not in allowed:
        raise OptionError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return value


@app.command("bench")
def bench_cmd(
    model: str = typer.Option("tiny", "--model", "-m", help="tiny, full-random (real 5B config, random), bilinear, or a path."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="A clip to use instead of a synthetic one."),
    frames: int = typer.Option(33, "--frames", help="Frames of the synthetic clip."),
    height: int = typer.Option(720, "--height", help="Output height of the synthetic clip."),
    width: int = typer.Option(1280, "--width", help="Output width of the synthetic clip."),
    scale: int = typer.Option(4, "--scale", "-s"),
    tile: str = typer.Option("0", "--tile", help="As for upscale (default: whole frame)."),
    chunk: str = typer.Option("0", "--chunk", help="As for upscale (default: whole clip)."),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype"),
    offload: str = typer.Option("none", "--offload"),
    warmup: int = typer.Option(-1, "--warmup", help="Untimed runs first (default: 1 on GPU, 0 on CPU)."),
    repeat: int = typer.Option(1, "--repeat", help="Timed runs; the fastest is reported."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Time each stage (decode, upsample, VAE encode, transformer, VAE decode, blend, encode) and peak memory."""
    import json

    from dove_cli.bench import run_bench

    report = run_bench(
        model=model, input=input, frames=frames, height=height, width=width, scale=scale,
        tile=tile, chunk=chunk, device=device, dtype=dtype, offload=offload, warmup=warmup, repeat=repeat,
    )  # fmt: skip
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"dove bench: {report['model']} on {report['device_name']}", show_edge=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    total = report["seconds"]
    for stage, sec in report["stages"].items():
        table.add_row(stage, f"{sec:.3f}", f"{100 * sec / total:.0f}%" if total else "-")
    table.add_row("[bold]total", f"[bold]{total:.3f}", "")
    console = Console()
    console.print(table)
    gib = 1024**3
    console.print(
        f"{report['frames']} frames {report['output_size']} in {total:.2f} s = {report['fps']:.2f} frames/s; "
        f"peak host {report['peak_host_bytes'] / gib:.2f} GiB, peak GPU {report['peak_device_bytes'] / gib:.2f} GiB",
        highlight=False,
    )


# ---------------------------------------------------------------- download-weights / info (owner: weights)

from pathlib import Path as _Path  # noqa: E402  (section-local import; the sections are edited separately)


class _DownloadBars:
    """Rich progress for `download-weights`: one bar per file and one for the whole download."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,  # no bar spam in logs and pipes
        )
        self.overall = self.bars.add_task("[bold]total[/]", total=total)
        self.tasks: dict[tuple[str, str], object] = {}
        self.done: dict[str, int] = {}

    def __call__(self, stage: str, name: str, done: int, total: int) -> None:
        if stage == "cached":
            return
        key = (stage, name)
        if key not in self.tasks:
            label = name if stage == "download" else f"verify {name}"
            self.tasks[key] = self.bars.add_task(escape(label), total=total)
        self.bars.update(self.tasks[key], completed=done, total=total, visible=stage == "download" or done < total)
        if stage == "download":
            self.bars.advance(self.overall, done - self.done.get(name, 0))
            self.done[name] = done

    def __enter__(self) -> "_DownloadBars":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()


@app.command("download-weights")
def download_weights_cmd(
    repo: str = typer.Option("zzsi/DOVE", "--repo", help="Hub repo id (owner/name[:subfolder])."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch, tag or commit (default: main)."),
    subfolder: Optional[str] = typer.Option(
        None, "--subfolder", help="Folder inside the repo (default: stage<N>/ for zzsi/DOVE, else the root)."
    ),
    stage: int = typer.Option(2, "--stage", help="Which DOVE training stage to fetch (1 or 2)."),
    base: bool = typer.Option(False, "--base", help="Also fetch zai-org/CogVideoX1.5-5B (to train stage 1)."),
    dir: Optional[_Path] = typer.Option(None, "--dir", help="Download into this folder instead of the hub cache."),
    with_text_encoder: bool = typer.Option(
        False, "--with-text-encoder", help="Also fetch the T5 text encoder and tokenizer (~9 GB; not needed)."
    ),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept pickle (.bin/.pt) weights."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before downloading."),
) -> None:
    """Download the DOVE weights (resumable, verified) so that `dove upscale` works without options."""
    from rich.table import Table

    from dove_cli import weights
    from dove_cli.errors import OptionError

    if stage not in (1, 2):
        raise OptionError(f"--stage must be 1 or 2, not {stage}")
    console = Console()
    plan = weights.plan_download(
        repo, revision, subfolder, stage, base, dir, with_text_encoder, allow_pickle
    )
    table = Table(title=escape(f"plan: into {plan.target}"), show_edge=False)
    for column in ("repo", "revision", "files", "size", "to download"):
        table.add_column(column, justify="right" if column in ("files", "size", "to download") else "left")
    for rp in plan.repos:
        name = f"{rp.repo}/{rp.subfolder}" if rp.subfolder else rp.repo
        rev = rp.revision + (f" ({rp.commit[:10]})" if rp.commit else "")
        size, todo = weights.human_size(rp.total_bytes), weights.human_size(rp.missing_bytes)
        table.add_row(name, rev, str(len(rp.files)), size, todo)
    console.print(table)
    if plan.offline:
        console.print("offline (HF_HUB_OFFLINE=1): using the local copy, nothing is downloaded")
    else:
        free = weights.human_size(plan.free_bytes)
        console.print(f"to download: {weights.human_size(plan.missing_bytes)} ({free} free)", highlight=False)
    if plan.missing_bytes and not yes and sys.stdin.isatty() and not typer.confirm("Download now?", default=True):
        raise typer.Exit(1)
    with _DownloadBars(console, plan.missing_bytes) as bars:
        folder = weights.fetch(plan, progress=bars)
    console.print(f"weights ready in {folder}", markup=False, highlight=False, soft_wrap=True)
    command = "dove upscale in.mp4 -o out.mp4"
    if weights.find_downloaded() != folder:
        command += f" --model {folder}"
    console.print(f"next: {command}", markup=False, highlight=False, soft_wrap=True)


@app.command("info")
def info_cmd() -> None:
    """Versions, device and free GPU memory, where the weights are, and which optional features work."""
    import importlib.metadata
    import importlib.util
    import platform

    from rich.table import Table

    from dove_cli import weights

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    console = Console()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # paths are shown whole, to be copied
    table.add_row("python", platform.python_version())
    for dist in ("dove-cli", "torch", "diffusers", "transformers", "huggingface_hub", "av"):
        table.add_row(dist, version(dist))

    import torch

    flash_ok = False
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            major, minor = torch.cuda.get_device_capability(i)
            flash_ok = flash_ok or major >= 8
            memory = f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
            table.add_row(f"cuda:{i}", f"{torch.cuda.get_device_name(i)} (sm{major}{minor}), {memory}")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        table.add_row("device", "mps (Apple GPU)")
    else:
        table.add_row("device", "cpu only (no CUDA device): upscaling will be very slow")

    env = weights.hub_env()
    table.add_row("hub", f"{env.endpoint}{' (offline)' if env.offline else ''}")
    table.add_row("hub cache", escape(str(env.cache_dir)))
    folder = weights.find_downloaded()
    if folder is None:
        table.add_row("weights", "not downloaded: run `dove download-weights`")
    else:
        try:
            weights.validate_model_folder(folder)
            table.add_row("weights", escape(str(folder)))
        except DoveError as exc:
            table.add_row("weights", f"{escape(str(folder))} [red]broken:[/] {escape(str(exc))}")
        for part, size in weights.describe_model(folder).items():
            table.add_row(f"  {part}", weights.human_size(size) if size is not None else "absent")
    base = weights.find_downloaded(weights.BASE_REPO, "")
    table.add_row("base model", escape(str(base)) if base else "not downloaded (only needed to train: --base)")

    def usable(ok: bool, why: str = "") -> str:
        return "yes" if ok else f"no{f' ({why})' if why else ''}"

    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    has_flash_attn = importlib.util.find_spec("flash_attn") is not None
    table.add_row("bitsandbytes (8/4-bit)", usable(has_bnb, "pip install bitsandbytes"))
    table.add_row("flash-attn package", usable(has_flash_attn, "optional"))
    cuda = torch.cuda.is_available()
    flash_sdpa = cuda and flash_ok and torch.backends.cuda.flash_sdp_enabled()
    table.add_row("SDPA flash", usable(flash_sdpa, "needs CUDA sm80+"))
    table.add_row("SDPA mem-efficient", usable(cuda and torch.backends.cuda.mem_efficient_sdp_enabled(), "needs CUDA"))
    console.print(table)


# ---------------------------------------------------------------- train / degrade (owner: train)

train_app = typer.Typer(
    help="Fine-tune DOVE (two stages, SPEC section 2); `dove train export` makes a model folder.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(train_app, name="train")


@train_app.callback()
def train_cmd(
    ctx: typer.Context,
    stage: Optional[int] = typer.Option(None, "--stage", help="1 (latent space) or 2 (pixel space). Default 1."),
    data: Optional[str] = typer.Option(None, "--data", help="Folder (recursive) or list file of HQ videos."),
    images: Optional[str] = typer.Option(None, "--images", help="Stage 2: folder or list file of HQ images."),
    lq: Optional[str] = typer.Option(None, "--lq", help="Folder of real LQ videos paired with --data (no synthesis)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Initial model: diffusers folder or hub id."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="Run folder (checkpoints, metrics)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML or YAML file of training options."),
    resolution: Optional[str] = typer.Option(None, "--resolution", help="HQ crop FxHxW (25x320x640; stage 2 2x320x640)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimiser steps (10000; stage 2 500)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (2e-5; stage 2 5e-6)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Linear warmup steps (100)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Clips per process and micro-step (2)."),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", help="Micro-steps per optimiser step (1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of data order, crops, degradations (42)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Steps between checkpoints (1000; 100)."),
    keep_checkpoints: Optional[int] = typer.Option(None, "--keep-checkpoints", help="Checkpoints kept (3)."),
    metrics_file: Optional[str] = typer.Option(None, "--metrics-file", help="JSONL log (default OUTPUT/metrics.jsonl)."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adamw or adamw8bit (bitsandbytes)."),
    lora_rank: Optional[int] = typer.Option(None, "--lora-rank", help="Train LoRA adapters of this rank (0 = all weights)."),
    lora_alpha: Optional[int] = typer.Option(None, "--lora-alpha", help="LoRA alpha (64)."),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision", help="auto, bf16, fp16 or no."),
    gradient_checkpointing: Optional[bool] = typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations (on)."
    ),
    image_ratio: Optional[float] = typer.Option(None, "--image-ratio", help="Stage 2: share of image batches (0.8)."),
    frame_stride: Optional[int] = typer.Option(None, "--frame-stride", help="Take every Nth frame (1)."),
    degradation: Optional[str] = typer.Option(None, "--degradation", help="video, image_video or a yaml path."),
    dists_weights: Optional[List[str]] = typer.Option(
        None, "--dists-weights", help="DISTS alpha/beta and/or VGG16 weight files (repeatable)."
    ),
    dists_weight: Optional[float] = typer.Option(None, "--dists-weight", help="Weight of the DISTS term (1)."),
    frame_diff_weight: Optional[float] = typer.Option(None, "--frame-diff-weight", help="Weight of the frame-difference term (1)."),
    max_grad_norm: Optional[float] = typer.Option(None, "--max-grad-norm", help="Gradient clipping (0.1)."),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", help="Data-loading processes (4)."),
    posterior: Optional[str] = typer.Option(None, "--posterior", help="VAE posterior: sample (release) or mode."),
    latent_loss: Optional[str] = typer.Option(
        None,
        "--latent-loss",
        help="Stage 1: all-slots (release: the replicated first latent frame counts) or real-frames.",
    ),
    vae_slicing: Optional[bool] = typer.Option(
        None, "--vae-slicing/--no-vae-slicing", help="One clip at a time through the VAE (on)."
    ),
    vae_tiling: Optional[bool] = typer.Option(
        None, "--vae-tiling/--no-vae-tiling", help="Spatial VAE tiles, as the release trains (on)."
    ),
    tensorboard: Optional[bool] = typer.Option(None, "--tensorboard/--no-tensorboard", help="Also log to TensorBoard."),
    val_data: Optional[str] = typer.Option(None, "--val-data", help="Held-out HQ videos: PSNR/SSIM + sample frames."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Steps between validations (500)."),
    val_clips: Optional[int] = typer.Option(None, "--val-clips", help="Held-out clips per validation (4)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'latest' or a checkpoint folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in an output folder that holds a run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train stage 1 or 2 (the paper's recipe by default; every number is an option)."""
    if ctx.invoked_subcommand is not None:
        return
    from dove_cli.errors import OptionError
    from dove_cli.train.config import build_config
    from dove_cli.train.loop import train

    flags = dict(
        stage=stage, data=data, images=images, lq=lq, model=model, output_dir=output_dir, resolution=resolution,
        max_steps=max_steps, lr=lr, warmup_steps=warmup_steps, batch_size=batch_size, grad_accum=grad_accum,
        seed=seed, checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, metrics_file=metrics_file,
        optimizer=optimizer, lora_rank=lora_rank, lora_alpha=lora_alpha, mixed_precision=mixed_precision,
        gradient_checkpointing=gradient_checkpointing, image_ratio=image_ratio, frame_stride=frame_stride,
        degradation=degradation, dists_weights=dists_weights or None, dists_weight=dists_weight,
        frame_diff_weight=frame_diff_weight, max_grad_norm=max_grad_norm, num_workers=num_workers,
        posterior=posterior, latent_loss=latent_loss, vae_slicing=vae_slicing, vae_tiling=vae_tiling,
        tensorboard=tensorboard, resume=resume, overwrite=overwrite or None,
        val_data=val_data, val_every=val_every, val_clips=val_clips,
    )  # fmt: skip
    cfg = build_config(1, config, **flags)
    if not cfg.data:
        raise OptionError("--data is required (a folder or list file of HQ videos)")
    logging.getLogger("dove_cli").setLevel(logging.INFO)
    if quiet:
        result = train(cfg)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn(f"stage {cfg.stage}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[it_s]:.2f} it/s"),
            TimeRemainingColumn(), console=err_console,
        )  # fmt: skip
        task = bar.add_task("train", total=cfg.max_steps, loss=float("nan"), lr=0.0, it_s=0.0)

        def report(row: dict) -> None:
            if not bar.live.is_started:  # shown from the first step, not above a set-up error
                bar.start()
            bar.update(task, completed=row["step"], loss=row["loss"], lr=row["lr"], it_s=row["it_s"])

        try:
            result = train(cfg, progress=report)
        finally:
            bar.stop()
    if not quiet:
        err_console.print(
            f"done: {result.steps} steps, last checkpoint {result.last_checkpoint}, metrics {result.metrics_path}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip


@train_app.command("export")
def train_export_cmd(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A checkpoint folder (or a run folder: its latest checkpoint)."),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write (diffusers layout)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
    with_text_encoder: bool = typer.Option(
        False,
        "--with-text-encoder",
        help="Also copy the base model's text_encoder/ and tokenizer/ (for CogVideoXPipeline).",
    ),
) -> None:
    """Write a model folder that `dove upscale --model DIR` and diffusers load (float32, LoRA merged)."""
    from dove_cli.train.export import export_checkpoint

    folder = export_checkpoint(checkpoint, output, overwrite=overwrite, with_text_encoder=with_text_encoder)
    err_console.print(f"exported to {folder}", markup=False, highlight=False, soft_wrap=True)


@app.command("degrade")
def degrade_cmd(
    input: Path = typer.Argument(..., metavar="INPUT", help="A video (its first --frames frames are used)."),
    output: Path = typer.Option(..., "--output", "-o", help="LQ video to write (1/4 size)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw."),
    config: str = typer.Option("video", "--config", help="video (stage 1), image_video (stage 2) or a yaml."),
    frames: int = typer.Option(100, "--frames", help="At most this many frames."),
    record: Optional[Path] = typer.Option(None, "--record", help="Write the drawn parameters as JSON here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Write one degraded sample of a video: what `dove train` teaches the model to undo."""
    import json

    from dove_cli.train.degrade import degrade_file

    steps = degrade_file(input, output, seed=seed, config=config, max_frames=frames, overwrite=overwrite)
    if record is not None:
        record.write_text(json.dumps(steps, indent=1))
    summary = ", ".join(
        s["op"] + (f" {s.get('kernel') or s.get('codec') or s.get('type') or s.get('method')}" if len(s) > 1 else "")
        for s in steps
    )
    err_console.print(f"wrote {output}: {summary}", markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------- entry point


def main(argv: Optional[list[str]] = None) -> None:
    """Run the app; every failure is one `error: ...` line on stderr and a non-zero exit, never a traceback.

    DoveError carries its own exit code; usage errors (unknown option, bad value, missing argument)
    exit 2 with a pointer to `--help`, in the same one-line form rather than click's framed box.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    previous = signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
    try:
        code = app(args=argv, prog_name="dove", standalone_mode=False)
    except _click.NoArgsIsHelpError as exc:  # bare `dove` or `dove train`: the help, not an error
        print(exc.ctx.get_help())
        code = 0
    except _click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _print_error(f"{exc.format_message().rstrip('.')}{hint}")
        code = exc.exit_code
    except _click.ClickException as exc:
        _print_error(exc.format_message())
        code = exc.exit_code
    except typer.Abort:
        err_console.print("interrupted", highlight=False)
        code = 130
    except DoveError as exc:
        _print_error(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        code = 130
    finally:
        signal.signal(signal.SIGTERM, previous)  # tests call main() in-process
    sys.exit(code if isinstance(code, int) else 0)  # a command's own return value is not an exit code


class _click:
    """click's exception classes, from wherever this typer takes click (recent typer vendors its own copy)."""

    _module = sys.modules[typer.BadParameter.__module__]
    UsageError = _module.UsageError
    ClickException = _module.ClickException
    NoArgsIsHelpError = getattr(_module, "NoArgsIsHelpError", UsageError)


def _print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _sigterm_as_ctrl_c(signum: int, frame: object) -> None:
    """timeout, SLURM, docker stop: stop as on Ctrl-C (finished part kept, resume hint, exit 130)."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
