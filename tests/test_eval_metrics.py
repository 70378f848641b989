"""Metrics against independent formulas written out here (numpy / scipy / torch's own attention),
on random weights: PSNR, SSIM, LPIPS, DISTS, CLIP-IQA (towers, pooling, prompt head, token ids)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from dove_cli.metrics import psnr_ssim
from dove_cli.metrics.clipiqa import CLIPIQA, CLIPRN50, PROMPT_TOKENS, PROMPTS, AttentionPool, prompt_token_tensor
from dove_cli.metrics.dists import DISTS, published_dists
from dove_cli.metrics.lpips import LPIPS

G = torch.Generator().manual_seed(0)


def frames(n: int = 2, h: int = 40, w: int = 48, seed: int = 0) -> torch.Tensor:
    """8-bit-valued frames in [0, 1], as decoded video gives."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g).float() / 255


# ------------------------------------------------------------------------------------------ PSNR / SSIM


def test_psnr_is_numpy_psnr():
    x = frames(3)
    y = (x + 0.03 * torch.randn(x.shape, generator=G)).clamp(0, 1)
    a, b = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    ref = [10 * np.log10(1 / (np.mean((a[i] - b[i]) ** 2) + 1e-8)) for i in range(3)]
    assert np.allclose(psnr_ssim.psnr(x, y).numpy(), ref, atol=1e-9)
    assert psnr_ssim.psnr(x, x)[0].item() == pytest.approx(80.0)  # pyiqa's eps: identical frames score 80 dB


def _yiq_luma255(im: np.ndarray) -> np.ndarray:
    """pyiqa's SSIM input: YIQ luma of [3, H, W] RGB in [0, 1], x 255, rounded (8-bit as MATLAB sees it)."""
    return np.round((0.299 * im[0] + 0.587 * im[1] + 0.114 * im[2]) * 255)


def _bt601_y(im: np.ndarray) -> np.ndarray:
    """BasicSR's `rgb2ycbcr(y_only=True)` x 255: 16 + 65.481 R + 128.553 G + 24.966 B, float64, not rounded."""
    return 16.0 + 65.481 * im[0] + 128.553 * im[1] + 24.966 * im[2]


