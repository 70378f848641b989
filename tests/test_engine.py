"""The one-step engine against a straightforward reference written here from docs/SPEC.md 1.1."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_3d_rotary_pos_embed

from conftest import demo_clip
from dove_cli.engine import DoveModel, load_prompt_embedding, pad_time, upsample
from dove_cli.errors import ModelError


def reference_window(model: DoveModel, lq_uint8: torch.Tensor, scale: int) -> torch.Tensor:
    """docs/SPEC.md 1.1 on one window, step by step. lq_uint8: [F, h, w, 3] -> [F, s*h, s*w, 3] uint8."""
    frames, h, w, _ = lq_uint8.shape
    x = lq_uint8.permute(0, 3, 1, 2).float()  # [F, 3, h, w]
    # 1. pad time to (F-1) % 8 == 0 with the last frame; pad space with zeros to a 16 px output block
    pad_f = (8 - (frames - 1) % 8) % 8
    x = torch.cat([x, x[-1:].repeat(pad_f, 1, 1, 1)])
    q = 16 // math.gcd(16, scale)
    pad_h, pad_w = (-h) % q, (-w) % q
    x = F.pad(x, (0, pad_w, 0, pad_h))
    # 2. bilinear x scale; 3. to [-1, 1], [B, C, F, H, W]
    x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    x = (x / 255.0 * 2.0 - 1.0).permute(1, 0, 2, 3)[None]
    with torch.no_grad():
        # 4. encode, posterior mode (the deterministic option), times scaling_factor
        z = model.vae.encode(x).latent_dist.mode() * model.vae.config.scaling_factor
        # 5. prepend the first latent frame n % p times
        p_t = model.transformer.config.patch_size_t
        n_copy = z.shape[2] % p_t
        z = torch.cat([z[:, :, :1].repeat(1, 1, n_copy, 1, 1), z], dim=2)
        # 6. [B, F', C, h', w']
        z = z.permute(0, 2, 1, 3, 4)
        # 7-9. empty-prompt embedding, t = 399, rotary with grid = latent / patch, slice
        text = model.prompt_embedding[None].float()
        t = torch.tensor([399])
        cfg = model.transformer.config
        grid = (z.shape[3] // cfg.patch_size, z.shape[4] // cfg.patch_size)
        rope = get_3d_rotary_pos_embed(
            cfg.attention_head_dim, None, grid, math.ceil(z.shape[1] / p_t), grid_type="slice", max_size=grid
        )
        # 10. v = transformer(...)
        v = model.transformer(
            hidden_states=z, encoder_hidden_states=text, timestep=t, image_rotary_emb=rope, return_dict=False
        )[0]
        # 11. z0 = sqrt(abar) z - sqrt(1 - abar) v
        abar = model.scheduler.alphas_cumprod[399].item()
        z0 = math.sqrt(abar) * z - math.sqrt(1 - abar) * v
        # 12. drop the copies, decode (/ scaling_factor), to [0, 1]
        z0 = z0[:, n_copy:].permute(0, 2, 1, 3, 4) / model.vae.config.scaling_factor
        y = model.vae.decode(z0).sample
    y = (y * 0.5 + 0.5).clamp(0, 1)[0].permute(1, 2, 3, 0)  # [F, H, W, 3]
    # 13. crop the pads, round to 8 bits
    y = y[:frames, : h * scale, : w * scale]
    return (y * 255).round().to(torch.uint8)


def engine_window(model: DoveModel, lq_uint8: torch.Tensor, scale: int) -> torch.Tensor:
    """The same window through the package's engine functions."""
    from dove_cli.blend import to_code_values
    from dove_cli.tiled import pad_frame

    frames, h, w, _ = lq_uint8.shape
    q = 16 // math.gcd(16, scale)
    hp, wp = -(-h // q) * q, -(-w // q) * q
    lq = torch.stack([pad_frame(f.numpy(), hp, wp, "zero") for f in lq_uint8])
    video = (upsample(lq.float(), scale) / 255.0 * 2 - 1).permute(1, 0, 2, 3)[None]
    out = model.restore(video)[0].permute(1, 0, 2, 3)[:, :, : h * scale, : w * scale]
    return torch.stack([torch.from_numpy(to_code_values(f, False)) for f in out])


@pytest.mark.parametrize("frames,h,w", [(9, 16, 16), (5, 13, 22), (1, 8, 8), (12, 10, 12)])
def test_engine_matches_spec_reference(tiny_model, frames, h, w):
    g = torch.Generator().manual_seed(frames * 100 + h)
    lq = torch.randint(0, 256, (frames, h, w, 3), dtype=torch.uint8, generator=g)
    ref = reference_window(tiny_model, lq, 4)
    got = engine_window(tiny_model, lq, 4)
    assert got.shape == (frames, 4 * h, 4 * w, 3)
    diff = (got.int() - ref.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3  # float summation order only


@pytest.mark.parametrize(
    "shape, said",
    [
        ((1, 3, 9, 36, 64), "window of 64x36 px: width and height must be multiples of 16"),
        ((1, 3, 9, 32, 40), "window of 40x32 px: width and height must be multiples of 16"),
        ((3, 9, 32, 64), "expected a window [B, 3, F, H, W], got shape [3, 9, 32, 64]"),
        ((1, 9, 3, 32, 64), "expected a window [B, 3, F, H, W], got shape [1, 9, 3, 32, 64]"),
    ],
)
def test_restore_refuses_a_window_it_would_crop(tiny_model, shape, said):
    """A library caller's window 36 px high came back 32 px high, without a word (the VAE's and the
    patches' strides); the README's recipe (padded frames, upsampled, [-1, 1]) gives the same shape back."""
    with pytest.raises(ValueError) as err:
        tiny_model.restore(torch.zeros(shape))
    assert str(err.value).startswith(said)
    frames = torch.randint(0, 256, (9, 3, 12, 16), dtype=torch.uint8)  # [F, 3, h, w]: h x 4, w x 4 are 16k
    video = (upsample(frames.float(), 4) / 255 * 2 - 1).permute(1, 0, 2, 3)[None]
    assert tiny_model.restore(video).shape == (1, 3, 9, 48, 64)


def test_posterior_sample_is_seeded(tiny_model):
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    tiny_model.posterior = "sample"
    try:
        a = tiny_model.restore(x, torch.Generator().manual_seed(42))
        b = tiny_model.restore(x, torch.Generator().manual_seed(42))
        c = tiny_model.restore(x, torch.Generator().manual_seed(7))
    finally:
        tiny_model.posterior = "mode"
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pad_time_repeats_last_frame():
    x = torch.arange(5.0).view(1, 1, 5, 1, 1)
    y, pad = pad_time(x)
    assert pad == 4 and y.flatten().tolist() == [0, 1, 2, 3, 4, 4, 4, 4, 4]
    assert pad_time(torch.zeros(1, 1, 9, 1, 1))[1] == 0


def test_upsample_is_plain_bilinear():
    x = torch.tensor([[[[0.0, 1.0]]]])
    y = upsample(x, 2)
    # align_corners=False: outputs sit at 1/4 and 3/4 between samples, clamped at the borders
    assert y[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]


def test_rotary_cached_by_shape(tiny_model):
    a = tiny_model.rotary(2, 4, 6)
    assert tiny_model.rotary(2, 4, 6) is a
    assert tiny_model.rotary(4, 4, 6)[0].shape[0] == 2 * (4 // 2) * (6 // 2)


def test_prompt_embedding_override_and_packaged(tmp_path):
    from safetensors.torch import save_file

    packaged = load_prompt_embedding(None)
    assert packaged.shape == (226, 4096) and packaged.dtype == torch.bfloat16
    save_file({"prompt_embedding": torch.ones(3, 8)}, str(tmp_path / "prompt_embedding.safetensors"))
    assert load_prompt_embedding(tmp_path).shape == (3, 8)
    save_file({"other": torch.ones(3, 8)}, str(tmp_path / "prompt_embedding.safetensors"))
    with pytest.raises(ModelError, match="prompt_embedding"):
        load_prompt_embedding(tmp_path)


def test_load_from_folder_roundtrip(tiny_model, tiny_model_dir):
    loaded = DoveModel.from_pretrained(tiny_model_dir, posterior="mode")
    x = torch.rand(1, 3, 5, 32, 48) * 2 - 1
    assert torch.allclose(loaded.restore(x), tiny_model.restore(x), atol=1e-6)
    with pytest.raises(ModelError, match="no transformer/"):
        DoveModel.from_pretrained(tiny_model_dir / "vae")


def test_memory_estimate_grows_with_window(tiny_model):
    small = tiny_model.estimate_window_bytes(9, 64, 64)
    assert tiny_model.estimate_window_bytes(33, 64, 64) > small
    assert tiny_model.estimate_window_bytes(9, 128, 128) > small


@pytest.mark.parametrize("frames", [9, 17, 33])
def test_the_vae_estimate_covers_the_live_bytes_of_a_narrow_vae(frames):
    """`--model tiny` (a 4-channel VAE) plans its windows, and warns of short host memory, from this
    estimate; taken as 4/128 of the 128-channel VAE's, it was under the tensors the decode holds at
    once (counted on the meta device, as benchmarks/calibrate_memory.py does), and RSS is above them."""
    import sys
    from pathlib import Path

    from diffusers import AutoencoderKLCogVideoX

    from dove_cli import engine

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from calibrate_memory import LiveBytes

    h, w = 256, 512
    with torch.device("meta"):
        vae = AutoencoderKLCogVideoX(**engine.TINY_VAE).eval()
        latents = torch.empty(1, 4, 1 + (frames - 1) // 4, h // 8, w // 8)
    tracker = LiveBytes([*vae.parameters(), *vae.buffers(), latents])
    with torch.inference_mode(), tracker.mode:
        vae.decode(latents)
    estimate = engine.vae_decode_bytes(vae.config, frames, h, w, 4)
    assert tracker.peak <= estimate <= 4 * tracker.peak, (tracker.peak, estimate)


def test_full_random_config_is_the_published_size():
    """`--model full-random` builds CogVideoX1.5-5B's shapes: ~5.57e9 transformer parameters."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel

    from dove_cli.engine import FULL_TRANSFORMER, FULL_VAE

    with torch.device("meta"):  # shapes only, no memory
        transformer = CogVideoXTransformer3DModel(**FULL_TRANSFORMER)
        vae = AutoencoderKLCogVideoX(**FULL_VAE)
    n = sum(p.numel() for p in transformer.parameters())
    assert 5.5e9 < n < 5.65e9
    assert transformer.config.num_layers == 42 and transformer.config.patch_size_t == 2
    assert vae.config.latent_channels == 16 and vae.config.scaling_factor == 0.7


def test_a_peft_lora_adapter_beside_the_model_is_merged(tiny_model_dir, tmp_path):
    """transformer_lora/ (peft format) is merged on load: W + alpha/r * B A, checked from the adapter file."""
    import copy
    import shutil

    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file

    from dove_cli.engine import DoveModel

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    base = DoveModel.from_pretrained(folder).transformer.state_dict()
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["to_q", "to_v"], init_lora_weights=False)  # B != 0
    peft_model = get_peft_model(copy.deepcopy(DoveModel.from_pretrained(folder).transformer), lora)
    peft_model.save_pretrained(str(folder / "transformer_lora"))
    merged = DoveModel.from_pretrained(folder).transformer.state_dict()
    adapter = load_file(str(folder / "transformer_lora" / "adapter_model.safetensors"))
    expected = dict(base)
    for key in (k for k in adapter if ".lora_A." in k):
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        b = adapter[key.replace(".lora_A.", ".lora_B.")]
        expected[name] = base[name] + (4 / 2) * b @ adapter[key]
    assert merged.keys() == base.keys() and len(adapter) == 4
    for name, value in expected.items():
        torch.testing.assert_close(merged[name], value, atol=1e-6, rtol=1e-5)
    assert any(not torch.equal(merged[n], base[n]) for n in base)


def test_fingerprint_reads_weights_that_sequential_offload_parked():
    """cpu_offload moves every parameter to meta; the manifest's hash must still see the weights."""
    from accelerate import cpu_offload

    from dove_cli.engine import build_random

    model = build_random("tiny")
    before = model.fingerprint()
    cpu_offload(model.transformer, torch.device("cpu"))
    cpu_offload(model.vae, torch.device("cpu"))
    assert all(p.is_meta for p in model.transformer.parameters()) and not model.is_skeleton
    assert model.fingerprint() == before


def test_attention_runs_the_kernel_asked_for():
    """--attention reaches the transformer: on the CPU torch picks its flash kernel, and the math
    kernel sums in another order (close, not equal); a kernel the CPU lacks is one line, not torch's
    "No viable backend" traceback."""
    from dove_cli.models import load_model
    from dove_cli.options import UpscaleOptions

    video = torch.rand(1, 3, 5, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cpu = torch.device("cpu")

    def restored(attention: str) -> torch.Tensor:
        model = load_model(UpscaleOptions(model="tiny", posterior="mode", attention=attention), cpu, torch.float32)
        return model.restore(video.clone())

    auto, flash, math_ = restored("auto"), restored("flash"), restored("math")
    assert torch.equal(flash, auto)
    assert not torch.equal(math_, auto) and torch.allclose(math_, auto, atol=1e-4)
    model = load_model(UpscaleOptions(model="tiny", posterior="mode"), cpu, torch.float32)
    model.attention = "efficient"  # past the CLI's check, as a library user could set it
    with pytest.raises(ModelError, match="^--attention efficient cannot run this model's attention here"):
        model.restore(video.clone())


def test_attention_a_cpu_lacks_is_refused_before_any_work(tmp_path, capsys):
    from dove_cli.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "tiny", "--attention",
              "cudnn", "--device", "cpu"])  # fmt: skip
    assert exit_.value.code == 2
    assert "--attention cudnn needs a CUDA GPU" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    clip = str(demo_clip("007.mp4"))
    with pytest.raises(SystemExit) as exit_:  # a plan for this CPU would promise a run that cannot start
        main(["upscale", clip, "-o", str(tmp_path / "x.mp4"), "--model", "tiny", "--attention", "efficient",
              "--device", "cpu", "--dry-run"])  # fmt: skip
    assert exit_.value.code == 2 and "--attention efficient needs a CUDA GPU" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # no attention to choose: said, not refused
        main(["upscale", clip, "-o", str(tmp_path / "x.mp4"), "--model", "bilinear", "--attention", "cudnn",
              "--device", "cpu", "--dry-run"])  # fmt: skip
    assert exit_.value.code == 0
