"""LPIPS v0.1 with AlexNet (Zhang et al. 2018), as pyiqa's default `lpips` metric.

Images in [0, 1] are mapped to [-1, 1], then shifted and scaled per channel (shift -0.030,
-0.088, -0.188; scale 0.458, 0.448, 0.450). AlexNet's five ReLU outputs (torchvision `features`
indices 1, 4, 7, 9, 11) are normalised to unit length over channels (eps 1e-10 added to the norm),
their squared difference is weighted per channel by the learnt 1x1 "lin" heads (no bias),
averaged over space, and summed over the five layers.

Weights: AlexNet ImageNet features (torchvision's alexnet-owt-7be5be79.pth, `features.N.*`) and
the v0.1 heads (`lin{k}.model.1.weight`, [1, C, 1, 1]; the `model.0` form without the dropout
slot is accepted too). Layer widths are read from the files, so narrow test files load as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

from dove_cli.errors import ModelError

ALEX_WIDTHS = (64, 192, 384, 256, 256)
ALEX_CONVS = (0, 3, 6, 8, 10)  # conv indices in torchvision's alexnet().features
LAYER_ENDS = (1, 4, 7, 9, 11)  # the ReLUs whose outputs LPIPS compares
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
_LIN_KEY = re.compile(r"lin(\d)\.model\.[01]\.weight")


def alexnet_features(widths: Sequence[int] = ALEX_WIDTHS) -> nn.Sequential:
    """torchvision's AlexNet `features` up to the last ReLU (indices 0..11)."""
    w = list(widths)
    return nn.Sequential(
        nn.Conv2d(3, w[0], 11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(w[0], w[1], 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(w[1], w[2], 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(w[2], w[3], 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(w[3], w[4], 3, padding=1),
        nn.ReLU(),
    )


class LPIPS(nn.Module):
    """LPIPS distance per image: x, y [B, 3, H, W] in [0, 1] -> [B]."""

    shift: torch.Tensor  # buffers (register_buffer), declared for type checkers
    scale: torch.Tensor

    def __init__(self, widths: Sequence[int] = ALEX_WIDTHS, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.features = alexnet_features(widths)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.lins = nn.ParameterList([nn.Parameter(torch.rand(1, c, 1, 1, generator=gen) / c) for c in widths])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    @classmethod
    def from_state_dicts(cls, alexnet: Mapping[str, torch.Tensor], heads: Mapping[str, torch.Tensor]) -> LPIPS:
        """Build from a torchvision AlexNet state dict and an LPIPS v0.1 heads state dict."""
        feats = {k[len("features.") :]: v for k, v in alexnet.items() if k.startswith("features.")}
        try:
            widths = tuple(int(feats[f"{i}.weight"].shape[0]) for i in ALEX_CONVS)
        except KeyError:
            raise ModelError(
                "AlexNet weights: no `features.N.weight` tensors (not a torchvision AlexNet file)"
            ) from None
        model = cls(widths)
        try:
            model.features.load_state_dict({k: v.float() for k, v in feats.items() if int(k.split(".")[0]) <= 11})
        except RuntimeError as exc:
            raise ModelError(f"AlexNet weights: {str(exc).splitlines()[0]}") from None
        lins = {int(m.group(1)): v for k, v in heads.items() if (m := _LIN_KEY.fullmatch(k))}
        if sorted(lins) != list(range(5)):
            raise ModelError(f"LPIPS heads: expected lin0..lin4 `model.1.weight` tensors, found {sorted(heads)[:6]}")
        for i, w in enumerate(widths):
            if lins[i].numel() != w:
                raise ModelError(
                    f"LPIPS heads: lin{i} has {lins[i].numel()} weights, AlexNet layer {i} has {w} channels"
                )
            model.lins[i].data.copy_(lins[i].float().reshape(1, w, 1, 1))
        return model

    def layer_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five AlexNet ReLU outputs for x in [0, 1]."""
        h = ((2 * x - 1) - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in LAYER_ENDS:
                out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        both = self.layer_features(torch.cat([x, y]))
        total = x.new_zeros(x.shape[0])
        for f, lin in zip(both, self.lins, strict=True):
            f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            d = (f[: x.shape[0]] - f[x.shape[0] :]) ** 2
            total = total + (d * lin.to(d.dtype)).sum(dim=1).mean(dim=(1, 2))
        return total


def published_lpips(local_files: Mapping[str, str] | None = None, *, download: bool = True) -> LPIPS:
    from dove_cli.metrics.pretrained import load_state_dict, resolve

    alex = load_state_dict(resolve("alexnet", local_files, download=download), what="AlexNet weights")
    heads = load_state_dict(resolve("lpips-alex", local_files, download=download), what="LPIPS heads")
    return LPIPS.from_state_dicts(alex, heads)
