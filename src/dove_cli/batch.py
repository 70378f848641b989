"""Upscale every video in a folder: one model load for all, keep going past bad files.

`dove upscale in_dir/ -o out_dir/` lands here. Outputs keep their input's name (a container dove
only reads, such as .avi or .mpg, becomes .mkv; `--container mp4` makes them all .mp4); a frame
folder (a sub-folder of images: an image sequence) becomes a folder of the same name with its
images' own names (`frames_output`); finished
ones are skipped (unless `overwrite`; one that is not, such as a --preview's, is failed with why), so re-running a batch after a failure or an interruption only does what is missing,
and a file interrupted half way continues. `recursive` (--recursive) takes the videos of every
sub-folder too, each output at its input's place under out_dir (`walk` says which folders).
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av

from dove_cli import note, provenance, video_io
from dove_cli.errors import (
    DoveError,
    InputError,
    Interrupted,
    OptionError,
    OutputBusy,
    OutputError,
    PartlyFailed,
    TempFailure,
    advice,
    as_given,
    cancelled,
    error_type,
    exit_code,
    folder_resume_hint,
    folder_run,
    noting_cancels,
)
from dove_cli.humanize import counted, one_name, told_apart
from dove_cli.logs import held_warnings
from dove_cli.outputs import (
    FOLDER_EXTENSIONS,
    SHOWN_NAMES,
    WORK_SUFFIX,
    Tree,
    find_inputs,
    folder_entries,
    frames_output,
    is_image_folder,
    output_names,
    output_there,
    some_names,
    unfinished,
    walk,
)
from dove_cli.video_io.formats import audio_only, container_magic
from dove_cli.video_io.image_reader import why_none

# dove_cli.upscaling is imported inside the functions that run files: it loads torch (`dove upscale DIR`
# checks the folder before that).

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from dove_cli.distributed import Cluster
    from dove_cli.engine import Restorer
    from dove_cli.manifest import FolderManifest
    from dove_cli.options import CheckedOptions, UpscaleKeywords, UpscaleOptions
    from dove_cli.reports import Progress

log = logging.getLogger(__name__)

# Subtitle files that players load beside a video of the same name (a VobSub .sub is MPEG-PS: no video)
SIDECAR_SUBTITLES = (".ass", ".ssa", ".srt", ".vtt", ".sup", ".idx", ".sub")

# busy: another dove run is writing the output (the file is left to it, not failed)
Status = Literal["pending", "running", "done", "skipped", "busy", "failed", "interrupted"]
# A manifest written after Ctrl-C names the states a finished run does not have (one written while the
# run goes says "running" and "pending").
ITEM_STATUS = {"running": "interrupted", "pending": "not started"}


@dataclass
class BatchItem:
    """One video of a folder run, as `on_file(index, item)` sees it: "pending", "running" when its
    run starts (on_file is called then, and again when it ends), then "done", "skipped" (its output
    was there), "busy" (another dove run is writing it), "failed" (with `error`) or "interrupted"
    (Ctrl-C, or what `progress` raised: the caller's cancel, which stops the folder; with `error`)."""

    input: Path
    output: Path
    status: Status = "pending"
    error: str | None = None  # one line, for failed items and the one a Ctrl-C stopped
    error_type: str | None = None  # its class (manifest.error_type): InputError, OutputBusy, Interrupted, ...
    result: Any = None  # the UpscaleResult of a done item
    warnings: list[logging.LogRecord] = field(default_factory=list)  # a dry run's, said once per folder
    exit_code: int = 0  # a failed item's error's (75: worth retrying; 1: a bug)
    name: str = ""  # how lines and tables name it: its path under the input folder (default: its file name)
    started_at: str | None = None  # when its run started and ended (ISO 8601, UTC): None for one not run now
    finished_at: str | None = None

    def __post_init__(self) -> None:
        self.name = self.name or self.input.name

    def fail(self, exc: BaseException) -> None:
        """Record why this file is not done: "busy" when another dove run is writing it (left to that
        run), else "failed" with the one-line error, naming the file (a bug's names its type)."""
        self.status = "busy" if isinstance(exc, OutputBusy) else "failed"
        self.error = str(exc) if isinstance(exc, DoveError) else f"{type(exc).__name__}: {exc}"
        self.error_type = error_type(exc)
        if self.input.name not in self.error:  # e.g. a plan past the host's memory
            self.error = f"{self.input}: {self.error}"
        self.exit_code = exit_code(exc)


@dataclass
class BatchResult:
    """What `upscale_batch` returns: an item per video, in name order."""

    items: list[BatchItem] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if item.status == "failed"]

    def error(self) -> DoveError | None:
        """How the folder run ends (the CLI's exit code): None when every output is there; a
        TempFailure (75) when what is missing needs only a later run of the same command (a full disk,
        files another dove run is writing); PartlyFailed (4) when other files failed but some outputs
        are there; a DoveError (2) when every file tried failed."""
        failed, busy = self.failed, self.count("busy")
        lasting = [item for item in failed if item.exit_code != TempFailure.exit_code]
        n, there = len(self.items), self.count("done") + self.count("skipped")
        listed = advice("listed above", "each in BatchResult.failed, with its .error")  # (`dove` has said each)
        if lasting and not there and not busy:
            return DoveError(f"all {len(failed)} files failed ({listed})" if len(failed) > 1 else
                             f"its 1 file failed ({listed})")  # fmt: skip
        if lasting:
            return PartlyFailed(f"{len(failed)} of {n} files failed ({listed})")
        if failed or busy:
            why = [f"{len(failed)} failed for want of room ({listed})"] if failed else []
            why += [f"{busy} {'is' if busy == 1 else 'are'} being written by another dove run"] if busy else []
            return TempFailure(f"{len(failed) + busy} of {n} files are not done: {', '.join(why)}; "
                               f"{folder_resume_hint('later to finish them')}")  # fmt: skip
        return None

    def status(self) -> str:
        """The folder's status in a manifest: done, partial (exit 4), retry (75) or failed (2)."""
        error = self.error()
        return {None: "done", 4: "partial", 75: "retry"}.get(None if error is None else error.exit_code, "failed")


