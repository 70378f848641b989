"""Subtitles, captions and attachments in the output: overlapping cues, languages, previews, plans.
Checked against ffmpeg's own reading of the files (tests/media.py)."""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

import pytest

from dove_cli.video_io import open_reader, open_writer
from media import CAPTION, caption_text, ffmpeg, make_caption_ts, make_clip, make_dvd_title, make_pgs

OVERLAPPING = "1\n00:00:00,100 --> 00:00:00,500\nTOP sign\n\n2\n00:00:00,300 --> 00:00:00,700\nbottom talk\n"


def make_overlapping(path: Path) -> Path:
    """A 1 s .mkv whose two SRT cues overlap from 0.3 to 0.5 s."""
    clip = make_clip(path.with_suffix(".v.mkv"), rate="10", frames=10)
    srt = path.with_suffix(".srt")
    srt.write_text(OVERLAPPING)
    ffmpeg("-i", clip, "-i", srt, "-map", "0", "-map", "1", "-c", "copy", path)
    return path


def copy(src: Path, dst: Path, **opts) -> None:
    with open_reader(src) as reader:
        with open_writer(dst, reader.info, 64, 48, **opts) as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts, frame.captions)


def srt_cues(path: Path) -> list[tuple[Fraction, Fraction, str]]:
    """(start, end, text: its lines joined by '|') of the subtitle cues as ffmpeg reads them."""

    def seconds(t: str) -> Fraction:
        h, m, s = t.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + Fraction(s)

    srt = ffmpeg("-i", path, "-map", "0:s:0", "-f", "srt", "-").stdout
    found = re.findall(r"(\S+) --> (\S+)\n(.+?)\n\n", srt + "\n", re.S)
    return [(seconds(a), seconds(b), re.sub("<[^>]+>", "", text).replace("\n", "|")) for a, b, text in found]


