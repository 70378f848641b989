"""The authors' window layout (their `inference_script.py`), for `--parity`: pure functions, no model.

Their script restores a whole video in one go. It first pads it: in time to 8k+1 frames by
repeating the last frame, and each LQ frame with zeros on the right and bottom to sides that are
multiples of 16 (`RELEASE_LQ_BLOCK`), before the bilinear upsampling. On that padded, upsampled
video it lays out windows, the same way along every axis (frames, rows, columns), with a window
length W and an overlap O (W = 0: one window over the whole axis of length L):

- Starts: every multiple of the stride S = W - O that lies below L - O. (Their code also adds the
  start L - W when the last window would end before L; with starts every S up to L - O that can
  only happen when there are none at all, L <= O, where their script fails: we refuse it.)
- Time: each chunk runs from its start for W frames, or to L. A last chunk that comes out shorter
  than W, when there are two or more, is merged into the one before, which then ends at L: chunks
  can be up to 2W - O - 1 frames long, and of any length, not only 4k+1.
- Space: when there are two or more starts and the last tile would run past L, that start is
  dropped; a tile whose end plus S passes L is stretched to L (only the last one can be).
- Valid region: each window keeps its own part only, a hard cut with no blending: O // 2 positions
  are dropped on each side that is not an end of the axis. Their script counts how often each
  output position is written and stops when one is written zero times or twice (an odd overlap
  writes the positions in the middle of each overlap twice).

The model imposes more: a tile side must be a multiple of 16 px (VAE 8x, patch 2), and diffusers'
CogVideoX VAE gives back as many frames as it gets only for chunks of 1, 8k or 8k+1 frames (it
encodes in batches of 8 frames and decodes in batches of 2 latent frames); on other chunks their
script stops on a shape mismatch or puts frames in the wrong place. Every such layout is refused
here with a one-line error, never run differently.

`ReleaseChunkStream` decides the temporal chunks online, as frames arrive (the frame count is
known only at the end), and hands out exactly `release_chunks(total, chunk, overlap)`.
"""

from __future__ import annotations

import numpy as np

from dove_cli.errors import OptionError
from dove_cli.windows import Span

RELEASE_LQ_BLOCK = 16  # LQ sides are zero-padded to multiples of this before upsampling
RELEASE_TIME_BLOCK = 8  # the video is padded to 8k+1 frames with its last frame
RELEASE_TILE_OVERLAP = 32  # their default --overlap_hw (output px)
RELEASE_CHUNK_OVERLAP = 8  # their default --overlap_t (frames)
MODEL_BLOCK = 16  # tile sides the model takes: VAE 8x, transformer patch 2


class LayoutError(OptionError):
    """A layout on which the authors' script fails: refused rather than run differently."""


def time_pad(frames: int) -> int:
    """Frames the release appends (copies of the last one) so that the count is 8k+1."""
    return (-(frames - 1)) % RELEASE_TIME_BLOCK if frames > 0 else 0


