"""Blu-ray sources (TrueHD from Matroska remuxes, .m2ts with PGS subtitles and LPCM) in the containers
dove writes: every TrueHD packet kept in .m2ts, the empty stream FFmpeg lists beside TrueHD left out,
PGS and LPCM kept in .m2ts and LPCM converted losslessly elsewhere, the stream flags a container drops
said, and every stream a container cannot hold named in one error. Clips made by the ffmpeg binary (PGS
written by media.make_sup); outputs read by ffmpeg, or by a round trip through PyAV's own muxers."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import pytest

from dove_cli.errors import OutputError
from dove_cli.video_io import open_reader, open_writer
from dove_cli.video_io.describe import describe
from dove_cli.video_io.formats import FLAGS, KEPT_FLAGS
from media import ffinfo, ffmpeg, make_sup, packets

VIDEO = ("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24000/1001")
SINE = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")


def roundtrip(src: Path, dst: Path, **opts: str) -> None:
    """Decode every frame and write it back unchanged, with the audio and subtitles as `opts` say."""
    with open_reader(src) as reader, open_writer(dst, reader.info, reader.info.width, reader.info.height, **opts) as w:
        for frame in reader:
            w.write(frame.rgb, frame.pts)


@pytest.fixture(scope="module")
def truehd_mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.25 s of TrueHD (1200 packets a second) in Matroska, whose millisecond times give about one
    packet in 6 the time of the one before, and a PGS track."""
    folder = tmp_path_factory.mktemp("bluray")
    path = folder / "thd.mkv"
    ffmpeg(*VIDEO, *SINE, "-i", make_sup(folder / "subs.sup"), "-map", "0:v", "-map", "1:a", "-map", "2:s",
           "-t", "0.25", "-c:v", "libx264", "-c:a", "truehd", "-strict", "-2", "-c:s", "copy", path)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def lpcm_m2ts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Blu-ray LPCM (pcm_bluray), 24-bit stereo (all 24 bits used: made from floats), in an .m2ts."""
    path = tmp_path_factory.mktemp("lpcm") / "bd.m2ts"
    tones = "aevalsrc=0.3*sin(440*2*PI*t)|0.2*sin(554*2*PI*t):s=48000"
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", tones, "-t", "0.2", "-c:v", "libx264", "-c:a", "pcm_bluray", "-sample_fmt",
           "s32", path)  # fmt: skip
    return path


def test_truehd_from_matroska_keeps_every_packet_in_m2ts(
    truehd_mkv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A sixth of the TrueHD packets were dropped as "gone back in time": their dts only equals the one
    before. Each is now moved a tick on, as ffmpeg's own copy does: the same packets, in order."""
    source = packets(truehd_mkv, "0:a")
    assert 0 < sum(a[0] == b[0] for a, b in zip(source, source[1:], strict=False)) < len(source) / 4
    ffmpeg("-i", truehd_mkv, "-map", "0:v", "-map", "0:a", "-c", "copy", tmp_path / "ff.m2ts")
    out = tmp_path / "out.m2ts"
    with caplog.at_level(logging.WARNING):
        roundtrip(truehd_mkv, out, subtitles="none")
    written = packets(out, "0:a:0")  # (a:1: the stream FFmpeg's demuxer lists beside TrueHD)
    assert [md5 for *_, md5 in written] == [md5 for *_, md5 in packets(tmp_path / "ff.m2ts", "0:a:0")]
    assert [md5 for *_, md5 in written] == [md5 for *_, md5 in source]
    assert all(a[0] < b[0] for a, b in zip(written, written[1:], strict=False))
    assert "went back in time" not in caplog.text


