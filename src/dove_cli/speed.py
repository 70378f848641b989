"""How long a window takes: its FLOPs, divided by what this device sustains on the same kinds of work.

FLOPs: the VAE's are counted once per architecture by running its encode and decode on the meta
device under torch's FlopCounterMode (no memory, no weights) and scaled by the window's voxels
(convolutions are linear in them); the transformer's follow from its per-token parameters and
tokens (matmuls plus attention), which agrees with FlopCounterMode within 1% for CogVideoX1.5-5B
(tests/test_speed.py).

Rates: measured on the device itself, once per process, by timing a few 3D convolutions as wide
as the VAE's first level and a matmul as wide as the transformer. This is a calibration, not a
guess: on a 2-core CPU the tiny random model ran within the range it predicts (README). The
estimate is shown as a range, because caches, memory bandwidth and kernel choice still move it.
"""

from __future__ import annotations

import functools
import json
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


@functools.cache
def _vae_flops_per_voxel(vae_config: str) -> float:
    """Encode + decode FLOPs per output voxel (frame x pixel) of this VAE architecture."""
    from dove_cli.engine import from_diffusers

    [AutoencoderKLCogVideoX] = from_diffusers("AutoencoderKLCogVideoX")
    frames, side = 9, 64
    with torch.device("meta"):
        vae = AutoencoderKLCogVideoX.from_config(json.loads(vae_config))
    video = torch.zeros(1, 3, frames, side, side, device="meta")
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        vae.decode(vae.encode(video).latent_dist.mode())
    return counter.get_total_flops() / (frames * side * side)


def transformer_flops(config: Any, frames: int, height: int, width: int, params: int) -> float:
    """One forward of the transformer on a window of `frames` (padded to 8k+1) x height x width px."""
    frames += (-(frames - 1)) % 8
    latent_frames = math.ceil((1 + (frames - 1) // 4) / (config.patch_size_t or 1))
    tokens = latent_frames * (height // 16) * (width // 16) + config.max_text_seq_length
    dim = config.num_attention_heads * config.attention_head_dim
    return 2 * params * tokens + 4 * tokens * tokens * dim * config.num_layers


def window_flops(transformer: Any, vae: Any, frames: int, height: int, width: int) -> tuple[float, float]:
    """(VAE, transformer) FLOPs of one window."""
    padded = frames + (-(frames - 1)) % 8
    vae_flops = (
        _vae_flops_per_voxel(json.dumps(dict(vae.config), sort_keys=True, default=str)) * padded * height * width
    )
    return vae_flops, transformer_flops(transformer.config, frames, height, width, per_token_params(transformer))


def per_token_params(transformer: torch.nn.Module) -> int:
    """The parameters every token passes through: all but the timestep's (the time embedding and the
    adaptive norms' linears run once per window: 0.8e9 of the 5.6e9, which made the estimate 9-15%
    high). Linear layers count by their shape, so that packed 4-bit weights count in full."""
    total = 0
    for name, module in transformer.named_modules():
        if _runs_per_window(name):
            continue
        if isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features + (module.out_features if module.bias is not None else 0)
        else:
            total += sum(p.numel() for p in module.parameters(recurse=False))
    return total


def _runs_per_window(name: str) -> bool:
    """A module fed by the timestep alone: the embeddings, and the linear of each adaptive norm
    (`transformer_blocks.3.norm1.linear`, `norm_out.linear`)."""
    parts = name.split(".")
    return parts[0] in ("time_embedding", "ofs_embedding") or (
        len(parts) > 1 and parts[-1] == "linear" and parts[-2].startswith("norm")
    )


@functools.cache
def device_rates(device: str, dtype: torch.dtype, conv_channels: int, width: int) -> tuple[float, float]:
    """FLOP/s this device sustains on (3D convolutions of `conv_channels`, matmuls of `width`).

    Each probe is sized to a few GFLOP (a few hundred on a GPU), so that call overheads weigh as
    little as in a real window."""
    dev = torch.device(device)
    if dev.type == "meta":
        return math.inf, math.inf
    target = 2e11 if dev.type == "cuda" else 2e9
    c = conv_channels
    # (on a CPU at most 128: a few channels (the tiny test model's 4) made it 4x512x512, whose calls
    # took 1-2 s each, several seconds a probe; the real VAE's 128 channels make it 23)
    side = int(min(512 if dev.type == "cuda" else 128, max(16, math.sqrt(target / (2 * c * c * 27 * 4)))))
    gen = torch.Generator(dev).manual_seed(0)  # not torch's global one: that is the host program's
    x = torch.randn(1, c, 4, side, side, device=dev, dtype=dtype, generator=gen)
    w = torch.randn(c, c, 3, 3, 3, device=dev, dtype=dtype, generator=gen)
    rows = int(min(8192, max(256, target / (2 * width * width))))
    a = torch.randn(rows, width, device=dev, dtype=dtype, generator=gen)
    b = torch.randn(width, width, device=dev, dtype=dtype, generator=gen)
    conv_flops = 2 * c * c * 27 * 4 * side * side
    mm_flops = 2 * rows * width * width
    return _rate(lambda: F.conv3d(x, w, padding=1), conv_flops, dev), _rate(lambda: a @ b, mm_flops, dev)


def _rate(op: Any, flops: float, device: torch.device, seconds: float = 0.15, bursts: int = 5) -> float:
    """FLOP/s of `op`: the best of `bursts` timings of about seconds/bursts each, after one warm-up
    call. The best, not the mean: on a shared machine a burst can only be slowed by others, and one
    mean moved the estimate by 20% between two runs of the same command."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = 0.0
    with torch.inference_mode():
        op()
        sync()
        for _ in range(bursts):
            runs, t0 = 0, time.perf_counter()
            while runs == 0 or time.perf_counter() - t0 < seconds / bursts:
                op()  # queued on a GPU: the time after the sync below counts the queue's work too
                runs += 1
            sync()
            best = max(best, flops * runs / (time.perf_counter() - t0))
    return best


def estimate_window_seconds(transformer: Any, vae: Any, device: torch.device, dtype: torch.dtype, frames: int,
                            height: int, width: int) -> float:  # fmt: skip
    """Seconds for one window on `device` (the device the model will run on, not the meta device)."""
    vae_flops, tr_flops = window_flops(transformer, vae, frames, height, width)
    dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    conv_rate, mm_rate = device_rates(str(device), dtype, int(vae.config.block_out_channels[0]), int(dim))
    return vae_flops / conv_rate + tr_flops / mm_rate
