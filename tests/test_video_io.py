"""video_io: read and write with PyAV, check the results with the ffmpeg binary only."""

from __future__ import annotations

import dataclasses
import errno
import io
import itertools
import logging
import math
import os
import re
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import demo_clip
from dove_cli import video_io
from dove_cli.errors import InputError, MuxError, OptionError, OutputError
from dove_cli.video_io import (
    Frame,
    VideoInfo,
    check_output,
    folders_made_under,
    frame_name,
    is_pattern,
    open_reader,
    open_writer,
    probe,
)
from dove_cli.video_io.aux_streams import plan_aux_streams
from dove_cli.video_io.metadata import move_timecode
from media import (
    FFMPEG,
    IVTC,
    caption_text,
    decoded_frame_count,
    decoded_times,
    ffinfo,
    ffmpeg,
    ffmpeg_frames,
    ffmpeg_ivtc,
    frame_pts,
    frame_times,
    make_broadcast,
    make_caption_ts,
    make_clip,
    make_held_mkv,
    make_pgs,
    make_programmes_ts,
    make_telecined,
    make_ts,
    movie_edits,
    ordered_copy,
    packet_md5,
    packets,
    psnr,
    raw_rgb,
    showinfo,
    top_boxes,
)


def roundtrip(src: Path, dst: Path, **opts) -> tuple[VideoInfo, list[Frame]]:
    """Decode every frame and write it back unchanged, at the same size and timestamps."""
    frames = []
    with open_reader(src, **opts.pop("reader", {})) as reader:
        info = reader.info
        with open_writer(dst, info, info.width, info.height, **opts) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts, frame.captions)
                frames.append(frame)
    return info, frames


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".dove-" in p.name)


# ----------------------------------------------------------------------------------- probe / read


def test_probe_ntsc_clip(clip_2997: Path) -> None:
    info = probe(clip_2997)
    assert (info.width, info.height, info.num_frames) == (64, 48, 12)
    assert info.fps == Fraction(30000, 1001)
    assert info.has_subtitles
    assert info.bit_depth == 8 and info.dtype == np.uint8
    assert not info.is_image_sequence and not info.is_still_image


def test_a_matroska_estimate_counts_the_video_not_a_longer_subtitle(tmp_path: Path) -> None:
    """Matroska gives the video no length of its own: its frames were estimated from the file's, which a
    subtitle ending later makes long (67 frames for 48); now from the video's DURATION tag, which FFmpeg
    writes as where the track ends (a video starting late: less its start)."""
    (tmp_path / "late.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nStill on screen\n")
    clip = make_clip(tmp_path / "v.mkv", rate="25", frames=12)  # 0.48 s
    for offset in ("0", "0.4"):
        src = tmp_path / f"in{offset}.mkv"
        ffmpeg(
            "-itsoffset", offset, "-i", clip, "-i", tmp_path / "late.srt", "-map", "0", "-map", "1", "-c", "copy", src
        )
        info = probe(src)
        assert (info.num_frames, info.num_frames_exact) == (12, False), offset


def test_reader_matches_ffmpeg_decode(clip_2997: Path) -> None:
    with open_reader(clip_2997) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(12))
    pts, tb = frame_pts(clip_2997)
    assert [f.pts for f in frames] == pts and reader.info.time_base == tb
    ref = ffmpeg_frames(clip_2997, 64, 48)
    got = np.stack([f.rgb for f in frames])
    assert got.dtype == np.uint8 and got.shape == ref.shape
    assert psnr(got, ref) > 35


@pytest.mark.parametrize("clip", ["clip_fullrange", "clip_bt709"])
def test_colour_range_and_matrix(clip: str, request: pytest.FixtureRequest) -> None:
    """Full range (yuvj) and BT.709-tagged input convert like ffmpeg does; wrong range/matrix would not."""
    path = request.getfixturevalue(clip)
    with open_reader(path) as reader:
        got = np.stack([f.rgb for f in reader])
    assert psnr(got, ffmpeg_frames(path, 64, 48)) > 35
    if clip == "clip_fullrange":
        assert reader.info.color_range == "pc"
    else:
        assert reader.info.colorspace == "bt709" and reader.info.color_primaries == "bt709"


def test_untagged_hd_is_read_as_asked(tmp_path: Path) -> None:
    """Untagged YUV at HD size: auto reads it as BT.709 (players' guess), bt601 as FFmpeg's swscale
    does for untagged video of any size (`ffmpeg -pix_fmt rgb24`; decord and OpenCV, the authors'
    readers), bt709 as BT.709 whatever its size."""
    hd = make_clip(tmp_path / "hd.mp4", size="1280x64", frames=2)
    sd = make_clip(tmp_path / "sd.mp4", size="64x48", frames=2)
    assert probe(hd).colorspace is None and probe(sd).colorspace is None  # untagged, as made
    ffmpeg_hd = ffmpeg_frames(hd, 1280, 64)

    def read(path: Path, untagged: str) -> np.ndarray:
        with open_reader(path, untagged_matrix=untagged) as reader:
            return np.stack([f.rgb for f in reader]).astype(int)

    assert np.array_equal(read(hd, "bt601"), ffmpeg_hd)  # identical, level for level
    assert np.abs(read(hd, "auto") - ffmpeg_hd).max() > 10  # BT.709: another picture
    assert np.array_equal(read(hd, "bt709"), read(hd, "auto"))
    assert np.array_equal(read(sd, "auto"), read(sd, "bt601"))  # SD: auto is BT.601 already
    assert np.abs(read(sd, "bt709") - read(sd, "bt601")).max() > 10
    with pytest.raises(OptionError, match="--untagged-matrix 'bt2020' is not one of: auto, bt601, bt709"):
        open_reader(hd, untagged_matrix="bt2020")


def test_10bit_read_without_truncation(clip_10bit: Path) -> None:
    with open_reader(clip_10bit) as reader:
        got = np.stack([f.rgb for f in reader])
    assert reader.info.bit_depth == 10 and got.dtype == np.uint16
    assert len(np.unique(got[0, 0, :, 1])) == 64  # 64 ten-bit codes stay 64 distinct values
    ref = ffmpeg_frames(clip_10bit, 64, 48, deep=True)
    assert np.abs(got.astype(int) - ref).max() <= 300  # within about one 8-bit step


def test_rotation_keep_and_apply(clip_rotated: Path) -> None:
    assert probe(clip_rotated).rotation == 90
    with open_reader(clip_rotated, rotate="apply") as reader:
        got = np.stack([f.rgb for f in reader])
    assert reader.info.rotation == 0 and (reader.info.width, reader.info.height) == (48, 64)
    ref = ffmpeg_frames(clip_rotated, 48, 64)  # ffmpeg autorotates by default
    assert psnr(got, ref) > 35


def test_interlaced_by_the_container_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A .mov whose field order says interlaced, over frames coded progressive (some ProRes
    captures), is warned about as interlaced, naming where that comes from."""
    coded = make_clip(tmp_path / "coded.mov", frames=3, codec="prores_ks", pix_fmt="yuv422p10le")
    said = tmp_path / "said.mov"
    ffmpeg("-i", coded, "-c", "copy", "-field_order", "bt", said)
    for path, expected in ((coded, ""), (said, "(the container says so; its frames are coded progressive)")):
        caplog.clear()
        with caplog.at_level(logging.WARNING), open_reader(path):
            pass
        assert ("interlaced video" in caplog.text) == bool(expected) and expected in caplog.text


def test_deinterlace_matches_ffmpeg_bwdif(clip_interlaced: Path, caplog: pytest.LogCaptureFixture) -> None:
    bwdif = ffmpeg_frames(clip_interlaced, 64, 48, extra=("-vf", "bwdif=mode=send_frame:parity=auto:deint=all"))
    pts, tb = frame_pts(clip_interlaced)
    with caplog.at_level(logging.WARNING):
        with open_reader(clip_interlaced, deinterlace="frame") as reader:
            frames = list(reader)
    assert "interlaced" not in caplog.text
    assert [f.pts for f in frames] == pts and reader.info.time_base == tb  # a frame per frame, timing unchanged
    assert psnr(np.stack([f.rgb for f in frames])[1:-1], bwdif[1:-1]) > 40  # (FFmpeg versions differ at the ends)
    with caplog.at_level(logging.WARNING):
        with open_reader(clip_interlaced) as reader:
            woven = np.stack([f.rgb for f in reader])
    assert psnr(woven, bwdif) < 25  # without it the combing stays, and the user is told
    assert caplog.text.count("interlaced video") == 1 and "--deinterlace" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING), open_reader(clip_interlaced, warn=False):
        pass
    assert caplog.text == ""
    with open_reader(clip_interlaced, deinterlace="frame", start=Fraction(3, 10)) as reader:  # seeks, new filter
        assert [f.pts for f in reader] == [p for p in pts if p * reader.info.time_base >= Fraction(3, 10)]
    with pytest.raises(OptionError, match="--deinterlace 'yes'"):
        open_reader(clip_interlaced, deinterlace="yes")
    caplog.clear()
    with caplog.at_level(logging.WARNING), open_reader(demo_clip("007.mp4"), deinterlace="field"):
        pass  # progressive: done as asked (captures are often flagged wrongly), but not silently
    assert "not flagged interlaced, and FFmpeg's idet finds them progressive" in caplog.text
    assert "--deinterlace field treats them as interlaced" in caplog.text


def test_deinterlace_field_rate(clip_interlaced: Path, tmp_path: Path) -> None:
    """A frame per field: twice the frames, each field's own time (ffmpeg's bwdif=send_field)."""
    bwdif = ffmpeg_frames(clip_interlaced, 64, 48, extra=("-vf", "bwdif=mode=send_field:parity=auto:deint=all"))
    pts, tb = frame_pts(clip_interlaced)
    times = [p * tb for p in pts]
    with open_reader(clip_interlaced, deinterlace="field") as reader:
        info, frames = reader.info, list(reader)
    fields = [t + half for t in times for half in (0, Fraction(1, 2) / (info.fps / 2))]
    assert info.num_frames == len(frames) == len(bwdif) == 2 * len(times)
    assert [f.pts * info.time_base for f in frames] == fields
    assert psnr(np.stack([f.rgb for f in frames])[1:-1], bwdif[1:-1]) > 40
    out = tmp_path / "50p.mkv"
    with open_writer(out, info, 64, 48) as writer:
        for frame in frames:
            writer.write(frame.rgb, frame.pts)
    assert frame_times(out) == fields
    with open_reader(clip_interlaced, deinterlace="field", start=Fraction(3, 10), duration=Fraction(1, 5)) as reader:
        assert [f.pts * reader.info.time_base for f in reader] == [t for t in fields if 0.3 <= t < 0.5]


def _read(path: Path, **kw) -> tuple[VideoInfo, list[Frame]]:
    with open_reader(path, **kw) as reader:
        return reader.info, list(reader)


def test_ivtc_gives_back_every_film_frame_once_as_ffmpeg_does(tmp_path: Path) -> None:
    """3:2 pulldown undone: 52 telecined frames (10 cycles of 5 and 2 more) are the 42 film frames,
    each once, with the frames and times of ffmpeg's fieldmatch,yadif,decimate; counted before."""
    clip = make_telecined(tmp_path / "film.mp4", 52)
    info, frames = _read(clip, deinterlace="ivtc")
    times = ffmpeg_ivtc(clip, tmp_path / "ref.nut")
    _, ref = _read(tmp_path / "ref.nut")  # ffmpeg's raw frames, made RGB as dove makes any input's
    assert [f.pts * info.time_base for f in frames] == times and len(times) == 42
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, ref, strict=True))
    assert info.num_frames_exact and info.num_frames == 42 == 52 - 52 // 5  # the last 2 frames: no cycle to drop from
    with open_reader(clip, deinterlace="ivtc") as reader:
        assert reader.count_frames() == 42
    assert info.fps == info.base_fps == Fraction(24000, 1001) and info.time_base == Fraction(1001, 24000)
    film = tmp_path / "film.nut"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24000/1001", "-frames:v", "42", "-c:v", "ffv1", film)
    truth = ffmpeg_frames(film, 160, 120).astype(np.float64)
    got = np.stack([f.rgb for f in frames]).astype(np.float64)
    err = ((got[:, None] - truth[None]) ** 2).mean(axis=(2, 3, 4))  # [output frame, film frame]
    assert err.argmin(axis=1).tolist() == list(range(42))  # no film frame twice, none lost
    seconds = [f.pts * info.time_base for f in frames]
    assert abs(seconds[-1] + 1 / info.fps - Fraction(52 * 1001, 30000)) < 1 / info.fps  # ends as the input
    with pytest.raises(InputError, match=r"--deinterlace ivtc undoes 3:2 pulldown.*this video is 23.976 frames/s"):
        open_reader(film, deinterlace="ivtc")  # the film's own frames (soft telecine decodes so too)
    with open_reader(clip, deinterlace="frame") as reader:
        assert reader.info.num_frames == len(list(reader)) == 52  # (the other modes count as before)


def test_ivtc_of_a_dvd_with_video_parts_and_its_previews(tmp_path: Path) -> None:
    """An MPEG-2 .mpg (a VOB's streams) ending in 13 frames of true interlaced video, which
    fieldmatch cannot match and yadif deinterlaces: ffmpeg's frames and times exactly. A --preview
    starts its cycles of 5 at its start, as `ffmpeg -ss` starts them, and has the frames it planned."""
    clip = make_telecined(tmp_path / "dvd.mpg", 48, video=13, audio=True)
    info, frames = _read(clip, deinterlace="ivtc")
    times = ffmpeg_ivtc(clip, tmp_path / "ref.nut")
    _, ref = _read(tmp_path / "ref.nut")
    assert [f.pts * info.time_base for f in frames] == times and len(times) == 39
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, ref, strict=True))
    ffmpeg_ivtc(
        clip, tmp_path / "woven.nut", vf=IVTC.replace("yadif=mode=send_frame:parity=auto:deint=interlaced,", "")
    )
    _, woven = _read(tmp_path / "woven.nut")  # without yadif, the video part's frames stay combed
    assert sum(not np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, woven, strict=True)) >= 5
    assert not info.num_frames_exact and info.num_frames == 39  # (estimated from the duration)
    for start, duration in ((Fraction(1), Fraction(1, 2)), (0.52, 0.3), (1.45, 1.0)):
        preview, span = _read(clip, deinterlace="ivtc", start=start, duration=duration)
        first = info.start_pts + math.ceil(Fraction(str(start)) / info.time_base)  # the first frame at `start` or after
        # from the first frame decimate times at `first` or later: it rounds the first frame's time to a frame
        theirs = ffmpeg_ivtc(
            clip, tmp_path / "ss.nut", start_pts=math.ceil((first - Fraction(1, 2)) * info.time_base * 90000)
        )
        end = Fraction(str(start)) + Fraction(str(duration)) + info.start_pts * info.time_base
        assert [f.pts * info.time_base for f in span] == [t for t in theirs if t < end]
        _, ss = _read(tmp_path / "ss.nut")
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(span, ss[: len(span)], strict=True))
        assert preview.num_frames == len(span) == info.span_frames(start, duration) and span[0].pts == first


def test_ivtc_says_a_hole_in_the_input_that_it_closes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """20 telecined frames lost from the middle (damage the demuxer skipped): ffmpeg's decimate times
    the frames after the hole on from those before it, so the video ends 0.67 s early against the
    sound. dove's frames are ffmpeg's all the same; the hole is said, and 16 frames counted lost."""
    clip = tmp_path / "hole.mpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24000/1001", "-vf",
           r"telecine=pattern=23,select='not(between(n\,20\,39))',setfield=tff", "-frames:v", "60", "-fps_mode",
           "passthrough", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-f", "vob", clip)  # fmt: skip
    with caplog.at_level(logging.WARNING), open_reader(clip, deinterlace="ivtc", warn=False) as reader:
        frames = list(reader)
    assert [f.pts * reader.info.time_base for f in frames] == ffmpeg_ivtc(clip, tmp_path / "ref.nut")
    assert len(frames) == 48 and reader.dropped_frames == 16
    assert caplog.text.count("a 0.70 s gap in the video at 0.63 s (about 20 frames lost from the input?)") == 1
    assert "the video is 0.67 s early against the sound (--deinterlace frame keeps the gap)" in caplog.text


def _png_chunks(path: Path) -> dict[bytes, bytes]:
    """A PNG's chunks by type, read from its bytes (not through FFmpeg)."""
    data, chunks, at = path.read_bytes(), {}, 8
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        chunks[data[at + 4 : at + 8]] = data[at + 8 : at + 8 + size]
        at += 12 + size
    return chunks


def test_png_of_hdr_keeps_its_colour_tags(clip_hlg: Path, clip_pq: Path, tmp_path: Path) -> None:
    """A 16-bit PNG of PQ/HLG video had no colour tags, so viewers took PQ code values for sRGB: it
    gets a cICP chunk (BT.2020 primaries, the source's transfer, RGB, full range); an SDR source's
    PNG stays untagged (viewers take it as sRGB)."""
    from dove_cli.video_io.formats import png_writes_cicp

    assert png_writes_cicp()  # this FFmpeg (PyAV's) writes cICP: the warning says PNG keeps the tags
    for src, trc in ((clip_pq, 16), (clip_hlg, 18)):
        roundtrip(src, tmp_path / src.stem / "%03d.png", reader={"warn": False})
        chunks = _png_chunks(tmp_path / src.stem / "001.png")
        assert chunks[b"IHDR"][8] == 16 and chunks[b"cICP"] == bytes([9, trc, 0, 1]), chunks.keys()
    sdr = make_clip(tmp_path / "sdr.mkv", frames=2, pix_fmt="yuv420p10le",
                    vf="setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709")  # fmt: skip
    assert roundtrip(sdr, tmp_path / "sdr" / "%03d.png")[0].color_trc == "bt709"
    assert b"cICP" not in _png_chunks(tmp_path / "sdr" / "001.png")


def test_what_the_output_loses_is_said(
    clip_rotated: Path, clip_10bit: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name, alpha in (("see-through", "colorchannelmixer=aa=0.5"), ("opaque", "null")):
        (tmp_path / name).mkdir()
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=25",
            "-frames:v",
            "2",
            "-vf",
            f"format=rgba,{alpha}",
            tmp_path / name / "%02d.png",
        )
    with caplog.at_level(logging.WARNING):
        with open_reader(tmp_path / "see-through", deinterlace="frame"):
            pass
        assert "alpha channel" in caplog.text and "--deinterlace is for videos" in caplog.text
        roundtrip(clip_rotated, tmp_path / "rot" / "%03d.png")
        assert "rotation tag" in caplog.text and "--rotate apply" in caplog.text
        roundtrip(clip_10bit, tmp_path / "deep" / "%03d.jpg")
        assert "10-bit" in caplog.text and ".jpg images are 8-bit" in caplog.text
        caplog.clear()
        roundtrip(clip_10bit, tmp_path / "deep" / "%03d.png")  # 16-bit PNG keeps it: nothing to say
        roundtrip(clip_rotated, tmp_path / "upright" / "%03d.png", reader={"rotate": "apply"})
        with open_reader(tmp_path / "opaque", fps=25) as reader:  # an alpha plane 255 everywhere (GIFs, many PNGs)
            assert reader.info.pix_fmt == "rgba"
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING):
        open_reader(tmp_path / "opaque").close()
    assert caplog.text.count("images are read at 25 frames/s (ffmpeg's default); give --fps") == 1


def test_truncated_file(clip_long_mp4: Path, clip_long_mkv: Path, tmp_path: Path) -> None:
    for clip in (clip_long_mp4, clip_long_mkv):
        cut = tmp_path / f"cut{clip.suffix}"
        data = clip.read_bytes()
        cut.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(InputError, match=r"cut\.m..: .*frame") as err:
            with open_reader(cut) as reader:
                for _ in reader:
                    pass
        assert "\n" not in str(err.value)
        with open_reader(cut, ignore_decode_errors=True) as reader:
            n = sum(1 for _ in reader)
        assert 0 < n < 30 and reader.dropped_frames > 0
        assert n + reader.dropped_frames == pytest.approx(30, abs=2)


def test_a_matroska_file_starting_late_is_whole_and_its_cut_is_not(clip_long_mkv: Path, tmp_path: Path) -> None:
    """FFmpeg's Matroska muxer declares the end timestamp, not the length: a whole file whose video
    starts at 1.5 s was refused as 24 frames short. A cut one is still caught."""
    from media import ffmpeg

    late = tmp_path / "late.mkv"
    ffmpeg("-i", clip_long_mkv, "-c", "copy", "-output_ts_offset", "1.5", late)
    with open_reader(late) as reader:
        assert sum(1 for _ in reader) == 30 and reader.dropped_frames == 0
    cut = tmp_path / "late_cut.mkv"
    cut.write_bytes(late.read_bytes()[: late.stat().st_size * 2 // 3])
    with pytest.raises(InputError, match="file ends early"), open_reader(cut) as reader:
        for _ in reader:
            pass


def test_a_fragmented_mp4_read_only_up_to_a_damaged_moof_is_cut_short(tmp_path: Path, caplog, capsys) -> None:
    """A zeroed moof (a fragment's header) made the demuxer stop there, at 41% of the file, as at its
    end: 20 of 50 frames, said nowhere. Said as a file cut short now: where reading stopped (the box
    ffmpeg's demuxer stops at) and the share unread; a run fails there, or warns with
    --ignore-decode-errors and keeps the frames ffmpeg decodes."""
    from dove_cli.cli import main
    from dove_cli.video_io.describe import describe

    bad = tmp_path / "bad.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25", "-vf", "noise=alls=60:allf=t", "-frames:v", "50",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-movflags", "frag_keyframe+empty_moov", bad)  # fmt: skip
    data = bytearray(bad.read_bytes())
    at, moofs = 0, []
    while at < len(data):  # the top-level boxes: size (4 bytes, big-endian), type
        moofs += [at] * (data[at + 4 : at + 8] == b"moof")
        at += int.from_bytes(data[at : at + 4], "big")
    data[moofs[2] - 8 : moofs[2] + 1492] = bytes(1500)
    bad.write_bytes(data)
    kept, size = decoded_frame_count(bad), len(data)
    assert 0 < kept < 50
    said = f"reading stops at byte {moofs[2]} of {size} ({(size - moofs[2]) / size:.0%} of the file unread: damaged?)"
    assert describe(bad)["video"]["unread"] == {"stops_at": moofs[2], "size": size}
    with pytest.raises(SystemExit):
        main(["info", str(bad)])
    assert f"cut short   {said}; a run fails there unless --ignore-decode-errors" in capsys.readouterr().out
    with pytest.raises(InputError) as err, open_reader(bad) as reader:
        for _ in reader:
            pass
    assert str(err.value).startswith(f"{bad}: file ends early: {kept} frames decoded, up to t=")
    assert f"then {said}; use --ignore-decode-errors" in str(err.value)
    with caplog.at_level(logging.WARNING), open_reader(bad, ignore_decode_errors=True) as reader:
        assert sum(1 for _ in reader) == kept
    assert f"{bad}: file ends early after frame {kept - 1} (t=" in caplog.text and said in caplog.text


def test_good_files_are_read_to_their_end(tmp_path: Path, caplog) -> None:
    """What good files leave after their last packet is no damage (`unread_tail`): an MP4's index
    written last (here 13 KB, 32% of a 3000-frame still), a Matroska's cues, an AVI's idx1, an MPEG-TS's
    last tables, a longer audio track's packets after the video's."""
    from dove_cli.video_io.reader import unread_tail

    src = ("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25", "-f", "lavfi", "-i", "sine=d=3:r=48000", "-t", "1")
    files = {"a.mp4": ("-c:a", "aac", "-t", "3"), "c.mp4": ("-movflags", "frag_keyframe+empty_moov"),
             "d.mov": ("-c:a", "pcm_s16le", "-t", "3"), "e.mkv": (), "f.avi": ("-c:v", "mjpeg", "-c:a", "pcm_s16le"),
             "g.ts": (), "i.mpg": ("-c:v", "mpeg2video", "-c:a", "mp2")}  # fmt: skip
    for name, extra in files.items():
        ffmpeg(*src, "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", *extra, tmp_path / name)
    ffmpeg("-f", "lavfi", "-i", "color=gray:s=16x16:r=1", "-frames:v", "3000", "-c:v", "libx264", "-preset",
           "ultrafast", tmp_path / "still.mp4")  # fmt: skip
    big = tmp_path / "padded.mkv"  # 2.3 MB padded with 12 KB of zeros (a recorder's block): under 1% unread
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-frames:v", "20", "-c:v", "rawvideo", "-pix_fmt",
           "yuv420p", big)  # fmt: skip
    big.write_bytes(big.read_bytes() + bytes(12 << 10))
    assert big.stat().st_size > 100 * (12 << 10)
    for path in sorted(tmp_path.iterdir()):
        assert unread_tail(path, 0, 10**9) is None, path.name
    with caplog.at_level(logging.WARNING), open_reader(tmp_path / "still.mp4") as reader:  # (its moov: read again)
        assert sum(1 for _ in reader) == 3000
    assert caplog.text == ""


def test_lost_frames_are_said_on_the_files_clock_and_every_empty_place_counted(tmp_path: Path, caplog) -> None:
    """A video starting 0.16 s in (its sound at 0) had its lost frames' t= counted from its first frame,
    0.16 s early against ffprobe, players and --preview; a B-frame whose packet lay past the cut was
    counted nowhere, and "after frame N" was the count of frames read, not the last one's place. The
    places said, and their times, are those ffmpeg's decoder leaves empty in the file cut mid-packet."""
    import re

    whole = tmp_path / "whole.mp4"
    ffmpeg("-itsoffset", "0.16", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=12.5", "-f", "lavfi", "-i",
           "sine=d=4:r=8000", "-map", "0:v", "-map", "1:a", "-frames:v", "50", "-c:v", "libx264", "-preset",
           "veryfast", "-g", "25", "-c:a", "aac", "-movflags", "faststart", whole)  # fmt: skip
    with av.open(str(whole)) as c:  # where the file is cut: inside the 29th video packet (decode order)
        pos, size = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size][28]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: pos + size // 2])
    times = decoded_times(cut)  # seconds on the file's clock (its sound starts at 0)
    assert times[0] == Fraction(16, 100)
    places = {int((t - times[0]) * Fraction(25, 2)) for t in times}
    last = max(places)
    empty = [k for k in range(last) if k not in places]
    assert len(empty) == 2  # the undecodable packet and a frame that refers to what lies past the cut

    with caplog.at_level(logging.WARNING), open_reader(cut, ignore_decode_errors=True) as reader:
        assert sum(1 for _ in reader) == len(times)
    assert reader.dropped_frames == 50 - len(times)
    dropped = re.search(r"dropped 1 frame that could not be decoded: (\d+) \(t=([\d.]+)s;", caplog.text)
    assert dropped and int(dropped[1]) in empty, caplog.text
    assert dropped[2] == f"{float(times[0] + int(dropped[1]) * Fraction(2, 25)):.3f}"
    assert (f"file ends early after frame {last} (t={float(times[-1]):.3f}s); about {50 - len(times) - 1} frames "
            f"missing (1 of them before it)") in caplog.text  # fmt: skip


def test_an_unreadable_input_is_said_to_be_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without read permission was "not a video FFmpeg can read (Permission denied)", as if its
    format were the problem. (PyAV raises this for it, as measured without CAP_DAC_OVERRIDE: root
    reads any file, so the error is given here.)"""
    from dove_cli.video_io import reader

    clip = make_clip(tmp_path / "locked.mp4", frames=2, size="32x24")

    def denied(path: str, *args: object, **kwargs: object) -> None:
        raise av.error.PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(reader.av, "open", denied)
    with pytest.raises(InputError) as err:
        probe(clip)
    assert str(err.value) == f"{clip}: cannot read: permission denied"


def test_a_matroska_recording_still_being_written_is_said_to_look_unfinished(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Matroska muxer writes the Segment's size and the Duration once the file is done: a recording
    still being written (or whose recorder crashed) has neither, as this one streamed to a pipe, which
    ffmpeg reads as "Duration: N/A". Said before a run (it reads only what there is by then), and
    marked for the run's check at its end (`resume.Session.check_input`); a finished file is not."""
    import subprocess

    from media import FFMPEG

    live = subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v", "5",
                           "-c:v", "ffv1", "-f", "matroska", "-"], capture_output=True, check=True).stdout  # fmt: skip
    recording = tmp_path / "recording.mkv"
    recording.write_bytes(live)
    finished = make_clip(tmp_path / "finished.mkv", frames=5)
    assert "Duration: N/A" in ffinfo(recording).stderr and "Duration: N/A" not in ffinfo(finished).stderr
    with caplog.at_level(logging.WARNING):
        assert probe(recording).unfinished and not probe(finished).unfinished
    assert caplog.text.count("looks unfinished: its header gives no size and no duration") == 1
    assert f"{recording}: looks unfinished" in caplog.text


def test_an_mp4_cut_before_its_index_is_said_to_be_cut_short(tmp_path: Path) -> None:
    """Without its index (moov, written last by default) an MP4 cannot be opened at all: the error says
    it looks cut short, where a file that is no MP4 just is not a video."""
    whole = make_clip(tmp_path / "whole.mp4", frames=30)
    assert whole.read_bytes()[4:8] == b"ftyp" and whole.read_bytes().rfind(b"moov") > whole.stat().st_size // 2
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    for path, hint in ((cut, True), (text, False)):
        with pytest.raises(InputError, match="not a video FFmpeg can read") as err:
            probe(path)
        assert ("no index: probably cut short" in str(err.value)) == hint, err.value
        assert ("such as untrunc" in str(err.value) and "record to .mkv" in str(err.value)) == hint  # what to do


def test_a_protocol_error_does_not_blame_the_index(tmp_path: Path, monkeypatch) -> None:
    """ "Protocol not found" (FFmpeg read `Teil1:` of a name as a URL) said of an intact MP4 that it was
    probably cut short: only invalid data says so."""
    from dove_cli.video_io import reader

    clip = make_clip(tmp_path / "whole.mp4", frames=3)

    def no_protocol(name: str, *args: object, **kwargs: object) -> None:
        raise av.error.ProtocolNotFoundError(1330794744, "Protocol not found", name)

    monkeypatch.setattr(reader.av, "open", no_protocol)
    with pytest.raises(InputError) as err:
        probe(clip)
    assert str(err.value) == f"{clip}: not a video FFmpeg can read (Protocol not found)", err.value


