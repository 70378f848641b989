"""The `dove` command line: parses options, wires the library together, turns errors into messages."""

from __future__ import annotations

import logging
import sys
from typing import Optional

import typer
from rich.console import Console

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
            self.tasks[key] = self.bars.add_task(label, total=total)
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
    from rich.markup import escape

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
    console.print(f"weights ready in {folder}", highlight=False, soft_wrap=True)
    command = "dove upscale in.mp4 -o out.mp4"
    if weights.find_downloaded() != folder:
        command += f" --model {folder}"
    console.print(f"next: {command}", highlight=False, soft_wrap=True)


@app.command("info")
def info_cmd() -> None:
    """Versions, device and free GPU memory, where the weights are, and which optional features work."""
    import importlib.metadata
    import importlib.util
    import platform

    from rich.markup import escape
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


# ---------------------------------------------------------------- entry point


def main(argv: Optional[list[str]] = None) -> None:
    """Run the app; a DoveError becomes `error: ...` on stderr and its exit code, never a traceback.

    Usage errors (unknown option, bad value) are click's: a message and exit 2.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        app(args=argv, standalone_mode=True)
    except DoveError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