def test_the_empty_stream_beside_truehd_is_left_out(
    truehd_mkv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg's MPEG-TS demuxer lists an 'ac3, 0 channels, 0 Hz' stream beside each TrueHD track:
    copied it was refused ("matroska cannot hold ac3"), transcoded a traceback. It is left out, said
    in an info line, and `dove info` marks it; an encoder that cannot start is one line, not a traceback."""
    m2ts = tmp_path / "thd.m2ts"
    ffmpeg("-i", truehd_mkv, "-map", "0:v", "-map", "0:a", "-c", "copy", m2ts)
    assert [s.codec for s in ffinfo(m2ts).streams] == ["h264", "truehd", "ac3"]  # the phantom, as ffmpeg shows it
    assert [s.get("empty") for s in describe(m2ts)["streams"]] == [False, True]
    for audio in ("copy", "transcode"):
        out = tmp_path / f"{audio}.mkv"
        with caplog.at_level(logging.INFO, logger="dove_cli"):
            roundtrip(m2ts, out, audio=audio)
        assert [s.codec for s in ffinfo(out).streams] == ["h264", "truehd" if audio == "copy" else "aac"]
    assert f"{out}: input audio stream #2 left out: empty (no channels, no sound)" in caplog.text
    monkeypatch.setattr("dove_cli.video_io.writer.audio_streams", lambda c: list(c.streams.audio))
    with pytest.raises(OutputError, match=r"again\.mkv: audio stream #2 \(ac3, .*\) cannot be encoded as aac"):
        roundtrip(m2ts, tmp_path / "again.mkv", audio="transcode")


def test_pgs_and_lpcm_are_kept_in_m2ts_only(truehd_mkv: Path, lpcm_m2ts: Path, tmp_path: Path) -> None:
    """FFmpeg's muxer gives PGS and LPCM their Blu-ray stream types in .m2ts (its m2ts mode), which
    PyAV reads back as they were; a .ts would store them as data streams: refused, naming .m2ts."""
    out = tmp_path / "pgs.m2ts"
    roundtrip(truehd_mkv, out)
    assert sorted(s.codec for s in ffinfo(out).streams) == ["ac3", "h264", "hdmv_pgs_subtitle", "truehd"]
    assert [md5 for *_, md5 in packets(out, "0:s")] == [md5 for *_, md5 in packets(truehd_mkv, "0:s")]
    with av.open(str(out)) as c:  # as dove's FFmpeg reads it: a subtitle stream, not data
        assert [s.codec_context.name for s in c.streams.subtitles] == ["pgssub"]
    lpcm = tmp_path / "lpcm.m2ts"
    roundtrip(lpcm_m2ts, lpcm)
    assert [md5 for *_, md5 in packets(lpcm, "0:a")] == [md5 for *_, md5 in packets(lpcm_m2ts, "0:a")]
    with pytest.raises(OutputError, match=r"pgs\.ts: .*cannot hold pgssub subtitles \(input stream #2\); write to "
                       r"an extension that holds them \(\.m2ts, \.mkv\) or use --subtitles none$"):  # fmt: skip
        roundtrip(truehd_mkv, tmp_path / "pgs.ts")
    dvb = tmp_path / "dvb.mkv"  # DVB subtitles, which .ts holds, have no Blu-ray stream number: refused at once
    ffmpeg(*VIDEO, "-i", make_sup(tmp_path / "a.sup"), "-t", "0.2", "-c:v", "libx264", "-c:s", "dvbsub", dvb)
    with pytest.raises(OutputError, match=r"dvb\.m2ts: .*cannot hold dvbsub subtitles \(input stream #1\); write to "
                       r"an extension that holds them \(\.mkv, \.mts, \.nut, \.ts\) or use --subtitles none$"):  # fmt: skip
        roundtrip(dvb, tmp_path / "dvb.m2ts")
    roundtrip(dvb, tmp_path / "dvb.ts")


@pytest.mark.parametrize(("ext", "codec"), [(".mkv", "pcm_s24le"), (".mp4", "flac")])
def test_lpcm_is_converted_losslessly_where_it_cannot_go(
    lpcm_m2ts: Path, ext: str, codec: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pcm_bluray into .mkv or .mp4 was refused, and the advice, --audio transcode, made it AAC. It is
    converted to PCM of its depth (.mp4: FLAC, as few players play PCM there), said before the run;
    ffmpeg decodes the same samples from both files."""
    out = tmp_path / f"out{ext}"
    with caplog.at_level(logging.WARNING):
        roundtrip(lpcm_m2ts, out)
    assert ffinfo(out).streams[1].codec == codec
    for f in (lpcm_m2ts, out):
        ffmpeg("-i", f, "-map", "0:a", "-f", "s32le", f.with_suffix(".raw"))
    decoded = [f.with_suffix(".raw").read_bytes() for f in (lpcm_m2ts, out)]
    assert len(decoded[0]) > 0.19 * 48000 * 2 * 4 and decoded[0] == decoded[1]
    assert any(decoded[0][i + 1] for i in range(0, len(decoded[0]), 4))  # bits below the 16th: 24-bit sound
    assert f"cannot hold pcm_bluray audio: converted losslessly (the same samples), input stream #1 to {codec}" in (
        caplog.text
    )


def test_every_stream_a_container_cannot_hold_is_named_at_once(truehd_mkv: Path, tmp_path: Path) -> None:
    """TrueHD and PGS into .mp4: the audio was refused, then (after --audio transcode) the subtitles.
    One line names both, with the extensions that hold them all."""
    with pytest.raises(OutputError) as exc:
        roundtrip(truehd_mkv, tmp_path / "out.mp4")
    assert str(exc.value) == (
        f"{tmp_path / 'out.mp4'}: the mp4 container cannot hold truehd audio (input stream #1), pgssub subtitles "
        "(input stream #2); write to an extension that holds them all (.m2ts, .mkv) or use --audio transcode to "
        "re-encode the audio or --audio none to drop it, and --subtitles none"
    )


def flags_kept(src: Path, index: int, ext: str, fmt: str) -> frozenset[str]:
    """Which of `FLAGS` a stream keeps when written into `fmt` by PyAV's muxer and read back, each alone."""
    kept = set()
    for flag in FLAGS:
        with av.open(str(src)) as c, av.open(str(src.with_suffix(ext)), "w", format=fmt) as out:
            ostream = out.add_stream_from_template(c.streams[index])
            ostream.disposition = getattr(av.stream.Disposition, flag)
            for p in c.demux(c.streams[index]):
                if p.dts is not None:
                    p.stream = ostream
                    out.mux(p)
        with av.open(str(src.with_suffix(ext))) as c:
            if c.streams[0].disposition & getattr(av.stream.Disposition, flag):
                kept.add(flag)
    return frozenset(kept)


def test_the_flags_each_container_keeps_are_those_its_muxer_writes(tmp_path: Path) -> None:
    """`KEPT_FLAGS` (what dove says a container drops) against a round trip of each flag alone."""
    srt = tmp_path / "a.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,100\nhi\n")
    sup = make_sup(tmp_path / "a.sup")
    sources = {  # a stream of each kind each container holds: (file, stream index)
        "aac": (tmp_path / "aac.mkv", ("-f", "lavfi", "-i", "sine=d=0.1", "-c:a", "aac")),
        "opus": (tmp_path / "opus.mkv", ("-f", "lavfi", "-i", "sine=d=0.1", "-c:a", "libopus")),
        "subrip": (tmp_path / "srt.mkv", ("-i", srt)),
        "webvtt": (tmp_path / "vtt.mkv", ("-i", srt, "-c:s", "webvtt")),
        "mov_text": (tmp_path / "tx3g.mp4", ("-i", srt, "-c:s", "mov_text")),
        "dvb_subtitle": (tmp_path / "dvb.mkv", ("-i", sup, "-c:s", "dvbsub")),
        "hdmv_pgs_subtitle": (tmp_path / "pgs.mkv", ("-i", sup, "-c:s", "copy")),
    }
    for path, args in sources.values():
        ffmpeg(*args, path)
    cases = {  # (container, kind or codec) -> the source, and the extension written
        ("matroska", "audio"): ("aac", ".mkv"), ("matroska", "subtitle"): ("subrip", ".mkv"),
        ("webm", "audio"): ("opus", ".webm"), ("webm", "subtitle"): ("webvtt", ".webm"),
        ("mp4", "audio"): ("aac", ".mp4"), ("mp4", "subtitle"): ("mov_text", ".mp4"),
        ("mov", "audio"): ("aac", ".mov"), ("mov", "subtitle"): ("mov_text", ".mov"),
        ("mpegts", "audio"): ("aac", ".ts"), ("mpegts", "subtitle"): ("hdmv_pgs_subtitle", ".m2ts"),
        ("mpegts", "dvb_subtitle"): ("dvb_subtitle", ".ts"),
        ("nut", "audio"): ("aac", ".nut"), ("nut", "subtitle"): ("subrip", ".nut"),
    }  # fmt: skip
    assert set(cases) == set(KEPT_FLAGS)
    for (fmt, kind), (source, ext) in cases.items():
        src = sources[source][0]
        assert flags_kept(src, 0, ext, fmt) == KEPT_FLAGS[fmt, kind], (fmt, kind)