def test_reading_past_damage_keeps_every_frame_ffmpeg_decodes(tmp_path: Path) -> None:
    """--ignore-decode-errors on an H.264 MP4 (index first) cut short: the frames before the damage
    that ffmpeg decodes are all kept. Frame threads dropped the two in flight at the cut."""
    from media import decoded_frame_count, ffmpeg

    whole = tmp_path / "whole.mp4"
    ffmpeg("-i", demo_clip("005.mp4"), "-c", "copy", "-movflags", "+faststart", whole)  # 100 frames, B-frames
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    expected = decoded_frame_count(cut)
    with open_reader(cut, ignore_decode_errors=True) as reader:
        assert sum(1 for _ in reader) == expected and 0 < expected < 100


def test_corrupt_packets(clip_long_mp4: Path, tmp_path: Path) -> None:
    bad = bytearray(clip_long_mp4.read_bytes())
    mid = len(bad) // 2
    bad[mid : mid + 300] = bytes((b * 7 + 13) & 255 for b in bad[mid : mid + 300])
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(bad))
    with pytest.raises(InputError, match=r"corrupt\.mp4: decode error at frame \d+, t="):
        with open_reader(path) as reader:
            for _ in reader:
                pass
    with open_reader(path, ignore_decode_errors=True) as reader:
        n = sum(1 for _ in reader)
    assert reader.dropped_frames > 0 and n > 0


def test_decode_errors_name_the_frames_ffmpeg_loses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With B-frames packets fail in decode order, ahead of frames still to come out: the errors named
    the count of frames decoded so far (frame 3 for each of 4-5, 7-9 here), in decode order, and frame
    threads report an error packets late. The frames named are the ones ffmpeg cannot decode, and
    a --start after them (decoding them again from the keyframe before) drops none."""
    clip = make_clip(tmp_path / "b.mp4", size="80x46", rate="16", frames=32,
                     extra=("-preset", "veryfast", "-bf", "2", "-g", "32", "-threads", "1"))  # fmt: skip
    bad = bytearray(clip.read_bytes())
    bad[2000:2285] = bytes((b * 7 + 13) & 255 for b in bad[2000:2285])  # packets of frames 4-9 (of 32)
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(bad))
    err = ffmpeg("-threads", "1", "-i", path, "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-").stderr
    decoded = [round(Fraction(t) * 16) for t in re.findall(r" pts_time:([\d.]+)", err)]
    lost = sorted(set(range(32)) - set(decoded))
    assert len(lost) >= 2 and decoded == sorted(decoded), lost
    with pytest.raises(InputError, match=rf"decode error at frame {lost[0]}, t={lost[0] / 16:.3f}s \("):
        with open_reader(path) as reader:
            for _ in reader:
                pass
    with caplog.at_level(logging.WARNING), open_reader(path, ignore_decode_errors=True) as reader:
        assert [round(frame.pts * reader.info.time_base * 16) for frame in reader] == decoded
    assert reader.dropped_frames == len(lost)
    (line,) = caplog.messages
    m = re.fullmatch(r".*corrupt\.mp4: dropped (\d+) frames that could not be decoded: (.*) \(t=(.*)s; .*\)", line)
    assert m and int(m[1]) == len(lost) and m[3] == f"{lost[0] / 16:.3f}-{lost[-1] / 16:.3f}", line
    named = [
        n for part in m[2].split(", ") for a, _, b in [part.partition("-")] for n in range(int(a), int(b or a) + 1)
    ]
    assert named == lost, line
    caplog.clear()
    assert lost[-1] < 12
    with caplog.at_level(logging.WARNING), open_reader(path, ignore_decode_errors=True, start=0.75) as reader:
        assert len(list(reader)) == 32 - 12  # decoded from the keyframe at 0, past the damage
    assert reader.dropped_frames == 0 and caplog.messages == [], caplog.messages


# ----------------------------------------------------------------------------------- round trips


def test_roundtrip_ntsc_audio_subtitles_chapters(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    roundtrip(clip_2997, out)
    src, dst = ffinfo(clip_2997), ffinfo(out)
    assert dst.kinds() == src.kinds() == ["Video", "Audio", "Subtitle", "Data"]  # Data: chapter track
    assert "29.97 fps" in dst.video().text and "64x48" in dst.video().text
    assert frame_pts(out) == frame_pts(clip_2997)
    assert decoded_frame_count(out) == 12
    assert packet_md5(out, "0:a") == packet_md5(clip_2997, "0:a")
    assert packet_md5(out, "0:s") == packet_md5(clip_2997, "0:s")
    assert dst.streams[1].language == "fra" and dst.streams[2].language == "eng"
    assert "French sine" in dst.stderr
    assert "Intro" in dst.stderr and "Main part" in dst.stderr and "My clip" in dst.stderr
    assert src.stderr.count("Chapter #") == dst.stderr.count("Chapter #") == 2
    # the pictures survive the visually lossless default (CRF 16)
    assert psnr(ffmpeg_frames(out, 64, 48), ffmpeg_frames(clip_2997, 64, 48)) > 30
    assert leftovers(tmp_path) == []


def test_roundtrip_mkv_srt(clip_2997_mkv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    roundtrip(clip_2997_mkv, out)
    assert ffinfo(out).kinds() == ["Video", "Audio", "Subtitle"]
    assert "subrip" in ffinfo(out).streams[2].codec
    assert frame_pts(out) == frame_pts(clip_2997_mkv)
    for stream in ("0:a", "0:s"):
        assert packet_md5(out, stream) == packet_md5(clip_2997_mkv, stream)
    # the video stream's flags as the input had them (an archive's player picks the default track)
    assert "(default)" not in ffinfo(clip_2997_mkv).video().text and "(default)" not in ffinfo(out).video().text
    flagged = tmp_path / "flagged.mkv"
    ffmpeg("-i", clip_2997_mkv, "-map", "0", "-c", "copy", "-disposition:v:0", "default", flagged)
    roundtrip(flagged, tmp_path / "flagged_out.mkv")
    assert (
        "(default)" in ffinfo(flagged).video().text and "(default)" in ffinfo(tmp_path / "flagged_out.mkv").video().text
    )


def audio_packets(path: Path) -> list[tuple[int, int, str]]:
    """(pts, duration, md5) of every audio packet, as ffmpeg demuxes them."""
    out = ffmpeg("-copyts", "-i", path, "-map", "0:a", "-c", "copy", "-f", "framemd5", "-").stdout
    rows = [line.split(", ") for line in out.splitlines() if line and not line.startswith("#")]
    return [(int(r[2]), int(r[3]), r[5]) for r in rows]


@pytest.mark.parametrize(
    "ext",
    [".mp4", ".mov", pytest.param(".mkv", marks=pytest.mark.xfail(
        int(av.ffmpeg_version_info.split(".")[0]) < 9, strict=True,
        reason="FFmpeg 8's Matroska muxer writes no BlockDuration for AAC (README, --audio); 9 does"))],
)  # fmt: skip
def test_audio_packets_keep_their_durations(ext: str, tmp_path: Path) -> None:
    """Every audio packet is copied with its bytes, pts and duration, the shortened last one (the end trim)
    included. With FFmpeg 9 in PyAV, .mkv keeps it too: then update the README."""
    src = make_clip(tmp_path / f"in{ext}", frames=15, audio=True)  # 0.5 s of AAC: 23.4 frames of 1024 samples
    out = tmp_path / f"out{ext}"
    roundtrip(src, out)
    packets = audio_packets(src)
    assert packets[-1][1] < packets[-2][1]  # the end trim
    assert audio_packets(out) == packets


def test_roundtrip_vfr(clip_vfr: Path, tmp_path: Path) -> None:
    out = tmp_path / "vfr.mp4"
    roundtrip(clip_vfr, out)
    times = frame_times(clip_vfr)
    assert len(set(np.diff(times))) > 2  # really variable
    assert frame_times(out) == times


def default_duration(path: Path) -> int:
    """A Matroska file's (first) DefaultDuration in ns, read from its bytes (EBML ID 0x23E383, a 1-byte size)."""
    data = path.read_bytes()
    at = data.index(b"\x23\xe3\x83") + 3
    return int.from_bytes(data[at + 1 : at + 1 + (data[at] & 0x0F)], "big")


def ms_clip(tmp_path: Path, late: int = 0) -> tuple[Path, list[int]]:
    """11 frames at 23.976 fps in Matroska's milliseconds (steps of 41 and 42 ms; no time on a .5 ms), with
    AAC audio; `late`: the video starts a frame (42 ms) after the sound. Its file and frames' pts."""
    clip = make_clip(tmp_path / "clip.mkv", rate="24000/1001", frames=11, audio=True)
    src = tmp_path / "in.mkv"
    ffmpeg("-itsoffset", f"{late * 0.0417}", "-i", clip, "-i", clip, "-map", "0:v", "-map", "1:a", "-c", "copy", src)
    pts, tb = frame_pts(src)
    assert tb == Fraction(1, 1000) and {b - a for a, b in itertools.pairwise(pts)} == {41, 42} and pts[0] == 42 * late
    return src, pts


@pytest.mark.parametrize("late", [0, 1])
def test_a_constant_rate_matroska_video_gets_exact_steps(late: int, tmp_path: Path) -> None:
    """23.976 fps in Matroska's milliseconds; copied as they were into an .mp4 (1/16000 s), the steps were 656
    and 672 and the file variable-rate. Now 1001/24000 s each, as ffmpeg's own re-encode has them, every frame
    less than 0.5 ms from its input time, the first where it was against the sound."""
    src, pts = ms_clip(tmp_path, late)
    roundtrip(src, tmp_path / "out.mp4")
    out, tb = frame_pts(tmp_path / "out.mp4")
    assert tb == Fraction(1, 24000) and {b - a for a, b in itertools.pairwise(out)} == {1001}
    assert all(abs(a * tb - Fraction(b, 1000)) < Fraction(1, 2000) for a, b in zip(out, pts, strict=True))
    assert out[0] * tb == Fraction(pts[0], 1000)
    # the sound's first packet as it was, its time to the sample: AAC's 1024 priming samples, which Matroska has as 21 ms
    (_, first, data), (_, ms, data_in) = packets(tmp_path / "out.mp4", "0:a")[0], packets(src, "0:a")[0]
    assert (first, data, ms) == (Fraction(-1024, 48000), data_in, Fraction(-21, 1000))
    if not late:
        ffmpeg("-i", src, "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", tmp_path / "ref.mp4")
        assert (out, tb) == frame_pts(tmp_path / "ref.mp4")  # ffmpeg's own


def test_a_frame_off_the_grid_keeps_its_own_time() -> None:
    """The grid is found from a file's first 240 frames: a later frame more than half a tick (0.5 ms) from
    its place (a variable-rate stretch, a splice) keeps its time; one within it goes to its place."""
    from dove_cli.video_io.cadence import Grid

    grid = Grid(start=Fraction(0), step=Fraction(1001, 24000), slack=Fraction(1, 2000))
    assert grid.place(Fraction(5005, 1000)) == Fraction(120120, 24000)  # 5.005 s: frame 120 (5.005 s) itself
    assert grid.place(Fraction(5006, 1000)) == Fraction(5006, 1000)  # 1 ms after it
    assert grid.place(Fraction(42, 1000)) == Fraction(1001, 24000)  # 0.29 ms after frame 1


def test_exact_steps_in_a_preview_not_in_mkv_nor_a_variable_rate(tmp_path: Path) -> None:
    """A --preview of 23.976 fps in milliseconds gets exact steps too, from its cut; an .mkv keeps its
    milliseconds and DefaultDuration; a variable-rate .mkv (a frame missing, as `dove info` judges it)
    keeps its own times."""
    src, pts = ms_clip(tmp_path)
    roundtrip(src, tmp_path / "out.mkv")
    assert frame_pts(tmp_path / "out.mkv") == (pts, Fraction(1, 1000))
    assert default_duration(tmp_path / "out.mkv") == default_duration(src) == 41708333
    with open_reader(src, start=0.2, duration=0.3) as reader:  # frames 5-10: the first 8.5 ms after the cut
        with open_writer(tmp_path / "preview.mp4", reader.info, 64, 48, start=0.2, end=0.5) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
    assert frame_pts(tmp_path / "preview.mp4") == ([205 + 1001 * k for k in range(6)], Fraction(1, 24000))
    gap = tmp_path / "gap.mkv"  # frame 5 left out (the last of a GOP of 6)
    ffmpeg("-i", src, "-map", "0:v", "-c", "copy", "-bsf:v", "noise=drop=eq(n\\,5)", gap)
    roundtrip(gap, tmp_path / "gap.mp4")
    assert frame_times(tmp_path / "gap.mp4") == frame_times(gap) == [Fraction(p, 1000) for p in pts[:5] + pts[6:]]


