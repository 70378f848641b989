"""What FFmpeg can read and write here: containers, codecs and their defaults, pixel formats, colour tags."""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import logging
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import Colorspace, Interpolation

from dove_cli.errors import OptionError, OutputError

log = logging.getLogger("dove_cli.video_io")

IMAGE_EXTENSIONS = {
    ".png": "png",
    ".jpg": "mjpeg",
    ".jpeg": "mjpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".webp": "libwebp",
}
# Film scans and renders, which FFmpeg decodes (DPX: 10-bit log or linear code values; OpenEXR: linear
# half or float) and dove reads as images, but does not write: their sequences go to 16-bit TIFF.
READ_ONLY_IMAGE_EXTENSIONS = (".dpx", ".exr")
READ_IMAGE_EXTENSIONS = (*IMAGE_EXTENSIONS, *READ_ONLY_IMAGE_EXTENSIONS)
FILM_OUTPUT_EXTENSION = ".tif"  # what a folder output writes a DPX or EXR sequence as
VIDEO_EXTENSIONS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".mts": "mpegts",
    ".nut": "nut",
}
# The major brand of an output's ftyp where the extension has its own: Apple's M4V, which ffmpeg's
# ipod muxer (its choice for .m4v) writes. dove keeps the mp4 muxer, setting the brand alone: the
# ipod muxer refuses HEVC, E-AC-3, FLAC, Opus and DVD subtitles, which .m4v files hold.
BRANDS = {".m4v": "M4V "}
# Containers whose muxer counts time in its own unit, whatever the frames' time base (the others,
# MP4, MOV and NUT, keep it or a finer one): frames closer than one of these units would share a time.
CONTAINER_CLOCKS = {"matroska": Fraction(1, 1000), "webm": Fraction(1, 1000), "mpegts": Fraction(1, 90000)}
# Demuxers whose timestamps are a transport clock (MPEG-TS, M2TS; MPEG-PS: .mpg, .vob): a file starts at the
# clock's value when the recording began (3601.4 s, 1 h into a broadcast day), not at a presentation offset
# as an .mp4's edit list says one.
TRANSPORT_CLOCKS = frozenset({"mpegts", "mpeg"})
# FFmpeg's demuxers of bare video bitstreams (.h264, .hevc, .m2v, .m4v, .mjpeg, .obu ...): no container
# to time the frames, so FFmpeg says 25 frames/s for them (its `framerate` option) whatever the stream
# states; the rate is the one its own headers give (`cadence.stream_rate`), else --fps, else that 25.
BARE_STREAM_FORMATS = frozenset({"h264", "hevc", "vvc", "evc", "mpegvideo", "m4v", "mjpeg", "mjpeg_2000", "cavsvideo",
                                 "avs2", "avs3", "dirac", "dnxhd", "h261", "h263", "vc1", "obu", "av1"})  # fmt: skip


def bare_stream(c: Any) -> bool:
    """Whether an open container is a bare video bitstream (BARE_STREAM_FORMATS), with no timing of its own."""
    return not BARE_STREAM_FORMATS.isdisjoint(c.format.name.split(","))


def ff_round(x: Fraction) -> int:
    """`x` rounded as FFmpeg rescales times (av_rescale_rnd's default): to nearest, halves away from zero."""
    return math.floor(x + Fraction(1, 2)) if x >= 0 else -math.floor(Fraction(1, 2) - x)


def output_clock(path: str | Path, time_base: Fraction) -> Fraction:
    """The unit a video output at `path` stores the times of frames timed in `time_base` in."""
    return CONTAINER_CLOCKS.get(VIDEO_EXTENSIONS.get(Path(path).suffix.lower(), ""), time_base)


# Cover-art codecs that MP4 holds (its covr atom; FFmpeg writes none into .mov); Matroska holds any
# picture as an attachment.
MP4_COVERS = ("mjpeg", "png", "bmp")


# Containers dove reads but does not write (archive captures, DVD rips, old web video, raw YUV4MPEG2
# from a capture tool or a pipeline; JVC/Panasonic camcorders' .mod (MPEG-PS) and .tod (MPEG-TS),
# DivX's .divx (AVI)): a folder run upscales them into Matroska, which holds whatever they carry.
READ_ONLY_VIDEO_EXTENSIONS = (".avi", ".mpg", ".mpeg", ".mpeg2", ".m2v", ".vob", ".dv", ".flv", ".f4v", ".wmv",
                              ".asf", ".3gp", ".3g2", ".ogv", ".mxf", ".y4m", ".mod", ".tod", ".divx")  # fmt: skip
# Bare video streams (BARE_STREAM_FORMATS) by the extensions FFmpeg's demuxers give them: a dashcam's or
# an encoder's .h264, .265 ... (a single-file run takes them; a folder run left them out without a word).
BARE_STREAM_EXTENSIONS = (".h264", ".264", ".avc", ".h265", ".265", ".hevc", ".h266", ".266", ".vvc", ".m1v",
                          ".mjpeg", ".mjpg", ".obu", ".vc1")  # fmt: skip
# What a folder run takes: the containers dove writes, and those it only reads (written as .mkv).
FOLDER_EXTENSIONS = (*VIDEO_EXTENSIONS, *READ_ONLY_VIDEO_EXTENSIONS, *BARE_STREAM_EXTENSIONS)
# How common containers begin (offset, bytes): a file without a video extension that starts so is
# named when a folder run leaves it out. The last: an Annex-B start code, a bare H.264/HEVC/VVC stream's.
CONTAINER_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (8, b"AVI "), (0, b"FLV\x01"), (0, b"OggS"),
                   (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"), (0, b"YUV4MPEG2 "),
                   (0, b"\x00\x00\x00\x01"))  # fmt: skip


def container_magic(path: Path) -> bool:
    """Whether `path` starts as an MP4/MOV, Matroska/WebM, AVI, FLV, Ogg, MPEG-PS, MPEG-TS or YUV4MPEG2
    file or a bare H.264/HEVC/VVC stream does (its extension aside: a recorder's dump); unreadable files do not."""
    try:
        with open(path, "rb") as f:
            head = f.read(2 * 188 + 1)
    except OSError:
        return False
    transport = len(head) > 2 * 188 and head[0] == head[188] == head[376] == 0x47  # three 188-byte packets
    return transport or any(head[at : at + len(magic)] == magic for at, magic in CONTAINER_MAGIC)


def audio_only(path: Path) -> bool:
    """Whether `path` holds audio and no video but cover art (an .m4a, an .ogg of music), from its
    header: renaming it would not make it a video."""
    from dove_cli.video_io.paths import ffmpeg_name  # (paths imports this module)

    try:
        with av.open(ffmpeg_name(path)) as c:  # (a name like `a:b.m4a` is no protocol)
            pictures = all(s.disposition & av.stream.Disposition.attached_pic for s in c.streams.video)
            return bool(c.streams.audio) and pictures
    except (av.FFmpegError, OSError, ValueError):
        return False


def looks_like_video(path: Path) -> bool:
    """Whether `path` starts as a container does (`container_magic`) and is not audio only."""
    return container_magic(path) and not audio_only(path)


def look_like_videos(n: int) -> str:
    """'1 file that looks like a video but has no video extension', or n files."""
    return (f"{n} file{'s' * (n != 1)} that look{'s' * (n == 1)} like {'a video' if n == 1 else 'videos'} but "
            f"ha{'s' if n == 1 else 've'} no video extension")  # fmt: skip


# Text subtitles a container cannot hold are converted to its own text codec (as ffmpeg does).
TEXT_SUBTITLES = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}

# The 20 languages ISO 639-2 spells two ways, bibliographic (B) then terminological (T). MP4 and
# Matroska store any three letters; FFmpeg's MOV muxer stores only the languages of QuickTime's old
# Macintosh table (libavformat/isom.c, mov_mdhd_language_map), each under one spelling, B for most
# ("ger", "dut", "chi") and T for some ("fra", "ces", "ron", "slk"), and writes any other untagged.
# Maori (mao/mri) is in no spelling: `mov_language` finds which spelling survives by trying it.
ISO639_2_BT = (("alb", "sqi"), ("arm", "hye"), ("baq", "eus"), ("bur", "mya"), ("chi", "zho"), ("cze", "ces"),
               ("dut", "nld"), ("fre", "fra"), ("geo", "kat"), ("ger", "deu"), ("gre", "ell"), ("ice", "isl"),
               ("mac", "mkd"), ("mao", "mri"), ("may", "msa"), ("per", "fas"), ("rum", "ron"), ("slo", "slk"),
               ("tib", "bod"), ("wel", "cym"))  # fmt: skip
