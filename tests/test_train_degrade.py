"""LQ synthesis: the draws land in the yaml ranges, ops really happen, seeds reproduce, sizes are /4."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import demo_clip
from dove_cli.errors import OptionError
from dove_cli.train import degrade as D


@pytest.fixture(scope="module")
def cfg_video():
    return D.load_degradation_config("video")


@pytest.fixture(scope="module")
def cfg_mixed():
    return D.load_degradation_config("image_video")


@pytest.fixture(scope="module")
def real_clip() -> np.ndarray:
    """10 frames x 96 x 128 of a real demo clip, uint8 [F, H, W, 3]."""
    import av

    with av.open(str(demo_clip("005.mp4"))) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(10), c.decode(video=0), strict=False)]
    return np.stack(frames)[:, :96, :128].copy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean()
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_configs_are_the_release_numbers(cfg_video, cfg_mixed):
    assert cfg_video["degradation_1"]["random_noise"]["params"]["gaussian_sigma"] == [1, 30]
    assert cfg_video["degradation_1"]["random_mpeg"]["params"]["bitrate"] == [1e4, 1e5]
    assert cfg_mixed["degradation_3"]["random_blur"]["params"]["kernel_list"] == ["sinc"]


@pytest.mark.parametrize("mode,name", [("video", "video"), ("video", "image_video"), ("image", "image_video")])
def test_output_is_a_quarter_and_in_range(mode, name, real_clip):
    cfg = D.load_degradation_config(name)
    clip = D.from_uint8(real_clip[: (1 if mode == "image" else 6)]) / 255
    lq, record = D.degrade(clip, cfg, np.random.default_rng(3), mode=mode)
    assert lq.shape == (clip.shape[0], 3, 96 // 4, 128 // 4)
    assert lq.dtype == torch.float32 and 0.0 <= lq.min() and lq.max() <= 1.0
    ops = [r["op"] for r in record]
    assert ops.count("jpeg") == 2
    assert ("video" in ops) == (mode == "video")
    assert record[-1]["op"] in ("blur", "video", "resize")


def test_seeded_and_reproducible(cfg_video, real_clip):
    clip = D.from_uint8(real_clip[:5]) / 255
    a, ra = D.degrade(clip, cfg_video, np.random.default_rng(7))
    b, rb = D.degrade(clip, cfg_video, np.random.default_rng(7))
    c, _ = D.degrade(clip, cfg_video, np.random.default_rng(8))
    assert torch.equal(a, b) and ra == rb
    assert not torch.equal(a, c)


def test_recorded_draws_stay_in_the_configured_ranges(cfg_video):
    clip = torch.rand(3, 3, 64, 64)
    d1 = cfg_video["degradation_1"]
    seen_codecs, seen_kernels = set(), set()
    for seed in range(12):
        _, record = D.degrade(clip, cfg_video, np.random.default_rng(seed))
        for r in record:
            if r["op"] == "noise" and r["type"] == "gaussian":
                assert 1 <= r["sigma"] <= 30
            if r["op"] == "noise" and r["type"] == "poisson":
                assert 0.05 <= r["scale"] <= 3
            if r["op"] == "jpeg":
                assert all(30 <= q <= 95 for q in r["quality"])
                assert all(abs(a - b) <= 3 for a, b in zip(r["quality"], r["quality"][1:], strict=False))
            if r["op"] == "video":
                assert 1e4 <= r["bitrate"] <= 1e5 and r["frames"] == 3
                seen_codecs.add(r["codec"])
            if r["op"] == "blur":
                assert r["size"] in d1["random_blur"]["params"]["kernel_size"]
                seen_kernels.add(r["kernel"])
                if "sigma_x" in r:
                    assert 0.2 <= r["sigma_x"] <= 3 and 0.2 <= r["sigma_y"] <= 3
                if "omega" in r:
                    assert np.pi / 5 - 1e-9 <= r["omega"] <= np.pi + 1e-9
    assert len(seen_codecs) >= 2 and "sinc" in seen_kernels and "iso" in seen_kernels


def test_gaussian_noise_sigma_measured_from_output(cfg_video):
    """On a flat grey clip the output std (8-bit units) is the recorded sigma, inside [1, 30]."""
    params = {**cfg_video["degradation_1"]["random_noise"]["params"], "noise_prob": [1.0, 0.0]}
    flat = torch.full((4, 3, 96, 96), 128.0)
    for seed in range(10):
        record: list = []
        out = D.random_noise(flat, params, np.random.default_rng(seed), record)
        measured = float((out - flat).std())
        assert 1 <= record[0]["sigma"] <= 30
        assert measured == pytest.approx(record[0]["sigma"], rel=0.03)
        grey_diff = float((out[:, 0] - out[:, 1]).abs().max())
        assert (grey_diff == 0.0) == record[0]["gray"]


def test_poisson_noise_is_signal_dependent(cfg_video):
    params = {**cfg_video["degradation_1"]["random_noise"]["params"], "noise_prob": [0.0, 1.0]}
    ramp = torch.linspace(0, 255, 64).round().view(1, 1, 1, 64).expand(8, 3, 64, 64).contiguous()
    record: list = []
    out = D.random_noise(ramp, params, np.random.default_rng(0), record)
    diff = (out - ramp) / record[0]["scale"]
    dark, bright = float(diff[..., :8].var()), float(diff[..., -8:].var())
    assert bright > 5 * dark  # variance grows with intensity (Poisson), unlike Gaussian noise


def _jpeg_quality_from_bytes(data: bytes) -> int:
    """Invert libjpeg's quality scaling of the standard luminance table (measured from the file)."""
    from PIL import Image

    table = np.array(Image.open(io.BytesIO(data)).quantization[0], dtype=np.int64)
    base = np.array(
        [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
         29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
         121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
    )  # fmt: skip
    zigzag = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
              14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
              46, 53, 60, 61, 54, 47, 55, 62, 63]  # fmt: skip
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        expect = np.clip((base * scale + 50) // 100, 1, 255)
        if np.array_equal(np.sort(expect), np.sort(table)) and (
            np.array_equal(expect, table) or np.array_equal(expect[zigzag], table)
        ):
            return q
    raise AssertionError("not a libjpeg standard table")


def test_jpeg_quality_lands_in_range_and_is_applied(cfg_video, real_clip):
    params = cfg_video["degradation_1"]["random_jpeg"]["params"]
    clip = D.from_uint8(real_clip[:4])
    for seed in range(6):
        record: list = []
        out = D.random_jpeg(clip, params, np.random.default_rng(seed), record)
        for i, q in enumerate(record[0]["quality"]):
            assert 30 <= q <= 95
            data = D.jpeg_bytes(real_clip[i], q)
            assert _jpeg_quality_from_bytes(data) == q  # the file really carries that quality
            ref = D.jpeg_roundtrip(real_clip[i], q)
            assert np.array_equal(D.to_uint8(out[i : i + 1])[0], ref)
            assert 25 < _psnr(ref, real_clip[i]) < 48


def test_video_codec_round_trip_really_compresses(real_clip):
    low, n_low = D.video_roundtrip(real_clip, "libx264", 10_000)
    high, n_high = D.video_roundtrip(real_clip, "libx264", 100_000)
    assert low.shape == real_clip.shape and low.dtype == np.uint8
    assert not np.array_equal(low, real_clip)
    # rate control hits the target (1 frame/s: bitrate = bits per frame) and quality follows the rate
    assert 0.6 < n_low * 8 / len(real_clip) / 10_000 < 1.6
    assert n_high > 2 * n_low
    assert 28 < _psnr(low, real_clip) < _psnr(high, real_clip) < 55
    for codec in ("h264", "mpeg4"):
        out, nbytes = D.video_roundtrip(real_clip[:, :95, :127], codec, 20_000)  # odd sizes pad + crop
        assert out.shape == (10, 95, 127, 3) and nbytes > 0 and 25 < _psnr(out, real_clip[:, :95, :127]) < 55


def test_kernels_are_normalised_and_shaped():
    k = D.gaussian_kernel(21, 3.0, 1.0, 0.5)
    assert k.shape == (21, 21) and k.sum() == pytest.approx(1.0)
    assert np.allclose(k, k[::-1, ::-1])
    s = D.sinc_kernel(13, np.pi / 3)
    assert s.sum() == pytest.approx(1.0) and s.min() < 0  # ringing lobes
    p = D.plateau_kernel(15, 2.0, 2.0, 0.0, 2.0)
    assert p[7, 7] == p.max()
    # FFT filtering equals direct correlation with a reflect-101 border
    x = torch.rand(2, 3, 40, 50) * 255
    ref = F.conv2d(
        F.pad(x.reshape(6, 1, 40, 50), (10,) * 4, mode="reflect"), torch.tensor(k, dtype=torch.float32)[None, None]
    )
    assert torch.allclose(D.filter2d(x, k), ref.reshape(2, 3, 40, 50), atol=1e-3)


def test_intermediate_geometry_and_aligned_pair(cfg_video, real_clip):
    assert D.intermediate_size((25, 320, 640)) == (35, 480, 960)  # the release for HQ-VSR lists: 25 + 10
    assert D.intermediate_size((2, 320, 640)) == (12, 480, 960)
    assert D.intermediate_size((25, 320, 640), max_frames=30) == (30, 480, 960)  # its YouHQ cap
    assert D.intermediate_size((33, 64, 64), max_frames=30) == (33, 96, 96)
    rng = np.random.default_rng(0)
    assert D.plan_intermediate((4, 500, 500), (5, 64, 64), rng) is None
    plan = D.plan_intermediate((100, 90, 130), (5, 64, 64), rng)
    assert plan.frames == 15 and plan.height == 88 and plan.width == 96

    hq = torch.rand(15, 3, 96, 96)
    lq = F.avg_pool2d(hq, 4)
    hq_c, lq_c = D.paired_crop(hq, lq, (5, 64, 64), np.random.default_rng(1))
    assert hq_c.shape == (5, 3, 64, 64) and lq_c.shape == (5, 3, 16, 16)
    assert torch.allclose(F.avg_pool2d(hq_c, 4), lq_c)

    inter = D.from_uint8(real_clip[:, :96, :96]) / 255
    hq_p, lq_p, record = D.make_pair(inter, (5, 64, 64), cfg_video, np.random.default_rng(2))
    assert hq_p.shape == (5, 3, 64, 64) and lq_p.shape == (5, 3, 16, 16)
    assert any(r["op"] == "resize" and r["size"] == (24, 24) for r in record)


# ---------------------------------------------------------------------------- the release's OpenCV behaviour


def _cv2():
    return pytest.importorskip("cv2", reason="opencv-python-headless is the reference for these checks")


@pytest.mark.parametrize("size", [(20, 31), (12, 17), (7, 8), (50, 71), (74, 106), (37, 80), (18, 53)])
def test_area_resize_is_opencv_inter_area(size):
    """Shrinking by non-integer factors (fractional box weights), growing (pixel-area interpolation)
    and one side kept: the same numbers as cv2.resize(INTER_AREA), not adaptive average pooling."""
    cv2 = _cv2()
    img = np.random.default_rng(0).uniform(0, 255, (37, 53, 3)).astype(np.float32)
    ref = cv2.resize(img, size[::-1], interpolation=cv2.INTER_AREA)
    out = D.resize(torch.from_numpy(img).permute(2, 0, 1)[None], size, "area")[0].permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 1e-3


def test_jpeg_is_the_release_opencv_jpeg(real_clip):
    """The release JPEG-compresses RGB frames with cv2 (which reads them as BGR): bit-exact here."""
    cv2 = _cv2()
    for q in (30, 61, 95):
        _, enc = cv2.imencode(".jpg", real_clip[0], [int(cv2.IMWRITE_JPEG_QUALITY), q])
        assert np.array_equal(D.jpeg_roundtrip(real_clip[0], q), cv2.imdecode(enc, 1))


def test_blur_of_8bit_frames_is_opencv_filter2d(real_clip):
    cv2 = _cv2()
    img = real_clip[0]
    for k in (
        D.gaussian_kernel(21, 2.0, 1.0, 0.3, 0.7),
        D.sinc_kernel(9, 2.0),
        D.plateau_kernel(13, 1.5, 2.5, 1.0, 1.5),
    ):
        ref = cv2.filter2D(img, -1, k)
        out = D.to_uint8(D.saturate_u8(D.filter2d(D.from_uint8(img[None]), k)))[0]
        diff = np.abs(ref.astype(int) - out)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_8bit_until_noise_then_float_and_jpeg_truncates(cfg_video, real_clip):
    """Blur and resize of 8-bit frames round and saturate (cv2 keeps uint8); without noise and codec
    every step stays 8-bit, so the LQ is whole levels; JPEG truncates a float input (astype)."""
    quiet = {k: dict(v) for k, v in cfg_video.items()}
    for section in ("degradation_1", "degradation_2"):
        quiet[section] = {**quiet[section], "random_noise": {"params": {"prob": 0.0}}}
    quiet["degradation_1"].pop("random_mpeg")
    clip = D.from_uint8(real_clip[:3]) / 255
    for seed in range(3):
        lq, record = D.degrade(clip, quiet, np.random.default_rng(seed), mode="image")
        assert {r["op"] for r in record} >= {"blur", "resize", "jpeg"}
        levels = lq * 255
        assert (levels - levels.round()).abs().max() < 1e-3
    x = D.from_uint8(real_clip[:1]) + 0.7  # float values just under the next level
    record: list = []
    out = D.random_jpeg(x, {"quality": [50, 50]}, np.random.default_rng(0), record)
    assert np.array_equal(D.to_uint8(out)[0], D.jpeg_roundtrip(real_clip[0], 50))


def test_generalized_and_plateau_betas_are_drawn_per_frame():
    params = {"kernel_list": ["generalized_aniso", "plateau_iso"], "kernel_prob": [0.5, 0.5], "kernel_size": [9],
              "sigma_x": [0.5, 2], "sigma_y": [0.5, 2], "beta_gaussian": [0.5, 4], "beta_plateau": [1, 2]}  # fmt: skip
    seen = set()
    for seed in range(8):
        kernels, info = D.draw_kernel(params, np.random.default_rng(seed), frames=6)
        seen.add(info["kernel"])
        lo, hi = sorted((1.0, info["beta"]))
        assert len(kernels) == 6 and all(lo <= b <= hi for b in info["frame_betas"])
        assert len(set(info["frame_betas"])) == 6 and not np.allclose(kernels[0], kernels[1])
    assert seen == {"generalized_aniso", "plateau_iso"}
    kernels, _ = D.draw_kernel({**params, "kernel_list": ["aniso"], "kernel_prob": [1]}, np.random.default_rng(0), 3)
    assert kernels[0] is kernels[1] is kernels[2]  # other kernels: one per clip


def test_odd_frames_are_padded_by_repeating_the_edge():
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    padded = D.pad_even(frames)
    assert padded.shape == (2, 6, 8, 3)
    assert np.array_equal(padded[:, 5, :7], frames[:, 4]) and np.array_equal(padded[:, :5, 7], frames[:, :, 6])


# ---------------------------------------------------------------------------- checking a config when loaded


def _shipped_text(name: str = "video") -> str:
    from importlib import resources

    return (resources.files("dove_cli.train") / "configs" / D.CONFIGS[name]).read_text()


def test_the_shipped_configs_and_the_authors_originals_pass_the_check(tmp_path):
    """The release's own yamls (copied with one comment line added) are accepted as they are."""
    for name in D.CONFIGS:
        D.load_degradation_config(name)
        original = tmp_path / D.CONFIGS[name]  # the authors' file: the shipped one less the provenance line
        original.write_text(_shipped_text(name).split("\n", 1)[1])
        assert D.load_degradation_config(original) == D.load_degradation_config(name)


J1 = "degradation_1.random_jpeg.params.quality"


@pytest.mark.parametrize(
    "old,new,said",
    [
        ("'iso', 'aniso',", "'iso', 'anisoo',",
         "degradation_1.random_blur.params.kernel_list: unknown 'anisoo' (did you mean aniso?)"),
        ("kernel_prob: [ 0.405,", "kernel_prob: [ 0.9,",
         "degradation_1.random_blur.params.kernel_prob: [0.9, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1] sums to 1.495, not 1"),
        ("gaussian_sigma: [ 1, 30 ]", "gaussian_sigma: [ 30, 1 ]",
         "degradation_1.random_noise.params.gaussian_sigma: [30, 1] is reversed (low > high)"),
        ("gaussian_sigma: [ 1, 30 ]", "gaussian_sigma: [ -1, 30 ]",
         "degradation_1.random_noise.params.gaussian_sigma: -1 is below 0"),
        ("sigma_x: [ 0.2, 3 ]", "sigma_x: [ 0, 3 ]", "degradation_1.random_blur.params.sigma_x: 0 is not above 0"),
        ("quality: [ 30, 95 ]", "quality: [ 30, 101 ]", f"{J1}: 101 is above 100"),
        ("quality: [ 30, 95 ]", "quality: [ 0, 95 ]", f"{J1}: 0 is below 1"),
        ("  random_noise:", "  random_noize:", "degradation_1: unknown key 'random_noize' (did you mean random_noise?)"),
        ("      noise_prob: [ 0.5, 0.5 ]\n", "", "degradation_1.random_noise.params: missing noise_prob"),
        ("'libx264', 'h264', 'mpeg4'", "'libx264', 'h264', 'mpeg5'",
         "degradation_1.random_mpeg.params.codec: 'mpeg5' is not a video encoder of this FFmpeg"),
        ("bitrate: [ !!float 1e4,", "bitrate: [ 1e4,",
         "degradation_1.random_mpeg.params.bitrate: '1e4' is not a number (YAML reads 1e4 as text: write 1.0e4)"),
        ("sigma_x_step: 0", "sigma_x_step: 0.5",
         "degradation_1.random_blur.params.sigma_x_step: 0.5: only 0 is supported (one draw per clip, as the release)"),
        ("kernel_list: ['sinc']", "kernel_list: ['sinc', 'iso']", "degradation_2.degradation_with_shuffle."
         "degradations.RandomBlur.params.kernel_prob: expected 2 probabilities, one per kernel_list entry, got [1]"),
        ("type: RandomResize", "type: RandomResise", "degradation_2.degradation_with_shuffle.degradations: unknown step"),
        ("random_blur:\n    params:", "random_blur: [unclosed\n    params:", "not valid YAML"),
    ],
)  # fmt: skip
def test_config_mistakes_are_one_line_naming_the_file_and_key(old, new, said, tmp_path):
    text = _shipped_text()
    assert old in text
    path = tmp_path / "deg.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(OptionError) as err:
        D.load_degradation_config(path)
    assert str(err.value).startswith(f"{path}: {said}") and "\n" not in str(err.value)


def test_image_mode_uses_the_image_step_and_no_codec(tmp_path):
    """`dove degrade` on an image does what training does to an --images file: image mode, stage 2's config."""
    from PIL import Image

    src = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(src)
    for seed in range(4):
        record = D.degrade_file(src, tmp_path / f"lq{seed}.png", seed=seed)
        assert not any(r["op"] == "video" for r in record)
        assert Image.open(tmp_path / f"lq{seed}.png").size == (24, 16)
        rng = np.random.default_rng(seed)
        clip = D.from_uint8(np.asarray(Image.open(src))[None]) / 255.0
        _, expect = D.degrade(clip, D.load_degradation_config("image_video"), rng, mode="image")
        assert record == expect  # the same draws as training's image mode


def test_degrade_file_writes_the_lq_training_makes_and_says_a_cut(tmp_path, caplog):
    """`dove degrade` shows what training sees: the in-memory LQ (same seed, as `make_pair` degrades)
    rounded to 8 bits, exact in an .mkv (FFV1 RGB), in an .mp4 lossless H.264 4:4:4 but for its RGB ->
    YUV rounding; 66x50 is cut to 64x48 from the top-left, and said. Read back by the ffmpeg binary."""
    from media import ffinfo, ffmpeg, ffmpeg_frames

    src = tmp_path / "hq.mkv"
    ffmpeg("-i", demo_clip("005.mp4"), "-frames:v", 3, "-vf", "crop=66:50", "-c:v", "ffv1", "-pix_fmt", "bgr0", src)
    lq, _ = D.degrade(
        D.from_uint8(ffmpeg_frames(src, 66, 50)[:, :48, :64]) / 255.0,
        D.load_degradation_config("video"),
        np.random.default_rng(3),
        out_size=(12, 16),
    )
    lq = lq.permute(0, 2, 3, 1).numpy() * 255.0  # [F, H, W, 3], 0-255
    expect = np.clip(np.floor(lq + 0.5), 0, 255).astype(np.uint8)
    with caplog.at_level("WARNING"):
        D.degrade_file(src, tmp_path / "lq.mkv", seed=3)
    assert "hq.mkv: 66x50 -> 16x12 (HQ 64x48 from the top-left" in caplog.text
    assert np.array_equal(ffmpeg_frames(tmp_path / "lq.mkv", 16, 12), expect)
    D.degrade_file(src, tmp_path / "lq.mp4", seed=3)
    got = ffmpeg_frames(tmp_path / "lq.mp4", 16, 12).astype(int)
    assert "High 4:4:4" in ffinfo(tmp_path / "lq.mp4").video().text and b"qp=0" in (tmp_path / "lq.mp4").read_bytes()
    assert np.abs(got - lq).max() <= 3 and np.abs(got - lq).mean() < 0.75  # measured 2.5, 0.55


def test_degrade_says_an_images_transparency_is_dropped(tmp_path, caplog):
    """As `dove upscale` and training read it (the colours stored under the alpha), and said once."""
    from PIL import Image

    rgba = np.full((32, 32, 4), 255, np.uint8)
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    rgba[:8, :8, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "see.png")
    with caplog.at_level("WARNING"):
        D.degrade_file(tmp_path / "opaque.png", tmp_path / "lq1.png", seed=1)
        assert "alpha" not in caplog.text
        D.degrade_file(tmp_path / "see.png", tmp_path / "lq2.png", seed=1)
    said = [r.getMessage() for r in caplog.records if "alpha" in r.getMessage()]
    assert said == [f"{tmp_path / 'see.png'}: the alpha channel is dropped: the colours stored under it are degraded "
                    "(as training and `dove upscale` read them)"]  # fmt: skip


def test_degrade_frames_and_seed_are_option_errors(tmp_path):
    clip = demo_clip("005.mp4")
    with pytest.raises(OptionError, match="^--frames must be >= 1, got 0$"):
        D.degrade_file(clip, tmp_path / "lq.mp4", max_frames=0)
    with pytest.raises(OptionError, match=r"^--seed must be in \[0, 4294967295\], got -1$"):
        D.degrade_file(clip, tmp_path / "lq.mp4", seed=-1)


def test_kernels_restated_in_rotated_coordinates():
    """BasicSR's kernels written out: u, v are x, y turned by -theta (x to the right, y down the
    rows), q = (u / sx)^2 + (v / sy)^2; Gaussian exp(-q^beta / 2), plateau 1 / (1 + q^beta); the
    sinc kernel omega J1(omega r) / (2 pi r) with its limit omega^2 / (4 pi) at the centre (scipy's J1)."""
    from scipy.special import j1

    ax = np.arange(-3, 4, dtype=np.float64)
    x, y = np.meshgrid(ax, ax)
    theta, sx, sy, beta = np.pi / 5, 2.5, 1.0, 1.5
    u, v = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    q = (u / sx) ** 2 + (v / sy) ** 2
    for got, want in (
        (D.gaussian_kernel(7, sx, sy, theta, beta), np.exp(-0.5 * q**beta)),
        (D.plateau_kernel(7, sx, sy, theta, beta), 1 / (1 + q**beta)),
    ):
        np.testing.assert_allclose(got, want / want.sum(), rtol=1e-9)
    omega, r = 1.3, np.hypot(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = omega * j1(omega * r) / (2 * np.pi * r)
    want[3, 3] = omega**2 / (4 * np.pi)
    np.testing.assert_allclose(D.sinc_kernel(7, omega), want / want.sum(), rtol=1e-6)


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_degrade_keeps_the_sources_frame_times_and_rotation_tag(tmp_path, ext):
    """The LQ plays beside its source: a variable-rate clip's frame times are kept (not spread evenly at the
    average rate) and a display matrix stays a tag on the stored pixels (as `dove upscale --rotate keep`
    writes it), read back by the ffmpeg binary."""
    from media import ffinfo, ffmpeg, frame_times, make_vfr_clip

    vfr = make_vfr_clip(tmp_path / "vfr.mp4", frames=6)
    D.degrade_file(vfr, tmp_path / f"lq_vfr{ext}", seed=1)
    assert frame_times(tmp_path / f"lq_vfr{ext}") == frame_times(vfr)  # 0, 21, 43, 66, 90, 115 ms
    turned = tmp_path / "turned.mp4"
    ffmpeg("-display_rotation", 90, "-i", vfr, "-c", "copy", turned)
    D.degrade_file(turned, tmp_path / f"lq_turned{ext}", seed=1)
    lq = ffinfo(tmp_path / f"lq_turned{ext}")
    assert "16x12" in lq.video().text and "rotation of 90.00 degrees" in lq.stderr
    assert "rotation of 90.00 degrees" in ffinfo(turned).stderr  # (the source's, as the binary says it)


def test_degrade_to_images_says_the_rotation_tag_is_not_kept(tmp_path, caplog):
    from media import ffmpeg, make_clip

    turned = tmp_path / "turned.mp4"
    ffmpeg("-display_rotation", 90, "-i", make_clip(tmp_path / "c.mp4", frames=2), "-c", "copy", turned)
    with caplog.at_level("WARNING"):
        D.degrade_file(turned, tmp_path / "%02d.png", seed=1)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / '%02d.png'}: images cannot carry the rotation tag of {turned}; they are stored as decoded "
        "(as training reads them)"
    ]
