"""Chunk/tile planning and blend weights, against the release's layout written out here."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from dove_cli.errors import OptionError
from dove_cli.windows import (
    ANY_LENGTH,
    BlendMode,
    ChunkStream,
    Lengths,
    Span,
    axis_weights,
    check_chunk,
    check_tile,
    plan_spans,
    plan_tiles,
)


def release_spatial_tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """The authors' make_spatial_tiles along one axis (inference_script.py), restated."""
    stride = tile - overlap
    starts = list(range(0, length - overlap, stride))
    if not starts or starts[-1] + tile < length:
        starts.append(length - tile)
    if len(starts) >= 2 and starts[-1] + tile > length:
        starts.pop()
    out = []
    for s in starts:
        e = min(s + tile, length)
        if e + stride > length:
            e = length
        out.append((s, e))
    return out


def release_valid(spans: list[tuple[int, int]], length: int, overlap: int) -> list[tuple[int, int]]:
    """The release's get_valid_tile_region along one axis: absolute [start, stop) kept per window."""
    out = []
    for s, e in spans:
        vs = 0 if s == 0 else overlap // 2
        ve = (e - s) if e == length else (e - s) - overlap // 2
        out.append((s + vs, s + ve))
    return out


@pytest.mark.parametrize("length,tile,overlap", [(928, 256, 32), (704, 256, 32), (112, 48, 16), (40, 16, 4)])
def test_hard_blend_reproduces_release_valid_regions(length, tile, overlap):
    # Lengths of the form tile + k * stride, where the release's layout is well defined.
    spans = plan_spans(length, tile, overlap)
    assert [(s.start, s.stop) for s in spans] == release_spatial_tiles(length, tile, overlap)
    weights = axis_weights(spans, overlap, "hard")
    kept = []
    for s, w in zip(spans, weights, strict=False):
        idx = np.flatnonzero(w) + s.start
        assert np.all(w[w > 0] == 1.0)
        kept.append((int(idx[0]), int(idx[-1]) + 1))
    assert kept == release_valid([(s.start, s.stop) for s in spans], length, overlap)


def test_hard_cuts_with_an_odd_overlap_give_every_position_to_one_window():
    """An odd overlap (which the release refuses: it writes the middle position twice) is cut
    overlap // 2 before the earlier window's end, so each position has exactly one window. By hand:
    windows [0, 16), [11, 27), [22, 38) sharing 5, cut at 16 - 2 and 27 - 2."""
    spans = plan_spans(38, 16, 5)
    assert [(s.start, s.stop) for s in spans] == [(0, 16), (11, 27), (22, 38)]
    kept = []
    for s, w in zip(spans, axis_weights(spans, 5, "hard"), strict=True):
        assert set(np.unique(w)) <= {0.0, 1.0}
        idx = np.flatnonzero(w) + s.start
        kept.append((int(idx[0]), int(idx[-1]) + 1))
    assert kept == [(0, 14), (14, 25), (25, 38)]


@pytest.mark.parametrize("length", [17, 33, 34, 40, 57, 100, 333])
@pytest.mark.parametrize("mode", get_args(BlendMode))  # every mode, a new one too
def test_weights_sum_to_one_and_cover(length, mode):
    spans = plan_spans(length, 16, 6)
    total = np.zeros(length)
    for s, w in zip(spans, axis_weights(spans, 6, mode), strict=False):
        assert s.length == min(16, length) or (s is spans[-1] and s.length < 16)  # a short last window
        assert np.all(w >= 0)
        total[s.start : s.stop] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_cosine_ramps_are_smooth_and_symmetric():
    spans = plan_spans(48, 32, 16)
    w0, w1 = axis_weights(spans, 16, "cosine")
    assert w0[0] == 1.0 and w1[-1] == 1.0
    ramp = w1[:16]
    assert np.all(np.diff(ramp) > 0)  # rising across the overlap, no step
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)
    assert np.max(np.abs(np.diff(ramp))) < 0.11  # no jump bigger than a smooth 16-sample ramp allows


def test_cosine_weights_are_the_raised_cosine_at_sample_centres():
    """Hand-computed: across an overlap of n, the later window's weight at sample i is
    sin^2(pi (i + 1/2) / (2 n)) (0.5 - 0.5 cos at the sample's centre), the earlier's its mirror."""
    spans = plan_spans(10, 6, 2)  # [0, 6) and [4, 10): frames 4 and 5 are shared
    w0, w1 = axis_weights(spans, 2, "cosine")
    rise = [0.5 - 0.5 * np.cos(np.pi * 0.25), 0.5 - 0.5 * np.cos(np.pi * 0.75)]  # 0.1464..., 0.8535...
    np.testing.assert_allclose(w1[:2], rise, atol=1e-7)
    np.testing.assert_allclose(w0[4:], rise[::-1], atol=1e-7)
    assert np.all(w0[:4] == 1.0) and np.all(w1[2:] == 1.0)


