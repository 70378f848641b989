"""Tiny test clips made with the ffmpeg binary that imageio-ffmpeg ships, and ffmpeg-only checks.

Everything here uses the ffmpeg executable, never PyAV, so that tests of `dove_cli.video_io`
check its output with an independent tool.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
DIE_AFTER = Path(__file__).with_name("die_after.py")  # `python DIE_AFTER N upscale ...`: killed after N frames

SRT = """1
00:00:00,000 --> 00:00:00,400
Hello

2
00:00:00,400 --> 00:00:00,900
World
"""

FFMETADATA = """;FFMETADATA1
title=My clip
comment=made for dove tests
[CHAPTER]
TIMEBASE=1/1000
START=0
END=200
title=Intro
[CHAPTER]
TIMEBASE=1/1000
START=200
END=400
title=Main part
"""


def ffmpeg(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ffmpeg quietly; raise with its stderr when it fails."""
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-y", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc


def _testsrc(size: str, rate: str) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]


def make_clip(
    path: Path,
    *,
    size: str = "64x48",  # odd sizes are made by scaling, as testsrc2 rounds them
    rate: str = "30000/1001",
    frames: int = 12,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    audio: bool = False,
    subtitles: bool = False,
    chapters: bool = False,
    vf: str = "",
    extra: tuple[str, ...] = (),
) -> Path:
    """A short test pattern clip; optionally with a sine AAC track, an SRT/mov_text subtitle and
    chapters plus a container title (from an ffmetadata file)."""
    args: list[str] = _testsrc(size, rate)
    n_in = 1
    meta_in = None
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.5"]
        n_in += 1
    if subtitles:
        srt = path.with_suffix(".srt")
        srt.write_text(SRT)
        args += ["-i", str(srt)]
    if chapters:
        meta = path.with_suffix(".ffmeta")
        meta.write_text(FFMETADATA)
        meta_in = n_in + (1 if subtitles else 0)
        args += ["-i", str(meta)]
    args += ["-map", "0:v"]
    if meta_in is not None:
        args += ["-map_metadata", str(meta_in), "-map_chapters", str(meta_in)]
    if audio:
        args += [
            "-map",
            "1:a",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-metadata:s:a:0",
            "language=fra",
            "-metadata:s:a:0",
            "title=French sine",
        ]
    if subtitles:
        sub_codec = "mov_text" if path.suffix in (".mp4", ".mov") else "srt"
        args += ["-map", f"{n_in}:s", "-c:s", sub_codec, "-metadata:s:s:0", "language=eng"]
    args += [
        "-frames:v",
        str(frames),
        "-vf",
        f"scale={size.replace('x', ':')}{',' + vf if vf else ''}",
        "-c:v",
        codec,
        "-pix_fmt",
        pix_fmt,
    ]
    if codec == "libx264":
        args += ["-preset", "ultrafast", "-g", "6"]
    args += [*extra, str(path)]
    ffmpeg(*args)
    return path