def output_paths(
    in_dir: Path, out_dir: Path, videos: list[Path], container: str | None = None, codec: str | None = None
) -> list[Path]:
    """Each video's output: at its place under `out_dir` as it is under `in_dir`, named by
    `output_names` among the videos of its own folder (a frame folder: that folder under `out_dir`)."""
    folders: dict[Path, list[int]] = {}
    for i, video in enumerate(videos):
        if not video.is_dir():  # (a frame folder's: `frames_output`)
            folders.setdefault(video.parent, []).append(i)
    outputs = [out_dir / video.relative_to(in_dir) for video in videos]
    for folder, indices in folders.items():
        names = output_names([videos[i] for i in indices], container, codec)
        for i, name in zip(indices, names, strict=True):
            outputs[i] = out_dir / folder.relative_to(in_dir) / name
    return outputs


def plan_batch(in_dir: Path, out_dir: Path | str, *, overwrite: bool = False, preview: str | None = None,
               container: str | None = None, codec: str | None = None, recursive: bool = False,
               fps: str | float | Fraction | None = None) -> list[BatchItem]:  # fmt: skip
    """One item per video (named by `output_names`, with --container; `recursive`: its sub-folders'
    too, `output_paths`) and per frame folder (`frames_output`); outputs that exist already are
    marked skipped unless `overwrite`, when finished (`unfinished`: as long as their input, or the
    `preview` span of it, at `fps` for images); else failed. `out_dir` as text ending in / is a folder
    whatever its name (`-o take.mp4/`), as into_folder takes it."""
    named_folder, out_dir = isinstance(out_dir, str) and out_dir.endswith(("/", os.sep)), Path(out_dir)
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a folder")
    videos = find_inputs(in_dir, recursive, skip=out_dir)
    if not videos:
        where = " in it or its sub-folders" if recursive else ""
        raise InputError(f"{in_dir}: no videos or frame folders{where} ({', '.join(sorted(FOLDER_EXTENSIONS))})"
                         f"{why_none(in_dir)}")  # fmt: skip
    video_io.check_not_windows(out_dir, OutputError)  # once, not as each video's failure
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file; for a folder of videos or frame folders, -o must be a folder")
    if not (named_folder or out_dir.exists()) and out_dir.suffix.lower() in {
        **video_io.VIDEO_EXTENSIONS,
        **video_io.IMAGE_EXTENSIONS,
    }:
        raise OutputError(f"{out_dir}: looks like a file name; for a folder of videos or frame folders, -o must be "
                          "a folder (outputs keep their input's name)")  # fmt: skip
    if out_dir.resolve() == in_dir.resolve():
        raise OutputError(f"{out_dir}: is the input folder; choose another output folder")
    video_io.check_folder_made(out_dir, str(out_dir))  # OUT's own folder is made, not a missing path to it
    items = [BatchItem(v, output, name=str(v.relative_to(in_dir)))
             for v, output in zip(videos, output_paths(in_dir, out_dir, videos, container, codec), strict=True)]  # fmt: skip
    for item in items:
        if item.input.is_dir():
            try:
                item.output = frames_output(item.input, item.output)
            except DoveError as exc:  # (its names: this folder fails, the others go on)
                item.fail(exc)
    fail_shared_outputs(items)
    if not overwrite:
        find_other_spellings(items)
    for item in items:
        if item.status == "pending" and output_there(item.output) and not overwrite:
            item.status = "skipped"
            if why := unfinished(item.input, item.output, preview, fps):
                item.fail(OutputError(f"{why}; delete it, or use {as_given('overwrite', True)} (which redoes every "
                                      "file), to redo it"))  # fmt: skip
    return items


