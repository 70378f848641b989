"""dove: one-step diffusion video super-resolution (DOVE, NeurIPS 2025)."""

from __future__ import annotations

__version__ = "0.1.0"

from dove_cli.errors import DoveError  # noqa: E402

__all__ = ["DoveError", "__version__", "upscale"]


def upscale(*args, **kwargs):  # noqa: D401 - thin lazy re-export
    """Upscale a video file; see `dove_cli.upscale.upscale` for the options."""
    from dove_cli.upscale import upscale as _upscale

    return _upscale(*args, **kwargs)
