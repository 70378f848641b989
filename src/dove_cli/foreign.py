"""Other tools' option names typed to `dove upscale`: the dove way, or what dove does not offer.

Users of ffmpeg, Real-ESRGAN, Video2X and SeedVR2 type their habits (`-c:v`, `--fp32`, `--outscale`,
`--tile_pad`, `--batch_size`); click's edit-distance guess then names an unrelated option (`--fp32` ->
`--fps`, `--gpu-id` -> `--pad`), or splits a single-dash word into dove's own short options (`-ss 0.5`
-> an error about `--scale`). This table is read before click parses: one line, exit 2.
Only names that `dove upscale` does not accept are here (`-v`, `-o`, `-s`, `-m`, `-q`, `-r` are dove's).
"""

from __future__ import annotations

import os
from pathlib import Path

from dove_cli.cli_args import positional_words

# the typed name (a `--` name as typed with `-` for `_`, lower case; a single-dash word exactly) ->
# the dove way, or "dove has no ...: what instead"
_DTYPE = "precision is --dtype bf16|fp16|fp32 (default bf16 on a GPU, fp32 on the CPU)"
_DEVICE = "the GPU is chosen with --device cuda:N (or --device cpu)"
_SIZE = "the output size is --size WxH or --size HEIGHTp (e.g. 1080p)"
_CRF = "quality is --crf N (lower is better)"
_CODEC = "the encoder is --codec h264|hevc|av1|vp9|prores|ffv1"
_PREVIEW = "a piece of the video is --preview START+DURATION (e.g. 1:20+5s)"
_RATE = "dove has no frame-rate change or interpolation: it keeps the input's timing (change the rate afterwards, e.g. ffmpeg -vf fps=30 or minterpolate)"  # noqa: E501
_INPUT = "the input is the first argument: dove upscale INPUT -o OUTPUT"
_CODEC_OPTION = "encoder settings are --codec-option KEY=VALUE (repeatable)"
_BITRATE = "a bitrate is --codec-option b=5M (h264, hevc, av1: no --crf then); or cap a --crf encode with --codec-option maxrate=5M --codec-option bufsize=10M"  # noqa: E501
_MODEL = "the model is --model NAME|FOLDER (-m)"
_TILE = "tiles are --tile PX, in output px (Real-ESRGAN's -t 512 at x4 is --tile 2048)"
_OVERLAP = "the tile overlap is --tile-overlap PX (output px)"
_DENOISE = (
    "dove has no denoise strength: DOVE is one step, with no strength knob (--scale 1 restores at the input's size)"  # noqa: E501
)
_NAMES = "dove has no output-name suffix: outputs keep the input's name, in the -o folder (or give -o NAME.mp4)"
_EXT = "the container is the -o extension (-o out.mkv), or --container EXT for a folder run"
_PIX = "the pixel format is --pix-fmt (e.g. yuv420p10le for 10-bit)"
_AUDIO_NONE = "dove copies the audio; --audio none leaves it out, --audio transcode re-encodes it"
FOREIGN: dict[str, str] = {
    # ffmpeg
    "-i": _INPUT, "--input": _INPUT,
    "-c:v": _CODEC, "-codec:v": _CODEC, "-vcodec": _CODEC, "-c": _CODEC, "--encoder": _CODEC,
    "-crf": _CRF, "-q:v": _CRF, "-qscale:v": _CRF, "--quality": _CRF, "--qp": _CRF,
    "-preset": "the encoder preset is --preset NAME", "-pix_fmt": _PIX,
    "-b:v": _BITRATE, "-b": _BITRATE, "--bitrate": _BITRATE, "--bit-rate": _BITRATE, "--video-bitrate": _BITRATE,
    "-x264-params": "x264 settings are --codec-option x264-params=KEY=VALUE:...",
    "--x264-params": "x264 settings are --codec-option x264-params=KEY=VALUE:...",
    "-x265-params": "x265 settings are --codec hevc --codec-option x265-params=KEY=VALUE:...",
    "--x265-params": "x265 settings are --codec hevc --codec-option x265-params=KEY=VALUE:...",
    "-ss": _PREVIEW, "-to": _PREVIEW, "-t": f"{_PREVIEW}; Real-ESRGAN's -t: {_TILE}",
    "-vf": "dove has no filter chain: --crop, --size, --deinterlace and --rotate cover the usual ones",
    "-filter:v": "dove has no filter chain: --crop, --size, --deinterlace and --rotate cover the usual ones",
    "-y": "an existing output is replaced with --overwrite",
    "-an": _AUDIO_NONE, "-c:a": _AUDIO_NONE, "-acodec": _AUDIO_NONE,
    "-sn": "subtitles are copied; --subtitles none leaves them out",
    "-f": _EXT, "--format": _EXT, "--output-format": _EXT, "--ext": _EXT, "--extension": _EXT,
    "-fps": _RATE, "--frame-rate": _RATE, "--framerate": _RATE, "--output-fps": _RATE,
    "--interpolate": _RATE, "--interpolation": _RATE, "--frame-rate-mul": _RATE, "--rife": _RATE,
    # Real-ESRGAN (inference_realesrgan_video.py)
    "-n": _MODEL, "--model-name": _MODEL, "--model-path": _MODEL, "--realesrgan-model": _MODEL,
    "--outscale": f"{_SIZE}; --scale is the model's whole factor (2, 3, 4)",
    "-dn": _DENOISE, "--denoise-strength": _DENOISE, "--denoise": _DENOISE, "--noise-level": _DENOISE,
    "--strength": _DENOISE,
    "--suffix": _NAMES,
    "--tile-pad": _OVERLAP, "--tile-padding": _OVERLAP,
    "--pre-pad": "dove pads each window to the model's block itself (--pad replicate|zero)",
    "--face-enhance": "dove has no face enhancement (GFPGAN): it restores the whole picture alike",
    "--fp32": _DTYPE, "--fp16": _DTYPE, "--bf16": _DTYPE, "--half": _DTYPE, "--precision": _DTYPE,
    "--tta": "dove has no test-time augmentation",
    "--alpha-upsampler": "dove writes no alpha channel",
    "--ffmpeg-bin": "dove reads and writes video itself (PyAV): no ffmpeg binary is used",
    "--extract-frame-first": "dove streams the video: no frames are extracted, and the audio is copied",
    "--num-process-per-gpu": "one process per GPU; several GPUs are --ray local --workers N",
    # Video2X
    "-p": "dove runs one model (DOVE, --model); --preset is the encoder preset",
    "--processor": "dove runs one model (DOVE, --model); it has no Real-CUGAN, libplacebo or RIFE",
    "-w": _SIZE, "--width": _SIZE, "--height": _SIZE, "--resolution": _SIZE,
    "-h": f"help is --help; {_SIZE}",
    "-e": _CODEC_OPTION, "--encoder-option": _CODEC_OPTION, "--extra-encoder-option": _CODEC_OPTION,
    "-g": _DEVICE, "-d": _DEVICE, "--gpu": _DEVICE, "--gpu-id": _DEVICE, "--gpu-ids": _DEVICE,
    "--cuda": _DEVICE, "--cpu": _DEVICE, "--cuda-device": _DEVICE,
    "--scaling-factor": "the factor is --scale N (2, 3, 4); any other size is --size WxH",
    # SeedVR2
    "--batch-size": "frames per window are --chunk N (4k+1, e.g. 33)",
    "--color-correction": "colour correction is --color-fix wavelet|adain|none",
    "--preserve-vram": "less memory: --offload model (or sequential) and --vae-tiling",
    "--blocks-to-swap": "less memory: --offload model (or sequential) and --vae-tiling",
    "--temporal-overlap": "frames shared by neighbouring windows are --chunk-overlap N",
    "--load-cap": _PREVIEW, "--skip-first-frames": _PREVIEW,
    "--10bit": _PIX, "--bit-depth": _PIX,
    "--profile": "the ProRes profile is --preset (proxy, lt, standard, hq, 4444, 4444xq)",
}  # fmt: skip


