"""The driver's bookkeeping of one file of a --ray run (distributed.py), and the events workers send
it: no Ray here, so that "which segments are waiting, handed out, saved" can be tested without a cluster.

A segment is `pending` (to hand out), `running` (in a task a worker has), or `done` (reported whole
on disk with the tiles the tile changes give). It is made again (back to `pending`) only when:
- its worker died (`give_back(..., died=True)`: counts towards MAX_DEATHS on the task's first segment),
  or its task ended without reporting it (`give_back`);
- it was made with tiles that a tile change (out of GPU memory) no longer gives: reported after the
  change (`accept`) or saved before it (`tile_change`); each time counts towards MAX_STALE (`_stale`).
The driver persists what these methods decide (the journal) and makes the Ray calls.
"""

from __future__ import annotations

import bisect
import enum
import logging
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dove_cli import resume, video_io
from dove_cli.errors import DoveError
from dove_cli.resume import Segment

if TYPE_CHECKING:
    from dove_cli.batch import BatchItem
    from dove_cli.distributed import PrePass
    from dove_cli.options import CheckedOptions, UpscaleOptions
    from dove_cli.plan import Plan
    from dove_cli.upscaling import CheckedOutput, Chunks, UpscaleResult

TASK_MAX_FRAMES = 600  # a task redoes the one window it shares with the task before it: ~4 % at 600 frames
MAX_DEATHS = 3  # workers that may die on the same segment before the run stops
MAX_STALE = 6  # times a segment may be redone because a tile change reached it late


class WorkersLost(DoveError):
    """Ray workers kept dying (on the same frames, or all of them)."""


@dataclass
class SegmentPlan:
    """A closed segment as the pre-pass fixes it, with what a worker needs to make it."""

    index: int
    first: int  # output frames [first, stop)
    stop: int
    read: int  # frames read when the plan closes it (the frame count when `last`)
    preroll: int  # first frame of the first window that touches it
    chunks: Chunks  # the window plan before frame `preroll` is read
    pts: list[int]  # timestamps of frames preroll .. read - 1
    cuts: list[int]  # shot cuts among those frames
    windows: list[tuple[int, int]]  # (start, stop) of the windows that touch it
    last: bool  # the input ends with it


def tile_at(start: int, changes: list[tuple[int, int]], planned: int) -> int:
    """The tile a window starting at `start` runs with, given tile changes in window order."""
    tile = planned
    for at, t in changes:
        if at > start:
            break
        tile = t
    return tile


# ---------------------------------------------------------------------------------------- worker -> driver


@dataclass(frozen=True)
class TaskStats:
    """What a task's streaming loop measured (the driver sums them per file)."""

    windows_run: int
    tile_used: int
    offload_used: str
    retries: int
    stages: dict[str, float]  # seconds per stage
    device_stages: dict[str, float]  # GPU seconds per stage
    seconds: float
    peak_host: int
    peak_device: int


@dataclass(frozen=True)
class SegmentDone:
    """A segment of the task is whole on disk, made with these (window start, tile) pairs; `late`:
    closed captions its writer found but did not keep."""

    task: str
    segment: Segment
    tiles: list[tuple[int, int]]
    late: resume.LateCaptions | None


@dataclass(frozen=True)
class TileChanged:
    """The worker ran out of memory and tiles with `tile` from the window at `start` on."""

    task: str
    start: int
    tile: int


@dataclass(frozen=True)
class Written:
    """Frames of the task written so far (segments not yet closed included)."""

    task: str
    frames: int


@dataclass(frozen=True)
class Said:
    """A warning or note a worker logged (its own log reaches no one: Ray's log_to_driver is off), for
    the driver to say and list as one process would have: logger name, level, text."""

    logger: str
    level: int
    text: str

    @classmethod
    def of(cls, record: logging.LogRecord) -> Said:
        return cls(record.name, record.levelno, record.getMessage())


@dataclass(frozen=True)
class Warned:
    """The worker said something while running the task."""

    task: str
    said: Said


@dataclass(frozen=True)
class TaskEnded:
    """The task's last event."""

    task: str
    stats: TaskStats


Event = SegmentDone | TileChanged | Written | Warned | TaskEnded


# ---------------------------------------------------------------------------------------- one file


