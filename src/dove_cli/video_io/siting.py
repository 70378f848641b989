"""Chroma siting: where a subsampled picture's chroma samples sit among its luma samples (FFmpeg's chroma
location: left, the MPEG-2/H.264/HEVC default; topleft, UHD Blu-ray's and BT.2020's; center, MPEG-1's and
JPEG's). swscale follows the decoder's word when it reads a frame, and dove's reader lets it; PyAV shows
no frame's chroma location, so `chroma_siting` sees it in what swscale does. dove's writer converts RGB
frames, which carry none, so its chroma is swscale's own default, center, and is tagged so (`WRITTEN`)."""

from __future__ import annotations

from typing import Any

import av
import numpy as np
from av.video.reformatter import Interpolation

WRITTEN = "center"  # where the writer's RGB -> YUV conversion puts chroma (swscale's default)
# FFmpeg's chroma location names, by (x, y): the chroma sample's place in half luma samples from the
# top-left luma sample of the ones it covers. H.264/HEVC's chroma_sample_loc_type is the list's order.
SITINGS = {(0, 1): "left", (1, 1): "center", (0, 0): "topleft", (1, 0): "top", (0, 2): "bottomleft", (1, 2): "bottom"}
TYPES = list(SITINGS.values())
PROBE = 16  # px: the probe picture's side (chroma sample 3, 3 lit: clear of the edges at 4:2:0 and 4:2:2)


def chroma_siting(frame: Any) -> str | None:
    """Where swscale takes `frame`'s chroma samples to be, as FFmpeg names it; None for a picture whose
    chroma is not subsampled (4:4:4, RGB, grey) or that is not planar YUV. A small picture with the
    frame's properties and one chroma sample lit is upsampled to 4:4:4: the centre of the lit area
    is where that sample sits."""
    fmt = frame.format
    bits = max(c.bits for c in fmt.components)
    sub_x, sub_y = PROBE // fmt.chroma_width(PROBE), PROBE // fmt.chroma_height(PROBE)
    planes = {c.plane for c in fmt.components}
    if fmt.is_rgb or planes != {0, 1, 2} or (sub_x, sub_y) == (1, 1) or fmt.is_big_endian:
        return None
    # a picture of its own (its pixels are set below) with the frame's properties, the siting among them
    probe = frame.reformat(width=PROBE, height=PROBE, interpolation=Interpolation.POINT)
    dtype = np.uint16 if bits > 8 else np.uint8
    for i, plane in enumerate(probe.planes):
        a = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        a[:] = 1 << (bits - 1)
        if i == 1:
            a[3, 3] = (1 << bits) - 1
    lit = probe.reformat(format="yuv444p16le", interpolation=Interpolation.BILINEAR).to_ndarray()[..., 1]
    weight = np.clip(lit.astype(np.float64) - 32768, 0, None)
    if not weight.sum():
        return None
    ys, xs = np.indices(weight.shape)
    x = (xs * weight).sum() / weight.sum() - 3 * sub_x
    y = (ys * weight).sum() / weight.sum() - 3 * sub_y if sub_y > 1 else 0.5  # 4:2:2 (no rows shared): left or center
    return SITINGS.get((round(2 * x), round(2 * y)))


def sited(opts: dict[str, str], pix_fmt: str) -> dict[str, str]:
    """Encoder options that tag a 4:2:0 output's chroma where the writer put it (`WRITTEN`), in the
    H.264/HEVC VUI (x264, x265) and so in the container, which takes it from there when segments are
    joined (Matroska's ChromaSiting). Other chroma formats have no such tag (4:2:2 is co-sited by
    definition). A user's own --codec-option chroma_sample_location is left as it is."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or (fmt.chroma_width(2), fmt.chroma_height(2)) != (1, 1) or "chroma_sample_location" in opts:
        return opts
    return {**opts, "chroma_sample_location": WRITTEN}


def said(siting: str | None) -> str | None:
    """`dove info`'s words for a siting: its name and its H.264/HEVC type number."""
    return f"{siting} (type {TYPES.index(siting)})" if siting in TYPES else siting
