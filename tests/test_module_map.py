"""notes/MODULES.md has a row for every module of the package, and no row for one that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "dove_cli"


def _modules() -> set[str]:
    """Each module as its row names it: `geometry.py`, `video_io/reader.py`, a package as `video_io/`."""
    names = set()
    for file in PACKAGE.rglob("*.py"):
        name = file.relative_to(PACKAGE).as_posix()
        names.add(name[: -len("__init__.py")] if name.endswith("/__init__.py") else name)
    return names


def _rows() -> set[str]:
    """The first cell of each table row of notes/MODULES.md (the module named in backquotes)."""
    text = (ROOT / "notes" / "MODULES.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))


def test_every_module_has_a_row_in_the_module_map() -> None:
    modules, rows = _modules(), _rows()
    assert not modules - rows, f"add a row to notes/MODULES.md for: {sorted(modules - rows)}"
    assert not rows - modules, f"notes/MODULES.md names modules that are gone: {sorted(rows - modules)}"
