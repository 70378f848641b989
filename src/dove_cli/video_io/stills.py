"""What a still image's file holds besides its pixels (EXIF orientation, pages, ICC profile, DPI),
read by Pillow from its header, and the ICC profile and DPI put back into a written PNG or JPEG
(FFmpeg's encoders take them as frame side data, which PyAV cannot attach)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# EXIF orientation (1-8) -> how the viewer shows the stored pixels, as a display matrix says it (`VideoInfo`):
# degrees turned counter-clockwise, then mirrored left-right or not; Pillow's ImageOps.exif_transpose does the same.
EXIF_TURNS = {
    1: (0, False),
    2: (0, True),
    3: (180, False),
    4: (180, True),
    5: (-90, True),
    6: (-90, False),
    7: (90, True),
    8: (90, False),
}


@dataclass(frozen=True)
class StillTags:
    """An image file's size (None: Pillow cannot read it), EXIF orientation (1: as stored), pages (a
    multi-page TIFF's), whether it is an animation (an APNG), its ICC profile and its resolution in
    dots per inch (None: not given)."""

    size: tuple[int, int] | None = None
    orientation: int = 1
    pages: int = 1
    animated: bool = False
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None


def still_tags(file: Path) -> StillTags:
    """`file`'s tags from its header (no pixels are decoded); none for a file Pillow cannot open,
    which FFmpeg reads or refuses."""
    from PIL import Image, TiffImagePlugin, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            # PNG's own getexif decodes the whole image to find an eXIf after the pixels: before them only
            exif = Image.Image.getexif(image) if image.format == "PNG" else image.getexif()
            orientation = int(exif.get(0x0112, 1) or 1)
            frames = int(getattr(image, "n_frames", 1))
            dpi = image.info.get("dpi")
            if isinstance(image, TiffImagePlugin.TiffImageFile) and 282 not in image.tag_v2:  # Pillow: (1, 1) for none
                dpi = None
            return StillTags(
                size=image.size,
                orientation=orientation if orientation in EXIF_TURNS else 1,
                pages=frames if image.format == "TIFF" else 1,
                animated=image.format == "PNG" and frames > 1,
                icc=image.info.get("icc_profile") or None,
                dpi=(float(dpi[0]), float(dpi[1])) if dpi and dpi[0] > 0 and dpi[1] > 0 else None,
            )
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return StillTags()


def turned(rgb: np.ndarray, degrees: int, mirrored: bool) -> np.ndarray:
    """`rgb` [H, W, C] as shown: turned `degrees` counter-clockwise (a multiple of 90), then mirrored
    left-right, as the reader turns a video's frames under --rotate apply."""
    if degrees:
        rgb = np.rot90(rgb, k=degrees // 90)
    return rgb[:, ::-1] if mirrored else rgb


def unturned(rgb: np.ndarray, degrees: int, mirrored: bool) -> np.ndarray:
    """The stored pixels of `rgb` as `turned` showed them: unmirrored, then turned back."""
    rgb = rgb[:, ::-1] if mirrored else rgb
    return np.rot90(rgb, k=-degrees // 90) if degrees else rgb


def icc_name(icc: bytes) -> str:
    """An ICC profile's description ('Display P3'), or 'an ICC profile' where littlecms cannot read one."""
    try:
        import io

        from PIL import ImageCms

        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (ImportError, OSError, ValueError, TypeError):
        return "an ICC profile"
    return f"the ICC profile {name!r}" if name else "an ICC profile"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tagged_png(data: bytes, icc: bytes | None) -> bytes:
    """A PNG FFmpeg wrote with an iCCP chunk after its IHDR (before the pixels, as the spec asks)."""
    if not icc:
        return data
    end = 8 + 8 + 13 + 4  # signature, then IHDR's length, type, 13 bytes and CRC
    return data[:end] + _png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)) + data[end:]


def tagged_jpeg(data: bytes, icc: bytes | None, dpi: tuple[float, float] | None) -> bytes:
    """A JPEG FFmpeg wrote with its JFIF density set to `dpi` and `icc` in APP2 segments after the
    JFIF segment (ICC.1 annex B: at most 65519 bytes a segment, numbered from 1)."""
    jfif = data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\0"
    if dpi and jfif:  # units (1: dots per inch), then X and Y density, after the version
        data = data[:13] + struct.pack(">BHH", 1, *(min(65535, round(d)) for d in dpi)) + data[18:]
    if not icc:
        return data
    at = 4 + struct.unpack(">H", data[4:6])[0] if jfif else 2
    parts = [icc[i : i + 65519] for i in range(0, len(icc), 65519)]
    app2 = b"".join(
        b"\xff\xe2" + struct.pack(">H", 2 + 14 + len(p)) + b"ICC_PROFILE\0" + bytes([n, len(parts)]) + p
        for n, p in enumerate(parts, 1)
    )
    return data[:at] + app2 + data[at:]
