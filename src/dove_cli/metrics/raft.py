"""RAFT optical flow (Teed & Deng 2020), large model, inference only, on plain torch.

Module and parameter names follow torchvision's `raft_large`, so torchvision-format state dicts
(raft_large_C_T_V1-22a6c225.pth, the port of the "things" weights) load unchanged; the original
princeton-vl files (raft-things.pth, `module.fnet.*`, `module.cnet.*`, `module.update_block.*`)
are mapped onto the same names by `from_princeton`. Sizes come from `RAFTConfig`, so tests build
narrow models of the same layout.

Computation, per image pair (both [B, 3, H, W] in [0, 1], H and W multiples of 8):
1. inputs to [-1, 1]; a feature encoder (instance norm) on both images, a context encoder
   (batch norm, eval mode) on the first, all at 1/8 resolution;
2. all-pairs correlation of the two feature maps / sqrt(C), pooled into 4 levels (2x2 averages);
3. 20 iterations: look up a (2r+1)^2 window (r = 4) around the current match in every level
   (bilinear, align_corners=True), encode it with the flow, update a separable ConvGRU (1x5 then
   5x1), add the predicted flow change;
4. the final 1/8 flow is upsampled x8 as a convex combination of its 3x3 neighbours, with weights
   from a mask head (x 0.25 before the softmax).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dove_cli.errors import ModelError


@dataclass(frozen=True)
class RAFTConfig:
    feature_layers: tuple[int, ...] = (64, 64, 96, 128, 256)
    context_layers: tuple[int, ...] = (64, 64, 96, 128, 256)
    corr_levels: int = 4
    corr_radius: int = 4
    motion_corr_layers: tuple[int, int] = (256, 192)
    motion_flow_layers: tuple[int, int] = (128, 64)
    motion_out: int = 128
    hidden: int = 128
    flow_head_hidden: int = 256
    mask_hidden: int = 256

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], levels: int = 4) -> RAFTConfig:
        """The sizes a torchvision-layout state dict was made with (4 correlation levels assumed)."""

        def out(key: str) -> int:
            return int(sd[key].shape[0])

        def encoder(name: str) -> tuple[int, ...]:
            return (
                out(f"{name}.convnormrelu.0.weight"),
                *(out(f"{name}.layer{i}.0.convnormrelu1.0.weight") for i in (1, 2, 3)),
                out(f"{name}.conv.weight"),
            )

        me = "update_block.motion_encoder"
        corr_channels = int(sd[f"{me}.convcorr1.0.weight"].shape[1])
        radius = (round((corr_channels / levels) ** 0.5) - 1) // 2
        return cls(
            feature_layers=encoder("feature_encoder"),
            context_layers=encoder("context_encoder"),
            corr_levels=levels,
            corr_radius=radius,
            motion_corr_layers=(out(f"{me}.convcorr1.0.weight"), out(f"{me}.convcorr2.0.weight")),
            motion_flow_layers=(out(f"{me}.convflow1.0.weight"), out(f"{me}.convflow2.0.weight")),
            motion_out=out(f"{me}.conv.0.weight") + 2,
            hidden=out("update_block.recurrent_block.convgru1.convz.weight"),
            flow_head_hidden=out("update_block.flow_head.conv1.weight"),
            mask_hidden=out("mask_predictor.convrelu.0.weight"),
        )


def _cna(cin: int, cout: int, k: int, stride: int = 1, norm: str | None = None, act: bool = True) -> nn.Sequential:
    """Conv (+ norm) (+ ReLU) with torchvision's Conv2dNormActivation indices: 0 conv, 1 norm."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2)]
    if norm == "instance":
        layers.append(nn.InstanceNorm2d(cout))
    elif norm == "batch":
        layers.append(nn.BatchNorm2d(cout))
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str, stride: int = 1) -> None:
        super().__init__()
        self.convnormrelu1 = _cna(cin, cout, 3, stride, norm)
        self.convnormrelu2 = _cna(cout, cout, 3, 1, norm)
        self.downsample: nn.Module = _cna(cin, cout, 1, stride, norm, act=False) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.downsample(x) + self.convnormrelu2(self.convnormrelu1(x)))


