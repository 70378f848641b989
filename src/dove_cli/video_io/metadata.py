"""The input's tags in the output: file tags (QuickTime keys included) and the start timecode.

FFmpeg's MOV/MP4 muxer writes the tags it knows (title, location, ...) into udta/ilst and drops
any other key, such as the `com.apple.quicktime.*` keys phones write; with `movflags
use_metadata_tags` it writes every key into an mdta `keys` atom instead. A start timecode is a
`timecode` tag on the video stream: the MOV/MP4 muxer makes a tmcd track of it, Matroska and NUT
keep it as a tag, MPEG-TS keeps no tags at all. The reel name that goes with it, a `reel_name` tag on
the video stream too, the MOV muxer writes into its tmcd track (the MP4 muxer does not), Matroska
and NUT keep as a tag.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
from fractions import Fraction
from typing import Any

import av

# Tags the muxer writes itself (the ftyp brands, the FFmpeg version): never copied.
MUXER_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder"})
# File tags dove reads, shows and copies: a real file has tens; one with tens of thousands (a crafted one)
# would print and copy them all. (FFmpeg's own reading of them grows as their square: its av_dict_set looks
# each new key up in those it has, about 11 s per opening at 32,000 Matroska tags; dove cannot cut that.)
MOST_TAGS = 1000
SLOW_TAGS = 10_000  # Matroska tags (`matroska.tag_count`) past which a run says it will be slow: ~1 s per opening
_NOT_COPIED = MUXER_TAGS | {"timecode"}
# Containers that keep neither file tags nor a timecode (MPEG-TS stores a service name and languages).
TAGLESS = frozenset({"mpegts"})
# The handler name FFmpeg's MOV/MP4 muxer gives a video track when told none. The tmcd track it makes
# of the video's timecode gets "TimeCodeHandler", or the video's handler name when told one (movenc
# reads the tmcd's handler name and reel name from the video stream's tags).
FFMPEG_VIDEO_HANDLER = "VideoHandler"
_TIMECODE = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d+)")


def file_tags(container: Any) -> dict[str, str]:
    """The container tags to copy: all but the muxer's own and the timecode (a video stream tag), the
    first `MOST_TAGS` of them (`tags_left` counts the rest)."""
    kept = (kv for kv in container.metadata.items() if kv[0].lower() not in _NOT_COPIED)
    return dict(itertools.islice(kept, MOST_TAGS))


def tags_left(container: Any) -> int:
    """How many of the container's tags `file_tags` leaves out, being past the first `MOST_TAGS`."""
    return max(0, sum(k.lower() not in _NOT_COPIED for k in container.metadata) - MOST_TAGS)


def get_tag(tags: dict[str, str], key: str) -> str | None:
    """A tag by name in any case (Matroska's are upper case)."""
    return next((v for k, v in tags.items() if k.lower() == key), None)


def find_timecode(container: Any, video: Any) -> str | None:
    """The input's start timecode: its video stream's, else the file's. (FFmpeg's MOV demuxer tags
    the video with the timecode of the tmcd track it refers to, and the file with that of a tmcd
    track no video refers to; `ffmpeg -timecode` tags a Matroska file.)"""
    for tags in (video.metadata if video is not None else {}, container.metadata):
        if tc := get_tag(tags, "timecode"):
            return tc
    return None


def find_reel(container: Any, video: Any) -> str | None:
    """The input's reel (tape, camera roll) name, which an NLE's conform or relink matches clips by
    along with their timecode: its video stream's `reel_name` (an MXF's, read from its source
    package; Matroska's REEL_NAME tag), else that of a timecode track (a MOV's tmcd, which FFmpeg's
    MOV demuxer reads it from). The MOV muxer writes the video's into the tmcd track it makes."""
    tracks = [s for s in container.streams if s.type == "data" and get_tag(s.metadata, "timecode")]
    for s in ([video] if video is not None else []) + tracks:
        if reel := get_tag(s.metadata, "reel_name"):
            return reel
    return None


