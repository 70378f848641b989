"""`dove upscale in_dir/ -o out_dir/`: every video, one model load, existing outputs skipped, a bad
file reported at the end (exit 4: partly done) without stopping the others."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dove_cli.models as models
from dove_cli.batch import plan_batch, upscale_batch
from dove_cli.errors import InputError, ModelError, OptionError, OutputError
from dove_cli.outputs import find_videos, is_batch_input
from dove_cli.resume import SEGMENT_MIN_FRAMES, UNFINISHED_QUIET_S, work_folder
from media import FFMPEG, decoded_frame_count, ffinfo, ffmpeg, make_clip, make_ts, make_vfr_clip, raw_rgb, top_boxes
from test_resume import _FailAfter, framemd5

OPTS = dict(model="bilinear", scale=2, chunk=9, chunk_overlap=2, tile=0, device="cpu", codec="ffv1")


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=6)
    make_clip(src / "b.mkv", frames=5, size="32x24")
    (src / "c.mp4").write_text("not a video\n")  # the bad file
    (src / "notes.txt").write_text("ignored\n")
    return src


def test_batch_loads_the_model_once_skips_existing_and_keeps_going(folder, tmp_path, monkeypatch):
    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a: loads.append(1) or real(*a))
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(folder / "b.mkv", out / "b.mkv")  # a finished output: a video as long as its input
    seen = []
    result = upscale_batch(folder, out, on_file=lambda i, item: seen.append((item.input.name, item.status)), **OPTS)
    assert [(i.input.name, i.status) for i in result.items] == [
        ("a.mp4", "done"),
        ("b.mkv", "skipped"),
        ("c.mp4", "failed"),
    ]
    assert seen == [
        ("a.mp4", "running"),
        ("a.mp4", "done"),
        ("b.mkv", "skipped"),
        ("c.mp4", "running"),
        ("c.mp4", "failed"),
    ]
    assert len(loads) == 1
    assert "c.mp4" in result.failed[0].error
    assert decoded_frame_count(out / "a.mp4") == 6
    assert (out / "b.mkv").read_bytes() == (folder / "b.mkv").read_bytes()
    assert not list(out.glob("c*")) and not list(out.glob(".*.part*"))  # nothing half-written
    assert [p.name for p in (out / ".dove-sources").iterdir()] == ["a.mp4.json"]  # what made the one made

    result = upscale_batch(folder, out, overwrite=True, **OPTS)
    assert [i.status for i in result.items] == ["done", "done", "failed"]
    assert decoded_frame_count(out / "b.mkv") == 5


def test_batch_cli_reports_failures_and_exits_4_when_partly_done(folder, tmp_path, capsys, caplog):
    """Some files done and one failed: exit 4 (a partial result), and --manifest writes the folder's
    JSON, an entry per file; every file failed: exit 2 (fix the inputs)."""
    import json
    import logging

    from dove_cli.cli import main

    out, manifest = tmp_path / "out", tmp_path / "run.json"  # created by the batch
    (folder / "extras").mkdir()
    (folder / "extras" / "nested.mkv").touch()  # (a folder without videos is not named: test_left_out_...)
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exc:
        main(["upscale", str(folder), "-o", str(out), "--model", "bilinear", "--scale", "2", "--tile", "0",
              "--codec", "ffv1", "--quiet", "--manifest", str(manifest)])  # fmt: skip
    assert exc.value.code == 4
    err = capsys.readouterr().err
    assert "failed:" in err and "c.mp4" in err and "Traceback" not in err
    assert "error: 1 of 3 files failed (listed above)" in err
    assert decoded_frame_count(out / "a.mp4") == 6 and decoded_frame_count(out / "b.mkv") == 5
    assert caplog.text.count("sub-folders are not searched (extras)") == 1
    doc = json.loads(manifest.read_text())
    assert (doc["status"], doc["exit_code"], doc["counts"]) == ("partial", 4, {"done": 2, "failed": 1})
    assert doc["options"]["manifest"] == str(manifest) and doc["input"] == str(folder)
    entries = {Path(f["input"]).name: f for f in doc["files"]}
    assert [entries[n]["status"] for n in ("a.mp4", "b.mkv", "c.mp4")] == ["done", "done", "failed"]
    assert entries["a.mp4"]["frames"] == 6 and entries["a.mp4"]["dropped_frames"] == 0
    assert entries["a.mp4"]["output"] == str(out / "a.mp4") and entries["a.mp4"]["error"] is None
    assert entries["a.mp4"]["result"]["frames"] == 6 and entries["a.mp4"]["plan"]["frames"] == 6
    assert "c.mp4: not a video" in entries["c.mp4"]["error"] and entries["c.mp4"]["frames"] is None
    assert not list(out.glob("*.json"))  # no per-file manifests

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_text("not a video\n")
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(bad), "-o", str(tmp_path / "out2"), "--model", "bilinear", "--quiet"])
    assert exc.value.code == 2 and "error: its 1 file failed (listed above)" in capsys.readouterr().err


def test_a_bug_in_dove_fails_its_files_with_one_traceback_and_the_folder_goes_on(tmp_path, capsys, caplog, monkeypatch):
    """A TypeError inside a file's run is a bug in dove, not the file's fault: the folder goes on (exit 4,
    the file listed as failed), and its traceback is logged once at ERROR for the report, not per file."""
    import dove_cli.upscaling as upscaling
    from dove_cli.cli import main

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        make_clip(src / name, frames=2, size="32x24")
    real = upscaling.upscale

    def buggy(input, *args, **kwargs):
        if Path(input).name != "a.mkv":
            raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")
        return real(input, *args, **kwargs)

    monkeypatch.setattr(upscaling, "upscale", buggy)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(out), "--model", "bilinear", "--scale", "1", "--codec", "ffv1", "--quiet"])
    assert exc.value.code == 4
    err = capsys.readouterr().err
    assert decoded_frame_count(out / "a.mkv") == 2
    assert "b.mkv: TypeError: unsupported operand" in err and "c.mkv: TypeError: unsupported operand" in err
    [bug] = [r for r in caplog.records if r.levelno >= logging.ERROR]  # once, not once per file
    assert bug.exc_info is not None and bug.exc_info[0] is TypeError
    assert bug.getMessage().startswith(f"{src / 'b.mkv'}: TypeError: unsupported operand")
    assert "a bug in dove (please report it, with this traceback" in bug.getMessage()


def test_only_finished_outputs_are_skipped(tmp_path, capsys):
    """A --preview run into the folder, an empty file or a cut-off one under an output's name were
    skipped as finished by the full run (exit 0): each is now failed with why, on one line, and
    the finished outputs (a VFR one too) are still skipped."""
    from dove_cli.cli import main

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a", "b", "c", "d"):
        make_clip(src / f"{name}.mkv", frames=30, rate="24")  # 1.25 s
    make_vfr_clip(src / "v.mkv", frames=30)
    args = ["upscale", str(src), "-o", str(out), "--model", "bilinear", "--scale", "2", "--tile", "0", "--quiet"]

    def run(*more: str) -> tuple[int, list[str]]:
        with pytest.raises(SystemExit) as exc:
            main([*args, *more])
        return exc.value.code, [line for line in capsys.readouterr().err.splitlines() if "failed" in line]

    assert run("--preview", "0.25+0.5s") == (0, [])
    assert run("--preview", "0.25+0.5s") == (0, [])  # the same preview again: finished
    for name in ("a", "b"):
        (out / f"{name}.mkv").unlink()
    code, said = run("--dry-run")  # as the run will end
    assert code == 4 and len(said) == 4 and "c.mkv: exists but its video is 0.5 s of 1.2 s" in said[0]
    assert run() == (4, [f"failed: {out / n}.mkv: exists but its video is 0.5 s of {s} s (a --preview, or cut off?); "
                         "delete it, or use --overwrite (which redoes every file), to redo it" for n, s in
                         (("c", "1.2"), ("d", "1.2"), ("v", "1.0"))] + ["error: 3 of 5 files failed (listed above)"])  # fmt: skip
    for name in ("c", "d", "v"):
        (out / f"{name}.mkv").unlink()
    assert run() == (0, [])  # a, b from the first failed run; c, d, v now
    whole = (out / "c.mkv").read_bytes()
    (out / "c.mkv").write_bytes(b"")
    (out / "d.mkv").write_bytes(whole[: len(whole) // 2])
    code, said = run("--manifest", str(tmp_path / "m.json"))
    assert code == 4 and said[0] == (
        f"failed: {out / 'c.mkv'}: exists but is not a video dove can read (empty or "
        "cut off?); delete it, or use --overwrite (which redoes every file), to redo it"
    )
    assert re.fullmatch(rf"failed: {re.escape(str(out / 'd.mkv'))}: exists but its video is 0\.\d s of 1\.2 s \(a "
                        r"--preview, or cut off\?\); delete it, .*", said[1])  # fmt: skip
    doc = json.loads((tmp_path / "m.json").read_text())
    assert [f["status"] for f in doc["files"]] == ["skipped", "skipped", "failed", "failed", "skipped"]
    assert (out / "c.mkv").read_bytes() == b""  # left as it was
    assert run("--overwrite")[0] == 0 and (out / "c.mkv").read_bytes() == whole


def test_left_out_names_folders_of_videos_and_sidecar_subtitles(tmp_path, caplog):
    """A season folder: Fonts/ and Scans/ hold no video and are not named, Extras/ is; subtitle files
    beside the videos are said once as not copied, a VobSub .sub (MPEG-PS inside) among them, not
    taken for a video without its extension."""
    import logging

    from dove_cli.batch import say_left_out

    season = tmp_path / "season"
    for name in ("Fonts/a.ttf", "Scans/cover.jpg", "Extras/NCOP.mkv", "ep01.mkv", "ep01.ass", "ep02.mkv"):
        (season / name).parent.mkdir(parents=True, exist_ok=True)
        (season / name).touch()
    (season / "ep02.sub").write_bytes(b"\x00\x00\x01\xba" + bytes(400))  # a VobSub pack header
    (season / "ep03.srt\r").touch()  # written by a script with Windows line endings: named, its end shown
    (season / "ep04.vtt ").touch()
    with caplog.at_level(logging.WARNING):
        say_left_out(season)
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"{season}: sub-folders are not searched (Extras); recursive=True searches them",
                    f"{season}: subtitle files are not copied (ep01.ass, ep02.sub, 'ep03.srt\\r', 'ep04.vtt '): copy "
                    "them beside the outputs, named as their video's output, for players to load them"], said  # fmt: skip


def _flat(path: Path, colour: str, frames: int = 3) -> Path:
    """A clip of one colour (32x24, FFV1): its upscale is that colour too."""
    ffmpeg("-f", "lavfi", "-i", f"color=c={colour}:s=32x24:r=25", "-frames:v", str(frames), "-c:v", "ffv1", path)
    return path


def test_an_output_is_skipped_only_while_its_input_is_the_file_that_made_it(tmp_path):
    """A re-captured source of the same length was skipped and its stale output kept (exit 0). A note
    beside the outputs (.dove-sources/) says what made each: a changed input is failed, in one line,
    until --overwrite redoes it. The same file moved elsewhere, or its time kept to FAT's 2 s, is
    still skipped; an output without a note (an older dove's) is judged by its length, to one frame
    for a short clip (a 3-frame output passed for a 5-frame input)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    tape = _flat(src / "tape.mkv", "blue")
    assert [i.status for i in upscale_batch(src, out, **OPTS).items] == ["done"]
    made = tape.stat()
    note = json.loads((out / ".dove-sources" / "tape.mkv.json").read_text())
    assert (note["input_bytes"], note["input_mtime_ns"], note["output_bytes"]) == (
        made.st_size, made.st_mtime_ns, (out / "tape.mkv").stat().st_size)  # fmt: skip
    os.utime(tape, ns=(made.st_atime_ns, made.st_mtime_ns + 10**9))  # copied onto FAT: its time to 2 s
    moved = tmp_path / "moved"
    src.rename(moved)
    assert [i.status for i in upscale_batch(moved, out, **OPTS).items] == ["skipped"]
    _flat(moved / "tape.mkv", "yellow")  # re-captured
    os.utime(moved / "tape.mkv", ns=(made.st_atime_ns, made.st_mtime_ns + 60 * 10**9))
    error = upscale_batch(moved, out, **OPTS).items[0].error
    assert re.fullmatch(
        rf"{re.escape(str(out / 'tape.mkv'))}: its input has changed since it was made on \d{{4}}-\d\d-\d\d \d\d:\d\d "
        rf"\(then {made.st_size:,} bytes, modified [-\d: ]+; tape.mkv is now {(moved / 'tape.mkv').stat().st_size:,} "
        rf"bytes, modified [-\d: ]+\); it was made from {re.escape(str(tmp_path / 'in' / 'tape.mkv'))}; delete it, "
        r"or use overwrite=True \(which redoes every file\), to redo it", error or ""), error  # fmt: skip
    stale, yellow = raw_rgb(out / "tape.mkv")[:3], raw_rgb(moved / "tape.mkv")[:3]
    assert stale != yellow and stale[2] > 200  # still blue: left as it was, and not counted as done
    assert [i.status for i in upscale_batch(moved, out, overwrite=True, **OPTS).items] == ["done"]
    assert max(abs(a - b) for a, b in zip(raw_rgb(out / "tape.mkv")[:3], yellow, strict=True)) <= 2
    _flat(moved / "tape.mkv", "green")  # re-captured again, and an output put in its place by hand:
    os.utime(moved / "tape.mkv", ns=(made.st_atime_ns, made.st_mtime_ns + 120 * 10**9))
    _flat(out / "tape.mkv", "green")  # the note, of another file, says nothing of it
    assert [i.status for i in plan_batch(moved, out)] == ["skipped"]
    shutil.rmtree(out / ".dove-sources")  # outputs of an older dove: their length alone tells
    _flat(moved / "short.mkv", "red", frames=5)
    _flat(out / "short.mkv", "red", frames=3)
    assert [(i.status, i.error) for i in plan_batch(moved, out)] == [
        ("failed", f"{out / 'short.mkv'}: exists but its video is 0.1 s of 0.2 s (a --preview, or cut off?); delete it, "
                   "or use overwrite=True (which redoes every file), to redo it"),
        ("skipped", None)]  # fmt: skip
    ts = tmp_path / "ts"  # MPEG-TS: its length reads two frames short (no packet durations, H.264's B-frame delay)
    ts.mkdir()
    make_clip(ts / "rec.ts", frames=5, size="32x24")
    assert [i.status for i in upscale_batch(ts, out, **{**OPTS, "codec": None}).items] == ["done"]
    (out / ".dove-sources" / "rec.ts.json").unlink()
    assert [i.status for i in plan_batch(ts, out)] == ["skipped"]


def test_a_file_still_being_copied_is_failed_not_upscaled_in_part(tmp_path):
    """A Matroska capture still being copied (streamed: no length in its header) was upscaled from the
    frames there were and reported done. Its size is checked again at the end of its run: it grew,
    so it is failed (InputChanged, in the manifest too), nothing is left at its name or kept, and
    the next run, once the copy is whole, makes all of it."""
    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "run.json"
    src.mkdir()
    frames = SEGMENT_MIN_FRAMES + 20  # a closed segment to drop: the frames of a file no longer there
    live = subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v",
                           str(frames), "-c:v", "ffv1", "-f", "matroska", "-"], capture_output=True, check=True).stdout  # fmt: skip
    capture = src / "capture.mkv"
    capture.write_bytes(live[: len(live) * 2 // 3])
    began = capture.stat().st_size

    def copy_goes_on(p) -> None:
        if p.status == "upscaling" and capture.stat().st_size < len(live):
            with open(capture, "ab") as f:
                f.write(live[began:])

    item = upscale_batch(src, out, progress=copy_goes_on, manifest=str(manifest), **OPTS).items[0]
    assert (item.status, item.error_type, item.error) == ("failed", "InputChanged", (
        f"{capture}: the input changed while it was read ({began:,} bytes when the run began, {len(live):,} at its "
        "end: still being copied or recorded, or a disk or card failing?); nothing was kept; upscale it again once "
        "it is complete"))  # fmt: skip
    assert not out.exists()  # no output, no work folder kept: the folder this run made is gone again
    entry = json.loads(manifest.read_text())["files"][0]
    assert (entry["status"], entry["error_type"]) == ("failed", "InputChanged")
    done = time.time() - UNFINISHED_QUIET_S  # (a copy done a while ago: its run does not watch it grow)
    os.utime(capture, (done, done))
    assert [i.status for i in upscale_batch(src, out, **OPTS).items] == ["done"]
    assert decoded_frame_count(out / "capture.mkv") == frames


def test_batch_dry_run_plans_every_file_and_writes_nothing(folder, tmp_path, capsys, caplog):
    """`--dry-run` on a folder: a row per video with the plan its single-file dry run makes, existing
    outputs marked as the run would skip them, a file that cannot be planned named (exit 4, as the run
    would end: partly done), and the
    run's warning that a nested video is left out (the plan said nothing of it)."""
    import logging

    from dove_cli.cli import main
    from dove_cli.upscaling import upscale

    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(folder / "b.mkv", out / "b.mkv")
    (folder / "extras").mkdir()
    make_clip(folder / "extras" / "nested.mp4", frames=5)
    args = ["upscale", str(folder), "-o", str(out), "--model", "bilinear", "--scale", "2", "--chunk", "5",
            "--chunk-overlap", "0", "--tile", "96", "--dry-run"]  # fmt: skip
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exc:
        main(args)
    assert caplog.text.count("sub-folders are not searched (extras)") == 1
    assert exc.value.code == 4
    captured = capsys.readouterr()
    alone = upscale(folder / "a.mp4", out / "a.mp4", model="bilinear", scale=2, chunk=5, chunk_overlap=0, tile=96,
                    dry_run=True)  # fmt: skip
    rows = {cells[0]: cells for cells in (line.replace("|", " ").split() for line in captured.out.splitlines())
            if cells and cells[0][:1] in "abc"}  # fmt: skip
    assert rows["a.mp4"][1:4] == [str(alone.frames), "64x48->128x96", str(alone.windows())]
    assert alone.frames == 6 and alone.chunks == 2 and alone.windows() == 2 * alone.tiles > 2
    assert "skip: output exists" in " ".join(rows["b.mkv"]) and "error" in rows["c.mp4"]
    assert (
        "1 to upscale (6 frames), 1 skipped (output exists; --overwrite to redo), 1 cannot be planned" in captured.out
    )
    assert "failed:" in captured.err and "c.mp4" in captured.err and "Traceback" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["b.mkv"]  # nothing written, nothing started
    with pytest.raises(SystemExit) as exc:  # the folder's manifest: each file's plan, nothing run
        main([*args, "--manifest", str(tmp_path / "m.json")])
    doc = json.loads((tmp_path / "m.json").read_text())
    assert exc.value.code == 4 and [f["status"] for f in doc["files"]] == ["planned", "skipped", "failed"]
    assert doc["files"][0]["plan"]["frames"] == 6 and doc["files"][0]["result"] is None


def test_batch_dry_run_shows_sizes_as_players_show_them(tmp_path, capsys):
    """A phone folder's portrait clips (stored 64x48, turned 90 degrees by their tag) were listed as
    64x48->128x96, landscape, where each file's own --dry-run says `shown 96x128`: the table shows the
    sizes players show, as that line does, and says so under it."""
    from dove_cli.cli import main
    from dove_cli.upscaling import upscale

    src = tmp_path / "in"
    src.mkdir()
    ffmpeg("-display_rotation:v", "90", "-i", make_clip(tmp_path / "base.mp4", frames=3), "-c", "copy",
           src / "portrait.mp4")  # fmt: skip
    make_clip(src / "landscape.mp4", frames=3)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "bilinear", "--scale", "2", "--dry-run"])
    out = capsys.readouterr().out
    assert not exc.value.code, out
    rows = {cells[0]: cells for cells in (line.replace("|", " ").split() for line in out.splitlines()) if cells}
    assert (rows["portrait.mp4"][2], rows["landscape.mp4"][2]) == ("48x64->96x128", "64x48->128x96"), out
    alone = upscale(src / "portrait.mp4", tmp_path / "p.mp4", model="bilinear", scale=2, dry_run=True)
    assert alone.shown_as() == "shown 96x128 (turned 90 degrees)"
    assert "size: as players show it" in out


