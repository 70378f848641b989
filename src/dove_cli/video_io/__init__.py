"""Reading and writing videos and images: files <-> RGB frames with exact timestamps.

Media are decoded and encoded with PyAV (FFmpeg). Pillow reads still images' headers, and the pixels of JPEGs and
WebPs as libjpeg/libwebp decode them (image_reader.pillow_rgb). What neither shows is read or written by hand: HDR and
Dolby Vision records (hdr.py), Matroska editions (matroska.py), a PNG's colour chunks and the ICC/DPI put back into
a written PNG or JPEG (stills.py). Each module's job: notes/MODULES.md (its `video_io/` rows). Here: what the
rest of dove imports (`open_reader`, `probe`, ...) and `open_writer` (a container or images).

Every output is written to a temporary name beside the target and renamed onto it when complete.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from dove_cli.errors import OptionError, OutputError, advice
from dove_cli.video_io.formats import (
    CODECS,
    FOLDER_EXTENSIONS,
    IMAGE_EXTENSIONS,
    READ_IMAGE_EXTENSIONS,
    READ_ONLY_IMAGE_EXTENSIONS,
    READ_ONLY_VIDEO_EXTENSIONS,
    VIDEO_EXTENSIONS,
    deep_output,
    default_codec,
    hdr_codec_note,
    looks_like_video,
    output_clock,
    output_notes,
    resolve_codec,
    x264_options,
)
from dove_cli.video_io.hdr import hdr_warning
from dove_cli.video_io.image_reader import image_inputs
from dove_cli.video_io.images import ImageWriter, image_pix_fmt
from dove_cli.video_io.paths import (
    check_fields,
    check_folder_made,
    check_name_length,
    check_not_windows,
    check_output,
    folders_made_under,
    is_image_path,
    is_pattern,
    is_special,
    make_folder,
    make_output_folder,
    matching_images,
    open_special,
    remove_made_folders,
    replaced_images,
    through_links,
    write_failed,
    write_whole,
    writes_to,
)
from dove_cli.video_io.reader import (
    DEINTERLACE_MODES,
    Frame,
    VideoInfo,
    VideoReader,
    cheap_to_count,
    display_size,
    open_reader,
    probe,
    read_clip,
    side_stream_rates,
    stream_rate,
    video_length,
)
from dove_cli.video_io.sequences import FIELD, first_number, frame_name, frame_number, numbered, numbering
from dove_cli.video_io.writer import ContainerWriter, VideoWriter, output_zero

__all__ = [
    "cheap_to_count",
    "display_size",
    "first_number",
    "image_inputs",
    "numbered",
    "numbering",
    "side_stream_rates",
    "CODECS",
    "DEINTERLACE_MODES",
    "IMAGE_EXTENSIONS",
    "FOLDER_EXTENSIONS",
    "READ_IMAGE_EXTENSIONS",
    "READ_ONLY_VIDEO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Frame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "attachments_dropped",
    "check_name_length",
    "check_not_windows",
    "check_output",
    "deep_output",
    "default_codec",
    "frame_name",
    "frame_number",
    "hdr_codec_note",
    "hdr_warning",
    "image_pix_fmt",
    "is_image_path",
    "is_pattern",
    "looks_like_video",
    "check_folder_made",
    "folders_made_under",
    "make_folder",
    "make_output_folder",
    "open_special",
    "matching_images",
    "replaced_images",
    "open_reader",
    "open_writer",
    "output_clock",
    "output_notes",
    "output_zero",
    "probe",
    "read_clip",
    "remove_made_folders",
    "resolve_codec",
    "through_links",
    "stream_rate",
    "video_length",
    "write_failed",
    "is_special",
    "writes_to",
    "write_whole",
    "x264_options",
]


def attachments_dropped(info: VideoInfo, output: Path, subtitles: str) -> str | None:
    """A warning when the input's attachments (fonts, cover art, other files) cannot go along to
    `output`, else None; the fonts' reason only where they go with subtitles."""
    container = VIDEO_EXTENSIONS.get(output.suffix.lower())
    kept = info.covers if container == "mp4" else ()
    dropped = [name for name in info.attachments if name not in kept]
    if not dropped or container in (None, "matroska"):
        return None  # (.mkv with --subtitles none: fonts without their subtitles are dropped, as asked)
    if all(name in info.covers for name in dropped):
        why = "only .mkv and .mp4 hold cover art"
    else:
        fonts = subtitles != "none" and info.has_subtitles and any(name in info.fonts for name in dropped)
        why = "only .mkv holds them" + (", and styled subtitles need their fonts" if fonts else "")
    return f"{info.path}: {len(dropped)} attachment(s) not copied ({', '.join(dropped)}): {why}"


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
    start_number: int = 1,
    numbers: list[int] | None = None,
    warn: bool = True,
    index_first: bool = True,
) -> VideoWriter:
    """Start writing `path` (a video file, an image pattern like `frames/%06d.png`, or one image).

    info: the reader's VideoInfo: time base, fps, colour, rotation and the source of audio,
    subtitle, chapter and metadata copies. codec: None = the container's default (default_codec).
    audio: "copy" (packet for packet; error if the container cannot hold the codec), "transcode"
    (every audio stream as AAC, Opus for WebM; one that already is that codec is copied, as a second
    lossy encode only loses quality) or "none". subtitles: "copy"
    (packet for packet; text subtitles the container cannot hold are converted to its text codec,
    e.g. srt -> mov_text for MP4; bitmap ones are refused) or "none". start/end: the span of the
    input (seconds on the file's clock, from its start as `ffmpeg -ss` counts) that this output covers, as for a preview: audio and
    subtitles outside it are left out and every timestamp shifts so that the output starts at 0.
    Codec and pixel-format choices are validated here, before any frame is encoded. work, first,
    start_number and numbers are an image output's only; a video output ignores them, as one set of
    writer options serves either kind of output (`upscaling.output_options` gives every run a
    start number). work/first (image patterns): write the images into the folder `work`, which
    persists after abort() and may already hold the first `first` images of an interrupted run
    (--resume); close() moves them all into place. start_number: the number of a pattern's first
    image; numbers: of each image, in order (a gap in an image sequence's numbering kept), where
    known. warn: log what the output loses (odd size written as 4:4:4, fewer bits
    or coarser chroma than the source, ASS styling, a rotation tag or pixel aspect ratio in images);
    a writer opened again for the same output passes False so that each warning appears once.
    index_first: an .mp4/.mov gets its index (moov) before the media, as web players and YouTube
    want it (`-movflags +faststart`: the muxer rewrites the file once at close, still under its
    temporary name); segments that only dove reads back pass False.
    """
    path = Path(path)
    if audio not in ("copy", "transcode", "none"):
        raise OptionError(f"audio must be copy, transcode or none, not {audio!r}")
    if subtitles not in ("copy", "none"):
        raise OptionError(f"subtitles must be copy or none, not {subtitles!r}")
    if width < 1 or height < 1:
        raise OptionError(f"output size must be positive, got {width}x{height}")
    ext = path.suffix.lower()
    if ext in READ_ONLY_IMAGE_EXTENSIONS:
        raise OutputError(f"{path}: dove reads {ext} images but does not write them; write .tif (16-bit) or .png")
    if ext in IMAGE_EXTENSIONS:
        check_fields(path, OutputError)
        return ImageWriter(
            path, info, width, height, codec_options=codec_options, overwrite=overwrite, pix_fmt=pix_fmt, work=work,
            first=first, start_number=start_number, numbers=numbers, audio=audio, subtitles=subtitles, warn=warn,
        )  # fmt: skip
    if ext not in VIDEO_EXTENSIONS and FIELD.search(path.name):
        raise OutputError(f"{path}: image pattern needs an image extension ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    if not ext:  # `-o outframes/`: the slash is gone, and a folder that does not exist is no output
        folder = advice(f" ({path}/)", f": an existing one, or the text '{path}/' (a Path drops its slash)")
        kept = "; the images keep their names" if info.is_images else ""  # (a video's output is named after it)
        raise OutputError(f"{path}: no extension: give a file name such as {path}.mp4, an image pattern such "
                          f"as {path / '%06d.png'}, or a folder{folder}{kept}")  # fmt: skip
    if ext not in VIDEO_EXTENSIONS:
        raise OutputError(
            f"{path}: unknown output extension {ext!r} (use "
            f"{', '.join(sorted(VIDEO_EXTENSIONS))}; one image: {', '.join(sorted(IMAGE_EXTENSIONS))}; or an image "
            "pattern like frames/%06d.png)"
        )
    # (work, first, start_number, numbers: an image sequence's, which a video has none of)
    return ContainerWriter(
        path,
        info,
        width,
        height,
        codec=codec,
        crf=crf,
        preset=preset,
        pix_fmt=pix_fmt,
        codec_options=codec_options,
        audio=audio,
        subtitles=subtitles,
        overwrite=overwrite,
        start=start,
        end=end,
        warn=warn,
        index_first=index_first,
    )
