"""Other tools' option names (ffmpeg, Real-ESRGAN, Video2X, SeedVR2) typed to `dove upscale`: one line
naming the dove way, exit 2, before click guesses a near name or splits a single-dash word."""

from __future__ import annotations

import pytest

from dove_cli.cli import _command_options, main
from dove_cli.foreign import FOREIGN
from media import make_clip


def run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0), capsys.readouterr().err


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
        (["--bitrate", "5M"], "no bitrate mode"),
        (["-x265-params", "aq-mode=3"], "--codec-option x265-params="),
        (["--preserve_vram"], "--offload"),
    ],
)
def test_other_tools_options_say_the_dove_way(typed, said, tmp_path, capsys):
    code, err = run(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"), *typed], capsys)
    name = typed[0].partition("=")[0]
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert name in err and said in err, err
    assert "Possible options" not in err and not (tmp_path / "o.mp4").exists()


def test_the_table_names_no_option_of_dove_upscale():
    """A row for a name dove accepts would never be read (dove's -v, -o, -s, -m, -q, -r, --fps)."""
    options = {*_command_options(["upscale"]), "-v", "--verbose"}
    assert not [name for name in FOREIGN if name in options or name.replace("-", "_") in options]


def test_dove_options_values_and_files_are_not_read_as_foreign(tmp_path, capsys, monkeypatch):
    """-r alone is --recursive; a value of dove's own option, or an existing file, is no foreign option."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-ss").write_bytes(b"")
    code, err = run(["upscale", "a.mp4", "-o", "o.mp4", "-r", "--codec-option", "-t", "--", "-ss"], capsys)
    assert code == 2 and "no option" not in err and "recursive, not a frame rate" not in err, err
    code, err = run(["upscale", "-ss", "-o", "o.mp4"], capsys)  # the file named -ss: click reads it as it did
    assert code == 2 and "no option" not in err and "--scale" in err, err


def test_a_bitrate_is_a_bitrate_mode_not_silently_dropped(tmp_path, capsys):
    """--codec-option b= (Video2X's --bit-rate): x264/x265 keep a CRF and drop a bitrate, so dove sets no CRF
    of its own then (x264's SEI says abr); with --crf too it is refused, nothing written."""
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "o.mp4"
    code, err = run(
        ["upscale", str(clip), "-o", str(out), "-m", "bilinear", "-s", "2", "-q", "--codec-option", "b=200k"], capsys
    )
    assert code == 0, err
    sei = out.read_bytes()
    assert b"rc=abr" in sei and b"bitrate=200" in sei and b"rc=crf" not in sei
    code, err = run(
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
    code, err = run(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", "bilinear", *typed], capsys)
    assert code == 2 and said in err and "give one" in err and not (tmp_path / "o.mkv").exists(), err


def test_a_codec_option_alone_still_sets_the_encoder(tmp_path, capsys):
    """crf= without --crf overrides dove's default CRF, as before (x264's SEI says crf=30.0)."""
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    out = tmp_path / "o.mp4"
    code, err = run(
        ["upscale", str(clip), "-o", str(out), "-m", "bilinear", "-s", "2", "-q", "--codec-option", "crf=30"], capsys
    )
    assert code == 0 and b"crf=30.0" in out.read_bytes(), err
