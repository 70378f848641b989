"""HDR metadata besides the colour tags. HDR10's static metadata, the mastering display (SMPTE ST 2086)
and the content light levels (MaxCLL, MaxFALL), describes the whole video: dove gives it to the encoders
that write it (x265, x264, SVT-AV1), in the bitstream where players read it. Dynamic metadata (HDR10+,
Dolby Vision) describes the input's pictures scene by scene, which an upscale replaces: found, shown by
`dove info` and said before a run, never carried."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from dove_cli.video_io.formats import HDR_TRANSFERS, PARAM_LISTS, png_writes_cicp, side_data
from dove_cli.video_io.matroska import dovi_record as matroska_dovi_record

XY = tuple[Fraction, Fraction]  # a CIE 1931 chromaticity


@dataclass(frozen=True)
class Mastering:
    """The display a video was graded on: its primaries and white point, and its luminance range (cd/m²)."""

    red: XY
    green: XY
    blue: XY
    white: XY
    min_luminance: Fraction
    max_luminance: Fraction

    def as_dict(self) -> dict[str, Any]:
        """For `dove info --json`: xy pairs and cd/m² as numbers, and the primaries' name where they are a
        standard's (`NAMED_DISPLAYS`)."""
        at = (self.red, self.green, self.blue, self.white)
        name = next((n for n, xy in NAMED_DISPLAYS.items() if all(map(_near, at, xy))), None)
        xy = {k: [float(v) for v in p] for k, p in zip(("red", "green", "blue", "white"), at, strict=True)}
        return {
            **xy,
            "name": name,
            "min_luminance": float(self.min_luminance),
            "max_luminance": float(self.max_luminance),
        }


def mastering_said(m: dict[str, Any]) -> str:
    """`dove info`'s words for a mastering display (`Mastering.as_dict`): the primaries by name where they
    are a standard's, else as numbers, then the luminance range."""
    at = " ".join(f"{k[0].upper()} {m[k][0]:.4f},{m[k][1]:.4f}" for k in ("red", "green", "blue", "white"))
    return f"{m['name'] or at} display, {m['min_luminance']:g}-{m['max_luminance']:g} cd/m²"


# The mastering displays most films are graded on, as (red, green, blue, white) xy.
D65 = (Fraction("0.3127"), Fraction("0.3290"))
NAMED_DISPLAYS = {
    "P3 D65": ((Fraction("0.680"), Fraction("0.320")), (Fraction("0.265"), Fraction("0.690")),
               (Fraction("0.150"), Fraction("0.060")), D65),
    "BT.2020": ((Fraction("0.708"), Fraction("0.292")), (Fraction("0.170"), Fraction("0.797")),
                (Fraction("0.131"), Fraction("0.046")), D65),
}  # fmt: skip


def _near(a: XY, b: XY) -> bool:
    return all(abs(p - q) <= Fraction(1, 2000) for p, q in zip(a, b, strict=True))


def mastering_of(frame: Any) -> Mastering | None:
    """The mastering display FFmpeg gives a frame (from the bitstream's SEI or the container's element):
    AVMasteringDisplayMetadata, 10 rationals (red, green, blue, white xy; min, max luminance) and two
    flags saying which of them it has. None without it, with only half of it (x265 needs both), or with
    values no display has (xy outside 0-1, no peak), which the encoders would read wrapped.

    Why unpacked by hand: PyAV (18.1, the version checked) hands a frame's side data over as raw bytes, with no
    fields, so the C struct is read by its layout (libavutil/mastering_display_metadata.h: 22 ints, stable
    in FFmpeg's ABI; light_level_of reads AVContentLightMetadata alike). It can go once PyAV parses this
    side data into fields."""
    sd = side_data(frame).get("MASTERING_DISPLAY_METADATA")
    if sd is None or len(bytes(sd)) < 88:
        return None
    v = struct.unpack("=22i", bytes(sd)[:88])
    if not (v[20] and v[21]) or any(d == 0 for d in v[1:20:2]):
        return None
    return mastering_from([Fraction(v[i], v[i + 1]) for i in range(0, 20, 2)])


