"""Decoding: video files to RGB frames with their exact timestamps (`VideoReader`); `open_reader`, the one entry
point, opens image sequences and still images too (image_reader.py: `ImageReader` extends `VideoReader`).

Frames are streamed (one decoded frame at a time, never the whole video) as RGB numpy arrays with
their original presentation timestamps and time base, so that a writer can give them back exactly
(a frame with the timestamp of the frame before is moved 1 tick after it, and said: `_report_moved`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import math
import os
import re
import stat
import time
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from dove_cli.errors import DecodeError, InputError, OptionError
from dove_cli.humanize import counted
from dove_cli.video_io.cadence import (
    SAMPLE_FRAMES,
    Grid,
    RateJudgement,
    fit_grid,
    judge_rate,
    packet_pts,
    sample_pts,
    stream_rate,
)
from dove_cli.video_io.captions import CaptionRetimer, caption_carrier, captions_in_packets, has_captions
from dove_cli.video_io.continuity import continuous_packets
from dove_cli.video_io.deep import exact_rgb48, rgb48_gain
from dove_cli.video_io.fields import FIELD_ORDERS, FieldOrder, advice, order_warning, parity, scan_fields
from dove_cli.video_io.formats import (
    MP4_COVERS,
    PRIMARIES,
    RANGE,
    SPACE,
    SWS_MATRIX,
    SWS_NAMES,
    TO_RGB_FLAGS,
    TRC,
    UNTAGGED_COLORS,
    assumed_matrix,
    bare_stream,
    check_untagged_color,
    check_untagged_matrix,
    ff_round,
    ffmsg,
    is_yuv,
    side_data,
)
from dove_cli.video_io.hdr import Mastering, dynamic_hdr, light_level_of, mastering_of
from dove_cli.video_io.matroska import tag_count, unfinished
from dove_cli.video_io.metadata import SLOW_TAGS
from dove_cli.video_io.paths import check_not_windows, ffmpeg_name, why_missing
from dove_cli.video_io.sequences import DEFAULT_SEQUENCE_FPS, runs, span_indices
from dove_cli.video_io.siting import chroma_siting
from dove_cli.video_io.stills import turned_pixels

log = logging.getLogger("dove_cli.video_io")

DEINTERLACE_MODES = ("off", "frame", "field", "ivtc")
# Inverse telecine, the chain FFmpeg's docs give: fieldmatch puts each film frame's two fields back
# together (combmatch=full: and flags the frames it cannot, an orphan field at an edit), yadif
# deinterlaces only those, and decimate drops the one repeated frame of every IVTC_CYCLE. (yadif, not
# bwdif: bwdif's frames at the ends differ between FFmpeg versions, and this chain's are ffmpeg's.)
# Both take the fields in an order (`fields.parity`: a file flagged wrongly gave repeated and missing film frames).
IVTC_FILTERS = "fieldmatch=order={order}:combmatch=full,yadif=mode=send_frame:parity={order}:deint=interlaced,decimate"
IVTC_CYCLE = 5
# Frames out per frame in, by --deinterlace mode.
DEINTERLACE_RATE = {"off": Fraction(1), "frame": Fraction(1), "field": Fraction(2), "ivtc": Fraction(4, 5)}
# A container's field orders (FFmpeg's AVFieldOrder) that say the video is interlaced: TT, BB, TB, BT.
INTERLACED_FIELD_ORDERS = (2, 3, 4, 5)
ERROR_WINDOW = 64  # packets a frame-threaded decoder may report an error late by (FFmpeg's auto threads: <= 16)
SHOWN_RANGES = 8  # frame ranges one warning lists
# A jump between two frames of a constant-rate video more than this many frame durations long is a
# stretch lost from the input (damage the demuxer skipped): said and counted, with the timing kept.
GAP_FRAMES = 5
SHOWN_GAPS = 3  # of those, said one by one; the rest in one line at the end (a damaged capture may have many)
# Bytes in a row of a Matroska file that no packet holds, from which on the demuxer skipped damage there
# (a cluster's own header is a few dozen bytes; a disk's sector 512): a frame a variable-rate recording
# holds leaves none, its sound goes on (`skipped_bytes`).
DAMAGE_BYTES = 512
# A video file whose container gives no frame count (Matroska, WebM, MPEG-TS, FLV) has its packets
# counted before a run (`cheap_to_count`), for its plan, progress and time left: a variable-rate screen
# recording's duration x nominal rate was 3x its frames. Up to these sizes, about 10 s (a 54,000-frame
# .mkv took 1.1-1.7 s, 2 GB of large packets 0.8 s, read from the page cache on a busy 2-core machine).
COUNT_MAX_FRAMES = 500_000  # (estimated: 2.3 hours at 60 fps)
COUNT_MAX_BYTES = 8 << 30
# Seconds an input that may still be being written (`VideoInfo.unfinished`, `VideoInfo.open_ended`) must
# have gone unchanged at the end of its run: a Matroska muxer writes a recording in clusters of 5 s
# (FFmpeg's, OBS's), an MPEG-TS one 32 KiB at a time, so that a short run could begin and end between
# two writes, and keep a part of a recording as if it were all of it (resume.Session.check_input).
UNFINISHED_QUIET_S = 6.0
IGNORE_HINT = "use --ignore-decode-errors to keep what can be read"  # a DecodeError's advice (dove eval has its own)
# A file whose demuxer stops with more than this share of it, and UNREAD_MIN_BYTES, left after its last
# packet (but for an MP4's index boxes, written last) stopped at damage it took for the end (a fragmented
# MP4's zeroed moof): cut short as one whose header promises more. Good files leave under 1% and 3 KB
# (an MPEG-TS's last tables, a Matroska's cues, an AVI's idx1 of a 1 s clip).
UNREAD_SHARE = Fraction(1, 100)
UNREAD_MIN_BYTES = 8 << 10
# MP4/MOV top-level boxes of media: after the last packet read, they were not read.
MP4_MEDIA_BOXES = (b"mdat", b"moof")


@dataclass
class VideoInfo:
    """What a reader yields: size after optional rotation, timing in the stream's own time base."""

    path: Path
    width: int
    height: int
    num_frames: int  # exact when `num_frames_exact`, else an estimate from the duration
    fps: Fraction  # average rate; the writer uses it only as a rate-control hint
    time_base: Fraction
    start_pts: int = 0
    stream_index: int = 0  # the video stream read (its index in the file): the writer copies its tags
    bit_depth: int = 8
    pix_fmt: str = "rgb24"
    codec: str = ""
    container: str = ""
    color_range: str | None = None  # "tv" (limited) | "pc" (full) | None
    color_primaries: str | None = None
    color_trc: str | None = None
    colorspace: str | None = None  # the YUV matrix, FFmpeg names ("bt709", "smpte170m", ...)
    chroma_location: str | None = None  # where subsampled chroma sits, as read (`chroma_siting`); None: not subsampled
    mastering: Mastering | None = None  # HDR10's static metadata (`hdr`), which video outputs keep where they can
    light_level: tuple[int, int] | None = None  # MaxCLL, MaxFALL (cd/m²)
    dynamic_hdr: tuple[str, ...] = ()  # "HDR10+", "Dolby Vision profile 8.1": never kept (`hdr.metadata_lost`)
    rotation: int = 0  # degrees counter-clockwise a player applies (display matrix); 0 when applied
    mirrored: bool = False  # the display matrix also mirrors it left-right, after the turn; False when applied
    sample_aspect_ratio: Fraction | None = None
    interlaced: bool = False  # the first frame, or the container, says so
    # the order --deinterlace takes the fields in (`fields.parity`), where it is not each frame's own flag
    field_order: FieldOrder | None = None
    captions: bool = False  # the video carries closed captions (`has_captions`, `captions_in_packets`)
    has_subtitles: bool = False
    has_audio: bool = False
    attachments: tuple[str, ...] = ()  # names of Matroska attachments (fonts for styled subtitles) and cover art
    covers: tuple[str, ...] = ()  # those that are cover art MP4 holds too (MP4_COVERS)
    fonts: tuple[str, ...] = ()  # those that are fonts (`is_font`)
    is_image_sequence: bool = False
    is_still_image: bool = False
    num_frames_exact: bool = False
    duration: float | None = None  # seconds
    # A Matroska file whose header lacks what a muxer writes at its end (`matroska.unfinished`): still
    # being recorded, or its recorder crashed; a run watches it a little longer (resume.Session.check_input)
    unfinished: bool = False
    # Its container has nothing written at its end (`open_ended`: MPEG-TS, a fragmented MP4, FLV, a bare
    # .h264 ...), so a recording still being written reads as a whole one: watched as `unfinished` is.
    open_ended: bool = False
    # The rate its timestamps step at (FFmpeg's guessed rate): frames lost from a .mp4 lower its
    # average (`fps`), not this; images step at their rate exactly (`fps`).
    base_fps: Fraction | None = None
    # Where the frames of a constant-rate video lie (`cadence.fit_grid`): an output in a finer clock than
    # the input's places them there, at exact steps; None for a variable rate, images and a clock that
    # holds the rate exactly.
    grid: Grid | None = None
    # Its frames step unevenly (`VideoReader.judged_rate`, judged for a plan only): each keeps its own time.
    variable_rate: bool = False
    rate_sample: int = 0  # the first frames that judgement read, where it read no more (`RateJudgement.sampled`)
    # Where the file starts on the frames' timeline, in seconds (`file_start`): its clock's 0, which
    # players and `ffmpeg -ss` count from, and a --preview's START too; None: the first frame (images).
    file_start: Fraction | None = None
    files: list[Path] = field(default_factory=list, repr=False)  # image inputs only
    # Image inputs (the first image's, `stills.still_tags`): its EXIF orientation (1: as stored; the turn is
    # `rotation`/`mirrored`, or applied), pages (a multi-page TIFF: only the first is read), ICC profile, DPI,
    # and a TIFF's compression as FFmpeg's tiff encoder names it (raw, packbits, lzw, deflate), which a TIFF output keeps.
    orientation: int = 1
    pages: int = 1
    icc_profile: bytes | None = field(default=None, repr=False)
    dpi: tuple[float, float] | None = None
    tiff_compression: str | None = None

    @property
    def dtype(self) -> type:
        """numpy dtype of `Frame.rgb`: uint16 (full 0..65535 scale) for >8-bit sources."""
        return np.uint16 if self.bit_depth > 8 else np.uint8

    @property
    def is_images(self) -> bool:
        """Read from image files (a sequence or one still): no streams, times or tags of its own."""
        return self.is_image_sequence or self.is_still_image

    def seconds(self, pts: int) -> float:
        """A timestamp (in `time_base`) as seconds from the first frame."""
        return float((pts - self.start_pts) * self.time_base)

    def on_clock(self, pts: int) -> float:
        """A timestamp (in `time_base`) as seconds on the file's clock (`lead` before the first frame), as
        ffprobe, players and --preview count: what a warning names a frame's time in."""
        return float((pts - self.start_pts) * self.time_base + self.lead)

    def slot(self, pts: int) -> int:
        """The frame at a timestamp (in `time_base`): its place from the first frame, 0 on, at the average rate."""
        return round((pts - self.start_pts) * self.time_base * Fraction(self.fps or DEFAULT_SEQUENCE_FPS))

    @property
    def lead(self) -> Fraction:
        """Seconds from the file's start (`file_start`) to the first frame: a video that starts after
        its sound (1.5 s in: `ffmpeg -itsoffset`). 0 within the microsecond FFmpeg rounds the file's to."""
        if self.file_start is None:
            return Fraction(0)
        lead = Fraction(self.start_pts) * self.time_base - self.file_start
        return lead if lead >= Fraction(1, av.time_base) else Fraction(0)

    def span_frames(self, start: float | Fraction, duration: float | Fraction | None) -> int:
        """The frames of the whole video in a span (start <= t < start + duration, seconds on the file's
        clock: `lead` before the first frame), at its average rate: from the first frame at or after
        `start`, not one more when `start` falls between two (a --preview's plan counted 48 of the 47 it made)."""
        fps = Fraction(self.fps or DEFAULT_SEQUENCE_FPS)
        total = self.num_frames or round(exact(self.duration or 0) * fps)
        at = exact(start) - self.lead  # from the first frame
        return len(span_indices(total, fps, at, None if duration is None else exact(duration)))


