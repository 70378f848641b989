"""The command line as a new user meets it: help, version, messages, and what is checked before work."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import demo_clip
from dove_cli.cli import main
from dove_cli.errors import InputError, OutputError
from dove_cli.upscaling import upscale
from media import (
    FFMPEG,
    caption_text,
    decoded_frame_count,
    ffinfo,
    ffmpeg,
    frame_times,
    make_broadcast,
    make_caption_ts,
    make_clip,
    make_programmes_ts,
    ordered_copy,
    packet_md5,
    raw_rgb,
)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_version_and_help_once(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip().startswith("dove 0.")
    code, out, _ = run([], capsys)
    assert code == 0 and out.count("Usage: dove") == 1  # bare `dove` printed the help twice


@pytest.mark.parametrize(
    "command", [["upscale"], ["train"], ["train", "export"], ["bench"], ["eval"], ["download-weights"], ["degrade"]]
)
def test_help_reads_at_80_columns(command, monkeypatch):
    """Whole option names, no `<bool>` on on/off flags, no -1 defaults, a name for every value
    (FILE, N, DIR...), not the Python type (`<path>`, `<int>`, `<list[str]>`), and a plain usage line."""
    monkeypatch.setenv("COLUMNS", "80")
    out = subprocess.run([sys.executable, "-m", "dove_cli.cli", *command, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in out.stdout
    assert "<bool>" not in out.stdout and "default: -1" not in out.stdout
    options = [line for line in lines if line.lstrip().startswith("-")]
    assert not [line for line in options if re.search(r"<(path|int|str|float|list\[\w+\])>", line)]
    usage = lines[0]  # arguments as click writes them: INPUT, [GT] (not typer's {INPUT}, [[GT]])
    assert usage.startswith("Usage: dove") and "{" not in usage and "[[" not in usage, usage


def test_upscale_help_groups_its_options(capsys):
    """Over 50 options: grouped by what they are about, in the order a user decides them."""
    from dove_cli.options import UpscaleOptions

    code, out, _ = run(["upscale", "--help"], capsys)
    assert code == 0
    titles = [line[:-1] for line in out.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert titles == ["Arguments", "Options", *UpscaleOptions.HELP_PANELS.values()]
    sections = dict(zip(titles, re.split(r"^\S.*:$", out, flags=re.M)[1:], strict=True))
    flags = {"Options": "--dry-run -q", "Model and device": "--model --scale --download",
             "Windows: tiles, chunks and blending": "--tile --tile-overlap --color-fix", "Input": "--fps --preview",
             "Output": "--codec --crf --resume", "Many GPUs and machines (Ray)": "--ray --workers"}  # fmt: skip
    where = {flag: title for title, names in flags.items() for flag in names.split()}
    for flag, title in where.items():
        found = [t for t, text in sections.items() if re.search(rf"^\s+(-\w, )?{flag}\b", text, re.M)]
        assert found == [title], flag
    code, out, _ = run(["bench", "--help"], capsys)
    assert code == 0 and "\nModel and device:\n" in out and "\nWindows: tiles, chunks and blending:\n" in out
    assert "[default: tiny]" in out and "downloaded DOVE" not in out  # bench's own default, said once


def test_codec_and_container_are_checked_before_the_model_loads(tmp_path, capsys, caplog):
    """A codec the container cannot hold is said at once, with the extensions that can hold it."""
    code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mkv"), "--codec", "png",
                        "--model", str(tmp_path / "no-such-model")], capsys)  # fmt: skip
    assert code == 2 and "the matroska container cannot hold png video" in err
    assert "or an extension that can (" in err and ".mov" in err and ".mkv" not in err.split("that can")[1]
    assert "no-such-model" not in err and len(err.strip().splitlines()) == 1
    for codec, usual in (("png", ".mov"), ("ffv1", ".mkv")):  # MP4 has no standard mapping for them: a warning
        caplog.clear()
        code, _, _ = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / f"{codec}.mp4"), "--codec",
                          codec, "--model", "bilinear", "--scale", "1", "--preview", "0+0.1s", "-q"], capsys)  # fmt: skip
        assert code == 0 and f"{codec} in .mp4 plays only in FFmpeg-based players (mpv, VLC); {usual} is" in caplog.text
    caplog.clear()  # settings a lossless codec ignores: said once, not once per writer the run opens
    code, _, _ = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "l.mkv"), "--codec", "ffv1", "--crf",
                      "20", "--model", "bilinear", "--scale", "1", "--preview", "0+0.1s", "-q"], capsys)  # fmt: skip
    said = f"{tmp_path / 'l.mkv'}: codec ffv1 is lossless; --crf/--preset ignored"  # named, as each warning is
    assert code == 0 and caplog.text.count(said) == 1, caplog.text


def test_option_mistakes_are_said_before_an_existing_output(tmp_path, capsys):
    """Fixing one mistake must not reveal the next: a bad --crf, codec, pixel format or device is
    said first, the existing output (a matter of --overwrite) after them."""
    out = tmp_path / "x.mp4"
    out.write_bytes(b"an earlier result")
    base = ["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear"]
    for flags, said in ((["--crf", "99"], "--crf 99 is out of range"),
                        (["--codec", "h263"], "--codec h263: unknown codec (did you mean h26"),
                        (["--pix-fmt", "yuv999"], "--pix-fmt yuv999: unknown pixel format (libx264 writes gray,"),
                        (["--pix-fmt", "yuv420"], "--pix-fmt yuv420: unknown pixel format (did you mean yuv420p?"),
                        ([], "already exists")):  # fmt: skip
        code, _, err = run([*base, *flags], capsys)
        assert code == 2 and said in err, (flags, err)
    assert out.read_bytes() == b"an earlier result" and sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


def test_preview_past_the_end_says_how_long_the_clip_is(tmp_path, capsys, monkeypatch):
    """Said before the model loads (it was said after: a minute of loading the 5B model for nothing);
    just past the header's length, the reader finds no frame and says the same."""
    import dove_cli.upscaling

    with monkeypatch.context() as m:
        m.setattr(dove_cli.upscaling, "load_model", lambda *a: pytest.fail("the model was loaded"))
        code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "tiny",
                            "--preview", "1:00+5s"], capsys)  # fmt: skip
    assert code == 2 and "no video frames in the --preview range 1:00+5s (the clip is 2.06 s long)" in err
    code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear",
                        "--preview", "2.3+5s"], capsys)  # fmt: skip
    assert code == 2 and "no video frames in the --preview range 2.3+5s (the clip is 2.06 s long)" in err


def test_preview_times_are_read_as_written():
    """Decimal text read exactly (a float's 1.001 is 1.1e-16 short: a chapter ending at 1.001 s was kept,
    0 s long); the reference is the arithmetic of the text."""
    from dove_cli.options import parse_preview

    assert parse_preview("1.001+1s") == (Fraction(1001, 1000), 1)
    assert parse_preview("1:01:20.3+0.1") == (3600 + 60 + 20 + Fraction(3, 10), Fraction(1, 10))


def test_what_the_run_will_do_differently_is_said(tmp_path, caplog, monkeypatch):
    from collections import namedtuple

    import psutil

    from dove_cli.upscaling import upscale

    with caplog.at_level(logging.WARNING):
        upscale(demo_clip("001.mp4"), tmp_path / "x.mp4", model="tiny", scale=2, dry_run=True, device="cpu")
    assert "--scale 2: DOVE was trained for x4" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):  # x1, which the README advises for RealVSR and MVSR4x: upsamples nothing
        upscale(demo_clip("001.mp4"), tmp_path / "x.mp4", model="tiny", scale=1, dry_run=True, device="cpu")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith("--scale")]
    assert said == [("INFO", "--scale 1: the model restores the input at its own size, without upsampling it (for an "
                     "input already at the size wanted, as the authors run RealVSR and MVSR4x); DOVE was trained "
                     "for x4")]  # fmt: skip
    caplog.clear()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: namedtuple("vm", "available total")(2 << 30, 4 << 30))
    with caplog.at_level(logging.WARNING):  # little memory: --tile auto picks small tiles
        upscale(demo_clip("001.mp4"), tmp_path / "x.mp4", model="tiny", tile_overlap=1000, dry_run=True, device="cpu")
    assert "--tile-overlap 1000 is more than a" in caplog.text  # --tile auto chose a tile: the overlap was cut


def test_encoder_banners_are_quiet_unless_verbose(tmp_path):
    """SVT-AV1 prints about 60 lines per file; -q means nothing on stderr. `-v` works where users
    type it, after the command too (click takes the app's options only before it)."""
    import os

    from dove_cli.cli_args import verbose_first

    base = [sys.executable, "-m", "dove_cli.cli"]
    env = {k: v for k, v in os.environ.items() if k != "SVT_LOG"}  # main() in this process may have set it
    args = ["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "a.mkv"), "--model", "bilinear", "--scale",
            "1", "--codec", "av1", "--preview", "0+0.3s", "-q"]  # fmt: skip
    quiet = subprocess.run([*base, *args], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = subprocess.run([*base, *args, "--overwrite", "-v"], capture_output=True, text=True, env=env)
    assert loud.returncode == 0 and "Svt[info]" in loud.stderr
    assert verbose_first(["x", "--verbose", "--", "-v"]) == ["--verbose", "x", "--", "-v"]  # `--` ends options


def test_dry_run_plan_says_what_becomes_of_each_audio_track(tmp_path, capsys):
    """--dry-run listed no audio: each track now has a line, copied, re-encoded (to what) or left out
    and why (here: another programme's, in a broadcast multiplex; the ffmpeg binary lists them)."""
    src = make_programmes_ts(tmp_path / "mux.ts")
    tracks = [re.search(r"Audio: (\w+).*?(\d+) Hz, (\w+)", a.text).groups() for a in ffinfo(src).streams
              if a.kind == "Audio"]  # fmt: skip
    assert tracks == [("mp2", "44100", "mono")] * 2
    base = ["upscale", str(src), "-o", str(tmp_path / "b.mkv"), "--model", "bilinear", "--dry-run", "--video-stream"]
    code, out, err = run([*base, "2"], capsys)
    rows = [line for line in out.splitlines() if line.startswith("audio")]
    assert code == 0 and rows == ["audio: #1 mp2 mono 44.1 kHz: left out: another programme's",
                                  "audio: #3 mp2 mono 44.1 kHz: copied"], out  # fmt: skip
    code, out, err = run([*base, "0", "--audio", "transcode"], capsys)
    rows = [line for line in out.splitlines() if line.startswith("audio")]
    assert code == 0 and rows == ["audio: #1 mp2 mono 44.1 kHz: re-encoded to aac mono at a nominal 69 kb/s",
                                  "audio: #3 mp2 mono 44.1 kHz: left out: another programme's"], out  # fmt: skip


def test_the_cli_leaves_pyav_logging_off(tmp_path):
    """PyAV's log callback needs the GIL on FFmpeg's threads: with it installed, closing a
    frame-threaded decoder mid-stream deadlocks (it hung CI in dataset reads). The CLI must not
    install it, with or without --verbose."""
    import av.logging

    for flags in ([], ["--verbose"]):
        with pytest.raises(SystemExit) as done:
            main([*flags, "upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mkv"), "--model", "bilinear",
                  "--dry-run"])  # fmt: skip
        assert done.value.code == 0
        assert av.logging.get_level() is None


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="a GPU machine may well have NVENC: nothing to refuse"
)
def test_nvenc_without_an_nvidia_driver_is_one_line_naming_the_cpu_encoder(tmp_path, capsys):
    out = tmp_path / "x.mp4"
    with pytest.raises(SystemExit) as done:
        main(["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear", "--codec", "hevc_nvenc"])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1, err
    assert "codec hevc_nvenc needs an NVIDIA GPU with NVENC" in err and "use --codec hevc (libx265, the CPU" in err
    assert "none is usable here" in err and "(" not in err.split("NVENC")[1].split(";")[0]  # not FFmpeg's raw words
    assert not out.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU may have fp8")
@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_fp8_without_an_fp8_gpu_is_refused_before_any_work(tmp_path, capsys, extra):
    out = tmp_path / "x.mp4"
    with pytest.raises(SystemExit) as done:
        main(["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "tiny", "--quantize", "fp8", *extra])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1, err
    assert "--quantize fp8 needs an NVIDIA GPU with fp8" in err and not out.exists()
    assert "int8 and nf4 need one too" in err and "use --quantize int8" not in err  # they need CUDA as well


@pytest.mark.parametrize("quantize", ["int8", "nf4", "fp8"])
@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_quantize_on_bilinear_is_one_warning_whatever_the_mode(tmp_path, capsys, caplog, quantize, extra):
    """--model bilinear has no weights to quantize: fp8 was refused (needs a GPU) where int8/nf4
    warned, and a real run warned twice (its host-memory check loaded the model too)."""
    argv = ["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear",
            "--quantize", quantize, "--offload", "none" if quantize == "fp8" else "model", *extra]  # fmt: skip
    code, _, err = run(argv, capsys)
    said = [r.getMessage() for r in caplog.records if "bilinear has no network" in r.getMessage()]
    assert code == 0 and "error" not in err, err
    assert len(said) == 1, err
    assert f"--quantize {quantize}" in said[0] and ("--offload model" in said[0]) == (quantize != "fp8")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="plans a card on paper: no GPU here")
def test_fp8_plans_for_a_card_on_paper_without_cuda(tmp_path, capsys):
    """--dry-run --vram plans for a GPU this machine lacks: no CUDA capability to ask (torch raised),
    and the plan counts the transformer's 1-byte fp8 weights."""
    argv = ["upscale", str(demo_clip("001.mp4")), "-o", str(tmp_path / "x.mp4"), "--dry-run", "--vram", "24",
            "--model", "full-random"]  # fmt: skip
    code, out, err = run([*argv, "--quantize", "fp8"], capsys)
    assert code == 0 and "Traceback" not in err and "error" not in err, err
    assert "planned for a 24 GiB GPU" in out + err

    from dove_cli.upscaling import upscale

    plans = {q: upscale(demo_clip("001.mp4"), tmp_path / "x.mp4", model="full-random", vram=24, quantize=q,
                        dry_run=True) for q in ("none", "fp8")}  # fmt: skip
    assert plans["fp8"].est_peak_device_bytes != plans["none"].est_peak_device_bytes


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="plans a card on paper: no GPU here")
def test_the_plan_table_says_the_memory_options_it_assumed(tmp_path, capsys, monkeypatch):
    """Two saved dry runs (nf4 against offload) could not be told apart; fp8 planned for a card says
    which cards run it (an RTX 30 has no fp8). Defaults are not said."""
    argv = ["upscale", str(demo_clip("001.mp4")), "-o", str(tmp_path / "x.mp4"), "--dry-run", "--vram", "12",
            "--model", "full-random"]  # fmt: skip
    monkeypatch.delenv("COLUMNS", raising=False)  # xdist sets 80: rows would fold
    rows = {}
    for extra in ([], ["--quantize", "nf4", "--offload", "model"], ["--quantize", "fp8"]):
        code, out, err = run([*argv, *extra], capsys)
        assert code == 0, err
        row = next(line for line in out.splitlines() if line.startswith("device: "))
        rows[" ".join(extra)] = row.removeprefix("device: ")
    assert rows[""] == "cuda:0, bfloat16"
    assert rows["--quantize nf4 --offload model"] == "cuda:0, bfloat16, --offload model, --quantize nf4"
    assert "--quantize fp8 (needs an Ada (RTX 40) or newer GPU: compute capability 8.9+)" in rows["--quantize fp8"]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="plans a card on paper: no GPU here")
def test_a_dry_run_plans_bitsandbytes_weights_on_full_random(tmp_path, capsys):
    """The README's advice for 8 GiB cards, `--dry-run --model full-random --quantize nf4`, was refused
    (bitsandbytes quantises while loading, and full-random is built in memory): a dry run loads
    nothing, so it plans with the bytes bitsandbytes would store, bitsandbytes or not; a real run
    on full-random still refuses it."""
    import torch

    from dove_cli.engine import RANDOM_CONFIGS, skeleton
    from dove_cli.errors import OptionError
    from dove_cli.models import check_quantize, load_model
    from dove_cli.options import UpscaleOptions
    from dove_cli.upscaling import upscale

    clip, out = demo_clip("002.mp4"), tmp_path / "x.mp4"
    argv = ["upscale", str(clip), "-o", str(out), "--dry-run", "--vram", "8", "--model", "full-random"]
    code, printed, err = run([*argv, "--quantize", "nf4"], capsys)
    assert code == 0 and "error" not in err and "planned for an 8 GiB GPU" in printed, err
    # The same windows (64 px tiles, blended on the GPU): the peaks differ by the weights alone, and
    # bitsandbytes stores the transformer's Linear weights in 1 (int8) or 1/2 (nf4) of bf16's 2 bytes.
    peak = {q: upscale(clip, out, model="full-random", vram=80, tile=64, quantize=q, dry_run=True)
            .est_peak_device_bytes for q in ("none", "int8", "nf4")}  # fmt: skip
    linear = sum(m.weight.numel() for m in skeleton(*RANDOM_CONFIGS["full"]).transformer.modules()
                 if isinstance(m, torch.nn.Linear))  # fmt: skip
    assert (peak["none"] - peak["int8"], peak["none"] - peak["nf4"]) == (linear, int(1.5 * linear))
    small = {q: upscale(clip, out, model="full-random", vram=8, quantize=q, dry_run=True) for q in ("none", "nf4")}
    assert small["none"].tile == 64 < small["nf4"].tile  # the room they leave goes to the windows
    opts = UpscaleOptions(model="full-random", quantize="nf4")
    check_quantize(opts, torch.device("cuda", 0), dry_run=True)  # a GPU here, bitsandbytes or not
    with pytest.raises(OptionError, match="--quantize nf4 is applied while loading weights; --model tiny is built"):
        load_model(UpscaleOptions(model="tiny", quantize="nf4"), torch.device("cpu"), torch.float32)  # as full-random
    code, _, err = run([*argv, "--quantize", "nf4", "--offload", "sequential"], capsys)  # as the run would
    assert code == 2 and "--offload sequential cannot move bitsandbytes weights: use --offload model" in err


