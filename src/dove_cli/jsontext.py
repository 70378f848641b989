"""JSON as dove writes it (manifests, scores, `--json`, a training run's files): its text as itself,
`日本語`, not `\\u65e5\\u672c\\u8a9e`, so that `grep 日本語 run.json` finds a name; json.load reads it back
the same."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any, TextIO

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None,
              to: TextIO | None = None) -> str:  # fmt: skip
    """`value` as JSON text, for UTF-8 (a file: video_io.write_whole, or `encoding="utf-8"`). A lone
    surrogate (a name's byte that is not UTF-8, `\\udce9`) stays an escape, which JSON allows and UTF-8
    cannot hold. `to`: the text stream it is written to (stdout), where one whose encoding is not
    UTF-8 (PYTHONIOENCODING=ascii, a Latin-1 locale) gets every character past ASCII as JSON's escape:
    its own (`\\U0001f389`, raw bytes) would not be JSON."""
    escaped = to is not None and codecs.lookup(getattr(to, "encoding", None) or "ascii").name != "utf-8"
    text = json.dumps(value, ensure_ascii=escaped, indent=indent, default=default)
    return text if escaped else _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
