"""video_io.fields: what a video flagged interlaced holds (FFmpeg's idet), as a run warns of it and
`dove info` shows it. Clips made by the ffmpeg binary from a real demo clip's motion (idet misjudges
synthetic patterns: testsrc2, progressive, looks 3 in 4 combed to it, in the ffmpeg binary too)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import demo_clip
from dove_cli.console import described_rows
from dove_cli.errors import OptionError
from dove_cli.options import UpscaleOptions, check_options
from dove_cli.video_io import open_reader
from dove_cli.video_io.describe import describe
from dove_cli.video_io.fields import ORDER_FRAMES, SCAN_FRAMES, FieldScan, parity, scan_fields
from media import ffmpeg, ffmpeg_frames, showinfo

MPEG2 = ("-c:v", "mpeg2video", "-q:v", "2", "-flags", "+ilme+ildct")  # interlaced coding, as on a DVD
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-qp", "12", "-flags", "+ilme+ildct")
# How each clip is made from demo 005 (320x240, 16 fps of real motion), and what idet must find.
RECIPES = {
    # 2 frames in each: its fields 1/50 s apart (the source taken as 50p), top field first
    "tff.mpg": ("setpts=N/50/TB,fps=50,tinterlace=interleave_top,setfield=tff", MPEG2, "interlaced", "tff"),
    "bff.mkv": ("setpts=N/50/TB,fps=50,interlace=scan=bff,setfield=bff", X264, "interlaced", "bff"),
    # progressive frames flagged interlaced: film on a PAL DVD
    "film.mpg": ("setfield=tff", MPEG2, "progressive", "tff"),
    # 3:2 pulldown: the frames taken as 23.976p, spread over 29.97 interlaced frames (NTSC film)
    "telecined.mpg": ("setpts=N*1001/24000/TB,fps=24000/1001,telecine=pattern=23,setfield=tff", MPEG2, "telecined",
                      "tff"),
}  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fields")
    for name, (vf, codec, _, _) in RECIPES.items():
        ffmpeg("-i", demo_clip("005.mp4"), "-vf", vf, "-frames:v", "40", *codec, "-an", folder / name)
    return {name: folder / name for name in RECIPES}


def ffmpeg_idet(path: Path) -> tuple[dict[str, int], int]:
    """The ffmpeg binary's idet over the frames dove scans: its multi-frame counts and repeated fields."""
    err = ffmpeg("-i", path, "-frames:v", str(SCAN_FRAMES), "-vf", "idet", "-f", "null", "-").stderr
    multi = re.findall(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+) Undetermined:\s*(\d+)",
                       err)[-1]  # fmt: skip
    top, bottom = re.findall(r"Repeated Fields: Neither:\s*\d+ Top:\s*(\d+) Bottom:\s*(\d+)", err)[-1]
    counts = dict(zip(("tff", "bff", "progressive", "undetermined"), map(int, multi), strict=True))
    return counts, int(top) + int(bottom)


@pytest.mark.parametrize("name", RECIPES)
def test_scan_finds_what_the_frames_are_as_ffmpeg_idet_does(clips: dict[str, Path], name: str) -> None:
    _, _, verdict, order = RECIPES[name]
    scan = scan_fields(clips[name], 0)
    assert scan is not None and scan.verdict == verdict and scan.frames == 40
    counts, repeated = ffmpeg_idet(clips[name])
    assert {k: getattr(scan, k) for k in counts} == counts and scan.repeated == repeated
    first = showinfo(clips[name])[0]  # the frame's own flag, as ffmpeg shows it: i:T / i:B
    assert scan.flagged_order == order and f"i:{order[0].upper()}" in first
    if verdict == "telecined":  # 3:2 pulldown repeats a field in 2 frames of every 5
        assert abs(scan.repeated - 40 * 2 / 5) <= 2


def test_the_verdict_rules() -> None:
    """Telecine first, then 4 in 5 of the frames idet could judge; none judged: undetermined."""

    def verdict(tff: int = 0, bff: int = 0, progressive: int = 0, undetermined: int = 0, repeated: int = 0) -> str:
        frames = tff + bff + progressive + undetermined
        return FieldScan(frames, tff, bff, progressive, undetermined, repeated, "tff").verdict

    assert verdict(undetermined=40, repeated=20) == "undetermined"  # nothing judged (a 64x48 test pattern)
    assert verdict(tff=36, progressive=4, repeated=8) == "telecined"  # 1 in 5
    assert verdict(tff=36, progressive=4, repeated=7) == "interlaced"
    assert verdict(tff=32, progressive=8) == "interlaced"
    assert verdict(tff=31, progressive=9) == "mixed"  # (testsrc2, progressive: 37 of 50 combed)
    assert verdict(tff=20, bff=19, progressive=1) == "mixed"  # combed, but in no one order
    assert verdict(progressive=32, bff=8, undetermined=60) == "progressive"
    assert verdict(progressive=31, bff=9) == "mixed"


