"""The scripts in benchmarks/, run by hand: `--help` says what each one measures and stops
(`vram_plans.py --help` ran its whole 24 s benchmark)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_help_says_what_a_benchmark_measures_and_stops(script):
    summary = (ast.get_docstring(ast.parse(script.read_text())) or "").splitlines()[0]
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script.name}"), done.stdout[:300]
    assert " ".join(summary.split()) in " ".join(done.stdout.split()), (
        done.stdout
    )  # the docstring, as argparse wraps it
