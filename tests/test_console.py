"""What dove prints, as a screen reader, a pipe or any locale takes it: text a stream cannot encode,
names an ASCII locale could not decode, plain tables and progress outside a live terminal."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from rich.console import Console

from dove_cli.cli import main
from media import FFMPEG, ffmpeg, make_clip

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
ENV.pop("PYTHONIOENCODING", None)
DOVE = [sys.executable, "-m", "dove_cli"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# ---------------------------------------------------------------- any encoding, any locale


def test_the_streams_write_what_their_encoding_cannot_hold():
    """stdout's and stderr's error handler: a name an ASCII locale could not decode (each byte past
    ASCII a surrogate escape) as the name where the stream holds it, else its own bytes; bytes that
    are not UTF-8, and other characters the stream cannot hold, as Python's escapes."""
    from dove_cli.streams import SHOWN

    name = "家族 Ü.mp4".encode()
    undecoded = name.decode("ascii", "surrogateescape")  # as LC_ALL=C (PYTHONUTF8=0) gives it
    assert undecoded.encode("ascii", SHOWN) == name  # its bytes, as `ls` writes them
    assert undecoded.encode("utf-8", SHOWN) == name
    assert "x \udcc3\udc9c.mp4".encode("latin-1", SHOWN) == b"x \xdc.mp4"  # the name, in the stream's encoding
    assert "x\udcfc.mp4".encode("utf-8", SHOWN) == b"x\\xfc.mp4"  # a Latin-1 byte: not UTF-8
    assert "PSNR \u2191 \U0001f389".encode("ascii", SHOWN) == b"PSNR \\u2191 \\U0001f389"


def test_a_name_stdout_cannot_encode_is_escaped_not_a_crash(tmp_path):
    """`PYTHONIOENCODING=latin-1 dove info FILE` exited 1 with a UnicodeEncodeError traceback on a `–`
    or an emoji in the name (stdout's products: info, eval, a --dry-run); stderr wrote escapes. Both
    write escapes now, and what Latin-1 holds (Ü) as it is."""
    make_clip(tmp_path / "Ü – 🎉.mp4", frames=2)
    done = subprocess.run([*DOVE, "info", "Ü – 🎉.mp4", "nope Ü – 🎉.mp4"], capture_output=True, cwd=tmp_path,
                          env={**ENV, "PYTHONIOENCODING": "latin-1"}, timeout=60)  # fmt: skip
    assert done.returncode == 2 and b"Traceback" not in done.stderr, done.stderr
    assert done.stdout.splitlines()[0] == b"\xdc \\u2013 \\U0001f389.mp4", done.stdout
    assert done.stderr == b"error: nope \xdc \\u2013 \\U0001f389.mp4: no such file\n"