def _steps_from(path: Path, even: int, frames: int = 250) -> list[int]:
    """A 30 fps .mp4 (time base 1/30) whose first `even` frames step evenly, the rest 1 and 3 ticks
    (a variable rate from there): its timestamps, the test's reference."""
    pts = list(itertools.accumulate([1 if i < even or i % 2 else 3 for i in range(frames - 1)], initial=0))
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        s.codec_context.time_base = Fraction(1, 30)
        for i, t in enumerate(pts):
            f = av.VideoFrame.from_ndarray(np.full((16, 16, 3), i % 250, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 30)
            c.mux(s.encode(f))
        c.mux(s.encode())
    return pts


def test_a_rate_is_judged_by_one_rule_and_a_sample_says_so(tmp_path: Path, caplog) -> None:
    """A clip that turns variable after frame 240: `dove info` (all packets) said variable, the plan
    (its first 240, another frame step) constant at the container's average, without a word of the
    sample. Now one rule (`cadence.judge_rate`); a plan that read only the first frames says so, and
    so does an image output's warning; `dove info`'s rate is its packets' average."""
    from rich.console import Console

    from dove_cli.console import print_plan
    from dove_cli.upscaling import upscale
    from dove_cli.video_io.describe import describe

    late, early = tmp_path / "late.mp4", tmp_path / "early.mp4"
    pts = _steps_from(late, even=245)
    _steps_from(early, even=0)
    v = describe(late)["video"]
    assert v["variable_rate"] and Fraction(v["fps"]) == Fraction(len(pts) - 1, pts[-1] - pts[0]) * 30
    plan = upscale(late, tmp_path / "o.mp4", model="bilinear", device="cpu", dry_run=True)
    assert not plan.variable_rate and plan.rate_sample == 240
    print_plan(plan, Console(file=(said := io.StringIO()), width=200))
    assert re.search(
        r"250 frames at [\d.]+ fps \(\d+/\d+\) \(constant: judged from its first 240 frames\)\n", said.getvalue()
    )
    plan = upscale(early, tmp_path / "o.mp4", model="bilinear", device="cpu", dry_run=True)
    assert plan.variable_rate and plan.rate_sample == 240 and describe(early)["video"]["variable_rate"]
    with caplog.at_level(logging.WARNING):
        upscale(early, tmp_path / "img/%04d.png", model="bilinear", device="cpu", scale=1, preview="0+0.1s")
    assert "a variable rate: steps of 33 to 100 ms; judged from its first 240 frames)" in caplog.text


def test_each_frame_of_a_variable_rate_mkv_keeps_its_own_duration(tmp_path: Path) -> None:
    """Every packet lasts until the next frame, the last one frame at 30 fps, so the file ends where its
    input does (2.000 s). The encoder gives packets frames late: the step of the frame just written, put
    on each, moved the holds onto other frames, and the last frame's hold made the file 2.467 s long
    (a 20 s screen recording said 26.8 s). Written directly, and joined from segments by a run."""
    src = make_held_mkv(tmp_path / "held.mkv")
    pts, tb = frame_pts(src)
    assert tb == Fraction(1, 1000) and len(pts) == 12 and max(np.diff(pts)) == 600  # (ms: 1/30 s is 33)
    # (a step within a tick of the track's default duration, 33 ms, is not stored: 34 reads back as 33)
    steps = {t: 33 if step == 34 else step for t, step in zip(pts, [*np.diff(pts).tolist(), 33], strict=True)}
    written, run = tmp_path / "written.mkv", tmp_path / "run.mkv"
    roundtrip(src, written)
    _dove(src, run, scale=1)
    for out in (written, run):
        with av.open(str(out)) as c:
            durations = {p.pts: p.duration for p in c.demux(c.streams.video[0]) if p.size}
            assert (durations, c.duration) == (steps, 2_000_000), out


@pytest.mark.parametrize("fps", [None, Fraction(30000, 1001)])
def test_each_frame_of_an_image_sequence_lasts_one_frame_in_mkv(fps: Fraction | None, tmp_path: Path) -> None:
    """4 images at 25 fps (ffmpeg's default) or --fps 29.97, run into .mkv: the last frame lasts 1/rate like
    the others, so ffmpeg says 4/rate and decodes 4 frames at that rate, and `dove info` finds the file whole.
    The last packet had the first step in decode order, from the keyframe to a B-frame's anchor (3 frames):
    0.32 s for 5 frames at 25 fps, 8 frames decoded, and "cut short" (3 frames) in dove info."""
    from dove_cli.video_io.describe import describe

    src, out = tmp_path / "in" / "%02d.png", tmp_path / "out.mkv"
    src.parent.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24", "-frames:v", "4", src)
    rate = fps or Fraction(25)
    assert probe(src, fps=fps).base_fps == rate  # the rate its frames step at
    _dove(src, out, scale=1, **({"fps": fps} if fps else {}))
    said = re.search(r"Duration: (\d+):(\d+):([\d.]+)", ffinfo(out).stderr)
    assert said and Fraction(said[3]) == round(Fraction(4) / rate, 2)
    # ffmpeg's rawvideo output has a constant rate: it repeats the last frame to fill the file's length
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", out, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    assert len(raw) == 4 * 32 * 24
    assert describe(out)["video"]["cut_short"] is None


def test_the_last_of_reordered_frames_lasts_the_last_step() -> None:
    """Without the input's rate (`frame_ticks` None), the last frame lasts the step between the two largest
    pts: packets of 5 frames at 40 ticks in x264's decode order, not the first step in it (0 -> 160)."""
    from dove_cli.video_io.writer import OwnDurations

    durations, out = OwnDurations(), []
    for pts, dts in [(0, -80), (160, -40), (80, 0), (40, 40), (120, 80)]:
        p = av.Packet(b"x")
        p.pts, p.dts = pts, dts
        out += durations.push(p)
    out += durations.flush(None)
    assert [(p.pts, p.duration) for p in out] == [(0, 40), (160, 40), (80, 40), (40, 40), (120, 40)]


def test_frames_with_the_timestamp_of_the_frame_before(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Frames 2, 6 and 7 carry the timestamp of the frame before (Matroska allows it): every frame is kept
    (ffmpeg's vfr mode drops them), each moved to 1 tick after the one before, and one warning names the
    input, the frames and their times."""
    clip = make_clip(tmp_path / "clip.mkv", rate="25", frames=12, extra=("-bf", "0"))
    src = tmp_path / "dup.mkv"
    ffmpeg("-i", clip, "-c", "copy", "-bsf:v", "setts=ts='if(eq(PTS,80),40,if(between(PTS,240,280),200,PTS))'", src)
    assert frame_pts(src) == ([0, 40, 40, 120, 160, 200, 200, 200, 320, 360, 400, 440], Fraction(1, 1000))
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING), open_reader(src) as reader:
        frames = list(reader)
        assert caplog.messages == [
            f"{src}: 3 frames have the time of the frame before (or an earlier one) in the output, which counts "
            "time in units of 1/1000: frames 2, 6-7 (t=0.040-0.200s); moved 1/1000 s after the frame before"
        ]
        with open_writer(out, reader.info, 64, 48) as writer:
            for frame in frames:
                writer.write(frame.rgb, frame.pts)
    moved = [0, 40, 41, 120, 160, 200, 201, 202, 320, 360, 400, 440]
    assert [f.pts for f in frames] == moved and frame_times(out) == [Fraction(t, 1000) for t in moved]
    assert len(caplog.messages) == 1  # nothing more from the writer


def test_times_round_as_ffmpeg_rescales_them() -> None:
    """av_rescale_rnd's default (AV_ROUND_NEAR_INF): to nearest, halves away from zero; by hand."""
    from dove_cli.video_io.formats import ff_round

    cases = {Fraction(5, 2): 3, Fraction(-5, 2): -3, Fraction(7, 3): 2, Fraction(-7, 3): -2, Fraction(8, 3): 3,
             Fraction(-8, 3): -3, Fraction(0): 0, Fraction(1, 2): 1, Fraction(-1, 2): -1}  # fmt: skip
    assert {x: ff_round(x) for x in cases} == cases


def test_frames_kept_apart_in_the_outputs_clock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Frames 0.2 ms apart in an MP4 (1/15360 s) would share a time in Matroska's 1 ms: each is moved
    1 ms after the frame before, and the warning says so in the output's unit."""
    clip = make_clip(tmp_path / "clip.mp4", rate="25", frames=8, extra=("-bf", "0", "-video_track_timescale", "15360"))
    src = tmp_path / "near.mp4"  # frame 3 (pts 1843, 0.120 s) at 1234 (0.0803 s), 5 ticks after frame 2
    ffmpeg("-i", clip, "-c", "copy", "-bsf:v", "setts=ts='if(eq(PTS,1843),1234,PTS)'", src)
    assert frame_pts(src)[0][:5] == [0, 614, 1229, 1234, 2458]
    out = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING), open_reader(src, clock=video_io.output_clock(out, Fraction(1, 15360))) as r:
        frames = list(r)
        with open_writer(out, r.info, 64, 48) as writer:
            for frame in frames:
                writer.write(frame.rgb, frame.pts)
    assert "units of 1/1000: frame 3 (t=0.080s); moved 1 ms after the frame before" in caplog.text
    # 614/15360 s rounds to 40 ms, 1229 to 80 ms, 1234 (80.3 ms) to 80 ms too: moved to 81 ms
    assert frame_times(out)[:5] == [0, Fraction(40, 1000), Fraction(80, 1000), Fraction(81, 1000), Fraction(160, 1000)]


def test_a_change_of_frame_size_keeps_the_shape(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 64x36 recording followed by a 48x48 one (two .ts files joined): the square frames fit inside
    64x36 as 36x36, black on both sides (ffmpeg would stretch them), and the change is said."""
    a = make_clip(tmp_path / "a.ts", size="64x36", rate="25", frames=5)
    b = make_clip(tmp_path / "b.ts", size="48x48", rate="25", frames=5, extra=("-output_ts_offset", "0.2"))
    src = tmp_path / "joined.ts"
    src.write_bytes(a.read_bytes() + b.read_bytes())
    with caplog.at_level(logging.WARNING), open_reader(src) as reader:
        frames = list(reader)
    assert [f.rgb.shape for f in frames] == [(36, 64, 3)] * 10
    assert caplog.messages == [f"{src}: the frame size changes at frame 5 (t=0.200s) from 64x36 to 48x48; scaled to "
                               "fit the first frame's 64x36 with its shape kept, and padded with black"]  # fmt: skip
    square = frames[7].rgb
    assert not square[:, :14].any() and not square[:, 50:].any()  # (64 - 36) / 2 columns of black each side
    reference = ffmpeg_frames(b, 36, 36, extra=("-vf", "scale=36:36:flags=bicubic"))[2]  # ffmpeg scales it
    assert psnr(square[:, 14:50], reference) > 25  # (dove scales in the YUV to RGB step: not bit-equal)


def test_a_change_to_non_square_pixels_keeps_the_shape_shown(tmp_path: Path) -> None:
    """48x48 frames of pixel aspect 4:3 show as 64x48 (4:3): inside 64x36 they are 48x36, with 8 columns
    of black each side (as square pixels they would be 36x36)."""
    a = make_clip(tmp_path / "a.ts", size="64x36", rate="25", frames=5)
    b = make_clip(tmp_path / "b.ts", size="48x48", rate="25", frames=5, vf="setsar=4/3",
                  extra=("-output_ts_offset", "0.2"))  # fmt: skip
    src = tmp_path / "joined.ts"
    src.write_bytes(a.read_bytes() + b.read_bytes())
    with open_reader(src, warn=False) as reader:
        shown = np.flatnonzero(list(reader)[7].rgb.any(axis=(0, 2)))
    assert (shown.min(), shown.max()) == (8, 55)


def test_aac_priming_into_matroska_is_said_and_keeps_the_sound_in_step(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MP4 hides AAC's 1024 priming samples with its edit list; .mkv would need CodecDelay, which PyAV
    cannot set: the muxer starts every stream 21 ms (1024/48000 s) later instead. Said; picture and
    sound keep their distance (ffmpeg's own .mkv: video at 0, first packet at -21 ms)."""
    src = make_clip(tmp_path / "in.mp4", rate="25", frames=10, audio=True)
    (audio_in, tb_in), (video_in, _) = frame_pts(src, "0:a:0"), frame_pts(src)
    assert audio_in[0] * tb_in == Fraction(-1024, 48000) and video_in[0] == 0
    said = {}
    for ext in (".mp4", ".mkv"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            roundtrip(src, tmp_path / f"out{ext}")
        said[ext] = [m for m in caplog.messages if "priming" in m]
    assert said[".mp4"] == [] and len(said[".mkv"]) == 1
    assert "audio stream #1 starts with 1024 samples of encoder priming (21.3 ms)" in said[".mkv"][0]
    (audio, tb), (video, _) = frame_pts(tmp_path / "out.mkv", "0:a:0"), frame_pts(tmp_path / "out.mkv")
    assert (audio[0] * tb, video[0] * tb) == (0, Fraction(21, 1000))  # 21.3 ms in Matroska's 1 ms
    ffmpeg("-i", src, "-c", "copy", tmp_path / "ff.mkv")  # ffmpeg 9 writes CodecDelay, which Matroska carries over
    caplog.clear()
    roundtrip(tmp_path / "ff.mkv", tmp_path / "again.mkv")
    assert not [m for m in caplog.messages if "priming" in m]
    assert frame_pts(tmp_path / "again.mkv", "0:a:0")[0][0] == -21 and frame_pts(tmp_path / "again.mkv")[0][0] == 0


def test_roundtrip_start_offset(clip_offset: Path, tmp_path: Path) -> None:
    out = tmp_path / "offset.mp4"
    info, _ = roundtrip(clip_offset, out)
    assert info.start_pts * info.time_base == Fraction(3, 2)
    assert frame_times(out) == frame_times(clip_offset)
    assert frame_times(out)[0] == Fraction(3, 2)


@pytest.mark.parametrize(("late", "audio", "ext"), [("audio", "aac", ".mp4"), ("audio", "pcm_s16le", ".mov"),
                                              ("video", "pcm_s16le", ".mp4"), ("video", None, ".mov")])  # fmt: skip
def test_track_starts_kept_to_the_tick(late: str, audio: str | None, ext: str, tmp_path: Path) -> None:
    """A track that starts about 0.47 s in starts there, not at 0.471: MOV/MP4 state where a track
    starts in the movie's timescale, whole milliseconds unless dove chooses one. (PCM has no encoder
    delay, in which the muxer could hide part of the start.)"""
    src = tmp_path / f"late_{late}{ext}"
    offset = ["-itsoffset", "0.478667"] if late == "audio" else []
    sine = [*offset, "-f", "lavfi", "-i", "sine=sample_rate=44100", "-c:a", audio] if audio else []
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", *sine),
           *("-vf", "settb=1/600,setpts=PTS+283" if late == "video" else "null", "-enc_time_base:v", "1/600"),
           *("-frames:v", "25", "-t", "1.5", "-c:v", "libx264", "-preset", "ultrafast"),
           *("-video_track_timescale", "600", src))  # video counted in 1/600 s  # fmt: skip
    out = tmp_path / f"out{ext}"
    roundtrip(src, out)
    start = [Fraction(pts[0]) * tb for pts, tb in [frame_pts(p, "0:a:0" if late == "audio" else "0:v:0")
                                                   for p in (src, out)]]  # fmt: skip
    assert (start[0] * 1000).denominator > 1 and start[1] == start[0]  # not a whole millisecond, and kept


def _start(path: Path, kind: str) -> float:
    line = next(s.text for s in ffinfo(path).streams if s.kind == kind)
    m = re.search(r"start (-?[\d.]+)", line)
    return float(m[1]) if m else 0.0


@pytest.mark.parametrize("ext", [".ts", ".mpg"])
def test_preview_span_without_an_index(ext: str, tmp_path: Path) -> None:
    """MPEG-TS/PS have no seek index and this clip one keyframe: the span is still exact, with its audio,
    from the file's 2 s (its sound's start, a few ms before the picture: as ffmpeg -ss counts)."""
    src = tmp_path / f"in{ext}"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=4",
        "-t",
        "4",
        "-c:v",
        "mpeg2video" if ext == ".mpg" else "libx264",
        "-g",
        "250",
        "-c:a",
        "mp2",
        src,
    )
    out = tmp_path / "preview.mkv"
    with open_reader(src, start=2, duration=1) as reader:
        frames = list(reader)
        with open_writer(out, reader.info, 64, 48, start=2, end=3) as writer:
            for frame in frames:
                writer.write(frame.rgb, frame.pts)
    t0 = reader.info.start_pts
    assert [(f.pts - t0) * reader.info.time_base for f in frames] == [Fraction(50 + i, 25) for i in range(25)]
    with av.open(str(src)) as c:  # where the picture starts after the file
        lead = c.streams.video[0].start_time * c.streams.video[0].time_base - Fraction(c.start_time, av.time_base)
    assert abs(frame_times(out)[0] - lead) <= Fraction(1, 1000) and len(frame_times(out)) == 25
    assert abs(_start(out, "Audio")) < 0.05
    full = ffmpeg_frames(src, 64, 48)
    assert psnr(np.stack([f.rgb for f in frames]), full[50:75]) > 40


def test_transcoded_audio_keeps_start_offset(clip_offset: Path, tmp_path: Path) -> None:
    out = tmp_path / "offset.webm"
    roundtrip(clip_offset, out, codec="vp9", audio="transcode")
    assert ffinfo(out).streams[1].codec == "opus"
    assert _start(out, "Video") == pytest.approx(1.5, abs=0.001)
    assert _start(out, "Audio") == pytest.approx(_start(clip_offset, "Audio"), abs=0.03)


def test_preview_span(clip_offset: Path, tmp_path: Path) -> None:
    """start/duration on the reader and start/end on the writer cut a preview that starts at 0."""
    out = tmp_path / "preview.mp4"
    with open_reader(clip_offset, start=0.2, duration=0.2) as reader:
        with open_writer(out, reader.info, 64, 48, start=0.2, end=0.4) as writer:
            frames = list(reader)
            for frame in frames:
                writer.write(frame.rgb, frame.pts)
    assert [f.index for f in frames] == list(range(6))
    assert frames[0].pts * reader.info.time_base == pytest.approx(1.7, abs=0.034)
    times = frame_times(out)
    # START counts from the file's start, its sound's (AAC priming, 21 ms before the picture), as ffmpeg -ss
    with av.open(str(clip_offset)) as c:
        zero = Fraction(c.start_time, av.time_base) + Fraction(1, 5)
    assert len(times) == 6 and abs(times[0] - (frames[0].pts * reader.info.time_base - zero)) < Fraction(1, 2000)
    assert 0 <= _start(out, "Audio") < 0.03
    audio_pts, audio_tb = frame_pts(out, "0:a")
    assert audio_pts[-1] * audio_tb < 0.4 + 0.03
    full = ffmpeg_frames(clip_offset, 64, 48)
    assert np.array_equal(np.stack([f.rgb for f in frames]), full[6:12])


def test_a_preview_counts_its_start_on_the_files_clock(tmp_path: Path) -> None:
    """A video that starts 0.5 s after its sound (`-itsoffset`): --preview 1+0.3s is the file's 1.0-1.3 s,
    as `ffmpeg -ss 1 -t 0.3` and players count it, not the video's own 1.0-1.3 s: the frames ffmpeg
    gives (video frames 15-23), timed from 0, and the sound from the file's 1.0 s (a ramp whose every
    sample says its time); a range where only sound is says where the video runs."""
    video = tmp_path / "v.mp4"  # each frame a grey of its own (its number x 6)
    ffmpeg("-f", "lavfi", "-i", "color=black:size=64x48:rate=30", "-frames:v", "30", "-vf",
           "format=yuv420p,geq=lum='32+N*6':cb=128:cr=128", "-c:v", "libx264", "-qp", "0", video)  # fmt: skip
    late = tmp_path / "late.mov"
    ffmpeg("-itsoffset", "0.5", "-i", video, "-f", "lavfi", "-i", "aevalsrc='t/4':d=2:s=48000", "-map", "0:v",
           "-map", "1:a", "-c:v", "copy", "-c:a", "pcm_s16le", late)  # fmt: skip
    out = tmp_path / "piece.mov"
    _dove(late, out, preview="1+0.3s", scale=1)
    want = ffmpeg("-ss", "1", "-t", "0.3", "-i", late, "-map", "0:v", "-f", "framemd5", "-").stdout
    count = sum(1 for line in want.splitlines() if line[:1] == "0")  # ffmpeg's frames of the range
    assert frame_times(out) == [i / Fraction(30) for i in range(count)]
    before = ffmpeg("-i", late, "-t", "1", "-map", "0:v", "-f", "framemd5", "-").stdout  # the file's first second
    with open_reader(late) as reader:  # as a plan counts them
        assert reader.info.span_frames(1, Fraction(3, 10)) == count == 9
        assert reader.info.span_frames(0, 1) == sum(1 for line in before.splitlines() if line[:1] == "0") == 15
    frames, source = ffmpeg_frames(out, 64, 48).astype(int), ffmpeg_frames(video, 64, 48).astype(int)
    near = [int(np.argmin([np.abs(f - s).mean() for s in source])) for f in frames]
    assert near == list(range(15, 24))
    pcm = subprocess.run([FFMPEG, "-v", "error", "-i", out, "-map", "0:a", "-f", "s16le", "-"], capture_output=True)
    sound = np.frombuffer(pcm.stdout, "<i2")
    assert abs(int(sound[0]) * 4 / 32768 - 1) < 0.001  # the sample at 1.0 s (not 1.5 s: 12288)
    assert abs(int(sound[-1]) * 4 / 32768 - 1.3) < 0.03  # to 1.3 s, a packet's part at most after it
    with pytest.raises(InputError, match=r"range 0\.1\+0\.2s \(the video runs 0\.500-1\.500 s\)"):
        _dove(late, tmp_path / "none.mov", preview="0.1+0.2s", scale=1)


def test_roundtrip_10bit(clip_10bit: Path, tmp_path: Path) -> None:
    out = tmp_path / "ten.mkv"
    roundtrip(clip_10bit, out, pix_fmt="yuv420p10le")
    assert "yuv420p10le" in ffinfo(out).video().text
    back, ref = ffmpeg_frames(out, 64, 48, deep=True), ffmpeg_frames(clip_10bit, 64, 48, deep=True)
    assert len(np.unique(back[0, 0, :, 1])) > 40  # 8 bits would leave about 16 levels
    assert psnr(back, ref, peak=65535) > 50
    out8 = tmp_path / "eight.mp4"
    roundtrip(clip_10bit, out8, pix_fmt="yuv420p")
    assert re.search(r"yuv420p[(,]", ffinfo(out8).video().text)


def test_full_range_greys_stay_neutral(clip_fullrange: Path, tmp_path: Path) -> None:
    """Greys written full range keep neutral chroma, 128 (without exact rounding it was 127 on every
    grey: a green cast on phones' yuvj video), and Y is the grey itself (0, 128, 255)."""
    info = probe(clip_fullrange)
    out = tmp_path / "grey.mp4"
    greys = (0, 128, 255)
    with open_writer(out, info, 64, 48, crf=0, audio="none", subtitles="none") as writer:
        for i, grey in enumerate(greys):
            writer.write(np.full((48, 64, 3), grey, np.uint8), info.start_pts + i * 1001)
    with av.open(str(out)) as c:
        for grey, frame in zip(greys, c.decode(video=0), strict=True):
            y, u, v = (
                np.frombuffer(bytes(p), np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes
            )
            assert (y == grey).all() and (u == 128).all() and (v == 128).all(), (grey, u.mean(), v.mean())


def test_roundtrip_full_range_tags(clip_fullrange: Path, tmp_path: Path) -> None:
    out = tmp_path / "full.mp4"
    roundtrip(clip_fullrange, out)
    assert re.search(r"yuvj420p|\(pc", ffinfo(out).video().text)
    assert psnr(ffmpeg_frames(out, 64, 48), ffmpeg_frames(clip_fullrange, 64, 48)) > 30


@pytest.fixture(scope="module")
def flat_full_range(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera-style full-range clip: H.264 4:2:2 10-bit tagged pc, one flat colour (RGB 194, 64, 32)."""
    src = tmp_path_factory.mktemp("range") / "flat_pc.mov"
    ffmpeg("-f", "lavfi", "-i", "color=c=0xC04020:s=64x48:r=25:d=0.08,format=yuv444p", "-vf",
           "scale=out_range=pc:out_color_matrix=bt709,format=yuv422p10le", "-c:v", "libx264", "-profile:v", "high422",
           "-color_range", "pc", "-colorspace", "bt709", src)  # fmt: skip
    return src


def _first_rgb(path: Path) -> np.ndarray:
    """The first pixel as the ffmpeg binary decodes it to RGB (exact rounding), from the range its decoder reads."""
    raw = raw_rgb(path, extra=("-frames:v", "1", "-vf", "scale=flags=accurate_rnd+full_chroma_int,format=rgb24"))
    return np.frombuffer(raw[:3], np.uint8).astype(int)


@pytest.mark.parametrize(
    ("codec", "ext", "written"),
    [("prores", ".mov", "tv"), ("prores", ".mkv", "tv"), ("h264", ".mov", "pc"), ("ffv1", ".mkv", "pc")],
)
def test_full_range_into_prores_is_converted_to_video_range(
    flat_full_range: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, codec: str, ext: str, written: str
) -> None:
    """ProRes is video range only: FFmpeg's decoder reads it limited whatever the container says, so
    full-range code values came back contrast-stretched (194, 64, 32 read 202, 56, 18). A full-range
    input is converted to limited range for it (said, once); the others keep full range."""
    out = tmp_path / f"out{ext}"
    with caplog.at_level(logging.WARNING):
        info, _ = roundtrip(flat_full_range, out, codec=codec, audio="none")
    assert info.color_range == "pc"
    assert f"p10le({written}, bt709" in ffinfo(out).video().text, ffinfo(out).video().text
    line = f"{out}: the input is full-range YUV and ProRes is video range only: converted to video (limited) range"
    assert caplog.text.count(line) == (codec == "prores"), caplog.text
    assert np.abs(_first_rgb(out) - _first_rgb(flat_full_range)).max() <= 1


def test_limited_range_into_prores_says_nothing(
    clip_bt709: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a full-range input is converted for ProRes: a limited one (most video) is written as it is, unsaid."""
    with caplog.at_level(logging.WARNING):
        roundtrip(clip_bt709, tmp_path / "out.mov", codec="prores", audio="none")
    assert "video range only" not in caplog.text, caplog.text
    assert "(tv, bt709" in ffinfo(tmp_path / "out.mov").video().text


def test_rgb_becomes_limited_range_yuv_whatever_its_range_tag(rgb_captures: dict[str, Path], tmp_path: Path) -> None:
    """RGB is full range by nature, so its range tag means nothing: tagged "pc" (ffmpeg's ffv1 and
    libx264rgb) or untagged (utvideo), it is written as limited-range YUV, as delivery files are
    (full range was shown with crushed blacks by players that ignore the flag); --pix-fmt yuvj420p
    asks for full range. Colours stay within a few levels either way."""
    assert [probe(rgb_captures[k]).color_range for k in ("bgr0", "x264rgb", "utvideo")] == ["pc", "pc", None]
    for name in ("bgr0", "x264rgb", "utvideo"):
        out = tmp_path / f"{name}.mp4"
        roundtrip(rgb_captures[name], out, crf=0)
        assert "yuv420p(tv, smpte170m" in ffinfo(out).video().text, ffinfo(out).video().text
        rgb = ffmpeg_frames(rgb_captures[name], 64, 48).astype(int)
        assert np.abs(ffmpeg_frames(out, 64, 48).astype(int) - rgb).mean() < 3  # a full-range misread: ~10
    asked = tmp_path / "asked.mp4"
    roundtrip(rgb_captures["utvideo"], asked, pix_fmt="yuvj420p")
    assert "yuvj420p(pc" in ffinfo(asked).video().text


def test_colour_tags_kept_and_hd_default(clip_bt709: Path, tmp_path: Path) -> None:
    out = tmp_path / "709.mp4"
    roundtrip(clip_bt709, out)
    assert "bt709" in ffinfo(out).video().text
    # untagged input written at HD size: tagged BT.709, as players assume for HD
    info = probe(clip_bt709)
    untagged = VideoInfo(**{**info.__dict__, "colorspace": None, "color_primaries": None, "color_trc": None})
    hd = tmp_path / "hd.mp4"
    with open_writer(hd, untagged, 1280, 720, preset="ultrafast") as writer:
        writer.write(np.full((720, 1280, 3), 128, np.uint8), 0)
    assert "bt709" in ffinfo(hd).video().text
    # and at SD size, the BT.601 matrix it is written with is tagged: players guess an untagged
    # matrix from the size each their own way (mpv takes 1024x600 for BT.709)
    sd = tmp_path / "sd.mp4"
    red = np.zeros((600, 1024, 3), np.uint8) + np.array([200, 50, 50], np.uint8)
    with open_writer(sd, untagged, 1024, 600, preset="ultrafast") as writer:
        writer.write(red, 0)
    assert "smpte170m/unknown/unknown" in ffinfo(sd).video().text
    assert np.abs(ffmpeg_frames(sd, 1024, 600)[0].astype(int) - red).max() <= 2


@pytest.mark.parametrize(("width", "height", "tags"), [(1280, 16, "(tv, bt709,"), (1278, 16, "(tv, smpte170m/unknown/unknown,"),
                                                      (16, 720, "(tv, bt709,"), (16, 718, "(tv, smpte170m/unknown/unknown,")])  # fmt: skip
def test_an_untagged_output_is_hd_by_one_rule(
    clip_bt709: Path, tmp_path: Path, width: int, height: int, tags: str
) -> None:
    """At the edges of HD (1280 wide or 720 high, as players take an untagged picture), the matrix
    written and the primaries tagged come from one rule (`formats.is_hd`): both BT.709, or BT.601 alone."""
    info = probe(clip_bt709)
    untagged = VideoInfo(**{**info.__dict__, "colorspace": None, "color_primaries": None, "color_trc": None})
    out = tmp_path / "o.mp4"
    with open_writer(out, untagged, width, height, preset="ultrafast") as writer:
        writer.write(np.full((height, width, 3), 128, np.uint8), 0)
    assert tags in ffinfo(out).video().text, ffinfo(out).video().text  # (all three bt709: said once)


def test_rotation_metadata_kept(clip_rotated: Path, tmp_path: Path) -> None:
    out = tmp_path / "rot.mp4"
    roundtrip(clip_rotated, out)
    assert re.search(r"rotation of -?90", ffinfo(out).stderr)
    applied = tmp_path / "applied.mp4"
    roundtrip(clip_rotated, applied, reader={"rotate": "apply"})
    assert "48x64" in ffinfo(applied).video().text and "Display Matrix" not in ffinfo(applied).stderr


def test_sample_aspect_ratio_kept(clip_sar: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert probe(clip_sar).sample_aspect_ratio == Fraction(4, 3)
    out = tmp_path / "sar.mp4"
    with caplog.at_level(logging.WARNING):
        roundtrip(clip_sar, out)
    assert "SAR 4:3" in ffinfo(out).video().text and caplog.text == ""
    with caplog.at_level(logging.WARNING):  # images have square pixels: said
        roundtrip(clip_sar, tmp_path / "sar" / "%03d.png")
    assert caplog.messages == [f"{tmp_path / 'sar' / '%03d.png'}: images cannot carry the source's pixel aspect "
                               "ratio (4:3); they have square pixels, so they look 64x48 where the video looks 85x48"]  # fmt: skip


def test_rotate_apply_stands_the_pixels_up(clip_sar: Path, tmp_path: Path) -> None:
    """A 4:3 pixel turned a quarter is a 3:4 pixel: the upright picture displays as the rotated
    original does (64x48 stored at SAR 4:3 shows 85x48, so upright it shows 48x85)."""
    rotated = tmp_path / "sar_rot.mp4"
    ffmpeg("-display_rotation:v", "90", "-i", clip_sar, "-c", "copy", rotated)
    applied = tmp_path / "applied.mp4"
    roundtrip(rotated, applied, reader={"rotate": "apply"})
    assert "48x64 [SAR 3:4 DAR 9:16]" in ffinfo(applied).video().text


@pytest.mark.parametrize(
    ("turn", "flip", "read_as"),
    [("0", "hflip", (0, True)), ("0", "vflip", (180, True)), ("90", "hflip", (90, True)),
     ("270", "hflip", (-90, True)), ("90", "vflip", (-90, True)), ("180", "", (180, False))],
)  # fmt: skip
def test_a_mirroring_display_matrix_is_kept_and_applied(
    turn: str, flip: str, read_as: tuple[int, bool], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A front camera's clip is shown mirrored (and turned) by its display matrix. A plain mirror came
    out upside down (PyAV reads it as a turn of -180), a turn and a mirror lost the mirror, and
    --rotate apply turned without mirroring. Kept, the output shows as the input does; applied, its
    pixels are what players show, with no matrix (ffmpeg's autorotate the reference both times).
    Images, which cannot keep it, say so."""
    src = tmp_path / "src.mp4"
    mirror = [f"-display_{flip}:v"] if flip else []
    ffmpeg("-display_rotation:v", turn, *mirror, "-i", make_clip(tmp_path / "base.mp4", frames=3), "-c", "copy", src)
    w, h = (48, 64) if int(turn) % 180 else (64, 48)
    shown = ffmpeg_frames(src, w, h)  # as players show it
    kept, applied = tmp_path / "kept.mp4", tmp_path / "applied.mp4"
    info, _ = roundtrip(src, kept)
    assert (info.rotation, info.mirrored) == read_as and "64x48" in ffinfo(kept).video().text  # stored as decoded
    assert psnr(ffmpeg_frames(kept, w, h), shown) > 30  # (a second encode; mirrored wrong: under 10)
    info, _ = roundtrip(src, applied, reader={"rotate": "apply"})
    assert (info.width, info.height, info.rotation, info.mirrored) == (w, h, 0, False)
    assert psnr(ffmpeg_frames(applied, w, h), shown) > 30 and "Display Matrix" not in ffinfo(applied).stderr
    with caplog.at_level(logging.WARNING):
        roundtrip(src, tmp_path / "img" / "%03d.png")
    words = ", ".join([f"{read_as[0]} degrees"] * bool(read_as[0]) + ["mirrored"] * read_as[1])
    assert f"cannot carry the source's rotation tag ({words}); they are stored as decoded" in caplog.text


def test_raw_dv_frame_rate(tmp_path: Path) -> None:
    """FFmpeg's raw DV demuxer gives an average rate of 60000 fps for PAL: the rate is 25."""
    dv = make_clip(tmp_path / "pal.dv", size="720x576", rate="25", frames=3, codec="dvvideo", extra=("-f", "dv"))
    info = probe(dv)
    assert (info.fps, info.num_frames) == (25, 3)
    out = tmp_path / "pal.mkv"
    roundtrip(dv, out)
    assert frame_times(out) == [Fraction(i, 25) for i in range(3)]


def test_odd_size_uses_444(clip_odd: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "odd.mp4"
    with caplog.at_level(logging.WARNING):
        roundtrip(clip_odd, out)
    text = ffinfo(out).video().text
    assert "63x47" in text and "yuv444p" in text
    assert "odd" in caplog.text
    assert decoded_frame_count(out) == 6


@pytest.mark.parametrize(
    ("codec", "ext", "name"),
    [
        ("hevc", ".mkv", "hevc"),
        ("av1", ".mp4", "av1"),
        ("vp9", ".webm", "vp9"),
        ("ffv1", ".mkv", "ffv1"),
        ("prores", ".mov", "prores"),
        ("png", ".mov", "png"),
    ],
)
def test_codecs(codec: str, ext: str, name: str, clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / f"out{ext}"
    roundtrip(clip_2997, out, codec=codec, audio="transcode", subtitles="none")
    info = ffinfo(out)
    assert info.video().codec == name
    assert decoded_frame_count(out) == 12
    assert psnr(ffmpeg_frames(out, 64, 48), ffmpeg_frames(clip_2997, 64, 48)) > 28
    assert "Audio" in info.kinds()


def test_mp4_and_mov_have_their_index_first(clip_2997: Path, tmp_path: Path) -> None:
    """Web players and YouTube read an MP4 as it downloads: its index (moov) must come before the media
    (mdat), as `ffmpeg -movflags +faststart` writes it (FFmpeg's muxer puts it last otherwise). The
    file is still renamed into place only when whole; segments that only dove reads keep it last."""
    for ext in (".mp4", ".mov"):
        out = tmp_path / f"out{ext}"
        roundtrip(clip_2997, out)
        boxes = top_boxes(out)
        assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat"), boxes
        assert decoded_frame_count(out) == 12 and leftovers(tmp_path) == []
    roundtrip(clip_2997, tmp_path / "segment.mov", index_first=False, audio="none", subtitles="none")
    boxes = top_boxes(tmp_path / "segment.mov")
    assert boxes.index("moov") > boxes.index("mdat"), boxes


def test_codec_options_passthrough(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "intra.mp4"
    roundtrip(clip_2997, out, codec_options={"g": "1", "bf": "0"}, crf=30, preset="ultrafast")
    lines = showinfo(out)
    assert len(lines) == 12 and all("type:I" in line for line in lines)


def test_audio_modes_for_webm(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.webm"
    with pytest.raises(OutputError, match=r"out\.webm: .*cannot hold aac audio.*--audio transcode"):
        roundtrip(clip_2997, out, codec="vp9", subtitles="none")
    assert not out.exists() and leftovers(tmp_path) == []
    roundtrip(clip_2997, out, codec="vp9", audio="transcode", subtitles="none")
    assert ffinfo(out).streams[1].codec == "opus" and ffinfo(out).streams[1].language == "fra"
    none = tmp_path / "none.mp4"
    roundtrip(clip_2997, none, audio="none", subtitles="none")
    assert "Audio" not in ffinfo(none).kinds()


def test_a_refusal_names_the_audio_codec_not_its_decoder(tmp_path: Path) -> None:
    """MP3 into .webm was refused as "mp3float audio" (FFmpeg's decoder); the codec is mp3, as the
    ffmpeg binary names it."""
    src = tmp_path / "mp3.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i", "sine=d=0.2",
           "-c:v", "libx264", "-c:a", "libmp3lame", src)  # fmt: skip
    assert "Audio: mp3" in ffinfo(src).stderr
    with pytest.raises(OutputError, match=r"out\.webm: the webm container cannot hold mp3 audio \(input stream #1\);"):
        open_writer(tmp_path / "out.webm", probe(src), 64, 48, codec="vp9")


def test_opus_is_refused_by_mov_before_the_run(tmp_path: Path) -> None:
    """MOV's muxer lists Opus but refuses it as it starts ("opus only supported in MP4", as the
    ffmpeg binary says): it failed the join after the whole run. Refused up front; .mp4 holds it."""
    src = tmp_path / "opus.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", "0.4", "-c:v", "libx264", "-c:a", "libopus", src)  # fmt: skip
    assert ffmpeg("-i", src, "-c", "copy", tmp_path / "ff.mov", check=False).returncode != 0  # the reference
    out = tmp_path / "out.mov"
    with pytest.raises(OutputError, match=r"out\.mov: the mov container cannot hold opus audio .*--audio transcode"):
        roundtrip(src, out, subtitles="none")
    assert not out.exists()
    roundtrip(src, tmp_path / "out.mp4")
    assert ffinfo(tmp_path / "out.mp4").streams[1].codec == "opus"


def test_default_codec_follows_the_container(clip_2997: Path, tmp_path: Path) -> None:
    """No codec chosen: .webm gets VP9 (and Opus, WebVTT), not h264 that WebM cannot hold."""
    out = tmp_path / "out.webm"
    roundtrip(clip_2997, out, audio="transcode")
    assert [(s.kind, s.codec) for s in ffinfo(out).streams] == [
        ("Video", "vp9"),
        ("Audio", "opus"),
        ("Subtitle", "webvtt"),
    ]
    assert decoded_frame_count(out) == 12
    assert [round(t, 3) for t in frame_times(out)] == [round(t, 3) for t in frame_times(clip_2997)]  # WebM: 1 ms
    roundtrip(clip_2997, tmp_path / "x.mp4")
    assert ffinfo(tmp_path / "x.mp4").video().codec == "h264"
    message = r"x\.webm: the webm container cannot hold h264 video; use --codec vp9 or an extension that can \(\.m2ts, .*\.mkv, .*\.mp4"
    with pytest.raises(OutputError, match=message) as err:
        roundtrip(clip_2997, tmp_path / "x.webm", codec="h264", audio="transcode")
    assert "\n" not in str(err.value) and leftovers(tmp_path) == []


def test_hdr_gets_hevc_by_default_where_the_container_holds_it(
    clip_hlg: Path, clip_pq: Path, clip_10bit: Path, tmp_path: Path
) -> None:
    """HDR (PQ, HLG) plays as HEVC on phones, TVs and browsers, and few decode 10-bit H.264: with no
    codec chosen, MP4, MOV, Matroska and MPEG-TS (where TVs and UHD Blu-ray players took PQ in H.264
    High 10 for nothing) get HEVC Main 10, with the HDR tags; 10-bit SDR keeps h264."""
    for src, ext, trc in ((clip_hlg, ".mp4", "arib-std-b67"), (clip_pq, ".mov", "smpte2084"),
                          (clip_hlg, ".mkv", "arib-std-b67"), (clip_pq, ".m2ts", "smpte2084")):  # fmt: skip
        out = tmp_path / f"{src.stem}{ext}"
        roundtrip(src, out)
        assert re.search(rf"hevc \(Main 10\).* yuv420p10le\(tv, bt2020nc/bt2020/{trc}\)", ffinfo(out).video().text)
    roundtrip(clip_10bit, tmp_path / "sdr.ts")
    assert ffinfo(tmp_path / "sdr.ts").video().text.count("h264 (High 10)") == 1


def test_hevc_is_tagged_hvc1_in_mp4_and_mov(clip_hlg: Path, tmp_path: Path) -> None:
    """FFmpeg's default HEVC sample entry, hev1, is refused by Apple's players: MP4 and MOV say hvc1
    (as `ffmpeg -tag:v hvc1`), and decode to the frames the same stream gives in Matroska."""
    frames = {}
    for ext in (".mp4", ".mov", ".mkv"):
        out = tmp_path / f"out{ext}"
        roundtrip(clip_hlg, out, codec="hevc")
        frames[ext] = ffmpeg_frames(out, 64, 36, deep=True)
        assert ("(hvc1 / 0x31637668)" in ffinfo(out).video().text) == (ext != ".mkv"), ffinfo(out).video().text
    assert len(frames[".mkv"]) == 5
    assert np.array_equal(frames[".mp4"], frames[".mkv"]) and np.array_equal(frames[".mov"], frames[".mkv"])


def test_8_bit_hdr_is_said_even_when_asked_for(
    clip_pq: Path, clip_10bit: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PQ or HLG in 8 bits bands badly: said, naming the --pix-fmt that keeps 10 bits, also when
    --pix-fmt asked for it; 10-bit SDR asked for as 8-bit is the user's choice, said nothing."""
    with caplog.at_level(logging.WARNING):
        roundtrip(clip_pq, tmp_path / "pq8.mkv", pix_fmt="yuv420p", reader={"warn": False})
        roundtrip(clip_10bit, tmp_path / "sdr8.mkv", pix_fmt="yuv420p")
        roundtrip(clip_pq, tmp_path / "pq10.mkv", reader={"warn": False})
    assert caplog.messages == [
        f"{tmp_path / 'pq8.mkv'}: the source is HDR (PQ) but the output (yuv420p) "
        "is 8-bit, where HDR bands badly; use --pix-fmt yuv420p10le"
    ]
    assert "yuv420p(tv, bt2020nc/bt2020/smpte2084" in ffinfo(tmp_path / "pq8.mkv").video().text


def test_a_16_bit_source_keeps_16_bits_in_ffv1_and_prores_says_its_10(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ffv1 writes a 16-bit source at 16 bits unasked; prores_ks takes 10 bits at most: said, naming
    ffv1; a depth asked for with --pix-fmt is the user's choice, said nothing."""
    src = make_clip(tmp_path / "m16.mkv", frames=1, codec="ffv1", pix_fmt="yuv444p16le",
                    vf="format=yuv444p16le,geq=lum='20000+301*X+7*Y':cb='32768+X':cr='32768-Y'")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        roundtrip(src, tmp_path / "keep.mkv", codec="ffv1")
        roundtrip(src, tmp_path / "asked.mkv", codec="ffv1", pix_fmt="yuv444p10le")
        roundtrip(src, tmp_path / "pro.mov", codec="prores", preset="4444")
    assert caplog.messages == [
        f"{tmp_path / 'pro.mov'}: the source is 16-bit but the output (yuv444p10le) is 10-bit, the most this "
        "FFmpeg's prores_ks writes; --codec ffv1 (.mkv) keeps them losslessly"
    ]
    assert "ffv1, yuv444p16le" in ffinfo(tmp_path / "keep.mkv").video().text
    assert "ffv1, yuv444p10le" in ffinfo(tmp_path / "asked.mkv").video().text


def cues(path: Path) -> list[tuple[Fraction, Fraction, str]]:
    """Subtitle cues (start, end, text) as ffmpeg decodes them, timed from the first video frame."""
    srt = ffmpeg("-copyts", "-i", path, "-map", "0:s", "-f", "srt", "-").stdout

    def seconds(t: str) -> Fraction:
        h, m, s = t.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + Fraction(s)

    t0 = frame_times(path)[0]
    return [(seconds(a) - t0, seconds(b) - t0, text) for a, b, text in re.findall(r"(\S+) --> (\S+)\n(.+)\n", srt)]


@pytest.mark.parametrize(
    ("src_ext", "dst_ext", "codec"),
    [(".mkv", ".mp4", "mov_text"), (".mp4", ".mkv", "subrip"), (".mkv", ".mov", "mov_text")],
)
def test_text_subtitles_are_converted(src_ext: str, dst_ext: str, codec: str, tmp_path: Path) -> None:
    """srt (Matroska) <-> mov_text (MP4): converted as ffmpeg does, each cue's text and timing kept."""
    src = make_clip(tmp_path / f"in{src_ext}", frames=30, audio=True, subtitles=True)  # 1 s: both cues
    out = tmp_path / f"out{dst_ext}"
    roundtrip(src, out)
    assert [(s.kind, s.codec) for s in ffinfo(out).streams][:3] == [
        ("Video", "h264"),
        ("Audio", "aac"),
        ("Subtitle", codec),
    ]
    assert ffinfo(out).streams[2].language == "eng"
    assert [text for *_, text in cues(src)] == ["Hello", "World"]
    assert cues(out) == cues(src)
    assert packet_md5(out, "0:a") == packet_md5(src, "0:a")


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_preview_keeps_the_cue_already_on_screen(ext: str, tmp_path: Path) -> None:
    """A span starting at 0.2 s is mid-way through "Hello" (0-0.4 s): it shows from 0 to 0.2 s; a cue still
    on screen when the span ends stops there."""
    src = make_clip(tmp_path / f"in{ext}", rate="25", frames=25, subtitles=True)
    out = tmp_path / f"out{ext}"
    with open_reader(src, start=0.2, duration=0.6) as reader:
        with open_writer(out, reader.info, 64, 48, start=0.2, end=0.8) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
    assert cues(src) == [(0, Fraction(2, 5), "Hello"), (Fraction(2, 5), Fraction(9, 10), "World")]
    assert cues(out) == [(0, Fraction(1, 5), "Hello"), (Fraction(1, 5), Fraction(3, 5), "World")]  # cut at 0.8 s
    with open_reader(src, start=0.2, duration=0.4) as reader:  # ends earlier inside "World" (0.4-0.9 s)
        with open_writer(out, reader.info, 64, 48, start=0.2, end=0.6, overwrite=True) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
    assert cues(out) == [(0, Fraction(1, 5), "Hello"), (Fraction(1, 5), Fraction(2, 5), "World")]


def test_preview_keeps_the_pgs_display_already_on_screen(tmp_path: Path) -> None:
    """A PGS display set has no duration: it shows until the next one. A span starting at 0.3 s, inside the
    first cue (0.2-0.5 s), lost it (only its clear came through); now that display set goes to the span's
    start, byte for byte, as an ASS or VobSub cue does. One starting at a display set, or between two cues,
    carries nothing."""
    sup = make_pgs(tmp_path / "subs.sup", [(0.2, 0.5, (8, 30, 40, 12)), (0.6, 0.9, (4, 4, 20, 8))])
    src = tmp_path / "in.mkv"
    ffmpeg(
        "-copyts",
        "-i",
        make_clip(tmp_path / "clip.mkv", rate="25", frames=25),
        "-i",
        sup,
        "-map",
        "0:v",
        "-map",
        "1",
        "-c",
        "copy",
        src,
    )
    cues = packets(src, "0:s")
    assert [(dts, pts) for dts, pts, _ in cues] == [(t, t) for t in (Fraction(1, 5), Fraction(1, 2), Fraction(3, 5),
                                                                     Fraction(9, 10))]  # fmt: skip
    md5 = [m for *_, m in cues]
    tenth = Fraction(1, 10)
    for start, length, want in [
        (3 * tenth, 4 * tenth, [(0, md5[0]), (2 * tenth, md5[1]), (3 * tenth, md5[2])]),
        (3 * tenth, tenth, [(0, md5[0])]),  # no display set in the span: on screen all through it
        (5 * tenth, 4 * tenth, [(0, md5[1]), (tenth, md5[2])]),  # the clear at the cut: as it was
        (Fraction(11, 20), Fraction(7, 20), [(tenth / 2, md5[2])]),  # (the clear at 0.9 s: the span's end)
    ]:
        out = tmp_path / f"out{float(start)}+{float(length)}.mkv"
        with open_reader(src, start=start, duration=length) as reader:
            with open_writer(out, reader.info, 64, 48, start=start, end=start + length) as writer:
                for frame in reader:
                    writer.write(frame.rgb, frame.pts)
        assert [(pts, m) for _, pts, m in packets(out, "0:s")] == want, (start, length)


def chapters(path: Path) -> list[tuple[Fraction, Fraction, str]]:
    """Chapters (start, end, title) as `ffmpeg -i` lists them."""
    found = re.findall(r"Chapter #0:\d+: start ([\d.]+), end ([\d.]+)\n\s+Metadata:\n\s+title\s+: (.*)\n",
                       ffinfo(path).stderr)  # fmt: skip
    return [(Fraction(a), Fraction(b), title) for a, b, title in found]


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_preview_cuts_the_chapters(ext: str, tmp_path: Path) -> None:
    """Chapters are placed as the cues are: shifted by the span's start and cut to the span; one that ends
    before it or starts after it is dropped."""
    meta = tmp_path / "chapters.ffmeta"
    meta.write_text(";FFMETADATA1\n" + "".join(f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={a}\nEND={b}\ntitle={t}\n"
                                                for a, b, t in [(0, 200, "A"), (200, 600, "B"), (600, 1000, "C")]))  # fmt: skip
    clip = make_clip(tmp_path / f"clip{ext}", rate="25", frames=25)
    src = tmp_path / f"in{ext}"
    ffmpeg("-i", clip, "-i", meta, "-map", "0", "-map_chapters", "1", "-c", "copy", src)
    tenth = Fraction(1, 10)
    assert chapters(src) == [(0, 2 * tenth, "A"), (2 * tenth, 6 * tenth, "B"), (6 * tenth, 1, "C")]
    for start, end, want in [
        (0.3, 0.7, [(0, 3 * tenth, "B"), (3 * tenth, 4 * tenth, "C")]),  # B straddles the start, C the end
        (0.2, 0.6, [(0, 4 * tenth, "B")]),  # A ends where the span starts, C starts where it ends
        (0.6, 1.0, [(0, 4 * tenth, "C")]),  # 0.6 as a float is 2e-17 short of 6/10: B, ending there, is left out
        (Fraction(5999999999, 10**10), 1.0, [(0, 4 * tenth, "C")]),  # B's 0.1 ns left is no tick: no empty chapter
    ]:
        out = tmp_path / f"out{ext}"
        with open_reader(src, start=start, duration=end - start) as reader:
            with open_writer(out, reader.info, 64, 48, start=start, end=end, overwrite=True) as writer:
                for frame in reader:
                    writer.write(frame.rgb, frame.pts)
        assert chapters(out) == want, (start, end)


def test_ordered_chapters_are_said_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Matroska's ordered chapters (an edition played as its list of chapters) became plain ones without a
    word: FFmpeg neither reads nor writes the flag. Now said, once; the chapters themselves still go along."""
    from dove_cli.video_io.matroska import chapter_order

    plain = make_clip(tmp_path / "plain.mkv", frames=3, chapters=True, extra=("-write_crc32", "0"))
    ordered = ordered_copy(plain, tmp_path / "ordered.mkv")
    assert chapter_order(plain) == (False, False) and chapter_order(ordered) == (True, False)
    with caplog.at_level(logging.WARNING, logger="dove_cli.video_io"):
        for src in (plain, ordered):
            roundtrip(src, tmp_path / f"out-{src.name}")
        roundtrip(ordered, tmp_path / "again.mkv", warn=False)  # (a run's writer opened again: said once)
    out = tmp_path / "out-ordered.mkv"
    assert [r.getMessage() for r in caplog.records if "chapters" in r.getMessage()] == [
        f"{out}: ordered chapters are not kept (FFmpeg cannot write them): the output plays straight through"
    ]
    assert (
        chapters(out)
        == chapters(ordered)
        == [(0, Fraction(1, 5), "Intro"), (Fraction(1, 5), Fraction(2, 5), "Main part")]
    )


def test_ordered_chapters_are_found_where_the_seek_head_says(tmp_path: Path) -> None:
    """Chapters written after the clusters (as mkvpropedit adds them) are found through the SeekHead, and a
    chapter that plays another file (ChapterSegmentUID) is seen. The file is built here by the Matroska
    spec's element IDs, each size written in 8 bytes."""
    from dove_cli.video_io.matroska import chapter_order

    def el(eid: int, body: bytes) -> bytes:
        return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + (1 << 56 | len(body)).to_bytes(8, "big") + body

    # SeekHead: Seek: SeekID (the Chapters'), SeekPosition (from the start of the segment's data)
    def seek_head(at: int) -> bytes:
        return el(0x114D9B74, el(0x4DBB, el(0x53AB, bytes.fromhex("1043A770")) + el(0x53AC, at.to_bytes(4, "big"))))

    # ChapterAtom: ChapterUID, ChapterSegmentUID; a Cluster: Timestamp; the EBML header, a Segment of unknown size
    atom = el(0xB6, el(0x73C4, b"\x01") + el(0x6E67, bytes(range(16))))
    cluster = el(0x1F43B675, el(0xE7, b"\x00"))
    header = el(0x1A45DFA3, el(0x4282, b"matroska")) + bytes.fromhex("18538067 01ffffffffffffff")

    def chapters(flag: int) -> bytes:  # Chapters: EditionEntry: EditionFlagOrdered, ChapterAtom
        return el(0x1043A770, el(0x45B9, el(0x45DD, bytes([flag])) + atom))

    mkv = tmp_path / "late.mkv"
    for flag in (1, 0):
        mkv.write_bytes(header + seek_head(len(seek_head(0)) + len(cluster)) + cluster + chapters(flag))
        assert chapter_order(mkv) == (flag == 1, True), flag
    mkv.write_bytes(header + chapters(1) + cluster)
    assert chapter_order(mkv) == (True, True)  # before the clusters, with no SeekHead
    mkv.write_bytes(header + cluster + chapters(1))  # after them, where no SeekHead says: the clusters are not read
    assert chapter_order(mkv) == (False, False)


STYLE_FIELDS = (
    "Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
    "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    "MarginL, MarginR, MarginV, Encoding"
)
ASS = f"""[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: {STYLE_FIELDS}
Style: Default,Fansub Font,12,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,1,1,1,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.00,0:00:00.40,Default,,0,0,0,,Hello
"""


def test_matroska_and_webm_are_the_same_bytes_on_every_run(clip_2997: Path, tmp_path: Path) -> None:
    """The Matroska muxer writes a random SegmentUID and track UIDs unless told to be bit-exact: two
    runs (or a --ray run and a plain one) wrote files that differed in those bytes alone, while
    MP4, MOV and MPEG-TS outputs were the same file."""
    for ext, aux in ((".mkv", {}), (".webm", {"audio": "none", "subtitles": "none"})):  # WebM holds no AAC
        outs = [tmp_path / f"{n}{ext}" for n in (1, 2)]
        for out in outs:
            roundtrip(clip_2997, out, **aux)
        assert outs[0].read_bytes() == outs[1].read_bytes(), ext
        with av.open(str(outs[0])) as c:
            assert len(c.streams) == (3 if ext == ".mkv" else 1)  # video, audio, subtitles
            assert c.metadata.get("encoder") == "Lavf"  # its muxing app, now without FFmpeg's version


def test_fonts_go_along_with_styled_subtitles(tmp_path: Path) -> None:
    """Anime releases style ASS subtitles with fonts attached to the MKV: the output keeps them."""
    (tmp_path / "s.ass").write_text(ASS)
    font = tmp_path / "Fansub Font.ttf"
    font.write_bytes(bytes(range(256)) * 40)
    src = tmp_path / "in.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-i",
        tmp_path / "s.ass",
        "-frames:v",
        "10",
        "-map",
        "0",
        "-map",
        "1",
        "-c:v",
        "libx264",
        "-c:s",
        "ass",
        "-attach",
        font,
        "-metadata:s:t:0",
        "mimetype=application/x-truetype-font",
        src,
    )
    out = tmp_path / "out.mkv"
    info, _ = roundtrip(src, out)
    assert info.attachments == ("Fansub Font.ttf",)
    ffmpeg("-dump_attachment:t:0", tmp_path / "dumped.ttf", "-i", out, "-f", "null", "-", check=False)
    assert (tmp_path / "dumped.ttf").read_bytes() == font.read_bytes()
    assert [(s.kind, s.codec) for s in ffinfo(out).streams] == [
        ("Video", "h264"),
        ("Subtitle", "ass"),
        ("Attachment", "ttf"),
    ]
    roundtrip(src, tmp_path / "again.mkv")  # no random attachment, track or segment UIDs
    assert (tmp_path / "again.mkv").read_bytes() == out.read_bytes()
    assert "Fansub Font.ttf" in (video_io.attachments_dropped(info, tmp_path / "o.mp4", "copy") or "")
    assert video_io.attachments_dropped(info, out, "copy") is None
    assert video_io.attachments_dropped(info, tmp_path / "o.ts", "none") == (
        f"{src}: 1 attachment(s) not copied (Fansub Font.ttf): only .mkv holds them"  # said without subtitles too
    )
    assert video_io.attachments_dropped(info, tmp_path / "o.mkv", "none") is None  # dropped as asked
    assert video_io.attachments_dropped(info, tmp_path / "%04d.png", "copy") is None


def test_cover_art_goes_along_as_the_attachment_it_was(tmp_path: Path) -> None:
    """A Matroska cover.jpg attachment, which FFmpeg reads as a picture stream (attached_pic), was
    dropped without a word: .mkv keeps it (same bytes, name and type), other outputs name it."""
    cover = tmp_path / "cover.jpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x32", "-frames:v", "1", cover)
    font = tmp_path / "font.ttf"
    font.write_bytes(bytes(range(256)) * 8)
    src = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "5", "-c:v", "libx264",
           "-attach", font, "-metadata:s:t:0", "mimetype=application/x-truetype-font",
           "-attach", cover, "-metadata:s:t:1", "mimetype=image/jpeg", "-metadata:s:t:1", "title=Front", src)  # fmt: skip
    for subtitles in ("copy", "none"):  # cover art is not the subtitles' (fonts go with them)
        out = tmp_path / f"out-{subtitles}.mkv"
        info, frames = roundtrip(src, out, subtitles=subtitles)
        assert info.attachments == ("font.ttf", "cover.jpg") and len(frames) == 5
        with av.open(str(out)) as c:
            fonts = ["attachment"] if subtitles == "copy" else []
            assert [s.type for s in c.streams] == ["video", *fonts, "video"]
            pic = c.streams[-1]
            assert pic.disposition & av.stream.Disposition.attached_pic
            assert dict(pic.metadata) == {"filename": "cover.jpg", "mimetype": "image/jpeg", "title": "Front"}
            assert next(bytes(p) for p in c.demux(pic) if p.size) == cover.read_bytes()
    assert video_io.attachments_dropped(info, tmp_path / "o.ts", "copy") == (
        f"{src}: 2 attachment(s) not copied (font.ttf, cover.jpg): only .mkv holds them"  # (no subtitles to need it)
    )
    with_subtitles = dataclasses.replace(info, has_subtitles=True)
    assert video_io.attachments_dropped(with_subtitles, tmp_path / "o.mp4", "copy") == (
        f"{src}: 1 attachment(s) not copied (font.ttf): only .mkv holds them, and styled subtitles need their fonts"
    )


def test_cover_art_goes_into_mp4_and_out_of_it(tmp_path: Path) -> None:
    """MP4 holds cover art too (covr; .mov does not, as with ffmpeg): a Matroska cover.jpg, or an MP4's own, goes along as the
    same picture (it was dropped, and named in the warning); from an MP4 into .mkv it becomes an
    attachment named cover.png (the covr atom has no name), which players show as the cover."""
    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x32", "-frames:v", "1", cover)
    src = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "5", "-c:v", "libx264",
           "-attach", cover, "-metadata:s:t:0", "mimetype=image/png", src)  # fmt: skip
    into_mp4, back_to_mkv = tmp_path / "o.mp4", tmp_path / "back.mkv"
    info, _ = roundtrip(src, into_mp4)
    assert info.covers == ("cover.png",) and video_io.attachments_dropped(info, into_mp4, "copy") is None
    info, frames = roundtrip(into_mp4, back_to_mkv)
    assert info.covers == info.attachments and len(frames) == 5
    for out in (into_mp4, back_to_mkv):
        with av.open(str(out)) as c:
            assert [s.type for s in c.streams] == ["video", "video"], out
            pic = c.streams[1]
            assert pic.disposition & av.stream.Disposition.attached_pic and pic.codec_context.name == "png", out
            assert next(bytes(p) for p in c.demux(pic) if p.size) == cover.read_bytes(), out
            assert c.streams[0].frames in (0, 5) and len(list(c.decode(c.streams[0]))) == 5, out
    assert video_io.attachments_dropped(info, tmp_path / "o.mov", "copy") == (
        f"{into_mp4}: 1 attachment(s) not copied (#1): only .mkv and .mp4 hold cover art"
    )
    with av.open(str(back_to_mkv)) as c:
        assert dict(c.streams[1].metadata) == {"filename": "cover.png", "mimetype": "image/png"}


def test_mp4_cover_art_is_kept_over_tags_it_cannot_hold_with(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A tag MP4 keeps only as a QuickTime key (mdta: ENCODER_SETTINGS) made every tag one, and FFmpeg then
    writes no cover art (it goes only where the standard tags go): the cover went without a word. Now the
    cover and the standard tags are kept, and the other tag is named lost; without a cover it is kept."""
    cover = tmp_path / "cover.jpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x32", "-frames:v", "1", cover)
    clip = make_clip(tmp_path / "clip.mkv", frames=3)
    tags = ("-metadata", "title=Show 01", "-metadata", "ENCODER_SETTINGS=crf=18")
    src, bare = tmp_path / "in.mkv", tmp_path / "bare.mkv"
    ffmpeg("-i", clip, "-attach", cover, "-metadata:s:t:0", "mimetype=image/jpeg", "-c", "copy", *tags, src)
    ffmpeg("-i", clip, "-c", "copy", *tags, bare)
    with caplog.at_level(logging.WARNING, logger="dove_cli.video_io"):
        roundtrip(src, tmp_path / "out.mp4")
        roundtrip(bare, tmp_path / "bare.mp4")
    out, kept = ffinfo(tmp_path / "out.mp4"), ffinfo(tmp_path / "bare.mp4")
    assert "(attached pic)" in out.streams[-1].text and re.search(r"^\s+title\s+: Show 01$", out.stderr, re.M)
    assert "ENCODER_SETTINGS" not in out.stderr and re.search(r"^\s+ENCODER_SETTINGS: crf=18$", kept.stderr, re.M)
    assert [r.getMessage() for r in caplog.records if "ENCODER_SETTINGS" in r.getMessage()] == [
        f"{tmp_path / 'out.mp4'}: the tag ENCODER_SETTINGS is not kept: FFmpeg writes an .mp4's cover art or such "
        "tags (as QuickTime keys), not both, and the cover is kept (.mkv keeps both)"
    ]


def _ebml(eid: int, body: bytes) -> bytes:
    """One EBML element: its ID's bytes, its size in 8 bytes (0x01 then 7 bytes), its body."""
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + (0x01 << 56 | len(body)).to_bytes(8, "big") + body


def test_tag_count_is_linear_and_counts_nested_tags(tmp_path: Path) -> None:
    """A Matroska Tags element of 20,010 SimpleTags (5 of them nested in 5 others) is counted in well under
    2 s (~0.2 s): a count that looked each tag up among those before it (FFmpeg's way: 0.5 s at 8,000, 11 s
    at 32,000 in C) would take minutes in Python. Built here byte by byte (Matroska's IDs: EBML 1A45DFA3, Segment 18538067, Tags
    1254C367, Tag 7373, SimpleTag 67C8, TagName 45A3, TagString 4487)."""
    from dove_cli.video_io.matroska import tag_count

    def simple(i: int, inner: bytes = b"") -> bytes:
        return _ebml(0x67C8, _ebml(0x45A3, b"T%d" % i) + _ebml(0x4487, b"v%d" % i) + inner)

    tags = b"".join(_ebml(0x7373, b"".join(simple(i) for i in range(j, j + 1000))) for j in range(0, 20_000, 1000))
    nested = _ebml(0x7373, b"".join(simple(i, simple(-i)) for i in range(5)))  # 10 SimpleTags
    path = tmp_path / "tags.mkv"
    path.write_bytes(
        _ebml(0x1A45DFA3, _ebml(0x4282, b"matroska")) + _ebml(0x18538067, _ebml(0x1254C367, tags + nested))
    )
    started = time.perf_counter()
    assert tag_count(path) == 20_010
    assert time.perf_counter() - started < 2.0
    (tmp_path / "c.mp4").write_bytes(b"\0\0\0\x10ftypisom\0\0\0\0")
    assert tag_count(tmp_path) == 0 and tag_count(tmp_path / "c.mp4") == 0


def test_thousands_of_tags_are_capped_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A file with tens of thousands of tags (a crafted one) was printed and copied whole, FFmpeg taking
    time growing as their square to read them at each of dove's openings: `dove info` shows the first
    MOST_TAGS (1,000) and counts the rest, an output keeps those (said), and a run whose input has more
    than SLOW_TAGS (here 1,000) says it will be slow. 1,200 file tags, as `ffmpeg -i` prints them."""
    from dove_cli.console import described_rows
    from dove_cli.video_io import reader
    from dove_cli.video_io.describe import describe

    meta = tmp_path / "meta.txt"
    meta.write_text(";FFMETADATA1\n" + "".join(f"t{i}=v{i}\n" for i in range(1200)))
    src, out = tmp_path / "tags.mkv", tmp_path / "out.mkv"
    ffmpeg("-i", make_clip(tmp_path / "c.mkv", frames=2), "-i", meta, "-map_metadata", "1", "-c", "copy", src)
    theirs = [(k, v) for k, v in _ff_file_tags(src).items() if k != "ENCODER"]  # (Matroska's, the muxer's own)
    assert len(theirs) == 1200
    d = describe(src)
    assert list(d["tags"].items()) == theirs[:1000] and d["tags_left"] == 200
    assert described_rows(d)[-1] == ("tag ...", "200 more, not shown (dove reads a file's first 1,000 tags)")
    monkeypatch.setattr(reader, "SLOW_TAGS", 1000)
    with caplog.at_level(logging.WARNING, logger="dove_cli.video_io"):
        roundtrip(src, out)
    assert list(_ff_file_tags(out).items()) == theirs[:1000]
    said = [r.getMessage() for r in caplog.records]
    assert f"{out}: the input has 1,200 file tags: the first 1,000 kept, the other 200 not copied" in said
    assert any(m.startswith(f"{src}: 1,20") and "Matroska tags, which FFmpeg reads in time growing" in m for m in said)


def test_overlapping_cues_into_mp4_keep_the_long_one(tmp_path: Path) -> None:
    """MP4 text tracks play cues one after another: a cue inside a long one is not delayed, and the long
    one comes back after it (ffmpeg ends it there: its last 0.3 s are lost)."""
    (tmp_path / "s.srt").write_text(
        "1\n00:00:00,100 --> 00:00:00,900\nLong cue\n\n2\n00:00:00,400 --> 00:00:00,600\nInside\n"
    )
    src = tmp_path / "in.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-i",
        tmp_path / "s.srt",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-c:s",
        "srt",
        src,
    )
    out = tmp_path / "out.mp4"
    roundtrip(src, out)
    ffmpeg("-i", src, "-c:v", "copy", "-c:s", "mov_text", tmp_path / "ffmpeg.mp4")
    assert cues(tmp_path / "ffmpeg.mp4") == [
        (Fraction(1, 10), Fraction(2, 5), "Long cue"),
        (Fraction(2, 5), Fraction(3, 5), "Inside"),
    ]
    assert cues(out) == [  # (the first line of each: the one in the middle holds "Long cue" below)
        (Fraction(1, 10), Fraction(2, 5), "Long cue"),
        (Fraction(2, 5), Fraction(3, 5), "Inside"),
        (Fraction(3, 5), Fraction(9, 10), "Long cue"),
    ]


def test_subtitles_that_do_not_fit(clip_2997_mkv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.nut"  # NUT has no text subtitle codec to convert to
    with pytest.raises(
        OutputError,
        match=r"out\.nut: the nut container cannot hold srt subtitles \(input stream "
        r"#2\); write to an extension that holds them \(\.m4v, \.mkv, \.mov, \.mp4, \.webm\) or use "
        r"--subtitles none$",
    ):
        roundtrip(clip_2997_mkv, out)
    assert not out.exists() and leftovers(tmp_path) == []
    roundtrip(clip_2997_mkv, out, subtitles="none")
    assert [k for k in ffinfo(out).kinds()] == ["Video", "Audio"]
    assert packet_md5(out, "0:a") == packet_md5(clip_2997_mkv, "0:a")


def test_what_mpeg_ts_cannot_hold_is_refused_not_stored_as_data(clip_2997_mkv: Path, tmp_path: Path) -> None:
    """MPEG-TS muxes text subtitles and FLAC as private data streams that no player reads: refused
    as for any container that cannot hold a stream (FLAC is re-encoded with --audio transcode)."""
    out = tmp_path / "out.ts"
    with pytest.raises(OutputError, match=r"out\.ts: the mpegts container cannot hold srt subtitles \(input stream "
                       r"#2\); write to an extension that holds them \(\.m4v, \.mkv, \.mov, \.mp4, \.webm\) or use "
                       r"--subtitles none$"):  # fmt: skip
        roundtrip(clip_2997_mkv, out)
    assert not out.exists() and leftovers(tmp_path) == []
    flac = tmp_path / "flac.mkv"
    ffmpeg("-i", clip_2997_mkv, "-map", "0:v", "-map", "0:a", "-c:v", "copy", "-c:a", "flac", flac)
    with pytest.raises(OutputError, match=r"out\.ts: the mpegts container cannot hold flac audio .*--audio transcode"):
        roundtrip(flac, out)
    roundtrip(flac, out, audio="transcode")
    assert [(s.kind, s.codec) for s in ffinfo(out).streams] == [("Video", "h264"), ("Audio", "aac")]
    roundtrip(clip_2997_mkv, out, subtitles="none", overwrite=True)
    assert [(s.kind, s.codec) for s in ffinfo(out).streams] == [("Video", "h264"), ("Audio", "aac")]


def test_ass_styling_lost_in_conversion_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "s.ass").write_text(ASS)
    src = tmp_path / "in.mkv"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-i", tmp_path / "s.ass", "-frames:v", "4"),
           *("-map", "0", "-map", "1", "-c:v", "libx264", "-c:s", "ass", src))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        roundtrip(src, tmp_path / "out.mp4")
    assert [(s.kind, s.codec) for s in ffinfo(tmp_path / "out.mp4").streams] == [
        ("Video", "h264"),
        ("Subtitle", "mov_text"),
    ]
    assert caplog.messages == [f"{tmp_path / 'out.mp4'}: ASS subtitles (input stream #1) converted to mov_text: "
                               "their styling (fonts, colours, positions) is lost; .mkv keeps it"]  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        roundtrip(src, tmp_path / "again.mp4", warn=False)  # a second writer of the same output
        roundtrip(src, tmp_path / "out.mkv")  # kept as ASS
        roundtrip(make_clip(tmp_path / "srt.mkv", frames=4, subtitles=True), tmp_path / "srt.mp4")  # nothing styled
    assert caplog.text == ""


def test_coarser_chroma_than_the_source_is_said(
    png_sequence: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """4:4:4 or 4:2:2 written as the codec's default 4:2:0 loses colour detail: said, naming the
    --pix-fmt that keeps it (at the output's bit depth); asked for, nothing. RGB: below."""
    full = make_clip(tmp_path / "444.mp4", pix_fmt="yuv444p", frames=2)
    prores = tmp_path / "422.mov"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=s=64x48:d=0.125:r=16", "-c:v", "prores_ks", "-profile:v", "2"),
           *("-pix_fmt", "yuv422p10le", "-color_range", "tv", prores))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        roundtrip(full, tmp_path / "out.mp4")
        roundtrip(prores, tmp_path / "out.mov")
    assert caplog.messages == [  # named: in a folder, with -q or --ray, no other line says which file
        f"{tmp_path / 'out.mp4'}: the source's chroma is 4:4:4 (yuv444p) but the output's is 4:2:0 (yuv420p): use "
        "--pix-fmt yuv444p to keep it",
        f"{tmp_path / 'out.mov'}: the source's chroma is 4:2:2 (yuv422p10le) but the output's is 4:2:0 "
        "(yuv420p10le): use --pix-fmt yuv422p10le to keep it",
    ]
    assert "yuv420p(" in ffinfo(tmp_path / "out.mp4").video().text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        roundtrip(full, tmp_path / "kept.mp4", pix_fmt="yuv444p")
        roundtrip(prores, tmp_path / "quiet.mov", warn=False)
    assert caplog.text == ""
    assert "yuv444p(" in ffinfo(tmp_path / "kept.mp4").video().text


@pytest.fixture(scope="module")
def rgb_captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Lossless RGB screen captures, 64x48, 4 frames: ffv1 bgr0 tagged full range ("pc", as ffmpeg
    tags RGB), libx264rgb gbrp (pc) in .mp4, utvideo gbrp untagged in .avi, and 10-bit ffv1 gbrp10le."""
    d = tmp_path_factory.mktemp("rgb")
    src = ("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "4")
    made = {"bgr0": d / "bgr0.mkv", "x264rgb": d / "x264rgb.mp4", "utvideo": d / "ut.avi", "gbrp10": d / "ten.mkv"}
    ffmpeg(*src, "-c:v", "ffv1", "-pix_fmt", "bgr0", made["bgr0"])
    ffmpeg(*src, "-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "gbrp", made["x264rgb"])
    ffmpeg(*src, "-c:v", "utvideo", "-pix_fmt", "gbrp", made["utvideo"])
    ffmpeg(*src, "-c:v", "ffv1", "-pix_fmt", "gbrp10le", made["gbrp10"])
    return made


def test_rgb_sources_written_as_4_2_0_are_said(
    rgb_captures: dict[str, Path], png_sequence: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """RGB (lossless captures, PNG images) has colour at every pixel: as 4:2:0 a colour edge is off by
    up to 100 levels. Said as for 4:4:4 YUV, naming both ways to keep it; asked for, nothing."""
    with caplog.at_level(logging.WARNING):
        roundtrip(rgb_captures["bgr0"], tmp_path / "bgr0.mp4")
        roundtrip(png_sequence, tmp_path / "png.mp4", reader={"fps": 25})
        roundtrip(rgb_captures["gbrp10"], tmp_path / "ten.mp4")
    assert caplog.messages == [
        f"{tmp_path / 'bgr0.mp4'}: the source is RGB (bgr0), colour at every pixel, but the output's chroma is 4:2:0 "
        "(yuv420p): use --pix-fmt yuv444p to keep its colour resolution, or --codec ffv1 (.mkv) to keep the RGB exactly",
        f"{tmp_path / 'png.mp4'}: the source is RGB (rgb24), colour at every pixel, but the output's chroma is 4:2:0 "
        "(yuv420p): use --pix-fmt yuv444p to keep its colour resolution, or --codec ffv1 (.mkv) to keep the RGB exactly",
        f"{tmp_path / 'ten.mp4'}: the source is RGB (gbrp10le), colour at every pixel, but the output's chroma is "
        "4:2:0 (yuv420p10le): use --pix-fmt yuv444p10le to keep its colour resolution, or --codec ffv1 (.mkv) to keep "
        "the RGB exactly",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        roundtrip(rgb_captures["bgr0"], tmp_path / "asked.mp4", pix_fmt="yuv444p")
        roundtrip(rgb_captures["bgr0"], tmp_path / "lossless.mkv", codec="ffv1")
    assert caplog.text == ""


@pytest.mark.parametrize(("source", "written"), [("bgr0", "bgr0"), ("x264rgb", "bgr0"), ("gbrp10", "gbrp10le")])
def test_lossless_codec_keeps_rgb_as_rgb(
    rgb_captures: dict[str, Path], source: str, written: str, tmp_path: Path
) -> None:
    """ffv1 holds RGB: an RGB source stays RGB (its own format where ffv1 takes it; 8-bit gbrp as bgr0),
    every pixel as it was; as yuv444p, ffv1's default for YUV, it was off by a few levels."""
    out = tmp_path / "out.mkv"
    roundtrip(rgb_captures[source], out, codec="ffv1")
    assert f"ffv1, {written}(" in ffinfo(out).video().text
    deep = source == "gbrp10"
    assert np.array_equal(ffmpeg_frames(out, 64, 48, deep=deep), ffmpeg_frames(rgb_captures[source], 64, 48, deep=deep))
    yuv = make_clip(tmp_path / "yuv.mp4", frames=2)
    roundtrip(yuv, tmp_path / "yuv.mkv", codec="ffv1")
    assert "ffv1, yuv444p(" in ffinfo(tmp_path / "yuv.mkv").video().text  # YUV sources as before


@pytest.mark.parametrize("ext", [".mov", ".mp4", ".ts"])
def test_limited_range_without_other_tags_is_kept_in_h264(ext: str, tmp_path: Path) -> None:
    """x264 writes the range only beside another colour tag: a ProRes 'tv' source with no matrix
    tag lost it in MOV, MP4 and MPEG-TS (Matroska's own tag kept it)."""
    src = tmp_path / "tv.mov"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=s=64x48:d=0.125:r=16", "-c:v", "prores_ks", "-profile:v", "2"),
           *("-pix_fmt", "yuv422p10le", "-color_range", "tv", src))  # fmt: skip
    assert "yuv422p10le(tv," in ffinfo(src).video().text
    out = tmp_path / f"out{ext}"
    roundtrip(src, out)
    assert "yuv420p10le(tv," in ffinfo(out).video().text


# ----------------------------------------------------------------------------------- images


def test_what_is_an_image_pattern() -> None:
    """One %d / %0Nd field and an image extension; any other % is part of a plain name."""
    for name in ("f/%06d.png", "%d.jpg", "50%_%04d.webp", "take %3d.tif"):
        assert is_pattern(name), name
    for name in ("50%_speed.mp4", "clip 100%.mp4", "100%done.mp4", "take%03d.mp4", "50%.png", "%04d_%04d.png"):
        assert not is_pattern(name), name
    assert frame_name(Path("out/50%_%04d.png"), 7) == "50%_0007.png"
    assert frame_name(Path("take %3d.tif"), 7) == "take 007.tif"  # zero-padded, as ffmpeg (not "take   7")


def test_percent_in_file_names(clip_2997: Path, tmp_path: Path) -> None:
    """A video name with %d in it is a plain name; % next to a pattern's field is kept as it is."""
    out = tmp_path / "100%done.mp4"
    roundtrip(clip_2997, out)
    assert decoded_frame_count(out) == 12
    pattern = tmp_path / "seq" / "50%_%04d.png"
    _, frames = roundtrip(clip_2997, pattern)
    assert sorted(p.name for p in pattern.parent.iterdir()) == [f"50%_{i:04d}.png" for i in range(1, 13)]
    with open_reader(pattern) as reader:
        assert np.array_equal(np.stack([f.rgb for f in reader]), np.stack([f.rgb for f in frames]))


def test_overwrite_replaces_only_what_the_pattern_writes(clip_2997: Path, tmp_path: Path, caplog) -> None:
    """--overwrite into %04d.png replaces only the names this run writes (0001 to 0012), never another
    deliverable's 000001.png, 1.png or plate_0001.png in the same folder, nor this pattern's images of
    other numbers (0013, 12345: an earlier, longer render), which stay, said in one warning; a refusal
    that does not know the numbers counts every name %04d prints (0001, 12345), never 000001.png."""
    folder = tmp_path / "sf"
    folder.mkdir()
    others = [f"{i:06d}.png" for i in range(1, 11)] + ["1.png", "plate_0001.png", "notes.txt"]
    stale = ["0013.png", "0099.png", "12345.png"]  # of this pattern, beyond the 12 frames it writes now: kept
    for name in others + stale + ["0001.png"]:
        (folder / name).write_bytes(b"old")
    with pytest.raises(OutputError, match=r"%04d\.png: 4 of the images this run writes already exist in "):
        check_output(folder / "%04d.png", False)
    roundtrip(clip_2997, folder / "%04d.png", overwrite=True)
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(others + stale + [f"{i:04d}.png" for i in range(1, 13)])
    assert all((folder / name).read_bytes() == b"old" for name in others + stale)
    assert (
        "3 other images of this pattern that this run did not write remain beside its 12 (numbers 13, 99, 12345)"
        in (caplog.text)
    )
    with pytest.raises(OutputError, match=r"%d\.png: 2 of the images this run writes already exist in .*\(1\.png to "
                                          r"12345\.png\)"):  # not 0001.png  # fmt: skip
        check_output(folder / "%d.png", False)


def test_pattern_with_two_fields_is_refused(clip_2997: Path, tmp_path: Path) -> None:
    bad = tmp_path / "frames" / "%04d_%04d.png"
    info = probe(clip_2997)
    for call in (lambda: check_output(bad, False), lambda: open_writer(bad, info, 64, 48)):
        with pytest.raises(OutputError, match=r"%04d_%04d\.png: an image pattern takes exactly one %d field") as err:
            call()
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="exactly one %d field"):
        probe(bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("ext", "min_psnr", "stored"), [(".webp", 30, "webp, argb"), (".bmp", float("inf"), "bmp, bgr24")]
)
def test_webp_and_bmp_sequences(ext: str, min_psnr: float, stored: str, clip_2997: Path, tmp_path: Path) -> None:
    """Encoders without rgb24 input (libwebp: bgra/yuv420p, bmp: bgr24) get a format they take, and the
    files hold what such an image holds, as ffmpeg reads them: a 24-bit BMP (a 32-bit BGRA one, with an
    alpha channel of its own, passed every pixel check), a lossless WebP (VP8L: argb; lossy VP8 is yuv420p)."""
    pattern = tmp_path / "frames" / f"%04d{ext}"
    _, frames = roundtrip(clip_2997, pattern, codec_options={"threads": "8"})  # as a resumable run passes it
    assert len(list(pattern.parent.iterdir())) == 12 and leftovers(tmp_path) == []
    assert psnr(ffmpeg_frames(pattern, 64, 48), np.stack([f.rgb for f in frames])) >= min_psnr
    said = subprocess.run([FFMPEG, "-hide_banner", "-i", pattern.parent / f"0001{ext}"], capture_output=True, text=True)
    assert f"Video: {stored}, 64x48" in said.stderr


def test_image_sequence_out_and_in(clip_2997: Path, tmp_path: Path) -> None:
    pattern = tmp_path / "frames" / "%06d.png"
    _, frames = roundtrip(clip_2997, pattern)
    files = sorted((tmp_path / "frames").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(1, 13)]
    ref = ffmpeg_frames(pattern, 64, 48)
    assert np.array_equal(ref, np.stack([f.rgb for f in frames]))  # PNG is lossless
    assert leftovers(tmp_path) == []
    # and back in, as a pattern with an fps
    with open_reader(pattern, fps=24) as reader:
        back = list(reader)
    assert reader.info.is_image_sequence and reader.info.fps == 24 and reader.info.num_frames == 12
    assert np.array_equal(np.stack([f.rgb for f in back]), ref)
    # existing images are not replaced without overwrite
    with pytest.raises(OutputError, match="already exist"):
        open_writer(pattern, reader.info, 64, 48)


def test_folder_of_images_to_video(png_sequence: Path, tmp_path: Path) -> None:
    out = tmp_path / "seq.mp4"
    info, frames = roundtrip(png_sequence, out, reader={"fps": Fraction(24000, 1001)})
    assert info.is_image_sequence and len(frames) == 8
    assert np.array_equal(np.stack([f.rgb for f in frames]), ffmpeg_frames(png_sequence / "frame_%04d.png", 64, 48))
    assert "23.98 fps" in ffinfo(out).video().text
    assert frame_times(out) == [Fraction(i * 1001, 24000) for i in range(8)]


def test_still_image(png_sequence: Path, tmp_path: Path) -> None:
    still = png_sequence / "frame_0003.png"
    info = probe(still)
    assert info.is_still_image and info.num_frames == 1
    out = tmp_path / "still.png"
    _, frames = roundtrip(still, out)
    assert np.array_equal(ffmpeg_frames(out, 64, 48)[0], frames[0].rgb)
    with pytest.raises(OutputError, match="one image cannot hold"):
        open_writer(tmp_path / "x.png", probe(png_sequence), 64, 48)


def _numbered_pngs(folder: Path, numbers: list[int], sizes: dict[int, tuple[int, int]] | None = None) -> None:
    """f_NNNN.png of a colour each (red = the number), 96x54 unless `sizes` says otherwise."""
    from PIL import Image

    folder.mkdir()
    for n in numbers:
        Image.new("RGB", (sizes or {}).get(n, (96, 54)), (n, 0, 0)).save(folder / f"f_{n:04d}.png")


def test_gaps_in_a_numbered_sequence_are_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """f_0001, f_0002, f_0005, f_0009: four frames, in order, as before, and now one warning that
    names the missing numbers (it was silent); a folder and a pattern alike, nothing for whole ones."""
    _numbered_pngs(tmp_path / "gaps", [1, 2, 5, 9])
    for source in (tmp_path / "gaps", tmp_path / "gaps" / "f_%04d.png"):
        caplog.clear()
        with caplog.at_level(logging.WARNING), open_reader(source, fps=25) as reader:
            reds = [int(f.rgb[0, 0, 0]) for f in reader]
        assert reds == [1, 2, 5, 9]
        said = [r.getMessage() for r in caplog.records]
        assert said == [f"{source}: 5 frame numbers are missing from the sequence: 3-4, 6-8 (f_0001.png to "
                        "f_0009.png); the 4 images are read in order, one frame each (an image output keeps each "
                            "one's number where its names allow it; a video has no gap)"]  # fmt: skip
    _numbered_pngs(tmp_path / "many", [1, *range(3, 40, 2)])  # 19 one-number gaps: the first 8, then ...
    with caplog.at_level(logging.WARNING), open_reader(tmp_path / "many", fps=25):
        assert "19 frame numbers are missing from the sequence: 2, 4, 6, 8, 10, 12, 14, 16, ... (f_0001" in caplog.text
    caplog.clear()
    _numbered_pngs(tmp_path / "whole", [7, 8, 9, 10])
    from PIL import Image

    (tmp_path / "named").mkdir()
    for name in ("a1.png", "b3.png"):  # not one numbered sequence (two names, each its number): nothing to say
        Image.new("RGB", (8, 8)).save(tmp_path / "named" / name)
    for folder in ("whole", "named"):
        with caplog.at_level(logging.WARNING), open_reader(tmp_path / folder, fps=25):
            pass
    assert caplog.text == ""


def test_a_mixed_size_sequence_is_refused_on_opening(tmp_path: Path) -> None:
    """An image of another size stopped the run at that frame, after the work before it; now it is
    refused when the sequence is opened, from the image headers."""
    _numbered_pngs(tmp_path / "mixed", [1, 2, 3, 4], sizes={3: (80, 40)})
    with pytest.raises(InputError) as err:
        open_reader(tmp_path / "mixed", fps=25)
    assert (
        str(err.value)
        == f"{tmp_path / 'mixed' / 'f_0003.png'}: size 80x40 differs from the first image (96x54): the images of a folder or pattern are the frames of one video; upscale separate photos one by one"
    )
    # The frame-by-frame check stays for what the headers did not show (an image replaced meanwhile,
    # a format PIL cannot read): the same error at that frame.
    from PIL import Image

    _numbered_pngs(tmp_path / "later", [1, 2, 3])
    with open_reader(tmp_path / "later", fps=25) as reader:
        Image.new("RGB", (80, 40)).save(tmp_path / "later" / "f_0002.png")
        with pytest.raises(InputError) as err:
            list(reader)
    assert (
        str(err.value)
        == f"{tmp_path / 'later' / 'f_0002.png'}: size 80x40 differs from the first image (96x54): the images of a folder or pattern are the frames of one video; upscale separate photos one by one"
    )


# ----------------------------------------------------------------------------------- bad input


def _audio_only(tmp: Path) -> Path:
    path = tmp / "audio.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.3", "-c:a", "aac", path)
    return path


def _zero_frames(tmp: Path) -> Path:
    path = tmp / "zero.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "0", "-c:v", "libx264", path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t / "missing.mp4", "no such file"),
        (lambda t: (t / "empty.mp4").write_bytes(b"") and None or t / "empty.mp4", "empty"),
        (lambda t: (t / "text.mp4").write_text("not a video\n" * 20) and t / "text.mp4", "not a video"),
        (_audio_only, "no video stream"),
        (_zero_frames, ""),
        (
            lambda t: (t / "empty_dir").mkdir() or t / "empty_dir",
            "no videos or images (videos: .264, .265, .266, .3g2, .3gp, .asf, .avc, .avi",
        ),
        (lambda t: t / "nothing_%04d.png", "no files match"),
    ],
)
def test_bad_inputs(make, message: str, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError) as err:
        probe(path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


# ----------------------------------------------------------------------------------- bad output


def test_existing_output_needs_overwrite(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        roundtrip(clip_2997, out)
    assert out.read_bytes() == b"keep me" and leftovers(tmp_path) == []
    roundtrip(clip_2997, out, overwrite=True)
    assert decoded_frame_count(out) == 12


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("out.xyz", "unknown output extension"),
        ("blocker/out.mp4", "cannot create folder"),
        ("frames/%04d.txt", "image extension"),
    ],
)
def test_bad_outputs(name: str, message: str, clip_2997: Path, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    info = probe(clip_2997)
    with pytest.raises(OutputError, match=message) as err:
        open_writer(tmp_path / name, info, 64, 48)
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path) == [] and not (tmp_path / "frames").exists()


def test_bad_options(clip_2997: Path, tmp_path: Path) -> None:
    info = probe(clip_2997)
    with pytest.raises(OptionError, match="unknown codec"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, codec="divx")
    with pytest.raises(OptionError, match="audio must be"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, audio="keep")
    with pytest.raises(OptionError, match="cannot write pixel format"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, codec="av1", pix_fmt="yuv444p")
    with pytest.raises(OptionError, match="--crf 52 is out of range for h264 .0 to 51"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, crf=52)
    with pytest.raises(OptionError, match="--crf -1 is out of range for vp9"):
        open_writer(tmp_path / "a.webm", info, 64, 48, crf=-1)
    with pytest.raises(OptionError, match="--preset bogus is not an hevc preset"):
        open_writer(tmp_path / "a.mkv", info, 64, 48, codec="hevc", preset="bogus")
    with pytest.raises(OptionError, match="--codec-option tune=filmm: libx264 refused them"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, codec_options={"tune": "filmm", "threads": "2"})
    with pytest.raises(OptionError, match="--codec-option tunne: libx264 has no such option"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, codec_options={"tunne": "film"})
    with pytest.raises(OptionError, match=r"movflags: a muxer option, not libx264's; .* index first \(\+faststart\)"):
        open_writer(tmp_path / "a.mp4", info, 64, 48, codec_options={"movflags": "+faststart"})  # ffmpeg's habit
    with pytest.raises(OptionError) as err:  # only dove's own threads option: not the user's --codec-option
        open_writer(tmp_path / "a.mp4", info, 64, 48, codec="av1", preset="fastest", codec_options={"threads": "8"})
    # (what was asked, not --crf; named before the encoder opens, with av1's presets)
    assert str(err.value) == "--preset fastest is not an av1 preset (0, the slowest, to 13, the fastest; default 8)"
    assert list(tmp_path.iterdir()) == []
    with open_writer(tmp_path / "edge.mp4", info, 64, 48, crf=51, preset="veryslow") as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert probe(tmp_path / "edge.mp4").num_frames == 1


@pytest.mark.skipif("libsvtav1" not in av.codecs_available, reason="this FFmpeg has no SVT-AV1")
def test_svt_av1s_own_lines_on_a_size_it_refuses_stay_behind_doves_unless_verbose() -> None:
    """SVT-AV1 prints why it refuses a size (`Svt[error]: Source Width must be less than or equal to
    16384`) from C, straight to stderr, before dove's own line that says the same: held back now
    (shown with -v). Its words on what is not the size (an option it refuses) still come out. In a
    process of its own, with SVT_LOG as `dove` sets it: what reaches its file descriptor 2 is seen."""
    script = (
        "import logging, sys\n"
        "from fractions import Fraction\n"
        "from dove_cli.video_io.formats import check_encoder_options\n"
        "if sys.argv[1] == '-v': logging.getLogger('dove_cli').setLevel(logging.INFO)\n"
        "try:\n"
        "    check_encoder_options('libsvtav1', {'svtav1-params': sys.argv[2]}, {}, int(sys.argv[3]), 64, 'yuv420p', "
        "Fraction(25))\n"
        "except Exception as exc:\n"
        "    print('error:', exc, file=sys.stderr)\n"
    )

    def stderr(verbose: str, params: str, width: int) -> str:
        env = {**os.environ, "SVT_LOG": "1"}
        run = subprocess.run([sys.executable, "-c", script, verbose, params, str(width)], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        return run.stderr

    quiet = stderr("-q", "", 16800)
    assert re.fullmatch(r"error: libsvtav1 cannot write a picture of 16800x64 \([^)]*\), where it writes yuv420p at "
                        r"256x256 with the same settings: the size is at fault; .*\n", quiet), quiet  # fmt: skip
    assert "Svt[error]: Source Width must be less than or equal to 16384" in stderr("-v", "", 16800)
    assert re.match(r"Svt\[error\]: Invalid tune flag .*\nerror: libsvtav1 ", stderr("-q", "tune=99", 256))


def test_prores_settings_are_checked_before_any_work(clip_2997: Path, tmp_path: Path) -> None:
    """--preset is the ProRes profile, and the profile decides the chroma format: a wrong name, a
    --pix-fmt of the other chroma or an odd 4:2:2 width is one line before anything is written (the
    mistakes of a user's trial: `fast` blamed --codec-option threads, 4444 failed after the run)."""
    info = probe(clip_2997)
    profiles = "proxy, lt, standard, hq, 4444, 4444xq"
    cases = [
        (dict(preset="fast"), f"--preset fast is not a prores profile ({profiles})"),
        (dict(preset="xq", codec_options={"threads": "8"}), f"--preset xq is not a prores profile ({profiles})"),
        (dict(pix_fmt="yuv444p10le"), "--pix-fmt yuv444p10le does not suit prores profile hq, which writes "
                                      "yuv422p10le; profiles 4444, 4444xq write yuv444p10le"),
        (dict(preset="4444", pix_fmt="yuv422p10le"), "--pix-fmt yuv422p10le does not suit prores profile 4444, which "
         "writes yuv444p10le, yuva444p10le; profiles proxy, lt, standard, hq write yuv422p10le"),
        (dict(preset="lt", pix_fmt="yuv420p"), "--pix-fmt yuv420p does not suit prores profile lt, which writes "
                                              "yuv422p10le"),
        (dict(crf=0), "--crf 0 is out of range for prores (1 to 64; lower is better)"),
        (dict(crf=65), "--crf 65 is out of range for prores (1 to 64; lower is better)"),
        (dict(codec_options={"profile": "4444"}), f"--codec-option profile: give the prores profile as --preset ({profiles})"),
    ]  # fmt: skip
    for opts, message in cases:
        with pytest.raises(OptionError) as err:
            open_writer(tmp_path / "p.mov", info, 64, 48, codec="prores", **opts)
        assert str(err.value) == message, opts
    with pytest.raises(OutputError, match="codec prores with yuv422p10le needs an even size, got 65x48"):
        open_writer(tmp_path / "p.mov", info, 65, 48, codec="prores")  # 4:4:4 would not be HQ
    assert list(tmp_path.iterdir()) == []
    writer = open_writer(tmp_path / "p.mov", info, 65, 48, codec="prores", preset="4444")
    assert writer.pix_fmt == "yuv444p10le"
    writer.abort()


def slice_quantisers(packet: bytes) -> set[int]:
    """The quantisers of a progressive ProRes frame's slices: frame header, picture header (its size,
    picture size, slice count), one 16-bit size per slice, then slices whose byte 1 is the quantiser."""
    pic = 8 + int.from_bytes(packet[8:10], "big")
    slices = int.from_bytes(packet[pic + 5 : pic + 7], "big")
    table = pic + (packet[pic] >> 3)
    pos, found = table + 2 * slices, set()
    for i in range(slices):
        found.add(packet[pos + 1])
        pos += int.from_bytes(packet[table + 2 * i : table + 2 * i + 2], "big")
    return found


def test_prores_crf_is_prores_ks_fixed_quantiser(clip_2997: Path, tmp_path: Path) -> None:
    """ProRes has no CRF: --crf N is prores_ks's fixed quantiser (ffmpeg's -q:v N), read back from
    every slice of every frame; without it the profile's rate control picks them."""
    info = probe(clip_2997)
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), np.uint8)
    found = {}
    for crf in (3, 20, None):
        path = tmp_path / f"q{crf}.mov"
        with open_writer(path, info, 64, 48, codec="prores", preset="lt", crf=crf) as writer:
            for i, frame in enumerate(frames):
                writer.write(frame, info.start_pts + 1001 * i)
        with av.open(str(path)) as c:
            found[crf] = [slice_quantisers(bytes(p)) for p in c.demux(c.streams.video[0]) if p.size]
    assert found[3] == [{3}] * 3 and found[20] == [{20}] * 3
    assert found[None] not in ([{3}] * 3, [{20}] * 3)


def test_hevc_streams_of_one_or_two_frames_are_written(clip_2997: Path, tmp_path: Path) -> None:
    """libx265 leaves the dts of such streams uninitialised: the MOV muxer refused it at random (a
    25-frame --codec hevc run failed at its 1-frame last segment 4 times out of 5)."""
    info = probe(clip_2997)
    rng = np.random.default_rng(0)
    for frames in (1, 2):
        for attempt in range(6):
            path = tmp_path / f"{frames}_{attempt}.mov"
            with open_writer(path, info, 64, 48, codec="hevc") as writer:
                for i in range(frames):
                    writer.write(rng.integers(0, 256, (48, 64, 3), np.uint8), info.start_pts + 1001 * i)
            with av.open(str(path)) as c:
                packets = [(p.pts, p.dts) for p in c.demux(c.streams.video[0]) if p.size]
            assert packets == [(info.start_pts + 1001 * i,) * 2 for i in range(frames)], packets


def test_exception_inside_writer_leaves_nothing(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_reader(clip_2997) as reader, open_writer(out, reader.info, 64, 48) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
                if frame.index == 5:
                    raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


class _DiskFull:
    """Wraps an output container; every mux fails as a full disk would."""

    def __init__(self, real) -> None:
        self.real = real

    def mux(self, packets) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def test_disk_full(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with open_reader(clip_2997) as reader:
        writer = open_writer(out, reader.info, 64, 48, codec_options={"bf": "0", "tune": "zerolatency"})
        writer._out = _DiskFull(writer._out)  # type: ignore[attr-defined]
        with pytest.raises(OutputError, match=r"out\.mp4: disk full"):
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
            writer.close()
    assert list(tmp_path.iterdir()) == []


def test_abort_removes_folders_it_made(clip_2997: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "out.mp4"  # (two folders, as a folder run makes under its OUT)
    with pytest.raises(RuntimeError), folders_made_under(tmp_path):
        with open_reader(clip_2997) as reader, open_writer(out, reader.info, 64, 48) as writer:
            writer.write(next(iter(reader)).rgb, 0)
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_missing_pts_and_jpeg_sequence(clip_2997: Path, tmp_path: Path) -> None:
    """pts=None continues at the input frame rate; JPEG sequences are written at high quality."""
    info = probe(clip_2997)
    out = tmp_path / "nopts.mkv"
    with (
        open_reader(clip_2997) as reader,
        open_writer(out, reader.info, 64, 48, audio="none", subtitles="none") as writer,
    ):
        frames = list(reader)
        for frame in frames:
            writer.write(frame.rgb, None)
    assert decoded_frame_count(out) == 12
    times = frame_times(out)
    assert times[-1] - times[0] == pytest.approx(11 * 1001 / 30000, abs=0.002)
    jpg = tmp_path / "jpg" / "f%03d.jpg"
    with open_writer(jpg, info, 64, 48) as writer:
        for frame in frames:
            writer.write(frame.rgb, frame.pts)
    assert len(list((tmp_path / "jpg").iterdir())) == 12
    assert psnr(ffmpeg_frames(jpg, 64, 48), np.stack([f.rgb for f in frames])) > 30


def test_h264_bytes_are_a_function_of_the_frames(clip_2997: Path, tmp_path: Path) -> None:
    """Same frames, same options -> same file, run after run.

    x264's AVX-512 code broke this: on this noisy 76x76 crop of a demo clip it gave 9 different
    files in 12 runs (x264_options patched to {}); with the AVX2 cap, one.
    """
    import hashlib

    with open_reader(demo_clip("001.mp4")) as reader:
        crop = np.stack([frame.rgb[:76, :76] for _, frame in zip(range(15), reader, strict=False)]).astype(float)
    clip = np.clip(crop + np.random.default_rng(0).normal(0, 12, crop.shape), 0, 255).astype(np.uint8)
    info, digests = probe(clip_2997), set()
    for run in range(12):
        out = tmp_path / f"{run}.mp4"
        with open_writer(out, info, 76, 76, audio="none", crf=30) as writer:
            for frame in clip:
                writer.write(frame)
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
        with open_reader(out) as reader:  # decoding in between moves the heap around, as a real run does
            assert sum(1 for _ in reader) == len(clip)
    assert len(digests) == 1


@pytest.mark.parametrize("deep", [False, True])
def test_planar_frames_are_written_as_interleaved_ones(deep: bool, clip_2997: Path, tmp_path: Path) -> None:
    """The pipeline hands the writers [H, W, 3] views of planar [3, H, W] memory (blend.to_code_values),
    8-bit ones go into FFmpeg plane by plane: PNGs hold exactly those pixels, and a video is byte for
    byte the one interleaved arrays make (swscale's 16-bit planar path would not give that)."""
    dtype = np.uint16 if deep else np.uint8
    rng = np.random.default_rng(1)
    planar = rng.integers(0, np.iinfo(dtype).max + 1, (4, 3, 48, 62), dtype=dtype)  # 62: rows padded in FFmpeg
    views = planar.transpose(0, 2, 3, 1)
    assert not views[0].flags.c_contiguous and views[0].transpose(2, 0, 1).flags.c_contiguous
    info = dataclasses.replace(probe(clip_2997), bit_depth=10 if deep else 8)
    pattern = tmp_path / "png" / "%04d.png"
    with open_writer(pattern, info, 62, 48) as writer:
        for frame in views:
            writer.write(frame)
    assert np.array_equal(ffmpeg_frames(pattern, 62, 48, deep=deep), views)
    for name, frames in (("planar", views), ("interleaved", np.ascontiguousarray(views))):
        with open_writer(tmp_path / f"{name}.mkv", info, 62, 48, audio="none", subtitles="none") as writer:
            for frame in frames:
                writer.write(frame)
    assert packet_md5(tmp_path / "planar.mkv", "0:v") == packet_md5(tmp_path / "interleaved.mkv", "0:v")


def test_x264_params_of_the_user_come_after_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video_io.formats, "x264_options", lambda: {"x264-params": "asm=AVX2"})
    spec = video_io.CODECS["h264"]
    opts = video_io.formats.encoder_options("h264", spec, None, None, {"x264-params": "keyint=10"})
    assert opts["x264-params"] == "asm=AVX2:keyint=10"
    assert "x264-params" not in video_io.formats.encoder_options("vp9", video_io.CODECS["vp9"], None, None, None)


def test_ten_bit_output_is_exact_at_every_pixel(tmp_path: Path) -> None:
    """Threaded swscale once left 8 pixels per slice start undefined in >8-bit outputs (often 512)."""
    info = VideoInfo(path=tmp_path / "src.mkv", width=1272, height=720, num_frames=6, fps=Fraction(24),
                     time_base=Fraction(1, 24), bit_depth=16)  # fmt: skip
    rgb = np.empty((720, 1272, 3), np.uint16)  # 318 x 4: a width that is no multiple of 16
    rgb[...] = (30000, 5000, 50000)
    out = tmp_path / "flat.mkv"
    with open_writer(out, info, 1272, 720, codec="ffv1", pix_fmt="yuv444p10le", audio="none") as writer:
        for t in range(6):
            writer.write(rgb, t)
    with av.open(str(out)) as c:
        for frame in c.decode(video=0):
            for plane in frame.planes:
                values = np.frombuffer(bytes(plane), np.uint16).reshape(plane.height, -1)[:, : plane.width]
                assert len(np.unique(values)) == 1, np.unique(values, return_counts=True)


def test_every_codec_a_container_accepts_is_decodable_from_the_file(tmp_path: Path) -> None:
    """The up-front check (before hours of model work) accepts exactly the pairs whose file ffmpeg
    then decodes: MPEG-TS muxes any codec but stores the others as data, and MOV fails at the first
    VP9 or AV1 packet, after the whole run. A refused pair names extensions that do hold it."""
    from dove_cli.video_io.formats import CODECS, NVENC
    from media import decoded_frame_count, ffmpeg

    src = make_clip(tmp_path / "src.mkv", frames=4)
    info = probe(src)
    fmt = video_io.VIDEO_EXTENSIONS
    held, suggested = set(), {}
    for ext in sorted(set(fmt) - {".m4v", ".m2ts", ".mts"}):  # the same muxers as .mp4 and .ts
        for codec in (c for c in CODECS if c not in NVENC):
            out = tmp_path / f"{codec}{ext}"
            try:
                writer = open_writer(out, info, 64, 48, codec=codec, audio="none")
            except (OutputError, OptionError) as exc:
                assert "cannot hold" in str(exc) and " or an extension that can (" in str(exc), (codec, ext, exc)
                suggested[codec, ext] = str(exc).split("can (")[1].rstrip(")").split(", ")
                continue
            with open_reader(src) as reader, writer:
                for frame in reader:
                    writer.write(frame.rgb)
            probe_err = ffmpeg("-v", "error", "-i", out, "-map", "0:v:0", "-f", "null", "-").stderr
            assert decoded_frame_count(out) == 4 and not probe_err.strip(), (codec, ext, probe_err)
            held.add((codec, fmt[ext]))
    assert len(held) == 26 and len(suggested) == 16  # 6 containers x 7 codecs, as checked by hand
    for (codec, ext), holders in suggested.items():
        assert ext not in holders and all((codec, fmt[h]) in held for h in holders), (codec, ext, holders)


# ------------------------------------------------------------------------------- tags and timecode


def _dove(src: Path, out: Path, **opts) -> None:
    """`dove upscale SRC -o OUT --model bilinear`, on the CPU."""
    from dove_cli.upscaling import upscale

    upscale(src, out, model="bilinear", device="cpu", **opts)


def _ff_file_tags(path: Path) -> dict[str, str]:
    """The file's tags as `ffmpeg -i` prints them (the first Metadata block), but the muxer's own."""
    block = ffinfo(path).stderr.split("Metadata:\n", 1)[1].split("  Duration:", 1)[0]
    tags = dict(re.findall(r"^ {4}(\S+)\s*: (.*)$", block, re.M))
    return {k: v for k, v in tags.items() if k not in ("major_brand", "minor_version", "compatible_brands", "encoder")}


def _ff_timecodes(path: Path) -> list[str]:
    """Every `timecode` tag `ffmpeg -i` prints (video stream, tmcd stream), in any case."""
    return re.findall(r"^\s+timecode\s*: (.+)$", ffinfo(path).stderr, re.M | re.I)


@pytest.mark.parametrize(("rate", "tc"), [("30000/1001", "00:09:59;27"), ("60000/1001", "00:00:59;57"),
                                          ("25", "23:59:59:23")])  # fmt: skip
def test_timecodes_count_on_as_ffmpeg_counts_them(rate: str, tc: str, tmp_path: Path) -> None:
    """FFmpeg's MPEG-2 encoder writes every frame's timecode in its GOP header (-g 1): drop-frame
    minutes (kept every tenth), 4 dropped numbers at 59.94 and the 24 hour wrap come out the same."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={rate}", "-frames:v", "6", "-c:v", "mpeg2video", "-g", "1",
           "-timecode", tc, tmp_path / "gop.mpg")  # fmt: skip
    shown = ffmpeg("-i", tmp_path / "gop.mpg", "-vf", "showinfo", "-f", "null", "-").stderr
    theirs = re.findall(r"GOP timecode: (\S+)", shown)  # frames 1.. (frame 0's is in the sequence header)
    fps = Fraction(rate)
    assert len(theirs) == 5 and [move_timecode(tc, fps, fps, i) for i in range(1, 6)] == theirs
    assert move_timecode("01:00:00:10", Fraction(25), Fraction(50), 1) == "01:00:00:21"  # fields
    assert move_timecode("10:00:00;00", Fraction(25), Fraction(25), 1) is None  # no 25 fps drop-frame
    assert move_timecode("reel 7", Fraction(25), Fraction(25), 1) is None


def test_timecode_of_film_from_telecine() -> None:
    """--deinterlace ivtc: 5 video frames are 4 film frames, and no 24 fps timecode drops frames.
    29.97 non-drop and 23.976 timecodes name the same film frame on every second; 10 minutes of
    drop-frame timecode are 17982 video frames, 14385.6 film frames."""
    video, film = Fraction(30000, 1001), Fraction(24000, 1001)
    assert move_timecode("01:00:00:00", video, film, 0) == "01:00:00:00"
    assert move_timecode("01:00:00:00", video, film, 25) == "01:00:01:01"
    assert move_timecode("00:10:00;00", video, film, 0) == "00:09:59:10"
    assert move_timecode("00:10:00;00", video, film, 14) == "00:10:00:00"
    assert move_timecode("00:10:00;00", Fraction(25), film, 0) is None  # no 25 fps drop-frame


@pytest.fixture(scope="module")
def clip_timecode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera-style .mov: 59.94 fps, PCM audio, start timecode 01:02:03:04 (a tmcd track)."""
    path = tmp_path_factory.mktemp("tc") / "tc.mov"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=60000/1001", "-f", "lavfi", "-i", "sine=duration=0.2"),
           *("-frames:v", "12", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le"),
           *("-timecode", "01:02:03:04", "-metadata", "creation_time=2024-05-01T10:00:00Z", path))  # fmt: skip
    return path


def test_a_variable_rate_output_ends_where_its_input_does(tmp_path: Path) -> None:
    """Every 7th frame of 30 fps kept (233 ms apart, as ffmpeg's select leaves it the last frame lasts
    33 ms): the output's video as long as the input's (.mp4 by a run, joined from its segments; .mov and
    .mkv as the writer writes them), not a 233 ms step longer; 29.97 fps in ms as long as its frames are, not
    its last frame's 33 ms."""
    src = tmp_path / "keep7.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-frames:v", "4", "-vf", "select='not(mod(n,7))'",
           "-fps_mode", "vfr", "-c:v", "libx264", src)  # fmt: skip
    cfr = make_clip(tmp_path / "cfr.mkv", frames=6)  # 29.97 fps in ms: its last frame 33 ms

    def length(path: Path) -> Fraction:  # the video stream's, as PyAV reads it (Matroska: the file's, in ms)
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            return s.duration * s.time_base if s.duration else Fraction(c.duration, av.time_base)

    ends = Fraction(22, 30)  # frame 21's time, and one frame of 30 fps
    assert abs(length(src) - ends) < Fraction(1, 1000)  # (its header's length is in ms)
    _dove(src, tmp_path / "run.mp4")
    assert length(tmp_path / "run.mp4") == ends
    for path, ext, want in ((src, ".mov", ends), (src, ".mkv", ends), (cfr, ".mp4", Fraction(6 * 1001, 30000))):
        out = tmp_path / f"out_{path.stem}{ext}"
        with open_reader(path) as reader, open_writer(out, reader.info, 64, 48) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
        assert abs(length(out) - want) <= (Fraction(1, 2000) if ext == ".mkv" else 0), out


def test_an_image_output_says_it_loses_a_variable_rate_and_a_late_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Images hold no frame times: a variable-rate video's steps (as ffmpeg times its frames) and a first
    frame 0.5 s into the file (after its sound) are named in the one warning; a constant rate from the
    file's start is not (`test_an_image_output_says_once_what_it_leaves_out`)."""
    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-frames:v", "12", "-vf",
           "setpts='(N+2*gte(N,4)+4*gte(N,8))/30/TB'", "-fps_mode", "vfr", "-c:v", "libx264", vfr)  # fmt: skip
    steps = [(b - a) * 1000 for a, b in itertools.pairwise(frame_times(vfr))]
    video = make_clip(tmp_path / "v.mp4", frames=6, rate="30", size="64x48")
    late = tmp_path / "late.mp4"
    ffmpeg("-itsoffset", "0.5", "-i", video, "-f", "lavfi", "-i", "sine=duration=1", "-map", "0:v", "-map", "1:a",
           "-c:v", "copy", "-c:a", "aac", late)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        for src, out in ((vfr, "a"), (late, "b")):
            with open_reader(src) as reader:
                open_writer(tmp_path / out / "%04d.png", reader.info, 64, 48).abort()
    said = [m for m in caplog.messages if "images hold no" in m]
    head = "images hold no frame times, audio, subtitles, captions, timecode, chapters or tags; not kept:"
    assert said == [
        f"{tmp_path / 'a' / '%04d.png'}: {head} the frame times (a variable rate: steps of "
        f"{float(min(steps)):.0f} to {float(max(steps)):.0f} ms) (a video output such as .mkv keeps them)",
        f"{tmp_path / 'b' / '%04d.png'}: {head} the first frame's time ({float(frame_times(late)[0]):.3f} s into "
        "the file); 1 audio stream (a video output such as .mkv keeps them)",
    ]
    assert frame_times(late)[0] == Fraction(1, 2) and min(steps) < max(steps)


def test_an_image_output_says_once_what_it_leaves_out(
    clip_timecode: Path, clip_2997: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Images hold pixels only: the input's audio, subtitles, timecode, chapters and tags are named in
    one warning (what --audio/--subtitles none leave out is not); an input with none of them, none."""
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        _dove(clip_timecode, tmp_path / "tc" / "%06d.png", preview="0+0.1s")
        _dove(clip_2997, tmp_path / "subs" / "%06d.png", preview="0+0.1s", audio="none")
        _dove(tmp_path / "tc" / "%06d.png", tmp_path / "seq" / "%06d.png", fps="25")
    said = [m for m in caplog.messages if "images hold no" in m]
    assert said == [
        f"{tmp_path / 'tc' / '%06d.png'}: images hold no frame times, audio, subtitles, captions, timecode, chapters or tags; not kept: "
        "1 audio stream; the timecode 01:02:03:04; the tag creation_time (a video output such as .mkv keeps them)",
        f"{tmp_path / 'subs' / '%06d.png'}: images hold no frame times, audio, subtitles, captions, timecode, chapters or tags; not kept: "
        "1 subtitle stream; 2 chapters; the tags title, comment (a video output such as .mkv keeps them)",
    ]


@pytest.mark.parametrize("ext", [".mov", ".mp4", ".mkv"])
def test_the_start_timecode_is_kept(ext: str, clip_timecode: Path, tmp_path: Path) -> None:
    """As `ffmpeg -map 0 -c copy` keeps it: MOV and MP4 get a tmcd track referenced by the video, MKV a tag."""
    out = tmp_path / f"out{ext}"
    _dove(clip_timecode, out)
    if ext == ".mkv":
        with av.open(str(out)) as c:
            assert [dict(s.metadata).get("TIMECODE") for s in c.streams] == ["01:02:03:04", None]
        return
    ref = tmp_path / f"ref{ext}"
    ffmpeg("-i", clip_timecode, "-map", "0:v", "-map", "0:a", "-c", "copy", ref)  # MP4 cannot take the tmcd as is
    assert _ff_timecodes(out) == _ff_timecodes(ref) == ["01:02:03:04", "01:02:03:04"]
    assert [s.kind for s in ffinfo(out).streams] == [s.kind for s in ffinfo(ref).streams] == ["Video", "Data", "Audio"]
    assert "tmcd" in ffinfo(out).streams[1].text and "Track Reference" in ffinfo(out).stderr
    with av.open(str(out)) as c:
        assert [(s.type, s.metadata.get("timecode")) for s in c.streams] == [
            ("video", "01:02:03:04"), ("audio", None), ("data", "01:02:03:04")]  # fmt: skip


@pytest.fixture(scope="module")
def clip_reel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera-style .mov whose timecode track names its reel, A001C003 (ffmpeg writes the video's
    reel_name tag into the tmcd track it makes)."""
    path = tmp_path_factory.mktemp("reel") / "reel.mov"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "3", "-c:v", "mpeg4"),
           *("-timecode", "01:00:00:00", "-metadata:s:v:0", "reel_name=A001C003", path))  # fmt: skip
    return path


def _ff_streams(shown: str) -> dict[str, str]:
    """The text of each stream (its line and tags) in `ffmpeg -i`'s output `shown`, by kind: Video, Data, ..."""
    blocks = re.split(r"^\s+Stream #0:\d+", shown, flags=re.M)[1:]
    return {re.search(r": (\w+):", b)[1]: b for b in blocks}  # type: ignore[index]


@pytest.mark.parametrize("ext", [".mov", ".mkv", ".mp4", ".ts", ".png"])
def test_the_reel_name_goes_with_the_timecode(
    ext: str, clip_reel: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Conform and relink in an NLE match clips by reel name and timecode: the reel name was dropped,
    unsaid, and the tmcd track named VideoHandler (the video's handler name, copied, names it too).
    A .mov keeps it in its tmcd track, a .mkv as a tag; an .mp4 (whose muxer writes none), a .ts (no
    timecode at all) and images say they do not."""
    out = tmp_path / (f"out{ext}" if ext != ".png" else "frames/%06d.png")
    if ext == ".png":
        with caplog.at_level(logging.WARNING, logger="dove_cli"):
            _dove(clip_reel, out)
        assert [m for m in caplog.messages if "reel" in m] == [
            f"{out}: images hold no frame times, audio, subtitles, captions, timecode, chapters or tags; not kept: the timecode "
            "01:00:00:00 (reel A001C003) (a video output such as .mkv keeps them)"]  # fmt: skip
        return
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        _dove(clip_reel, out)
    said = [m for m in caplog.messages if "reel" in m]
    shown = ffinfo(out).stderr
    streams = _ff_streams(shown)
    reel = re.compile(r"^\s+reel_name\s+: A001C003$", re.M | re.I)
    if ext == ".mov":
        assert reel.search(streams["Data"]) and not reel.search(streams["Video"]) and not said, streams
        assert re.findall(r"handler_name\s+: (\w+)", shown) == ["VideoHandler", "TimeCodeHandler"]
    elif ext == ".mkv":
        assert reel.search(streams["Video"]) and "Data" not in streams and not said, streams
    elif ext == ".mp4":
        assert "tmcd" in streams["Data"] and not reel.search(shown), streams
        assert re.findall(r"handler_name\s+: (\w+)", shown) == ["VideoHandler", "TimeCodeHandler"]
        assert said == [f"{out}: the input's reel name A001C003 not kept: .mp4 cannot hold it (.mov and .mkv can); "
                        "the timecode 01:00:00:00 is"]  # fmt: skip
    else:
        assert said == [f"{out}: the input's timecode 01:00:00:00 (reel A001C003) not kept: MPEG-TS cannot hold it "
                        "(.mov, .mp4 and .mkv can)"]  # fmt: skip


def test_frames_an_edit_list_hides_are_not_counted(tmp_path: Path) -> None:
    """`ffmpeg -ss 0.5 -c copy` of long-GOP H.264 (a keyframe every 16 frames) keeps the frames from
    the keyframe before the cut, its edit list hiding the 12 before 0.5 s: info, the plan and the
    progress counted the 48 stored (nb_frames) where the file shows (and a run makes) 36. An edit
    that ends early (here one made half as long in the file) hides frames at the end too: up to the
    next keyframe flagged as the lead-in is, those after it left out of FFmpeg's index. An AVI without
    its index (idx1) still counts the frames its header says, not the index FFmpeg builds as it reads."""
    src, trim, short = tmp_path / "src.mov", tmp_path / "trim.mov", tmp_path / "short.mov"
    for path in (src, tmp_path / "indexed.avi"):
        ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "48", "-c:v", "libx264"),
               *("-preset", "ultrafast", "-g", "16", path))  # fmt: skip
    ffmpeg("-ss", "0.5", "-i", src, "-c", "copy", trim)
    data = bytearray(trim.read_bytes())
    span = data.index(b"elst") + 12  # version 0: flags, 1 entry, then its span (4 bytes), media time, rate
    data[span : span + 4] = (int.from_bytes(data[span : span + 4], "big") // 2).to_bytes(4, "big")
    short.write_bytes(data)
    unindexed = tmp_path / "unindexed.avi"
    unindexed.write_bytes((tmp_path / "indexed.avi").read_bytes().replace(b"idx1", b"JUNK"))
    from dove_cli.video_io.describe import describe

    counts = [(describe(p)["video"]["frames"], probe(p).num_frames, decoded_frame_count(p))
              for p in (trim, short, unindexed)]  # fmt: skip
    assert counts == [(36, 36, 36), (18, 18, 18), (48, 48, 48)]
    assert movie_edits(trim)[1][0][0][1] > 0  # (an edit from 0.5 s)


def test_a_preview_starts_at_its_own_timecode(tmp_path: Path) -> None:
    """The input's timecode plus the frames before the preview: 59;28 + 3 frames at 29.97 drop-frame
    (00:01:00;00 and ;01 do not exist); also from a tmcd track that the video does not refer to, and
    from a Matroska file's tag."""
    src = tmp_path / "df.mov"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30000/1001", "-frames:v", "12", "-c:v", "libx264"),
           *("-preset", "ultrafast", "-timecode", "00:00:59;28", src))  # fmt: skip
    _dove(src, tmp_path / "out.mov", preview="0.1+0.2s")  # from frame 3 (0.1001 s)
    assert _ff_timecodes(tmp_path / "out.mov") == ["00:01:00;03", "00:01:00;03"]
    roundtrip(src, tmp_path / "direct.mov", reader={"start": 0.1, "duration": 0.2}, start=0.1, end=0.3)  # no segments
    assert _ff_timecodes(tmp_path / "direct.mov") == ["00:01:00;03", "00:01:00;03"]
    only_tmcd = tmp_path / "tmcd.mov"  # a tmcd track the video does not refer to (no tref): some cameras'
    only_tmcd.write_bytes(src.read_bytes().replace(b"tref", b"free"))
    with av.open(str(only_tmcd)) as c:
        assert c.streams.video[0].metadata.get("timecode") is None and c.streams.data[0].metadata["timecode"]
    _dove(only_tmcd, tmp_path / "out.mkv", preview="0.1+0.2s")
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.video[0].metadata["TIMECODE"] == "00:01:00;03"
    in_file = tmp_path / "file.mkv"  # ffmpeg -timecode puts it on the file in Matroska
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30000/1001", "-frames:v", "12", "-c:v", "libx264"),
           *("-preset", "ultrafast", "-timecode", "10:00:00;00", in_file))  # fmt: skip
    _dove(in_file, tmp_path / "file-out.mp4", preview="0.1+0.2s")
    assert _ff_timecodes(tmp_path / "file-out.mp4") == ["10:00:00;03", "10:00:00;03"]


def test_mov_keeps_every_language_in_the_spelling_it_holds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """FFmpeg's MOV muxer keeps only the languages of QuickTime's old table, in one ISO 639-2 spelling
    each (ger, not deu; fra, not fre): a broadcaster's .ts lost 18 of 41 languages in .mov, silently.
    Every language of both spellings is written in the one ffmpeg's own .mov copy keeps (one it keeps
    as it is stays so); Maori, in neither spelling, is untagged and said in one warning."""
    from dove_cli.video_io.formats import ISO639_2_BT, ISO639_2_SYNONYMS

    codes = [c for pair in ISO639_2_BT for c in pair] + ["eng", "und"]
    src = tmp_path / "langs.ts"
    tags = [a for i, code in enumerate(codes) for a in ("-map", "1:a", f"-metadata:s:a:{i}", f"language={code}")]
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "lavfi", "-i", "sine=duration=0.2"),
           *("-map", "0:v", *tags, "-frames:v", "5", "-c:v", "libx264", "-c:a", "mp2", src))  # fmt: skip
    ffmpeg("-i", src, "-map", "0", "-c", "copy", tmp_path / "ff.mov")
    ff = {code: s.language for code, s in zip(codes, ffinfo(tmp_path / "ff.mov").streams[1:], strict=True)}
    assert sum(ff[c] is None for c in codes) == 22  # 19 spellings, both of Maori's, und
    out = tmp_path / "out.mov"
    with caplog.at_level(logging.WARNING):
        roundtrip(src, out)
    for code, s in zip(codes, ffinfo(out).streams[1:], strict=True):
        if ff[code] is not None:
            assert s.language == code, (code, s.text)  # kept as ffmpeg keeps it
        elif code not in ("mao", "mri", "und"):
            assert s.language == ISO639_2_SYNONYMS[code] and ff[s.language] == s.language, (code, s.text)
        else:
            assert s.language is None, s.text
    (mao, mri) = (codes.index("mao") + 1, codes.index("mri") + 1)
    assert caplog.messages == [f"{out}: .mov holds no tag for the language of input streams #{mao} (mao), #{mri} "
                               "(mri): written untagged; .mp4 and .mkv keep them"]  # fmt: skip
    caplog.clear()
    sub = make_clip(tmp_path / "sub.mkv", rate="25", frames=5, subtitles=True,
                    extra=("-metadata:s:s:0", "language=deu", "-metadata:s:v:0", "language=fre"))  # fmt: skip
    roundtrip(sub, tmp_path / "sub.mov")  # the video's language, and an SRT subtitle's (converted to mov_text)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [s.language for s in ffinfo(tmp_path / "sub.mov").streams] == ["fra", "ger"] and warned == []
    roundtrip(src, tmp_path / "out.mp4")  # MP4 keeps any code as it is
    assert [s.language for s in ffinfo(tmp_path / "out.mp4").streams] == ["und", *codes]  # (no language: und)


