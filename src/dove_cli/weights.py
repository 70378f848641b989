"""Finding, downloading and verifying DOVE checkpoints (diffusers folders) with huggingface_hub.

A model folder is a diffusers layout: transformer/, vae/, scheduler/ (text_encoder/ and tokenizer/
optional, since the empty-prompt embedding ships with the package). Only safetensors weights are
accepted unless the caller allows pickle, because loading a pickle file can run arbitrary code.

huggingface_hub does the downloading, the cache, resuming and the progress bars
(`snapshot_download`). This module adds what it lacks: choosing the files a model folder needs,
a disk-space check before the first byte, a sha256 (or git blob id) re-check of every file
against the hub's listing, one-line messages for hub errors, and finding a model that a user
downloaded into a folder of their own (`--dir`).
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dove_cli import note
from dove_cli.errors import DownloadError, DownloadLater, ModelError, TrainingRunGiven, advice
from dove_cli.humanize import human_size
from dove_cli.jsontext import json_text

log = logging.getLogger(__name__)

DEFAULT_REPO = "zzsi/DOVE"
DEFAULT_SUBFOLDER = "stage2"
BUILT_IN_MODELS = ("bilinear", "tiny", "full-random")  # --model names that need no weights (dove_cli.models)
BASE_REPO = "zai-org/CogVideoX1.5-5B"
REQUIRED_PARTS = ("transformer", "vae", "scheduler")
TEXT_PARTS = ("text_encoder", "tokenizer")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
AUX_SUFFIXES = (".json", ".txt", ".model")  # configs, shard indexes, tokenizer files
_TRUE = {"1", "ON", "YES", "TRUE"}
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# progress(file, done_bytes, total_bytes) while files are verified (downloads show huggingface_hub's bars)
ProgressFn = Callable[[str, int, int], None]
FreeSpaceFn = Callable[[Path], int]


@dataclass(frozen=True)
class HubEnv:
    endpoint: str
    cache_dir: Path
    offline: bool

    @property
    def shown(self) -> str:
        """The endpoint as dove prints it (shown_endpoint)."""
        return shown_endpoint(self.endpoint)


def shown_endpoint(endpoint: str) -> str:
    """An endpoint as dove prints it, in error lines and `dove info`: a password in the URL
    (https://user:pass@host) as `***`, or a user part alone (which may be a token) as `***`: farm logs
    and health checks keep what dove prints. The URL itself is passed on to huggingface_hub whole."""
    if not _is_hub_url(endpoint):  # (a malformed one, said by check_endpoint)
        return _masked_userinfo(endpoint)
    head, sep, rest = endpoint.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return endpoint
    user, colon, _ = userinfo.partition(":")
    return f"{head}{sep}{user + ':***' if colon else '***'}@{host}{rest[len(authority) :]}"


def _masked_userinfo(endpoint: str) -> str:
    """A malformed endpoint as its error line shows it: all before its last `@` (ahead of any `?` or `#`)
    as `***`, since a password typed with a `/` in it cannot be told from a path by URL rules."""
    head, sep, rest = endpoint.partition("://")
    if not sep:
        head, rest = "", endpoint
    at = rest.rfind("@", 0, len(re.split(r"[?#]", rest, maxsplit=1)[0]))
    return endpoint if at < 0 else f"{head}{sep}***@{rest[at + 1 :]}"


def hub_env() -> HubEnv:
    """HF_ENDPOINT, the hub cache and HF_HUB_OFFLINE as the environment says now.

    huggingface_hub reads these once, at import; dove passes them to each call explicitly, so that a
    variable set later (by a user of the Python API, or a test) is honoured. Why by hand: huggingface_hub
    (2.4.0, the version checked) offers no call that reads them again (only its import-time
    `huggingface_hub.constants`), so its precedence is copied here: check it against constants.py on an
    upgrade. It can go once huggingface_hub reads the environment per call.
    """
    env = os.environ
    endpoint = (env.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"), "huggingface")
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    offline = (env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or "").upper() in _TRUE
    return HubEnv(endpoint, Path(os.path.expandvars(cache)).expanduser(), offline)


def mirror_hint() -> str:
    """What to say of HF_ENDPOINT when the hub cannot be reached: set one, or check the one set."""
    return (
        "or check HF_ENDPOINT, the mirror that is set"
        if os.environ.get("HF_ENDPOINT")
        else "or set HF_ENDPOINT to a mirror"
    )


def _is_hub_url(endpoint: str) -> bool:
    """An http(s) URL with a host and a port that is a number."""
    import urllib.parse

    url = urllib.parse.urlsplit(endpoint)
    try:
        return url.scheme in ("http", "https") and bool(url.hostname) and (url.port or 1) > 0
    except ValueError:  # a port that is not a number
        return False


def check_endpoint(endpoint: str) -> None:
    """HF_ENDPOINT must be an http(s) URL: a malformed one is a setting to fix (exit 2), not a network
    to wait for (it was "cannot reach notaurl", exit 75: try again later)."""
    if not _is_hub_url(endpoint):
        given = shown_endpoint(os.environ.get("HF_ENDPOINT") or endpoint)  # as set (hub_env drops a trailing /)
        raise DownloadError(f"HF_ENDPOINT={given}: not a hub URL; give one like https://huggingface.co or "
                            "http://localhost:8080 (a mirror), or unset it")  # fmt: skip


def hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether the hub's host takes a connection within `timeout` s: without a network,
    huggingface_hub retries each file for about 25 s before it fails. Behind a proxy the host
    cannot be tried directly: True (the download says what went wrong)."""
    import socket
    import urllib.parse
    import urllib.request

    if urllib.request.getproxies():
        return True
    url = urllib.parse.urlsplit(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or (80 if url.scheme == "http" else 443)), timeout):
            return True
    except (OSError, ValueError):
        return False


