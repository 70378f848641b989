"""Image sequence outputs as a film restorer's conform folder uses them: which names a run writes
(each image's own number, a gap kept), which it replaces (--overwrite: only those), and what it
leaves beside its output. References are the tiny inputs' own pixels (scale 1, bilinear: output =
input) and file bytes read here, never dove's messages alone."""

from __future__ import annotations

import hashlib
import logging
import subprocess
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from dove_cli.errors import InputError, OutputError
from dove_cli.resume import work_folder
from dove_cli.upscaling import upscale
from test_resume import _FailAfter

SAME = dict(model="bilinear", scale=1, color_fix="none", device="cpu", tile=0, chunk=0)  # output = input's pixels


def _frames(folder: Path, numbers: list[int], name: str = "shot_{:07d}.png") -> dict[int, np.ndarray]:
    """Tiny 16x12 PNGs of noise, one per number; their pixels by number."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(numbers))
    made = {n: rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for n in numbers}
    for n, rgb in made.items():
        Image.fromarray(rgb).save(folder / name.format(n))
    return made


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_overwrite_replaces_only_the_frames_a_preview_fix_up_writes(tmp_path, caplog):
    """The trial: a --preview fix-up of 3 frames with --overwrite into a finished 10-frame folder deleted
    the other 7 without a word. Now only the 3 names it writes are replaced; the 7 stay byte for byte,
    said in one warning with their count and numbers; without --overwrite the refusal counts those 3."""
    src, out = tmp_path / "src", tmp_path / "out"
    made = _frames(src, list(range(86400, 86410)))
    assert upscale(src, f"{out}/", fps=10, **SAME).frames == 10
    before = _md5s(out)
    assert sorted(before) == [f"shot_{n:07d}.png" for n in range(86400, 86410)]
    with pytest.raises(OutputError, match=r"3 of the images this run writes already exist in .* \(shot_0086403\.png "
                                          r"to shot_0086405\.png\); use overwrite=True"):  # fmt: skip
        upscale(src, f"{out}/", fps=10, preview="0.3+0.3", **SAME)
    for p in out.iterdir():  # the fix-up's names made stale, to see that they are written again
        if p.name in ("shot_0086403.png", "shot_0086404.png", "shot_0086405.png"):
            p.write_bytes(b"old")
    with caplog.at_level(logging.WARNING):
        assert upscale(src, f"{out}/", fps=10, preview="0.3+0.3", overwrite=True, **SAME).frames == 3
    after = _md5s(out)
    assert sorted(after) == sorted(before)  # nothing removed
    for n in range(86400, 86410):
        assert np.array_equal(_pixels(out / f"shot_{n:07d}.png"), made[n]), n
        if not 86403 <= n <= 86405:
            assert after[f"shot_{n:07d}.png"] == before[f"shot_{n:07d}.png"], n  # untouched
    said = [r.getMessage() for r in caplog.records if "remain" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(
        "7 other images of this pattern that this run did not write remain beside its 3 (numbers 86400-86402, "
        "86406-86409)"
    ), said


def test_a_render_in_parts_into_one_folder_replaces_nothing(tmp_path, caplog):
    """A folder holding only the second half of a shot (86405-86409): the first half's run writes no name
    that is there, so it is not refused (the refusal's --overwrite deleted all 5 and replaced none) and
    the second half stays as it was."""
    src, out = tmp_path / "src", tmp_path / "out"
    made = _frames(src, list(range(86400, 86405)))
    second = _frames(tmp_path / "second", list(range(86405, 86410)))
    out.mkdir()
    for n in second:
        (out / f"shot_{n:07d}.png").write_bytes((tmp_path / "second" / f"shot_{n:07d}.png").read_bytes())
    old = _md5s(out)
    with caplog.at_level(logging.WARNING):
        assert upscale(src, f"{out}/", fps=10, **SAME).frames == 5
    now = _md5s(out)
    assert sorted(now) == [f"shot_{n:07d}.png" for n in range(86400, 86410)]
    assert all(now[name] == md5 for name, md5 in old.items())
    assert all(np.array_equal(_pixels(out / f"shot_{n:07d}.png"), rgb) for n, rgb in made.items())
    assert "5 other images of this pattern that this run did not write remain beside its 5 (numbers 86405-86409)" in (
        caplog.text
    )


def test_a_gap_in_the_numbering_is_kept_and_start_number_says_what_it_renumbers(tmp_path, caplog):
    """A conform: frames 86400, 86401, 86403, 86404 (86402 missing) came out as 86400-86403, every frame
    after the gap one number early. Now each keeps its number, in a folder output and a pattern of
    another format; --start-number numbers them one after another, as ffmpeg's, and says which images
    it renumbers across the gap."""
    src = tmp_path / "src"
    made = _frames(src, [86400, 86401, 86403, 86404])
    upscale(src, f"{tmp_path / 'out'}/", fps=10, **SAME)
    upscale(src, tmp_path / "png" / "f_%04d.png", fps=10, **SAME)
    for n, rgb in made.items():
        assert np.array_equal(_pixels(tmp_path / "out" / f"shot_{n:07d}.png"), rgb), n
        assert np.array_equal(_pixels(tmp_path / "png" / f"f_{n:04d}.png"), rgb), n
    assert len(list((tmp_path / "out").iterdir())) == len(list((tmp_path / "png").iterdir())) == 4
    with caplog.at_level(logging.WARNING):
        upscale(src, tmp_path / "renum" / "f_%04d.png", fps=10, start_number=1, **SAME)
    for i, n in enumerate(made):
        assert np.array_equal(_pixels(tmp_path / "renum" / f"f_{i + 1:04d}.png"), made[n]), n
    assert ("the gap in the input's numbering is not kept (--start-number numbers them one after another): 2 images "
            "after it are renumbered: shot_0086403.png -> f_0003.png, shot_0086404.png -> f_0004.png") in caplog.text  # fmt: skip


def test_an_interrupted_run_with_a_gap_resumes_under_the_kept_numbers(tmp_path):
    """The saved images of an interrupted run are counted by the numbers the run writes (86402 is no
    frame): a resume continues after them and the output is the input, name for name."""
    src, out = tmp_path / "src", tmp_path / "out" / "shot_%07d.png"
    made = _frames(src, [86400, 86401, 86403, 86404, 86405])
    with pytest.raises(RuntimeError):
        upscale(src, out, fps=10, restorer=_FailAfter(3), **{**SAME, "chunk": 1})
    saved = sorted(p.name for p in (work_folder(out) / "images").iterdir())
    assert saved == ["shot_0086400.png", "shot_0086401.png", "shot_0086403.png"]
    r = upscale(src, out, fps=10, resume=True, **{**SAME, "chunk": 1})
    assert r.resumed_from == 3 and not work_folder(out).exists()
    assert sorted(p.name for p in out.parent.iterdir()) == [f"shot_{n:07d}.png" for n in made]
    assert all(np.array_equal(_pixels(out.parent / f"shot_{n:07d}.png"), rgb) for n, rgb in made.items())


def _cut_tiff(path: Path) -> None:
    """An uncompressed 16x12 TIFF cut short in its pixels (its header whole), as a copy or scan stopped part way."""
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(path)  # Pillow writes it uncompressed, header first
    data = path.read_bytes()
    assert len(data) > 16 * 12 * 3
    path.write_bytes(data[: len(data) - 100])


def test_damaged_images_are_all_named_before_any_work(tmp_path):
    """An empty image, a PNG cut short and a TIFF whose strips run past its end were found one at a time as
    the run reached each (hours in, with the real model); `dove info` said nothing. Now the header pass
    names all of them in one line, before a model loads or an output folder is made."""
    from dove_cli.video_io import probe

    src = tmp_path / "src"
    _frames(src, list(range(100, 106)), "f_{:04d}.png")
    (src / "f_0101.png").write_bytes(b"")
    png = (src / "f_0103.png").read_bytes()
    (src / "f_0103.png").write_bytes(png[: len(png) // 2])
    tif = tmp_path / "tif"
    tif.mkdir()
    for n in range(3):
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tif / f"t_{n}.tif")
    _cut_tiff(tif / "t_1.tif")
    size = (tif / "t_1.tif").stat().st_size
    ff = tmp_path / "ff"  # FFmpeg's own TIFF (16-bit, as a scanner's) puts its directory after the pixels
    ff.mkdir()
    for n in range(2):
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=s=16x12", "-frames",
                        "1", "-pix_fmt", "rgb48le", str(ff / f"s_{n}.tif")], check=True)  # fmt: skip
    whole = (ff / "s_1.tif").read_bytes()
    (ff / "s_1.tif").write_bytes(whole[:1000])
    with pytest.raises(
        InputError, match=r"ff: 1 image of 2 is damaged \(s_1\.tif: cut short \(1000 of at least \d+ bytes"
    ):
        probe(ff)
    with pytest.raises(InputError, match=r"src: 2 images of 6 are damaged \(f_0101\.png: empty \(0 bytes\); "
                                                      r"f_0103\.png: cut short \(\d+ bytes, no end chunk\)\); replace them"):  # fmt: skip
        upscale(src, f"{tmp_path / 'out'}/", fps=10, **SAME)
    with pytest.raises(InputError, match=rf"tif: 1 image of 3 is damaged \(t_1\.tif: cut short \({size} of "
                                                      rf"the {size + 100} bytes its header names\)\); replace it"):  # fmt: skip
        probe(tif)
    assert not (tmp_path / "out").exists()


def test_an_image_that_cannot_be_decoded_keeps_nothing_and_says_to_replace_it(tmp_path):
    """A PNG whose header and end are whole but whose pixels do not decode, met as the run reaches it: the
    advice was `--resume`, which stopped at the same image again. Now nothing is kept (once replaced, the
    input is another) and the error says to replace it."""
    from dove_cli.errors import BrokenImage

    src = tmp_path / "src"
    _frames(src, list(range(100, 106)), "f_{:04d}.png")
    data = bytearray((src / "f_0104.png").read_bytes())
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = bytes(b ^ 0x5A for b in data[start : start + 40])
    (src / "f_0104.png").write_bytes(bytes(data))
    out = tmp_path / "out" / "f_%04d.png"
    with pytest.raises(BrokenImage, match=r"f_0104\.png: .*; nothing is kept: replace it .* then run the same command"):
        upscale(src, out, fps=10, **{**SAME, "chunk": 1})
    assert not work_folder(out).exists() and not out.parent.exists()


def test_a_resume_after_an_image_changed_says_which_in_words(tmp_path, caplog):
    """After a frame was replaced (and one added by the scanner), --resume was refused with "input bytes N
    ... M". Now it names them; and a single kept frame is "1 finished frame is kept"."""
    import os

    src, out = tmp_path / "src", tmp_path / "out" / "f_%04d.png"
    _frames(src, list(range(100, 106)), "f_{:04d}.png")
    for p in src.iterdir():
        os.utime(p, ns=(10**18, 10**18))  # (2001): older than any file written below
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError):
        upscale(src, out, fps=10, restorer=_FailAfter(1), **{**SAME, "chunk": 1})
    assert "1 finished frame is kept in" in caplog.text
    (src / "f_0103.png").write_bytes((src / "f_0100.png").read_bytes())
    (src / "f_0106.png").write_bytes((src / "f_0100.png").read_bytes())
    with pytest.raises(OutputError, match=r"cannot resume: the input's images changed \(1 image more; 2 images written "
                                          r"since: f_0103\.png, f_0106\.png\) since the interrupted run"):  # fmt: skip
        upscale(src, out, fps=10, resume=True, **{**SAME, "chunk": 1})


