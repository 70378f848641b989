"""benchmarks/gpu_check.sh, rehearsed on the CPU: a GPU lease is minutes long, and a typo in the script
would spend it. REHEARSE=1 runs the same steps with the same flags on the tiny model."""

from __future__ import annotations

import json
import os
import re
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
    "tiled-24gib-1080p": {"vae_tiling": True},  # on the GPU --vram 24 plans its tiles; here --tile 48
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
    assert names[:8] == ["eager", "e2e-10s-to-480p", "compile", "tiled-24gib-1080p", "attention-flash",
                         "attention-cudnn", "quantize-fp8", "offload-model"]  # fmt: skip
    by_name = dict(zip(names, steps, strict=True))

    for name, options in BENCH_STEPS.items():
        step = by_name[name]
        assert "error" not in step, (name, step)
        assert (step["model"], step["frames"], step["input_size"], step["output_size"]) == ("tiny", 9, "16x16", "64x64")
        assert step["stages"]["transformer"] > 0 and step["stages"]["vae_decode"] > 0
        assert {"peak_device_bytes", "est_peak_device_bytes"} <= step.keys()
        assert options.items() <= step["options"].items(), (name, step["options"])
        assert step["step_wall_s"] >= 0 and step["first_seconds"] > 0, step
    assert by_name["tiled-24gib-1080p"]["tiles"] > 1 and by_name["tiled-24gib-1080p"]["vae_tiles"]

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
    assert "| compile | " in rows and "planner's estimate" in rows and "peak host" in rows  # the CPU's: host
    assert "| quantize-fp8 | failed (exit 2 after" in rows
    assert "after a first, compiling call of" in rows


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
    assert done.returncode == 1 and "no step succeeded" in done.stderr, done.stderr[-2000:]
    assert "failed" in (tmp_path / "gpu_table.md").read_text()


def readme_rows() -> dict[str, list[str]]:
    """The README's performance rows by their "what" cell: [what, how, result]."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Performance") :]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [c.strip() for c in row] for row in rows if len(row) == 3}


def test_the_gpu_rows_paste_into_the_readme_table() -> None:
    """The README said the script writes its rows, but it wrote `| step | result |` rows: someone had to
    merge a row per step into the README's `| what | how | result |` rows by hand after the lease."""
    readme = readme_rows()
    steps = [{"step": "eager", "error": "exit 2 after 3 s", "said": "error: --device cuda needs a GPU (cuda | cpu)"}]
    lines = gpu_table.table(steps).splitlines()
    header = lines.index("| what | how | result |")
    assert lines[header + 1] == "|---|---|---|"
    written = [line.strip("|").split(" | ") for line in lines[header + 2 : header + 2 + len(gpu_table.ROWS)]]
    assert all(len(cells) == 3 for cells in written), written  # a `|` in what a step said is escaped
    for (what, how), (w, h, result) in zip(gpu_table.ROWS, written, strict=True):
        assert readme[what][:2] == [w.strip(), h.strip()] == [what, how]  # the same cells as the README's row
        assert readme[what][2].startswith("not measured"), readme[what]  # the row a lease replaces
        assert result.strip()
    assert "eager: failed (exit 2 after 3 s): error: --device cuda needs a GPU (cuda \\| cpu)" in written[0][2]


def test_one_unreadable_step_does_not_lose_the_table(tmp_path: Path) -> None:
    """An end-to-end step that exited 0 without a readable manifest has no `frames`: the table raised
    KeyError: 'frames' and the whole lease's table was lost. Each step now degrades on its own."""
    jsonl = tmp_path / "gpu_check.jsonl"
    bench = {"step": "eager", "step_wall_s": 30, "device": "cuda:0", "device_name": "Test GPU", "frames": 33,
             "output_size": "1280x720", "seconds": 2.0, "first_seconds": 9.0, "fps": 16.5, "tile": 0, "tiles": 1,
             "stages": {"transformer": 1.5}, "peak_device_bytes": 3 * 2**30, "est_peak_device_bytes": 4 * 2**30}  # fmt: skip
    lines = [json.dumps(bench),
             '{"step": "e2e-10s-to-480p", "exit": 0, "wall_s": 5, "gpu_busy_mean_pct": 50.0, "busy_samples": 3}',
             json.dumps({"step": "compile", "step_wall_s": 100, "seconds": 1.5}),  # no first_seconds, no stages
             json.dumps({**bench, "step": "tiled-24gib-1080p", "tiles": 2, "tile": 1440, "vae_tiles": True}),
             json.dumps({"step": "quantize-fp8", "error": "skipped: no time left (5 s of the 560 s budget left, "
                                                          "it needs 70 s)"}),  # fmt: skip
             '{"step": "offload-model", "step_wa']  # fmt: skip
    jsonl.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_table.py"), str(jsonl)], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0].strip("| "): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert "| 2.00 s for 33 frames of 1280x720 (16.5 fps; transformer 1.50 s" in rows["eager"]
    assert "peak 3.0 GiB, planner's estimate 4.0 GiB; first call 9.0 s, the step 30 s" in rows["eager"]
    assert "no result: its JSON lacks 'frames'" in rows["e2e-10s-to-480p"]
    assert "no result: its JSON lacks" in rows["compile"]
    assert "| skipped: no time left (5 s" in rows["quantize-fp8"]  # skipped, not "failed"
    assert "failed (not a JSON object" in rows["line 6"]
    readme = {
        what: line for line in done.stdout.splitlines() for what in readme_rows() if line.startswith(f"| {what} |")
    }
    (window, _), (e2e, _), (tiled, _) = gpu_table.ROWS
    assert "eager **2.00 s**" in readme[window] and "`--compile transformer`: no result" in readme[window]
    assert "`--quantize fp8`: skipped: no time left" in readme[window]
    assert "no result: its JSON lacks 'frames'" in readme[e2e]
    assert "**0.75x** of the estimate" in readme[tiled] and "2 tiles of 1440 px + VAE tiles" in readme[tiled]


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_no_step_starts_past_the_time_budget(tmp_path: Path) -> None:
    """The steps' limits added up to 720 s (1000 s with bitsandbytes) against a 590 s call: a slow step
    cut the ones after it mid-run. A step whose limit (and its 10 s to be killed) no longer fits the
    budget is not started, and says so; the table is still written."""
    env = {**os.environ, "OUT": str(tmp_path), "REHEARSE": "0", "BUDGET_S": "20"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1 and "no step succeeded" in done.stderr, done.stderr[-2000:]
    steps = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    bench_steps = [s for s in steps if s["step"] != "quantize-int8, nf4"]  # (skipped without bitsandbytes)
    assert [s["step"] for s in bench_steps][:4] == ["eager", "e2e-10s-to-480p", "compile", "tiled-24gib-1080p"]
    # 20 s less the 15 s kept for the table leave at most 5 s (less on a busy machine); the shortest step needs 45 + 10
    left = [re.fullmatch(r"skipped: no time left \((\d) s of the 20 s budget left, it needs \d+ s\)", s["error"])
            for s in bench_steps]  # fmt: skip
    assert all(m and int(m[1]) <= 5 for m in left), steps
    assert "| eager | skipped: no time left" in (tmp_path / "gpu_table.md").read_text()


def test_every_time_limit_kills_what_ignores_it() -> None:
    """`timeout` alone sends SIGTERM only: a step stuck in a CUDA call could hold the lease past its limit."""
    script = (ROOT / "benchmarks/gpu_check.sh").read_text()
    calls = [line for line in script.splitlines() if "timeout " in line and not line.lstrip().startswith("#")]
    assert calls and all("timeout -k 10 " in line for line in calls), calls
