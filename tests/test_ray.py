"""--ray: a video (or a folder) shared between Ray workers writes the same bytes as one process,
even when a worker is killed part way. One local Ray runtime with two CPU workers serves every test
here (the `cluster` fixture, started once per test run and stopped after this file's tests); outputs are checked with the ffmpeg binary
(framemd5 of every decoded frame, md5 of the audio packets)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from dove_cli.engine import BilinearModel
from dove_cli.errors import InputError, Interrupted, OptionError
from dove_cli.options import UpscaleOptions
from dove_cli.resume import SEGMENT_MIN_FRAMES, Journal, Segment, Work, work_folder
from dove_cli.upscaling import upscale
from media import frame_times, make_broadcast, make_clip, make_telecined, make_ts, packet_md5
from test_resume import framemd5
from test_scenes import two_shot_clip

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dove-cli[ray]'")
pytestmark = pytest.mark.xdist_group("ray")  # one Ray runtime per test run (with --dist loadgroup)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test models below go to the workers

OPTS = dict(model="bilinear", scale=2, chunk=9, chunk_overlap=2, tile=0, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Runs of one process here use one torch thread, as each worker does: on a 2-core machine shared
    with the workers, two threads only wait for each other (the output is the same)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray runtime with two CPU workers of one core each (and one core spare for a second
    driver), for every test of this file (they run on one xdist worker: the xdist_group above)."""
    from dove_cli.distributed import Cluster

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        with Cluster("local", 2, device="cpu", cpus=1) as c:
            yield c
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """100 frames at 25 fps, 48x32, with AAC audio and a cut at frame 40."""
    return two_shot_clip(tmp_path_factory.mktemp("ray") / "in.mp4", 40, 60, size="48x32", audio=True)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """The clip at 32x16, for the tiny DOVE: its 4-channel convolutions cost about a third of 48x32's
    per frame, and the cut, the audio and the segments are the same."""
    return two_shot_clip(tmp_path_factory.mktemp("ray") / "small.mp4", 40, 60, size="32x16", audio=True)


@pytest.fixture(scope="module")
def ref(clip, tmp_path_factory) -> Path:
    """The clip upscaled by one process with OPTS."""
    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    upscale(clip, out, UpscaleOptions(**OPTS))
    return out


class Slow(BilinearModel):
    """Bilinear, a little slower per window (so that a worker can be killed in the middle of a task)."""

    def __init__(self, seconds: float = 0.03) -> None:
        super().__init__("cpu")
        self.seconds = seconds

    def restore(self, video, generator=None, timer=None):
        time.sleep(self.seconds)
        return super().restore(video)