def test_the_flags_a_container_drops_are_said_before_the_run(
    truehd_mkv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """.ts kept no flag (TrueHD's default, a commentary's comment) and .mp4 no 'original', unsaid:
    named in the warning said before the run (MPEG-TS: the one that names all it does not keep)."""
    src = tmp_path / "flags.mkv"
    ffmpeg("-i", truehd_mkv, "-map", "0:v", "-map", "0:a", "-map", "0:a", "-c:v", "copy", "-c:a:0", "copy",
           "-c:a:1", "aac", "-disposition:a:0", "default", "-disposition:a:1", "comment+original", src)  # fmt: skip
    with caplog.at_level(logging.WARNING):
        roundtrip(src, tmp_path / "out.ts")
        roundtrip(src, tmp_path / "out.mp4", audio="transcode")
    assert (
        f"{tmp_path / 'out.ts'}: MPEG-TS keeps no file tags, chapters or stream titles, nor most stream flags "
        "(default, comment, forced...); not kept: the flags of streams #1 (default), #2 (comment, original) "
        "(.mkv keeps them all)" in caplog.messages
    )
    assert (
        f"{tmp_path / 'out.mp4'}: .mp4 does not keep every stream flag; not kept: the flags of stream #2 (original) "
        "(.mkv keeps them)" in caplog.messages
    )
    assert [s["flags"] for s in describe(tmp_path / "out.mp4")["streams"]] == [["default"], ["comment"]]
