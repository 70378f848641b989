"""Hash `dove upscale` outputs over a matrix of options, to show that a refactor changes no byte.

    python benchmarks/output_hashes.py > before.json   # on the old code
    python benchmarks/output_hashes.py > after.json    # on the new code
    diff before.json after.json                        # empty: identical outputs

Runs on the CPU with `--model bilinear` and `--model tiny` (the real DOVE code path on a tiny
random model) on the demo clips in tests/data/demo. Each case prints the sha256 of the output file
(of every file for an image pattern) and of its decoded frames (ffmpeg framemd5), so a container
detail and a pixel change are told apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio_ffmpeg

DEMO = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo"

CASES: dict[str, tuple[str, str, list[str]]] = {
    # name: (clip, output name, options)
    "bilinear-default": ("003.mp4", "out.mp4", ["--model", "bilinear"]),
    "bilinear-png": ("007.mp4", "frames/%04d.png", ["--model", "bilinear", "--preview", "0+0.5s"]),
    "bilinear-ffv1-10bit": (
        "002.mp4",
        "out.mkv",
        ["--model", "bilinear", "--codec", "ffv1", "--pix-fmt", "yuv444p10le"],
    ),
    "bilinear-compare-tiles": (
        "001.mp4",
        "out.mp4",
        ["--model", "bilinear", "--tile", "256", "--tile-overlap", "32", "--chunk", "17", "--compare"],
    ),
    "tiny-default": ("003.mp4", "out.mp4", ["--model", "tiny", "--scale", "2"]),
    "tiny-tiles-chunks": (
        "002.mp4",
        "out.mp4",
        [
            "--model",
            "tiny",
            "--tile",
            "128",
            "--tile-overlap",
            "32",
            "--chunk",
            "9",
            "--chunk-overlap",
            "4",
            "--scale",
            "2",
        ],
    ),
    "tiny-release-like": (
        "007.mp4",
        "out.mp4",
        [
            "--model",
            "tiny",
            "--blend",
            "hard",
            "--pad",
            "zero",
            "--color-fix",
            "none",
            "--posterior",
            "mode",
            "--chunk",
            "17",
            "--tile",
            "256",
            "--tile-overlap",
            "64",
        ],
    ),
    "tiny-adain-preview": (
        "005.mp4",
        "out.mp4",
        ["--model", "tiny", "--color-fix", "adain", "--preview", "1+1.5s", "--scale", "2"],
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frames_md5(path: Path) -> str:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    out = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [ln for ln in out.splitlines() if not ln.startswith("#")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def run_case(name: str, clip: str, out_name: str, options: list[str], tmp: Path) -> dict[str, str]:
    out = tmp / name / out_name
    cmd = [
        sys.executable,
        "-m",
        "dove_cli.cli",
        "upscale",
        str(DEMO / clip),
        "-o",
        str(out),
        "-q",
        "--device",
        "cpu",
        *options,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    if "%" in out_name:
        files = sorted(out.parent.iterdir())
        return {
            "files": str(len(files)),
            "sha256": hashlib.sha256(b"".join(sha256(f).encode() for f in files)).hexdigest(),
        }
    return {"sha256": sha256(out), "frames": frames_md5(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", metavar="CASE", help=f"only these cases (default: all): {', '.join(CASES)}")
    only = set(ap.parse_args().cases)
    with tempfile.TemporaryDirectory(prefix="dove-hashes-") as tmp:
        result = {name: run_case(name, *case, Path(tmp)) for name, case in CASES.items() if not only or name in only}
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
