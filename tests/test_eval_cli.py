"""`dove eval` / `evaluate()` end to end: PSNR and SSIM equal an independent computation per video
and mean, on single videos and on benchmark folders matched by name; cutting and cropping are
reported; JSON / CSV / plot outputs; every bad input is one `error:` line and exit 2."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from dove_cli import video_io  # noqa: E402
from dove_cli.cli import main  # noqa: E402
from dove_cli.errors import InputError, OptionError  # noqa: E402
from dove_cli.metrics.evaluate import evaluate  # noqa: E402
from media import ffmpeg, make_clip  # noqa: E402
from test_eval_metrics import _ssim_reference  # noqa: E402
from test_eval_weights import write_video  # noqa: E402


def noisy_clip(n: int, h: int, w: int, seed: int, noise: int = 12) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float64)
    gt = []
    for t in range(n):
        img = np.kron(np.roll(base, t, axis=1), np.ones((4, 4, 1)))[:h, :w]
        gt.append(np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    pred = [np.clip(f.astype(int) + rng.integers(-noise, noise + 1, f.shape), 0, 255).astype(np.uint8) for f in gt]
    return pred, gt


def np_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)
    return float(10 * np.log10(1 / (mse + 1e-8)))


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


def error_line(args: list[str], capsys, code: int = 2) -> str:
    """The one line a refused command says on stderr (exit `code`, nothing on stdout)."""
    got, out, err = run(args, capsys)
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and not out, (args, err)
    return lines[0]


def test_single_videos_cut_and_crop_as_the_authors_and_say_so(tmp_path):
    pred, gt = noisy_clip(6, 48, 64, seed=1)
    pred_big = [np.pad(f, ((0, 2), (0, 3), (0, 0)), mode="edge") for f in pred]  # 2 px taller, 3 wider
    p = write_video(tmp_path / "clip.mkv", pred_big)
    g = write_video(tmp_path / "gt.mkv", gt[:5])  # one frame fewer
    report = evaluate(p, g, "psnr,ssim", device="cpu")
    v = report.videos["clip"]
    assert v.frames == 5 and v.size == (64, 48)
    want_psnr = [np_psnr(pred[i], gt[i]) for i in range(5)]
    assert v.values["psnr"] == pytest.approx(want_psnr, abs=0.01)
    assert report.mean["psnr"] == pytest.approx(np.mean(want_psnr), abs=0.01)
    want_ssim = [
        _ssim_reference(pred[i].transpose(2, 0, 1) / 255.0, gt[i].transpose(2, 0, 1) / 255.0) for i in range(5)
    ]
    assert v.values["ssim"] == pytest.approx(want_ssim, abs=1e-5)  # luma rounding of exact halves: float32 vs float64
    notes = " ".join(v.notes)
    assert "cut to 5 frames (PRED has more)" in notes and "cropped to 64x48" in notes


def test_benchmark_folders_matched_by_name(tmp_path, capsys):
    """GT as frame folders, predictions as videos (the benchmark layout); one GT has no prediction:
    refused, or with --allow-missing scored and the mean labelled with what it covers."""
    want: dict[str, list[float]] = {}
    (tmp_path / "PRED").mkdir()
    for k, name in enumerate(("calendar", "city", "walk")):
        pred, gt = noisy_clip(4, 32, 40, seed=10 + k, noise=5 + 10 * k)
        write_frames(tmp_path / "GT" / name, gt)
        write_video(tmp_path / "PRED" / f"{name}.mkv", pred)
        want[name] = [np_psnr(a, b) for a, b in zip(pred, gt, strict=True)]
    write_frames(tmp_path / "GT" / "extra", noisy_clip(2, 32, 40, seed=99)[1])
    args = ["eval", str(tmp_path / "PRED"), str(tmp_path / "GT"), "--metrics", "psnr,ssim", "-q",
            "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png")]  # fmt: skip
    code, out, err = run(args, capsys)  # a mean over part of a benchmark is not its mean: refused
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out, err
    assert f"{tmp_path / 'GT'}: no prediction in {tmp_path / 'PRED'} for 1 of its 4 videos (extra)" in err
    assert "--allow-missing" in err and not (tmp_path / "r.json").exists()
    code, out, err = run([*args, "--allow-missing"], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["metrics"] == ["psnr", "ssim"] and sorted(data["videos"]) == ["calendar", "city", "walk"]
    for name, values in want.items():
        assert data["videos"][name]["psnr"] == pytest.approx(np.mean(values), abs=0.01)
        assert data["videos"][name]["frames"]["psnr"] == pytest.approx(values, abs=0.01)
    means = [np.mean(v) for v in want.values()]
    assert data["mean"]["psnr"] == pytest.approx(np.mean(means), abs=0.01)
    assert data["std"]["psnr"] == pytest.approx(np.std(means, ddof=0), abs=0.01)  # the population std, as said
    assert abs(np.std(means, ddof=0) - np.std(means, ddof=1)) > 0.1  # (which the sample std is not)
    assert data["mean_over"] == {"videos": 3, "of": 4, "missing": ["extra"]}
    assert any("extra" in n for n in data["notes"])
    rows = list(csv.reader((tmp_path / "r.csv").open()))
    assert rows[0] == ["video", "frames", "psnr", "ssim", "notes"] and [r[0] for r in rows[1:]] == [
        "calendar",
        "city",
        "walk",
        "mean (3 of 4 videos)",
    ]
    assert float(rows[-1][2]) == pytest.approx(data["mean"]["psnr"], rel=1e-5)
    assert "extra" in rows[-1][-1]  # the run's notes go with the mean they qualify
    assert Image.open(tmp_path / "r.png").size[0] > 100
    assert "PSNR" in out and "SSIM" in out and f"{data['mean']['psnr']:.2f}" in out  # the table
    # the table says what it scored (in a log of many runs, which table is whose) and what its mean covers
    assert f"dove eval: {tmp_path / 'PRED'} against {tmp_path / 'GT'}, 3 of 4 videos, cpu\n" in out
    # in words and in ASCII: a screen reader said "upwards arrow", and an ASCII stdout crashed on it
    assert re.search(r"^PSNR \(dB\), higher is better \|.*\nSSIM, higher is better +\|", out, re.M) and out.isascii(), (
        out
    )


def test_no_gt_runs_only_no_reference_metrics(tmp_path):
    from dove_cli.metrics.selection import parse_metrics

    assert parse_metrics(None, has_gt=False) == ["clipiqa", "ewarp"]
    assert parse_metrics(None, has_gt=True) == ["psnr", "ssim", "lpips", "dists", "clipiqa", "ewarp"]
    with pytest.raises(OptionError, match="psnr, ssim need a GT"):
        parse_metrics("psnr,ssim,clipiqa", has_gt=False)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    pred, gt = noisy_clip(2, 32, 40, seed=3)
    p = write_video(tmp_path / "a.mkv", pred)
    g = write_video(tmp_path / "b.mkv", gt)
    small = write_video(tmp_path / "small.mkv", [f[:8, :10] for f in gt])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (tmp_path / "P").mkdir()
    write_video(tmp_path / "P" / "x.mkv", pred)
    write_frames(tmp_path / "G" / "y", gt)
    write_frames(tmp_path / "mixed", gt)  # frames, and a stray video beside them: which to score?
    write_video(tmp_path / "mixed" / "stray.mkv", gt)
    (dangling := tmp_path / "dangling.mkv").symlink_to(tmp_path / "gone.mkv")
    (loop := tmp_path / "loop.mkv").symlink_to(loop)
    cases = [
        (
            ["eval", str(p), str(tmp_path / "mixed"), "--metrics", "psnr"],
            "mixed: holds 2 images and videos or frame folders (stray.mkv) (GT): move the images",
        ),
        (["eval", str(p), "--metrics", "psnr"], f"{p}: psnr needs a GT"),
        (["eval", str(p), str(g), "--metrics", "psnr,bogus"], "unknown metric 'bogus'"),
        (["eval", str(broken), str(g), "--metrics", "psnr"], str(broken)),
        (["eval", str(p), str(small), "--metrics", "psnr"], "more than 16 px apart"),
        (["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "--allow-missing"], "no GT named 'x'"),
        (
            ["eval", str(tmp_path / "P"), str(g), "--metrics", "psnr"],
            "PRED is a folder of 1 inputs but GT is one input",
        ),
        (["eval", str(tmp_path / "nope.mp4")], "nope.mp4 (PRED): no such file or folder"),
        (["eval", str(dangling), str(g)], f"dangling.mkv (PRED): a symbolic link to {tmp_path / 'gone.mkv'}, which"),
        (["eval", str(p), str(loop)], "loop.mkv (GT): a symbolic link in a loop of links"),
        (
            ["upscale", str(p), "-o", str(tmp_path / "o.mkv"), "--eval", str(loop)],
            "loop.mkv (--eval GT): a symbolic link in a loop",
        ),
        (["eval", str(p), "--metrics", "fastervqa"], "FasterVQA"),
    ]
    for args, expected in cases:
        line = error_line([*args, "-q"], capsys)
        assert line.startswith("error:") and expected in line, (args, line)
    code, _, err = run(["eval", str(p), str(small), "--metrics", "psnr", "--max-crop", "40", "-q"], capsys)
    assert code == 0, err


def test_a_broken_link_in_a_folder_is_said_where_its_prediction_is_missed(tmp_path, capsys, caplog):
    """A PRED folder's broken link was passed over in silence: "no prediction in P for 1 of its 2 videos
    (b)" said nothing of the link named b.mkv that the user sees there."""
    pred, gt = noisy_clip(1, 16, 16, seed=6)
    for side, frames in (("P", pred), ("G", gt)):
        (tmp_path / side).mkdir()
        write_video(tmp_path / side / "a.mkv", frames)
    write_video(tmp_path / "G" / "b.mkv", gt)
    (tmp_path / "P" / "b.mkv").symlink_to(tmp_path / "gone.mkv")
    code, _, err = run(
        ["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "--allow-missing"], capsys
    )
    assert code == 0 and f"{tmp_path / 'P'}: broken links left out (b.mkv)" in caplog.messages, err


def test_dover_without_the_package_says_how(tmp_path):
    pred, _ = noisy_clip(1, 16, 16, seed=4)
    p = write_video(tmp_path / "a.mkv", pred)
    with pytest.raises(OptionError, match=r"not on PyPI.*VQAssessment/DOVER"):
        evaluate(p, None, "dover")
    with pytest.raises(InputError, match="holds no videos"):
        (tmp_path / "empty").mkdir()
        evaluate(tmp_path / "empty", None, "ewarp")


class _Mean:
    """A stand-in no-reference metric: each frame's mean."""

    name = "clipiqa"

    def start_video(self) -> None:
        pass

    def add(self, x, y):
        return float(x.mean())


def test_frames_are_streamed_one_at_a_time(tmp_path):
    """Each metric sees one frame per call, in order, and the reader is never asked for a list."""
    pred, gt = noisy_clip(5, 16, 24, seed=5)
    p = write_video(tmp_path / "a.mkv", pred)
    seen = []

    class Probe:
        name = "clipiqa"

        def start_video(self) -> None:
            seen.append("start")

        def add(self, x, y):
            seen.append(tuple(x.shape))
            return float(x.mean())

    report = evaluate(p, None, "clipiqa", frame_metrics=[Probe()])
    assert seen == ["start"] + [(3, 16, 24)] * 5
    assert report.videos["a"].values["clipiqa"] == pytest.approx([f.mean() / 255 for f in pred], rel=1e-6)
    with av.open(str(p)) as c:
        assert c.streams.video[0].frames in (0, 5)


def test_upscale_eval_scores_the_output_against_gt(tmp_path, capsys):
    """`dove upscale IN -o OUT --eval GT`: the scores dove eval gives, right after the run, with
    --eval-crop-border's edges left out of both."""
    from media import ffmpeg_frames

    gt_frames, _ = noisy_clip(6, 96, 128, seed=3)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames])
    gt = write_frames(tmp_path / "gt", gt_frames)
    out, scores = tmp_path / "out.mkv", tmp_path / "scores.json"
    code, _, err = run(["upscale", str(lq), "-o", str(out), "--model", "bilinear", "--scale", "2", "--codec", "ffv1",
                        "--fps", "16", "-q", "--eval", str(gt), "--eval-metrics", "psnr", "--eval-json", str(scores),
                        "--eval-crop-border", "5"], capsys)  # fmt: skip
    assert code == 0, err
    pred = ffmpeg_frames(out, 128, 96)
    expected = np.mean([np_psnr(p[5:-5, 5:-5], g[5:-5, 5:-5]) for p, g in zip(pred, gt_frames, strict=True)])
    got = json.loads(scores.read_text())
    assert abs(got["mean"]["psnr"] - expected) < 0.01 and 15 < expected < 40


