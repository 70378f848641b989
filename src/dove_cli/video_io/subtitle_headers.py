"""Headers of copied subtitle streams that say which picture their drawing was made for, so that
players draw them on the upscaled video as they did on the input. The packets (the cues) are
copied untouched; only the stream's header (codec extradata: Matroska's CodecPrivate) is edited.

    DVD (bitmap) subtitles: `size: WxH`, the canvas their bitmaps are drawn on (VobSub .idx text)
    ASS/SSA: `LayoutResX`/`LayoutResY` in [Script Info], the storage size the script was laid out for
"""

from __future__ import annotations

import re
from typing import Any

from dove_cli.video_io.reader import VideoInfo, is_picture

SCRIPT_INFO = re.compile(rb"^\[Script Info\][^\r\n]*", re.MULTILINE | re.IGNORECASE)
NEXT_SECTION = re.compile(rb"^\[", re.MULTILINE)
LAYOUT_RES = re.compile(rb"^[ \t]*LayoutRes[XY][ \t]*:", re.MULTILINE)  # as libass reads them: case counts


def sized_dvdsub_header(extradata: bytes | None, src: Any) -> bytes | None:
    """A DVD subtitle stream's header (a VobSub .idx's text: Matroska's CodecPrivate) saying the size
    of the picture its bitmaps are drawn on, the input video's, where it says none: a .vob's stream has
    no header at all (its palette is in the DVD's IFO), and ffmpeg copies it without one. A player
    without it may draw the bitmaps on the upscaled video's size, a quarter as large at x4. The rest
    of a header (the palette) is kept; None when it has a size or the input no video."""
    text = (extradata or b"").decode("latin-1")
    video = next((v for v in src.streams.video if not is_picture(v)), None)
    if video is None or re.search(r"^size:", text, re.MULTILINE):
        return None
    return f"size: {video.codec_context.width}x{video.codec_context.height}\n{text}".encode("latin-1")


def ass_layout(info: VideoInfo, width: int, height: int) -> tuple[int, int] | None:
    """The storage size an input's ASS scripts were laid out for, when an output of `width` x
    `height` (stored) is not that size: None when it is. libass (mpv, ffmpeg's subtitles filter)
    scales borders and shadows (ScaledBorderAndShadow: no, or none said), \\blur and \\be by the
    video's storage size, so on a x4 output they would be a quarter as thick against the picture.
    It is the picture the output was made from: `info`'s, that is the input's stored size less
    --crop, not widened by a non-square pixel aspect (libass takes the pixel aspect from the
    display aspect against this size, as players' VSFilter-compatible default stretches the text
    with the pixels), turned as the output is shown when it carries a quarter turn (the text stays
    upright in its proportions; with --rotate apply `info` is turned already)."""
    if (width, height) == (info.width, info.height):
        return None
    return (info.height, info.width) if info.rotation % 180 else (info.width, info.height)


def laid_out_ass_header(extradata: bytes | None, size: tuple[int, int]) -> bytes | None:
    """An ASS/SSA header with `LayoutResX`/`LayoutResY` (`size`, from `ass_layout`) added at the end
    of its [Script Info] section, in its own line endings: libass 0.17 and later then take it for
    the storage size (older libass and VSFilter ignore the lines). None where the header has them
    already (the script's author knows better) or has no [Script Info]."""
    data = extradata or b""
    head = SCRIPT_INFO.search(data)
    if head is None:
        return None
    following = NEXT_SECTION.search(data, head.end())
    end = following.start() if following else len(data)
    if LAYOUT_RES.search(data, head.end(), end):
        return None
    at = head.end() + len(data[head.end() : end].rstrip(b"\r\n"))  # after the section's last line
    eol = b"\r\n" if b"\r\n" in data else b"\n"
    lines = eol + b"LayoutResX: %d" % size[0] + eol + b"LayoutResY: %d" % size[1]
    return data[:at] + lines + data[at:]