def test_webm_keeps_overlapping_cues(tmp_path: Path) -> None:
    """WebVTT holds cues that overlap: each keeps its own times, as ffmpeg's conversion keeps them."""
    src = make_overlapping(tmp_path / "ov.mkv")
    copy(src, tmp_path / "out.webm")
    ffmpeg("-i", src, "-map", "0:s", "-c:s", "webvtt", tmp_path / "ref.webm")
    expected = [(Fraction(1, 10), Fraction(1, 2), "TOP sign"), (Fraction(3, 10), Fraction(7, 10), "bottom talk")]
    assert srt_cues(tmp_path / "ref.webm") == expected
    assert srt_cues(tmp_path / "out.webm") == expected


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_mov_text_shows_overlapping_cues_together(ext: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A text track plays one sample at a time: where two cues overlap, one sample holds both (the later
    above the earlier, which stays where it was), so no text is cut short as ffmpeg cuts it."""
    src = make_overlapping(tmp_path / "ov.mkv")
    ffmpeg("-i", src, "-map", "0:s", "-c:s", "mov_text", tmp_path / f"ref{ext}")
    assert srt_cues(tmp_path / f"ref{ext}")[0] == (Fraction(1, 10), Fraction(3, 10), "TOP sign")  # ffmpeg cuts it
    with caplog.at_level("INFO"):
        copy(src, tmp_path / f"out{ext}")
    assert srt_cues(tmp_path / f"out{ext}") == [
        (Fraction(1, 10), Fraction(3, 10), "TOP sign"),
        (Fraction(3, 10), Fraction(1, 2), "bottom talk|TOP sign"),
        (Fraction(1, 2), Fraction(7, 10), "bottom talk"),
    ]
    assert f"{tmp_path / f'out{ext}'}: 2 overlapping cues of subtitle stream #1 shown together" in caplog.text
    if ext == ".mp4":  # a run, whose subtitles are copied when its segments are joined: said there too
        from dove_cli import upscale

        with caplog.at_level("INFO"):
            upscale(src, tmp_path / "run.mp4", model="bilinear", scale=1)
        assert f"{tmp_path / 'run.mp4'}: 2 overlapping cues of subtitle stream #1 shown together" in caplog.text


def test_sequencer_lays_cues_one_after_another() -> None:
    """A cue inside another, a third overlapping both, a gap, and a cue without an end (shown until the
    next starts): samples that never overlap and, at each time, hold every cue on screen."""
    from dove_cli.video_io.cues import Cue, Sequencer

    def event(text: str) -> bytes:
        return b"0,0,Default,,0,0,0,," + text.encode()

    seq = Sequencer()
    cues = [Cue(0, 100, event("a")), Cue(10, 20, event("b")), Cue(15, 50, event("c")), Cue(200, None, event("d"))]
    samples = [s for c in cues for s in seq.push(c)] + seq.push(Cue(300, 310, event("e"))) + seq.flush()
    got = [(s.start, s.end, re.sub(r"\{\\r[^}]*\}", "", s.ass.decode().split(",", 8)[8])) for s in samples]
    assert got == [
        (0, 10, "a"),
        (10, 15, r"b\Na"),
        (15, 20, r"c\Nb\Na"),
        (20, 50, r"c\Na"),
        (50, 100, "a"),
        (200, 300, "d"),
        (300, 310, "e"),
    ]
    assert seq.overlapping == 3


def languages(path: Path) -> list[str | None]:
    """Each stream's language as ffmpeg lists it ("Stream #0:1(pt-BR): ..."), None where it has none."""
    listed = ffmpeg("-i", path, check=False).stderr
    return [lang or None for lang in re.findall(r"Stream #0:\d+(?:\[\w+\])?(?:\(([^)]+)\))?:", listed)]


def test_bcp47_languages_in_mp4_and_mov(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """MP4/MOV store three letters; FFmpeg writes a BCP-47 tag (pt-BR) as undetermined. Each is written as
    its language's ISO 639-2 code (MP4: the terminological one, as ISO 14496-12 has it; MOV: the spelling
    QuickTime's table keeps), and the region or script dropped is said; Maori, which .mov has no tag for,
    goes untagged there and is said too. .mkv keeps the tags whole."""
    tags = ["pt-BR", "zh-Hant", "es-419", "mi", "en"]
    meta = [a for i, tag in enumerate(tags) for a in (f"-metadata:s:s:{i}", f"language={tag}")]
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nHi\n")
    clip = make_clip(tmp_path / "v.mkv", rate="10", frames=3)
    src = tmp_path / "lang.mkv"
    ffmpeg("-i", clip, *[a for _ in tags for a in ("-i", srt)], *[a for i in range(len(tags) + 1) for a in ("-map", str(i))],
           "-c", "copy", *meta, src)  # fmt: skip
    assert languages(src)[1:] == tags  # (ffmpeg reads back the tags .mkv holds)
    out = {}
    for ext in (".mp4", ".mov"):
        out[ext] = tmp_path / f"out{ext}"
        with caplog.at_level(logging.INFO):
            copy(src, out[ext])
    assert languages(out[".mp4"])[1:] == ["por", "zho", "spa", "mri", "eng"]
    assert languages(out[".mov"])[1:] == ["por", "chi", "spa", None, "eng"]
    said = [r.getMessage() for r in caplog.records]
    mp4, mov = out[".mp4"], out[".mov"]
    assert f"{mp4}: languages written as the ISO 639-2 code .mp4 keeps: #4 mi as mri, #5 en as eng" in said
    lost = "input streams #1 pt-BR as por, #2 zh-Hant as {}, #3 es-419 as spa (.mkv keeps them whole)"
    stores = ".{} stores a language as its three-letter ISO 639-2 code, without a region or script; "
    assert f"{mp4}: {stores.format('mp4')}{lost.format('zho')}" in said
    assert f"{mov}: {stores.format('mov')}{lost.format('chi')}" in said
    assert f"{mov}: .mov holds no tag for the language of input stream #4 (mi): written untagged; .mp4 keeps it " \
           "(as mri) and .mkv whole" in said  # fmt: skip


def test_attachments_are_said_in_the_plan_and_fonts_only_blamed_for_fonts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--dry-run says the attachments the run leaves out, as the run does, once; a notes.txt is not a
    font that styled subtitles need, a font beside subtitles is."""
    from dove_cli import upscale

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nHi\n")
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "f.ttf").write_bytes(bytes(512))
    clip = make_clip(tmp_path / "v.mkv", rate="10", frames=3)
    notes, font = tmp_path / "notes.mkv", tmp_path / "font.mkv"
    ffmpeg("-i", clip, "-i", srt, "-map", "0", "-map", "1", "-c", "copy", "-attach", tmp_path / "notes.txt",
           "-metadata:s:t:0", "mimetype=text/plain", notes)  # fmt: skip
    ffmpeg(
        "-i",
        clip,
        "-i",
        srt,
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-attach",
        tmp_path / "f.ttf",
        "-metadata:s:t:0",
        "mimetype=application/octet-stream",
        font,
    )  # fmt: skip (a font by its name)
    for src, why in (
        (notes, "only .mkv holds them"),
        (font, "only .mkv holds them, and styled subtitles need their fonts"),
    ):
        name = "notes.txt" if src is notes else "f.ttf"
        for dry_run in (True, False):
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                upscale(src, tmp_path / "out.mp4", model="bilinear", scale=1, dry_run=dry_run, overwrite=True)
            said = [r.getMessage() for r in caplog.records if "attachment" in r.getMessage()]
            assert said == [f"{src}: 1 attachment(s) not copied ({name}): {why}"], (src, dry_run)


def test_info_names_the_descriptions_flag(tmp_path: Path) -> None:
    """A subtitle track of text descriptions for the blind (FFmpeg's "descriptions" disposition, Matroska's
    FlagTextDescriptions) is named, as ffmpeg names it."""
    from dove_cli.video_io.describe import describe

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nHi\n")
    src = tmp_path / "flags.mkv"
    ffmpeg("-i", make_clip(tmp_path / "v.mkv", rate="10", frames=3), "-i", srt, "-map", "0", "-map", "1", "-c", "copy",
           "-disposition:s:0", "descriptions+forced", src)  # fmt: skip
    assert "(forced) (descriptions)" in ffmpeg("-i", src, check=False).stderr
    assert [s["flags"] for s in describe(src)["streams"] if s.get("kind", s.get("type")) == "subtitle"] == [
        ["forced", "descriptions"]
    ]


def test_a_crop_that_cuts_nothing_moves_no_subtitle(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """--crop warns that ASS signs (drawn at places on the picture) no longer line up: not for 0:0:0:0."""
    from dove_cli import upscale

    ass = tmp_path / "s.ass"
    ass.write_text("[Script Info]\nScriptType: v4.00+\nPlayResX: 64\nPlayResY: 48\n\n[Events]\nFormat: Layer, Start, "
                   "End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:00.00,0:00:00.20,"
                   "Default,,0,0,0,,{\\pos(10,5)}SIGN\n")  # fmt: skip
    src = tmp_path / "a.mkv"
    ffmpeg(
        "-i", make_clip(tmp_path / "v.mkv", rate="10", frames=3), "-i", ass, "-map", "0", "-map", "1", "-c", "copy", src
    )
    for crop, warned in (("0:0:0:0", False), ("2:0:2:0", True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            upscale(src, tmp_path / "out.mkv", model="bilinear", scale=1, crop=crop, dry_run=True)
        assert ("--crop and subtitles drawn at places" in caplog.text) is warned, crop


def test_captions_that_start_late_are_found(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed captions from frame 8 on (none on the first frame): found before the run from the video's
    packets, so an output that cannot carry them says so first (as for captions from the start); beyond what that check reads, the run
    finds them and says it at its end. hevc keeps them either way (libx265 writes none unless told)."""
    from dove_cli.video_io import captions, probe

    src = make_caption_ts(tmp_path / "late.ts", frames=24, first=8)
    assert CAPTION in caption_text(src).replace("\n", "")  # (ffmpeg reads them)
    assert probe(src).captions
    monkeypatch.setattr(captions, "CAPTION_SCAN_S", 0.2)  # the check before the run reads 0.2 s: not enough
    assert not probe(src).captions
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        copy(src, tmp_path / "late.mkv", codec="ffv1")
        copy(src, tmp_path / "hevc.mkv", codec="libx265")
    assert [m for m in caplog.messages if "captions" in m] == [
        f"{tmp_path / 'late.mkv'}: the input's closed captions (EIA-608/708 in the video), found from 0.3 s on, are "
        "not kept: ffv1 cannot carry them (h264 and hevc keep them)"
    ]
    assert caption_text(tmp_path / "late.mkv") == ""
    assert caption_text(tmp_path / "hevc.mkv") == caption_text(src)
    from dove_cli import upscale

    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a run writes segments, then joins them: said once, at the end
        upscale(src, tmp_path / "run.mkv", model="bilinear", scale=1, codec="ffv1")
    assert [m for m in caplog.messages if "captions" in m] == [
        f"{tmp_path / 'run.mkv'}: the input's closed captions (EIA-608/708 in the video), found from 0.3 s on, are "
        "not kept: ffv1 cannot carry them (h264 and hevc keep them)"
    ]


def subtitle_packets(path: Path) -> list[tuple[Fraction, str]]:
    """(time from the first frame, md5) of each subtitle packet, as PyAV demuxes them."""
    import hashlib

    import av

    with av.open(str(path)) as c:
        v, s = c.streams.video[0], c.streams.subtitles[0]
        t0 = Fraction(v.start_time or 0) * v.time_base
        return [(p.pts * p.time_base - t0, hashlib.md5(bytes(p)).hexdigest()) for p in c.demux(s) if p.pts is not None]


def preview(src: Path, out: Path, start: float) -> None:
    with open_reader(src, start=start, duration=0.1) as reader:
        with open_writer(out, reader.info, reader.info.width, reader.info.height, start=start, end=start + 0.1) as w:
            for frame in reader:
                w.write(frame.rgb, frame.pts)


def test_preview_keeps_the_dvb_subtitle_on_screen_at_its_start(tmp_path: Path) -> None:
    """A DVB subtitle has no duration (it shows until the next page, or its time-out): the page on screen
    at a preview's start comes back at its 0, as a PGS one does; after the page that clears it, none."""
    sup = make_pgs(tmp_path / "s.sup", [(0.0, 0.1, (8, 8, 16, 8)), (0.4, 0.8, (8, 8, 16, 8))])
    src = tmp_path / "in.ts"
    ffmpeg("-i", make_clip(tmp_path / "v.mkv", rate="10", frames=10), "-i", sup, "-map", "0", "-map", "1", "-c:v",
           "copy", "-c:s", "dvbsub", src)  # fmt: skip
    packets = subtitle_packets(
        src
    )  # as ffmpeg made them: shown at 0, cleared and the next shown at 0.2, cleared at 0.4
    assert [round(float(t), 1) for t, _ in packets] == [0, 0.2, 0.2, 0.4]
    preview(src, tmp_path / "on.mkv", 0.3)
    assert [md5 for t, md5 in subtitle_packets(tmp_path / "on.mkv") if t == 0] == [packets[2][1]]
    preview(src, tmp_path / "cleared.mkv", 0.45)
    assert subtitle_packets(tmp_path / "cleared.mkv") == []


def test_preview_keeps_the_dvd_subtitle_on_screen_at_its_start(tmp_path: Path) -> None:
    """A .vob's DVD subtitles have no duration (each stops itself: its SPU's stop command, here after
    1.02 s): the one shown at 0.2 s comes back at the start of a preview from 0.4 s."""
    src = make_dvd_title(tmp_path / "t.vob", frames=25)
    packets = subtitle_packets(src)
    assert [round(float(t), 1) for t, _ in packets] == [0.2, 0.6]
    preview(src, tmp_path / "out.mkv", 0.4)
    assert subtitle_packets(tmp_path / "out.mkv") == [(0, packets[0][1])]


def test_webvtt_cue_settings_dropped_by_mov_text_are_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """WebVTT cue settings (line, position, align) have no place in mov_text: said, with how many cues."""
    vtt = tmp_path / "s.vtt"
    vtt.write_text("WEBVTT\n\n00:00.000 --> 00:00.200 line:10% position:20% align:start\nTop left\n\n"
                   "00:00.200 --> 00:00.300\nPlain\n")  # fmt: skip
    src = tmp_path / "pos.mkv"
    ffmpeg(
        "-i", make_clip(tmp_path / "v.mkv", rate="10", frames=3), "-i", vtt, "-map", "0", "-map", "1", "-c", "copy", src
    )
    assert "line:10%" in ffmpeg("-i", src, "-map", "0:s", "-c", "copy", "-f", "webvtt", "-").stdout
    with caplog.at_level(logging.WARNING):
        copy(src, tmp_path / "out.mp4")
    assert [m for m in caplog.messages if "WebVTT" in m] == [
        f"{tmp_path / 'out.mp4'}: mov_text has no place for WebVTT cue settings (line, position, size, align): not "
        "kept for 1 cue of subtitle stream #1; .mkv and .webm keep them"
    ]
    from dove_cli import upscale

    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a run: its subtitles are copied when its segments are joined
        upscale(src, tmp_path / "run.mp4", model="bilinear", scale=1)
    assert [m for m in caplog.messages if "WebVTT" in m] == [
        f"{tmp_path / 'run.mp4'}: mov_text has no place for WebVTT cue settings (line, position, size, align): not "
        "kept for 1 cue of subtitle stream #1; .mkv and .webm keep them"
    ]
