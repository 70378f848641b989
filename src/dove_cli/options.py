"""Every option of `dove upscale`, declared once: its default, its choices and its help.

`UpscaleOptions` is the Python API's configuration; the command line is built from its fields
(cli.py), so a default or a choice is written in one place only. Choices come from the `Literal`
types, help and command-line spelling from `option(...)`. `check_options` checks values that a
type cannot say (4k+1 chunks, overlaps smaller than windows, times), before any work starts, and
normalises them (what `--parity` sets, overlaps cut to fit, crop, size and container as written
down): the `CheckedOptions` the run's inner functions take, checked once at the API's edge.

This module imports no torch, so that `dove --help` starts at once.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from functools import cache
from types import UnionType
from typing import Any, ClassVar, Literal, NamedTuple, TypedDict, Union, get_args, get_origin, get_type_hints

from dove_cli.errors import OptionError
from dove_cli.geometry import crop_option, parse_size
from dove_cli.release_layout import RELEASE_CHUNK_OVERLAP, RELEASE_TILE_OVERLAP
from dove_cli.windows import BlendMode, check_chunk, check_tile, fitting_chunk_overlap, fitting_tile_overlap

AUTO = -1  # tile/chunk value meaning "choose from free memory"
DEFAULT_CHUNK = 33  # --chunk auto: the paper's clip length, 33 frames -> 9 latent frames

ColorFix = Literal["none", "wavelet", "adain"]
Posterior = Literal["sample", "mode"]
Offload = Literal["none", "model", "sequential"]
Quantize = Literal["none", "int8", "nf4", "fp8"]
Compile = Literal["off", "transformer", "all"]
Attention = Literal["auto", "flash", "efficient", "cudnn", "math"]
UntaggedMatrix = Literal["auto", "bt601", "bt709"]
UntaggedColor = Literal["none", "bt709", "bt2020-pq", "bt2020-hlg"]  # (formats.UNTAGGED_COLORS)
# --untagged-matrix, as `dove upscale` and `dove eval` both take it
UNTAGGED_MATRIX_HELP = ("How YUV video without a matrix tag is read: auto (BT.709 for HD, BT.601 for SD, as players "
                        "guess), or bt601 (as FFmpeg, decord and OpenCV read it, and so the authors' scripts) or "
                        "bt709 whatever its size.")  # fmt: skip

# The colour settings of FFmpeg's encoders, which dove sets from the input so that tags and pixels agree
# (as --codec-option they tagged the output with a colour its pixels were not converted to), and what to use.
_TAGS = "give an untagged input's colour with --untagged-color (bt709, bt2020-pq, bt2020-hlg)"
COLOUR_CODEC_OPTIONS = {
    "color_primaries": _TAGS,
    "color_trc": _TAGS,
    "colorspace": "give an untagged input's matrix with --untagged-matrix, or all its colour with --untagged-color",
    "color_range": "the output keeps the input's range (RGB becomes limited-range YUV); --pix-fmt yuvj420p writes "
    "full range",
}
# The same settings inside an encoder's own list (--codec-option x264-params=colorprim=bt2020:...), by the
# names x264 (common/base.c), x265 (param.cpp) and SVT-AV1 read them, and the codec option each one is.
_X264_COLOUR = {"colorprim": "color_primaries", "transfer": "color_trc", "colormatrix": "colorspace",
                "fullrange": "color_range"}  # fmt: skip
PARAM_LIST_COLOUR_KEYS = {
    "x264-params": _X264_COLOUR,
    "x264opts": _X264_COLOUR,  # libx264's older list, read the same way
    "x265-params": {"colorprim": "color_primaries", "transfer": "color_trc", "colormatrix": "colorspace",
                    "range": "color_range"},
    "svtav1-params": {"color-primaries": "color_primaries", "transfer-characteristics": "color_trc",
                      "matrix-coefficients": "colorspace", "color-range": "color_range"},
}  # fmt: skip


@dataclass(frozen=True)
class Cli:
    """How a field appears on the command line (`--name` is the field name in kebab case)."""

    help: str
    flag: str | None = None  # another long name (e.g. --codec-option for codec_options)
    short: str | None = None
    metavar: str | None = None
    shown_default: str | None = None  # default as the user types it ("auto" for AUTO)
    parse: Callable[[Any, str], Any] | None = None  # (command-line value, flag) -> field value
    hidden: bool = False  # not a command-line option (a config-file key only)


def option(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field that carries its command-line help and spelling."""
    meta = {"cli": Cli(help, **cli)}
    if isinstance(default, (dict, list)):  # mutable: each instance gets its own copy
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def parse_size_option(value: str | int, name: str) -> int:
    """'auto' -> AUTO, otherwise a non-negative integer."""
    if isinstance(value, int):
        return value
    if value.strip().lower() == "auto":
        return AUTO
    try:
        n = int(value)
    except ValueError:
        raise OptionError(f"{name} must be a number or 'auto', got {value!r}") from None
    if n < 0:
        raise OptionError(f"{name} must not be negative, got {n}")
    return n


