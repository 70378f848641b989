"""Per-stage accounting (decode, upsample, VAE encode, transformer, ...) and peak memory.

Host seconds are wall-clock time around each stage. On a CUDA device the model's work is queued
asynchronously, so wall time around a stage says little about it; there the timer also brackets
each stage with CUDA events and reports their elapsed time (`device_seconds`) without making the
host wait for the GPU during the run.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


class StageTimer:
    """Adds up seconds per named stage.

    sync: wait for the GPU at stage edges, so that host seconds are device seconds too (`dove bench`).
    device: with a CUDA device, also time each stage with events (`device_seconds`).
    """

    def __init__(
        self,
        sync: bool = False,
        device: torch.device | str | None = None,
        event: Callable[[], Any] | None = None,
    ) -> None:
        self.sync = sync
        self.seconds: dict[str, float] = defaultdict(float)
        self._device_ms: dict[str, float] = defaultdict(float)
        self._pending: list[tuple[str, Any, Any]] = []  # (stage, start, end) not yet known complete
        if event is None and device is not None and torch.device(device).type == "cuda":
            event = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
        self._event = event

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        start = self._record()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.sync and torch.cuda.is_available():
                torch.cuda.synchronize()
            self.seconds[name] += time.perf_counter() - t0
            if start is not None:
                self._pending.append((name, start, self._record()))
                self._fold(wait=False)

    def _record(self) -> Any:
        if self._event is None:
            return None
        event = self._event()
        event.record()
        return event

    def _fold(self, wait: bool) -> None:
        """Add finished event pairs to the totals; with `wait`, wait for the last one first."""
        if wait and self._pending:
            self._pending[-1][2].synchronize()
        still = []
        for name, start, end in self._pending:
            if end.query():
                self._device_ms[name] += start.elapsed_time(end)
            else:
                still.append((name, start, end))
        self._pending = still

    @property
    def device_seconds(self) -> dict[str, float]:
        """Device time per stage (empty without a CUDA device); waits for queued work once."""
        self._fold(wait=True)
        return {name: ms / 1000 for name, ms in self._device_ms.items()}


NULL_TIMER = StageTimer()


def peak_host_bytes() -> int:
    """Peak resident set size of this process so far (never below the present one: Linux updates
    its high-water mark lazily, so ru_maxrss can trail the current RSS by a few hundred KB)."""
    import psutil

    if sys.platform == "win32":
        return int(psutil.Process().memory_info().peak_wset)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB
    return max(peak, int(psutil.Process().memory_info().rss))


def peak_gpu_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return 0
