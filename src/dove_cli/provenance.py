"""What made each output of a folder run: its input's size and modification time when the run
began, noted in a small JSON file in a hidden folder beside the outputs (`.dove-sources/a.mp4.json`; a
frame folder's beside that folder, `.dove-sources/scan.json`: the folder holds its images only).

A re-run skips an output only while its input is still the file that made it (outputs.unfinished): a
re-captured tape of the same length, or another clip of the same name flattened into one output
folder, is failed with one line, not skipped with the stale output kept. The note is not a tag in
the output: MPEG-TS (.ts, .m2ts, .mts) keeps no tags, MOV only QuickTime's fixed keys (another key
needs movflags use_metadata_tags, which moves every tag of the file into mdta keys that some
players do not read) and MP4 only iTunes' own. The note names the output's size too: one that no
longer fits its output (replaced, cut short) says nothing, and the output's length alone is
checked, as for outputs an older dove made. Torch-free: a folder is checked before a model loads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from dove_cli.errors import DoveError
from dove_cli.jsontext import json_text
from dove_cli.video_io.image_reader import image_inputs
from dove_cli.video_io.paths import is_pattern, write_whole

log = logging.getLogger(__name__)

FOLDER = ".dove-sources"  # beside a folder run's outputs: one note per output, named after it
# Modification times this close are one file's: a copy onto FAT keeps them to 2 s (HFS+ to 1 s), and no
# re-capture is written within 2 s of the file it replaces.
SAME_TIME_NS = 2 * 10**9


def note_path(output: Path) -> Path:
    """Where `output`'s note is: beside it, or beside its folder for an image sequence (`out/scan/%04d.png`:
    `out/.dove-sources/scan.json`), whose folder holds its images only (a benchmark's scripts list it)."""
    if is_pattern(output):
        return output.parent.parent / FOLDER / f"{output.parent.name}.json"
    return output.parent / FOLDER / f"{output.name}.json"


def files_of(path: Path) -> list[Path]:
    """The files an input or output is: an image sequence's images (a pattern, a folder of images), else
    the file itself. OSError when an image sequence has none."""
    if not (is_pattern(path) or path.is_dir()):
        return [path]
    try:
        return image_inputs(path) or []
    except DoveError as exc:
        raise OSError(str(exc)) from None


def size_and_time(path: Path) -> tuple[int, int]:
    """An output's size and modification time (ns): an image sequence's, its images' sizes in all and the
    newest one's time, as `identity` has an input's."""
    stats = [f.stat() for f in files_of(path)]
    return sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)


def identity(files: list[Path], path: Path) -> dict[str, Any]:
    """What says an input (the video `path`, or the `files` of an image sequence) is the same file
    as before: its path, size and modification time (the newest, of several files)."""
    stats = [f.stat() for f in files]
    return {
        "input": str(path.resolve()),
        "input_files": len(files),
        "input_bytes": sum(s.st_size for s in stats),
        "input_mtime_ns": max(s.st_mtime_ns for s in stats),
    }


def note_made(output: Path, fingerprint: dict[str, Any]) -> None:
    """Note that `output`, whole at its name now, was made from the input its run's `fingerprint`
    describes (as it was when the run began), and of which span (--preview). One that cannot be
    written is a warning: the output is done, and a re-run checks its length instead (an image
    sequence's: counts its images)."""
    path = note_path(output)
    kept = {k: v for k, v in fingerprint.items() if k.startswith("input")}
    try:
        made = {**kept, "preview": fingerprint.get("preview"), "output_bytes": size_and_time(output)[0],
                "made": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
        path.parent.mkdir(exist_ok=True)
        write_whole(path, json_text(made, indent=1) + "\n")
    except OSError as exc:
        log.warning("%s: cannot note what made it in %s (%s); a re-run will check its length only", output, path,
                    exc.strerror or exc)  # fmt: skip


def fitting_note(output: Path) -> dict[str, Any] | None:
    """The note `output`'s run left, if it fits the output (its size); else None: no note (an older
    dove's output, a single file's), or the output was replaced or cut short since."""
    try:
        made = json.loads(note_path(output).read_text(encoding="utf-8"))
        made["input_bytes"], made["input_mtime_ns"] = int(made["input_bytes"]), int(made["input_mtime_ns"])
        fits = int(made["output_bytes"]) == size_and_time(output)[0]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return made if fits else None


def changed_since(source: Path, output: Path, made: dict[str, Any]) -> str | None:
    """Why `output` is not an upscale of `source` as it is now, by its note `made`: the input is
    another size, or was modified since (a re-capture; another file of that name; a frame folder's
    image re-scanned: its images' sizes in all, the newest one's time). None when it is the same
    file (moved elsewhere too)."""
    then_bytes, then_ns = made["input_bytes"], made["input_mtime_ns"]
    try:
        now_bytes, now_ns = size_and_time(source)
    except OSError:  # gone since the folder was listed: its own run says so
        return None
    if now_bytes == then_bytes and abs(now_ns - then_ns) <= SAME_TIME_NS:
        return None
    other = f"; it was made from {made.get('input')}" if made.get("input") != str(source.resolve()) else ""
    whose = f"{source.name}'s images are" if source.is_dir() else f"{source.name} is"
    return (f"{output}: its input has changed since it was made on {made.get('made', '?')} (then {then_bytes:,} "
            f"bytes, modified {_when(then_ns)}; {whose} now {now_bytes:,} bytes, modified {_when(now_ns)}){other}")  # fmt: skip


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))
