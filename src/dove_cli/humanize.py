"""Numbers and names as a person reads them: sizes, durations, estimates with their spread, and file
names as they were written."""

from __future__ import annotations

import codecs
import math
import os
import re
import sys
import unicodedata
from datetime import UTC, datetime
from typing import Any

ESTIMATE_RANGE = (0.6, 1.8)  # time estimates (speed.py): the real time fell in this range in calibration runs


def human_size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes} B"  # unreachable


def counted(n: int, noun: str) -> str:
    """'1 frame', '0 frames', '12 frames': a count with its noun (a regular plural)."""
    return f"{n} {noun}{'s' * (n != 1)}"


def turn_text(rotation: int, mirrored: bool) -> str:
    """A display matrix in words: `90 degrees`, `90 degrees, mirrored`, `mirrored`."""
    return ", ".join([f"{rotation} degrees"] * bool(rotation) + ["mirrored"] * mirrored)


DAYS_FROM_SECONDS = 48 * 3600  # from here on a duration is said in days, from a year on in years
YEAR_SECONDS = 365.25 * 86400


def human_duration(seconds: float) -> str:
    """3725 -> '1 h 2 min', 95 -> '1 min 35 s', 8.2 -> '8 s'; from 48 h on in days or years to two
    figures ('3.5 days', '37 years'): an estimate spread over 0.6x to 1.8x has no more."""
    if seconds >= DAYS_FROM_SECONDS:
        value, unit = (seconds / YEAR_SECONDS, "year") if seconds >= YEAR_SECONDS else (seconds / 86400, "day")
        value = round(value, 1 - math.floor(math.log10(value)))  # two significant figures
        text = f"{value:,.0f}" if value >= 10 else f"{value:g}"
        return f"{text} {unit}{'s' * (text != '1')}"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s" if s < 600 else f"{s // 60} min"
    return f"{max(seconds, 0):.0f} s" if seconds >= 1 else f"{max(seconds, 0):.1f} s"


def human_range(seconds: float) -> str:
    """An estimate as a person reads it, with its calibrated spread: 'about 4 min (2 min 30 s to 7 min)'."""
    lo, hi = ESTIMATE_RANGE
    low, high = human_duration(seconds * lo), human_duration(seconds * hi)
    if low.endswith((" days", " years")) and low.split()[1] == high.split()[1]:  # '22 to 67 years'
        low = low.split()[0]
    return f"about {human_duration(seconds)} ({low} to {high})"


def busy_note() -> str:
    """Said beside a CPU time estimate when the machine is busy now (1-minute load average above its
    CPU count): other jobs then take turns with the run, so its time can fall outside ESTIMATE_RANGE
    (3x between two identical dry runs at load 3-7 on 2 CPUs). "" when it is not busy, or where the
    OS gives no load average."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has none
        return ""
    cpus = os.cpu_count() or 1
    if load <= cpus:
        return ""
    return f"this machine is busy (load {load:.1f} on {cpus} CPU{'s' * (cpus != 1)}): the estimate may be off by more"


def gpu_of(gib: float) -> str:
    """'a 24 GiB GPU', 'an 8 GiB GPU' (as the number is said: eight, eleven, eighteen, eighty)."""
    size = f"{gib:g}"
    article = "an" if re.match(r"8|1[18](\D|$)", size) else "a"
    return f"{article} {size} GiB GPU"


def real_text(text: str) -> str:
    """`text` (from a name or an argument the locale decoded) with the name as it was written where it
    is UTF-8: an ASCII locale (LC_ALL=C) gave each byte past ASCII as a surrogate escape (`\\udce5`), a
    one-byte locale (Latin-1) UTF-8's bytes one by one (`cafÃ©`). Bytes that are not UTF-8 stay as the
    locale gave them; text no locale decoding made (a tag PyAV read as UTF-8) is returned as it is."""
    codec = sys.getfilesystemencoding()
    try:
        raw = text.encode(codec, "surrogateescape")
    except UnicodeEncodeError:  # a character the locale has no byte for: not decoded from bytes by it
        return text
    if codecs.lookup(codec).name in ("utf-8", "ascii"):  # bytes past ASCII: themselves, or escapes
        return raw.decode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")  # (Latin-1 text that is also valid UTF-8, `Ã©`, is rare: a name's mojibake)
    except UnicodeDecodeError:
        return text


def one_name(name: str) -> str:
    """`name` as macOS (APFS, HFS+, an SMB share) and Windows compare file names: case and Unicode
    normalization folded, so `Café` written by Linux (NFC, é) and `café` by a Mac (NFD, e + U+0301) are one."""
    return unicodedata.normalize("NFC", real_text(name)).casefold()


def spelled(name: str) -> str:
    """`name` with its combining marks as escapes, and which Unicode normalization it is in: two
    spellings of `café` (NFC é, a Mac's NFD e + U+0301) print alike, and a line naming both must show
    them apart: `café (NFC)`, `cafe\\u0301 (NFD)`."""
    form = next((f for f in ("NFC", "NFD") if unicodedata.is_normalized(f, name)), "mixed")
    return "".join(f"\\u{ord(c):04x}" if unicodedata.combining(c) else c for c in name) + f" ({form})"


def apart(names: list[str]) -> list[str]:
    """`names` for one listing, `spelled` where two are one name in different Unicode normalizations
    (`café, café` told nothing)."""
    nfc = [unicodedata.normalize("NFC", name) for name in names]
    return [spelled(name) if nfc.count(key) > 1 else name for name, key in zip(names, nfc, strict=True)]


def told_apart(a: str, b: str) -> tuple[str, str]:
    """Two names for one line, each `spelled` when they are in different Unicode normalizations (they
    may print alike), else as they are."""
    nfc = [unicodedata.is_normalized("NFC", name) for name in (a, b)]
    return (spelled(a), spelled(b)) if a != b and not all(nfc) else (a, b)


def drawn_text(text: str) -> str:
    """`text` (a name) as a picture can draw it: a byte that is not UTF-8 (a surrogate escape, which a
    font has no glyph for: matplotlib raised a TypeError) as `\\xe9`, as the terminal lines write it."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def path_text(path: str | os.PathLike[str]) -> str:
    """A file name as JSON holds it, whatever the locale: its bytes read as UTF-8, a byte that is not
    UTF-8 as its surrogate escape (`caf\\udce9` for b"caf\\xe9", as Python reads it back to the name).
    Under a Latin-1 locale the name came as `cafÃ©`, which names no file for a UTF-8 reader (jq)."""
    return os.fspath(path).encode(sys.getfilesystemencoding(), "surrogateescape").decode("utf-8", "surrogateescape")


def real_names(value: Any) -> Any:
    """JSON data with every string as `real_text` has it: the manifest and `dove info --json` hold the
    name itself, where its escapes (`"\\udce5"`) were read as U+FFFD by any reader but Python (jq).
    Paths are best given as `path_text` has them (that is exact; this is for names inside text)."""
    if isinstance(value, str):
        return real_text(value)
    if isinstance(value, dict):
        return {real_names(k): real_names(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [real_names(v) for v in value]
    return value


def utc_time(seconds: float | None = None) -> str:
    """A time (seconds since the epoch; default: now) in ISO 8601, UTC, to the millisecond, as a
    manifest gives times: `2026-12-05T13:59:12.345Z`."""
    when = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
