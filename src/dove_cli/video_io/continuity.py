"""Timestamp discontinuities of MPEG-TS/PS inputs (concatenated recordings, a capture's clock reset),
corrected as ffmpeg's command line corrects them, so that the video reader and the audio/subtitle
copy of the writer, each demuxing the file on its own, shift the same packets by the same amount.

ffmpeg (fftools/ffmpeg_demux.c, ts_discontinuity_detect), for formats flagged AVFMT_TS_DISCONT: a
stream's packet whose dts is more than -dts_delta_threshold (10 s) away from where that stream's
previous packet ended, or more than 0.1 s before that packet's dts, moves every following packet
of every stream by the difference, so that the stream continues where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from dove_cli.video_io.paths import ffmpeg_name

AVFMT_TS_DISCONT = 0x0200  # libavformat's flag for formats whose timestamps may jump (MPEG-TS, MPEG-PS, ...)
DTS_DELTA_THRESHOLD = Fraction(10)  # seconds: ffmpeg's -dts_delta_threshold default
BACKWARD_TOLERANCE = Fraction(1, 10)  # seconds a dts may go back before it counts as a reset (ffmpeg's)


def allows_discontinuities(container: Any) -> bool:
    """Whether the input's format may carry timestamp jumps that players and ffmpeg correct."""
    return bool(container.format.flags & AVFMT_TS_DISCONT)


class Continuity:
    """Moves each packet by the offset the discontinuities before it add up to (ffmpeg's
    ts_offset_discont), in demux order over all the file's streams. `on_jump(packet, jump)` hears of
    each discontinuity, `jump` seconds (negative: a reset back), the packet already moved."""

    def __init__(self, on_jump: Callable[[av.Packet, Fraction], None] | None = None) -> None:
        self.offset = Fraction(0)  # seconds added to every packet from here on
        self._on_jump = on_jump
        self._last: dict[int, tuple[Fraction, Fraction]] = {}  # stream index -> (its last dts, where it ended)

    def fix(self, p: av.Packet) -> None:
        """Move `p` (in place) by the offset so far, and by a new one when it starts a discontinuity."""
        self._move(p, self.offset)
        if not p.time_base or p.dts is None:
            return
        tb = Fraction(p.time_base)
        dts = p.dts * tb
        last = self._last.get(p.stream.index)
        if last is not None:
            delta = dts - last[1]
            if abs(delta) > DTS_DELTA_THRESHOLD or dts + BACKWARD_TOLERANCE < last[0]:
                self.offset -= delta
                self._move(p, -delta)
                dts = p.dts * tb
                if self._on_jump is not None:
                    self._on_jump(p, delta)
        self._last[p.stream.index] = (dts, dts + (p.duration or 0) * tb)

    @staticmethod
    def _move(p: av.Packet, seconds: Fraction) -> None:
        if not seconds or not p.time_base:
            return
        ticks = round(seconds / Fraction(p.time_base))
        if p.pts is not None:
            p.pts += ticks
        if p.dts is not None:
            p.dts += ticks


def continuous_packets(container: Any, streams: list[Any],
                       on_jump: Callable[[av.Packet, Fraction], None] | None = None) -> Iterator[av.Packet]:  # fmt: skip
    """The packets of `streams`, in demux order; in a format that allows discontinuities, demuxed with
    every other stream (whose packets decide the offsets too) and moved by `Continuity`."""
    if not allows_discontinuities(container):
        yield from container.demux(*streams)
        return
    wanted = {s.index for s in streams}
    fixer = Continuity(on_jump)
    for p in container.demux():
        fixer.fix(p)
        if p.stream.index in wanted:
            yield p


def first_discontinuity(path: str | Path) -> float | None:
    """Seconds from the start where the input's timestamps first jump (a demux-only scan: packet
    headers, no decoding), or None: readers that seek by time (--ray's workers) cannot place their
    start in a file whose times repeat."""
    with av.open(ffmpeg_name(path)) as container:
        if not allows_discontinuities(container):
            return None
        start = container.start_time / av.time_base if container.start_time is not None else 0.0
        found: list[float] = []
        fixer = Continuity(lambda p, _: found.append(float((p.dts or 0) * p.time_base) - start))
        for p in container.demux():
            fixer.fix(p)
            if found:
                return found[0]
    return None
