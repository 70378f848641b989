"""`dove upscale --parity` against the authors' `inference_script.py`, re-derived here.

The reference below is written from their script's behaviour (docs/SPEC.md 1.1 and 1.2) in plain
torch on the same tiny model's VAE, transformer and scheduler: the whole video padded (time to
8k+1 with the last frame, LQ zero-padded right/bottom to multiples of 16), upsampled, cut into
their chunks and tiles, each window through one step, only each window's valid region written
(write counts checked), cropped, and cast to 8 bits by truncation. None of dove's functions is
used for it. Inputs are PNG sequences, so both sides read the same RGB values.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_3d_rotary_pos_embed

from conftest import demo_clip
from dove_cli.engine import build_random
from dove_cli.upscaling import upscale
from media import ffmpeg, ffmpeg_frames, make_clip, psnr

# ------------------------------------------------------------------ the authors' computation


def their_chunks(frames: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Temporal chunks: starts every chunk - overlap below frames - overlap; a short last one joins
    the one before."""
    if chunk == 0:
        return [(0, frames)]
    out = []
    t = 0
    while t < frames - overlap:
        out.append((t, min(t + chunk, frames)))
        t += chunk - overlap
    if out[-1][0] + chunk < frames:
        out.append((frames - chunk, frames))
    if len(out) > 1 and out[-1][1] - out[-1][0] < chunk:
        last = out.pop()
        out[-1] = (out[-1][0], last[1])
    return out


