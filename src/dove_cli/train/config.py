"""The training recipe as data: every number of docs/SPEC.md section 2 is a default here.

Precedence: stage defaults < `--config file.toml|yaml` < command-line flags. Keys in a config file
are the field names below (dashes or underscores). With `--resume`, the saved run's options take
the place of the stage defaults, and only the options in RESUMABLE may change.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from dove_cli.errors import OptionError
from dove_cli.options import option

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """One training run. Defaults are the paper's stage-1 recipe; `for_stage(2)` gives stage 2's.

    The `dove train` options are made from these fields (cli.py); each one's help says its default
    and, where stage 2 differs, stage 2's.
    """

    stage: int = option(1, "1 (latent space) or 2 (pixel space).", metavar="1|2", shown_default="1")
    data: str = option("", "Folder (recursive) or list file of HQ videos.", metavar="PATH")
    images: str | None = option(None, "Stage 2: folder or list file of HQ images (DIV2K-HR).", metavar="PATH")
    lq: str | None = option(None, "Folder of real LQ videos paired with --data (no synthesis).", metavar="PATH")
    model: str = option(
        "", "Initial model: a diffusers folder, a hub id, or tiny (a tiny random model, to try it).",
        short="-m", metavar="NAME",
    )  # fmt: skip
    output_dir: str = option(
        "dove-train", "Run folder: checkpoints, metrics (dove-train; with --resume CKPT: CKPT's run folder).",
        short="-o", metavar="DIR",
    )  # fmt: skip

    # data
    resolution: tuple[int, int, int] = option(
        (25, 320, 640), "HQ crop FxHxW (25x320x640; stage 2: 2x320x640).", metavar="FxHxW",
        parse=lambda value, flag: _coerce("resolution", value),
    )  # fmt: skip
    frame_stride: int = option(1, "Take every Nth frame (1).", metavar="N")
    image_ratio: float = option(0.0, "Stage 2: share of image batches (0.8).", metavar="P")
    degradation: str = option("video", "video, image_video or a yaml path (stage 2: image_video).", metavar="NAME")
    num_workers: int = option(min(4, os.cpu_count() or 1), "Data-loading processes (default: one per core, up "
                              "to 4; never more than the cores).", metavar="N")  # fmt: skip

    # optimisation
    max_steps: int = option(10_000, "Optimiser steps (10000; stage 2: 500).", metavar="N")
    lr: float = option(2e-5, "Learning rate (2e-5; stage 2: 5e-6).", metavar="LR")
    warmup_steps: int = option(
        100, "Linear warmup, then constant (100; DeepSpeed's WarmupLR: lr 0 at steps 1-2).", metavar="N"
    )
    batch_size: int = option(2, "Clips per process and micro-step (2).", metavar="N")
    grad_accum: int = option(1, "Micro-steps per optimiser step (1).", metavar="N")
    optimizer: Literal["adamw", "adamw8bit"] = option("adamw", "adamw, or adamw8bit (bitsandbytes).")
    adam_beta1: float = option(0.9, "AdamW beta1.", hidden=True)
    adam_beta2: float = option(0.95, "AdamW beta2.", hidden=True)
    adam_eps: float = option(1e-8, "AdamW epsilon.", hidden=True)
    weight_decay: float = option(1e-4, "AdamW weight decay.", hidden=True)
    max_grad_norm: float = option(0.1, "Gradient clipping: the max norm, > 0 (0.1).", metavar="X")
    mixed_precision: Literal["auto", "bf16", "fp16", "no"] = option("auto", "auto: bf16 on CUDA, fp32 on the CPU.")
    gradient_checkpointing: bool = option(True, "Recompute activations (on).")
    seed: int = option(42, "Seed of data order, crops and degradations (42).", metavar="N")

    # LoRA (0 = train all transformer weights, as the paper does)
    lora_rank: int = option(0, "Train LoRA adapters of this rank (0: all weights).", metavar="R")
    lora_alpha: int = option(64, "LoRA alpha (64).", metavar="A")
    lora_targets: tuple[str, ...] = option(("to_q", "to_k", "to_v", "to_out.0"), "LoRA target modules.", hidden=True)

    # losses (stage 2)
    dists_weight: float = option(1.0, "Weight of the DISTS term (1; 0: no DISTS).", metavar="W")
    frame_diff_weight: float = option(1.0, "Weight of the frame-difference term (1).", metavar="W")
    dists_weights: tuple[str, ...] = option(
        (), "DISTS alpha/beta and/or VGG16 weight files (repeatable; default: dove download-weights --dists).",
        metavar="FILE", parse=lambda value, flag: _coerce("dists_weights", value) or None,
    )  # fmt: skip

    # model forward
    timestep: int = option(399, "The one denoising step's timestep.", hidden=True)
    posterior: Literal["sample", "mode"] = option("sample", "VAE posterior: sample (the release) or mode.")
    latent_loss: Literal["all-slots", "real-frames"] = option(
        "all-slots", "Stage 1: all-slots (the release: the replicated first latent frame counts) or real-frames."
    )
    vae_slicing: bool = option(True, "One clip at a time through the VAE (on, as the release).")
    vae_tiling: bool = option(True, "Spatial VAE tiles (on, as the release trains).")

    # validation on a held-out folder of HQ videos (PSNR / SSIM vs HQ, sample frames)
    val_data: str | None = option(None, "Held-out HQ videos: PSNR/SSIM and sample frames.", metavar="PATH")
    val_every: int = option(500, "Steps between validations (500).", metavar="N")
    val_clips: int = option(4, "Held-out clips per validation (4).", metavar="N")

    # checkpoints and logs
    checkpoint_every: int = option(1000, "Steps between checkpoints (1000; stage 2: 100).", metavar="N")
    keep_checkpoints: int = option(3, "Checkpoints kept (3).", metavar="N")
    metrics_file: str | None = option(None, "JSONL log (default OUTPUT/metrics.jsonl).", metavar="FILE")
    tensorboard: bool = option(False, "Also log to TensorBoard.")
    resume: str | None = option(
        None, "'latest' (in -o DIR) or a checkpoint folder: continue that run in its folder (-o DIR: a new "
        "branch), with its options (how far it goes, checkpoints, validation and logs may change).", metavar="CKPT",
    )  # fmt: skip
    overwrite: bool = option(
        False, "Start over in an output folder that holds a run; with --resume: delete the checkpoints (and "
        "metrics) the resumed one does not lead to.",
    )  # fmt: skip
    allow_pickle: bool = option(
        False, "--resume: load the checkpoint's pickle files in full, which can run code from them (only for "
        "checkpoints you made or trust); without it, any Python object besides tensors is refused.",
    )  # fmt: skip

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
        cfg = self.merged(**overrides)
        cfg.check_values()
        return cfg

    def merged(self, **overrides: Any) -> TrainConfig:
        """`replace` with the values coerced but not checked (a resumed run's: `resume_point` first
        names a recipe option given anew, which may be what makes a value wrong, e.g. --stage)."""
        names = {f.name for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            key = key.replace("-", "_")
            if key not in names:
                raise OptionError(f"unknown training option {key!r}")
            if value is not None:
                clean[key] = _coerce(key, value)
        return dataclasses.replace(self, **clean)

    def check(self) -> None:
        """Raise OptionError (naming the option) for a value the recipe cannot run with, or for the data
        it lacks: `train` checks this, `replace` only the values (a recipe is built up before its data)."""
        self.check_values()
        if not self.data:  # (an empty path is the current folder: never what is meant)
            raise OptionError("--data is required (a folder or list file of HQ videos)")

    def check_values(self) -> None:
        """Raise OptionError (naming the option) for a value the recipe cannot run with."""
        for field in dataclasses.fields(self):
            _check_value(
                field.name, _coerce(field.name, getattr(self, field.name)), "--" + field.name.replace("_", "-")
            )
        f, h, w = self.resolution
        if f < 1 or h % 16 or w % 16 or h <= 0 or w <= 0:
            raise OptionError(f"--resolution {f}x{h}x{w}: frames >= 1, height and width multiples of 16")
        if self.stage == 1 and (f - 1) % 4:
            raise OptionError(f"--resolution: stage 1 encodes whole clips, frames must be 4k+1 (got {f})")
        if self.stage == 1 and self.images is not None:  # stage 1 is the default: --stage 2 forgotten, most likely
            raise OptionError(f"--images {self.images}: images are trained on in stage 2 only (stage 1 trains on "
                              "--data's clips); add --stage 2, or drop --images")  # fmt: skip

    @property
    def metrics_path(self) -> Path:
        return Path(self.metrics_file) if self.metrics_file else Path(self.output_dir) / "metrics.jsonl"

    def to_dict(self) -> dict[str, Any]:
        """The options as run.json and checkpoints keep them: paths absolute, so that the run folder
        resumes from any working folder."""
        fields = {f.name: _absolute(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)}
        return json.loads(json.dumps(fields))


def _coerce(key: str, value: Any, where: str | None = None) -> Any:
    """Accept the spellings a user writes: '25x320x640', 'a,b' lists, strings for numbers (YAML reads
    `1e-5` as a string). A value of the wrong type is an OptionError naming `where` (default: the flag)."""
    where = where or "--" + key.replace("_", "-")
    if key == "resolution":
        text = (
            value if isinstance(value, str) else "x".join(map(str, value)) if isinstance(value, list | tuple) else value
        )
        try:
            parts = value.lower().replace(" ", "").split("x") if isinstance(value, str) else list(value)
            value = tuple(int(p) for p in parts)
        except (TypeError, ValueError):
            value = ()
        if len(value) != 3:
            raise OptionError(f"{where} {text}: expected FxHxW, e.g. 25x320x640")
        return value
    if key in ("lora_targets", "dists_weights"):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        return tuple(str(v) for v in value)
    hint = _HINTS.get(key)
    if value is None and hint == str | None:
        return value
    if hint in (int, float) and not isinstance(value, bool):
        try:
            number = float(value) if isinstance(value, str) else value
            if hint is int and isinstance(number, float) and number.is_integer():
                number = int(number)
            if isinstance(number, int if hint is int else (int, float)) and math.isfinite(number):
                return hint(number)
        except ValueError:
            pass
        raise OptionError(f"{where} must be {'a whole number' if hint is int else 'a finite number'}, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise OptionError(f"{where} must be true or false, got {value!r}")
    if get_origin(hint) is Literal and value not in get_args(hint):
        raise OptionError(f"{where} must be one of {', '.join(map(str, get_args(hint)))}, got {value!r}")
    if hint in (str, str | None) and isinstance(value, os.PathLike):
        return os.fspath(value)
    if hint in (str, str | None) and not isinstance(value, str):
        raise OptionError(f"{where} must be text, got {value!r}")
    return value


# Each option's own range (the stage, the resolution and their combination are checked in `check`).
_AT_LEAST_1 = ("max_steps", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints", "frame_stride",
               "val_every", "val_clips")  # fmt: skip
_POSITIVE = ("lr", "max_grad_norm", "lora_alpha", "adam_eps")
_NOT_NEGATIVE = ("warmup_steps", "lora_rank", "dists_weight", "frame_diff_weight", "weight_decay", "num_workers",
                 "seed", "timestep")  # fmt: skip
_RANGES = {"image_ratio": (0, 1), "seed": (0, 2**32 - 1), "timestep": (0, 999)}
_BELOW_1 = ("adam_beta1", "adam_beta2")  # [0, 1)


def _check_value(key: str, value: Any, where: str) -> None:
    """OptionError `where must be ..., got value` for a value outside the option's own range."""
    got = f"got {value:g}" if isinstance(value, float) else f"got {value}"  # -1, not -1.0
    if key in _AT_LEAST_1 and value < 1:
        raise OptionError(f"{where} must be >= 1, {got}")
    if key in _POSITIVE and not value > 0:
        raise OptionError(f"{where} must be > 0, {got}")
    if key in _NOT_NEGATIVE and value < 0:
        raise OptionError(f"{where} must be >= 0, {got}")
    if key in _RANGES and not _RANGES[key][0] <= value <= _RANGES[key][1]:
        raise OptionError(f"{where} must be in [{_RANGES[key][0]}, {_RANGES[key][1]}], {got}")
    if key in _BELOW_1 and not 0 <= value < 1:
        raise OptionError(f"{where} must be in [0, 1), {got}")


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
    values = {}
    for key, value in data.items():  # each key and value on its own here, where the file can be named
        name = str(key).replace("-", "_")
        if name not in _HINTS:
            near = [_ALIASES[name]] if name in _ALIASES else difflib.get_close_matches(name, _HINTS, n=1)
            raise OptionError(
                f"{path}: unknown training option {key!r}" + (f" (did you mean {near[0]}?)" if near else "")
            )
        if value is not None:
            value = _coerce(name, value, f"{path}: {key}")
            _check_value(name, value, f"{path}: {key}")
        values[name] = value
    return values


