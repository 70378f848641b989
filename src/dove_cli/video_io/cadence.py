"""Where a constant-rate video's frames lie: its grid of frame times, so that an output whose clock
is finer than the input's gets the exact steps of the nominal rate. Matroska counts time in
milliseconds, so 23.976 fps is stored as steps of 41 and 42 ms; copied as they are into an .mp4,
that jitter made the output a variable-rate 23.973 fps (`dove info` said so), where ffmpeg's own
re-encode steps 1001/24000 s exactly."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from dove_cli.video_io.formats import bare_stream
from dove_cli.video_io.paths import ffmpeg_name
from dove_cli.video_io.sequences import DEFAULT_SEQUENCE_FPS

SAMPLE_FRAMES = 240  # frames the grid is found from (10 s at 24 fps): a clock's rounding of the common
# rates repeats within 60 frames (23.976 fps in ms: every 24)
REORDER_PACKETS = 32  # packets read past them: a frame stored out of order (B-frames) comes no later
MAX_CLOCK = 10**6  # the finest time base a grid is written in (23.976 fps at 90 kHz: 1/360000)


def uneven(pts: list[int], step: Fraction | None) -> bool:
    """Whether sorted timestamps step unevenly (a variable rate), `step` being a frame in their ticks:
    steps within one tick of each other (Matroska's milliseconds make 23.976 fps 41 and 42 ms), or
    within a hundredth of a frame, are even. The rule `dove info` judges a rate constant by."""
    steps = {b - a for a, b in zip(pts, pts[1:], strict=False)}
    return bool(steps) and step is not None and max(steps) - min(steps) > max(Fraction(1), step / 100)


def stream_rate(s: Any) -> Fraction:
    """A video stream's frame rate: its average rate, unless that exceeds the rate all its
    timestamps fit (r_frame_rate, where guessed_rate starts), which no true average can: FFmpeg's
    raw DV demuxer says 60000 for 25 fps PAL. A bare stream's (.h264: FFmpeg's average is its default
    25) is the one its headers state (the SPS's VUI timing, an MPEG-2 sequence header), as ffmpeg
    times it, else 25."""
    if bare_stream(s.container):
        return Fraction(s.codec_context.framerate or DEFAULT_SEQUENCE_FPS)
    fps = Fraction(s.average_rate or s.guessed_rate or s.base_rate or DEFAULT_SEQUENCE_FPS)
    if s.guessed_rate and fps > 1.5 * s.guessed_rate:
        fps = Fraction(s.guessed_rate)
    return fps


@dataclass(frozen=True)
class RateJudgement:
    """Whether a video's frames step unevenly (a variable rate: a screen or phone recording), judged
    from the times of `frames` of its packets: all of them (`dove info`), or where `sampled` only its
    first ones (a plan's and an image output's: SAMPLE_FRAMES, without reading a long file through)."""

    variable: bool
    frames: int
    average: Fraction | None  # frames a second over them ((frames - 1) / their span): a variable rate's
    steps: tuple[Fraction, Fraction] | None  # the shortest and the longest step, seconds
    sampled: bool

    @property
    def judged_from(self) -> str:
        """'; judged from its first 240 frames' where only those were read, else ''."""
        return f"; judged from its first {self.frames} frames" if self.sampled else ""


def judge_rate(s: Any, pts: list[int], limit: int | None = None) -> RateJudgement:
    """The one judgement of a video stream's rate (`dove info`, a plan, an image output's warning):
    `uneven` over its packet times `pts` (`packet_pts(c, s, limit)`), a frame's step from `stream_rate`."""
    tb = Fraction(s.time_base) if s.time_base else Fraction(0)
    steps = [(b - a) * tb for a, b in itertools.pairwise(pts)]
    span = sum(steps, Fraction(0))
    return RateJudgement(
        variable=bool(tb) and uneven(pts, 1 / (stream_rate(s) * tb)),
        frames=len(pts),
        average=(len(pts) - 1) / span if span else None,
        steps=(min(steps), max(steps)) if steps else None,
        sampled=limit is not None and len(pts) >= limit,
    )


