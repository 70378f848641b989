"""E*warp's warp-and-mask part with oracle flows (translation ~ 0, flicker high, closed forms),
and RAFT's parts against direct computations; both weight layouts give the same network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dove_cli.metrics.ewarp import EWarp, pad8, trusted_mask, unpad, warp, warp_error
from dove_cli.metrics.raft import RAFT, CorrBlock, RAFTConfig, upsample_flow
from eval_refs import princeton_keys

TINY = RAFTConfig(
    feature_layers=(8, 8, 12, 12, 16),
    context_layers=(8, 8, 12, 12, 24),
    motion_corr_layers=(16, 12),
    motion_flow_layers=(8, 8),
    motion_out=16,
    hidden=8,
    flow_head_hidden=16,
    mask_hidden=16,
)


def texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random image [3, h, w] in [0, 1] (bilinear samples of it are well defined)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 4 + 2, w // 4 + 2, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def translated(n: int, h: int, w: int, dx: int, dy: int, seed: int = 0) -> list[torch.Tensor]:
    """Frames t = a window moving over a larger texture: content moves by (dx, dy) px per frame."""
    big = texture(h + abs(dy) * n + 2, w + abs(dx) * n + 2, seed)
    x0, y0 = (abs(dx) * n if dx > 0 else 0), (abs(dy) * n if dy > 0 else 0)
    return [big[:, y0 - t * dy : y0 - t * dy + h, x0 - t * dx : x0 - t * dx + w] for t in range(n)]


def const_flow(dx: float, dy: float, h: int, w: int) -> torch.Tensor:
    return torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1).expand(1, 2, h, w).clone()


def test_exact_translation_scores_zero_and_borders_are_masked():
    h, w, dx, dy = 40, 56, 3, -2
    f0, f1 = translated(2, h, w, dx, dy)
    fw, bw = const_flow(dx, dy, h, w), const_flow(-dx, -dy, h, w)
    err = warp_error(f0[None], f1[None], fw, bw).item()
    assert err < 1e-10
    keep = trusted_mask(fw, bw)[0, 0]
    assert not keep[:, w - dx :].any() and not keep[:-dy, :].any()  # content that leaves the frame
    assert keep[-dy:, : w - dx].all()
    # without the mask the border pixels (warped from outside: zeros) would dominate
    raw = ((warp(f1[None], fw) - f0[None]) ** 2).sum(1).mean().item()
    assert raw > 1e-3


def test_flicker_scores_high_and_equals_the_closed_form():
    f0 = texture(32, 48, 1)
    f1 = f0 * 0.6  # brightness flicker, no motion
    zero = torch.zeros(1, 2, 32, 48)
    err = warp_error(f0[None], f1[None], zero, zero).item()
    ref = float(((f1 - f0).double() ** 2).sum(0).mean())  # all pixels trusted: channel sum / pixel count
    assert err == pytest.approx(ref, rel=1e-6)
    assert err * 1000 > 10  # E*warp units


def test_motion_boundaries_and_inconsistent_flow_are_masked():
    h, w = 24, 32
    fw = torch.zeros(1, 2, h, w)
    fw[:, 0, :, 16:] = 4.0  # the right half moves 4 px right: a motion boundary at x = 15
    bw = -warp(fw, fw)  # consistent backward flow where it is defined
    keep = trusted_mask(fw, bw)[0, 0]
    assert not keep[:, 15].any()  # boundary column (forward difference)
    assert keep[:, :10].all()
    bad = bw.clone()
    bad[:, :, :, :8] = 5.0  # forward and backward disagree on the left strip
    assert not trusted_mask(fw, bad)[0, 0][:, :8].any()


def test_ewarp_pipeline_with_an_oracle_flow():
    """EWarp downsamples x0.5, pads to 8 (and 64), asks for both flows, unpads, scales x1000."""
    h, w, dx, dy = 90, 118, 4, 2  # odd half sizes: padding is exercised
    calls = []

    def oracle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(a.shape))
        sign = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)  # batch = [forward, backward]
        return sign * torch.tensor([dx / 2, dy / 2]).view(1, 2, 1, 1).expand(2, 2, *a.shape[-2:])

    metric = EWarp(oracle)
    metric.start_video()
    values = [metric.add(f) for f in translated(4, h, w, dx, dy, seed=2)]
    assert values[0] is None and all(v is not None and v < 1e-6 for v in values[1:])
    assert calls == [(2, 3, 64, 64)] * 3  # 45x59 padded to 64x64 (the minimum RAFT size)
    metric.start_video()
    flicker = [metric.add(f * s) for f, s in zip(translated(3, h, w, dx, dy, seed=2), (1.0, 0.5, 1.0), strict=True)]
    assert flicker[1] > 20 and flicker[2] > 20


def test_pad_and_unpad_round_trip():
    x = torch.rand(1, 3, 70, 93)
    p, pad = pad8(x)
    assert p.shape[-2] % 8 == 0 and p.shape[-1] % 8 == 0 and min(p.shape[-2:]) >= 64
    assert torch.equal(unpad(p, pad), x)


# ------------------------------------------------------------------------------------------ RAFT parts


def test_correlation_lookup_is_the_dot_product_at_the_displaced_pixel():
    g = torch.Generator().manual_seed(3)
    f1, f2 = torch.randn(1, 5, 8, 8, generator=g), torch.randn(1, 5, 8, 8, generator=g)
    corr = CorrBlock(f1, f2, levels=1, radius=2)
    coords = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="xy"))[None]  # x, y
    out = corr(coords)[0].view(5, 5, 8, 8)  # [i, j, y, x]: window offset (i - 2, j - 2)
    for y, x, i, j in [(3, 4, 2, 2), (2, 5, 3, 0), (6, 1, 0, 4), (0, 0, 4, 3), (7, 7, 1, 4)]:
        xx, yy = x + i - 2, y + j - 2  # the first window axis moves x, the second y (RAFT's order)
        want = (f1[0, :, y, x] @ f2[0, :, yy, xx]).item() / 5**0.5 if 0 <= xx < 8 and 0 <= yy < 8 else 0.0
        assert out[i, j, y, x].item() == pytest.approx(want, abs=1e-5)


def test_convex_upsampling_keeps_a_constant_flow_times_eight():
    flow = const_flow(1.5, -0.25, 4, 5)
    up = upsample_flow(flow, torch.randn(1, 576, 4, 5))
    assert up.shape == (1, 2, 32, 40)
    assert torch.allclose(up[0, :, 8:-8, 8:-8], torch.tensor([12.0, -2.0]).view(2, 1, 1).expand(2, 16, 24))


def test_raft_loads_both_layouts_to_the_same_network():
    g = torch.Generator().manual_seed(5)
    src = RAFT(TINY).eval()
    for p in src.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.1
    sd = src.state_dict()
    tv = RAFT.from_state_dict(sd)
    pv = RAFT.from_state_dict(princeton_keys(sd))
    assert tv.cfg == TINY == pv.cfg
    a, b = texture(64, 72, 1)[None], texture(64, 72, 2)[None]
    flow = tv(a, b, iters=3)
    assert flow.shape == (1, 2, 64, 72) and torch.isfinite(flow).all()
    assert torch.equal(flow, pv(a, b, iters=3))
    assert not torch.equal(flow, tv(a, b, iters=4))  # the iterations do something
    from dove_cli.errors import ModelError

    with pytest.raises(ModelError, match="RAFT weights"):
        RAFT.from_state_dict({"fnet.conv1.weight": torch.zeros(1)})


def test_ewarp_with_raft_runs_on_odd_sizes():
    g = torch.Generator().manual_seed(6)
    model = RAFT(TINY).eval()
    for p in model.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.05
    from dove_cli.metrics.ewarp import raft_flow

    metric = EWarp(raft_flow(model, iters=2))
    vals = [metric.add(f) for f in translated(3, 70, 100, 2, 0)]
    assert vals[0] is None and all(np.isfinite(v) and v >= 0 for v in vals[1:])