def build_config(default_stage: int = 1, config_file: str | Path | None = None, **flags: Any) -> TrainConfig:
    """Stage defaults, then the config file, then the flags that were given (None = not given).

    With `resume`, the saved run's options replace the stage defaults, so what is not given stays
    as the run was; whether what is given anew may change is `train()`'s check (`resume_point`), so
    the merge leaves the values to it too. Without `output_dir`, a resumed run continues in its
    checkpoint's run folder.
    """
    given = load_config_file(config_file) if config_file else {}
    given.update((key.replace("-", "_"), value) for key, value in flags.items())
    given = {key: value for key, value in given.items() if value is not None}
    if not given.get("resume"):
        return TrainConfig.for_stage(int(given.pop("stage", None) or default_stage)).replace(**given)
    from dove_cli.train.checkpoints import CKPT_DIR, find_resume, read_state, run_folder

    ckpt = find_resume(Path(given.get("output_dir") or TrainConfig().output_dir), str(given["resume"]))
    if not given.get("output_dir"):  # the run continues where it is, not in a new ./dove-train
        folder = run_folder(ckpt)
        if folder is None:
            raise OptionError(
                f"--resume {given['resume']}: not inside a run folder's {CKPT_DIR}/; give -o DIR for the run to continue in"
            )
        given["output_dir"] = str(folder)
    base = saved_config(read_state(ckpt))
    for key in set(PATH_OPTIONS) - RESUMABLE:  # the same data given through a link: the saved path stays
        old = getattr(base, key)
        if (
            key in given
            and _same_paths(key, old, _coerce(key, given[key]))
            and not _gone(key, old)
            and all(Path(path).is_absolute() for path in _paths(key, old))
        ):
            given.pop(key)
    return base.merged(**given)