def parse_codec_options(pairs: list[str] | dict[str, str], name: str = "--codec-option") -> dict[str, str]:
    """['crf=18', 'x264-params=...'] -> {'crf': '18', ...}."""
    if isinstance(pairs, dict):
        return dict(pairs)
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise OptionError(f"{name} {pair!r} must be key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)s?$")


def parse_time(text: str) -> Fraction:
    """'80', '80.5s', '1:20', '01:01:20.5' -> seconds, exactly as written: 1.001 is 1001/1000, not the
    float just below it (a --preview starting on a chapter's end kept that chapter, 0 s long)."""
    m = _TIME.match(text.strip())
    if not m:
        raise OptionError(f"cannot read time {text!r} (use seconds, M:SS or H:MM:SS)")
    a, b, c = m.groups()
    seconds = Fraction(0)
    for part in [x for x in (a, b) if x is not None] + [c]:
        seconds = seconds * 60 + Fraction(part)
    return seconds


def parse_preview(text: str) -> tuple[Fraction, Fraction]:
    """'1:20+5s' -> (80, 5) seconds."""
    if "+" not in text:
        raise OptionError(f"--preview {text!r} must be START+DURATION, e.g. 1:20+5s")
    start, dur = text.split("+", 1)
    s, d = parse_time(start), parse_time(dur)
    if d <= 0:
        raise OptionError(f"--preview duration must be positive in {text!r}")
    return s, d


class PreviewSpan(NamedTuple):
    """--preview in seconds on the file's clock (from its start, as `ffmpeg -ss` counts): where it starts
    and ends (the writer's terms, for audio and subtitles), and `duration` (the reader's); all None
    without --preview."""

    start: Fraction | None = None
    end: Fraction | None = None

    @property
    def duration(self) -> Fraction | None:
        return None if self.start is None or self.end is None else self.end - self.start


def preview_span(preview: str | None) -> PreviewSpan:
    """--preview START+DURATION as a PreviewSpan (OptionError for one that does not read)."""
    if not preview:
        return PreviewSpan()
    start, duration = parse_preview(preview)
    return PreviewSpan(start, start + duration)


