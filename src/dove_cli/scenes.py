"""Scene-cut detection on the LQ frames: online, cheap, no model.

A window that mixes two shots makes the model blend unrelated content across the cut (ghosting in
the frames around it), so the planner ends temporal chunks at cuts (windows.ChunkStream.cut).

Each frame is reduced to a small colour thumbnail (strided subsampling, then block averaging);
the score of a frame is the mean absolute difference to the previous thumbnail, in [0, 1]. A frame
starts a new shot when its score is above `threshold`, clearly above the recent motion level
(`ratio` x the mean of the previous `history` scores, so fast pans do not cut), and the current
shot is at least `min_shot` frames long. Decisions use only past frames, so the detector can run
while frames arrive, and the same frames always give the same cuts (needed for --resume).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

THUMB = 32  # thumbnail side (about; the aspect ratio is kept roughly)


def thumbnail(rgb: np.ndarray, side: int = THUMB) -> np.ndarray:
    """[H, W, 3] uint8/uint16 -> small [h, w, 3] float32 in [0, 1] (h, w about `side`)."""
    top = 65535.0 if rgb.dtype == np.uint16 else 255.0
    h, w = rgb.shape[:2]
    # Subsample to about 4 x side first: averaging a 4K frame in full would cost more than decoding it.
    small = rgb[:: max(1, h // (4 * side)), :: max(1, w // (4 * side))]
    hh, ww = small.shape[:2]
    by, bx = max(1, hh // side), max(1, ww // side)
    small = small[: hh // by * by, : ww // bx * bx].astype(np.float32)
    return small.reshape(hh // by, by, ww // bx, bx, 3).mean(axis=(1, 3)) / top


@dataclass
class SceneDetector:
    """Feed frames in order with `push`; it answers whether each frame starts a new shot."""

    threshold: float = 0.12  # mean absolute thumbnail change (0..1) that can be a cut
    ratio: float = 3.0  # ...and at least this many times the recent average change
    history: int = 8  # frames in that recent average
    min_shot: int = 8  # frames: no cut closer than this to the previous one (or the start)
    cuts: list[int] = field(default_factory=list)  # frame indices that start a new shot
    _prev: np.ndarray | None = field(default=None, repr=False)
    _scores: deque = field(default_factory=deque, repr=False)
    _index: int = field(default=0, repr=False)
    _shot_start: int = field(default=0, repr=False)

    def score(self, thumb: np.ndarray) -> float:
        """Change from the previous frame's thumbnail (0: identical, 1: black <-> white)."""
        if self._prev is None or self._prev.shape != thumb.shape:
            return 0.0
        return float(np.abs(thumb - self._prev).mean())

    def push(self, rgb: np.ndarray) -> bool:
        """True when this frame (the next in order) is the first frame of a new shot."""
        thumb = thumbnail(rgb)
        s = self.score(thumb)
        recent = sum(self._scores) / len(self._scores) if self._scores else 0.0
        i = self._index
        cut = (
            self._prev is not None
            and s >= self.threshold
            and s >= self.ratio * recent
            and i - self._shot_start >= self.min_shot
        )
        if cut:
            self.cuts.append(i)
            self._shot_start = i
            self._scores.clear()  # the motion level of the new shot starts afresh
        else:
            self._scores.append(s)
            if len(self._scores) > self.history:
                self._scores.popleft()
        self._prev = thumb
        self._index += 1
        return cut
