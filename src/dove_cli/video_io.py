"""Reading and writing videos with PyAV: the only module that touches media files.

Frames are streamed (one decoded frame at a time, never the whole video) as RGB numpy arrays with
their original presentation timestamps, and written back with the same time base and the same
timestamps, so frame rate, VFR and start offsets survive exactly. Audio and subtitle streams are
copied packet for packet from the input file while the video is written. Output goes to a
temporary file beside the target and is renamed onto it only when complete.
"""

from __future__ import annotations

import errno
import functools
import io
import itertools
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter

from dove_cli.errors import InputError, OptionError, OutputError

log = logging.getLogger(__name__)

__all__ = [
    "Frame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "probe",
    "open_reader",
    "open_writer",
    "is_image_path",
    "is_pattern",
    "frame_name",
    "default_codec",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "CODECS",
    "join_segments",
    "segment_suffix",
]

IMAGE_EXTENSIONS = {".png": "png", ".jpg": "mjpeg", ".jpeg": "mjpeg", ".tif": "tiff", ".tiff": "tiff",
                    ".bmp": "bmp", ".webp": "libwebp"}
VIDEO_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                    ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".nut": "nut"}
DEFAULT_SEQUENCE_FPS = Fraction(25)  # what ffmpeg assumes for image sequences
DEINTERLACE_MODES = ("off", "frame", "field")

# How far before a --preview start to look for subtitle cues that are still on screen at the start,
# and to seek for audio (containers without an index, MPEG-TS/PS, can land a little after the target).
SUBTITLE_LOOKBACK_S = 60
AUX_SEEK_MARGIN_S = 5

# Text subtitles a container cannot hold are converted to its own text codec (as ffmpeg does).
_TEXT_SUBTITLES = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}

# FFmpeg's names for the colour enums (libavutil/pixfmt.h); 2 / 0 = unspecified -> None.
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
              9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
_TRC = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
        9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
        14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
_SPACE = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
          9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 14: "ictcp"}
_RANGE = {1: "tv", 2: "pc"}
# swscale only knows a few YUV<->RGB matrices; map the container's matrix onto them.
_SWS_MATRIX = {"bt709": Colorspace.ITU709, "fcc": Colorspace.FCC, "bt470bg": Colorspace.ITU601,
               "smpte170m": Colorspace.ITU601, "smpte240m": Colorspace.SMPTE240M,
               "bt2020nc": Colorspace.BT2020, "bt2020c": Colorspace.BT2020}
_SWS_FLAGS = Interpolation.BICUBIC  # ffmpeg's default, so frames match what `ffmpeg -pix_fmt rgb24` gives


def _inv(table: dict[int, str]) -> dict[str, int]:
    return {v: k for k, v in table.items()}


@dataclass(frozen=True)
class CodecSpec:
    """Sensible defaults for one output codec; `pix_fmt_hi` is used for >8-bit sources."""

    encoder: str
    pix_fmt: str
    pix_fmt_hi: str
    crf: int | None = None
    preset: str | None = None


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("libx264", "yuv420p", "yuv420p10le", crf=16, preset="medium"),
    "hevc": CodecSpec("libx265", "yuv420p", "yuv420p10le", crf=18, preset="medium"),
    "av1": CodecSpec("libsvtav1", "yuv420p", "yuv420p10le", crf=24, preset="8"),
    "vp9": CodecSpec("libvpx-vp9", "yuv420p", "yuv420p10le", crf=24, preset="good"),
    "ffv1": CodecSpec("ffv1", "yuv444p", "yuv444p10le"),
    "prores": CodecSpec("prores_ks", "yuv422p10le", "yuv422p10le", preset="hq"),
    "png": CodecSpec("png", "rgb24", "rgb48be"),
}
_CODEC_ALIASES = {"h265": "hevc", "x264": "h264", "x265": "hevc", "libx264": "h264", "libx265": "hevc",
                  "svtav1": "av1", "libsvtav1": "av1", "libvpx-vp9": "vp9", "prores_ks": "prores"}


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
    bit_depth: int = 8
    pix_fmt: str = "rgb24"
    codec: str = ""
    container: str = ""
    color_range: str | None = None  # "tv" (limited) | "pc" (full) | None
    color_primaries: str | None = None
    color_trc: str | None = None
    colorspace: str | None = None  # the YUV matrix, FFmpeg names ("bt709", "smpte170m", ...)
    rotation: int = 0  # degrees counter-clockwise a player applies (display matrix); 0 when applied
    sample_aspect_ratio: Fraction | None = None
    has_audio: bool = False
    has_subtitles: bool = False
    attachments: tuple[str, ...] = ()  # names of Matroska attachments (fonts for styled subtitles)
    is_image_sequence: bool = False
    is_still_image: bool = False
    num_frames_exact: bool = False
    duration: float | None = None  # seconds
    files: list[Path] = field(default_factory=list, repr=False)  # image inputs only

    @property
    def dtype(self) -> type:
        """numpy dtype of `Frame.rgb`: uint16 (full 0..65535 scale) for >8-bit sources."""
        return np.uint16 if self.bit_depth > 8 else np.uint8


@dataclass
class Frame:
    """One decoded frame: rgb [H, W, 3] uint8 (or uint16 for >8-bit), pts in info.time_base."""

    rgb: np.ndarray
    pts: int
    index: int


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


_FIELD = re.compile(r"%0?(\d*)d")  # the frame number in an image pattern: %d, %06d


def is_pattern(path: str | Path) -> bool:
    """Whether `path` names an image sequence (frames/%06d.png): an image extension and exactly one
    %d / %0Nd field. Any other `%` is part of a plain name (`50%_speed.mp4`, `clip 100%.png`)."""
    path = Path(path)
    return is_image_path(path) and len(_FIELD.findall(path.name)) == 1


def frame_name(pattern: Path, n: int) -> str:
    """The file name of image `n` of a pattern: frames/%06d.png -> 000001.png for n = 1."""
    m = _FIELD.search(pattern.name)
    assert m is not None
    return pattern.name[: m.start()] + m[0] % n + pattern.name[m.end():]


def _check_fields(path: Path, error: type[Exception]) -> None:
    """An image name with several %d fields is neither a pattern nor a plain name: refuse it."""
    n = len(_FIELD.findall(path.name))
    if n > 1 and is_image_path(path):
        raise error(f"{path}: an image pattern takes exactly one %d field (like frames/%06d.png), not {n}")


def _ffmsg(exc: BaseException) -> str:
    """FFmpeg errors carry the file name already; keep only the reason."""
    return getattr(exc, "strerror", None) or str(exc)


# ------------------------------------------------------------------------------------------ reading


def probe(path: str | Path, *, fps: float | Fraction | None = None) -> VideoInfo:
    """Describe a video, image sequence or still image; decodes one frame to be sure it can."""
    with open_reader(path, fps=fps) as reader:
        return reader.info


def open_reader(
    path: str | Path,
    *,
    fps: float | Fraction | str | None = None,
    rotate: str = "keep",
    ignore_decode_errors: bool = False,
    deinterlace: str = "off",
    start: float | Fraction | None = None,
    duration: float | Fraction | None = None,
    threads: int = 0,
    warn: bool = True,
) -> VideoReader:
    """Open a video file, an image pattern (`frames/%06d.png`), a folder of images or one image.

    fps: frame rate for image inputs (default 25, as ffmpeg); ignored for videos, which keep their
    own timestamps. rotate: "keep" leaves the pixels as stored and reports `info.rotation` for the
    writer to tag; "apply" turns the pixels upright. ignore_decode_errors: skip undecodable packets
    and count them in `reader.dropped_frames`. deinterlace: "frame" runs every frame of a video
    through FFmpeg's bwdif (one frame out per frame in, timing unchanged); "field" makes a frame of
    every field (double rate: 50i -> 50p, time base halved). start/duration: only the frames in this span
    (seconds from the first frame; seeks, so a preview does not decode what comes before).
    warn: log what the source has that the frames lose (alpha, interlacing, odd rotations); a second
    reader of the same file passes False so that each warning appears once.
    """
    if rotate not in ("keep", "apply"):
        raise OptionError(f"rotate must be 'keep' or 'apply', not {rotate!r}")
    if deinterlace not in DEINTERLACE_MODES:
        raise OptionError(f"--deinterlace {deinterlace!r} is not one of: {', '.join(DEINTERLACE_MODES)}")
    if (start is not None and start < 0) or (duration is not None and duration <= 0):
        raise OptionError(f"invalid span: start={start}, duration={duration}")
    files = _image_inputs(Path(path))
    if files is not None:
        if deinterlace != "off" and warn:
            log.warning("%s: --deinterlace is for videos; images are taken as they are", path)
        reader: VideoReader = _ImageReader(Path(path), files, fps=fps, warn=warn)
    else:
        if fps is not None and warn:
            log.warning("%s: fps is only used for image inputs; the video keeps its own timing", path)
        reader = VideoReader(Path(path), rotate=rotate, ignore_decode_errors=ignore_decode_errors,
                             deinterlace=deinterlace, threads=threads, warn=warn)
    if start is not None or duration is not None:
        try:
            reader._select_span(start, duration)
        except BaseException:
            reader.close()
            raise
    return reader


