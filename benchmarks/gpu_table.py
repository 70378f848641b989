"""The README's performance rows from a gpu_check.jsonl, then one row per step: what it measured or why not.

    python benchmarks/gpu_table.py results/gpu_check.jsonl

A lease is minutes long: this turns its results into the table's words at once, the same way each time.
The first table's rows have the README's `| what | how | result |` cells (ROWS: the same words as the
README's "not measured" rows), to paste over those; each step's part of a result degrades to its own
failure text, so one bad step never loses the others.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

GIB = 2**30
# (what, how) of the README's GPU rows under "Performance", word for word (tests/test_gpu_check.py checks)
ONE_WINDOW = (
    "DOVE, 33 frames of 1280x720 output, bf16: eager / `--compile transformer` / `--attention flash, cudnn` / "
    "`--offload model` / `--quantize int8, nf4, fp8`",
    "`benchmarks/gpu_check.sh` (full-random weights, per-stage GPU seconds from CUDA events, peak vs the plan's "
    "estimate)",
)
END_TO_END = (
    "10 s (160 frames) of 214x120 to 856x480 end to end, GPU busy",
    "`benchmarks/gpu_check.sh` (nvidia-smi sampled every 200 ms)",
)
TILED = (
    "peak GPU memory of a tiled plan vs the planner's estimate: 33 frames of 480x270 -> 1920x1080 as planned for "
    "a 24 GiB card (2 tiles of 1440 px + VAE tiles)",
    "`benchmarks/gpu_check.sh` (`dove bench --vram 24 --tile auto --chunk auto`, full-random weights)",
)
ROWS = (ONE_WINDOW, END_TO_END, TILED)
TARGETS = {
    ONE_WINDOW: "Target: < 5 s on an H100/H200 (paper: about 15 s on an A100)",
    END_TO_END: "Target: busy > 90%",
}
# the one-window steps, in the row's order, and what the row calls each
LABELS = {
    "eager": "eager",
    "compile": "`--compile transformer`",
    "attention-flash": "`--attention flash`",
    "attention-cudnn": "`--attention cudnn`",
    "quantize-fp8": "`--quantize fp8`",
    "offload-model": "`--offload model`",
    "quantize-int8": "`--quantize int8`",
    "quantize-nf4": "`--quantize nf4`",
    "quantize-int8, nf4": "`--quantize int8, nf4`",
}


def failure(step: dict) -> str | None:
    """Why a step has no result (its own words), or None when it has one."""
    if "error" in step:
        error = str(step["error"])
        said = f": {step['said']}" if step.get("said") else ""
        return error + said if error.startswith("skipped") else f"failed ({error}){said}"
    if step.get("exit"):  # the end-to-end upscale
        why = "timed out" if step["exit"] in (124, 137) else f"exit {step['exit']}"
        return f"failed ({why} after {step.get('wall_s', '?')} s): {step.get('said', '')}"
    return None


def unreadable(e: Exception) -> str:
    """Why a step's JSON gave no result: the key it lacks, or the value that did not read."""
    return f"no result: its JSON lacks {e}" if isinstance(e, KeyError) else f"no result: its JSON does not read ({e})"


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def peak(step: dict) -> str:
    """The peak GPU memory against the planner's estimate of it (on the CPU, the host's: a rehearsal)."""
    if step.get("device", "cuda").startswith("cpu"):
        return f"peak host {gib(step['peak_host_bytes'])}, planner's estimate {gib(step['est_peak_host_bytes'])}"
    return f"peak {gib(step['peak_device_bytes'])}, planner's estimate {gib(step['est_peak_device_bytes'])}"


def describe(step: dict) -> str:
    """What one step measured, in the README's words (or what it said when it failed)."""
    if (why := failure(step)) is not None:
        return why
    try:
        return _measured(step)
    except (KeyError, TypeError, ValueError) as e:  # a result without the keys its kind has: say so, go on
        return f"{unreadable(e)} ({json.dumps(step)[:200]})"


def _measured(step: dict) -> str:
    if "exit" in step:  # the end-to-end upscale
        busy = step["gpu_busy_mean_pct"]
        busy_text = f"GPU busy {busy}% ({step['busy_samples']} samples)" if busy is not None else "no GPU busy samples"
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in step.get("device_stages", {}).items() if v >= 0.01)
        return (
            f"{step['frames']} frames in {step['seconds']:.1f} s ({step['wall_s']} s wall with start-up); {busy_text}"
            + (f"; GPU stages: {stages}" if stages else "")
        )
    return f"{step['seconds']:.2f} s for {step['frames']} frames of {step['output_size']} ({bench_details(step)})"


