"""Chunk/tile planning and blend weights: pure functions, no model, no I/O.

A *span* is a half-open window [start, stop) along one axis (frames, or output pixel rows/columns).
Windows start at multiples of the stride (window - overlap), as in the authors' release; the last
one is only as long as the rest of the axis needs (a length the model takes), where the release
merges it into the one before (time) or stretches it (tiles): release_layout.py, `--parity`.
Blend weights are either

- "hard": a cut like the release's valid-region cut; every position belongs to exactly one window,
  the cut between two neighbours lies `overlap // 2` before the earlier window's end, or
- "cosine": raised-cosine ramps across each overlap, so no seam or flicker line shows.

Weights are normalised by their sum at every position, so they always sum to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from dove_cli.errors import OptionError

BlendMode = Literal["cosine", "hard"]


@dataclass(frozen=True)
class Span:
    """A window [start, stop) along one axis, with its neighbours' edges for blending."""

    start: int
    stop: int
    prev_stop: int | None = None  # end of the previous window (None: first window)
    next_start: int | None = None  # start of the next window (None: last window)

    @property
    def length(self) -> int:
        return self.stop - self.start


def check_chunk(chunk: int, overlap: int) -> None:
    """Chunks must map to whole latent frames (4k+1) and hold their overlap twice, as tiles do: a
    chunk sharing more than half of itself advances by less than that, so its frames are run over
    and over (`--chunk 9 --chunk-overlap 8`: 9 times each)."""
    if chunk < 0 or (chunk > 0 and (chunk - 1) % 4 != 0):
        raise OptionError(f"--chunk {chunk} is not of the form 4k+1 (e.g. 17, 25, 33, 49) or 0")
    if overlap < 0:
        raise OptionError(f"--chunk-overlap {overlap} must not be negative")
    if chunk > 0 and 2 * overlap >= chunk:
        raise OptionError(
            f"--chunk {chunk} is too small for --chunk-overlap {overlap} (need chunk > 2 x overlap; "
            f"e.g. --chunk-overlap {fitting_chunk_overlap(chunk, overlap)})"
        )


def check_tile(tile: int, overlap: int, multiple: int) -> None:
    """Tiles must hold their overlap twice and be at least one model block."""
    if tile < 0:
        raise OptionError(f"--tile {tile} must not be negative (0 = whole frame)")
    if overlap < 0:
        raise OptionError(f"--tile-overlap {overlap} must not be negative")
    if tile > 0 and tile < multiple:
        raise OptionError(f"--tile {tile} is smaller than the model's block of {multiple} px")
    if tile > 0 and 2 * overlap >= tile:
        raise OptionError(
            f"--tile {tile} is too small for --tile-overlap {overlap} (need tile > 2 x overlap; "
            f"e.g. --tile-overlap {fitting_tile_overlap(tile, overlap)})"
        )