def fail_shared_outputs(items: list[BatchItem]) -> None:
    """Fail, before any work, the inputs whose output names are one (in any case, and in either Unicode
    normalization: macOS and Windows do not tell a.MKV from a.mkv, nor APFS and SMB an NFD café from an
    NFC one): a.avi, renamed a.avi.mkv beside a.mkv, and an input a.avi.mkv. Neither is written, on this
    run or a re-run, until one is renamed: each is named, so that no input is skipped for another's output."""
    shared: dict[str, list[BatchItem]] = {}
    for item in items:
        shared.setdefault(one_name(str(item.output)), []).append(item)
    for group in (group for group in shared.values() if len(group) > 1):
        for item in group:
            others = [other for other in group if other is not item]
            case = (" (file names that differ only in case or in Unicode normalization (NFC/NFD) are one file on "
                    "macOS and Windows)" if any(str(other.output) != str(item.output) for other in others) else "")  # fmt: skip
            # (an NFC and an NFD café print alike: told_apart spells them; with -r the names may be alike and
            # their folders not, é in NFC and in NFD: then the paths are what tells them apart)
            folders = bool(case) and all(other.output.name == item.output.name for other in others)
            mine, what = (str(item.output), "output") if folders else (item.output.name, "output name")
            theirs = [str(other.input) if folders else other.input.name for other in others]
            ours = told_apart(mine, theirs[0])[0]
            names = ", ".join(f"{told_apart(mine, name)[1]}'s" for name in theirs)
            item.fail(InputError(f"{item.input}: its {what} {ours} is {names} {what} too{case}; rename one of them"))


def find_other_spellings(items: list[BatchItem]) -> None:
    """An output already there under another spelling of its name (`talk.MP4` for `talk.mp4`, a Mac's NFD
    `café` for Linux's NFC): its input was renamed since (by a copy from a Mac, a tool that lower-cases
    extensions), and one file on macOS and Windows. Taken as this input's output, to be skipped when
    finished, where its note says it was made from this input as it is now (size and time); else said:
    the run writes a second one beside it."""
    spellings: dict[Path, dict[str, Path]] = {}  # output folder -> its names folded (one_name): each listed once

    def folded(folder: Path) -> dict[str, Path]:
        if folder not in spellings:
            spellings[folder] = {}
            with contextlib.suppress(OSError):  # (a folder not made yet, or unreadable: no twin to find)
                for p in sorted(folder.iterdir(), reverse=True):  # (the first in name order kept, as before)
                    spellings[folder][one_name(p.name)] = p
        return spellings[folder]

    for item in items:
        out = item.output
        if item.status != "pending" or not item.input.is_file() or video_io.is_pattern(out) or out.exists():
            continue
        if (other := folded(out.parent).get(one_name(out.name))) is not None:
            ours, theirs = told_apart(out.name, other.name)
            made = provenance.fitting_note(other)
            if made is not None and provenance.changed_since(item.input, other, made) is None:
                note.info("%s: its output is there as %s, made from it before it was renamed: taken as its output",
                          item.input, theirs)  # fmt: skip
                item.output = other
            else:
                log.warning("%s: an output named %s is there, not made from this input as it is now; its output %s "
                            "is written beside it, one file with it on macOS and Windows", item.input, theirs, ours)  # fmt: skip


