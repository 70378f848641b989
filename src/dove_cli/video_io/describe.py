"""What dove reads from an input and what else it holds, for `dove info FILE`: a plain dict per
input (JSON as it is), from the reader's own probe so that it says what a run would see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from dove_cli.errors import InputError
from dove_cli.video_io.cadence import RateJudgement, judge_rate, packet_pts
from dove_cli.video_io.fields import scan_fields
from dove_cli.video_io.formats import HDR_TRANSFERS, TRANSPORT_CLOCKS, assumed_matrix, is_rgb, stream_flags
from dove_cli.video_io.matroska import chapter_order
from dove_cli.video_io.metadata import file_tags, find_reel, find_timecode, get_tag, is_chapter_track, tags_left
from dove_cli.video_io.paths import ffmpeg_name
from dove_cli.video_io.programmes import Programme, programme_of, ts_programmes
from dove_cli.video_io.reader import (
    VideoInfo,
    VideoReader,
    attachment_name,
    display_size,
    is_empty_audio,
    is_picture,
    open_reader,
    picture_bytes,
    tagged_length,
    unread_tail,
)
from dove_cli.video_io.sequences import frame_numbers, missing_numbers, numbered
from dove_cli.video_io.stills import icc_name

# FFmpeg's demuxer of the ISO family is named by the extensions it reads, "mov,mp4,m4a,3gp,3g2,mj2" (six
# abbreviations read aloud before the duration), and its long name, "QuickTime / MOV", hides the MP4.
FAMILIES = {"mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV"}


def container_name(fmt: av.ContainerFormat) -> str:
    """A container as a person names it: `MP4/MOV`, else FFmpeg's long name (`Matroska / WebM`,
    `MPEG-TS (MPEG-2 Transport Stream)`)."""
    return FAMILIES.get(fmt.name) or fmt.long_name or fmt.name


def describe(path: str | Path) -> dict[str, Any]:
    """The input at `path` (video file, image pattern, folder of images or one image) as a dict:
    its video as dove reads it, then every other stream in input order, an MPEG-TS's programmes
    (each stream names its own), chapters and file tags. `start` (the file's, each stream's): where
    its times begin, in seconds; `clock`: they are a transport clock's (MPEG-TS/PS), which outputs
    other than .ts start at 0 (`writer.time_zero`). Raises the reader's InputError when dove cannot
    read it."""
    try:
        reader = open_reader(path, warn=False)
    except InputError:
        if (heard := _sound_only(path)) is not None:  # an .m4a, a .flac, a .wav: nothing to upscale, but said
            return heard
        raise
    with reader:
        info = reader.info
        if info.is_images:
            return {"path": str(path), "images": _images(info)}
        return _file(path, reader)


def _sound_only(path: str | Path) -> dict[str, Any] | None:
    """`describe` of a file with audio and no video (which `dove upscale` refuses): its container and
    streams, `video` None; None where it is not one (unreadable, or no audio either)."""
    try:
        c = av.open(ffmpeg_name(path), metadata_errors="replace")
    except (av.FFmpegError, OSError):
        return None
    with c:
        if any(not is_picture(s) for s in c.streams.video) or not c.streams.audio:
            return None
        return {
            "path": str(path),
            "container": c.format.name,
            "container_name": container_name(c.format),
            "duration": c.duration / av.time_base if c.duration else None,
            "start": c.start_time / av.time_base if c.start_time is not None else None,
            "clock": c.format.name in TRANSPORT_CLOCKS,
            "video": None,
            "streams": [{**_stream(c, s), "programme": None} for s in c.streams],
            "programmes": [],
            "chapters": _chapters(c),
            **dict(zip(("chapters_ordered", "chapters_linked"), chapter_order(path), strict=True)),
            "tags": file_tags(c),
            "tags_left": tags_left(c),
        }


def _file(path: str | Path, reader: VideoReader) -> dict[str, Any]:
    """`describe` of a video file, `reader` open on it."""
    info = reader.info
    with av.open(ffmpeg_name(path), metadata_errors="replace") as c:
        video = c.streams[info.stream_index]
        pts = packet_pts(c, video)
        short = reader.shortfall(pts[-1]) if pts else None
        stop = unread_tail(Path(path), video.index, pts[-1]) if pts and not short else None
        programmes = ts_programmes(path) if "mpegts" in c.format.name else []
        others = [{**_stream(c, s), "programme": _number(programmes, s)} for s in c.streams if s is not video]
        # what the fields hold, for a video flagged interlaced only (a scan of its first frames)
        scan = scan_fields(Path(path), video.index) if info.interlaced else None
        return {
            "path": str(path),
            "container": info.container,
            "container_name": container_name(c.format),
            "duration": c.duration / av.time_base if c.duration else info.duration,  # its longest stream's
            "start": c.start_time / av.time_base if c.start_time is not None else None,
            "clock": info.container in TRANSPORT_CLOCKS,
            "video": {
                "index": video.index,
                **_video(info, judge_rate(video, pts)),
                "duration": info.duration,  # the video's own (seconds): its audio may outlast it
                # a Matroska header lacking what a muxer writes at the end (a recording still being made)
                "unfinished": info.unfinished,
                # packets ending well before the header says: {"ends", "header_end" (s), "missing_frames"}
                "cut_short": dict(zip(("ends", "header_end", "missing_frames"), short, strict=True)) if short else None,
                # the demuxer stopping well before the file's end (damage it took for the end): {"stops_at", "size"} (bytes)
                "unread": dict(zip(("stops_at", "size"), stop, strict=True)) if stop else None,
                "programme": _number(programmes, video),
                # the start timecode a run carries over (a MOV's tmcd track, an MXF's, a Matroska tag) and its reel
                "timecode": find_timecode(c, video),
                "reel_name": find_reel(c, video),
                "field_order": scan.flagged_order if scan else None,  # "tff" | "bff": as the frames say
                "fields": scan.as_dict() if scan else None,  # what FFmpeg's idet found in them
            },
            "streams": others,
            "programmes": [{"number": p.number, "name": p.name or None, "provider": p.provider or None,
                            "streams": sorted(s.index for s in c.streams if s.id in p.pids)} for p in programmes],
            "chapters": _chapters(c),
            # an ordered edition (played as its list of chapters) and chapters that play other files: Matroska's
            **dict(zip(("chapters_ordered", "chapters_linked"), chapter_order(path), strict=True)),
            "tags": file_tags(c),
            "tags_left": tags_left(c),
        }  # fmt: skip


def _chapters(c: Any) -> list[dict[str, Any]]:
    """The file's chapters in order: start and end (seconds) and title (None: untitled)."""
    return [{"start": float(ch["start"] * ch["time_base"]), "end": float(ch["end"] * ch["time_base"]),
             "title": get_tag(ch["metadata"], "title") or None} for ch in c.chapters() if ch["time_base"]]  # fmt: skip


