"""Copied audio timed to the sample. A packet may carry samples that are not played: a codec's delay
(AAC priming, Opus pre-skip) at the start, padding at the end, or what an edit (an ffmpeg -ss -c copy
cut) leaves out; the input hides them (AV_PKT_DATA_SKIP_SAMPLES, an MP4's edit list). An MP4/MOV
output hides them with its edit list, which its muxer writes from the first packet's time and the
last one's end: those are put on the sample clock here, where Matroska's millisecond clock rounded
them (an AC-3 delay of 5.333 ms read as 5 ms played 16 samples late). A Matroska output cannot mark a
start with PyAV's FFmpeg (`lead_in`)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import av
from av.packet import PacketSideData

from dove_cli.video_io.formats import ff_round

# Samples that every packet of a codec holds a multiple of (Opus's 2.5 ms frames at 48 kHz, AC-3's
# 256-sample blocks): a time that a coarser clock rounded is put back on them
GRANULES = {"aac": 1024, "ac3": 256, "eac3": 256, "mp2": 1152, "mp3": 576, "opus": 120}
# Samples a decoder needs before the first one it should play to play that one right, a packet at
# least: each frame of these overlaps the one before (RFC 7845 asks 80 ms for Opus); other codecs'
# (PCM, FLAC, ALAC) decode on their own
PREROLL = {"aac": 1, "ac3": 1, "eac3": 1, "mp2": 1, "mp3": 1, "opus": 3840, "vorbis": 1}
# Containers whose edit list hides samples at a track's start and end exactly
EDIT_LISTS = ("mp4", "mov")


def skip_samples(p: av.Packet) -> tuple[int, int]:
    """The samples packet `p` says are not played (AV_PKT_DATA_SKIP_SAMPLES): at its start, at its end."""
    if not p.has_sidedata("skip_samples"):
        return 0, 0
    data = bytes(p.get_sidedata("skip_samples"))
    return int.from_bytes(data[:4], "little"), int.from_bytes(data[4:8], "little")


def lead_in(skip: int, durations: list[int], preroll: int) -> int:
    """How many of a stream's first packets (`durations`, in samples) lie wholly in the `skip` samples
    its start hides, less those kept for the decoder (`preroll` samples, whole packets): what an
    output that cannot hide them leaves out. An AAC track's priming is its first packet: none; an
    ffmpeg -ss -c copy cut 394 ms into a second of AAC leaves 16 packets out, keeping 46 ms."""
    ends, total = [], 0
    for d in durations:
        total += d
        ends.append(total)
    before = sum(1 for end in ends if end <= skip)  # wholly before the first sample played
    kept = 0
    while kept < before and sum(durations[before - kept : before]) < preroll:
        kept += 1
    return max(0, before - kept)


class AudioClock:
    """The times an audio stream's copied packets get: `drop` first packets left out (`lead_in`);
    into MP4/MOV, times on the sample clock where the input's (Matroska's 1 ms) is coarser, and the
    end an MP4/MOV input's edit list gives (its last packet's padding) kept as the last one's duration."""

    def __init__(self, s: Any, fmt_name: str, container: str, drop: int = 0) -> None:
        cc = s.codec_context
        self._rate = cc.sample_rate or 0
        self._exact = fmt_name in EDIT_LISTS and self._rate > 0 and s.time_base is not None
        tick = Fraction(s.time_base or 0) * self._rate  # samples a tick of the input's clock holds
        granule = cc.frame_size or GRANULES.get(cc.codec.canonical_name, 0)
        self._granule = granule if granule > 2 * tick else 0  # a tick of rounding, under half a granule
        self._tick = tick
        self._coarse = tick > 1
        self._end: int | None = None  # where an MP4/MOV input's edit list ends the stream, in its time base
        if "mov" in container.split(",") and s.start_time is not None and s.duration:
            self._end = s.start_time + s.duration
        self._base: int | None = None  # the first packet's time, in samples
        self._side: PacketSideData | None = None  # skip-samples side data to copy: PyAV makes none new
        self._drop = drop
        self._preroll = PREROLL.get(cc.codec.canonical_name, 0)

    def take(self, p: av.Packet) -> bool:
        """Time packet `p` (one of the stream's, in order); False: it is left out."""
        if self._side is None and p.has_sidedata("skip_samples"):
            self._side = PacketSideData.from_packet(p, "skip_samples")
        if self._drop and p.size:
            self._drop -= 1
            return False
        if p.pts is None or not p.time_base:
            return True
        pts, duration = p.pts, p.duration or 0
        if self._end is not None and pts >= self._end and self._exact:
            return False  # after the end of the input's edit list: not played
        if self._end is not None and pts < self._end < pts + duration:
            self._pad_end(p, pts, duration, self._end)
        if self._exact and self._coarse:
            self._on_samples(p, pts, p.duration or 0)
        return True

    def leads_in(self, p: av.Packet, start: int) -> bool:
        """Whether packet `p`, which starts before `start` (a --preview's, in its time base), is kept:
        into MP4/MOV, whose edit list hides all before `start`, the one that holds it and those the
        decoder needs before it (`PREROLL`, one packet at least), so that the sound starts there."""
        pts, duration = p.pts, p.duration
        if not self._exact or not duration or pts is None or not p.time_base:
            return False
        preroll = math.ceil(Fraction(self._preroll, self._rate) / Fraction(p.time_base))
        return pts + duration + (max(duration, preroll) if preroll else 0) > start

    def _pad_end(self, p: av.Packet, pts: int, duration: int, end: int) -> None:
        """Play packet `p` (at `pts`, `duration` long) to `end` (in its time base) only: into MP4/MOV its duration (the edit list
        ends there), into Matroska its padding (DiscardPadding, written from the packet's skip-samples
        side data, copied from the stream's first: PyAV makes none new)."""
        if self._exact:
            p.duration = end - pts
        elif self._side is not None:
            padding = ff_round((pts + duration - end) * Fraction(p.time_base) * self._rate)
            self._side.update(bytes(4) + padding.to_bytes(4, "little") + bytes(2))
            self._side.to_packet(p)

    def _on_granules(self, samples: int) -> int:
        """`samples`, which the input's clock rounded (a time once, a duration twice: by a tick at most),
        as the whole number of granules it is; as it is where none is that near (a splice, a shortened
        last packet)."""
        whole = self._granule * ff_round(Fraction(samples, self._granule)) if self._granule else samples
        return whole if abs(whole - samples) <= self._tick else samples

    def _on_samples(self, p: av.Packet, pts: int, duration: int) -> None:
        """Put `p`'s time (`pts`) and `duration` on the sample clock. Matroska's demuxer gives the first packet its
        block's time less the codec delay, rounded to the millisecond: the first sample played lies at
        the block's time, exactly. Later packets lie a whole number of granules on, their last one's
        padding (DiscardPadding) is cut from its duration."""
        tb, rate = Fraction(p.time_base), self._rate
        start, end = skip_samples(p)
        at = ff_round(pts * tb * rate)
        if self._base is None:
            at = ff_round((pts + ff_round(Fraction(start, rate) / tb)) * tb * rate) - start
            self._base = at
        else:
            at = self._base + self._on_granules(at - self._base)
        samples = self._on_granules(ff_round(duration * tb * rate) + end) - end if duration else 0
        p.time_base = Fraction(1, rate)
        p.pts = p.dts = at
        if samples > 0:
            p.duration = samples