def their_tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Tiles along one axis: the same starts; an overhanging last start is dropped and the tile
    that then ends last is stretched to the edge."""
    if tile == 0:
        return [(0, length)]
    stride = tile - overlap
    starts = list(range(0, length - overlap, stride))
    if not starts or starts[-1] + tile < length:
        starts.append(length - tile)
    if len(starts) > 1 and starts[-1] + tile > length:
        starts = starts[:-1]
    out = []
    for s in starts:
        e = min(s + tile, length)
        out.append((s, length if e + stride > length else e))
    return out


def their_window(model, video: torch.Tensor) -> torch.Tensor:
    """`process_video` on one window, posterior mode: [1, 3, F, H, W] in [-1, 1] -> [0, 1]. model
    "bilinear": dove's --model bilinear, the input mapped back (their last line), to check the
    upsampling, layout and crop alone."""
    if model == "bilinear":
        return (video * 0.5 + 0.5).clamp(0.0, 1.0)
    vae, transformer, scheduler = model.vae, model.transformer, model.scheduler
    latent = vae.encode(video).latent_dist.mode() * vae.config.scaling_factor
    p_t = transformer.config.patch_size_t
    ncopy = latent.shape[2] % p_t
    latent = torch.cat([latent[:, :, :1].repeat(1, 1, ncopy, 1, 1), latent], dim=2)
    b, _, f, h, w = latent.shape
    text = model.prompt_embedding[None].to(latent.dtype)
    latent = latent.permute(0, 2, 1, 3, 4)
    t = torch.full((b,), 399, dtype=torch.long)
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    p = transformer.config.patch_size
    grid = (h * vae_scale // (vae_scale * p), w * vae_scale // (vae_scale * p))
    rope = get_3d_rotary_pos_embed(
        transformer.config.attention_head_dim, None, grid, (f + p_t - 1) // p_t, grid_type="slice", max_size=grid
    )
    v = transformer(hidden_states=latent, encoder_hidden_states=text, timestep=t, image_rotary_emb=rope,
                    return_dict=False)[0]  # fmt: skip
    z = scheduler.get_velocity(v, latent, t)[:, ncopy:]
    z = 1 / vae.config.scaling_factor * z.permute(0, 2, 1, 3, 4)
    return (vae.decode(z).sample * 0.5 + 0.5).clamp(0.0, 1.0)


@torch.no_grad()
def their_script(model, lq: np.ndarray, *, chunk=0, overlap_t=8, tile=0, overlap_hw=32, scale=4) -> np.ndarray:
    """Their main loop for one video: lq [F, h, w, 3] uint8 -> [F, H, W, 3] uint8: the whole video
    upsampled on the CPU, and 4 x the padding cropped whatever the scale (s h x s w at x4)."""
    frames = torch.from_numpy(lq.copy())
    n, h, w, _ = frames.shape
    pad_f = (8 - (n - 1) % 8) % 8
    frames = torch.cat([frames, frames[-1:].repeat(pad_f, 1, 1, 1)])
    pad_h, pad_w = (16 - h % 16) % 16, (16 - w % 16) % 16
    frames = F.pad(frames, (0, 0, 0, pad_w, 0, pad_h))  # [F, H, W, C]: right and bottom
    x = frames.float().permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(x.shape[2] * scale, x.shape[3] * scale), mode="bilinear", align_corners=False)
    video = (x / 255.0 * 2.0 - 1.0)[None].permute(0, 2, 1, 3, 4).contiguous()  # [1, 3, F, H, W]
    _, _, ft, ht, wt = video.shape
    overlap_t = overlap_t if chunk else 0
    overlap_hw = overlap_hw if tile else 0
    out = torch.zeros_like(video)
    count = torch.zeros(ft, ht, wt, dtype=torch.int)
    half_t, half_s = overlap_t // 2, overlap_hw // 2
    for t0, t1 in their_chunks(ft, chunk, overlap_t):
        for y0, y1 in their_tiles(ht, tile, overlap_hw):
            for x0, x1 in their_tiles(wt, tile, overlap_hw):
                res = their_window(model, video[:, :, t0:t1, y0:y1, x0:x1])
                # valid region: half the overlap off each inner side
                a = (0 if t0 == 0 else half_t, (t1 - t0) if t1 == ft else (t1 - t0) - half_t)
                b = (0 if y0 == 0 else half_s, (y1 - y0) if y1 == ht else (y1 - y0) - half_s)
                c = (0 if x0 == 0 else half_s, (x1 - x0) if x1 == wt else (x1 - x0) - half_s)
                out[:, :, t0 + a[0] : t0 + a[1], y0 + b[0] : y0 + b[1], x0 + c[0] : x0 + c[1]] = res[
                    :, :, a[0] : a[1], b[0] : b[1], c[0] : c[1]
                ]
                count[t0 + a[0] : t0 + a[1], y0 + b[0] : y0 + b[1], x0 + c[0] : x0 + c[1]] += 1
    assert (count == 1).all(), "their script stops on this layout"
    out = out[:, :, :n, : ht - 4 * pad_h, : wt - 4 * pad_w]  # as for x4, whatever the scale
    return (out[0].permute(1, 2, 3, 0) * 255).clamp(0, 255).to(torch.uint8).numpy()


# ------------------------------------------------------------------ inputs and dove's side


def png_clip(folder: Path, source: Path, size: str, frames: int) -> Path:
    """The first frames of a demo clip, scaled to `size`, as a PNG sequence (exact RGB both ways)."""
    folder.mkdir(parents=True, exist_ok=True)
    ffmpeg("-i", source, "-frames:v", frames, "-vf", f"scale={size.replace('x', ':')}", folder / "%06d.png")
    return folder / "%06d.png"


def read_pngs(pattern: Path, width: int, height: int) -> np.ndarray:
    return ffmpeg_frames(pattern, width, height)


@pytest.fixture(scope="module")
def release_model():
    """The tiny model as their script sets it up with --is_vae_st (same weights as dove's --model tiny)."""
    model = build_random("tiny", seed=0, posterior="mode")
    model.vae.enable_slicing()
    model.vae.enable_tiling()
    return model


def dove_parity(src: Path, out_dir: Path, model: str = "tiny", **opts) -> np.ndarray:
    out_dir.mkdir(parents=True, exist_ok=True)
    upscale(src, out_dir / "%06d.png", model=model, parity=True, posterior="mode", device="cpu", **opts)
    first = sorted(out_dir.glob("*.png"))[0]
    data = first.read_bytes()[16:24]
    w, h = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")
    return read_pngs(out_dir / "%06d.png", w, h)


CASES = [  # (LQ size, frames, dove options): the whole video, and their tiles and chunks
    ("40x24", 6, {}),
    ("40x24", 13, dict(tile=64, tile_overlap=16, chunk=8, chunk_overlap=4)),  # 2 x 3 tiles (stretched), 3 chunks
    ("50x30", 6, {}),
    # 160x80 -> 640x320, past the VAE's 360x240 sample tiles (diffusers' defaults) both ways: it tiles
    # internally (2 x 3 of them); 1280x768 (from 318x180) took 6 times the time for the same path
    ("158x78", 1, {}),
    ("158x78", 1, dict(tile=320)),  # a 320x320 and a stretched 352x320 tile (width x height), each VAE-tiled
    ("50x30", 6, dict(scale=1)),  # x1 (RealVSR, MVSR4x): padded to 64x32, 4 x the padding cropped: 8x24
]
SLOW = os.environ.get("DOVE_SLOW_TESTS") == "1"  # minutes on a 2-core CPU
SLOW_CASES = [  # (the 50x30 layout, tile 96 with the default overlap, is checked byte for byte with the
    # bilinear model below: 2.5 min of the tiny model here was the suite's longest test after 40x24's)
    ("50x30", 13, dict(tile=96, chunk=8, chunk_overlap=4)),  # 1 x 3 tiles, 3 chunks (8, 8, 9 frames)
    ("318x180", 6, {}),
    ("318x180", 13, dict(tile=512, chunk=8, chunk_overlap=4)),
]


@pytest.mark.parametrize(
    "size,frames,opts",
    CASES + [pytest.param(*c, marks=pytest.mark.skipif(not SLOW, reason="DOVE_SLOW_TESTS=1")) for c in SLOW_CASES],
    ids=[f"{s}-{n}f-{'tiled' if 'tile' in o else 'whole'}-x{o.get('scale', 4)}" for s, n, o in CASES + SLOW_CASES],
)
def test_parity_equals_the_authors_script(tmp_path, release_model, size, frames, opts):
    w, h = map(int, size.split("x"))
    src = png_clip(tmp_path / "in", demo_clip("002.mp4"), size, frames)
    lq = read_pngs(src, w, h)
    got = dove_parity(src, tmp_path / "out", **opts)
    ref = their_script(release_model, lq, chunk=opts.get("chunk", 0), overlap_t=opts.get("chunk_overlap", 8),
                       tile=opts.get("tile", 0), overlap_hw=opts.get("tile_overlap", 32), scale=opts.get("scale", 4))  # fmt: skip
    assert got.shape == ref.shape == (frames, *their_size(h, w, opts.get("scale", 4)), 3)
    diff = np.abs(got.astype(int) - ref.astype(int))
    print(f"{size} {opts}: max {diff.max()} levels, {psnr(got, ref):.1f} dB, {(diff > 0).mean():.2e} differ")
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def their_size(h: int, w: int, scale: int) -> tuple[int, int]:
    """Their output's (height, width): the LQ padded to multiples of 16, x scale, less 4 x the padding."""
    ph, pw = -h % 16, -w % 16
    return scale * (h + ph) - 4 * ph, scale * (w + pw) - 4 * pw


@pytest.mark.parametrize(
    "size,scale,tile",
    [("64x48", 3, 96), ("64x48", 5, 96), ("50x30", 1, 0), ("50x30", 6, 96), ("50x30", 2, 64)],
)
def test_parity_is_their_upsampling_layout_and_crop_at_every_scale(tmp_path, caplog, size, scale, tile):
    """--model bilinear (the model input mapped back): the upsampling, tiles and crop alone, byte for
    byte. Tiles at x3 and x5 are cut from the whole frame's upsampling as theirs are (a tile's own crop
    upsampled rounds its coordinates otherwise: 3,166 of 746,496 values 1 level off at x3 here), and at a
    scale other than 4 with padding (50x30 -> 64x32) the output has their size, 4 x the padding off, said
    in one warning; --compare puts the input beside it at that size."""
    w, h = map(int, size.split("x"))
    src = png_clip(tmp_path / "in", demo_clip("002.mp4"), size, 9)
    with caplog.at_level(logging.WARNING):
        got = dove_parity(src, tmp_path / "out", model="bilinear", scale=scale, tile=tile)
    ref = their_script("bilinear", read_pngs(src, w, h), tile=tile, scale=scale)
    oh, ow = their_size(h, w, scale)
    assert got.shape == ref.shape == (9, oh, ow, 3)
    assert np.array_equal(got, ref), f"{int((got != ref).sum())} of {got.size} values differ"
    said = [r.getMessage() for r in caplog.records if "the output is" in r.getMessage()]
    expected = [] if (oh, ow) == (h * scale, w * scale) else [f"--parity --scale {scale}: the output is {ow}x{oh}, "
                                                             f"not {w * scale}x{h * scale} (the input x {scale})"]  # fmt: skip
    assert [m[: len(e)] for m, e in zip(said, expected, strict=False)] == expected and len(said) == len(expected)
    side = dove_parity(src, tmp_path / "compare", model="bilinear", scale=scale, tile=tile, compare=True)
    assert side.shape == (9, oh, 2 * ow, 3) and np.array_equal(side[:, :, ow:], got)


def test_parity_reads_untagged_video_as_their_decord_does(tmp_path):
    """An untagged HD .mp4: --parity reads it as BT.601, as decord (FFmpeg's swscale, as `ffmpeg -pix_fmt
    rgb24`) does for untagged video of any size, where dove reads it as BT.709 by default (players'
    guess); --untagged-matrix given with --parity is kept."""
    from dove_cli.options import UpscaleOptions, check_options

    src = make_clip(tmp_path / "hd.mp4", size="1280x64", frames=3)
    decord = ffmpeg_frames(src, 1280, 64)
    got = dove_parity(src, tmp_path / "out", model="bilinear", scale=1)
    assert np.array_equal(got, their_script("bilinear", decord, scale=1))
    assert check_options(UpscaleOptions(parity=True)).untagged_matrix == "bt601"
    given = check_options(UpscaleOptions(parity=True, untagged_matrix="auto", given=frozenset({"untagged_matrix"})))
    assert given.untagged_matrix == "auto" and check_options(UpscaleOptions()).untagged_matrix == "auto"


def test_parity_writes_the_authors_file(tmp_path):
    """A --parity video is their save_video_with_imageio's: libx264, yuv444p, CRF 0 (x264's lossless
    constant QP 0), at the input's frame rate (theirs: 16 fps whatever the input's), shown by a dry run;
    a --pix-fmt or --crf given, or an image output, is kept as asked."""
    src = png_clip(tmp_path / "in", demo_clip("002.mp4"), "40x24", 3)
    out = tmp_path / "out.mp4"
    plan = upscale(src, out, model="bilinear", parity=True, fps=16, dry_run=True)
    assert (plan.codec, plan.pix_fmt, plan.crf) == ("h264", "yuv444p", 0)
    upscale(src, out, model="bilinear", parity=True, fps=16)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.pix_fmt, stream.average_rate) == ("yuv444p", 16)
    assert b"rc=cqp" in out.read_bytes() and b" qp=0" in out.read_bytes()  # x264's settings, in the stream
    assert np.abs(ffmpeg_frames(out, 160, 96).astype(int) - dove_parity(src, tmp_path / "png", model="bilinear",
                                                                        fps=16).astype(int)).max() <= 2  # fmt: skip
    plan = upscale(src, out, model="bilinear", parity=True, pix_fmt="yuv420p", dry_run=True, overwrite=True)
    assert (plan.pix_fmt, plan.crf) == ("yuv420p", None)  # the codec's own CRF
    assert upscale(src, out, model="bilinear", parity=True, crf=10, dry_run=True, overwrite=True).pix_fmt == "yuv420p"
    assert upscale(src, out, model="bilinear", dry_run=True, overwrite=True).pix_fmt == "yuv420p"  # not --parity


