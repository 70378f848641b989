"""Image outputs: one PNG/JPEG/TIFF/... per frame, or a single image, moved into place when complete."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange

from dove_cli.errors import OptionError, OutputError
from dove_cli.humanize import counted, turn_text
from dove_cli.video_io.cadence import SAMPLE_FRAMES, judge_rate, packet_pts
from dove_cli.video_io.formats import (
    IMAGE_EXTENSIONS,
    TO_YUV_FLAGS,
    check_encoder_options,
    encoder_formats,
    ffmsg,
    has_encoder,
    png_color_tags,
    rgb_frame,
)
from dove_cli.video_io.hdr import metadata_lost
from dove_cli.video_io.metadata import file_tags, find_reel, find_timecode, timecode_said
from dove_cli.video_io.paths import (
    check_output,
    ffmpeg_name,
    is_pattern,
    make_folder,
    matching_images,
    prepare_output,
    remove_made_folders,
    replace_keeping_mode,
    temp_sibling,
    through_links,
    write_failed,
)
from dove_cli.video_io.reader import VideoInfo, audio_streams, display_size, shown_ranges
from dove_cli.video_io.sequences import frame_name, frame_number, runs
from dove_cli.video_io.stills import icc_name, tagged_jpeg, tagged_png, turned_pixels
from dove_cli.video_io.writer import VideoWriter

log = logging.getLogger("dove_cli.video_io")


# What the image encoders are fed, best first: 16-bit RGB for a deeper source, else 8-bit (bgr24: BMP;
# bgra: WebP, as libwebp converts to YUV itself; yuvj: JPEG). Only these can be asked for (--pix-fmt):
# dove's frames are RGB, which they hold exactly (--pix-fmt rgb24: 8-bit PNG from a 16-bit source).
IMAGE_PIX_FMTS = ("rgb48be", "rgb48le", "rgb24", "bgr24", "bgra", "yuvj444p", "yuvj420p")
# The encoders' settings unless --codec-option says otherwise: WebP lossless, as PNG and TIFF are (libwebp's
# default, lossy at quality 75, threw away much of the detail an upscale makes; lossless=0 quality=90 is lossy).
IMAGE_ENCODER_DEFAULTS = {"libwebp": {"lossless": "1"}}


# FFmpeg's limits on one image, found by encoding at them (FFmpeg 8.1): a frame holds fewer than INT_MAX / 8
# pixels counted with a margin of 128 a side (av_image_check_size: 16384x16000 is about the most), and the TIFF
# encoder asks for room for twice the raw image, 4 bytes a row and 16 KiB in one int (a 16-bit RGB TIFF of
# 16384x10922, 1.0 GiB of pixels, is written; 16384x10923 fails); libwebp takes at most 16383 px a side.
INT_MAX = 2**31 - 1
TIFF_ROOM = INT_MAX - 64 - 16384  # the packet's padding and FFmpeg's AV_INPUT_BUFFER_MIN_SIZE
WEBP_MAX_SIDE = 16383


def too_large(encoder: str, pix_fmt: str, width: int, height: int) -> str | None:
    """Why FFmpeg cannot write one `width` x `height` image of `encoder` in `pix_fmt`, and what to do;
    None when it can."""
    smaller = "make it smaller (a lower --scale, or --size)"
    if (width + 128) * (height + 128) >= INT_MAX // 8:
        return f"a {width}x{height} image has more pixels than FFmpeg holds in one frame (about 268 million); {smaller}"
    bits = av.VideoFormat(pix_fmt).bits_per_pixel
    if encoder == "tiff" and height * (2 * ((width * bits + 7) // 8) + 4) > TIFF_ROOM:
        depth, gib = max(c.bits for c in av.VideoFormat(pix_fmt).components), width * height * bits / 8 / 2**30
        return (f"a {width}x{height} {depth}-bit TIFF holds {gib:.1f} GiB of pixels, more than FFmpeg's TIFF encoder "
                f"writes in one image (1.0 GiB); write .png instead, or {smaller}")  # fmt: skip
    if encoder == "libwebp" and max(width, height) > WEBP_MAX_SIDE:
        return f"a {width}x{height} WebP is larger than the format holds ({WEBP_MAX_SIDE} px a side); write .png instead, or {smaller}"
    return None


def image_pix_fmt(path: Path, bit_depth: int, pix_fmt: str | None = None) -> str:
    """The pixel format `path`'s images are written in: `pix_fmt` if asked for (refused unless the
    encoder takes it and it is RGB), else the best of IMAGE_PIX_FMTS the encoder takes for the source's
    `bit_depth`. The pipeline hands the writer 16-bit frames only for an rgb48 one (upscaling), so
    that 8-bit images are rounded as video is, not cut by swscale (x/256)."""
    ext = path.suffix.lower()
    if not has_encoder(IMAGE_EXTENSIONS[ext]):
        raise OutputError(f"{path}: this FFmpeg build cannot write {ext} images")
    usable = [pf for pf in IMAGE_PIX_FMTS if pf in encoder_formats(IMAGE_EXTENSIONS[ext])]
    if pix_fmt is not None:
        if pix_fmt not in usable:
            raise OptionError(f"--pix-fmt {pix_fmt}: {ext} images are written as {' or '.join(usable) or 'nothing'}"
                              " (the image format's own layouts that hold dove's RGB frames)")  # fmt: skip
        return pix_fmt
    for pf in usable:
        if bit_depth > 8 or not pf.startswith("rgb48"):
            return pf
    raise OutputError(f"{path}: this FFmpeg build cannot write RGB {ext} images")


def _jpeg_quality(text: str) -> int:
    """--codec-option q=N for a JPEG output: ffmpeg's -q:v, 2 (the best) to 31."""
    if not text.isdigit() or not 2 <= int(text) <= 31:
        raise OptionError(f"--codec-option q={text}: a JPEG's quality is ffmpeg's -q:v, 2 (the best) to 31")
    return int(text)