class JobState(enum.Enum):
    """waiting -> planning -> running -> joining -> done | failed"""

    WAITING = "waiting"
    PLANNING = "planning"  # a worker makes its plan
    RUNNING = "running"  # pre-pass and tasks
    JOINING = "joining"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    """One file of a distributed run, as the driver tracks it."""

    index: int
    input: Path
    output: Path
    item: BatchItem | None = None
    state: JobState = JobState.WAITING
    info: video_io.VideoInfo | None = None
    manifest: Path | None = None
    checked: CheckedOutput | None = None  # the output as checked before the run (codec, pixel format: its plan's)
    opts: UpscaleOptions | None = None  # the run's options for this file (upscaling.with_release_file)
    session: resume.Session | None = None
    plan: Plan | None = None
    plan_opts: CheckedOptions | None = None  # (the journal's windows, when resumed: checked again)
    prepass: PrePass | None = None
    run_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # segment encoder settings
    join: dict[str, Any] = field(default_factory=dict)  # options of the join (audio, subtitles, span)
    made: Path | None = None  # output folder this run created
    segments: dict[int, SegmentPlan] = field(default_factory=dict)
    by_first: dict[int, int] = field(default_factory=dict)  # first frame -> segment index
    pending: set[int] = field(default_factory=set)
    running: dict[int, str] = field(default_factory=dict)  # segment index -> task id
    done: dict[int, Segment] = field(default_factory=dict)
    tiles: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # each done segment's window tiles
    changes: list[tuple[int, int]] = field(default_factory=list)  # tile changes, in window order
    deaths: Counter = field(default_factory=Counter)
    stale: Counter = field(default_factory=Counter)
    prepass_done: bool = False
    target: int = TASK_MAX_FRAMES
    t_start: float = 0.0
    resumed: int = 0  # frames found saved
    redone: int = 0
    workers: Counter = field(default_factory=Counter)  # worker name -> frames
    windows_run: int = 0
    retries: int = 0
    offload_used: str = "none"
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, all workers together
    device_stages: dict[str, float] = field(default_factory=dict)  # GPU seconds per stage, all workers together
    peak_host: int = 0
    peak_device: int = 0
    late_captions: resume.LateCaptions | None = None  # closed captions the workers' segments did not keep
    warnings: list[str] = field(default_factory=list)  # said while the driver worked on this file (a folder run)
    failing: BaseException | None = None  # why the file cannot be made (give_up): the driver fails it
    error: BaseException | None = None  # why it failed
    result: UpscaleResult | None = None
    joining: Future | None = None

    @property
    def active(self) -> bool:
        return self.state in (JobState.PLANNING, JobState.RUNNING, JobState.JOINING)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED)

    def frames_done(self) -> int:
        return sum(s.frames for s in self.done.values())

    def frames_total(self) -> int:
        if self.prepass is not None and self.prepass.total is not None:
            return self.prepass.total
        if self.plan is not None:
            return self.plan.frames
        return self.info.num_frames if self.info is not None else 0

    def saved(self) -> list[Segment]:
        """The done segments in frame order (the journal's list, the join's)."""
        return [self.done[i] for i in sorted(self.done)]

    def _tile(self, start: int) -> int:
        assert self.plan is not None
        return tile_at(start, self.changes, self.plan.tile)

    # ---------------------------------------------------------------- segments

    def add_segment(self, seg: SegmentPlan, saved: Segment | None) -> None:
        """A segment the pre-pass closed: done if `saved` (the journal's segment at its first frame,
        from an interrupted run) has its frames, else pending."""
        self.segments[seg.index] = seg
        self.by_first[seg.first] = seg.index
        if saved is not None and saved.frames == seg.stop - seg.first:  # done by an interrupted run
            self.done[seg.index] = saved
            self.tiles[seg.index] = [(w, self._tile(w)) for w, _ in seg.windows]
            self.resumed += saved.frames
        else:
            self.pending.add(seg.index)

    def next_segments(self) -> list[int]:
        """The segments of the next task: the first pending one and those after it, up to `target`
        frames ([] if none is pending)."""
        if not self.pending:
            return []
        indices = [min(self.pending)]
        frames = self.segments[indices[0]].stop - self.segments[indices[0]].first
        while frames < self.target and (nxt := indices[-1] + 1) in self.pending:
            indices.append(nxt)
            frames += self.segments[nxt].stop - self.segments[nxt].first
        return indices

    def hand_out(self, task: str, segments: list[int]) -> None:
        """`segments` go to a worker, in task `task`."""
        for i in segments:
            self.pending.discard(i)
            self.running[i] = task

    def planned(self, seg: Segment) -> SegmentPlan | None:
        """The pre-pass's segment that a worker's reported `seg` is (None: the plan has no such segment)."""
        index = self.by_first.get(seg.first)
        planned = self.segments.get(index) if index is not None else None
        if planned is None or seg.frames != planned.stop - planned.first:
            return None
        return planned

    def accept(self, index: int, seg: Segment, tiles: list[tuple[int, int]], worker: str) -> bool:
        """A worker reported segment `index` whole on disk: True if it is kept (the caller saves it in
        the journal); made again if a tile change it did not hear of gives other tiles (`_stale`)."""
        if index in self.done or self.state is not JobState.RUNNING:
            return False
        self.running.pop(index, None)
        if any(self._tile(w) != t for w, t in tiles):
            self._stale(index)  # made before its worker heard of a tile change
            return False
        self.done[index] = seg
        self.tiles[index] = tiles
        self.workers[worker] += seg.frames
        return True

    def tile_change(self, start: int, tile: int) -> bool:
        """A worker shrank its tiles from the window at `start` on: False if known already; else the
        change is listed (in window order) and every saved segment that ran a later window with
        other tiles is made again (the caller saves the journal)."""
        if (start, tile) in self.changes:
            return False
        self.changes.insert(bisect.bisect_right([c[0] for c in self.changes], start), (start, tile))
        for i, tiles in list(self.tiles.items()):
            if any(self._tile(w) != t for w, t in tiles):
                del self.done[i], self.tiles[i]
                self._stale(i)
        self.retries += 1
        return True

    def _stale(self, index: int) -> None:
        """Make segment `index` again (its tiles are not those of the tile changes), up to MAX_STALE times."""
        self.stale[index] += 1
        if self.stale[index] > MAX_STALE:
            self.give_up(WorkersLost(f"{self.input}: the workers' tile changes (out of GPU memory) did not settle; "
                                     "run with a smaller --tile"))  # fmt: skip
            return
        self.pending.add(index)

    def give_back(self, task: str, segments: list[int], *, died: bool = False) -> list[int]:
        """Task `task` (of `segments`) ended or its worker is gone: the segments it did not report are
        made again (if the file still runs); returns them. `died`: a worker death, counted."""
        left = [i for i in segments if self.running.get(i) == task]
        for i in left:
            self.running.pop(i)
        if self.state is not JobState.RUNNING or not left:
            return []
        left = [i for i in left if i not in self.done]
        if died and left:
            self.deaths[left[0]] += 1
            self.redone += len(left)
        self.pending.update(left)
        if left and self.deaths[left[0]] >= MAX_DEATHS:
            first, last = self.segments[left[0]].first, self.segments[left[-1]].stop - 1
            self.give_up(WorkersLost(f"{self.input}: {MAX_DEATHS} Ray workers died making frames {first}-{last} "
                                     "(out of host memory?)"))  # fmt: skip
        return left

    # ---------------------------------------------------------------- the file as a whole

    def give_up(self, error: BaseException) -> None:
        """The file cannot be made (the first error wins): the driver fails it (`failing`)."""
        if self.failing is None:
            self.failing = error

    def stop(self, error: BaseException) -> None:
        """The file failed: nothing more is handed out or expected (its saved segments stay for --resume)."""
        self.state, self.error = JobState.FAILED, error
        self.pending.clear()
        self.running.clear()

    def complete(self) -> bool:
        """Every segment of the file is saved: it can be joined."""
        return self.prepass_done and not self.pending and not self.running and len(self.done) == len(self.segments)

    def note_late_captions(self, late: resume.LateCaptions | None) -> None:
        """Keep the earliest closed captions a worker's segment lost, as one process's writer finds them."""
        if late is not None and (self.late_captions is None or late[0] < self.late_captions[0]):
            self.late_captions = (late[0], late[1])

    def add_stats(self, stats: TaskStats) -> None:
        """A task's statistics, added to the file's."""
        self.windows_run += stats.windows_run
        self.retries += stats.retries
        if stats.offload_used != "none":
            self.offload_used = stats.offload_used
        for stage, seconds in stats.stages.items():
            self.stages[stage] = self.stages.get(stage, 0.0) + seconds
        for stage, seconds in stats.device_stages.items():
            self.device_stages[stage] = self.device_stages.get(stage, 0.0) + seconds
        self.peak_host = max(self.peak_host, stats.peak_host)
        self.peak_device = max(self.peak_device, stats.peak_device)
