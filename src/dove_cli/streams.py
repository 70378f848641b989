"""Text to stdout and stderr, without rich: library code writes through these too (`--manifest -`,
`--csv -`, `--eval-json -`), so they do not live in console.py, which is the CLI's.

`shown_line` (a name's control characters escaped), the SHOWN codec error handler (registered on
import: a name's undecodable bytes as `ls` writes them), and what to do when stdout is closed
(`check_stdout`) or its reader went away (`reader_gone`, `stop_writing`).
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import os
import re
import signal
import sys
from typing import Any

from dove_cli.errors import OutputError
from dove_cli.humanize import real_text

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown_line(text: str) -> str:
    """`text` on one line, as it is: control characters (a name's newline, carriage return, escape) as
    Python writes them, `\\r`. A terminal breaks the line at a newline and rich drops a carriage
    return, so `base.mp4\\r` (a script saved with Windows line endings) would read as `base.mp4`."""
    return CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


def _escaped(char: str) -> bool:
    """A byte the locale could not decode, as Python's surrogateescape holds it (0x80-0xff)."""
    return "\udc80" <= char <= "\udcff"


def _shown(exc: UnicodeError) -> tuple[bytes, int]:
    """What stdout and stderr write for text their encoding cannot hold (codec error handler SHOWN).
    A name the locale could not decode (LC_ALL=C: `\\udce5\\udcae...`): the name itself where the stream
    can hold it, else its own bytes, as `ls` and `cat` write them (a UTF-8 terminal shows it); bytes
    that are not UTF-8 as `\\xfc`. Anything else (an emoji under PYTHONIOENCODING=ascii): Python's escape,
    `\\U0001f389`, as stderr always wrote it."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    said = []
    for escaped, chars in itertools.groupby(exc.object[exc.start : exc.end], key=_escaped):
        text = "".join(chars)
        if not escaped:
            said.append(text.encode("ascii", "backslashreplace"))
            continue
        for undecoded, part in itertools.groupby(real_text(text), key=_escaped):
            name = "".join(part)
            if undecoded:
                said.append("".join(f"\\x{ord(c) - 0xDC00:02x}" for c in name).encode())
            else:
                try:
                    said.append(name.encode(exc.encoding))
                except UnicodeEncodeError:
                    said.append(name.encode("utf-8"))
    return b"".join(said), exc.end


SHOWN = "dove-shown"
codecs.register_error(SHOWN, _shown)


def stop_writing(stream: Any) -> None:
    """Write nothing more to `stream`, and nothing at exit either: what Python still holds for it goes to
    /dev/null (its reader is gone, or a full disk refused it once already)."""
    with contextlib.suppress(OSError, ValueError):  # (a stream with no descriptor: nothing held at exit)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def reader_gone(stream: Any) -> SystemExit:
    """stdout's reader went away (`| head`, `| true`) before its product was written: stop quietly with
    141, as a tool killed by SIGPIPE does (`yes | head -1`)."""
    stop_writing(stream)
    return SystemExit(128 + signal.SIGPIPE)


def check_stdout(what: str) -> None:
    """Before the work: a closed stdout (`>&-`, a service started without one) would lose `what`, the
    command's product, without a word (Python writes nowhere: sys.stdout is None)."""
    if sys.stdout is None:
        raise OutputError(f"stdout is closed (>&-), so {what} would be lost; send it to a file (> out.txt) or a pipe")