def _resolution(encoder: str, dpi: tuple[float, float] | None) -> dict[str, str]:
    """The encoder option that keeps an image's DPI: PNG's in dots per metre, as its pHYs stores it
    (72 dpi is 2835, where FFmpeg's own dpi=72 truncates to 2834: 71.98 dpi read back); TIFF's in dpi."""
    if not dpi:
        return {}
    return {"png": {"dpm": str(round(dpi[0] / 0.0254))}, "tiff": {"dpi": str(round(dpi[0]))}}.get(encoder, {})


class ImageWriter(VideoWriter):
    """PNG/JPEG/... per frame into a temporary folder (or file), moved into place at close."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        width: int,
        height: int,
        *,
        codec_options: dict[str, Any] | None,
        overwrite: bool,
        pix_fmt: str | None = None,
        work: Path | None = None,
        first: int = 0,
        start_number: int = 1,
        numbers: list[int] | None = None,
        audio: str = "copy",
        subtitles: str = "copy",
        warn: bool = True,
    ) -> None:
        self.path, self.info, self.frames_written = path, info, 0
        self._start = start_number  # the first image's number (--start-number)
        self._numbers = numbers  # each image's, where known (an image sequence's own: a gap kept)
        self._done = False
        self._keep_tmp = False
        self._w, self._h = width, height
        # An image's EXIF orientation, which images as FFmpeg writes them cannot hold: the pixels are
        # turned as a viewer shows the input (a video's display matrix is not: said, as ever)
        self._turn = (info.rotation, info.mirrored) if info.is_images else (0, False)
        self._pattern = is_pattern(path)
        encoder = IMAGE_EXTENSIONS[path.suffix.lower()]
        hi = info.bit_depth > 8
        pf = image_pix_fmt(path, info.bit_depth, pix_fmt)
        self._pix_fmt, self._asked = pf, pix_fmt is not None
        self.codec, self.pix_fmt = encoder, pf  # as a plan reports them
        if why := too_large(encoder, pf, width, height):  # (before the run, not after its first frame's work)
            raise OutputError(f"{path}: {why}")
        # An HDR source's colour tags, which a PNG keeps (cICP) with its HDR10 metadata; other image formats cannot.
        self._color = png_color_tags(info.color_primaries, info.color_trc) if encoder == "png" else None
        if warn:
            self._say_losses(info, width, height, eight_bit=hi and not pf.startswith("rgb48"))
            self._say_dropped(info, audio, subtitles)
        given = {str(k): str(v) for k, v in (codec_options or {}).items()}
        # JPEG's quality, ffmpeg's -q:v (2, the best, to 31): `q`, which is no option of the encoder's own
        if encoder == "mjpeg" and "global_quality" in given:  # (set from q: it would be ignored)
            raise OptionError("--codec-option global_quality: give a JPEG's quality as q=N (ffmpeg's -q:v, 2 to 31)")
        self._jpeg_q = _jpeg_quality(given.pop("q", "2")) if encoder == "mjpeg" else 2
        # (ffmpeg's -q:v also sets each frame's quality, which PyAV cannot: qmin = qmax hold the JPEG there)
        held = {"qmin": str(self._jpeg_q), "qmax": str(self._jpeg_q)} if encoder == "mjpeg" else {}
        # a TIFF's compression: the input TIFF's where FFmpeg's encoder writes it (uncompressed stays so), else its packbits
        kept = {"compression_algo": info.tiff_compression} if encoder == "tiff" and info.tiff_compression else {}
        self._encoder, self._options = encoder, IMAGE_ENCODER_DEFAULTS.get(encoder, {}) | held | kept | given
        if given:  # a typo said now, naming the option, not ignored
            check_encoder_options(
                encoder, self._options, given, width, height, pf, Fraction(25), ("--pix-fmt",) * self._asked
            )
        # An image's DPI, as its print size stays its own (PNG and TIFF by their encoders; JPEG `tagged_jpeg`)
        self._dpi = info.dpi if info.dpi and info.dpi[0] == info.dpi[1] else None
        if not self._pattern:
            if info.num_frames > 1 and not info.is_still_image:
                raise OutputError(
                    f"{path}: one image cannot hold {info.num_frames} frames; use a "
                    f"pattern like {path.with_name(path.stem + '_%06d' + path.suffix)}"
                )
            self._made = prepare_output(path, overwrite)
            self._tmp = temp_sibling(through_links(path), path.suffix)
            self._folder = path.parent
            return
        self._folder = path.parent
        check_output(path, overwrite, numbers=numbers)
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

    def _say_losses(self, info: VideoInfo, width: int, height: int, *, eight_bit: bool) -> None:
        """Warn about what the source has that image files cannot keep: bits, a rotation tag, the
        pixel aspect ratio (anamorphic video shows wider or narrower than its pixels)."""
        if eight_bit and self._asked:
            log.warning("%s: the source is %d-bit but --pix-fmt %s images are 8-bit", self.path, info.bit_depth,
                        self._pix_fmt)  # fmt: skip
        elif eight_bit:
            log.warning("%s: the source is %d-bit but %s images are 8-bit (use .png or .tif to keep it)",
                        self.path, info.bit_depth, self.path.suffix.lower())  # fmt: skip
        if (info.rotation or info.mirrored) and not info.is_images:
            log.warning("%s: images cannot carry the source's rotation tag (%s); they are stored as decoded "
                        "(use --rotate apply for upright images)", self.path, turn_text(info.rotation, info.mirrored))  # fmt: skip
        if info.icc_profile and self.codec not in ("png", "mjpeg"):
            log.warning("%s: %s images are written without the source's ICC profile (%s), so colour-managed "
                        "viewers show its colours as sRGB (.png and .jpg outputs keep it)", self.path,
                        self.path.suffix.lower(), icc_name(info.icc_profile))  # fmt: skip
        png = "png" if self._color else None  # a PNG tagged HDR (cICP) carries it; untagged images do not
        for lost in metadata_lost(info.color_trc, info.mastering, info.light_level, info.dynamic_hdr, png):
            log.warning("%s: %s", self.path, lost)
        if info.sample_aspect_ratio and info.sample_aspect_ratio != 1:
            sar = info.sample_aspect_ratio
            log.warning("%s: images cannot carry the source's pixel aspect ratio (%d:%d); they have square pixels, "
                        "so they look %dx%d where the video looks %dx%d", self.path, sar.numerator, sar.denominator,
                        width, height, *display_size(width, height, sar, 0))  # fmt: skip

    def _say_dropped(self, info: VideoInfo, audio: str, subtitles: str) -> None:
        """Images hold pixels only: what the input has besides (its frame times where a sequence read
        back at one rate would not give them back, audio and subtitles not left out with
        --audio/--subtitles none, the timecode, chapters, tags) is said in one warning, as an MPEG-TS
        output says what it cannot keep."""
        if info.is_images or not Path(info.path).is_file():
            return
        try:
            with av.open(ffmpeg_name(info.path), metadata_errors="replace") as src:
                streams = {"audio": len(audio_streams(src)) * (audio != "none"),
                           "subtitle": len(src.streams.subtitles) * (subtitles != "none")}  # fmt: skip
                lost = [f"{n} {kind} stream{'s' * (n != 1)}" for kind, n in streams.items() if n]
                if info.captions:
                    lost.append("the closed captions")
                video = src.streams.video[0] if src.streams.video else None
                if tc := find_timecode(src, video):
                    lost.append(f"the timecode {timecode_said(tc, find_reel(src, video))}")
                if n := len(src.chapters()):
                    lost.append(f"{n} chapter{'s' * (n != 1)}")
                if tags := file_tags(src):
                    lost.append(f"the tag{'s' * (len(tags) != 1)} {', '.join(tags)}")
                lost = _times_lost(info, src) + lost  # (last: it reads packets)
        except av.FFmpegError:  # read once already: the reader says what is wrong with it
            return
        if lost:
            log.warning("%s: images hold no frame times, audio, subtitles, captions, timecode, chapters or tags; not kept: "
                        "%s (a video output such as .mkv keeps them)", self.path, "; ".join(lost))  # fmt: skip

    def _encode(self, rgb: np.ndarray) -> bytes:
        cc: Any = av.CodecContext.create(self._encoder, "w")
        cc.width, cc.height, cc.pix_fmt = rgb.shape[1], rgb.shape[0], self._pix_fmt  # (as turned)
        cc.time_base = Fraction(1, 25)
        cc.sample_aspect_ratio = Fraction(1)  # square pixels: PNG's pHYs said 0:1 for FFmpeg's "unknown"
        dpi = self._dpi
        cc.options = _resolution(self._encoder, dpi) | self._options
        if self._encoder == "mjpeg":  # as `ffmpeg -q:v Q` (FF_QP2LAMBDA: 118; qmin, qmax in `_options`)
            cc.qscale, cc.global_quality = True, self._jpeg_q * 118
        frame = rgb_frame(rgb)
        if self._pix_fmt != frame.format.name:
            frame = frame.reformat(
                format=self._pix_fmt,
                src_color_range=ColorRange.JPEG,
                dst_color_range=ColorRange.JPEG,
                interpolation=TO_YUV_FLAGS,
            )
        for name, value in (self._color or {}).items():
            setattr(frame, name, value)
        frame.pts = 0
        data = b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])
        if self._encoder == "png" and self._color:  # (an HDR source's cICP says its colour, not an ICC profile)
            return tagged_png(data, None, self.info.mastering, self.info.light_level)
        if self._encoder == "png":
            return tagged_png(data, self.info.icc_profile)
        return tagged_jpeg(data, self.info.icc_profile, dpi) if self._encoder == "mjpeg" else data

    def write(self, rgb: np.ndarray, pts: int | None = None, captions: av.VideoFrame | None = None) -> None:
        """Write one image; images carry no timestamps (pts is only used for ordering) nor captions."""
        if self._done:
            raise OutputError(f"{self.path}: writer is already closed")
        if rgb.shape != (self._h, self._w, 3):
            raise ValueError(f"frame shape {rgb.shape} != ({self._h}, {self._w}, 3)")
        if not self._pattern and self.frames_written:
            raise OutputError(f"{self.path}: one image cannot hold more than one frame")
        try:
            data = self._encode(np.ascontiguousarray(turned_pixels(rgb, *self._turn)))
        except av.FFmpegError as exc:  # (what `too_large` does not foresee: said in one line, as any output error)
            self.abort()
            raise OutputError(f"{self.path}: FFmpeg's {self._encoder} encoder could not write a {self._w}x{self._h} "
                              f"{self._pix_fmt} image ({ffmsg(exc)})") from None  # fmt: skip
        i = self.frames_written
        number = self._numbers[i] if self._numbers is not None and i < len(self._numbers) else self._start + i
        target = self._tmp if not self._pattern else self._tmp / frame_name(self.path, number)
        part = target.with_name(target.name + ".part")  # complete or absent, even after a crash
        try:
            part.write_bytes(data)
            os.replace(part, target)
        except OSError as exc:
            part.unlink(missing_ok=True)
            self.abort()
            raise write_failed(self.path, exc, str(exc.strerror)) from None
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
                replace_keeping_mode(self._tmp, through_links(self.path))
            elif self._new_folder:
                os.rename(self._tmp, self._folder)
            else:
                written = {p.name for p in self._tmp.iterdir()}
                for name in sorted(written):
                    replace_keeping_mode(self._tmp / name, self._folder / name)
                self._tmp.rmdir()
                self._say_kept(written)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: could not move images into place ({exc.strerror})") from None
        self._done = True

    def _say_kept(self, written: set[str]) -> None:
        """Images of this pattern that the run did not write (an earlier, longer render; the rest of a
        reel a --preview fix-up redid part of) are kept beside its output, never removed: said, in one
        line, as a finishing folder may now mix two renders."""
        kept = sorted(n for p in matching_images(self.path) if p.name not in written
                      and (n := frame_number(self.path, p.name)) is not None)  # fmt: skip
        if kept:
            log.warning("%s: %s of this pattern that this run did not write %s beside its %d (numbers %s)",
                        self.path, counted(len(kept), "other image"), "remain" if len(kept) > 1 else "remains",
                        len(written), shown_ranges(runs(kept)))  # fmt: skip

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


def _times_lost(info: VideoInfo, src: Any) -> list[str]:
    """What images lose of a video's timing, which a sequence read back at one rate (`--fps`) does not
    give back: uneven steps (a variable rate, judged as a plan judges it, `judge_rate` over its first
    frames) and a first frame a frame or more after the file's start (a video that starts after its sound)."""
    lost: list[str] = []
    s = src.streams[info.stream_index]
    rate = judge_rate(s, packet_pts(src, s, SAMPLE_FRAMES), SAMPLE_FRAMES)
    if rate.variable and rate.steps:
        short, long = (float(t * 1000) for t in rate.steps)
        lost.append(f"the frame times (a variable rate: steps of {short:.0f} to {long:.0f} ms{rate.judged_from})")
    if info.fps and info.lead >= 1 / info.fps:
        lost.append(f"the first frame's time ({float(info.lead):.3f} s into the file)")
    return lost