def test_columns_0_is_as_if_unset_not_silence(tmp_path):
    """COLUMNS=0 (some containers and CI runners set it) made rich draw at width 0: `dove info` printed
    nothing and exited 0, and error lines went unsaid. Now as if unset: a log keeps a long name on one
    line, and a terminal shows the table."""
    name = "a" * 90 + ".mp4"
    make_clip(tmp_path / name, frames=2)
    env = {**ENV, "COLUMNS": "0", "LINES": "0", "TERM": "xterm"}
    done = subprocess.run([*DOVE, "info", name, "nope.mp4"], capture_output=True, cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2 and done.stdout.splitlines()[:2] == [name.encode(), b"  container     MP4/MOV, 0.067 s"]
    assert done.stderr == b"error: nope.mp4: no such file\n"
    master, slave = os.openpty()
    try:
        subprocess.run([*DOVE, "info", name], stdout=slave, cwd=tmp_path, env=env, timeout=60, check=True)
        shown = os.read(master, 1 << 16) if select.select([master], [], [], 5)[0] else b""
    finally:
        os.close(master), os.close(slave)
    assert b"container" in shown and b"MP4/MOV" in shown, shown


def test_columns_0_leaves_a_log_as_wide_as_unset(monkeypatch):
    """A log (not a terminal) is LOG_WIDTH wide unless COLUMNS says otherwise; COLUMNS=0 says nothing."""
    import io

    from dove_cli.console import LOG_WIDTH, _Console, plain_width

    for columns, width in (("0", LOG_WIDTH), ("120", 120)):
        monkeypatch.setenv("COLUMNS", columns)
        assert plain_width(_Console(file=io.StringIO())).width == width


def test_an_ascii_locale_shows_and_stores_names_as_written(tmp_path):
    """In a true ASCII locale, stderr spelled a UTF-8 name as `\\udce5\\udcae...` (a screen reader read
    each escape aloud) and `dove info --json` stored the escapes, which jq reads as U+FFFD: both hold
    the name now."""
    make_clip(tmp_path / "家族.mp4", frames=2)
    env = {**ENV, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "LANG": "C"}
    done = subprocess.run([*DOVE, "info", "--json", "家族.mp4", "nope 家族.mp4"], capture_output=True,
                          cwd=tmp_path, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert [d["path"] for d in json.loads(done.stdout)] == ["家族.mp4", "nope 家族.mp4"]
    assert done.stderr == "error: nope 家族.mp4: no such file\n".encode()


def test_a_manifest_holds_the_name_as_written(tmp_path):
    """A manifest stored an ASCII locale's escapes (`"\\udcf0\\udc9f..."`): the name, where it is UTF-8."""
    from dove_cli.manifest import write_json

    undecoded = "party 🎉.mp4".encode().decode("ascii", "surrogateescape")
    write_json(tmp_path / "m.json", {"input": undecoded, "files": [{"output": f"out/{undecoded}"}]}, "", "")
    assert json.loads((tmp_path / "m.json").read_bytes()) == {"input": "party 🎉.mp4",
                                                             "files": [{"output": "out/party 🎉.mp4"}]}  # fmt: skip


def test_json_files_hold_names_as_utf8_and_a_stdout_that_cannot_gets_escapes(tmp_path, monkeypatch):
    """A manifest (and every JSON file dove writes) held `\\u65e5\\u672c...` for `日本...`: `grep 日本語 m.json`
    found nothing. Now the name itself in UTF-8, a byte that is not UTF-8 still its escape `\\udce9` (no
    UTF-8 holds it), read back the same. JSON on a stdout whose encoding cannot hold the name
    (PYTHONIOENCODING=ascii) is all escapes, still JSON: the stream's own escape (`\\U0001f389`) is not."""
    import io

    from dove_cli.jsontext import json_text
    from dove_cli.manifest import write_json

    doc = {"input": "日本語の動画 🎉.mp4", "output": "caf\udce9.mp4", "error": "a\nb"}
    write_json(tmp_path / "m.json", doc, "", "")
    raw = (tmp_path / "m.json").read_bytes()
    assert "日本語の動画 🎉.mp4".encode() in raw and b'"caf\\udce9.mp4"' in raw and b'"a\\nb"' in raw, raw
    assert json.loads(raw) == doc
    assert json.loads(json_text(doc).encode()) == doc  # (strict UTF-8, as a training run's files are written)
    for encoding in ("ascii", "latin-1"):
        stdout = io.TextIOWrapper(io.BytesIO(), encoding=encoding)  # (strict: a character it cannot hold raises)
        monkeypatch.setattr(sys, "stdout", stdout)
        write_json(Path("-"), doc, "", "")
        shown = stdout.buffer.getvalue()
        assert shown.isascii() and json.loads(shown) == doc, shown


def test_json_names_are_their_bytes_as_utf8_whatever_the_locale(tmp_path, monkeypatch):
    """Under a Latin-1 locale the name `café.mp4` (UTF-8 on disk) came as `cafÃ©.mp4`, and manifests,
    `info --json` and `eval --json` stored that: a UTF-8 reader (jq) got a name of no file. A name is its
    bytes read as UTF-8 now, a byte that is not UTF-8 its surrogate escape; text that no locale decoded
    (a tag PyAV read as UTF-8) stays as it is. (Python decodes names with the file system encoding,
    which the locale sets: it is set here as a Latin-1 locale sets it.)"""
    from dove_cli.humanize import path_text, real_names
    from dove_cli.manifest import write_manifest
    from dove_cli.options import UpscaleOptions

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "iso8859-1")
    utf8, latin1 = "café 日本.mp4".encode(), b"caf\xe9.mp4"
    as_latin1 = lambda raw: raw.decode("latin-1")  # noqa: E731  (what os.listdir and argv give under Latin-1)
    assert path_text(as_latin1(utf8)) == "café 日本.mp4" and path_text(as_latin1(latin1)) == "caf\udce9.mp4"
    assert real_names({"tag": "café", "error": f"{as_latin1(utf8)}: no such file"}) == {
        "tag": "café", "error": "café 日本.mp4: no such file"}  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path / "m.json", as_latin1(utf8), UpscaleOptions(), None, None, Path(as_latin1(latin1)))
    doc = json.loads((tmp_path / "m.json").read_bytes())
    assert (doc["input"], doc["output"]) == (str(tmp_path / "café 日本.mp4"), str(tmp_path / "caf\udce9.mp4"))


