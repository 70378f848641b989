"""Blending and finishing: windows folded into output frames, then colour fix and code values.

Output frames are accumulated as running weighted means while windows overlap them (weights sum
to 1 at every pixel: windows.py), and finished (crop, colour fix, rounding to 8 or 16 bits, and
--compare's side by side) once no future window touches them.
"""

from __future__ import annotations

import numpy as np
import torch

from dove_cli.color_fix import ColorFix, apply_color_fix
from dove_cli.engine import HALF, to_model_range, upsample
from dove_cli.geometry import Resampler
from dove_cli.windows import Span


def blend_into(mean: torch.Tensor, covered: torch.Tensor, value: torch.Tensor, weight: torch.Tensor) -> None:
    """Fold `value` with `weight` into a running weighted mean, in place (`covered`: weight so far).

    A running mean (m += (v - m) * w / W) instead of sum-then-divide: where overlapping windows
    agree, the result is exactly that value, so tiles and chunks cannot add rounding seams.
    """
    covered += weight
    ratio = torch.where(covered > 0, weight / covered.clamp_min(1e-30), torch.zeros_like(weight))
    mean.add_((value - mean) * ratio)


class FrameBlender:
    """Output frames under construction: frame index -> weighted mean so far [3, H, W] float32."""

    def __init__(self) -> None:
        self.mean: dict[int, torch.Tensor] = {}
        self.weight: dict[int, float] = {}

    def add(self, span: Span, frames: torch.Tensor, weights: np.ndarray) -> None:
        """Fold a temporal window's frames [F, 3, H, W] in, frame t with weight weights[t - span.start]."""
        for i, t in enumerate(range(span.start, span.stop)):
            w = float(weights[i])
            if w == 0.0:
                continue
            if t in self.mean:
                self.weight[t] += w
                self.mean[t].add_(frames[i] - self.mean[t], alpha=w / self.weight[t])
            else:  # a view: the window's storage lives until its last frame is finished
                self.mean[t], self.weight[t] = frames[i], w

    def pop(self, t: int) -> torch.Tensor:
        """The finished frame t (every window that covers it has been added)."""
        self.weight.pop(t)
        return self.mean.pop(t)

    def discard(self, t: int) -> None:
        self.mean.pop(t, None)
        self.weight.pop(t, None)


def upsampled_reference(lq: torch.Tensor, scale: int, max_value: int) -> torch.Tensor:
    """The bilinear upscale of an LQ frame [3, h, w] (code values) in [0, 1], computed exactly as the
    model's input is (`upsample`, `to_model_range`), so that colour fix and `--compare` see what the
    model saw."""
    return (to_model_range(upsample(lq[None].float(), scale)[0], max_value) * 0.5 + 0.5).clamp(0, 1)


def compare_layout(rotation: int, mirrored: bool) -> tuple[int, bool]:
    """Where `--compare` puts the input so that players, which turn (and mirror) the file by its
    display matrix, show it left of the output: the dim of [3, H, W] the halves are joined along
    (the width; the height under a quarter turn) and whether the input comes first. A turn of 90
    degrees counter-clockwise shows the top at the left, -90 the bottom, 180 the right; a mirror
    swaps the sides again."""
    return (1 if rotation % 180 else 2), (rotation in (0, 90)) != mirrored


def finish_frame(frame: torch.Tensor, reference: torch.Tensor | None, color_fix: ColorFix) -> torch.Tensor:
    """Colour-fix a restored frame [3, H, W] against its reference (the upsampled input), both in
    [0, 1]; `reference` may be None without a colour fix."""
    if color_fix == "none":
        return frame
    assert reference is not None
    return apply_color_fix(color_fix, frame[None], reference[None])[0]


def side_by_side(input: np.ndarray, output: np.ndarray, compare: tuple[int, bool]) -> np.ndarray:
    """`--compare`'s frame: the input's upscale [H, W, 3] beside the output, as `compare_layout` says."""
    dim, input_first = compare
    return np.concatenate([input, output] if input_first else [output, input], axis=dim - 1)


