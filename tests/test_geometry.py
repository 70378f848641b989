"""--crop and --size (geometry.py): DVD-like clips with non-square pixels made with the ffmpeg binary;
sizes and pixel aspects read back with PyAV, pixels checked against ffmpeg's own crop and Lanczos
scale (and numpy), refusals as one line."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dove_cli import upscale_frames
from dove_cli.errors import OptionError, OutputError
from dove_cli.geometry import parse_crop, parse_size, planned_output_size, target_size
from dove_cli.options import UpscaleOptions, check_options
from dove_cli.resume import work_folder
from dove_cli.upscaling import upscale
from dove_cli.video_io import VideoInfo, bars, open_reader
from media import DIE_AFTER, ffmpeg, make_clip
from test_cli import run
from test_resume import framemd5

BILINEAR = dict(model="bilinear", device="cpu")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("geometry")


@pytest.fixture(scope="module")
def dvd_rgb(media) -> Path:
    """NTSC 16:9 DVD geometry (720x480, pixel aspect 32:27) in lossless RGB: pixels compare exactly."""
    return make_clip(media / "dvd_rgb.mkv", size="720x480", frames=2, codec="ffv1", pix_fmt="bgr0", vf="setsar=32/27")


@pytest.fixture(scope="module")
def dvd(media) -> Path:
    """The same as a DVD rip is: H.264 4:2:0, the pixel aspect in the stream (VUI) and the container."""
    return make_clip(media / "dvd.mkv", size="720x480", frames=2, vf="setsar=32/27")


def video_geometry(path: Path) -> tuple[int, int, Fraction | None, Fraction | None]:
    """(width, height, the container's pixel aspect, the decoded stream's), as PyAV reads them."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frame = next(c.decode(s))
        return frame.width, frame.height, s.sample_aspect_ratio, s.codec_context.sample_aspect_ratio


def rgb_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def info(width: int, height: int, sar: Fraction | None = None) -> VideoInfo:
    return VideoInfo(path=Path("in.vob"), width=width, height=height, num_frames=1, fps=Fraction(25),
                     time_base=Fraction(1, 25), sample_aspect_ratio=sar)  # fmt: skip


def test_options_are_read_once_and_kept_in_one_spelling():
    """The fingerprint of a resume and the manifest keep the options as check_options spells them."""
    opts = check_options(UpscaleOptions(crop=" 08:0:8:00", size="4K"))
    assert (opts.crop, opts.size) == ("8:0:8:0", "2160p")
    assert check_options(UpscaleOptions(crop=" Auto")).crop == "auto"
    assert check_options(UpscaleOptions(size="1920X1080")).size == "1920x1080"
    assert parse_crop("1:2:3:4") == parse_crop("1:2:3:4 ") and str(parse_size("1440p")) == "1440p"
    for bad, said in [
        ("8:0:8", "must be LEFT:TOP:RIGHT:BOTTOM"),
        ("-2:0:0:0", "LEFT:TOP"),
        ("a:b:c:d", "e.g. 8:0:8:0"),
    ]:
        with pytest.raises(OptionError, match=f"--crop '{bad}' {said}" if said.startswith("must") else said):
            check_options(UpscaleOptions(crop=bad))
    for bad in ("1081p", "1920x1081", "8p", "hd", "1080", "20000p"):
        with pytest.raises(OptionError, match="--size"):
            check_options(UpscaleOptions(size=bad))
    for name, value in (("crop", "8:0:8:0"), ("crop", "auto"), ("size", "1080p")):
        with pytest.raises(OptionError, match=f"--parity reproduces the authors' script.*drop --{name} {value}"):
            check_options(UpscaleOptions(parity=True, **{name: value}))


