"""Decoding and encoding on background threads, so that the model never waits for either."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator, Iterable
from typing import Any

import numpy as np

from dove_cli.timing import StageTimer
from dove_cli.video_io import VideoWriter

# The stages counted on these threads: their time runs beside the main thread's stages, not after them.
THREAD_STAGES = ("decode", "encode")


def read_ahead(items: Iterable[Any], timer: StageTimer, depth: int = 8) -> Generator[Any, None, None]:
    """Iterate `items` in a background thread, `depth` items ahead (time spent counts as "decode")."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        """Queue `item`, unless the consumer stops first (then no one will take it): False."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            it = iter(items)
            while True:
                t0 = time.perf_counter()
                item = next(it, done)
                timer.seconds["decode"] += time.perf_counter() - t0
                # the end and an error too: a consumer that stopped early (a Ray task ends within
                # `depth` frames of the file's end) leaves the queue full, and joins this thread
                if not hand_over(item) or item is done:
                    return
        except BaseException as exc:  # handed to the consumer
            hand_over(exc)

    thread = threading.Thread(target=work, name="dove-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """Encodes on a background thread behind a bounded queue (time spent counts as "encode").

    `write(index, rgb, pts, end, captions)`: `end` closes a segment after this frame (resume.SegmentedWriter);
    `captions` are the input frame's closed captions (video_io.Frame.captions).
    """

    def __init__(self, writer: VideoWriter, timer: StageTimer, depth: int = 8) -> None:
        self.writer, self.timer = writer, timer
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dove-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self._write_one(*item)
                except BaseException as exc:
                    self.error = exc

    def _write_one(self, index: int, rgb: np.ndarray, pts: int | None, end: bool, captions: Any) -> None:
        """(writer thread) One frame, and the segment it closes (tests/die_after.py kills a run here)."""
        t0 = time.perf_counter()
        self.writer.write(rgb, pts, captions)
        if end:
            self.writer.end_segment()
        self.timer.seconds["encode"] += time.perf_counter() - t0

    def write(self, index: int, rgb: np.ndarray, pts: int | None, end: bool = False, captions: Any = None) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((index, rgb, pts, end, captions))

    def finish(self) -> None:
        """Wait until every frame is written; raise what the thread ran into."""
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Stop once the frames already queued are written, raising nothing (the run is failing)."""
        self.q.put(None)
        self.thread.join()
