"""Calibrate `dove_cli.engine.estimate_activation_parts` against measured peak memory.

Two measurements of the same calls `DoveModel.restore` makes on one window (`encode`,
`predict_clean`, `decode`; no VAE tiling or slicing; under torch.inference_mode):

1. RSS (the ground truth on this machine): each measurement is a fresh `python` process that
   builds the model part with random weights (the full-size VAE, `FULL_VAE`; the full-width
   transformer, `FULL_TRANSFORMER`, with `num_layers` cut to 1-2: activations are freed layer by
   layer), trims malloc, records RSS, resets the peak-RSS mark (/proc/self/clear_refs), runs the
   pass and reports getrusage ru_maxrss minus that RSS. The CPU flash SDPA kernel
   (memory-efficient, blockwise) is forced for the transformer unless `sdpa` says "math".
2. Live tensor bytes on the meta device (no compute, seconds): a TorchDispatchMode adds up the
   storages that the pass allocates and frees. It sees every op's outputs, not kernels' internal
   buffers (conv workspaces, the math-SDPA attention matrix), so it models flash attention. It is
   checked against (1) where both exist and extends it to what this CPU cannot run: bf16 VAE
   (bf16 conv3d is ~100x slower than fp32 on an AVX2 CPU) and GPU-sized windows (720p).

Units (u): the VAE in bytes / (pixels x block_out_channels[0] x element size), the transformer in
bytes / (tokens x hidden width x element size). `est` is the engine's constant for the stage (for
the encode, the decode's: the estimate takes the larger stage) and `margin` = (est x unit +
engine.WORKSPACE_BYTES) / max(rss, live), the estimate's stage term over the measured peak.
Not captured: the GPU caching allocator's fragmentation, cuDNN / cuBLAS workspaces, CUDA context.

Usage: python benchmarks/calibrate_memory.py [--quick] [--json out.json] [--meta-only]
(full: ~15 min on a 2-core CPU, quick: ~3 min). Needs Linux (ru_maxrss in KiB, clear_refs).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
import weakref

import torch

# part, dtype, frames (pixels, 8k+1), height, width, transformer layers, sdpa backend
QUICK = [
    dict(part="vae_encode", dtype="fp32", frames=9, height=64, width=64),
    dict(part="vae_decode", dtype="fp32", frames=9, height=64, width=64),
    dict(part="transformer", dtype="bf16", frames=9, height=256, width=256, layers=1),
]
FULL = [
    dict(part="vae_encode", dtype="fp32", frames=9, height=64, width=64),
    dict(part="vae_encode", dtype="fp32", frames=9, height=128, width=128),
    dict(part="vae_encode", dtype="fp32", frames=17, height=64, width=64),
    dict(part="vae_decode", dtype="fp32", frames=1, height=128, width=128),
    dict(part="vae_decode", dtype="fp32", frames=9, height=128, width=128),
    dict(part="vae_decode", dtype="fp32", frames=17, height=64, width=64),
    dict(part="vae_decode", dtype="fp32", frames=17, height=128, width=128),
    dict(part="vae_decode", dtype="fp32", frames=33, height=64, width=64),
    dict(part="transformer", dtype="bf16", frames=9, height=256, width=256, layers=1),
    dict(part="transformer", dtype="bf16", frames=9, height=256, width=256, layers=2),
    dict(part="transformer", dtype="bf16", frames=9, height=256, width=256, layers=1, sdpa="math"),
    dict(part="transformer", dtype="bf16", frames=17, height=384, width=384, layers=1),
]
# Meta-device only: what this CPU cannot run (bf16 VAE, GPU-sized windows).
META = [
    *(dict(part=p, dtype=d, frames=f, height=720, width=1280)
      for p in ("vae_encode", "vae_decode") for d in ("fp32", "bf16") for f in (1, 9, 17, 33, 65)),
    *(dict(part="transformer", dtype="bf16", frames=f, height=h, width=w, layers=n)
      for f, h, w in ((9, 256, 256), (33, 720, 1280), (65, 720, 1280)) for n in (1, 2, 4)),
]  # fmt: skip

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build(spec: dict, device: str):
    """A DoveModel whose measured part is full size (random weights) and whose other part is tiny."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel

    from dove_cli import engine

    dtype = DTYPES[spec["dtype"]]
    torch.manual_seed(0)
    with torch.device(device):
        if spec["part"] == "transformer":
            transformer = CogVideoXTransformer3DModel(**{**engine.FULL_TRANSFORMER, "num_layers": spec["layers"]})
            vae = AutoencoderKLCogVideoX(**engine.TINY_VAE)
            emb = engine.packaged_prompt_embedding()
        else:
            transformer = CogVideoXTransformer3DModel(**engine.TINY_TRANSFORMER)
            vae = AutoencoderKLCogVideoX(**engine.FULL_VAE)
            emb = torch.zeros(engine.TINY_TRANSFORMER["max_text_seq_length"], engine.TINY_TRANSFORMER["text_embed_dim"])
    if dtype != torch.float32:
        transformer, vae = engine._cast(transformer, dtype), engine._cast(vae, dtype)
    posterior = "mode" if device == "meta" else "sample"
    model = engine.DoveModel(transformer, vae, CogVideoXDPMScheduler(**engine.SCHEDULER), emb,
                             torch.device(device), dtype, posterior)  # fmt: skip
    model.place("none", vae_tiling=False)
    return model


