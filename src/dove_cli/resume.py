"""Resumable output: closed segments in a work folder beside the output, a journal, the final join.

Every video run writes its frames as closed segment files into `<output>.dove-work/` (each one a
complete file, renamed into place when it ends) and records each in `journal.jsonl` (one line
appended and synced per segment, after the segment itself is on disk). At the end the segments
are joined by copying packets (no re-encode) into the output, with the input's audio and
subtitles, and the work folder is removed. Segments are MOV or NUT files (segment_suffix below)
whatever the output container, so timestamps survive exactly. Image-pattern outputs write each
image atomically into `<output>.dove-work/images/` instead. A run holds an exclusive lock on
`<output>.dove-work/lock` (flock) from the moment it finds or creates the folder: a second run on
the same output is refused instead of writing into the same folder. The OS drops the lock when
the process ends, even on a crash or kill.

After an interruption (Ctrl-C, kill, power loss) the folder holds every finished segment, and
`--resume` continues after the last one: the loop replays the same window plan, skips the model
for windows whose frames are all saved, and writes the rest. Because each segment is encoded by
its own deterministic encoder (fixed thread count) from the same pixels, the result equals an
uninterrupted run. The journal's fingerprint (input identity and every option that changes
pixels) must match, so a resume never mixes two different runs.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
import torch

from dove_cli import locks, provenance, video_io
from dove_cli.errors import (
    BrokenImage,
    DecodeError,
    DoveError,
    FileTooLarge,
    InputChanged,
    InputError,
    Interrupted,
    MuxError,
    OutputBusy,
    OutputError,
    TempFailure,
    advice,
    as_given,
    changed_hint,
    run_again,
)
from dove_cli.humanize import counted, human_size
from dove_cli.options import DEFAULTS, UpscaleOptions
from dove_cli.timing import StageTimer
from dove_cli.video_io.formats import CodecSpec, ffmsg, resolve_codec
from dove_cli.video_io.paths import ffmpeg_name, temp_siblings
from dove_cli.video_io.reader import UNFINISHED_QUIET_S, VideoInfo
from dove_cli.video_io.writer import ContainerWriter, OwnDurations, frame_ticks, last_ticks
from dove_cli.windows import Span

log = logging.getLogger(__name__)


class _CannotResume(Exception):
    """Why saved work cannot be continued, and what to do (an error, or with --overwrite a warning)."""

    def __init__(self, reason: str, what: str | None = None) -> None:
        super().__init__(reason)
        self.advice = what or advice("use --overwrite to start over", "use overwrite=True to start over")


WORK_SUFFIX = ".dove-work"
JOURNAL = "journal.jsonl"  # line 1: the run (fingerprint, plan); then one line per closed segment
LOCK = "lock"  # flock-ed by the run using the folder; holds its pid
VERSION = 5  # segments of two versions do not mix. 5: ffv1 at a 12- to 16-bit source's depth (was 10 bits), deep YUV
# written by the equations (`video_io.deep`: full-range 10-bit was 0.3% bright);
# 4: HDR10 metadata and the chroma siting in the stream, HEVC for HDR in .ts (3: HDR sources' default codec
# is HEVC, tagged hvc1 in MOV; 2: x264 segments with frame threads; 1: slices)
# A segment closes at the first window boundary at least this many frames after its start. Each
# segment starts with a keyframe: at the default --chunk 33 (stride 25) that is one segment per
# window, about 0.5-2.5 % more bytes than one long GOP, and a resume redoes at most one window
# that had finished (the one whose overlap blends into the first unsaved frame).
SEGMENT_MIN_FRAMES = 24
# Encoders are given a fixed thread count: x264/x265 output depends on it, and a resumed segment
# must be encoded exactly as it would have been without the interruption.
ENCODER_THREADS = 8
# Frame threads where the encoder has them, as the ffmpeg command line does. PyAV's default (slice
# threads only) makes x264 cut every frame into 8 slices: 2% more bytes at the same CRF and more
# CPU time (measured on benchmarks/host_pipeline.py's job).
ENCODER_THREAD_TYPE = "frame+slice"


def work_folder(output: Path) -> Path:
    return output.with_name(output.name + WORK_SUFFIX)


def discard_work(output: str | Path) -> bool:
    """Drop what an interrupted run into `output` saved for `resume=True` (its work folder,
    OUTPUT.dove-work/ beside it), for a run cancelled for good; True when there was one. Refused
    (OutputBusy) while a run is writing that output. `overwrite=True` on the next run drops it too."""
    work = Work(Path(output))
    if not os.path.lexists(work.path):
        return False
    work.check_ours()  # never another user's folder, nor a folder a planted link names
    work.lock()  # another run's: OutputBusy
    work.remove()
    return True


def resumable(output: Path) -> bool:
    """Video files and image patterns; a single image is written in one go."""
    return output.suffix.lower() in video_io.VIDEO_EXTENSIONS or video_io.is_pattern(output)


def _changed(info: VideoInfo, then: dict[str, Any], now: dict[str, Any], when: str) -> InputChanged:
    """The input's identity (`input_identity`) differs from the run's start (`then`), found `when`."""
    how = (f"{then['input_bytes']:,} bytes when the run began, {now['input_bytes']:,} {when}"
           if now["input_bytes"] != then["input_bytes"] else "modified during the run")  # fmt: skip
    return InputChanged(f"{info.path}: the input changed while it was read ({how}: still being copied or recorded, "
                        "or a disk or card failing?); nothing was kept; upscale it again once it is complete")  # fmt: skip


def input_identity(info: video_io.VideoInfo) -> dict[str, Any]:
    """What must not change between a run and its resume, nor while a run reads it: the input's
    path, size and mtime."""
    return provenance.identity(info.files or [Path(info.path)], Path(info.path))


@dataclass
class Segment:
    file: str  # name inside the work folder
    first: int  # index of its first frame in the output
    frames: int
    first_pts: int  # pts of its first frame (input time base)
    bytes: int = 0  # file size when it was closed (a resume checks it)


@dataclass
class Journal:
    fingerprint: dict[str, Any]
    chunk: int  # the plan's resolved values ('auto' may choose differently on the next run)
    tile: int
    # [first frame of a window, tile] from each out-of-memory shrink, so a resume tiles every window as before
    tile_changes: list[list[int]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    version: int = VERSION

    @property
    def frames_done(self) -> int:
        return sum(s.frames for s in self.segments)


def _busy(output: Path, holder: str) -> str:
    """The refusal when another run holds the lock of `output`'s work folder (its line: the pid)."""
    return f"another dove run is writing {output} (pid {holder or '?'})"