WARNINGS = {  # (clip, --deinterlace): what the warning says, and what it must not
    ("tff.mpg", "off"): (["interlaced video, top field first", "combed in 40 of the first 40 frames",
                          "use --deinterlace field"], []),
    ("bff.mkv", "off"): (["interlaced video, bottom field first", "use --deinterlace field"], []),
    ("film.mpg", "off"): (["flagged interlaced, but its frames are progressive", "leave --deinterlace off"],
                          ["use --deinterlace field"]),
    ("film.mpg", "frame"): (["flagged interlaced, but FFmpeg's idet finds them progressive",
                             "--deinterlace frame treats them as interlaced", "use --deinterlace off"], []),
    ("telecined.mpg", "off"): (["telecined film, 3:2 pulldown", "use --deinterlace ivtc"],
                               ["use --deinterlace field"]),
    ("telecined.mpg", "field"): (["telecined film", "use --deinterlace ivtc"], []),
    ("telecined.mpg", "ivtc"): ([], []),  # what it is for: nothing to say
}  # fmt: skip


@pytest.mark.parametrize(("name", "mode"), WARNINGS)
def test_a_run_is_told_what_idet_found(clips: dict[str, Path], name: str, mode: str,
                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    said, unsaid = WARNINGS[name, mode]
    with caplog.at_level(logging.WARNING), open_reader(clips[name], deinterlace=mode):
        pass
    assert len(caplog.records) == (1 if said else 0), caplog.text
    assert all(s in caplog.text for s in said) and not any(s in caplog.text for s in unsaid), caplog.text


@pytest.mark.parametrize("name", ["tff.mpg", "bff.mkv"])
def test_deinterlacing_interlaced_frames_is_not_questioned(clips: dict[str, Path], name: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with caplog.at_level(logging.WARNING), open_reader(clips[name], deinterlace="field"):
        pass
    assert caplog.text == ""


def test_progressive_video_is_not_scanned(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a video flagged interlaced (or a run given --deinterlace) pays for the scan, and not a
    run given --deinterlace ivtc with --field-order: telecine would only be told to use it (0.1-1 s
    saved), and the order is given."""

    def no_scan(*_: object) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr("dove_cli.video_io.reader.scan_fields", no_scan)
    monkeypatch.setattr("dove_cli.video_io.describe.scan_fields", no_scan)
    with caplog.at_level(logging.WARNING), open_reader(demo_clip("005.mp4")):
        pass
    with caplog.at_level(logging.WARNING), open_reader(clips["telecined.mpg"], deinterlace="ivtc", field_order="tff"):
        pass
    video = describe(demo_clip("005.mp4"))["video"]
    assert caplog.text == "" and video["field_order"] is None and video["fields"] is None


def test_info_shows_the_field_order_and_what_idet_found(clips: dict[str, Path]) -> None:
    for name, (_, _, verdict, order) in RECIPES.items():
        video = json.loads(json.dumps(describe(clips[name])))["video"]  # as --json prints it
        counts, repeated = ffmpeg_idet(clips[name])
        assert video["field_order"] == order and video["fields"] == {
            "frames": 40, **counts, "repeated": repeated, "verdict": verdict,
            "order": order if verdict in ("interlaced", "telecined") else None}  # fmt: skip
    rows = dict(described_rows(describe(clips["telecined.mpg"])))
    assert rows["  pixels"] == "yuv420p, 8-bit, interlaced, top field first"
    assert rows["  fields"].startswith("telecined film, 3:2 pulldown (a repeated field in ")
    rows = dict(described_rows(describe(clips["bff.mkv"])))
    assert rows["  pixels"].endswith("interlaced, bottom field first")
    assert rows["  fields"] == "interlaced, bottom field first (combed in 40 of the first 40 frames), by FFmpeg's idet"


# -- the field order: idet's where it clearly disagrees with the flag (--field-order auto), or the user's
ORDER_SIZE = (128, 72)  # testsrc2: the smallest at which idet judges its 8 frames (64x48: none)
# 16 film frames telecined to 20 at 29.97, then 5 of true video (a scroll, fields 1/59.94 s apart, top first): yadif's
TELECINED = (
    "[0:v]telecine=pattern=23,trim=end_frame=20,setpts=PTS-STARTPTS[f];[1:v]scroll=h=0.03,tinterlace=interleave_top,"
    "trim=end_frame=5,setpts=PTS-STARTPTS[v];[f][v]concat=n=2:v=1,setpts=N/(30000/1001)/TB,setfield=bff"
)


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """50p and 23.976p references (testsrc2: every frame distinct) and what ffmpeg weaves of them, top
    field first, flagged rightly or wrongly."""
    folder = tmp_path_factory.mktemp("order")
    src = ("-f", "lavfi", "-i", "testsrc2=s={}x{}:r={}".format(*ORDER_SIZE, "{}"))
    ffmpeg(*src[:-1], src[-1].format(50), "-frames:v", "16", "-c:v", "ffv1", folder / "ref50.mkv")
    ffmpeg(*src[:-1], src[-1].format("24000/1001"), "-frames:v", "16", "-c:v", "ffv1", folder / "ref24.mkv")
    made = {"ref50.mkv": folder / "ref50.mkv", "ref24.mkv": folder / "ref24.mkv"}
    for flag in ("tff", "bff"):  # a .mov of ProRes coded interlaced, as the trial's
        made[flag] = folder / f"top_flagged_{flag}.mov"
        ffmpeg("-i", made["ref50.mkv"], "-vf", f"tinterlace=interleave_top,setfield={flag}", "-c:v", "prores_ks",
               "-flags", "+ildct+ilme", made[flag])  # fmt: skip
    made["telecined"] = folder / "telecined_top_flagged_bff.mkv"
    ffmpeg(*src[:-1], src[-1].format("24000/1001"), *src[:-1], src[-1].format("60000/1001"), "-filter_complex",
           TELECINED, "-c:v", "ffv1", made["telecined"])  # fmt: skip
    return made


def matched(path: Path, reference: Path, **kw: str) -> list[int]:
    """The reference frame (decoded by the ffmpeg binary) each frame dove reads is nearest to."""
    ref = ffmpeg_frames(reference, *ORDER_SIZE).astype(np.float32)
    with open_reader(path, **kw) as reader:
        frames = [f.rgb.astype(np.float32) / (257 if f.rgb.dtype == np.uint16 else 1) for f in reader]
    return [int(np.argmin(np.abs(ref - f).mean(axis=(1, 2, 3)))) for f in frames]


def test_a_wrong_flag_is_overruled_by_idet_and_said(ordered: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    """Top field first flagged bottom first: the flag's order gave frames 1,0,3,2 (judder), silently."""
    with caplog.at_level(logging.WARNING):
        assert matched(ordered["bff"], ordered["ref50.mkv"], deinterlace="field") == list(range(16))
    assert [r.getMessage() for r in caplog.records] == [
        f"{ordered['bff']}: flagged bottom field first, but FFmpeg's idet finds top field first (combed so in 8 of "
        "the first 8 frames): deinterlaced top field first; --field-order bff would follow the flag"]  # fmt: skip
    assert matched(ordered["bff"], ordered["ref50.mkv"], deinterlace="frame") == list(range(0, 16, 2))


def test_a_right_flag_is_followed_without_a_word(ordered: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert matched(ordered["tff"], ordered["ref50.mkv"], deinterlace="field") == list(range(16))
    assert caplog.text == ""


@pytest.mark.parametrize("flag", ["tff", "bff"])
def test_field_order_given_is_taken_over_flag_and_idet(ordered: dict[str, Path], flag: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with caplog.at_level(logging.WARNING):
        swapped = matched(ordered[flag], ordered["ref50.mkv"], deinterlace="field", field_order="bff")
        assert matched(ordered[flag], ordered["ref50.mkv"], deinterlace="field", field_order="tff") == list(range(16))
    assert swapped == [k ^ 1 for k in range(16)] and "idet finds" not in caplog.text


def test_ivtc_takes_the_fields_in_idets_order(ordered: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    """fieldmatch and yadif follow the flag too: a wrong one gave film frames 1,1,3,3,4,5 (repeats, losses),
    and yadif the video after them each frame's second field first. The ffmpeg binary's chain in the
    right order gives the video's."""
    with caplog.at_level(logging.WARNING):
        assert matched(ordered["telecined"], ordered["ref24.mkv"], deinterlace="ivtc")[:16] == list(range(16))
        with open_reader(ordered["telecined"], deinterlace="ivtc") as reader:
            video = np.stack([f.rgb for f in reader][16:]).astype(np.float32)
    assert "flagged bottom field first, but FFmpeg's idet finds top field first" in caplog.text
    for order, near in (("tff", True), ("bff", False)):
        chain = f"fieldmatch=order=tff:combmatch=full,yadif=mode=send_frame:parity={order}:deint=interlaced,decimate"
        ffmpegs = ffmpeg_frames(ordered["telecined"], *ORDER_SIZE, extra=("-vf", chain))[16:]
        assert len(ffmpegs) == len(video) == 4 and (np.abs(ffmpegs - video).mean() < 3) == near
    wrong = matched(ordered["telecined"], ordered["ref24.mkv"], deinterlace="ivtc", field_order="bff")
    assert wrong[:16] != list(range(16))


def test_the_order_rule() -> None:
    """idet's order only where it is clear: interlaced (or telecined), ORDER_FRAMES combed at least (a
    clip shorter than that: all but 2 of its frames), 4 in 5 of the combed frames one way; against the
    flag (none: FFmpeg takes top first). 60 frames scanned unless said."""

    def scan(
        tff: int = 0, bff: int = 0, progressive: int = 0, repeated: int = 0, flag: str | None = "bff", frames: int = 60
    ) -> FieldScan:
        undetermined = frames - tff - bff - progressive
        return FieldScan(frames, tff, bff, progressive, undetermined, repeated, flag)  # type: ignore[arg-type]

    # a short clip (the trial's 5 and 7 frames, all combed top first, flagged bottom first): its own frames
    assert scan(tff=5, frames=5).order == scan(tff=3, frames=5).order == scan(tff=5, frames=7).order == "tff"
    assert scan(tff=2, frames=5).order is None and scan(tff=4, frames=7).order is None
    assert scan(tff=2, frames=4).order is None  # (3 at least)

    assert scan(tff=ORDER_FRAMES).order == "tff" and scan(tff=ORDER_FRAMES - 1).order is None
    assert scan(bff=40).order == "bff" and scan(tff=16, bff=4).order == "tff" and scan(tff=15, bff=4).order is None
    assert scan(tff=30, progressive=10).order is None  # mixed
    assert scan(tff=36, bff=4, repeated=16).order == "tff"  # telecined
    assert scan(tff=20, bff=10, progressive=10, repeated=16).order is None  # (telecined: not 4 in 5 combed so)
    assert scan(tff=40).against_flag and not scan(bff=40).against_flag and not scan(tff=7).against_flag
    assert scan(bff=40, flag=None).against_flag and not scan(tff=40, flag=None).against_flag
    assert parity(scan(tff=40), "auto") == "tff" and parity(scan(tff=7), "auto") == "auto"
    assert parity(None, "auto") == "auto" and parity(scan(tff=40), "bff") == "bff"


def test_without_deinterlace_the_warning_and_info_say_the_flag_is_wrong(
    ordered: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), open_reader(ordered["bff"]):
        pass
    assert caplog.records[0].getMessage() == (
        f"{ordered['bff']}: interlaced video, top field first, though flagged bottom field first (FFmpeg's idet: "
        "combed in 8 of the first 8 frames): fields upscaled together keep their combing; use --deinterlace field "
        "(or frame), which takes idet's order")  # fmt: skip
    rows = dict(described_rows(describe(ordered["bff"])))
    assert rows["  pixels"].endswith("interlaced, bottom field first")
    assert rows["  fields"] == ("interlaced, top field first, though flagged bottom field first (combed in 8 of the "
                                "first 8 frames), by FFmpeg's idet")  # fmt: skip
    assert describe(ordered["bff"])["video"]["fields"]["order"] == "tff"
    assert dict(described_rows(describe(ordered["tff"])))["  fields"].startswith("interlaced, top field first (")


def test_field_order_without_deinterlace_is_refused() -> None:
    with pytest.raises(OptionError, match=r"^--field-order bff is the order --deinterlace takes the fields in: add"):
        check_options(UpscaleOptions(field_order="bff"))
    check_options(UpscaleOptions(field_order="bff", deinterlace="field"))
    with pytest.raises(OptionError, match="--field-order 'top' is not one of: auto, tff, bff"):
        open_reader(Path("x.mp4"), deinterlace="field", field_order="top")


def test_an_upscale_deinterlaces_in_idets_order_scanning_once(
    ordered: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's readers take the order the probe found (`VideoInfo.field_order`): not scanned again."""
    from dove_cli import upscale
    from dove_cli.video_io import reader

    scans: list[Path] = []
    monkeypatch.setattr(reader, "scan_fields", lambda path, *a: scans.append(path) or scan_fields(path, *a))
    out = tmp_path / "50p.mkv"
    upscale(ordered["bff"], out, model="bilinear", scale=1, codec="ffv1", color_fix="none", device="cpu",
            deinterlace="field")  # fmt: skip
    assert matched(out, ordered["ref50.mkv"]) == list(range(16)) and len(scans) == 1