def test_info_json_under_a_latin1_locale_names_the_files(tmp_path):
    """The same, end to end, in a real Latin-1 locale (built here with localedef where the system can)."""
    locales = tmp_path / "locales"
    locales.mkdir()
    made = subprocess.run(["localedef", "-i", "de_DE", "-f", "ISO-8859-1", str(locales / "de_DE.ISO-8859-1")],
                          capture_output=True) if shutil.which("localedef") else None  # fmt: skip
    if made is None or not (locales / "de_DE.ISO-8859-1").exists():
        pytest.skip("no localedef, or no de_DE locale source, to make a Latin-1 locale")
    clip = make_clip(tmp_path / "clip.mp4", frames=2)  # (ffmpeg's log would hold a name that is not UTF-8)
    for raw in ("café 日本.mp4".encode(), b"caf\xe9.mp4"):
        os.link(clip, tmp_path / os.fsdecode(raw))
    env = {**ENV, "LOCPATH": str(locales), "LC_ALL": "de_DE.ISO-8859-1"}
    code = "import sys; print(sys.getfilesystemencoding()); from dove_cli.cli import main; main(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, "info", "--json", "café 日本.mp4".encode(), b"caf\xe9.mp4"],
                          capture_output=True, cwd=tmp_path, env=env, timeout=60)  # fmt: skip
    encoding, _, text = done.stdout.partition(b"\n")
    assert done.returncode == 0 and encoding == b"iso8859-1", done.stdout + done.stderr
    paths = [d["path"] for d in json.loads(text)]
    assert paths == ["café 日本.mp4", "caf\udce9.mp4"] and [os.path.exists(tmp_path / p) for p in paths] == [True] * 2


def test_a_single_files_plan_writes_its_names_as_the_log_lines_do(tmp_path, capsys):
    """A --dry-run plan wrote `input file: caf\\udce9.mp4` (and, under LC_ALL=C, a UTF-8 name as escapes)
    where every log line, `dove info` and a folder's plan write `caf\\xe9.mp4` (and the UTF-8 bytes)."""
    name = tmp_path / os.fsdecode(b"caf\xe9.mp4")
    make_clip(tmp_path / "clip.mp4", frames=2).rename(name)
    code, out, err = run(["upscale", str(name), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear", "--dry-run"],
                         capsys)  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[1:3] == [f"input file: {tmp_path}/caf\\xe9.mp4", f"output file: {tmp_path}/x.mp4"], out


def test_eval_and_bench_write_their_names_as_the_log_lines_do(tmp_path, capsys):
    """`dove eval`'s and `dove bench`'s first line wrote `caf\\udce9.mp4` where their log lines (and every
    other line) write `caf\\xe9.mp4`."""
    name = tmp_path / os.fsdecode(b"caf\xe9.mp4")
    make_clip(tmp_path / "clip.mp4", frames=2).rename(name)
    code, out, err = run(["eval", str(name), str(name), "--metrics", "psnr"], capsys)
    assert (
        code == 0
        and out.splitlines()[0] == f"dove eval: {tmp_path}/caf\\xe9.mp4 against {tmp_path}/caf\\xe9.mp4, 1 video, cpu"
    ), out
    code, out, err = run(["bench", "--input", str(name), "--model", "bilinear", "--frames", "2"], capsys)
    assert code == 0 and out.splitlines()[0].startswith(
        f"dove bench: bilinear on cpu, input {tmp_path}/caf\\xe9.mp4 ("
    ), out


# ---------------------------------------------------------------- plain text outside a live terminal


def test_tables_outside_a_terminal_are_plain_ascii(tmp_path, capsys, monkeypatch):
    """Piped, a --dry-run plan was drawn with box characters (a screen reader said "box drawings light
    vertical" on every row) and padded with spaces to the widest row: now `label: value` lines, and a
    folder's plan with `|` between columns, nothing at the ends of lines."""
    monkeypatch.delenv("COLUMNS", raising=False)
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=2, rate="16")
    argv = ["--model", "bilinear", "--dry-run"]
    code, out, err = run(["upscale", str(tmp_path / "in" / "a.mp4"), "-o", str(tmp_path / "x.mp4"), *argv], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "plan (--dry-run)" and "input: 64x48, 2 frames at 16.000 fps" in lines, out
    assert "estimated peak GPU memory: none" in lines and "estimated time: none, no model to time" in lines, out
    assert all(line.isascii() and line == line.rstrip() for line in lines), out
    code, out, err = run(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *argv], capsys)
    lines = out.splitlines()
    assert lines[0] == "plan (--dry-run)" and lines[1].startswith("file "), out  # (nothing was estimated)
    code, out, err = run(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dry-run", "-m", "tiny"],
                         capsys)  # fmt: skip
    assert code == 0 and out.splitlines()[0] == "plan (--dry-run; time estimated)", out  # (no GPU: no memory)
    assert code == 0 and [c.strip() for c in lines[1].split("|")] == ["file", "frames", "size", "calls", "work",
                                                                      "GPU memory", "time"], out  # fmt: skip
    row = [c.strip() for c in lines[3].split("|")]  # (no GPU here, and no model to time)
    assert set(lines[2]) == {"-", "+"} and row == ["a.mp4", "2", "64x48->256x192", "2", "1.00", "none", "none"], out
    assert all(line.isascii() and line == line.rstrip() for line in lines), out


