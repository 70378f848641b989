"""What the user sees while a command runs: progress bars, the plan table, the download bars.

Only the CLI uses this module; the library reports progress through callbacks.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from dove_cli.geometry import parse_crop
from dove_cli.humanize import apart, counted, human_duration, human_range, turn_text
from dove_cli.streams import SHOWN, check_stdout, reader_gone, shown_line, stop_writing

if TYPE_CHECKING:
    from dove_cli import reports  # (its Progress: rich's is imported above)
    from dove_cli.batch import BatchItem
    from dove_cli.metrics.evaluate import EvalProgress
    from dove_cli.reports import Plan

log = logging.getLogger(__name__)

# Not a terminal (a log file, a pipe, a job scheduler): rich would fold tables at 80 columns and split
# file names across lines; a wide console keeps a row per line. COLUMNS, when set, still wins.
LOG_WIDTH = 1000


def run_label(path: Path) -> str:
    """What a run's progress lines call its input: its file name, but a descriptor's path as given
    (`/dev/fd/3`, `/dev/stdin`, `/proc/self/fd/0`): "3:" would name nothing."""
    return str(path) if path.parts[:2] in (("/", "dev"), ("/", "proc")) else path.name


def show_unencodable() -> None:
    """stdout and stderr write what their encoding cannot hold as `_shown` says. stdout raised a
    UnicodeEncodeError for a name or dove's own text (exit 1, a traceback) under PYTHONIOENCODING=ascii
    or an ASCII locale, where stderr wrote Python's escapes; and stderr spelled a name as escapes that
    stdout wrote as bytes."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=SHOWN)


class OneLineFormatter(logging.Formatter):
    """dove's `WARNING: ...` and `INFO: ...` lines (the CLI's logging), each on one line (shown_line), as
    its own lines are: a file name's newline split a line of a log that scripts read one record a line;
    with the time in front in a log that asks for it (`time_stamp`)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # (a traceback, appended after, keeps its lines)
        return time_stamp(err_console) + shown_line(super().formatMessage(record))


def time_stamp(console: Console) -> str:
    """DOVE_LOG_TIME=1 (or true, yes, on): each line dove writes to a log (stderr not a terminal) begins
    with the local time, ISO 8601 with its offset from UTC: `2026-12-05T14:59:12+01:00 `. Off by
    default: journald and most schedulers stamp lines themselves."""
    if os.environ.get("DOVE_LOG_TIME", "").strip().lower() not in ("1", "true", "yes", "on") or is_live(console):
        return ""
    return datetime.now().astimezone().isoformat(timespec="seconds") + " "


def is_live(console: Console) -> bool:
    """Whether `console` writes to a terminal a person watches, where live bars and box-drawn tables
    belong: its stream is a TTY, rich sees a terminal (not TTY_COMPATIBLE=0), and not TERM=dumb, which
    screen-reader users set against redrawn lines (rich then showed nothing until the end, then the
    whole bar). FORCE_COLOR=1 and TTY_COMPATIBLE=1, which CI setups export, make rich take a log file
    for a terminal: colour is what they ask for (the one-line messages get it), but live bars there
    were thousands of escape codes and carriage returns in place of the plain stage lines."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return console.is_terminal and not console.is_dumb_terminal and isatty is not None and isatty()
    except ValueError:  # a closed stream
        return False


def sized_environ() -> dict[str, str]:
    """The environment less a COLUMNS or LINES of 0 (some containers and CI runners set them), which rich
    took as a width of 0: every line, error and table went unprinted."""
    return {
        k: v for k, v in os.environ.items() if not (k in ("COLUMNS", "LINES") and v.strip().isdigit() and int(v) == 0)
    }


def plain_width(console: Console) -> Console:
    if not is_live(console) and "COLUMNS" not in sized_environ():
        console.width = LOG_WIDTH
    return console


