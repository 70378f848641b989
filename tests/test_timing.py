"""StageTimer's device timing: stage spans from events, gathered without waiting during the run."""

from __future__ import annotations

import time

import pytest

from dove_cli.timing import StageTimer


class QueuedEvent:
    """A stand-in for torch.cuda.Event on a queue the test drains by hand (CPU has no events):
    `record` enqueues a marker; it completes, with its time, only when the 'GPU' reaches it."""

    queue: list[QueuedEvent] = []
    clock = 0.0

    def __init__(self) -> None:
        self.at: float | None = None

    def record(self) -> None:
        QueuedEvent.queue.append(self)

    @classmethod
    def run(cls, ms: float) -> None:
        """The GPU works `ms` on what was queued before the next marker, then passes that marker."""
        cls.clock += ms
        cls.queue.pop(0).at = cls.clock

    def query(self) -> bool:
        return self.at is not None

    def synchronize(self) -> None:
        while self.at is None:
            QueuedEvent.run(5.0)  # each marker still queued: 5 ms of work before it

    def elapsed_time(self, end: QueuedEvent) -> float:
        assert self.at is not None and end.at is not None
        return end.at - self.at


def test_device_seconds_come_from_events_and_do_not_wait_during_the_run():
    QueuedEvent.queue, QueuedEvent.clock = [], 0.0
    timer = StageTimer(event=QueuedEvent)
    with timer.stage("transformer"):
        time.sleep(0.01)
    assert timer._pending  # not complete yet: the host went on without waiting
    QueuedEvent.run(0.0)  # the GPU reaches the start marker...
    QueuedEvent.run(250.0)  # ...and spends 250 ms on the transformer
    with timer.stage("vae_decode"):
        pass
    with timer.stage("transformer"):
        pass
    QueuedEvent.run(0.0)
    QueuedEvent.run(40.0)  # the decode
    # the second transformer span is still queued: reading the totals waits for it (5 ms)
    assert timer.device_seconds == pytest.approx({"transformer": 0.255, "vae_decode": 0.04})
    assert timer.seconds["transformer"] >= 0.01  # host wall time, as before
    assert not timer._pending


def test_no_device_no_events():
    timer = StageTimer(device="cpu")
    with timer.stage("upsample"):
        pass
    assert timer.device_seconds == {} and "upsample" in timer.seconds


def test_peak_host_bytes_is_in_bytes():
    import psutil

    from dove_cli.timing import peak_host_bytes

    rss = psutil.Process().memory_info().rss
    assert rss <= peak_host_bytes() < 64 * rss  # a KiB figure would be 1024x too small