@pytest.mark.parametrize(
    "width, height, sar, size, expected",
    [
        (720, 480, Fraction(32, 27), "1080p", (1080, 1920)),  # NTSC 16:9: 853.3x480 shown
        (720, 480, Fraction(32, 27), "2160p", (2160, 3840)),
        (720, 480, Fraction(8, 9), "1080p", (1080, 1440)),  # NTSC 4:3
        (720, 576, Fraction(64, 45), "4k", (2160, 3840)),  # PAL 16:9
        (720, 576, Fraction(16, 15), "1080p", (1080, 1440)),  # PAL 4:3
        (704, 480, Fraction(32, 27), "1080p", (1080, 1878)),  # 8 px cut each side: 1877.3 -> nearest even
        (720, 480, None, "1080p", (1080, 1620)),  # square pixels
        (720, 480, Fraction(32, 27), "1920x1080", (1080, 1920)),
        (720, 480, Fraction(8, 9), "1440x1080", (1080, 1440)),
        (704, 480, Fraction(32, 27), "1890x1080", (1080, 1890)),  # 0.7% wider than 1877.3: within 1%
    ],
)
def test_target_size_takes_its_shape_from_the_display_aspect(width, height, sar, size, expected):
    opts = check_options(UpscaleOptions(size=size))
    assert target_size(opts, info(width, height, sar)) == expected


@pytest.mark.parametrize(
    "size, compare, rotation, expected",
    [
        (None, False, 0, (48 * 4, 64 * 4)),  # the model's: x4
        ("96p", False, 0, (96, 128)),  # --size's: 96 high at the picture's 4:3
        (None, True, 0, (48 * 4, 2 * 64 * 4)),  # --compare: the input's upscale beside the output
        (None, True, 90, (2 * 48 * 4, 64 * 4)),  # under a quarter turn: stacked in the file, side by side as shown
        ("96p", True, 0, (96, 2 * 128)),
    ],
)
def test_the_planned_output_size_is_size_s_or_the_model_s_and_compare_doubles_it(size, compare, rotation, expected):
    """What the run opens its writer at and what --eval checks GT against: one sum (64x48 in)."""
    opts = check_options(UpscaleOptions(size=size, compare=compare))
    assert planned_output_size(replace(info(64, 48), rotation=rotation), opts) == expected


def test_a_size_of_another_shape_is_refused_naming_the_one_that_fits():
    opts = check_options(UpscaleOptions(size="1920x1080", crop="8:0:8:0"))
    with pytest.raises(OptionError) as e:
        target_size(opts, info(704, 480, Fraction(32, 27)))  # 1.778 against 1.738: 2.3% off
    assert str(e.value) == ("in.vob: --size 1920x1080 is 1.778:1 but the picture (704x480 at pixel aspect 32:27 after "
                            "--crop) is shown at 1.738:1; --size 1080p makes it 1878x1080 (dove does not letterbox)")  # fmt: skip
    with pytest.raises(OptionError, match="--size 1080p makes it 1878x1080"):
        target_size(check_options(UpscaleOptions(size="1900x1080")), info(704, 480, Fraction(32, 27)))  # 1.2% off


def test_size_writes_square_pixels_and_crop_keeps_the_pixel_aspect(dvd, tmp_path):
    """A 16:9 NTSC DVD at x4 is 2880x1920 shown 3413x1920: with --size 1080p it is 1920x1080 of square
    pixels, in the container and in the H.264 stream alike; a crop alone keeps 32:27."""
    assert video_geometry(dvd) == (720, 480, Fraction(32, 27), Fraction(32, 27))
    upscale(dvd, tmp_path / "sized.mkv", **BILINEAR, size="1080p")
    w, h, container, stream = video_geometry(tmp_path / "sized.mkv")
    assert (w, h) == (1920, 1080) and container in (None, 1) and stream in (None, 1)
    upscale(dvd, tmp_path / "cropped.mp4", **BILINEAR, crop="8:0:8:0")
    assert video_geometry(tmp_path / "cropped.mp4") == (2816, 1920, Fraction(32, 27), Fraction(32, 27))