def test_batch_dry_run_marks_frame_counts_estimated_from_the_duration(folder, tmp_path, capsys, monkeypatch):
    """Matroska does not count frames: the folder's plan showed the estimate from the duration (75 for
    72 frames, 94 for a 66-frame VFR episode) as if it were exact. Where its packets are not counted (a
    file too large to, `cheap_to_count`), marked `~`, said once under the table, and the total is
    "about"; an MP4's exact count is shown as it is."""
    from dove_cli.cli import main
    from dove_cli.video_io import reader

    monkeypatch.setattr(reader, "COUNT_MAX_BYTES", 0)
    with pytest.raises(SystemExit):
        main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--model", "bilinear", "--dry-run"])
    out = capsys.readouterr().out
    rows = {cells[0]: cells for cells in (line.replace("|", " ").split() for line in out.splitlines()) if cells}
    assert rows["a.mp4"][1] == "6" and rows["b.mkv"][1] == "~5", out
    assert "frames ~5: about 5, from the duration (the container does not count them;" in out, out
    assert "2 to upscale (about 11 frames)" in out, out


def test_batch_dry_run_says_what_its_counts_and_times_leave_out(tmp_path, capsys, monkeypatch):
    """A folder's plan table counts calls and time as each file's plan does: without the scene cuts
    the run finds, and with a range that a busy machine (load average above its CPUs) need not keep.
    Said once under the table, as a single file's plan says it; nothing when neither applies."""
    import os

    from dove_cli.cli import main
    from dove_cli.plan import SCENE_CUTS_NOTE

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=20)
    make_clip(src / "b.mp4", frames=20)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    busy = "estimated time: this machine is busy (load 6.1 on 2 CPUs): the estimate may be off by more"
    for load, extra, said in ((6.1, ["--chunk", "9"], True), (1.0, ["--chunk", "9", "--scene-cuts", "off"], False)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 5.0, 4.0))
        with pytest.raises(SystemExit) as exc:
            main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "tiny", "--dry-run", *extra])
        out = capsys.readouterr().out
        assert exc.value.code == 0
        assert out.count(f"scene cuts: {SCENE_CUTS_NOTE}\n") == said and out.count(busy + "\n") == said, out
        assert out.count("scene cuts:") == out.count("estimated time:") == said, out