def state_file() -> Path:
    """Where `download-weights` records the folders it filled (so that `--dir` downloads are found later)."""
    base = os.environ.get("DOVE_HOME") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config"), "dove"
    )
    return Path(base).expanduser() / "weights.json"


def _existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (what a download's folders are made in)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_free(path: Path) -> int:
    """Free bytes on the disk that holds `path` (or its nearest existing parent)."""
    return shutil.disk_usage(_existing(path)).free


def check_writable(target: Path, local_dir: bool) -> None:
    """Before asking the hub anything: a folder the download cannot be written into (a read-only
    image, another user's cache) is one line naming it and what to use instead."""
    there = _existing(target)
    if os.access(there, os.W_OK | os.X_OK) and (there == target or there.is_dir()):
        return
    instead = "use --dir on a folder you can write" + ("" if local_dir else ", or set HF_HOME (or HF_HUB_CACHE) to one")
    raise DownloadError(
        f"cannot write the weights into {target}: {there} is not writable{' (not a folder)' * (not there.is_dir())}; {instead}"
    )


# ---------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class RemoteFile:
    path: str  # path in the repo, e.g. "stage2/vae/config.json"
    size: int
    sha256: str | None = None  # LFS files: the hub's sha256 of the content
    blob_id: str | None = None  # git object id: the checksum of regular (non-LFS) files


@dataclass
class RepoPlan:
    """What to fetch from one repo at one commit, and where it lands."""

    repo: str
    revision: str  # as asked ("main", a tag, a commit)
    commit: str  # what it resolved to ("" offline)
    subfolder: str  # "" for the repo root
    files: list[RemoteFile]
    root: Path  # the folder the repo's files land in: a cache snapshot or the --dir folder
    local_dir: Path | None = None  # set by --dir: a plain folder instead of the hub cache
    present: set[str] = field(default_factory=set)  # files already complete on disk (by size)

    @property
    def folder(self) -> Path:
        """The model folder (the subfolder of `root`)."""
        return self.root / self.subfolder if self.subfolder else self.root

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def missing_bytes(self) -> int:
        return sum(f.size for f in self.files if f.path not in self.present)


@dataclass
class DownloadPlan:
    repos: list[RepoPlan]  # the DOVE checkpoint first, then the base model if asked
    target: Path  # the folder whose disk receives the bytes
    free_bytes: int
    offline: bool = False  # HF_HUB_OFFLINE: nothing to fetch, the plan describes the local copy
    allow_pickle: bool = False

    @property
    def folder(self) -> Path:
        return self.repos[0].folder

    @property
    def total_bytes(self) -> int:
        return sum(r.total_bytes for r in self.repos)

    @property
    def missing_bytes(self) -> int:
        return sum(r.missing_bytes for r in self.repos)


def parse_repo_spec(spec: str) -> tuple[str, str | None]:
    """`owner/name` or `owner/name:subfolder` -> (repo, subfolder or None)."""
    repo, _, sub = spec.partition(":")
    if not _REPO_ID.match(repo):
        raise ModelError(f"'{spec}' is not a hub repo id (owner/name or owner/name:subfolder)")
    return repo, sub.strip("/") or None


def default_subfolder(repo: str, stage: int = 2) -> str:
    """The mirror keeps each training stage in its own folder; other repos are used from their root."""
    if stage not in (1, 2):
        raise ModelError(f"stage must be 1 or 2, not {stage}")
    return f"stage{stage}" if repo == DEFAULT_REPO else ""


def plan_download(
    repo: str = DEFAULT_REPO,
    revision: str | None = None,
    subfolder: str | None = None,
    stage: int = 2,
    base: bool = False,
    dir: str | Path | None = None,
    with_text_encoder: bool = False,
    allow_pickle: bool = False,
    free_space: FreeSpaceFn = disk_free,
) -> DownloadPlan:
    """List what `fetch` would download (files, sizes, checksums) without downloading anything."""
    env = hub_env()
    local_dir = Path(dir).expanduser().absolute() if dir is not None else None
    if not env.offline:
        check_writable(local_dir or env.cache_dir, local_dir is not None)
        check_endpoint(env.endpoint)
    repo, spec_sub = parse_repo_spec(repo)
    subfolder = subfolder if subfolder is not None else spec_sub
    subfolder = subfolder.strip("/") if subfolder is not None else default_subfolder(repo, stage)
    jobs = [(repo, subfolder, local_dir)]
    if base and repo != BASE_REPO:
        jobs.append((BASE_REPO, "", local_dir / BASE_REPO.split("/")[1] if local_dir else None))
    target = local_dir or env.cache_dir
    repos = []
    for r, s, d in jobs:
        rev = (revision if r == repo else None) or "main"
        repos.append(_offline_plan(r, rev, s, d, env) if env.offline else _plan_repo(r, rev, s, d, with_text_encoder,
                                                                                     allow_pickle, env))  # fmt: skip
    return DownloadPlan(repos, target, free_space(target), offline=env.offline, allow_pickle=allow_pickle)


def _plan_repo(repo: str, revision: str, subfolder: str, local_dir: Path | None, with_text: bool,
               allow_pickle: bool, env: HubEnv) -> RepoPlan:  # fmt: skip
    """Ask the hub for the repo's files at `revision` (one call) and keep those a model folder needs."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=env.endpoint, library_name="dove-cli")
    with hub_errors(repo, revision, env.endpoint):
        info = api.model_info(repo, revision=revision, files_metadata=True)
    remote = {}
    for s in info.siblings or []:
        size = s.lfs.size if s.lfs else (s.size or 0)
        remote[s.rfilename] = RemoteFile(s.rfilename, size, s.lfs.sha256 if s.lfs else None, s.blob_id)
    where = f"{repo}/{subfolder}" if subfolder else repo
    files = [remote[p] for p in select_files(list(remote), subfolder, with_text, allow_pickle, where=where)]
    commit = info.sha or revision
    root = local_dir or env.cache_dir / ("models--" + repo.replace("/", "--")) / "snapshots" / commit
    plan = RepoPlan(repo, revision, commit, subfolder, files, root, local_dir)
    plan.present = {f.path for f in files if _size_on_disk(root / f.path) == f.size}
    return plan


def select_files(
    paths: list[str], subfolder: str, with_text: bool, allow_pickle: bool, where: str = "the repo"
) -> list[str]:
    """The repo files a DOVE model folder needs: component folders, model_index.json, a prompt embedding.

    Raises ModelError when a required component is missing or holds only pickle weights (unless allowed).
    """
    prefix = f"{subfolder}/" if subfolder else ""
    inside = sorted(p[len(prefix) :] for p in paths if p.startswith(prefix))
    if not inside:
        raise ModelError(f"{where}: no such folder in the repo (check --subfolder / --stage)")
    missing = [p + "/" for p in REQUIRED_PARTS if not any(n.startswith(p + "/") for n in inside)]
    if missing:
        raise ModelError(f"{where} is not a diffusers model: missing {', '.join(missing)} (check --repo / --subfolder)")
    chosen: list[str] = []
    for part in REQUIRED_PARTS + (TEXT_PARTS if with_text else ()):
        names = [n for n in inside if n.startswith(part + "/")]
        if not names:
            raise ModelError(f"{where} has no {part}/ folder (drop --with-text-encoder)")
        chosen += _pick_weights(names, allow_pickle, f"{where}/{part}/")
    for name in inside:
        leaf = name.rsplit("/", 1)[-1]
        if name == "model_index.json" or (leaf.startswith("prompt_embed") and leaf.endswith(".safetensors")):
            chosen.append(name)
    for name in chosen:
        check_repo_name(prefix + name, where)
    return [prefix + n for n in chosen]


def check_repo_name(name: str, where: str) -> None:
    """A file name the hub lists is joined to the target folder: one with a `..` part, an absolute path
    a backslash (a separator on Windows) or a drive (`C:`, in any part) would name a file outside it. huggingface_hub refuses some
    of these too, as a traceback; dove refuses them all, in one line, before any download."""
    parts = name.split("/")
    if "\\" in name or name.startswith("/") or ".." in parts or any(re.match(r"[A-Za-z]:", p) for p in parts):
        raise ModelError(f"{where}: the hub lists a file {name!r}: refused: outside the target folder")


def as_pattern(name: str) -> str:
    """A repo file name as an `allow_patterns` entry that matches that name only (fnmatch: `*`, `?`
    and `[` would match other names, or none, and the file would look missing or corrupt)."""
    return re.sub(r"([*?[])", r"[\1]", name)


def _pick_weights(names: list[str], allow_pickle: bool, where: str) -> list[str]:
    """Safetensors weights plus configs; pickle weights only when they are all there is and allowed."""
    safe = [n for n in names if n.endswith(".safetensors")]
    pickle = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    pickle_index = [n for n in names if n.endswith(tuple(s + ".index.json" for s in PICKLE_SUFFIXES))]
    aux = [n for n in names if n.endswith(AUX_SUFFIXES) and n not in pickle_index]
    if safe:
        return safe + aux
    if pickle and not allow_pickle:
        raise pickle_refused(f"{where} has only pickle weights ({', '.join(n.rsplit('/', 1)[-1] for n in pickle)})")
    return pickle + pickle_index + aux


def pickle_refused(what: str, flag: str = "--allow-pickle", trust: str = "if you trust this source") -> ModelError:
    """The one line for pickle files dove does not load unasked (model folders, downloads, training
    checkpoints): unpickling runs whatever code the file names, so only the user can vouch for it."""
    return ModelError(f"{what}, which can run code when loaded: pass {flag} {trust}")


def _offline_plan(repo: str, revision: str, subfolder: str, local_dir: Path | None, env: HubEnv) -> RepoPlan:
    """Offline mode: describe the local copy, or say clearly that there is none."""
    folder = local_dir / subfolder if local_dir is not None else find_downloaded(repo, subfolder, revision)
    where = f"{repo}/{subfolder}" if subfolder else repo
    if folder is None or not _looks_like_model(folder):
        raise DownloadError(
            f"offline mode (HF_HUB_OFFLINE=1) and {where} is not in {local_dir or env.cache_dir}:"
            " unset HF_HUB_OFFLINE to download it, or give `dove upscale --model` a local model folder"
        )
    root = folder.parent if subfolder else folder
    files = [RemoteFile(str(p.relative_to(root)), p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()]
    return RepoPlan(repo, revision, "", subfolder, files, root, root, {f.path for f in files})


def _size_on_disk(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


# ---------------------------------------------------------------------------------------- download


def download_weights(
    repo: str = DEFAULT_REPO,
    revision: str | None = None,
    subfolder: str | None = None,
    stage: int = 2,
    base: bool = False,
    dir: str | Path | None = None,
    with_text_encoder: bool = False,
    allow_pickle: bool = False,
    progress: ProgressFn | None = None,
    free_space: FreeSpaceFn = disk_free,
) -> Path:
    """Download (or complete, or repair) a DOVE checkpoint and return its model folder.

    `subfolder` defaults to `stage{stage}` for the default mirror, the repo root otherwise; `base`
    also fetches CogVideoX1.5-5B (needed to train stage 1). Files already complete are not fetched
    again; every file is checked against the hub's size and sha256 / git blob id.
    """
    plan = plan_download(
        repo, revision, subfolder, stage, base, dir, with_text_encoder, allow_pickle, free_space=free_space
    )
    return fetch(plan, progress=progress)


def fetch(plan: DownloadPlan, progress: ProgressFn | None = None) -> Path:
    """Carry out a plan: check disk space, download what is missing, verify everything, record it."""
    if plan.offline:
        for rp in plan.repos:
            validate_model_folder(rp.folder, allow_pickle=plan.allow_pickle)
        return plan.folder
    if plan.missing_bytes > plan.free_bytes:
        raise DownloadError(
            f"not enough disk space in {plan.target}: need {human_size(plan.missing_bytes)},"
            f" {human_size(plan.free_bytes)} free; free some space or use --dir on a larger disk"
        )
    env = hub_env()
    for rp in plan.repos:
        _drop_dead_partials(rp, env)
        _download(rp, [f.path for f in rp.files if f.path not in rp.present], env)
        for f in rp.files:
            if _verify(rp, f, progress):
                continue
            _download(rp, [f.path], env, force=True)  # a damaged copy in the cache: once more
            if not _verify(rp, f, progress):
                discard(rp.root / f.path)
                raise DownloadError(
                    f"{rp.repo}/{f.path} does not match the hub's checksum after download (deleted it):"
                    " run `dove download-weights` again; if it repeats, the server sends a broken file"
                )
        validate_model_folder(rp.folder, allow_pickle=plan.allow_pickle)
        _record(rp)
    return plan.folder


def _download(rp: RepoPlan, files: list[str], env: HubEnv, force: bool = False) -> None:
    """huggingface_hub fetches the files (resuming, with its own progress bars) into the cache or --dir."""
    from huggingface_hub import snapshot_download

    if not files:
        return
    cache_dir = None if rp.local_dir is not None else env.cache_dir
    with hub_errors(rp.repo, rp.revision, env.endpoint, file=files[0] if len(files) == 1 else None, dest=rp.root):
        snapshot_download(rp.repo, revision=rp.revision, allow_patterns=[as_pattern(f) for f in files],
                          endpoint=env.endpoint,
                          library_name="dove-cli", force_download=force, cache_dir=cache_dir,
                          local_dir=rp.local_dir)  # fmt: skip


def _verify(rp: RepoPlan, f: RemoteFile, progress: ProgressFn | None) -> bool:
    """Size and checksum: sha256 for LFS files, the git blob id (sha1 of "blob <size>\\0" + bytes) otherwise."""
    path = rp.root / f.path
    size = _size_on_disk(path)
    if size != f.size:
        return False
    if f.sha256:
        digest, expected = hashlib.sha256(), f.sha256
    elif f.blob_id:
        digest, expected = hashlib.sha1(b"blob %d\0" % size), f.blob_id
    else:
        return True
    read = (lambda done: progress(f.path, done, size)) if progress else None
    return file_digest(path, digest, read) == expected


def file_digest(path: Path, digest: hashlib._Hash, progress: Callable[[int], None] | None = None) -> str:
    """The hex digest of a file's bytes fed to `digest` (sha256, or a git blob's primed sha1), read in
    8 MiB chunks; `progress` gets the bytes read so far. The one home of checking a download (DOVE
    checkpoints here, the metrics' weight files in metrics/pretrained.py); `discard` drops a bad one."""
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done)
    return digest.hexdigest()


