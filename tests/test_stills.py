"""Still images: what a photo holds besides its pixels (EXIF orientation, pages, frames of an APNG,
transparency in a palette, ICC profile, DPI), made with Pillow and numpy and checked with numpy's own
turns, Pillow's reading of the outputs and the ffmpeg binary (tiny images, bilinear at scale 1: the
output is the input's pixels)."""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from dove_cli.console import described_rows
from dove_cli.errors import InputError, OutputError
from dove_cli.options import UpscaleOptions
from dove_cli.upscaling import upscale
from dove_cli.video_io.describe import describe
from media import ffmpeg_frames

SAME = dict(model="bilinear", scale=1, color_fix="none", device="cpu", tile=0, chunk=0)

# What a viewer shows of the stored pixels a for each EXIF orientation (the EXIF/TIFF spec's table), in
# plain numpy: 5 is the transpose, 7 the transpose about the other diagonal.
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),  # turned 90 degrees clockwise
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def pixels(w: int = 12, h: int = 8, seed: int = 0) -> np.ndarray:
    """Random RGB: any turn or mirror of it is another picture."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def oriented(path: Path, rgb: np.ndarray, orientation: int, **save) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), **save)
    return path


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_every_exif_orientation_is_shown_as_viewers_show_it(tmp_path):
    """All 8 orientations of a PNG (eXIf): the output is the stored pixels turned as the spec's table
    says (and as Pillow's exif_transpose turns them), with --rotate keep (an image cannot hold the
    tag) and apply alike."""
    rgb = pixels()
    for o, shown in SHOWN.items():
        src = oriented(tmp_path / f"o{o}.png", rgb, o)
        want = shown(rgb)
        assert np.array_equal(want, np.asarray(ImageOps.exif_transpose(Image.open(src)))), o  # the table is Pillow's
        for rotate in ("keep", "apply") if o in (5, 6) else ("keep",):
            out = tmp_path / f"o{o}_{rotate}.png"
            upscale(src, out, UpscaleOptions(**SAME, rotate=rotate))
            assert np.array_equal(read(out), want), (o, rotate)


def test_exif_orientation_of_jpeg_tiff_and_webp_and_in_dove_info(tmp_path):
    """The tag where a JPEG (APP1), a TIFF (tag 274) and a WebP (EXIF chunk) keep it; dove info says it.
    A JPEG-compressed TIFF, which dove reads with Pillow, who turns a TIFF itself as it loads it: as
    Pillow's exif_transpose shows it (turned once)."""
    rgb = pixels(16, 8)
    for name, save in (("a.jpg", {"quality": 95}), ("a.tif", {}), ("a.webp", {"lossless": True}),
                       ("jpeg.tif", {"compression": "jpeg"})):  # fmt: skip
        src = oriented(tmp_path / name, rgb, 6, **save)
        if name == "jpeg.tif":
            want = np.asarray(ImageOps.exif_transpose(Image.open(src)))
        else:
            want = np.rot90(read(src) if name == "a.jpg" else rgb, -1)  # (the JPEG as it decodes)
        upscale(src, tmp_path / f"{name}.png", UpscaleOptions(**SAME))
        assert np.array_equal(read(tmp_path / f"{name}.png"), want), name
    d = describe(tmp_path / "a.jpg")["images"]
    assert (d["orientation"], d["rotation"], d["mirrored"]) == (6, -90, False)
    assert any(
        label == "orientation" and text.startswith("EXIF 6 (-90 degrees)")
        for label, text in described_rows({"images": d})
    )


