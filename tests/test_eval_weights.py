"""The metric weight files through the real huggingface_hub client and a loopback hub
(tests/hub_server.py): tiny files in the real key layouts stand in for the published ones (the
pins of `pretrained.WEIGHT_FILES` are replaced by theirs), verified, cached, used offline; the
stage-2 DISTS refusal; pickle files are never unpickled beyond tensors."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from dove_cli.errors import DownloadError, ModelError, OptionError  # noqa: E402
from dove_cli.metrics import pretrained  # noqa: E402
from eval_refs import tiny_models, tiny_weight_files  # noqa: E402
from hub_server import FakeRepo, HubServer  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    models = tiny_models(0)
    return models, tiny_weight_files(models)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    for var in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HUGGINGFACE_HUB_CACHE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("DOVE_HOME", str(tmp_path / "dove"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any stray request fails fast
    return tmp_path


@pytest.fixture
def hub(env, tiny, monkeypatch):
    """Serve the tiny files at the real repos and paths; pin their digests in place of the real ones."""
    _, files = tiny
    repos: dict[str, dict[str, bytes]] = {}
    for key, data in files.items():
        spec = pretrained.WEIGHT_FILES[key]
        repos.setdefault(spec.repo, {})[spec.filename] = data
        monkeypatch.setitem(
            pretrained.WEIGHT_FILES, key, replace(spec, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        )
    with HubServer([FakeRepo(r, f) for r, f in repos.items()]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """Lossless RGB (FFV1, bgr0): decoded frames equal the arrays exactly."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def clip_pair(tmp_path: Path, n: int = 3, h: int = 128, w: int = 136) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    gt = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    pred = [np.clip(f.astype(int) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8) for f in gt]
    return write_video(tmp_path / "pred.mkv", pred), write_video(tmp_path / "gt.mkv", gt)


