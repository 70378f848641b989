"""What a still image's file holds besides its pixels (EXIF orientation, pages, ICC profile, DPI,
bits, compression), read by Pillow from its header (a DPX's and an EXR's by dove, which Pillow cannot open), and a PNG's colour chunks (cICP, mDCV, cLLI); the ICC profile, DPI
and HDR10 metadata put back into a written PNG or JPEG (FFmpeg's encoders take them as frame side
data, which PyAV cannot attach)."""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dove_cli.errors import InputError
from dove_cli.video_io.hdr import Mastering, mastering_from

if TYPE_CHECKING:
    from PIL import Image

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
    """An image file's size (None: its header cannot be read), EXIF orientation (1: as stored), pages (a
    multi-page TIFF's), whether it is an animation (an APNG), its ICC profile, its resolution in
    dots per inch (None: not given), the bits of its deepest channel as stored (a 10-bit DPX: 10, a
    half-float EXR: 16) and a TIFF's compression as FFmpeg's tiff encoder names it (None: another,
    or no TIFF)."""

    size: tuple[int, int] | None = None
    orientation: int = 1
    pages: int = 1
    animated: bool = False
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None
    bits: int = 8
    compression: str | None = None


# Pillow's names of a TIFF's compression -> FFmpeg's tiff encoder's (its compression_algo option)
TIFF_COMPRESSIONS = {"raw": "raw", "packbits": "packbits", "tiff_lzw": "lzw", "tiff_adobe_deflate": "deflate",
                     "tiff_deflate": "deflate"}  # fmt: skip
# Bits a Pillow mode stores where it says (a 16-bit RGB image is "RGB": `_bits` reads its header)
MODE_BITS = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}


def _bits(file: Path, image: Image.Image) -> int:
    """The bits of an image's deepest channel, from its header: a TIFF's BitsPerSample, a PNG's IHDR
    bit depth (both 16 for 16-bit RGB, which Pillow's mode calls "RGB"), else as its mode says."""
    from PIL import PngImagePlugin, TiffImagePlugin

    if isinstance(image, TiffImagePlugin.TiffImageFile):
        bits = image.tag_v2.get(258, 8)
        return max(bits) if isinstance(bits, tuple) else int(bits)
    if isinstance(image, PngImagePlugin.PngImageFile):
        with open(file, "rb") as f:  # (the IHDR comes first: its bit depth is byte 24)
            head = f.read(25)
        return head[24] if len(head) == 25 else 8
    return MODE_BITS.get(image.mode, 8)