def test_a_still_into_a_video_keeps_its_orientation_as_a_tag(tmp_path):
    """--rotate keep into .mp4: the stored pixels and a display matrix (turn and mirror), which
    ffmpeg applies when it decodes: it shows what the photo viewer shows (orientation 5: mirrored too)."""
    rgb = np.kron(pixels(4, 2), np.ones((8, 8, 1), np.uint8))  # 8x8 blocks: 4:4:4 lossless h264 keeps them near
    src = oriented(tmp_path / "o5.png", rgb, 5)
    out = tmp_path / "o5.mp4"
    upscale(src, out, UpscaleOptions(**SAME, pix_fmt="yuv444p", crf=0))
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (32, 16)  # stored as it was
    got = ffmpeg_frames(out, 16, 32)[0].astype(int)  # ffmpeg turns it (autorotate)
    assert np.abs(got - SHOWN[5](rgb)).max() <= 3


def test_a_sequence_is_turned_as_one_and_images_that_disagree_are_refused(tmp_path):
    rgb = pixels()
    (tmp_path / "seq").mkdir()
    for i in (1, 2):
        oriented(tmp_path / "seq" / f"{i:03d}.png", pixels(seed=i), 8)
    upscale(tmp_path / "seq", tmp_path / "out" / "%03d.png", UpscaleOptions(**SAME, fps="1"))
    for i in (1, 2):
        assert np.array_equal(read(tmp_path / "out" / f"{i:03d}.png"), np.rot90(pixels(seed=i), 1))
    oriented(tmp_path / "seq" / "003.png", rgb, 1)
    with pytest.raises(
        InputError, match=r"003\.png: EXIF orientation 1 \(as stored\) differs from the first image's, 8"
    ):
        upscale(tmp_path / "seq", tmp_path / "out2" / "%03d.png", UpscaleOptions(**SAME, fps="1"))
    assert not (tmp_path / "out2").exists()


def test_an_apng_is_read_as_the_animation_it_is(tmp_path):
    """Every frame, each at its own time (as an animated GIF is read)."""
    frames = [pixels(seed=i) for i in range(3)]
    src = tmp_path / "anim.png"
    Image.fromarray(frames[0]).save(src, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                    duration=[100, 200, 300])  # fmt: skip
    upscale(src, tmp_path / "out" / "%02d.png", UpscaleOptions(**SAME))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01.png", "02.png", "03.png"]
    for i, f in enumerate(frames, 1):
        assert np.array_equal(read(tmp_path / "out" / f"{i:02d}.png"), f)
    upscale(src, tmp_path / "anim.mkv", UpscaleOptions(**SAME))
    with av.open(str(tmp_path / "anim.mkv")) as c:
        assert [round(float(f.time), 3) for f in c.decode(video=0)] == [0.0, 0.1, 0.3]
    exif = Image.Exif()
    exif[0x0112] = 8  # FFmpeg 8 gives its eXIf as side data PyAV 18 cannot name: read, and turned still
    Image.fromarray(frames[0]).save(src, save_all=True, append_images=[Image.fromarray(frames[1])], exif=exif.tobytes())
    upscale(src, tmp_path / "turned" / "%02d.png", UpscaleOptions(**SAME, rotate="apply"))
    assert np.array_equal(read(tmp_path / "turned" / "02.png"), np.rot90(frames[1], 1))


def test_a_multipage_tiff_is_said_and_dove_info_counts_its_pages(tmp_path, caplog):
    src = tmp_path / "scan.tif"
    Image.fromarray(pixels()).save(src, save_all=True, append_images=[Image.fromarray(pixels(seed=1))] * 2)
    with caplog.at_level(logging.WARNING):
        upscale(src, tmp_path / "out.tif", UpscaleOptions(**SAME))
    said = [m for m in caplog.messages if "pages" in m]
    assert len(said) == 1 and said[0].startswith(f"{src}: a TIFF of 3 pages: only the first page is read"), said
    assert np.array_equal(read(tmp_path / "out.tif"), pixels())
    d = describe(src)["images"]
    assert d["pages"] == 3 and ("pages", "3 (only the first is read)") in described_rows({"images": d})
    (tmp_path / "seq").mkdir()
    for n in (1, 2):  # a sequence of them: one warning, the others counted
        Image.fromarray(pixels()).save(tmp_path / "seq" / f"f_{n:03d}.tif", save_all=True,
                                       append_images=[Image.fromarray(pixels(seed=1))])  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        upscale(tmp_path / "seq", tmp_path / "seq_out" / "%03d.tif", UpscaleOptions(**SAME))
    said = [m for m in caplog.messages if "pages" in m]
    assert len(said) == 1 and said[0].endswith(
        "left out (1 more image with several pages) (split it into one "
        "image a page, such as page_%03d.tif, to upscale them all)"
    ), said


