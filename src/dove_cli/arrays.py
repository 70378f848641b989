"""Frames in memory as a video: what `upscale_frames()` reads and writes, behind the interfaces of
the file reader (`info`, Frames one at a time, `dropped_frames`) and writer (video_io.VideoWriter),
so that the run is upscale()'s own: chunks, tiles, blending, colour fix and scene cuts alike.

Frames are [T, H, W, 3] RGB: uint8 (0-255); uint16 (0-65535, run as a 16-bit video is); or float in
[0, 1] (ComfyUI's IMAGE batches), run at 16 bits (steps of 1/65535, converted a frame at a time) and
given back in the same float dtype. A torch tensor goes in as its numpy array and comes back as a
tensor of its dtype on its device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dove_cli import resume, video_io
from dove_cli.errors import InputError, OptionError
from dove_cli.options import UpscaleOptions, is_given
from dove_cli.timing import StageTimer
from dove_cli.video_io.sequences import DEFAULT_SEQUENCE_FPS

NAME = Path("frames")  # what messages call the input and the output: upscale_frames' argument
TOP = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}  # integer frames: their code values' range
FLOAT_SLACK = 1 / 1024  # how far outside [0, 1] a float frame may stray (rounding), clipped

# The options about files, and what to do instead: refused for frames in memory, not ignored.
_NOT_ENCODED = "frames in memory come back as an array, not encoded"
FILE_ONLY = {
    "codec": _NOT_ENCODED,
    "crf": _NOT_ENCODED,
    "preset": _NOT_ENCODED,
    "pix_fmt": "the frames come back in the input's dtype (uint16 or float keep 16 bits)",
    "codec_options": _NOT_ENCODED,
    "start_number": "no images are written",
    "audio": "frames in memory have no audio",
    "subtitles": "frames in memory have no subtitles",
    "manifest": "no file is written to describe (the run's warnings go to the 'dove_cli' logger)",
    "overwrite": "no file is written",
    "resume": "nothing is saved on disk to resume from",
    "preview": "pass only the frames wanted (frames[start:stop])",
    "rotate": "turn the array itself (numpy.rot90)",
    "deinterlace": "frames in memory are taken as whole frames",
    "field_order": "frames in memory are taken as whole frames",
    "ignore_decode_errors": "nothing is decoded",
    "video_stream": "the frames are one video already",
    "container": "no file is written",
    "untagged_matrix": "the frames are RGB already: nothing is converted from YUV",
    "untagged_color": "no file's colour tags are read or written",
    "ray": "Ray workers read and write files: use upscale() with a file",
    "workers": "Ray workers read and write files: use upscale() with a file",
}


def check_in_memory(opts: UpscaleOptions) -> None:
    """Refuse, in one line naming it, an option that only means something for files."""
    for name, instead in FILE_ONLY.items():
        if is_given(opts, name):
            raise OptionError(f"{name}=: upscale_frames() reads and writes no file; {instead}")


def as_array(frames: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """The caller's frames as a [T, H, W, 3] numpy array of a dtype the run takes, and the function
    that gives the output back as the same kind of thing (a tensor on the input's device and dtype)."""
    back: Callable[[np.ndarray], Any] = lambda out: out  # noqa: E731
    if isinstance(frames, torch.Tensor):
        device, dtype = frames.device, frames.dtype
        frames = frames.detach().cpu()
        if dtype == torch.bfloat16:  # numpy has no bfloat16
            frames = frames.float()
        back = lambda out: torch.from_numpy(out).to(device=device, dtype=dtype)  # noqa: E731
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise InputError(f"{NAME}: expected RGB frames shaped [T, H, W, 3], got shape {list(array.shape)}")
    if array.dtype not in TOP and array.dtype.kind != "f":
        raise InputError(f"{NAME}: dtype {array.dtype}: expected uint8, uint16 or float (in [0, 1])")
    if not len(array):
        raise InputError(f"{NAME}: no frames (shape {list(array.shape)})")
    if array.dtype.kind == "f":
        check_float_range(array)
    return array, back


def check_float_range(frames: np.ndarray) -> None:
    """Float frames are in [0, 1]: 0-255 values (uint8 frames cast to float) or [-1, 1] ones would be
    clipped into a washed-out picture, so they are refused before any work, naming the frame. A
    rounding error's overshoot (1/1024) is let through, and clipped."""
    for i, frame in enumerate(frames):
        if not np.isfinite(frame).all():
            raise InputError(f"{NAME}[{i}]: holds NaN or infinite values (expected floats in [0, 1])")
        low, high = float(frame.min()), float(frame.max())
        if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
            hint = ("; 0-255 values: divide by 255" if 2 < high <= 255 and low >= 0
                    else "; -1 to 1 values: (x + 1) / 2" if -1 - FLOAT_SLACK <= low < 0 and high <= 1 + FLOAT_SLACK
                    else "")  # fmt: skip
            raise InputError(f"{NAME}[{i}]: values from {low:.4g} to {high:.4g}: expected floats in [0, 1]{hint}")


class ArraySource:
    """A [T, H, W, 3] array read as a video file is: its `info`, then one Frame at a time, at `fps`
    (timestamps only; the pixels do not depend on it)."""

    def __init__(self, frames: np.ndarray, fps: str | None) -> None:
        self.frames, self.path, self.dropped_frames = frames, NAME, 0
        rate = Fraction(fps) if fps else DEFAULT_SEQUENCE_FPS
        t, h, w, _ = frames.shape
        bits = 8 if frames.dtype == np.uint8 else 16  # floats are taken at 16 bits
        self.info = video_io.VideoInfo(path=NAME, width=w, height=h, num_frames=t, fps=rate, time_base=1 / rate,
                                       bit_depth=bits, pix_fmt="rgb24" if bits == 8 else "rgb48le",
                                       num_frames_exact=True, duration=float(t / rate), base_fps=rate)  # fmt: skip

    def __iter__(self) -> Iterator[video_io.Frame]:
        for i, frame in enumerate(self.frames):
            yield video_io.Frame(self._codes(frame), i, i)

    @staticmethod
    def _codes(frame: np.ndarray) -> np.ndarray:
        """A frame as the reader gives one: uint8, or uint16 on the full 0-65535 scale."""
        if frame.dtype in TOP:
            return frame
        wide = frame.astype(np.float32) if frame.itemsize < 4 else frame  # float16 overflows at 65535
        return (np.clip(wide, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)  # rounded; FLOAT_SLACK's overshoot clipped

    def close(self) -> None:
        pass

    def __enter__(self) -> ArraySource:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class ArraySink(video_io.VideoWriter):
    """The output frames, in one [T, H, W, 3] array of the input's dtype (allocated when the run
    opens it, at the output's size): code values as they are for uint8 and uint16, /65535 for floats."""

    def __init__(self, frames: int, dtype: np.dtype) -> None:
        self.path, self.frames_written = NAME, 0
        self.total, self.dtype = frames, dtype
        self.out: np.ndarray | None = None

    def nbytes(self, height: int, width: int) -> int:
        """What the output array of this size takes (counted in the plan's host memory)."""
        return self.total * height * width * 3 * self.dtype.itemsize

    def open(self, width: int, height: int) -> None:
        self.out = np.empty((self.total, height, width, 3), self.dtype)

    def write(self, rgb: np.ndarray, pts: int | None = None, captions: Any = None) -> None:
        assert self.out is not None, "open() first"
        if self.dtype in TOP:
            self.out[self.frames_written] = rgb
        else:  # 16-bit codes (the run's output for a 16-bit input) back to [0, 1]
            np.divide(rgb, 65535.0, out=self.out[self.frames_written], casting="unsafe")
        self.frames_written += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def frames(self) -> np.ndarray:
        """The output, once every frame is written."""
        assert self.out is not None and self.frames_written == self.total, "the run has not finished"
        return self.out


class ArraySession(resume.Session):
    """A run into memory: nothing saved on disk, so nothing to resume or clean up (an interrupted run
    says "nothing was kept"); its writer is the sink."""

    def __init__(self, sink: ArraySink) -> None:
        super().__init__(NAME, {}, resume=False, overwrite=False)
        self.work = None
        self.sink = sink

    def open_writer(self, info: video_io.VideoInfo, width: int, height: int, *, writer_options: dict[str, Any],
                    join_options: dict[str, Any]) -> video_io.VideoWriter:  # fmt: skip
        self.sink.open(width, height)
        return self.sink

    def close_writer(self, writer: video_io.VideoWriter, info: video_io.VideoInfo, timer: StageTimer,
                     joining: Callable[[], None] | None = None) -> None:  # fmt: skip
        """Frames in memory have no segments to join: `joining` is not called."""
        super().close_writer(writer, info, timer)