def say_left_out(in_dir: Path, recursive: bool = False, skip: Path | None = None) -> None:
    """Warn of what a folder run leaves out that a user may expect it to take: sub-folders (with
    `recursive`: symlinked folders and folders that cannot be read), broken links, and files that
    look like videos without a video extension (`noext`, `x.weird`), and subtitle files beside the
    videos. Sub-folders are named when they hold videos or frame folders (not Fonts/ or Scans/). Said by the run and its dry run,
    once each, not by plan_batch (the CLI plans first to size its progress bar)."""
    tree = walk(in_dir, skip) if recursive else Tree([in_dir], [], [])
    entries = [p for folder in tree.folders for p in sorted(folder.iterdir())]  # each folder listed once
    shown = [p for p in entries if not p.name.startswith(".")]

    def named(paths: list[Path]) -> str:  # `trail.mp4 ` quoted: its space would not show before the `)`
        return some_names([repr(n) if n != n.strip() else n for n in (str(p.relative_to(in_dir)) for p in paths)])

    subfolders = [] if recursive else [p for p in shown if p.is_dir() and not p.name.endswith(WORK_SUFFIX)
                                       and _holds_inputs(p)]  # fmt: skip
    if subfolders:
        log.warning("%s: sub-folders are not searched (%s); %s", in_dir, named(subfolders),
                    advice("--recursive (-r) searches them", "recursive=True searches them"))  # fmt: skip
    if links := [p for p in tree.links if not is_image_folder(folder_entries(p))]:  # (a frame folder's is taken)
        log.warning("%s: symlinked folders are not followed (%s)", in_dir, named(links))
    if tree.unreadable:
        why = some_names([f"{p.relative_to(in_dir)}: {strerror}" for p, strerror in tree.unreadable])
        log.warning("%s: folders that cannot be read left out (%s)", in_dir, why)
    sidecars = [p for p in shown if p.is_file() and p.suffix.lower().rstrip() in SIDECAR_SUBTITLES]
    if sidecars:  # `a.srt\r` (made by a script with Windows line endings) too, quoted: its end does not show
        log.warning("%s: subtitle files are not copied (%s): copy them beside the outputs, named as their video's "
                    "output, for players to load them", in_dir, named(sidecars))  # fmt: skip
    broken = [p for p in shown if p.is_symlink() and not p.exists()]
    if broken:
        log.warning("%s: %d broken link%s left out (%s)", in_dir, len(broken), "s" * (len(broken) > 1), named(broken))
    unnamed = [p for p in shown if p.is_file() and p.suffix.lower() not in (*FOLDER_EXTENSIONS, *SIDECAR_SUBTITLES)
               and not video_io.is_image_path(p) and container_magic(p)]  # fmt: skip
    if sound := [p for p in unnamed if audio_only(p)]:  # (an .m4a: renamed, still no video)
        log.warning("%s: %s left out (%s): no video to upscale", in_dir, counted(len(sound), "audio-only file"),
                    named(sound))  # fmt: skip
        unnamed = [p for p in unnamed if p not in sound]
    if unnamed:
        log.warning("%s: %s left out (%s): rename %s (.mp4, .mkv, ...) or upscale each alone", in_dir,
                    video_io.formats.look_like_videos(len(unnamed)), named(unnamed), "them" if len(unnamed) > 1 else "it")  # fmt: skip
    hidden = [p for p in entries if p.name.startswith(".") and not p.name.startswith("._") and p.is_file()
              and p.suffix.lower() in FOLDER_EXTENSIONS]  # fmt: skip
    if hidden:  # (macOS's AppleDouble `._a.mp4` is no video: not said)
        log.warning("%s: %s left out (%s): a name that starts with '.' is hidden; rename %s or upscale each alone",
                    in_dir, counted(len(hidden), "hidden video"), named(hidden), "them" if len(hidden) > 1 else "it")  # fmt: skip