@dataclass
class UpscaleOptions:
    """Everything `dove upscale` can be told. Sizes are output pixels; AUTO = choose from memory."""

    # The field that opens each panel of `dove upscale --help`; the fields after it belong to it too.
    HELP_PANELS: ClassVar[dict[str, str]] = {
        "model": "Model and device",
        "tile": "Windows: tiles, chunks and blending",
        "fps": "Input",
        "codec": "Output",
        "ray": "Many GPUs and machines (Ray)",
    }

    # -- model
    model: str | None = option(
        None,
        "Model folder or hub id (default: the downloaded DOVE); bilinear (no network, a preview), tiny (a tiny "
        "random DOVE: the real code path) or full-random (the 5B architecture, random weights).",
        short="-m",
        metavar="NAME",
    )
    scale: int = option(4, "Upscaling factor, a whole number (any other size: --size).", short="-s", metavar="N")
    device: str | None = option(None, "cuda, cuda:1 or cpu (default: cuda when present).", metavar="DEVICE")
    dtype: Literal["bf16", "fp16", "fp32"] | None = option(None, "Default: bf16 on a GPU, fp32 on the CPU.")
    vram: float | None = option(None, "Plan for a GPU with this much memory (GiB): with --dry-run, on any machine, "
                                "the settings for that card; on a GPU, use at most that much.", metavar="GIB")  # fmt: skip
    offload: Offload = option("none", "model: one part on the GPU at a time; sequential: layer by layer.")
    vae_tiling: bool = option(False, "Let the VAE tile internally (less memory).")
    quantize: Quantize = option("none", "Transformer weights in int8 or nf4 (bitsandbytes), or fp8 (torchao; fp8 "
                                "GPUs: Ada, Hopper, Blackwell).")  # fmt: skip
    compile: Compile = option("off", "torch.compile the transformer, or all (the VAE decoder too): a GPU speed-up; "
                              "the first window of each shape compiles (minutes).")  # fmt: skip
    attention: Attention = option("auto", "The transformer's attention kernel (torch SDPA): auto lets torch choose; "
                                  "efficient and cudnn need a CUDA GPU; math is the plain reference.")  # fmt: skip
    posterior: Posterior = option("sample", "VAE posterior: sample (seeded, the release) or mode.")
    seed: int = option(42, "Seed for --posterior sample.", metavar="N")
    download: bool = option(False, "Download the default weights if missing.")
    # -- windows
    tile: int = option(AUTO, "Tile size in output px; 0 = whole frame; auto = fit free memory.", metavar="PX|auto",
                       shown_default="auto", parse=parse_size_option)  # fmt: skip
    tile_overlap: int = option(32, "Tile overlap in output px (32 is seamless with cosine blending; also the authors' "
                               "default, which --parity keeps).", metavar="PX")  # fmt: skip
    chunk: int = option(AUTO, "Frames per window, 4k+1 (e.g. 33; 8k or 8k+1 with --parity); 0 = whole video; auto.",
                        metavar="N|auto", shown_default="auto", parse=parse_size_option)  # fmt: skip
    chunk_overlap: int = option(8, "Frames shared by neighbouring chunks.", metavar="N")
    blend: BlendMode = option(
        "cosine", "cosine: smooth ramps across each overlap; hard: a cut in the middle of each overlap."
    )
    pad: Literal["replicate", "zero"] = option(
        "replicate", "Pad to the model block by repeating the edge, or with zeros."
    )
    parity: bool = option(
        False,
        "Reproduce the authors' inference_script.py: untagged video read as BT.601, their padding and crop, "
        "chunk/tile layout and valid-region cut, VAE tiling, no colour fix, no scene cuts, truncation to 8 bits, "
        "and their h264 yuv444p CRF 0 file; auto tile/chunk = none (whole video).",
    )
    scene_cuts: Literal["auto", "off"] = option("auto", "auto: no window spans a shot change.")
    color_fix: ColorFix = option("wavelet", "Keep the input's colours (low frequencies or channel statistics).")
    # -- input
    fps: str | None = option(
        None,
        "Frame rate of an image-sequence input, or of a bare video stream (.h264, .hevc, .m2v: default the rate "
        "it states, else 25), e.g. 24000/1001; up to 1000.",
        metavar="RATE",
    )
    rotate: Literal["keep", "apply"] = option(
        "keep", "keep the rotation tag (phone videos), or apply it to the pixels."
    )
    deinterlace: Literal["off", "frame", "field", "ivtc"] = option(
        "off",
        "frame (bwdif, same rate), field (a frame per field, 50i -> 50p) or ivtc (undo 3:2 pulldown: "
        "film telecined to 29.97 frames/s back to its 23.976).",
    )
    field_order: Literal["auto", "tff", "bff"] = option(
        "auto",
        "The order --deinterlace takes an interlaced video's fields in: auto (what FFmpeg's idet measures in its "
        "first frames where that is clear, else the flag), tff (top field first) or bff (bottom), over both.",
    )
    ignore_decode_errors: bool = option(False, "Skip undecodable frames (reported) instead of stopping.")
    video_stream: int | None = option(
        None, "The video stream to upscale, numbered as dove info lists it (#2): for a file with several, such as "
        "an MPEG-TS of two programmes (its own programme's audio and subtitles go with it); default: the first.",
        metavar="N",
    )  # fmt: skip
    untagged_matrix: UntaggedMatrix = option(
        "auto", UNTAGGED_MATRIX_HELP + " --parity reads bt601 unless this is given."
    )
    untagged_color: UntaggedColor = option(
        "none", "The colour of an input without colour tags (a TIFF or DPX sequence, an untagged video): bt709, "
        "bt2020-pq (HDR10) or bt2020-hlg, which fills each tag it lacks, the primaries, the transfer and (YUV "
        "video, unless --untagged-matrix is given) the matrix; the output is tagged and converted as for an input "
        "that has them. none: left untagged.", metavar="NAME",
    )  # fmt: skip
    preview: str | None = option(
        None,
        "Only START+DURATION, e.g. 1:20+5s; START on the file's clock, as players and ffmpeg -ss count it.",
        metavar="SPAN",
    )
    crop: str | None = option(None, "Cut pixels off the input before upscaling: LEFT:TOP:RIGHT:BOTTOM, in input "
                              "pixels as stored (black bars, overscan, VHS head-switching noise), or auto: the black "
                              "bars found in frames sampled across the video (FFmpeg's cropdetect rule).",
                              metavar="L:T:R:B|auto")  # fmt: skip
    # -- output
    codec: str | None = option(
        None,
        "h264 (or x264), hevc (or h265, x265), av1, vp9, ffv1, prores, png, h264_nvenc, hevc_nvenc "
        "(default: h264; hevc for HDR input in .mp4/.mov/.mkv/.ts/.m2ts; vp9 for .webm).",
        metavar="CODEC",
    )
    container: str | None = option(
        None, "Folder runs: give every output this extension, e.g. mp4 (default: the input's; .mkv for one dove only "
        "reads, such as .avi or .flv).", metavar="EXT",
    )  # fmt: skip
    crf: int | None = option(None, "Quality (codec default: visually lossless).", metavar="N")
    preset: str | None = option(
        None, "Encoder preset (prores: its profile, proxy to 4444xq; default hq).", metavar="NAME"
    )
    pix_fmt: str | None = option(None, "e.g. yuv420p, yuv444p, yuv420p10le.", metavar="FMT")
    codec_options: dict[str, str] = option(
        {}, "key=value passed to the encoder (repeatable).", flag="--codec-option", metavar="K=V",
        parse=parse_codec_options,
    )  # fmt: skip
    start_number: int | None = option(None, "Number of an image pattern's first image (as ffmpeg's image2 "
                                      "-start_number; default: the input's first image's, else 1).", metavar="N")  # fmt: skip
    audio: Literal["copy", "transcode", "none"] = option(
        "copy", "copy, transcode (every track to AAC, Opus in .webm; one that is so already is copied) or none."
    )
    subtitles: Literal["copy", "none"] = option("copy", "copy or none.")
    size: str | None = option(None, "Resample the model's output to this size, square pixels (Lanczos): 1080p, "
                              "1440p, 2160p or 4k (the width from the display aspect), or WxH of that shape.",
                              metavar="SIZE")  # fmt: skip
    compare: bool = option(False, "Write input (bilinear) | output side by side, as players show it (no subtitles).")
    manifest: str | None = option(None, "Write a JSON sidecar of the run here.", metavar="FILE")
    overwrite: bool = option(False, "Replace an existing output (and any unfinished run).")
    resume: bool = option(
        False, "Continue an interrupted run (from OUTPUT.dove-work/); with --overwrite, start over when it cannot."
    )
    # -- many GPUs and machines (dove_cli.distributed)
    ray: str | None = option(
        None, "Share the work between Ray workers: local (start Ray here), auto (the running cluster) or "
        "ray://HOST:PORT. Needs Ray: pip install dove-cli[ray] (quoted in zsh).", metavar="ADDRESS",
    )  # fmt: skip
    workers: int | None = option(
        None, "Ray workers, one model and one GPU each (default: the cluster's GPUs; CPUs without one).", metavar="N"
    )
    # The fields a user set (the command line's flags, the API's keyword overrides): a value equal to
    # its default is then still the user's (`--chunk 5 --chunk-overlap 8` is refused, not cut to fit).
    given: frozenset[str] = field(default=frozenset(), metadata={"cli": Cli("", hidden=True)})

    def __post_init__(self) -> None:
        """Values as the command line takes them are taken here too, and parsed as upscale()'s keywords
        are (`keyword_value`: tile="auto", codec_options="crf=18"); a value of another type, or not
        among an option's choices, is one OptionError line naming it, not a TypeError later."""
        for name in _spec():
            if name != "given":
                setattr(self, name, keyword_value(name, getattr(self, name)))


