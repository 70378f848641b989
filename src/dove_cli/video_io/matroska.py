"""What FFmpeg does not read of a Matroska file, or PyAV does not show: whether an edition of its chapters
is ordered (EditionFlagOrdered: players play the chapters as a list, in order, skipping what no chapter
holds) and whether its chapters link other files (ChapterSegmentUID), which FFmpeg reads as plain ones and
writes no edition flags for, so an output plays straight through; a video track's Dolby Vision
configuration record (BlockAdditionMapping); and whether the file was finished (`unfinished`). A small
EBML walk: the head of the file up to its first Cluster, or where its SeekHead says the element is;
never the clusters.

Why a walk of its own: FFmpeg's Matroska demuxer skips EditionFlagOrdered (its syntax table reads it as
nothing) and keeps no ChapterSegmentUID, and PyAV (18.1, the version checked) shows no stream's coded
side data, where FFmpeg puts the Dolby Vision record. `dovi_record` can go once PyAV shows that side data; the
chapter checks stay until FFmpeg reads ordered editions, and `unfinished` (a muxer's missing sizes) is no
library's job."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

EBML, SEGMENT, SEEK_HEAD, CLUSTER, CHAPTERS = 0x1A45DFA3, 0x18538067, 0x114D9B74, 0x1F43B675, 0x1043A770
SEEK, SEEK_ID, SEEK_POSITION = 0x4DBB, 0x53AB, 0x53AC
EDITION, ATOM, ORDERED, LINKED_SEGMENT = 0x45B9, 0xB6, 0x45DD, 0x6E67
TRACKS, TRACK_ENTRY, TRACK_TYPE, MAPPING, ADD_ID_TYPE, ADD_ID_EXTRA = 0x1654AE6B, 0xAE, 0x83, 0x41E4, 0x41E7, 0x41ED
DOVI_TYPES = {int.from_bytes(t, "big") for t in (b"dvcC", b"dvvC", b"dvwC")}  # BlockAddIDType of a DV record
INFO, DURATION = 0x1549A966, 0x4489
TAGS, TAG, SIMPLE_TAG = 0x1254C367, 0x7373, 0x67C8
MOST = 1 << 22  # bytes: a SeekHead or Chapters element larger than this is not a sane one (left unread)


def _vint(f: BinaryIO, marker: bool) -> int | None:
    """An EBML variable-length integer: an element ID (`marker` kept) or a size (None: the end). An unknown
    size (all ones, a live stream's) reads as a huge one: a walk that skips it ends at the end of the file."""
    first = f.read(1)
    n = 9 - first[0].bit_length() if first else 9  # its length, from the leading zero bits
    rest = f.read(n - 1) if n <= 8 else b""
    if n > 8 or len(rest) < n - 1:
        return None
    value = int.from_bytes(first + rest, "big")
    return value if marker else value & (1 << 7 * n) - 1


def _elements(f: BinaryIO) -> Iterator[tuple[int, int]]:
    """(ID, size) of the elements from where `f` is, each body left for the caller to read or skip."""
    while (eid := _vint(f, True)) is not None and (size := _vint(f, False)) is not None:
        yield eid, size


def _walk(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every element in `data`, with its body; those of editions and chapters (masters) too."""
    f = io.BytesIO(data)
    for eid, size in _elements(f):
        body = f.read(size)
        yield eid, body
        if eid in (EDITION, ATOM):
            yield from _walk(body)


def _top(f: BinaryIO, wanted: int) -> bytes:
    """The body of the segment's element `wanted` (Chapters, Tracks; empty: none found, larger than
    `MOST`, or not a Matroska file)."""
    size = _find(f, wanted)
    return f.read(size) if size is not None and size <= MOST else b""


def _find(f: BinaryIO, wanted: int) -> int | None:
    """The size of the segment's element `wanted`, `f` left at its body: the first in the file's head
    (before its first Cluster), else where its SeekHead says; None: none found, or not a Matroska file."""
    if _vint(f, True) != EBML or (size := _vint(f, False)) is None:
        return None
    f.seek(size, 1)
    if _vint(f, True) != SEGMENT:
        return None
    _vint(f, False)  # (its size)
    segment, listed = f.tell(), None
    for eid, size in _elements(f):
        if eid == wanted:
            return size
        if eid == CLUSTER:
            break
        if eid != SEEK_HEAD or size > MOST:
            f.seek(size, 1)
            continue
        for seek in (dict(_walk(body)) for sid, body in _walk(f.read(size)) if sid == SEEK):
            if seek.get(SEEK_ID) == wanted.to_bytes(4, "big"):  # (where, from the segment's start)
                listed = int.from_bytes(seek.get(SEEK_POSITION, b""), "big")
    if listed is None:
        return None
    f.seek(segment + listed)
    eid, size = next(_elements(f), (0, 0))
    return size if eid == wanted else None


def tag_count(path: str | Path) -> int:
    """How many tags (SimpleTags, nested ones too) the file's Tags element holds, counted in time linear
    in their number, where FFmpeg's reading of them takes time growing as its square (`metadata.MOST_TAGS`);
    of a Tags element over 64 MiB, those in its first 64 MiB. 0 for any other file."""
    try:
        with open(path, "rb") as f:
            size = _find(f, TAGS)
            return 0 if size is None else _simple_tags(io.BytesIO(f.read(min(size, 1 << 26))), 0)
    except OSError:
        return 0


def _simple_tags(f: BinaryIO, depth: int) -> int:
    """The SimpleTags in `f` (a master's body), within Tag and SimpleTag masters nested up to 16 deep (as
    FFmpeg's EBML reader reads them: deeper ones are not counted)."""
    n = 0
    for eid, size in _elements(f):
        body = f.read(size)
        if eid in (TAG, SIMPLE_TAG) and depth < 16:
            n += (eid == SIMPLE_TAG) + _simple_tags(io.BytesIO(body), depth + 1)
    return n


def chapter_order(path: str | Path) -> tuple[bool, bool]:
    """(ordered, linked): whether an edition of the file's chapters is ordered, and whether a chapter
    plays a part of another file (a linked segment). (False, False) for any other file."""
    try:
        with open(path, "rb") as f:
            elements = list(_walk(_top(f, CHAPTERS)))
    except OSError:
        return False, False
    ordered = any(eid == ORDERED and int.from_bytes(body, "big") for eid, body in elements)
    return ordered, any(eid == LINKED_SEGMENT for eid, _ in elements)


def dovi_record(path: str | Path) -> bytes | None:
    """The Dolby Vision configuration record (24 bytes) of the file's first video track that has one, or None."""
    with open(path, "rb") as f:
        tracks = _top(f, TRACKS)
    for entry in (body for eid, body in _walk(tracks) if eid == TRACK_ENTRY):
        fields = list(_walk(entry))
        if int.from_bytes(dict(fields).get(TRACK_TYPE, b""), "big") != 1:  # (1: video)
            continue
        for mapping in (dict(_walk(body)) for eid, body in fields if eid == MAPPING):
            record = mapping.get(ADD_ID_EXTRA, b"")
            if int.from_bytes(mapping.get(ADD_ID_TYPE, b""), "big") in DOVI_TYPES and len(record) >= 24:
                return record[:24]
    return None


def _unknown_size(f: BinaryIO) -> bool:
    """Whether the element size at `f` is EBML's unknown one (all its value bits set); read past it."""
    at = f.tell()
    first = f.read(1)
    n = 9 - first[0].bit_length() if first else 9
    f.seek(at)
    return _vint(f, False) == (1 << 7 * n) - 1


def unfinished(path: str | Path) -> list[str]:
    """What a Matroska file's head lacks that a muxer writes once the file is finished: its "size" (of
    its Segment) and its "duration" (in its Info). A recording still being written, or whose recorder
    crashed, lacks both ([] for a finished file and any other; a browser's .webm recording lacks them
    for good)."""
    try:
        with open(path, "rb") as f:
            if _vint(f, True) != EBML or (size := _vint(f, False)) is None:
                return []
            f.seek(size, 1)
            if _vint(f, True) != SEGMENT:
                return []
            lacks = ["size"] if _unknown_size(f) else []
            for eid, size in _elements(f):
                if eid == INFO and size <= MOST:
                    return lacks + ([] if DURATION in dict(_walk(f.read(size))) else ["duration"])
                if eid == CLUSTER:
                    break
                f.seek(size, 1)
    except OSError:
        return []
    return lacks + ["duration"]