class _Console(Console):
    """A console whose reader may go away (`2>&1 | grep -m1 upscaling`, `| head`, a log pipe that died).
    rich's own answer is exit 1 at the next line, which killed a run with all its frames made. It
    draws no emoji codes: rich turned `a:top:b.mp4` and `LEFT:TOP:RIGHT` into a picture."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(emoji=False, _environ=sized_environ(), **kwargs)

    def on_broken_pipe(self) -> None:
        """Say nothing more there (dove's log lines and warnings too: their stream now goes to /dev/null).
        stderr's reader only watched, so the work goes on; stdout's wanted the product (a plan, a table):
        stop quietly with 141, as a tool killed by SIGPIPE does (`yes | head -1`)."""
        self._give_up()
        if not self.stderr:
            raise reader_gone(self.file)

    def _render_buffer(self, buffer: Any) -> str:
        """rich's text, each line stamped with the time in a log that asks for it (time_stamp)."""
        text = super()._render_buffer(buffer)
        if self.stderr and text and (stamp := time_stamp(self)):
            text = "".join(stamp + line for line in text.splitlines(keepends=True))
        return text

    def _check_buffer(self) -> None:
        """rich's writing, with its other write errors said: stderr on a full disk or a terminal gone (EIO
        after a hangup) is as a reader gone, the run goes on; stdout's product (a plan, JSON) is lost: one
        line saying why (a full disk: exit 75), not a traceback."""
        try:
            super()._check_buffer()
        except OSError as exc:  # (a BrokenPipeError is rich's: on_broken_pipe)
            self._give_up()
            if not self.stderr:
                from dove_cli.video_io.paths import write_failed

                raise write_failed(Path("stdout"), exc, exc.strerror or str(exc)) from None

    def _give_up(self) -> None:
        """Write nothing more to this stream (stop_writing)."""
        self.quiet = True
        stop_writing(self.file)


def out_console(what: str = "") -> Console:
    """The console of a command's product on stdout (a plan, a table). `what`: that product, when stdout
    must be open for it (check_stdout)."""
    if what:
        check_stdout(what)
    return plain_width(_Console())


def out_bytes(data: bytes) -> None:
    """A product that is a file's bytes (`--csv -`) to stdout as they are: stdout's text encoding (ASCII
    under PYTHONIOENCODING=ascii or a Latin-1 locale) would write `café` as `caf\\xe9`, the escape
    of a byte that is not UTF-8. Its reader gone is 141, a full disk one line (as out_console's)."""
    check_stdout("the scores")
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise reader_gone(sys.stdout) from None
    except OSError as exc:
        from dove_cli.video_io.paths import write_failed

        stop_writing(sys.stdout)
        raise write_failed(Path("stdout"), exc, exc.strerror or str(exc)) from None


err_console = plain_width(_Console(stderr=True))
if not is_live(err_console):  # no live display of rich's (a training bar) redrawn in a log, whatever FORCE_COLOR says
    err_console.is_interactive = False
_Bar = TypeVar("_Bar", bound="UpscaleBar")


def say(text: str, console: Console = err_console) -> None:
    """A line of dove's own (a stage, a summary, a file's end) as it is: no markup, no highlighting, never
    folded, and on one line whatever a name holds (shown_line)."""
    console.print(shown_line(text), markup=False, highlight=False, emoji=False, soft_wrap=True)


def print_table(table: Table, console: Console) -> None:
    """`table` as rich draws it on a terminal a person watches (is_live); anywhere else (a pipe, a log,
    TERM=dumb) in plain ASCII: `|` between columns, `-` under the header, the title at the left, no
    spaces at the ends of lines. A screen reader read every box character aloud ("box drawings light
    vertical"), and the padding (to the widest row, or a centred title) reached a braille display."""
    if is_live(console):
        console.print(table)
        return
    if table.box is not None:
        table.box = box.ASCII
        for column in table.columns:  # a name's own `|` (`pipe|.mp4`) as `\|`: not read as a column's end
            column._cells = [c.replace("|", "\\|") if isinstance(c, str) else c for c in column._cells]
    table.pad_edge, table.title_justify = False, "left"
    for line in console.render_lines(table, pad=False):
        say("".join(segment.text for segment in line).rstrip(), console)


def print_rows(title: str, rows: list[tuple[str, str]], console: Console) -> None:
    """A table of two columns, label and text: aligned on a terminal a person watches, and anywhere
    else `label: text` lines, as a screen reader or a script reads them best."""
    if not is_live(console):
        say(title, console)
        for label, text in rows:
            say(f"{label}: {text}", console)
        return
    table = Table(title=title, show_header=False, show_edge=False)
    for label, text in rows:
        table.add_row(label, escape(shown_line(text)))
    console.print(table)


def progress_interval() -> float:
    """DOVE_PROGRESS_INTERVAL: seconds between plain progress lines, 0 (a line per frame) to a day;
    10 when unset."""
    text = os.environ.get("DOVE_PROGRESS_INTERVAL", "").strip()
    return _interval(text) if text else 10.0


@functools.cache  # said once (a folder run, --eval, a script's many runs), not per bar
def _interval(text: str) -> float:
    """Anything but seconds from 0 to 86400 is a warning and the default, 10: a typo in a display setting
    failed a cron job (exit 2). (`nan` printed a line per heartbeat check, `inf` broke its timer.)"""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if 0 <= value <= 86400:  # nan fails both comparisons
        return value
    log.warning("DOVE_PROGRESS_INTERVAL=%s: expected seconds between progress lines, from 0 (a line per frame) "
                "to 86400; using the default, 10", text)  # fmt: skip
    return 10.0


class TimeLeftColumn(TimeRemainingColumn):
    """rich's time remaining, said to be that: `0:00:44 left` (alone, it could be the time taken);
    nothing where the length is not known (a bare `left`)."""

    def render(self, task: Any) -> Text:
        shown = super().render(task)
        return shown.append(" left") if shown.plain else shown


class FittedProgress(Progress):
    """rich's Progress, its line fitted to the terminal's width at each refresh (a resize is followed): as
    it narrows, the bar shrinks to BAR_MIN cells, then the columns in `drop` go (in that order), then the
    first column, the name, is cut to NAME_MIN, then the bar goes and the name is cut to what is left, to
    nothing. A bar with no length yet (rich's pulse) goes first. The counts, rate and time left stay whole: given a line too wide, rich cut every column
    evenly (`holiday_20…  12/3… 58.29 f…` at 50 columns)."""

    BAR_MIN, NAME_MIN = 10, 20

    def __init__(self, *columns: ProgressColumn, drop: tuple[ProgressColumn, ...] = (), **kwargs: Any) -> None:
        self.drop = drop
        super().__init__(*columns, **kwargs)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        columns = [column for column in self.columns if isinstance(column, ProgressColumn)]
        shown = [task for task in tasks if task.visible]
        rows = [[column(task) for column in columns] for task in shown]
        if not rows:  # (also the Live that Progress builds draws one before it has a console)
            return Table.grid()
        options = self.console.options
        needs = [max((Measurement.get(self.console, options, row[i]).maximum for row in rows), default=0)
                 for i in range(len(columns))]  # fmt: skip
        bar = -1
        for i, column in enumerate(columns):
            if isinstance(column, BarColumn):  # it takes its bar_width at most, less where room is short
                bar, needs[i] = i, column.bar_width or 40
        drop = [columns.index(c) for c in self.drop]
        if bar >= 0 and all(task.total is None for task in shown):  # a pulse says less than the stage named
            bar, drop = -1, [bar, *drop]  # (as a column of its widest, the first to go)
        widths = self.fit(needs, bar, drop, self.console.width)
        table = Table.grid(*(Column(width=w, no_wrap=True, overflow="ellipsis") for w in widths.values()),
                           padding=(0, 1), expand=self.expand)  # fmt: skip
        for row in rows:
            table.add_row(*(row[i] for i in widths))
        return table

    @classmethod
    def fit(cls, needs: list[int], bar: int, drop: list[int], width: int) -> dict[int, int]:
        """Column index -> width, in order, for a line of `width` cells, given the cells each column needs
        (the bar's: its widest); a column that needs none is left out, and its gap."""
        shown = {i: need for i, need in enumerate(needs) if need}

        def left() -> int:  # what the columns shown, and a gap between each two, leave over
            return width - sum(shown.values()) - (len(shown) - 1)

        for gone in [-1, *drop]:
            shown.pop(gone, None)
            if bar in shown and left() + needs[bar] >= cls.BAR_MIN:
                shown[bar] = min(left() + needs[bar], needs[bar])
                return shown
            if bar not in shown and left() >= 0:
                return shown
        name = 0 if bar != 0 and 0 in shown else -1  # the first column
        if bar in shown:
            shown[bar] = cls.BAR_MIN
            if name in shown and shown[name] + left() >= cls.NAME_MIN:
                shown[name] += left()
                return shown
            del shown[bar]
        if name in shown:
            shown[name] += min(left(), 0)
            if shown[name] < 1:
                del shown[name]
        return shown


class UpscaleBar:
    """Progress of one run: a rich bar (frames, fps, ETA, what is happening) on a terminal, and on
    anything else (a log file, nohup, a job scheduler) a plain line at each change of stage, every
    DOVE_PROGRESS_INTERVAL seconds (default 10) while frames are made, and a heartbeat every 6 such
    intervals while one window keeps the model busy (minutes on a CPU: silence would look like a hang).
    Silent with --quiet."""

    def __init__(self, quiet: bool, label: str, console: Console = err_console) -> None:
        self.quiet, self.label, self.console = quiet, label, console
        self.plain = not is_live(console)
        self.interval = progress_interval()
        # a narrow terminal loses the window, then the bar, then the name: not the count, rate and time left
        window = TextColumn("{task.fields[window]}")
        self.bar = FittedProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeLeftColumn(),
            window,
            drop=(window,),
            console=console,
            disable=quiet or self.plain,
            transient=False,
        )
        self.task = self.bar.add_task(escape(shown_line(label)), total=None, rate="", window="")
        self.started = False
        self._status = ""
        self._last_line = 0.0
        self._last_count = 0
        self._latest: reports.Progress | None = None  # the last Progress, and since when its window has been worked on
        self._window_since = time.monotonic()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="dove-heartbeat", daemon=True)

    def status(self, text: str, line: str | None = None) -> None:
        """Say what is happening before the frames come ("loading model", "planning", ...); `line`: what a
        log says of it (`done: 600 frames in 4 s`)."""
        if text == self._status:
            return
        self._status = text
        if self.plain:
            self._line(line or text)
        else:
            self._start()
            self.bar.update(self.task, window=escape(shown_line(f"{text} ...")))

    def __call__(self, p: reports.Progress) -> None:
        now = time.monotonic()
        if self._latest is None or p.window != self._latest.window:
            self._window_since = now
        self._latest = p
        fps = p.frames_done / p.seconds if p.seconds > 0 else 0.0
        if self.plain:
            due = now - self._last_line >= self.interval or p.status != self._status
            # a resumed run's saved frames are counted after "upscaling"; other counts close their stage
            count, first = p.frames_done != self._last_count and due, not self._last_count and p.status == "upscaling"
            if count and not first:
                self._line(self._counts(p))  # the count, then the stage it ends with
            done = (
                f"done: {counted(p.frames_done, 'frame')} in {human_duration(p.seconds)}"
                if p.status == "done"
                else None
            )
            self.status(p.status, done)
            if count and first:  # the first count (a resumed run's saved frames) after its stage's line
                self._line(self._counts(p))
            if count:
                self._last_count = p.frames_done
            return
        self.status(p.status)
        self._start()
        workers = getattr(p, "workers", [])  # a Ray run: a line per worker
        # (a window of one frame, a pixel-local model's, is the count again: `753/9000 ... frame 753`)
        busy = "" if p.window == f"frame {p.frames_done}" else p.window or self._status
        window = "".join([busy, *("\n  " + w for w in workers)])
        self.bar.update(self.task, completed=p.frames_done, total=p.frames_total or None, rate=f"{fps:.2f} fps",
                        window=escape(window))  # fmt: skip

    def _counts(self, p: reports.Progress) -> str:
        """`48/100 frames (48%), 3.10 frames/s, about 17 s left`: the rate and time left as the API's
        Progress computes them (from when frames began to come)."""
        total = max(p.frames_total, p.frames_done)
        text = f"{p.frames_done}/{total} frames ({100 * p.fraction:.0f}%)"
        rate, left = p.rate, p.seconds_left
        if rate is not None:
            text += f", {rate:.2f} frames/s"
        if left:
            text += f", about {human_duration(left)} left"
        return text

    def _beat(self) -> None:
        """Plain mode: say which window is still being worked on when nothing was said for a while."""
        period = max(6 * self.interval, 0.5)
        while not self._stop.wait(period / 4):
            p, now = self._latest, time.monotonic()
            if p is None or p.status != "upscaling" or not p.window or now - self._last_line < period:
                continue
            total = max(p.frames_total, p.frames_done)
            self._line(f"working on {p.window} for {human_duration(now - self._window_since)} "
                       f"({p.frames_done}/{total} frames done)")  # fmt: skip

    def _line(self, text: str, label: str | None = None) -> None:
        if not self.quiet:
            say(f"{self.label if label is None else label}: {text}", self.console)
            self._last_line = time.monotonic()

    def _start(self) -> None:
        if not self.started:  # only once work begins: an early error leaves no empty bar behind
            self.bar.start()
            self.started = True

    def __enter__(self: _Bar) -> _Bar:
        if self.plain and not self.quiet:
            self._heartbeat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.started:  # stopping a bar that never started prints a stray blank line
            self.bar.stop()