def hellos(cluster) -> list[dict]:
    """Each worker's hello, waiting for a worker that Ray is still restarting (calls to it fail until then)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return ray.get([a.hello.remote() for a in cluster.actors])
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def same_file(a: Path, b: Path) -> None:
    assert framemd5(a) == framemd5(b)
    assert packet_md5(a, "0:a:0") == packet_md5(b, "0:a:0")
    assert a.read_bytes() == b.read_bytes()  # MP4 holds nothing run-specific


def test_two_workers_write_the_same_file_as_one_process(cluster, small_clip, tmp_path):
    """The tiny random DOVE (the real code path), loaded by each worker: the segments come from both
    workers, each seeking to its own frames, and join into the file one process writes."""
    opts = UpscaleOptions(**{**OPTS, "model": "tiny"}, preview="0+3s")  # 75 frames, a cut at 40
    # (the third segment starts after the cut: its worker must know of it from the plan it is given)
    one = upscale(small_clip, tmp_path / "one.mp4", opts)
    seen = []
    two = upscale(
        small_clip, tmp_path / "two.mp4", opts, cluster=cluster, progress=seen.append, manifest=str(tmp_path / "m.json")
    )
    assert two.frames == one.frames == 75 and two.cuts == one.cuts == [40]
    doc = json.loads((tmp_path / "m.json").read_text())  # the driver's manifest, with a worker's model hashes
    assert doc["output"] == str((tmp_path / "two.mp4").absolute()) and doc["result"]["frames"] == 75
    assert len(doc["model"]["transformer"]["sha256"]) == 64 and doc["plan"]["work_ratio"] == one.plan.work_ratio
    assert sorted(two.workers) == ["w0", "w1"] and sum(two.workers.values()) == 75
    same_file(tmp_path / "one.mp4", tmp_path / "two.mp4")
    assert not work_folder(tmp_path / "two.mp4").exists()
    assert seen[-1].frames_done == 75 and len(seen[-1].workers) == 2  # one bar, a line per worker
    statuses = [p.status for p in seen]  # a single run's stages, in order
    assert [s for i, s in enumerate(statuses) if s not in statuses[:i]] == ["loading model", "planning", "upscaling",
                                                                           "joining segments", "done"]  # fmt: skip


def test_a_prores_4444_join_of_both_workers_segments_keeps_its_profile(cluster, clip, tmp_path):
    """The driver joins the workers' ProRes segments as one process does: 4:4:4 and tagged ap4h
    (4444), not refused as 4:2:2 HQ after the run."""
    out = tmp_path / "out.mov"
    r = upscale(clip, out, UpscaleOptions(**OPTS, codec="prores", preset="4444", preview="0+2s"), cluster=cluster)
    assert r.frames == 50 and sorted(r.workers) == ["w0", "w1"]
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.codec_tag, cc.format.name) == ("ap4h", "yuv444p12le")  # decoders widen prores_ks's 10 bits
    assert len(framemd5(out)) == 50 and not work_folder(out).exists()


def test_parity_on_two_workers_is_the_release_layout_of_one_process(cluster, small_clip, tmp_path):
    """--parity: the workers and the driver's pre-pass plan the release's chunks over the video padded
    to 8k+1 frames (50 -> 57 here), and the file is the one a single --parity run writes. (x2 of the
    32x16 clip, not the release's x4: the chunks are the same, with a twelfth of the pixels.)"""
    opts = UpscaleOptions(**{**OPTS, "model": "tiny", "chunk": 16, "chunk_overlap": 8}, parity=True, preview="0+2s")
    one = upscale(small_clip, tmp_path / "one.mp4", opts)
    two = upscale(small_clip, tmp_path / "two.mp4", opts, cluster=cluster)
    assert two.frames == one.frames == 50 and len(two.workers) == 2
    same_file(tmp_path / "one.mp4", tmp_path / "two.mp4")


class KilledOnce(BilinearModel):
    """Bilinear, except that the first worker process to reach its 6th window kills itself there
    (SIGKILL, as the OOM killer or `kill -9` would), once: the token file then holds its pid. A
    window is made before the segments it touches are reported, so the kill always lands in
    unreported work; by the 6th window its worker has usually saved a segment already."""

    def __init__(self, token: Path) -> None:
        super().__init__("cpu")
        self.token, self.calls = token, 0

    def restore(self, video, generator=None, timer=None):
        self.calls += 1
        if self.calls == 6:
            try:
                fd = os.open(self.token, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.fsync(fd)
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().restore(video)


def test_crop_and_size_on_two_workers_write_the_file_of_one_process(cluster, tmp_path):
    """--crop and --size on Ray: each worker crops the frames it reads and resamples those it writes,
    and the driver joins the segments with square pixels, as one process writes them."""
    src = make_clip(tmp_path / "dvd.mp4", size="64x48", rate="25", frames=72, vf="setsar=32/27")
    opts = UpscaleOptions(**OPTS, crop="2:2:2:4", size="96p")  # 60x42 at 32:27 is shown 1.693:1: 162.5 -> 162
    one = upscale(src, tmp_path / "one.mp4", opts)
    two = upscale(src, tmp_path / "two.mp4", opts, cluster=cluster)
    assert two.frames == one.frames == 72 and sum(two.workers.values()) == 72
    assert framemd5(tmp_path / "one.mp4") == framemd5(tmp_path / "two.mp4")
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "two.mp4").read_bytes()
    with av.open(str(tmp_path / "two.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (162, 96)
        assert s.sample_aspect_ratio in (None, 1) and s.codec_context.sample_aspect_ratio in (None, 1)


def test_auto_crop_is_found_by_the_driver_and_cut_by_the_workers(cluster, tmp_path):
    """--crop auto on Ray: the driver finds the bars once, before the plan; the workers cut that crop
    (a worker given 'auto' would refuse it), and the file is one process's."""
    src = make_clip(tmp_path / "boxed.mp4", size="48x32", rate="25", frames=48, vf="pad=64:48:8:6:black")
    opts = UpscaleOptions(**OPTS, crop="auto")
    one = upscale(src, tmp_path / "one.mp4", opts)
    two = upscale(src, tmp_path / "two.mp4", opts, cluster=cluster)
    assert one.plan.crop == two.plan.crop == "8:6:8:10" and sum(two.workers.values()) == 48
    assert framemd5(tmp_path / "one.mp4") == framemd5(tmp_path / "two.mp4")


def test_a_worker_killed_mid_run_changes_nothing(cluster, clip, ref, tmp_path):
    """SIGKILL one worker while it makes a segment: Ray restarts it, its unreported segments are made
    again elsewhere, nothing it half-wrote is used, and the file is still the one a single process
    writes."""
    token, out = tmp_path / "killed", tmp_path / "out.mp4"
    r = upscale(clip, out, UpscaleOptions(**OPTS), cluster=cluster, restorer=KilledOnce(token))
    killed = int(token.read_text())
    assert r.redone >= 1 and r.frames == 100
    same_file(ref, out)
    pids = [h["pid"] for h in hellos(cluster)]
    assert len(pids) == 2 and killed not in pids  # restarted by Ray, in a new process


def test_inverse_telecine_on_two_workers_is_one_process(cluster, tmp_path):
    """--deinterlace ivtc: decimate drops a frame of every 5 counted from where reading starts, so a
    worker decodes its part from the first frame (a seek would give the same times but, where the
    3:2 cadence breaks, here in the video at the end, other frames), and the file is one process's."""
    src = make_telecined(tmp_path / "dvd.mpg", 100, video=40, audio=True, size="64x48")
    opts = UpscaleOptions(**OPTS, deinterlace="ivtc")
    one = upscale(src, tmp_path / "one.mkv", opts)
    two = upscale(src, tmp_path / "two.mkv", opts, cluster=cluster)
    assert two.frames == one.frames == 80 and sorted(two.workers) == ["w0", "w1"]
    assert framemd5(tmp_path / "two.mkv") == framemd5(tmp_path / "one.mkv")
    assert packet_md5(tmp_path / "two.mkv", "0:a:0") == packet_md5(tmp_path / "one.mkv", "0:a:0")


def test_a_folder_is_spread_over_both_workers(cluster, clip, tmp_path):
    """Files of a folder go to whichever worker is free (the long one in segments); each output is
    the file a sequential batch writes; a finished output is skipped, as without Ray."""
    from dove_cli.batch import upscale_batch

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(clip, src / "long.mp4")
    make_clip(src / "short.mp4", frames=30, size="48x32")
    make_clip(src / "tiny.mkv", frames=5, size="32x24")
    seq = upscale_batch(src, tmp_path / "seq", **OPTS)
    assert [i.status for i in seq.items] == ["done"] * 3
    loads = [h["loads"] for h in hellos(cluster)]
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(src / "tiny.mkv", out / "tiny.mkv")  # a finished output: a video as long as its input
    files, seen = [], []
    result = upscale_batch(src, out, **OPTS, cluster=cluster, on_file=lambda i, item: files.append(item.status),
                           progress=seen.append)  # fmt: skip
    # the folder's time left, as `dove` says it: counted from its first frames (`since`); a rate once a
    # later count has come (the workers' counts arrive as polled: on a busy machine, maybe all at the end)
    assert any(p.since is not None for p in seen)
    counted = {(p.seconds, p.frames_done) for p in seen if p.since is not None and p.frames_done > p.since[1]}
    assert not counted or any(p.seconds_left is not None for p in seen)
    assert [(i.input.name, i.status) for i in result.items] == [("long.mp4", "done"), ("short.mp4", "done"),
                                                                ("tiny.mkv", "skipped")]  # fmt: skip
    assert files.count("done") == 2 and files.count("skipped") == 1
    used = set().union(*(i.result.workers for i in result.items if i.result is not None))
    assert used == {"w0", "w1"}
    for name in ("long.mp4", "short.mp4"):
        assert framemd5(out / name) == framemd5(tmp_path / "seq" / name)
        assert (out / name).read_bytes() == (tmp_path / "seq" / name).read_bytes()
    assert (out / "tiny.mkv").read_bytes() == (src / "tiny.mkv").read_bytes()
    assert sorted(p.name for p in (out / ".dove-sources").iterdir()) == ["long.mp4.json", "short.mp4.json"]  # (batch)
    after = [h["loads"] for h in hellos(cluster)]
    assert all(b - a <= 1 for a, b in zip(loads, after, strict=True))  # one model load per worker at most


def test_a_recursive_folder_on_ray_mirrors_the_tree(cluster, tmp_path):
    """--recursive with --ray: the files of sub-folders go to the workers, each output at its place in
    the tree (its folder made as the local run makes it), and the manifest has each file's times."""
    from dove_cli.batch import upscale_batch

    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "run.json"
    (src / "a" / "b").mkdir(parents=True)
    make_clip(src / "a" / "x.mp4", frames=3, size="32x24")
    make_clip(src / "a" / "b" / "x.mp4", frames=2, size="32x24")
    result = upscale_batch(src, out, **OPTS, cluster=cluster, recursive=True, manifest=manifest)
    assert [(i.name, i.status) for i in result.items] == [("a/b/x.mp4", "done"), ("a/x.mp4", "done")]
    for name in ("a/b/x.mp4", "a/x.mp4"):
        assert framemd5(out / name) == framemd5(upscale(src / name, tmp_path / "ref.mp4", UpscaleOptions(**OPTS),
                                                        overwrite=True).output)  # fmt: skip
    doc = json.loads(manifest.read_text())
    assert doc["recursive"] and all(f["started_at"] < f["finished_at"] for f in doc["files"])


def test_a_file_still_being_copied_is_failed_before_the_join(cluster, tmp_path, monkeypatch):
    """The driver checks the input's size before it joins, as a single run does: a file that grew
    while the workers read it is failed (InputChanged), nothing left at its name or kept. (The copy
    goes on as the driver comes to its check: growing it on a progress status raced the workers.)"""
    from dove_cli import resume
    from dove_cli.batch import upscale_batch
    from media import FFMPEG

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    live = subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v", "40",
                           "-c:v", "ffv1", "-f", "matroska", "-"], capture_output=True, check=True).stdout  # fmt: skip
    capture = src / "capture.mkv"
    capture.write_bytes(live[: len(live) // 2])

    check_input = resume.Session.check_input

    def copy_goes_on(session: resume.Session, info) -> None:
        if capture.stat().st_size < len(live):
            with open(capture, "ab") as f:
                f.write(live[len(live) // 2 :])
        check_input(session, info)

    monkeypatch.setattr(resume.Session, "check_input", copy_goes_on)
    item = upscale_batch(src, out, **OPTS, codec="ffv1", cluster=cluster).items[0]
    assert (item.status, item.error_type) == ("failed", "InputChanged"), item.error
    assert "the input changed while it was read" in (item.error or "") and not out.exists()


def stop_once_saved(journal: Path) -> Callable[[Any], None]:
    """A progress callback that presses Ctrl-C once the journal lists the first segment (others may
    be listed too)."""

    def stop(p) -> None:
        if journal.is_file() and '"first": 0,' in journal.read_text():
            raise KeyboardInterrupt

    return stop


def test_resume_after_the_driver_stopped(cluster, clip, ref, tmp_path):
    """The driver stops part way (here Ctrl-C; a kill leaves the same journal): --resume, with Ray or
    without, makes only the segments the journal lacks and ends with the same file."""
    for resume_on_ray in (True, False):
        out = tmp_path / f"out{resume_on_ray}.mp4"

        manifest = tmp_path / f"run{resume_on_ray}.json"
        with pytest.raises(Interrupted, match=r"call upscale\(\) again with resume=True to continue$"):
            upscale(clip, out, UpscaleOptions(**OPTS), cluster=cluster, restorer=Slow(0.1), manifest=manifest,
                    progress=stop_once_saved(work_folder(out) / "journal.jsonl"))  # fmt: skip
        journal = (work_folder(out) / "journal.jsonl").read_text()
        assert '"file"' in journal and not out.exists()
        doc = json.loads(manifest.read_text())  # as without Ray: the manifest says how the run ended
        assert doc["status"] == "interrupted" and "resume=True" in doc["error"] and doc["plan"]["frames"] == 100
        r = upscale(clip, out, UpscaleOptions(**OPTS, resume=True), cluster=cluster if resume_on_ray else None)
        assert r.resumed_from >= SEGMENT_MIN_FRAMES and r.frames == 100
        assert f"resumed after frame {r.resumed_from}" in r.summary() and "0 windows" not in r.summary()
        same_file(ref, out)


class OutOfMemoryOnce(BilinearModel):
    """Bilinear, plus a small offset on tiled windows (so that tiles show in the output). The whole-
    frame window whose first frame has the signature `target` runs out of memory once, in whichever
    process gets there first (a file is the token); windows with a signature in `slow` take a second."""

    pixel_local = False  # planned as DOVE is: overlapping windows, so that neighbouring tasks share one

    def __init__(self, token: Path, target: str | None = None, slow: tuple[str, ...] = ()) -> None:
        super().__init__("cpu")
        self.token, self.target, self.slow, self.seen = token, target, slow, []

    def restore(self, video, generator=None, timer=None):
        import hashlib

        import torch

        whole = video.shape[-1] == 96  # 48x32 at scale 2
        sig = hashlib.md5(video[0, :, 0].float().numpy().tobytes()).hexdigest()
        self.seen.append(sig)
        if sig in self.slow:
            time.sleep(1.0)
        if whole and sig == self.target:
            try:
                os.close(os.open(self.token, os.O_CREAT | os.O_EXCL))
                raise torch.OutOfMemoryError("simulated")
            except FileExistsError:
                pass
        return super().restore(video) + (0.0 if whole else 0.03)


@pytest.mark.parametrize("late", [False, True], ids=["heard-before-the-segment-ends", "heard-after-it-is-saved"])
def test_a_tile_change_on_one_worker_applies_to_every_later_window(late, cluster, clip, tmp_path, caplog):
    """A worker runs out of memory at one window and tiles from there on: the segments that other
    workers made of later windows with the planned tiles, before or after they heard of it, are made
    again. The file is the one a single process that ran out of memory at the same window writes
    (which tiles every later window)."""
    recorder = OutOfMemoryOnce(tmp_path / "unused")
    upscale(clip, tmp_path / "plain.mp4", UpscaleOptions(**OPTS), restorer=recorder)
    # Early: the 4th window (frames 21-29, shared by the first two tasks) runs out of memory while
    # the other worker runs it. Late: the 3rd (frames 14-22) does, after two slow windows, when the
    # other worker has saved later segments made with whole frames.
    index = 2 if late else 3
    target, slow = recorder.seen[index], tuple(recorder.seen[:2]) if late else ()
    ref = tmp_path / "ref.mp4"
    one = upscale(clip, ref, UpscaleOptions(**OPTS), restorer=OutOfMemoryOnce(tmp_path / "token1", target))
    assert one.retries == 1 and one.tile_used == 64
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        two = upscale(clip, out, UpscaleOptions(**OPTS), cluster=cluster,
                      restorer=OutOfMemoryOnce(tmp_path / "token2", target, slow))  # fmt: skip
    assert (tmp_path / "token2").exists() and two.tile_used == 64
    assert f"out of GPU memory at frame {7 * index}; tiles of 64 px from there on" in caplog.text
    # what the worker said as it shrank its tiles, said again on the driver (Warned) and listed, as one process does
    assert one.warnings == [f"out of GPU memory at frames {7 * index}-{7 * index + 9}; retrying with --tile 64"]
    assert (
        one.warnings[0] in two.warnings and caplog.messages.count(one.warnings[0]) == 2
    )  # (one process's, the driver's)
    same_file(ref, out)


def test_segments_after_a_gap_are_kept_for_a_distributed_resume(tmp_path):
    """Workers finish segments in any order: the journal lists them as they come; a distributed
    resume keeps them all, a single-process one the part without a gap."""
    out = tmp_path / "out.mp4"
    segments = [Segment("seg_000000030.mov", 30, 30, 30), Segment("seg_000000000.mov", 0, 30, 0),
                Segment("seg_000000090.mov", 90, 30, 90)]  # fmt: skip
    work = Work(out)
    work.start(Journal({}, chunk=9, tile=0), resumed=False)
    for s in segments:
        (work.path / s.file).write_bytes(b"x" * 7)
        s.bytes = 7
        work.append(s)
    (work.path / ".seg_000000060.dove-1234.part.mov").write_bytes(b"half")  # a killed worker's
    work.release()
    for gaps, kept, done in ((True, [0, 30, 90], 60), (False, [0, 30], 60)):
        work = Work(out)
        journal = work.check({}, resume=True, overwrite=False)
        assert journal is not None
        assert work.start(journal, resumed=True, gaps=gaps) == done
        assert [s.first for s in journal.segments] == kept
        assert not list(work.path.glob("*.part*"))
        work.release()


# ---------------------------------------------------------------- bad use: one line, exit 2


def run_cli(*args: str, capsys) -> tuple[int, str]:
    from dove_cli.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["upscale", *args])
    return exc.value.code, capsys.readouterr().err


def test_workers_0_and_an_unreachable_cluster_are_one_line_errors(clip, tmp_path, capsys):
    out = str(tmp_path / "out.mp4")
    code, err = run_cli(str(clip), "-o", out, "--ray", "local", "--workers", "0", capsys=capsys)
    assert code == 2 and err.strip() == "error: --workers 0 must be at least 1"
    t0 = time.monotonic()
    code, err = run_cli(str(clip), "-o", out, "--ray", "127.0.0.1:1", capsys=capsys)
    assert code == 2 and err.startswith("error: --ray 127.0.0.1:1: no Ray cluster answers there")
    assert err.count("\n") == 1 and time.monotonic() - t0 < 30
    code, err = run_cli(str(clip), "-o", out, "--ray", "somewhere", capsys=capsys)
    assert code == 2 and "use local, auto, ray://HOST:PORT" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_ray_local_beside_a_running_cluster_and_sigterm(cluster, tmp_path):
    """`--ray local` where a cluster already runs (RAY_ADDRESS names this file's; `ray start --head`
    is found the same way) starts a Ray of its own instead of failing to join with its CPU count;
    SIGTERM then stops it as it stops a run without Ray (ray.init installs a handler of its own that
    exits 1 with a crash banner): one `error:` line, exit 143, the saved segments kept for --resume."""
    src = make_clip(tmp_path / "in.mp4", frames=240, size="160x90")
    out = tmp_path / "out.mkv"
    args = ["-o", str(out), "--ray", "local", "--workers", "1", "--model", "bilinear", "--scale", "4",
            "--codec", "ffv1", "--device", "cpu"]  # fmt: skip
    env = {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    proc = subprocess.Popen([sys.executable, "-m", "dove_cli.cli", "upscale", str(src), *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env})  # fmt: skip
    journal = work_folder(out) / "journal.jsonl"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and '"file"' in journal.read_text():  # a first segment is saved
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 143, err
    assert lines[-1].startswith(f"error: {out}: interrupted after ") and "--resume" in lines[-1], err
    assert "Traceback" not in err and "SIGTERM received" not in err
    assert journal.exists() and not out.exists()


def test_without_ray_installed_it_says_how_to_install(clip, tmp_path, monkeypatch):
    from dove_cli.batch import upscale_batch

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(
        OptionError, match=re.escape("--ray needs Ray, which is not installed: pip install 'dove-cli[ray]'")
    ):
        upscale(clip, tmp_path / "out.mp4", UpscaleOptions(**OPTS, ray="local"))
    # a dry run checks what the run needs (a scheduler node validating its install): it said nothing
    with pytest.raises(OptionError, match="^--ray needs Ray, which is not installed"):
        upscale(clip, tmp_path / "out.mp4", UpscaleOptions(**OPTS, ray="local"), dry_run=True)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / "a.mp4")
    with pytest.raises(OptionError, match="^--ray needs Ray, which is not installed"):  # once, not failing each file
        upscale_batch(folder, tmp_path / "out", UpscaleOptions(**OPTS, ray="local"), dry_run=True)


def test_a_work_folder_the_workers_cannot_see(cluster, clip, tmp_path):
    """The driver writes its output where the workers do not see it (a folder only its own mount
    namespace has, as a disk local to the head node would be): one line, exit 2, before any frame."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (root) to give the driver a folder the workers do not see")
    private = tmp_path / "private"
    private.mkdir()
    address = ray.get_runtime_context().gcs_address
    dove = (
        f"{sys.executable} -m dove_cli.cli upscale {clip} -o {private}/out.mp4 --ray {address} --workers 1 "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in OPTS.items())
    )
    script = f"mount -t tmpfs none {private} && exec {dove}"
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=180, env={**os.environ, "RAY_ADDRESS": ""})  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines[-1].startswith("error: ") and "not visible to Ray worker" in lines[-1], proc.stderr
    assert "storage that every worker sees" in lines[-1] and "Traceback" not in proc.stderr
    assert list(private.iterdir()) == []  # the workers wrote nothing where they do see


def test_recordings_joined_with_a_timestamp_reset_are_refused_with_the_way_out(cluster, tmp_path):
    """Workers seek to their segment by time, and in two recordings joined bytewise every time is
    there twice: the run is refused before any worker, with the remux that makes the times continuous."""
    one = make_ts(tmp_path / "a.ts", 1)
    joined = tmp_path / "aa.ts"
    joined.write_bytes(one.read_bytes() * 2)
    with pytest.raises(
        InputError, match=r"aa\.ts: its timestamps jump at about (0\.9|1\.0) s .*without --ray.*-c copy"
    ):
        upscale(joined, tmp_path / "out.mp4", UpscaleOptions(**OPTS), cluster=cluster)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ts", "aa.ts"]
    upscale(one, tmp_path / "one.mp4", UpscaleOptions(**OPTS), cluster=cluster)  # one recording runs


def test_a_broadcast_recording_joins_as_one_process_writes_it(cluster, tmp_path):
    """A capture whose clock starts 1 h in, into .mkv: it starts at 0, and the workers' segments join
    into the bytes one process writes. Frame 40 is 0.5 ms after frame 39, which Matroska's milliseconds
    counted from the output's start (the sound, 10.67 ms before the picture) cannot tell apart: the
    worker that reads it from a seek moves it 1 ms on, as the driver's reading did."""
    src = make_broadcast(tmp_path / "rec.ts", audio_shift=-256, video_bsf="ts='if(eq(N,40),PREV_INPTS+45,PTS)'")
    opts = UpscaleOptions(**OPTS)
    one = upscale(src, tmp_path / "one.mkv", opts)
    two = upscale(src, tmp_path / "two.mkv", opts, cluster=cluster)
    assert two.frames == one.frames == 50 and sum(two.workers.values()) == 50  # (both workers: the test above)
    same_file(tmp_path / "one.mkv", tmp_path / "two.mkv")
    times = frame_times(tmp_path / "two.mkv")
    assert len(set(times)) == 50 and times[40] - times[39] == Fraction(1, 1000)
    with av.open(str(tmp_path / "two.mkv")) as c:
        assert c.start_time == 0 and c.duration is not None and c.duration < 2.1 * av.time_base


def test_auto_with_ray_address_is_probed_as_that_address(clip, tmp_path, capsys, monkeypatch):
    """--ray auto with RAY_ADDRESS naming a dead address: refused at once, as that address given to
    --ray is, naming RAY_ADDRESS (Ray itself retries it for good)."""
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    t0 = time.monotonic()
    code, err = run_cli(str(clip), "-o", str(tmp_path / "out.mp4"), "--ray", "auto", capsys=capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: --ray auto (RAY_ADDRESS=127.0.0.1:1): no Ray cluster answers there"), err
    assert time.monotonic() - t0 < 10 and list(tmp_path.iterdir()) == []


def test_a_refused_driver_is_said_with_its_cause(monkeypatch):
    """Ray's ConnectionError names only the address; the cause chained to it (a token the cluster
    wants) is what the line says, and `auto` blames RAY_ADDRESS only when Ray found no cluster."""
    from dove_cli.distributed import _refused

    def chained(text: str, cause: str) -> ConnectionError:
        try:
            try:
                raise RuntimeError(cause)
            except RuntimeError as inner:
                raise ConnectionError(text) from inner
        except ConnectionError as exc:
            return exc

    auth = chained(
        "Failed to connect to Ray cluster at 10.0.0.1:6379",
        "Failed to connect to GCS. ...\n"
        "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing",
    )
    for name in ("10.0.0.1:6379", "auto (RAY_ADDRESS=10.0.0.1:6379)", "auto"):
        line = str(_refused(name, auth))
        assert line.startswith(f"--ray {name}: the cluster refused this driver: authentication token missing or "
                               "incorrect") and "RAY_AUTH_MODE=token" in line and "RAY_AUTH_TOKEN" in line  # fmt: skip
        assert "not set" not in line
    missing = ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                              "setting `--address` flag or `RAY_ADDRESS` environment variable.")  # fmt: skip
    assert "RAY_ADDRESS is not set" in str(_refused("auto", missing))
    crashed = chained("Failed to connect to Ray cluster at 10.0.0.1:6379", "timed out")
    assert str(_refused("auto", crashed)) == "--ray auto: Failed to connect to Ray cluster at 10.0.0.1:6379"


def test_a_stalled_connect_is_bounded_and_sigterm_stops_it(clip, tmp_path, capsys, monkeypatch):
    """A connect that never ends (Ray Client's can stall for good): a one-line error after the time
    limit (exit 2); SIGTERM meanwhile is dove's one line and exit 143, not ray.init's own handler."""
    import socket
    import threading

    from dove_cli import distributed

    stalled = threading.Event()
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: stalled.wait(30))
    server = socket.create_server(("127.0.0.1", 0))  # something listens: the probe passes
    address = f"127.0.0.1:{server.getsockname()[1]}"
    try:
        monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 0.3)
        code, err = run_cli(str(clip), "-o", str(tmp_path / "a.mp4"), "--ray", address, capsys=capsys)
        assert code == 2 and err.splitlines()[-1].startswith(f"error: --ray {address}: the cluster did not take "
                                                             "this driver within 0 s"), err  # fmt: skip
        monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 30.0)
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        t0 = time.monotonic()
        code, err = run_cli(str(clip), "-o", str(tmp_path / "b.mp4"), "--ray", address, capsys=capsys)
        timer.join()
        assert code == 143 and err.splitlines()[-1] == "interrupted" and time.monotonic() - t0 < 5, err
        assert "Traceback" not in err and list(tmp_path.iterdir()) == []
    finally:
        stalled.set()
        server.close()


def test_a_cluster_gone_stops_the_run_at_once(monkeypatch, caplog):
    """`ray stop` mid-run: the driver finds the head gone when a worker is lost and stops with one
    line (exit 75), without saying that the frames go to a worker (there is none); Cluster.head_alive
    is False where nothing listens."""
    import socket

    from dove_cli.distributed import Cluster, ClusterGone, WorkerInfo, _Driver, _Slot

    server = socket.create_server(("127.0.0.1", 0))
    cluster = Cluster.__new__(Cluster)
    cluster.gcs_address, cluster.gone = f"127.0.0.1:{server.getsockname()[1]}", False
    assert cluster.head_alive()
    server.close()
    assert not cluster.head_alive()
    driver = _Driver.__new__(_Driver)
    driver.cluster, driver.batch, driver._head_checked = cluster, False, 0.0
    driver.jobs = [type("Job", (), {"input": Path("vlong.mp4")})()]
    with caplog.at_level(logging.WARNING), pytest.raises(ClusterGone) as exc:
        driver._lost(_Slot(0, None, WorkerInfo("w0")), RuntimeError("gone"))
    assert str(exc.value) == "vlong.mp4: the Ray cluster went away (`ray stop`, or its head node was lost)"
    assert exc.value.exit_code == 75 and cluster.gone and caplog.text == ""
    driver._head_checked, driver.slots = 0.0, []  # ...and while the workers' calls are out (never answered)
    with pytest.raises(ClusterGone):
        driver._wait()


def test_workers_beyond_the_room_are_said():
    """--workers past this machine's cores (--ray local, CPU), or past the GPUs (CPUs) a shared cluster
    has free: one warning saying what happens; none where they fit."""
    from dove_cli.distributed import _crowding

    assert (
        _crowding(4, False, 0, 4, 2, 300)
        == "this machine has 2 CPU cores; the 4 CPU workers share them (no faster than 2)"
    )
    assert _crowding(2, False, 0, 2, 2, 300) is None
    assert _crowding(3, False, 0, 4, 2, 300) is not None
    assert _crowding(3, True, 2, 8, None, 300) == ("2 of the cluster's GPUs are free (another job holds the rest?): "
                                                   "the workers wait for them, up to 300 s")  # fmt: skip
    assert _crowding(2, True, 2, 8, None, 300) is None
    assert _crowding(3, False, 0, 1, None, 300).startswith("1 of the cluster's CPUs is free")
    assert _crowding(1, False, 0, 1, None, 300) is None


def test_the_raylets_notes_are_held_back_unless_verbose(capsys, monkeypatch):
    """A worker's death comes with Ray's raylet paragraph on stdout: held back (dove says its own
    line), other output of the workers passed on, Ray's printer put back by close(); -v shows them,
    uncoloured into a file (RAY_COLOR_PREFIX=0, unset again by close())."""
    from dove_cli.distributed import _quiet_raylet

    worker = ray._private.worker
    seen = []
    printer = lambda data, ignore_prefix: seen.append(data["pid"])  # noqa: E731
    monkeypatch.setattr(worker, "print_to_stdstream", printer)
    monkeypatch.delenv("RAY_COLOR_PREFIX", raising=False)
    put_back = _quiet_raylet(ray)
    worker.print_to_stdstream({"pid": "raylet", "lines": ["A worker died"], "is_err": False}, False)
    worker.print_to_stdstream({"pid": 123, "lines": ["hello"], "is_err": False}, False)
    assert seen == [123] and "RAY_COLOR_PREFIX" not in os.environ
    put_back()
    assert worker.print_to_stdstream is printer
    dove = logging.getLogger("dove_cli")
    level = dove.level
    dove.setLevel(logging.INFO)  # -v
    try:
        put_back = _quiet_raylet(ray)
        assert worker.print_to_stdstream is printer and os.environ["RAY_COLOR_PREFIX"] == "0"  # (stdout: a file)
        put_back()
        assert "RAY_COLOR_PREFIX" not in os.environ
    finally:
        dove.setLevel(level)


RECONNECT = "RAY_gcs_rpc_server_reconnect_timeout_s"


@pytest.fixture
def fake_start(monkeypatch) -> dict[str, Any]:
    """A Cluster that starts no Ray runtime: ray.init, as Ray's does, writes on file descriptor 2 from a
    thread of its own (its C++ core's retry warnings) and puts its own SIGTERM handler in place; no
    workers. Returns what init saw."""
    from dove_cli import distributed

    seen: dict[str, Any] = {"up": False}

    def init(**kw: Any) -> None:
        seen["reconnect"] = os.environ.get(RECONNECT)
        core = threading.Thread(target=os.write, args=(2, b"ray core: retrying\n"))
        core.start()
        core.join()
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
        seen["up"] = True

    monkeypatch.setattr(ray, "is_initialized", lambda: seen["up"])
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: seen.update(up=False))
    monkeypatch.setattr(distributed.Cluster, "_start_workers", lambda self, *args: None)
    for name in ("RAY_COLOR_PREFIX", RECONNECT):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_a_python_cluster_leaves_the_process_as_it_was(fake_start, capfd):
    """Cluster() from Python (quiet=False): what another thread writes on stderr while Ray starts is
    not swallowed, Ray's printer is Ray's, and after close() the environment and SIGTERM's handler
    are as before; the reconnect limit was set only around ray.init."""
    from dove_cli.distributed import Cluster

    environ, sigterm, printer = (
        dict(os.environ),
        signal.getsignal(signal.SIGTERM),
        ray._private.worker.print_to_stdstream,
    )
    with Cluster("local", 1, device="cpu"):
        assert ray._private.worker.print_to_stdstream is printer and fake_start["up"]
        assert signal.getsignal(signal.SIGTERM) is sigterm and dict(os.environ) == environ
    assert "ray core: retrying" in capfd.readouterr().err and fake_start["reconnect"] == "15"
    assert dict(os.environ) == environ and signal.getsignal(signal.SIGTERM) is sigterm and not fake_start["up"]


