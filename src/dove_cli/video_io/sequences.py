"""Image-sequence names and numbers, both ways: the name a pattern gives image N (`frame_name`) and
the number a name holds (`frame_number`); the numbering a folder of images follows (`numbering`,
`frame_numbers`), its gaps (`missing_numbers`) and strays (`numbered`); and the number each image of
an image pattern output gets (`output_numbers`: each input image's own, a gap kept, or one after
another from --start-number). Pure: names and numbers in, names and numbers out (no file is opened).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

DEFAULT_SEQUENCE_FPS = Fraction(25)  # what ffmpeg assumes for image sequences
# A run's --preview span: (start, duration) in seconds, as options.parse_preview reads it; None: the whole input
Preview = tuple[Fraction, Fraction] | None
FIELD = re.compile(r"%0?(\d*)d")  # the frame number in an image pattern: %d, %06d


def frame_name(pattern: Path, n: int) -> str:
    """The file name of image `n` of a pattern: frames/%06d.png -> 000001.png for n = 1. The field is
    zero-padded to its width as ffmpeg's image2 muxer does (`%3d` too, where Python would pad with spaces)."""
    m = FIELD.search(pattern.name)
    assert m is not None
    return pattern.name[: m.start()] + f"{n:0{int(m[1] or 0)}d}" + pattern.name[m.end() :]


def frame_number(pattern: Path, name: str) -> int | None:
    """The number n whose image the pattern names `name`, or None when the pattern could never write it:
    `%04d` writes 0001 and 12345 but not 000001, `%d` writes no leading zeros. The one rule both ways:
    an image pattern input reads only these names (as ffmpeg's image2 demuxer builds each name from
    the pattern), and --overwrite may replace or remove only these, never another sequence in the folder."""
    m = FIELD.search(pattern.name)
    assert m is not None
    head, tail = pattern.name[: m.start()], pattern.name[m.end() :]
    if not (name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail)):
        return None
    digits = name[len(head) : len(name) - len(tail)]
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits) if frame_name(pattern, int(digits)) == name else None


def natural_key(name: str) -> tuple[list[int | str], str]:
    """Sort key of names in natural order, numbers as numbers and case aside: frame_2 before frame_10,
    clip1, Clip3, clip10 (the name itself breaks ties, so the order does not hang on the folder's)."""
    return [int(t) if i % 2 else t.casefold() for i, t in enumerate(re.split(r"(\d+)", name))], name


def loose_number(pattern: Path, name: str) -> int | None:
    """The number in `name` where it is the pattern's but for the digits' zero padding (`%d` and
    0001.png), else None: for a "did you mean" hint only. What a pattern reads is `frame_number`'s."""
    m = FIELD.search(pattern.name)
    assert m is not None
    rx = re.escape(pattern.name[: m.start()]) + r"(\d+)" + re.escape(pattern.name[m.end() :])
    return int(mm[1]) if (mm := re.fullmatch(rx, name)) else None


def runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs of consecutive ones: [4, 5, 6, 9] -> [(4, 6), (9, 9)]."""
    ranges: list[tuple[int, int]] = []
    for n in numbers:
        if ranges and n <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def _shape(name: str) -> tuple[str, ...]:
    """A name without its numbers: frame_0001.png and frame_0002.PNG -> ('frame_', '.png')."""
    return tuple(t.lower() for t in re.split(r"\d+", name))


def numbered(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the images of a folder's main naming pattern, prefix + number + suffix, the others): a stray
    0003_edit.png among 0001..0020.png, or other_0001.png and slate.png among frame_0001..0009.png,
    would be read as frames in name order. ([all], []) when no pattern of numbered names holds two."""
    shapes = [_shape(f.name) for f in files]
    main, count = Counter(shapes).most_common(1)[0] if shapes else ((), 0)
    if len(main) < 2 or count < 2:
        return files, []
    return [f for f, s in zip(files, shapes, strict=True) if s == main], [
        f for f, s in zip(files, shapes, strict=True) if s != main
    ]


def frame_numbers(files: list[Path]) -> list[int]:
    """The sorted frame numbers of a numbered sequence's main pattern (`numbered`): the one number
    that changes from name to name, the rest of the names alike; [] otherwise."""
    parts = [re.split(r"(\d+)", f.name) for f in numbered(files)[0]]  # text, digits, text, ...: digits at odd places
    if len(parts) < 2 or len({len(p) for p in parts}) != 1:
        return []
    changing = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    if len(changing) != 1 or changing[0] % 2 == 0:
        return []
    return sorted(int(p[changing[0]]) for p in parts)


