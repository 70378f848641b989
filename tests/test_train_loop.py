"""`dove train` end to end on CPU with the tiny random model and the shared demo clips.

Loss falls (measured on a fixed held-out batch, before vs after), 2 + 2 steps == 4 steps,
export -> load -> upscale, LoRA merge, config precedence, refusals on bad input, and Ctrl-C / SIGTERM
(the step finishes, a checkpoint is saved, the resumed run is bitwise the uninterrupted one).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import DEMO, demo_clip
from dove_cli.errors import InputError, Interrupted, ModelError, OptionError, OutputError
from dove_cli.train.checkpoints import list_checkpoints, resume_point
from dove_cli.train.config import TrainConfig, build_config, saved_config
from dove_cli.train.data import DataConfig, SampleKey, TrainDataset, collate, scan_sources
from dove_cli.train.export import export_checkpoint
from dove_cli.train.forward import training_loss
from dove_cli.train.loop import train
from dove_cli.train.losses import DISTS, PixelLoss
from media import ffmpeg

FAST = dict(
    warmup_steps=0, batch_size=2, num_workers=0, posterior="mode", seed=0, lr=3e-3, gradient_checkpointing=True
)  # posterior "mode": the random VAE's posterior noise would otherwise set a high loss floor


_DISTS_FILES: list[str] = []


def tiny_dists_files() -> tuple[str, ...]:
    """Narrow DISTS weight files in the published key layouts (VGG16 `features.N.*`, alpha/beta):
    stage 2 refuses to start without DISTS weights."""
    if not _DISTS_FILES:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="dove-dists-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        d = DISTS(seed=1, widths=(4, 8, 8, 16, 16), warn=False)
        torch.save({f"features.{k}": v for k, v in d.features.state_dict().items()}, folder / "vgg16.pth")
        torch.save({"alpha": d.alpha.data, "beta": d.beta.data}, folder / "weights.pt")
        _DISTS_FILES.extend([str(folder / "vgg16.pth"), str(folder / "weights.pt")])
    return tuple(_DISTS_FILES)


def _cfg(stage: int, model_dir: Path, out: Path, **kw) -> TrainConfig:
    demo_clip("001.mp4")
    base = dict(FAST, data=str(DEMO), model=str(model_dir), output_dir=str(out))
    base["resolution"] = "5x32x32" if stage == 1 else "2x32x32"
    if stage == 2:
        base["dists_weights"] = tiny_dists_files()
    base.update(kw)
    return TrainConfig.for_stage(stage, **base)


def _heldout_loss(model_dir: Path, cfg: TrainConfig) -> float:
    """Mean loss over 3 fixed batches the run never trains on (step numbers far past the run)."""
    from dove_cli.engine import DoveModel

    model = DoveModel.from_pretrained(model_dir, posterior="mode")
    src = scan_sources(cfg.data, cfg.resolution)
    ds = TrainDataset(src, DataConfig(crop=cfg.resolution, seed=cfg.seed, degradation=cfg.degradation))
    pixel = PixelLoss(DISTS(seed=0)) if cfg.stage == 2 else None
    losses = []
    with torch.no_grad():
        for step in (10**6, 10**6 + 1, 10**6 + 2):
            batch = collate([ds[SampleKey("video", i, step, 2 * step + i)] for i in range(3)])
            loss = training_loss(model, batch, stage=cfg.stage, seed=cfg.seed, dtype=torch.float32, pixel_loss=pixel)
            losses.append(float(loss[0]))
    return sum(losses) / len(losses)


@pytest.fixture(scope="module")
def stage1_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("s1")
    cfg = _cfg(1, tiny_model_dir, out, max_steps=12, checkpoint_every=4, keep_checkpoints=2)
    result = train(cfg)
    return cfg, result


def test_stage1_loss_falls(stage1_run, tiny_model_dir, tmp_path):
    cfg, result = stage1_run
    assert len(result.losses) == 12
    before = _heldout_loss(tiny_model_dir, cfg)
    after = _heldout_loss(export_checkpoint(result.last_checkpoint, tmp_path / "m"), cfg)
    print(f"stage 1 held-out latent MSE: {before:.4f} -> {after:.4f}")
    assert after < before / 4


def test_checkpoints_metrics_and_keep_last(stage1_run):
    cfg, result = stage1_run
    ckpts = list_checkpoints(Path(cfg.output_dir))
    assert [p.name for p in ckpts] == ["step-0000008", "step-0000012"]
    assert not any(p.name.startswith(".tmp") for p in (Path(cfg.output_dir) / "checkpoints").iterdir())
    rows = [json.loads(line) for line in cfg.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert {"loss", "latent_mse", "lr", "grad_norm"} <= set(rows[0])
    assert rows[0]["lr"] == pytest.approx(3e-3)


def test_resume_equals_uninterrupted(stage1_run, tiny_model_dir, tmp_path):
    """4 steps from the step-8 checkpoint == steps 9-12 of the uninterrupted run (2+2 == 4 in kind)."""
    cfg, result = stage1_run
    out = tmp_path / "resumed"
    out.mkdir()
    ckpt8 = Path(cfg.output_dir) / "checkpoints" / "step-0000008"
    resumed = train(cfg.replace(output_dir=str(out), resume=str(ckpt8)))
    assert len(resumed.losses) == 4
    full = [json.loads(x)["loss"] for x in cfg.metrics_path.read_text().splitlines()][8:]
    assert resumed.losses == pytest.approx(full, rel=1e-6, abs=1e-7)
    a = load_file(str(result.last_checkpoint / "model.safetensors"))
    b = load_file(str(resumed.last_checkpoint / "model.safetensors"))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-6


def test_short_run_then_resume_latest_is_the_same_run(tiny_model_dir, tmp_path):
    one = train(_cfg(1, tiny_model_dir, tmp_path / "a", max_steps=4, checkpoint_every=2, resolution="1x32x32"))
    part = _cfg(1, tiny_model_dir, tmp_path / "b", max_steps=2, checkpoint_every=2, resolution="1x32x32")
    train(part)
    with pytest.raises(OutputError, match="already holds a run .*--resume latest to continue it"):
        train(part.replace(max_steps=4))
    two = train(part.replace(max_steps=4, resume="latest"))
    a = load_file(str(one.last_checkpoint / "model.safetensors"))
    b = load_file(str(two.last_checkpoint / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3, 4]
    with pytest.raises(OptionError, match="stage-1 checkpoint"):
        train(_cfg(2, tiny_model_dir, tmp_path / "b", max_steps=6, resume="latest"))


def test_resume_from_an_earlier_checkpoint_branches_or_rewinds_never_mixes(tiny_model_dir, tmp_path, caplog):
    """A run folder holds one history: resuming its step 2 while steps 3 and 4 exist is refused (`--resume
    latest` would later build on them); -o DIR branches; --overwrite rewinds (later checkpoints and
    metrics rows deleted); a resume already at --max-steps says so, names the checkpoint, changes nothing."""
    out = tmp_path / "run"
    cfg = _cfg(1, tiny_model_dir, out, max_steps=4, checkpoint_every=1, keep_checkpoints=9, resolution="1x32x32")
    first = train(cfg)
    step = {c.name[-1]: c for c in list_checkpoints(out)}
    with pytest.raises(OutputError) as refused:
        train(cfg.replace(resume=str(step["2"])))
    said = str(refused.value)
    assert "later checkpoints (step-0000003, step-0000004)" in said and "-o DIR" in said and "--overwrite" in said
    assert [c.name[-1] for c in list_checkpoints(out)] == ["1", "2", "3", "4"]
    branch = train(cfg.replace(resume=str(step["2"]), output_dir=str(tmp_path / "branch"), max_steps=3))
    assert [c.name for c in list_checkpoints(tmp_path / "branch")] == ["step-0000003"] and len(branch.losses) == 1
    with pytest.raises(OutputError, match="branch holds another run .*-o DIR.*--overwrite"):
        train(cfg.replace(resume=str(step["2"]), output_dir=str(tmp_path / "branch")))
    old3 = load_file(str(step["3"] / "model.safetensors"))
    rewound = train(cfg.replace(resume=str(step["2"]), overwrite=True, max_steps=3))
    assert [c.name[-1] for c in list_checkpoints(out)] == ["1", "2", "3"]
    rows = [json.loads(x)["step"] for x in cfg.metrics_path.read_text().splitlines()]
    assert rows == [1, 2, 3] and rewound.losses == pytest.approx(first.losses[2:3], rel=1e-6)
    new3 = load_file(str(step["3"] / "model.safetensors"))
    assert all(torch.equal(old3[k], new3[k]) for k in old3)  # resuming is exact: the same step 3 again
    run_json = (out / "run.json").read_text()
    assert json.loads((out / "data.json").read_text())["used"] > 0  # written beside run.json
    with caplog.at_level(logging.INFO, logger="dove_cli"):
        done = train(cfg.replace(resume="latest", max_steps=2))
    assert (done.steps, done.losses, done.last_checkpoint) == (3, [], step["3"])
    assert f"nothing to do: the run is at step 3 >= --max-steps 2 (checkpoint {step['3']})" in caplog.text
    assert (out / "run.json").read_text() == run_json and cfg.metrics_path.read_text().count("\n") == 3


def test_resume_continues_in_the_checkpoints_own_run_folder(tmp_path):
    """`--resume CKPT` without -o: the run goes on in CKPT's run folder, not a new ./dove-train."""
    _saved_run(tmp_path / "runs" / "a")
    ckpt = tmp_path / "runs" / "a" / "checkpoints" / "step-0000002"
    assert build_config(1, None, resume=str(ckpt)).output_dir == str(tmp_path / "runs" / "a")
    assert build_config(1, None, resume=str(ckpt), output_dir=str(tmp_path / "b")).output_dir == str(tmp_path / "b")
    loose = tmp_path / "loose"
    shutil.copytree(ckpt, loose)
    with pytest.raises(OptionError, match="not inside a run folder's checkpoints/; give -o DIR"):
        build_config(1, None, resume=str(loose))