def _holds_inputs(folder: Path) -> bool:
    """Whether a sub-folder holds what a folder run would take (videos, by their extension, or frame
    folders); False when it cannot be listed."""
    try:
        return bool(find_inputs(folder))
    except OSError:
        return False


def upscale_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    options: UpscaleOptions | None = None,
    *,
    recursive: bool = False,
    dry_run: bool = False,
    restorer: Restorer | None = None,
    on_file: Callable[[int, BatchItem], None] | None = None,
    progress: Callable[[Progress], None] | None = None,
    cluster: Cluster | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> BatchResult:
    """Upscale every video of `in_dir` into `out_dir` (same names), loading the model once;
    `recursive`: of its sub-folders too, each into the same place under `out_dir` (`walk`).

    A file that fails (bad input, full disk, ...) is recorded with its error and the batch goes
    on; bad options or a missing model stop the batch at once, and so does Ctrl-C (Interrupted).
    on_file(index, item) is called when a file starts and when it ends; progress gets the
    per-file frame progress of `upscale`. With `ray` set (or a `cluster` from dove_cli.distributed),
    the files are spread over Ray workers (one model load each, long files split into segments) and
    progress gets the frames of all files together. `dry_run`: each file's plan instead
    (`dry_run_batch`; nothing runs, so on_file, progress and cluster are not used).
    """
    if dry_run:
        return dry_run_batch(in_dir, out_dir, options, recursive=recursive, restorer=restorer, **overrides)
    opts, in_dir, out_dir, result, record = _open_folder_run(in_dir, out_dir, options, overrides, recursive)
    try:
        with video_io.folders_made_under(out_dir):  # (the input's tree, mirrored under OUT)
            _run_folder(in_dir, out_dir, opts, result, record, recursive, restorer, _timed(on_file, record),
                        progress, cluster)  # fmt: skip
    finally:
        if record is not None:
            record.release()
    return result


def _open_folder_run(
    in_dir: str | Path,
    out_dir: str | Path,
    options: UpscaleOptions | None,
    overrides: UpscaleKeywords,
    recursive: bool,
    *,
    planned: bool = False,
) -> tuple[CheckedOptions, Path, Path, BatchResult, FolderManifest | None]:
    """What a folder run and its dry run (`planned`) do first: check the options, plan the files, and
    check and hold the folder's manifest (another run writing it: refused now; a live run's manifest
    is not replaced by a plan either). Returns each file's options (resume=True unless --overwrite, no
    manifest of its own), the folders as Paths, the planned files and the held manifest."""
    from dove_cli.manifest import FolderManifest, check_manifest
    from dove_cli.options import check_options, check_paths, with_overrides

    check_paths(in_dir=in_dir, out_dir=out_dir)
    opts = check_options(with_overrides(options, overrides))
    _refuse_start_number(opts)
    if planned and opts.ray:  # what the run needs, once for the folder (a run checks it as it starts Ray)
        from dove_cli.distributed import import_ray

        import_ray()
    if not opts.overwrite:  # a re-run carries on where an interrupted file stopped (if its options match)
        opts = replace(opts, resume=True)  # (a dry run's plan says how far it got)
    asked = opts  # the manifest's options; each file's run writes none of its own
    manifest, opts = (Path(opts.manifest) if opts.manifest else None), replace(opts, manifest=None)
    given, in_dir, out_dir = out_dir, Path(in_dir), Path(out_dir)
    result = BatchResult(plan_batch(in_dir, given, overwrite=opts.overwrite, preview=opts.preview,
                                    container=opts.container, codec=opts.codec, recursive=recursive, fps=opts.fps))  # fmt: skip
    record = None
    if manifest is not None:  # the folder's manifest, one for all files (checked before any work)
        check_manifest(manifest, opts.overwrite, [item.input for item in result.items], in_dir,
                       {item.output: item.input for item in result.items})  # fmt: skip
        record = FolderManifest(manifest, in_dir, out_dir, asked, result, recursive=recursive, planned=planned)
        record.hold()
    return opts, in_dir, out_dir, result, record


