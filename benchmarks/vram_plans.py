"""The README's "what settings for my GPU" table: `dove upscale --dry-run --vram GIB` plans.

    python benchmarks/vram_plans.py

For each card size and input size (100 frames, x4, the full DOVE architecture sized on the meta
device: no weights, no GPU needed), the plan's windows, work ratio and estimated peak GPU memory;
on the cards the bf16 weights (11.3 GiB) do not fit, also with the options that make room.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg

from dove_cli import upscale

CARDS = (8, 12, 16, 24, 48, 80)
# options planned beside the defaults on small cards (nf4: bitsandbytes' bytes; none of it is loaded)
VARIANTS: dict[int, list[dict[str, str]]] = {
    8: [{"offload": "sequential"}, {"quantize": "nf4"}, {"quantize": "nf4", "offload": "model"}],
    12: [{"offload": "model"}, {"quantize": "nf4"}],
}
INPUTS = {"480p": "854x480", "720p": "1280x720", "1080p": "1920x1080"}


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print("| card | options | input | chunks | tiles (px) | work ratio | est. peak GPU |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in INPUTS.items():
            clip = Path(tmp) / f"{name}.mp4"
            subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                            f"testsrc2=size={size}:rate=24", "-frames:v", "100", "-pix_fmt", "yuv420p", str(clip)],
                           check=True)  # fmt: skip
            for gib in CARDS:
                for extra in [{}, *VARIANTS.get(gib, [])]:
                    plan = upscale(clip, Path(tmp) / "out.mp4", model="full-random", vram=gib, dry_run=True, **extra)
                    tiles = f"{plan.tiles} x {plan.tile}" if plan.tiles > 1 else "whole frame"
                    chunks = f"{plan.chunks} x {plan.chunk}" if plan.chunk else "whole clip"
                    vae = " + VAE tiles" if plan.vae_tiling else ""
                    flags = f"`{' '.join(f'--{k} {v}' for k, v in extra.items())}`" if extra else "-"
                    print(
                        f"| {gib} GiB | {flags} | {name} ({size}) | {chunks} | {tiles}{vae} | {plan.work_ratio:.2f} | "
                        f"{plan.est_peak_device_bytes / 2**30:.1f} GiB |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
