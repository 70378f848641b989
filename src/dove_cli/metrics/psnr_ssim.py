"""PSNR and SSIM as pyiqa defines its default `psnr` and `ssim` metrics (the DOVE authors' scores).

PSNR: RGB in [0, 1], all three channels, 10 log10(1 / (MSE + 1e-8)) per image.
PSNR-Y (`psnr_y`, not a pyiqa metric: pyiqa's `psnry` takes YIQ's luma, without the offset): as VSR
papers report it from BasicSR (BasicVSR, Real-ESRGAN): the Y of BT.601 YCbCr with the 16-235 offset,
not rounded, and 10 log10(1 / (MSE + 1e-8)) of Y / 255, as BasicSR's torch `calculate_psnr_pt` (its
numpy `calculate_psnr` has no 1e-8: 0.013 dB higher at 55 dB, infinite for identical frames, which
score 80 dB here as for PSNR).
SSIM: Wang et al. 2004 on the luma of YIQ (0.299 R + 0.587 G + 0.114 B) scaled to 0..255 and
rounded to integers (as MATLAB sees an 8-bit image), the luma computed in float32 as pyiqa's
`rgb2yiq` computes it on a float32 tensor (a float64 luma moves SSIM by 4-8e-6), then filtered in
float64; an 11 x 11 Gaussian window with
sigma 1.5 (MATLAB's fspecial, normalised),
"valid" filtering (no padding), no downsampling, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, the
contrast-structure term clipped at 0, and the mean of the SSIM map.
SSIM-Y (`ssim_y`, not a pyiqa metric): BasicSR's `calculate_ssim(..., test_y_channel=True)`, the SSIM
VSR papers report beside PSNR-Y: the same window and constants on PSNR-Y's BT.601 Y (16-235, not
rounded, float64), without the clip at 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dove_cli.errors import InputError

PSNR_EPS = 1e-8
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
YIQ_LUMA = (0.299, 0.587, 0.114)
# BT.601 Y on 0..255 from RGB in [0, 1]: 16 + 65.481 R + 128.553 G + 24.966 B, BasicSR's
# `rgb2ycbcr(img, y_only=True)` (basicsr/utils/color_util.py, XPixelGroup/BasicSR 8d56e3a), which
# `to_y_channel` (basicsr/metrics/metric_util.py) feeds RGB / 255 and scales back by 255, and
# `calculate_psnr_pt(..., test_y_channel=True)` (basicsr/metrics/psnr_ssim.py) scores Y / 255.
# (The offset cancels in the difference; it is kept so that Y reads as BasicSR's.)
YCBCR_LUMA, YCBCR_OFFSET = (65.481, 128.553, 24.966), 16.0


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y [B, 3, H, W] in [0, 1] -> [B] dB (float64)."""
    mse = ((x.double() - y.double()) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / (mse + PSNR_EPS))


def ycbcr_y(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> [B, 1, H, W] BT.601 Y on 16..235 (YCBCR_LUMA), float64, not rounded
    (BasicSR computes it in float32: it moves PSNR-Y by less than 1e-6 dB)."""
    w = torch.tensor(YCBCR_LUMA, dtype=torch.float64, device=x.device)
    return (torch.matmul(x.double().permute(0, 2, 3, 1), w) + YCBCR_OFFSET)[:, None]


def psnr_y(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y [B, 3, H, W] RGB in [0, 1] -> [B] dB (float64) of their BT.601 Y (`ycbcr_y`)."""
    mse = ((ycbcr_y(x) - ycbcr_y(y)) ** 2).mean(dim=(1, 2, 3)) / 255**2
    return 10 * torch.log10(1.0 / (mse + PSNR_EPS))


def luma255(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> [B, 1, H, W] YIQ luma on 0..255, rounded (float32 arithmetic)."""
    w = torch.tensor(YIQ_LUMA, dtype=torch.float32, device=x.device)
    y = torch.matmul(x.float().permute(0, 2, 3, 1), w)[:, None]
    return (y * 255).round()


def gaussian_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """[size] normalised Gaussian (float64); its outer product is MATLAB's fspecial('gaussian')."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma * sigma))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y [B, 3, H, W] RGB in [0, 1] -> [B] SSIM of their luma (float64).

    The 11x11 window is applied as two 11-tap passes (it is separable; 5x fewer operations than a
    2D float64 convolution: `_valid_filter`). pyiqa stores the 2D window rounded to float32: the scores differ by
    less than 1e-7.
    """
    return ssim_of(luma255(x).double(), luma255(y).double(), clip_cs=True)


def ssim_y(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y [B, 3, H, W] RGB in [0, 1] -> [B] SSIM of their BT.601 Y (`ycbcr_y`), as BasicSR's
    `calculate_ssim(..., test_y_channel=True)`: no clip of the contrast-structure term."""
    return ssim_of(ycbcr_y(x), ycbcr_y(y), clip_cs=False)


def ssim_of(a: torch.Tensor, b: torch.Tensor, clip_cs: bool) -> torch.Tensor:
    """a, b [B, 1, H, W] float64 planes on 0..255 -> [B] mean SSIM map ("valid" 11x11 Gaussian window).
    clip_cs: pyiqa clips negative contrast-structure terms to 0; BasicSR and MATLAB do not."""
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise InputError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, not {a.shape[-1]}x{a.shape[-2]}"
        )
    g = [float(w) for w in gaussian_1d()]
    maps = torch.cat([a, b, a * a, b * b, a * b], dim=1)  # [B, 5, H, W]
    mu_a, mu_b, aa, bb, ab = _valid_filter(_valid_filter(maps, g, dim=3), g, dim=2).unbind(dim=1)
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    cs = F.relu(cs) if clip_cs else cs
    s = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs
    return s.mean(dim=(1, 2))


def _valid_filter(maps: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """maps [B, C, H, W] filtered along `dim` with `taps`, "valid" (no padding): the tap-weighted sum of
    shifted views, into one buffer. F.conv2d in float64 on a CPU unfolds its input first (11 copies of
    the maps, about 400 MB for a 720p frame, its pages faulted in anew each frame): SSIM spent twice its
    compute time in the kernel doing that. The same sums in the same order: equal scores."""
    n = maps.shape[dim] - len(taps) + 1
    out = maps.narrow(dim, 0, n) * taps[0]
    for k, w in enumerate(taps[1:], start=1):
        out.add_(maps.narrow(dim, k, n), alpha=w)
    return out