@dataclass
class CheckedOptions(UpscaleOptions):
    """Options as `check_options` leaves them: every value checked, and normalised (what --parity sets,
    default overlaps cut to fit the windows, crop, size and container as written down). What the
    run's inner functions (make_plan, the folder run's files) take, so that a type checker says the
    options were checked once, at the edge (upscale(), upscale_batch(), load_model(), the command
    line). Made checked: `dataclasses.replace` on one checks again (a resumed run's windows, a
    smaller --tile to try), so a CheckedOptions is never unchecked."""

    def __post_init__(self) -> None:
        """Parse (as UpscaleOptions does), check and normalise, in place: for check_options, and for
        every `replace` on one."""
        checked = _checked(_plain(self))
        for name in _spec():
            setattr(self, name, getattr(checked, name))


def _plain(opts: UpscaleOptions) -> UpscaleOptions:
    """The options' values as a plain (unchecked) UpscaleOptions."""
    return UpscaleOptions(**{name: getattr(opts, name) for name in _spec()})


class UpscaleKeywords(TypedDict, total=False):
    """The keyword overrides `upscale()`, `upscale_batch()` and `load_model()` take, for type checkers
    (a misspelt keyword, a value of another type): UpscaleOptions' fields, whose values may also be
    the command line's text (tile="auto", chunk="33") or, for a path, a Path (`keyword_value`).
    tests/test_upscale.py keeps the two in step."""

    model: str | os.PathLike[str] | None
    scale: int | str
    device: str | None
    dtype: Literal["bf16", "fp16", "fp32"] | None
    vram: float | str | None
    offload: Offload
    vae_tiling: bool
    quantize: Quantize
    compile: Compile
    attention: Attention
    posterior: Posterior
    seed: int | str
    download: bool
    tile: int | str
    tile_overlap: int | str
    chunk: int | str
    chunk_overlap: int | str
    blend: BlendMode
    pad: Literal["replicate", "zero"]
    parity: bool
    scene_cuts: Literal["auto", "off"]
    color_fix: ColorFix
    fps: str | int | float | Fraction | None
    rotate: Literal["keep", "apply"]
    deinterlace: Literal["off", "frame", "field", "ivtc"]
    field_order: Literal["auto", "tff", "bff"]
    ignore_decode_errors: bool
    video_stream: int | str | None
    untagged_matrix: UntaggedMatrix
    untagged_color: UntaggedColor
    preview: str | None
    crop: str | None
    codec: str | None
    container: str | None
    crf: int | str | None
    preset: str | None
    pix_fmt: str | None
    codec_options: dict[str, str] | str
    start_number: int | str | None
    audio: Literal["copy", "transcode", "none"]
    subtitles: Literal["copy", "none"]
    size: str | None
    compare: bool
    manifest: str | os.PathLike[str] | None
    overwrite: bool
    resume: bool
    ray: str | None
    workers: int | str | None


