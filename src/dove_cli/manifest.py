"""`--manifest run.json`: a JSON sidecar with everything needed to reproduce or report a run.

One file: its options, plan, result, model and versions, and its `status` ("done", "planned" for
--dry-run, "failed" or "interrupted" with the one-line `error`). A folder: the same for every file
in `files`, with the folder's own `status` and `exit_code`. Keys are only ever added, never renamed:
scripts read them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from fractions import Fraction
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import torch

from dove_cli import __version__, locks, provenance, video_io
from dove_cli.engine import Restorer
from dove_cli.errors import (
    DoveError,
    Interrupted,
    OptionError,
    OutputBusy,
    OutputError,
    TempFailure,
    error_type,
    exit_code,
    folder_resume_hint,
    is_stop,
    run_again,
)
from dove_cli.humanize import path_text, real_names, utc_time
from dove_cli.jsontext import json_text
from dove_cli.options import AUTO, UpscaleOptions
from dove_cli.reports import Plan
from dove_cli.video_io.paths import is_special

if TYPE_CHECKING:
    from dove_cli.batch import BatchItem, BatchResult
    from dove_cli.reports import UpscaleResult

log = logging.getLogger(__name__)


def write_manifest(
    path: Path,
    input: str | Path,
    opts: UpscaleOptions,
    result: UpscaleResult | Plan | None,
    model: dict[str, Any] | None,
    output: Path,
    *,
    error: BaseException | None = None,
    running: bool = False,
    started_at: str | None = None,
) -> None:
    """Options, plan, results and per-stage times, model hashes and versions; written atomically.
    Given a Plan (`--dry-run --manifest`), the manifest holds the plan (with the output the run would
    write) and no result. Options are as asked ("auto" tile/chunk); the plan has the sizes used.
    Given an `error` (the run failed after its options and output were checked), the status says so,
    with the plan when there was one and no result. `running`: the run begins (write_running).
    `model`: the model's fingerprint (model_fingerprint; a Ray run's: a worker's model). `started_at`:
    when the run began (its ManifestLock's). A finished run's manifest records its input and output
    (size, time, sha256: `file_record`), read now: the input after the run read it, the output at its name."""
    plan = result if isinstance(result, Plan) or result is None else result.plan
    status = (
        stop_status(error) if error else "running" if running else "planned" if isinstance(result, Plan) else "done"
    )
    doc = {
        "dove": __version__,
        "input": path_text(Path(input).absolute()),
        "output": path_text(Path(output).absolute()),
        "status": status,
        "error": None if error is None else one_line(error),
        "exit_code": None if running else exit_code(error),
        "error_type": None if running else error_type(error),
        "started_at": started_at,
        "finished_at": None if running else utc_time(),
        **file_record("input", Path(input) if status == "done" else None),
        **file_record("output", Path(output) if status == "done" else None),
        "options": options_doc(opts),
        "plan": None if plan is None else plan_doc(plan),
        "result": None if result is None or isinstance(result, Plan) else result_doc(result),
        "warnings": [] if result is None or isinstance(result, Plan) else result.warnings,
        "model": model,
        "versions": versions(),
        "hostname": socket.gethostname(),  # (as a folder's: whose `running` a manifest left by a kill was)
        "pid": os.getpid(),
    }
    done = "" if status != "done" else "; the video is complete"
    again = run_again(["--resume"] if status == "done" else [], [], to="to write it")  # (--resume: nothing redone)
    write_json(path, doc, done, again)


def write_failure_manifest(path: Path, input: str | Path, opts: UpscaleOptions, plan: Plan | None,
                           model: dict[str, Any] | None, output: Path, error: BaseException,
                           started_at: str | None = None) -> None:  # fmt: skip
    """The manifest of a run that failed or was interrupted (with or without Ray); failing to write it
    is a warning, not an error that would hide the run's own."""
    try:
        write_manifest(path, input, opts, plan, model, output, error=error, started_at=started_at)
    except DoveError as exc:
        log.warning("%s", exc)
    except SystemExit:  # (`--manifest -`, its reader gone: 141 would hide the run's own error)
        pass


def model_fingerprint(model: Restorer | None) -> dict[str, Any] | None:
    """What a manifest says of the model (its hashes, Restorer.fingerprint); None without one."""
    return None if model is None else model.fingerprint()


def write_running(path: Path, input: str | Path, opts: UpscaleOptions, plan: Plan, model: Restorer | None,
                  output: Path, started_at: str | None = None) -> None:  # fmt: skip
    """A single file's run begins: its manifest says `running` (with the frames a resumed run continues
    after, `plan.saved_frames`), as a folder's does, so that one killed outright (kill -9, a power cut)
    leaves no record of an earlier run's end. Not written to stdout or a FIFO (one JSON there, at the
    end); one that cannot be written is a warning: the run's end writes it again."""
    if is_stdout(path) or is_special(path):
        return
    try:
        write_manifest(path, input, opts, plan, model_fingerprint(model), output, running=True,
                       started_at=started_at)  # fmt: skip
    except DoveError as exc:
        log.warning("%s", exc)


class ManifestLock:
    """A manifest held against a second run writing it (a folder's or one file's: the second would
    replace the first's record): a lock file beside it, FILE.lock, naming the holder's pid, host and
    start. flock: the OS drops it when the process ends, a killed run's too, so a lock file left behind
    stops no later run. stdout and special files (is_special) are not held."""

    def __init__(self, path: Path, started_at: str | None = None) -> None:
        self.path, self.started_at = path, started_at or utc_time()
        self._lock = locks.HeldFile(path.with_name(path.name + ".lock"))

    def __enter__(self) -> ManifestLock:
        self.hold()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def hold(self) -> None:
        """Refuse now (OutputBusy, exit 75) when another live run writes this manifest; else hold its lock
        until `release` or the end of the process."""
        if is_stdout(self.path) or is_special(self.path):
            return
        lock = self._lock.path
        video_io.make_folder(lock.parent, self.path)
        for _ in range(3):  # the file can be removed by the run that held it between our open and lock
            try:
                self._lock.hold()
            except locks.Busy as exc:
                holder = exc.holder or "another dove run"
                raise OutputBusy(f"--manifest {self.path}: {holder} is writing it; wait for that run to end, or "
                                 "give this one another --manifest") from None  # fmt: skip
            except OSError as exc:
                raise OutputError(f"--manifest {self.path}: cannot create {lock} ({exc.strerror})") from None
            if self._lock.current():
                break
        else:
            self._lock.release()
            raise OutputBusy(f"--manifest {self.path}: other dove runs keep taking its lock {lock}")
        with contextlib.suppress(OSError):  # (who holds it, for the message above; the lock holds without it)
            self._lock.write_holder(f"dove run {os.getpid()} on {socket.gethostname()} since {self.started_at}")

    def release(self) -> None:
        """Let other runs write this manifest (the lock file goes: removed while still held)."""
        self._lock.release(remove=True)


class FolderManifest:
    """A folder run's manifest (`dove upscale DIR -o DIR --manifest run.json`), kept current: rewritten
    (atomically) as each file ends, so that a run killed outright (kill -9, the OOM killer, a power
    cut) leaves one that says how far it got (`status: running`); and held against a second run
    writing the same file (`hold`: a lock file beside it, FILE.lock). The options once, then an entry
    per video with its status, error, frames made and dropped, its plan and result as a single
    run's manifest has them, when it started and ended, and its output's size and time; the folder's
    status and exit code, as the CLI exits. A finished output skipped now keeps the record of the run
    that made it (`made`), taken from the manifest this one replaces while that output is unchanged."""

    def __init__(self, path: Path, in_dir: Path, out_dir: Path, opts: UpscaleOptions, result: BatchResult, *,
                 recursive: bool = False, planned: bool = False) -> None:  # fmt: skip
        self.path, self.in_dir, self.out_dir, self.opts, self.result = path, in_dir, out_dir, opts, result
        self.recursive, self.planned = recursive, planned  # planned: a dry run's (status "planned")
        self.started_at = utc_time()
        self.made = {} if planned else earlier_records(path, in_dir)
        self.kept_current = not (is_stdout(path) or is_special(path))  # (stdout gets one JSON, at the end)
        self._lock = ManifestLock(path, self.started_at)
        self._due = 0.0  # (time.monotonic) a file's end before this does not rewrite it
        self._records: dict[Path, dict[str, Any]] = {}  # a done file's input and output (file_record), once
        self._writing = threading.Lock()  # (Ray's driver threads end files too)

    def hold(self) -> None:
        """Refuse now (OutputBusy, exit 75) when another live run writes this manifest (ManifestLock)."""
        self._lock.hold()

    def release(self) -> None:
        self._lock.release()

    def file_ended(self, item: BatchItem | None = None) -> None:
        """A file ended: its input and output recorded (hashed) if it is done, then the manifest rewritten,
        unless rewriting it after every file would take more than WRITE_SHARE of the run (thousands of
        tiny files: then after some of them; the hashing is the files' work, not the writing's)."""
        if item is not None and item.status == "done":
            self._record(item)
        if self.kept_current and time.monotonic() >= self._due:
            self.write(None, running=True)

    def write(self, model: Restorer | None, stopped: BaseException | None = None, *, running: bool = False) -> None:
        """Write it as the run stands: `running` (a file ended), or as it ended (`stopped`: what ended it
        before its last file, Ctrl-C: "interrupted", 130; else "failed")."""
        with self._writing:
            began = time.monotonic()
            doc = self.doc(model, stopped, running)
            write_json(self.path, doc, "", folder_resume_hint("to write it"))
            self._due = time.monotonic() + (time.monotonic() - began) / WRITE_SHARE

    def _record(self, item: BatchItem) -> dict[str, Any]:
        """A done file's input and output records (file_record), read once, as it ended."""
        if item.output not in self._records:
            self._records[item.output] = file_record("input", item.input) | file_record("output", item.output)
        return self._records[item.output]

    def doc(self, model: Restorer | None, stopped: BaseException | None, running: bool) -> dict[str, Any]:
        from dove_cli.batch import ITEM_STATUS

        files = []
        for item in self.result.items:
            r = item.result
            plan = r if isinstance(r, Plan) else getattr(r, "plan", None)
            done = r is not None and not isinstance(r, Plan)
            status = "planned" if isinstance(r, Plan) and item.status == "done" else item.status  # a dry run's
            # (a file not reached yet, or by a stopped run, whose output is there keeps its record too)
            facts = output_facts(item.output) if status in ("done", "skipped", "pending") else None
            made = self.made.get(path_text(item.output.absolute())) if status in ("skipped", "pending") else None
            record = self._record(item) if done and item.status == "done" else dict.fromkeys(HASHED_KEYS)
            files.append({
                "input": path_text(item.input.absolute()),
                "output": path_text(item.output.absolute()),
                "status": status if running else ITEM_STATUS.get(status, status),
                "error": item.error,
                "error_type": item.error_type,
                "frames": r.frames if done else None,
                "dropped_frames": r.dropped_frames if done else None,
                "plan": None if plan is None else plan_doc(plan),
                "result": result_doc(r) if done else None,
                "warnings": r.warnings if done else [],
                "started_at": item.started_at,
                "finished_at": item.finished_at,
                "output_bytes": None if facts is None else facts["output_bytes"],
                "output_modified": None if facts is None else facts["output_modified"],
                **record,
                "made": made if made is not None and facts is not None and _same_output(made, facts) else None,
            })  # fmt: skip
        result = self.result
        ended = "running" if running else result.status() if stopped is None else stop_status(stopped)
        if ended == "done" and self.planned:
            ended = "planned"
        error: BaseException | None = (
            result.error() if stopped is None else stopped
        )  # (the folder's: PartlyFailed, ...)
        return {
            "dove": __version__,
            "input": path_text(self.in_dir.absolute()),
            "output": path_text(self.out_dir.absolute()),
            "status": ended,
            "error": None if stopped is None else one_line(stopped),
            "exit_code": None if running else exit_code(error),
            "error_type": None if running else error_type(error),
            "counts": {s: sum(f["status"] == s for f in files) for s in dict.fromkeys(f["status"] for f in files)},
            "options": options_doc(self.opts),
            "files": files,
            "model": model_fingerprint(model),
            "versions": versions(),
            "recursive": self.recursive,
            "started_at": self.started_at,
            "finished_at": None if running else utc_time(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        }


# A running folder's manifest is rewritten as files end, but its writing may take at most this share
# of the run: 5000 tiny files would otherwise write 5000 manifests of 5000 entries.
WRITE_SHARE = 0.05
# A folder entry's record of its input and output beside output_bytes and output_modified (file_record)
HASHED_KEYS = ("input_bytes", "input_modified", "input_sha256", "input_images", "output_sha256", "output_images")
MADE_KEYS = ("started_at", "finished_at", "frames", "dropped_frames", "result", "output_bytes", "output_modified",
             *HASHED_KEYS)  # fmt: skip


def output_facts(output: Path) -> dict[str, Any] | None:
    """An output's size and modification time (ISO 8601, UTC), an image sequence's as file_record has
    them (its images' sizes in all, the newest one's time); None when it is not there."""
    try:
        stats = [f.stat() for f in provenance.files_of(output)]
    except OSError:
        return None
    # (st_mtime, as file_record reads it: a time from st_mtime_ns can round to another millisecond)
    return {"output_bytes": sum(s.st_size for s in stats), "output_modified": utc_time(max(s.st_mtime for s in stats))}


RECORD_KEYS = ("bytes", "modified", "sha256", "images")


def file_record(role: str, path: Path | None) -> dict[str, Any]:
    """What a manifest records of a run's input or output (`role`), for an evidence chain:
    `{role}_bytes`, `{role}_modified` (ISO 8601, UTC) and `{role}_sha256` of the file, read whole now
    (hashlib: 0.3 to 0.5 s per 100 MB on a 2-core VM, mostly the reading); `{role}_images` None. An image sequence's (a
    pattern, a folder of images): the images' count, their bytes in all, the newest one's time and one
    sha256 over the lines `sha256sum` prints for them in name order (`cd DIR && sha256sum IMAGES |
    sha256sum`). All None without a `path` (a run that did not finish), for a pipe or stdin (read
    once, gone) and for a file that cannot be read now."""
    none = {f"{role}_{key}": None for key in RECORD_KEYS}
    if path is None or str(path) == "-" or is_special(path):
        return none
    try:
        files = provenance.files_of(path)  # (an image sequence's images; a video: itself)
        if files == [path]:
            size, mtime, digest = _hashed(path)
            return {f"{role}_bytes": size, f"{role}_modified": utc_time(mtime), f"{role}_sha256": digest,
                    f"{role}_images": None}  # fmt: skip
        hashed = sorted((p.name, _hashed(p)) for p in files)
        listing = "".join(f"{digest}  {name}\n" for name, (_, _, digest) in hashed)
        return {
            f"{role}_bytes": sum(size for _, (size, _, _) in hashed),
            f"{role}_modified": utc_time(max(mtime for _, (_, mtime, _) in hashed)),
            f"{role}_sha256": hashlib.sha256(listing.encode()).hexdigest(),
            f"{role}_images": len(hashed),
        }
    except (OSError, DoveError):
        return none


def _hashed(path: Path) -> tuple[int, float, str]:
    """A file's size, modification time and sha256, from one open file (what was hashed is what was sized)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        return st.st_size, st.st_mtime, hashlib.file_digest(f, "sha256").hexdigest()


def _same_output(made: dict[str, Any], facts: dict[str, Any]) -> bool:
    return all(made.get(key) == value for key, value in facts.items())


def earlier_records(path: Path, in_dir: Path) -> dict[str, dict[str, Any]]:
    """The records of how each output was made, from the manifest of an earlier run of the same folder at
    `path` (output -> its done entry's MADE_KEYS, or the `made` a skipped entry carried on); {} if none."""
    if is_stdout(path) or is_special(path):
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("input") != path_text(in_dir.absolute()) or not isinstance(old.get("files"), list):
            return {}
        records = {}
        for entry in old["files"]:
            done = entry.get("status") == "done"
            record = (
                {**{k: entry.get(k) for k in MADE_KEYS}, "hostname": old.get("hostname")} if done else entry.get("made")
            )
            if record:
                records[entry["output"]] = record
        return records
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


def stop_status(error: BaseException) -> str:
    """A run's status when `error` stopped it: Ctrl-C or SIGTERM (Interrupted is a KeyboardInterrupt)
    and the caller's cancel from `progress=` are "interrupted", anything else "failed"."""
    return "interrupted" if is_stop(error) else "failed"


def is_stdout(path: Path) -> bool:
    """`--manifest -`, or a name of this process's stdout (/dev/stdout): the JSON is written there."""
    try:
        return str(path) == "-" or os.path.samestat(os.stat(path), os.fstat(1))
    except OSError:
        return False


def check_manifest(
    path: Path, overwrite: bool, inputs: list[Path], folder: Path | None = None, outputs: Mapping[Path, Path] = {}
) -> None:
    """Before any work: never one of the run's `outputs` (output -> its input; it would replace the
    video), an existing manifest is replaced only with --overwrite, unless it records a
    run that did not finish (failed, interrupted, partial: the same command continues that run), or
    is the manifest of the same `folder` run (run again, it skips the finished files: exit 0).
    stdout and special files (is_special) are written as they are: nothing is read or replaced."""
    for output, source in outputs.items():
        if video_io.writes_to(output, path):
            whose = "the output file" if folder is None else f"{source}'s output"
            raise OptionError(f"--manifest {path} is {whose}; give it its own name, like {output}.json")
    if is_stdout(path) and sys.stdout is None:  # said now, not after hours of work
        raise OutputError(f"--manifest {path}: stdout is closed (>&-), so the manifest would be lost; give it a "
                          "file name, or the command a stdout")  # fmt: skip
    if is_stdout(path) or is_special(path):
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        ended = old.get("status") in ("failed", "interrupted", "partial", "retry", "running")
        same = folder is not None and "files" in old and old.get("input") == path_text(folder.absolute())
    except (OSError, ValueError, AttributeError):
        ended = same = False
    video_io.check_output(path, overwrite=overwrite or ended or same, inputs=inputs, option="--manifest")


def records_done(path: Path, output: Path) -> bool:
    """Whether the manifest at `path` records a finished run into `output` (a run that finds that output
    finished keeps it: it tells of the run that made it). stdout and special files are never read."""
    if is_stdout(path) or is_special(path):
        return False
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        return old.get("status") == "done" and old.get("output") == path_text(output.absolute()) and "files" not in old
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
        "resumed_from": result.resumed_from,  # frames an interrupted run saved, which this one continued after
        "frames_made_now": result.frames - result.resumed_from,  # (`frames`: all of the output's)
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
    stream = sys.stdout if is_stdout(path) else None  # (one that cannot hold UTF-8 gets JSON's escapes)
    text = json_text(real_names(doc), indent=2, default=str, to=stream) + "\n"  # names as written, not escaped bytes
    try:
        if is_stdout(path):
            if sys.stdout is None:  # (closed: check_manifest said so before the work)
                raise OSError(errno.EBADF, "stdout is closed")
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except BrokenPipeError:  # (`--manifest - | true`: the video is complete, the reader did not want it)
                from dove_cli.streams import reader_gone

                raise reader_gone(sys.stdout) from None
        else:
            if not is_special(path):  # (/dev/fd is not writable: a pipe's folder is not checked)
                video_io.make_folder(path.parent, path)
            video_io.write_whole(path, text, "the manifest")
    except OSError as exc:
        if isinstance(video_io.write_failed(path, exc, ""), TempFailure):
            raise TempFailure(f"{path}: cannot write the manifest ({exc.strerror}){done}; make room, then "
                              f"{again}") from None  # fmt: skip
        raise OutputError(f"{path}: cannot write the manifest ({exc.strerror}){done}") from None