class EvalBar(UpscaleBar):
    """`dove eval`: frames scored / total, fps and the video being scored."""

    def __call__(self, p: EvalProgress) -> None:  # type: ignore[override]  # (scored frames, not an upscale's)
        fps = p.frames_done / p.seconds if p.seconds > 0 else 0.0
        label = f"{p.video} ({p.index + 1}/{p.videos})"
        if self.plain:  # a log, a pipe: a count every DOVE_PROGRESS_INTERVAL seconds, as an upscale's (SSIM
            # on a CPU scores about a frame a second: minutes without a word looked like a hang)
            now = time.monotonic()
            self._last_line = self._last_line or now  # (from the first frame: a short run says nothing)
            if now - self._last_line >= self.interval:
                self._line(self._scored(p, fps) + (f", {label}" if p.videos > 1 else ""))
            return
        if not self.started:
            self.bar.start()
            self.started = True
        self.bar.update(self.task, completed=p.frames_done, total=p.frames_total, rate=f"{fps:.2f} fps",
                        window=escape(shown_line(label)))  # fmt: skip

    @staticmethod
    def _scored(p: EvalProgress, fps: float) -> str:
        """`12/33 frames scored (36%), 0.86 frames/s, about 24 s left` (the total and time left where known)."""
        if not p.frames_total:
            return f"{p.frames_done} frames scored, {fps:.2f} frames/s"
        total = max(p.frames_total, p.frames_done)
        left = f", about {human_duration((total - p.frames_done) / fps)} left" if fps > 0 else ""
        return f"{p.frames_done}/{total} frames scored ({100 * p.frames_done / total:.0f}%), {fps:.2f} frames/s{left}"


