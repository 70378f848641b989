"""The picture's geometry: `--crop` cuts the input before the model, `--size` resamples what the
model makes to a target of square pixels. The arithmetic lives here once; upscaling.py applies it
to the input's description and frames (`cropped_info`, `cropped_frames`), to the frames written
(`Resampler`) and to their pixel aspect (`written_info`).

`--crop auto` cuts the black bars video_io/bars.py finds (`auto_crop`), once per file, before its
plan: the run, its plan, manifest and resume fingerprint then hold the concrete L:T:R:B.

The model still runs at --scale (x4: what DOVE was trained for); --size only resamples its output,
with swscale's Lanczos, as `ffmpeg -vf scale=W:H:flags=lanczos` does. Cropping happens on the RGB
frames (the chroma already spread to every pixel), so any number of pixels can be cut, odd ones too.

Imports no torch, numpy or PyAV at load: options.py checks the options' text with it for `--help`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING

from dove_cli.errors import OptionError

if TYPE_CHECKING:
    import numpy as np

    from dove_cli.options import UpscaleOptions
    from dove_cli.reports import Plan
    from dove_cli.video_io import Frame, VideoInfo
    from dove_cli.video_io.bars import Bars

log = logging.getLogger(__name__)

MIN_SIDE = 8  # the smallest picture a run takes (plan.make_plan refuses smaller frames)
MAX_SIDE = 16384  # the largest --size side (swscale's and most encoders' limit)
ASPECT_TOLERANCE = 0.01  # how far a --size WxH may stray from the picture's shape (its rounding)
SIZE_NAMES = {"4k": "2160p"}
AUTO_CROP = "auto"  # --crop auto: the black bars found (`auto_crop`)
# --crop auto cuts bars that leave at least this much of each side: a picture found smaller is a
# dark one (a night scene, a title on black), not bars; it is said, and nothing is cut.
MIN_KEPT = Fraction(1, 2)
_SIZE = re.compile(r"^(?:(\d+)p|(\d+)x(\d+))$")


@dataclass(frozen=True)
class Crop:
    """Pixels cut off each side of the input picture as the frames are read (stored; as turned with
    --rotate apply)."""

    left: int
    top: int
    right: int
    bottom: int

    def __str__(self) -> str:
        return f"{self.left}:{self.top}:{self.right}:{self.bottom}"


@dataclass(frozen=True)
class Target:
    """What --size asks for: a height (the width from the picture's shape) or both."""

    height: int
    width: int | None = None

    def __str__(self) -> str:
        return f"{self.height}p" if self.width is None else f"{self.width}x{self.height}"


def parse_crop(text: str) -> Crop:
    """'8:0:8:0' -> Crop(8, 0, 8, 0)."""
    parts = text.strip().split(":")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise OptionError(f"--crop {text!r} must be LEFT:TOP:RIGHT:BOTTOM in input pixels, e.g. 8:0:8:0, or auto")
    return Crop(*(int(p) for p in parts))


def crop_option(text: str) -> str:
    """--crop as the fingerprint and the manifest keep it: 'auto', or L:T:R:B (08:0:8:0 is 8:0:8:0)."""
    return AUTO_CROP if text.strip().lower() == AUTO_CROP else str(parse_crop(text))


def turned_crop(crop: Crop, degrees: int, mirrored: bool) -> Crop:
    """A crop of stored pixels as it falls on the frames turned `degrees` counter-clockwise (a
    multiple of 90, as np.rot90), then mirrored left-right: the reader's rotate='apply'."""
    c = crop
    for _ in range(degrees // 90 % 4):  # a quarter turn: the right side becomes the top
        c = Crop(c.top, c.right, c.bottom, c.left)
    return Crop(c.right, c.top, c.left, c.bottom) if mirrored else c


def auto_crop(bars: Bars, degrees: int = 0, mirrored: bool = False, name: str = "") -> Crop | None:
    """--crop auto: the crop of the black bars found (stored pixels, each side rounded down to an
    even number: 4:2:0 chroma comes in pairs of lines, and a line of bar kept is better than a line
    of picture lost) as it falls on frames turned as the reader turns them; None where nothing is
    to be cut. Says what it found (one note), or why it cuts nothing (a warning), after `name` (the
    file's: a folder run's lines name their file)."""
    from dove_cli import note

    said = f"{name}: --crop auto" if name else "--crop auto"

    sampled = f"{bars.frames} frame{'s' * (bars.frames != 1)}" + (
        f" at {bars.places} place{'s' * (bars.places != 1)}" if bars.places > 1 else "")  # fmt: skip
    if bars.black:
        sampled += f"; {bars.black} black all over, which say nothing"
    if not bars.frames:
        what = f"all {bars.black} frames sampled are black" if bars.black else "no frame could be sampled"
        log.warning("%s: %s; nothing cut (give --crop L:T:R:B to cut)", said, what)
        return None
    cut = Crop(*(side - side % 2 for side in (bars.left, bars.top, bars.right, bars.bottom)))
    crop = turned_crop(cut, degrees, mirrored)
    width, height = bars.width - cut.left - cut.right, bars.height - cut.top - cut.bottom
    if width < bars.width * MIN_KEPT or height < bars.height * MIN_KEPT:
        log.warning("%s: the picture found is only %dx%d of the frame's %dx%d (from %s): too little for "
                    "black bars, more likely a dark picture; nothing cut (give --crop %s to cut that)", said, width, height,
                    bars.width, bars.height, sampled, crop)  # fmt: skip
        return None
    if crop == Crop(0, 0, 0, 0):
        note.info("%s: no black bars (from %s); nothing cut", said, sampled)
        return None
    rows, columns = bool(crop.top or crop.bottom), bool(crop.left or crop.right)
    kind = {(True, False): "letterbox", (False, True): "pillarbox"}.get((rows, columns), "letterbox and pillarbox")
    note.info("%s: %s (%s, from %s)", said, crop, kind, sampled)
    return crop


def parse_size(text: str) -> Target:
    """'1080p', '4k' (2160p) or '1920x1080' -> Target; sides even (4:2:0 video needs them so)."""
    named = text.strip().lower()
    m = _SIZE.match(SIZE_NAMES.get(named, named))
    if not m:
        raise OptionError(f"--size {text!r} must be HEIGHTp (1080p, 1440p, 2160p), 4k or WIDTHxHEIGHT (1920x1080)")
    width, height = (int(m[2]), int(m[3])) if m[2] else (None, int(m[1]))
    for side in (width, height):
        if side is not None and (side % 2 or not 2 * MIN_SIDE <= side <= MAX_SIDE):
            raise OptionError(f"--size {text}: sides must be even, from {2 * MIN_SIDE} to {MAX_SIDE} px")
    return Target(height, width)


def cropped_info(info: VideoInfo, opts: UpscaleOptions) -> VideoInfo:
    """The input as the model sees it: its size less --crop (its pixel aspect is the same).
    Refuses a crop that leaves less than MIN_SIDE pixels a side."""
    if not opts.crop:
        return info
    c = parse_crop(opts.crop)  # (--crop auto is concrete by now: upscaling.probe_input)
    width, height = info.width - c.left - c.right, info.height - c.top - c.bottom
    if width < MIN_SIDE or height < MIN_SIDE:
        raise OptionError(f"{info.path}: --crop {c} leaves {max(width, 0)}x{max(height, 0)} of its "
                          f"{info.width}x{info.height} picture (at least {MIN_SIDE} px a side)")  # fmt: skip
    return replace(info, width=width, height=height)


def cropped_frames(frames: Iterable[Frame], opts: UpscaleOptions) -> Iterator[Frame]:
    """Frames with --crop cut off (views of the decoded arrays: nothing is copied)."""
    if not opts.crop:
        yield from frames
        return
    c = parse_crop(opts.crop)
    for frame in frames:
        h, w = frame.rgb.shape[:2]
        yield replace(frame, rgb=frame.rgb[c.top : h - c.bottom, c.left : w - c.right])


def display_aspect(info: VideoInfo) -> Fraction:
    """Width / height of the picture as players show it (its pixel aspect applied; stored orientation)."""
    return Fraction(info.width) * (info.sample_aspect_ratio or 1) / info.height


def target_size(opts: UpscaleOptions, info: VideoInfo) -> tuple[int, int] | None:
    """(height, width) --size resamples the frames to (None: no --size), for `info`'s picture (after
    --crop: `cropped_info`). HEIGHTp takes its width from the display aspect, rounded to even;
    WIDTHxHEIGHT must have that shape within ASPECT_TOLERANCE (dove does not letterbox), else it is
    refused, naming the HEIGHTp that fits."""
    if not opts.size:
        return None
    target, aspect = parse_size(opts.size), display_aspect(info)
    height = target.height
    width = math.floor(height * aspect / 2 + Fraction(1, 2)) * 2  # the nearest even width
    if target.width is None:
        if not 2 * MIN_SIDE <= width <= MAX_SIDE:
            raise OptionError(f"{info.path}: --size {target} makes it {width}x{height} (from {MIN_SIDE * 2} to "
                              f"{MAX_SIDE} px a side)")  # fmt: skip
        return height, width
    asked = Fraction(target.width, height)
    if abs(asked / aspect - 1) > ASPECT_TOLERANCE:
        sar = info.sample_aspect_ratio
        shape = f"{info.width}x{info.height}" + (f" at pixel aspect {sar.numerator}:{sar.denominator}" if sar else "")
        shape += " after --crop" if opts.crop else ""
        raise OptionError(f"{info.path}: --size {target} is {float(asked):.3f}:1 but the picture ({shape}) is shown "
                          f"at {float(aspect):.3f}:1; --size {height}p makes it {width}x{height} (dove does not "
                          "letterbox)")  # fmt: skip
    return height, target.width


def output_size(opts: UpscaleOptions, height: int, width: int) -> tuple[int, int]:
    """(h, w) of the frames a run writes from input frames of (height, width), with checked options:
    x --scale, or under --parity what the authors' script writes (release_layout.release_output_size:
    at a scale other than 4, another size when the input needs padding)."""
    if opts.parity:
        from dove_cli.release_layout import release_output_size  # (numpy: not at load)

        return release_output_size(height, width, opts.scale)
    return height * opts.scale, width * opts.scale


def compare_size(height: int, width: int, rotation: int) -> tuple[int, int]:
    """(height, width) of a `--compare` frame of two halves of (height, width), joined as
    `blend.compare_layout` says: twice as wide as players show it."""
    return (2 * height, width) if rotation % 180 else (height, 2 * width)


def planned_output_size(info: VideoInfo, opts: UpscaleOptions) -> tuple[int, int]:
    """(height, width) of the frames the output file holds, for `info`'s picture after --crop
    (`cropped_info`; --crop auto: the crop found, `upscaling.with_found_crop`): --size's (`target_size`),
    else the model's (`output_size`), and with --compare the input beside it (`compare_size`)."""
    height, width = target_size(opts, info) or output_size(opts, info.height, info.width)
    return compare_size(height, width, info.rotation) if opts.compare else (height, width)


def written_info(info: VideoInfo, opts: UpscaleOptions) -> VideoInfo:
    """The input's description as the writers take it: with --size, square pixels (no pixel aspect
    written); else the input's pixel aspect, which a crop keeps."""
    return replace(info, sample_aspect_ratio=None) if opts.size else info


def warn_resampled_up(plan: Plan, scale: int) -> None:
    """Say so when --size is larger than the model's output: the rest is Lanczos, not the model."""
    if plan.size is None:
        return
    (height, width), (out_h, out_w) = plan.size, plan.output_size
    if height > out_h:
        log.warning("--size %dx%d is larger than the model's %dx%d output (x%d): resampled up past it (x%.2f), "
                    "which adds no detail", width, height, out_w, out_h, scale, height / out_h)  # fmt: skip


class Resampler:
    """Finished frames [H, W, 3] (uint8, or uint16 at 16 bits) to (height, width) with swscale's
    Lanczos and exact rounding: what `ffmpeg -vf scale=W:H:flags=lanczos` makes of the same RGB frames
    (tests/test_geometry.py). Keeps its swscale context from frame to frame."""

    def __init__(self, size: tuple[int, int]) -> None:
        from av.video.reformatter import Interpolation, VideoReformatter

        self.height, self.width = size
        self._flags = int(Interpolation.LANCZOS | Interpolation.ACCURATE_RND)
        self._reformatter = VideoReformatter()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import numpy as np

        from dove_cli.video_io.formats import rgb_frame

        if rgb.shape[:2] == (self.height, self.width):
            return rgb
        fmt = "gbrp" if rgb.dtype.itemsize == 1 else "rgb48le"  # (16 bits: as the writers take them)
        out = self._reformatter.reformat(rgb_frame(rgb), width=self.width, height=self.height, format=fmt,
                                         interpolation=self._flags)  # fmt: skip
        if fmt == "rgb48le":
            return out.to_ndarray()
        # [H, W, 3] over planar memory, as blend.to_code_values hands frames to the writers: packing
        # them here (rgb24) took twice as long, the writer's copy included (2880x1920 -> 1920x1080)
        g, b, r = (np.frombuffer(memoryview(p), np.uint8).reshape(self.height, -1)[:, : self.width] for p in out.planes)
        return np.stack([r, g, b]).transpose(1, 2, 0)