def test_a_multiplex_keeps_the_programme_of_its_video_and_says_what_it_leaves_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A two-programme broadcast TS: programme 1's video was upscaled, programme 2's video dropped
    unsaid and its French audio attached to programme 1 as if an alternate track. The video's own
    programme goes along (its audio; a .ts its number and service name), the rest is said once;
    video_stream picks the other programme. Checked with the ffmpeg binary."""
    src = make_programmes_ts(tmp_path / "mux.ts")
    out = tmp_path / "a.mkv"
    with caplog.at_level(logging.WARNING):
        roundtrip(src, out)
    assert caplog.messages == [f"{out}: dove upscales one video stream, programme 1 'ProgA' (video #0 with its own "
                               "audio and subtitles); left out: programme 2 'ProgB': video #2 48x32, audio #3 "
                               "(--video-stream N picks another)"]  # fmt: skip
    got = ffinfo(out)
    assert got.kinds() == ["Video", "Audio"] and "64x48" in got.video().text and got.streams[1].language == "deu"
    assert packet_md5(out, "0:a") == packet_md5(src, "0:1")
    caplog.clear()
    out = tmp_path / "b.ts"
    with caplog.at_level(logging.WARNING):
        roundtrip(src, out, reader={"video_stream": 2})
    assert caplog.messages == [f"{out}: dove upscales one video stream, programme 2 'ProgB' (video #2 with its own "
                               "audio and subtitles); left out: programme 1 'ProgA': video #0 64x48, audio #1 "
                               "(--video-stream N picks another)"]  # fmt: skip
    got = ffinfo(out)
    assert got.kinds() == ["Video", "Audio"] and "48x32" in got.video().text and got.streams[1].language == "fra"
    assert packet_md5(out, "0:a") == packet_md5(src, "0:3")
    assert re.search(r"Program 2 *\n *Metadata:\n *service_name *: ProgB\n *service_provider *: FFmpeg", got.stderr)
    caplog.clear()
    roundtrip(src, tmp_path / "c.mkv", audio="none")  # nothing of programme 2 but its video would have gone
    assert any(
        m.endswith("left out: programme 2 'ProgB': video #2 48x32 (--video-stream N picks another)")
        for m in caplog.messages
    ), caplog.messages
    caplog.clear()
    radio = tmp_path / "radio.ts"  # a multiplex with a radio service: a programme of sound alone
    ffmpeg("-i", src, "-map", "0:0", "-map", "0:1", "-map", "0:3", "-c", "copy", "-program", "title=TV:st=0:st=1",
           "-program", "title=Radio:program_num=2:st=2", radio)  # fmt: skip
    roundtrip(radio, tmp_path / "d.mkv")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [f"{tmp_path / 'd.mkv'}: dove upscales one video stream, programme 1 'TV' (video #0 "
                               "with its own audio and subtitles); left out: programme 2 'Radio': audio #2"]  # fmt: skip
    assert ffinfo(tmp_path / "d.mkv").kinds() == ["Video", "Audio"]
    with pytest.raises(InputError, match=r"mux\.ts: --video-stream 1 is not a video stream of this file \(its video: "
                       r"#0, #2; `dove info .*mux\.ts` lists every stream\)$"):  # fmt: skip
        open_reader(src, video_stream=1)


@pytest.mark.parametrize("ext", [".ts", ".m2ts"])
def test_programme_tables_are_read_across_packets(ext: str, tmp_path: Path) -> None:
    """The programme tables as ffmpeg lists them: a PMT of 30 audio tracks spans two packets, an
    M2TS has 192-byte packets, and a capture may start mid-packet (before the next service table,
    which ffmpeg repeats every 0.5 s)."""
    from dove_cli.video_io.programmes import ts_programmes

    tags = [a for i in range(30) for a in ("-map", "1:a", f"-metadata:s:a:{i}", "language=eng")]
    src = tmp_path / f"many{ext}"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "lavfi", "-i", "sine=duration=1.2"),
           *("-map", "0:v", *tags, "-frames:v", "30", "-c:v", "libx264", "-c:a", "mp2", "-metadata"),
           *("service_name=Many Tracks", "-metadata", "service_provider=Station", src))  # fmt: skip
    pids = {int(m, 16) for m in re.findall(r"Stream #0:\d+\[0x([0-9a-f]+)\]", ffinfo(src).stderr)}
    assert len(pids) == 31
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(src.read_bytes()[100:])
    for path in (src, cut):
        (programme,) = ts_programmes(path)
        assert (programme.number, programme.pids, programme.name, programme.provider) == (1, pids, "Many Tracks",
                                                                                          "Station")  # fmt: skip
    assert ts_programmes(make_clip(tmp_path / "clip.mkv")) == []


def test_a_second_video_stream_is_said_to_be_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file of two video streams outside MPEG-TS (two angles in one .mkv): the first is read and
    the second was dropped unsaid; every audio stream goes along (no programmes to tell them apart)."""
    base = make_clip(tmp_path / "base.mkv", rate="25", frames=5, audio=True)
    ffmpeg(*("-i", base, "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25", "-map", "0:v", "-map", "1:v"),
           *("-map", "0:a", "-frames:v:1", "5", "-c:v", "libx264", "-c:a", "copy", tmp_path / "two.mkv"))  # fmt: skip
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        roundtrip(tmp_path / "two.mkv", out)
    assert caplog.messages == [f"{out}: dove upscales one video stream, video #0; left out: video #1 32x24 "
                               "(--video-stream N picks another)"]  # fmt: skip
    assert ffinfo(out).kinds() == ["Video", "Audio"]