# What a resumed run may change: how far it goes, how often it saves and validates, where it logs,
# and switches that save memory or time without changing the numbers. Every other option is the
# recipe: the weights a run makes depend on it, so a resumed run keeps it.
RESUMABLE = frozenset({
    "output_dir", "resume", "overwrite", "max_steps", "checkpoint_every", "keep_checkpoints",
    "val_data", "val_every", "val_clips", "metrics_file", "tensorboard", "num_workers",
    "gradient_checkpointing", "vae_slicing", "allow_pickle",
})  # fmt: skip


def saved_config(state: dict[str, Any]) -> TrainConfig:
    """The options a checkpoint was trained with (train_state.json), less where that start wrote."""
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise OptionError("--resume: the checkpoint does not record its options (no config in its state file)")
    # allow_pickle: the user's trust, given anew each time, never a checkpoint's (its train_state.json could say so)
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"stage", "output_dir", "resume", "overwrite",
                                                                  "allow_pickle"}  # fmt: skip
    stage = int(saved.get("stage", 1))
    if stage == 1:
        names.discard("images")  # older versions recorded a stage-1 --images that they ignored
    if isinstance(saved.get("model"), str):
        saved = {**saved, "model": _saved_model(saved["model"], state.get("model"))}
    return TrainConfig.for_stage(stage, **{k: v for k, v in saved.items() if k in names})


