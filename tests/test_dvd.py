"""DVD sources in containers dove writes: the advice when a container cannot hold their subtitles,
no warning for the navigation data every .vob carries, the subtitles' picture size kept, and .m4v's
own brand. Titles made by ffmpeg's dvd muxer (media.make_dvd_title); outputs read by ffmpeg and PyAV."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import av
import pytest

from dove_cli.errors import OutputError
from dove_cli.upscaling import upscale
from media import ffinfo, ffmpeg, make_clip, make_dvd_title, packets, top_boxes

RUN = dict(model="bilinear", color_fix="none", device="cpu")
PALETTE = "palette: 000000, ffffff, 808080, 000000, 000000, 000000, 000000, 000000, 000000, 000000, 000000, " \
          "000000, 000000, 000000, 000000, 000000\n"  # fmt: skip


@pytest.fixture(scope="module")
def vob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dvd_title(tmp_path_factory.mktemp("dvd") / "VTS_01_1.VOB")


def subtitle_header(path: Path) -> bytes | None:
    """The first subtitle stream's codec private data (Matroska's CodecPrivate), as PyAV reads it."""
    with av.open(str(path)) as c:
        return c.streams.subtitles[0].codec_context.extradata


def test_advice_for_dvd_subtitles_names_only_containers_dove_writes_that_hold_them(vob: Path, tmp_path: Path) -> None:
    """It said "write to .vob", which dove does not write; each extension it names now works."""
    with pytest.raises(OutputError) as exc:
        upscale(vob, tmp_path / "x.ts", **RUN, scale=1)
    said = str(exc.value)
    m = re.fullmatch(r".*x\.ts: the mpegts container cannot hold dvdsub subtitles \(input stream #\d\); write to an "
                     r"extension that holds them \(([^)]*)\) or use --subtitles none", said)  # fmt: skip
    assert m, said
    named = m[1].split(", ")
    assert ".mkv" in named and not {".vob", ".ts", ".m2ts", ".mts", ".webm"} & set(named), named
    for ext in named:
        out = tmp_path / f"x{ext}"
        upscale(vob, out, **RUN, scale=1)
        assert [s.codec for s in ffinfo(out).streams if s.kind == "Subtitle"] == ["dvd_subtitle"], ext
        cues = [md5 for _, _, md5 in packets(out, "0:s")]  # copied as they are (MP4 keeps the first: its
        assert cues and set(cues) <= {md5 for _, _, md5 in packets(vob, "0:s")}, ext  # muxer, ffmpeg's too)


def test_text_subtitles_are_sent_to_the_containers_that_convert_them(tmp_path: Path) -> None:
    srt = make_clip(tmp_path / "srt.mkv", subtitles=True, frames=3)
    with pytest.raises(OutputError, match=r"out\.nut: the nut container cannot hold srt subtitles \(input stream #1\); "
                       r"write to an extension that holds them \(\.m4v, \.mkv, \.mov, \.mp4, \.webm\) or use "
                       r"--subtitles none$"):  # fmt: skip
        upscale(srt, tmp_path / "out.nut", **RUN, scale=1)
    for ext in (".mov", ".webm"):  # (each converts them to its own text codec)
        upscale(srt, tmp_path / f"out{ext}", **RUN, scale=1)
        assert [s.kind for s in ffinfo(tmp_path / f"out{ext}").streams] == ["Video", "Subtitle"]


def test_dvd_navigation_data_is_not_warned_about(vob: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert "Data: dvd_nav_packet" in ffinfo(vob).stderr
    with caplog.at_level(logging.INFO, logger="dove_cli"):
        upscale(vob, tmp_path / "out.mkv", **RUN, scale=1)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any("not copied" in w or "dvd_nav_packet" in w for w in warned), warned
    assert (
        "the input's DVD navigation data (stream #0), which means nothing outside a DVD, is not copied" in caplog.text
    )


def test_dvd_subtitles_say_the_picture_size_they_are_drawn_on(vob: Path, tmp_path: Path) -> None:
    """A .vob's subtitle stream has no header: the output's says the input's size (its bitmaps'
    canvas), not the upscaled video's; a palette the input has is kept, a size it has is kept as it is.
    ffmpeg's own copy (`-c copy`) writes no header: its players would have to guess."""
    out = tmp_path / "x2.mkv"
    upscale(vob, out, **RUN, scale=2)
    assert subtitle_header(out) == b"size: 352x288\n"
    assert "Subtitle: dvd_subtitle (dvdsub), 352x288" in ffinfo(out).stderr
    assert ", 704x576" in ffinfo(out).video().text
    ffmpeg("-i", vob, "-map", "0:v", "-map", "0:s", "-c", "copy", tmp_path / "ffmpeg.mkv")
    assert subtitle_header(tmp_path / "ffmpeg.mkv") is None  # what ffmpeg writes
    mp4 = tmp_path / "x2.mp4"  # MP4 keeps the size as the subtitle track's width and height
    upscale(vob, mp4, **RUN, scale=2, audio="none")
    assert "Subtitle: dvd_subtitle (dvdsub) (mp4s / 0x7334706D), 352x288" in ffinfo(mp4).stderr
    for header, expected in ((PALETTE, "size: 352x288\n" + PALETTE), ("size: 344x288\n" + PALETTE, None)):
        rip = make_dvd_title(tmp_path / "rip.mkv", header=header)
        assert subtitle_header(rip) == header.encode()
        upscale(rip, tmp_path / "rip_x2.mkv", **RUN, scale=2, overwrite=True)
        assert subtitle_header(tmp_path / "rip_x2.mkv") == (expected or header).encode()