def test_batch_dry_run_says_each_warning_once(folder, tmp_path, caplog, capsys):
    """The same advice for every file of a folder is said once, with the first file's figures and
    how many more files it holds for; info lines (-v) still pass through as they come."""
    import logging

    from dove_cli.cli import main
    from dove_cli.logs import held_warnings

    (folder / "c.mp4").unlink()
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--model", "tiny", "--vram", "0.001", "--dry-run"])
    assert exc.value.code == 0
    said = [r.getMessage() for r in caplog.records if "estimated peak GPU memory" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("a.mp4 (and 1 more file: b.mkv): the plan's estimated peak"), said
    assert "no time estimated: planned for a 0.001 GiB GPU (--vram)" in capsys.readouterr().out  # why no time
    caplog.clear()

    held: list[logging.LogRecord] = []
    with caplog.at_level(logging.INFO), held_warnings(held):
        logging.getLogger("dove_cli.plan").info("an info line")
        logging.getLogger("dove_cli.plan").warning("a warning")
    assert [r.getMessage() for r in held] == ["a warning"]
    assert [r.getMessage() for r in caplog.records] == ["an info line"]
    logging.getLogger("dove_cli.plan").warning("after")
    assert caplog.records[-1].getMessage() == "after"  # printed again once the dry run is over


def test_batch_plain_progress_lines_name_the_file(folder, tmp_path, capsys, monkeypatch):
    """stderr not a terminal (a log): every line says which file it is about (the label was empty)."""
    from dove_cli.cli import main

    monkeypatch.setenv("DOVE_PROGRESS_INTERVAL", "0")
    (folder / "c.mp4").unlink()
    with pytest.raises(SystemExit):
        main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--model", "bilinear", "--scale", "2",
              "--codec", "ffv1"])  # fmt: skip
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "frames (" in ln or "upscaling" in ln]
    assert lines and not [ln for ln in lines if not ln.startswith(("a.mp4: ", "b.mkv: "))], err
    assert "a.mp4: file 1 of 2" in err and "b.mkv: file 2 of 2" in err
    # Each file's stage lines in order; the model is loaded once, after the first file is named;
    # the second file's count starts again (no "0/5 frames" left from the first before its stages).
    # A file's `done` line says its frames and time (`done: 6 frames in 0.4 s`).
    lines = [re.sub(r": done: (\d+) frames in [\d.]+ s$", r": done: \1 frames", ln) for ln in err.splitlines()]
    stages = [ln for ln in lines if ln.split(": ", 1)[-1] in ("loading model", "planning") or ": done" in ln
              or " of 2" in ln or ln.endswith("frames (0%)")]  # fmt: skip
    assert stages == ["a.mp4: file 1 of 2", "a.mp4: loading model", "a.mp4: planning", "a.mp4: done: 6 frames",
                      "b.mkv: file 2 of 2", "b.mkv: planning", "b.mkv: done: 5 frames"], err  # fmt: skip


def test_batch_input_rules(folder, tmp_path):
    assert [p.name for p in find_videos(folder)] == ["a.mp4", "b.mkv", "c.mp4"]
    assert is_batch_input(folder) and not is_batch_input(folder / "a.mp4")
    images = tmp_path / "frames"
    images.mkdir()
    (images / "0001.png").write_bytes(b"")
    assert not is_batch_input(images)  # a folder of images is one image-sequence input
    with pytest.raises(OutputError, match="must be a folder"):
        upscale_batch(folder, folder / "a.mp4", **OPTS)
    for name in ("new.mp4", "%04d.png"):  # not yet there, but clearly a file name: no folder called out.mp4/
        with pytest.raises(OutputError, match="looks like a file name"):
            upscale_batch(folder, tmp_path / name, **OPTS)
        assert not (tmp_path / name).exists()
    with pytest.raises(OutputError, match="input folder"):
        upscale_batch(folder, folder, **OPTS)
    with pytest.raises(InputError, match="no videos or frame folders"):
        upscale_batch(images, tmp_path / "o", **OPTS)


def test_the_python_api_points_a_folder_of_videos_to_upscale_batch(folder, tmp_path):
    """dove_cli.upscale() makes one output: a folder of videos is refused in one line that names
    dove_cli.upscale_batch (it said "folder holds no videos", looking for images), which does what
    `dove upscale DIR -o DIR` does, dry run included."""
    import dove_cli

    for dry_run in (False, True):
        with pytest.raises(InputError) as err:
            dove_cli.upscale(folder, tmp_path / "out", dry_run=dry_run, **OPTS)
        assert str(err.value).startswith(f"{folder}: a folder of videos or frame folders; upscale() takes one video")
        assert f"dove_cli.upscale_batch('{folder}', OUT_DIR, ...)" in str(err.value)
    assert not (tmp_path / "out").exists()
    plans = dove_cli.upscale_batch(folder, tmp_path / "out", dry_run=True, **OPTS)
    assert [i.status for i in plans.items] == ["done", "done", "failed"] and plans.items[0].result.frames == 6
    result = dove_cli.upscale_batch(folder, tmp_path / "out", **OPTS)
    assert [i.status for i in result.items] == ["done", "done", "failed"]
    assert decoded_frame_count(tmp_path / "out" / "b.mkv") == 5


def test_batch_rerun_continues_an_interrupted_file(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mkv", frames=60, codec="ffv1", pix_fmt="yuv444p")
    first = upscale_batch(src, out, restorer=_FailAfter(6), **OPTS)
    assert first.failed and not (out / "long.mkv").exists()
    again = upscale_batch(src, out, **OPTS)  # no --resume needed: the saved part is reused
    assert again.items[0].status == "done" and again.items[0].result.resumed_from >= SEGMENT_MIN_FRAMES
    upscale_batch(src, tmp_path / "ref", **OPTS)
    assert framemd5(out / "long.mkv") == framemd5(tmp_path / "ref" / "long.mkv")


def test_a_folder_stopped_while_its_model_loads_names_the_file_in_the_manifest(tmp_path, monkeypatch):
    """Ctrl-C before a file's run starts (the model loading) leaves it "interrupted", with a line."""
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mkv", frames=3)

    def ctrl_c(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "load_model", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        upscale_batch(src, tmp_path / "out", manifest=str(tmp_path / "run.json"), **OPTS)
    (entry,) = json.loads((tmp_path / "run.json").read_text())["files"]
    assert (entry["status"], entry["error"]) == ("interrupted", "interrupted")


def test_an_exception_from_the_callers_progress_stops_the_folder(tmp_path, caplog):
    """A GUI cancels by raising its own exception from progress=: it was caught as the file's failure
    (exit code 1, "a bug"), and every later file was started and "failed" the same way. Now it ends
    the folder run, raised as it was, with the file it stopped in left as a stopped file is; a file's
    own failure before it still moved on to the next. That file and the manifest said "failed", exit
    code 1, as for a bug: a cancel is a stop, as Ctrl-C is. Stopped at "joining segments", the last
    segment (all 6 frames here) was dropped: it is closed before that call now, and kept."""

    class Cancelled(Exception):
        pass

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.mp4").write_text("not a video\n")  # fails on its own: the folder goes on
    make_clip(src / "b.mp4", frames=6)
    make_clip(src / "c.mp4", frames=6)
    cancel = Cancelled("the user pressed Cancel")

    def progress(p):
        if p.status == "joining segments":
            raise cancel

    seen = []
    manifest = tmp_path / "run.json"
    with pytest.raises(Cancelled) as err:
        upscale_batch(src, out, progress=progress, on_file=lambda i, item: seen.append((item.input.name, item.status)),
                      manifest=manifest, **OPTS)  # fmt: skip
    assert err.value is cancel
    assert seen == [
        ("a.mp4", "running"),
        ("a.mp4", "failed"),
        ("b.mp4", "running"),
        ("b.mp4", "interrupted"),
    ]  # its row ends
    assert sorted(p.name for p in out.iterdir()) == ["b.mp4.dove-work"]  # b.mp4 stopped, c.mp4 not started
    assert caplog.records[-1].getMessage().startswith(f"6 finished frames are kept in {out / 'b.mp4.dove-work'}; ")
    doc = json.loads(manifest.read_text())
    assert (doc["status"], doc["exit_code"], doc["error_type"]) == ("interrupted", 130, "Interrupted")
    assert [(f["status"], f["error_type"]) for f in doc["files"]] == [
        ("failed", "InputError"), ("interrupted", "Interrupted"), ("not started", None)]  # fmt: skip
    assert doc["files"][1]["error"] == f"{src / 'b.mp4'}: stopped by progress= (Cancelled: the user pressed Cancel)"

    def cancel_loading(p):  # the folder's own call, before any file's run (a new exception: unmarked)
        if p.status == "loading model":
            raise Cancelled("the user pressed Cancel while the model loaded")

    with pytest.raises(Cancelled):
        upscale_batch(src, tmp_path / "out2", progress=cancel_loading, manifest=tmp_path / "run2.json", **OPTS)
    doc = json.loads((tmp_path / "run2.json").read_text())
    assert (doc["status"], doc["exit_code"], doc["error_type"]) == ("interrupted", 130, "Interrupted")


def test_a_folder_runs_advice_names_the_folder_call_in_the_callers_words(tmp_path, caplog):
    """A file's advice in a folder run: upscale_batch() again from Python (not upscale() with
    resume=True: a folder run resumes unasked), the same command from `dove`; also in the warning
    logged when a crash leaves saved work (it said "call upscale() again with resume=True")."""
    from dove_cli.errors import command_line, folder_run, run_again

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mkv", frames=60, codec="ffv1", pix_fmt="yuv444p")
    with caplog.at_level("WARNING"):
        assert upscale_batch(src, out, restorer=_FailAfter(6), **OPTS).failed
    (kept,) = [r.getMessage() for r in caplog.records if "finished frames are kept" in r.getMessage()]
    assert kept.endswith("; call upscale_batch() again to continue (finished files are skipped)"), kept
    with folder_run():
        assert run_again(["--ignore-decode-errors"], ["ignore_decode_errors=True"]) == (
            "call upscale_batch() again with ignore_decode_errors=True to continue"
        )
        assert run_again(["--resume"], []) == "call upscale_batch() again with resume=True to continue"  # --overwrite
        with command_line():
            assert run_again([], []) == "run the same command again to continue (finished files are skipped)"
    assert run_again([], []) == "call upscale() again with resume=True to continue"  # a file's own run


def test_a_folder_rerun_with_other_options_does_not_ask_for_resume(tmp_path):
    """The refusal to continue an unfinished file with changed options said "run the same command as
    before with --resume": a folder run needs no --resume."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mkv", frames=60, codec="ffv1", pix_fmt="yuv444p")
    assert upscale_batch(src, out, restorer=_FailAfter(6), **OPTS).failed
    again = upscale_batch(src, out, **{**OPTS, "chunk": 13})
    error = again.items[0].error
    assert (
        again.items[0].status == "failed"
        and "cannot resume: the saved run had chunk=9, this call has chunk=13" in error
    ), error
    assert (
        "resume" not in error.split("; ")[-1]
        and "call upscale_batch() with the options as before, or with overwrite=True to start over" in error
    ), error


def test_containers_dove_only_reads_are_upscaled_into_matroska(tmp_path):
    """.avi, .mpg and the like (DV captures, DVD rips) were skipped without a word; they become .mkv,
    and an input whose .mkv name another input has keeps its extension in the name."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "a.avi", frames=4, codec="mjpeg", pix_fmt="yuvj420p")
    make_clip(src / "a.mkv", frames=5)
    make_clip(src / "tape.mpg", frames=6, codec="mpeg2video", rate="25")
    result = upscale_batch(src, out, **OPTS)
    assert [(i.input.name, i.output.name, i.status) for i in result.items] == [
        ("a.avi", "a.avi.mkv", "done"),
        ("a.mkv", "a.mkv", "done"),
        ("tape.mpg", "tape.mkv", "done"),
    ]
    assert [decoded_frame_count(out / name) for name in ("a.avi.mkv", "a.mkv", "tape.mkv")] == [4, 5, 6]


def test_a_folder_run_puts_a_codec_its_inputs_container_cannot_hold_in_one_that_can(tmp_path, capsys):
    """A folder of .mp4 and .mxf clips with --codec prores: every .mp4 failed ("the mp4 container cannot
    hold prores video") and the .mxf became .mkv, which editing software reads less than .mov. Outputs
    whose container cannot hold the codec, or that dove only reads, go to ProRes's .mov; others keep theirs."""
    from dove_cli.cli import main

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2)
    make_clip(src / "c.mkv", frames=2)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "2", "-c:v", "mpeg2video", src / "b.mxf")
    assert [i.output.name for i in plan_batch(src, tmp_path / "o")] == ["a.mp4", "b.mkv", "c.mkv"]
    assert [i.output.name for i in plan_batch(src, tmp_path / "o", codec="prores")] == ["a.mov", "b.mov", "c.mkv"]
    with pytest.raises(SystemExit) as done:
        main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "bilinear", "--scale", "1",
              "--codec", "prores", "-q"])  # fmt: skip
    assert done.value.code in (0, None), capsys.readouterr().err
    for name in ("a.mov", "b.mov", "c.mkv"):  # as ffmpeg reads them
        assert "Video: prores" in ffinfo(tmp_path / "out" / name).stderr, name
    with pytest.raises(SystemExit) as done:  # one video into a folder: the name a folder run gives it
        main(["upscale", str(src / "a.mp4"), "-o", f"{tmp_path / 'one'}/", "--model", "bilinear", "--scale", "1",
              "--codec", "prores", "-q"])  # fmt: skip
    assert done.value.code in (0, None) and "Video: prores" in ffinfo(tmp_path / "one" / "a.mov").stderr