def test_fp8_check_without_cuda_is_one_line_not_a_torch_error(monkeypatch):
    import torch

    from dove_cli.engine import check_fp8
    from dove_cli.errors import OptionError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OptionError, match="this run has no CUDA GPU"):
        check_fp8(torch.device("cuda", 0))


@pytest.mark.parametrize("size", ["0", "-1", "inf", "nan"])
def test_a_vram_that_is_no_card_size_is_one_line(tmp_path, capsys, size):
    """--vram inf and nan were a traceback (int(inf) in the budget); 0 and -1 were already refused."""
    argv = ["upscale", str(demo_clip("001.mp4")), "-o", str(tmp_path / "x.mp4"), "--dry-run", "--vram", size,
            "--model", "full-random"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 2 and f"--vram {size}: give the card's memory in GiB" in err and "Traceback" not in err, err


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_vram_with_device_cpu_is_refused_with_or_without_a_dry_run(tmp_path, capsys, dry_run):
    """--dry-run --device cpu --vram 8 dropped --vram and planned for the CPU, while the run refused it
    saying a dry run plans for the card: both refuse now, and say how to plan for the card."""
    argv = ["upscale", str(demo_clip("001.mp4")), "-o", str(tmp_path / "x.mp4"), *dry_run, "--device", "cpu",
            "--vram", "8", "--model", "full-random"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 2 and "on the CPU (--device cpu); --dry-run without --device plans for a card" in err, out + err


def test_messages_read_as_english(tmp_path, capsys, caplog):
    """No validator prefix in a bad choice, all the codecs and metrics in the help, '1 scene cut'."""
    from dataclasses import replace

    code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--offload", "foo"],
                       capsys)  # fmt: skip
    assert code == 2 and "'foo' is not one of" in err and "Value error" not in err, err
    for flag, said in (("--crf", "--crf': not a whole number"), ("--vram", "--vram': not a number")):
        code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), flag, "abc"], capsys)
        assert code == 2 and said in err and "Input should be" not in err, err
    for command, words in ((["upscale"], ("h264_nvenc", "hevc_nvenc")), (["eval"], ("fastervqa",))):
        code, out, _ = run([*command, "--help"], capsys)
        assert code == 0 and all(w in out.replace("\n", " ") for w in words), out

    from dove_cli.upscaling import upscale

    with caplog.at_level(logging.INFO, logger="dove_cli"):  # -v: the plan, and where the time went
        result = upscale(demo_clip("007.mp4"), tmp_path / "x.mp4", model="bilinear", scale=1, preview="0+0.2s")
    assert "007.mp4: plan: 4 windows of 1 frame, work ratio 1.09, output 316x178, est. peak host" in caplog.text
    assert "007.mp4: time per stage: " in caplog.text
    assert ", 1 OOM retry, 1 scene cut -> " in replace(result, cuts=[3], retries=1).summary()
    big = replace(result.plan, chunks=4, chunk=33, chunk_overlap=8, tiles=16, tile=320, tile_overlap=32,
                  work_ratio=1.48, est_peak_device_bytes=int(17.5 * 2**30), est_peak_host_bytes=int(0.6 * 2**30),
                  est_seconds=37 * 365.25 * 86400, output_size=(1440, 2560))  # fmt: skip
    assert big.summary() == ("plan: 4 windows of 33 frames (8 shared) x 16 tiles of 320 px (32 px overlap), work "
                             "ratio 1.48, output 2560x1440, est. peak GPU 17.5 GiB, host 0.6 GiB, est. time about "
                             "37 years (22 to 67 years)")  # fmt: skip
    assert replace(big, est_seconds=3725.0).summary().endswith("est. time about 1 h 2 min (37 min to 1 h 51 min)")
    assert replace(big, est_seconds=3.5 * 86400).summary().endswith("est. time about 3.5 days (2.1 to 6.3 days)")
    assert replace(result, stages={"decode": 0.2, "transformer": 3.0, "blend": 0.01},
                   device_stages={"transformer": 2.9}).stages_summary() == (
        "time per stage: transformer 3.0 s (GPU 2.9 s), decoding 0.2 s")  # fmt: skip
    resumed = replace(result, frames=100, seconds=10.0, resumed_from=60, windows_skipped=2).summary()
    assert (
        resumed.startswith("40 frames made now in 10.0 s (4.00 fps), 100 in the output, peak host ")
        and "resumed after frame 60 (2 windows" in resumed
    )
    joined = replace(result, frames=100, seconds=0.4, resumed_from=100).summary()  # all saved: only the join
    assert joined.startswith("nothing left to make, 100 in the output, peak host ")
    offloaded = upscale(demo_clip("007.mp4"), tmp_path / "y.mp4", model="bilinear", scale=1, preview="0+0.2s",
                        offload="model")  # fmt: skip
    assert "offload none" in offloaded.summary()  # bilinear has no weights to offload


@pytest.mark.parametrize("quiet", [False, True])
def test_model_dir_of_download_weights_is_said_unless_quiet(tiny_model_dir, tmp_path, caplog, capsys, quiet):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "stage2").symlink_to(tiny_model_dir)  # as `dove download-weights --dir dl` leaves it
    argv = ["upscale", str(demo_clip("001.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "dl"),
            "--dry-run", *(["-q"] if quiet else [])]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert ("holds stage2/: using" in caplog.text) is not quiet


def test_folders_made_for_the_output_are_said(tmp_path, caplog, capsys):
    """-o into a folder that does not exist yet: the run says it made it (a typo should not go unnoticed);
    a dry run makes none and says nothing; a folder run says it made its output folder. Two or more
    missing folders (`-o /nonexist/x.mp4` as root made /nonexist) are refused before any work, naming
    the first, for a single file, a folder run's OUT and a manifest; nothing is made."""
    clip = str(demo_clip("007.mp4"))
    caplog.set_level(logging.INFO, logger="dove_cli.note")
    code, _, err = run(["upscale", clip, "-o", str(tmp_path / "typo" / "x.mp4"), "--model", "bilinear", "--dry-run"],
                       capsys)  # fmt: skip
    assert code == 0, err
    assert "created" not in caplog.text and not (tmp_path / "typo").exists()
    out = tmp_path / "new" / "sub" / "x.mp4"
    for args in (["-o", str(out)], ["-o", str(out), "--dry-run"], ["-o", str(tmp_path / "x.mp4"), "--manifest",
                                                                    str(out.with_suffix(".json"))]):  # fmt: skip
        code, _, err = run(["upscale", clip, *args, "--model", "bilinear", "--preview", "0+0.5s"], capsys)
        assert code == 2 and err.count("\n") == 1 and f"folder {tmp_path / 'new'} does not exist; create it" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "new").mkdir()
    code, _, err = run(["upscale", clip, "-o", str(out), "--model", "bilinear", "--preview", "0+0.5s"], capsys)
    assert code == 0, err
    assert f"{out}: created folder {out.parent}" in caplog.text
    caplog.clear()
    code, _, err = run(["upscale", clip, "-o", str(tmp_path / "new" / "y.mp4"), "--model", "bilinear", "--preview",
                        "0+0.5s"], capsys)  # fmt: skip
    assert code == 0 and "created" not in caplog.text  # the folder was there
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").symlink_to(clip)
    code, _, err = run(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "no" / "outs"), "--model", "bilinear",
                        "--preview", "0+0.5s"], capsys)  # fmt: skip
    assert code == 2 and f"folder {tmp_path / 'no'} does not exist" in err and not (tmp_path / "no").exists()
    (tmp_path / "in" / "s" / "t").mkdir(parents=True)
    (tmp_path / "in" / "a.mp4").rename(tmp_path / "in" / "s" / "t" / "a.mp4")  # --recursive: OUT/s/t/ in a new OUT
    for plan in (["--dry-run"], []):
        code, out, err = run(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "outs"), "--model", "bilinear",
                              "--preview", "0+0.5s", "--recursive", *plan], capsys)  # fmt: skip
        assert code == 0 and "does not exist" not in out + err, out + err
    assert f"created output folder {tmp_path / 'outs'}" in caplog.text
    assert (tmp_path / "outs" / "s" / "t" / "a.mp4").is_file()


def test_overwrite_keeps_the_replaced_files_mode_and_group(tmp_path, capsys):
    """--overwrite wrote a new file under a temporary name and renamed it over the old one, so a private
    0600 or 0640 output (through a symlink too) and its manifest became the umask's 0644, world-readable.
    cp and `ffmpeg -y` keep them: so does dove now, the group too (where this user may set it)."""
    clip = str(demo_clip("007.mp4"))
    out, target, manifest = tmp_path / "o.mp4", tmp_path / "t.mp4", tmp_path / "m.json"
    (tmp_path / "link.mp4").symlink_to(target)
    group = 1 if os.geteuid() == 0 else os.getegid()  # (root may give any group; a user one of its own)
    for path, mode in ((out, 0o640), (target, 0o600), (manifest, 0o600)):
        path.write_bytes(b"old")
        os.chmod(path, mode)
        os.chown(path, -1, group)
    base = ["upscale", clip, "--model", "bilinear", "--scale", "1", "--preview", "0+0.1s", "--overwrite", "-q"]
    code, _, err = run([*base, "-o", str(out), "--manifest", str(manifest)], capsys)
    assert code == 0, err
    code, _, err = run([*base, "-o", str(tmp_path / "link.mp4")], capsys)
    assert code == 0, err
    for path, mode in ((out, 0o640), (target, 0o600), (manifest, 0o600)):
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_gid, st.st_size > 3) == (mode, group, True), path
    assert (tmp_path / "link.mp4").is_symlink()


def test_overwrite_refuses_another_users_symlink_at_the_output_name(tmp_path, capsys):
    """Another user's link at the output's name in a shared folder had --overwrite replace the file it
    names, anywhere this user may write. Such a link is refused in one line (with or without --overwrite),
    the file it names untouched; a link of the folder's owner is followed (Linux's protected_symlinks rule)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to make a link owned by another user")
    from dove_cli.video_io import write_whole

    victim = tmp_path / "home" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("IMPORTANT")
    share = tmp_path / "share"
    share.mkdir(mode=0o1777)
    link = share / "out.mp4"
    link.symlink_to(victim)
    os.lchown(link, 1234, 1234)
    base = ["upscale", str(demo_clip("007.mp4")), "-o", str(link), "--model", "bilinear", "--scale", "1",
            "--preview", "0+0.1s", "-q"]  # fmt: skip
    message = (f"error: {link}: is a link to {victim} made by another user (uid 1234); refused, as writing through "
               "it would replace that file (remove the link, or choose another name)")  # fmt: skip
    for more in ([], ["--overwrite"]):
        code, _, err = run([*base, *more], capsys)
        assert code == 2 and err.splitlines() == [message], err
    with pytest.raises(OutputError, match="made by another user"):  # a side file, renamed into place
        write_whole(link, "{}")
    assert victim.read_text() == "IMPORTANT" and link.is_symlink() and sorted(os.listdir(share)) == ["out.mp4"]
    os.chown(share, 1234, 1234)  # the folder's owner's link: theirs to point anywhere, as the kernel allows
    write_whole(link, "{}")
    assert victim.read_text() == "{}" and link.is_symlink()


def test_a_write_protected_output_is_refused_even_with_overwrite(tmp_path):
    """A 0444 output (or manifest) that this user may not write was replaced without a word, and made
    writable; cp and `ffmpeg -y` refuse it. Refused now before any work, naming the fix. (Root may
    write anything: the check runs without the capability that allows it, as a user's run would.)"""
    for name in ("o.mp4", "m.json"):
        (tmp_path / name).write_bytes(b"old")
        os.chmod(tmp_path / name, 0o444)
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to run as root without CAP_DAC_OVERRIDE")
        as_user = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    check = ("import sys; from pathlib import Path; from dove_cli.video_io import check_output\n"
             "for name, option in (('o.mp4', ''), ('m.json', '--manifest')):\n"
             "    try: check_output(Path(name), True, option=option)\n"
             "    except Exception as exc: print(exc)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run([*as_user, sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=60)  # fmt: skip
    assert done.stdout.splitlines() == [
        f"{said}: is write-protected; make it writable (chmod u+w {name}) or remove it to replace it"
        for said, name in (("o.mp4", "o.mp4"), ("--manifest m.json", "m.json"))
    ], done.stdout + done.stderr
    assert all((tmp_path / n).read_bytes() == b"old" and (tmp_path / n).stat().st_mode & 0o777 == 0o444
               for n in ("o.mp4", "m.json"))  # fmt: skip


def test_a_second_run_on_one_files_manifest_is_refused(tmp_path, capsys):
    """Two single-file runs given one --manifest both exited 0, and the second's record replaced the
    first's. As for a folder: refused before any work (exit 75) while the first holds run.json.lock."""
    import fcntl

    manifest, out = tmp_path / "run.json", tmp_path / "o.mp4"
    with open(tmp_path / "run.json.lock", "w") as held:
        held.write("dove run 123 on host since 2026-01-01T00:00:00.000Z\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear", "--scale",
                            "1", "--preview", "0+0.1s", "--manifest", str(manifest)], capsys)  # fmt: skip
    assert code == 75 and err == (
        f"error: --manifest {manifest}: dove run 123 on host since 2026-01-01T00:00:00.000Z "
        "is writing it; wait for that run to end, or give this one another --manifest\n"
    )
    assert not out.exists() and not manifest.exists()


def test_a_manifest_on_stdout_whose_reader_went_away_is_141(tmp_path, monkeypatch):
    """`--manifest - | true`: exit 2, "cannot write the manifest (Broken pipe)", where README's table
    gives 141 for a stdout whose reader went away (as `--dry-run | true`)."""
    from dove_cli.manifest import write_json

    read, write = os.pipe()
    os.close(read)
    monkeypatch.setattr(sys, "stdout", open(write, "w"))
    with pytest.raises(SystemExit) as stop:
        write_json(Path("-"), {"status": "done"}, "; the video is complete", "")
    assert stop.value.code == 141


def test_dry_run_plans_over_an_existing_output_and_says_the_run_needs_overwrite(tmp_path, capsys, caplog):
    out = tmp_path / "x.mp4"
    argv = ["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear", "--preview", "0+0.5s"]
    assert run(argv, capsys)[0] == 0
    before = out.read_bytes()
    code, plan, err = run([*argv, "--dry-run"], capsys)
    assert code == 0, err
    assert "already exists; the run will need --overwrite" in caplog.text and "tile" in plan
    assert re.search(r"frames at 16\.000 fps\s", plan)  # a whole rate, not again as "(16)"
    assert out.read_bytes() == before  # a plan touches nothing
    code, _, err = run(argv, capsys)  # the run itself still refuses
    assert code == 2 and "already exists (use --overwrite to replace it)" in err


def test_a_sigterm_is_forgotten_by_the_next_run_in_the_process(tmp_path, capsys, monkeypatch):
    """main() called again in one process (tests, scripts): a Ctrl-C exits 130 even after an earlier
    run there was stopped by SIGTERM (143)."""
    import dove_cli.cli as cli
    import dove_cli.upscaling as upscaling
    from dove_cli.errors import Interrupted

    def interrupted(*args, **kwargs):
        raise Interrupted("x.mp4: interrupted; nothing was kept")

    monkeypatch.setattr(upscaling, "upscale", interrupted)
    monkeypatch.setattr(cli._stop, "signum", 15)  # the earlier run's: SIGTERM
    code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear",
                        "-q"], capsys)  # fmt: skip
    assert code == 130 and "interrupted" in err, (code, err)


def test_bench_table_shares_are_of_the_wall_time(capsys):
    """The main thread's stages and "other" add up to the wall time; decoding and encoding run beside
    them on their own threads and are marked so (their shares used to push the column past 100%)."""
    from dove_cli.bench import stage_rows

    rows = stage_rows({"decode": 3.0, "upsample": 2.0, "transformer": 5.0, "encode": 4.0}, 10.0)
    assert rows == [("upsampling", 2.0, "20%"), ("transformer", 5.0, "50%"), ("other (opening, planning)", 3.0, "30%"),
                    ("decoding (own thread)", 3.0, "30%"), ("encoding (own thread)", 4.0, "40%")]  # fmt: skip
    code, out, _ = run(["bench", "--model", "bilinear", "--frames", "3", "--height", "64", "--width", "64"], capsys)
    lines = {line.split("|")[0].strip(): line.split("|") for line in out.splitlines()[2:] if "|" in line}  # (no header)
    total = float(lines["total (wall time)"][1])
    beside = [name for name in lines if name.endswith("(own thread)")]
    assert code == 0 and beside == ["decoding (own thread)", "encoding (own thread)"], out
    main_thread = sum(float(cells[1]) for name, cells in lines.items() if name not in beside and "total" not in name)
    assert main_thread == pytest.approx(total, abs=0.005 * len(lines)), out  # rounded to 3 decimals per row