def test_upscale_eval_mistakes_stop_before_the_run(tmp_path, capsys):
    from conftest import demo_clip

    out = tmp_path / "out.mp4"
    for extra, message in (
        (["--eval", str(tmp_path / "missing")], "missing (--eval GT): no such file or folder"),
        (
            ["--eval", str(demo_clip("007.mp4")), "--eval-metrics", "psnr,bogus"],
            "--eval-metrics: unknown metric 'bogus'",
        ),
        (["--eval-json", str(tmp_path / "s.json")], "go with --eval GT"),
        (["--eval-crop-border", "2"], "--eval-crop-border, --eval-skip-unavailable and --eval-strict go with --eval GT"),
        (["--eval-strict"], "go with --eval GT"),
        (["--eval-skip-unavailable"], "go with --eval GT"),
        (["--eval", str(demo_clip("007.mp4")), "--scale", "1", "--eval-crop-border", "90"],
         f"--eval-crop-border 90 leaves nothing of {out}'s 316x178 frames"),
        (["--eval", str(demo_clip("007.mp4")), "--eval-json", str(tmp_path)],
         f"--eval-json {tmp_path}: is a folder; give a file name like {tmp_path / 'scores.json'}"),
        (["--eval", str(demo_clip("007.mp4")), "--eval-json", str(out)],
         f"--eval-json {out}: is the output (-o); give the scores their own name, like {out}.json"),
        (["--eval", str(demo_clip("007.mp4")), "--eval-json", str(tmp_path / ".." / tmp_path.name / "out.mp4")],
         "/out.mp4: is the output (-o)"),
    ):  # fmt: skip
        code, _, err = run(["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear", *extra],
                           capsys)  # fmt: skip
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
        assert not out.exists()


def test_a_device_this_machine_lacks_is_one_line(tmp_path, capsys):
    """torch takes `cuda`, `mps` or `meta` as names and fails at the first frame sent there, with a traceback."""
    import torch

    pred, gt = noisy_clip(1, 16, 16, seed=6)
    p, g = write_video(tmp_path / "a.mkv", pred), write_video(tmp_path / "b.mkv", gt)
    cases = {
        "foo": "unknown --device 'foo'",
        "meta": "--device meta: dove runs on cpu, cuda or mps",
        "cuda": "--device cuda was asked for, but no CUDA GPU is visible",
        "mps": "--device mps was asked for, but no Apple GPU (MPS) is available",
    }
    for device, expected in cases.items():
        if device == "cuda" and torch.cuda.is_available() or device == "mps" and torch.backends.mps.is_available():
            continue
        line = error_line(["eval", str(p), str(g), "--metrics", "psnr", "--device", device, "-q"], capsys)
        assert line.startswith(f"error: {expected}"), (device, line)


def test_result_files_are_checked_before_scoring_and_their_folders_made(tmp_path, capsys, caplog):
    """A mistake in --json / --csv / --plot is said before any frame is scored (no table printed);
    a missing folder is made, as `dove upscale` makes its output's (one: not a path of missing folders)."""
    pred, gt = noisy_clip(2, 16, 24, seed=7)
    p, g = write_video(tmp_path / "a.mkv", pred), write_video(tmp_path / "b.mkv", gt)
    (tmp_path / "file").write_text("x")
    for option, path, expected in (
        ("--json", tmp_path / "file" / "r.json", "is a file"),
        ("--csv", tmp_path / "file" / "r.csv", "is a file"),
        ("--plot", tmp_path / "file" / "r.png", "is a file"),
        ("--json", g, f"error: --json {g}: is the input; choose another output name"),
        ("--csv", tmp_path, f"error: --csv {tmp_path}: is a folder; give a file name like {tmp_path / 'scores.csv'}"),
        (
            "--json",
            tmp_path,
            f"error: --json {tmp_path}: is a folder; give a file name like {tmp_path / 'scores.json'}",
        ),
        ("--plot", tmp_path, f"error: --plot {tmp_path}: is a folder; give a file name like {tmp_path / 'scores.png'}"),
        ("--plot", tmp_path / "r.txt", "one of the extensions matplotlib writes"),
    ):  # (a folder was offered a video's name, the input's own: o15/in.mp4)
        code, out, err = run(["eval", str(p), str(g), "--metrics", "psnr", option, str(path), "-q"], capsys)
        assert code == 2 and err.startswith("error:") and expected in err and len(err.strip().splitlines()) == 1, err
        assert not out, (option, path)  # refused before scoring: no table
    new = tmp_path / "new" / "deeper"
    argv = ["eval", str(p), str(g), "--metrics", "psnr", "--json", str(new / "r.json"), "--csv", str(new / "r.csv"),
            "--plot", str(new / "r.png")]  # fmt: skip
    code, out, err = run(argv, capsys)  # a path of missing folders (a typo?): refused, as `dove upscale -o` does
    assert code == 2 and f"folder {new.parent} does not exist; create it first" in err and not new.parent.exists()
    new.parent.mkdir()
    code, out, err = run(argv, capsys)
    assert code == 0 and f"created folder {new}" in caplog.text, err  # said, as for an upscale's output folder
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])
    assert json.loads((new / "r.json").read_text())["mean"]["psnr"] == pytest.approx(want, abs=0.01)
    assert (new / "r.csv").is_file() and Image.open(new / "r.png").size[0] > 100
    before = (new / "r.csv").read_bytes()  # an earlier run's scores are results too: kept without --overwrite
    code, out, err = run(["eval", str(p), str(g), "--metrics", "ssim", "--csv", str(new / "r.csv"), "-q"], capsys)
    assert code == 2 and f"--csv {new / 'r.csv'}: already exists (use --overwrite" in err and not out
    assert (new / "r.csv").read_bytes() == before
    code, out, err = run(["eval", str(p), str(g), "--metrics", "ssim", "--csv", str(new / "r.csv"), "-q",
                          "--overwrite"], capsys)  # fmt: skip
    assert code == 0 and "ssim" in (new / "r.csv").read_text()


def test_psnr_y_and_crop_border_as_basicsr_computes_them(tmp_path, capsys):
    """PSNR-Y as VSR papers report it (BasicSR: the Y of BT.601 YCbCr, 16-235) and --crop-border (BasicSR's
    crop_border: px left out at each edge of both, before every metric), against numpy here; a negative
    count is refused as it is parsed, and a border that leaves nothing before any scoring."""
    pred, gt = noisy_clip(2, 48, 64, seed=9)
    p, g = write_frames(tmp_path / "P", pred), write_frames(tmp_path / "G", gt)
    code, out, err = run(["eval", str(p), str(g), "--metrics", "psnr,psnr_y,ssim", "--crop-border", "4", "--json",
                          "-", "-q"], capsys)  # fmt: skip
    assert code == 0, err
    got = json.loads(out)

    def y(rgb: np.ndarray) -> np.ndarray:
        # BasicSR's rgb2ycbcr(img, y_only=True) on RGB in [0, 1] (basicsr/utils/color_util.py; bgr2ycbcr takes
        # the weights reversed): 16 + 65.481 R + 128.553 G + 24.966 B, on 0..255; calculate_psnr_pt scores Y / 255
        f = rgb.astype(np.float64) / 255
        return 16 + 65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]

    inner = [(a[4:-4, 4:-4], b[4:-4, 4:-4]) for a, b in zip(pred, gt, strict=True)]  # 56x40
    want_y = [10 * np.log10(1 / (np.mean(((y(a) - y(b)) / 255) ** 2) + 1e-8)) for a, b in inner]
    frames = got["videos"]["P"]["frames"]
    assert frames["psnr_y"] == pytest.approx(want_y, abs=1e-6) and got["crop_border"] == 4
    assert frames["psnr"] == pytest.approx([np_psnr(a, b) for a, b in inner], abs=1e-6)  # (float32 frames)
    chw = lambda a: a.transpose(2, 0, 1) / 255  # noqa: E731
    assert frames["ssim"] == pytest.approx([_ssim_reference(chw(a), chw(b)) for a, b in inner], abs=2e-6)
    assert min(want_y) > max(frames["psnr"]) + 1  # Y of noise on R, G and B: less of it than on RGB
    for option in ("--max-crop", "--crop-border"):
        assert error_line(["eval", str(p), str(g), "--metrics", "psnr", option, "-1"], capsys).startswith(
            f"error: Invalid value for '{option}':"
        )
    assert error_line(["eval", str(p), str(g), "--metrics", "psnr", "--crop-border", "24", "-q"], capsys) == (
        f"error: {p}: --crop-border 24 leaves nothing of its 64x48 frames"
    )
    with pytest.raises(OptionError, match="--max-crop -1: a number of pixels, 0 or more"):
        evaluate(p, g, "psnr", max_crop=-1)


