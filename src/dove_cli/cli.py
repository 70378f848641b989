"""The `dove` command line: parses options, wires the library together, turns errors into messages."""

from __future__ import annotations

import logging
import sys
from typing import Optional

import typer
from rich.console import Console

from dove_cli.errors import DoveError

app = typer.Typer(
    name="dove",
    help="One-step diffusion video super-resolution (DOVE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


# ---------------------------------------------------------------- upscale / bench (owner: main)


# ---------------------------------------------------------------- download-weights / info (owner: weights)


# ---------------------------------------------------------------- train / degrade (owner: train)


# ---------------------------------------------------------------- entry point


def main(argv: Optional[list[str]] = None) -> None:
    """Run the app; a DoveError becomes `error: ...` on stderr and its exit code, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        app(args=argv, standalone_mode=False)
    except DoveError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
