"""The background reader: a consumer may stop at any point, and nothing waits forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from dove_cli.threads import read_ahead
from dove_cli.timing import StageTimer


def frames(n: int, error_at_end: bool = False) -> Iterator[int]:
    yield from range(n)
    if error_at_end:
        raise OSError("the file ends badly")


@pytest.mark.parametrize("error_at_end", [False, True])
@pytest.mark.parametrize("taken", [0, 1, 5])
def test_a_consumer_that_stops_early_is_not_kept_waiting(taken: int, error_at_end: bool) -> None:
    """A Ray task ends within a few frames of the file's end: the reader has read to the end while
    the queue is full, and must not wait to hand over the end (or an error) that no one will take."""
    got: list[int] = []
    depth = 8

    def consume() -> None:
        # the reader reads to the end with the queue full: taken + 1 items leave it, depth stay
        reader = read_ahead(frames(taken + 1 + depth, error_at_end), StageTimer(), depth=depth)
        for item in reader:
            if len(got) == taken:
                time.sleep(0.3)  # the reader has reached the end by now, its queue full
                break
            got.append(item)
        reader.close()  # what a `for` loop's owner does when it stops early

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(timeout=10)
    assert not consumer.is_alive(), "the reader's thread never ended"
    assert got == list(range(taken))


def test_the_end_and_errors_reach_a_consumer_that_reads_on() -> None:
    assert list(read_ahead(frames(20), StageTimer(), depth=4)) == list(range(20))
    with pytest.raises(OSError, match="ends badly"):
        list(read_ahead(frames(20, error_at_end=True), StageTimer(), depth=4))