def mastering_from(q: list[Fraction]) -> Mastering | None:
    """A mastering display from its 10 numbers (red, green, blue, white xy; min, max cd/m²), or None
    for values no display has (xy outside 0-1, no peak), which the encoders would read wrapped."""
    if not all(0 <= x <= 1 for x in q[:8]) or not 0 <= q[8] < q[9]:
        return None
    return Mastering((q[0], q[1]), (q[2], q[3]), (q[4], q[5]), (q[6], q[7]), q[8], q[9])


def light_level_of(frame: Any) -> tuple[int, int] | None:
    """(MaxCLL, MaxFALL) in cd/m² from a frame's AVContentLightMetadata, or None."""
    sd = side_data(frame).get("CONTENT_LIGHT_LEVEL")
    if sd is None or len(bytes(sd)) < 8:
        return None
    cll, fall = struct.unpack("=2I", bytes(sd)[:8])
    return cll, fall


def dynamic_hdr(frame: Any, path: str | Path, container: str) -> tuple[str, ...]:
    """The dynamic HDR metadata a video has: "HDR10+" (ST 2094-40, in its first frame) and "Dolby Vision"
    (its configuration record in the container, naming the profile; else its first frame's RPU)."""
    kinds = {str(getattr(sd.type, "name", sd.type)) for sd in side_data(frame)}
    found = ["HDR10+"] if "DYNAMIC_HDR_PLUS" in kinds else []
    record = dovi_record(path, container)
    if record is not None:
        found.append(f"Dolby Vision profile {dovi_profile(record)}")
    elif kinds & {"DOVI_RPU_BUFFER", "DOVI_METADATA"}:
        found.append("Dolby Vision")
    return tuple(found)


STSD_MOST = 1 << 20  # bytes: a sample description larger than this is not read (one is a few hundred)
MP4_PATH = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}  # the boxes down to each track's sample description


def dovi_record(path: str | Path, container: str) -> bytes | None:
    """A Dolby Vision configuration record (dvcC, dvvC or dvwC: its 24 bytes) from a Matroska track's
    BlockAdditionMapping or an MP4/MOV sample entry. None without one.

    Why the boxes are walked by hand: FFmpeg's demuxers read this record into the stream's coded side data
    (AV_PKT_DATA_DOVI_CONF), but PyAV (18.1, the version checked) shows no stream's side data. It can go (both
    walks' Dolby Vision part) once PyAV reads a stream's coded side data."""
    try:
        if "matroska" in container:
            return matroska_dovi_record(path)
        if "mp4" in container:
            with open(path, "rb") as f:
                return _mp4_dovi_record(f, f.seek(0, 2), 0)
    except (OSError, struct.error):
        pass
    return None


def _mp4_dovi_record(f: BinaryIO, end: int, at: int) -> bytes | None:
    """The record of the first dvcC/dvvC/dvwC box in a track's sample description (stsd), found by walking
    the boxes from `at` to `end` by their sizes down moov/trak/mdia/minf/stbl: only box headers and the
    sample descriptions are read, never the sample tables or the media (a film's moov is megabytes)."""
    while at + 8 <= end:
        f.seek(at)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:  # a 64-bit size follows
            size, header = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:  # the box runs to the end of the file
            size = end - at
        if size < header:  # not a box
            return None
        if kind in MP4_PATH:
            if (record := _mp4_dovi_record(f, min(at + size, end), at + header)) is not None:
                return record
        elif kind == b"stsd":
            found = re.search(rb"(?s)(....)dv[cvw]C(.{24})", f.read(min(size - header, STSD_MOST)))
            if found and int.from_bytes(found[1], "big") >= 32:  # a box: its size, type and record
                return found[2]
        at += size
    return None


def dovi_profile(record: bytes) -> str:
    """The profile a configuration record names, with its base layer's compatibility where it has one
    (8.1: HDR10, 8.2: SDR, 8.4: HLG)."""
    profile, compatible = record[2] >> 1, record[4] >> 4
    return f"{profile}.{compatible}" if compatible and profile in (8, 9, 10) else str(profile)


