"""HDR metadata and chroma siting (video_io/hdr.py, video_io/siting.py), checked with the ffmpeg binary:
its trace_headers bitstream filter reads the SEI, metadata OBUs and VUI the encoders wrote, and
`ffmpeg -v verbose -i` the container's stream properties (chroma location, DOVI records)."""

from __future__ import annotations

import json
import logging
import re
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dove_cli.cli import main
from dove_cli.errors import OptionError
from dove_cli.video_io import VideoInfo, open_reader, open_writer, probe
from media import ffinfo, ffmpeg, make_clip, with_dovi_record

PQ = "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc"
# (trace_headers writes each field as its name, its bits, then = and its value)
# A P3 D65 display of 0.0001-1000 cd/m², as x265 takes it (xy in 0.00002, luminance in 0.0001 cd/m²)
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
HDR10_FIELDS = re.compile(r"\b(display_primaries_[xy]\[\d\]|white_point_[xy]|m(?:ax|in)_display_mastering_luminance|"
                          r"max_content_light_level|max_pic_average_light_level) +[01]+ = (\d+)")  # fmt: skip


def hdr10_clip(path: Path, extra: str = "") -> Path:
    """3 frames of HEVC Main 10 PQ with the mastering display and MaxCLL 1000, MaxFALL 400 in its SEI."""
    params = f"log-level=error:master-display={MASTER}:max-cll=1000,400{extra}"
    return make_clip(path, frames=3, rate="24", codec="libx265", pix_fmt="yuv420p10le", vf=PQ,
                     extra=("-x265-params", params))  # fmt: skip


# A P3 D65 mastering display as ffmpeg's showinfo says it
P3_D65 = "has_primaries:1 has_luminance:1 r(0.6800,0.3200) g(0.2650,0.6900) b(0.1500 0.0600) wp(0.3127, 0.3290)"


def showinfo_side_data(path: Path) -> str:
    """The first frame's colour and side data as the ffmpeg binary's showinfo prints them."""
    return ffmpeg("-i", path, "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-").stderr


def trace(path: Path) -> str:
    """The video's headers and SEI as FFmpeg's trace_headers reads them."""
    return ffmpeg("-i", path, "-map", "0:v", "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-").stderr


def hdr10_fields(path: Path) -> dict[str, int]:
    return {k: int(v) for k, v in HDR10_FIELDS.findall(trace(path))}