def test_a_quiet_cluster_holds_rays_output_back_until_closed(fake_start, capfd):
    """quiet=True (the command line's): Ray's stderr while it starts goes nowhere and the raylet's
    notes are held back while the cluster lives; close() puts Ray's printer and the environment back."""
    from dove_cli.distributed import Cluster

    environ, printer = dict(os.environ), ray._private.worker.print_to_stdstream
    with Cluster("local", 1, device="cpu", quiet=True):
        assert ray._private.worker.print_to_stdstream is not printer
    assert "ray core" not in capfd.readouterr().err
    assert ray._private.worker.print_to_stdstream is printer and dict(os.environ) == environ


def test_the_command_line_starts_a_quiet_cluster_and_python_a_plain_one(clip, tmp_path, capsys, monkeypatch):
    """`dove upscale --ray` holds Ray's output back; upscale(ray=...) from a program does not."""
    from dove_cli import distributed

    quiet = []

    def no_workers(self: Any, *args: object, **kw: Any) -> None:
        quiet.append(kw["quiet"])
        raise OptionError("stopped before Ray")

    monkeypatch.setattr(distributed.Cluster, "__init__", no_workers)
    monkeypatch.setattr(distributed.Cluster, "close", lambda self: None)
    code, err = run_cli(
        str(clip), "-o", str(tmp_path / "a.mp4"), "--ray", "local", "--model", "bilinear", capsys=capsys
    )
    assert code == 2 and err.strip() == "error: stopped before Ray"
    with pytest.raises(OptionError, match="stopped before Ray"):
        upscale(clip, tmp_path / "b.mp4", **OPTS, ray="local")
    assert quiet == [True, False]


