"""What the Python API hands back: `Progress` (what a `progress=` callback gets), `UpscaleResult` and
`Plan`. Plain dataclasses in a module that imports no torch, numpy or PyAV, so that a program can
import them (for a type hint, a GUI's own code) without waiting seconds for those."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from dove_cli.errors import OptionError, advice, noting_cancels
from dove_cli.geometry import compare_size
from dove_cli.humanize import human_range

if TYPE_CHECKING:
    from dove_cli.timing import StageTimer
    from dove_cli.upscaling import StreamStats
    from dove_cli.windows import Lengths


def _any_length() -> Lengths:
    from dove_cli.windows import ANY_LENGTH  # (windows.py imports numpy)

    return ANY_LENGTH


@dataclass
class Plan:
    """What a run will do, decided before the first frame is processed (`--dry-run` prints it)."""

    input_size: tuple[int, int]  # LQ (h, w): the input's picture, less --crop
    padded_size: tuple[int, int]  # LQ after padding to the model's block
    output_size: tuple[int, int]  # the model's: (s*h, s*w); under --parity, what the authors' script writes
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
    est_note: str = ""  # said beside the time estimate: the machine is busy (humanize.busy_note)
    tile_asked: int = 0  # --tile as given where the tiles are smaller (rounded down to the model's block): said
    vae_tiling: bool = False  # the VAE decodes in tiles: asked (--vae-tiling, --parity), or past one piece
    work_ratio: float = 1.0  # pixel-frames the model processes per output pixel-frame (overlaps, padding)
    # window lengths in frames the model takes (the last chunk's)
    frame_lengths: Lengths = field(default_factory=_any_length)
    # each temporal window's frames as it runs (a shot's last window only as long as the rest needs;
    # --parity: over the video padded to 8k+1 frames, a short last chunk merged into the one before)
    window_frames: tuple[int, ...] = ()
    parity: bool = False  # --parity: the release's windows and tiles (release_windows says them)
    model_note: str = ""  # how the model was sized when no weights were read (--dry-run)
    blend_on_device: bool = False  # the float frame accumulators live on the GPU (see make_plan)
    saved_frames: int = 0  # output frames an interrupted run saved, which this one continues after
    frames_exact: bool = True  # False: `frames` is estimated from the duration (Matroska, WebM, TS...)
    variable_rate: bool = False  # the input's frames step unevenly: `fps` is nominal, each frame keeps its time
    rate_sample: int = 0  # `variable_rate` was judged from the input's first this many frames only (0: all)
    compare: bool = False  # --compare: the file is input | output side by side as shown, twice as wide
    codec: str = ""  # the output's codec (hevc; png for images) and pixel format, as the writer chose them
    pix_fmt: str = ""
    full_range: bool = False  # YUV written at full range (the input's tag, or --pix-fmt yuvj420p): ffmpeg says yuvj420p
    audio: tuple[str, ...] = ()  # each input audio track and what becomes of it: "#1 ac3 5.1 48 kHz: copied"
    crf: int | None = None  # the output's --crf when one is set (--parity: 0, the authors' file), else the codec's
    sample_aspect_ratio: Fraction | None = None  # the input's non-square pixels, which the output keeps (not --size)
    crop: str | None = None  # --crop L:T:R:B: `input_size` is the picture left of the input's
    size: tuple[int, int] | None = None  # --size: (h, w) the model's output is resampled to, square pixels
    rotation: int = 0  # degrees the output's rotation tag turns it by when shown (--rotate keep)
    scene_cuts: str = ""  # SCENE_CUTS_NOTE when cuts found while running may change the windows, else ""
    offload: str = "none"  # as planned: none on the CPU, where it does nothing
    quantize: str = "none"  # the transformer's weights as planned: none for a model without one

    def shown_as(self) -> str:
        """How players show the file when that differs from its stored size: `shown 3413x1920 (pixel
        aspect 32:27)`, `shown 1920x2880 (turned 90 degrees)`."""
        h, w = self.file_size()
        notes = []
        if sar := self.written_aspect():
            notes.append(f"pixel aspect {sar.numerator}:{sar.denominator}")
        if self.rotation % 180:
            notes.append(f"turned {abs(self.rotation)} degrees")
        w, h = self.shown_size(h, w, written=True)
        return f"shown {w}x{h} ({', '.join(notes)})" if notes else ""

    def written_aspect(self) -> Fraction | None:
        """The output's pixel aspect: the input's, square (None) with --size."""
        return None if self.size else self.sample_aspect_ratio

    def shown_size(self, height: int, width: int, *, written: bool = False) -> tuple[int, int]:
        """(width, height) players show a picture of the input's (or, `written`, the output's) stored
        (height, width) at: its pixel aspect and its quarter turns applied."""
        from dove_cli.video_io.reader import display_size  # (reader.py imports numpy and PyAV)

        sar = self.written_aspect() if written else self.sample_aspect_ratio
        return display_size(width, height, sar, self.rotation)

    def summary(self) -> str:
        """One line for `-v` and `print(plan.summary())`: `4 windows of 33 frames (8 shared) x 16 tiles of
        320 px (32 px overlap), work ratio 1.48, output 2560x1440, est. peak GPU 17.5 GiB, host 0.6 GiB,
        est. time about 4 min (2 min 24 s to 7 min)`: what it makes, what it needs, how long it takes."""
        length = self.chunk or self.frames
        chunks = f"{self.chunks} window{'s' * (self.chunks != 1)} of {length} frame{'s' * (length != 1)}"
        chunks += f" ({self.chunk_overlap} shared)" if self.chunks > 1 and self.chunk_overlap else ""
        tiles = f" x {self.tiles} tiles of {self.tile} px ({self.tile_overlap} px overlap)" if self.tiles > 1 else ""
        tiles += self.tile_rounded()
        if self.vae_tiling:  # the VAE decodes in its own tiles (README: "whole frame + VAE tiles")
            tiles = (tiles or " x the whole frame") + " + VAE tiles"
        gpu = f"GPU {self.est_peak_device_bytes / 2**30:.1f} GiB, " if self.est_peak_device_bytes else ""
        cuts = f"; scene cuts {self.scene_cuts}" if self.scene_cuts else ""
        h, w = self.file_size()
        est = human_range(self.est_seconds) if self.est_seconds is not None else "none"
        return (f"plan: {chunks}{tiles}, work ratio {self.work_ratio:.2f}, output {w}x{h}, est. peak {gpu}host "
                f"{self.est_peak_host_bytes / 2**30:.1f} GiB, est. time {est}{cuts}")  # fmt: skip

    def tile_rounded(self) -> str:
        """` (--tile 100 rounded down to the model's block)` where the tiles run smaller than --tile asked,
        else "": Real-ESRGAN users size tiles for their card, so the size run is said (the dry run's plan
        and -v's plan line alike)."""
        return f" (--tile {self.tile_asked} rounded down to the model's block)" if self.tile_asked else ""

    def windows(self) -> int:
        return self.tiles * self.chunks

    def file_size(self) -> tuple[int, int]:
        """(height, width) of the frames the file holds: the model's output, or --size's; with --compare,
        input | output side by side as players show them (stacked in the file under a quarter turn)."""
        size = self.size or self.output_size
        return compare_size(*size, self.rotation) if self.compare else size


@dataclass
class Progress:
    """What a `progress=` callback is called with: once per status, and in "upscaling" before each
    window and as frames are finished. Raising from the callback stops the run: the exception comes
    out of upscale() as it was raised (a KeyboardInterrupt as dove_cli.Interrupted), and the frames
    of closed segments are kept for `resume=True`. (Its module imports no torch: a GUI can import it
    for a type hint at once.)"""

    frames_done: int  # output frames finished
    frames_total: int  # as probed (an estimate for some containers; 0 while a folder run loads its model)
    window: str  # the window being worked on, e.g. "frames 25-57"; while loading, the part ("transformer")
    seconds: float  # since the run began
    status: str = "upscaling"  # "loading model", "planning", "upscaling", "joining segments", "done"
    workers: list[str] = field(default_factory=list)  # one line per worker of a distributed run
    # (seconds, frames_done) when frames began to come (`with_eta`): the rate counts from there, not
    # from the model's loading, nor a resumed run's saved frames. None until then.
    since: tuple[float, int] | None = None

    @property
    def fraction(self) -> float:
        """Output frames done, 0 to 1 (0 while the total is unknown)."""
        total = max(self.frames_total, self.frames_done)
        return self.frames_done / total if total else 0.0

    @property
    def rate(self) -> float | None:
        """Output frames a second since frames began to come; None before two counts are known."""
        if self.since is None:
            return None
        made, took = self.frames_done - self.since[1], self.seconds - self.since[0]
        return made / took if made > 0 and took > 0 else None

    @property
    def seconds_left(self) -> float | None:
        """The time left at that rate (what the command line's "about 13 s left" says); None while unknown."""
        rate = self.rate
        return None if rate is None else (max(self.frames_total, self.frames_done) - self.frames_done) / rate


def with_eta(progress: Callable[[Progress], None]) -> Callable[[Progress], None]:
    """`progress`, called with each Progress's `since` filled in (its `rate` and `seconds_left`), from the
    first count of frames done on: one run's callback (a folder run's files each get their own)."""
    since: tuple[float, int] | None = None

    def call(p: Progress) -> None:
        nonlocal since
        if since is None and p.frames_done:
            since = (p.seconds, p.frames_done)
        progress(p if p.since is not None else replace(p, since=since))

    return call


def checked_progress(progress: Callable[[Progress], None] | None) -> Callable[[Progress], None] | None:
    """A run's `progress=`: a function (called with the ETA filled in: `with_eta`; what it raises noted as
    the caller's cancel: errors.noting_cancels) or None."""
    if progress is None:
        return None
    if not callable(progress):
        raise OptionError(f"progress={progress!r}: expected a function that takes a Progress (or None)")
    return with_eta(noting_cancels(progress))


# StageTimer's stages, as `-v` names them for a user.
STAGE_NAMES = {"decode": "decoding", "wait_input": "waiting for frames", "upsample": "upsampling",
               "vae_encode": "VAE encode", "transformer": "transformer", "vae_decode": "VAE decode",
               "blend": "blending", "finish": "colour fix and rounding", "wait_output": "waiting for the encoder",
               "encode": "encoding", "finalize": "encoder flush and joining segments"}  # fmt: skip


@dataclass
class UpscaleResult:
    """What a run did. The two peaks differ in scope: `peak_device_bytes` is this run's (the GPU's
    counter is reset when the run starts), `peak_host_bytes` the whole process's so far (the
    kernel's high-water mark of resident memory, which only a new process resets): in a program that
    runs many jobs, each result carries the largest peak of any job before it."""

    output: Path
    frames: int
    seconds: float
    peak_host_bytes: int  # the process's peak resident memory so far, not this run's alone
    peak_device_bytes: int  # this run's peak of GPU memory allocated by torch (0 on a CPU)
    plan: Plan
    tile_used: int
    offload_used: str
    retries: int
    stages: dict[str, float]  # host wall seconds per stage
    device_stages: dict[str, float]  # GPU seconds per stage (CUDA events; empty elsewhere)
    resumed_from: int = 0  # output frames that were already saved by an interrupted run
    windows_run: int = 0  # temporal windows the model processed in this run
    windows_skipped: int = 0  # windows whose frames were all saved already (--resume)
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot
    dropped_frames: int = 0  # undecodable (--ignore-decode-errors), or lost from a constant-rate input
    workers: dict[str, int] = field(default_factory=dict)  # distributed runs: output frames per worker
    redone: int = 0  # distributed runs: segments redone after a worker died
    warnings: list[str] = field(default_factory=list)  # the warnings said during the run (for a manifest)
    # resume=True on an output an earlier run finished: nothing was made (frames 0; `plan` is a dry run's)
    finished_before: bool = False

    @classmethod
    def of_run(cls, output: Path, plan: Plan, stats: StreamStats, timer: StageTimer, *, seconds: float,
               peak_host_bytes: int, peak_device_bytes: int) -> UpscaleResult:  # fmt: skip
        """The result of a run in this process: what its stream counted (`stats`) and timed (`timer`)."""
        return cls.of_parts(output, plan, stats, timer.seconds, timer.device_seconds, seconds=seconds,
                            peak_host_bytes=peak_host_bytes, peak_device_bytes=peak_device_bytes)  # fmt: skip

    @classmethod
    def of_parts(
        cls,
        output: Path,
        plan: Plan,
        stats: StreamStats,
        stages: dict[str, float],
        device_stages: dict[str, float],
        *,
        seconds: float,
        peak_host_bytes: int,
        peak_device_bytes: int,
        workers: dict[str, int] | None = None,
        redone: int = 0,
    ) -> UpscaleResult:
        """The result of a run from what its streams counted (`stats`) and the seconds per stage: one
        process's (of_run), or a --ray file's, summed over its workers' tasks (with the frames each
        worker made, and the segments redone after a worker died)."""
        return cls(
            output=output,
            frames=stats.written,
            seconds=seconds,
            peak_host_bytes=peak_host_bytes,
            peak_device_bytes=peak_device_bytes,
            plan=plan,
            tile_used=stats.tile_used,
            offload_used=stats.offload_used,
            retries=stats.retries,
            stages=dict(stages),
            device_stages=dict(device_stages),
            resumed_from=stats.resumed_from,
            windows_run=stats.windows_run,
            windows_skipped=stats.windows_skipped,
            cuts=list(stats.cuts),
            dropped_frames=stats.dropped_frames,
            workers=dict(workers or {}),
            redone=redone,
        )

    def stages_summary(self) -> str:
        """One line for `-v`: where the time went, largest first (host wall seconds; GPU seconds too on
        a GPU). Stages overlap: decode and encode run on threads of their own, beside the model."""
        shown = sorted(((s, t) for s, t in self.stages.items() if t >= 0.05), key=lambda st: -st[1])
        gpu = self.device_stages
        parts = [f"{STAGE_NAMES.get(s, s)} {t:.1f} s" + (f" (GPU {gpu[s]:.1f} s)" if gpu.get(s) else "")
                 for s, t in shown]  # fmt: skip
        return "time per stage: " + (", ".join(parts) or "all under 0.05 s")

    def summary(self) -> str:
        if self.finished_before:
            again = advice("--overwrite", "overwrite=True")
            return f"{self.output}: finished already, and no run into it was interrupted: nothing to do ({again} redoes it)"
        gib = 1024**3
        made = self.frames - self.resumed_from  # a resumed run's speed is of the frames made now
        took = f"{self.seconds:.1f} s ({made / self.seconds if self.seconds > 0 else 0.0:.2f} fps)"
        frames = f"{self.frames} frame{'s' * (self.frames != 1)} in {took}"
        if self.resumed_from:  # both counts, each named (`400 frames in 8.1 s (22.85 fps made now)` made 184)
            now = f"{made} frame{'s' * (made != 1)} made now in {took}" if made > 0 else "nothing left to make"
            frames = f"{now}, {self.frames} in the output"  # (a resume that only joined: no speed to speak of)
        dev = f", peak GPU {self.peak_device_bytes / gib:.2f} GiB" if self.peak_device_bytes else ""
        tile = f"tile {self.tile_used or 'whole frame'}"
        retry = f", {self.retries} OOM retr{'ies' if self.retries != 1 else 'y'}" if self.retries else ""
        extra = f", {len(self.cuts)} scene cut{'s' * (len(self.cuts) != 1)}" if self.cuts else ""
        if self.resumed_from:  # (Ray workers skip whole segments, not windows: no count)
            skipped = self.windows_skipped
            counted = f" ({skipped} window{'s' * (skipped != 1)} skipped)" if skipped else ""
            extra += f", resumed after frame {self.resumed_from}{counted}"
        if self.dropped_frames:
            n = self.dropped_frames
            extra += f", {n} frame{'s' * (n != 1)} missing (undecodable, or lost from the input)"
        if self.workers:
            extra += f", {len(self.workers)} Ray worker{'s' * (len(self.workers) != 1)}"
        if self.redone:
            extra += f" ({self.redone} segment{'s' * (self.redone != 1)} redone after a worker died)"
        return (
            f"{frames}, peak host "
            f"{self.peak_host_bytes / gib:.2f} GiB{dev}; {tile}, chunk {self.plan.chunk or 'whole clip'}, "
            f"offload {self.offload_used}{retry}{extra} -> {self.output}"
        )
