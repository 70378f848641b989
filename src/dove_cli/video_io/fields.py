"""What a video flagged interlaced holds: FFmpeg's idet filter over its first frames.

The flag alone misleads. Film on PAL DVDs is mostly progressive frames flagged interlaced:
deinterlacing them only loses detail (a trial measured 42.2 dB against the true frames untouched,
36.3 dB after bwdif). Film on NTSC DVDs is telecined (3:2 pulldown: 4 film frames spread over 5
interlaced ones), which deinterlacing leaves at 29.97 fps with every 5th frame a repeat. idet
compares each frame's fields with its neighbours': combing in one field order (interlaced), none
(progressive), or a field repeated from the frame before (telecine: 2 in every 5 frames).
Scanned only for videos flagged interlaced or a run given --deinterlace: others pay nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import av

from dove_cli.video_io.paths import ffmpeg_name

# Frames decoded from the start (2.4 s of PAL, 12 cycles of 3:2 pulldown): about 0.1 s for SD MPEG-2,
# 1 s for 1080i H.264 on 2 busy cores.
SCAN_FRAMES = 60
# The field order a container or codec says (FFmpeg's AVFieldOrder TT, BB, TB, BT), when the frames'
# flags do not: the first coded taken as the first shown, as FFmpeg's own ffmpeg writes them (it tags
# top-field-first frames TB, bottom-first BT: fftools/ffmpeg_enc.c), not as the enum's comments read.
CONTAINER_ORDERS: dict[int, Literal["tff", "bff"]] = {2: "tff", 3: "bff", 4: "tff", 5: "bff"}

IDET = "lavfi.idet."  # the prefix of idet's counts in a frame's metadata
# Telecine, said whatever --deinterlace is: no mode of it undoes 3:2 pulldown.
TELECINE = (
    "fields upscaled together keep their combing in 2 frames of 5, and deinterlaced 1 frame in 5 repeats "
    "the one before (judder, and the model's work on it wasted); use --deinterlace ivtc, which undoes the "
    "pulldown (FFmpeg's fieldmatch,decimate) into the film's 23.976 frames/s"
)
Verdict = Literal["interlaced", "progressive", "telecined", "mixed", "undetermined"]
FieldOrder = Literal["tff", "bff"]
FIELD_ORDERS = ("auto", "tff", "bff")  # --field-order: auto, idet's where it is clear (`FieldScan.order`)
ORDER_WORDS = {"tff": "top field first", "bff": "bottom field first"}
# idet's field order is taken over the flag's only where at least this many frames are combed in it
# (and 4 in 5 of the combed frames are): a few could be chance. True interlacing is combed in all the
# frames scanned (60; a clip of 16 fields in its 8); a shorter clip needs all but 2 of its frames (3 at least).
ORDER_FRAMES = 8


@dataclass(frozen=True)
class FieldScan:
    """idet's counts over the first `frames` frames (its multi-frame detection, which FFmpeg's docs
    call the more reliable), and the order the frames' own flags give."""

    frames: int
    tff: int  # combed, top field first
    bff: int  # combed, bottom field first
    progressive: int
    undetermined: int  # no motion to tell by (a still, black)
    repeated: int  # a field the same as the frame before's (top or bottom): pulldown
    flagged_order: FieldOrder | None  # the frames' flags (or the container's); None: not flagged

    @property
    def verdict(self) -> Verdict:
        """undetermined: no frame idet could judge (too little motion, or too small a picture);
        telecined: a repeated field in at least 1 of 5 frames (3:2 pulldown repeats 2); else
        interlaced (combed in one field order) or progressive when at least 4 in 5 of the judged frames
        are so (true interlacing is combed in all, film in next to none); else mixed: content that
        changes, or that idet misjudges (FFmpeg's testsrc2 pattern, progressive: 3 in 4 combed)."""
        judged = self.tff + self.bff + self.progressive
        if not judged:
            return "undetermined"
        if 5 * self.repeated >= self.frames:
            return "telecined"
        if 5 * max(self.tff, self.bff) >= 4 * judged:
            return "interlaced"
        return "progressive" if 5 * self.progressive >= 4 * judged else "mixed"

    @property
    def order(self) -> FieldOrder | None:
        """The field order idet finds, where it is clear: interlaced or telecined, and at least 4 in 5
        of the combed frames (ORDER_FRAMES at least; in a clip shorter than that, all but 2 of its
        frames: a 5-frame clip was taken in its flag's wrong order, said by `dove info`) in one order;
        None: unclear."""
        more = max(self.tff, self.bff)
        if (
            self.verdict not in ("interlaced", "telecined")
            or more < min(ORDER_FRAMES, max(3, self.frames - 2))
            or 5 * more < 4 * (self.tff + self.bff)
        ):
            return None
        return "tff" if self.tff > self.bff else "bff"

    @property
    def against_flag(self) -> bool:
        """idet's clear order is not the one the frames are taken in by their flag (top first when
        there is none, as FFmpeg takes them): a file flagged wrongly."""
        return self.order is not None and self.order != (self.flagged_order or "tff")

    def as_dict(self) -> dict[str, Any]:
        """idet's counts, the verdict and its clear order, as `dove info --json` gives them (the
        flag's order apart)."""
        return {k: v for k, v in asdict(self).items() if k != "flagged_order"} | {
            "verdict": self.verdict, "order": self.order}  # fmt: skip