def test_tiles_are_whole_model_blocks_when_the_tile_is_not():
    """--tile 100 with a 16 px block: 96 px tiles (the model takes multiples of its block), the last
    one only as long as the rest needs; the overlap as given."""
    ys, xs, overlap = plan_tiles(256, 200, 100, 16, 16)
    assert [(s.start, s.stop) for s in ys] == [(0, 96), (80, 176), (160, 256)]
    assert [(s.start, s.stop) for s in xs] == [(0, 96), (80, 176), (152, 200)]
    assert overlap == 16


@pytest.mark.parametrize("total", [1, 5, 33, 34, 40, 41, 58, 100, 101, 257])
@pytest.mark.parametrize("chunk,overlap", [(17, 4), (33, 8), (9, 2), (0, 0)])
@pytest.mark.parametrize("lengths", [ANY_LENGTH, Lengths(8, 1)])
def test_online_chunks_equal_offline_plan(total, chunk, overlap, lengths):
    stream = ChunkStream(chunk, overlap, lengths)
    got: list[Span] = []
    history = []  # (frames read, windows released so far, frames declared final)
    for read in range(1, total + 1):
        got += stream.ready(read, eof=False)
        history.append((read, len(got), stream.final_before(read, eof=False)))
    got += stream.ready(total, eof=True)
    plan = plan_spans(total, chunk, overlap, lengths)
    assert got == plan
    assert stream.final_before(total, eof=True) == total
    for read, released, final in history:
        # A frame is final only when every window that covers it has been released...
        assert all(i < released for i, s in enumerate(plan) if s.start < final)
        # ...and a window is released only once all its frames were read.
        assert all(s.stop <= read for s in plan[:released])
        # Flat memory: frames held (read but not final) stay within chunk + stride.
        if chunk:
            assert read - final <= 2 * chunk - overlap


def test_bad_options_are_clear():
    with pytest.raises(OptionError, match="4k\\+1"):
        check_chunk(32, 8)
    with pytest.raises(OptionError, match="too small for --chunk-overlap"):
        check_chunk(17, 17)
    with pytest.raises(OptionError, match="too small for --tile-overlap"):
        check_tile(64, 32, 16)
    with pytest.raises(OptionError, match="block"):
        check_tile(8, 0, 16)
    check_chunk(0, 8)
    check_tile(0, 64, 16)


def test_a_given_chunk_must_hold_its_overlap_twice_as_a_tile_does():
    """`--chunk 9 --chunk-overlap 8` advanced a frame a window (work ratio 7.26) without a word, where
    `--tile 64 --tile-overlap 32` is refused: the same rule and the same message for chunks."""
    for chunk, overlap, fits in ((9, 8, 4), (5, 4, 2), (17, 9, 8), (5, 3, 2), (33, 17, 16)):
        with pytest.raises(OptionError) as refused:
            check_chunk(chunk, overlap)
        assert str(refused.value) == (f"--chunk {chunk} is too small for --chunk-overlap {overlap} (need chunk > "
                                      f"2 x overlap; e.g. --chunk-overlap {fits})")  # fmt: skip
        check_chunk(chunk, fits)  # what it suggests is taken
    with pytest.raises(OptionError) as tile:
        check_tile(64, 32, 16)
    assert str(tile.value).replace("tile", "chunk") == str(refused.value).replace("33", "64").replace("17", "32")


@pytest.mark.parametrize("length", range(2, 120))
@pytest.mark.parametrize("window,overlap", [(33, 8), (17, 4), (9, 0), (21, 4)])  # 21: a 4k+1 chunk, not 8k+1
def test_the_last_window_is_only_as_long_as_the_rest_needs(length, window, overlap):
    """Every position covered; neighbours share at least the overlap; every window but the last is
    whole; the last is the shortest 8k+1 that still overlaps the one before (never a whole window
    aligned to the end, which redid up to 32 frames)."""
    spans = plan_spans(length, window, overlap, Lengths(8, 1))
    assert spans[0].start == 0 and spans[-1].stop == length
    for a, b in zip(spans, spans[1:], strict=False):
        assert b.start > a.start and a.stop - b.start >= overlap
    if window >= length:
        return
    assert all(s.length == window for s in spans[:-1])
    assert all(s.start == i * (window - overlap) for i, s in enumerate(spans[:-1]))  # only the last is moved
    last, before = spans[-1], spans[-2]
    need = length - (before.start + window - overlap)  # the rest after a regular stride
    assert (last.length - 1) % 8 == 0 or last.length == window
    assert last.length == min(window, -(-(need - 1) // 8) * 8 + 1)
