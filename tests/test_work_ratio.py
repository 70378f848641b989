"""The work a plan asks of the model: `work_ratio` in the plan, `--dry-run --manifest`, and
pixel-local models planned without overlaps (the same pixels, less work)."""

from __future__ import annotations

import json

import numpy as np

from dove_cli import upscale
from media import ffmpeg_frames, make_clip


def test_dry_run_manifest_holds_the_plan_and_its_work_ratio(tmp_path):
    clip = make_clip(tmp_path / "shot.mp4", size="48x32", frames=34, rate="16")
    out, manifest = tmp_path / "out.mp4", tmp_path / "plan.json"
    plan = upscale(clip, out, model="tiny", chunk=33, chunk_overlap=8, tile=0, manifest=manifest, dry_run=True)
    doc = json.loads(manifest.read_text())
    assert not out.exists() and doc["output"] == str(out.absolute()) and doc["result"] is None
    # By hand: windows [0, 33) and [25, 34): the last only as long as the 9 frames after a stride of
    # 25 need (9 = 8k+1, no time padding), not [1, 34), which ran 66 frames for 34. The 48x32 input
    # needs no padding at x4 (192x128 output, a multiple of 16).
    expected = (33 + 9) / 34
    assert abs(doc["plan"]["work_ratio"] - expected) < 1e-9 and abs(plan.work_ratio - expected) < 1e-9
    assert doc["plan"]["chunks"] == 2 and doc["options"]["chunk"] == 33


def test_dry_run_manifest_records_auto_as_asked_and_the_sizes_planned(tmp_path):
    """Auto tile and chunk were -1 in the manifest: "auto" in the options, the sizes used in the plan."""
    clip = make_clip(tmp_path / "shot.mp4", size="48x32", frames=40, rate="16")
    manifest = tmp_path / "plan.json"
    upscale(clip, tmp_path / "out.mp4", model="tiny", manifest=manifest, dry_run=True)
    doc = json.loads(manifest.read_text())
    assert doc["options"]["tile"] == doc["options"]["chunk"] == "auto"
    assert doc["plan"]["chunk"] == 33 and doc["plan"]["tile"] == 0  # 40 frames: 33-frame windows, one tile


def test_padding_counts_as_work(tmp_path):
    clip = make_clip(tmp_path / "odd.mp4", size="50x30", frames=9, rate="16")
    plan = upscale(clip, tmp_path / "o.mp4", model="tiny", chunk=0, tile=0, dry_run=True)
    # 50x30 -> padded to 52x32 (the LQ block at x4 is 4 px); 9 frames = 8k+1, no time padding
    assert plan.padded_size == (32, 52)
    assert abs(plan.work_ratio - (52 * 32) / (50 * 30)) < 1e-9


def test_pixel_local_models_are_planned_without_overlaps_and_give_the_same_frames(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", size="96x64", frames=20, rate="16")
    common = dict(model="bilinear", color_fix="none")
    plan = upscale(clip, tmp_path / "p" / "%03d.png", tile=160, tile_overlap=64, chunk_overlap=8, dry_run=True,
                   **common)  # fmt: skip
    assert (plan.chunk, plan.chunk_overlap, plan.tile_overlap) == (1, 0, 0)  # a frame at a time, nothing twice
    assert plan.work_ratio == 1.0
    upscale(clip, tmp_path / "tiled" / "%03d.png", tile=160, **common)
    upscale(clip, tmp_path / "whole" / "%03d.png", tile=0, chunk=0, **common)
    tiled = ffmpeg_frames(tmp_path / "tiled" / "%03d.png", 384, 256)
    whole = ffmpeg_frames(tmp_path / "whole" / "%03d.png", 384, 256)
    assert len(tiled) == 20 and np.array_equal(tiled, whole)


def test_time_padding_counts_as_work_and_blocks_follow_the_scale(tmp_path):
    """By hand: 12 frames in one window are padded to 17 (8k+1) for DOVE; the LQ block is the
    smallest q with scale x q a multiple of 16 (x3: 16, x2: 8, x8: 2), so 50x30 pads to 64x32 at x3."""
    from dove_cli.plan import lq_block

    clip = make_clip(tmp_path / "twelve.mp4", size="48x32", frames=12, rate="16")
    plan = upscale(clip, tmp_path / "o.mp4", model="tiny", chunk=0, tile=0, dry_run=True)
    assert abs(plan.work_ratio - 17 / 12) < 1e-9
    assert [lq_block(s, 16) for s in (1, 2, 3, 4, 6, 8)] == [16, 8, 16, 4, 8, 2]


def test_the_host_estimate_by_hand(tmp_path):
    """A CPU plan for 9 frames of 64x48 at x4 in one window (192x256 out): the process, the window's
    LQ frames (uint16), its 8-bit output, float32 accumulators for two windows and two frames more,
    bilinear's working memory (3 float32 copies of the window), and x264's pictures (2.6 a frame
    written, up to 165, each a yuv420p picture: 1.5 bytes a pixel)."""
    from dove_cli.plan import HOST_BASE_BYTES

    clip = make_clip(tmp_path / "nine.mp4", size="64x48", frames=9, rate="16")
    plan = upscale(clip, tmp_path / "o.mp4", model="bilinear", chunk=0, tile=0, dry_run=True, device="cpu")
    out_px, lq_px = 192 * 256, 48 * 64
    encoder = int(min(165, 2.6 * 9) * out_px * 3 // 2)
    want = HOST_BASE_BYTES + 9 * lq_px * 3 * 2 + 9 * out_px * 3 + (2 * 9 + 2) * out_px * 3 * 4 + 9 * out_px * 3 * 4 * 3
    assert plan.est_peak_host_bytes == want + encoder
    # A frame at a time: the LQ frames of the window and of the next one arriving meanwhile.
    plan = upscale(clip, tmp_path / "o.mp4", model="bilinear", chunk=1, tile=0, dry_run=True, device="cpu")
    want = HOST_BASE_BYTES + 2 * lq_px * 3 * 2 + out_px * 3 + (2 + 2) * out_px * 3 * 4 + out_px * 3 * 4 * 3
    assert plan.chunk == 1 and plan.est_peak_host_bytes == want + encoder