def test_jpeg_and_webp_frame_folders_score_as_opencv_reads_them(tmp_path):
    """The trial: a q90 JPEG folder scored 0.72 dB below pyiqa's and cv2's reading of it (a WebP 1.07 dB):
    FFmpeg's plain chroma upsampling. Now equal to PSNR/SSIM of what cv2.imread gives."""
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is the reference decoder")
    pred, gt = noisy_clip(2, 48, 64, seed=11)
    g = write_frames(tmp_path / "G" / "clip", gt)
    for ext in ("jpg", "webp"):
        folder = tmp_path / ext / "clip"
        folder.mkdir(parents=True)
        for i, f in enumerate(pred):
            Image.fromarray(f).save(folder / f"{i:04d}.{ext}", quality=90)
        read = [cv2.imread(str(folder / f"{i:04d}.{ext}"))[..., ::-1] for i in range(2)]
        v = evaluate(folder, g, "psnr,ssim").videos["clip"]
        assert v.values["psnr"] == pytest.approx([np_psnr(a, b) for a, b in zip(read, gt, strict=True)], abs=1e-6)
        chw = lambda a: a.transpose(2, 0, 1) / 255  # noqa: E731
        want = [_ssim_reference(chw(a), chw(b)) for a, b in zip(read, gt, strict=True)]
        assert v.values["ssim"] == pytest.approx(want, abs=1e-5), ext  # (the float32 luma: README)


def test_the_json_says_which_matrix_each_side_was_read_with(tmp_path):
    """The JSON held --untagged-matrix's value (auto) only: a mixed SD/HD benchmark's reader could not
    tell which videos were read as BT.601 and which as BT.709. Now per video, per side; null for RGB."""
    from PIL import Image

    clip = make_clip(tmp_path / "clip.mp4", frames=2)  # untagged 4:2:0 SD
    rgb = write_video(tmp_path / "rgb.mkv", [np.zeros((48, 64, 3), np.uint8)] * 2)  # ffv1 bgr0
    jpegs, gray = tmp_path / "jpg", tmp_path / "gray"
    jpegs.mkdir(), gray.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(jpegs / f"{i:04d}.jpg")
        Image.fromarray(np.zeros((48, 64), np.uint8)).save(gray / f"{i:04d}.png")
    for pred, gt, matrix, want in ((clip, jpegs, "auto", ("bt601", "bt601")), (clip, rgb, "bt709", ("bt709", None)),
                                   (gray, jpegs, "bt709", (None, "bt601"))):  # fmt: skip
        v = evaluate(pred, gt, "psnr", untagged_matrix=matrix).to_dict()["videos"][pred.stem]
        assert v["matrix"] == {"pred": want[0], "gt": want[1]}, (pred, gt)