def read_pty(fd: int) -> bytes:
    """All a terminal has been sent: the lines of one print may arrive in several writes, and a read
    takes what has come so far (a busy machine's CI read only the first line)."""
    said = b""
    while select.select([fd], [], [], 0.3)[0] and (data := os.read(fd, 4096)):
        said += data
    return said


def test_term_dumb_in_a_terminal_is_plain_as_a_log(monkeypatch):
    """TERM=dumb, which screen-reader users set, showed nothing for a whole run, then a bar of box
    characters: it gets a log's plain lines and tables; another terminal keeps the bar and the box."""
    from dove_cli.console import UpscaleBar, print_rows

    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            for term, live in (("xterm", True), ("dumb", False)):
                monkeypatch.setenv("TERM", term)
                console = Console(file=tty, width=60)
                assert UpscaleBar(False, "a.mp4", console).plain is not live
                print_rows("plan (--dry-run)", [("input", "64x48")], console)
                said = read_pty(master)
                assert ("│".encode() in said) is live, said
                assert live or said == b"plan (--dry-run)\r\ninput: 64x48\r\n", said
    finally:
        os.close(master)


def test_the_bar_says_its_time_is_the_time_left_and_does_not_repeat_the_count(monkeypatch):
    """A terminal's bar read `753/9000 175.91 fps 0:00:44 frame 753`: the time could be the time taken,
    and a one-frame window (a pixel-local model's) is the count again. The time says `left`; a window of
    several frames is still named. Where the length is not known, no time is shown (not a bare `left`)."""
    import io

    from dove_cli.console import UpscaleBar
    from dove_cli.reports import Progress

    monkeypatch.setenv("TERM", "xterm")
    master, slave = os.openpty()
    shown = []
    try:
        with os.fdopen(slave, "w") as tty:
            bar = UpscaleBar(False, "long5.mkv", Console(file=tty, width=120))
            for done, total, window in ((753, 9000, "frame 753"), (25, 9000, "frames 25-57"), (7, None, "frame 7")):
                if total is None:  # (a fresh bar: a run whose length is not known)
                    bar.bar.stop()
                    bar = UpscaleBar(False, "live.ts", Console(file=tty, width=120))
                bar(Progress(done, total, window, 5.0))
                out = io.StringIO()
                Console(file=out, width=120).print(bar.bar.make_tasks_table(bar.bar.tasks))
                shown.append(out.getvalue().split())
            bar.bar.stop()
    finally:
        os.close(master)
    assert shown[0][-3:] == ["fps", "-:--:--", "left"] and "753" not in shown[0][-3:], shown  # (no rate yet: -:--:--)
    assert shown[1][-4:] == ["-:--:--", "left", "frames", "25-57"], shown
    assert "7/?" in shown[2] and "left" not in shown[2], shown