SCALE_2 = "--scale 2: DOVE was trained for x4; other factors upsample the input x2 before the model"


class Model(BilinearModel):
    """Bilinear, as a model that restores (not its input): a run at x2 warns that DOVE was trained for x4."""

    output_is_input = False

    def __init__(self) -> None:
        super().__init__("cpu")


def test_a_ray_run_lists_its_warnings_in_its_manifest_as_one_process(cluster, small_clip, tmp_path):
    """A --ray run's manifest (and result) lists the warnings it said, as one process's does: for one
    file, and for each file of a folder (the run's own, and the file's)."""
    from dove_cli.batch import upscale_batch

    opts = UpscaleOptions(**OPTS, preview="0+0.2s")  # 5 frames
    one = upscale(small_clip, tmp_path / "one.mp4", opts, manifest=str(tmp_path / "one.json"), restorer=Model())
    two = upscale(small_clip, tmp_path / "two.mp4", opts, cluster=cluster, manifest=str(tmp_path / "two.json"),
                  restorer=Model())  # fmt: skip
    said = json.loads((tmp_path / "one.json").read_text())["warnings"]
    assert len(said) == 1 and said[0].startswith(SCALE_2)
    assert json.loads((tmp_path / "two.json").read_text())["warnings"] == said == two.warnings == one.warnings
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=3, size="32x16")
    make_clip(src / "hdr.mkv", frames=3, size="32x16", vf="setparams=color_primaries=bt2020:color_trc=arib-std-b67:"
              "colorspace=bt2020nc", extra=("-color_trc", "arib-std-b67"))  # fmt: skip
    upscale_batch(src, tmp_path / "out", opts, cluster=cluster, manifest=tmp_path / "folder.json", restorer=Model())
    upscale_batch(src, tmp_path / "out1", opts, manifest=tmp_path / "folder1.json", restorer=Model())  # one process

    def listed(manifest: Path) -> dict[str, list[str]]:
        return {Path(f["input"]).name: f["warnings"] for f in json.loads(manifest.read_text())["files"]}

    files = listed(tmp_path / "folder.json")
    assert files == listed(tmp_path / "folder1.json")
    assert files["a.mp4"] == said
    assert files["hdr.mkv"][1] == said[0] and len(files["hdr.mkv"]) == 2  # (said as the file is probed, then planned)
    assert files["hdr.mkv"][0].startswith(f"{src / 'hdr.mkv'}: HDR video (HLG)")