def untimed_reason(plan: Plan) -> str:
    """Why a plan has no time estimate: a card that is not here (--vram), or no model to time."""
    return plan.model_note if "--vram" in plan.model_note else "no model to time"


def memory_options(plan: Plan) -> str:
    """`, --offload model, --quantize nf4`: the memory options a plan assumed, when not the defaults
    (two saved dry runs can be told apart). fp8 planned for a card on paper: which cards run it."""
    said = "".join(f", --{name} {value}" for name, value in (("offload", plan.offload), ("quantize", plan.quantize))
                   if value != "none")  # fmt: skip
    if plan.quantize == "fp8" and "--vram" in plan.model_note:  # a GPU here was checked for fp8 already
        said += " (needs an Ada (RTX 40) or newer GPU: compute capability 8.9+)"
    return said


def release_windows(plan: Plan) -> str:
    """--parity's windows in time as they run: `1: the whole clip, 9 frames (its 6 frames padded to 9 with
    the last one)`, `2 of 8 frames, the last 11, 2 shared by neighbours (...)` (only the last can differ)."""
    from dove_cli.release_layout import time_pad

    sizes = plan.window_frames
    said = f"{sizes[0]} frame{'s' * (sizes[0] != 1)}" + (f", the last {sizes[-1]}" if len(set(sizes)) > 1 else "")
    text = (
        f"1: the whole clip, {said}"
        if len(sizes) == 1
        else f"{len(sizes)} of {said}, {plan.chunk_overlap} shared by neighbours"
    )
    if (padded := plan.frames + time_pad(plan.frames)) != plan.frames:
        text += f" (its {plan.frames} frames padded to {padded} with the last one)"
    return text


def window_lengths(sizes: tuple[int, ...]) -> str:
    """How many windows and their lengths: `4 of 33 frames`, `2 (33 and 9 frames)`, `40 (39 of 33 frames,
    the last 25)` (only a shot's last window is shorter, so naming each length past four says nothing)."""
    if len(set(sizes)) == 1:
        return f"{len(sizes)} of {sizes[0]} frame{'s' * (sizes[0] != 1)}"
    if len(sizes) <= 4:
        return f"{len(sizes)} ({', '.join(map(str, sizes[:-1]))} and {sizes[-1]} frames)"
    return f"{len(sizes)} ({len(sizes) - 1} of {sizes[0]} frames, the last {sizes[-1]})"