def test_a_terminal_shows_no_bar_before_the_input_opens(tmp_path, capsys, monkeypatch):
    """A missing input in a terminal drew the bar (`0/?  starting ...`), then the error: the bar comes
    with the run's first stage now, and an early error is its one line."""
    from dove_cli import cli
    from dove_cli.console import UpscaleBar

    monkeypatch.setenv("TERM", "xterm")
    master, slave = os.openpty()
    said = b""
    try:
        with os.fdopen(slave, "w") as tty:
            monkeypatch.setattr(cli, "UpscaleBar", partial(UpscaleBar, console=Console(file=tty)))
            code, _, err = run(["upscale", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "x.mp4"), "--model",
                                "bilinear"], capsys)  # fmt: skip
            os.set_blocking(master, False)
            with contextlib.suppress(BlockingIOError):
                said = read_pty(master)
    finally:
        os.close(master)
    assert code == 2 and err == f"error: {tmp_path / 'nope.mp4'}: no such file\n" and said == b"", (err, said)


# ---------------------------------------------------------------- words a listener understands


def test_info_names_the_container_and_an_untagged_language_in_words(tmp_path):
    """`dove info` read FFmpeg's demuxer list (`mov,mp4,m4a,3gp,3g2,mj2`) and `und` (ISO 639 for
    undetermined, the German word "and" to a German screen reader): `MP4/MOV`, FFmpeg's long name for
    other containers, and "no language tag"."""
    from dove_cli.console import described_rows
    from dove_cli.video_io.describe import describe

    mp4 = tmp_path / "a.mp4"  # an AAC track with no language given: FFmpeg's MP4 muxer writes "und"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=16", "-f", "lavfi", "-i", "sine=duration=0.2",
           "-frames:v", "2", "-c:v", "libx264", "-c:a", "aac", mp4)  # fmt: skip
    ffmpeg("-i", mp4, "-c", "copy", tmp_path / "a.mkv")
    help_text = subprocess.run([FFMPEG, "-hide_banner", "-h", "demuxer=matroska"], capture_output=True, text=True)
    matroska = help_text.stdout.split("[", 1)[1].split("]", 1)[0]  # `Demuxer matroska,webm [Matroska / WebM]:`
    rows = dict(described_rows(describe(mp4)))
    assert rows["container"].startswith("MP4/MOV, 0.") and matroska == "Matroska / WebM", rows
    assert rows["#1 audio"].endswith(", no language tag, default") and "und" not in rows["#1 audio"], rows
    assert dict(described_rows(describe(tmp_path / "a.mkv")))["container"].startswith(f"{matroska}, 0.")


def test_a_long_name_is_cut_in_a_narrow_bar_not_the_count(tmp_path):
    """At 50 columns a long (Arabic, emoji) name took the room: the bar, the frame count and the time
    left were cut to `…` (`... هिन्दी.m… 30.04 f…`). The name is cut now; the count, rate and time stay."""
    import io

    from rich.cells import cell_len

    from dove_cli.console import UpscaleBar

    name = "\u0641\u064a\u062f\u064a\u0648 \u0639\u0631\u0628\u064a \u0637\u0648\u064a\u0644 \U0001f389 long name.mp4"
    for width in (50, 80):
        console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
        bar = UpscaleBar(False, name, console)
        bar.bar.update(bar.task, completed=26, total=600, rate="58.29 fps", window="")
        console.print(bar.bar.make_tasks_table(bar.bar.tasks))
        line = console.file.getvalue().rstrip("\n")
        assert "\n" not in line and cell_len(line) <= width, line
        assert "26/600" in line and "58.29 fps" in line and "left" in line, line
        assert ("\U0001f389 long" in line) == (width == 80) and "\u0641\u064a\u062f\u064a\u0648" in line, line


