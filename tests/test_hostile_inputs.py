"""Inputs a stranger may upload (a service's worker runs dove on them): a header that claims billions of
pixels, a device behind a file name, a tag of a megabyte. Each is one line and exit 2, or shown cut short;
never a traceback, never Pillow's own warning lines."""

from __future__ import annotations

import contextlib
import struct
import warnings
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from dove_cli.cli import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A gray PNG whose header claims `width` x `height` over one row of pixel data: what a bomb's
    header says, without its megabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


@pytest.mark.parametrize("command", ["info", "upscale"])
def test_a_header_claiming_billions_of_pixels_is_one_line(tmp_path, capsys, command):
    """Pillow's decompression-bomb error (over 179 M pixels) was a 70-line traceback and exit 1."""
    bomb = png_claiming(tmp_path / "bomb.png", 65535, 65535)
    argv = [command, str(bomb)] + (["-o", str(tmp_path / "out.png"), "--model", "bilinear"] * (command == "upscale"))
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "bomb.png: its header claims 4,294,836,225 pixels" in err and "Traceback" not in err
    assert not list(tmp_path.glob("out*"))


def test_a_large_header_is_no_pillow_warning(tmp_path, capsys):
    """Between 89 M and 179 M pixels Pillow warns in its own words (a Python file path, twice): dove's
    plan judges such an image, not Pillow."""
    big = png_claiming(tmp_path / "big.png", 10000, 10000)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with contextlib.suppress(SystemExit):
            main(["info", str(big)])
    assert not [w for w in seen if "DecompressionBomb" in type(w.message).__name__], seen


def test_a_device_behind_a_file_name_is_said_as_a_device(tmp_path, capsys):
    """A link to /dev/zero (read only: nothing is written to it) was "standard input or a pipe"."""
    link = tmp_path / "zero.mp4"
    link.symlink_to("/dev/zero")
    code, _, err = run(["info", str(link)], capsys)
    assert code == 2 and "zero.mp4: is a device (/dev/zero), not a file" in err and "pipe" not in err, err


def test_a_megabyte_tag_is_shown_cut_short(tmp_path, capsys):
    """`dove info` printed a 1 MB title as one line of a million characters; --json keeps it whole."""
    clip = tmp_path / "tagged.mkv"
    title = "A" * 5000
    with av.open(str(clip), "w") as c:
        c.metadata["title"] = title
        s = c.add_stream("ffv1", rate=4)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for _ in range(2):
            for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    code, out, _ = run(["info", str(clip)], capsys)
    assert code == 0 and max(len(line) for line in out.splitlines()) < 400
    assert "A" * 200 + "... (5,000 characters)" in out
    code, out, _ = run(["info", "--json", str(clip)], capsys)
    assert code == 0 and title in out