def test_transparency_in_a_palette_is_said_as_an_alpha_channel_is(tmp_path, caplog):
    """A paletted PNG with tRNS (FFmpeg's pal8 keeps its alpha in the palette); one without: nothing said."""
    image = Image.fromarray(pixels()).quantize(8)
    image.save(tmp_path / "clear.png", transparency=0)
    image.save(tmp_path / "opaque.png")
    assert Image.open(tmp_path / "clear.png").mode == "P" and "transparency" in Image.open(tmp_path / "clear.png").info
    for name, alpha in (("clear.png", True), ("opaque.png", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            upscale(tmp_path / name, tmp_path / f"out_{name}", UpscaleOptions(**SAME))
        assert any("alpha channel (transparency) is dropped" in m for m in caplog.messages) == alpha, name


def phys(png: Path) -> bytes | None:
    """A PNG's pHYs chunk data, if any."""
    data, at = png.read_bytes(), 8
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"pHYs":
            return data[at + 8 : at + 8 + n]
        at += 12 + n
    return None


def test_png_outputs_get_a_valid_phys_and_an_image_keeps_its_dpi(tmp_path):
    """No DPI: square pixels (1:1) or no pHYs, never FFmpeg's 0:1; 300 dpi in: 300 dpi out (PNG, TIFF, JPEG);
    a 72 dpi PNG's pHYs as Pillow writes it (2835 per metre), where FFmpeg's dpi=72 truncated to 2834."""
    Image.fromarray(pixels()).save(tmp_path / "plain.png")
    upscale(tmp_path / "plain.png", tmp_path / "plain_out.png", UpscaleOptions(**SAME))
    chunk = phys(tmp_path / "plain_out.png")
    assert chunk is None or (chunk[:4] == chunk[4:8] != b"\0\0\0\0"), chunk
    for ext in (".png", ".tif", ".jpg"):
        Image.fromarray(pixels()).save(tmp_path / f"dpi{ext}", dpi=(300, 300))
        upscale(tmp_path / f"dpi{ext}", tmp_path / f"out{ext}", UpscaleOptions(**SAME))
        with Image.open(tmp_path / f"out{ext}") as out:
            assert tuple(round(d) for d in out.info["dpi"]) == (300, 300), ext
    Image.fromarray(pixels()).save(tmp_path / "dpi72.png", dpi=(72, 72))
    upscale(tmp_path / "dpi72.png", tmp_path / "out72.png", UpscaleOptions(**SAME))
    assert phys(tmp_path / "out72.png") == phys(tmp_path / "dpi72.png") == struct.pack(">IIB", 2835, 2835, 1)


def test_an_icc_profile_is_kept_in_png_and_jpeg_and_said_where_it_cannot_be(tmp_path, caplog):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    for ext in (".png", ".jpg"):
        Image.fromarray(pixels()).save(tmp_path / f"in{ext}", icc_profile=icc)
        upscale(tmp_path / f"in{ext}", tmp_path / f"out{ext}", UpscaleOptions(**SAME))
        with Image.open(tmp_path / f"out{ext}") as out:
            assert out.info.get("icc_profile") == icc, ext
            out.load()  # (the pixels still read)
    assert np.array_equal(read(tmp_path / "out.png"), pixels())
    for out in ("out.tif", "out.mp4"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            upscale(tmp_path / "in.png", tmp_path / out, UpscaleOptions(**SAME))
        said = [m for m in caplog.messages if "ICC profile" in m]
        assert len(said) == 1 and said[0].startswith(str(tmp_path / out)) and repr(name) in said[0], said


def test_an_unknown_output_extension_lists_the_image_ones_too(tmp_path):
    Image.fromarray(pixels()).save(tmp_path / "a.png")
    with pytest.raises(
        OutputError, match=r"unknown output extension '\.gif' \(use .*\.mp4.*; one image: .*\.jpg.*\.png.*\.tif"
    ):
        upscale(tmp_path / "a.png", tmp_path / "a.gif", UpscaleOptions(**SAME))


def test_webp_outputs_are_lossless_unless_the_encoders_options_say(tmp_path):
    """A .webp output was lossy VP8 at libwebp's default quality 75 (40.9 dB against dove's own PNG: much
    of what an upscale makes, thrown away), with no way to change it: --codec-option was refused for
    images. Lossless (VP8L) now, as PNG is: the same pixels as Pillow reads them; the encoder's own
    options (lossless=0 quality=90) make it lossy, and a misspelt one is an error naming it."""
    from dove_cli.errors import OptionError

    rgb = np.random.default_rng(4).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    upscale(tmp_path / "in.png", tmp_path / "out.webp", UpscaleOptions(**SAME))
    data = (tmp_path / "out.webp").read_bytes()
    assert data[12:16] == b"VP8L" and np.array_equal(np.asarray(Image.open(tmp_path / "out.webp").convert("RGB")), rgb)
    lossy = UpscaleOptions(**SAME, codec_options={"lossless": "0", "quality": "90"})
    upscale(tmp_path / "in.png", tmp_path / "lossy.webp", lossy)
    assert (tmp_path / "lossy.webp").read_bytes()[12:16] == b"VP8 "
    with pytest.raises(OptionError, match=r"^--codec-option qualty: libwebp has no such option$"):
        upscale(tmp_path / "in.png", tmp_path / "typo.webp", UpscaleOptions(**SAME, codec_options={"qualty": "90"}))
    assert not (tmp_path / "typo.webp").exists()


def test_a_jpeg_outputs_quality_is_ffmpegs_q(tmp_path):
    """JPEG quality could not be set: `quality=` and `qscale=` were refused and `global_quality=` was
    taken and ignored (the same bytes). `--codec-option q=N` is ffmpeg's -q:v: within 1 dB of the ffmpeg
    binary's `-q:v N` of the same picture; out-of-range and global_quality are refused."""
    from dove_cli.errors import OptionError
    from media import ffmpeg

    y, x = np.mgrid[0:48, 0:64]  # a smooth picture: the two RGB->YUV conversions differ by a level at most
    rgb = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    sizes = {}
    for q in ("2", "20"):
        upscale(tmp_path / "in.png", tmp_path / f"q{q}.jpg", UpscaleOptions(**SAME, codec_options={"q": q}))
        ffmpeg("-i", tmp_path / "in.png", "-pix_fmt", "yuvj444p", "-q:v", q, tmp_path / f"ff{q}.jpg")
        mine, theirs = (np.asarray(Image.open(tmp_path / f"{n}{q}.jpg"), dtype=float) for n in ("q", "ff"))
        psnr = [10 * np.log10(255**2 / np.mean((a - rgb) ** 2)) for a in (mine, theirs)]
        assert abs(psnr[0] - psnr[1]) < 1, (q, psnr)  # as good as ffmpeg's -q:v, not another quality
        sizes[q] = (tmp_path / f"q{q}.jpg").stat().st_size
    assert sizes["20"] < sizes["2"]
    for bad, said in (
        ({"q": "1"}, "q=1: a JPEG's quality"),
        ({"global_quality": "600"}, "give a JPEG's quality as q=N"),
    ):
        with pytest.raises(OptionError, match=said):
            upscale(tmp_path / "in.png", tmp_path / "bad.jpg", UpscaleOptions(**SAME, codec_options=bad))