def test_launches_accelerate_cannot_run_are_said(tmp_path, monkeypatch, caplog):
    """DeepSpeed on CPU processes: accelerate gives each rank 0 of 1 (DeepSpeed then fails its batch
    assertion): one line, before anything starts. `accelerate launch --cpu --num_processes 2` runs
    one process: warned."""
    from dove_cli.train.loop import check_launch

    if torch.cuda.is_available():
        pytest.skip("the refusal is for CPU-only machines")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = TrainConfig.for_stage(1, data=str(DEMO), model="tiny", output_dir=str(tmp_path / "run"), max_steps=1)
    with pytest.raises(OptionError, match=r"DeepSpeed on 2 processes needs CUDA GPUs.*--multi_gpu --num_processes"):
        train(cfg)
    assert not (tmp_path / "run").exists()
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")  # what `accelerate launch --cpu --num_processes 2` sets
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        check_launch(cuda=False)
    assert "--cpu` starts one process" in caplog.text and "--multi_gpu --num_processes N" in caplog.text


def _saved_run(out: Path, **options) -> TrainConfig:
    """A run folder with one checkpoint's state file as train() writes it (no weights: a refused
    resume reads only the options)."""
    data = out.parent / "clips"
    data.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig.for_stage(options.pop("stage", 1), data=str(data), model="tiny", output_dir=str(out), **options)
    ckpt = out / "checkpoints" / "step-0000002"
    ckpt.mkdir(parents=True)
    (ckpt / "train_state.json").write_text(json.dumps({"step": 2, "stage": cfg.stage, "config": cfg.to_dict()}))
    return cfg


def test_a_quiet_rank_leaves_the_callers_logging_as_it_was(tmp_path, monkeypatch, caplog):
    """A launch's other processes log errors only, for the run: train() called from Python gives the
    `dove_cli` logger's level back (here the fast "nothing to do" return, on a rank that is not main)."""
    from accelerate import Accelerator

    monkeypatch.setattr(Accelerator, "is_main_process", property(lambda self: False))
    cfg = _saved_run(tmp_path / "run", max_steps=2)
    package = logging.getLogger("dove_cli")
    before = package.level
    package.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            result = train(cfg.replace(resume="latest"))
        assert (result.main, result.steps, result.losses) == (False, 2, [])
        assert "nothing to do" not in caplog.text  # quiet while it ran
        assert package.level == logging.DEBUG
    finally:
        package.setLevel(before)


