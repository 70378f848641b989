"""Video quality metrics on plain torch, with pyiqa's definitions (no torchvision, no pyiqa).

One module per metric: `psnr_ssim`, `lpips`, `dists` (shared with stage-2 training), `clipiqa`,
`ewarp` (with `raft`), `vqa` (DOVER / FasterVQA, optional). `pretrained` fetches the published
weight files, verified; `evaluate` streams videos through them (`dove eval`), with `pairing` (which
prediction goes with which GT), `timing` (their frames' times), `selection` (which metrics, their
weights) and `report` (the scores, --json, --csv, --plot); `request` is `dove upscale --eval`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    full_reference: bool  # needs GT
    higher_better: bool
    label: str  # for tables and plots
    per_frame: bool = True  # False: one value per video (DOVER, FasterVQA)


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("psnr", True, True, "PSNR (dB)"),
        MetricInfo("ssim", True, True, "SSIM"),
        MetricInfo("lpips", True, False, "LPIPS"),
        MetricInfo("dists", True, False, "DISTS"),
        MetricInfo("clipiqa", False, True, "CLIP-IQA"),
        MetricInfo("ewarp", False, False, "E*warp (x1e-3)"),
        MetricInfo("dover", False, True, "DOVER", per_frame=False),
        MetricInfo("fastervqa", False, True, "FasterVQA", per_frame=False),
        MetricInfo("psnr_y", True, True, "PSNR-Y (dB)"),  # VSR papers' (BasicSR's), not in the DOVE paper
        MetricInfo("ssim_y", True, True, "SSIM-Y"),  # the same papers' SSIM (BasicSR's), not pyiqa's `ssim`
    )
}
DEFAULT_METRICS = ("psnr", "ssim", "lpips", "dists", "clipiqa", "ewarp")

__all__ = ["DEFAULT_METRICS", "METRICS", "MetricInfo"]
