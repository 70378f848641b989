"""Exact scaling of YUV deeper than 8 bits (video_io/deep.py): against the ffmpeg binary's zscale
and the BT.709/BT.2020 equations written out here."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dove_cli.video_io import open_reader, open_writer, probe
from dove_cli.video_io.deep import exact_rgb48
from media import FFMPEG, ffmpeg

W, H = 64, 48
KR_KB = {"bt709": (0.2126, 0.0722), "bt2020nc": (0.2627, 0.0593)}


def _codes(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One 4:4:4 frame [H, W] of Y, U, V codes: a grey ramp over the whole code range (sub-black to
    super-white, limited range's and full range's ends), and flat colour patches well inside the gamut."""
    s = 1 << (bits - 10)
    y = np.tile(np.linspace(0, (1 << bits) - 1, W).round().astype(np.uint16), (H, 1))
    y[:, -4:] = (np.array([64, 500, 940, 1023]) * s)[None]
    u = np.full((H, W), 512 * s, np.uint16)
    v = u.copy()
    y[24:, :] = (np.arange(W) // 8 * 60 + 300)[None] * s  # patches of 8 x 24
    u[24:, :] = (np.arange(W) // 8 * 23 + 420)[None] * s
    v[24:, :] = (600 - np.arange(W) // 8 * 21)[None] * s
    return y, u, v


def _clip(folder: Path, bits: int, rng: str, matrix: str) -> tuple[Path, np.ndarray]:
    """That frame (twice) in lossless FFV1 4:4:4, tagged `rng` and `matrix`; and its codes [3, H, W]."""
    planes = np.stack(_codes(bits))
    raw, path = folder / "src.yuv", folder / f"src_{bits}_{rng}_{matrix}.mkv"
    np.concatenate([planes, planes]).astype("<u2").tofile(raw)
    fmt = f"yuv444p{bits}le"
    ffmpeg(
        "-f",
        "rawvideo",
        "-pix_fmt",
        fmt,
        "-s",
        f"{W}x{H}",
        "-r",
        "24",
        "-i",
        raw,
        "-vf",
        f"setparams=range={rng}:colorspace={matrix}:color_primaries={matrix[:6]}",
        "-color_range",
        rng,
        "-c:v",
        "ffv1",
        path,
    )  # fmt: skip (without -color_range, FFmpeg 9 squeezes pc into tv range)
    return path, planes


def _decoded(path: Path, pix_fmt: str, extra: tuple[str, ...] = ()) -> np.ndarray:
    """The first frame as the ffmpeg binary decodes it, planar [planes, H, W] (16-bit little-endian)."""
    out = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-frames:v", "1", *extra, "-pix_fmt", pix_fmt,
                          "-f", "rawvideo", "-"], capture_output=True, check=True).stdout  # fmt: skip
    return np.frombuffer(out, "<u2").reshape(-1, H, W).astype(int)


def _rgb_of(y: np.ndarray, u: np.ndarray, v: np.ndarray, bits: int, full: bool, matrix: str) -> np.ndarray:
    """BT.709/BT.2020 YUV codes to R'G'B' in 0..1 [..., 3] (ITU-R BT.2100's full and narrow range)."""
    kr, kb = KR_KB[matrix]
    if full:
        n = (1 << bits) - 1
        yy, cb, cr = y / n, (u - (1 << (bits - 1))) / n, (v - (1 << (bits - 1))) / n
    else:
        s = 1 << (bits - 8)
        yy, cb, cr = (y - 16 * s) / (219 * s), (u - 128 * s) / (224 * s), (v - 128 * s) / (224 * s)
    r, b = yy + 2 * (1 - kr) * cr, yy + 2 * (1 - kb) * cb
    return np.clip(np.stack([r, (yy - kr * r - kb * b) / (1 - kr - kb), b], -1), 0, 1)


def test_exact_rgb48_divides_the_gain_out_rounded_and_clipped() -> None:
    """swscale's full-range 10-bit white, 65472 at a gain of 65472/65535, becomes 65535; the codes
    between go to the nearest code (1000.96 -> 1001, not 1000), a super-white past 65535 clips."""
    codes = np.array([0, 1, 1000, 32768, 65472, 65500, 65535], np.uint16)
    want = np.array([min(65535, round(Fraction(int(c)) * Fraction(65535, 65472))) for c in codes])
    got = exact_rgb48(np.repeat(codes[None, :, None], 3, axis=-1), 65472 / 65535)
    assert got.dtype == np.uint16
    assert np.array_equal(got, np.repeat(want[None, :, None], 3, axis=-1)), got[0, :, 0]


@pytest.mark.parametrize(("bits", "rng", "matrix"), [(10, "pc", "bt2020nc"), (10, "tv", "bt709"), (12, "pc", "bt709")])
def test_deep_yuv_reads_as_zscale_and_writes_back_exactly(tmp_path: Path, bits: int, rng: str, matrix: str) -> None:
    """10/12-bit YUV reads to 16-bit RGB as zscale converts it (white 65535: swscale alone gave 65472 at
    full range, 65283 at limited), and a lossless write of those frames gives back every code (full
    range came back 0.3% brighter, neutral chroma 512 as 511); limited range's sub-blacks and super-whites clip at
    black and white (64 and 940 in 10 bits), which RGB of 0..1 cannot hold beyond."""
    src, codes = _clip(tmp_path, bits, rng, matrix)
    with open_reader(src) as reader:
        frames = list(reader)
    rgb = frames[0].rgb.astype(int)
    zmatrix = {"bt709": "709", "bt2020nc": "2020_ncl"}[matrix]
    zrange = "full" if rng == "pc" else "limited"
    gbr = _decoded(
        src, "gbrp16le", ("-vf", f"zscale=matrixin={zmatrix}:rangein={zrange}:matrix=gbr:range=full,format=gbrp16le")
    )
    assert np.abs(rgb - gbr[[2, 0, 1]].transpose(1, 2, 0)).max() <= 2  # of 65535
    exact = _rgb_of(*codes.astype(float), bits, rng == "pc", matrix) * 65535
    assert np.abs(rgb - exact).max() < 1  # rounded, not cut: a cut was up to 1.5 off
    assert abs((rgb - exact).mean()) < 0.25  # a cut is half a code dark on average

    out = tmp_path / "back.mkv"
    with open_writer(out, reader.info, W, H, codec="ffv1", pix_fmt=f"yuv444p{bits}le") as writer:
        for frame in frames:
            writer.write(frame.rgb, frame.pts)
    back = _decoded(out, f"yuv444p{bits}le")
    want = codes.astype(int)
    if rng == "tv":
        s = 1 << (bits - 8)
        want[0, :24] = np.clip(want[0, :24], 16 * s, 235 * s)
    assert np.array_equal(back, want), np.argwhere(back != want)[:5]


@pytest.mark.parametrize(
    ("pix_fmt", "rng", "depth"),
    [("yuv420p10le", "pc", 16), ("yuv420p10le", "tv", 16), ("yuv420p", "tv", 16), ("yuv420p10le", "pc", 8)],
)
def test_rgb_is_written_as_the_equations_say(tmp_path: Path, pix_fmt: str, rng: str, depth: int) -> None:
    """16-bit RGB (a deep source's frames) and 8-bit RGB written as YUV: flat patches of white, greys,
    black and colours come out as BT.2020's equations round them (16-bit white was written Y 943 in
    10-bit limited range, 236 in 8 bits; full-range neutral chroma 511 in 10 bits, from 8-bit RGB too)."""
    src, _ = _clip(tmp_path, 10, rng, "bt2020nc")
    info = probe(src)
    colours = np.array([[1, 1, 1], [0.5, 0.5, 0.5], [0, 0, 0], [0.9, 0.2, 0.1], [0.1, 0.6, 0.8], [0.3, 0.3, 0.9],
                        [0.02, 0.02, 0.02], [0.98, 0.97, 0.99]])  # fmt: skip
    top, dtype = (65535, np.uint16) if depth == 16 else (255, np.uint8)
    rgb = np.ascontiguousarray(np.round(colours * top).astype(dtype).repeat(8, 0)[None].repeat(H, 0))
    out = tmp_path / "out.mkv"
    with open_writer(out, info, W, H, codec="ffv1", pix_fmt=pix_fmt) as writer:
        writer.write(rgb, info.start_pts)
    bits = 8 if pix_fmt == "yuv420p" else 10
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(out), "-f", "rawvideo", "-"], capture_output=True,
                         check=True).stdout  # fmt: skip
    flat = np.frombuffer(raw, "<u2" if bits > 8 else np.uint8).astype(int)
    luma, chroma = flat[: H * W].reshape(H, W), flat[H * W :].reshape(2, H // 2, W // 2)
    got = np.stack([luma, *chroma.repeat(2, 1).repeat(2, 2)])  # each chroma sample over its 2 x 2 pixels
    x = rgb / top
    kr, kb = KR_KB["bt2020nc"]
    y = kr * x[..., 0] + (1 - kr - kb) * x[..., 1] + kb * x[..., 2]
    cb, cr = (x[..., 2] - y) / (2 * (1 - kb)), (x[..., 0] - y) / (2 * (1 - kr))
    s, n = 1 << (bits - 8), (1 << bits) - 1
    if rng == "pc":
        want = np.stack([y * n, cb * n + (n + 1) / 2, cr * n + (n + 1) / 2])
    else:
        want = np.stack([16 * s + 219 * s * y, 128 * s + 224 * s * cb, 128 * s + 224 * s * cr])
    inner = np.array([c % 8 not in (0, 1, 6, 7) for c in range(W)])  # away from the patches' edges,
    # where 4:2:0 chroma mixes two colours
    assert np.abs(got[:, :, inner] - np.round(want[:, :, inner])).max() == 0