def test_a_narrowing_terminal_drops_the_window_bar_and_name_not_the_counts():
    """Below about 64 columns rich cut every column of the bar evenly (`holiday_20…  12/3… 58.29 f…` at 50).
    The line is fitted to the terminal at each refresh, so a resize is followed: the window goes first,
    then the bar (after shrinking to 10 cells), then the name is cut; the count, rate and time left stay
    whole down to 30 columns."""
    import io
    import math
    import re

    from rich.cells import cell_len

    from dove_cli.console import UpscaleBar

    name, now = "holiday_2019.mp4", [0.0]
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")

    def shown(bar: UpscaleBar, width: int) -> str:  # what its Live draws in a terminal `width` wide
        console.width, console.file = width, io.StringIO()
        console.print(bar.bar)
        return re.sub("\x1b\\[[0-9;]*m", "", console.file.getvalue()).rstrip("\n")  # (colour: the bar's back)

    bar = UpscaleBar(False, name, console)
    bar.bar.get_time = lambda: now[0]  # 6 frames from 5 s to 10 s: 1.2 frames/s
    for now[0], done in ((0.0, 0), (5.0, 6), (10.0, 12)):
        bar.bar.update(bar.task, completed=done, total=345, rate="58.29 fps", window="frames 25-57")
    left = math.ceil((345 - 12) / ((12 - 6) / (10 - 5)))
    time_left = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left"
    # at least: name 16 + bar 10 + ` 12/345` 7 + rate 9 + time 12 + window 12, and a space between each two
    with_window, with_bar, whole_name = 16 + 10 + 7 + 9 + 12 + 12 + 5, 16 + 10 + 7 + 9 + 12 + 4, 16 + 7 + 9 + 12 + 3
    for width in range(120, 29, -1):  # one bar, its terminal narrowed
        line = shown(bar, width)
        assert "\n" not in line and cell_len(line) <= width, (width, line)
        assert "12/345" in line and "58.29 fps" in line and time_left in line, (width, line)
        window, bar_cells = "frames 25-57" in line, sum(line.count(c) for c in "━╸╺")
        assert window == (width >= with_window), (width, line)  # the bar is as long as there is room, to 40
        assert bar_cells == (min(40, width - (with_window if window else with_bar) + 10) if width >= with_bar else 0)
        assert not bar_cells or line.index(" 12/345") == len(name) + bar_cells + 2, line  # (no room left blank)
        assert (name in line) == (width >= whole_name), (width, line)
        first = line.split()[0]  # the name, cut with an ellipsis, or none (at 30, 31: no room for `…`)
        assert name in line or first == "12/345" or (first[-1] == "…" and name.startswith(first[:-1])), line
        assert line.startswith(("h", "…", " 12/345")), line  # (no empty column: ` 12/345` is rich's padding)
    long = f"{name[:-4]} from the camera, the whole afternoon at the lake.mp4"  # 65 cells: cut, the bar kept
    bar.bar.update(bar.task, description=long)
    for width in (64, 80, 120):
        line = shown(bar, width)
        assert cell_len(line) == width and time_left in line and sum(line.count(c) for c in "━╸╺") == 10, line
    # before the frames, with no length to show, the bar (rich's pulse) goes first: the stage says more
    bar = UpscaleBar(False, name, console)
    bar.bar.update(bar.task, window="loading model ...")
    assert shown(bar, 40) == f"{name} 0/? loading model ...", shown(bar, 40)


def test_a_pipe_in_a_name_is_escaped_in_a_plain_table():
    """A plain table puts `|` between columns, so `pipe|.mp4 | 6` split into `pipe` and `.mp4`: a name's
    own `|` is written `\\|` there (the columns split on a `|` that has no backslash before it)."""
    import io
    import re

    from rich.table import Table

    from dove_cli.console import print_table

    table = Table("file", "frames", show_edge=False)  # as dove's tables
    table.add_row("pipe|.mp4", "6")
    console = Console(file=io.StringIO(), width=200)  # not a terminal: plain
    print_table(table, console)
    rows = [re.split(r"\s*(?<!\\)\|\s*", line.strip()) for line in console.file.getvalue().splitlines()]
    assert rows[0] == ["file", "frames"] and rows[-1] == ["pipe\\|.mp4", "6"], rows


def test_a_dry_run_table_shows_nfc_and_nfd_twins_apart(tmp_path):
    """A Linux `café.mp4` (NFC) beside a Mac's (NFD) were two rows reading `café.mp4`: they are spelled
    apart (the NFD's combining mark escaped, each form named); a name without a twin is as it is."""
    import io

    from dove_cli.batch import BatchItem
    from dove_cli.console import print_batch_plans

    names = ["caf\u00e9.mp4", "cafe\u0301.mp4", "nin\u0303o.mp4"]
    items = [BatchItem(tmp_path / n, tmp_path / "out" / n, status="failed") for n in names]
    console = Console(file=io.StringIO(), width=200)
    print_batch_plans(items, console)
    rows = [line.split(" | ")[0].strip() for line in console.file.getvalue().splitlines() if "error" in line]
    assert rows == ["caf\u00e9.mp4 (NFC)", "cafe\\u0301.mp4 (NFD)", "nin\u0303o.mp4"], rows