def _image_inputs(path: Path) -> list[Path] | None:
    """The image files an input names, sorted by frame number; None when it is a video file."""
    _check_fields(path, InputError)
    if is_pattern(path):
        m = _FIELD.search(path.name)
        assert m is not None
        rx = re.compile(re.escape(path.name[: m.start()]) + r"(\d+)" + re.escape(path.name[m.end():]) + "$")
        folder = path.parent
        if not folder.is_dir():
            raise InputError(f"{path}: folder {folder} does not exist")
        hits = sorted((int(mm[1]), p) for p in folder.iterdir() if (mm := rx.match(p.name)))
        if not hits:
            raise InputError(f"{path}: no files match this pattern")
        return [p for _, p in hits]
    if path.is_dir():
        def key(p: Path) -> list:
            return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
        images = sorted((p for p in path.iterdir() if p.is_file() and is_image_path(p)), key=key)
        if not images:
            raise InputError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        return images
    if is_image_path(path):
        _check_input_file(path)
        return [path]
    return None


def _warn_if_see_through(path: Path, frame: av.VideoFrame) -> None:
    """Transparency is dropped (frames are RGB): say so, but only for real transparency (GIFs and
    many PNGs carry an alpha plane that is opaque everywhere)."""
    if not any(comp.is_alpha for comp in frame.format.components):
        return
    alpha = frame.reformat(format="rgba64le" if frame.format.components[0].bits > 8 else "rgba").to_ndarray()[..., 3]
    if alpha.min() < np.iinfo(alpha.dtype).max:
        log.warning("%s: the alpha channel (transparency) is dropped; the output is opaque", path)


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder with no images")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")


