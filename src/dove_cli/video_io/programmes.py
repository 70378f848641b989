"""MPEG-TS programmes: which streams of a broadcast capture belong together.

A transport stream can carry several programmes (services), each a video with its own audio and
subtitles. FFmpeg reads them all (`ffmpeg -i` lists "Program 1", "Program 2"), but PyAV 18 does not
expose them, so they are read here from the file's own tables: the PAT (programme number -> PMT
PID), each PMT (programme -> its streams' PIDs, which PyAV gives as `stream.id`) and the SDT
(programme -> service name and provider), all near the start of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SCAN_BYTES = 4 << 20  # the tables repeat every 0.1-0.5 s: a few MiB of a capture holds them all
PACKET_SIZES = (188, 192, 204)  # MPEG-TS, M2TS (a 4-byte timestamp before each), TS with Reed-Solomon bytes after
PAT_PID, SDT_PID = 0x0000, 0x0011
PMT_TABLE, SDT_TABLE = 0x02, 0x42  # table_id of a PMT, and of the SDT of this transport stream
SERVICE_DESCRIPTOR = 0x48


@dataclass
class Programme:
    number: int  # program_number (FFmpeg's "Program 1"; the SDT's service_id)
    pids: set[int] = field(default_factory=set)  # its elementary streams (PyAV's stream.id)
    name: str = ""  # service_name from the SDT ("" when none)
    provider: str = ""

    def label(self) -> str:
        """'programme 2 'ProgB'', as warnings and `dove info` name it."""
        return f"programme {self.number}" + (f" {self.name!r}" if self.name else "")


def ts_programmes(path: str | Path) -> list[Programme]:
    """The programmes of an MPEG-TS/M2TS file in PAT order, each with its streams' PIDs, from the
    tables in its first SCAN_BYTES; [] for another format or a file without them."""
    try:
        with open(path, "rb") as f:
            data = f.read(SCAN_BYTES)
    except OSError:
        return []
    layout = _layout(data)
    if layout is None:
        return []
    pmts: dict[int, int] = {}  # PMT PID -> programme number, from the PAT
    programmes: dict[int, Programme] = {}
    names: dict[int, tuple[str, str]] = {}
    for pid, section in _sections(data, *layout):
        if pid == PAT_PID and section[0] == 0x00 and not pmts:
            for at in range(8, len(section) - 4, 4):
                number, pmt = int.from_bytes(section[at : at + 2], "big"), _pid(section, at + 2)
                if number:  # 0: the network information table, no programme
                    pmts[pmt] = number
                    programmes[number] = Programme(number)
        elif pid in pmts and section[0] == PMT_TABLE and not programmes[pmts[pid]].pids:
            programmes[pmts[pid]].pids = _elementary_pids(section)
        elif pid == SDT_PID and section[0] == SDT_TABLE and not names:
            names = _service_names(section)
        if pmts and all(p.pids for p in programmes.values()) and names:
            break
    for number, (provider, name) in names.items():
        if number in programmes:
            programmes[number].provider, programmes[number].name = provider, name
    return list(programmes.values())


def programme_of(programmes: list[Programme], pid: int) -> Programme | None:
    """The programme a stream (its PID, PyAV's `stream.id`) belongs to; None when no PMT lists it."""
    return next((p for p in programmes if pid in p.pids), None)


def _layout(data: bytes) -> tuple[int, int] | None:
    """(where the first packet's sync byte is, packet size): the sync byte 0x47 at the start of five
    packets in a row; a capture may begin mid-packet. None when `data` is no transport stream."""
    for size in PACKET_SIZES:
        for first in range(min(size, len(data))):
            if len(data) >= first + 5 * size and all(data[first + i * size] == 0x47 for i in range(5)):
                return first, size
    return None


def _pid(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big") & 0x1FFF


def _sections(data: bytes, first: int, size: int) -> Iterator[tuple[int, bytes]]:
    """(PID, table section) for each complete PSI section, put together across packets (a PMT of
    40 audio tracks spans several)."""
    partial: dict[int, bytearray] = {}
    for start in range(first, len(data) - 187, size):
        packet = data[start : start + 188]
        if packet[0] != 0x47 or packet[1] & 0x80:  # lost sync, or the transport error flag
            continue
        pid, unit_start, adaptation = _pid(packet, 1), packet[1] & 0x40, (packet[3] >> 4) & 0x3
        if not adaptation & 0x1:  # no payload
            continue
        payload = packet[4 + (1 + packet[4] if adaptation & 0x2 else 0) :]
        if unit_start and payload:
            partial[pid] = bytearray(payload[1 + payload[0] :])  # after the pointer field
        elif pid in partial:
            partial[pid] += payload
        else:
            continue
        section = partial[pid]
        if len(section) >= 3 and section[0] != 0xFF:
            length = 3 + (int.from_bytes(section[1:3], "big") & 0x0FFF)
            if len(section) >= length:
                del partial[pid]
                yield pid, bytes(section[:length])


def _elementary_pids(pmt: bytes) -> set[int]:
    """The PIDs of a PMT's elementary streams (after its 12-byte header and programme descriptors,
    before its CRC)."""
    at, end, pids = 12 + (int.from_bytes(pmt[10:12], "big") & 0x0FFF), len(pmt) - 4, set()
    while at + 5 <= end:
        pids.add(_pid(pmt, at + 1))
        at += 5 + (int.from_bytes(pmt[at + 3 : at + 5], "big") & 0x0FFF)
    return pids


def _service_names(sdt: bytes) -> dict[int, tuple[str, str]]:
    """service_id -> (provider, name) from an SDT's service descriptors (DVB text: a first byte
    below 0x20 names a character table, which is dropped; the rest read as Latin-1)."""
    names: dict[int, tuple[str, str]] = {}
    at, end = 11, len(sdt) - 4
    while at + 5 <= end:
        service, loop = int.from_bytes(sdt[at : at + 2], "big"), int.from_bytes(sdt[at + 3 : at + 5], "big") & 0x0FFF
        d, stop = at + 5, min(at + 5 + loop, end)
        while d + 2 <= stop:
            tag, length = sdt[d], sdt[d + 1]
            if tag == SERVICE_DESCRIPTOR and length >= 3:
                body = sdt[d + 2 : d + 2 + length]
                provider = body[2 : 2 + body[1]]
                name = body[3 + body[1] : 3 + body[1] + body[2 + body[1]]]
                names[service] = (_text(provider), _text(name))
            d += 2 + length
        at = stop
    return names


def _text(raw: bytes) -> str:
    return (raw[1:] if raw[:1] and raw[0] < 0x20 else raw).decode("latin-1").strip()
