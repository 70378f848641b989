"""`dove train` against the release's objective, on the CPU with the tiny random model.

- The step-1 loss `dove train` logs equals the release's loss formula, written out below straight from
  the diffusers calls (VAE encode, transformer, `get_velocity`, decode), for stage 1 on a 9-frame clip
  (3 latent frames: the replicated slot counts) and stage 2 on a 2-frame clip (video branch).
- The bf16 path DeepSpeed leaves (bf16 transformer, no autocast) runs; through DeepSpeed ZeRO-2 itself
  when it is installed, with the export rebuilding the float32 master weights.
- After a few steps on fixed pairs, the restored output (inference path) moves toward HQ and away
  from LQ: a swapped or otherwise wrong objective fails here even when its own loss falls.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dove_cli.errors import OptionError
from dove_cli.train.config import TrainConfig
from dove_cli.train.export import export_checkpoint
from dove_cli.train.loop import train

TAG = "clip"


# ---------------------------------------------------------------------------- paired clips


def _write(path: Path, frames: np.ndarray) -> None:
    """Lossless H.264 4:4:4 (what both sides read back is the same decoded frames)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt, s.options = frames.shape[2], frames.shape[1], "yuv444p", {"qp": "0"}
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _read(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _make_pairs(root: Path, count: int, frames: int, seed: int, size: int = 32) -> tuple[Path, Path]:
    """Smooth random HQ clips; LQ = HQ area-downscaled x1/4 and darkened (x0.5): a relation to learn."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        base = torch.from_numpy(rng.uniform(0, 1, (frames, 3, 4, 4))).float()
        hq = F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        lq = F.avg_pool2d(hq, 4) * 0.5
        u8 = lambda x: (x * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
        _write(root / "hq" / f"{TAG}{i}.mp4", u8(hq))
        _write(root / "lq" / f"{TAG}{i}.mp4", u8(lq))
    return root / "hq", root / "lq"


def _dove_train(*args: str) -> None:
    from dove_cli.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--num-workers", "0", "--posterior", "mode", "--warmup-steps", "0", "-q", *args])
    assert exit_info.value.code in (0, None)


def _logged(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------- the release's formula


class Release:
    """The release's components and its compute_loss, written from the diffusers calls."""

    def __init__(self, folder: Path) -> None:
        from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
        from safetensors.torch import load_file

        self.vae = AutoencoderKLCogVideoX.from_pretrained(folder / "vae")
        self.vae.enable_slicing()
        self.vae.enable_tiling()  # the release's defaults (no split at 32x32)
        self.transformer = CogVideoXTransformer3DModel.from_pretrained(folder / "transformer")
        self.scheduler = CogVideoXDPMScheduler.from_pretrained(folder / "scheduler")
        self.prompt = load_file(str(folder / "prompt_embedding.safetensors"))["prompt_embedding"]
        self.sf = self.vae.config.scaling_factor

    @staticmethod
    def videos(hq: np.ndarray, lq: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [F, H, W, 3] -> (LQ, HQ) [1, 3, F, H, W] in [-1, 1]; LQ upsampled x4 bilinearly on the 0-255 scale."""
        hq_t = torch.from_numpy(hq).permute(0, 3, 1, 2).float()
        lq_t = torch.from_numpy(lq).permute(0, 3, 1, 2).float()
        lq_t = F.interpolate(lq_t, size=hq_t.shape[-2:], mode="bilinear", align_corners=False)
        to_video = lambda x: (x / 255.0 * 2.0 - 1.0).permute(1, 0, 2, 3)[None]  # noqa: E731
        return to_video(lq_t), to_video(hq_t)

    def clean_latent(self, lq_latent: torch.Tensor) -> torch.Tensor:
        """[B, F, C, h, w] (frame count a multiple of patch_size_t) -> get_velocity(v, x, 399)."""
        from diffusers.models.embeddings import get_3d_rotary_pos_embed

        cfg = self.transformer.config
        b, f, _, h, w = lq_latent.shape
        t = torch.full((b,), 399, dtype=torch.long)
        rotary = get_3d_rotary_pos_embed(
            embed_dim=cfg.attention_head_dim,
            crops_coords=None,
            grid_size=(h // cfg.patch_size, w // cfg.patch_size),
            temporal_size=(f + cfg.patch_size_t - 1) // cfg.patch_size_t,
            grid_type="slice",
            max_size=(cfg.sample_height // cfg.patch_size, cfg.sample_width // cfg.patch_size),
        )
        prompt = self.prompt.view(1, *self.prompt.shape[-2:]).expand(b, -1, -1).to(lq_latent.dtype)
        v = self.transformer(
            hidden_states=lq_latent,
            encoder_hidden_states=prompt,
            timestep=t,
            image_rotary_emb=rotary,
            return_dict=False,
        )[0]
        return self.scheduler.get_velocity(v, lq_latent, t)

    @torch.no_grad()
    def stage1_loss(self, hq: np.ndarray, lq: np.ndarray) -> float:
        lq_v, hq_v = self.videos(hq, lq)
        latent = self.vae.encode(torch.cat([lq_v, hq_v])).latent_dist.mode() * self.sf
        lq_lat, hq_lat = latent.chunk(2)
        ncopy = lq_lat.shape[2] % self.transformer.config.patch_size_t
        lq_lat = torch.cat([lq_lat[:, :, :1].repeat(1, 1, ncopy, 1, 1), lq_lat], dim=2)
        hq_lat = torch.cat([hq_lat[:, :, :1].repeat(1, 1, ncopy, 1, 1), hq_lat], dim=2)
        pred = self.clean_latent(lq_lat.permute(0, 2, 1, 3, 4))
        return float(F.mse_loss(pred.float(), hq_lat.permute(0, 2, 1, 3, 4).float()))

    @torch.no_grad()
    def stage2_loss(self, hq: np.ndarray, lq: np.ndarray, dists, w_d: float = 1.0, w_f: float = 1.0) -> float:
        lq_v, hq_v = self.videos(hq, lq)
        frames = lq_v.shape[2]
        lq_lat = torch.cat([self.vae.encode(lq_v[:, :, i : i + 1]).latent_dist.mode() for i in range(frames)], 2)
        lq_lat = lq_lat * self.sf
        ncopy = lq_lat.shape[2] % self.transformer.config.patch_size_t
        lq_lat = torch.cat([lq_lat[:, :, :1].repeat(1, 1, ncopy, 1, 1), lq_lat], dim=2)
        pred = self.clean_latent(lq_lat.permute(0, 2, 1, 3, 4))[:, ncopy:].permute(0, 2, 1, 3, 4) / self.sf
        gen = torch.cat([self.vae.decode(pred[:, :, i : i + 1]).sample for i in range(pred.shape[2])], dim=2)
        gen = (gen * 0.5 + 0.5).clamp(0.0, 1.0)
        gt = (hq_v * 0.5 + 0.5).clamp(0.0, 1.0)
        mse = F.mse_loss(gen.float(), gt.float())
        perceptual = sum(dists(gen[:, :, f].float(), gt[:, :, f].float()).mean() for f in range(frames)) / frames
        diff = F.l1_loss(gen[:, :, 1:] - gen[:, :, :-1], gt[:, :, 1:] - gt[:, :, :-1])
        return float(mse + w_d * perceptual + w_f * diff)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dists_files(tmp_path_factory) -> list[str]:
    """DISTS head + VGG16 files (random values, the published formats), so stage 2 has its weights."""
    from dove_cli.train.losses import CHANNELS, DISTS

    root = tmp_path_factory.mktemp("dists")
    ref = DISTS(seed=5)
    n = sum(CHANNELS)
    g = torch.Generator().manual_seed(1)
    torch.save(
        {"alpha": torch.rand(1, n, 1, 1, generator=g), "beta": torch.rand(1, n, 1, 1, generator=g)}, root / "w.pt"
    )
    torch.save({f"features.{k}": v for k, v in ref.features.state_dict().items()}, root / "vgg16.pth")
    return [str(root / "w.pt"), str(root / "vgg16.pth")]


@pytest.fixture(scope="module")
def stage1_step(tiny_model_dir, tmp_path_factory):
    """One `dove train` step, stage 1, on a 9-frame paired clip, batch 1, fp32, posterior mode."""
    root = tmp_path_factory.mktemp("eq1")
    hq_dir, lq_dir = _make_pairs(root, 1, frames=9, seed=3)
    out = root / "run"
    _dove_train("--stage", "1", "--data", str(hq_dir), "--lq", str(lq_dir), "--model", str(tiny_model_dir),
                "-o", str(out), "--resolution", "9x32x32", "--max-steps", "1", "--batch-size", "1",
                "--mixed-precision", "no", "--checkpoint-every", "1")  # fmt: skip
    return hq_dir, lq_dir, out


# ---------------------------------------------------------------------------- loss equality (done-when)


def test_stage1_step1_loss_is_the_release_formula(stage1_step, tiny_model_dir):
    hq_dir, lq_dir, out = stage1_step
    logged = _logged(out)[0]["loss"]
    expect = Release(tiny_model_dir).stage1_loss(_read(hq_dir / f"{TAG}0.mp4"), _read(lq_dir / f"{TAG}0.mp4"))
    print(f"stage 1 step-1 loss: dove {logged:.9g}, release formula {expect:.9g}")
    assert logged == pytest.approx(expect, rel=1e-5, abs=1e-7)


def test_stage2_step1_loss_is_the_release_formula(tiny_model_dir, dists_files, tmp_path):
    from dove_cli.train.losses import DISTS

    hq_dir, lq_dir = _make_pairs(tmp_path, 1, frames=2, seed=4)
    _dove_train("--stage", "2", "--data", str(hq_dir), "--lq", str(lq_dir), "--model", str(tiny_model_dir),
                "-o", str(tmp_path / "run"), "--resolution", "2x32x32", "--max-steps", "1", "--batch-size", "1",
                "--mixed-precision", "no", "--image-ratio", "0", "--dists-weights", dists_files[0],
                "--dists-weights", dists_files[1])  # fmt: skip
    row = _logged(tmp_path / "run")[0]
    dists = DISTS(dists_files)
    expect = Release(tiny_model_dir).stage2_loss(_read(hq_dir / f"{TAG}0.mp4"), _read(lq_dir / f"{TAG}0.mp4"), dists)
    print(f"stage 2 step-1 loss: dove {row['loss']:.9g}, release formula {expect:.9g}")
    assert row["kind"] == "video" and row["frame_diff"] > 0
    assert row["loss"] == pytest.approx(expect, rel=1e-5, abs=1e-7)


# ---------------------------------------------------------------------------- export for other tools


def test_export_loads_as_a_cogvideox_pipeline(stage1_step, tmp_path):
    from diffusers import CogVideoXPipeline
    from safetensors.torch import load_file

    from dove_cli.errors import ModelError

    _, _, out = stage1_step
    folder = export_checkpoint(out, tmp_path / "m")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "CogVideoXPipeline" and index["text_encoder"] == [None, None]
    pipe = CogVideoXPipeline.from_pretrained(str(folder), text_encoder=None, tokenizer=None)  # prompt_embeds given
    assert pipe.text_encoder is None and pipe.tokenizer is None
    trained = load_file(str(out / "checkpoints" / "step-0000001" / "model.safetensors"))
    sd = pipe.transformer.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in trained.items())
    assert json.loads((folder / "dove_train.json").read_text())["weights"] == "safetensors"
    with pytest.raises(ModelError, match="has no text_encoder/, for --with-text-encoder: drop that option$"):
        export_checkpoint(out, tmp_path / "m2", with_text_encoder=True)

    # --with-text-encoder copies the base model's T5 and tokenizer and names them in model_index.json
    import shutil

    base = Path(shutil.copytree(json.loads((folder / "dove_train.json").read_text())["base_model"], tmp_path / "base"))
    for part in ("text_encoder", "tokenizer"):
        (base / part).mkdir()
        (base / part / "config.json").write_text("{}")
    ckpt = Path(shutil.copytree(out / "checkpoints" / "step-0000001", tmp_path / "ckpt"))
    state = json.loads((ckpt / "train_state.json").read_text())
    (ckpt / "train_state.json").write_text(json.dumps({**state, "model": str(base)}))
    full = export_checkpoint(ckpt, tmp_path / "m3", with_text_encoder=True)
    index = json.loads((full / "model_index.json").read_text())
    assert (
        index["text_encoder"] == ["transformers", "T5EncoderModel"] and (full / "tokenizer" / "config.json").is_file()
    )


# ---------------------------------------------------------------------------- bf16 / DeepSpeed dtype path


def test_bf16_transformer_as_deepspeed_leaves_it(tiny_model_dir):
    """DeepSpeed casts the transformer to bf16 and accelerate's autocast does nothing under it: the
    forward must cast the fp32 data (and the bf16 VAE's latents) to the transformer's dtype itself."""
    from dove_cli.train.forward import compute_dtype, training_loss
    from dove_cli.train.loop import load_training_model
    from dove_cli.train.losses import DISTS, PixelLoss

    cfg = TrainConfig.for_stage(1, model=str(tiny_model_dir), posterior="sample", resolution="5x32x32")
    g = torch.Generator().manual_seed(0)
    pixel = PixelLoss(DISTS(seed=0))
    for mixed, vae_dtype in (("bf16", torch.bfloat16), ("no", torch.float32)):  # bf16 VAE (release) or fp32 VAE
        model = load_training_model(tiny_model_dir, torch.device("cpu"), cfg, mixed=mixed)
        assert next(model.vae.parameters()).dtype == vae_dtype
        model.transformer.to(torch.bfloat16)  # what DeepSpeed's engine does with "bf16": {"enabled": true}
        dtype = compute_dtype(model.transformer)
        assert dtype == torch.bfloat16
        for stage, frames in ((1, 5), (2, 2)):
            batch = {"lq": torch.rand(2, 3, frames, 32, 32, generator=g) * 2 - 1, "step": 0, "positions": [0, 1]}
            batch["hq"] = torch.rand(2, 3, frames, 32, 32, generator=g) * 2 - 1
            loss, _ = training_loss(model, batch, stage=stage, seed=0, dtype=dtype, pixel_loss=pixel)
            assert loss.dtype == torch.float32 and torch.isfinite(loss)
            loss.backward()
            grad = model.transformer.proj_out.weight.grad
            assert grad is not None and grad.dtype == torch.bfloat16 and grad.abs().sum() > 0
            model.transformer.zero_grad()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed")
def test_deepspeed_zero2_bf16_trains_and_exports_fp32_master_weights(tiny_model_dir, tmp_path):
    """accelerate launch --use_deepspeed --zero_stage 2 --mixed_precision bf16 on the CPU (gloo).

    One process: on the CPU accelerate's state counts one process per DeepSpeed rank (its world size
    comes from CUDA), so a 2-process CPU run would mis-shard; on GPUs the launch is the same."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from safetensors.torch import load_file

    hq_dir, lq_dir = _make_pairs(tmp_path / "data", 2, frames=5, seed=5)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--use_deepspeed", "--zero_stage", "2",
           "--mixed_precision", "bf16", "--num_processes", "1", "--num_machines", "1", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "dove_cli.cli", "train", "--data", str(hq_dir), "--lq",
           str(lq_dir), "--model", str(tiny_model_dir), "-o", str(out), "--resolution", "5x32x32", "--max-steps",
           "2", "--batch-size", "1", "--checkpoint-every", "2", "--num-workers", "0", "--posterior", "mode",
           "--mixed-precision", "bf16", "--lr", "1e-3", "--warmup-steps", "0", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}  # torchrun leaves its log folder
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = _logged(out)
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) and r["grad_norm"] > 0 for r in rows)
    ckpt = out / "checkpoints" / "step-0000002"
    partitions = sorted((ckpt / "pytorch_model").glob("*optim_states.pt"))
    assert len(partitions) == 1  # ZeRO-2: the fp32 master weights live in the optimiser partitions
    module = torch.load(ckpt / "pytorch_model" / "mp_rank_00_model_states.pt", weights_only=False)["module"]
    assert all(v.dtype == torch.bfloat16 for v in module.values() if v.is_floating_point())

    folder = export_checkpoint(out, tmp_path / "m")
    assert json.loads((folder / "dove_train.json").read_text())["weights"] == "fp32-master"
    exported = load_file(str(folder / "transformer" / "diffusion_pytorch_model.safetensors"))
    master = get_fp32_state_dict_from_zero_checkpoint(str(ckpt), tag="pytorch_model")
    assert set(master) == set(exported)
    assert all(torch.equal(exported[k], master[k].float()) for k in master)
    rounded = sum(int((exported[k] != module[k].float()).sum()) for k in module)
    assert rounded > 0  # the export is not the bf16 module copy