def _ssim_reference(x: np.ndarray, y: np.ndarray, luma=_yiq_luma255, clip_cs: bool = True) -> float:
    """Wang et al. 2004 as MATLAB's ssim_index: 8-bit luma, fspecial('gaussian', 11, 1.5), 'valid'.
    With luma=_bt601_y and clip_cs=False: BasicSR's `_ssim` (cv2.filter2D, then [5:-5, 5:-5])."""
    a, b = luma(x), luma(y)
    r = np.arange(11) - 5.0
    win = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    win /= win.sum()
    f = lambda im: convolve2d(im, win, mode="valid")  # noqa: E731
    mu_a, mu_b = f(a), f(b)
    s_aa, s_bb, s_ab = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cs = (2 * s_ab + c2) / (s_aa + s_bb + c2)
    cs = np.maximum(cs, 0) if clip_cs else cs
    return float(np.mean((2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs))


def test_ssim_matches_an_independent_formulation():
    x = frames(2, 37, 53)
    y = (x + 0.08 * torch.randn(x.shape, generator=G)).clamp(0, 1)
    got = psnr_ssim.ssim(x, y).numpy()
    ref = [_ssim_reference(x[i].double().numpy(), y[i].double().numpy()) for i in range(2)]
    assert np.allclose(got, ref, atol=2e-6), (got, ref)
    assert psnr_ssim.ssim(x, x)[0].item() == pytest.approx(1.0, abs=1e-12)
    # the luma is of YIQ, not BT.601 "studio" YCbCr: a colour change of equal YIQ luma scores 1
    z = x.clone()
    z[:, 0] += 0.587 * 0.01
    z[:, 1] -= 0.299 * 0.01
    assert psnr_ssim.ssim(x.clamp(0.02, 0.98), z.clamp(0.02, 0.98))[0].item() > 0.999
    # anti-correlated frames: the contrast-structure term is clipped at 0, so SSIM stays at 0, not below
    inverse = psnr_ssim.ssim(x, 1 - x)
    assert (inverse >= 0).all() and (inverse < 0.05).all()


def test_ssim_y_is_basicsr_ssim_on_the_bt601_y():
    """BasicSR's calculate_ssim(test_y_channel=True): Y with the 16 offset, not rounded, no clip at 0
    (the anti-correlated pair scores below 0, where pyiqa's `ssim` stops at 0)."""
    x = frames(3, 16, 19)
    y = (x + 0.08 * torch.randn(x.shape, generator=G)).clamp(0, 1)
    y[2] = 1 - x[2]
    got = psnr_ssim.ssim_y(x, y).numpy()
    ref = [_ssim_reference(x[i].double().numpy(), y[i].double().numpy(), _bt601_y, clip_cs=False) for i in range(3)]
    assert np.allclose(got, ref, atol=1e-10), (got, ref)
    assert got[2] < 0 and psnr_ssim.ssim(x[2:], y[2:])[0] >= 0
    assert psnr_ssim.ssim_y(x, x)[0].item() == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------------------------------ LPIPS


def _lpips_reference(model: LPIPS, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """LPIPS written out: the input scaling, AlexNet's five stages by hand, unit-normalised features,
    weighted squared differences, spatial mean, sum over layers (float64)."""
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    wb = [(c.weight.double(), c.bias.double()) for c in convs]

    def feats(im: torch.Tensor) -> list[torch.Tensor]:
        h = ((2 * im.double() - 1) - shift) / scale
        out = []
        h = F.relu(F.conv2d(h, *wb[0], stride=4, padding=2))
        out.append(h)
        h = F.relu(F.conv2d(F.max_pool2d(h, 3, 2), *wb[1], padding=2))
        out.append(h)
        h = F.relu(F.conv2d(F.max_pool2d(h, 3, 2), *wb[2], padding=1))
        out.append(h)
        h = F.relu(F.conv2d(h, *wb[3], padding=1))
        out.append(h)
        h = F.relu(F.conv2d(h, *wb[4], padding=1))
        out.append(h)
        return out

    total = np.zeros(x.shape[0])
    for fa, fb, lin in zip(feats(x), feats(y), model.lins, strict=True):
        na = fa.numpy() / (np.sqrt((fa.numpy() ** 2).sum(1, keepdims=True)) + 1e-10)
        nb = fb.numpy() / (np.sqrt((fb.numpy() ** 2).sum(1, keepdims=True)) + 1e-10)
        w = lin.detach().double().numpy().reshape(1, -1, 1, 1)
        total += ((na - nb) ** 2 * w).sum(1).mean(axis=(1, 2))
    return total


def test_lpips_matches_the_formula_on_random_weights():
    model = LPIPS(widths=(8, 12, 16, 12, 12), seed=3)
    x = frames(2, 64, 72, seed=1)
    y = (x + 0.1 * torch.randn(x.shape, generator=G)).clamp(0, 1)
    got = model(x, y).double().numpy()
    assert np.allclose(got, _lpips_reference(model, x, y), rtol=1e-4, atol=1e-7)
    assert model(x, x).abs().max().item() < 1e-7


# ------------------------------------------------------------------------------------------ DISTS


def test_dists_from_published_layouts_with_width_from_the_file(tmp_path):
    """A timm-layout VGG16 safetensors (extra classifier tensors ignored) and pyiqa's alpha/beta file:
    narrow widths are read from the file, and the score is the DISTS formula."""
    from safetensors.torch import save_file

    from eval_refs import dists_reference

    src = DISTS(seed=4, widths=(4, 8, 8, 16, 16), warn=False)
    timm = {f"features.{k}": v.contiguous() for k, v in src.features.state_dict().items()}
    timm["pre_logits.fc1.weight"] = torch.zeros(2, 16, 7, 7)
    timm["head.fc.weight"] = torch.zeros(3, 2)
    save_file(timm, str(tmp_path / "model.safetensors"))
    torch.save({"alpha": src.alpha.data.clone(), "beta": src.beta.data.clone()}, tmp_path / "DISTS_weights.pth")
    d = published_dists(local_files={"vgg16": tmp_path / "model.safetensors", "dists": tmp_path / "DISTS_weights.pth"})
    assert d.pretrained and d.channels == (3, 4, 8, 8, 16, 16)
    x, y = frames(2, 48, 48, seed=2), frames(2, 48, 48, seed=3)
    assert torch.allclose(d(x, y).double(), dists_reference(src, x, y), atol=1e-5)


# ------------------------------------------------------------------------------------------ CLIP-IQA


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.data = torch.randn(p.shape, generator=g) * std + (
            1.0 if name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "1.weight")) else 0.0
        )
    for name, b in model.named_buffers():
        if name.endswith("running_var"):
            b.data = 0.5 + torch.rand(b.shape, generator=g)
        elif name.endswith("running_mean"):
            b.data = 0.1 * torch.randn(b.shape, generator=g)
    return model


def tiny_clip(seed: int = 0) -> CLIPRN50:
    clip = CLIPRN50(layers=(1, 1, 1, 1), width=8, embed_dim=16, grid=7, text_width=64, text_layers=1)
    randomize(clip, seed)
    clip.logit_scale.data = torch.tensor(np.log(100.0), dtype=torch.float32)
    return clip.eval()


