"""`--manifest run.json`: a JSON sidecar with everything needed to reproduce or report a run.

One file: its options, plan, result, model and versions, and its `status` ("done", "planned" for
--dry-run, "failed" or "interrupted" with the one-line `error`). A folder: the same for every file
in `files`, with the folder's own `status` and `exit_code`. Keys are only ever added, never renamed:
scripts read them.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import stat
import sys
from dataclasses import asdict
from fractions import Fraction
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import torch

from dove_cli import __version__, video_io
from dove_cli.engine import Restorer
from dove_cli.errors import (
    DoveError,
    Interrupted,
    OutputError,
    TempFailure,
    error_type,
    exit_code,
    folder_resume_hint,
    run_again,
)
from dove_cli.humanize import real_names
from dove_cli.options import AUTO, UpscaleOptions
from dove_cli.plan import Plan

if TYPE_CHECKING:
    from dove_cli.batch import BatchResult
    from dove_cli.upscaling import UpscaleResult


def write_manifest(
    path: Path,
    input: str | Path,
    opts: UpscaleOptions,
    result: UpscaleResult | Plan | None,
    model: Restorer | None,
    output: Path,
    *,
    error: BaseException | None = None,
) -> None:
    """Options, plan, results and per-stage times, model hashes and versions; written atomically.
    Given a Plan (`--dry-run --manifest`), the manifest holds the plan (with the output the run would
    write) and no result. Options are as asked ("auto" tile/chunk); the plan has the sizes used.
    Given an `error` (the run failed after its options and output were checked), the status says so,
    with the plan when there was one and no result."""
    plan = result if isinstance(result, Plan) or result is None else result.plan
    status = stop_status(error) if error else "planned" if isinstance(result, Plan) else "done"
    doc = {
        "dove": __version__,
        "input": str(Path(input).absolute()),
        "output": str(Path(output).absolute()),
        "status": status,
        "error": None if error is None else one_line(error),
        "exit_code": exit_code(error),
        "error_type": error_type(error),
        "options": options_doc(opts),
        "plan": None if plan is None else plan_doc(plan),
        "result": None if result is None or isinstance(result, Plan) else result_doc(result),
        "warnings": [] if result is None or isinstance(result, Plan) else result.warnings,
        "model": None if model is None else model.fingerprint(),
        "versions": versions(),
    }
    done = "" if status != "done" else "; the video is complete"
    again = run_again(["--resume"] if status == "done" else [], [], to="to write it")  # (--resume: nothing redone)
    write_json(path, doc, done, again)


def write_batch_manifest(
    path: Path,
    in_dir: Path,
    out_dir: Path,
    opts: UpscaleOptions,
    result: BatchResult,
    model: Restorer | None,
    stopped: BaseException | None = None,
) -> None:
    """A folder run's manifest (`dove upscale DIR -o DIR --manifest run.json`): the options once, then
    an entry per video with its status, error, frames made and dropped, and its plan and result as a
    single run's manifest has them; the folder's status and exit code, as the CLI exits. `stopped`:
    what ended the run before its last file (Ctrl-C: "interrupted", 130; else "failed")."""
    from dove_cli.batch import ITEM_STATUS

    files = []
    for item in result.items:
        r = item.result
        plan = r if isinstance(r, Plan) else getattr(r, "plan", None)
        done = r is not None and not isinstance(r, Plan)
        status = "planned" if isinstance(r, Plan) and item.status == "done" else item.status  # a dry run's
        files.append({
            "input": str(item.input.absolute()),
            "output": str(item.output.absolute()),
            "status": ITEM_STATUS.get(status, status),
            "error": item.error,
            "error_type": item.error_type,
            "frames": r.frames if done else None,
            "dropped_frames": r.dropped_frames if done else None,
            "plan": None if plan is None else plan_doc(plan),
            "result": result_doc(r) if done else None,
            "warnings": r.warnings if done else [],
        })  # fmt: skip
    ended = result.status() if stopped is None else stop_status(stopped)
    error: BaseException | None = result.error() if stopped is None else stopped  # (the folder's: PartlyFailed, ...)
    doc = {
        "dove": __version__,
        "input": str(in_dir.absolute()),
        "output": str(out_dir.absolute()),
        "status": ended,
        "error": None if stopped is None else one_line(stopped),
        "exit_code": exit_code(error),
        "error_type": error_type(error),
        "counts": {s: sum(f["status"] == s for f in files) for s in dict.fromkeys(f["status"] for f in files)},
        "options": options_doc(opts),
        "files": files,
        "model": None if model is None else model.fingerprint(),
        "versions": versions(),
    }
    write_json(path, doc, "", folder_resume_hint("to write it"))


def stop_status(error: BaseException) -> str:
    """A run's status when `error` stopped it: Ctrl-C or SIGTERM (Interrupted is a KeyboardInterrupt)
    is "interrupted", anything else "failed"."""
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"


def is_stdout(path: Path) -> bool:
    """`--manifest -`, or a name of this process's stdout (/dev/stdout): the JSON is written there."""
    try:
        return str(path) == "-" or os.path.samestat(os.stat(path), os.fstat(1))
    except OSError:
        return False