def test_resume_takes_the_saved_recipe_and_refuses_another(tmp_path):
    out = tmp_path / "run"
    saved = _saved_run(out, lr=3e-3, seed=0, batch_size=1, resolution="9x64x64", max_steps=2)
    cfg = build_config(1, None, output_dir=str(out), resume="latest", max_steps=5, checkpoint_every=5, lr=3e-3)
    assert (cfg.lr, cfg.seed, cfg.batch_size, cfg.resolution, cfg.data) == (3e-3, 0, 1, (9, 64, 64), saved.data)
    assert (cfg.max_steps, cfg.checkpoint_every, cfg.resume, cfg.output_dir) == (5, 5, "latest", str(out))
    with pytest.raises(OptionError) as refused:
        resume_point(
            build_config(1, None, output_dir=str(out), resume="latest", lr=1e-3, batch_size=2, resolution="9x32x32")
        )
    message = str(refused.value)
    for said in ("--lr 0.001 (saved 0.003)", "--batch-size 2 (saved 1)", "--resolution 9x32x32 (saved 9x64x64)"):
        assert said in message
    assert "drop them" in message and "--overwrite" in message and "\n" not in message
    toml = tmp_path / "c.toml"
    toml.write_text("seed = 7\nmax-steps = 5\n")  # a config file's values count as given, as flags do
    with pytest.raises(OptionError, match=r"--seed 7 \(saved 0\); drop it"):
        resume_point(build_config(1, toml, output_dir=str(out), resume="latest"))
    # the stage given anew is what is named (not the saved 2-frame crop a stage-1 run cannot take)
    _saved_run(tmp_path / "s2", stage=2, resolution="2x32x32")
    with pytest.raises(OptionError, match=r"step-0000002: a stage-2 checkpoint, this is stage 1$"):
        resume_point(build_config(1, None, output_dir=str(tmp_path / "s2"), resume="latest", stage=1, vae_tiling=False))
    # train() itself (the Python API) refuses too, before it loads or writes anything
    with pytest.raises(OptionError, match=r"--lr 0.001 \(saved 0.003\)"):
        train(saved.replace(lr=1e-3, resume="latest"))
    assert [p.name for p in out.iterdir()] == ["checkpoints"]


def test_a_run_folder_resumes_from_any_working_folder(tmp_path, monkeypatch, caplog):
    """Paths are saved absolute; a path given anew counts as unchanged where it names the same folder
    (relative to another working folder, or through a link). run.json of older versions kept them as
    typed: a path that ends with the saved one matches it, and a missing one is said as the run's."""
    (tmp_path / "a" / "HQ").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path / "a")
    _saved_run(out)
    state = out / "checkpoints" / "step-0000002" / "train_state.json"
    saved = json.loads(state.read_text())
    saved["config"]["data"] = "HQ"  # as an older version saved it
    state.write_text(json.dumps(saved))
    hq = str(tmp_path / "a" / "HQ")
    # a fresh start saves absolute paths (run.json and checkpoints are written from to_dict)
    fresh = TrainConfig.for_stage(1, data="HQ", model="tiny", output_dir="../run2", metrics_file="m.jsonl")
    written = fresh.to_dict()
    assert (written["data"], written["output_dir"]) == (hq, str(tmp_path / "run2"))
    assert (written["metrics_file"], written["model"]) == (str(tmp_path / "a" / "m.jsonl"), "tiny")
    resume = dict(output_dir=str(out), resume="latest")
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(
        OptionError, match=rf"^--data HQ: the resumed run's, no such file or folder in {tmp_path / 'b'} "
    ):
        resume_point(build_config(1, None, **resume))
    assert build_config(1, None, **resume, data=hq).data == hq  # the old relative path: it ends with it
    assert build_config(1, None, **resume, data=str(tmp_path / "link" / "HQ")).data.endswith("HQ")
    with pytest.raises(OptionError, match=r"--data ../b \(saved HQ\)"):
        resume_point(build_config(1, None, **resume, data="../b"))
    # a run saved as this version saves it: absolute, so any working folder finds it, and the same
    # folder given relative to another, or through a link, is no change of recipe
    saved["config"]["data"] = hq
    state.write_text(json.dumps(saved))
    assert build_config(1, None, **resume).data == hq
    assert build_config(1, None, **resume, data="../link/HQ/").data == hq  # the saved path stays, not the link's
    with pytest.raises(OptionError, match=r"--data ../a \(saved "):
        resume_point(build_config(1, None, **resume, data="../a"))
    # the data moved: the line that says so is followed, not refused as a change of recipe
    (tmp_path / "a" / "HQ").rename(tmp_path / "a" / "HQ2")
    with pytest.raises(OptionError, match=rf"^--data {hq}: the resumed run's, no such file or folder; give --data "):
        resume_point(build_config(1, None, **resume))
    moved = build_config(1, None, **resume, data="../a/HQ2")
    assert moved.data == "../a/HQ2" and resume_point(moved) is not None  # (saved absolute by to_dict)
    said = f"--data ../a/HQ2: the run's saved {hq} is gone; resuming with this as its new place"
    assert caplog.text.count(said) == 1  # once: build_config merges, resume_point checks
    with pytest.raises(OptionError, match=r"--data ../b/none \(saved "):  # somewhere that is not there either
        resume_point(build_config(1, None, **resume, data="../b/none"))