def make_sup(path: Path, width: int = 64, height: int = 48) -> Path:
    """A PGS (Blu-ray) subtitle file, which ffmpeg cannot encode: a 16x8 box of one colour shown at
    (8, 8) from 0.1 s, cleared at 0.3 s. Segments as the Blu-ray spec lays them out: a presentation
    composition, a window, a palette, the object (run-length coded: a run of colour 1 and an end of
    line a row), each display set closed by an end segment; times at 90 kHz."""

    def seg(kind: int, pts: int, data: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data

    w, h, show, clear = 16, 8, 9000, 27000
    pcs = struct.pack(">HHBHBBBB", width, height, 0x10, 0, 0x80, 0, 0, 1) + struct.pack(">HBBHH", 0, 0, 0, 8, 8)
    rle = bytes([0, 0x80 | w, 1, 0, 0]) * h
    ods = struct.pack(">HBB", 0, 0, 0xC0) + struct.pack(">I", len(rle) + 4)[1:] + struct.pack(">HH", w, h) + rle
    path.write_bytes(
        seg(0x16, show, pcs) + seg(0x17, show, struct.pack(">BBHHHH", 1, 0, 8, 8, w, h))
        + seg(0x14, show, bytes([0, 0, 1, 235, 128, 128, 255])) + seg(0x15, show, ods) + seg(0x80, show, b"")
        + seg(0x16, clear, struct.pack(">HHBHBBBB", width, height, 0x10, 1, 0, 0, 0, 0))
        + seg(0x17, clear, struct.pack(">BBHHHH", 1, 0, 0, 0, 1, 1)) + seg(0x80, clear, b"")
    )  # fmt: skip
    return path


def ordered_copy(src: Path, dst: Path) -> Path:
    """`src`, a Matroska file with chapters that FFmpeg wrote with `-write_crc32 0`, with its edition made
    ordered: its EditionFlagDefault element (ID 45 DB, 1 byte: 1) made EditionFlagOrdered (45 DD), as the
    anime trial made one (FFmpeg writes no such flag; mkvtoolnix is not here)."""
    data = src.read_bytes()
    assert data.count(b"\x45\xdb\x81\x01") == 1, src
    dst.write_bytes(data.replace(b"\x45\xdb\x81\x01", b"\x45\xdd\x81\x01"))
    return dst


def make_vfr_clip(path: Path, frames: int = 12) -> Path:
    """Variable frame rate: frame i at pts i*(i+1)/2 ms-ish ticks (irregular gaps), time base 1/1000."""
    expr = "(N*(N+1)/2+N*20)/1000/TB"
    ffmpeg(
        *_testsrc("64x48", "25"),
        "-frames:v",
        str(frames),
        "-vf",
        f"setpts='{expr}'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-video_track_timescale",
        "1000",
        str(path),
    )
    return path


def make_held_mkv(path: Path) -> Path:
    """A screen recording's variable rate in Matroska: 30 fps frames in bursts of 3, each held 0.6 s
    (0.5 s before the last burst), as ffmpeg's select with -fps_mode vfr drops the frames between."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-t", "2", "-vf", "select='lt(mod(n,20),3)+gte(n,57)'",
           "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", path)  # fmt: skip
    return path


# FFmpeg's docs' inverse telecine (fieldmatch's "advanced IVTC" example), as dove's --deinterlace ivtc runs it
IVTC = "fieldmatch=combmatch=full,yadif=mode=send_frame:parity=auto:deint=interlaced,decimate"


def make_telecined(path: Path, frames: int = 48, *, video: int = 0, audio: bool = False, size: str = "160x120") -> Path:
    """NTSC film as a DVD stores it (hard telecine): testsrc2 at 23.976 frames/s, every frame
    distinct, through 3:2 pulldown to `frames` interlaced frames at 29.97 (top field first). The
    last `video` of them are true 59.94 fields/s video (a fast scroll), whose combing fieldmatch
    cannot match, so yadif gets it. MPEG-2 with MP2 audio in MPEG-PS as on a DVD (.mpg), else H.264
    with AAC (.mp4 counts its frames)."""
    film = frames - video
    graph = f"[0:v]telecine=pattern=23,trim=end_frame={film},setpts=PTS-STARTPTS[f];"
    if video:
        graph += (f"[1:v]scroll=h=0.03,tinterlace=mode=interleave_top,trim=end_frame={video},setpts=PTS-STARTPTS[v];"
                  "[f][v]concat=n=2:v=1")  # fmt: skip
    else:
        graph += "[f]null"
    graph += ",setpts=N/(30000/1001)/TB,setfield=tff[out]"
    args: list[str | Path] = [*_testsrc(size, "24000/1001"), *_testsrc(size, "60000/1001")]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={frames * 1001 / 30000}"]
    args += ["-filter_complex", graph, "-map", "[out]", *(["-map", "2:a"] if audio else [])]
    if path.suffix == ".mpg":
        args += ["-c:v", "mpeg2video", "-q:v", "2", "-flags", "+ilme+ildct", "-c:a", "mp2", "-f", "vob"]
    else:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ilme+ildct", "-x264-params", "tff=1",
                 "-c:a", "aac"]  # fmt: skip
    ffmpeg(*args, path)
    return path


def ffmpeg_ivtc(path: Path, out: Path, *, start_pts: int | None = None, vf: str = IVTC) -> list[Fraction]:
    """`ffmpeg -copyts -i path -vf IVTC` into `out` (.nut, raw video: the filters' frames exactly),
    from the first frame at `start_pts` or after (trim: what `-ss` does once its seek lands, which in
    MPEG-PS it can do late); the frame times in seconds."""
    trim = f"trim=start_pts={start_pts}," if start_pts is not None else ""
    ffmpeg("-copyts", "-i", path, "-map", "0:v", "-vf", trim + vf, "-fps_mode", "passthrough", "-enc_time_base",
           "filter", "-c:v", "rawvideo", out)  # fmt: skip
    return frame_times(out)


# ---------------------------------------------------------------- checks with ffmpeg only


@dataclass
class StreamLine:
    index: int
    kind: str  # Video / Audio / Subtitle / Data
    codec: str
    text: str
    language: str | None = None


@dataclass
class FfInfo:
    streams: list[StreamLine] = field(default_factory=list)
    stderr: str = ""
    title: str | None = None

    def kinds(self) -> list[str]:
        return [s.kind for s in self.streams]

    def video(self) -> StreamLine:
        return next(s for s in self.streams if s.kind == "Video")


def ffinfo(path: Path) -> FfInfo:
    """Parse `ffmpeg -i path` stderr: one entry per stream, with codec and language."""
    err = ffmpeg("-i", path, check=False).stderr
    info = FfInfo(stderr=err)
    for m in re.finditer(r"Stream #0:(\d+)(?:\[\w+\])?(?:\((\w+)\))?: (\w+): (\w+)(.*)", err):
        info.streams.append(StreamLine(int(m[1]), m[3], m[4], m[0], m[2]))
    return info


def top_boxes(path: Path) -> list[str]:
    """The top-level boxes (atoms) of an MP4/MOV file, in file order: ftyp, moov, free, mdat..."""
    names = []
    with open(path, "rb") as f:
        while len(head := f.read(8)) == 8:
            size, name = int.from_bytes(head[:4], "big"), head[4:].decode("latin-1")
            names.append(name)
            if size == 0:  # to the end of the file
                break
            if size == 1:  # a 64-bit size follows
                size = int.from_bytes(f.read(8), "big") - 8
            f.seek(size - 8, 1)
    return names


def frame_pts(path: Path, stream: str = "0:v:0") -> tuple[list[int], Fraction]:
    """Presentation timestamps of every video frame and the time base, from `-f framemd5`."""
    out = ffmpeg("-copyts", "-i", path, "-map", stream, "-c", "copy", "-f", "framemd5", "-").stdout
    tb = Fraction(re.search(r"#tb \d+: (\d+/\d+)", out)[1])
    pts = [int(line.split(",")[2]) for line in out.splitlines() if line and not line.startswith("#")]
    return sorted(pts), tb


def frame_times(path: Path) -> list[Fraction]:
    """Frame presentation times in seconds (exact fractions), sorted."""
    pts, tb = frame_pts(path)
    return [p * tb for p in pts]


def decoded_frame_count(path: Path) -> int:
    out = ffmpeg("-i", path, "-map", "0:v:0", "-f", "framemd5", "-", check=True).stdout
    return sum(1 for line in out.splitlines() if line and not line.startswith("#"))


def packet_md5(path: Path, stream: str) -> str:
    """MD5 of all packets of one stream, copied without re-encoding."""
    out = ffmpeg("-i", path, "-map", stream, "-c", "copy", "-f", "md5", "-").stdout
    return out.strip()


def raw_rgb(path: Path, pix_fmt: str = "rgb24", extra: tuple[str, ...] = ()) -> bytes:
    """All frames decoded by ffmpeg to packed RGB, bytes."""
    proc = subprocess.run(
        [
            FFMPEG,
            "-hide_banner",
            "-nostdin",
            "-i",
            str(path),
            *extra,
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-",
        ],
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode()[-2000:])
    return proc.stdout


def psnr(a, b, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two arrays of the same shape."""
    import numpy as np

    err = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(peak**2 / err))


def ffmpeg_frames(path: Path, width: int, height: int, *, deep: bool = False, extra: tuple[str, ...] = ()):
    """All frames as ffmpeg decodes them: [N, H, W, 3] uint8, or uint16 (rgb48le) when deep."""
    import numpy as np

    dtype = np.dtype("<u2") if deep else np.uint8
    data = raw_rgb(path, "rgb48le" if deep else "rgb24", extra)
    return np.frombuffer(data, dtype).reshape(-1, height, width, 3)


def showinfo(path: Path) -> list[str]:
    """One `showinfo` line per decoded frame (pts, type, colour...)."""
    err = ffmpeg("-i", path, "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-").stderr
    return [line for line in err.splitlines() if "Parsed_showinfo" in line and " n:" in line]


def make_ts(path: Path, seconds: float, *, offset: float | None = None) -> Path:
    """An MPEG-TS recording as a capture card or ffmpeg writes it: 64x36 at 25 fps, H.264 and AAC
    (48 kHz) for `seconds`, starting 1.4 s in (the muxer's delay), or at `offset` + 1.4 s
    (-output_ts_offset: 95442 crosses the 33-bit clock's wrap, which FFmpeg reads as a negative start)."""
    args = [*_testsrc("64x36", "25"), "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-g", "25", "-c:a", "aac", "-b:a", "64k"]
    if offset is not None:
        args += ["-output_ts_offset", str(offset)]
    ffmpeg(*args, "-f", "mpegts", path)
    return path


def make_broadcast(path: Path, *, audio_shift: int = 0, video_bsf: str | None = None) -> Path:
    """A broadcast recording as an archive keeps it: 2 s of 64x36 H.264 at 25 fps (no B-frames) and
    AC-3 at 48 kHz, its clock starting 1 h in (-output_ts_offset 3600: the picture at 3601.4 s), the
    sound 480 ticks of 90 kHz (its encoder's 256 samples of priming) before the picture, moved
    `audio_shift` samples later; `video_bsf`: a setts bitstream filter on the video's timestamps
    (in 1/90000 s). A .vob or .mpg `path` is a DVD's MPEG-PS instead (MPEG-2 video, starting 0.54 s in)."""
    args = [*_testsrc("64x36", "25"), "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=2"]
    args += ["-frames:v", "50", "-c:a", "ac3", "-bsf:a", f"setts=ts=PTS+({audio_shift})"]
    if path.suffix in (".vob", ".mpg"):
        ffmpeg(*args, "-c:v", "mpeg2video", "-g", "12", "-f", "vob", path)
        return path
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-enc_time_base:v", "1/90000"]
    if video_bsf:
        args += ["-bsf:v", f"setts={video_bsf}"]
    ffmpeg(*args, "-output_ts_offset", "3600", "-f", "mpegts", path)
    return path


def movie_edits(path: Path) -> tuple[Fraction, list[list[tuple[Fraction, int]]]]:
    """An MP4/MOV file's length as its movie header (mvhd) says, and each track's edit list (elst): its
    entries as (length in seconds, media time; -1 for an empty edit, time where nothing plays),
    read from the boxes themselves (ffmpeg -i shows the length less the empty edits)."""
    data = path.read_bytes()
    scale, length, tracks = 1, Fraction(0), []

    def walk(start: int, end: int) -> None:
        nonlocal scale, length
        while start + 8 <= end:
            size, kind, head = int.from_bytes(data[start : start + 4], "big"), data[start + 4 : start + 8], 8
            if size == 1:
                size, head = int.from_bytes(data[start + 8 : start + 16], "big"), 16
            body = data[start + head : start + (size or end - start)]
            if kind == b"mvhd":
                wide = body[0] == 1  # version 1: 64-bit times
                scale = int.from_bytes(body[20:24] if wide else body[12:16], "big")
                length = Fraction(int.from_bytes(body[24:32] if wide else body[16:20], "big"), scale)
            elif kind == b"trak":
                tracks.append([])
            elif kind == b"elst":
                wide, n, at = body[0] == 1, int.from_bytes(body[4:8], "big"), 8
                for _ in range(n):
                    w = 8 if wide else 4
                    span = int.from_bytes(body[at : at + w], "big")
                    media = int.from_bytes(body[at + w : at + 2 * w], "big", signed=True)
                    tracks[-1].append((Fraction(span, scale), media))
                    at += 2 * w + 4  # and the media rate
            if kind in (b"moov", b"trak", b"edts"):
                walk(start + head, start + size)
            start += size or end - start

    walk(0, len(data))
    return length, tracks


def packets(path: Path, stream: str) -> list[tuple[Fraction, Fraction, str]]:
    """(dts, pts) in seconds and md5 of every packet of `stream` as stored, read by ffmpeg (-copyts
    -c copy -f framemd5)."""
    out = ffmpeg("-copyts", "-i", path, "-map", stream, "-c", "copy", "-f", "framemd5", "-").stdout
    tb = Fraction(re.search(r"#tb \d+: (\d+/\d+)", out)[1])
    rows = [line.split(",") for line in out.splitlines() if line and not line.startswith("#")]
    return [(int(r[1]) * tb, int(r[2]) * tb, r[5].strip()) for r in rows]


def decoded_times(path: Path) -> list[Fraction]:
    """Presentation times in seconds of the frames ffmpeg's decoder gives (a damaged stretch loses
    more frames than its packets: those that refer to it)."""
    out = ffmpeg("-copyts", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", "-").stdout
    tb = Fraction(re.search(r"#tb \d+: (\d+/\d+)", out)[1])
    return [int(line.split(",")[2]) * tb for line in out.splitlines() if line and not line.startswith("#")]


def spu_box(x: int, y: int, w: int, h: int, shown: int = 90) -> bytes:
    """One DVD subtitle (SPU) packet: a filled w x h box of colour 1 at (x, y), on screen for
    `shown` 1024/90000 s ticks. Made by hand: FFmpeg has no source of bitmap subtitles."""
    import struct

    line = b"\x00\x01"  # run-length: the rest of the line in colour 1
    top, bottom = line * ((h + 1) // 2), line * (h // 2)  # the two fields' lines
    pixels = top + bottom
    x1, y1 = x + w - 1, y + h - 1
    area = bytes([x >> 4, (x & 15) << 4 | x1 >> 8, x1 & 255, y >> 4, (y & 15) << 4 | y1 >> 8, y1 & 255])
    show = b"\x01\x03\x32\x10\x04\xff\xf0\x05" + area + b"\x06" + struct.pack(">HH", 4, 4 + len(top)) + b"\xff"
    first = 4 + len(pixels)  # the control sequences follow the pixels
    second = first + 4 + len(show)
    data = pixels + struct.pack(">HH", 0, second) + show + struct.pack(">HH", shown, second) + b"\x02\xff"
    return struct.pack(">HH", 4 + len(data), first) + data


def make_pgs(path: Path, cues: list[tuple[float, float, tuple[int, int, int, int]]], canvas: str = "64x48") -> Path:
    """A Blu-ray subtitle (.sup) file: for each cue (start s, end s, box x, y, w < 64, h) a display set that
    shows a box of colour 1 from `start` (an epoch start: palette, window, object) and one that clears it
    at `end`. Made by hand: FFmpeg cannot encode PGS."""
    import struct

    w, h = map(int, canvas.split("x"))

    def segment(kind: int, t: float, data: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", round(t * 90000), 0, kind, len(data)) + data

    out = b""
    for n, (start, end, (x, y, bw, bh)) in enumerate(cues):
        pcs = struct.pack(">HHBHBBBB", w, h, 0x10, 2 * n, 0x80, 0, 0, 1) + struct.pack(">HBBHH", 0, 0, 0, x, y)
        window = struct.pack(">BBHHHH", 1, 0, x, y, bw, bh)
        palette = b"\0\0" + bytes([1, 235, 128, 128, 255])
        rle = (bytes([0, 0x80 | bw, 1]) + b"\0\0") * bh  # each line one run of colour 1, then end of line
        obj = struct.pack(">HBB", 0, 0, 0xC0) + struct.pack(">I", len(rle) + 4)[1:] + struct.pack(">HH", bw, bh) + rle
        out += b"".join(segment(k, start, d) for k, d in ((0x16, pcs), (0x17, window), (0x14, palette), (0x15, obj),
                                                          (0x80, b"")))  # fmt: skip
        clear = struct.pack(">HHBHBBBB", w, h, 0x10, 2 * n + 1, 0, 0, 0, 0)
        out += b"".join(segment(k, end, d) for k, d in ((0x16, clear), (0x17, window), (0x80, b"")))
    path.write_bytes(out)
    return path


def make_dvd_title(path: Path, *, header: str | None = None, size: str = "352x288", frames: int = 25) -> Path:
    """A DVD title at 25 fps (352x288: a DVD size too): MPEG-2 video, AC-3 audio and a DVD subtitle stream (two boxes near the
    bottom). A .vob as ffmpeg's dvd muxer writes it: a DVD navigation data stream too, and no subtitle
    header (MPEG-PS has no place for one); another container keeps `header` (a VobSub .idx's text:
    "size: 720x576", "palette: ..."). The subtitle packets are muxed with PyAV first, the one thing
    here ffmpeg does not make (spu_box)."""
    import av

    w, h = map(int, size.split("x"))
    subs = path.with_name(path.stem + "_subs.mkv")
    with av.open(str(subs), "w", format="matroska") as c:
        s: Any = c.add_mux_stream("dvd_subtitle")  # (a stream without a codec context: no header)
        s.time_base = Fraction(1, 1000)
        for i, ms in enumerate((200, 600)):  # (cues at 100 and 250 ms: ffmpeg's dvd muxer wrote neither)
            packet = av.Packet(spu_box(w // 4 + 16 * i, h - 80, w // 2, 40))
            packet.stream, packet.pts, packet.dts, packet.duration = s, ms, ms, 300
            packet.time_base = Fraction(1, 1000)
            c.mux(packet)
    if header is not None:  # copied again, with the header
        headed = subs.with_name(subs.stem + "_header.mkv")
        with av.open(str(subs)) as src, av.open(str(headed), "w", format="matroska") as c:
            s = c.add_stream_from_template(src.streams[0])
            s.codec_context.extradata = header.encode()
            for packet in src.demux(src.streams[0]):
                if packet.dts is not None:
                    packet.stream = s
                    c.mux(packet)
        subs = headed
    muxer = ("-f", "dvd") if path.suffix.lower() == ".vob" else ()
    ffmpeg(*_testsrc(size, "25"), "-f", "lavfi", "-i", "sine=sample_rate=48000", "-i", subs, "-map", "0:v",
           "-map", "1:a", "-map", "2:s", "-frames:v", str(frames), "-t", str(frames / 25), "-c:v", "mpeg2video",
           "-c:a", "ac3", "-c:s", "copy", *muxer, path)  # fmt: skip
    return path


def make_programmes_ts(path: Path) -> Path:
    """An MPEG-TS of two programmes as a broadcast multiplex carries them: 'ProgA' (#0 H.264 64x48,
    #1 MP2 deu) and 'ProgB' (#2 H.264 48x32, #3 MP2 fra), 10 frames at 25 fps."""
    ffmpeg(*_testsrc("64x48", "25"), "-f", "lavfi", "-i", "sine=frequency=440:duration=0.4",
           *_testsrc("48x32", "25"), "-f", "lavfi", "-i", "sine=frequency=880:duration=0.4",
           *("-map", "0", "-map", "1", "-map", "2", "-map", "3", "-frames:v", "10", "-c:v", "libx264"),
           *("-preset", "ultrafast", "-c:a", "mp2", "-metadata:s:a:0", "language=deu", "-metadata:s:a:1"),
           *("language=fra", "-program", "title=ProgA:program_num=1:st=0:st=1", "-program"),
           *("title=ProgB:program_num=2:st=2:st=3", path))  # fmt: skip
    return path


CAPTION = "HELLO BROADCAST "  # an even number of letters: two a frame


def _ga94_sei(pair: tuple[int, int] | None) -> bytes:
    """An H.264 SEI NAL unit (Annex B) of ATSC A/53 user data ("GA94") with one EIA-608 field-1 byte
    pair (None: padding), as a broadcaster's encoder writes one per picture."""

    def odd(b: int) -> int:  # 608 bytes carry odd parity in their top bit
        b &= 0x7F
        return b | (0x80 if bin(b).count("1") % 2 == 0 else 0)

    cc = bytes([0xFC, odd(pair[0]), odd(pair[1])]) if pair else bytes([0xFC, 0x80, 0x80])
    cc += bytes([0xF9, 0x80, 0x80])  # an empty field-2 pair
    payload = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | 2, 0xFF]) + cc + bytes([0xFF])
    body = bytes([4, len(payload)]) + payload + bytes([0x80])  # user_data_registered_itu_t_t35, stop bit
    out, zeros = bytearray(), 0
    for b in body:  # emulation prevention
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return b"\x00\x00\x00\x01\x06" + bytes(out)


def make_caption_ts(path: Path, frames: int = 30, first: int = 0) -> Path:
    """An MPEG-TS with EIA-608 closed captions in its H.264 video (A/53 SEI, as US broadcast carries
    them), 64x48 at 29.97 fps, MP2 audio: a pop-on caption
    CAPTION loaded from frame 4 and shown at frame 12 (0.4 s), one byte pair a frame. ffmpeg encodes
    the picture (an access unit delimiter before each, a keyframe every 6), a SEI goes after each
    delimiter, and ffmpeg muxes the result. first: the first picture with captions (its SEI): later
    than 0, as a recording that starts before the captioned programme."""
    raw, annexb = path.with_suffix(".raw.h264"), path.with_suffix(".cc.h264")
    ffmpeg(*_testsrc("64x48", "30000/1001"), "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast",
           "-bf", "0", "-g", "6", "-x264-params", "aud=1", raw)  # fmt: skip
    pairs = [(0x14, 0x20)] * 2 + [(0x14, 0x70)] * 2  # resume caption loading; row 15, column 0
    pairs += [(ord(CAPTION[i]), ord(CAPTION[i + 1])) for i in range(0, len(CAPTION), 2)]
    pairs += [(0x14, 0x2F)] * 2  # end of caption: show it
    data, out, picture = raw.read_bytes(), bytearray(), 0
    nals = [m.start() for m in re.finditer(b"\x00\x00\x01", data)]
    for i, start in enumerate(nals):
        end = nals[i + 1] if i + 1 < len(nals) else len(data)
        out += data[start:end]
        if data[start + 3] & 0x1F == 9:  # an access unit delimiter: this picture's SEI after it
            if picture >= first:
                out += _ga94_sei(pairs[picture - first] if picture - first < len(pairs) else None)
            picture += 1
    annexb.write_bytes(bytes(out))
    ffmpeg("-r", "30000/1001", "-f", "h264", "-i", annexb, "-f", "lavfi", "-i", "sine=duration=1", "-map", "0",
           "-map", "1", "-c:v", "copy", "-c:a", "mp2", path)  # fmt: skip
    return path


def caption_text(path: Path) -> str:
    """The closed captions of a video's A/53 data as ffmpeg reads them (its movie source's subcc
    output), as SRT: '' when it has none."""
    return ffmpeg("-f", "lavfi", "-i", f"movie={path}[out+subcc]", "-map", "0:1", "-f", "srt", "-").stdout


# An ASS script whose drawing depends on the storage size as libass reads it: a border in storage
# pixels (ScaledBorderAndShadow: no) and a \blur (scaled by storage size whatever that line says).
# A drawing (\p1), not text, so that no font is needed.
ASS_SCRIPT = """[Script Info]
ScriptType: v4.00+
PlayResX: 640
PlayResY: 360
ScaledBorderAndShadow: no

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Box,Arial,20,&H0000FFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,1,7,0,0,0,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.00,0:00:00.12,Box,,0,0,0,,{\\pos(200,100)\\bord3\\blur2\\p1}m 0 0 l 240 0 240 160 0 160{\\p0}
"""


def make_ass_clip(path: Path, *, size: str = "64x36", sar: str = "1", script: str = ASS_SCRIPT) -> Path:
    """A 4-frame H.264 .mkv with one ASS track (`script`, titled "Signs") and pixel aspect `sar`."""
    ass = path.with_suffix(".ass")
    ass.write_text(script)
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:d=0.16", "-i", ass, "-map", "0:v", "-map", "1",
           "-vf", f"setsar={sar}", "-c:v", "libx264", "-preset", "ultrafast", "-c:s", "copy",
           "-metadata:s:s:0", "title=Signs", path)  # fmt: skip
    return path


def libass_render(path: Path, width: int, height: int, original: str | None = None) -> bytes:
    """The first subtitle stream of `path` drawn by libass (ffmpeg's subtitles filter) on a grey
    `width` x `height` frame at t=0, RGB bytes. `original`: the storage size libass is told (as mpv
    tells it the video's), else the frame's."""
    vf = f"subtitles={path}" + (f":original_size={original}" if original else "")
    return subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                           f"color=gray:s={width}x{height}:r=25:d=0.04", "-vf", vf, "-frames:v", "1", "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout  # fmt: skip


# Boxes whose children follow their header at once, and the sample entries, whose children follow
# a further 78 bytes of their own (ISO/IEC 14496-12's VisualSampleEntry); stsd's follow 8.
MP4_PARENTS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"stsd": 8, b"hvc1": 78}


def with_dovi_record(src: Path, dst: Path, profile: int, compatible: int) -> Path:
    """`src` (an .mp4 of HEVC tagged hvc1, its index last as ffmpeg writes it) with a Dolby Vision
    configuration record in its sample entry: a dvvC box (dvcC for profiles up to 7) of 24 bytes
    (version 1.0, level 1, RPU and base layer present), every box around it grown by its 32 bytes. The
    media before the index does not move, so its offsets stay right."""
    data = bytearray(src.read_bytes())
    record = bytes([1, 0, profile << 1, 1 << 3 | 0b101, compatible << 4]) + bytes(19)
    box = (32).to_bytes(4, "big") + (b"dvcC" if profile <= 7 else b"dvvC") + record
    parents, at, end = [], 0, len(data)
    while at < end:  # down the boxes: into each parent on the way to the sample entry
        size, kind = int.from_bytes(data[at : at + 4], "big"), bytes(data[at + 4 : at + 8])
        if kind in MP4_PARENTS:
            parents.append(at)
            if kind == b"hvc1":
                break
            at, end = at + 8 + MP4_PARENTS[kind], at + size
        else:
            at += size
    assert parents and data[parents[-1] + 4 : parents[-1] + 8] == b"hvc1", "no hvc1 sample entry"
    entry = parents[-1]
    end = entry + int.from_bytes(data[entry : entry + 4], "big")
    data[end:end] = box  # the sample entry's last child
    for p in parents:
        data[p : p + 4] = (int.from_bytes(data[p : p + 4], "big") + len(box)).to_bytes(4, "big")
    dst.write_bytes(bytes(data))
    return dst