def test_inputs_whose_output_names_are_one_are_failed_before_any_work(tmp_path):
    """a.avi is written as a.avi.mkv beside a.mkv: an input a.avi.mkv was then "skipped, its output
    exists" (a.avi's), exit 0. Inputs whose output names are one, in any case (macOS and Windows
    tell no case apart), are failed before any work, each naming the other, on every re-run; an
    output already there under that name is not taken for either's."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for name in ("a.avi", "a.avi.mkv", "a.mkv", "A.MKV.mp4", "a.mkv.mp4", "b.mkv"):
        (src / name).write_bytes(b"")  # naming needs no video
    (out / "a.avi.mkv").write_bytes(b"made from a.avi by an older dove")

    def plan(**kw: str) -> list[tuple[str, str, str, str | None]]:
        return [(i.input.name, i.output.name, i.status, i.error and i.error.split(": ", 1)[1])
                for i in plan_batch(src, out, **kw)]  # fmt: skip

    shared = "rename one of them"
    case = (
        " (file names that differ only in case or in Unicode normalization (NFC/NFD) are one file on macOS and Windows)"
    )
    assert plan() == [
        ("A.MKV.mp4", "A.MKV.mp4", "failed", f"its output name A.MKV.mp4 is a.mkv.mp4's output name too{case}; {shared}"),
        ("a.avi", "a.avi.mkv", "failed", f"its output name a.avi.mkv is a.avi.mkv's output name too; {shared}"),
        ("a.avi.mkv", "a.avi.mkv", "failed", f"its output name a.avi.mkv is a.avi's output name too; {shared}"),
        ("a.mkv", "a.mkv", "pending", None),
        ("a.mkv.mp4", "a.mkv.mp4", "failed", f"its output name a.mkv.mp4 is A.MKV.mp4's output name too{case}; {shared}"),
        ("b.mkv", "b.mkv", "pending", None)]  # fmt: skip
    for name in os.listdir(src):
        (src / name).unlink()
    for name in ("a.mp4", "a.mkv", "a.mkv.mp4"):  # a.mkv is written as a.mkv.mp4 beside a.mp4
        (src / name).write_bytes(b"")
    assert [row[:3] for row in plan(container="mp4")] == [
        ("a.mkv", "a.mkv.mp4", "failed"),
        ("a.mkv.mp4", "a.mkv.mp4", "failed"),
        ("a.mp4", "a.mp4", "pending"),
    ]


def test_inputs_whose_names_differ_only_in_unicode_normalization_are_failed(tmp_path):
    """`café.mp4` from Linux (NFC: é) beside `café.mp4` from a Mac (NFD: e + U+0301) were both written:
    one file on APFS, HFS+ and an SMB share, as case twins are (which were caught). Each is now failed,
    naming the other; a name in the other normalization alone (no twin) is written."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    nfc, nfd, lone = "caf\u00e9.mp4", "cafe\u0301.mp4", "Nin\u0303o.mp4"
    for name in (nfc, nfd, lone):
        (src / name).write_bytes(b"")  # naming needs no video
    rows = {i.input.name: (i.status, i.error) for i in plan_batch(src, out)}
    assert sorted(rows) == sorted([nfc, nfd, lone]) and rows[lone] == ("pending", None)
    why = (
        " (file names that differ only in case or in Unicode normalization (NFC/NFD) are one file on macOS and Windows)"
    )
    shown = {nfc: "caf\u00e9.mp4 (NFC)", nfd: "cafe\\u0301.mp4 (NFD)"}  # (they would print alike)
    for name, other in ((nfc, nfd), (nfd, nfc)):
        want = f"{src / name}: its output name {shown[name]} is {shown[other]}'s output name too{why}; rename one"
        assert rows[name] == ("failed", want + " of them")
    # -r: one name in two sub-folders é (NFC) and é (NFD): the paths tell them apart, not "x.mp4 is x.mp4's"
    tree = tmp_path / "tree"
    for folder in ("\u00e9", "e\u0301"):
        (tree / folder).mkdir(parents=True)
        (tree / folder / "x.mp4").write_bytes(b"")
    rows = {str(i.input): i.error for i in plan_batch(tree, tmp_path / "tree_out", recursive=True)}
    nfd_in = f"{tree}/e\\u0301/x.mp4"
    assert rows[f"{tree}/\u00e9/x.mp4"] == (
        f"{tree}/\u00e9/x.mp4: its output {tmp_path}/tree_out/\u00e9/x.mp4 (NFC) is {nfd_in} (NFD)'s output too{why}; "
        "rename one of them"
    ), rows


def test_every_container_dove_reads_is_taken_by_a_folder_run(tmp_path, caplog):
    """.y4m (YUV4MPEG2, which capture tools and pipelines write) was left out of folder runs without a
    word; so were camcorders' .mod (MPEG-PS) and .tod (MPEG-TS), .divx (AVI) and .mpeg2. Each is
    taken (and written as .mkv), and a YUV4MPEG2 file without its extension is named as left out."""
    import logging

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v", "3", "-pix_fmt", "yuv420p", src / "a.y4m")
    shutil.copy(src / "a.y4m", src / "raw")
    with caplog.at_level(logging.WARNING):
        assert [(i.output.name, i.status) for i in upscale_batch(src, out, **OPTS).items] == [("a.mkv", "done")]
    assert decoded_frame_count(out / "a.mkv") == 3
    assert "1 file that looks like a video but has no video extension left out (raw)" in caplog.text
    for name in ("b.MOD", "c.tod", "d.divx", "e.mpeg2"):
        (src / name).write_bytes(b"")
    assert [p.name for p in find_videos(src)] == ["a.y4m", "b.MOD", "c.tod", "d.divx", "e.mpeg2"]


def test_bare_streams_are_taken_by_a_folder_run_and_named_without_their_extension(tmp_path, caplog):
    """A dashcam's bare .h264 (which `dove upscale a.h264` takes) was left out of a folder run without a
    word: .h264, .264, .h265, .265, .hevc ... are taken now (written as .mkv), and a bare stream with some
    other extension (an Annex-B start code, 00 00 00 01) is named as left out."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v", "3", "-c:v", "libx264", "-f", "h264",
           src / "cam.h264")  # fmt: skip
    assert (src / "cam.h264").read_bytes()[:4] == b"\x00\x00\x00\x01"  # (what the warning looks for)
    shutil.copy(src / "cam.h264", src / "cam.raw")
    with caplog.at_level(logging.WARNING):
        assert [(i.output.name, i.status) for i in upscale_batch(src, out, **OPTS).items] == [("cam.mkv", "done")]
    assert decoded_frame_count(out / "cam.mkv") == 3
    assert "1 file that looks like a video but has no video extension left out (cam.raw)" in caplog.text
    for name in ("b.264", "c.H265", "d.265", "e.hevc"):
        (src / name).write_bytes(b"")
    assert [p.name for p in find_videos(src)] == ["b.264", "c.H265", "cam.h264", "d.265", "e.hevc"]


def test_container_gives_every_output_of_a_folder_its_extension(tmp_path, capsys):
    """A YouTube batch wants .mp4 from .ts, .mkv and .avi captures: `--container mp4` names every
    output so (a.mkv and a.ts would both be a.mp4: they keep their extension in the name), and the
    skipping of finished files, the continuing of an interrupted one and the manifest go by those
    names. A file output's extension says its container: --container is refused there, in one line."""
    from dove_cli.cli import main

    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "run.json"
    src.mkdir()
    make_clip(src / "a.mkv", frames=5)
    make_clip(src / "a.ts", frames=4)
    make_clip(src / "long.avi", frames=60, codec="mjpeg", pix_fmt="yuvj420p")
    opts = {**OPTS, "codec": None}
    first = upscale_batch(src, out, restorer=_FailAfter(8), container=".MP4", **opts)
    assert [(i.output.name, i.status) for i in first.items] == [
        ("a.mkv.mp4", "done"), ("a.ts.mp4", "done"), ("long.mp4", "failed")]  # fmt: skip
    again = upscale_batch(src, out, container="mp4", manifest=str(manifest), **opts)
    assert [i.status for i in again.items] == ["skipped", "skipped", "done"]
    assert again.items[2].result.resumed_from >= SEGMENT_MIN_FRAMES  # continued, not redone
    assert [decoded_frame_count(out / n) for n in ("a.mkv.mp4", "a.ts.mp4", "long.mp4")] == [5, 4, 60]
    assert all(top_boxes(out / n)[0] == "ftyp" for n in ("a.mkv.mp4", "a.ts.mp4", "long.mp4"))
    written = json.loads(manifest.read_text())
    assert written["options"]["container"] == "mp4"
    assert [Path(f["output"]).name for f in written["files"]] == ["a.mkv.mp4", "a.ts.mp4", "long.mp4"]
    argv = ["upscale", str(src / "a.ts"), "--model", "bilinear", "--scale", "1", "--container", "mp4", "-q"]
    for output, code, said in ((tmp_path / "one.mkv", 2, "error: --container mp4 names the container of a folder "
                                f"run's outputs; -o {tmp_path / 'one.mkv'} says its own with its extension\n"),
                               (tmp_path / "dir", 0, "")):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main([*argv, "-o", f"{output}/" if code == 0 else str(output)])
        assert (exc.value.code or 0, capsys.readouterr().err) == (code, said)
    assert decoded_frame_count(tmp_path / "dir" / "a.mp4") == 4  # a folder output: named as in a folder run
    with pytest.raises(OptionError, match=r"^--container avi: dove writes mp4, m4v, mov, mkv, webm, ts, "):
        upscale_batch(src, out, container="avi", **opts)  # dove reads .avi, and writes it as .mkv
    for codec, container, home in (("ProRes", "mp4", "mov"), ("prores", ".TS", "mov"), ("ffv1", "webm", "mkv")):
        with pytest.raises(OptionError, match=rf"^--container {container.lower().lstrip('.')} cannot hold {codec} "
                           rf"video; use --container {home}$"):  # (each file failed, after the plan)  # fmt: skip
            upscale_batch(src, out, container=container, **{**opts, "codec": codec})