def fraction_gcd(*values: Fraction) -> Fraction:
    """The largest time that each of `values` is a whole number of (0 for none but zeros)."""
    den = math.lcm(*(v.denominator for v in values))
    return Fraction(math.gcd(*(int(v * den) for v in values)), den)


@dataclass(frozen=True)
class Grid:
    """A constant-rate input's frame times, in seconds: `start + k * step` for whole k, each frame
    stored within `slack` of its place (half a tick of the input's clock, which rounded it)."""

    start: Fraction
    step: Fraction
    slack: Fraction

    def time_base(self, tb: Fraction) -> Fraction | None:
        """A time base that holds every place on the grid and every time of `tb` exactly (1/24000
        for 23.976 fps in ms); None where it would be finer than MAX_CLOCK."""
        unit = fraction_gcd(self.step, self.start, tb)
        return unit if unit and unit.denominator <= MAX_CLOCK else None

    def place(self, t: Fraction) -> Fraction:
        """Where a frame stored at `t` seconds lies: its place on the grid where it is within the
        slack of one, else `t` itself (a frame off the grid, as a variable-rate stretch has)."""
        on = self.start + round((t - self.start) / self.step) * self.step
        return on if abs(on - t) <= self.slack else t


def fit_grid(pts: list[int], tb: Fraction, rate: Fraction) -> Grid | None:
    """The grid of `rate` frames a second that sorted timestamps `pts` (ticks of `tb`) are roundings
    of, each within half a tick; None where they step unevenly (`uneven`), fit no such grid, or the
    clock holds the rate exactly already (a frame is a whole number of ticks: nothing to place).
    Of the grids that fit, the one through the first frame where one is (its start kept), else
    the nearest to it: 42 ms is 1001/24000 s, the first frame of a 23.976 fps stream one frame late."""
    if not pts or rate <= 0:
        return None
    frame = 1 / (rate * tb)  # in ticks
    if frame.denominator == 1 or uneven(pts, frame):
        return None
    misses = [p - pts[0] - round((p - pts[0]) / frame) * frame for p in pts]  # from a grid through the first
    lo, hi = max(misses) - Fraction(1, 2), min(misses) + Fraction(1, 2)  # where the grid may be moved to
    unit = Fraction(1, frame.denominator)  # the moves that keep a frame's place a whole number of `unit`s
    near = min(max(Fraction(0), lo), hi)
    moves = sorted((math.floor(near / unit) * unit, math.ceil(near / unit) * unit), key=abs)
    move = next((m for m in moves if lo <= m <= hi), None)
    if move is None:
        return None
    return Grid(start=(pts[0] + move) * tb, step=frame * tb, slack=tb / 2)


def packet_pts(c: Any, s: Any, limit: int | None = None) -> list[int]:
    """The timestamps of a stream's packets (a packet a frame), sorted, read without decoding: the
    frame count and times a container's header does not give (Matroska). With `limit`, the first
    `limit` frames' only (REORDER_PACKETS more are read: a frame stored late still comes)."""
    found = _one_after_another(c.demux(s)) if bare_stream(c) else (p.pts for p in c.demux(s) if p.pts is not None)
    if limit is None:
        return sorted(found)
    return sorted(itertools.islice(found, limit + REORDER_PACKETS))[:limit]


def _one_after_another(packets: Iterator[Any]) -> Iterator[int]:
    """A bare stream's packet times (.h264: FFmpeg gives none): each one's own, or where the packets
    before it end (their durations: the rate its headers state, else FFmpeg's 25); the empty one a
    parser ends with left out."""
    at = 0
    for p in packets:
        if p.pts is not None:
            at = p.pts
        elif not p.size:
            continue
        yield at
        at += p.duration or 0


def sample_pts(path: Path, index: int) -> list[int]:
    """The timestamps of the first SAMPLE_FRAMES frames of stream `index` (`packet_pts`)."""
    with av.open(ffmpeg_name(path), metadata_errors="replace") as c:
        return packet_pts(c, c.streams[index], SAMPLE_FRAMES)
