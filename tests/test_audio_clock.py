"""Copied audio's timing to the sample across containers (video_io/audio_clock.py), measured with the
ffmpeg binary's decode of the input and the output, and PyAV's reading of the output's edit list."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

from dove_cli.video_io import open_reader, open_writer
from dove_cli.video_io.audio_clock import lead_in
from media import ffmpeg

VIDEO = ("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.5")
H264 = ("-c:v", "libx264", "-preset", "ultrafast")


def sine(seconds: float, rate: int = 48000) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"sine=frequency=441:sample_rate={rate}:duration={seconds}")


def _f32(path: Path, track: int = 0, start: float | None = None) -> np.ndarray:
    import subprocess

    from media import FFMPEG

    seek = ["-ss", str(start)] if start is not None else []
    cmd = [FFMPEG, "-v", "error", *seek, "-i", str(path), "-map", f"0:a:{track}", "-ac", "1", "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.float32)


def copy(src: Path, dst: Path, start: float | None = None, end: float | None = None) -> None:
    """The video decoded and written back, the audio copied (a run's writer, no model)."""
    span = {"start": start, "duration": end - start} if start is not None and end is not None else {}
    with open_reader(src, warn=False, **span) as reader:
        info = reader.info
        with open_writer(dst, info, info.width, info.height, start=start, end=end) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)


def edit(path: Path, track: int = 0) -> tuple[int, int]:
    """An MP4/MOV audio track's first packet's hidden samples (its edit list's start, as the demuxer
    reads it) and the samples its edit list plays."""
    with av.open(str(path)) as c:
        s = c.streams.audio[track]
        first = next(p for p in c.demux(s) if p.size)
        side = bytes(first.get_sidedata("skip_samples")) if first.has_sidedata("skip_samples") else bytes(4)
        return int.from_bytes(side[:4], "little"), int(s.duration)


def test_matroska_codec_delays_keep_to_the_sample_into_mp4(tmp_path: Path) -> None:
    """Matroska keeps AC-3's 256-sample delay as 5 ms and Opus's 312 as 7 ms: the .mp4's edit list
    hides 256 and 312 again (was 240 and 336: AC-3 16 samples late, Opus's first 24 lost), and ends
    where the input does (0.3 s: 14400 samples). AC-3 decodes as the input; Opus's first 14400 samples
    do (FFmpeg's decoder plays an .mp4 Opus track's padding past its edit list, as for its own)."""
    src = tmp_path / "in.mkv"
    ffmpeg(*VIDEO, *sine(0.3), *sine(0.3), "-map", "0:v", "-map", "1:a", "-map", "2:a", *H264,
           "-c:a:0", "ac3", "-c:a:1", "libopus", src)  # fmt: skip
    out = tmp_path / "out.mp4"
    copy(src, out)
    ac3_in, ac3_out = _f32(src, 0), _f32(out, 0)
    assert len(ac3_out) == len(ac3_in) == 14400 and np.array_equal(ac3_out, ac3_in)
    opus_in, opus_out = _f32(src, 1), _f32(out, 1)
    assert len(opus_in) == 14400 and np.array_equal(opus_out[:14400], opus_in)
    assert edit(out, 0) == (256, 14400) and edit(out, 1) == (312, 14400)


def test_an_mp4_edit_list_end_is_kept(tmp_path: Path) -> None:
    """An E-AC-3 .mp4's edit list ends its last 1536-sample packet after 640 (0.3 s of 48 kHz:
    14400 samples, 1536 of them 9 packets and 1040 hidden): .mp4 keeps that end (was 14976, the
    padding played), .mkv as DiscardPadding (the 256 priming samples it cannot hide are said)."""
    src = tmp_path / "in.mp4"
    ffmpeg(*VIDEO, *sine(0.3), "-map", "0:v", "-map", "1:a", *H264, "-c:a", "eac3", src)
    copy(src, tmp_path / "out.mp4")
    copy(src, tmp_path / "out.mkv")
    source = _f32(src)
    assert len(source) == 14400 and np.array_equal(_f32(tmp_path / "out.mp4"), source)
    in_mkv = _f32(tmp_path / "out.mkv")
    assert len(in_mkv) == 256 + 14400 and np.array_equal(in_mkv[256:], source)


def test_a_cut_into_matroska_leaves_out_the_sound_before_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """ffmpeg -ss 1.3 -c copy keeps AAC from the keyframe before the cut, its edit list hiding 1.3 s
    of packets: .mkv, which cannot hide them, plays only one packet of pre-roll and the part of the
    one the cut splits (was: all, 0.3 s of sound from before the cut), said as a cut, not priming;
    the picture starts as late, in step."""
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2", *sine(2, 44100), "-map", "0:v",
           "-map", "1:a", *H264, "-g", "25", "-c:a", "aac", whole)  # fmt: skip
    cut = tmp_path / "cut.mp4"
    ffmpeg("-ss", "1.3", "-i", whole, "-c", "copy", cut)
    hidden = edit(cut)[0]  # the packets from the keyframe at 1 s to the cut
    played = 1024 + hidden % 1024  # the pre-roll packet and the split one's part before the cut
    with caplog.at_level(logging.WARNING):
        copy(cut, tmp_path / "out.mkv")
    said = [m for m in caplog.messages if "audio stream #1 starts with" in m]
    assert len(said) == 1 and f"{played} samples" in said[0] and "before the input's edit point" in said[0]
    source, out = _f32(cut), _f32(tmp_path / "out.mkv")
    assert played <= len(out) - len(source) < played + 1024  # (+ the last packet's padding: README)
    assert np.abs(out[played : played + 4096] - source[:4096]).max() < 1e-3  # the same sound from the cut on


def test_a_preview_into_mp4_starts_the_sound_at_its_start(tmp_path: Path) -> None:
    """A --preview from 0.2 s of FLAC in 1024-sample packets (0.2 s is sample 9600, inside the packet
    at 9216): the .mp4 keeps that packet, its edit list hiding the 384 samples before the start (was:
    left out, the sound starting 640 samples late)."""
    src = tmp_path / "in.mp4"
    ffmpeg(*VIDEO, *sine(0.5), "-map", "0:v", "-map", "1:a", *H264, "-c:a", "flac", "-frame_size", "1024", src)
    out = tmp_path / "preview.mp4"
    copy(src, out, start=0.2, end=0.4)
    source, preview = _f32(src), _f32(out)
    assert edit(out)[0] == 384
    assert np.array_equal(preview[:4800], source[9600:14400])


def test_lead_in_keeps_the_decoders_preroll() -> None:
    """Of a cut 17394 samples into AAC (1024-sample packets), 16 packets lie wholly before it: 15 are
    left out, one kept as pre-roll; priming (one packet) leaves none out; Opus keeps 80 ms (4 of 20 ms);
    FLAC, which needs none, leaves all 16 out."""
    assert lead_in(17394, [1024] * 20, 1) == 15
    assert lead_in(1024, [1024] * 5, 1) == 0
    assert lead_in(9600 + 100, [960] * 20, 3840) == 6
    assert lead_in(17394, [1024] * 20, 0) == 16
