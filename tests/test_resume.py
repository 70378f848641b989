"""--resume: a run killed part way (hard, or by Ctrl-C) continues from its closed segments and ends
byte-for-byte like an uninterrupted run. Results are checked with the ffmpeg binary (framemd5 of
every decoded frame, md5 of the audio packets)."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch

from dove_cli import video_io
from dove_cli.engine import BilinearModel
from dove_cli.errors import OutputBusy, OutputError
from dove_cli.options import AUTO, UpscaleOptions
from dove_cli.resume import (
    SEGMENT_MIN_FRAMES,
    Journal,
    Segment,
    Session,
    Work,
    discard_work,
    join_segments,
    work_folder,
)
from dove_cli.upscaling import upscale
from media import (
    DIE_AFTER,
    ffinfo,
    ffmpeg,
    frame_pts,
    make_broadcast,
    make_clip,
    make_telecined,
    make_ts,
    movie_edits,
    packet_md5,
    top_boxes,
)
from test_scenes import two_shot_clip

OPTS = dict(model="bilinear", scale=2, chunk=9, chunk_overlap=2, tile=0, device="cpu")
ARGS = ["--model", "bilinear", "--scale", "2", "--chunk", "9", "--chunk-overlap", "2", "--tile", "0", "--device", "cpu"]


def framemd5(path: Path) -> list[str]:
    """One line per decoded frame: stream, dts, pts, duration, size, md5 (ffmpeg's own decoder)."""
    out = ffmpeg("-i", path, "-map", "0:v:0", "-f", "framemd5", "-").stdout
    return [line for line in out.splitlines() if line and not line.startswith("#")]


def dove(*args: str, env: dict[str, str] | None = None, die_after: int = 0, **kw) -> subprocess.Popen:
    """`dove upscale ARGS` in a process of its own; die_after: killed like a power loss after that many frames."""
    command = [str(DIE_AFTER), str(die_after)] if die_after else ["-m", "dove_cli.cli"]
    return subprocess.Popen([sys.executable, *command, "upscale", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """120 frames at 25 fps with AAC audio and a cut at frame 50."""
    return two_shot_clip(tmp_path_factory.mktemp("resume") / "in.mp4", 50, 70, audio=True)


@pytest.fixture(scope="module")
def reference(clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "full.mp4"
    return out, upscale(clip, out, UpscaleOptions(**OPTS))


def test_killed_run_resumes_to_an_identical_output(clip, reference, tmp_path):
    ref, full = reference
    out = tmp_path / "out.mp4"
    proc = dove(str(clip), "-o", str(out), *ARGS, "--quiet", die_after=90)
    proc.communicate(timeout=120)
    assert proc.returncode == 1  # died like a power loss, after 90 frames
    work = work_folder(out)
    assert not out.exists() and work.is_dir()
    segments = sorted(work.glob("seg_*.mov"))  # only the join reads them: written once, index last
    assert segments and all(top_boxes(seg).index("moov") > top_boxes(seg).index("mdat") for seg in segments)
    # in the Python API's words (the command line says them in flags: test_ctrl_c_stops_cleanly_and_says_how_to_resume)
    with pytest.raises(OutputError, match=r"call upscale\(\) with resume=True to continue it, or with overwrite=True"):
        upscale(clip, out, UpscaleOptions(**OPTS))
    with pytest.raises(
        OutputError, match="cannot resume: the saved run had blend='cosine', this call has blend='hard'"
    ):
        upscale(clip, out, UpscaleOptions(**OPTS, blend="hard", resume=True))
    with pytest.raises(OutputError, match="cannot resume: the saved run had tile=.*, this call has tile='auto';"):
        upscale(clip, out, UpscaleOptions(**{**OPTS, "tile": AUTO}, resume=True))  # never 'tile=-1'
    with pytest.raises(OutputError, match="the saved run had crf=None, this call has crf=30;"):
        upscale(clip, out, UpscaleOptions(**OPTS, crf=30, resume=True))
    journal = work / "journal.jsonl"
    saved = journal.read_text()
    head, rest = saved.split("\n", 1)
    journal.write_text(json.dumps({**json.loads(head), "version": 1}) + "\n" + rest)  # sliced x264 segments
    with pytest.raises(OutputError, match="written by another dove version; use overwrite=True"):
        upscale(clip, out, UpscaleOptions(**OPTS, resume=True))
    # A run saved by a dove without --untagged-matrix: read as its default, auto, which it then was.
    older = {k: v for k, v in json.loads(head)["fingerprint"].items() if k != "untagged_matrix"}
    journal.write_text(json.dumps({**json.loads(head), "fingerprint": older}) + "\n" + rest)
    with pytest.raises(OutputError, match="the saved run had untagged_matrix='auto', this call has "):
        upscale(clip, out, UpscaleOptions(**OPTS, untagged_matrix="bt601", resume=True))
    r = upscale(clip, out, UpscaleOptions(**OPTS, resume=True))
    assert SEGMENT_MIN_FRAMES <= r.resumed_from <= 90
    # Only windows reaching past the saved frames ran again: at most one of them was finished.
    assert r.windows_skipped + r.windows_run == full.windows_run and r.windows_skipped > 0
    assert r.frames == 120 and r.cuts == full.cuts == [50]
    assert not work.exists()
    assert framemd5(out) == framemd5(ref)
    assert packet_md5(out, "0:a:0") == packet_md5(ref, "0:a:0")
    assert out.read_bytes() == ref.read_bytes()  # even the container: MP4 has nothing run-specific
    boxes = top_boxes(out)  # the join's file, as web players read it: the index (moov) first
    assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat"), boxes


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; timeout, SLURM, docker stop
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(clip, tmp_path, sig):
    out = tmp_path / "out.mkv"
    slow = [*ARGS[:2], "--scale", "8", *ARGS[4:], "--codec", "ffv1"]  # slow enough to interrupt part way
    proc = dove(str(clip), "-o", str(out), *slow)
    journal = work_folder(out) / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and '"file"' in journal.read_text():  # a first segment is saved
            break
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err  # 128 + the signal, as shells say
    assert "Traceback" not in err
    assert "run the same command with --resume" in err
    said = re.search(r"interrupted after (\d+) frames; (\d+) are saved in closed segments", err)
    assert said and int(said[1]) >= int(said[2]), err  # frames made, of which saved: the bar and the message agree
    assert not out.exists() and journal.exists()
    r = upscale(clip, out, UpscaleOptions(**{**OPTS, "scale": 8}, codec="ffv1", resume=True))
    assert r.resumed_from == int(said[2]) >= SEGMENT_MIN_FRAMES and len(framemd5(out)) == 120


class _FailAfter(BilinearModel):
    """Bilinear, but fails (like a crash) on its n-th window."""

    def __init__(self, n: int) -> None:
        super().__init__("cpu")
        self.n = n

    def restore(self, video, generator=None, timer=None):
        self.n -= 1
        if self.n < 0:
            raise RuntimeError("simulated crash")
        return super().restore(video)


def test_image_sequence_resumes_and_overwrite_starts_over(clip, tmp_path):
    opts = UpscaleOptions(**OPTS, preview="0+1.2s")  # 30 frames: 4 windows
    for name in ("ref", "out", "again"):
        (tmp_path / name).mkdir()
    assert upscale(clip, tmp_path / "ref" / "%06d.png", opts).frames == 30
    out = tmp_path / "out" / "%06d.png"
    with pytest.raises(RuntimeError):
        upscale(clip, out, opts, restorer=_FailAfter(2))
    work = work_folder(out)
    saved = sorted(p.name for p in (work / "images").iterdir())
    assert saved and not list(out.parent.glob("*.png"))  # nothing at the output path yet
    r = upscale(clip, out, opts, resume=True)
    assert r.resumed_from == len(saved) and not work.exists()
    for ref in sorted((tmp_path / "ref").glob("*.png")):
        assert (out.parent / ref.name).read_bytes() == ref.read_bytes(), ref.name
    # --overwrite replaces an unfinished run instead of continuing it.
    again = tmp_path / "again" / "%06d.png"
    with pytest.raises(RuntimeError):
        upscale(clip, again, opts, restorer=_FailAfter(2))
    r = upscale(clip, again, opts, overwrite=True)
    assert r.resumed_from == 0 and len(list(again.parent.glob("*.png"))) == 30
    assert not work_folder(again).exists()


def test_start_number_names_the_images_and_a_resume_keeps_it(clip, tmp_path):
    """--start-number 86400 numbers the images 086400.. (ffmpeg's image2 -start_number); an interrupted
    run resumes from its saved images to the same files a run numbered from 1 writes, renamed; a resume
    with another start is refused (its saved images have other names)."""
    opts = UpscaleOptions(**OPTS, preview="0+1.2s")  # 30 frames
    assert upscale(clip, tmp_path / "ref" / "%06d.png", opts).frames == 30
    out = tmp_path / "out" / "%06d.png"
    with pytest.raises(RuntimeError):
        upscale(clip, out, opts, start_number=86400, restorer=_FailAfter(2))
    saved = sorted(p.name for p in (work_folder(out) / "images").iterdir())
    assert saved and saved[0] == "086400.png"
    with pytest.raises(OutputError, match="start.number"):
        upscale(clip, out, opts, resume=True)
    r = upscale(clip, out, opts, start_number=86400, resume=True)
    assert r.resumed_from == len(saved) and not work_folder(out).exists()
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == [f"{n:06d}.png" for n in range(86400, 86430)]
    for n in range(30):
        got, ref = out.parent / f"{86400 + n:06d}.png", tmp_path / "ref" / f"{1 + n:06d}.png"
        assert got.read_bytes() == ref.read_bytes(), got.name


def test_resume_with_overwrite_continues_if_it_can_and_starts_over_if_not(clip, tmp_path, caplog):
    """`--resume --overwrite` (a script that always passes both): the saved work when it fits the
    command; a fresh start, said in one line, when it does not (the error's advice was the option
    the user had already given)."""
    opts = UpscaleOptions(**OPTS, preview="0+2.4s")  # 60 frames
    out = tmp_path / "out.mkv"
    with pytest.raises(RuntimeError):
        upscale(clip, out, opts, restorer=_FailAfter(5))
    assert upscale(clip, out, opts, resume=True, overwrite=True).resumed_from > 0
    with pytest.raises(RuntimeError):  # an unfinished run beside a finished output
        upscale(clip, out, opts, restorer=_FailAfter(5), overwrite=True)
    with caplog.at_level(logging.WARNING):
        r = upscale(clip, out, opts, blend="hard", resume=True, overwrite=True)
    assert "cannot resume: the saved run had blend='cosine', this call has blend='hard'; starting over" in caplog.text
    assert r.resumed_from == 0 and r.frames == 60 and not work_folder(out).exists()


class _ShrinksThenCrashes(BilinearModel):
    """Bilinear; from its 4th window on, whole frames are 'out of memory' (a later scene needs more);
    optionally crashes (like a power loss) after `crash_after` windows. Records each window's shape."""

    def __init__(self, oom: bool = True, crash_after: int | None = None) -> None:
        super().__init__("cpu")
        self.oom, self.crash_after, self.shapes = oom, crash_after, []

    def restore(self, video, generator=None, timer=None):
        whole = self.shapes[0][-2:] if self.shapes else tuple(video.shape[-2:])
        if self.oom and len(self.shapes) >= 3 and tuple(video.shape[-2:]) == whole:
            raise torch.OutOfMemoryError("simulated")
        if self.crash_after is not None and len(self.shapes) >= self.crash_after:
            raise RuntimeError("simulated crash")
        self.shapes.append(tuple(video.shape))
        return super().restore(video)


def test_resume_tiles_each_window_as_the_interrupted_run_did(clip, tmp_path):
    """A tile shrunk after an out-of-memory error is in the journal: the resumed run does not start
    again from the planned tile (which would change the pixels of a real model). (The first 60
    frames, the cut at 50 among them: 3 windows of whole frames, then 20 tiles.)"""
    ref_out = tmp_path / "ref.mkv"
    ref_model = _ShrinksThenCrashes()
    opts = UpscaleOptions(**OPTS, codec="ffv1", preview="0+2.4s")
    full = upscale(clip, ref_out, opts, restorer=ref_model)
    assert full.retries == 1 and 0 < full.tile_used < 128
    out = tmp_path / "out.mkv"
    with pytest.raises(RuntimeError, match="simulated crash"):
        upscale(clip, out, opts, restorer=_ShrinksThenCrashes(crash_after=len(ref_model.shapes) - 12))
    again = _ShrinksThenCrashes(oom=False)  # e.g. resumed on a bigger GPU: it must still tile as before
    r = upscale(clip, out, replace(opts, resume=True), restorer=again)
    assert r.resumed_from > 0 and r.windows_skipped > 0
    assert again.shapes == ref_model.shapes[len(ref_model.shapes) - len(again.shapes) :]
    assert framemd5(out) == framemd5(ref_out)


@pytest.mark.parametrize("name", ["50%_speed.mp4", "clip 100%.mp4", "100%done.mkv"])
def test_percent_in_a_video_name(name, clip, tmp_path):
    """A video output is never an image pattern, whatever % its name holds."""
    out = tmp_path / name
    r = upscale(clip, out, UpscaleOptions(**OPTS, preview="0+1s"))
    assert r.frames == 25 and len(framemd5(out)) == 25
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_resume_of_a_finished_output_does_nothing_and_says_so(clip, tmp_path):
    """A run again with resume=True of one that finished (a cron job's fixed command line): nothing is
    made and nothing touched (it was an OutputError, "nothing to resume"); the result says so."""
    out = tmp_path / "out.mp4"
    upscale(clip, out, UpscaleOptions(**OPTS, preview="0+1s"))
    before = out.read_bytes()
    r = upscale(clip, out, UpscaleOptions(**OPTS, preview="0+1s", resume=True))
    assert (r.frames, r.finished_before, r.resumed_from) == (0, True, 0) and r.summary() == (
        f"{out}: finished already, and no run into it was interrupted: nothing to do (overwrite=True redoes it)")  # fmt: skip
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_bad_pattern_fails_before_any_work(clip, tmp_path):
    out = tmp_path / "frames" / "%04d_%04d.png"
    with pytest.raises(OutputError, match=r"an image pattern takes exactly one %d field") as err:
        upscale(clip, out, UpscaleOptions(**OPTS))
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_webm_gets_a_codec_it_can_hold(clip, tmp_path):
    """No codec chosen: the segments and the joined WebM are VP9 (audio re-encoded to Opus)."""
    out = tmp_path / "out.webm"
    r = upscale(clip, out, UpscaleOptions(**OPTS, codec=None, audio="transcode", preview="0+2s"))
    assert r.frames == 50 and len(framemd5(out)) == 50
    assert [(s.kind, s.codec) for s in ffinfo(out).streams] == [("Video", "vp9"), ("Audio", "opus")]


# ProRes profile -> what `ffmpeg -i` names it, its FourCC, and the pixel format decoders give (12-bit for 4444).
PRORES = {"proxy": ("Proxy", "apco", "yuv422p10le"), "lt": ("LT", "apcs", "yuv422p10le"),
          "standard": ("Standard", "apcn", "yuv422p10le"), "hq": ("HQ", "apch", "yuv422p10le"),
          "4444": ("4444", "ap4h", "yuv444p12le"), "4444xq": ("XQ", "ap4x", "yuv444p12le")}  # fmt: skip


def test_prores_profiles_keep_their_fourcc_and_chroma_through_the_join(tmp_path):
    """Editing software reads a ProRes file's profile from its FourCC: the join (a packet copy from
    the segments) kept the bitrate of each --preset but tagged them all apch (HQ), and 4444 was
    encoded as 4:2:2, which the join then refused after the run, leaving the work folder behind."""
    src = make_clip(tmp_path / "in.mp4", size="64x36", rate="25", frames=3)
    for profile, (name, tag, pix_fmt) in PRORES.items():
        out = tmp_path / f"{profile}.mov"
        upscale(src, out, model="bilinear", scale=1, device="cpu", codec="prores", preset=profile)
        assert f"Video: prores ({name}) ({tag} / " in ffinfo(out).video().text
        with av.open(str(out)) as c:
            cc = c.streams.video[0].codec_context
            assert (cc.codec_tag, cc.format.name, c.streams.video[0].frames) == (tag, pix_fmt, 3), profile
        assert not work_folder(out).exists()
    mkv = tmp_path / "lt.mkv"  # Matroska keeps the FourCC too
    upscale(src, mkv, model="bilinear", scale=1, device="cpu", codec="prores", preset="lt")
    assert "Video: prores (LT) (apcs / " in ffinfo(mkv).video().text
    default = tmp_path / "default.mov"  # hq when no --preset is given
    upscale(src, default, model="bilinear", scale=1, device="cpu", codec="prores")
    assert "Video: prores (HQ) (apch / " in ffinfo(default).video().text


HOLD_LOCK = """import sys; from pathlib import Path; from dove_cli.resume import Journal, Work
work = Work(Path(sys.argv[1])); work.start(Journal({}, chunk=9, tile=0), resumed=False)
print("locked", flush=True); sys.stdin.read()"""  # holds the output's lock until killed


def test_a_work_folder_removed_under_its_lock_is_locked_again(tmp_path):
    """The folder (with its lock file) can go while this run holds its lock (the run before it ended and
    removed it): taking it again locks the new lock file, or a second run would not be refused."""
    from dove_cli.resume import busy

    out = tmp_path / "out.mp4"
    work = Work(out)
    work.start(Journal({}, chunk=9, tile=0), resumed=False)
    shutil.rmtree(work.path)
    work.start(Journal({}, chunk=9, tile=0), resumed=False)
    assert busy(out) == f"another dove run is writing {out} (pid {os.getpid()})"
    work.remove()


def test_one_run_at_a_time_per_output(clip, tmp_path):
    """A second run on an output that a live run is writing is refused; the lock dies with its process."""
    out = tmp_path / "out.mp4"
    first, second = Work(out), Work(out)  # flock: two opens conflict even in one process
    first.start(Journal({}, chunk=9, tile=0), resumed=False)
    message = f"another dove run is writing {out} (pid {os.getpid()})"
    with pytest.raises(OutputError, match=re.escape(message) + "$"):
        second.check({}, resume=True, overwrite=False)
    first.release()
    assert second.check({}, resume=True, overwrite=True) is not None
    second.remove()
    # Another process holds it: refused with or without --resume (not "an unfinished run"), before
    # any work; once that process is killed, the OS has dropped its lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        for resume in (True, False):
            message = f"another dove run is writing {out} (pid {holder.pid})"
            with pytest.raises(OutputError, match=re.escape(message)):
                upscale(clip, out, UpscaleOptions(**OPTS, resume=resume))
    finally:
        holder.kill()
        holder.communicate(timeout=60)
    r = upscale(clip, out, UpscaleOptions(**OPTS, preview="0+1s", overwrite=True))
    assert r.frames == 25 and len(framemd5(out)) == 25 and not work_folder(out).exists()


def test_a_live_run_on_an_existing_output_is_said_before_that_it_exists(clip, tmp_path, caplog):
    """The output is there from an earlier run and an --overwrite run is writing it again: --resume
    said "already exists (use --overwrite ...)", and --overwrite was then refused as busy; a dry run
    did not mention the live run at all."""
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier run's output")
    live = Work(out)  # flock: two opens conflict even in one process
    live.start(Journal({}, chunk=9, tile=0), resumed=False)
    try:
        for resume in (True, False):
            with pytest.raises(OutputBusy, match=re.escape(f"another dove run is writing {out} (pid {os.getpid()})")):
                upscale(clip, out, UpscaleOptions(**OPTS, resume=resume))
        with caplog.at_level(logging.WARNING):
            upscale(clip, out, UpscaleOptions(**OPTS), dry_run=True)
        assert f"another dove run is writing {out}" in caplog.text and "refused until it ends" in caplog.text
    finally:
        live.remove()
    assert out.read_bytes() == b"an earlier run's output"


def test_a_second_run_started_while_the_first_loads_its_model_is_refused_at_once(clip, tmp_path):
    """The lock is taken before the model loads (minutes with the real weights): a second run on the
    same output is refused then, not after its own load, and the first run goes on to the end."""
    out = tmp_path / "out.mkv"
    opts = UpscaleOptions(**OPTS, preview="0+1s")
    refused: list[str] = []

    def second_run(p):
        if p.status == "loading model" and not refused:
            with pytest.raises(OutputBusy) as busy:
                upscale(clip, out, opts)
            refused.append(str(busy.value))

    assert upscale(clip, out, opts, progress=second_run).frames == 25
    assert refused == [f"another dove run is writing {out} (pid {os.getpid()})"]
    assert not work_folder(out).exists()

    def cancel(p):
        if p.status == "planning":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # stopped before its first window: the claimed folder goes too
        upscale(clip, out, opts, overwrite=True, progress=cancel)
    assert not work_folder(out).exists()


def test_a_work_folder_with_no_finished_frames_does_not_ask_for_resume(clip, tmp_path):
    """A run killed (SIGKILL, a power cut) while loading its model, or before its first segment
    closed, leaves a work folder with nothing in it worth keeping: the next run starts afresh."""
    out = tmp_path / "out.mkv"
    opts = UpscaleOptions(**OPTS, preview="0+1s")
    work_folder(out).mkdir()
    (work_folder(out) / "lock").write_text("12345\n")  # killed while loading the model
    assert upscale(clip, out, opts).frames == 25
    killed = Work(out)
    killed.start(Journal({}, chunk=9, tile=0), resumed=False)  # killed before its first segment closed
    killed.release()
    out.unlink()
    assert upscale(clip, out, opts).frames == 25 and not work_folder(out).exists()


def test_a_run_refused_as_busy_leaves_the_live_runs_work_alone(tmp_path):
    """A run that lost the race for the lock (both looked before either made the folder) fails with
    OutputBusy; its clean-up must neither delete nor claim the live run's saved frames."""
    out = tmp_path / "%04d.png"
    live, late = Session(out, {}, resume=False, overwrite=False), Session(out, {}, resume=False, overwrite=False)
    live.start(chunk=9, tile=0)
    for n in (1, 2):  # two frames the live run has saved
        (live.work.images / f"{n:04d}.png").parent.mkdir(exist_ok=True)
        (live.work.images / f"{n:04d}.png").write_bytes(b"png")
    with pytest.raises(OutputBusy) as busy:
        late.start(chunk=9, tile=0)
    late.annotate_failure(busy.value)
    message = f"another dove run is writing {out} (pid {os.getpid()})"
    assert str(busy.value) == message  # not "2 finished frames are kept" (they are not this run's)
    assert str(late.interrupted(0)) == f"{out}: interrupted; nothing was kept"
    late.release()
    assert live.saved() == 2 and live.work.journal_path.is_file()
    live.finished()


def test_a_partial_output_left_by_a_killed_join_is_removed_by_the_next_run(clip, tmp_path, caplog):
    """A kill while joining leaves `.out.dove-XXXXXXXX.part.mp4`; the next run, holding the output's
    lock (so no live run is writing it), removes it. Other hidden files are left alone."""
    out = tmp_path / "out.mp4"
    stale, other = tmp_path / ".out.dove-906ab3fa.part.mp4", tmp_path / ".out.dove-notmine.part.mp4"
    for p in (stale, other, tmp_path / ".other.dove-906ab3fa.part.mp4"):
        p.write_bytes(b"partial")
    with caplog.at_level(logging.INFO):
        upscale(clip, out, UpscaleOptions(**OPTS, preview="0+0.5s"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.dove-906ab3fa.part.mp4", ".out.dove-notmine.part.mp4",
                                                          "out.mp4"]  # fmt: skip
    assert f"{out}: removing {stale.name}, left by a run that was killed while writing it" in caplog.messages


def test_an_output_on_a_file_system_without_locks_runs_with_a_warning(tmp_path, monkeypatch, caplog):
    """flock fails with ENOLCK on some network mounts: that is not "another run", so the run goes on."""
    import errno
    import fcntl

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "out.mp4"
    work = Work(out)
    with caplog.at_level("WARNING", logger="dove_cli.locks"):
        work.start(Journal({}, chunk=9, tile=0), resumed=False)
    assert "cannot be locked (No locks available); do not start a second run on this output" in caplog.text
    work.remove()


def test_plain_progress_of_a_resumed_run_keeps_the_stage_lines_in_order():
    """--resume starts counting at the saved frames: that count came before the "upscaling" line."""
    import io

    from rich.console import Console

    from dove_cli.console import UpscaleBar
    from dove_cli.reports import Progress

    log = io.StringIO()
    bar = UpscaleBar(False, "in.mp4", console=Console(file=log, width=200))
    for status in ("loading model", "planning"):
        bar(Progress(0, 100, "", 0.1, status))
    for done, status in ((50, "upscaling"), (60, "upscaling"), (100, "joining segments")):  # 60: not due (10 s)
        bar(Progress(done, 100, "", 1.0, status))
    lines = [ln.split(": ", 1)[1].split(" (")[0] for ln in log.getvalue().splitlines()]
    assert lines == ["loading model", "planning", "upscaling", "50/100 frames",
                     "100/100 frames", "joining segments"]  # fmt: skip


def test_frames_before_the_next_window_are_written_as_soon_as_the_window_before_it_is_done(tmp_path):
    """A shot's last windows are planned together, at its end: the frames before the second one are
    still written (saved for --resume, counted by the progress) once the first is blended, not after
    both. Here 50 frames: windows 0-32 and 25-49, planned when the input ends."""
    from media import make_clip

    seen = []
    upscale(make_clip(tmp_path / "in.mkv", frames=50), tmp_path / "o.mkv", model="tiny", scale=1, chunk=33, tile=0, codec="ffv1",
            progress=seen.append)  # fmt: skip
    assert [(p.window, p.frames_done) for p in seen if p.window] == [("frames 0-32", 0), ("frames 25-49", 25)]


def test_a_decode_error_says_how_to_resume_past_it(tmp_path, caplog):
    """A truncated input stops the run with its finished frames kept: the hint to continue names the
    flag that gets past the damage (a plain --resume would stop at the same place again)."""
    from dove_cli.errors import DecodeError
    from media import make_clip

    long = make_clip(tmp_path / "long.mkv", frames=120, extra=("-g", "120"))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(long.read_bytes()[: long.stat().st_size * 2 // 3])
    out = tmp_path / "x.mkv"
    with pytest.raises(DecodeError, match="use --ignore-decode-errors") as err:
        upscale(cut, out, model="bilinear", scale=1, codec="ffv1")
    # what is kept and how to continue: in the error's one line, not in a warning beside it
    assert re.search(r"; \d+ finished frames are kept in .*x\.mkv\.dove-work; call upscale\(\) again with "
                     r"resume=True, ignore_decode_errors=True to continue$", str(err.value))  # fmt: skip
    assert "finished frames" not in caplog.text
    manifest = tmp_path / "run.json"
    done = upscale(cut, out, model="bilinear", scale=1, codec="ffv1", resume=True, ignore_decode_errors=True,
                   manifest=manifest)  # fmt: skip
    assert done.resumed_from >= SEGMENT_MIN_FRAMES and done.dropped_frames > 0 and out.exists()
    doc = json.loads(manifest.read_text())  # the frames lost, and the warning that said so
    assert (doc["status"], doc["error"], doc["result"]["dropped_frames"]) == ("done", None, done.dropped_frames)
    assert doc["result"]["frames"] == done.frames and any("file ends early" in w for w in doc["warnings"])


def test_an_interrupt_before_anything_is_saved_leaves_nothing_behind(clip, tmp_path):
    """Ctrl-C before the first segment closes: no `--resume` advice for 0 saved frames, and no work
    folder. A frame count only when frames were made (during the first window it said "after 0 frames";
    one window later, a count of frames said next to "nothing was kept" needs the reason)."""
    from dove_cli.errors import Interrupted

    class _CtrlC(_FailAfter):
        def restore(self, video, generator=None, timer=None):
            if self.n == 0:
                raise KeyboardInterrupt
            return super().restore(video)

    out = tmp_path / "out.mp4"
    with pytest.raises(Interrupted) as err:
        upscale(clip, out, UpscaleOptions(**OPTS), restorer=_CtrlC(0))
    assert str(err.value) == f"{out}: interrupted before the first segment was saved; nothing was kept"
    assert not out.exists() and not work_folder(out).exists()
    with pytest.raises(Interrupted) as err:  # chunk 9 (bilinear: no overlap): the first window finishes 0-8
        upscale(clip, out, UpscaleOptions(**OPTS), restorer=_CtrlC(1))
    assert str(err.value) == (f"{out}: interrupted before the first segment was saved; nothing was kept (the 9 "
                              f"frames made so far were in that segment, which closes at {SEGMENT_MIN_FRAMES} "
                              "frames or more)")  # fmt: skip
    assert not out.exists() and not work_folder(out).exists()


def test_ctrl_c_stops_a_script_that_skips_the_files_that_fail(clip, tmp_path):
    """A script skips bad files with `except DoveError` (the README's error type): Ctrl-C in the
    second file still stops the script (Interrupted is a KeyboardInterrupt, not a DoveError) instead
    of going on with the third."""
    from dove_cli import DoveError
    from dove_cli.errors import Interrupted

    class _CtrlC(_FailAfter):
        def restore(self, video, generator=None, timer=None):
            raise KeyboardInterrupt

    started, skipped = [], []
    with pytest.raises(KeyboardInterrupt) as err:
        for name in ("missing.mp4", "second.mp4", "third.mp4"):
            started.append(name)
            try:
                upscale(tmp_path / name if name == "missing.mp4" else clip, tmp_path / "out" / name,
                        UpscaleOptions(**OPTS), restorer=_CtrlC(0))  # fmt: skip
            except DoveError:
                skipped.append(name)
    assert isinstance(err.value, Interrupted) and "interrupted" in str(err.value)
    assert started == ["missing.mp4", "second.mp4"] and skipped == ["missing.mp4"]


@pytest.mark.parametrize("frames,codec", [(25, "h264"), (26, "hevc"), (49, "h264")])
def test_a_short_last_segment_keeps_the_decode_timeline_even(frames, codec, tmp_path):
    """An encoder delays no dts in a segment of 1 or 2 frames: joined as they came, the dts jumped
    there, and MP4 (whose sample durations come from dts) gave one frame 3 frames' time (23.15 fps)."""
    src = make_clip(tmp_path / "in.mp4", size="64x36", rate="25", frames=frames)
    out = tmp_path / "out.mp4"
    upscale(src, out, UpscaleOptions(model="bilinear", scale=1, device="cpu", codec=codec))
    with av.open(str(out)) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
        step = round(1 / (c.streams.video[0].average_rate * c.streams.video[0].time_base))
    assert len(packets) == frames
    assert {b.dts - a.dts for a, b in itertools.pairwise(packets)} == {step}
    assert {p.duration for p in packets} == {step}


def test_a_resumed_runs_manifest_says_running_and_what_was_saved_before_and_made_now(clip, tmp_path):
    """A single file's manifest said nothing while its run went (a resumed run killed outright left the
    first run's "interrupted after N frames"), and a resumed run's said `saved_frames` 0 and only the
    output's frames. Now `running` (pid, host) from its start, with the frames saved before it, and at its
    end the frames it continued after and made now; the saved frames counted by ffmpeg in the segments."""
    out, manifest = tmp_path / "out.mkv", tmp_path / "run.json"
    opts = UpscaleOptions(**OPTS, manifest=str(manifest), preview="0+2s")  # 50 frames

    def stop(p):
        if p.frames_done >= 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale(clip, out, opts, progress=stop)
    saved = sum(len(framemd5(seg)) for seg in work_folder(out).glob("seg_*"))
    assert 0 < saved < 50 and json.loads(manifest.read_text())["status"] == "interrupted"
    seen: list[dict] = []

    def look(p):
        if p.status == "upscaling" and not seen:
            seen.append(json.loads(manifest.read_text()))  # what a kill -9 now would leave

    assert upscale(clip, out, replace(opts, resume=True), progress=look).frames == 50
    running = seen[0]
    assert (running["status"], running["exit_code"], running["error"], running["result"]) == (
        "running",
        None,
        None,
        None,
    )
    assert (running["pid"], running["plan"]["saved_frames"]) == (os.getpid(), saved)
    done = json.loads(manifest.read_text())
    assert done["status"] == "done" and done["plan"]["saved_frames"] == saved
    assert done["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()  # the joined output's
    assert (done["result"]["frames"], done["result"]["resumed_from"], done["result"]["frames_made_now"]) == (
        50,
        saved,
        50 - saved,
    )


def test_a_file_size_limit_exits_75_and_says_once_what_is_kept(tmp_path, capsys, caplog):
    """`ulimit -f` (EFBIG): the join of 60 finished frames cannot write the output. Exit 75 (retry
    later), one error line that says the frames are kept, how large the output will be (its audio
    counted: a third of it here) and that the limit, not free space, is what to change, and how to
    continue (no warning beside it, no "nothing was kept"); the manifest
    records the failure; the same command with --resume then finishes, replacing that manifest.
    Run in this process (two interpreters starting torch were most of its time): the limit is this
    process's soft one, put back before anything else is written."""
    import resource

    from dove_cli.cli import main

    clip = tmp_path / "in.mkv"  # 3 segments of about 150 kB; the output about 360 kB and 192 kB of PCM
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=2",
           "-frames:v", "60", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", clip)  # fmt: skip
    out, manifest = tmp_path / "out.mkv", tmp_path / "run.json"
    argv = ["upscale", str(clip), "-o", str(out), "--model", "bilinear", "--scale", "2", "--codec", "ffv1", "-q",
            "--manifest", str(manifest)]  # fmt: skip

    def run(*more: str, limit: int | None = None) -> tuple[int, str]:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if limit is not None:  # (Python ignores SIGXFSZ: a write past it fails with EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            with pytest.raises(SystemExit) as exc:
                main([*argv, *more])
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        return int(exc.value.code or 0), capsys.readouterr().err

    with caplog.at_level(logging.WARNING):
        code, err = run(limit=250_000)
    assert code == 75, err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # (in a process of its own: on stderr)
    said = re.fullmatch(
        rf"error: {re.escape(str(out))}: file too large for the file system or the file-size limit \(ulimit -f\); "
        rf"60 finished frames are kept in {re.escape(str(work_folder(out)))}; the output will be about (\d+\.\d) KB: "
        r"raise the file-size limit \(ulimit -f\) or write to a file system that allows files that large; run the "
        r"same command with --resume to continue\n",
        err,
    )
    assert said, err
    doc = json.loads(manifest.read_text())
    assert doc["status"] == "failed" and doc["error"] == err.removeprefix("error: ").strip()
    assert doc["result"] is None and doc["plan"]["frames"] == 60 and doc["options"]["codec"] == "ffv1"
    code, err = run("--resume")
    assert code == 0, err
    assert json.loads(manifest.read_text())["status"] == "done" and len(framemd5(out)) == 60
    assert abs(float(said[1]) * 1000 / out.stat().st_size - 1) < 0.05  # the size said: the output's


def test_a_file_size_limit_on_a_work_segment_names_the_output_its_size_and_the_advice(tmp_path):
    """`ulimit -f` hit while a work segment is written (before the join) is said as at the join: the
    output named (not its segment), its size told from what the cut segment took, the limit (not free
    room) to change. A limit the first segment hits keeps nothing; one the second hits keeps the
    first. In this process, the limit put back before anything else is written (Python ignores SIGXFSZ)."""
    import resource

    from dove_cli.errors import FileTooLarge

    alike, flat_first = tmp_path / "alike.mkv", tmp_path / "flat_first.mkv"  # FFV1 at 128x96: 6 kB a frame
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "10", "-c:v", "libx264", alike)
    ffmpeg("-filter_complex", "color=c=gray:size=64x48:rate=25:d=1.08[a];testsrc2=size=64x48:rate=25:d=0.28[b];"
           "[a][b]concat=n=2:v=1", "-c:v", "libx264", flat_first)  # (27 frames in 7 kB, then 7 in 45 kB)  # fmt: skip
    opts = UpscaleOptions(**OPTS, codec="ffv1")

    def run(clip: Path, out: Path) -> str:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
        try:
            with pytest.raises(FileTooLarge) as exc:
                upscale(clip, out, opts)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        return str(exc.value)

    def head(out: Path) -> str:
        return rf"{re.escape(str(out))}: file too large for the file system or the file-size limit \(ulimit -f\); "

    advice = r"the output will be about (\d+\.\d) KB: raise the file-size limit \(ulimit -f\) or write to a file " \
             r"system that allows files that large"  # fmt: skip
    out = tmp_path / "alike_x2.mkv"
    first = re.fullmatch(
        rf"{head(out)}nothing was kept; {advice}, then call upscale\(\) again.*", said := run(alike, out)
    )
    assert first and not work_folder(out).exists(), said
    ref = tmp_path / "ref.mkv"  # the whole output as the ffmpeg binary makes it (dove's: 3% smaller)
    ffmpeg("-i", alike, "-vf", "scale=128:96:flags=bilinear,format=yuv444p", "-c:v", "ffv1", ref)
    assert abs(float(first[1]) * 1000 / ref.stat().st_size - 1) < 0.1, (first[1], ref.stat().st_size)
    out = tmp_path / "flat_first_x2.mkv"
    second = re.fullmatch(rf"{head(out)}27 finished frames are kept in {re.escape(str(work_folder(out)))}; {advice}; "
                          r"call upscale\(\) again with resume=True to continue", said := run(flat_first, out))  # fmt: skip
    assert second, said


def test_concatenated_recordings_resume_to_an_identical_output(tmp_path):
    """A capture whose timestamps start again half way (two .ts joined bytewise): a run stopped after
    the reset resumes to the bytes of an uninterrupted run, the frames after the reset where the
    reader of the interrupted run put them, and the sound moved with them."""
    a = make_ts(tmp_path / "a.ts", 2)
    src = tmp_path / "aa.ts"
    src.write_bytes(a.read_bytes() * 2)
    opts = UpscaleOptions(**OPTS)
    ref, out = tmp_path / "ref.ts", tmp_path / "out.ts"
    assert upscale(src, ref, opts).frames == 100
    with pytest.raises(RuntimeError):
        upscale(src, out, opts, restorer=_FailAfter(11))  # about 75 frames: past the reset at frame 50
    journal = Work(out)._read()
    assert journal is not None and any(s.first > 50 for s in journal.segments)
    r = upscale(src, out, UpscaleOptions(**OPTS, resume=True))
    assert r.resumed_from > 50 and r.frames == 100
    assert out.read_bytes() == ref.read_bytes()
    pts = [int(line.split(",")[2]) for line in framemd5(out)]
    assert len(pts) == 100 and pts[50] - pts[49] == pts[1] - pts[0]  # the second recording continues the first


def test_segments_of_a_constant_rate_matroska_video_join_with_exact_steps(tmp_path):
    """23.976 fps in Matroska's milliseconds, into .mp4: each segment puts its frames on the grid of the
    rate, 1001/24000 s apart, and the join places each segment's first frame on it too (from the
    millisecond pts its journal keeps), so that a resumed run's steps are as exact as one run's."""
    src = make_clip(tmp_path / "in.mkv", rate="24000/1001", frames=20)
    with video_io.open_reader(src) as reader:
        info, frames = reader.info, list(reader)
    segments = []
    for k, (a, b) in enumerate([(0, 7), (7, 20)]):
        segment = tmp_path / f"seg{k}.mov"
        with video_io.open_writer(segment, info, 64, 48, codec="h264", audio="none", index_first=False) as writer:
            for frame in frames[a:b]:
                writer.write(frame.rgb, frame.pts)
        segments.append((segment, frames[a].pts))
    assert frames[7].pts == 292  # (7 x 41.708 ms)
    join_segments(tmp_path / "out.mp4", info, segments, codec="h264")
    assert frame_pts(tmp_path / "out.mp4") == ([1001 * k for k in range(20)], Fraction(1, 24000))


def test_a_broadcast_recording_resumes_to_an_identical_output_that_starts_at_0(tmp_path):
    """A capture whose clock starts 1 h in (3601.4 s), into .mov: the segments saved before the stop and
    those written after it join into the bytes of an uninterrupted run, which starts at 0 (no empty
    edit of an hour before the picture), the sound 10 ms before the picture as in the input."""
    src = make_broadcast(tmp_path / "rec.ts", audio_shift=-224)
    opts = UpscaleOptions(**OPTS)
    ref, out = tmp_path / "ref.mov", tmp_path / "out.mov"
    assert upscale(src, ref, opts).frames == 50
    with pytest.raises(RuntimeError):
        upscale(src, out, opts, restorer=_FailAfter(5))
    journal = Work(out)._read()
    assert journal is not None and journal.segments
    r = upscale(src, out, UpscaleOptions(**OPTS, resume=True))
    assert r.resumed_from >= SEGMENT_MIN_FRAMES and r.frames == 50
    assert out.read_bytes() == ref.read_bytes()
    movie, edits = movie_edits(out)
    empty = [[float(span) for span, at in track if at < 0] for track in edits]  # (the video, the sound)
    assert movie < 2.2 and empty == [[0.01], []]  # the picture starts 10 ms after the sound, as in the input


def test_inverse_telecine_resumes_to_an_identical_output(tmp_path):
    """--deinterlace ivtc: decimate drops a frame of every 5 counted from where reading starts, so a
    resumed run reads from the first frame again and makes the same film frames, times and sound."""
    src = make_telecined(tmp_path / "dvd.mpg", 100, audio=True)  # 80 film frames
    opts = UpscaleOptions(**OPTS, deinterlace="ivtc")
    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    assert upscale(src, ref, opts).frames == 80
    with pytest.raises(RuntimeError):
        upscale(src, out, opts, restorer=_FailAfter(7))  # about 50 frames
    journal = Work(out)._read()
    assert journal is not None and journal.segments
    r = upscale(src, out, UpscaleOptions(**OPTS, deinterlace="ivtc", resume=True))
    assert SEGMENT_MIN_FRAMES <= r.resumed_from < 80 and r.frames == 80
    assert framemd5(out) == framemd5(ref)
    assert packet_md5(out, "0:a:0") == packet_md5(ref, "0:a:0")


def test_a_disk_already_full_is_exit_75_and_leaves_nothing(tmp_path):
    """The output's file system is full before the run writes anything: the run's lock file could not
    be written, a traceback (exit 1) that left `o.mp4.dove-work/lock`, and a folder run failed every
    file as `OSError` (exit 2). Now one line, exit 75 (the same command finishes once there is room),
    and nothing left beside the output."""
    import shutil

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (root) to mount a tiny file system")
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "one.mp4", frames=4)
    full = tmp_path / "full"
    full.mkdir()
    dove = f"{sys.executable} -m dove_cli.cli upscale --model bilinear --scale 1 -q"
    script = (f"mount -t tmpfs -o size=64k tmpfs {full} && (dd if=/dev/zero of={full}/fill bs=4k 2>/dev/null; true)"
              f" && {dove} {clip} -o {full}/o.mp4; echo rc=$?; {dove} {clip.parent} -o {full}/out/; echo rc=$?;"
              f" ls -A {full}")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert proc.stdout.count("rc=75") == 2, (proc.stdout, proc.stderr)
    said = f"{full}/o.mp4: disk full while writing; make room, then run the same command again"
    assert f"error: {said}" in proc.stderr.splitlines(), proc.stderr
    assert f"failed: {full}/out/one.mp4: disk full while writing" in proc.stderr and "Traceback" not in proc.stderr
    listing = proc.stdout.split("rc=75")[-1].split()
    assert listing == ["fill"], listing  # no work folder, no lock, no empty output folder left


class _Truncates(BilinearModel):
    """Bilinear, but cuts its input to 40% of its size as its second window starts (a copy or a card that
    failed while the run read it)."""

    def __init__(self, src: Path) -> None:
        super().__init__("cpu")
        self.src, self.windows = src, 0

    def restore(self, video, generator=None, timer=None):
        self.windows += 1
        if self.windows == 2:
            os.truncate(self.src, self.src.stat().st_size * 4 // 10)
        return super().restore(video)


def test_an_input_cut_short_during_the_run_is_said_to_have_changed(tmp_path):
    """An MP4 truncated while a run read it failed as "cannot reopen for audio" (it has no audio), or as
    "file ends early", and kept the frames for a --resume that cannot get past the cut: InputChanged now,
    with the sizes, nothing kept (as when the change is found at the run's end)."""
    from dove_cli.errors import InputChanged

    src = make_clip(tmp_path / "in.mp4", frames=60, rate="25")  # (its index at the end, read at the start)
    began = src.stat().st_size
    out = tmp_path / "out.mp4"
    with pytest.raises(InputChanged) as err:
        upscale(src, out, **OPTS, restorer=_Truncates(src))
    assert str(err.value).startswith(
        f"{src}: the input changed while it was read ({began:,} bytes when the run began, {began * 4 // 10:,} "
        "when reading it failed: "
    )
    assert "resume" not in str(err.value) and "audio" not in str(err.value)
    assert not out.exists() and not work_folder(out).exists()


def test_an_input_that_cannot_be_reopened_names_what_it_was_reopened_for(tmp_path, monkeypatch):
    """The writer opens the input again to copy its other streams: "cannot reopen for audio" was said of a
    file with no audio."""
    from dove_cli.errors import InputError
    from dove_cli.video_io import writer

    monkeypatch.setattr(writer, "ffmpeg_name", lambda path: str(tmp_path / "gone.mp4"))
    for audio, what in ((False, "tags and chapters"), (True, "audio")):
        src = make_clip(tmp_path / f"in{audio}.mp4", frames=3, size="32x24", audio=audio)
        with pytest.raises(InputError, match=rf"^{re.escape(str(src))}: cannot reopen to copy its {what} \("):
            upscale(src, tmp_path / f"out{audio}.mkv", **OPTS)


@pytest.mark.live_input
@pytest.mark.parametrize(("name", "extra"), [("rec.ts", ()), ("rec.mp4", ("-movflags", "frag_keyframe+empty_moov"))])
def test_a_recording_with_no_end_written_just_now_is_watched_before_its_output_is_kept(
    tmp_path, monkeypatch, caplog, name, extra
):
    """Nothing at the end of an MPEG-TS or a fragmented MP4 shows it finished, and a recorder writes
    it in bursts (32 KiB): a short run between two was kept as the whole recording. One written just
    now is said before the run and watched until UNFINISHED_QUIET_S after its last write: a write
    meanwhile fails the run (InputChanged). A plain MP4 (its index is written last) is not waited for."""
    from dove_cli import resume
    from dove_cli.errors import InputChanged

    waited: list[tuple[Path, float]] = []

    def written_meanwhile(seconds: float) -> None:
        waited.append((src, seconds))
        with open(src, "ab") as f:
            f.write(b"\0" * 188)

    monkeypatch.setattr(resume.time, "sleep", written_meanwhile)
    caplog.set_level(logging.WARNING, logger="dove_cli")
    src = make_clip(tmp_path / name, frames=4, size="32x24", extra=extra)
    began = src.stat().st_size
    with pytest.raises(InputChanged, match=f"{began:,} bytes when the run began, {began + 188:,} at its end"):
        upscale(src, tmp_path / "out.mkv", **OPTS)
    assert len(waited) == 1 and 0 < waited[0][1] <= resume.UNFINISHED_QUIET_S
    assert re.search(rf"{re.escape(str(src))}: was written \d s ago: if it is still being recorded", caplog.text)
    assert re.search(rf"{re.escape(str(src))}: was written \d s ago: waiting \d s", caplog.text)  # at its end
    assert not (tmp_path / "out.mkv").exists()
    caplog.clear()
    src = make_clip(tmp_path / "plain.mp4", frames=4, size="32x24")
    upscale(src, tmp_path / "plain_out.mkv", **OPTS)
    assert len(waited) == 1 and "written" not in caplog.text


def test_a_full_disk_mid_run_says_how_much_room_the_rest_and_the_join_need(tmp_path):
    """Half the frames kept in 2 MB of segments: the output will be about 4 MB, so the 2 MB still to
    come and the 4 MB join need about 6 MB (and 10% for the file system) free."""
    session = Session(tmp_path / "out.mp4", {}, resume=False, overwrite=False)
    session.journal = Journal(
        {}, chunk=9, tile=0, segments=[Segment("a", 0, 25, 0, 10**6), Segment("b", 25, 25, 0, 10**6)]
    )
    assert session.room_to_make(50, 100).startswith("make about 6.6 MB free (")


def test_a_full_disk_counts_the_blocks_small_segments_take(tmp_path):
    """Tiny segments (100 bytes) each fill a whole block of the file system: the frames still to come
    need the room the kept ones take on disk (as `du` counts it), not their sizes, or following the
    advice fills the disk again; the join's output is still their sizes (400 bytes)."""
    session = Session(tmp_path / "out.mp4", {}, resume=False, overwrite=False)
    session.work.path.mkdir()
    for name in ("a.nut", "b.nut"):
        (session.work.path / name).write_bytes(bytes(100))
    session.journal = Journal(
        {}, chunk=9, tile=0, segments=[Segment("a.nut", 0, 25, 0, 100), Segment("b.nut", 25, 25, 0, 100)]
    )
    du = subprocess.run(["du", "-B1", "-c", "a.nut", "b.nut"], cwd=session.work.path, capture_output=True, text=True)
    on_disk = int(du.stdout.splitlines()[-1].split()[0])
    assert on_disk > 200  # (a file system that rounds to blocks)
    assert session.room_to_make(50, 100).startswith(f"make about {(on_disk + 400) * 1.1 / 1000:.1f} KB free (")


@pytest.mark.live_input
def test_an_unfinished_input_written_just_now_is_watched_before_its_output_is_kept(tmp_path, monkeypatch, caplog):
    """A recording is written in clusters of 5 s: a short run could begin and end between two writes,
    unchanged, and keep a part of it as all of it. An input that looks unfinished and was written under
    UNFINISHED_QUIET_S ago is watched until then: a write meanwhile fails the run (InputChanged); one
    written longer ago, or a finished one, is not waited for."""
    from fractions import Fraction

    from dove_cli import resume
    from dove_cli.errors import InputChanged
    from dove_cli.video_io import VideoInfo

    src = tmp_path / "recording.mkv"
    waited: list[float] = []
    caplog.set_level(logging.WARNING, logger="dove_cli")

    def written_meanwhile(seconds: float) -> None:
        waited.append(seconds)
        with open(src, "ab") as f:
            f.write(b"more")

    monkeypatch.setattr(resume.time, "sleep", written_meanwhile)
    old = time.time() - resume.UNFINISHED_QUIET_S - 1
    for unfinished, written, waits in ((True, None, True), (True, old, False), (False, None, False)):
        src.write_bytes(b"x" * 100)
        if written is not None:
            os.utime(src, (written, written))
        info = VideoInfo(path=src, width=8, height=8, num_frames=1, fps=Fraction(25), time_base=Fraction(1, 25),
                         unfinished=unfinished)  # fmt: skip
        session = Session(tmp_path / "out.mkv", resume.input_identity(info), resume=False, overwrite=True)
        waited.clear()
        if waits:
            with pytest.raises(InputChanged, match="100 bytes when the run began, 104 at its end"):
                session.check_input(info)
            assert len(waited) == 1 and 0 < waited[0] <= resume.UNFINISHED_QUIET_S
            assert "looks unfinished" in caplog.text and "waiting" in caplog.text  # said: a pause after the frames
        else:
            session.check_input(info)
            assert waited == [], (unfinished, written)


def test_a_work_folder_that_is_a_planted_link_or_another_users_is_refused_and_left_alone(tmp_path, capsys):
    """A link planted at OUT.dove-work (another user's, in a shared output folder) had the run empty the
    folder it names, subfolders too; a folder another user made was adopted (its owner could read or
    replace the run's segments). Both are refused in one line before any work, and nothing is deleted."""
    from conftest import demo_clip
    from dove_cli.cli import main

    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "a.txt").write_text("a")
    (victim / "sub" / "b.txt").write_text("b")
    out = tmp_path / "out.mp4"
    work_folder(out).symlink_to(victim)
    argv = ["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear", "--scale", "1",
            "--preview", "0+0.1s", "-q"]  # fmt: skip
    for more in ([], ["--overwrite"], ["--resume"]):
        with pytest.raises(SystemExit) as exc:
            main([*argv, *more])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.splitlines() == [
            f"error: {work_folder(out)}: is a symlink (to {victim}), not a work folder of yours; refused, as a run "
            f"would empty it (remove it, or write out.mp4 elsewhere)"], err  # fmt: skip
    assert sorted(str(p.relative_to(victim)) for p in victim.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    assert work_folder(out).is_symlink() and not out.exists()
    with pytest.raises(OutputError, match="is a symlink"):
        discard_work(out)
    assert (victim / "a.txt").is_file()
    work_folder(out).unlink()
    if os.geteuid() != 0:
        return  # (only root may give a folder to another user)
    work_folder(out).mkdir()
    os.chown(work_folder(out), 1234, 1234)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--overwrite"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.splitlines() == [
        f"error: {work_folder(out)}: belongs to another user (uid 1234), not a work folder of yours; refused, as a "
        f"run would empty it (remove it, or write out.mp4 elsewhere)"], err  # fmt: skip


def test_clearing_a_work_folder_removes_a_link_inside_it_not_what_it_names(tmp_path):
    """A fresh run empties its own work folder: a link in it (to a folder) is unlinked, never followed; a
    link at the work folder's own name is refused however the run reaches it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    out = tmp_path / "out.mp4"
    work_folder(out).mkdir()
    (work_folder(out) / "seg_000000003.mov").symlink_to(victim)
    work = Work(out)
    work.start(Journal({}, chunk=9, tile=0), resumed=False)
    assert sorted(p.name for p in work.path.iterdir()) == ["journal.jsonl", "lock"]
    assert (victim / "keep.txt").is_file()
    work.remove()
    work_folder(out).symlink_to(victim)  # planted between the run's check and its start: refused there too
    with pytest.raises(OutputError, match="is a symlink"):
        Work(out).start(Journal({}, chunk=9, tile=0), resumed=False)
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
