"""Shared fixtures: tiny random models of the real diffusers classes, and the shared demo clips."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pytest
import torch

from dove_cli.video_io import reader

pytest_plugins = ["conftest_media"]  # the synthetic media fixtures (tests/conftest_media.py)

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))

DEMO = Path(__file__).resolve().parent / "data" / "demo"  # copies of ../shared/data/demo (tests/data/README.md)


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """The OS's load average as an idle machine's: a CPU estimate says when the machine is busy
    (humanize.busy_note), which would make plans differ with the load of whoever runs the tests.
    Tests of that note set their own."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))


@pytest.fixture(autouse=True)
def finished_inputs(monkeypatch, request):
    """Inputs as a user's finished files: a clip a test makes a moment before its run is not taken for
    a recording still being written (`reader.written_ago`: a warning, and a wait of up to
    UNFINISHED_QUIET_S at the end of the run). Tests of that watch are marked live_input."""
    if request.node.get_closest_marker("live_input") is None:
        monkeypatch.setattr(reader, "written_ago", lambda path: math.inf)


@pytest.fixture(autouse=True)
def dove_log_levels():
    """`dove` commands run in-process set dove's loggers to INFO and leave them so: each test starts
    from the levels before it, so that what caplog holds does not depend on the tests run before it."""
    loggers = [logging.getLogger(name) for name in ["dove_cli", *logging.root.manager.loggerDict]
               if name.startswith("dove_cli")]  # fmt: skip
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def demo_clip(name: str = "003.mp4") -> Path:
    """One of the authors' real LQ demo clips, as they are in ../shared/data/demo."""
    path = DEMO / name
    assert path.is_file(), f"{path}: not a demo clip (001.mp4 ... 007.mp4)"
    return path


@pytest.fixture(scope="session")
def tiny_model():
    """A DOVE pipeline with a 1-layer transformer and a 4-level VAE of 8 channels (random init)."""
    from dove_cli.engine import build_random

    return build_random("tiny", seed=0, posterior="mode")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model) -> Path:
    """The tiny model saved in the diffusers layout, as `dove upscale --model DIR` loads it."""
    from dove_cli.engine import save_pretrained

    return save_pretrained(tiny_model, tmp_path_factory.mktemp("tiny-dove"))
