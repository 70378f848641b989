"""Training checkpoints on disk: the folder layout, writing, listing, and reading the weights back.

A run folder holds `checkpoints/step-NNNNNNN/`, each written by `accelerator.save_state` plus our
`train_state.json`. The transformer weights inside are one of:
- `model.safetensors` (or a sharded index): plain / DDP runs, float32 (LoRA: adapters + frozen base);
- `pytorch_model/` (DeepSpeed): `mp_rank_00_model_states.pt` holds the bf16 module copy, and the
  `*optim_states.pt` partitions hold the float32 master weights. `read_weights` rebuilds the float32
  master weights from the partitions (DeepSpeed's `zero_to_fp32`), as the authors' release does
  before its stage 2, so an export never starts from bf16-rounded weights.

This module imports neither the training loop nor accelerate, so `dove train export` stays light.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dove_cli.errors import ModelError, OptionError, OutputError
from dove_cli.jsontext import json_text
from dove_cli.train.config import TrainConfig, refuse_recipe_changes, saved_config
from dove_cli.video_io.paths import umask_weights
from dove_cli.weights import PICKLE_SUFFIXES, pickle_refused

CKPT_DIR = "checkpoints"
STATE_FILE = "train_state.json"
RUN_FILE = "run.json"


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints (those with a state file), oldest first."""
    root = Path(output_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file()]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(ckpt: Path) -> int:
    """The step of a checkpoint folder, from its name (`step-NNNNNNN`, as `save_checkpoint` writes)."""
    return int(ckpt.name.split("-")[1])


def find_resume(output_dir: Path, spec: str) -> Path:
    """`--resume latest` or `--resume FOLDER` -> the checkpoint folder."""
    if spec == "latest":
        ckpts = list_checkpoints(output_dir)
        if not ckpts:
            raise OptionError(f"--resume latest: no checkpoint in {Path(output_dir) / CKPT_DIR}")
        return ckpts[-1]
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise OptionError(f"--resume {spec}: not a checkpoint folder (no {STATE_FILE})")
    return path


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resumed run continues from, its train_state.json, and the step it is at."""

    ckpt: Path
    state: dict[str, Any]
    step: int


def resume_point(cfg: TrainConfig) -> ResumePoint | None:
    """--resume's checkpoint, checked before anything loads or is written (a refused resume changes
    nothing): the one home of the resume checks. The stage must be the checkpoint's, and every recipe
    option the saved run's (`refuse_recipe_changes`); None without --resume."""
    if not cfg.resume:
        return None
    ckpt = find_resume(Path(cfg.output_dir), cfg.resume)
    state = read_state(ckpt)
    if state.get("stage") != cfg.stage:
        raise OptionError(f"--resume {ckpt}: a stage-{state.get('stage')} checkpoint, this is stage {cfg.stage}")
    refuse_recipe_changes(saved_config(state), vars(cfg))
    return ResumePoint(ckpt, state, int(state["step"]))


def run_folder(ckpt: Path) -> Path | None:
    """The run folder a checkpoint belongs to (`RUN/checkpoints/step-N`), or None for a loose one."""
    ckpt = Path(ckpt)
    if ckpt.parent.name != CKPT_DIR:  # `.` or `../step-N`: look at the real path
        ckpt = ckpt.resolve()
    return ckpt.parent.parent if ckpt.parent.name == CKPT_DIR else None


