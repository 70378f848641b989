"""Other tools' option names (ffmpeg, Real-ESRGAN, Video2X, SeedVR2) typed to `dove upscale`: one line
naming the dove way, exit 2, before click guesses a near name or splits a single-dash word."""

from __future__ import annotations

import pytest
import typer

from dove_cli.cli import app
from dove_cli.cli_args import command_options
from dove_cli.foreign import FOREIGN
from media import make_clip
from test_cli import run


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        (["--fp32"], "--dtype"),  # click: --fps
        (["--fp16"], "--dtype"),
        (["--gpu-id", "1"], "--device cuda:N"),  # click: --pad
        (["-g", "1"], "--device cuda:N"),
        (["--tile_pad", "10"], "--tile-overlap"),  # click: --pad
        (["--color_correction", "wavelet"], "--color-fix"),  # click: --codec-option
        (["-c:v", "libx265"], "--codec"),  # click: No such option: -c
        (["-vcodec", "libx265"], "--codec"),  # click: No such option: -v
        (["-ss", "0.5"], "--preview"),  # click: --scale not a whole number
        (["-t", "2"], "--preview"),
        (["-r", "30"], "keeps the input's timing"),  # click: unexpected extra argument
        (["-b:v=1M"], "a bitrate is --codec-option b=5M"),  # click: No such option: -b (a single dash, with =)
        (["-c:v=libx265"], "--codec"),
        (["-crf=18"], "--crf"),
        (["-r=30"], "keeps the input's timing"),
        (["-i", "x.mp4"], "the first argument"),
        (["--outscale", "3.5"], "--size"),
        (["--face_enhance"], "no face enhancement"),
        (["-n", "RealESRGAN_x4plus"], "--model"),
        (["--model_name=x"], "--model"),
        (["--suffix", "out"], "no output-name suffix"),
        (["--ext", "mkv"], "--container"),
        (["--batch_size", "5"], "--chunk"),
        (["--quality", "18"], "--crf"),
        (["-crf", "18"], "--crf"),
        (["--bitrate", "5M"], "a bitrate is --codec-option b=5M"),
        (["-x265-params", "aq-mode=3"], "--codec-option x265-params="),
        (["--preserve_vram"], "--offload"),
    ],
)
def test_other_tools_options_say_the_dove_way(typed, said, tmp_path, capsys):
    code, _, err = run(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"), *typed], capsys)
    name = typed[0].partition("=")[0]
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert name in err and said in err, err
    assert "Possible options" not in err and not (tmp_path / "o.mp4").exists()


def test_the_table_names_no_option_of_dove_upscale():
    """A row for a name dove accepts would never be read (dove's -v, -o, -s, -m, -q, -r, --fps)."""
    options = {*command_options(["upscale"], typer.main.get_command(app)), "-v", "--verbose"}
    assert not [name for name in FOREIGN if name in options or name.replace("-", "_") in options]


def test_dove_options_values_and_files_are_not_read_as_foreign(tmp_path, capsys, monkeypatch):
    """-r alone is --recursive; a value of dove's own option, or an existing file, is no foreign option."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-ss").write_bytes(b"")
    code, _, err = run(["upscale", "a.mp4", "-o", "o.mp4", "-r", "--codec-option", "-t", "--", "-ss"], capsys)
    assert code == 2 and "no option" not in err and "recursive, not a frame rate" not in err, err
    code, _, err = run(["upscale", "-ss", "-o", "o.mp4"], capsys)  # the file named -ss: click reads it as it did
    assert code == 2 and "no option" not in err and "--scale" in err, err


def test_a_bitrate_is_a_bitrate_mode_not_silently_dropped(tmp_path, capsys):
    """--codec-option b= (Video2X's --bit-rate): x264/x265 keep a CRF and drop a bitrate, so dove sets no CRF
    of its own then (x264's SEI says abr); with --crf too it is refused, nothing written."""
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "o.mp4"
    code, _, err = run(
        ["upscale", str(clip), "-o", str(out), "-m", "bilinear", "-s", "2", "-q", "--codec-option", "b=200k"], capsys
    )
    assert code == 0, err
    sei = out.read_bytes()
    assert b"rc=abr" in sei and b"bitrate=200" in sei and b"rc=crf" not in sei
    code, _, err = run(
        ["upscale", str(clip), "-o", str(tmp_path / "c.mp4"), "--codec-option", "b=200k", "--crf", "18"], capsys
    )
    assert code == 2 and "b=200k and --crf 18" in err and not (tmp_path / "c.mp4").exists(), err


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        (["--codec", "hevc", "--codec-option", "crf=10", "--crf", "18"], "--crf 18 and --codec-option crf=10"),
        (["--codec-option", "preset=veryslow", "--preset", "fast"], "--preset fast and --codec-option preset=veryslow"),
        (
            ["--codec", "vp9", "--codec-option", "cpu-used=4", "--preset", "2"],
            "--preset 2 and --codec-option cpu-used=4",
        ),
    ],
)
def test_a_setting_given_as_a_flag_and_a_codec_option_is_refused(typed, said, tmp_path, capsys):
    """Both from the user: which one wins was silent (the --codec-option); one line, exit 2."""
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    code, _, err = run(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", "bilinear", *typed], capsys)
    assert code == 2 and said in err and "give one" in err and not (tmp_path / "o.mkv").exists(), err


def test_a_codec_option_alone_still_sets_the_encoder(tmp_path, capsys):
    """crf= without --crf overrides dove's default CRF, as before (x264's SEI says crf=30.0)."""
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    out = tmp_path / "o.mp4"
    code, _, err = run(
        ["upscale", str(clip), "-o", str(out), "-m", "bilinear", "-s", "2", "-q", "--codec-option", "crf=30"], capsys
    )
    assert code == 0 and b"crf=30.0" in out.read_bytes(), err


def test_a_fractional_scale_points_at_size(tmp_path, capsys):
    """Real-ESRGAN's -s 3.5 (its --outscale): dove's --scale is the model's whole factor; --size is the way."""
    code, _, err = run(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"), "-s", "3.5"], capsys)
    assert code == 2 and "not a whole number" in err and "--size WxH" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("codec", "preset", "said"),
    [
        ("av1", "slow", "0, the slowest, to 13"),
        ("av1", "20", "0, the slowest, to 13"),
        ("vp9", "slow", "good, best, realtime, or a speed from -8 to 8"),
    ],
)
def test_a_preset_av1_or_vp9_lacks_names_theirs(codec, preset, said, tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    code, _, err = run(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", "bilinear", "--codec", codec,
                     "--preset", preset, "--dry-run"], capsys)  # fmt: skip
    assert code == 2 and f"--preset {preset} is not a" in err and f"{codec} preset (" in err and said in err, err


@pytest.mark.parametrize(("codec", "preset"), [("av1", "12"), ("vp9", "4"), ("vp9", "best")])
def test_the_presets_av1_and_vp9_have_still_run(codec, preset, tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    code, _, err = run(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", "bilinear", "--codec", codec,
                     "--preset", preset, "--dry-run"], capsys)  # fmt: skip
    assert code == 0, err


def test_ffmpegs_native_endian_pixel_format_name_is_taken(tmp_path, capsys):
    """`ffmpeg -pix_fmt yuv420p10` works (native-endian alias): dove writes yuv420p10le for it (read back by PyAV)."""
    import av

    clip = make_clip(tmp_path / "in.mp4", frames=1)
    out = tmp_path / "o.mp4"
    code, _, err = run(
        ["upscale", str(clip), "-o", str(out), "-m", "bilinear", "-s", "2", "-q", "--pix-fmt", "yuv420p10"], capsys
    )
    assert code == 0, err
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p10le"


def test_a_missing_gpu_error_names_the_device_asked_for(monkeypatch):
    import torch

    from dove_cli.errors import OptionError
    from dove_cli.models import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OptionError, match=r"^--device cuda:1 was asked for, but no CUDA GPU is visible$"):
        pick_device("cuda:1")


@pytest.mark.parametrize(
    ("tile", "said"), [("100", "of 96 px, 32 px overlap (--tile 100 rounded down"), ("96", "of 96 px, 32 px overlap\n")]
)
def test_a_tile_rounded_to_the_models_block_is_said_in_the_plan(tile, said, tmp_path, capsys):
    """Real-ESRGAN users size -t for their card: --tile 100 runs 96 px tiles (tiny's block is 32 output px:
    100 // 32 * 32), and the plan says so; a tile of whole blocks is shown as it is."""
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    code, out, _ = run(
        ["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "-m", "tiny", "--tile", tile, "--dry-run"], capsys
    )
    assert code == 0 and said in out and ("rounded down to" in out) == (tile == "100"), out


def test_a_real_runs_plan_line_says_the_tile_rounding_as_the_dry_run(tmp_path, capsys, caplog):
    """`-v`'s plan line of a real run said `tiles of 96 px` with no word of --tile 100 (only --dry-run and
    the manifest did): the same note, from the same place (bilinear at x2: a block of 32 output px)."""
    clip = make_clip(tmp_path / "in.mp4", size="160x120", frames=1)
    args = ["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "-m", "bilinear", "-s", "2", "--tile", "100"]
    code, out, err = run([*args, "--dry-run"], capsys)
    note = " of 96 px, 0 px overlap (--tile 100 rounded down to the model's block)"
    assert code == 0 and note in out, out
    caplog.set_level("INFO", logger="dove_cli")
    code, _, err = run(["-v", *args], capsys)
    plans = [r.getMessage() for r in caplog.records if "plan: " in r.getMessage()]
    assert code == 0 and len(plans) == 1 and "tiles of 96 px (0 px overlap) (--tile 100 rounded down to the model's" \
        " block)," in plans[0], (plans, err)  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        (["--codec-option", "x265-params=aq-mode=3"], "x265-params: libx265's, not libx264's: add --codec hevc"),
        (["--codec", "hevc", "--codec-option", "x264-params=aq-mode=3"], "libx264's, not libx265's: add --codec h264"),
    ],
)
def test_another_encoders_settings_list_names_its_codec(typed, said, tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    code, _, err = run(
        ["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "-m", "bilinear", *typed, "--dry-run"], capsys
    )
    assert code == 2 and said in err, err


def test_several_inputs_say_to_give_their_folder(tmp_path, capsys, monkeypatch):
    """`dove upscale *.mp4 -o out/` (the shell's glob) got click's `Got unexpected extra argument(s) (b.mp4)`,
    and without -o `did you mean -o c.mp4?`: one input is taken, said with what to do instead. Two names
    without -o are still the cp-like `in out` (-o offered, unless the second exists: an input, never offered to
    be overwritten); eval takes two; `--` still ends the options."""
    monkeypatch.chdir(tmp_path)
    glob = ["v/a.mp4", "v/b.mp4", "v/c.mp4"]
    said = ("error: dove upscale takes one input; got 3 (v/a.mp4, v/b.mp4, v/c.mp4): give their folder (dove upscale"
            " v/ -o OUT/) or run it once per file (see 'dove upscale --help')")  # fmt: skip
    for args in (["upscale", *glob, "-o", "out/"], ["upscale", *glob]):
        code, _, err = run(args, capsys)
        assert code == 2 and err.strip() == said, (args, err)
    code, _, err = run(["upscale", "a.mp4", "v/b.mp4", "-m", "bilinear", "-o", "o.mp4"], capsys)
    assert code == 2 and "got 2 (a.mp4, v/b.mp4): give their folder (dove upscale DIR -o OUT/)" in err, err
    code, _, err = run(["upscale", "-o", "out/", "--", "-x.mp4", "v/b.mp4", "-o", "o/"], capsys)  # names after --
    assert code == 2 and "got 2 (-x.mp4, v/b.mp4): give their folder" in err, err
    code, _, err = run(["upscale", "a.mp4", "b.mp4"], capsys)
    assert code == 2 and err.strip().endswith("; did you mean -o b.mp4?"), err
    (tmp_path / "b.mp4").touch()  # a second input: never offered as the output (the next step: --overwrite it)
    code, _, err = run(["upscale", "a.mp4", "b.mp4"], capsys)
    assert code == 2 and err.strip().endswith(
        "; b.mp4 exists: dove upscale takes one input, and -o names a new file or a folder"
    ), err
    code, _, err = run(["eval", *glob, "--metrics", "psnr"], capsys)
    assert code == 2 and "dove eval takes PRED and GT; got 3 (v/a.mp4, v/b.mp4, v/c.mp4): give two folders" in err
    code, _, err = run(["eval", "v/a.mp4", "v/b.mp4", "--metrics", "psnr"], capsys)
    assert code == 2 and "takes" not in err and "v/a.mp4" in err, err  # two: read (no such file)
    code, _, err = run(["eval", "v/a.mp4", "v/b.mp4", "--bogus"], capsys)  # another usage error: click's
    assert code == 2 and "No such option: --bogus" in err, err
    code, _, err = run(["info", *glob], capsys)  # several files are info's own
    assert "takes" not in err, err