def _number(programmes: list[Programme], s: Any) -> int | None:
    """The number of the MPEG-TS programme a stream belongs to (None: not a TS, or in none)."""
    own = programme_of(programmes, s.id)
    return own.number if own is not None else None


def _video(info: VideoInfo, rate: RateJudgement) -> dict[str, Any]:
    """The video as dove reads it, its rate judged from all its packets (`judge_rate`); a count the
    container does not give is the packets' (one per frame), and a variable rate is the packets' average (the stream's own rate is only nominal: 16
    for a clip of 32 frames over 2.6 s). The nominal rate is the one the timestamps step at (29.97
    for a phone's clip), not the container's average (frames over duration: 29.47 for that clip)."""
    w, h = info.width, info.height
    display = display_size(w, h, info.sample_aspect_ratio, info.rotation)
    tagged = info.colorspace not in (None, "gbr")
    return {
        "codec": info.codec,
        "width": w,
        "height": h,
        "display_size": f"{display[0]}x{display[1]}" if display != (w, h) else None,
        "sample_aspect_ratio": str(info.sample_aspect_ratio) if info.sample_aspect_ratio else None,
        "rotation": info.rotation,
        "mirrored": info.mirrored,
        "frames": info.num_frames if info.num_frames_exact or not rate.frames else rate.frames,
        "frames_exact": info.num_frames_exact,
        "fps": str(rate.average if rate.variable and rate.average else info.fps),
        "nominal_fps": str(info.base_fps or info.fps),  # FFmpeg's guessed rate: `fps` is an average (a .mp4's)
        "variable_rate": rate.variable,
        "start": float(info.start_pts * info.time_base),  # the first frame's time, in seconds
        "pix_fmt": info.pix_fmt,
        "bit_depth": info.bit_depth,
        "primaries": info.color_primaries,
        "transfer": info.color_trc,
        "matrix": info.colorspace,
        "range": info.color_range,
        "rgb": is_rgb(info.pix_fmt),  # RGB pixels: full range whatever the tag
        # what the reader converts an untagged one with (`assumed_matrix`), and limited range
        "assumed_matrix": None if tagged or info.colorspace == "gbr" else assumed_matrix(w, h),
        "hdr": HDR_TRANSFERS.get(info.color_trc or ""),
        # HDR10's static metadata (the writer gives it to the hevc, h264 and av1 encoders) and the dynamic kinds
        "mastering_display": info.mastering.as_dict() if info.mastering else None,
        "light_level": dict(zip(("max_cll", "max_fall"), info.light_level, strict=True)) if info.light_level else None,
        "dynamic_hdr": list(info.dynamic_hdr),  # "HDR10+", "Dolby Vision profile 8.1": never kept
        "chroma_location": info.chroma_location,  # where subsampled chroma sits, as read (outputs: center)
        "interlaced": info.interlaced,
        "captions": info.captions,  # EIA-608/708 closed captions in the video (its first frame carries them)
    }


