"""`dove eval`'s pairing: which prediction goes with which GT (by name, across Unicode
normalizations), and every check before scoring that they can be paired frame for frame (numbering,
sizes, that each opens); `dove upscale --eval`'s outputs to be against its GT."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from dove_cli import note as said_note
from dove_cli import video_io
from dove_cli.errors import InputError
from dove_cli.humanize import apart, counted, one_name, spelled
from dove_cli.metrics.selection import eval_flag
from dove_cli.metrics.timing import EVAL_DECODE_HINT, check_starts
from dove_cli.video_io.image_reader import image_inputs, stray_said
from dove_cli.video_io.paths import why_missing
from dove_cli.video_io.reader import IGNORE_HINT, shown_ranges
from dove_cli.video_io.sequences import missing_numbers, natural_key, numbered

log = logging.getLogger(__name__)

MAX_CROP = 16  # px per side that a prediction and its GT may differ by; more is refused


@dataclass(frozen=True)
class Item:
    name: str
    path: Path


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and video_io.is_image_path(p) for p in folder.iterdir())


def list_items(path: str | Path, role: str = "PRED") -> tuple[list[Item], bool]:
    """(items, is_collection): one video or frame folder, or the videos and frame folders of a folder."""
    path = Path(path)
    if video_io.is_pattern(path) and not path.exists():  # frames/%06d.png, as `dove upscale` takes (and writes)
        image_inputs(path)  # none that match: said
        return [Item(path.parent.name or path.stem, path)], False
    if not path.exists():
        raise InputError(f"{path} ({role}): {why_missing(path, 'file or folder')}")
    if path.is_file():
        return [Item(path.stem, path)], False
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    if broken := broken_links(path):  # (else a link in PRED is said as a missing prediction, with nothing of why)
        log.warning("%s: broken links left out (%s)", path, ", ".join(p.name for p in broken))
    videos = [p for p in entries if p.is_file() and p.suffix.lower() in video_io.VIDEO_EXTENSIONS]
    folders = [p for p in entries if p.is_dir() and _has_images(p)]
    if (videos or folders) and _has_images(path):  # which is it: the frames, or the collection?
        images = sum(1 for p in entries if p.is_file() and video_io.is_image_path(p))
        held = ", ".join(p.name for p in (videos + folders)[:3]) + (", ..." if len(videos + folders) > 3 else "")
        raise InputError(f"{path}: holds {images} images and videos or frame folders ({held}) ({role}): move "
                         "the images into a folder of their own, or the others out")  # fmt: skip
    if videos or folders:
        items: dict[str, Item] = {}
        for p in videos + folders:
            name = p.stem if p.is_file() else p.name
            if name in items:
                raise InputError(f"{path}: two inputs are named '{name}' ({items[name].path.name}, {p.name})")
            items[name] = Item(name, p)
        return [items[k] for k in sorted(items, key=natural_key)], True  # clip2 before clip10, as papers list them
    if _has_images(path):
        return [Item(path.name, path)], False
    raise InputError(f"{path}: holds no videos, frame folders or images ({role})")


def broken_links(folder: Path) -> list[Path]:
    """The links in `folder` to nothing: left out of its inputs (said), and named where their
    video is then missed ("no GT named 'c3'": G/c3.mp4 is such a link)."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_symlink() and not p.exists())


def links_said(names: Sequence[str], folder: str | Path) -> str:
    """ "G/c3.mp4 is a broken link" for those of `names` that are broken links in `folder`, else ""."""
    links = [p for p in broken_links(Path(folder)) if p.stem in names or p.name in names]
    if not links:
        return ""
    return f"{', '.join(str(p) for p in links)} {'is a broken link' if len(links) == 1 else 'are broken links'}"