def _drop_dead_partials(rp: RepoPlan, env: HubEnv, max_age_s: float = 600) -> None:
    """Delete partial files that a killed download left: huggingface_hub names them per process
    (`<etag>.<random>.incomplete`), so no later run resumes them and each wastes up to 11 GB.
    A live download writes continuously, so a partial untouched for 10 minutes is dead."""
    if rp.local_dir is not None:
        folder = rp.local_dir / ".cache" / "huggingface" / "download"
    else:
        folder = env.cache_dir / ("models--" + rp.repo.replace("/", "--")) / "blobs"
    now = time.time()
    for p in folder.rglob("*.incomplete") if folder.is_dir() else []:
        try:
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
        except OSError:
            pass


def discard(path: Path) -> None:
    """Remove a bad download (and, in the hub cache, the blob behind its link)."""
    targets = [path.resolve(), path] if path.is_symlink() else [path]
    for p in targets:
        p.unlink(missing_ok=True)


@contextmanager
def hub_errors(
    repo: str, revision: str | None, endpoint: str, file: str | None = None, dest: Path | None = None
) -> Iterator[None]:
    """Turn huggingface_hub / network / disk errors into one-line messages that say what to do next."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"{repo}/{file}" if file else repo
    raw, endpoint = endpoint, shown_endpoint(endpoint)  # (only said below)
    unreachable = (
        f"cannot reach {endpoint}: check your network connection ({mirror_hint()}); for a "
        "machine without network, run `dove download-weights --dir DIR` on one with it and copy DIR over (--model DIR)"
    )
    not_found = (  # a 404 without the hub's own error code: a wrong address, not a hub that is down
        f"HF_ENDPOINT={endpoint} answered 404 (not found) for {what}: a mirror that lacks it, or not a hub's address; "
        "check HF_ENDPOINT (trying again will not help)"
        if os.environ.get("HF_ENDPOINT")
        else f"{endpoint} answered 404 (not found) for {what}: check the repo's name (trying again will not help)"
    )
    try:
        yield
    except GatedRepoError:
        raise DownloadError(
            f"{repo} is gated: accept its conditions at {endpoint}/{repo} and set HF_TOKEN to a token of that account"
        ) from None
    except RevisionNotFoundError:
        raise DownloadError(
            f"revision '{revision}' not found in {repo}: check --revision (a branch, tag or commit)"
        ) from None
    except RemoteEntryNotFoundError:
        raise DownloadError(
            f"{what} not found at revision '{revision}': check --repo / --subfolder / --revision"
        ) from None
    except RepositoryNotFoundError:
        raise DownloadError(
            f"repo '{repo}' not found on {endpoint}: check --repo (owner/name); for a private repo set HF_TOKEN"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        if status in (401, 403):
            raise DownloadError(f"access to {what} denied ({status}): set HF_TOKEN to a valid token") from None
        if status == 404:  # no hub error code (a repo's or a file's 404 is said above): not a hub, or not there
            raise DownloadError(not_found) from None
        raise DownloadLater(f"the hub answered {status} for {what}: try again later") from None
    except OfflineModeIsEnabled:
        raise DownloadError(f"offline mode (HF_HUB_OFFLINE=1): cannot download {what}; unset HF_HUB_OFFLINE") from None
    except LocalEntryNotFoundError as exc:  # the HEAD request failed and nothing is cached
        cause = exc.__cause__
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            if cause.response.status_code == 404:
                raise DownloadError(not_found) from None
            raise DownloadLater(f"the hub answered {cause.response.status_code} for {what}: try again later") from None
        if cause is None or isinstance(cause, (httpx2.TransportError, ConnectionError)):
            raise DownloadLater(unreachable) from None
        cause_said = str(cause).replace(raw, endpoint)  # (its URLs hold the endpoint, password and all)
        raise DownloadError(f"cannot download {what} ({cause_said}): check HF_ENDPOINT and your network") from None
    except httpx2.TransportError:
        raise DownloadLater(unreachable) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DownloadLater(
                f"disk full while downloading {what} into {dest or 'the cache'}: free some space and run"
                " `dove download-weights` again (finished files are kept)"
            ) from None
        if "Consistency check failed" in str(exc):
            raise DownloadLater(
                f"{what} arrived with the wrong size (connection problem): run `dove download-weights` again"
            ) from None
        raise DownloadError(f"cannot write {what} into {dest or 'the cache'}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------- finding models


def _read_state() -> dict:
    try:
        return json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _record(rp: RepoPlan) -> None:
    """Remember where a download went, so that `dove upscale` finds a `--dir` download without options."""
    state = _read_state()
    state[f"{rp.repo}:{rp.subfolder}"] = {"path": str(rp.folder), "revision": rp.revision, "commit": rp.commit}
    write_state(state_file(), state, "the download")  # not fatal: the hub cache is found without it


def write_state(path: Path, state: dict[str, Any], what: str) -> None:
    """Replace a small JSON file of dove's own state (where downloads went, checksums already made) in
    one step (video_io.write_whole); a failure is a warning, since the state is only a shortcut."""
    from dove_cli.video_io.paths import write_whole

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, json_text(state, indent=1))
    except OSError as exc:
        log.warning("could not record %s in %s: %s", what, path, exc)


def _looks_like_model(folder: Path) -> bool:
    return all((folder / p).is_dir() for p in REQUIRED_PARTS)


def find_downloaded(repo: str = DEFAULT_REPO, subfolder: str | None = None, revision: str | None = None) -> Path | None:
    """A complete-looking local copy of a repo (recorded download or hub cache), or None. No network."""
    from huggingface_hub import try_to_load_from_cache

    subfolder = default_subfolder(repo) if subfolder is None else subfolder.strip("/")
    record = _read_state().get(f"{repo}:{subfolder}")
    if record and revision in (None, record.get("revision"), record.get("commit")):
        folder = Path(record["path"])
        if _looks_like_model(folder):
            return folder
    probe = f"{subfolder}/transformer/config.json" if subfolder else "transformer/config.json"
    cached = try_to_load_from_cache(repo, probe, cache_dir=hub_env().cache_dir, revision=revision)
    if not isinstance(cached, str):
        return None
    folder = Path(cached).parent.parent
    return folder if _looks_like_model(folder) else None


def find_model_root(path: Path) -> Path:
    """The diffusers folder inside what a user points at: the folder itself, the authors' release layout
    (pretrained_models/DOVE/) or a hub-cache repo folder (models--owner--name). No other guessing: a
    folder that is none of these is an error, never silently replaced by something found inside it."""
    candidates = [path, path / "DOVE", path / "pretrained_models" / "DOVE", path / DEFAULT_SUBFOLDER]
    if path.name.startswith("models--"):
        try:
            snapshot = path / "snapshots" / (path / "refs" / "main").read_text().strip()
            candidates += [snapshot, snapshot / DEFAULT_SUBFOLDER]
        except OSError:
            pass
    for folder in candidates:
        if (folder / "transformer").is_dir():
            if folder == path / DEFAULT_SUBFOLDER:  # `dove download-weights --dir DIR` writes DIR/stage2/
                note.info("%s holds %s/: using %s", path, DEFAULT_SUBFOLDER, folder)
            return folder
    stages = sorted(p.name for p in path.glob("stage*") if (p / "transformer").is_dir())
    if stages:  # stage1/ only: the training checkpoint, never picked in silence
        raise ModelError(f"{path} holds {', '.join(s + '/' for s in stages)}: use --model {path / stages[0]}")
    if any((path / name).exists() for name in ("run.json", "train_state.json", "checkpoints")):  # train/checkpoints.py
        raise TrainingRunGiven(f"{path} is a `dove train` run or checkpoint, not a model folder: make one with "
                               f"`dove train export {path} -o MODEL_DIR`, then use --model MODEL_DIR")  # fmt: skip
    missing = ", ".join(p + "/" for p in REQUIRED_PARTS if not (path / p).is_dir())
    raise ModelError(f"{path} is not a diffusers model folder: missing {missing}")


def check_safetensors(path: Path) -> None:
    """Cheap integrity check: the header parses and the data it describes fills the file exactly."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 0 < n <= size - 8:
                raise ValueError("bad header length")
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end != size:
            raise ValueError(f"{size} bytes on disk, header describes {8 + n + end}")
    except FileNotFoundError:
        raise ModelError(f"{path} is missing: run `dove download-weights` again to repair the model") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(
            f"{path} is corrupted or incomplete ({exc}): run `dove download-weights` again to repair it"
        ) from None


