"""`dove train export`: turn a training checkpoint into a model folder `dove upscale --model` loads.

The folder is the diffusers layout (transformer/, vae/, scheduler/, prompt_embedding.safetensors when
the base model had one, model_index.json), so it also loads with diffusers'
`CogVideoXPipeline.from_pretrained` in other tools (the text encoder and tokenizer are copied from the
base model only with `with_text_encoder=True`; without them the pipeline takes prompt embeddings).

- Weights: float32. After a DeepSpeed ZeRO run they are the float32 master weights rebuilt from the
  optimiser partitions (DeepSpeed's zero_to_fp32), not the bf16 module copy, so a stage-2 run that
  starts from this export starts from unrounded weights, as the release's does.
- LoRA: the adapters are merged into the weights by peft (diffusers' `fuse_lora` -> peft's
  `BaseTunerLayer.merge`, the arithmetic of `PeftModel.merge_and_unload` that `dove upscale` uses
  for adapter folders), so the loader needs nothing beyond diffusers.
`dove_train.json` records where the export came from and which weights were read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from dove_cli.errors import ModelError, OutputError
from dove_cli.jsontext import json_text
from dove_cli.train.checkpoints import STATE_FILE, read_weights, resolve_checkpoint
from dove_cli.video_io.paths import umask_weights

log = logging.getLogger(__name__)

PIPELINE_CLASS = "CogVideoXPipeline"
TEXT_PARTS = {"text_encoder": ("transformers", "T5EncoderModel"), "tokenizer": ("transformers", "T5Tokenizer")}


def build_transformer(base: Path, weights: dict[str, torch.Tensor], state: dict[str, Any], source: str) -> Any:
    """The base transformer's architecture holding the checkpoint's weights, LoRA merged, float32."""
    from dove_cli.engine import from_diffusers

    [CogVideoXTransformer3DModel] = from_diffusers("CogVideoXTransformer3DModel")
    config = CogVideoXTransformer3DModel.load_config(str(base / "transformer"))
    transformer = CogVideoXTransformer3DModel.from_config(config)
    rank = int(state.get("lora_rank", 0))
    if rank > 0:
        from peft import LoraConfig

        targets = state.get("lora_targets") or state.get("config", {}).get("lora_targets")
        transformer.add_adapter(
            LoraConfig(r=rank, lora_alpha=state["lora_alpha"], init_lora_weights=True, target_modules=list(targets))
        )
    missing, unexpected = transformer.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"{source}: weights do not fit {base / 'transformer'} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]})"
        )
    if rank > 0:
        transformer.fuse_lora()  # peft merges each LoRA layer: W += alpha / r * B @ A
        transformer.unload_lora()  # plain layers (holding the merged weights) back in place
    return transformer.float()


def model_index(base: Path, with_text: bool) -> dict[str, Any]:
    """model_index.json for CogVideoXPipeline; text parts are null unless copied."""
    from dove_cli.engine import from_diffusers

    [diffusers_version] = from_diffusers("__version__")
    sched = json.loads(next((base / "scheduler").glob("*.json")).read_text()).get("_class_name")
    index: dict[str, Any] = {
        "_class_name": PIPELINE_CLASS,
        "_diffusers_version": diffusers_version,
        "scheduler": ["diffusers", sched or "CogVideoXDPMScheduler"],
        "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
    }
    base_index: dict[str, Any] = {}
    if (base / "model_index.json").is_file():
        base_index = json.loads((base / "model_index.json").read_text())
    for part, default in TEXT_PARTS.items():
        index[part] = (base_index.get(part) or list(default)) if with_text else [None, None]
    return index


def export_checkpoint(
    ckpt: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    with_text_encoder: bool = False,
    allow_pickle: bool = False,
) -> Path:
    """Write a diffusers-layout model folder from a checkpoint (or run) folder, atomically (temp dir).
    `allow_pickle`: read a DeepSpeed checkpoint's pickle files in full (they can run code)."""
    ckpt = resolve_checkpoint(ckpt)
    output = Path(output)
    state_path = ckpt / STATE_FILE
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise OutputError(f"{output} exists and is not empty (use --overwrite)")
    state = json.loads(state_path.read_text(encoding="utf-8"))
    base = Path(state["model"])
    parts = ("transformer", "vae", "scheduler") + (tuple(TEXT_PARTS) if with_text_encoder else ())
    for part in parts:
        if not (base / part).is_dir():
            why = "for --with-text-encoder: drop that option" if part in TEXT_PARTS else "which the export copies"
            raise ModelError(f"base model {base} (recorded in {state_path}) has no {part}/, {why}")

    weights, source = read_weights(ckpt, allow_pickle)
    transformer = build_transformer(base, weights, state, str(ckpt))
    del weights

    tmp = output.parent / f".{output.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        transformer.save_pretrained(str(tmp / "transformer"), safe_serialization=True)
        for part in parts[1:]:
            shutil.copytree(base / part, tmp / part)
        if (base / "prompt_embedding.safetensors").is_file():
            shutil.copy2(base / "prompt_embedding.safetensors", tmp / "prompt_embedding.safetensors")
        (tmp / "model_index.json").write_text(json_text(model_index(base, with_text_encoder), indent=2), "utf-8")
        meta = {
            "stage": state["stage"],
            "step": state["step"],
            "base_model": str(base),
            "checkpoint": str(ckpt.resolve()),
            "weights": source,
            "lora_merged": int(state.get("lora_rank", 0)) > 0,
        }
        (tmp / "dove_train.json").write_text(json_text(meta, indent=1), "utf-8")
        umask_weights(tmp, "*")  # written weights are 0600, copied files keep the base model's mode
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        os.replace(tmp, output)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    log.info("exported %s (stage %s, step %s, %s weights) to %s", ckpt, state["stage"], state["step"], source, output)
    return output
