"""LQ synthesis for training: the RealBasicVSR-style second-order degradation DOVE trains against.

Everything works on clips [F, 3, H, W] float in [0, 1] and takes a `numpy.random.Generator`, so a
sample is a pure function of (clip, config, seed). Internally values live on the 0-255 scale of
the authors' release, because the yaml ranges (noise sigma, ...) are in 8-bit units. Each draw is
made once per clip and shared by all its frames, as the release does (its per-frame "step"
parameters are 0), except JPEG quality, which drifts by up to +-quality_step per frame, and the
shape beta of generalized-Gaussian and plateau kernels, which the release's kernel code redraws
per frame between 1 and the clip's beta.

Like the release (OpenCV on numpy frames), values are 8-bit until the first noise step: blur and
resize of 8-bit frames round and saturate their result; JPEG truncates its input to 8 bits; a
codec's decoded frames are float again. The 'area' resize is OpenCV's INTER_AREA (fractional box
weights when shrinking, pixel-area interpolation when growing), and the JPEG sees the channels in
the order OpenCV's BGR encoder sees the release's RGB frames. README "Faithfulness notes" lists
what is not matched.

Each function returns the degraded clip and appends what it drew to `record` (a list of dicts),
so tests and `dove degrade` can show which blur, noise, JPEG quality, codec and bitrate were used.
"""

from __future__ import annotations

import difflib
import io
import itertools
import logging
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

import numpy as np
import torch
import torch.nn.functional as F

from dove_cli import video_io
from dove_cli.errors import OptionError

log = logging.getLogger(__name__)

Mode = Literal["video", "image"]
Record = list[dict[str, Any]]

CONFIGS = {"video": "degradation.yaml", "image_video": "degradation_image_video.yaml"}
SCALE = 4  # LQ = HQ / 4


# ---------------------------------------------------------------------------- config


def load_degradation_config(name_or_path: str | Path = "video") -> dict[str, Any]:
    """'video' (stage 1), 'image_video' (stage 2) or a path to a yaml in the release's format, checked
    whole (`check_degradation_config`): a mistake is one line now, not a crash at a random step."""
    import yaml

    if str(name_or_path) in CONFIGS:
        label = CONFIGS[str(name_or_path)]
        text = (resources.files("dove_cli.train") / "configs" / label).read_text()
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise OptionError(f"degradation config {path} not found (or use one of {sorted(CONFIGS)})")
        label, text = str(path), path.read_text()
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise OptionError(f"{label}: not valid YAML ({what}{where})") from None
    check_degradation_config(cfg, label)
    return cast(dict[str, Any], cfg)


def _params(section: dict[str, Any]) -> dict[str, Any]:
    return section.get("params", section)


# What each op reads (see the ops below). The release's per-frame `*_step` drifts other than JPEG's
# quality_step are not implemented (the release's configs set them to 0), so only 0 is accepted.
KERNELS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso", "sinc")
_OP_KEYS = {
    "blur": ("kernel_list", "kernel_prob", "kernel_size", "prob", "sigma_x", "sigma_y", "rotate_angle",
             "beta_gaussian", "beta_plateau", "omega", "sigma_x_step", "sigma_y_step", "rotate_angle_step",
             "beta_gaussian_step", "beta_plateau_step", "omega_step"),
    "resize": ("resize_opt", "resize_prob", "resize_mode_prob", "resize_scale", "prob", "is_size_even", "target_size",
               "resize_step"),
    "noise": ("noise_type", "noise_prob", "prob", "gaussian_sigma", "gaussian_gray_noise_prob", "poisson_scale",
              "poisson_gray_noise_prob", "gaussian_sigma_step", "poisson_scale_step"),
    "jpeg": ("quality", "quality_step", "prob"),
    "video": ("codec", "codec_prob", "bitrate", "prob"),
}  # fmt: skip
_SECTIONS = {
    "degradation_1": {"random_blur": "blur", "random_resize": "resize", "random_noise": "noise", "random_jpeg": "jpeg",
                      "random_mpeg": "video"},
    "degradation_2": {"random_blur": "blur", "random_resize": "resize", "random_noise": "noise", "random_jpeg": "jpeg",
                      "degradation_with_shuffle": "shuffle"},
    "degradation_3": {"random_resize": "final_resize", "random_blur": "blur"},
}  # fmt: skip
_OPTIONAL = {"degradation_3", "random_mpeg"}  # image mode only; the first round's codec
_SHUFFLED = {"RandomVideoCompression": "video", "RandomResize": "final_resize", "RandomBlur": "blur"}


