"""--crop and --size (geometry.py): DVD-like clips with non-square pixels made with the ffmpeg binary;
sizes and pixel aspects read back with PyAV, pixels checked against ffmpeg's own crop and Lanczos
scale (and numpy), refusals as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dove_cli import upscale_frames
from dove_cli.errors import OptionError, OutputError
from dove_cli.geometry import parse_crop, parse_size, target_size
from dove_cli.options import UpscaleOptions, check_options
from dove_cli.resume import work_folder
from dove_cli.threads import DIE_AFTER_ENV
from dove_cli.upscaling import upscale
from dove_cli.video_io import VideoInfo
from media import ffmpeg, make_clip
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
    for name, value in (("crop", "8:0:8:0"), ("size", "1080p")):
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
    proc = subprocess.run([sys.executable, "-m", "dove_cli.cli", "upscale", *argv], capture_output=True, text=True,
                          env={**os.environ, DIE_AFTER_ENV: "40"}, timeout=300)  # fmt: skip
    assert proc.returncode == 1 and work_folder(out).is_dir() and not out.exists()
    with pytest.raises(OutputError, match="the saved run had size='120p', this call has size='240p'"):
        upscale(src, out, **{**geometry, "size": "240p"}, resume=True)
    r = upscale(src, out, **geometry, resume=True)
    assert r.resumed_from > 0 and framemd5(out) == framemd5(ref)
    w, h, container, stream = video_geometry(out)  # 92x60 at 32:27 is shown 1.817:1: 218.1 -> 218
    assert (w, h) == (218, 120) and container in (None, 1) and stream in (None, 1)
