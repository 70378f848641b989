"""Every combination of window options either plans in bounded time and memory or is refused with
one line: property-based over the option space (valid and invalid values, `auto` included)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import demo_clip
from dove_cli.engine import RANDOM_CONFIGS, BilinearModel, skeleton
from dove_cli.errors import DoveError
from dove_cli.options import AUTO, UpscaleOptions, check_options
from dove_cli.plan import make_plan, measured_budget
from dove_cli.video_io import VideoInfo
from dove_cli.windows import ChunkStream

MODELS = {"bilinear": BilinearModel(), "tiny": skeleton(*RANDOM_CONFIGS["tiny"])}

sizes = st.one_of(st.just(AUTO), st.just(0), st.integers(-5, 3000))
overlaps = st.integers(-5, 2000)


def plan_of(info, model, opts):
    """make_plan on the CPU as a run calls it: the options checked, the memory budget measured now."""
    opts, cpu = check_options(opts), torch.device("cpu")
    return make_plan(info, model, opts, cpu, torch.float32, measured_budget(model, opts, cpu))[0]


@pytest.fixture(scope="module", autouse=True)
def _measured_once() -> None:
    """The time estimate measures the device and counts the VAE's FLOPs once per process (seconds
    on a busy machine): done here, so that no example pays for it against the deadline."""
    info = VideoInfo(path=Path("clip.mp4"), width=64, height=48, num_frames=9, fps=Fraction(24),
                     time_base=Fraction(1, 24))  # fmt: skip
    for model in MODELS.values():
        plan_of(info, model, UpscaleOptions())


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunk=st.one_of(st.just(AUTO), st.just(0), st.integers(-5, 200)),
    chunk_overlap=st.integers(-5, 120),
    tile=sizes,
    tile_overlap=overlaps,
    scale=st.integers(0, 10),
    frames=st.integers(0, 400),
    width=st.integers(1, 4000),
    height=st.integers(1, 2200),
    model=st.sampled_from(sorted(MODELS)),
    cuts=st.lists(st.integers(1, 399), max_size=6),
    preview=st.sampled_from([None, "0+1s", "2+0.5s"]),
)
def test_any_window_options_plan_or_fail_with_one_line(
    chunk, chunk_overlap, tile, tile_overlap, scale, frames, width, height, model, cuts, preview
):
    opts = UpscaleOptions(chunk=chunk, chunk_overlap=chunk_overlap, tile=tile, tile_overlap=tile_overlap,
                          scale=scale, preview=preview)  # fmt: skip
    info = VideoInfo(path=Path("clip.mp4"), width=width, height=height, num_frames=frames, fps=Fraction(24),
                     time_base=Fraction(1, 24))  # fmt: skip
    try:
        plan = plan_of(info, MODELS[model], opts)
    except DoveError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert plan.tiles >= 1 and plan.chunks <= max(1, plan.frames)
    # The temporal planner, fed frame by frame with scene cuts, ends and covers every frame once per
    # window position: at most one window per frame, so time and memory are bounded by the length.
    stream = ChunkStream(plan.chunk, plan.chunk_overlap)
    windows, covered = 0, set()
    for read in range(1, plan.frames + 1):
        if read - 1 in cuts:
            stream.cut(read - 1)
        for span in stream.ready(read, eof=False):
            windows += 1
            covered.update(range(span.start, span.stop))
    for span in stream.ready(plan.frames, eof=True):
        windows += 1
        covered.update(range(span.start, span.stop))
    assert windows <= max(1, plan.frames)
    assert covered == set(range(plan.frames))
    assert stream.final_before(plan.frames, eof=True) == plan.frames


@pytest.mark.parametrize(
    "args,message",
    [
        (["--chunk-overlap", "40"], "--chunk-overlap 40 must be under half the chunk (--chunk auto uses 33 frames: at"),
        (["--chunk-overlap", "17", "--dry-run"], "--chunk-overlap 17 must be under half the chunk"),  # 17 to 32 passed
        (["--chunk", "17", "--chunk-overlap", "17"], "--chunk 17 is too small for --chunk-overlap 17"),
        (
            ["--chunk", "9", "--chunk-overlap", "8", "--dry-run"],
            "error: --chunk 9 is too small for --chunk-overlap 8 (need chunk > 2 x overlap; e.g. --chunk-overlap 4)",
        ),  # accepted before: every frame ran through the model 9 times
        (["--tile", "64", "--tile-overlap", "40"], "--tile 64 is too small for --tile-overlap 40"),
    ],
)
def test_window_options_that_cannot_advance_are_refused_at_once(tmp_path, capsys, args, message):
    """These once looped forever (and grew to 24 GB) before printing anything."""
    from dove_cli.cli import main

    out = tmp_path / "out.mp4"
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(demo_clip("001.mp4")), "-o", str(out), "--model", "bilinear", *args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_options_are_checked_once_and_stay_checked():
    """check_options runs once, at the edge: options checked already come back as they are, and a
    replace() on them is checked again (a resumed run's windows get the default overlaps that fit)."""
    import dataclasses

    from dove_cli.errors import OptionError

    checked = check_options(UpscaleOptions(chunk=33))
    assert check_options(checked) is checked
    resumed = dataclasses.replace(checked, chunk=5, tile=64)
    assert (resumed.chunk_overlap, resumed.tile_overlap) == (2, 16)  # (5 - 1) // 2; 64 // 4
    with pytest.raises(OptionError, match="--scale 0 is out of range"):
        dataclasses.replace(checked, scale=0)


def test_make_plan_is_a_function_of_its_budget_and_says_nothing(caplog):
    """make_plan plans for the budget it is given (its caller measures free memory once) and logs
    nothing: the note on a --tile-overlap an auto tile cannot share comes back for the caller to say."""
    import dataclasses
    import logging

    info = VideoInfo(path=Path("clip.mp4"), width=160, height=90, num_frames=9, fps=Fraction(24),
                     time_base=Fraction(1, 24))  # fmt: skip
    opts = check_options(UpscaleOptions(tile_overlap=32, given=frozenset({"tile_overlap"})))
    with caplog.at_level(logging.DEBUG):
        plans = [make_plan(info, MODELS["tiny"], opts, torch.device("cpu"), torch.float32, 0) for _ in range(2)]
    (plan, notes), (again, _) = plans
    assert caplog.records == [] and dataclasses.replace(again, est_note=plan.est_note) == plan  # (the machine's load)
    assert (plan.tile, plan.tile_overlap) == (64, 31)  # nothing fits 0 bytes: the smallest tile, 64 px
    assert notes == ["--tile-overlap 32 is more than a 64 px tile can share (--tile auto chose 64 px): using 31"]


def test_default_overlaps_are_cut_to_fit_a_short_chunk_or_a_small_tile(tmp_path, capsys):
    """`--chunk 5` or `--tile 64` alone was refused for the overlaps the user never gave."""
    from dove_cli.cli import main
    from dove_cli.options import check_options

    assert check_options(UpscaleOptions(chunk=5, tile=64)).chunk_overlap == 2
    assert check_options(UpscaleOptions(chunk=5, tile=64)).tile_overlap == 16
    assert check_options(UpscaleOptions(chunk=1, tile=16)).chunk_overlap == 0
    assert check_options(UpscaleOptions(chunk=1, tile=16)).tile_overlap == 0
    assert check_options(UpscaleOptions(chunk=9)).chunk_overlap == 4  # under half: 8 of 9 was 9x the work
    assert check_options(UpscaleOptions(chunk=13)).chunk_overlap == 6
    assert check_options(UpscaleOptions(chunk=17, tile=96)).chunk_overlap == 8  # they fit: as they are
    assert check_options(UpscaleOptions(chunk=17, tile=96)).tile_overlap == 32
    main_args = ["upscale", str(demo_clip("001.mp4")), "-o", str(tmp_path / "o.mp4"), "--model", "tiny", "--dry-run"]
    with pytest.raises(SystemExit) as exc:
        main(main_args + ["--chunk", "5", "--tile", "64"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "2 shared by neighbours" in out and "16 px overlap" in out


def test_an_overlap_the_user_gives_is_kept_even_when_it_equals_the_default(tmp_path, capsys, caplog):
    """`--chunk 5 --chunk-overlap 8` is refused as `--chunk-overlap 7` is, not cut to 2 without a word
    as the default is; the Python API's keyword overrides count as given too; --parity refuses a
    given setting it overrides, the default value included (`--blend cosine`)."""
    from dove_cli.cli import main
    from dove_cli.errors import OptionError
    from dove_cli.upscaling import upscale

    clip = demo_clip("007.mp4")
    main_args = ["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "tiny", "--dry-run"]
    refusals = {
        ("--chunk", "5", "--chunk-overlap", "8"): "--chunk 5 is too small for --chunk-overlap 8",
        ("--tile", "64", "--tile-overlap", "32"): "--tile-overlap 32",
        ("--parity", "--blend", "cosine"): "--parity sets --blend hard (as the authors' script runs); drop --blend cosine",
        ("--parity", "--color-fix", "wavelet"): "drop --color-fix wavelet",
    }  # fmt: skip
    for flags, said in refusals.items():
        with pytest.raises(SystemExit) as exc:
            main([*main_args, *flags])
        assert exc.value.code == 2 and said in capsys.readouterr().err, flags
    with pytest.raises(OptionError, match="--chunk 5 is too small for --chunk-overlap 8"):
        upscale(clip, tmp_path / "o.mp4", model="tiny", chunk=5, chunk_overlap=8, dry_run=True)
    assert upscale(clip, tmp_path / "o.mp4", model="tiny", chunk=5, dry_run=True).chunk_overlap == 2
    assert upscale(clip, tmp_path / "o.mp4", UpscaleOptions(model="tiny", chunk=5), dry_run=True).chunk_overlap == 2
    with pytest.raises(SystemExit) as exc:  # the flags that equal what --parity sets are fine
        main([*main_args, "--parity", "--blend", "hard", "--chunk-overlap", "8"])
    assert exc.value.code == 0
    # An auto tile too small for it: the given 32 px is kept as far as it goes (31) and said; the default shares 16.
    vram8 = ["upscale", str(demo_clip("002.mp4")), "-o", str(tmp_path / "o.mp4"), "--model", "full-random", "--vram",
             "8", "--dry-run"]  # fmt: skip
    for flags, overlap in (["--tile-overlap", "32"], "64 px, 31 px overlap"), ([], "64 px, 16 px overlap"):
        caplog.clear()
        with pytest.raises(SystemExit) as exc:
            main([*vram8, *flags])
        out = capsys.readouterr().out
        assert exc.value.code == 0 and overlap in out and "none, planned for an 8 GiB GPU (--vram)" in out
        assert ("--tile-overlap 32 is more than a 64 px tile can share" in caplog.text) == bool(flags)


def test_auto_windows_shrink_in_bounded_steps():
    """--tile auto shrinks by 3/4 per step down to the smallest tile: a few dozen steps at most."""
    info = VideoInfo(path=Path("big.mp4"), width=3840, height=2160, num_frames=33, fps=Fraction(24),
                     time_base=Fraction(1, 24))  # fmt: skip
    plan = plan_of(info, MODELS["tiny"], UpscaleOptions(scale=8))
    assert plan.tiles >= 1 and math.isfinite(plan.est_peak_host_bytes)


def test_a_tile_between_the_frame_height_and_width_is_the_tile_the_run_lays_out():
    """640x360 at x4 with --tile 1920: one row (1440 px is lower than the tile) of two 1920 px columns.
    The plan said a tile of 1440 (the row's height), and the run then laid out 1440 px tiles."""
    info = VideoInfo(path=Path("wide.mp4"), width=640, height=360, num_frames=9, fps=Fraction(24),
                     time_base=Fraction(1, 24))  # fmt: skip
    plan = plan_of(info, MODELS["tiny"], UpscaleOptions(tile=1920))
    assert (plan.tiles, plan.tile) == (2, 1920)


def test_a_gpu_size_takes_the_article_it_is_said_with():
    from dove_cli.humanize import gpu_of

    said = {8: "an 8", 11: "an 11", 18: "an 18", 80: "an 80", 8.5: "an 8.5", 12: "a 12", 24: "a 24", 110: "a 110"}
    assert {gib: gpu_of(gib) for gib in said} == {gib: f"{text} GiB GPU" for gib, text in said.items()}


def test_auto_tile_does_no_more_work_than_a_smaller_tile_that_fits(tmp_path):
    """--vram 24 --dtype fp32 on 480x270 at x4 (a trial's): auto took the first size that fit, 96 px
    tiles keeping the whole 32 px overlap (work ratio 2.72), where 64 px tiles sharing 16 px fit too
    (2.19). The auto tile is the one of least work among those that fit."""
    from dove_cli.upscaling import upscale
    from media import make_clip

    clip = make_clip(tmp_path / "in.mp4", size="480x270", rate="25", frames=100)

    def plan(tile: int = AUTO):
        return upscale(clip, tmp_path / "x.mp4", model="full-random", vram=24, dtype="fp32", tile=tile, dry_run=True)

    auto, wider = plan(), plan(96)
    assert (auto.tile, round(auto.work_ratio, 2), round(wider.work_ratio, 2)) == (64, 2.19, 2.72)
    assert auto.est_peak_device_bytes < wider.est_peak_device_bytes  # it fits where 96 px did


def test_the_plan_says_each_window_length_and_the_manifest_lists_them(tmp_path, capsys):
    """A 34-frame shot in 33-frame windows sharing 8: the plan said `2 of 33 frames`, though the second
    runs 9 frames (from frame 25 to the end, as the 8k+1 lengths allow), and the manifest's
    `window_frames` was []."""
    import json

    from dove_cli.cli import main
    from media import make_clip

    clip = make_clip(tmp_path / "in.mp4", size="64x48", frames=34)
    manifest = tmp_path / "plan.json"
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "tiny", "--chunk", "33", "--dry-run",
              "--manifest", str(manifest)])  # fmt: skip
    out = capsys.readouterr().out
    assert exc.value.code == 0
    # frames 0-32, then the last window from 25 (33 - 8) to 34: 9 frames, 8 of them shared
    assert "windows in time: 2 (33 and 9 frames), 8 shared by neighbours\n" in out, out
    assert json.loads(manifest.read_text())["plan"]["window_frames"] == [33, 9]


def test_many_windows_are_said_by_their_count_and_the_last_length():
    from dove_cli.console import window_lengths

    assert window_lengths((33, 33, 33, 25)) == "4 (33, 33, 33 and 25 frames)"
    assert window_lengths((33,) * 39 + (17,)) == "40 (39 of 33 frames, the last 17)"
    assert window_lengths((33, 33)) == "2 of 33 frames"
    assert window_lengths((1, 1, 1)) == "3 of 1 frame"
