"""`python tests/held_after.py N upscale ...`: dove's command line, its writer held once N output frames
are written, until SIGTERM or SIGHUP reaches dove (or HOLD_S pass), for the tests that stop a run part
way: on a loaded machine a 120-frame run could end before the test's signal arrived."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from dove_cli import cli
from dove_cli.cli import main
from dove_cli.threads import BackgroundWriter

HOLD_S = 30.0
HOLD_IGNORED_S = 10.0  # SIGHUP ignored (nohup): no stop comes; time enough for the test's SIGHUP to arrive


def held_after(frames: int) -> None:
    """Make every BackgroundWriter wait after its frame `frames - 1` until dove is told to stop."""
    write_one = BackgroundWriter._write_one

    def write_then_wait(self: BackgroundWriter, index: int, *rest: Any) -> None:
        write_one(self, index, *rest)
        if index + 1 == frames:
            ignored = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            until = time.monotonic() + (HOLD_IGNORED_S if ignored else HOLD_S)
            while not cli._stop.signum and time.monotonic() < until:
                time.sleep(0.01)

    BackgroundWriter._write_one = write_then_wait


if __name__ == "__main__":
    held_after(int(sys.argv[1]))
    main(sys.argv[2:])
