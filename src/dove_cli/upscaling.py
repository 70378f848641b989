"""`upscale()`: file -> frames -> windows -> engine -> blend -> file.

Frames go forward only. An LQ frame is read once (reader thread, scene cuts found there), kept
while a window or its finishing needs it, and dropped; each temporal window is restored tile by
tile (tiled.py) and folded into the output frames it covers (blend.py); a frame that no future
window can touch is finished and handed to the writer thread. Host memory depends on the window
size, never on the video length.

Temporal windows come from windows.ChunkStream (planned online, ending at scene cuts); sizes come
from the plan (plan.py). Every run writes closed segments that `resume=True` continues after an
interruption (resume.Session).
"""

from __future__ import annotations

import copy
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
import torch

from dove_cli import geometry, note, resume, video_io, weights
from dove_cli.arrays import ArraySession, ArraySink, ArraySource, as_array, check_in_memory
from dove_cli.blend import Finisher, FrameBlender, compare_layout
from dove_cli.engine import DTYPE_NAMES, BilinearModel, DoveModel, Restorer
from dove_cli.errors import (
    InputError,
    Interrupted,
    OptionError,
    OutOfMemory,
    OutputBusy,
    OutputError,
    as_given,
    in_folder_run,
)
from dove_cli.humanize import counted, gpu_of, human_range
from dove_cli.logs import held_warnings, kept_warnings
from dove_cli.logs import say as say_held
from dove_cli.manifest import (
    ManifestLock,
    check_manifest,
    model_fingerprint,
    records_done,
    write_failure_manifest,
    write_manifest,
    write_running,
)
from dove_cli.models import check_quantize, check_weights, load_model, pick_device, planning_model, resolve_device
from dove_cli.options import (
    CheckedOptions,
    UpscaleKeywords,
    UpscaleOptions,
    check_options,
    check_paths,
    parse_preview,
    preview_span,
    reader_options,
    with_overrides,
)
from dove_cli.outputs import into_folder, is_batch_input, output_there, unfinished
from dove_cli.plan import (
    Plan,
    fitting_host_change,
    make_plan,
    measured_budget,
    refuse_download_past_ram,
    refuse_past_host_memory,
    say_notes,
    suggest_better_plan,
    warn_if_device_memory_short,
    warn_if_host_memory_short,
    warn_if_impractical,
    with_encoder,
)
from dove_cli.release_layout import ReleaseChunkStream, time_pad
from dove_cli.reports import Progress, UpscaleResult, checked_progress
from dove_cli.scenes import SceneDetector
from dove_cli.threads import BackgroundWriter, read_ahead
from dove_cli.tiled import TiledRestorer, pad_frame
from dove_cli.timing import StageTimer, peak_gpu_bytes, peak_host_bytes
from dove_cli.video_io.image_reader import DEFAULT_RATE_SAID
from dove_cli.video_io.sequences import output_numbers, renumbered
from dove_cli.windows import BlendMode, ChunkStream, Span, span_weights

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from dove_cli.distributed import Cluster

log = logging.getLogger(__name__)

Chunks = ChunkStream | ReleaseChunkStream  # dove's online temporal plan, or the release's (--parity)
Source = str | Path | ArraySource  # a file (a video, an image sequence), or frames in memory (upscale_frames)
Frames = TypeVar("Frames", np.ndarray, torch.Tensor)  # what upscale_frames takes, and gives back in kind
Options = TypeVar("Options", bound=UpscaleOptions)  # options changed as they came: CheckedOptions stay checked

SEEK_MARGIN_FRAMES = 4  # a part of a distributed run seeks this many frames early (filters look back)


def check_not_a_folder_of_videos(input: str | Path) -> None:
    """upscale() makes one output: a folder of videos (what `dove upscale DIR -o DIR` takes) is
    upscale_batch's, which returns each file's result (a folder of images is one image sequence)."""
    if is_batch_input(Path(input)):
        raise InputError(f"{input}: a folder of videos or frame folders; upscale() takes one video or image "
                         f"sequence: dove_cli.upscale_batch({str(input)!r}, OUT_DIR, ...) does each one in it, as "
                         "`dove upscale DIR -o DIR` does")  # fmt: skip


def weights_on_host(opts: UpscaleOptions, device: torch.device) -> bool:
    """Whether the weights live in host memory (a CPU run, --offload): its plan can exhaust the host."""
    return device.type == "cpu" or opts.offload != "none"


def plans_before_loading(opts: UpscaleOptions, device: torch.device) -> bool:
    """Whether a run plans before its weights load (refuse_before_loading), refusing a plan past the
    host's memory then: for --parity's layout, and where the weights live on the host."""
    return opts.parity or weights_on_host(opts, device)


def output_plan(plan: Plan, checked: CheckedOutput | None) -> Plan:
    """The plan with the output's codec, pixel format and range, its encoder's frames counted in its
    host memory (with_encoder): the one estimate a run refuses by and its --dry-run shows and refuses
    by (None: no output checked yet, as a folder's or bench's check before the model loads)."""
    if checked is None:
        return plan
    return with_encoder(
        replace(plan, codec=checked.codec, pix_fmt=checked.pix_fmt, full_range=checked.full_range, audio=checked.audio)
    )


def refuse_before_loading(info: video_io.VideoInfo, opts: CheckedOptions, device: torch.device,
                          dtype: torch.dtype, checked: CheckedOutput | None = None) -> None:  # fmt: skip
    """From the architecture alone, before the weights load (a minute on a GPU, 22 GB on a CPU): a
    --parity layout the release fails on, and a plan past the host's memory (where the weights live
    on the host: a CPU run, --offload), its output's encoder counted once `checked`. Missing weights
    first: no plan makes up for them."""
    check_weights(opts)
    if plans_before_loading(opts, device):
        model = planning_model(opts, device, dtype)[0]
        plan, notes = make_plan(info, model, opts, device, dtype, measured_budget(model, opts, device))
        say_notes(notes)
        plan = output_plan(plan, checked)
        if device.type == "cpu" and opts.download and weights.find_downloaded() is None and not opts.model:
            refuse_download_past_ram(plan)  # (RAM alone: the 20 GB it would fetch are not worth a swapping run)
        refuse_past_host_memory(plan, lambda free: fitting_host_change(plan, info, model, opts, device, dtype, free))