def foreign_option(args: list[str], options: dict[str, bool]) -> str | None:
    """The one line for the first word of `args` (a command's, before `--`) that is another tool's
    option and not one of `options` (the command's, each with whether it takes a value), else None.
    The values of dove's own options and existing files' names are never read as options."""
    words = args[: args.index("--")] if "--" in args else args
    skip = False
    for word, after in zip(words, [*words[1:], ""]):  # noqa: B905 (of one length)
        if skip:  # the value of dove's option, whatever it looks like
            skip = False
            continue
        name, eq, value = word.partition("=")  # `--gpu-id=1`, and as other tools' habits `-b:v=1M`, `-crf=18`
        if name == "-r" and (_is_rate(value) if eq else _is_rate(after) and not os.path.lexists(after)):  # -r 30
            return f"-r is dove's --recursive, not a frame rate: {_RATE}"
        if name in options:
            skip = options[name] and "=" not in word
            continue
        if not word.startswith("-") or os.path.lexists(word):
            continue
        key = name.lower().replace("_", "-") if name.startswith("--") else name
        if key in FOREIGN and key not in options:
            return f"no option {name} in dove: {FOREIGN[key]}"
    return None


def _is_rate(word: str) -> bool:
    """`30`, `29.97`, `30000/1001`: ffmpeg's -r value."""
    return bool(word) and word.replace(".", "", 1).replace("/", "", 1).isdigit()


def several_inputs(message: str, args: list[str], options: dict[str, bool]) -> str | None:
    """`dove upscale a.mp4 b.mp4 c.mp4 -o out/` (a shell's glob, `*.mp4`): click's `Got unexpected extra
    argument(s) (b.mp4)` (or, without -o, `did you mean -o c.mp4?`) said neither that one input is taken
    nor what to do instead. `message`: click's; `args`: the command line; `options`: the command's."""
    names = positional_words(args, options)
    command, names = (names[0], names[1:]) if names else ("", [])
    extra = message.startswith("Got unexpected extra argument")
    if command == "upscale" and (extra or (message.startswith("Missing option '--output'") and len(names) > 2)):
        parents = {str(Path(name).parent) for name in names}
        folder = f"{parents.pop()}/" if len(parents) == 1 else "DIR"
        return (f"dove upscale takes one input; got {len(names)} ({_listed(names)}): give their folder (dove upscale"
                f" {folder} -o OUT/) or run it once per file")  # fmt: skip
    if command == "eval" and extra:
        return (f"dove eval takes PRED and GT; got {len(names)} ({_listed(names)}): give two folders (dove eval"
                " PRED_DIR GT_DIR, videos matched by name) or run it once per pair")  # fmt: skip
    return None


def _listed(names: list[str]) -> str:
    """`a.mp4, b.mp4, c.mp4`, or the first three and how many more (a glob of hundreds)."""
    return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"