ISO639_2_SYNONYMS = {**dict(ISO639_2_BT), **{t: b for b, t in ISO639_2_BT}}
NO_LANGUAGE = ("", "und")  # ISO 639-2's "undetermined": an untagged stream loses nothing


# ISO 639-1's two-letter codes (the first part of most BCP-47 tags: pt-BR, zh-Hant, es-419) and the
# ISO 639-2 codes of the same languages, bibliographic where there are two (the ISO tables, as FFmpeg's
# libavformat/avlanguage.c has them; `iso639_2` gives the terminological one, which MP4 names).
ISO639_1 = dict(
    pair.split(":")
    for pair in """
aa:aar ab:abk ae:ave af:afr ak:aka am:amh an:arg ar:ara as:asm av:ava ay:aym az:aze ba:bak be:bel bg:bul bh:bih
bi:bis bm:bam bn:ben bo:tib br:bre bs:bos ca:cat ce:che ch:cha co:cos cr:cre cs:cze cu:chu cv:chv cy:wel da:dan
de:ger dv:div dz:dzo ee:ewe el:gre en:eng eo:epo es:spa et:est eu:baq fa:per ff:ful fi:fin fj:fij fo:fao fr:fre
fy:fry ga:gle gd:gla gl:glg gn:grn gu:guj gv:glv ha:hau he:heb hi:hin ho:hmo hr:hrv ht:hat hu:hun hy:arm hz:her
ia:ina id:ind ie:ile ig:ibo ii:iii ik:ipk io:ido is:ice it:ita iu:iku ja:jpn jv:jav ka:geo kg:kon ki:kik kj:kua
kk:kaz kl:kal km:khm kn:kan ko:kor kr:kau ks:kas ku:kur kv:kom kw:cor ky:kir la:lat lb:ltz lg:lug li:lim ln:lin
lo:lao lt:lit lu:lub lv:lav mg:mlg mh:mah mi:mao mk:mac ml:mal mn:mon mr:mar ms:may mt:mlt my:bur na:nau nb:nob
nd:nde ne:nep ng:ndo nl:dut nn:nno no:nor nr:nbl nv:nav ny:nya oc:oci oj:oji om:orm or:ori os:oss pa:pan pi:pli
pl:pol ps:pus pt:por qu:que rm:roh rn:run ro:rum ru:rus rw:kin sa:san sc:srd sd:snd se:sme sg:sag si:sin sk:slo
sl:slv sm:smo sn:sna so:som sq:alb sr:srp ss:ssw st:sot su:sun sv:swe sw:swa ta:tam te:tel tg:tgk th:tha ti:tir
tk:tuk tl:tgl tn:tsn to:ton tr:tur ts:tso tt:tat tw:twi ty:tah ug:uig uk:ukr ur:urd uz:uzb ve:ven vi:vie vo:vol
wa:wln wo:wol xh:xho yi:yid yo:yor za:zha zh:chi zu:zul
""".split()
)


def iso639_2(tag: str) -> str | None:
    """The three letters MP4 and MOV store for language `tag`: an ISO 639-2 code as it is, a BCP-47 tag
    (pt-BR, zh-Hant, es-419, mi; Matroska keeps these whole) as its language's ISO 639-2/T code (por,
    zho, spa, mri: what ISO 14496-12 names for MP4); None when its language part is neither."""
    primary = tag.replace("_", "-").split("-")[0].lower()
    if len(primary) == 2 and primary in ISO639_1:
        bibliographic = ISO639_1[primary]
        return dict(ISO639_2_BT).get(bibliographic, bibliographic)
    return primary if len(primary) == 3 and primary.isascii() and primary.isalpha() else None


def mov_language(code: str) -> str | None:
    """The spelling of language `code` that a .mov keeps: `code` itself, its other ISO 639-2 spelling
    (deu -> ger, fre -> fra), or None when .mov holds neither."""
    return next((c for c in (code, ISO639_2_SYNONYMS.get(code)) if c and mov_keeps_language(c)), None)


