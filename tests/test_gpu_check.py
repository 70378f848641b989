"""benchmarks/gpu_check.sh, rehearsed on the CPU: a GPU lease is minutes long, and a typo in the script
would spend it. REHEARSE=1 runs the same steps with the same flags on the tiny model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_table  # noqa: E402

BENCH_STEPS = {  # step -> the options its bench must report having run with
    "eager": {"compile": "off", "offload": "none"},
    "compile": {"compile": "transformer"},
    "attention-flash": {"compile": "off"},  # flash attention has a CPU kernel too
    "offload-model": {"offload": "model"},
}
REFUSED_ON_CPU = {"attention-cudnn": "--attention cudnn", "quantize-fp8": "--quantize fp8"}


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_the_gpu_check_runs_every_step_through(tmp_path: Path) -> None:
    env = {**os.environ, "REHEARSE": "1", "OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=280)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    names = [s["step"] for s in steps]
    assert names[:7] == ["eager", "e2e-10s-to-480p", "compile", "attention-flash", "attention-cudnn", "quantize-fp8",
                         "offload-model"]  # fmt: skip
    by_name = dict(zip(names, steps, strict=True))

    for name, options in BENCH_STEPS.items():
        step = by_name[name]
        assert "error" not in step, (name, step)
        assert (step["model"], step["frames"], step["input_size"], step["output_size"]) == ("tiny", 9, "16x16", "64x64")
        assert step["stages"]["transformer"] > 0 and step["stages"]["vae_decode"] > 0
        assert {"peak_device_bytes", "est_peak_device_bytes"} <= step.keys()
        assert options.items() <= step["options"].items(), (name, step["options"])

    e2e = by_name["e2e-10s-to-480p"]
    assert (e2e["exit"], e2e["frames"]) == (0, 32), e2e
    assert "device_stages" in e2e and e2e["busy_samples"] == 0  # no nvidia-smi here
    assert json.loads((tmp_path / "e2e_manifest.json").read_text())["result"]["frames"] == 32

    for name, flag in REFUSED_ON_CPU.items():  # each failure keeps the one line the user would read
        assert by_name[name]["said"].startswith(f"error: {flag} needs"), by_name[name]
    # bitsandbytes' steps: skipped without it, refused on the CPU with it
    quantized = [s for s in steps if s["step"].startswith("quantize-int8") or s["step"] == "quantize-nf4"]
    assert quantized and all("error" in s for s in quantized)

    rows = (tmp_path / "gpu_table.md").read_text()
    assert rows == gpu_table.table(steps) + "\n"
    assert "| compile | " in rows and "(plan: 0.0 GiB)" in rows
    assert "| quantize-fp8 | failed (exit 2 after" in rows


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_help_prints_the_header_and_runs_nothing(tmp_path: Path) -> None:
    """`--help` was ignored: the whole check ran and wrote its files into the repository's root."""
    env = {**os.environ, "OUT": str(tmp_path)}
    script = str(ROOT / "benchmarks/gpu_check.sh")
    done = subprocess.run(["bash", script, "--help"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "REHEARSE=1 runs every step" in done.stdout and not done.stdout.startswith("#!")
    wrong = subprocess.run(["bash", script, "--rehearse"], env=env, capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 2 and "unknown argument '--rehearse'" in wrong.stderr and wrong.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_a_check_where_every_step_failed_exits_1(tmp_path: Path) -> None:
    """Without a GPU every real step is refused (--device cuda): it exited 0 with a table of failures."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the steps would run")
    env = {**os.environ, "OUT": str(tmp_path), "REHEARSE": "0"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=280)  # fmt: skip
    assert done.returncode == 1 and "every step failed" in done.stderr, done.stderr[-2000:]
    assert "failed" in (tmp_path / "gpu_table.md").read_text()