@pytest.fixture(scope="module")
def caption_ts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_caption_ts(tmp_path_factory.mktemp("captions") / "cc.ts")


@pytest.mark.parametrize(("ext", "codec", "deinterlace"), [(".ts", None, "off"), (".mov", None, "off"),
                                                           (".mkv", "hevc", "off"), (".mkv", None, "field")])  # fmt: skip
def test_closed_captions_are_kept(
    caption_ts: Path, ext: str, codec: str | None, deinterlace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """EIA-608 captions carried in the video (A/53), which US broadcast material must keep, were
    dropped unsaid when the video was re-encoded. They go to the encoder with each frame, and
    ffmpeg reads the same captions at the same times back from the output; at double rate
    (--deinterlace field) with the first field of each frame only, else each letter showed twice."""
    text = caption_text(caption_ts)
    assert "HELLO BROADCAST" in text and "00:00:00,400 --> 00:00:00,800" in text, text
    out = tmp_path / f"out{ext}"
    with caplog.at_level(logging.WARNING):
        info, frames = roundtrip(caption_ts, out, codec=codec, reader={"deinterlace": deinterlace})
    assert info.captions and caption_text(out) == text
    assert len(frames) == 60 if deinterlace == "field" else 30
    assert [m for m in caplog.messages if "closed captions" in m] == []


def test_closed_captions_survive_inverse_telecine(caption_ts: Path, tmp_path: Path) -> None:
    """--deinterlace ivtc: decimate drops 1 frame in 5 and the caption bytes on it ("HELLO BROADCAST"
    read back as "HELLO OADCT", as after ffmpeg's own fieldmatch,decimate). Every byte is kept, at
    the times ffmpeg's fps filter gives them at the film rate (its caption FIFO)."""
    reference = tmp_path / "fps.mp4"
    ffmpeg("-i", caption_ts, "-vf", "fps=24000/1001", "-c:v", "libx264", "-a53cc", "1", "-an", reference)
    expected = caption_text(reference)
    assert "HELLO BROADCAST" in expected and "00:00:00,375 --> 00:00:00,750" in expected, expected
    info, frames = roundtrip(caption_ts, tmp_path / "out.mp4", reader={"deinterlace": "ivtc"})
    assert info.captions and len(frames) == 24
    assert caption_text(tmp_path / "out.mp4") == expected


def test_closed_captions_an_output_cannot_keep_are_said(
    caption_ts: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ProRes (the .mov delivery), --codec-option a53cc=0 and images lose them: said once. Kept,
    they change no picture: the frames the encoder gets carry the input's properties, but not its
    picture types (which would force its keyframes)."""
    with caplog.at_level(logging.WARNING):
        roundtrip(caption_ts, tmp_path / "p.mov", codec="prores")
        roundtrip(caption_ts, tmp_path / "none.mkv", codec_options={"a53cc": "0"})
        roundtrip(caption_ts, tmp_path / "f%03d.png")
    assert caplog.messages == [
        f"{tmp_path / 'p.mov'}: the input's closed captions (EIA-608/708 in the video) are not kept: prores_ks cannot "
        "carry them (h264 and hevc keep them)",
        f"{tmp_path / 'none.mkv'}: the input's closed captions (EIA-608/708 in the video) are not kept: "
        "--codec-option a53cc=0 drops them (h264 and hevc keep them)",
        f"{tmp_path / 'f%03d.png'}: images hold no frame times, audio, subtitles, captions, timecode, chapters or tags; not kept: "
        "1 audio stream; the closed captions (a video output such as .mkv keeps them)",
    ]  # fmt: skip
    assert caption_text(tmp_path / "p.mov") == caption_text(tmp_path / "none.mkv") == ""
    roundtrip(caption_ts, tmp_path / "kept.mkv")
    assert "HELLO" in caption_text(tmp_path / "kept.mkv")
    decoded = [[line for line in ffmpeg("-i", tmp_path / f, "-map", "0:v", "-f", "framemd5", "-").stdout.splitlines()
                if not line.startswith("#")] for f in ("none.mkv", "kept.mkv")]  # fmt: skip
    assert decoded[0] == decoded[1] and len(decoded[0]) == 30


def test_what_mpeg_ts_does_not_keep_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Chapters, the file's tags and stream titles are lost in .ts (ffmpeg's own copy loses them too,
    checked here): one warning names them all; the languages are kept and not named."""
    src = make_clip(tmp_path / "in.mkv", rate="25", frames=10, audio=True, chapters=True,
                    extra=("-metadata:s:v:0", "title=Main video"))  # fmt: skip
    ffmpeg("-i", src, "-map", "0", "-c", "copy", tmp_path / "ff.ts")
    for kept in (ffinfo(tmp_path / "ff.ts"), None):
        out = tmp_path / "out.ts"
        if kept is None:
            with caplog.at_level(logging.WARNING):
                roundtrip(src, out)
            kept = ffinfo(out)
        assert "Chapter #" not in kept.stderr and "title" not in kept.stderr and kept.streams[1].language == "fra"
    assert caplog.messages == [
        f"{out}: MPEG-TS keeps no file tags, chapters or stream titles; not kept: title, COMMENT, 2 chapters, the titles "
        "of streams #0 'Main video', #1 'French sine' (.mkv keeps them all, .mp4 and .mov too)"
    ]


def test_the_chapter_track_of_an_mp4_is_not_said_but_other_data_streams_are(
    clip_2997: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """FFmpeg's MOV demuxer shows the QuickTime chapter track as a bin_data stream: its chapters are
    carried, so nothing is said of it; a GoPro-style GPS track (bin_data too, in a file with chapters,
    as many samples as chapters) is still said."""
    ts = tmp_path / "data.ts"
    (tmp_path / "d.bin").write_bytes(bytes(range(256)) * 8)
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "data", "-i", tmp_path / "d.bin"),
           *("-map", "0", "-map", "1", "-frames:v", "6", "-c:v", "libx264", "-c:d", "copy", ts))  # fmt: skip
    (tmp_path / "chapters.txt").write_text(
        ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=100\ntitle=A\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=100\nEND=240\ntitle=B\n"
    )
    gps = tmp_path / "gps.mp4"
    ffmpeg(
        "-i",
        ts,
        "-i",
        tmp_path / "chapters.txt",
        "-map",
        "0",
        "-map_chapters",
        "1",
        "-c",
        "copy",
        "-tag:d",
        "gpmd",
        gps,
    )
    with av.open(str(gps)) as c:
        assert [s.name for s in c.streams] == ["h264", "bin_data", "bin_data"] and c.streams[1].frames == 2
    with av.open(str(clip_2997)) as c:
        assert [s.name for s in c.streams if s.type == "data"] == ["bin_data"] and len(c.chapters()) == 2
    with caplog.at_level(logging.WARNING):
        _dove(clip_2997, tmp_path / "out.mp4")
        _dove(gps, tmp_path / "gps-out.mp4")
    assert caplog.messages == [
        f"{tmp_path / 'gps-out.mp4'}: input data stream #1 (bin_data) not copied (dove copies video, audio, "
        "subtitles, chapters, tags and the timecode)"
    ]
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert len(c.chapters()) == 2


def test_what_is_not_kept_of_the_timecode_and_data_streams_is_said(
    clip_timecode: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ts = tmp_path / "data.ts"
    (tmp_path / "d.bin").write_bytes(bytes(range(256)) * 8)
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "data", "-i", tmp_path / "d.bin"),
           *("-map", "0", "-map", "1", "-frames:v", "6", "-c:v", "libx264", "-c:d", "copy", ts))  # fmt: skip
    reel = tmp_path / "reel.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "6", "-metadata", "timecode=reel 7", reel)
    with caplog.at_level(logging.WARNING):
        _dove(ts, tmp_path / "out.mkv")
        _dove(clip_timecode, tmp_path / "out.ts", audio="none")
        _dove(reel, tmp_path / "reel-out.mkv", preview="0.1+0.1s")
        _dove(reel, tmp_path / "reel-whole.mkv")  # kept as it is
        _dove(clip_timecode, tmp_path / "tc.mkv")  # its tmcd track is the timecode: nothing to say
    assert caplog.messages == [
        f"{tmp_path / 'out.mkv'}: input data stream #1 (bin_data) not copied (dove copies video, audio, subtitles, "
        "chapters, tags and the timecode)",
        f"{tmp_path / 'out.ts'}: MPEG-TS keeps no file tags, chapters or stream titles; not kept: creation_time "
        "(.mkv keeps them all, .mp4 and .mov too)",
        f"{tmp_path / 'out.ts'}: the input's timecode 01:02:03:04 not kept: MPEG-TS cannot hold it (.mov, .mp4 and "
        ".mkv can)",
        f"{tmp_path / 'reel-out.mkv'}: the input's timecode reel 7 not kept: dove cannot count it on to the --preview "
        "start",
    ]
    assert _ff_timecodes(tmp_path / "reel-out.mkv") == [] and _ff_timecodes(tmp_path / "reel-whole.mkv") == ["reel 7"]


