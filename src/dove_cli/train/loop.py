"""The training recipe, top to bottom: load, wrap with accelerate, loop, log, checkpoint, resume.

One optimiser step = `grad_accum` micro-batches per process. The forward (`train/forward.py`) is
the inference path's one step (docs/SPEC.md 1.1 steps 4-11, t = 399, no noise added), so the
trained z_sr is exactly what `dove upscale` computes.

Stage 1: z_sr from the whole LQ clip, loss MSE(z_sr, VAE(HQ clip) x scaling_factor) over every latent
slot, the replicated first frame included (the release's objective; `--latent-loss real-frames`
scores the real frames only).
Stage 2: every LQ frame encoded alone, z_sr decoded frame by frame (gradients flow through the
frozen decoder), loss MSE + DISTS + L1 of frame differences on pixels in [0, 1].

Precision: trainable weights are float32 masters; the frozen VAE is stored in bf16 under bf16 mixed
precision (as the release stores it), and latents are cast to the transformer's compute dtype, so
the same code runs under DDP + autocast and under DeepSpeed (bf16 module, no autocast).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dove_cli.errors import Interrupted, ModelError, OptionError, OutputError, StopSignal, TrainingRunGiven
from dove_cli.jsontext import json_text
from dove_cli.metrics.dists import training_dists
from dove_cli.train.checkpoints import (
    CKPT_DIR,
    RESUME_FLAG,
    RUN_FILE,
    STATE_FILE,
    ResumePoint,
    check_pickles,
    checkpoint_step,
    list_checkpoints,
    pickle_files,
    resume_point,
    save_checkpoint,
)
from dove_cli.train.config import TrainConfig
from dove_cli.train.data import (
    DataConfig,
    GlobalBatchSampler,
    Sources,
    TrainDataset,
    iter_batches,
    make_loader,
    scan_sources,
    write_data_record,
)
from dove_cli.train.degrade import load_degradation_config
from dove_cli.train.forward import compute_dtype, training_loss
from dove_cli.train.losses import PixelLoss

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    steps: int  # the step the run is at
    losses: list[float]  # one per optimiser step run in this call (none: it was already at --max-steps)
    last_checkpoint: Path | None
    metrics_path: Path
    main: bool = True  # a multi-process run returns in every process; only the main one reports


# ---------------------------------------------------------------------------- model


def resolve_model_folder(spec: str) -> Path:
    """A local diffusers folder, or whatever `dove_cli.weights.resolve_model` makes of the spec.

    `tiny` (as for `dove upscale`) is a tiny random model of the real classes, saved once as a folder
    so that checkpoints, resume and export work as with real weights: a way to try the recipe.
    """
    if not spec:
        raise OptionError("--model is required (a diffusers folder, a hub id, or tiny)")
    if spec == "tiny":
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dove" / "tiny-model"
        if not (folder / "transformer" / "config.json").is_file():
            from dove_cli.engine import build_random, save_pretrained

            tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
            save_pretrained(build_random("tiny", seed=0), tmp)
            shutil.rmtree(folder, ignore_errors=True)
            tmp.replace(folder)  # whole or absent
        return folder
    if spec in ("bilinear", "full-random"):
        raise OptionError(f"--model {spec} has no weights to train; use a model folder, a hub id or tiny")
    path = Path(spec).expanduser()
    if path.is_dir():
        from dove_cli.weights import find_model_root

        try:
            return find_model_root(path).resolve()
        except TrainingRunGiven as exc:  # continuing a run is --resume; starting stage 2 from one, an export
            ckpt = (path / STATE_FILE).is_file()
            resume = f"--resume {path} -o {path.parent.parent}" if ckpt else f"--resume latest -o {path}"
            raise TrainingRunGiven(f"--model {exc}; or, to continue training that run, {resume}") from None
    try:
        from dove_cli.weights import resolve_model
    except ImportError:
        raise ModelError(f"--model {spec}: not a local folder") from None
    return Path(resolve_model(spec))


def deepspeed_requested() -> bool:
    """True inside `accelerate launch --use_deepspeed` (or a DeepSpeed accelerate config)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


CPU_PROCESSES = "on the CPU, start N processes with `accelerate launch --multi_gpu --num_processes N`"


