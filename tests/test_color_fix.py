"""Colour correction keeps the model's detail and takes the input's low frequencies."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dove_cli.color_fix import adain_fix, apply_color_fix, wavelet_fix
from dove_cli.options import ColorFix


def smooth(x: torch.Tensor, k: int = 31) -> torch.Tensor:
    """An independent low-pass (box blur) to measure low and high bands."""
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


def test_wavelet_fix_takes_colour_from_reference_and_detail_from_content():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 128), indexing="ij")
    reference = torch.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * yy, 0.4 + 0.1 * xx * yy])[None]
    detail = 0.05 * torch.sign(torch.sin(xx * 90)) * torch.sign(torch.sin(yy * 70))
    content = (reference + detail + torch.tensor([0.12, -0.08, 0.05]).view(1, 3, 1, 1)).clamp(0, 1)  # colour drift
    fixed = wavelet_fix(content, reference)
    inner = (..., slice(32, 96), slice(32, 96))
    drift_before = (smooth(content) - smooth(reference))[inner].abs().mean()
    drift_after = (smooth(fixed) - smooth(reference))[inner].abs().mean()
    assert drift_after < drift_before / 8
    detail_kept = ((fixed - smooth(fixed)) - (content - smooth(content)))[inner].abs().mean()
    assert detail_kept < 0.1 * detail.abs().mean()
    assert torch.equal(apply_color_fix("none", content, reference), content)
    torch.testing.assert_close(wavelet_fix(reference, reference), reference, atol=1e-6, rtol=0)
    del g


def test_adain_matches_channel_statistics():
    content = torch.rand(1, 3, 64, 64) * 0.5
    reference = torch.rand(1, 3, 64, 64) * 0.2 + 0.6
    fixed = adain_fix(content, reference)
    torch.testing.assert_close(fixed.mean((-2, -1)), reference.mean((-2, -1)), atol=2e-3, rtol=0)
    torch.testing.assert_close(fixed.std((-2, -1)), reference.std((-2, -1)), atol=2e-3, rtol=0)


def release_wavelet_fix(content: torch.Tensor, reference: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """The release's form: 5 levels of a dilated depthwise 3x3 binomial conv2d, replicate borders."""
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).div(16).expand(3, 1, 3, 3)

    def low(x: torch.Tensor) -> torch.Tensor:
        for i in range(levels):
            r = 2**i
            x = F.conv2d(F.pad(x, (r,) * 4, mode="replicate" if min(x.shape[-2:]) > r else "constant"), kernel,
                         groups=3, dilation=r)  # fmt: skip
        return x

    return (content - low(content) + low(reference)).clamp(0, 1)


def test_wavelet_fix_equals_the_release_form():
    g = torch.Generator().manual_seed(1)
    for h, w in ((72, 128), (9, 40), (16, 40)):  # 9 and 16 px are not more than the coarse radii: zero padding
        content, reference = torch.rand(2, 3, h, w, generator=g), torch.rand(2, 3, h, w, generator=g)
        torch.testing.assert_close(wavelet_fix(content, reference), release_wavelet_fix(content, reference),
                                   atol=1e-5, rtol=0)  # fmt: skip


def test_adain_is_each_channel_moved_to_the_reference_mean_and_std_then_clipped():
    """Restated with numpy, channel by channel over the whole frame; the rows here differ in spread
    (a statistic per row or column would differ) and the result passes 0..1 before the clip."""
    g = torch.Generator().manual_seed(2)
    rows = torch.linspace(0.05, 1, 32)[:, None]
    content = torch.rand(1, 3, 32, 48, generator=g) * rows
    reference = torch.rand(1, 3, 32, 48, generator=g) ** 3
    want = []
    for c in range(3):
        x, r = content[0, c].double().numpy(), reference[0, c].double().numpy()
        want.append((x - x.mean()) / (x.std(ddof=1) + 1e-5) * r.std(ddof=1) + r.mean())
    want = np.stack(want)[None]
    assert (want > 1).any() and (want < 0).any()
    got = apply_color_fix("adain", content, reference).double().numpy()
    np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=1e-5)


@pytest.mark.parametrize("mode", get_args(ColorFix))  # every --color-fix mode, a new one too
def test_every_color_fix_takes_the_reference_colour_but_none(mode):
    """Dark textured content, a bright reference: each fix moves the mean to the reference's, none
    leaves the content as it is."""
    g = torch.Generator().manual_seed(3)
    content = 0.2 + 0.1 * torch.rand(1, 3, 64, 64, generator=g)
    reference = 0.7 + 0.1 * torch.rand(1, 3, 64, 64, generator=g)
    fixed = apply_color_fix(mode, content, reference)
    if mode == "none":
        assert torch.equal(fixed, content)
    else:
        assert fixed.shape == content.shape
        torch.testing.assert_close(fixed.mean((-2, -1)), reference.mean((-2, -1)), atol=0.01, rtol=0)
