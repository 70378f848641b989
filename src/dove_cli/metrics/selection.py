"""Which metrics a `dove eval` runs: `--metrics` parsed, their published weights fetched before any
scoring (or left out with --skip-unavailable), and the per-frame metric objects."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import torch

from dove_cli.errors import ModelError, OptionError
from dove_cli.metrics import DEFAULT_METRICS, METRICS

log = logging.getLogger(__name__)


def eval_flag(name: str, option: str = "--metrics") -> str:
    """`dove eval`'s flag `name` (`strict`) as the command whose metrics flag is `option` spells it:
    `--strict` for `dove eval`, `--eval-strict` for `dove upscale --eval` (its `--eval-metrics`)."""
    return f"{option.removesuffix('metrics')}{name}"


def parse_metrics(
    spec: str | Sequence[str] | None, has_gt: bool, where: str = "PRED", option: str = "--metrics"
) -> list[str]:
    """Metric names from "psnr,ssim" (default: DEFAULT_METRICS, the full-reference ones only with GT).
    option: the flag the user typed the list with (`--eval-metrics` for `dove upscale --eval`)."""
    if spec is None:
        return [m for m in DEFAULT_METRICS if has_gt or not METRICS[m].full_reference]
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise OptionError(f"{option} is empty")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise OptionError(f"{option}: unknown metric '{unknown[0]}' (known: {', '.join(METRICS)})")
    needs_gt = [n for n in names if METRICS[n].full_reference]
    if needs_gt and not has_gt:
        nr = ", ".join(n for n, m in METRICS.items() if not m.full_reference)
        raise OptionError(
            f"{where}: {', '.join(needs_gt)} need{'s' if len(needs_gt) == 1 else ''} a GT (dove eval PRED GT);"
            f" without GT only no-reference metrics run ({nr})"
        )
    return list(dict.fromkeys(names))


def fetch_weights(
    names: Iterable[str],
    has_gt: bool,
    local: Mapping[str, str] | None = None,
    *,
    download: bool = True,
    option: str = "--metrics",
    skip: bool = False,
) -> dict[str, str]:
    """Find (or download) the published weight files of `names` that `local` does not replace,
    before any scoring or upscaling: the missing files are said first (all in one error), not after
    hours of work. The error's way on starts with the metrics that need no weights, in words that fit
    the run: PSNR and SSIM need none, but they need a GT, so without one that advice would fail too;
    then the way on without them (--skip-unavailable, as `option`'s command names it: `eval_flag`).
    skip (--skip-unavailable): no error; returns {metric: why} of the metrics that cannot run."""
    from dove_cli.metrics import pretrained

    keys = [k for k in pretrained.files_for(names) if k not in (local or {})]
    first = (
        f"{option} psnr,ssim needs none"
        if has_gt
        else "without a GT every metric needs weight files (psnr and ssim need none, but compare with a GT)"
    )
    first += f", or {eval_flag('skip-unavailable', option)} scores the others; "
    try:
        pretrained.fetch_all(keys, download=download, first="" if skip else first)
    except ModelError as exc:
        if not skip:
            raise
        lost = {k for k in keys if pretrained.cached(k) is None}
        skipped = {n: str(exc) for n in names if lost & set(pretrained.files_for([n]))}
        # the why under -v: the result's note says which were left out (once, not a warning as well)
        log.info("%s; left out (%s): %s", exc, eval_flag("skip-unavailable", option), ", ".join(skipped))
        return skipped
    return {}


def left_to_run(names: Sequence[str], skipped: Mapping[str, str]) -> list[str]:
    """`names` less the metrics `skipped` (--skip-unavailable: {metric: why}); none left to run is an
    error, saying why each cannot (`dove upscale --eval`: before the upscale)."""
    left = [n for n in names if n not in skipped]
    if not left:
        raise OptionError(f"none of the metrics can run here: {'; '.join(dict.fromkeys(skipped.values()))}")
    return left


class FrameMetric(Protocol):
    name: str

    def start_video(self) -> None: ...

    def add(self, pred: torch.Tensor, gt: torch.Tensor | None) -> float | None: ...


class PairScore:
    """A metric that compares each frame with its GT frame: fn(x, y) [B, 3, H, W] -> [B]."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.name, self.fn = name, fn

    def start_video(self) -> None:
        pass

    @torch.no_grad()
    def add(self, pred: torch.Tensor, gt: torch.Tensor | None) -> float:
        assert gt is not None
        return float(self.fn(pred[None], gt[None])[0])


class FrameScore:
    """A no-reference metric of each frame: fn(x) [B, 3, H, W] -> [B]."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.name, self.fn = name, fn

    def start_video(self) -> None:
        pass

    @torch.no_grad()
    def add(self, pred: torch.Tensor, gt: torch.Tensor | None) -> float:
        return float(self.fn(pred[None])[0])


def build_metrics(
    names: Iterable[str],
    device: torch.device,
    weights: Mapping[str, str] | None = None,
    download: bool = True,
) -> list[FrameMetric]:
    """The per-frame metric objects for `names`, with the published weights (fetched if missing)."""
    from dove_cli.metrics import psnr_ssim

    out: list[FrameMetric] = []
    for name in names:
        if name == "psnr":
            out.append(PairScore(name, psnr_ssim.psnr))
        elif name == "psnr_y":
            out.append(PairScore(name, psnr_ssim.psnr_y))
        elif name == "ssim":
            out.append(PairScore(name, psnr_ssim.ssim))
        elif name == "ssim_y":
            out.append(PairScore(name, psnr_ssim.ssim_y))
        elif name == "lpips":
            from dove_cli.metrics.lpips import published_lpips

            out.append(PairScore(name, published_lpips(weights, download=download).to(device).eval()))
        elif name == "dists":
            from dove_cli.metrics.dists import published_dists

            out.append(PairScore(name, published_dists(local_files=weights, download=download).to(device).eval()))
        elif name == "clipiqa":
            from dove_cli.metrics.clipiqa import published_clipiqa

            out.append(FrameScore(name, published_clipiqa(weights, download=download).to(device).eval()))
        elif name == "ewarp":
            from dove_cli.metrics.ewarp import EWarp, raft_flow
            from dove_cli.metrics.raft import published_raft

            out.append(EWarp(raft_flow(published_raft(weights, download=download).to(device))))
    return out