def _saved_model(typed: str, loaded: Any) -> str:
    """An older run's --model as typed (relative to the folder the run was started in, which it did not record)
    as the folder its checkpoint loaded it from (train_state.json's `model`, absolute), which ends in the typed
    path: not another folder of that name in today's working folder. Where that folder is gone, it is the run's
    model all the same: `refuse_recipe_changes` says so, or takes a --model given anew as its new place."""
    path = Path(typed).expanduser()
    if not typed or typed in _NOT_PATHS["model"] or path.is_absolute():
        return typed
    if isinstance(loaded, str) and Path(loaded).is_absolute():
        parts, n = Path(loaded).parts, len(path.parts)
        for end in range(len(parts), n, -1):  # (find_model_root may have taken a folder inside it)
            if parts[end - n : end] == path.parts:
                folder = Path(*parts[:end])
                return typed if path.is_dir() and not folder.is_dir() else str(folder)
    return typed


def refuse_recipe_changes(saved: TrainConfig, values: dict[str, Any]) -> None:
    """One OptionError naming each recipe option in `values` that differs from the saved run's:
    resuming with another lr, batch or data would make a run that is neither the old one nor a new one."""
    changes, names = [], {f.name for f in dataclasses.fields(saved)}
    for key in PATH_OPTIONS:
        if values.get(key) in (None, getattr(saved, key)):  # the run's own, kept: said as the run's where it is gone
            _check_saved_path(key, getattr(saved, key))
    for key, value in values.items():
        if key in RESUMABLE or key not in names:
            continue
        old, new = getattr(saved, key), _coerce(key, value)
        if not (_same_paths(key, old, new) or _moved(key, old, new) if key in PATH_OPTIONS else new == old):
            was = _as_flag(key, old) if isinstance(old, bool) else _spell(old)
            changes.append(f"{_as_flag(key, new)} (saved {was})")
    if changes:
        them = "it" if len(changes) == 1 else "them"
        raise OptionError(
            f"--resume keeps the saved run's recipe, given anew: {', '.join(changes)}; "
            f"drop {them} to resume, or use --overwrite instead of --resume to start a new run"
        )


