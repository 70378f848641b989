"""The training forward of both stages (docs/SPEC.md section 2): LQ/HQ encodes, the one-step
prediction, the losses.

The transformer call is the inference path's (`DoveModel.predict_clean`: t = 399, no noise added,
`get_velocity`), so the trained z_sr is what `dove upscale` computes. Around it:

- Encodes are batched: stage 1 encodes the LQ and HQ clips of a micro-batch in one VAE call, stage 2
  folds frames into the batch (each frame is its own 1-frame clip). The posterior noise of each
  sample still comes from its own generator (seed, step, position, tag), so the numbers do not depend
  on the batch layout and match one encode per sample.
- dtypes follow the release: the frozen VAE runs in the VAE's dtype (bf16 under bf16 mixed
  precision), and the latents are cast to the transformer's compute dtype before the call. Under
  DeepSpeed the transformer itself is bf16 and accelerate's autocast does nothing, so without that
  cast fp32 latents would reach bf16 Linears.
- Stage 1 (`latent_loss="all-slots"`, the release): the first latent frame is replicated in front of
  BOTH the LQ and the HQ latents until the count divides by patch_size_t, and the MSE is the mean over
  every slot, the copy included. `"real-frames"` scores the real latent frames only.
- Stage 2 decodes every latent frame alone (frames folded into the batch, gradients flow through the
  frozen decoder) and scores pixels in [0, 1] with MSE + DISTS + L1 of frame differences.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from dove_cli.train.losses import PixelLoss, latent_loss

LatentLoss = Literal["all-slots", "real-frames"]
# generator tags: which clip of a sample the posterior noise is drawn for
TAG_LQ, TAG_HQ, TAG_FRAME0 = 0, 1, 2


def generator(seed: int, step: int, position: int, tag: int) -> torch.Generator:
    """A CPU generator per sample, so posterior noise never depends on batch layout or rank."""
    state = np.random.SeedSequence([seed, step, position, tag]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def compute_dtype(transformer: torch.nn.Module) -> torch.dtype:
    """The dtype the transformer computes in: its frozen weights' (LoRA's base), else its weights'.

    Full fine-tune: float32 under DDP (autocast does the rest), bf16 under DeepSpeed (the engine casts
    the module). LoRA: the frozen base weights' dtype (bf16 under mixed precision)."""
    first: torch.dtype | None = None
    for p in transformer.parameters():
        if not p.requires_grad:
            return p.dtype
        first = first or p.dtype
    return first or torch.float32


def vae_dtype(model: Any) -> torch.dtype:
    return next(model.vae.parameters()).dtype


def encode(model: Any, video: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
    """VAE encode of a batch. video [N, 3, F, H, W] in [-1, 1] -> latent [N, C, F', h, w] x scaling_factor.

    With the posterior "sample", sample i draws its noise from generators[i] (as one encode per sample
    with that generator would); "mode" takes the mean.
    """
    from diffusers.utils.torch_utils import randn_tensor

    dist = model.vae.encode(video.to(model.device, vae_dtype(model))).latent_dist
    if model.posterior == "mode":
        z = dist.mode()
    else:
        if generators is None or len(generators) != video.shape[0]:
            raise ValueError("posterior 'sample' needs one generator per clip")
        one = (1, *dist.mean.shape[1:])
        noise = torch.cat(
            [randn_tensor(one, generator=g, device=dist.mean.device, dtype=dist.mean.dtype) for g in generators]
        )
        z = dist.mean + dist.std * noise
    return z * model.scaling_factor


def decode_frames(model: Any, latent: torch.Tensor) -> torch.Tensor:
    """Every latent frame decoded alone (stage 2). latent [B, C, F', h, w] -> video [B, 3, F', H, W] in [-1, 1]."""
    b, c, f, h, w = latent.shape
    folded = latent.permute(0, 2, 1, 3, 4).reshape(b * f, c, 1, h, w)
    x = model.vae.decode(folded.to(vae_dtype(model)) / model.scaling_factor).sample
    return x.reshape(b, f, *x.shape[1:]).squeeze(3).permute(0, 2, 1, 3, 4)


def decode(model: Any, latent: torch.Tensor) -> torch.Tensor:
    """Whole-clip decode (validation, as at inference). latent [B, C, F', h, w] -> [B, 3, F, H, W] in [-1, 1]."""
    return model.vae.decode(latent.to(vae_dtype(model)) / model.scaling_factor).sample


def replicate_first(latent: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
    """Prepend copies of the first latent frame until the frame count divides by `multiple`."""
    n_copy = latent.shape[2] % multiple if multiple > 1 else 0
    if n_copy:
        latent = torch.cat([latent[:, :, :1].expand(-1, -1, n_copy, -1, -1), latent], dim=2)
    return latent, n_copy


def predict(model: Any, z_lq: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """z_sr from z_lq (docs/SPEC.md 1.1 steps 5-11) in the transformer's compute dtype; frames as given."""
    return model.predict_clean(z_lq.to(dtype))


def training_loss(
    model: Any,
    batch: dict[str, Any],
    *,
    stage: int,
    seed: int,
    dtype: torch.dtype,
    pixel_loss: PixelLoss | None = None,
    latent_slots: LatentLoss = "all-slots",
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Loss of one micro-batch. batch["lq"], batch["hq"]: [B, 3, F, H, W] in [-1, 1].

    Returns (loss, terms); terms are floats or detached 0-dim tensors (no host sync here).
    """
    device = model.device
    lq, hq = batch["lq"].to(device), batch["hq"].to(device)
    step, positions = batch["step"], batch["positions"]
    b = lq.shape[0]
    if stage == 1:
        with torch.no_grad():
            gens = [generator(seed, step, p, TAG_LQ) for p in positions]
            gens += [generator(seed, step, p, TAG_HQ) for p in positions]
            z = encode(model, torch.cat([lq, hq]), gens)
        p_t = model.transformer.config.patch_size_t or 1
        z_lq, n_copy = replicate_first(z[:b], p_t)
        z_hq, _ = replicate_first(z[b:], p_t)
        z_sr = predict(model, z_lq, dtype)  # a multiple of p_t already: predict_clean drops nothing
        if latent_slots == "real-frames":
            z_sr, z_hq = z_sr[:, :, n_copy:], z_hq[:, :, n_copy:]
        elif latent_slots != "all-slots":
            raise ValueError(f"latent_slots {latent_slots!r}: all-slots or real-frames")
        loss = latent_loss(z_sr, z_hq)
        return loss, {"latent_mse": loss.detach()}
    if pixel_loss is None:
        raise ValueError("stage 2 needs a PixelLoss")
    frames = lq.shape[2]
    with torch.no_grad():  # frame by frame: each LQ frame is its own 1-frame clip
        gens = [generator(seed, step, p, TAG_FRAME0 + f) for p in positions for f in range(frames)]
        folded = lq.permute(0, 2, 1, 3, 4).reshape(b * frames, 3, 1, *lq.shape[-2:])
        z = encode(model, folded, gens)
        z_lq = z.reshape(b, frames, *z.shape[1:]).squeeze(3).permute(0, 2, 1, 3, 4)
    z_sr = predict(model, z_lq, dtype)
    x_sr = (decode_frames(model, z_sr).float() * 0.5 + 0.5).clamp(0.0, 1.0)
    return pixel_loss(x_sr, (hq.float() * 0.5 + 0.5).clamp(0.0, 1.0))