def exact(seconds: float | Fraction) -> Fraction:
    """Seconds as a fraction, a float as it is written (0.3 is 3/10, not 0.29999...)."""
    return Fraction(str(seconds)) if isinstance(seconds, float) else Fraction(seconds)


def orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """How players show a decoded frame, from its display matrix: degrees turned counter-clockwise,
    in (-180, 180], then whether mirrored left-right (`set_display_rotation(degrees, hflip=...)`
    writes it back). PyAV's `frame.rotation` reads a mirror as a turn: a plain mirror as -180."""
    if not (listed := side_data(frame)):  # none, or unlisted: PyAV's own reading (a mirror, -180, is lost)
        return (frame.rotation, False) if frame.rotation in (90, -90, 180) else (0, False)
    sd: Any = listed.get("DISPLAYMATRIX")
    if sd is None:
        return 0, False
    a, b, _, c, d = np.frombuffer(bytes(sd), "<i4")[:5].tolist()  # 16.16 fixed point, row-major 3x3
    mirrored = a * d - b * c < 0  # a mirror turns the determinant's sign; unmirror the x column
    degrees = -round(math.degrees(math.atan2(b, -a if mirrored else a))) % 360  # as av_display_rotation_get
    return (degrees - 360 if degrees > 180 else degrees), mirrored


def display_size(width: int, height: int, sample_aspect_ratio: Fraction | None, rotation: int) -> tuple[int, int]:
    """The size players show a stored picture at: non-square pixels widened, a quarter turn
    swapping the sides."""
    w = round(width * sample_aspect_ratio) if sample_aspect_ratio else width
    return (height, w) if rotation % 180 else (w, height)


@dataclass
class Frame:
    """One decoded frame: rgb [H, W, 3] uint8 (or uint16 for >8-bit), pts in info.time_base;
    captions: its closed captions for the writer to pass on (`caption_carrier`), else None."""

    rgb: np.ndarray
    pts: int
    index: int
    captions: av.VideoFrame | None = None


# ------------------------------------------------------------------------------------------ reading


def is_picture(s: Any) -> bool:
    """Cover art: FFmpeg shows a Matroska image attachment (or an MP4's covr) as a one-picture
    video stream with the attached_pic disposition. It is not the video."""
    return s.type == "video" and bool(s.disposition & av.stream.Disposition.attached_pic)


def is_empty_audio(s: Any) -> bool:
    """An audio stream with no sound in it: no channels, no sample rate (no frame was found). FFmpeg's
    MPEG-TS demuxer lists one beside each TrueHD track, for the AC-3 core a Blu-ray's may carry in the
    same PID (dove's and ffmpeg's .m2ts carry none); ffmpeg's stream selection never picks it, and
    neither does dove (`audio_streams`)."""
    cc = s.codec_context
    return s.type == "audio" and cc is not None and not cc.channels and not cc.sample_rate


def audio_streams(c: Any) -> list[Any]:
    """Container `c`'s audio streams but the empty ones (`is_empty_audio`)."""
    return [s for s in c.streams.audio if not is_empty_audio(s)]


def side_stream_rates(path: str | Path) -> dict[str, float]:
    """Bytes a second of each kind of stream but video ("audio", "subtitle") in `path`, where the
    container says (MP4 and MOV always, Matroska from mkvmerge's BPS tags): for the room an output
    that copies them needs. A header read; {} when it cannot be read."""
    rates: dict[str, float] = {}
    try:
        with av.open(ffmpeg_name(path), metadata_errors="replace") as c:  # (a name like `a:b.mp4` is no protocol)
            for s in c.streams:
                bps = (
                    getattr(s, "bit_rate", 0) or s.codec_context.bit_rate or int((s.metadata or {}).get("BPS", 0) or 0)
                )
                if s.type in ("audio", "subtitle") and bps:
                    rates[s.type] = rates.get(s.type, 0.0) + bps / 8
    except (av.FFmpegError, OSError, ValueError):
        return {}
    return rates


def picture_bytes(c: Any, s: Any) -> bytes:
    """Cover art's bytes (`is_picture`): the one packet its stream has, which the demuxer hands out
    first from the start."""
    c.seek(0)
    return next((bytes(p) for p in c.demux(s) if p.size), b"")


def attachment_streams(c: Any) -> list[Any]:
    """A container's attachments: fonts (attachment streams) and cover art (`is_picture`)."""
    return [s for s in c.streams if s.type == "attachment" or is_picture(s)]


FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2", ".pfb", ".fon")


def is_font(s: Any) -> bool:
    """Whether attachment stream `s` is a font: by its MIME type (font/ttf, application/x-truetype-font,
    application/vnd.ms-opentype...) or, where that is a generic one, its file name."""
    if s.type != "attachment":
        return False
    mimetype = (s.metadata.get("mimetype") or s.mimetype or "").lower()
    return "font" in mimetype or "opentype" in mimetype or (s.name or "").lower().endswith(FONT_EXTENSIONS)


def attachment_name(s: Any) -> str:
    """An attachment's file name, as Matroska stores it (or its stream number)."""
    return (s.name if s.type == "attachment" else s.metadata.get("filename")) or f"#{s.index}"