def test_a_parity_dry_run_counts_the_frames_and_shows_the_windows_that_run(tmp_path, capsys, monkeypatch):
    """A .mkv says no frame count: under --parity the dry run counts its packets, so that it refuses
    what the run refuses (13 frames, --chunk 8 --chunk-overlap 2: a merged last chunk of 11 frames,
    which the VAE does not give back), and it shows the windows as they run, padded and merged."""
    from dove_cli.cli import main

    monkeypatch.delenv("COLUMNS", raising=False)  # pytest-xdist's 80 would wrap the table's rows

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(["upscale", str(mkv), "-o", str(tmp_path / "out.mp4"), "--model", "bilinear", "--parity", "-q",
                  "--device", "cpu", *args])  # fmt: skip
        out = capsys.readouterr()
        return exc.value.code or 0, out.out, out.err.strip()

    for frames, windows in (
        (13, ["--chunk", "8", "--chunk-overlap", "4"]),  # 17 frames after padding: 0-7, 4-11, 8-16 (merged)
        (6, []),
    ):
        pngs = png_clip(tmp_path / f"in{frames}", demo_clip("002.mp4"), "40x24", frames)
        mkv = tmp_path / f"clip{frames}.mkv"
        ffmpeg("-framerate", "16", "-i", pngs, "-c:v", "libx264", "-pix_fmt", "yuv444p", mkv)
        with av.open(str(mkv)) as c:
            assert not c.streams.video[0].frames  # Matroska: no count (dove's plan estimated it)
        code, out, err = run(*windows, "--dry-run")
        assert code == 0, err
        assert f"40x24, {frames} frames at 16.000 fps" in out  # counted, not "about"
        assert "h264 yuv444p CRF 0" in out
        shown = {13: "3 of 8 frames, the last 9, 4 shared by neighbours (its 13 frames padded to 17 with the last one)",
                 6: "1: the whole clip, 9 frames (its 6 frames padded to 9 with the last one)"}[frames]  # fmt: skip
        assert re.search(r"windows in time(: | +. )" + re.escape(shown), out), out
    mkv = tmp_path / "clip13.mkv"
    code, out, planned = run("--chunk", "8", "--chunk-overlap", "2", "--dry-run")
    assert code == 2 and not out and "cannot run the 11-frame chunk of frames 6-16" in planned, planned
    assert run("--chunk", "8", "--chunk-overlap", "2") == (2, "", planned)  # the run: the same line
    assert not (tmp_path / "out.mp4").exists()


