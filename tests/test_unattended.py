"""dove run unattended (cron, systemd, CI, nohup, ssh, a subprocess): what its logs, stdout, exit codes
and manifests tell a script or a scheduler that reads them."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import demo_clip
from dove_cli.cli import main
from dove_cli.resume import work_folder
from media import make_clip

SRC = str(Path(__file__).parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC}
DOVE = [sys.executable, "-m", "dove_cli"]
HELD = [sys.executable, str(Path(__file__).with_name("held_after.py")), "60"]  # dove, its writer held at frame 60
QUICK = ["--model", "bilinear", "--scale", "1", "--preview", "0+0.2s"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# ---------------------------------------------------------------- live bars or plain lines


def test_live_bars_only_on_a_real_terminal():
    """A console rich takes for a terminal (FORCE_COLOR=1, TTY_COMPATIBLE=1: force_terminal) on a file
    is plain lines; a real terminal (a pty) gets the live bar."""
    from rich.console import Console

    from dove_cli.console import UpscaleBar

    assert UpscaleBar(False, "a.mp4", Console(file=io.StringIO(), force_terminal=True)).plain
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            assert not UpscaleBar(False, "a.mp4", Console(file=tty)).plain
    finally:
        os.close(master)


@pytest.mark.parametrize("variable", ["FORCE_COLOR", "TTY_COMPATIBLE"])
def test_force_color_in_ci_keeps_a_log_plain(variable, tmp_path):
    """CI exports FORCE_COLOR=1: rich took the log file for a terminal, and a run wrote a spinner (thousands
    of escape codes and carriage returns) instead of its stage lines."""
    log = tmp_path / "err.log"
    with log.open("wb") as err:
        done = subprocess.run([*DOVE, "upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), *QUICK],
                              stderr=err, env={**ENV, variable: "1"}, timeout=120)  # fmt: skip
    text = log.read_bytes()
    assert done.returncode == 0, text
    assert b"\r" not in text and b"\x1b" not in text, text[:300]
    lines = text.decode().splitlines()
    assert lines[:3] == ["007.mp4: loading model", "007.mp4: planning", "007.mp4: upscaling"], lines
    assert lines[-1].endswith(f"-> {tmp_path / 'x.mp4'}"), lines
    with log.open("wb") as err:  # and no live display of rich's own (a training bar) redrawn there
        said = subprocess.run([sys.executable, "-c", "from dove_cli.console import err_console as c; "
                               "print(c.is_terminal, c.is_interactive)"], stdout=subprocess.PIPE, stderr=err,
                              text=True, env={**ENV, variable: "1"}, timeout=60)  # fmt: skip
    assert said.stdout == "True False\n", said  # (a terminal to rich: the error line's colour)


# ---------------------------------------------------------------- one line per record


def test_a_newline_in_a_name_keeps_every_line_whole(tmp_path, capsys, monkeypatch):
    """A name's newline split the progress lines and the summary (`-> weird/out` / `nl.mp4`); error lines
    were escaped already. Every line names it as `\\n` now: one file, and a folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOVE_PROGRESS_INTERVAL", "0")
    shutil.copy(demo_clip("007.mp4"), tmp_path / "nl\nin.mp4")
    code, _, err = run(["upscale", "nl\nin.mp4", "-o", "out\nnl.mp4", *QUICK], capsys)
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0] == "nl\\nin.mp4: loading model" and lines[-1].endswith("-> out\\nnl.mp4"), err
    assert all(line.startswith("nl\\nin.mp4: ") for line in lines[:-1]), err
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(demo_clip("007.mp4"), folder / "ok\nfile.mp4")
    (folder / "bad\nname.mp4").write_text("not a video\n")
    code, _, err = run(["upscale", "in", "-o", "out", *QUICK], capsys)
    assert code == 4, err
    for line in err.splitlines():
        assert line.startswith(("ok\\nfile.mp4: ", "bad\\nname.mp4: ", "1 upscaled", "failed: ", "error: ")), err
    assert "-> out\n" in err and "failed: in/bad\\nname.mp4: " in err, err


def test_log_records_are_one_line_each():
    """dove's WARNING and INFO lines (logging) escape a name's newline as its own lines do."""
    from dove_cli.console import OneLineFormatter

    record = logging.LogRecord("dove_cli", logging.WARNING, __file__, 1, "%s: already exists", ("a\nb.mp4",), None)
    assert OneLineFormatter("%(levelname)s: %(message)s").format(record) == "WARNING: a\\nb.mp4: already exists"