@pytest.mark.parametrize(
    "input_name,output_name,message",
    [
        ("IMAGE", "DIR", "DIR: is a folder; give a file name like DIR/frame.mp4"),  # the input's name, not out.mp4
        ("-", "DIR/x.mp4", "-: reading from standard input or a pipe is not supported"),
        ("FIFO", "DIR/x.mp4", "FIFO: reading from standard input or a pipe is not supported"),  # was "file is empty"
        ("CLIP", "-", "-: writing to standard output is not supported"),  # it was "unknown output extension"
    ],
)
def test_paths_dove_cannot_use_say_what_to_give(
    tmp_path, capsys, monkeypatch, stdin_from, input_name, output_name, message
):
    monkeypatch.chdir(tmp_path)
    read, write = os.pipe()
    os.close(write)
    stdin_from(read)  # `-`: a pipe, as in `cat a.mp4 | dove upscale -` (a file there is read)
    os.close(read)
    (tmp_path / "DIR").mkdir()
    clip = str(demo_clip("002.mp4"))
    Image.new("RGB", (32, 32)).save(tmp_path / "frame.png")
    os.mkfifo(tmp_path / "FIFO")  # no writer: opening it to probe would wait for ever
    input_name = input_name.replace("CLIP", clip).replace("IMAGE", "frame.png")
    code, _, err = run(["upscale", input_name, "-o", output_name, "--model", "bilinear"], capsys)
    assert code == 2 and err.strip().startswith(f"error: {message}"), err
    assert len(err.strip().splitlines()) == 1 and not list((tmp_path / "DIR").iterdir())


@pytest.mark.parametrize("source", ["CLIP", "IMAGES"])
def test_an_output_without_extension_says_what_to_give(tmp_path, capsys, monkeypatch, source):
    """`-o outpng2` (no extension, no slash) was "unknown output extension '(none)'". A folder takes a
    video's name, or an image sequence's images' names (`-o outpng2/` is that folder)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pngs").mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32)).save(tmp_path / "pngs" / f"{i:03d}.png")
    input_name = str(demo_clip("002.mp4")) if source == "CLIP" else "pngs"
    code, _, err = run(["upscale", input_name, "-o", "outpng2", "--model", "bilinear", "--fps", "25"], capsys)
    said = (", an image pattern such as outpng2/%06d.png, or a folder (outpng2/)" if source == "CLIP" else
            ", an image pattern such as outpng2/%06d.png, or a folder (outpng2/); the images keep their names")  # fmt: skip
    assert code == 2 and err.strip() == f"error: outpng2: no extension: give a file name such as outpng2.mp4{said}", err
    assert sorted(os.listdir(tmp_path)) == ["pngs"]
    if source == "IMAGES":  # a folder: the images' own names (it offered outpng2/000.mp4, a frame's name)
        code, _, err = run(["upscale", input_name, "-o", "outpng2/", "--model", "bilinear", "--fps", "25"], capsys)
        assert code == 0 and sorted(os.listdir(tmp_path / "outpng2")) == ["000.png", "001.png", "002.png"], err


def test_a_mixed_size_image_folder_is_refused_before_any_work(tmp_path, capsys):
    """The size of every image is checked when the folder is opened: the run stopped at the odd
    image, after "loading model" and "upscaling" the ones before it."""
    (tmp_path / "mixed").mkdir()
    for n in range(1, 6):
        Image.new("RGB", (80, 40) if n == 3 else (96, 54)).save(tmp_path / "mixed" / f"f_{n:04d}.png")
    out = tmp_path / "seq.mp4"
    code, _, err = run(["upscale", str(tmp_path / "mixed"), "-o", str(out), "--model", "bilinear", "--fps", "25"],
                       capsys)  # fmt: skip
    odd = tmp_path / "mixed" / "f_0003.png"
    assert (
        code == 2
        and err.strip()
        == f"error: {odd}: size 80x40 differs from the first image (96x54): the images of a folder or pattern are the frames of one video; upscale separate photos one by one"
    ), err
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["mixed"]


def test_an_output_folder_for_one_video_takes_its_name(tmp_path, capsys, caplog, monkeypatch):
    """`-o DIR` writes DIR/<input name>, as a folder run would (it was refused with that very name)."""
    clip = demo_clip("002.mp4")
    (tmp_path / "DIR").mkdir()
    code, _, err = run(["upscale", str(clip), "-o", str(tmp_path / "DIR"), "--model", "bilinear"], capsys)
    written = tmp_path / "DIR" / "002.mp4"
    assert code == 0 and f"writing {written}" in caplog.text and os.listdir(tmp_path / "DIR") == ["002.mp4"], err
    with av.open(str(written)) as c, av.open(str(clip)) as src:
        assert c.streams.video[0].frames == src.streams.video[0].frames > 0
    code, _, err = run(["upscale", str(clip), "-o", str(tmp_path / "DIR"), "--model", "bilinear"], capsys)
    assert code == 2 and f"error: {written}: already exists (use --overwrite to replace it)" in err, err
    code, _, err = run(["upscale", str(clip), "-o", f"{tmp_path / 'NEW'}/", "--model", "bilinear", "-q"], capsys)
    assert code == 0 and os.listdir(tmp_path / "NEW") == ["002.mp4"], err  # a trailing / says "a folder"
    monkeypatch.chdir(tmp_path)  # a script's empty "$OUT" wrote ./002.mp4 (Path("") is ".")
    code, _, err = run(["upscale", str(clip), "-o", "", "--model", "bilinear", "-q"], capsys)
    assert code == 2 and err.strip() == "error: -o '': the output name is empty" and not Path("002.mp4").exists()


def test_download_weights_metrics_refuses_the_model_options_it_would_ignore(capsys, monkeypatch):
    """`--metrics --base` fetched the metric files only, with --base dropped without a word."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing is fetched before the refusal
    code, _, err = run(["download-weights", "--metrics", "--base", "--stage", "1", "--dir", "w"], capsys)
    assert code == 2 and err.strip() == (
        "error: --metrics fetches only its pinned files (into the hub cache, or --dir); --stage, --base are for the"
        " model download: drop them here and run that download on its own"
    )  # --dir goes with --metrics: a folder for `dove eval --weights-dir` (test_eval_weights)
    code, _, err = run(["download-weights", "--dists", "--dir", "w"], capsys)
    assert code == 2 and err.strip() == (
        "error: --dists fetches only its pinned files into the hub cache; --dir is for the model download: drop it"
        " here and run that download on its own"
    )
    code, _, err = run(["download-weights", "--dists", "--yes"], capsys)  # --yes applies: not refused
    assert code == 75 and "cannot be reached" in err, err  # no network: try again later


def test_a_training_run_as_model_gets_its_own_fix_alone(tmp_path, capsys):
    """`--model runs/a` names `dove train export` and nothing else (the no-weights advice buried it)."""
    run_dir = tmp_path / "runs" / "a"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    out = tmp_path / "o.mp4"
    code, _, err = run(["upscale", str(demo_clip("002.mp4")), "-o", str(out), "--model", str(run_dir), "-q"], capsys)
    assert code == 2 and err.strip() == (
        f"error: {run_dir} is a `dove train` run or checkpoint, not a model folder: make one with "
        f"`dove train export {run_dir} -o MODEL_DIR`, then use --model MODEL_DIR"
    ), err
    assert not out.exists()


@pytest.mark.parametrize(
    "env,flags,message",
    [
        ({}, [], "run `dove download-weights` first (or pass --download, or --model with a model folder); without "
         "the weights, --model bilinear (a plain upscale) and --model tiny (the DOVE code path on a tiny random "
         "model) run anywhere; or fetch the weights on a connected machine with `dove download-weights --dir DIR` "
         "and pass --model DIR"),
        ({"HF_HUB_OFFLINE": "1"}, [], "and offline mode is on (HF_HUB_OFFLINE=1): unset it and run `dove "
         "download-weights`, or pass --model with a model folder; without the weights"),  # not "pass --download"
        ({"HF_ENDPOINT": "http://127.0.0.1:9"}, ["--download"], "cannot reach http://127.0.0.1:9"),
        ({"HF_HUB_OFFLINE": "1"}, ["--model", "someone/thing"], "check the path, or unset HF_HUB_OFFLINE (offline "
         "mode is on) and run `dove download-weights --repo someone/thing`"),
    ],
)  # fmt: skip
def test_missing_weights_say_each_way_out_once(tmp_path, capsys, monkeypatch, env, flags, message):
    import psutil

    real = psutil.virtual_memory()  # a machine that could run the plan: --download without a GPU plans first
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(total=256 << 30, available=200 << 30))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("DOVE_HOME", str(tmp_path / "dove"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = run(["upscale", str(demo_clip("002.mp4")), "-o", str(tmp_path / "x.mp4"), *flags], capsys)
    line = err.strip().splitlines()[-1]
    unreachable = "HF_ENDPOINT" in env  # the same command works once the network is back: "try again later"
    assert code == (75 if unreachable else 2) and message in line, err
    assert line.count("download-weights --dir DIR") <= 1 and line.count("run anywhere") == 1, line


def test_missing_weights_are_said_before_a_plan_they_could_not_run(tmp_path, capsys, monkeypatch):
    """The README's first Python line (tile=512, chunk=33) on a CPU without the weights said "this run
    needs about 51.5 GiB of host memory": a smaller tile then only led to the missing weights. They
    are said first, by the API and the command line alike (here a whole-clip plan, past any host)."""
    import dove_cli
    from dove_cli.errors import ModelError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("DOVE_HOME", str(tmp_path / "dove"))
    with pytest.raises(ModelError, match="no DOVE weights found") as said:
        dove_cli.upscale(demo_clip("002.mp4"), tmp_path / "x.mp4", tile=0, chunk=0, device="cpu")
    # in a Python caller's words: keywords, not flags
    assert "(or pass download=True, or model= a model folder)" in str(said.value), said.value
    assert 'model="bilinear" (a plain upscale) and model="tiny"' in str(said.value)
    assert "--model" not in str(said.value) and "--download" not in str(said.value)
    argv = ["upscale", str(demo_clip("002.mp4")), "-o", str(tmp_path / "x.mp4"), "--tile", "0", "--chunk", "0"]
    code, _, err = run([*argv, "--device", "cpu"], capsys)
    assert code == 2 and "no DOVE weights found" in err and "host memory" not in err, err
    assert "(or pass --download, or --model with a model folder)" in err and "--model bilinear (a plain" in err
    assert not (tmp_path / "x.mp4").exists()


def test_an_hdr_input_is_planned_and_written_as_hevc_and_a_refused_run_says_only_why(clip_hlg, tmp_path, capsys,
                                                                                      caplog):  # fmt: skip
    """No --codec and an HDR (HLG) phone video: the plan, its manifest and the run agree on HEVC Main
    10, tagged hvc1 through the segments and their join, and one info line says why. A run refused
    for its output says the error alone, not the input's HDR warning first."""
    import json

    from media import ffinfo

    caplog.set_level(logging.INFO, logger="dove_cli.note")
    out, said = tmp_path / "hlg.mp4", "hlg.mp4: HDR (HLG) input: writing HEVC Main 10 (choose with --codec)"
    argv = ["upscale", str(clip_hlg), "-o", str(out), "--model", "bilinear", "--scale", "2"]
    code, plan, err = run([*argv, "--dry-run", "--manifest", str(tmp_path / "plan.json")], capsys)
    assert code == 0, err
    assert re.search(r"output: 128x72, hevc yuv420p10le\s", plan), plan
    planned = json.loads((tmp_path / "plan.json").read_text())["plan"]
    assert (planned["codec"], planned["pix_fmt"]) == ("hevc", "yuv420p10le")
    assert caplog.messages.count(said) == 1
    caplog.clear()
    code, _, err = run([*argv, "--manifest", str(tmp_path / "run.json")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "run.json").read_text())["plan"]["codec"] == "hevc"
    video = ffinfo(out).video().text
    assert "hevc (Main 10) (hvc1 / 0x31637668), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67" in video, video
    assert caplog.messages.count(said) == 1 and sum("HDR video (HLG)" in m for m in caplog.messages) == 1
    caplog.clear()
    code, _, err = run(argv, capsys)
    assert code == 2 and err.strip() == f"error: {out}: already exists (use --overwrite to replace it)", err
    assert caplog.messages == []


def test_hdr_into_webm_is_10_bit_av1_where_vp9_writes_8_bits(clip_hlg, tmp_path, capsys, caplog):
    """This FFmpeg's libvpx-vp9 writes 8 bits only: an HDR input into .webm got 8-bit VP9 tagged HLG
    (banding, a warning pointing at av1). Now AV1 10-bit with the HLG tags, and one line says why."""
    import av

    from dove_cli.video_io.formats import encoder_formats

    if "yuv420p10le" in encoder_formats("libvpx-vp9"):
        pytest.skip("this FFmpeg's VP9 writes 10 bits: VP9 stays the default")
    caplog.set_level(logging.INFO, logger="dove_cli.note")
    out = tmp_path / "hlg.webm"
    code, _, err = run(["upscale", str(clip_hlg), "-o", str(out), "--model", "bilinear", "--scale", "1"], capsys)
    assert code == 0, err
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.codec.name, cc.format.name, cc.color_trc) in {("libdav1d", "yuv420p10le", 18),
                                                                 ("av1", "yuv420p10le", 18)}  # fmt: skip
    said = (
        "hlg.mp4: HDR (HLG) input: writing AV1 yuv420p10le (this FFmpeg's VP9 writes 8 bits only; choose with --codec)"
    )
    assert caplog.messages.count(said) == 1, caplog.messages
    assert not [m for m in caplog.messages if "8-bit" in m]


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_pick_settings_example_runs_without_weights_into_the_folder_given(tmp_path):
    """examples/pick_settings.sh took no dove options (so it needed the weights) and wrote into the
    current folder; options now go to every dove command and the previews into $OUT."""
    from pathlib import Path

    examples = Path(__file__).parents[1] / "examples"
    (tmp_path / "bin").mkdir()
    shim = tmp_path / "bin" / "dove"  # the dove of this checkout, as the installed command would be
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dove_cli.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}", "OUT": "chosen"}
    clip = examples / "data" / "demo_316x178.mp4"
    done = subprocess.run(["bash", examples / "pick_settings.sh", clip, "0:01", "--model", "bilinear", "--scale", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["bin", "chosen"] and "plan (--dry-run)" in done.stdout
    for name in ("preview_tile512.mkv", "preview_whole.mkv"):
        with av.open(str(tmp_path / "chosen" / name)) as c:  # from 1 s on: 17 of the 33 frames at 16 fps
            video = c.streams.video[0]
            assert (video.codec_context.width, sum(1 for _ in c.decode(video))) == (2 * 316, 17)  # --compare


def test_a_compare_dry_run_shows_the_size_of_the_file(tmp_path, capsys):
    """--compare writes input | output side by side: the plan said the output alone (256x144 for 512x144)."""
    clip = demo_clip("002.mp4")
    with av.open(str(clip)) as c:
        w, h = c.streams.video[0].width, c.streams.video[0].height
    code, plan, err = run(["upscale", str(clip), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear", "--scale", "2",
                           "--compare", "--dry-run"], capsys)  # fmt: skip
    assert code == 0, err
    assert re.search(rf"output: {4 * w}x{2 * h} \(input \| output, --compare\), h264 yuv420p\s", plan), plan


def test_a_dry_run_says_how_players_show_the_output(clip_sar, clip_rotated, tmp_path, capsys):
    """Non-square pixels and a rotation tag carry over, so the stored size is not the size players
    show: 64x48 at pixel aspect 4:3 shows 85x48 (x4: 341x192); turned 90 degrees, 48 wide."""
    for clip, extra, shown in ((clip_sar, [], "256x192, shown 341x192 (pixel aspect 4:3)"),
                               (clip_rotated, [], "256x192, shown 192x256 (turned 90 degrees)"),
                               (clip_rotated, ["--rotate", "apply"], "192x256, h264"),
                               (demo_clip("002.mp4"), [], "x720, h264")):  # fmt: skip
        code, plan, err = run(["upscale", str(clip), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear",
                               "--dry-run", *extra], capsys)  # fmt: skip
        assert code == 0, err
        assert re.search(rf"output: \S*{re.escape(shown)}", plan), plan


def test_a_dry_run_shows_that_the_vae_decodes_in_tiles(tmp_path, capsys):
    """VAE tiling (--vae-tiling, or turned on for a window past what the VAE decodes in one piece) was
    seen only in the manifest's plan.vae_tiling: the tiles row and the run's plan line say it now, as
    the README's --vram table writes it ("whole frame + VAE tiles", "6 x 1440 + VAE tiles")."""
    clip, out = demo_clip("007.mp4"), tmp_path / "x.mp4"
    for extra, tiles in ((["--vae-tiling"], r"1: the whole frame \+ VAE tiles"),
                         (["--vae-tiling", "--tile", "512"], r"\d+ of 512 px, 32 px overlap \+ VAE tiles"),
                         ([], r"1: the whole frame")):  # fmt: skip
        code, plan, err = run(["upscale", str(clip), "-o", str(out), "--model", "tiny", "--tile", "0", "--dry-run",
                               *extra], capsys)  # fmt: skip
        assert code == 0, err
        assert re.search(rf"tiles per window: {tiles}\s", plan) and plan.count("VAE tiles") == bool(extra), plan
    plan = upscale(clip, out, model="tiny", tile=0, vae_tiling=True, dry_run=True)
    assert "plan: 1 window of 33 frames x the whole frame + VAE tiles, work ratio" in plan.summary()
    assert "VAE" not in upscale(clip, out, model="tiny", tile=0, dry_run=True).summary()


def test_a_dry_run_says_when_the_frame_count_is_estimated(clip_2997_mkv, tmp_path, capsys, monkeypatch):
    """Matroska does not count frames: they are counted from its packets, and where the file is too large
    for that (`cheap_to_count`) the plan's count comes from the duration (a VFR file with repeated
    timestamps was planned at 12 frames and ran 11), so it says "about"."""
    from dove_cli.video_io import reader

    for clip, too_large, about in ((clip_2997_mkv, False, False), (clip_2997_mkv, True, True),
                                   (demo_clip("002.mp4"), True, False)):  # fmt: skip
        monkeypatch.setattr(reader, "COUNT_MAX_BYTES", 0 if too_large else reader.COUNT_MAX_BYTES)
        code, plan, err = run(["upscale", str(clip), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear",
                               "--dry-run"], capsys)  # fmt: skip
        assert code == 0, err
        count = " 32 frames at" if clip.suffix == ".mp4" else " 12 frames at"
        assert ("about 12 frames" in plan and "from the duration" in plan) if about else count in plan, plan


@pytest.mark.parametrize("command", ["upscale", "bench"])
def test_a_run_past_the_hosts_memory_is_refused_before_the_model_is_built(command, tmp_path, capsys, monkeypatch):
    """`dove bench --model full-random` on a CPU needs about 100 GiB: it warned, built the 22 GB model
    and was killed (exit 137) with the machine's memory gone. Past RAM and swap together, one line
    before any weights. (The machine is made small here: the tiny model's plan needs about 1 GiB.)"""
    import types

    import dove_cli.bench  # noqa: F401 (before the patch: it binds load_model when first imported, for later tests)
    import dove_cli.models as models
    import dove_cli.plan as plan

    small = types.SimpleNamespace(total=256 << 20, available=256 << 20)
    monkeypatch.setattr(plan.psutil, "virtual_memory", lambda: small)
    monkeypatch.setattr(plan.psutil, "swap_memory", lambda: types.SimpleNamespace(total=0))
    monkeypatch.setattr(models, "load_model", lambda *a: pytest.fail("the model was built"))
    args = (["upscale", str(demo_clip("002.mp4")), "-o", str(tmp_path / "x.mp4")] if command == "upscale"
            else ["bench", "--frames", "5", "--height", "64", "--width", "64"])  # fmt: skip
    code, _, err = run([*args, "--model", "tiny", "--device", "cpu"], capsys)
    assert code == 2 and "of host memory and this machine has 0.2 GiB (RAM and swap): it would be killed" in err, err
    assert "; nothing fits this machine: the smallest plan (with --dtype bf16" in err, err  # re-planned advice


def test_a_dry_run_past_the_hosts_memory_says_the_runs_refusal(tmp_path, capsys, monkeypatch, caplog):
    """The dry run only warned (`needs about 1.8 GiB ... it may swap`) where the run was refused at 1.6 GiB:
    the run's check before loading left out the frames its H.264 encoder holds, which the plan counts. One
    estimate, the plan's, and the dry run says the run's refusal, with its numbers and advice, as a warning
    beside its plan (exit 0: a plan is still wanted). The machine is made just too small for the plan with
    the encoder's frames, not without them."""
    import types

    import dove_cli.plan as plan

    clip, out = make_clip(tmp_path / "in.mp4", frames=5), tmp_path / "x.mp4"
    fixed = dict(model="tiny", device="cpu", chunk="0", tile="0")  # a plan that does not depend on free memory
    planned = upscale(clip, out, dry_run=True, **fixed)  # on this machine
    (h, w), need = planned.output_size, planned.est_peak_host_bytes
    assert (planned.codec, planned.pix_fmt, planned.frames) == ("h264", "yuv420p", 5)
    encoder = min(165, 2.6 * 5) * w * h * 3 / 2  # x264 holds up to 165 frames of 4:2:0, 2.6 per frame of a clip
    machine = types.SimpleNamespace(total=int((need - encoder / 2) / plan.HOST_MARGIN), available=64 << 20)
    monkeypatch.setattr(plan.psutil, "virtual_memory", lambda: machine)
    monkeypatch.setattr(plan.psutil, "swap_memory", lambda: types.SimpleNamespace(total=0))
    args = ["upscale", str(clip), "-o", str(out), "--model", "tiny", "--device", "cpu", "--chunk", "0", "--tile", "0"]
    with caplog.at_level(logging.WARNING):
        code, shown, _ = run([*args, "--dry-run"], capsys)
    said = caplog.text
    assert code == 0 and "windows" in shown and f"this run needs about {need / 2**30:.1f} GiB of host memory" in said
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("the run will be refused: ")]
    assert len(warned) == 1 and "it would be killed" in warned[0] and "is available" not in said, said
    code, _, refused = run(args, capsys)
    assert code == 2 and not out.exists()  # the run: the same line, as its error
    assert refused.strip() == "error: " + warned[0].removeprefix("the run will be refused: "), (refused, warned)


def test_a_folder_refuses_each_file_past_the_hosts_memory_and_runs_the_others(tmp_path, capsys, monkeypatch):
    """A folder run loaded its model for the first file without the refusal above (22 GB on a CPU),
    and a later, longer file was killed with the whole folder. Each file too big for the machine now
    fails with that line, before the model loads or after it, and the files that fit are made."""
    import types

    import dove_cli.models as models
    import dove_cli.plan as plan

    folder = tmp_path / "in"
    folder.mkdir()
    small = ["-i", str(demo_clip("002.mp4")), "-frames:v", "5", "-vf", "scale=32:32"]
    ffmpeg(*small, str(folder / "b_small.mp4"))
    for name in ("a_big.mp4", "c_big.mp4"):
        shutil.copy(demo_clip("002.mp4"), folder / name)
    fixed = dict(model="tiny", device="cpu", chunk="0", tile="0")  # plans that do not depend on free memory
    need = {name: upscale(folder / name, tmp_path / "x.mp4", dry_run=True, **fixed).est_peak_host_bytes
            for name in ("a_big.mp4", "b_small.mp4")}  # fmt: skip
    has = (need["a_big.mp4"] + need["b_small.mp4"]) / 2 / plan.HOST_MARGIN
    machine = types.SimpleNamespace(total=int(has), available=int(has))
    monkeypatch.setattr(plan.psutil, "virtual_memory", lambda: machine)
    monkeypatch.setattr(plan.psutil, "swap_memory", lambda: types.SimpleNamespace(total=0))
    loads = []
    real_load = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a: loads.append(a) or real_load(*a))
    args = ["--model", "tiny", "--device", "cpu", "--chunk", "0", "--tile", "0"]
    only_big = tmp_path / "only_big"
    only_big.mkdir()
    shutil.copy(demo_clip("002.mp4"), only_big / "big.mp4")
    code, _, err = run(["upscale", str(only_big), "-o", str(tmp_path / "none"), *args], capsys)
    assert code == 2 and not loads and "big.mp4: this run needs about" in err, err  # nothing built
    code, _, err = run(["upscale", str(folder), "-o", str(tmp_path / "out"), *args], capsys)
    assert code == 4, err
    assert len(loads) == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".dove-sources",
        "b_small.mp4",
    ], err
    for name in ("a_big.mp4", "c_big.mp4"):
        assert any(name in line and "it would be killed" in line for line in err.splitlines()), err


