"""Training data: HQ clips (and images) decoded in worker processes, LQ made on the fly.

Clips are read as `dove upscale` reads its input (`video_io.read_clip`: the same colour rules, pixels as
stored, 16 bits above 8), so the model learns from the colours inference feeds it.

Every sample is a pure function of (seed, step, position in the global batch): the sampler below
walks an endless stream of shuffled epochs, and each sample seeds its own numpy Generator from
those three numbers. So a resumed run sees exactly the samples it would have seen, a 2-process
run sees the same global batch as a 1-process run, and the number of workers changes nothing.
Nothing loads a whole dataset: files are probed (header only) once, then each sample decodes just
the window it needs.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from dove_cli.errors import InputError
from dove_cli.jsontext import json_text
from dove_cli.train import degrade as D
from dove_cli.video_io import FOLDER_EXTENSIONS, IMAGE_EXTENSIONS, read_clip, stream_rate
from dove_cli.video_io.paths import ffmpeg_name
from dove_cli.video_io.reader import turn_of

log = logging.getLogger(__name__)

# What a folder upscale takes, and the images dove writes (Pillow probes them; DPX and EXR film scans hold
# log or linear code values, no pictures to learn from as they are).
VIDEO_EXTS = frozenset(FOLDER_EXTENSIONS)
IMAGE_EXTS = frozenset(IMAGE_EXTENSIONS)
Kind = Literal["video", "image"]


# ---------------------------------------------------------------------------- listing and probing


def list_media(source: str | Path, exts: Collection[str]) -> list[Path]:
    """A folder (recursive, sorted) or a text file with one path per line (relative to the file)."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    elif source.is_file() and source.suffix.lower() in {".txt", ".lst", ".list"}:
        lines = [ln.strip() for ln in source.read_text().splitlines()]
        files = [
            (source.parent / ln) if not Path(ln).is_absolute() else Path(ln)
            for ln in lines
            if ln and not ln.startswith("#")
        ]
    elif source.is_file():
        files = [source]
    else:
        raise InputError(f"{source}: no such folder or list file")
    if not files:
        raise InputError(f"{source}: no {'/'.join(sorted(exts))} files found")
    return files


@dataclass(frozen=True)
class MediaInfo:
    """What a sample needs to know before decoding: frame count and size; and the clip's rotation tag
    (degrees a player turns it), which training leaves as a tag, as `dove upscale` does by default."""

    path: Path
    frames: int
    height: int
    width: int
    rotation: int = 0

    def record(self, kind: Kind) -> dict[str, Any]:
        """What data.json says of the file: its path, kind, frames, size (and a rotation tag)."""
        turn = {"rotation": self.rotation} if self.rotation else {}
        return {"path": os.path.abspath(self.path), "kind": kind, "frames": self.frames, "width": self.width,
                "height": self.height, **turn}  # fmt: skip


def probe_video(path: Path) -> MediaInfo | None:
    """Header-only probe with PyAV; None if the file is unreadable or has no video stream."""
    import av

    try:
        with av.open(ffmpeg_name(path)) as container:
            if not container.streams.video:
                return None
            s = container.streams.video[0]
            frames, rate = s.frames, stream_rate(s)
            # a display matrix is on the decoded frames only: the first one says it
            first = next(container.decode(s), None)
            rotation = turn_of(first)[0] if first is not None else 0
            if not frames and s.duration and s.time_base:
                frames = int(float(s.duration * s.time_base) * rate)
            if not frames and container.duration:
                frames = int(container.duration / 1e6 * rate)
            if not frames:  # containers without counts: decode once (rare; cheap next to training)
                frames = (first is not None) + sum(1 for _ in container.decode(s))
            return MediaInfo(path, int(frames), int(s.height), int(s.width), rotation)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def probe_image(path: Path) -> MediaInfo | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return MediaInfo(path, 1, im.height, im.width)
    except OSError:
        return None


# ---------------------------------------------------------------------------- sampling order