def encoder_params(encoder: str, mastering: Mastering | None, light: tuple[int, int] | None) -> tuple[str, ...]:
    """The key=value settings that make `encoder` write the static metadata: x265's and x264's SEI (chromaticity
    in 0.00002, luminance in 0.0001 cd/m², primaries in G, B, R order) or SVT-AV1's metadata OBUs (plain
    numbers). Empty for an encoder that writes none (`carries`)."""
    if not carries(encoder):
        return ()
    out = []
    if mastering is not None:
        m = mastering
        if encoder == "libsvtav1":
            xy = [f"{float(v):.5f}" for v in (*m.green, *m.blue, *m.red, *m.white)]
            lum = f"{float(m.max_luminance):.4f},{float(m.min_luminance):.4f}"
        else:
            xy = [str(round(v * 50000)) for v in (*m.green, *m.blue, *m.red, *m.white)]
            lum = f"{round(m.max_luminance * 10000)},{round(m.min_luminance * 10000)}"
        display = "G({},{})B({},{})R({},{})WP({},{})".format(*xy) + f"L({lum})"
        out.append(f"{'mastering-display' if encoder != 'libx265' else 'master-display'}={display}")
    if light is not None:
        out.append(f"{LIGHT_KEYS[encoder]}={light[0]},{light[1]}")
    return tuple(out)


LIGHT_KEYS = {"libx265": "max-cll", "libx264": "cll", "libsvtav1": "content-light"}
KEEPERS = "hevc, h264 and av1 outputs and PNG images keep it"


def carries(encoder: str | None) -> bool:
    """Whether dove's output written by `encoder` (None: images other than PNG) keeps HDR10's static
    metadata: PNG's mDCV and cLLI chunks go with its cICP tags (`stills.tagged_png`)."""
    return encoder in PARAM_LISTS or encoder == "png" and png_writes_cicp()


def hdr_warning(trc: str | None, images: bool, model: bool) -> str | None:
    """What a run says of an HDR input (PQ or HLG `trc`; None for others): its code values are upscaled
    as they are, and with the `model` (not bilinear) that DOVE never saw such; which outputs keep its
    colour tags (what they keep of its HDR metadata is the writer's to say, `metadata_lost`)."""
    kind = HDR_TRANSFERS.get(trc or "")
    if kind is None:
        return None
    png = png_writes_cicp()  # PNG keeps the colour tags (cICP) where this FFmpeg writes them
    kept = f"video outputs{' and PNG images' * png} keep the colour tags, {'other images' if png else 'images'} do not"
    said = f"HDR {'images' if images else 'video'} ({kind}): {kind} code values are upscaled as they are (no "
    if not model:
        return said + f"linearising, no tone mapping); {kept}"
    return said + (f"linearising, no tone mapping), and DOVE was trained on SDR (BT.709) video, so highlights and "
                   f"colours may come out altered: compare with the source; {kept}")  # fmt: skip


def metadata_lost(
    trc: str | None, mastering: Mastering | None, light: tuple[int, int] | None, dynamic: tuple[str, ...],
    encoder: str | None,
) -> list[str]:  # fmt: skip
    """What an output written by `encoder` (None: images other than PNG) loses of the input's HDR
    metadata, one warning each: static metadata it cannot carry, and dynamic metadata, which no output keeps."""
    said = []
    static = [n for n, v in (("the mastering display", mastering), ("MaxCLL/MaxFALL", light)) if v is not None]
    if static and not carries(encoder):
        who = "these images cannot carry it" if encoder is None else f"{encoder} cannot carry it"
        said.append(f"the input's HDR10 metadata ({', '.join(static)}) is not kept: {who} ({KEEPERS})")
    if dynamic:
        base = HDR_TRANSFERS.get(trc or "")
        output = f"the output is plain {'HDR10' if base == 'PQ' else base} as its colour tags say" if base else (
            "the output is what the base layer's colour tags say")  # fmt: skip
        if "Dolby Vision profile 5" in dynamic:
            output = "Dolby Vision profile 5 has no HDR10 or SDR base layer, so the output's colours are wrong"
        said.append(f"the input's dynamic HDR metadata ({', '.join(dynamic)}) is not kept: it describes the "
                    f"input's pictures scene by scene, which the upscale replaces; {output}")  # fmt: skip
    return said
