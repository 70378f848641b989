"""Colour correction: keep the model's detail, take the low frequencies from the upsampled input.

One-step diffusion models drift in colour a little; peers (StableSR, SeedVR2, the DOVE release's
utilities) fix it by matching low frequencies (wavelet) or channel statistics (AdaIN) to the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dove_cli.options import ColorFix


def _blur(image: torch.Tensor, radius: int) -> torch.Tensor:
    """3x3 binomial blur with holes (a trous), replicate borders. image: [N, C, H, W].

    The kernel [1 2 1]^T [1 2 1] / 16 is applied as two 1-D passes of shifted adds: the same numbers
    as a dilated depthwise conv2d (the release's form), 5-6x faster on a CPU.
    """
    mode = "replicate" if min(image.shape[-2:]) > radius else "constant"
    p = F.pad(image, (radius,) * 4, mode=mode)
    r = radius
    rows = p[..., :, : -2 * r] + 2 * p[..., :, r:-r] + p[..., :, 2 * r :]
    return (rows[..., : -2 * r, :] + 2 * rows[..., r:-r, :] + rows[..., 2 * r :, :]) / 16


def _low_pass(image: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """The residual low band after `levels` wavelet levels."""
    for i in range(levels):
        image = _blur(image, 2**i)
    return image


def wavelet_fix(content: torch.Tensor, reference: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """content's high bands + reference's low band. Both [N, 3, H, W] in [0, 1]."""
    return (content - _low_pass(content, levels) + _low_pass(reference, levels)).clamp(0.0, 1.0)


def adain_fix(content: torch.Tensor, reference: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Match each channel's mean and std to the reference. Both [N, 3, H, W] in [0, 1]."""
    c_mean, c_std = content.mean((-2, -1), keepdim=True), content.std((-2, -1), keepdim=True)
    r_mean, r_std = reference.mean((-2, -1), keepdim=True), reference.std((-2, -1), keepdim=True)
    return ((content - c_mean) / (c_std + eps) * r_std + r_mean).clamp(0.0, 1.0)


def apply_color_fix(mode: ColorFix, content: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    if mode == "none":
        return content
    if mode == "wavelet":
        return wavelet_fix(content, reference)
    if mode == "adain":
        return adain_fix(content, reference)
    raise ValueError(f"unknown colour fix {mode!r}")