def test_download_metrics_then_eval_offline_with_the_same_networks(hub, env, tiny, tmp_path, monkeypatch, capsys):
    from dove_cli.cli import main
    from dove_cli.metrics.evaluate import evaluate
    from dove_cli.metrics.lpips import LPIPS

    with pytest.raises(SystemExit) as exit_info:
        main(["download-weights", "--metrics"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    assert {e["path"].rsplit("/", 1)[-1] for e in hub.gets()} == {
        Path(spec.filename).name for spec in pretrained.WEIGHT_FILES.values()
    }
    for key in pretrained.WEIGHT_FILES:
        assert pretrained.cached(key) is not None
    gets = len(hub.gets())
    with pytest.raises(SystemExit):
        main(["download-weights", "--metrics"])  # already there: verified, not fetched again
    assert len(hub.gets()) == gets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pred, gt = clip_pair(tmp_path)
    report = evaluate(pred, gt, "lpips,dists,clipiqa,ewarp", device="cpu")
    scores = report.videos["pred"]
    assert len(scores.values["lpips"]) == 3 and len(scores.values["ewarp"]) == 2
    assert all(np.isfinite(v) for m in report.metrics for v in scores.values[m])
    models, _ = tiny
    x, y = (torch.from_numpy(np.stack(read_frames(p))).permute(0, 3, 1, 2).float() / 255 for p in (pred, gt))
    ref: LPIPS = models["lpips"]
    with torch.no_grad():
        assert scores.values["lpips"] == pytest.approx(ref(x, y).tolist(), rel=1e-5)
        assert scores.values["dists"] == pytest.approx(models["dists"](x, y).tolist(), rel=1e-5, abs=1e-6)
    assert len(hub.gets()) == gets  # offline: nothing fetched


def test_corrupted_download_is_deleted_with_a_one_line_error(hub, env):
    spec = pretrained.WEIGHT_FILES["dists"]
    hub.repos[spec.repo].corrupt.add(spec.filename)
    with pytest.raises(DownloadError, match="does not match its sha256") as err:
        pretrained.fetch("dists")
    assert "\n" not in str(err.value)
    assert not [p for p in (env / "hf").rglob("*") if p.is_file() and p.stat().st_size == spec.size]


def test_a_mirror_is_used_when_the_first_repo_is_gone(env, tiny, monkeypatch):
    _, files = tiny
    spec = pretrained.WEIGHT_FILES["alexnet"]
    data = files["alexnet"]
    mirror_repo, mirror_file = spec.mirrors[0]
    monkeypatch.setitem(pretrained.WEIGHT_FILES, "alexnet", replace(spec, sha256=hashlib.sha256(data).hexdigest()))
    with HubServer([FakeRepo(mirror_repo, {mirror_file: data})]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        path = pretrained.fetch("alexnet")
    assert path.read_bytes() == data and mirror_repo.replace("/", "--") in str(path)


def test_missing_weights_offline_say_what_to_run(env, tmp_path, monkeypatch, capsys):
    from dove_cli.cli import main
    from dove_cli.metrics.evaluate import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pred, gt = clip_pair(tmp_path, n=1, h=32, w=32)
    with pytest.raises(ModelError, match=r"dove download-weights --metrics"):
        evaluate(pred, gt, "lpips")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(pred), str(gt), "--metrics", "clipiqa", "-q"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error:") and "download-weights --metrics" in err
    assert len(err.splitlines()) == 1 and "--metrics psnr,ssim needs none" in err
    with pytest.raises(SystemExit) as exit_info:  # no GT: PSNR and SSIM would fail too, so not offered as such
        main(["eval", str(pred), "-q"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "download-weights --metrics" in err
    assert "psnr,ssim needs none" not in err and "psnr and ssim need none, but compare with a GT" in err
    import logging  # huggingface_hub prints its warnings (retries) with a handler of its own: not twice

    assert logging.getLogger("huggingface_hub").propagate is False


def test_an_unreadable_hub_cache_is_said_with_its_path_not_as_a_missing_file(env, tmp_path, monkeypatch, capsys):
    """A cache dove may not read (its refs file, say) read as "not downloaded": run download-weights."""
    import errno

    import huggingface_hub

    from dove_cli.cli import main

    refs = env / "hf" / "hub" / "models--x" / "refs" / "main"

    def denied(*args, **kwargs):  # (as root, chmod cannot make a file unreadable)
        raise PermissionError(errno.EACCES, "Permission denied", str(refs))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", denied)
    pred, gt = clip_pair(tmp_path, n=1, h=32, w=32)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(pred), str(gt), "--metrics", "lpips", "-q"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert f"cannot read the hub cache {env / 'hf' / 'hub'} for " in err and "Permission denied" in err
    assert "download-weights" not in err


def test_an_unreachable_hub_fails_at_once_not_after_retries(env):
    """No network: huggingface_hub retried each source for about 25 s (two sources: 50 s)."""
    import time

    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"not downloaded and http://127.0.0.1:9 cannot be reached") as err:
        pretrained.fetch("alexnet")
    assert time.monotonic() - start < 10 and "--weights-dir DIR` here" in str(err.value)
    assert str(err.value).endswith("(missing: alexnet; -v names them)")
    with pytest.raises(DownloadError, match=r"`dove download-weights --dists` where there is a network, or `dove tra"):
        pretrained.fetch("vgg16")  # not the command that failed ("run dove download-weights --metrics where it can")


def test_every_missing_file_is_named_and_skip_unavailable_scores_the_rest(env, tmp_path, capsys, caplog):
    """The hub's error named only the first missing file (one run per file to learn them all), and a
    metric without weights failed the whole run: --skip-unavailable scores the others and says which
    were left out (the table's note, the CSV's mean row, the JSON's notes and `skipped`). The line is
    short with the way on first (it was ~1,000 characters, every file's source before the advice, and
    said again as a warning under --skip-unavailable): the sources under -v, the left-out once."""
    import json

    from dove_cli.cli import main

    pred, gt = clip_pair(tmp_path, n=1, h=16, w=16)
    args = ["-v", "eval", str(pred), str(gt), "--metrics", "psnr,lpips,clipiqa"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 75 and len(err.splitlines()) == 1 and len(err) < 400, err
    assert err.startswith(
        "error: weight files not downloaded and http://127.0.0.1:9 cannot be reached: --metrics"
        " psnr,ssim needs none, or --skip-unavailable scores the others; to fetch them"
    ), err
    assert err.endswith("(missing: alexnet, lpips-alex, clip-rn50; -v names them)"), err
    assert "--weights alexnet=FILE --weights lpips-alex=FILE" in caplog.text  # each source: under -v (INFO)
    assert (
        pretrained.WEIGHT_FILES["clip-rn50"].repo in caplog.text
        and pretrained.WEIGHT_FILES["clip-rn50"].repo not in err
    )
    caplog.clear()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--skip-unavailable", "--json", str(tmp_path / "s.json"), "--csv", "-"])
    out, err = capsys.readouterr()
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert not warned and err.count("lpips, clipiqa") == 1, err  # said once: in the result, not a warning too
    doc = json.loads((tmp_path / "s.json").read_text())
    assert exit_info.value.code == 0 and doc["metrics"] == ["psnr"] and doc["skipped"] == ["lpips", "clipiqa"]
    said = "not scored, their weights (or package) not at hand (--skip-unavailable): lpips, clipiqa"
    assert said in doc["notes"] and out.splitlines()[0] == "video,frames,psnr,notes" and said in out.splitlines()[-1]
    assert any("left out (--skip-unavailable): lpips, clipiqa" in r.getMessage() for r in caplog.records)  # -v


def test_upscale_eval_skip_unavailable_scores_the_rest(env, tmp_path, capsys):
    """`dove upscale --eval` had no --skip-unavailable: its missing weights stopped it before the run with
    no way on but fewer metrics. --eval-skip-unavailable scores the rest after the run and says which were
    left out; none left is refused before the run."""
    import json

    from dove_cli.cli import main

    gt = clip_pair(tmp_path, n=2, h=16, w=16)[1]
    out, scores = tmp_path / "out.mkv", tmp_path / "s.json"
    args = ["upscale", str(gt), "-o", str(out), "--model", "bilinear", "--scale", "1", "--codec", "ffv1", "-q",
            "--eval", str(gt), "--eval-json", str(scores)]  # fmt: skip
    for extra, code, said in (
        (["--eval-metrics", "psnr,lpips"], 75, ", or --eval-skip-unavailable scores the others"),
        (["--eval-metrics", "lpips", "--eval-skip-unavailable"], 2, "error: none of the metrics can run here: "),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, *extra])
        err = capsys.readouterr().err
        assert exit_info.value.code == code and said in err and not out.exists(), err
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--eval-metrics", "psnr,lpips", "--eval-skip-unavailable"])
    err = capsys.readouterr().err
    doc = json.loads(scores.read_text())
    assert exit_info.value.code in (0, None) and doc["metrics"] == ["psnr"] and doc["skipped"] == ["lpips"], err
    assert "not at hand (--eval-skip-unavailable): lpips" in " ".join(doc["notes"]), doc["notes"]


def test_every_missing_weights_file_given_is_named_at_once(env, tmp_path, capsys):
    """`--weights KEY=FILE` named only the first file that is not there (or none, behind the hub's error)."""
    from dove_cli.cli import main

    pred, gt = clip_pair(tmp_path, n=1, h=16, w=16)
    a, v = tmp_path / "nope" / "a.pth", tmp_path / "nope" / "v.safetensors"
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(pred), str(gt), "--metrics", "lpips,dists", "-q", "--weights", f"alexnet={a}",
              "--weights", f"vgg16={v}"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == f"error: --weights alexnet={a}, vgg16={v}: no such files", err


def test_upscale_eval_without_metric_weights_stops_before_the_run(env, tmp_path, capsys):
    """Missing metric weights are known before the upscale: one line and exit 75, nothing written
    (the hub is unreachable here, so they cannot be fetched up front either)."""
    from conftest import demo_clip
    from dove_cli.cli import main

    out = tmp_path / "out.mp4"
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", str(demo_clip("007.mp4")), "-o", str(out), "--model", "bilinear", "--scale", "1", "-q",
              "--eval", str(demo_clip("007.mp4"))])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 75 and not out.exists() and len(err.splitlines()) == 1, err  # try again later
    assert (
        "cannot be reached: --eval-metrics psnr,ssim needs none, or --eval-skip-unavailable scores the others;" in err
        and "--weights-dir DIR" in err
    )  # no network here: the files, from elsewhere


def test_stage2_refuses_without_dists_and_loads_them_from_the_cache(
    hub, env, tiny, tiny_model_dir, monkeypatch, capsys
):
    from conftest import DEMO
    from dove_cli.cli import main
    from dove_cli.metrics.dists import training_dists
    from dove_cli.train.config import TrainConfig
    from dove_cli.train.loop import train

    cfg = TrainConfig.for_stage(
        2, data=str(DEMO), model=str(tiny_model_dir), output_dir=str(env / "run"), resolution="2x32x32",
        max_steps=1, batch_size=1, num_workers=0, warmup_steps=0, posterior="mode", image_ratio=0.0,
    )  # fmt: skip
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OptionError) as err:
        train(cfg)
    msg = str(err.value)
    assert msg.count("dove download-weights --dists") == 1 and "--dists-weight 0" in msg and "\n" not in msg
    assert not (env / "run").exists()  # refused before the run folder is made

    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(SystemExit) as exit_info:
        main(["download-weights", "--dists"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    fetched = {e["path"].rsplit("/", 1)[-1] for e in hub.gets()}
    assert fetched == {"model.safetensors", Path(pretrained.WEIGHT_FILES["dists"].filename).name}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = training_dists()
    models, _ = tiny
    assert d.pretrained and torch.equal(d.alpha, models["dists"].alpha) and d.channels == models["dists"].channels

    result = train(cfg.replace(dists_weight=0.0, output_dir=str(env / "run0")))  # no DISTS term: no weights needed
    assert result.steps == 1


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_files_are_read_as_tensors_only(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"alpha": torch.zeros(3), "x": _Evil(marker)}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="cannot read"):
        pretrained.load_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()
    from dove_cli.metrics.dists import DISTS

    with pytest.raises(OptionError, match="cannot read"):
        DISTS([tmp_path / "evil.pth"])
    assert not marker.exists()


def test_a_file_that_is_not_weights_says_so(tmp_path, capsys):
    """pickle's own words for other bytes are a bare number (its magic number check) or a note on
    weights_only; an empty file failed with a traceback."""
    from dove_cli.cli import main

    pred, gt = clip_pair(tmp_path, n=1, h=32, w=32)
    files = {
        "text.pth": b"hello, not a checkpoint\n",  # torch: "cannot read (174812789)"-style magic-number errors
        "random.pth": bytes(np.random.default_rng(0).integers(0, 0x7F, 3000, dtype=np.uint8)),
        "empty.pth": b"",
        "named.safetensors": b"hello, not a checkpoint\n",
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        why = "empty" if not data else "damaged, or not weights at all"
        with pytest.raises(ModelError, match=rf"{name}: not a PyTorch checkpoint or safetensors file \({why}\)$"):
            pretrained.load_state_dict(path)
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", str(pred), str(gt), "--metrics", "dists", "-q", "--weights", f"vgg16={path}",
                  "--weights", f"dists={path}"])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and err.count(name) == 1, err
        assert "not a PyTorch checkpoint or safetensors file" in err and "psnr,ssim" not in err, err
    real = tmp_path / "real.bin"  # read by its bytes, whatever its name
    torch.save({"alpha": torch.ones(2)}, real)
    assert torch.equal(pretrained.load_state_dict(real)["alpha"], torch.ones(2))


def test_local_weights_are_checked_against_the_pins_and_every_file_used_is_recorded(
    hub, env, tiny, tmp_path, caplog, capsys, monkeypatch
):
    """`--weights KEY=FILE` of other bytes than the published file is scored, with a warning, and a
    run note under the table, in the CSV's mean row and the JSON's notes naming the metric (the
    trial: the table and CSV looked like published LPIPS); the JSON names each weight file used by
    its absolute path (given relative here) with its sha256 (read again when the file changes), the
    dove version and the device. The score is the tiny reference network's with the same heads."""
    import copy
    import csv
    import io
    import json

    from dove_cli import __version__
    from dove_cli.cli import main

    models, files = tiny
    pred, gt = clip_pair(tmp_path, n=2, h=64, w=64)
    alex = tmp_path / "alex.pth"
    alex.write_bytes(files["alexnet"])  # the published bytes (here: the pinned tiny file)
    heads = tmp_path / "heads.pth"
    state = torch.load(io.BytesIO(files["lpips-alex"]), weights_only=True)
    torch.save({k: 2 * v for k, v in state.items()}, heads)  # a converted or fine-tuned copy, say
    report = tmp_path / "r.json"
    monkeypatch.chdir(tmp_path)
    args = ["eval", str(pred), str(gt), "--metrics", "psnr,lpips", "--device", "cpu", "-q", "--json", str(report),
            "--weights", f"alexnet={alex}", "--weights", "lpips-alex=heads.pth", "--overwrite",
            "--csv", "r.csv"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    assert exit_info.value.code in (0, None), out.err
    note = ("lpips scored with weights that are not the published files (see the JSON's weights): not comparable"
            " with published scores")  # fmt: skip
    assert " ".join(out.out.split()).endswith(note), out.out  # under the table
    assert list(csv.DictReader(open("r.csv")))[-1]["notes"] == note
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and said[0].startswith("heads.pth: not the published lpips-alex file") and (
        "not comparable with published ones" in said[0])  # fmt: skip
    data = json.loads(report.read_text())
    assert data["notes"] == [note]
    sha = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()  # noqa: E731
    assert data["weights"] == {
        "alexnet": {"file": str(alex), "sha256": sha(alex), "published": True},
        "lpips-alex": {"file": str(heads), "sha256": sha(heads), "published": False},
    }
    assert data["dove_version"] == __version__ and data["device"] == "cpu"
    ref = copy.deepcopy(models["lpips"])
    with torch.no_grad():
        for lin in ref.lins:
            lin.mul_(2)  # (the reference keeps each head as one Parameter)
        x, y = (torch.from_numpy(np.stack(read_frames(p))).permute(0, 3, 1, 2).float() / 255 for p in (pred, gt))
        assert data["videos"]["pred"]["frames"]["lpips"] == pytest.approx(ref(x, y).tolist(), rel=1e-5)

    heads.write_bytes(files["lpips-alex"])  # the same path, now the published bytes: read again, not remembered
    caplog.clear()
    with pytest.raises(SystemExit):
        main(args)
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
    assert json.loads(report.read_text())["weights"]["lpips-alex"] == {
        "file": str(heads), "sha256": sha(heads), "published": True}  # fmt: skip
    assert json.loads(report.read_text())["notes"] == [] and "published" not in capsys.readouterr().out
    with pytest.raises(SystemExit):  # from the hub: verified when fetched, recorded the same way
        main(["eval", str(pred), str(gt), "--metrics", "lpips", "-q", "--json", str(report), "--overwrite"])
    used = json.loads(report.read_text())["weights"]
    assert {k: (u["sha256"], u["published"]) for k, u in used.items()} == {
        k: (hashlib.sha256(files[k]).hexdigest(), True) for k in ("alexnet", "lpips-alex")
    }


def test_a_weights_folder_carries_the_metric_files_to_a_machine_without_a_network(
    hub, env, tiny, tmp_path, monkeypatch, capsys
):
    """`download-weights --metrics --dir W` puts every file in W, named by key; `dove eval
    --weights-dir W` uses them with no hub cache and no network, and names all missing files at once."""
    import json

    from dove_cli.cli import main

    models, files = tiny
    folder = tmp_path / "W"
    with pytest.raises(SystemExit) as exit_info:
        main(["download-weights", "--metrics", "--dir", str(folder)])
    out = capsys.readouterr().out
    assert exit_info.value.code in (0, None) and f"--weights-dir {folder}" in out, out
    assert sorted(p.name for p in folder.iterdir()) == sorted(pretrained.folder_name(k) for k in files)
    for key, data in files.items():
        assert (folder / pretrained.folder_name(key)).read_bytes() == data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the other machine: no network, an empty hub cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    pred, gt = clip_pair(tmp_path, n=2, h=64, w=64)
    args = ["eval", str(pred), str(gt), "--metrics", "lpips", "--device", "cpu", "-q", "--weights-dir", str(folder)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--json", str(tmp_path / "r.json")])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    data = json.loads((tmp_path / "r.json").read_text())
    assert {k: u["file"] for k, u in data["weights"].items()} == {
        k: str(folder / pretrained.folder_name(k)) for k in ("alexnet", "lpips-alex")
    }
    assert all(u["published"] for u in data["weights"].values())
    x, y = (torch.from_numpy(np.stack(read_frames(p))).permute(0, 3, 1, 2).float() / 255 for p in (pred, gt))
    with torch.no_grad():
        assert data["videos"]["pred"]["frames"]["lpips"] == pytest.approx(models["lpips"](x, y).tolist(), rel=1e-5)
    (folder / "alexnet.pth").unlink()
    (folder / "lpips-alex.pth").unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert f"--weights-dir {folder}: alexnet.pth, lpips-alex.pth missing" in err


@pytest.mark.parametrize("given", ["weights", "env"])
def test_dover_weights_under_home_are_found_as_every_other_key(env, tmp_path, monkeypatch, given):
    """`--weights dover=~/DOVER.pth` (quoted: from a config file, a script, the Python API) was "DOVER.pth
    not found" where every other key's `~` was expanded: DOVER's path was decided twice, and the check
    and the loader read the text as it was. Now resolved once (`pretrained.local_weights`), for
    --weights and DOVE_DOVER_WEIGHTS alike; the scorer gets the file in the home folder."""
    from dove_cli.metrics import evaluate as ev
    from dove_cli.metrics import vqa

    home = tmp_path / "home"
    home.mkdir()
    (home / "DOVER.pth").write_bytes(b"stand-in")
    (tmp_path / "stub" / "dover").mkdir(parents=True)  # the DOVER package as the import check finds it
    for name in ("__init__.py", "models.py"):
        (tmp_path / "stub" / "dover" / name).write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "stub"))
    monkeypatch.setenv("HOME", str(home))
    loaded: list[Path] = []

    class Scorer:  # DOVER itself is not installed here: what it is given, and a score
        name = "dover"

        def __init__(self, weights_path: Path, device: torch.device) -> None:
            loaded.append(weights_path)

        def score(self, path: Path) -> float:
            return 0.5

    monkeypatch.setattr(vqa, "DOVERScorer", Scorer)
    weights = {"dover": "~/DOVER.pth"} if given == "weights" else None
    if given == "env":
        monkeypatch.setenv("DOVE_DOVER_WEIGHTS", "~/DOVER.pth")
    pred, _ = clip_pair(tmp_path, n=1, h=16, w=16)
    report = ev.evaluate(pred, metrics="dover", weights=weights, device="cpu")
    assert loaded == [home / "DOVER.pth"] and report.weights["dover"]["file"] == str(home / "DOVER.pth")
