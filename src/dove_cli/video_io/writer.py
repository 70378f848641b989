"""Encoding and muxing: RGB frames into a container with the input's timing, colour tags, audio,
subtitles, chapters, metadata and attachments, written to a temporary file and renamed at the end."""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from av.subtitles.subtitle import SubtitleSet
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from dove_cli import note
from dove_cli.errors import InputError, OutputError
from dove_cli.video_io.audio_clock import PREROLL, AudioClock, lead_in, skip_samples
from dove_cli.video_io.aux_streams import (
    DEFAULT_LAYOUTS,
    AuxDecision,
    AuxState,
    encoded_as,
    holders,
    is_pgs,
    plan_aux_streams,
    track_said,
)
from dove_cli.video_io.continuity import continuous_packets
from dove_cli.video_io.cues import Cue, Sequencer, one_event
from dove_cli.video_io.deep import DeepYuv
from dove_cli.video_io.formats import (
    BRANDS,
    HDR_TRANSFERS,
    MP4_COVERS,
    NO_LANGUAGE,
    PRIMARIES,
    RGB_PRIMARIES_MATRIX,
    SPACE,
    SWS_MATRIX,
    TEXT_SUBTITLES,
    TO_YUV_FLAGS,
    TRANSPORT_CLOCKS,
    TRC,
    VIDEO_EXTENSIONS,
    VIDEO_RANGE_ONLY,
    VIDEO_TAGS,
    CodecSpec,
    assumed_matrix,
    check_encoder_options,
    choose_pix_fmt,
    copy_refused,
    copy_stream,
    deep_output,
    default_codec,
    encoder_options,
    few_play,
    ff_round,
    ffmsg,
    holds_aux,
    holds_video,
    inverse,
    is_hd,
    is_rgb,
    is_yuv,
    iso639_2,
    layout_lost,
    layout_name,
    lost_flags,
    mov_language,
    profile_spec,
    resolve_codec,
    rgb_frame,
    signal_range,
    writes_captions,
)
from dove_cli.video_io.hdr import encoder_params, metadata_lost
from dove_cli.video_io.matroska import chapter_order
from dove_cli.video_io.metadata import (
    FFMPEG_VIDEO_HANDLER,
    TAGLESS,
    file_tags,
    find_reel,
    find_timecode,
    get_tag,
    is_chapter_track,
    mdta_keys,
    move_timecode,
    tags_left,
    timecode_said,
)
from dove_cli.video_io.paths import (
    ffmpeg_name,
    prepare_output,
    remove_made_folders,
    replace_keeping_mode,
    temp_sibling,
    through_links,
    write_failed,
)
from dove_cli.video_io.programmes import programme_of, ts_programmes
from dove_cli.video_io.reader import (
    VideoInfo,
    attachment_streams,
    audio_streams,
    is_empty_audio,
    is_picture,
    picture_bytes,
    stream_rate,
    time_span,
)
from dove_cli.video_io.siting import sited
from dove_cli.video_io.stills import icc_name
from dove_cli.video_io.subtitle_headers import ass_layout, laid_out_ass_header, sized_dvdsub_header

if TYPE_CHECKING:
    from av.container.core import Chapter

log = logging.getLogger("dove_cli.video_io")


# How far before a --preview start to look for subtitle cues that are still on screen at the start,
# and to seek for audio (containers without an index, MPEG-TS/PS, can land a little after the target).
SUBTITLE_LOOKBACK_S = 60
AUX_SEEK_MARGIN_S = 5
# How many packets from the start to look through for each copied audio stream's first (`_try_copies`)
TRIAL_PACKETS = 2000
PICTURE_TYPES = {"mjpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp", "webp": "image/webp"}  # cover art
AVFMT_TS_NONSTRICT = 0x20000  # a muxer that takes equal dts in a row (Matroska): only going back is refused


class VideoWriter:
    """Encodes RGB frames, muxes the input's audio/subtitles alongside, renames into place at close.

    Use from one thread. As a context manager it closes on success and aborts on an exception.
    """

    path: Path
    frames_written: int
    # Closed captions found only while writing (not in `VideoInfo.captions`) that the output does not
    # keep: when they first turned up, in seconds from the first frame, and why they are lost.
    late_captions: float | None = None
    captions_lost: str = ""
    # The copied subtitle streams drawn at places on the picture (ASS, bitmaps), as "#2 'Signs'":
    # what --crop moves them off (`upscaling._check_outputs`)
    placed_subtitles: tuple[str, ...] = ()
    # What becomes of each of the input's audio tracks, as "#1 pcm_s24le 5.1 96 kHz: copied": the plan
    # shows them (`_setup_aux`)
    audio_plan: tuple[str, ...] = ()

    def write(self, rgb: np.ndarray, pts: int | None = None, captions: av.VideoFrame | None = None) -> None:
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


def frame_ticks(info: VideoInfo, step: int, time_base: Fraction) -> int | None:
    """The last frame's duration, in ticks of `time_base`: one frame at the input's nominal rate.
    The container takes the file's length from it, which it else guesses from the stream's rate, a
    variable rate's average (a 3003-tick frame of a 29.97 fps phone clip became 3054 ticks long, the
    file 1.7 ms longer than its input). None where that rate is no frame's (120 for 24 and 30 fps
    mixed; `step`: one frame at the average rate): the step between the last two frames then."""
    nominal = round(1 / (info.base_fps * time_base)) if info.base_fps else 0
    return nominal if step / 2 <= nominal <= step * 2 else None


def last_ticks(info: VideoInfo, seconds: Fraction, nominal: int | None, time_base: Fraction) -> int | None:
    """The last frame's duration in ticks of `time_base`, the frame at `seconds` on the input's timeline:
    where it is the input's last, its own there (`last_duration`: a 30 fps clip with every 7th frame kept
    ends on a 33 ms frame, not a 233 ms step, so the output is as long as the input), but `nominal`
    (`frame_ticks`) where that is the input's rounded to its clock (a constant rate: 17 ms for 59.94 fps)."""
    own = last_duration(info, seconds, time_base / 2)
    if not own or (nominal and abs(own - nominal * time_base) < info.time_base):
        return nominal
    return max(1, round(own / time_base))


def last_duration(info: VideoInfo, seconds: Fraction, within: Fraction) -> Fraction | None:
    """How long the input's last frame lasts, where `seconds` (within `within`: the output's clock may
    round it) is its time: to where its packets end (their last decode time and duration, as late as
    the first one is shown after its decode time: an .mp4's last stts entry, a Matroska block's
    duration). None where that frame is not its last, the packets give no end, or frames are not
    packets (--deinterlace field and ivtc time them anew)."""
    if info.is_images or not info.path.is_file():
        return None
    try:
        with av.open(ffmpeg_name(info.path), metadata_errors="replace") as c:
            s = c.streams[info.stream_index]
            if not s.time_base or Fraction(s.time_base) != info.time_base:
                return None
            tb = Fraction(s.time_base)
            first = next((p for p in c.demux(s) if p.pts is not None and p.dts is not None), None)
            if first is None:
                return None
            delay = (first.pts or 0) - (first.dts or 0)  # (both there: a B-frame stream's reorder delay)
            c.seek(math.floor((seconds - within) / tb), stream=s, backward=True)
            ends, shown = [], []
            for p in c.demux(s):
                if p.pts is not None:
                    shown.append(p.pts * tb)
                if p.dts is not None and p.duration:
                    ends.append((p.dts + p.duration + delay) * tb)
    except av.FFmpegError:
        return None
    if not ends or not shown or max(shown) > seconds + max(within, tb / 2):
        return None
    return own if (own := max(ends) - seconds) > 0 else None


class OwnDurations:
    """Video packets, taken in decode order, given back in that order with their own frames'
    durations: from a packet's pts to the next frame's (the next larger pts). A muxer takes a
    stream's end from its packets' pts + duration; an encoder gives packets frames late and in
    decode order, so the step of the frame just submitted is another frame's (a screen recording's
    6.9 s hold landed on its last frame: a 20 s .mkv said 26.8 s). A packet waits until the next
    frame's pts is certain: once the dts have passed it, as no later packet's pts is below its dts."""

    def __init__(self) -> None:
        self._held: deque[av.Packet] = deque()
        self._seen: list[int] = []  # sorted pts that may be a held or a later packet's next frame
        self._top: list[int] = []  # the two largest pts so far: the last frame's step (not `_seen`'s, pruned)

    def push(self, p: av.Packet) -> list[av.Packet]:
        """Those of the held packets and `p` whose durations are now known (each set), in order."""
        pts = self._pts(p)
        self._top = sorted({*self._top, pts})[-2:]  # (in decode order a later frame comes before earlier ones)
        bisect.insort(self._seen, pts)
        self._held.append(p)
        if p.dts is None:  # (an encoder's delayed packets before its flush: held to the end)
            return []
        out: list[av.Packet] = []
        while self._held:
            q = self._held[0]
            i = bisect.bisect_right(self._seen, self._pts(q))
            if i == len(self._seen) or self._seen[i] > p.dts:
                break
            q.duration = self._seen[i] - self._pts(q)
            out.append(self._held.popleft())
        lowest = min([p.dts, *(self._pts(q) for q in self._held)])
        del self._seen[: bisect.bisect_left(self._seen, lowest)]
        return out

    def flush(self, last: int | None) -> list[av.Packet]:
        """Every packet held, in order; the last frame's duration is `last` (`frame_ticks`; None: the
        step between the last two frames)."""
        for q in self._held:
            i = bisect.bisect_right(self._seen, self._pts(q))
            if i < len(self._seen):
                q.duration = self._seen[i] - self._pts(q)
            else:
                q.duration = last or (self._top[1] - self._top[0] if len(self._top) == 2 else 0)
        out, self._held, self._seen = list(self._held), deque(), []
        return out

    @staticmethod
    def _pts(p: av.Packet) -> int:
        return int(p.pts if p.pts is not None else p.dts or 0)


