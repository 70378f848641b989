"""`dove train export`: turn a training checkpoint into a model folder `dove upscale --model` loads.

The folder is the diffusers layout (transformer/, vae/, scheduler/, prompt_embedding.safetensors
when the base model had one), with LoRA adapters merged into the weights (W + alpha/r * B A), so
the loader needs nothing beyond diffusers. `dove_train.json` records where it came from.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch

from dove_cli.errors import ModelError, OutputError
from dove_cli.train.loop import STATE_FILE

log = logging.getLogger(__name__)


def load_checkpoint_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """The transformer state dict accelerate saved: single or sharded safetensors, or DeepSpeed's."""
    from safetensors.torch import load_file

    single = ckpt / "model.safetensors"
    index = ckpt / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(ckpt / shard)))
        return out
    for candidate in (ckpt / "pytorch_model.bin", *sorted(ckpt.glob("pytorch_model*/mp_rank_00_model_states.pt"))):
        if candidate.is_file():
            sd = torch.load(str(candidate), map_location="cpu", weights_only=False)
            return sd.get("module", sd)
    raise ModelError(f"{ckpt}: no model weights (model.safetensors or DeepSpeed states)")


def merge_lora(weights: dict[str, torch.Tensor], alpha: float, rank: int) -> dict[str, torch.Tensor]:
    """Fold peft LoRA tensors into plain weights: `x.base_layer.weight` + alpha/r * B @ A -> `x.weight`."""
    scale = alpha / rank
    out: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if ".lora_A." in key or ".lora_B." in key:
            continue
        m = re.fullmatch(r"(.*)\.base_layer\.(weight|bias)", key)
        if not m:
            out[key] = value
            continue
        prefix, kind = m.groups()
        if kind == "weight":
            a = next((v for k, v in weights.items() if k.startswith(prefix + ".lora_A.") and k.endswith(".weight")), None)
            b = next((v for k, v in weights.items() if k.startswith(prefix + ".lora_B.") and k.endswith(".weight")), None)
            if a is not None and b is not None:
                value = (value.float() + scale * (b.float() @ a.float())).to(value.dtype)
        out[f"{prefix}.{kind}"] = value
    return out


def export_checkpoint(ckpt: str | Path, output: str | Path, *, overwrite: bool = False) -> Path:
    """Write a diffusers-layout model folder from a checkpoint folder (atomically, via a temp dir)."""
    from diffusers import CogVideoXTransformer3DModel

    ckpt, output = Path(ckpt), Path(output)
    if (ckpt / "checkpoints").is_dir() and not (ckpt / STATE_FILE).is_file():  # a run folder: take the latest
        from dove_cli.train.loop import list_checkpoints

        found = list_checkpoints(ckpt)
        if not found:
            raise ModelError(f"{ckpt}: no complete checkpoint in checkpoints/")
        ckpt = found[-1]
    state_path = ckpt / STATE_FILE
    if not state_path.is_file():
        raise ModelError(f"{ckpt}: not a training checkpoint (no {STATE_FILE})")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise OutputError(f"{output} exists and is not empty (use --overwrite)")
    state = json.loads(state_path.read_text())
    base = Path(state["model"])
    for part in ("transformer", "vae", "scheduler"):
        if not (base / part).is_dir():
            raise ModelError(f"base model {base} (recorded in {state_path}) has no {part}/; it is needed to export")

    weights = load_checkpoint_weights(ckpt)
    if state.get("lora_rank", 0) > 0:
        weights = merge_lora(weights, float(state["lora_alpha"]), int(state["lora_rank"]))
    config = CogVideoXTransformer3DModel.load_config(str(base / "transformer"))
    transformer = CogVideoXTransformer3DModel.from_config(config)
    missing, unexpected = transformer.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"{ckpt}: weights do not fit {base / 'transformer'} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]})"
        )

    tmp = output.parent / f".{output.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        transformer.save_pretrained(str(tmp / "transformer"), safe_serialization=True)
        shutil.copytree(base / "vae", tmp / "vae")
        shutil.copytree(base / "scheduler", tmp / "scheduler")
        if (base / "prompt_embedding.safetensors").is_file():
            shutil.copy2(base / "prompt_embedding.safetensors", tmp / "prompt_embedding.safetensors")
        meta = {"stage": state["stage"], "step": state["step"], "base_model": str(base), "checkpoint": str(ckpt.resolve())}
        (tmp / "dove_train.json").write_text(json.dumps(meta, indent=1))
        if output.exists():
            shutil.rmtree(output)
        os.replace(tmp, output)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    log.info("exported %s (stage %s, step %s) to %s", ckpt, state["stage"], state["step"], output)
    return output