def test_options_of_the_wrong_stage_and_a_bad_output_folder_stop_before_the_data_scan(tmp_path, monkeypatch):
    """--images with stage 1 (the default: --stage 2 forgotten) is refused, not ignored and recorded;
    a run folder that cannot be written and a mistyped --degradation are one line each, said before
    the data is scanned (here --data does not exist: a scan would say that instead)."""
    with pytest.raises(OptionError, match=r"^--images IMG: images are trained on in stage 2 only .*add --stage 2"):
        TrainConfig.for_stage(1, data="HQ", images="IMG")
    assert TrainConfig.for_stage(2, data="HQ", images="IMG").images == "IMG"
    old = {"stage": 1, "data": "HQ", "images": "IMG"}  # older versions recorded it, and ignored it: resumable
    assert saved_config({"config": old}).images is None
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root: as a read-only mount answers
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and not Path(p) == ro)
    cfg = TrainConfig.for_stage(1, data=str(tmp_path / "nothere"), model="tiny", resolution="1x32x32")
    with pytest.raises(OutputError, match=rf"^-o {ro / 'run'}: folder {ro} is not writable$"):
        train(cfg.replace(output_dir=str(ro / "run")))
    with pytest.raises(OutputError, match=rf"^--metrics-file {ro / 'm.jsonl'}: folder {ro} is not writable$"):
        train(cfg.replace(output_dir=str(tmp_path / "run"), metrics_file=str(ro / "m.jsonl")))
    with pytest.raises(OptionError, match=r"^degradation config vido not found"):
        train(cfg.replace(output_dir=str(tmp_path / "run"), degradation="vido"))
    with pytest.raises(InputError, match="nothere: no such folder"):
        train(cfg.replace(output_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


def test_the_start_says_what_it_trains_on_and_that_batches_repeat_a_few_clips(tmp_path, monkeypatch, caplog):
    """One clip and --batch-size 2: every batch holds it twice, which is said (a wrong --data, likely)."""
    import dove_cli.train.loop as loop

    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.mp4").symlink_to(demo_clip("001.mp4"))
    (tmp_path / "one" / "b.mp4").write_bytes(b"not a video")

    def stop(*args, **kwargs):
        raise RuntimeError("said what it trains on")

    monkeypatch.setattr(loop, "load_training_model", stop)
    cfg = TrainConfig.for_stage(1, data=str(tmp_path / "one"), model="tiny", output_dir=str(tmp_path / "run"),
                                resolution="1x32x32", batch_size=2)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="dove_cli"), pytest.raises(RuntimeError, match="said what"):
        train(cfg)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training on")]
    assert said == ["training on 1 clip (1 skipped); a batch takes 2, more than the 1 clip: they repeat in each batch"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dove_cli"), pytest.raises(RuntimeError, match="said what"):
        train(cfg.replace(batch_size=1, output_dir=str(tmp_path / "run2")))
    assert "training on 1 clip (1 skipped)\n" in caplog.text


def test_cli_resume_keeps_the_recipe_and_run_json_says_so(tiny_model_dir, tmp_path, capsys, caplog):
    """Also the warmup as the release's DeepSpeed launch runs it, across a resume: the rate each
    optimiser step applies (read from the optimiser as it steps) and the logged `lr` are that rate; a run
    ending in the first half of the warmup says at its start that the weights do not change."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from dove_cli.cli import main

    applied: list[float] = []
    hook = register_optimizer_step_pre_hook(lambda opt, args, kwargs: applied.append(opt.param_groups[0]["lr"]))

    def dove(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "-o", str(out), "-q", *args])
        return int(exit_info.value.code or 0)

    out = tmp_path / "run"
    first = ("--data", str(DEMO), "--model", str(tiny_model_dir), "--resolution", "1x32x32", "--num-workers", "0",
             "--posterior", "mode", "--seed", "0", "--lr", "3e-3", "--warmup-steps", "2")  # fmt: skip
    demo_clip("001.mp4")
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        assert dove(*first, "--max-steps", "2") == 0
    warmup = [r.getMessage() for r in caplog.records if "warmup" in r.getMessage()]
    assert warmup == [
        "--max-steps 2 ends inside the 2-step lr warmup: the weights do not change (lr reaches 0 of 0.003)"
    ]
    saved = (out / "run.json").read_text()
    capsys.readouterr()
    assert dove("--resume", "latest", "--max-steps", "3", "--lr", "1e-3", "--batch-size", "1") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line or "Traceback" in line]
    assert len(errors) == 1 and "--lr 0.001 (saved 0.003), --batch-size 1 (saved 2)" in errors[0]
    assert (out / "run.json").read_text() == saved and len(list_checkpoints(out)) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dove_cli"):  # step 3 applies half of --lr: not said
        assert dove("--resume", "latest", "--max-steps", "3") == 0  # how far to go may change; the rest is the run's
    assert not [r for r in caplog.records if "warmup" in r.getMessage()]
    run = json.loads((out / "run.json").read_text())
    assert (run["max_steps"], run["lr"], run["batch_size"], run["seed"]) == (3, 3e-3, 2, 0)
    assert run["mixed_precision"] == "auto" and run["launch"] == {  # the option as given, and what it ran as
        "processes": 1, "batch_per_process": 2, "grad_accum": 1, "global_batch": 2, "precision": "fp32",
        "distributed": "NO",
    }  # fmt: skip
    assert (run["resolution"], run["warmup_steps"], run["num_workers"]) == ([1, 32, 32], 2, 0)
    hook.remove()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    # DeepSpeed's WarmupLR (linear, min 0, --warmup-steps 2): 0 at steps 1 and 2, then (k - 2) / 2 of --lr
    assert applied == pytest.approx([0.0, 0.0, 1.5e-3]) and [r["lr"] for r in rows] == applied


def test_a_failed_start_does_not_block_the_next(tiny_model_dir, tmp_path, caplog):
    out = tmp_path / "run"
    with pytest.raises(InputError, match="no usable clips"):
        train(_cfg(1, tiny_model_dir, out, max_steps=1, resolution="1x512x512"))
    assert not out.exists()
    # what a start that stopped before its first checkpoint leaves (a crash at step 1): nothing to resume
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 99.0}\n')
    with caplog.at_level(logging.INFO, logger="dove_cli"):
        train(_cfg(1, tiny_model_dir, out, max_steps=1, resolution="1x32x32"))
    clips = len([p for p in DEMO.iterdir() if p.suffix == ".mp4"])
    assert f"training on {clips} clips\n" in caplog.text  # (all of them: none is skipped)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["loss"] != 99.0
    assert json.loads((out / "run.json").read_text())["max_steps"] == 1


def test_a_bad_degradation_yaml_stops_the_start_before_the_run_folder(tiny_model_dir, tmp_path):
    """Checked when loaded: a kernel typo would otherwise crash at whichever step first draws it."""
    from importlib import resources

    text = (resources.files("dove_cli.train") / "configs" / "degradation.yaml").read_text()
    bad = tmp_path / "deg.yaml"
    bad.write_text(text.replace("'aniso'", "'anisoo'"))
    out = tmp_path / "run"
    with pytest.raises(OptionError, match="kernel_list: unknown 'anisoo'"):
        train(_cfg(1, tiny_model_dir, out, max_steps=1, resolution="1x32x32", degradation=str(bad)))
    assert not out.exists()


def test_stage2_loss_falls(tiny_model_dir, tmp_path):
    # 8 steps at lr 1e-2 (measured 0.79x the held-out loss; 16 steps at 3e-3 gave 0.82x at twice the cost)
    cfg = _cfg(2, tiny_model_dir, tmp_path / "s2", max_steps=8, checkpoint_every=8, lr=1e-2)
    result = train(cfg)
    rows = [json.loads(x) for x in cfg.metrics_path.read_text().splitlines()]
    assert {"mse", "dists", "frame_diff"} <= set(rows[0]) and rows[0]["frame_diff"] > 0
    before = _heldout_loss(tiny_model_dir, cfg)
    after = _heldout_loss(export_checkpoint(result.last_checkpoint, tmp_path / "m2"), cfg)
    print(f"stage 2 held-out loss (MSE + DISTS + frame diff): {before:.4f} -> {after:.4f}")
    assert after < 0.85 * before


def test_export_loads_and_upscales(stage1_run, tmp_path):
    from dove_cli.cli import main
    from dove_cli.engine import DoveModel

    cfg, result = stage1_run
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "export", str(result.last_checkpoint), "-o", str(tmp_path / "exp")])
    assert exit_info.value.code in (0, None)
    folder = tmp_path / "exp"
    assert {p.name for p in folder.iterdir()} >= {"transformer", "vae", "scheduler", "prompt_embedding.safetensors"}
    model = DoveModel.from_pretrained(folder, posterior="mode")
    trained = load_file(str(result.last_checkpoint / "model.safetensors"))
    sd = model.transformer.state_dict()
    assert all(torch.equal(sd[k], trained[k]) for k in trained)
    small, out = tmp_path / "small.mp4", tmp_path / "up.mp4"  # 64x32: a demo clip at 256x128 costs 16x the decode
    ffmpeg("-i", demo_clip("003.mp4"), "-frames:v", 5, "-vf", "scale=64:32", "-c:v", "libx264", "-crf", 18, small)
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", str(small), "-o", str(out), "--model", str(folder), "--device", "cpu",
              "--preview", "0+0.3s", "--quiet", "--tile", "0", "--chunk", "0"])  # fmt: skip
    assert exit_info.value.code in (0, None) and out.stat().st_size > 0


def test_lora_trains_adapters_and_export_merges(tiny_model_dir, tmp_path):
    from dove_cli.engine import DoveModel

    cfg = _cfg(1, tiny_model_dir, tmp_path / "lora", max_steps=2, checkpoint_every=2, lora_rank=4, lora_alpha=8,
               resolution="1x32x32", lr=1e-2)  # fmt: skip
    result = train(cfg)
    saved = load_file(str(result.last_checkpoint / "model.safetensors"))
    assert any(".lora_B." in k for k in saved)
    base = DoveModel.from_pretrained(tiny_model_dir).transformer.state_dict()
    for k, v in saved.items():  # only adapters moved
        if ".base_layer." in k:
            assert torch.equal(v, base[k.replace(".base_layer", "")])
    merged = DoveModel.from_pretrained(export_checkpoint(result.last_checkpoint, tmp_path / "m"))
    key = next(k for k in saved if k.endswith("to_q.lora_A.default.weight")).replace(".lora_A.default.weight", "")
    a, b = saved[f"{key}.lora_A.default.weight"], saved[f"{key}.lora_B.default.weight"]
    expect = base[f"{key}.weight"] + (8 / 4) * (b @ a)
    assert torch.allclose(merged.transformer.state_dict()[f"{key}.weight"], expect, atol=1e-6)
    assert not torch.equal(expect, base[f"{key}.weight"])


def test_config_file_and_flag_precedence(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nstage = 2\nlr = 1e-5\nresolution = "2x64x64"\nmax-steps = 7\n')
    cfg = build_config(1, toml, lr=3e-5, data="x")
    assert (cfg.stage, cfg.lr, cfg.resolution, cfg.max_steps, cfg.image_ratio) == (2, 3e-5, (2, 64, 64), 7, 0.8)
    yml = tmp_path / "c.yaml"
    yml.write_text("batch_size: 3\nlora_targets: [to_q, to_v]\n")
    cfg = build_config(1, yml)
    assert (cfg.stage, cfg.batch_size, cfg.lora_targets, cfg.lr, cfg.resolution) == (
        1,
        3,
        ("to_q", "to_v"),
        2e-5,
        (25, 320, 640),
    )
    for bad in (dict(resolution="24x320x640"), dict(resolution="25x300x640"), dict(nope=1), dict(batch_size=0)):
        with pytest.raises(OptionError):
            build_config(1, None, **bad)


@pytest.mark.parametrize(
    "flag,value,said",
    [
        ("--max-grad-norm", "-1", "--max-grad-norm must be > 0, got -1"),  # a negative clip factor climbs the loss
        ("--max-grad-norm", "0", "--max-grad-norm must be > 0, got 0"),  # zeroes every gradient
        ("--dists-weight", "-1", "--dists-weight must be >= 0, got -1"),
        ("--frame-diff-weight", "-3", "--frame-diff-weight must be >= 0, got -3"),
        ("--lora-alpha", "-1", "--lora-alpha must be > 0, got -1"),
        ("--seed", "-1", "--seed must be >= 0, got -1"),
        ("--lr", "-1", "--lr must be > 0, got -1"),
        ("--warmup-steps", "-5", "--warmup-steps must be >= 0, got -5"),
        ("--lora-rank", "-2", "--lora-rank must be >= 0, got -2"),
        ("--resolution", "9x64", "--resolution 9x64: expected FxHxW, e.g. 25x320x640"),
        ("--image-ratio", "1.5", "--image-ratio must be in [0, 1], got 1.5"),
    ],
)
def test_cli_option_values_are_checked_one_line_each(flag, value, said, tmp_path, capsys):
    from dove_cli.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-q", "--data", str(tmp_path), "--model", "tiny", "-o", str(tmp_path / "o"), flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err == f"error: {said}\n" and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "text,said",
    [
        ('max_steps: "ten"\n', "max_steps must be a whole number, got 'ten'"),
        ("max_grad_norm: -1\n", "max_grad_norm must be > 0, got -1"),
        ("vae_tiling: 'no'\n", "vae_tiling must be true or false, got 'no'"),
        ("optimizer: sgd\n", "optimizer must be one of adamw, adamw8bit, got 'sgd'"),
        ("learning_rate: 1.0e-5\n", "unknown training option 'learning_rate' (did you mean lr?)"),
        ("warmup_step: 5\n", "unknown training option 'warmup_step' (did you mean warmup_steps?)"),
    ],
)
def test_config_file_values_are_checked_naming_the_file_and_key(text, said, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(OptionError) as err:
        build_config(1, cfg, data="x")
    assert str(err.value) == f"{cfg}: {said}"


def test_config_file_numbers_written_as_text_are_read(tmp_path):
    """YAML 1.1 reads `1e-5` as a string and TOML `1e4` as a float: both are what the user meant."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 1e-5\nmax_steps: 1e4\n")
    assert (build_config(1, cfg).lr, build_config(1, cfg).max_steps) == (1e-5, 10_000)


def test_num_workers_beyond_the_cores_are_capped(tmp_path, caplog):
    from dove_cli.train.data import GlobalBatchSampler, make_loader

    demo_clip("001.mp4")
    ds = TrainDataset(scan_sources(DEMO, (1, 32, 32)), DataConfig(crop=(1, 32, 32)))
    cores = len(os.sched_getaffinity(0))
    loader = make_loader(ds, GlobalBatchSampler(len(ds), 1, seed=0, end_step=1), num_workers=cores + 97)
    assert loader.num_workers == cores
    assert f"--num-workers {cores + 97}: {cores} cores here, so {cores} data-loading processes" in caplog.text


def test_a_training_checkpoint_as_model_says_export_or_resume(stage1_run, tmp_path, capsys):
    from dove_cli.cli import main

    cfg, result = stage1_run
    ckpt, run = result.last_checkpoint, Path(cfg.output_dir)
    for given, resume in ((ckpt, f"--resume {ckpt} -o {run}"), (run, f"--resume latest -o {run}")):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "-q", "--stage", "2", "--data", str(DEMO), "--model", str(given), "-o", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and "WARNING" not in err
        assert f"`dove train export {given} -o MODEL_DIR`" in err and err.rstrip().endswith(resume)


class _Payload:
    """Unpickling it creates the folder `marker` (os.makedirs, called by the unpickler): code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_export_reads_a_deepspeed_module_file_as_tensors_only(stage1_run, tmp_path, capsys):
    """`dove train export` of a DeepSpeed layout: a module-states file with another Python object in it
    is refused in one line (nothing runs, nothing written); --allow-pickle loads it in full. So is a ZeRO
    optimiser-state file, which deepspeed's merge would unpickle in full."""
    from dove_cli.cli import main

    cfg, result = stage1_run
    trained = load_file(str(result.last_checkpoint / "model.safetensors"))
    marker, ckpt = tmp_path / "MARKER", tmp_path / "ckpt"
    (ckpt / "pytorch_model").mkdir(parents=True)
    shutil.copy(result.last_checkpoint / "train_state.json", ckpt)
    states = ckpt / "pytorch_model" / "mp_rank_00_model_states.pt"
    torch.save({"module": trained, "ds_version": "0.16", "payload": _Payload(marker)}, states)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "export", str(ckpt), "-o", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert f"{states} holds Python objects besides tensors (os.makedirs)" in err
    assert "--allow-pickle to `dove train export`" in err
    assert not marker.exists() and not (tmp_path / "exp").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "export", str(ckpt), "-o", str(tmp_path / "exp"), "--allow-pickle"])
    assert exit_info.value.code in (0, None) and marker.exists()
    exported = load_file(str(tmp_path / "exp" / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    torch.save({"module": trained, "ds_version": "0.16"}, states)  # tensors and plain values: no flag needed
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "export", str(ckpt), "-o", str(tmp_path / "exp2")])
    assert exit_info.value.code in (0, None)
    optim = ckpt / "pytorch_model" / "zero_pp_rank_0_mp_rank_00_optim_states.pt"  # ZeRO: deepspeed unpickles in full
    torch.save({"optimizer_state_dict": {}, "payload": _Payload(tmp_path / "MARKER2")}, optim)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "export", str(ckpt), "-o", str(tmp_path / "exp3")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{optim} holds Python objects" in err and err.count("\n") == 1
    assert not (tmp_path / "MARKER2").exists()