# Options of `dove upscale` that are no UpscaleOptions field: what a Python caller does instead.
_SCORE = "in Python, score the output with dove_cli.metrics.evaluate.evaluate(output, gt, metrics)"
COMMAND_LINE_ONLY = {
    "quiet": "the Python API draws no progress bar (pass progress=CALLBACK for one) and says notes and warnings "
    "through the 'dove_cli' logger (logging.getLogger('dove_cli').setLevel(logging.ERROR) silences them)",
    "eval": _SCORE,
    "eval_metrics": _SCORE,
    "eval_json": _SCORE + ", then .write_json(FILE) on the report",
    "eval_crop_border": _SCORE + ", crop_border=PX",
    "dry_run": "upscale(..., dry_run=True) returns the plan; for a folder, dove_cli.upscale_batch(..., dry_run=True)",
    "recursive": "dove_cli.upscale_batch(IN_DIR, OUT_DIR, recursive=True) takes the videos of a folder's sub-folders",
}


def check_keywords(names: Iterable[str]) -> None:
    """Raise OptionError, one line, for a keyword that is no UpscaleOptions field: what to do instead
    for the command line's own options (--quiet, --eval), "did you mean" for a misspelling."""
    known = [f.name for f in fields(UpscaleOptions)]
    for name in names:
        if name in known:
            continue
        if name in COMMAND_LINE_ONLY:
            flag = "--" + name.replace("_", "-")
            raise OptionError(f"{name}=: {flag} is for the command line only; {COMMAND_LINE_ONLY[name]}")
        close = difflib.get_close_matches(name, [*known, "dry_run"], n=1, cutoff=0.7)  # dry_run: upscale()'s own
        hint = f"did you mean {close[0]}=?" if close else "dove_cli.UpscaleOptions lists them"
        raise OptionError(f"{name}=: no such option; {hint}")


def check_paths(**paths: object) -> None:
    """The files of `upscale()` and `upscale_batch()` are paths: another value (None, a number) is one
    OptionError line naming the argument, not os.fspath's TypeError from deep in the run."""
    for name, value in paths.items():
        if not isinstance(value, (str, os.PathLike)):
            raise OptionError(f"{name}={value!r}: expected a path (a str or a pathlib.Path)")


@cache
def _spec() -> dict[str, tuple[Cli, Any]]:
    """UpscaleOptions' fields: their command-line spelling and type, looked up once."""
    hints = get_type_hints(UpscaleOptions)
    return {f.name: (f.metadata["cli"], hints[f.name]) for f in fields(UpscaleOptions)}


