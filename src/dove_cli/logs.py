"""Holding dove's warnings back, to say them once or only when they still matter."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def held_warnings(
    into: list[logging.LogRecord] | Callable[[logging.LogRecord], None], notes: bool = False
) -> Iterator[None]:
    """dove's warnings (and with `notes`, its notes: dove_cli.note) go into `into` (or to `into(record)`)
    instead of being printed; its info lines (-v) pass on. Nested holds: the inner one takes them, and
    `say` hands them on to the outer one."""
    hold = into if callable(into) else into.append

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING or notes and record.name == "dove_cli.note":
                hold(record)
            else:
                logging.getLogger().handle(record)

    logger = logging.getLogger("dove_cli")
    handlers, propagate = logger.handlers, logger.propagate
    logger.handlers, logger.propagate = [Hold()], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def say(records: list[logging.LogRecord]) -> None:
    """Log held records as they would have been logged."""
    for record in records:
        logging.getLogger(record.name).handle(record)


@contextlib.contextmanager
def kept_warnings(into: list[str] | Callable[[], list[str]]) -> Iterator[None]:
    """dove's warnings are printed as usual and their text also added to `into` (a manifest lists
    them), or to the list `into()` gives as each is said (a Ray folder run: the file the saying
    thread works on). Held warnings are added when they are said. Printed as usual: where logging
    is not set up (a script calling the API), Python prints warnings itself (logging.lastResort),
    but only while no handler, this one included, would take them, so this one hands them on to it."""
    logger = logging.getLogger("dove_cli")
    unheard = not logger.hasHandlers()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            (into() if callable(into) else into).append(record.getMessage())
            if unheard and logging.lastResort is not None:
                logging.lastResort.handle(record)

    keep = Keep(logging.WARNING)
    logger.addHandler(keep)
    try:
        yield
    finally:
        logger.removeHandler(keep)
