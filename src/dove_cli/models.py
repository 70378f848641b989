"""Which model a run uses, on which device: the downloaded DOVE, a folder or hub id, `bilinear`,
the random `tiny` / `full-random` models, or (for `--dry-run`) a weightless skeleton."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch

from dove_cli import engine, weights
from dove_cli.engine import DTYPES, BilinearModel, DoveModel, Restorer
from dove_cli.errors import ModelError, OptionError, TrainingRunGiven, advice
from dove_cli.options import UpscaleOptions

log = logging.getLogger(__name__)


def no_weights_hint() -> str:
    """What runs without the weights, and how to get them elsewhere, in the caller's words."""
    return advice(
        "without the weights, --model bilinear (a plain upscale) and --model tiny (the DOVE code path on a tiny "
        "random model) run anywhere",
        'without the weights, model="bilinear" (a plain upscale) and model="tiny" (the DOVE code path on a tiny '
        "random model) run anywhere",
    )


def fetch_elsewhere() -> str:
    return advice("fetch the weights on a connected machine with `dove download-weights --dir DIR` and pass --model DIR",
                  "fetch the weights on a connected machine with `dove download-weights --dir DIR` and pass "
                  'model="DIR"')  # fmt: skip


def pick_device(name: str | None) -> torch.device:
    """The device of `--device NAME` (default: cuda when present), refused in one line when this
    machine lacks it: torch accepts the name and fails only at the first tensor sent there, deep
    in the run, with a traceback."""
    name = name or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"unknown --device {name!r} (cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {name} was asked for, but no CUDA GPU is visible")
        if device.index is None:  # "cuda" != "cuda:0" to torch and accelerate: always name the index
            device = torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            raise OptionError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise OptionError("--device mps was asked for, but no Apple GPU (MPS) is available")
    elif device.type != "cpu":
        raise OptionError(f"--device {name}: dove runs on cpu, cuda or mps")
    return device


