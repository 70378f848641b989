"""The README's rows from a gpu_check.jsonl: one line per step, what it measured or why it failed.

    python benchmarks/gpu_table.py results/gpu_check.jsonl

A lease is minutes long: this turns its results into the table's words at once, the same way each time.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

GIB = 2**30


def describe(step: dict) -> str:
    """What one step measured, in the README's words (or what it said when it failed)."""
    if "error" in step:
        said = f": {step['said']}" if step.get("said") else ""
        return f"failed ({step['error']}){said}"
    if "exit" in step:  # the end-to-end upscale
        if step["exit"]:
            return f"failed (exit {step['exit']}): {step.get('said', '')}"
        busy = step["gpu_busy_mean_pct"]
        busy_text = f"GPU busy {busy}% ({step['busy_samples']} samples)" if busy is not None else "no GPU busy samples"
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in step.get("device_stages", {}).items() if v >= 0.01)
        return (
            f"{step['frames']} frames in {step['seconds']:.1f} s ({step['wall_s']} s wall with start-up); {busy_text}"
            + (f"; GPU stages: {stages}" if stages else "")
        )
    stages = step["stages"]
    return (
        f"{step['seconds']:.2f} s for {step['frames']} frames of {step['output_size']} ({step['fps']:.1f} fps); "
        f"transformer {stages.get('transformer', 0):.2f} s, VAE encode {stages.get('vae_encode', 0):.2f} s, "
        f"VAE decode {stages.get('vae_decode', 0):.2f} s; peak {step['peak_device_bytes'] / GIB:.1f} GiB "
        f"(plan: {step['est_peak_device_bytes'] / GIB:.1f} GiB)"
    )


def table(steps: list[dict]) -> str:
    devices = sorted({s["device_name"] for s in steps if "device_name" in s})
    lines = [f"GPU check, {datetime.date.today()}, on {', '.join(devices) or 'an unknown device'}", "",
             "| step | result |", "|---|---|"]  # fmt: skip
    lines += [f"| {s['step']} | {describe(s)} |" for s in steps]
    return "\n".join(lines)


def main(path: str) -> None:
    print(table([json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl", help="the gpu_check.jsonl that benchmarks/gpu_check.sh wrote")
    main(ap.parse_args().jsonl)
