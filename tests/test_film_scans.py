"""Film-scan sequences: bit depths that differ from frame to frame, DPX and OpenEXR images, linear light,
TIFF compression and the TIFF encoder's size limit. Tiny images written by the ffmpeg binary from numpy
arrays, read back by it and compared with numpy (bilinear at scale 1: the output is the input's pixels)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np

from dove_cli.options import UpscaleOptions
from dove_cli.upscaling import upscale
from dove_cli.video_io.describe import describe
from media import FFMPEG, ffmpeg_frames

SAME = dict(model="bilinear", scale=1, color_fix="none", device="cpu", tile=0, chunk=0)
W, H = 12, 8


def write_image(path: Path, rgb: np.ndarray, *extra: str) -> Path:
    """`rgb` [H, W, 3] written by the ffmpeg binary: uint8 as rgb24, uint16 as rgb48le, float32 as
    gbrpf32le (an EXR's own), each into the format `path`'s extension and `extra` say."""
    if rgb.dtype == np.float32:
        fmt, data = "gbrpf32le", np.stack([rgb[..., 1], rgb[..., 2], rgb[..., 0]]).astype("<f4").tobytes()
    else:
        fmt, data = ("rgb24" if rgb.dtype == np.uint8 else "rgb48le"), rgb.astype(rgb.dtype.newbyteorder("<")).tobytes()
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{rgb.shape[1]}x{rgb.shape[0]}",
           "-i", "-", *extra, str(path)]  # fmt: skip
    subprocess.run(cmd, input=data, check=True)
    return path


def noise(bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << bits, (H, W, 3), dtype=np.uint8 if bits == 8 else np.uint16)


def test_an_8_bit_slate_at_the_head_of_a_16_bit_sequence_keeps_the_16_bits(tmp_path, caplog):
    """Every header is read: the sequence is as deep as its deepest images (an 8-bit first image
    made it all 8-bit), the shallower ones are named in one warning and read scaled up (v * 257)."""
    src = tmp_path / "scan"
    src.mkdir()
    frames = [noise(8, 0), noise(16, 1), noise(16, 2)]
    for i, rgb in enumerate(frames):
        write_image(src / f"shot_{i:04d}.tif", rgb)
    assert describe(src)["images"]["bit_depth"] == 16
    with caplog.at_level(logging.WARNING):
        upscale(src, tmp_path / "out/shot_%04d.tif", UpscaleOptions(**SAME))
    said = [r.getMessage() for r in caplog.records if "fewer bits" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(
        "): shot_0000.tif (8-bit); the sequence is read and written at 16 bits, theirs scaled up"
    )
    want = [frames[0].astype(np.uint16) * 257, frames[1], frames[2]]
    for i, rgb in enumerate(want):
        got = ffmpeg_frames(tmp_path / f"out/shot_{i:04d}.tif", W, H, deep=True)[0]
        assert np.array_equal(got, rgb), i


def test_a_tiff_too_large_for_ffmpeg_is_refused_before_the_run_and_in_a_plan(tmp_path, capsys):
    """FFmpeg's TIFF encoder needs room for twice the raw image, 4 bytes a row and 16 KiB in one int:
    16307x10974 16-bit fails by 12913 bytes (at once, before it reads a pixel: checked here),
    16384x10922 is written (measured: 1.0 GiB, too slow for a test). A plan refuses such an output
    in one line that says what to do."""
    import av
    import pytest

    from dove_cli.cli import main
    from dove_cli.video_io.images import too_large

    cc = av.CodecContext.create("tiff", "w")
    cc.width, cc.height, cc.pix_fmt, cc.options = 16307, 10974, "rgb48le", {"compression_algo": "raw"}
    frame = av.VideoFrame(16307, 10974, "rgb48le")  # (allocated, never written: the encoder refuses first)
    with pytest.raises(av.FFmpegError):
        cc.encode(frame)
    assert too_large("tiff", "rgb48le", 16307, 10974) and too_large("tiff", "rgb48le", 16384, 10922) is None
    assert too_large("tiff", "rgb24", 16384, 10923) is None and too_large("png", "rgb48be", 16384, 12448) is None
    with pytest.raises(av.FFmpegError):  # no frame of it (16384x16000 is one): no image format can write it
        av.VideoFrame(16384, 16256, "gray")
    assert "more pixels than FFmpeg holds in one frame" in (too_large("png", "gray", 16384, 16256) or "")
    assert too_large("png", "gray", 16384, 16000) is None
    four_three = np.random.default_rng(0).integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    src = write_image(tmp_path / "scan.tif", four_three)  # --size 12000p makes it 16000x12000
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(tmp_path / "big.tif"), "--model", "bilinear", "--size", "12000p",
              "--dry-run"])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert (
        "a 16000x12000 16-bit TIFF holds 1.1 GiB of pixels, more than FFmpeg's TIFF encoder writes in one image" in err
    )
    assert "write .png instead" in err and not (tmp_path / "big.tif").exists()


def test_an_image_the_encoder_fails_on_is_one_line_error(tmp_path, monkeypatch):
    """An encoder failure `too_large` does not foresee (here a WebP wider than libwebp takes, with the check
    switched off) is an OutputError naming the output, not FFmpeg's exception."""
    import pytest

    from dove_cli.errors import OutputError
    from dove_cli.video_io import images, open_writer, probe

    monkeypatch.setattr(images, "too_large", lambda *a: None)
    info = probe(write_image(tmp_path / "a.png", noise(8, 0)))
    writer = open_writer(tmp_path / "wide/%04d.webp", info, 16384, 2, overwrite=False)
    with pytest.raises(OutputError, match=r"%04d.webp: FFmpeg's libwebp encoder could not write a 16384x2 bgra image"):
        writer.write(np.zeros((2, 16384, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # (no folder of images begun)