class VideoReader:
    """Decodes one video stream to RGB frames in presentation order; use from one thread."""

    info: VideoInfo
    dropped_frames: int

    _lo: int | None = None  # span selected by open_reader(start=, duration=), in pts
    _hi: int | None = None

    def __init__(self, path: Path, *, rotate: str = "keep", ignore_decode_errors: bool = False,
                 deinterlace: str = "off", threads: int = 0, warn: bool = True) -> None:
        _check_input_file(path)
        self.path = path
        self._warn = warn
        self.dropped_frames = 0
        self._deinterlace = deinterlace
        self._rate = 2 if deinterlace == "field" else 1  # frames out per frame in
        self._source_interlaced = False
        self._ignore = ignore_decode_errors
        self._rotate = rotate
        self._reformatter = VideoReformatter()
        try:
            self._container = av.open(str(path), metadata_errors="replace")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{path}: not a video FFmpeg can read ({_ffmsg(exc)})") from None
        try:
            self._open_stream(threads)
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, threads: int) -> None:
        path, c = self.path, self._container
        streams = [s for s in c.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            kinds = sorted({s.type for s in c.streams}) or ["no streams"]
            raise InputError(f"{path}: no video stream (has {', '.join(kinds)})")
        self._stream = s = streams[0]
        s.thread_type = "AUTO"
        if threads:
            s.codec_context.thread_count = threads
        self._frames = self._decoded()
        first = next(self._frames, None)
        if first is None:
            raise InputError(f"{path}: no decodable video frames")
        self._first: av.VideoFrame | None = first
        self._index = 0
        self._last_pts: int | None = None
        self.info = self._describe(first)

    def _describe(self, frame: av.VideoFrame) -> VideoInfo:
        s, c, cc = self._stream, self._container, self._stream.codec_context
        fmt = frame.format
        bit_depth = max(comp.bits for comp in fmt.components)
        tb = (Fraction(s.time_base) if s.time_base else Fraction(1, 90000)) / self._rate
        fps = s.average_rate or s.guessed_rate or s.base_rate or Fraction(25)
        fps = Fraction(fps) * self._rate
        duration = None
        if s.duration and s.time_base:
            duration = float(s.duration * s.time_base)
        elif c.duration:
            duration = c.duration / av.time_base
        exact = bool(s.frames)
        num_frames = s.frames * self._rate or (max(1, round(duration * fps)) if duration else 0)
        rng = frame.color_range or cc.color_range
        if rng not in _RANGE and fmt.name.startswith("yuvj"):
            rng = 2
        self._raw_w, self._raw_h = frame.width, frame.height
        rotation = int(round(frame.rotation or 0)) % 360
        rotation = rotation - 360 if rotation > 180 else rotation
        if rotation % 90:
            if self._warn:
                log.warning("%s: rotation %d is not a multiple of 90 degrees; ignored", self.path, rotation)
            rotation = 0
        w, h = frame.width, frame.height
        if self._rotate == "apply" and rotation % 180:
            w, h = h, w
        sar = s.sample_aspect_ratio or cc.sample_aspect_ratio
        info = VideoInfo(
            path=self.path, width=w, height=h, num_frames=num_frames, fps=fps, time_base=tb,
            start_pts=frame.pts if frame.pts is not None else 0, bit_depth=bit_depth,
            pix_fmt=fmt.name, codec=cc.name, container=c.format.name,
            color_range=_RANGE.get(rng),
            color_primaries=_PRIMARIES.get(frame.color_primaries or cc.color_primaries),
            color_trc=_TRC.get(frame.color_trc or cc.color_trc),
            colorspace=_SPACE.get(frame.colorspace or cc.colorspace) if not fmt.is_rgb else "gbr",
            rotation=0 if self._rotate == "apply" else rotation,
            sample_aspect_ratio=Fraction(sar) if sar and sar != 1 else None,
            has_audio=bool(c.streams.audio), has_subtitles=bool(c.streams.subtitles),
            attachments=tuple(s.name or f"#{s.index}" for s in c.streams if s.type == "attachment"),
            num_frames_exact=exact, duration=duration,
        )
        self._apply_rotation = rotation if self._rotate == "apply" else 0
        if self._warn:
            _warn_if_see_through(self.path, frame)
        if self._warn and self._source_interlaced and self._deinterlace == "off":
            log.warning("%s: interlaced video: fields upscaled together keep their combing; "
                        "use --deinterlace field (or frame)", self.path)
        if self._warn and not self._source_interlaced and self._deinterlace != "off":
            log.warning("%s: frames are not flagged interlaced but --deinterlace %s treats them as interlaced "
                        "(right for captures flagged wrongly; use --deinterlace off for progressive video)",
                        self.path, self._deinterlace)
        if self._warn and info.color_trc == "smpte2084":
            log.warning("%s: HDR video (PQ): DOVE was trained on SDR, so results may differ; video outputs keep "
                        "the colour tags but not the HDR10 mastering metadata (MaxCLL, mastering display), and "
                        "images keep neither", self.path)
        elif self._warn and info.color_trc == "arib-std-b67":
            log.warning("%s: HDR video (HLG): DOVE was trained on SDR, so results may differ; video outputs keep "
                        "the colour tags, images do not", self.path)
        self._expected_end = self._declared_end(tb)
        # Untagged YUV: players assume BT.709 for HD and BT.601 for SD; convert the same way.
        matrix = info.colorspace or ("bt709" if frame.height >= 720 or frame.width >= 1280 else "smpte170m")
        self._src_matrix = _SWS_MATRIX.get(matrix, Colorspace.ITU601)
        self._src_range = ColorRange.JPEG if info.color_range == "pc" else ColorRange.MPEG
        self._rgb_format = "rgb48le" if bit_depth > 8 else "rgb24"
        return info

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
        tag = s.metadata.get("DURATION") or s.metadata.get("duration")
        if tag and (m := re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag.strip())):
            seconds = Fraction(int(m[1]) * 3600 + int(m[2]) * 60) + Fraction(m[3])
        elif c.duration and len(c.streams) == 1:
            seconds = Fraction(c.duration, av.time_base)
        else:
            return None
        start = Fraction(c.start_time or 0, av.time_base)
        return int((start + seconds) / tb)

    def _check_complete(self, decoded: int) -> None:
        """Raise (or count as dropped) when the stream ended before its declared duration."""
        info, end = self.info, self._expected_end
        if end is None or self._last_pts is None or not info.fps:
            return
        missing_s = (end - self._last_pts) * info.time_base - 1 / info.fps
        missing = int(round(missing_s * info.fps))
        if missing_s * info.fps < 1.5:
            return
        when = f"t={float((self._last_pts - info.start_pts) * info.time_base):.3f}s"
        if not self._ignore:
            raise InputError(f"{self.path}: file ends early: {decoded} frames decoded, about {missing} "
                             f"more expected after {when} (truncated or damaged); "
                             "use --ignore-decode-errors to keep what can be read")
        self.dropped_frames += missing
        log.warning("%s: file ends early after frame %d (%s); about %d frames missing",
                    self.path, decoded, when, missing)

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The stream's frames, through bwdif when deinterlacing (pts in the time base of `info`)."""
        if self._deinterlace == "off":
            yield from self._decode()
            return
        graph = av.filter.Graph()
        source = graph.add_buffer(template=self._stream)
        mode = "send_field" if self._deinterlace == "field" else "send_frame"
        bwdif = graph.add("bwdif", f"mode={mode}:parity=auto:deint=all")
        sink = graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        tb = Fraction(self._stream.time_base) / self._rate
        for frame in itertools.chain(self._decode(), [None]):
            graph.push(frame)  # None flushes the frame bwdif holds back
            while True:
                try:
                    out = graph.pull()
                except (av.BlockingIOError, av.EOFError):
                    break
                if out.pts is not None and out.time_base and out.time_base != tb:
                    out.pts = round(out.pts * out.time_base / tb)  # bwdif always halves the time base
                    out.time_base = tb
                yield out

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Demux and decode, turning FFmpeg errors into InputError or dropped-frame counts."""
        demux = self._container.demux(self._stream)
        decoded = 0
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.FFmpegError as exc:  # the file ends or breaks: nothing more can be read
                self._decode_error(exc, decoded, None)
                return
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self._decode_error(exc, decoded, packet)
                continue
            for frame in frames:
                if decoded == 0:
                    self._source_interlaced = bool(frame.interlaced_frame)
                decoded += 1
                yield frame

    def _decode_error(self, exc: BaseException, decoded: int, packet: av.Packet | None) -> None:
        when = ""
        if packet is not None and packet.pts is not None and packet.time_base:
            when = f", t={float(packet.pts * packet.time_base):.3f}s"
        if not self._ignore:
            raise InputError(f"{self.path}: decode error at frame {decoded}{when} ({_ffmsg(exc)}); "
                             "use --ignore-decode-errors to skip broken frames") from None
        self.dropped_frames += 1
        log.warning("%s: skipped undecodable data at frame %d%s (%s)", self.path, decoded, when, _ffmsg(exc))

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        out = self._reformatter.reformat(
            frame, width=self._raw_w, height=self._raw_h, format=self._rgb_format,
            src_colorspace=self._src_matrix, src_color_range=self._src_range,
            dst_color_range=ColorRange.JPEG, interpolation=_SWS_FLAGS)
        rgb = out.to_ndarray()
        if self._apply_rotation:
            rgb = np.rot90(rgb, k=self._apply_rotation // 90)
        return np.ascontiguousarray(rgb)

    def _select_span(self, start: float | Fraction | None, duration: float | Fraction | None) -> None:
        """Keep only frames with start <= t < start + duration (t in seconds from the first frame)."""
        info = self.info
        lo = info.start_pts + int(Fraction(start or 0) / info.time_base)
        self._lo = lo
        self._hi = None if duration is None else lo + int(Fraction(duration) / info.time_base)
        if start:
            self._seek_before(lo)
        total = (info.duration or 0) - float(start or 0)
        span = total if duration is None else min(total, float(duration))
        info.num_frames = max(1, round(span * info.fps)) if span > 0 else 0
        info.num_frames_exact = False

    def _seek_before(self, lo: int) -> None:
        """Start decoding at a frame at or before pts `lo` (in info.time_base).

        MP4 and Matroska seek exactly through their index; MPEG-TS/PS have none, so a seek can land
        after `lo` or between keyframes (nothing decodes until the next one): then step further back,
        and in the end decode from the beginning.
        """
        s, tb = self._stream, self.info.time_base
        for back_s in (0, 1, 5, 20, None):
            seconds = 0 if back_s is None else max(0, lo * tb - back_s)
            self._container.seek(int(seconds / s.time_base), stream=s, backward=True)
            s.codec_context.flush_buffers()
            frames = self._decoded()
            first = next(frames, None)
            if back_s is None or (first is not None and (first.pts is None or first.pts <= lo)):
                self._frames, self._first = frames, first
                return

    def __iter__(self) -> Iterator[Frame]:
        step = max(1, round(1 / (self.info.fps * self.info.time_base))) if self.info.fps else 1
        while True:
            if self._first is not None:
                frame, self._first = self._first, None
            else:
                frame = next(self._frames, None)
                if frame is None:
                    self._check_complete(self._index)
                    return
            pts = frame.pts
            if pts is None:
                pts = self.info.start_pts if self._last_pts is None else self._last_pts + step
            self._last_pts = pts
            if self._lo is not None and pts < self._lo:
                continue
            if self._hi is not None and pts >= self._hi:
                return
            yield Frame(self._to_rgb(frame), int(pts), self._index)
            self._index += 1

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ImageReader(VideoReader):
    """Image sequence or single image: pts = index at 1/fps; every image must have the same size."""

    def __init__(self, path: Path, files: list[Path], *, fps: float | Fraction | str | None,
                 warn: bool = True) -> None:
        self.path = path
        self.dropped_frames = 0
        self._files = files
        self._reformatter = VideoReformatter()
        first = self._load(files[0])
        rate = Fraction(fps).limit_denominator(1001000) if fps else DEFAULT_SEQUENCE_FPS
        if rate <= 0:
            raise OptionError(f"fps must be positive, not {fps}")
        bit_depth = max(comp.bits for comp in first.format.components)
        if warn:
            _warn_if_see_through(path, first)
        self.info = VideoInfo(
            path=path, width=first.width, height=first.height, num_frames=len(files), fps=rate,
            time_base=1 / rate, start_pts=0, bit_depth=bit_depth, pix_fmt=first.format.name,
            codec=files[0].suffix.lower().lstrip("."), container="image2",
            is_image_sequence=len(files) > 1 or is_pattern(path) or path.is_dir(),
            is_still_image=len(files) == 1 and not (is_pattern(path) or path.is_dir()),
            num_frames_exact=True, duration=float(len(files) / rate), files=list(files))
        self._rgb_format = "rgb48le" if bit_depth > 8 else "rgb24"
        self._first_frame: av.VideoFrame | None = first
        self._offset = 0  # index of the first file in the selected span

    def _load(self, file: Path) -> av.VideoFrame:
        _check_input_file(file)
        try:
            with av.open(str(file)) as c:
                frame = next(c.decode(video=0), None)
        except (av.FFmpegError, StopIteration) as exc:
            raise InputError(f"{file}: not an image FFmpeg can read ({_ffmsg(exc)})") from None
        if frame is None:
            raise InputError(f"{file}: no image in this file")
        return frame

    def _select_span(self, start: float | Fraction | None, duration: float | Fraction | None) -> None:
        first = int(Fraction(start or 0) * self.info.fps)
        last = len(self._files) if duration is None else first + int(Fraction(duration) * self.info.fps)
        self._offset = first
        self._files = self._files[first:last]
        self.info.num_frames = len(self._files)
        self._first_frame = None

    def __iter__(self) -> Iterator[Frame]:
        for i, file in enumerate(self._files):
            frame = self._first_frame if i == 0 and self._first_frame is not None else self._load(file)
            self._first_frame = None
            if (frame.width, frame.height) != (self.info.width, self.info.height):
                raise InputError(f"{file}: size {frame.width}x{frame.height} differs from the first "
                                 f"image ({self.info.width}x{self.info.height})")
            rng = ColorRange.JPEG if frame.format.name.startswith("yuvj") or frame.color_range == 2 \
                else ColorRange.MPEG
            out = self._reformatter.reformat(frame, format=self._rgb_format, src_color_range=rng,
                                             dst_color_range=ColorRange.JPEG, interpolation=_SWS_FLAGS)
            yield Frame(np.ascontiguousarray(out.to_ndarray()), i + self._offset, i)

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ writing


def _has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except (av.FFmpegError, ValueError):
        return False


def default_codec(path: str | Path) -> str:
    """The codec a video output gets when none is chosen: h264, or VP9 (else AV1) for WebM."""
    if VIDEO_EXTENSIONS.get(Path(path).suffix.lower()) != "webm":
        return "h264"
    return "vp9" if _has_encoder(CODECS["vp9"].encoder) else "av1"


def _resolve_codec(codec: str) -> tuple[str, CodecSpec]:
    name = _CODEC_ALIASES.get(codec.lower(), codec.lower())
    if name not in CODECS:
        raise OptionError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")
    spec = CODECS[name]
    if not _has_encoder(spec.encoder):
        raise OptionError(f"codec {name}: encoder {spec.encoder} is not in this FFmpeg build")
    return name, spec


def _choose_pix_fmt(spec: CodecSpec, name: str, requested: str | None, high: bool, width: int,
                    height: int) -> str:
    """The requested/default pixel format, switched to 4:4:4 when the size is odd (no padding)."""
    supported = {f.name for f in av.Codec(spec.encoder, "w").video_formats or []}
    pf = requested or (spec.pix_fmt_hi if high and spec.pix_fmt_hi in supported else spec.pix_fmt)
    if high and not requested and pf == spec.pix_fmt != spec.pix_fmt_hi:
        log.warning("the source has more than 8 bits per channel but this FFmpeg's %s writes %s: "
                    "the output is 8-bit", spec.encoder, pf)
    try:
        fmt = av.VideoFormat(pf)
    except (ValueError, av.FFmpegError):
        raise OptionError(f"unknown pixel format {pf!r}") from None
    if supported and pf not in supported:
        raise OptionError(f"codec {name} cannot write pixel format {pf} "
                          f"(it supports {', '.join(sorted(supported))})")
    odd_w, odd_h = width % 2, height % 2
    sub_w, sub_h = fmt.chroma_width(2) < 2, fmt.chroma_height(2) < 2
    if (odd_w and sub_w) or (odd_h and sub_h):
        full = re.sub(r"yuv4[12]0p|yuv422p", "yuv444p", pf)
        if full == pf or (supported and full not in supported):
            raise OutputError(f"codec {name} with {pf} needs an even size, got {width}x{height}; "
                              "choose another codec (e.g. h264, hevc, ffv1) or crop the input")
        log.warning("output size %dx%d is odd: writing %s instead of %s (4:2:0 needs even sizes)",
                    width, height, full, pf)
        pf = full
    return pf


def _check_encoder_options(encoder: str, opts: dict[str, str], given: dict[str, Any], width: int, height: int,
                           pix_fmt: str, fps: Fraction) -> None:
    """Open the encoder once with the options, so that a typo is an error now, naming the option,
    rather than a write failure at the first frame (or an option silently ignored)."""
    cc = av.CodecContext.create(encoder, "w")
    cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
    rate = Fraction(fps) if fps and fps > 0 else Fraction(25)
    cc.time_base, cc.framerate = 1 / rate, rate
    cc.options = dict(opts)
    shown = " ".join(f"{k}={v}" for k, v in given.items() if k != "threads") or "threads"  # threads: dove's
    try:
        cc.open()
    except (av.FFmpegError, ValueError) as exc:
        raise OptionError(f"--codec-option {shown}: {encoder} refused them ({_ffmsg(exc)})") from None
    unknown = sorted(set(cc.options) & set(map(str, given)))
    if unknown:
        raise OptionError(f"--codec-option {', '.join(unknown)}: {encoder} has no such option")


# Every x86 instruction set x264 knows up to AVX2 (names as x264's --asm takes them).
X264_UP_TO_AVX2 = "MMX2,SSE,SSE2,SSE2Fast,SSE3,SSSE3,SSE4,SSE4.2,LZCNT,AVX,FMA3,BMI1,BMI2,AVX2"


@functools.cache
def x264_options() -> dict[str, str]:
    """libx264 options that make its bytes a function of its input (empty where nothing is needed).

    x264's AVX-512 code reads memory it never wrote: on an AVX-512 Xeon the same frames gave
    different bytes from run to run (16 different files in 20 runs). Every AVX-512 CPU has AVX2, so
    there x264 is told to stop at AVX2: one file in 20 runs, same speed (1.36 vs 1.37 s for
    35 960x480 frames). x265 leaves AVX-512 off by itself.
    """
    try:
        cpu = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    return {"x264-params": f"asm={X264_UP_TO_AVX2}"} if " avx512f" in cpu else {}


CRF_RANGE = {"h264": (0, 51), "hevc": (0, 51), "av1": (0, 63), "vp9": (0, 63)}
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")  # fmt: skip


def _encoder_options(name: str, spec: CodecSpec, crf: int | float | None, preset: str | None,
                     extra: dict[str, Any] | None) -> dict[str, str]:
    opts: dict[str, str] = {}
    if crf is not None and name in CRF_RANGE and not CRF_RANGE[name][0] <= crf <= CRF_RANGE[name][1]:
        lo, hi = CRF_RANGE[name]
        raise OptionError(f"--crf {crf} is out of range for {name} ({lo} to {hi}; lower is better)")
    if preset is not None and spec.encoder in ("libx264", "libx265") and preset not in X26X_PRESETS:
        raise OptionError(f"--preset {preset} is not an {name} preset ({', '.join(X26X_PRESETS)})")
    crf = spec.crf if crf is None else crf
    preset = spec.preset if preset is None else preset
    if name in ("h264", "hevc", "av1", "vp9"):
        if crf is not None:
            opts["crf"] = str(crf)
        if name == "vp9":
            opts["b"] = "0"  # constant quality mode
            opts["row-mt"] = "1"
            if preset is not None:
                opts["cpu-used" if str(preset).lstrip("-").isdigit() else "deadline"] = str(preset)
        elif preset is not None:
            opts["preset"] = str(preset)
        if name == "hevc":
            opts["x265-params"] = "log-level=error"
    elif name == "prores":
        if preset is not None:
            opts["profile"] = str(preset)
        if crf is not None:
            opts["qscale"] = str(crf)
    elif crf is not None or preset is not None:
        log.warning("codec %s is lossless; --crf/--preset ignored", name)
    if name == "ffv1":
        opts.setdefault("level", "3")
        opts.setdefault("slicecrc", "1")
    opts.update({str(k): str(v) for k, v in (extra or {}).items()})
    if spec.encoder == "libx264" and x264_options():  # the user's own x264-params come after, so they win
        opts["x264-params"] = ":".join(p for p in (x264_options()["x264-params"], opts.get("x264-params")) if p)
    return opts


def _container_accepts(fmt_name: str, codec: str, add: Any) -> bool:
    """Whether a muxer takes a stream: its codec list first, else write a header to memory.

    `supported_codecs` is only a hint (MPEG-TS lists nothing, Matroska omits some codecs it can
    store), so a definite answer comes from letting FFmpeg's muxer initialise.
    """
    with av.open(io.BytesIO(), "w", format=fmt_name) as probe_out:
        if codec in probe_out.supported_codecs:
            return True
        try:
            add(probe_out)
            probe_out.start_encoding()
            return True
        except (av.FFmpegError, ValueError):
            return False


def _temp_sibling(path: Path, suffix: str = "") -> Path:
    return path.with_name(f".{path.stem}.dove-{uuid.uuid4().hex[:8]}.part{suffix}")


def _disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == errno.ENOSPC


def check_output(path: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Fail before any work: never the input, an existing output needs --overwrite, the folder
    must be creatable. Touches nothing on disk, so it runs before a model loads; the writer makes
    the folder."""
    _check_fields(path, OutputError)
    sources = {p.resolve() for p in inputs}
    targets = _matching_images(path) if is_pattern(path) else [path]
    if any(t.resolve() in sources for t in targets):
        raise OutputError(f"{path}: is the input; choose another output name")
    if is_pattern(path):
        if path.parent.is_file():
            raise OutputError(f"{path}: {path.parent} is a file, not a folder")
        existing = _matching_images(path)
        if existing and not overwrite:
            raise OutputError(f"{path}: {len(existing)} matching images already exist in {path.parent} "
                              "(use --overwrite to replace them)")
    elif path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name like {path / 'out.mp4'}")
    elif path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
    folder = path.parent.absolute()
    base = next(p for p in (folder, *folder.parents) if p.exists())
    if not base.is_dir():
        raise OutputError(f"{path}: cannot create folder {folder} ({base} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {base} is not writable")