def test_an_interrupted_folder_says_how_it_continues(tmp_path, capsys, monkeypatch):
    """A folder run continues an interrupted file without --resume, so Ctrl-C must not say "--resume";
    the re-run's summary names the file it continued (it said nothing)."""
    from dove_cli.cli import main

    class CtrlCAfter(_FailAfter):
        def restore(self, video, generator=None, timer=None):
            if self.n == 0:
                raise KeyboardInterrupt
            return super().restore(video)

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mkv", frames=60, codec="ffv1", pix_fmt="yuv444p")
    make_clip(src / "next.mkv", frames=3, codec="ffv1", pix_fmt="yuv444p")
    manifest = tmp_path / "run.json"
    args = ["upscale", str(src), "-o", str(out), "--model", "bilinear", "--scale", "2", "--chunk", "9",
            "--chunk-overlap", "2", "--tile", "0", "--codec", "ffv1", "--manifest", str(manifest)]  # fmt: skip
    monkeypatch.setattr(models, "load_model", lambda *a: CtrlCAfter(6))
    monkeypatch.setenv("RANK", "1")  # a second process of a launch: the first one says it
    with pytest.raises(SystemExit) as exc:
        main([*args[:3], str(tmp_path / "rank1"), *args[4:-2]])
    assert exc.value.code == 130 and "error:" not in capsys.readouterr().err
    monkeypatch.delenv("RANK")
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 130 and "run the same command again to continue" in err and "--resume" not in err, err
    assert "(0 files done in this run, 1 not started)" in err, err  # the folder's state, in the same line
    doc = json.loads(manifest.read_text())  # the manifest says so too (it said "done", exit code 0)
    assert (doc["status"], doc["exit_code"], doc["counts"]) == ("interrupted", 130, {"interrupted": 1,
                                                                                     "not started": 1})  # fmt: skip
    assert "interrupted" in doc["error"] and not doc["error"].startswith("Interrupted:")  # the line said
    long, nxt = doc["files"]  # the file it stopped in has its own line (it had error: null)
    assert long["status"] == "interrupted" and "long.mkv: interrupted" in long["error"], long
    assert "run the same command again to continue" in long["error"] and "--resume" not in long["error"]
    assert "not started" not in long["error"]  # the folder's tally is the run's, not the file's
    assert nxt["status"] == "not started" and nxt["error"] is None
    monkeypatch.undo()
    monkeypatch.delenv("COLUMNS", raising=False)  # (pytest-xdist sets 80) the table keeps a file per row
    with pytest.raises(SystemExit) as exc:
        main([*args, "--dry-run"])  # the plan shows what the re-run continues (it showed a whole job)
    out = capsys.readouterr().out
    saved = re.search(r"long\.mkv\s+\|\s+60 \((\d+) saved\)", out)
    assert exc.value.code == 0 and saved and int(saved[1]) >= SEGMENT_MIN_FRAMES, out
    n = int(saved[1])  # the totals count what is left to make (they counted all 63 frames)
    assert f"2 to upscale ({63 - n} frames to make; {n} more are saved by an interrupted run)" in out, out
    planned = json.loads(manifest.read_text())  # a plan, as a file's dry run says (it said "done")
    assert (planned["status"], planned["exit_code"], planned["counts"]) == ("planned", 0, {"planned": 2})
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 0 and "2 upscaled (long.mkv continued from an interrupted run)" in err, err
    assert json.loads(manifest.read_text())["status"] == "done"
    with pytest.raises(SystemExit) as exc:  # the same command once more: all there, the manifest says so
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 0 and "0 upscaled, 2 skipped" in err, err
    assert json.loads(manifest.read_text())["counts"] == {"skipped": 2}
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(src / "next.mkv", other)
    with pytest.raises(SystemExit) as exc:  # but another folder's run does not replace it
        main(["upscale", str(other), *args[2:]])
    assert exc.value.code == 2 and "run.json: already exists" in capsys.readouterr().err


def test_batch_dry_run_names_each_file_once_in_its_warnings(clip_hlg, tmp_path, caplog):
    """An input's own warning starts with its path: the folder dry run said `hlg.mp4: in/hlg.mp4: HDR ...`."""
    import shutil

    from dove_cli.cli import main

    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(clip_hlg, tmp_path / "in" / name)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bilinear", "--dry-run"])
    said = [r.getMessage() for r in caplog.records if "HDR video" in r.getMessage()]
    assert (
        exc.value.code == 0 and len(said) == 1 and said[0].startswith("a.mp4 (and 1 more file: b.mp4): HDR video (HLG)")
    ), said


def test_a_warning_said_once_for_many_files_names_them(caplog):
    """`bar_bff.ts (and 3 more files): interlaced video` named none of the three: the others are named,
    the first SHOWN_NAMES of them, each once however often its dry run said it."""
    import logging

    from dove_cli.batch import BatchItem, say_warnings_once
    from dove_cli.outputs import SHOWN_NAMES

    def item(name: str, said: int = 1) -> BatchItem:
        record = logging.LogRecord(
            "dove_cli.video_io", logging.WARNING, __file__, 1, "%s: interlaced video", (f"in/{name}",), None
        )
        return BatchItem(Path("in") / name, Path("out") / name, warnings=[record] * said)

    names = [f"{c}.ts" for c in "abcdefgh"]
    say_warnings_once([item(names[0], said=2), item(names[1], said=2), *map(item, names[2:4])])
    assert caplog.messages == ["a.ts (and 3 more files: b.ts, c.ts, d.ts): interlaced video"]
    caplog.clear()
    say_warnings_once([item(n) for n in names[: SHOWN_NAMES + 2]])
    shown = ", ".join(names[1 : SHOWN_NAMES + 1])
    assert caplog.messages == [f"a.ts (and {SHOWN_NAMES + 1} more files: {shown}, ...): interlaced video"]
    caplog.clear()
    say_warnings_once([item("a.ts")])
    assert caplog.messages == ["a.ts: interlaced video"]


def test_a_file_another_run_is_writing_is_left_to_it_and_exits_75(folder, tmp_path, capsys):
    """Two folder runs on one output: a file whose lock another dove run holds is "busy", not failed
    (a line of its own, counted apart), the others are done, and the exit is 75 (run again later: the
    folder is not complete yet); once that run is gone, the same command finishes the folder."""
    from dove_cli.cli import main
    from test_resume import HOLD_LOCK

    (folder / "c.mp4").unlink()
    out, manifest = tmp_path / "out", tmp_path / "run.json"
    out.mkdir()
    argv = ["upscale", str(folder), "-o", str(out), "--model", "bilinear", "--manifest", str(manifest)]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out / "b.mkv")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(SystemExit) as exc:
            main(argv)
    finally:
        holder.kill()
        holder.communicate(timeout=60)
    err = capsys.readouterr().err
    assert exc.value.code == 75 and "failed:" not in err, err
    assert f"skipped: another dove run is writing {out / 'b.mkv'} (pid {holder.pid})" in err.splitlines()
    assert "1 upscaled, 0 skipped (output exists; --overwrite to redo), 1 left to another dove run, 0 failed" in err
    doc = json.loads(manifest.read_text())
    assert (doc["status"], doc["exit_code"], doc["counts"]) == ("retry", 75, {"done": 1, "busy": 1})
    shutil.rmtree(work_folder(out / "b.mkv"))  # that run's made-up journal (HOLD_LOCK) is gone with it
    with pytest.raises(SystemExit) as exc:  # the same command, once the other run is gone
        main(argv)
    assert exc.value.code == 0 and decoded_frame_count(out / "b.mkv") == 5
    assert json.loads(manifest.read_text())["counts"] == {"skipped": 1, "done": 1}


def test_tables_keep_a_row_per_line_in_a_log(tmp_path, capsys, monkeypatch):
    """Not a terminal (a log file): the --dry-run table is not folded at 80 columns, so a long file
    name stays whole on its row (grep finds it); COLUMNS, when set, still decides."""
    from dove_cli.cli import main

    monkeypatch.delenv("COLUMNS", raising=False)
    src = tmp_path / "in"
    src.mkdir()
    name = "a very long name of a camera original, take 12 (2019) 日本.mp4"
    make_clip(src / name, frames=5)
    main_args = ["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "bilinear", "--dry-run"]
    with pytest.raises(SystemExit) as exc:
        main(main_args)
    out = capsys.readouterr().out
    assert exc.value.code == 0 and [line for line in out.splitlines() if name in line], out
    monkeypatch.setenv("COLUMNS", "60")
    with pytest.raises(SystemExit):
        main(main_args)
    assert name not in capsys.readouterr().out


def test_an_output_another_run_finishes_as_this_one_starts_it_is_skipped(folder, tmp_path, monkeypatch):
    """The other run may finish the file after this run's last look and before it locks the output:
    skipped, not failed as an output that exists and has nothing to resume."""
    import dove_cli.batch as batch

    (folder / "c.mp4").unlink()
    out = tmp_path / "out"
    real_upscale = __import__("dove_cli.upscaling", fromlist=["upscale"]).upscale

    def other_run_wins(input, output, *args, **kw):
        if output.name == "b.mkv":
            output.write_bytes(b"made by another run")
        return real_upscale(input, output, *args, **kw)

    monkeypatch.setattr("dove_cli.upscaling.upscale", other_run_wins)
    result = batch.upscale_batch(folder, out, **OPTS)
    assert [i.status for i in result.items] == ["done", "skipped"] and result.error() is None
    assert (out / "b.mkv").read_bytes() == b"made by another run"


def test_an_output_another_run_finished_meanwhile_is_skipped(folder, tmp_path):
    """A second folder run reaches a file the first finished after the second one's plan: skipped
    (as if it had existed from the start), not failed as an output that exists."""
    (folder / "c.mp4").unlink()
    out = tmp_path / "out"

    def other_run_finishes_b(index, item) -> None:
        if item.input.name == "a.mp4" and item.status == "running":
            (out / "b.mkv").write_bytes(b"made by another run")

    result = upscale_batch(folder, out, on_file=other_run_finishes_b, **OPTS)
    assert [i.status for i in result.items] == ["done", "skipped"] and result.error() is None
    assert (out / "b.mkv").read_bytes() == b"made by another run"


def test_what_a_folder_run_leaves_out_is_said_once(tmp_path, caplog, capsys):
    """A broken link and videos without a video extension were left out without a word; other files
    (notes, images) are not named."""
    import logging

    from dove_cli.cli import main

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=5)
    for name in ("noext", "x.weird"):
        shutil.copy(src / "a.mp4", src / name)
    make_ts(src / "rec.ts", 1).rename(src / "rec")  # a recorder's dump: MPEG-TS, no extension
    (src / "notes.txt").write_text("ignored\n")
    (src / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "bilinear", "--dry-run"])
    assert exc.value.code == 0, capsys.readouterr().err
    assert caplog.text.count("1 broken link left out (dangling.mp4)") == 1
    assert (
        caplog.text.count(
            "3 files that look like videos but have no video extension left out (noext, rec, x.weird): rename them"
        )
        == 1
    )
    assert "notes.txt" not in caplog.text
    only = tmp_path / "only"  # nothing a folder run takes: the error itself says what was left out
    only.mkdir()
    (src / "rec").rename(only / "rec")
    (only / "notes.txt").write_text("ignored\n")
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(only), "-o", str(tmp_path / "out2"), "--model", "bilinear", "--dry-run"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.strip().endswith(
        "; 1 file that looks like a video but has no video extension (rec): rename it"
    ), err