def test_resume_refuses_a_checkpoint_pickle_holding_other_objects(stage1_run, tmp_path):
    """accelerate unpickles custom_checkpoint_0.pkl (the LR scheduler) in full: a copied checkpoint with
    a payload there is refused before anything loads or is written, even when its train_state.json
    says allow_pickle; --allow-pickle resumes from it."""
    cfg, result = stage1_run
    ckpt = tmp_path / "run" / "checkpoints" / "step-0000008"
    shutil.copytree(Path(cfg.output_dir) / "checkpoints" / "step-0000008", ckpt)
    marker, pkl = tmp_path / "MARKER", ckpt / "custom_checkpoint_0.pkl"
    torch.save({**torch.load(pkl, weights_only=True), "payload": _Payload(marker)}, pkl)
    state = json.loads((ckpt / "train_state.json").read_text())
    state["config"]["allow_pickle"] = True  # a checkpoint cannot vouch for itself
    (ckpt / "train_state.json").write_text(json.dumps(state))
    out = tmp_path / "out"
    out.mkdir()
    resumed = build_config(1, None, resume=str(ckpt), output_dir=str(out), max_steps=9)
    with pytest.raises(ModelError, match=rf"^{re.escape(str(pkl))} holds Python objects besides tensors "
                       r"\(os.makedirs\).*--allow-pickle to `dove train`"):  # fmt: skip
        train(resumed)
    assert not marker.exists() and list(out.iterdir()) == []
    result = train(resumed.replace(allow_pickle=True))
    assert marker.exists() and len(result.losses) == 1