def test_a_name_that_is_not_utf8_is_written_to_the_csv_as_its_escape(tmp_path, capsys):
    """A Latin-1 file name (an old Windows or SMB copy) is a surrogate in Python: the CSV writes it as
    the terminal's lines do (`\\xe9`, as Python writes the bytes; it wrote Python's `\\udce9`, which CSV
    cannot read back), the file stays UTF-8, and nothing half-written is left. `--csv -` writes the same
    bytes (it wrote LF where the file had CRLF; a tab became spaces)."""
    pred, gt = noisy_clip(2, 16, 24, seed=8)
    name = os.fsdecode(b"\xe9t\xe9\tb")
    p, g = write_video(tmp_path / f"{name}.mkv", pred), write_video(tmp_path / "gt.mkv", gt)
    r_json, r_csv = tmp_path / os.fsdecode(b"e\xe9.json"), tmp_path / os.fsdecode(b"c\xe9.csv")
    code, _, err = run(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--json", str(r_json), "--csv",
                        str(r_csv)], capsys)  # fmt: skip
    assert code == 0 and not err, err
    rows = list(csv.DictReader(r_csv.open(encoding="utf-8")))  # strict UTF-8, as pandas and Excel read it
    assert [r["video"] for r in rows] == [repr(b"\xe9t\xe9\tb")[2:-1], "mean"] and int(rows[0]["frames"]) == 2
    assert list(json.loads(r_json.read_text())["videos"]) == [name]
    assert sorted(os.listdir(tmp_path)) == sorted(q.name for q in (p, g, r_json, r_csv))  # no temporaries
    code, out, _ = run(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--csv", "-"], capsys)
    assert code == 0 and out.encode("utf-8") == r_csv.read_bytes() and r_csv.read_bytes().count(b"\n") == 3
    assert b"\r" not in r_csv.read_bytes()
    plot = tmp_path / "p.png"  # its legend names the video: matplotlib raised a TypeError for the surrogate
    code, _, err = run(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--plot", str(plot)], capsys)
    assert code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", err


def test_eval_json_holds_a_name_as_its_bytes_read_as_utf8_under_latin1(tmp_path, monkeypatch):
    """Under a Latin-1 locale (its file system encoding, set here as such a locale sets it) `--json`
    stored a UTF-8 name as `cafÃ©` and a Latin-1 one as `café`: names of no file for a UTF-8 reader."""
    pred, gt = noisy_clip(2, 16, 24, seed=8)
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "iso8859-1")
    p = write_video(tmp_path / "é.mkv".encode().decode("latin-1"), pred)  # as Latin-1 lists `é.mkv`
    g = write_video(tmp_path / "g\xe9.mkv", gt)  # and the byte name b"g\xe9.mkv"
    doc = json.loads(evaluate(p, g, "psnr").json_text())
    assert (doc["videos"]["é"]["pred"], doc["videos"]["é"]["gt"]) == (str(tmp_path / "é.mkv"),
                                                                     str(tmp_path / "g\udce9.mkv"))  # fmt: skip


def test_a_full_disk_leaves_no_half_result_file_and_is_exit_75(tmp_path):
    """On a full file system (a real tmpfs, in a mount namespace of its own) --json, --csv and --plot
    are exit 75 with one line, and leave nothing (an older file replaced with --overwrite is kept
    whole): the same command writes them once there is room.
    A manifest there is written the same way (whole or not at all), and is exit 75 too (it was 2): the
    video it describes is done, and the same command with --resume writes the manifest then."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (root) to mount a tiny file system")
    pred, gt = noisy_clip(3, 16, 24, seed=9)
    p, g = write_video(tmp_path / "a.mkv", pred), write_video(tmp_path / "b.mkv", gt)
    full = tmp_path / "full"
    full.mkdir()
    dove = [sys.executable, "-m", "dove_cli.cli"]
    runs = [[*dove, "eval", str(p), str(g), "--metrics", "psnr", "-q", "--overwrite", option, str(full / name)]
            for option, name in (("--json", "new/r.json"), ("--csv", "r.csv"), ("--plot", "r.png"))]  # fmt: skip
    runs.append([*dove, "upscale", str(p), "-o", str(tmp_path / "up.mkv"), "--model", "bilinear", "-q",
                 "--manifest", str(full / "run.json")])  # fmt: skip
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import json, os, subprocess, sys\n"
        f"full, runs = {str(full)!r}, {runs!r}\n"
        "with open(os.path.join(full, 'r.csv'), 'w') as f: f.write('old scores')\n"
        "try:\n"
        "    with open(os.path.join(full, 'fill'), 'wb') as f:\n"
        "        while True: f.write(bytes(4096)); f.flush()\n"
        "except OSError: pass\n"
        "said = []\n"
        "for args in runs:\n"
        "    r = subprocess.run(args, capture_output=True, text=True)\n"
        "    said.append([r.returncode, r.stderr, sorted(os.listdir(full))])\n"
        "kept = open(os.path.join(full, 'r.csv')).read()\n"
        "os.remove(os.path.join(full, 'fill'))\n"
        "r = subprocess.run(runs[0][:-2] + ['--json', runs[0][-1], '--csv', runs[1][-1], '--plot', runs[2][-1]],\n"
        "                   capture_output=True, text=True)\n"
        "m = subprocess.run(runs[3] + ['--resume'], capture_output=True, text=True)\n"
        "json.dump({'said': said, 'kept': kept, 'again': [r.returncode, r.stderr], 'left': sorted(os.listdir(full)),\n"
        "           'scores': json.load(open(runs[0][-1]))['mean'], 'manifest': [m.returncode, m.stderr,\n"
        "           json.load(open(runs[3][-1]))['result']['finished_before']]}, sys.stdout)\n"
    )
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           f"mount -t tmpfs -o size=64k tmpfs {full} && exec {sys.executable} {driver}"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for (code, err, left), name in zip(got["said"][:3], ("new/r.json", "r.csv", "r.png"), strict=True):
        lines = err.strip().splitlines()
        assert code == 75 and lines == [f"error: {full / name}: disk full while writing"], err
        assert left == ["fill", "r.csv"]  # no half file, no temporary, no folder made for it
    assert got["kept"] == "old scores"  # the file --overwrite would have replaced, whole
    code, err, left = got["said"][3]
    assert code == 75 and left == ["fill", "r.csv"], err
    assert err.strip().splitlines()[-1] == (f"error: {full / 'run.json'}: cannot write the manifest (No space left "
                                            "on device); the video is complete; make room, then run the same "
                                            "command with --resume to write it")  # fmt: skip
    assert got["again"][0] == 0 and got["left"] == ["new", "r.csv", "r.png", "run.json"], got["again"]
    assert got["manifest"] == [0, "", True]  # the same command with --resume: the manifest, nothing redone
    assert got["scores"]["psnr"] == pytest.approx(np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)]),
                                                  abs=0.01)  # fmt: skip


def test_json_and_csv_carry_the_same_notes_and_the_mean_row_holds_only_means(tmp_path, capsys):
    """A cut or cropped video says so in both files; the top-level notes point at it; the CSV's
    mean row has no frame total posing as a mean."""
    (tmp_path / "P").mkdir()
    want = {}
    for k, name in enumerate(("cut", "whole")):
        pred, gt = noisy_clip(4, 24, 32, seed=20 + k)
        write_video(tmp_path / "P" / f"{name}.mkv", pred)
        write_frames(tmp_path / "G" / name, gt[:3] if name == "cut" else gt)
        n = 3 if name == "cut" else 4
        want[name] = (n, np.mean([np_psnr(a, b) for a, b in zip(pred[:n], gt[:n], strict=True)]))
    r_json, r_csv = tmp_path / "r.json", tmp_path / "r.csv"
    code, _, err = run(["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "-q",
                        "--json", str(r_json), "--csv", str(r_csv)], capsys)  # fmt: skip
    assert code == 0, err
    data = json.loads(r_json.read_text())
    rows = {r["video"]: r for r in csv.DictReader(r_csv.open())}
    assert list(rows) == ["cut", "whole", "mean"]
    for name, (n, psnr) in want.items():
        assert int(rows[name]["frames"]) == n == data["videos"][name]["num_frames"]
        assert float(rows[name]["psnr"]) == pytest.approx(psnr, abs=0.01)
        assert rows[name]["notes"] == "; ".join(data["videos"][name].get("notes", []))
    assert "cut to 3 frames (PRED has more)" in rows["cut"]["notes"] and rows["whole"]["notes"] == ""
    assert any("cut" in n and "whole" not in n for n in data["notes"])  # the top level is not clean when a video is not
    assert rows["mean"]["frames"] == "" and rows["mean"]["notes"] == "; ".join(data["notes"])
    assert float(rows["mean"]["psnr"]) == pytest.approx(np.mean([v for _, v in want.values()]), abs=0.01)


def test_upscale_eval_refuses_a_gt_of_another_size_or_name_before_the_run(tmp_path, capsys):
    """The outputs' sizes (input x --scale) and names are known before the upscale: a wrong GT (the
    LQ itself, most often) is one line and exit 2, nothing written, and no hint that does not apply."""
    gt_frames, _ = noisy_clip(3, 64, 96, seed=8)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames])
    out = tmp_path / "out.mkv"
    args = ["upscale", str(lq), "-o", str(out), "--model", "bilinear", "--scale", "2", "--fps", "16", "-q"]
    code, _, err = run([*args, "--eval", str(lq), "--eval-metrics", "psnr"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists(), err
    assert f"{out}: 96x64, but its GT {lq} is 48x32: more than 16 px apart" in err
    assert "psnr,ssim" not in err and "raise --max-crop" not in err and "dove eval OUTPUT GT --max-crop" in err
    code, _, err = run([*args, "--eval", str(lq), "--eval-metrics", "psnr", "--scale", "1"], capsys)
    assert code == 0, err  # the same GT at the output's size is fine

    (tmp_path / "LQ").mkdir()
    for name in ("a", "b"):
        write_video(tmp_path / "LQ" / f"{name}.mkv", [f[::2, ::2] for f in gt_frames])
    write_frames(tmp_path / "GT" / "a", gt_frames)
    out_dir = tmp_path / "OUT"
    code, _, err = run(["upscale", str(tmp_path / "LQ"), "-o", str(out_dir), "--model", "bilinear", "--scale", "2",
                        "-q", "--eval", str(tmp_path / "GT"), "--eval-json", str(out_dir / "b.mkv")], capsys)  # fmt: skip
    assert code == 2 and not out_dir.exists(), err  # the scores would have replaced b's video
    assert f"--eval-json {out_dir / 'b.mkv'}: is {tmp_path / 'LQ' / 'b.mkv'}'s output;" in err, err
    code, _, err = run(["upscale", str(tmp_path / "LQ"), "-o", str(out_dir), "--model", "bilinear", "--scale", "2",
                        "-q", "--eval", str(tmp_path / "GT"), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 2 and "no GT named 'b'" in err and not out_dir.exists(), err
    for name in ("b", "c"):
        write_frames(tmp_path / "GT" / name, gt_frames)
    code, _, err = run(["upscale", str(tmp_path / "LQ"), "-o", str(out_dir), "--model", "bilinear", "--scale", "2",
                        "-q", "--eval", str(tmp_path / "GT"), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out_dir.exists(), err
    assert f"{tmp_path / 'GT'}: no output of this upscale for 1 of its 3 videos (c)" in err and "--allow-missing" in err
    shutil.rmtree(tmp_path / "GT" / "c")
    (tmp_path / "GT" / "b" / "0001.png").unlink()  # a gap: every later frame would be paired with the wrong one
    code, _, err = run(["upscale", str(tmp_path / "LQ"), "-o", str(out_dir), "--model", "bilinear", "--scale", "2",
                        "-q", "--eval", str(tmp_path / "GT"), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out_dir.exists(), err
    assert f"{tmp_path / 'GT' / 'b'}: frame number 1 is missing (0000.png to 0002.png) (GT)" in err
    shutil.copy(tmp_path / "GT" / "b" / "0000.png", tmp_path / "GT" / "b" / "0001.png")
    (tmp_path / "LQ" / "b.mkv").write_bytes(b"not a video")  # its GT is there: the upscale says what is wrong
    code, _, err = run(["upscale", str(tmp_path / "LQ"), "-o", str(out_dir), "--model", "bilinear", "--scale", "2",
                        "-q", "--eval", str(tmp_path / "GT"), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 4 and "b.mkv: not a video FFmpeg can read" in err and "no output of this upscale" not in err, err


def test_upscale_eval_strict_refuses_what_dove_eval_strict_refuses(tmp_path, capsys):
    """`dove upscale --eval` had no --strict: --eval-strict is it. A GT of another size (4 px off, which
    is cropped otherwise) is refused before the run; a frame count that differs, when scored (exit 3,
    the output kept). Each line names --eval-strict, the flag this command has."""
    gt_frames, _ = noisy_clip(4, 64, 96, seed=10)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames[:3]])
    gt = write_frames(tmp_path / "gt", [f[:60] for f in gt_frames])  # 96x60: the output is 96x64
    out = tmp_path / "out.mkv"
    args = ["upscale", str(lq), "-o", str(out), "--model", "bilinear", "--scale", "2", "--fps", "16", "-q",
            "--eval-metrics", "psnr", "--eval-strict"]  # fmt: skip
    strict = "(--eval-strict: only pairs of one size and frame count are scored, none cut)"
    code, _, err = run([*args, "--eval", str(gt)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists(), err
    assert f"{out}: 96x64, but its GT {gt} is 96x60 {strict}" in err, err
    gt4 = write_frames(tmp_path / "gt4", gt_frames)  # 4 frames for the output's 3
    code, _, err = run([*args, "--eval", str(gt4)], capsys)
    assert code == 3 and out.is_file() and "was written fine, but scoring it failed" in err and strict in err, err


def test_upscale_eval_failing_only_after_the_run_is_exit_3_without_the_weights_hint(tmp_path, capsys):
    """A GT frame that cannot be decoded is found while scoring: the output is kept and said to be fine."""
    gt_frames, _ = noisy_clip(4, 32, 48, seed=9)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames])
    gt = write_frames(tmp_path / "gt", gt_frames)
    png = (gt / "0002.png").read_bytes()  # whole (its header and end chunk there), its pixels' data damaged:
    at = png.index(b"IDAT") + 8  # found only by decoding, not by the check before the run
    (gt / "0002.png").write_bytes(png[:at] + bytes(b ^ 0xFF for b in png[at : at + 40]) + png[at + 40 :])
    out = tmp_path / "out.mkv"
    code, _, err = run(["upscale", str(lq), "-o", str(out), "--model", "bilinear", "--scale", "2", "--fps", "16",
                        "-q", "--eval", str(gt), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 3 and out.is_file() and len(err.strip().splitlines()) == 1, err
    assert "was written fine, but scoring it failed" in err and "0002.png" in err and "psnr,ssim" not in err


def test_a_damaged_gt_gives_advice_dove_eval_can_follow(tmp_path, capsys, clip_long_mkv):
    from conftest import demo_clip

    """The reader's advice, --ignore-decode-errors, is an option `dove eval` does not have."""
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip_long_mkv.read_bytes()[: clip_long_mkv.stat().st_size * 2 // 3])
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(clip_long_mkv), str(cut), "--metrics", "psnr"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cut.mkv: file ends early" in err and "ffmpeg -i FILE -fps_mode cfr" in err, err
    assert "--ignore-decode-errors" not in err and len(err.strip().splitlines()) == 1
    damaged = bytearray(demo_clip("001.mp4").read_bytes())  # a decode error in the middle, not an early end
    damaged[len(damaged) // 2 : len(damaged) // 2 + 3000] = bytes(3000)
    (tmp_path / "dmg.mp4").write_bytes(damaged)
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path / "dmg.mp4"), str(demo_clip("001.mp4")), "--metrics", "psnr"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "dmg.mp4: decode error at frame" in err and "--ignore-decode-errors" not in err
    advice = re.search(r"\((ffmpeg -i FILE [^)]*)\)", err).group(1).split()  # followed: every frame keeps its place
    ffmpeg(*[str(tmp_path / "dmg.mp4") if a == "FILE" else str(tmp_path / a) if a.endswith(".mkv") else a
             for a in advice[1:]])  # fmt: skip
    with av.open(str(tmp_path / "copy.mkv")) as copy, av.open(str(demo_clip("001.mp4"))) as gt:
        assert sum(1 for _ in copy.decode(video=0)) == sum(1 for _ in gt.decode(video=0))


def test_a_gap_in_a_frame_folders_numbering_is_refused_on_either_side(tmp_path, capsys, caplog):
    """Frames are paired by position: GT 0000-0001, 0003-0005 against a whole PRED scored every frame
    from 0003 on against the wrong one (the trial: 25.51 dB became 24.60, exit 0). Either side, one line."""
    pred, gt = noisy_clip(6, 24, 32, seed=30)
    whole = write_frames(tmp_path / "whole", pred)
    gap = write_frames(tmp_path / "gap", gt)
    (gap / "0002.png").unlink()
    for a, b, role in ((whole, gap, "GT"), (gap, whole, "PRED")):
        code, out, err = run(["eval", str(a), str(b), "--metrics", "psnr", "-q"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and not out, err
        assert lines[0].startswith(f"error: {gap}: frame number 2 is missing (0000.png to 0005.png) ({role}): frames"
                                   " are paired by position")  # fmt: skip
    (gap / "0004.png").unlink()
    with pytest.raises(InputError, match=r"frame numbers 2, 4 are missing"):
        evaluate(whole, gap, "psnr")
    caplog.clear()  # without a GT nothing is paired: said, and scored in order

    report = evaluate(gap, None, "clipiqa", frame_metrics=[_Mean()])
    assert report.videos["gap"].frames == 4 and "frame numbers 2, 4 are missing" in caplog.text


def test_eval_says_alpha_once_as_ignored_and_no_upscale_advice(tmp_path, capsys, caplog):
    """RGBA on either side (images, or a video): one line that alpha is ignored for scoring, naming the input;
    no "the output is opaque" and no `--fps` (eval writes nothing and has no --fps). The RGB values
    are scored as stored, as a numpy PSNR of them says."""
    pred, gt = noisy_clip(3, 24, 32, seed=31)
    rgba = tmp_path / "rgba"
    rgba.mkdir()
    for i, f in enumerate(pred):  # the first image opaque, the later ones half see-through
        alpha = np.full(f.shape[:2] + (1,), 255 if i == 0 else 128, np.uint8)
        Image.fromarray(np.concatenate([f, alpha], axis=2), "RGBA").save(rgba / f"{i:04d}.png")
    rgb = write_frames(tmp_path / "rgb", gt)
    video = tmp_path / "rgba.mkv"  # a video with alpha too: FFV1 BGRA
    with av.open(str(video), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "bgra"
        for f in pred:
            rgba_frame = np.concatenate([f, np.full(f.shape[:2] + (1,), 128, np.uint8)], axis=2)
            for packet in s.encode(av.VideoFrame.from_ndarray(rgba_frame, format="rgba")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])
    for a, b in ((rgba, rgb), (rgb, rgba), (video, rgb)):
        named = video if a == video else rgba
        caplog.clear()
        code, _, err = run(["eval", str(a), str(b), "--metrics", "psnr", "-q", "--json", str(tmp_path / "r.json"),
                            "--overwrite"], capsys)  # fmt: skip
        assert code == 0, err
        assert json.loads((tmp_path / "r.json").read_text())["mean"]["psnr"] == pytest.approx(want, abs=1e-6)
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert said == [f"{named}: the alpha channel (transparency) is ignored for scoring: the RGB values are"
                        " compared as stored"], said  # fmt: skip


def test_frame_rates_that_differ_are_said_with_the_pairing(tmp_path, capsys, caplog):
    """A 32 frames/s prediction of a 16 frames/s GT is paired frame for frame, as said in a warning
    and the CSV note; equal rates, or an image folder (no rate of its own), say nothing."""
    pred, gt = noisy_clip(4, 24, 32, seed=32)
    (tmp_path / "P").mkdir(), (tmp_path / "G").mkdir()
    fast = write_video(tmp_path / "P" / "clip.mkv", pred, fps=32)
    slow = write_video(tmp_path / "G" / "clip.mkv", gt, fps=16)
    same = write_video(tmp_path / "same.mkv", gt, fps=32)
    frames = write_frames(tmp_path / "frames", gt)
    code, _, err = run(["eval", str(fast), str(slow), "--metrics", "psnr", "-q", "--csv", str(tmp_path / "r.csv")],
                       capsys)  # fmt: skip
    assert code == 0, err
    note = "frame rates differ (PRED 32, GT 16 frames/s): frames are paired by position, not by time"
    assert f"{fast}: {note}" in caplog.text
    rows = {r["video"]: r for r in csv.DictReader((tmp_path / "r.csv").open())}
    assert rows["clip"]["notes"] == note
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])  # frame i with frame i
    assert float(rows["clip"]["psnr"]) == pytest.approx(want, abs=1e-4)
    for other in (same, frames):
        caplog.clear()
        report = evaluate(fast, other, "psnr")
        assert report.videos["clip"].notes == [] and "frame rates" not in caplog.text


def drop_frames(src: Path, dst: Path, first: int, last: int) -> Path:
    """`src` without its frames `first` to `last`, the others at their own times: a hole in the middle."""
    codec = ["-c:v", "ffv1"] if dst.suffix == ".mkv" else ["-c:v", "libx264", "-qp", "0"]
    ffmpeg("-i", src, "-vf", f"select='not(between(n,{first},{last}))'", "-fps_mode", "passthrough", *codec, dst)
    return dst


def test_frames_lost_in_the_middle_of_either_side_are_refused(tmp_path, capsys):
    """The trial: a GT that lost 24 of its 75 frames in the middle was paired by position, every frame
    after the hole with the wrong one (80 dB, then 9-17 dB, mean 42.16, exit 0). Now one line naming
    the side whose time jumps ahead, the frame and both times, for a .mp4 too (frames lost lower its
    average rate: its timestamps' step says the rates are one), and from `dove upscale --eval`; the
    advice, followed, gives a copy whose frames after the hole meet their own again."""
    whole = make_clip(tmp_path / "whole.mkv", rate="25", frames=30, codec="ffv1")
    holed = drop_frames(whole, tmp_path / "holed.mkv", 10, 17)
    holed_mp4 = drop_frames(whole, tmp_path / "holed.mp4", 10, 17)
    for pred, gt, lost, role, other in ((whole, holed, holed, "GT", "PRED"), (holed, whole, holed, "PRED", "GT"),
                                        (whole, holed_mp4, holed_mp4, "GT", "PRED")):  # fmt: skip
        assert error_line(["eval", str(pred), str(gt), "--metrics", "psnr", "-q"], capsys) == (
            f"error: {lost}: frames lost between frame 9 at 0.360 s and frame 10 at 0.720 s ({role}), where the"
            f" {other}'s frame 10 is at 0.400 s (each from its first frame); frames are paired by position, so every"
            " later frame would be scored against the wrong one; score a copy with each lost frame repeated (ffmpeg"
            " -i FILE -fps_mode cfr -c:v ffv1 copy.mkv)"
        )
    out_file = tmp_path / "up.mkv"
    code, _, err = run(["upscale", str(whole), "-o", str(out_file), "--model", "bilinear", "--scale", "1", "-q",
                        "--eval", str(holed), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 3 and out_file.is_file() and len(err.strip().splitlines()) == 1, err
    assert f"was written fine, but scoring it failed: {holed}: frames lost between frame 9 at 0.360 s" in err
    assert "scores it later" not in err  # `dove eval OUT GT` would fail the same way: the copy advice is the fix
    advice = re.search(r"\((ffmpeg -i FILE [^)]*)\)", err).group(1).split()
    for damaged in (holed, holed_mp4):
        copy = tmp_path / damaged.name.replace(".", "_") / "copy.mkv"
        copy.parent.mkdir()
        ffmpeg(*[str(damaged) if a == "FILE" else str(copy) if a == "copy.mkv" else a for a in advice[1:]])
        psnr = evaluate(whole, copy, "psnr").videos["whole"].values["psnr"]
        assert len(psnr) == 30 and psnr[:10] + psnr[18:] == [pytest.approx(80.0)] * 22, psnr
        assert min(psnr[10:18]) < 60  # a lost frame has a neighbour in its place


def test_a_video_that_lost_its_first_frame_is_refused(tmp_path, capsys):
    """The trial: a copy without its first frame (its others at their own times) was paired by position,
    every frame against its neighbour (47.95 dB for 80), with only 'frame counts differ'. Now refused
    as two such frame folders are, either side; equal counts from other starts are scored as before, and
    one start with other counts is cut, with a note (its count in words: it said '1 frames')."""
    whole = make_clip(tmp_path / "whole.mkv", rate="30", frames=5, codec="ffv1")
    late = drop_frames(whole, tmp_path / "late.mkv", 0, 0)  # 4 frames from 0.033 s (ms: just under a frame)
    for pred, gt, ends, times in ((late, whole, "GT", ("0.033", "0.000")), (whole, late, "PRED", ("0.000", "0.033"))):
        assert error_line(["eval", str(pred), str(gt), "--metrics", "psnr", "-q"], capsys) == (
            f"error: {pred}: its first frame is at {times[0]} s (PRED), and {gt}'s at {times[1]} s (GT), and the frame"
            f" counts differ ({ends} has more than 4): a first frame missing? frames are paired by position, so every"
            " frame would be scored against its neighbour; restore the missing frames, or leave out the other"
            " side's extra ones so both start at one time"
        )
    shifted = tmp_path / "shifted.mkv"  # all 5 frames, from 0.033 s: the same frames
    ffmpeg("-i", whole, "-vf", "setpts=PTS+1/30/TB", "-fps_mode", "passthrough", "-c:v", "ffv1", shifted)
    v = evaluate(shifted, whole, "psnr").videos["shifted"]
    assert v.values["psnr"] == [pytest.approx(80.0)] * 5 and v.notes == []
    v = evaluate(whole, drop_frames(whole, tmp_path / "short.mkv", 1, 4), "psnr").videos["whole"]  # all but the first
    assert v.values["psnr"] == [pytest.approx(80.0)]
    assert v.notes == ["frame counts differ: cut to 1 frame (PRED has more)"]


def frames_of(video: Path, folder: Path) -> Path:
    """A frame folder (0000.png, ...) of every frame of `video`: the benchmark's GT layout."""
    with av.open(str(video)) as c:
        return write_frames(folder, [f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_a_video_that_lost_frames_is_refused_against_a_frame_folder(tmp_path, capsys, clip_vfr):
    """The trial: a 25 frames/s prediction without frames 8-11 against the GT frame folder (the
    README's benchmark layout) scored 62.63 dB with exit 0 (only 'frame counts differ'), as a
    folder has no times to compare with. Now the video's own steps are checked against its own rate:
    one line naming it, the frame, both times and the copy advice, either side, .mkv and .mp4. A
    variable rate is not refused: one whose steps vary from the start, or one whose step changes
    and stays (a screen recording that slowed down), which a hole would not, or one whose steps were
    uneven before a long one (a hold)."""
    whole = make_clip(tmp_path / "whole.mkv", rate="25", frames=30, codec="ffv1")
    folder = frames_of(whole, tmp_path / "gt")
    holed = drop_frames(whole, tmp_path / "holed.mkv", 10, 17)
    holed_mp4 = drop_frames(whole, tmp_path / "holed.mp4", 10, 17)
    for pred, gt, lost, role, other in ((holed, folder, holed, "PRED", "GT"), (folder, holed, holed, "GT", "PRED"),
                                        (holed_mp4, folder, holed_mp4, "PRED", "GT")):  # fmt: skip
        assert error_line(["eval", str(pred), str(gt), "--metrics", "psnr", "-q"], capsys) == (
            f"error: {lost}: frames lost between frame 9 at 0.360 s and frame 10 at 0.720 s ({role}), 8 frames"
            " missing at its own 25 frames/s, every other step being one frame; frames are paired by"
            f" position with the {other}'s frame folder, so every later frame would be scored against the wrong one;"
            " score a copy with each lost frame repeated (ffmpeg -i FILE -fps_mode cfr -c:v ffv1 copy.mkv)"
        )
    assert evaluate(whole, folder, "psnr").videos["whole"].values["psnr"] == [pytest.approx(80.0)] * 30
    slowed = tmp_path / "slowed.mkv"  # 1/30 s steps, then 2/30 s from frame 6 on: a variable rate, no hole
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-frames:v", "14", "-vf",
           "setpts='if(lt(N,6),N,2*N-6)/30/TB'", "-fps_mode", "passthrough", "-c:v", "ffv1", slowed)  # fmt: skip
    jitter = tmp_path / "jitter.mkv"  # uneven steps from the start, then one of 4 frames: a variable rate's hold
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-frames:v", "14", "-vf",
           "settb=1/3000,setpts='if(eq(N,2),2.3,if(lt(N,8),N,N+3))/30/TB'", "-fps_mode", "passthrough",
           "-enc_time_base", "1/3000", "-c:v", "ffv1", jitter)  # fmt: skip
    for vfr in (slowed, jitter, clip_vfr):
        frames = frames_of(vfr, tmp_path / f"{vfr.stem}_frames")
        report = evaluate(vfr, frames, "psnr")
        assert report.videos[vfr.stem].values["psnr"] == [pytest.approx(80.0, abs=0.5)] * report.videos[vfr.stem].frames
        assert report.videos[vfr.stem].frames in (12, 14)


def test_eval_takes_an_image_pattern_and_upscale_eval_scores_a_pattern_output(tmp_path, capsys):
    """The trial: `dove upscale IN -o 'ev/%06d.png' --eval GT` always failed (exit 3, 'ev/%06d.png: no
    such file or folder (PRED)'), and so did the `dove eval ev/%06d.png GT` it suggested: `dove eval`
    now takes a pattern (PRED or GT), as `dove upscale` does; one that matches nothing is one line."""
    pred, gt = noisy_clip(4, 24, 32, seed=40)
    folder = write_frames(tmp_path / "gt", gt)
    preds = write_frames(tmp_path / "pred", pred)
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])
    for a, b in ((preds / "%04d.png", folder), (preds, folder / "%04d.png")):
        report = evaluate(a, b, "psnr")
        assert report.mean["psnr"] == pytest.approx(want, abs=1e-4) and len(report.videos) == 1
    code, _, err = run(["eval", str(tmp_path / "none" / "%04d.png"), str(folder), "--metrics", "psnr"], capsys)
    assert (
        code == 2
        and err.strip() == f"error: {tmp_path / 'none' / '%04d.png'}: folder {tmp_path / 'none'} does not exist"
    )
    out = tmp_path / "ev" / "%06d.png"
    code, table, err = run(["upscale", str(folder), "-o", str(out), "--model", "bilinear", "--scale", "1", "-q",
                            "--eval", str(folder), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 0 and "80.00" in table, err
    code, table, err = run(["eval", str(out), str(folder), "--metrics", "psnr", "-q"], capsys)
    assert code == 0 and "80.00" in table, err


def test_names_that_do_not_fit_a_frame_folders_numbering(tmp_path, capsys, caplog):
    """The trials: a stray 0003_edit.png among 0000-0005.png, or other_0001.png and slate.png among
    frame_0001-0005.png, were taken as frames in name order (every later pair shifted in eval, a slate
    merged into the clip in upscale), silently. Paired eval refuses naming them (either side, and
    `upscale --eval` before the run); unpaired eval and upscale warn naming them (as gaps). A gap
    among them is still found. PRED numbered from 1 against GT from 0 with one frame fewer is refused
    (a first frame missing?); numbered apart (86400...) it is said with the cut; other starts with
    equal counts say nothing."""
    pred, gt = noisy_clip(6, 24, 32, seed=41)
    clean = write_frames(tmp_path / "clean", gt)
    mixed = write_frames(tmp_path / "mixed", pred)
    shutil.copy(mixed / "0003.png", mixed / "0003_edit.png")
    for a, b, role in ((mixed, clean, "PRED"), (clean, mixed, "GT")):
        code, out, err = run(["eval", str(a), str(b), "--metrics", "psnr", "-q"], capsys)
        assert (
            code == 2
            and not out
            and err.strip()
            == (
                f"error: {mixed}: 1 image does not fit the numbering of the other 6 (0000.png to 0005.png): 0003_edit.png"
                f" ({role}): frames are paired by position, so they would be scored as frames and every frame after them"
                " against the wrong one; move them out of the folder"
            )
        ), err
    out_file = tmp_path / "up.mkv"
    code, _, err = run(["upscale", str(clean), "-o", str(out_file), "--model", "bilinear", "--scale", "1", "-q",
                        "--fps", "25", "--eval", str(mixed)], capsys)  # fmt: skip
    assert code == 2 and "0003_edit.png" in err and not out_file.exists(), err
    shots = tmp_path / "shots"
    shots.mkdir()
    for i in range(1, 6):
        shutil.copy(clean / f"{i:04d}.png", shots / f"frame_{i:04d}.png")
    shutil.copy(clean / "0000.png", shots / "other_0001.png")
    shutil.copy(clean / "0000.png", shots / "slate.png")
    (shots / "frame_0003.png").unlink()
    caplog.clear()
    code, _, err = run(["upscale", str(shots), "-o", str(tmp_path / "up" / "%04d.png"), "--model", "bilinear",
                        "--scale", "1", "-q", "--fps", "25"], capsys)  # fmt: skip
    assert code == 0 and len(list((tmp_path / "up").iterdir())) == 6, err
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        f"{shots}: 2 images do not fit the numbering of the other 4 (frame_0001.png to frame_0005.png):"
        " other_0001.png, slate.png; they are read as frames, in name order among the others" in " ".join(said)
    )
    assert any("1 frame number is missing from the sequence: 3 (frame_0001.png to frame_0005.png)" in s for s in said)
    caplog.clear()
    report = evaluate(shots / "frame_%04d.png", None, "clipiqa", frame_metrics=[_Mean()])  # a pattern: only its own
    assert report.videos["shots"].frames == 4 and "do not fit" not in caplog.text

    from_one = write_frames(tmp_path / "from1", [])
    for i in range(1, 6):  # GT 0000-0005, PRED 0001-0005: its first frame missing
        shutil.copy(clean / f"{i:04d}.png", from_one / f"{i:04d}.png")
    code, out, err = run(["eval", str(from_one), str(clean), "--metrics", "psnr", "-q"], capsys)
    assert (
        code == 2
        and not out
        and err.strip()
        == (
            f"error: {from_one}: numbered 1 to 5 (5 frames) (PRED), and {clean} 0 to 5 (6 frames) (GT): the same"
            " numbers from other starts and counts, a first frame missing? frames are paired by position, so every"
            " frame would be scored against its neighbour; restore the missing frames, or leave out the other side's"
            " extra ones so both start at one number"
        )
    ), err
    apart = write_frames(tmp_path / "apart", [])  # numbered apart on purpose (86400...): scored, with the note
    for i in range(1, 6):
        shutil.copy(clean / f"{i:04d}.png", apart / f"{86399 + i:06d}.png")
    report = evaluate(apart, clean, "psnr")
    assert report.videos["apart"].notes == ["frame counts differ: cut to 5 frames (GT has more) (PRED is numbered"
                                            " from 86400, GT from 0: a first frame missing? frames are paired by"
                                            " position)"]  # fmt: skip
    for i in range(5, 0, -1):  # PRED 0002-0006: another start, the same count: the same frames
        (from_one / f"{i:04d}.png").rename(from_one / f"{i + 1:04d}.png")
    shutil.copy(clean / "0000.png", from_one / "0001.png")
    report = evaluate(from_one, clean, "psnr")
    assert report.videos["from1"].notes == [] and report.videos["from1"].frames == 6


def test_videos_of_one_rate_are_checked_only_within_half_a_frame(tmp_path, clip_2997, clip_2997_mkv):
    """A clean pair whose times differ by rounding (30000/1001 frames/s in a .mp4, and in a .mkv,
    which counts milliseconds) scores; so does a copy retimed to 24000/1001 frames/s of a 24 frames/s
    video, frame for frame, though half a frame apart from frame 500 on (a rate, not frames lost:
    its .mkv still says 24 frames/s)."""
    report = evaluate(clip_2997_mkv, clip_2997, "psnr")
    assert report.videos["ntsc"].frames == 12 and report.videos["ntsc"].notes == []
    film = make_clip(tmp_path / "film.mkv", size="16x16", rate="24", frames=520, codec="ffv1")
    ffmpeg("-itsscale", "1.001", "-i", film, "-c", "copy", tmp_path / "retimed.mkv")
    report = evaluate(film, tmp_path / "retimed.mkv", "psnr")
    assert report.videos["film"].values["psnr"] == [pytest.approx(80.0)] * 520


def test_a_variable_rate_pair_whose_times_match_scores_without_complaint(tmp_path, capsys, caplog, clip_vfr):
    """dove's output of a variable-rate input against that input: their frames are at the same times
    (not at i / fps), so the times are checked and nothing is said. An .mp4 copy's average rate is
    not the input's (its last frame is cut short by the B-frame delay: 44.9 vs 37.5 frames/s), but
    its frames' times are, so no "frame rates differ" either (the last trial's false note)."""
    from dove_cli.metrics.timing import time_tolerance
    from dove_cli.video_io import probe

    for out in (tmp_path / "vfr_x1.mkv", tmp_path / "vfr_x1.mp4"):
        code, _, err = run(["upscale", str(clip_vfr), "-o", str(out), "--model", "bilinear", "--scale", "1", "-q"],
                           capsys)  # fmt: skip
        assert code == 0, err
        if out.suffix == ".mkv":
            assert time_tolerance(probe(out), probe(clip_vfr)) is not None  # one average rate: checked
        else:
            assert probe(out).fps != probe(clip_vfr).fps
        caplog.clear()
        report = evaluate(out, clip_vfr, "psnr")
        assert report.videos["vfr_x1"].frames == 12 and report.videos["vfr_x1"].notes == [], out
        assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text


def test_the_authors_untagged_files_are_read_as_their_eval_reads_them_with_untagged_matrix_bt601(tmp_path, capsys):
    """Their script writes untagged yuv444p CRF 0 .mp4s (imageio through ffmpeg: converted as BT.601, no
    tag), and their eval_metrics.py reads them with OpenCV, whose swscale takes untagged video as BT.601
    whatever its size, as `ffmpeg -pix_fmt rgb24` does: `--untagged-matrix bt601` scores such a file as
    theirs; by default an HD one is read as BT.709 (as players guess), another picture."""
    from media import ffmpeg_frames

    _, gt_frames = noisy_clip(2, 64, 1280, seed=5)  # 1280 wide: HD
    gt = write_frames(tmp_path / "gt", gt_frames)
    theirs = tmp_path / "clip.mp4"
    ffmpeg("-framerate", "16", "-i", gt / "%04d.png", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-crf", "0", theirs)
    assert video_io.probe(theirs).colorspace is None  # untagged, as their files are
    as_opencv = np.mean([np_psnr(p, g) for p, g in zip(ffmpeg_frames(theirs, 1280, 64), gt_frames, strict=True)])
    scores = {}
    for untagged in ("bt601", "auto"):
        js = tmp_path / f"{untagged}.json"
        code, _, err = run(["eval", str(theirs), str(gt), "--metrics", "psnr", "--json", str(js), "-q",
                            *(["--untagged-matrix", untagged] if untagged != "auto" else [])], capsys)  # fmt: skip
        assert code == 0, err
        got = json.loads(js.read_text())
        assert got["untagged_matrix"] == untagged
        scores[untagged] = got["mean"]["psnr"]
    assert scores["bt601"] == pytest.approx(as_opencv, abs=0.01) and as_opencv > 45
    assert scores["auto"] < as_opencv - 5  # the default (dove eval's own) reads it as BT.709


def test_json_or_csv_dash_is_stdout_alone(tmp_path, capsys, monkeypatch):
    """`dove eval ... --json -` wrote a file named "-" and printed only the table, while `--manifest -`
    means stdout. Now `-` is stdout for --json or --csv: their text alone (parsed here as JSON and CSV,
    against a PSNR computed here), the table on stderr; both on stdout, or a plot there, is refused. A file
    named "-" that the old runs left is no output here (not "already exists"), and stays as it was."""
    monkeypatch.chdir(tmp_path)
    Path("-").write_text("an old run's")
    pred, gt = noisy_clip(2, 16, 24, seed=5)
    p, g = write_video(tmp_path / "p.mkv", pred), write_video(tmp_path / "g.mkv", gt)
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])
    base = ["eval", str(p), str(g), "--metrics", "psnr", "-q"]
    code, out, err = run([*base, "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["mean"]["psnr"] == pytest.approx(want, abs=0.01), (out, err)
    assert f"dove eval: {p} against {g}, 1 video, cpu" in err and "PSNR" in err
    assert Path("-").read_text() == "an old run's"
    code, out, err = run([*base, "--csv", "-", "--json", str(tmp_path / "s.json")], capsys)
    rows = list(csv.reader(out.splitlines()))
    assert code == 0 and rows[0] == ["video", "frames", "psnr", "notes"] and rows[-1][0] == "mean", (out, err)
    assert float(rows[-1][2]) == pytest.approx(want, abs=0.01) and (tmp_path / "s.json").is_file()
    for extra, message in ((["--json", "-", "--csv", "-"], "--json and --csv both name stdout"),
                           (["--plot", "-"], "--plot -: a plot is a picture")):  # fmt: skip
        code, out, err = run([*base, *extra], capsys)
        assert code == 2 and message in err and len(err.splitlines()) == 1 and not out, err


def test_upscale_eval_json_dash_is_stdout_alone(tmp_path, capsys, monkeypatch):
    """`dove upscale --eval GT --eval-json -`, as `dove eval --json -`: the scores' JSON alone on stdout
    (against a PSNR computed here), the table on stderr; a file named "-" is no output here."""
    monkeypatch.chdir(tmp_path)
    Path("-").write_text("an old run's")
    gt_frames, _ = noisy_clip(2, 24, 32, seed=4)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames])
    gt = write_frames(tmp_path / "gt", gt_frames)
    out = tmp_path / "out.mkv"
    code, stdout, err = run(["upscale", str(lq), "-o", str(out), "--model", "bilinear", "--scale", "2", "--codec",
                             "ffv1", "-q", "--eval", str(gt), "--eval-metrics", "psnr", "--eval-json", "-"],
                            capsys)  # fmt: skip
    assert code == 0, err
    from media import ffmpeg_frames

    expected = np.mean([np_psnr(p, g) for p, g in zip(ffmpeg_frames(out, 32, 24), gt_frames, strict=True)])
    assert json.loads(stdout)["mean"]["psnr"] == pytest.approx(expected, abs=0.01) and "PSNR" in err, (stdout, err)
    assert Path("-").read_text() == "an old run's"


def tiny_pair(root: Path, name: str, n: int = 2, gt_n: int | None = None, size: tuple[int, int] = (16, 16)) -> None:
    """root/P/name and root/G/name: n (gt_n) 16x16 frames, numbered from 0000."""
    pred, gt = noisy_clip(max(n, gt_n or n), 16, 16, seed=len(name))
    write_frames(root / "P" / name, pred[:n])
    write_frames(root / "G" / name, [np.resize(f, (*size[::-1], 3)) for f in gt[: gt_n or n]])


def test_result_files_to_a_fifo_dev_null_or_a_pipe_are_written_as_they_are(tmp_path, capsys):
    """--json/--csv to a FIFO, /dev/null or `>(...)` was refused ("already exists"), and with --overwrite a FIFO
    was replaced by a file (its reader waited for ever): written as --manifest writes them (video_io.is_special)."""
    tiny_pair(tmp_path, "a")
    args = ["eval", str(tmp_path / "P" / "a"), str(tmp_path / "G" / "a"), "--metrics", "psnr", "-q"]
    # (not the real /dev/null: a regression run as root would rename a file over it, for every process here)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for extra in ([], ["--overwrite"]):
        reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
        try:
            code, _, err = run([*args, "--csv", str(fifo), *extra], capsys)
            assert code == 0, err
            assert reader.communicate(timeout=10)[0].splitlines()[0] == "video,frames,psnr,notes"
            assert stat.S_ISFIFO(fifo.lstat().st_mode)
        finally:
            reader.kill()


def test_every_bad_pair_of_a_benchmark_is_said_before_any_scoring(tmp_path, capsys, caplog):
    """The first bad clip stopped the run, the next one was found only after fixing it: every one is
    said now, one line each, then the error naming them (exit 2, nothing written)."""
    tiny_pair(tmp_path, "a", 3)
    (tmp_path / "G" / "a" / "0001.png").unlink()  # a gap in GT's numbering
    tiny_pair(tmp_path, "b", 2, size=(20, 16))  # 4 px wider than PRED: more than --max-crop 2
    tiny_pair(tmp_path, "c", 2)  # fine
    for name in ("e", "f"):  # predictions without a GT
        write_frames(tmp_path / "P" / name, noisy_clip(1, 16, 16, seed=1)[0])
    out = tmp_path / "s.json"
    code, stdout, err = run(["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "-q",
                             "--max-crop", "2", "--json", str(out)], capsys)  # fmt: skip
    assert code == 2 and not stdout and not out.exists(), err
    assert (
        err.strip() == "error: 4 videos cannot be scored as they are (e, f, a, b), each said above; nothing was scored"
    )
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]  # the CLI's `ERROR: ...` lines
    assert len(said) == 3, said
    assert f"no GT in {tmp_path / 'G'} for 2 of its 5 videos (e, f)" in said[0]
    assert f"{tmp_path / 'G' / 'a'}: frame number 1 is missing" in said[1]
    assert f"{tmp_path / 'P' / 'b'}: 16x16, but its GT {tmp_path / 'G' / 'b'} is 20x16" in said[2]