def make_pass(model, spec: dict, device: str):
    """The input and the call that DoveModel.restore makes for this stage."""
    f, h, w = spec["frames"], spec["height"], spec["width"]
    lat = (1, 16, 1 + (f - 1) // 4, h // 8, w // 8)
    if spec["part"] == "vae_encode":
        x = torch.empty(1, 3, f, h, w, device=device)
        if device != "meta":
            x.uniform_(-1, 1)
        gen = torch.Generator().manual_seed(0) if device != "meta" else None
        return x, lambda: model.encode(x, gen)
    x = torch.randn(lat, dtype=model.dtype) if device != "meta" else torch.empty(lat, dtype=model.dtype, device=device)
    return x, (lambda: model.predict_clean(x)) if spec["part"] == "transformer" else (lambda: model.decode(x))


def sdpa_context(spec: dict):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH if spec.get("sdpa") == "math" else SDPBackend.FLASH_ATTENTION])


def rss_worker(spec: dict) -> dict:
    """Runs in a fresh process: peak RSS of one pass above the RSS after building the model."""
    import ctypes
    import gc
    import resource

    import psutil

    model = build(spec, "cpu")
    x, run = make_pass(model, spec, "cpu")
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed build memory back, so the pass cannot reuse it unseen
    base = psutil.Process().memory_info().rss
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS mark to the current RSS (Linux >= 4.0)
        reset = True
    except OSError:
        reset = False  # then the build's own peak may hide a smaller pass
    t0 = time.perf_counter()
    with torch.inference_mode(), sdpa_context(spec):
        run()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(rss=peak - base, baseline=base, seconds=round(seconds, 1), hwm_reset=reset)


class LiveBytes:
    """Peak bytes of storages allocated by ops run under it (tensors that exist before are skipped)."""

    def __init__(self, existing) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        outer = self
        self.skip = {t.untyped_storage()._cdata for t in existing}
        self.live: dict[int, list] = {}  # storage -> [nbytes, ids of live tensors on it]
        self.cur = self.peak = 0

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor):
                        outer._track(t)
                return out

        self.mode = Mode()

    def _track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = st._cdata
        if key in self.skip:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [st.nbytes(), set()]
            self.cur += entry[0]
            self.peak = max(self.peak, self.cur)
        if id(t) not in entry[1]:
            entry[1].add(id(t))
            weakref.finalize(t, self._drop, key, id(t))

    def _drop(self, key: int, tid: int) -> None:
        entry = self.live.get(key)
        if entry is not None:
            entry[1].discard(tid)
            if not entry[1]:
                self.cur -= entry[0]
                del self.live[key]