def bench_details(step: dict) -> str:
    """A bench's rate, tiles, per-stage GPU seconds, peak vs estimate and one-time costs."""
    stages = step["stages"]
    tiles = f"; {step['tiles']} tiles of {step['tile']} px" if step.get("tiles", 1) > 1 else ""
    tiles += " + VAE tiles" if step.get("vae_tiles") else ""
    return (
        f"{step['fps']:.1f} fps{tiles}; transformer {stages.get('transformer', 0):.2f} s, "
        f"VAE encode {stages.get('vae_encode', 0):.2f} s, VAE decode {stages.get('vae_decode', 0):.2f} s; "
        f"{peak(step)}; first call {step['first_seconds']:.1f} s, the step {step['step_wall_s']} s with the model's build"
    )


def _window_part(step: dict) -> str:
    """One step's part of the one-window row: its time (the eager one in full), or why it has none."""
    label = LABELS.get(step["step"], step["step"])
    if (why := failure(step)) is not None:
        return f"{label}: {why}"
    if step["step"] == "eager":
        return f"eager **{step['seconds']:.2f} s** ({bench_details(step)})"
    if step["step"] == "compile":  # the one-time cost beside the saving
        return (f"{label} **{step['seconds']:.2f} s** after a first, compiling call of {step['first_seconds']:.0f} s "
                f"(the step {step['step_wall_s']} s; {peak(step)})")  # fmt: skip
    return f"{label} {step['seconds']:.2f} s ({peak(step)})"


def window_part(step: dict) -> str:
    try:
        return _window_part(step)
    except (KeyError, TypeError, ValueError) as e:
        return f"{LABELS.get(step.get('step', '?'), step.get('step', '?'))}: {unreadable(e)}"


def tiled_part(step: dict) -> str:
    """The tiled plan's peak against its estimate, the ratio first: what the row is for."""
    if (why := failure(step)) is not None:
        return why
    try:
        measured, est = step["peak_device_bytes"], step["est_peak_device_bytes"]
        ratio = f"**{measured / est:.2f}x** of the estimate: " if est else ""
        return f"{ratio}{describe(step)}"
    except (KeyError, TypeError, ValueError) as e:
        return unreadable(e)


def result_cell(row: tuple[str, str], steps: list[dict], when: str) -> str:
    """A README row's result: the date and card, each of its steps' parts, then its target."""
    if row == ONE_WINDOW:
        parts = [window_part(s) for s in steps if s.get("step") in LABELS]
    elif row == END_TO_END:
        parts = [describe(s) for s in steps if s.get("step") == "e2e-10s-to-480p"]
    else:
        parts = [tiled_part(s) for s in steps if str(s.get("step", "")).startswith("tiled-")]
    said = "; ".join(parts) or "not run (no step in this check)"
    target = f". {TARGETS[row]}" if row in TARGETS else ""
    return f"{when}: {said}{target}"


def cell(text: str) -> str:
    """Text as one Markdown table cell: a `|` in a failure's words would split it."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(steps: list[dict]) -> str:
    devices = sorted({s["device_name"] for s in steps if "device_name" in s})
    card = ", ".join(devices) or "an unknown device"
    when = f"{datetime.date.today()}, {card}"
    lines = [f"GPU check, {datetime.date.today()}, on {card}", "",
             "The README's rows (under \"Performance\", in place of the \"not measured\" ones):", "",
             "| what | how | result |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {what} | {how} | {cell(result_cell((what, how), steps, when))} |" for what, how in ROWS]
    lines += ["", "Each step:", "", "| step | result |", "|---|---|"]
    lines += [f"| {cell(str(s.get('step', '?')))} | {cell(describe(s))} |" for s in steps]
    return "\n".join(lines)


def read_steps(path: str) -> list[dict]:
    """The JSONL's steps; a line that is not a JSON object (a write cut short) becomes a failed step."""
    steps = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            step = json.loads(line)
        except ValueError:
            step = None
        steps.append(
            step if isinstance(step, dict) else {"step": f"line {n}", "error": f"not a JSON object: {line[:80]}"}
        )
    return steps


def main(path: str) -> None:
    print(table(read_steps(path)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl", help="the gpu_check.jsonl that benchmarks/gpu_check.sh wrote")
    main(ap.parse_args().jsonl)