def _refuse_start_number(opts: UpscaleOptions) -> None:
    """--start-number in a folder run: its videos write no images, and its frame folders keep their
    images' names (a re-run judges them by those)."""
    if opts.start_number is not None:
        raise OptionError(f"--start-number {opts.start_number}: a folder run's frame folders keep their images' "
                          "names and numbers; to number one anew, upscale it alone (-o OUT/%06d.png "
                          "--start-number N)")  # fmt: skip


def _run_folder(
    in_dir: Path,
    out_dir: Path,
    opts: CheckedOptions,
    result: BatchResult,
    record: FolderManifest | None,
    recursive: bool,
    restorer: Restorer | None,
    on_file: Callable[[int, BatchItem], None],
    progress: Callable[[Progress], None] | None,
    cluster: Cluster | None,
) -> None:
    """upscale_batch's run of the planned `result`, here or on Ray; the manifest written as it ends."""
    say_left_out(in_dir, recursive, skip=out_dir)
    made = not out_dir.is_dir()
    if made:
        try:
            out_dir.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
        note.info("created output folder %s", out_dir)
    model = None
    try:
        with folder_run():  # each file's advice is the folder's: upscale_batch() again, no --resume needed
            if opts.ray or cluster is not None:
                from dove_cli.distributed import upscale_batch_on_ray
                from dove_cli.reports import checked_progress

                # (progress: the frames of all files, and their time left; a file's upscale() here counts its own)
                upscale_batch_on_ray(result.items, opts, cluster=cluster, progress=checked_progress(progress),
                                     on_file=on_file, restorer=restorer)  # fmt: skip
            else:
                model = _upscale_here(result, opts, restorer, on_file, progress)
    except BaseException as stopped:
        for item in result.items:  # the file(s) it stopped in, for the manifest (the local run's say their own)
            if item.status == "running" and item.error is None:
                item.error = str(stopped) or "interrupted"
            if item.status in ("running", "interrupted") and item.error_type is None:
                item.error_type = error_type(stopped)
        if record is not None:
            try:
                record.write(model, stopped)
            except DoveError as exc:  # the run's own error is the one to say
                log.warning("%s", exc)
        _remove_if_empty(out_dir, made)
        raise
    _remove_if_empty(out_dir, made)
    if record is not None:
        record.write(model)


def _timed(
    on_file: Callable[[int, BatchItem], None] | None, record: FolderManifest | None
) -> Callable[[int, BatchItem], None]:
    """`on_file`, with each item's start and end times noted before it is called, and the manifest
    rewritten after, as a file ends (a stop writes its own)."""
    from dove_cli.humanize import utc_time

    def call(index: int, item: BatchItem) -> None:
        if item.status == "running":
            item.started_at, item.finished_at = utc_time(), None
        elif item.started_at is not None and item.finished_at is None:
            item.finished_at = utc_time()
        if on_file is not None:
            on_file(index, item)
        if record is not None and item.status not in ("running", "interrupted"):
            record.file_ended(item)

    return call


def _remove_if_empty(out_dir: Path, made: bool) -> None:
    """The output folder this run made, when nothing went into it (every file failed: a full disk,
    unreadable inputs): no empty folder left behind."""
    if made and out_dir.is_dir() and not any(out_dir.iterdir()):
        with contextlib.suppress(OSError):
            out_dir.rmdir()