def live_peak(spec: dict) -> int:
    model = build(spec, "meta")
    x, run = make_pass(model, spec, "meta")
    existing = [*model.transformer.parameters(), *model.transformer.buffers(), *model.vae.parameters(),
                *model.vae.buffers(), x, model._text]  # fmt: skip
    tracker = LiveBytes(existing)
    with torch.inference_mode(), sdpa_context(spec), tracker.mode:
        run()
    return tracker.peak


def tokens(spec: dict) -> int:
    from dove_cli.engine import FULL_TRANSFORMER as T

    lat = 1 + (spec["frames"] - 1) // 4
    side = 8 * T["patch_size"]  # VAE x patch
    grid = (spec["height"] // side) * (spec["width"] // side)
    return math.ceil(lat / T["patch_size_t"]) * grid + T["max_text_seq_length"]


def unit(spec: dict) -> int:
    from dove_cli.engine import FULL_TRANSFORMER as T

    elt = DTYPES[spec["dtype"]].itemsize
    if spec["part"] == "transformer":
        return tokens(spec) * T["num_attention_heads"] * T["attention_head_dim"] * elt
    return spec["height"] * spec["width"] * 128 * elt  # FULL_VAE keeps the default block_out_channels[0]


def estimate_units(spec: dict) -> float:
    """The engine's constant for this stage, in the same units."""
    from dove_cli import engine

    if spec["part"] == "transformer":
        return engine.TRANSFORMER_BYTES
    return engine.VAE_DECODE_BYTES.get(spec["frames"], engine.VAE_DECODE_BYTES_LONG)  # decode > encode


def describe(spec: dict) -> str:
    extra = ""
    if spec["part"] == "transformer":
        extra = f" L={spec['layers']} " + spec.get("sdpa", "flash")
    return f"{spec['part']:<11} {spec['dtype']} {spec['frames']:>2}x{spec['height']}x{spec['width']}{extra}"


def report(spec: dict, rss: int | None, live: int) -> dict:
    from dove_cli import engine

    u = unit(spec)
    est = estimate_units(spec)
    worst = max(rss or 0, live)
    row = dict(spec, tokens=tokens(spec) if spec["part"] == "transformer" else None,
               rss_mib=None if rss is None else round(rss / 2**20, 1), live_mib=round(live / 2**20, 1),
               rss_units=None if rss is None else round(rss / u, 1), live_units=round(live / u, 1),
               est_units=est, margin=round((est * u + engine.WORKSPACE_BYTES) / worst, 2))  # fmt: skip
    tok = f" T={row['tokens']}" if row["tokens"] else ""
    rss_s = "      -" if rss is None else f"{row['rss_mib']:>8.0f}"
    rss_u = "    -" if rss is None else f"{row['rss_units']:>6.1f}"
    print(f"{describe(spec):<44}{tok:<8} rss {rss_s} MiB ({rss_u}u)  live {row['live_mib']:>8.0f} MiB "
          f"({row['live_units']:>6.1f}u)  est {est:>5}u  margin {row['margin']:.2f}", flush=True)  # fmt: skip
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a subset (~3 min)")
    ap.add_argument("--meta-only", action="store_true", help="skip the RSS runs (seconds)")
    ap.add_argument("--json", help="write all rows to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(rss_worker(json.loads(args.worker))))
        return
    import psutil

    print(f"# {platform.platform()}, {platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}", flush=True)  # fmt: skip
    rows = []
    t0 = time.perf_counter()
    if not args.meta_only:
        print("## RSS (fresh process per row) vs live tensor bytes (meta device)", flush=True)
        for spec in QUICK if args.quick else FULL:
            cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(f"{describe(spec)}: worker failed\n{proc.stderr[-2000:]}", flush=True)
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({**report(spec, res["rss"], live_peak(spec)), "seconds": res["seconds"],
                         "hwm_reset": res["hwm_reset"]})  # fmt: skip
    print("## live tensor bytes only (meta device): bf16 VAE and GPU-sized windows", flush=True)
    for spec in META:
        rows.append(report(spec, None, live_peak(spec)))
    print(f"# total {time.perf_counter() - t0:.0f} s; smallest margin {min(r['margin'] for r in rows):.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