@overload
def upscale(
    input: str | Path,
    output: str | Path,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: Literal[False] = False,
    timer: StageTimer | None = None,
    cluster: Cluster | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> UpscaleResult: ...


@overload
def upscale(
    input: str | Path,
    output: str | Path,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: Literal[True],
    timer: StageTimer | None = None,
    cluster: Cluster | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> Plan: ...


@overload
def upscale(
    input: str | Path,
    output: str | Path,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: bool,
    timer: StageTimer | None = None,
    cluster: Cluster | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> UpscaleResult | Plan: ...  # dry_run=args.dry_run: a plain bool, as typeshed does


def upscale(
    input: str | Path,
    output: str | Path,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: bool = False,
    timer: StageTimer | None = None,
    cluster: Cluster | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> UpscaleResult | Plan:
    """Upscale `input` into `output` (a video file or an image pattern like frames/%06d.png).

    Options are an `UpscaleOptions` and/or keyword overrides of its fields. Returns the plan when
    `dry_run`, else the result with timings and peak memory. Raises DoveError for user mistakes,
    Interrupted (a KeyboardInterrupt, not a DoveError) on Ctrl-C, with the finished part kept for `resume=True`.
    `progress` is called with a Progress as the run goes (raising from it stops the run). `restorer`:
    a model loaded once (dove_cli.load_model) for many calls, run as it was loaded (`with_restorer`).
    With `ray` set (or a `cluster` from dove_cli.distributed), Ray workers share the work and the
    output is the same file.
    """
    check_paths(input=input, output=output)
    opts = check_options(with_overrides(options, overrides))
    output = into_folder(input, output, opts.container, opts.codec)  # a folder (or "out/"): out/INPUT_NAME
    opts = with_release_file(opts, output)
    progress = checked_progress(progress)
    check_not_a_folder_of_videos(input)
    if opts.ray and dry_run:  # a dry run checks what the run needs, Ray included
        from dove_cli.distributed import import_ray

        import_ray()
    if not dry_run and finished_already(input, output, opts):  # a cron job's `--resume`, run again: done
        return _finished_result(input, output, opts, restorer)
    if (opts.ray or cluster is not None) and not dry_run:
        from dove_cli.distributed import upscale_on_ray

        return upscale_on_ray(input, output, opts, cluster=cluster, progress=progress, restorer=restorer)
    seen: list[str] = []
    with kept_warnings(seen):
        return _upscale(input, output, opts, progress, restorer, dry_run, timer, seen)


@overload
def upscale_frames(
    frames: Frames,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: Literal[False] = False,
    timer: StageTimer | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> Frames: ...


@overload
def upscale_frames(
    frames: Frames,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: Literal[True],
    timer: StageTimer | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> Plan: ...


@overload
def upscale_frames(
    frames: Frames,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: bool,
    timer: StageTimer | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> Frames | Plan: ...


def upscale_frames(
    frames: Frames,
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    restorer: Restorer | None = None,
    dry_run: bool = False,
    timer: StageTimer | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> Frames | Plan:
    """Upscale frames held in memory: [T, H, W, 3] RGB in, [T, H * scale, W * scale, 3] out, of the
    same kind: a numpy array or a torch tensor (given back on its device), of the same dtype.

    uint8 frames are run as an 8-bit video, uint16 ones (0-65535) as a 16-bit one; float frames
    (in [0, 1], as ComfyUI's IMAGE batches; values further outside than a rounding error are refused)
    are run at 16 bits and come back in [0, 1]. The run is upscale()'s (arrays.py: the frames go in and out through the file
    reader's and writer's interfaces): chunks, tiles, blending, colour fix and scene cuts apply
    alike, and the output is what upscale() writes to a lossless image sequence of these frames
    (crop= and size= too: [T, *size, 3] out). Options and `progress`/`restorer` are upscale()'s;
    `fps=` (default 25) only times the frames.
    Options about files (codec=, audio=, resume=, preview=, ray=, ...) are refused in one line;
    nothing is written to disk, so a run that is stopped keeps nothing. `dry_run=True` returns the
    Plan instead (windows, time, peak memory, the output array counted in the host's), as upscale()'s.
    """
    opts = check_options(with_overrides(options, overrides))
    progress = checked_progress(progress)
    check_in_memory(opts)
    array, give_back = as_array(frames)
    sink = ArraySink(len(array), array.dtype)
    done = _upscale(ArraySource(array, opts.fps), sink, opts, progress, restorer, dry_run, timer, [])
    return done if isinstance(done, Plan) else give_back(sink.frames())


def _upscale(
    input: Source,
    output: Path | ArraySink,
    opts: CheckedOptions,
    progress: Callable[[Progress], None] | None,
    restorer: Restorer | None,
    dry_run: bool,
    timer: StageTimer | None,
    seen: list[str],
) -> UpscaleResult | Plan:
    """`upscale` of one file in this process, or of frames in memory into an ArraySink
    (`upscale_frames`: no file to check, nothing to resume); `seen` fills with the warnings said (for
    the result). Prepare (input, output, session), load and plan (a dry run ends there, with the
    plan), run; the manifest says how the run ended."""
    setup = _prepare(input, output, opts, restorer, dry_run, progress)
    model: Restorer | None = None
    plan: Plan | None = None
    try:  # the work folder's lock is held from session.check() on
        previous = setup.session.check(dry_run)
        # A resumed run must use the windows the interrupted one chose ('auto' depends on free memory);
        # (checked again: a CheckedOptions, whose default overlaps fit these windows)
        plan_opts = replace(setup.opts, chunk=previous.chunk, tile=previous.tile) if previous else setup.opts
        model, model_note = _model(setup, plan_opts, restorer)
        setup.say("planning")
        plan, refusal_said = _plan(setup, plan_opts, model, model_note, restorer)
        plan = replace(plan, saved_frames=setup.session.saved_before())  # (a resumed run's manifest says so too)
        _say_plan(setup, plan, plan_opts, model, restorer, refusal_said)
        if dry_run:
            return _dry_run_plan(setup, plan, model)
        if setup.manifest is not None:  # running: a run killed outright leaves no earlier run's record
            write_running(setup.manifest, setup.info.path, setup.opts, plan, model, setup.output, setup.started_at)
        result = _run(setup, model, plan, timer)
    except BaseException as exc:  # options and output were checked: the manifest says how the run ended
        if setup.manifest is not None and not dry_run:
            write_failure_manifest(setup.manifest, setup.info.path, setup.opts, plan, model_fingerprint(model),
                                   setup.output, exc, setup.started_at)  # fmt: skip
        raise
    else:  # (a manifest that cannot be written is the error: no failure manifest is written for it)
        result.warnings = list(seen)
        if setup.manifest is not None:
            write_manifest(setup.manifest, setup.info.path, setup.opts, result, model_fingerprint(model),
                           result.output, started_at=setup.started_at)  # fmt: skip
    finally:
        setup.release()
    _say_done(setup, result)
    return result


@dataclass(frozen=True)
class RunSetup:
    """A run's input and output, checked before any model loads (`_prepare`): what its plan and its
    run take. `session` holds the work folder and `held` the manifest's lock until `release()`."""

    input: Source
    info: video_io.VideoInfo  # the input's picture less --crop
    opts: CheckedOptions  # with the restorer's device and dtype, and the crop --crop auto found
    output: Path  # the session's: the output (upscale_frames: arrays.NAME, what messages call it)
    device: torch.device
    dtype: torch.dtype
    checked: CheckedOutput
    session: resume.Session
    held: ManifestLock | None
    dry_run: bool
    on_paper: bool  # --dry-run --vram without a GPU: planned for a card that is not here
    progress: Callable[[Progress], None] | None
    t_start: float  # time.perf_counter() when the run began

    @property
    def manifest(self) -> Path | None:
        return self.checked.manifest

    @property
    def started_at(self) -> str | None:
        """When the run began (its manifest's lock was taken), for the manifest; None without one."""
        return None if self.held is None else self.held.started_at

    def say(self, status: str, window: str = "") -> None:
        """A progress event before the first frame (loading the model, planning); none in a dry run."""
        if self.progress and not self.dry_run:
            self.progress(Progress(0, self.info.num_frames, window, time.perf_counter() - self.t_start, status))

    def release(self) -> None:
        """At the end of the run, however it ended: the work folder's lock and the manifest's let go."""
        self.session.release()
        if self.held is not None:
            self.held.release()


def _prepare(
    input: Source,
    output: Path | ArraySink,
    opts: CheckedOptions,
    restorer: Restorer | None,
    dry_run: bool,
    progress: Callable[[Progress], None] | None,
) -> RunSetup:
    """Probe the input, check the output (what would fail or overwrite at the end is refused now:
    `_check_outputs`), open the resume session, and take the manifest's lock (another run writing it:
    refused now, its record would be lost)."""
    t_start = time.perf_counter()
    if restorer is not None:
        opts = with_restorer(opts, restorer)
    info, said, opts = probe_input(input, opts)  # (--crop auto: the crop found, from here on)
    numbers = image_numbers(info, output, opts)  # (0000 in: 0000 out, a gap kept)
    device, dtype = resolve_device(opts, planning=dry_run)  # options first, then what is on disk
    session: resume.Session
    if isinstance(output, ArraySink):
        say_held(said)
        checked, session = CheckedOutput(None, "", ""), ArraySession(output)
    else:
        checked = _check_outputs(output, info, opts, dry_run, said, numbers)
        session = resume.Session(output, resume.run_fingerprint(opts, info, device, dtype), resume=opts.resume,
                                 overwrite=opts.overwrite, note=in_folder_run(), numbers=numbers)  # fmt: skip
    held = ManifestLock(checked.manifest) if checked.manifest is not None else None
    if held is not None:
        held.hold()
    on_paper = device.type == "cuda" and not torch.cuda.is_available()
    return RunSetup(input, info, opts, session.output, device, dtype, checked, session, held, dry_run, on_paper,
                    progress, t_start)  # fmt: skip


def _model(setup: RunSetup, plan_opts: CheckedOptions, restorer: Restorer | None) -> tuple[Restorer, str]:
    """The model a run plans by and runs, and the plan's note on it: `restorer` as it was loaded; in a
    dry run the architecture alone (nothing loaded, nothing downloaded); else the weights, loaded once
    what would refuse the run before they load is checked (`refuse_before_loading`)."""
    if restorer is not None:
        return restorer, ""
    opts, device, dtype = setup.opts, setup.device, setup.dtype
    check_quantize(opts, device, setup.on_paper, setup.dry_run)  # one line now, not after "loading model"
    if not setup.dry_run:
        refuse_before_loading(setup.info, plan_opts, device, dtype, setup.checked)
    setup.say("loading model")  # (a folder run loads its model once, before its first file)
    if setup.dry_run:
        return planning_model(opts, torch.device("cpu") if setup.on_paper else device, dtype)
    return load_model(opts, device, dtype, on_part=partial(setup.say, "loading model")), ""


def _plan(
    setup: RunSetup, plan_opts: CheckedOptions, model: Restorer, model_note: str, restorer: Restorer | None
) -> tuple[Plan, bool]:
    """The run's plan, its output's encoder counted (`output_plan`) and upscale_frames' output array
    too; with --vram and no such card here, no time. And whether a dry run said the refusal the run
    will meet (`_say_refusal`: then warn_if_host_memory_short has nothing to add)."""
    opts, device, dtype = setup.opts, setup.device, setup.dtype
    plan = replace(plan_of_run(setup.info, model, plan_opts, device, dtype, setup.checked), model_note=model_note)
    refusal_said = False
    if setup.on_paper:  # no such card here to measure its speed
        plan = replace(plan, est_seconds=None, model_note=f"planned for {gpu_of(opts.vram or 0)} (--vram)")
    elif setup.dry_run and restorer is None and plans_before_loading(opts, device):
        refusal_said = _say_refusal(setup, plan, plan_opts, model)
    if isinstance(setup.session, ArraySession):  # upscale_frames: the whole output is held in memory too
        plan = replace(
            plan, est_peak_host_bytes=plan.est_peak_host_bytes + setup.session.sink.nbytes(*plan.file_size())
        )
    return plan, refusal_said


def plan_of_run(
    info: video_io.VideoInfo,
    model: Restorer,
    opts: CheckedOptions,
    device: torch.device,
    dtype: torch.dtype,
    checked: CheckedOutput,
) -> Plan:
    """The plan a run of `info` makes (its notes said), by one process or by a Ray worker for the
    driver: its windows (a resumed run: `opts` has the journal's), its output's encoder counted
    (`output_plan`), its --crf."""
    plan, notes = make_plan(info, model, opts, device, dtype, measured_budget(model, opts, device))
    say_notes(notes)
    return output_plan(replace(plan, crf=opts.crf), checked)


def _say_refusal(setup: RunSetup, plan: Plan, plan_opts: CheckedOptions, model: Restorer) -> bool:
    """A dry run's check of the refusal past the host's memory that the run makes before loading
    (refuse_before_loading, by the planning model): said, not raised, for a plan is still wanted (for
    another machine, or to see what to change). Whether it was said."""
    try:
        refuse_past_host_memory(
            plan, lambda free: fitting_host_change(plan, setup.info, model, plan_opts, setup.device, setup.dtype, free)
        )
    except OutOfMemory as refused:
        log.warning("the run will be refused: %s", refused)
        return True
    return False


def _say_plan(
    setup: RunSetup,
    plan: Plan,
    plan_opts: CheckedOptions,
    model: Restorer,
    restorer: Restorer | None,
    refusal_said: bool,
) -> None:
    """The plan's warnings (say_plan); then a run (not a dry run) logs its plan, and a CPU's slowness."""
    info, opts, device = setup.info, setup.opts, setup.device
    refuse = not setup.dry_run and (
        isinstance(setup.session, ArraySession) or restorer is not None and weights_on_host(opts, device)
    )  # a folder's later, longer file: refused, not killed with the folder
    impractical = say_plan(plan, info, opts, plan_opts, model, device, setup.dtype, refuse=refuse,
                           refusal_said=refusal_said)  # fmt: skip
    if setup.dry_run:
        return
    log.info("%s: %s", info.path.name, plan.summary())
    long = plan.est_seconds is None or plan.est_seconds > 60  # a tiny exported model is not "very slow"
    if device.type == "cpu" and opts.model not in ("bilinear", "tiny") and long and not impractical:
        took = f" (this video: {human_range(plan.est_seconds)})" if plan.est_seconds else ""
        log.warning("running on the CPU: very slow%s; a CUDA GPU is strongly recommended", took)


def say_plan(
    plan: Plan,
    info: video_io.VideoInfo,
    opts: CheckedOptions,
    plan_opts: CheckedOptions,
    model: Restorer,
    device: torch.device,
    dtype: torch.dtype,
    *,
    refuse: bool,
    refusal_said: bool = False,
) -> bool:
    """What a plan shows, refused or said in one place and in this order, by one process or by the
    Ray worker that made the plan (its memory, its device, its model): with `refuse` (the model is
    loaded already), a run past the host's memory; memory short on the host (unless a dry run's
    refusal said it: `refusal_said`), an impractical time, memory short on the device, a better plan,
    the scale, the release's output size, --size upsampling. Whether the time was impractical."""
    if refuse:
        refuse_past_host_memory(plan)
    if not refusal_said:  # (the refusal's line says it, with the same numbers)
        warn_if_host_memory_short(plan, info, model, plan_opts, device, dtype)
    impractical = warn_if_impractical(plan, opts)
    warn_if_device_memory_short(plan, info, model, plan_opts, device, dtype)
    suggest_better_plan(plan, info, model, plan_opts, device, dtype)
    warn_scale(opts, model.output_is_input)
    warn_release_size(plan, opts.scale)
    geometry.warn_resampled_up(plan, opts.scale)
    return impractical


def _dry_run_plan(setup: RunSetup, plan: Plan, model: Restorer) -> Plan:
    """What a dry run returns: the plan (with the frames a resume would keep); --manifest: written."""
    if setup.manifest is not None:
        write_manifest(setup.manifest, setup.info.path, setup.opts, plan, model_fingerprint(model), setup.output)
    return plan


def _run(setup: RunSetup, model: Restorer, plan: Plan, timer: StageTimer | None) -> UpscaleResult:
    """Stream the frames through the model into the output (`_stream`), then end the session: the
    output whole at its name, or (interrupted, failed) what is kept said. The run's result."""
    device, session = setup.device, setup.session
    if plan.vae_tiling and isinstance(model, DoveModel):
        model.enable_vae_tiling()  # windows past the VAE's one-piece limit (the plan counted it)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timer = timer or StageTimer(device=device)
    # the resume work folder sits beside the output
    made = None if isinstance(session, ArraySession) else video_io.make_output_folder(setup.output)
    stats = StreamStats()
    try:
        _stream(setup.input, setup.info, model, plan, setup.opts, session, stats, progress=setup.progress,
                timer=timer, t_start=setup.t_start)  # fmt: skip
    except KeyboardInterrupt:
        video_io.remove_made_folders(made)  # only if still empty
        raise session.interrupted(stats.written) from None
    except BaseException as exc:
        error = session.changed_input(exc, setup.info)  # (a truncated input: said so, not a decode error)
        session.annotate_failure(error, plan.frames)
        video_io.remove_made_folders(made)
        if error is not exc:
            raise error from None
        raise
    session.finished()
    result = UpscaleResult.of_run(setup.output, plan, stats, timer, seconds=time.perf_counter() - setup.t_start,
                                  peak_host_bytes=peak_host_bytes(), peak_device_bytes=peak_gpu_bytes(device))  # fmt: skip
    log.info("%s: %s", setup.info.path.name, result.stages_summary())
    return result


def _say_done(setup: RunSetup, result: UpscaleResult) -> None:
    """The last progress event: the output whole at its name, its work folder gone; a cancel now has
    nothing to stop (and comes out as raised, the finished output kept: README, "Python API")."""
    if setup.progress:
        try:
            setup.progress(Progress(result.frames, result.frames, "", time.perf_counter() - setup.t_start, "done"))
        except KeyboardInterrupt:
            raise Interrupted(f"{setup.output}: interrupted once finished; the output is complete") from None


def image_numbers(info: video_io.VideoInfo, output: Path | ArraySink, opts: UpscaleOptions) -> list[int] | None:
    """An image pattern output's number of each image, when its input is an image sequence (each
    image's own, a gap kept: `sequences.output_numbers`); None otherwise (a video's frames are numbered from
    --start-number, else 1, as they are read)."""
    if not (isinstance(output, Path) and video_io.is_pattern(output) and info.files):
        return None
    start = None if opts.start_number is None else int(opts.start_number)
    return output_numbers(info.files, parse_preview(opts.preview) if opts.preview else None, opts.fps, start)


def finished_already(input: str | Path, output: Path, opts: UpscaleOptions) -> bool:
    """`resume` on an output that is there, whole (as long as its input: outputs.unfinished, as a folder run
    skips it), with no interrupted run into it: a run again of a command that finished, with nothing
    left to do. (Any other output there is refused by _check_outputs, as without resume.)"""
    there = output_there(output) if video_io.is_pattern(output) else output.is_file()
    return (opts.resume and not opts.overwrite and there and not resume.work_folder(output).exists()
            and unfinished(Path(input), output, opts.preview, opts.fps, opts.start_number) is None)  # fmt: skip


def _finished_result(input: str | Path, output: Path, opts: CheckedOptions, restorer: Restorer | None) -> UpscaleResult:
    """What `resume` on a finished output returns: nothing made (frames=0, finished_before), with the plan a
    dry run makes (its warnings held: no news for a run that does nothing). `--manifest`: one saying so,
    unless it records this output as done already (the run that made it: kept)."""
    t_start = time.perf_counter()
    with held_warnings([]):
        plan = _upscale(input, output, replace(opts, manifest=None, resume=False, overwrite=True), None, restorer,
                        True, None, [])  # fmt: skip
    assert isinstance(plan, Plan)
    result = UpscaleResult(output=output, frames=0, seconds=time.perf_counter() - t_start,
                           peak_host_bytes=peak_host_bytes(), peak_device_bytes=0, plan=plan, tile_used=plan.tile,
                           offload_used="none", retries=0, stages={}, device_stages={}, finished_before=True)  # fmt: skip
    manifest = None if opts.manifest is None else Path(opts.manifest)
    if manifest is not None and not records_done(manifest, output):
        check_manifest(manifest, opts.overwrite, [Path(input)])
        with ManifestLock(manifest) as held:
            write_manifest(manifest, input, opts, result, model_fingerprint(restorer), output,
                           started_at=held.started_at)  # fmt: skip
    return result


def with_restorer(opts: Options, restorer: Restorer) -> Options:
    """The options of a run of a model loaded already (restorer=), which runs as it was loaded: its
    plan, manifest and a later `resume=True` must say so. Its device, a network's dtype and
    model='bilinear' are the run's when not given; a `device=`, `dtype=` or `model=` (bilinear or a
    network) given that says otherwise is refused. (Which network's weights a DoveModel holds is in
    its fingerprint, the manifest's `model`.)"""
    bilinear = isinstance(restorer, BilinearModel)
    if opts.model is not None and (opts.model == "bilinear") != bilinear:
        what = "a BilinearModel" if bilinear else f"a {type(restorer).__name__}, not model='bilinear'"
        raise OptionError(f"model={opts.model!r}: restorer= is {what}; leave model= out (the restorer is what "
                          "runs) or pass the model it names: dove_cli.load_model(model=...)")  # fmt: skip
    if bilinear:
        opts = replace(opts, model="bilinear")
    if opts.device is None:
        opts = replace(opts, device=str(restorer.device))
    elif not same_device(pick_device(opts.device), restorer.device):
        raise OptionError(f"device={opts.device!r}: restorer= is on {restorer.device}; leave device= out or load "
                          "the model on that device: dove_cli.load_model(device=...)")  # fmt: skip
    dtype = None if bilinear else DTYPE_NAMES.get(restorer.dtype)  # (bilinear computes in float32 whatever dtype says)
    if dtype is not None and opts.dtype is None:
        opts = replace(opts, dtype=dtype)
    elif dtype is not None and opts.dtype != dtype:
        raise OptionError(f"dtype={opts.dtype!r}: restorer= computes in {dtype}; leave dtype= out or load the "
                          "model with that dtype: dove_cli.load_model(dtype=...)")  # fmt: skip
    return opts


def same_device(device: torch.device, other: torch.device) -> bool:
    """`device` (as pick_device names it: a GPU with its index) is `other` ("cuda" with no index: any GPU)."""
    return device.type == other.type and other.index in (None, device.index)


def probe_input(input: Source, opts: Options) -> tuple[video_io.VideoInfo, list[logging.LogRecord], Options]:
    """The input's description (its picture less --crop: what the model gets), what its reader
    warns of (HDR, interlacing, alpha), held for `_check_outputs` to say: a run refused for its
    output says only why, and the options for this input: --crop auto made the crop it finds
    (`with_found_crop`, its note held too). Where the container gives no frame count, it is counted
    from the packets: for the plan and the progress (a variable-rate recording's duration x rate is
    far off) where that is cheap (`cheap_to_count`), and always under --parity (the release's chunks
    are laid over it), so that a dry run refuses the layouts the run refuses."""
    said: list[logging.LogRecord] = []
    if isinstance(input, ArraySource):
        opts = with_found_crop(input, opts, said)
        return geometry.cropped_info(input.info, opts), said, opts
    with held_warnings(said), video_io.open_reader(input, **reader_options(opts)) as probe:
        info = probe.info
        if hdr := video_io.hdr_warning(info.color_trc, info.is_images, model=opts.model != "bilinear"):
            log.warning("%s: %s", info.path, hdr)
        if not info.num_frames_exact and not opts.preview and (opts.parity or video_io.cheap_to_count(info)):
            info.num_frames, info.num_frames_exact = probe.count_frames(), True
        if judged := probe.judged_rate():
            info.variable_rate, info.rate_sample = judged.variable, judged.frames if judged.sampled else 0
        opts = with_found_crop(probe, opts, said)
        return geometry.cropped_info(info, opts), said, opts


def with_found_crop(
    source: video_io.VideoReader | ArraySource, opts: Options, said: list[logging.LogRecord]
) -> Options:
    """The options with --crop auto made the crop of the black bars found in the frames `source`
    reads (none: no crop), once per file, before its plan: its plan, manifest and resume fingerprint
    hold the crop, and a Ray worker gets it. What was found is held in `said`."""
    if opts.crop != geometry.AUTO_CROP:
        return opts
    from dove_cli.video_io.bars import find_bars, find_bars_in

    with held_warnings(said, notes=True):
        if isinstance(source, ArraySource):
            crop = geometry.auto_crop(find_bars_in(source.frames))
        else:
            crop = geometry.auto_crop(find_bars(source.info), *source.turn, name=str(source.path))
    return replace(opts, crop=None if crop is None else str(crop))


@dataclass(frozen=True)
class CheckedOutput:
    """What `_check_outputs` found: the manifest's path (None: no manifest), and the codec, pixel
    format and range the output gets and what becomes of each audio track (as the writer chose
    them: the plan shows them)."""

    manifest: Path | None
    codec: str
    pix_fmt: str
    full_range: bool = False
    audio: tuple[str, ...] = ()


def _check_image_options(output: Path, opts: UpscaleOptions) -> None:
    """Video-encoder options mean nothing to images (the extension picks the encoder, at its best
    quality), nor --start-number to anything but an image pattern: refused, not ignored. --pix-fmt
    and --codec-option (the image encoder's own: WebP's quality) are the writer's to check."""
    if opts.start_number is not None and not video_io.is_pattern(output):
        raise OptionError(f"{output}: --start-number numbers the images of a pattern (like frames/%06d.png); "
                          "this output is no pattern")  # fmt: skip
    if not video_io.is_image_path(output):
        return
    given = [flag for flag, value in (("--codec", opts.codec), ("--crf", opts.crf), ("--preset", opts.preset),
                                      ) if value not in (None, {})]  # fmt: skip
    if given:
        raise OptionError(f"{output}: {', '.join(given)} set a video encoder; images have none (the extension picks "
                          "the image format)")  # fmt: skip


def _check_outputs(
    output: Path,
    info: video_io.VideoInfo,
    opts: UpscaleOptions,
    dry_run: bool,
    said: list[logging.LogRecord],
    numbers: list[int] | None = None,
) -> CheckedOutput:
    """Refuse before any work what would fail or overwrite at the end. Mistakes in the options
    (codec, --crf, --pix-fmt) are said before an existing output is, so that fixing one does not
    reveal the next; the input's warnings (`said`, held by `probe_input`) and what the output loses
    are said once the output passes. `numbers`: an image pattern's images this run writes (`image_numbers`),
    the only ones that count as there (others in its folder are kept)."""
    inputs = info.files or [Path(info.path)]
    if opts.container and output.suffix.lower() != f".{opts.container}":  # (a folder run's names end so)
        raise OptionError(f"--container {opts.container} names the container of a folder run's outputs; -o {output} "
                          "says its own with its extension")  # fmt: skip
    _check_image_options(output, opts)
    video_io.check_output(output, overwrite=True, inputs=inputs)  # never the input, a creatable folder
    # Codec, pixel format, encoder options, and audio/subtitles the container can hold: checked by
    # opening the real writer on a temporary name (and dropping it), before a model is loaded.
    preview = preview_span(opts.preview)
    if (start := preview.start) is not None and info.duration and start > info.lead + info.duration + 0.5:
        raise no_frames(info.path, info, opts)  # before a model loads for nothing (0.5: a header's length may be short)
    height, width = geometry.planned_output_size(info, opts)
    losses: list[logging.LogRecord] = []  # what the output loses: said once the output is known to be wanted
    with held_warnings(losses):
        writer = video_io.open_writer(
            output, geometry.written_info(info, opts), width, height, codec=opts.codec, crf=opts.crf, preset=opts.preset, pix_fmt=opts.pix_fmt,
            codec_options=resume.encoder_options(opts.codec_options), audio=opts.audio, subtitles=kept_subtitles(opts),
            overwrite=True, start=preview.start, end=preview.end,
        )  # fmt: skip
        writer.abort()
    codec, pix_fmt = getattr(writer, "codec", ""), getattr(writer, "pix_fmt", "")
    full, audio = getattr(writer, "full_range", False), getattr(writer, "audio_plan", ())
    if busy := resume.busy(output):  # before "already exists": --overwrite would be refused as busy too
        if not dry_run:
            raise OutputBusy(busy)
        log.warning("%s; the run will be refused until it ends", busy)
    pattern = video_io.is_pattern(output)
    there = bool(video_io.replaced_images(output, numbers)) if pattern else output.exists()
    if opts.resume and not opts.overwrite and there and not resume.work_folder(output).exists():
        if dry_run and finished_already(info.path, output, opts):
            log.warning(
                "%s: finished already; the run will do nothing (%s redoes it)", output, as_given("overwrite", True)
            )
        else:  # (a finished one was upscale()'s to return: finished_already)
            why = unfinished(Path(info.path), output, opts.preview, opts.fps, opts.start_number) or (
                f"{output}: already exists")  # fmt: skip
            raise OutputError(f"{why}, and no run into it was interrupted, so there is nothing to resume (use "
                              f"{as_given('overwrite', True)} to redo it)")  # fmt: skip
    overwrite = opts.overwrite
    if dry_run and not overwrite:  # a plan writes no video: say what the run will need, and plan
        if (there if pattern else output.is_file()) and not opts.resume:
            log.warning("%s: already exists; the run will need %s", output, as_given("overwrite", True))
        overwrite = True
    video_io.check_output(output, overwrite=overwrite, inputs=inputs, numbers=numbers)
    if video_io.is_image_path(output) and not opts.preview:  # images carry no rate, and no span is timed by it
        said = [r for r in said if r.msg is not DEFAULT_RATE_SAID]
    say_held(said + losses)
    if numbers and info.files:
        _say_renumbered(output, info.files, opts, numbers)
    _say_subtitle_layout(info, opts, getattr(writer, "placed_subtitles", ()))
    if opts.codec is None and (line := video_io.hdr_codec_note(info.path, output, info.color_trc, pix_fmt)):
        note.info("%s", line)
    if dropped := video_io.attachments_dropped(info, output, kept_subtitles(opts)):
        log.warning("%s", dropped)
    for text in video_io.output_notes(output, opts.codec, opts.crf, opts.preset):
        log.warning("%s", text)
    if opts.manifest is None:
        return CheckedOutput(None, codec, pix_fmt, full, audio)
    manifest = Path(opts.manifest)
    check_manifest(manifest, opts.overwrite, inputs, outputs={output: info.path})
    return CheckedOutput(manifest, codec, pix_fmt, full, audio)


def _say_renumbered(output: Path, files: list[Path], opts: UpscaleOptions, numbers: list[int]) -> None:
    """A gap in an image sequence's numbering that the output's numbers close (--start-number, or stray
    names: one after another) shifts every later image of a conform: said, naming how."""
    if not (moved := renumbered(files, parse_preview(opts.preview) if opts.preview else None, opts.fps, numbers)):
        return
    why = ("--start-number numbers them one after another" if opts.start_number is not None
           else "stray names among them: numbered one after another")  # fmt: skip
    shown = ", ".join(f"{f.name} -> {video_io.frame_name(output, n)}" for f, n in moved[:3])
    log.warning("%s: the gap in the input's numbering is not kept (%s): %s after it %s renumbered: %s%s%s", output,
                why, counted(len(moved), "image"), "are" if len(moved) > 1 else "is", shown, ", ..." * (len(moved) > 3),
                " (leave out --start-number to keep each image's number)" * (opts.start_number is not None))  # fmt: skip


def kept_subtitles(opts: UpscaleOptions) -> str:
    """--subtitles as the output gets them: none under --compare, a viewing aid whose frame of two
    halves they would straddle (laid out on the whole frame, a centred line sits on the seam)."""
    return "none" if opts.compare else opts.subtitles


def _say_subtitle_layout(info: video_io.VideoInfo, opts: UpscaleOptions, placed: tuple[str, ...]) -> None:
    """Say what becomes of the input's subtitles that the pictures change: --compare leaves them out
    (an info line), and --crop moves those drawn at places on the picture (`placed`: ASS signs and
    lines, bitmaps), which are copied as they are, laid out on the whole picture (a warning)."""
    if opts.compare and opts.subtitles != "none" and info.has_subtitles:
        note.info("%s: --compare leaves the subtitles out (they would straddle its two halves)", info.path)
    crop = geometry.parse_crop(opts.crop) if opts.crop else None  # (auto: what was found, by now)
    if crop and any((crop.left, crop.top, crop.right, crop.bottom)) and placed:  # (0:0:0:0 cuts nothing)
        log.warning("%s: --crop and subtitles drawn at places on the picture (stream %s): they are copied as they "
                    "are, laid out on the whole picture, so on the cropped one they are shifted and resized and no "
                    "longer line up with it; upscale without --crop to keep them in place, or leave them out with "
                    "--subtitles none", info.path, ", ".join(placed))  # fmt: skip


@dataclass
class StreamStats:
    """What `_stream` counted: for the run's result, or a Ray worker's report."""

    written: int = 0
    resumed_from: int = 0
    windows_run: int = 0
    windows_skipped: int = 0
    cuts: list[int] = field(default_factory=list)
    dropped_frames: int = 0
    tile_used: int = 0
    offload_used: str = "none"
    retries: int = 0


def _with_cuts(
    frames: Iterable[video_io.Frame], detector: SceneDetector | None, cuts: Part | None = None
) -> Iterator[tuple[Any, bool]]:
    """(frame, starts a new shot); runs in the reader thread, so detection overlaps model work.
    A part of a distributed run takes the cuts the driver's pre-pass found instead."""
    if cuts is not None:
        for i, frame in enumerate(frames, cuts.preroll):
            yield frame, i in cuts.cuts
        return
    for frame in frames:
        yield frame, (detector.push(frame.rgb) if detector is not None else False)


@dataclass
class Part:
    """Output frames [first, stop) of a run, as one worker of a distributed run makes them.

    The worker starts reading at frame `preroll` (the first frame of the first window that touches
    `first`) with the window plan as it stood there (`chunks`, a copy of the ChunkStream), so that
    it runs exactly the windows, with the same blend weights, that an uninterrupted run runs for
    these frames; `pts` are the timestamps of frames preroll, preroll + 1, ... as that run read
    them (the seek is checked against them), `cuts` the shot cuts among them, `total` the number of
    frames of the input when the part reaches its end (else None).
    """

    first: int
    stop: int
    preroll: int
    chunks: Chunks
    pts: list[int]
    cuts: frozenset[int]
    total: int | None = None


@dataclass
class PlanStep:
    """One step of the online window plan: after a frame is read, or once at the end."""

    frame: video_io.Frame | None  # the frame just read (None: the input ended)
    read: int  # frames read so far (the frame's index + 1)
    planned: int  # frames the windows are planned over: `read`, or at the end the release's padded count
    spans: list[Span]  # temporal windows that can run now
    final: int  # frames below this are covered by no future window (padding frames are never written)
    eof: bool = False  # the input has ended (the last step)


def new_chunks(plan: Plan, parity: bool) -> Chunks:
    """The online temporal plan: dove's, or the release's chunks and valid-region cut (--parity)."""
    if parity:
        return ReleaseChunkStream(plan.chunk, plan.chunk_overlap)
    return ChunkStream(plan.chunk, plan.chunk_overlap, plan.frame_lengths)


def window_weights(chunks: Chunks, plan: Plan, blend: BlendMode) -> Callable[[Span], np.ndarray]:
    """A temporal window's weight per frame: the release's hard valid region, or dove's blend."""
    if isinstance(chunks, ReleaseChunkStream):
        return chunks.weights
    return partial(span_weights, overlap=plan.chunk_overlap, mode=blend)


def plan_steps(frames: Iterator[tuple[Any, bool]], chunks: Chunks, read: int, timer: StageTimer) -> Iterator[PlanStep]:
    """The window plan as frames arrive ((frame, starts a shot) pairs, the first one being frame
    `read`): the one place where cuts, windows and finished frames are decided, for a run and for
    the model-free pre-pass of a distributed run alike. The release's chunks see the video padded
    to 8k+1 frames with its last frame at the end."""
    eof = False
    while not eof:
        with timer.stage("wait_input"):
            item = next(frames, None)
        frame = None
        if item is None:
            eof = True
        else:
            frame, cut = item
            if cut:
                chunks.cut(read)
            read += 1
        planned = read + time_pad(read) if eof and read and isinstance(chunks, ReleaseChunkStream) else read
        spans = chunks.ready(planned, eof)
        final = min(chunks.final_before(planned, eof), read)
        # Several windows at once (a shot's or the input's end): a step each, so that the frames
        # before the next window are written, saved and counted as soon as the one before it is done.
        for i, span in enumerate(spans[:-1]):
            yield PlanStep(frame if i == 0 else None, read, planned, [span], min(final, spans[i + 1].start))
        yield PlanStep(frame if len(spans) < 2 else None, read, planned, spans[-1:], final, eof)


@contextmanager
def open_frames(
    input: Source, info: video_io.VideoInfo, opts: UpscaleOptions, output: Path, part: Part | None = None
) -> Iterator[tuple[video_io.VideoReader | ArraySource, Iterator[video_io.Frame]]]:
    """The frames a run reads (the --preview span; --crop cut off), or a part's from its pre-roll frame on.

    A part seeks (a few frames early, for filters such as bwdif that look back) and checks every
    timestamp against the driver's; when the seek does not land on the same frames (a stream
    without usable timestamps), it decodes from the start instead. Under --deinterlace ivtc it
    always decodes from the start: decimate's cycles of 5 frames start where the reading starts.
    """
    if isinstance(input, ArraySource):  # frames in memory (upscale_frames): no span, no parts
        yield input, geometry.cropped_frames(input, opts)
        return
    preview = preview_span(opts.preview)
    # the output's clock counts from where the writer puts its time 0 (a part's seek too): no two frames share a time
    zero = video_io.output_zero(output, info, audio=opts.audio, subtitles=kept_subtitles(opts), start=preview.start)
    kw: dict[str, Any] = reader_options(opts) | dict(
        warn=False, ignore_decode_errors=opts.ignore_decode_errors,
        field_order=info.field_order or opts.field_order,  # (the probe's: scanned once)
        clock=video_io.output_clock(output, info.time_base), zero=zero,
    )  # fmt: skip
    if part is None:
        with video_io.open_reader(input, start=preview.start, duration=preview.duration, **kw) as reader:
            yield reader, geometry.cropped_frames(reader, opts)
        return
    first_pts = part.pts[0]
    back = Fraction(SEEK_MARGIN_FRAMES) / info.fps if info.fps else Fraction(0)
    seek = info.lead + max(Fraction(0), Fraction(first_pts - info.start_pts) * info.time_base - back)  # (file's clock)
    for attempt in ("seek", "decode"):
        if attempt == "seek" and (part.preroll == 0 or opts.deinterlace == "ivtc"):
            continue
        at = seek if attempt == "seek" else preview.start
        duration = preview.duration if attempt == "decode" else None
        with video_io.open_reader(input, start=at, duration=duration, **kw) as reader:
            frames = iter(reader)
            if attempt == "seek":
                item = next(frames, None)
                while item is not None and item.pts < first_pts:  # the margin
                    item = next(frames, None)
            else:
                for _ in range(part.preroll):
                    next(frames, None)
                item = next(frames, None)
            if item is None or item.pts != first_pts:
                if attempt == "seek":
                    log.info("%s: seeking to frame %d lands elsewhere; decoding from the start", input, part.preroll)
                    continue
                raise InputError(f"{input}: frame {part.preroll} decodes with another timestamp than before; "
                                 "the input cannot be split between workers (run without --ray)")  # fmt: skip
            yield reader, geometry.cropped_frames(_checked(itertools.chain([item], frames), part, input), opts)
            return


def _checked(frames: Iterator[video_io.Frame], part: Part, input: str | Path) -> Iterator[video_io.Frame]:
    """A part's frames, each checked against the timestamp the driver read, and none past the end."""
    for i, frame in enumerate(frames):
        if part.total is not None and part.preroll + i >= part.total:
            return
        if i < len(part.pts) and frame.pts != part.pts[i]:
            raise InputError(f"{input}: frame {part.preroll + i} decodes with another timestamp than before; the "
                             "input cannot be split between workers (run without --ray)")  # fmt: skip
        yield frame


@dataclass(frozen=True)
class PendingFrame:
    """An input frame while a window or its finishing needs it: the padded LQ frame [3, hp, wp] (code
    values), and for the writer its timestamp and closed captions (video_io.Frame.captions)."""

    lq: torch.Tensor
    pts: int
    captions: Any


def _stream(
    input: Source,
    info: video_io.VideoInfo,
    model: Restorer,
    plan: Plan,
    opts: UpscaleOptions,
    session: resume.RunSession,
    stats: StreamStats,
    *,
    progress: Callable[[Progress], None] | None,
    timer: StageTimer,
    t_start: float,
    part: Part | None = None,
) -> None:
    """Read, plan windows (shot-aware), restore, blend, finish, write; skip the model for saved frames.

    A resumed run replays the same plan from the first frame (decoding is cheap next to the
    model), runs only windows that reach past the saved frames, and closes segments where an
    uninterrupted run does (session.segment_end). A `part` (a worker of a distributed run) starts
    at its pre-roll frame with the plan as it stood there, and stops once its frames are written.
    """
    stream = _Stream(info, model, plan, opts, session, stats, progress=progress, timer=timer, t_start=t_start,
                     part=part)  # fmt: skip
    detector = SceneDetector() if opts.scene_cuts == "auto" and part is None else None
    with (
        open_frames(input, info, opts, session.output, part) as (reader, decoded),
        _open_output(session, info, opts, plan) as raw_writer,
    ):
        writer = BackgroundWriter(raw_writer, timer)
        frames = read_ahead(_with_cuts(decoded, detector, part), timer)
        try:
            for step in plan_steps(frames, stream.chunks, stream.read, timer):
                stream.take(step)
                for span in step.spans:
                    stream.run_window(span)
                stream.write_finished(step.final, writer)
                if stream.part_done:
                    break
            if stream.read == 0:
                raise no_frames(input, info, opts)
            with timer.stage("wait_output"):
                writer.finish()
            joining = partial(_say_joining, progress, stream.written, t_start) if progress else None
            session.close_writer(raw_writer, info, timer, joining)
        except BaseException:
            writer.stop()
            raise
        finally:
            frames.close()  # stop the reader thread before the container closes under it
        stats.dropped_frames = reader.dropped_frames
    stream.count_ended()


def _open_output(
    session: resume.RunSession, info: video_io.VideoInfo, opts: UpscaleOptions, plan: Plan
) -> video_io.VideoWriter:
    """The session's writer of the output: the written picture's size and the encoder's and the join's options."""
    file_h, file_w = plan.file_size()  # with --compare, both halves
    writer_options, join_options = output_options(opts)
    return session.open_writer(
        geometry.written_info(info, opts), file_w, file_h, writer_options=writer_options, join_options=join_options
    )


class _Stream:
    """One `_stream` run's state between the reader and the writer: the input frames a window or its
    finishing still needs, the tiled model, the temporal blender and the finishing, and how far
    reading and writing have come (frame indices of the whole video, a part's too)."""

    def __init__(
        self,
        info: video_io.VideoInfo,
        model: Restorer,
        plan: Plan,
        opts: UpscaleOptions,
        session: resume.RunSession,
        stats: StreamStats,
        *,
        progress: Callable[[Progress], None] | None,
        timer: StageTimer,
        t_start: float,
        part: Part | None,
    ) -> None:
        self.plan, self.opts, self.session, self.stats = plan, opts, session, stats
        self.progress, self.timer, self.t_start = progress, timer, t_start
        hp, wp = self.padded_size = plan.padded_size
        max_value = 65535 if info.bit_depth > 8 else 255  # the reader gives uint16 frames above 8 bits
        self.first = session.start(plan.chunk, plan.tile)  # the saved frames before it are not written again
        if self.first and part is None:
            log.info("%s: resuming after %d saved frames", session.output, self.first)
        self.stop = part.stop if part is not None else None  # a part's end: the frames from here are a later part's
        out_device = model.device if plan.blend_on_device else torch.device("cpu")
        self.tiles = TiledRestorer(
            model, scale=opts.scale, size=(hp * opts.scale, wp * opts.scale), tile=plan.tile,
            tile_overlap=plan.tile_overlap, blend=opts.blend, seed=opts.seed, out_device=out_device,
            timer=timer, max_value=max_value, tile_changes=session.tile_changes, on_tile_change=session.record_tile_change,
            parity=opts.parity,
        )  # fmt: skip
        self.blender = FrameBlender()
        self.finish = Finisher(
            output_size=plan.output_size, input_size=plan.input_size, scale=opts.scale, max_value=max_value,
            color_fix="none" if model.output_is_input else opts.color_fix,
            bits16=_wants_16bit(opts.pix_fmt, info, session.output), truncate=opts.parity,  # the release truncates
            device=out_device, compare=compare_layout(info.rotation, info.mirrored) if opts.compare else None,
            size=plan.size,
        )  # fmt: skip
        self.chunks = copy.deepcopy(part.chunks) if part is not None else new_chunks(plan, opts.parity)
        self.time_weights = window_weights(self.chunks, plan, opts.blend)  # a temporal window's weight per frame
        # frame index -> the input frame, while a window or its finishing needs it
        self.pending: dict[int, PendingFrame] = {}
        stats.resumed_from = self.first
        self.written = self.read = part.preroll if part is not None else 0

    def take(self, step: PlanStep) -> None:
        """Keep the frame just read (padded to the model's block) until the windows and the finishing
        that need it are done; --parity pads the video with its last frame (planned, never written)."""
        self.read = step.read
        if step.frame is not None:
            lq = pad_frame(step.frame.rgb, *self.padded_size, self.opts.pad)
            self.pending[self.read - 1] = PendingFrame(lq, step.frame.pts, step.frame.captions)
        for t in range(self.read, step.planned):
            self.pending[t] = self.pending[self.read - 1]

    def run_window(self, span: Span) -> None:
        """Restore one temporal window and blend it in, unless it has nothing to write: all its frames
        saved already (a resumed run), or all a later part's."""
        if span.stop <= self.first:  # every frame it touches is saved already
            self.stats.windows_skipped += 1
            return
        if self.stop is not None and span.start >= self.stop:  # only frames of later parts
            return
        if self.progress:  # what the model is busy with (the bar, a log's heartbeat)
            busy = f"frame {span.start}" if span.length == 1 else f"frames {span.start}-{span.stop - 1}"
            elapsed = time.perf_counter() - self.t_start
            self.progress(Progress(self.written, max(self.plan.frames, self.read), busy, elapsed))
        window = self.tiles.restore_window([self.pending[t].lq for t in range(span.start, span.stop)], span)
        self.session.window_done(span, self.tiles.tile)
        with self.timer.stage("blend"):
            self.blender.add(span, window, self.time_weights(span))
        self.stats.windows_run += 1

    def write_finished(self, final: int, writer: BackgroundWriter) -> None:
        """Finish and write the frames before `final`, which no later window touches (the saved ones
        are only dropped); a segment ends where the session says (session.segment_end)."""
        boundary = self.session.segment_end(final)
        while self.written < final:
            frame = self.pending.pop(self.written)
            if self.written < self.first:
                self.blender.discard(self.written)
            else:
                with self.timer.stage("finish"):
                    rgb_out = self.finish(self.blender.pop(self.written), frame.lq)
                with self.timer.stage("wait_output"):
                    writer.write(self.written, rgb_out, frame.pts, end=self.written + 1 == boundary,
                                 captions=frame.captions)  # fmt: skip
            self.written += 1
            self.stats.written = self.written

    @property
    def part_done(self) -> bool:
        """A part (of a distributed run) has written all its frames: the rest are a later part's."""
        return self.stop is not None and self.written >= self.stop

    def count_ended(self) -> None:
        """What the run ended with: the scene cuts, and the tile, offload and retries the model used."""
        stats, tiles = self.stats, self.tiles
        stats.cuts = list(self.chunks.cuts)
        stats.tile_used, stats.offload_used, stats.retries = tiles.tile, tiles.offload_used, tiles.retries


def _say_joining(progress: Callable[[Progress], None], frames: int, t_start: float) -> None:
    """The progress event before the segments are joined into the output (`resume.close_output`)."""
    progress(Progress(frames, frames, "", time.perf_counter() - t_start, "joining segments"))


def no_frames(input: Source, info: video_io.VideoInfo, opts: UpscaleOptions) -> InputError:
    """The error for an input (or a --preview range) without a frame."""
    where = ""
    if opts.preview and info.duration and info.lead:  # START counts from the file's start, not the first frame
        lead = float(info.lead)
        where = f" in the --preview range {opts.preview} (the video runs {lead:.3f}-{lead + info.duration:.3f} s)"
    elif opts.preview:
        length = f"{info.duration:.2f} s long" if info.duration else f"{counted(info.num_frames, 'frame')} long"
        where = f" in the --preview range {opts.preview} (the clip is {length})"
    return InputError(f"{input}: no video frames{where}")


def warn_scale(opts: UpscaleOptions, output_is_input: bool) -> None:
    """DOVE was trained for x4: say so when another factor is asked of a real model. x1 (an input
    already at the size wanted) is how the authors' inference.sh runs RealVSR and MVSR4x, as the
    README advises: a note, not a warning."""
    if opts.scale == 4 or output_is_input:
        return
    if opts.scale == 1:
        note.info("--scale 1: the model restores the input at its own size, without upsampling it (for an input "
                  "already at the size wanted, as the authors run RealVSR and MVSR4x); DOVE was trained for x4")  # fmt: skip
        return
    log.warning("--scale %d: DOVE was trained for x4; other factors upsample the input x%d before the model, "
                "which works but is not what the paper measured", opts.scale, opts.scale)  # fmt: skip


def warn_release_size(plan: Plan, scale: int) -> None:
    """--parity at a scale other than 4 on an input that needs padding: the output is the size the
    authors' script writes, not the input x scale (release_layout.release_output_size); said once."""
    (h, w), (hp, wp), (oh, ow) = plan.input_size, plan.padded_size, plan.output_size
    if (oh, ow) == (h * scale, w * scale):
        return
    what = (f"cuts {4 - scale} x the padding off the picture" if scale < 4 else
            f"keeps {scale - 4} x the padding, as the model filled it")  # fmt: skip
    log.warning("--parity --scale %d: the output is %dx%d, not %dx%d (the input x %d): the authors' script pads the "
                "input to %dx%d and crops 4 x that padding off the right and bottom whatever the scale, so at x%d it "
                "%s; written as their script writes it", scale, ow, oh, w * scale, h * scale, scale, wp, hp, scale,
                what)  # fmt: skip


def with_release_file(opts: Options, output: Path) -> Options:
    """--parity: the authors' file settings (libx264, yuv444p, CRF 0: lossless) for a video output whose
    --pix-fmt and --crf are not given and whose codec is h264 (the default but in .webm); its frame rate
    stays the input's (they write 16 fps whatever the input's: timing, not the picture)."""
    if not opts.parity or opts.pix_fmt is not None or opts.crf is not None or video_io.is_image_path(output):
        return opts
    codec = video_io.resolve_codec(opts.codec)[0] if opts.codec else video_io.default_codec(output)
    return replace(opts, codec="h264", pix_fmt="yuv444p", crf=0) if codec == "h264" else opts


def output_options(opts: UpscaleOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """(encoder options, options of the final output: audio, subtitles, the --preview span).

    warn=False: `_check_outputs` opened the output once already and said what it loses."""
    preview = preview_span(opts.preview)
    writer_options: dict[str, Any] = dict(codec=opts.codec, crf=opts.crf, preset=opts.preset, pix_fmt=opts.pix_fmt,
                          codec_options=resume.encoder_options(opts.codec_options),
                          start_number=1 if opts.start_number is None else opts.start_number)  # fmt: skip
    join_options: dict[str, Any] = dict(audio=opts.audio, subtitles=kept_subtitles(opts), overwrite=opts.overwrite,
                                        start=preview.start, end=preview.end, warn=False)  # fmt: skip
    return writer_options, join_options


def _wants_16bit(pix_fmt: str | None, info: video_io.VideoInfo, output: Path) -> bool:
    """Whether the pipeline hands the writer 16-bit frames. Images get them only when written 16-bit:
    8-bit ones are rounded here (x*255/65535), as for video, not cut by swscale's rgb48 -> rgb24 (x/256)."""
    if video_io.is_image_path(output):
        return video_io.image_pix_fmt(output, info.bit_depth, pix_fmt).startswith("rgb48")
    if pix_fmt:
        return bool(re.search(r"(1[0246]|9)(le|be)?$", pix_fmt)) or pix_fmt.startswith(("rgb48", "gbrp1"))
    return video_io.deep_output(info.bit_depth, info.color_trc)