class Hungry(Model):
    """Model, planned past the host's free memory (a window takes as much as its RAM) and at a week
    a window: one process says both (host memory, an impractical time) before the scale note."""

    def estimate_window_bytes(self, frames, height, width, vae_tiled=False, offload="none"):
        import psutil

        return psutil.virtual_memory().total

    def estimate_seconds(self, frames, height, width):
        return 8 * 86400.0


def test_a_ray_run_says_the_plan_warnings_of_one_process(cluster, small_clip, tmp_path, caplog):
    """The worker that plans a file says its plan's warnings as one process does (say_plan, on the
    worker's memory and model, its advice worded for the driver's reader: the command line's flags
    here), and the driver says them and lists them in the manifest."""
    from dove_cli.errors import command_line

    opts = UpscaleOptions(**OPTS, preview="0+0.2s")
    with command_line():
        upscale(small_clip, tmp_path / "one.mp4", opts, manifest=str(tmp_path / "one.json"), restorer=Hungry())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dove_cli"):
            two = upscale(small_clip, tmp_path / "two.mp4", opts, cluster=cluster,
                          manifest=str(tmp_path / "two.json"), restorer=Hungry())  # fmt: skip

    def figures_out(texts: list[str]) -> list[str]:  # (the memory available is measured in each process)
        return [re.sub(r"\d+(\.\d+)?", "N", text) for text in texts]

    said = json.loads((tmp_path / "one.json").read_text())["warnings"]
    assert "the smallest plan (with --chunk auto)" in said[0]
    assert len(said) == 3 and re.match(
        r"this run needs about [\d.]+ GiB of host memory and [\d.]+ GiB is available", said[0]
    )
    assert said[1].startswith("this run would take about 8 days on this machine's CPU (estimate): not practical")
    assert said[2].startswith(SCALE_2)
    ray_said = json.loads((tmp_path / "two.json").read_text())["warnings"]
    assert figures_out(ray_said) == figures_out(two.warnings) == figures_out(said)
    assert figures_out(caplog.messages) == figures_out(said)  # on the driver, each once