def unread_tail(path: Path, index: int, last_pts: int) -> tuple[int, int] | None:
    """Where reading a video file stops (the end of its last packet of any stream, read from the keyframe
    before pts `last_pts` of video stream `index` on) and its size, when more of it lies unread than
    UNREAD_SHARE and UNREAD_MIN_BYTES (an MP4's index boxes after the media aside): a demuxer takes
    damage (a fragmented MP4's broken moof) for the end of the file. None otherwise, and for a pipe."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # (a pipe or device: nothing to measure, and opening it would read it)
            return None
        size = st.st_size
        with open(path, "rb") as f, av.open(f, "r", metadata_errors="replace") as c:
            mp4 = "mov" in c.format.name.split(",")
            c.seek(last_pts, stream=c.streams[index], backward=True)
            end = max((p.pos + p.size for p in c.demux() if p.pos is not None and p.pos >= 0 and p.size), default=0)
            read = f.tell()  # how far the demuxer read (its read-ahead too)
    except (av.FFmpegError, OSError, ValueError):
        return None
    if not _unread(read, size):  # read to (about) the end: packets without a position (TS audio) lie after `end`
        return None
    if mp4:
        end += _mp4_index_after(path, end, size)  # (a moov written last is no media left unread)
    return (end, size) if _unread(end, size) else None


def _unread(end: int, size: int) -> bool:
    """Whether reading that stops at byte `end` leaves too much of a file of `size` bytes (`unread_tail`)."""
    return end > 0 and size - end > max(Fraction(UNREAD_MIN_BYTES), size * UNREAD_SHARE)


def _mp4_index_after(path: Path, end: int, size: int) -> int:
    """Bytes of an MP4/MOV's top-level boxes that hold no media (moov, mfra, free ...) wholly after byte
    `end`, walked from the start up to the first box that does not parse (damage) or run past the end."""
    found, at = 0, 0
    with open(path, "rb") as f:
        while at + 8 <= size:
            f.seek(at)
            head = f.read(16)
            n, kind = int.from_bytes(head[:4], "big"), head[4:8]
            n = int.from_bytes(head[8:16], "big") if n == 1 else size - at if n == 0 else n
            if n < 8 or at + n > size or not all(32 <= b < 127 for b in kind):
                break
            if at >= end and kind not in MP4_MEDIA_BOXES:
                found += n
            at += n
    return found


def unread_said(stop: tuple[int, int]) -> str:
    """'reading stops at byte 70099 of 154945 (55% of the file unread: damaged?)' (`unread_tail`)."""
    end, size = stop
    return f"reading stops at byte {end} of {size} ({(size - end) / size:.0%} of the file unread: damaged?)"


def _cut_mp4_hint(path: Path, exc: BaseException) -> str:
    """An MP4/MOV whose index (moov, often written last) is missing: say it looks cut short. Only when
    FFmpeg found the data invalid: another failure (a protocol, a read error) says nothing of the index."""
    if not isinstance(exc, av.InvalidDataError):
        return ""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return ""
    return ("; it starts as an MP4/MOV but has no index: probably cut short (the index is often at the end): a "
            "recovery tool such as untrunc can rebuild it from a good recording made with the same settings; next "
            "time, record to .mkv or a fragmented MP4 (OBS: Hybrid or Fragmented MP4), which stay readable when cut "
            "short") if head[4:8] == b"ftyp" else ""  # fmt: skip


def probe(path: str | Path, *, fps: float | Fraction | None = None) -> VideoInfo:
    """Describe a video, image sequence or still image; decodes one frame to be sure it can."""
    with open_reader(path, fps=fps) as reader:
        return reader.info


def read_clip(path: str | Path, start: int, count: int, stride: int = 1) -> np.ndarray:
    """Frames start, start + stride, ... (`count` of them; 0 is the first) of a video or image as
    [count, H, W, 3], read as `dove upscale` reads them (`open_reader`'s defaults: untagged HD as
    BT.709, pixels as stored, uint16 on the full 0-65535 scale above 8 bits), so that training sees
    what inference is fed. A later `start` seeks to the keyframe before it (`_seek_before`, which
    steps back where a seek lands late), so a window late in a clip costs about what the first does;
    frames are counted from there one by one, a constant-rate clip's numbering.
    InputError when the file cannot be read or ends first."""
    frames: list[np.ndarray] = []
    try:
        with open_reader(path, warn=False, scan=False) as reader:
            info = reader.info
            if start > 0 and info.fps:  # the first frame at or after half a frame before frame `start`
                reader._select_span(info.lead + (start - Fraction(1, 2)) / Fraction(info.fps), None)
            for frame in itertools.islice(reader, 0, (count - 1) * stride + 1, stride):
                frames.append(frame.rgb)
    except DecodeError as exc:  # (training has no --ignore-decode-errors to advise)
        raise InputError(str(exc).removesuffix(f"; {IGNORE_HINT}")) from None
    if len(frames) < count:
        raise InputError(f"{path}: ended after {len(frames)} of {count} wanted frames")
    return np.stack(frames)


def open_reader(
    path: str | Path,
    *,
    fps: float | Fraction | str | None = None,
    rotate: str = "keep",
    ignore_decode_errors: bool = False,
    deinterlace: str = "off",
    field_order: str = "auto",
    start: float | Fraction | None = None,
    duration: float | Fraction | None = None,
    threads: int = 0,
    warn: bool = True,
    clock: Fraction | None = None,
    zero: Fraction | None = None,
    say_alpha: bool = True,
    untagged_matrix: str = "auto",
    untagged_color: str = "none",
    video_stream: int | None = None,
    scan: bool = True,
) -> VideoReader:
    """Open a video file, an image pattern (`frames/%06d.png`), a folder of images or one image.

    fps: frame rate for image inputs (default 25, as ffmpeg) and bare video streams (.h264, .hevc,
    .m2v: default the rate they state, else 25); other videos keep their own timestamps. rotate: "keep" leaves the pixels as stored and reports `info.rotation` for the
    writer to tag; "apply" turns the pixels upright. ignore_decode_errors: skip undecodable packets,
    count them in `reader.dropped_frames` and name them in one warning at the end. deinterlace:
    "frame" runs every frame of a video through FFmpeg's bwdif (one frame out per frame in, timing
    unchanged); "field" makes a frame of every field (double rate: 50i -> 50p, time base halved);
    "ivtc" undoes 3:2 pulldown (IVTC_FILTERS: 29.97 -> 23.976 frames/s, timed as ffmpeg times them).
    field_order: the order they take the fields in: auto (what FFmpeg's idet finds in the first
    frames where it is clear, else the frames' flags: `fields.parity`), tff or bff (over both).
    start/duration: only the frames in this span (seconds on the file's clock, from its start as
    players and `ffmpeg -ss` count them, not from the first frame where the video starts after its
    sound; seeks, so a preview does not decode what comes before).
    warn: log what the source has that the frames lose (alpha, interlacing, odd rotations); a second
    reader of the same file passes False so that each warning appears once. say_alpha: False says
    nothing of transparency, which `reader.transparent` records for a caller that words it itself
    (`dove eval`: ignored for scoring); True: the first frame's is said with `warn`, a later
    image's as it is read (a probe reads no further than the first).
    clock: the unit the output counts time in (`output_clock`; default the time base): a frame
    stored at the time of the frame before is moved one unit after it, and said. zero: where the
    output's time 0 lies, in seconds on the input's timeline (`writer.output_zero`), which that unit
    is counted from (default: `start`, else the input's 0); a reader that seeks (`start`) for a part
    of the output gives it, so that it counts as the reader of the whole output does. Both are a
    video's only: images are timed 1/fps apart from 0 and never moved, so an image input ignores them.
    untagged_matrix: the YUV matrix of a video without one (`formats.assumed_matrix`): auto (BT.709
    for HD, BT.601 for SD, as players guess), bt601 (as FFmpeg, decord and OpenCV read it) or bt709.
    untagged_color: the colour of an input without colour tags (`formats.UNTAGGED_COLORS`): none
    (left untagged), bt709, bt2020-pq or bt2020-hlg, which fill the tags it lacks (`declared`).
    video_stream: the index of the video stream to read (`dove info` and `ffmpeg -i` number them, as
    in #2 or 0:2), for a file with several (an MPEG-TS of several programmes); None: the first.
    scan: False for a reader that only wants the frames (`read_clip`, which training calls per sample):
    the scans that describe the file for a writer are skipped (`info.captions` then says only what the
    first frame carries, `info.grid` and `info.chroma_location` are None; captions after the first frame
    read up to a minute of packets). Images ignore it.
    """
    check_reader_options(untagged_matrix, untagged_color, rotate, deinterlace, field_order, start, duration)
    # (here, not at the top: image_reader imports this module, whose VideoReader its ImageReader extends)
    from dove_cli.video_io.image_reader import ImageReader, image_inputs

    files = image_inputs(Path(path))
    if files is not None:
        if warn:
            say_video_options_unused(path, deinterlace, video_stream)
        reader: VideoReader = ImageReader(Path(path), files, fps=fps, rotate=rotate, warn=warn, say_alpha=say_alpha,
                                          untagged_color=untagged_color, start=start, duration=duration)  # fmt: skip
    else:
        reader = VideoReader(
            Path(path),
            fps=Fraction(fps).limit_denominator(1001000) if fps else None,
            rotate=rotate,
            ignore_decode_errors=ignore_decode_errors,
            deinterlace=deinterlace,
            field_order=field_order,
            threads=threads,
            warn=warn,
            say_alpha=say_alpha,
            untagged_matrix=untagged_matrix,
            untagged_color=untagged_color,
            video_stream=video_stream,
            scan=scan,
            start=start,
            duration=duration,
            clock=clock,
            zero=zero,
        )
    return reader


def check_reader_options(
    untagged_matrix: str,
    untagged_color: str,
    rotate: str,
    deinterlace: str,
    field_order: str,
    start: float | Fraction | None,
    duration: float | Fraction | None,
) -> None:
    """OptionError for a value of `open_reader`'s that no input takes, before any file is opened."""
    check_untagged_matrix(untagged_matrix)
    check_untagged_color(untagged_color)
    if rotate not in ("keep", "apply"):
        raise OptionError(f"rotate must be 'keep' or 'apply', not {rotate!r}")
    if deinterlace not in DEINTERLACE_MODES:
        raise OptionError(f"--deinterlace {deinterlace!r} is not one of: {', '.join(DEINTERLACE_MODES)}")
    if field_order not in FIELD_ORDERS:
        raise OptionError(f"--field-order {field_order!r} is not one of: {', '.join(FIELD_ORDERS)}")
    if (start is not None and start < 0) or (duration is not None and duration <= 0):
        raise OptionError(f"invalid span: start={start}, duration={duration}")


def say_video_options_unused(path: str | Path, deinterlace: str, video_stream: int | None) -> None:
    """Warn that a video's options given for an image input change nothing (its images are read as they are)."""
    if deinterlace != "off":
        log.warning("%s: --deinterlace is for videos; images are taken as they are", path)
    if video_stream is not None:
        log.warning("%s: --video-stream is for video files; images are one picture each", path)


def declared(info: VideoInfo, colour: str, *, yuv_matrix: bool) -> None:
    """Fill the colour tags an input lacks from --untagged-color (`UNTAGGED_COLORS`; none: nothing):
    its primaries and transfer, and with `yuv_matrix` (YUV read with --untagged-matrix auto) the matrix
    that goes with them. Tags it has stay its own."""
    if colour not in UNTAGGED_COLORS:
        return
    primaries, trc, matrix = UNTAGGED_COLORS[colour]
    info.color_primaries = info.color_primaries or primaries
    info.color_trc = info.color_trc or trc
    if yuv_matrix and info.colorspace is None:
        info.colorspace = matrix


def shown_ranges(ranges: list[tuple[int, int]]) -> str:
    """'3-4, 6-8, 12': the first SHOWN_RANGES ranges of a warning, then '...'."""
    shown = [f"{a}-{b}" if b > a else f"{a}" for a, b in ranges[:SHOWN_RANGES]]
    return ", ".join(shown + ["..."] * (len(ranges) > SHOWN_RANGES))


def see_through(frame: av.VideoFrame) -> bool:
    """Real transparency: an alpha plane below opaque somewhere (GIFs and many PNGs carry one that
    is opaque everywhere, or in its palette)."""
    if frame.format.name != "pal8" and not any(comp.is_alpha for comp in frame.format.components):
        return False  # (a palette's alpha, a PNG's tRNS, is in no component)
    alpha: np.ndarray = frame.reformat(
        format="rgba64le" if frame.format.components[0].bits > 8 else "rgba"
    ).to_ndarray()[..., 3]
    return bool(alpha.min() < np.iinfo(alpha.dtype).max)


def say_alpha_dropped(path: Path) -> None:
    log.warning("%s: the alpha channel (transparency) is dropped; the output is opaque", path)


def stdin_input(path: Path) -> Path:
    """`-` names a file of that name where there is one (any existing name is a file), else standard
    input: read as /dev/stdin when that is a regular file (`dove upscale - < in.mp4`), which dove can
    probe and seek as any file; a pipe stays `-`, for check_input_file to refuse."""
    if str(path) != "-" or path.exists():
        return path
    try:
        regular = stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:  # (stdin closed)
        regular = False
    return Path("/dev/stdin") if regular else path


def release_writer(fifo: Path) -> None:
    """Open the FIFO `fifo` for reading without waiting, and close it: a program blocked opening it to
    write (`ffmpeg ... -y fifo &`) gets its reader, then EPIPE at its first write, and ends, instead of
    waiting for ever for a reader dove will never be."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))


def check_input_file(path: Path) -> None:
    """`-`, a FIFO, a pipe (`cat a.mp4 | dove upscale /dev/stdin`) or a terminal cannot be probed and
    then read again from the start: said as such, not as an empty file."""
    unseekable = "reading from standard input or a pipe is not supported (dove probes and seeks its input)"
    if str(path) == "-" and not path.exists():  # (stdin_input: a file named `-` is that file)
        raise InputError(f"-: {unseekable}; save it to a file first")
    if not path.exists():
        check_not_windows(path, InputError)
        raise InputError(f"{path}: {why_missing(path)}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder with no images")
    st = path.stat()
    device = os.path.realpath(path)
    if stat.S_ISCHR(st.st_mode) and not device.startswith(("/dev/pts/", "/dev/tty", "/dev/console")):
        raise InputError(f"{path}: is a device ({device}), not a file: dove probes and seeks its input; "
                         "save what it gives to a file first")  # fmt: skip
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        if stat.S_ISFIFO(st.st_mode):
            release_writer(path)
        raise InputError(f"{path}: {unseekable}; save it to a file first")
    if st.st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")


def time_span(seconds: list[float]) -> str:
    """'t=0.667s', or 't=0.667-0.934s' from the first time to the last."""
    return f"t={seconds[0]:.3f}" + (f"-{seconds[-1]:.3f}" if len(seconds) > 1 else "") + "s"


def frames_out(frames: int, deinterlace: str) -> int:
    """The frames a --deinterlace mode makes of `frames` decoded ones: ivtc's decimate drops one of
    every IVTC_CYCLE, and none of a last cycle cut short (as ffmpeg's, which flushes it whole)."""
    if deinterlace == "ivtc":
        return frames - frames // IVTC_CYCLE
    return int(frames * DEINTERLACE_RATE[deinterlace])


def shown_frames(c: Any, s: Any) -> int:
    """The frames a stream shows, by its container's count (0: it gives none). An MP4/MOV's edit list
    can hide some of its samples: an `ffmpeg -ss 1.3 -c copy` trim of long-GOP video keeps the
    lead-in from the keyframe before the cut, which FFmpeg's MOV demuxer keeps in its index flagged
    discard (its decoder drops those frames), and an edit that ends early flags those after it up to
    the next keyframe and leaves the rest out: the shown frames are the index's unflagged entries.
    Only a MOV's index holds every sample from the start (an AVI without its idx1 has the part
    FFmpeg has read so far): other containers' counts are nb_frames."""
    entries = getattr(s, "index_entries", None)  # (a PyAV without it: nb_frames)
    if not s.frames or not entries or "mov" not in c.format.name.split(","):
        return s.frames
    return sum(not e.is_discard for e in entries)


def open_ended(path: Path, format_name: str) -> bool:
    """Whether nothing at the end of a video file would show it finished (`VideoInfo.open_ended`): all
    but an MP4/MOV that is not fragmented (its index is written last: there is none before) and
    Matroska (its header's size and length are: `matroska.unfinished`)."""
    names = set(format_name.split(","))
    if "matroska" in names:
        return False
    return fragmented(path) if "mov" in names else True


def fragmented(path: Path) -> bool:
    """Whether an MP4/MOV is fragmented: a `moof` box at its top level, from its first boxes (ftyp,
    moov, moof), reading 8 or 16 bytes of each."""
    try:
        with open(path, "rb") as f:
            for _ in range(16):
                head = f.read(8)
                if len(head) < 8:
                    return False
                size, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind == b"moof":
                    return True
                if size == 1:  # a 64-bit size follows
                    size = int.from_bytes(f.read(8), "big") - 8
                if size < 8:  # 0: the box runs to the end
                    return False
                f.seek(size - 8, 1)
    except OSError:
        pass
    return False


def written_ago(path: Path) -> float:
    """Seconds since a file was last modified (negative: a clock ahead)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return math.inf


def cheap_to_count(info: VideoInfo) -> bool:
    """Whether a video file whose container gives no frame count is small enough to count its packets
    (COUNT_MAX_FRAMES, COUNT_MAX_BYTES): `VideoReader.count_frames`."""
    try:
        size = info.path.stat().st_size
    except OSError:
        return False
    return info.num_frames <= COUNT_MAX_FRAMES and size <= COUNT_MAX_BYTES


def tagged_length(s: Any) -> Fraction | None:
    """A stream's length in seconds as its DURATION tag says (HH:MM:SS.nnnnnnnnn), or None: Matroska
    gives a track no duration of its own, and FFmpeg and mkvmerge write one such tag per track."""
    tag = s.metadata.get("DURATION") or s.metadata.get("duration")
    if tag and (m := re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag.strip())):
        return Fraction(int(m[1]) * 3600 + int(m[2]) * 60) + Fraction(m[3])
    return None


def skipped_bytes(path: Path, index: int, before: int, after: int) -> int:
    """The most bytes in a row that no packet of any stream holds, read from the keyframe before
    pts `before` of video stream `index` until its packets' dts reach `after` (no frame between
    them can come later): damage the demuxer skipped. Lacing puts several packets at one place."""
    ends: dict[int, int] = {}  # where a packet (or a lace of them) starts -> where it ends
    try:
        with av.open(ffmpeg_name(path), metadata_errors="replace") as c:
            s = c.streams[index]
            c.seek(before, stream=s, backward=True)
            for p in c.demux():
                if p.pos is not None and p.pos >= 0 and p.size:
                    ends[p.pos] = ends.get(p.pos, p.pos) + p.size
                t = p.dts if p.dts is not None else p.pts
                if p.stream.index == index and t is not None and t >= after:
                    break
            else:
                return DAMAGE_BYTES  # it never got there
    except av.FFmpegError:
        return DAMAGE_BYTES
    spans = sorted(ends.items())
    return max((b - a for (_, a), (b, _) in itertools.pairwise(spans)), default=0)


def video_length(path: Path) -> tuple[Fraction, Fraction] | None:
    """How long a file's video lasts (seconds, from its first packet to the end of its last) and
    its frame duration, read from the packets of its last seconds without decoding (a damaged or
    index-less tail: from the start). None when it does not open or has no video packets."""
    tail = 10 * av.time_base  # seconds before the declared end to start from
    ends: list[Fraction] = []
    try:
        with av.open(ffmpeg_name(path), metadata_errors="replace") as c:
            s = next((s for s in c.streams.video if not is_picture(s)), None)
            if s is None or not s.time_base:
                return None
            tb, fps = Fraction(s.time_base), stream_rate(s)
            for at in ([c.duration - tail] if c.duration and c.duration > tail else []) + [None]:
                try:
                    c.seek(at if at is not None else (c.start_time or 0), backward=True)
                    for p in c.demux(s):
                        if p.pts is not None:
                            ends.append((p.pts + (p.duration or 0)) * tb)
                except av.FFmpegError:  # a cut-off file: its packets up to the damage
                    pass
                if ends:
                    break
            start = s.start_time * tb if s.start_time is not None else min(ends, default=Fraction(0))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None
    return (max(ends) - start, 1 / fps) if ends else None


def turn_of(frame: av.VideoFrame) -> tuple[int, bool]:
    """A video frame's display matrix (`orientation`) as a turn counter-clockwise and a mirror;
    (0, False) for a turn that is no multiple of 90 degrees, which is ignored (and said)."""
    rotation, mirrored = orientation(frame)
    return (0, False) if rotation % 90 else (rotation, mirrored)


class VideoReader:
    """Decodes one video stream to RGB frames in presentation order; use from one thread."""

    info: VideoInfo
    dropped_frames: int
    transparent: bool  # the frames read so far have real transparency (dropped: the RGB as stored)
    matrix: str | None  # the YUV matrix its frames are converted to RGB with (SWS_NAMES); None: RGB, gray

    _lo: int | None = None  # span selected by open_reader(start=, duration=), in pts
    _hi: int | None = None
    _apply_rotation = 0  # degrees the pixels are turned counter-clockwise (rotate="apply"; `_configure_conversion`)
    _apply_mirror = False  # and then mirrored left-right

    def __init__(
        self,
        path: Path,
        *,
        rotate: str = "keep",
        ignore_decode_errors: bool = False,
        deinterlace: str = "off",
        field_order: str = "auto",
        threads: int = 0,
        warn: bool = True,
        say_alpha: bool = True,
        untagged_matrix: str = "auto",
        untagged_color: str = "none",
        video_stream: int | None = None,
        scan: bool = True,
        fps: Fraction | None = None,
        start: float | Fraction | None = None,
        duration: float | Fraction | None = None,
        clock: Fraction | None = None,
        zero: Fraction | None = None,
    ) -> None:
        """As `open_reader` says of each (start/duration: the span kept, `_select_span`; clock: the
        output's unit of time, default the time base; zero: where the output's time 0 lies)."""
        check_input_file(path)
        if warn and (tags := tag_count(path)) > SLOW_TAGS:
            log.warning("%s: %s Matroska tags, which FFmpeg reads in time growing as the square of their number, at "
                        "each of the times the file is opened: this will be slow (`ffmpeg -i IN -map_metadata -1 -c "
                        "copy OUT` drops them)", path, f"{tags:,}")  # fmt: skip
        self.path = path
        self._fps = fps  # --fps: a bare stream's frames are timed at it (`_decode`), other videos keep their own
        self._video_stream = video_stream
        self._scan_file = scan
        self._untagged = untagged_matrix
        self._untagged_color = untagged_color
        self._warn = warn
        self._say_alpha = say_alpha
        self.dropped_frames = 0
        self._read_end = 0  # where the video's packets read so far end in the file, and their last pts (`_check_read`)
        self._read_pts: int | None = None
        self._skipped: dict[int, str] = {}  # pts of the packets skipped (not yet reported) -> error
        self._moved: list[tuple[int, int]] = []  # (index, pts) of frames moved past the one before (not yet reported)
        self._yielded_pts: int | None = None  # the last frame's pts as yielded
        self._first_yielded: int | None = None  # the first's (`_unfilled`)
        self._origin = 0  # the pts the output starts its clock at (`open_reader`'s zero, a --preview's start)
        self._unplaced = 0  # packets skipped that carry no timestamp
        self._jumps = 0  # timestamp discontinuities corrected (continuity.Continuity)
        self._gaps_said: set[int] = set()  # pts of the frames before the gaps said under ivtc (`_ivtc_gaps`)
        self._gaps: list[int] = []  # frames lost in each stretch lost from the input, said or not (`_say_gap`)
        self._deinterlace = deinterlace
        self._rate = DEINTERLACE_RATE[deinterlace]  # frames out per frame in
        self._field_order = field_order  # as given; `_parity`: what the filters take (`_open_stream`)
        self._carriers = VideoReformatter()  # for `caption_carrier` (its own: a reformatter keeps one size)
        self._second_field = False  # the frame `_decoded` gave last is a frame's second field
        self._retimer: CaptionRetimer | None = None  # ivtc's captions (`_decoded`)
        self._retimed: av.VideoFrame | None = None  # the captions of the frame `_decoded` gave last, under ivtc
        self._source_interlaced = False
        self._frames_flagged = False  # the first frame's own interlace flag
        self._ignore = ignore_decode_errors
        self._rotate = rotate
        self._reformatter = VideoReformatter()
        try:
            self._container = av.open(ffmpeg_name(path), metadata_errors="replace")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):  # not a format problem
                raise InputError(f"{path}: cannot read: permission denied") from None
            raise InputError(f"{path}: not a video FFmpeg can read ({ffmsg(exc)}){_cut_mp4_hint(path, exc)}") from None
        if fps is not None and not bare_stream(self._container):
            if warn:
                log.warning("%s: fps is only used for image inputs and bare video streams (.h264, .hevc, .m2v); "
                            "this video keeps its own timing", path)  # fmt: skip
            self._fps = None
        try:
            self._open_stream(threads)
        except BaseException:
            self._container.close()
            raise
        # The unit the output counts time in (its container's, `output_clock`): frames are kept at
        # least one apart.
        self.clock = clock if clock is not None else self.info.time_base
        if start is not None or duration is not None:
            try:
                self._select_span(start, duration)
            except BaseException:
                self.close()
                raise
        if zero is not None:
            self._origin = round(zero / self.info.time_base)

    def _open_stream(self, threads: int) -> None:
        path, c = self.path, self._container
        streams = [s for s in c.streams.video if not is_picture(s)]
        if not streams:
            kinds: list[str] = sorted({s.type for s in c.streams}) or ["no streams"]
            raise InputError(f"{path}: no video stream (has {', '.join(kinds)})")
        if self._video_stream is not None:
            streams = [s for s in streams if s.index == self._video_stream]
            if not streams:
                videos = ", ".join(f"#{s.index}" for s in c.streams.video if not is_picture(s))
                raise InputError(f"{path}: --video-stream {self._video_stream} is not a video stream of this file "
                                 f"(its video: {videos}; `dove info {path}` lists every stream)")  # fmt: skip
        self._stream = s = streams[0]
        # a .mov may say interlaced where the frames are coded progressive (some ProRes captures)
        self._container_interlaced = s.codec_context.field_order in INTERLACED_FIELD_ORDERS
        # Frame threads lose the frames in flight at a damaged packet (2 good frames of an H.264 file
        # cut short); slice threads do not, so a run that reads past damage decodes with those.
        s.thread_type = "SLICE" if self._ignore else "AUTO"
        if threads:
            s.codec_context.thread_count = threads
        self._tb = self._time_base()
        # The order the deinterlacing filters take the fields in, before they take the first frame:
        # idet's where it is clear (its scan kept for `_describe` to say), unless --field-order is given.
        self._scan = scan_fields(path, s.index) if self._deinterlace != "off" and self._field_order == "auto" else None
        self._parity = parity(self._scan, self._field_order)
        self._frames = self._decoded(self._decode())
        first = next(self._frames, None)
        if first is None:
            raise InputError(f"{path}: no decodable video frames")
        self._first: av.VideoFrame | None = first
        self._index = 0
        self._last_pts: int | None = None
        self._last_duration: int | None = None  # (the last frame's own, in info's time base: a held end is no loss)
        self.info = self._describe(first)
        self._configure_conversion(first, self.info)
        self._say_source_warnings(first, self.info)

    def _describe(self, frame: av.VideoFrame) -> VideoInfo:
        """The video as its stream, its container and its first decoded `frame` tell it (with the
        reader's options: --rotate, --deinterlace, --fps, --untagged-color): nothing set, nothing said."""
        s, c, cc = self._stream, self._container, self._stream.codec_context
        fmt = frame.format
        bit_depth = max(comp.bits for comp in fmt.components)
        tb = self._tb
        fps = (self._fps or stream_rate(s)) * self._rate
        duration = None  # the video's own length: the container's can be a subtitle's, which outlasts it
        if s.duration and s.time_base:
            duration = float(s.duration * s.time_base)
        elif tagged := tagged_length(s):  # FFmpeg writes where the track ends (mkvmerge its length: the same from 0)
            begins = Fraction(s.start_time) * s.time_base if s.start_time and s.time_base else Fraction(0)
            duration = float(tagged - begins if tagged > begins > 0 else tagged)
        elif c.duration:
            duration = c.duration / av.time_base
        exact = bool(s.frames)
        decoded = shown_frames(c, s) or (max(1, round(duration * stream_rate(s))) if duration else 0)  # (estimated)
        num_frames = frames_out(decoded, self._deinterlace)
        rng = frame.color_range or cc.color_range
        if rng not in RANGE and fmt.name.startswith("yuvj"):
            rng = 2
        rotation, mirrored = turn_of(frame)
        w, h = frame.width, frame.height
        if self._rotate == "apply" and rotation % 180:
            w, h = h, w
        sar = s.sample_aspect_ratio or cc.sample_aspect_ratio
        if sar and self._rotate == "apply" and rotation % 180:
            sar = 1 / Fraction(sar)  # a pixel stood on its side: 32:27 becomes 27:32
        attached = attachment_streams(c)
        info = VideoInfo(
            path=self.path,
            width=w,
            height=h,
            num_frames=num_frames,
            fps=fps,
            time_base=tb,
            start_pts=frame.pts if frame.pts is not None else 0,
            stream_index=s.index,
            bit_depth=bit_depth,
            pix_fmt=fmt.name,
            codec=cc.name,
            container=c.format.name,
            color_range=RANGE.get(rng),
            color_primaries=PRIMARIES.get(frame.color_primaries or cc.color_primaries),
            color_trc=TRC.get(frame.color_trc or cc.color_trc),
            colorspace=SPACE.get(frame.colorspace or cc.colorspace) if not fmt.is_rgb else "gbr",
            chroma_location=chroma_siting(frame) if self._scan_file else None,
            mastering=mastering_of(frame),
            light_level=light_level_of(frame),
            dynamic_hdr=dynamic_hdr(frame, self.path, c.format.name),
            rotation=0 if self._rotate == "apply" else rotation,
            mirrored=mirrored and self._rotate != "apply",
            sample_aspect_ratio=Fraction(sar) if sar and sar != 1 else None,
            interlaced=self._source_interlaced,
            captions=has_captions(frame) or (self._scan_file and self._captions_later(s)),
            has_subtitles=bool(c.streams.subtitles),
            has_audio=bool(c.streams.audio),
            attachments=tuple(attachment_name(a) for a in attached),
            covers=tuple(attachment_name(a) for a in attached if is_picture(a) and a.codec_context.name in MP4_COVERS),
            fonts=tuple(attachment_name(a) for a in attached if is_font(a)),
            num_frames_exact=exact,
            duration=duration,
            base_fps=Fraction(nominal) * self._rate if (nominal := self._fps or s.guessed_rate) else None,
            grid=self._grid() if self._scan_file else None,
            file_start=Fraction(c.start_time, av.time_base) if c.start_time is not None else None,
        )
        if self._deinterlace != "off" and self._parity != "auto":
            info.field_order = cast(FieldOrder, self._parity)
        info.unfinished = bool(self._lacks)
        info.open_ended = open_ended(self.path, c.format.name)
        declared(info, self._untagged_color, yuv_matrix=is_yuv(fmt) and self._untagged == "auto")
        return info

    def _configure_conversion(self, frame: av.VideoFrame, info: VideoInfo) -> None:
        """What decoding and converting every frame to RGB needs, from the first `frame` and `info`:
        the size frames are fitted to, the turn applied, the YUV matrix and range converted from,
        the RGB depth, the header's end (`_expected_end`) and the frame step (`_step`)."""
        s = self._stream
        self._raw_w, self._raw_h = frame.width, frame.height
        self._size = (frame.width, frame.height)  # the last frame's, to say where it changes (`_fit`)
        self._sar = self._pixel_aspect()
        rotation, mirrored = turn_of(frame)
        self._apply_rotation = rotation if self._rotate == "apply" else 0
        self._apply_mirror = mirrored and self._rotate == "apply"
        self.transparent = see_through(frame)
        self._expected_end = self._declared_end(info.time_base)
        # A stream that says it is constant-rate (its average rate is the rate its timestamps step at):
        # its frame duration, to find stretches lost (`_check_step`); None once a step is not a whole
        # number of them (variable frame rate).
        self._step = 1 / (info.fps * info.time_base) if s.average_rate and s.average_rate == s.base_rate else None
        # Untagged YUV: as `untagged_matrix` says (auto: as players assume it from the size).
        matrix = info.colorspace or assumed_matrix(frame.width, frame.height, self._untagged)
        self._src_matrix = SWS_MATRIX.get(matrix, Colorspace.ITU601)
        self.matrix = SWS_NAMES[self._src_matrix] if is_yuv(frame.format) else None
        self._src_range = ColorRange.JPEG if info.color_range == "pc" else ColorRange.MPEG
        self._rgb_format = "rgb48le" if info.bit_depth > 8 else "rgb24"

    def _say_source_warnings(self, frame: av.VideoFrame, info: VideoInfo) -> None:
        """What the source has that the frames lose or a run should know, said once (`warn`): a turn
        that is no multiple of 90 degrees, transparency, interlacing, an unfinished or recently written
        file, a bare stream's rate."""
        if not self._warn:
            return
        s, c, cc = self._stream, self._container, self._stream.codec_context
        if (rotation := orientation(frame)[0]) % 90:
            log.warning("%s: rotation %d is not a multiple of 90 degrees; ignored", self.path, rotation)
        if self.transparent and self._say_alpha:
            say_alpha_dropped(self.path)
        # What a run is told of the fields, from a scan (others pay nothing; ivtc is what telecine is
        # told to use, and a rate it cannot take is refused): idet's order against the flag's too.
        if self._source_interlaced or self._deinterlace != "off":
            scan = self._scan or (scan_fields(self.path, s.index) if self._deinterlace != "ivtc" else None)
            coded_progressive = self._source_interlaced and not self._frames_flagged
            if self._deinterlace != "ivtc" and (
                said := advice(self.path, scan, self._deinterlace, self._source_interlaced, coded_progressive)
            ):
                log.warning("%s: %s", self.path, said)
            if self._field_order == "auto" and (said := order_warning(self.path, self._scan)):
                log.warning("%s", said)
        if lacks := self._lacks:
            log.warning("%s: looks unfinished: its header gives no %s, as that of a recording still being written, or "
                        "whose recorder crashed (or a browser's .webm recording); a run reads only what there is by "
                        "then, so if it is still being recorded, upscale it once it is done", self.path,
                        " and no ".join(lacks))  # fmt: skip
        if info.open_ended and (ago := written_ago(self.path)) < UNFINISHED_QUIET_S:
            log.warning("%s: was written %.0f s ago: if it is still being recorded or copied, a run reads only what "
                        "there is by then (nothing at the end of this kind of file shows it finished), so upscale "
                        "it once it is done", self.path, max(0.0, ago))  # fmt: skip
        if bare_stream(c) and not self._fps and not cc.framerate:
            log.warning("%s: the %s stream states no frame rate and has no container to time it: read at %s "
                        "frames/s; give --fps RATE if it is another", self.path, cc.name, DEFAULT_SEQUENCE_FPS)  # fmt: skip

    @functools.cached_property
    def _lacks(self) -> list[str]:
        """What a Matroska header lacks that a finished file's has (`matroska.unfinished`), read once:
        `info.unfinished` and its warning share it; none for other containers."""
        return unfinished(self.path) if "matroska" in self._container.format.name.split(",") else []

    def _captions_later(self, s: Any) -> bool:
        """Whether the video carries closed captions that its first frame does not (they start at an
        advert's end, after a gap): its first minute's packets searched (`captions_in_packets`),
        read a second time but not decoded. A pipe cannot be read twice: no."""
        if s.codec_context.name not in ("h264", "hevc", "mpeg2video") or not self.path.is_file():
            return False
        try:
            with av.open(ffmpeg_name(self.path)) as c:
                return captions_in_packets(c, c.streams[s.index])
        except (av.FFmpegError, OSError):
            return False

    def _grid(self) -> Grid | None:
        """The grid of the stream's frames at its nominal rate (`fit_grid`, from its first frames), in
        the frames' time base: under --deinterlace field a frame per field, halfway between two
        frames' places (bwdif's second field is their mean); none under ivtc, whose time base is a
        frame already."""
        s = self._stream
        if self._deinterlace == "ivtc" or not s.guessed_rate or not s.time_base:
            return None
        rate, tb = Fraction(s.guessed_rate), Fraction(s.time_base)
        if (1 / (rate * tb)).denominator == 1:  # (without reading the packets: most .mp4 and .mov)
            return None
        grid = fit_grid(self._first_pts, tb, rate)
        return Grid(grid.start, grid.step / self._rate, grid.slack) if grid else None

    def judged_rate(self) -> RateJudgement | None:
        """Whether the video's frames step unevenly (a variable rate: a screen or phone recording), by
        `dove info`'s rule (`judge_rate`) but from its first SAMPLE_FRAMES packets only (`sampled`:
        a plan does not read a long file through); None for images, which step evenly."""
        return None if self.info.is_images else judge_rate(self._stream, self._first_pts, SAMPLE_FRAMES)

    @functools.cached_property
    def _first_pts(self) -> list[int]:
        """The video's first frames' timestamps (`sample_pts`), read once: the grid at open and a plan's
        judgement of the rate share them."""
        return sample_pts(self.path, self._stream.index)

    @property
    def turn(self) -> tuple[int, bool]:
        """How the frames are turned from the stored pixels (rotate="apply"): degrees counter-clockwise,
        then mirrored left-right or not (a video's display matrix, an image's EXIF orientation); (0, False) for rotate="keep"."""
        return self._apply_rotation, self._apply_mirror

    def count_frames(self) -> int:
        """The frames this reader yields in all, counted from the video's packets without decoding: where
        the container gives no count (`info.num_frames_exact` False), exact where that is an estimate.
        Packets that end well before the header says (a recording that crashed, a copy cut short)
        are said now, not only when a run reaches its end (`_check_complete`)."""
        with av.open(ffmpeg_name(self.path), metadata_errors="replace") as c:
            pts = packet_pts(c, c.streams[self._stream.index])
        if pts and self._warn and (short := self.shortfall(pts[-1])):
            log.warning("%s: its video ends at %.3f s, its header says %.3f s (about %d frames more): cut short (a "
                        "recording that crashed, a copy not finished?); a run fails there unless "
                        "--ignore-decode-errors, which keeps the frames there are", self.path, *short)  # fmt: skip
        elif pts and self._warn and (stop := unread_tail(self.path, self._stream.index, pts[-1])):
            log.warning("%s: %s; a run fails there unless --ignore-decode-errors, which keeps the frames there are",
                        self.path, unread_said(stop))  # fmt: skip
        return frames_out(len(pts), self._deinterlace)

    def shortfall(self, last_pts: int) -> tuple[float, float, int] | None:
        """Where the video's last packet (pts `last_pts`, in the stream's time base) is and where the
        header says the video ends (seconds from the first frame), and about how many frames are
        missing between (a recording that crashed, a copy cut short); None when it is as long as it says.
        Seconds on the file's clock (`VideoInfo.on_clock`)."""
        last = round(self._in_time_base(last_pts))
        if self._expected_end is None or not (missing := self._missing(last)):
            return None
        return self.info.on_clock(last), self.info.on_clock(self._expected_end), missing

    def _declared_end(self, tb: Fraction) -> int | None:
        """End of the video stream (pts units) as the container header declares it, or None.

        Only MP4/MOV and Matroska store this reliably; used to notice files cut short, which
        demuxers otherwise report as a normal end of file.
        """
        s, c = self._stream, self._container
        if not any(n in c.format.name.split(",") for n in ("mov", "mp4", "matroska")):
            return None
        if s.duration and s.time_base:
            return int(((s.start_time or 0) + s.duration) * Fraction(s.time_base) / tb)
        if (tagged := tagged_length(s)) is not None:
            seconds = tagged
        elif c.duration and len(c.streams) == 1:
            seconds = Fraction(c.duration, av.time_base)
        else:
            return None
        start = Fraction(c.start_time or 0, av.time_base)
        if "matroska" in c.format.name.split(","):  # FFmpeg's muxer writes the end timestamp there, not
            start = min(start, Fraction(0))  # the length: a file starting at 1.5 s is not 1.5 s short
        return int((start + seconds) / tb)

    def _missing(self, last_pts: int, last_duration: int | None = None) -> int:
        """About how many frames the header's end (`_expected_end`) promises after the frame at
        `last_pts` (in `info.time_base`), which lasts `last_duration` where known (a variable-rate
        recording's last frame may be held for seconds) else a frame step; 0 when it is as long as it
        says (or says nothing)."""
        info, end = self.info, self._expected_end
        if end is None or not info.fps:
            return 0
        lasts = max(1 / info.fps, (last_duration or 0) * info.time_base)
        missing = ((end - last_pts) * info.time_base - lasts) * info.fps
        return int(round(missing)) if missing >= 1.5 else 0

    def _check_complete(self, decoded: int) -> None:
        """Raise (or count as dropped) when the stream ended before its declared duration: the frames
        missing after the last, and the places before it that no frame filled and nothing counted yet
        (a B-frame whose packet lay past the cut: `_unfilled`)."""
        info = self.info
        if self._last_pts is None:
            return
        if not (missing := self._missing(self._last_pts, self._last_duration)):
            self._check_read(decoded)
            return
        when = f"t={info.on_clock(self._last_pts):.3f}s"
        if not self._ignore:
            raise DecodeError(
                f"{self.path}: file ends early: {counted(decoded, 'frame')} decoded, about {missing} "
                f"more expected after {when} (truncated or damaged); {IGNORE_HINT}"
            )
        unfilled = self._unfilled(decoded)
        more, before = max(0, missing + unfilled), max(0, unfilled)
        self.dropped_frames += more
        log.warning("%s: file ends early after frame %d (%s); about %d frames missing%s", self.path,
                    info.slot(self._last_pts), when, more, f" ({before} of them before it)" * bool(before))  # fmt: skip

    def _unfilled(self, decoded: int) -> int:
        """The places on a constant-rate video's grid (`_step`) between its first and last frame read that
        no frame filled, less those counted already (`dropped_frames`: undecodable, or in a gap); below 0
        for packets past the last frame that did not decode (the places after it count them again)."""
        if self._step is None or self._first_yielded is None or self._yielded_pts is None:
            return 0
        places = round((self._yielded_pts - self._first_yielded) / self._step) + 1
        return places - decoded - self.dropped_frames

    def _check_read(self, decoded: int) -> None:
        """Raise (or warn) when the demuxer stopped well before the end of the file (`unread_tail`): damage
        it took for the end, cut short as a file whose header promises more is. Its video packets alone
        leaving little unread, the file is not read again."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if not _unread(self._read_end, size) or not (
            stop := unread_tail(self.path, self._stream.index, self._read_pts or 0)
        ):
            return
        when = f"t={self.info.on_clock(cast(int, self._last_pts)):.3f}s"
        if not self._ignore:
            raise DecodeError(f"{self.path}: file ends early: {counted(decoded, 'frame')} decoded, up to {when}, "
                              f"then {unread_said(stop)}; {IGNORE_HINT}")  # fmt: skip
        log.warning("%s: file ends early after frame %d (%s): %s", self.path, self.info.slot(cast(int, self._last_pts)),
                    when, unread_said(stop))  # fmt: skip

    def _time_base(self) -> Fraction:
        """The time base of `info`: the stream's; halved for a frame per field; for ivtc, decimate's
        (a frame at 4/5 of the stream's rate, as ffmpeg times them)."""
        s = self._stream
        tb = Fraction(s.time_base) if s.time_base else Fraction(1, 90000)
        if self._deinterlace != "ivtc":
            return tb / self._rate
        rate = stream_rate(s)
        if round(rate) != 30 or not s.guessed_rate:  # (soft telecine decodes to the film's 23.976 frames)
            raise InputError(f"{self.path}: --deinterlace ivtc undoes 3:2 pulldown, film stored at 29.97 frames/s; "
                             f"this video is {float(rate):.5g} frames/s")  # fmt: skip
        return 1 / (Fraction(s.guessed_rate) * self._rate)

    def _in_time_base(self, pts: int) -> Fraction:
        """A pts of the stream in the time base of `info`."""
        return pts * Fraction(self._stream.time_base or Fraction(1, 90000)) / self._tb

    def _filters(self) -> av.filter.Graph:
        """The --deinterlace filter graph, its source told the stream's frame rate as ffmpeg tells it
        (decimate times its frames by it)."""
        s: Any = self._stream
        graph = av.filter.Graph()
        source = graph.add("buffer", video_size=f"{s.width}x{s.height}", pix_fmt=s.format.name,
                           time_base=str(s.time_base or Fraction(1, 90000)), pixel_aspect="1/1",
                           frame_rate=str(s.guessed_rate or 0))  # fmt: skip
        if self._deinterlace == "ivtc":
            chain = IVTC_FILTERS.format(order=self._parity)
        else:
            mode = "send_field" if self._deinterlace == "field" else "send_frame"
            chain = f"bwdif=mode={mode}:parity={self._parity}:deint=all"
        last = source
        for spec in chain.split(","):
            name, _, args = spec.partition("=")
            node = graph.add(name, args or None)
            last.link_to(node)
            last = node
        last.link_to(graph.add("buffersink"))
        graph.configure()
        return graph

    def _decoded(self, frames: Iterator[av.VideoFrame]) -> Generator[av.VideoFrame, None, None]:
        """Decoded `frames` through the --deinterlace filters (pts in the time base of `info`).
        ivtc's cycles of 5 start at a span's first frame, as `ffmpeg -ss` starts them: the frames
        before it, decoded from the keyframe before, do not enter."""
        if self._deinterlace == "off":
            yield from frames
            return
        if self._deinterlace == "ivtc" and self._lo is not None:  # from the first that decimate times at `_lo` on
            lo = self._lo - Fraction(1, 2)  # (it rounds the first pts to its time base, then counts frames on)
            frames = (f for f in frames if f.pts is None or self._in_time_base(f.pts) >= lo)
        if self._deinterlace == "ivtc":
            frames = self._ivtc_gaps(frames)
            s: Any = self._stream
            self._retimer = CaptionRetimer(Fraction(s.guessed_rate), Fraction(s.guessed_rate) * self._rate)
        graph = self._filters()
        tb = self._tb
        for frame in itertools.chain(frames, [None]):
            if self._retimer:
                self._retimer.push(frame)
            graph.push(frame)  # None flushes the frames the filters hold back
            pulled = 0
            while True:
                try:
                    out: Any = graph.pull()  # a VideoFrame from this video-only graph
                except (av.BlockingIOError, av.EOFError):
                    break
                if out.pts is not None and out.time_base and out.time_base != tb:
                    out.pts = round(out.pts * out.time_base / tb)  # (bwdif always halves the time base)
                    out.time_base = tb
                # Each push gives the frame before's two fields, first field first, both with its
                # side data: its captions go with the first only (twice, each letter would show twice).
                self._second_field = self._deinterlace == "field" and pulled > 0
                self._retimed = self._retimer.pop() if self._retimer else None
                pulled += 1
                yield out

    def _ivtc_gaps(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """Decoded frames on their way to ivtc, a hole in their timing (more than GAP_FRAMES frames:
        damage the demuxer skipped) said and counted: decimate times its frames one after the other,
        as ffmpeg's does, so the video after the hole comes that much early against the sound."""
        s = self._stream
        tb = Fraction(s.time_base or Fraction(1, 90000))
        step = 1 / (stream_rate(s) * tb)
        last: int | None = None
        for frame in frames:
            if frame.pts is not None:
                gap = frame.pts - last if last is not None else 0
                if last is not None and gap > GAP_FRAMES * step and last not in self._gaps_said:
                    self._gaps_said.add(last)
                    lost = round(gap / step) - 1
                    undecodable = sum(1 for pts in self._skipped if last < pts < frame.pts)  # (counted already)
                    self.dropped_frames += frames_out(max(0, lost - undecodable), "ivtc")
                    if self._say_gap(lost):
                        log.warning("%s: a %.2f s gap in the video at %.2f s (about %d frames lost from the input?): "
                                    "--deinterlace ivtc times the frames after it on from the ones before, as ffmpeg's "
                                    "decimate does, so from there the video is %.2f s early against the sound "
                                    "(--deinterlace frame keeps the gap)", self.path, float(gap * tb),
                                    float((last - (s.start_time or 0)) * tb), lost, float(gap * tb - 1 / stream_rate(s)))  # fmt: skip
                last = frame.pts if last is None else max(last, frame.pts)
            yield frame

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Demux and decode, turning FFmpeg errors into DecodeError or skipped packets."""
        demux = continuous_packets(self._container, [self._stream], self._jumped)
        decoded = 0
        recent: deque[int] = deque(maxlen=ERROR_WINDOW)  # dts of the packets an error may come from
        last_pts: int | None = None
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.FFmpegError as exc:  # the file ends or breaks: nothing more can be read
                self._unreadable(exc, last_pts)
                return
            if packet.dts is not None:
                recent.append(packet.dts)
            if packet.pts is not None:
                last_pts = packet.pts if last_pts is None else max(last_pts, packet.pts)
            if packet.pos is not None and packet.pos >= 0 and packet.size:
                self._read_end = max(self._read_end, packet.pos + packet.size)
                self._read_pts = last_pts
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self._decode_error(exc, packet, recent)
                continue
            for frame in frames:
                if decoded == 0:
                    self._frames_flagged = bool(frame.interlaced_frame)
                    self._source_interlaced = self._frames_flagged or self._container_interlaced
                if self._fps:  # a bare stream timed at --fps, whatever its packets say
                    frame.pts = round(decoded / (self._fps * Fraction(self._stream.time_base or Fraction(1, 90000))))
                decoded += 1
                yield frame

    def _jumped(self, packet: av.Packet, jump: Fraction) -> None:
        """A timestamp discontinuity, corrected (continuity.Continuity): said when found, the first
        SHOWN_RANGES of them (a damaged capture may have many), and counted in `_report`."""
        self._jumps += 1
        if self._jumps > SHOWN_RANGES:
            return
        pts = packet.pts if packet.pts is not None else packet.dts
        seconds = ((pts or 0) - (self._stream.start_time or 0)) * Fraction(packet.time_base)
        what = "reset" if jump < 0 else f"jump {float(jump):.2f} s ahead"
        why = " (concatenated recordings?)" if jump < 0 else ""
        log.warning("%s: timestamps %s at %.2f s%s: the rest continues from there, as ffmpeg does", self.path, what,
                    float(seconds), why)  # fmt: skip

    def _check_step(self, before: int, after: int) -> None:
        """Frames missing between two frames of a constant-rate input (`_step`): a jump of more than
        GAP_FRAMES frame durations, while every step so far was a whole number of them. Said, with its
        time and length, and counted as dropped (but for frames already counted as undecodable); the
        timing is kept (the hole stays). A step of a variable-rate stream ends the watch, unsaid: one
        that is no whole number of frames, or in Matroska (whose every track says it is constant-rate)
        a frame held over intact bytes (`_held`), as `dove info` calls it variable."""
        if self._step is None:
            return
        frames = (after - before) / self._step
        if abs(frames - round(frames)) > max(Fraction(1, 8), 1 / self._step):  # a tick of rounding allowed
            self._step = None
            return
        undecodable = sum(1 for pts in self._skipped if before < self._in_time_base(pts) < after)
        lost = round(frames) - 1 - undecodable
        if frames <= GAP_FRAMES or lost <= 0:
            return
        if self._held(before, after):
            self._step = None
            return
        self.dropped_frames += lost
        info = self.info
        gap = (after - before) * info.time_base
        if self._say_gap(lost):
            log.warning("%s: a %.2f s gap in the video at %.2f s (about %d frames lost from the input?); the timing "
                        "is kept", self.path, float(gap), info.on_clock(before), lost)  # fmt: skip

    def _held(self, before: int, after: int) -> bool:
        """Whether a Matroska input's frame at `before` (in the time base of `info`) is held until
        `after`, a variable frame rate: no bytes between them skipped as damage (`skipped_bytes`)."""
        if "matroska" not in self._container.format.name.split(","):
            return False
        tb = Fraction(self._stream.time_base or Fraction(1, 90000)) / self._tb  # stream ticks in `info` ticks
        index = self._stream.index
        return skipped_bytes(self.path, index, math.floor(before / tb), math.ceil(after / tb)) < DAMAGE_BYTES

    def _say_gap(self, lost: int) -> bool:
        """Note a stretch of `lost` frames lost; whether it is one of the first SHOWN_GAPS, said on its own
        (the others in one line, `_report`)."""
        self._gaps.append(lost)
        return len(self._gaps) <= SHOWN_GAPS

    def _where(self, pts: int) -> tuple[int, float]:
        """Frame number (from 0 at the stream's start) and seconds on the file's clock (`VideoInfo.on_clock`;
        from the stream's start while its first frame is not read) of a packet's pts.

        From the pts, not from the frames decoded so far: with B-frames (and the decoder's delay)
        packets fail in decode order, ahead of the frames still to come out before them.
        """
        s = self._stream
        t = (pts - (s.start_time or 0)) * Fraction(s.time_base or Fraction(1, 90000))
        info: VideoInfo | None = getattr(self, "info", None)  # (set once the first frame is decoded)
        return round(t * stream_rate(s)), info.on_clock(round(self._in_time_base(pts))) if info else float(t)

    def _frame_name(self, pts: int) -> str:
        n, t = self._where(pts)
        return f"frame {n}, t={t:.3f}s"

    def _decode_error(self, exc: BaseException, packet: av.Packet, recent: deque[int]) -> None:
        """Stop at a packet that does not decode, or skip it (--ignore-decode-errors) to report later."""
        pts = packet.pts if packet.pts is not None else packet.dts
        if not self._ignore:
            found = self._failing_pts(recent) if recent else None  # frame threads report errors late
            where = "" if pts is None else " near " + self._frame_name(pts)
            where = where if found is None else " at " + self._frame_name(found)
            raise DecodeError(f"{self.path}: decode error{where} ({ffmsg(exc)}); {IGNORE_HINT}") from None
        at = None if pts is None else self._in_time_base(pts)  # in info.time_base, as the span
        if at is not None and ((self._lo is not None and at < self._lo) or (self._hi is not None and at >= self._hi)):
            return  # before --start (decoded from the keyframe before) or after the end: not a frame lost
        if pts is None:
            self._unplaced += 1
        elif pts in self._skipped:  # a seek back (--start) decodes some packets twice
            return
        else:
            self._skipped[pts] = ffmsg(exc)
        self.dropped_frames += 1

    def _failing_pts(self, recent: deque[int]) -> int | None:
        """The pts of the packet whose error a frame-threaded decoder just reported.

        A frame thread's error comes out when that thread is next collected, packets later (2 with
        3 threads); slice threads fail at the packet itself. So decode the last packets again with
        slice threads, from the keyframe before them, and take the first that fails. None when that
        does not tell (a stream that cannot seek, an error that needs what came before).
        """
        try:
            with av.open(ffmpeg_name(self.path), metadata_errors="replace") as c:
                s = c.streams[self._stream.index]
                assert isinstance(s, av.VideoStream)  # (the video stream read: for the type checker)
                s.thread_type = "SLICE"
                c.seek(recent[0], stream=s, backward=True)
                for packet in c.demux(s):
                    if packet.dts is not None and packet.dts > recent[-1]:
                        break
                    try:
                        packet.decode()
                    except av.FFmpegError:
                        return packet.pts if packet.pts is not None else packet.dts
        except av.FFmpegError:
            pass
        return None

    def _unreadable(self, exc: BaseException, last_pts: int | None) -> None:
        """The demuxer cannot read on: nothing after the frames read so far can be decoded."""
        where = "" if last_pts is None else " after " + self._frame_name(last_pts)
        if not self._ignore:
            raise DecodeError(f"{self.path}: unreadable data{where} ({ffmsg(exc)}); {IGNORE_HINT}") from None
        self.dropped_frames += 1
        log.warning("%s: reading stops at unreadable data%s (%s)", self.path, where, ffmsg(exc))

    def _report(self) -> None:
        """What reading changed, said once each: the frames dropped, the frames moved."""
        self._report_skipped()
        self._report_moved()
        if self._jumps > SHOWN_RANGES:
            log.warning("%s: %d timestamp discontinuities in all, each corrected the same way (the first %d are said "
                        "above)", self.path, self._jumps, SHOWN_RANGES)  # fmt: skip
            self._jumps = SHOWN_RANGES
        if len(self._gaps) > SHOWN_GAPS:
            more = self._gaps[SHOWN_GAPS:]
            log.warning("%s: %d more gap%s in the video as the %d said (about %d more frames lost from the input); the "
                        "timing is kept", self.path, len(more), "s" * (len(more) > 1), SHOWN_GAPS, sum(more))  # fmt: skip
            del self._gaps[SHOWN_GAPS:]

    def _report_skipped(self) -> None:
        """One warning for the packets skipped, in presentation order (they fail in decode order)."""
        if not self._skipped and not self._unplaced:
            return
        placed = sorted(self._where(pts) for pts in self._skipped)
        shown = [shown_ranges(runs([n for n, _ in placed]))] if placed else []
        if self._unplaced:
            shown.append(f"{self._unplaced} without a timestamp")
        span = f"{time_span([t for _, t in placed])}; " if placed else ""
        n = len(placed) + self._unplaced
        log.warning(
            "%s: dropped %d frame%s that could not be decoded: %s (%s%s)",
            self.path, n, "s" * (n != 1), ", ".join(shown), span, "; ".join(dict.fromkeys(self._skipped.values())),
        )  # fmt: skip
        self._skipped.clear()
        self._unplaced = 0

    def _report_moved(self) -> None:
        """One warning for the frames whose timestamp did not come after the one before: an encoder
        needs increasing timestamps, and dove keeps every frame (ffmpeg drops them), so each was
        moved to 1 tick after the frame before."""
        if not self._moved:
            return
        info, n = self.info, len(self._moved)
        times = [info.on_clock(pts) for _, pts in self._moved]
        unit = f"{self.clock} s" if self.clock == info.time_base else f"{float(self.clock) * 1000:.4g} ms"
        log.warning(
            "%s: %d frame%s the time of the frame before (or an earlier one) in the output, which counts time "
            "in units of %s: frame%s %s (%s); moved %s after the frame before",
            self.path, n, " has" if n == 1 else "s have", self.clock, "s" * (n != 1),
            shown_ranges(runs([i for i, _ in self._moved])), time_span(times), unit,
        )  # fmt: skip
        self._moved.clear()

    def _ticks(self, pts: int) -> int:
        """Where the output stores a frame at `pts`: in units of its clock, from the output's start,
        rounded as FFmpeg rescales (to nearest, halves away from zero)."""
        return ff_round((pts - self._origin) * self.info.time_base / self.clock)

    def _next_tick(self, pts: int) -> int:
        """The first pts after `pts` that the output stores one unit of its clock later."""
        target = self._ticks(pts) + 1
        after = max(pts + 1, self._origin + math.ceil((target - Fraction(1, 2)) * self.clock / self.info.time_base))
        while self._ticks(after) < target:
            after += 1
        return after

    def _fit(self, frame: av.VideoFrame, pts: int) -> tuple[int, int]:
        """The size a frame is scaled to: the first frame's; a frame of another size (a recording
        joined to one of another size) fits inside it with its shape (its pixel aspect too), and
        `_to_rgb` pads it with black. Each change of size is said."""
        size = (frame.width, frame.height)
        if size != self._size:
            first = (self._raw_w, self._raw_h)
            log.warning("%s: the frame size changes at frame %d (t=%.3fs) from %dx%d to %dx%d; %s", self.path,
                        self._index, self.info.seconds(pts), *self._size, *size,
                        "back to the first frame's size" if size == first else
                        f"scaled to fit the first frame's {first[0]}x{first[1]} with its shape kept, and padded "
                        "with black")  # fmt: skip
            self._size = size
        if size == (self._raw_w, self._raw_h):
            return size
        # its width / height in output pixels
        shape = Fraction(frame.width) * self._pixel_aspect() / (frame.height * self._sar)
        if shape >= Fraction(self._raw_w, self._raw_h):
            return self._raw_w, max(1, round(self._raw_w / shape))
        return max(1, round(self._raw_h * shape)), self._raw_h

    def _pixel_aspect(self) -> Fraction:
        """The decoder's pixel aspect ratio now (PyAV's frames do not carry theirs); 1 when unknown."""
        sar = self._stream.codec_context.sample_aspect_ratio
        return Fraction(sar) if sar else Fraction(1)

    def _to_rgb(self, frame: av.VideoFrame, pts: int) -> np.ndarray:
        width, height = self._fit(frame, pts)
        out = self._reformatter.reformat(
            frame,
            width=width,
            height=height,
            format=self._rgb_format,
            src_colorspace=self._src_matrix,
            src_color_range=self._src_range,
            dst_color_range=ColorRange.JPEG,
            interpolation=TO_RGB_FLAGS,
        )
        rgb = out.to_ndarray()
        if self._rgb_format == "rgb48le":
            rgb = exact_rgb48(rgb, rgb48_gain(frame.format.name, self._src_matrix, self._src_range == ColorRange.JPEG))
        if (width, height) != (self._raw_w, self._raw_h):
            boxed = np.zeros((self._raw_h, self._raw_w, 3), rgb.dtype)  # black, in full-range RGB
            top, left = (self._raw_h - height) // 2, (self._raw_w - width) // 2
            boxed[top : top + height, left : left + width] = rgb
            rgb = boxed
        # the mirror after the turn, as the display matrix does (FFmpeg's autorotate)
        return np.ascontiguousarray(turned_pixels(rgb, self._apply_rotation, self._apply_mirror))

    def _select_span(self, start: float | Fraction | None, duration: float | Fraction | None) -> None:
        """Keep only frames with start <= t < start + duration (t in seconds on the file's clock, as
        players and `ffmpeg -ss` count it: `info.lead` before the first frame)."""
        info = self.info
        at = exact(start or 0) - info.lead  # from the first frame (below 0: before it)
        # the first pts at or after each end, as `span_frames` counts (a time base as long as a frame, ivtc's, would
        # otherwise take in the frame before)
        lo = info.start_pts + math.ceil(at / info.time_base)
        self._lo = lo
        if start is not None:  # where the writer puts output time zero (ContainerWriter._shift)
            self._origin = info.start_pts + round(at / info.time_base)
        self._hi = None if duration is None else info.start_pts + math.ceil((at + exact(duration)) / info.time_base)
        if at > 0:
            self.dropped_frames, self._unplaced = 0, 0  # the seek decodes again what counts
            self._skipped.clear()
            self._seek_before(lo)
        info.num_frames = info.span_frames(start or 0, duration)
        info.num_frames_exact = False

    def _seek_before(self, lo: int) -> None:
        """Start decoding at a frame at or before pts `lo` (in info.time_base).

        MP4 and Matroska seek exactly through their index; MPEG-TS/PS have none, so a seek can land
        after `lo` or between keyframes (nothing decodes until the next one): then step further back,
        and in the end decode from the beginning.
        """
        s: Any = self._stream
        tb = self.info.time_base
        for back_s in (0, 1, 5, 20, None):
            seconds = 0 if back_s is None else max(0, lo * tb - back_s)
            self._container.seek(int(seconds / s.time_base), stream=s, backward=True)
            s.codec_context.flush_buffers()
            decoded = self._decode()
            first = next(decoded, None)
            if back_s is None or (first is not None and (first.pts is None or self._in_time_base(first.pts) <= lo)):
                self._frames = self._decoded(itertools.chain([first] if first is not None else [], decoded))
                self._first = next(self._frames, None)
                return

    def __iter__(self) -> Iterator[Frame]:
        step = max(1, round(1 / (self.info.fps * self.info.time_base))) if self.info.fps else 1
        while True:
            frame = self._first if self._first is not None else next(self._frames, None)
            self._first = None
            if frame is None:
                self._report()
                self._check_complete(self._index)
                return
            pts = frame.pts
            if pts is None:
                pts = self.info.start_pts if self._last_pts is None else self._last_pts + step
            self._last_pts = pts
            self._last_duration = round(self._in_time_base(frame.duration)) if frame.duration else None
            if self._lo is not None and pts < self._lo:
                continue
            if self._hi is not None and pts >= self._hi:
                self._report()
                return
            if self._yielded_pts is not None and self._ticks(pts) <= self._ticks(self._yielded_pts):
                self._moved.append((self._index, pts))
                pts = self._next_tick(self._yielded_pts)
            elif self._yielded_pts is not None:
                self._check_step(self._yielded_pts, pts)
            self._yielded_pts = pts
            self._first_yielded = pts if self._first_yielded is None else self._first_yielded
            if self._retimer:
                captions = self._retimed
            else:
                captions = None if self._second_field else caption_carrier(frame, self._carriers)
            yield Frame(self._to_rgb(frame, int(pts)), int(pts), self._index, captions)
            self._index += 1

    def close(self) -> None:
        self._report()  # when the frames were not read to the end
        # The decoding generators hold the reader: closed, they let it go now, not when the garbage
        # collector finds the cycle, which may be in a forked process (a training DataLoader worker),
        # where freeing the parent's decoder waits forever for its threads.
        self._frames.close()
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
