"""Copied ASS subtitles on an upscaled picture: libass (ffmpeg's subtitles filter, the reference)
draws the output's track as it drew the input's, told the input's storage size as mpv tells it;
--crop warns, --compare leaves subtitles out. Header edits checked as text against the script."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import pytest

from dove_cli.upscaling import upscale
from dove_cli.video_io.reader import VideoInfo
from dove_cli.video_io.subtitle_headers import ass_layout, laid_out_ass_header
from media import ASS_SCRIPT, ffinfo, ffmpeg, libass_render, make_ass_clip, make_clip, packets

RUN = dict(model="bilinear", color_fix="none", device="cpu", tile=0)
LAYOUT_64x36 = ASS_SCRIPT.replace(
    "ScaledBorderAndShadow: no\n", "ScaledBorderAndShadow: no\nLayoutResX: 64\nLayoutResY: 36\n"
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ass_clip(tmp_path_factory.mktemp("ass") / "signs.mkv")


def header(path: Path) -> str:
    """The first subtitle stream's header (Matroska CodecPrivate) as PyAV reads it."""
    with av.open(str(path)) as c:
        return (c.streams.subtitles[0].codec_context.extradata or b"").decode()


def test_upscaled_ass_is_drawn_as_on_the_input(clip: Path, tmp_path: Path) -> None:
    """x2: the border (ScaledBorderAndShadow: no) and \\blur, which libass scales by storage size, are
    drawn on the output pixel for pixel as on the input shown at the output's size (without
    LayoutResX/Y, 3075 of its 4712 pixels differ); the events are the input's, byte for byte."""
    out = tmp_path / "x2.mkv"
    upscale(clip, out, **RUN, scale=2)
    assert libass_render(out, 128, 72) == libass_render(clip, 128, 72, original="64x36")
    assert header(clip) == ASS_SCRIPT.split("Dialogue:")[0]
    assert header(out) == LAYOUT_64x36.split("Dialogue:")[0]
    assert [md5 for *_, md5 in packets(out, "0:s")] == [md5 for *_, md5 in packets(clip, "0:s")]


def test_anamorphic_ass_keeps_its_stretch_at_a_square_size(tmp_path: Path) -> None:
    """Pixels 3:2 wide (64x36 shown 96x36), --size to square pixels: libass stretches the script with
    the pixels on the input (players' VSFilter-compatible default) and, told the input's stored size
    (not its shown 96x36), on the output alike."""
    clip = make_ass_clip(tmp_path / "ana.mkv", sar="3/2")
    out = tmp_path / "sized.mkv"
    upscale(clip, out, **RUN, scale=2, size="192x72")
    assert ", 192x72," in ffinfo(out).video().text
    assert libass_render(out, 192, 72) == libass_render(clip, 192, 72, original="64x36")


def test_crop_warns_once_and_a_turned_picture_gets_its_shown_layout(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """--crop: one warning naming the track. The layout is the cropped picture's (64-8-8 = 48 wide:
    borders keep their thickness against the picture), turned as a 90-degree phone clip is shown."""
    base = make_ass_clip(tmp_path / "base.mkv")
    turned = tmp_path / "turned.mkv"
    ffmpeg("-display_rotation:v", "90", "-i", base, "-c", "copy", turned)
    out = tmp_path / "x2.mkv"
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        upscale(turned, out, **RUN, scale=2, crop="8:0:8:0")
    said = [r.getMessage() for r in caplog.records if "--crop" in r.getMessage()]
    assert len(said) == 1 and "(stream #1 'Signs')" in said[0] and "--subtitles none" in said[0], said
    assert "LayoutResX: 36\nLayoutResY: 48\n" in header(out)


def test_crop_says_nothing_of_plain_text_subtitles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SRT has no places on the picture: a player sets it at the bottom of whatever it shows."""
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        upscale(make_clip(tmp_path / "srt.mkv", subtitles=True, frames=3), tmp_path / "x.mkv", **RUN, scale=2,
                crop="8:0:8:0", dry_run=True)  # fmt: skip
    assert "--crop" not in caplog.text


def test_compare_leaves_subtitles_out(clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Laid out on the whole double-width frame, they would straddle the seam: left out, said."""
    out = tmp_path / "cmp.mkv"
    with caplog.at_level(logging.INFO, logger="dove_cli"):
        upscale(clip, out, **RUN, scale=2, compare=True)
    assert [s.kind for s in ffinfo(out).streams] == ["Video"]
    assert f"{clip}: --compare leaves the subtitles out" in caplog.text


def test_header_lines_are_added_in_the_scripts_own_way() -> None:
    """At the end of [Script Info], in its line endings; a script that says a layout (or has no
    [Script Info]) is kept as it is."""
    crlf = b"[Script Info]\r\nPlayResX: 640\r\n\r\n[V4+ Styles]\r\n"
    assert laid_out_ass_header(crlf, (720, 480)) == (
        b"[Script Info]\r\nPlayResX: 640\r\nLayoutResX: 720\r\nLayoutResY: 480\r\n\r\n[V4+ Styles]\r\n"
    )
    assert (
        laid_out_ass_header(b"[Script Info]\nTitle: x", (8, 6))
        == b"[Script Info]\nTitle: x\nLayoutResX: 8\nLayoutResY: 6"
    )
    assert laid_out_ass_header(b"[Script Info]\nLayoutResY: 1080\n\n[Events]\n", (8, 6)) is None
    assert laid_out_ass_header(b"[V4+ Styles]\n", (8, 6)) is None
    events = b"[Script Info]\nPlayResX: 640\n\n[Events]\nLayoutResX: 1\n"  # another section's line is not the script's
    assert b"LayoutResX: 8\nLayoutResY: 6\n\n[Events]" in (laid_out_ass_header(events, (8, 6)) or b"")


def test_layout_is_said_only_where_the_size_changes() -> None:
    info = VideoInfo(Path("x.mkv"), 64, 36, 4, fps=Fraction(25), time_base=Fraction(1, 1000))
    assert ass_layout(info, 64, 36) is None  # (x1, or a --crop alone: the storage size is the picture's)
    assert ass_layout(info, 256, 144) == (64, 36)
