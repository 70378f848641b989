"""The `dove` command line: parses options, wires the library together, turns errors into messages.

The options of `upscale` and `bench` are made from the fields of `UpscaleOptions` (options.py),
where each one's default, choices and help are declared once.
"""

from __future__ import annotations

import dataclasses
import errno
import inspect
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from dove_cli import cli_args, note
from dove_cli.console import (
    BatchBars,
    EvalBar,
    OneLineFormatter,
    TrainBar,
    UpscaleBar,
    VerifyBar,
    err_console,
    out_bytes,
    out_console,
    print_batch_plans,
    print_batch_table,
    print_plan,
    print_table,
    run_label,
    say,
    show_unencodable,
)
from dove_cli.errors import (
    DoveError,
    Interrupted,
    OptionError,
    OutputError,
    StopSignal,
    command_line,
)
from dove_cli.humanize import human_size, path_text, real_names
from dove_cli.jsontext import json_text
from dove_cli.options import UNTAGGED_MATRIX_HELP, Cli, UntaggedMatrix, UpscaleOptions
from dove_cli.streams import check_stdout, shown_line
from dove_cli.train.config import TrainConfig

if TYPE_CHECKING:
    from rich.console import Console

    from dove_cli.batch import BatchResult
    from dove_cli.metrics.report import EvalReport
    from dove_cli.metrics.request import EvalRequest


class Commands(TyperGroup):
    """dove's commands, stopped by Ctrl-C, SIGTERM or SIGHUP: one line, exit 130 (143, 129). Said here, because typer's
    main turns a KeyboardInterrupt (Interrupted is one) into a bare exit 130 (older typer: an Abort)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            with command_line():  # advice in flags (--resume), not in the Python API's keywords
                return super().invoke(ctx)
        except Interrupted as exc:  # what was kept and how to continue
            if os.environ.get("RANK", "0") == "0":  # once for a multi-process `dove train`, not per process
                _print_error(str(exc))
            raise _said_stop() from None
        except KeyboardInterrupt:
            err_console.print("interrupted", highlight=False)
            raise _said_stop() from None


def _said_stop() -> typer.Exit:
    """Exit 130, the interrupt said: main() says `interrupted` for a bare 130 (Ctrl-C while typer
    parses the command line, before any command runs: typer exits 130 without a word)."""
    _stop.said = True
    return typer.Exit(130)


@dataclasses.dataclass
class _Stop:
    """How main()'s run was stopped, for its exit code: `said` once the interrupt's line is out (a bare
    130 is typer's, unsaid), `signum` the SIGTERM or SIGHUP that stopped it (0: none)."""

    said: bool = False
    signum: int = 0

    def reset(self) -> None:
        """Nothing stopped yet: tests and scripts call main() again in one process."""
        self.said, self.signum = False, 0


_stop = _Stop()


app = typer.Typer(
    cls=Commands,
    name="dove",
    help="One-step diffusion video super-resolution (DOVE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: readable at 80 columns, flags without a value placeholder
)


def _show_version(value: bool) -> None:
    if value:
        from dove_cli import __version__

        typer.echo(f"dove {__version__}")
        raise typer.Exit()


@app.callback()
def _everywhere(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="More detail (the plan, time per stage) and the codecs' own messages; anywhere on the line.",
    ),
) -> None:
    """One-step diffusion video super-resolution (DOVE)."""
    if verbose:
        logging.getLogger("dove_cli").setLevel(logging.INFO)
    else:  # encoders print banners of their own (SVT-AV1: about 60 lines per file)
        os.environ.setdefault("SVT_LOG", "1")
    # Never av.logging.set_level(): PyAV's log callback takes the GIL from FFmpeg's decoder threads,
    # and closing a frame-threaded decoder early (a bounded read) then deadlocks (PyAV #1849).


