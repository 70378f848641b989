"""DISTS (Ding et al. 2020) on our own VGG16: the stage-2 training loss and the `dists` metric.

DISTS compares VGG16 feature statistics (means -> "structure", variances and covariance ->
"texture") with learnt per-channel weights alpha and beta. The VGG16 stack is written with
torchvision's `features` indices, so torchvision- and timm-format state dicts (`features.N.*`)
load unchanged; max-pooling is replaced by L2 pooling as in DISTS.

Weights (see `pretrained.WEIGHT_FILES`): VGG16 ImageNet features (timm/vgg16.tv_in1k, the
torchvision weights) and the published alpha/beta (pyiqa's DISTS_weights file). Files a user
gives may be any of:
- DISTS_pytorch `weights.pt` or pyiqa's DISTS file: {'alpha': [1, 1475, 1, 1], 'beta': [...]};
- a torchvision `vgg16-*.pth` or timm `model.safetensors` (`features.N.*`, the rest ignored);
- pyiqa's combined layout (`stageK.N.*` + alpha/beta).
Layer widths are read from the file, so a narrow VGG16 of the same key layout (tests) loads too.
Without weights the network is randomly initialised: `DISTS.pretrained` says which, and a warning
is logged once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from dove_cli.errors import DoveError, ModelError, OptionError

log = logging.getLogger(__name__)

VGG16_WIDTHS = (64, 128, 256, 512, 512)  # conv widths of the five stages
_CONVS_PER_STAGE = (2, 2, 3, 3, 3)
# torchvision VGG16 ("D") features: conv widths, "M" = pooling (indices 4, 9, 16, 23; 30 unused here)
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
STAGE_ENDS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
FIRST_CONVS = (0, 5, 10, 17, 24)  # the first conv of each stage: its out-channels are the stage width
CHANNELS = (3, *VGG16_WIDTHS)  # input + the five stages: sum 1475
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FEATURE_KEY = re.compile(r"(?:module\.)?(?:features|stage\d)\.(\d+)\.(weight|bias)")


def vgg16_cfg(widths: Sequence[int] = VGG16_WIDTHS) -> tuple[int | str, ...]:
    cfg: list[int | str] = []
    for i, (w, n) in enumerate(zip(widths, _CONVS_PER_STAGE, strict=True)):
        cfg += ["M"] if i else []
        cfg += [int(w)] * n
    return tuple(cfg)


class L2Pool(nn.Module):
    """sqrt(hanning-weighted local mean of x^2), stride 2: the anti-aliased pooling of DISTS."""

    kernel: torch.Tensor  # a buffer (register_buffer), declared for type checkers

    def __init__(self, channels: int, size: int = 5, stride: int = 2) -> None:
        super().__init__()
        a = torch.hann_window(size, periodic=False, dtype=torch.float64)[1:-1]
        g = a[:, None] * a[None, :]
        self.register_buffer("kernel", (g / g.sum()).float()[None, None].repeat(channels, 1, 1, 1), persistent=False)
        self.stride, self.padding = stride, (size - 2) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.kernel.to(x.dtype), stride=self.stride, padding=self.padding, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def vgg16_features(l2pool: bool = True, widths: Sequence[int] = VGG16_WIDTHS) -> nn.Sequential:
    """VGG16 conv stack up to relu5_3 (indices 0..29, as torchvision's `vgg16().features`)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in vgg16_cfg(widths):
        if v == "M":
            layers.append(L2Pool(in_ch) if l2pool else nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(v)
    return nn.Sequential(*layers)


def _feature_tensors(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`features.N.*` / `stageK.N.*` tensors of a VGG16 state dict, keyed `N.weight` / `N.bias`."""
    out = {}
    for key, value in sd.items():
        m = _FEATURE_KEY.fullmatch(key)
        if m and int(m.group(1)) <= STAGE_ENDS[-1]:
            out[f"{m.group(1)}.{m.group(2)}"] = value
    return out


def _widths_of(feats: Mapping[str, torch.Tensor]) -> tuple[int, ...] | None:
    try:
        return tuple(int(feats[f"{i}.weight"].shape[0]) for i in FIRST_CONVS)
    except KeyError:
        return None


def _wanted(key: str) -> bool:
    """The tensors DISTS uses: alpha/beta and the VGG16 convolutions (not a classifier)."""
    return key in ("alpha", "beta") or _FEATURE_KEY.fullmatch(key) is not None


def _read(path: Path, what: str) -> dict[str, torch.Tensor]:
    from dove_cli.metrics.pretrained import load_state_dict

    try:
        return load_state_dict(path, _wanted, what=what)  # says "{what} {path}: ..."
    except ModelError as exc:
        raise OptionError(str(exc)) from None


class DISTS(nn.Module):
    """DISTS distance per image: x, y [B, 3, H, W] in [0, 1] -> [B] (0 for identical images).

    weights: files to load (see the module doc); `state_dicts` the same, already read (the
    metric's hub loader). Layer widths come from the VGG tensors when given, else `widths`.
    """

    mean: torch.Tensor  # buffers (register_buffer), declared for type checkers
    std: torch.Tensor

    def __init__(
        self,
        weights: Sequence[str | Path] = (),
        seed: int = 0,
        *,
        state_dicts: Sequence[tuple[str, Mapping[str, torch.Tensor]]] = (),
        widths: Sequence[int] = VGG16_WIDTHS,
        warn: bool = True,
    ) -> None:
        super().__init__()
        sources = [(f"--dists-weights {p}", _read(Path(p), f"--dists-weights {p}")) for p in weights]
        sources += [(label, dict(sd)) for label, sd in state_dicts]
        for _, sd in sources:
            widths = _widths_of(_feature_tensors(sd)) or widths
        self.channels = (3, *widths)
        gen = torch.Generator().manual_seed(seed)
        self.features = vgg16_features(widths=widths)
        for m in self.features:  # deterministic random init (kaiming, as torchvision does)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        n = sum(self.channels)
        self.alpha = nn.Parameter(0.1 + 0.01 * torch.randn(1, n, 1, 1, generator=gen))
        self.beta = nn.Parameter(0.1 + 0.01 * torch.randn(1, n, 1, 1, generator=gen))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.vgg_loaded = False
        self.head_loaded = False
        for label, sd in sources:
            self.load_tensors(sd, label)
        self.requires_grad_(False)
        if not self.pretrained and warn:
            log.warning(
                "DISTS: no published %s weights given (--dists-weights); using a random init, "
                "so the perceptual term is not the published DISTS",
                " and ".join(self.missing()),
            )

    @property
    def pretrained(self) -> bool:
        """True only when both the VGG16 features and the alpha/beta head came from files."""
        return self.vgg_loaded and self.head_loaded

    def missing(self) -> list[str]:
        return [name for name, ok in (("VGG16", self.vgg_loaded), ("alpha/beta", self.head_loaded)) if not ok]

    def load_tensors(self, sd: Mapping[str, torch.Tensor], label: str) -> None:
        found = False
        if "alpha" in sd and "beta" in sd:
            n = sum(self.channels)
            alpha, beta = sd["alpha"].reshape(1, -1, 1, 1), sd["beta"].reshape(1, -1, 1, 1)
            if alpha.shape[1] != n or beta.shape[1] != n:
                raise OptionError(f"{label}: alpha/beta must have {n} entries, not {alpha.shape[1]}")
            self.alpha.data.copy_(alpha.float())
            self.beta.data.copy_(beta.float())
            self.head_loaded = found = True
        feats = _feature_tensors(sd)
        if feats:
            expected = set(self.features.state_dict())
            if set(feats) != expected:
                raise OptionError(f"{label}: VGG16 features incomplete ({len(feats)} of {len(expected)} tensors)")
            try:
                self.features.load_state_dict({k: v.float() for k, v in feats.items()})
            except RuntimeError as exc:
                raise OptionError(f"{label}: not VGG16 features ({str(exc).splitlines()[0]})") from exc
            self.vgg_loaded = found = True
        if not found:
            raise OptionError(f"{label}: holds neither alpha/beta nor VGG16 `features.N` tensors")

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
        alphas = torch.split(self.alpha / w_sum, list(self.channels), dim=1)
        betas = torch.split(self.beta / w_sum, list(self.channels), dim=1)
        structure: torch.Tensor | float = 0.0
        texture: torch.Tensor | float = 0.0
        for a, b, u, v in zip(alphas, betas, fx, fy, strict=True):
            mu_u, mu_v = u.mean((2, 3), keepdim=True), v.mean((2, 3), keepdim=True)
            du, dv = u - mu_u, v - mu_v
            var_u, var_v = (du * du).mean((2, 3), keepdim=True), (dv * dv).mean((2, 3), keepdim=True)
            cov = (du * dv).mean((2, 3), keepdim=True)  # centred form: exactly var when u == v
            s1 = (2 * mu_u * mu_v + c1) / (mu_u**2 + mu_v**2 + c1)
            s2 = (2 * cov + c2) / (var_u + var_v + c2)
            structure = structure + (a * s1).sum(1)
            texture = texture + (b * s2).sum(1)
        return 1 - cast(torch.Tensor, structure + texture).flatten()  # (a tensor: the loop ran six times)


def published_dists(
    files: Sequence[str | Path] = (), *, download: bool = True, local_files: Mapping[str, str | Path] | None = None
) -> DISTS:
    """DISTS with the published weights: the parts the given files lack come from the hub (cache first).

    Raises OptionError for a given file that is not DISTS weights, ModelError / DownloadError (one
    line, with the command to run) when a published part cannot be had.
    """
    from dove_cli.metrics.pretrained import WEIGHT_FILES, resolve

    given: list[tuple[str, Mapping[str, torch.Tensor]]] = []
    for p in files:
        given.append((f"--dists-weights {p}", _read(Path(p), "--dists-weights")))
    probe = DISTS(state_dicts=given, warn=False) if given else None  # what the files hold
    for key, have in (
        ("vgg16", probe is not None and probe.vgg_loaded),
        ("dists", probe is not None and probe.head_loaded),
    ):
        if not have:
            path = resolve(key, local_files, download=download)
            given.append((f"{WEIGHT_FILES[key].what} {path}", _read(path, WEIGHT_FILES[key].what)))
    return DISTS(state_dicts=given, warn=False)


def training_dists(files: Sequence[str | Path] = ()) -> DISTS:
    """Stage 2's DISTS: the published weights (given files, the hub cache, or a download), or a
    one-line refusal that says what to run."""
    try:
        return published_dists(files)
    except OptionError:
        raise
    except DoveError as exc:
        local = "" if "--dists-weights" in str(exc) else ", or pass the files with --dists-weights"
        raise OptionError(
            f"stage 2 needs the published DISTS weights: {exc}{local}; or train without the DISTS term: --dists-weight 0"
        ) from None