def check_launch(cuda: bool) -> None:
    """Launches accelerate (1.16) cannot run as they ask, said before it starts.

    - DeepSpeed without CUDA: accelerate finds no device backend, so every launched process gets
      rank 0 of 1 (each would save as the main one and draw rank 0's batches), while DeepSpeed
      counts them all: refused, where DeepSpeed would stop on its batch-size assertion.
    - `accelerate launch --cpu --num_processes N` (no mpirun): its plain launcher starts one process
      and tells it nothing of N (it sets only MASTER_ADDR): warned, as the run is then 1 process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if deepspeed_requested() and not cuda and world > 1:
        raise OptionError(f"DeepSpeed on {world} processes needs CUDA GPUs (without them accelerate makes each "
                          f"process rank 0 of 1); {CPU_PROCESSES} (DDP)")  # fmt: skip
    launched_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true" and "MASTER_ADDR" in os.environ
    mpi = any(k in os.environ for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"))
    if launched_cpu and "WORLD_SIZE" not in os.environ and not mpi:
        log.warning("`accelerate launch --cpu` starts one process whatever --num_processes says: this run "
                    "is 1 process; %s", CPU_PROCESSES)  # fmt: skip


def load_training_model(folder: Path, device: torch.device, cfg: TrainConfig, mixed: str = "no") -> Any:
    """The DoveModel to train: frozen VAE, trainable transformer (float32, or float32 LoRA adapters).

    - The frozen VAE is stored in bf16 under bf16 mixed precision (as the release does), else float32;
      slicing and tiling follow `cfg.vae_slicing` / `cfg.vae_tiling` (on by default, as the release).
    - With LoRA under bf16/fp16 mixed precision the frozen transformer weights are stored in that
      half type (11 GB instead of 22 GB for the 5B transformer), which lets LoRA fit a 24 GB GPU.
    """
    from dove_cli.engine import DoveModel

    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed)
    dtype = half if (cfg.lora_rank > 0 and half is not None) else torch.float32
    model: Any = DoveModel.from_pretrained(folder, device=device, dtype=dtype, posterior=cfg.posterior)
    model.timestep = cfg.timestep
    vae = model.vae
    vae_dtype = torch.bfloat16 if mixed == "bf16" else torch.float32
    for p in vae.parameters():  # in place: ModelMixin.to(dtype) warns about fp32-pinned modules (it has none)
        p.data = p.data.to(vae_dtype)
    if cfg.vae_slicing:
        vae.enable_slicing()
    else:
        vae.disable_slicing()
    if cfg.vae_tiling:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    transformer = model.transformer
    transformer.train()
    if cfg.lora_rank > 0:
        from peft import LoraConfig

        transformer.requires_grad_(False)
        transformer.add_adapter(
            LoraConfig(
                r=cfg.lora_rank,
                lora_alpha=cfg.lora_alpha,
                init_lora_weights=True,
                target_modules=list(cfg.lora_targets),
            )
        )
        for p in transformer.parameters():
            if p.requires_grad:
                p.data = p.data.float()  # trainable adapters keep float32 master weights
    else:
        transformer.requires_grad_(True)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    return model


def _warn_stage2_init(folder: Path, cfg: TrainConfig) -> None:
    if cfg.stage != 2:
        return
    meta = folder / "dove_train.json"
    if meta.is_file():
        return
    if "dove" not in str(folder).lower() and "dove" not in cfg.model.lower():
        log.warning("stage 2 starts from %s, which does not look like a stage-1 or DOVE checkpoint", cfg.model)


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = dict(
        lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps, weight_decay=cfg.weight_decay
    )
    if cfg.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise OptionError("--optimizer adamw8bit needs bitsandbytes: pip install 'dove-cli[quant]'") from exc
        return bnb.optim.AdamW8bit(params, **kwargs)
    if cfg.optimizer != "adamw":
        raise OptionError(f"--optimizer {cfg.optimizer!r}: adamw or adamw8bit")
    return torch.optim.AdamW(params, **kwargs)


def warmup_factor(step: int, warmup: int) -> float:
    """The share of --lr that optimiser step `step` (1-based) applies: DeepSpeed's `WarmupLR` (linear,
    min 0) as the release's ZeRO-2 launch runs it. The engine steps it after each optimiser step and
    (DeepSpeed >= 0.15.3) sets lr 0 before the first, so steps 1 and 2 apply 0 and step k (k-2)/warmup;
    `WarmupLR` warms up over at least 2 steps. `warmup` 0: --lr from step 1 (no WarmupLR)."""
    if warmup == 0:
        return 1.0
    return min(1.0, max(0, step - 2) / max(2, warmup))


def constant_with_warmup(optimizer: torch.optim.Optimizer, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup, then constant (`warmup_factor`); stepped once per optimiser step."""
    # LambdaLR's argument counts the scheduler steps taken: the optimiser step about to run is that + 1
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_factor(s + 1, warmup))


