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
