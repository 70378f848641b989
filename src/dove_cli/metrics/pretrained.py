"""The published weight files the metrics (and stage-2 training) load: where they live, their
checksums, and fetching them through huggingface_hub into the hub cache, verified.

Every real file is pinned in `WEIGHT_FILES` (repo, file name, sha256, size). A pinned sha256 is
checked after download and once per cached copy (remembered in `verified.json` beside dove's
download record, keyed by path, size and mtime); a file that does not match is deleted and the run
stops with a one-line error. `sha256=None` means we could not read the digest anywhere when
pinning: such a file is still checked against the hub's own LFS sha256 (its ETag) after download.

Tests serve tiny files of the same key layouts from a loopback hub and replace entries of the
`WEIGHT_FILES` dict (pytest's monkeypatch.setitem); nothing else needs patching. A user can point
at a local copy instead of the hub with `local_files={key: path}` (`dove eval --weights KEY=PATH`),
or at a folder of them (`from_folder`, `dove eval --weights-dir`); `identify` compares a local file
with the pin (said when it differs, not refused) and gives every file's sha256 for the results.

Pickle files (.pth/.pt) are only ever read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dove_cli.errors import DownloadError, DownloadLater, ModelError, OutputError
from dove_cli.weights import discard, file_digest, write_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightFile:
    """One published file on the hub."""

    repo: str
    filename: str
    sha256: str | None  # pinned content digest; None: not found anywhere, the hub's LFS digest is checked
    size: int | None  # bytes, for the plan shown before a download
    what: str  # what it is, for messages: "DISTS alpha/beta (pyiqa)"
    revision: str | None = None  # None: the default branch
    mirrors: tuple[tuple[str, str], ...] = ()  # other (repo, filename) with the same bytes, tried in turn


# Verified: digests as the hub lists them for these exact repo paths (Git LFS "SHA256"), read with
# the search tools on 2026-12; the torchvision files' names carry the first 8 hex digits of the same
# digest (torchvision's own convention), which match. See README "Evaluating results".
WEIGHT_FILES: dict[str, WeightFile] = {
    "vgg16": WeightFile(
        "timm/vgg16.tv_in1k",
        "model.safetensors",
        "57b026918159a6bf9faf8405c3a551903768e7138989d9c6224a14227203fad8",
        None,  # "553 MB" in the listing
        "VGG16 ImageNet features (torchvision weights as hosted by timm)",
    ),
    "dists": WeightFile(
        "chaofengc/IQA-PyTorch-Weights",
        "DISTS_weights-f5e65c96.pth",
        "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
        12_288,
        "DISTS alpha/beta (the published DISTS head, as pyiqa hosts it)",
    ),
    "lpips-alex": WeightFile(
        "chaofengc/IQA-PyTorch-Weights",
        "LPIPS_v0.1_alex-df73285e.pth",
        "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        6_009,
        "LPIPS v0.1 AlexNet linear heads",
    ),
    "alexnet": WeightFile(
        "blanchon/image-gs-models-utils",
        "torch/checkpoints/alexnet-owt-7be5be79.pth",
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        None,  # "244 MB" in the listing
        "AlexNet ImageNet features (torchvision alexnet-owt-7be5be79.pth)",
        mirrors=(("CSWRY/VOSR", "torch_cache/checkpoints/alexnet-owt-7be5be79.pth"),),
    ),
    "clip-rn50": WeightFile(
        "timm/resnet50_clip.openai",
        "open_clip_model.safetensors",
        None,  # not found in any public listing we could read: the hub's LFS digest is checked instead
        None,
        "CLIP RN50 (OpenAI weights, open_clip layout)",
    ),
    "raft-things": WeightFile(
        "Iceclear/MGLD-VSR",
        "raft-things.pth",
        "fcfa4125d6418f4de95d84aec20a3c5f4e205101715a79f193243c186ac9a7e1",
        21_108_000,
        "RAFT-large 'things' weights (princeton-vl release; torchvision's raft_large C_T_V1 is their port)",
        mirrors=(("RaphaelLiu/EvalCrafter-Models", "models/raft-things.pth"),),
    ),
}

# What each metric (or training) needs, in load order.
NEEDS: dict[str, tuple[str, ...]] = {
    "lpips": ("alexnet", "lpips-alex"),
    "dists": ("vgg16", "dists"),
    "clipiqa": ("clip-rn50",),
    "ewarp": ("raft-things",),
}


def files_for(metrics: Iterable[str]) -> list[str]:
    """The weight keys a set of metrics needs (no duplicates, in order)."""
    keys: list[str] = []
    for m in metrics:
        keys += [k for k in NEEDS.get(m, ()) if k not in keys]
    return keys


# ------------------------------------------------------------------------------------------ finding


def _verified_file() -> Path:
    from dove_cli.weights import state_file

    return state_file().parent / "verified.json"


def _read_verified() -> dict:
    try:
        return json.loads(_verified_file().read_text())
    except (OSError, ValueError):
        return {}


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def sha256_of(path: Path) -> str:
    """A file's sha256, remembered in `verified.json` by its real path, size and mtime: a 553 MB
    file is read once, not on every run."""
    real = path.resolve()
    record = _read_verified()
    entry = record.get(str(real))
    if isinstance(entry, list) and len(entry) == 2 and entry[0] == _stamp(real):
        return str(entry[1])
    digest = file_digest(real, hashlib.sha256())
    record[str(real)] = [_stamp(real), digest]
    write_state(_verified_file(), record, "the checksum")  # not fatal: the file is read again next time
    return digest


def _check_digest(key: str, spec: WeightFile, path: Path) -> None:
    """Compare a cached file with its pinned sha256 (once per file version); delete it on mismatch."""
    real = path.resolve()
    # unpinned: the hub cache names an LFS blob by the digest the hub announced (its ETag)
    expected = spec.sha256 or (real.name if re.fullmatch(r"[0-9a-f]{64}", real.name) else None)
    if expected is None:
        return
    if sha256_of(real) != expected:
        discard(path)
        raise DownloadError(
            f"{spec.repo}/{spec.filename} does not match its sha256 (deleted it): run"
            f" `dove download-weights --metrics` again; if it repeats, the hub serves other bytes than pinned"
        )


def _sources(spec: WeightFile) -> list[tuple[str, str]]:
    return [(spec.repo, spec.filename), *spec.mirrors]


def cached(key: str) -> Path | None:
    """The verified local copy of a weight file in the hub cache, or None. Never touches the network."""
    from huggingface_hub import hf_hub_download

    from dove_cli.weights import hub_env

    spec = WEIGHT_FILES[key]
    env = hub_env()
    for repo, filename in _sources(spec):
        try:
            path = Path(
                hf_hub_download(repo, filename, revision=spec.revision, cache_dir=env.cache_dir, local_files_only=True)
            )
        except FileNotFoundError:  # huggingface_hub's LocalEntryNotFoundError is one: not in the cache
            continue
        except OSError as exc:  # an unreadable cache is not a missing file: downloading would not help
            raise ModelError(
                f"cannot read the hub cache {env.cache_dir} for {repo}/{filename}: {exc.strerror or exc}"
            ) from None
        _check_digest(key, spec, path)
        return path
    return None


def fetch(key: str, *, download: bool = True) -> Path:
    """A verified local copy of weight file `key`: from the hub cache, else downloaded (if allowed).

    Raises ModelError (with the command to run) when it is missing and may not or cannot be downloaded.
    """
    from huggingface_hub import hf_hub_download

    from dove_cli.weights import hub_env, hub_errors

    spec = WEIGHT_FILES[key]
    path = cached(key)
    if path is not None:
        return path
    if error := unavailable([key], download=download):
        raise error
    env = hub_env()
    errors: list[DownloadError] = []
    for repo, filename in _sources(spec):
        try:
            with hub_errors(repo, spec.revision, env.endpoint, file=filename, dest=env.cache_dir):
                path = Path(
                    hf_hub_download(
                        repo,
                        filename,
                        revision=spec.revision,
                        cache_dir=env.cache_dir,
                        endpoint=env.endpoint,
                        library_name="dove-cli",
                    )
                )
        except DownloadError as exc:  # try the next mirror; report the first failure
            errors.append(exc)
            continue
        _check_digest(key, spec, path)
        return path
    raise errors[0]


def unavailable(keys: list[str], *, download: bool = True, first: str = "") -> ModelError | None:
    """Why the files `keys` (not in the cache) cannot be had now, in one short line: the cause, the way
    on (`first`, the caller's own, before the general one), then the missing keys; each file's name and
    source (a long list) is said under -v. Downloads not allowed, offline, or the hub cannot be reached
    (DownloadLater: exit 75, the same command later); None when they can be downloaded."""
    from dove_cli.weights import check_endpoint, hub_env, hub_reachable, mirror_hint

    if not keys:
        return None
    env = hub_env()
    specs = [WEIGHT_FILES[k] for k in keys]
    missing = f"(missing: {', '.join(keys)}; -v names them)"
    dists = all(k in NEEDS["dists"] for k in keys)
    flag = "--dists" if dists else "--metrics"
    if download and not env.offline:
        check_endpoint(env.endpoint)
        if hub_reachable(env.endpoint):  # at once, not after the hub's retries
            return None
    local = " ".join(f"--weights {k}=FILE" for k in keys)
    local = f"`dove eval {local}`" + (" or `dove train --dists-weights FILE`" * dists)
    named = ", ".join(f"{spec.what} ({spec.repo}/{spec.filename})" for spec in specs)
    log.info("not downloaded: %s; a file from elsewhere is given as %s", named, local)
    if not download or env.offline:
        why = " (offline: HF_HUB_OFFLINE=1)" if env.offline else ""
        return ModelError(f"weight files not downloaded{why}: {first}run `dove download-weights {flag}` {missing}")
    elsewhere = (
        "`dove download-weights --dists` where there is a network, or `dove train --dists-weights FILE`"
        if dists
        else "`dove download-weights --metrics --dir DIR` there, `dove eval --weights-dir DIR` here"
    )
    return DownloadLater(
        f"weight files not downloaded and {env.shown} cannot be reached: {first}to fetch them elsewhere:"
        f" {elsewhere}; or check your network ({mirror_hint()}) {missing}"
    )


def fetch_all(keys: Iterable[str], *, download: bool = True, first: str = "") -> dict[str, Path]:
    """`fetch` of each of `keys`; those that cannot be had are named in one error (`unavailable`, with
    the caller's way on `first`), not one run per file."""
    found = {key: cached(key) for key in keys}
    if error := unavailable([k for k, path in found.items() if path is None], download=download, first=first):
        raise error
    return {key: path or fetch(key, download=download) for key, path in found.items()}


# ------------------------------------------------------------------------------------------ loading


def _file_kind(path: Path) -> str | None:
    """ "torch" or "safetensors" from a file's first bytes, else None. Read by its bytes, not its
    name: pickle's own error for a file of other bytes is a bare number ("cannot read (174812789)")
    or a message about weights_only, neither of which tells a user the file is simply not weights."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save's zip; a legacy pickle
        return "torch"
    if len(head) == 9 and head[8:9] == b"{":  # an 8-byte header size, then the JSON header
        return "safetensors"
    return None


def load_state_dict(
    path: str | Path, keep: Callable[[str], bool] | None = None, what: str = "weights"
) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or pickle (.pth/.pt/.bin) file, on the CPU.

    Pickle files are read with weights_only=True (plain containers and tensors only, no code). Common
    wrappers ({"state_dict": ...}, {"params": ...}, {"model": ...}) and a DataParallel "module."
    prefix are removed. `keep` (a predicate on names) limits what is read from a safetensors file
    (timm's VGG16 file is 553 MB, of which DISTS needs the 59 MB of convolution weights).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path}: no such file")
    try:
        kind = _file_kind(path)
    except OSError as exc:
        raise ModelError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if kind is None:
        raise ModelError(f"{what} {path}: not a PyTorch checkpoint or safetensors file"
                         f" ({'empty' if path.stat().st_size == 0 else 'damaged, or not weights at all'})")  # fmt: skip
    try:
        if kind == "safetensors":
            from safetensors import safe_open

            sd: object = {}
            with safe_open(str(path), framework="pt") as fh:
                sd = {k: fh.get_tensor(k) for k in fh.keys() if keep is None or keep(k)}
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's (or the download's) problem
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"{what} {path}: cannot read ({reason})") from exc
    for wrapper in ("state_dict", "params", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"{what} {path}: not a state dict of tensors")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def local_weights(weights: Mapping[str, str | Path] | None) -> dict[str, Path]:
    """The local weight files a run is given, each as the user means it (`~` expanded, as a shell
    would: a config file, a script or the Python API pass it quoted): --weights KEY=PATH, and
    DOVER's from DOVE_DOVER_WEIGHTS where --weights names none. Decided once, for the checks and
    the loaders alike (`dove eval`)."""
    local = {key: Path(path).expanduser() for key, path in (weights or {}).items()}
    if "dover" not in local and (env := os.environ.get("DOVE_DOVER_WEIGHTS")):
        local["dover"] = Path(env).expanduser()
    return local


def resolve(key: str, local_files: Mapping[str, str | Path] | None = None, *, download: bool = True) -> Path:
    """A user-given local file for `key` (checked to exist), else the verified hub copy."""
    if local_files and key in local_files:
        path = Path(local_files[key]).expanduser()
        if not path.is_file():
            raise ModelError(f"--weights {key}={path}: no such file")
        return path
    return fetch(key, download=download)


def identify(
    keys: Iterable[str], local_files: Mapping[str, str | Path] | None = None, *, download: bool = True
) -> dict[str, dict[str, Any]]:
    """What a run's scores were made with, for its results file: {key: {"file", "sha256",
    "published"}}. published: True for a hub file (verified when fetched) or a local file of the
    pinned bytes; False for a local file of other bytes, also said as a warning (its scores are not
    the published metric's; still scored: a converted or fine-tuned copy may be meant); None when
    nothing is pinned to compare with (DOVER, a local CLIP file)."""
    used: dict[str, dict[str, Any]] = {}
    for key in keys:
        spec = WEIGHT_FILES.get(key)
        local = key in (local_files or {})
        path = resolve(key, local_files, download=download) if spec else Path(str((local_files or {})[key]))
        digest = sha256_of(path)
        pinned = spec.sha256 if spec else None
        published = (digest == pinned if pinned else None) if local else True
        if published is False:
            assert spec is not None and pinned is not None
            log.warning("%s: not the published %s file, %s (sha256 %s..., not %s...): scores made with it are not"
                        " comparable with published ones", path, key, spec.what, digest[:12], pinned[:12])  # fmt: skip
        used[key] = {"file": str(path.absolute()), "sha256": digest, "published": published}
    return used


def folder_name(key: str) -> str:
    """`key`'s file name in a weights folder (`dove download-weights --metrics --dir DIR`, read by
    `dove eval --weights-dir DIR`): the key and the published file's extension, `alexnet.pth`
    (a published name can say little: timm's VGG16 is `model.safetensors`)."""
    return key + Path(WEIGHT_FILES[key].filename).suffix


def copy_to_folder(key: str, folder: Path) -> Path:
    """`key`'s verified hub copy (fetched if missing) as `folder/folder_name(key)`, for a machine
    without a network; an equal file already there is kept. Written under a temporary name first."""
    import shutil

    source = fetch(key)
    target = folder / folder_name(key)
    if target.is_file() and sha256_of(target) == sha256_of(source):
        return target
    tmp = target.with_name(target.name + ".part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from None
    return target


def from_folder(folder: Path, keys: Iterable[str], partial: bool = False) -> dict[str, str]:
    """{key: file} of a weights folder for `keys`, every missing file said in one error (not one
    run per file); with `partial` (--skip-unavailable), those present, the others left to the hub.
    The files are then local files: checked against the pins by `identify`."""
    if not folder.is_dir():
        raise ModelError(f"--weights-dir {folder}: no such folder")
    files = {key: folder / folder_name(key) for key in keys}
    if partial:
        return {key: str(path) for key, path in files.items() if path.is_file()}
    if missing := [path.name for path in files.values() if not path.is_file()]:
        raise ModelError(
            f"--weights-dir {folder}: {', '.join(missing)} missing; make the folder with `dove download-weights"
            " --metrics --dir DIR` where there is a network, and copy it here"
        )
    return {key: str(path) for key, path in files.items()}


def describe(keys: Iterable[str]) -> list[tuple[str, WeightFile, Path | None]]:
    """(key, spec, cached path or None) for a download plan."""
    return [(k, WEIGHT_FILES[k], cached(k)) for k in keys]


def cache_dir() -> Path:
    from dove_cli.weights import hub_env

    return hub_env().cache_dir


__all__ = [
    "NEEDS",
    "WEIGHT_FILES",
    "WeightFile",
    "cache_dir",
    "cached",
    "copy_to_folder",
    "describe",
    "fetch",
    "fetch_all",
    "files_for",
    "folder_name",
    "from_folder",
    "identify",
    "load_state_dict",
    "resolve",
    "sha256_of",
    "unavailable",
]