def test_the_default_rate_is_said_only_where_it_matters(tmp_path, caplog):
    """Every image-to-image run warned that images are read at 25 frames/s: images carry no rate. Said
    still for a video output, and for a --preview span, which the rate times."""
    src = tmp_path / "src"
    _frames(src, list(range(100, 104)), "f_{:04d}.png")
    said = "images are read at 25 frames/s"
    with caplog.at_level(logging.WARNING):
        upscale(src, f"{tmp_path / 'a'}/", **SAME)
    assert said not in caplog.text
    with caplog.at_level(logging.WARNING):
        upscale(src, f"{tmp_path / 'b'}/", preview="0+0.08", **SAME)
    assert caplog.text.count(said) == 1


def _framemd5(pattern: Path) -> list[str]:
    """Each frame's md5 (as RGB) in the order ffmpeg's image2 demuxer reads `pattern`: the reference."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(pattern), "-pix_fmt", "rgb24",
                          "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def test_a_pattern_reads_the_names_it_writes_as_ffmpeg_does(tmp_path):
    """A stray 00001.png (and 001.png) beside 0001..0003.png: `%04d` names neither, so ffmpeg reads 3
    frames; dove read 4 (any number of digits), the stray as frame 1, each real one renumbered one on.
    Now image N in is image N out, frame for frame as ffmpeg reads the pattern."""
    src, out = tmp_path / "src", tmp_path / "out"
    made = _frames(src, [1, 2, 3], "{:04d}.png")
    _frames(src, [1], "{:05d}.png")
    _frames(src, [1], "{:03d}.png")
    assert upscale(src / "%04d.png", out / "%04d.png", **SAME).frames == 3
    assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png", "0003.png"]
    assert _framemd5(out / "%04d.png") == _framemd5(src / "%04d.png")
    assert all((_pixels(out / f"{n:04d}.png") == rgb).all() for n, rgb in made.items())
    with pytest.raises(InputError, match="did you mean %04d.png"):  # ffmpeg's %d reads no 0001.png either
        upscale(src / "%d.png", out / "b_%d.png", **SAME)


@pytest.fixture(scope="module")
def forty(tmp_path_factory) -> tuple[Path, Path, dict[int, np.ndarray]]:
    """40 noise images 0000..0039.png and the same 40 frames as a lossless 25 fps video (ffmpeg's)."""
    src = tmp_path_factory.mktemp("forty")
    made = _frames(src / "img", list(range(40)), "{:04d}.png")
    video = src / "v25.mkv"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-framerate", "25", "-i", str(src / "img/%04d.png"),
                    "-c:v", "png", str(video)], check=True)  # fmt: skip
    return src / "img", video, made