def numbering(files: list[Path]) -> tuple[str, list[int]] | None:
    """The image pattern (a file name) that names `files`, in order, and each one's number, counting
    up (a gap allowed): 0000.png, 0001.png, 0003.png -> ('%04d.png', [0, 1, 3]); frame_1.png ...
    frame_12.png -> ('frame_%d.png', [1, ..., 12]). None when no pattern does (a stray name, zero
    padding that changes): a folder or pattern output writes each image under its input's number."""
    head = files[0].name
    for m in reversed(list(re.finditer(r"\d+", head))):  # the last number first: clip2_0001.png
        digits = m[0]
        field = f"%0{len(digits)}d" if digits.startswith("0") and len(digits) > 1 else "%d"
        pattern = head[: m.start()] + field + head[m.end() :]
        if len(FIELD.findall(pattern)) != 1:  # a name with a %d of its own
            continue
        numbers = [n for f in files if (n := frame_number(Path(pattern), f.name)) is not None]
        if len(numbers) == len(files) and all(a < b for a, b in itertools.pairwise(numbers)):
            return pattern, numbers
    return None


def first_number(files: list[Path]) -> int:
    """The number an image pattern output starts at unless --start-number says: the input's first
    image's (0 for 0000.png, 0001.png, ...; `numbering`, else the numbered sequence's first), so that
    frame N of the input is image N of the output; 1, as ffmpeg's, for a video or unnumbered names."""
    named = numbering(files) if files else None
    numbers = frame_numbers(files)
    return named[1][0] if named else numbers[0] if numbers else 1


def missing_numbers(files: list[Path]) -> list[tuple[int, int]]:
    """The ranges of frame numbers absent from a numbered sequence (f_0001, f_0002, f_0005 -> [(3, 4)])."""
    numbers = frame_numbers(files)
    return [(a + 1, b - 1) for a, b in itertools.pairwise(numbers) if b > a + 1]


def own_pattern(files: list[Path]) -> str:
    """A pattern like the names of a sequence's main numbering (`numbered`), for advice: its first
    name's last number at its own padding, in its format (shot_0086400.tif -> shot_%07d.tif)."""
    name = numbered(files)[0][0].name
    digits = list(re.finditer(r"\d+", name))
    if not digits:
        return "%06d" + Path(name).suffix
    m = digits[-1]
    field = f"%0{len(m[0])}d" if len(m[0]) > 1 and m[0].startswith("0") else "%d"
    return name[: m.start()] + field + name[m.end() :]


def default_start(files: list[Path], preview: Preview, fps: str | float | Fraction | None) -> int:
    """The number of an image pattern output's first image unless --start-number says: that of the
    input image that is its first frame (0000.png in, 0000.png out; a --preview from its 10th image,
    0010.png: `first_number`); 1 for a video, as ffmpeg's image2 muxer."""
    return first_number(files) + _image_span(len(files), preview, fps).start if files else 1


def output_numbers(files: list[Path], preview: Preview, fps: str | float | Fraction | None,
                   start_number: int | None) -> list[int]:  # fmt: skip
    """The number of each image an image pattern output of the sequence `files` gets, in order (of the
    `preview` span at `fps`): each image's own (`numbering`: a gap in, the same gap out, so that a
    conform's frame N stays frame N), else one after another from --start-number `start_number`, or
    from the first one's number (`default_start`) where the names hold no one numbering (stray names)."""
    span = _image_span(len(files), preview, fps)
    if start_number is None and (named := numbering(files)) is not None:
        return [named[1][i] for i in span]
    start = default_start(files, preview, fps) if start_number is None else start_number
    return list(range(start, start + len(span)))


def renumbered(files: list[Path], preview: Preview, fps: str | float | Fraction | None,
               numbers: list[int]) -> list[tuple[Path, int]]:  # fmt: skip
    """(image, its output number) for each image of the span that `numbers` (`output_numbers`) shifts
    otherwise than the first one: those after a gap in the input's numbering that one-after-another
    numbers (--start-number, stray names) close. [] where each keeps its place."""
    span = _image_span(len(files), preview, fps)
    pattern = Path(own_pattern(files))
    own = [frame_number(pattern, files[i].name) for i in span]
    if not own or own[0] is None:
        return []
    shift = numbers[0] - own[0]
    return [(files[i], n) for i, o, n in zip(span, own, numbers, strict=False) if o is not None and n - o != shift]


def sequence_rate(fps: str | float | Fraction | None) -> Fraction:
    """The rate images are read at: --fps (a float as the fraction a rate means: 1/3, not 0.333...),
    else ffmpeg's 25."""
    return Fraction(fps).limit_denominator(1001000) if fps else DEFAULT_SEQUENCE_FPS


def span_indices(count: int, fps: Fraction, start: Fraction, duration: Fraction | None) -> range:
    """The indices of the frames, one each 1/fps s from 0 (of `count`), with start <= t < start +
    duration (seconds from the first frame; None: to the end): from the first frame at or after each
    end. The one rule of a --preview span: what a plan counts, a reader keeps and an output numbers."""
    first = max(0, math.ceil(start * fps))
    return range(count)[first : None if duration is None else max(first, math.ceil((start + duration) * fps))]


def _image_span(images: int, preview: Preview, fps: str | float | Fraction | None) -> range:
    """The indices of the images of a sequence that a run reads: the --preview span at `fps`, as the
    reader selects them (`span_indices`)."""
    at, span = preview if preview else (Fraction(0), None)
    return span_indices(images, sequence_rate(fps), at, span)