@dataclass(frozen=True)
class SampleKey:
    """Identifies one sample: which item, and the numbers its randomness is seeded from."""

    kind: Kind
    index: int
    step: int
    position: int


class GlobalBatchSampler:
    """Endless shuffled epochs cut into global batches; yields this rank's share of each batch.

    Micro-step s covers global positions [s * G, (s + 1) * G), G = batch_size * world_size; rank r
    takes [s * G + r * B, s * G + (r + 1) * B). Position p is item perm_{p // n}[p % n]; stage 2
    draws per micro-step whether the whole global batch is images (probability image_ratio).
    """

    def __init__(
        self,
        num_videos: int,
        batch_size: int,
        *,
        seed: int,
        start_step: int = 0,
        end_step: int | None = None,
        num_images: int = 0,
        image_ratio: float = 0.0,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        self.n = {"video": num_videos, "image": num_images}
        self.batch_size, self.world_size, self.rank = batch_size, world_size, rank
        self.seed, self.start_step, self.end_step = seed, start_step, end_step
        self.image_ratio = image_ratio if num_images else 0.0
        self._perms: dict[tuple[str, int], np.ndarray] = {}

    def kind_of_step(self, step: int) -> Kind:
        if self.image_ratio <= 0:
            return "video"
        return "image" if np.random.default_rng([self.seed, step, 7]).uniform() < self.image_ratio else "video"

    def item(self, kind: Kind, position: int) -> int:
        n = self.n[kind]
        epoch = position // n
        key = (kind, epoch)
        if key not in self._perms:
            if len(self._perms) > 8:
                self._perms.clear()
            tag = 0 if kind == "video" else 1
            self._perms[key] = np.random.default_rng([self.seed, epoch, tag]).permutation(n)
        return int(self._perms[key][position % n])

    def batch(self, step: int) -> list[SampleKey]:
        kind = self.kind_of_step(step)
        g = self.batch_size * self.world_size
        first = step * g + self.rank * self.batch_size
        return [SampleKey(kind, self.item(kind, p), step, p) for p in range(first, first + self.batch_size)]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        step = self.start_step
        while self.end_step is None or step < self.end_step:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.end_step is None:
            raise TypeError("endless sampler")
        return max(0, self.end_step - self.start_step)


# ---------------------------------------------------------------------------- dataset


@dataclass
class DataConfig:
    """What the dataset needs (a slice of the training config)."""

    crop: tuple[int, int, int]  # HQ frames, height, width
    seed: int = 42
    frame_stride: int = 1
    degradation: str = "video"  # 'video', 'image_video' or a yaml path
    scale: int = 4


@dataclass
class Sources:
    """The listed and probed media; items too short or too small are dropped and counted."""

    videos: list[MediaInfo]
    images: list[MediaInfo] = field(default_factory=list)
    lq: dict[Path, Path] = field(default_factory=dict)  # HQ path -> paired LQ path
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_images: int = 0  # of the skipped (counted by reason in `skipped`), how many are images
    # each file listed, used or not (and why not): data.json's (`write_data_record`)
    files: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """'9 clips (5 skipped) and 7 images (1 skipped)': what the run trains on; and the clips that
        carry a rotation tag, trained on as stored, as `dove upscale` upscales them (--rotate keep)."""

        def count(n: int, what: str, skipped: int) -> str:
            return f"{n} {what}{'s' * (n != 1)}" + (f" ({skipped} skipped)" if skipped else "")

        clips = count(len(self.videos), "clip", sum(self.skipped.values()) - self.skipped_images)
        said = clips + (f" and {count(len(self.images), 'image', self.skipped_images)}" if self.images else "")
        if turned := sum(1 for v in self.videos if v.rotation):
            said += (f"; {turned} clip{'s' * (turned != 1)} carr{'y' if turned != 1 else 'ies'} a rotation tag: trained "
                     "as stored (rotation does not change what super-resolution learns)")  # fmt: skip
        return said


DATA_FILE = "data.json"


def write_data_record(sources: Sources, folder: Path) -> Path:
    """The run folder's data.json: every training file listed, used or skipped and why (the start's log
    says counts and the first few names only), so a run says what it trained on."""
    used = sum(1 for f in sources.files if f["used"])
    record = {"used": used, "skipped": len(sources.files) - used, "files": sources.files}
    path = folder / DATA_FILE
    path.write_text(json_text(record, indent=1), "utf-8")
    return path


def scan_sources(
    data: str | Path,
    crop: tuple[int, int, int],
    *,
    images: str | Path | None = None,
    lq: str | Path | None = None,
    frame_stride: int = 1,
) -> Sources:
    """List and probe the training media; raises InputError when nothing usable is left."""
    f, h, w = crop
    span = (f - 1) * frame_stride + 1
    said = {
        "unreadable": "unreadable",
        "no_video": "without a video stream",
        "too_short": f"too short, under {span} frames",
        "too_small": f"too small, under {w} wide or {h} high",
        "no_lq_pair": "without an LQ pair",
    }
    skipped: dict[str, list[Path]] = {reason: [] for reason in said}
    files: list[dict[str, Any]] = []  # data.json's (`Sources.files`)

    def skip(path: Path, reason: str, kind: Kind, info: MediaInfo | None = None) -> None:
        skipped[reason].append(path)
        known = info.record(kind) if info else {"path": os.path.abspath(path), "kind": kind}
        files.append({**known, "used": False, "why": said[reason]})

    videos: list[MediaInfo] = []
    lq_map: dict[Path, Path] = {}
    lq_index: dict[Path, Path] = {}
    data_root = Path(data)
    if lq is not None:
        for p in list_media(lq, VIDEO_EXTS):
            rel = p.relative_to(lq) if Path(lq).is_dir() else Path(p.name)
            lq_index[rel.with_suffix("")] = p
    for path in _list_clips(data):
        info = probe_video(path)
        if info is None:
            skip(path, "no_video" if _audio_only(path) else "unreadable", "video")
            continue
        if info.frames < span:
            skip(path, "too_short", "video", info)
            continue
        if info.height < h or info.width < w:
            skip(path, "too_small", "video", info)
            continue
        if lq is not None:
            rel = path.relative_to(data_root) if data_root.is_dir() else Path(path.name)
            pair = lq_index.get(rel.with_suffix(""))
            if pair is None:
                skip(path, "no_lq_pair", "video", info)
                continue
            lq_map[path] = pair
        videos.append(info)
        files.append({**info.record("video"), "used": True})
    image_infos: list[MediaInfo] = []
    see_through: list[Path] = []
    before = sum(map(len, skipped.values()))
    if images is not None:
        for path in list_media(images, IMAGE_EXTS):
            info = probe_image(path)
            if info is None:
                skip(path, "unreadable", "image")
            elif info.height < h or info.width < w:
                skip(path, "too_small", "image", info)
            else:
                image_infos.append(info)
                files.append({**info.record("image"), "used": True})
                if transparent(path):
                    see_through.append(path)
    skipped_images = sum(map(len, skipped.values())) - before
    counts = "; ".join(_named(len(v), said[k], v) for k, v in skipped.items() if v)
    if not videos:  # the error says what was skipped: no warning before it
        raise InputError(
            f"{str(data) or Path.cwd()}: no usable clips (need >= {span} frames of >= {h}x{w}){'; skipped ' + counts if counts else ''}"
            f"{'; a smaller --resolution FRAMESxHxW takes smaller clips' if counts else ''}"
        )
    if images is not None and not image_infos:
        raise InputError(f"{images}: no usable images (need >= {h}x{w}){'; skipped ' + counts if counts else ''}")
    if counts:
        log.warning("skipped training files: %s", counts)
    if see_through:  # as `dove upscale` and `dove eval` read them: the model learns what it will be given
        what = "image" + "s" * (len(see_through) != 1) + " with transparency"
        log.warning("%s: the alpha channel is dropped, and the colours stored under it are trained on (as "
                    "`dove upscale` reads them); flatten them onto a background first to train on what they "
                    "show", _named(len(see_through), what, see_through))  # fmt: skip
    return Sources(videos, image_infos, lq_map, {k: len(v) for k, v in skipped.items()}, skipped_images, files)


def _list_clips(data: str | Path) -> list[Path]:
    """--data's videos; a folder of images instead is pointed to --images (where they are trained on)."""
    try:
        return list_media(data, VIDEO_EXTS)
    except InputError as exc:
        if not Path(data).is_dir():
            raise
        found = sum(1 for p in Path(data).rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not found:
            raise
        raise InputError(f"{exc}; it holds {found} image{'s' * (found != 1)}: give them as --images "
                         "(stage 2 trains on them beside --data's videos)") from None  # fmt: skip


def _audio_only(path: Path) -> bool:
    """A file FFmpeg opens that has streams but no video (sound only, subtitles)."""
    import av

    try:
        with av.open(ffmpeg_name(path)) as container:
            return bool(container.streams) and not container.streams.video
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def transparent(path: Path) -> bool:
    """An image with an alpha (or a palette's transparency) below opaque somewhere; one that is opaque
    everywhere changes nothing (as `dove upscale` judges it). Decodes only images that carry one."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in im.info:
                return False
            return bool(np.asarray(im.convert("RGBA").getchannel("A")).min() < 255)
    except (OSError, ValueError):
        return False


def _named(count: int, what: str, paths: list[Path], shown: int = 3) -> str:
    """'2 unreadable (a.mp4, b.mp4)', or the first `shown` and how many more."""
    more = f" and {count - shown} more" if count > shown else ""
    return f"{count} {what} ({', '.join(map(str, paths[:shown]))}{more})"


class TrainDataset(torch.utils.data.Dataset):
    """Map-style dataset indexed by SampleKey: returns one (HQ, upsampled LQ) pair in [-1, 1].

    Output: {"hq": [3, F, H, W], "lq": [3, F, H, W] (LQ upsampled x4 bilinearly, as at inference),
    "kind": "video"|"image", "failed": (file, why) of each file that failed to decode before this one,
    "step"/"position": the sample's place in the run (seeds the VAE posterior noise)}.
    Images are 1-frame clips. With paired LQ files, the LQ crop is cut at the same place, no synthesis.
    """

    def __init__(self, sources: Sources, config: DataConfig) -> None:
        self.sources = sources
        self.config = config
        self.degradation_cfg = D.load_degradation_config(config.degradation)

    def __len__(self) -> int:
        return len(self.sources.videos)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        items = self.sources.videos if key.kind == "video" else self.sources.images
        failed: list[tuple[str, str]] = []  # (file, why): it and the others tried are warned about once
        for attempt in range(min(len(items), 16)):
            info = items[(key.index + attempt) % len(items)]
            rng = np.random.default_rng([self.config.seed, key.step, key.position, attempt])
            try:
                hq, lq = self._pair(info, key.kind, rng)
                break
            except InputError as exc:
                failed.append((str(info.path), str(exc)))
        else:
            last = failed[-1][1]
            if len(failed) == 1:
                raise InputError(f"{last}; no other training file to use in its place")
            raise InputError(f"{len(failed)} training files in a row could not be decoded, the last {last}")
        from dove_cli.engine import upsample

        lq_up = upsample(lq, self.config.scale)
        return {
            "hq": (hq * 2 - 1).permute(1, 0, 2, 3).contiguous(),
            "lq": (lq_up * 2 - 1).clamp(-1, 1).permute(1, 0, 2, 3).contiguous(),
            "kind": key.kind,
            "failed": failed,
            "step": key.step,
            "position": key.position,
        }

    def __getitems__(self, keys: list[SampleKey]) -> list[dict[str, Any]]:
        """The DataLoader's fetch of one batch: a sample that cannot be made comes back as its error,
        which `iter_batches` raises as one line (from a worker process, torch would wrap the
        exception in the worker's traceback)."""
        try:
            return [self[key] for key in keys]
        except InputError as exc:
            return [{"error": str(exc)}]

    def _pair(self, info: MediaInfo, kind: Kind, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        f, h, w = self.config.crop
        stride = self.config.frame_stride
        if kind == "image":
            crop = (1, h, w)
            inter = (1, *D.intermediate_size(crop)[1:])
        else:
            crop = (f, h, w)
            inter = D.intermediate_size(crop)
        lq_path = self.sources.lq.get(info.path)
        if lq_path is not None:
            return self._real_pair(info, lq_path, crop, rng)
        plan = D.plan_intermediate(((info.frames - 1) // stride + 1, info.height, info.width), crop, rng)
        if plan is None:
            raise InputError(f"{info.path}: smaller than the crop {crop}")
        plan = D.CropPlan(plan.start, min(plan.frames, inter[0]), plan.top, plan.left, plan.height, plan.width)
        if kind == "image":
            frames = read_clip(info.path, 0, 1)
        else:
            frames = read_clip(info.path, plan.start * stride, plan.frames, stride)
        frames = frames[:, plan.top : plan.top + plan.height, plan.left : plan.left + plan.width]
        clip = D.to_unit(frames)
        hq, lq, _ = D.make_pair(clip, crop, self.degradation_cfg, rng, mode=kind)
        return hq, lq

    def _real_pair(
        self, info: MediaInfo, lq_path: Path, crop: tuple[int, int, int], rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned crops of a real LQ/HQ pair (LQ must be exactly HQ / scale)."""
        s, stride = self.config.scale, self.config.frame_stride
        f, h, w = crop
        lq_info = probe_video(lq_path)
        if lq_info is None or lq_info.height * s != info.height or lq_info.width * s != info.width:
            raise InputError(f"{lq_path}: not a {s}x smaller version of {info.path}")
        frames = min(info.frames, lq_info.frames)
        start = int(rng.integers(0, frames - (f - 1) * stride))
        top = int(rng.integers(0, (info.height - h) // s + 1))
        left = int(rng.integers(0, (info.width - w) // s + 1))
        hq = read_clip(info.path, start, f, stride)[:, top * s : top * s + h, left * s : left * s + w]
        lq = read_clip(lq_path, start, f, stride)[:, top : top + h // s, left : left + w // s]
        return D.to_unit(hq), D.to_unit(lq)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a batch; all samples of a batch have the same kind (the sampler makes sure)."""
    if "error" in samples[0]:  # from __getitems__
        return samples[0]
    failed = [f for s in samples for f in s["failed"]]
    return {
        "hq": torch.stack([s["hq"] for s in samples]),
        "lq": torch.stack([s["lq"] for s in samples]),
        "kind": samples[0]["kind"],
        "skipped": len(failed),
        "failed": failed,
        "step": samples[0]["step"],
        "positions": [s["position"] for s in samples],
    }


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding + degradation per worker; the main process keeps the cores
    # Ctrl-C reaches the whole process group: the main process finishes its step (which may need
    # more batches) and then stops the workers, so they must not stop themselves first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(
    dataset: TrainDataset,
    sampler: GlobalBatchSampler,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over this rank's batches; workers decode with PyAV in parallel, at most one per core
    (more only compete for the cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if num_workers > cores:
        log.warning("--num-workers %d: %d cores here, so %d data-loading processes", num_workers, cores, cores)
        num_workers = cores
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )


def iter_batches(loader: torch.utils.data.DataLoader) -> Iterator[dict[str, Any]]:
    """The loader's batches, in the main process: a sample's error is raised here as one line, and a
    file that failed to decode is warned about once (it fails again each time it is drawn)."""
    warned: set[str] = set()
    for batch in loader:
        if "error" in batch:
            raise InputError(batch["error"])
        for path, why in batch["failed"]:
            if path not in warned:
                warned.add(path)
                log.warning("skipping %s (said once per file; other files are drawn in its place)", why)
        yield batch