# ---------------------------------------------------------------- stdout closed or full


def dove(*args: str, stdout: str = "pipe", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`dove ARGS` in a process of its own, its stdout closed (`>&-`), /dev/full, or a pipe."""
    if stdout == "closed":
        return subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *DOVE, *args], stderr=subprocess.PIPE, text=True,
                              env=ENV, cwd=cwd, timeout=120)  # fmt: skip
    if stdout == "full":
        with open("/dev/full", "w") as full:
            return subprocess.run([*DOVE, *args], stdout=full, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd,
                                  timeout=120)  # fmt: skip
    return subprocess.run([*DOVE, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)


def test_a_closed_or_full_stdout_is_one_line_with_its_exit_code(tmp_path):
    """`--manifest - >&-` made the video, then died (AttributeError, exit 1); `--dry-run >&-` exited 0 with
    the plan lost; `--dry-run > /dev/full` and `info --json > /dev/full` were tracebacks. Now: a closed
    stdout is said before the work (exit 2), a full one is a full disk (exit 75)."""
    clip = str(demo_clip("007.mp4"))
    for name in ("-", "/dev/stdout"):  # (not a file that took stdout's number: /dev/null holds it)
        done = dove("upscale", clip, "-o", "a.mp4", *QUICK, "--manifest", name, stdout="closed", cwd=tmp_path)
        assert done.returncode == 2 and done.stderr == (f"error: --manifest {name}: stdout is closed (>&-), so the "
                                                        "manifest would be lost; give it a file name, or the command "
                                                        "a stdout\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # refused before the work
    for args, product in ((["upscale", clip, "-o", "a.mp4", *QUICK, "--dry-run"], "--dry-run's plan"),
                          (["info"], "the report"), (["bench", "--frames", "1"], "the timings"),
                          (["eval", clip, clip, "--metrics", "psnr"], "the table of scores")):  # fmt: skip
        done = dove(*args, stdout="closed", cwd=tmp_path)
        assert done.returncode == 2 and done.stderr == (f"error: stdout is closed (>&-), so {product} would be lost; "
                                                        "send it to a file (> out.txt) or a pipe\n"), (args, done)  # fmt: skip
    for args in (["upscale", clip, "-o", "a.mp4", *QUICK, "--dry-run"], ["info", clip, "--json"]):
        done = dove(*args, stdout="full", cwd=tmp_path)
        assert (done.returncode, done.stderr) == (75, "error: stdout: disk full while writing\n"), (args, done)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- signals, exit codes, manifests


def test_manifests_say_the_exit_code_and_the_kind_of_error(tmp_path, capsys):
    """A scheduler alerts on "weights not deployed" (ModelError) or a bad input (InputError) from the
    manifest alone: both manifests carry `exit_code` (the one-file manifest had none) and `error_type`."""
    clip = str(demo_clip("007.mp4"))
    manifest = tmp_path / "one.json"
    code, _, err = run(["upscale", clip, "-o", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "no-such-model"),
                        "--manifest", str(manifest)], capsys)  # fmt: skip
    doc = json.loads(manifest.read_text())
    assert code == 2 and (doc["status"], doc["exit_code"], doc["error_type"]) == ("failed", 2, "ModelError"), err
    code, _, err = run(["upscale", clip, "-o", str(tmp_path / "x.mp4"), *QUICK, "--manifest", str(manifest),
                        "--overwrite"], capsys)  # fmt: skip
    doc = json.loads(manifest.read_text())
    assert code == 0 and (doc["status"], doc["exit_code"], doc["error_type"]) == ("done", 0, None), err
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / "good.mp4")
    (folder / "bad.mp4").write_text("not a video\n")
    code, _, err = run(["upscale", str(folder), "-o", str(tmp_path / "out"), *QUICK, "-q", "--manifest",
                        str(tmp_path / "folder.json")], capsys)  # fmt: skip
    doc = json.loads((tmp_path / "folder.json").read_text())
    assert code == 4 and (doc["status"], doc["exit_code"], doc["error_type"]) == ("partial", 4, "PartlyFailed"), err
    assert [(f["status"], f["error_type"]) for f in doc["files"]] == [("failed", "InputError"), ("done", None)]


def _stopped(args: list[str], work: Path, sig: int, **kw) -> tuple[int, str]:
    """`dove upscale ARGS`, sent `sig` once its first segment is saved (in the work folder `work`); its
    writer waits at frame HELD for the signal, so that a loaded machine cannot end the run first."""
    proc = subprocess.Popen([*HELD, "upscale", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, **kw)  # fmt: skip
    journal, deadline = work / "journal.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and '"file"' in journal.read_text():
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """120 frames: at --scale 8 into ffv1, slow enough to stop part way."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames=120, rate="25")


SLOW = ["--model", "bilinear", "--scale", "8", "--chunk", "9", "--chunk-overlap", "2", "--tile", "0", "--codec", "ffv1"]


def test_sigterm_in_a_folder_run_is_143_in_the_manifest_too(long_clip, tmp_path):
    """The folder manifest said exit_code 130 after SIGTERM, while the process exited 143."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(long_clip, folder / "a.mkv")
    out, manifest = tmp_path / "out", tmp_path / "run.json"
    code, err = _stopped([str(folder), "-o", str(out), *SLOW, "--manifest", str(manifest)], work_folder(out / "a.mkv"),
                         signal.SIGTERM)  # fmt: skip
    doc = json.loads(manifest.read_text())
    assert code == 143 and (doc["status"], doc["exit_code"], doc["error_type"]) == ("interrupted", 143, "Interrupted")
    assert doc["files"][0]["error_type"] == "Interrupted" and "Traceback" not in err, err


def test_sighup_stops_as_sigterm_does_and_nohup_ignores_it(long_clip, tmp_path):
    """A closed terminal or ssh session (SIGHUP) killed dove at once: no line, no manifest. It is a stop
    now, as SIGTERM: exit 129, the `interrupted` line, the manifest; `--resume` finishes it. Under nohup
    (SIGHUP ignored) the run goes on."""
    out, manifest = tmp_path / "a.mkv", tmp_path / "run.json"
    args = [str(long_clip), "-o", str(out), *SLOW, "--manifest", str(manifest)]
    code, err = _stopped(args, work_folder(out), signal.SIGHUP)
    assert code == 129 and re.search(r"^error: .*a\.mkv: interrupted after \d+ frames; \d+ are saved", err, re.M), err
    doc = json.loads(manifest.read_text())
    assert (doc["status"], doc["exit_code"], doc["error_type"]) == ("interrupted", 129, "Interrupted")
    done = subprocess.run([*DOVE, "upscale", *args, "--resume", "-q"], capture_output=True, text=True, env=ENV,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0 and json.loads(manifest.read_text())["exit_code"] == 0, done.stderr
    nohup = tmp_path / "nohup.mkv"
    code, err = _stopped([str(long_clip), "-o", str(nohup), *SLOW], work_folder(nohup), signal.SIGHUP,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # fmt: skip
    assert code == 0 and nohup.is_file(), err


# ---------------------------------------------------------------- a cron line run again


def test_resume_on_a_finished_output_is_a_no_op_that_says_so(tmp_path, capsys):
    """`dove upscale a -o b --resume` from cron, run again once b was finished, exited 2 ("nothing to
    resume"): no one command line was safe to repeat. Now it does nothing, says so in one line and exits
    0; a manifest recording b as done is kept (it tells of the run that made b), another is written."""
    from dove_cli.upscaling import upscale

    clip, out, manifest = demo_clip("007.mp4"), tmp_path / "b.mp4", tmp_path / "run.json"
    argv = ["upscale", str(clip), "-o", str(out), *QUICK, "--resume", "--manifest", str(manifest)]
    code, _, err = run(argv, capsys)
    made, first = out.read_bytes(), manifest.read_text()
    assert code == 0 and json.loads(first)["result"]["frames"] > 0, err
    code, out_text, err = run(argv, capsys)
    assert code == 0 and out_text == "", err
    assert err == f"{out}: finished already, and no run into it was interrupted: nothing to do (--overwrite redoes it)\n"  # fmt: skip
    assert out.read_bytes() == made and manifest.read_text() == first
    code, _, err = run([*argv[:-1], str(tmp_path / "again.json"), "-q"], capsys)
    doc = json.loads((tmp_path / "again.json").read_text())
    assert code == 0 and err == "" and (doc["status"], doc["exit_code"]) == ("done", 0)
    assert (doc["result"]["frames"], doc["result"]["finished_before"]) == (0, True) and doc["plan"]["frames"] > 0
    result = upscale(clip, out, model="bilinear", scale=1, preview="0+0.2s", resume=True)  # the Python API's
    assert (result.frames, result.finished_before, result.plan.frames) == (0, True, doc["plan"]["frames"])
    assert result.summary().endswith("nothing to do (overwrite=True redoes it)")
    base = ["upscale", str(clip), "-o", str(out), "--model", "bilinear", "--scale", "1"]
    code, _, err = run([*base, "--preview", "0+0.1s", "--overwrite"], capsys)  # an output that is not whole
    assert code == 0, err
    code, _, err = run([*base, "--resume"], capsys)  # (the whole clip: a folder run would not skip it either)
    said = r"b\.mp4: exists but its video is 0\.1 s of \d+\.\d s \(a --preview, or cut off\?\), and no run into it was"
    assert code == 2 and re.search(said + " interrupted, so there is nothing to resume", err), err


def test_a_folder_run_still_skips_a_file_finished_as_it_starts(tmp_path, monkeypatch):
    """A folder run continues unfinished files by itself (resume on): a file another run finished just
    before this one reached it is "skipped", as before, not "done" by a run that did nothing."""
    import dove_cli.upscaling as upscaling
    from dove_cli.batch import upscale_batch

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_clip(folder / "a.mp4", frames=6)
    make_clip(folder / "b.mkv", frames=5, size="32x24")
    real = upscaling.upscale

    def other_run_finishes_b(input, output, *args, **kw):
        if output.name == "b.mkv":
            shutil.copy(input, output)  # a whole video, as long as its input
        return real(input, output, *args, **kw)

    monkeypatch.setattr(upscaling, "upscale", other_run_finishes_b)
    result = upscale_batch(folder, out, model="bilinear", scale=2, tile=0, codec="ffv1")
    assert [(i.status, i.result is None) for i in result.items] == [("done", False), ("skipped", True)]
    assert (out / "b.mkv").read_bytes() == (folder / "b.mkv").read_bytes()


# ---------------------------------------------------------------- a health check in JSON


def test_info_json_without_files_is_the_environment_report(tiny_model_dir, capsys, monkeypatch):
    """`dove info --json` was refused without files (`--json is for files`): a JSON health check (weights
    present, device) needed the text parsed. Now it is the same facts as the text, row for row."""
    import importlib.metadata
    import platform

    from dove_cli import weights
    from dove_cli.humanize import human_size

    def find(repo: str = weights.DEFAULT_REPO, *args) -> Path | None:
        return tiny_model_dir if repo == weights.DEFAULT_REPO else None

    monkeypatch.setattr(weights, "find_downloaded", find)
    code, out, err = run(["info", "--json"], capsys)
    assert code == 0 and err == "", err
    env = json.loads(out)
    code, text, err = run(["info"], capsys)
    rows = dict(re.match(r"^(\s*\S+(?: \S+)*)\s{2,}(.*?)\s*$", line).groups() for line in text.splitlines())
    assert env["python"] == rows["python"] == platform.python_version()
    assert env["packages"]["torch"] == rows["torch"] == importlib.metadata.version("torch")
    assert env["device"] == "cpu" and env["gpus"] == [] and rows["device"].startswith("cpu only")  # (no GPU here)
    assert env["hub"]["cache"] == rows["hub cache"] and env["base_model"] is None
    found = env["weights"]
    assert found["path"] == rows["weights"] == str(tiny_model_dir) and found["error"] is None
    assert found["parts"]["transformer"] > 0 and found["parts"]["text_encoder"] is None
    for part, size in found["parts"].items():
        assert rows[f"  {part}"] == (human_size(size) if size is not None else "absent")
    for kernel, where in env["attention"].items():
        assert rows[f"SDPA {kernel}"].startswith(f"yes ({' and '.join(where)})" if where else "no ("), kernel
    assert env["features"]["ray"] == rows["ray (--ray: many GPUs)"].startswith("yes")


# ---------------------------------------------------------------- a folder's log, file by file


def test_a_folder_log_says_how_each_file_ended_as_it_ends(tmp_path, capsys, monkeypatch):
    """In a log (not a terminal) a folder run said nothing of skipped files and named the failed ones
    only at the end: `c.mp4: file 3 of 5`, then `d.mp4: file 4 of 5`. Now a line as each one ends,
    as the live view shows it."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    for name in ("a.mp4", "b.mp4", "d.mp4"):
        shutil.copy(demo_clip("007.mp4"), folder / name)
    (folder / "c.mp4").write_text("not a video\n")
    shutil.copy(folder / "b.mp4", out / "b.mp4")  # finished before: skipped
    code, _, err = run(["upscale", str(folder), "-o", str(out), *QUICK], capsys)
    assert code == 4, err
    ends = [re.sub(r"(: done: 4 frames) in [\d.]+ s$", r"\1", line) for line in err.splitlines()
            if re.match(r"^\w\.mp4: (file \d of 4|done|failed|skipped)", line)]  # fmt: skip
    assert ends == [
        "a.mp4: file 1 of 4", "a.mp4: done: 4 frames",
        "b.mp4: file 2 of 4: skipped, its output exists (--overwrite to redo)",
        "c.mp4: file 3 of 4", "c.mp4: failed: not a video FFmpeg can read (Invalid data found when processing input)",
        "d.mp4: file 4 of 4", "d.mp4: done: 4 frames",
    ], err  # fmt: skip
    assert err.splitlines()[-2].startswith(f"failed: {folder / 'c.mp4'}: ")  # still listed at the end too
    code, _, err = run(["upscale", str(folder), "-o", str(out), *QUICK, "-q"], capsys)
    assert code == 4 and err.splitlines()[0].startswith("failed: "), err  # -q: only the failures, at the end


def test_a_folder_log_counts_the_files_skipped_before_the_first_starts(capsys):
    """A re-run whose first files were done (or are another run's) said `file 1 of None: skipped`: the count
    was read off the first bar, which is the per-file one until a file starts."""
    from dove_cli.batch import BatchItem
    from dove_cli.console import BatchBars

    with BatchBars(False, 3) as bars:
        bars.file(0, BatchItem(Path("a.mkv"), Path("out/a.mkv"), "skipped"))
        bars.file(1, BatchItem(Path("b.mkv"), Path("out/b.mkv"), "busy", error="another dove run is writing it"))
        bars.file(2, BatchItem(Path("c.mkv"), Path("out/c.mkv"), "running"))
    assert capsys.readouterr().err.splitlines() == [
        "a.mkv: file 1 of 3: skipped, its output exists (--overwrite to redo)",
        "b.mkv: file 2 of 3: skipped: another dove run is writing it",
        "c.mkv: file 3 of 3",
    ]


def test_a_terminal_that_closes_stops_the_run_with_its_manifest(long_clip, tmp_path):
    """`ssh -t` dropped, a terminal window closed: dove's live bar is on a terminal that goes away (SIGHUP,
    then EIO on every write). It died at once, with no manifest; now it stops as on SIGHUP: 129, the
    segments kept, the manifest written (the line it cannot say is in there)."""
    import pty
    import select

    out, manifest = tmp_path / "a.mkv", tmp_path / "run.json"
    journal = work_folder(out) / "journal.jsonl"
    pid, terminal = pty.fork()
    if pid == 0:  # the child: dove on the terminal
        os.environ["PYTHONPATH"] = SRC
        os.execv(sys.executable, [*HELD, "upscale", str(long_clip), "-o", str(out), *SLOW, "--manifest", str(manifest)])
    shown, deadline = b"", time.monotonic() + 120
    while time.monotonic() < deadline and not (journal.exists() and '"file"' in journal.read_text()):
        if select.select([terminal], [], [], 0.05)[0]:
            shown += os.read(terminal, 65536)
    os.close(terminal)  # the terminal goes away
    _, status = os.waitpid(pid, 0)
    assert b"\r" in shown  # a live bar: it is a terminal
    doc = json.loads(manifest.read_text())
    assert os.waitstatus_to_exitcode(status) == 129 and (doc["status"], doc["exit_code"]) == ("interrupted", 129)
    assert re.match(r".*a\.mkv: interrupted after \d+ frames; \d+ are saved in closed segments", doc["error"]), doc
