"""The Python API as a program that uses dove as a library sees it (dove_cli/__init__.py): what type
checkers see, the names it exports, a model loaded once for many calls, and its arguments' errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import types
from dataclasses import fields, replace
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
import pytest
import torch

import dove_cli
from conftest import demo_clip
from dove_cli.engine import BilinearModel
from dove_cli.errors import OptionError, OutOfMemory, OutputError
from dove_cli.options import UpscaleKeywords, UpscaleOptions

CLIP = demo_clip("007.mp4")
FAST = dict(scale=1, preview="0+0.2s", codec="ffv1")  # 5 frames, written losslessly

USES_THE_API = """
import dove_cli
from dove_cli import BatchItem, BatchResult, Plan, Progress

def show(p: Progress) -> None:
    print(p.frames_done, p.frames_total, p.status)

def each(index: int, item: BatchItem) -> None:
    print(index, item.status)

r = dove_cli.upscale("in.mp4", "out.mp4", model="bilinear", tile=0, chunk="33", progress=show)
frames: int = r.frames
plan: Plan = dove_cli.upscale("in.mp4", "out.mp4", dry_run=True)
folder: BatchResult = dove_cli.upscale_batch("in", "out", on_file=each, progress=show)
plans: BatchResult = dove_cli.upscale_batch("in", "out", dry_run=True)
model = dove_cli.load_model(model="tiny", device="cpu", progress=show)
dove_cli.upscale("in.mp4", "out.mp4", restorer=model)
left: float | None = Progress(0, 0, "", 0.0).seconds_left

def run(flag: bool) -> None:
    either: dove_cli.UpscaleResult | Plan = dove_cli.upscale("in.mp4", "out.mp4", dry_run=flag)
    batch: BatchResult = dove_cli.upscale_batch("in", "out", dry_run=flag)
"""
MISTAKES = """
import dove_cli