def parity(scan: FieldScan | None, field_order: str) -> str:
    """The field order a deinterlacer is given (bwdif's, yadif's and fieldmatch's parity/order):
    --field-order's when tff or bff; for auto idet's where it is clear, else "auto": each frame's
    own flag (top first where there is none), as FFmpeg takes it."""
    if field_order != "auto":
        return field_order
    return (scan.order if scan else None) or "auto"


def flag_words(scan: FieldScan) -> str:
    """What the flag says of the order: 'flagged bottom field first'."""
    if scan.flagged_order is None:
        return "not flagged with a field order (FFmpeg takes it top field first)"
    return f"flagged {ORDER_WORDS[scan.flagged_order]}"


def order_warning(path: Path, scan: FieldScan | None) -> str | None:
    """The one line a run deinterlacing under --field-order auto is told where idet's clear order
    and the flag disagree (it takes idet's: the flag's would swap each two frames, judder); None
    where they agree."""
    if scan is None or (order := scan.order) is None or not scan.against_flag:
        return None
    combed = scan.tff if order == "tff" else scan.bff
    return (f"{path}: {flag_words(scan)}, but FFmpeg's idet finds {ORDER_WORDS[order]} (combed so in {combed} "
            f"of the first {scan.frames} frames): deinterlaced {ORDER_WORDS[order]}; --field-order "
            f"{scan.flagged_order or 'tff'} would {'follow the flag' if scan.flagged_order else 'take it as FFmpeg does'}")  # fmt: skip


def evidence(d: dict[str, Any]) -> str:
    """What a verdict rests on, from a FieldScan's dict: 'a repeated field in 24 of the first 60 frames'."""
    if not d["frames"]:
        return "no frame read"
    first = f"of the first {d['frames']} frame{'s' * (d['frames'] != 1)}"
    combed = d["tff"] + d["bff"]
    return {
        "telecined": f"a repeated field in {d['repeated']} {first}",
        "interlaced": f"combed in {combed} {first}",
        "progressive": f"{d['progressive']} {first}, combed in {combed}",
        "mixed": f"combed in {combed}, progressive in {d['progressive']} {first}",
    }.get(d["verdict"], f"none of the first {d['frames']} frames judged: too still, or too small a picture")


def said(d: dict[str, Any], flagged: str | None = None) -> str:
    """A FieldScan's dict in words, for `dove info`: 'telecined film, 3:2 pulldown (a repeated ...)';
    where idet's clear order is not the flag's (`flagged`): 'interlaced, top field first, though
    flagged bottom field first (...)'."""
    what = {
        "telecined": "telecined film, 3:2 pulldown",
        "interlaced": f"interlaced, {'top' if d['tff'] >= d['bff'] else 'bottom'} field first",
        "progressive": "progressive frames",
        "mixed": "partly combed",
    }.get(d["verdict"], d["verdict"])
    if (order := d.get("order")) and order != (flagged or "tff"):
        what += f", {ORDER_WORDS[order]}" * (d["verdict"] != "interlaced")
        what += f", though {'flagged ' + ORDER_WORDS[flagged] if flagged else 'not flagged with a field order'}"
    return f"{what} ({evidence(d)})"