def match_names(names: Iterable[str], targets: Iterable[str], where: str, say: bool = True) -> dict[str, str]:
    """Each of `names` that has one in `targets` -> that target: the same name, else the one equal to it
    after Unicode normalization (a Mac writes `café` as NFD, e + U+0301, Linux as NFC, é), when that
    pairing is one to one. Such pairings are said on one line (`where`: what is paired with what),
    unless not `say` (said before)."""
    names, targets = list(names), list(targets)
    matched = {name: name for name in names if name in targets}
    left = [t for t in targets if t not in matched]
    nfc = lambda name: unicodedata.normalize("NFC", name)  # noqa: E731
    for name in (n for n in names if n not in matched):
        twins = [t for t in left if nfc(t) == nfc(name)]
        if len(twins) == 1 and sum(nfc(n) == nfc(name) for n in names if n not in matched) == 1:
            matched[name] = twins[0]
    if say and (renamed := [f"{spelled(n)} with {spelled(t)}" for n, t in matched.items() if n != t]):
        said_note.info("%s: paired by name in another Unicode normalization: %s", where, ", ".join(renamed))
    return matched


def case_twins(names: Iterable[str], targets: Iterable[str]) -> str:
    """ "; 'clip' there differs from 'Clip' only in case" for `names` without a match that have a target
    differing only in case (one file on macOS and Windows, two on Linux), else ""."""
    folded = {one_name(t): t for t in targets}
    twins = [f"'{folded[one_name(n)]}' there differs from '{n}' only in case" for n in names if one_name(n) in folded]
    return f"; {', '.join(twins)}: rename one to pair them" if twins else ""


def pair_inputs(
    pred: str | Path, gt: str | Path | None, allow_missing: bool = False, say_pairing: bool = True
) -> tuple[list[tuple[Item, Item | None]], list[str], list[Problem]]:
    """Match predictions with GT by name. Returns the pairs, the names of GT videos without a
    prediction, and what is wrong with the matching (`Problem`s, said with every pair's own by
    `evaluate` before any scoring): predictions without a GT, and GT videos without a prediction
    unless `allow_missing` (a mean over part of a benchmark is not its mean). say_pairing: say the
    names paired across Unicode normalizations (`match_names`)."""
    preds, pred_many = list_items(pred, "PRED")
    if gt is None:
        return [(p, None) for p in preds], [], []
    gts, gt_many = list_items(gt, "GT")
    if pred_many != gt_many:
        what = lambda many, n: f"a folder of {n} inputs" if many else "one input"  # noqa: E731
        raise InputError(
            f"{pred if pred_many else gt}: PRED is {what(pred_many, len(preds))} but GT is {what(gt_many, len(gts))};"
            " give two videos (or frame folders), or two folders matched by name"
        )
    if not pred_many:
        return [(preds[0], gts[0])], [], []
    by_name = {g.name: g for g in gts}
    matched = match_names((p.name for p in preds), by_name, f"{pred} and {gt}", say_pairing)
    pairs: list[tuple[Item, Item | None]] = [(p, by_name[matched[p.name]]) for p in preds if p.name in matched]
    problems: list[Problem] = []
    if orphans := [p for p in preds if p.name not in matched]:
        said = (f"{orphans[0].path}: no GT named '{orphans[0].name}' in {gt}" if len(orphans) == 1 else
                f"{pred}: no GT in {gt} for {len(orphans)} of its {len(preds)} videos ({', '.join(p.name for p in orphans)})")  # fmt: skip
        links = links_said([p.name for p in orphans], gt)
        twins = case_twins([p.name for p in orphans], set(by_name) - set(matched.values()))
        problems.append(Problem([p.name for p in orphans],
                                f"{said} ({links + '; ' if links else ''}videos and frame folders are matched by name{twins})"))  # fmt: skip
    unused = sorted(set(by_name) - set(matched.values()), key=natural_key)
    if unused and not allow_missing:
        problems.append(Problem(unused, (
            f"{gt}: no prediction in {pred} for {len(unused)} of its {len(gts)} videos ({shown_names(unused)}"
            f"{'; ' + links if (links := links_said(unused, pred)) else ''}):"
            " a mean over the others is not the benchmark's; make the missing predictions, or give"
            " --allow-missing to score only those present"
        )))  # fmt: skip
    return pairs, unused, problems


@dataclass(frozen=True)
class Problem:
    """What stops the videos `names` from being scored, found before any scoring."""

    names: list[str]
    said: str