def test_cli_errors_are_messages(tmp_path, tiny_model_dir):
    dove = shutil.which("dove")
    if dove is None:
        pytest.skip("dove entry point not installed")
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([dove, "train", "--data", str(empty), "--model", str(tiny_model_dir), "-o", str(tmp_path / "o"),
                           "-q"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([dove, "train", "--data", str(demo_clip("003.mp4").parent), "--model", str(tmp_path / "nope"),
                           "-o", str(tmp_path / "run"), "--max-steps", "1"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "nope does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert "stage 1" not in proc.stderr and not (tmp_path / "run").exists()  # no progress bar, no empty run folder
    lq = tmp_path / "lq.mp4"
    proc = subprocess.run([dove, "degrade", str(demo_clip("003.mp4")), "-o", str(lq), "--seed", "3", "--frames", "6",
                           "--record", str(tmp_path / "r.json")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import av

    with av.open(str(lq)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (64, 32)
        assert s.codec_context.pix_fmt == "yuv444p"  # lossless H.264: the LQ as training sees it
    assert any(r["op"] == "video" for r in json.loads((tmp_path / "r.json").read_text()))
    assert "None" not in proc.stderr and ("jpeg quality" in proc.stderr or "jpeg" not in proc.stderr)


@pytest.mark.skipif(os.environ.get("DOVE_SKIP_DDP") == "1", reason="DOVE_SKIP_DDP=1")
def test_two_processes_match_one(tiny_model_dir, tmp_path):
    """accelerate launch, 2 CPU processes (gloo), batch 1 each == 1 process with batch 2.

    `--multi_gpu` selects accelerate's torchrun launcher; without CUDA the training code asks for
    a CPU accelerator, which then forms a gloo process group (accelerate's `--cpu` path needs MPI).
    """
    common = ["train", "--data", str(DEMO), "--model", str(tiny_model_dir), "--resolution", "1x32x32", "--max-steps",
              "2", "--warmup-steps", "0", "--lr", "1e-3", "--num-workers", "0", "--posterior", "mode", "--seed", "0",
              "--checkpoint-every", "2", "-q"]  # fmt: skip
    one = subprocess.run([sys.executable, "-m", "dove_cli.cli", *common, "-o", str(tmp_path / "one"), "--batch-size", "2"],
                         capture_output=True, text=True)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}  # torchrun leaves its log folder
    two = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
         "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "dove_cli.cli", *common[:-1],
         "-o", str(tmp_path / "two"), "--batch-size", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("done: 2 steps") == 1  # from the main process only
    launch = json.loads((tmp_path / "two" / "run.json").read_text())["launch"]
    assert (launch["processes"], launch["batch_per_process"], launch["global_batch"]) == (2, 1, 2)
    assert not (tmp_path / "two" / "checkpoints" / "step-0000002" / "model_1.safetensors").exists()
    rows1 = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    rows2 = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    for r1, r2 in zip(rows1, rows2, strict=True):
        assert r2["loss"] == pytest.approx(r1["loss"], rel=1e-5)
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-4)  # all-reduced gradient
    a = load_file(str(tmp_path / "one" / "checkpoints" / "step-0000002" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "checkpoints" / "step-0000002" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_validation_writes_scores_and_samples(tiny_model_dir, tmp_path, caplog):
    from dove_cli.train.validate import psnr, ssim

    x = torch.rand(2, 3, 32, 32)
    assert ssim(x, x) == pytest.approx(1.0) and ssim(x, torch.rand(2, 3, 32, 32)) < 0.2
    assert psnr(x, (x + 0.1).clamp(0, 1)) < psnr(x, (x + 0.01).clamp(0, 1))
    assert psnr(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.1)) == pytest.approx(20.0)
    cfg = _cfg(1, tiny_model_dir, tmp_path / "v", max_steps=2, checkpoint_every=2, resolution="1x32x32",
               val_data=str(DEMO), val_every=1, val_clips=2)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="dove_cli"):
        train(cfg)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validation at step 2: ")]
    assert len(said) == 1 and re.fullmatch(r"validation at step 2: val_psnr [\d.]+, val_ssim .*", said[0]), said
    rows = [json.loads(x) for x in cfg.metrics_path.read_text().splitlines()]
    val = [r for r in rows if "val_psnr" in r]
    assert [r["step"] for r in val] == [1, 2] and all(5 < r["val_psnr"] < 60 and -1 <= r["val_ssim"] <= 1 for r in val)
    assert sorted(p.name for p in (tmp_path / "v" / "val" / "step-0000002").iterdir()) == ["sample0.png", "sample1.png"]


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    from dove_cli.train.checkpoints import save_checkpoint

    class FakeAccelerator:
        is_main_process = True

        def wait_for_everyone(self) -> None:
            pass

        def save_state(self, path: str, safe_serialization: bool = True) -> None:
            Path(path).mkdir(parents=True, exist_ok=True)
            if self.fail:
                (Path(path) / "model.safetensors").write_bytes(b"partial")
                raise OSError(28, "No space left on device")
            (Path(path) / "model.safetensors").write_bytes(b"ok")

    acc = FakeAccelerator()
    acc.fail = False
    good = save_checkpoint(acc, tmp_path, 1, {"step": 1}, keep=3)
    acc.fail = True
    with pytest.raises(OutputError, match="No space left"):
        save_checkpoint(acc, tmp_path, 2, {"step": 2}, keep=3)
    assert list_checkpoints(tmp_path) == [good]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [good.name]


def test_weights_get_the_mode_of_every_other_file_the_umask_gives(stage1_run, tmp_path, monkeypatch):
    """safetensors writes 0600 whatever the umask: checkpoints, exports and the tiny-model cache set
    their weights to 0666 & ~umask, as the JSON files beside them get; an export's files copied from its
    base model (the VAE's, the scheduler's) too, not their source's mode."""
    from accelerate import Accelerator

    from dove_cli.train.checkpoints import save_checkpoint
    from dove_cli.train.loop import resolve_model_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old = os.umask(0o027)
    try:
        accelerator = Accelerator(cpu=True)
        accelerator.prepare(torch.nn.Linear(2, 2))
        folders = [
            save_checkpoint(accelerator, tmp_path / "run", 1, {"step": 1}, keep=3),
            export_checkpoint(stage1_run[1].last_checkpoint, tmp_path / "exp"),
            resolve_model_folder("tiny"),
        ]
    finally:
        os.umask(old)
    for folder in folders:
        weights = list(folder.rglob("*.safetensors"))
        written = [
            folder / name
            for name in (
                "train_state.json",
                "model_index.json",
                "transformer/config.json",
                "vae/config.json",
                "scheduler/scheduler_config.json",
            )
        ]  # (copied too)
        assert weights and {oct(p.stat().st_mode & 0o777) for p in weights} == {"0o640"}, folder
        assert {oct(p.stat().st_mode & 0o777) for p in written if p.is_file()} == {"0o640"}, folder


def test_train_accepts_the_tiny_model_by_name(tmp_path, monkeypatch):
    """As `dove upscale --model tiny`: a newcomer can try the recipe without weights."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = TrainConfig.for_stage(1, data=str(demo_clip("003.mp4")), model="tiny", output_dir=str(tmp_path / "run"),
                                max_steps=1, resolution="1x32x32", num_workers=0, posterior="mode")  # fmt: skip
    result = train(cfg)
    assert result.steps == 1 and (tmp_path / "cache" / "dove" / "tiny-model" / "transformer").is_dir()
    with pytest.raises(OptionError, match="--model bilinear has no weights to train"):
        train(cfg.replace(model="bilinear", output_dir=str(tmp_path / "other")))


# ---------------------------------------------------------------- Ctrl-C / SIGTERM


@pytest.fixture
def default_signals():
    """The process's default Ctrl-C and SIGTERM handlers: a library another test in this worker ran
    (Ray) leaves its own SIGTERM handler (sys.exit), which train() rightly passes the signal on to."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _signal_in_step(monkeypatch, step: int, signum: int = signal.SIGINT) -> None:
    """Send `signum` to this process from inside the forward of optimiser step `step` (mid-step,
    before its backward and optimiser update), as a Ctrl-C at a random moment would arrive."""
    import dove_cli.train.loop as loop

    calls = [0]

    def forward(*args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            os.kill(os.getpid(), signum)
        return training_loss(*args, **kwargs)

    monkeypatch.setattr(loop, "training_loss", forward)


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(default_signals, stage1_run, monkeypatch, tmp_path):
    """Ctrl-C in step 6 of 12: step 6 completes, step-0000006 is saved, Interrupted (exit 130) says so;
    --resume latest to 12 is bitwise the uninterrupted run (its steps 7-12 and final weights)."""
    cfg, result = stage1_run
    out = tmp_path / "int"
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    _signal_in_step(monkeypatch, 6)
    with pytest.raises(Interrupted) as stopped:
        train(cfg.replace(output_dir=str(out)))
    assert str(stopped.value) == (f"{out}: interrupted at step 6 of 12; saved checkpoint step-0000006; "
                                  "run the same command with --resume latest to continue")  # fmt: skip
    assert stopped.value.exit_code == 130
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert [p.name for p in list_checkpoints(out)] == ["step-0000004", "step-0000006"]
    assert not any(p.name.startswith(".tmp") for p in (out / "checkpoints").iterdir())
    monkeypatch.undo()
    resumed = train(cfg.replace(output_dir=str(out), resume="latest"))
    full = [json.loads(x)["loss"] for x in cfg.metrics_path.read_text().splitlines()]
    assert resumed.losses == full[6:]
    assert [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()] == full
    a = load_file(str(result.last_checkpoint / "model.safetensors"))
    b = load_file(str(resumed.last_checkpoint / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_interrupt_after_a_scheduled_save_saves_once(default_signals, tiny_model_dir, tmp_path, monkeypatch):
    import dove_cli.train.loop as loop

    saved: list[int] = []
    real_save = loop.save_checkpoint

    def save(accelerator, output_dir, step, state, keep):
        saved.append(step)
        return real_save(accelerator, output_dir, step, state, keep)

    monkeypatch.setattr(loop, "save_checkpoint", save)
    _signal_in_step(monkeypatch, 2, signal.SIGTERM)  # SIGTERM under the Python API: as Ctrl-C, not death
    cfg = _cfg(1, tiny_model_dir, tmp_path / "r", max_steps=4, checkpoint_every=2, resolution="1x32x32")
    with pytest.raises(Interrupted, match=r"interrupted at step 2 of 4; saved checkpoint step-0000002; run the"):
        train(cfg)
    assert saved == [2]


def test_second_ctrl_c_while_saving_stops_at_once_without_a_partial_checkpoint(
    default_signals, tiny_model_dir, tmp_path, monkeypatch
):
    from accelerate import Accelerator

    real_save_state = Accelerator.save_state

    def save_state(self, *args, **kwargs):
        real_save_state(self, *args, **kwargs)
        if args[0].endswith("step-0000003"):  # the save the first Ctrl-C (in step 3) asked for, fully written
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Accelerator, "save_state", save_state)
    _signal_in_step(monkeypatch, 3)
    out = tmp_path / "r"
    cfg = _cfg(1, tiny_model_dir, out, max_steps=6, checkpoint_every=2, resolution="1x32x32")
    with pytest.raises(Interrupted) as stopped:
        train(cfg)
    assert str(stopped.value) == (f"{out}: interrupted at step 3 of 6; the last checkpoint is step-0000002; "
                                  "run the same command with --resume latest to continue from there")  # fmt: skip
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-0000002"]


def test_ctrl_c_before_the_first_step_says_nothing_was_saved(default_signals, tiny_model_dir, tmp_path, monkeypatch):
    import dove_cli.train.loop as loop

    real_load = loop.load_training_model

    def load(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # not held: loading a 5B model is no step to finish
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loop, "load_training_model", load)
    out = tmp_path / "r"
    with pytest.raises(Interrupted) as stopped:
        train(_cfg(1, tiny_model_dir, out, max_steps=2, resolution="1x32x32"))
    assert str(stopped.value) == f"{out}: interrupted before the first step finished; nothing was saved"
    assert list_checkpoints(out) == []


def _wait_for_rows(path: Path, rows: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    import time

    t0 = time.monotonic()
    while not (path.is_file() and len(path.read_text().splitlines()) >= rows):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


def test_cli_ctrl_c_and_sigterm_save_and_say_how_to_continue(tiny_model_dir, tmp_path):
    """A real Ctrl-C (SIGINT to the process group, DataLoader workers included, mid-way through a
    4-micro-batch step) exits 130, then SIGTERM to a resumed run exits 143; each says one line."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "dove_cli.cli", "train", "--data", str(DEMO), "--model", str(tiny_model_dir),
            "-o", str(out), "--resolution", "1x32x32", "--max-steps", "1000", "--num-workers", "1",
            "--grad-accum", "4", "--batch-size", "1", "--posterior", "mode", "-q"]  # fmt: skip
    demo_clip("001.mp4")
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_rows(out / "metrics.jsonl", 2, proc)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    step = len(list_checkpoints(out)) and int(list_checkpoints(out)[-1].name.split("-")[1])
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == (f"error: {out}: interrupted at step {step} of 1000; saved checkpoint "
                                            f"step-{step:07d}; run the same command with --resume latest to continue")  # fmt: skip
    assert "Traceback" not in err and step >= 2
    rows = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(1, step + 1))
    proc = subprocess.Popen([*args, "--resume", "latest"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_rows(out / "metrics.jsonl", step + 1, proc)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err[-3000:]
    last = list_checkpoints(out)[-1]
    assert int(last.name.split("-")[1]) > step and f"saved checkpoint {last.name}" in err.strip().splitlines()[-1]