def scan_fields(path: Path, index: int, frames: int = SCAN_FRAMES) -> FieldScan | None:
    """Run the first `frames` frames of video stream `index` through idet (and count the frames'
    field-order flags with select). None when no frame decodes. A decode error ends the scan."""
    counts: dict[str, float] = {}
    interlaced = top = 0  # frames flagged interlaced, and of those top field first
    idet = pick = None
    try:
        c = av.open(ffmpeg_name(path), metadata_errors="replace")
    except (av.FFmpegError, OSError, ValueError):  # (the reader has opened it: not expected)
        return None
    with c:
        s: Any = c.streams[index]
        container = CONTAINER_ORDERS.get(s.codec_context.field_order)
        for frame in itertools.chain(_frames(c, s, frames), [None]):  # None: idet gives the frame it holds
            if idet is None or pick is None:
                if frame is None:
                    return None
                try:
                    idet = _graph(frame, s, "idet", None)
                    pick = _graph(frame, s, "select", "eq(interlace_type\\,TOPFIRST)")
                except (av.FFmpegError, ValueError):  # a picture the filters do not take
                    return None
            interlaced += bool(frame is not None and frame.interlaced_frame)
            try:
                idet.push(frame)
                pick.push(frame)
            except (av.FFmpegError, ValueError):  # a frame of another size: the scan ends here
                break
            for out in _pulled(idet):  # (idet's counts so far ride on each frame it gives)
                counts = {k[len(IDET) :]: float(v) for k, v in out.metadata.items()
                          if k.startswith(IDET) and not k.endswith(".current_frame")}  # fmt: skip
            top += len(_pulled(pick))
    if not counts:
        return None
    multi = {k: int(counts.get(f"multiple.{k}", 0)) for k in ("tff", "bff", "progressive", "undetermined")}
    repeated = int(counts.get("repeated.top", 0) + counts.get("repeated.bottom", 0))
    analysed = repeated + int(counts.get("repeated.neither", 0))
    flagged: Literal["tff", "bff"] | None = None
    if interlaced:
        flagged = "tff" if 2 * top >= interlaced else "bff"
    return FieldScan(frames=analysed, **multi, repeated=repeated, flagged_order=flagged or container)


def _frames(c: Any, s: Any, limit: int) -> Any:
    """Up to `limit` decoded frames; a decode error ends them."""
    try:
        yield from itertools.islice(c.decode(s), limit)
    except av.FFmpegError:
        return


def _graph(frame: av.VideoFrame, s: Any, name: str, args: str | None) -> av.filter.Graph:
    """buffer -> one filter -> buffersink, for frames like `frame` (of stream `s`)."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                              time_base=frame.time_base or s.time_base)  # fmt: skip
    graph.link_nodes(source, graph.add(name, args), graph.add("buffersink"))
    graph.configure()
    return graph


def _pulled(graph: av.filter.Graph) -> list[Any]:
    """The frames a graph has ready."""
    out = []
    while True:
        try:
            out.append(graph.pull())
        except (av.BlockingIOError, av.EOFError):
            return out


def advice(path: Path, scan: FieldScan | None, deinterlace: str, flagged: bool, coded_progressive: bool) -> str | None:
    """What a run is told of its input's fields (one warning, or None): from what idet found, not
    from the flag alone. flagged: the frames or the container say interlaced; coded_progressive:
    only the container says so. Not asked under ivtc (what telecine is told to use)."""
    d: dict[str, Any] = scan.as_dict() if scan else {"verdict": "undetermined", "frames": 0}
    verdict, idet = d["verdict"], f"FFmpeg's idet: {evidence(d)}"
    # idet's clear order, where the flag says the other (the run takes idet's: `order_warning`)
    though = (
        f", {ORDER_WORDS[scan.order]}, though {flag_words(scan)}" if scan and scan.order and scan.against_flag else ""
    )
    if verdict == "telecined":
        return f"telecined film, 3:2 pulldown{though} ({idet}): {TELECINE}"
    if deinterlace == "off":
        if not flagged:
            return None
        container = " (the container says so; its frames are coded progressive)" if coded_progressive else ""
        if verdict == "progressive":
            return (f"flagged interlaced{container}, but its frames are progressive ({idet}; film on DVD often is "
                    "so): upscaled whole, as they should be; leave --deinterlace off, which keeps their full detail")  # fmt: skip
        if verdict == "mixed":
            return (f"interlaced video{container}, but only partly combed ({idet}): if moving edges show comb "
                    "lines, use --deinterlace field (or frame); if it is film, leave it off")  # fmt: skip
        order = though or (f", {'top' if d['tff'] >= d['bff'] else 'bottom'} field first" * (verdict == "interlaced"))
        takes = ", which takes idet's order" * bool(though)
        return (f"interlaced video{order}{container} ({idet}): fields upscaled together keep their combing; use "
                f"--deinterlace field (or frame){takes}")  # fmt: skip
    if verdict == "progressive":
        return (f"frames are {'flagged interlaced, but' if flagged else 'not flagged interlaced, and'} FFmpeg's idet "
                f"finds them progressive ({evidence(d)}): --deinterlace {deinterlace} treats them as interlaced, "
                "which loses detail; use --deinterlace off")  # fmt: skip
    if not flagged and verdict != "interlaced":
        return (f"frames are not flagged interlaced but --deinterlace {deinterlace} treats them as interlaced "
                f"(right for captures flagged wrongly; use --deinterlace off for progressive video; {idet})")  # fmt: skip
    return None
