"""`--manifest run.json`: a JSON sidecar with everything needed to reproduce or report a run."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from fractions import Fraction
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import av
import torch

from dove_cli import __version__, video_io
from dove_cli.engine import Restorer
from dove_cli.errors import OutputError
from dove_cli.options import AUTO, UpscaleOptions
from dove_cli.plan import Plan

if TYPE_CHECKING:
    from dove_cli.upscaling import UpscaleResult


def write_manifest(
    path: Path, input: str | Path, opts: UpscaleOptions, result: UpscaleResult | Plan, model: Restorer, output: Path
) -> None:
    """Options, plan, results and per-stage times, model hashes and versions; written atomically.
    Given a Plan (`--dry-run --manifest`), the manifest holds the plan (with the output the run would
    write) and no result. Options are as asked ("auto" tile/chunk); the plan has the sizes used."""
    plan = result if isinstance(result, Plan) else result.plan
    asked = {k: "auto" if k in ("tile", "chunk") and v == AUTO else v for k, v in asdict(opts).items() if k != "given"}
    doc = {
        "dove": __version__,
        "input": str(Path(input).absolute()),
        "output": str(Path(output).absolute()),
        "options": asked,
        "plan": {k: (str(v) if isinstance(v, Fraction) else v) for k, v in asdict(plan).items()},
        "result": None
        if isinstance(result, Plan)
        else {
            "frames": result.frames,
            "seconds": round(result.seconds, 3),
            "peak_host_bytes": result.peak_host_bytes,
            "peak_device_bytes": result.peak_device_bytes,
            "tile_used": result.tile_used,
            "offload_used": result.offload_used,
            "oom_retries": result.retries,
            "stages_seconds": {k: round(v, 4) for k, v in result.stages.items()},
            "stages_device_seconds": {k: round(v, 4) for k, v in result.device_stages.items()},
        },
        "model": model.fingerprint(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": version("diffusers"),  # not `import diffusers`: 2.6 s, which a run without DOVE never needs
            "av": av.__version__,
            "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
    }
    tmp = path.with_name(f".{path.name}.dove-tmp")
    try:
        video_io.make_folder(path.parent, path)
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        done = "" if isinstance(result, Plan) else "; the video is complete"
        raise OutputError(f"{path}: cannot write the manifest ({exc.strerror}){done}") from None