def padded_lq_size(height: int, width: int) -> tuple[int, int]:
    """LQ (h, w) after the release's zero padding to multiples of 16."""
    b = RELEASE_LQ_BLOCK
    return -(-height // b) * b, -(-width // b) * b


def release_output_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """The (h, w) of the frames their script writes from LQ frames of (height, width) at `scale`.

    It crops 4 x the padding from the upsampled padded frame whatever the scale (as for x4), so at x1
    to x3 the picture is smaller than the input x scale by (4 - scale) x the padding, and at x5 to x8
    keeps (scale - 4) x the padding. Refused where nothing would be left to write."""
    hp, wp = padded_lq_size(height, width)
    h, w = hp * scale - 4 * (hp - height), wp * scale - 4 * (wp - width)
    if h <= 0 or w <= 0:
        raise LayoutError(
            f"--parity --scale {scale}: the authors' script crops 4 x its padding whatever the scale, which leaves "
            f"no picture of a {width}x{height} input at x{scale} (it writes nothing); use another --scale"
        )
    return h, w


def vae_frames(frames: int) -> int:
    """How many frames diffusers' CogVideoX VAE gives back for a chunk of `frames` frames.

    Encoding maps n frames to ceil(n / 4) latent frames; decoding in batches of 2 latent frames
    gives 4 frames per latent frame, less 3 for an odd count (the first frame stands alone).
    Equal to `frames` exactly for 1, 8k and 8k+1 (checked against the VAE in the tests)."""
    latents = -(-frames // 4)
    return 4 * latents if latents % 2 == 0 else 4 * latents - 3


def _starts(length: int, window: int, overlap: int, axis: str) -> list[int]:
    stride = window - overlap
    if stride <= 0:
        raise LayoutError(f"--parity: the authors' script needs a {axis} window longer than its overlap "
                          f"({window} <= {overlap})")  # fmt: skip
    starts = list(range(0, length - overlap, stride))
    if not starts:
        unit = "frames" if axis == "chunk" else "px"
        raise LayoutError(
            f"--parity: the authors' script fails when the {axis} overlap ({overlap}) is not shorter than the video "
            f"({length} {unit} after padding); use --{axis} 0 or a smaller --{axis}-overlap"
        )
    return starts


def _spans(starts: list[int], stops: list[int]) -> list[Span]:
    n = len(starts)
    return [
        Span(a, b, prev_stop=stops[i - 1] if i else None, next_start=starts[i + 1] if i + 1 < n else None)
        for i, (a, b) in enumerate(zip(starts, stops, strict=True))
    ]


def release_chunks(frames: int, chunk: int, overlap: int) -> list[Span]:
    """The release's temporal chunks over `frames` (already padded to 8k+1); chunk 0: one window."""
    if chunk <= 0 or frames <= 0:
        return [Span(0, frames)]
    starts = _starts(frames, chunk, overlap, "chunk")
    stops = [min(s + chunk, frames) for s in starts]
    if len(starts) >= 2 and stops[-1] - starts[-1] < chunk:  # a short last chunk joins the one before
        starts.pop()
        stops.pop()
        stops[-1] = frames
    return _spans(starts, stops)


def release_tiles(length: int, tile: int, overlap: int) -> list[Span]:
    """The release's tiles along one spatial axis of `length` output px; tile 0: one window."""
    if tile <= 0:
        return [Span(0, length)]
    stride = tile - overlap
    starts = _starts(length, tile, overlap, "tile")
    if len(starts) >= 2 and starts[-1] + tile > length:  # the last tile would overhang: the one before takes it
        starts.pop()
    stops = []
    for s in starts:
        stop = min(s + tile, length)
        stops.append(length if stop + stride > length else stop)  # the last tile is stretched to the edge
    return _spans(starts, stops)


def valid_cut(span: Span, length: int | None, overlap: int) -> tuple[int, int]:
    """The window-relative part [lo, hi) of `span` that is written to the output.

    `length` None: the axis end is not known yet (streaming); a window ends at the axis end exactly
    when it is the last one (next_start None) in the release's layouts."""
    half = overlap // 2
    lo = 0 if span.start == 0 else half
    at_end = span.next_start is None if length is None else span.stop == length
    hi = span.length if at_end else span.length - half
    return lo, hi


def valid_weights(span: Span, length: int | None, overlap: int) -> np.ndarray:
    """0/1 weights over the span's positions (float32, [span.length]): 1 on its valid part."""
    lo, hi = valid_cut(span, length, overlap)
    w = np.zeros(span.length, dtype=np.float32)
    w[lo:hi] = 1.0
    return w


def check_writes(spans: list[Span], length: int | None, overlap: int, axis: str) -> None:
    """Stop, as their script does, when a position is written zero times or twice.

    With `length` None only the part up to the last window's valid end is checked (streaming)."""
    written = 0  # every position below this was written exactly once
    for s in spans:
        lo, hi = valid_cut(s, length, overlap)
        a, b = s.start + lo, s.start + hi
        if a != written:
            what = "written twice" if a < written else "never written"
            first, last = sorted((a, written))
            raise LayoutError(_write_error(axis, what, first, last - 1, overlap))
        written = b
    if length is not None and written != length:
        raise LayoutError(_write_error(axis, "never written", written, length - 1, overlap))


def _write_error(axis: str, what: str, first: int, last: int, overlap: int) -> str:
    unit = "frames" if axis == "chunk" else "px"
    hint = f" (an odd --{axis}-overlap {overlap}: use an even one)" if overlap % 2 else ""
    return f"--parity: the authors' script stops on this layout: {unit} {first}-{last} are {what}{hint}"


def check_chunk_frames(span: Span) -> None:
    """Refuse a chunk the VAE does not give back frame for frame (see `vae_frames`)."""
    n = span.length
    if vae_frames(n) != n:
        raise LayoutError(
            f"--parity: the authors' script cannot run the {n}-frame chunk of frames {span.start}-{span.stop - 1}: "
            f"the CogVideoX VAE gives back {vae_frames(n)} frames for it (it takes 1, 8k or 8k+1); "
            "choose another --chunk or --chunk-overlap"
        )


def check_tile_sides(spans: list[Span], axis_name: str) -> None:
    for s in spans:
        if s.length % MODEL_BLOCK:
            raise LayoutError(
                f"--parity: a tile {axis_name} of {s.length} px (at {s.start}) is not a multiple of {MODEL_BLOCK}, "
                "which the model cannot take; use a --tile and --tile-overlap that are multiples of 16"
            )


def check_release_chunks(frames: int, chunk: int, overlap: int) -> list[Span]:
    """The release's chunks over `frames` padded frames, refused as their script would fail."""
    spans = release_chunks(frames, chunk, overlap)
    for s in spans:
        check_chunk_frames(s)
    check_writes(spans, frames, overlap if chunk else 0, "chunk")
    return spans


def check_release_tiles(height: int, width: int, tile: int, overlap: int) -> tuple[list[Span], list[Span]]:
    """The release's tile rows and columns over an upsampled padded frame, refused as it would fail."""
    overlap = overlap if tile else 0
    ys, xs = release_tiles(height, tile, overlap), release_tiles(width, tile, overlap)
    check_tile_sides(ys, "height")
    check_tile_sides(xs, "width")
    check_writes(ys, height, overlap, "tile")
    check_writes(xs, width, overlap, "tile")
    return ys, xs


class ReleaseChunkStream:
    """The release's temporal chunks, decided while frames arrive (the same interface as
    windows.ChunkStream, without scene cuts: the release has none).

    Before the end, chunk i is [i S, i S + W) for certain once the frames up to the end of chunk
    i + 1 have been read: chunk i + 1 is then a full one, so chunk i is neither the last nor merged.
    At the end (`frames_read` is then the padded count) the rest comes from `release_chunks`.
    Frames are held until every chunk over them is done: up to W + S frames, and a merged last
    chunk of up to 2W - O - 1.
    """

    def __init__(self, chunk: int, overlap: int) -> None:
        self.chunk = max(chunk, 0)
        self.overlap = overlap if self.chunk else 0
        self.stride = self.chunk - self.overlap
        self.cuts: list[int] = []  # never any: the release does not split at scene cuts
        self.spans: list[Span] = []  # handed out so far
        self._done = False

    def cut(self, at: int) -> None:
        raise ValueError("the release's layout has no scene-cut splitting")

    def weights(self, span: Span) -> np.ndarray:
        """0/1 weights of one chunk's frames: its valid part."""
        return valid_weights(span, None, self.overlap)

    def ready(self, frames_read: int, eof: bool) -> list[Span]:
        """Chunks that can be processed now; at eof, `frames_read` must be the padded count."""
        if self._done:
            return []
        if eof:
            spans = release_chunks(frames_read, self.chunk, self.overlap)
            if spans[: len(self.spans)] != self.spans:  # cannot happen: the rule above is the same
                raise AssertionError("release chunks planned online differ from the whole plan")
            new = spans[len(self.spans) :]
            self._done = True
            for s in new:
                check_chunk_frames(s)
            check_writes(spans, frames_read, self.overlap, "chunk")
            self.spans = spans
            return new
        new = []
        while self.chunk:
            i = len(self.spans)
            start, nxt = i * self.stride, (i + 1) * self.stride
            if frames_read < nxt + self.chunk:
                break
            prev_stop = self.spans[-1].stop if self.spans else None
            span = Span(start, start + self.chunk, prev_stop=prev_stop, next_start=nxt)
            check_chunk_frames(span)
            self.spans.append(span)
            check_writes(self.spans, None, self.overlap, "chunk")
            new.append(span)
        return new

    def final_before(self, frames_read: int, eof: bool) -> int:
        """Frames below this index are covered by no future chunk."""
        if self._done:
            return frames_read
        return len(self.spans) * self.stride  # the next chunk's start (0 for chunk 0: one window at the end)