def keyword_value(name: str, value: Any) -> Any:
    """A keyword's value as the field holds it: what the command line takes as text is taken here too
    (tile="auto", chunk="33", scale="2", codec_options="crf=18"), and a number as text (fps=25); another
    type, or a value not among the option's choices, is one OptionError line. The one place options'
    values are parsed: UpscaleOptions(...) and upscale()'s keywords alike (the command line's
    `Cli.parse` functions are these)."""
    spec, hint = _spec()[name]
    optional = get_origin(hint) in (Union, UnionType)  # X | None
    kinds = (
        [get_origin(a) or a for a in get_args(hint) if a is not type(None)] if optional else [get_origin(hint) or hint]
    )
    if value is None and optional:
        return value
    if spec.parse is not None and isinstance(value, str):
        return spec.parse([value] if dict in kinds else value, f"{name}=")
    for kind in (int, float):
        if kind in kinds and isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                raise OptionError(f"{name}={value!r}: expected a number") from None
    if str in kinds and isinstance(value, os.PathLike):
        return os.fspath(value)  # manifest=Path(...), model=Path(...)
    if str in kinds and isinstance(value, (int, float, Fraction)) and not isinstance(value, bool):
        return str(value)  # fps=25, fps=Fraction(24000, 1001)
    wanted = tuple(k for k in kinds if isinstance(k, type)) + ((int,) if float in kinds else ())
    if wanted and (not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)):
        expected = "a number or 'auto'" if spec.shown_default == "auto" else " or ".join(k.__name__ for k in wanted)
        raise OptionError(f"{name}={value!r}: expected {expected}")
    allowed = _choices().get(name)
    if allowed is not None and value is not None and value not in allowed:
        raise OptionError(f"{name}={value!r}: expected one of: {', '.join(map(str, allowed))}")
    return value


def with_overrides(options: UpscaleOptions | None, overrides: Mapping[str, Any]) -> UpscaleOptions:
    """`options` (or the defaults) with keyword overrides of its fields, which count as given."""
    check_keywords(overrides)
    if not isinstance(overrides.get("given", frozenset()), (set, frozenset)):  # the names the CLI saw given
        raise OptionError(f"given={overrides['given']!r}: the set of option names set by hand (usually left out)")
    if isinstance(options, CheckedOptions) and not overrides:
        return options  # checked already (a folder run's, for each of its files)
    # values parsed as UpscaleOptions(...) parses them; checked options changed here are checked again
    # with the overrides counted as given (check_options)
    opts = replace(UpscaleOptions() if options is None else _plain(options), **overrides)
    return replace(opts, given=opts.given | (overrides.keys() - {"given"}))


def is_given(opts: UpscaleOptions, name: str) -> bool:
    """Set by the user: named as given, or different from its default (an UpscaleOptions built by hand)."""
    return name in opts.given or getattr(opts, name) != DEFAULTS[name]


@cache
def _choices() -> dict[str, tuple[str, ...]]:
    return choices(UpscaleOptions)


def choices(cls: type) -> dict[str, tuple[str, ...]]:
    """The allowed values of every field typed as a Literal (None aside), by field name."""
    out = {}
    for name, hint in get_type_hints(cls).items():
        args = [a for a in get_args(hint) if a is not type(None)]  # Literal[...] | None
        literal = next((a for a in args if get_origin(a) is Literal), hint if get_origin(hint) is Literal else None)
        if literal is not None:
            out[name] = tuple(get_args(literal))
    return out


DEFAULTS = dict(vars(UpscaleOptions()))  # default_factory fields too ({} for codec_options)


# What --parity sets, as the authors' script does it: field -> value. Another value given with
# --parity is refused.
PARITY_SETS: dict[str, Any] = {"pad": "zero", "blend": "hard", "color_fix": "none", "scene_cuts": "off",
                               "vae_tiling": True}  # fmt: skip


def _overlaps_that_fit(opts: UpscaleOptions) -> UpscaleOptions:
    """Default overlaps cut to fit a short --chunk or a small --tile the user chose (a chunk of 5
    cannot share the default 8 frames; a 64 px tile cannot share 32 px on each side); overlaps the
    user gave are checked as given."""
    if not is_given(opts, "chunk_overlap"):
        opts = replace(opts, chunk_overlap=fitting_chunk_overlap(opts.chunk, opts.chunk_overlap))
    if not is_given(opts, "tile_overlap"):
        opts = replace(opts, tile_overlap=fitting_tile_overlap(opts.tile, opts.tile_overlap))
    return opts


