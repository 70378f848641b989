"""The one-step DOVE computation on one window (docs/SPEC.md section 1.1), on the real diffusers classes.

Shapes at the boundaries: videos are [B, C, F, H, W]; latents are [B, C, F', h, w] with
F' = 1 + (F - 1) / 4, h = H / 8, w = W / 8.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

from dove_cli.errors import ModelError, OptionError
from dove_cli.options import Attention, Compile, Offload, Posterior, Quantize, check_quantize_offload
from dove_cli.timing import NULL_TIMER, StageTimer

log = logging.getLogger(__name__)


DtypeName = Literal["bf16", "fp16", "fp32"]
DTYPES: dict[DtypeName, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}  # torch.bfloat16 -> "bf16"
TIMESTEP = 399  # the single denoising step DOVE was trained for
TEMPORAL_PAD = 8  # frames are padded so that (F - 1) % 8 == 0, as the release does


# diffusers' first import is not thread-safe: a second thread that asks for a class while the first is
# still importing the package gets "ImportError: cannot import name ...". dove takes them from here only.
_DIFFUSERS_IMPORT = threading.Lock()


def from_diffusers(*names: str) -> list[Any]:
    """`from diffusers import <names>`, one thread at a time (see _DIFFUSERS_IMPORT)."""
    with _DIFFUSERS_IMPORT:
        import diffusers

        return [getattr(diffusers, name) for name in names]


# A CPU scalar tensor: CUDA ops take it as a plain number (no per-frame tensor, no host-to-device copy).
HALF = torch.tensor(0.5)


SDPA_BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}


@contextlib.contextmanager
def attention_kernel(choice: Attention) -> Iterator[None]:
    """Run the transformer's scaled_dot_product_attention with one kernel (`auto`: torch's choice).
    A kernel that cannot take the window (flash in fp32 on a GPU, say) is a one-line error."""
    if choice == "auto":
        yield
        return
    try:
        with sdpa_kernel([SDPA_BACKENDS[choice]]):
            yield
    except RuntimeError as exc:
        if "No viable backend" not in str(exc) and "No available kernel" not in str(exc):
            raise
        raise ModelError(f"--attention {choice} cannot run this model's attention here (dtype, GPU or head "
                         "size); --attention auto lets torch choose a kernel that can") from None  # fmt: skip


def attention_runs(choice: Attention, device: torch.device, dtype: torch.dtype = torch.float32) -> bool:
    """Whether torch runs `choice`'s SDPA kernel on `device`, tried on a tiny attention (`dove info`):
    which kernels run where depends on the device and the torch build (torch 2.13 has a CPU flash
    kernel; efficient and cudnn need CUDA), so torch is asked rather than a table kept here."""
    q = torch.zeros(1, 1, 4, 64, device=device, dtype=dtype)
    try:
        with attention_kernel(choice):
            F.scaled_dot_product_attention(q, q, q)
    except ModelError:
        return False
    return True


def upsample(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear upsampling by an integer factor, as the release does it: the first step of a window.

    lq: [N, C, h, w] float, frames as the batch (a window of F frames: [F, 3, h, w]) -> [N, C,
    h * scale, w * scale] (align_corners=False, no antialias). For `restore`, the LQ frames are
    padded first so that h * scale and w * scale are multiples of the model's `spatial_multiple`
    (tiled.pad_frame), and the result, still code values, is mapped to [-1, 1] (`to_model_range`)
    and permuted to [1, 3, F, H, W] (`.permute(1, 0, 2, 3)[None]`).
    """
    return F.interpolate(lq, scale_factor=scale, mode="bilinear", align_corners=False, antialias=False)


def to_model_range(codes: torch.Tensor, max_value: int) -> torch.Tensor:
    """Float code values (white = max_value: 255, or 65535 for deeper frames) -> the model's [-1, 1],
    x / max_value * 2 - 1, in place: a window of 720p frames is hundreds of MB, and every fresh tensor
    of that size costs its page faults again. The one home of this arithmetic, so that colour fix's
    reference (`blend.upsampled_reference`) is bit for bit what the model was given."""
    return codes.div_(max_value).mul_(2.0).sub_(1.0)