@functools.cache
def mov_keeps_language(code: str) -> bool:
    """Whether FFmpeg's MOV muxer keeps language `code`: a one-packet .mov written to memory and read back."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mov") as out:
        s: Any = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        s.metadata["language"] = code
        packet = av.Packet(bytes(2))
        packet.stream, packet.pts, packet.dts, packet.time_base = s, 0, 0, Fraction(1, 8000)
        out.mux(packet)
    buf.seek(0)
    with av.open(buf) as c:
        return c.streams[0].metadata.get("language") == code


# FFmpeg's names for the colour enums (libavutil/pixfmt.h); 2 / 0 = unspecified -> None.
PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
TRC = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
SPACE = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    14: "ictcp",
}
RANGE = {1: "tv", 2: "pc"}
# swscale only knows a few YUV<->RGB matrices; map the container's matrix onto them.
SWS_MATRIX = {
    "bt709": Colorspace.ITU709,
    "fcc": Colorspace.FCC,
    "bt470bg": Colorspace.ITU601,
    "smpte170m": Colorspace.ITU601,
    "smpte240m": Colorspace.SMPTE240M,
    "bt2020nc": Colorspace.BT2020,
    "bt2020c": Colorspace.BT2020,
}
# What a reader reports it converted YUV with (`VideoReader.matrix`; the JSON of `dove eval`).
SWS_NAMES = {Colorspace.ITU709: "bt709", Colorspace.FCC: "fcc", Colorspace.ITU601: "bt601",
             Colorspace.SMPTE240M: "smpte240m", Colorspace.BT2020: "bt2020"}  # fmt: skip


def is_yuv(fmt: av.VideoFormat) -> bool:
    """A pixel format whose colour is stored as YUV (a matrix turns it into RGB): not RGB, gray or a palette."""
    return not fmt.is_rgb and sum(not c.is_alpha for c in fmt.components) >= 3


# swscale's flags. Reading YUV as RGB: bicubic, FFmpeg's default, as `ffmpeg -pix_fmt rgb24` and
# decord (the authors' reader) convert. It truncates (demo clip 001 reads 1.0 level dark on average,
# BT.709 colour bars up to 2.6); exact rounding needs full chroma interpolation, whose result then
# depends on the chroma siting each decoder reports (PyAV cannot set it), so that two files with the
# same pixels read differently. Writing RGB as YUV: exact rounding too; without it neutral
# full-range (yuvj) chroma came out 127, a green cast. Same chroma placement as before.
TO_RGB_FLAGS = int(Interpolation.BICUBIC)
TO_YUV_FLAGS = int(Interpolation.BICUBIC | Interpolation.ACCURATE_RND)


def inverse(table: dict[int, str]) -> dict[str, int]:
    return {v: k for k, v in table.items()}


@dataclass(frozen=True)
class CodecSpec:
    """Sensible defaults for one output codec; `pix_fmt_hi` is used for >8-bit sources. `pix_fmts`:
    the formats it may write where fewer than its encoder takes (a ProRes profile's, `profile_spec`).
    `rgb`: a lossless codec's RGB formats (8-bit, deeper), in which an RGB source stays RGB
    (`default_pix_fmt`): as YUV 4:4:4 it would lose a few levels. `keeps_depth`: a lossless codec,
    whose output is a master: a source deeper than `pix_fmt_hi` keeps its depth (12, 14, 16 bits)
    there, where a delivery codec stays at the 10 bits players decode."""

    encoder: str
    pix_fmt: str
    pix_fmt_hi: str
    crf: int | None = None
    preset: str | None = None
    pix_fmts: tuple[str, ...] = ()
    rgb: tuple[str, str] | None = None
    keeps_depth: bool = False


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("libx264", "yuv420p", "yuv420p10le", crf=16, preset="medium"),
    "hevc": CodecSpec("libx265", "yuv420p", "yuv420p10le", crf=18, preset="medium"),
    "av1": CodecSpec("libsvtav1", "yuv420p", "yuv420p10le", crf=24, preset="8"),
    "vp9": CodecSpec("libvpx-vp9", "yuv420p", "yuv420p10le", crf=24, preset="good"),
    "ffv1": CodecSpec("ffv1", "yuv444p", "yuv444p10le", rgb=("bgr0", "gbrp16le"), keeps_depth=True),
    "prores": CodecSpec("prores_ks", "yuv422p10le", "yuv422p10le", preset="hq"),
    "png": CodecSpec("png", "rgb24", "rgb48be"),
    # NVIDIA's hardware encoders: the CPU stays free for decoding and blending; quality per bit is
    # below x264/x265 at their slower presets. --crf sets their constant quality (cq), --preset p1-p7.
    "h264_nvenc": CodecSpec("h264_nvenc", "yuv420p", "yuv420p", crf=19, preset="p5"),
    "hevc_nvenc": CodecSpec("hevc_nvenc", "yuv420p", "p010le", crf=21, preset="p5"),
}
NVENC = ("h264_nvenc", "hevc_nvenc")
# Encoders whose bitstream is video (limited) range only, by the format's name: FFmpeg's ProRes
# decoder reads limited range whatever the container says (a .mov's nclc colr cannot say full), so
# full-range YUV is converted to limited. The others (x264, x265, SVT-AV1, libvpx, FFV1, NVENC's
# videoFullRangeFlag) write full range and read back as it; PNG is RGB.
VIDEO_RANGE_ONLY = {"prores_ks": "ProRes"}
CODEC_ALIASES = {
    "h265": "hevc",
    "x264": "h264",
    "x265": "hevc",
    "libx264": "h264",
    "libx265": "hevc",
    "svtav1": "av1",
    "libsvtav1": "av1",
    "libvpx-vp9": "vp9",
    "prores_ks": "prores",
}
# ProRes profiles (prores_ks's names; --preset). A file carries its profile as its FourCC (apco,
# apcs, apcn, apch, ap4h, ap4x), which editing software reads. prores_ks takes the tag from the
# profile and the chroma format from the pixel format, so the two must agree (`profile_spec`).
PRORES_PROFILES = ("proxy", "lt", "standard", "hq", "4444", "4444xq")


def prores_pix_fmts(profile: str) -> tuple[str, ...]:
    """What prores_ks writes for a profile, the default first: 10-bit 4:2:2, or 4:4:4 (with alpha too)
    for the 4444 ones (decoders read these back as 12-bit, the depth of their bitstream)."""
    return ("yuv444p10le", "yuva444p10le") if profile.startswith("4444") else ("yuv422p10le",)


def profile_spec(name: str, spec: CodecSpec, preset: str | None, pix_fmt: str | None) -> CodecSpec:
    """The spec of a ProRes output narrowed to its profile's pixel formats (other codecs: `spec`);
    a --pix-fmt of another chroma format is refused here, before any work. `preset` is checked
    (encoder_options) before this."""
    if name != "prores":
        return spec
    profile = preset or str(spec.preset)
    fmts = prores_pix_fmts(profile)
    if pix_fmt is not None and pix_fmt not in fmts:
        fits = [p for p in PRORES_PROFILES if pix_fmt in prores_pix_fmts(p)]
        how = f"; profiles {', '.join(fits)} write {pix_fmt}" if fits else ""
        raise OptionError(f"--pix-fmt {pix_fmt} does not suit prores profile {profile}, which writes "
                          f"{', '.join(fmts)}{how}")  # fmt: skip
    return replace(spec, pix_fmt=fmts[0], pix_fmt_hi=fmts[0], preset=profile, pix_fmts=fmts)


# How untagged YUV video can be read (--untagged-matrix): auto guesses from the size as players do;
# bt601 is what FFmpeg's swscale does for untagged video of any size, and so decord and OpenCV (the
# authors' readers in inference_script.py and eval_metrics.py) and `ffmpeg -pix_fmt rgb24`.
UNTAGGED_MATRICES = {"bt601": "smpte170m", "bt709": "bt709"}


def check_untagged_matrix(untagged: str) -> None:
    """One line for a value --untagged-matrix does not take (a Python caller's)."""
    if untagged not in ("auto", *UNTAGGED_MATRICES):
        raise OptionError(f"--untagged-matrix {untagged!r} is not one of: auto, {', '.join(UNTAGGED_MATRICES)}")


# What --untagged-color declares an input without colour tags to be: (primaries, transfer, the YUV
# matrix that goes with them), FFmpeg's names. Tags the input has are its own; each one missing is
# taken from here (an untagged YUV matrix too, unless --untagged-matrix names one).
UNTAGGED_COLORS = {
    "bt709": ("bt709", "bt709", "bt709"),
    "bt2020-pq": ("bt2020", "smpte2084", "bt2020nc"),
    "bt2020-hlg": ("bt2020", "arib-std-b67", "bt2020nc"),
}
# The YUV matrix RGB of these primaries becomes (HDR10 and HLG are BT.2020 non-constant luminance);
# other RGB gets the one players assume from the size (`assumed_matrix`).
RGB_PRIMARIES_MATRIX = {"bt2020": "bt2020nc"}


def check_untagged_color(colour: str) -> None:
    """One line for a value --untagged-color does not take (a Python caller's)."""
    if colour not in ("none", *UNTAGGED_COLORS):
        raise OptionError(f"--untagged-color {colour!r} is not one of: none, {', '.join(UNTAGGED_COLORS)}")


def is_hd(width: int, height: int) -> bool:
    """Whether a picture is HD as players take an untagged one (BT.709, else BT.601): 1280 wide or
    720 high. The one rule for the matrix assumed (`assumed_matrix`) and the primaries tagged (writer)."""
    return width >= 1280 or height >= 720


def assumed_matrix(width: int, height: int, untagged: str = "auto") -> str:
    """The YUV matrix an untagged video is taken to have: the one `untagged` names (bt601, bt709), or
    for auto as players assume it from the size: BT.709 for HD, BT.601 for SD."""
    if untagged in UNTAGGED_MATRICES:
        return UNTAGGED_MATRICES[untagged]
    return "bt709" if is_hd(width, height) else "smpte170m"


def ffmsg(exc: BaseException) -> str:
    """FFmpeg errors carry the file name already; keep only the reason."""
    return getattr(exc, "strerror", None) or str(exc)


def rgb_frame(rgb: np.ndarray) -> av.VideoFrame:
    """An RGB frame [H, W, 3] uint8/uint16 as an FFmpeg frame.

    The pipeline hands over views of planar memory ([3, H, W] contiguous, see blend.to_code_values):
    8-bit ones are copied plane by plane into gbrp (rows, no interleaving: 1 ms less per 720p
    frame; swscale converts gbrp exactly as rgb24). 16-bit frames go in interleaved, as rgb48:
    swscale's gbrp16 path rounds subsampled chroma differently.
    """
    if rgb.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"frame dtype must be uint8 or uint16, not {rgb.dtype}")
    planar = rgb.transpose(2, 0, 1)
    if rgb.dtype != np.uint8 or not planar.flags.c_contiguous:
        fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
    height, width = rgb.shape[:2]
    frame = av.VideoFrame(width, height, "gbrp")
    for plane, channel in zip(frame.planes, (1, 2, 0), strict=True):  # FFmpeg's planar RGB is G, B, R
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(height, -1)  # rows padded to plane.line_size
        rows[:, :width] = planar[channel]
    return frame


def has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except (av.FFmpegError, ValueError):
        return False


@functools.cache
def writes_captions(encoder: str) -> bool:
    """Whether this FFmpeg's `encoder` writes the A/53 closed captions of the frames it encodes (its
    a53cc option: libx264, libx265, NVENC; not ProRes, FFV1, AV1, VP9 or PNG)."""
    try:
        return any(o.name == "a53cc" for o in av.CodecContext.create(encoder, "w").supported_options.private)
    except (av.FFmpegError, AttributeError, ValueError):
        return False


def encoder_formats(encoder: str) -> set[str]:
    """The pixel formats this FFmpeg's `encoder` takes (none where it is missing)."""
    try:
        return {f.name for f in av.Codec(encoder, "w").video_formats or []}
    except (av.FFmpegError, ValueError):
        return set()


# HDR transfer functions (FFmpeg's names) and the names HDR goes by.
HDR_TRANSFERS = {"smpte2084": "PQ", "arib-std-b67": "HLG"}


def deep_output(bit_depth: int, transfer: str | None) -> bool:
    """Whether a video output gets its codec's deeper pixel format (10-bit) unasked: for a source of
    more than 8 bits, and for HDR (PQ, HLG) of any depth, which bands at 8 bits (an 8-bit video given
    --untagged-color bt2020-hlg was written as HEVC Main)."""
    return bit_depth > 8 or transfer in HDR_TRANSFERS


def png_color_tags(primaries: str | None, trc: str | None) -> dict[str, int] | None:
    """The colour properties to give an RGB frame of an HDR source (PQ or HLG) that the PNG encoder
    writes as a cICP chunk (and cHRM): RGB, full range, the source's primaries and transfer, which
    dove's RGB frames keep. None for SDR, whose untagged PNG viewers show as sRGB (a BT.709 cICP
    would ask them for the camera curve instead), or when this FFmpeg's encoder writes no cICP."""
    if trc not in HDR_TRANSFERS or not png_writes_cicp():
        return None
    return {"color_primaries": inverse(PRIMARIES).get(primaries or "", 2), "color_trc": inverse(TRC)[trc],
            "colorspace": 0, "color_range": 2}  # fmt: skip


@functools.cache
def png_writes_cicp() -> bool:
    """Whether this FFmpeg's PNG encoder writes a cICP chunk from a frame's colour properties (recent
    FFmpeg does, with a PyAV that can set them): tried on a 1x1 image."""
    try:
        frame = av.VideoFrame.from_ndarray(np.zeros((1, 1, 3), np.uint16), format="rgb48be")
        frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = 9, 16, 0, 2
        cc: Any = av.CodecContext.create("png", "w")
        cc.width, cc.height, cc.pix_fmt = 1, 1, "rgb48be"
        return b"cICP" in b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])
    except (av.FFmpegError, AttributeError, ValueError):
        return False


