"""DOVER and FasterVQA: optional, video-level, from their authors' own packages.

Neither is on PyPI (the PyPI package named `dover` is an unrelated version-number tool), their
code imports torchvision, decord, OpenCV and scikit-video at import time, and their licences
(S-Lab, non-commercial) differ from ours, so `dove` does not ship or fetch them. When a user has
installed VQAssessment/DOVER from its repository and downloaded DOVER.pth, `--metrics dover`
runs it on each prediction video with the settings of its `dover.yml` (LSVQ-1080p test views)
and reports the fused overall score in [0, 1] (the number the DOVE paper lists). The weights file
is read with `torch.load(weights_only=True)`. Everything else gets a one-line explanation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from dove_cli.errors import InputError, OptionError

DOVER_HOWTO = (
    "DOVER is optional and not on PyPI (`pip install dover` is an unrelated tool): install it from"
    " github.com/VQAssessment/DOVER (`pip install -e .` in a clone; it needs torchvision and decord),"
    " download DOVER.pth, and pass it as --weights dover=DOVER.pth (or set DOVE_DOVER_WEIGHTS); note its"
    " non-commercial licence"
)
FASTERVQA_HOWTO = (
    "FasterVQA is not wired into `dove eval` yet: run it from github.com/VQAssessment/FAST-VQA-and-FasterVQA"
    " (`python vqa.py -m FasterVQA -v VIDEO`); it needs torchvision and decord and has a non-commercial licence"
)

# dover.yml, data "val-l1080p" (the views DOVER's own evaluate scripts use)
DOVER_VIEWS = {
    "technical": dict(
        fragments_h=7, fragments_w=7, fsize_h=32, fsize_w=32, aligned=32, clip_len=32, frame_interval=2, num_clips=3
    ),
    "aesthetic": dict(size_h=224, size_w=224, clip_len=32, frame_interval=2, t_frag=32, num_clips=1),
}
DOVER_MODEL = dict(
    backbone={
        "technical": {"type": "swin_tiny_grpb", "checkpoint": True, "pretrained": None},
        "aesthetic": {"type": "conv_tiny"},
    },
    backbone_preserve_keys="technical,aesthetic",
    divide_head=True,
    vqa_head={"in_channels": 768, "hidden_channels": 64},
)
DOVER_MEAN, DOVER_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _has_dover() -> bool:
    try:
        return importlib.util.find_spec("dover") is not None and importlib.util.find_spec("dover.models") is not None
    except (ImportError, ValueError):
        return False


def check(name: str, dover: Path | None = None) -> None:
    """Raise OptionError with the how-to when metric `name` cannot run here (`dover`: DOVER's weights
    file, as `pretrained.local_weights` resolves it)."""
    if name == "fastervqa":
        raise OptionError(f"--metrics fastervqa: {FASTERVQA_HOWTO}")
    if name == "dover":
        if not _has_dover():
            raise OptionError(f"--metrics dover: the DOVER package is not installed; {DOVER_HOWTO}")
        if dover is None or not dover.is_file():
            raise OptionError(f"--metrics dover: DOVER.pth not found ({dover or 'not given'}); {DOVER_HOWTO}")


class DOVERScorer:
    """The fused DOVER score of a video file (untested here: needs the DOVER package and weights)."""

    name = "dover"

    def __init__(self, weights_path: Path, device: torch.device) -> None:
        from dover.models import DOVER

        self.device = device
        self.model = DOVER(**DOVER_MODEL).to(device).eval()
        self.model.load_state_dict(torch.load(str(weights_path), map_location=device, weights_only=True))

    @torch.no_grad()
    def score(self, path: Path) -> float:
        from dover.datasets import UnifiedFrameSampler, spatial_temporal_view_decomposition

        if path.is_dir():
            raise InputError(f"{path}: DOVER reads video files, not frame folders")
        samplers = {}
        for kind, o in DOVER_VIEWS.items():
            if "t_frag" in o:
                samplers[kind] = UnifiedFrameSampler(
                    o["clip_len"] // o["t_frag"], o["t_frag"], o["frame_interval"], o["num_clips"]
                )
            else:
                samplers[kind] = UnifiedFrameSampler(o["clip_len"], o["num_clips"], o["frame_interval"])
        views, _ = spatial_temporal_view_decomposition(str(path), DOVER_VIEWS, samplers)
        mean, std = torch.tensor(DOVER_MEAN), torch.tensor(DOVER_STD)
        for kind, v in views.items():
            clips = DOVER_VIEWS[kind]["num_clips"]
            v = ((v.permute(1, 2, 3, 0) - mean) / std).permute(3, 0, 1, 2)
            views[kind] = v.reshape(v.shape[0], clips, -1, *v.shape[2:]).transpose(0, 1).to(self.device)
        aesthetic, technical = (float(r.mean()) for r in self.model(views))
        fused = (aesthetic - 0.1107) / 0.07355 * 0.6104 + (technical - 0.08285) / 0.03774 * 0.3896
        return float(1 / (1 + np.exp(-fused)))
