"""dove: one-step diffusion video super-resolution (DOVE, NeurIPS 2025)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
# What a user is told unless --quiet (the CLI sets its level): a created folder, the weights folder used.
note = logging.getLogger("dove_cli.note")

from dove_cli.errors import DoveError, Interrupted  # noqa: E402

if TYPE_CHECKING:
    from dove_cli.options import UpscaleOptions
    from dove_cli.plan import Plan
    from dove_cli.upscaling import UpscaleResult

__all__ = [
    "DoveError",
    "Interrupted",
    "Plan",
    "UpscaleOptions",
    "UpscaleResult",
    "__version__",
    "upscale",
    "upscale_batch",
]
_LAZY = ("Plan", "UpscaleOptions", "UpscaleResult")  # importing torch is slow: `dove --help` must not wait


def upscale(input: Any, output: Any, options: UpscaleOptions | None = None, **overrides: Any) -> Any:
    """Upscale a video file or image sequence; `UpscaleOptions` lists every option (see dove_cli.options)."""
    from dove_cli.upscaling import upscale as run

    return run(input, output, options, **overrides)


def upscale_batch(in_dir: Any, out_dir: Any, options: UpscaleOptions | None = None, *, dry_run: bool = False,
                  **overrides: Any) -> Any:  # fmt: skip
    """Upscale every video of a folder, as `dove upscale DIR -o DIR`: a BatchResult, an item per file
    (a file that fails is recorded and the rest go on); `dry_run` gives each file's plan instead."""
    from dove_cli import batch

    if dry_run:
        return batch.dry_run_batch(in_dir, out_dir, options, **overrides)
    return batch.upscale_batch(in_dir, out_dir, options, **overrides)


def console_main() -> None:
    """The `dove` command. Ctrl-C while its modules load (torch, numpy: the first half second) is the
    same quiet `interrupted` and exit 130 as later, not an import traceback."""
    import sys

    try:
        from dove_cli.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    main()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from dove_cli import options, plan, upscaling

        return getattr({"Plan": plan, "UpscaleOptions": options}.get(name, upscaling), name)
    raise AttributeError(f"module 'dove_cli' has no attribute {name!r}")