def validate_model_folder(folder: Path, allow_pickle: bool = False) -> Path:
    """Check that `folder` is a usable diffusers model folder (cheaply: no hashing) and return it."""
    missing = [p + "/" for p in REQUIRED_PARTS if not (folder / p).is_dir()]
    if missing:
        raise ModelError(
            f"{folder} is incomplete: missing {', '.join(missing)} (a model folder holds transformer/, vae/,"
            " scheduler/); run `dove download-weights` or check the path"
        )
    for part in ("transformer", "vae"):
        d = folder / part
        if not (d / "config.json").is_file():
            raise ModelError(f"{d} has no config.json: the model folder is incomplete")
        _check_loaded_weights(d, DIFFUSERS_WEIGHTS, allow_pickle)
        safe = sorted(d.glob("*.safetensors"))
        for index in d.glob("*.safetensors.index.json"):
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError) as exc:
                raise ModelError(f"{index} is unreadable ({exc}): run `dove download-weights` again") from None
            for shard in sorted(shards - {p.name for p in safe}):
                raise ModelError(f"{d / shard} is missing: run `dove download-weights` again to complete the model")
        for f in safe:
            check_safetensors(f)
    if not any((folder / "scheduler").glob("*.json")):
        raise ModelError(f"{folder / 'scheduler'} has no scheduler_config.json: the model folder is incomplete")
    if (folder / "transformer_lora").is_dir():  # a training export's adapter (engine._apply_adapter merges it)
        _check_loaded_weights(folder / "transformer_lora", PEFT_WEIGHTS, allow_pickle)
    return folder