def print_plan(plan: Plan, console: Console, files: tuple[str, str] | None = None) -> None:
    """A file's --dry-run; `files`: its input and output, named first (which plan is whose, in a log)."""
    gib = 1024**3
    h, w = plan.input_size
    oh, ow = plan.file_size()
    if plan.parity:
        chunks = release_windows(plan)
    elif plan.chunk and len(plan.window_frames) > 1:
        chunks = f"{window_lengths(plan.window_frames)}, {plan.chunk_overlap} shared by neighbours"
    elif plan.chunk:
        chunks = (
            f"{plan.chunks} of {plan.chunk} frame{'s' * (plan.chunk != 1)}, {plan.chunk_overlap} shared by neighbours"
        )
    else:
        chunks = f"1: the whole clip ({plan.frames} frame{'s' * (plan.frames != 1)})"
    tiles = (
        f"{plan.tiles} of {plan.tile} px, {plan.tile_overlap} px overlap" if plan.tiles > 1 else "1: the whole frame"
    )
    tiles += plan.tile_rounded()
    tiles += " + VAE tiles" if plan.vae_tiling else ""  # the VAE decodes each window in its own tiles
    exact_fps = f" ({plan.fps})" if Fraction(plan.fps).denominator != 1 else ""  # 30000/1001, not 16 again
    est = (f"{human_range(plan.est_seconds)} for the model's windows, plus start-up (loading it)"
           if plan.est_seconds is not None else f"none, {untimed_reason(plan)}")  # fmt: skip
    est += f"; {plan.est_note}" if plan.est_note else ""
    picture = f"{w}x{h}"
    if plan.crop:  # the input's own size, and the picture the crop leaves
        c = parse_crop(plan.crop)
        picture = f"{w + c.left + c.right}x{h + c.top + c.bottom} cropped to {w}x{h} (--crop {plan.crop})"
    resampled = (
        f", resampled from the model's {plan.output_size[1]}x{plan.output_size[0]} (Lanczos)" if plan.size else ""
    )
    sampled = f"judged from its first {plan.rate_sample} frames" if plan.rate_sample else ""  # (a long file's)
    rows = [
        (
            "input",
            f"{picture}, {'' if plan.frames_exact else 'about '}{plan.frames} frame{'s' * (plan.frames != 1)}"
            + (
                f", variable rate (each frame keeps its own time{sampled and f'; {sampled}'})"
                if plan.variable_rate
                else f" at {float(plan.fps):.3f} fps{exact_fps}{sampled and f' (constant: {sampled})'}"
            )
            + ("" if plan.frames_exact else " (from the duration: the container does not count them)"),
        ),
        (
            "output",
            f"{ow}x{oh}"
            + (" (input | output, --compare)" if plan.compare else "")
            + resampled
            + (f", {shown}" if (shown := plan.shown_as()) else "")
            + (f", {plan.codec} {plan.pix_fmt}" if plan.codec else "")
            + (" full range" if plan.full_range and not plan.pix_fmt.startswith("yuvj") else "")
            + (f" CRF {plan.crf}" if plan.codec and plan.crf is not None else ""),
        ),
        ("padded input", f"{plan.padded_size[1]}x{plan.padded_size[0]}"),
        ("windows in time", chunks),
        *([("scene cuts", plan.scene_cuts)] if plan.scene_cuts else []),
        ("tiles per window", tiles),
        ("model calls", str(plan.windows())),
        ("work ratio", f"{plan.work_ratio:.2f} (model pixel-frames per output pixel-frame: overlaps and padding)"),
        ("device", f"{plan.device}, {plan.dtype}{memory_options(plan)}"),
        (
            "estimated peak GPU memory",
            f"{plan.est_peak_device_bytes / gib:.1f} GiB" if plan.est_peak_device_bytes else "none",
        ),
        ("estimated peak host memory", f"{plan.est_peak_host_bytes / gib:.1f} GiB"),
        ("estimated time", est),
    ]
    if plan.audio:  # after "output"
        rows[2:2] = [("audio", track) for track in plan.audio]
    if plan.saved_frames:
        rows.insert(2, ("saved", f"{counted(plan.saved_frames, 'frame')}, by the interrupted run this one continues"))
    if plan.model_note:
        rows.insert(0, ("model", plan.model_note))
    if files:
        rows[:0] = [("input file", files[0]), ("output file", files[1])]
    print_rows("plan (--dry-run)", rows, console)


class BatchBars(UpscaleBar):
    """Two rich bars for a folder: files done / total, and frames of the current file."""

    def __init__(self, quiet: bool, total: int) -> None:
        super().__init__(quiet, "")
        self.files = self.bar.add_task("[bold]all files", total=total, rate="", window="")
        self.total, self.done = total, 0  # (the bar's tasks[0] is the per-file bar until the first file starts)

    def file(self, index: int, item: BatchItem) -> None:
        if item.status == "running":  # a fresh per-file bar (its frame count comes with the first update)
            self.bar.remove_task(self.task)
            self.task = self.bar.add_task(escape(shown_line(item.name)), total=None, rate="", window="")
            self._status, self.label = "", item.name  # plain lines name the file being made (its path in the folder)
            self._last_count = 0  # counts start again with each file (and rates: each file's run has its own)
            if self.plain:
                self._line(f"file {index + 1} of {self.total}")
            return
        self.done += item.status != "interrupted"  # (a file Ctrl-C stopped is not one of those done)
        if self.plain and (said := self._ended(index, item)):
            self._line(said, item.name)
        self.bar.update(self.task, visible=False)  # a finished file's bar goes; the overall bar stays
        self.bar.update(self.files, completed=self.done, window=escape(shown_line(f"{item.name}: {item.status}")))
        if not self.started:
            self.bar.start()
            self.started = True

    def _ended(self, index: int, item: BatchItem) -> str:
        """Plain mode: how a file ended, as the live view says it, for a log read as it is written (the
        failed ones were named only at the end, the skipped ones not at all). A done file's run said
        "done" itself; a stopped one is the run's error line."""
        if item.status == "skipped":
            return f"file {index + 1} of {self.total}: skipped, its output exists (--overwrite to redo)"
        if item.status == "busy":
            return f"file {index + 1} of {self.total}: skipped: {item.error}"
        # the line names the file: its error does not again (`a.mp4: failed: in/a.mp4: not a video ...`)
        return f"failed: {(item.error or '').removeprefix(f'{item.input}: ')}" if item.status == "failed" else ""