# Options that name files or folders. run.json and the checkpoints keep them absolute (symlinks as
# typed); a resume compares them by the file or folder they resolve to, wherever it is started from.
PATH_OPTIONS = ("data", "images", "lq", "val_data", "degradation", "dists_weights", "model", "output_dir",
                "metrics_file", "resume")  # fmt: skip
_NOT_PATHS = {"degradation": ("video", "image_video"), "model": ("tiny",), "resume": ("latest",)}


def _paths(key: str, value: Any) -> tuple[str, ...]:
    """The paths an option's value names: none for a name that is not one (a config name, tiny,
    latest, a hub id: a --model that is no folder here)."""
    values = tuple(v for v in (value if isinstance(value, tuple) else (value,)) if v)  # (no --data: "")
    if key == "model":
        return tuple(v for v in values if v not in _NOT_PATHS[key] and Path(v).expanduser().is_dir())
    return tuple(v for v in values if v not in _NOT_PATHS.get(key, ()))


def _absolute(key: str, value: Any) -> Any:
    """`value` with the paths it names made absolute (from the working folder); other values as they are."""
    if key not in PATH_OPTIONS or not _paths(key, value):
        return value
    if isinstance(value, tuple):
        return tuple(os.path.abspath(Path(v).expanduser()) for v in value)
    return os.path.abspath(Path(value).expanduser())


def _same_paths(key: str, saved: Any, given: Any) -> bool:
    """Whether the paths given anew name what the run saved (`_same_path`, one by one)."""
    old, new = (v if isinstance(v, tuple) else (v,) for v in (saved, given))
    return len(old) == len(new) and all(_same_path(key, a, b) for a, b in zip(old, new, strict=True))


