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

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dove_cli import video_io
from dove_cli.errors import DecodeError, InputError, ModelError, OptionError
from dove_cli.humanize import counted
from dove_cli.metrics import METRICS
from dove_cli.metrics.pairing import MAX_CROP, Item, check_pair, pair_inputs, refuse, strict_said
from dove_cli.metrics.report import EvalReport, VideoScores
from dove_cli.metrics.selection import FrameMetric, build_metrics, eval_flag, fetch_weights, left_to_run, parse_metrics
from dove_cli.metrics.timing import EVAL_DECODE_HINT, PairTimes, starts_differ
from dove_cli.video_io.formats import check_untagged_matrix
from dove_cli.video_io.reader import IGNORE_HINT

if TYPE_CHECKING:
    from dove_cli.metrics.vqa import DOVERScorer

__all__ = ["MAX_CROP", "EvalProgress", "EvalReport", "ProgressFn", "VideoScores", "evaluate"]

log = logging.getLogger(__name__)


@dataclass
class EvalProgress:
    video: str
    index: int  # 0-based video index
    videos: int
    frames_done: int  # over all videos
    frames_total: int | None  # estimate (None when unknown)
    seconds: float


ProgressFn = Callable[[EvalProgress], None]


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


def frames_left(reader: video_io.VideoReader | None, rest: Iterator[video_io.Frame] | None, read: int) -> int:
    """How many frames of the longer side were not scored after the one read past the cut (`read`
    frames so far): counted from the files of a frame folder, else by reading them."""
    if reader is None or rest is None:
        return 0
    if reader.info.num_frames_exact:
        return max(reader.info.num_frames - read, 0)
    return sum(1 for _ in rest)


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