def test_an_audio_only_file_is_said_to_be_audio_not_a_video_to_rename(tmp_path, capsys, caplog):
    """An .m4a (MP4's header, no video stream) was "looks like a video ... rename it (.mp4, ...)", which
    only turns it into a failed file: said to be audio only now, and a folder of nothing else is not told
    to rename it either; a video without an extension beside it is still named."""
    import logging

    from dove_cli.cli import main

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=3)
    shutil.copy(src / "a.mp4", src / "noext")
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.2", "-c:a", "aac", src / "song.m4a")
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "bilinear", "--dry-run"])
    assert exc.value.code == 0, capsys.readouterr().err
    assert "1 audio-only file left out (song.m4a): no video to upscale" in caplog.text
    assert "1 file that looks like a video but has no video extension left out (noext): rename it" in caplog.text
    only = tmp_path / "only"
    only.mkdir()
    (src / "song.m4a").rename(only / "song.m4a")
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(only), "-o", str(tmp_path / "out2"), "--model", "bilinear", "--dry-run"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.strip().endswith(
        "; it holds 1 audio-only file (song.m4a): no video to upscale"
    ), err


@pytest.mark.parametrize("given", ["shots", "cin", "cin/f_%06d.cin"])
def test_what_a_folder_without_videos_or_images_holds_is_named(tmp_path, capsys, given):
    """A folder of frame folders (shots/shotA/) was "holds no videos or images" without naming them
    (it is a folder run's input now, whose -o is a folder; what reads it as one sequence points there),
    and a sequence's pattern in an extension dove does not read (Cineon) was "no such file" although its
    files exist."""
    from dove_cli.cli import main
    from dove_cli.video_io import image_inputs

    for shot in ("shotA", "shotB"):
        (tmp_path / "shots" / shot).mkdir(parents=True)
        (tmp_path / "shots" / shot / "0001.png").write_bytes(b"")
    (tmp_path / "cin").mkdir()
    for n in (1, 2):
        (tmp_path / "cin" / f"f_{n:06d}.cin").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / given), "-o", str(tmp_path / "out/%06d.png"), "--model", "bilinear"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.count("\n") == 0, err
    if given == "shots":
        assert err.endswith("looks like a file name; for a folder of videos or frame folders, -o must be a folder "
                            "(outputs keep their input's name)"), err  # fmt: skip
        with pytest.raises(InputError) as read:
            image_inputs(tmp_path / given)
        assert str(read.value).endswith(f"its sub-folders shotA, shotB hold images: frame folders, each one input "
                                        f"(dove upscale {tmp_path / 'shots'} -o OUT/ upscales each into OUT/shotA/ ...)")  # fmt: skip
    else:
        assert "2 .cin files, which dove does not read as images" in err and "no such file" not in err, err
        assert given == "cin" or "(it reads .bmp, .dpx, .exr, .jpeg, .jpg, .png, .tif, .tiff, .webp)" in err


def test_missing_weights_are_one_error_for_the_folder(tmp_path, monkeypatch):
    """Without weights every file failed with the same long line, and upscale_batch() returned
    (`dove` said it three times, then "all 3 files failed"): one ModelError before any file now."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("DOVE_HOME", str(tmp_path / "dove"))
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(src / name, frames=4)
    seen = []
    with pytest.raises(ModelError, match="no DOVE weights found"):
        upscale_batch(src, tmp_path / "out", on_file=lambda i, item: seen.append(item.status),
                      **{**OPTS, "model": None})  # fmt: skip
    assert seen == [] and not (tmp_path / "out").exists()


def test_a_keyboard_interrupt_from_progress_ends_its_files_row(tmp_path):
    """A GUI that cancels with KeyboardInterrupt from progress= (or a real Ctrl-C): the folder stops
    with Interrupted, and on_file hears the file it stopped in end, as "interrupted" with its line
    (it heard nothing: the row stayed "running")."""
    from dove_cli.errors import Interrupted

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "a.mp4", frames=6)
    make_clip(src / "b.mp4", frames=6)

    def progress(p):
        if p.frames_done >= 2:
            raise KeyboardInterrupt

    seen = []
    with pytest.raises(Interrupted) as err:
        upscale_batch(src, out, progress=progress, manifest=str(tmp_path / "run.json"),
                      on_file=lambda i, item: seen.append((item.input.name, item.status, item.error)), **OPTS)  # fmt: skip
    assert "(0 files done in this run, 1 not started)" in str(err.value)
    assert [(name, status) for name, status, _ in seen] == [("a.mp4", "running"), ("a.mp4", "interrupted")]
    assert "a.mp4: interrupted" in seen[-1][2], seen
    a, b = json.loads((tmp_path / "run.json").read_text())["files"]
    assert (a["status"], b["status"]) == ("interrupted", "not started")


def test_files_a_stopped_folder_run_never_reached_are_not_started_and_keep_their_record(tmp_path):
    """nu_today F4: after Ctrl-C, the files after the one it stopped in whose outputs were there were
    recorded "skipped", while no line said them and the error said "0 not started". They are "not
    started" now, in the tally too, and keep the record of the run that made them (`made`), which the
    next run carries on."""
    from dove_cli.errors import Interrupted

    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "run.json"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2)
    make_clip(src / "c.mp4", frames=2)
    upscale_batch(src, out, manifest=str(manifest), **OPTS)
    first = json.loads(manifest.read_text())["files"][1]
    make_clip(src / "b.mp4", frames=6)

    def progress(p):
        if p.frames_done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as err:
        upscale_batch(src, out, progress=progress, manifest=str(manifest), **OPTS)
    assert "(0 files done in this run, 1 not started)" in str(err.value)
    a, b, c = json.loads(manifest.read_text())["files"]
    assert (a["status"], b["status"], c["status"]) == ("skipped", "interrupted", "not started")
    assert c["made"]["output_sha256"] == first["output_sha256"] == sha256_of(out / "c.mp4")
    assert c["output_bytes"] == (out / "c.mp4").stat().st_size
    c = json.loads(manifest.read_text())["files"][2]
    upscale_batch(src, out, manifest=str(manifest), **OPTS)  # the next run carries it on
    assert json.loads(manifest.read_text())["files"][2]["made"] == c["made"]

    class Cancel(Exception):
        pass

    def cancel(p):
        raise Cancel

    (out / "b.mp4").unlink()  # a GUI's cancel (what progress= raises) stops the folder as Ctrl-C does
    with pytest.raises(Cancel):
        upscale_batch(src, out, progress=cancel, manifest=str(manifest), **OPTS)
    assert [f["status"] for f in json.loads(manifest.read_text())["files"]] == ["skipped", "interrupted",
                                                                                "not started"]  # fmt: skip


# ---------------------------------------------------------------- --recursive, and a manifest kept current


@pytest.fixture
def tree(tmp_path) -> Path:
    """in/: a.mp4; sub/b.mkv; sub/deeper/a.mp4 (a name the top has too); and what a --recursive run
    leaves out: a hidden folder, a work folder, a symlinked folder (a link back up would loop). (Frame
    folders, which it takes: test_a_folder_of_frame_folders_keeps_each_images_names.)"""
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    make_clip(src / "a.mp4", frames=3, size="32x24")
    make_clip(src / "sub" / "b.mkv", frames=2, size="32x24")
    make_clip(src / "sub" / "deeper" / "a.mp4", frames=4, size="32x24")
    for hidden in (".cache", "x.mp4.dove-work"):
        (src / hidden).mkdir()
        shutil.copy(src / "a.mp4", src / hidden / "c.mp4")
    (src / "loop").symlink_to(src)
    return src


def test_recursive_mirrors_the_tree_with_one_model_load(tree, tmp_path, monkeypatch, caplog):
    """A tree of videos: one run, one model load, each output at its input's place under the output
    folder, which may be inside the tree (not searched, nor on the re-run, which skips them all)."""
    import logging

    from dove_cli.outputs import WORK_SUFFIX
    from dove_cli.resume import WORK_SUFFIX as resume_suffix

    assert WORK_SUFFIX == resume_suffix
    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a: loads.append(1) or real(*a))
    out = tree / "out"
    with caplog.at_level(logging.WARNING):
        result = upscale_batch(tree, out, recursive=True, **OPTS)
    assert [(i.name, i.status) for i in result.items] == [("a.mp4", "done"), ("sub/b.mkv", "done"),
                                                          ("sub/deeper/a.mp4", "done")]  # fmt: skip
    assert len(loads) == 1
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".dove-sources" not in p.parts)
    assert made == ["a.mp4", "sub/b.mkv", "sub/deeper/a.mp4"]
    assert [decoded_frame_count(out / name) for name in made] == [3, 2, 4]
    assert f"{tree}: symlinked folders are not followed (loop)" in caplog.messages
    assert "sub-folders are not searched" not in caplog.text and ".cache" not in caplog.text
    again = upscale_batch(tree, out, recursive=True, **OPTS)  # out/ is inside: not taken as inputs
    assert [i.status for i in again.items] == ["skipped"] * 3
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        flat = upscale_batch(tree, tmp_path / "flat", dry_run=True, **OPTS)
    assert [i.name for i in flat.items] == ["a.mp4"]
    assert "sub-folders are not searched (loop, out, sub); recursive=True searches them" in caplog.text


def test_recursive_on_the_command_line(tree, tmp_path, capsys, monkeypatch):
    """`-r`: a log line per file names its path in the tree, and its `done` line says the frames and
    time; DOVE_LOG_TIME=1 stamps every line of the log (not a terminal) with the local time."""
    import io
    import logging
    from datetime import datetime

    from rich.console import Console

    from dove_cli.cli import main
    from dove_cli.console import OneLineFormatter, time_stamp

    monkeypatch.setenv("DOVE_LOG_TIME", "1")
    before = datetime.now().astimezone().replace(microsecond=0)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tree), "-o", str(tmp_path / "out"), "-r", "--model", "bilinear", "--scale", "2",
              "--tile", "0", "--codec", "ffv1"])  # fmt: skip
    after = datetime.now().astimezone()
    err = capsys.readouterr().err
    assert exc.value.code == 0, err
    stamps = [re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d) (.*)", line) for line in err.splitlines()]
    assert all(stamps) and all(before <= datetime.fromisoformat(m[1]) <= after for m in stamps), err
    lines = [m[2] for m in stamps]
    assert "sub/deeper/a.mp4: file 3 of 3" in lines
    done = [re.sub(r" in [\d.]+ s$", "", line) for line in lines if ": done: " in line]
    assert done == ["a.mp4: done: 3 frames", "sub/b.mkv: done: 2 frames", "sub/deeper/a.mp4: done: 4 frames"]
    record = logging.LogRecord("dove_cli", logging.WARNING, "", 0, "a\nb", None, None)  # the CLI's WARNING lines
    line = OneLineFormatter("%(levelname)s: %(message)s").format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d WARNING: a\\nb", line), line

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert time_stamp(Console(file=Terminal(), force_terminal=True)) == ""  # a person watching: no stamps
    with pytest.raises(SystemExit) as exc:  # run again: all skipped, each line says of how many (it said "of None")
        main(["upscale", str(tree), "-o", str(tmp_path / "out"), "-r", "--model", "bilinear", "--scale", "2",
              "--tile", "0", "--codec", "ffv1"])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 0 and " sub/b.mkv: file 2 of 3: skipped, its output exists" in err, err
    monkeypatch.delenv("DOVE_LOG_TIME")
    assert OneLineFormatter("%(levelname)s: %(message)s").format(record) == "WARNING: a\\nb"
    top = tmp_path / "top"  # videos only in sub-folders: -r makes it a folder run (not one image-sequence input)
    (top / "x").mkdir(parents=True)
    shutil.copy(tree / "a.mp4", top / "x")
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(top), "-o", str(tmp_path / "o2"), "-r", "--model", "bilinear", "--dry-run"])
    assert exc.value.code == 0 and re.search(r"^ ?x/a\.mp4 +[│|] +3 ", capsys.readouterr().out, re.M)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tree / "a.mp4"), "-o", str(tmp_path / "one.mp4"), "-r", "--model", "bilinear"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"--recursive searches a folder's sub-folders: {tree / 'a.mp4'} is not" in err
    assert err.startswith("error: "), err  # unstamped without DOVE_LOG_TIME


def test_a_folder_manifest_is_kept_current_and_remembers_how_outputs_were_made(tree, tmp_path):
    """The manifest appeared only at the end (kill -9: none) and a re-run's replaced the record of the
    run that made the outputs (skipped, no times). It is rewritten as each file ends (`running`),
    says when each file started and ended and its output's size and time, and a skipped output
    whose file is unchanged keeps how it was made (`made`)."""
    from datetime import datetime

    manifest, out = tmp_path / "run.json", tmp_path / "out"
    seen: dict[str, dict] = {}

    def look(index, item) -> None:
        if item.status == "running" and index == 1:  # the second file starts: the first one is recorded
            seen.update(json.loads(manifest.read_text()))

    before = datetime.now().astimezone().replace(microsecond=0)  # (the manifest's times are to the millisecond)
    upscale_batch(tree, out, recursive=True, manifest=manifest, on_file=look, **OPTS)
    after = datetime.now().astimezone()
    assert seen["status"] == "running" and seen["exit_code"] is None and seen["finished_at"] is None
    assert [f["status"] for f in seen["files"]] == ["done", "pending", "pending"]
    doc = json.loads(manifest.read_text())
    assert (doc["status"], doc["recursive"], doc["hostname"], doc["pid"]) == ("done", True, os.uname().nodename,
                                                                              os.getpid())  # fmt: skip
    times = [doc["started_at"]] + [f[k] for f in doc["files"] for k in ("started_at", "finished_at")]
    times = [datetime.fromisoformat(t) for t in [*times, doc["finished_at"]]]
    assert before <= times[0] and times[-1] <= after and times == sorted(times)  # one file after another
    assert all(start < end for start, end in zip(times[1:-1:2], times[2:-1:2], strict=True))  # each takes time
    for f in doc["files"]:
        stat = Path(f["output"]).stat()
        assert f["output_bytes"] == stat.st_size and f["made"] is None
        assert abs(datetime.fromisoformat(f["output_modified"]).timestamp() - stat.st_mtime) < 0.001
    assert not list(tmp_path.glob("run.json.*"))  # the lock file is gone with the run
    first = doc["files"]
    shutil.copy(out / "a.mp4", out / "sub" / "deeper" / "a.mp4")  # changed since: its record no longer holds
    upscale_batch(tree, out, recursive=True, manifest=manifest, **OPTS)
    again = json.loads(manifest.read_text())["files"]
    assert [f["status"] for f in again] == ["skipped"] * 3
    for old, new in zip(first[:2], again[:2], strict=True):
        assert new["made"]["started_at"] == old["started_at"] and new["made"]["result"] == old["result"]
        assert new["made"]["frames"] == old["frames"] and new["started_at"] is None
    assert again[2]["made"] is None
    upscale_batch(tree, out, recursive=True, manifest=manifest, **OPTS)  # a third run keeps it on
    assert json.loads(manifest.read_text())["files"][0]["made"] == again[0]["made"]


def test_the_summary_names_the_outputs_with_frames_missing(tmp_path, capsys):
    """--ignore-decode-errors: "2 upscaled" said nothing of an output with frames missing (only the
    warnings above it did). Now the summary names each, with its count: the frames ffmpeg cannot decode."""
    from dove_cli.cli import main

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=3, size="32x24")
    clip = make_clip(tmp_path / "b.mp4", size="80x46", rate="16", frames=32,
                     extra=("-preset", "veryfast", "-bf", "2", "-g", "32", "-threads", "1"))  # fmt: skip
    bad = bytearray(clip.read_bytes())
    bad[2000:2285] = bytes((b * 7 + 13) & 255 for b in bad[2000:2285])  # packets of frames 4-9 (of 32)
    (src / "b.mp4").write_bytes(bytes(bad))
    shown = ffmpeg("-threads", "1", "-i", src / "b.mp4", "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-")
    lost = 32 - len(re.findall(r" pts_time:", shown.stderr))
    assert lost >= 2
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "bilinear", "--scale", "2",
              "--ignore-decode-errors"])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 0 and f"2 upscaled (1 with frames missing: b.mp4 {lost}), 0 skipped" in err, err


def test_a_folder_manifest_naming_one_of_its_outputs_is_refused(folder, tmp_path):
    """`--manifest OUT/a.mp4` in a folder run replaced a's upscaled video with the JSON (exit 0)."""
    from dove_cli.errors import OptionError

    out = tmp_path / "out"
    for dry_run in (False, True):
        with pytest.raises(OptionError) as err:
            upscale_batch(folder, out, manifest=out / "b.mkv", dry_run=dry_run, **OPTS)
        assert str(err.value) == (f"--manifest {out / 'b.mkv'} is {folder / 'b.mkv'}'s output; give it its own name, "
                                  f"like {out / 'b.mkv'}.json")  # fmt: skip
        assert not out.exists()
    spelled = out / ".." / "out" / "a.mp4"  # the same file, spelled otherwise
    with pytest.raises(OptionError, match=f"is {folder / 'a.mp4'}'s output"):
        upscale_batch(folder, out, manifest=spelled, **OPTS)
    assert not out.exists()