APPLE_TAGS = {
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15",
    "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
}


@pytest.mark.parametrize("apple", [True, False])
def test_quicktime_keys_are_kept_and_plain_tags_stay_as_they_were(apple: bool, tmp_path: Path) -> None:
    """An iPhone's mdta keys survive in .mov/.mp4 (written as mdta keys then) and .mkv (as tags),
    with the title, location and creation time; a file without such keys is written the default way."""
    src = tmp_path / "phone.mov"
    tags = {"title": "Paris trip", "location": "+48.8584+002.2945/", "creation_time": "2024-05-01T10:00:00Z"}
    tags |= APPLE_TAGS if apple else {}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "4", "-c:v", "libx264",
           *(["-movflags", "use_metadata_tags"] if apple else []),
           *[a for k, v in tags.items() for a in ("-metadata", f"{k}={v}")], src)  # fmt: skip
    with av.open(str(src)) as c:
        theirs = dict(c.metadata)
    assert {k for k in tags} <= set(theirs)
    for ext in (".mov", ".mp4", ".mkv"):
        out = tmp_path / f"out{ext}"
        _dove(src, out)
        with av.open(str(out)) as c:
            ours = {k.lower(): v for k, v in c.metadata.items()}
        same = {k: theirs[k][:19] if k == "creation_time" else theirs[k] for k in tags}  # MKV writes microseconds
        assert {k: ours.get(k.lower(), "")[: len(v)] for k, v in same.items()} == same, ext
        if ext != ".mkv":  # as the ffmpeg binary reads them, too (MP4 adds a location-eng)
            assert _ff_file_tags(src).items() <= _ff_file_tags(out).items(), ext
            assert (b"mdta" in out.read_bytes()) == apple, ext  # the QuickTime keys atom: only when needed


