"""A --ray file's bookkeeping (distributed_jobs.Job), without Ray: which segments are handed out again
when a worker dies or a tile change makes them stale, and when a file can be joined. Expected values are
worked out by hand from the segments below (three of 10 frames, windows of 9 frames every 7)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from dove_cli.distributed_jobs import MAX_DEATHS, MAX_STALE, Job, JobState, SegmentPlan, WorkersLost
from dove_cli.resume import Segment


def running_job(segments: int = 3, target: int = 20) -> Job:
    """A running job of `segments` segments of 10 frames (indices 0.., first frames 0, 10, 20, ...),
    planned with whole frames (tile 0), none saved."""
    job = Job(0, Path("in.mp4"), Path("out.mp4"), state=JobState.RUNNING, target=target)
    job.plan = SimpleNamespace(tile=0, frames=10 * segments)  # type: ignore[assignment]
    for i in range(segments):
        windows = [(w, w + 9) for w in range(0, 10 * segments, 7) if w < 10 * i + 10 and w + 9 > 10 * i]
        job.add_segment(SegmentPlan(i, 10 * i, 10 * i + 10, 10 * i + 10, windows[0][0], None, [], [], windows,
                                    i == segments - 1), None)  # fmt: skip
    return job


def made(job: Job, index: int, tile: int = 0) -> tuple[Segment, list[tuple[int, int]]]:
    """Segment `index` as a worker reports it, its windows run with `tile`."""
    seg = job.segments[index]
    return Segment(f"seg_{seg.first:09d}.mov", seg.first, 10, seg.first), [(w, tile) for w, _ in seg.windows]


def test_a_segment_its_worker_did_not_report_is_handed_out_again():
    job = running_job()
    assert job.pending == {0, 1, 2} and job.next_segments() == [0, 1]  # 20 frames: the target
    job.hand_out("t1", [0, 1])
    assert job.pending == {2} and job.next_segments() == [2]
    assert job.accept(0, *made(job, 0), "w0")
    assert job.give_back("t1", [0, 1], died=True) == [1]  # the worker died after saving segment 0
    assert job.pending == {1, 2} and not job.running and (job.redone, job.deaths[1]) == (1, 1)
    assert job.next_segments() == [1, 2] and job.workers == {"w0": 10}
    job.hand_out("t2", [1, 2])
    assert job.give_back("t2", [1, 2]) == [1, 2]  # a task that ended without them: not a death
    assert (job.redone, job.deaths[1]) == (1, 1) and job.failing is None
    for n in range(MAX_DEATHS - 1):  # ...and workers that keep dying on the same frames stop the file
        job.hand_out(f"t{n + 3}", [1, 2])
        job.give_back(f"t{n + 3}", [1, 2], died=True)
    assert isinstance(job.failing, WorkersLost)
    assert str(job.failing) == f"in.mp4: {MAX_DEATHS} Ray workers died making frames 10-29 (out of host memory?)"


def test_a_tile_change_makes_the_segments_of_later_windows_again():
    job = running_job()
    job.hand_out("t1", [0, 1, 2])
    assert job.accept(0, *made(job, 0), "w0") and job.accept(2, *made(job, 2), "w0")
    assert job.tile_change(14, 64)  # windows from frame 14 on: 14, 21, 28 (segments 1 and 2)
    assert not job.tile_change(14, 64)  # (heard again from another worker)
    assert job.changes == [(14, 64)] and sorted(job.done) == [0] and job.pending == {2} and job.stale[2] == 1
    assert not job.accept(1, *made(job, 1, tile=0), "w1")  # made before its worker heard of it
    assert job.pending == {1, 2} and job.stale[1] == 1 and sorted(job.done) == [0]
    job.hand_out("t2", [1, 2])
    tiles = [(7, 0), (14, 64)]  # segment 1's windows, as the change gives them
    assert job.accept(1, made(job, 1)[0], tiles, "w1") and job.tiles[1] == tiles
    assert job.tile_change(7, 32) and job.changes == [(7, 32), (14, 64)]  # kept in window order
    assert job.pending == {0, 1} and sorted(job.done) == [] and job.retries == 2  # both ran window 7 whole


def test_a_segment_made_stale_too_often_stops_the_file():
    job = running_job(segments=1)
    for n in range(MAX_STALE + 1):
        job.hand_out(f"t{n}", [0])
        assert not job.accept(0, *made(job, 0, tile=0), "w0") or n == 0
        if n == 0:
            job.tile_change(0, 64)
    assert job.stale[0] == MAX_STALE + 1 and isinstance(job.failing, WorkersLost)


def test_a_file_is_complete_once_every_segment_is_saved_and_the_prepass_ended():
    job = running_job()
    job.hand_out("t1", [2])
    job.hand_out("t2", [0, 1])
    for i in (2, 0):
        assert job.accept(i, *made(job, i), "w0")
    assert not job.complete()
    assert job.accept(1, *made(job, 1), "w1") and not job.complete()  # the pre-pass may close more segments
    job.prepass_done = True
    assert job.complete() and [s.first for s in job.saved()] == [0, 10, 20]  # in frame order
    assert not job.accept(1, *made(job, 1), "w1") and job.frames_done() == 30  # a segment heard twice


def test_a_segment_saved_by_an_interrupted_run_is_not_made_again():
    job = running_job(segments=0)
    job.add_segment(SegmentPlan(0, 0, 10, 10, 0, None, [], [], [(0, 9), (7, 16)], False), Segment("s", 0, 10, 0))
    job.add_segment(SegmentPlan(1, 10, 20, 20, 7, None, [], [], [(7, 16), (14, 23)], True), Segment("s", 10, 6, 10))
    assert sorted(job.done) == [0] and job.pending == {1} and job.resumed == 10  # (the second was cut short)
    assert job.tiles[0] == [(0, 0), (7, 0)]