DIFFUSERS_WEIGHTS = "diffusion_pytorch_model"  # the name diffusers' from_pretrained loads, then falls back from
PEFT_WEIGHTS = "adapter_model"  # peft's PeftModel.from_pretrained: adapter_model.safetensors, else .bin


def _check_loaded_weights(d: Path, stem: str, allow_pickle: bool) -> None:
    """`d` has the safetensors file (or shard index) that diffusers / peft load; the pickle they fall back
    to without it is refused unless allowed (a safetensors file of another name is no safeguard: they
    look for `stem` only)."""
    if (d / f"{stem}.safetensors").is_file() or (d / f"{stem}.safetensors.index.json").is_file():
        return
    pickle = sorted(p for p in d.iterdir() if p.name.startswith(stem) and p.name.endswith(PICKLE_SUFFIXES))
    if not pickle:
        raise ModelError(f"{d} has no weights ({stem}.safetensors): the model folder is incomplete")
    if not allow_pickle:  # (`dove upscale` has no flag for it: converting is the way, for a trusted source)
        raise ModelError(
            f"{d} has only pickle weights ({', '.join(p.name for p in pickle)}) where {stem}.safetensors is looked "
            "for, which can run code when loaded: dove loads a model folder's weights from safetensors only; if you "
            f"trust their source, convert them (safetensors.torch.save_file) to {stem}.safetensors"
        )


