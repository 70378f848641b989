"""`dove eval` / `evaluate()` end to end: PSNR and SSIM equal an independent computation per video
and mean, on single videos and on benchmark folders matched by name; cutting and cropping are
reported; JSON / CSV / plot outputs; every bad input is one `error:` line and exit 2."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from dove_cli.cli import main  # noqa: E402
from dove_cli.errors import InputError, OptionError  # noqa: E402
from dove_cli.metrics.evaluate import evaluate  # noqa: E402
from media import ffmpeg  # noqa: E402
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
    """GT as frame folders, predictions as videos (the benchmark layout); one GT has no prediction."""
    want: dict[str, list[float]] = {}
    (tmp_path / "PRED").mkdir()
    for k, name in enumerate(("calendar", "city", "walk")):
        pred, gt = noisy_clip(4, 32, 40, seed=10 + k, noise=5 + 10 * k)
        write_frames(tmp_path / "GT" / name, gt)
        write_video(tmp_path / "PRED" / f"{name}.mkv", pred)
        want[name] = [np_psnr(a, b) for a, b in zip(pred, gt, strict=True)]
    write_frames(tmp_path / "GT" / "extra", noisy_clip(2, 32, 40, seed=99)[1])
    code, out, err = run(
        ["eval", str(tmp_path / "PRED"), str(tmp_path / "GT"), "--metrics", "psnr,ssim", "-q",
         "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["metrics"] == ["psnr", "ssim"] and sorted(data["videos"]) == ["calendar", "city", "walk"]
    for name, values in want.items():
        assert data["videos"][name]["psnr"] == pytest.approx(np.mean(values), abs=0.01)
        assert data["videos"][name]["frames"]["psnr"] == pytest.approx(values, abs=0.01)
    assert data["mean"]["psnr"] == pytest.approx(np.mean([np.mean(v) for v in want.values()]), abs=0.01)
    assert any("extra" in n for n in data["notes"])
    rows = list(csv.reader((tmp_path / "r.csv").open()))
    assert rows[0] == ["video", "frames", "psnr", "ssim", "notes"] and [r[0] for r in rows[1:]] == [
        "calendar",
        "city",
        "walk",
        "mean",
    ]
    assert float(rows[-1][2]) == pytest.approx(data["mean"]["psnr"], rel=1e-5)
    assert "extra" in rows[-1][-1]  # the run's notes go with the mean they qualify
    assert Image.open(tmp_path / "r.png").size[0] > 100
    assert "PSNR" in out and "SSIM" in out and f"{data['mean']['psnr']:.2f}" in out  # the table


def test_no_gt_runs_only_no_reference_metrics(tmp_path):
    from dove_cli.metrics.evaluate import parse_metrics

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
    cases = [
        (
            ["eval", str(p), str(tmp_path / "mixed"), "--metrics", "psnr"],
            "mixed: holds 2 images and videos or frame folders (stray.mkv) (GT): move the images",
        ),
        (["eval", str(p), "--metrics", "psnr"], f"{p}: psnr needs a GT"),
        (["eval", str(p), str(g), "--metrics", "psnr,bogus"], "unknown metric 'bogus'"),
        (["eval", str(broken), str(g), "--metrics", "psnr"], str(broken)),
        (["eval", str(p), str(small), "--metrics", "psnr"], "more than 16 px apart"),
        (["eval", str(tmp_path / "P"), str(tmp_path / "G"), "--metrics", "psnr"], "no GT named 'x'"),
        (
            ["eval", str(tmp_path / "P"), str(g), "--metrics", "psnr"],
            "PRED is a folder of 1 inputs but GT is one input",
        ),
        (["eval", str(tmp_path / "nope.mp4")], "nope.mp4: no such file or folder"),
        (["eval", str(p), "--metrics", "fastervqa"], "FasterVQA"),
    ]
    for args, expected in cases:
        code, _, err = run([*args, "-q"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (args, err)
    code, _, err = run(["eval", str(p), str(small), "--metrics", "psnr", "--max-crop", "40", "-q"], capsys)
    assert code == 0, err


def test_dover_without_the_package_says_how(tmp_path):
    pred, _ = noisy_clip(1, 16, 16, seed=4)
    p = write_video(tmp_path / "a.mkv", pred)
    with pytest.raises(OptionError, match=r"not on PyPI.*VQAssessment/DOVER"):
        evaluate(p, None, "dover")
    with pytest.raises(InputError, match="holds no videos"):
        (tmp_path / "empty").mkdir()
        evaluate(tmp_path / "empty", None, "ewarp")


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
    """`dove upscale IN -o OUT --eval GT`: the scores dove eval gives, right after the run."""
    from media import ffmpeg_frames

    gt_frames, _ = noisy_clip(6, 96, 128, seed=3)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames])
    gt = write_frames(tmp_path / "gt", gt_frames)
    out, scores = tmp_path / "out.mkv", tmp_path / "scores.json"
    code, _, err = run(["upscale", str(lq), "-o", str(out), "--model", "bilinear", "--scale", "2", "--codec", "ffv1",
                        "--fps", "16", "-q", "--eval", str(gt), "--eval-metrics", "psnr", "--eval-json", str(scores)],
                       capsys)  # fmt: skip
    assert code == 0, err
    pred = ffmpeg_frames(out, 128, 96)
    expected = np.mean([np_psnr(p, g) for p, g in zip(pred, gt_frames, strict=True)])
    got = json.loads(scores.read_text())
    assert abs(got["mean"]["psnr"] - expected) < 0.01 and 15 < expected < 40


def test_upscale_eval_mistakes_stop_before_the_run(tmp_path, capsys):
    from conftest import demo_clip

    out = tmp_path / "out.mp4"
    for extra, message in (
        (["--eval", str(tmp_path / "missing")], "missing: no such file or folder (--eval GT)"),
        (
            ["--eval", str(demo_clip("007.mp4")), "--eval-metrics", "psnr,bogus"],
            "--eval-metrics: unknown metric 'bogus'",
        ),
        (["--eval-json", str(tmp_path / "s.json")], "go with --eval GT"),
    ):
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
        code, out, err = run(["eval", str(p), str(g), "--metrics", "psnr", "--device", device, "-q"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}") and not out, (device, err)


def test_result_files_are_checked_before_scoring_and_their_folders_made(tmp_path, capsys, caplog):
    """A mistake in --json / --csv / --plot is said before any frame is scored (no table printed);
    a missing folder is made, as `dove upscale` makes its output's."""
    pred, gt = noisy_clip(2, 16, 24, seed=7)
    p, g = write_video(tmp_path / "a.mkv", pred), write_video(tmp_path / "b.mkv", gt)
    (tmp_path / "file").write_text("x")
    for option, path, expected in (
        ("--json", tmp_path / "file" / "r.json", "is a file"),
        ("--csv", tmp_path / "file" / "r.csv", "is a file"),
        ("--plot", tmp_path / "file" / "r.png", "is a file"),
        ("--json", g, "is the input"),
        ("--csv", tmp_path, "is a folder"),
        ("--plot", tmp_path / "r.txt", "one of the extensions matplotlib writes"),
    ):
        code, out, err = run(["eval", str(p), str(g), "--metrics", "psnr", option, str(path), "-q"], capsys)
        assert code == 2 and err.startswith("error:") and expected in err and len(err.strip().splitlines()) == 1, err
        assert not out, (option, path)  # refused before scoring: no table
    new = tmp_path / "new" / "deeper"
    code, out, err = run(["eval", str(p), str(g), "--metrics", "psnr", "--json", str(new / "r.json"),
                          "--csv", str(new / "r.csv"), "--plot", str(new / "r.png")], capsys)  # fmt: skip
    assert code == 0 and f"created folder {new}" in caplog.text, err  # said, as for an upscale's output folder
    want = np.mean([np_psnr(a, b) for a, b in zip(pred, gt, strict=True)])
    assert json.loads((new / "r.json").read_text())["mean"]["psnr"] == pytest.approx(want, abs=0.01)
    assert (new / "r.csv").is_file() and Image.open(new / "r.png").size[0] > 100
    before = (new / "r.csv").read_bytes()  # an earlier run's scores are results too: kept without --overwrite
    code, out, err = run(["eval", str(p), str(g), "--metrics", "ssim", "--csv", str(new / "r.csv"), "-q"], capsys)
    assert code == 2 and "r.csv: already exists (use --overwrite" in err and not out
    assert (new / "r.csv").read_bytes() == before
    code, out, err = run(["eval", str(p), str(g), "--metrics", "ssim", "--csv", str(new / "r.csv"), "-q",
                          "--overwrite"], capsys)  # fmt: skip
    assert code == 0 and "ssim" in (new / "r.csv").read_text()


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
                        "-q", "--eval", str(tmp_path / "GT"), "--eval-metrics", "psnr"], capsys)  # fmt: skip
    assert code == 2 and "no GT named 'b'" in err and not out_dir.exists(), err


def test_upscale_eval_failing_only_after_the_run_is_exit_3_without_the_weights_hint(tmp_path, capsys):
    """A GT frame that cannot be read is found while scoring: the output is kept and said to be fine."""
    gt_frames, _ = noisy_clip(4, 32, 48, seed=9)
    lq = write_frames(tmp_path / "lq", [f[::2, ::2] for f in gt_frames])
    gt = write_frames(tmp_path / "gt", gt_frames)
    (gt / "0002.png").write_bytes(b"not a png")
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