def _same_path(key: str, saved: Any, given: Any) -> bool:
    """The same file or folder once resolved. A relative path (run.json of older versions kept them as
    typed, relative to a working folder it did not record) also matches a path that ends with it
    (`HQ/` saved, `/data/HQ` given). Names that are no paths (video, tiny, a hub id) as they are."""
    if saved == given or not (_paths(key, saved) and _paths(key, given)):
        return bool(saved == given)
    old, new = Path(saved).expanduser(), Path(given).expanduser()
    if old.resolve() == new.resolve():
        return True
    return not old.is_absolute() and new.absolute().parts[-len(old.parts) :] == old.parts


MOVABLE = ("data", "images", "lq", "val_data", "degradation")  # the run's data: it may move between runs


def _model_gone(value: Any) -> bool:
    """A saved --model folder that is not there (a relative org/name may be a hub id: never said gone)."""
    if not isinstance(value, str) or not value or value in _NOT_PATHS["model"]:
        return False
    path = Path(value).expanduser()
    hub_id = not path.is_absolute() and len(path.parts) == 2 and ".." not in path.parts
    return not hub_id and not path.exists()


def _gone(key: str, value: Any) -> bool:
    """A resumed run's saved data paths that are all gone (moved or renamed since). A relative one (older
    versions saved them as typed) is never said gone: from another folder it cannot be told."""
    if key == "model":
        return _model_gone(value)
    paths = _paths(key, value) if key in MOVABLE else ()
    absolute = all(Path(path).expanduser().is_absolute() for path in paths)
    return bool(paths) and absolute and not any(Path(path).expanduser().exists() for path in paths)


def _moved(key: str, saved: Any, given: Any) -> bool:
    """The saved data is gone and other data, which exists, is given: taken as where it went (dove cannot
    tell the same clips from others, so it says so) rather than refused as a change of recipe."""
    if not _gone(key, saved) or not _paths(key, given) or not all(Path(p).exists() for p in _paths(key, given)):
        return False
    log.warning("--%s %s: the run's saved %s is gone; resuming with this as its new place (the same data "
                "is the same run; other data makes another)", key.replace("_", "-"), _spell(given), _spell(saved))  # fmt: skip
    return True


def _check_saved_path(key: str, value: Any) -> None:
    """A resumed run's saved data (or model folder) that is gone: one line saying it is the run's, and what
    to give."""
    if key == "model":
        paths: tuple[str, ...] = (value,) if _model_gone(value) else ()
    elif key in MOVABLE:
        paths = _paths(key, value)
    else:
        return
    for path in paths:
        if not Path(path).expanduser().exists():
            flag = "--" + key.replace("_", "-")
            where = "" if Path(path).is_absolute() else (
                f" in {os.getcwd()} (older versions saved it as typed, relative to the folder the run was started in)"
            )  # fmt: skip
            raise OptionError(f"{flag} {path}: the resumed run's, no such file or folder{where}; give {flag} anew "
                              "with its full path (moved: its new place)")  # fmt: skip


_HINTS: dict[str, Any] = get_type_hints(TrainConfig)  # field -> its type, to check config-file values
# names of diffusers' training scripts (the release's), for "did you mean"
_ALIASES = {"learning_rate": "lr", "train_batch_size": "batch_size", "max_train_steps": "max_steps",
            "lr_warmup_steps": "warmup_steps", "gradient_accumulation_steps": "grad_accum"}  # fmt: skip


def _as_flag(key: str, value: Any) -> str:
    """The option as it is typed: --lr 0.001, --no-vae-tiling."""
    flag = key.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {_spell(value)}"


def _spell(value: Any) -> str:
    """A value as its flag takes it: 9x64x64, a,b."""
    if isinstance(value, tuple):
        return ("x" if all(isinstance(v, int) for v in value) else ",").join(map(str, value)) or "none"
    return "none" if value is None else str(value)
