"""`dove eval`'s time checks: frames are paired by position, so a pair whose times part (frames lost
from the middle or the start of one side) is refused, and frame rates that differ are said."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from dove_cli import video_io
from dove_cli.errors import InputError
from dove_cli.humanize import counted
from dove_cli.video_io.image_reader import image_inputs
from dove_cli.video_io.sequences import frame_numbers

CFR_COPY = "ffmpeg -i FILE -fps_mode cfr -c:v ffv1 copy.mkv"  # a copy with each lost frame repeated
EVAL_DECODE_HINT = (
    "scoring reads every frame: score a copy of what can be read, with each lost frame repeated so that the "
    f"rest stay paired with the GT's ({CFR_COPY})"
)


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