def is_special(path: Path) -> bool:
    """A FIFO, a device, a pipe (/dev/stdout), through links: written to as it is, never read (a pipe
    would wait for ever) and never replaced by a file."""
    try:
        return not stat.S_ISREG(mode := os.stat(path).st_mode) and not stat.S_ISDIR(mode)
    except OSError:
        return False


def check_manifest(path: Path, overwrite: bool, inputs: list[Path], folder: Path | None = None) -> None:
    """Before any work: an existing manifest is replaced only with --overwrite, unless it records a
    run that did not finish (failed, interrupted, partial: the same command continues that run), or
    is the manifest of the same `folder` run (run again, it skips the finished files: exit 0).
    stdout and special files (is_special) are written as they are: nothing is read or replaced."""
    if is_stdout(path) and sys.stdout is None:  # said now, not after hours of work
        raise OutputError(f"--manifest {path}: stdout is closed (>&-), so the manifest would be lost; give it a "
                          "file name, or the command a stdout")  # fmt: skip
    if is_stdout(path) or is_special(path):
        return
    try:
        old = json.loads(path.read_text())
        ended = old.get("status") in ("failed", "interrupted", "partial", "retry")
        same = folder is not None and "files" in old and old.get("input") == str(folder.absolute())
    except (OSError, ValueError, AttributeError):
        ended = same = False
    video_io.check_output(path, overwrite=overwrite or ended or same, inputs=inputs, option="--manifest")


def records_done(path: Path, output: Path) -> bool:
    """Whether the manifest at `path` records a finished run into `output` (a run that finds that output
    finished keeps it: it tells of the run that made it). stdout and special files are never read."""
    if is_stdout(path) or is_special(path):
        return False
    try:
        old = json.loads(path.read_text())
        return old.get("status") == "done" and old.get("output") == str(output.absolute()) and "files" not in old
    except (OSError, ValueError, AttributeError):
        return False


def one_line(error: BaseException) -> str:
    """The `error:` line the CLI prints (a bug: its type too)."""
    return str(error) if isinstance(error, (DoveError, Interrupted)) else f"{type(error).__name__}: {error}"


def options_doc(opts: UpscaleOptions) -> dict[str, Any]:
    return {k: "auto" if k in ("tile", "chunk") and v == AUTO else v for k, v in asdict(opts).items() if k != "given"}


# The Plan's sizes, (height, width) as tensors have them, which the JSON gives as {"width": W, "height": H}, as
# `dove info --json` does: every message says WxH, and a bare [48, 64] was read as 48 wide.
PLAN_SIZES = ("input_size", "padded_size", "output_size", "size")


def plan_doc(plan: Plan) -> dict[str, Any]:
    doc = {k: (str(v) if isinstance(v, Fraction) else v) for k, v in asdict(plan).items()}
    for key in PLAN_SIZES:
        if doc[key] is not None:  # (size: None without --size)
            doc[key] = {"width": doc[key][1], "height": doc[key][0]}
    return doc


def result_doc(result: UpscaleResult) -> dict[str, Any]:
    return {
        "frames": result.frames,
        "dropped_frames": result.dropped_frames,
        "seconds": round(result.seconds, 3),
        "peak_host_bytes": result.peak_host_bytes,  # the process's peak so far; the device's is the run's
        "peak_device_bytes": result.peak_device_bytes,
        "tile_used": result.tile_used,
        "offload_used": result.offload_used,
        "oom_retries": result.retries,
        "finished_before": result.finished_before,  # resume=True on a finished output: nothing made now
        "stages_seconds": {k: round(v, 4) for k, v in result.stages.items()},
        "stages_device_seconds": {k: round(v, 4) for k, v in result.device_stages.items()},
    }


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": version("diffusers"),  # not `import diffusers`: 2.6 s, which a run without DOVE never needs
        "av": av.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def write_json(path: Path, doc: dict[str, Any], done: str, again: str) -> None:
    """Atomically (video_io.write_whole); stdout and special files as they are. `done` is added to the
    error: "; the video is complete"; and where the disk is full (exit 75, TempFailure), `again`: how
    a later run writes it ("run the same command with --resume to write it")."""
    text = json.dumps(real_names(doc), indent=2, default=str) + "\n"  # names as written, not escaped bytes
    try:
        if is_stdout(path):
            if sys.stdout is None:  # (closed: check_manifest said so before the work)
                raise OSError(errno.EBADF, "stdout is closed")
            sys.stdout.write(text)
            sys.stdout.flush()
        elif is_special(path):
            with open(path, "w") as f:
                f.write(text)
        else:
            video_io.make_folder(path.parent, path)
            video_io.write_whole(path, text)
    except OSError as exc:
        if isinstance(video_io.write_failed(path, exc, ""), TempFailure):
            raise TempFailure(f"{path}: cannot write the manifest ({exc.strerror}){done}; make room, then "
                              f"{again}") from None  # fmt: skip
        raise OutputError(f"{path}: cannot write the manifest ({exc.strerror}){done}") from None
