"""Validation during training: PSNR / SSIM against HQ on a held-out folder, plus a few sample frames.

The held-out LQ clips are synthesised once per run with fixed seeds (or read from real pairs), so
every validation sees the same inputs and the numbers are comparable across steps. The forward is
the inference path: whole-clip encode, one transformer step, decode, clamp to [0, 1].
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dove_cli.train.data import SampleKey, TrainDataset, collate

log = logging.getLogger(__name__)

VAL_STEP = 2**40  # a step number training never reaches: held-out seeds never meet training ones


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = F.mse_loss(x.float(), y.float()).item()
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window) of [N, C, H, W] images in [0, 1], per channel."""
    x, y = x.double(), y.double()
    c = x.shape[1]
    g = torch.exp(-((torch.arange(window, dtype=torch.float64) - window // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(c, 1, window, window).contiguous()
    blur = lambda t: F.conv2d(t, k, groups=c)  # noqa: E731 - valid region only, as the reference code
    mu_x, mu_y = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


@torch.no_grad()
def validation_scores(
    model: Any,
    dataset: TrainDataset,
    count: int,
    out_dir: Path | None = None,
    save: int = 2,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Run the first `count` held-out clips; returns {"val_psnr", "val_ssim", "val_psnr_lq", "val_clips"}.

    dtype: the transformer's compute dtype (latents are cast to it; default: its weights' dtype).
    Saves `save` PNGs (LQ upsampled | DOVE | HQ, first frame) to out_dir when given.
    """
    from PIL import Image

    from dove_cli.train.forward import compute_dtype, decode, encode, generator, predict

    dtype = dtype or compute_dtype(model.transformer)

    scores: dict[str, list[float]] = {"val_psnr": [], "val_ssim": [], "val_psnr_lq": []}
    n = min(count, len(dataset))
    for i in range(n):
        batch = collate([dataset[SampleKey("video", i, VAL_STEP, i)]])
        for _, why in batch["failed"]:
            log.warning("validation: skipping %s", why)
        lq, hq = batch["lq"].to(model.device), batch["hq"].to(model.device)
        frames = lq.shape[2]
        pad = (-(frames - 1)) % 4  # whole latent frames: repeat the last frame, crop it off after
        if pad:
            lq = torch.cat([lq, lq[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
        latent = encode(model, lq, [generator(0, VAL_STEP, i, 0)])
        sr = decode(model, predict(model, latent, dtype))[:, :, :frames]
        sr = (sr.float() * 0.5 + 0.5).clamp(0, 1)
        hq01, lq01 = (hq.float() * 0.5 + 0.5), (lq[:, :, :frames].float() * 0.5 + 0.5)
        flat = lambda v: v[0].permute(1, 0, 2, 3)  # noqa: E731 - [F, 3, H, W]
        scores["val_psnr"].append(psnr(sr, hq01))
        scores["val_psnr_lq"].append(psnr(lq01, hq01))
        scores["val_ssim"].append(ssim(flat(sr).cpu(), flat(hq01).cpu()))
        if out_dir is not None and i < save:
            out_dir.mkdir(parents=True, exist_ok=True)
            row = torch.cat([flat(lq01)[0], flat(sr)[0], flat(hq01)[0]], dim=2)
            img = (row.permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
            Image.fromarray(img).save(out_dir / f"sample{i}.png")
    return {k: float(np.mean(v)) for k, v in scores.items()} | {"val_clips": n}
