"""The training recipe as data: every number of SPEC section 2 is a default here.

Precedence: stage defaults < `--config file.toml|yaml` < command-line flags. Keys in a config file
are the field names below (dashes or underscores).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dove_cli.errors import OptionError

Stage = Literal[1, 2]


@dataclass
class TrainConfig:
    """One training run. Defaults are the paper's stage-1 recipe; `for_stage(2)` gives stage 2's."""

    stage: int = 1
    data: str = ""  # folder (recursive) or list file of HQ videos
    images: str | None = None  # stage 2: folder or list of HQ images (DIV2K-HR in the paper)
    lq: str | None = None  # paired real LQ videos (same relative paths as --data), no synthesis
    model: str = ""  # diffusers folder or hub id (CogVideoX1.5-5B for stage 1, a stage-1 result for 2)
    output_dir: str = "dove-train"

    # data
    resolution: tuple[int, int, int] = (25, 320, 640)  # HQ crop: frames, height, width
    frame_stride: int = 1
    image_ratio: float = 0.0  # probability that a global batch is images (0.8 in stage 2)
    degradation: str = "video"  # 'video', 'image_video' (packaged release yamls) or a yaml path
    num_workers: int = 4

    # optimisation
    max_steps: int = 10_000
    lr: float = 2e-5
    warmup_steps: int = 100  # the release's default (linear warmup, then constant)
    batch_size: int = 2  # per process: global 4 with the release's 2-process config, 8 on 4 GPUs
    grad_accum: int = 1
    optimizer: Literal["adamw", "adamw8bit"] = "adamw"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    weight_decay: float = 1e-4
    max_grad_norm: float = 0.1
    mixed_precision: Literal["auto", "bf16", "fp16", "no"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    gradient_checkpointing: bool = True
    seed: int = 42

    # LoRA (0 = train all transformer weights, as the paper does)
    lora_rank: int = 0
    lora_alpha: int = 64
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")

    # losses (stage 2)
    dists_weight: float = 1.0
    frame_diff_weight: float = 1.0
    dists_weights: tuple[str, ...] = ()  # files: DISTS alpha/beta and/or VGG16 features

    # model forward
    timestep: int = 399
    posterior: Literal["sample", "mode"] = "sample"
    # stage 1: "all-slots" scores the replicated first latent frame too (the release), "real-frames" not
    latent_loss: Literal["all-slots", "real-frames"] = "all-slots"
    vae_slicing: bool = True  # one clip at a time through the VAE (the release's default)
    vae_tiling: bool = True  # spatial VAE tiles (the release's default; splits 320x640 encodes and decodes)

    # validation on a held-out folder of HQ videos (PSNR / SSIM vs HQ, sample frames)
    val_data: str | None = None
    val_every: int = 500
    val_clips: int = 4

    # checkpoints and logs
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    metrics_file: str | None = None  # default OUTPUT/metrics.jsonl
    tensorboard: bool = False
    resume: str | None = None  # 'latest' or a checkpoint folder
    overwrite: bool = False

    @classmethod
    def for_stage(cls, stage: int, **overrides: Any) -> TrainConfig:
        """The paper's recipe for stage 1 or 2, then `overrides` (None values are ignored)."""
        if stage not in (1, 2):
            raise OptionError(f"--stage must be 1 or 2, got {stage}")
        base: dict[str, Any] = {"stage": stage}
        if stage == 2:
            base.update(
                resolution=(2, 320, 640), max_steps=500, lr=5e-6, image_ratio=0.8,
                degradation="image_video", checkpoint_every=100,
            )  # fmt: skip
        cfg = cls(**base)
        return cfg.replace(**overrides)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with the given fields changed (None = keep); unknown keys are an OptionError."""
        names = {f.name for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            key = key.replace("-", "_")
            if key not in names:
                raise OptionError(f"unknown training option {key!r}")
            if value is not None:
                clean[key] = _coerce(key, value)
        cfg = dataclasses.replace(self, **clean)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise OptionError (naming the option) for a value the recipe cannot run with."""
        f, h, w = self.resolution
        if f < 1 or h % 16 or w % 16 or h <= 0 or w <= 0:
            raise OptionError(f"--resolution {f}x{h}x{w}: frames >= 1, height and width multiples of 16")
        if self.stage == 1 and (f - 1) % 4:
            raise OptionError(f"--resolution: stage 1 encodes whole clips, frames must be 4k+1 (got {f})")
        if not 0.0 <= self.image_ratio <= 1.0:
            raise OptionError("--image-ratio must be in [0, 1]")
        for name in (
            "max_steps",
            "batch_size",
            "grad_accum",
            "checkpoint_every",
            "keep_checkpoints",
            "frame_stride",
            "val_every",
            "val_clips",
        ):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be >= 1")
        if self.lr <= 0 or self.warmup_steps < 0 or self.lora_rank < 0:
            raise OptionError("--lr must be > 0, --warmup-steps and --lora-rank >= 0")
        if self.latent_loss not in ("all-slots", "real-frames"):
            raise OptionError(f"--latent-loss {self.latent_loss!r}: all-slots or real-frames")

    @property
    def metrics_path(self) -> Path:
        return Path(self.metrics_file) if self.metrics_file else Path(self.output_dir) / "metrics.jsonl"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _coerce(key: str, value: Any) -> Any:
    """Accept the spellings a user writes: '25x320x640', 'a,b' lists, strings for numbers."""
    if key == "resolution":
        if isinstance(value, str):
            parts = value.lower().replace(" ", "").split("x")
            try:
                value = tuple(int(p) for p in parts)
            except ValueError:
                raise OptionError(f"--resolution {value!r}: expected FxHxW, e.g. 25x320x640") from None
        value = tuple(int(v) for v in value)
        if len(value) != 3:
            raise OptionError(f"--resolution {value!r}: expected FxHxW")
        return value
    if key in ("lora_targets", "dists_weights"):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        return tuple(str(v) for v in value)
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a .toml or .yaml/.yml file of TrainConfig fields (a [train] table/section is accepted)."""
    path = Path(path)
    if not path.is_file():
        raise OptionError(f"--config {path}: no such file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise OptionError(f"--config {path}: use a .toml or .yaml file")
    except OptionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parse error is the user's
        raise OptionError(f"--config {path}: {str(exc).splitlines()[0]}") from exc
    if isinstance(data, dict) and isinstance(data.get("train"), dict):
        data = data["train"]
    if not isinstance(data, dict):
        raise OptionError(f"--config {path}: expected a table of options")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_config(default_stage: int = 1, config_file: str | Path | None = None, **flags: Any) -> TrainConfig:
    """Stage defaults, then the config file, then the flags that were given (None = not given)."""
    file_values = load_config_file(config_file) if config_file else {}
    file_stage = file_values.pop("stage", None)
    flag_stage = flags.pop("stage", None)
    stage = int(flag_stage or file_stage or default_stage)
    cfg = TrainConfig.for_stage(stage, **file_values)
    return cfg.replace(**flags)