r = dove_cli.upscale("in.mp4", "out.mp4", model="bilinear")
n: str = r.frames
dove_cli.upscale("in.mp4", "out.mp4", tiel=3)
dove_cli.upscale_batch("in", "out", overwirte=True)
dove_cli.upscale(123, None)
"""


def test_type_checkers_see_the_api(tmp_path):
    """The top-level functions were `(input: Any, output: Any, **overrides: Any) -> Any`: mypy --strict
    passed `n: str = result.frames` and a misspelt keyword. Only dove_cli is analysed (torch and the
    rest are skipped), so that this takes seconds."""
    from mypy import api

    (tmp_path / "uses.py").write_text(USES_THE_API)
    (tmp_path / "mistakes.py").write_text(MISTAKES)
    (tmp_path / "mypy.ini").write_text(textwrap.dedent(f"""
        [mypy]
        strict = True
        follow_imports = skip
        mypy_path = {Path(dove_cli.__file__).parents[1]}
        cache_dir = {tmp_path / "cache"}
        [mypy-dove_cli.*]
        follow_imports = silent
        """))  # fmt: skip
    out, err, _ = api.run(["--config-file", str(tmp_path / "mypy.ini"), str(tmp_path / "uses.py"),
                           str(tmp_path / "mistakes.py")])  # fmt: skip
    errors = [line.split(": error: ")[0].rsplit("/", 1)[-1] for line in out.splitlines() if ": error: " in line]
    assert not [e for e in errors if e.startswith("uses.py")], out + err
    assert {"mistakes.py:5", "mistakes.py:6", "mistakes.py:7", "mistakes.py:8"} <= set(errors), out + err
    assert '"tiel"' in out and '"overwirte"' in out and '"int", variable has type "str"' in out


def test_the_typed_marker_is_packaged():
    """Without py.typed (in the wheel: package-data), mypy skips an installed dove_cli altogether."""
    tomllib = pytest.importorskip("tomllib")
    from fnmatch import fnmatch

    assert (Path(dove_cli.__file__).parent / "py.typed").is_file()
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert any(fnmatch("py.typed", p) for p in pyproject["tool"]["setuptools"]["package-data"]["dove_cli"])


def _members(hint: object) -> set[object]:
    return set(get_args(hint)) if get_origin(hint) in (Union, UnionType) else {hint}


def test_the_keywords_type_checkers_see_are_the_options():
    """UpscaleKeywords (the keyword overrides' types) lists every option, each taking at least what its
    UpscaleOptions field holds: an option added to one and not the other fails here."""
    options = get_type_hints(UpscaleOptions)
    keywords = get_type_hints(UpscaleKeywords)
    assert set(keywords) == {f.name for f in fields(UpscaleOptions)} - {"given"}
    for name, hint in keywords.items():
        assert _members(options[name]) <= _members(hint), name


def test_the_callbacks_names_are_exported():
    """Progress (what progress= gets), BatchResult and BatchItem (what upscale_batch returns and
    on_file gets) and load_model are dove_cli's, loaded on first use."""
    from dove_cli import batch, upscaling

    assert dove_cli.Progress is upscaling.Progress and dove_cli.upscale is upscaling.upscale
    assert dove_cli.BatchResult is batch.BatchResult and dove_cli.BatchItem is batch.BatchItem
    assert {"Progress", "BatchResult", "BatchItem", "load_model"} <= set(dove_cli.__all__)
    assert all(getattr(dove_cli, name) is not None for name in dove_cli.__all__)


@pytest.mark.parametrize(
    "call, said",
    [
        (lambda out: dove_cli.upscale(123, out), "input=123: expected a path"),
        (lambda out: dove_cli.upscale(CLIP, None), "output=None: expected a path"),
        (lambda out: dove_cli.upscale_batch(None, out), "in_dir=None: expected a path"),
        (lambda out: dove_cli.upscale_batch(CLIP.parent, 5, dry_run=True), "out_dir=5: expected a path"),
    ],
)
def test_a_file_argument_that_is_no_path_is_one_line(tmp_path, call, said):
    """They were os.fspath's bare TypeError (`expected str, bytes or os.PathLike object, not int`)."""
    with pytest.raises(OptionError) as err:
        call(tmp_path / "out.mp4")
    assert said in str(err.value) and "\n" not in str(err.value)


class DiffusersBeingImported(types.ModuleType):
    """diffusers as it is while its first import runs (seconds): a second thread that asks for a
    class then gets "ImportError: cannot import name ...". It stands in for diffusers, so that two
    loads meet that moment every time, not only in a fresh process that imports diffusers."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__("diffusers")
        self._real, self._importing, self._clash, self._first = real, threading.Lock(), threading.Event(), True

    def __getattr__(self, name: str) -> Any:
        if not self._importing.acquire(blocking=False):
            self._clash.set()
            raise ImportError(f"cannot import name {name!r} from 'diffusers'")
        try:
            if self._first:  # the import itself: time for another thread to ask meanwhile
                self._clash.wait(0.5)
                self._first = False
            value = getattr(self._real, name)
        finally:
            self._importing.release()
        setattr(self, name, value)  # later asks find it, as they find diffusers' imported classes
        return value


def weights(model: Any) -> dict[str, torch.Tensor]:
    return {f"{part}.{k}": v for part in ("transformer", "vae") for k, v in getattr(model, part).state_dict().items()}


def test_two_threads_load_a_random_model_at_once_and_get_the_same_weights(monkeypatch):
    """One of two threads that loaded model="tiny" at once failed with diffusers' ImportError; the
    weights came from torch's global generator, so two loads at once drew each other's numbers. Both
    load now, with the weights that diffusers' own init gives after torch.manual_seed(0)."""
    import diffusers

    from dove_cli.engine import TINY_TRANSFORMER, TINY_VAE

    with torch.random.fork_rng():
        torch.manual_seed(0)
        expected = {
            **{
                f"transformer.{k}": v
                for k, v in diffusers.CogVideoXTransformer3DModel(**TINY_TRANSFORMER).state_dict().items()
            },
            **{f"vae.{k}": v for k, v in diffusers.AutoencoderKLCogVideoX(**TINY_VAE).state_dict().items()},
        }
    monkeypatch.setitem(sys.modules, "diffusers", DiffusersBeingImported(diffusers))
    loaded: dict[int, Any] = {}
    errors: list[str] = []

    def load(i: int) -> None:
        try:
            loaded[i] = dove_cli.load_model(model="tiny")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for model in loaded.values():
        got = weights(model)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_loading_a_random_model_leaves_the_global_random_stream_alone():
    """Loading model="tiny" called torch.manual_seed(0): the host program's random stream started over."""
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    dove_cli.load_model(model="tiny")
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_model_loaded_once_runs_in_many_calls_as_it_was_loaded(tmp_path):
    """load_model() + restorer=: the same output as a call that loads its own model, and the manifest
    says what ran: the restorer's model and device when upscale() was not told them. A model=,
    device= or dtype= that contradicts the restorer was taken silently (the manifest said
    model "tiny" for a bilinear run): refused."""
    model = dove_cli.load_model(model="bilinear")
    assert isinstance(model, BilinearModel)
    own = dove_cli.upscale(CLIP, tmp_path / "own.mkv", model="bilinear", **FAST)
    for name in ("a.mkv", "b.mkv"):
        again = dove_cli.upscale(CLIP, tmp_path / name, restorer=model, manifest=tmp_path / f"{name}.json", **FAST)
        assert again.output.read_bytes() == own.output.read_bytes()  # (ffv1: the same frames, the same bytes)
    options = json.loads((tmp_path / "a.mkv.json").read_text())["options"]
    assert (options["model"], options["device"]) == ("bilinear", "cpu")
    assert json.loads((tmp_path / "a.mkv.json").read_text())["model"] == {"name": "BilinearModel"}

    tiny = dove_cli.load_model(model="tiny", device="cpu", posterior="mode")
    for restorer, wrong, said in [
        (model, dict(model="tiny"), "model='tiny': restorer= is a BilinearModel"),
        (tiny, dict(model="bilinear"), "model='bilinear': restorer= is a DoveModel"),
        (BilinearModel("meta"), dict(device="cpu"), "device='cpu': restorer= is on meta"),
        (tiny, dict(dtype="bf16"), "dtype='bf16': restorer= computes in fp32"),
    ]:
        with pytest.raises(OptionError) as err:
            dove_cli.upscale(CLIP, tmp_path / "x.mkv", restorer=restorer, **FAST, **wrong)
        assert str(err.value).startswith(said) and "dove_cli.load_model(" in str(err.value)
    assert not (tmp_path / "x.mkv").exists()


def test_the_result_says_what_its_figures_cover(tmp_path):
    """peak_host_bytes is the process's high-water mark (documented so: a job after a bigger one
    reports the bigger one's peak); a chunk that covers the whole clip is said as such (was
    "chunk none", as if the option had been dropped)."""
    from dove_cli.timing import peak_host_bytes

    big = np.ones(256 << 17)  # 256 MiB, freed at once: the process's peak stays above what runs next
    del big
    before = peak_host_bytes()
    result = dove_cli.upscale(CLIP, tmp_path / "o.mkv", model="bilinear", tile=0, **FAST)
    assert result.peak_host_bytes >= before > 256 << 20
    whole = replace(result, plan=replace(result.plan, chunk=0)).summary()
    assert "tile whole frame, chunk whole clip, offload none" in whole


def test_a_warning_reaches_a_script_that_set_up_no_logging(tmp_path):
    """fps= on a video is ignored with a warning, as --fps is on the command line; a script without a
    logging set-up saw none: the handler that collects a run's warnings for its manifest stopped
    Python from printing them (logging.lastResort)."""
    script = f"import dove_cli; dove_cli.upscale({str(CLIP)!r}, {str(tmp_path / 'o.mkv')!r}, model='bilinear', fps=24, scale=1, preview='0+0.2s')"  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = (
        "fps is only used for image inputs and bare video streams (.h264, .hevc, .m2v); this video keeps its own timing"
    )
    assert done.stderr.count(said) == 1, done.stderr


# ------------------------------------------------------------------------------ frames in memory


def _frames_with_a_cut(n: int = 12, h: int = 16, w: int = 32, cut: int = 8) -> np.ndarray:
    """Noisy RGB frames whose scene changes at `cut` (dark, then bright), so that a run finds it."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (n, h, w, 3), dtype=np.uint8)
    frames[cut:] += 150
    return frames


def _write_pngs(frames: np.ndarray, folder: Path) -> Path:
    """Frames as a numbered PNG sequence, by ffmpeg (8-bit as rgb24, 16-bit as rgb48): the input
    upscale() reads the same frames from."""
    from media import FFMPEG

    folder.mkdir()
    t, h, w, _ = frames.shape
    raw = "rgb24" if frames.dtype == np.uint8 else "rgb48le"
    cmd = [FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", raw, "-s", f"{w}x{h}", "-i", "-",
           "-pix_fmt", "rgb24" if raw == "rgb24" else "rgb48be", str(folder / "%04d.png")]  # fmt: skip
    subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True)
    return folder / "%04d.png"


def _read_pngs(pattern: Path, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A PNG sequence's frames as ffmpeg decodes them: an array of this shape and dtype."""
    from media import FFMPEG

    raw = "rgb24" if dtype == np.uint8 else "rgb48le"
    cmd = [FFMPEG, "-v", "error", "-i", str(pattern), "-f", "rawvideo", "-pix_fmt", raw, "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, dtype).reshape(shape)


WINDOWS = dict(tile=80, tile_overlap=16, chunk=5, chunk_overlap=2)  # 2 tiles of the 128 px wide output x 3 chunks


@pytest.mark.parametrize("model", ["bilinear", "tiny"])
def test_frames_in_memory_come_back_as_upscale_writes_them_to_images(tmp_path, model):
    """upscale_frames() is upscale()'s run on frames in memory: the same tiles, chunks, blending,
    colour fix and scene cut, so the same pixels as a lossless PNG sequence of the same frames
    gives (a node had to write PNGs to a temporary folder and read them back)."""
    frames = _frames_with_a_cut()
    restorer = dove_cli.load_model(model=model, posterior="mode")
    made = dove_cli.upscale_frames(frames, restorer=restorer, **WINDOWS)
    written = dove_cli.upscale(_write_pngs(frames, tmp_path / "in"), tmp_path / "out" / "%04d.png",
                               restorer=restorer, **WINDOWS)  # fmt: skip
    assert written.plan.tiles == 2 and written.plan.chunks > 1 and written.cuts == [8]
    assert made.shape == (12, 64, 128, 3) and made.dtype == np.uint8
    assert np.array_equal(made, _read_pngs(tmp_path / "out" / "%04d.png", made.shape, np.uint8))


def test_frames_in_memory_keep_their_kind_and_16_bits(tmp_path):
    """Out as in: numpy or torch (on its device), the input's dtype and range. uint16 and float frames
    (ComfyUI's IMAGE: float32 in [0, 1]) run at 16 bits, as upscale() runs a 16-bit PNG sequence."""
    import torch

    codes = _frames_with_a_cut().astype(np.uint16) * 257 + np.arange(12, dtype=np.uint16)[:, None, None, None]
    out16 = tmp_path / "out16" / "%04d.png"  # what upscale() writes from 16-bit PNGs of the same frames
    dove_cli.upscale(_write_pngs(codes, tmp_path / "in16"), out16, model="bilinear", **WINDOWS)
    png16 = _read_pngs(out16, (12, 64, 128, 3), np.uint16)
    statuses: list[str] = []  # (frames in memory have no segments to join: that step was reported)
    made16 = dove_cli.upscale_frames(codes, model="bilinear", progress=lambda p: statuses.append(p.status), **WINDOWS)
    assert np.array_equal(made16, png16) and statuses[-1] == "done" and "joining segments" not in statuses
    floats = ((codes - 0.4).clip(0) / 65535).astype(np.float32)  # between codes: rounded to the nearest
    for given in (floats, torch.from_numpy(floats), floats.astype(np.float16)):
        out = dove_cli.upscale_frames(given, model="bilinear", **WINDOWS)
        assert type(out) is type(given) and out.dtype == given.dtype and tuple(out.shape) == (12, 64, 128, 3)
        values = np.asarray(out, dtype=np.float64)
        assert 0.0 <= values.min() and values.max() <= 1.0
        if given.dtype == np.float16:  # 11 bits: 1/65535 steps do not survive it, but it is no less right
            assert np.abs(values * 65535 - png16).max() <= 65535 / 2**11
        else:
            assert np.array_equal(np.round(values * 65535), png16)
    eight = dove_cli.upscale_frames(torch.from_numpy(_frames_with_a_cut()), model="bilinear", scale=2)
    assert isinstance(eight, torch.Tensor) and eight.dtype == torch.uint8 and eight.shape == (12, 32, 64, 3)


def test_frames_in_memory_plan_counts_the_output_array(tmp_path, monkeypatch):
    """dry_run=True gives upscale()'s Plan for the frames, with the output array they come back in
    counted in the host memory (it was not: 100 float32 frames of 1080p made 4K take 10 GB unplanned);
    a run that would not fit is refused in one line before it allocates that array."""
    import psutil

    from dove_cli.reports import Plan

    floats = _frames_with_a_cut().astype(np.float32) / 255
    plan = dove_cli.upscale_frames(floats, model="bilinear", dry_run=True, **WINDOWS)
    on_file = dove_cli.upscale(_write_pngs(_frames_with_a_cut(), tmp_path / "in"), tmp_path / "out" / "%04d.png",
                               model="bilinear", dry_run=True, **WINDOWS)  # fmt: skip
    assert isinstance(plan, Plan) and (plan.tiles, plan.chunks, plan.output_size) == (2, 3, (64, 128))
    assert plan.est_peak_host_bytes - on_file.est_peak_host_bytes == 12 * 64 * 128 * 3 * 4  # float32 out
    from dove_cli.plan import HOST_MARGIN  # (what a run may need past the machine's memory)

    # a machine on which all but the output array fits (that much was refused before, from the plan without it)
    small = psutil.virtual_memory()._replace(total=int((plan.est_peak_host_bytes - 1000) / HOST_MARGIN))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: small)
    no_swap = psutil.swap_memory()._replace(total=0)
    monkeypatch.setattr(psutil, "swap_memory", lambda: no_swap)
    with pytest.raises(OutOfMemory, match=r"^this run needs about 0\.\d GiB of host memory and this machine has") as e:
        dove_cli.upscale_frames(floats, model="bilinear", **WINDOWS)  # (it was an OptionError, with --chunk)
    assert str(e.value).endswith("a shorter chunk=, a smaller tile= or dtype='bf16' needs less"), e.value


@pytest.mark.parametrize(
    "frames, options, error",
    [
        (np.zeros((2, 16, 16, 3), np.uint8), dict(codec="ffv1"), "codec=: upscale_frames() reads and writes no file"),
        (np.zeros((2, 16, 16, 3), np.uint8), dict(audio="copy"), "audio=: upscale_frames() reads and writes no file"),
        (np.zeros((2, 16, 16, 3), np.uint8), dict(preview="0+1"), "preview=: upscale_frames() reads and writes no"),
        (np.zeros((16, 16, 3), np.uint8), {}, "frames: expected RGB frames shaped [T, H, W, 3], got shape [16, 16, 3]"),
        (np.zeros((2, 16, 16, 4), np.uint8), {}, "frames: expected RGB frames shaped [T, H, W, 3]"),
        (np.zeros((2, 16, 16, 3), np.int64), {}, "frames: dtype int64: expected uint8, uint16 or float (in [0, 1])"),
        (np.zeros((0, 16, 16, 3), np.uint8), {}, "frames: no frames"),
        (np.full((2, 16, 16, 3), np.nan, np.float32), {}, "frames[0]: holds NaN or infinite values"),
        # uint8 frames cast to float, or [-1, 1] ones: clipped, they made a washed-out picture silently
        (
            np.stack([np.zeros((16, 16, 3)), np.full((16, 16, 3), 200.0)]).astype(np.float32),
            {},
            "frames[1]: values from 200 to 200: expected floats in [0, 1]; 0-255 values: divide by 255",
        ),
        (
            np.full((2, 16, 16, 3), -0.5, np.float32),
            {},
            "frames[0]: values from -0.5 to -0.5: expected floats in [0, 1]; -1 to 1 values: (x + 1) / 2",
        ),
        (
            np.full((2, 16, 16, 3), 1.01, np.float32),
            {},
            "frames[0]: values from 1.01 to 1.01: expected floats in [0, 1]",
        ),
    ],
)
def test_frames_in_memory_refuse_what_they_cannot_be_in_one_line(frames, options, error):
    from dove_cli.errors import DoveError

    with pytest.raises(DoveError) as err:
        dove_cli.upscale_frames(frames, model="bilinear", **options)
    assert str(err.value).startswith(error) and "\n" not in str(err.value), err.value


def test_float_frames_may_stray_outside_0_1_by_a_rounding_error():
    """A resampler's or a colour transform's overshoot is no mistake: up to 1/1024 is taken, clipped."""
    frames = np.full((2, 8, 8, 3), 1.0005, np.float32)
    frames[1] = -0.0005
    out = dove_cli.upscale_frames(frames, model="bilinear", scale=1)
    assert out.dtype == np.float32 and out[0].min() == 1.0 and out[1].max() == 0.0


def test_every_option_is_taken_or_refused_by_frames_in_memory():
    """An option added to UpscaleOptions must be decided for frames in memory: one that means
    something only for files (--container and --untagged-matrix came after upscale_frames) is
    refused, not silently ignored."""
    from dataclasses import fields

    from dove_cli.arrays import FILE_ONLY

    taken = {"model", "scale", "device", "dtype", "vram", "offload", "vae_tiling", "quantize", "compile", "attention",
             "posterior", "seed", "download", "tile", "tile_overlap", "chunk", "chunk_overlap", "blend", "pad",
             "parity", "scene_cuts", "color_fix", "fps", "compare", "crop", "size", "given"}  # fmt: skip
    assert {f.name for f in fields(UpscaleOptions)} - taken == set(FILE_ONLY)
    for name in ("container", "untagged_matrix"):
        with pytest.raises(OptionError, match=f"^{name}=: upscale_frames\\(\\) reads and writes no file; "):
            dove_cli.upscale_frames(np.zeros((2, 16, 16, 3), np.uint8), model="bilinear",
                                    **{name: "mp4" if name == "container" else "bt601"})  # fmt: skip


def test_a_cancelled_call_says_what_to_call_again_and_its_saved_work_can_be_dropped(tmp_path, caplog):
    """After a cancel, the warning and Interrupted said "run the same command with --resume": in
    Python that is resume=True. A call cancelled for good had to rmtree OUTPUT.dove-work itself:
    dove_cli.discard_work(output) drops it (refused while a run holds it). Its manifest said "failed"."""
    import logging

    from dove_cli.errors import OutputBusy
    from dove_cli.resume import Work, work_folder
    from media import make_clip

    clip, out = make_clip(tmp_path / "in.mkv", frames=40), tmp_path / "out.mkv"

    class Cancelled(Exception):
        pass

    def stop_after(n: int, error: BaseException):
        def progress(p):
            if p.frames_done >= n:
                raise error

        return progress

    options = dict(model="bilinear", scale=1, codec="ffv1")
    with caplog.at_level(logging.WARNING), pytest.raises(Cancelled):
        dove_cli.upscale(clip, out, progress=stop_after(30, Cancelled()), manifest=tmp_path / "run.json", **options)
    doc = json.loads((tmp_path / "run.json").read_text())  # a stop, as Ctrl-C is (it said "failed", exit code 1)
    assert (doc["status"], doc["exit_code"], doc["error_type"]) == ("interrupted", 130, "Interrupted")
    assert re.search(r"24 finished frames are kept in .*out\.mkv\.dove-work; call upscale\(\) again with resume=True "
                     r"to continue$", caplog.records[-1].getMessage())  # fmt: skip
    with pytest.raises(dove_cli.Interrupted) as err:
        dove_cli.upscale(clip, out, resume=True, progress=stop_after(35, KeyboardInterrupt()), **options)
    assert str(err.value).endswith("; call upscale() again with resume=True to continue"), err.value
    with pytest.raises(dove_cli.DoveError, match=r"dove_cli\.discard_work\(output\) to drop it"):
        dove_cli.upscale(clip, out, **options)  # neither resume= nor overwrite=: what to do, in Python's words
    holder = Work(out)
    holder.lock()  # another run writing that output
    with pytest.raises(OutputBusy):
        dove_cli.discard_work(out)
    holder.release()
    assert dove_cli.discard_work(out) is True and not work_folder(out).exists()
    assert dove_cli.discard_work(out) is False
    assert dove_cli.upscale(clip, out, **options).resumed_from == 0  # a fresh run, without overwrite=


def test_options_built_by_hand_take_text_as_the_keywords_do(tmp_path):
    """UpscaleOptions(tile="auto") (the README says values may be text) was a TypeError from the
    planner, codec_options="crf=18" an AttributeError, tile=1.5 "smaller than the model's block":
    parsed and checked when built, as upscale()'s keywords are, one OptionError line naming it."""
    opts = dove_cli.UpscaleOptions(model="bilinear", tile="auto", chunk="17", codec_options="crf=18", scale="1")
    assert (opts.tile, opts.chunk, opts.codec_options, opts.scale) == (dove_cli.AUTO, 17, {"crf": "18"}, 1)
    assert dove_cli.UpscaleOptions(fps=25).fps == "25"
    plan = dove_cli.upscale(CLIP, tmp_path / "o.mp4", opts, dry_run=True)  # the planner takes them
    assert plan.chunk == 17 and plan.tile >= 0
    for given, said in [
        (dict(tile="bogus"), "tile= must be a number or 'auto', got 'bogus'"),
        (dict(tile=1.5), "tile=1.5: expected a number or 'auto'"),
        (dict(blend="soft"), "blend='soft': expected one of: cosine, hard"),
        (dict(codec_options=5), "codec_options=5: expected dict"),
        (dict(overwrite="yes"), "overwrite='yes': expected bool"),
    ]:
        with pytest.raises(OptionError) as err:
            dove_cli.UpscaleOptions(**given)
        assert str(err.value).startswith(said) and "\n" not in str(err.value), err.value


def test_progress_says_how_far_and_how_long_is_left_as_the_command_line_does(tmp_path, tiny_model_dir):
    """Progress had no fraction or time left, which the command line's lines show ("about 13 s left",
    rate-counted from the first frames done: UpscaleBar says Progress.seconds_left). load_model() had
    no progress at all for the minute real weights take: it says each part before it loads, and raising
    from it stops the loading there."""
    seen: list[dove_cli.Progress] = []
    dove_cli.upscale(CLIP, tmp_path / "o.mkv", model="bilinear", **FAST, progress=seen.append)
    before = [p for p in seen if p.since is None]
    assert before and all(p.seconds_left is None and p.rate is None for p in before)
    running = [p for p in seen if p.status == "upscaling" and p.since is not None and p.frames_done > p.since[1]]
    assert running and all(p.seconds_left is not None and p.seconds_left >= 0 for p in running)
    p = running[0]
    assert p.seconds_left == pytest.approx(
        (p.frames_total - p.frames_done) * (p.seconds - p.since[0]) / (p.frames_done - p.since[1])
    )
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen) and seen[-1].fraction == 1.0
    assert (seen[-1].status, seen[-1].seconds_left) == ("done", 0.0)

    loading: list[dove_cli.Progress] = []
    dove_cli.load_model(model=str(tiny_model_dir), device="cpu", progress=loading.append)
    assert [(p.status, p.window) for p in loading] == [
        ("loading model", w) for w in ("", "transformer", "VAE", "scheduler")
    ]

    class Cancelled(ValueError):  # a ValueError, as diffusers' own errors are: still the caller's, not "cannot load"
        pass

    def cancel_at_the_vae(p: dove_cli.Progress) -> None:
        if p.window == "VAE":
            raise Cancelled

    with pytest.raises(Cancelled):  # as raised
        dove_cli.load_model(model=str(tiny_model_dir), device="cpu", progress=cancel_at_the_vae)
    with pytest.raises(OptionError, match="^progress=3: expected a function"):
        dove_cli.load_model(model="bilinear", progress=3)


