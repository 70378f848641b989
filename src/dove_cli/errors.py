"""One exception type per kind of user mistake; the CLI turns each into a one-line message and its
exit code (README, "Exit codes"): 2 fix the command or the input, 3 scoring failed after the output
was written, 4 some files of a folder failed, 75 retry later. Interrupted, which is not a mistake
(a KeyboardInterrupt), becomes its line and exit 130 (SIGTERM: 143, SIGHUP: 129)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

# Who reads dove's advice on what to do next: a Python program (in keywords: `resume=True`), unless a
# `dove` command is running (in flags: `--resume`), which says so around its own work (cli.Commands).
_COMMAND_LINE: ContextVar[bool] = ContextVar("dove_cli_command_line", default=False)


# Whether the advice is for a folder run (upscale_batch, `dove upscale DIR`), which continues an
# unfinished file without being asked (no --resume), and is run again as a whole (batch.upscale_batch).
_FOLDER_RUN: ContextVar[bool] = ContextVar("dove_cli_folder_run", default=False)


@contextmanager
def _holding(flag: ContextVar[bool]) -> Iterator[None]:
    """`flag` is set in this block (and in what it calls), and as before after it."""
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


def command_line() -> AbstractContextManager[None]:
    """Advice given in this block is for a user at the command line."""
    return _holding(_COMMAND_LINE)


def folder_run() -> AbstractContextManager[None]:
    """Advice given in this block is for a folder run."""
    return _holding(_FOLDER_RUN)


def in_folder_run() -> bool:
    return _FOLDER_RUN.get()


def at_command_line() -> bool:
    """Whether a `dove` command is running (not a Python program calling dove's functions)."""
    return _COMMAND_LINE.get()


def spoken() -> tuple[bool, bool]:
    """Who advice given now is for (command line, folder run): for another process (a Ray worker)
    to give its advice alike (`spoken_as`)."""
    return at_command_line(), in_folder_run()


@contextmanager
def spoken_as(how: tuple[bool, bool]) -> Iterator[None]:
    """Advice given in this block is for whom `how` (spoken()) says."""
    with command_line() if how[0] else contextlib.nullcontext(), folder_run() if how[1] else contextlib.nullcontext():
        yield


def advice(command: str, python: str) -> str:
    """`command` (the command line's words, its flags) in a `dove` command, else `python` (keywords)."""
    return command if _COMMAND_LINE.get() else python


def as_given(key: str, value: Any) -> str:
    """An option as the reader writes it (advice): a fingerprint entry, a change to try: `--tile auto`
    (tile='auto' in Python), not tile -1."""
    if key.startswith("input"):
        return f"{key.replace('_', ' ')} {value}"
    flag = "--" + key.replace("_", "-")
    if key in ("tile", "chunk") and value == -1:  # options.AUTO
        value = "auto"
    elif isinstance(value, bool) or value is None:  # None: not given, its default (`no --crf`)
        return advice(flag if value else f"no {flag}", f"{key}={value!r}")
    return advice(f"{flag} {value}", f"{key}={value!r}")


def run_again(flags: list[str], keywords: list[str], to: str = "to continue") -> str:
    """How to run it again, as the reader runs dove (errors.advice): `run the same command with FLAGS
    TO` at the command line, `call upscale() again with KEYWORDS TO` in Python; in a folder run, which
    continues unfinished files unasked, `call upscale_batch() again` without resume=True."""
    if in_folder_run() and not flags:
        return folder_resume_hint(to)
    to = f" {to}" if to else ""
    command = f"run the same command with {' '.join(flags)}{to}" if flags else f"run the same command again{to}"
    resume = ["resume=True"] if "--resume" in flags or not in_folder_run() else []  # (a folder's --overwrite run's)
    call = "upscale_batch()" if in_folder_run() else "upscale()"
    return advice(command, f"call {call} again with {', '.join([*resume, *keywords])}{to}")


def folder_resume_hint(to: str = "to continue") -> str:
    """A folder run's: the same run again (no --resume: it continues unfinished files unasked)."""
    to = f" {to}" if to else ""
    return advice(f"run the same command again{to} (finished files are skipped)",
                  f"call upscale_batch() again{to} (finished files are skipped)")  # fmt: skip


def changed_hint() -> str:
    """After an option change: back to the saved run's options (with --resume, which a folder run
    does not need), or start over."""
    if in_folder_run():
        return advice("run the same command as before, or use --overwrite to start over (it redoes finished files "
                      "too)", "call upscale_batch() with the options as before, or with overwrite=True to start "
                      "over (it redoes finished files too)")  # fmt: skip
    return advice("run the same command as before with --resume, or use --overwrite to start over",
                  "call upscale() with the options as before and resume=True, or with overwrite=True to start "
                  "over (or dove_cli.discard_work(output) to drop what was saved)")  # fmt: skip


class DoveError(Exception):
    """Base for errors caused by the user's input or environment (never a bug in dove)."""

    exit_code = 2


class InputError(DoveError):
    """The input file is missing, unreadable, not a video, or has no usable frames."""


class InputChanged(InputError):
    """The input's size or modification time changed while a run read it (a file still being copied
    or recorded): its output would hold only the frames there were. Nothing is kept; a later run of
    the same command makes it whole."""


class BrokenImage(InputError):
    """An image of a sequence cannot be read, found as a run reaches it: a resume would stop at the
    same image, and once it is replaced the input is another, so nothing is kept."""


class DecodeError(InputError):
    """The input stops decoding part way (truncated or damaged): --ignore-decode-errors reads past it."""


class OutputError(DoveError):
    """The output path exists, is unwritable, has an unknown extension, or the disk is full."""


class MuxError(OutputError):
    """The muxer refused a packet of one stream (`stream`: "audio", "subtitle", "video"): the same
    command fails the same way, so the advice is to leave that stream out, not to run it again."""

    def __init__(self, message: str, stream: str = "") -> None:
        super().__init__(message)
        self.stream = stream


class TempFailure(OutputError):
    """The command is right but the machine is not ready for it: disk full, a file-size limit, the output
    being written by another run. The same command later continues where this one stopped: exit 75
    (sysexits' EX_TEMPFAIL), which job schedulers and scripts know as "try again"."""

    exit_code = 75


class FileTooLarge(TempFailure):
    """A write past the file-size limit (`ulimit -f`) or the file system's largest file (FAT32: 4 GiB):
    room on the disk does not help; a higher limit or another file system does. `written`: the video
    frames and bytes the file took before the limit stopped it ((0, 0): not known), what the output's
    size is told from when no segment was kept (resume.Session.annotate_failure)."""

    reason = "file too large for the file system or the file-size limit (ulimit -f)"

    def __init__(self, message: str, written: tuple[int, int] = (0, 0)) -> None:
        super().__init__(message)
        self.written = written

    @staticmethod
    def advice(size: str = "") -> str:
        """What to change, the output's `size` (said) first where it is known: the limit, not free room."""
        about = f"the output will be about {size}: " if size else ""
        return f"{about}raise the file-size limit (ulimit -f) or write to a file system that allows files that large"


class OutputBusy(TempFailure):
    """Another dove run holds the output's lock (it is writing that file now). In a folder run the
    file is left to that run, not failed."""


class PartlyFailed(DoveError):
    """A folder run where some files failed and others are done (or were done before): exit 4, so that
    a script can tell a partial result from a command that did nothing."""

    exit_code = 4


class OptionError(DoveError):
    """An option value is invalid (tile smaller than overlap, chunk not 4k+1, ...)."""


class ModelError(DoveError):
    """A model folder or hub repo is missing, incomplete, corrupted or unreachable."""


class TrainingRunGiven(ModelError):
    """A `dove train` run or checkpoint given where a model folder is wanted (the fix: export it)."""


class DownloadError(ModelError):
    """A download failed: network, authentication, checksum, disk space."""


class DownloadLater(DownloadError):
    """A download that the same command finishes later: the network or the hub is down, the disk
    full, a file cut short. Exit 75, as for other temporary failures (TempFailure)."""

    exit_code = 75


class OutOfMemory(DoveError):
    """Ran out of device memory even at the smallest tile and with offload."""


class ScoringFailed(DoveError):
    """`dove upscale --eval`: the output was written, scoring it failed. Its own exit status (3), so
    that a script can tell a good output from a failed run."""

    exit_code = 3


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, on which `dove` (and training, StepBoundary) stops as on Ctrl-C: its exit code
    is 128 + the signal's number (143, 129), as a shell reports a process that signal killed."""

    def __init__(self, signum: int) -> None:
        super().__init__()  # (no text: said as a bare Ctrl-C is, "interrupted")
        self.exit_code = 128 + signum


class Interrupted(KeyboardInterrupt):
    """Stopped by Ctrl-C (or SIGTERM, SIGHUP); the finished segments, or a training checkpoint, are kept
    for --resume.

    A KeyboardInterrupt, not a DoveError: a script that skips a bad file with `except DoveError` must
    still stop on Ctrl-C. The CLI says its one line and exits 130 (SIGTERM: 143, SIGHUP: 129).
    `exit_code` is the stop's it is raised for (`except KeyboardInterrupt: raise Interrupted(...)`:
    a StopSignal's), so that a manifest records what the process exits with."""

    exit_code = 130

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        stop = sys.exc_info()[1]  # the stop being handled where this one is made, if any
        if isinstance(stop, KeyboardInterrupt):
            self.exit_code = getattr(stop, "exit_code", 130)


# Marks what the caller's own `progress=` raised (a GUI's cancel): a stop, as Ctrl-C is, not a failure of the
# file. An attribute of the exception itself (every exception has a __dict__): no registry to keep.
_CANCEL_MARK = "_dove_cancel"


def noting_cancels(progress: Callable[[Any], None]) -> Callable[[Any], None]:
    """`progress`, a Python caller's, with what it raises noted as the caller's cancel (`cancelled`) and
    raised on as it is. A `dove` command's own bar is not a caller's: what it raises is a bug."""

    def call(p: Any) -> None:
        try:
            progress(p)
        except BaseException as exc:
            if not _COMMAND_LINE.get():
                with contextlib.suppress(AttributeError):  # (a class that refuses new attributes)
                    setattr(exc, _CANCEL_MARK, True)
            raise

    return call


def cancelled(error: BaseException | None) -> bool:
    """Whether `error` is what a caller's `progress=` raised to stop the run (noting_cancels)."""
    return getattr(error, _CANCEL_MARK, False) is True


def is_stop(error: BaseException | None) -> bool:
    """Ctrl-C, SIGTERM, SIGHUP (KeyboardInterrupt) or the caller's cancel: the run was stopped, not failed."""
    return isinstance(error, KeyboardInterrupt) or cancelled(error)


def exit_code(error: BaseException | None) -> int:
    """What `dove` exits with when `error` ends the run (0: none): a DoveError's own, a stop's (Ctrl-C 130,
    SIGTERM 143, SIGHUP 129: errors.StopSignal; the caller's cancel from `progress=` as Ctrl-C), 1 for a bug."""
    if error is None:
        return 0
    if isinstance(error, SystemExit):  # (stdout's reader gone: 141)
        return error.code if isinstance(error.code, int) else 1
    if isinstance(error, KeyboardInterrupt):
        return getattr(error, "exit_code", 130)
    if cancelled(error):  # stopped by the caller, as by Ctrl-C
        return Interrupted.exit_code
    return error.exit_code if isinstance(error, DoveError) else 1


def error_type(error: BaseException | None) -> str | None:
    """What ended the run, for a script to tell apart without reading the text: the error's class
    (ModelError, InputError, OutputBusy, TempFailure, PartlyFailed, ...; a bug's own), "Interrupted" for
    any stop (Ctrl-C, SIGTERM, SIGHUP, the caller's cancel from `progress=`); None when it was done."""
    if error is None:
        return None
    return Interrupted.__name__ if is_stop(error) else type(error).__name__
