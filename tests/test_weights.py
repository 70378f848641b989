"""weights.py and `dove download-weights` / `dove info`, against a real HTTP server on 127.0.0.1 that
speaks the hub's wire protocol (tests/hub_server.py). huggingface_hub itself is not mocked: HF_ENDPOINT,
HF_HOME and HF_HUB_CACHE point at the server and at tmp_path, and weights.py reads them at call time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

sys.path.insert(0, str(Path(__file__).parent))
from dove_cli import weights  # noqa: E402
from dove_cli.errors import DownloadError, ModelError  # noqa: E402
from hub_server import FakeRepo, HubServer  # noqa: E402

BIG = "stage2/transformer/diffusion_pytorch_model.safetensors"
VAE = "stage2/vae/diffusion_pytorch_model.safetensors"


def tensors(n: int, seed: int = 0) -> bytes:
    """A real (tiny) safetensors file; the values need not form a loadable model here."""
    return save({"weight": np.random.default_rng(seed).standard_normal(n).astype(np.float32)})


def model_files(prefix: str = "", *, big: int = 20_000, text: bool = True, pickle_only: bool = False) -> dict:
    p = f"{prefix}/" if prefix else ""
    files = {
        f"{p}model_index.json": b'{"_class_name": "CogVideoXPipeline"}',
        f"{p}transformer/config.json": b'{"num_layers": 1}',
        f"{p}vae/config.json": b'{"scaling_factor": 0.7}',
        f"{p}vae/diffusion_pytorch_model.safetensors": tensors(500, 1),
        f"{p}scheduler/scheduler_config.json": b'{"num_train_timesteps": 1000}',
    }
    if pickle_only:
        files[f"{p}transformer/diffusion_pytorch_model.bin"] = b"\x80\x04pickle-bytes"
    else:
        files[f"{p}transformer/diffusion_pytorch_model.safetensors"] = tensors(big, 2)
        files[f"{p}transformer/diffusion_pytorch_model.bin"] = b"\x80\x04pickle-duplicate"  # must be skipped
    if text:
        files[f"{p}text_encoder/config.json"] = b"{}"
        files[f"{p}text_encoder/model.safetensors"] = tensors(100, 3)
        files[f"{p}tokenizer/tokenizer_config.json"] = b"{}"
        files[f"{p}tokenizer/spiece.model"] = b"sentencepiece"
    return files


def dove_repo(**kw) -> FakeRepo:
    files = {"README.md": b"# DOVE mirror", **model_files("stage2"), **model_files("stage1", big=1000)}
    files["stage2/prompt_embedding.safetensors"] = tensors(64, 4)
    return FakeRepo("zzsi/DOVE", files, refs={"v1.0": ""}, **kw)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    """Hub cache, dove state and HF_* variables confined to tmp_path."""
    unset = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HUGGINGFACE_HUB_CACHE")
    for var in unset:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("DOVE_HOME", str(tmp_path / "dove"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return tmp_path


@pytest.fixture
def hub(env, monkeypatch):
    repos = [
        dove_repo(),
        FakeRepo("zai-org/CogVideoX1.5-5B", model_files(big=800)),
        FakeRepo("acme/pickled", model_files(pickle_only=True, text=False)),
        FakeRepo("acme/gated", model_files(text=False), gated_token="hf_secret"),
    ]
    with HubServer(repos) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def cache_repo(env: Path, repo: str = "zzsi/DOVE") -> Path:
    return env / "hf" / "hub" / ("models--" + repo.replace("/", "--"))


def no_partial_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".incomplete")]


# ------------------------------------------------------------------------------------------- download


def test_full_download_fetches_only_what_is_needed(hub, env):
    events = []
    folder = weights.download_weights(progress=lambda *e: events.append(e))
    repo = hub.repos["zzsi/DOVE"]
    assert folder == cache_repo(env) / "snapshots" / repo.commit / "stage2"
    fetched = sorted(e["path"].split(f"/{repo.commit}/")[1] for e in hub.gets())
    assert fetched == sorted(
        [
            "stage2/model_index.json",
            "stage2/prompt_embedding.safetensors",
            "stage2/scheduler/scheduler_config.json",
            "stage2/transformer/config.json",
            BIG,
            "stage2/vae/config.json",
            VAE,
        ]
    )  # no pickle duplicate, no text encoder, no README, no stage1
    assert (cache_repo(env) / "refs" / "main").read_text() == repo.commit
    assert (folder / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == repo.files[VAE]
    assert (BIG, len(repo.files[BIG]), len(repo.files[BIG])) in events  # the checksum pass read all of it
    assert weights.resolve_model(None) == folder
    assert weights.resolve_model("zzsi/DOVE") == folder
    assert weights.resolve_model("zzsi/DOVE:stage2") == folder

    before = len(hub.gets())
    assert weights.download_weights() == folder  # already complete: verified, not fetched again
    assert len(hub.gets()) == before


def test_stage1_base_and_text_encoder_into_dir(hub, env):
    out = env / "models"
    folder = weights.download_weights(stage=1, base=True, dir=out, with_text_encoder=True)
    assert folder == out / "stage1"
    assert (folder / "text_encoder" / "model.safetensors").is_file()
    assert (folder / "tokenizer" / "spiece.model").is_file()
    assert (out / "CogVideoX1.5-5B" / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert weights.resolve_model(str(folder)) == folder
    assert weights.resolve_model("zai-org/CogVideoX1.5-5B") == out / "CogVideoX1.5-5B"
    with pytest.raises(ModelError, match="download-weights"):
        weights.resolve_model(None)  # stage 1 is not the default model


def test_dir_download_is_found_as_the_default(hub, env):
    folder = weights.download_weights(dir=env / "elsewhere")
    assert not cache_repo(env).exists()
    assert weights.resolve_model(None) == folder == env / "elsewhere" / "stage2"


def test_revision_is_pinned_and_recorded(hub, env):
    folder = weights.download_weights(revision="v1.0")
    assert (cache_repo(env) / "refs" / "v1.0").read_text() == hub.repos["zzsi/DOVE"].commit
    assert weights.resolve_model("zzsi/DOVE", revision="v1.0") == folder


def test_resume_after_connection_drop(env, monkeypatch):
    # > 2 x huggingface_hub's 10 MiB read chunk, so that data arrives before the drop and the retry is a Range request
    repo = dove_repo(drop_once={BIG})
    repo.files[BIG] = tensors(6_000_000, 5)
    repo.__post_init__()
    with HubServer([repo]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        folder = weights.download_weights()
        gets = server.gets(BIG)
    assert len(gets) == 2 and gets[0]["range"] is None
    offset = int(gets[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset < len(repo.files[BIG])
    data = (folder / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(repo.files[BIG]).hexdigest()
    assert no_partial_files(env)


def test_checksum_mismatch_is_an_error_and_not_kept(hub, env):
    hub.repos["zzsi/DOVE"].corrupt.add(VAE)
    with pytest.raises(DownloadError, match="vae/diffusion_pytorch_model.safetensors.*checksum"):
        weights.download_weights()
    commit = hub.repos["zzsi/DOVE"].commit
    sha = hashlib.sha256(hub.repos["zzsi/DOVE"].files[VAE]).hexdigest()
    assert not (cache_repo(env) / "blobs" / sha).exists()
    assert not (cache_repo(env) / "snapshots" / commit / VAE).exists()
    assert no_partial_files(env)
    with pytest.raises(ModelError):
        weights.resolve_model(None)


def test_corrupted_cache_is_detected_and_repaired(hub, env):
    folder = weights.download_weights()
    blob = (folder / "transformer" / "diffusion_pytorch_model.safetensors").resolve()
    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(ModelError, match="corrupted or incomplete.*dove download-weights"):
        weights.resolve_model(None)
    weights.download_weights()
    assert blob.read_bytes() == good
    blob.write_bytes(bytes(len(good)))  # right size, wrong bytes: only the checksum sees it
    n = len(hub.gets(BIG))
    weights.download_weights()
    assert blob.read_bytes() == good and len(hub.gets(BIG)) == n + 1


def test_interrupted_run_keeps_finished_files(hub, env):
    hub.repos["zzsi/DOVE"].fail_get[VAE] = 500
    with pytest.raises(DownloadError, match="500"):
        weights.download_weights()
    assert no_partial_files(env)
    with pytest.raises(ModelError):
        weights.resolve_model(None)
    del hub.repos["zzsi/DOVE"].fail_get[VAE]
    killed = cache_repo(env) / "blobs" / "abc.0123abcd.incomplete"  # what a killed process leaves behind
    killed.write_bytes(b"partial")
    os.utime(killed, (0, 0))
    weights.download_weights()
    assert not killed.exists()
    assert len(hub.gets(BIG)) == 1  # the file finished before the failure is not fetched again
    assert len(hub.gets(VAE)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repo": "nobody/nothing"}, "repo 'nobody/nothing' not found.*--repo"),
        ({"revision": "no-such-branch"}, "revision 'no-such-branch' not found.*--revision"),
        ({"subfolder": "stage9"}, "zzsi/DOVE/stage9: no such folder"),
        ({"repo": "acme/gated"}, "acme/gated is gated.*HF_TOKEN"),
    ],
)
def test_hub_errors_are_one_line(hub, kwargs, message):
    with pytest.raises(ModelError, match=message) as info:
        weights.download_weights(**kwargs)
    assert "\n" not in str(info.value)


def test_gated_repo_with_token(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(DownloadError, match="gated"):
        weights.download_weights(repo="acme/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    folder = weights.download_weights(repo="acme/gated")
    assert (folder / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert all(e["auth"] == "Bearer hf_secret" for e in hub.gets()[-3:])


def test_no_network(env, monkeypatch):
    import socket

    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match="cannot reach .*run `dove download-weights --dir DIR` on one with it") as e:
        weights.download_weights()
    assert "check HF_ENDPOINT, the mirror that is set" in str(e.value)  # not "set HF_ENDPOINT": it is set


def test_offline_without_and_with_cache(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline mode .*unset HF_HUB_OFFLINE"):
        weights.download_weights()
    assert hub.log == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    folder = weights.download_weights()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.log)
    assert weights.download_weights() == folder
    assert weights.resolve_model(None) == folder
    assert len(hub.log) == n  # nothing asked of the network


def test_disk_space_refusal(hub, env):
    with pytest.raises(DownloadError, match="not enough disk space .*need .* free"):
        weights.download_weights(free_space=lambda path: 1000)
    assert hub.gets() == []


def test_pickle_only_is_refused_unless_allowed(hub, env):
    with pytest.raises(ModelError, match="only pickle weights.*--allow-pickle"):
        weights.download_weights(repo="acme/pickled")
    assert hub.gets() == []
    folder = weights.download_weights(repo="acme/pickled", allow_pickle=True)
    assert (folder / "transformer" / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(ModelError, match="only pickle"):
        weights.resolve_model(str(folder))
    assert weights.resolve_model(str(folder), allow_pickle=True) == folder


def test_pickle_gate_checks_the_file_diffusers_and_peft_load(env, tmp_path):
    """A safetensors file of another name does not stand in for diffusion_pytorch_model.safetensors
    (diffusers would fall back to the .bin), and transformer_lora/ is checked as peft loads it."""
    decoy = write_model(tmp_path / "decoy", text=False)
    (decoy / "transformer" / "diffusion_pytorch_model.safetensors").rename(decoy / "transformer" / "decoy.safetensors")
    with pytest.raises(ModelError, match=r"decoy/transformer has only pickle weights \(diffusion_pytorch_model.bin\)"
                       r".*convert them .* to diffusion_pytorch_model.safetensors$"):  # fmt: skip
        weights.resolve_model(str(decoy))
    assert weights.resolve_model(str(decoy), allow_pickle=True) == decoy

    lora = write_model(tmp_path / "lora", text=False)
    (lora / "transformer_lora").mkdir()
    (lora / "transformer_lora" / "adapter_model.bin").write_bytes(b"\x80\x04pickle-adapter")
    with pytest.raises(
        ModelError,
        match=r"transformer_lora has only pickle weights \(adapter_model.bin\).*to adapter_model.safetensors$",
    ):
        weights.resolve_model(str(lora))
    assert weights.resolve_model(str(lora), allow_pickle=True) == lora
    (lora / "transformer_lora" / "adapter_model.safetensors").write_bytes(tensors(10))
    assert weights.resolve_model(str(lora)) == lora  # peft loads the safetensors one


def test_disk_full_message():
    with pytest.raises(DownloadError, match="disk full .*free some space"):
        with weights.hub_errors("zzsi/DOVE", "main", "http://x", file="a.safetensors"):
            raise OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------------------------------------- local layouts


def write_model(root: Path, **kw) -> Path:
    for name, data in model_files(**kw).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_resolve_local_layouts(env, tmp_path):
    plain = write_model(tmp_path / "plain", text=False)
    assert weights.resolve_model(str(plain)) == plain

    release = write_model(tmp_path / "repo" / "pretrained_models" / "DOVE")  # the authors' README layout
    assert weights.resolve_model(str(release)) == release
    assert weights.resolve_model(str(tmp_path / "repo" / "pretrained_models")) == release
    assert weights.resolve_model(str(tmp_path / "repo")) == release

    export = write_model(tmp_path / "export", text=False)  # `dove train export`: diffusers folder + adapter
    (export / "lora").mkdir()
    (export / "lora" / "adapter_model.safetensors").write_bytes(tensors(10))
    assert weights.resolve_model(str(export)) == export

    cache = tmp_path / "cache" / "models--zzsi--DOVE"
    write_model(cache / "snapshots" / ("a" * 40) / "stage2")
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text("a" * 40)
    assert weights.resolve_model(str(cache)) == cache / "snapshots" / ("a" * 40) / "stage2"


def test_resolve_bad_folders(env, tmp_path):
    broken = write_model(tmp_path / "broken")
    for f in (broken / "transformer").iterdir():
        f.unlink()
    (broken / "transformer").rmdir()
    with pytest.raises(ModelError, match=f"{broken}.*missing transformer/"):
        weights.resolve_model(str(broken))
    with pytest.raises(ModelError, match="does not exist; built-in models: bilinear, tiny, full-random$"):
        weights.resolve_model(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(ModelError, match=r"model folder bilnear does not exist \(did you mean --model bilinear\?\); "
                       "built-in models: bilinear, tiny, full-random$"):  # fmt: skip
        weights.resolve_model("bilnear")
    with pytest.raises(ModelError, match="^model folder nearest does not exist; built-in models: bilinear, tiny, "
                       "full-random$"):  # fmt: skip
        weights.resolve_model("nearest")
    with pytest.raises(ModelError, match="is a file"):
        weights.resolve_model(str(broken / "model_index.json"))
    with pytest.raises(ModelError, match="dove download-weights --repo someone/model"):
        weights.resolve_model("someone/model")
    with pytest.raises(ModelError, match="run `dove download-weights`"):
        weights.resolve_model(None)
    run = tmp_path / "runs" / "s1"  # what `dove train` writes: run.json and checkpoints/step-N/train_state.json
    (run / "checkpoints" / "step-0000006").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "checkpoints" / "step-0000006" / "train_state.json").write_text("{}")
    for folder in (run, run / "checkpoints" / "step-0000006"):
        with pytest.raises(ModelError, match=rf"is a `dove train` run or checkpoint.*`dove train export {folder} -o"):
            weights.resolve_model(str(folder))


# ------------------------------------------------------------------------------------------- CLI


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    from dove_cli.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_download_and_info(hub, env, capsys):
    code, out, err = run_main(["download-weights", "--yes"], capsys)
    assert code == 0, err
    folder = weights.resolve_model(None)
    assert "zzsi/DOVE/stage2" in out and f"weights ready in {folder}" in out
    assert "next: dove upscale in.mp4 -o out.mp4\n" in out

    code, out, err = run_main(["info"], capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    for word in ("torch", "diffusers", "av", "python", "device", "bitsandbytes", "SDPA"):
        assert word in flat
    assert "transformer" in flat and "KB" in flat


def test_cli_non_default_download_names_the_model(hub, env, capsys):
    code, out, err = run_main(["download-weights", "--stage", "1", "--dir", str(env / "m"), "--yes"], capsys)
    assert code == 0, err
    assert f"next: dove upscale in.mp4 -o out.mp4 --model {env / 'm' / 'stage1'}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", "nobody/nothing"], "not found"),
        (["--stage", "3"], "--stage must be 1 or 2"),
        (["--repo", "acme/pickled"], "--allow-pickle"),
    ],
)
def test_cli_errors_exit_2_with_one_line(hub, capsys, args, message):
    code, _, err = run_main(["download-weights", "--yes", *args], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_disk_space_from_declared_size(hub, capsys):
    hub.repos["zzsi/DOVE"].declared_size[BIG] = 10**18  # an exabyte: more than any disk
    code, out, err = run_main(["download-weights", "--yes"], capsys)
    assert code == 2 and "not enough disk space" in err and err.count("\n") == 1
    assert hub.gets() == []


def test_cli_offline_in_fresh_process(hub, env):
    """HF_HUB_OFFLINE set before huggingface_hub is imported, as a user would run it."""
    cmd = [sys.executable, "-m", "dove_cli.cli", "download-weights", "--yes"]
    offline = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=offline, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: offline mode"), proc.stderr
    assert proc.stderr.count("\n") == 1
    weights.download_weights()
    proc = subprocess.run(cmd, env=offline, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "dove upscale in.mp4 -o out.mp4" in proc.stdout


def test_a_download_weights_dir_is_taken_for_its_stage2_and_said(env, tmp_path, caplog):
    """`dove download-weights --dir DIR` writes DIR/stage2/ (or DIR/stage1/): --model DIR finds it, in words."""
    both = tmp_path / "both"
    write_model(both / "stage1")
    stage2 = write_model(both / "stage2")
    with caplog.at_level(logging.INFO, logger="dove_cli.note"):
        assert weights.resolve_model(str(both)) == stage2
    assert f"{both} holds stage2/: using {stage2}" in caplog.text
    only1 = write_model(tmp_path / "only1" / "stage1").parent
    with pytest.raises(ModelError, match=re.escape(f"{only1} holds stage1/: use --model {only1 / 'stage1'}")):
        weights.resolve_model(str(only1))


@pytest.mark.parametrize("endpoint", ["notaurl", "ftp://mirror", "http://"])
@pytest.mark.parametrize("what", [[], ["--metrics"]])
def test_a_malformed_endpoint_is_a_setting_to_fix(env, monkeypatch, capsys, endpoint, what):
    """HF_ENDPOINT=notaurl was "cannot reach notaurl", exit 75 (try again later): a retry never helps."""
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    code, _, err = run_main(["download-weights", "--yes", *what], capsys)
    assert code == 2 and err.startswith(f"error: HF_ENDPOINT={endpoint}: not a hub URL") and err.count("\n") == 1, err


@pytest.mark.parametrize("what", [[], ["--metrics"]])
def test_a_hub_address_that_answers_404_is_a_setting_to_fix(env, monkeypatch, capsys, what):
    """A mirror without the repo, or an address that is no hub, answers a plain 404 (no hub error
    code): it was "try again later", exit 75, which never helps. It names the file and HF_ENDPOINT."""
    with HubServer(not_a_hub=True) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        code, out, err = run_main(["download-weights", "--yes", *what], capsys)
    assert code == 2 and err.count("\n") == 1, (err, out)
    assert err.startswith(f"error: HF_ENDPOINT={server.url} answered 404 (not found) for ")
    assert err.endswith(
        "a mirror that lacks it, or not a hub's address; check HF_ENDPOINT (trying again will not help)\n"
    )
    assert ("alexnet" if what else "zzsi/DOVE") in err


@pytest.mark.parametrize("where", ["dir", "cache"])
def test_a_download_into_a_folder_that_cannot_be_written_is_refused_before_the_hub_is_asked(hub, env, monkeypatch,
                                                                                           where):  # fmt: skip
    """A read-only image or another user's cache was found only after the hub had been asked (and the
    free space of some parent said); now one line names the folder and what to use instead. (Tests run
    as root, who may write anywhere, so the folder is made unwritable by a file standing where a folder
    of its path would be.)"""
    (env / "file").write_text("not a folder\n")
    if where == "cache":
        monkeypatch.setenv("HF_HUB_CACHE", str(env / "file" / "hub"))
    target = env / "file" / "weights" if where == "dir" else env / "file" / "hub"
    with pytest.raises(DownloadError) as err:
        weights.download_weights(dir=target if where == "dir" else None)
    assert str(err.value).startswith(f"cannot write the weights into {target}: {env / 'file'} is not writable"), err
    assert ("HF_HOME" in str(err.value)) == (where == "cache")
    assert hub.log == []  # nothing asked


def test_endpoint_credentials_are_masked_wherever_dove_shows_the_endpoint(hub, env, monkeypatch, capsys):
    """HF_ENDPOINT=https://user:pass@host: the password was printed in error lines and by `dove info`
    (--json too), which farm logs and health checks keep. Shown as `user:***@host`; still used whole."""
    import socket

    with_password = hub.url.replace("http://", "http://alice:s3cretPW@")
    monkeypatch.setenv("HF_ENDPOINT", with_password)
    shown = hub.url.replace("http://", "http://alice:***@")
    code, _, err = run_main(["download-weights", "--yes", "--repo", "nobody/nothing"], capsys)
    assert code == 2 and err.splitlines() == [
        f"error: repo 'nobody/nothing' not found on {shown}: check --repo (owner/name); for a private repo set HF_TOKEN"
    ], err
    code, out, err = run_main(["info", "--json"], capsys)
    assert code == 0 and json.loads(out)["hub"]["endpoint"] == shown and "s3cretPW" not in out + err
    with socket.socket() as s:  # nothing listens there: the metric weights' "cannot be reached"
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", f"http://alice:s3cretPW@{closed}")
    code, _, err = run_main(["download-weights", "--yes", "--metrics"], capsys)
    assert code == 75 and f"http://alice:***@{closed} cannot be reached" in err and "s3cretPW" not in err, err
    monkeypatch.setenv("HF_ENDPOINT", "notaurl://tok@")
    code, _, err = run_main(["download-weights", "--yes"], capsys)
    assert code == 2 and err.startswith("error: HF_ENDPOINT=notaurl://***@: not a hub URL"), err
    monkeypatch.setenv("HF_ENDPOINT", "https://u:se/cret@127.0.0.1:9")  # a `/` typed in the password: malformed
    code, _, err = run_main(["download-weights", "--yes"], capsys)
    assert code == 2 and "HF_ENDPOINT=https://***@127.0.0.1:9: not a hub URL" in err and "cret" not in err, err
    done = subprocess.run([sys.executable, "-m", "dove_cli", "info", "--json"], capture_output=True, text=True,
                          env={**os.environ, "HF_ENDPOINT": "https://u:se/cret@127.0.0.1:9"})  # fmt: skip
    # (a fresh process: huggingface_hub cannot even be imported with it; `dove info` was its traceback)
    assert done.returncode == 0 and json.loads(done.stdout)["hub"]["endpoint"] == "https://***@127.0.0.1:9", done
    assert "cret" not in done.stdout + done.stderr and "Traceback" not in done.stderr, done.stderr
    assert weights.shown_endpoint("https://huggingface.co/") == "https://huggingface.co/"
    assert weights.shown_endpoint("http://h:1/a@b?c@d") == "http://h:1/a@b?c@d"  # an @ after the host is no user


def test_hub_file_names_outside_the_folder_are_refused_and_glob_characters_are_names(hub, env, capsys):
    """A listed `transformer/../../x.json` was a raw ValueError traceback from huggingface_hub; a name with
    `[`, `*` or `?` was passed as a pattern that matched nothing, then "does not match the hub's checksum"."""
    hub.add(FakeRepo("evil/trav", {**model_files(text=False), "transformer/../../../ESCAPED.json": b"{}"}))
    for name in ("transformer/a[1]*?.json", "vae/\x1b[31mRED.json"):
        hub.add(FakeRepo("evil/glob", {**model_files(text=False), name: b'{"x": 1}'}))
        folder = weights.download_weights(repo="evil/glob", dir=env / "g")
        assert (folder / name).read_bytes() == b'{"x": 1}'
    capsys.readouterr()  # (the downloads above: huggingface_hub's own progress on stderr, where it draws it)
    code, _, err = run_main(["download-weights", "--yes", "--repo", "evil/trav", "--dir", str(env / "t")], capsys)
    assert code == 2 and err.splitlines() == [
        "error: evil/trav: the hub lists a file 'transformer/../../../ESCAPED.json': refused: outside the target folder"
    ], err
    assert not (env / "ESCAPED.json").exists() and not [e for e in hub.gets() if "ESCAPED" in e["path"]]
    for name in ("/etc/x.json", "a\\..\\x.json", "C:x.json", "transformer/C:x.json", "vae/..", "../vae/x.json"):
        with pytest.raises(ModelError, match="refused: outside the target folder"):
            weights.check_repo_name(name, "r")
    weights.check_repo_name("vae/a..b.json", "r")  # `..` inside a name is a name
