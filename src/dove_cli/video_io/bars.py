"""Black bars round the picture (letterbox, pillarbox): what `--crop auto` cuts.

FFmpeg's cropdetect rule (its `black` mode, no outliers), on frames sampled across the whole input:
a line (a row or a column) is black when its mean is at most LIMIT (24 in 8 bits, cropdetect's
default: 8 above limited-range black, 16), and a bar is the black lines from an edge to the first
that is not. PyAV's FFmpeg is built without cropdetect (a GPL filter), so the rule is here, in
numpy; tests/test_geometry.py checks it against the ffmpeg binary's cropdetect. The picture kept is
the union over the samples, as cropdetect's own running box: a dark scene or a fade, dark to its
edges, cuts nothing that a brighter frame elsewhere shows, and a frame black all over says nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from dove_cli.video_io.paths import ffmpeg_name
from dove_cli.video_io.reader import VideoInfo

PLACES = 10  # where a video is sampled: spread evenly over its duration
PER_PLACE = 4  # frames taken at each
NEAR = 48  # a place fewer frames than this past the last frame decoded is decoded to, not sought
# A video of fewer pixels than this (300 SD frames, about 0.2 s to decode) is decoded from its start
# to its last place, not sought: a seek into a group of pictures longer than the places are apart
# lands on a key frame taken already, and the places after it would all be sampled near the start.
WHOLE = 300 * 720 * 480
LIMIT = 24 / 255  # cropdetect's default black threshold, of the code range: 24 in 8 bits, 96 in 10
# Formats whose first plane is the luma (or grey) as cropdetect reads it, in native little-endian words.
PLANAR_LUMA = re.compile(r"(yuvj?a?\d{3}p|gray)(\d+le)?")


@dataclass(frozen=True)
class Bars:
    """Black lines off each side of a width x height picture (stored pixels, as decoded), and
    what they were found from: `frames` sampled frames with a picture (`black` more were black all
    over) at `places` places of a video (1: a short clip, sampled whole; images and frames in memory,
    sampled across)."""

    left: int
    top: int
    right: int
    bottom: int
    width: int
    height: int
    frames: int
    black: int
    places: int


def lines_with_picture(values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of `values` ([H, W] luma, or [H, W, 3] RGB) whose mean, rounded down as
    cropdetect's integer division does, is above `limit`: bool [H] and [W]."""
    h, w = values.shape[:2]
    v = values.reshape(h, w, -1)
    c = v.shape[2]
    return v.sum(axis=(1, 2)) // (w * c) > limit, v.sum(axis=(0, 2)) // (h * c) > limit


def union(pictures: Iterable[tuple[int, np.ndarray, int]]) -> Bars:
    """The bars round every (place, values, limit) picture's lines with a picture: the smallest
    cut that keeps each of them. As cropdetect, rows and columns count apart (a dark frame may have
    a row above the limit and no column); an axis with none anywhere is not cut. A picture of
    another size than the first is passed over."""
    size: tuple[int, int] | None = None
    x1 = y1 = 1 << 30
    x2 = y2 = -1
    frames = black = 0
    places: set[int] = set()
    for place, values, limit in pictures:
        h, w = values.shape[:2]
        size = size or (w, h)
        if (w, h) != size:
            continue
        rows, cols = lines_with_picture(values, limit)
        if rows.any():
            y1, y2 = min(y1, int(rows.argmax())), max(y2, h - 1 - int(rows[::-1].argmax()))
        if cols.any():
            x1, x2 = min(x1, int(cols.argmax())), max(x2, w - 1 - int(cols[::-1].argmax()))
        if not rows.any() and not cols.any():
            black += 1
            continue
        frames += 1
        places.add(place)
    w, h = size or (0, 0)
    x1, x2 = (x1, x2) if x2 >= 0 else (0, w - 1)
    y1, y2 = (y1, y2) if y2 >= 0 else (0, h - 1)
    return Bars(x1, y1, w - 1 - x2, h - 1 - y2, w, h, frames, black, len(places))


def luma(frame: av.VideoFrame) -> tuple[np.ndarray, int]:
    """What cropdetect judges a frame by, and its black limit: the luma plane as stored (limited
    or full range alike), or for other formats (RGB, packed YUV) the R, G and B values, whose mean
    is a line's (cropdetect's rule for rgb24)."""
    fmt = frame.format
    if PLANAR_LUMA.fullmatch(fmt.name):
        bits = fmt.components[0].bits
        words = np.frombuffer(memoryview(frame.planes[0]), np.uint8 if bits <= 8 else np.dtype("<u2"))
        return words.reshape(frame.height, -1)[:, : frame.width], round(LIMIT * ((1 << bits) - 1))
    deep = max(c.bits for c in fmt.components) > 8
    return frame.to_ndarray(format="rgb48le" if deep else "rgb24"), round(LIMIT * (65535 if deep else 255))