def test_videos_are_listed_in_natural_order(tmp_path, capsys):
    """clip1, clip10, clip2 (text order) is not how papers list them: numbers as numbers, case aside."""
    for name in ("clip10", "Clip3", "clip2", "clip1"):
        tiny_pair(tmp_path, name, 1)
    code, out, _ = run(["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "-q", "--csv", "-"],
                       capsys)  # fmt: skip
    assert code == 0 and [row.split(",")[0] for row in out.splitlines()[1:]] == [
        "clip1", "clip2", "Clip3", "clip10", "mean"
    ]  # fmt: skip


def test_ssim_y_with_crop_border_is_basicsrs(tmp_path, capsys):
    """`--metrics ssim_y` is BasicSR's calculate_ssim(test_y_channel=True) on the frames less the border."""
    from test_eval_metrics import _bt601_y

    pred, gt = noisy_clip(2, 16, 18, seed=5, noise=40)
    p, g = write_frames(tmp_path / "p", pred), write_frames(tmp_path / "g", gt)
    code, out, err = run(["eval", str(p), str(g), "--metrics", "ssim_y,ssim", "--crop-border", "2", "-q", "--json",
                          "-"], capsys)  # fmt: skip
    assert code == 0, err
    got = json.loads(out)["videos"]["p"]["frames"]
    chw = lambda f: f[2:-2, 2:-2].transpose(2, 0, 1).astype(np.float64) / 255  # noqa: E731
    want = [_ssim_reference(chw(a), chw(b), _bt601_y, clip_cs=False) for a, b in zip(pred, gt, strict=True)]
    assert got["ssim_y"] == pytest.approx(want, abs=1e-7)  # (frames reach the metrics as float32)
    assert got["ssim"] != pytest.approx(want, abs=1e-3)  # pyiqa's: another luma, rounded


def test_frames_left_out_are_recorded_and_strict_refuses_a_cut(tmp_path, capsys):
    """A GT missing its last frame was scored with a warning only: the JSON says how many frames of the
    longer side were left out; --strict refuses it, for frame folders before scoring and for a video
    (whose count is an estimate) when it is reached."""
    tiny_pair(tmp_path, "a", 3, gt_n=2)
    p, g = tmp_path / "P" / "a", tmp_path / "G" / "a"
    code, out, _ = run(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--json", "-"], capsys)
    video = json.loads(out)["videos"]["a"]
    assert code == 0 and video["num_frames"] == 2 and video["left_out"] == {"pred": 1}
    code, out, _ = run(["eval", str(g), str(p), "--metrics", "psnr", "-q", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["videos"]["a"]["left_out"] == {"gt": 1}
    line = error_line(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--strict"], capsys)
    assert (
        line
        == f"error: {p}: 3 frames, but its GT {g} has 2 (--strict: only pairs of one size and frame count are scored, none cut)"
    )
    v = write_video(tmp_path / "v.mkv", noisy_clip(4, 16, 16, seed=1)[0])
    line = error_line(["eval", str(v), str(g), "--metrics", "psnr", "-q", "--strict"], capsys)
    assert line.startswith(f"error: {v}: frame counts differ (PRED has more than 2 frames) (--strict"), line
    code, out, _ = run(["eval", str(v), str(g), "--metrics", "psnr", "-q", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["videos"]["v"]["left_out"] == {"pred": 2}  # (counted by reading them)


def test_an_unreadable_input_is_said_with_the_other_bad_pairs_and_strict_says_a_pair_once(tmp_path, capsys, caplog):
    """A PRED or GT that cannot be opened was left out of the bad pairs said before scoring (found only
    when read, on the next run), and --strict said a pair too far apart twice (as such, and as --strict)."""
    tiny_pair(tmp_path, "a")  # fine
    tiny_pair(tmp_path, "b", size=(20, 16))  # 4 px wider than PRED: more than --max-crop 2
    for name, side in (("c", "P"), ("d", "G")):  # c: PRED not a video; d: GT not a video
        tiny_pair(tmp_path, name)
        shutil.rmtree(tmp_path / side / name)
        (tmp_path / side / f"{name}.mkv").write_bytes(b"not a video at all" * 8)
    code, stdout, err = run(["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "-q",
                             "--max-crop", "2", "--strict"], capsys)  # fmt: skip
    assert code == 2 and not stdout, err
    assert err.strip() == "error: 3 videos cannot be scored as they are (b, c, d), each said above; nothing was scored"
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(said) == 3, said
    assert said[0].startswith(f"{tmp_path / 'P' / 'b'}: 16x16, but its GT {tmp_path / 'G' / 'b'} is 20x16: more than 2")
    assert said[1].startswith(f"{tmp_path / 'P' / 'c.mkv'}: not a video FFmpeg can read"), said[1]
    assert said[2].startswith(f"{tmp_path / 'G' / 'd.mkv'}: not a video FFmpeg can read"), said[2]


def test_a_plot_to_a_pipe_without_an_extension_is_a_png(tmp_path, capsys):
    """--plot /dev/null or >(...) was refused for naming no format (/dev/fd/63): a special file gets a PNG."""
    pytest.importorskip("matplotlib")
    tiny_pair(tmp_path, "a", n=1)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        code, _, err = run(["eval", str(tmp_path / "P" / "a"), str(tmp_path / "G" / "a"), "--metrics", "psnr", "-q",
                            "--plot", str(fifo)], capsys)  # fmt: skip
        assert code == 0, err
        assert reader.communicate(timeout=10)[0].startswith(b"\x89PNG\r\n\x1a\n") and stat.S_ISFIFO(
            fifo.lstat().st_mode
        )
    finally:
        reader.kill()


def test_a_missed_name_that_is_a_broken_link_says_so(tmp_path, capsys, caplog):
    """ "no GT named 'c'" and "no prediction in P for ... (b)" did not point at the broken link warned of."""
    tiny_pair(tmp_path, "a", n=1)
    tiny_pair(tmp_path, "b", n=1)
    shutil.rmtree(tmp_path / "P" / "b")
    (tmp_path / "P" / "b.mkv").symlink_to(tmp_path / "gone.mkv")  # PRED b: a broken link
    write_frames(tmp_path / "P" / "c", noisy_clip(1, 16, 16, seed=1)[0])
    (tmp_path / "G" / "c.mkv").symlink_to(tmp_path / "gone.mkv")  # GT c: a broken link
    code, _, err = run(["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr", "-q"], capsys)
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert code == 2 and len(said) == 2, err
    assert said[0] == (f"{tmp_path / 'P' / 'c'}: no GT named 'c' in {tmp_path / 'G'} ({tmp_path / 'G' / 'c.mkv'} is a"
                       " broken link; videos and frame folders are matched by name)")  # fmt: skip
    assert f"for 1 of its 2 videos (b; {tmp_path / 'P' / 'b.mkv'} is a broken link):" in said[1], said[1]


def test_csv_dash_writes_the_files_utf8_bytes_under_an_ascii_stdout(tmp_path, capsys, monkeypatch):
    """`--csv -` under PYTHONIOENCODING=ascii (or a Latin-1 locale) wrote `café` as `caf\\xe9` and
    Japanese as `\\u65e5...`: stdout's encoding re-encoded the text, and `\\xe9` is the CSV's escape of a
    byte that is not UTF-8. Now stdout gets the file's bytes: the names' UTF-8."""
    pred, gt = noisy_clip(2, 16, 24, seed=8)
    p = write_video(tmp_path / "café 日本.mkv", pred)
    g = write_video(tmp_path / "gt.mkv", gt)
    r_csv = tmp_path / "r.csv"
    code, _, err = run(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--csv", str(r_csv)], capsys)
    assert code == 0 and not err, err
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii", errors="backslashreplace"))
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(p), str(g), "--metrics", "psnr", "-q", "--csv", "-"])
    sys.stdout.flush()
    assert not exit_info.value.code and raw.getvalue() == r_csv.read_bytes()
    assert raw.getvalue().splitlines()[1].startswith(b"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac,2,")


def test_names_in_another_unicode_normalization_are_paired_and_case_twins_hinted(tmp_path, capsys, caplog):
    """A GT copied from a Mac names `café` in NFD (e + U+0301), a prediction made on Linux in NFC (é):
    they print alike, yet "no GT named 'café'" refused the run. They are paired now (scored against a
    PSNR computed here), said on one line that shows the two spellings apart. A name that matches only
    in case is still refused (two files on Linux), with a hint naming the twin."""
    pred, gt = noisy_clip(2, 16, 24, seed=3)
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    write_video(tmp_path / "p" / f"{nfc}.mkv", pred)
    write_video(tmp_path / "g" / f"{nfd}.mkv", gt)
    code, out, err = run(["eval", str(tmp_path / "p"), str(tmp_path / "g"), "--metrics", "psnr", "--json", "-"],
                         capsys)  # fmt: skip
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])
    assert code == 0 and json.loads(out)["videos"][nfc]["psnr"] == pytest.approx(want, abs=0.01), err
    said = [r.getMessage() for r in caplog.records if "Unicode" in r.getMessage()]
    assert said == [
        f"{tmp_path / 'p'} and {tmp_path / 'g'}: paired by name in another Unicode normalization: "
        "caf\u00e9 (NFC) with cafe\\u0301 (NFD)"
    ]
    (tmp_path / "g" / f"{nfd}.mkv").rename(tmp_path / "g" / "CAF\u00c9.mkv")
    code, out, err = run(["eval", str(tmp_path / "p"), str(tmp_path / "g"), "--metrics", "psnr", "-q", "--allow-missing"],
                         capsys)  # fmt: skip
    assert code == 2 and "'CAF\u00c9' there differs from 'caf\u00e9' only in case: rename one to pair them" in err


def test_upscale_eval_pairs_an_output_with_its_gt_in_another_unicode_normalization(tmp_path):
    """`dove upscale LQ/ -o SR/ --eval GT` with LQ's `café` in NFD (from a Mac) and GT's in NFC was
    refused before the run: "no output of this upscale for 1 of its 1 videos (café)". They are paired."""
    from dove_cli.metrics.pairing import check_planned_sizes

    (tmp_path / "gt").mkdir()
    write_video(tmp_path / "gt" / "caf\u00e9.mkv", noisy_clip(1, 16, 24, seed=1)[1])
    check_planned_sizes({"cafe\u0301": (tmp_path / "sr" / "cafe\u0301.mkv", (24, 16))}, True, tmp_path / "gt")
    with pytest.raises(InputError, match="16x24, but its GT"):  # the GT it was paired with is the one checked
        check_planned_sizes({"cafe\u0301": (tmp_path / "sr" / "cafe\u0301.mkv", (16, 24))}, True, tmp_path / "gt",
                            strict=True)  # fmt: skip


def test_upscale_eval_says_a_pairing_across_unicode_normalizations_once(tmp_path, capsys, caplog):
    """`dove upscale LQ/ -o SR/ --eval GT` with the output's `café` in NFC and GT's in NFD said the
    pairing twice: before the upscale (where it helps) and again when scoring. Once, before the upscale."""
    frames = noisy_clip(2, 32, 48, seed=3)[1]
    write_video((tmp_path / "LQ").mkdir() or tmp_path / "LQ" / "caf\u00e9.mkv", [f[::4, ::4] for f in frames])
    write_video((tmp_path / "GT").mkdir() or tmp_path / "GT" / "cafe\u0301.mkv", frames)
    caplog.set_level("INFO", logger="dove_cli")
    code, out, err = run(["upscale", str(tmp_path / "LQ"), "-o", str(tmp_path / "SR"), "--model", "bilinear",
                          "--eval", str(tmp_path / "GT"), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    said = [m for m in caplog.messages if "paired by name in another Unicode normalization" in m]
    assert (
        code == 0
        and "1 video" in out
        and said
        == [
            f"the outputs and {tmp_path / 'GT'}: paired by name in another Unicode normalization: "
            "caf\u00e9 (NFC) with cafe\\u0301 (NFD)"
        ]
    ), (said, err)
    assert caplog.messages.index(said[0]) < caplog.messages.index(f"created output folder {tmp_path / 'SR'}")


def test_names_in_two_unicode_normalizations_are_shown_apart_in_a_refusal():
    """ "2 videos cannot be scored as they are (café, café)": an NFC and an NFD name print alike. They
    are spelled apart now (combining marks escaped, the form named); other names stay as they are."""
    from dove_cli.metrics.pairing import Problem, refuse, shown_names

    nfc, nfd = "caf\u00e9", "cafe\u0301"
    with pytest.raises(InputError) as refused:
        refuse([Problem([nfc], "a"), Problem([nfd, "n\u0303"], "b")])
    assert str(refused.value) == ("3 videos cannot be scored as they are (caf\u00e9 (NFC), cafe\\u0301 (NFD), n\u0303), "
                                  "each said above; nothing was scored")  # fmt: skip
    assert shown_names([nfd, "x", nfc]) == "cafe\\u0301 (NFD), x, caf\u00e9 (NFC)"


def test_a_log_gets_a_count_of_the_frames_scored(tmp_path, capsys, monkeypatch):
    """Not a terminal (a log, a pipe): nothing was said while the frames were scored (SSIM on a CPU, about
    a frame a second: 33 frames of 720p were 24 s of silence). A count every DOVE_PROGRESS_INTERVAL s, as
    an upscale's, with the video where there are several; none in the first interval (a short run)."""
    (tmp_path / "P").mkdir()
    (tmp_path / "G").mkdir()
    for k, name in enumerate(("a", "b")):
        pred, gt = noisy_clip(2, 16, 16, seed=k)
        write_video(tmp_path / "P" / f"{name}.mkv", pred)
        write_video(tmp_path / "G" / f"{name}.mkv", gt)
    args = ["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr"]
    monkeypatch.setenv("DOVE_PROGRESS_INTERVAL", "0")  # a line per frame
    code, _, err = run(args, capsys)
    counts = [re.sub(r"[0-9.]+ frames/s.*, ", "R, ", line) for line in err.splitlines() if "scored" in line]
    assert code == 0 and counts == ["P: 1/4 frames scored (25%), R, a (1/2)", "P: 2/4 frames scored (50%), R, a (1/2)",
                                    "P: 3/4 frames scored (75%), R, b (2/2)", "P: 4/4 frames scored (100%), R, b (2/2)"], err  # fmt: skip
    monkeypatch.setenv("DOVE_PROGRESS_INTERVAL", "60")
    code, _, err = run(args, capsys)
    assert code == 0 and "scored" not in err, err
