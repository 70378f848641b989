"""Run the authors' own `inference_script.py`, unmodified, and `dove upscale --parity` on the same
tiny random weights and the same lossless input, and compare their 8-bit outputs frame by frame.

tests/test_parity.py re-derives the authors' computation; this runs theirs. Their script is read
from a checkout you pass (`--authors-repo`, github.com/zhengchen1999/DOVE), never copied here.

What is set up around it (input/output only, never the math):
- the model: dove's tiny random DOVE saved as a diffusers CogVideoXPipeline folder, which their
  `CogVideoXPipeline.from_pretrained` and `dove upscale --model DIR` both load. CogVideoXPipeline
  has no optional components, so the folder also holds a tiny random T5 encoder and a word-level
  tokenizer; neither runs: the empty-prompt embedding their script looks for in
  `pretrained_models/prompt_embeddings/` (the run's cwd) is the tiny model's, the one dove uses,
  and the harness checks that their script says it loaded it;
- modules their script imports but that cannot be installed here, as stand-ins in `sys.modules`:
  torchvision (`transforms.Compose`/`Lambda` as torchvision defines them; `ToTensor` and
  `io.write_video` are only used for metrics and video output and fail if called), pyiqa (only
  for `--eval_metrics`), imageio (only for video output; `--png_save` is used) and decord, whose
  `VideoReader.get_batch` is given by PyAV: uint8 RGB frames [F, H, W, C] as a torch tensor,
  what decord returns with the torch bridge. The input is lossless RGB (libx264rgb, qp 0), so
  both tools read the same values;
- no GPU: their `pipe.to("cuda")` is sent to the CPU (the pipeline's `to` with the device renamed);
- the same number of CPU threads for both (float sums depend on it).

Cases: each `--size` whole (one window: dove's `--posterior sample --seed 42` must be identical),
and `--tiled-size` with their tiles and chunks. Their script samples the VAE posterior from the
global stream seeded once (`set_seed`), dove from a generator re-seeded for every window, so only
the first window is the same draw (its region must be identical). The tiled case is then run on a
copy of the weights whose encoder gives the posterior the smallest variance diffusers allows
(log-variance at its clamp, -30: std 3e-7), against dove's `--posterior mode`: the layout and cut
without the draws (must be within 1 level: in fp32 the draws still flip a truncation now and then,
as the control row, dove's sample against its mode, shows; in bf16 they vanish).

Usage: python benchmarks/authors_script_parity.py --authors-repo PATH [--size 40x24 50x30]
[--frames 6] [--tiled-size 40x24] [--tiled-frames 13] [--tile 64 --tile-overlap 32 --chunk 8
--chunk-overlap 4] [--dtype float32] [--workdir DIR]  (about 4 minutes on a 2-core CPU; exit 1
when a row that must agree does not)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "data" / "demo"
EMPTY_PROMPT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of ""
LOADED_EMBEDDING = "Loaded empty prompt embedding"  # what their script prints when it skips the text encoder
RUN_AUTHORS = "--run-authors-script"  # internal: this file, in a subprocess, runs their script


# ------------------------------------------------------------------ the stand-ins (subprocess side)


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _unused(what: str) -> Any:
    def fail(*_: Any, **__: Any) -> None:
        raise RuntimeError(f"{what} is a stand-in of the parity harness: not on the path it runs")

    return fail


def install_stand_ins() -> None:
    """Modules their script imports that are not installed here; only what it calls on this path works."""
    import av
    import torch
    from diffusers import DiffusionPipeline

    class Compose:  # torchvision.transforms.Compose
        def __init__(self, transforms: list) -> None:
            self.transforms = transforms

        def __call__(self, x: Any) -> Any:
            for t in self.transforms:
                x = t(x)
            return x

    class Lambda:  # torchvision.transforms.Lambda
        def __init__(self, fn: Any) -> None:
            self.fn = fn

        def __call__(self, x: Any) -> Any:
            return self.fn(x)

    class ToTensor:  # built at import time; used only to read ground truth for metrics
        __call__ = _unused("torchvision.transforms.ToTensor")

    class VideoReader:  # decord.VideoReader with the torch bridge: frames [F, H, W, C] uint8
        def __init__(self, uri: str, **_: Any) -> None:
            with av.open(uri) as f:
                self.frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]

        def __len__(self) -> int:
            return len(self.frames)

        def get_batch(self, indices: list[int]) -> torch.Tensor:
            return torch.from_numpy(np.stack([self.frames[i] for i in indices]))

    def set_bridge(name: str) -> None:
        assert name == "torch", name

    transforms = _module("torchvision.transforms", Compose=Compose, Lambda=Lambda, ToTensor=ToTensor)
    io = _module("torchvision.io", write_video=_unused("torchvision.io.write_video"))
    _module("torchvision", transforms=transforms, io=io)
    _module("pyiqa", create_metric=_unused("pyiqa.create_metric"))
    v3 = _module("imageio.v3", imwrite=_unused("imageio.v3.imwrite"))
    _module("imageio", v3=v3)
    _module("decord", VideoReader=VideoReader, bridge=types.SimpleNamespace(set_bridge=set_bridge))

    pipeline: Any = DiffusionPipeline
    to = pipeline.to

    def to_cpu(self: Any, *args: Any, **kwargs: Any) -> Any:
        """`pipe.to("cuda")` on a machine without one: the same call, to the CPU."""
        args = tuple("cpu" if a == "cuda" else a for a in args)
        return to(self, *args, **kwargs)

    pipeline.to = to_cpu


def run_authors_script(script: str, argv: list[str]) -> None:
    """Their file as `python inference_script.py ARGS` would run it, with the stand-ins in place."""
    import runpy

    install_stand_ins()
    sys.argv = [script, *argv]
    sys.path.insert(0, str(Path(script).parent))
    runpy.run_path(script, run_name="__main__")


# ------------------------------------------------------------------ the model folder and the input


def save_model(folder: Path, *, low_variance: bool = False) -> Path:
    """dove's tiny random DOVE as a CogVideoXPipeline folder (plus dove's prompt_embedding.safetensors).

    low_variance: the VAE encoder's log-variance channels set to -100 (clamped to -30 by diffusers),
    so that a posterior sample is its mode up to std 3e-7."""
    import torch
    from diffusers import CogVideoXPipeline
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    from dove_cli.engine import build_random, save_pretrained

    model = build_random("tiny", seed=0)
    if low_variance:
        conv = model.vae.encoder.conv_out.conv
        half = conv.out_channels // 2
        with torch.no_grad():
            conv.weight[half:] = 0
            conv.bias[half:] = -100
    save_pretrained(model, folder)  # transformer/, vae/, scheduler/, prompt_embedding.safetensors
    cfg = model.transformer.config
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(vocab), d_model=cfg.text_embed_dim, d_kv=8, d_ff=16, num_layers=1, num_heads=2)
    )
    pipe: Any = CogVideoXPipeline(tokenizer, text_encoder, model.vae, model.transformer, model.scheduler)
    tokenizer.save_pretrained(folder / "tokenizer")
    text_encoder.save_pretrained(folder / "text_encoder")
    pipe.save_config(folder)  # model_index.json
    return folder


def ffmpeg(*args: object) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def write_input(path: Path, size: tuple[int, int], frames: int) -> Path:
    """The first frames of demo clip 001 scaled to size (w, h), stored as lossless RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    ffmpeg("-i", DEMO / "001.mp4", "-frames:v", frames, "-vf", f"scale={w}:{h}", "-c:v", "libx264rgb", "-qp", 0,
           "-pix_fmt", "rgb24", path)  # fmt: skip
    return path