class PlainHelp(TyperCommand):
    """Plain help (no rich boxes), with the options grouped under their `rich_help_panel` titles in
    the order the panels first appear (`dove upscale` has over 50 options), and arguments in the
    usage line as click writes them (`INPUT`, `[GT]`; this typer writes `{INPUT}`, `[[GT]]`)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [re.sub(r"^\{(.*)\}|^\[(\[.*\])\]", lambda m: m[1] or m[2], piece) for piece in pieces]

    def format_options(self, ctx: Any, formatter: Any) -> None:  # click's, from wherever typer takes it
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                title = "Arguments" if param.param_type_name == "argument" else None
                sections.setdefault(title or getattr(param, "rich_help_panel", None) or "Options", []).append(record)
        for title, records in sections.items():
            with formatter.section(title):
                formatter.write_dl(records)


def with_options(
    cls: type, only: tuple[str, ...] | None = None, defaults: dict[str, Any] | None = None, overrides: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per field of the dataclass `cls`, with the help, default and
    choices declared there; the command receives their values as `options`, an instance of `cls`.

    overrides: every option defaults to "not given" (on/off flags get a --no- form), and `options`
    is a dict of the values that were given (for configs whose defaults depend on other options).
    """
    hints = get_type_hints(cls)
    chosen = [f for f in dataclasses.fields(cls) if (only is None or f.name in only) and not f.metadata["cli"].hidden]
    defaults = defaults or {}
    panels, panel = {}, None  # field -> its help panel (cls.HELP_PANELS names the first field of each)
    for f in dataclasses.fields(cls):
        panel = panels[f.name] = getattr(cls, "HELP_PANELS", {}).get(f.name, panel)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "options"]
        params = own + [
            _parameter(f, hints[f.name], defaults.get(f.name, _default(f)), overrides, panels[f.name]) for f in chosen
        ]
        keeps_given = "given" in hints  # UpscaleOptions: which options the user typed (see its `given`)
        if keeps_given:
            params.append(inspect.Parameter("click_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

        def run(**kwargs: Any) -> Any:
            values = {}
            for f in chosen:
                spec: Cli = f.metadata["cli"]
                value = kwargs.pop(f.name)
                values[f.name] = spec.parse(value, _flag(f)) if spec.parse and value is not None else value
            if overrides:
                return command(**kwargs, options={k: v for k, v in values.items() if v is not None})
            if keeps_given:
                ctx = kwargs.pop("click_context")
                values["given"] = frozenset(f.name for f in chosen if _typed(ctx.get_parameter_source(f.name)))
            return command(**kwargs, options=cls(**values))

        run.__name__, run.__doc__ = command.__name__, command.__doc__
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate


def _typed(source: Any) -> bool:
    """A click ParameterSource that is the user's: the command line or an environment variable."""
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _flag(f: dataclasses.Field) -> str:
    return f.metadata["cli"].flag or "--" + f.name.replace("_", "-")


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _parameter(f: dataclasses.Field, hint: Any, default: Any, overrides: bool, panel: str | None) -> inspect.Parameter:
    """The typer parameter of one field: typed by the field (Literal -> choices) or, where the
    command line takes text that `parse` turns into the value (`auto`, `k=v`, `25x320x640`), as text."""
    spec: Cli = f.metadata["cli"]
    names = [_flag(f)] + ([spec.short] if spec.short else [])
    many = isinstance(default, (dict, list)) or (spec.parse is not None and isinstance(default, tuple) and not default)
    if spec.parse is not None:
        hint = list[str] if many else str
        shown = spec.shown_default if default == f.default and spec.shown_default else default
        default = [] if many else str(shown)
    if overrides:  # "not given" is None, and an on/off flag can be given either way
        if hint is bool:
            names[0] = f"{names[0]}/--no-{names[0][2:]}"
        default, hint = None, (hint if many else hint | None)
    show = not overrides and default not in (None, [], False)
    text = spec.help
    if show and default != _default(f):  # this command's own default (bench: tiny), shown by click
        text = re.sub(r" \(default: [^)]*\)", "", text)
    option = typer.Option(default, *names, help=text, metavar=spec.metavar, show_default=show, rich_help_panel=panel)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=hint)


# ---------------------------------------------------------------- upscale / bench


@app.command(
    "upscale", cls=PlainHelp, short_help="Upscale a video, image sequence or folder of videos / frame folders."
)
@with_options(UpscaleOptions)
def upscale_cmd(
    input: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="Video file, folder of videos and/or frame folders, image, image folder or pattern (frames/%06d.png).",
    ),
    output_text: str = typer.Option(  # text: a trailing / says "a folder"
        ...,
        "--output",
        "-o",
        metavar="OUT",
        help="Output video (container from the extension), image pattern, or a folder (outputs keep the input's name; "
        "an image sequence's images keep theirs).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (windows, memory, time) and stop; for a folder, a row per video."
    ),
    recursive: bool = typer.Option(
        False,
        "--recursive",
        "-r",
        help="A folder: its sub-folders' videos and frame folders too, each output at the same place under "
        "OUT (hidden and symlinked folders left out).",
    ),  # fmt: skip
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
    eval_gt: Path | None = typer.Option(
        None,
        "--eval",
        metavar="GT",
        help="Score the output against GT when done (as dove eval OUTPUT GT); exit "
        "status 3 when the output was written but scoring it failed.",
    ),
    eval_metrics: str | None = typer.Option(
        None, "--eval-metrics", metavar="LIST", help="Metrics for --eval (default: as dove eval)."
    ),
    eval_json: Path | None = typer.Option(None, "--eval-json", metavar="FILE", help="Write the --eval scores here."),
    eval_crop_border: int = typer.Option(
        0,
        "--eval-crop-border",
        metavar="PX",
        min=0,
        help="Pixels left out at each edge of the output and GT before every --eval metric (as dove eval --crop-border).",
    ),  # fmt: skip
    eval_skip_unavailable: bool = typer.Option(
        False,
        "--eval-skip-unavailable",
        help="Leave out (and say) the --eval metrics whose weights are not at hand, score the rest (as dove eval "
        "--skip-unavailable).",
    ),
    eval_strict: bool = typer.Option(
        False,
        "--eval-strict",
        help="Sizes or frame counts of the output and GT that differ are errors, not cut (as dove eval --strict).",
    ),
    *,
    options: UpscaleOptions,
) -> None:
    """Upscale a video (or every video in a folder) with DOVE, streaming, with exact timing and audio."""
    from dove_cli.outputs import is_batch_input
    from dove_cli.video_io.reader import stdin_input

    note.setLevel(logging.WARNING if quiet else logging.INFO)
    if dry_run:
        check_stdout("--dry-run's plan")
    input = stdin_input(input)  # `- < in.mp4`: read as /dev/stdin
    out = _into_folder(input, output_text, options.container, options.codec, recursive)
    if eval_gt is None and (eval_metrics or eval_json or eval_crop_border or eval_skip_unavailable or eval_strict):
        raise OptionError("--eval-metrics, --eval-json, --eval-crop-border, --eval-skip-unavailable and --eval-strict "
                          "go with --eval GT")  # fmt: skip
    if recursive and not input.is_dir():
        raise OptionError(f"--recursive searches a folder's sub-folders: {input} is not a folder")
    request = None
    if eval_gt is not None:  # (its module loads torch: not for a mistake said above)
        from dove_cli.metrics.request import EvalRequest

        request = EvalRequest(eval_gt, eval_metrics, eval_json, eval_crop_border, eval_skip_unavailable, eval_strict)
        request.check(input, out, options, dry_run, recursive)
    if options.manifest is not None and (dry_run or request is not None):
        from dove_cli.manifest import is_stdout

        if is_stdout(Path(options.manifest)):
            product = "--dry-run's plan" if dry_run else "--eval's scores"
            raise OptionError(f"--manifest {options.manifest}: stdout carries {product}; give the manifest a file name")
    if recursive or is_batch_input(input):
        folder_out = output_text if output_text.endswith(("/", os.sep)) else out  # `-o take.mp4/`: a folder
        if dry_run:
            _plan_folder(input, folder_out, options, recursive)
        else:
            _upscale_folder(input, folder_out, options, quiet, recursive)
    elif dry_run:
        from dove_cli.upscaling import upscale

        plan = upscale(input, out, options, dry_run=True)
        print_plan(plan, out_console("--dry-run's plan"), (str(input), str(out)))  # as log lines: stdout's SHOWN
    else:
        _upscale_file(input, out, options, quiet)
    if request is not None:  # (not with --dry-run: refused by its check)
        _score(request, out, options, quiet)