def is_hub_id(spec: str) -> bool:
    """`owner/name` or `owner/name:subfolder`, as --model takes a hub repo."""
    return bool(_REPO_ID.match(spec.partition(":")[0])) and not spec.startswith((".", "/", "~"))


def resolve_model(
    spec: str | None, *, download: bool = False, revision: str | None = None, allow_pickle: bool = False
) -> Path:
    """Turn what the user passed as --model into a checked local diffusers folder.

    spec: None (the downloaded default, zzsi/DOVE stage2/), a local folder (diffusers layout, the
    authors' pretrained_models/DOVE layout, a hub-cache repo folder, a `dove train export`), or a hub
    id `owner/name[:subfolder]` found in the cache. With download=True a missing hub model is
    downloaded; otherwise the error says which command fetches it. Never touches the network otherwise.
    """
    if not spec:
        folder = find_downloaded(DEFAULT_REPO, DEFAULT_SUBFOLDER, revision)
        if folder is None:
            env = hub_env()
            if env.offline:  # nothing can be fetched: not --download, not download-weights
                raise ModelError(
                    f"no DOVE weights found in {env.cache_dir} and offline mode is on (HF_HUB_OFFLINE=1): "
                    "unset it and run `dove download-weights`, or pass --model with a model folder"
                )
            if not download:
                raise ModelError(
                    f"no DOVE weights found in {env.cache_dir}: run `dove download-weights` first"
                    + advice(
                        " (or pass --download, or --model with a model folder)",
                        " (or pass download=True, or model= a model folder)",
                    )  # fmt: skip
                )
            folder = download_weights(revision=revision, allow_pickle=allow_pickle)
        return validate_model_folder(folder, allow_pickle)
    path = Path(spec).expanduser()
    if path.is_file():
        raise ModelError(f"{path} is a file: --model takes a model folder (with transformer/, vae/, scheduler/)")
    if path.is_dir():
        return validate_model_folder(find_model_root(path), allow_pickle)
    if not is_hub_id(spec):
        near = difflib.get_close_matches(spec, BUILT_IN_MODELS, n=1)
        hint = f" (did you mean --model {near[0]}?)" if near and "/" not in spec else ""
        raise ModelError(f"model folder {path} does not exist{hint}; built-in models: {', '.join(BUILT_IN_MODELS)}")
    repo, _, sub = spec.partition(":")
    subfolder = sub.strip("/") if sub else None
    folder = find_downloaded(repo, subfolder, revision)
    if folder is None:
        if not download:
            fetch = "unset HF_HUB_OFFLINE (offline mode is on) and run" if hub_env().offline else "run"
            raise ModelError(
                f"'{spec}' is neither a folder nor a downloaded hub repo: check the path, or {fetch}"
                f" `dove download-weights --repo {spec}`"
            )
        folder = download_weights(repo=repo, subfolder=subfolder, revision=revision, allow_pickle=allow_pickle)
    return validate_model_folder(folder, allow_pickle)


def describe_model(folder: Path) -> dict[str, int | None]:
    """Bytes per component folder (None when absent), for `dove info`."""
    sizes: dict[str, int | None] = {}
    for part in REQUIRED_PARTS + TEXT_PARTS:
        d = folder / part
        sizes[part] = sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) if d.is_dir() else None
    embeds = [p for p in folder.glob("prompt_embed*.safetensors") if p.is_file()]
    sizes["prompt_embedding"] = sum(p.stat().st_size for p in embeds) if embeds else None
    return sizes