def test_transparency_in_a_later_image_of_a_sequence_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the first image was looked at: an RGBA image later in a sequence lost its alpha silently."""
    from PIL import Image

    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(1, 6):
        if i < 3:
            Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"f_{i:04d}.png")
        else:  # half see-through from the third image on
            Image.new("RGBA", (8, 8), (i, 0, 0, 128)).save(folder / f"f_{i:04d}.png")
    with caplog.at_level(logging.WARNING), open_reader(folder, fps=25) as reader:
        assert len(list(reader)) == 5
    said = [r.getMessage() for r in caplog.records if "alpha" in r.getMessage()]
    assert said == [f"{folder / 'f_0003.png'}: the alpha channel (transparency) is dropped; the output is opaque"]
    caplog.clear()  # as a run reads: a probe that says what it sees, then a quiet reader that reads it all
    with caplog.at_level(logging.WARNING):
        with open_reader(folder, fps=25):
            pass
        with open_reader(folder, fps=25, warn=False) as reader:
            assert len(list(reader)) == 5
    assert [r.getMessage() for r in caplog.records if "alpha" in r.getMessage()] == said
    for i in (1, 2):  # now the first image is see-through: the probe says it, once
        (folder / f"f_{i:04d}.png").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        with open_reader(folder, fps=25):
            pass
        with open_reader(folder, fps=25, warn=False) as reader:
            assert len(list(reader)) == 3
    assert [r.getMessage() for r in caplog.records if "alpha" in r.getMessage()] == [
        f"{folder}: the alpha channel (transparency) is dropped; the output is opaque"
    ]


def test_audio_few_players_play_in_the_container_is_copied_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """FFmpeg puts Vorbis into .mp4 without a word, and Apple's players and browsers do not play it."""
    src = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.4", "-f", "lavfi", "-i",
           "sine=duration=0.4", "-c:v", "libx264", "-c:a", "libvorbis", "-shortest", src)  # fmt: skip
    for ext, said in ((".mp4", True), (".mkv", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            roundtrip(src, tmp_path / f"out{ext}")
        line = f"audio stream #1 (vorbis) copied into .{ext[1:]}, where few players play it; .mkv plays it"
        assert (line in caplog.text) == said, caplog.text
        with av.open(str(tmp_path / f"out{ext}")) as c:
            assert c.streams.audio[0].codec_context.name == "vorbis"


def test_audio_the_encoder_refuses_is_one_line_before_any_frame(tmp_path: Path) -> None:
    """192 kHz PCM (AAC stops at 96 kHz): --audio transcode opens the encoder with the writer, so it
    is refused in one line naming the stream, not a failed write at the first frame."""
    src = tmp_path / "hires.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i",
           "sine=duration=0.2:sample_rate=192000", "-c:v", "libx264", "-c:a", "pcm_s24le", src)  # fmt: skip
    info = probe(src)
    with pytest.raises(OutputError, match=r"out\.mp4: audio stream #1 \(pcm_s24le, mono, 192000 Hz\) cannot be "
                       r"encoded as aac \(.*\); use --audio copy or none$"):  # fmt: skip
        open_writer(tmp_path / "out.mp4", info, 64, 48, audio="transcode")
    assert leftovers(tmp_path) == []


def test_pcm_copied_into_mp4_is_said_and_into_mov_not(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """PCM (OBS's lossless recordings) goes into .mp4 as ISO/IEC 23003-5's ipcm, which browsers do not
    play; .mov stores it as QuickTime's own sowt, which Apple's players and editors play. Said once
    for all the tracks (it was a line for each)."""
    src = tmp_path / "obs.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.4", "-f", "lavfi", "-i",
           "sine=duration=0.4", "-map", "0", "-map", "1", "-map", "1", "-c:v", "libx264", "-c:a", "pcm_s16le",
           "-shortest", src)  # fmt: skip
    for ext, said, entry in ((".mp4", True, b"ipcm"), (".mov", False, b"sowt")):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            roundtrip(src, tmp_path / f"out{ext}")
        line = (f"audio streams #1 (pcm_s16le), #2 (pcm_s16le) copied into .{ext[1:]}, where few players play them; "
                ".mov and .mkv play it, and --audio transcode makes AAC")  # fmt: skip
        assert caplog.text.count("few players") == said and (line in caplog.text) == said, caplog.text
        assert entry in (tmp_path / f"out{ext}").read_bytes()  # the sample entry FFmpeg writes
        assert packet_md5(tmp_path / f"out{ext}", "0:a") == packet_md5(src, "0:a")


def test_matroska_pcm_copies_into_mp4_with_its_counts_default_layout(tmp_path: Path) -> None:
    """Matroska stores PCM's channel count, not its layout ("2 channels"); the MP4 muxer writes a PCM
    track's layout and refused to close without one, at the join after the whole run (and again
    at every --resume). Given its count's default, as ffmpeg -c copy does: the same samples."""
    src = tmp_path / "pcm.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i", "sine=d=0.2",
           "-filter_complex", "[1]asplit[a][b];[a]pan=stereo|c0=c0|c1=c0[st];[b]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|"
           "c4=c0|c5=c0[six]", "-map", "0", "-map", "[st]", "-map", "[six]", "-c:v", "libx264", "-c:a:0",
           "pcm_s16le", "-c:a:1", "pcm_s24le", src)  # fmt: skip
    out = tmp_path / "out.mp4"
    roundtrip(src, out)
    shown = [re.search(r"Hz, ([^,]+),", a.text)[1] for a in ffinfo(out).streams if a.kind == "Audio"]
    assert shown == ["stereo", "5.1"]
    for i in (0, 1):
        decoded = [ffmpeg("-i", f, "-map", f"0:a:{i}", "-f", "md5", "-").stdout for f in (src, out)]
        assert decoded[0] == decoded[1]


def test_a_copy_the_muxer_refuses_at_its_close_is_refused_before_any_frame(tmp_path: Path) -> None:
    """E-AC-3 in .nut reads as AC-3, which the MP4 muxer refuses only as it writes its index (ffmpeg
    -c copy fails there too): dove muxes each copied track's first packet into a file in memory
    as it opens the writer, so the refusal comes in one line before the run, not at the join."""
    src = tmp_path / "eac3.nut"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i", "sine=d=0.2",
           "-c:v", "libx264", "-c:a", "eac3", src)  # fmt: skip
    info = probe(src)
    with pytest.raises(OutputError, match=r"out\.mp4: the mp4 container cannot hold audio stream #1 \(ac3\) as a copy: "
                       r"its muxer refuses it \(Invalid argument\); write to an extension that holds it \(.*\.mkv.*\) or "
                       r"use --audio transcode to re-encode it or --audio none to drop it$"):  # fmt: skip
        open_writer(tmp_path / "out.mp4", info, 64, 48)
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.mp4").exists()
    roundtrip(src, tmp_path / "out.mkv")  # (one that holds it: no refusal)
    assert packet_md5(tmp_path / "out.mkv", "0:a") == packet_md5(src, "0:a")


def test_audio_transcode_says_each_reencode_and_the_plan_lists_every_track(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--audio transcode made lossless masters lossy with nothing said (-v only): a lossless track
    re-encoded is warned, a lossy one told; the writer's `audio_plan` (what --dry-run shows) says
    what becomes of every track, with the codec's name, not its decoder's (mp3, not mp3float)."""
    src = tmp_path / "tracks.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i", "sine=d=0.2",
           *("-map", "0", "-map", "1", "-map", "1", "-map", "1", "-c:v", "libx264", "-ac:a:0", "2"),
           *("-c:a:0", "pcm_s16le", "-c:a:1", "libmp3lame", "-c:a:2", "aac", "-metadata:s:a:1", "title=Dub"), src)  # fmt: skip
    info = probe(src)
    plans = {}
    for audio in ("copy", "transcode", "none"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dove_cli"):
            writer = open_writer(tmp_path / "out.mkv", info, 64, 48, audio=audio, overwrite=True)
            writer.abort()
        plans[audio] = writer.audio_plan
        said = [(r.levelname, r.getMessage()) for r in caplog.records if "re-encoded" in r.getMessage()]
        if audio == "transcode":
            assert said == [
                ("WARNING", f"{tmp_path / 'out.mkv'}: audio stream #1 pcm_s16le 2 channels 44.1 kHz, lossless, re-encoded "
                 "to aac stereo at a nominal 128 kb/s, lossy (--audio transcode); --audio copy keeps it as it is"),
                ("INFO", f"{tmp_path / 'out.mkv'}: audio stream #2 mp3 mono 44.1 kHz 'Dub' re-encoded to aac mono at "
                 "a nominal 69 kb/s (--audio transcode)"),
            ]  # fmt: skip
        else:
            assert said == []
    tracks = ["#1 pcm_s16le 2 channels 44.1 kHz", "#2 mp3 mono 44.1 kHz 'Dub'", "#3 aac mono 44.1 kHz"]
    assert plans == {
        "copy": tuple(f"{t}: copied" for t in tracks),
        "transcode": (f"{tracks[0]}: re-encoded to aac stereo at a nominal 128 kb/s",
                      f"{tracks[1]}: re-encoded to aac mono at a nominal 69 kb/s", f"{tracks[2]}: copied"),
        "none": tuple(f"{t}: dropped (--audio none)" for t in tracks),
    }  # fmt: skip
    shown = [a.text for a in ffinfo(src).streams if a.kind == "Audio"]  # the ffmpeg binary names the codecs so too
    assert [re.search(r"Audio: (\w+).*?, (\d+) Hz", t).groups() for t in shown] == [
        ("pcm_s16le", "44100"), ("mp3", "44100"), ("aac", "44100")]  # fmt: skip
    roundtrip(src, tmp_path / "out.mov", audio="transcode", overwrite=True)  # what the re-encodes make
    made = [a.text for a in ffinfo(tmp_path / "out.mov").streams if a.kind == "Audio"]
    assert [re.search(r"Audio: (\w+).*Hz, (\w+)", t).groups() for t in made] == [("aac", "stereo")] + [
        ("aac", "mono")
    ] * 2


def test_mov_keeps_audio_titles_as_their_handler_names(tmp_path: Path) -> None:
    """MOV has no track title: the ffmpeg binary showed the .mov's audio tracks as "SoundHandler",
    their titles gone, copied or re-encoded alike. Written as the handler name, which it shows."""
    src = tmp_path / "titled.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i", "sine=d=0.2",
           *("-map", "0", "-map", "1", "-map", "1", "-c:v", "libx264", "-c:a:0", "aac", "-c:a:1", "pcm_s16le"),
           *("-metadata:s:a:0", "title=Main English", "-metadata:s:a:1", "title=French dub"), src)  # fmt: skip
    for audio in ("copy", "transcode"):
        out = tmp_path / f"{audio}.mov"
        roundtrip(src, out, audio=audio)
        names = re.findall(r"Audio: .*\n\s+Metadata:\n\s+handler_name\s+: (.*)", ffinfo(out).stderr)
        assert names == ["Main English", "French dub"], ffinfo(out).stderr


def test_pcm_channel_layouts_matroska_drops_are_said_once(
    four_tracks: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Matroska stores a PCM track's channel count, not its layout: an NLE's mono tracks labelled FL
    and a 5.1(side) mix read back as "1 channels" and "6 channels" (the ffmpeg binary shows it). Said
    in one warning naming them; stereo, its count's default, is not lost, nor a track in no named
    order ("1 channels", a Matroska input's mono PCM: it was named). .mov keeps them all."""
    src = tmp_path / "layouts.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-f", "lavfi", "-i", "sine=d=0.2",
           "-filter_complex", "[1]asplit=3[a][b][c];[a]pan=FL|c0=c0[fl];[b]pan=stereo|c0=c0|c1=c0[st];"
           "[c]pan=5.1(side)|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[side]", "-map", "0", "-map", "[fl]", "-map", "[st]",
           "-map", "[side]", "-c:v", "libx264", "-c:a", "pcm_s24le", src)  # fmt: skip
    for ext, said in ((".mkv", True), (".mov", False)):
        caplog.clear()
        out = tmp_path / f"out{ext}"
        with caplog.at_level(logging.WARNING):
            roundtrip(src, out)
        line = (f"{out}: .{ext[1:]} stores a PCM track's channel count, not its layout; not kept: the channel "
                "layouts of audio streams #1 (FL), #3 (5.1(side)) (.mov keeps them)")  # fmt: skip
        assert caplog.text.count("channel layout") == said and (line in caplog.text) == said, caplog.text
        shown = [re.search(r"Hz, ([^,]+),", a.text)[1] for a in ffinfo(out).streams if a.kind == "Audio"]
        kept = [a == b for a, b in zip(shown, ["1 channels (FL)", "stereo", "5.1(side)"], strict=True)]
        assert kept == [not said, True, not said], shown
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        roundtrip(four_tracks, tmp_path / "four.mkv")
    with av.open(str(four_tracks)) as c:  # (the ffmpeg binary guesses "mono" for it)
        assert c.streams.audio[2].layout.name == "1 channels"
    assert "channel layout" not in caplog.text, caplog.text


@pytest.fixture(scope="module")
def four_tracks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture with Vorbis, FLAC, mono PCM (Matroska stores no channel order: "1 channels", which
    the AAC encoder does not start with) and AAC tracks, titled."""
    src = tmp_path_factory.mktemp("audio") / "four.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.4", "-f", "lavfi", "-i",
           "sine=duration=0.4:sample_rate=48000", "-map", "0:v", *[a for _ in range(4) for a in ("-map", "1:a")],
           "-c:v", "libx264", "-c:a:0", "libvorbis", "-c:a:1", "flac", "-c:a:2", "pcm_s16le", "-ac:a:2", "1",
           "-c:a:3", "aac", *[a for i in range(4) for a in (f"-metadata:s:a:{i}", f"title=track {i}")],
           "-shortest", src)  # fmt: skip
    return src


@pytest.mark.parametrize(("ext", "codec"), [(".mp4", "aac"), (".mkv", "aac"), (".webm", "opus")])
def test_audio_transcode_makes_every_track_aac(four_tracks: Path, ext: str, codec: str, tmp_path: Path) -> None:
    """--audio transcode: every track AAC (Opus in .webm), though the container could hold Vorbis, FLAC
    or PCM; a track that is so already is copied, packet for packet (a second encode only loses)."""
    out = tmp_path / f"out{ext}"
    roundtrip(four_tracks, out, audio="transcode")
    tracks = [s for s in ffinfo(out).streams if s.kind == "Audio"]
    assert [s.codec for s in tracks] == [codec] * 4
    with av.open(str(out)) as c:
        titles = [s.metadata.get("title") or s.metadata.get("name") for s in c.streams.audio]  # .mp4: name
        assert titles == [f"track {i}" for i in range(4)]
        assert all(abs(float(s.duration * s.time_base) - 0.4) < 0.05 for s in c.streams.audio if s.duration)
    if codec == "aac":
        assert packet_md5(out, "0:a:3") == packet_md5(four_tracks, "0:a:3")
        assert packet_md5(out, "0:a:0") != packet_md5(four_tracks, "0:a:3")
    if (
        ext == ".mkv"
    ):  # a new AAC track is not tagged with its old encoder ("Lavc libvorbis"); the copied one keeps its own
        encoders = [re.findall(r"^\s+ENCODER\s+: (.*)$", ffinfo(f).stderr, re.M) for f in (four_tracks, out)]
        assert any(e.endswith(" libvorbis") for e in encoders[0]), encoders
        assert encoders[1] == [e for e in encoders[0] if e.endswith(" aac")] != [], encoders


@pytest.mark.parametrize(
    ("ext", "audio", "modes"),
    [
        (".mkv", "copy", ["copy"] * 4),
        (".webm", "copy", ["copy", "refused", "refused", "refused"]),  # WebM: Vorbis and Opus only
        (".mp4", "transcode", ["transcode"] * 3 + ["copy"]),  # an AAC track is copied, not encoded again
        (".webm", "transcode", ["transcode"] * 4),
    ],
)
def test_plan_aux_streams_decides_each_track(four_tracks: Path, ext: str, audio: str, modes: list[str]) -> None:
    """What becomes of each track is decided from the streams alone, in their order, nothing opened:
    a copy where the container holds it, else refused; --audio transcode makes AAC (Opus in .webm)."""
    with av.open(str(four_tracks)) as c:
        decisions = plan_aux_streams(list(c.streams.audio), ext, audio)
        assert [(d.stream.index, d.mode) for d in decisions] == list(enumerate(modes, start=1))
        target = "libopus" if ext == ".webm" else "aac"
        assert [d.encoder for d in decisions] == [target if m == "transcode" else "" for m in modes]


@pytest.mark.parametrize(("ext", "mode", "encoder"), [(".mkv", "copy", ""), (".mp4", "subtitles", "mov_text"),
                                                      (".ts", "refused", "")])  # fmt: skip
def test_plan_aux_streams_converts_text_subtitles(tmp_path: Path, ext: str, mode: str, encoder: str) -> None:
    """Text subtitles go as they are where the container holds them, else to its own text codec
    (MP4's mov_text); MPEG-TS holds no text subtitles: refused."""
    srt, src = tmp_path / "a.srt", tmp_path / "subs.mkv"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,600\nHi\n")
    ffmpeg("-i", srt, "-c:s", "srt", src)
    with av.open(str(src)) as c:
        (decision,) = plan_aux_streams(list(c.streams.subtitles), ext, "copy")
        assert (decision.mode, decision.encoder) == (mode, encoder)


# ---------------------------------------------------------- MPEG-TS timestamp discontinuities


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2 s captures as the trial made them: a.ts; aa.ts, two of it joined bytewise (the timestamps
    start again half way); ab.ts, a.ts and b.ts whose sound starts 0.027 s before a.ts's ends; wrap.ts,
    across the 33-bit clock's wrap (a negative start); corrupt.ts, 6 s with 12000 bytes zeroed in the middle."""
    d = tmp_path_factory.mktemp("ts")
    a = make_ts(d / "a.ts", 2)
    made = {"a": a, "b": make_ts(d / "b.ts", 2, offset=2), "wrap": make_ts(d / "wrap.ts", 2, offset=95442)}
    for name, parts in (("aa", (a, a)), ("ab", (a, made["b"]))):
        made[name] = d / f"{name}.ts"
        made[name].write_bytes(b"".join(p.read_bytes() for p in parts))
    data = bytearray(make_ts(d / "long.ts", 6).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 12000] = bytes(12000)
    made["corrupt"] = d / "corrupt.ts"
    made["corrupt"].write_bytes(data)
    return made


def _ts_roundtrip(src: Path, dst: Path) -> None:
    """Every frame through dove's writer with the input's audio, as a run writes them."""
    with open_reader(src) as reader:
        with open_writer(dst, reader.info, reader.info.width, reader.info.height) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)