class FeatureEncoder(nn.Module):
    """7x7/2 stem, three pairs of residual blocks (strides 1, 2, 2), a 1x1 projection: 1/8 resolution."""

    def __init__(self, layers: tuple[int, ...], norm: str) -> None:
        super().__init__()
        self.convnormrelu = _cna(3, layers[0], 7, 2, norm)
        self.layer1 = nn.Sequential(
            ResidualBlock(layers[0], layers[1], norm, 1), ResidualBlock(layers[1], layers[1], norm)
        )
        self.layer2 = nn.Sequential(
            ResidualBlock(layers[1], layers[2], norm, 2), ResidualBlock(layers[2], layers[2], norm)
        )
        self.layer3 = nn.Sequential(
            ResidualBlock(layers[2], layers[3], norm, 2), ResidualBlock(layers[3], layers[3], norm)
        )
        self.conv = nn.Conv2d(layers[3], layers[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.layer3(self.layer2(self.layer1(self.convnormrelu(x)))))


class MotionEncoder(nn.Module):
    def __init__(
        self, corr_channels: int, corr_layers: tuple[int, int], flow_layers: tuple[int, int], out: int
    ) -> None:
        super().__init__()
        self.convcorr1 = _cna(corr_channels, corr_layers[0], 1)
        self.convcorr2 = _cna(corr_layers[0], corr_layers[1], 3)
        self.convflow1 = _cna(2, flow_layers[0], 7)
        self.convflow2 = _cna(flow_layers[0], flow_layers[1], 3)
        self.conv = _cna(corr_layers[1] + flow_layers[1], out - 2, 3)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = self.convcorr2(self.convcorr1(corr))
        f = self.convflow2(self.convflow1(flow))
        return torch.cat([self.conv(torch.cat([c, f], dim=1)), flow], dim=1)


class ConvGRU(nn.Module):
    def __init__(self, inp: int, hidden: int, kernel: tuple[int, int], padding: tuple[int, int]) -> None:
        super().__init__()
        self.convz = nn.Conv2d(hidden + inp, hidden, kernel, padding=padding)
        self.convr = nn.Conv2d(hidden + inp, hidden, kernel, padding=padding)
        self.convq = nn.Conv2d(hidden + inp, hidden, kernel, padding=padding)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx))
        r = torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class RecurrentBlock(nn.Module):
    def __init__(self, inp: int, hidden: int) -> None:
        super().__init__()
        self.convgru1 = ConvGRU(inp, hidden, (1, 5), (0, 2))
        self.convgru2 = ConvGRU(inp, hidden, (5, 1), (2, 0))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.convgru2(self.convgru1(h, x), x)


class FlowHead(nn.Module):
    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    def __init__(self, cfg: RAFTConfig) -> None:
        super().__init__()
        corr_channels = cfg.corr_levels * (2 * cfg.corr_radius + 1) ** 2
        context = cfg.context_layers[-1] - cfg.hidden
        self.motion_encoder = MotionEncoder(
            corr_channels, cfg.motion_corr_layers, cfg.motion_flow_layers, cfg.motion_out
        )
        self.recurrent_block = RecurrentBlock(cfg.motion_out + context, cfg.hidden)
        self.flow_head = FlowHead(cfg.hidden, cfg.flow_head_hidden)


