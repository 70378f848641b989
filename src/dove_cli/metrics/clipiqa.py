"""CLIP-IQA (Wang et al. 2023) as pyiqa's default `clipiqa` metric, on our own CLIP RN50.

The image is taken whole, at its own resolution (no resize or crop), normalised with OpenAI's CLIP
mean/std, and encoded by CLIP's ModifiedResNet-50. Its attention pool runs WITHOUT the positional
embedding (pyiqa's `pos_embedding=False`: the 7x7 table of a 224 px input does not fit other sizes),
so it works at any size. Five antonym prompt pairs are encoded by CLIP's text transformer; per
pair, the softmax over the two cosine similarities x logit_scale gives P(positive); the score
is the mean over the pairs, in [0, 1], higher is better.

Weights: OpenAI's RN50 in the open_clip layout (timm/resnet50_clip.openai, safetensors). The
architecture (widths, depths, heads) is read from the tensors' shapes, as CLIP's own
`build_model` does, so a narrow test file of the same layout loads too.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from dove_cli.errors import ModelError

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PROMPTS = (
    "Good image", "bad image", "Sharp image", "blurry image", "sharp edges", "blurry edges",
    "High resolution image", "low resolution image", "Noise-free image", "noisy image",
)  # fmt: skip
# Token ids of PROMPTS under CLIP's BPE (bpe_simple_vocab_16e6.txt.gz, sha256 924691ac...6804a, as
# shipped in the open_clip_torch 3.3.0 wheel on PyPI), derived once with transformers' CLIPTokenizer
# on a vocab/merges pair built from that file: <|startoftext|> = 49406, ..., <|endoftext|> = 49407.
# tests/test_eval_metrics.py re-derives them when the vocabulary file is available.
PROMPT_TOKENS = (
    (49406, 886, 2867, 49407),
    (49406, 2103, 2867, 49407),
    (49406, 8157, 2867, 49407),
    (49406, 21977, 2867, 49407),
    (49406, 8157, 20938, 49407),
    (49406, 21977, 20938, 49407),
    (49406, 1400, 9977, 2867, 49407),
    (49406, 1042, 9977, 2867, 49407),
    (49406, 9307, 268, 1139, 2867, 49407),
    (49406, 33495, 2867, 49407),
)
CONTEXT_LENGTH = 77


def prompt_token_tensor(context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """[10, context_length] int64, zero-padded, as `clip.tokenize(PROMPTS)`."""
    out = torch.zeros(len(PROMPT_TOKENS), context_length, dtype=torch.long)
    for i, ids in enumerate(PROMPT_TOKENS):
        out[i, : len(ids)] = torch.tensor(ids)
    return out


# ------------------------------------------------------------------------------------------ image tower


class Bottleneck(nn.Module):
    """CLIP's ResNet bottleneck: stride by average pooling; the shortcut pools, then projects."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != planes * 4:
            # keys downsample.0 (conv) and downsample.1 (bn), as in CLIP ("-1" is the parameterless pool)
            self.downsample = nn.Sequential()
            self.downsample.add_module("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity())
            self.downsample.add_module("0", nn.Conv2d(inplanes, planes * 4, 1, bias=False))
            self.downsample.add_module("1", nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.pool(out)))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + shortcut)


class AttentionPool(nn.Module):
    """Multi-head attention of the mean token over [mean; all positions]; no positional embedding."""

    def __init__(self, grid: int, dim: int, heads: int, out_dim: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, dim))  # loaded, not used (pyiqa)
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, out_dim)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)  # [N, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # [N, 1 + HW, C]
        d = c // self.heads
        q = self.q_proj(tokens[:, :1]).view(n, 1, self.heads, d).transpose(1, 2)  # only the mean token's output is kept
        k = self.k_proj(tokens).view(n, -1, self.heads, d).transpose(1, 2)
        v = self.v_proj(tokens).view(n, -1, self.heads, d).transpose(1, 2)
        att = torch.softmax((q * d**-0.5) @ k.transpose(-1, -2), dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(n, c))


