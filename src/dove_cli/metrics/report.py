"""`dove eval`'s results: the scores per video and over videos (`EvalReport`), written as --json,
--csv and --plot, whose files are checked before any scoring."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dove_cli import video_io
from dove_cli.errors import OptionError, OutputError
from dove_cli.humanize import drawn_text, path_text, real_names, real_text
from dove_cli.jsontext import json_text
from dove_cli.metrics import METRICS


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
