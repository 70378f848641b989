"""Upscale every video in a folder: one model load for all, keep going past bad files.

`dove upscale in_dir/ -o out_dir/` lands here. Outputs keep their input's name (a container dove
only reads, such as .avi or .mpg, becomes .mkv); those that exist already are skipped (unless
`overwrite`), so re-running a batch after a failure or an interruption only does what is missing,
and a file interrupted half way continues.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dove_cli import note, video_io
from dove_cli.errors import DoveError, InputError, Interrupted, OutputError
from dove_cli.logs import held_warnings

log = logging.getLogger(__name__)

FOLDER_RESUME_HINT = "run the same command again to continue (finished files are skipped)"
# What a folder run takes: the containers dove writes, and those it only reads (written as .mkv).
FOLDER_EXTENSIONS = (*video_io.VIDEO_EXTENSIONS, *video_io.READ_ONLY_VIDEO_EXTENSIONS)

Status = Literal["pending", "running", "done", "skipped", "failed"]


@dataclass
class BatchItem:
    input: Path
    output: Path
    status: Status = "pending"
    error: str | None = None  # one line, for failed items
    result: Any = None  # the UpscaleResult of a done item
    warnings: list[logging.LogRecord] = field(default_factory=list)  # a dry run's, said once per folder


@dataclass
class BatchResult:
    items: list[BatchItem] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if item.status == "failed"]


def find_videos(folder: Path) -> list[Path]:
    """Video files directly in `folder` (FOLDER_EXTENSIONS), by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in FOLDER_EXTENSIONS
    )


def output_names(videos: list[Path]) -> list[str]:
    """Each video's output name: its own, or NAME.mkv for a container dove cannot write; a.avi beside
    a.mkv becomes a.avi.mkv, so that no two inputs write one file."""
    names = [v.name if v.suffix.lower() in video_io.VIDEO_EXTENSIONS else v.stem + ".mkv" for v in videos]
    count = Counter(n.lower() for n in names)
    return [n if n == v.name or count[n.lower()] == 1 else v.name + ".mkv" for n, v in zip(names, videos, strict=True)]


def is_batch_input(path: Path) -> bool:
    """A folder holding videos (a folder of only images is one image-sequence input instead)."""
    return path.is_dir() and bool(find_videos(path))


def plan_batch(in_dir: Path, out_dir: Path, *, overwrite: bool = False) -> list[BatchItem]:
    """One item per video; outputs that exist already are marked skipped unless `overwrite`."""
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a folder")
    videos = find_videos(in_dir)
    if not videos:
        raise InputError(f"{in_dir}: no videos ({', '.join(sorted(FOLDER_EXTENSIONS))})")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file; for a folder of videos, -o must be a folder")
    if not out_dir.exists() and out_dir.suffix.lower() in {**video_io.VIDEO_EXTENSIONS, **video_io.IMAGE_EXTENSIONS}:
        raise OutputError(f"{out_dir}: looks like a file name; for a folder of videos, -o must be a folder "
                          "(outputs keep their input's name)")  # fmt: skip
    if out_dir.resolve() == in_dir.resolve():
        raise OutputError(f"{out_dir}: is the input folder; choose another output folder")
    items = [BatchItem(v, out_dir / name) for v, name in zip(videos, output_names(videos), strict=True)]
    for item in items:
        if item.output.exists() and not overwrite:
            item.status = "skipped"
    return items