class ModifiedResNet(nn.Module):
    def __init__(self, layers: tuple[int, ...], width: int, heads: int, out_dim: int, grid: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        inplanes = width
        stages = []
        for i, blocks in enumerate(layers):
            planes = width * 2**i
            stage = [Bottleneck(inplanes, planes, 1 if i == 0 else 2)]
            inplanes = planes * 4
            stage += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.attnpool = AttentionPool(grid, width * 32, heads, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = F.relu(bn(conv(x)))
        x = F.avg_pool2d(x, 2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


# ------------------------------------------------------------------------------------------ text tower


class _Attention(nn.Module):
    """nn.MultiheadAttention's parameter names (in_proj_weight/bias, out_proj), causal, batch-first."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, c = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        split = lambda t: t.view(n, length, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(dim, dim * 4))
        self.mlp.add_module("gelu", _QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(dim * 4, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _Transformer(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.Sequential(*[_Block(dim, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


# ------------------------------------------------------------------------------------------ CLIP


class CLIPRN50(nn.Module):
    """CLIP with a ModifiedResNet image tower; sizes as in the state dict (RN50: layers 3-4-6-3, width 64)."""

    def __init__(
        self,
        layers: tuple[int, ...] = (3, 4, 6, 3),
        width: int = 64,
        embed_dim: int = 1024,
        grid: int = 7,
        context_length: int = CONTEXT_LENGTH,
        vocab_size: int = 49408,
        text_width: int = 512,
        text_layers: int = 12,
    ) -> None:
        super().__init__()
        self.visual = ModifiedResNet(layers, width, width * 32 // 64, embed_dim, grid)
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(context_length, text_width))
        self.transformer = _Transformer(text_width, text_layers, max(1, text_width // 64))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.zeros(text_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> CLIPRN50:
        """Infer the sizes from the tensors (as CLIP's build_model) and load them (float32)."""
        try:
            layers = tuple(
                len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}.")}) for b in (1, 2, 3, 4)
            )
            pos = sd["visual.attnpool.positional_embedding"].shape[0]
            config = dict(
                layers=layers,
                width=int(sd["visual.layer1.0.conv1.weight"].shape[0]),
                embed_dim=int(sd["text_projection"].shape[1]),
                grid=round((pos - 1) ** 0.5),
                context_length=int(sd["positional_embedding"].shape[0]),
                vocab_size=int(sd["token_embedding.weight"].shape[0]),
                text_width=int(sd["ln_final.weight"].shape[0]),
                text_layers=len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")}),
            )
        except (KeyError, IndexError) as exc:
            raise ModelError(f"CLIP weights: not a CLIP ResNet state dict (missing {exc})") from None
        if 0 in layers or config["vocab_size"] <= max(max(t) for t in PROMPT_TOKENS):
            raise ModelError(f"CLIP weights: not a CLIP ResNet state dict (layers {layers})")
        model = cls(**config)
        own = model.state_dict()
        tensors = {k: v.float() for k, v in sd.items() if k in own}
        missing = sorted(k for k in own if k not in tensors and not k.endswith("num_batches_tracked"))
        if missing:
            raise ModelError(f"CLIP weights: missing {len(missing)} tensors (first: {missing[0]})")
        try:
            model.load_state_dict(tensors, strict=False)
        except RuntimeError as exc:
            raise ModelError(f"CLIP weights: {str(exc).splitlines()[0]}") from None
        return model.eval().requires_grad_(False)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x))
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection


class CLIPIQA(nn.Module):
    """CLIP-IQA per image: x [B, 3, H, W] in [0, 1] (any size >= 32 px) -> [B] in [0, 1]."""

    mean: torch.Tensor  # buffers (register_buffer), declared for type checkers
    std: torch.Tensor

    def __init__(self, clip: CLIPRN50) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self._text: torch.Tensor | None = None

    def text_features(self) -> torch.Tensor:
        """[10, D] unit-length prompt features (computed once: the prompts never change)."""
        if self._text is None or self._text.device != self.clip.text_projection.device:
            tokens = prompt_token_tensor(self.clip.positional_embedding.shape[0]).to(self.clip.text_projection.device)
            with torch.no_grad():
                t = self.clip.encode_text(tokens)
            self._text = t / t.norm(dim=-1, keepdim=True)
        return self._text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img = self.clip.visual((x.float() - self.mean) / self.std)
        img = img / img.norm(dim=-1, keepdim=True)
        logits = self.clip.logit_scale.exp() * img @ self.text_features().t()  # [B, 10]
        probs = logits.view(x.shape[0], -1, 2).softmax(dim=-1)
        return probs[..., 0].mean(dim=1)


def published_clipiqa(local_files: Mapping[str, str] | None = None, *, download: bool = True) -> CLIPIQA:
    from dove_cli.metrics.pretrained import load_state_dict, resolve

    sd = load_state_dict(resolve("clip-rn50", local_files, download=download), what="CLIP weights")
    return CLIPIQA(CLIPRN50.from_state_dict(sd))