def check_quantize_offload(quantize: Quantize, offload: Offload) -> None:
    """The weights an offload can move: bitsandbytes' only as a whole part, torchao's fp8 not at all."""
    if quantize == "fp8" and offload != "none":
        raise OptionError("--quantize fp8 cannot be combined with --offload (torchao's weights stay on the GPU)")
    if quantize in ("int8", "nf4") and offload == "sequential":
        raise OptionError("--offload sequential cannot move bitsandbytes weights: use --offload model")


def colour_codec_option(key: str, value: str) -> tuple[str, str] | None:
    """(the setting as given, what to use instead) for a --codec-option that sets a colour tag, directly or
    as a key of an encoder's own list (x264-params=colorprim=bt2020:crf=20: keys split at ':' as FFmpeg
    does, '_' read as '-' and a leading '--' dropped as x264 and x265 do); None for any other."""
    if key in COLOUR_CODEC_OPTIONS:
        return key, COLOUR_CODEC_OPTIONS[key]
    tags = PARAM_LIST_COLOUR_KEYS.get(key, {})
    for item in value.split(":"):
        name = item.split("=", 1)[0].strip()
        if option := tags.get(name.removeprefix("--").replace("_", "-")):
            return f"{key} {name}", COLOUR_CODEC_OPTIONS[option]
    return None


def check_options(opts: UpscaleOptions) -> CheckedOptions:
    """Raise OptionError, one line naming the option, for any value the run cannot take; return the
    options checked and normalised (`CheckedOptions`: what --parity sets filled in, default overlaps
    cut to fit). Options checked already are returned as they are."""
    if isinstance(opts, CheckedOptions):
        return opts
    return CheckedOptions(**{name: getattr(opts, name) for name in _spec()})


def _checked(opts: UpscaleOptions) -> UpscaleOptions:
    """check_options' checks and normalisation, on plain options (`replace` here makes no CheckedOptions)."""
    for name, allowed in _choices().items():  # (cached: get_type_hints took 2 ms, per file of a folder)
        value = getattr(opts, name)
        if value is not None and value not in allowed:
            raise OptionError(f"--{name.replace('_', '-')} {value!r} is not one of: {', '.join(allowed)}")
    if opts.parity:
        opts = _with_parity(opts)
    if opts.field_order != "auto" and opts.deinterlace == "off":
        raise OptionError(f"--field-order {opts.field_order} is the order --deinterlace takes the fields in: add "
                          "--deinterlace field (or frame, ivtc), or drop it")  # fmt: skip
    for key, value in opts.codec_options.items():
        if colour := colour_codec_option(key, str(value)):
            raise OptionError(f"--codec-option {colour[0]}: dove tags the output with the input's colour and converts "
                              f"its pixels to match (this would tag colour they are not in); {colour[1]}")  # fmt: skip
    if opts.start_number is not None and opts.start_number < 0:
        raise OptionError(f"--start-number {opts.start_number} must not be negative")
    if opts.scale < 1 or opts.scale > 8:
        raise OptionError(f"--scale {opts.scale} is out of range (1 to 8)")
    if opts.parity:  # any layout the authors' script takes; release_layout refuses those it fails on
        for name, window, overlap in (
            ("chunk", opts.chunk, opts.chunk_overlap),
            ("tile", opts.tile, opts.tile_overlap),
        ):
            if window < 0 or overlap < 0:
                raise OptionError(f"--{name} and --{name}-overlap must not be negative")
            if window > 0 and overlap >= window:
                raise OptionError(f"--{name}-overlap {overlap} must be smaller than --{name} {window} (--parity)")
    else:
        opts = _overlaps_that_fit(opts)
        if opts.chunk != AUTO:
            check_chunk(opts.chunk, opts.chunk_overlap)
        elif opts.chunk_overlap < 0:
            raise OptionError(f"--chunk-overlap {opts.chunk_overlap} must not be negative")
        elif 2 * opts.chunk_overlap >= DEFAULT_CHUNK:  # as check_chunk asks of a --chunk given
            raise OptionError(
                f"--chunk-overlap {opts.chunk_overlap} must be under half the chunk (--chunk auto uses "
                f"{DEFAULT_CHUNK} frames: at most {(DEFAULT_CHUNK - 1) // 2}); give a longer --chunk, e.g. "
                f"--chunk {4 * opts.chunk_overlap + 1}"
            )
        if opts.tile != AUTO:
            check_tile(opts.tile, opts.tile_overlap, 16)
        elif opts.tile_overlap < 0:
            raise OptionError(f"--tile-overlap {opts.tile_overlap} must not be negative")
    check_quantize_offload(opts.quantize, opts.offload)  # a dry run refuses what the run's loading would
    preview_span(opts.preview)  # one that does not read: refused here, before any work
    if opts.crop is not None:  # as the fingerprint and the manifest keep them: 08:0:8:0 is 8:0:8:0
        opts = replace(opts, crop=crop_option(opts.crop))
    if opts.size is not None:
        opts = replace(opts, size=str(parse_size(opts.size)))
    if opts.workers is not None and opts.workers < 1:
        raise OptionError(f"--workers {opts.workers} must be at least 1")
    if opts.workers is not None and not opts.ray:
        raise OptionError(f"--workers {opts.workers} needs --ray (local, auto or an address)")
    if opts.ray is not None and not opts.ray.strip():
        raise OptionError("--ray needs an address: local, auto, ray://HOST:PORT or HOST:PORT")
    if opts.container is not None:
        from dove_cli.video_io.formats import VIDEO_EXTENSIONS, codec_home, extension_holds

        opts = replace(opts, container=container_name(opts.container))
        if f".{opts.container}" not in VIDEO_EXTENSIONS:
            written = ", ".join(ext.lstrip(".") for ext in VIDEO_EXTENSIONS)
            raise OptionError(f"--container {opts.container}: dove writes {written} (it reads more)")
        if opts.codec is not None and not extension_holds(f".{opts.container}", opts.codec):  # (else each file fails)
            home = codec_home(opts.codec).lstrip(".")
            raise OptionError(f"--container {opts.container} cannot hold {opts.codec} video; use --container {home}")
    if opts.fps is not None:
        from dove_cli.video_io.image_reader import MAX_FPS

        try:
            rate = Fraction(str(opts.fps))
        except (ValueError, ZeroDivisionError):
            rate = Fraction(0)
        if rate <= 0:
            raise OptionError(f"--fps {opts.fps} is not a positive frame rate (e.g. 24, 29.97 or 30000/1001)")
        if rate > MAX_FPS:
            raise OptionError(f"--fps {opts.fps}: at most {MAX_FPS} frames/s")
    return opts