def check_degradation_config(cfg: Any, label: str) -> None:
    """OptionError `label: key.path: what is wrong` for the first mistake in a degradation config:
    a missing or unknown section or key, an unknown kernel, resize method, noise type or codec,
    probabilities that do not sum to 1, a reversed range, a value out of its range."""

    def fail(where: str, what: str) -> NoReturn:
        raise OptionError(f"{label}: {where}{': ' if where else ''}{what}")

    def keys(table: Any, where: str, known: Any, optional: set[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(table, dict):
            fail(where, f"expected a section of keys, got {table!r}")
        for key in table:
            if key not in known:
                near = difflib.get_close_matches(str(key), list(known), n=1)
                fail(where, f"unknown key {key!r}" + (f" (did you mean {near[0]}?)" if near else ""))
        for key in known:
            if key not in table and key not in optional:
                fail(where, f"missing {key}")
        return cast(dict[str, Any], table)

    def number(value: Any, where: str, lo: float | None = None, hi: float | None = None, above: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = " (YAML reads 1e4 as text: write 1.0e4)" if isinstance(value, str) else ""
            fail(where, f"{value!r} is not a number{hint}")
        if lo is not None and (value <= lo if above else value < lo):
            fail(where, f"{value} is {'not above' if above else 'below'} {lo:g}")
        if hi is not None and value > hi:
            fail(where, f"{value} is above {hi:g}")
        return float(value)

    def span(value: Any, where: str, lo: float | None = None, hi: float | None = None, above: bool = False) -> None:
        if not isinstance(value, list) or len(value) != 2:
            fail(where, f"expected a range [low, high], got {value!r}")
        a, b = (number(v, where, lo, hi, above) for v in value)
        if a > b:
            fail(where, f"{value} is reversed (low > high)")

    def choice(p: dict[str, Any], where: str, names: str, probs: str, allowed: Any) -> list[str]:
        listed = p[names]
        if not isinstance(listed, list) or not listed:
            fail(f"{where}.{names}", f"expected a list, got {listed!r}")
        for name in listed:
            if allowed is not None and str(name).lower() not in allowed:
                near = difflib.get_close_matches(str(name), list(allowed), n=1)
                fail(f"{where}.{names}", f"unknown {name!r}" + (f" (did you mean {near[0]}?)" if near else
                                                                  f" (one of {', '.join(allowed)})"))  # fmt: skip
        chances = p[probs]
        if not isinstance(chances, list) or len(chances) != len(listed):
            fail(f"{where}.{probs}", f"expected {len(listed)} probabilities, one per {names} entry, got {chances!r}")
        total = sum(number(c, f"{where}.{probs}", 0) for c in chances)
        if abs(total - 1) > 0.01:
            fail(f"{where}.{probs}", f"{chances} sums to {total:g}, not 1")
        return [str(n).lower() for n in listed]

    def op(kind: str, p: Any, where: str) -> None:
        known = _OP_KEYS["resize" if kind == "final_resize" else kind]
        required = {
            "blur": {"kernel_list", "kernel_prob", "kernel_size"},
            "resize": {"resize_opt", "resize_prob", "resize_mode_prob", "resize_scale"},
            "final_resize": {"resize_opt", "resize_prob"},
            "noise": {"noise_type", "noise_prob"},
            "jpeg": {"quality"},
            "video": {"codec", "codec_prob", "bitrate"},
        }[kind]
        p = keys(p, where, known, set(known) - required)
        for key, value in p.items():
            if key.endswith("_step") and key != "quality_step" and value != 0:
                fail(f"{where}.{key}", f"{value!r}: only 0 is supported (one draw per clip, as the release)")
        if "prob" in p:
            number(p["prob"], f"{where}.prob", 0, 1)
        if kind == "blur":
            choice(p, where, "kernel_list", "kernel_prob", KERNELS)
            sizes = p["kernel_size"]
            if not isinstance(sizes, list) or not sizes:
                fail(f"{where}.kernel_size", f"expected a list of odd sizes, got {sizes!r}")
            for size in sizes:
                if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
                    fail(f"{where}.kernel_size", f"{size!r} is not an odd whole number")
            for key in ("sigma_x", "sigma_y", "beta_gaussian", "beta_plateau", "omega"):
                if key in p:
                    span(p[key], f"{where}.{key}", 0, above=True)
            if "rotate_angle" in p:
                span(p["rotate_angle"], f"{where}.rotate_angle")
        elif kind in ("resize", "final_resize"):
            choice(p, where, "resize_opt", "resize_prob", ("bilinear", "area", "bicubic"))
            if "resize_mode_prob" in p:
                modes = p["resize_mode_prob"]
                if not isinstance(modes, list) or len(modes) != 3:
                    fail(f"{where}.resize_mode_prob", f"expected 3 probabilities (up, down, keep), got {modes!r}")
                total = sum(number(m, f"{where}.resize_mode_prob", 0) for m in modes)
                if abs(total - 1) > 0.01:
                    fail(f"{where}.resize_mode_prob", f"{modes} sums to {total:g}, not 1")
            if "resize_scale" in p:
                span(p["resize_scale"], f"{where}.resize_scale", 0, above=True)
            if "is_size_even" in p and not isinstance(p["is_size_even"], bool):
                fail(f"{where}.is_size_even", f"{p['is_size_even']!r}: expected true or false")
        elif kind == "noise":
            for name in choice(p, where, "noise_type", "noise_prob", ("gaussian", "poisson")):
                level, gray = ("gaussian_sigma", "gaussian_gray_noise_prob") if name == "gaussian" else (
                    "poisson_scale", "poisson_gray_noise_prob")  # fmt: skip
                for key in (level, gray):
                    if key not in p:
                        fail(where, f"missing {key} (noise_type lists {name})")
                span(p[level], f"{where}.{level}", 0)
                number(p[gray], f"{where}.{gray}", 0, 1)
        elif kind == "jpeg":
            span(p["quality"], f"{where}.quality", 1, 100)
            if "quality_step" in p:
                number(p["quality_step"], f"{where}.quality_step", 0)
        elif kind == "video":
            import av

            for name in choice(p, where, "codec", "codec_prob", None):
                try:
                    av.Codec(name, "w")
                except ValueError:
                    fail(f"{where}.codec", f"{name!r} is not a video encoder of this FFmpeg")
            span(p["bitrate"], f"{where}.bitrate", 0, above=True)

    def shuffled(items: Any, where: str, found: set[str]) -> None:
        if not isinstance(items, list):
            fail(where, f"expected a list of steps, got {items!r}")
        for item in items:
            if isinstance(item, list):
                shuffled(item, where, found)
                continue
            kind = _SHUFFLED.get(str(item.get("type"))) if isinstance(item, dict) else None
            if kind is None or not isinstance(item, dict):
                fail(where, f"unknown step {item!r} (one of {', '.join(_SHUFFLED)}, each with params)")
            item = keys(item, f"{where}.{item['type']}", ("type", "params", "keys"), ("keys",))
            op(kind, item["params"], f"{where}.{item['type']}.params")
            found.add(item["type"])

    if not isinstance(cfg, dict):
        fail(
            "", f"expected the sections degradation_1 and degradation_2, got {'an empty file' if cfg is None else cfg}"
        )
    top = keys(cfg, "", _SECTIONS, _OPTIONAL)
    for name, table in top.items():
        for section, value in keys(table, name, _SECTIONS[name], _OPTIONAL).items():
            where, kind = f"{name}.{section}", _SECTIONS[name][section]
            if kind == "shuffle":
                value = keys(value, where, ("degradations", "keys"), ("keys",))
                found: set[str] = set()
                shuffled(value["degradations"], f"{where}.degradations", found)
                if not {"RandomResize", "RandomBlur"} <= found:
                    fail(f"{where}.degradations", "needs a RandomResize and a RandomBlur (the final resize and sinc)")
            elif isinstance(value, dict) and "params" in value:
                value = keys(value, where, ("params", "keys"), ("keys",))
                op(kind, value["params"], f"{where}.params")
            else:
                op(kind, value, where)


# ---------------------------------------------------------------------------- blur kernels


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    return np.meshgrid(ax, ax)  # xx, yy


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x on a size x size grid; Sigma = R diag(sx^2, sy^2) R^T (rotated Gaussian)."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    sigma = rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T
    inv = np.linalg.inv(sigma)
    xx, yy = _grid(size)
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0) -> np.ndarray:
    """(Generalised) bivariate Gaussian: exp(-0.5 * q^beta); beta = 1 is the plain Gaussian."""
    k = np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta))
    return k / k.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel 1 / (1 + q^beta): flat top, heavy tails."""
    k = 1.0 / (np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta) + 1.0)
    return k / k.sum()


def sinc_kernel(size: int, omega: float) -> np.ndarray:
    """Circular low-pass (2-D sinc / Airy) kernel with cutoff omega: ringing and overshoot artefacts."""
    xx, yy = _grid(size)
    r = torch.from_numpy(np.sqrt(xx**2 + yy**2))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (omega * torch.special.bessel_j1(omega * r).numpy()) / (2 * np.pi * r.numpy())
    c = size // 2
    k[c, c] = omega**2 / (4 * np.pi)
    return k / k.sum()


def draw_kernel(
    params: dict[str, Any], rng: np.random.Generator, frames: int = 1
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Draw one kernel type and its parameters from the yaml ranges; returns (a kernel per frame, what was drawn).

    Generalized-Gaussian and plateau kernels: the clip draws beta from the yaml range, and each frame
    then draws its own beta uniformly between 1 and that value (the release passes [beta, beta] as the
    range to BasicSR's kernel code, which draws from [range[0], 1] or [1, range[1]]); other kernels
    are the same for every frame."""
    kind = str(rng.choice(params["kernel_list"], p=_norm(params["kernel_prob"])))
    size = int(rng.choice(params["kernel_size"]))
    sx_r, sy_r = params.get("sigma_x", [0.2, 3]), params.get("sigma_y", [0.2, 3])
    sigma_x = float(rng.uniform(*sx_r))
    sigma_y = float(rng.uniform(*sy_r))
    theta = float(rng.uniform(*params.get("rotate_angle", [-math.pi, math.pi])))
    info: dict[str, Any] = {"kernel": kind, "size": size}
    if kind.endswith("_iso") or kind == "iso":
        sigma_y, theta = sigma_x, 0.0
    if kind in ("iso", "aniso"):
        k = gaussian_kernel(size, sigma_x, sigma_y, theta)
        info.update(sigma_x=sigma_x, sigma_y=sigma_y, theta=theta)
    elif kind.startswith(("generalized", "plateau")):
        generalized = kind.startswith("generalized")
        lo_hi = params.get("beta_gaussian", [0.5, 4]) if generalized else params.get("beta_plateau", [1, 2])
        beta = float(rng.uniform(*lo_hi))
        betas = [float(rng.uniform(min(1.0, beta), max(1.0, beta))) for _ in range(frames)]
        make = gaussian_kernel if generalized else plateau_kernel
        kernels = [make(size, sigma_x, sigma_y, theta, b) for b in betas]
        info.update(sigma_x=sigma_x, sigma_y=sigma_y, theta=theta, beta=beta, frame_betas=betas)
        return kernels, info
    elif kind == "sinc":
        omega_r = params.get("omega") or ([math.pi / 3, math.pi] if size < 13 else [math.pi / 5, math.pi])
        omega = float(rng.uniform(*omega_r))
        k = sinc_kernel(size, omega)
        info.update(omega=omega)
    else:
        raise OptionError(f"unknown blur kernel {kind!r} in the degradation config")
    return [k] * frames, info