class Prepared:
    """The accelerate-prepared transformer as DoveModel uses it: called, with the model's `.config`.

    DDP wrappers have no `.config`, and a DeepSpeed engine's `.config` is its DeepSpeed config."""

    def __init__(self, module: Any, config: Any) -> None:
        self.module, self.config = module, config

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def parameters(self) -> Any:
        return self.module.parameters()


# ---------------------------------------------------------------------------- run folder


def _model_signature(transformer: Any) -> dict[str, Any]:
    cfg = dict(transformer.config)
    return {k: cfg[k] for k in ("num_layers", "num_attention_heads", "attention_head_dim", "in_channels", "patch_size")}


def _holds(out: Path, ckpt: Path | None) -> bool:
    """Whether `ckpt` is one of the run folder's own checkpoints."""
    return ckpt is not None and ckpt.resolve().parent == (out / CKPT_DIR).resolve()


def _names(ckpts: list[Path]) -> str:
    return ", ".join(c.name for c in ckpts) if len(ckpts) <= 3 else f"{ckpts[0].name} ... {ckpts[-1].name}"


def _check_output(cfg: TrainConfig, ckpt: Path | None, step: int) -> list[Path]:
    """The checkpoints in the run folder that this start does not lead on from, refused unless --overwrite.

    A run to protect is one with a checkpoint. One folder holds one history: a new start, or a resume
    from another folder's checkpoint, finds the folder's checkpoints in its way; a resume from an
    earlier checkpoint of the folder finds the later ones (`--resume latest` would pick them up next).
    Read only, in every process, before anything loads: a refused start changes nothing.
    """
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    _check_writable(out, f"-o {out}")
    if cfg.metrics_file:
        _check_writable(cfg.metrics_path.parent, f"--metrics-file {cfg.metrics_file}")
    ckpts = list_checkpoints(out)
    own = _holds(out, ckpt)
    stale = [c for c in ckpts if checkpoint_step(c) > step] if own else ckpts
    if stale and not cfg.overwrite:
        if ckpt is None:
            raise OutputError(f"{out} already holds a run (up to {ckpts[-1].name}); use --resume latest to "
                              "continue it, or --overwrite to start over")  # fmt: skip
        if own:
            raise OutputError(
                f"--resume {ckpt}: {out} also holds later checkpoints ({_names(stale)}), which the run would "
                f"mix in; to branch from step {step} give a new run folder with -o DIR, or add --overwrite to "
                f"delete them and the metrics after step {step}"
            )
        raise OutputError(f"{out} holds another run (up to {ckpts[-1].name}); resume into a new run folder "
                          "(-o DIR), or add --overwrite to delete its checkpoints and metrics")  # fmt: skip
    return stale


def _check_writable(folder: Path, said: str) -> None:
    """A folder the run writes into must be there to write or be creatable: one line before the data
    scan and the model load, not an OSError at the first mkdir (a read-only mount, another's folder)."""
    folder = folder.absolute()
    base = next(p for p in (folder, *folder.parents) if p.exists())
    if not base.is_dir():
        raise OutputError(f"{said}: cannot create folder {folder} ({base} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{said}: folder {base} is not writable")


def _prepare_output(cfg: TrainConfig, main: bool, ckpt: Path | None, step: int, stale: list[Path]) -> Path:
    """The run folder, with what `_check_output` found in its way removed (--overwrite), or what a start
    that failed before its first checkpoint left (nothing to resume: a new start takes its place)."""
    out = Path(cfg.output_dir)
    if main:
        if stale:
            log.warning("%s: --overwrite: deleting %s", out, _names(stale))
        if _holds(out, ckpt):  # a rewind, or the latest (nothing stale)
            for old in stale:
                shutil.rmtree(old)
            for sample in (out / "val").glob("step-*"):  # validation samples past the resumed step
                if int(sample.name.split("-")[1]) > step:
                    shutil.rmtree(sample, ignore_errors=True)
        elif cfg.overwrite or (out / RUN_FILE).is_file():  # a new history here (the metrics file too)
            if not cfg.overwrite:
                log.info("%s: an earlier start left no checkpoint; starting anew in its place", out)
            shutil.rmtree(out / CKPT_DIR, ignore_errors=True)
            cfg.metrics_path.unlink(missing_ok=True)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # checked before (_check_writable): a disk full, a mount gone since
            raise OutputError(f"-o {out}: cannot create the run folder ({exc.strerror})") from None
    return out