def pad_time(video: torch.Tensor, multiple: int = TEMPORAL_PAD) -> tuple[torch.Tensor, int]:
    """Repeat the last frame so that (F - 1) % multiple == 0. video: [B, C, F, H, W]."""
    pad = (-(video.shape[2] - 1)) % multiple
    if pad:
        video = torch.cat([video, video[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
    return video, pad


def check_window(video: torch.Tensor, multiple: int) -> None:
    """A window for `restore`: [B, 3, F, H, W] with H and W multiples of `multiple`, else a ValueError
    that says so (a library caller's mistake: the VAE and the patching would crop it silently)."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"expected a window [B, 3, F, H, W], got shape {list(video.shape)}")
    h, w = video.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"window of {w}x{h} px: width and height must be multiples of {multiple} (pad the "
                         "frames, e.g. dove_cli.tiled.pad_frame, and crop the output)")  # fmt: skip


class Restorer(Protocol):
    """What a run needs from a model: one window in, one window out, and what it costs.

    DoveModel is the real one; BilinearModel (no network) and test doubles stand in for it.
    """

    spatial_multiple: int  # window sides (output px) must be multiples of this
    device: torch.device
    dtype: torch.dtype  # of the computation
    output_is_input: bool  # restore() returns its input: no colour fix needed
    pixel_local: bool  # an output pixel depends on its own input pixels only: windows need no overlap
    may_overflow: bool  # outputs can be NaN/Inf (half precision): the run checks them

    @property
    def max_window_pixels(self) -> int | None:
        """Largest window (output px) it takes in one piece; None: any."""
        ...

    @property
    def is_skeleton(self) -> bool:
        """Sized for planning only (meta device): the weights are not loaded."""
        ...

    def restore(
        self,
        video: torch.Tensor,
        generator: torch.Generator | None = None,
        timer: StageTimer = NULL_TIMER,
        *,
        release: bool = False,
    ) -> torch.Tensor:
        """[B, 3, F, H, W] in [-1, 1] -> [B, 3, F, H, W] in [0, 1] (float32).

        The window is already at the output size (upsampled: `upsample`), any number of frames F,
        H and W multiples of `spatial_multiple`.
        release: the authors' arithmetic (`--parity`): the window's frames as they are (the caller
        padded the video; 1, 8k or 8k+1 frames), the output mapped to [0, 1] in the model's dtype.
        Only the loop's own call passes it, so models that never run `--parity` may leave it out."""
        ...

    def estimate_window_bytes(
        self, frames: int, height: int, width: int, vae_tiled: bool = False, offload: Offload = "none"
    ) -> int:
        """Peak device bytes of one window beyond `weights_on_device(offload)`."""
        ...

    def estimate_seconds(self, frames: int, height: int, width: int) -> float | None:
        """Rough time of one window, None when there is no estimate."""
        ...

    def weights_bytes(self) -> int: ...

    def weights_on_device(self, offload: Offload = "none") -> int:
        """Weight bytes on the device while a window runs: all of them, the larger part (offload
        "model": the parts take turns) or none (sequential: a layer at a time, left out)."""
        ...

    def can_offload(self) -> bool:
        """Whether `offload_model()` can make room on the device (the out-of-memory fallback)."""
        ...

    def offload_model(self) -> None:
        """Keep the weights on the host and bring each part to the device in turn."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the weights, for a run's manifest."""
        ...


class BilinearModel:
    """No network: the upsampled input itself. A fast preview and the baseline for I/O checks."""

    spatial_multiple = 16
    max_window_pixels: int | None = None
    is_skeleton = False
    output_is_input = True
    pixel_local = True
    may_overflow = False
    dtype = torch.float32

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def restore(
        self,
        video: torch.Tensor,
        generator: torch.Generator | None = None,
        timer: StageTimer = NULL_TIMER,
        *,
        release: bool = False,
    ) -> torch.Tensor:
        """The input mapped back to [0, 1] in one pass (in place when it is float32: the caller is done
        with it). Not clamped: rounding may pass 0 or 1 by an ulp, and the 8-bit conversion clamps."""
        video = video.float()
        return torch.add(HALF, video, alpha=0.5, out=video)

    def estimate_window_bytes(
        self, frames: int, height: int, width: int, vae_tiled: bool = False, offload: Offload = "none"
    ) -> int:
        return frames * height * width * 3 * 4 * 3

    def estimate_seconds(self, frames: int, height: int, width: int) -> float | None:
        return None

    def weights_bytes(self) -> int:
        return 0

    def weights_on_device(self, offload: Offload = "none") -> int:
        return 0

    def can_offload(self) -> bool:
        return False

    def offload_model(self) -> None:
        raise RuntimeError("BilinearModel has no weights to offload")

    def fingerprint(self) -> dict[str, Any]:
        return {"name": type(self).__name__}


def packaged_prompt_embedding() -> torch.Tensor:
    """The cached T5-XXL embedding of the empty prompt, [226, 4096] bf16 (from the DOVE release)."""
    from safetensors.torch import load_file

    path = resources.files("dove_cli") / "data" / "empty_prompt_t5.safetensors"
    with resources.as_file(path) as p:
        return load_file(str(p))["prompt_embedding"]


def load_prompt_embedding(folder: Path | None) -> torch.Tensor:
    """`prompt_embedding.safetensors` in the model folder overrides the packaged one."""
    from safetensors.torch import load_file

    if folder is not None and (folder / "prompt_embedding.safetensors").is_file():
        tensors = load_file(str(folder / "prompt_embedding.safetensors"))
        if "prompt_embedding" not in tensors:
            raise ModelError(f"{folder / 'prompt_embedding.safetensors'}: no tensor named 'prompt_embedding'")
        emb = tensors["prompt_embedding"]
    else:
        emb = packaged_prompt_embedding()
    if emb.ndim == 3 and emb.shape[0] == 1:
        emb = emb[0]
    if emb.ndim != 2:
        raise ModelError(f"prompt embedding must be [seq, dim], got {list(emb.shape)}")
    return emb


@dataclass
class DoveModel:
    """CogVideoX1.5 transformer + VAE + scheduler constants, run as one step (DOVE)."""

    # diffusers' CogVideoXTransformer3DModel, AutoencoderKLCogVideoX and CogVideoXDPMScheduler (or
    # their skeletons); typed Any because their configs are read as attributes (config.patch_size)
    transformer: Any
    vae: Any
    scheduler: Any
    prompt_embedding: torch.Tensor  # [seq, dim]
    device: torch.device
    dtype: torch.dtype
    posterior: Posterior = "sample"
    timestep: int = TIMESTEP
    quantize: Quantize = "none"  # bitsandbytes weights cannot be offloaded layer by layer
    planned_weights_bytes: int | None = None  # a skeleton's weights as they would be loaded (quantised)
    offload: Offload = "none"  # how the weights are placed now (see `place`)
    attention: Attention = "auto"  # the SDPA kernel the transformer runs (--attention)

    output_is_input = False
    pixel_local = False
    may_overflow = True  # fp16 can overflow to Inf/NaN

    def __post_init__(self) -> None:
        cfg = self.transformer.config
        if self.prompt_embedding.shape[-1] != cfg.text_embed_dim:
            raise ModelError(
                f"prompt embedding has dim {self.prompt_embedding.shape[-1]}, "
                f"the transformer expects text_embed_dim {cfg.text_embed_dim}"
            )
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.spatial_multiple = self.vae_scale * cfg.patch_size
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self._rotary: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._text = self.prompt_embedding.to(self.device, self.dtype)[None]

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        posterior: Posterior = "sample",
        quantize: Quantize = "none",
        offload: Offload = "none",
        vae_tiling: bool = False,
        on_part: Callable[[str], None] | None = None,
    ) -> DoveModel:
        """Load a diffusers-layout folder: transformer/, vae/, scheduler/ (+ prompt_embedding).
        `on_part(name)` is called before each part loads ("transformer", "VAE", "scheduler"): what
        a progress display can say during the minute this takes, and where raising from it stops."""
        AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel = from_diffusers(
            "AutoencoderKLCogVideoX", "CogVideoXDPMScheduler", "CogVideoXTransformer3DModel"
        )

        folder = Path(folder)
        for part in ("transformer", "vae", "scheduler"):
            if not (folder / part).is_dir():
                raise ModelError(f"model folder {folder} has no {part}/ (expected the diffusers layout)")
        device = torch.device(device)
        kwargs: dict = {"torch_dtype": dtype}
        if quantize == "fp8":
            check_fp8(device)
        elif quantize != "none":
            check_quantize_offload(quantize, offload)
            kwargs["quantization_config"] = bnb_config(quantize, dtype, device)
            kwargs["device_map"] = {"": device}  # else bitsandbytes puts them on the current GPU
        loaders: dict[str, Callable[[], Any]] = {
            "transformer": lambda: CogVideoXTransformer3DModel.from_pretrained(folder / "transformer", **kwargs),
            "VAE": lambda: AutoencoderKLCogVideoX.from_pretrained(folder / "vae", torch_dtype=dtype),
            "scheduler": lambda: CogVideoXDPMScheduler.from_pretrained(folder / "scheduler", timestep_spacing="trailing"),
        }  # fmt: skip
        loaded = {}
        for name, load in loaders.items():
            if on_part is not None:
                on_part(name)  # (outside the try: what it raises is the caller's, not a broken model)
            try:
                loaded[name] = load()
            except (OSError, ValueError, KeyError) as exc:
                raise ModelError(f"cannot load model from {folder}: {str(exc).splitlines()[0]}") from exc
        transformer, vae, scheduler = loaded["transformer"], loaded["VAE"], loaded["scheduler"]
        _apply_adapter(transformer, folder)
        model = cls(
            transformer, vae, scheduler, load_prompt_embedding(folder), device, dtype, posterior,
            quantize="none" if quantize == "fp8" else quantize,
        )  # fmt: skip
        model.place(offload, vae_tiling)
        if quantize == "fp8":
            model.quantize_fp8()
        return model

    def quantize_fp8(self) -> None:
        """The transformer's Linear layers in fp8 (torchao: fp8 weights, activations scaled per row
        at run time), on an fp8 GPU; the VAE stays in its dtype."""
        check_fp8(self.device)
        check_quantize_offload("fp8", self.offload)
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

        quantize_(self.transformer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
        self.quantize = "fp8"

    def place(self, offload: Offload, vae_tiling: bool) -> None:
        """Move weights to the device, or install offload hooks that do it on demand."""
        self.transformer.eval().requires_grad_(False)
        self.vae.eval().requires_grad_(False)
        if vae_tiling:
            self.vae.enable_tiling()
        if offload != "none" and self.device.type == "cpu":
            log.warning("--offload %s has no effect on the CPU", offload)
            offload = "none"
        if offload == "none":
            if self.quantize in ("none", "fp8"):  # bitsandbytes places quantised weights itself
                self.transformer.to(self.device)
            self.vae.to(self.device)
        elif offload == "model":
            self._offload_model()
        elif offload == "sequential":
            from accelerate import cpu_offload

            cpu_offload(self.transformer, self.device)
            cpu_offload(self.vae, self.device)
        else:
            raise OptionError(f"--offload {offload!r} is not one of: {', '.join(get_args(Offload))}")
        self.offload = offload

    def _offload_model(self) -> None:
        """One part on the device at a time, as accelerate's hooks move them on demand."""
        from accelerate import cpu_offload_with_hook

        # A cycle: each window runs VAE -> transformer -> VAE, so each part evicts the other.
        _, vae_hook = cpu_offload_with_hook(self.vae, self.device)
        _, transformer_hook = cpu_offload_with_hook(self.transformer, self.device, prev_module_hook=vae_hook)
        vae_hook.hook.prev_module_hook = transformer_hook

    def can_offload(self) -> bool:
        return self.offload == "none" and self.quantize == "none"

    def compile(self, parts: Compile = "all") -> None:
        """torch.compile the transformer (and with "all" the VAE decoder), in place: hooks and
        attributes stay. Windows have one shape (chunks are 4k+1 frames, tiles one size), so each
        part compiles once per shape, with static shapes, so inductor can specialise its kernels.
        """
        if self.offload != "none":
            log.warning("--compile with --offload %s: offload hooks move weights between calls, so the model "
                        "runs uncompiled", self.offload)  # fmt: skip
            return
        if parts != "off":
            self.transformer.compile(dynamic=False)
        if parts == "all":
            self.vae.decoder.compile(dynamic=False)

    def offload_model(self) -> None:
        """The out-of-memory fallback: weights back to the host, each part on the device in turn,
        and VAE tiling on. accelerate's hooks are installed on any device (`place` skips them on a
        CPU, where a user's --offload has nothing to gain), so the fallback runs the same on a CPU."""
        self.transformer.to("cpu")
        self.vae.to("cpu")
        self.vae.enable_tiling()
        self._offload_model()
        self.offload = "model"

    # ------------------------------------------------------------------ docs/SPEC.md 1.1 steps

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Step 4. video [B, 3, F, H, W] in [-1, 1] -> latent [B, C, F', h, w] x scaling_factor."""
        dist = self.vae.encode(video.to(self.device, self.dtype)).latent_dist
        z = dist.mode() if self.posterior == "mode" else dist.sample(generator=generator)
        return z * self.scaling_factor

    def rotary(self, frames: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 9, cached by window shape. frames: latent frames after replication; h, w: latent."""
        key = (frames, height, width)
        if key not in self._rotary:
            from diffusers.models.embeddings import get_3d_rotary_pos_embed

            cfg = self.transformer.config
            grid = (height // cfg.patch_size, width // cfg.patch_size)
            p_t = cfg.patch_size_t or 1
            cos, sin = get_3d_rotary_pos_embed(
                embed_dim=cfg.attention_head_dim,
                crops_coords=None,
                grid_size=grid,
                temporal_size=math.ceil(frames / p_t),
                grid_type="slice",
                max_size=grid,
                device=self.device,
            )
            self._rotary[key] = (cos, sin)
        return self._rotary[key]

    def predict_clean(self, latent: torch.Tensor) -> torch.Tensor:
        """Steps 5-11 (+ the drop of step 12). latent [B, C, F', h, w] -> clean latent, same shape."""
        cfg = self.transformer.config
        n_copy = latent.shape[2] % cfg.patch_size_t if cfg.patch_size_t else 0
        if n_copy:
            latent = torch.cat([latent[:, :, :1].expand(-1, -1, n_copy, -1, -1), latent], dim=2)
        x = latent.permute(0, 2, 1, 3, 4)  # [B, F', C, h, w]
        b, frames, _, h, w = x.shape
        t = torch.full((b,), self.timestep, dtype=torch.long, device=x.device)
        rotary = self.rotary(frames, h, w) if cfg.use_rotary_positional_embeddings else None
        with attention_kernel(self.attention):
            v = self.transformer(
                hidden_states=x,
                encoder_hidden_states=self._text.expand(b, -1, -1).to(x.dtype),
                timestep=t,
                image_rotary_emb=rotary,
                return_dict=False,
            )[0]
            z = self.scheduler.get_velocity(v, x, t)  # sqrt(abar) * x - sqrt(1 - abar) * v
            return z[:, n_copy:].permute(0, 2, 1, 3, 4)

    def decode(self, latent: torch.Tensor, release: bool = False) -> torch.Tensor:
        """Step 12. latent [B, C, F', h, w] -> video [B, 3, F, H, W] in [-1, 1] (unclamped).

        release: scaled as diffusers' `decode_latents` does (times 1 / scaling_factor)."""
        latent = latent * (1 / self.scaling_factor) if release else latent / self.scaling_factor
        return self.vae.decode(latent).sample

    def restore(
        self,
        video: torch.Tensor,
        generator: torch.Generator | None = None,
        timer: StageTimer = NULL_TIMER,
        *,
        release: bool = False,
    ) -> torch.Tensor:
        """SPEC 1.1 steps 1 (time padding), 4-12 and step 13's time crop on one window: [B, 3, F, H, W]
        in [-1, 1] -> [0, 1] float32, same shape. The rest of step 13 (the space crop, code values) is
        done per output frame once the windows are blended (blend.finish_frame, blend.to_code_values).

        `video` is the low-quality window already upsampled to the output size (`upsample`), any
        number of frames F (padded here to 8k+1 and cut back), H and W multiples of
        `spatial_multiple` (16 for DOVE: pad the frames first); another shape is a ValueError (the
        VAE would silently return a smaller frame).
        release (`--parity`): no time padding here (the release pads the whole video to 8k+1 and
        encodes each chunk as it is), and the output is mapped to [0, 1] in the model's dtype before
        it becomes float32, as their `process_video` does."""
        check_window(video, self.spatial_multiple)
        frames = video.shape[2]
        if not release:
            video, _ = pad_time(video)
        with torch.inference_mode():
            with timer.stage("vae_encode"):
                latent = self.encode(video, generator)
            with timer.stage("transformer"):
                latent = self.predict_clean(latent)
            with timer.stage("vae_decode"):
                out = self.decode(latent, release)
        if release:
            return (out * 0.5 + 0.5).clamp(0.0, 1.0).float()
        return (out[:, :, :frames].float() * 0.5 + 0.5).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ memory model

    def weights_bytes(self) -> int:
        if self.planned_weights_bytes is not None:
            return self.planned_weights_bytes
        return sum(p.numel() * p.element_size() for m in (self.transformer, self.vae) for p in m.parameters())

    @property
    def is_skeleton(self) -> bool:
        """Built on the meta device by `skeleton`: shapes for planning, no weights. (Not "are the
        parameters on meta": sequential offload puts a real model's parameters there too.)"""
        return self.planned_weights_bytes is not None

    @property
    def max_window_pixels(self) -> int | None:
        """Largest window (output px) the VAE decodes in one piece, None with VAE tiling.

        diffusers' CogVideoXSafeConv3d splits big inputs along time into chunks that can be shorter
        than the kernel, which fails from about 1.4 MP (benchmarks/calibrate_memory.py)."""
        return None if self.vae.use_tiling else SAFE_DECODE_PIXELS

    def estimate_window_bytes(
        self, frames: int, height: int, width: int, vae_tiled: bool = False, offload: Offload = "none"
    ) -> int:
        """Rough peak activation bytes for one window (calibrate on a GPU; see README); with VAE
        tiling (on now, or `vae_tiled`) the decoder works on diffusers' tiles, not the whole window.
        offload "model": the transformer's pass with its weights or the VAE's with its own, whichever
        is larger (accelerate's hooks hold one part on the device at a time), less the larger part's
        weights (`weights_on_device`)."""
        tile = None
        if vae_tiled or self.vae.use_tiling:
            tile = (int(self.vae.tile_sample_min_height * 1.2), int(self.vae.tile_sample_min_width * 1.25))
        parts = estimate_activation_parts(
            self.transformer.config, self.vae.config, frames, height, width, self.dtype, vae_tile=tile
        )
        if offload != "model":
            return max(parts)
        weights = self._part_weights_bytes()
        return max(a + w for a, w in zip(parts, weights, strict=True)) - max(weights)

    def weights_on_device(self, offload: Offload = "none") -> int:
        if offload == "sequential":
            return 0
        return max(self._part_weights_bytes()) if offload == "model" else self.weights_bytes()

    def _part_weights_bytes(self) -> tuple[int, int]:
        """(transformer, VAE) weight bytes as loaded (the VAE is never quantised)."""
        vae = sum(p.numel() * p.element_size() for p in self.vae.parameters())
        return self.weights_bytes() - vae, vae

    def enable_vae_tiling(self) -> None:
        """Decode (and encode) in diffusers' overlapping tiles: for windows past SAFE_DECODE_PIXELS."""
        self.vae.enable_tiling()

    def estimate_seconds(self, frames: int, height: int, width: int) -> float | None:
        """FLOPs of the window over this device's measured rates (speed.py)."""
        from dove_cli.speed import estimate_window_seconds

        return estimate_window_seconds(self.transformer, self.vae, self.device, self.dtype, frames, height, width)

    def fingerprint(self) -> dict[str, Any]:
        """A sha256 over the weights in memory (cheap next to a run) and the configs; a skeleton
        (--dry-run) has no weights to hash, only its configs."""
        out: dict[str, Any] = {}
        for name, module in (("transformer", self.transformer), ("vae", self.vae)):
            if self.is_skeleton:
                out[name] = {"sha256": None, "config": dict(module.config)}
                continue
            h = hashlib.sha256()
            for key, tensor in sorted(module.state_dict().items()):
                if tensor.is_meta:  # --offload sequential: the weight waits in its layer's accelerate hook
                    owner, _, local = key.rpartition(".")
                    tensor = module.get_submodule(owner)._hf_hook.weights_map[local]
                h.update(key.encode())
                h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            out[name] = {"sha256": h.hexdigest(), "config": dict(module.config)}
        out["prompt_embedding_sha256"] = hashlib.sha256(
            self.prompt_embedding.float().contiguous().numpy().tobytes()
        ).hexdigest()
        return out


# Peak activation bytes of one window, fitted by benchmarks/calibrate_memory.py (peak RSS on a CPU,
# live tensor bytes on the meta device) with a 1.25x margin, in units of the element size x:
TRANSFORMER_BYTES = 16  # tokens x hidden width (flash / memory-efficient attention: linear in tokens)
VAE_DECODE_BYTES = {1: 51, 9: 168}  # pixels x block_out_channels[0], by frames padded to 8k+1; more:
VAE_DECODE_BYTES_LONG = 224  # the 2nd frame batch runs while the 1st batch's conv caches are held
# ... and at least this many x pixels, whatever the width: a VAE a few channels wide (the tiny test
# model: 4) still holds 3-channel frames, conv caches and allocator pages, so its peak is not 4/128
# of the real one's (4 channels: live tensors 1,184 at 17+ frames and 776 at 9, tests/test_engine.py;
# RSS of whole restores up to 2,008 and 1,447, and more on a loaded machine).
VAE_DECODE_FLOOR = {1: 300, 9: 1900}
VAE_DECODE_FLOOR_LONG = 2600
SAFE_DECODE_PIXELS = 1_300_000  # see DoveModel.max_window_pixels
WORKSPACE_BYTES = 256 << 20  # kernel scratch and allocator slack (CPU: RSS was 33-200 MiB above live bytes)


def vae_decode_bytes(vcfg, frames: int, height: int, width: int, element_size: int) -> int:
    """The VAE decode's own peak bytes for `frames` (padded to 8k+1) of height x width: without
    the window's frames in and out and the workspace, which `estimate_activation_parts` adds."""
    per_pixel = max(VAE_DECODE_BYTES.get(frames, VAE_DECODE_BYTES_LONG) * vcfg.block_out_channels[0],
                    VAE_DECODE_FLOOR.get(frames, VAE_DECODE_FLOOR_LONG))  # fmt: skip
    return per_pixel * height * width * element_size


def estimate_activation_parts(
    tcfg, vcfg, frames: int, height: int, width: int, dtype: torch.dtype, vae_tile: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Peak activation bytes of one window's transformer pass and of its VAE decode, each with
    the window's frames and workspace (apart: with --offload model each runs beside its own weights).

    The constants come from benchmarks/calibrate_memory.py, a CPU proxy: the GPU caching
    allocator's fragmentation and cuDNN/cuBLAS workspaces are not captured. The VAE encode peaks
    at about half the decode, so it never decides; the decoder works in batches of 2 latent frames,
    so its peak stops growing past 17 frames; the transformer frees each layer's activations, so
    the layer count does not matter.
    """
    elt = torch.finfo(dtype).bits // 8
    frames += (-(frames - 1)) % TEMPORAL_PAD
    lat_frames = 1 + (frames - 1) // 4
    p, pt = tcfg.patch_size, tcfg.patch_size_t or 1
    scale = 2 ** (len(vcfg.block_out_channels) - 1)
    tokens = math.ceil(lat_frames / pt) * (height // (scale * p)) * (width // (scale * p)) + tcfg.max_text_seq_length
    dim = tcfg.num_attention_heads * tcfg.attention_head_dim
    transformer = TRANSFORMER_BYTES * tokens * dim * elt
    vae_h, vae_w = (min(height, vae_tile[0]), min(width, vae_tile[1])) if vae_tile else (height, width)
    vae = vae_decode_bytes(vcfg, frames, vae_h, vae_w, elt)
    io = 3 * frames * height * width * 3 * 4  # the window in, decoded out, float32 result
    return int(transformer + WORKSPACE_BYTES + io), int(vae + WORKSPACE_BYTES + io)


MIN_BITSANDBYTES = "0.48"  # diffusers refuses to move 8-bit weights (offload, OOM fallback) with older ones


def bnb_config(quantize: Quantize, dtype: torch.dtype, device: torch.device):
    """bitsandbytes quantisation of the transformer (int8 or nf4); needs CUDA and the extra."""
    if device.type != "cuda":
        raise OptionError(f"--quantize {quantize} needs a CUDA device (bitsandbytes)")
    try:
        import bitsandbytes
        from packaging.version import Version

        [BitsAndBytesConfig] = from_diffusers("BitsAndBytesConfig")
    except ImportError as exc:
        raise OptionError(f"--quantize {quantize} needs bitsandbytes: pip install 'dove-cli[quant]'") from exc
    if Version(bitsandbytes.__version__) < Version(MIN_BITSANDBYTES):  # older ones cannot be moved (offload)
        raise OptionError(
            f"--quantize {quantize} needs bitsandbytes>={MIN_BITSANDBYTES} (found "
            f"{bitsandbytes.__version__}): pip install -U 'dove-cli[quant]'"
        )
    if quantize == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if quantize == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    raise OptionError(f"--quantize {quantize!r} is no bitsandbytes mode (int8, nf4)")


def check_fp8(device: torch.device) -> None:
    """--quantize fp8 needs torchao and a GPU with fp8 matrix units (compute capability 8.9+).
    Without CUDA there is no capability to ask (torch would raise), and int8/nf4 need CUDA too."""
    need = "--quantize fp8 needs an NVIDIA GPU with fp8 (compute capability 8.9 or newer: Ada, Hopper, Blackwell)"
    if device.type != "cuda" or not torch.cuda.is_available():
        raise OptionError(f"{need}; this run has no CUDA GPU (int8 and nf4 need one too): use --quantize none")
    if torch.cuda.get_device_capability(device) < (8, 9):
        raise OptionError(f"{need}; on this GPU use --quantize int8 or nf4 (bitsandbytes)")
    try:
        import torchao  # noqa: F401
    except ImportError as exc:
        raise OptionError("--quantize fp8 needs torchao: pip install 'dove-cli[fp8]'") from exc


def _apply_adapter(transformer: torch.nn.Module, folder: Path) -> None:
    """A training export may keep LoRA as an adapter (peft format in transformer_lora/): merge it."""
    adapter = folder / "transformer_lora"
    if not adapter.is_dir():
        return
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelError(f"{adapter} holds a LoRA adapter; install peft to load it") from exc
    # peft injects the LoRA layers into `transformer` itself; merging puts plain layers back in place.
    PeftModel.from_pretrained(transformer, str(adapter)).merge_and_unload()


# ---------------------------------------------------------------------- random models

TINY_TRANSFORMER = dict(
    num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, num_layers=1,
    text_embed_dim=32, time_embed_dim=16, max_text_seq_length=8, patch_size=2, patch_size_t=2,
    patch_bias=False, use_rotary_positional_embeddings=True, sample_height=16, sample_width=16,
    sample_frames=9, temporal_compression_ratio=4,
)  # fmt: skip
TINY_VAE = dict(block_out_channels=(4, 4, 4, 4), latent_channels=4, layers_per_block=1, norm_num_groups=2,
                scaling_factor=0.7)  # fmt: skip
FULL_TRANSFORMER = dict(
    activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=64, num_attention_heads=48,
    num_layers=42, in_channels=16, out_channels=16, max_text_seq_length=226, norm_eps=1e-5, patch_size=2,
    patch_size_t=2, patch_bias=False, sample_frames=81, sample_height=300, sample_width=300,
    spatial_interpolation_scale=1.875, temporal_compression_ratio=4, text_embed_dim=4096, time_embed_dim=512,
    timestep_activation_fn="silu", use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False,
)  # fmt: skip
FULL_VAE = dict(scaling_factor=0.7)
SCHEDULER = dict(
    beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000,
    prediction_type="v_prediction", rescale_betas_zero_snr=True, snr_shift_scale=1.0,
    timestep_spacing="trailing",
)  # fmt: skip


RANDOM_CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "tiny": (TINY_TRANSFORMER, TINY_VAE),
    "full": (FULL_TRANSFORMER, FULL_VAE),
}


def build_random(
    size: Literal["tiny", "full"],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    posterior: Posterior = "sample",
    offload: Offload = "none",
    vae_tiling: bool = False,
) -> DoveModel:
    """Random-init models of the real classes: 'tiny' for tests, 'full' (5.6e9) for benchmarks."""
    AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel = from_diffusers(
        "AutoencoderKLCogVideoX", "CogVideoXDPMScheduler", "CogVideoXTransformer3DModel"
    )

    device = torch.device(device)
    tcfg, vcfg = RANDOM_CONFIGS[size]
    # 11 GB of weights: build them where they run (on the host when offloaded), and in their dtype:
    # building in fp32 and casting would need 22 GB on the GPU and strand half-used cache blocks.
    full = size == "full"
    init_device = device if full and offload == "none" else torch.device("cpu")
    generator = torch.Generator(init_device).manual_seed(seed)
    with torch.device(init_device), _default_dtype(dtype if full else torch.float32), _OwnGenerator(generator):
        transformer = CogVideoXTransformer3DModel(**tcfg)
        vae = AutoencoderKLCogVideoX(**vcfg)
    if dtype != torch.float32:
        transformer, vae = _cast(transformer, dtype), _cast(vae, dtype)
    scheduler = CogVideoXDPMScheduler(**SCHEDULER)
    if size == "tiny":
        emb = torch.randn(
            tcfg["max_text_seq_length"], tcfg["text_embed_dim"], generator=torch.Generator().manual_seed(seed)
        )
    else:
        emb = packaged_prompt_embedding()
    model = DoveModel(transformer, vae, scheduler, emb, device, dtype, posterior)
    model.place(offload, vae_tiling)
    return model


def skeleton(
    transformer_config: dict,
    vae_config: dict,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    quantize: Quantize = "none",
) -> DoveModel:
    """The model's architecture on the meta device, no weights read or allocated: for --dry-run plans.
    What `quantize` needs is checked by the caller (models.check_quantize): a plan for a card on
    paper (--vram) does not need it on this machine."""
    AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel = from_diffusers(
        "AutoencoderKLCogVideoX", "CogVideoXDPMScheduler", "CogVideoXTransformer3DModel"
    )

    device = torch.device(device)
    with torch.device("meta"):
        transformer = _cast(CogVideoXTransformer3DModel.from_config(transformer_config), dtype)
        vae = _cast(AutoencoderKLCogVideoX.from_config(vae_config), dtype)
    emb = torch.zeros(transformer.config.max_text_seq_length, transformer.config.text_embed_dim)
    return DoveModel(
        transformer,
        vae,
        CogVideoXDPMScheduler(**SCHEDULER),
        emb,
        device,
        dtype,
        planned_weights_bytes=loaded_weight_bytes(transformer, vae, dtype, quantize),
    )


def loaded_weight_bytes(
    transformer: torch.nn.Module, vae: torch.nn.Module, dtype: torch.dtype, quantize: Quantize
) -> int:
    """Weight bytes as loading places them: bitsandbytes stores the transformer's Linear weights in
    1 byte (int8, and torchao's fp8) or half a byte (nf4) per parameter, everything else stays in `dtype`."""
    elt = torch.finfo(dtype).bits // 8
    per_linear = {"none": elt, "int8": 1, "fp8": 1, "nf4": 0.5}[quantize]
    linear = {id(m.weight) for m in transformer.modules() if isinstance(m, torch.nn.Linear)}
    total = sum(p.numel() * (per_linear if id(p) in linear else elt) for p in transformer.parameters())
    return int(total + sum(p.numel() * elt for p in vae.parameters()))


class _OwnGenerator(TorchFunctionMode):
    """Give random fills that name no generator (the modules' own init) this one, not torch's global
    generator: a build then neither resets the host's random stream nor depends on what another thread
    draws from it meanwhile. Torch function modes are per thread. Its seed gives the weights that
    `torch.manual_seed(seed)` before the build gave."""

    # Those that take `generator=`. torch.nn.init's are torch functions themselves: the mode sees the
    # init call, and no longer the tensor method inside it.
    RANDOM = {
        torch.nn.init.uniform_, torch.nn.init.normal_, torch.nn.init.trunc_normal_, torch.nn.init.kaiming_uniform_,
        torch.nn.init.kaiming_normal_, torch.nn.init.xavier_uniform_, torch.nn.init.xavier_normal_,
        torch.nn.init.orthogonal_, torch.nn.init.sparse_,
        torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.random_, torch.Tensor.bernoulli_,
        torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_, torch.Tensor.geometric_,
        torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal, torch.bernoulli, torch.multinomial,
    }  # fmt: skip

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in self.RANDOM and kwargs.get("generator") is None:
            kwargs["generator"] = self.generator
        return func(*args, **kwargs)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _cast(module: Any, dtype: torch.dtype) -> Any:
    """Cast parameters in place (ModelMixin.to(dtype) warns about fp32-pinned modules; these have none)."""
    for p in module.parameters():
        p.data = p.data.to(dtype)
    return module


def save_pretrained(model: DoveModel, folder: str | Path) -> Path:
    """Write a diffusers-layout folder that `DoveModel.from_pretrained` loads (safetensors)."""
    from safetensors.torch import save_file

    from dove_cli.video_io.paths import umask_weights

    folder = Path(folder)
    model.transformer.save_pretrained(folder / "transformer", safe_serialization=True)
    model.vae.save_pretrained(folder / "vae", safe_serialization=True)
    model.scheduler.save_pretrained(folder / "scheduler")
    save_file(
        {"prompt_embedding": model.prompt_embedding.contiguous().cpu()}, str(folder / "prompt_embedding.safetensors")
    )
    umask_weights(folder)
    return folder