@pytest.mark.parametrize(("start", "duration"), [("0.32", "0.3"), ("0", "0.3"), ("0.01", "0.1"), ("0.3", "0.04"),
                                                 ("0.04", "0.04"), ("1.5", "1")])  # fmt: skip
def test_a_preview_span_of_images_is_the_frames_the_plan_counts(forty, tmp_path, start, duration):
    """--preview 0.32+0.3s of 40 images at 25 fps: the plan said 8 frames, the run made 7 (0008-0014:
    the reader floored each end, the plan ceiled them). Now the frames with start <= i/25 < start +
    duration (counted here), for the plan, the images read, their output numbers and a video's frames."""
    img, video, made = forty
    t0, t1 = Fraction(start), Fraction(start) + Fraction(duration)
    want = [i for i in range(40) if t0 <= Fraction(i, 25) < t1]
    preview = f"{start}+{duration}s"
    plan = upscale(img / "%04d.png", tmp_path / "p/%04d.png", preview=preview, dry_run=True, **SAME)
    assert plan.frames == len(want)
    assert upscale(img / "%04d.png", tmp_path / "i/%04d.png", preview=preview, **SAME).frames == len(want)
    assert sorted(p.name for p in (tmp_path / "i").iterdir()) == [f"{i:04d}.png" for i in want]
    assert all((_pixels(tmp_path / f"i/{i:04d}.png") == made[i]).all() for i in want)
    assert upscale(video, tmp_path / "v/%04d.png", preview=preview, **SAME).frames == len(want)
    assert all((_pixels(tmp_path / f"v/{k:04d}.png") == made[i]).all() for k, i in enumerate(want, 1))