def _matching_images(pattern: Path) -> list[Path]:
    """Files in the pattern's folder that the pattern (frames/%06d.png) would name."""
    if not pattern.parent.is_dir():
        return []
    m = _FIELD.search(pattern.name)
    assert m is not None
    rx = re.compile(re.escape(pattern.name[: m.start()]) + r"\d+" + re.escape(pattern.name[m.end():]) + "$")
    return [p for p in pattern.parent.iterdir() if rx.match(p.name)]


def _check_output(path: Path, overwrite: bool) -> Path | None:
    """Refuse to replace `path` unless asked; create its folder (returns the topmost one made)."""
    check_output(path, overwrite)
    return make_folder(path.parent, path)


def make_folder(folder: Path, path: Path) -> Path | None:
    """Create `folder` (for writing `path`); returns the topmost folder made, for remove_made_folders."""
    top = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")
    return top


def remove_made_folders(folder: Path | None) -> None:
    """Remove folders this writer created, if they are still empty (nothing left behind)."""
    if folder is None:
        return
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [folder]:
        try:
            d.rmdir()
        except OSError:
            return


class VideoWriter:
    """Encodes RGB frames, muxes the input's audio/subtitles alongside, renames into place at close.

    Use from one thread. As a context manager it closes on success and aborts on an exception.
    """

    path: Path
    frames_written: int

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def end_segment(self) -> None:
        """A point where a resumable writer may close a segment (dove_cli.resume); no-op here."""

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def attachments_dropped(info: VideoInfo, output: Path, subtitles: str) -> str | None:
    """A warning when the input's attachments (fonts) cannot go along to `output`, else None."""
    if not info.attachments or subtitles == "none" or VIDEO_EXTENSIONS.get(output.suffix.lower()) in (None, "matroska"):
        return None
    return (f"{info.path}: {len(info.attachments)} attachment(s) not copied ({', '.join(info.attachments)}): "
            f"only .mkv holds them, and styled subtitles need their fonts")