def test_the_small_api_types_import_without_torch():
    """`from dove_cli import Progress` (a type hint in a GUI) took 4 s: it imported torch, numpy and
    PyAV. Progress, UpscaleResult and Plan load nothing heavy, and no exported type loads torch."""
    script = textwrap.dedent("""
        import sys
        from dove_cli import DoveError, Interrupted, Plan, Progress, UpscaleResult

        light = sorted(m for m in ("torch", "numpy", "av") if m in sys.modules)
        p = Progress(10, 40, "frames 8-16", 5.0, since=(1.0, 2))
        from dove_cli import AUTO, BatchItem, BatchResult, UpscaleOptions

        print(light, "torch" in sys.modules, p.fraction, p.rate, p.seconds_left)
        """)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "False", "0.25", "2.0", "15.0"]


def test_a_cancel_once_the_output_is_done_leaves_it_done(tmp_path):
    """Raising from progress= at status "done" left the finished output with its work folder and a
    warning to resume, and resume=True was then refused ("already exists"). "done" is said once the
    output is whole and its work folder gone: the exception still comes out, the output is finished."""
    import imageio_ffmpeg

    from dove_cli.resume import work_folder
    from media import make_clip

    clip, out, manifest = make_clip(tmp_path / "in.mkv", frames=30), tmp_path / "out.mkv", tmp_path / "run.json"

    class Cancelled(Exception):
        pass

    def cancel_when_done(p: dove_cli.Progress) -> None:
        if p.status == "done":
            assert out.exists() and not work_folder(out).exists()
            raise Cancelled

    with pytest.raises(Cancelled):
        dove_cli.upscale(
            clip, out, model="bilinear", scale=1, codec="ffv1", progress=cancel_when_done, manifest=manifest
        )
    assert not work_folder(out).exists() and json.loads(manifest.read_text())["status"] == "done"
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 30
    again = dove_cli.upscale(clip, out, model="bilinear", scale=1, codec="ffv1", resume=True)
    assert again.finished_before and again.frames == 0