def test_ctrl_c_while_the_modules_load_is_one_quiet_line(monkeypatch, capsys):
    """Ctrl-C in the first tenth of a second, while `dove` imports numpy and torch, printed a 24-line
    import traceback; the `dove` command (pyproject's script) says `interrupted`, exit 130."""
    import tomllib

    import dove_cli

    class CtrlCOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == "dove_cli.cli":
                raise KeyboardInterrupt
            return None

    scripts = tomllib.loads((Path(dove_cli.__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dove"] == "dove_cli:console_main"
    monkeypatch.delitem(sys.modules, "dove_cli.cli")
    monkeypatch.setattr(sys, "meta_path", [CtrlCOnImport(), *sys.meta_path])
    with pytest.raises(SystemExit) as exc:
        dove_cli.console_main()
    assert exc.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_info_shows_install_hints_as_written(capsys, monkeypatch):
    """Without Ray, `dove info` said "no (pip install 'dove-cli')": Rich took `[ray]` for markup."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    code, out, err = run(["info"], capsys)
    assert code == 0, err
    assert "no (pip install 'dove-cli[ray]')" in out, out


def test_info_says_where_each_attention_kernel_runs(capsys):
    """`dove info` said "SDPA flash: no (needs CUDA sm80+)" on a CPU where `--attention flash` runs, as
    the option's check and the README say (torch 2.13 has a CPU flash kernel). It asks torch now, as a
    run does: each --attention kernel is tried on a tiny attention on the CPU (and on a GPU when there
    is one); here, against torch's own answer."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def runs_on_the_cpu(backend: SDPBackend) -> bool:
        q = torch.zeros(1, 1, 4, 64)
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, q, q)
        except RuntimeError:
            return False
        return True

    code, out, err = run(["info"], capsys)
    assert code == 0, err
    kernels = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION}  # fmt: skip
    for kernel, backend in kernels.items():
        row = re.search(rf"^SDPA {kernel} +(.*?)\s*$", out, re.MULTILINE)
        assert row, out
        assert ("CPU" in row[1]) == runs_on_the_cpu(backend), row[0]
        if not torch.cuda.is_available() and kernel != "flash":
            assert row[1] == "no (needs CUDA)"
    assert runs_on_the_cpu(SDPBackend.FLASH_ATTENTION)  # with torch 2.13, as the README says: `yes (CPU)` above


def test_ctrl_c_while_the_command_line_is_parsed_says_interrupted(monkeypatch, capsys):
    """Ctrl-C at about 0.25 s lands while typer parses the command line, which typer turns into a bare
    exit 130: it said nothing. And a command's own interrupt is said once, not twice."""
    import dove_cli.cli as cli

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(cli.Commands, "make_context", ctrl_c)
        code, out, err = run(["info"], capsys)
    assert code == 130 and err == "interrupted\n", (out, err)
    monkeypatch.setattr("importlib.metadata.version", ctrl_c)  # `dove info` is stopped as it runs
    code, out, err = run(["info"], capsys)
    assert code == 130 and err == "interrupted\n", (out, err)


def test_output_names_past_the_file_systems_limit_are_refused_before_work(tmp_path, capsys):
    """dove's hidden temporary is 20 bytes longer than the output's name: a name that fits but leaves
    no room for it was made, then failed at the join with a --resume hint that never worked."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    clip = str(demo_clip("007.mp4"))
    fits = tmp_path / ("f" * (limit - 24) + ".mp4")
    code, _, err = run(["upscale", clip, "-o", str(fits), "--model", "bilinear", "--scale", "1", "--preview",
                        "0+0.1s", "-q"], capsys)  # fmt: skip
    assert code == 0 and fits.is_file(), err
    over = tmp_path / ("o" * (limit - 18) + ".mp4")
    code, _, err = run(["upscale", clip, "-o", str(over), "--model", "bilinear", "--scale", "1"], capsys)
    assert code == 2 and "name too long by 6 bytes" in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [fits.name]  # no frames made, no .dove-work left
    for argv in (["-o", str(tmp_path / ("o" * limit + ".mp4")), clip],  # the output's own name, the input's
                 ["-o", str(tmp_path / "x.mp4"), str(tmp_path / ("i" * limit + ".mp4"))]):  # fmt: skip
        code, _, err = run(["upscale", *argv, "--model", "bilinear"], capsys)
        assert code == 2 and "name too long" in err and len(err.splitlines()) == 1, err


def test_a_reader_that_goes_away_stops_the_lines_not_the_run(tmp_path):
    """`dove upscale ... 2>&1 | grep -m1 upscaling`: stderr's reader is gone before the run ends. The
    run went on to its next progress line and died there (exit 1, manifest "SystemExit: 1") with every
    frame made. stdout's reader (`--dry-run | head -1`) gone: a quiet stop, 141 as for SIGPIPE."""
    base = [sys.executable, "-m", "dove_cli.cli", "upscale", str(demo_clip("007.mp4")), "--model", "bilinear",
            "--scale", "1", "--preview", "0+0.2s"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: each line dove writes meets EPIPE
    try:
        done = subprocess.run([*base, "-o", str(tmp_path / "a.mp4"), "--manifest", str(tmp_path / "a.json")],
                              stderr=write, env=env, timeout=120)  # fmt: skip
        assert done.returncode == 0 and (tmp_path / "a.mp4").is_file()
        assert json.loads((tmp_path / "a.json").read_text())["status"] == "done"
        plan = subprocess.run([*base, "-o", str(tmp_path / "b.mp4"), "--dry-run"], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=120)  # fmt: skip
        assert plan.returncode == 141 and plan.stderr == ""  # no traceback, no "Exception ignored"
    finally:
        os.close(write)


def test_manifest_to_stdout_or_a_fifo_is_written_not_read(tmp_path):
    """`--manifest /dev/stdout | ...` hung: dove read its old status from its own stdout pipe.
    `--manifest -` wrote a file named `-`. A FIFO is written as it is (no temporary, no rename)."""
    base = [sys.executable, "-m", "dove_cli.cli", "upscale", str(demo_clip("007.mp4")), "--model", "bilinear",
            "--scale", "1", "--preview", "0+0.1s", "-q"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    for i, name in enumerate(["/dev/stdout", "-"]):
        done = subprocess.run([*base, "-o", f"{i}.mp4", "--manifest", name], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.mp4", "1.mp4"]  # no file named `-`
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    try:
        done = subprocess.run([*base, "-o", str(tmp_path / "2.mp4"), "--manifest", str(fifo)], stderr=subprocess.PIPE,
                              text=True, env=env, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(reader.communicate(timeout=10)[0])["status"] == "done"
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    finally:
        reader.kill()


def test_symlinks_are_written_through_and_stdout_is_not_shared(tmp_path, capsys, png_sequence):
    """A symlinked output or manifest: its target is replaced (as ffmpeg and `>` do) and the link stays.
    `--manifest -` with --dry-run: the plan has stdout."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "run.json").write_text("{}")
    (store / "out.mp4").write_bytes(b"old")
    (tmp_path / "run.json").symlink_to(store / "run.json")
    (tmp_path / "out.mp4").symlink_to(store / "out.mp4")
    code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "out.mp4"), "--model", "bilinear",
                        "--scale", "1", "--preview", "0+0.1s", "-q", "--overwrite", "--manifest",
                        str(tmp_path / "run.json")], capsys)  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "run.json").is_symlink() and (tmp_path / "out.mp4").is_symlink()
    assert json.loads((store / "run.json").read_text())["status"] == "done"
    with av.open(str(store / "out.mp4")) as c:
        assert c.streams.video[0].frames > 0
    (store / "still.png").write_bytes(b"old")
    (tmp_path / "still.png").symlink_to(store / "still.png")
    code, _, err = run(["upscale", str(png_sequence / "frame_0000.png"), "-o", str(tmp_path / "still.png"),
                        "--model", "bilinear", "-q", "--overwrite"], capsys)  # fmt: skip
    assert code == 0 and (tmp_path / "still.png").is_symlink() and Image.open(store / "still.png").size, err
    assert sorted(p.name for p in store.iterdir()) == ["out.mp4", "run.json", "still.png"]  # no temporary left
    code, out, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(tmp_path / "x.mp4"), "--model", "bilinear",
                          "--dry-run", "--manifest", "-"], capsys)  # fmt: skip
    assert code == 2 and "stdout carries --dry-run's plan" in err and out == ""


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1"])
def test_a_bad_progress_interval_is_one_warning_and_the_default(value, tmp_path, capsys, caplog, monkeypatch):
    """`abc` was a traceback, `nan` 93k log lines, `inf` a traceback from the heartbeat thread; then an error
    (exit 2): a typo in a display setting failed a cron job. Now one warning, and the default 10 s."""
    from dove_cli import console

    console._interval.cache_clear()  # (said once a process: another test may have said it)
    monkeypatch.setenv("DOVE_PROGRESS_INTERVAL", value)
    clip = str(demo_clip("007.mp4"))
    # --eval: a second bar, and still one warning
    argv = ["upscale", clip, "-o", str(tmp_path / "x.mp4"), "--model", "bilinear", "--scale", "1", "--preview",
            "0+0.1s", "--eval", clip, "--eval-metrics", "psnr"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        code, _, err = run(argv, capsys)
    said = [r.getMessage() for r in caplog.records if "DOVE_PROGRESS_INTERVAL" in r.getMessage()]
    assert code == 0 and (tmp_path / "x.mp4").is_file(), err
    assert said == [f"DOVE_PROGRESS_INTERVAL={value}: expected seconds between progress lines, from 0 (a line per "
                    "frame) to 86400; using the default, 10"], said  # fmt: skip
    assert console.progress_interval() == 10.0


def test_frame_rates_a_container_cannot_time_are_refused(tmp_path, capsys):
    """`--fps 1e9` wrote a .mkv whose frames were all at 0 ms (it times in milliseconds); now one line,
    from the CLI and from the Python API's reader; 1000 frames/s still gives one time per frame."""
    from dove_cli.errors import OptionError
    from dove_cli.video_io import open_reader

    seq = tmp_path / "seq"
    seq.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 24), (60 * i, 30, 30)).save(seq / f"{i:04d}.png")
    for value in ("1e9", "1001", "0", "abc"):
        code, _, err = run(["upscale", str(seq), "-o", str(tmp_path / "x.mkv"), "--model", "bilinear", "--fps",
                            value], capsys)  # fmt: skip
        assert code == 2 and err.startswith(f"error: --fps {value}") and len(err.splitlines()) == 1, err
        assert not (tmp_path / "x.mkv").exists()
    with pytest.raises(OptionError, match="at most 1000 frames/s"):
        open_reader(seq, fps=1001)
    code, _, err = run(["upscale", str(seq), "-o", str(tmp_path / "x.mkv"), "--model", "bilinear", "--fps", "1000",
                        "-q"], capsys)  # fmt: skip
    assert code == 0, err
    with av.open(str(tmp_path / "x.mkv")) as c:
        assert [round(float(f.time), 3) for f in c.decode(video=0)] == [0, 0.001, 0.002]


def test_an_image_named_like_a_pattern_is_that_image(tmp_path, capsys):
    """`shot%d.png` that exists is the file (it was "no files match this pattern"); a name that does
    not exist is still a pattern."""
    Image.new("RGB", (32, 24), (200, 30, 30)).save(tmp_path / "shot%d.png")
    code, _, err = run(["upscale", str(tmp_path / "shot%d.png"), "-o", str(tmp_path / "big.png"), "--model",
                        "bilinear", "-q"], capsys)  # fmt: skip
    assert code == 0 and Image.open(tmp_path / "big.png").size == (128, 96), err
    code, _, err = run(["upscale", str(tmp_path / "take%d.png"), "-o", str(tmp_path / "x.png"), "--model",
                        "bilinear"], capsys)  # fmt: skip
    assert code == 2 and "no files match this pattern" in err


def test_degrade_record_is_checked_before_the_work_and_written_whole(tmp_path, capsys):
    """`dove degrade --record FILE` had none of -o's checks: it turned the input video (or its own
    output) into JSON, replaced any file unasked, and a folder or a missing folder was a traceback
    after the degraded video was written."""
    clip = tmp_path / "in.mp4"
    shutil.copy(demo_clip("005.mp4"), clip)
    out, notes = tmp_path / "lq.mp4", tmp_path / "notes.txt"
    notes.write_text("mine")
    base = ["degrade", str(clip), "-o", str(out), "--frames", "2"]
    for record, says in ((clip, "--record .*: is the input"), (out, "--record .*: is the output"),
                         (notes, "--record .*: already exists .*--overwrite"),
                         (tmp_path, "--record .*: is a folder; give a file name like .*record.json")):  # fmt: skip
        code, _, err = run([*base, "--record", str(record)], capsys)
        assert code == 2 and re.search(says, err) and len(err.strip().splitlines()) == 1, err
        assert not out.exists()  # refused before the work
    assert clip.read_bytes() == demo_clip("005.mp4").read_bytes() and notes.read_text() == "mine"
    record = tmp_path / "new" / "r.json"
    code, _, err = run([*base, "--record", str(record)], capsys)
    assert code == 0 and out.is_file() and json.loads(record.read_text())[0]["op"], err
    before = notes.stat().st_ino
    code, _, err = run([*base, "--record", str(notes), "--overwrite"], capsys)
    assert code == 0 and json.loads(notes.read_text())[0]["op"], err
    assert notes.stat().st_ino != before  # renamed onto it whole, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "lq.mp4", "new", "notes.txt"]  # no temporaries


def test_a_real_shot_pct03d_png_beside_its_sequence_is_read_not_the_sequence(tmp_path, capsys, caplog):
    """A real shot_%03d.png beside shot_001.png ... shot_005.png (the trial's layout): dove reads the
    file named, but FFmpeg's image2 demuxer took the name as a pattern and read shot_001.png, silently."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "amb"
    folder.mkdir()
    for n in range(1, 6):
        Image.fromarray(rng.integers(0, 256, (54, 96, 3), dtype=np.uint8)).save(folder / f"shot_{n:03d}.png")
    named = folder / "shot_%03d.png"
    Image.fromarray(np.full((2, 2, 3), (200, 30, 60), np.uint8)).save(named)
    argv = ["upscale", str(named), "--model", "bilinear", "--fps", "25"]
    code, _, err = run([*argv, "-o", str(tmp_path / "a.mp4")], capsys)
    assert code == 2 and "frame size 2x2 is too small" in err, err  # its own size, not shot_001.png's 96x54
    Image.fromarray(np.full((10, 16, 3), (200, 30, 60), np.uint8)).save(named)  # one big enough to upscale
    out = tmp_path / "b.mp4"
    code, _, err = run([*argv, "-o", str(out)], capsys)
    assert code == 0, err
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 1 and frames[0].shape == (40, 64, 3)
    assert np.abs(frames[0].astype(int) - (200, 30, 60)).mean() < 6
    assert "5 images its name also reads as a pattern (shot_001.png, ...) are not" in caplog.text


def test_a_symlinked_output_into_a_missing_or_read_only_folder_is_refused_before_work(tmp_path, capsys):
    """The output is written where the link points (with its temporary beside the target): that folder,
    not the link's, is checked. It was checked only at the end, after every frame, as "write failed
    (No such file or directory) ... please report it", with a .dove-work folder left."""
    clip = str(demo_clip("007.mp4"))
    links = tmp_path / "links"
    links.mkdir()
    (links / "dangling.mp4").symlink_to(tmp_path / "gone" / "dir" / "x.mp4")
    base = ["upscale", clip, "--model", "bilinear", "--scale", "1", "--preview", "0+0.2s"]
    code, _, err = run([*base, "-o", str(links / "dangling.mp4")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"is a link to {tmp_path / 'gone/dir/x.mp4'}, whose folder {tmp_path / 'gone/dir'} does not exist" in err
    assert sorted(p.name for p in links.iterdir()) == ["dangling.mp4"] and not (tmp_path / "gone").exists()
    (links / "to_folder.mp4").symlink_to("missing/")  # `ln -s missing/ to_folder.mp4`: a shell's > fails too
    code, _, err = run([*base, "-o", str(links / "to_folder.mp4")], capsys)
    assert code == 2 and f"is a link to a folder, {links / 'missing'}; give a file name" in err, err
    assert sorted(p.name for p in links.iterdir()) == ["dangling.mp4", "to_folder.mp4"]
    (links / "to_folder.mp4").unlink()
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (root) for a read-only bind mount")
    ro = tmp_path / "ro"
    ro.mkdir()
    (links / "into_ro.mp4").symlink_to("../ro/target.mp4")
    dove = " ".join([sys.executable, "-m", "dove_cli.cli", *base, "-o", str(links / "into_ro.mp4")])
    script = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && exec {dove}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"error: {links / 'into_ro.mp4'}: folder {ro} is not writable"
    ], proc.stderr
    assert sorted(p.name for p in links.iterdir()) == ["dangling.mp4", "into_ro.mp4"] and not any(ro.iterdir())


def test_a_leading_tilde_is_the_home_folder_where_the_shell_left_it(tmp_path, capsys, monkeypatch):
    """A quoted "~/clips/out.mp4", or --output=~/x (bash expands neither): a folder literally named ~
    was made in the current folder and reported as if it were the home folder."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    shutil.copy(demo_clip("007.mp4"), home / "in.mp4")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    code, _, err = run(["upscale", "~/in.mp4", "-o", "~/clips/out.mp4", "--manifest=~/run.json", "--model",
                        "bilinear", "--scale", "1", "--preview", "0+0.2s", "-q"], capsys)  # fmt: skip
    assert code == 0, err
    assert (home / "clips" / "out.mp4").is_file() and json.loads((home / "run.json").read_text())["status"] == "done"
    assert list(cwd.iterdir()) == []


def test_a_relative_name_with_a_colon_is_read_and_written(tmp_path, capsys, monkeypatch):
    """FFmpeg took `Teil1:` of `Teil1:Ende.mp4` (a valid Linux name) as a URL protocol: the input was
    "not a video ... probably cut short", an output `Teil1:x2.mp4` or a folder `Ordner:2/` failed mid-run."""
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "Teil1:Ende.mp4", frames=3)
    code, out, err = run(["info", "Teil1:Ende.mp4"], capsys)
    assert code == 0 and "64x48" in out, err
    code, _, err = run(["upscale", "./Teil1:Ende.mp4", "-o", "Ordner:2/Teil1:x2.mp4", "--model", "bilinear",
                        "--scale", "2", "-q"], capsys)  # fmt: skip
    written = tmp_path / "Ordner:2" / "Teil1:x2.mp4"
    assert code == 0 and "128x96" in ffinfo(written).streams[0].text and decoded_frame_count(written) == 3, err


@pytest.mark.parametrize("side", ["input", "output", "folder"])
def test_a_windows_path_is_refused_up_front_with_its_wsl_name(tmp_path, capsys, monkeypatch, side):
    """`C:\\Users\\...` pasted into WSL: an output passed the dry run and failed mid-run ("Protocol not
    found"), an input was only "no such file", a folder of videos' output failed once per video."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "in.mp4", frames=3)
    name = {"input": "in.MOV", "output": "out.mp4", "folder": "x4\\"}[side]
    windows = "C:\\Users\\Frau Müller\\Videos\\" + name
    source, output = (windows, "out.mp4") if side == "input" else ("in" if side == "folder" else "in/in.mp4", windows)
    code, out, err = run(["upscale", source, "-o", output, "--model", "bilinear", "--dry-run"], capsys)
    wsl = "/mnt/c/Users/Frau Müller/Videos/" + name.replace("\\", "/")
    assert code == 2 and err == f"error: {windows}: this is a Windows path; under WSL write {wsl}\n", err
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_an_option_after_o_or_dashes_and_a_cp_style_output_are_read_as_meant(tmp_path, capsys, monkeypatch):
    """`-o --dry-run` proposed `--dry-run.mp4`; `-- -Probe.mp4 -o P.mp4` was "Missing option '-o'" (after
    `--` click takes every word as a name); `in.mp4 out.mp4` (as cp) was only "Missing option"."""
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "-Probe.mp4", frames=3)
    code, _, err = run(["upscale", "./-Probe.mp4", "-o", "--dry-run", "--model", "bilinear"], capsys)
    assert code == 2 and err == "error: -o got '--dry-run', which is an option: the output name is missing\n", err
    code, _, err = run(["upscale", "./-Probe.mp4", "P.mp4", "--model", "bilinear"], capsys)
    assert code == 2 and err.rstrip().endswith("; did you mean -o P.mp4?"), err
    code, _, err = run(["upscale", "--", "-Probe.mp4", "-o", "P.mp4", "--model", "bilinear", "-q"], capsys)
    assert code == 0 and decoded_frame_count(tmp_path / "P.mp4") == 3, err
    (tmp_path / "--dry-run").write_bytes(b"")  # after `--` an existing file is a file, whatever its name
    code, _, err = run(["upscale", "-o", "Q.mp4", "--model", "bilinear", "--", "--dry-run"], capsys)
    assert code == 2 and err.startswith("error: --dry-run: "), err


def test_a_missing_input_named_in_another_case_is_offered(tmp_path, capsys, monkeypatch):
    """`sportfest.mp4` for `Sportfest.MP4` (Windows would have opened it): "did you mean", in the CLI
    and in Python."""
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "Sportfest.MP4", frames=3)
    code, _, err = run(["upscale", "sportfest.mp4", "-o", "x.mp4", "--model", "bilinear"], capsys)
    assert code == 2 and err == "error: sportfest.mp4: no such file; did you mean Sportfest.MP4?\n", err
    with pytest.raises(InputError, match=r"^sportfest.mp4: no such file; did you mean Sportfest.MP4\?$"):
        upscale("sportfest.mp4", "x.mp4", model="bilinear")
    code, _, err = run(["upscale", "other.mp4", "-o", "x.mp4", "--model", "bilinear"], capsys)
    assert code == 2 and err == "error: other.mp4: no such file\n", err
    (tmp_path / "dangling.mp4").symlink_to("/media/usb/gone.mp4")  # (offered itself: "did you mean dangling.mp4?")
    code, _, err = run(["upscale", "dangling.mp4", "-o", "x.mp4", "--model", "bilinear"], capsys)
    assert code == 2 and err == "error: dangling.mp4: a symbolic link to /media/usb/gone.mp4, which does not exist\n"
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")  # (its target exists: itself)
    code, _, err = run(["upscale", "loop.mp4", "-o", "x.mp4", "--model", "bilinear"], capsys)
    assert code == 2 and err == "error: loop.mp4: a symbolic link in a loop of links\n", err


def test_a_name_with_colons_is_not_drawn_as_an_emoji(tmp_path, capsys):
    """rich drew `:top:` as a picture in an error line: `a:top:b.mp4` read as `a🔝b.mp4`, a file that
    was never there, and --crop's own advice, LEFT:TOP:RIGHT:BOTTOM, as LEFT🔝RIGHT:BOTTOM."""
    code, _, err = run(["upscale", str(tmp_path / "a:top:b.mp4"), "-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2 and f"{tmp_path}/a:top:b.mp4: no such file" in err, err
    code, _, err = run(["upscale", str(tmp_path / "a:top:b.mp4"), "-o", str(tmp_path / "o.mp4"), "--crop", "1"], capsys)
    assert code == 2 and "LEFT:TOP:RIGHT:BOTTOM" in err, err


def test_a_name_with_a_carriage_return_or_newline_is_shown_escaped_on_one_line(tmp_path, capsys, monkeypatch):
    """A script saved with Windows line endings ends its last argument in a carriage return, which the
    terminal hides: `base.mp4` "did not exist", though it does, and `--manifest run.json` wrote a file
    named `run.json\r` without a word. Any argument ending in one is refused first, named escaped;
    a name with a newline keeps an error on one line."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(demo_clip("002.mp4"), tmp_path / "base.mp4")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no dos2unix (stock Ubuntu, WSL): sed, which every one has
    hint = "ends in a carriage return: is the script saved with Windows line endings? (sed -i 's/\\r$//' SCRIPT converts it)"
    base = ["base.mp4", "-o", "a.mp4", "--model", "bilinear", "--preview", "0+0.1s"]
    for args, named in (
        (["base.mp4\r", *base[1:]], "base.mp4\\r"),
        ([*base[:4], "bilinear\r", *base[5:]], "bilinear\\r"),
        ([*base, "-q\r"], "-q\\r"),
        ([*base, "--manifest", "run.json\r"], "run.json\\r"),  # no error of its own: it wrote run.json\r
        ([*base, "--tile", "0\r"], "0\\r"),
    ):  # fmt: skip
        code, out, err = run(["upscale", *args], capsys)
        assert code == 2 and err == f"error: the argument '{named}' {hint}\n" and not out, err
    assert sorted(os.listdir(tmp_path)) == ["base.mp4"]  # nothing made
    (tmp_path / "nl\nname.mp4").write_bytes(b"")
    code, _, err = run(["upscale", "base.mp4", "-o", "nl\nname.mp4", "--model", "bilinear"], capsys)
    assert code == 2 and err == "error: nl\\nname.mp4: already exists (use --overwrite to replace it)\n", err
    assert sorted(os.listdir(tmp_path)) == ["base.mp4", "nl\nname.mp4"]
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "dos2unix").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "dos2unix").chmod(0o755)
    code, _, err = run(["upscale", "base.mp4\r"], capsys)  # where it is installed, the short way
    assert code == 2 and err.endswith("(dos2unix SCRIPT converts it)\n"), err


def test_python_m_dove_cli_is_the_dove_command_and_one_frame_is_one_frame(tmp_path, capsys):
    """`python -m dove_cli` (where `dove` is not on PATH) runs the same command; a still is "1 frame"."""
    proc = subprocess.run([sys.executable, "-m", "dove_cli", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("dove "), proc.stderr
    Image.new("RGB", (32, 24)).save(tmp_path / "still.png")
    args = ["upscale", str(tmp_path / "still.png"), "-o", str(tmp_path / "big.png"), "--model", "bilinear"]
    code, out, err = run([*args, "--dry-run"], capsys)
    assert code == 0 and "32x24, 1 frame at " in out and "1 frames" not in out + err, out
    code, out, err = run(args, capsys)
    assert code == 0 and re.search(r"^1 frame in .* -> .*big\.png$", err, re.M), err  # (progress: "1/1 frames")


def _info(files: list, capsys) -> tuple[int, list[dict], str]:
    code, out, err = run(["info", "--json", *map(str, files)], capsys)
    return code, json.loads(out), err


def test_info_describes_a_file_of_sound_only(tmp_path, capsys):
    """`dove info` refused an .m4a or an audio-only .mkv ("no video stream (has audio)", exit 2): it
    describes its audio now, and says that there is no video to upscale (upscale still refuses it).
    Audio codecs are named as the ffmpeg binary names them: mp3, not FFmpeg's decoder mp3float."""
    src = tmp_path / "sound.mkv"
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.3:sample_rate=48000", "-map", "0", "-map", "0", "-c:a:0", "flac",
           "-c:a:1", "libmp3lame", "-metadata:s:a:1", "title=Mix", "-metadata:s:a:1", "language=eng", src)  # fmt: skip
    shown = [re.search(r"Audio: (\w+).*?(\d+) Hz, (\w+)", a.text).groups() for a in ffinfo(src).streams]
    assert shown == [("flac", "48000", "mono"), ("mp3", "48000", "mono")]
    code, out, err = run(["info", str(src)], capsys)
    assert code == 0 and out.splitlines()[2:] == [
        "  video      none: nothing to upscale (dove upscale refuses it)",
        "  #0 audio   flac, mono (1 ch), 48000 Hz, default",
        "  #1 audio   mp3, mono (1 ch), 48000 Hz, eng, 'Mix'",
    ], out  # fmt: skip
    code, (d,), err = _info([src], capsys)
    assert code == 0 and d["video"] is None, d
    assert [(s["codec"], s["sample_rate"], s["title"]) for s in d["streams"]] == [("flac", 48000, None),
                                                                                ("mp3", 48000, "Mix")]  # fmt: skip
    code, _, err = run(["upscale", str(src), "-o", str(tmp_path / "x.mkv"), "--model", "bilinear"], capsys)
    assert code == 2 and "no video stream (has audio)" in err
    (tmp_path / "cues.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n")
    ffmpeg("-i", tmp_path / "cues.srt", tmp_path / "cues.mkv")
    code, _, err = run(["info", str(tmp_path / "cues.mkv")], capsys)  # no sound either: still refused
    assert code == 2 and "no video stream (has subtitle)" in err, err


def test_info_of_a_folder_of_videos_describes_each(tmp_path, capsys):
    """`dove info DIR` of .mp4 files read DIR as an image sequence: "folder holds no videos or images
    ...; 2 files that look like videos but have no video extension (a.mp4, b.mkv): rename them". It
    describes each video now, as `dove upscale DIR` takes them (frame counts as the ffmpeg binary made)."""
    src = tmp_path / "in"
    src.mkdir()
    for name, n in (("b.mkv", 3), ("a.mp4", 2)):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v", str(n), "-pix_fmt", "yuv420p", src / name)
    (src / "notes.txt").write_text("not an input, as for dove upscale DIR")
    code, described, err = _info([src], capsys)
    assert code == 0 and [(Path(d["path"]).name, d["video"]["frames"]) for d in described] == [("a.mp4", 2),
                                                                                             ("b.mkv", 3)], err  # fmt: skip


def test_info_file_shows_every_stream_in_input_order(tmp_path, capsys):
    """`dove info EPISODE.mkv` said "Got unexpected extra argument(s)": nothing listed an episode's audio,
    subtitles or attachments. Here a fansub-style file made by ffmpeg: each stream with what it was made with."""
    base = make_clip(tmp_path / "base.mkv", audio=True, subtitles=True, chapters=True)
    (tmp_path / "font.ttf").write_bytes(b"\0" * 3000)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x32:rate=1", "-frames:v", "1", tmp_path / "cover.jpg")
    ep = tmp_path / "ep 01.mkv"
    ffmpeg("-i", base, "-f", "lavfi", "-i", "sine=sample_rate=44100:duration=0.5", "-map", "0:v", "-map", "0:a",
           "-map", "1:a", "-map", "0:s", "-map", "0:s", "-c:v", "copy", "-c:a:0", "copy", "-c:a:1", "ac3", "-ac:a:1",
           "2", "-c:s", "srt", "-disposition:a:0", "default", "-metadata:s:a:1", "language=eng", "-metadata:s:a:1",
           "title=Commentary", "-disposition:a:1", "comment", "-metadata:s:s:1", "title=Signs & Songs",
           "-disposition:s:1", "forced", "-attach", tmp_path / "font.ttf", "-metadata:s:t:0", "mimetype=font/ttf",
           "-attach", tmp_path / "cover.jpg", "-metadata:s:t:1", "mimetype=image/jpeg", "-write_crc32", "0", ep)  # fmt: skip
    code, [d], err = _info([ep], capsys)
    assert code == 0, err
    v = d["video"]
    assert (v["index"], v["codec"], v["width"], v["height"], v["fps"]) == (0, "h264", 64, 48, "30000/1001")
    assert v["frames_exact"] is False and v["variable_rate"] is False  # Matroska does not count frames...
    assert v["frames"] == 12  # ... so its packets are (the duration said about 15)
    streams = [(s["index"], s["kind"], s.get("codec"), s.get("language"), s.get("title"), s.get("flags"))
               for s in d["streams"] if s["kind"] in ("audio", "subtitle")]  # fmt: skip
    assert streams == [
        (1, "audio", "aac", "fra", "French sine", ["default"]),
        (2, "audio", "ac3", "eng", "Commentary", ["comment"]),
        (3, "subtitle", "srt", "eng", None, []),
        (4, "subtitle", "srt", "eng", "Signs & Songs", ["forced"]),
    ]
    audio = d["streams"][1]
    assert (audio["channels"], audio["sample_rate"]) == (2, 44100)
    font, cover = d["streams"][4:]
    assert (font["kind"], font["filename"], font["mimetype"], font["bytes"]) == (
        "attachment",
        "font.ttf",
        "font/ttf",
        3000,
    )
    assert (cover["kind"], cover["filename"], cover["bytes"]) == (
        "cover art",
        "cover.jpg",
        (tmp_path / "cover.jpg").stat().st_size,
    )
    assert d["chapters"] == [
        {"start": 0, "end": 0.2, "title": "Intro"},
        {"start": 0.2, "end": 0.4, "title": "Main part"},
    ]
    assert d["tags"]["title"] == "My clip"
    code, out, err = run(["info", str(ep)], capsys)  # the same as lines a person reads
    assert code == 0 and out.startswith(f"{ep}\n"), err
    assert "python" not in out and "SDPA" not in out  # only the file's block: no environment
    for line in ("12 (counted from the packets", "29.970 fps (30000/1001), constant", "#2 audio       ac3, stereo (2 ch), "
                 "44100 Hz, eng, 'Commentary', comment", "#4 subtitle    srt, eng, 'Signs & Songs', forced",
                 "#5 attachment  font.ttf, font/ttf, 3000 bytes", "chapters       2\n",
                 "\n    1            0:00:00.000 to 0:00:00.200  'Intro'\n",
                 "\n    2            0:00:00.200 to 0:00:00.400  'Main part'\n",
                 "tag title      My clip"):  # fmt: skip
        assert line in out, out
    assert (d["chapters_ordered"], d["chapters_linked"]) == (False, False)
    code, out, err = run(["info", str(ordered_copy(ep, tmp_path / "ordered.mkv"))], capsys)  # FFmpeg reads no such flag
    assert code == 0 and "chapters       2, ordered (played as a list; an output plays straight through)\n" in out, out


def test_full_range_into_prores_is_planned_as_video_range(tmp_path, capsys, caplog):
    """ProRes is video range only: the plan promised "prores yuv422p10le full range" for a full-range
    input, which the output was not; it says what is written, and the conversion is said before the run."""
    src = tmp_path / "pc.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "2", "-vf",
           "scale=out_range=pc,format=yuv422p10le", "-c:v", "libx264", "-color_range", "pc", src)  # fmt: skip
    for codec, ext, said in (("prores", ".mov", ""), ("hevc", ".mkv", " full range")):
        argv = ["upscale", str(src), "-o", str(tmp_path / f"o{ext}"), "--model", "bilinear", "--scale", "1"]
        caplog.clear()
        code, plan, err = run([*argv, "--codec", codec, "--dry-run"], capsys)
        assert code == 0, err
        assert re.search(rf"output: 64x48, {codec} yuv42\dp10le{said}\s*\n", plan), plan
        line = "ProRes is video range only: converted to video (limited) range"
        assert caplog.text.count(line) == (codec == "prores"), caplog.text
    out = tmp_path / "run.mkv"  # the run (its segments joined) writes what was planned; .mkv could say pc
    assert (
        run(["upscale", str(src), "-o", str(out), "--model", "bilinear", "--scale", "1", "--codec", "prores"], capsys)[
            0
        ]
        == 0
    )
    assert "yuv422p10le(tv" in ffmpeg("-i", out, check=False).stderr


def test_rgb_and_full_range_are_said_as_written(clip_fullrange, tmp_path, capsys):
    """An RGB capture: `dove info` says full range (RGB always is; ffmpeg tags ffv1's "pc", utvideo's
    not at all), and the output is limited-range yuv420p, as planned. A full-range YUV input keeps
    its range, which the plan says (it said yuv420p where ffmpeg shows yuvj420p)."""
    tagged, untagged = tmp_path / "cap.mkv", tmp_path / "cap.avi"
    for path, codec in ((tagged, "ffv1"), (untagged, "utvideo")):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "3", "-c:v", codec, "-pix_fmt",
               "bgr0" if codec == "ffv1" else "gbrp", path)  # fmt: skip
    code, described, err = _info([tagged, untagged], capsys)
    assert code == 0 and [d["video"]["range"] for d in described] == ["pc", None], err
    assert all(d["video"]["rgb"] for d in described)
    code, out, err = run(["info", str(untagged)], capsys)
    assert re.search(r"range +full \(as RGB always is, whatever a tag says\)\n", out) and "read as" not in out, out
    for src, written, full in ((tagged, "yuv420p(tv", False), (untagged, "yuv420p(tv", False),
                               (clip_fullrange, "yuvj420p(pc", True)):  # fmt: skip
        out_path, manifest = tmp_path / f"{src.stem}{src.suffix[1:]}.mp4", tmp_path / f"{src.suffix[1:]}.json"
        argv = ["upscale", str(src), "-o", str(out_path), "--model", "bilinear", "--scale", "1"]
        code, plan, err = run([*argv, "--dry-run", "--manifest", str(manifest)], capsys)
        assert code == 0, err
        assert re.search(r"output: 64x48, h264 yuv420p" + (" full range" if full else "") + r"\s*\n", plan), plan
        assert json.loads(manifest.read_text())["plan"]["full_range"] is full
        assert run(argv, capsys)[0] == 0
        assert written in ffmpeg("-i", out_path, check=False).stderr


def test_info_file_says_colour_hdr_and_geometry(clip_pq, clip_rotated, clip_sar, clip_vfr, clip_interlaced, clip_10bit,
                                                 capsys):  # fmt: skip
    """What a colourist asked to see before a run: tags, what an untagged one is read as, HDR, bit depth,
    and the geometry and timing each clip was made with (conftest_media.py)."""
    code, (pq, rotated, sar, vfr, interlaced, ten), err = _info(
        [clip_pq, clip_rotated, clip_sar, clip_vfr, clip_interlaced, clip_10bit], capsys
    )
    assert code == 0, err
    p = pq["video"]
    assert (p["primaries"], p["transfer"], p["matrix"], p["hdr"], p["bit_depth"]) == (
        "bt2020", "smpte2084", "bt2020nc", "PQ", 10)  # fmt: skip
    assert p["assumed_matrix"] is None and p["frames"] == 5 and p["frames_exact"]
    assert (ten["video"]["bit_depth"], ten["video"]["pix_fmt"]) == (10, "yuv420p10le")
    assert ten["video"]["hdr"] is None and ten["video"]["matrix"] is None
    assert ten["video"]["assumed_matrix"] == "smpte170m"  # 64x48 untagged: read as BT.601
    r = rotated["video"]
    assert (r["width"], r["height"], abs(r["rotation"]), r["display_size"]) == (64, 48, 90, "48x64")
    assert (sar["video"]["sample_aspect_ratio"], sar["video"]["display_size"]) == ("4/3", "85x48")
    assert vfr["video"]["variable_rate"] and not rotated["video"]["variable_rate"]
    with av.open(str(clip_vfr)) as c:  # a variable rate is the frames' average, not the stream's nominal one
        times = [f.time for f in c.decode(video=0)]
    average = Fraction(len(times) - 1) / (Fraction(str(times[-1])) - Fraction(str(times[0])))
    assert (vfr["video"]["frames"], Fraction(vfr["video"]["fps"])) == (len(times), average), vfr["video"]
    assert Fraction(vfr["video"]["nominal_fps"]) != average
    assert interlaced["video"]["interlaced"] and not rotated["video"]["interlaced"]
    code, out, err = run(["info", str(clip_pq), str(clip_10bit)], capsys)
    assert code == 0, err
    for line in (r"HDR +yes \(PQ\)", r"transfer +smpte2084", r"pixels +yuv420p10le, 10-bit, progressive",
                 r"matrix +untagged \(read as BT.601, as for SD; as BT.709 with", r"HDR +no"):  # fmt: skip
        assert re.search(line, out), (line, out)


def test_info_lists_a_timecode_track_and_says_a_mirror(tmp_path, capsys):
    """A camera's .mov or .mp4 has a timecode (tmcd) track, a data stream with no codec: `dove info`
    stopped at it with a TypeError (exit 1, the files after it never listed). A front camera's
    display matrix mirrors as well as turns: info said a plain mirror was a turn of 180 degrees."""
    base = make_clip(tmp_path / "base.mp4", frames=3)
    files = [tmp_path / "tc.mov", tmp_path / "tc.mp4", tmp_path / "selfie.mov", tmp_path / "mirror.mov"]
    for tc in files[:2]:
        ffmpeg("-i", base, "-c", "copy", "-timecode", "01:00:00:00", tc)
    ffmpeg("-display_rotation:v", "90", "-display_hflip:v", "-i", base, "-c", "copy", files[2])
    ffmpeg("-display_hflip:v", "-i", base, "-c", "copy", files[3])
    code, out, err = run(["info", *map(str, files)], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert len(re.findall(r"^  #1 timecode track +01:00:00:00, eng$", out, re.M)) == 2, out
    assert re.search(r"^    rotation +90 degrees, mirrored \(kept as a tag\)$", out, re.M), out
    assert re.search(r"^    rotation +mirrored \(kept as a tag\)$", out, re.M), out
    code, described, err = _info(files, capsys)
    assert code == 0, err
    for d in described[:2]:
        assert d["streams"] == [{"index": 1, "kind": "timecode track", "codec": None, "timecode": "01:00:00:00",
                                 "language": "eng", "title": None, "flags": [], "programme": None}]  # fmt: skip
    assert [(d["video"]["rotation"], d["video"]["mirrored"]) for d in described] == [
        (0, False), (0, False), (90, True), (0, True)]  # fmt: skip


def test_info_shows_the_start_timecode_wherever_it_is(tmp_path, capsys):
    """`dove info` showed the start timecode of a .mov's tmcd track only, not an MXF's (a tag of its
    video and of the file) or a Matroska file's (a tag), which a run carries all the same; nor the reel
    name an NLE relinks by. Each as `ffmpeg -i` lists it."""
    args = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "2"]
    files = {
        tmp_path / "cam.mov": ["-c:v", "mpeg4", "-timecode", "01:00:00:00", "-metadata:s:v:0", "reel_name=A001C003"],
        tmp_path / "tape.mxf": ["-c:v", "mpeg2video", "-timecode", "10:00:00:00", "-metadata", "reel_name=R7"],
        tmp_path / "file.mkv": ["-c:v", "mpeg4", "-timecode", "09:59:50:00"],  # a tag of the file
        tmp_path / "video.mkv": ["-c:v", "mpeg4", "-metadata:s:v:0", "timecode=00:00:10:05"],  # of the video
    }
    for path, opts in files.items():
        ffmpeg(*args, *opts, path)
    listed = [(re.findall(r"^ +timecode +: (.+)$", ffinfo(p).stderr, re.M | re.I),
               re.findall(r"^ +reel_name +: (.+)$", ffinfo(p).stderr, re.M | re.I)) for p in files]  # fmt: skip
    assert listed == [(["01:00:00:00", "01:00:00:00"], ["A001C003"]), (["10:00:00:00", "10:00:00:00"], ["R7"]),
                      (["09:59:50:00"], []), (["00:00:10:05"], [])]  # fmt: skip
    code, out, err = run(["info", *map(str, files)], capsys)
    assert code == 0, err
    assert re.findall(r"^    timecode +(.+)$", out, re.M) == [
        "01:00:00:00 (reel A001C003) at the first frame", "10:00:00:00 (reel R7) at the first frame",
        "09:59:50:00 at the first frame", "00:00:10:05 at the first frame"]  # fmt: skip
    code, described, err = _info(list(files), capsys)
    assert code == 0, err
    assert [(d["video"]["timecode"], d["video"]["reel_name"]) for d in described] == [
        ("01:00:00:00", "A001C003"), ("10:00:00:00", "R7"), ("09:59:50:00", None), ("00:00:10:05", None)]  # fmt: skip


def test_info_says_where_a_recordings_clock_starts(tmp_path, capsys):
    """A capture 1 h into the broadcast day: info said nothing of its start (3601.39 s), which outputs
    other than .ts drop. Now the file's, the first frame's and each stream's start, as `ffmpeg -i` has
    them, and what the output does with it; a file that starts at 0 says nothing of it."""
    ts = make_broadcast(tmp_path / "rec.ts", audio_shift=-224)  # the sound 10 ms before the picture
    plain = make_clip(tmp_path / "plain.mp4", frames=3)
    ff = ffinfo(ts)
    file_start = float(re.search(r"start: ([\d.]+)", ff.stderr)[1])
    video, sound = (float(re.search(r"start ([\d.]+)", s.text)[1]) for s in ff.streams)
    assert (file_start, video, sound) == (3601.39, 3601.4, 3601.39)
    code, (d, p), err = _info([ts, plain], capsys)
    assert code == 0, err
    assert (d["start"], d["clock"], d["video"]["start"], d["streams"][0]["start"]) == (file_start, True, video, sound)
    assert (p["start"], p["clock"], p["video"]["start"]) == (0, False, 0)
    code, out, err = run(["info", str(ts), str(plain)], capsys)
    assert code == 0, err
    rec, mp4 = out.split(f"{plain}\n")
    assert re.search(r"^  container +MPEG-TS \(MPEG-2 Transport Stream\), 2\.010 s, starts at 3601\.390 s \(a recording's clock: outputs other "
                     r"than \.ts start at 0\)$", rec, re.M), rec  # fmt: skip
    assert re.search(r"^    start +3601\.400 s \(the first frame\)$", rec, re.M), rec
    assert re.search(r"^  #1 audio +ac3, mono \(1 ch\), 48000 Hz, starts at 3601\.390 s$", rec, re.M), rec
    assert "start" not in mp4, mp4


def test_info_says_a_sound_track_that_outlasts_the_picture(tmp_path, capsys):
    """2 s of picture and 5 s of sound: info said "container MP4/MOV, 2.000 s" (the video's length under
    the container's name, where `ffmpeg -i` says 5 s) and nothing of the 3 s of sound after the picture,
    which an output keeps. Now the container's length, the video's own and each stream's that differs."""
    for ext in ("mp4", "mkv"):  # (Matroska gives tracks no length but a DURATION tag)
        clip = tmp_path / f"long_sound.{ext}"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=25:d=2", "-f", "lavfi", "-i", "sine=d=5:r=8000",
               "-c:v", "libx264", "-c:a", "pcm_s16le", clip)  # fmt: skip
        said = float(re.search(r"Duration: 00:00:(\d\d\.\d\d)", ffinfo(clip).stderr)[1])  # as ffmpeg -i says it
        code, (d,), err = _info([clip], capsys)
        assert code == 0 and said == 5 and d["duration"] == pytest.approx(said, abs=0.01), (d, err)
        assert d["video"]["duration"] == 2, d["video"]
        assert d["streams"][0]["duration"] == pytest.approx(5, abs=1e-3), d["streams"]
        code, out, err = run(["info", str(clip)], capsys)
        assert re.search(r"^  container +[^,]+, 5\.000 s$", out, re.M) and re.search(
            r"^    length +2\.000 s$", out, re.M
        ), out
        assert re.search(r"^  #1 audio +pcm_s16le, (1 channel|mono \(1 ch\)), 8000 Hz, .*5\.000 s long", out, re.M), out
    code, out, err = run(["info", str(make_clip(tmp_path / "even.mp4", frames=3))], capsys)
    assert code == 0 and "length" not in out and " long" not in out, out