# ---------------------------------------------------------------------------- Ctrl-C / SIGTERM

RESUME_HINT = "run the same command with --resume latest to continue"


class StepBoundary:
    """Ctrl-C, SIGTERM and SIGHUP while training: held until the optimiser step ends, then a checkpoint, then stop.

    A checkpoint taken mid-step would not resume to the uninterrupted run, so a signal that arrives
    while `holding` is kept in `pending` until the loop reaches the end of its step. There it is
    delivered to the handler it displaced (Python's Ctrl-C handler, or the CLI's SIGTERM handler, which
    remembers SIGTERM for exit 143), which raises KeyboardInterrupt. A second signal, or one outside the
    loop (model loading, saving after an interrupt), is delivered at once. Single-process runs only:
    on several processes the ranks would have to agree on the step, so `holding` stays off there.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.holding = False
        self.pending: int | None = None  # the held signal
        self.previous: dict[int, Any] = {}
        self.out: Path | None = None  # set once the run folder is this run's (its checkpoints are ours)
        self.done = 0  # optimiser steps finished (a resumed run starts at its checkpoint's)
        self.max_steps = 0
        self.multi = False

    def __enter__(self) -> StepBoundary:
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for signum in self.SIGNALS:
                handler = signal.getsignal(signum)
                if handler is not signal.SIG_IGN:  # `nohup`, `cmd &`: the caller asked not to be stopped
                    self.previous[signum] = handler
                    signal.signal(signum, self._receive)
        return self

    def __exit__(self, *exc: object) -> None:
        """Restore the handlers: train() also runs in-process (tests, notebooks)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def _receive(self, signum: int, frame: Any) -> None:
        if self.holding and self.pending is None:
            self.pending = signum
            return
        self._deliver(signum, frame)

    def _deliver(self, signum: int, frame: Any) -> None:
        handler = self.previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        # SIGTERM, SIGHUP under the Python API (default action: die) stop as Ctrl-C does, with their exit code
        raise KeyboardInterrupt if signum == signal.SIGINT else StopSignal(signum)

    def deliver_pending(self) -> None:
        """At a step boundary, after the checkpoint: stop (raises KeyboardInterrupt)."""
        signum, self.pending, self.holding = self.pending, None, False
        if signum is not None:
            self._deliver(signum, None)

    def interrupted(self) -> Interrupted | None:
        """The one-line error for a stop now, or None before the run folder was set up (nothing to say)."""
        if self.out is None:
            return None
        ckpts = list_checkpoints(self.out)
        last = ckpts[-1] if ckpts else None
        last_step = checkpoint_step(last) if last is not None else 0
        at = f"{self.out}: interrupted at step {self.done} of {self.max_steps}"
        if last is not None and last_step == self.done:
            return Interrupted(f"{at}; saved checkpoint {last.name}; {RESUME_HINT}")
        if self.multi:
            at += " (a multi-process run saves only on schedule)"
        if last is None:
            return Interrupted(f"{at}; nothing was saved" if self.done else
                               f"{self.out}: interrupted before the first step finished; nothing was saved")  # fmt: skip
        return Interrupted(f"{at}; the last checkpoint is {last.name}; {RESUME_HINT} from there")


