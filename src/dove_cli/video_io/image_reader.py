"""Image inputs: which files a pattern, a folder or one image names, the checks that refuse a bad sequence before
any work, and the pixels of each image as a frame (`ImageReader`: JPEG, WebP and YCbCr TIFF read by Pillow as
libjpeg/libwebp decode them, `pillow_rgb`; the rest by FFmpeg).

`reader.open_reader` stays the one entry point: it opens an `ImageReader` where `image_inputs` finds images, else a
`VideoReader`, which `ImageReader` extends (the same frames, info and span interface, pts = index at 1/fps).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from dove_cli.errors import BrokenImage, InputError, OptionError
from dove_cli.humanize import counted, turn_text
from dove_cli.video_io.deep import clipped, exact_rgb48, float_rgb48, float_values, rgb48_gain
from dove_cli.video_io.formats import (
    FLOAT,
    FOLDER_EXTENSIONS,
    PRIMARIES,
    READ_IMAGE_EXTENSIONS,
    TO_RGB_FLAGS,
    TRC,
    audio_only,
    container_magic,
    ffmsg,
    is_yuv,
    look_like_videos,
    looks_like_video,
)
from dove_cli.video_io.paths import check_fields, ffmpeg_name, is_image_path, is_pattern
from dove_cli.video_io.reader import (
    SHOWN_RANGES,
    Frame,
    VideoInfo,
    VideoReader,
    check_input_file,
    declared,
    exact,
    say_alpha_dropped,
    see_through,
    shown_ranges,
)
from dove_cli.video_io.sequences import (
    DEFAULT_SEQUENCE_FPS,
    FIELD,
    frame_number,
    loose_number,
    missing_numbers,
    natural_key,
    numbered,
    own_pattern,
    sequence_rate,
    span_indices,
)
from dove_cli.video_io.stills import (
    EXIF_TURNS,
    PngColour,
    StillTags,
    damage,
    open_image,
    png_colour,
    still_tags,
    turned_pixels,
    unturned,
)

log = logging.getLogger("dove_cli.video_io")

# Said of an image sequence read without --fps; left out where the rate changes nothing (images out, no --preview)
DEFAULT_RATE_SAID = "%s: images are read at %s frames/s (ffmpeg's default); give --fps for another rate"
MAX_FPS = Fraction(1000)  # a .mkv times frames in milliseconds: faster frames would share one time


def image_inputs(path: Path) -> list[Path] | None:
    """The image files an input names, sorted by frame number; None when it is a video file. A file
    named as a pattern (`shot%d.png`) is that file: it exists, so it is what the user means."""
    check_fields(path, InputError)
    if is_pattern(path) and not path.is_file():
        folder = path.parent
        if not folder.is_dir():
            raise InputError(f"{path}: folder {folder} does not exist")
        hits = sorted((n, p) for p in folder.iterdir() if (n := frame_number(path, p.name)) is not None)
        if not hits:
            raise InputError(f"{path}: no files match this pattern{_other_padding(path)}")
        return [p for _, p in hits]
    if path.is_dir():
        # Hidden files are skipped, as in a folder of videos: macOS's AppleDouble `._frame001.png` is no image
        images = sorted(
            (p for p in path.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith(".")),
            key=lambda p: natural_key(p.name),
        )
        if not images:
            raise InputError(
                f"{path}: folder holds no videos or images (videos: "
                f"{', '.join(sorted(FOLDER_EXTENSIONS))}; images: {', '.join(sorted(READ_IMAGE_EXTENSIONS))}){why_none(path)}"
            )
        return images
    if is_image_path(path):
        check_input_file(path)
        return None if still_tags(path).animated else [path]  # an APNG: read as the animation it is, as a GIF
    if not path.exists() and len(FIELD.findall(path.name)) == 1 and (files := _numbered(path)):
        raise InputError(f"{path}: {_not_images(files)} (it reads {', '.join(sorted(READ_IMAGE_EXTENSIONS))}); convert "
                         "them to 16-bit .tif or .png first")  # fmt: skip
    return None


def _numbered(pattern: Path) -> list[Path]:
    """The files a %d pattern of any extension names (those of an image pattern: image_inputs)."""
    folder = pattern.parent
    return [p for p in folder.iterdir() if frame_number(pattern, p.name) is not None] if folder.is_dir() else []


def _other_padding(pattern: Path) -> str:
    """A hint for a pattern that names no file where names of other zero padding are there (`%d.png`
    over 0001.png ...: as ffmpeg's image2, a pattern reads only the names it writes, `frame_number`)."""
    near = Counter(own_pattern([p]) for p in pattern.parent.iterdir() if loose_number(pattern, p.name) is not None)
    return f" (it names no other zero padding than its own; did you mean {near.most_common(1)[0][0]}?)" if near else ""


def _not_images(files: list[Path]) -> str:
    """A sequence in an extension dove does not read as images (DPX, EXR): said so, not "no such file"."""
    exts = "/".join(sorted({f.suffix.lower() or "(no extension)" for f in files}))
    return f"{len(files)} {exts} file{'s' * (len(files) > 1)}, which dove does not read as images"


def why_none(folder: Path) -> str:
    """What a folder without videos or images holds instead, for its error: files that look like
    videos, frame folders (shots/shotA/), files of an extension dove does not read as images, or
    hidden images (skipped)."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if unnamed := sorted(p.name for p in files if looks_like_video(p)):
        return f"; {look_like_videos(len(unnamed))} ({', '.join(unnamed[:5])}): rename {'them' if len(unnamed) > 1 else 'it'}"
    if sound := sorted(p.name for p in files if container_magic(p) and audio_only(p)):
        return f"; it holds {counted(len(sound), 'audio-only file')} ({', '.join(sound[:5])}): no video to upscale"
    frames = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(map(is_image_path, p.iterdir())))
    if frames:
        return (f"; its sub-folders {', '.join(frames[:5])}{' ...' * (len(frames) > 5)} hold images: frame folders, "
                f"each one input (dove upscale {folder} -o OUT/ upscales each into OUT/{frames[0]}/ ...)")  # fmt: skip
    if files:
        return f"; it holds {_not_images(files)}"
    hidden = sum(p.name.startswith(".") and is_image_path(p) for p in folder.iterdir())
    return (
        f"; hidden files (a name starting with '.') are skipped: {hidden} image{'s' * (hidden > 1)}" if hidden else ""
    )


def stray_said(files: list[Path], strays: list[Path]) -> str:
    """'2 images do not fit the numbering of the other 9 (frame_0001.png to frame_0009.png): other_0001.png, slate.png'."""
    main = [f for f in files if f not in strays]
    n = len(strays)
    names = ", ".join(f.name for f in strays[:SHOWN_RANGES]) + (", ..." if n > SHOWN_RANGES else "")
    return (f"{n} image{'s do' if n > 1 else ' does'} not fit the numbering of the other {len(files) - n}"
            f" ({main[0].name} to {main[-1].name}): {names}")  # fmt: skip


def check_images(files: list[Path], name: Path | None = None) -> tuple[StillTags, Path]:
    """The first image's tags (`still_tags`), every image checked to have its size and EXIF
    orientation from the file headers (PIL reads no pixels: about 30 us an image), so that a stray
    size or turn stops the run before any work rather than part way; and the first of the deepest
    images (its bits in the tags returned): a sequence is read at its deepest images' depth, so that
    an 8-bit slate at the head of a 16-bit scan does not make every frame 8-bit. With `name` (warn),
    a multi-page TIFF is said (only its first page is read), and so are images shallower than the
    others. A file no header reader knows is left to the decoder, which checks each size again."""
    first: tuple[int, int] | None = None
    tags: StillTags | None = None
    paged: list[tuple[Path, int]] = []
    depths: dict[Path, int] = {}
    for file in files:
        this = still_tags(file)
        if (size := this.size) is None:
            continue
        paged += [(file, this.pages)] if this.pages > 1 else []
        depths[file] = this.bits
        if first is None or tags is None:
            first, tags = size, this
        elif this.orientation != tags.orientation:  # (first: Pillow sizes a TIFF as turned)
            raise InputError(f"{file}: EXIF orientation {this.orientation} ({exif_text(this.orientation)}) differs from "
                             f"the first image's, {tags.orientation} ({exif_text(tags.orientation)}); a sequence is "
                             "turned as one: make them agree (or turn the images upright) first")  # fmt: skip
        elif size != first:
            raise size_differs(file, size, first)
    if name is not None and paged:
        file, pages = paged[0]
        more = f" ({counted(len(paged) - 1, 'more image')} with several pages)" if len(paged) > 1 else ""
        log.warning("%s: a TIFF of %d pages: only the first page is read, the other %d are left out%s (split it into "
                    "one image a page, such as page_%%03d.tif, to upscale them all)", file, pages, pages - 1, more)  # fmt: skip
    deepest = max(depths, key=lambda f: depths[f], default=files[0])
    if name is not None and (shallow := [f for f, bits in depths.items() if bits < depths[deepest]]):
        say_shallower(name, shallow, depths, deepest)
    return replace(tags, bits=depths[deepest]) if tags else StillTags(), deepest


def say_shallower(name: Path, shallow: list[Path], depths: dict[Path, int], deepest: Path) -> None:
    """Warn that images of a sequence hold fewer bits than its deepest, naming them: they are read as
    deep as it (their values scaled up, losing nothing), so that the output keeps the deep frames' bits."""
    n, shown = len(shallow), ", ".join(f"{f.name} ({depths[f]}-bit)" for f in shallow[:SHOWN_RANGES])
    log.warning("%s: %d of the %d images %s fewer bits than the deepest (%d-bit, such as %s): %s%s; the sequence "
                "is read and written at %d bits, theirs scaled up", name, n, len(depths), "has" if n == 1 else "have",
                depths[deepest], deepest.name, shown, ", ..." * (n > SHOWN_RANGES), depths[deepest])  # fmt: skip


def check_whole(files: list[Path], path: Path) -> None:
    """Refuse, before any work, a sequence with images that cannot be whole (`damage`: empty, cut
    short, no readable header), naming them all in one line: found one by one as a run reached them,
    each cost the hours of frames before it, and a re-run met the next."""
    bad = [(f, why) for f in files if (why := damage(f))]
    if not bad:
        return
    shown = "; ".join(f"{f.name}: {why}" for f, why in bad[:SHOWN_RANGES]) + "; ..." * (len(bad) > SHOWN_RANGES)
    whole = f" of {len(files)}" if len(files) > 1 else ""
    raise InputError(f"{path}: {counted(len(bad), 'image')}{whole} {'is' if len(bad) == 1 else 'are'} damaged ({shown}); "
                     f"replace {'it' if len(bad) == 1 else 'them'} (a new scan or copy), or move {'it' if len(bad) == 1 else 'them'} "
                     "out to leave a gap, then run again")  # fmt: skip


def exif_text(orientation: int) -> str:
    """An EXIF orientation in words: 'as stored', '-90 degrees', '90 degrees, mirrored'."""
    return turn_text(*EXIF_TURNS[orientation]) or "as stored"


def pillow_rgb(file: Path) -> tuple[np.ndarray, bool] | None:
    """(RGB [H, W, 3] uint8, see-through) of an 8-bit image stored as YUV or through libjpeg (a JPEG,
    a WebP, a JPEG-compressed or YCbCr TIFF), read by Pillow; None for others, which FFmpeg reads
    (they hold RGB, gray, a palette or 16 bits, which both read alike).

    Why: FFmpeg hands such an image over as YUV and swscale's default conversion upsamples its
    chroma plainly, where libjpeg and libwebp (Pillow, OpenCV's imread, so pyiqa and the DOVE
    authors' scripts) interpolate it ("fancy upsampling"): up to 9-20 levels apart on a 4:2:0
    image, 0.7 dB of PSNR on a q90 JPEG and 1.1 dB on a WebP. FFmpeg also reads a JPEG-compressed
    TIFF as noise, and a gray JPEG a level off here and there."""
    from PIL import TiffImagePlugin, UnidentifiedImageError

    try:
        image = open_image(file)
    except (OSError, UnidentifiedImageError, ValueError):
        return None  # FFmpeg's to read (or to refuse, with its own message)
    with image:
        tiff = isinstance(image, TiffImagePlugin.TiffImageFile) and (
            image.info.get("compression") in ("jpeg", "tiff_jpeg") or image.tag_v2.get(262) == 6  # YCbCr
        )
        if not (image.format in ("JPEG", "MPO", "WEBP") or tiff) or image.mode not in ("L", "RGB", "RGBA"):
            return None
        # Pillow turns a TIFF as its EXIF orientation says when it loads it (not a JPEG nor a WebP): undone,
        # so that every image reaches the reader as stored (`ImageReader` turns them, or not)
        undo = None
        if tiff and isinstance(image, TiffImagePlugin.TiffImageFile):
            undo = EXIF_TURNS.get(int(image.tag_v2.get(0x0112, 1)))
        try:
            image.load()
            rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
            rgb = unturned(rgb, *undo) if undo else rgb
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: cannot decode this {image.format} image ({exc})") from None
        see = image.mode == "RGBA" and int(np.asarray(image.getchannel("A")).min()) < 255
    return rgb, see


def say_linear(path: Path, frame: av.VideoFrame, file: Path) -> None:
    """Warn, before the run, that float linear light (`file`'s, an EXR's: `frame`) is not tone-mapped: its
    values 0..1 are written as they are, as code values no viewer shows as linear, and those above 1.0
    (highlights) or below 0 are clipped, with how many of `file`'s are (the run reads the others later)."""
    above, below = clipped(float_values(frame))
    log.warning("%s: linear light (float): dove does not tone-map it: values 0 to 1 are written as they are (linear "
                "code values, untagged, which viewers show too dark) and the rest is clipped: %s of %s's samples are "
                "above 1.0 and %s below 0 (convert to a display or log encoding first to keep them)", path,
                percent(above), file.name, percent(below))  # fmt: skip


def percent(fraction: float) -> str:
    """'72.5%', '0%', or '<0.1%' for a few samples."""
    return "0%" if fraction == 0 else "<0.1%" if fraction < 0.001 else f"{fraction:.1%}"


def size_differs(file: Path, size: tuple[int, int], first: tuple[int, int]) -> InputError:
    """The error for an image of a sequence whose (width, height) is not the first image's."""
    return InputError(
        f"{file}: size {size[0]}x{size[1]} differs from the first image ({first[0]}x{first[1]}): the "
        "images of a folder or pattern are the frames of one video; upscale separate photos one by one"
    )


def images_rate(path: Path, files: list[Path], fps: float | Fraction | str | None, *, warn: bool) -> Fraction:
    """The rate images are read at (`sequence_rate`: --fps, else ffmpeg's 25, said for a sequence with `warn`);
    OptionError above MAX_FPS."""
    rate = sequence_rate(fps)
    if not 0 < rate <= MAX_FPS:
        raise OptionError(f"fps must be above 0 and at most {MAX_FPS} frames/s, not {fps}")
    if not fps and warn and len(files) > 1:
        log.warning(DEFAULT_RATE_SAID, path, DEFAULT_SEQUENCE_FPS)
    return rate


def say_numbering(path: Path, files: list[Path]) -> None:
    """Warn of what in a sequence's names may not be what the user means: a file named as a pattern
    read as one image beside the images the pattern names, numbers missing (gaps), and images that
    do not fit the others' numbering (strays): each is still read, in order, one frame each."""
    if files == [path] and is_pattern(path) and (seq := sorted(p for p in _numbered(path) if is_image_path(p))):
        log.warning("%s: this file is read as one image; the %d image%s its name also reads as a pattern (%s, ...) "
                    "%s not: rename it to read them", path, len(seq), "s" * (len(seq) > 1), seq[0].name,
                    "are" if len(seq) > 1 else "is")  # fmt: skip
    main, strays = numbered(files)
    if gaps := missing_numbers(files):
        n = sum(b - a + 1 for a, b in gaps)
        log.warning("%s: %d frame number%s missing from the sequence: %s (%s to %s); the %d images are "
                    "read in order, one frame each (an image output keeps each one's number where its names allow it; a video has no gap)", path, n, "s are" if n > 1 else " is", shown_ranges(gaps),
                    main[0].name, main[-1].name, len(files))  # fmt: skip
    if strays:
        log.warning("%s: %s; they are read as frames, in name order among the others (move them out if they "
                    "are not frames of this clip)", path, stray_said(files, strays))  # fmt: skip


def images_info(
    path: Path,
    files: list[Path],
    first: av.VideoFrame,
    deep: av.VideoFrame,
    tags: StillTags,
    rate: Fraction,
    *,
    rotate: str,
    colour: PngColour,
    linear: bool,
) -> VideoInfo:
    """What an image input is (`VideoInfo`), from its first image (its size), its deepest (its pixel
    format and bits), the first's tags and colour chunks, and the rate: each image one frame of
    1/rate s from 0; `rotate` apply: the size turned upright and no turn left to tag."""
    rotation, mirrored = EXIF_TURNS[tags.orientation]
    w, h = (first.height, first.width) if rotate == "apply" and rotation % 180 else (first.width, first.height)
    return VideoInfo(
        path=path,
        width=w,
        height=h,
        num_frames=len(files),
        fps=rate,
        time_base=1 / rate,
        start_pts=0,
        bit_depth=max(comp.bits for comp in deep.format.components),
        pix_fmt=deep.format.name,
        codec=files[0].suffix.lower().lstrip("."),
        container="image2",
        is_image_sequence=len(files) > 1 or is_pattern(path) or path.is_dir(),
        is_still_image=len(files) == 1 and not (is_pattern(path) or path.is_dir()),
        num_frames_exact=True,
        duration=float(len(files) / rate),
        base_fps=rate,  # each frame lasts 1/rate, the last one included (`writer.frame_ticks`)
        files=list(files),
        rotation=0 if rotate == "apply" else rotation,
        mirrored=mirrored and rotate != "apply",
        orientation=tags.orientation,
        pages=tags.pages,
        icc_profile=tags.icc,
        dpi=tags.dpi,
        tiff_compression=tags.compression,
        color_primaries=PRIMARIES.get(colour.primaries or 0),
        color_trc="linear" if linear else TRC.get(colour.transfer or 0),
        mastering=colour.mastering,
        light_level=colour.light,
    )


class ImageReader(VideoReader):
    """Image sequence or single image: pts = index at 1/fps; every image must have the same size and
    EXIF orientation, which is a turn as a video's display matrix is (--rotate apply turns the pixels,
    keep reports it as `info.rotation` and `info.mirrored`). JPEGs and WebPs are read by Pillow, as pyiqa and OpenCV read them (`pillow_rgb`), others by FFmpeg."""

    def __init__(
        self,
        path: Path,
        files: list[Path],
        *,
        fps: float | Fraction | str | None,
        rotate: str = "keep",
        warn: bool = True,
        say_alpha: bool = True,
        untagged_color: str = "none",
        start: float | Fraction | None = None,
        duration: float | Fraction | None = None,
    ) -> None:
        """As `open_reader` says of each (start/duration: the span of images kept, `_select_span`)."""
        self.path = path
        self._say_alpha = say_alpha
        self.dropped_frames = 0
        self._files = files
        self._reformatter = VideoReformatter()
        check_whole(files, path)
        first = self._load(files[0])
        rate = images_rate(path, files, fps, warn=warn)
        if warn:
            say_numbering(path, files)
        tags, deepest = check_images(files, path if warn else None)
        rotation, mirrored = EXIF_TURNS[tags.orientation]  # applied, or a tag as a video's display matrix
        if rotate == "apply":
            self._apply_rotation, self._apply_mirror = rotation, mirrored
        # the deepest image's format: the sequence's (an 8-bit slate at the head of 16-bit frames)
        deep = first if deepest == files[0] else self._load(deepest)
        # A later image may have it: looked at as the run reads it (a probe, warn=True, reads no further).
        self.transparent = see_through(first)
        if self.transparent and warn and say_alpha:
            say_alpha_dropped(path)
        colour = png_colour(files[0])  # the first image's colour chunks, as its ICC profile (a PNG's cICP: HDR)
        linear = bool(FLOAT.search(deep.format.name)) and TRC.get(deep.color_trc) == "linear"  # (an EXR's)
        if linear and warn:
            say_linear(path, deep, deepest)
        self.info = images_info(path, files, first, deep, tags, rate, rotate=rotate, colour=colour, linear=linear)
        declared(self.info, untagged_color, yuv_matrix=False)
        self._rgb_format = "rgb48le" if self.info.bit_depth > 8 else "rgb24"
        self.matrix = "bt601" if is_yuv(first.format) else None  # JPEG's (JFIF) and WebP's, and swscale's default
        self._first_frame: av.VideoFrame | None = first
        self._offset = 0  # index of the first file in the selected span
        if start is not None or duration is not None:
            self._select_span(start, duration)

    def _load(self, file: Path) -> av.VideoFrame:
        check_input_file(file)
        try:
            # pattern_type none: the file itself, even when its name is a pattern (shot_%03d.png),
            # which FFmpeg's image2 demuxer would take as shot_001.png, shot_002.png, ...
            with av.open(ffmpeg_name(file), options={"pattern_type": "none"}) as c:
                frame = next(c.decode(video=0), None)
        except (av.FFmpegError, StopIteration) as exc:
            raise InputError(f"{file}: not an image FFmpeg can read ({ffmsg(exc)})") from None
        if frame is None:
            raise InputError(f"{file}: no image in this file")
        return frame

    def _select_span(self, start: float | Fraction | None, duration: float | Fraction | None) -> None:
        span = span_indices(
            len(self._files), self.info.fps, exact(start or 0), None if duration is None else exact(duration)
        )
        self._offset = span.start
        self._files = self._files[span.start : span.stop]
        self.info.num_frames = len(self._files)
        self._first_frame = None

    def __iter__(self) -> Iterator[Frame]:
        for i, file in enumerate(self._files):
            first, self._first_frame = (self._first_frame if i == 0 else None), None
            try:
                rgb, see = pillow_rgb(file) or self._ffmpeg_rgb(first or self._load(file), i)
            except InputError as exc:  # the same image stops a resume again: to be replaced
                raise BrokenImage(
                    f"{exc}; nothing is kept: replace it (a new scan or copy), or move it out to leave "
                    "a gap in the numbering, then run the same command again"
                ) from None
            if rgb.dtype == np.uint8 and self._rgb_format == "rgb48le":  # an 8-bit image among 16-bit ones
                rgb = rgb.astype(np.uint16) * 257  # (exactly: swscale's rgb24 -> rgb48 is up to 0.7 levels off)
            rgb = turned_pixels(rgb, *self.turn)
            if not self.transparent and i and see:
                self.transparent = True
                if self._say_alpha:
                    say_alpha_dropped(file)
            if (size := (rgb.shape[1], rgb.shape[0])) != (self.info.width, self.info.height):
                raise size_differs(file, size, (self.info.width, self.info.height))
            yield Frame(np.ascontiguousarray(rgb), i + self._offset, i)

    def _ffmpeg_rgb(self, frame: av.VideoFrame, index: int) -> tuple[np.ndarray, bool]:
        """(RGB, see-through) of an image FFmpeg reads (one `pillow_rgb` leaves to it); the alpha is
        looked at only until one image has shown it."""
        see = not self.transparent and index > 0 and see_through(frame)
        if FLOAT.search(frame.format.name):  # (an EXR's linear light: 0..1 exactly, the rest clipped)
            return float_rgb48(float_values(frame)), see
        rng = ColorRange.JPEG if frame.format.name.startswith("yuvj") or frame.color_range == 2 else ColorRange.MPEG
        eight = max(comp.bits for comp in frame.format.components) <= 8  # (`__iter__` scales it up where deeper)
        out = self._reformatter.reformat(
            frame,
            format="rgb24" if eight else self._rgb_format,
            src_color_range=rng,
            dst_color_range=ColorRange.JPEG,
            interpolation=TO_RGB_FLAGS,
        )
        if eight or self._rgb_format != "rgb48le":
            return out.to_ndarray(), see
        gain = rgb48_gain(frame.format.name, Colorspace.ITU601, rng == ColorRange.JPEG)  # swscale's default matrix
        return exact_rgb48(out.to_ndarray(), gain), see

    def close(self) -> None:
        pass