def test_dir_and_help_show_the_api():
    """dir(dove_cli) showed the helpers the package imports (Any, logging, note) and none of the names
    loaded on first use (upscale, ...): tab completion offered nothing for `dove_cli.up`."""
    import pydoc
    import rlcompleter

    shown = [n for n in dir(dove_cli) if not n.startswith("_")]
    assert set(dove_cli.__all__) - {"__version__"} <= set(shown) and not {"Any", "logging", "note"} & set(shown)
    assert rlcompleter.Completer({"dove_cli": dove_cli}).complete("dove_cli.upscale_b", 0) == "dove_cli.upscale_batch("
    text = pydoc.render_doc(dove_cli, renderer=pydoc.plaintext)
    functions = text[text.index("\nFUNCTIONS\n") : text.index("\nDATA\n")]
    assert all(f"\n    {name}(" in functions for name in ("upscale", "upscale_batch", "upscale_frames", "discard_work"))
    assert "__dir__(" not in functions and "__getattr__(" not in functions  # the module's machinery, not its API


def test_python_messages_give_python_advice(tmp_path):
    """From Python, an existing output said "use --overwrite", a folder run's error "(listed above)"
    where nothing was listed; a `dove` command's say so still."""
    from dove_cli.batch import BatchItem, BatchResult
    from dove_cli.errors import command_line

    out = tmp_path / "out.mkv"
    out.write_bytes(b"")
    with pytest.raises(OutputError, match=r"already exists \(use overwrite=True to replace it\)$"):
        dove_cli.upscale(CLIP, out, model="bilinear", **FAST)
    result = BatchResult([BatchItem(Path("a.mp4"), Path("o/a.mp4"), "failed", exit_code=2),
                          BatchItem(Path("b.mp4"), Path("o/b.mp4"), "done")])  # fmt: skip
    assert str(result.error()) == "1 of 2 files failed (each in BatchResult.failed, with its .error)"
    with command_line():
        assert str(result.error()) == "1 of 2 files failed (listed above)"


def test_an_output_folder_takes_the_inputs_name_as_dove_does(tmp_path):
    """upscale(clip, "out/") was refused ("is a folder; give a file name") where `dove upscale clip -o
    out/` writes out/NAME. A Path cannot end in "/": the error for one without an extension offered
    "a folder (outdir/)", which a Path cannot say."""
    made = dove_cli.upscale(CLIP, f"{tmp_path / 'new'}/", model="bilinear", **FAST).output
    there = dove_cli.upscale(CLIP, tmp_path / "new", model="bilinear", overwrite=True, **FAST).output
    assert made == there == tmp_path / "new" / "007.mp4" and made.is_file()
    with pytest.raises(OutputError) as err:
        dove_cli.upscale(CLIP, tmp_path / "x", model="bilinear", **FAST)
    assert str(err.value).endswith(
        f"or a folder: an existing one, or the text '{tmp_path / 'x'}/' (a Path drops its slash)"
    )