# ---------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Run (or resume) one training stage; returns the losses and the last checkpoint.

    Ctrl-C or SIGTERM (single process): the step finishes, a checkpoint is saved, Interrupted is raised.
    The logging level of `dove_cli` is left as it was found (a launch's other processes log errors only).
    """
    if not cfg.data:
        cfg.check()  # --data is required (a recipe built from Python may still lack its data)
    resumed = resume_point(cfg)  # before the values: a recipe option given anew is named as such
    cfg.check()
    package_log = logging.getLogger("dove_cli")
    level = package_log.level
    with StepBoundary() as boundary:
        try:
            return _train(cfg, progress, boundary, resumed)
        except KeyboardInterrupt:
            error = boundary.interrupted()
            if error is None:
                raise
            raise error from None
        finally:
            package_log.setLevel(level)  # (train() also runs in-process: tests, notebooks)


@dataclass
class Run:
    """A training run, set up (`_setup`): what its steps, validations and checkpoints use."""

    cfg: TrainConfig
    accelerator: Any
    model: Any  # the DoveModel; its transformer is `Prepared(prepared, ...)` while it trains
    transformer: Any  # the transformer as loaded (its config; the model signature)
    prepared: Any  # the transformer as accelerate wrapped it (DDP, a DeepSpeed engine, or itself)
    params: list[torch.nn.Parameter]  # the trainable ones
    optimizer: Any
    scheduler: torch.optim.lr_scheduler.LambdaLR
    dtype: torch.dtype  # the latents' compute dtype
    pixel_loss: PixelLoss | None  # stage 2's pixel terms
    batches: Iterator[dict[str, Any]]
    val_set: TrainDataset | None
    launch: dict[str, Any]  # how it was launched (run.json, checkpoints)
    folder: Path  # the model folder it started from
    out: Path  # the run folder
    start: int  # the step it starts at (a resumed run: its checkpoint's)
    t_start: float  # perf_counter as its first step begins (the progress callback's rate)

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)


def _train(
    cfg: TrainConfig, progress: Progress | None, boundary: StepBoundary, resumed: ResumePoint | None
) -> TrainResult:
    """The recipe: what can be refused first, the accelerator, the set-up, then one optimiser step at a
    time, each logged, validated and saved on schedule; a held Ctrl-C/SIGTERM stops at a step's end."""
    start = boundary.done = resumed.step if resumed is not None else 0
    stale = _check_start(cfg, resumed, start)
    accelerator = _accelerator(cfg)
    if not accelerator.is_main_process:
        logging.getLogger("dove_cli").setLevel(logging.ERROR)  # for this run: train() restores it
    if resumed is not None and start >= cfg.max_steps:
        log.info("%s: nothing to do: the run is at step %d >= --max-steps %d (checkpoint %s); "
                 "raise --max-steps to train on", Path(cfg.output_dir), start, cfg.max_steps, resumed.ckpt)  # fmt: skip
        return TrainResult(start, [], resumed.ckpt, cfg.metrics_path, accelerator.is_main_process)
    run = _setup(cfg, accelerator, boundary, resumed, stale)
    losses: list[float] = []
    last_ckpt: Path | None = None
    boundary.holding = not boundary.multi
    for step in range(start + 1, cfg.max_steps + 1):  # optimiser steps, 1-based as metrics and checkpoints count
        row = _step(run, step)
        boundary.done = step
        losses.append(row["loss"])
        _report(run, row, progress)
        if run.val_set is not None and (step % cfg.val_every == 0 or step == cfg.max_steps):
            _validate(run, step)
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            last_ckpt = _save(run, step)
        if boundary.pending is not None and step < cfg.max_steps:  # the last step's own save ends the run
            # a second interrupt while saving is delivered at once (StepBoundary._receive)
            if last_ckpt is None or checkpoint_step(last_ckpt) != step:  # not just saved on schedule
                _save(run, step)
            boundary.deliver_pending()
    boundary.holding = False
    if cfg.tensorboard:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return TrainResult(cfg.max_steps, losses, last_ckpt, cfg.metrics_path, run.main)


def _check_start(cfg: TrainConfig, resumed: ResumePoint | None, start: int) -> list[Path]:
    """What can be refused before anything loads, in every process: --tensorboard's package, a resumed
    checkpoint's pickles (`check_pickles`), the output folder (returns the checkpoints in the way,
    `_check_output`), the degradation config, the launch."""
    if cfg.tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise OptionError("--tensorboard needs the tensorboard package: pip install 'dove-cli[train]'")
    ckpt = resumed.ckpt if resumed is not None else None
    if ckpt is not None and not cfg.allow_pickle:  # accelerate's load_state unpickles custom_checkpoint_N.pkl in full
        check_pickles(pickle_files(ckpt), RESUME_FLAG)
    stale = _check_output(cfg, ckpt, start) if start < cfg.max_steps else []
    load_degradation_config(cfg.degradation)  # a mistyped name or yaml: one line before the data scan
    check_launch(torch.cuda.is_available())
    return stale


def _mixed_precision(cfg: TrainConfig) -> str:
    """--mixed-precision, with auto made bf16 on CUDA, no (fp32) on the CPU."""
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() else "no"


def _accelerator(cfg: TrainConfig) -> Any:
    """The Accelerator for this run, with DeepSpeed's "auto" batch sizes set from the options."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        # without CUDA, launched processes form a gloo (MULTI_CPU) group; DeepSpeed needs cpu=False
        # (its CPU accelerator then talks gloo too)
        cpu=not torch.cuda.is_available() and not deepspeed_requested(),
        mixed_precision=_mixed_precision(cfg),
        gradient_accumulation_steps=cfg.grad_accum,
        log_with="tensorboard" if cfg.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],  # every weight is used
    )
    ds_plugin = accelerator.state.deepspeed_plugin
    if ds_plugin is not None:  # no prepared DataLoader, so DeepSpeed's "auto" sizes are set here
        ds_plugin.deepspeed_config.update(
            train_micro_batch_size_per_gpu=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum,
            train_batch_size=cfg.batch_size * cfg.grad_accum * accelerator.num_processes,
            gradient_clipping=cfg.max_grad_norm,
        )
    return accelerator


def _setup(
    cfg: TrainConfig, accelerator: Any, boundary: StepBoundary, resumed: ResumePoint | None, stale: list[Path]
) -> Run:
    """Everything a step needs, in the order that leaves nothing behind on a refusal: the model folder,
    DISTS and the data are found before the run folder is made; the model, optimiser and resume point
    are loaded after; run.json is written once all of them are known to be good."""
    from accelerate.utils import set_seed

    out, main, start = Path(cfg.output_dir), accelerator.is_main_process, resumed.step if resumed else 0
    launch = {
        "processes": accelerator.num_processes, "batch_per_process": cfg.batch_size, "grad_accum": cfg.grad_accum,
        "global_batch": cfg.batch_size * cfg.grad_accum * accelerator.num_processes,
        "precision": {"no": "fp32"}.get(accelerator.mixed_precision, accelerator.mixed_precision),
        "distributed": accelerator.distributed_type.value,
    }  # fmt: skip
    folder = resolve_model_folder(cfg.model)  # before the output folder: a bad --model leaves nothing behind
    # stage 2: the published DISTS (given files, hub cache or download), or a one-line refusal; also before the folder
    dists = training_dists(cfg.dists_weights) if cfg.stage == 2 and cfg.dists_weight > 0 else None
    # the data too: a start that fails on its clips leaves no folder behind to block the next one
    sources, dataset, val_set = _datasets(cfg, accelerator.num_processes)
    _prepare_output(cfg, main, resumed.ckpt if resumed is not None else None, start, stale)
    boundary.out, boundary.max_steps, boundary.multi = out, cfg.max_steps, accelerator.num_processes > 1
    accelerator.wait_for_everyone()
    set_seed(cfg.seed)

    _warn_stage2_init(folder, cfg)
    model = load_training_model(folder, accelerator.device, cfg, _mixed_precision(cfg))
    transformer = model.transformer
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    scheduler = constant_with_warmup(optimizer, cfg.warmup_steps)
    prepared, optimizer = accelerator.prepare(transformer, optimizer)
    model.transformer = Prepared(prepared, transformer.config)
    accelerator.register_for_checkpointing(scheduler)
    pixel_loss = None
    if cfg.stage == 2:
        pixel_loss = PixelLoss(dists, cfg.dists_weight, cfg.frame_diff_weight).to(accelerator.device)
    if resumed is not None:
        _load_resume_point(accelerator, resumed, transformer, cfg, launch)
    log.info("%s: stage %d, steps %d-%d, %d process%s x batch %d x grad-accum %d = global batch %d, %s",
             out, cfg.stage, start + 1, cfg.max_steps, launch["processes"], "" if launch["processes"] == 1 else "es",
             cfg.batch_size, cfg.grad_accum, launch["global_batch"], launch["precision"])  # fmt: skip
    _warn_short_warmup(cfg, scheduler)

    if main:  # written once the options, the data, the model and the resume point are known to be good
        (out / RUN_FILE).write_text(json_text({**cfg.to_dict(), "launch": launch}, indent=1), "utf-8")
        write_data_record(sources, out)  # data.json: each file used or skipped, and why
    sampler = GlobalBatchSampler(
        len(sources.videos), cfg.batch_size, seed=cfg.seed, start_step=start * cfg.grad_accum,
        end_step=cfg.max_steps * cfg.grad_accum, num_images=len(sources.images), image_ratio=cfg.image_ratio,
        world_size=accelerator.num_processes, rank=accelerator.process_index,
    )  # fmt: skip
    loader = make_loader(dataset, sampler, num_workers=cfg.num_workers, pin_memory=torch.cuda.is_available())
    if cfg.tensorboard:
        accelerator.init_trackers("dove-train")
    if main:
        cfg.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            _truncate_metrics(cfg.metrics_path, start)
    return Run(
        cfg, accelerator, model, transformer, prepared, params, optimizer, scheduler,
        compute_dtype(prepared),  # after prepare: DeepSpeed has cast the module to bf16 by now
        pixel_loss, iter_batches(loader), val_set, launch, folder, out, start, time.perf_counter(),
    )  # fmt: skip


def _warn_short_warmup(cfg: TrainConfig, scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """A run whose last step comes in the first half of the lr warmup trains almost nothing: said at
    its start (a short try, `--max-steps 3` under the default 100-step warmup, would otherwise say nothing)."""
    lr = scheduler.base_lrs[0]
    last = lr * scheduler.lr_lambdas[0](cfg.max_steps - 1)  # the rate the scheduler gives the last step
    if last >= lr / 2:
        return
    change = "do not change" if last == 0 else "barely change"
    log.warning("--max-steps %d ends inside the %d-step lr warmup: the weights %s (lr reaches %g of %g)",
                cfg.max_steps, cfg.warmup_steps, change, last, lr)  # fmt: skip


def _datasets(cfg: TrainConfig, processes: int) -> tuple[Sources, TrainDataset, TrainDataset | None]:
    """The training clips and images (said in one line), their dataset, and the validation set."""
    images = cfg.images if cfg.stage == 2 else None
    if cfg.stage == 2 and images is None and cfg.image_ratio > 0:
        log.warning("stage 2 without --images: training on videos only")
    sources = scan_sources(cfg.data, cfg.resolution, images=images, lq=cfg.lq, frame_stride=cfg.frame_stride)
    drawn = cfg.batch_size * processes  # items a micro-step draws: fewer repeat in it (a wrong --data?)
    few = [f"{n} {what}{'s' * (n != 1)}" for n, what in ((len(sources.videos), "clip"), (len(sources.images), "image"))
           if 0 < n < drawn]  # fmt: skip
    log.info("training on %s%s", sources.summary(),
             f"; a batch takes {drawn}, more than the {' and '.join(few)}: they repeat in each batch" if few else "")  # fmt: skip
    data_cfg = DataConfig(
        crop=cfg.resolution, seed=cfg.seed, frame_stride=cfg.frame_stride, degradation=cfg.degradation
    )
    dataset = TrainDataset(sources, data_cfg)  # reads and checks the degradation yaml
    val_set = None
    if cfg.val_data:
        val_res = cfg.resolution if cfg.stage == 1 else (max(5, cfg.resolution[0]) // 4 * 4 + 1, *cfg.resolution[1:])
        val_set = TrainDataset(
            scan_sources(cfg.val_data, val_res, frame_stride=cfg.frame_stride),
            DataConfig(crop=val_res, seed=cfg.seed, frame_stride=cfg.frame_stride, degradation="video"),
        )
    return sources, dataset, val_set


def _load_resume_point(
    accelerator: Any, resumed: ResumePoint, transformer: Any, cfg: TrainConfig, launch: dict[str, Any]
) -> None:
    """The checkpoint's weights, optimiser and scheduler state, once its model is known to be this one."""
    ckpt, state = resumed.ckpt, resumed.state
    if state.get("model_signature") != _model_signature(transformer) or state.get("lora_rank") != cfg.lora_rank:
        raise OptionError(f"--resume {ckpt}: saved for another model size or LoRA rank")
    accelerator.load_state(str(ckpt))
    log.info("resumed from %s at step %d", ckpt, resumed.step)
    was = state.get("launch", {}).get("global_batch")
    if was is not None and was != launch["global_batch"]:
        log.warning("%s was trained with a global batch of %d (%d processes); this resume trains with %d "
                    "(%d): the run mixes two batch sizes", ckpt, was, state["launch"]["processes"],
                    launch["global_batch"], launch["processes"])  # fmt: skip


def _step(run: Run, step: int) -> dict[str, Any]:
    """Optimiser step `step` (1-based): `grad_accum` micro-batches, then the row metrics.jsonl logs
    (the mean of every process's terms, the lr the step applied, the clipped-before gradient norm)."""
    cfg, accelerator = run.cfg, run.accelerator
    t0 = time.perf_counter()
    sums: dict[str, Any] = {}  # 0-dim tensors and floats: one host sync per step, at the end
    kind, skipped = "video", 0
    grad_norm: Any = float("nan")
    for _ in range(cfg.grad_accum):
        batch = next(run.batches)
        kind, skipped = batch["kind"], skipped + batch["skipped"]
        with accelerator.accumulate(run.prepared):
            with accelerator.autocast():
                loss, terms = training_loss(
                    run.model,
                    batch,
                    stage=cfg.stage,
                    seed=cfg.seed,
                    dtype=run.dtype,
                    pixel_loss=run.pixel_loss,
                    latent_slots=cfg.latent_loss,
                )
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                norm = accelerator.clip_grad_norm_(run.params, cfg.max_grad_norm)
                grad_norm = norm if norm is not None else float("nan")
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
        for k, v in {"loss": loss.detach(), **terms}.items():
            sums[k] = sums.get(k, 0.0) + v / cfg.grad_accum
    lr = run.scheduler.get_last_lr()[0]  # the rate this step applied; step() sets the next one
    run.scheduler.step()
    device = accelerator.device
    values = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in sums.values()])
    norm_t = torch.as_tensor(grad_norm, dtype=torch.float32, device=device).reshape(1)
    *means, norm_value = torch.cat([accelerator.reduce(values, "mean"), norm_t]).tolist()
    row: dict[str, Any] = {"step": step, **dict(zip(sums, means, strict=True))}
    row.update(lr=lr, grad_norm=norm_value, kind=kind, skipped=skipped, sec_per_step=time.perf_counter() - t0)
    return row