def open_writer(
    path: str | Path,
    info: VideoInfo,
    width: int,
    height: int,
    *,
    codec: str | None = None,
    crf: int | float | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
    codec_options: dict[str, Any] | None = None,
    audio: str = "copy",
    subtitles: str = "copy",
    overwrite: bool = False,
    start: float | Fraction | None = None,
    end: float | Fraction | None = None,
    work: Path | None = None,
    first: int = 0,
) -> VideoWriter:
    """Start writing `path` (a video file, an image pattern like `frames/%06d.png`, or one image).

    info: the reader's VideoInfo: time base, fps, colour, rotation and the source of audio,
    subtitle, chapter and metadata copies. codec: None = the container's default (default_codec).
    audio: "copy" (packet for packet; error if the container cannot hold the codec), "transcode"
    (copy what fits, re-encode the rest to AAC, Opus for WebM) or "none". subtitles: "copy"
    (packet for packet; text subtitles the container cannot hold are converted to its text codec,
    e.g. srt -> mov_text for MP4; bitmap ones are refused) or "none". start/end: the span of the
    input (seconds from its first frame) that this output covers, as for a preview: audio and
    subtitles outside it are left out and every timestamp shifts so that the output starts at 0.
    Codec and pixel-format choices are validated here, before any frame is encoded. work/first
    (image patterns only): write the images into the folder `work`, which persists after abort()
    and may already hold the first `first` images of an interrupted run (--resume); close() moves
    them all into place.
    """
    path = Path(path)
    if audio not in ("copy", "transcode", "none"):
        raise OptionError(f"audio must be copy, transcode or none, not {audio!r}")
    if subtitles not in ("copy", "none"):
        raise OptionError(f"subtitles must be copy or none, not {subtitles!r}")
    if width < 1 or height < 1:
        raise OptionError(f"output size must be positive, got {width}x{height}")
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        _check_fields(path, OutputError)
        return _ImageWriter(path, info, width, height, codec_options=codec_options, overwrite=overwrite,
                            work=work, first=first)
    if ext not in VIDEO_EXTENSIONS and _FIELD.search(path.name):
        raise OutputError(f"{path}: image pattern needs an image extension "
                          f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
    if ext not in VIDEO_EXTENSIONS:
        raise OutputError(f"{path}: unknown output extension {ext or '(none)'!r} (use "
                          f"{', '.join(sorted(VIDEO_EXTENSIONS))}, or an image pattern like frames/%06d.png)")
    return _ContainerWriter(path, info, width, height, codec=codec, crf=crf, preset=preset,
                            pix_fmt=pix_fmt, codec_options=codec_options, audio=audio,
                            subtitles=subtitles, overwrite=overwrite, start=start, end=end)


class _ContainerWriter(VideoWriter):
    def __init__(self, path: Path, info: VideoInfo, width: int, height: int, *, codec: str | None,
                 crf: int | float | None, preset: str | None, pix_fmt: str | None,
                 codec_options: dict[str, Any] | None, audio: str, subtitles: str, overwrite: bool,
                 start: float | Fraction | None = None, end: float | Fraction | None = None) -> None:
        self.path, self.info, self.frames_written = path, info, 0
        # Output time zero and end, in seconds on the input's timeline (None: keep timestamps as they are).
        origin = Fraction(info.start_pts) * info.time_base
        self._t0 = origin + Fraction(start) if start is not None else None
        self._t1 = (origin + Fraction(end)) if end is not None else None
        self._shift = round(self._t0 / info.time_base) if self._t0 is not None else 0
        self._done = False
        self._src: av.container.InputContainer | None = None
        fmt_name = VIDEO_EXTENSIONS[path.suffix.lower()]
        name, spec = _resolve_codec(codec or default_codec(path))
        pf = _choose_pix_fmt(spec, name, pix_fmt, info.bit_depth > 8, width, height)
        self.pix_fmt = pf  # as chosen (e.g. 4:4:4 for odd sizes), so that segments can repeat it
        opts = _encoder_options(name, spec, crf, preset, codec_options)
        if codec_options:
            _check_encoder_options(spec.encoder, opts, codec_options, width, height, pf, info.fps)
        self._tmp = _temp_sibling(path, path.suffix)
        self._made = _check_output(path, overwrite)
        try:
            self._out = av.open(str(self._tmp), "w", format=fmt_name)
        except (av.FFmpegError, OSError) as exc:
            self._remove_tmp()
            remove_made_folders(self._made)
            raise OutputError(f"{path}: cannot write here ({_ffmsg(exc)})") from None
        try:
            def add_video(c: Any) -> None:
                vs = c.add_stream(spec.encoder, rate=info.fps or 25)
                vs.width, vs.height, vs.pix_fmt = width, height, pf
                vs.codec_context.options = opts

            if not _container_accepts(fmt_name, av.Codec(spec.encoder, "w").name, add_video):
                raise OutputError(f"{path}: the {fmt_name} container cannot hold {name} video; "
                                  f"use --codec {default_codec(path)} or another extension (e.g. .mkv)")
            self._setup_video(spec, pf, opts, width, height)
            self._setup_aux(audio, subtitles, fmt_name)
        except BaseException:
            self.abort()
            raise

    # -- setup
    def _setup_video(self, spec: CodecSpec, pf: str, opts: dict[str, str], width: int, height: int) -> None:
        info = self.info
        fps = info.fps if info.fps and info.fps > 0 else Fraction(25)
        vs = self._out.add_stream(spec.encoder, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pf
        vs.time_base = info.time_base
        cc = vs.codec_context
        cc.time_base = info.time_base
        cc.framerate = fps
        cc.options = opts
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        self._setup_color(cc, pf, width, height)
        if info.rotation:
            vs.set_display_rotation(info.rotation)
        self._vs = vs
        self._reformatter = VideoReformatter()
        self._step = max(1, round(1 / (fps * info.time_base)))
        self._last_pts: int | None = None
        self._w, self._h = width, height

    def _setup_color(self, cc: Any, pf: str, width: int, height: int) -> None:
        """Colour: keep the input's tags; untagged HD (which players treat as BT.709) is tagged BT.709."""
        info = self.info
        self._fmt = av.VideoFormat(pf)
        self._is_rgb = self._fmt.is_rgb
        matrix, prim, trc = info.colorspace, info.color_primaries, info.color_trc
        hd = width >= 1280 or height >= 720
        if matrix is None or matrix == "gbr":
            matrix = "bt709" if hd else None
        if prim is None and trc is None and hd and info.colorspace in (None, "gbr"):
            prim, trc = "bt709", "bt709"
        full = info.color_range == "pc"
        self._dst_matrix = _SWS_MATRIX.get(matrix or "smpte170m", Colorspace.ITU601)
        self._dst_range = ColorRange.JPEG if full or self._is_rgb else ColorRange.MPEG
        self._tags = {"color_range": 2 if full or self._is_rgb else 1,
                      "color_primaries": _inv(_PRIMARIES).get(prim or "", 2),
                      "color_trc": _inv(_TRC).get(trc or "", 2),
                      "colorspace": 0 if self._is_rgb else _inv(_SPACE).get(matrix or "", 2)}
        for k, v in self._tags.items():
            setattr(cc, k, v)

    def _setup_aux(self, audio: str, subtitles: str, fmt_name: str) -> None:
        """Open the input a second time to copy its audio/subtitles, chapters and metadata."""
        info = self.info
        self._aux: dict[int, tuple[Any, str]] = {}  # input stream index -> (output stream, mode)
        self._pending: av.Packet | None = None
        self._held_cues: dict[int, av.Packet] = {}  # output stream index -> converted cue not yet muxed
        self._aux_iter: Iterator[av.Packet] | None = None
        if info.is_image_sequence or info.is_still_image or not info.path.is_file():
            return
        try:
            src = av.open(str(info.path), metadata_errors="replace")
        except av.FFmpegError as exc:
            raise InputError(f"{info.path}: cannot reopen for audio ({_ffmsg(exc)})") from None
        self._src = src
        out = self._out
        keep = {k: v for k, v in src.metadata.items()
                if k not in ("major_brand", "minor_version", "compatible_brands", "encoder")}
        out.metadata.update(keep)
        try:
            chapters = src.chapters()
            if chapters:
                out.set_chapters(chapters)
        except (AttributeError, av.FFmpegError, ValueError) as exc:  # pragma: no cover
            log.warning("%s: chapters not copied (%s)", self.path, exc)
        if subtitles != "none":
            self._copy_attachments(src, fmt_name)
        wanted = []
        if audio != "none":
            wanted += list(src.streams.audio)
        if subtitles != "none":
            wanted += list(src.streams.subtitles)
        for s in wanted:
            codec = s.codec_context.name
            if _container_accepts(fmt_name, codec, lambda c, s=s: c.add_stream_from_template(s)):
                ostream = out.add_stream_from_template(s)
                mode = "copy"
            elif s.type == "subtitle" and s.codec_context.codec.text_sub and fmt_name in _TEXT_SUBTITLES:
                ostream = self._text_subtitle_stream(s, _TEXT_SUBTITLES[fmt_name])
                mode = "subtitles"
            elif s.type == "audio" and audio == "transcode":
                target = "libopus" if fmt_name == "webm" else "aac"
                rate = s.codec_context.sample_rate or 48000
                if target == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                    rate = 48000
                ostream = out.add_stream(target, rate=rate, layout=s.codec_context.layout)
                mode = "transcode"
                log.info("%s: audio stream #%d (%s) re-encoded to %s", self.path, s.index, codec, target)
            else:
                what = "audio" if s.type == "audio" else "subtitles"
                hint = ("use --audio transcode to re-encode it or --audio none to drop it"
                        if s.type == "audio" else
                        f"write to {info.path.suffix or 'the input container'} or use --subtitles none")
                raise OutputError(f"{self.path}: the {fmt_name} container cannot hold {codec} {what} "
                                  f"(input stream #{s.index}); {hint}")
            for k, v in s.metadata.items():
                if not k.startswith("_STATISTICS") and k not in ("DURATION", "NUMBER_OF_FRAMES",
                                                                  "NUMBER_OF_BYTES", "BPS", "encoder"):
                    ostream.metadata[k] = v
            if "name" in s.metadata and "title" not in s.metadata:  # mp4 reads its title as "name"
                ostream.metadata["title"] = s.metadata["name"]
            try:
                ostream.disposition = s.disposition
            except (AttributeError, TypeError, ValueError):  # pragma: no cover
                pass
            self._aux[s.index] = (ostream, mode)
        vin = next((s for s in src.streams.video), None)
        if vin is not None:
            for k in ("language", "title", "handler_name"):
                if k in vin.metadata:
                    self._vs.metadata[k] = vin.metadata[k]
        if self._aux:
            if self._t0 is not None and self._t0 > 0:
                subtitles_in = any(src.streams[i].type == "subtitle" for i in self._aux)
                # a cue already on screen at the start; and MPEG-TS/PS seeks can land late
                lookback = SUBTITLE_LOOKBACK_S if subtitles_in else AUX_SEEK_MARGIN_S
                src.seek(int(max(0, self._t0 - lookback) * av.time_base), backward=True)
            self._aux_iter = iter(src.demux(*[src.streams[i] for i in self._aux]))

    def _copy_attachments(self, src: Any, fmt_name: str) -> None:
        """Matroska attachments (the fonts that ASS subtitles are styled with) go along with them;
        other containers cannot hold them (see `attachments_dropped`)."""
        if fmt_name != "matroska":
            return
        for s in (s for s in src.streams if s.type == "attachment"):
            self._out.add_attachment(s.name or f"attachment_{s.index}", s.mimetype or "application/octet-stream",
                                     bytes(s.data))

    def _text_subtitle_stream(self, s: Any, target: str) -> Any:
        """An output stream that re-encodes text subtitle stream `s` as `target` (srt -> mov_text...)."""
        dec = s.codec_context
        dec.open(strict=False)  # makes its ASS header, which the encoder starts from (as ffmpeg does)
        ostream = self._out.add_stream(target)
        ostream.time_base = ostream.codec_context.time_base = s.time_base
        ostream.codec_context.subtitle_header = dec.subtitle_header
        ostream.codec_context.open(strict=False)  # before the header is written: mov_text's extradata
        log.info("%s: subtitle stream #%d (%s) converted to %s", self.path, s.index, dec.name, target)
        return ostream

    def _convert_subtitle(self, p: av.Packet, ostream: Any) -> None:
        """Re-encode one text subtitle packet for the output's text codec, with the same timing."""
        try:
            cue = p.stream.codec_context.decode2(p)
            if cue is None or not len(cue):  # an empty sample (MP4 fills gaps between cues with them)
                return
            q = ostream.codec_context.encode_subtitle(cue)
        except av.FFmpegError as exc:
            log.warning("%s: skipped a subtitle that could not be converted (%s)", self.info.path, _ffmsg(exc))
            return
        q.pts, q.dts, q.time_base = p.pts, p.pts, p.time_base
        if p.duration:
            q.duration = p.duration
        q.stream = ostream
        # MP4/MOV text tracks play one sample after another: a cue that overlaps the next one would
        # push it late, so (as ffmpeg does) it is cut where the next one starts.
        held = self._held_cues.pop(ostream.index, None)
        if held is not None:
            if held.duration and held.pts + held.duration > q.pts:
                held.duration = max(1, q.pts - held.pts)
            self._mux(held)
        self._held_cues[ostream.index] = q

    # -- writing
    def _mux(self, packets: Any) -> None:
        try:
            self._out.mux(packets)
        except (av.FFmpegError, OSError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.abort()
        if _disk_full(exc):
            raise OutputError(f"{self.path}: disk full while writing; nothing was kept") from None
        raise OutputError(f"{self.path}: write failed ({_ffmsg(exc)})") from None

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one frame; pts in info.time_base (None: previous + one frame at info.fps)."""
        if self._done:
            raise OutputError(f"{self.path}: writer is already closed")
        if rgb.shape != (self._h, self._w, 3):
            raise ValueError(f"frame shape {rgb.shape} != ({self._h}, {self._w}, 3)")
        if pts is None:
            pts = self.info.start_pts if self._last_pts is None else self._last_pts + self._step
        elif self._last_pts is not None and pts <= self._last_pts:
            log.warning("%s: pts %d not increasing; using %d", self.path, pts, self._last_pts + 1)
            pts = self._last_pts + 1
        src_fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        if rgb.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"frame dtype must be uint8 or uint16, not {rgb.dtype}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=src_fmt)
        frame = self._reformatter.reformat(
            frame, format=self._fmt.name, src_colorspace=Colorspace.ITU601, dst_colorspace=self._dst_matrix,
            src_color_range=ColorRange.JPEG, dst_color_range=self._dst_range, interpolation=_SWS_FLAGS)
        for k, v in self._tags.items():
            setattr(frame, k, v)
        frame.pts, frame.time_base = int(pts) - self._shift, self.info.time_base
        self._last_pts = int(pts)
        try:
            packets = self._vs.encode(frame)
        except (av.FFmpegError, OSError) as exc:
            self._fail(exc)
        self._mux(packets)
        self.frames_written += 1
        self._pump_aux(float(pts * self.info.time_base))

    def _flush_video(self) -> None:
        self._mux(self._vs.encode(None))

    def _pump_aux(self, until: float | None) -> None:
        """Copy input audio/subtitle packets up to `until` seconds, so the file stays interleaved."""
        while self._aux_iter is not None:
            if self._pending is None:
                try:
                    self._pending = next(self._aux_iter, None)
                except av.FFmpegError as exc:
                    log.warning("%s: audio/subtitle copy stopped early (%s)", self.info.path, _ffmsg(exc))
                    self._pending = None
                if self._pending is None:
                    self._aux_iter = None
                    return
            p = self._pending
            t = p.dts if p.dts is not None else p.pts
            if until is not None and t is not None and p.time_base and float(t * p.time_base) > until:
                return
            self._pending = None
            if t is not None and p.time_base and not self._in_span(p, t):
                continue
            ostream, mode = self._aux[p.stream.index]
            if mode == "copy":
                if p.dts is None and p.pts is None:
                    continue  # demuxer's end-of-stream marker
                p.stream = ostream
                self._mux(p)
            elif mode == "subtitles":
                if p.pts is not None:
                    self._convert_subtitle(p, ostream)
            else:
                try:
                    frames = p.decode()
                except av.FFmpegError as exc:
                    log.warning("%s: skipped undecodable audio (%s)", self.info.path, _ffmsg(exc))
                    continue
                for f in frames:
                    if f.pts is not None and self._t0 is not None:
                        f.pts -= round(self._t0 / f.time_base)
                    self._mux(ostream.encode(f))

    def _in_span(self, p: av.Packet, t: int) -> bool:
        """Whether an audio/subtitle packet lies in the output's span; shifts it to output time."""
        seconds = t * p.time_base
        if self._t1 is not None and seconds >= self._t1:
            if seconds > self._t1 + 5:  # interleaving never lags this much: stop reading the input
                self._aux_iter = None
            return False
        if self._t1 is not None and p.stream.type == "subtitle" and p.duration:
            p.duration = min(p.duration, round(self._t1 / p.time_base) - t)  # no cue outlasts the span
        if self._t0 is None:
            return True
        delta = round(self._t0 / p.time_base)
        if seconds < self._t0:
            if p.stream.type != "subtitle" or not p.duration or t + p.duration <= delta:
                return False
            p.duration = t + p.duration - delta  # on screen when the span starts: shown from its start
            p.pts = p.dts = delta
        if p.pts is not None:
            p.pts -= delta
        if p.dts is not None:
            p.dts -= delta
        return True

    def close(self) -> None:
        """Flush the encoder, copy the remaining audio, finalise and rename onto `path`."""
        if self._done:
            return
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"{self.path}: no frames were written; nothing kept")
        try:
            self._flush_video()
            self._pump_aux(None)
            for cue in self._held_cues.values():
                self._mux(cue)
            for ostream, mode in self._aux.values():
                if mode == "transcode":
                    self._mux(ostream.encode(None))
            self._out.close()
        except (av.FFmpegError, OSError) as exc:
            self._fail(exc)
        if self._src is not None:
            self._src.close()
        try:
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self._fail(exc)
        self._done = True

    def abort(self) -> None:
        """Stop and delete the temporary file; the output path is left untouched."""
        if self._done:
            return
        self._done = True
        for c in (getattr(self, "_out", None), self._src):
            try:
                if c is not None:
                    c.close()
            except Exception:  # noqa: BLE001 - closing a broken file must not hide the cause
                pass
        self._remove_tmp()
        remove_made_folders(self._made)

    def _remove_tmp(self) -> None:
        try:
            self._tmp.unlink(missing_ok=True)
        except OSError:  # pragma: no cover
            pass


def segment_suffix(codec: str) -> str:
    """Container for closed video segments of `codec`, one that keeps every timestamp exactly:
    MOV for codecs with B-frames (it stores each packet's dts) and ProRes, NUT for the others.
    Timestamps in either are re-anchored by `join_segments`."""
    name, _ = _resolve_codec(codec)
    return ".mov" if name in ("h264", "hevc", "prores") else ".nut"


def join_segments(
    path: str | Path,
    info: VideoInfo,
    segments: list[tuple[Path, int]],
    *,
    codec: str | None = None,
    audio: str = "copy",
    subtitles: str = "copy",
    overwrite: bool = False,
    start: float | Fraction | None = None,
    end: float | Fraction | None = None,
) -> None:
    """Write `path` from closed video segments by copying their packets (no re-encode).

    segments: (file, pts of its first frame in info.time_base), in order; each file holds one video
    stream written by `open_writer` with the same settings. Audio, subtitles, chapters, metadata,
    colour tags, rotation and the start/end span are handled as `open_writer` does. Written to a
    temporary file and renamed onto `path` at the end.
    """
    if not segments:
        raise OutputError(f"{path}: no video segments to join")
    joiner = _SegmentJoiner(Path(path), info, segments[0][0], codec=codec, audio=audio, subtitles=subtitles,
                            overwrite=overwrite, start=start, end=end)
    try:
        for file, first_pts in segments:
            joiner.copy_segment(file, first_pts)
    except BaseException:
        joiner.abort()
        raise
    joiner.close()


class _SegmentJoiner(_ContainerWriter):
    """A container writer whose video packets come from segment files instead of an encoder."""

    def __init__(self, path: Path, info: VideoInfo, template: Path, *, codec: str | None, audio: str, subtitles: str,
                 overwrite: bool, start: float | Fraction | None, end: float | Fraction | None) -> None:
        try:
            self._template_src = av.open(str(template))
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{template}: cannot read video segment ({_ffmsg(exc)})") from None
        self._template = self._template_src.streams.video[0]
        cc = self._template.codec_context
        self._last_dts: int | None = None
        self._seen_dts = False  # within the segment being copied
        try:
            super().__init__(path, info, cc.width, cc.height, codec=codec, crf=None, preset=None,
                             pix_fmt=cc.format.name if cc.format else None, codec_options=None, audio=audio,
                             subtitles=subtitles, overwrite=overwrite, start=start, end=end)
        finally:
            self._template_src.close()

    def _setup_video(self, spec: CodecSpec, pf: str, opts: dict[str, str], width: int, height: int) -> None:
        info = self.info
        vs = self._out.add_stream_from_template(self._template, opaque=True)
        vs.time_base = info.time_base
        cc = vs.codec_context
        cc.framerate = info.fps if info.fps and info.fps > 0 else Fraction(25)
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        self._setup_color(cc, pf, width, height)
        if info.rotation:
            vs.set_display_rotation(info.rotation)
        self._vs = vs
        self._w, self._h = width, height
        self._last_pts = None

    def _flush_video(self) -> None:
        pass

    def copy_segment(self, file: Path, first_pts: int) -> None:
        """Mux one segment's video packets, shifted so that its first frame lands on `first_pts`.

        Streams packet by packet (a segment may be a whole video). A segment's muxer may have
        moved its timestamps (to avoid negative dts): the first packet, a keyframe shown first,
        re-anchors them. NUT stores no dts for the first few packets (the encoder delay); they get
        one frame step each before the first known dts, as the encoder gave them at a constant rate.
        """
        tb = self.info.time_base
        step = max(1, round(1 / (self.info.fps * tb))) if self.info.fps else 1
        offset: int | None = None
        lead: list[tuple[av.Packet, int]] = []  # packets before the first known dts

        def rebase(t: int, ptb: Fraction) -> int:
            return round(Fraction(t) * ptb / tb)

        try:
            with av.open(str(file)) as src:
                for p in src.demux(src.streams.video[0]):
                    if not p.size:
                        continue
                    if p.pts is None:
                        raise OutputError(f"{file}: video segment has packets without timestamps")
                    ptb = Fraction(p.time_base)
                    pts = rebase(p.pts, ptb)
                    if offset is None:
                        offset = first_pts - pts
                    if p.dts is None and not self._seen_dts:
                        lead.append((p, pts + offset))
                        continue
                    dts = rebase(p.dts, ptb) + offset if p.dts is not None else pts + offset
                    for k, (q, q_pts) in enumerate(lead):
                        self._copy_packet(q, q_pts, dts - (len(lead) - k) * step)
                    lead.clear()
                    self._seen_dts = True
                    self._copy_packet(p, pts + offset, dts)
                for q, q_pts in lead:  # a segment of a few frames: no dts anywhere
                    self._copy_packet(q, q_pts, q_pts)
                self._seen_dts = False
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{file}: cannot read video segment ({_ffmsg(exc)})") from None
        if offset is None:
            raise OutputError(f"{file}: video segment holds no frames")

    def _copy_packet(self, p: av.Packet, pts: int, dts: int) -> None:
        """Mux one video packet at input-timeline pts/dts (info.time_base), dts kept increasing."""
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1
        dts = min(dts, pts)
        duration = round(Fraction(p.duration) * Fraction(p.time_base) / self.info.time_base) if p.duration else 0
        p.pts, p.dts, p.time_base = pts - self._shift, dts - self._shift, self.info.time_base
        if duration:
            p.duration = duration
        self._last_dts = dts
        p.stream = self._vs
        self._mux(p)
        self.frames_written += 1
        self._pump_aux(float(pts * self.info.time_base))


class _ImageWriter(VideoWriter):
    """PNG/JPEG/... per frame into a temporary folder (or file), moved into place at close."""

    def __init__(self, path: Path, info: VideoInfo, width: int, height: int, *,
                 codec_options: dict[str, Any] | None, overwrite: bool, work: Path | None = None,
                 first: int = 0) -> None:
        self.path, self.info, self.frames_written = path, info, 0
        self._done = False
        self._keep_tmp = False
        self._w, self._h = width, height
        self._pattern = is_pattern(path)
        ext = path.suffix.lower()
        encoder = IMAGE_EXTENSIONS[ext]
        try:
            codec = av.Codec(encoder, "w")
        except (av.FFmpegError, ValueError):
            raise OutputError(f"{path}: this FFmpeg build cannot write {ext} images") from None
        formats = {f.name for f in codec.video_formats or []}
        hi = info.bit_depth > 8
        for pf in (["rgb48be", "rgb48le"] if hi else []) + ["rgb24", "bgr24", "bgra", "yuvj444p", "yuvj420p"]:
            if pf in formats:  # bgr24: BMP; bgra: WebP (libwebp converts to YUV itself)
                break
        else:
            raise OutputError(f"{path}: this FFmpeg build cannot write RGB {ext} images")
        self._pix_fmt = pf
        if hi and not pf.startswith("rgb48"):
            log.warning("%s: the source is %d-bit but %s images are 8-bit (use .png or .tif to keep it)",
                        path, info.bit_depth, ext)
        if info.rotation:
            log.warning("%s: images cannot carry the source's %d degree rotation tag; they are stored "
                        "as decoded (use --rotate apply for upright images)", path, info.rotation)
        self._encoder, self._options = encoder, {str(k): str(v) for k, v in (codec_options or {}).items()}
        if not self._pattern:
            if info.num_frames > 1 and not info.is_still_image:
                raise OutputError(f"{path}: one image cannot hold {info.num_frames} frames; use a "
                                  f"pattern like {path.with_name(path.stem + '_%06d' + path.suffix)}")
            self._made = _check_output(path, overwrite)
            self._tmp = _temp_sibling(path, path.suffix)
            self._folder = path.parent
            return
        self._folder = path.parent
        check_output(path, overwrite)
        self._new_folder = not self._folder.exists()
        self._made = make_folder(self._folder.parent if self._new_folder else self._folder, path)
        if work is not None and self._pattern:  # resumable: images persist in `work` between runs
            self._tmp, self._keep_tmp, self.frames_written = work, True, first
            work.mkdir(parents=True, exist_ok=True)
            for part in work.glob("*.part"):  # cut short by a crash
                part.unlink()
            return
        if self._new_folder:
            self._tmp = self._folder.with_name(f".{self._folder.name}.dove-{uuid.uuid4().hex[:8]}.part")
        else:
            self._tmp = self._folder / f".dove-{uuid.uuid4().hex[:8]}.part"
        try:
            self._tmp.mkdir()
        except OSError as exc:
            remove_made_folders(self._made)
            raise OutputError(f"{path}: cannot write in {self._tmp.parent} ({exc.strerror})") from None

    def _encode(self, rgb: np.ndarray) -> bytes:
        cc = av.CodecContext.create(self._encoder, "w")
        cc.width, cc.height, cc.pix_fmt = self._w, self._h, self._pix_fmt
        cc.time_base = Fraction(1, 25)
        cc.options = self._options
        if self._encoder == "mjpeg":  # fixed high quality, as `ffmpeg -q:v 2`
            cc.qscale, cc.global_quality = True, 2 * 118
        fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
        if self._pix_fmt != fmt:
            frame = frame.reformat(format=self._pix_fmt, src_color_range=ColorRange.JPEG,
                                   dst_color_range=ColorRange.JPEG, interpolation=_SWS_FLAGS)
        frame.pts = 0
        return b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Write one image; images carry no timestamps, so pts is only used for ordering."""
        if self._done:
            raise OutputError(f"{self.path}: writer is already closed")
        if rgb.shape != (self._h, self._w, 3):
            raise ValueError(f"frame shape {rgb.shape} != ({self._h}, {self._w}, 3)")
        if not self._pattern and self.frames_written:
            raise OutputError(f"{self.path}: one image cannot hold more than one frame")
        data = self._encode(rgb)
        target = self._tmp if not self._pattern else self._tmp / frame_name(self.path, self.frames_written + 1)
        part = target.with_name(target.name + ".part")  # complete or absent, even after a crash
        try:
            part.write_bytes(data)
            os.replace(part, target)
        except OSError as exc:
            part.unlink(missing_ok=True)
            self.abort()
            if _disk_full(exc):
                raise OutputError(f"{self.path}: disk full while writing; nothing was kept") from None
            raise OutputError(f"{self.path}: write failed ({exc.strerror})") from None
        self.frames_written += 1

    def close(self) -> None:
        """Move the images into place (a new folder is renamed as a whole, atomically)."""
        if self._done:
            return
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"{self.path}: no frames were written; nothing kept")
        try:
            if not self._pattern:
                os.replace(self._tmp, self.path)
            elif self._new_folder:
                os.rename(self._tmp, self._folder)
            else:
                written = {p.name for p in self._tmp.iterdir()}
                stale = [p for p in _matching_images(self.path) if p.name not in written]
                for name in sorted(written):
                    os.replace(self._tmp / name, self._folder / name)
                for p in stale:
                    p.unlink()
                self._tmp.rmdir()
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: could not move images into place ({exc.strerror})") from None
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._keep_tmp:
            return
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            self._tmp.unlink(missing_ok=True)
        remove_made_folders(self._made)
