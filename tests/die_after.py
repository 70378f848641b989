"""`python tests/die_after.py N upscale ...`: dove's command line, killed like a power loss (os._exit,
no clean-up) once N output frames are written, for the tests of --resume after a hard kill. Here,
not in dove: a run must never read a switch like this from its environment."""

from __future__ import annotations

import os
import sys
from typing import Any

from dove_cli.cli import main
from dove_cli.threads import BackgroundWriter


def dying_after(frames: int) -> None:
    """Make every BackgroundWriter exit the process once its frame `frames - 1` is written."""
    write_one = BackgroundWriter._write_one

    def write_then_die(self: BackgroundWriter, index: int, *rest: Any) -> None:
        write_one(self, index, *rest)
        if index + 1 >= frames:
            os._exit(1)

    BackgroundWriter._write_one = write_then_die


if __name__ == "__main__":
    dying_after(int(sys.argv[1]))
    main(sys.argv[2:])
