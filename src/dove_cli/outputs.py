"""Where one input's output goes and whether it is there, finished: what a one-file run
(upscaling.upscale) and a folder run (batch.upscale_batch) both need, so that neither imports the other.

What a folder holds for dove (`find_inputs`: videos and frame folders; `walk`: the folders of a
--recursive run) and whether an input is a folder run's (`is_batch_input`); the output of an input
given a folder (`into_folder`: a video's by `output_names`, an image sequence's under its images' own
names, `frames_output`); and whether an output there is a finished upscale of its input (`unfinished`),
which a re-run skips and `--resume` leaves alone. Imports no torch.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from dove_cli import note, provenance, video_io
from dove_cli.errors import DoveError, OutputError
from dove_cli.video_io.formats import FILM_OUTPUT_EXTENSION, codec_home, extension_holds
from dove_cli.video_io.sequences import output_numbers, own_pattern

FOLDER_EXTENSIONS = video_io.FOLDER_EXTENSIONS  # what a folder run takes
SHOWN_NAMES = 5  # names a "left out" warning lists
WORK_SUFFIX = ".dove-work"  # resume.WORK_SUFFIX, a run's work folder (not imported here: resume loads torch)


def find_videos(folder: Path, recursive: bool = False, skip: Path | None = None) -> list[Path]:
    """Video files directly in `folder` (FOLDER_EXTENSIONS), by name; `recursive`: in the folders
    under it too (`walk`, which leaves out `skip`), by their path under `folder`."""
    folders = walk(folder, skip).folders if recursive else [folder]
    return sorted(
        (
            p
            for searched in folders
            for p in searched.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in FOLDER_EXTENSIONS
        ),
        key=lambda p: p.parts,  # (a folder's files before the next name: sub/b.mp4, then sub.mp4)
    )


def find_inputs(folder: Path, recursive: bool = False, skip: Path | None = None) -> list[Path]:
    """What a folder run takes, in path order: `find_videos`, and frame folders (sub-folders of images
    and no videos: an image sequence each, symlinked ones too; `recursive`: every one under `folder`)."""
    if recursive:
        tree = walk(folder, skip)
        subfolders = tree.folders[1:] + tree.links  # (a frame folder is a leaf: a link to one cannot loop)
    else:
        subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and not p.name.endswith(WORK_SUFFIX) and (skip is None or p.resolve() != skip.resolve())]  # fmt: skip
    frames = [p for p in subfolders if is_image_folder(folder_entries(p))]
    return sorted(find_videos(folder, recursive, skip) + frames, key=lambda p: p.parts)


def is_batch_input(path: Path) -> bool:
    """A folder holding videos, or frame folders and no images of its own (a folder of images is one
    image-sequence input instead)."""
    if not path.is_dir():
        return False
    return bool(find_videos(path)) or (not is_image_folder(folder_entries(path)) and bool(find_inputs(path)))


def folder_entries(folder: Path) -> list[Path]:
    """What `folder` holds, less hidden files (macOS's ._0001.png is no image); [] when it cannot be listed."""
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []


def is_image_folder(entries: list[Path]) -> bool:
    """Images and no videos: an image sequence (a folder of frames, as `dove upscale DIR` reads it)."""
    files = [p for p in entries if p.is_file()]
    return any(video_io.is_image_path(p) for p in files) and not any(
        p.suffix.lower() in FOLDER_EXTENSIONS for p in files
    )


@dataclass
class Tree:
    """What `walk` found: the folders a --recursive run searches, and those it leaves out."""

    folders: list[Path]  # the top one first, then the others in path order
    links: list[Path]  # symlinked folders: not followed (a link to a folder above would loop)
    unreadable: list[tuple[Path, str]]  # (folder, why): permission denied, ...


def walk(top: Path, skip: Path | None = None) -> Tree:
    """`top` and every folder under it, except hidden ones (.*), dove's work folders (*.dove-work),
    `skip` (the output folder, when it is inside) and symlinked ones, which are not followed. A
    folder that cannot be listed is left out with why (the top one's error is raised)."""
    tree = Tree([], [], [])
    skipped = skip.resolve() if skip is not None else None

    def visit(folder: Path) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            if folder == top:
                raise
            tree.unreadable.append((folder, exc.strerror or str(exc)))
            return
        tree.folders.append(folder)
        for p in entries:
            if p.name.startswith(".") or p.name.endswith(WORK_SUFFIX) or not p.is_dir():
                continue
            if p.is_symlink():
                tree.links.append(p)
            elif p.resolve() != skipped:
                visit(p)

    visit(top)
    return tree


def into_folder(
    input: str | Path, output: str | Path, container: str | None, codec: str | None, recursive: bool = False
) -> Path:
    """The output of one input given a folder (one that exists, or text that ends in /, as a Path
    cannot), as `cp` does, `dove upscale a.mp4 -o out/` and upscale() alike; the writer makes a new
    folder. A video (any file that is not an image, whatever its extension: a capture named `rec`):
    FOLDER/<the name a folder run gives it (with --container)>; an image sequence (a folder of
    images, a pattern): FOLDER with its images' own names (`frames_output`). Any other output as it is."""
    from dove_cli.options import container_name

    path, input = Path(output), Path(input)
    if not (path.is_dir() or isinstance(output, str) and output.endswith(("/", os.sep))):
        return path
    if not recursive and ((input.is_dir() and not is_batch_input(input)) or video_io.is_pattern(input)):
        path = frames_output(input, path)
    elif input.is_file() and not video_io.is_image_path(input):
        path = path / output_names([input], container and container_name(container), codec)[0]
    else:
        return path
    note.info("writing %s", path)
    return path


def output_names(videos: list[Path], container: str | None = None, codec: str | None = None) -> list[str]:
    """Each video's output name: its own, or NAME.mkv for a container dove cannot write or that cannot
    hold `codec` (--codec; ProRes: NAME.mov, `codec_home`), or with `container` (--container mp4)
    NAME.mp4 for all; a.avi beside a.mkv becomes a.avi.mkv, so that no two inputs write one file."""
    home = codec_home(codec)
    writable = [v.suffix if v.suffix.lower() in video_io.VIDEO_EXTENSIONS and (codec is None or extension_holds(
        v.suffix, codec)) else home for v in videos]  # fmt: skip
    exts = [f".{container}" for _ in videos] if container else writable
    names = [v.name if v.suffix.lower() == ext.lower() else v.stem + ext for v, ext in zip(videos, exts, strict=True)]
    count = Counter(n.lower() for n in names)
    return [n if n == v.name or count[n.lower()] == 1 else v.name + ext
            for n, v, ext in zip(names, videos, exts, strict=True)]  # fmt: skip


def frames_output(folder: Path, out: Path) -> Path:
    """Where the image sequence `folder` (or pattern) goes in the folder `out`: under its images' own
    names, as the pattern that writes them (0000.png, 0001.png, ... -> out/%04d.png: upscale() writes
    each image under its input's number, a gap kept), in their format. Names that no one pattern gives
    (a stray name, padding that changes) are refused: a pattern output numbers them anew."""
    files = video_io.image_inputs(folder) or [folder]
    if (named := video_io.numbering(files)) is None:
        shown = ", ".join(f.name for f in files[:3]) + ", ..." * (len(files) > 3)
        raise OutputError(f"{folder}: its images ({shown}) are not named by one number counting up, so {out} "
                          f"cannot keep their names; give an image pattern (-o {out / written_as(own_pattern(files))}), "
                          "whose images are numbered anew, one after another")  # fmt: skip
    return out / written_as(named[0])


def written_as(name: str) -> str:
    """An image's name as dove writes it: its own, or with .tif for a DPX or EXR, which dove does not write."""
    return name if Path(name).suffix.lower() in video_io.IMAGE_EXTENSIONS else Path(name).stem + FILM_OUTPUT_EXTENSION


def output_there(output: Path) -> bool:
    """Whether some of `output` is there: the file, or images an image pattern names."""
    return bool(video_io.matching_images(output)) if video_io.is_pattern(output) else output.exists()


def unfinished(
    source: Path,
    output: Path,
    preview: str | None,
    fps: str | float | Fraction | None = None,
    start_number: int | None = None,
) -> str | None:
    """Why an existing `output` is not a finished upscale of `source`, or None. The note its run left
    (provenance) says it: made from this input as it is now (else failed: a re-captured tape, another
    file of that name), of this span. An output without one (an older dove's) is judged by its
    length: one that does not open as a video (empty, cut off), or whose video is shorter than the
    input's by more than a frame in ten (one frame at least, two at most; two for MPEG-TS, whose
    length reads short by up to two) is unfinished: a --preview run's output, when this run is not
    one, or a cut-off copy. What a re-run must not skip. An image pattern's images: `_images_unfinished`."""
    from dove_cli.options import parse_preview

    if (made_from := provenance.fitting_note(output)) is not None:
        if changed := provenance.changed_since(source, output, made_from):
            return changed
    if video_io.is_pattern(output):
        return _images_unfinished(source, output, preview, fps, start_number)
    if made_from is not None:
        if made_from.get("preview") in (None, preview):
            return None
    made = video_io.video_length(output)
    if made is None:
        return f"{output}: exists but is not a video dove can read (empty or cut off?)"
    full = video_io.video_length(source)
    if full is None:  # the input's own run says what is wrong with it
        return None
    (length, _), (wanted, frame) = made, full
    if preview:
        start, span = parse_preview(preview)
        wanted = min(max(Fraction(0), wanted - Fraction(start)), Fraction(span))
    slack = 2 * frame if video_io.VIDEO_EXTENSIONS.get(output.suffix.lower()) == "mpegts" else (
        min(2 * frame, max(frame, wanted / 10)))  # fmt: skip
    if length >= wanted - slack:
        return None
    guess = " (cut off?)" if preview else " (a --preview, or cut off?)"
    return f"{output}: exists but its video is {float(length):.1f} s of {float(wanted):.1f} s{guess}"


def _images_unfinished(source: Path, output: Path, preview: str | None, fps: str | float | Fraction | None,
                       start_number: int | None) -> str | None:  # fmt: skip
    """`unfinished` for an image pattern: its images from its first number on (`start_number`, else
    `sequences.default_start`), without a gap, must be every frame the run makes: from an image sequence, each
    of its images (of the `preview` span, at `fps`), exactly; from a video, as many as it lasts,
    within a tenth (one to two frames), as a video output is judged. (No note is left: the output
    folder holds the images only.)"""
    from dove_cli.options import parse_preview

    try:
        files = video_io.image_inputs(source)
    except DoveError:  # the input's own run says what is wrong with it
        return None
    selected = parse_preview(preview) if preview else None  # (start, duration)
    if files is not None:
        numbers, slack = output_numbers(files, selected, fps, start_number), 0
    else:
        if (full := video_io.video_length(source)) is None:
            return None
        (length, frame), (at, span) = full, selected or (Fraction(0), None)
        wanted = round((length if span is None else min(max(Fraction(0), length - at), span)) / frame)
        slack = min(2, max(1, wanted // 10))
        start = 1 if start_number is None else start_number
        numbers = list(range(start, start + wanted))
    wanted = len(numbers)
    names = [video_io.frame_name(output, n) for n in numbers]
    missing = [name for name in names if not (output.parent / name).is_file()]
    if set(missing) <= set(names[wanted - slack :]):  # (a video's last image or two: its length's slack)
        return None
    guess = " (cut off?)" if preview else " (a --preview, or cut off?)"
    return (f"{output}: holds {wanted - len(missing)} of the {wanted} images from {names[0]} on; missing "
            f"{some_names(missing)}{guess}")  # fmt: skip


def some_names(names: list[str]) -> str:
    more = f", {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more