def test_a_second_run_on_one_manifest_is_refused(folder, tmp_path):
    """Two runs writing one --manifest: the last writer won, and its entries said `busy` for files the
    other had finished. The second is refused before any work while the first lives (exit 75); a lock
    file a killed run left behind (nobody holds it) does not stop a run."""
    import fcntl

    from dove_cli.errors import OutputBusy

    manifest, out = tmp_path / "run.json", tmp_path / "out"
    lock = tmp_path / "run.json.lock"
    with open(lock, "w") as held:
        held.write("dove run 123 on host since 2026-01-01T00:00:00.000Z\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        for dry_run in (False, True):
            with pytest.raises(OutputBusy) as err:
                upscale_batch(folder, out, manifest=manifest, dry_run=dry_run, **OPTS)
            assert str(err.value) == (f"--manifest {manifest}: dove run 123 on host since 2026-01-01T00:00:00.000Z "
                                      "is writing it; wait for that run to end, or give this one another --manifest")  # fmt: skip
        assert not out.exists() and not manifest.exists()
    result = upscale_batch(folder, out, manifest=manifest, dry_run=True, **OPTS)  # the holder is gone
    assert json.loads(manifest.read_text())["counts"] == {"planned": 2, "failed": 1}
    assert not lock.exists() and [i.status for i in result.items] == ["done", "done", "failed"]


def test_a_folder_dry_runs_manifest_says_planned_not_done(folder, tmp_path):
    """A folder's --dry-run --manifest holds plans, not a run: its status is "planned", so that a script
    reading it does not take the outputs for made (a run's manifest of the same folder says "done")."""
    (folder / "c.mp4").unlink()  # every file can be planned
    manifest = tmp_path / "run.json"
    upscale_batch(folder, tmp_path / "out", manifest=manifest, dry_run=True, **OPTS)
    doc = json.loads(manifest.read_text())
    assert doc["status"] == "planned" and doc["counts"] == {"planned": 2} and doc["exit_code"] == 0


def test_a_manifest_is_rewritten_as_files_end_within_its_share_of_the_run(tmp_path, monkeypatch):
    """Rewriting a manifest of thousands of entries after each of thousands of tiny files would take
    longer than the files: a file's end rewrites it only when the writing so far is within WRITE_SHARE."""
    import dove_cli.manifest as manifest_module
    from dove_cli.batch import BatchItem, BatchResult
    from dove_cli.options import UpscaleOptions

    path = tmp_path / "run.json"
    items = [BatchItem(tmp_path / "a.mp4", tmp_path / "out" / "a.mp4")]
    record = manifest_module.FolderManifest(path, tmp_path, tmp_path / "out", UpscaleOptions(), BatchResult(items))
    monkeypatch.setattr(manifest_module, "WRITE_SHARE", 1e-9)  # the first write sets the next one far off
    record.file_ended()
    assert json.loads(path.read_text())["files"][0]["status"] == "pending"
    items[0].status = "failed"
    record.file_ended()
    assert json.loads(path.read_text())["files"][0]["status"] == "pending"  # not yet
    record.write(None)  # the run's end is always written
    assert json.loads(path.read_text())["files"][0]["status"] == "failed"
    monkeypatch.setattr(manifest_module, "WRITE_SHARE", 1e9)
    record.write(None)
    items[0].status = "skipped"
    record.file_ended()
    assert json.loads(path.read_text())["files"][0]["status"] == "skipped"


def test_options_are_checked_without_reading_their_types_again(monkeypatch):
    """check_options ran get_type_hints for every call (twice per file of a folder: 2 ms each, a third
    of a 500-file dry run): the choices are read once."""
    import dove_cli.options as options

    options.check_options(options.UpscaleOptions())
    calls = []
    monkeypatch.setattr(options, "get_type_hints", lambda *a, **k: calls.append(1) or {})
    options.check_options(options.UpscaleOptions(model="bilinear"))
    assert calls == []


# ---------------------------------------------------------------- frame folders (a VSR benchmark's LQ/clip/0000.png)

SAME = dict(model="bilinear", scale=1, color_fix="none", device="cpu", tile=0, chunk=0)  # output = input's pixels


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frames(folder: Path, names: list[str], seed: int) -> dict[str, np.ndarray]:
    """Tiny 16x12 PNGs of noise under `names`; their pixels by name."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    made = {name: rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for name in names}
    for name, rgb in made.items():
        Image.fromarray(rgb).save(folder / name)
    return made


def test_a_folder_of_frame_folders_keeps_each_images_names(tmp_path, monkeypatch, caplog):
    """The trial: `dove upscale LQ/ -o out/` on a benchmark's frame folders was refused, and a loop
    over the clips loaded the model per clip and wrote 0001.png for 0000.png. Now each clip goes to
    out/<clip>/ under its own names (0000.png, frame_1.png), with one model load; a re-run skips the
    finished ones (a PNG sequence was "already exists", exit 2), and a clip one image short is failed.
    A gap in a clip's numbering is kept (conform: frame N out is frame N in); stray names, which no one
    pattern writes, are refused with a pattern of the clip's own names to give instead."""
    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a: loads.append(1) or real(*a))
    lq, out = tmp_path / "LQ", tmp_path / "out"
    made = {"c01": _frames(lq / "c01", ["0000.png", "0001.png", "0002.png"], 1),
            "c02": _frames(lq / "c02", ["frame_1.png", "frame_2.png"], 2),
            "c03": _frames(lq / "c03", ["shot_0000.png", "shot_0002.png"], 3)}  # a gap: kept  # fmt: skip
    _frames(lq / "c04", ["0000.tif", "0001.tif", "0001_b.tif"], 4)  # a stray name: no pattern keeps these names
    result = upscale_batch(lq, out, **SAME)
    assert [(i.name, i.status) for i in result.items] == [("c01", "done"), ("c02", "done"), ("c03", "done"),
                                                          ("c04", "failed")]  # fmt: skip
    assert (f"c04: its images (0000.tif, 0001.tif, 0001_b.tif) are not named by one number counting up, so "
            f"{out / 'c04'} cannot keep their names; give an image pattern (-o {out / 'c04' / '%04d.tif'})"
            ) in result.failed[0].error  # fmt: skip
    assert len(loads) == 1 and sorted(os.listdir(out)) == [".dove-sources", "c01", "c02", "c03"]
    for clip, frames in made.items():
        assert sorted(os.listdir(out / clip)) == sorted(frames)  # name for name, nothing else
        for name, rgb in frames.items():
            assert np.array_equal(np.asarray(Image.open(out / clip / name).convert("RGB")), rgb), (clip, name)
    assert "cannot note" not in caplog.text  # (its note is beside each folder: the folders hold their images only)
    assert sorted(os.listdir(out / ".dove-sources")) == ["c01.json", "c02.json", "c03.json"]
    again = upscale_batch(lq, out, **SAME)
    assert [i.status for i in again.items] == ["skipped", "skipped", "skipped", "failed"] and len(loads) == 1
    with pytest.raises(OptionError, match="--start-number 5: a folder run's frame folders keep their images' names"):
        upscale_batch(lq, out, start_number=5, **SAME)
    (out / "c01" / "0002.png").unlink()  # cut short: not skipped, said why
    again = upscale_batch(lq, out, **SAME)
    assert [i.status for i in again.items] == ["failed", "skipped", "skipped", "failed"]
    assert f"{out / 'c01' / '%04d.png'}: holds 2 of the 3 images from 0000.png on" in again.items[0].error


