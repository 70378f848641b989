"""One temporal window through the model, tile by tile: the spatial half of the window plan.

`TiledRestorer.restore_window` cuts each tile's LQ crop, upsamples it, runs the model and blends
the tiles into one [F, 3, H, W] window (--parity: cuts each tile from the whole frames upsampled on
the CPU, as the release does). When the device runs out of memory it retries the window
with half the tile (down to MIN_TILE), then with the model offloaded, and reports each change so
that a resumed run tiles every window as this one did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from dove_cli import release_layout
from dove_cli.blend import blend_into
from dove_cli.engine import Restorer, to_model_range, upsample
from dove_cli.errors import ModelError, OutOfMemory
from dove_cli.plan import MIN_TILE
from dove_cli.timing import StageTimer
from dove_cli.windows import BlendMode, Span, axis_weights, plan_tiles

log = logging.getLogger(__name__)


def lq_window(frames: torch.Tensor, ys: Span, xs: Span, scale: int) -> tuple[torch.Tensor, int, int]:
    """The LQ crop of frames [F, 3, hp, wp] whose upsampling covers an output window exactly, with a
    1 px context margin.

    Returns ([F, 3, lh, lw] view, row offset, column offset) of the window inside the upsampled crop.
    """
    hp, wp = frames.shape[-2:]
    ly0, ly1 = max(ys.start // scale - 1, 0), min(-(-ys.stop // scale) + 1, hp)
    lx0, lx1 = max(xs.start // scale - 1, 0), min(-(-xs.stop // scale) + 1, wp)
    return frames[:, :, ly0:ly1, lx0:lx1], ys.start - ly0 * scale, xs.start - lx0 * scale


TileChange = Callable[[int, int], None]  # (first frame of the window, new tile)


class TiledRestorer:
    """Restores whole-frame temporal windows with a model that may only fit tiles of them."""

    def __init__(
        self,
        model: Restorer,
        *,
        scale: int,
        size: tuple[int, int],
        tile: int,
        tile_overlap: int,
        blend: BlendMode,
        seed: int,
        out_device: torch.device,
        timer: StageTimer,
        max_value: int = 255,
        tile_changes: Sequence[tuple[int, int]] = (),
        on_tile_change: TileChange | None = None,
        parity: bool = False,
    ) -> None:
        """size: the upsampled padded frame (H, W); out_device: where the blended windows go;
        tile_changes: (first frame, tile) of an interrupted run's out-of-memory shrinks, to repeat;
        parity: the release's tiles and valid-region cut (release_layout), its arithmetic in the
        model, and no smaller tiles after an out-of-memory error (that would change the picture)."""
        self.model, self.scale, self.size = model, scale, size
        self.tile_overlap, self.blend, self.seed, self.timer = tile_overlap, blend, seed, timer
        self.planned_tile = tile
        self.out_device = out_device
        self.offload_used = getattr(model, "offload", "none")  # as placed: a model without weights has none
        self.retries = 0
        self.max_value = max_value  # code value of white: 255, or 65535 for 16-bit frames
        self.changes = [tuple(c) for c in tile_changes]
        self.on_tile_change = on_tile_change
        self.parity = parity
        self._gen: torch.Generator | None = None
        self._set_tiles(tile)

    def _set_tiles(self, tile: int) -> None:
        if self.parity:
            (h, w), overlap = self.size, self.tile_overlap
            self.ys, self.xs = release_layout.check_release_tiles(h, w, tile, overlap)
            wy = [release_layout.valid_weights(s, h, overlap) for s in self.ys]
            wx = [release_layout.valid_weights(s, w, overlap) for s in self.xs]
        else:
            ys, xs, overlap = plan_tiles(*self.size, tile, self.tile_overlap, self.model.spatial_multiple)
            self.ys, self.xs = ys, xs
            wy, wx = axis_weights(ys, overlap, self.blend), axis_weights(xs, overlap, self.blend)
        # float64 on the blending device once per layout: each tile's weight is an outer product there
        # (the same numbers as numpy's), not a host array uploaded per tile
        self.wy = [torch.from_numpy(w).to(self.out_device) for w in wy]
        self.wx = [torch.from_numpy(w).to(self.out_device) for w in wx]
        self.tile = tile

    def restore_window(self, frames: list[torch.Tensor], span: Span) -> torch.Tensor:
        """Padded LQ frames [3, hp, wp] of one temporal window -> [F, 3, H, W] in [0, 1] on out_device."""
        scheduled = [tile for start, tile in self.changes if start <= span.start]
        if scheduled and scheduled[-1] != self.tile:  # a resume repeats the interrupted run's shrinks
            self._set_tiles(scheduled[-1])
        while True:
            try:
                return self._restore_tiles(frames, span)
            except torch.OutOfMemoryError:
                pass
            self._shrink(span)  # out of the except block: the failed attempt's tensors are freed by now

    def _change_tiles(self, span: Span, tile: int) -> None:
        """Tile from this window on, reported so that a resume repeats the change."""
        self._set_tiles(tile)
        self.changes.append((span.start, tile))
        if self.on_tile_change:
            self.on_tile_change(span.start, tile)

    def _shrink(self, span: Span) -> None:
        """After a device OOM: smaller tiles, then offload, then give up with a clear message."""
        self.retries += 1
        if self.model.device.type == "cuda":
            torch.cuda.empty_cache()
        current = self.tile or max(self.size)
        m = self.model.spatial_multiple
        if current > MIN_TILE and not self.parity:
            new = max(MIN_TILE, (current // 2) // m * m)
            log.warning("out of GPU memory at frames %d-%d; retrying with --tile %d", span.start, span.stop, new)
            self._change_tiles(span, new)
            return
        if self.offload_used == "none" and self.model.can_offload():
            where = "" if self.parity else " at the smallest tile"
            log.warning("out of GPU memory%s; retrying with --offload model and the planned tiles", where)
            self.model.offload_model()
            self.offload_used = "model"
            if self.planned_tile != self.tile:  # 11 GB of weights left the GPU: the planned tiles may fit now
                self._change_tiles(span, self.planned_tile)
            return
        if self.parity:  # smaller tiles would be another layout, so another picture
            raise OutOfMemory(
                f"out of GPU memory with --parity --tile {self.tile} and --offload {self.offload_used}; --parity keeps "
                "the layout it is given: choose a smaller --tile or --chunk, or --offload sequential"
            )
        raise OutOfMemory(
            f"out of GPU memory even with --tile {current} and --offload {self.offload_used}; "
            "try --quantize nf4, --offload sequential or a shorter --chunk"
        )

    def _restore_tiles(self, frames: list[torch.Tensor], span: Span) -> torch.Tensor:
        """The window tile by tile, with no host synchronisation between tiles: the LQ frames go to
        the device once, weights are made there, and the finite-output check is read once at the end
        (a host read per tile would leave the GPU idle while the next tile is prepared)."""
        with self.timer.stage("upsample"):
            lq = torch.stack(frames)  # [F, 3, hp, wp] code values
            if self.parity:  # the model's input, whole frames: [F, 3, H, W] in [-1, 1] on the CPU (`_tile_input`)
                lq = to_model_range(upsample(lq.float(), self.scale), self.max_value)
            else:
                lq = lq.to(self.model.device)  # one upload
        finite: list[torch.Tensor] = []  # per tile: all of its output finite (device booleans)
        if len(self.ys) * len(self.xs) == 1:  # one tile, weight 1 everywhere: its output is the result
            res = self._restore_tile(lq, self.ys[0], self.xs[0], finite)
            self._check_finite(finite, span)
            return res.to(self.out_device)
        out = torch.zeros(len(frames), 3, *self.size, dtype=torch.float32, device=self.out_device)
        covered = torch.zeros(*self.size, dtype=torch.float32, device=self.out_device)  # weight so far
        for iy, ys in enumerate(self.ys):
            for ix, xs in enumerate(self.xs):
                res = self._restore_tile(lq, ys, xs, finite)
                with self.timer.stage("blend"):
                    weight = (self.wy[iy][:, None] * self.wx[ix][None, :]).float()
                    region = (slice(ys.start, ys.stop), slice(xs.start, xs.stop))
                    blend_into(out[:, :, region[0], region[1]], covered[region], res.to(self.out_device), weight)
        self._check_finite(finite, span)
        return out

    def _check_finite(self, finite: list[torch.Tensor], span: Span) -> None:
        """One host read per window: no tile's output had NaN/Inf."""
        if not finite or bool(torch.stack(finite).all()):
            return
        hint = " (fp16 overflows in this model: use --dtype bf16)" if self.model.dtype == torch.float16 else ""
        raise ModelError(f"the model's output for frames {span.start}-{span.stop - 1} is not finite (NaN/Inf){hint}")

    def _generator(self, device: torch.device) -> torch.Generator:
        """The window's noise stream, seeded alike for every tile (the release: one stream for all);
        one generator re-seeded, not a new one per tile."""
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device)
        return self._gen.manual_seed(self.seed)

    def _tile_input(self, lq: torch.Tensor, ys: Span, xs: Span) -> torch.Tensor:
        """A tile's model input, [1, 3, F, h, w] in [-1, 1] on the model's device, from the window's
        LQ frames [F, 3, hp, wp] on the model's device (--parity: its model input, `_restore_tiles`).

        dove upsamples the tile's own LQ crop, code values as the release does. For x1, x2, x4 and x8
        that equals the same crop of the whole frame upsampled (the weights are multiples of 1/(2s),
        exact in float32), for x3, x5, x6, x7 not quite: a crop's coordinates are rounded otherwise
        (thousands of values a level off at x3 and x5 with --model bilinear). The release upsamples
        the whole video on the CPU before any window goes to the device, so --parity cuts its tiles
        from whole frames upsampled on the CPU: exact for every scale, at the cost of that window in
        host memory (F x H x W x 12 bytes)."""
        if self.parity:  # a copy where tiles overlap: the model may work in place
            tiled = len(self.ys) * len(self.xs) > 1
            tile = lq[:, :, ys.start : ys.stop, xs.start : xs.stop].to(self.model.device, copy=tiled)
            return tile.permute(1, 0, 2, 3)[None]
        crop, oy, ox = lq_window(lq, ys, xs, self.scale)
        up = upsample(crop.float(), self.scale)[:, :, oy : oy + ys.length, ox : ox + xs.length]
        return to_model_range(up, self.max_value).permute(1, 0, 2, 3)[None]  # [1, 3, F, H, W]

    def _restore_tile(self, lq: torch.Tensor, ys: Span, xs: Span, finite: list[torch.Tensor]) -> torch.Tensor:
        """One window through the model: its LQ frames (`_tile_input`) -> [F, 3, h, w] in [0, 1];
        appends whether it is all finite to `finite` (models that may overflow)."""
        with self.timer.stage("upsample"):
            video = self._tile_input(lq, ys, xs)  # the crop and its upsampling are not held past here
        gen = self._generator(self.model.device)
        if self.parity:
            res = self.model.restore(video, generator=gen, timer=self.timer, release=True)
        else:
            res = self.model.restore(video, generator=gen, timer=self.timer)
        if self.model.may_overflow:
            finite.append(torch.isfinite(res).all())
        return res[0].permute(1, 0, 2, 3)


def pad_frame(rgb: np.ndarray, hp: int, wp: int, mode: str) -> torch.Tensor:
    """A decoded frame [h, w, 3] -> [3, hp, wp], padded on the right/bottom (zeros, or repeating the
    edge); 16-bit frames as int32 (torch has no uint16 arithmetic).

    In numpy, on one thread: a small copy run on torch's thread pool waits, at every op, for a pool
    thread that the encoder's threads keep off the CPU (measured: 2.5 s of a 320-frame 720p job).
    """
    h, w, _ = rgb.shape
    if (h, w) != (hp, wp):
        rgb = np.pad(rgb, ((0, hp - h), (0, wp - w), (0, 0)), mode="constant" if mode == "zero" else "edge")
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    return torch.from_numpy(chw.astype(np.int32) if chw.dtype == np.uint16 else chw)
