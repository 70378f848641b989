"""dove: one-step diffusion video super-resolution (DOVE, NeurIPS 2025).

The Python API (README, "Python API"); each name loads its module (and torch) on first use:

    upscale(input, output, ...)          one video, image sequence or image -> UpscaleResult (dry_run=True: Plan)
    upscale_batch(in_dir, out_dir, ...)  every video of a folder -> BatchResult of BatchItem
    upscale_frames(frames, ...)          frames in memory ([T, H, W, 3] numpy or torch) -> frames
    load_model(...)                      a model loaded once, for many calls' restorer=
    discard_work(output)                 drop the saved work of an interrupted run
    UpscaleOptions, AUTO                 the options (the keywords of the calls above)
    Progress                             what a progress= callback is called with
    DoveError, Interrupted               what the calls raise (each kind: dove_cli.errors)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
# What a user is told unless --quiet (the CLI sets its level): a created folder, the weights folder used.
note = logging.getLogger("dove_cli.note")

from dove_cli.errors import DoveError, Interrupted  # noqa: E402

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load on first use (__getattr__)
    from typing_extensions import Unpack

    from dove_cli.batch import BatchItem, BatchResult, upscale_batch
    from dove_cli.engine import Restorer
    from dove_cli.options import AUTO, UpscaleKeywords, UpscaleOptions
    from dove_cli.reports import Plan, Progress, UpscaleResult
    from dove_cli.resume import discard_work
    from dove_cli.upscaling import upscale, upscale_frames

__all__ = [
    "AUTO",
    "BatchItem",
    "BatchResult",
    "DoveError",
    "Interrupted",
    "Plan",
    "Progress",
    "UpscaleOptions",
    "UpscaleResult",
    "__version__",
    "discard_work",
    "load_model",
    "upscale",
    "upscale_batch",
    "upscale_frames",
]
# Importing torch is slow: `dove --help` must not wait. Each name's module, imported when first used.
_LAZY = {
    "BatchItem": "batch",
    "BatchResult": "batch",
    "upscale_batch": "batch",
    "Plan": "reports",
    "UpscaleOptions": "options",
    "Progress": "reports",
    "UpscaleResult": "reports",
    "upscale": "upscaling",
    "upscale_frames": "upscaling",
    "discard_work": "resume",
    "AUTO": "options",
}


def load_model(
    options: UpscaleOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    **overrides: Unpack[UpscaleKeywords],
) -> Restorer:
    """The model of `upscale()`, loaded once, to pass as `upscale(..., restorer=model)` to many calls
    (each call would load it again). It takes the options that choose and place a model (model,
    device, dtype, quantize, offload, compile, attention, posterior, vae_tiling) as upscale() does;
    the calls then run it as loaded (a model=, device= or dtype= that says otherwise is refused).
    `progress` is called with a Progress of status "loading model" as loading starts, and for real
    weights before each part loads (`.window`: "transformer", "VAE", "scheduler"); raising from it
    stops the loading there (the transformer, most of the minute, cannot be stopped part way)."""
    import time

    from dove_cli import models
    from dove_cli.options import check_options, with_overrides
    from dove_cli.reports import Progress, checked_progress

    opts = check_options(with_overrides(options, overrides))
    call = checked_progress(progress)
    device, dtype = models.resolve_device(opts)
    models.check_quantize(opts, device)
    if call is None:
        return models.load_model(opts, device, dtype)
    start = time.perf_counter()

    def say(part: str) -> None:
        call(Progress(0, 0, part, time.perf_counter() - start, "loading model"))

    say("")
    return models.load_model(opts, device, dtype, on_part=say)


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


def __dir__() -> list[str]:
    """The public API (with the lazy names, which are not attributes until used) and the errors
    module, not the helpers this module imports: what `dir()`, `help()` and tab completion show."""
    dunders = (name for name, value in globals().items() if name.startswith("__") and not callable(value))
    return sorted({*__all__, "errors", *dunders})  # (not __dir__ and __getattr__, which help() listed as the API)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"dove_cli.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'dove_cli' has no attribute {name!r}")
