"""Exact YUV <-> 16-bit RGB scaling for video deeper than 8 bits.

FFmpeg's swscale (8.1, the path PyAV's reformat takes) scales YUV of more than 8 bits to rgb48 with
8-bit-derived constants: 10-bit full-range white 1023 lands at 65472 and limited-range white 940 at
65283, where it is 65535. The other way it takes 65280 as white, and its full-range chroma of more
than 8 bits comes out half a code low (neutral grey 512 -> 511). Each is undone here, around the
same swscale calls, so that chroma placement stays swscale's:

- reading (`rgb48_gain`): the error is one gain, the same on R, G and B; measured once on a grey
  frame of the source's format, and divided out (clipping after it is then exact too);
- writing (`DeepYuv`): swscale writes 16-bit limited-range YUV of the output's chroma layout, whose
  headroom holds its gain without clipping; numpy takes the planes to the output's range and depth
  with exact rounding (the half-code chroma error is 1/128 of a code at 16 bits).

8-bit RGB written as 8-bit YUV, the common path, is exact in swscale and does not come here.
"""

from __future__ import annotations

import functools

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter

from dove_cli.video_io.formats import TO_RGB_FLAGS, TO_YUV_FLAGS, is_yuv

_PROBE = 16  # the side of the frames the gains are measured on


def _levels(bits: int, full: bool) -> tuple[int, int]:
    """Black and white of a `bits`-deep Y (or RGB) code at full or limited range."""
    if full:
        return 0, (1 << bits) - 1
    return 16 << (bits - 8), 235 << (bits - 8)


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Views of a planar frame's planes, [h, w] each, without their row padding."""
    dtype = np.dtype("<u2") if frame.format.components[0].bits > 8 else np.dtype(np.uint8)
    return [
        np.frombuffer(memoryview(p), dtype).reshape(p.height, -1)[:, : p.width]  # rows padded to line_size
        for p in frame.planes
    ]


def _planar_yuv(fmt: av.VideoFormat) -> bool:
    """Y, U, V (and alpha) each in a plane of its own, little-endian: the layout numpy fills here."""
    return is_yuv(fmt) and not fmt.is_big_endian and len({c.plane for c in fmt.components}) == len(fmt.components)