def _upscale_here(
    result: BatchResult,
    opts: CheckedOptions,
    restorer: Restorer | None,
    on_file: Callable[[int, BatchItem], None] | None,
    progress: Callable[[Progress], None] | None,
) -> Restorer | None:
    """The files one after another in this process; returns the model (None if none was needed).
    What the caller's own `progress` raises (a GUI's cancel) stops the folder, as Ctrl-C does, after
    its file is left as a stopped file is; only a file's own failure moves on to the next."""
    from dove_cli import models
    from dove_cli.reports import Progress
    from dove_cli.upscaling import upscale

    model = restorer
    bugs_said: set[tuple[str, str, int]] = set()
    if model is None and any(item.status == "pending" for item in result.items):
        models.check_weights(opts)  # missing weights: one error for the folder, not one per file
    # what the loading call below raises is the caller's cancel, not a failure (upscale() notes its own calls)
    loading = noting_cancels(progress) if progress is not None else None
    index = 0
    try:
        for index, item in enumerate(result.items):
            if item.status == "pending" and output_there(item.output) and not opts.overwrite:
                item.status = "skipped"  # finished meanwhile by another dove run on the same folder
            if item.status != "pending":  # skipped, or failed by plan_batch (an unfinished output is there)
                if on_file:
                    on_file(index, item)
                continue
            item.status = "running"
            if on_file:
                on_file(index, item)
            if model is None and _refused_before_loading(item, opts, bugs_said):
                if on_file:
                    on_file(index, item)
                continue
            if model is None:  # loaded once, and only when there is something to do
                if loading:
                    loading(Progress(0, 0, "", 0.0, "loading model"))
                device, dtype = models.resolve_device(opts)
                models.check_quantize(opts, device)  # as a one-file run does (its calls below get this model)
                model = models.load_model(opts, device, dtype)
            try:
                item.result = upscale(item.input, item.output, opts, restorer=model, progress=progress)
                item.status = "done"
                if item.result.finished_before:  # finished meanwhile by another dove run on the same folder
                    item.status, item.result = "skipped", None
            except Interrupted as exc:  # a folder run continues an interrupted file without --resume
                _not_reached(result.items[index + 1 :])
                left = sum(i.status == "pending" for i in result.items)
                done = result.count("done")
                tally = f" ({done} file{'s' * (done != 1)} done in this run, {left} not started)"
                item.status, item.error = "interrupted", str(exc)  # the file's own line, for the manifest
                if on_file:
                    on_file(index, item)
                raise Interrupted(item.error + tally) from None
            except KeyboardInterrupt:  # (upscale() turns it into Interrupted once its run has begun)
                item.status, item.error = "interrupted", "interrupted"
                if on_file:
                    on_file(index, item)
                raise
            except BaseException as exc:  # noqa: BLE001 - one odd file must not stop the batch
                if cancelled(
                    exc
                ):  # the caller's cancel, raised as it was: the file stopped as by Ctrl-C, then the folder
                    item.status, item.error = (
                        "interrupted",
                        f"{item.input}: stopped by progress= ({type(exc).__name__}: {exc})",
                    )
                    if on_file:
                        on_file(index, item)
                    raise
                if not isinstance(exc, Exception):
                    raise
                record_failure(item, exc, bugs_said)
                if isinstance(exc, OutputError) and output_there(item.output) and not opts.overwrite:
                    item.status, item.error, item.error_type = "skipped", None, None  # another dove run finished it
            if item.status != "done":
                log.debug("%s: %s", item.input, item.error)
            if on_file:
                on_file(index, item)
    except BaseException:  # what stops the folder (Ctrl-C, the caller's cancel, its model failing to load)
        _not_reached(result.items[index + 1 :])
        raise
    return model


def _not_reached(items: list[BatchItem]) -> None:
    """The files after the one a stop ended in: those planned as skipped (their outputs were there) are
    "not started", as the others are, since the run never reached them and no line said them (the
    manifest still carries the record of how each was made)."""
    for item in items:
        if item.status == "skipped":
            item.status = "pending"


def _refused_before_loading(item: BatchItem, opts: CheckedOptions, bugs_said: set[tuple[str, str, int]]) -> bool:
    """Whether this file failed before the folder's model loads: unreadable, or a plan past the
    host's memory (the 5B model on a CPU would be killed, with the folder). The next file may fit."""
    from dove_cli import models
    from dove_cli.upscaling import probe_input, refuse_before_loading

    try:
        refuse_before_loading(probe_input(item.input, opts)[0], opts, *models.resolve_device(opts))
    except Exception as exc:  # noqa: BLE001 - as in the file's own run
        record_failure(item, exc, bugs_said)
        log.debug("%s: %s", item.input, item.error)
        return True
    return False


