"""E*warp: the flow warping error of the video SR papers (after Lai et al. 2018), x 1000.

For each pair of consecutive output frames (t, t+1):
1. both frames are downsampled x0.5 (bilinear, align_corners=False) and padded to multiples of 8
   (edge replicate, split evenly between the sides, as RAFT's InputPadder);
2. RAFT-large ("things" weights, 20 iterations) gives the forward flow t -> t+1 and the backward
   flow t+1 -> t; the padding is cut off again;
3. a pixel of frame t is trusted ("non-occluded") unless the flows disagree there,
   |F + B(x + F)|^2 > 0.01 (|F|^2 + |B(x + F)|^2) + 0.5, or it lies on a motion boundary,
   |dF/dx|^2 + |dF/dy|^2 > 0.01 |F|^2 + 0.002 (forward differences);
4. frame t+1 is warped back onto frame t with the forward flow (grid_sample, bilinear, zeros
   outside), and the error is the squared difference summed over the three channels and over the
   trusted pixels, divided by their count (by all pixels when none is trusted).
A video's E*warp is the mean over its pairs x 1000; pixel values are in [0, 1]. Lower is steadier.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from dove_cli.metrics.raft import coords_grid, sample_pixels

FlowFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (img1, img2) [B,3,H,W] -> flow 1->2 [B,2,H,W]
SCALE = 1000.0


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """img [B, C, H, W] sampled at x + flow(x), flow [B, 2, H, W] in pixels (x, y); zeros outside."""
    b, _, h, w = flow.shape
    coords = coords_grid(b, h, w, flow.device).to(flow.dtype) + flow
    return sample_pixels(img, coords.permute(0, 2, 3, 1))


def trusted_mask(fw: torch.Tensor, bw: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] bool: pixels of frame t that are neither occluded nor on a motion boundary."""
    bw_at = warp(bw, fw)
    mag = lambda f: (f * f).sum(dim=1, keepdim=True)  # noqa: E731 - squared length
    occluded = mag(fw + bw_at) > 0.01 * (mag(fw) + mag(bw_at)) + 0.5
    dx = torch.zeros_like(fw)
    dy = torch.zeros_like(fw)
    dx[..., :, :-1] = fw[..., :, 1:] - fw[..., :, :-1]
    dy[..., :-1, :] = fw[..., 1:, :] - fw[..., :-1, :]
    boundary = mag(dx) + mag(dy) > 0.01 * mag(fw) + 0.002
    return ~(occluded | boundary)


def warp_error(frame1: torch.Tensor, frame2: torch.Tensor, fw: torch.Tensor, bw: torch.Tensor) -> torch.Tensor:
    """[B] warping error of frame2 warped onto frame1 (both [B, 3, H, W] in [0, 1]), not scaled."""
    keep = trusted_mask(fw, bw).to(frame1.dtype)
    diff = (warp(frame2, fw) - frame1) ** 2 * keep
    count = keep.sum(dim=(1, 2, 3))
    count = torch.where(count > 0, count, torch.full_like(count, frame1.shape[-1] * frame1.shape[-2]))
    return diff.sum(dim=(1, 2, 3)) / count


def downsample(x: torch.Tensor, factor: float = 0.5) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


MIN_FLOW_SIZE = 64  # RAFT's 4-level correlation pyramid at 1/8 needs at least 8 x 8 features


def pad8(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Replicate-pad H and W up to multiples of 8 (and at least 64), evenly on both sides; returns
    (padded, (left, right, top, bottom))."""
    h, w = x.shape[-2:]
    ph, pw = max((-h) % 8, MIN_FLOW_SIZE - h), max((-w) % 8, MIN_FLOW_SIZE - w)
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    return (F.pad(x, pad, mode="replicate") if any(pad) else x), pad


def unpad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x[..., pad[2] : h - pad[3], pad[0] : w - pad[1]]


class EWarp:
    """Per-pair E*warp of a frame stream; `flow` maps (img1, img2) -> flow 1 -> 2 (RAFT by default)."""

    name = "ewarp"

    def __init__(self, flow: FlowFn, factor: float = 0.5) -> None:
        self.flow = flow
        self.factor = factor
        self.prev: torch.Tensor | None = None

    def start_video(self) -> None:
        self.prev = None

    @torch.no_grad()
    def add(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> float | None:
        """pred [3, H, W] in [0, 1] -> E*warp of (previous frame, pred) x 1000, None for the first frame."""
        cur = downsample(pred[None].float(), self.factor)
        prev, self.prev = self.prev, cur
        if prev is None:
            return None
        padded, pad = pad8(torch.cat([prev, cur]))
        a, b = padded[:1], padded[1:]
        flows = unpad(self.flow(torch.cat([a, b]), torch.cat([b, a])), pad)  # forward and backward in one batch
        return float(warp_error(prev, cur, flows[:1], flows[1:])[0]) * SCALE


def raft_flow(model: torch.nn.Module, iters: int = 20) -> FlowFn:
    def flow(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return model(img1, img2, iters=iters)

    return flow
