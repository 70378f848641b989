"""Training losses: stage-1 latent MSE; stage-2 pixel MSE + DISTS + L1 of frame differences.

DISTS (VGG16 feature statistics with the published alpha/beta) is `dove_cli.metrics.dists.DISTS`,
shared with `dove eval`; stage 2 loads the published weights with `metrics.dists.training_dists`
(given files, the hub cache, or a download) and refuses to start without them unless the DISTS
term is switched off (`--dists-weight 0`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# DISTS and its VGG16 live with the metrics (shared with `dove eval`); re-exported for old imports.
from dove_cli.metrics.dists import (  # noqa: F401
    CHANNELS,
    DISTS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    STAGE_ENDS,
    VGG16_CFG,
    L2Pool,
    vgg16_features,
)


def latent_loss(z_sr: torch.Tensor, z_hq: torch.Tensor) -> torch.Tensor:
    """Stage 1: MSE between predicted and HQ latents (float32)."""
    return F.mse_loss(z_sr.float(), z_hq.float())


def frame_difference_loss(x_sr: torch.Tensor, x_hq: torch.Tensor) -> torch.Tensor:
    """L1 between consecutive-frame differences of [B, C, F, H, W] clips; 0 for 1-frame clips."""
    if x_sr.shape[2] < 2:
        return x_sr.new_zeros((), dtype=torch.float32)
    d_sr = x_sr[:, :, 1:].float() - x_sr[:, :, :-1].float()
    d_hq = x_hq[:, :, 1:].float() - x_hq[:, :, :-1].float()
    return F.l1_loss(d_sr, d_hq)


class PixelLoss(nn.Module):
    """Stage 2: MSE + w_d * mean over frames of DISTS + w_f * L1(frame differences), pixels in [0, 1]."""

    def __init__(self, dists: DISTS | None, dists_weight: float = 1.0, frame_diff_weight: float = 1.0) -> None:
        super().__init__()
        self.dists = dists
        self.dists_weight = dists_weight
        self.frame_diff_weight = frame_diff_weight

    def forward(self, x_sr: torch.Tensor, x_hq: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """x_sr, x_hq [B, 3, F, H, W] in [0, 1] -> (total loss, {term: value})."""
        with torch.autocast(device_type=x_sr.device.type, enabled=False):
            x_sr, x_hq = x_sr.float(), x_hq.float()
            mse = F.mse_loss(x_sr, x_hq)
            perceptual = x_sr.new_zeros(())
            if self.dists is not None and self.dists_weight > 0:
                # mean over frames of the batch-mean DISTS == mean over all (sample, frame) images
                flat = lambda v: v.permute(0, 2, 1, 3, 4).flatten(0, 1)  # noqa: E731 - [B*F, 3, H, W]
                perceptual = self.dists(flat(x_sr), flat(x_hq)).mean() * self.dists_weight
            frame_diff = frame_difference_loss(x_sr, x_hq) * self.frame_diff_weight
            total = mse + perceptual + frame_diff
        terms = {
            "mse": float(mse.detach()),
            "dists": float(perceptual.detach()),
            "frame_diff": float(frame_diff.detach()),
        }
        return total, terms