def ftyp(path: Path) -> tuple[bytes, list[bytes]]:
    """An MP4 file's major brand and compatible brands, from its first box."""
    head = path.read_bytes()[:64]
    size = int.from_bytes(head[:4], "big")
    assert head[4:8] == b"ftyp"
    return head[8:12], [head[i : i + 4] for i in range(16, size, 4)]


def test_m4v_has_apples_brand_and_its_index_first(tmp_path: Path) -> None:
    """As ffmpeg's ipod muxer (its choice for .m4v) brands it; written by the mp4 muxer, which holds
    the HEVC that the ipod muxer refuses."""
    clip = make_clip(tmp_path / "in.mp4", audio=True, frames=6)
    ffmpeg("-i", clip, "-c", "copy", tmp_path / "ffmpeg.m4v")
    assert ftyp(tmp_path / "ffmpeg.m4v")[0] == b"M4V "
    upscale(clip, tmp_path / "out.m4v", **RUN, scale=1)
    major, compatible = ftyp(tmp_path / "out.m4v")
    assert major == b"M4V " and b"M4V " in compatible
    assert top_boxes(tmp_path / "out.m4v")[:2] == ["ftyp", "moov"]  # still +faststart
    upscale(clip, tmp_path / "out.mp4", **RUN, scale=1)
    assert ftyp(tmp_path / "out.mp4")[0] == b"isom"
    upscale(clip, tmp_path / "hevc.m4v", **RUN, scale=1, codec="hevc")
    assert ftyp(tmp_path / "hevc.m4v")[0] == b"M4V " and ffinfo(tmp_path / "hevc.m4v").video().codec == "hevc"
    refused = ffmpeg("-i", tmp_path / "hevc.m4v", "-c", "copy", tmp_path / "ffmpeg_hevc.m4v", check=False)
    assert refused.returncode != 0 and "codec not currently supported in container" in refused.stderr  # (ipod)


def test_crop_warns_that_dvd_subtitles_stay_on_the_whole_picture(vob: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Their bitmaps are drawn on the input's whole canvas (`size:`), which players fit to the cropped
    picture: said, as for ASS (a dry run says it too)."""
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        upscale(vob, tmp_path / "x.mkv", **RUN, scale=2, crop="8:0:8:0", dry_run=True)
    said = [r.getMessage() for r in caplog.records if "--crop" in r.getMessage()]
    assert len(said) == 1 and re.search(r"\(stream #\d\): they are copied as they are", said[0]), said
