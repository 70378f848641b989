"""The Python API as a program that uses dove as a library sees it (dove_cli/__init__.py): what type
checkers see, the names it exports, a model loaded once for many calls, and its arguments' errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import fields, replace
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints

import numpy as np
import pytest

import dove_cli
from conftest import demo_clip
from dove_cli.engine import BilinearModel
from dove_cli.errors import OptionError
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
model = dove_cli.load_model(model="tiny", device="cpu")
dove_cli.upscale("in.mp4", "out.mp4", restorer=model)

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
    assert done.stderr.count("fps is only used for image inputs; the video keeps its own timing") == 1, done.stderr