class ContainerWriter(VideoWriter):
    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        width: int,
        height: int,
        *,
        codec: str | None,
        crf: int | float | None,
        preset: str | None,
        pix_fmt: str | None,
        codec_options: dict[str, Any] | None,
        audio: str,
        subtitles: str,
        overwrite: bool,
        start: float | Fraction | None = None,
        end: float | Fraction | None = None,
        warn: bool = True,
        index_first: bool = True,
    ) -> None:
        self.path, self.info, self.frames_written = path, info, 0
        self._muxed = (0, 0)  # video packets and their bytes in the file (what a file-size limit let in)
        self._warn = warn  # say what the output loses (open_writer)
        # Output time zero and end, in seconds on the input's timeline (None: keep timestamps as they are);
        # zero is decided with the streams copied (`_setup_aux`, `time_zero`), in ticks of the time base `_shift`.
        origin = Fraction(info.start_pts) * info.time_base
        self._origin, self._start = origin, start
        self._t0: Fraction | None = None
        self._shift = 0
        self._preview = bool(start)  # a --preview that starts after the file's start
        # (start and end count on the file's clock: from `lead` before the first frame, as ffmpeg -ss)
        self._t1 = (origin - info.lead + Fraction(end)) if end is not None else None
        self._done = False
        self._fps = info.fps if info.fps and info.fps > 0 else Fraction(25)  # the output's frame rate
        self._src: av.container.InputContainer | None = None
        self._covers: list[tuple[Any, bytes]] = []  # MP4 cover art: output stream, its one picture
        self._aux = AuxState()  # the audio and subtitle streams copied (`_setup_aux`) and their muxing's bookkeeping
        self._timecode: tuple[str, Fraction] | None = None  # the input's, and the rate it counts at
        self._respelled: list[str] = []  # "#1 deu as ger": languages a .mov keeps in their other spelling
        self._untagged: list[tuple[int, str]] = []  # (3, "mri"): languages a .mov (.mp4) cannot hold
        self._narrowed: list[str] = []  # "#2 pt-BR as por": BCP-47 tags .mp4/.mov keep only the language of
        fmt_name = VIDEO_EXTENSIONS[path.suffix.lower()]
        name, spec = resolve_codec(codec or default_codec(path, info.color_trc))
        hdr = encoder_params(spec.encoder, info.mastering, info.light_level)  # HDR10's static metadata
        opts = encoder_options(name, spec, crf, preset, codec_options, hdr)  # --crf and --preset checked first
        opts = self._caption_options(spec.encoder, opts, codec_options or {})
        if warn:
            for lost in metadata_lost(info.color_trc, info.mastering, info.light_level, info.dynamic_hdr, spec.encoder):
                log.warning("%s: %s", path, lost)
            if info.icc_profile:
                log.warning("%s: a video holds no ICC profile: %s of the source is dropped, so its colours are "
                            "shown as sRGB (.png and .jpg images keep it)", path, icc_name(info.icc_profile))  # fmt: skip
        spec = profile_spec(name, spec, preset, pix_fmt)
        pf = choose_pix_fmt(spec, name, pix_fmt, deep_output(info.bit_depth, info.color_trc), width, height, source=info.pix_fmt, warn=warn,
                            path=path, hdr=HDR_TRANSFERS.get(info.color_trc or ""))  # fmt: skip
        self.codec, self.pix_fmt = name, pf  # as chosen (e.g. 4:4:4 for odd sizes), so that segments can repeat it
        if codec_options:
            asked = tuple(
                flag for flag, v in (("--crf", crf), ("--preset", preset), ("--pix-fmt", pix_fmt)) if v is not None
            )
            check_encoder_options(spec.encoder, opts, codec_options, width, height, pf, info.fps, asked)
        self._tmp = temp_sibling(through_links(path), path.suffix)  # a symlink's target is replaced, not the link
        self._made = prepare_output(path, overwrite)
        self._open_output(fmt_name, index_first)
        try:
            self._check_holds_video(fmt_name, spec, name, pf, opts, width, height)
            self._setup_video(spec, pf, opts, width, height)
            self._setup_aux(audio, subtitles, fmt_name)
            self._exact_movie_clock(fmt_name)
        except BaseException:
            self.abort()
            raise

    # -- setup
    def _open_output(self, fmt_name: str, index_first: bool) -> None:
        """Open the temporary file (`_tmp`) as a `fmt_name` container; one line naming the output where
        it cannot be (nothing left behind)."""
        path = self.path
        try:
            # Matroska and WebM: the same bytes on every run, as MP4, MOV and MPEG-TS have. Without it the
            # muxer writes a random SegmentUID and track UIDs (then 1, 2, ...), and "Lavf62.12.102" where
            # it now writes "Lavf"; nothing else changes (FFmpeg's matroskaenc.c and mux.c).
            options = {"fflags": "+bitexact"} if fmt_name in ("matroska", "webm") else {}
            if index_first and fmt_name in ("mp4", "mov"):  # as `ffmpeg -movflags +faststart`: at close the
                options["movflags"] = "+faststart"  # muxer moves the index (moov) before the media (mdat)
            if brand := BRANDS.get(path.suffix.lower()):
                options["brand"] = brand
            self._out = av.open(ffmpeg_name(self._tmp), "w", format=fmt_name, container_options=options)
        except (av.FFmpegError, OSError) as exc:
            self._remove_tmp()
            remove_made_folders(self._made)
            raise OutputError(f"{path}: cannot write here ({ffmsg(exc)})") from None

    def _check_holds_video(
        self, fmt_name: str, spec: CodecSpec, name: str, pf: str, opts: dict[str, str], width: int, height: int
    ) -> None:
        """Refuse, in one line, a `fmt_name` container where it cannot hold video codec `name` (as
        `spec` encodes it, in `pf`), naming the extensions that can."""
        path, info = self.path, self.info

        def add_video(c: Any) -> None:
            vs = c.add_stream(spec.encoder, rate=info.fps or 25)
            vs.width, vs.height, vs.pix_fmt = width, height, pf
            vs.codec_context.options = opts

        codec_name = av.Codec(spec.encoder, "w").canonical_name
        if not holds_video(fmt_name, codec_name, add_video):
            holders = sorted(ext for ext, fmt in VIDEO_EXTENSIONS.items()
                             if fmt != fmt_name and holds_video(fmt, codec_name, add_video))  # fmt: skip
            elsewhere = f"or an extension that can ({', '.join(holders)})" if holders else "or another codec"
            raise OutputError(f"{path}: the {fmt_name} container cannot hold {name} video; use --codec "
                              f"{default_codec(path, info.color_trc)} {elsewhere}")  # fmt: skip

    def _caption_options(self, encoder: str, opts: dict[str, str], given: dict[str, Any]) -> dict[str, str]:
        """Whether the input's closed captions are kept (`_carry`), and the encoder options that keep
        them: an encoder that writes them (`writes_captions`) is told to (libx265's a53cc is off by
        default), unless --codec-option a53cc=0 says not to; also where none were found before the
        run (`VideoInfo.captions`: they may start later). Captions the output loses are said: here,
        or at the end of the run where they turned up only then (`write`, `_say_late_captions`)."""
        self._carry = writes_captions(encoder) and str(given.get("a53cc", "1")) not in ("0", "false")
        self.captions_lost = (
            "--codec-option a53cc=0 drops them" if writes_captions(encoder) else f"{encoder} cannot carry them"
        )
        self.late_captions = None  # when captions not found before the run first turned up (seconds)
        if self._carry:
            opts = {**opts, "a53cc": "1"}
        if self._warn and self.info.captions and not self._carry:
            log.warning("%s: the input's closed captions (EIA-608/708 in the video) are not kept: %s (h264 and hevc "
                        "keep them)", self.path, self.captions_lost)  # fmt: skip
        return opts

    def _say_late_captions(self) -> None:
        """Closed captions that the check before the run did not find (they start after its first
        minute), which the output did not keep: one warning at the end of the run."""
        if self.late_captions is not None and self._warn:
            log.warning("%s: the input's closed captions (EIA-608/708 in the video), found from %.1f s on, are not "
                        "kept: %s (h264 and hevc keep them)", self.path, self.late_captions, self.captions_lost)  # fmt: skip

    def _setup_video(self, spec: CodecSpec, pf: str, opts: dict[str, str], width: int, height: int) -> None:
        info, fps = self.info, self._fps
        vs: Any = self._out.add_stream(spec.encoder, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pf
        self._video_clock()
        vs.time_base = self._tb
        cc = vs.codec_context
        cc.time_base = self._tb
        cc.framerate = fps
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        self._setup_color(cc, pf, width, height, spec.encoder)
        cc.options = signal_range(spec.encoder, sited(opts, pf), self._tags)
        self._tag_video(cc)
        self._orient(vs)
        self._vs = vs
        self._reformatter = VideoReformatter()
        self._carriers = VideoReformatter()  # `_with_captions`' own: a reformatter keeps one conversion
        self._step = max(1, round(1 / (fps * info.time_base)))
        self._last_pts: int | None = None
        self._last_placed: int | None = None  # the last frame's pts in the output's time base (`_place`)
        step = max(1, round(1 / (fps * self._tb)))
        # (None: a rate that is no frame's, such as 120 for 24 and 30 fps mixed: the last step then)
        self._frame_ticks = frame_ticks(info, step, self._tb)
        self._last_step = step  # between the last two frames written, in the output's time base
        self._durations = OwnDurations()
        self._w, self._h = width, height

    def _video_clock(self) -> None:
        """The output video's time base (`_tb`): the input's, or for a constant-rate input one that
        holds its grid exactly (`VideoInfo.grid`), where `_place` puts each frame."""
        info = self.info
        clock = info.grid.time_base(info.time_base) if info.grid else None
        self._grid = info.grid if clock else None
        self._tb = clock or info.time_base

    def _place(self, pts: int) -> int:
        """Where a frame at `pts` (info.time_base) is stored, in ticks of `_tb` on the input's timeline:
        its place on the grid of a constant-rate input (each moves less than the input's clock rounded
        it by), else its own time. One that would not come after the frame before keeps its own."""
        t = pts * self.info.time_base
        placed = round((self._grid.place(t) if self._grid else t) / self._tb)
        if self._last_placed is not None and placed <= self._last_placed:
            placed = round(t / self._tb)
        return placed

    def _orient(self, vs: Any) -> None:
        """The input's display matrix (a turn, then a mirror) on the output's video, for an encoder's
        stream and a copy of segments alike; none where --rotate apply turned the pixels."""
        if self.info.rotation or self.info.mirrored:
            vs.set_display_rotation(self.info.rotation, hflip=self.info.mirrored)

    def _tag_video(self, cc: Any) -> None:
        """The video's sample entry where the container's default is one some players refuse (HEVC
        in MP4/MOV: hvc1, not hev1), for an encoder's stream and a copy of segments alike."""
        if tag := VIDEO_TAGS.get((self._out.format.name, cc.codec.canonical_name)):
            cc.codec_tag = tag

    def _setup_color(self, cc: Any, pf: str, width: int, height: int, encoder: str) -> None:
        """Colour: keep the input's tags; untagged HD (which players treat as BT.709) is tagged BT.709.
        The matrix is always tagged: players guess an untagged one from the size, each its own way
        (mpv takes 1024x600 for BT.709), so an untagged SD output could be shown with the wrong one.
        Full range is kept where the encoder can say it; else (`VIDEO_RANGE_ONLY`) converted, said."""
        info = self.info
        self._fmt = av.VideoFormat(pf)
        # FFmpeg 8.1's threaded swscale leaves 8 pixels at each slice start undefined (often 512)
        # when it writes more than 8 bits: one thread for those formats, all threads otherwise.
        self._sws_threads = 1 if max(c.bits for c in self._fmt.components) > 8 else 0
        self._is_rgb = self._fmt.is_rgb
        matrix, prim, trc = info.colorspace, info.color_primaries, info.color_trc
        hd = is_hd(width, height)
        if matrix is None or matrix == "gbr":  # RGB (or untagged): BT.2020's for BT.2020 RGB, as HDR10 has it
            matrix = RGB_PRIMARIES_MATRIX.get(prim or "") or assumed_matrix(width, height)
        if prim is None and trc is None and hd and info.colorspace in (None, "gbr"):
            prim, trc = "bt709", "bt709"
        # The input's range; RGB is full whatever its tag says, and becomes limited-range YUV as
        # delivery files are (yuvj: full range, asked for)
        full = info.color_range == "pc" and not is_rgb(info.pix_fmt)
        if full and (codec := VIDEO_RANGE_ONLY.get(encoder)):
            full = False
            if self._warn:
                log.warning("%s: the input is full-range YUV and %s is video range only: converted to video "
                            "(limited) range, the same picture", self.path, codec)  # fmt: skip
        full = full or pf.startswith("yuvj")
        self.full_range = full and not self._is_rgb  # YUV at full range, which the plan says (ffmpeg: yuvj420p)
        self._dst_matrix = SWS_MATRIX.get(matrix, Colorspace.ITU601)
        self._dst_range = ColorRange.JPEG if full or self._is_rgb else ColorRange.MPEG
        self._deep = DeepYuv(pf, self._dst_matrix, full) if is_yuv(self._fmt) else None  # 16-bit RGB, deep YUV
        self._tags = {
            "color_range": 2 if full or self._is_rgb else 1,
            "color_primaries": inverse(PRIMARIES).get(prim or "", 2),
            "color_trc": inverse(TRC).get(trc or "", 2),
            "colorspace": 0 if self._is_rgb else inverse(SPACE).get(matrix, 2),
        }
        for k, v in self._tags.items():
            setattr(cc, k, v)

    def _setup_aux(self, audio: str, subtitles: str, fmt_name: str) -> None:
        """Open the input a second time to copy its audio/subtitles, chapters and metadata: what
        becomes of each stream is decided first (`plan_aux_streams`), then the output streams are
        opened (`_open_aux`), then what the output loses is said (`_say_aux`)."""
        info = self.info
        if info.is_images or not info.path.is_file():
            self._set_zero(time_zero(info, fmt_name, self._start, ()))
            return
        try:
            src = av.open(ffmpeg_name(info.path), metadata_errors="replace")
        except av.FFmpegError as exc:
            what = "audio" if info.has_audio else "subtitles" if info.has_subtitles else "tags and chapters"
            raise InputError(f"{info.path}: cannot reopen to copy its {what} ({ffmsg(exc)})") from None
        self._src = src
        self._set_zero(time_zero(info, fmt_name, self._start, copied_starts(src, audio, subtitles)))
        self._copy_file_extras(src, fmt_name, subtitles)
        vin = src.streams[info.stream_index] if info.stream_index < len(src.streams) else None
        wanted, fates = self._wanted_streams(src, vin, audio, subtitles, fmt_name)
        # (named before an encoder relabels a track's channels in no named order: "2 channels", as the input has them)
        names = {s.index: track_said(s) for s in src.streams.audio}
        decisions = plan_aux_streams(wanted, self.path.suffix.lower(), audio)
        layout = ass_layout(info, self._w, self._h)
        laid_out = self._open_aux(src, decisions, fmt_name, layout)
        fates |= {d.stream.index: d.fate(self._aux.streams[d.stream.index][0]) for d in decisions
                  if d.stream.type == "audio" and d.mode != "refused"}  # fmt: skip
        self.audio_plan = tuple(f"{names[i]}: {fate}" for i, fate in sorted(fates.items()))
        if refused := [d.stream for d in decisions if d.mode == "refused"]:
            raise OutputError(self._refusal(refused, fmt_name))
        self._try_copies(fmt_name)
        if self._warn:
            self._say_aux(decisions, names, laid_out, layout, fmt_name)
        if vin is not None:
            self._tag_video_stream(vin, fmt_name)
        self._say_languages()
        if fmt_name in TAGLESS and self._warn:
            self._say_tagless(src, vin)
        elif self._warn:
            self._say_flags(src, fmt_name)
        if self._warn:
            self._say_layouts(src, fmt_name)
        self._carry_timecode(src, vin, fmt_name)
        if self._aux.streams:
            self._start_aux(src)

    def _copy_file_extras(self, src: Any, fmt_name: str, subtitles: str) -> None:
        """The file's tags, its chapters within the output's span, and its attachments (fonts only
        where the subtitles go)."""
        self._copy_tags(src, fmt_name)
        try:
            chapters = self._chapters_in_span(src.chapters())
            if chapters:
                self._out.set_chapters(chapters)
                self._say_ordered()
        except (AttributeError, av.FFmpegError, ValueError) as exc:  # pragma: no cover
            log.warning("%s: chapters not copied (%s)", self.path, exc)
        self._copy_attachments(src, fmt_name, fonts=subtitles != "none")

    def _wanted_streams(
        self, src: Any, vin: Any, audio: str, subtitles: str, fmt_name: str
    ) -> tuple[list[Any], dict[int, str]]:
        """The audio and subtitle streams the output carries, audio first, each in the input's order
        (those of the upscaled video's own programme: `_own_programme`), and what becomes of the
        audio streams left out, as the plan says it (`audio_plan`)."""
        wanted = []
        fates = {s.index: "left out: empty (no channels, no sound)" for s in src.streams.audio if is_empty_audio(s)}
        if audio != "none":
            wanted += audio_streams(src)
            self._say_empty(src)
        else:
            fates |= {s.index: "dropped (--audio none)" for s in audio_streams(src)}
        if subtitles != "none":
            wanted += list(src.streams.subtitles)
        kept = self._own_programme(src, vin, wanted, fmt_name)
        fates |= {s.index: "left out: another programme's" for s in wanted if s.type == "audio" and s not in kept}
        return kept, fates

    def _open_aux(
        self, src: Any, decisions: list[AuxDecision], fmt_name: str, layout: tuple[int, int] | None
    ) -> list[str]:
        """An output stream for each stream `decisions` keep, in their order, with the stream's own
        tags (`_tag_aux`), noted in `_aux.streams`; a copied audio stream's clock in `_aux.clocks`.
        Returns the ASS streams told the storage size they were laid out for (`_size_subtitles`), as "#3"."""
        laid_out: list[str] = []
        for d in decisions:
            s = d.stream
            if d.mode == "refused":
                continue
            if d.mode == "copy":
                ostream = copy_stream(self._out, s)
                if s.type == "subtitle" and self._size_subtitles(s, ostream, src, layout):
                    laid_out.append(f"#{s.index}")
                if s.type == "audio":
                    self._aux.clocks[s.index] = AudioClock(s, fmt_name, src.format.name, self._lead_in(s, fmt_name))
            elif d.mode == "subtitles":
                ostream = self._text_subtitle_stream(s, d.encoder)
            else:
                ostream = self._audio_encoder(s, d.encoder, d.sample_format)
            self._tag_aux(s, ostream, d.encodes, fmt_name)
            self._aux.streams[s.index] = (ostream, "transcode" if d.encodes else d.mode)
        return laid_out

    def _tag_aux(self, s: Any, ostream: Any, encoded: bool, fmt_name: str) -> None:
        """Input stream `s`'s tags, language and flags on its output stream (`encoded`: made by an
        encoder, whose own the old encoder's name would misname)."""
        for k, v in s.metadata.items():
            # a re-encoded track's ENCODER (Matroska's "Lavc... flac") names the old encoder, as the video's would
            stale = k.startswith("_STATISTICS") or (encoded and k.upper() == "ENCODER")
            if not stale and k not in ("DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS", "encoder"):
                ostream.metadata[k] = v
        if "name" in s.metadata and "title" not in s.metadata:  # mp4 reads its title as "name"
            ostream.metadata["title"] = s.metadata["name"]
        if fmt_name == "mov" and (title := get_tag(ostream.metadata, "title")):
            # MOV has no track title (MP4's "name" is written in MP4 only): its handler name is what
            # QuickTime and ffmpeg show, and `ffmpeg -metadata:s handler_name=` writes
            ostream.metadata["handler_name"] = title
        self._spell_language(ostream, s, fmt_name)
        try:
            ostream.disposition = s.disposition
        except (AttributeError, TypeError, ValueError):  # pragma: no cover
            pass

    def _say_aux(
        self,
        decisions: list[AuxDecision],
        names: dict[int, str],
        laid_out: list[str],
        layout: tuple[int, int] | None,
        fmt_name: str,
    ) -> None:
        """What the output does to the streams `decisions` keep, once they are open: audio few of
        its players play, disc LPCM converted, --audio transcode's re-encodes (`names`: the tracks as
        the plan says them), ASS told its layout (`laid_out`), ASS styling lost to a plain text codec."""
        few: dict[str, list[str]] = {}  # who plays it -> the copied audio streams "#1 (vorbis)"
        for d in decisions:
            if d.mode == "copy" and d.stream.type == "audio" and (plays := few_play(fmt_name, d.codec)):
                few.setdefault(plays, []).append(f"#{d.stream.index} ({d.codec})")
        for plays, streams in few.items():
            log.warning("%s: audio stream%s %s copied into .%s, where few players play %s; %s, and --audio "
                        "transcode makes AAC", self.path, "s" * (len(streams) > 1), ", ".join(streams), fmt_name,
                        "them" if len(streams) > 1 else "it", plays)  # fmt: skip
        if lossless := [(d.stream, d.encoder) for d in decisions if d.mode == "lossless"]:
            self._say_lossless(lossless, fmt_name)
        if recoded := [(names[d.stream.index], d.stream, self._aux.streams[d.stream.index][0]) for d in decisions
                       if d.mode == "transcode"]:  # fmt: skip
            self._say_recoded(recoded)
        if laid_out and layout:
            log.info("%s: ASS subtitles (input stream %s) marked as laid out for a %dx%d picture, the input's "
                     "(LayoutResX/Y), so that libass draws their borders and blur as on the input", self.path,
                     ", ".join(laid_out), *layout)  # fmt: skip
        if unstyled := [f"#{d.stream.index}" for d in decisions if d.mode == "subtitles" and d.codec in ("ass", "ssa")]:
            log.warning("%s: ASS subtitles (input stream %s) converted to %s: their styling (fonts, colours, "
                        "positions) is lost; .mkv keeps it", self.path, ", ".join(unstyled),
                        TEXT_SUBTITLES[fmt_name])  # fmt: skip

    def _tag_video_stream(self, vin: Any, fmt_name: str) -> None:
        """The input video stream's language, title, handler name and flags on the output's video."""
        for k in ("language", "title", "handler_name"):
            # FFmpeg's own handler name is what its muxer writes anyway; copied, the MOV muxer also
            # names the tmcd track by it (a name of the input's own is kept there too: one for both)
            if k in vin.metadata and (k, vin.metadata[k]) != ("handler_name", FFMPEG_VIDEO_HANDLER):
                self._vs.metadata[k] = vin.metadata[k]
        self._spell_language(self._vs, vin, fmt_name)
        self._vs.disposition = vin.disposition  # default, forced, ... as the input's video had them

    def _start_aux(self, src: Any) -> None:
        """The packets of the streams kept, in order (`_pump_aux`): from a --preview's start, less
        a margin (a subtitle cue already on screen there; an MPEG-TS/PS seek can land late)."""
        if self._preview and self._t0 is not None:
            subtitles_in = any(src.streams[i].type == "subtitle" for i in self._aux.streams)
            lookback = SUBTITLE_LOOKBACK_S if subtitles_in else AUX_SEEK_MARGIN_S
            src.seek(int(max(Fraction(0), self._t0 - lookback) * av.time_base), backward=True)
        self._aux.packets = continuous_packets(src, [src.streams[i] for i in self._aux.streams])

    def _try_copies(self, fmt_name: str) -> None:
        """Mux the first packet of each copied audio stream into a file in memory and close it
        (`copy_refused`), so that a muxer that refuses one only as it closes (at the join, after the
        whole run) is heard now. The refusal names the stream, the muxer's reason and the ways out."""
        copied = [i for i, (ostream, mode) in self._aux.streams.items() if mode == "copy" and ostream.type == "audio"]
        if not copied:
            return
        with av.open(ffmpeg_name(self.info.path), metadata_errors="replace") as src:
            firsts: dict[int, av.Packet] = {}
            for n, p in enumerate(src.demux(*(src.streams[i] for i in copied))):
                if p.size and p.dts is not None:
                    firsts.setdefault(p.stream.index, p)
                if len(firsts) == len(copied) or n > TRIAL_PACKETS:
                    break
            for i, p in sorted(firsts.items()):
                if (why := copy_refused(fmt_name, src.streams[i], p)) is None:
                    continue
                s, own = src.streams[i], self.path.suffix.lower()
                held = [ext for ext, fmt in sorted(VIDEO_EXTENSIONS.items()) if ext != own and fmt != fmt_name
                        and holds_aux(ext, s) and copy_refused(fmt, s, p) is None]  # fmt: skip
                where = f"write to an extension that holds it ({', '.join(held)}) or " if held else ""
                raise OutputError(f"{self.path}: the {fmt_name} container cannot hold audio stream #{i} "
                                  f"({s.codec_context.codec.canonical_name}) as a copy: its muxer refuses it ({why}); "
                                  f"{where}use --audio transcode to re-encode it or --audio none to drop it")  # fmt: skip

    def _size_subtitles(self, s: Any, ostream: Any, src: Any, layout: tuple[int, int] | None) -> bool:
        """A copied subtitle stream's header says the picture it is drawn on (`subtitle_headers`):
        a DVD stream's its canvas, an ASS script's (`layout`: the storage size it was laid out for,
        None when the output has it) LayoutResX/Y; True when those were added. A stream drawn at
        places on the picture (ASS, bitmaps) is noted in `placed_subtitles`."""
        canonical, header = s.codec_context.codec.canonical_name, None
        styled = canonical in ("ass", "ssa")
        if canonical == "dvd_subtitle":
            header = sized_dvdsub_header(s.codec_context.extradata, src)
        elif styled and layout:
            header = laid_out_ass_header(s.codec_context.extradata, layout)
        if header:
            ostream.codec_context.extradata = header
        if styled or not s.codec_context.codec.text_sub:
            title = s.metadata.get("title")
            self.placed_subtitles += (f"#{s.index}" + (f" '{title}'" if title else ""),)
        return styled and header is not None

    def _say_empty(self, src: Any) -> None:
        """The input's empty audio streams (`is_empty_audio`), left out: one info line."""
        if (empty := [f"#{s.index}" for s in src.streams.audio if is_empty_audio(s)]) and self._warn:
            log.info("%s: input audio stream%s %s left out: empty (no channels, no sound), as FFmpeg lists one beside "
                     "each TrueHD track of an MPEG-TS", self.path, "s" * (len(empty) > 1), ", ".join(empty))  # fmt: skip

    def _refusal(self, refused: list[Any], fmt_name: str) -> str:
        """The one line for the audio and subtitle streams (`refused`) the container cannot hold: all of
        them, with the extensions that hold them all and the options that leave them out."""
        named: dict[str, list[str]] = {}  # "truehd audio" -> its input streams
        for s in refused:
            kind = "audio" if s.type == "audio" else "subtitles"
            name = (
                s.codec_context.codec.canonical_name if kind == "audio" else s.codec_context.name
            )  # (mp3, not mp3float)
            named.setdefault(f"{name} {kind}", []).append(f"#{s.index}")
        what = ", ".join(f"{k} (input stream{'s' * (len(ix) > 1)} {', '.join(ix)})" for k, ix in named.items())
        sound = [s for s in refused if s.type == "audio"]
        it = "it" if len(sound) == 1 else "them"
        if sound and len(sound) < len(refused):
            held, way = "them all", "use --audio transcode to re-encode the audio or --audio none to drop it, and "
            way += "--subtitles none"
        elif sound:
            held, way = it, f"use --audio transcode to re-encode {it} or --audio none to drop {it}"
        else:
            held, way = "them", "use --subtitles none"
        elsewhere = holders(refused, self.path.suffix.lower())
        where = f"write to an extension that holds {held} ({', '.join(elsewhere)}) or " if elsewhere else ""
        return f"{self.path}: the {fmt_name} container cannot hold {what}; {where}{way}"

    def _say_recoded(self, recoded: list[tuple[str, Any, Any]]) -> None:
        """--audio transcode's re-encodes, a line each (it was -v only): a lossless track (PCM, FLAC)
        made lossy is a loss, warned; a lossy one is told, with what it becomes."""
        for said, s, ostream in recoded:
            codec = s.codec_context.codec
            if codec.lossless and not codec.lossy:  # (WavPack and DTS may be either: told)
                log.warning("%s: audio stream %s, lossless, re-encoded to %s, lossy (--audio transcode); --audio copy "
                            "keeps it as it is", self.path, said, encoded_as(ostream))  # fmt: skip
            else:
                note.info("%s: audio stream %s re-encoded to %s (--audio transcode)", self.path, said,
                          encoded_as(ostream))  # fmt: skip

    def _say_lossless(self, converted: list[tuple[Any, str]], fmt_name: str) -> None:
        """Disc LPCM the container cannot hold, converted losslessly (`lossless_target`): one warning,
        naming the extensions that keep it as it is."""
        streams = [s for s, _ in converted]
        codecs = sorted({s.codec_context.codec.canonical_name for s in streams})
        done = ", ".join(f"#{s.index} to {encoder}" for s, encoder in converted)
        kept = [ext for ext in sorted(VIDEO_EXTENSIONS) if all(holds_aux(ext, s) for s in streams)]
        log.warning("%s: the %s container cannot hold %s audio: converted losslessly (the same samples), input "
                    "stream%s %s%s", self.path, fmt_name, " or ".join(codecs), "s" * (len(streams) > 1), done,
                    f"; {', '.join(kept)} keep{'s' * (len(kept) == 1)} it as it is" if kept else "")  # fmt: skip

    def _flags_lost(self, src: Any, fmt_name: str) -> list[str]:
        """The flags (default, comment, forced...) of the copied streams that the container drops, as
        "#1 (default, comment)"."""
        lost = [(s, lost_flags(fmt_name, s)) for s in (src.streams[i] for i in self._aux.streams)]
        return [f"#{s.index} ({', '.join(flags)})" for s, flags in lost if flags]

    def _say_flags(self, src: Any, fmt_name: str) -> None:
        """The stream flags the container drops (`KEPT_FLAGS`), in one warning (MPEG-TS: `_say_tagless`)."""
        if lost := self._flags_lost(src, fmt_name):
            mkv = not self._flags_lost(src, "matroska")
            log.warning("%s: .%s does not keep every stream flag; not kept: the flags of stream%s %s%s", self.path,
                        self.path.suffix.lstrip(".").lower(), "s" * (len(lost) != 1), ", ".join(lost),
                        " (.mkv keeps them)" * mkv)  # fmt: skip

    def _say_layouts(self, src: Any, fmt_name: str) -> None:
        """The channel layouts of the audio tracks that the container stores only as a channel count
        (`layout_lost`: PCM in .mkv), in one warning."""
        lost = []
        for i, (ostream, _) in self._aux.streams.items():
            layout = src.streams[i].codec_context.layout if ostream.type == "audio" else None
            if layout is not None and layout_lost(fmt_name, ostream.codec_context.name, layout):
                lost.append(f"#{i} ({layout_name(layout)})")
        if lost:
            log.warning("%s: .%s stores a PCM track's channel count, not its layout; not kept: the channel layout%s "
                        "of audio stream%s %s (.mov keeps them)", self.path, self.path.suffix.lstrip(".").lower(),
                        "s" * (len(lost) > 1), "s" * (len(lost) > 1), ", ".join(lost))  # fmt: skip

    def _own_programme(self, src: Any, vin: Any, wanted: list[Any], fmt_name: str) -> list[Any]:
        """The audio and subtitle streams of `wanted` that go with the video upscaled (`vin`): in an
        MPEG-TS of several programmes (broadcast services), its own programme's, as a viewer tuned to
        it hears them (a stream no programme lists is kept); elsewhere all. What is left out, the
        other video streams included, is said in one warning. A .ts output keeps the programme's
        number and service name."""
        programmes = ts_programmes(self.info.path) if vin is not None and "mpegts" in src.format.name else []
        own = programme_of(programmes, vin.id) if vin is not None else None
        if own is not None and fmt_name == "mpegts":
            self._out.container_options["mpegts_service_id"] = str(own.number)
            if own.name:
                self._out.metadata.update({"service_name": own.name, "service_provider": own.provider})
        others = [s for s in wanted if own is not None and s.id not in own.pids and programme_of(programmes, s.id)]
        videos = [s for s in src.streams.video if not is_picture(s) and s is not vin]
        if self._warn and (videos or others):  # (a radio service of a multiplex has no video)
            left: dict[str, list[str]] = {}  # a programme (or "") -> its streams left out
            for s in sorted(videos + others, key=lambda s: s.index):
                where = programme_of(programmes, s.id) if own is not None else None
                what = f"{s.type} #{s.index}" + (f" {s.width}x{s.height}" if s.type == "video" else "")
                left.setdefault(where.label() if where is not None and where is not own else "", []).append(what)
            said = "; ".join(
                f"{label}: {', '.join(what)}" if label else ", ".join(what) for label, what in left.items()
            )
            kept = (
                f"{own.label()} (video #{vin.index} with its own audio and subtitles)" if own else f"video #{vin.index}"
            )
            log.warning("%s: dove upscales one video stream, %s; left out: %s%s", self.path, kept, said,
                        " (--video-stream N picks another)" if videos else "")  # fmt: skip
        return [s for s in wanted if s not in others]

    def _spell_language(self, ostream: Any, s: Any, fmt_name: str) -> None:
        """MP4 and MOV store a language as three letters (ISO 639-2), and FFmpeg writes any other tag
        as undetermined: input stream `s`'s language is written as the code of its language
        (`iso639_2`: pt-BR as por, mi as mri, which drops a BCP-47 tag's region or script); a .mov keeps
        only the languages of QuickTime's old table, each in one spelling (`mov_language`: deu as
        ger). What changed is noted for `_say_languages`. Other containers keep any tag."""
        code = ostream.metadata.get("language", "")
        if fmt_name not in ("mp4", "mov") or code in NO_LANGUAGE:
            return
        three = iso639_2(code)
        kept = mov_language(three) if fmt_name == "mov" and three else three
        if kept is None:
            self._untagged.append((s.index, code))
        elif kept != code:
            ostream.metadata["language"] = kept
            narrowed = len(code.replace("_", "-").split("-")[0]) < len(code)  # a region or script dropped
            (self._narrowed if narrowed else self._respelled).append(f"#{s.index} {code} as {kept}")

    def _say_languages(self) -> None:
        """What `_spell_language` did, once: languages respelled (an info line: nothing is lost), and
        those that lost their region or script or were written untagged (a warning each)."""
        ext = self.path.suffix.lower()
        if self._respelled and self._warn:
            log.info("%s: language%s written as the ISO 639-2 code %s keeps: %s", self.path,
                     "s" * (len(self._respelled) > 1), ext, ", ".join(self._respelled))  # fmt: skip
        if self._narrowed and self._warn:
            n = len(self._narrowed)
            log.warning("%s: %s stores a language as its three-letter ISO 639-2 code, without a region or script; "
                        "input stream%s %s (.mkv keeps %s whole)", self.path, ext, "s" * (n > 1),
                        ", ".join(self._narrowed), "them" if n > 1 else "it")  # fmt: skip
        if self._untagged and self._warn:
            n = len(self._untagged)
            codes = [code for _, code in self._untagged]
            mp4 = ext != ".mp4" and all(iso639_2(code) for code in codes)  # (.mp4: any ISO 639-2 code)
            as_codes = ", ".join(f"{iso639_2(code)}" for code in codes if iso639_2(code) != code)
            them = "them" if n > 1 else "it"
            if not mp4:
                kept = f".mkv keeps {them}"
            elif as_codes:
                kept = f".mp4 keeps {them} (as {as_codes}) and .mkv whole"
            else:
                kept = f".mp4 and .mkv keep {them}"
            log.warning("%s: %s holds no tag for the language of input stream%s %s: written untagged; %s", self.path,
                        ext, "s" * (n > 1), ", ".join(f"#{i} ({code})" for i, code in self._untagged), kept)  # fmt: skip

    def _audio_encoder(self, s: Any, target: str, sample_format: str | None = None) -> Any:
        """An output stream that encodes audio stream `s` as `target` (aac, libopus; flac...: in
        `sample_format`), opened now so that what the encoder refuses is one line before the run, not a
        failure at its first frame (nor a traceback: a layout FFmpeg has no name for). Channels
        in no named order (PCM from capture software) get the usual layout of their count, without
        which the AAC encoder does not start: the decoder's too, so that its frames are relabelled,
        not remixed (a resampler from 3 unnamed channels to 3.0 left the third one silent)."""
        cc = s.codec_context
        rate = cc.sample_rate or 48000
        if target == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
            rate = 48000
        layout = cc.layout
        try:
            if layout.name == f"{layout.nb_channels} channels":  # FFmpeg's name for an unspecified order
                layout = av.AudioLayout(DEFAULT_LAYOUTS.get(layout.nb_channels, layout.name))
                cc.layout = layout
            ostream: Any = self._out.add_stream(target, rate=rate, layout=layout)
            if sample_format:
                ostream.codec_context.format = sample_format
            ostream.codec_context.open()
        except (av.FFmpegError, ValueError) as exc:
            why = ffmsg(exc) if isinstance(exc, av.FFmpegError) else str(exc)
            raise OutputError(f"{self.path}: audio stream #{s.index} ({cc.codec.canonical_name}, {layout.name}, {rate} Hz) cannot be "
                              f"encoded as {target} ({why}); use --audio copy or none") from None  # fmt: skip
        return ostream

    def _set_zero(self, t0: Fraction | None) -> None:
        """Put the output's time 0 at `t0` on the input's timeline (`time_zero`), and say why where it
        is not a --preview's start: a start below 0 (the output cannot hold it), a clock (as ffmpeg)."""
        self._t0, self._shift = t0, round(t0 / self._tb) if t0 is not None else 0  # in the video's ticks
        if t0 is None or self._start is not None or not self._warn:
            return
        if t0 < 0:
            note.info("%s: the input's timestamps start at %.3f s, which the output cannot hold: every stream "
                      "moves %.3f s later (the earliest starts at 0), as ffmpeg does", self.path, float(t0),
                      float(-t0))  # fmt: skip
        else:
            log.info("%s: the input's clock starts at %.3f s (an MPEG-TS/PS recording's): the output starts at 0, "
                     "every stream moved alike, as ffmpeg does (.ts output keeps the clock)", self.path, float(t0))  # fmt: skip

    def _lead_in(self, s: Any, fmt_name: str) -> int:
        """Samples at an audio stream's start that an MP4/MOV input hides with its edit list: encoder
        priming (AAC's first 1024), or what an ffmpeg -ss -c copy cut leaves out before its first
        frame. Matroska hides priming with CodecDelay, which its muxer writes from the stream's initial
        padding: FFmpeg 8.1's MOV demuxer does not set that (FFmpeg 9's ffmpeg does) and PyAV cannot, so
        the muxer moves every stream later instead: the samples play, before the first frame, in step
        with it. Of a cut's, the packets wholly before it are left out (`lead_in`: the decoder's
        pre-roll kept), the number returned. Said, with what keeps them hidden."""
        if s.type != "audio" or fmt_name not in ("matroska", "webm") or not (rate := s.codec_context.sample_rate):
            return 0
        if self._src is None or "matroska" in self._src.format.name or self._preview:
            return 0  # Matroska carries its CodecDelay over; a --preview starts after the priming
        skip, durations = 0, list[int]()
        with av.open(ffmpeg_name(self.info.path)) as probe_src:
            for p in probe_src.demux(probe_src.streams[s.index]):
                if not p.size:
                    continue
                if not durations:
                    skip = skip_samples(p)[0]
                durations.append(round(p.duration * p.time_base * rate) if p.duration and p.time_base else 0)
                if sum(durations) > skip + PREROLL.get(s.codec_context.codec.canonical_name, 0):
                    break
        dropped = lead_in(skip, durations, PREROLL.get(s.codec_context.codec.canonical_name, 0))
        played = skip - sum(durations[:dropped])
        if played and self._warn:
            ms, ext = 1000 * played / rate, self.path.suffix.lstrip(".").lower()
            what = f"{played} samples of encoder priming ({ms:.1f} ms)"
            if dropped:  # a cut: more than the codec's delay lies before it
                what = (f"{played} samples ({ms:.1f} ms) from before the input's edit point (a cut; the "
                        f"{1000 * (skip - played) / rate:.1f} ms before them are left out)")  # fmt: skip
            log.warning("%s: audio stream #%d starts with %s, which the input hides and this FFmpeg cannot mark "
                        "in .%s: they play, and every stream starts %.1f ms later (picture and sound stay in "
                        "step); .mp4 and .mov hide them", self.path, s.index, what, ext, ms)  # fmt: skip
        return dropped

    def _exact_movie_clock(self, fmt_name: str) -> None:
        """MOV/MP4 say where a track starts (its edit list) in the movie's timescale: 1000 by default
        in PyAV's FFmpeg 8.1, so audio starting 0.478667 s in would start at 0.478. The least common
        multiple of the rates the tracks count time in keeps every start exact, as FFmpeg 9 does."""
        if fmt_name not in ("mp4", "mov"):
            return
        scale = math.lcm(*(s.time_base.denominator for s in self._out.streams if s.time_base))
        if scale < 2**31:
            self._out.container_options["movie_timescale"] = str(scale)

    def _copy_tags(self, src: Any, fmt_name: str) -> None:
        """The file's tags; MOV/MP4 store them as QuickTime keys (mdta) when some key, such as a
        phone's com.apple.quicktime.make, would be lost otherwise. MPEG-TS keeps none: said. FFmpeg
        writes an MP4's cover art only where its standard tags go, which such keys replace: with a
        cover, the cover and the standard tags are kept, and the other keys said lost."""
        tags = file_tags(src)
        keys = mdta_keys(fmt_name, tags)
        if keys and fmt_name == "mp4" and mp4_covers(src):
            if self._warn:
                log.warning("%s: the tag%s %s not kept: FFmpeg writes an .mp4's cover art or such tags (as QuickTime "
                            "keys), not both, and the cover is kept (.mkv keeps both)", self.path,
                            "s" * (len(keys) > 1), ", ".join(keys) + (" are" if len(keys) > 1 else " is"))  # fmt: skip
            keys = []  # (the default way drops them)
        if (left := tags_left(src)) and self._warn:
            log.warning("%s: the input has %s file tags: the first %s kept, the other %s not copied", self.path,
                        f"{len(tags) + left:,}", f"{len(tags):,}", f"{left:,}")  # fmt: skip
        self._out.metadata.update(tags)
        if keys:
            flags = self._out.container_options.get("movflags")
            self._out.container_options["movflags"] = f"{flags}+use_metadata_tags" if flags else "+use_metadata_tags"
            if self._warn:
                log.info("%s: tags written as QuickTime keys (mdta) to keep %s", self.path, ", ".join(keys))

    def _say_ordered(self) -> None:
        """Matroska's ordered chapters (an edition played as its list of chapters, which may play parts of
        other files) become plain ones: FFmpeg neither reads nor writes the flag (`chapter_order`)."""
        ordered, linked = chapter_order(self.info.path) if self._warn else (False, False)
        if ordered:
            log.warning("%s: ordered chapters are not kept (FFmpeg cannot write them): the output plays straight "
                        "through%s", self.path, ", without the parts of other files its chapters link" * linked)  # fmt: skip

    def _say_tagless(self, src: Any, vin: Any) -> None:
        """MPEG-TS keeps the streams' languages but no file tags, chapters or stream titles, and few of
        their flags (`KEPT_FLAGS`): what the input had of them is said, in one warning."""
        lost = list(file_tags(src))
        if n := len(self._chapters_in_span(src.chapters())):
            lost.append(f"{n} chapter{'s' * (n != 1)}")
        streams = ([vin] if vin is not None else []) + [src.streams[i] for i in self._aux.streams]
        if titled := [f"#{s.index} {get_tag(s.metadata, 'title')!r}" for s in streams if get_tag(s.metadata, "title")]:
            lost.append(f"the titles of stream{'s' * (len(titled) != 1)} {', '.join(titled)}")
        elsewhere = ".mkv keeps them all, .mp4 and .mov too"
        if flagged := self._flags_lost(src, "mpegts"):
            lost.append(f"the flags of stream{'s' * (len(flagged) != 1)} {', '.join(flagged)}")
            elsewhere = ".mkv keeps them all" if not self._flags_lost(src, "matroska") else ".mkv keeps more"
        if lost:
            log.warning("%s: MPEG-TS keeps no file tags, chapters or stream titles%s; not kept: %s (%s)", self.path,
                        ", nor most stream flags (default, comment, forced...)" * bool(flagged), ", ".join(lost),
                        elsewhere)  # fmt: skip

    def _carry_timecode(self, src: Any, vin: Any, fmt_name: str) -> None:
        """Find the input's start timecode, to tag the output's video stream with at its first frame
        (`_stamp_timecode`), and its reel name; say why when the output cannot have them. Data streams other than the
        timecode's (tmcd) and the chapters' (a MOV/MP4 chapter track) are not copied: said too."""
        data = [s for s in src.streams
                if s.type == "data" and not get_tag(s.metadata, "timecode") and not is_chapter_track(src, s)]  # fmt: skip
        if (navigation := [f"#{s.index}" for s in data if s.name == "dvd_nav_packet"]) and self._warn:
            log.info("%s: the input's DVD navigation data (stream %s), which means nothing outside a DVD, is not "
                     "copied", self.path, ", ".join(navigation))  # fmt: skip
        others = [f"#{s.index} ({s.name or s.metadata.get('handler_name') or 'unknown'})" for s in data
                  if s.name != "dvd_nav_packet"]  # fmt: skip
        if others and self._warn:
            log.warning("%s: input data stream%s %s not copied (dove copies video, audio, subtitles, chapters, tags "
                        "and the timecode)", self.path, "s" if len(others) > 1 else "", ", ".join(others))  # fmt: skip
        tc, reel = find_timecode(src, vin), find_reel(src, vin)
        if tc is None:
            return
        rate = stream_rate(vin) if vin is not None else self._fps
        countable = move_timecode(tc, rate, self._fps, 0) is not None
        if fmt_name in TAGLESS:
            why = "MPEG-TS cannot hold it (.mov, .mp4 and .mkv can)"
        elif not countable and fmt_name in ("mov", "mp4"):
            why = f"it is not a timecode at {float(self._fps):.3g} frames/s"
        elif not countable and self._preview:
            why = "dove cannot count it on to the --preview start"
        else:
            self._timecode = tc, rate
            if reel and fmt_name == "mp4":  # FFmpeg's MP4 muxer writes no reel name into a tmcd track
                if self._warn:
                    log.warning("%s: the input's reel name %s not kept: .mp4 cannot hold it (.mov and .mkv can); "
                                "the timecode %s is", self.path, reel, tc)  # fmt: skip
            elif reel:  # the MOV muxer writes the video's into its tmcd track; Matroska keeps a REEL_NAME tag
                self._vs.metadata["reel_name"] = reel
            return
        if self._warn:
            log.warning("%s: the input's timecode %s not kept: %s", self.path, timecode_said(tc, reel), why)

    def _stamp_timecode(self, pts: int) -> None:
        """Tag the video stream, before the file's header is written, with the timecode of its first
        frame (at `pts`): the input's, counted on by the frames before it (a --preview starts later)."""
        if self._timecode is None:
            return
        tc, rate = self._timecode
        frames = round((pts - self.info.start_pts) * self.info.time_base * self._fps)
        self._vs.metadata["timecode"] = move_timecode(tc, rate, self._fps, frames) or tc
        if self._preview:
            log.info("%s: timecode %s (the input's %s, %d frames on)", self.path, self._vs.metadata["timecode"],
                     tc, frames)  # fmt: skip

    def _copy_attachments(self, src: Any, fmt_name: str, fonts: bool) -> None:
        """Matroska attachments go along untouched (bytes, file name, MIME type): the fonts that ASS
        subtitles are styled with (`fonts`: when the subtitles go), and cover art, which FFmpeg
        reads as a picture stream. MP4 holds cover art (a JPEG, PNG or BMP, as its covr atom),
        muxed as one packet at the end; other containers hold none (`attachments_dropped`)."""
        if fmt_name == "mp4":
            for s in mp4_covers(src):
                ostream = self._out.add_stream_from_template(s)
                ostream.disposition = av.stream.Disposition.attached_pic
                self._covers.append((ostream, self._picture(s.index)))
            return
        if fmt_name != "matroska":
            return
        for s in attachment_streams(src):
            if s.type == "attachment" and not fonts:
                continue
            if s.type == "attachment":
                data, mimetype = bytes(s.data), s.mimetype
            else:
                data, mimetype = self._picture(s.index), PICTURE_TYPES.get(s.codec_context.name)
            kind = PICTURE_TYPES.get(s.codec_context.name, "") if s.type != "attachment" else ""
            cover = f"cover.{kind.split('/')[1].replace('jpeg', 'jpg')}" if kind else ""  # an MP4's covr has no name
            name = s.metadata.get("filename") or cover or f"attachment_{s.index}"
            mimetype = s.metadata.get("mimetype") or mimetype or "application/octet-stream"
            att = self._out.add_attachment(name, mimetype, data)
            att.metadata.update({k: v for k, v in s.metadata.items() if k not in ("filename", "mimetype")})

    def _picture(self, index: int) -> bytes:
        """Cover art's bytes: the one packet its stream has, which the demuxer hands out first."""
        with av.open(ffmpeg_name(self.info.path)) as c:
            return picture_bytes(c, c.streams[index])

    def _text_subtitle_stream(self, s: Any, target: str) -> Any:
        """An output stream that re-encodes text subtitle stream `s` as `target` (srt -> mov_text...)."""
        dec = s.codec_context
        dec.open(strict=False)  # makes its ASS header, which the encoder starts from (as ffmpeg does)
        ostream: Any = self._out.add_stream(target)
        ostream.time_base = ostream.codec_context.time_base = s.time_base
        ostream.codec_context.subtitle_header = dec.subtitle_header
        ostream.codec_context.open(strict=False)  # before the header is written: mov_text's extradata
        log.info("%s: subtitle stream #%d (%s) converted to %s", self.path, s.index, dec.name, target)
        return ostream

    def _convert_subtitle(self, p: av.Packet, ostream: Any) -> None:
        """Re-encode one text subtitle packet for the output's text codec, with the same timing. A
        WebVTT track holds cues that overlap, so each goes as it comes; an MP4/MOV text track plays
        one sample after another, so its cues go through a `Sequencer`, which gives the time two
        cues share a sample of its own that holds both (ffmpeg cuts the first short there)."""
        source, pts, tb = p.stream.index, p.pts, Fraction(p.time_base or 1)
        if pts is None:
            return
        try:
            cue = p.stream.codec_context.decode2(p)
            if cue is None or not len(cue):  # an empty sample (MP4 fills gaps between cues with them)
                return
            if ostream.codec_context.name != "mov_text":
                self._mux_cue(ostream.codec_context.encode_subtitle(cue), source, tb, pts, p.duration)
                return
            if any(sd.data_type == "webvtt_settings" and bytes(sd).strip() for sd in p.iter_sidedata()):
                self._aux.unplaced[source] = self._aux.unplaced.get(source, 0) + 1  # (said by `_end_cues`)
            timed = Cue(pts, pts + p.duration if p.duration else None, one_event([r.ass for r in cue]))
            for sample in self._aux.sequencers.setdefault(source, (Sequencer(), tb))[0].push(timed):
                self._mux_sample(sample, source)
        except av.FFmpegError as exc:
            log.warning("%s: skipped a subtitle that could not be converted (%s)", self.info.path, ffmsg(exc))

    def _mux_sample(self, sample: Cue, source: int) -> None:
        """Encode and mux one mov_text sample that a `Sequencer` gave for input stream `source`."""
        duration = sample.end - sample.start if sample.end is not None else 0
        made = SubtitleSet.create(sample.ass, 0, duration)
        q = self._aux.streams[source][0].codec_context.encode_subtitle(made)
        self._mux_cue(q, source, self._aux.sequencers[source][1], sample.start, duration)

    def _mux_cue(self, q: av.Packet, source: int, tb: Fraction, pts: int, duration: int | None) -> None:
        """Mux cue `q`, converted from input stream `source`, at `pts` for `duration` (ticks of `tb`)."""
        q.pts, q.dts, q.time_base = pts, pts, tb
        if duration:
            q.duration = duration
        q.stream = self._aux.streams[source][0]
        self._mux_aux(q, source)

    def _end_cues(self) -> None:
        """Mux the mov_text samples the `Sequencer`s still hold, and say where cues overlapped and
        which WebVTT cue settings (line, position, align) mov_text had no place for."""
        if self._aux.unplaced:  # (said by the writer that copies the subtitles: a run's last, warn or not)
            log.warning("%s: mov_text has no place for WebVTT cue settings (line, position, size, align): not kept "
                        "for %s; .mkv and .webm keep them", self.path,
                        ", ".join(f"{n} cue{'s' * (n > 1)} of subtitle stream #{i}" for i, n in self._aux.unplaced.items()))  # fmt: skip
        for source, (sequencer, _) in self._aux.sequencers.items():
            for sample in sequencer.flush():
                self._mux_sample(sample, source)
            if sequencer.overlapping:
                log.info("%s: %d overlapping cues of subtitle stream #%d shown together where they overlap, as an "
                         "MP4/MOV text track shows one sample at a time", self.path, sequencer.overlapping,
                         source)  # fmt: skip

    # -- writing
    def _mux(self, packets: av.Packet | list[av.Packet]) -> None:
        for p in packets if isinstance(packets, list) else [packets]:
            try:
                self._out.mux(p)
            except (av.FFmpegError, OSError) as exc:
                self._fail(exc, p)
            self._muxed = (self._muxed[0] + 1, self._muxed[1] + p.size)

    def _fail(self, exc: BaseException, p: av.Packet | None = None) -> None:
        """Abort, and raise the error naming the stream and the time (from the first frame) of packet `p`."""
        self.abort()
        if p is None or p.stream is None:
            raise write_failed(self.path, exc, ffmsg(exc), written=self._muxed) from None
        t = p.dts if p.dts is not None else p.pts
        when = "" if t is None or not p.time_base else f" at t={float(t * p.time_base + self._zero):.3f}s"
        kind = p.stream.type
        detail = f"{ffmsg(exc)}, {kind} stream #{p.stream.index}{when}"
        raise write_failed(self.path, exc, detail, kind, self._muxed) from None

    @property
    def _zero(self) -> Fraction:
        """The output's time 0 in seconds from the first frame (what `_shift` and `_in_span` take away)."""
        return (self._t0 if self._t0 is not None else Fraction(0)) - self._origin

    def _mux_aux(self, p: av.Packet, source: int) -> None:
        """Mux an audio or subtitle packet of input stream `source` so that its stream's dts keep
        going forward, which every muxer needs (a splice of two recordings may overlap). Audio that
        goes back is dropped: it covers time the stream has played already, and what follows stays
        in step with the picture; ffmpeg moves such packets to just after the one before instead,
        which plays all of them and puts the sound after them late. A subtitle is moved so (a
        dropped cue would be text lost), with its pts not before its dts. Said once a stream at
        close (`_report_disorder`). A dts equal to that of the packet just before (a tie, not a step
        back) is moved a tick on instead, as ffmpeg does, where the muxer wants them rising (MPEG-TS):
        Matroska's millisecond times give one TrueHD packet in 6 (1200 a second) the time of the one
        before, and dropping those lost a sixth of the sound."""
        ostream: Any = p.stream
        last = self._aux.dts.get(ostream.index)
        given = muxed = None  # this packet's dts in the muxer's time base, as given and as muxed
        self._out.start_encoding()  # the header, which sets the streams' time bases (once: the first packet
        # muxed may be audio, while the encoder holds the first video packets back)
        if p.dts is not None and p.time_base and ostream.time_base:
            tb = Fraction(ostream.time_base)  # the muxer's
            given = muxed = _rescale(p.dts, Fraction(p.time_base), tb)
            floor = last[0] + (0 if self._out.format.flags & AVFMT_TS_NONSTRICT else 1) if last else given
            if last is not None and given < floor:
                muxed_top, previous = last[1], last[2]
                if given < muxed_top or (given == muxed_top and previous != given):  # back, not a tie
                    self._aux.disorder.setdefault(source, []).append(float(p.dts * p.time_base + self._zero))
                    if ostream.type == "audio":
                        self._aux.dts[ostream.index] = (last[0], muxed_top, given)
                        return
                pts = _rescale(p.pts, Fraction(p.time_base), tb) if p.pts is not None else floor
                duration = _rescale(p.duration, Fraction(p.time_base), tb) if p.duration else 0
                p.time_base, p.dts, p.pts = tb, floor, max(pts, floor)
                muxed = floor
                if duration:
                    p.duration = duration
        try:
            self._out.mux(p)
        except av.InvalidDataError as exc:  # a damaged packet (an AAC frame of a capture's lost stretch)
            if ostream.type != "audio":
                self._fail(exc, p)
            self._aux.damaged.setdefault(source, []).append(float((p.dts or 0) * (p.time_base or 0) + self._zero))
            return  # left out, said at close: the rest of the sound goes on, a run's frames are kept
        except (av.FFmpegError, OSError) as exc:
            self._fail(exc, p)
        if given is not None and muxed is not None:
            self._aux.dts[ostream.index] = (muxed, max(given, last[1]) if last else given, given)

    def _report_disorder(self) -> None:
        """One warning a stream for the packets `_mux_aux` dropped or moved."""
        for source, times in self._aux.disorder.items():
            n, kind = len(times), self._aux.streams[source][0].type
            done = "moved to just after the one before"
            if kind == "audio":
                done = "dropped (they overlap the sound before them)"
            log.warning("%s: %d %s packet%s of input stream #%d went back in time (%s, a splice?); %s",
                        self.path, n, kind, "s" * (n != 1), source, time_span(sorted(times)), done)  # fmt: skip
        self._aux.disorder.clear()
        for source, times in self._aux.damaged.items():
            n = len(times)
            log.warning("%s: %d audio packet%s of input stream #%d refused as damaged by the muxer (%s); left "
                        "out, a gap in the sound", self.path, n, "s" * (n != 1), source, time_span(sorted(times)))  # fmt: skip
        self._aux.damaged.clear()

    def write(self, rgb: np.ndarray, pts: int | None = None, captions: av.VideoFrame | None = None) -> None:
        """Encode one frame; pts in info.time_base (None: previous + one frame at info.fps); captions:
        the input frame's closed captions (`Frame.captions`), kept where the encoder writes them."""
        if self._done:
            raise OutputError(f"{self.path}: writer is already closed")
        if rgb.shape != (self._h, self._w, 3):
            raise ValueError(f"frame shape {rgb.shape} != ({self._h}, {self._w}, 3)")
        if pts is None:
            pts = self.info.start_pts if self._last_pts is None else self._last_pts + self._step
        elif self._last_pts is not None and pts <= self._last_pts:
            log.warning("%s: pts %d not increasing; using %d", self.path, pts, self._last_pts + 1)
            pts = self._last_pts + 1
        if self._deep is not None and self._deep.needed(rgb):
            frame = self._deep.convert(rgb_frame(rgb))
        else:
            frame = self._rgb_to_yuv(rgb)
        if captions is not None and self._carry:
            frame = self._with_captions(frame, captions)
        elif captions is not None and not self.info.captions and self.late_captions is None:
            self.late_captions = float((pts - self.info.start_pts) * self.info.time_base)
        for k, v in self._tags.items():
            setattr(frame, k, v)
        if self.frames_written == 0:
            self._stamp_timecode(int(pts))
        placed = self._place(int(pts))
        frame.pts, frame.time_base = placed - self._shift, self._tb
        if self._last_placed is not None:
            self._last_step = placed - self._last_placed
        self._last_pts, self._last_placed = int(pts), placed
        try:
            packets = self._vs.encode(frame)
        except (av.FFmpegError, OSError) as exc:
            self._fail(exc)
        self._mux(self._timed(packets))
        self.frames_written += 1
        self._pump_aux(float(pts * self.info.time_base))

    def _rgb_to_yuv(self, rgb: np.ndarray) -> av.VideoFrame:
        """swscale's conversion, exact for 8-bit RGB to 8-bit YUV (and RGB to RGB)."""
        return self._reformatter.reformat(
            rgb_frame(rgb),
            format=self._fmt.name,
            src_colorspace=Colorspace.ITU601,
            dst_colorspace=self._dst_matrix,
            src_color_range=ColorRange.JPEG,
            dst_color_range=self._dst_range,
            interpolation=TO_YUV_FLAGS,
            threads=self._sws_threads,
        )

    def _with_captions(self, frame: av.VideoFrame, carrier: av.VideoFrame) -> av.VideoFrame:
        """`frame`'s picture in a frame made from `carrier` (`caption_carrier`), so that it has the input
        frame's side data, its captions among them, for the encoder: PyAV can only copy side data along
        in a reformat. Of the carrier's other properties, the encoder would follow its picture type
        (an I-frame forces a keyframe): reset; the colour tags are set after. About 1.5 ms for a
        1440x960 frame."""
        carried: Any = self._carriers.reformat(
            carrier, width=frame.width, height=frame.height, format=frame.format.name
        )
        for dst, src in zip(carried.planes, frame.planes, strict=True):
            memoryview(dst)[:] = memoryview(src)  # both made by a reformat: the same size, the same row padding
        carried.pict_type = 0  # AV_PICTURE_TYPE_NONE: the encoder decides
        return carried

    def _flush_video(self) -> None:
        packets = self._vs.encode(None)
        if self.frames_written <= 2:
            # libx265 leaves the dts uninitialised when a stream has no more frames than its B-frame
            # delay (1 or 2): random values that the MOV muxer refused at random ("pts/dts pair
            # unsupported"). One or two frames are never reordered, so each one's dts is its pts.
            for p in packets:
                p.dts = p.pts
        last = self._frame_ticks or self._last_step
        if self._last_pts is not None:
            last = last_ticks(self.info, self._last_pts * self.info.time_base, last, self._tb) or last
        self._mux(self._timed(packets) + self._durations.flush(last))

    def _timed(self, packets: list[av.Packet]) -> list[av.Packet]:
        """The encoded packets whose frames' durations are known by now, each given its own
        (`OwnDurations`: encoders such as x264 leave it 0, and give packets frames late)."""
        return [q for p in packets for q in self._durations.push(p)]

    def _pump_aux(self, until: float | None) -> None:
        """Copy input audio/subtitle packets up to `until` seconds, so the file stays interleaved."""
        while self._aux.packets is not None:
            if self._aux.pending is None:
                try:
                    self._aux.pending = next(self._aux.packets, None)
                except av.FFmpegError as exc:
                    log.warning("%s: audio/subtitle copy stopped early (%s)", self.info.path, ffmsg(exc))
                    self._aux.pending = None
                if self._aux.pending is None:
                    self._aux.packets = None
                    return
            p = self._aux.pending
            t = p.dts if p.dts is not None else p.pts
            if until is not None and t is not None and p.time_base and float(t * p.time_base) > until:
                return
            self._aux.pending = None
            if (clock := self._aux.clocks.get(p.stream.index)) is not None and not clock.take(p):
                continue
            t = p.dts if p.dts is not None else p.pts
            if t is not None and p.time_base and not self._in_span(p, t):
                continue
            ostream, mode = self._aux.streams[p.stream.index]
            if mode == "copy":
                if p.dts is None and p.pts is None:
                    continue  # demuxer's end-of-stream marker
                if p.stream.index in self._aux.held_bitmaps:
                    self._show_held_pgs(p.stream.index, ostream, p)
                source, p.stream = p.stream.index, ostream
                self._mux_aux(p, source)
            elif mode == "subtitles":
                self._convert_subtitle(p, ostream)
            else:
                try:
                    frames = p.decode()
                except av.FFmpegError as exc:
                    log.warning("%s: skipped undecodable audio (%s)", self.info.path, ffmsg(exc))
                    continue
                for f in frames:  # on the output's timeline already, as the packet (`_in_span`)
                    for q in ostream.encode(f):
                        self._mux_aux(q, p.stream.index)

    def _in_span(self, p: av.Packet, t: int) -> bool:
        """Whether an audio/subtitle packet lies in the output's span; shifts it to output time."""
        seconds = t * p.time_base
        if self._t1 is not None and seconds >= self._t1:
            if seconds > self._t1 + 5:  # interleaving never lags this much: stop reading the input
                self._aux.packets = None
            return False
        if self._t1 is not None and p.stream.type == "subtitle" and p.duration:
            p.duration = min(p.duration, round(self._t1 / p.time_base) - t)  # no cue outlasts the span
        if self._t0 is None:
            return True
        delta = round(self._t0 / p.time_base)
        if seconds < self._t0:
            if p.stream.type == "subtitle" and not p.duration and is_pgs(p.stream):
                self._aux.hold_pgs(p)
                return False
            if p.stream.type == "subtitle" and not p.duration and not p.stream.codec_context.codec.text_sub:
                self._aux.hold_bitmap(p, seconds, self._t0)
                return False
            if (clock := self._aux.clocks.get(p.stream.index)) is not None and clock.leads_in(p, delta):
                pass  # audio the output's edit list hides up to the start
            elif p.stream.type != "subtitle" or not p.duration or t + p.duration <= delta:
                return False
            else:
                p.duration = t + p.duration - delta  # on screen when the span starts: shown from its start
                p.pts = p.dts = delta
        if p.pts is not None:
            p.pts -= delta
        if p.dts is not None:
            p.dts -= delta
        return True

    def _show_held_pgs(self, source: int, ostream: Any, first: av.Packet | None) -> None:
        """Mux at the output's start the bitmap subtitles held for input stream `source` that are on
        screen there (`AuxState.take_held`; `first`: the stream's first packet in the span, or None)."""
        for q in self._aux.take_held(source, first):
            q.pts = q.dts = 0
            q.stream = ostream
            self._mux_aux(q, source)

    def _chapters_in_span(self, chapters: list[Chapter]) -> list[Chapter]:
        """The input's chapters on the output's timeline, as `_in_span` places subtitles: shifted by the
        span's start and cut to the span; one wholly outside it, or that the cut leaves shorter than a tick
        (a span starting 1e-16 s before its end: a float's 1.001), is dropped."""
        if self._t0 is None and self._t1 is None:
            return chapters
        kept: list[Chapter] = []
        for ch in chapters:
            tb = ch["time_base"]
            if not tb:  # pragma: no cover - FFmpeg gives every chapter one; without it, it cannot be placed
                continue
            start, end = ch["start"] * tb, ch["end"] * tb
            if (self._t0 is not None and end <= self._t0) or (self._t1 is not None and start >= self._t1):
                continue
            if self._t1 is not None:
                end = min(end, self._t1)
            if self._t0 is not None:
                start, end = max(start, self._t0) - self._t0, end - self._t0
            first, last = round(start / tb), round(end / tb)
            if last > first:  # not one that the cut leaves shorter than a tick: an empty chapter in the menu
                kept.append({**ch, "start": first, "end": last})
        return kept

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
            for source in list(self._aux.held_bitmaps):  # on screen from the start to the end
                self._show_held_pgs(source, self._aux.streams[source][0], None)
            self._end_cues()
            sources = {ostream.index: i for i, (ostream, _) in self._aux.streams.items()}
            for ostream, mode in self._aux.streams.values():
                if mode == "transcode":
                    for q in ostream.encode(None):
                        self._mux_aux(q, sources[ostream.index])
            self._report_disorder()
            self._say_late_captions()
            for ostream, data in self._covers:
                cover = av.Packet(data)
                cover.stream = ostream
                self._out.mux(cover)
            self._out.close()
        except (av.FFmpegError, OSError) as exc:
            self._fail(exc)
        if self._src is not None:
            self._src.close()
        try:
            replace_keeping_mode(self._tmp, through_links(self.path))
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


def copied_starts(src: Any, audio: str, subtitles: str) -> list[Fraction]:
    """Where the audio and subtitle streams that the output copies (`audio`, `subtitles`: copy,
    transcode or none) start, in seconds on the input's timeline."""
    kept = [*(audio_streams(src) if audio != "none" else ())]
    kept += [*(src.streams.subtitles if subtitles != "none" else ())]
    return [s.start_time * Fraction(s.time_base) for s in kept if s.start_time is not None and s.time_base]


def mp4_covers(src: Any) -> list[Any]:
    """The input's cover art that an MP4 holds (its covr atom: JPEG, PNG, BMP)."""
    return [s for s in attachment_streams(src) if is_picture(s) and s.codec_context.name in MP4_COVERS]


def time_zero(
    info: VideoInfo, fmt_name: str, start: float | Fraction | None, starts: Iterable[Fraction]
) -> Fraction | None:
    """Where the output's time 0 lies on the input's timeline, in seconds; None: where the input's does
    (every time kept, an .mp4's start offset too). The one place that decides it, for the writer (the
    video, the copied streams, the chapters) and the reader (`open_reader(zero=)`: frames kept apart
    in the output's clock from there) alike. `start`: a --preview's, on the file's clock (from its start,
    `lead` before the first frame, as `ffmpeg -ss` counts), which it is; else, when the input's times start below 0 (an MPEG-TS read across its 33-bit clock's wrap),
    which few containers hold, or are a transport clock (`TRANSPORT_CLOCKS`: 3601.4 s into a broadcast
    day, which a .mov shows as an hour of nothing before the picture) written into another container
    than MPEG-TS (`fmt_name`), the earliest of the video and `starts` (the copied streams'): every
    stream moves by the same amount, their offsets kept to the tick, as ffmpeg does. MPEG-TS output
    keeps the clock."""
    origin = Fraction(info.start_pts) * info.time_base
    if start is not None:
        return origin - info.lead + Fraction(start)
    earliest = min([origin, *starts])
    if earliest < 0 or (info.container in TRANSPORT_CLOCKS and fmt_name != "mpegts"):
        return earliest
    return None


def output_zero(
    output: str | Path,
    info: VideoInfo,
    *,
    audio: str = "copy",
    subtitles: str = "copy",
    start: float | Fraction | None = None,
) -> Fraction:
    """`time_zero` for an output at `output` that copies `audio` and `subtitles`, reading the input's
    streams; 0 where it keeps the input's times (and for images, which hold none)."""
    fmt_name = VIDEO_EXTENSIONS.get(Path(output).suffix.lower())
    if fmt_name is None:
        return Fraction(0)
    starts: list[Fraction] = []
    if not info.is_images and info.path.is_file():
        try:
            with av.open(ffmpeg_name(info.path), metadata_errors="replace") as src:
                starts = copied_starts(src, audio, subtitles)
        except av.FFmpegError as exc:
            raise InputError(f"{info.path}: cannot reopen ({ffmsg(exc)})") from None
    zero = time_zero(info, fmt_name, start, starts)
    return zero if zero is not None else Fraction(0)


def _rescale(t: int, a: Fraction, b: Fraction) -> int:
    """`t` ticks of time base `a` in ticks of `b`, as FFmpeg rescales them."""
    return ff_round(Fraction(t) * a / b)