def rewrite(src: Path, dst: Path, **opts) -> VideoInfo:
    """Every frame of `src` written to `dst` as it reads (a run's reader and writer, no model)."""
    with open_reader(src, warn=False) as reader, open_writer(dst, reader.info, reader.info.width,
                                                             reader.info.height, **opts) as writer:  # fmt: skip
        for frame in reader:
            writer.write(frame.rgb, frame.pts)
    return reader.info


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_hdr10_metadata_reaches_the_hevc_output_and_a_users_x265_params_add_to_doves(
    tmp_path: Path, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """The input's mastering display and MaxCLL/MaxFALL were dropped (a warning said so): x265 writes
    them as the input has them. A user's x265-params replaced dove's (its log level: 116 info lines);
    now they are added after dove's, a key given in both taking the user's value."""
    src = hdr10_clip(tmp_path / "md.mkv")
    want = hdr10_fields(src)
    assert len(want) == 12 and want["max_content_light_level"] == 1000, want
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        rewrite(src, tmp_path / "out.mkv")
        rewrite(src, tmp_path / "user.mkv", codec_options={"x265-params": "max-cll=500,200"})
    assert hdr10_fields(tmp_path / "out.mkv") == want
    assert hdr10_fields(tmp_path / "user.mkv") == {**want, "max_content_light_level": 500,
                                                   "max_pic_average_light_level": 200}  # fmt: skip
    assert "x265 [info]" not in capfd.readouterr().err
    assert not [m for m in caplog.messages if "not kept" in m], caplog.messages


def test_hdr10_metadata_in_h264_and_av1_and_said_where_it_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """x264 writes the same SEI; SVT-AV1 writes metadata OBUs in its own units (xy in 1/65536, in R, G,
    B order; luminance in 1/256 cd/m² and 1/16384); PNG its mDCV and cLLI chunks (said lost, as if
    images could not carry them); ffv1 and TIFF carry none, which is said."""
    src = hdr10_clip(tmp_path / "md.mkv")
    want = hdr10_fields(src)
    rewrite(src, tmp_path / "h264.mp4", codec="h264")
    assert hdr10_fields(tmp_path / "h264.mp4") == want
    rewrite(src, tmp_path / "av1.mkv", codec="av1")
    av1 = {k: int(v) for k, v in re.findall(r"\b(primary_chromaticity_[xy]\[\d\]|white_point_chromaticity_[xy]|"
                                            r"luminance_m(?:ax|in)|max_cll|max_fall) +[01]+ = (\d+)", trace(tmp_path / "av1.mkv"))}  # fmt: skip
    xy = [0.68, 0.32, 0.265, 0.69, 0.15, 0.06]
    assert av1 == {**{f"primary_chromaticity_{'xy'[i % 2]}[{i // 2}]": round(v * 65536) for i, v in enumerate(xy)},
                   "white_point_chromaticity_x": round(0.3127 * 65536), "white_point_chromaticity_y": round(0.329 * 65536),
                   "luminance_max": 1000 * 256, "luminance_min": round(0.0001 * 16384), "max_cll": 1000, "max_fall": 400}  # fmt: skip
    with caplog.at_level(logging.WARNING):
        rewrite(src, tmp_path / "lossless.mkv", codec="ffv1")
        rewrite(src, tmp_path / "png" / "%03d.png")
        rewrite(src, tmp_path / "tif" / "%03d.tif")
    lost = [m for m in caplog.messages if "HDR10 metadata" in m]
    keepers = "hevc, h264 and av1 outputs and PNG images keep it"
    assert lost == [
        f"{tmp_path / 'lossless.mkv'}: the input's HDR10 metadata (the mastering display, MaxCLL/MaxFALL) is not "
        f"kept: ffv1 cannot carry it ({keepers})",
        f"{tmp_path / 'tif' / '%03d.tif'}: the input's HDR10 metadata (the mastering display, MaxCLL/MaxFALL) is not "
        f"kept: these images cannot carry it ({keepers})",
    ]
    png = showinfo_side_data(tmp_path / "png" / "001.png")  # as FFmpeg reads it back (x265's min: 0.0001)
    assert f"Mastering display metadata: {P3_D65} min_luminance=0.000100, max_luminance=1000.000000" in png, png
    assert "Content light level metadata: MaxCLL=1000, MaxFALL=400" in png, png


def hdr10plus_clip(path: Path) -> Path:
    """HDR10 with HDR10+ dynamic metadata (x265's dhdr10-info: one scene, 3 frames)."""
    scene = {"BezierCurveData": {"Anchors": [100, 200, 300, 400, 500, 600, 700, 800, 900], "KneePointX": 0,
                                 "KneePointY": 0},
             "LuminanceParameters": {"AverageRGB": 1000, "MaxScl": [1000, 1000, 1000],
                                     "LuminanceDistributions": {"DistributionIndex": [1, 5, 10, 25, 50, 75, 90, 95, 99],
                                                                "DistributionValues": [0, 1, 2, 3, 4, 5, 6, 7, 8]}},
             "NumberOfWindows": 1, "TargetedSystemDisplayMaximumLuminance": 400, "SceneId": 0}  # fmt: skip
    info = {"JSONInfo": {"HDR10plus Profile": "B", "Version": "1.0"},
            "SceneInfo": [{**scene, "SceneFrameIndex": i, "SequenceFrameIndex": i} for i in range(3)],
            "SceneInfoSummary": {"SceneFirstFrameIndex": [0], "SceneFrameNumbers": [3]}}  # fmt: skip
    (path.parent / "hdr10plus.json").write_text(json.dumps(info))
    return hdr10_clip(path, f":dhdr10-info={path.parent / 'hdr10plus.json'}")


def test_dynamic_hdr_is_found_shown_and_said_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """HDR10+ and Dolby Vision were dropped without a word. HDR10+ is found in the frames, Dolby Vision
    by its configuration record (a dvvC/dvcC box in MP4, as ffmpeg reads it back; FFmpeg's own copy of it
    into Matroska's BlockAdditionMapping): `dove info` shows them, and the writer says they are not kept
    (profile 5, which has no HDR10 base layer, with its wrong colours)."""
    plus = hdr10plus_clip(tmp_path / "plus.mkv")
    base = make_clip(tmp_path / "base.mp4", frames=3, codec="libx265", pix_fmt="yuv420p10le", vf=PQ,
                     extra=("-tag:v", "hvc1", "-x265-params", "log-level=error"))  # fmt: skip
    dv8 = with_dovi_record(base, tmp_path / "dv8.mp4", 8, 1)
    dv5 = with_dovi_record(base, tmp_path / "dv5.mp4", 5, 0)
    assert "DOVI configuration record: version: 1.0, profile: 8, level: 1" in ffinfo(dv8).stderr
    ffmpeg("-i", dv8, "-c", "copy", "-strict", "unofficial", tmp_path / "dv8.mkv")
    assert (
        "profile: 8, level: 1, rpu flag: 1, el flag: 0, bl flag: 1, compatibility id: 1"
        in ffinfo(tmp_path / "dv8.mkv").stderr
    )
    code, out, err = run(["info", "--json", *map(str, (plus, dv8, tmp_path / "dv8.mkv", dv5, base))], capsys)
    assert code == 0, err
    assert [d["video"]["dynamic_hdr"] for d in json.loads(out)] == [
        ["HDR10+"],
        ["Dolby Vision profile 8.1"],
        ["Dolby Vision profile 8.1"],
        ["Dolby Vision profile 5"],
        [],
    ]
    code, out, err = run(["info", str(plus)], capsys)
    assert re.search(r"\n +dynamic +HDR10\+ \(not kept", out), out
    with caplog.at_level(logging.WARNING):
        for src in (plus, dv5):
            info = probe(src)
            open_writer(tmp_path / f"{src.stem}_x4.mkv", info, 64, 48).abort()
    said = [m for m in caplog.messages if "dynamic HDR" in m]
    assert said == [
        f"{tmp_path / 'plus_x4.mkv'}: the input's dynamic HDR metadata (HDR10+) is not kept: it describes the input's "
        "pictures scene by scene, which the upscale replaces; the output is plain HDR10 as its colour tags say",
        f"{tmp_path / 'dv5_x4.mkv'}: the input's dynamic HDR metadata (Dolby Vision profile 5) is not kept: it describes "
        "the input's pictures scene by scene, which the upscale replaces; Dolby Vision profile 5 has no HDR10 or SDR "
        "base layer, so the output's colours are wrong",
    ]


def test_info_shows_the_hdr10_metadata_and_the_chroma_siting(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """What a remuxer checks first: the mastering display and MaxCLL/MaxFALL (with values), and where the
    chroma sits (type 2, top-left, UHD Blu-ray's; x264's default: left, type 0, which the VUI leaves out)."""
    src = hdr10_clip(tmp_path / "md.mkv", ":chromaloc=2")
    plain = make_clip(tmp_path / "plain.mkv", frames=2)
    code, out, err = run(["info", "--json", str(src), str(plain)], capsys)
    assert code == 0, err
    md, sdr = (d["video"] for d in json.loads(out))
    assert md["mastering_display"] == {"red": [0.68, 0.32], "green": [0.265, 0.69], "blue": [0.15, 0.06],
                                       "white": [0.3127, 0.329], "name": "P3 D65", "min_luminance": 0.0001,
                                       "max_luminance": 1000.0}  # fmt: skip
    assert md["light_level"] == {"max_cll": 1000, "max_fall": 400}
    assert (md["chroma_location"], sdr["chroma_location"]) == ("topleft", "left")
    assert sdr["mastering_display"] is None and sdr["light_level"] is None and sdr["dynamic_hdr"] == []
    code, out, err = run(["info", str(src)], capsys)
    for line in (r"mastering +P3 D65 display, 0.0001-1000 cd/m²", r"light +MaxCLL 1000, MaxFALL 400 cd/m²",
                 r"chroma +sited topleft \(type 2\)"):  # fmt: skip
        assert re.search(line, out), (line, out)


def test_the_output_says_its_chroma_sits_where_the_writer_put_it(tmp_path: Path) -> None:
    """A top-left sited input (type 2) became an output with no siting, read as left (type 0). The
    writer's RGB to YUV conversion centres chroma in each 2x2 block: seen in a lossless output, where a
    red row or column lights the chroma sample covering it more than its neighbour across the next luma
    line (sited on a luma line, as top-left and left are, both would be lit alike). 4:2:0 outputs say
    center (type 1): x264's and x265's VUI, and Matroska's ChromaSiting."""
    src = make_clip(tmp_path / "tl.mkv", frames=2, extra=("-x264-params", "chromaloc=2"))
    assert re.search(r"chroma_sample_loc_type_top_field +[01]+ = 2\n", trace(src))
    for out in (tmp_path / "out.mkv", tmp_path / "hevc.mkv"):
        rewrite(src, out, codec="hevc" if out.stem == "hevc" else None)
        assert re.search(r"chroma_sample_loc_type_top_field +[01]+ = 1\n", trace(out)), out
        assert re.search(r"Video: .*yuv420p\(.*center\)", ffmpeg("-v", "verbose", "-i", out, check=False).stderr)
    info = VideoInfo(path=tmp_path / "none.mkv", width=16, height=16, num_frames=1, fps=Fraction(24),
                     time_base=Fraction(1, 24))  # fmt: skip
    rgb = np.full((16, 16, 3), 128, np.uint8)
    rgb[5, :] = rgb[:, 5] = (255, 0, 0)  # luma row and column 5: the second of chroma row and column 2's pair
    with open_writer(tmp_path / "lines.mkv", info, 16, 16, codec="ffv1", pix_fmt="yuv420p") as writer:
        writer.write(rgb)
    raw = tmp_path / "lines.yuv"
    ffmpeg("-i", tmp_path / "lines.mkv", "-f", "rawvideo", "-pix_fmt", "yuv420p", raw)
    yuv = np.frombuffer(raw.read_bytes(), np.uint8)
    v = yuv[16 * 16 + 8 * 8 :].reshape(8, 8).astype(int) - 128  # red is V's: far from 128 where it is lit
    assert abs(v[2, 7]) > abs(v[3, 7]) + 10 and abs(v[7, 2]) > abs(v[7, 3]) + 10, v


def test_a_mastering_display_is_named_at_the_precision_its_codec_stores() -> None:
    """AV1 stores xy in 1/65536 (0.68 as 44564/65536), HEVC in 0.00002: P3 D65 and BT.2020 are named
    either way; another display is said in numbers."""
    from dove_cli.video_io.hdr import Mastering, mastering_said

    def display(xy: list[float], unit: int) -> Mastering:
        q = [Fraction(round(v * unit), unit) for v in xy]
        return Mastering((q[0], q[1]), (q[2], q[3]), (q[4], q[5]), (q[6], q[7]), Fraction(1, 10000), Fraction(4000))

    p3 = [0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329]
    bt2020 = [0.708, 0.292, 0.17, 0.797, 0.131, 0.046, 0.3127, 0.329]
    assert [display(xy, unit).as_dict()["name"] for xy in (p3, bt2020) for unit in (65536, 50000)] == [
        "P3 D65", "P3 D65", "BT.2020", "BT.2020"]  # fmt: skip
    other = display([0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329], 50000).as_dict()
    assert (
        mastering_said(other)
        == "R 0.6400,0.3300 G 0.3000,0.6000 B 0.1500,0.0600 W 0.3127,0.3290 display, 0.0001-4000 cd/m²"
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def hdr_pngs(folder: Path) -> Path:
    """Two 32x24 16-bit PNGs that ffmpeg tags BT.2020/PQ with a cICP chunk, to which HDR10's static metadata
    is added as PNG's third edition stores it (after IHDR): mDCV, a P3 D65 display of 0.005-1000 cd/m² (R, G,
    B, white xy in 0.00002; max, min in 0.0001 cd/m²), and cLLI, MaxCLL 1000 and MaxFALL 400 (in 0.0001 cd/m²)."""
    folder.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25", "-frames:v", "2", "-vf",
           "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=gbr:range=pc,format=rgb48be",
           folder / "%02d.png")  # fmt: skip
    mdcv = struct.pack(">8H2I", 34000, 16000, 13250, 34500, 7500, 3000, 15635, 16450, 10_000_000, 50)
    clli = struct.pack(">2I", 1000 * 10000, 400 * 10000)
    for f in folder.glob("*.png"):
        data = f.read_bytes()
        f.write_bytes(data[:33] + _chunk(b"mDCV", mdcv) + _chunk(b"cLLI", clli) + data[33:])
    return folder / "%02d.png"


def test_a_png_tagged_hdr_by_its_cicp_is_read_as_a_videos_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """A 16-bit PNG sequence tagged BT.2020/PQ (cICP) with a mastering display (mDCV) and MaxCLL (cLLI)
    was read as untagged SDR: no HDR warning, an h264 output tagged BT.601, a PNG output without the
    chunks. Now its tags are a video's: `dove info` shows them, the warning is said (without a word on
    DOVE under bilinear), and video and PNG outputs keep the tags and the HDR10 metadata."""
    from dove_cli.options import UpscaleOptions
    from dove_cli.upscaling import probe_input

    src = hdr_pngs(tmp_path / "in")
    assert f"{P3_D65} min_luminance=0.005000" in showinfo_side_data(tmp_path / "in" / "01.png")  # (the test's chunks)
    code, out, err = run(["info", "--json", str(src)], capsys)
    assert code == 0, err
    images = json.loads(out)[0]["images"]
    assert (images["primaries"], images["transfer"], images["hdr"]) == ("bt2020", "smpte2084", "PQ")
    assert images["mastering_display"] == {"red": [0.68, 0.32], "green": [0.265, 0.69], "blue": [0.15, 0.06],
                                           "white": [0.3127, 0.329], "name": "P3 D65", "min_luminance": 0.005,
                                           "max_luminance": 1000.0}  # fmt: skip
    assert images["light_level"] == {"max_cll": 1000, "max_fall": 400}
    said = {m: [r.getMessage() for r in probe_input(src, UpscaleOptions(model=m))[1]] for m in ("bilinear", "tiny")}
    kept = "video outputs and PNG images keep the colour tags, other images do not"
    assert f"{src}: HDR images (PQ): PQ code values are upscaled as they are (no linearising, no tone mapping); {kept}" in (
        said["bilinear"]
    ), said  # fmt: skip
    assert (f"{src}: HDR images (PQ): PQ code values are upscaled as they are (no linearising, no tone mapping), and "
            "DOVE was trained on SDR (BT.709) video, so highlights and colours may come out altered: compare with the "
            f"source; {kept}") in said["tiny"], said  # fmt: skip
    with caplog.at_level(logging.WARNING):
        rewrite(src, tmp_path / "out.mkv")
        rewrite(src, tmp_path / "png" / "%02d.png")
    assert not [m for m in caplog.messages if "not kept" in m], caplog.messages
    assert "hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/smpte2084" in ffinfo(tmp_path / "out.mkv").video().text
    hevc = hdr10_fields(tmp_path / "out.mkv")  # (HEVC's SEI: G, B, R order)
    assert [hevc[f"display_primaries_{a}[{i}]"] for i in range(3) for a in "xy"] == [
        13250,
        34500,
        7500,
        3000,
        34000,
        16000,
    ]
    assert (hevc["max_display_mastering_luminance"], hevc["min_display_mastering_luminance"]) == (10_000_000, 50)
    assert (hevc["max_content_light_level"], hevc["max_pic_average_light_level"]) == (1000, 400)
    png = showinfo_side_data(tmp_path / "png" / "01.png")
    assert "color_primaries:bt2020 color_trc:smpte2084" in png, png
    assert f"{P3_D65} min_luminance=0.005000, max_luminance=1000.000000" in png, png
    assert "Content light level metadata: MaxCLL=1000, MaxFALL=400" in png, png


def test_untagged_color_declares_what_the_input_lacks_and_bt2020_rgb_gets_its_matrix(tmp_path: Path) -> None:
    """A TIFF sequence (no colour tags) could not be said to be PQ. --untagged-color bt2020-pq tags it, and
    its RGB becomes YUV by BT.2020's matrix (it was BT.601's, by the size): a flat colour's Y, Cb, Cr
    against BT.2020's equations. An untagged video gets the matrix too, unless --untagged-matrix names one;
    a tag the input has stays its own."""
    r, g, b = 0.8, 0.2, 0.1
    rgb = np.empty((24, 32, 3), "<u2")
    rgb[:] = [round(v * 65535) for v in (r, g, b)]
    (tmp_path / "flat.rgb").write_bytes(rgb.tobytes())
    (tmp_path / "in").mkdir()
    ffmpeg(
        "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "32x24", "-i", tmp_path / "flat.rgb", tmp_path / "in" / "01.tif"
    )
    src = tmp_path / "in" / "%02d.tif"
    out = tmp_path / "out.mkv"
    with open_reader(src, warn=False, untagged_color="bt2020-pq") as reader:
        with open_writer(out, reader.info, 32, 24, codec="ffv1", pix_fmt="yuv444p10le") as writer:
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
    assert "yuv444p10le(tv, bt2020nc/bt2020/smpte2084" in ffinfo(out).video().text
    raw = tmp_path / "out.yuv"
    ffmpeg("-i", out, "-f", "rawvideo", "-pix_fmt", "yuv444p10le", raw)
    y, cb, cr = np.frombuffer(raw.read_bytes(), "<u2").reshape(3, -1).mean(axis=1)
    kr, kb = 0.2627, 0.0593  # BT.2020's
    luma = kr * r + (1 - kr - kb) * g + kb * b
    want = (64 + 876 * luma, 512 + 896 * (b - luma) / (2 - 2 * kb), 512 + 896 * (r - luma) / (2 - 2 * kr))
    assert np.allclose((y, cb, cr), want, atol=1), ((y, cb, cr), want)
    with open_reader(src, warn=False) as reader:  # (none: as before)
        assert (reader.info.color_primaries, reader.info.color_trc) == (None, None)
    plain = make_clip(tmp_path / "plain.mkv", frames=1, pix_fmt="yuv420p10le")
    notrc = make_clip(tmp_path / "notrc.mkv", frames=1, pix_fmt="yuv420p10le",
                      vf="setparams=color_primaries=bt709:colorspace=bt709")  # fmt: skip
    for path, matrix, want_tags in (
        (plain, "auto", ("bt2020", "arib-std-b67", "bt2020nc")),
        (plain, "bt601", ("bt2020", "arib-std-b67", None)),
        (notrc, "auto", ("bt709", "arib-std-b67", "bt709")),
    ):
        with open_reader(path, warn=False, untagged_color="bt2020-hlg", untagged_matrix=matrix) as reader:
            i = reader.info
            assert (i.color_primaries, i.color_trc, i.colorspace) == want_tags, (path, matrix)


def test_colour_codec_options_are_refused(tmp_path: Path) -> None:
    """--codec-option color_primaries=bt2020 (and color_trc, colorspace) wrote a file whose HEVC VUI said
    BT.2020/PQ, its container BT.601, its pixels converted by BT.601: refused, naming the option to use."""
    from dove_cli.options import UpscaleOptions, check_options

    with pytest.raises(OptionError, match=r"^--codec-option colorspace: dove tags the output with the input's colour "
                       r"and converts its pixels to match .*--untagged-matrix"):  # fmt: skip
        check_options(UpscaleOptions(codec_options={"crf": "18", "colorspace": "bt2020nc"}))
    with pytest.raises(OptionError, match=r"^--codec-option color_trc: .*--untagged-color \(bt709, bt2020-pq"):
        check_options(UpscaleOptions(codec_options={"color_trc": "smpte2084"}))


def test_colour_keys_in_an_encoders_own_list_are_refused(tmp_path: Path) -> None:
    """The same tags set inside x264-params (or x264opts), x265-params or svtav1-params mis-tagged the output just as
    well: the ffmpeg binary shows each key writes its tag in the bitstream (primaries 9, transfer 16,
    matrix 9, full range), and each one is refused, naming the list and the key; HDR10's
    metadata keys (master-display, max-cll) stay allowed."""
    from dove_cli.options import UpscaleOptions, check_options

    lists = {
        ("libx264", "x264-params"): {"colorprim": "bt2020", "transfer": "smpte2084", "colormatrix": "bt2020nc",
                                     "fullrange": "on"},
        ("libx264", "x264opts"): {"colorprim": "bt2020", "transfer": "smpte2084", "colormatrix": "bt2020nc",
                                  "fullrange": "on"},
        ("libx265", "x265-params"): {"colorprim": "bt2020", "transfer": "smpte2084", "colormatrix": "bt2020nc",
                                     "range": "full"},
        ("libsvtav1", "svtav1-params"): {"color-primaries": "9", "transfer-characteristics": "16",
                                         "matrix-coefficients": "9", "color-range": "1"},
    }  # fmt: skip
    field = re.compile(r"\b(colou?r_primaries|transfer_characteristics|matrix_coefficients|video_full_range_flag|"
                       r"color_range) +[01]+ = (\d+)")  # fmt: skip
    for (encoder, name), keys in lists.items():
        params = ":".join(f"{k}={v}" for k, v in keys.items())
        err = ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1", "-c:v", encoder, f"-{name}", params,
                     "-bsf:v", "trace_headers", "-f", "null", "-").stderr  # fmt: skip
        assert sorted(int(v) for _, v in field.findall(err)) == [1, 9, 9, 16], (encoder, field.findall(err))
        for key, value in keys.items():
            with pytest.raises(OptionError, match=rf"^--codec-option {name} {key}: dove tags the output with"):
                check_options(UpscaleOptions(codec_options={name: f"preset=4:{key}={value}"}))
    check_options(UpscaleOptions(codec_options={"x265-params": f"master-display={MASTER}:max-cll=1000,400"}))


def test_an_8_bit_source_declared_hdr_is_written_at_10_bits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An 8-bit video given --untagged-color bt2020-hlg was written as HEVC Main (8-bit), where HDR bands:
    HDR gets the codec's 10-bit format unasked at any source depth; SDR stays 8-bit, and an 8-bit
    --pix-fmt asked for is written, with the warning."""
    src = make_clip(tmp_path / "eight.mkv", frames=2)
    for out, untagged, pix_fmt, want in (
        ("hlg.mkv", "bt2020-hlg", None, "hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67"),
        ("sdr.mkv", "none", None, "h264 (High), yuv420p("),
        ("hlg8.mkv", "bt2020-hlg", "yuv420p", "hevc (Main), yuv420p(tv, bt2020nc/bt2020/arib-std-b67"),
    ):
        with open_reader(src, warn=False, untagged_color=untagged) as reader:
            with open_writer(tmp_path / out, reader.info, 64, 48, pix_fmt=pix_fmt) as writer:
                for frame in reader:
                    writer.write(frame.rgb, frame.pts)
        assert want in ffinfo(tmp_path / out).video().text, (out, ffinfo(tmp_path / out).video().text)
    assert [m for m in caplog.messages if "8-bit" in m] == [
        f"{tmp_path / 'hlg8.mkv'}: the source is HDR (HLG) but the output (yuv420p) is 8-bit, where HDR bands "
        "badly; use --pix-fmt yuv420p10le"
    ]


def test_an_8_bit_hdr_run_hands_the_writer_16_bit_frames(tmp_path: Path, capsys) -> None:
    """The 10-bit output of an 8-bit HLG source gets the model's frames at 16 bits, not rounded to 8
    first: a ramp of one Y level per column (16..79: at most 75 levels of 8-bit RGB) upscaled 4x
    (bilinear, lossless ffv1) has more than twice as many 10-bit levels in a row as 8-bit frames could give."""
    src = make_clip(tmp_path / "ramp.mkv", frames=1, codec="ffv1", pix_fmt="yuv444p",
                    vf="format=yuv444p,geq=lum='16+X':cb=128:cr=128")  # fmt: skip
    out = tmp_path / "up.mkv"
    argv = ["upscale", str(src), "-o", str(out), "--model", "bilinear", "--untagged-color", "bt2020-hlg", "--codec",
            "ffv1", "-q"]  # fmt: skip
    assert run(argv, capsys)[0] == 0
    ffmpeg("-i", out, "-f", "rawvideo", "-pix_fmt", "yuv444p10le", tmp_path / "up.yuv")
    luma = np.frombuffer((tmp_path / "up.yuv").read_bytes(), "<u2").reshape(3, 192, 256)[0]
    assert len(np.unique(luma[96])) > 2 * 75, np.unique(luma[96])