# ---------------------------------------------------------------------------- direction (issue 12)


def _direction(model, batch: dict, stage: int) -> tuple[float, float, float]:
    """Through the inference path (DoveModel), never the training loss: the output's position on the
    LQ -> HQ segment (0 = LQ, 1 = HQ), and its MSE to HQ and to LQ (latents in stage 1, pixels in 2)."""
    with torch.no_grad():
        if stage == 1:
            lo, hi = model.encode(batch["lq"]), model.encode(batch["hq"])
            out = model.predict_clean(lo)
        else:
            frames = range(batch["lq"].shape[2])
            lo, hi = batch["lq"] * 0.5 + 0.5, batch["hq"] * 0.5 + 0.5
            z = torch.cat([model.encode(batch["lq"][:, :, f : f + 1]) for f in frames], dim=2)
            z = model.predict_clean(z)
            out = torch.cat([model.decode(z[:, :, f : f + 1]) for f in frames], dim=2) * 0.5 + 0.5
    d = hi - lo
    t = float(((out - lo) * d).sum() / (d * d).sum())
    return t, float(F.mse_loss(out, hi)), float(F.mse_loss(out, lo))


@pytest.mark.parametrize("stage", [1, 2])
def test_training_moves_the_output_toward_hq(stage, tiny_model_dir, tmp_path):
    from dove_cli.engine import DoveModel
    from dove_cli.train.data import DataConfig, SampleKey, TrainDataset, collate, scan_sources

    frames, clips, steps, lr = (5, 4, 30, 3e-3) if stage == 1 else (2, 2, 8, 2e-2)
    hq_dir, lq_dir = _make_pairs(tmp_path / "data", clips, frames=frames, seed=1)
    cfg = TrainConfig.for_stage(
        stage, data=str(hq_dir), lq=str(lq_dir), model=str(tiny_model_dir), output_dir=str(tmp_path / "run"),
        resolution=f"{frames}x32x32", max_steps=steps, checkpoint_every=steps, warmup_steps=0, batch_size=2,
        num_workers=0, posterior="mode", seed=0, lr=lr, image_ratio=0.0, dists_weight=0.0,
    )  # fmt: skip
    result = train(cfg)
    dataset = TrainDataset(scan_sources(hq_dir, cfg.resolution, lq=lq_dir), DataConfig(crop=cfg.resolution))
    batch = collate([dataset[SampleKey("video", i, 0, i)] for i in range(clips)])
    before = _direction(DoveModel.from_pretrained(tiny_model_dir, posterior="mode"), batch, stage)
    after = _direction(DoveModel.from_pretrained(export_checkpoint(result.last_checkpoint, tmp_path / "m"), posterior="mode"), batch, stage)  # fmt: skip
    print(f"stage {stage}: position on LQ->HQ, MSE to HQ, MSE to LQ: {before} -> {after}")
    if stage == 1:
        assert after[0] > 0.4 and after[0] > before[0] + 0.3
        assert after[1] < after[2] and after[1] < before[1] / 4
    else:  # pixels through the frozen decoder move slowly: the direction is what is checked
        assert after[0] > before[0] + 0.04 and after[2] > before[2]