# ------------------------------------------------------------------ the layout, without a model


def their_valid(span: tuple[int, int], length: int, overlap: int) -> tuple[int, int]:
    a, b = span
    return (a if a == 0 else a + overlap // 2, b if b == length else b - overlap // 2)


def _their_layout_runs(spans: list[tuple[int, int]], length: int, overlap: int) -> bool:
    """Whether their write count check passes (every position written once)."""
    count = np.zeros(length, int)
    for s in spans:
        lo, hi = their_valid(s, length, overlap)
        count[lo:hi] += 1
    return bool((count == 1).all()) and all(a >= 0 for a, _ in spans)


def test_layout_is_theirs_on_every_axis_length():
    """release_layout against the rules re-derived above, for every length up to 200 and a range of
    windows and overlaps: the same windows, the same valid cut, and a refusal exactly where their
    script stops (a position written twice or never, or starts that do not exist)."""
    from dove_cli.release_layout import LayoutError, check_writes, release_chunks, release_tiles, valid_cut

    checked = 0
    for window, overlap in [(8, 4), (9, 2), (16, 8), (33, 8), (17, 3), (64, 32), (96, 32), (80, 16), (48, 32)]:
        for length in range(1, 201):
            for ours_fn, theirs_fn, axis in (
                (release_chunks, their_chunks, "chunk"),
                (release_tiles, their_tiles, "tile"),
            ):
                try:
                    theirs = theirs_fn(length, window, overlap)
                    runs = _their_layout_runs(theirs, length, overlap)
                except IndexError:  # their chunk starts are empty: their script crashes
                    theirs, runs = None, False
                try:
                    ours = ours_fn(length, window, overlap)
                    check_writes(ours, length, overlap, axis)
                except LayoutError:
                    assert not runs, (axis, length, window, overlap)
                    continue
                assert runs and [(s.start, s.stop) for s in ours] == theirs, (axis, length, window, overlap)
                for s, t in zip(ours, theirs, strict=True):
                    lo, hi = valid_cut(s, length, overlap)
                    assert (s.start + lo, s.start + hi) == their_valid(t, length, overlap)
                    assert valid_cut(s, None, overlap) == (lo, hi)  # streaming: the last window ends the axis
                checked += 1
    assert checked > 2500


def test_the_release_pads_to_8k_plus_1_frames_and_16_px_sides():
    """By hand: 1, 9 and 17 frames need no padding, 2 needs 7, 13 needs 4; LQ sides already multiples of
    16 stay as they are, others go up to the next one."""
    from dove_cli.release_layout import padded_lq_size, time_pad

    assert [time_pad(n) for n in (0, 1, 2, 8, 9, 10, 13, 17)] == [0, 0, 7, 1, 0, 7, 4, 0]
    assert padded_lq_size(32, 48) == (32, 48) and padded_lq_size(30, 50) == (32, 64)
    assert padded_lq_size(180, 318) == (192, 320) and padded_lq_size(1, 17) == (16, 32)


@pytest.mark.parametrize("chunk,overlap", [(0, 8), (8, 4), (9, 2), (16, 8), (17, 8), (33, 8), (1, 0), (24, 6)])
def test_chunks_planned_online_are_the_whole_plan(chunk, overlap):
    """ReleaseChunkStream, fed one frame at a time, hands out release_chunks over the padded count,
    never releases a frame that a later chunk still covers, and refuses what their script fails on."""
    from dove_cli.release_layout import LayoutError, ReleaseChunkStream, check_release_chunks, time_pad

    for frames in range(1, 80):
        padded = frames + time_pad(frames)
        try:
            expected = check_release_chunks(padded, chunk, overlap)
        except LayoutError:
            expected = None
        stream = ReleaseChunkStream(chunk, overlap)
        got, final = [], 0
        try:
            for read in range(1, frames + 2):
                eof = read > frames
                got += stream.ready(padded if eof else read, eof)
                new_final = min(stream.final_before(padded if eof else read, eof), frames)
                assert new_final >= final and all(s.start >= new_final for s in expected or [] if s not in got)
                final = new_final
        except LayoutError:
            assert expected is None, (frames, chunk, overlap)
            continue
        assert expected is not None and got == expected and final == frames, (frames, chunk, overlap)
        assert padded == sum(int(w.sum()) for w in map(stream.weights, got))


def test_vae_frame_rule_is_the_vae(release_model):
    """The chunk lengths the VAE gives back frame for frame (1, 8k, 8k+1) are read off the VAE itself."""
    from dove_cli.release_layout import vae_frames

    vae = release_model.vae
    for n in (1, 2, 4, 5, 7, 8, 9, 10, 12, 13, 16, 17, 20):
        with torch.no_grad():
            z = vae.encode(torch.zeros(1, 3, n, 16, 16)).latent_dist.mode()
            assert vae.decode(z).sample.shape[2] == vae_frames(n), n
    assert [n for n in range(1, 34) if vae_frames(n) == n] == [1, 8, 9, 16, 17, 24, 25, 32, 33]


@pytest.fixture(scope="module")
def clip13(tmp_path_factory) -> Path:
    """13 frames of 40x24 as PNGs (17 after the release's time padding)."""
    return png_clip(tmp_path_factory.mktemp("clip13"), demo_clip("002.mp4"), "40x24", 13)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--chunk", "9", "--chunk-overlap", "2"], "cannot run the 10-frame chunk of frames 7-16"),
        (["--chunk", "9", "--chunk-overlap", "1"], "frames 8-8 are written twice (an odd --chunk-overlap 1"),
        (["--chunk", "24", "--chunk-overlap", "17"], "chunk overlap (17) is not shorter than the video (17 frames"),
        (["--tile", "72"], "a tile height of 72 px (at 0) is not a multiple of 16"),
        (["--tile", "64", "--tile-overlap", "40"], "a tile width of 72 px"),
        (["--scale", "1"], "crops 4 x its padding whatever the scale, which leaves no picture of a 40x24 input at x1"),
        (["--chunk", "8", "--chunk-overlap", "8"], "--chunk-overlap 8 must be smaller than --chunk 8"),
        (["--color-fix", "adain"], "--parity sets --color-fix none"),
        (
            ["--blend", "hard", "--pad", "zero", "--scene-cuts", "off", "--chunk", "9", "--chunk-overlap", "1"],
            "written twice",
        ),  # the settings --parity makes anyway are accepted
    ],
)
def test_layouts_their_script_fails_on_are_one_line_errors(clip13, tmp_path, capsys, args, message):
    from dove_cli.cli import main

    out = tmp_path / "out.mkv"
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(clip13), "-o", str(out), "--model", "bilinear", "--parity", "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err.replace("\n", " "), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_layout_their_script_fails_on_is_refused_before_the_weights_load(clip13, tmp_path, capsys, monkeypatch):
    """The release's layout needs no memory figures: --parity --tile 72 fails before a minute of loading."""
    from dove_cli import upscaling
    from dove_cli.cli import main

    def no_loading(*args, **kwargs):
        raise AssertionError("the weights were loaded before the layout was checked")

    monkeypatch.setattr(upscaling, "load_model", no_loading)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(clip13), "-o", str(tmp_path / "out.mkv"), "--model", "tiny", "--parity", "--quiet",
              "--tile", "72"])  # fmt: skip
    assert exc.value.code == 2 and "a tile height of 72 px (at 0) is not a multiple of 16" in capsys.readouterr().err