def test_info_and_upscale_of_a_two_programme_ts(tmp_path, capsys, caplog):
    """A broadcast multiplex: `dove info` listed programme 2's video as a bare `#2 video h264`, and
    nothing said which audio goes with which picture. Each stream names its programme (as `ffmpeg -i`
    groups them), another video its size and how to read it; `--video-stream 2` upscales programme
    2 with its own audio (checked with the ffmpeg binary)."""
    src = make_programmes_ts(tmp_path / "mux.ts")
    code, out, err = run(["info", str(src)], capsys)
    assert code == 0, err
    rows = [line.split(None, 2)[-1] for line in out.splitlines() if line.startswith("  #")]
    assert rows == ["h264, 64x48, programme 1 'ProgA'",
                    "mp2, mono (1 ch), 44100 Hz, deu, starts at 1.400 s, programme 1 'ProgA'",
                    "h264, 48x32 (not read: --video-stream 2 reads it), programme 2 'ProgB'",
                    "mp2, mono (1 ch), 44100 Hz, fra, starts at 1.400 s, programme 2 'ProgB'"], out  # fmt: skip
    code, (d,), err = _info([src], capsys)
    assert code == 0 and d["programmes"] == [
        {"number": 1, "name": "ProgA", "provider": "FFmpeg", "streams": [0, 1]},
        {"number": 2, "name": "ProgB", "provider": "FFmpeg", "streams": [2, 3]},
    ], d  # fmt: skip
    assert d["video"]["programme"] == 1 and [s["programme"] for s in d["streams"]] == [1, 2, 2]
    assert (d["streams"][1]["width"], d["streams"][1]["height"]) == (48, 32)
    out_ts = tmp_path / "b.ts"
    code, _, err = run(["upscale", str(src), "-o", str(out_ts), "--model", "bilinear", "--video-stream", "2"], capsys)
    assert code == 0 and caplog.text.count("left out: programme 1 'ProgA': video #0 64x48, audio #1") == 1, err
    got = ffinfo(out_ts)
    assert "192x128" in got.video().text and [s.language for s in got.streams[1:]] == ["fra"], got.stderr
    assert packet_md5(out_ts, "0:a") == packet_md5(src, "0:3")
    code, _, err = run(["upscale", str(src), "-o", str(tmp_path / "c.ts"), "--model", "bilinear", "--video-stream",
                        "3"], capsys)  # fmt: skip
    assert code == 2 and "--video-stream 3 is not a video stream of this file (its video: #0, #2;" in err, err