# ---------------------------------------------------------------------------- launch configs and options


def test_launch_configs_and_recipe_options():
    """The 2-process config is the release's shipped launch (global batch 4), the 4-GPU one its README's."""
    from importlib import resources

    import yaml

    root = resources.files("dove_cli.train") / "configs"
    for name, processes in (("accelerate_zero2_2gpu.yaml", 2), ("accelerate_zero2_4gpu.yaml", 4)):
        cfg = yaml.safe_load((root / name).read_text())
        assert (cfg["distributed_type"], cfg["deepspeed_config"]["zero_stage"], cfg["mixed_precision"]) == (
            "DEEPSPEED",
            2,
            "bf16",
        )
        assert cfg["num_processes"] == processes
    defaults = TrainConfig.for_stage(1)
    assert defaults.batch_size * 2 == 4 and defaults.vae_slicing and defaults.vae_tiling
    assert defaults.latent_loss == "all-slots"
    with pytest.raises(OptionError, match="--latent-loss"):
        TrainConfig.for_stage(1, latent_loss="copies")


def test_warmup_is_deepspeeds_warmuplr_as_the_release_ran_it():
    """The rate per optimiser step of deepspeed/runtime/lr_schedules.py `WarmupLR` (0.15.3-0.19.8) with
    the release's parameters (min 0, linear), driven as the engine drives it (built before step 1,
    stepped after each), as printed by that source: steps 1 and 2 at 0, step k at (k - 2) / warmup,
    full from warmup + 2; it warms up over at least 2 steps. Warmup 0 is dove's: no warmup."""
    from dove_cli.train.loop import warmup_factor

    steps = [1, 2, 3, 4, 51, 101, 102, 103, 10_000]
    assert [warmup_factor(k, 100) for k in steps] == pytest.approx([0, 0, 0.01, 0.02, 0.49, 0.99, 1, 1, 1])
    assert [warmup_factor(k, 1) for k in (1, 2, 3, 4)] == [0, 0, 0.5, 1]
    assert [warmup_factor(k, 0) for k in (1, 2)] == [1, 1]