def filter2d(clip: torch.Tensor, kernel: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """Correlate every frame/channel with `kernel` (reflect-101 border, like cv2.filter2D).

    kernel: one for all frames, or a list with one per frame (equal kernels are filtered together).

    Large kernels go through the FFT: a 21x21 direct convolution of a 35-frame 480x960 clip takes
    ~17 s on one core, the FFT well under a second, with differences ~1e-4 on the 0-255 scale.
    """
    if isinstance(kernel, list):
        if len(kernel) != clip.shape[0]:
            raise ValueError(f"{len(kernel)} kernels for {clip.shape[0]} frames")
        if all(k is kernel[0] for k in kernel):
            return filter2d(clip, kernel[0])
        return torch.cat([filter2d(clip[i : i + 1], k) for i, k in enumerate(kernel)])
    k = torch.from_numpy(np.ascontiguousarray(kernel)).to(clip.dtype)
    pad = k.shape[-1] // 2
    f, c, h, w = clip.shape
    x = clip.reshape(f * c, 1, h, w)
    mode = "reflect" if pad < min(h, w) else "replicate"  # tiny frames: reflect needs pad < size
    x = F.pad(x, (pad, pad, pad, pad), mode=mode)
    if k.shape[-1] <= 5:
        return F.conv2d(x, k[None, None]).reshape(f, c, h, w)
    hp, wp = x.shape[-2:]
    spec = torch.fft.rfft2(x[:, 0].float(), s=(hp, wp))
    kspec = torch.fft.rfft2(torch.flip(k, (0, 1)).float(), s=(hp, wp))  # correlation = flipped conv
    y = torch.fft.irfft2(spec * kspec, s=(hp, wp))
    # full circular convolution; the valid part starts at index 2 * pad (kernel extent - 1)
    return y[:, 2 * pad : 2 * pad + h, 2 * pad : 2 * pad + w].to(clip.dtype).reshape(f, c, h, w)


def _norm(p: list[float]) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    return a / a.sum()


def _gate(params: dict[str, Any], rng: np.random.Generator) -> bool:
    """The release's `prob`: the op is skipped with probability 1 - prob (default 1: always)."""
    return float(rng.uniform()) <= float(params.get("prob", 1.0))


# ---------------------------------------------------------------------------- ops (0-255 scale)


def saturate_u8(x: torch.Tensor) -> torch.Tensor:
    """What OpenCV's saturate_cast<uchar> makes of a float result: nearest (ties to even), 0..255."""
    return x.round().clamp(0.0, 255.0)


def random_blur(
    x: torch.Tensor, params: dict, rng: np.random.Generator, record: Record, u8: bool = False
) -> torch.Tensor:
    """One kernel per clip (per frame for generalized/plateau betas); u8: the input is 8-bit frames,
    so the result is rounded and saturated (cv2.filter2D keeps the input depth)."""
    if not _gate(params, rng):
        return x
    kernels, info = draw_kernel(params, rng, x.shape[0])
    record.append({"op": "blur", **info})
    out = filter2d(x, kernels)
    return saturate_u8(out) if u8 else out


def _area_weights(src: int, dst: int, shrink: bool) -> np.ndarray:
    """[dst, src] weights of OpenCV's INTER_AREA along one axis (float32, as OpenCV keeps them).

    shrink (both axes shrink or keep): each output pixel averages the input over its footprint, end
    pixels weighted by the covered fraction (computeResizeAreaTab). Otherwise OpenCV interpolates
    linearly with "area" coefficients: an output pixel inside one input pixel copies it, one that
    straddles a border mixes the two by the covered fractions."""
    scale, inv = src / dst, dst / src
    w = np.zeros((dst, src), dtype=np.float64)
    for dx in range(dst):
        if shrink:
            f1 = dx * scale
            f2 = f1 + scale
            cell = min(scale, src - f1)
            s2 = min(math.floor(f2), src - 1)
            s1 = min(math.ceil(f1), s2)
            if s1 - f1 > 1e-3:
                w[dx, s1 - 1] = (s1 - f1) / cell
            w[dx, s1:s2] = 1.0 / cell
            if f2 - s2 > 1e-3:
                w[dx, s2] = min(f2 - s2, 1.0, cell) / cell
        else:
            sx = math.floor(dx * scale)
            fx = float(np.float32((dx + 1) - (sx + 1) * inv))
            fx = 0.0 if fx <= 0 else fx - math.floor(fx)
            if sx >= src - 1:
                sx, fx = src - 1, 0.0
            w[dx, sx] += 1.0 - fx
            if fx:
                w[dx, sx + 1] += fx
    return w.astype(np.float32)


def _resample(x: torch.Tensor, weights: np.ndarray, dim: int) -> torch.Tensor:
    """Apply sparse [dst, src] resampling weights along `dim` (a few taps per output pixel)."""
    taps = int((weights != 0).sum(1).max())
    idx = np.zeros((weights.shape[0], taps), dtype=np.int64)
    val = np.zeros((weights.shape[0], taps), dtype=np.float32)
    for row in range(weights.shape[0]):
        nz = np.flatnonzero(weights[row])
        idx[row, : len(nz)], val[row, : len(nz)] = nz, weights[row, nz]
    shape = [1] * x.ndim
    shape[dim] = weights.shape[0]
    out = None
    for k in range(taps):
        term = x.index_select(dim, torch.from_numpy(idx[:, k])) * torch.from_numpy(val[:, k]).to(x.dtype).view(shape)
        out = term if out is None else out + term
    assert out is not None
    return out


def area_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """cv2.resize(..., interpolation=cv2.INTER_AREA) of [..., H, W] float frames."""
    h, w = x.shape[-2:]
    shrink = size[0] <= h and size[1] <= w
    if shrink and h % size[0] == 0 and w % size[1] == 0:  # integer factors: plain block means
        return F.avg_pool2d(x.reshape(-1, 1, h, w), (h // size[0], w // size[1])).reshape(*x.shape[:-2], *size)
    x = _resample(x, _area_weights(h, size[0], shrink), x.ndim - 2)
    return _resample(x, _area_weights(w, size[1], shrink), x.ndim - 1)


def resize(x: torch.Tensor, size: tuple[int, int], method: str, u8: bool = False) -> torch.Tensor:
    """cv2-like resize: bilinear / bicubic without antialias, 'area' as INTER_AREA.

    u8: the input is 8-bit frames, so the result is rounded and saturated (cv2.resize keeps the depth)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if method == "area":
        out = area_resize(x, size)
    else:
        mode = "bicubic" if method == "bicubic" else "bilinear"
        out = F.interpolate(x, size=size, mode=mode, align_corners=False)
    return saturate_u8(out) if u8 else out


def random_resize(
    x: torch.Tensor,
    params: dict,
    rng: np.random.Generator,
    record: Record,
    target_size: tuple[int, int] | None = None,
    u8: bool = False,
) -> torch.Tensor:
    """Up/down/keep by a random factor (or to `target_size`, as in the final step), one method per clip."""
    if not _gate(params, rng):
        return x
    method = str(rng.choice(params["resize_opt"], p=_norm(params["resize_prob"]))).lower()
    h, w = x.shape[-2:]
    if target_size is None:
        mode = str(rng.choice(["up", "down", "keep"], p=_norm(params["resize_mode_prob"])))
        lo, hi = params["resize_scale"]
        factor = float(rng.uniform(1, hi)) if mode == "up" else float(rng.uniform(lo, 1)) if mode == "down" else 1.0
        ho, wo = h * factor, w * factor
        if params.get("is_size_even", False):
            ho, wo = 2 * (ho // 2), 2 * (wo // 2)
        target_size = (max(2, int(ho)), max(2, int(wo)))
    size = (int(target_size[0]), int(target_size[1]))
    record.append({"op": "resize", "method": method, "size": size})
    return resize(x, size, method, u8=u8)


def gaussian_noise(x: torch.Tensor, sigma: float, gray: bool, rng: np.random.Generator) -> torch.Tensor:
    """Additive N(0, sigma^2) noise (0-255 units), fresh per frame; grey noise is shared by R, G, B."""
    f, c, h, w = x.shape
    shape = (f, 1, h, w) if gray else (f, c, h, w)
    noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)) * sigma
    return x + noise


def poisson_noise(x: torch.Tensor, scale: float, gray: bool, rng: np.random.Generator) -> torch.Tensor:
    """Signal-dependent shot noise: Poisson(img * v) / v - img, v = next power of 2 of #levels."""
    out = []
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(3, 1, 1)
    for frame in x:
        base = (frame * weights).sum(0, keepdim=True) if gray else frame
        base = base.round().clamp(0, 255).numpy().astype(np.float64)
        levels = int(np.count_nonzero(np.bincount(base.astype(np.int64).ravel(), minlength=256)))
        vals = 2 ** math.ceil(math.log2(max(2, levels)))
        noise = rng.poisson(base * vals).astype(np.float64) / vals - base
        out.append(frame + torch.from_numpy(noise.astype(np.float32)) * scale)
    return torch.stack(out)


def random_noise(x: torch.Tensor, params: dict, rng: np.random.Generator, record: Record) -> torch.Tensor:
    """Gaussian or Poisson noise with one level and one colour/grey choice per clip."""
    if not _gate(params, rng):
        return x
    kind = str(rng.choice(params["noise_type"], p=_norm(params["noise_prob"]))).lower()
    if kind == "gaussian":
        sigma = float(rng.uniform(*params["gaussian_sigma"]))
        gray = bool(rng.uniform() < params["gaussian_gray_noise_prob"])
        record.append({"op": "noise", "type": "gaussian", "sigma": sigma, "gray": gray})
        return gaussian_noise(x, sigma, gray, rng)
    if kind == "poisson":
        scale = float(rng.uniform(*params["poisson_scale"]))
        gray = bool(rng.uniform() < params["poisson_gray_noise_prob"])
        record.append({"op": "noise", "type": "poisson", "scale": scale, "gray": gray})
        return poisson_noise(x, scale, gray, rng)
    raise OptionError(f"unknown noise_type {kind!r} in the degradation config")


def to_uint8(x: torch.Tensor, truncate: bool = False) -> np.ndarray:
    """[F, 3, H, W] 0-255 float -> [F, H, W, 3] uint8, clipped, then rounded or (truncate) cut down
    as numpy's astype(uint8) does (the release's JPEG and codec inputs)."""
    x = x.clamp(0, 255)
    x = x.floor() if truncate else x.round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def from_uint8(frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """[F, H, W, 3] uint8 -> [F, 3, H, W] float32 on the 0-255 scale."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(list(frames)))).permute(0, 3, 1, 2).float()


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """Frames as `video_io.read_clip` gives them ([F, H, W, 3] uint8, or uint16 on the full 0-65535 scale
    above 8 bits) -> [F, 3, H, W] float32 in [0, 1], as deep as the source (`degrade` itself works
    in 8 bits, as the release's pipeline does; an HQ target keeps them)."""
    return from_uint8(frames) / float(np.iinfo(frames.dtype).max)


def jpeg_bytes(img: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG of an [H, W, 3] uint8 image at libjpeg `quality` (4:2:0, standard tables)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode one RGB frame as the release does: cv2.imencode reads its RGB frames as BGR,
    so the JPEG's luma weights R and B swapped; the channels are swapped around the codec here."""
    from PIL import Image

    bgr = np.ascontiguousarray(img[..., ::-1])
    out = np.asarray(Image.open(io.BytesIO(jpeg_bytes(bgr, quality))).convert("RGB"))
    return np.ascontiguousarray(out[..., ::-1])


def random_jpeg(x: torch.Tensor, params: dict, rng: np.random.Generator, record: Record) -> torch.Tensor:
    """JPEG every frame; quality drawn once, then drifts by U(-step, step) per frame (release)."""
    if not _gate(params, rng):
        return x
    lo, hi = params["quality"]
    step = float(params.get("quality_step", 0))
    q = round(float(rng.uniform(lo, hi)))
    qualities, out = [], []
    for img in to_uint8(x, truncate=True):
        qualities.append(int(q))
        out.append(jpeg_roundtrip(img, q))
        q = round(float(np.clip(q + rng.uniform(-step, step), lo, hi)))
    record.append({"op": "jpeg", "quality": qualities})
    return from_uint8(out)


def pad_even(frames: np.ndarray) -> np.ndarray:
    """[F, H, W, 3] padded at the bottom/right to even sides by repeating the edge row/column
    (cv2.BORDER_REFLECT, the release's pad_if_odd)."""
    ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
    return np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else frames


def video_roundtrip(frames: np.ndarray, codec: str, bitrate: int) -> tuple[np.ndarray, int]:
    """Encode [F, H, W, 3] uint8 at `bitrate` bit/s and 1 frame/s (so bitrate = bits per frame), decode.

    Returns the decoded frames and the size of the encoded stream in bytes (payload of all packets).
    Odd sizes are padded to even (yuv420p) by edge-repeating reflection (cv2.BORDER_REFLECT) and
    cropped back, as the release does.
    """
    import av

    f, h, w, _ = frames.shape
    frames = pad_even(frames)
    buf = io.BytesIO()
    payload = 0
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=1)
        assert isinstance(stream, av.VideoStream)  # (a video codec's: for the type checker)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = int(bitrate)
        stream.codec_context.thread_count = 1  # deterministic and polite inside data-loader workers
        if stream.codec_context.name == "libx264":
            stream.options = dict(video_io.x264_options())
        packets: list[av.Packet] = []
        for img in frames:
            packets += stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24"))
        packets += stream.encode()
        for packet in packets:
            payload += packet.size
            container.mux(packet)
    buf.seek(0)
    with av.open(buf, "r", format="mp4") as container:
        out = [fr.to_ndarray(format="rgb24") for fr in container.decode(video=0)]
    if len(out) < f:  # never expected; keep the clip length whatever the codec did
        out += [out[-1]] * (f - len(out))
    return np.stack(out[:f])[:, :h, :w], payload


def random_video_compression(x: torch.Tensor, params: dict, rng: np.random.Generator, record: Record) -> torch.Tensor:
    """Codec chosen from the yaml list, bitrate uniform over the integer range (release)."""
    if not _gate(params, rng):
        return x
    codec = str(rng.choice(params["codec"], p=_norm(params["codec_prob"])))
    lo, hi = params["bitrate"]
    bitrate = int(rng.integers(int(lo), int(hi) + 1))
    out, nbytes = video_roundtrip(to_uint8(x, truncate=True), codec, bitrate)
    record.append({"op": "video", "codec": codec, "bitrate": bitrate, "bytes": nbytes, "frames": len(out)})
    return from_uint8(out)


# ---------------------------------------------------------------------------- the pipeline


def _final_ops(cfg: dict[str, Any], mode: Mode) -> tuple[dict | None, dict, dict]:
    """(compression, resize, sinc blur) params of the last step, read from the config."""
    comp, rsz, blur = None, None, None
    shuffle = cfg["degradation_2"].get("degradation_with_shuffle")
    if mode == "image" and "degradation_3" in cfg:
        d3 = cfg["degradation_3"]
        return None, _params(d3["random_resize"]), _params(d3["random_blur"])
    if shuffle is None:
        raise OptionError("degradation config: degradation_2 has no degradation_with_shuffle section")

    def walk(items: list) -> None:
        nonlocal comp, rsz, blur
        for item in items:
            if isinstance(item, list):
                walk(item)
            elif item["type"] == "RandomVideoCompression":
                comp = item["params"]
            elif item["type"] == "RandomResize":
                rsz = item["params"]
            elif item["type"] == "RandomBlur":
                blur = item["params"]

    walk(shuffle["degradations"])
    if rsz is None or blur is None:
        raise OptionError("degradation config: the shuffled step needs a RandomResize and a RandomBlur")
    return (None if mode == "image" else comp), rsz, blur


def degrade(
    clip: torch.Tensor,
    cfg: dict[str, Any],
    rng: np.random.Generator,
    out_size: tuple[int, int] | None = None,
    mode: Mode = "video",
) -> tuple[torch.Tensor, Record]:
    """The second-order pipeline. clip [F, 3, H, W] in [0, 1] -> LQ [F, 3, h, w] in [0, 1], record.

    Round 1: blur, resize, noise, JPEG, (video) codec. Round 2: blur, resize, noise, JPEG.
    Final: video clips get {codec, [resize to out_size, sinc]} in random order; images get
    resize then sinc. out_size defaults to (H/4, W/4) (the yaml's 64x64 is always replaced).
    """
    if clip.ndim != 4 or clip.shape[1] != 3:
        raise ValueError(f"expected a clip [F, 3, H, W], got {list(clip.shape)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums depend on the thread count; 8-bit steps would amplify that
    try:
        return _degrade(clip, cfg, rng, out_size, mode)
    finally:
        torch.set_num_threads(threads)


def _degrade(
    clip: torch.Tensor, cfg: dict[str, Any], rng: np.random.Generator, out_size: tuple[int, int] | None, mode: Mode
) -> tuple[torch.Tensor, Record]:
    h, w = clip.shape[-2:]
    size = out_size or (h // SCALE, w // SCALE)
    record: Record = []
    # 8-bit frames in, as the release reads them; u8 says whether values are still 8-bit (blur and
    # resize then round and saturate); noise and codec outputs are float, JPEG outputs are 8-bit
    x = saturate_u8(clip.detach().float().cpu() * 255.0)
    u8 = True

    def step(op: Any, params: dict, **kw: Any) -> None:
        nonlocal x, u8
        y = op(x, params, rng, record, **kw)
        if y is not x:  # the op ran (it was not gated off)
            if op is random_noise or op is random_video_compression:
                u8 = False
            elif op is random_jpeg:
                u8 = True
        x = y

    d1, d2 = cfg["degradation_1"], cfg["degradation_2"]
    step(random_blur, _params(d1["random_blur"]), u8=u8)
    step(random_resize, _params(d1["random_resize"]), u8=u8)
    step(random_noise, _params(d1["random_noise"]))
    step(random_jpeg, _params(d1["random_jpeg"]))
    if mode == "video" and "random_mpeg" in d1:
        step(random_video_compression, _params(d1["random_mpeg"]))
    step(random_blur, _params(d2["random_blur"]), u8=u8)
    step(random_resize, _params(d2["random_resize"]), u8=u8)
    step(random_noise, _params(d2["random_noise"]))
    step(random_jpeg, _params(d2["random_jpeg"]))

    comp, rsz, blur = _final_ops(cfg, mode)

    def resize_and_sinc() -> None:
        step(random_resize, {**rsz, "prob": 1.0}, target_size=size, u8=u8)
        step(random_blur, blur, u8=u8)

    if comp is not None and rng.uniform() < 0.5:
        step(random_video_compression, comp)
        resize_and_sinc()
    else:
        resize_and_sinc()
        if comp is not None:
            step(random_video_compression, comp)
    if tuple(x.shape[-2:]) != tuple(size):  # only if the config's resize had prob < 1
        x = resize(x, size, "bilinear")
    return (x / 255.0).clamp(0.0, 1.0), record


# ---------------------------------------------------------------------------- intermediate crop


@dataclass(frozen=True)
class CropPlan:
    """Where the intermediate clip is cut from a source of `frames` x `height` x `width`."""

    start: int
    frames: int
    top: int
    left: int
    height: int
    width: int


def intermediate_size(
    crop: tuple[int, int, int], extra_frames: int = 10, max_frames: int | None = None
) -> tuple[int, int, int]:
    """The larger clip that is degraded whole: frames + 10 (35 for stage 1's 25, 12 for stage 2's 2),
    height and width x 1.5 rounded up to multiples of 16 (docs/SPEC.md section 2). The release caps
    the frames at 30 only for its YouHQ lists (max_frames=30 does that, never below the crop)."""
    f, h, w = crop
    frames = f + extra_frames if max_frames is None else max(f, min(f + extra_frames, max_frames))
    return frames, math.ceil(h * 1.5 / 16) * 16, math.ceil(w * 1.5 / 16) * 16


def plan_intermediate(
    source: tuple[int, int, int], crop: tuple[int, int, int], rng: np.random.Generator
) -> CropPlan | None:
    """Random window of the intermediate size inside a source (F, H, W); None if the source is
    smaller than the training crop. Sides are cut down to multiples of 4 (the LQ scale)."""
    sf, sh, sw = source
    cf, ch, cw = crop
    if sf < cf or sh < ch or sw < cw:
        return None
    inter_f, inter_h, inter_w = intermediate_size(crop)
    f, h, w = min(inter_f, sf), min(inter_h, sh), min(inter_w, sw)
    h, w = h - h % SCALE, w - w % SCALE
    start = int(rng.integers(0, sf - f + 1))
    top = int(rng.integers(0, sh - h + 1))
    left = int(rng.integers(0, sw - w + 1))
    return CropPlan(start, f, top, left, h, w)


def paired_crop(
    hq: torch.Tensor, lq: torch.Tensor, crop: tuple[int, int, int], rng: np.random.Generator, scale: int = SCALE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned random crop: LQ window on the LQ grid, HQ window = LQ window x scale, same frames."""
    cf, ch, cw = crop
    lh, lw = ch // scale, cw // scale
    if lq.shape[-2] * scale != hq.shape[-2] or lq.shape[-1] * scale != hq.shape[-1]:
        raise ValueError(f"HQ {list(hq.shape)} is not {scale}x LQ {list(lq.shape)}")
    top = int(rng.integers(0, lq.shape[-2] - lh + 1))
    left = int(rng.integers(0, lq.shape[-1] - lw + 1))
    start = int(rng.integers(0, hq.shape[0] - cf + 1))
    hq_c = hq[start : start + cf, :, top * scale : (top + lh) * scale, left * scale : (left + lw) * scale]
    lq_c = lq[start : start + cf, :, top : top + lh, left : left + lw]
    return hq_c, lq_c


def make_pair(
    inter: torch.Tensor,
    crop: tuple[int, int, int],
    cfg: dict[str, Any],
    rng: np.random.Generator,
    mode: Mode = "video",
) -> tuple[torch.Tensor, torch.Tensor, Record]:
    """Degrade the intermediate clip whole to 1/4 of its size, then cut the aligned training pair.

    inter [F', 3, H', W'] in [0, 1] (H', W' multiples of 4) -> HQ [F, 3, H, W], LQ [F, 3, H/4, W/4].
    """
    h, w = inter.shape[-2:]
    lq, record = degrade(inter, cfg, rng, out_size=(h // SCALE, w // SCALE), mode=mode)
    hq_c, lq_c = paired_crop(inter, lq, crop, rng)
    return hq_c.contiguous(), lq_c.contiguous(), record


# ---------------------------------------------------------------------------- one file (dove degrade)


def degrade_file(
    src: str | Path,
    dst: str | Path,
    *,
    seed: int = 0,
    config: str | Path | None = None,
    max_frames: int = 100,
    overwrite: bool = False,
) -> Record:
    """Degrade the first `max_frames` frames of a video, or an image, to 1/4 size and write them, so
    users can see what the model is trained against: the LQ rounded to 8 bits, exactly in an .mkv
    (FFV1 RGB) or an image, in other containers as lossless H.264 4:4:4 (x264 CRF 0, which is QP 0),
    whose only loss is the 8-bit RGB -> YUV conversion (a level or two); at the source's frame times, with its
    rotation tag.
    A size that is not a multiple of 4 is cut to one from the top-left, as said in a warning.

    An image (a file training takes for --images) is degraded as training degrades its images: in
    image mode (no video codec; the yaml's image step, degradation_3, last), with the stage-2 config
    `image_video` unless `config` says otherwise; a video with `video` (stage 1) unless it says so."""
    from dove_cli.errors import InputError
    from dove_cli.train.data import IMAGE_EXTS

    src, dst = Path(src), Path(dst)
    if max_frames < 1:
        raise OptionError(f"--frames must be >= 1, got {max_frames}")
    if not 0 <= seed < 2**32:
        raise OptionError(f"--seed must be in [0, {2**32 - 1}], got {seed}")
    video_io.check_output(dst, overwrite=overwrite, inputs=[src])
    mode: Mode = "image" if src.suffix.lower() in IMAGE_EXTS else "video"
    cfg = load_degradation_config(config or ("image_video" if mode == "image" else "video"))
    with video_io.open_reader(src, warn=False, scan=False) as reader:  # as training reads it (`read_clip`)
        source = reader.info
        read = list(itertools.islice(reader, max_frames))
    if not read:
        raise InputError(f"{src}: no frames")
    frames = np.stack([frame.rgb for frame in read])
    clip = to_unit(frames)
    h, w = clip.shape[-2:]
    if h % SCALE or w % SCALE:
        hq_h, hq_w = h - h % SCALE, w - w % SCALE
        log.warning("%s: %dx%d -> %dx%d (HQ %dx%d from the top-left: the LQ is 1/%d of a multiple of %d)", src, w, h,
                    hq_w // SCALE, hq_h // SCALE, hq_w, hq_h, SCALE, SCALE)  # fmt: skip
        clip = clip[..., :hq_h, :hq_w]
    from dove_cli.train.data import transparent

    if mode == "image" and transparent(src):
        log.warning("%s: the alpha channel is dropped: the colours stored under it are degraded (as training and "
                    "`dove upscale` read them)", src)  # fmt: skip
    lq, record = degrade(clip, cfg, np.random.default_rng(seed), mode=mode)
    out = to_uint8(lq * 255.0)
    height, width = out.shape[1:3]
    info = shown_as(source, width, height, len(out), mode == "image")
    if video_io.is_image_path(dst) and mode == "video" and (info.rotation or info.mirrored):
        log.warning("%s: images cannot carry the rotation tag of %s; they are stored as decoded (as training reads "
                    "them)", dst, src)  # fmt: skip
        info = replace(info, rotation=0, mirrored=False)
    # formats asked for, so the writer gives no advice naming options (--pix-fmt, --codec) degrade lacks
    how: dict[str, Any] = {}  # images: RGB as they are
    if not video_io.is_image_path(dst):
        mkv = dst.suffix.lower() == ".mkv"
        how = dict(codec="ffv1", pix_fmt="bgr0") if mkv else dict(codec="h264", crf=0, pix_fmt="yuv444p")
    with video_io.open_writer(dst, info, width, height, audio="none", overwrite=overwrite, **how) as writer:
        for img, frame in zip(out, read, strict=True):
            writer.write(img, frame.pts)
    return record


def shown_as(source: video_io.VideoInfo, width: int, height: int, frames: int, image: bool) -> video_io.VideoInfo:
    """The LQ's info for the writer: the source's clock and frame times (a variable rate kept, as `dove upscale`
    keeps it) and its rotation tag (the pixels stay as stored, as training and `dove upscale` read them), so
    the LQ plays beside its source; nothing else of the source (colour tags, streams: the LQ is 8-bit RGB)."""
    return video_io.VideoInfo(
        path=source.path, width=width, height=height, num_frames=frames, fps=source.fps, time_base=source.time_base,
        start_pts=source.start_pts, base_fps=source.base_fps, grid=source.grid, variable_rate=source.variable_rate,
        rotation=source.rotation, mirrored=source.mirrored, is_still_image=image,
    )  # fmt: skip


def described(record: Record) -> str:
    """A degradation record in one line, as `dove degrade` says it: `blur iso, resize area, jpeg quality 30-62, ...`."""

    def step(s: dict[str, Any]) -> str:
        if s["op"] == "jpeg":
            q = s["quality"]
            return f"jpeg quality {min(q)}-{max(q)}" if min(q) != max(q) else f"jpeg quality {q[0]}"
        what = s.get("kernel") or s.get("codec") or s.get("type") or s.get("method")
        return s["op"] + (f" {what}" if what else "")

    return ", ".join(step(s) for s in record)
