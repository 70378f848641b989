"""dove run unattended (cron, systemd, CI, nohup, ssh, a subprocess): what its logs, stdout, exit codes
and manifests tell a script or a scheduler that reads them."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import demo_clip
from dove_cli.cli import main

SRC = str(Path(__file__).parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC}
DOVE = [sys.executable, "-m", "dove_cli"]
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
    done = dove("upscale", clip, "-o", "a.mp4", *QUICK, "--manifest", "-", stdout="closed", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == ("error: --manifest -: stdout is closed (>&-), so the manifest "
                                                    "would be lost; give it a file name, or the command a stdout\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # refused before the work
    done = dove("upscale", clip, "-o", "a.mp4", *QUICK, "--dry-run", stdout="closed", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: stdout is closed (>&-), so --dry-run's plan "), done
    for args in (["upscale", clip, "-o", "a.mp4", *QUICK, "--dry-run"], ["info", clip, "--json"]):
        done = dove(*args, stdout="full", cwd=tmp_path)
        assert (done.returncode, done.stderr) == (75, "error: stdout: disk full while writing\n"), (args, done)
    assert list(tmp_path.iterdir()) == []
