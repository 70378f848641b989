"""`dove eval`: score predictions (and optionally GT) video by video, frame by frame, streaming.

Inputs (PRED and GT alike): a video file, a folder of frames, or a folder of videos and/or frame
folders (the benchmark layouts: GT as frame folders, predictions as videos), matched by name
(file stem or folder name). Frames are read one at a time from both sides, scored, and dropped:
memory stays flat in the video length. Frames are paired by position (the i-th with the i-th), so a
frame folder with a gap in its numbering is refused, videos of different frame rates are said, and
two videos of one rate whose times part as they are paired (frames lost from the middle of one), or
whose first frames are half a frame or more apart with counts that differ (a first frame lost), are
refused.
Like the DOVE authors' script, a prediction and its GT are cut to the shorter frame count and the
smaller size (from the top-left), and the report says so; sizes that differ by more than `max_crop`
pixels are refused (a wrong scale, most likely). A GT without a prediction is refused unless
`allow_missing`, and then the mean says how many of the GT's videos it covers.

Scores: per frame (per consecutive pair for E*warp), the mean per video, and the mean over
videos (the paper's numbers). `EvalReport.to_dict()` is the JSON of `--json`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import av
import numpy as np
import torch

from dove_cli import note as said_note
from dove_cli import video_io
from dove_cli.errors import DecodeError, DoveError, InputError, ModelError, OptionError, OutputError
from dove_cli.humanize import apart, counted, drawn_text, one_name, path_text, real_names, real_text, spelled
from dove_cli.jsontext import json_text
from dove_cli.metrics import DEFAULT_METRICS, METRICS
from dove_cli.video_io.formats import check_untagged_matrix
from dove_cli.video_io.image_reader import image_inputs, stray_said
from dove_cli.video_io.paths import why_missing
from dove_cli.video_io.reader import IGNORE_HINT, shown_ranges
from dove_cli.video_io.sequences import frame_numbers, missing_numbers, natural_key, numbered

if TYPE_CHECKING:
    from dove_cli.metrics.vqa import DOVERScorer
    from dove_cli.options import UpscaleOptions

log = logging.getLogger(__name__)

MAX_CROP = 16  # px per side that a prediction and its GT may differ by; more is refused


# ------------------------------------------------------------------------------------------ inputs


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


def eval_flag(name: str, option: str = "--metrics") -> str:
    """`dove eval`'s flag `name` (`strict`) as the command whose metrics flag is `option` spells it:
    `--strict` for `dove eval`, `--eval-strict` for `dove upscale --eval` (its `--eval-metrics`)."""
    return f"{option.removesuffix('metrics')}{name}"


def parse_metrics(
    spec: str | Sequence[str] | None, has_gt: bool, where: str = "PRED", option: str = "--metrics"
) -> list[str]:
    """Metric names from "psnr,ssim" (default: DEFAULT_METRICS, the full-reference ones only with GT).
    option: the flag the user typed the list with (`--eval-metrics` for `dove upscale --eval`)."""
    if spec is None:
        return [m for m in DEFAULT_METRICS if has_gt or not METRICS[m].full_reference]
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise OptionError(f"{option} is empty")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise OptionError(f"{option}: unknown metric '{unknown[0]}' (known: {', '.join(METRICS)})")
    needs_gt = [n for n in names if METRICS[n].full_reference]
    if needs_gt and not has_gt:
        nr = ", ".join(n for n, m in METRICS.items() if not m.full_reference)
        raise OptionError(
            f"{where}: {', '.join(needs_gt)} need{'s' if len(needs_gt) == 1 else ''} a GT (dove eval PRED GT);"
            f" without GT only no-reference metrics run ({nr})"
        )
    return list(dict.fromkeys(names))


# ------------------------------------------------------------------------------------------ metrics


def fetch_weights(
    names: Iterable[str],
    has_gt: bool,
    local: Mapping[str, str] | None = None,
    *,
    download: bool = True,
    option: str = "--metrics",
    skip: bool = False,
) -> dict[str, str]:
    """Find (or download) the published weight files of `names` that `local` does not replace,
    before any scoring or upscaling: the missing files are said first (all in one error), not after
    hours of work. The error's way on starts with the metrics that need no weights, in words that fit
    the run: PSNR and SSIM need none, but they need a GT, so without one that advice would fail too;
    then the way on without them (--skip-unavailable, as `option`'s command names it: `eval_flag`).
    skip (--skip-unavailable): no error; returns {metric: why} of the metrics that cannot run."""
    from dove_cli.metrics import pretrained

    keys = [k for k in pretrained.files_for(names) if k not in (local or {})]
    first = (
        f"{option} psnr,ssim needs none"
        if has_gt
        else "without a GT every metric needs weight files (psnr and ssim need none, but compare with a GT)"
    )
    first += f", or {eval_flag('skip-unavailable', option)} scores the others; "
    try:
        pretrained.fetch_all(keys, download=download, first="" if skip else first)
    except ModelError as exc:
        if not skip:
            raise
        lost = {k for k in keys if pretrained.cached(k) is None}
        skipped = {n: str(exc) for n in names if lost & set(pretrained.files_for([n]))}
        # the why under -v: the result's note says which were left out (once, not a warning as well)
        log.info("%s; left out (%s): %s", exc, eval_flag("skip-unavailable", option), ", ".join(skipped))
        return skipped
    return {}


def left_to_run(names: Sequence[str], skipped: Mapping[str, str]) -> list[str]:
    """`names` less the metrics `skipped` (--skip-unavailable: {metric: why}); none left to run is an
    error, saying why each cannot (`dove upscale --eval`: before the upscale)."""
    left = [n for n in names if n not in skipped]
    if not left:
        raise OptionError(f"none of the metrics can run here: {'; '.join(dict.fromkeys(skipped.values()))}")
    return left


class FrameMetric(Protocol):
    name: str

    def start_video(self) -> None: ...

    def add(self, pred: torch.Tensor, gt: torch.Tensor | None) -> float | None: ...


class PairScore:
    """A metric that compares each frame with its GT frame: fn(x, y) [B, 3, H, W] -> [B]."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.name, self.fn = name, fn

    def start_video(self) -> None:
        pass

    @torch.no_grad()
    def add(self, pred: torch.Tensor, gt: torch.Tensor | None) -> float:
        assert gt is not None
        return float(self.fn(pred[None], gt[None])[0])


class FrameScore:
    """A no-reference metric of each frame: fn(x) [B, 3, H, W] -> [B]."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.name, self.fn = name, fn

    def start_video(self) -> None:
        pass

    @torch.no_grad()
    def add(self, pred: torch.Tensor, gt: torch.Tensor | None) -> float:
        return float(self.fn(pred[None])[0])


def build_metrics(
    names: Iterable[str],
    device: torch.device,
    weights: Mapping[str, str] | None = None,
    download: bool = True,
) -> list[FrameMetric]:
    """The per-frame metric objects for `names`, with the published weights (fetched if missing)."""
    from dove_cli.metrics import psnr_ssim

    out: list[FrameMetric] = []
    for name in names:
        if name == "psnr":
            out.append(PairScore(name, psnr_ssim.psnr))
        elif name == "psnr_y":
            out.append(PairScore(name, psnr_ssim.psnr_y))
        elif name == "ssim":
            out.append(PairScore(name, psnr_ssim.ssim))
        elif name == "ssim_y":
            out.append(PairScore(name, psnr_ssim.ssim_y))
        elif name == "lpips":
            from dove_cli.metrics.lpips import published_lpips

            out.append(PairScore(name, published_lpips(weights, download=download).to(device).eval()))
        elif name == "dists":
            from dove_cli.metrics.dists import published_dists

            out.append(PairScore(name, published_dists(local_files=weights, download=download).to(device).eval()))
        elif name == "clipiqa":
            from dove_cli.metrics.clipiqa import published_clipiqa

            out.append(FrameScore(name, published_clipiqa(weights, download=download).to(device).eval()))
        elif name == "ewarp":
            from dove_cli.metrics.ewarp import EWarp, raft_flow
            from dove_cli.metrics.raft import published_raft

            out.append(EWarp(raft_flow(published_raft(weights, download=download).to(device))))
    return out


# ------------------------------------------------------------------------------------------ report


@dataclass
class VideoScores:
    name: str
    pred: Path
    gt: Path | None
    frames: int = 0
    size: tuple[int, int] = (0, 0)  # (width, height) scored
    values: dict[str, list[float]] = field(default_factory=dict)  # per frame (per pair for ewarp)
    notes: list[str] = field(default_factory=list)
    matrix: dict[str, str | None] = field(default_factory=dict)  # PRED/GT: the YUV matrix read with (None: RGB)
    left_out: dict[str, int] = field(default_factory=dict)  # frames cut from the end of the longer side ("pred"/"gt")

    def mean(self, metric: str) -> float:
        v = self.values.get(metric) or []
        return float(np.mean(v)) if v else math.nan


@dataclass
class EvalReport:
    metrics: list[str]
    videos: dict[str, VideoScores] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about the run as a whole (GT left without a prediction)
    device: str = "cpu"
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)  # GT videos without a prediction (allow_missing)
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> file, sha256, published
    untagged_matrix: str = "auto"  # how YUV video without a matrix tag was read (--untagged-matrix)
    crop_border: int = 0  # px left out at each edge of both before every metric (--crop-border)
    skipped: list[str] = field(default_factory=list)  # metrics left out, their weights not at hand (skip_unavailable)

    @property
    def coverage(self) -> str:
        """What the means are over: "3 videos", or "2 of 3 videos" when GT videos had no prediction."""
        n, of = len(self.videos), len(self.videos) + len(self.missing)
        return f"{n} of {of} videos" if self.missing else f"{n} video{'s' if n != 1 else ''}"

    def per_video(self, metric: str) -> list[float]:
        return [v.mean(metric) for v in self.videos.values() if not math.isnan(v.mean(metric))]

    @property
    def mean(self) -> dict[str, float]:
        """Mean over videos of each video's mean (as the paper and the authors' script)."""
        return {m: float(np.mean(self.per_video(m))) if self.per_video(m) else math.nan for m in self.metrics}

    @property
    def spread(self) -> dict[str, float]:
        """Population standard deviation (numpy's, ddof=0) over videos of the per-video means (0 for one video)."""
        return {m: float(np.std(self.per_video(m))) if self.per_video(m) else math.nan for m in self.metrics}

    def run_notes(self) -> list[str]:
        """What a reader of the means should know: the run's own notes, and which videos have notes
        (cut, cropped, other frame rates: their own notes say how), so that the top level never looks
        clean when a video is not."""
        noted = [name for name, v in self.videos.items() if v.notes]
        return self.notes + ([f"videos with notes (see theirs): {', '.join(noted)}"] if noted else [])

    def to_dict(self) -> dict[str, Any]:
        """The JSON of --json: per video its means, per-frame values and notes; the means and spread
        over videos and what they cover (`mean_over`: videos scored, of how many, the GT videos left
        out); `notes` about the run as a whole (`run_notes`); what made the numbers (`weights`: each
        weight file's path and sha256, and whether it is the published one; the dove version; the
        device; how untagged YUV video was read, and per video the matrix each side was read with;
        the border left out)."""
        from dove_cli import __version__

        clean = lambda x: None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x  # noqa: E731
        videos = {}
        for name, v in self.videos.items():
            entry: dict[str, Any] = {m: clean(v.mean(m)) for m in self.metrics}
            entry["frames"] = {m: [clean(x) for x in v.values.get(m, [])] for m in self.metrics}
            entry["num_frames"] = v.frames  # paired: the first num_frames of each side
            if v.left_out:
                entry["left_out"] = v.left_out  # frames at the end of the longer side, not scored
            entry["pred"] = path_text(v.pred)
            entry["gt"] = path_text(v.gt) if v.gt else None
            entry["matrix"] = v.matrix
            if v.notes:
                entry["notes"] = v.notes
            videos[name] = entry
        return {
            "metrics": self.metrics,
            "videos": videos,
            "mean": {m: clean(x) for m, x in self.mean.items()},
            "std": {m: clean(x) for m, x in self.spread.items()},
            "mean_over": {
                "videos": len(self.videos),
                "of": len(self.videos) + len(self.missing),
                "missing": self.missing,
            },
            "notes": self.run_notes(),
            "weights": self.weights,
            "dove_version": __version__,
            "device": self.device,
            "untagged_matrix": self.untagged_matrix,
            "crop_border": self.crop_border,
            **({"skipped": self.skipped} if self.skipped else {}),
        }

    def write_json(self, path: str | Path) -> None:
        _write(Path(path), self.json_text())

    def json_text(self) -> str:
        """The text of --json (`to_dict`; `dove eval --json -` writes it to stdout)."""
        return json_text(real_names(self.to_dict()), indent=1) + "\n"  # names as written (UTF-8 bytes, on stdout too)

    def write_csv(self, path: str | Path) -> None:
        _write(Path(path), self.csv_text())

    def csv_text(self) -> str:
        """The text of --csv: one row per video (its means and notes) and a last row "mean" (over videos, as the paper).

        The mean row leaves `frames` empty: every number in it is a mean over videos, the row a
        paper table takes, and a frame total there would read as one (a mean frame count means
        nothing); the per-video rows hold the counts. Its `notes` are the run's (`run_notes`); it is
        named "mean (2 of 3 videos)" when GT videos had no prediction (`allow_missing`).

        One text for a file and for stdout (`--csv -`), byte for byte: rows end in "\\n", and a name's
        control characters and bytes that are not UTF-8 are written as their escapes (`\\t`, `\\xe9`),
        as the terminal's lines write them (streams.SHOWN; stdout's console would expand a tab and drop a
        carriage return). CSV has no escapes of its own: `\\udce9`, the JSON's, is Python's, not the byte."""
        from dove_cli.streams import SHOWN, shown_line

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        row = lambda *cells: w.writerow([shown_line(str(c)) for c in cells])  # noqa: E731
        row("video", "frames", *self.metrics, "notes")
        fmt = lambda x: "" if math.isnan(x) else f"{x:.6g}"  # noqa: E731
        for name, v in self.videos.items():
            row(real_text(name), v.frames, *(fmt(v.mean(m)) for m in self.metrics), "; ".join(v.notes))
        label = f"mean ({self.coverage})" if self.missing else "mean"
        row(label, "", *(fmt(self.mean[m]) for m in self.metrics), "; ".join(self.run_notes()))
        return buf.getvalue().encode("utf-8", SHOWN).decode("utf-8")

    def plot(self, path: str | Path) -> None:
        """Each metric over time, one line per video: flicker and seams show as spikes and steps."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise OptionError("--plot needs matplotlib: pip install 'dove-cli[eval]'") from None
        shown = [m for m in self.metrics if METRICS[m].per_frame]
        if not shown:
            raise OptionError("--plot: none of the metrics has per-frame values")
        fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.4 * len(shown)), sharex=True, squeeze=False)
        for ax, m in zip(axes[:, 0], shown, strict=True):
            for name, v in self.videos.items():
                ys = v.values.get(m, [])
                xs = np.arange(len(ys)) + (1 if m == "ewarp" else 0)  # a pair is drawn at its second frame
                ax.plot(xs, ys, linewidth=1, label=drawn_text(name))
            ax.set_ylabel(METRICS[m].label + (" ↑" if METRICS[m].higher_better else " ↓"))
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("frame")
        if len(self.videos) <= 12:
            axes[0, 0].legend(fontsize=7, ncol=min(4, len(self.videos)), loc="best")
        fig.tight_layout()
        out = Path(path)
        buf = io.BytesIO()  # drawn in memory, then written whole as the JSON and CSV are
        try:
            fig.savefig(buf, format=plot_format(out), dpi=110)
        except (OSError, ValueError) as exc:
            raise OutputError(f"{out}: cannot write the plot ({exc})") from None
        finally:
            plt.close(fig)
        _write(out, buf.getvalue())


def check_result_files(
    json_out: Path | None,
    csv_out: Path | None,
    plot: Path | None,
    metrics: Sequence[str],
    inputs: Sequence[Path],
    overwrite: bool = False,
    json_option: str = "--json",
) -> None:
    """--json / --csv / --plot, before any scoring: never an input, not a folder, an existing file
    only with `overwrite` (scores of another run are results too), a folder that can be made (it is
    made when written, as `dove upscale` makes its output's), and a plot that can be drawn. Errors
    name the option (`json_option`: `dove upscale --eval` writes its JSON with --eval-json)."""
    files = [p for p in inputs if p.is_file()]
    for option, path in ((json_option, json_out), ("--csv", csv_out), ("--plot", plot)):
        # a FIFO, /dev/null, >(...): written as it is, as --manifest
        if path is not None and not video_io.is_special(path):
            video_io.check_output(path, overwrite=overwrite, inputs=files, option=option)
    if plot is None:
        return
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise OptionError("--plot needs matplotlib: pip install 'dove-cli[eval]'") from None
    kinds = FigureCanvasBase.get_supported_filetypes()
    if plot_format(plot) not in kinds:
        raise OptionError(
            f"--plot {plot}: give it one of the extensions matplotlib writes ({', '.join(sorted(kinds))})"
        )
    if not any(METRICS[m].per_frame for m in metrics):
        raise OptionError("--plot: none of the metrics has per-frame values")


def plot_format(path: Path) -> str:
    """The format --plot writes: its extension's, or PNG to a FIFO, /dev/null or `>(...)` without one
    (`/dev/fd/63` names no format)."""
    kind = path.suffix.lower().lstrip(".")
    return "png" if not kind and video_io.is_special(path) else kind


def _write(path: Path, data: str | bytes) -> None:
    """A scores file, whole or not at all (video_io.write_whole): a full disk leaves no half file that
    the next run would refuse, and is exit 75 as for a video (the same command then writes it); a
    folder made for it is removed again. A FIFO, a device or a pipe is written as it is, as
    --manifest writes it (video_io.is_special)."""
    made = None if video_io.is_special(path) else video_io.make_output_folder(path)
    try:
        video_io.write_whole(path, data, "the scores")
    except OSError as exc:
        video_io.remove_made_folders(made)
        raise video_io.write_failed(path, exc, str(exc.strerror or exc)) from None


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


# ------------------------------------------------------------------------------------------ streaming


@dataclass
class EvalProgress:
    video: str
    index: int  # 0-based video index
    videos: int
    frames_done: int  # over all videos
    frames_total: int | None  # estimate (None when unknown)
    seconds: float


ProgressFn = Callable[[EvalProgress], None]


def _tensor(frame: video_io.Frame, device: torch.device) -> torch.Tensor:
    """[3, H, W] float32 in [0, 1]."""
    scale = 65535.0 if frame.rgb.dtype == np.uint16 else 255.0
    return torch.from_numpy(frame.rgb.astype(np.float32) / scale).permute(2, 0, 1).contiguous().to(device)


def _frames(reader: video_io.VideoReader) -> Iterator[video_io.Frame]:
    yield from reader


@contextmanager
def _decode_errors_said() -> Iterator[None]:
    """A damaged video's error with advice that `dove eval` can follow (it has no --ignore-decode-errors)."""
    try:
        yield
    except DecodeError as exc:
        raise DecodeError(str(exc).replace(IGNORE_HINT, EVAL_DECODE_HINT)) from None


CFR_COPY = "ffmpeg -i FILE -fps_mode cfr -c:v ffv1 copy.mkv"  # a copy with each lost frame repeated
EVAL_DECODE_HINT = (
    "scoring reads every frame: score a copy of what can be read, with each lost frame repeated so that the "
    f"rest stay paired with the GT's ({CFR_COPY})"
)


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


def frames_left(reader: video_io.VideoReader | None, rest: Iterator[video_io.Frame] | None, read: int) -> int:
    """How many frames of the longer side were not scored after the one read past the cut (`read`
    frames so far): counted from the files of a frame folder, else by reading them."""
    if reader is None or rest is None:
        return 0
    if reader.info.num_frames_exact:
        return max(reader.info.num_frames - read, 0)
    return sum(1 for _ in rest)


@dataclass
class EvalSetup:
    """What `_prepare` settles before the first frame is read: the pairs, the metrics that run and
    how, for `_score_pair` and the report."""

    pairs: list[tuple[Item, Item | None]]
    missing: list[str]  # GT videos without a prediction (allow_missing)
    names: list[str]  # the metrics that run (less those skipped)
    fr_needed: bool  # a metric compares with GT: GT is read
    read: Callable[[Path], video_io.VideoReader]
    device: torch.device
    frame_metrics: Sequence[FrameMetric]
    dover: DOVERScorer | None
    weights: dict[str, dict[str, Any]]  # what made the numbers (`EvalReport.weights`)
    skipped: dict[str, str]  # metric -> why it cannot run here (skip_unavailable)
    frames_total: int | None  # over all videos (None when unknown)
    untagged_matrix: str
    crop_border: int
    strict: bool
    option: str


def evaluate(
    pred: str | Path,
    gt: str | Path | None = None,
    metrics: str | Sequence[str] | None = None,
    *,
    device: str | torch.device | None = None,
    weights: Mapping[str, str] | None = None,
    download: bool = True,
    max_crop: int = MAX_CROP,
    progress: ProgressFn | None = None,
    frame_metrics: Sequence[FrameMetric] | None = None,
    option: str = "--metrics",
    allow_missing: bool = False,
    untagged_matrix: str = "auto",
    crop_border: int = 0,
    skip_unavailable: bool = False,
    strict: bool = False,
    say_pairing: bool = True,
) -> EvalReport:
    """Score PRED (against GT) and return an EvalReport (see the module doc for the input layouts).

    metrics: names or "psnr,ssim,..." (default: all of DEFAULT_METRICS that apply). weights:
    {weight key: local file} instead of the hub (see `pretrained.WEIGHT_FILES`). download: fetch
    missing weights from the hub (else a one-line error says to run `dove download-weights
    --metrics`). frame_metrics: ready-made metric objects (tests, or callers that keep them loaded).
    option: the flag that named the metrics, for messages. allow_missing: score the predictions
    present when GT videos have none (the report's `coverage` says so), instead of refusing.
    untagged_matrix: how YUV video without a matrix tag is read (video_io.open_reader): "bt601" reads
    the authors' own result files as their eval_metrics.py does (OpenCV). crop_border: pixels left
    out at each edge of both frames (after cutting them to one size) before every metric, as
    BasicSR's `crop_border` (VSR papers' tables). skip_unavailable: metrics whose weight files (or
    package) are not at hand are left out, and the report says which, instead of the error.
    strict: a prediction and GT whose sizes or frame counts differ are an error, not cut. say_pairing:
    say the names paired across Unicode normalizations (False: said before, as `dove upscale --eval`
    says them before the upscale, `EvalRequest.check`). Every
    mistake that can be known before scoring (inputs, metrics, device, weights) is raised before the
    first frame is read, every bad pair of a benchmark at once (`refuse`).
    """
    started = time.perf_counter()
    setup = _prepare(pred, gt, metrics, device=device, weights=weights, download=download, max_crop=max_crop,
                     frame_metrics=frame_metrics, option=option, allow_missing=allow_missing,
                     untagged_matrix=untagged_matrix, crop_border=crop_border, skip_unavailable=skip_unavailable,
                     strict=strict, say_pairing=say_pairing)  # fmt: skip
    report = _start_report(setup)
    count = _FrameCount(progress, len(setup.pairs), setup.frames_total, started)
    for index, (p, g) in enumerate(setup.pairs):
        report.videos[p.name] = _score_pair(p, g, setup, partial(count.frame, p.name, index))
    report.seconds = time.perf_counter() - started
    return report


def _prepare(
    pred: str | Path,
    gt: str | Path | None,
    metrics: str | Sequence[str] | None,
    *,
    device: str | torch.device | None,
    weights: Mapping[str, str] | None,
    download: bool,
    max_crop: int,
    frame_metrics: Sequence[FrameMetric] | None,
    option: str,
    allow_missing: bool,
    untagged_matrix: str,
    crop_border: int,
    skip_unavailable: bool,
    strict: bool,
    say_pairing: bool,
) -> EvalSetup:
    """`evaluate`'s checks before the first frame is read, in this order: the options, the pairs (every
    bad one at once, `refuse`), the metrics, the device, the weights (`_available`); then the metrics
    are loaded."""
    check_untagged_matrix(untagged_matrix)
    for flag, px in (("--max-crop", max_crop), ("--crop-border", crop_border)):
        if px < 0:
            raise OptionError(f"{flag} {px}: a number of pixels, 0 or more")
    pairs, missing, problems = pair_inputs(pred, gt, allow_missing, say_pairing)
    names = parse_metrics(metrics, gt is not None, str(pred), option)
    fr_needed = any(METRICS[n].full_reference for n in names)
    # warn=False: the readers' advice is for an upscale (--fps, --deinterlace, "the output is opaque")
    read = partial(video_io.open_reader, warn=False, say_alpha=False, untagged_matrix=untagged_matrix)
    totals = [check_pair(p, g if fr_needed else None, read, max_crop, strict, problems, option) for p, g in pairs]
    refuse(problems)
    from dove_cli.metrics import pretrained, vqa
    from dove_cli.models import pick_device

    dev = pick_device(str(device) if device is not None else None)
    names, skipped, local = _available(names, gt is not None, weights, download, frame_metrics is None,
                                       option, skip_unavailable)  # fmt: skip
    dover = vqa.DOVERScorer(local["dover"], dev) if "dover" in names else None
    used: dict[str, dict[str, Any]] = {}
    if frame_metrics is None:
        frame_metrics = build_metrics([n for n in names if METRICS[n].per_frame], dev, weights, download)
        used = pretrained.identify(pretrained.files_for(names), weights, download=download)  # loaded: weights
    if dover is not None:
        used |= pretrained.identify(["dover"], {"dover": local["dover"]})
    frames_total = sum(t for t in totals if t) if all(totals) else None
    return EvalSetup(pairs, missing, names, fr_needed, read, dev, frame_metrics, dover, used, skipped, frames_total,
                     untagged_matrix, crop_border, strict, option)  # fmt: skip


def _available(
    names: list[str],
    has_gt: bool,
    weights: Mapping[str, str] | None,
    download: bool,
    fetch: bool,
    option: str,
    skip_unavailable: bool,
) -> tuple[list[str], dict[str, str], dict[str, Path]]:
    """Which of the metrics `names` can run here: --weights' keys and files (resolved once:
    `pretrained.local_weights`), DOVER's package, and the published weights (fetched now when `fetch`).
    Returns the metrics that run, those left out with why ({metric: why}: skip_unavailable, else the
    first is the error), and the local weight files."""
    from dove_cli.metrics import pretrained, vqa

    video_level = [n for n in names if not METRICS[n].per_frame]
    known = {*pretrained.WEIGHT_FILES, "dover"}
    for key in weights or {}:
        if key not in known:
            raise OptionError(f"--weights {key}=...: unknown key (known: {', '.join(sorted(known))})")
    local = pretrained.local_weights(weights)
    if gone := [f"{key}={path}" for key, path in (weights or {}).items() if not local[key].is_file()]:
        raise ModelError(f"--weights {', '.join(gone)}: no such file{'s' if len(gone) > 1 else ''}")  # all at once
    skipped: dict[str, str] = {}  # metric -> why it cannot run here (skip_unavailable)
    for n in video_level:
        try:
            vqa.check(n, local.get("dover"))
        except OptionError as exc:
            if not skip_unavailable:
                raise
            skipped[n] = str(exc)
            log.info("%s; left out (%s)", exc, eval_flag("skip-unavailable", option))  # (the note says which)
    if fetch:
        skipped |= fetch_weights(names, has_gt, weights, download=download, option=option, skip=skip_unavailable)
    return left_to_run(names, skipped), skipped, local


def _start_report(setup: EvalSetup) -> EvalReport:
    """The report before any video is scored: its run notes (GT videos without a prediction, said now;
    the metrics left out; weights that are not the published files)."""
    from dove_cli.metrics import pretrained

    notes = [f"GT without a prediction (not scored): {', '.join(setup.missing)}"] if setup.missing else []
    report = EvalReport(setup.names, notes=notes, device=str(setup.device), missing=setup.missing,
                        weights=setup.weights, untagged_matrix=setup.untagged_matrix, crop_border=setup.crop_border,
                        skipped=list(setup.skipped))  # fmt: skip
    for note in notes:
        log.warning("%s", note)
    if setup.skipped:  # (why: said as each was left out)
        report.notes.append(
            f"not scored, their weights (or package) not at hand ({eval_flag('skip-unavailable', setup.option)}):"
            f" {', '.join(setup.skipped)}"
        )
    used = setup.weights
    if other := [n for n in setup.names
                 if any(used.get(k, {}).get("published") is False for k in pretrained.files_for([n]))]:  # fmt: skip
        report.notes.append(
            f"{', '.join(other)} scored with weights that are not the published files (see the"
            " JSON's weights): not comparable with published scores"
        )  # (identify warned per file)
    return report


@dataclass
class _FrameCount:
    """The frames scored so far over all videos, told to `progress` after each one."""

    progress: ProgressFn | None
    videos: int
    total: int | None
    started: float  # time.perf_counter() when `evaluate` was called
    done: int = 0

    def frame(self, video: str, index: int) -> None:
        self.done += 1
        if self.progress is not None:
            seconds = time.perf_counter() - self.started
            self.progress(EvalProgress(video, index, self.videos, self.done, self.total, seconds))


def _score_pair(p: Item, g: Item | None, setup: EvalSetup, frame_done: Callable[[], None]) -> VideoScores:
    """Score the prediction `p` (against its GT `g`, read when a metric compares with it) frame by
    frame as both are read: cut to the smaller size and the shorter count, as said in its notes
    (`--strict`: refused), each pair's times checked as it is read (`PairTimes`). `frame_done` is
    called after each frame; DOVER scores the whole video after them."""
    gt = g if (g and setup.fr_needed) else None
    scores = VideoScores(p.name, p.path, gt.path if gt else None)
    scores.values = {n: [] for n in setup.names}
    for m in setup.frame_metrics:
        m.start_video()
    with ExitStack() as stack, _decode_errors_said():
        pr = stack.enter_context(setup.read(p.path))
        gr = stack.enter_context(setup.read(gt.path)) if gt else None
        w, h = pr.info.width, pr.info.height
        if gr is not None:
            gw, gh = gr.info.width, gr.info.height
            if (gw, gh) != (w, h):  # (more than max_crop apart, or strict: refused by check_pair)
                note = f"sizes differ (PRED {w}x{h}, GT {gw}x{gh}): both cropped to {min(w, gw)}x{min(h, gh)} from the top-left"
                scores.notes.append(note)
                w, h = min(w, gw), min(h, gh)
        scores.size = (w, h)
        scores.matrix = {"pred": pr.matrix, "gt": gr.matrix if gr is not None else None}
        b = setup.crop_border
        if 2 * b >= min(w, h):
            raise InputError(f"{p.path}: --crop-border {b} leaves nothing of its {w}x{h} frames")
        times = PairTimes(pr.info, gr.info) if gr is not None else None
        pit = _frames(pr)
        git = _frames(gr) if gr is not None else None
        while True:
            fp = next(pit, None)
            fg = next(git, None) if git is not None else None
            if fp is None or (git is not None and fg is None):
                break
            if times is not None and fg is not None:
                times.add(scores.frames, (fp.pts, fg.pts))
            x = _tensor(fp, setup.device)[:, b : h - b, b : w - b]
            y = _tensor(fg, setup.device)[:, b : h - b, b : w - b] if fg is not None else None
            for m in setup.frame_metrics:
                value = m.add(x, y)
                if value is not None:
                    scores.values[m.name].append(value)
            scores.frames += 1
            frame_done()
        if gr is not None and git is not None and times is not None and (fp is None) != (fg is None):
            role, longer, rest = ("PRED", pr, pit) if fp is not None else ("GT", gr, git)
            _cut_count(scores, p.path, (pr.info, gr.info), role, (longer, rest), times, setup)
        if times is not None and (rates := times.rates_note(scores.frames)):
            scores.notes.insert(0, rates)
        for reader in (pr, gr):
            if reader is not None and reader.transparent:
                log.warning("%s: the alpha channel (transparency) is ignored for scoring: the RGB values are"
                            " compared as stored", reader.path)  # fmt: skip
    if scores.frames == 0:
        raise InputError(f"{p.path}: no frames to score")
    if setup.dover is not None:
        scores.values["dover"] = [setup.dover.score(p.path)]
    for note in scores.notes:
        log.warning("%s: %s", p.path, note)
    return scores


def _cut_count(
    scores: VideoScores,
    path: Path,
    infos: tuple[video_io.VideoInfo, video_io.VideoInfo],
    role: str,
    longer: tuple[video_io.VideoReader, Iterator[video_io.Frame]],
    times: PairTimes,
    setup: EvalSetup,
) -> None:
    """PRED and GT of frame counts that differ, after the last pair (`role`: the side with more frames;
    `longer`: its reader and its frames left): a first frame lost is refused (`PairTimes.cut`), as is
    any cut with `strict`; else the note, and the count of the frames left out."""
    times.cut(scores.frames, role)
    note = f"frame counts differ: cut to {counted(scores.frames, 'frame')} ({role} has more)"
    if setup.strict:  # (frame folders' counts were checked before scoring: a video's is known now)
        raise InputError(f"{path}: frame counts differ ({role} has more than"
                         f" {counted(scores.frames, 'frame')}) {strict_said(setup.option)}")  # fmt: skip
    scores.notes.append(note + starts_differ(*infos))
    scores.left_out[role.lower()] = 1 + frames_left(*longer, scores.frames + 1)


def rates_differ(pred: video_io.VideoInfo, gt: video_io.VideoInfo) -> str | None:
    """A note when two videos' frame rates differ by more than 1% (image folders have none of their
    own): frames are paired by position, so a 32 frames/s prediction of a 16 frames/s GT is compared
    frame for frame, not moment for moment. Dropped after scoring where the frames' own times agree
    (`same_time`)."""
    if any(i.is_images or not i.fps for i in (pred, gt)):
        return None
    if same_rate(pred.fps, gt.fps):
        return None
    return (f"frame rates differ (PRED {float(pred.fps):.4g}, GT {float(gt.fps):.4g} frames/s): frames are paired"
            " by position, not by time")  # fmt: skip


def same_time(pts: tuple[int, int], starts: tuple[int, int], infos: tuple[video_io.VideoInfo, ...]) -> bool:
    """Two frames at one time from their first frames, within half a frame of the faster video: a
    variable-rate copy's frames can match the original's while their averages differ (an .mp4's
    last frame is cut short by its B-frame delay)."""
    seconds = [(t - t0) * float(i.time_base) for t, t0, i in zip(pts, starts, infos, strict=True)]
    return abs(seconds[0] - seconds[1]) <= 0.5 / float(max(i.fps for i in infos))


def same_rate(a: Fraction, b: Fraction) -> bool:
    """Two frame rates within 1% of each other."""
    return abs(a - b) <= 0.01 * max(a, b)


def time_tolerance(pred: video_io.VideoInfo, gt: video_io.VideoInfo) -> float | None:
    """Half a frame (seconds): how much the time from one frame to the next may differ between the
    two sides; None where their times say nothing of the pairing: an image folder (no times of its
    own), or frame rates that differ (paired by position, said by `rates_differ`). One rate: the
    averages (those of a variable rate's copy are equal) or the timestamps' steps (those of a .mp4
    that lost frames, which lowers its average)."""
    if any(i.is_images for i in (pred, gt)):
        return None
    same = [a for a, b in ((pred.fps, gt.fps), (pred.base_fps, gt.base_fps)) if a and b and same_rate(a, b)]
    return 0.5 / float(max(same)) if same else None


def check_step(
    index: int,
    pts: tuple[int, int],
    before: tuple[int, int],
    infos: tuple[video_io.VideoInfo, video_io.VideoInfo],
    tolerance: float,
) -> None:
    """Refuse frame `index` of PRED and GT (`pts`: theirs, `before`: their frames' before) when one
    side's time from the frame before is longer than the other's by more than `tolerance`: frames
    lost there (damage, a dropped stretch) would pair every later frame with the wrong one. A
    steady drift (a 24000/1001 frames/s copy of a 24 frames/s video) is a rate, not frames lost."""
    times = [(i.seconds(was), i.seconds(now)) for was, now, i in zip(before, pts, infos, strict=True)]
    steps = [now - was for was, now in times]
    if abs(steps[0] - steps[1]) <= tolerance:
        return
    lost = 0 if steps[0] > steps[1] else 1  # the side whose time jumped ahead
    kept, roles = 1 - lost, ("PRED", "GT")
    raise InputError(
        f"{infos[lost].path}: frames lost between frame {index - 1} at {times[lost][0]:.3f} s and frame {index} at"
        f" {times[lost][1]:.3f} s ({roles[lost]}), where the {roles[kept]}'s frame {index} is at"
        f" {times[kept][1]:.3f} s (each from its first frame); frames are paired by position, so every later frame"
        f" would be scored against the wrong one; score a copy with each lost frame repeated ({CFR_COPY})"
    )


def check_starts(pred: Path, gt: Path) -> None:
    """Two numbered frame folders over the same numbers (PRED 0002-0020, GT 0001-0020) that start at
    different numbers and hold different counts: a frame missing at the start of one, so pairing by
    position scores every frame against its neighbour (7.8 dB for 80 in a trial). Refused. Folders
    numbered apart on purpose (86400... against 1...) do not overlap and are scored, with a note
    (`starts_differ`); equal counts from other starts (0... against 1...) are the same frames."""
    files = [image_inputs(x) if x.is_dir() or video_io.is_pattern(x) else None for x in (pred, gt)]
    numbers = [frame_numbers(f) if f else [] for f in files]
    if not all(numbers) or numbers[0][0] == numbers[1][0] or len(numbers[0]) == len(numbers[1]):
        return
    (p0, p1), (g0, g1) = ((n[0], n[-1]) for n in numbers)
    if max(p0, g0) > min(p1, g1):
        return
    raise InputError(
        f"{pred}: numbered {p0} to {p1} ({counted(len(numbers[0]), 'frame')}) (PRED), and {gt} {g0} to {g1}"
        f" ({counted(len(numbers[1]), 'frame')}) (GT): the same numbers from other starts and counts, a first frame"
        " missing? frames are paired by position, so every frame would be scored against its neighbour;"
        " restore the missing frames, or leave out the other side's extra ones so both start at one number"
    )


def check_video_starts(
    pred: video_io.VideoInfo, gt: video_io.VideoInfo, frames: int, longer: str, tolerance: float
) -> None:
    """Two videos of one rate whose frame counts differ (the `longer` side has more than `frames`) and
    whose first frames are more than `tolerance` (half a frame) apart in time: a first frame missing
    from the one that starts later, whose other frames keep their times, so pairing by position scores
    every frame against its neighbour (47.95 dB for 80 in a trial). Refused, as `check_starts` refuses
    such frame folders; equal counts from other starts (a start time kept from the source) pass."""
    starts = [float(i.start_pts * i.time_base) for i in (pred, gt)]
    if abs(starts[0] - starts[1]) <= tolerance:
        return
    raise InputError(
        f"{pred.path}: its first frame is at {starts[0]:.3f} s (PRED), and {gt.path}'s at {starts[1]:.3f} s (GT),"
        f" and the frame counts differ ({longer} has more than {frames}): a first frame missing? frames are"
        " paired by position, so every frame would be scored against its neighbour; restore the missing frames,"
        " or leave out the other side's extra ones so both start at one time"
    )


def starts_differ(pred: video_io.VideoInfo, gt: video_io.VideoInfo) -> str:
    """Said with frame counts that differ, when both are numbered frame folders whose first numbers
    differ too: folders numbered apart (86400... against 1...; over the same numbers, `check_starts`
    has refused them already), where a first frame may be missing or the numbering is another's."""
    firsts = [frame_numbers(i.files)[:1] for i in (pred, gt)]
    if not all(firsts) or firsts[0] == firsts[1]:
        return ""
    return (f" (PRED is numbered from {firsts[0][0]}, GT from {firsts[1][0]}: a first frame missing? frames are"
            " paired by position)")  # fmt: skip


class OwnSteps:
    """A video scored against a frame folder (no times of its own): the video's steps against its own
    rate (FFmpeg's guessed one, `base_fps`). A step of more than 1.5 frames between regular ones (each
    within a quarter frame of one) is frames lost, which would pair every later frame with the wrong
    one: refused once the step after it is regular again. A variable rate, whose steps are not all
    one frame (or change to another step and stay there), is not checked from its first odd step on."""

    def __init__(self, side: int, info: video_io.VideoInfo) -> None:
        assert info.base_fps
        self.side, self.info, self.frame = side, info, 1 / float(info.base_fps)
        self.was: float | None = None
        self.regular = True
        self.hole: tuple[int, float, float] | None = None  # (index, time before, time after)

    def add(self, index: int, pts: int) -> None:
        now = self.info.seconds(pts)
        if self.was is not None and self.regular:
            steps = (now - self.was) / self.frame
            if self.hole is not None and abs(steps - 1) <= 0.25:
                self._refuse(*self.hole)
            if self.hole is not None or (steps <= 1.5 and abs(steps - 1) > 0.25):
                self.regular, self.hole = False, None  # a variable rate: not checked
            elif steps > 1.5:
                self.hole = (index, self.was, now)
        self.was = now

    def _refuse(self, index: int, was: float, now: float) -> None:
        role, other = ("PRED", "GT") if self.side == 0 else ("GT", "PRED")
        raise InputError(
            f"{self.info.path}: frames lost between frame {index - 1} at {was:.3f} s and frame {index} at {now:.3f} s"
            f" ({role}), {counted(round((now - was) / self.frame) - 1, 'frame')} missing at its own {float(self.info.base_fps or 0):.4g}"
            f" frames/s, every other step being one frame; frames are paired by position"
            f" with the {other}'s frame folder, so every later frame would be scored against the wrong one; score a"
            f" copy with each lost frame repeated ({CFR_COPY})"
        )


def own_steps(pred: video_io.VideoInfo, gt: video_io.VideoInfo) -> OwnSteps | None:
    """The step check of a video scored against a frame folder; None for two videos (`time_tolerance`
    checks those), two frame folders, or a video without a rate of its own."""
    images = [i.is_images for i in (pred, gt)]
    if images.count(True) != 1:
        return None
    side = images.index(False)
    info = (pred, gt)[side]
    return OwnSteps(side, info) if info.base_fps else None


class PairTimes:
    """The time checks of one PRED and GT pair, frame by frame as they are paired: frames lost from the
    middle of either (`check_step`, two videos of one rate; `OwnSteps`, a video against a frame folder),
    a first frame lost (`cut`), and whether the frames' own times agree where the average rates differ
    (`rates_note`)."""

    def __init__(self, pred: video_io.VideoInfo, gt: video_io.VideoInfo) -> None:
        self.infos = (pred, gt)
        self.rates = rates_differ(pred, gt)
        self.timed_alike = self.rates is not None  # averages differ; the frames' own times may still agree
        self.starts: tuple[int, int] | None = None
        self.tolerance = time_tolerance(pred, gt)
        self.own = own_steps(pred, gt)  # a video against a frame folder
        self.before: tuple[int, int] | None = None  # the pts of the pair before, when their times are checked

    def add(self, index: int, pts: tuple[int, int]) -> None:
        """Pair `index`, of PRED's and GT's `pts`: refused when frames were lost before it."""
        if self.tolerance is not None:
            if self.before is not None:
                check_step(index, pts, self.before, self.infos, self.tolerance)
            self.before = pts
        if self.rates and None not in pts:
            self.starts = self.starts or pts
            self.timed_alike = self.timed_alike and same_time(pts, self.starts, self.infos)
        if self.own is not None:
            self.own.add(index, pts[self.own.side])

    def cut(self, frames: int, longer: str) -> None:
        """Frame counts that differ (the `longer` side has more than `frames`): `check_video_starts`."""
        if self.tolerance is not None:
            check_video_starts(*self.infos, frames, longer, self.tolerance)

    def rates_note(self, frames: int) -> str | None:
        """`rates_differ`'s note after the `frames` pairs, unless their own times agreed."""
        return self.rates if self.rates and not (self.timed_alike and frames > 1) else None


# ------------------------------------------------------------------------------------------ dove upscale --eval


@dataclass(frozen=True)
class EvalRequest:
    """`dove upscale --eval GT` and its --eval-* options: the output scored as `dove eval OUTPUT GT`
    scores it, right after the upscale. `check` says its mistakes before hours of upscaling; `score`
    runs it after. Messages name the --eval-* flags (the command's own)."""

    gt: Path
    metrics: str | None = None  # --eval-metrics
    json_out: Path | None = None  # --eval-json (`-`: stdout)
    crop_border: int = 0  # --eval-crop-border
    skip_unavailable: bool = False  # --eval-skip-unavailable
    strict: bool = False  # --eval-strict

    @property
    def json_on_stdout(self) -> bool:
        """--eval-json names stdout: its JSON alone goes there, and the table of scores to stderr."""
        from dove_cli.manifest import is_stdout

        return self.json_out is not None and is_stdout(self.json_out)

    def check(
        self, input: Path, output: Path, opts: UpscaleOptions, dry_run: bool = False, recursive: bool = False
    ) -> None:
        """--eval's mistakes before hours of upscaling, not after: with --dry-run or --recursive, the
        metrics, --eval-json, the metric weights (fetched now if missing; --eval-skip-unavailable: those
        not at hand left out, said now, and refused when none is left), and GT against the outputs to be
        (names and sizes; any size that differs with --eval-strict). What is left to fail after the
        upscale is what only reading the output can show (exit 3)."""
        from dove_cli.outputs import is_batch_input
        from dove_cli.streams import check_stdout

        if recursive:
            raise OptionError("--eval matches outputs to GT by name, which sub-folders can repeat: score each folder "
                              "with dove eval OUT_SUB GT_SUB after a --recursive run")  # fmt: skip
        if dry_run:
            raise OptionError("--eval scores an output: it does not go with --dry-run")
        check_stdout("--eval-json's scores" if self.json_on_stdout else "--eval's table of scores")
        if not self.gt.exists() and not video_io.is_pattern(self.gt):  # no images: said by check_planned_sizes
            raise InputError(f"{self.gt} (--eval GT): {why_missing(self.gt, 'file or folder')}")
        names = parse_metrics(self.metrics, True, str(self.gt), option="--eval-metrics")
        json_file = None if self.json_on_stdout else self.json_out
        check_result_files(json_file, None, None, names, [input, self.gt], opts.overwrite, json_option="--eval-json")
        items = planned_outputs(input, output, opts)
        if json_file is not None and (same := [s for s, t in items if video_io.writes_to(t, json_file)]):
            whose = "the output (-o)" if same[0] == input else f"{same[0]}'s output"
            raise OptionError(f"--eval-json {json_file}: is {whose}; give the scores their own name, like "
                              f"{json_file}.json")  # fmt: skip
        self.check_sizes(items, is_batch_input(input), opts)
        left_to_run(names, fetch_weights(names, True, option="--eval-metrics", skip=self.skip_unavailable))

    def check_sizes(self, items: list[tuple[Path, Path]], batch: bool, opts: UpscaleOptions) -> None:
        """The size each output (`items`: each input and its output) will have (`planned_output_size`: --size's, else the input less --crop x
        --scale, or --parity's; --compare doubles it), against GT's, and that --eval-crop-border leaves
        some of it. An input that cannot be read is left to the upscale, which says why (in a folder, per
        file)."""
        from dove_cli.geometry import cropped_info, planned_output_size
        from dove_cli.options import check_options, reader_options
        from dove_cli.upscaling import with_found_crop

        opts = check_options(opts)  # a bad --scale is said as such, not as a size mismatch
        planned: dict[str, tuple[Path, tuple[int, int] | None]] = {}
        for source, target in items:
            name = target.parent.name if video_io.is_pattern(target) else target.stem  # as dove eval names it
            try:
                with video_io.open_reader(source, warn=False, **reader_options(opts)) as reader:
                    file_opts = with_found_crop(
                        reader, opts, []
                    )  # (--crop auto: the upscale finds it again, and says it)
                    info = cropped_info(reader.info, file_opts)
                # --size's, or the model's (--parity: refused where its crop leaves nothing)
                h, w = planned_output_size(info, file_opts)
            except DoveError:
                planned[name] = (target, None)  # its GT is still looked for; its size is unknown
                continue
            if 2 * self.crop_border >= min(w, h):
                raise OptionError(f"--eval-crop-border {self.crop_border} leaves nothing of {target}'s {w}x{h} frames")
            planned[name] = (target, (w, h))
        if planned:
            check_planned_sizes(planned, batch, self.gt, self.strict)

    def score(self, output: Path, opts: UpscaleOptions, progress: ProgressFn | None = None) -> EvalReport:
        """`dove eval OUTPUT GT` after the upscale (its --skip-unavailable and --strict as
        --eval-skip-unavailable and --eval-strict), reading the output as the upscale read its input
        (--parity: bt601); a failure is ScoringFailed, which says the output is fine. Names paired across
        Unicode normalizations are not said again (`check` said them)."""
        from dove_cli.errors import ScoringFailed
        from dove_cli.options import check_options

        untagged = check_options(opts).untagged_matrix
        try:
            return evaluate(
                output,
                self.gt,
                self.metrics,
                device=opts.device,
                progress=progress,
                option="--eval-metrics",
                untagged_matrix=untagged,
                crop_border=self.crop_border,
                skip_unavailable=self.skip_unavailable,
                strict=self.strict,
                say_pairing=False,  # `check` said them, before the upscale
            )
        except DoveError as exc:  # (Ctrl-C, Interrupted, is not one: it stops the command)
            # An input error (a hole, a stray frame) fails `dove eval` the same way: its own text says the fix.
            later = "" if isinstance(exc, InputError) else f"; `dove eval {output} {self.gt}` scores it later"
            raise ScoringFailed(f"{output} was written fine, but scoring it failed: {exc}{later}") from None


def planned_outputs(input: Path, output: Path, opts: UpscaleOptions) -> list[tuple[Path, Path]]:
    """(input, output) of each file `dove upscale INPUT -o OUTPUT` writes: one, or a folder run's."""
    from dove_cli.batch import plan_batch
    from dove_cli.outputs import is_batch_input

    if not is_batch_input(input):
        return [(input, output)]
    return [(i.input, i.output) for i in plan_batch(input, output, overwrite=True, container=opts.container,
                                                     codec=opts.codec)]  # fmt: skip