def to_code_values(
    x: torch.Tensor, bits16: bool, scratch: torch.Tensor | None = None, truncate: bool = False
) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> [H, W, 3] uint8/uint16, rounded half up; or truncated, as the
    release casts (`truncate`, for `--parity`: half a level darker on average).

    x * top + 0.5 truncated is x * top rounded (ties up); one contiguous pass converts to integers
    (truncating). The [H, W, 3] result is a view of planar memory, which the writers take as it is
    (video_io.formats.rgb_frame): interleaving here cost 1 ms per 720p frame. Runs on the
    accumulator's device: only bytes cross to the host.
    scratch: a float32 buffer shaped like x to reuse (a fresh 11 MB tensor per 720p frame costs its
    page faults every time).
    """
    top = 65535.0 if bits16 else 255.0
    out_buffer = scratch if scratch is not None else torch.empty_like(x)
    if truncate:
        scaled = torch.mul(x, top, out=out_buffer).clamp_(0.0, top)
    else:  # x * top + 0.5 in one pass (the clamp: a rounding step outside)
        scaled = torch.add(HALF, x, alpha=top, out=out_buffer).clamp_(0.0, top + 0.5)
    codes = scaled.to(torch.int32 if bits16 else torch.uint8).cpu().numpy()
    return codes.astype(np.uint16 if bits16 else np.uint8, copy=False).transpose(1, 2, 0)


class Finisher:
    """Blended frames to what the writer takes: the padding cropped, colour-fixed against the
    upsampled input, rounded to 8 or 16 bits (truncated under --parity, as the release casts) and
    resampled to --size; --compare's input put beside them. The one way frames go from the model to
    the writer (a Ray worker's, into memory alike)."""

    def __init__(
        self,
        *,
        output_size: tuple[int, int],
        input_size: tuple[int, int],
        scale: int,
        max_value: int,
        color_fix: ColorFix,
        bits16: bool,
        truncate: bool,
        device: torch.device,
        compare: tuple[int, bool] | None,
        size: tuple[int, int] | None,
    ) -> None:
        """`output_size`/`input_size`: (h, w) of the picture without padding; `max_value`: the LQ
        frames' top code value; `device`: the blended frames'; `compare`: `compare_layout`, or None
        without --compare; `size`: --size's (h, w), or None."""
        self.out_h, self.out_w = output_size
        self.in_h, self.in_w = input_size
        self.scale, self.max_value, self.color_fix = scale, max_value, color_fix
        self.bits16, self.truncate, self.device, self.compare = bits16, truncate, device, compare
        self.scratch = torch.empty(3, self.out_h, self.out_w, device=device)  # reused per frame
        # --size: the finished frames (and --compare's input beside them) resampled, each with its own context
        self.sized, self.sized_input = (Resampler(size), Resampler(size)) if size else (_same, _same)

    def __call__(self, frame: torch.Tensor, lq: torch.Tensor) -> np.ndarray:
        """The output frame [H, W, 3] of a blended frame [3, hp * scale, wp * scale] in [0, 1] and its
        padded LQ frame [3, hp, wp] (code values)."""
        frame = frame[:, : self.out_h, : self.out_w]
        reference = None
        if self.color_fix != "none" or self.compare is not None:
            reference = upsampled_reference(lq[:, : self.in_h, : self.in_w].to(self.device), self.scale, self.max_value)
            if reference.shape[-2:] != frame.shape[-2:]:  # --parity's crop (release_output_size): black or cut
                pad = (0, max(0, self.out_w - reference.shape[-1]), 0, max(0, self.out_h - reference.shape[-2]))
                reference = torch.nn.functional.pad(reference, pad)[:, : self.out_h, : self.out_w]
        finished = finish_frame(frame, reference, self.color_fix)
        out = self.sized(to_code_values(finished, self.bits16, self.scratch, truncate=self.truncate))
        if self.compare is None:
            return out
        assert reference is not None
        return side_by_side(self.sized_input(to_code_values(reference, self.bits16, truncate=self.truncate)), out,
                            self.compare)  # fmt: skip


def _same(rgb: np.ndarray) -> np.ndarray:
    return rgb
