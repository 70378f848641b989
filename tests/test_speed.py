"""The time estimate's parts: the transformer's FLOPs against torch's own count, and the rate probe."""

from __future__ import annotations

import os
import re
import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import demo_clip
from dove_cli import speed
from dove_cli.cli import main
from dove_cli.engine import RANDOM_CONFIGS
from dove_cli.upscaling import upscale


def counted_flops(transformer: torch.nn.Module, frames: int, height: int, width: int) -> float:
    """FLOPs of one forward as torch counts them, on the meta device (no memory, no weights)."""
    cfg = transformer.config
    latent_frames = 1 + (frames - 1) // 4
    latent_frames += (-latent_frames) % (cfg.patch_size_t or 1)
    x = torch.zeros(1, latent_frames, cfg.in_channels, height // 8, width // 8, device="meta")
    text = torch.zeros(1, cfg.max_text_seq_length, cfg.text_embed_dim, device="meta")
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        transformer(hidden_states=x, encoder_hidden_states=text, timestep=torch.zeros(1, device="meta"))
    return counter.get_total_flops()


@pytest.mark.parametrize("frames, height, width", [(33, 720, 1280), (33, 320, 320), (17, 1088, 1920)])
def test_the_5b_transformer_flops_match_torchs_count(frames, height, width):
    """Within 1% at every window size, on the real 5B architecture (the timestep's layers, 0.8e9
    parameters that run once per window, made it 9% high at 720p and 15% high on small tiles)."""
    from diffusers import CogVideoXTransformer3DModel

    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**RANDOM_CONFIGS["full"][0])
    estimate = speed.transformer_flops(transformer.config, frames, height, width, speed.per_token_params(transformer))
    assert estimate == pytest.approx(counted_flops(transformer, frames, height, width), rel=0.01)


def test_the_rate_probe_takes_the_best_burst():
    """A machine busy with something else only slows a burst: the probe keeps the fastest, so two
    runs of the same command estimate the same time. Here the first two bursts' calls take 2 ms,
    and then the machine gets busy: 50 ms a call."""
    calls = []

    def op() -> None:
        calls.append(None)
        time.sleep(0.002 if 2 <= len(calls) <= 21 else 0.05)  # after the warm-up, 20 fast calls

    rate = speed._rate(op, flops=1.0, device=torch.device("cpu"), seconds=0.1, bursts=5)
    assert 1 / 0.004 < rate <= 1 / 0.002  # about one call per 2 ms: not the mean, not the last burst


def test_the_rate_probe_leaves_the_global_random_stream_alone(monkeypatch):
    """The probe's inputs came from torch.randn: a program's first upscale moved its random stream."""
    monkeypatch.setattr(speed, "_rate", lambda op, flops, device: 1.0)  # the inputs, not their timing
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    speed.device_rates.__wrapped__("cpu", torch.float32, 4, 32)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_busy_machine_is_said_beside_the_estimate(monkeypatch, tmp_path, capsys):
    """On a 2-core CPU at load 3 to 7, two identical dry runs estimated 1 h 55 min and 6 h 12 min:
    the printed range (0.6x to 1.8x) cannot hold while other jobs take turns with the run. When the
    load average (the OS's, os.getloadavg) is above the CPU count, the estimate says so; not on an
    idle machine, nor where the OS has no load average."""
    busy = "this machine is busy (load 6.1 on 2 CPUs): the estimate may be off by more"
    argv = ["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "tiny", "--dry-run"]
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv("COLUMNS", raising=False)  # xdist sets 80: rows would fold
    for load, said in ((6.1, True), (2.0, False)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 5.0, 4.0))
        with pytest.raises(SystemExit) as exc:
            main(argv)
        table = capsys.readouterr().out
        assert exc.value.code == 0
        if said:
            assert re.search(rf"estimated time: about .* plus start-up \(loading it\); {re.escape(busy)}", table), table
        else:
            assert "machine is busy" not in table and re.search(
                r"estimated time: about .* plus start-up \(loading it\)\s", table
            )

    def no_load_average() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", no_load_average)
    plan = upscale(demo_clip("007.mp4"), tmp_path / "x.mp4", model="tiny", dry_run=True)
    assert plan.est_seconds and plan.est_note == ""