def reader_options(opts: UpscaleOptions) -> dict[str, Any]:
    """The keywords of video_io.open_reader that the options set, one list for every reader of a run's
    input (its probe, the frames' reader, --eval's size check), so that each reads the same picture.
    The frames' reader adds --ignore-decode-errors itself (it counts and says what it skips as the
    run reads); a probe and the size check read only the input's head."""
    return dict(fps=opts.fps, rotate=opts.rotate, deinterlace=opts.deinterlace, field_order=opts.field_order,
                untagged_matrix=opts.untagged_matrix, untagged_color=opts.untagged_color,
                video_stream=opts.video_stream)  # fmt: skip


def container_name(value: str) -> str:
    """--container as the outputs' extension, without its dot: `mp4`, `.mp4` or `MP4` -> `mp4`."""
    return value.strip().lower().lstrip(".")


def _with_parity(opts: UpscaleOptions) -> UpscaleOptions:
    """--parity: the release's settings; its overlaps where dove's defaults are left (the same today:
    32 px and 8 frames); auto tile/chunk = its default, none; untagged YUV read as BT.601, as decord
    does, unless --untagged-matrix is given."""
    for name, value in PARITY_SETS.items():
        given = getattr(opts, name)
        if given != value and is_given(opts, name):
            flag = "--" + name.replace("_", "-")
            raise OptionError(f"--parity sets {flag} {value} (as the authors' script runs); drop {flag} {given}")
    for flag, value in (("--crop", opts.crop), ("--size", opts.size)):
        if value is not None:
            raise OptionError(f"--parity reproduces the authors' script, which neither crops nor resamples; drop "
                              f"{flag} {value} (or crop and scale with ffmpeg before or after)")  # fmt: skip
    return replace(
        opts,
        **PARITY_SETS,
        tile_overlap=opts.tile_overlap if is_given(opts, "tile_overlap") else RELEASE_TILE_OVERLAP,
        chunk_overlap=opts.chunk_overlap if is_given(opts, "chunk_overlap") else RELEASE_CHUNK_OVERLAP,
        tile=0 if opts.tile == AUTO else opts.tile,
        chunk=0 if opts.chunk == AUTO else opts.chunk,
        untagged_matrix=opts.untagged_matrix if is_given(opts, "untagged_matrix") else "bt601",
    )