def say_subfolders(in_dir: Path) -> None:
    """Warn that videos in sub-folders are left out. Said by the run and its dry run, once each, not by
    plan_batch (the CLI plans first to size its progress bar)."""
    subfolders = sorted(p.name for p in in_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        more = f", {len(subfolders) - 5} more" if len(subfolders) > 5 else ""
        log.warning("%s: sub-folders are not searched (%s%s)", in_dir, ", ".join(subfolders[:5]), more)


def upscale_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    options: Any = None,
    *,
    restorer: Any = None,
    on_file: Callable[[int, BatchItem], None] | None = None,
    progress: Callable[[Any], None] | None = None,
    cluster: Any = None,
    **overrides: Any,
) -> BatchResult:
    """Upscale every video of `in_dir` into `out_dir` (same names), loading the model once.

    A file that fails (bad input, full disk, ...) is recorded with its error and the batch goes
    on; bad options or a missing model stop the batch at once, and so does Ctrl-C (Interrupted).
    on_file(index, item) is called when a file starts and when it ends; progress gets the
    per-file frame progress of `upscale`. With `ray` set (or a `cluster` from dove_cli.distributed),
    the files are spread over Ray workers (one model load each, long files split into segments) and
    progress gets the frames of all files together.
    """
    from dove_cli import models
    from dove_cli.options import check_options, with_overrides
    from dove_cli.resume import RESUME_HINT
    from dove_cli.upscaling import Progress, upscale

    opts = check_options(with_overrides(options, overrides))
    if not opts.overwrite:  # a re-run carries on where an interrupted file stopped (if its options match)
        opts = replace(opts, resume=True)
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    result = BatchResult(plan_batch(in_dir, out_dir, overwrite=opts.overwrite))
    say_subfolders(in_dir)
    if not out_dir.is_dir():
        try:
            out_dir.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
        note.info("created output folder %s", out_dir)
    if opts.ray or cluster is not None:
        from dove_cli.distributed import upscale_batch_on_ray

        upscale_batch_on_ray(result.items, opts, cluster=cluster, progress=progress, on_file=on_file, restorer=restorer)
        return result
    model = restorer
    for index, item in enumerate(result.items):
        if item.status == "skipped":
            if on_file:
                on_file(index, item)
            continue
        item.status = "running"
        if on_file:
            on_file(index, item)
        if model is None:  # loaded once, and only when there is something to do
            if progress:
                progress(Progress(0, 0, "", 0.0, "loading model"))
            device, dtype = models.resolve_device(opts)
            model = models.load_model(opts, device, dtype)
        try:
            item.result = upscale(item.input, item.output, opts, restorer=model, progress=progress)
            item.status = "done"
        except Interrupted as exc:  # a folder run continues an interrupted file without --resume
            left = sum(i.status == "pending" for i in result.items)
            tally = f" ({result.count('done')} files done in this run, {left} not started)"
            raise Interrupted(str(exc).replace(RESUME_HINT, FOLDER_RESUME_HINT) + tally) from None
        except KeyboardInterrupt:
            raise
        except DoveError as exc:
            item.status, item.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the batch
            log.debug("%s failed", item.input, exc_info=True)
            item.status, item.error = "failed", f"{item.input}: {type(exc).__name__}: {exc}"
        if item.status == "failed":
            log.debug("%s: %s", item.input, item.error)
        if on_file:
            on_file(index, item)
    return result


def dry_run_batch(in_dir: str | Path, out_dir: str | Path, options: Any = None, **overrides: Any) -> BatchResult:
    """`--dry-run` for a folder: each video's plan (item.result) as `upscale(dry_run=True)` makes it,
    no weights read; outputs that exist are skipped as the run would skip them, and a file that
    cannot be planned is failed with its one-line error. Each file's warnings are held in
    item.warnings for `say_warnings_once`: the same advice for every file is noise."""
    from dove_cli.options import check_options, with_overrides
    from dove_cli.upscaling import upscale

    opts = check_options(with_overrides(options, overrides))
    if not opts.overwrite:  # as the run will: an interrupted file is continued (its plan says how far it got)
        opts = replace(opts, resume=True)
    result = BatchResult(plan_batch(Path(in_dir), Path(out_dir), overwrite=opts.overwrite))
    say_subfolders(Path(in_dir))
    for item in result.items:
        if item.status == "skipped":
            continue
        with held_warnings(item.warnings):
            try:
                item.result, item.status = upscale(item.input, item.output, opts, dry_run=True), "done"
            except DoveError as exc:
                item.status, item.error = "failed", str(exc)
    return result


def say_warnings_once(items: list[BatchItem]) -> None:
    """Each kind of warning the files' dry runs held, once, with the figures of the first file that
    had it: `WARNING: a.mp4 (and 2 more files): this run needs about 23.8 GiB of host memory ...`."""
    kinds: dict[str, list[tuple[BatchItem, logging.LogRecord]]] = {}
    for item in items:
        for record in item.warnings:
            kinds.setdefault(str(record.msg), []).append((item, record))
    for held in kinds.values():
        (first, record), more = held[0], len({id(item) for item, _ in held}) - 1
        others = f" (and {more} more file{'s' if more > 1 else ''})" if more else ""
        text = record.getMessage()
        for named in (first.input, first.output):  # the file is named once, in front
            text = text.removeprefix(f"{named}: ")
        logging.getLogger(record.name).log(record.levelno, "%s%s: %s", first.input.name, others, text)


__all__ = [
    "BatchItem",
    "BatchResult",
    "dry_run_batch",
    "find_videos",
    "is_batch_input",
    "plan_batch",
    "say_warnings_once",
    "upscale_batch",
]
