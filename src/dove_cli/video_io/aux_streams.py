"""The input's audio and subtitle streams in an output: what becomes of each (`plan_aux_streams`),
how the plan and the messages name them, the bitmap subtitles' own timing (PGS, DVD SPU, DVB: what
is still on screen at a --preview's start), and what the writer keeps track of while it copies
them (`AuxState`). `writer.ContainerWriter` opens the streams and muxes the packets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from dove_cli.video_io.audio_clock import AudioClock
from dove_cli.video_io.cues import Sequencer
from dove_cli.video_io.formats import (
    TEXT_SUBTITLES,
    VIDEO_EXTENSIONS,
    holds_aux,
    layout_name,
    lossless_target,
)
from dove_cli.video_io.metadata import get_tag

# The layout of N channels in no named order, as FFmpeg's av_channel_layout_default gives it (the
# ones both encoders of --audio transcode take).
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
PGS_SEGMENT_PCS = 0x16  # a PGS display set starts with its presentation composition segment
PGS_NEW_DISPLAY = 0xC0  # its composition state: an epoch start (0x80) or acquisition point (0x40) draws anew
SPU_ARGUMENTS = {0x00: 0, 0x01: 0, 0x03: 2, 0x04: 2, 0x05: 6, 0x06: 4}  # DVD SPU commands: their argument bytes
DVB_PAGE_COMPOSITION = 0x10  # a DVB subtitle segment: the page's time-out and regions


def is_pgs(s: Any) -> bool:
    """A Blu-ray (PGS) subtitle stream."""
    return bool(s.codec_context and s.codec_context.codec.canonical_name == "hdmv_pgs_subtitle")


def pgs_composition(data: bytes) -> tuple[int, int] | None:
    """(composition state, objects shown) of a PGS packet that starts a display set (its PCS: type,
    size, width, height, frame rate, number, state, palette update, palette, object count), else
    None (a .sup's packet is one segment: the others of the set follow)."""
    if len(data) < 14 or data[0] != PGS_SEGMENT_PCS:
        return None
    return data[10], data[13]


def track_said(s: Any) -> str:
    """An input audio track as the plan and the messages name it: `#1 pcm_s24le 5.1 96 kHz 'Dub'`
    (the codec, not its decoder: mp3, not mp3float)."""
    cc, title = s.codec_context, get_tag(s.metadata, "title")
    rate = f" {cc.sample_rate / 1000:g} kHz" if cc.sample_rate else ""
    return f"#{s.index} {cc.codec.canonical_name} {layout_name(cc.layout)}{rate}" + (f" {title!r}" if title else "")


def encoded_as(ostream: Any) -> str:
    """What an opened audio encoder's stream makes: `aac 5.1 at a nominal 341 kb/s` (FFmpeg's default
    rate for its channels, which the encoder aims at)."""
    cc = ostream.codec_context
    rate = f" at a nominal {round(cc.bit_rate / 1000)} kb/s" if cc.bit_rate else ""
    return f"{cc.codec.canonical_name} {layout_name(cc.layout)}{rate}"


def bitmap_shown_s(codec: str, data: bytes) -> float | None:
    """How long a DVD or DVB subtitle packet keeps its picture on screen, in seconds from its time:
    a DVD SPU's stop command's delay (its control sequences: a delay, the next one's offset, commands),
    a DVB page's time-out (its page composition segment); 0 where it shows nothing (a DVB page of no
    regions clears the screen); None where it does not say (shown until the next one)."""
    if codec == "dvd_subtitle" and len(data) >= 4:
        at, seen = int.from_bytes(data[2:4], "big"), set()
        while at + 4 <= len(data) and at not in seen:
            seen.add(at)
            delay, following, i = (
                int.from_bytes(data[at : at + 2], "big"),
                int.from_bytes(data[at + 2 : at + 4], "big"),
                at + 4,
            )
            while i < len(data) and data[i] != 0xFF:
                if data[i] == 0x02:  # stop display
                    return delay * 1024 / 90000
                if data[i] not in SPU_ARGUMENTS:
                    return None
                i += 1 + SPU_ARGUMENTS[data[i]]
            at = following
        return None
    if codec == "dvb_subtitle":
        i = 2 if data[:2] == b"\x20\x00" else 0  # after a PES's data_identifier and stream id (not in .mkv)
        while i + 6 <= len(data) and data[i] == 0x0F:
            kind, length = data[i + 1], int.from_bytes(data[i + 4 : i + 6], "big")
            if kind == DVB_PAGE_COMPOSITION and length >= 2:
                return float(data[i + 6]) if length > 2 else 0.0  # its time-out; no regions: a clear
            i += 6 + length
    return None


def holders(streams: list[Any], own: str) -> list[str]:
    """The output extensions other than `own` whose container takes every audio and subtitle stream of
    `streams`: as a copy, or converted without a loss dove would warn of (text subtitles to the
    container's own text codec, disc LPCM losslessly: `lossless_target`)."""

    def takes(ext: str, s: Any) -> bool:
        text = bool(s.codec_context.codec.text_sub) and VIDEO_EXTENSIONS[ext] in TEXT_SUBTITLES
        return text or holds_aux(ext, s) or (s.type == "audio" and lossless_target(ext, s) is not None)

    return sorted(ext for ext in VIDEO_EXTENSIONS if ext != own and all(takes(ext, s) for s in streams))


@dataclass(frozen=True)
class AuxDecision:
    """What becomes of one of the input's audio or subtitle streams in the output (`plan_aux_streams`).

    mode: "copy" (packet for packet), "subtitles" (text subtitles converted to the container's text
    codec, `encoder`), "transcode" (--audio transcode: re-encoded by `encoder`), "lossless" (disc
    LPCM the container cannot hold, converted to `encoder` in `sample_format`: the same samples) or
    "refused" (the container cannot hold it: the writer refuses the output)."""

    stream: Any  # the input's
    mode: str
    encoder: str = ""
    sample_format: str | None = None

    @property
    def codec(self) -> str:
        """The input stream's codec (mp3, not its decoder mp3float)."""
        return str(self.stream.codec_context.codec.canonical_name)

    @property
    def encodes(self) -> bool:
        """Whether an encoder makes the output's packets (flushed at close)."""
        return self.mode in ("transcode", "lossless")

    def fate(self, ostream: Any) -> str:
        """What becomes of an audio stream kept, as the plan says it (`audio_plan`), once its output
        stream `ostream` is open (an encoder's says what it makes: `encoded_as`)."""
        if self.mode == "transcode":
            return f"re-encoded to {encoded_as(ostream)}"
        if self.mode == "lossless":
            return f"converted losslessly to {self.encoder} (the same samples)"
        return "copied"


def plan_aux_streams(wanted: list[Any], ext: str, audio: str) -> list[AuxDecision]:
    """What becomes of each of the input's audio and subtitle streams in `wanted` (in that order) in
    files named `.ext`, with --audio `audio` (copy, transcode). A stream the container holds is
    copied; --audio transcode re-encodes every audio stream to AAC (Opus for .webm), but one already
    so, which a second lossy encode would only make worse; text subtitles the container cannot hold
    become its text codec; disc LPCM is converted losslessly (`lossless_target`); anything else is
    refused. Nothing is opened or said here: `ContainerWriter._open_aux` and `_say_aux` do that."""
    fmt_name = VIDEO_EXTENSIONS[ext]
    target = "libopus" if fmt_name == "webm" else "aac"  # what --audio transcode makes
    decisions = []
    for s in wanted:
        canonical = s.codec_context.codec.canonical_name
        recode = s.type == "audio" and audio == "transcode" and canonical != av.Codec(target, "w").canonical_name
        if not recode and holds_aux(ext, s):
            decisions.append(AuxDecision(s, "copy"))
        elif s.type == "subtitle" and s.codec_context.codec.text_sub and fmt_name in TEXT_SUBTITLES:
            decisions.append(AuxDecision(s, "subtitles", TEXT_SUBTITLES[fmt_name]))
        elif s.type == "audio" and audio == "transcode":
            decisions.append(AuxDecision(s, "transcode", target))
        elif s.type == "audio" and (same := lossless_target(ext, s)):
            decisions.append(AuxDecision(s, "lossless", *same))
        else:
            decisions.append(AuxDecision(s, "refused"))
    return decisions


@dataclass
class AuxState:
    """What `ContainerWriter` keeps track of while it copies the audio and subtitle streams, from
    `_setup_aux` to its close: each stream's output and mode, the packets still to copy, the times
    of those it dropped, moved or the muxer refused (said at close), the mov_text cues in waiting and
    the bitmap subtitles on screen at a --preview's start."""

    streams: dict[int, tuple[Any, str]] = field(default_factory=dict)  # input stream index -> (output stream, mode)
    clocks: dict[int, AudioClock] = field(default_factory=dict)  # input stream index -> its copied packets' times
    # output stream index -> in its time base, the last dts muxed, the latest of those given to `_mux_aux` that it
    # muxed (before a move), and the dts given with the packet just before (muxed or not)
    dts: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    disorder: dict[int, list[float]] = field(default_factory=dict)  # input stream -> times of packets dropped or moved
    damaged: dict[int, list[float]] = field(default_factory=dict)  # input stream -> times of audio the muxer refused
    unplaced: dict[int, int] = field(default_factory=dict)  # input stream -> WebVTT cues whose settings mov_text drops
    sequencers: dict[int, tuple[Sequencer, Fraction]] = field(default_factory=dict)  # input stream -> mov_text cues, tb
    held_bitmaps: dict[int, list[av.Packet]] = field(default_factory=dict)  # input stream -> on screen at the start
    # the packets of the streams kept, in order (`ContainerWriter._start_aux`); None: all copied
    packets: Iterator[av.Packet] | None = None
    pending: av.Packet | None = None  # the next of them, read but not yet due

    def hold_pgs(self, p: av.Packet) -> None:
        """Keep a PGS packet from before a preview's start that may be on screen there: a display set
        has no duration, it shows until the next one. What a new display (an epoch start or an
        acquisition point: its objects and palette whole) and the sets after it draw is kept, for
        `take_held` to give at the start."""
        held = self.held_bitmaps.setdefault(p.stream.index, [])
        composition = pgs_composition(bytes(p))
        if composition is not None and composition[0] & PGS_NEW_DISPLAY:
            held[:] = [p]
        elif held:  # a set that changes the display before it, or the rest of a set (a .sup's segments)
            held.append(p)

    def hold_bitmap(self, p: av.Packet, seconds: Fraction, start: Fraction) -> None:
        """Keep a DVD or DVB subtitle packet from before a preview's `start` (at `seconds`) that is still
        on screen there (`bitmap_shown_s`), with any others of its time, for `take_held` to give at
        the start; one that is over by then, or clears the screen, leaves nothing held."""
        held = self.held_bitmaps.setdefault(p.stream.index, [])
        if held and held[0].pts != p.pts:
            held.clear()
        shown = bitmap_shown_s(p.stream.codec_context.codec.canonical_name, bytes(p))
        if shown is None or seconds + Fraction(shown) > start:
            held.append(p)

    def take_held(self, source: int, first: av.Packet | None) -> list[av.Packet]:
        """The bitmap subtitles held for input stream `source` (`hold_pgs`, `hold_bitmap`), no longer
        held, to show at the output's start: none where they show nothing (PGS: its last set) or
        the stream's first packet in the span (`first`; None: there is none) replaces them there."""
        held = self.held_bitmaps.pop(source, [])
        if not held or (first is not None and not first.pts):
            return []
        composition = next((c for c in map(pgs_composition, map(bytes, reversed(held))) if c is not None), None)
        if is_pgs(held[0].stream) and (composition is None or not composition[1]):
            return []
        return held