def test_closed_captions_in_info_and_kept_by_a_run(tmp_path, capsys, caplog):
    """`dove info` said nothing of a broadcast clip's closed captions, and a run dropped them unsaid.
    Info lists them; a run (segments, the writer's thread, the join) keeps them, as ffmpeg reads them."""
    src = make_caption_ts(tmp_path / "cc.ts")
    code, out, err = run(["info", str(src)], capsys)
    assert code == 0 and re.search(r"^    captions +EIA-608/708 closed captions, in the video \(kept by h264 and hevc "
                                   r"outputs\)$", out, re.M), out  # fmt: skip
    code, described, err = _info([src, make_clip(tmp_path / "plain.mp4")], capsys)
    assert code == 0 and [d["video"]["captions"] for d in described] == [True, False]
    out_ts = tmp_path / "out.ts"
    code, _, err = run(["upscale", str(src), "-o", str(out_ts), "--model", "bilinear", "--scale", "2"], capsys)
    assert code == 0 and "closed captions" not in caplog.text, err
    assert "HELLO BROADCAST" in caption_text(out_ts) and caption_text(out_ts) == caption_text(src)


def test_info_says_a_variable_rate_clips_nominal_rate(tmp_path, capsys):
    """A phone's 29.97 fps clip with jitter and a dropped frame: info said "29.402 fps, variable (the
    average; nominally 29.471)", two averages (the packets', the container's), never the 29.97 it
    was recorded at (ffmpeg's tbr)."""
    clip = tmp_path / "phone.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30000/1001", "-frames:v", "40", "-vf",
           r"settb=1/90000,setpts='N*3003+if(eq(mod(N\,7)\,3)\,360\,0)',select='not(eq(n\,20))'", "-fps_mode",
           "passthrough", "-enc_time_base", "1/90000", "-c:v", "libx264", "-pix_fmt", "yuv420p", clip)  # fmt: skip
    code, (d,), err = _info([clip], capsys)
    assert code == 0 and d["video"]["variable_rate"], err
    assert d["video"]["nominal_fps"] == "30000/1001" and Fraction(d["video"]["fps"]) < Fraction(29.5)
    code, out, err = run(["info", str(clip)], capsys)
    assert re.search(r"frame rate +29\.\d+ fps \(\d+/\d+\), variable \(the average; nominally 29\.970\)$", out, re.M)


