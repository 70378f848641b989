"""Shot-aware chunks: scene cuts found on LQ frames (clips made and decoded by the ffmpeg binary),
and temporal windows that never span a cut."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import numpy as np
import pytest

from dove_cli.cli import main
from dove_cli.engine import BilinearModel
from dove_cli.options import UpscaleOptions, choices
from dove_cli.plan import SCENE_CUTS_NOTE
from dove_cli.scenes import SceneDetector
from dove_cli.upscaling import upscale
from dove_cli.windows import ANY_LENGTH, ChunkStream, Lengths, plan_spans, span_weights
from media import ffmpeg, ffmpeg_frames


def two_shot_clip(
    path: Path, first: int = 20, second: int = 20, *, size: str = "64x48", rate: str = "25", audio: bool = False
) -> Path:
    """`first` frames of testsrc, then `second` frames of testsrc2: one hard cut at frame `first`."""
    n = first + second
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}", "-f", "lavfi", "-i",
            f"testsrc2=size={size}:rate={rate}"]  # fmt: skip
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={n / float(eval(rate)):.3f}"]
    graph = (f"[0]trim=end_frame={first},setpts=PTS-STARTPTS[a];[1]trim=end_frame={second},setpts=PTS-STARTPTS[b];"
             "[a][b]concat=n=2:v=1:a=0[v]")  # fmt: skip
    args += ["-filter_complex", graph, "-map", "[v]"]
    if audio:
        args += ["-map", "2:a", "-c:a", "aac", "-b:a", "64k"]
    ffmpeg(*args, "-frames:v", str(n), "-c:v", "libx264", "-preset", "ultrafast", "-g", "6", "-pix_fmt", "yuv420p",
           str(path))  # fmt: skip
    return path


def detect(frames: np.ndarray) -> list[int]:
    det = SceneDetector()
    return [i for i, f in enumerate(frames) if det.push(f)]


def plan_with_cuts(total: int, cuts: list[int], chunk: int, overlap: int, lengths: Lengths = ANY_LENGTH):
    stream, spans = ChunkStream(chunk, overlap, lengths), []
    for read in range(1, total + 1):
        if read - 1 in cuts:
            stream.cut(read - 1)
        spans += stream.ready(read, eof=False)
    return spans + stream.ready(total, eof=True)


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory) -> Path:
    return two_shot_clip(tmp_path_factory.mktemp("scenes") / "cut.mp4")


def test_cut_is_found_at_the_right_frame(cut_clip):
    frames = ffmpeg_frames(cut_clip, 64, 48)
    assert frames.shape[0] == 40
    assert detect(frames) == [20]


def test_still_and_moving_clips_give_no_cuts(tmp_path):
    still = tmp_path / "still.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=0x336699:size=64x48:rate=25", "-frames:v", "30", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(still))  # fmt: skip
    assert detect(ffmpeg_frames(still, 64, 48)) == []
    moving = tmp_path / "moving.mp4"  # testsrc2 has moving objects and a running counter
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "60", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(moving))  # fmt: skip
    assert detect(ffmpeg_frames(moving, 64, 48)) == []


def test_minimum_shot_length_suppresses_flashes():
    black, white = np.zeros((48, 64, 3), np.uint8), np.full((48, 64, 3), 255, np.uint8)
    frames = [black] * 10 + [white] * 2 + [black] * 10 + [white] * 10  # a 2-frame flash, then a real cut
    det = SceneDetector(min_shot=8)
    assert [i for i, f in enumerate(frames) if det.push(f)] == [10, 22]


def grey(level: int, dtype=np.uint8) -> np.ndarray:
    """A uniform frame: the score between two of them is |a - b| / top, exactly."""
    return np.full((48, 64, 3), level, dtype)


def cuts_in(levels: list[int], dtype=np.uint8) -> list[int]:
    det = SceneDetector()  # threshold 0.12, ratio 3, history 8, min_shot 8
    return [i for i, level in enumerate(levels) if det.push(grey(level, dtype))]


def test_cut_rules_by_hand():
    """Uniform frames, scores by hand (defaults: at least 0.12, 3x the mean of the last 8 scores,
    8 frames since the shot began)."""
    # A cut 8 frames after the start is a cut; a white frame 7 in is not (too early) but counts as motion.
    # After a cut the motion level starts afresh: 33/255 = 0.129 eight frames later is a cut, though
    # 3x the mean of the 8 scores before it, had the white frame's 1.0 been kept, is 0.375.
    assert cuts_in([0] * 7 + [255] + [0] * 8 + [33] * 3) == [8, 16]
    # Steady motion (0.157 a frame, above the threshold) is no cut: not 3x the recent level.
    assert cuts_in([0, 40] * 15) == []
    # Motion long ago is forgotten (8 scores): 0.157 after 20 still frames is a cut again.
    assert cuts_in([0, 40] * 10 + [20] * 20 + [60] * 3) == [40]
    # 16-bit frames are scored in their own range: 1000 of 65535 (0.015) is no cut, 20000 (0.31) is.
    assert cuts_in([0] * 10 + [1000] * 10 + [21000] * 3, np.uint16) == [20]


@pytest.mark.parametrize("chunk,overlap", [(9, 2), (17, 4), (0, 0)])
@pytest.mark.parametrize("cuts", [[20], [5, 30], [3]])
def test_windows_end_at_cuts_and_blend_within_shots(chunk, overlap, cuts):
    total = 40
    spans = plan_with_cuts(total, cuts, chunk, overlap)
    bounds = [0, *cuts, total]
    for lo, hi in zip(bounds, bounds[1:], strict=False):  # each shot is planned on its own, like a whole video
        shot = [s for s in spans if lo <= s.start < hi]
        assert all(s.stop <= hi for s in shot)  # no window spans a cut
        assert [(s.start - lo, s.stop - lo) for s in shot] == [
            (p.start, p.stop) for p in plan_spans(hi - lo, chunk, overlap)
        ]
        assert shot[0].prev_stop is None and shot[-1].next_start is None  # no blending across the cut
    weight = np.zeros(total)
    for s in spans:
        w = span_weights(s, overlap, "cosine")
        weight[s.start : s.stop] += w
        if s.start in bounds:  # a shot's first window starts at full weight: nothing to blend with
            assert w[0] == 1.0
    assert np.all(weight > 0)  # every frame is covered


def test_off_gives_the_plain_plan():
    assert plan_with_cuts(40, [], 9, 2) == plan_spans(40, 9, 2)


def test_each_cut_adds_at_most_one_window():
    """What the plan says of the cuts it cannot count (plan.SCENE_CUTS_NOTE): each shot is planned as
    a whole video, and a window is at least its stride, so a cut adds at most one window (it can save
    some: 66 frames of 33-frame windows are 3 windows, two 33-frame shots 2)."""
    rng = random.Random(0)
    for _ in range(2000):
        chunk = rng.choice([0, 5, 9, 17, 33, 37])
        overlap = rng.randint(0, (chunk - 1) // 2) if chunk else 0
        total = rng.randint(2, 200)
        cuts = sorted(rng.sample(range(1, total), min(rng.randint(1, 5), total - 1)))
        lengths = rng.choice([Lengths(8, 1), ANY_LENGTH])
        plain = len(plan_spans(total, chunk, overlap, lengths))
        assert len(plan_with_cuts(total, cuts, chunk, overlap, lengths)) <= plain + len(cuts), (total, chunk, cuts)


class _Recorder(BilinearModel):
    """Bilinear, recording the largest frame-to-frame change inside each window it is given; planned
    as a model with temporal context (overlapping 8k+1-frame windows), as DOVE is."""

    pixel_local = False

    def __init__(self) -> None:
        super().__init__("cpu")
        self.jumps: list[float] = []

    def restore(self, video, generator=None, timer=None):
        v = video[0]  # [3, F, H, W] in [-1, 1]
        diffs = (v[:, 1:] - v[:, :-1]).abs().mean(dim=(0, 2, 3)) / 2 if v.shape[1] > 1 else v.new_zeros(1)
        self.jumps.append(float(diffs.max()))
        return super().restore(video)


@pytest.mark.parametrize("mode", choices(UpscaleOptions)["scene_cuts"])  # every --scene-cuts mode, a new one too
def test_upscale_never_feeds_a_cut_to_the_model(cut_clip, tmp_path, mode):
    rec = _Recorder()
    out = tmp_path / "out.mkv"
    r = upscale(cut_clip, out, UpscaleOptions(model="bilinear", scale=2, chunk=9, chunk_overlap=2, tile=0,
                                              codec="ffv1", scene_cuts=mode), restorer=rec)  # fmt: skip
    assert ffmpeg_frames(out, 128, 96).shape[0] == 40
    if mode == "auto":
        assert r.cuts == [20] and r.windows_run == len(plan_with_cuts(40, [20], 9, 2))
        assert max(rec.jumps) < 0.1  # every window holds one shot
    else:
        assert mode == "off", f"--scene-cuts {mode}: say here what it does"
        assert r.cuts == [] and r.windows_run == len(plan_spans(40, 9, 2, Lengths(8, 1)))
        assert max(rec.jumps) > 0.2  # some window mixes both shots


def test_the_plan_says_that_scene_cuts_are_not_in_its_windows(cut_clip, tmp_path, capsys, caplog, monkeypatch):
    """Cuts are found while frames are read, and a plan is made before: `--dry-run` planned 3 windows
    and the run, finding a cut, ran 4, with nothing said. The table, the manifest's plan and the run's
    `plan:` line now say that cuts are not counted, with the bound the run keeps (reached here).
    (Finding them in the dry run costs a decode of the whole input: 1 to 5 ms a frame on 2 cores, 13 min for
    a 2-hour 1080p film.) Not said where cuts change nothing: --scene-cuts off, one-frame windows."""
    monkeypatch.delenv("COLUMNS", raising=False)  # xdist sets 80: rows would fold
    opts = UpscaleOptions(model="bilinear", scale=2, chunk=17, chunk_overlap=4, tile=0, codec="ffv1")
    out = tmp_path / "out.mkv"
    plan = upscale(cut_clip, out, opts, restorer=_Recorder(), dry_run=True)
    assert plan.chunks == len(plan_spans(40, 17, 4, Lengths(8, 1))) == 3 and plan.scene_cuts == SCENE_CUTS_NOTE
    with caplog.at_level(logging.INFO, logger="dove_cli"):
        r = upscale(cut_clip, out, opts, restorer=_Recorder())
    assert r.cuts == [20] and r.windows_run == plan.chunks + len(r.cuts)
    assert f"plan: 3 windows of 17 frames (4 shared), work ratio {plan.work_ratio:.2f}" in caplog.text
    assert f"; scene cuts {SCENE_CUTS_NOTE}" in caplog.text  # (after the estimates)
    args = ["upscale", str(cut_clip), "-o", str(out), "--model", "bilinear", "--dry-run", "--overwrite", "--manifest"]
    for extra, said in (["--chunk", "17"], True), (["--chunk", "17", "--scene-cuts", "off"], False), ([], False):
        manifest = tmp_path / f"plan{len(extra)}.json"
        with pytest.raises(SystemExit) as exc:
            main([*args, str(manifest), *extra])
        table = capsys.readouterr().out
        assert exc.value.code == 0
        assert bool(re.search(rf"scene cuts: {re.escape(SCENE_CUTS_NOTE)}", table)) == said, (extra, table)
        assert json.loads(manifest.read_text())["plan"]["scene_cuts"] == (SCENE_CUTS_NOTE if said else "")