def timecode_said(tc: str, reel: str | None) -> str:
    """`01:00:00:00`, or `01:00:00:00 (reel A001C003)`: a timecode as warnings and `dove info` name it."""
    return tc + (f" (reel {reel})" if reel else "")


def is_chapter_track(container: Any, stream: Any) -> bool:
    """Whether `stream` is the QuickTime chapter text track of a MOV/MP4 input: FFmpeg's MOV demuxer
    makes a chapter of each of its samples, then exposes it as a bin_data stream (mov.c,
    mov_read_chapters). The output has the chapters, and from the MOV/MP4 muxer a track of its own.
    Told from other data (a GoPro GPS track is bin_data too) by its samples' times being the chapters'
    starts; a PyAV without Stream.index_entries cannot show them: False, and the track is said."""
    chapters = container.chapters()
    samples = getattr(stream, "index_entries", None)
    if stream.type != "data" or stream.name != "bin_data" or not chapters or samples is None:
        return False
    starts = [(c["start"], c["time_base"]) for c in chapters]
    return [(e.timestamp, stream.time_base) for e in samples] == starts


def move_timecode(tc: str, fps_in: Fraction, fps_out: Fraction, frames: int) -> str | None:
    """The timecode of the output frame `frames` frames after the input frame timecoded `tc`.

    Counted as FFmpeg's libavutil/timecode.c does: at the rate rounded to whole frames, drop-frame
    (a separator other than ':' before the frames) skipping frame numbers 0 and 1 (0-3 at 60 fps)
    of each minute but every tenth, within 24 hours. fps_out differs from fps_in when fields become
    frames (--deinterlace field) and when 3:2 pulldown is undone (ivtc: 29.97 -> 23.976, the frame
    count times 4/5, non-drop, as no 24 fps timecode drops). None when `tc` is not HH:MM:SS:FF or
    the input's rate cannot be drop-frame (not a multiple of 30000/1001).
    """
    m = _TIMECODE.fullmatch(tc.strip())
    if m is None:
        return None
    r_in, r_out, drop_in = round(fps_in), round(fps_out), m[4] != ":"
    if not r_in or not r_out or (drop_in and r_in % 30):
        return None
    drop = drop_in and r_out % 30 == 0
    hh, mm, ss, ff = int(m[1]), int(m[2]), int(m[3]), int(m[5])
    start = (hh * 3600 + mm * 60 + ss) * r_in + ff
    if drop_in:
        minutes = 60 * hh + mm
        start -= r_in // 30 * 2 * (minutes - minutes // 10)
    n = round(Fraction(start * r_out, r_in)) + frames
    if drop:  # frame count -> timecode frame number, skipping the dropped numbers
        skip, per_10min = r_out // 30 * 2, r_out // 30 * 17982
        d, r = divmod(n, per_10min)
        n += 9 * skip * d + skip * (max(r - skip, 0) // (per_10min // 10))
    ff, ss, mm, hh = n % r_out, n // r_out % 60, n // (r_out * 60) % 60, n // (r_out * 3600) % 24
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:0{len(str(r_out - 1))}d}"


def mdta_keys(fmt_name: str, tags: dict[str, str]) -> list[str]:
    """The keys of `tags` that a MOV/MP4 file keeps only with movflags use_metadata_tags (mdta), that
    is those lost when written the default way: probed by writing a file to memory and reading it
    back, so that the answer is this FFmpeg's. Empty for other containers."""
    if fmt_name not in ("mov", "mp4") or not tags:
        return []
    return list(_lost_by_default(fmt_name, tuple(tags.items())))


@functools.lru_cache(maxsize=64)
def _lost_by_default(fmt_name: str, items: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt_name) as out:
        out.metadata.update(dict(items))
        vs: Any = out.add_stream("png", rate=25)
        vs.width, vs.height, vs.pix_fmt = 16, 16, "rgb24"
        out.start_encoding()
    buf.seek(0)
    with av.open(buf, metadata_errors="replace") as back:
        kept = {k.lower() for k in back.metadata}
    return tuple(k for k, _ in items if k.lower() not in kept)