def _report(run: Run, row: dict[str, Any], progress: Progress | None) -> None:
    """A step's row to metrics.jsonl (main process), TensorBoard and the progress callback."""
    cfg, step = run.cfg, row["step"]
    if run.main:
        with cfg.metrics_path.open("a") as fh:
            fh.write(json_text(row) + "\n")
    if cfg.tensorboard:
        run.accelerator.log({k: v for k, v in row.items() if isinstance(v, float)}, step=step)
    if progress is not None and run.main:
        rate = (step - run.start) / max(1e-9, time.perf_counter() - run.t_start)
        eta = (cfg.max_steps - step) / max(rate, 1e-9)
        progress({**row, "max_steps": cfg.max_steps, "it_s": rate, "eta_s": eta})


def _validate(run: Run, step: int) -> None:
    """Scores and sample frames on the held-out set (main process, unwrapped: no DDP collectives on one
    rank), logged to metrics.jsonl; the other processes wait."""
    if run.main and run.val_set is not None:
        from dove_cli.train.validate import validation_scores

        model = run.model
        model.transformer = run.accelerator.unwrap_model(run.prepared)
        model.transformer.eval()
        scores = validation_scores(
            model, run.val_set, run.cfg.val_clips, run.out / "val" / f"step-{step:07d}", dtype=run.dtype
        )
        model.transformer.train()
        model.transformer = Prepared(run.prepared, run.transformer.config)
        with run.cfg.metrics_path.open("a") as fh:
            fh.write(json_text({"step": step, **scores}) + "\n")
        log.info("validation at step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    run.accelerator.wait_for_everyone()


def _save(run: Run, step: int) -> Path:
    """checkpoints/step-N, with the state a resume and an export read (train_state.json)."""
    cfg = run.cfg
    state = {
        "step": step, "stage": cfg.stage, "model": str(run.folder), "lora_rank": cfg.lora_rank,
        "lora_alpha": cfg.lora_alpha, "lora_targets": list(cfg.lora_targets),
        "model_signature": _model_signature(run.transformer), "config": cfg.to_dict(), "launch": run.launch,
    }  # fmt: skip
    return save_checkpoint(run.accelerator, run.out, step, state, cfg.keep_checkpoints)


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop logged rows past the checkpoint, so the file reads as one continuous run."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    path.write_text("".join(k + "\n" for k in keep))