def read_state(ckpt: Path) -> dict[str, Any]:
    """A checkpoint's train_state.json: its step, stage, model and the options it was trained with."""
    return dict(json.loads((Path(ckpt) / STATE_FILE).read_text(encoding="utf-8")))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (then its latest complete checkpoint)."""
    path = Path(path)
    if (path / CKPT_DIR).is_dir() and not (path / STATE_FILE).is_file():
        found = list_checkpoints(path)
        if not found:
            raise ModelError(f"{path}: no complete checkpoint in {CKPT_DIR}/")
        path = found[-1]
    if not (path / STATE_FILE).is_file():
        raise ModelError(f"{path}: not a training checkpoint (no {STATE_FILE})")
    return path


def save_checkpoint(accelerator: Any, output_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write checkpoints/step-N atomically (tmp folder, then rename) and keep the last `keep`.

    If writing fails (disk full, ...), the partial folder is removed and the previous checkpoints
    stay untouched; the error is raised as an OutputError. A Ctrl-C while writing removes it too.
    """
    root = Path(output_dir) / CKPT_DIR
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    try:
        if accelerator.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            umask_weights(tmp)
            (tmp / STATE_FILE).write_text(json_text(state, indent=1), "utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in list_checkpoints(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()
    except BaseException as exc:  # OSError, or a second Ctrl-C after the one that asked for this save
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write checkpoint {final}: {exc.strerror or exc}") from exc
        raise
    return final


def _deepspeed_folder(ckpt: Path) -> Path | None:
    """The DeepSpeed tag folder accelerate wrote (`pytorch_model`, or `pytorch_model_N`)."""
    found = sorted(p.parent for p in ckpt.glob("pytorch_model*/mp_rank_00_model_states.pt"))
    return found[0] if found else None


def read_weights(ckpt: Path, allow_pickle: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """The transformer state dict a checkpoint holds, and where it came from.

    Returns (state dict, source), source one of "safetensors", "fp32-master" (rebuilt from the
    ZeRO partitions) or "module" (DeepSpeed's module copy, when no optimiser partitions exist).
    Pickle files are read as tensors only (`load_pickle`) unless `allow_pickle`.
    """
    from safetensors.torch import load_file

    ckpt = Path(ckpt)
    single = ckpt / "model.safetensors"
    index = ckpt / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single)), "safetensors"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(ckpt / shard)))
        return out, "safetensors"
    ds = _deepspeed_folder(ckpt)
    if ds is not None:
        if any(ds.glob("*optim_states.pt")):
            if not allow_pickle:  # deepspeed's zero_to_fp32 unpickles them in full
                check_pickles(sorted(ds.glob("*.pt")), EXPORT_FLAG)
            return _zero_fp32_weights(ckpt, ds.name), "fp32-master"
        sd = load_pickle(ds / "mp_rank_00_model_states.pt", allow_pickle, EXPORT_FLAG)
        return dict(sd.get("module", sd)), "module"
    if (ckpt / "pytorch_model.bin").is_file():
        sd = load_pickle(ckpt / "pytorch_model.bin", allow_pickle, EXPORT_FLAG)
        return dict(sd), "pytorch_model.bin"
    raise ModelError(f"{ckpt}: no model weights (model.safetensors or DeepSpeed states)")


EXPORT_FLAG = "--allow-pickle to `dove train export`"
RESUME_FLAG = "--allow-pickle to `dove train`"


def pickle_files(ckpt: Path) -> list[Path]:
    """The pickle files in a checkpoint folder (accelerate's optimizer.bin, random_states_N.pkl,
    custom_checkpoint_N.pkl; DeepSpeed's pytorch_model*/*.pt), which `--resume` loads."""
    return sorted(p for p in Path(ckpt).rglob("*") if p.name.endswith(PICKLE_SUFFIXES) and p.is_file())


def check_pickles(files: list[Path], flag: str) -> None:
    """Each file unpickles to tensors, plain containers and numpy RNG state only (memory-mapped: the
    tensors are not read), or the one-line refusal: a checkpoint from elsewhere must not run code."""
    for path in files:
        load_pickle(path, False, flag, mmap=zipfile.is_zipfile(path))


def load_pickle(path: Path, allow_pickle: bool, flag: str, mmap: bool = False) -> Any:
    """torch.load of a checkpoint file: with torch's weights_only unpickler (which refuses any other
    Python object, so no code from the file runs), or in full when the user allows pickle."""
    if allow_pickle:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(_rng_state_globals()):
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL (\S+)", str(exc))
        what = f"{path} holds Python objects besides tensors" + (f" ({named[1]})" if named else "")
        raise pickle_refused(what, flag, "only for a checkpoint you made or trust") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable checkpoint file ({str(exc).splitlines()[0]})") from None


def _rng_state_globals() -> list[Any]:
    """numpy's RNG state, which accelerate saves in random_states_N.pkl: an array of uint32."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    extra = [np.dtypes.UInt32DType] if hasattr(np, "dtypes") else []
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, *extra]


def _zero_fp32_weights(ckpt: Path, tag: str) -> dict[str, torch.Tensor]:
    """Float32 master weights of a ZeRO checkpoint, merged from every rank's partition."""
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError:
        raise ModelError(
            f"{ckpt} is a DeepSpeed ZeRO checkpoint: reading its float32 master weights needs deepspeed "
            "(pip install 'dove-cli[deepspeed]')"
        ) from None
    sd = get_fp32_state_dict_from_zero_checkpoint(str(ckpt), tag=tag)
    return {k: v.contiguous() for k, v in sd.items()}