# What a file may fail with that is no fault of dove's: its input or the options (DoveError), the
# machine (a full disk, a lost mount, memory), FFmpeg refusing the file. Anything else is a bug in dove.
NOT_BUGS = (DoveError, OSError, av.FFmpegError, MemoryError)


def record_failure(
    item: BatchItem, exc: BaseException, bugs_said: set[tuple[str, str, int]], place: tuple[str, int] | None = None
) -> None:
    """Record a file's failure; the folder goes on (one odd file must not stop an unattended run).
    A bug in dove (not NOT_BUGS: a TypeError, say) also logs its traceback at ERROR for the report,
    where a single file's run would have shown it: once per place it is raised from, not per file.
    `place`: (file, line) it was raised at, where its traceback is another process's (a Ray worker's,
    in the text of the exception it is chained to)."""
    item.fail(exc)
    if isinstance(exc, DoveError):
        return
    if isinstance(exc, NOT_BUGS):
        log.debug("%s failed", item.input, exc_info=exc)
        return
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    if place is None:
        place = (last[0].filename, last[0].lineno or 0) if last else ("", 0)
    where = (type(exc).__name__, *place)
    if where in bugs_said:
        log.debug("%s failed", item.input, exc_info=exc)
        return
    bugs_said.add(where)
    log.error("%s: %s: %s: a bug in dove (please report it, with this traceback and the input if you can);"
              " the other files go on", item.input, type(exc).__name__, exc, exc_info=exc)  # fmt: skip


def dry_run_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    options: UpscaleOptions | None = None,
    *,
    recursive: bool = False,
    restorer: Restorer | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> BatchResult:
    """`--dry-run` for a folder: each video's plan (item.result) as `upscale(dry_run=True)` makes it,
    no weights read (planned for `restorer` when given); outputs that exist are skipped as the run
    would skip them, and a file that cannot be planned is failed with its one-line error. Each
    file's warnings are held in item.warnings for `say_warnings_once`: the same advice for every
    file is noise."""
    from dove_cli.upscaling import upscale

    opts, in_dir, out_dir, result, record = _open_folder_run(in_dir, out_dir, options, overrides, recursive,
                                                             planned=True)  # fmt: skip
    try:
        say_left_out(in_dir, recursive, skip=out_dir)
        for item in result.items:
            if item.status != "pending":
                continue
            with held_warnings(item.warnings), video_io.folders_made_under(out_dir):
                try:
                    item.result = upscale(item.input, item.output, opts, restorer=restorer, dry_run=True)
                    item.status = "done"
                except DoveError as exc:
                    item.fail(exc)
        if record is not None:  # each file's plan, as the run's manifest will have it
            record.write(None)
    finally:
        if record is not None:
            record.release()
    return result


def say_warnings_once(items: list[BatchItem]) -> None:
    """Each kind of warning the files' dry runs held, once, with the figures of the first file that
    had it and the names of the others (the first SHOWN_NAMES): `WARNING: a.mp4 (and 2 more files: b.mp4,
    c.mp4): this run needs about 23.8 GiB of host memory ...`."""
    kinds: dict[str, list[tuple[BatchItem, logging.LogRecord]]] = {}
    for item in items:
        for record in item.warnings:
            kinds.setdefault(str(record.msg), []).append((item, record))
    for held in kinds.values():
        first, record = held[0]
        names = list(dict.fromkeys(item.name for item, _ in held if item is not first))
        shown = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
        others = f" (and {len(names)} more file{'s' * (len(names) > 1)}: {shown})" if names else ""
        text = record.getMessage()
        for named in (first.input, first.output):  # the file is named once, in front
            text = text.removeprefix(f"{named}: ")
        logging.getLogger(record.name).log(record.levelno, "%s%s: %s", first.name, others, text)


__all__ = [
    "BatchItem",
    "BatchResult",
    "dry_run_batch",
    "plan_batch",
    "say_warnings_once",
    "upscale_batch",
]
