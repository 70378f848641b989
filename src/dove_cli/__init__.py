"""dove: one-step diffusion video super-resolution (DOVE, NeurIPS 2025)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
# What a user is told unless --quiet (the CLI sets its level): a created folder, the weights folder used.
note = logging.getLogger("dove_cli.note")

from dove_cli.errors import DoveError, Interrupted  # noqa: E402

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load on first use (__getattr__)
    from typing_extensions import Unpack

    from dove_cli.batch import BatchItem, BatchResult, upscale_batch
    from dove_cli.engine import Restorer
    from dove_cli.options import UpscaleKeywords, UpscaleOptions
    from dove_cli.plan import Plan
    from dove_cli.upscaling import Progress, UpscaleResult, upscale

__all__ = [
    "BatchItem",
    "BatchResult",
    "DoveError",
    "Interrupted",
    "Plan",
    "Progress",
    "UpscaleOptions",
    "UpscaleResult",
    "__version__",
    "load_model",
    "upscale",
    "upscale_batch",
]
# Importing torch is slow: `dove --help` must not wait. Each name's module, imported when first used.
_LAZY = {
    "BatchItem": "batch",
    "BatchResult": "batch",
    "upscale_batch": "batch",
    "Plan": "plan",
    "UpscaleOptions": "options",
    "Progress": "upscaling",
    "UpscaleResult": "upscaling",
    "upscale": "upscaling",
}


def load_model(options: UpscaleOptions | None = None, **overrides: Unpack[UpscaleKeywords]) -> Restorer:
    """The model of `upscale()`, loaded once, to pass as `upscale(..., restorer=model)` to many calls
    (each call would load it again). It takes the options that choose and place a model (model,
    device, dtype, quantize, offload, compile, attention, posterior, vae_tiling) as upscale() does;
    the calls then run it as loaded (a model=, device= or dtype= that says otherwise is refused)."""
    from dove_cli import models
    from dove_cli.options import check_options, with_overrides

    opts = check_options(with_overrides(options, overrides))
    device, dtype = models.resolve_device(opts)
    models.check_quantize(opts, device)
    return models.load_model(opts, device, dtype)


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
        import importlib

        return getattr(importlib.import_module(f"dove_cli.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'dove_cli' has no attribute {name!r}")