# Containers whose HDR video players expect as HEVC: phones, TVs and browsers play HDR as HEVC
# (or AV1, VP9), and few of them decode H.264 at 10 bits; TVs and UHD Blu-ray players take PQ in an
# MPEG-TS (.m2ts) as HEVC Main 10 only.
HDR_HEVC_CONTAINERS = ("mp4", "mov", "matroska", "mpegts")


def default_codec(path: str | Path, transfer: str | None = None) -> str:
    """The codec a video output gets when none is chosen: h264; HEVC for an HDR source (`transfer`
    PQ or HLG) in MP4, MOV, Matroska and MPEG-TS; VP9 (else AV1) for WebM, and AV1 for HDR in WebM where
    this FFmpeg's VP9 encoder writes 8 bits only (PQ at 8 bits bands badly)."""
    fmt = VIDEO_EXTENSIONS.get(Path(path).suffix.lower())
    if fmt == "webm":
        vp9_hdr = CODECS["vp9"].pix_fmt_hi in encoder_formats(CODECS["vp9"].encoder)
        if transfer in HDR_TRANSFERS and not vp9_hdr and has_encoder(CODECS["av1"].encoder):
            return "av1"
        return "vp9" if has_encoder(CODECS["vp9"].encoder) else "av1"
    if transfer in HDR_TRANSFERS and fmt in HDR_HEVC_CONTAINERS and has_encoder(CODECS["hevc"].encoder):
        return "hevc"
    return "h264"


def hdr_codec_note(source: str | Path, path: str | Path, transfer: str | None, pix_fmt: str) -> str | None:
    """The line that says an HDR source's output gets HEVC when no codec is chosen (not the
    container's usual default), or None when it gets that default."""
    if default_codec(path, transfer) == default_codec(path):
        return None
    codec = default_codec(path, transfer)
    if codec == "av1":
        return f"{Path(source).name}: HDR ({HDR_TRANSFERS[transfer or '']}) input: writing AV1 {pix_fmt} (this FFmpeg's VP9 writes 8 bits only; choose with --codec)"
    profile = {"yuv420p10le": "Main 10", "yuv420p": "Main"}.get(pix_fmt, pix_fmt)
    return f"{Path(source).name}: HDR ({HDR_TRANSFERS[transfer or '']}) input: writing HEVC {profile} (choose with --codec)"


# MP4/MOV sample entries: FFmpeg tags HEVC hev1 (parameter sets may also come in the stream), which
# Apple's players (QuickTime, iOS, Safari) refuse; hvc1 (all of them in the sample entry, where
# FFmpeg's encoders put them) plays everywhere. As `ffmpeg -tag:v hvc1`.
VIDEO_TAGS = {("mp4", "hevc"): "hvc1", ("mov", "hevc"): "hvc1"}