def print_batch_plans(items: list[BatchItem], console: Console) -> None:
    """`--dry-run` for a folder: a row per video (its plan, or why there is none) and the totals."""
    gib = 1024**3
    planned = [item.result for item in items if item.status == "done"]
    kinds = [kind for kind, some in (("GPU memory", any(p.est_peak_device_bytes for p in planned)),
                                     ("time", any(p.est_seconds is not None for p in planned))) if some]  # fmt: skip
    title = f"plan (--dry-run; {' and '.join(kinds)} estimated)" if kinds else "plan (--dry-run)"
    table = Table(title=title, show_edge=False)
    for column in ("file", "frames", "size", "calls", "work", "GPU memory", "time"):  # a long name folds
        table.add_column(column, justify="left" if column in ("file", "size") else "right", no_wrap=column != "file",
                         overflow="fold" if column == "file" else "ellipsis")  # fmt: skip
    for item, shown in zip(items, apart([item.name for item in items]), strict=True):  # (an NFC and an NFD café)
        p = item.result
        name = shown if item.output.name == item.input.name else f"{shown} -> {item.output.name}"
        if p is None:
            table.add_row(escape(shown_line(name)), "", "skip: output exists" if item.status == "skipped" else "error")
            continue
        (w, h), (ow, oh) = (
            p.shown_size(*p.input_size),
            p.shown_size(*p.file_size(), written=True),
        )  # as the file's plan's "shown"
        gpu = f"{p.est_peak_device_bytes / gib:.1f} GiB" if p.est_peak_device_bytes else "none"
        est = human_duration(p.est_seconds) if p.est_seconds is not None else "none"
        frames = f"{'' if p.frames_exact else '~'}{p.frames}" + (f" ({p.saved_frames} saved)" if p.saved_frames else "")
        table.add_row(escape(shown_line(name)), frames, f"{w}x{h}->{ow}x{oh}", str(p.windows()),
                      f"{p.work_ratio:.2f}", gpu, est)  # fmt: skip
    print_table(table, console)
    if estimated := [p for p in planned if not p.frames_exact]:
        console.print(f"frames ~{estimated[0].frames}: about {estimated[0].frames}, from the duration (the container "
                      "does not count them; a variable frame rate can put it far off)", highlight=False, soft_wrap=True)  # fmt: skip
    if any(p.shown_as() or p.sample_aspect_ratio for p in planned):  # (--size: the input's pixels widened)
        console.print("size: as players show it (turned by a rotation tag, non-square pixels widened); a file's own "
                      "--dry-run says the size it stores", highlight=False, soft_wrap=True)  # fmt: skip
    if untimed := next((p for p in planned if p.est_seconds is None), None):
        say(f"no time estimated: {untimed_reason(untimed)}", console)
    # What is left to make: a file an interrupted run saved part of continues after its saved frames
    # (its time in proportion: the windows past them are what runs).
    timed = [p for p in planned if p.est_seconds is not None]
    left = sum((p.est_seconds or 0) * (p.frames - p.saved_frames) / max(p.frames, 1) for p in timed)
    total = f", estimated time {human_range(left)}" if timed and len(timed) == len(planned) else ""
    skipped = sum(item.status == "skipped" for item in items)
    failed = sum(item.status == "failed" for item in items)
    saved = sum(p.saved_frames for p in planned)
    kept = f" to make; {saved} more are saved by an interrupted run" if saved else ""
    console.print(f"{len(planned)} to upscale ({'about ' * bool(estimated)}"
                  f"{counted(sum(p.frames for p in planned) - saved, 'frame')}{kept}{total}), {skipped} skipped "
                  f"(output exists; --overwrite to redo), {failed} cannot be planned", highlight=False, soft_wrap=True)  # fmt: skip
    for label, said in (("scene cuts", next((p.scene_cuts for p in planned if p.scene_cuts), "")),
                        ("estimated time", next((p.est_note for p in planned if p.est_note), ""))):  # fmt: skip
        if said:
            say(f"{label}: {said}", console)


def print_batch_table(items: list[BatchItem], console: Console) -> None:
    """Per file of a folder run on Ray: frames, time, the workers that made it, status."""
    table = Table(show_edge=False)
    for column in ("file", "frames", "seconds", "workers", "status"):
        table.add_column(column, justify="right" if column in ("frames", "seconds") else "left")
    for item in items:
        r = item.result
        frames, seconds = (str(r.frames), f"{r.seconds:.1f}") if r is not None else ("-", "-")
        workers = ", ".join(f"{name} ({n})" for name, n in sorted(r.workers.items())) if r is not None else "-"
        if r is not None and r.resumed_from:
            workers += f"{', ' if workers else ''}{r.resumed_from} saved before"
        table.add_row(escape(shown_line(item.name)), frames, seconds, escape(workers or "-"), item.status)
    print_table(table, console)