def read_pngs(folder: Path) -> np.ndarray:
    """[F, H, W, 3] uint8 from the PNGs of a folder, in name order."""
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"{folder}: no PNG written")
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


# ------------------------------------------------------------------ the two runs


@dataclass(frozen=True)
class Layout:
    tile: int = 0
    tile_overlap: int = 32
    chunk: int = 0
    chunk_overlap: int = 8

    def theirs(self) -> list[str]:
        """Their options; none for a whole window (as their README runs it)."""
        tile = ["--tile_size_hw", *[str(self.tile)] * 2, "--overlap_hw", *[str(self.tile_overlap)] * 2]
        chunk = ["--chunk_len", str(self.chunk), "--overlap_t", str(self.chunk_overlap)]
        return (tile if self.tile else []) + (chunk if self.chunk else [])

    def dove(self) -> list[str]:
        """dove's options; none for a whole window (--parity's default)."""
        tile = ["--tile", str(self.tile), "--tile-overlap", str(self.tile_overlap)]
        chunk = ["--chunk", str(self.chunk), "--chunk-overlap", str(self.chunk_overlap)]
        return (tile if self.tile else []) + (chunk if self.chunk else [])


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # their --dtype: dove's


def run_theirs(
    script: Path, model: Path, video: Path, work: Path, layout: Layout, dtype: str, env: dict[str, str]
) -> np.ndarray:
    """Their script in a fresh interpreter, cwd = work (with their empty-prompt embedding file)."""
    from safetensors.torch import load_file, save_file

    emb = load_file(str(model / "prompt_embedding.safetensors"))["prompt_embedding"]
    target = work / "pretrained_models" / "prompt_embeddings" / f"{EMPTY_PROMPT}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file({"prompt_embedding": emb[None].contiguous()}, str(target))  # [1, seq, dim], as the release's file
    out = work / "theirs"
    argv = ["--input_dir", str(video.parent), "--model_path", str(model), "--output_path", str(out),
            "--dtype", dtype, "--seed", "42", "--is_vae_st", "--png_save", *layout.theirs()]  # fmt: skip
    log = _run([sys.executable, __file__, RUN_AUTHORS, str(script), *argv], work, env, "their script")
    (work / "their-script.log").write_text(log)
    if LOADED_EMBEDDING not in log:
        raise SystemExit(f"their script did not load {target} (it would run the stand-in text encoder):\n{log}")
    return read_pngs(out / video.stem)