def test_parity_sets_the_release_settings(clip13, tmp_path):
    """What --parity turns on, its default overlaps (32 px, 8 frames) and no tiles or chunks unless given."""
    plan = upscale(clip13, tmp_path / "a.mkv", model="bilinear", parity=True, dry_run=True)
    assert (plan.padded_size, plan.tile, plan.chunk, plan.tiles, plan.chunks) == ((32, 48), 0, 0, 1, 1)
    plan = upscale(clip13, tmp_path / "a.mkv", model="bilinear", parity=True, tile=64, chunk=8, chunk_overlap=4,
                   dry_run=True)  # fmt: skip
    assert (plan.tile, plan.tile_overlap, plan.tiles, plan.chunks, plan.chunk_overlap) == (64, 32, 15, 3, 4)
    plan = upscale(clip13, tmp_path / "a.mkv", model="tiny", device="cpu", tile=144, chunk=9, dry_run=True)
    assert (plan.padded_size, plan.tile_overlap, plan.chunk_overlap) == ((24, 40), 32, 4)  # dove's own
    assert not plan.vae_tiling  # the plan says what runs: --parity's VAE tiling (manifests said false)
    assert upscale(clip13, tmp_path / "a.mkv", model="tiny", device="cpu", parity=True, dry_run=True).vae_tiling
    plan = upscale(clip13, tmp_path / "a.mkv", model="bilinear", tile=144, chunk=9, dry_run=True)
    assert (plan.tile_overlap, plan.chunk_overlap) == (0, 0)  # dove's bilinear: pixel-local, no overlaps