class MaskPredictor(nn.Module):
    def __init__(self, hidden: int, mask_hidden: int) -> None:
        super().__init__()
        self.convrelu = _cna(hidden, mask_hidden, 3)
        self.conv = nn.Conv2d(mask_hidden, 8 * 8 * 9, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.25 * self.conv(self.convrelu(x))


def coords_grid(b: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """[B, 2, H, W] pixel coordinates, x (column) first."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs, ys]).float()[None].repeat(b, 1, 1, 1)


def sample_pixels(img: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of img [N, C, H, W] at pixel coordinates coords [N, h, w, 2] (x, y); zeros outside."""
    h, w = img.shape[-2:]
    gx = 2 * coords[..., 0] / max(w - 1, 1) - 1
    gy = 2 * coords[..., 1] / max(h - 1, 1) - 1
    return F.grid_sample(img, torch.stack([gx, gy], dim=-1), mode="bilinear", align_corners=True)


class CorrBlock:
    """All-pairs correlation pyramid of two [B, C, h, w] feature maps and its windowed lookup."""

    def __init__(self, fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int, radius: int) -> None:
        b, c, h, w = fmap1.shape
        corr = fmap1.flatten(2).transpose(1, 2) @ fmap2.flatten(2) / c**0.5  # [B, h*w, h*w]
        corr = corr.reshape(b * h * w, 1, h, w)
        self.pyramid = [corr]
        for _ in range(levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.pyramid.append(corr)
        self.radius = radius
        r = torch.linspace(-radius, radius, 2 * radius + 1, device=fmap1.device)
        di, dj = torch.meshgrid(r, r, indexing="ij")
        self.delta = torch.stack([di, dj], dim=-1)[None]  # [1, 2r+1, 2r+1, 2]: added to (x, y)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """coords [B, 2, h, w] -> [B, levels * (2r+1)^2, h, w] correlation features."""
        b, _, h, w = coords.shape
        centre = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
        out = []
        for level, corr in enumerate(self.pyramid):
            window = sample_pixels(corr, centre / 2**level + self.delta)  # [B*h*w, 1, 2r+1, 2r+1]
            out.append(window.view(b, h, w, -1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()


def upsample_flow(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, 2, h, w] flow at 1/8 -> [B, 2, 8h, 8w]: each fine pixel a softmax-weighted mix of 3x3 coarse ones."""
    b, _, h, w = flow.shape
    weights = torch.softmax(mask.view(b, 1, 9, 8, 8, h, w), dim=2)
    neighbours = F.unfold(8 * flow, 3, padding=1).view(b, 2, 9, 1, 1, h, w)
    up = (weights * neighbours).sum(dim=2)  # [B, 2, 8, 8, h, w]
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, 8 * h, 8 * w)


class RAFT(nn.Module):
    def __init__(self, cfg: RAFTConfig = RAFTConfig()) -> None:
        super().__init__()
        if cfg.context_layers[-1] <= cfg.hidden:
            raise ValueError("the context encoder must output more channels than the hidden state")
        self.cfg = cfg
        self.feature_encoder = FeatureEncoder(cfg.feature_layers, "instance")
        self.context_encoder = FeatureEncoder(cfg.context_layers, "batch")
        self.update_block = UpdateBlock(cfg)
        self.mask_predictor = MaskPredictor(cfg.hidden, cfg.mask_hidden)

    @torch.no_grad()
    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iters: int = 20) -> torch.Tensor:
        """image1, image2 [B, 3, H, W] in [0, 1], H and W multiples of 8 -> flow 1 -> 2 [B, 2, H, W] (pixels)."""
        b, _, h, w = image1.shape
        if h % 8 or w % 8:
            raise ValueError(f"RAFT needs sizes that divide by 8, not {w}x{h}")
        x1, x2 = 2 * image1 - 1, 2 * image2 - 1
        fmap1, fmap2 = self.feature_encoder(torch.cat([x1, x2])).float().chunk(2)
        corr = CorrBlock(fmap1, fmap2, self.cfg.corr_levels, self.cfg.corr_radius)
        hidden, context = torch.split(
            self.context_encoder(x1), [self.cfg.hidden, self.cfg.context_layers[-1] - self.cfg.hidden], dim=1
        )
        hidden, context = torch.tanh(hidden), F.relu(context)
        coords0 = coords_grid(b, h // 8, w // 8, image1.device)
        coords1 = coords0.clone()
        ub = self.update_block
        for _ in range(iters):
            flow = coords1 - coords0
            motion = ub.motion_encoder(flow, corr(coords1))
            hidden = ub.recurrent_block(hidden, torch.cat([context, motion], dim=1))
            coords1 = coords1 + ub.flow_head(hidden)
        return upsample_flow(coords1 - coords0, self.mask_predictor(hidden))

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], cfg: RAFTConfig | None = None) -> RAFT:
        """Load a torchvision-format or princeton-vl-format (raft-things.pth) state dict."""
        if any(k.removeprefix("module.").startswith(("fnet.", "cnet.", "update_block.encoder.")) for k in sd):
            sd = from_princeton(sd)
        if cfg is None:
            try:
                cfg = RAFTConfig.from_state_dict(sd)
            except KeyError as exc:
                raise ModelError(f"RAFT weights: not a RAFT state dict (missing {exc})") from None
        model = cls(cfg)
        tensors = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
        for key, value in model.state_dict().items():  # files saved by older torch lack these counters
            if key.endswith("num_batches_tracked"):
                tensors.setdefault(key, value)
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            lines = str(exc).splitlines()
            raise ModelError(
                f"RAFT weights: not RAFT-large ({lines[1].strip() if len(lines) > 1 else lines[0]})"
            ) from None
        return model.eval().requires_grad_(False)


_PRINCETON = [
    (r"(fnet|cnet)\.conv1\.", r"\1.convnormrelu.0."),
    (r"(fnet|cnet)\.norm1\.", r"\1.convnormrelu.1."),
    (r"(fnet|cnet)\.conv2\.", r"\1.conv."),
    (r"(layer\d\.\d)\.conv1\.", r"\1.convnormrelu1.0."),
    (r"(layer\d\.\d)\.norm1\.", r"\1.convnormrelu1.1."),
    (r"(layer\d\.\d)\.conv2\.", r"\1.convnormrelu2.0."),
    (r"(layer\d\.\d)\.norm2\.", r"\1.convnormrelu2.1."),
    (r"^fnet\.", "feature_encoder."),
    (r"^cnet\.", "context_encoder."),
    (r"update_block\.encoder\.convc1\.", "update_block.motion_encoder.convcorr1.0."),
    (r"update_block\.encoder\.convc2\.", "update_block.motion_encoder.convcorr2.0."),
    (r"update_block\.encoder\.convf1\.", "update_block.motion_encoder.convflow1.0."),
    (r"update_block\.encoder\.convf2\.", "update_block.motion_encoder.convflow2.0."),
    (r"update_block\.encoder\.conv\.", "update_block.motion_encoder.conv.0."),
    (r"update_block\.gru\.conv([zrq])1\.", r"update_block.recurrent_block.convgru1.conv\1."),
    (r"update_block\.gru\.conv([zrq])2\.", r"update_block.recurrent_block.convgru2.conv\1."),
    (r"update_block\.mask\.0\.", "mask_predictor.convrelu.0."),
    (r"update_block\.mask\.2\.", "mask_predictor.conv."),
]


def from_princeton(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """princeton-vl RAFT names -> torchvision names. `norm3` is the same module as `downsample.1`
    there (registered twice), so it is dropped."""
    out = {}
    for key, value in sd.items():
        key = key.removeprefix("module.")
        if re.search(r"\.norm3\.", key):
            continue
        for pattern, repl in _PRINCETON:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def published_raft(local_files: Mapping[str, str] | None = None, *, download: bool = True) -> RAFT:
    from dove_cli.metrics.pretrained import load_state_dict, resolve

    return RAFT.from_state_dict(
        load_state_dict(resolve("raft-things", local_files, download=download), what="RAFT weights")
    )