def test_batched_encode_draws_each_samples_noise_from_its_generator(tiny_model_dir):
    """One VAE call for the micro-batch gives what one encode per sample gives (posterior "sample"):
    bitwise with slicing on (the default), to float rounding with batched convolutions."""
    from dove_cli.engine import DoveModel
    from dove_cli.train.forward import encode, generator

    model = DoveModel.from_pretrained(tiny_model_dir, posterior="sample")
    video = torch.rand(3, 3, 5, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    each = torch.cat([model.encode(video[i : i + 1], generator(42, 7, i, 0)) for i in range(3)])
    with torch.no_grad():
        model.vae.enable_slicing()
        assert torch.equal(encode(model, video, [generator(42, 7, i, 0) for i in range(3)]), each)
        model.vae.disable_slicing()
        assert torch.allclose(encode(model, video, [generator(42, 7, i, 0) for i in range(3)]), each, atol=1e-5)


def test_a_recipe_without_data_is_refused_before_anything_is_made(tmp_path, monkeypatch, capsys):
    """From Python, an empty `data` scanned the current folder for clips and failed naming nothing
    (`: no usable clips`); it is refused as the CLI refuses a missing --data, in the same words."""
    from dove_cli.cli import main

    said = r"^--data is required \(a folder or list file of HQ videos\)$"
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig.for_stage(1, model="tiny", resolution="5x16x16")  # (built up before its data: allowed)
    with pytest.raises(OptionError, match=said):
        cfg.check()
    with pytest.raises(OptionError, match=said):
        train(cfg.replace(output_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()
    cfg.replace(data="clips").check()
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "tiny"])
    assert (
        exit_.value.code == 2 and "--data is required (a folder or list file of HQ videos)" in capsys.readouterr().err
    )


def test_an_older_runs_relative_model_is_the_folder_it_was_loaded_from(tmp_path, monkeypatch, caplog):
    """run.json and the checkpoints of older versions kept --model as typed (relative to a working folder they
    did not record); the checkpoint's `model` is the folder it loaded, absolute: a resume from another folder
    takes that one (not another models/s1 there); where it is gone, one line says so, and a --model given anew
    is taken as its new place (it was refused as a change of recipe, after the line had advised it)."""
    from dove_cli.errors import OptionError
    from dove_cli.train.config import refuse_recipe_changes, saved_config

    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    (start / "models" / "s1" / "transformer").mkdir(parents=True)
    (elsewhere / "models" / "s1").mkdir(parents=True)  # another model of the same name
    monkeypatch.chdir(elsewhere)
    state = {"config": {"stage": 2, "model": "models/s1"}, "model": str(start / "models" / "s1" / "transformer")}
    assert saved_config(state).model == str(start / "models" / "s1")
    assert saved_config({"config": {"stage": 2, "model": "org/name"}, "model": "/hub/x"}).model == "org/name"
    (start / "models" / "s1" / "transformer").rmdir()
    (start / "models" / "s1").rmdir()
    assert saved_config(state).model == "models/s1"  # gone: one of that name here is taken, as before
    (elsewhere / "models" / "s1").rmdir()
    hub = saved_config({"config": {"stage": 1, "model": "org/name"}})
    refuse_recipe_changes(hub, {})  # a hub id, not in the cache here: not said gone (it may be downloaded)
    saved = saved_config(state)  # gone: still the run's model, said as the run's (and where it was)
    with pytest.raises(OptionError) as err:
        refuse_recipe_changes(saved, {})
    assert str(err.value) == (
        f"--model {start / 'models' / 's1'}: the resumed run's, no such file or folder; give --model anew with its "
        "full path (moved: its new place)"
    )
    (moved := tmp_path / "moved" / "s1").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        refuse_recipe_changes(saved, {"model": str(moved)})  # the advice taken: its new place, said
    assert [r.getMessage() for r in caplog.records] == [
        f"--model {moved}: the run's saved {start / 'models' / 's1'} is gone; resuming with this as its new place "
        "(the same data is the same run; other data makes another)"
    ]
    with pytest.raises(OptionError, match="no such file or folder in"):  # no record of where it was loaded from
        refuse_recipe_changes(saved_config({"config": {"stage": 2, "model": "../models/s1"}}), {})