def open_image(file: Path) -> Image.Image:
    """Pillow's `Image.open` (the header read, no pixels), its decompression-bomb guard said as a bad
    input in one line: a header that claims more than twice Pillow's 89 M pixels claims more than
    FFmpeg decodes in one frame (about 268 M) anyway. Its warning below that is Pillow's, not dove's:
    the plan judges the memory a large image needs."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(file)
        except Image.DecompressionBombError as e:
            claimed = re.search(r"\((\d+) pixels\)", str(e))
            pixels = f"{int(claimed[1]):,} pixels" if claimed else "more pixels than Pillow opens"
            raise InputError(f"{file}: its header claims {pixels}, more than any image dove (or FFmpeg) reads: "
                             "a damaged header, or a decompression bomb") from None  # fmt: skip


def still_tags(file: Path) -> StillTags:
    """`file`'s tags from its header (no pixels are decoded); a DPX's and an EXR's from theirs
    (`film_tags`); none for a file neither can read, which FFmpeg reads or refuses."""
    from PIL import Image, TiffImagePlugin, UnidentifiedImageError

    try:
        with open_image(file) as image:
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
                bits=_bits(file, image),
                compression=TIFF_COMPRESSIONS.get(image.info.get("compression", ""))
                if image.format == "TIFF"
                else None,
            )
    except UnidentifiedImageError:
        return film_tags(file)
    except (OSError, ValueError, SyntaxError):
        return StillTags()


PNG_END = b"IEND\xaeB`\x82"  # the end chunk's type and CRC: a PNG's last bytes (a few trailing ones are tolerated)


def damage(file: Path) -> str:
    """Why `file` cannot be a whole image, from its size and header alone (no pixels decoded), or "":
    empty; a PNG without its end chunk; a TIFF whose strips or tiles run past its end (a copy or a
    scan cut short), a DPX shorter than its header's file size; a header that Pillow (or, for a
    DPX and an EXR, `film_tags`), which reads every format dove takes, cannot read. So
    that a sequence's broken images are all named before a run, not one by one as it reaches them.
    (A TIFF's first directory is read alone: Pillow's whole open costs ten times as much.)"""
    from PIL import TiffImagePlugin, UnidentifiedImageError

    size = file.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    unread = f"its header cannot be read (cut short, or not a {file.suffix.lower()} image)"
    with open(file, "rb") as f, warnings.catch_warnings():  # (Pillow warns of a cut EXIF block, naming its source)
        warnings.simplefilter("ignore")
        head = f.read(8)
        if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):  # a TIFF (or BigTIFF)
            try:
                ifd = TiffImagePlugin.ImageFileDirectory_v2(head + f.read(8) * (head[2] == 43 or head[3] == 43))
                if ifd.next >= size:  # (FFmpeg writes the directory after the pixels)
                    return f"cut short ({size} of at least {ifd.next + 2} bytes its header names)"
                f.seek(ifd.next)
                ifd.load(f)
            except (OSError, ValueError, SyntaxError, KeyError, struct.error):
                return unread
            offsets, counts = ifd.get(273) or ifd.get(324) or (), ifd.get(279) or ifd.get(325) or ()
            end = max((int(o) + int(c) for o, c in zip(offsets, counts, strict=False)), default=0)
            if not end:
                return unread
            return f"cut short ({size} of the {end} bytes its header names)" if end > size else ""
        if head[:4] in FILM_MAGIC:  # (Pillow reads neither)
            if film_tags(file).size is None:
                return unread
            f.seek(16)  # a DPX's total file size (an EXR's end is found only by reading its offset table)
            whole = struct.unpack(FILM_MAGIC[head[:4]] + "I", f.read(4))[0] if FILM_MAGIC[head[:4]] else 0
            return f"cut short ({size} of the {whole} bytes its header names)" if whole > size else ""
        if file.suffix.lower() == ".png":
            f.seek(max(0, size - 64))
            if PNG_END not in f.read():
                return f"cut short ({size} bytes, no end chunk)"
        try:
            open_image(file).close()
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, struct.error):
            return unread
    return ""


FILM_MAGIC = {b"SDPX": ">", b"XPDS": "<", b"\x76\x2f\x31\x01": ""}  # a DPX (big-, little-endian), an EXR


def film_tags(file: Path) -> StillTags:
    """A DPX's or an OpenEXR's size and bits from its header (SMPTE 268M; OpenEXR's file layout), which
    Pillow cannot read; none for another file, or a header cut short."""
    try:
        with open(file, "rb") as f:
            head = f.read(65536)  # (an EXR's header attributes come first; a DPX's fields are at fixed places)
    except OSError:
        return StillTags()
    order = FILM_MAGIC.get(head[:4])  # a DPX's byte order ('>', '<'), an EXR's '', else None
    try:
        if order:
            width, height = struct.unpack(order + "2I", head[772:780])  # pixels per line, lines per element
            return StillTags(size=(width, height), bits=head[803])  # image element 1's bit size
        if order == "":
            return _exr_tags(head)
    except (struct.error, IndexError, ValueError):
        pass
    return StillTags()


def _exr_tags(head: bytes) -> StillTags:
    """An OpenEXR header's display window (its size, as FFmpeg decodes it) and its deepest channel (half:
    16 bits, float and uint: 32): attributes name, type, size, value from byte 8 on, to an empty name."""
    at, size, bits = 8, None, 0
    while head[at] != 0:
        name_end = head.index(b"\0", at)
        type_end = head.index(b"\0", name_end + 1)
        name = head[at:name_end]
        (length,) = struct.unpack("<i", head[type_end + 1 : type_end + 5])
        value = head[type_end + 5 : type_end + 5 + length]
        if len(value) != length:
            raise ValueError("header cut short")
        if name == b"displayWindow":
            x0, y0, x1, y1 = struct.unpack("<4i", value)
            size = (x1 - x0 + 1, y1 - y0 + 1)
        elif name == b"channels":  # name, pixel type (0 uint, 1 half, 2 float), linear, 3 reserved, x and y sampling
            i = 0
            while value[i] != 0:
                i = value.index(b"\0", i) + 1
                bits = max(bits, 16 if struct.unpack("<i", value[i : i + 4])[0] == 1 else 32)
                i += 16
        at = type_end + 5 + length
    return StillTags(size=size, bits=bits or 32) if size else StillTags()


def turned_pixels(rgb: np.ndarray, degrees: int, mirrored: bool) -> np.ndarray:
    """`rgb` [H, W, C] as shown: turned `degrees` counter-clockwise (a multiple of 90), then mirrored
    left-right, as the reader turns a video's frames under --rotate apply."""
    if degrees:
        rgb = np.rot90(rgb, k=degrees // 90)
    return rgb[:, ::-1] if mirrored else rgb


def unturned(rgb: np.ndarray, degrees: int, mirrored: bool) -> np.ndarray:
    """The stored pixels of `rgb` as `turned_pixels` showed them: unmirrored, then turned back."""
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class PngColour:
    """A PNG's colour chunks (PNG third edition): cICP's primaries and transfer (H.273's numbers, as
    FFmpeg's), and HDR10's static metadata: mDCV (the mastering display) and cLLI (MaxCLL, MaxFALL)."""

    primaries: int | None = None
    transfer: int | None = None
    mastering: Mastering | None = None
    light: tuple[int, int] | None = None


def png_colour(file: Path) -> PngColour:
    """`file`'s colour chunks, from those before its pixels (IDAT), where the spec puts them; none for
    a file that is no PNG. Read here, not from FFmpeg's frame: FFmpeg also gives a PNG's sRGB, gAMA
    and cHRM chunks as colour tags, where dove keeps such (SDR) images untagged, as viewers show them."""
    found: dict[bytes, bytes] = {}
    try:
        with open(file, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return PngColour()
            while len(head := f.read(8)) == 8:
                size, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    break
                if kind.lower() in (b"cicp", b"mdcv", b"clli"):  # (drafts spelled them mDCv, cLLi)
                    found[kind.lower()] = f.read(size)
                    f.seek(4, 1)
                else:
                    f.seek(size + 4, 1)
    except OSError:
        return PngColour()
    cicp, mdcv, clli = found.get(b"cicp", b""), found.get(b"mdcv", b""), found.get(b"clli", b"")
    rgb = len(cicp) == 4 and cicp[2] == 0  # (matrix 0: RGB, as a PNG's must be)
    mastering = None
    if len(mdcv) == 24:
        v = struct.unpack(">8H2I", mdcv)  # red, green, blue, white xy in 0.00002; max, min in 0.0001 cd/m²
        mastering = mastering_from([Fraction(x, 50000) for x in v[:8]] + [Fraction(v[9], 10000), Fraction(v[8], 10000)])
    light = struct.unpack(">2I", clli) if len(clli) == 8 else None  # in 0.0001 cd/m²
    return PngColour(
        primaries=cicp[0] if rgb else None,
        transfer=cicp[1] if rgb else None,
        mastering=mastering,
        light=(round(light[0] / 10000), round(light[1] / 10000)) if light else None,
    )


def tagged_png(
    data: bytes, icc: bytes | None, mastering: Mastering | None = None, light: tuple[int, int] | None = None
) -> bytes:
    """A PNG FFmpeg wrote with chunks after its IHDR (before the pixels, as the spec asks) that FFmpeg
    takes from frame side data, which PyAV cannot attach: an iCCP, and HDR10's static metadata as PNG's
    third edition stores it, mDCV (xy in 0.00002, luminance in 0.0001 cd/m²) and cLLI (0.0001 cd/m²)."""
    chunks = _png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)) if icc else b""
    if mastering is not None:
        m = mastering
        xy = [round(v * 50000) for v in (*m.red, *m.green, *m.blue, *m.white)]
        lum = round(m.max_luminance * 10000), round(m.min_luminance * 10000)
        chunks += _png_chunk(b"mDCV", struct.pack(">8H2I", *xy, *lum))
    if light is not None:
        chunks += _png_chunk(b"cLLI", struct.pack(">2I", light[0] * 10000, light[1] * 10000))
    end = 8 + 8 + 13 + 4  # signature, then IHDR's length, type, 13 bytes and CRC
    return data[:end] + chunks + data[end:]


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