def test_a_changed_image_in_a_frame_folder_fails_its_rerun_as_a_changed_video_does(tmp_path):
    """nu_today F1: a re-scanned image in a frame folder was "skipped, its output exists" on a re-run, the
    upscale of the old scan handed back (a changed video is failed). Its note, beside the output folder
    (out/.dove-sources/c01.json), now says what made it, and a changed image fails it the same way."""
    lq, out = tmp_path / "LQ", tmp_path / "out"
    _frames(lq / "c01", ["0000.png", "0001.png"], 1)
    assert [i.status for i in upscale_batch(lq, out, **SAME).items] == ["done"]
    assert sorted(os.listdir(out / "c01")) == ["0000.png", "0001.png"]  # the note is not among its images
    assert [i.status for i in upscale_batch(lq, out, **SAME).items] == ["skipped"]
    rescan = lq / "c01" / "0001.png"
    Image.fromarray(np.full((12, 16, 3), 7, dtype=np.uint8)).save(rescan)  # the client's corrected scan
    later = rescan.stat().st_mtime + 10
    os.utime(rescan, (later, later))
    item = upscale_batch(lq, out, **SAME).items[0]
    assert item.status == "failed"
    assert f"{out / 'c01' / '%04d.png'}: its input has changed since it was made on " in item.error
    assert f"c01's images are now {sum(p.stat().st_size for p in (lq / 'c01').iterdir()):,} bytes" in item.error


def test_a_skipped_frame_folder_keeps_its_record_in_the_manifest(tmp_path):
    """nu_today F2: a re-run's manifest had output_bytes, output_modified and `made` null for a frame
    folder (its output, a pattern, was stat'ed): the record of how it was made was lost. Now they are
    its images' sizes in all and the newest one's time, and `made` is the first run's record."""
    lq, out, manifest = tmp_path / "LQ", tmp_path / "out", tmp_path / "run.json"
    _frames(lq / "c01", ["0000.png", "0001.png", "0002.png"], 1)
    upscale_batch(lq, out, manifest=str(manifest), **SAME)
    first = json.loads(manifest.read_text())["files"][0]
    upscale_batch(lq, out, manifest=str(manifest), **SAME)
    entry = json.loads(manifest.read_text())["files"][0]
    images = sorted((out / "c01").iterdir())
    newest = datetime.fromtimestamp(max(p.stat().st_mtime for p in images), UTC)
    assert entry["status"] == "skipped" and entry["output_bytes"] == sum(p.stat().st_size for p in images)
    assert entry["output_modified"] == newest.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert entry["made"]["output_sha256"] == first["output_sha256"] is not None
    assert entry["made"]["finished_at"] == first["finished_at"] and entry["made"]["output_images"] == 3
    upscale_batch(lq, out, manifest=str(manifest), **SAME)  # and on every later run
    assert json.loads(manifest.read_text())["files"][0]["made"] == entry["made"]


def test_recursive_takes_frame_folders_and_says_why_when_there_is_nothing(tmp_path, capsys, caplog):
    """-r on a folder of frame folders said only "no videos in it or its sub-folders" (without -r it
    explained more): they are inputs now, at their place under OUT; with nothing to take, the error
    says what the folder holds, as without -r."""
    from dove_cli.cli import main

    frames = _frames(tmp_path / "LQ" / "set" / "c01", ["0000.png", "0001.png"], 4)
    (tmp_path / "LQ" / "link").symlink_to(tmp_path / "LQ" / "set" / "c01")  # a link to a frame folder: taken
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "LQ"), "-o", str(tmp_path / "out"), "-r", "-q", *_flags(SAME)])
    assert exc.value.code == 0 and "not followed" not in caplog.text, capsys.readouterr().err
    for clip in ("set/c01", "link"):
        assert sorted(os.listdir(tmp_path / "out" / clip)) == sorted(frames)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("x\n")
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "notes"), "-o", str(tmp_path / "o2"), "-r", "--model", "bilinear"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith(
        f"error: {tmp_path / 'notes'}: no videos or frame folders in it or"
    ), err
    assert err.endswith("; it holds 1 .txt file, which dove does not read as images"), err


def test_a_folder_of_frame_folders_is_scored_by_clip_name(tmp_path, capsys):
    """--eval on a folder of frame folders: each clip's output folder is matched with GT's of its name
    (before the run, not by its images' pattern name)."""
    from dove_cli.cli import main

    for clip, seed in (("c01", 6), ("c02", 7)):
        _frames(tmp_path / "LQ" / clip, ["0000.png", "0001.png"], seed)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "LQ"), "-o", str(tmp_path / "out"), "-q", *_flags(SAME), "--eval",
              str(tmp_path / "LQ"), "--eval-metrics", "psnr", "--eval-json", str(tmp_path / "s.json")])  # fmt: skip
    assert exc.value.code == 0, capsys.readouterr().err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert sorted(scores["videos"]) == ["c01", "c02"] and scores["mean"]["psnr"] == 80.0, scores  # (identical: 80 dB)


def _flags(opts: dict) -> list[str]:
    return [a for k, v in opts.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def test_a_folder_run_takes_an_output_named_like_a_video_with_its_slash_typed(tmp_path, capsys):
    """`dove upscale DIR -o take.mp4/` was refused ("take.mp4: looks like a file name ... -o must be a
    folder") though the / was typed, which says "a folder", as `dove upscale a.mp4 -o take.mp4/` takes
    it. It is a folder now (its outputs go in it); without the / still refused."""
    from dove_cli.cli import main

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, size="32x24")
    for typed, code in ((f"{tmp_path / 'take.mp4'}/", 0), (str(tmp_path / "take.mp4"), 2)):
        with pytest.raises(SystemExit) as done:
            main(["upscale", str(src), "-o", typed, "--model", "bilinear", "--device", "cpu", "--dry-run"])
        out, err = capsys.readouterr()
        assert (done.value.code or 0) == code, err
        assert ("1 to upscale (2 frames)" in out) == (code == 0), out
        assert "looks like a file name" in err if code else not err, err
    assert [i.output for i in plan_batch(src, f"{tmp_path / 'take.mp4'}/")] == [tmp_path / "take.mp4" / "a.mp4"]


def test_hidden_videos_left_out_are_said_and_spaced_names_quoted(tmp_path, caplog):
    """A hidden video (`.take.mp4`) was left out of a folder run without a word, and a name ending in a
    space read as `(noext, trail.mp4 )`. The hidden one is said in the same style (not macOS's
    AppleDouble `._a.mp4`, no video), and a name with a space at an end is quoted."""
    import logging

    from dove_cli.batch import say_left_out

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, size="32x24")
    for name in (".take.mp4", "trail.mp4 "):
        shutil.copy(src / "a.mp4", src / name)
    (src / "._a.mp4").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble's magic
    with caplog.at_level(logging.WARNING):
        say_left_out(src)
    said = [r.getMessage().removeprefix(f"{src}: ") for r in caplog.records]
    assert said == ["1 file that looks like a video but has no video extension left out ('trail.mp4 '): rename it "
                    "(.mp4, .mkv, ...) or upscale each alone",
                    "1 hidden video left out (.take.mp4): a name that starts with '.' is hidden; rename it or upscale "
                    "each alone"]  # fmt: skip


def test_a_rerun_finds_the_output_of_an_input_renamed_to_another_spelling(tmp_path, caplog):
    """An input renamed from `café.MP4` (NFC) to `café.mp4` (NFD, as a copy from a Mac; the extension
    lower-cased, as some Windows tools do) was upscaled again beside its output: two names that are one
    file on macOS and Windows. Its output is found under the old spelling and skipped while its input
    is unchanged (size and time); once the input changed, a warning names the other output."""
    import logging

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    old, new = "caf\u00e9.MP4", "cafe\u0301.mp4"
    make_clip(src / old, frames=2, size="32x24")
    assert [i.status for i in upscale_batch(src, out, **OPTS).items] == ["done"]
    (src / old).rename(src / new)
    with caplog.at_level(logging.INFO):
        assert [(i.output.name, i.status) for i in plan_batch(src, out)] == [(old, "skipped")]
    assert f"{src / new}: its output is there as caf\u00e9.MP4 (NFC), made from it before it was renamed" in caplog.text
    os.utime(src / new, ns=(1, 1))  # another take under the same name
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert [(i.output.name, i.status) for i in plan_batch(src, out)] == [(new, "pending")]
    assert (
        f"{src / new}: an output named caf\u00e9.MP4 (NFC) is there, not made from this input as it is now; "
        "its output cafe\\u0301.mp4 (NFD) is written beside it"
    ) in caplog.text
    assert sorted(os.listdir(out)) == [".dove-sources", old]