def _into_folder(input: Path, output: str, container: str | None, codec: str | None, recursive: bool) -> Path:
    """`-o FOLDER` (one that exists, or any ending in /) for one video file or image sequence: outputs.into_folder."""
    from dove_cli.outputs import into_folder

    if not output.strip():  # a script's empty "$OUT": Path("") is the current folder
        raise OptionError(f"-o {output!r}: the output name is empty")
    return into_folder(input, output, container, codec, recursive)


def _upscale_file(input: Path, output: Path, options: UpscaleOptions, quiet: bool) -> None:
    with UpscaleBar(quiet, run_label(input)) as bar:  # shown from the run's first stage, once its input opened
        from dove_cli.upscaling import upscale

        result = upscale(input, output, options, progress=bar)
    if not quiet:
        say(result.summary())


def _score(request: EvalRequest, output: Path, options: UpscaleOptions, quiet: bool) -> None:
    """`dove eval OUTPUT GT` right after the upscale, with its table, and --eval-json's scores."""
    with EvalBar(quiet, output.name) as bar:
        report = request.score(output, options, progress=bar)
    on_stdout = "--eval-json" if request.json_on_stdout else None  # (checked before the run: EvalRequest.check)
    _print_eval_table(report, output, request.gt, err_console if on_stdout else out_console())
    _write_scores(report, {"--eval-json": request.json_out}, on_stdout)


def _plan_folder(input: Path, output: Path | str, opts: UpscaleOptions, recursive: bool) -> None:
    """`dove upscale DIR -o DIR --dry-run`: a row per video, the totals, and the files that cannot be
    planned (exit 2, as the run would fail them)."""
    from dove_cli.batch import dry_run_batch, say_warnings_once

    result = dry_run_batch(input, output, opts, recursive=recursive)
    print_batch_plans(result.items, out_console("--dry-run's plan"))  # the dry run's product: stdout
    say_warnings_once(result.items)
    _say_not_done(result)


def _upscale_folder(input: Path, output: Path | str, opts: UpscaleOptions, quiet: bool, recursive: bool) -> None:
    """`dove upscale DIR -o DIR`: every video, one model load; failures listed at the end, and the
    exit code says whether the folder is done (0), partly failed (4), needs a later re-run (75) or
    failed (2)."""
    from dove_cli.batch import plan_batch, upscale_batch
    from dove_cli.outputs import some_names

    total = len(plan_batch(input, output, overwrite=True, recursive=recursive))  # the count: no output opened
    if opts.ray:  # files in parallel: one bar of all their frames, a line per worker, a table at the end
        with UpscaleBar(quiet, input.name) as bar:
            result = upscale_batch(input, output, opts, recursive=recursive, progress=bar)
        if not quiet:
            print_batch_table(result.items, err_console)
    else:
        with BatchBars(quiet, total) as bars:
            result = upscale_batch(input, output, opts, recursive=recursive, on_file=bars.file, progress=bars)
    if not quiet:
        done = [i for i in result.items if i.status == "done"]
        continued = [i.name for i in done if i.result.resumed_from]
        # outputs with holes (--ignore-decode-errors: frames undecodable or lost), else said only in the warnings above
        holes = [f"{i.name} {i.result.dropped_frames}" for i in done if i.result.dropped_frames]
        notes = [f"{', '.join(continued)} continued from an interrupted run"] if continued else []
        notes += [f"{len(holes)} with frames missing: {some_names(holes)}"] if holes else []
        kept = f" ({'; '.join(notes)})" if notes else ""
        busy = f", {n} left to another dove run" if (n := result.count("busy")) else ""
        say(f"{result.count('done')} upscaled{kept}, {result.count('skipped')} skipped (output exists; --overwrite "
            f"to redo){busy}, {len(result.failed)} failed -> {output}")  # fmt: skip
    _say_not_done(result)


def _say_not_done(result: BatchResult) -> None:
    """The files left to another run and the failed ones, a line each, then the folder's exit (its
    error: one line, with the exit code that tells a script what to do next)."""
    for item in result.items:
        if item.status == "busy":
            err_console.print(f"skipped: {escape(shown_line(item.error or ''))}", highlight=False, soft_wrap=True)
    for item in result.failed:
        err_console.print(
            f"[bold red]failed:[/] {escape(shown_line(item.error or ''))}", highlight=False, soft_wrap=True
        )
    if (error := result.error()) is not None:
        raise error