def resolve_codec(codec: str) -> tuple[str, CodecSpec]:
    name = CODEC_ALIASES.get(codec.lower(), codec.lower())
    if name not in CODECS:
        close = difflib.get_close_matches(codec.lower(), [*CODECS, *CODEC_ALIASES], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise OptionError(f"--codec {codec}: unknown codec ({hint}choose from {', '.join(CODECS)})")
    spec = CODECS[name]
    if not has_encoder(spec.encoder):
        raise OptionError(f"codec {name}: encoder {spec.encoder} is not in this FFmpeg build")
    if name in NVENC and (reason := nvenc_unusable(spec.encoder)):
        cpu = name.removesuffix("_nvenc")
        log.info("codec %s: %s", name, reason)  # FFmpeg's own words ("Operation not permitted"), for --verbose
        raise OptionError(f"codec {name} needs an NVIDIA GPU with NVENC and its driver, and none is usable here; "
                          f"use --codec {cpu} ({CODECS[cpu].encoder}, the CPU encoder)")  # fmt: skip
    return name, spec


@functools.cache
def nvenc_unusable(encoder: str) -> str | None:
    """Why an NVENC encoder cannot open here (PyAV's FFmpeg has it, but it needs the GPU's driver),
    or None when it opens."""
    cc: Any = av.CodecContext.create(encoder, "w")
    cc.width, cc.height, cc.pix_fmt = 256, 144, "yuv420p"
    cc.time_base, cc.framerate = Fraction(1, 25), Fraction(25)
    try:
        cc.open()
    except (av.FFmpegError, ValueError, OSError) as exc:
        return ffmsg(exc)
    return None


def choose_pix_fmt(
    spec: CodecSpec,
    name: str,
    requested: str | None,
    high: bool,
    width: int,
    height: int,
    *,
    source: str,
    warn: bool,
    path: str | Path,
    hdr: str | None = None,
) -> str:
    """The requested/default pixel format, switched to 4:4:4 when the size is odd (no padding).

    high: the source (pixel format `source`) has more than 8 bits or is HDR (`deep_output`); hdr: its
    HDR name (PQ, HLG) or None. A default that drops its bits or chroma detail is said, naming the
    output `path`, when `warn` (a writer opened again for the same output passes False), and so is
    8-bit HDR, asked for or not: it bands badly."""
    supported = set(spec.pix_fmts) or encoder_formats(spec.encoder)
    pf = requested or default_pix_fmt(spec, high, source, supported)
    try:
        fmt = av.VideoFormat(pf)
    except (ValueError, av.FFmpegError):
        close = difflib.get_close_matches(pf, sorted(supported), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise OptionError(f"--pix-fmt {pf}: unknown pixel format ({hint}{spec.encoder} writes "
                          f"{', '.join(sorted(supported))})") from None  # fmt: skip
    pf = fmt.name  # FFmpeg's native-endian aliases as it names them, as ffmpeg takes them: yuv420p10 -> yuv420p10le
    if warn and high and max(c.bits for c in fmt.components) <= 8 and (hdr or not requested):
        log.warning("%s: %s", path, depth_lost(spec, pf, hdr, supported))
    if supported and pf not in supported:
        raise OptionError(f"codec {name} cannot write pixel format {pf} (it supports {', '.join(sorted(supported))})")
    odd_w, odd_h = width % 2, height % 2
    sub_w, sub_h = fmt.chroma_width(2) < 2, fmt.chroma_height(2) < 2
    if (odd_w and sub_w) or (odd_h and sub_h):
        full = re.sub(r"yuv4[12]0p|yuv422p", "yuv444p", pf)
        if full == pf or (supported and full not in supported):
            raise OutputError(
                f"codec {name} with {pf} needs an even size, got {width}x{height}; "
                "choose another codec (e.g. h264, hevc, ffv1) or crop the input"
            )
        if warn:
            log.warning("%s: output size %dx%d is odd: writing %s instead of %s (4:2:0 needs even sizes)", path,
                        width, height, full, pf)  # fmt: skip
        pf = full
    if warn and not requested and (coarser := chroma_lost(source, pf, supported)):
        log.warning("%s: %s", path, coarser)
    if warn and not requested and (shallower := depth_capped(name, spec, source, pf, supported)):
        log.warning("%s: %s", path, shallower)
    return pf


def default_pix_fmt(spec: CodecSpec, high: bool, source: str, supported: set[str]) -> str:
    """What a codec writes unasked: its 8-bit or deeper format (`high`), at the `source`'s depth for
    a codec that keeps it (`keeps_depth`: ffv1 yuv444p12le for 12 bits); an RGB `source` with a
    lossless codec that holds RGB (`spec.rgb`: ffv1) stays RGB, in its own format where the encoder
    takes it (gbrp10le), else in the codec's (an 8-bit gbrp capture: bgr0; alpha is not kept)."""
    if spec.rgb and is_rgb(source):
        # the source's own format, unless it is float (an EXR's gbrpf32le, which dove's 16-bit frames
        # do not fill and ffv1 here cannot write) or has an alpha plane
        if source in supported and len(av.VideoFormat(source).components) == 3 and not FLOAT.search(source):
            return source
        return spec.rgb[1] if high else spec.rgb[0]
    if not (high and spec.pix_fmt_hi in supported):
        return spec.pix_fmt
    return deeper(spec.pix_fmt_hi, bits(source), supported) if spec.keeps_depth else spec.pix_fmt_hi


# What dove's frames carry between reader and writer: 16-bit RGB for any source deeper than 8 bits.
PIPELINE_BITS = 16
FLOAT = re.compile(r"f(16|32)(le|be)$")  # a floating-point pixel format (gbrpf32le, grayf16le)


def bits(pix_fmt: str) -> int:
    """The bits per channel of a pixel format (its deepest component's)."""
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def deeper(pf: str, depth: int, supported: set[str]) -> str:
    """`pf` (yuv444p10le) at the shallowest of 12, 14 and 16 bits that holds `depth` and the encoder
    takes (yuv444p12le for 12 bits), its deepest for more; `pf` itself where it holds `depth`."""
    if bits(pf) >= depth:
        return pf
    fits = [f for d in (12, 14, 16) if (f := re.sub(r"\d+le$", f"{d}le", pf)) in supported]
    return next((f for f in fits if bits(f) >= depth), fits[-1] if fits else pf)


def depth_capped(name: str, spec: CodecSpec, source: str, pf: str, supported: set[str]) -> str | None:
    """The warning for a source deeper than codec `name`'s format `pf` of more than 8 bits (a 12-bit
    master written at HEVC's Main 10), naming a --pix-fmt of `pf`'s layout that keeps the depth where
    the encoder takes one (not the default: few players decode it), and ffv1, which keeps it
    losslessly; None where nothing is lost (8-bit outputs: `depth_lost`)."""
    src, out = min(bits(source), PIPELINE_BITS), bits(pf)
    if out <= 8 or out >= src:
        return None
    ffv1 = "--codec ffv1 (.mkv) keeps them losslessly"
    if bits(keep := deeper(pf, src, supported)) > out:
        how = f"{name}'s default; --pix-fmt {keep} keeps {bits(keep)} bits (few players decode it), {ffv1}"
    else:
        how = f"the most this FFmpeg's {spec.encoder} writes; {ffv1}"
    return f"the source is {src}-bit but the output ({pf}) is {out}-bit, {how}"


def depth_lost(spec: CodecSpec, pf: str, hdr: str | None, supported: set[str]) -> str:
    """The warning for a source of more than 8 bits, or HDR of any depth, written in the 8-bit `pf`: for
    HDR, naming a --pix-fmt (or a codec) that keeps 10 bits."""
    if not hdr:
        return f"the source has more than 8 bits per channel but this FFmpeg's {spec.encoder} writes {pf}: the output is 8-bit"
    deep = spec.pix_fmt_hi if max(c.bits for c in av.VideoFormat(spec.pix_fmt_hi).components) > 8 else None
    if deep and (not supported or deep in supported):
        how = f"use --pix-fmt {deep}"
    else:
        how = f"this FFmpeg's {spec.encoder} writes 8 bits only: use --codec hevc (av1 for .webm)"
    return f"the source is HDR ({hdr}) but the output ({pf}) is 8-bit, where HDR bands badly; {how}"


# Chroma subsampling (horizontal, vertical factors) by its usual name and its name in pixel formats.
SUBSAMPLING = {(1, 1): ("4:4:4", "444"), (2, 1): ("4:2:2", "422"), (2, 2): ("4:2:0", "420"),
               (4, 1): ("4:1:1", "411"), (4, 4): ("4:1:0", "410")}  # fmt: skip


def is_rgb(pix_fmt: str) -> bool:
    """RGB pixels, or a palette of RGB colours (GIF, pixel art): colour at every pixel, and full
    range whatever a tag says (nothing is converted to read them)."""
    fmt = av.VideoFormat(pix_fmt)
    return fmt.is_rgb or fmt.has_palette


def subsampling(pix_fmt: str) -> tuple[int, int] | None:
    """How much coarser than luma a YUV format stores chroma (2, 2 for 4:2:0); None for RGB and grey."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or len(fmt.components) < 3:
        return None
    return 4 // fmt.chroma_width(4), 4 // fmt.chroma_height(4)


def chroma_lost(source: str, pf: str, supported: set[str]) -> str | None:
    """A warning when `pf` stores chroma coarser than the `source` did (4:4:4, 4:2:2 or RGB, such as
    a lossless screen capture or PNG images, written as 4:2:0), naming a --pix-fmt of the same depth
    that keeps it (for RGB also the codec that keeps it exactly); None when nothing is lost."""
    rgb = is_rgb(source)
    src, out = ((1, 1) if rgb else subsampling(source)), subsampling(pf)
    if src is None or out is None or (out[0] <= src[0] and out[1] <= src[1]):
        return None
    names = (SUBSAMPLING.get(src, ("finer", ""))[0], SUBSAMPLING.get(out, ("coarser", ""))[0])
    keep = [re.sub(r"^yuv4\d\dp", f"yuv{SUBSAMPLING[k][1]}p", pf) for k in (src, (1, 1)) if k in SUBSAMPLING]
    fits = [k for k in keep if k != pf and (not supported or k in supported)]
    if rgb:
        exactly = "--codec ffv1 (.mkv) to keep the RGB exactly"
        how = f"use --pix-fmt {fits[0]} to keep its colour resolution, or {exactly}" if fits else f"use {exactly}"
        return (
            f"the source is RGB ({source}), colour at every pixel, but the output's chroma is {names[1]} ({pf}): {how}"
        )
    how = f"use --pix-fmt {fits[0]} to keep it" if fits else "choose another codec (e.g. ffv1) to keep it"
    return f"the source's chroma is {names[0]} ({source}) but the output's is {names[1]} ({pf}): {how}"


PROBE_SIDE = 256  # a size every encoder writes: an encoder that opens at it, not at the output's, refuses the size


def _encoder_context(encoder: str, opts: dict[str, str], width: int, height: int, pix_fmt: str, rate: Fraction) -> Any:
    cc: Any = av.CodecContext.create(encoder, "w")
    cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
    cc.time_base, cc.framerate = 1 / rate, rate
    cc.options = dict(opts)
    return cc


@contextlib.contextmanager
def _held_stderr() -> Iterator[list[str]]:
    """What is written to stderr's file descriptor in this block, held back and put in the list when
    it ends (fd 2 restored). SVT-AV1 says why it refuses a size (`Svt[error]: Source Width must be less
    than or equal to 16384`) with fprintf from C: PyAV's logging never sees it and SVT_LOG is read once,
    at its first encoder. With -v (INFO) nothing is held: the text goes out as it comes."""
    if logging.getLogger("dove_cli").isEnabledFor(logging.INFO):
        yield []
        return
    held: list[str] = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a service started without one): nothing to hold
        yield held
        return
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            held.append(f.read().decode("utf-8", "replace"))


def _opens(cc: Any) -> bool:
    """Whether the encoder context `cc` opens."""
    try:
        cc.open()
    except (av.FFmpegError, ValueError):
        return False
    return True


def check_encoder_options(
    encoder: str,
    opts: dict[str, str],
    given: dict[str, Any],
    width: int,
    height: int,
    pix_fmt: str,
    fps: Fraction,
    asked: tuple[str, ...] = (),
) -> None:
    """Open the encoder once with the options, so that a typo is an error now, naming the option,
    rather than a write failure at the first frame (or an option silently ignored). `asked`: the
    flags the user gave that set it up (--crf, --preset, --pix-fmt), blamed where no --codec-option
    is; with none, the fault is dove's own choice, and said so."""
    rate = Fraction(fps) if fps and fps > 0 else Fraction(25)
    cc = _encoder_context(encoder, opts, width, height, pix_fmt, rate)
    shown = " ".join(f"{k}={v}" for k, v in given.items() if k not in ("threads", "thread_type"))  # not dove's
    error: av.FFmpegError | ValueError | None = None
    with _held_stderr() as said:  # (the encoder's own words, put back below unless the size is at fault)
        try:
            cc.open()
        except (av.FFmpegError, ValueError) as exc:
            error = exc
    size_at_fault = (
        error is not None
        and max(width, height) > PROBE_SIDE
        and _opens(_encoder_context(encoder, opts, PROBE_SIDE, PROBE_SIDE, pix_fmt, rate))
    )
    if text := "".join(said):
        if size_at_fault:  # dove's line says it: the encoder's own lines only with -v
            log.info("%s at %dx%d: %s", encoder, width, height, text.rstrip())
        else:
            sys.stderr.write(text)
            sys.stderr.flush()
    if error is not None:
        if size_at_fault:
            raise OutputError(f"{encoder} cannot write a picture of {width}x{height} ({ffmsg(error)}), where it writes "
                              f"{pix_fmt} at {PROBE_SIDE}x{PROBE_SIDE} with the same settings: the size is at fault; make "
                              "it smaller (a lower --scale, or --size), or write images (.png)") from None  # fmt: skip
        if not shown and asked:  # only dove's thread settings: the codec's own settings (--crf, --preset) are at fault
            raise OptionError(f"{encoder} refused {'/'.join(asked)} ({ffmsg(error)})") from None
        if not shown:
            raise OutputError(f"{encoder} cannot write what dove chose for this output, {pix_fmt} at {width}x{height} "
                              f"({ffmsg(error)}); no option given is at fault: choose a format with --pix-fmt") from None  # fmt: skip
        raise OptionError(f"--codec-option {shown}: {encoder} refused them ({ffmsg(error)})") from None
    unknown = sorted(set(cc.options) & set(map(str, given)))
    if "movflags" in unknown:  # ffmpeg's -movflags is the MP4/MOV muxer's, which dove sets itself
        raise OptionError(f"--codec-option movflags: a muxer option, not {encoder}'s; .mp4 and .mov outputs "
                          "are written with their index first (+faststart) already")  # fmt: skip
    owners = {key: enc for enc, key in PARAM_LISTS.items() if key in unknown}  # another encoder's own list
    if owners:
        key, owner = next(iter(owners.items()))
        codec = next(name for name, spec in CODECS.items() if spec.encoder == owner)
        raise OptionError(f"--codec-option {key}: {owner}'s, not {encoder}'s: add --codec {codec}")
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


def signal_range(encoder: str, opts: dict[str, str], tags: dict[str, int]) -> dict[str, str]:
    """Encoder options that make the bitstream carry the colour range `tags` give.

    x264 writes the range only with a colour description or a video format (encoder/set.c): limited
    range with primaries, transfer and matrix unspecified left MP4, MOV and MPEG-TS outputs without
    it (Matroska tags it in the container). Naming a video format ("component", which players
    ignore) makes x264 write it. The user's own x264-params come after, so they win.
    """
    undescribed = all(tags[k] == 2 for k in ("color_primaries", "color_trc", "colorspace"))
    if encoder != "libx264" or tags["color_range"] != 1 or not undescribed:
        return opts
    params = ":".join(p for p in ("videoformat=component", opts.get("x264-params")) if p)
    return {**opts, "x264-params": params}


# prores: prores_ks's fixed quantiser (ffmpeg's -q:v), 1 to 64 (encode_init); 0 would mean "none".
CRF_RANGE = {"h264": (0, 51), "hevc": (0, 51), "av1": (0, 63), "vp9": (0, 63), "h264_nvenc": (0, 51),
             "hevc_nvenc": (0, 51), "prores": (1, 64)}  # fmt: skip
FF_QP2LAMBDA = 118  # libavutil/avutil.h: a quantiser in the encoder's global_quality units
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")  # fmt: skip


VP9_DEADLINES = ("good", "best", "realtime")  # libvpx's deadline; a number is its cpu-used (speed)


def _whole_in(text: str, lo: int, hi: int) -> bool:
    """`text` is a whole number from `lo` to `hi` (an encoder's numbered presets)."""
    return text.lstrip("-").isdigit() and lo <= int(text) <= hi


# Codecs whose encoder ignores a bitrate (--codec-option b=) while a CRF is set: one or the other.
BITRATE_OR_CRF = ("h264", "hevc", "av1")


# The encoders' lists of their own settings (ffmpeg's -x265-params a=1:b=2), where dove has some.
PARAM_LISTS = {"libx265": "x265-params", "libx264": "x264-params", "libsvtav1": "svtav1-params"}


def encoder_options(
    name: str,
    spec: CodecSpec,
    crf: int | float | None,
    preset: str | None,
    extra: dict[str, Any] | None,
    params: tuple[str, ...] = (),
) -> dict[str, str]:
    """The encoder's options: --crf and --preset as the encoder names them, dove's own, then the user's
    --codec-option. `params`: dove's key=value settings for the encoder's own list (`PARAM_LISTS`: the
    input's HDR10 metadata), to which dove adds its own (x265's log level, x264's instruction sets); a
    user's list is added after them, not put in their place, and the encoder takes the last value of a key
    given twice, so the user's win."""  # fmt: skip
    opts: dict[str, str] = {}
    if crf is not None and name in CRF_RANGE and not CRF_RANGE[name][0] <= crf <= CRF_RANGE[name][1]:
        lo, hi = CRF_RANGE[name]
        raise OptionError(f"--crf {crf} is out of range for {name} ({lo} to {hi}; lower is better)")
    if preset is not None and spec.encoder in ("libx264", "libx265") and preset not in X26X_PRESETS:
        raise OptionError(f"--preset {preset} is not an {name} preset ({', '.join(X26X_PRESETS)})")
    if name == "av1" and preset is not None and not _whole_in(str(preset), -2, 13):
        raise OptionError(f"--preset {preset} is not an av1 preset (0, the slowest, to 13, the fastest; default 8)")
    if name == "vp9" and preset is not None and preset not in VP9_DEADLINES and not _whole_in(str(preset), -8, 8):
        raise OptionError(
            f"--preset {preset} is not a vp9 preset ({', '.join(VP9_DEADLINES)}, or a speed from -8 to 8)"
        )
    if name == "prores" and preset is not None and preset not in PRORES_PROFILES:
        raise OptionError(f"--preset {preset} is not a prores profile ({', '.join(PRORES_PROFILES)})")
    if name == "prores" and "profile" in (extra or {}):  # the pixel format follows --preset (profile_spec)
        raise OptionError(f"--codec-option profile: give the prores profile as --preset ({', '.join(PRORES_PROFILES)})")
    extra = {str(k): str(v) for k, v in (extra or {}).items()}
    # the encoder's own names for what --crf and --preset set: given both ways, one would silently win
    flags = {"crf": ("--crf", crf), "preset": ("--preset", preset)}
    flags |= {"cpu-used": ("--preset", preset), "deadline": ("--preset", preset)} if name == "vp9" else {}
    flags |= {"global_quality": ("--crf", crf)} if name == "prores" else {"cq": ("--crf", crf)} if name in NVENC else {}
    if said := [f"{flag} {value} and --codec-option {k}={extra[k]}" for k, (flag, value) in flags.items()
                if k in extra and value is not None]:  # fmt: skip
        raise OptionError(f"{said[0]} both set the same thing; give one")
    if "b" in extra and name in BITRATE_OR_CRF:  # the encoder keeps the CRF and drops a bitrate: one of them
        if crf is not None:
            raise OptionError(f"--codec-option b={extra['b']} and --crf {crf}: {name} encodes at a bitrate or at a "
                              "quality, not both; drop one (--codec-option maxrate=..,bufsize=.. caps a --crf's rate)")  # fmt: skip
        crf = None  # a bitrate mode: no CRF of dove's to override it
    else:
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
    elif name in NVENC:
        opts.update(rc="vbr", b="0", cq=str(crf))  # constant quality, no bitrate cap
        if preset is not None:
            opts["preset"] = str(preset)
    elif name == "prores":
        if preset is not None:
            opts["profile"] = str(preset)
        if crf is not None:  # a fixed quantiser instead of the profile's data rate
            opts["global_quality"] = str(round(crf) * FF_QP2LAMBDA)
    if name == "ffv1":
        opts.setdefault("level", "3")
        opts.setdefault("slicecrc", "1")
    opts.update(extra)
    own = {"libx265": ["log-level=error"], "libx264": list(x264_options().values())}.get(spec.encoder, [])
    if key := PARAM_LISTS.get(spec.encoder):
        if listed := ":".join([*own, *params, *([opts[key]] if opts.get(key) else [])]):
            opts[key] = listed
    return opts


# Pairs FFmpeg muxes that MP4 has no standard mapping for: FFmpeg-based players (mpv, VLC) play
# them, others (QuickTime, browsers, TVs) do not; said once before the run (`output_notes`).
FFMPEG_ONLY = {("mp4", "ffv1"): ".mkv", ("mp4", "png"): ".mov"}


def output_notes(path: str | Path, codec: str | None, crf: float | None, preset: str | None) -> list[str]:
    """Warnings for a run's output, said once before it: settings a lossless codec ignores, and a
    container only FFmpeg-based players play with this codec (ffv1 or png in .mp4)."""
    fmt = VIDEO_EXTENSIONS.get(Path(path).suffix.lower())
    name = CODEC_ALIASES.get((codec or "").lower(), (codec or "").lower())
    notes = []
    if name in ("ffv1", "png") and (crf is not None or preset is not None):
        notes.append(f"{path}: codec {name} is lossless; --crf/--preset ignored")
    if usual := FFMPEG_ONLY.get((fmt or "", name)):
        notes.append(f"{path}: {name} in {Path(path).suffix} plays only in FFmpeg-based players (mpv, VLC); "
                     f"{usual} is its usual container")  # fmt: skip
    return notes


# MPEG-TS muxes any audio or subtitle codec, but stores those it has no stream type for (FLAC, PCM,
# text subtitles: libavformat/mpegtsenc.c) as private data streams that no player reads. An .m2ts is
# written in the muxer's m2ts mode (which it takes for a file so named: Blu-ray's 192-byte packets and
# stream numbers), which gives Blu-ray's PGS subtitles and LPCM their stream types (a .ts or .mts stores
# them as data) and refuses DVB subtitles ("Cannot automatically assign PID"). Each checked by a round trip.
_TS_HELD = frozenset({"mp2", "mp3", "aac", "aac_latm", "ac3", "eac3", "dts", "truehd", "opus", "s302m",
                      "dvb_subtitle", "dvb_teletext"})  # fmt: skip
AUX_CODECS_HELD = {
    ".ts": _TS_HELD,
    ".mts": _TS_HELD,
    ".m2ts": (_TS_HELD - {"dvb_subtitle", "dvb_teletext"}) | {"hdmv_pgs_subtitle", "pcm_bluray"},
}
# Disc LPCM (Blu-ray's, DVD's), which few containers hold: where the output's cannot, it is converted
# losslessly (`lossless_target`) rather than refused, which left only a lossy --audio transcode.
DISC_PCM = frozenset({"pcm_bluray", "pcm_dvd"})

# The stream flags (FFmpeg's dispositions) `dove info` names, and those each container keeps, found by
# writing each flag on an audio and a subtitle stream and reading it back (tests/test_bluray.py does):
# the input's flags that the output's container drops are said before the run. By container and kind of
# stream, or codec where it differs (MPEG-TS marks DVB subtitles for the hard of hearing; PGS: nothing).
FLAGS = ("default", "forced", "comment", "hearing_impaired", "visual_impaired", "original", "dub", "captions",
         "descriptions")  # fmt: skip
_MATROSKA_FLAGS = frozenset(FLAGS) - {"captions", "descriptions"}  # (FlagTextDescriptions: subtitles only)
_MP4_FLAGS = frozenset(FLAGS) - {"original"}
KEPT_FLAGS = {
    ("matroska", "audio"): _MATROSKA_FLAGS,
    ("matroska", "subtitle"): _MATROSKA_FLAGS | {"descriptions"},
    ("webm", "audio"): frozenset({"default", "forced"}),
    # (WebVTT's kinds, in its codec ID)
    ("webm", "subtitle"): frozenset({"default", "forced", "captions", "descriptions"}),
    ("mp4", "audio"): _MP4_FLAGS,
    ("mp4", "subtitle"): _MP4_FLAGS,
    ("mov", "audio"): frozenset({"default"}),
    ("mov", "subtitle"): frozenset({"default"}),
    ("mpegts", "audio"): frozenset({"hearing_impaired", "visual_impaired"}),
    ("mpegts", "subtitle"): frozenset(),
    ("mpegts", "dvb_subtitle"): frozenset({"hearing_impaired"}),
    ("nut", "audio"): frozenset({"default", "dub", "original", "comment"}),
    ("nut", "subtitle"): frozenset({"default", "dub", "original", "comment"}),
}


def stream_flags(stream: Any) -> list[str]:
    """The flags (`FLAGS`) of an audio or subtitle stream, in that order."""
    return [f for f in FLAGS if stream.disposition & getattr(av.stream.Disposition, f)]


def lost_flags(fmt_name: str, stream: Any) -> list[str]:
    """The flags of `stream` that files of `fmt_name` do not keep (`KEPT_FLAGS`)."""
    canonical = stream.codec_context.codec.canonical_name
    kept = KEPT_FLAGS.get((fmt_name, canonical), KEPT_FLAGS.get((fmt_name, stream.type), frozenset(FLAGS)))
    return [f for f in stream_flags(stream) if f not in kept]


# Audio that FFmpeg muxes into a container but that the usual players of its files do not play
# (Apple's, browsers'): copied, with a warning naming the containers that play it. PCM (OBS's
# lossless recordings) goes into .mp4 as ISO/IEC 23003-5's ipcm/fpcm entries, which FFmpeg-based
# players read and browsers do not; .mov stores it as QuickTime's own sowt, twos, in24 or fl32,
# which Apple's players and editors play: not said. MOV refuses Vorbis and Opus.
FEW_PLAY = {("mp4", "vorbis"): ".mkv plays it", ("mp4", "pcm"): ".mov and .mkv play it"}


# Containers that store a PCM track's channel count and no layout: FFmpeg reads back "6 channels"
# for 5.1(side), "1 channels" for a mono track labelled FL (FLAC, AAC, AC-3 and Opus carry theirs in
# the codec's own data). .mov keeps PCM layouts.
PCM_COUNT_ONLY = frozenset({"matroska", "nut"})


def layout_lost(fmt_name: str, codec: str, layout: Any) -> bool:
    """Whether a `codec` (canonical name) audio track of channel `layout` comes back from a
    `fmt_name` file without it: PCM in `PCM_COUNT_ONLY`, where the layout is not its channel count's
    default (players take 6 channels as 5.1, 1 as mono: those are not lost)."""
    if fmt_name not in PCM_COUNT_ONLY or not codec.startswith("pcm_") or re.fullmatch(r"\d+ channels", layout.name):
        return False  # (a layout in no named order, "1 channels": nothing to lose)
    return layout.name != av.AudioLayout(f"{layout.nb_channels}c").name


def layout_name(layout: Any) -> str:
    """A channel layout as FFmpeg names it ("5.1(side)"), or its channels where it has no name ("FL",
    where FFmpeg says "1 channels (FL)"; "1 channel" where it says "1 channels", count only)."""
    unnamed = re.fullmatch(r"\d+ channels \((.+)\)", layout.name)
    if unnamed:
        return unnamed.group(1)
    return "1 channel" if layout.name == "1 channels" else layout.name


def few_play(fmt_name: str, codec: str) -> str | None:
    """Which containers play audio `codec` (its canonical name), where few players of `fmt_name`
    files do (FEW_PLAY); else None."""
    return FEW_PLAY.get((fmt_name, "pcm" if codec.startswith("pcm_") else codec))


def copy_stream(out: Any, stream: Any) -> Any:
    """An output stream of container `out` for a packet copy of the input's `stream`. Audio whose
    channels are in no named order (PCM from .mkv or .nut: "6 channels") gets its count's default
    layout (5.1), as ffmpeg's -c copy guesses it: the MP4 muxer writes a PCM track's layout and
    refuses to close without one ("unsupported channel layout"), after the whole run."""
    ostream = out.add_stream_from_template(stream)
    layout = stream.codec_context.layout if stream.type == "audio" else None
    if layout is not None and re.fullmatch(r"\d+ channels", layout.name):
        with contextlib.suppress(ValueError):  # (9 channels have no default: left unnamed)
            ostream.codec_context.layout = av.AudioLayout(f"{layout.nb_channels}c")
    return ostream


def copy_refused(fmt_name: str, stream: Any, packet: av.Packet) -> str | None:
    """Why a `fmt_name` muxer refuses a packet copy of `stream`, or None: `packet` (one of its
    own) is muxed into a file in memory, which is then closed. Some refusals come only there, at the
    end of a run: MP4 refuses an E-AC-3 stream that a .nut calls AC-3 as it writes its index."""
    out = av.open(io.BytesIO(), "w", format=fmt_name)
    try:
        ostream = copy_stream(out, stream)
        trial = av.Packet(bytes(packet))  # (a muxer takes the packet it is given: `packet` stays whole)
        trial.time_base, trial.duration = packet.time_base, packet.duration
        trial.pts, trial.dts = (packet.pts or 0) - (packet.dts or 0), 0
        trial.stream = ostream
        out.mux(trial)
        out.close()
        return None
    except (av.FFmpegError, ValueError) as exc:
        logged = getattr(exc, "log", None)  # (level, muxer, FFmpeg's own line): says more than "Invalid argument"
        return logged[2].strip() if logged and logged[2].strip() else ffmsg(exc)


def holds_aux(ext: str, stream: Any) -> bool:
    """Whether files named `.ext` hold a packet copy of the input's audio or subtitle `stream`."""
    held = AUX_CODECS_HELD.get(ext)
    if held is not None and stream.codec_context.codec.canonical_name not in held:
        return False
    # Always tried (it is cheap for a copy): MOV lists Opus and refuses it as it starts ("only in MP4").
    return container_accepts(VIDEO_EXTENSIONS[ext], "", lambda c: copy_stream(c, stream))


def lossless_target(ext: str, stream: Any) -> tuple[str, str] | None:
    """The encoder and sample format that keep disc LPCM (`DISC_PCM`) `stream` bit for bit in files
    named `.ext`: PCM of its depth (16 bits, or 24 for the 20 and 24 that decode as s32), else FLAC,
    else ALAC, the first the container holds and its usual players play (`few_play`: not PCM in
    .mp4, which takes FLAC); None for other streams, and where none fits (.ts, .webm)."""
    cc = stream.codec_context
    if cc.codec.canonical_name not in DISC_PCM:
        return None
    deep = cc.format.bytes > 2
    fmt_name, held = VIDEO_EXTENSIONS[ext], AUX_CODECS_HELD.get(ext)
    for encoder in ("pcm_s24le" if deep else "pcm_s16le", "flac", "alac"):
        canonical = av.Codec(encoder, "w").canonical_name
        if (held is not None and canonical not in held) or few_play(fmt_name, canonical):
            continue
        layout, rate = cc.layout.name, cc.sample_rate or 48000
        if container_accepts(fmt_name, encoder, lambda c: c.add_stream(encoder, rate=rate, layout=layout)):  # noqa: B023
            planar = "p" if encoder == "alac" else ""  # (ALAC takes planar samples only)
            return encoder, ("s32" if deep else "s16") + planar
    return None


# Containers whose muxer starts for more video codecs than the file then holds (each pair checked by
# writing 30 frames and decoding them back): MPEG-TS stores the others as data streams that nothing
# decodes, and MOV fails at the first AV1, VP9 or FFV1 packet, after the whole run.
VIDEO_CODECS_HELD = {"mpegts": {"h264", "hevc"}, "mov": {"h264", "hevc", "prores", "png"}}


# Where a folder run puts an output whose input's container cannot hold its codec, or that dove only reads
# (.avi, .mxf): ProRes in a QuickTime .mov, as editing software takes it; the rest in .mkv, which holds them all.
CODEC_HOMES = {"prores": ".mov"}


def codec_home(codec: str | None) -> str:
    """The extension of the container a folder run gives --codec `codec`'s outputs where their own cannot hold it."""
    return CODEC_HOMES.get(CODEC_ALIASES.get((codec or "").lower(), (codec or "").lower()), ".mkv")


@functools.cache
def extension_holds(ext: str, codec: str) -> bool:
    """Whether an output named *`ext` holds --codec `codec`'s video: a folder run names an output after
    its input, whose container may not (ProRes or FFV1 in an .mp4). True where it cannot be known here
    (an encoder this FFmpeg lacks: the run says that)."""
    spec = CODECS.get(CODEC_ALIASES.get(codec.lower(), codec.lower()))
    if spec is None or not has_encoder(spec.encoder):
        return True

    def add(c: Any) -> None:
        s = c.add_stream(spec.encoder, rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, spec.pix_fmt

    return holds_video(VIDEO_EXTENSIONS[ext.lower()], av.Codec(spec.encoder, "w").canonical_name, add)


def holds_video(fmt_name: str, codec: str, add: Any) -> bool:
    """Whether files of `fmt_name` hold video of `codec` (its canonical name: h264, not libx264)."""
    return _holds(VIDEO_CODECS_HELD, fmt_name, codec, codec, add)


def _holds(held_by: dict[str, set[str]], fmt_name: str, canonical: str, codec: str, add: Any) -> bool:
    """A muxer's own list of what it holds (`held_by`, where it starts for more), then `container_accepts`."""
    held = held_by.get(fmt_name)
    return (held is None or canonical in held) and container_accepts(fmt_name, codec, add)


def container_accepts(fmt_name: str, codec: str, add: Any) -> bool:
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


def side_data(frame: Any) -> Any:
    """A frame's side data, or none where PyAV cannot name one of its kinds: FFmpeg 8 gives an image's
    EXIF as a kind (31) that PyAV 18 predates, and PyAV then refuses to list any (a PNG's eXIf, a
    camera's MJPEG)."""
    try:
        return frame.side_data
    except ValueError:
        return {}
