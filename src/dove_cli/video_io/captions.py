"""Closed captions (EIA-608/708 carried in the video, A/53 user data) from decoded frames to the writer.

PyAV cannot attach side data to a frame it encodes, but its reformat copies a frame's properties,
side data included (av_frame_copy_props), onto the frame it makes. So a caption travels as a 2x2
"carrier" frame made from the decoded one; the writer makes the frame it encodes from that
(`ContainerWriter._with_captions`), and libx264/x265 write the captions back as A/53 SEI.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

import av
from av.video.reformatter import VideoReformatter

from dove_cli.video_io.formats import side_data


def has_captions(frame: av.VideoFrame) -> bool:
    """Whether a decoded frame carries closed captions: EIA-608/708 (CEA-708 cc_data) that the
    decoder found in its A/53 user data (H.264/HEVC SEI, MPEG-2 user data), as FFmpeg's A53_CC side
    data (what ffmpeg's `movie=IN[out+subcc]` source reads as a subtitle stream)."""
    return "A53_CC" in side_data(frame)


# A/53 closed captions are user data in the coded video: H.264/HEVC SEI registered by ITU-T T.35
# (country 0xB5, provider 0x0031), MPEG-2 user_data (start code 0xB2), then "GA94" and type 3 (cc_data).
A53_MARKS = (b"\xb5\x00\x31GA94\x03", b"\x00\x00\x01\xb2GA94\x03")
# How much of the video `captions_in_packets` reads before a run: captions that start later (a
# broadcast recording from an advert or a gap) are found by the run itself, which says them at its end.
CAPTION_SCAN_S = 60
CAPTION_SCAN_BYTES = 32 << 20


def captions_in_packets(c: Any, s: Any) -> bool:
    """Whether video stream `s` of container `c` (opened for this) carries A/53 closed captions in
    its first CAPTION_SCAN_S seconds or CAPTION_SCAN_BYTES bytes: its packets' bytes are searched
    for the A/53 marks, nothing is decoded (a minute of 1080p H.264 reads in well under a second)."""
    read, t0 = 0, None
    for p in c.demux(s):
        data = bytes(p)
        if any(mark in data for mark in A53_MARKS):
            return True
        read += len(data)
        t = p.dts if p.dts is not None else p.pts
        if t is not None and p.time_base:
            t0 = t if t0 is None else t0
            if (t - t0) * p.time_base > CAPTION_SCAN_S:
                return False
        if read > CAPTION_SCAN_BYTES:
            return False
    return False


def caption_carrier(frame: av.VideoFrame, reformatter: VideoReformatter) -> av.VideoFrame | None:
    """A 2x2 grey frame with `frame`'s side data (its captions among them), or None when it has no
    captions. Two pixels, not the picture: a carrier per frame costs nothing."""
    if not has_captions(frame):
        return None
    return reformatter.reformat(frame, width=2, height=2, format="gray")


class CaptionRetimer:
    """Closed captions across a frame-rate change that drops frames (--deinterlace ivtc: decimate
    drops 1 frame in 5, and the caption bytes it carries; ffmpeg's own chain turns "HELLO BROADCAST"
    into "HELLO OADCT"). Every input frame's carrier goes instead through FFmpeg's fps filter at the
    output rate, whose caption FIFO (ccfifo) spreads every byte over the frames it makes, in order;
    the n-th of those goes with the n-th output frame (`pop`), so a caption moves by at most a frame.
    Carriers count one tick per input frame: a gap in the input shifts no caption."""

    def __init__(self, rate_in: Fraction, rate_out: Fraction) -> None:
        self._graph = av.filter.Graph()
        source = self._graph.add_buffer(width=2, height=2, format=av.VideoFormat("gray"), time_base=1 / rate_in)
        # (ccfifo takes the broadcast rates only: 24, 25, 30, their /1.001 and doubles)
        self._graph.link_nodes(source, self._graph.add("fps", str(rate_out)), self._graph.add("buffersink"))
        self._graph.configure()
        self._reformatter = VideoReformatter()
        self._ready: deque[Any] = deque()
        self._pushed = 0

    def push(self, frame: av.VideoFrame | None) -> None:
        """An input frame, in decoding order (None: the end)."""
        carrier = None
        if frame is not None:
            carrier = self._reformatter.reformat(frame, width=2, height=2, format="gray")
            carrier.pts, self._pushed = self._pushed, self._pushed + 1
        self._graph.push(carrier)
        while True:
            try:
                self._ready.append(self._graph.pull())
            except (av.BlockingIOError, av.EOFError):
                return

    def pop(self) -> av.VideoFrame | None:
        """The captions for the next output frame (a carrier, `caption_carrier`'s kind), or None."""
        if not self._ready:
            return None
        carrier = self._ready.popleft()
        return carrier if has_captions(carrier) else None
