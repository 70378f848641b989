"""Film-scan sequences: bit depths that differ from frame to frame, DPX and OpenEXR images, linear light,
TIFF compression and the TIFF encoder's size limit. Tiny images written by the ffmpeg binary from numpy
arrays, read back by it and compared with numpy (bilinear at scale 1: the output is the input's pixels)."""

from __future__ import annotations

import logging
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dove_cli.options import UpscaleOptions
from dove_cli.upscaling import upscale
from dove_cli.video_io.describe import describe
from dove_cli.video_io.stills import StillTags, still_tags
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
    frame_limit = too_large("png", "gray", 16384, 16256) or ""  # no format helps: only a smaller size
    assert "more pixels than FFmpeg holds in one frame" in frame_limit and "write .png" not in frame_limit
    assert "write .png instead" in (too_large("tiff", "rgb48le", 16307, 10974) or "")
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


def write_dpx10(path: Path, codes: np.ndarray, *extra: str) -> Path:
    """10-bit code values [H, W, 3] as a DPX (gbrp10: planes G, B, R), by the ffmpeg binary."""
    planes = np.stack([codes[..., 1], codes[..., 2], codes[..., 0]]).astype("<u2")
    h, w = codes.shape[:2]
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gbrp10le", "-s", f"{w}x{h}", "-i", "-", *extra,
           str(path)]  # fmt: skip
    subprocess.run(cmd, input=planes.tobytes(), check=True)
    return path


def test_a_dpx_sequence_is_read_as_a_tiff_sequence_is(tmp_path):
    """A folder of 10-bit DPX (big- and little-endian alike) is a sequence: 16-bit TIFFs under the
    frames' own names and numbers, each code value v as v << 6 | v >> 4 (bit replication, within 1 of
    v * 65535 / 1023); a single DPX keeps its number in a pattern output, as a single TIFF does."""
    src = tmp_path / "reel"
    src.mkdir()
    codes = [np.random.default_rng(i).integers(0, 1024, (H, W, 3)) for i in range(3)]
    for i, c in enumerate(codes):  # (the encoder writes big-endian unless told: one of each)
        write_dpx10(src / f"r1_{86400 + i:07d}.dpx", c, *(("-pix_fmt", "gbrp10le") if i == 1 else ()))
    assert describe(src)["images"]["count"] == 3
    for i in range(3):  # (the header read for the size and depth checks, big- and little-endian)
        assert still_tags(src / f"r1_{86400 + i:07d}.dpx") == StillTags(size=(W, H), bits=10)
    upscale(src, tmp_path / "out/r1_%07d.tif", UpscaleOptions(**SAME))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"r1_{86400 + i:07d}.tif" for i in range(3)]
    for i, c in enumerate(codes):
        got = ffmpeg_frames(tmp_path / f"out/r1_{86400 + i:07d}.tif", W, H, deep=True)[0]
        assert np.array_equal(got, (c << 6) | (c >> 4)), i
    upscale(src / "r1_0086401.dpx", tmp_path / "one/shot_%07d.tif", UpscaleOptions(**SAME))
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["shot_0086401.tif"]