def find_bars(info: VideoInfo) -> Bars:
    """The black bars of the input `info` describes (a video's stream, or its images), in stored
    pixels, from frames sampled across all of it."""
    if info.is_images:
        return union((0, *luma(f)) for f in _images(info.files))
    return union((place, *luma(f)) for place, f in _video(info))


def find_bars_in(frames: np.ndarray) -> Bars:
    """The black bars of [T, H, W, 3] RGB frames held in memory (uint8, uint16, or float in [0, 1]
    taken at 16 bits), from up to PLACES x PER_PLACE frames spread over them."""
    deep = frames.dtype != np.uint8
    limit = round(LIMIT * (65535 if deep else 255))

    def codes(frame: np.ndarray) -> np.ndarray:
        if frame.dtype.kind == "u":
            return frame
        return (np.clip(frame.astype(np.float32), 0, 1) * 65535 + 0.5).astype(np.uint16)  # as arrays.py reads them

    return union((0, codes(frames[i]), limit) for i in spread(len(frames), PLACES * PER_PLACE))


def spread(total: int, count: int) -> list[int]:
    """Up to `count` indices of 0 .. total - 1, evenly spread, the first and the last included."""
    if total <= count:
        return list(range(total))
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def _images(files: list[Path]) -> Iterator[av.VideoFrame]:
    """The first frame of up to PLACES x PER_PLACE of the images, spread over them (one that cannot
    be read is passed over: the run says why when it reaches it)."""
    for i in spread(len(files), PLACES * PER_PLACE):
        try:
            with av.open(ffmpeg_name(files[i]), options={"pattern_type": "none"}) as c:
                frame = next(c.decode(video=0), None)
        except (av.FFmpegError, OSError):
            continue
        if frame is not None:
            yield frame


def _video(info: VideoInfo) -> Iterator[tuple[int, av.VideoFrame]]:
    """(place, frame): PER_PLACE frames at each of PLACES times spread over the video, each frame
    once. A place is sought, and its frames taken from where the seek lands, or, fewer than NEAR
    frames past the last frame decoded (or in a video of fewer than WHOLE pixels), decoded to. A
    short clip (or one of unknown length): its first PLACES x PER_PLACE frames, place 0."""
    duration, total = info.duration, info.num_frames
    try:
        c = av.open(ffmpeg_name(info.path), metadata_errors="replace")
    except (av.FFmpegError, OSError, ValueError):  # (the reader has opened it: not expected)
        return
    with c:
        s: Any = c.streams[info.stream_index]
        if not duration or total <= PLACES * PER_PLACE:
            yield from ((0, f) for f in itertools.islice(_decoded(c, s), PLACES * PER_PLACE))
            return
        rate = s.average_rate or s.guessed_rate
        near = int(NEAR / Fraction(rate) / s.time_base) if rate else 0  # in pts
        # the places spread over the times a place's PER_PLACE frames can follow (the last one at 95% of
        # a 42-frame clip had 2 frames after it)
        span = max(Fraction(0), Fraction(duration) - (PER_PLACE / Fraction(rate) if rate else 0))

        if total * info.width * info.height <= WHOLE:
            near = 1 << 62  # sought once, for the first place
        start, seen = s.start_time or 0, set()
        frames: Iterator[av.VideoFrame] | None = None
        last: int | None = None  # the pts of the last frame decoded
        for place in range(PLACES):
            at = start + int(span * (2 * place + 1) / (2 * PLACES) / s.time_base)
            to: int | None = at  # decoded to; after a seek, None: taken from where it lands
            if frames is None or last is None or at > last + near:
                frames, to = _sought(c, s, at), None
            taken = 0
            for frame in frames:
                last = pts = frame.pts
                if pts is not None and (to is not None and pts < to and not taken or pts in seen):
                    continue  # short of the place (decoded to), or taken already (a seek landed there)
                seen.add(pts)
                yield place, frame
                taken += 1
                if taken == PER_PLACE:
                    break
            else:
                frames = None  # the stream ended there


def _sought(c: Any, s: Any, at: int) -> Iterator[av.VideoFrame]:
    """The frames from where a seek to pts `at` lands (a key frame at or before it, where the
    container knows them); none when it fails. (A frame decoded without its references can only
    show more picture, which keeps more: never a crop into the picture.)"""
    try:
        c.seek(at, stream=s, backward=True)
    except av.FFmpegError:
        return
    s.codec_context.flush_buffers()
    yield from _decoded(c, s)


def _decoded(c: Any, s: Any) -> Iterator[av.VideoFrame]:
    """Decoded frames until the stream ends or fails to decode."""
    try:
        yield from c.decode(s)
    except av.FFmpegError:
        return