class VerifyBar:
    """Progress of the checksum pass over downloaded files (huggingface_hub shows its own download bars)."""

    def __init__(self, console: Console, total: int) -> None:
        self.bar = FittedProgress(
            TextColumn("verify {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=console, disable=not is_live(console), transient=True,
        )  # fmt: skip
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(escape(name), total=total)
        self.bar.update(self.tasks[name], completed=done, visible=done < total)

    def __enter__(self) -> VerifyBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


class TrainBar:
    """Progress of `dove train`: the stage, steps, loss, lr, rate and time left, drawn from the first
    step (not above a set-up error); `report` is train()'s progress callback."""

    def __init__(self, stage: int, max_steps: int, console: Console = err_console) -> None:
        # a narrow terminal loses the lr, the rate, the bar, the stage before the step count, loss and time left
        lr, rate = TextColumn(" lr {task.fields[lr]:.2e}"), TextColumn(" {task.fields[it_s]:.2f} it/s")
        self.bar = FittedProgress(
            TextColumn(f"stage {stage}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), lr, rate, TimeRemainingColumn(),
            drop=(lr, rate), console=console,
        )  # fmt: skip
        self.task = self.bar.add_task("train", total=max_steps, loss=float("nan"), lr=0.0, it_s=0.0)

    def report(self, row: dict[str, Any]) -> None:
        if not self.bar.live.is_started:
            self.bar.start()
        self.bar.update(self.task, completed=row["step"], loss=row["loss"], lr=row["lr"], it_s=row["it_s"])

    def __enter__(self) -> TrainBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


RANGES = {"tv": "limited (tv)", "pc": "full (pc)"}
# What an untagged matrix is read as by default (--untagged-matrix auto), and how else it can be.
ASSUMED = {"bt709": "BT.709, as for HD; as BT.601 with --parity or --untagged-matrix bt601",
           "smpte170m": "BT.601, as for SD; as BT.709 with --untagged-matrix bt709"}  # fmt: skip
RGB_RANGE = "full (as RGB always is, whatever a tag says)"


def _colour(v: dict) -> list[tuple[str, str]]:
    """The colour rows: each tag, or "untagged" and what dove does for it (reader and writer)."""
    hd_tagged = "untagged (an HD output is tagged bt709)" if v["assumed_matrix"] else "untagged"
    return [
        ("  primaries", v["primaries"] or hd_tagged),
        ("  transfer", v["transfer"] or hd_tagged),
        ("  matrix", v["matrix"] or f"untagged (read as {ASSUMED[v['assumed_matrix']]})"),
        ("  range", RGB_RANGE if v["rgb"] else RANGES.get(v["range"], "") or "untagged (read as limited)"),
        ("  HDR", f"yes ({v['hdr']})" if v["hdr"] else "no"),
        *_hdr_metadata(v),
        *_siting(v),
    ]


def _siting(v: dict) -> list[tuple[str, str]]:
    """Where subsampled chroma sits (none for 4:4:4 and RGB)."""
    from dove_cli.video_io.siting import said  # (PyAV: loaded by the `dove info` that calls this)

    return [("  chroma", f"sited {said(v['chroma_location'])}")] if v.get("chroma_location") else []


def _hdr_metadata(v: dict) -> list[tuple[str, str]]:
    """HDR10's static metadata (kept by hevc, h264 and av1 outputs) and the dynamic kinds (never kept)."""
    from dove_cli.video_io.hdr import mastering_said  # (PyAV: loaded by the `dove info` that calls this)

    rows = []
    if m := v.get("mastering_display"):
        rows.append(("  mastering", mastering_said(m)))
    if light := v.get("light_level"):
        rows.append(("  light", f"MaxCLL {light['max_cll']}, MaxFALL {light['max_fall']} cd/m²"))
    if v.get("dynamic_hdr"):
        rows.append(("  dynamic", f"{', '.join(v['dynamic_hdr'])} (not kept: an upscale replaces the pictures "
                                      "it describes)"))  # fmt: skip
    return rows


CHAPTERS_SHOWN = 30  # chapters `dove info` lists (a Blu-ray's are 20 to 40; --json gives them all)


def clock_time(seconds: float) -> str:
    """Seconds as a chapter list writes them: 0:05:12.345."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _still_rows(im: dict) -> list[tuple[str, str]]:
    """What an image input holds besides its pixels (the first image's): EXIF orientation, pages, ICC, DPI."""
    rows = []
    if im.get("orientation", 1) != 1:
        turn = turn_text(im["rotation"], im["mirrored"])
        rows.append(("orientation", f"EXIF {im['orientation']} ({turn}): image outputs and --rotate apply turn the "
                                    "pixels as viewers show them; a video output keeps it as a tag"))  # fmt: skip
    if im.get("pages", 1) > 1:
        rows.append(("pages", f"{im['pages']} (only the first is read)"))
    if im.get("icc"):
        rows.append(("colour", f"{im['icc']} (kept by .png and .jpg outputs)"))
    if im.get("primaries") or im.get("transfer"):  # a PNG's cICP: its colour as a video's tags say it
        rows.append(("colour", f"primaries {im['primaries'] or 'untagged'}, transfer {im['transfer'] or 'untagged'}"))
        rows.append(("  HDR", f"yes ({im['hdr']})" if im["hdr"] else "no"))
        rows += _hdr_metadata(im)
    if dpi := im.get("dpi"):
        rows.append(("resolution", f"{dpi[0]:g} dpi" if dpi[0] == dpi[1] else f"{dpi[0]:g}x{dpi[1]:g} dpi"))
    return rows


TAG_SHOWN = 200  # characters of a tag `dove info` shows: a 1 MB title would flood a terminal or a log (--json: whole)


def shown_tag(value: str, quoted: bool = False) -> str:
    """A tag's `value` as `dove info` shows it (`quoted`: as Python writes a str): whole up to
    TAG_SHOWN characters, else its start and how long it is."""
    start = repr(value[:TAG_SHOWN]) if quoted else value[:TAG_SHOWN]
    return start if len(value) <= TAG_SHOWN else f"{start}... ({len(value):,} characters)"


def described_rows(d: dict) -> list[tuple[str, str]]:
    """`dove info FILE`: one (label, text) row per fact of `video_io.describe`'s dict."""
    if "images" in d:
        im = d["images"]
        if im["count"] == 1:
            head = ("image", f"{im['first']}, {im['width']}x{im['height']}, {im['pix_fmt']}, {im['bit_depth']}-bit")
            return [head, *_still_rows(im)]
        numbering = f"numbered {im['numbers']}" if im["numbers"] else "not numbered: read in name order"
        numbering += f", {im['missing']} number{'s' * (im['missing'] != 1)} missing" if im["missing"] else ""
        numbering += f", {len(im['strays'])} not in the numbering ({', '.join(im['strays'][:5])})" * bool(im["strays"])
        return [
            ("images", f"{im['count']} {im['codec']} ({im['first']} to {im['last']}), {numbering}"),
            ("size", f"{im['width']}x{im['height']}"),
            ("pixels", f"{im['pix_fmt']}, {im['bit_depth']}-bit"),
            *_still_rows(im),
        ]
    v = d["video"] or {}  # None: sound only
    several = len(d["programmes"]) > 1  # an MPEG-TS of several: each stream says its own
    names = {
        p["number"]: f"programme {p['number']}" + (f" {p['name']!r}" if p["name"] else "") for p in d["programmes"]
    }
    start = f", starts at {d['start']:.3f} s" if d["start"] else ""  # a recording's clock, an .mp4's edit list
    start += " (a recording's clock: outputs other than .ts start at 0)" * bool(start and d["clock"])
    rows = [("container", d["container_name"] + (f", {d['duration']:.3f} s" if d["duration"] else "") + start)]
    rows += (
        _video_rows(v, d["duration"], names, several)
        if v
        else [("video", "none: nothing to upscale (dove upscale refuses it)")]
    )
    for s in d["streams"]:
        if s["kind"] in ("attachment", "cover art"):
            text = f"{s['filename']}, {s['mimetype'] or 'no type'}, {s['bytes']} bytes"
        else:
            parts = [s.get("timecode") or s["codec"] or "unknown codec"]
            if s["kind"] == "video":
                parts += [f"{s['width']}x{s['height']} (not read: --video-stream {s['index']} reads it)"]
            if s["kind"] == "audio" and s.get("empty"):
                parts += ["empty (no channels, no sound: FFmpeg lists one beside each TrueHD track of an MPEG-TS); "
                          "left out of outputs"]  # fmt: skip
            elif s["kind"] == "audio":  # FFmpeg names a layout in no named order "3 channels": said once
                layout = f"{s['layout']} ({s['channels']} ch)"
                if s["layout"] == f"{s['channels']} channels":  # one channel has no order to name
                    layout = "1 channel" if s["channels"] == 1 else f"{s['layout']}, in no named order"
                parts += [f"{layout}, {s['sample_rate']} Hz"]
            # ISO 639's "und" (undetermined), which a German screen reader read as the word "and"
            parts += [s["language"] if s["language"] != "und" else "no language tag"] if s["language"] else []
            parts += [f"starts at {s['start']:.3f} s"] if s.get("start") else []
            parts += (
                [f"{s['duration']:.3f} s long"] if outlasts(s.get("duration"), v.get("duration"), both=True) else []
            )
            parts += [shown_tag(s["title"], quoted=True)] if s["title"] else []
            parts += [", ".join(s["flags"])] if s["flags"] else []
            parts += [names[s["programme"]]] if several and s.get("programme") else []
            text = ", ".join(parts)
        rows.append((f"#{s['index']} {s['kind']}", text))
    if chapters := d["chapters"]:
        order = ", ordered (played as a list; an output plays straight through)" if d.get("chapters_ordered") else ""
        order += ", linking other files" if d.get("chapters_linked") else ""
        rows.append(("chapters", f"{len(chapters)}{order}"))
        for i, ch in enumerate(chapters[:CHAPTERS_SHOWN], 1):
            title = f"  {shown_tag(ch['title'], quoted=True)}" if ch["title"] else ""
            rows.append((f"  {i}", f"{clock_time(ch['start'])} to {clock_time(ch['end'])}{title}"))
        if len(chapters) > CHAPTERS_SHOWN:
            rows.append(("  ...", f"{len(chapters) - CHAPTERS_SHOWN} more (--json lists every one)"))
    rows += [(f"tag {k}", shown_tag(v)) for k, v in d["tags"].items()]
    if left := d.get("tags_left"):
        rows.append(("tag ...", f"{left:,} more, not shown (dove reads a file's first {len(d['tags']):,} tags)"))
    return rows


def _video_rows(v: dict, duration: float | None, names: dict[int, str], several: bool) -> list[tuple[str, str]]:
    """`described_rows`' rows of the video dove reads (`v`: `describe`'s "video"; `duration`: the file's)."""
    from dove_cli.video_io.fields import said as fields_said  # (PyAV: loaded by the `dove info` that calls this)
    from dove_cli.video_io.metadata import timecode_said
    from dove_cli.video_io.reader import unread_said

    n = v["frames"]
    size = f"{v['width']}x{v['height']}"
    size += f", shown {v['display_size']}" if v["display_size"] else ""
    size += f" (pixel aspect {v['sample_aspect_ratio']})" if v["sample_aspect_ratio"] else ""
    fps = Fraction(v["fps"])
    rows = [
        (f"#{v['index']} video", f"{v['codec']}, {size}" + (f", {names[v['programme']]}" if several and v["programme"] else "")),
        ("  frames", f"{n}" if v["frames_exact"] else f"{n} (counted from the packets: the container does not say)"),
        ("  frame rate", f"{float(fps):.3f} fps" + (f" ({fps})" if fps.denominator != 1 else "")
         + (f", variable (the average; nominally {float(Fraction(v['nominal_fps'])):.3f})" if v["variable_rate"]
            else ", constant")),
        ("  pixels", f"{v['pix_fmt']}, {v['bit_depth']}-bit, " + ("interlaced" if v["interlaced"] else "progressive")
         + {"tff": ", top field first", "bff": ", bottom field first", None: ""}[v.get("field_order")]),
        *([("  fields", f"{fields_said(v['fields'], v.get('field_order'))}, by FFmpeg's idet")] if v.get("fields") else []),
        *_colour(v),
    ]  # fmt: skip
    if v["start"]:
        rows.insert(3, ("  start", f"{v['start']:.3f} s (the first frame)"))
    if outlasts(duration, v.get("duration")):  # the container's is its longest stream's: say the video's own
        rows.insert(2, ("  length", f"{v['duration']:.3f} s"))
    if short := v.get("cut_short"):
        rows.insert(
            2,
            (
                "  cut short",
                f"its video ends at {short['ends']:.3f} s, its header says {short['header_end']:.3f} s "
                f"(about {short['missing_frames']} frames more): a recording that crashed, a copy not finished?",
            ),
        )
    if stop := v.get("unread"):
        rows.insert(2, ("  cut short", f"{unread_said((stop['stops_at'], stop['size']))}; a run fails there unless "
                        "--ignore-decode-errors, which keeps the frames there are"))  # fmt: skip
    if v.get("unfinished"):
        rows.insert(
            2,
            (
                "  unfinished",
                "its header lacks what a muxer writes at the end: a recording still being "
                "made (or whose recorder crashed); a run reads only what there is by then",
            ),
        )
    if v.get("timecode"):
        rows.append(("  timecode", f"{timecode_said(v['timecode'], v.get('reel_name'))} at the first frame"))
    if v["rotation"] or v["mirrored"]:
        rows.append(("  rotation", f"{turn_text(v['rotation'], v['mirrored'])} (kept as a tag)"))
    if v["captions"]:
        rows.append(("  captions", "EIA-608/708 closed captions, in the video (kept by h264 and hevc outputs)"))
    return rows


def outlasts(length: float | None, video: float | None, both: bool = False) -> bool:
    """Whether a stream's `length` differs from the video's by more than half a second: longer (an audio
    track that goes on after the picture), or with `both` shorter too; not the usual last audio frame or
    two past the picture. Unknown lengths: no."""
    gap = (length or 0) - (video or 0)
    return bool(length and video) and (abs(gap) if both else gap) > 0.5


def print_described(d: dict, console: Console) -> None:
    """One input's block for `dove info FILE`: its path, then aligned plain lines (no padding after
    the text, for scripts that read them)."""
    rows = described_rows(d)
    width = max(len(label) for label, _ in rows)
    say(d["path"], console)
    for label, text in rows:
        say(f"  {label:<{width}}  {text}", console)