@app.command("bench", cls=PlainHelp, short_help="Time each stage of an upscale, and its peak memory.")
@with_options(
    UpscaleOptions,
    only=(
        "model",
        "scale",
        "tile",
        "chunk",
        "device",
        "dtype",
        "offload",
        "quantize",
        "compile",
        "attention",
        "vae_tiling",
    ),
    defaults={"model": "tiny", "tile": 0, "chunk": 0},  # one whole window by default
)
def bench_cmd(
    input: Path | None = typer.Option(
        None, "--input", "-i", metavar="FILE", help="A clip to use instead of a synthetic one."
    ),
    frames: int = typer.Option(33, "--frames", metavar="N", help="Frames of the synthetic clip."),
    height: int = typer.Option(720, "--height", metavar="PX", help="Output height of the synthetic clip."),
    width: int = typer.Option(1280, "--width", metavar="PX", help="Output width of the synthetic clip."),
    warmup: int | None = typer.Option(
        None, "--warmup", metavar="N", help="Untimed runs first (default: 1 on a GPU, 0 on the CPU)."
    ),
    repeat: int = typer.Option(1, "--repeat", metavar="N", help="Timed runs; the fastest is reported."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    *,
    options: UpscaleOptions,
) -> None:
    """Time each stage (decode, upsample, VAE encode, transformer, VAE decode, blend, encode) and peak memory."""
    from dove_cli.bench import run_bench, stage_rows

    console = out_console("the timings")  # (stdout closed: said before the work)
    note.setLevel(logging.INFO)  # each run said as it starts (on stderr): the table comes at the end
    report = run_bench(options, input=input, frames=frames, height=height, width=width, warmup=warmup, repeat=repeat)
    if json_out:
        console.out(json_text(report, indent=2, to=sys.stdout), highlight=False)
        return
    clip = f"input {input}" if input is not None else f"a synthetic clip of {frames} frames"
    sizes = f"{report['input_size']} in, {report['output_size']} out"
    say(f"dove bench: {report['model']} on {report['device_name']}, {clip} ({sizes})", console)
    table = Table(show_edge=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    total = report["seconds"]
    for stage, sec, share in stage_rows(report["stages"], total):
        table.add_row(stage, f"{sec:.3f}", share)
    table.add_row("[bold]total (wall time)", f"[bold]{total:.3f}", "")
    print_table(table, console)
    console.print("The rows without \"own thread\" add up to the wall time; decoding and encoding run beside "
                  "them (the \"waiting\" rows are the main thread waiting for those two). x264 holds up to about 40 "
                  "frames before it writes any, so a short clip is encoded in the flush.", highlight=False)  # fmt: skip
    gib = 1024**3
    console.print(
        f"{report['frames']} frame{'s' * (report['frames'] != 1)} {report['output_size']} in {total:.2f} s = "
        f"{report['fps']:.2f} frames/s; peak host {report['peak_host_bytes'] / gib:.2f} GiB"
        + (f", peak GPU {report['peak_device_bytes'] / gib:.2f} GiB" if report["device"] != "cpu" else ""),
        highlight=False,
    )


# ---------------------------------------------------------------- download-weights / info (owner: weights)


@app.command("download-weights", cls=PlainHelp, short_help="Download the DOVE weights (resumable, verified).")
def download_weights_cmd(
    repo: str = typer.Option("zzsi/DOVE", "--repo", metavar="REPO", help="Hub repo id (owner/name[:subfolder])."),
    revision: str | None = typer.Option(
        None, "--revision", metavar="REV", help="Branch, tag or commit (default: main)."
    ),
    subfolder: str | None = typer.Option(
        None,
        "--subfolder",
        metavar="DIR",
        help="Folder inside the repo (default: stage<N>/ for zzsi/DOVE, else the root).",
    ),
    stage: int = typer.Option(2, "--stage", metavar="N", help="Which DOVE training stage to fetch (1 or 2)."),
    base: bool = typer.Option(False, "--base", help="Also fetch zai-org/CogVideoX1.5-5B (to train stage 1)."),
    dir: Path | None = typer.Option(
        None,
        "--dir",
        metavar="DIR",
        help="Download into this folder instead of the hub cache (--metrics: a folder for `dove eval --weights-dir`).",
    ),
    with_text_encoder: bool = typer.Option(
        False, "--with-text-encoder", help="Also fetch the T5 text encoder and tokenizer (~9 GB; not needed)."
    ),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept pickle (.bin/.pt) weights."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before downloading."),
    metrics: bool = typer.Option(False, "--metrics", help="Only the metric weights `dove eval` uses."),
    dists: bool = typer.Option(False, "--dists", help="Only the DISTS weights stage-2 training uses."),
    *,
    ctx: typer.Context,
) -> None:
    """Download the DOVE weights (resumable, verified) so that `dove upscale` works without options."""
    from rich.table import Table

    from dove_cli import weights
    from dove_cli.errors import OptionError

    if metrics or dists:
        model_options: tuple[str, ...] = ("repo", "revision", "subfolder", "stage", "base", "with_text_encoder",
                                          "allow_pickle", *(() if metrics else ("dir",)))  # fmt: skip
        # (--metrics --dir DIR: a folder for `dove eval --weights-dir` on a machine without a network)
        if given := [
            p.opts[0]
            for p in ctx.command.params
            if p.name in model_options and _typed(ctx.get_parameter_source(p.name))
        ]:
            which = "--metrics fetches only its pinned files (into the hub cache, or --dir)" if metrics else (
                "--dists fetches only its pinned files into the hub cache")  # fmt: skip
            raise OptionError(f"{which}; {', '.join(given)} "
                              f"{'is' if len(given) == 1 else 'are'} for the model download: drop "
                              f"{'it' if len(given) == 1 else 'them'} here and run that download on its own")  # fmt: skip
        _download_metric_weights(metrics, dists, dir)
        return

    if stage not in (1, 2):
        raise OptionError(f"--stage must be 1 or 2, not {stage}")
    console = out_console()
    plan = weights.plan_download(repo, revision, subfolder, stage, base, dir, with_text_encoder, allow_pickle)
    table = Table(title=escape(f"plan: into {plan.target}"), show_edge=False)
    for column in ("repo", "revision", "files", "size", "to download"):
        table.add_column(column, justify="right" if column in ("files", "size", "to download") else "left")
    for rp in plan.repos:
        name = f"{rp.repo}/{rp.subfolder}" if rp.subfolder else rp.repo
        rev = rp.revision + (f" ({rp.commit[:10]})" if rp.commit else "")
        size, todo = human_size(rp.total_bytes), human_size(rp.missing_bytes)
        table.add_row(escape(name), escape(rev), str(len(rp.files)), size, todo)
    print_table(table, console)
    if plan.offline:
        console.print("offline (HF_HUB_OFFLINE=1): using the local copy, nothing is downloaded")
    else:
        free = human_size(plan.free_bytes)
        console.print(f"to download: {human_size(plan.missing_bytes)} ({free} free)", highlight=False)
    if plan.missing_bytes and not yes and sys.stdin.isatty() and not typer.confirm("Download now?", default=True):
        raise typer.Exit(1)
    with VerifyBar(console, plan.total_bytes) as bar:
        folder = weights.fetch(plan, progress=bar)
    say(f"weights ready in {folder}", console)
    command = "dove upscale in.mp4 -o out.mp4"
    if weights.find_downloaded() != folder:
        command += f" --model {folder}"
    say(f"next: {command}", console)


@app.command("info", cls=PlainHelp, short_help="Show versions, device and weights, or describe files.")
def info_cmd(
    files: list[Path] | None = typer.Argument(
        None, metavar="[FILE]...", help="Describe these inputs instead: what dove reads and what else they hold."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="JSON: the same facts (with files: a list, one object per file)."
    ),
) -> None:
    """Versions, device and free GPU memory, where the weights are, and which optional features work;
    with files, each file's video as dove reads it and its other streams, chapters and tags."""
    console = out_console("the report")
    if files:
        _describe_files(files, json_out, console)
    elif json_out:
        console.out(json_text(real_names(_environment()), indent=2, to=sys.stdout), highlight=False)
    else:
        _print_environment(_environment(), console)


def _environment() -> dict[str, Any]:
    """`dove info`'s facts (its --json, as they are; the text says them as `_print_environment` does):
    versions, GPUs and their free memory, the hub, the weights and their parts, optional features, and
    where each --attention kernel runs."""
    import importlib.metadata
    import importlib.util
    import platform

    import torch

    from dove_cli import weights
    from dove_cli.engine import attention_runs

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    gpus = []
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        free, total = torch.cuda.mem_get_info(i)
        major, minor = torch.cuda.get_device_capability(i)
        gpus.append({"device": f"cuda:{i}", "name": torch.cuda.get_device_name(i), "capability": f"sm{major}{minor}",
                     "free_bytes": free, "total_bytes": total})  # fmt: skip
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    hub = weights.hub_env()
    try:  # (huggingface_hub cannot even be imported with a malformed HF_ENDPOINT: the caches are not looked in)
        weights.check_endpoint(hub.endpoint)
        folder, base = weights.find_downloaded(), weights.find_downloaded(weights.BASE_REPO, "")
    except DoveError as exc:
        logging.getLogger("dove_cli").warning("%s", exc)
        folder = base = None
    found = None
    if folder is not None:
        try:
            weights.validate_model_folder(folder)
            broken = None
        except DoveError as exc:
            broken = str(exc)
        found = {"path": str(folder), "error": broken, "parts": weights.describe_model(folder)}
    places = [("CPU", torch.device("cpu"), torch.float32)]  # each --attention kernel, tried where a run can be
    places += [("CUDA", torch.device("cuda", 0), torch.bfloat16)] if gpus else []
    return {
        "python": platform.python_version(),
        "packages": {d: version(d) for d in ("dove-cli", "torch", "diffusers", "transformers", "huggingface_hub", "av")},
        "device": "cuda" if gpus else "mps" if mps else "cpu",
        "gpus": gpus,
        "hub": {"endpoint": hub.shown, "offline": hub.offline, "cache": str(hub.cache_dir)},
        "weights": found,  # None: not downloaded
        "base_model": None if base is None else str(base),
        "features": {name: importlib.util.find_spec(module) is not None
                     for name, module in (("bitsandbytes", "bitsandbytes"), ("flash_attn", "flash_attn"), ("ray", "ray"))},
        "attention": {kernel: [name for name, device, dtype in places if attention_runs(kernel, device, dtype)]
                      for kernel in ("flash", "efficient", "cudnn")},
    }  # fmt: skip


def _print_environment(env: dict[str, Any], console: Any) -> None:  # rich Console
    rows = [("python", env["python"])]
    for dist, version in env["packages"].items():
        rows.append((dist, version or "not installed"))
    for gpu in env["gpus"]:
        memory = f"{gpu['free_bytes'] / 2**30:.1f} of {gpu['total_bytes'] / 2**30:.1f} GiB free"
        rows.append((gpu["device"], f"{gpu['name']} ({gpu['capability']}), {memory}"))
    if env["device"] == "mps":
        rows.append(("device", "mps (Apple GPU)"))
    elif env["device"] == "cpu":
        rows.append(("device", "cpu only (no CUDA device): upscaling will be very slow"))
    hub = env["hub"]
    rows.append(("hub", f"{hub['endpoint']}{' (offline)' if hub['offline'] else ''}"))
    rows.append(("hub cache", hub["cache"]))
    found = env["weights"]
    if found is None:
        rows.append(("weights", "not downloaded: run `dove download-weights`"))
    else:
        rows.append(("weights", found["path"] + (f" broken: {found['error']}" if found["error"] else "")))
        for part, size in found["parts"].items():
            rows.append((f"  {part}", human_size(size) if size is not None else "absent"))
    base = env["base_model"]
    rows.append(("base model", base or "not downloaded (only needed to train: --base)"))

    def usable(ok: bool, why: str = "") -> str:
        return "yes" if ok else f"no{f' ({why})' if why else ''}"

    has = env["features"]
    rows.append(("bitsandbytes (8/4-bit)", usable(has["bitsandbytes"], "pip install bitsandbytes")))
    rows.append(("flash-attn package", usable(has["flash_attn"], "optional")))
    rows.append(("ray (--ray: many GPUs)", usable(has["ray"], "pip install 'dove-cli[ray]'")))
    for kernel, where in env["attention"].items():
        why = "needs CUDA" if kernel != "flash" and not env["gpus"] else "not with this torch and device"
        rows.append((f"SDPA {kernel}", f"yes ({' and '.join(where)})" if where else f"no ({why})"))
    _print_rows(rows, console)


def _print_rows(rows: list[tuple[str, str]], console: Any) -> None:  # rich Console
    """Label and value a line each, the values in a column after the longest label; a value that does
    not fit there goes on the lines below its label, wrapped at spaces only: a path or URL is never
    split (rich's grid folded `hub cache` into `/root/.cache/hug` + `gingface/hub`, which cannot be
    copied; the terminal folds a line wider than itself, which copies whole)."""
    import textwrap

    from rich.cells import cell_len
    from rich.text import Text

    pad = max(cell_len(label) for label, _ in rows) + 2
    for label, value in rows:
        line = Text(shown_line(label), style="bold")  # (no markup: a path's [brackets] are its own)
        beside = pad + cell_len(value) <= console.width
        if beside:
            line.append(" " * (pad - cell_len(label)) + shown_line(value))
        console.print(line, soft_wrap=True, highlight=False)
        if not beside:
            for part in textwrap.wrap(value, console.width, break_long_words=False, break_on_hyphens=False):
                console.print(Text(shown_line(part)), soft_wrap=True, highlight=False)


def _describe_files(files: list[Path], json_out: bool, console: Any) -> None:  # rich Console
    """`dove info FILE...`: a block (or a JSON object) per file; one that cannot be read is an error
    line naming it, the others are still shown, and the exit status is 2. `-` is standard input as
    `dove upscale -` reads it (stdin_input): a file (`< in.mp4`) is described, a pipe refused."""
    from dove_cli.console import print_described
    from dove_cli.video_io.describe import describe
    from dove_cli.video_io.reader import stdin_input

    described: list[dict] = []
    failed = False
    for file in map(stdin_input, _folders_opened(files)):
        try:
            described.append(describe(file))
        except DoveError as exc:
            failed = True
            _print_error(str(exc))
            described.append({"path": str(file), "error": str(exc)})
            continue
        if not json_out:
            print_described(described[-1], console)
    if json_out:
        described = [{**d, "path": path_text(d["path"])} for d in described]  # the name's bytes, whatever the locale
        console.out(json_text(real_names(described), indent=2, to=sys.stdout), highlight=False)  # names as written
    if failed:
        raise typer.Exit(2)


def _folders_opened(files: list[Path]) -> list[Path]:
    """`files`, with a folder of videos (or of frame folders) as the inputs `dove upscale DIR` takes from
    it, each described: read as an image sequence, it was "no videos or images" beside its .mp4 files."""
    from dove_cli.outputs import find_inputs, is_batch_input

    return [p for file in files for p in (find_inputs(file) if is_batch_input(file) else [file])]


# ---------------------------------------------------------------- train / degrade (owner: train)

train_app = typer.Typer(
    help="Fine-tune DOVE (two stages, docs/SPEC.md section 2); `dove train export` makes a model folder.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)
app.add_typer(train_app, name="train", short_help="Fine-tune DOVE, and export a model folder.")


@train_app.callback()
@with_options(TrainConfig, overrides=True)
def train_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="TOML or YAML file of training options.", metavar="FILE"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    *,
    options: dict[str, Any],
) -> None:
    """Train stage 1 or 2 (the paper's recipe by default; every number is an option)."""
    if ctx.invoked_subcommand is not None:
        return
    from dove_cli.train.config import build_config
    from dove_cli.train.loop import train

    cfg = build_config(1, config, **options)  # train() checks it (and a resume's recipe)
    logging.getLogger("dove_cli").setLevel(logging.INFO)
    if quiet:
        result = train(cfg)
    else:
        with TrainBar(cfg.stage, cfg.max_steps) as bar:
            result = train(cfg, progress=bar.report)
    if not quiet and result.main and result.losses:  # once, and not after "nothing to do"
        say(f"done: {result.steps} steps, last checkpoint {result.last_checkpoint}, metrics {result.metrics_path}")


@train_app.command("export", cls=PlainHelp, short_help="Write a model folder from a training checkpoint.")
def train_export_cmd(
    checkpoint: Path = typer.Argument(
        ..., metavar="CHECKPOINT", help="A checkpoint folder (or a run folder: its latest checkpoint)."
    ),
    output: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Model folder to write (diffusers layout)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
    with_text_encoder: bool = typer.Option(
        False,
        "--with-text-encoder",
        help="Also copy the base model's text_encoder/ and tokenizer/ (for CogVideoXPipeline).",
    ),
    allow_pickle: bool = typer.Option(
        False,
        "--allow-pickle",
        help="Load a DeepSpeed checkpoint's .pt files in full, which can run code from them (only for your own).",
    ),
) -> None:
    """Write a model folder that `dove upscale --model DIR` and diffusers load (float32, LoRA merged)."""
    from dove_cli.train.export import export_checkpoint

    folder = export_checkpoint(
        checkpoint, output, overwrite=overwrite, with_text_encoder=with_text_encoder, allow_pickle=allow_pickle
    )
    say(f"exported to {folder}")


@app.command("degrade", cls=PlainHelp, short_help="Write a degraded sample, as training makes them.")
def degrade_cmd(
    input: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="A video (its first --frames frames are used) or an image (degraded as training "
        "degrades --images: no video codec).",
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        metavar="FILE",
        help="LQ video or image to write (1/4 size): .mkv is FFV1 RGB, the LQ exactly (8 bits); "
        "other video containers lossless H.264 4:4:4 (its RGB -> YUV step rounds by a level or two).",
    ),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of every random draw."),
    config: str | None = typer.Option(
        None,
        "--config",
        metavar="NAME",
        help="video (stage 1), image_video (stage 2) or a yaml (default: video; image_video for an image).",
    ),
    frames: int = typer.Option(100, "--frames", metavar="N", help="At most this many frames."),
    record: Path | None = typer.Option(
        None, "--record", metavar="FILE", help="Write the drawn parameters as JSON here."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Write one degraded sample of a video or image: what `dove train` teaches the model to undo."""

    from dove_cli import video_io
    from dove_cli.train.degrade import degrade_file, described

    if record is not None:  # before the work, as -o is checked
        if record.resolve() == output.resolve():
            raise OptionError(f"--record {record}: is the output (-o); give the drawn parameters another name")
        video_io.check_output(record, overwrite, inputs=[input], option="--record")
    steps = degrade_file(input, output, seed=seed, config=config, max_frames=frames, overwrite=overwrite)
    if record is not None:
        try:
            video_io.make_folder(record.parent, record)
            video_io.write_whole(record, json_text(steps, indent=1))
        except OSError as exc:
            raise OutputError(f"--record {record}: cannot write ({exc.strerror}); {output} is written") from None
    say(f"wrote {output}: {described(steps)}")


# ---------------------------------------------------------------- eval


def _download_metric_weights(metrics: bool, dists: bool, folder: Path | None = None) -> None:
    """`dove download-weights --metrics / --dists`: fetch (or find) and verify the published files;
    with --dir (--metrics only), copy them into a folder `dove eval --weights-dir` reads, for a
    machine without a network."""
    from dove_cli.metrics import DEFAULT_METRICS, pretrained

    keys = pretrained.files_for(DEFAULT_METRICS if metrics else ("dists",))
    console = out_console()
    for key, spec, path in pretrained.describe(keys):
        size = human_size(spec.size) if spec.size else "?"
        state = "cached" if path else f"downloading ({size})"
        say(f"{spec.what}: {spec.repo}/{spec.filename} [{state}]", console)
        path = pretrained.fetch(key) if folder is None else pretrained.copy_to_folder(key, folder)
        say(f"  -> {path}", console)
    what = "metric" if metrics else "DISTS"
    where = pretrained.cache_dir() if folder is None else folder
    say(f"{what} weights ready in {where}", console)
    if folder is not None:
        say(f"next (on any machine, with a copy of it): dove eval PRED GT --weights-dir {folder}", console)


@app.command("eval", cls=PlainHelp, short_help="Score results (PSNR, SSIM, LPIPS, DISTS and more).")
def eval_cmd(
    pred: Annotated[
        Path,
        typer.Argument(
            metavar="PRED",
            help="Video, frame folder, image pattern (frames/%06d.png), or folder of videos / frame folders.",
        ),
    ],
    gt: Annotated[
        Path | None, typer.Argument(metavar="[GT]", help="The reference, same layout (matched by name).")
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="LIST",
            help="psnr,ssim,lpips,dists,clipiqa,ewarp,dover,fastervqa,psnr_y,ssim_y (default: all of the first six that apply).",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write every score (per video, per frame) here.")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="Write one row per video (and the mean) here.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="Each metric over time per video, as FILE's extension says (PNG to a pipe; matplotlib).",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", metavar="DEVICE", help="cuda, cuda:1, cpu (default: cuda when present).")
    ] = None,
    weights_files: Annotated[
        list[str] | None,
        typer.Option("--weights", metavar="KEY=FILE", help="KEY=FILE: a local weight file instead of the hub."),
    ] = None,
    weights_dir: Annotated[
        Path | None,
        typer.Option(
            "--weights-dir", metavar="DIR", help="Weight files from `dove download-weights --metrics --dir DIR`."
        ),
    ] = None,
    max_crop: Annotated[
        int, typer.Option("--max-crop", metavar="PX", min=0, help="Pixels PRED and GT sizes may differ by (cropped).")
    ] = 16,
    crop_border: Annotated[
        int,
        typer.Option(
            "--crop-border", metavar="PX", min=0, help="Pixels left out at each edge of both before every metric."
        ),
    ] = 0,
    allow_missing: Annotated[
        bool,
        typer.Option("--allow-missing", help="Score the predictions present when GT videos have none (said)."),
    ] = False,
    untagged_matrix: Annotated[
        UntaggedMatrix, typer.Option("--untagged-matrix", metavar="NAME", help=UNTAGGED_MATRIX_HELP)
    ] = "auto",
    skip_unavailable: Annotated[
        bool,
        typer.Option(
            "--skip-unavailable", help="Leave out (and say) the metrics whose weights are not at hand, score the rest."
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Sizes or frame counts of PRED and GT that differ are errors, not cut.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing --json/--csv/--plot files.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score results: PSNR, SSIM, LPIPS, DISTS (with GT), CLIP-IQA and E*warp, as the DOVE paper."""
    from dove_cli.errors import OptionError
    from dove_cli.metrics import pretrained
    from dove_cli.metrics.evaluate import evaluate
    from dove_cli.metrics.report import check_result_files
    from dove_cli.metrics.selection import parse_metrics

    note.setLevel(logging.WARNING if quiet else logging.INFO)  # "created folder" for a results file
    scores = {"--json": json_out, "--csv": csv_out}
    on_stdout = _scores_on_stdout(scores, plot)
    check_stdout(f"{on_stdout}'s scores" if on_stdout else "the table of scores")
    local = {}
    for item in weights_files or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise OptionError(
                f"--weights {item!r} must be KEY=FILE (keys: lpips-alex, alexnet, vgg16, dists, clip-rn50, raft-things, dover)"
            )
        local[key.strip()] = value
    names = parse_metrics(metrics, gt is not None, str(pred))
    if weights_dir is not None:
        keys = [k for k in pretrained.files_for(names) if k not in local]
        local = {**pretrained.from_folder(weights_dir, keys, partial=skip_unavailable), **local}
    json_file, csv_file = (None if option == on_stdout else path for option, path in scores.items())
    check_result_files(json_file, csv_file, plot, names, [p for p in (pred, gt) if p is not None], overwrite)
    with EvalBar(quiet, pred.name) as bar:
        report = evaluate(pred, gt, names, device=device, weights=local, max_crop=max_crop, progress=bar,
                          allow_missing=allow_missing, untagged_matrix=untagged_matrix,
                          crop_border=crop_border, skip_unavailable=skip_unavailable, strict=strict)  # fmt: skip
    _print_eval_table(report, pred, gt, err_console if on_stdout else out_console())
    _write_scores(report, scores, on_stdout)
    if plot is not None:
        report.plot(plot)


def _scores_on_stdout(files: dict[str, Path | None], plot: Path | None) -> str | None:
    """The option of `files` (--json, --csv) that names stdout (`-` or /dev/stdout, as for --manifest), if
    one does: its text alone goes there, and the table of scores to stderr. One at most, and not --plot (a
    picture, whose extension names its format). Said before any scoring."""
    from dove_cli.manifest import is_stdout

    named = [option for option, path in files.items() if path is not None and is_stdout(path)]
    if plot is not None and is_stdout(plot):
        raise OptionError(f"--plot {plot}: a plot is a picture, written to a file whose extension names its "
                          "format (scores.png), not to stdout")  # fmt: skip
    if len(named) > 1:
        raise OptionError(f"{' and '.join(named)} both name stdout, which holds one of them; give the other a file")
    return named[0] if named else None


def _write_scores(report: EvalReport, files: dict[str, Path | None], on_stdout: str | None) -> None:
    """The scores files (--json, --csv, --eval-json: option -> path): each to its file, or to stdout for
    the option that names it (its text alone, the same bytes as the file's)."""
    for option, path in files.items():
        if path is None:
            continue
        json_file = option.endswith("json")
        if option == on_stdout:  # the file's bytes, whatever stdout's encoding (a Latin-1 locale)
            out_bytes((report.json_text() if json_file else report.csv_text()).encode("utf-8", "backslashreplace"))
        elif json_file:
            report.write_json(path)
        else:
            report.write_csv(path)


def _print_eval_table(report: EvalReport, pred: Path, gt: Path | None, console: Console) -> None:
    """The means, after a line naming what was scored (in a log of many runs, which table is whose)."""
    import math

    from rich.table import Table

    from dove_cli.metrics import METRICS

    caption = "\n".join(report.notes) or None  # the run's own (GT left out, weights not the published ones)
    table = Table(caption=caption, caption_justify="left", show_edge=False)
    for column in ("metric", "mean", "std", "min", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for m in report.metrics:
        vals = report.per_video(m)
        better = "higher" if METRICS[m].higher_better else "lower"  # in words: a screen reader said "upwards arrow"
        fmt = (lambda x: f"{x:.2f}") if m in ("psnr", "psnr_y") else (lambda x: f"{x:.4f}")
        cells = [report.mean[m], report.spread[m], min(vals, default=math.nan), max(vals, default=math.nan)]
        table.add_row(f"{METRICS[m].label}, {better} is better", *("-" if math.isnan(x) else fmt(x) for x in cells))
    scored = f"{pred} against {gt}" if gt is not None else f"{pred} (no GT)"
    say(f"dove eval: {scored}, {report.coverage}, {report.device}", console)  # a line: a table's title folds a path
    print_table(table, console)


# ---------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Run the app; every failure is one `error: ...` line on stderr and a non-zero exit, never a traceback.

    DoveError carries its own exit code; usage errors (unknown option, bad value, missing argument)
    exit 2 with a pointer to `--help`, in the same one-line form rather than click's framed box.
    """
    previous = _setup_process()
    try:
        code = _run_app(sys.argv[1:] if argv is None else argv)
    finally:
        _restore(previous)  # tests call main() in-process
    if code == 130 and _stop.signum:  # stopped by SIGTERM or SIGHUP: 128 + its number, as the shell reports it
        code = 128 + _stop.signum
    sys.exit(code)


def _setup_process() -> dict[Any, Any]:
    """What the process needs before any command: thread waits, the standard streams, the log's one-line
    form, the stop signals taken as Ctrl-C. Returns the signal handlers it replaced (for _restore)."""
    # torch's CPU threads sleep as soon as they are idle instead of spinning first (libgomp's default):
    # the encoder's threads share the cores with them (measured: 4 CPU-s less on a 320-frame 720p job).
    # Read when torch loads its thread pool, which no command has done yet.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _hold_closed_streams()
    show_unencodable()  # (sys.stdout is None when closed: nothing to do)
    lines = logging.StreamHandler()
    lines.setFormatter(OneLineFormatter("%(levelname)s: %(message)s"))  # a name's newline escaped, as in every line
    logging.basicConfig(level=logging.WARNING, handlers=[lines])
    logging.getLogger("huggingface_hub").propagate = False  # it prints with a handler of its own: once, not twice
    # Pillow's warnings about a damaged file ("Corrupt EXIF data", with its own source path) reach the terminal
    # as Python lines: dove says what is wrong with an image itself (`stills.damage`, the reader's errors)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    _stop.reset()
    return {s: signal.signal(s, _stop_as_ctrl_c) for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}


def _run_app(argv: list[str]) -> int:
    """The app run on `argv` (its words as cli_args rewrites them), or the command line's mistake said
    before it runs: the exit code."""
    args = cli_args.verbose_first(cli_args.home_expanded(argv))
    if mistake := cli_args.crlf_mistake(args):
        _print_error(mistake)
        return 2
    options = cli_args.command_options(args, typer.main.get_command(app))
    args = cli_args.options_before_dashes(args, options)
    if mistake := cli_args.option_as_value(args, options) or cli_args.foreign_mistake(args, options):
        _print_error(mistake)
        return 2
    try:
        code = app(args=args, prog_name="dove", standalone_mode=False)
    except BaseException as exc:
        if (said := _exit_code(exc, args, options)) is None:
            raise
        return said
    if code == 130 and not _stop.said:  # typer's own exit for a Ctrl-C while it parsed
        err_console.print("interrupted", highlight=False)
    return code if isinstance(code, int) else 0  # a command's own return value is not an exit code


def _exit_code(exc: BaseException, args: list[str], options: dict[str, bool]) -> int | None:
    """The exit code for `exc`, which ended the app run on `args` (the command's `options`), its line
    said; None for a bug (or an exit that is not the user's), to be raised as it is."""
    if isinstance(exc, _click.NoArgsIsHelpError):  # bare `dove` or `dove train`: the help, not an error (exit 0)
        out_console().out(exc.ctx.get_help(), highlight=False)  # (its reader gone, `dove | head -1`: 141, not 1)
        return 0
    if isinstance(exc, _click.UsageError):
        command_path = exc.ctx.command_path if exc.ctx is not None else None
        unknown = getattr(exc, "option_name", None)
        _print_error(cli_args.usage_line(exc.format_message(), command_path, unknown, args, options))
        return exc.exit_code
    if isinstance(exc, _click.ClickException):
        _print_error(exc.format_message())
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        err_console.print("interrupted", highlight=False)
        return 130
    if isinstance(exc, DoveError):
        _print_error(str(exc))
        return exc.exit_code
    if isinstance(exc, OSError):  # a name past the file system's limit anywhere (an input, --eval GT): the user's
        if exc.errno != errno.ENAMETOOLONG:
            return None
        _print_error(f"{exc.filename}: name too long for the file system")
        return 2
    if isinstance(exc, KeyboardInterrupt):
        err_console.print("interrupted", highlight=False)
        return 130
    if isinstance(exc, SystemExit):  # click's exit when --help or --version lost its reader (`| head -1`) is 1, a bug's
        if exc.code != 1 or type(sys.stdout).__name__ != "PacifyFlushWrapper":  # (what click puts there for it)
            return None
        return 128 + signal.SIGPIPE  # as dove's own products say it (console.py: on_broken_pipe)
    return None


class _click:
    """click's exception classes, from wherever this typer takes click (recent typer vendors its own copy)."""

    _module = sys.modules[typer.BadParameter.__module__]
    UsageError = _module.UsageError
    ClickException = _module.ClickException
    NoArgsIsHelpError = getattr(_module, "NoArgsIsHelpError", UsageError)


def _hold_closed_streams() -> None:
    """A standard stream closed at start (`>&-`, a daemon's): /dev/null in its place, so that no file dove
    opens gets its number (where `--manifest /dev/stdout`, or a library's print, would land). Python knows
    it was closed (sys.stdout is None: console.check_stdout)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)  # (the lowest free number: this one)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)


def _print_error(message: str) -> None:
    """The one `error:` line (shown_line: a name's control characters escaped)."""
    err_console.print(f"[bold red]error:[/] {escape(shown_line(message))}", highlight=False, soft_wrap=True)


# timeout, SLURM, docker stop (SIGTERM); a closed terminal or ssh session (SIGHUP; `nohup` ignores it, and
# so does dove then): a stop as on Ctrl-C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_as_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM, SIGHUP: stop as on Ctrl-C (finished part kept, resume hint, manifest), exit 128 + signum."""
    _stop.signum = signum
    raise StopSignal(signum)


def _restore(handlers: dict[Any, Any]) -> None:  # signal -> its handler before main()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


if __name__ == "__main__":
    main()