def test_a_ray_result_is_one_process_result_but_for_time_and_place(cluster, clip, tmp_path):
    """UpscaleResult.of_parts: a --ray file's result has one process's fields (frames, plan, cuts,
    tiles, windows, ...); only the time, the process's peak memory and where it ran differ."""
    from dataclasses import fields

    opts = UpscaleOptions(**OPTS, preview="0+2s")  # 50 frames, a cut at 40
    one = upscale(clip, tmp_path / "one.mp4", opts)
    two = upscale(clip, tmp_path / "two.mp4", opts, cluster=cluster)
    differ = {f.name for f in fields(one) if getattr(one, f.name) != getattr(two, f.name)}
    # output: another file; seconds and stages: timings (Ray's stages add the driver's "prepass");
    # peak_host_bytes: a process's (the workers' largest, here); workers: the frames each Ray worker made
    assert differ == {"output", "seconds", "stages", "peak_host_bytes", "workers"}
    assert one.cuts == [40] and one.frames == 50 and one.windows_run == two.windows_run > 0
    assert sum(two.workers.values()) == 50 and "prepass" in two.stages


def test_a_note_a_worker_says_is_said_on_the_driver(cluster, small_clip, tmp_path, caplog):
    """--scale 1 of a model that restores: the worker that plans the file notes it (dove_cli.note, not
    a warning: shown, not listed), and the driver says it once."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dove_cli.note"):
        two = upscale(small_clip, tmp_path / "two.mp4", **{**OPTS, "scale": 1}, preview="0+0.2s", cluster=cluster,
                      restorer=Model())  # fmt: skip
    noted = [r.getMessage() for r in caplog.records if r.name == "dove_cli.note" and "--scale 1" in r.getMessage()]
    assert len(noted) == 1 and noted[0].startswith("--scale 1: the model restores the input at its own size")
    assert two.warnings == []


def test_what_a_worker_says_as_it_loads_the_model_is_said_once_and_listed(cluster, small_clip, tmp_path, caplog):
    """--attention on a model without attention: each worker says so as it loads the model; the
    driver says it once and lists it, as one process does."""
    opts = UpscaleOptions(**OPTS, preview="0+0.2s", attention="math")
    upscale(small_clip, tmp_path / "one.mp4", opts, manifest=str(tmp_path / "one.json"))
    for actor in cluster.actors:  # each worker loads this run's model (not one an earlier test left it)
        ray.get(actor.warm.remote(UpscaleOptions(**OPTS), []))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dove_cli"):
        two = upscale(small_clip, tmp_path / "two.mp4", opts, cluster=cluster, manifest=str(tmp_path / "two.json"))
    said = json.loads((tmp_path / "one.json").read_text())["warnings"]
    assert said == ["--attention: --model bilinear has no attention"]
    assert json.loads((tmp_path / "two.json").read_text())["warnings"] == two.warnings == said
    assert caplog.messages == said


def test_closed_captions_a_worker_finds_late_are_said_at_the_join(cluster, tmp_path, caplog, monkeypatch):
    """Captions from frame 8 on, past what the check before the run reads: a worker's segment writer
    finds them, and the driver says at the join, as one process does, that the output lost them."""
    from dove_cli.video_io import captions
    from media import make_caption_ts

    src = make_caption_ts(tmp_path / "late.ts", frames=24, first=8)
    monkeypatch.setattr(captions, "CAPTION_SCAN_S", 0.2)  # (the driver's probe: the workers get its VideoInfo)
    with caplog.at_level(logging.WARNING):
        r = upscale(src, tmp_path / "run.mkv", model="bilinear", scale=1, codec="ffv1", device="cpu", cluster=cluster)
    said = [m for m in caplog.messages if "captions" in m]
    assert said == [f"{tmp_path / 'run.mkv'}: the input's closed captions (EIA-608/708 in the video), found from "
                    "0.3 s on, are not kept: ffv1 cannot carry them (h264 and hevc keep them)"]  # fmt: skip
    assert said[0] in r.warnings


def test_a_worker_loads_the_model_again_for_other_model_options(cluster):
    """A worker keeps its model while the options load_model reads stay the same; --attention is one."""
    from dove_cli.models import MODEL_FIELDS, model_key

    actor = cluster.actors[0]
    base = UpscaleOptions(model="tiny", device="cpu")

    def loads(opts: UpscaleOptions) -> int:
        ray.get(actor.warm.remote(opts, []))
        return ray.get(actor.hello.remote())["loads"]

    first = loads(base)
    assert loads(replace(base, scale=2, tile=64)) == first  # options of the run, not of the model
    assert loads(replace(base, attention="math")) == first + 1
    # what load_model reads (models.py: load_model, _load, random_size, model_folder), each in the key
    read = {"model", "attention", "compile", "download", "offload", "posterior", "quantize", "vae_tiling"}
    assert set(MODEL_FIELDS) == read
    import torch

    key = model_key(base, torch.device("cpu"), torch.float32)
    assert model_key(base, torch.device("cpu"), torch.bfloat16) != key
    assert model_key(replace(base, attention="math", scale=2), torch.device("cpu"), torch.float32) != key


def test_the_cluster_picks_the_dtype_a_run_picks(cluster):
    import torch

    from dove_cli.distributed import Cluster

    assert cluster.dtype(UpscaleOptions()) == torch.float32  # CPU workers
    assert Cluster.dtype(type("OnGPU", (), {"device": "cuda"})(), UpscaleOptions()) == torch.bfloat16  # type: ignore[arg-type]
    assert cluster.dtype(UpscaleOptions(dtype="fp16")) == torch.float16


class Buggy(BilinearModel):
    """Bilinear with bugs: restore() raises a TypeError (on the worker), from one line for frames
    less than 80 pixels wide and from another for wider ones."""

    def __init__(self) -> None:
        super().__init__("cpu")

    def restore(self, video, generator=None, timer=None):
        if video.shape[-1] < 80:
            raise TypeError("a bug in restore")
        raise TypeError("another bug in restore")


def test_a_bug_in_a_worker_is_logged_with_its_traceback_once_per_place(cluster, tmp_path, caplog):
    """A folder run on Ray whose files hit bugs in dove on the workers: each file fails with one line,
    the folder goes on, and each bug is logged at ERROR once per place it is raised from (a and c:
    one place, b another), with the worker's traceback."""
    from dove_cli.batch import upscale_batch

    src = tmp_path / "in"
    src.mkdir()
    for name, size in (("a.mp4", "32x24"), ("b.mp4", "48x32"), ("c.mp4", "32x24")):
        make_clip(src / name, frames=3, size=size)
    with caplog.at_level(logging.DEBUG, logger="dove_cli"):
        result = upscale_batch(src, tmp_path / "out", **OPTS, cluster=cluster, restorer=Buggy())
    assert [i.status for i in result.items] == ["failed"] * 3
    assert [(i.error or "").split("a Ray worker failed: ")[1] for i in result.items] == [
        "TypeError: a bug in restore", "TypeError: another bug in restore", "TypeError: a bug in restore"]  # fmt: skip
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("a bug in dove" in r.getMessage() for r in errors)
    logged = sorted((caplog.handler.format(r) for r in errors), key=lambda text: "another bug" in text)
    assert all('test_ray.py", line' in text and "in restore" in text for text in logged)
    assert 'raise TypeError("a bug in restore")' in logged[0] and "another bug" not in logged[0]
    assert 'raise TypeError("another bug in restore")' in logged[1]


def test_the_head_address_is_dialled_once(clip, tmp_path, monkeypatch):
    """--ray HOST:PORT: the address is probed once a run (by Cluster), not once more before it."""
    from dove_cli import distributed

    dialled = []
    monkeypatch.setattr(distributed, "_dial", lambda host, port, timeout: dialled.append((host, port)))
    monkeypatch.setattr(distributed, "_join_cluster", lambda *args: None)  # (no Ray runtime is started)

    def no_workers(*args: object) -> None:
        raise OptionError("stopped before the workers")

    monkeypatch.setattr(distributed.Cluster, "_start_workers", no_workers)
    with pytest.raises(OptionError, match="stopped before the workers"):
        upscale(clip, tmp_path / "out.mp4", **OPTS, ray="127.0.0.1:1")
    assert dialled == [("127.0.0.1", 1)]