def _stream(c: Any, s: Any) -> dict[str, Any]:
    """One stream other than the video: its kind, codec (None for a data track FFmpeg has no codec
    for: a timecode, QuickTime metadata), language, title and flags, and for audio its channels and
    rate (`empty`: none, a stream with no sound that outputs leave out), for audio and subtitles their start and
    length (seconds), for a timecode track its start timecode, for an
    attachment (or cover art) its file name, type and size."""
    d: dict[str, Any] = {"index": s.index, "kind": s.type}
    cc = s.codec_context
    if s.type == "attachment" or is_picture(s):
        d["kind"] = "attachment" if s.type == "attachment" else "cover art"
        d["filename"] = attachment_name(s)
        d["mimetype"] = s.metadata.get("mimetype") or (cc.name if cc else None)
        d["bytes"] = len(s.data) if s.type == "attachment" else len(picture_bytes(c, s))
        return d
    d["codec"] = cc.name if cc is not None else s.name
    if s.type == "audio" and cc is not None:  # the codec, not its decoder (mp3, not mp3float), as ffmpeg names it
        d["codec"] = cc.codec.canonical_name
    if s.type in ("audio", "subtitle"):  # where its times begin (the output moves it with the video), and its length
        d["start"] = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else None
        length = s.duration * s.time_base if s.duration and s.time_base else tagged_length(s)
        d["duration"] = float(length) if length else None
    if s.type == "video":  # another video than the one dove reads (a second programme's)
        d["width"], d["height"] = cc.width, cc.height
    if s.type == "audio":
        d["channels"] = cc.channels
        d["layout"] = cc.layout.name
        d["sample_rate"] = cc.sample_rate
        d["empty"] = is_empty_audio(s)  # no sound: FFmpeg's phantom beside an MPEG-TS's TrueHD; never copied
    if s.type == "data" and is_chapter_track(c, s):
        d["kind"] = "chapter track"
    elif s.type == "data" and (tc := get_tag(s.metadata, "timecode")):  # a tmcd track: no codec FFmpeg decodes
        d["kind"], d["timecode"] = "timecode track", tc
    d["language"] = s.metadata.get("language")
    d["title"] = get_tag(s.metadata, "title") or get_tag(s.metadata, "name")  # MP4 keeps a track's title as its name
    d["flags"] = stream_flags(s)
    return d


def _images(info: VideoInfo) -> dict[str, Any]:
    files = info.files
    numbers = frame_numbers(files)
    return {
        "count": len(files),
        "first": files[0].name,
        "last": files[-1].name,
        "numbers": f"{numbers[0]}-{numbers[-1]}" if numbers else None,
        "missing": sum(b - a + 1 for a, b in missing_numbers(files)),
        "strays": [f.name for f in numbered(files)[1]],
        "width": info.width,
        "height": info.height,
        "pix_fmt": info.pix_fmt,
        "bit_depth": info.bit_depth,
        "codec": info.codec,
        # the first image's (a sequence's agree), as `ImageReader` reads them
        "orientation": info.orientation,
        "rotation": info.rotation,
        "mirrored": info.mirrored,
        "pages": info.pages,
        "icc": icc_name(info.icc_profile) if info.icc_profile else None,
        "dpi": list(info.dpi) if info.dpi else None,
        # a PNG's cICP and HDR10 chunks, as a video's tags (None: untagged, as images mostly are)
        "primaries": info.color_primaries,
        "transfer": info.color_trc,
        "hdr": HDR_TRANSFERS.get(info.color_trc or ""),
        "mastering_display": info.mastering.as_dict() if info.mastering else None,
        "light_level": dict(zip(("max_cll", "max_fall"), info.light_level, strict=True)) if info.light_level else None,
    }