def test_a_folder_output_writes_a_dpx_sequence_as_tiff_and_no_dpx_is_written(tmp_path):
    """`-o OUT/` keeps the names with .tif for .dpx (dove does not write DPX), and a .dpx output is
    refused in one line."""
    import pytest

    from dove_cli.errors import InputError, OutputError
    from dove_cli.outputs import into_folder

    src = tmp_path / "reel"
    src.mkdir()
    for i in range(2):
        write_dpx10(src / f"a_{i:04d}.dpx", np.zeros((H, W, 3), int))
    assert into_folder(src, f"{tmp_path}/out/", None, None) == tmp_path / "out/a_%04d.tif"
    with pytest.raises(OutputError, match=r"x.dpx: dove reads .dpx images but does not write them; write .tif"):
        upscale(src / "a_0000.dpx", tmp_path / "x.dpx", UpscaleOptions(**SAME))
    whole = (src / "a_0001.dpx").read_bytes()  # a copy cut short: named before the run, as a TIFF's is
    (src / "a_0001.dpx").write_bytes(whole[: len(whole) // 2])
    (src / "a_0002.dpx").write_bytes(b"SDPX" + bytes(100))  # (its magic, and no header after it)
    with pytest.raises(InputError, match=rf"a_0001.dpx: cut short \({len(whole) // 2} of the {len(whole)} bytes"
                                         r".*a_0002.dpx: its header cannot be read"):  # fmt: skip
        upscale(src, tmp_path / "out/a_%04d.tif", UpscaleOptions(**SAME))


def test_linear_exr_values_outside_0_to_1_are_said_before_the_run_and_clipped_exactly(tmp_path, caplog):
    """An EXR sequence (half floats, as scans are stored) is read like any: 0..1 written as
    round(v * 65535), exactly (swscale took 1.0 to 65532), the rest clipped; before the run one warning
    says so, with the fractions above 1.0 and below 0 of the first image (numpy counts them here)."""
    src = tmp_path / "exr"
    src.mkdir()
    x = np.linspace(-0.2, 3.0, W, dtype=np.float32)
    frames = [np.broadcast_to(x[None, :, None] * (1 + c), (H, W, 3)).astype(np.float16).astype(np.float32)
              for c in (0, 0.5)]  # fmt: skip
    for i, f in enumerate(frames):
        write_image(src / f"{i + 1:04d}.exr", f, "-format", "half")
    assert still_tags(src / "0001.exr") == StillTags(size=(W, H), bits=16)  # (half floats)
    with caplog.at_level(logging.WARNING):
        upscale(src, tmp_path / "out/%04d.tif", UpscaleOptions(**SAME))
    said = [r.getMessage() for r in caplog.records if "linear light" in r.getMessage()]
    above, below = np.mean(frames[0] > 1), np.mean(frames[0] < 0)
    assert len(said) == 1 and f"{above:.1%} of 0001.exr's samples are above 1.0 and {below:.1%} below 0" in said[0]
    assert "does not tone-map" in said[0]
    for i, f in enumerate(frames):
        got = ffmpeg_frames(tmp_path / f"out/{i + 1:04d}.tif", W, H, deep=True)[0]
        assert np.array_equal(got, np.round(np.clip(f.astype(np.float64), 0, 1) * 65535)), i
    assert describe(src)["images"]["transfer"] == "linear"


def test_ffv1_of_an_exr_is_16_bit_rgb_and_a_refusal_blames_dove_not_options_never_given(tmp_path):
    """dove's frames are 16-bit: ffv1 writes a float source as gbrp16le (it chose gbrpf32le, which ffv1
    here cannot write, and blamed --crf/--preset/--pix-fmt, never given). Where the encoder refuses
    dove's own choice, the error says so; where the user asked, it names what was asked."""
    import pytest

    from dove_cli.errors import OptionError, OutputError
    from dove_cli.video_io.formats import check_encoder_options

    rgb = np.random.default_rng(0).random((H, W, 3), dtype=np.float32)
    src = write_image(tmp_path / "a.exr", rgb)
    upscale(src, tmp_path / "a.mkv", UpscaleOptions(**SAME, codec="ffv1"))
    report = subprocess.run([FFMPEG, "-hide_banner", "-i", str(tmp_path / "a.mkv")], capture_output=True, text=True)
    assert "ffv1" in report.stderr and "gbrp16le" in report.stderr
    got = ffmpeg_frames(tmp_path / "a.mkv", W, H, deep=True)[0]
    assert np.array_equal(got, np.round(rgb.astype(np.float64) * 65535))
    with pytest.raises(OptionError, match=r"ffv1 refused --pix-fmt \("):  # (asked for: named)
        upscale(src, tmp_path / "b.mkv", UpscaleOptions(**SAME, codec="ffv1", pix_fmt="gbrpf32le"))
    threads = {"threads": "1"}
    with pytest.raises(OutputError, match=r"ffv1 cannot write what dove chose for this output, gbrpf32le at 12x8 "):
        check_encoder_options("ffv1", threads, threads, W, H, "gbrpf32le", Fraction(25))
    with pytest.raises(OptionError, match=r"ffv1 refused --pix-fmt \("):
        check_encoder_options("ffv1", threads, threads, W, H, "gbrpf32le", Fraction(25), ("--pix-fmt",))


def test_a_tiff_output_keeps_the_input_tiffs_compression(tmp_path):
    """Uncompressed, LZW, deflate and PackBits TIFFs (written so by the ffmpeg binary) come out with the
    same compression (TIFF tag 259, read by Pillow), where all came out PackBits; --codec-option
    compression_algo still decides, and other inputs get FFmpeg's default, PackBits."""
    from PIL import Image

    tag = {"raw": 1, "lzw": 5, "deflate": 32946, "packbits": 32773}  # (FFmpeg writes deflate as 32946, not 8)
    rgb = noise(16, 0)
    for algo, number in tag.items():
        src = write_image(tmp_path / f"{algo}.tif", rgb, "-compression_algo", algo)
        upscale(src, tmp_path / f"{algo}_out.tif", UpscaleOptions(**SAME))
        with Image.open(src) as a, Image.open(tmp_path / f"{algo}_out.tif") as b:
            assert a.tag_v2[259] == b.tag_v2[259] == number, algo
        assert np.array_equal(ffmpeg_frames(tmp_path / f"{algo}_out.tif", W, H, deep=True)[0], rgb)
    upscale(
        tmp_path / "lzw.tif", tmp_path / "asked.tif", UpscaleOptions(**SAME, codec_options={"compression_algo": "raw"})
    )
    upscale(write_image(tmp_path / "a.png", rgb), tmp_path / "png.tif", UpscaleOptions(**SAME))
    with Image.open(tmp_path / "asked.tif") as asked, Image.open(tmp_path / "png.tif") as png:
        assert (asked.tag_v2[259], png.tag_v2[259]) == (1, 32773)


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_a_video_too_wide_for_its_encoder_blames_the_size(tmp_path, capsys, dry_run):
    """libx264 writes nothing wider than 16384 (the ffmpeg binary fails alike): a 2100x16 image at x8 was
    told to "choose a format with --pix-fmt", which no format fixes; --dry-run said nothing of it."""
    from dove_cli.cli import main

    wide = tmp_path / "wide.png"
    ffmpeg_frames = np.random.default_rng(0).integers(0, 255, (16, 2100, 3), dtype=np.uint8)
    subprocess.run([FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "2100x16", "-i", "-", str(wide)],
                   input=ffmpeg_frames.tobytes(), check=True)  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(wide), "-o", str(tmp_path / "wide.mkv"), "--scale", "8", "--model", "bilinear", *dry_run])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "libx264 cannot write a picture of 16800x128" in err and "--pix-fmt" not in err, err
    assert not (tmp_path / "wide.mkv").exists()