def test_crop_and_size_are_ffmpegs_crop_and_lanczos_scale(dvd_rgb, tmp_path):
    """--crop 8:2:8:6 --size 1080p is the model's x4 of ffmpeg's `crop` of the input, then ffmpeg's
    `scale=...:flags=lanczos`, pixel for pixel (RGB in and out: no YUV rounding in the way)."""
    ours = tmp_path / "ours.mkv"
    r = upscale(dvd_rgb, ours, **BILINEAR, codec="ffv1", crop="8:2:8:6", size="1080p")
    assert r.plan.input_size == (472, 704) and r.plan.output_size == (1888, 2816) and r.plan.size == (1080, 1910)
    cropped = tmp_path / "cropped.mkv"
    ffmpeg("-i", dvd_rgb, "-vf", "crop=704:472:8:2", "-c:v", "ffv1", cropped)
    upscale(cropped, tmp_path / "x4.mkv", **BILINEAR, codec="ffv1")
    ffmpeg("-i", tmp_path / "x4.mkv", "-vf", "scale=1910:1080:flags=lanczos", "-c:v", "ffv1", tmp_path / "ref.mkv")
    got, want = rgb_frames(ours), rgb_frames(tmp_path / "ref.mkv")
    assert len(got) == len(want) == 2 and got[0].shape == (1080, 1910, 3)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    # At x1 (bilinear gives its input back) the crop is numpy's slice of the decoded input.
    upscale(dvd_rgb, tmp_path / "x1.mkv", **BILINEAR, scale=1, codec="ffv1", crop="8:2:8:6")
    sliced = [f[2:-6, 8:-8] for f in rgb_frames(dvd_rgb)]
    assert all(np.array_equal(a, b) for a, b in zip(rgb_frames(tmp_path / "x1.mkv"), sliced, strict=True))
    # --compare: the input's upscale beside it, resampled to the same size (bilinear: the same picture)
    upscale(dvd_rgb, tmp_path / "cmp.mkv", **BILINEAR, codec="ffv1", crop="8:2:8:6", size="1080p", compare=True)
    sides = rgb_frames(tmp_path / "cmp.mkv")
    assert sides[0].shape == (1080, 2 * 1910, 3)
    assert all(
        np.array_equal(s[:, 1910:], g) and np.array_equal(s[:, :1910], g) for s, g in zip(sides, got, strict=True)
    )