@pytest.mark.parametrize("ext", [".ts", ".mp4"])
def test_concatenated_recordings_continue_as_ffmpeg_does(
    recordings: dict[str, Path], ext: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The second recording's frames and sound follow the first's (ffmpeg's discontinuity correction),
    instead of being squeezed into 1 ms after it (and the sound making the mux fail)."""
    out = tmp_path / f"out{ext}"
    with caplog.at_level(logging.WARNING):
        _dove(recordings["aa"], out)
    said = [r.getMessage() for r in caplog.records if "timestamps" in r.getMessage()]
    assert said == [f"{recordings['aa']}: timestamps reset at 2.00 s (concatenated recordings?): the rest "
                    "continues from there, as ffmpeg does"]  # fmt: skip
    # the frames as ffmpeg's own command line places them (its output starts elsewhere: compared from the first)
    ff = tmp_path / "ff.ts"
    ffmpeg("-i", recordings["aa"], "-map", "0:v", "-c", "copy", ff)
    got, tb = frame_pts(out)
    want, ff_tb = frame_pts(ff)
    assert len(got) == 100 and [(p - got[0]) * tb for p in got] == [(p - want[0]) * ff_tb for p in want]
    # by hand: a.ts's frames, then a.ts's frames again one frame after its last (2.00 s later)
    one, one_tb = frame_pts(recordings["a"])
    assert [(p - got[0]) * tb for p in got] == [(p - one[0]) * one_tb + k * 2 for k in (0, 1) for p in one]
    # the sound: a.ts's packets (bytes and timestamps), then again 2.00 s later, less those that go
    # back before the last one of the first (the audio outlasts the video by 0.03 s)
    first = packets(recordings["a"], "0:a")
    second = [(dts + 2, pts + 2, md5) for dts, pts, md5 in first if dts + 2 > first[-1][0]]
    assert 0 < len(first) - len(second) <= 3
    sound = packets(out, "0:a")
    start = got[0] * tb - one[0] * one_tb  # the output's timeline against the input's (0 for .ts)
    if ext == ".ts":  # MP4 stores AAC without its ADTS headers
        assert [md5 for *_, md5 in sound] == [md5 for *_, md5 in first + second]
    assert [dts - start for dts, _, _ in sound] == pytest.approx([dts for dts, _, _ in first + second], abs=1e-3)
    dropped = len(first) - len(second)
    assert f"{dropped} audio packet{'s' * (dropped > 1)} of input stream #1 went back in time" in caplog.text


def test_a_splice_whose_sound_overlaps_drops_the_overlap(
    recordings: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """b.ts's sound starts before a.ts's ends: the packets that go back are dropped (the muxer refused
    them after the whole run), the rest keep their bytes and timestamps; the video is untouched."""
    out = tmp_path / "out.ts"
    with caplog.at_level(logging.WARNING):
        _ts_roundtrip(recordings["ab"], out)
    a, b = packets(recordings["a"], "0:a"), packets(recordings["b"], "0:a")
    kept = [p for p in b if p[0] > a[-1][0]]
    assert 0 < len(b) - len(kept) < len(b)
    assert packets(out, "0:a") == a + kept
    # the frames of b.ts shown before a.ts's last are moved 1 tick after the frame before, as before
    want: list[int] = []
    for pts in frame_pts(recordings["a"])[0] + frame_pts(recordings["b"])[0]:
        want.append(max(pts, want[-1] + 1) if want else pts)
    assert frame_pts(out)[0] == want
    assert f"{len(b) - len(kept)} audio packets of input stream #1 went back in time" in caplog.text
    assert "timestamps reset" not in caplog.text  # 0.03 s back is an overlap, not a new recording (ffmpeg: 0.1 s)


@pytest.mark.parametrize("ext", [".ts", ".mp4", ".mkv"])
def test_a_negative_start_moves_every_stream_alike(
    recordings: dict[str, Path], ext: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A capture across the 33-bit clock's wrap starts at -0.34 s: .ts and .mp4 could not be written.
    Every stream moves by the same amount, the earliest (the sound) to 0, and the note says so."""
    src, out = recordings["wrap"], tmp_path / f"out{ext}"
    with caplog.at_level(logging.INFO, logger="dove_cli.note"):  # (a --quiet run before sets it to WARNING)
        _ts_roundtrip(src, out)
    sound_in, sound = packets(src, "0:a"), packets(out, "0:a")
    frames_in, frames = frame_times(src), frame_times(out)
    assert sound_in[0][0] < 0 and len(frames) == len(frames_in) == 50
    move = sound[0][0] - sound_in[0][0]
    assert float(move) == pytest.approx(0.339, abs=0.002) or ext == ".ts"  # .ts: plus the muxer's B-frame delay
    assert min(frames[0], sound[0][0]) >= 0
    assert [float(t - move) for t in frames] == pytest.approx([float(t) for t in frames_in], abs=1e-3)
    assert [float(dts - move) for dts, _, _ in sound] == pytest.approx([float(d) for d, _, _ in sound_in], abs=1e-3)
    assert len(sound) == len(sound_in)
    assert (
        "the input's timestamps start at -0.339 s, which the output cannot hold: every stream moves 0.339 s later"
        in caplog.text
    )


# ---------------------------------------------------------- a broadcast clock's start


@pytest.fixture(scope="module")
def broadcasts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Recordings whose start is a clock's value: .ts captures 1 h into a broadcast day (3601.4 s), the
    sound 10 ms before the picture or 94.7 ms after it, and a DVD's .vob, which starts 0.53 s in."""
    d = tmp_path_factory.mktemp("clock")
    return {
        "sound first": make_broadcast(d / "sound_first.ts", audio_shift=-224),  # 480 + 420 ticks before
        "picture first": make_broadcast(d / "picture_first.ts", audio_shift=4800),  # 0.1 s later, less 480 ticks
        "dvd": make_broadcast(d / "dvd.vob"),
    }


def _starts(path: Path) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """The file's start, its video's and its sound's, and its length, in seconds as FFmpeg reads them
    (PyAV; an MP4/MOV's edit lists applied)."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert c.start_time is not None and c.duration is not None and v.start_time is not None
        return (Fraction(c.start_time, av.time_base), v.start_time * Fraction(v.time_base),
                Fraction(a.start_time or 0) * Fraction(a.time_base), Fraction(c.duration, av.time_base))  # fmt: skip


@pytest.mark.parametrize(("name", "ext"), [("sound first", ".mov"), ("sound first", ".mkv"), ("sound first", ".mp4"),
                                           ("picture first", ".mov"), ("picture first", ".mkv"),
                                           ("picture first", ".mp4"), ("dvd", ".mkv")])  # fmt: skip
def test_a_broadcast_clock_starts_at_0_in_other_containers(
    broadcasts: dict[str, Path], name: str, ext: str, tmp_path: Path
) -> None:
    """A capture 1 h into the broadcast day (MPEG-TS) or a DVD (MPEG-PS) starts at its clock's value
    when the recording began: kept, a .mov began with a 3601.4 s empty edit (an hour of nothing in
    QuickTime and editors) and an .mkv lasted 01:00:03. Every stream moves by the earliest one's start,
    as ffmpeg's own remux does: the file starts at 0, and every frame and sound packet keeps its time
    against the others (to the output's tick: 1 ms in Matroska, exact in MOV/MP4)."""
    src, out = broadcasts[name], tmp_path / f"out{ext}"
    _dove(src, out, scale=2)
    _, video_in, sound_in, _ = _starts(src)
    zero = min(video_in, sound_in)
    assert video_in > 3600 if name != "dvd" else video_in > Fraction(1, 2)
    start, video, sound, length = _starts(out)
    assert start == min(video, sound) == 0 and length < Fraction(22, 10)  # (the sound's 2 s, and where it starts)
    tick = Fraction(1, 2000) if ext == ".mkv" else Fraction(0)  # half of Matroska's millisecond
    assert abs((sound - video) - (sound_in - video_in)) <= tick
    with av.open(str(src)) as c:  # (a VOB's B-frames are stored without times: as decoded)
        frames, frames_in = frame_times(out), [f.pts * Fraction(f.time_base) for f in c.decode(video=0)]
    assert len(frames) == len(frames_in) == 50 and all(
        abs(a - (b - zero)) <= tick for a, b in zip(frames, frames_in, strict=True)
    )
    sound_out, sound_src = packets(out, "0:a"), packets(src, "0:a")
    assert len(sound_out) == len(sound_src) and all(abs(a[0] - (b[0] - zero)) <= tick
                                                    for a, b in zip(sound_out, sound_src, strict=True))  # fmt: skip
    if ext != ".mkv":  # no long empty edit: the movie lasts the 2 s it holds
        movie, edits = movie_edits(out)
        assert movie < Fraction(22, 10) and all(
            span < Fraction(1, 5) for track in edits for span, at in track if at < 0
        )


@pytest.mark.parametrize("ext", [".ts", ".m2ts"])
def test_mpeg_ts_output_keeps_the_broadcast_clock(broadcasts: dict[str, Path], ext: str, tmp_path: Path) -> None:
    """Into MPEG-TS (and Blu-ray's M2TS) the clock goes on as it was: the frames and the sound at the
    times they had, to the 90 kHz tick, where a broadcast chain or an as-run log finds them."""
    src, out = broadcasts["sound first"], tmp_path / f"out{ext}"
    _dove(src, out, scale=2)
    assert frame_times(out) == frame_times(src) and frame_times(out)[0] > 3600
    assert [dts for dts, _, _ in packets(out, "0:a")] == [dts for dts, _, _ in packets(src, "0:a")]


def test_a_preview_of_a_broadcast_recording_starts_at_its_own_start(
    broadcasts: dict[str, Path], tmp_path: Path
) -> None:
    """--preview cuts the piece from the file's START (its clock starts with the sound, 10 ms before the
    picture, as ffmpeg -ss counts) and moves every stream with it, as before: its sound where it was
    against the picture."""
    src, out = broadcasts["sound first"], tmp_path / "piece.mkv"
    _dove(src, out, scale=2, preview="0.52+1s")  # frames 13-37 (the first at the picture's 0.52 s)
    frames, frames_in = frame_times(out), frame_times(src)
    with av.open(str(src)) as c:
        first = Fraction(c.start_time, av.time_base) + Fraction(52, 100)  # the file's 0.52 s
    assert len(frames) == 25 and frames == [t - first for t in frames_in[13:38]] and frames[0] == Fraction(1, 100)
    sound_in = {dts - first for dts, _, _ in packets(src, "0:a")}
    sound = [dts for dts, _, _ in packets(out, "0:a")]
    assert 0 <= sound[0] < Fraction(32, 1000) and all(any(abs(t - u) <= Fraction(1, 2000) for u in sound_in)
                                                      for t in sound)  # fmt: skip


@pytest.mark.parametrize(("ext", "preview"), [(".webm", None), (".mkv", None), (".webm", "0.52+1s")])
def test_transcoded_sound_moves_with_the_picture(
    broadcasts: dict[str, Path], ext: str, preview: str | None, tmp_path: Path
) -> None:
    """--audio transcode (and any .webm of AC-3, which becomes Opus): the sound's packets were moved to
    the output's start, then their decoded frames moved once more, an hour before the picture; the
    muxer moved every stream back by that, and the picture started at 3601.4 s (a --preview's at its
    start: 0.52 s). Now each stream starts where it did against the others (Opus's 6.5 ms of priming
    aside), the picture 10 ms after the sound."""
    src, out = broadcasts["sound first"], tmp_path / f"out{ext}"
    _dove(src, out, scale=2, audio="transcode", preview=preview)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == ("opus" if ext == ".webm" else "aac")
    start, video, sound, length = _starts(out)
    assert video == Fraction(1, 100)  # (a preview's START counts from the file's start, the sound's, too)
    assert -Fraction(1, 40) <= sound <= (Fraction(32, 1000) if preview else 0), float(sound)
    assert length < (Fraction(11, 10) if preview else Fraction(22, 10))


def test_frames_kept_apart_in_the_outputs_clock_from_its_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Where two frames would share a millisecond in Matroska is counted from where the output starts:
    here the sound, 960 ticks (10.67 ms) before the picture. Frame 3 is 45 ticks (0.5 ms) after frame 2;
    from the input's 0 they round to 2 ms apart, from the output's start to the same one, and were
    written at the same time. The reader rounds as the writer does: frame 3 is moved 1 ms on, and said."""
    src = make_broadcast(tmp_path / "near.ts", audio_shift=-256, video_bsf="ts='if(eq(N,3),PREV_INPTS+45,PTS)'")
    pts, tb = frame_pts(src)
    assert tb == Fraction(1, 90000) and pts[3] - pts[2] == 45 and pts[2] % 90 == 0
    lead = pts[0] - packets(src, "0:a")[0][0] / tb
    assert lead == 960
    out = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING):
        _dove(src, out, scale=2)
    times = frame_times(out)
    assert len(times) == 50 and len(set(times)) == 50
    assert times[3] - times[2] == Fraction(1, 1000)
    assert "1 frame has the time of the frame before (or an earlier one) in the output" in caplog.text


def test_the_first_jump_of_a_capture_is_found_without_decoding(recordings: dict[str, Path]) -> None:
    """A demux-only scan (for --ray, whose workers seek by time) finds where aa.ts starts again: its
    first packet past a.ts's end, which is 2 s long (sound leads the picture by a few packets);
    a.ts, a splice whose sound overlaps by 0.027 s, and a negative start do not jump."""
    from dove_cli.video_io.continuity import first_discontinuity

    assert first_discontinuity(recordings["aa"]) == pytest.approx(2.0, abs=0.1)
    assert [first_discontinuity(recordings[k]) for k in ("a", "ab", "wrap")] == [None, None, None]


def test_a_stretch_lost_from_a_capture_is_said_and_its_timing_kept(
    recordings: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Zeroed bytes: the demuxer skips them (and the decoder the frames that refer to them), no decode
    error, 20 frames fewer. Said with the time (on the file's clock, as players show it: its sound
    starts before its picture) and length of the hole; the hole stays (every frame keeps its time)."""
    out = tmp_path / "out.ts"  # (.mkv refuses the damaged AAC packet, as ffmpeg -c copy does: said by its error)
    with caplog.at_level(logging.WARNING):
        _ts_roundtrip(recordings["corrupt"], out)
    times = decoded_times(recordings["corrupt"])
    gaps = [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a > Fraction(5, 25)]  # more than 4 lost
    assert len(gaps) == 1 and caplog.text.count(" gap in the video") == 1
    before, after = gaps[0]
    start = Fraction(re.search(r"start: ([\d.]+)", ffinfo(recordings["corrupt"]).stderr)[1])  # the file's clock's 0
    assert start < times[0]  # (its sound starts first)
    assert (
        f"a {float(after - before):.2f} s gap in the video at {float(before - start):.2f} s "
        f"(about {round((after - before) * 25) - 1} frames lost from the input?)" in caplog.text
    )
    assert [float(t) for t in frame_times(out)] == pytest.approx([float(t) for t in times], abs=1e-3)
    assert "gap" not in _reader_warnings(recordings["a"])  # an intact capture: nothing said


def test_a_stretch_lost_from_a_matroska_episode_is_said_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Video packets overwritten in the middle of an .mkv: the demuxer skips 13 frames, and the
    episode was "done" with nothing said and 0 frames dropped. Said once, counted as dropped, the
    timing kept. Variable-rate inputs say nothing: an .mkv at 23.976, then 29.97 with a frame held
    0.5 s (it says it is constant-rate, its steps say not), an .mp4 with a held frame."""
    src = make_clip(tmp_path / "in.mkv", frames=48, rate="24", extra=("-g", "12", "-cluster_time_limit", "400"))
    with av.open(str(src)) as c:
        where = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(src.read_bytes())
    data[where[14][0] : sum(where[26])] = b"t" * (sum(where[26]) - where[14][0])
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING), open_reader(damaged) as reader:
        times = [f.pts for f in reader]
    assert len(times) == 32 and times[13:15] == [542, 1250] and reader.dropped_frames == 16
    assert caplog.text.count("gap in the video") == 1
    assert "a 0.71 s gap in the video at 0.54 s (about 16 frames lost from the input?)" in caplog.text
    vfr = tmp_path / "vfr.mkv"
    held = "12*1001/24000+18*1001/30000+1/2+(N-30)*1001/30000"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-frames:v", "40", "-vf", f"settb=1/120000,setpts='if(lt(N,12),N*1001/24000,"
           f"if(lt(N,30),12*1001/24000+(N-12)*1001/30000,{held}))/TB'", "-fps_mode", "vfr", "-enc_time_base", "1/1000",
           "-c:v", "libx264", vfr)  # fmt: skip
    with av.open(str(vfr)) as c:  # it says it is constant-rate, as the trial's VFR episode did
        assert c.streams.video[0].average_rate == c.streams.video[0].base_rate == 30
    held = tmp_path / "held.mp4"  # a frame held 0.5 s after a regular second: its average rate says so
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "36", "-vf", "setpts='(N/24+gte(N,24)/2)/TB'",
           "-fps_mode", "vfr", "-c:v", "libx264", held)  # fmt: skip
    # A screen recording's frames held 0.6 s, each a whole number of frames, as a lost stretch is: but over
    # intact bytes (its sound, or its next frame, right after), so variable-rate, as `dove info` says
    screen = make_held_mkv(tmp_path / "screen.mkv")
    for path, frames in ((vfr, 40), (held, 36), (screen, 12)):
        assert "gap" not in _reader_warnings(path)
        with open_reader(path) as reader:
            assert len(list(reader)) == frames and reader.dropped_frames == 0


def test_stretches_lost_after_the_first_few_are_said_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Four stretches of an .mkv overwritten: the first SHOWN_GAPS (3) said one by one, the rest in one
    line with the frames they lost; every frame lost counted (a 2-hour capture could say thousands)."""
    src = make_clip(tmp_path / "in.mkv", frames=120, rate="24", extra=("-g", "12", "-cluster_time_limit", "400"))
    with av.open(str(src)) as c:
        where = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(src.read_bytes())
    for a in (14, 38, 62, 86):
        data[where[a][0] : sum(where[a + 8])] = b"t" * (sum(where[a + 8]) - where[a][0])
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    times = decoded_times(damaged)  # as ffmpeg decodes it: the frames lost in each stretch
    lost = [round((b - a) * 24) - 1 for a, b in zip(times, times[1:], strict=False) if b - a > Fraction(5, 24)]
    assert len(lost) == 4
    with caplog.at_level(logging.WARNING), open_reader(damaged) as reader:
        assert len(list(reader)) == len(times) and reader.dropped_frames == sum(lost)
    assert caplog.text.count("frames lost from the input?); the timing is kept") == 3
    assert caplog.text.count(f"1 more gap in the video as the 3 said (about {lost[3]} more frames lost") == 1


def test_frames_that_do_not_decode_are_not_counted_again_as_a_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """9 frames in a row that fail to decode (--ignore-decode-errors) leave a hole in the frame times
    as a lost stretch does: said and counted once, as undecodable, not a second time as a gap."""
    clip = make_clip(tmp_path / "c.mp4", size="80x46", rate="16", frames=32,
                     extra=("-preset", "veryfast", "-bf", "0", "-g", "32", "-threads", "1"))  # fmt: skip
    with av.open(str(clip)) as c:
        where = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    bad = bytearray(clip.read_bytes())
    a, b = where[4][0], sum(where[12])
    bad[a:b] = bytes((x * 7 + 13) & 255 for x in bad[a:b])
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(bad))
    with caplog.at_level(logging.WARNING), open_reader(path, ignore_decode_errors=True) as reader:
        assert len(list(reader)) == 23
    assert reader.dropped_frames == 9 and "gap" not in caplog.text
    assert "dropped 9 frames that could not be decoded: 4-12" in caplog.text


def _reader_warnings(path: Path) -> str:
    """The warnings reading every frame of `path` gives."""
    handler = logging.Handler()
    said: list[str] = []
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("dove_cli.video_io")
    logger.addHandler(handler)
    try:
        with open_reader(path) as reader:
            for _ in reader:
                pass
    finally:
        logger.removeHandler(handler)
    return "\n".join(said)


def test_a_damaged_audio_packet_is_left_out_with_a_warning(
    recordings: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A capture's lost stretch leaves a broken AAC frame that MP4 and Matroska refuse as they store it
    (ffmpeg -c copy fails too): the join failed after the whole run, and --audio none was the only way.
    It is left out, said, and every other packet is copied as it was."""
    assert ffmpeg("-i", recordings["corrupt"], "-c", "copy", tmp_path / "ff.mkv", check=False).returncode != 0
    out = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING):
        _ts_roundtrip(recordings["corrupt"], out)
    said = [m for m in caplog.messages if "refused as damaged" in m]
    assert len(said) == 1 and said[0].startswith(f"{out}: 1 audio packet of input stream #1 refused as damaged")
    given = [md5 for *_, md5 in packets(recordings["corrupt"], "0:a")]
    kept = [md5 for *_, md5 in packets(out, "0:a")]
    assert len(kept) == len(given) - 1


def test_a_refused_packet_names_its_stream_and_time(recordings: dict[str, Path], tmp_path: Path) -> None:
    """When the muxer refuses a packet dove cannot mend, the error names the stream and the time, and
    the advice is to leave that stream out, not to run the same command again."""
    from dove_cli.resume import Session

    out = tmp_path / "out.ts"
    with open_reader(recordings["a"]) as reader:
        writer = open_writer(out, reader.info, reader.info.width, reader.info.height)
        frame = next(iter(reader))
        writer.write(frame.rgb, frame.pts)
        src = av.open(str(recordings["a"]))
        bad = next(p for p in src.demux(audio=0) if p.dts is not None)
        bad.pts, bad.dts = bad.dts + 90000, bad.dts + 180000  # shown before it is decoded: no muxer takes it
        bad.stream = writer._aux.streams[1][0]  # type: ignore[attr-defined]
        with pytest.raises(MuxError, match=r"out\.ts: write failed \(.*, audio stream #1 at t=1\.9[0-9]+s\)") as err:
            writer._mux(bad)  # type: ignore[attr-defined]
        src.close()
    assert err.value.stream == "audio" and not out.exists()
    session = Session(out, {}, resume=False, overwrite=False)
    assert (
        session.hint(err.value) == "call upscale() again with resume=True, audio='none' to write it without that stream"
    )


def test_jpeg_webp_and_jpeg_tiff_images_read_as_opencv_and_pillow_read_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """FFmpeg hands a JPEG or WebP over as 4:2:0 YUV, which swscale upsampled plainly: up to 20 levels
    from what cv2.imread and PIL (pyiqa, the authors' eval) read with libjpeg/libwebp, 0.7-1.1 dB of
    PSNR. A JPEG-compressed TIFF came out as noise. A 16-bit PNG still reads at 16 bits."""
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is the reference decoder")
    from PIL import Image

    rng = np.random.default_rng(5)
    rgb = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)  # 64x48, sharp chroma
    rgba = np.dstack([rgb, np.full((48, 64), 128, np.uint8)])
    saved = {"c.jpg": (rgb, {"quality": 90}), "c444.jpg": (rgb, {"quality": 90, "subsampling": 0}),
             "g.jpg": (rgb[..., 1], {"quality": 90}), "c.webp": (rgb, {"quality": 90}),
             "c.tif": (rgb, {"compression": "jpeg"})}  # fmt: skip
    for name, (pixels, options) in saved.items():
        Image.fromarray(pixels).save(tmp_path / name, **options)
        with open_reader(tmp_path / name, warn=False) as reader:
            got = next(iter(reader)).rgb
        assert np.array_equal(got, cv2.imread(str(tmp_path / name))[..., ::-1]), name
    seq = tmp_path / "seq"  # a sequence, its second WebP half see-through: said as it is read
    seq.mkdir()
    Image.fromarray(rgb).save(seq / "f_0001.webp", quality=90)
    Image.fromarray(rgba).save(seq / "f_0002.webp", quality=90)
    with caplog.at_level(logging.WARNING), open_reader(seq, fps=25, warn=False) as reader:
        frames = [f.rgb for f in reader]
    for frame, file in zip(frames, sorted(seq.iterdir()), strict=True):
        assert np.array_equal(frame, cv2.imread(str(file))[..., ::-1])  # (cv2 drops the alpha)
    assert [r.getMessage() for r in caplog.records if "alpha" in r.getMessage()] == [
        f"{seq / 'f_0002.webp'}: the alpha channel (transparency) is dropped; the output is opaque"
    ]
    deep = (rng.integers(0, 65536, (48, 64, 3))).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep[..., ::-1])
    with open_reader(tmp_path / "deep.png", warn=False) as reader:
        assert np.array_equal(next(iter(reader)).rgb, deep)


def test_hidden_files_in_an_image_folder_are_skipped(tmp_path, caplog):
    """As in a folder of videos: a macOS AppleDouble `._frame001.png` (copied onto exFAT or SMB) stopped
    the run as "not an image FFmpeg can read", and a hidden `.frame000.png` became frame 1."""
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(9)]
    folder = tmp_path / "winseq"
    folder.mkdir()
    for n in range(1, 9):
        Image.fromarray(frames[n]).save(folder / f"frame{n:03d}.png")
    (folder / "._frame001.png").write_bytes(b"\x00\x05\x16\x07" + bytes(4000))  # AppleDouble: no image
    Image.fromarray(frames[0]).save(folder / ".frame000.png")
    with open_reader(folder, fps=25) as reader:
        got = [f.rgb for f in reader]
    assert len(got) == 8 and all(np.array_equal(a, b) for a, b in zip(got, frames[1:], strict=True))
    assert "numbering" not in caplog.text  # no stray said: the hidden names are not read
    only = tmp_path / "only_hidden"
    only.mkdir()
    Image.fromarray(frames[0]).save(only / ".a.png")
    with pytest.raises(InputError, match=r"holds no videos or images .*; hidden files \(a name starting with '\.'\) are "
                                         r"skipped: 1 image$"):  # fmt: skip
        open_reader(only)


def test_a_variable_rate_video_ends_where_its_input_does(tmp_path: Path) -> None:
    """Encoders leave packet durations 0, and MP4 then gave the last frame one at the stream's rate,
    a variable rate's average: a 24-then-30 fps clip (B-frames, as phones write) came out 3.7 ms
    longer. The last frame lasts one frame at the input's nominal rate now, as in the input."""
    src = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30000/1001", "-frames:v", "45", "-vf",
           "setpts='if(lt(N,20),N*1001/24000,(20*1001/24000+(N-20)*1001/30000))/TB'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-bf", "2", src)  # fmt: skip
    out = tmp_path / "out.mp4"
    info, _ = roundtrip(src, out)
    assert info.fps != info.base_fps == Fraction(30000, 1001)  # an average rate and a nominal one
    ends = []
    for path in (src, out):
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            ends.append((s.duration * s.time_base, max(p.pts + p.duration for p in c.demux(s) if p.pts is not None)))
    assert ends[0] == ends[1] and ends[0][0] == Fraction(20 * 1001, 24000) + Fraction(25 * 1001, 30000)
    # 30 then 24 fps: FFmpeg's nominal rate is 120, no frame's; the step between the last two counts.
    # (Written without B-frames: with them MP4's muxer ends the track 20 ms early, as ffmpeg's own does.)
    mixed, mixed_out = tmp_path / "mixed.mp4", tmp_path / "mixed_out.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=24", "-frames:v", "48", "-vf",
           "settb=1/720,setpts='if(lt(N,24),N*24,576+(N-24)*30)'", "-c:v", "libx264", "-bf", "0",
           "-fps_mode", "passthrough", "-enc_time_base:v", "1/720", mixed)  # fmt: skip
    info, _ = roundtrip(mixed, mixed_out, codec_options={"bf": "0"})
    assert info.base_fps == 120
    for path in (mixed, mixed_out):
        with av.open(str(path)) as c:
            assert c.streams.video[0].duration * c.streams.video[0].time_base == Fraction(9, 5), path


def test_audio_transcode_keeps_every_unnamed_channel(tmp_path: Path) -> None:
    """PCM in .mkv has channels in no named order. The AAC encoder wants a named layout: the frames
    were remixed into one (3 unnamed channels -> 3.0), which left the third channel silent. They are
    relabelled now: each channel's level comes through (RMS within 5%, measured on the decoded AAC)."""
    src = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=16", "-f", "lavfi", "-i",
           "aevalsrc=0.7*sin(2*PI*300*t)|0.5*sin(2*PI*500*t)|0.25*sin(2*PI*700*t):s=48000", "-t", "1",
           "-c:v", "libx264", "-c:a", "pcm_s16le", src)  # fmt: skip
    out = tmp_path / "out.mp4"
    roundtrip(src, out, audio="transcode")

    def levels(path: Path) -> np.ndarray:
        with av.open(str(path)) as c:
            samples = np.concatenate([f.to_ndarray().reshape(-1, 3) if not f.format.is_planar else f.to_ndarray().T
                                      for f in c.decode(audio=0)])  # fmt: skip
        samples = samples.astype(np.float64) / (32768 if samples.dtype == np.int16 else 1)
        return np.sqrt((samples[4800:-4800] ** 2).mean(axis=0))  # past the encoder's priming and tail

    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.layout.name == "3 channels"  # no named order
    expected = np.array([0.7, 0.5, 0.25]) / np.sqrt(2)
    assert np.allclose(levels(src), expected, rtol=0.01)
    assert np.allclose(levels(out), expected, rtol=0.05), levels(out)


def test_a_link_to_stdout_is_refused_as_an_output_whatever_stdout_is(tmp_path):
    """`ln -s /dev/stdout lnk.mkv; dove upscale ... -o lnk.mkv | cat` ran to the end, then failed at the join
    (a pipe's name is no folder to write in); with stdout a file (`> so.txt`), that file was replaced."""
    from dove_cli.errors import OutputError
    from dove_cli.video_io.paths import check_not_stream

    link = tmp_path / "lnk.mkv"
    link.symlink_to("/dev/stdout")
    read, write = os.pipe()
    saved = os.dup(1)
    try:
        for target in (write, os.open(tmp_path / "so.txt", os.O_WRONLY | os.O_CREAT)):  # a pipe, a file
            os.dup2(target, 1)
            os.close(target)
            with pytest.raises(OutputError) as exc:
                check_not_stream(link)
            os.dup2(saved, 1)
            assert str(exc.value) == (f"{link}: is a link to /dev/stdout, standard output, which cannot be written "
                                      "(the output is written under a temporary name and renamed when whole); give a "
                                      "file name like out.mp4")  # fmt: skip
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(read)
    check_not_stream(tmp_path / "so.txt")  # a file that is not stdout (now): fine


def test_a_fifo_that_nothing_reads_is_said_before_it_is_waited_for(tmp_path, caplog):
    """`--manifest m.fifo` with no reader hung in open() once the video was done, without a word."""
    import threading
    import time

    from dove_cli.video_io import open_special

    fifo = tmp_path / "m.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open_special(fifo, "the manifest") as f:
            f.write(b"{}\n")

    thread = threading.Thread(target=write, daemon=True)
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        thread.start()
        deadline = time.monotonic() + 5
        while "waiting" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # (lets the writer go, said or not)
        thread.join(5)
        said = caplog.text
        caplog.clear()
        try:
            assert f"{fifo}: waiting for a reader of this named pipe, to write the manifest there" in said, said
            assert os.read(reader, 100) == b"{}\n"
            write()  # a reader there: written at once, nothing said
            assert os.read(reader, 100) == b"{}\n" and caplog.text == ""
        finally:
            os.close(reader)


# ------------------------------------------------------------------------------- bare video streams


def _bare(path: Path, codec: str, rate: str, *extra: str) -> Path:
    """A 6-frame 32x24 bare `codec` stream (no container) made at `rate`."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=32x24:r={rate}", "-frames:v", "6", "-c:v", codec, "-pix_fmt", "yuv420p",
           *extra, path)  # fmt: skip
    return path


@pytest.mark.parametrize(("name", "codec", "rate"), [("a.hevc", "libx265", "50"), ("b.h264", "libx264", "30000/1001")])
def test_a_bare_stream_is_timed_at_the_rate_it_states(tmp_path: Path, name: str, codec: str, rate: str) -> None:
    """A bare .h264/.hevc has no container to time it: FFmpeg's average rate is its default 25, and
    a run made 50 fps half speed. Its frames are timed at the rate its SPS states, as ffmpeg times
    them, and counted (the packets have no timestamps)."""
    src = _bare(
        tmp_path / name, codec, rate, *(["-x265-params", "log-level=none"] if codec == "libx265" else ["-bf", "2"])
    )
    ff = decoded_times(src)  # ffmpeg's reading of the stream
    assert len(ff) == 6 and ff[1] == 1 / Fraction(rate)
    assert probe(src).fps == Fraction(rate)
    from dove_cli.video_io.describe import describe

    assert describe(src)["video"]["frames"] == 6
    out = tmp_path / "out.mkv"
    _dove(src, out, scale=2)
    assert [round(t, 3) for t in decoded_times(out)] == [round(t, 3) for t in ff]  # (.mkv: milliseconds)


@pytest.mark.parametrize(
    ("name", "codec", "extra"), [("a.h264", "libopenh264", ()), ("a.mjpeg", "mjpeg", ("-pix_fmt", "yuvj420p"))]
)
def test_a_bare_stream_that_states_no_rate_is_said_and_takes_fps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, codec: str, extra: tuple[str, ...]
) -> None:
    """OpenH264 writes no timing into its SPS, and MJPEG has none: the stream is read at 25 frames/s,
    as ffmpeg reads it, and said; --fps sets its rate (another video keeps its own timing, said)."""
    src = _bare(tmp_path / name, codec, "50", *extra)
    assert decoded_times(src)[1] == Fraction(1, 25)
    with caplog.at_level(logging.WARNING):
        assert probe(src).fps == 25
    said = f"{src}: the {codec.removeprefix('libopen')} stream states no frame rate"
    assert said in caplog.text and "give --fps" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert probe(src, fps="50").fps == 50
        assert probe(make_clip(tmp_path / "c.mp4", frames=2, size="32x24"), fps="50").fps == Fraction(30000, 1001)
    assert caplog.messages == [f"{tmp_path / 'c.mp4'}: fps is only used for image inputs and bare video streams "
                               "(.h264, .hevc, .m2v); this video keeps its own timing"]  # fmt: skip
    out = tmp_path / "out.mkv"
    _dove(src, out, scale=2, fps="50")
    assert decoded_times(out) == [Fraction(i, 50) for i in range(6)]
    assert "Duration: 00:00:00.12," in ffinfo(out).stderr  # 6 frames of 1/50 s, the last one's too


@pytest.mark.parametrize(
    ("names", "named", "first"),
    [
        (["0000.png", "0001.png", "0002.png"], ("%04d.png", [0, 1, 2]), 0),
        ([f"frame_{n}.png" for n in range(1, 13)], ("frame_%d.png", list(range(1, 13))), 1),  # unpadded: 1 ... 12
        (["0998.png", "0999.png", "1000.png"], ("%04d.png", [998, 999, 1000]), 998),  # past its padding
        (["clip2_0007.PNG", "clip2_0008.PNG"], ("clip2_%04d.PNG", [7, 8]), 7),  # the last number counts
        (["00000000.png"], ("%08d.png", [0]), 0),
        (["0000.png", "0001.png", "0003.png"], ("%04d.png", [0, 1, 3]), 0),  # a gap: kept
        (["0000.png", "0001.png", "0001_b.png"], None, 0),  # a stray name
        (["1.png", "02.png"], None, 1),  # padding that changes
        (["a.png", "b.png"], None, 1),
    ],
)
def test_numbering_names_a_sequence_name_for_name(names, named, first):
    """The pattern a folder output writes an image sequence's own names with, and the number a
    pattern output starts at by default (the input's first, so that 0000.png in is 0000.png out),
    checked against the names by hand: each written name is formatted here as ffmpeg's image2 does."""
    from dove_cli.video_io import first_number, numbering

    files = [Path(n) for n in names]
    assert numbering(files) == named and first_number(files) == first
    if named:
        head, width, tail = re.fullmatch(r"(.*)%0?(\d*)d(.*)", named[0]).groups()
        assert [f"{head}{n:0{int(width or 0)}d}{tail}" for n in named[1]] == names


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_a_held_last_frame_is_no_file_cut_short(tmp_path, caplog, ext):
    """A screen recording's last frame held 0.6 s after 0.1 s steps: its header's end is where that frame
    ends, and ffmpeg decodes it cleanly; it was refused as "file ends early ... about 4 more expected"."""
    path, times = tmp_path / f"held{ext}", [0, 250, 350, 450, 550, 650, 750, 850]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10, options={"bf": "0"})
        s.width, s.height, s.pix_fmt, s.time_base = 64, 48, "yuv420p", Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        lasts = dict(zip(times, [*np.diff(times).tolist(), 600], strict=True))
        frames = [av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24") for i in range(8)]
        for frame, t in zip([*frames, None], [*times, None], strict=True):
            if frame is not None:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in s.encode(frame):
                ms = packet.pts * packet.time_base * 1000  # each frame's own: the header's end is where the last ends
                packet.duration = int(lasts[int(ms)] / 1000 / packet.time_base)
                c.mux(packet)
    ends = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True)
    assert ends.returncode == 0 and not ends.stderr  # the reference: nothing missing
    with video_io.open_reader(path) as reader:
        assert len(list(reader)) == len(times) and reader.dropped_frames == 0
    assert "ends early" not in caplog.text and "cut short" not in caplog.text


def test_side_stream_rates_reads_a_name_with_a_colon(tmp_path, monkeypatch):
    """The disk-full estimate's audio rate read `a:b.mp4` as FFmpeg's protocol `a` (nothing found, so the
    room asked left the audio out): the same file under a plain name is the reference."""
    from dove_cli.video_io.reader import side_stream_rates

    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-f", "lavfi", "-i", "sine", "-t", "1", "-c:a", "aac",
           tmp_path / "plain.mp4")  # fmt: skip
    (tmp_path / "a:b.mp4").write_bytes((tmp_path / "plain.mp4").read_bytes())
    monkeypatch.chdir(tmp_path)
    plain = side_stream_rates("plain.mp4")
    assert plain["audio"] > 0 and side_stream_rates("a:b.mp4") == plain


def test_audio_only_reads_a_name_with_a_colon(tmp_path, monkeypatch):
    """`a:b.m4a` in the current folder was read as FFmpeg's protocol `a`: not audio only, so a folder run
    told the user to rename it to .mp4. The same file under a plain name is the reference."""
    from dove_cli.video_io.formats import audio_only

    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.2", "-c:a", "aac", tmp_path / "plain.m4a")
    (tmp_path / "a:b.m4a").write_bytes((tmp_path / "plain.m4a").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert audio_only(Path("plain.m4a")) and audio_only(Path("a:b.m4a"))


def test_writes_to_knows_an_output_however_spelled(tmp_path):
    """A --manifest or --eval-json compared with the output by `Path.absolute()` missed `OUT/../OUT/a.mp4`,
    a symlinked folder and an image of the output's pattern, and replaced the picture with JSON."""
    from dove_cli.video_io import writes_to

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "link").symlink_to(out)
    (out / "a.mp4").write_bytes(b"")
    (tmp_path / "a_link.mp4").symlink_to(out / "a.mp4")
    video = out / "a.mp4"
    for same in (video, out / ".." / "out" / "a.mp4", tmp_path / "link" / "a.mp4", tmp_path / "a_link.mp4"):
        assert writes_to(video, same), same
    assert writes_to(out / "new.mkv", tmp_path / "link" / "new.mkv")  # not there yet: its folder is
    pattern = out / "f_%06d.png"
    assert writes_to(pattern, tmp_path / "link" / "f_000001.png") and writes_to(pattern, out / "f_1234567.png")
    for other in (out / "b.mp4", out / "a.mp4.json", out / "f_1.png", out / "g_000001.png", tmp_path / "f_000001.png"):
        assert not writes_to(pattern, other) and not writes_to(video, other), other