@dataclass(frozen=True)
class Lengths:
    """The window lengths a model takes along one axis: multiple * k + plus (k >= 0 or 1)."""

    multiple: int = 1
    plus: int = 0

    def fit(self, need: int) -> int:
        """The shortest such length that holds `need` positions."""
        return -(-(need - self.plus) // self.multiple) * self.multiple + self.plus


ANY_LENGTH = Lengths()


def last_start(length: int, window: int, nxt: int, lengths: Lengths) -> int:
    """Where the last window starts when the regular one at `nxt` would reach past the end: only as
    long as the rest needs (a length the model takes), not a whole window aligned to the end, which
    would redo up to a window of work. It starts at or before `nxt`, so it overlaps the window
    before by at least the overlap."""
    return length - min(window, lengths.fit(length - nxt))


def plan_spans(length: int, window: int, overlap: int, lengths: Lengths = ANY_LENGTH) -> list[Span]:
    """Cover [0, length) with windows of `window` every `window - overlap`, and a last one only as
    long as the rest needs (0 or >= length: one window)."""
    if window <= 0 or window >= length:
        return [Span(0, length)]
    stride = window - overlap
    if stride <= 0:  # every loop below must advance
        raise ValueError(f"overlap {overlap} must be smaller than the window {window}")
    starts, stops = [0], [window]
    while stops[-1] < length:
        nxt = starts[-1] + stride
        if nxt + window >= length:  # the last window
            nxt = last_start(length, window, nxt, lengths)  # > the last start: the loop advances
        starts.append(nxt)
        stops.append(min(nxt + window, length))
    return [
        Span(
            s,
            stops[i],
            prev_stop=stops[i - 1] if i > 0 else None,
            next_start=starts[i + 1] if i + 1 < len(starts) else None,
        )
        for i, s in enumerate(starts)
    ]


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine rise over n samples, strictly inside (0, 1) so that no weight is exactly 0."""
    x = (np.arange(n, dtype=np.float64) + 0.5) / n
    return 0.5 - 0.5 * np.cos(math.pi * x)


def span_weights(span: Span, overlap: int, mode: BlendMode) -> np.ndarray:
    """Unnormalised weights over the span's positions (float64, shape [span.length])."""
    w = np.ones(span.length, dtype=np.float64)
    if mode == "hard":
        keep_start = 0 if span.prev_stop is None else span.prev_stop - overlap // 2 - span.start
        keep_stop = span.length if span.next_start is None else span.length - overlap // 2
        w[: max(keep_start, 0)] = 0.0
        w[keep_stop:] = 0.0
        return w
    if mode != "cosine":
        raise OptionError(f"--blend {mode!r} is not one of: {', '.join(get_args(BlendMode))}")
    if span.prev_stop is not None:
        n = span.prev_stop - span.start
        w[:n] *= _ramp(n)
    if span.next_start is not None:
        n = span.stop - span.next_start
        w[span.length - n :] *= _ramp(n)[::-1]
    return w


def axis_weights(spans: list[Span], overlap: int, mode: BlendMode) -> list[np.ndarray]:
    """Per-window weights along one fully known axis, normalised so they sum to 1 everywhere."""
    length = spans[-1].stop
    raw = [span_weights(s, overlap, mode) for s in spans]
    total = np.zeros(length, dtype=np.float64)
    for s, w in zip(spans, raw, strict=False):
        total[s.start : s.stop] += w
    if (total <= 0).any():  # only possible with inconsistent hand-made spans
        raise ValueError("blend weights leave positions uncovered")
    return [(w / total[s.start : s.stop]).astype(np.float32) for s, w in zip(spans, raw, strict=False)]


class ChunkStream:
    """Plans temporal chunks online, while frames arrive and before the frame count is known.

    Produces exactly `plan_spans(total, chunk, overlap, lengths)` once `total` is known, but decides each
    window as soon as it can: window i is released when the frames up to the end of window i+1
    have been read (or the input ended), because only then is its next neighbour known.

    Shots: `cut(at)` says that frame `at` starts a new shot. The current shot is then planned as if
    the video ended there and the next shot as if it began there (spans shifted by `at`), so no
    window and no blending crosses a cut. Without cuts the plan is the plain one above.
    """

    def __init__(self, chunk: int, overlap: int, lengths: Lengths = ANY_LENGTH) -> None:
        self.chunk, self.overlap, self.lengths = chunk, overlap, lengths
        self.stride = chunk - overlap if chunk > 0 else 0
        if chunk > 0 and self.stride <= 0:  # _plan must advance at every window
            raise ValueError(f"chunk overlap {overlap} must be smaller than the chunk {chunk}")
        self.cuts: list[int] = []
        self._shot = 0  # first frame of the current shot
        self._start = 0
        self._prev_stop: int | None = None
        self._done = False
        self._pending: list[Span] = []  # windows of shots ended by cut(), not yet handed out

    def cut(self, at: int) -> None:
        """Frame `at` (the next frame to be read) starts a new shot."""
        if at <= self._shot:
            return
        self._pending += self._plan(at, eof=True)
        self.cuts.append(at)
        self._shot = self._start = at
        self._prev_stop, self._done = None, False

    def ready(self, frames_read: int, eof: bool) -> list[Span]:
        """Windows that can be processed now, given how many frames have been read."""
        out, self._pending = self._pending + self._plan(frames_read, eof), []
        return out

    def _plan(self, frames_read: int, eof: bool) -> list[Span]:
        """Windows of the current shot [self._shot, ...) that are decided by `frames_read`."""
        out: list[Span] = []
        shot = self._shot
        while not self._done:
            if eof and frames_read <= shot:  # nothing in this shot (empty input)
                self._done = True
                break
            if self.chunk <= 0:
                if not eof:
                    break
                out.append(Span(shot, frames_read))
                self._done = True
                break
            start = self._start
            if not eof and frames_read < start + self.chunk + self.stride:
                break  # the next window's position is not known yet
            total = frames_read if eof else None  # end of the shot, once known
            if total is not None and start == shot and total - shot <= self.chunk:
                out.append(Span(shot, total))
                self._done = True
                break
            stop = start + self.chunk
            if total is not None and stop >= total:
                out.append(Span(start, total, prev_stop=self._prev_stop))
                self._done = True
                break
            nxt = start + self.stride
            if total is not None and nxt + self.chunk >= total:  # > start, since start + chunk < total
                nxt = last_start(total, self.chunk, nxt, self.lengths)
            assert nxt > start, "the chunk planner must advance"
            out.append(Span(start, stop, prev_stop=self._prev_stop, next_start=nxt))
            self._prev_stop, self._start = stop, nxt
        return out

    def final_before(self, frames_read: int, eof: bool) -> int:
        """Frames below this index are covered by no future window, so they may be written."""
        if self._pending:
            return self._pending[0].start
        if self._done:
            return frames_read
        if self.chunk <= 0:
            return self._shot
        earliest = self._start
        if not eof:  # the end-aligned last window may start as early as frames_read - chunk
            earliest = min(earliest, max(frames_read - self.chunk, self._shot))
        return earliest


def clamp_window(window: int, length: int, multiple: int) -> int:
    """A window length usable on an axis of `length` (a multiple of `multiple`): 0 means whole."""
    if window <= 0 or window >= length:
        return 0
    return max(multiple, window // multiple * multiple)


def fitting_chunk_overlap(chunk: int, overlap: int) -> int:
    """The default chunk overlap cut to under half of a short chunk: `--chunk 9` sharing 8 frames
    would advance 1 frame per window (9x the work), so it shares 4."""
    return overlap if chunk <= 0 or 2 * overlap < chunk else (chunk - 1) // 2


def fitting_tile_overlap(tile: int, overlap: int) -> int:
    """The default tile overlap for a tile too small to share it on both sides: a quarter of the tile
    (in 8 px steps), enough for seamless blending (README: 8 px already blends without a seam)."""
    return overlap if tile <= 0 or 2 * overlap < tile else tile // 4 // 8 * 8


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int) -> tuple[list[Span], list[Span], int]:
    """Rows and columns of spatial windows, and the overlap used (kept below half a tile)."""
    overlap = min(overlap, max(0, tile // 2 - 1)) if tile else 0
    lengths = Lengths(multiple)
    ys = plan_spans(height, clamp_window(tile, height, multiple), overlap, lengths)
    xs = plan_spans(width, clamp_window(tile, width, multiple), overlap, lengths)
    return ys, xs, overlap
