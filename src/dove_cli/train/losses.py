"""Training losses: stage-1 latent MSE; stage-2 pixel MSE + DISTS + L1 of frame differences.

DISTS (Ding et al. 2020) compares VGG16 feature statistics (means -> "structure", variances and
covariance -> "texture") with learnt per-channel weights alpha and beta. The VGG16 stack is
written here with torchvision's `features` indices, so torchvision-format state dicts
(`features.N.weight`) load unchanged; max-pooling is replaced by L2 pooling as in DISTS.

Published weights are loaded from files (`dists_weights`):
- DISTS_pytorch `weights.pt`: {'alpha': [1, 1475, 1, 1], 'beta': [1, 1475, 1, 1]};
- a torchvision `vgg16-*.pth` (or .safetensors) state dict (`features.N.*`, classifier ignored);
- pyiqa's combined DISTS file (`stageK.N.*` + alpha/beta).
Without them the VGG and/or the head stay randomly initialised: the loss still trains toward
matching feature statistics, but it is not the published DISTS. `DISTS.pretrained` says which;
a warning is logged once.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from dove_cli.errors import OptionError

log = logging.getLogger(__name__)

# torchvision VGG16 ("D") features: conv widths, "M" = pooling (indices 4, 9, 16, 23; 30 unused here)
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
STAGE_ENDS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
CHANNELS = (3, 64, 128, 256, 512, 512)  # input + the five stages: sum 1475
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class L2Pool(nn.Module):
    """sqrt(hanning-weighted local mean of x^2), stride 2: the anti-aliased pooling of DISTS."""

    def __init__(self, channels: int, size: int = 5, stride: int = 2) -> None:
        super().__init__()
        a = torch.hann_window(size, periodic=False, dtype=torch.float64)[1:-1]
        g = a[:, None] * a[None, :]
        self.register_buffer("kernel", (g / g.sum()).float()[None, None].repeat(channels, 1, 1, 1), persistent=False)
        self.stride, self.padding = stride, (size - 2) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.kernel.to(x.dtype), stride=self.stride, padding=self.padding, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def vgg16_features(l2pool: bool = True) -> nn.Sequential:
    """VGG16 conv stack up to relu5_3 (indices 0..29, as torchvision's `vgg16().features`)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(L2Pool(in_ch) if l2pool else nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(v)
    return nn.Sequential(*layers)


def _load_any(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise OptionError(f"--dists-weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise OptionError(f"--dists-weights {path}: cannot read ({str(exc).splitlines()[0]})") from exc
    for key in ("state_dict", "params", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise OptionError(f"--dists-weights {path}: not a state dict")
    return sd


class DISTS(nn.Module):
    """DISTS distance per image: x, y [B, 3, H, W] in [0, 1] -> [B] (0 for identical images)."""

    def __init__(self, weights: Sequence[str | Path] = (), seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.features = vgg16_features()
        for m in self.features:  # deterministic random init (kaiming, as torchvision does)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(m.bias)
        n = sum(CHANNELS)
        self.alpha = nn.Parameter(0.1 + 0.01 * torch.randn(1, n, 1, 1, generator=gen))
        self.beta = nn.Parameter(0.1 + 0.01 * torch.randn(1, n, 1, 1, generator=gen))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.vgg_loaded = False
        self.head_loaded = False
        for path in weights:
            self.load_weights(Path(path))
        self.requires_grad_(False)
        if not self.pretrained:
            missing = [name for name, ok in (("VGG16", self.vgg_loaded), ("alpha/beta", self.head_loaded)) if not ok]
            log.warning(
                "DISTS: no published %s weights given (--dists-weights); using a random init, "
                "so the perceptual term is not the published DISTS",
                " and ".join(missing),
            )

    @property
    def pretrained(self) -> bool:
        """True only when both the VGG16 features and the alpha/beta head came from files."""
        return self.vgg_loaded and self.head_loaded

    def load_weights(self, path: Path) -> None:
        """Load whatever the file holds: alpha/beta, VGG16 features, or both."""
        sd = _load_any(path)
        found = False
        if "alpha" in sd and "beta" in sd:
            n = sum(CHANNELS)
            alpha, beta = sd["alpha"].reshape(1, -1, 1, 1), sd["beta"].reshape(1, -1, 1, 1)
            if alpha.shape[1] != n or beta.shape[1] != n:
                raise OptionError(f"--dists-weights {path}: alpha/beta must have {n} entries")
            self.alpha.data.copy_(alpha.float())
            self.beta.data.copy_(beta.float())
            self.head_loaded = found = True
        feats: dict[str, torch.Tensor] = {}
        for key, value in sd.items():
            m = re.fullmatch(r"(?:module\.)?(?:features|stage\d)\.(\d+)\.(weight|bias)", key)
            if m and int(m.group(1)) < len(self.features):
                feats[f"{m.group(1)}.{m.group(2)}"] = value
        if feats:
            expected = {k for k in self.features.state_dict()}
            if set(feats) != expected:
                raise OptionError(
                    f"--dists-weights {path}: VGG16 features incomplete ({len(feats)} of {len(expected)} tensors)"
                )
            try:
                self.features.load_state_dict({k: v.float() for k, v in feats.items()})
            except RuntimeError as exc:
                raise OptionError(f"--dists-weights {path}: not VGG16 features ({str(exc).splitlines()[0]})") from exc
            self.vgg_loaded = found = True
        if not found:
            raise OptionError(f"--dists-weights {path}: holds neither alpha/beta nor VGG16 `features.N` tensors")

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[input, relu1_2, relu2_2, relu3_3, relu4_3, relu5_3] of x in [0, 1]."""
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        feats = [x]
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in STAGE_ENDS:
                feats.append(h)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c1 = c2 = 1e-6
        both = self.stage_features(torch.cat([x, y]))  # one pass for both: fewer, larger convs
        fx, fy = [f[: x.shape[0]] for f in both], [f[x.shape[0] :] for f in both]
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, list(CHANNELS), dim=1)
        betas = torch.split(self.beta / w_sum, list(CHANNELS), dim=1)
        structure = texture = 0.0
        for a, b, u, v in zip(alphas, betas, fx, fy):
            mu_u, mu_v = u.mean((2, 3), keepdim=True), v.mean((2, 3), keepdim=True)
            du, dv = u - mu_u, v - mu_v
            var_u, var_v = (du * du).mean((2, 3), keepdim=True), (dv * dv).mean((2, 3), keepdim=True)
            cov = (du * dv).mean((2, 3), keepdim=True)  # centred form: exactly var when u == v
            s1 = (2 * mu_u * mu_v + c1) / (mu_u**2 + mu_v**2 + c1)
            s2 = (2 * cov + c2) / (var_u + var_v + c2)
            structure = structure + (a * s1).sum(1)
            texture = texture + (b * s2).sum(1)
        return 1 - (structure + texture).flatten()


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
        terms = {"mse": float(mse.detach()), "dists": float(perceptual.detach()), "frame_diff": float(frame_diff.detach())}
        return total, terms