def busy(output: Path) -> str | None:
    """Why a run on `output` would be refused now (another live run holds its work folder's lock), or
    None. The lock is probed, not kept (Session.check takes it): so that the output checks say this
    before an existing output's "use --overwrite", which that run would then refuse."""
    holder = locks.held_by(work_folder(output) / LOCK)
    return None if holder is None else _busy(output, holder)


class Work:
    """The work folder of one output: its journal and its closed segments (or images)."""

    def __init__(self, output: Path, numbers: list[int] | None = None) -> None:
        """`numbers`: an image pattern's number of each image, in order (None: from --start-number on)."""
        self.output, self.numbers = output, numbers
        self.path = work_folder(output)
        self.images = self.path / "images"
        self.journal_path = self.path / JOURNAL
        self._lock = locks.HeldFile(self.path / LOCK)
        # The writer thread records segments while the run's thread may rewrite the journal (a tile
        # change): one at a time, or a rewrite drops a line appended meanwhile.
        self.writing = threading.RLock()

    def lock(self) -> None:
        """Hold the folder's lock until release() or the end of the process; refuse if another run has it."""
        if self._lock.current():  # (not when removed by the run that held it before us: lock the new one)
            return
        try:
            self._lock.hold()
        except locks.Busy as exc:
            raise OutputBusy(_busy(self.output, exc.holder)) from None
        except OSError as exc:
            raise OutputError(f"{self.output}: cannot create {self._lock.path} ({exc.strerror})") from None
        try:
            self._lock.write_holder(str(os.getpid()))
        except OSError as exc:  # a full disk: nothing of this run is there yet, so leave nothing
            self._lock.release()
            self._lock.path.unlink(missing_ok=True)
            if not any(self.path.iterdir()):
                self.path.rmdir()
            failed = video_io.write_failed(self.output, exc, exc.strerror or str(exc))
            if isinstance(failed, TempFailure):
                raise TempFailure(f"{failed}; make room, then {run_again([], [], to='')}") from None
            raise failed from None

    def release(self) -> None:
        """Let other runs use this output again (closing the file drops the lock)."""
        self._lock.release()

    @property
    def held(self) -> bool:
        """This run holds the folder's lock: the folder and what is in it are this run's to remove."""
        return self._lock.held

    def check(
        self, fingerprint: dict[str, Any], *, resume: bool, overwrite: bool, claim: bool = False
    ) -> Journal | None:
        """Before any work: the journal to resume, or None to start afresh; refuses a stale folder that
        holds finished frames, or with --resume --overwrite starts afresh when the saved work does not
        fit, saying why. `claim`: take the folder now (made if need be, when the output's folder is
        there), so that a second run on this output is refused before it spends minutes loading a model."""
        if not os.path.lexists(self.path):
            if claim and self.output.parent.is_dir():
                self._make()
                self.lock()
            return None
        self.check_ours()
        self.lock()
        if not resume:
            if overwrite or self._nothing_saved():  # a run killed before its first segment: nothing to lose
                return None
            what = advice("run the same command with --resume to continue it, or with --overwrite to start over",
                          "call upscale() with resume=True to continue it, or with overwrite=True to start over (or "
                          "dove_cli.discard_work(output) to drop it)")  # fmt: skip
            raise OutputError(f"{self.path}: an unfinished run of {self.output.name} is saved here; {what}")
        try:
            journal = self._read()
            if journal is not None:
                self._check_same_command(journal, fingerprint)
        except _CannotResume as exc:
            if not overwrite:
                raise OutputError(f"{exc}; {exc.advice}") from None
            log.warning("%s; starting over (--overwrite)", exc)  # --resume --overwrite: continue if possible
            return None
        return journal

    def _check_same_command(self, journal: Journal, fingerprint: dict[str, Any]) -> None:
        """An option the saved run's dove did not have yet counts as its default, which it then did. A
        changed input is said in words first (`input_change`), not as its size and time."""
        if what := input_change(journal.fingerprint, fingerprint):
            raise _CannotResume(f"{self.path}: cannot resume: {what} since the interrupted run, so its finished frames "
                                "may not match it")  # fmt: skip
        for key in sorted(set(journal.fingerprint) | set(fingerprint)):
            old, new = journal.fingerprint.get(key, OPTION_DEFAULTS.get(key)), fingerprint.get(key)
            if old != new:
                raise _CannotResume(
                    f"{self.path}: cannot resume: the saved run had {as_given(key, old)}, "
                    f"{advice('this command', 'this call')} has {as_given(key, new)}",
                    changed_hint(),
                )

    def _nothing_saved(self) -> bool:
        try:
            journal = self._read()
        except _CannotResume:
            return False
        return journal is None or self.saved(journal) == 0

    def _read(self) -> Journal | None:
        try:
            head, *lines = self.journal_path.read_text().splitlines()
            journal = Journal(**json.loads(head))
            for line in lines:
                try:
                    journal.segments.append(Segment(**json.loads(line)))
                except ValueError:  # a line cut short by a crash: the segments before it count
                    break
        except FileNotFoundError:
            return None  # killed before anything was saved: nothing to resume
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise _CannotResume(f"{self.journal_path}: unreadable ({exc})") from None
        if journal.version != VERSION:
            raise _CannotResume(f"{self.journal_path}: written by another dove version")
        return journal

    def start(self, journal: Journal, resumed: bool, *, gaps: bool = False) -> int:
        """Create (or tidy) the folder; returns how many output frames are already saved (from the
        first frame on, without a gap). Segments are kept in frame order (a distributed run records
        them as they finish); `gaps` keeps whole segments after a missing one too (distributed runs
        redo only what is missing)."""
        self._make()
        self.lock()
        self._remove_stale_output()
        if not resumed:
            self._clear(keep={LOCK})
        if video_io.is_pattern(self.output):
            done = self._images_done(journal)
        else:
            keep: list[Segment] = []
            end = 0
            for s in sorted(journal.segments, key=lambda s: s.first):  # each must still be whole
                path = self.path / s.file
                whole = path.is_file() and path.stat().st_size == s.bytes and s.first >= end
                if whole and (gaps or s.first == end):
                    keep.append(s)
                    end = s.first + s.frames
                elif not gaps:
                    break
            journal.segments = keep
            done = _prefix_frames(keep)
            self._clear(keep={s.file for s in keep} | {JOURNAL, LOCK})  # partial segments, temporary files
        self.save(journal)
        return done

    def _make(self) -> None:
        try:
            self.path.mkdir()
        except FileExistsError:
            pass  # ours from before, or not ours: check_ours says which
        except OSError as exc:
            raise OutputError(f"{self.output}: cannot create work folder {self.path} ({exc.strerror})") from None
        self.check_ours()

    def check_ours(self) -> None:
        """Refuse a work folder this user did not make: a run empties it and removes it at the end, so a
        symlink planted at its name (in a shared output folder) would have dove delete what the link
        names, and another user's folder would let that user read or replace the run's segments."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot be read ({exc.strerror})") from None
        if stat.S_ISLNK(st.st_mode):
            why = f"is a symlink (to {os.readlink(self.path)})"
        elif not stat.S_ISDIR(st.st_mode):
            why = "is not a folder"
        elif hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            why = f"belongs to another user (uid {st.st_uid})"
        else:
            return
        raise OutputError(f"{self.path}: {why}, not a work folder of yours; refused, as a run would empty it "
                          f"(remove it, or write {self.output.name} elsewhere)")  # fmt: skip

    def _remove_stale_output(self) -> None:
        """A run killed while joining leaves its partial output under a hidden temporary name beside
        the output. Every run that writes this output holds the lock this run now holds, so any such
        file is a dead run's: removed."""
        if video_io.is_pattern(self.output):
            return
        for p in temp_siblings(self.output, self.output.suffix):
            log.info("%s: removing %s, left by a run that was killed while writing it", self.output, p.name)
            p.unlink(missing_ok=True)

    def _clear(self, keep: set[str]) -> None:
        for p in self.path.iterdir():  # a link inside is removed itself, never what it names
            if p.name not in keep:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()

    def _images_done(self, journal: Journal) -> int:
        """The images present of those the run writes, in order, up to the first missing one (each was
        written atomically, in order)."""
        start = journal.fingerprint.get("start_number")
        numbers = self.numbers if self.numbers is not None else itertools.count(1 if start is None else int(start))
        n = 0
        for number in numbers:
            if not (self.images / video_io.frame_name(self.output, number)).is_file():
                break
            n += 1
        return n

    def save(self, journal: Journal) -> None:
        """Rewrite the whole journal atomically, and on disk before it returns."""
        with self.writing:
            head = {k: v for k, v in asdict(journal).items() if k != "segments"}
            lines = [json.dumps(head)] + [json.dumps(asdict(s)) for s in journal.segments]
            tmp = self.journal_path.with_name(JOURNAL + ".tmp")
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.journal_path)
            _fsync_folder(self.path)

    def append(self, segment: Segment) -> None:
        """Record a closed segment: one line, synced (cost independent of the video length)."""
        with self.writing, open(self.journal_path, "a") as f:
            f.write(json.dumps(asdict(segment)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def saved(self, journal: Journal) -> int:
        """Output frames that a resume would not redo."""
        return self._images_done(journal) if video_io.is_pattern(self.output) else journal.frames_done

    def remove(self) -> None:
        """Delete the folder (the run is over), then release the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()


def segment_options(output: Path, info: video_io.VideoInfo, width: int, height: int, *,
                    writer_options: dict[str, Any], join_options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Encoder settings of an output's segment files: the user's, with the codec and pixel format
    the output itself gets. Opens (and drops) the real output, so that a container, codec or audio
    problem fails now, not hours later at the join."""
    check = video_io.open_writer(output, info, width, height, **writer_options, **join_options)
    pix_fmt = getattr(check, "pix_fmt", None)
    check.abort()
    codec = writer_options.get("codec") or video_io.default_codec(output, info.color_trc)  # segments are MOV/NUT
    return {**writer_options, "codec": codec, "pix_fmt": pix_fmt or writer_options.get("pix_fmt")}


class SegmentFiles(video_io.VideoWriter):
    """Writes frames as closed segment files into `folder`, each one whole on disk before
    `on_closed(segment)` hears of it. end_segment() closes the current segment (the caller chooses
    boundaries that depend only on the plan, so that any run cuts its segments at the same frames);
    abort() drops only the segment being written."""

    def __init__(
        self,
        folder: Path,
        info: video_io.VideoInfo,
        width: int,
        height: int,
        *,
        first: int,
        options: dict[str, Any],
        on_closed: Callable[[Segment], None],
    ) -> None:
        self.folder, self.info, self.frames_written, self.on_closed = folder, info, first, on_closed
        self.path = folder  # (VideoWriter.path, what it writes: here a folder of segments)
        self._w, self._h = width, height
        self._opts = options  # from segment_options()
        self._suffix = segment_suffix(options["codec"])
        self._open: tuple[video_io.VideoWriter, Segment] | None = None  # the segment being written

    def write(self, rgb: np.ndarray, pts: int | None = None, captions: av.VideoFrame | None = None) -> None:
        if pts is None:
            raise ValueError("segments need the pts of every frame")
        if self._open is None:
            first = self.frames_written
            segment = Segment(f"seg_{first:09d}{self._suffix}", first, 0, int(pts))
            # index_first=False: only the join reads a segment, which the muxer need not rewrite for players
            writer = video_io.open_writer(self.folder / segment.file, self.info, self._w, self._h, **self._opts,
                                          audio="none", subtitles="none", overwrite=True, warn=False,
                                          index_first=False)  # fmt: skip
            self._open = (writer, segment)
        writer, segment = self._open
        writer.write(rgb, pts, captions)
        segment.frames += 1
        self.frames_written += 1

    def end_segment(self) -> None:
        if self._open is None:
            return
        writer, segment = self._open
        writer.close()  # complete file, renamed into place
        if self.late_captions is None:  # (said once, when the segments are joined)
            self.late_captions, self.captions_lost = writer.late_captions, writer.captions_lost
        path = self.folder / segment.file
        with open(path, "rb") as f:  # on disk before the journal lists it (power loss)
            os.fsync(f.fileno())
        segment.bytes = path.stat().st_size
        self._open = None
        self.on_closed(segment)

    def close(self) -> None:
        self.end_segment()

    def abort(self) -> None:
        if self._open is not None:
            self._open[0].abort()
            self._open = None


class SegmentedWriter(SegmentFiles):
    """Segments in the work folder, each recorded in the journal; joined into `output` at close."""

    def __init__(
        self,
        work: Work,
        journal: Journal,
        output: Path,
        info: video_io.VideoInfo,
        width: int,
        height: int,
        *,
        first: int,
        writer_options: dict[str, Any],
        join_options: dict[str, Any],
    ) -> None:
        options = segment_options(output, info, width, height, writer_options=writer_options,
                                  join_options=join_options)  # fmt: skip
        super().__init__(work.path, info, width, height, first=first, options=options, on_closed=self._record)
        self.output, self.work, self.journal = output, work, journal
        self.path = output  # (VideoWriter.path, what it writes: the output the segments are joined into)
        self._join = join_options
        self._closed = False

    def _record(self, segment: Segment) -> None:
        """(writer thread) In the journal's list and its file together: a rewrite for a tile change
        (the run's thread) sees both or neither."""
        with self.work.writing:
            self.journal.segments.append(segment)
            self.work.append(segment)

    def close(self) -> None:
        if self._closed:
            return
        self.end_segment()
        late = None if self.late_captions is None else (self.late_captions, self.captions_lost)
        join_run(self.output, self.info, self.work.path, self.journal.segments, self._opts, self._join, late)
        self._closed = True


# Closed captions a run's segments did not keep, found only as it ran: (seconds into the input where
# they first turned up, why the output lost them: VideoWriter.late_captions, captions_lost).
LateCaptions = tuple[float, str]


def join_run(
    output: Path,
    info: VideoInfo,
    folder: Path,
    segments: list[Segment],
    options: dict[str, Any],
    join: dict[str, Any],
    late_captions: LateCaptions | None,
) -> None:
    """A run's last step, in one process or on Ray's driver: the segments in `folder` joined into
    `output` (join_segments, with the segment encoder's `options` and the join's), then the input's
    closed captions that the segments did not keep, where the check before the run did not find
    them, said once."""
    files = [(folder / s.file, s.first_pts) for s in segments]
    join_segments(output, info, files, codec=options["codec"], preset=options.get("preset"),
                  pix_fmt=options.get("pix_fmt"), **join)  # fmt: skip
    if late_captions is not None:
        log.warning("%s: the input's closed captions (EIA-608/708 in the video), found from %.1f s on, are not "
                    "kept: %s (h264 and hevc keep them)", output, *late_captions)  # fmt: skip


def close_output(writer: video_io.VideoWriter, timer: StageTimer, joining: Callable[[], None] | None) -> None:
    """Close a run's writer: flush, join the segments, rename into place. `joining` (a progress
    event) is called before, once the last segment is closed: a callback that stops the run there
    leaves every frame saved."""
    if joining is not None:
        if isinstance(writer, SegmentFiles):
            with timer.stage("finalize"):
                writer.end_segment()
        joining()
    with timer.stage("finalize"):
        writer.close()


def _still_writing(path: Path) -> float:
    """Seconds until an input has gone UNFINISHED_QUIET_S unchanged (0: it has)."""
    quiet = video_io.reader.written_ago(path)
    return min(UNFINISHED_QUIET_S, max(0.0, UNFINISHED_QUIET_S - quiet))  # (a clock ahead: a whole wait)


def _prefix_frames(segments: list[Segment]) -> int:
    """Frames saved from the first one on without a gap (segments in frame order)."""
    end = 0
    for s in segments:
        if s.first != end:
            break
        end += s.frames
    return end


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_output(
    work: Work | None,
    journal: Journal | None,
    output: Path,
    info: video_io.VideoInfo,
    width: int,
    height: int,
    *,
    first: int,
    writer_options: dict[str, Any],
    join_options: dict[str, Any],
) -> video_io.VideoWriter:
    """The writer for a run: segments (video), images in the work folder (pattern), or direct (one image)."""
    if work is None or journal is None:
        return video_io.open_writer(output, info, width, height, **writer_options, **join_options)
    if video_io.is_pattern(output):
        return video_io.open_writer(
            output,
            info,
            width,
            height,
            codec_options=writer_options.get("codec_options"),
            pix_fmt=writer_options.get("pix_fmt"),
            overwrite=join_options.get("overwrite", False),
            work=work.images,
            first=first,
            start_number=writer_options.get("start_number", 1),
            numbers=writer_options.get("numbers"),
            warn=join_options.get("warn", True),
        )
    return SegmentedWriter(
        work,
        journal,
        output,
        info,
        width,
        height,
        first=first,
        writer_options=writer_options,
        join_options=join_options,
    )


def encoder_options(codec_options: dict[str, str]) -> dict[str, str]:
    """The user's encoder options with a fixed thread count and ffmpeg's threading unless they set them."""
    return {"threads": str(ENCODER_THREADS), "thread_type": ENCODER_THREAD_TYPE, **codec_options}


# ---------------------------------------------------------------------------------------- a run's view

# Options that do not change the output's pixels or video stream: a resume may change them.
NOT_PIXELS = ("overwrite", "resume", "manifest", "download", "audio", "subtitles", "device", "dtype", "offload",
              "ignore_decode_errors", "ray", "workers", "given")  # fmt: skip


# Each option's default, as the journal stores it (json), for journals written before the option was.
OPTION_DEFAULTS = json.loads(json.dumps(DEFAULTS, default=str))


IDENTITY = ("input_files", "input_bytes", "input_mtime_ns")  # provenance.identity's, beside the input's path


def input_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """How the input of the same path changed since a run's `old` fingerprint, in words ("" if it did
    not): an image sequence's images added or removed, and those written since (a replaced broken
    frame, a scan still arriving), by name; else that the file changed."""
    if old.get("input") != new.get("input") or all(old.get(k) == new.get(k) for k in IDENTITY):
        return ""
    path = Path(str(new["input"]))
    try:
        files = video_io.image_inputs(path) if not path.is_file() or video_io.is_image_path(path) else None
    except DoveError:
        files = None
    if not files:
        return f"{path.name} changed (its size or modification time)"
    parts = []
    if (more := int(new.get("input_files") or 0) - int(old.get("input_files") or 0)) != 0:
        parts.append(f"{counted(abs(more), 'image')} {'more' if more > 0 else 'fewer'}")
    since = int(old.get("input_mtime_ns") or 0)
    newer = [f.name for f in files if f.stat().st_mtime_ns > since]
    if newer:
        shown = ", ".join(newer[:5]) + ", ..." * (len(newer) > 5)
        parts.append(f"{counted(len(newer), 'image')} written since: {shown}")
    elif not more:
        parts.append("its images' sizes changed")
    return f"the input's images changed ({'; '.join(parts)})"


def run_fingerprint(opts: UpscaleOptions, info: VideoInfo, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Everything that must be equal for a resumed run to continue an interrupted one exactly."""
    fp = {k: v for k, v in asdict(opts).items() if k not in NOT_PIXELS}
    fp["codec_options"] = encoder_options(opts.codec_options)
    fp.update(device=device.type, dtype=str(dtype).replace("torch.", ""), segment_min_frames=SEGMENT_MIN_FRAMES)
    fp.update(input_identity(info))
    return json.loads(json.dumps(fp, default=str))  # as it reads back from the journal


class SegmentEnds:
    """Where segments close: at the first point where the frames below `final` are finished that is
    at least SEGMENT_MIN_FRAMES past the previous end. It depends only on the plan, so a resumed run,
    or a worker of a distributed run starting anywhere, cuts where an uninterrupted run does."""

    def __init__(self, start: int = 0) -> None:
        self.start = start  # where the current segment began

    def __call__(self, final: int) -> int | None:
        """Frames below `final` are finished: the frame after which a segment closes, or None."""
        if final - self.start < SEGMENT_MIN_FRAMES:
            return None
        self.start = final
        return final


class RunSession(Protocol):
    """What the streaming loop (`upscaling._stream`) needs of a run's session: `Session` (a whole run,
    resumable), `arrays.ArraySession` (a run into memory) and `PartSession` (a Ray worker's part)."""

    @property
    def output(self) -> Path:
        """The output, as messages name it."""
        ...

    def start(self, chunk: int, tile: int) -> int:
        """The plan's windows are known: the output frames saved already (the loop skips their windows)."""
        ...

    @property
    def tile_changes(self) -> list[tuple[int, int]]:
        """The out-of-memory tile shrinks to replay, as (first window's start, tile) in window order."""
        ...

    def record_tile_change(self, start: int, tile: int) -> None:
        """An out-of-memory shrink from window `start` on: a resume must tile as this run does."""
        ...

    def open_writer(self, info: VideoInfo, width: int, height: int, *, writer_options: dict[str, Any],
                    join_options: dict[str, Any]) -> video_io.VideoWriter:  # fmt: skip
        """The writer of the output frames (after the saved ones), `width` x `height` as written."""
        ...

    def window_done(self, span: Span, tile: int) -> None:
        """The window `span` ran with tiles of `tile` px (0: whole frames)."""
        ...

    def segment_end(self, final: int) -> int | None:
        """Frames below `final` are finished: the frame after which a segment closes, or None."""
        ...

    def close_writer(self, writer: video_io.VideoWriter, info: VideoInfo, timer: StageTimer,
                     joining: Callable[[], None] | None = None) -> None:  # fmt: skip
        """After the last frame: the writer closed (`joining` is called if its segments are joined)."""
        ...


class Session:
    """What one run needs from resume: what is saved already, where segments end, the writer.

    check() before the model loads (an interrupted run to continue, or a refusal), start() when
    the plan is known, then segment_end() as frames become final; finished() or annotate_failure()
    at the end.
    Outputs that cannot be resumed (a single image) get the same interface with nothing saved.
    """

    def __init__(self, output: Path, fingerprint: dict[str, Any], *, resume: bool, overwrite: bool,
                 note: bool = False, numbers: list[int] | None = None) -> None:  # fmt: skip
        """`note`: a folder run's output, whose input is noted when it is whole (provenance). `numbers`:
        an image pattern's number of each image (`sequences.output_numbers`; None: from --start-number on)."""
        self.output, self.fingerprint, self.numbers = output, fingerprint, numbers
        self.resume, self.overwrite, self.note = resume, overwrite, note
        self.work = Work(output, numbers) if resumable(output) else None
        self.previous: Journal | None = None  # the interrupted run being continued
        self.journal: Journal | None = None
        self.first = 0  # output frames saved by the interrupted run
        self._ends = SegmentEnds()
        self._info: VideoInfo | None = None  # the input, once the writer opens (for room_to_make)

    def check(self, dry_run: bool) -> Journal | None:
        """The interrupted run to continue (a dry run looks only when told to resume), or None.
        Holds the work folder's lock from here on, until release()."""
        if self.work is not None and (self.resume or not dry_run):
            self.previous = self.work.check(self.fingerprint, resume=self.resume, overwrite=self.overwrite,
                                            claim=not dry_run)  # fmt: skip
        return self.previous

    def saved_before(self) -> int:
        """Output frames the interrupted run being continued saved (0 when there is none)."""
        return self.work.saved(self.previous) if self.work is not None and self.previous is not None else 0

    def start(self, chunk: int, tile: int, *, gaps: bool = False) -> int:
        """Prepare the work folder for a run with these windows; returns the frames saved already
        (`gaps`: keep every whole segment, for a distributed run; see Work.start)."""
        self.journal = self.previous or Journal(self.fingerprint, chunk=chunk, tile=tile)
        if self.work is not None:
            self.first = self.work.start(self.journal, self.previous is not None, gaps=gaps)
        self._ends = SegmentEnds(self.first)
        return self.first

    @property
    def tile_changes(self) -> list[tuple[int, int]]:
        assert self.journal is not None
        return [(start, tile) for start, tile in self.journal.tile_changes]

    def record_tile_change(self, start: int, tile: int) -> None:
        """An out-of-memory shrink from window `start` on: a resume must tile as this run does."""
        assert self.journal is not None
        if self.work is None:
            self.journal.tile_changes.append([start, tile])
            return
        with self.work.writing:
            self.journal.tile_changes.append([start, tile])
            self.work.save(self.journal)

    def open_writer(self, info: VideoInfo, width: int, height: int, *, writer_options: dict[str, Any],
                    join_options: dict[str, Any]) -> video_io.VideoWriter:  # fmt: skip
        self._info = info
        return open_output(self.work, self.journal, self.output, info, width, height, first=self.first,
                           writer_options=writer_options | {"numbers": self.numbers}, join_options=join_options)  # fmt: skip

    def segment_end(self, final: int) -> int | None:
        """Frames below `final` are finished: the frame after which a segment closes, or None
        (SegmentEnds)."""
        return self._ends(final)

    def window_done(self, span: Span, tile: int) -> None:
        """Nothing to keep here: the journal has the tile changes (a PartSession reports each segment's
        windows with their tiles)."""

    def saved(self) -> int:
        """Output frames that a resume would not redo."""
        if self.work is None or self.journal is None:
            return 0
        return self.work.saved(self.journal)

    def check_input(self, info: VideoInfo) -> None:
        """Before the output takes its name: the input must be as it was when the run began. A file
        still being copied or recorded (a live Matroska capture has no length in its header yet, an
        MPEG-TS or fragmented MP4 never has) grows while it is read, and its output would hold only
        the frames there were: one that could be (`unfinished`, `open_ended`) and was written under
        UNFINISHED_QUIET_S ago is watched until then. InputChanged if not; annotate_failure() then drops
        what was saved from it."""
        then = {k: v for k, v in self.fingerprint.items() if k.startswith("input")}
        if not then:  # a run into memory (arrays.ArraySession) has no fingerprint
            return
        try:
            now = input_identity(info)
            if now == then and (info.unfinished or info.open_ended) and (wait := _still_writing(Path(info.path))):
                log.warning("%s: %swas written %.0f s ago: waiting %.0f s to see whether it is still being recorded",
                            info.path, "looks unfinished and " * info.unfinished, UNFINISHED_QUIET_S - wait, wait)  # fmt: skip
                time.sleep(wait)
                now = input_identity(info)
        except OSError as exc:
            raise InputChanged(f"{info.path}: cannot be read any more ({exc.strerror}); nothing was kept") from None
        if now != then:
            raise _changed(info, then, now, "at its end")

    def changed_input(self, error: BaseException, info: VideoInfo) -> BaseException:
        """A failure to read the input (a decode, demux or reopen error) as InputChanged when its size or
        mtime differ from the run's start: a copy or a card that failed while it was read, not damage in
        the recording, which a --resume could not get past either. Else `error` itself."""
        then = {k: v for k, v in self.fingerprint.items() if k.startswith("input")}
        if (
            not then
            or not isinstance(error, (InputError, av.FFmpegError))
            or isinstance(error, (InputChanged, BrokenImage))
        ):
            return error
        try:
            now = input_identity(info)
        except OSError as exc:
            return InputChanged(f"{info.path}: cannot be read any more ({exc.strerror}); nothing was kept")
        return error if now == then else _changed(info, then, now, "when reading it failed")

    def close_writer(self, writer: video_io.VideoWriter, info: VideoInfo, timer: StageTimer,
                     joining: Callable[[], None] | None = None) -> None:  # fmt: skip
        """After the last frame: the input checked to be as it was (`check_input`: read to its end, a
        file still being copied has grown), then the writer closed (`close_output`)."""
        self.check_input(info)
        close_output(writer, timer, joining)

    def finished(self) -> None:
        """The output is whole at its name: its input noted (a folder run's), its work folder removed."""
        if self.note:  # before the work folder's lock is let go
            provenance.note_made(self.output, self.fingerprint)
        if self.work is not None:
            self.work.remove()

    def annotate_failure(self, error: BaseException | None = None, frames_total: int = 0) -> None:
        """After an error: keep the work folder when it holds finished frames, else remove it, and
        rewrite a DoveError's text (error.args) to say what is kept and how to continue (one line, not
        a warning beside it); other errors (a bug's traceback) get the warning. `frames_total`: the
        output's frames as planned, for the room a full disk must make (room_to_make)."""
        if self.work is None or not self.work.held or not self.work.path.exists():
            return  # refused as busy: the folder is the live run's
        if not (saved := self.saved()) or isinstance(error, (InputChanged, BrokenImage)):  # (frames of a file no
            # longer there, or before an image that cannot be read: replaced, it makes the input another)
            self.work.remove()
            if isinstance(error, FileTooLarge):  # the first segment's: said as at the join, nothing kept
                room = self.room_to_make(0, frames_total, too_large=error)
                error.args = (f"{self.output}: {FileTooLarge.reason}; nothing was kept; {room}, then "
                              f"{run_again([], [], to='')}",)  # fmt: skip
            return
        kept = f"{counted(saved, 'finished frame')} {'is' if saved == 1 else 'are'} kept in {self.work.path}"
        if isinstance(error, FileTooLarge):  # the output's name, not a work segment's (the limit is the same)
            error.args = (f"{self.output}: {FileTooLarge.reason}",)
        if isinstance(error, TempFailure) and not isinstance(error, OutputBusy):  # disk full, a file-size limit
            too_large = error if isinstance(error, FileTooLarge) else None
            kept += f"; {self.room_to_make(saved, frames_total, too_large=too_large)}"
        if isinstance(error, DoveError):  # the same error, with what is kept said once, in its own line
            error.args = (f"{error}; {kept}; {self.hint(error)}",)
        else:
            log.warning("%s; %s", kept, self.hint(error))

    def room_to_make(self, saved: int, frames_total: int, *, too_large: FileTooLarge | None = None) -> str:
        """After a full disk: how much room to make. The output is about the kept segments' size per
        frame times its frames, plus the streams it copies from the input (its audio: 11% of a small
        video's output); the frames still to come take what the kept ones take on disk (their blocks:
        a small segment fills whole ones), and the join at the end writes all of the output again.
        `too_large`: a file-size limit was hit, which room does not help; the output's size is said,
        from the file it cut short where no segment was kept (FileTooLarge.written)."""
        segments = self.journal.segments if self.journal is not None else []
        kept, frames = sum(s.bytes for s in segments), saved
        if too_large is not None and not kept:
            frames, kept = too_large.written
        if not kept or not frames:  # images (written one by one), or no size known
            return FileTooLarge.advice() if too_large is not None else "make room"
        output = kept * max(frames_total, frames) / frames + self._copied_bytes(max(frames_total, frames))
        if too_large is not None:
            return FileTooLarge.advice(human_size(output))
        rest = self._allocated(segments) * max(0, frames_total - saved) / saved
        why = (
            "joining the kept segments writes the output, about as large again"
            if not rest
            else f"the rest of the frames, then joining the segments into the output, about {human_size(output)}"
        )
        return f"make about {human_size((rest + output) * 1.1)} free ({why})"  # 10%: the file system's own room

    def _allocated(self, segments: list[Segment]) -> int:
        """The bytes the segments take on disk: whole blocks (st_blocks), not their sizes."""
        total = 0
        for s in segments:
            try:
                total += (self.work.path / s.file).stat().st_blocks * 512 if self.work is not None else s.bytes
            except OSError:
                total += s.bytes
        return total

    def _copied_bytes(self, frames: int) -> float:
        """The bytes of the input's audio and subtitles an output of `frames` frames copies, where the
        input's container says their rates (side_stream_rates); 0 when the writer was never opened."""
        info = self._info
        if info is None or info.is_images or not info.fps:
            return 0.0
        rates = video_io.side_stream_rates(info.path)
        kinds = [
            k for k, option in (("audio", "audio"), ("subtitle", "subtitles")) if self.fingerprint.get(option) != "none"
        ]
        return sum(rates.get(k, 0.0) for k in kinds) * float(frames / info.fps)

    def hint(self, error: BaseException | None = None) -> str:
        """How to continue: the same command, with --resume unless it has it already (a folder run
        always has it, except with --overwrite); after a decode error also --ignore-decode-errors, or a
        resume stops at the same place."""
        resume = [] if self.resume else ["--resume"]
        if isinstance(error, DecodeError):
            return run_again([*resume, "--ignore-decode-errors"], ["ignore_decode_errors=True"])
        if isinstance(error, MuxError):  # the same command fails the same way
            if error.stream in ("audio", "subtitle"):
                leave = "audio" if error.stream == "audio" else "subtitles"
                return run_again([*resume, f"--{leave} none"], [f"{leave}='none'"], "to write it without that stream")
            return advice("running the same command again", "calling upscale() again") + (
                " fails the same way (please report it, with the input if you can)"
            )
        return run_again(resume, [])

    def interrupted(self, written: int) -> Interrupted:
        """The error to raise after Ctrl-C (or SIGTERM), `written` frames into the run."""
        if self.work is None or not self.work.held:
            return Interrupted(f"{self.output}: interrupted; nothing was kept")
        saved = self.saved()
        written = max(written, saved)  # a resumed run stopped before it reached its saved frames
        if not saved:  # before the first segment closed: nothing to resume, so no work folder left behind
            self.work.remove()
            made = (f" (the {written} frames made so far were in that segment, which closes at "
                    f"{SEGMENT_MIN_FRAMES} frames or more)") if written else ""  # fmt: skip
            return Interrupted(f"{self.output}: interrupted before the first segment was saved; nothing was kept{made}")
        unsaved = f" (the {written - saved} after them were in a segment still open, and are redone)"
        return Interrupted(
            f"{self.output}: interrupted after {counted(written, 'frame')}; {saved} are saved in closed segments in "
            f"{self.work.path}{unsaved if written > saved else ''}; {self.hint()}"
        )

    def release(self) -> None:
        """At the end of the run, however it ended. A folder claimed by check() that no run started
        (the model failed to load, the plan was refused) holds nothing: removed, not left to ask for
        --resume."""
        if self.work is not None:
            if self.work.held and not self.work.journal_path.exists():
                self.work.remove()
            self.work.release()


class PartSession:
    """A worker's view of a distributed run (dove_cli.distributed): it writes the segments of output
    frames [first, stop) into the shared work folder and reports each one, with the tile each of
    its windows ran with; the driver keeps the journal and joins. `ends` are the segment ends the
    driver's pre-pass found: a worker whose plan closes a segment anywhere else stops."""

    def __init__(
        self,
        output: Path,
        folder: Path,
        *,
        first: int,
        ends: list[int],
        tile_changes: list[tuple[int, int]],
        options: dict[str, Any],
        on_segment: Callable[[Segment, list[tuple[int, int]], LateCaptions | None], None],
        on_tile_change: Callable[[int, int], None],
    ) -> None:
        self.output, self.folder, self.first = output, folder, first
        self._writer: SegmentFiles | None = None
        self._expected = set(ends)
        self._ends = SegmentEnds(first)
        self._changes = list(tile_changes)
        self._options = options
        self._on_segment, self._on_tile_change = on_segment, on_tile_change
        self._windows: list[tuple[Span, int]] = []  # every window run, with its tile

    def start(self, chunk: int, tile: int) -> int:
        return self.first

    @property
    def tile_changes(self) -> list[tuple[int, int]]:
        return list(self._changes)

    def record_tile_change(self, start: int, tile: int) -> None:
        self._on_tile_change(start, tile)

    def open_writer(self, info: VideoInfo, width: int, height: int, *, writer_options: dict[str, Any],
                    join_options: dict[str, Any]) -> video_io.VideoWriter:  # fmt: skip
        self._writer = SegmentFiles(self.folder, info, width, height, first=self.first, options=self._options,
                                    on_closed=self._closed)  # fmt: skip
        return self._writer

    def segment_end(self, final: int) -> int | None:
        end = self._ends(final)
        if end is not None and end not in self._expected:
            raise RuntimeError(f"{self.output}: this worker's window plan closes a segment at frame {end}, where the "
                               "driver's did not (a different dove version or decoder on this worker?)")  # fmt: skip
        return end

    def window_done(self, span: Span, tile: int) -> None:
        self._windows.append((span, tile))

    def close_writer(self, writer: video_io.VideoWriter, info: VideoInfo, timer: StageTimer,
                     joining: Callable[[], None] | None = None) -> None:  # fmt: skip
        """After the part's last frame: its last segment closed (`close_output`; the driver joins)."""
        close_output(writer, timer, joining)

    def _closed(self, segment: Segment) -> None:
        """(writer thread) A segment is whole on disk: report it with its windows' tiles, and the
        closed captions the segments did not keep so far (the driver says them as it joins: join_run)."""
        stop = segment.first + segment.frames
        tiles = [(w.start, tile) for w, tile in list(self._windows) if w.start < stop and w.stop > segment.first]
        writer = self._writer
        late = None if writer is None or writer.late_captions is None else (writer.late_captions, writer.captions_lost)
        self._on_segment(segment, tiles, late)


# ---------------------------------------------------------------------------------------- joining


def segment_suffix(codec: str) -> str:
    """Container for closed video segments of `codec`, one that keeps every timestamp exactly:
    MOV for codecs with B-frames (it stores each packet's dts) and ProRes, NUT for the others.
    Timestamps in either are re-anchored by `join_segments`."""
    name, _ = resolve_codec(codec)
    return ".mov" if name in ("h264", "hevc", "prores") else ".nut"


def join_segments(
    path: str | Path,
    info: VideoInfo,
    segments: list[tuple[Path, int]],
    *,
    codec: str | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
    audio: str = "copy",
    subtitles: str = "copy",
    overwrite: bool = False,
    start: float | Fraction | None = None,
    end: float | Fraction | None = None,
    warn: bool = True,
) -> None:
    """Write `path` from closed video segments by copying their packets (no re-encode).

    segments: (file, pts of its first frame in info.time_base), in order; each file holds one video
    stream written by `open_writer` with the same settings, of which codec, preset and pix_fmt (None:
    the segment decoder's format) are given here. Audio, subtitles, chapters, metadata,
    colour tags, rotation and the start/end span are handled as `open_writer` does. Written to a
    temporary file and renamed onto `path` at the end.
    """
    if not segments:
        raise OutputError(f"{path}: no video segments to join")
    joiner = _SegmentJoiner(
        Path(path),
        info,
        segments[0][0],
        codec=codec,
        preset=preset,
        pix_fmt=pix_fmt,
        audio=audio,
        subtitles=subtitles,
        overwrite=overwrite,
        start=start,
        end=end,
        warn=warn,
    )
    try:
        for file, first_pts in segments:
            joiner.copy_segment(file, first_pts)
    except BaseException:
        joiner.abort()
        raise
    joiner.close()


class _SegmentJoiner(ContainerWriter):
    """A container writer whose video packets come from segment files instead of an encoder."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        template: Path,
        *,
        codec: str | None,
        preset: str | None,
        pix_fmt: str | None,
        audio: str,
        subtitles: str,
        overwrite: bool,
        start: float | Fraction | None,
        end: float | Fraction | None,
        warn: bool,
    ) -> None:
        try:
            self._template_src = av.open(ffmpeg_name(template))
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{template}: cannot read video segment ({ffmsg(exc)})") from None
        self._template = self._template_src.streams.video[0]
        cc = self._template.codec_context
        self._last_dts: int | None = None
        self._seen_dts = False  # within the segment being copied
        self._delay: int | None = None  # the encoder's delay (pts - dts of a first packet), of the first segment
        try:
            super().__init__(
                path,
                info,
                cc.width,
                cc.height,
                codec=codec,
                crf=None,
                preset=preset,  # a ProRes profile, which decides the pixel formats it may have
                # as encoded: a ProRes 4444 decoder reports 12 bits for prores_ks's 10
                pix_fmt=pix_fmt or (cc.format.name if cc.format else None),
                codec_options=None,
                audio=audio,
                subtitles=subtitles,
                overwrite=overwrite,
                start=start,
                end=end,
                warn=warn,
            )
        finally:
            self._template_src.close()

    def _setup_video(self, spec: CodecSpec, pf: str, opts: dict[str, str], width: int, height: int) -> None:
        info = self.info
        vs = self._out.add_stream_from_template(self._template, opaque=True)
        self._video_clock()  # as the segments were written
        vs.time_base = self._tb
        cc = vs.codec_context
        if spec.encoder == "prores_ks":  # PyAV drops the FourCC, which names the ProRes profile (apch: HQ)
            cc.codec_tag = self._template.codec_context.codec_tag
        cc.framerate = self._fps
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        self._setup_color(cc, pf, width, height, spec.encoder)
        self._tag_video(cc)
        self._orient(vs)
        self._vs = vs
        self._w, self._h = width, height
        self._last_pts = self._last_placed = None
        self._durations = OwnDurations()  # a segment's durations are its dts steps (MOV), not its frames'

    def _flush_video(self) -> None:
        step = max(1, round(1 / (self._fps * self._tb)))
        last = frame_ticks(self.info, step, self._tb)
        if self._last_pts is not None:  # (the last frame shown: the largest pts)
            last = last_ticks(self.info, self._last_pts * self._tb, last, self._tb)
        self._mux(self._durations.flush(last))

    def copy_segment(self, file: Path, first_pts: int) -> None:
        """Mux one segment's video packets, shifted so that its first frame lands on `first_pts`.

        Streams packet by packet (a segment may be a whole video). A segment's muxer may have
        moved its timestamps (to avoid negative dts): the first packet, a keyframe shown first,
        re-anchors them. NUT stores no dts for the first few packets (the encoder delay); they get
        one frame step each before the first known dts, as the encoder gave them at a constant rate.
        """
        tb = self._tb  # the output video's, in which the segments place their frames (`_place`)
        step = max(1, round(1 / (self.info.fps * tb))) if self.info.fps else 1
        offset: int | None = None
        lead: list[tuple[av.Packet, int]] = []  # packets before the first known dts
        lag: int | None = None  # how much earlier this segment's dts go than its encoder gave them

        def place(q: av.Packet, q_pts: int, q_dts: int) -> None:
            """An encoder delays dts less in a segment of 1 or 2 frames (none to reorder): such a
            segment's dts move back by the difference, or the decode timeline jumps there and MP4's
            sample durations (which come from dts) give one frame 3 frames' time."""
            nonlocal lag
            if lag is None:
                self._delay = q_pts - q_dts if self._delay is None else self._delay
                lag = max(0, self._delay - (q_pts - q_dts))
            self._copy_packet(q, q_pts, q_dts - lag)

        def rebase(t: int, ptb: Fraction) -> int:
            return round(Fraction(t) * ptb / tb)

        if self.frames_written == 0:
            self._stamp_timecode(first_pts)
        try:
            with av.open(ffmpeg_name(file)) as src:
                for p in src.demux(src.streams.video[0]):
                    if not p.size:
                        continue
                    if p.pts is None:
                        raise OutputError(f"{file}: video segment has packets without timestamps")
                    ptb = Fraction(p.time_base)
                    pts = rebase(p.pts, ptb)
                    if offset is None:
                        offset = self._place(first_pts) - pts
                    if p.dts is None and not self._seen_dts:
                        lead.append((p, pts + offset))
                        continue
                    dts = rebase(p.dts, ptb) + offset if p.dts is not None else pts + offset
                    for k, (q, q_pts) in enumerate(lead):
                        place(q, q_pts, dts - (len(lead) - k) * step)
                    lead.clear()
                    self._seen_dts = True
                    place(p, pts + offset, dts)
                for q, q_pts in lead:  # a segment of a few frames: no dts anywhere
                    place(q, q_pts, q_pts)
                self._seen_dts = False
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{file}: cannot read video segment ({ffmsg(exc)})") from None
        if offset is None:
            raise OutputError(f"{file}: video segment holds no frames")

    def _copy_packet(self, p: av.Packet, pts: int, dts: int) -> None:
        """Mux one video packet at input-timeline pts/dts (ticks of the output video's time base `_tb`),
        dts kept increasing."""
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1
        dts = min(dts, pts)
        p.pts, p.dts, p.time_base = pts - self._shift, dts - self._shift, self._tb
        self._last_dts = dts
        self._last_pts = pts if self._last_pts is None else max(self._last_pts, pts)
        p.stream = self._vs
        self._mux(self._durations.push(p))
        self.frames_written += 1
        self._pump_aux(float(pts * self._tb))