def run_dove(
    model: Path, video: Path, out: Path, layout: Layout, posterior: str, dtype: str, env: dict[str, str]
) -> np.ndarray:
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "dove_cli.cli", "upscale", str(video), "-o", str(out / "%06d.png"), "--model",
           str(model), "--parity", "--device", "cpu", "--dtype", DTYPES[dtype], "--posterior", posterior, "--seed", "42",
           "-q", *layout.dove()]  # fmt: skip
    _run(cmd, out, env, f"dove upscale ({' '.join(cmd[3:])})")
    return read_pngs(out)


# ------------------------------------------------------------------ comparison


@dataclass
class Row:
    case: str
    compared: str
    frames: int
    size: str
    max_diff: int  # 8-bit levels
    differing: int  # values (frames x rows x columns x 3)
    psnr: float
    allowed: int | None  # the largest difference that passes; None: for information

    @property
    def passed(self) -> bool:
        return self.allowed is None or self.max_diff <= self.allowed


def compare(case: str, compared: str, ours: np.ndarray, theirs: np.ndarray, allowed: int | None) -> Row:
    if ours.shape != theirs.shape:
        raise SystemExit(f"{case}, {compared}: dove wrote {ours.shape}, their script {theirs.shape}")
    d = ours.astype(np.int16) - theirs.astype(np.int16)
    mse = float(np.mean(d.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    f, h, w, _ = ours.shape
    return Row(case, compared, f, f"{w}x{h}", int(np.abs(d).max()), int(np.count_nonzero(d)), psnr, allowed)


def first_window(layout: Layout, frames: int, size: tuple[int, int]) -> tuple[slice, slice, slice]:
    """Output frames, rows and columns their script takes from its first window (dove's
    release_layout, checked against their script by the low-variance row)."""
    from dove_cli.release_layout import padded_lq_size, release_chunks, release_tiles, time_pad, valid_cut

    (hp, wp), padded = padded_lq_size(size[1], size[0]), frames + time_pad(frames)
    cuts = []
    for spans, length, overlap in (
        (
            release_chunks(padded, layout.chunk, layout.chunk_overlap),
            padded,
            layout.chunk_overlap if layout.chunk else 0,
        ),
        (release_tiles(4 * hp, layout.tile, layout.tile_overlap), 4 * hp, layout.tile_overlap if layout.tile else 0),
        (release_tiles(4 * wp, layout.tile, layout.tile_overlap), 4 * wp, layout.tile_overlap if layout.tile else 0),
    ):
        lo, hi = valid_cut(spans[0], length, overlap)
        cuts.append(slice(lo, hi))  # the first window starts at 0: its cut is in output positions
    return cuts[0], cuts[1], cuts[2]


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'case':34s} {'dove side':40s} {'frames':>6s} {'output':>8s} {'max':>4s} {'differ':>8s} {'PSNR':>6s}  result"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        psnr = "inf" if r.max_diff == 0 else f"{r.psnr:.1f}"
        verdict = "identical" if r.max_diff == 0 else f"differs by {r.max_diff}"
        if r.allowed is not None:
            verdict += f" (must be {'identical' if r.allowed == 0 else f'<= {r.allowed}'}: " + (
                "ok)" if r.passed else "FAILED)"
            )
        print(
            f"{r.case:34s} {r.compared:40s} {r.frames:6d} {r.size:>8s} {r.max_diff:4d} {r.differing:8d} {psnr:>6s}  {verdict}"
        )


def size_arg(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, e.g. 40x24")
    return int(m[1]), int(m[2])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--authors-repo", type=Path, required=True, help="a checkout of zhengchen1999/DOVE")
    ap.add_argument("--size", type=size_arg, nargs="+", default=[(40, 24), (50, 30)], help="whole-video cases (LQ)")
    ap.add_argument("--frames", type=int, default=6, help="frames of the whole-video cases")
    ap.add_argument("--tiled-size", type=size_arg, default=(40, 24), help="LQ size of the tiled case")
    ap.add_argument("--tiled-frames", type=int, default=13)
    ap.add_argument("--tile", type=int, default=64, help="their --tile_size_hw N N (0: no tiled case)")
    ap.add_argument("--tile-overlap", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=8, help="their --chunk_len")
    ap.add_argument("--chunk-overlap", type=int, default=4, help="their --overlap_t")
    ap.add_argument("--dtype", choices=list(DTYPES), default="float32", help="their --dtype (dove: the same)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for both (OMP_NUM_THREADS)")
    ap.add_argument("--workdir", type=Path, help="keep the models, inputs and outputs here (default: a temp dir)")
    args = ap.parse_args(argv)
    script = args.authors_repo.expanduser() / "inference_script.py"
    if not script.is_file():
        ap.exit(2, f"--authors-repo {args.authors_repo}: no inference_script.py there (a DOVE checkout?)\n")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="authors-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
    print(f"work folder: {work}; --dtype {args.dtype}, {args.threads} threads", flush=True)
    model = save_model(work / "model-tiny")
    cases: list[tuple[str, tuple[int, int], int, Layout, bool]] = [
        (f"{w}x{h}, whole video", (w, h), args.frames, Layout(), False) for w, h in args.size
    ]
    tiled = Layout(args.tile, args.tile_overlap, args.chunk, args.chunk_overlap)
    if args.tile:
        w, h = args.tiled_size
        name = f"{w}x{h}, tiles {tiled.tile}/{tiled.tile_overlap} chunks {tiled.chunk}/{tiled.chunk_overlap}"
        cases.append((name, args.tiled_size, args.tiled_frames, tiled, True))
    rows: list[Row] = []
    for i, (name, size, frames, layout, many_windows) in enumerate(cases):
        case_dir = work / f"case{i}"
        video = write_input(case_dir / "input" / "clip.mkv", size, frames)
        theirs = run_theirs(script, model, video, case_dir, layout, args.dtype, env)
        sample = run_dove(model, video, case_dir / "dove-sample", layout, "sample", args.dtype, env)
        mode = run_dove(model, video, case_dir / "dove-mode", layout, "mode", args.dtype, env)
        new = [compare(name, "--posterior sample --seed 42", sample, theirs, None if many_windows else 0)]
        if many_windows:  # the draws agree on the first window only
            t, y, x = first_window(layout, frames, size)
            new.append(compare(name, "  the same, first window's region only", sample[t, y, x], theirs[t, y, x], 0))
        new.append(compare(name, "--posterior mode (the draws' effect)", mode, theirs, None))
        if many_windows:  # the layout and cut, with draws of std 3e-7
            low = save_model(case_dir / "model-low-variance", low_variance=True)
            low_dir = case_dir / "low-variance"
            theirs_low = run_theirs(script, low, video, low_dir, layout, args.dtype, env)
            mode_low = run_dove(low, video, low_dir / "dove-mode", layout, "mode", args.dtype, env)
            sample_low = run_dove(low, video, low_dir / "dove-sample", layout, "sample", args.dtype, env)
            new.append(compare(name, "posterior std 3e-7: --posterior mode", mode_low, theirs_low, 1))
            new.append(compare(name, "  control: dove sample against dove mode", sample_low, mode_low, None))
        print_table(new)
        print(flush=True)
        rows += new
    print("all cases:")
    print_table(rows)
    (work / "results.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == RUN_AUTHORS:
        run_authors_script(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(main())