def test_info_says_a_recording_cut_short_or_unfinished(tmp_path, capsys):
    """`dove info` of a Matroska recording cut in half (its header says 2 s) said nothing of it, nor of
    one streamed to a pipe (no Duration: still being written); only a run said so. The packets' end,
    the header's and the frames between, as ffmpeg reads the file's frames."""
    whole = tmp_path / "whole.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "48", "-g", "6", "-c:v", "libx264", whole)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    kept = len(frame_times(cut))
    live = tmp_path / "live.mkv"
    live.write_bytes(
        subprocess.run(
            [
                FFMPEG,
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=32x24:r=25",
                "-frames:v",
                "5",
                "-c:v",
                "ffv1",
                "-f",
                "matroska",
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
    )
    code, (w, c, r), err = _info([whole, cut, live], capsys)  # fmt: skip
    assert code == 0, err
    assert w["video"]["cut_short"] is None and not w["video"]["unfinished"] and r["video"]["unfinished"]
    short = c["video"]["cut_short"]
    assert 10 < kept < 40 and short == {
        "ends": round((kept - 1) / 24, 3),
        "header_end": 2.0,
        "missing_frames": 48 - kept,
    }
    code, out, err = run(["info", str(cut), str(live)], capsys)
    assert f"cut short   its video ends at {(kept - 1) / 24:.3f} s, its header says 2.000 s (about {48 - kept}" in out
    assert out.count("unfinished  its header lacks") == 1


def test_a_plan_says_a_variable_rate_not_a_nominal_or_average_rate(tmp_path, capsys):
    """A screen recording (Matroska: frames held 0.6 s) was planned "at 30.000 fps", its nominal rate,
    and a phone-like .mp4 at its container's average (8.8 fps where `dove info` said 8.551, variable):
    neither is what the output gets, which keeps each frame's own time. A constant clip keeps its rate."""
    from media import make_held_mkv, make_vfr_clip

    held, phone = make_held_mkv(tmp_path / "held.mkv"), make_vfr_clip(tmp_path / "phone.mp4", frames=20)
    for clip in (held, phone):
        code, plan, err = run(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear",
                               "--dry-run"], capsys)  # fmt: skip
        assert code == 0 and " frames, variable rate (each frame keeps its own time)\n" in plan, (clip, plan, err)
        assert upscale(clip, tmp_path / "o.mkv", model="bilinear", dry_run=True).variable_rate
    assert not upscale(demo_clip("007.mp4"), tmp_path / "o.mkv", model="bilinear", dry_run=True).variable_rate


def test_info_images_and_an_unreadable_file(png_sequence, clip_2997, tmp_path, capsys):
    """A folder of images: count, numbering and size. A file dove cannot read is one error line naming it
    and exit 2, the other files still shown; `--json` without files is the environment's report."""
    folder = tmp_path / "seq"
    shutil.copytree(png_sequence, folder)
    (folder / "frame_0003.png").unlink()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    code, out, err = run(["info", str(folder), str(broken), str(clip_2997)], capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"error: {broken}: " + err.split(f"{broken}: ", 1)[1].strip()]
    assert f"{folder}\n  images  7 png (frame_0000.png to frame_0007.png), numbered 0-7, 1 number missing\n" in out
    assert "size    64x48" in out and f"{clip_2997}\n" in out and "#1 audio" in out
    code, [seq, bad, clip], err = _info([folder, broken, clip_2997], capsys)
    assert code == 2 and seq["images"]["count"] == 7 and seq["images"]["missing"] == 1
    assert bad["path"] == str(broken) and bad["error"].startswith(f"{broken}: ")
    assert clip["streams"][0]["title"] == "French sine"  # MP4 keeps a track title as its name
    assert clip["video"]["frames"] == 12 and [s["kind"] for s in clip["streams"]] == [
        "audio",
        "subtitle",
        "chapter track",
    ]
    code, out, err = run(["info", "--json"], capsys)  # without files: the environment (test_unattended.py)
    assert code == 0 and "python" in json.loads(out) and not err
    odd = tmp_path / "nl\nname.mp4"  # a newline in a name: escaped, one line, as every error shows it
    odd.write_bytes(b"junk")
    shutil.copy(clip_2997, tmp_path / "cr\r.mp4")
    code, out, err = run(["info", str(odd), str(tmp_path / "cr\r.mp4")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {tmp_path}/nl\\nname.mp4: "), err
    assert f"{tmp_path}/cr\\r.mp4\n" in out, out


def test_info_says_pcm_channels_in_no_named_order_once(tmp_path, capsys, monkeypatch):
    """PCM in .mkv has no channel layout: FFmpeg calls it "3 channels", which `dove info` printed as
    "3 channels (3 ch)" (and "1 channels (1 ch)")."""
    monkeypatch.delenv("COLUMNS", raising=False)
    for n in (1, 3):
        src = tmp_path / f"pcm{n}.mkv"
        tones = "|".join(f"0.5*sin(2*PI*{300 + 100 * i}*t)" for i in range(n))
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=16", "-f", "lavfi", "-i", f"aevalsrc={tones}:s=48000",
               "-t", "0.5", "-c:v", "libx264", "-c:a", "pcm_s16le", src)  # fmt: skip
        code, out, err = run(["info", str(src)], capsys)
        said = "1 channel, 48000 Hz" if n == 1 else f"{n} channels, in no named order, 48000 Hz"
        assert code == 0 and f"#1 audio      pcm_s16le, {said}" in out, out
        code, out, err = run(["upscale", str(src), "-o", str(tmp_path / f"o{n}.mkv"), "--model", "bilinear",
                              "--dry-run"], capsys)  # fmt: skip
        track = "1 channel" if n == 1 else "3 channels"  # the plan's line said "1 channels"
        assert code == 0 and f"audio: #1 pcm_s16le {track} 48 kHz: copied" in out, out


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("bitsandbytes") is not None, reason="needs it absent")
def test_a_dry_run_for_another_card_says_what_this_machine_lacks_for_the_run(tmp_path, caplog):
    """`--quantize int8 --vram 24 --dry-run` on a node without bitsandbytes planned and exited 0 without
    a word: a scheduler could not validate its image. It plans (the card is elsewhere) and says so."""
    from dove_cli.upscaling import upscale

    with caplog.at_level("WARNING"):
        plan = upscale(demo_clip("001.mp4"), tmp_path / "x.mp4", model="full-random", vram=24, quantize="int8",
                       dry_run=True)  # fmt: skip
    said = [r.getMessage() for r in caplog.records]
    assert plan.quantize == "int8" and any(
        "--quantize int8 needs bitsandbytes, which is not installed here: pip install 'dove-cli[quant]'" in m
        for m in said
    ), said


# ---------------------------------------------------------------- read by a screen reader, or by a script


def test_bare_dove_prints_the_help_and_its_readers_exit_is_141(tmp_path):
    """Bare `dove` printed its help with print(): into a pipe whose reader had gone (`dove | head -2`), a
    BrokenPipeError traceback and exit 1, the code of a bug. Now exit 141 as for any product of dove's (so
    --help too, which click ends with 1); written whole, it is 0 (test_version_and_help_once)."""
    for args in ([], ["--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader gone before dove starts (not raced against its start-up on a loaded machine)
        try:
            done = subprocess.run([sys.executable, "-m", "dove_cli", *args], stdout=write_end,
                                  stderr=subprocess.PIPE, check=False)  # fmt: skip
        finally:
            os.close(write_end)
        err = done.stderr.decode()
        assert done.returncode == 141 and not err, (args, done.returncode, err)


@pytest.mark.parametrize("columns", ["40", "200"])
def test_command_summaries_are_whole_sentences_at_any_width(columns, capsys, monkeypatch):
    """`dove --help` cut every summary with "..." (at 40, 80 and 200 columns): a listener never heard the end."""
    monkeypatch.setenv("COLUMNS", columns)
    for argv in (["--help"], ["train", "--help"]):
        code, out, _ = run(argv, capsys)
        commands = out.split("Commands:")[1]
        summaries = " ".join(commands.split())  # (folded onto more lines at 40 columns)
        assert code == 0 and "..." not in commands and summaries.endswith("."), out
        names = re.findall(r"^  (\S+)", commands, re.MULTILINE)
        assert names and len(re.findall(r"\.(?: |$)", summaries)) == len(names), out  # a sentence each


def test_info_keeps_paths_and_urls_whole_at_40_columns(tmp_path, capsys, monkeypatch):
    """At 40 columns `dove info` folded `https://huggingf` / `ace.co` and the hub cache's path mid-word:
    neither could be copied. A value that does not fit beside its label is on lines of its own, cut at
    spaces only; and no line is padded with trailing spaces (noise on a braille display)."""
    home = tmp_path / "a-rather-long-folder-name-for-the-hub-cache"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", "https://hub-mirror.example.org/huggingface")
    monkeypatch.setenv("COLUMNS", "40")
    code, out, err = run(["info"], capsys)
    lines = out.splitlines()
    assert code == 0 and str(home / "hub") in lines and "https://hub-mirror.example.org/huggingface" in lines, out
    assert not [line for line in lines if line != line.rstrip()], out
    assert "python" in out and all(len(line) <= 40 or " " not in line for line in lines), out


def test_dry_run_names_its_files_and_the_manifest_says_width_and_height(tmp_path, capsys, monkeypatch):
    """The manifest's plan gave sizes as [height, width] (`"input_size": [48, 64]`), while every message
    says 64x48 and `dove info --json` says width and height: a script took 48 for the width. And a file's
    --dry-run table named neither its input nor its output. The sizes here are the clip's, as made."""
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "clip.mp4", size="64x48", frames=3)
    out, manifest = tmp_path / "out.mp4", tmp_path / "plan.json"
    code, plan, err = run(["upscale", str(clip), "-o", str(out), "--model", "bilinear", "--dry-run", "--size",
                           "128x96", "--manifest", str(manifest)], capsys)  # fmt: skip
    assert code == 0, err
    assert re.search(rf"^ *input file *[│|:]? +{re.escape(str(clip))}\s*$", plan, re.MULTILINE), plan
    assert re.search(rf"^ *output file *[│|:]? +{re.escape(str(out))}\s*$", plan, re.MULTILINE), plan
    doc = json.loads(manifest.read_text())
    assert (doc["input"], doc["output"]) == (str(clip), str(out))
    sizes = {k: doc["plan"][k] for k in ("input_size", "padded_size", "output_size", "size")}
    assert sizes == {"input_size": {"width": 64, "height": 48}, "padded_size": {"width": 64, "height": 48},
                     "output_size": {"width": 256, "height": 192}, "size": {"width": 128, "height": 96}}  # fmt: skip
    code, _, err = run(["upscale", str(clip.parent), "-o", str(tmp_path / "outdir"), "--model", "bilinear",
                        "--dry-run", "--manifest", str(tmp_path / "folder.json")], capsys)  # fmt: skip
    entry = json.loads((tmp_path / "folder.json").read_text())["files"][0]
    assert code == 0 and entry["plan"]["output_size"] == {"width": 256, "height": 192}, err
    assert entry["plan"]["size"] is None


def test_bench_names_its_input(tmp_path, capsys, caplog):
    """`dove bench` named no input (`dove bench: bilinear on cpu`), in its table or its JSON; and its
    synthetic clip warned "the source is RGB ... use --pix-fmt yuv444p", an option bench does not have."""
    clip = make_clip(tmp_path / "clip.mp4", size="32x24", frames=2)
    code, out, err = run(["bench", "--model", "bilinear", "-i", str(clip), "--json"], capsys)
    assert code == 0 and json.loads(out)["input"] == str(clip), err
    code, out, err = run(["bench", "--model", "bilinear", "-i", str(clip)], capsys)
    assert code == 0 and out.startswith(f"dove bench: bilinear on cpu, input {clip} (32x24 in, 128x96 out)\n"), out
    code, out, err = run(["bench", "--model", "bilinear", "--frames", "2", "--height", "64", "--width", "64"], capsys)
    # the size asked for is the output's: saying only the input's (16x16) read as a wrong size
    assert code == 0 and "a synthetic clip of 2 frames (16x16 in, 64x64 out)" in out.splitlines()[0], out
    assert "pix-fmt" not in caplog.text, caplog.text


def test_bench_reports_its_first_run_apart_from_the_best(tmp_path, capsys, caplog):
    """The first run (with --compile, the compilation: a one-time cost) was never reported, only the
    fastest timed one after it. Each run is said as it starts (the default bench printed nothing for
    minutes, then its table)."""
    args = ["bench", "--model", "bilinear", "--frames", "2", "--height", "64", "--width", "64", "--json"]
    code, out, err = run([*args, "--warmup", "0", "--repeat", "1"], capsys)
    one = json.loads(out)
    assert code == 0 and one["first_seconds"] == one["seconds"] > 0, err  # one run: it is both
    code, out, err = run([*args, "--warmup", "1", "--repeat", "1"], capsys)
    two = json.loads(out)
    assert code == 0 and two["first_seconds"] > 0 and two["first_seconds"] != two["seconds"], err
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dove bench: ")]
    assert said[-3:] == ["dove bench: loading bilinear on cpu", "dove bench: run 1 of 2 (warm-up, not timed)",
                         "dove bench: run 2 of 2"], said  # fmt: skip


def test_degrade_gives_no_advice_for_options_it_lacks(tmp_path, capsys, caplog):
    """`dove degrade` of an ordinary yuv420p .mp4 warned "the source is RGB ... use --pix-fmt yuv444p ... or
    --codec ffv1": the source was not RGB (the frames degrade draws are), and degrade has neither option.
    Its sample is lossless H.264 4:4:4 (FFV1 RGB in an .mkv), chosen, so without a word."""
    clip = make_clip(tmp_path / "clip.mp4", size="64x48", frames=2)
    out = tmp_path / "lq.mp4"
    code, _, err = run(["degrade", str(clip), "-o", str(out), "--frames", "2"], capsys)
    assert code == 0 and "WARNING" not in err and not caplog.records, (err, caplog.text)
    assert "yuv444p" in ffinfo(out).video().text


def test_a_12_bit_master_stays_12_bit_in_ffv1_and_a_10_bit_codec_says_what_it_drops(tmp_path, capsys, caplog):
    """A 12-bit source was written at 10 bits even by the lossless ffv1. Now ffv1 keeps 12 bits (at
    --scale 1, the same 12-bit codes as the source, as ffmpeg decodes both), and HEVC Main 10 (its
    default; x265 writes 12 bits too) says once, before the run, what it drops and what keeps it."""
    src = make_clip(tmp_path / "m12.mkv", frames=2, codec="ffv1", pix_fmt="yuv444p12le",  # codes a 10-bit file cannot hold
                    vf="format=yuv444p12le,geq=lum='1000+7*X+5*Y':cb='2000+3*X':cr='2100-3*Y'")  # fmt: skip
    argv = ["--model", "bilinear", "--scale", "1", "-q"]
    code, _, err = run(["upscale", str(src), "-o", str(tmp_path / "keep.mkv"), "--codec", "ffv1", *argv], capsys)
    assert code == 0, err
    with av.open(str(tmp_path / "keep.mkv")) as c:
        assert c.streams.video[0].codec_context.format.name == "yuv444p12le"
    codes = [np.frombuffer(raw_rgb(f, "yuv444p12le"), "<u2").astype(int) for f in (src, tmp_path / "keep.mkv")]
    assert len(codes[0]) == 2 * 3 * 64 * 48 and np.abs(codes[1] - codes[0]).max() <= 1
    assert len(set(codes[0] % 4)) == 4  # (a 10-bit output would be off by up to 2)
    caplog.set_level(logging.WARNING)
    out = tmp_path / "main10.mkv"
    code, _, err = run(["upscale", str(src), "-o", str(out), "--codec", "hevc", *argv], capsys)
    assert code == 0, err
    said = (f"{out}: the source is 12-bit but the output (yuv420p10le) is 10-bit, hevc's default; --pix-fmt "
            "yuv420p12le keeps 12 bits (few players decode it), --codec ffv1 (.mkv) keeps them losslessly")  # fmt: skip
    assert [m for m in caplog.messages if "-bit" in m] == [said]
    assert "hevc (Main 10)" in ffinfo(out).video().text


@pytest.mark.parametrize(
    "name,message",
    [
        ("FIFO", "FIFO: is a named pipe (FIFO), which cannot be written (WHOLE); write a file, then read that"),
        ("LINK", "LINK: is a link to FIFO, a named pipe (FIFO), which cannot be written (WHOLE); write a file, then "
                 "read that"),
        ("/dev/null", "/dev/null: is the null device, not a file (WHOLE); for a test run, give a file name with "
                      "--dry-run (the plan; nothing is written) or use `dove bench` (the speed)"),
        ("/dev/stdout", "/dev/stdout: writing to standard output is not supported (WHOLE); give a file name like "
                        "out.mp4"),
        ("/dev/fd/1", "/dev/fd/1: writing to standard output is not supported (WHOLE); give a file name like out.mp4"),
    ],
)  # fmt: skip
def test_an_output_that_is_a_pipe_or_device_is_refused_and_kept(tmp_path, capsys, monkeypatch, name, message):
    """A FIFO as -o was "already exists (use --overwrite)", and --overwrite replaced it with a file while its
    reader waited for ever; /dev/stdout, /dev/fd/1 and /dev/null were offered `/dev/null.mp4`. Each is one
    line before any work, with or without --overwrite, and the FIFO stays a FIFO."""
    from dove_cli.errors import OutputError
    from dove_cli.video_io import check_output

    monkeypatch.chdir(tmp_path)
    os.mkfifo("FIFO")
    os.symlink("FIFO", "LINK")
    whole = "the output is written under a temporary name and renamed when whole"
    for flags in ([], ["--overwrite"]):
        if name.startswith("/dev/"):  # (the check alone: a regression run as root would rename a file over the
            with pytest.raises(OutputError) as exc:  # machine's own /dev/null or /dev/stdout for every process)
                check_output(Path(name), overwrite=bool(flags))
            assert str(exc.value) == message.replace("WHOLE", whole)
            continue
        code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", name, "--model", "bilinear", *flags], capsys)
        assert (code, err) == (2, f"error: {message.replace('WHOLE', whole)}\n"), err
    assert stat.S_ISFIFO(os.stat("FIFO").st_mode) and sorted(os.listdir()) == ["FIFO", "LINK"]


def test_an_output_folder_names_an_input_without_extension(tmp_path, capsys, monkeypatch):
    """`rec -o nd/` (a capture without an extension) said "no extension: give ... a folder (outdir/)", the
    very thing given, and `--container mp4` was refused as naming no folder run's outputs."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(demo_clip("007.mp4"), "rec")
    quick = ["--model", "bilinear", "--scale", "1", "--preview", "0+0.1s", "-q"]
    code, _, err = run(["upscale", "rec", "-o", "nd/", *quick], capsys)
    assert code == 0 and os.listdir("nd") == ["rec.mkv"], err  # (as a folder run names a container it cannot write)
    code, _, err = run(["upscale", "rec", "-o", "nd3/", "--container", "mp4", *quick], capsys)
    assert code == 0 and os.listdir("nd3") == ["rec.mp4"], err
    with av.open("nd3/rec.mp4") as c:
        assert c.format.name.startswith("mov") and c.streams.video[0].frames > 0


@pytest.fixture
def stdin_from(monkeypatch):
    """Put a file (a path, or an open descriptor) on file descriptor 0 for one test, as a shell's `<`."""
    saved = os.dup(0)

    def put(source: Path | int) -> None:
        if isinstance(source, int):
            os.dup2(source, 0)
            return
        with open(source, "rb") as f:
            os.dup2(f.fileno(), 0)

    yield put
    os.dup2(saved, 0)
    os.close(saved)


def test_dash_is_stdin_when_a_file_and_a_file_named_dash_is_that_file(tmp_path, capsys, monkeypatch, stdin_from):
    """`- < in.mp4` was refused while `/dev/stdin < in.mp4` worked; a file named `-` was refused though any
    existing name is a file."""
    monkeypatch.chdir(tmp_path)
    quick = ["--model", "bilinear", "--scale", "1", "--preview", "0+0.1s", "-q"]
    stdin_from(demo_clip("007.mp4"))
    code, _, err = run(["upscale", "-", "-o", "a.mkv", *quick], capsys)
    with av.open("a.mkv") as c:
        assert code == 0 and sum(1 for _ in c.decode(video=0)) > 0, err
    shutil.copy(demo_clip("007.mp4"), "-")
    Path("text.txt").write_text("not a video\n")
    stdin_from(tmp_path / "text.txt")  # the file `-` wins over stdin
    code, _, err = run(["upscale", "-", "-o", "b.mkv", *quick], capsys)
    assert code == 0 and Path("b.mkv").is_file(), err


def test_info_dash_describes_stdin_as_upscale_reads_it(tmp_path, capsys, stdin_from):
    """`dove info - < in.mp4` was refused ("reading from standard input ... is not supported") where `dove
    upscale - < in.mp4` read it: a file on stdin is described; a pipe, read once, is still one line."""
    stdin_from(make_clip(tmp_path / "in.mp4", size="64x48", frames=3))
    code, out, err = run(["info", "-"], capsys)
    assert code == 0 and not err and out.startswith("/dev/stdin\n") and "64x48" in out, (out, err)
    read, write = os.pipe()
    os.write(write, b"\0" * 64)
    os.close(write)
    stdin_from(read)  # `cat in.mp4 | dove info -`
    os.close(read)
    code, out, err = run(["info", "-"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "save it to a file first" in err, err


def test_a_fifo_input_is_refused_and_its_writer_let_go(tmp_path, capsys):
    """A FIFO input was refused without being opened: the program waiting to write into it (`ffmpeg ... -y
    fifo &`) waited for ever. Now its open returns and its first write fails (EPIPE), so it ends."""
    import threading
    import time

    fifo = tmp_path / "f1"
    os.mkfifo(fifo)
    got: list[BaseException | None] = []

    def writer() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY)  # (waits for a reader)
            try:
                for _ in range(500):  # (the first writes may land before dove closes it)
                    os.write(fd, b"x" * 10)
                    time.sleep(0.002)
                got.append(None)
            finally:
                os.close(fd)
        except OSError as exc:
            got.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        code, _, err = run(["upscale", str(fifo), "-o", str(tmp_path / "o.mkv"), "--model", "bilinear"], capsys)
        assert code == 2 and "f1: reading from standard input or a pipe is not supported" in err, err
        thread.join(5)
        assert not thread.is_alive() and isinstance(got[0], BrokenPipeError), got
    finally:
        if thread.is_alive():  # (never hang the suite: give the writer its reader)
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            thread.join(5)


def test_an_input_given_as_a_descriptor_is_named_by_its_path_in_progress_lines(tmp_path, capsys):
    """`dove upscale /dev/fd/3 ... 3<in.mp4`: its progress lines read `3: loading model`, `3: done`."""
    clip = make_clip(tmp_path / "in.mp4", frames=2, size="32x24")
    with open(clip, "rb") as f:
        given = f"/dev/fd/{f.fileno()}"
        code, _, err = run(["upscale", given, "-o", str(tmp_path / "out.mkv"), "--model", "bilinear"], capsys)
    lines = [line for line in err.splitlines() if line.endswith(("loading model", "upscaling"))]
    assert code == 0 and lines == [f"{given}: loading model", f"{given}: upscaling"], err


def test_an_image_sequence_keeps_its_names_and_numbers_and_resume_finds_it_finished(tmp_path, capsys):
    """The trial: `-o res/c01/` was refused for images ("images have none to give"), a pattern output
    of 0000.png ... started at 0001.png unless --start-number 0 was given, and `--resume` on the
    finished PNGs was exit 2 ("3 matching images already exist") where the README promises 0 and
    "nothing to do", as for a video."""
    rng = np.random.default_rng(5)
    (tmp_path / "c01").mkdir()
    frames = {f"{n:04d}.png": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for n in range(3)}
    for name, rgb in frames.items():
        Image.fromarray(rgb).save(tmp_path / "c01" / name)
    same = ["--model", "bilinear", "--scale", "1", "--color-fix", "none", "--tile", "0", "--chunk", "0", "-q"]
    out = tmp_path / "out" / "c01"
    (tmp_path / "out").mkdir()
    code, _, err = run(["upscale", str(tmp_path / "c01"), "-o", f"{out}/", *same], capsys)
    assert code == 0 and sorted(os.listdir(out)) == sorted(frames), err
    for name, rgb in frames.items():
        assert np.array_equal(np.asarray(Image.open(out / name)), rgb), name
    code, _, err = run(["upscale", str(tmp_path / "c01"), "-o", f"{out}/", *same[:-1], "--resume"], capsys)
    assert code == 0 and "finished already, and no run into it was interrupted: nothing to do" in err, err
    (out / "0001.png").unlink()  # (a gap: "holds 1 of the 3", counted up to it, where 2 are there)
    code, _, err = run(["upscale", str(tmp_path / "c01"), "-o", f"{out}/", *same, "--resume"], capsys)
    assert code == 2 and f"{out / '%04d.png'}: holds 2 of the 3 images from 0000.png on; missing 0001.png" in err, err
    for pattern, start, first in (("p/%06d.png", [], "000000.png"), ("q/%d.png", ["--start-number", "7"], "7.png")):
        code, _, err = run(["upscale", str(tmp_path / "c01"), "-o", str(tmp_path / pattern), *same, *start], capsys)
        assert code == 0 and sorted(os.listdir(tmp_path / pattern.split("/")[0]))[0] == first, err
    with pytest.raises(OutputError, match=re.escape(f"or the text '{tmp_path / 'new'}/' (a Path drops its slash); "
                                                    "the images keep their names")):  # fmt: skip
        upscale(tmp_path / "c01", tmp_path / "new", model="bilinear")  # the API: a folder that is not there
    upscale(tmp_path / "c01", tmp_path / "out", model="bilinear", scale=1)  # an existing one: as -o out/
    assert sorted(os.listdir(tmp_path / "out")) == sorted([*frames, "c01"])


def test_resume_judges_a_previews_images_and_a_videos_images(tmp_path, capsys):
    """A finished image pattern of a --preview span (at --fps) and one of a video are finished for
    `--resume` (exit 0, nothing made), and the preview's images are not the whole sequence's."""
    (tmp_path / "seq").mkdir()
    for n in range(1, 5):
        Image.new("RGB", (16, 12), (n * 40, 0, 0)).save(tmp_path / "seq" / f"f_{n}.png")
    make_clip(tmp_path / "v.mp4", size="16x12", frames=5)
    same = ["--model", "bilinear", "--scale", "1", "--tile", "0", "--chunk", "0"]
    preview = [str(tmp_path / "seq"), "-o", str(tmp_path / "p" / "%d.png"), "--fps", "10", "--preview", "0.1+0.2"]
    for argv in (preview, [str(tmp_path / "v.mp4"), "-o", str(tmp_path / "v" / "%03d.png")]):
        code, _, err = run(["upscale", *argv, *same], capsys)
        assert code == 0, err
        code, _, err = run(["upscale", *argv, *same, "--resume"], capsys)
        assert code == 0 and "nothing to do" in err, err
    assert sorted(os.listdir(tmp_path / "p")) == ["2.png", "3.png"]  # frames 1-2 at 10 fps: f_2's and f_3's numbers
    assert sorted(os.listdir(tmp_path / "v")) == [f"{n:03d}.png" for n in range(1, 6)]  # a video's: from 1, as ffmpeg
    code, _, err = run(["upscale", *preview[:-2], *same, "--resume"], capsys)  # the whole sequence: not finished
    assert (
        code == 2 and "holds 2 of the 4 images from 1.png on; missing 1.png, 4.png (a --preview, or cut off?)" in err
    ), err
    (tmp_path / "v" / "002.png").unlink()  # a gap inside a video's images: not the slack of its last frame or two
    argv = [str(tmp_path / "v.mp4"), "-o", str(tmp_path / "v" / "%03d.png"), *same, "--resume"]
    code, _, err = run(["upscale", *argv], capsys)
    assert code == 2 and "holds 4 of the 5 images from 001.png on; missing 002.png" in err, err


def test_info_lists_the_videos_rows_in_their_order(tmp_path, capsys):
    """The video's own length and its start go in their places among its rows (frames, length, rate, start,
    pixels), whatever else is inserted: a reader scans them in that order."""
    clip = tmp_path / "late_picture.mkv"
    ffmpeg("-itsoffset", "0.5", "-f", "lavfi", "-i", "testsrc2=s=32x24:r=25:d=1", "-f", "lavfi", "-i",
           "sine=d=3:r=8000", "-c:v", "libx264", "-c:a", "pcm_s16le", clip)  # fmt: skip
    code, out, _ = run(["info", str(clip)], capsys)
    labels = [line.split()[0] for line in out.splitlines() if line.startswith("    ")]
    assert code == 0 and labels[:5] == ["frames", "length", "frame", "start", "pixels"], out


def test_the_argv_rewrites_are_plain_functions_of_the_words(tmp_path, monkeypatch):
    """cli_args, without running the app: a command's options after `--` move before it with their values
    (a file named like an option stays a name), an option given as a value is said, `~` is the home folder
    also after `--opt=`, and a usage error gets the pointer to --help and the hint its words call for."""
    from dove_cli.cli_args import home_expanded, option_as_value, options_before_dashes, usage_line

    monkeypatch.chdir(tmp_path)
    (tmp_path / "--dry-run").touch()  # a file of that name: a name, not the option
    options = {"-o": True, "--output": True, "--model": True, "--dry-run": False}
    assert options_before_dashes(["upscale", "--", "-a.mp4", "-o", "x y.mp4", "--dry-run", "--model=m"], options) == [
        "upscale", "-o", "x y.mp4", "--model=m", "--", "-a.mp4", "--dry-run"]  # fmt: skip
    assert option_as_value(["upscale", "a.mp4", "--model", "--model"], options) == (
        "--model got '--model', which is an option: its value is missing")  # fmt: skip
    assert option_as_value(["upscale", "a.mp4", "--", "-o", "--model"], options) is None  # (after `--`: names)
    monkeypatch.setenv("HOME", "/home/u")
    assert home_expanded(["~/a.mp4", "--output=~/b.mp4", "-o=~/c", "./~", "a~"]) == [
        "/home/u/a.mp4", "--output=/home/u/b.mp4", "-o=~/c", "./~", "a~"]  # fmt: skip
    missing = "Missing option '--output' / '-o'."
    words = ["upscale", "a.mp4", "--model", "m", "b.mp4"]
    assert usage_line(missing, "dove upscale", None, words, options) == (
        "Missing option '--output' / '-o' (see 'dove upscale --help'); did you mean -o b.mp4?")  # fmt: skip
    scale = "Invalid value for '--scale': Input should be a valid integer, unable to parse string as an integer"
    assert usage_line(scale, None, None, [], options).startswith(
        "Invalid value for '--scale': not a whole number; the model upscales by a whole factor")  # fmt: skip