def test_dry_run_and_manifest_say_the_crop_and_the_size(dvd, tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the table's rows on one line each
    manifest = tmp_path / "m.json"
    code, out, err = run(["upscale", str(dvd), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear", "--dry-run",
                          "--crop", "8:0:8:0", "--size", "1080p", "--manifest", str(manifest)], capsys)  # fmt: skip
    assert code == 0, err
    assert "720x480 cropped to 704x480 (--crop 8:0:8:0)" in out
    assert "1878x1080, resampled from the model's 2816x1920 (Lanczos)" in out and "pixel aspect" not in out
    assert "larger than the model" not in caplog.text
    plan = json.loads(manifest.read_text())["plan"]
    assert (plan["crop"], plan["size"], plan["output_size"]) == (
        "8:0:8:0",
        {"width": 1878, "height": 1080},
        {"width": 2816, "height": 1920},
    )
    code, out, err = run(["upscale", str(dvd), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear", "--dry-run",
                          "--crop", "8:0:8:0"], capsys)  # fmt: skip
    assert "2816x1920, shown 3337x1920 (pixel aspect 32:27)" in out  # the crop keeps the pixel aspect
    code, out, err = run(["upscale", str(dvd), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear", "--dry-run",
                          "--size", "2160p"], capsys)  # fmt: skip
    assert code == 0 and "3840x2160, resampled from the model's 2880x1920" in out
    assert ("--size 3840x2160 is larger than the model's 2880x1920 output (x4): resampled up past it (x1.12), "
            "which adds no detail") in caplog.text  # fmt: skip


@pytest.mark.parametrize(
    "args, said",
    [
        (["--crop", "400:0:400:0"], "--crop 400:0:400:0 leaves 0x480 of its 720x480 picture (at least 8 px a side)"),
        (["--crop", "0:0:0:474"], "--crop 0:0:0:474 leaves 720x6 of its 720x480 picture (at least 8 px a side)"),
        (["--crop", "8:0:8:0", "--size", "1920x1080"], "--size 1080p makes it 1878x1080 (dove does not letterbox)"),
        (["--crop", "8:0:8"], "--crop '8:0:8' must be LEFT:TOP:RIGHT:BOTTOM in input pixels, e.g. 8:0:8:0"),
        (["--size", "1080p", "--parity"], "--parity reproduces the authors' script, which neither crops nor"),
    ],
)
def test_refusals_are_one_line_before_any_work(dvd, tmp_path, capsys, args, said):
    out = tmp_path / "o.mkv"
    code, _, err = run(["upscale", str(dvd), "-o", str(out), "--model", "bilinear", *args], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and said in " ".join(err.split()), err
    assert not out.exists()


def test_eval_gt_is_checked_against_the_size(dvd, tmp_path, capsys):
    """--eval GT: the output to be is --size's, not the model's."""
    gt = make_clip(tmp_path / "gt.mkv", size="2880x1920", frames=2)
    code, _, err = run(["upscale", str(dvd), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear", "--size", "1080p",
                        "--eval", str(gt)], capsys)  # fmt: skip
    assert code == 2 and "1920x1080, but its GT" in err and "2880x1920" in err
    assert not (tmp_path / "o.mkv").exists()


def test_eval_gt_is_checked_against_the_crop_found(tmp_path, capsys):
    """--eval GT with --crop auto: the output to be is the picture less the bars found, x4."""
    src = make_clip(tmp_path / "in.mkv", frames=2, codec="ffv1", vf="scale=64:32,pad=64:48:0:8:black")
    gt = make_clip(tmp_path / "gt.mkv", size="256x192", frames=2)  # the whole frame's x4: not what is made
    code, _, err = run(["upscale", str(src), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear", "--crop", "auto",
                        "--eval", str(gt)], capsys)  # fmt: skip
    assert code == 2 and "256x128, but its GT" in err and "256x192" in err
    assert not (tmp_path / "o.mkv").exists()


def test_frames_in_memory_take_crop_and_size():
    frames = (np.random.default_rng(1).random((2, 48, 64, 3)) * 255).astype(np.uint8)
    out = upscale_frames(frames, **BILINEAR, scale=1, crop="2:4:6:8")
    assert np.array_equal(out, frames[:, 4:-8, 2:-6])
    sized = upscale_frames(frames, **BILINEAR, scale=2, size="144p", color_fix="none")
    assert sized.shape == (2, 144, 192, 3)
    deep = upscale_frames(frames.astype(np.uint16) * 257, **BILINEAR, scale=2, size="144p", color_fix="none")
    assert deep.dtype == np.uint16 and np.abs(deep / 257 - sized).max() < 1.5  # 16 bits: the same picture


def test_png_outputs_of_a_size_are_square_and_not_warned_of(tmp_path, caplog):
    """Images keep no pixel aspect, which is said; with --size there is none to lose."""
    src = make_clip(tmp_path / "in.mkv", size="96x64", frames=2, vf="setsar=32/27")
    upscale(src, tmp_path / "a" / "%02d.png", **BILINEAR, scale=2)
    assert "pixel aspect" in caplog.text
    caplog.clear()
    upscale(src, tmp_path / "b" / "%02d.png", **BILINEAR, scale=2, size="144p")
    assert "pixel aspect" not in caplog.text
    with av.open(str(tmp_path / "b" / "01.png")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (256, 144)  # 96 * 32/27 / 64 * 144


def test_a_killed_run_resumes_to_the_same_file_and_only_with_the_same_geometry(tmp_path):
    """Segments are written resampled and joined with square pixels; the crop and the size are
    fingerprinted: a resume with another --size is refused."""
    src = make_clip(tmp_path / "in.mp4", size="96x64", rate="25", frames=60, vf="setsar=32/27")
    geometry = dict(**BILINEAR, scale=2, chunk=9, chunk_overlap=2, tile=0, crop="2:2:2:2", size="120p")
    ref = tmp_path / "ref.mp4"
    upscale(src, ref, **geometry)
    out = tmp_path / "out.mp4"
    argv = [str(src), "-o", str(out), "--model", "bilinear", "--device", "cpu", "--scale", "2", "--chunk", "9",
            "--chunk-overlap", "2", "--tile", "0", "--crop", "2:2:2:2", "--size", "120p", "--quiet"]  # fmt: skip
    proc = subprocess.run([sys.executable, str(DIE_AFTER), "40", "upscale", *argv], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 1 and work_folder(out).is_dir() and not out.exists()
    with pytest.raises(OutputError, match="the saved run had size='120p', this call has size='240p'"):
        upscale(src, out, **{**geometry, "size": "240p"}, resume=True)
    r = upscale(src, out, **geometry, resume=True)
    assert r.resumed_from > 0 and framemd5(out) == framemd5(ref)
    w, h, container, stream = video_geometry(out)  # 92x60 at 32:27 is shown 1.817:1: 218.1 -> 218
    assert (w, h) == (218, 120) and container in (None, 1) and stream in (None, 1)


# ------------------------------------------------------------------------------------------ --crop auto
# Clips of testsrc2 padded with black bars (`pad=`), so the bars are known; the ffmpeg binary's own
# cropdetect (its running box over every frame, x1 x2 y1 y2) is the reference for the rule.
DARK = "lutyuv=y=16+(val-16)/5"  # a dark scene: many of its lines at or below cropdetect's limit


def cropdetect(path: Path, width: int, height: int, *vf: str, reset: bool = False) -> list[tuple[int, ...]]:
    """(left, top, right, bottom) after each frame, by the ffmpeg binary's cropdetect: the box of
    every frame so far (reset: of that frame alone)."""
    graph = ",".join([*vf, f"cropdetect=round=2:skip=0:reset={int(reset)}"])
    err = ffmpeg("-i", path, "-vf", graph, "-f", "null", "-").stderr
    boxes = [tuple(map(int, m)) for m in re.findall(r"x1:(-?\d+) x2:(-?\d+) y1:(-?\d+) y2:(-?\d+) ", err)]
    return [(x1, y1, width - 1 - x2, height - 1 - y2) for x1, x2, y1, y2 in boxes]


def found(path: Path) -> tuple[int, int, int, int]:
    """The black bars video_io.bars finds, before rounding (left, top, right, bottom)."""
    with open_reader(path, warn=False) as reader:
        b = bars.find_bars(reader.info)
    return b.left, b.top, b.right, b.bottom


@pytest.mark.parametrize(
    "name, codec, pix_fmt, dim",
    [
        ("soft.mkv", "ffv1", "yuv420p", "lutyuv=y=16+(val-16)/2,"),
        ("soft10.mkv", "ffv1", "yuv420p10le", "lutyuv=y=16+(val-16)/2,"),
        ("soft.png", "png", "rgb24", ""),
    ],
)
def test_auto_crop_lines_are_cropdetects(tmp_path, name, codec, pix_fmt, dim):
    """Blurred bar edges (and a dim picture), where the limit decides each line: the same box as
    FFmpeg's cropdetect, in 8 bits (limit 24), 10 bits (96) and RGB (the mean of R, G and B)."""
    path = make_clip(tmp_path / name, size="44x30", frames=1 if codec == "png" else 3, codec=codec, pix_fmt=pix_fmt,
                     vf=f"{dim}pad=64:48:7:5:black,gblur=sigma=2")  # fmt: skip
    ref = cropdetect(path, 64, 48, *(["format=rgb24"] if codec == "png" else []))[-1]
    assert found(path) == ref and ref != (7, 5, 13, 13)  # (the blur moved the edges off the pad: the rule decides)


def test_auto_crop_keeps_what_any_frame_shows(tmp_path, caplog):
    """A fade from black, and a dark scene at the end: its frames alone would cut picture (cropdetect
    on each by itself), but the crop keeps every sampled frame's picture, and a frame black all over
    says nothing; a short clip is sampled whole."""
    caplog.set_level(logging.INFO, "dove_cli")
    vf = f"fade=in:0:3,{DARK}:enable=gte(n\\,18),pad=64:48:6:4:black"
    path = make_clip(tmp_path / "dark.mkv", size="48x32", frames=30, codec="ffv1", vf=vf)
    alone = cropdetect(path, 64, 48, reset=True)
    assert alone[0] == (63, 47, 63, 47) and all(b[0] > 6 for b in alone[18:])  # black: no line; dark: columns lost
    assert cropdetect(path, 64, 48)[-1] == found(path) == (6, 4, 10, 12)  # the pad's
    plan = upscale(path, tmp_path / "o.mkv", **BILINEAR, crop="auto", dry_run=True)
    assert plan.crop == "6:4:10:12" and plan.input_size == (32, 48)
    assert ("--crop auto: 6:4:10:12 (letterbox and pillarbox, from 29 frames; 1 black all over, which say "
            "nothing)") in caplog.text  # fmt: skip


@pytest.mark.parametrize("gop, whole", [(25, 0), (1000, bars.WHOLE)])
def test_auto_crop_samples_a_long_video_at_ten_places(tmp_path, monkeypatch, gop, whole):
    """A video of more than 40 frames is sampled at 10 places over its length (each sought, as a
    long video is, or decoded to from its start, as a small one is: this one has one key frame,
    where every seek lands): its first half (taller bars) and its dark second half would each cut
    picture alone; the crop is cropdetect's over every frame."""
    monkeypatch.setattr(bars, "WHOLE", whole)
    vf = f"{DARK}:enable=gte(n\\,300),pad=64:48:8:6:black,drawbox=w=64:h=12:color=black:t=fill:enable=lt(n\\,300)"
    path = make_clip(tmp_path / "long.mp4", size="48x32", rate="25", frames=600, vf=vf, extra=("-g", str(gop)))
    with open_reader(path, warn=False) as reader:
        b = bars.find_bars(reader.info)
    assert (b.frames, b.places, b.black) == (40, 10, 0)
    assert (b.left, b.top, b.right, b.bottom) == cropdetect(path, 64, 48)[-1] == (8, 6, 8, 10)
    first, second = (cropdetect(path, 64, 48, trim)[-1] for trim in ("trim=end_frame=300", "trim=start_frame=300"))
    assert first[1] == 12 and second[0] > 8


@pytest.mark.parametrize("frames", [42, 50])
def test_auto_crop_takes_four_frames_at_each_place_of_a_short_clip(tmp_path, frames):
    """Just past 40 frames, the last place (at 95%) had 2 frames after it: 38 sampled, not 40."""
    path = make_clip(tmp_path / "c.mkv", size="48x32", rate="25", frames=frames, codec="ffv1")
    with open_reader(path, warn=False) as reader:
        b = bars.find_bars(reader.info)
    assert (b.frames, b.places) == (40, 10)


def test_auto_crop_rounds_to_even_and_turns_with_the_picture(tmp_path):
    """Bars of odd widths (an RGB clip: pad puts them anywhere) are cut to the even number below;
    with --rotate apply the crop is of the turned frames, where ffmpeg's autorotate puts the bars."""
    src = make_clip(tmp_path / "odd.mkv", size="48x32", frames=2, codec="ffv1", pix_fmt="bgr0",
                    vf="pad=64:48:7:5:black")  # fmt: skip
    assert found(src) == (7, 5, 9, 11)
    plan = upscale(src, tmp_path / "o.mkv", **BILINEAR, crop="auto", dry_run=True)
    assert plan.crop == "6:4:8:10"  # each side rounded down to even: a line of bar kept, none of picture
    base = make_clip(tmp_path / "base.mp4", size="48x32", frames=2, vf="pad=64:48:6:4:black")
    for mirror in ([], ["-display_hflip:v"]):
        turned = tmp_path / f"turned{len(mirror)}.mp4"
        ffmpeg("-display_rotation:v", "90", *mirror, "-i", base, "-c", "copy", turned)
        left, top, right, bottom = cropdetect(turned, 48, 64)[-1]  # (ffmpeg turns it upright)
        plan = upscale(turned, tmp_path / "t.mkv", **BILINEAR, crop="auto", rotate="apply", dry_run=True)
        assert plan.crop == f"{left}:{top}:{right}:{bottom}" and plan.input_size == (
            64 - top - bottom,
            48 - left - right,
        )
    assert plan.crop != upscale(turned, tmp_path / "t.mkv", **BILINEAR, crop="auto", dry_run=True).crop  # kept


@pytest.mark.parametrize(
    "vf, said",
    [
        ("", "--crop auto: no black bars (from 3 frames); nothing cut"),
        ("lutyuv=y=16", "--crop auto: all 3 frames sampled are black; nothing cut"),
        ("scale=16:16,pad=64:48:24:16:black", "--crop auto: the picture found is only 16x16 of the frame's 64x48"),
    ],
)
def test_auto_crop_cuts_nothing_without_bars(tmp_path, caplog, vf, said):
    """No bars, a black video, a small picture on black (more likely a dark scene than bars): no crop."""
    caplog.set_level(logging.INFO, "dove_cli")
    path = make_clip(tmp_path / "in.mkv", frames=3, codec="ffv1", vf=vf)
    plan = upscale(path, tmp_path / "o.mkv", **BILINEAR, crop="auto", dry_run=True)
    assert plan.crop is None and plan.input_size == (48, 64) and said in caplog.text


def test_dry_run_and_manifest_say_the_crop_found(tmp_path, capsys, caplog, monkeypatch):
    """--dry-run says the crop found (one line) and plans with it; the manifest holds the L:T:R:B;
    a folder run finds each file's own, and says it once."""
    monkeypatch.setenv("COLUMNS", "200")  # the table's rows on one line each
    (tmp_path / "in").mkdir()
    src = make_clip(tmp_path / "in" / "a.mkv", frames=2, codec="ffv1", vf="scale=64:32,pad=64:48:0:8:black")
    make_clip(tmp_path / "in" / "b.mkv", frames=2, codec="ffv1", vf="scale=48:48,pad=64:48:8:0:black")
    manifest = tmp_path / "m.json"
    code, out, err = run(["upscale", str(src), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear", "--dry-run",
                          "--crop", "auto", "--manifest", str(manifest)], capsys)  # fmt: skip
    assert code == 0, err
    assert "64x48 cropped to 64x32 (--crop 0:8:0:8)" in out
    assert caplog.text.count("--crop auto: ") == 1 and "--crop auto: 0:8:0:8 (letterbox, from 2 frames)" in caplog.text
    doc = json.loads(manifest.read_text())
    assert doc["plan"]["crop"] == doc["options"]["crop"] == "0:8:0:8" and doc["plan"]["input_size"] == {
        "width": 64,
        "height": 32,
    }
    caplog.clear()
    code, out, err = run(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bilinear",
                          "--scale", "1", "--crop", "auto"], capsys)  # fmt: skip
    assert code == 0 and caplog.text.count("--crop auto: 0:8:0:8 (letterbox") == 1  # (checked before the model too)
    assert caplog.text.count("--crop auto: 8:0:8:0 (pillarbox") == 1
    for name, found in (("a.mkv", "0:8:0:8"), ("b.mkv", "8:0:8:0")):  # each line names its file
        assert f"{tmp_path / 'in' / name}: --crop auto: {found} (" in caplog.text, caplog.text
    assert [video_geometry(tmp_path / "out" / n)[:2] for n in ("a.mkv", "b.mkv")] == [(64, 32), (48, 48)]


def test_a_resumed_auto_crop_cuts_what_the_interrupted_run_cut(tmp_path):
    """The crop found is what the run's fingerprint holds: a resume with --crop auto (found again,
    the same) or with that crop given continues to the same file; another crop is refused."""
    from test_resume import _FailAfter

    src = make_clip(tmp_path / "in.mp4", size="48x32", rate="25", frames=40, vf="pad=64:48:8:6:black")
    opts = dict(**BILINEAR, scale=1, chunk=9, chunk_overlap=2, tile=0, crop="auto")
    ref = tmp_path / "ref.mp4"
    assert upscale(src, ref, **opts).plan.crop == "8:6:8:10"
    for again in ("auto", "8:6:8:10"):
        out = tmp_path / f"out-{again}.mp4"
        with pytest.raises(RuntimeError, match="simulated crash"):
            upscale(src, out, **opts, restorer=_FailAfter(4))
        with pytest.raises(OutputError, match="the saved run had crop='8:6:8:10', this call has crop='8:6:8:8'"):
            upscale(src, out, **{**opts, "crop": "8:6:8:8"}, resume=True)
        r = upscale(src, out, **{**opts, "crop": again}, resume=True)
        assert r.resumed_from > 0 and r.plan.crop == "8:6:8:10" and framemd5(out) == framemd5(ref)


def test_frames_in_memory_take_auto_crop(caplog):
    """upscale_frames(crop="auto"): the bars of the frames themselves (said), a dim line (20 of 255)
    on black's side of the limit whether the frames are uint8 or floats (taken at 16 bits: 6168)."""
    caplog.set_level(logging.INFO, "dove_cli")
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    frames[:, 6:40, 4:58] = (np.random.default_rng(2).random((3, 34, 54, 3)) * 200 + 55).astype(np.uint8)
    frames[:, 6:40, 3] = 20
    out = upscale_frames(frames, **BILINEAR, scale=1, crop="auto")
    assert np.array_equal(out, frames[:, 6:40, 4:58])
    assert "--crop auto: 4:6:6:8 (letterbox and pillarbox, from 3 frames)" in caplog.text
    assert upscale_frames(frames / 255.0, **BILINEAR, scale=1, crop="auto", color_fix="none").shape == (3, 34, 54, 3)