def resolve_device(opts: UpscaleOptions, planning: bool = False) -> tuple[torch.device, torch.dtype]:
    """cuda when present (else cpu, with a warning), bf16 on cuda and fp32 on cpu by default.
    planning (--dry-run) with --vram and no GPU: a CUDA device on paper, to plan for that card."""
    if opts.vram is not None and not (math.isfinite(opts.vram) and opts.vram > 0):  # inf, nan: no card
        raise OptionError(f"--vram {opts.vram:g}: give the card's memory in GiB, e.g. --vram 24")
    if planning and opts.vram is not None and not torch.cuda.is_available() and opts.device in (None, "cuda"):
        return torch.device("cuda", 0), default_dtype(opts, "cuda")
    device = pick_device(opts.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # what libraries that use "the current GPU" (bitsandbytes, timers) see
    if opts.vram is not None and device.type != "cuda" and (not planning or opts.device is not None):
        asked = f" (--device {opts.device})" if opts.device is not None else ""  # a dry run cannot plan a card then
        raise OptionError(f"--vram sizes windows for a GPU, and this run is on the {device.type.upper()}{asked}; "
                          "--dry-run without --device plans for a card you do not have here")  # fmt: skip
    if device.type != "cuda" and opts.attention in ("efficient", "cudnn") and opts.model != "bilinear":
        raise OptionError(f"--attention {opts.attention} needs a CUDA GPU and this run is on the CPU; "
                          "auto, flash or math run here")  # fmt: skip
    return device, default_dtype(opts, device.type)


def default_dtype(opts: UpscaleOptions, device_type: str) -> torch.dtype:
    """--dtype, or bf16 on a GPU and fp32 elsewhere (a Ray cluster's workers too: distributed.Cluster)."""
    if opts.dtype is not None and opts.dtype not in DTYPES:
        raise OptionError(f"--dtype {opts.dtype!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[opts.dtype or ("bf16" if device_type == "cuda" else "fp32")]


# The options load_model reads (and _load, random_size, model_folder below it): a model loaded for
# one set of them serves another run only where these are the same (model_key).
MODEL_FIELDS = ("model", "attention", "compile", "download", "offload", "posterior", "quantize", "vae_tiling")


def model_key(opts: UpscaleOptions, device: torch.device, dtype: torch.dtype) -> tuple[object, ...]:
    """What load_model's model depends on: equal keys, the same model (a Ray worker keeps its model
    while the key of its tasks stays the same)."""
    return (str(device), str(dtype), *(getattr(opts, name) for name in MODEL_FIELDS))


def load_model(
    opts: UpscaleOptions, device: torch.device, dtype: torch.dtype, on_part: Callable[[str], None] | None = None
) -> Restorer:
    """'bilinear', 'tiny', 'full-random', or real weights (a folder, hub id, or the default);
    compiled with --compile. `on_part`: DoveModel.from_pretrained's (real weights only)."""
    model = _load(opts, device, dtype, on_part)
    if opts.quantize == "fp8" and isinstance(model, DoveModel) and model.quantize != "fp8":
        model.quantize_fp8()  # a model built in memory
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the VAE's 3D convolutions run on one window shape again and again
    if opts.attention != "auto":
        if isinstance(model, DoveModel):
            model.attention = opts.attention
        else:
            log.warning("--attention: --model %s has no attention", opts.model)
    if opts.compile != "off":
        if isinstance(model, DoveModel):
            model.compile(opts.compile)
        else:
            log.warning("--compile: --model %s has no network to compile", opts.model)
    return model


def check_quantize(opts: UpscaleOptions, device: torch.device, on_paper: bool = False, dry_run: bool = False) -> None:
    """What --quantize needs (a GPU that has fp8, bitsandbytes, ...), checked before anything loads.
    on_paper (--dry-run --vram without a GPU): the card is not this machine's, so nothing to check.
    A dry run of a built-in model loads nothing, and a real run refuses int8/nf4 on it (`_load`):
    its plan counts the bytes bitsandbytes would store, with or without bitsandbytes here.
    --model bilinear has nothing to quantize or offload: said here, once a run, and nothing needed."""
    if opts.model == "bilinear":
        if given := [f"--{name} {value}" for name, value in (("quantize", opts.quantize), ("offload", opts.offload))
                     if value != "none"]:  # fmt: skip
            log.warning("--model bilinear has no network: %s %s nothing", " and ".join(given),
                        "does" if len(given) == 1 else "do")  # fmt: skip
        return
    if on_paper:  # planned for another card, maybe another machine: what this one lacks is only said
        if opts.quantize in ("int8", "nf4") and importlib.util.find_spec("bitsandbytes") is None:
            log.warning("--quantize %s needs bitsandbytes, which is not installed here: pip install 'dove-cli[quant]'",
                        opts.quantize)  # fmt: skip
        return
    if opts.quantize == "fp8":
        engine.check_fp8(device)
    elif opts.quantize != "none":
        if dry_run and random_size(opts) and device.type == "cuda":
            return
        engine.bnb_config(opts.quantize, DTYPES.get(opts.dtype or "bf16", torch.bfloat16), device)


def _load(
    opts: UpscaleOptions, device: torch.device, dtype: torch.dtype, on_part: Callable[[str], None] | None
) -> Restorer:
    name = opts.model
    if name == "bilinear":  # --quantize/--offload on it: check_quantize's warning
        return BilinearModel(device)
    if dtype == torch.float16:
        log.warning("--dtype fp16: CogVideoX1.5 was trained in bf16 and can overflow in fp16 (the run stops if it "
                    "does); bf16 is the safe choice")  # fmt: skip
    if size := random_size(opts):
        if opts.quantize not in ("none", "fp8"):
            raise OptionError(f"--quantize {opts.quantize} is applied while loading weights; --model {opts.model} is "
                              f"built in memory (fp8 works on it; a --dry-run plans {opts.quantize})")  # fmt: skip
        return engine.build_random(size, device=device, dtype=dtype, posterior=opts.posterior, offload=opts.offload,
                                   vae_tiling=opts.vae_tiling)  # fmt: skip
    return DoveModel.from_pretrained(
        model_folder(opts),
        device=device,
        dtype=dtype,
        posterior=opts.posterior,
        quantize=opts.quantize,
        offload=opts.offload,
        vae_tiling=opts.vae_tiling,
        on_part=on_part,
    )


def model_folder(opts: UpscaleOptions) -> Path:
    """The folder of a run's weights (downloaded first with --download), or a ModelError that says
    what runs without them."""
    try:
        return weights.resolve_model(opts.model, download=opts.download)
    except TrainingRunGiven:
        raise  # its own fix, `dove train export`, and nothing else
    except ModelError as exc:
        fetch = "" if "download-weights --dir" in str(exc) else f"; or {fetch_elsewhere()}"  # said once
        raise type(exc)(f"{exc}; {no_weights_hint()}{fetch}") from None


def check_weights(opts: UpscaleOptions) -> None:
    """The weights a run will load are there (or --download fetches them as they load): a missing
    model is said first, not after a plan that needs the weights' memory (a CPU run without them was
    refused for its memory, and a smaller --tile then only led to "no DOVE weights found")."""
    if opts.model != "bilinear" and not random_size(opts) and not opts.download:
        model_folder(opts)


def random_size(opts: UpscaleOptions) -> Literal["tiny", "full"] | None:
    """'tiny' / 'full' for --model tiny / full-random (random weights built in memory), else None."""
    if opts.model not in ("tiny", "full-random"):
        return None
    return "tiny" if opts.model == "tiny" else "full"


def planning_model(opts: UpscaleOptions, device: torch.device, dtype: torch.dtype) -> tuple[Restorer, str]:
    """The model for a --dry-run: its architecture on the meta device, no weights read or downloaded.

    A folder's own configs when the weights are here; before `dove download-weights`, the
    CogVideoX1.5-5B architecture every DOVE checkpoint shares, so a plan can come before 11 GB of
    downloads. Returns the model and a note on how it was sized.
    """
    name = opts.model
    if name == "bilinear":
        return BilinearModel(device), ""  # nothing to load
    if size := random_size(opts):
        return engine.skeleton(*engine.RANDOM_CONFIGS[size], device=device, dtype=dtype, quantize=opts.quantize), ""
    try:
        folder = weights.resolve_model(name, download=False)
    except ModelError:
        if name and (Path(name).expanduser().exists() or not weights.is_hub_id(name)):
            raise  # a folder that is broken or absent: the same error a real run gives
        note = "weights not downloaded yet: planned for the CogVideoX1.5-5B architecture of every DOVE checkpoint"
        return engine.skeleton(*engine.RANDOM_CONFIGS["full"], device=device, dtype=dtype, quantize=opts.quantize), note
    configs = []
    for part in ("transformer", "vae"):
        try:
            configs.append(json.loads((folder / part / "config.json").read_text()))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{folder / part / 'config.json'}: cannot read the model config ({exc})") from None
    return engine.skeleton(*configs, device=device, dtype=dtype, quantize=opts.quantize), f"sized from {folder}"