def refuse(problems: Sequence[Problem]) -> None:
    """Every problem found before scoring, at once (not one run per bad clip): one alone is the
    error; several are each said on a line of their own (logged as errors), then the error names
    the videos."""
    if not problems:
        return
    if len(problems) == 1:
        raise InputError(problems[0].said)
    for problem in problems:
        log.error("%s", problem.said)
    names = list(dict.fromkeys(n for problem in problems for n in problem.names))
    raise InputError(f"{counted(len(names), 'video')} cannot be scored as {'they are' if len(names) > 1 else 'it is'}"
                     f" ({', '.join(apart(names))}), each said above; nothing was scored")  # fmt: skip


def shown_names(names: Sequence[str], limit: int = 5) -> str:
    """'a, b, c' (then ', ...' after `limit` names): a list a one-line message can hold."""
    return ", ".join(apart(list(names))[:limit]) + (", ..." if len(names) > limit else "")


def check_numbering(path: Path, role: str, paired: bool) -> None:
    """Frames are paired by position, so a frame folder whose numbering has a gap (0004.png, then
    0006.png), or images whose names do not fit its numbering (0003_edit.png, slate.png, read in name
    order among the frames), would pair every frame after them with the wrong one: refused when
    `paired` (PRED and GT alike), else said (E*warp takes the images on each side as consecutive)."""
    files = image_inputs(path) if path.is_dir() or video_io.is_pattern(path) else None
    main, strays = numbered(files) if files else ([], [])
    if strays:
        assert files is not None
        said = f"{stray_said(files, strays)} ({role})"
        if paired:
            raise InputError(f"{path}: {said}: frames are paired by position, so they would be scored as frames and"
                             " every frame after them against the wrong one; move them out of the folder")  # fmt: skip
        log.warning("%s: %s: they are scored as frames, in name order among the others", path, said)
    gaps = missing_numbers(files) if files else []
    if not gaps:
        return
    assert files is not None
    n = sum(b - a + 1 for a, b in gaps)
    missing = (f"frame number{'s' if n > 1 else ''} {shown_ranges(gaps)} {'are' if n > 1 else 'is'} missing"
               f" ({main[0].name} to {main[-1].name}) ({role})")  # fmt: skip
    if paired:
        raise InputError(
            f"{path}: {missing}: frames are paired by position, so every frame after a gap would be scored"
            " against the wrong one; restore the missing frames, or remove the same frames from the other side"
            " and number both without gaps"
        )
    log.warning("%s: %s: the %d images are scored in order, one frame each", path, missing, len(files))


def check_size(
    pred: str,
    size: tuple[int, int],
    gt: Path,
    gt_size: tuple[int, int],
    max_crop: int,
    border: str = "raise --max-crop",
    strict: bool = False,
    option: str = "--metrics",
) -> None:
    """Refuse a PRED and GT more than `max_crop` px apart in width or height (smaller gaps are cropped;
    with `strict`, any gap). border: what to do when they differ only by a border (`dove upscale
    --eval` has no --max-crop). option: the metrics flag, naming the command's --strict (`eval_flag`)."""
    (w, h), (gw, gh) = size, gt_size
    if abs(gw - w) > max_crop or abs(gh - h) > max_crop:
        raise InputError(
            f"{pred}: {w}x{h}, but its GT {gt} is {gw}x{gh}: more than {max_crop} px apart (a different scale?"
            " an upscale's own low-resolution input is not its GT); score against the high-resolution original,"
            f" or {border} if they differ only by a border"
        )
    if strict and size != gt_size:
        raise InputError(f"{pred}: {w}x{h}, but its GT {gt} is {gw}x{gh} {strict_said(option)}")