def float_values(frame: av.VideoFrame) -> np.ndarray:
    """A planar float frame's samples (an EXR's gbrpf16le or gbrpf32le, grayf32le, with alpha or not)
    as float32 [H, W, 3]: R, G, B (grey repeated), alpha left out. PyAV reads no half floats itself."""
    fmt = frame.format
    colour = [c for c in fmt.components if not c.is_alpha]
    dtype = np.dtype(f"{'>' if fmt.is_big_endian else '<'}f{colour[0].bits // 8}")
    planes = [
        np.frombuffer(memoryview(frame.planes[c.plane]), dtype).reshape(frame.height, -1)[:, : frame.width]
        for c in colour  # (in R, G, B order; rows padded to line_size)
    ]
    return np.stack(planes * (3 // len(planes)), axis=2).astype(np.float32)


def float_rgb48(values: np.ndarray) -> np.ndarray:
    """Float RGB [H, W, 3] (`float_values`) as 16-bit code values: 0..1 to 0..65535, rounded; beyond that
    clipped, as dove does not tone-map (`clipped` counts it); in float64, as float32 rounds some
    halves the wrong way. swscale's own conversion is up to 3 codes off and takes 1.0 to 65532."""
    return np.round(np.clip(values, 0, 1, dtype=np.float64) * 65535).astype(np.uint16)


def clipped(values: np.ndarray) -> tuple[float, float]:
    """The fractions of float samples above 1.0 and below 0 (NaN aside), which `float_rgb48` clips."""
    return float(np.mean(values > 1)), float(np.mean(values < 0))


@functools.cache
def rgb48_gain(pix_fmt: str, matrix: Colorspace, full: bool) -> float:
    """How much swscale's YUV -> rgb48 conversion of `pix_fmt` scales the exact result (1.0: exact,
    or a format not measured here: 8-bit, RGB, gray, semi-planar). Measured on a flat grey at 3/4 of
    white with neutral chroma, converted as the reader converts (within 1e-5)."""
    fmt = av.VideoFormat(pix_fmt)
    bits = fmt.components[0].bits
    if bits <= 8 or not _planar_yuv(fmt):
        return 1.0
    black, white = _levels(bits, full)
    level = black + 3 * (white - black) // 4
    frame = av.VideoFrame(_PROBE, _PROBE, pix_fmt)
    for plane, comp in zip(_planes(frame), fmt.components, strict=True):
        plane[:] = (1 << bits) - 1 if comp.is_alpha else level if comp.is_luma else 1 << (bits - 1)
    rng = ColorRange.JPEG if full else ColorRange.MPEG
    got = frame.reformat(format="rgb48le", src_colorspace=matrix, src_color_range=rng,
                         dst_color_range=ColorRange.JPEG, interpolation=TO_RGB_FLAGS).to_ndarray()  # fmt: skip
    return float(got[0, 0, 0]) / ((level - black) / (white - black) * 65535)


def exact_rgb48(rgb: np.ndarray, gain: float) -> np.ndarray:
    """swscale's rgb48 [H, W, 3] with its `gain` divided out, rounded and clipped as an exact
    conversion would be: a limited-range super-white clips at white (940 in 10 bits), as it must in
    RGB of 0..1."""
    if gain == 1.0:
        return rgb
    out = rgb.astype(np.float32)
    out *= np.float32(1 / gain)
    out += np.float32(0.5)
    np.clip(out, 0, 65535, out=out)
    return out.astype(np.uint16)


class DeepYuv:
    """Writes RGB frames as YUV exactly where swscale alone would not: 16-bit RGB, or YUV of more
    than 8 bits (`needed`). One per output, as a `VideoReformatter` keeps one conversion. One
    swscale thread: FFmpeg 8.1's threaded swscale leaves pixels undefined when it writes more than
    8 bits (`ContainerWriter._setup_color`)."""

    def __init__(self, pix_fmt: str, matrix: Colorspace, full: bool) -> None:
        self._fmt = av.VideoFormat(pix_fmt)
        comps = [c for c in self._fmt.components if not c.is_alpha]
        self._bits = comps[0].bits
        layout = _layout(self._fmt)
        self._mid = f"yuv{layout or '444'}p16le"  # swscale's output: limited range, 16 bits
        # numpy's: the output itself where its planes are Y, U, V; else a planar twin that swscale repacks
        twin = f"yuv{layout or '444'}p" + (f"{self._bits}le" if self._bits > 8 else "")
        self._planar = self._fmt.name if layout and _planar_yuv(self._fmt) else twin
        self._matrix, self._full = matrix, full
        self._to_mid = VideoReformatter()
        self._repack = VideoReformatter()
        self._gains: dict[str, float] = {}  # by the RGB frames' format (rgb48le, gbrp): swscale's gain

    def needed(self, rgb: np.ndarray) -> bool:
        """Whether writing `rgb` (uint8 or uint16) needs this: else swscale is exact (8-bit to 8-bit)."""
        return rgb.dtype != np.uint8 or self._bits > 8

    def _mid_frame(self, rgb: av.VideoFrame) -> av.VideoFrame:
        return self._to_mid.reformat(rgb, format=self._mid, src_colorspace=Colorspace.ITU601,
                                     dst_colorspace=self._matrix, src_color_range=ColorRange.JPEG,
                                     dst_color_range=ColorRange.MPEG, interpolation=TO_YUV_FLAGS,
                                     threads=1)  # fmt: skip

    def _gain(self, rgb_format: str) -> float:
        """swscale's gain on the 16-bit limited-range YUV it writes from `rgb_format`, measured once on
        white (65280/65535 from rgb48 in FFmpeg 8.1's, none from 8-bit RGB)."""
        if rgb_format not in self._gains:
            dtype = np.uint16 if rgb_format == "rgb48le" else np.uint8
            white = np.full((_PROBE, _PROBE, 3), np.iinfo(dtype).max, dtype)
            probe = av.VideoFrame.from_ndarray(white, format="rgb48le" if dtype == np.uint16 else "rgb24")
            y = _planes(probe.reformat(format=self._mid, src_colorspace=Colorspace.ITU601, dst_colorspace=self._matrix,
                                       src_color_range=ColorRange.JPEG, dst_color_range=ColorRange.MPEG,
                                       interpolation=TO_YUV_FLAGS))[0]  # fmt: skip
            self._gains[rgb_format] = (float(y[0, 0]) - 4096) / (60160 - 4096)
        return self._gains[rgb_format]

    def convert(self, rgb: av.VideoFrame) -> av.VideoFrame:
        """An RGB frame (rgb48le, or 8-bit rgb24/gbrp) as the output's YUV."""
        gain = self._gain("rgb48le" if rgb.format.name == "rgb48le" else "rgb24")
        mid = _planes(self._mid_frame(rgb))
        out = av.VideoFrame(rgb.width, rgb.height, self._planar)
        bits, top = self._bits, (1 << self._bits) - 1
        for i, (src, dst) in enumerate(zip(mid, _planes(out), strict=False)):
            centre, span = (4096.0, 56064.0) if i == 0 else (32768.0, 57344.0)  # 16-bit limited black/neutral, width
            # normalised value (Y 0..1, chroma -0.5..0.5) = (src - centre) / (gain * span); then the output's code
            if self._full:
                base, scale = (0.0 if i == 0 else float(1 << (bits - 1))), float(top)
            else:
                base, scale = (
                    float((16 if i == 0 else 128) << (bits - 8)),
                    float((219 if i == 0 else 224) << (bits - 8)),
                )
            a = np.float32(scale / (gain * span))
            v = src.astype(np.float32)
            v -= np.float32(centre)
            v *= a
            v += np.float32(base + 0.5)
            np.clip(v, 0, top, out=v)
            dst[:] = v.astype(dst.dtype)  # floor of value + 0.5: rounded
        for plane, comp in zip(_planes(out), out.format.components, strict=True):
            if comp.is_alpha:
                plane[:] = top  # opaque
        if self._planar == self._fmt.name:
            return out
        rng = ColorRange.JPEG if self._full else ColorRange.MPEG
        return self._repack.reformat(out, format=self._fmt.name, src_color_range=rng, dst_color_range=rng,
                                     interpolation=int(Interpolation.POINT), threads=1)  # fmt: skip


def _layout(fmt: av.VideoFormat) -> str | None:
    """A YUV format's chroma layout as FFmpeg names it (444, 422, 420); None for the rarer ones."""
    chroma = av.VideoFormat(fmt.name, 4, 4).components[1]  # Y, U, V (is_chroma says 0 in PyAV 18)
    return {(4, 4): "444", (2, 4): "422", (2, 2): "420"}.get((chroma.width, chroma.height))