def test_attention_pool_is_torch_multihead_attention_without_positions():
    pool = randomize(AttentionPool(grid=7, dim=32, heads=4, out_dim=8), 1, std=0.2)
    x = torch.randn(2, 32, 5, 6, generator=G)
    tokens = x.flatten(2).permute(2, 0, 1)  # (HW, N, C)
    tokens = torch.cat([tokens.mean(0, keepdim=True), tokens])
    ref, _ = F.multi_head_attention_forward(
        tokens, tokens, tokens, 32, 4, None, torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        None, None, False, 0.0, pool.c_proj.weight, pool.c_proj.bias, training=False, need_weights=False,
        use_separate_proj_weight=True, q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
    )  # fmt: skip
    assert torch.allclose(pool(x), ref[0], atol=1e-5)


def test_text_tower_matches_torch_multihead_attention():
    clip = tiny_clip(2)
    tokens = prompt_token_tensor()
    block = clip.transformer.resblocks[0]
    mha = torch.nn.MultiheadAttention(64, 1)
    mha.in_proj_weight.data, mha.in_proj_bias.data = block.attn.in_proj_weight.data, block.attn.in_proj_bias.data
    mha.out_proj.weight.data, mha.out_proj.bias.data = block.attn.out_proj.weight.data, block.attn.out_proj.bias.data
    mask = torch.full((77, 77), float("-inf")).triu(1)
    x = (clip.token_embedding(tokens) + clip.positional_embedding).permute(1, 0, 2)  # LND, as CLIP
    h = x + mha(block.ln_1(x), block.ln_1(x), block.ln_1(x), attn_mask=mask, need_weights=False)[0]
    m = block.mlp.c_fc(block.ln_2(h))
    h = h + block.mlp.c_proj(m * torch.sigmoid(1.702 * m))
    h = clip.ln_final(h.permute(1, 0, 2))
    eot = [len(t) - 1 for t in PROMPT_TOKENS]
    ref = h[torch.arange(10), eot] @ clip.text_projection
    with torch.no_grad():
        assert torch.allclose(clip.encode_text(tokens), ref, atol=1e-4)


def test_clipiqa_is_the_mean_positive_probability_over_the_five_pairs():
    model = CLIPIQA(tiny_clip(3)).eval()
    x = frames(2, 64, 80, seed=5)
    with torch.no_grad():
        got = model(x).numpy()
        mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
        std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
        img = model.clip.visual((x - mean) / std).double().numpy()
        txt = model.clip.encode_text(prompt_token_tensor()).double().numpy()
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    logits = 100.0 * img @ txt.T  # [2, 10]
    pos, neg = logits[:, 0::2], logits[:, 1::2]
    ref = (np.exp(pos) / (np.exp(pos) + np.exp(neg))).mean(axis=1)
    assert np.allclose(got, ref, atol=1e-5)
    assert got.shape == (2,) and ((got > 0) & (got < 1)).all()


def test_clip_loads_open_clip_layout_and_refuses_others(tmp_path):
    src = tiny_clip(4)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    sd["visual.layer1.0.downsample.0.weight"] = sd["visual.layer1.0.downsample.0.weight"].half()  # fp16 as OpenAI ships
    loaded = CLIPRN50.from_state_dict(sd)
    x = frames(1, 64, 64)
    assert torch.allclose(loaded.visual(x), src.visual(x), atol=1e-2)
    from dove_cli.errors import ModelError

    with pytest.raises(ModelError, match="CLIP weights"):
        CLIPRN50.from_state_dict({"weight": torch.zeros(1)})


def _clip_vocab() -> Path | None:
    """CLIP's BPE vocabulary file, if open_clip (or a path in DOVE_CLIP_BPE) provides it; not imported."""
    if os.environ.get("DOVE_CLIP_BPE"):
        return Path(os.environ["DOVE_CLIP_BPE"])
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    return path if path.is_file() else None


@pytest.mark.skipif(_clip_vocab() is None, reason="CLIP's BPE vocabulary (open_clip or DOVE_CLIP_BPE) not available")
def test_prompt_token_ids_rederived_from_the_clip_vocabulary(tmp_path):
    from transformers import CLIPTokenizer

    merges = gzip.open(_clip_vocab()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    vocab = (
        chars
        + [c + "</w>" for c in chars]
        + ["".join(m.split()) for m in merges]
        + ["<|startoftext|>", "<|endoftext|>"]
    )
    (tmp_path / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    assert tuple(tuple(tok(p)["input_ids"]) for p in PROMPTS) == PROMPT_TOKENS