def check_planned_sizes(
    planned: Mapping[str, tuple[Path, tuple[int, int] | None]], collection: bool, gt: str | Path, strict: bool = False
) -> None:
    """`dove upscale --eval GT`, before the upscale: the outputs to be, {name: (path, (width,
    height), or None for an input that cannot be read, which the upscale says)}, matched with GT as
    `dove eval` will match them, and their sizes against GT's (with its default --max-crop; any gap
    with `strict`, --eval-strict). A GT of another scale, a missing one, a GT without an output, or a
    gap in a GT frame folder's numbering is said before hours of work."""
    gts, gt_many = list_items(gt, "GT")
    if collection != gt_many:
        what = lambda many, n: f"a folder of {n} videos" if many else "one video"  # noqa: E731
        raise InputError(f"{gt}: the output is {what(collection, len(planned))} but --eval GT is"
                         f" {what(gt_many, len(gts))}; give a GT of the same layout (matched by name)")  # fmt: skip
    by_name = {g.name: g.path for g in gts} if gt_many else {name: gts[0].path for name in planned}
    matched = match_names(planned, by_name, f"the outputs and {gt}")
    if unused := sorted(set(by_name) - set(matched.values())):
        raise InputError(
            f"{gt}: no output of this upscale for {len(unused)} of its {len(by_name)} videos"
            f" ({shown_names(unused)}): a mean over the others is not the benchmark's; upscale without --eval"
            " and run `dove eval OUTPUT GT --allow-missing` to score only those present"
        )
    for name, (path, size) in planned.items():
        if name not in matched:
            raise InputError(f"{path}: no GT named '{name}' in {gt} (videos and frame folders are matched by "
                             f"name{case_twins([name], by_name)})")  # fmt: skip
        gt_path = by_name[matched[name]]
        check_numbering(gt_path, "GT", paired=True)
        with video_io.open_reader(gt_path, warn=False) as reader:  # an unreadable GT: said now too
            gt_size = reader.info.width, reader.info.height
        if size is not None:
            border = "upscale without --eval and run `dove eval OUTPUT GT --max-crop N`"
            check_size(str(path), size, gt_path, gt_size, MAX_CROP, border, strict, "--eval-metrics")


def strict_said(option: str) -> str:
    """Said by each refusal of --strict (as `option`'s command names it: `eval_flag`)."""
    return f"({eval_flag('strict', option)}: only pairs of one size and frame count are scored, none cut)"


def check_pair(
    p: Item,
    g: Item | None,
    read: Callable[[Path], video_io.VideoReader],
    max_crop: int,
    strict: bool,
    problems: list[Problem],
    option: str = "--metrics",
) -> int | None:
    """Check a prediction (and its GT, None when no metric compares them) before any scoring: the
    frame folders' numbering, their starts, that each opens, and the sizes (more than `max_crop`
    apart; with `strict`, any other difference, and frame folders' counts). Each problem is added to
    `problems`, so that a benchmark's every bad pair is said at once. Returns PRED's frame count
    (None: unknown)."""

    def check(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except InputError as exc:
            problems.append(Problem([p.name], str(exc)))

    check(check_numbering, p.path, "PRED", g is not None)
    pi = probe(read, p.path, p.name, problems)
    if g is None:
        return pi.num_frames if pi is not None else None
    check(check_numbering, g.path, "GT", True)
    check(check_starts, p.path, g.path)
    gi = probe(read, g.path, p.name, problems)
    if pi is not None and gi is not None:
        size, gt_size = (pi.width, pi.height), (gi.width, gi.height)
        check(check_size, str(p.path), size, g.path, gt_size, max_crop, "raise --max-crop", strict, option)
        if strict and pi.num_frames_exact and gi.num_frames_exact and pi.num_frames != gi.num_frames:
            said = (f"{p.path}: {counted(pi.num_frames, 'frame')}, but its GT {g.path} has {gi.num_frames}"
                    f" {strict_said(option)}")  # fmt: skip
            problems.append(Problem([p.name], said))
    return pi.num_frames if pi is not None else None


def probe(
    read: Callable[[Path], video_io.VideoReader], path: Path, name: str, problems: list[Problem]
) -> video_io.VideoInfo | None:
    """An input's VideoInfo, None when it cannot be opened: dove's own error (not a video FFmpeg can
    read) is added to `problems` under the pair's `name`, with the others; any other is raised (with
    its message) when it is read for scoring."""
    try:
        with read(path) as reader:
            return reader.info
    except InputError as exc:
        problems.append(Problem([name], str(exc).replace(IGNORE_HINT, EVAL_DECODE_HINT)))
        return None
    except (av.FFmpegError, OSError):  # said when read
        return None
