"""Many GPUs and machines: one video, or a folder of videos, upscaled by Ray workers.

The unit of work is a closed segment of the resume journal (resume.py). Before any model runs, the
driver (this process) fixes the segments with a pre-pass: it decodes the input, finds the scene
cuts and replays the online window plan exactly as a single run does (upscaling.plan_steps), but
without a model. For each segment it keeps what a worker needs to make exactly those frames: the
first frame of the first window that touches it (the pre-roll), the plan as it stood there (a
copy of the ChunkStream), and the timestamps and cuts of the frames it reads. A task is a run of
consecutive segments of one file. A worker (a Ray actor with one GPU, or CPU workers without one,
holding one model for all its tasks) seeks to the pre-roll frame itself, runs the streaming loop of
a single run over that range (upscaling._stream with a Part), and writes the segment files into the
output's work folder, which every worker must see (shared storage). Video never goes through Ray's
object store: tasks carry descriptors, workers read the input and write segments themselves, and
report each segment once it is whole on disk; the driver records it in the journal and, once all
are there, joins them as a single run does. A segment is encoded on its own, with a fixed thread
count, from the same pixels, so the output is byte-identical to a single-process run.

Faults: a worker that dies (killed, its node lost) is restarted by Ray (actor restarts); the
segments of its task that it had not reported go back to the queue, and the next free worker
redoes them. A segment file gets its name only when whole, and only reported segments are used.
The journal works as for a single run: `--resume` after the driver itself died redoes only what it
does not list (with or without --ray).
The driver's per-file bookkeeping (which segments are waiting, handed out, saved; when one is made
again) and the worker -> driver events live in distributed_jobs.py, which needs no Ray.

Out of GPU memory: a worker shrinks its tiles from the window that did not fit on (tiled.py) and
says so; the driver adds the change to the journal's list (kept in window order) and sends the list
with every later task. Workers report the tile each window of a segment ran with, and the driver
keeps a segment only when those are the tiles the list gives; a segment made before its worker
heard of a change is redone. The output is then the one a single run with the same tile changes
writes, which is what a `--resume` of either kind replays. (A single run on the same GPU could run
out of memory at other windows than the workers did: outputs agree byte for byte when no window
runs out of memory, or when the same changes are replayed.)
"""

from __future__ import annotations

import contextlib
import copy
import enum
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dove_cli import resume, video_io
from dove_cli.distributed_jobs import (
    TASK_MAX_FRAMES,
    Event,
    Job,
    JobState,
    Said,
    SegmentDone,
    SegmentPlan,
    TaskEnded,
    TaskStats,
    TileChanged,
    Warned,
    WorkersLost,
    Written,
    tile_at,
)
from dove_cli.errors import (
    DoveError,
    InputError,
    Interrupted,
    OptionError,
    OutputError,
    at_command_line,
    spoken,
    spoken_as,
)
from dove_cli.geometry import written_info
from dove_cli.logs import held_warnings, kept_warnings
from dove_cli.options import CheckedOptions, UpscaleOptions
from dove_cli.video_io.continuity import first_discontinuity
from dove_cli.windows import Span

if TYPE_CHECKING:
    from dove_cli.batch import BatchItem
    from dove_cli.plan import Plan
    from dove_cli.upscaling import CheckedOutput, Chunks, Part, Progress, UpscaleResult

log = logging.getLogger(__name__)

RAY_HINT = "pip install 'dove-cli[ray]'"
TASKS_PER_WORKER = 4  # ...but tasks are smaller when a video has fewer frames than this many per worker
ACTOR_RESTARTS = -1  # Ray restarts a dead worker (MAX_DEATHS bounds the damage of a segment that kills them)
START_TIMEOUT_S = 300.0  # for the cluster to place the workers
PROBE_TIMEOUT_S = 5.0  # for a TCP connection to the address given
CONNECT_TIMEOUT_S = 60.0  # for Ray to take the driver (its own retries take about 30 s)
GCS_RECONNECT_S = "15"  # the driver's wait for a head that went away, before Ray's core ends it (Ray's default: 60)
POLL_S = 0.25  # a worker's event poll waits this long for something to report
RUN_TOKEN = "ray-run"  # file in the work folder: a worker that cannot read it does not see the folder
T = TypeVar("T")


class ClusterGone(WorkersLost):
    """The Ray cluster itself went away (`ray stop`, its head node lost): no worker is left to take
    the frames. The command is right; run again (with --resume) once there is a cluster: exit 75, as
    for other failures that the same command later gets past."""

    exit_code = 75


def import_ray() -> Any:
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise OptionError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


# ---------------------------------------------------------------------------------------- the pre-pass


def _snapshot(chunks: Chunks) -> Chunks:
    """A copy of the plan's state (without its growing list of past cuts, which planning never reads)."""
    return copy.deepcopy(chunks, {id(chunks.cuts): []})


class PrePass:
    """Decodes an input once, without a model, and yields its segments as the plan closes them:
    the cuts, windows and segment ends a single run finds, from the same reader and the same code."""

    def __init__(self, input: Path, output: Path, info: video_io.VideoInfo, opts: UpscaleOptions, plan: Plan) -> None:
        self.input, self.output, self.info, self.opts, self.plan = input, output, info, opts, plan
        self.total: int | None = None  # frames, once the input has ended
        self.cuts: list[int] = []
        self.dropped = 0
        self.seconds = 0.0

    def segments(self, stop: threading.Event | None = None) -> Iterator[SegmentPlan]:
        from dove_cli.scenes import SceneDetector
        from dove_cli.timing import StageTimer
        from dove_cli.upscaling import _with_cuts, new_chunks, no_frames, open_frames, plan_steps

        t0 = time.perf_counter()
        chunks = new_chunks(self.plan, self.opts.parity)
        detector = SceneDetector() if self.opts.scene_cuts == "auto" else None
        ends = resume.SegmentEnds()
        snapshots = {0: _snapshot(chunks)}  # frames read -> the plan then
        pts: dict[int, int] = {}
        spans: list[Span] = []  # windows that may touch a segment not yet closed
        first = index = 0
        with open_frames(self.input, self.info, self.opts, self.output) as (reader, decoded):
            for step in plan_steps(_with_cuts(decoded, detector), chunks, 0, StageTimer()):
                if stop is not None and stop.is_set():
                    return
                eof = step.eof
                if step.frame is not None:
                    pts[step.read - 1] = step.frame.pts
                spans += step.spans
                end = ends(step.final)
                if eof and step.read > first:  # the last segment ends with the input
                    end = step.read
                if end is not None:
                    touching = [s for s in spans if s.stop > first and s.start < end]
                    preroll = touching[0].start
                    yield SegmentPlan(
                        index, first, end, step.read, preroll, snapshots[preroll],
                        [pts[t] for t in range(preroll, step.read)],
                        [c for c in chunks.cuts if preroll <= c < step.read],
                        [(s.start, s.stop) for s in touching], last=eof,
                    )  # fmt: skip
                    index, first = index + 1, end
                    spans = [s for s in spans if s.stop > first]
                    for t in [t for t in snapshots if t < preroll]:  # later segments start no earlier
                        del snapshots[t]
                    for t in [t for t in pts if t < preroll]:
                        del pts[t]
                if not eof:
                    snapshots[step.read] = _snapshot(chunks)
            if first == 0:
                raise no_frames(self.input, self.info, self.opts)
            self.total, self.cuts, self.dropped = first, list(chunks.cuts), reader.dropped_frames
        self.seconds = time.perf_counter() - t0


def make_part(segments: list[SegmentPlan]) -> Part:
    """The frame range of consecutive segments, for one task."""
    from dove_cli.upscaling import Part

    head, tail = segments[0], segments[-1]
    pts = list(head.pts)
    for s in segments[1:]:  # frames preroll .. read - 1 of each, overlapping the ones before
        pts += s.pts[head.preroll + len(pts) - s.preroll :]
    cuts = frozenset(c for s in segments for c in s.cuts)
    return Part(head.first, tail.stop, head.preroll, head.chunks, pts, cuts, tail.read if tail.last else None)


# ---------------------------------------------------------------------------------------- the workers


@dataclass
class Task:
    """Consecutive segments of one file, for one worker: descriptors only, never pixels."""

    id: str  # unique across drivers (a worker's queue may still hold events of an earlier run)
    input: str
    output: str
    work: str
    run_id: str
    info: video_io.VideoInfo
    opts: UpscaleOptions
    plan: Plan
    options: dict[str, Any]  # encoder settings of the segment files (resume.segment_options)
    part: Part
    ends: list[int]
    tile_changes: list[tuple[int, int]]
    segments: list[int]  # their indices
    spoken: tuple[bool, bool] = (False, False)  # whom the driver's advice is for (errors.spoken)


def _telling(call: Callable[[], T]) -> tuple[T, list[Said]]:
    """(on a worker) call(), and the warnings and notes it said, for the driver to say: a worker's own
    log reaches no one."""
    records: list[logging.LogRecord] = []
    with held_warnings(records, notes=True):
        value = call()
    return value, [Said.of(record) for record in records]


class Worker:
    """One Ray worker: a model (loaded on first use and kept while the model options stay the same)
    and the streaming loop over the frame ranges it is given. A threaded actor: the driver polls
    `events` while `run` works. What it says goes back to the driver (warm, plan: with the answer;
    run: as events)."""

    def __init__(self) -> None:
        from dove_cli import note

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        note.setLevel(logging.INFO)  # (held for the driver, whose own level decides whether they are shown)
        self._key: Any = None
        self._model: Any = None
        self._loads = 0  # models loaded (or received) by this process
        self._events: queue.Queue = queue.Queue()

    def hello(self) -> dict[str, Any]:
        import torch

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
        return {"pid": os.getpid(), "host": socket.gethostname(), "gpu": gpu, "loads": self._loads,
                "threads": torch.get_num_threads()}  # fmt: skip

    def _load(self, opts: UpscaleOptions, restorer: list[Any]) -> tuple[Any, Any, Any]:
        from dove_cli.models import check_quantize, load_model, model_key, resolve_device

        device, dtype = resolve_device(opts)
        if restorer:  # the caller's own Restorer, shipped once through the object store
            ray = import_ray()
            key: Any = ("object", restorer[0].hex())
            if key != self._key:
                self._model = ray.get(restorer[0])
                self._loads += 1
        else:
            key = model_key(opts, device, dtype)
            if key != self._key:
                check_quantize(opts, device)  # on the worker: its GPU, its packages (one line, as without Ray)
                self._model = None  # free the old one first
                self._model = load_model(opts, device, dtype)
                self._loads += 1
        self._key = key
        return self._model, device, dtype

    def warm(self, opts: UpscaleOptions, restorer: list[Any]) -> list[Said]:
        """Load the model; what loading it said."""
        return _telling(lambda: self._load(opts, restorer))[1]

    def plan(
        self,
        info: video_io.VideoInfo,
        opts: CheckedOptions,
        checked: CheckedOutput,
        spoken: tuple[bool, bool],
        restorer: list[Any],
    ) -> tuple[Plan, list[Said]]:
        """The plan of a file as one process makes it, and what was said of it (its notes, and say_plan's
        warnings: on this worker's memory, device and model, which is loaded: a plan past the host's
        memory is refused), its advice worded for whom the driver's is (`spoken`)."""
        from dove_cli.upscaling import plan_of_run, say_plan, weights_on_host

        def planned() -> Plan:
            model, device, dtype = self._load(opts, restorer)
            with spoken_as(spoken):
                plan = plan_of_run(info, model, opts, device, dtype, checked)
                say_plan(plan, info, opts, opts, model, device, dtype, refuse=weights_on_host(opts, device))
            return plan

        return _telling(planned)

    def fingerprint(self, opts: UpscaleOptions, restorer: list[Any]) -> dict[str, Any]:
        return self._load(opts, restorer)[0].fingerprint()

    def events(self, timeout: float = POLL_S) -> list[Event]:
        """What `run` reported since the last call (waits up to `timeout` for the first event)."""
        out = []
        try:
            out.append(self._events.get(timeout=timeout))
            while True:
                out.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return out

    def run(self, task: Task, restorer: list[Any]) -> None:
        """Make the segments of `task` in the work folder. Events (distributed_jobs), each with the task
        id: SegmentDone when one is whole on disk, TileChanged after an out-of-memory shrink, Written
        (frames so far), Warned (what was said meanwhile), and TaskEnded (statistics) last."""
        put, tid = self._events.put, task.id
        with held_warnings(lambda record: put(Warned(tid, Said.of(record))), notes=True), spoken_as(task.spoken):
            self._run(task, restorer)

    def _run(self, task: Task, restorer: list[Any]) -> None:
        import torch

        from dove_cli.engine import DoveModel
        from dove_cli.timing import StageTimer, peak_gpu_bytes, peak_host_bytes
        from dove_cli.upscaling import StreamStats, _stream

        folder = Path(task.work)
        where = f"Ray worker {os.getpid()} on {socket.gethostname()}"
        try:
            seen = (folder / RUN_TOKEN).read_text().strip() == task.run_id
        except OSError:
            seen = False
        if not seen:
            raise OutputError(f"{folder}: not visible to {where}; the output (and its work folder) must be on "
                              "storage that every worker sees, at the same path")  # fmt: skip
        probe = folder / f".probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"{folder}: {where} cannot write here ({exc.strerror})") from None
        model, device, dtype = self._load(task.opts, restorer)
        if task.plan.vae_tiling and isinstance(model, DoveModel):
            model.enable_vae_tiling()  # as a single run does: windows past the VAE's one-piece limit
        put, tid = self._events.put, task.id
        session = resume.PartSession(
            Path(task.output), folder, first=task.part.first, ends=task.ends, tile_changes=task.tile_changes,
            options=task.options, on_segment=lambda s, tiles, late: put(SegmentDone(tid, replace(s), tiles, late)),
            on_tile_change=lambda start, tile: put(TileChanged(tid, start, tile)),
        )  # fmt: skip
        last = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= POLL_S:
                last[0] = now
                put(Written(tid, p.frames_done))

        timer = StageTimer(device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        stats = StreamStats()
        _stream(task.input, task.info, model, task.plan, task.opts, session, stats, progress=progress, timer=timer,
                t_start=t0, part=task.part)  # fmt: skip
        put(TaskEnded(tid, TaskStats(
            windows_run=stats.windows_run, tile_used=stats.tile_used, offload_used=stats.offload_used,
            retries=stats.retries, stages=dict(timer.seconds), device_stages=timer.device_seconds,
            seconds=time.perf_counter() - t0, peak_host=peak_host_bytes(), peak_device=peak_gpu_bytes(device),
        )))  # fmt: skip


def joined_address(address: str) -> tuple[str, str]:
    """The address to join, and how messages name it: `auto` with RAY_ADDRESS set joins that address
    (and is probed as it is), said as `auto (RAY_ADDRESS=...)`."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if address == "auto" and env and env not in ("auto", "local"):
        return env, f"auto (RAY_ADDRESS={env})"
    return address, address


def _probe_address(address: str, name: str | None = None) -> None:
    """Refuse at once an address where nothing listens (Ray itself retries for minutes). `name`: the
    address as the user gave it (joined_address)."""
    name = name or address
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise OptionError(f"--ray {name!r}: use local, auto, ray://HOST:PORT (Ray Client) or HOST:PORT (the head "
                          "node's address, port 6379 by default)")  # fmt: skip
    try:
        _dial(host, int(port), PROBE_TIMEOUT_S)
    except OSError as exc:
        raise OptionError(f"--ray {name}: no Ray cluster answers there ({exc.strerror or exc})") from None


def _dial(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection to HOST:PORT (an IPv6 host in [brackets] too); OSError where
    nothing answers within `timeout` seconds."""
    socket.create_connection((host.strip("[]"), port), timeout=timeout).close()


def _refused(name: str, exc: BaseException) -> OptionError:
    """Ray's refusal to connect, in one line that says why: its ConnectionError names only the
    address; the cause (a token the cluster wants) is in the exceptions chained to it."""
    causes: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 5:
        causes.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(causes)
    if "InvalidAuthToken" in text or "AuthenticationError" in text or "Unauthenticated" in text:
        return OptionError(f"--ray {name}: the cluster refused this driver: authentication token missing or "
                           "incorrect (the cluster uses Ray's token auth: export RAY_AUTH_MODE=token, with the "
                           "cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token)")  # fmt: skip
    if name == "auto" and "Could not find any running Ray instance" in text:  # (Ray's text names its CLI's --address)
        return OptionError("--ray auto: no Ray cluster was started on this machine (`ray start --head`) and "
                           "RAY_ADDRESS is not set; use --ray local for this machine alone, or --ray HOST:PORT")  # fmt: skip
    return OptionError(f"--ray {name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def _join_cluster(ray: Any, address: str, name: str, kw: dict[str, Any]) -> None:
    """ray.init for a cluster elsewhere, in a thread of its own, waited for at most CONNECT_TIMEOUT_S:
    Ray Client's connect can stall for good (a failed one waits on its log stream), and ray.init
    puts its own SIGTERM handler (sys.exit) in place meanwhile. Waiting here, the main thread takes
    Ctrl-C and SIGTERM as dove does (one line, exit 130/143)."""
    ended: list[BaseException | None] = []

    def connect() -> None:
        try:
            ray.init(address=address, **kw)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            ended.append(exc)
        else:
            ended.append(None)

    thread = threading.Thread(target=connect, name="dove-ray-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if not ended:
        raise OptionError(f"--ray {name}: the cluster did not take this driver within {CONNECT_TIMEOUT_S:.0f} s "
                          "(for ray://, the head's Ray Client port, 10001 by default, with the same Ray and Python "
                          "versions here)")  # fmt: skip
    if ended[0] is not None:
        raise ended[0]


def _quiet_raylet(ray: Any) -> Callable[[], object]:
    """Hold back the raylet's notes that Ray's driver prints on stdout, dove's product stream (a worker
    died: a paragraph of 900 characters, with colour codes even into a file): dove says what happened
    in a line of its own. -v shows them, without colour where stdout is not a terminal (Ray reads
    RAY_COLOR_PREFIX as it prints). Returns what puts Ray's printer and the environment back, for close()."""
    worker = ray._private.worker
    if logging.getLogger("dove_cli").isEnabledFor(logging.INFO):
        if sys.stdout.isatty() or "RAY_COLOR_PREFIX" in os.environ:
            return lambda: None
        os.environ["RAY_COLOR_PREFIX"] = "0"
        return partial(os.environ.pop, "RAY_COLOR_PREFIX", None)
    shown = worker.print_to_stdstream

    def printed(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            shown(data, ignore_prefix)

    def put_back() -> None:
        worker.print_to_stdstream = shown

    worker.print_to_stdstream = printed
    return put_back


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Ray's C++ core prints a warning a second while it retries an address (20 or more lines before
    dove's one): its stderr (file descriptor 2, which its threads write to) goes nowhere meanwhile,
    unless -v."""
    if logging.getLogger("dove_cli").isEnabledFor(logging.INFO):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _crowding(
    workers: int, use_gpu: bool, free_gpus: int, free_cpus: int, cores: int | None, timeout: float
) -> str | None:
    """What happens to workers that the cluster has no room for, said once: on this machine alone
    (`cores`: --ray local) CPU workers share its cores; on a cluster, where another job holds the GPUs
    (CPUs), workers wait for them."""
    if use_gpu and workers > free_gpus:
        return (f"{free_gpus} of the cluster's GPUs {'is' if free_gpus == 1 else 'are'} free (another job holds "
                f"the rest?): the workers wait for them, up to {timeout:.0f} s")  # fmt: skip
    if not use_gpu and cores is not None and workers > cores:
        return (f"this machine has {cores} CPU core{'s' * (cores != 1)}; the {workers} CPU workers share them "
                f"(no faster than {cores})")  # fmt: skip
    if not use_gpu and cores is None and workers > free_cpus:
        return (f"{free_cpus} of the cluster's CPUs {'is' if free_cpus == 1 else 'are'} free (another job holds "
                f"the rest?): the workers wait for them, up to {timeout:.0f} s")  # fmt: skip
    return None


@dataclass
class WorkerInfo:
    name: str
    pid: int = 0
    host: str = ""
    gpu: str | None = None


class Cluster:
    """Ray workers, one model copy each, for any number of upscale calls.

    address: "local" starts a Ray runtime of its own for this process (or uses the one this process
    already started), even where a cluster runs on this machine; "auto" joins the cluster this
    machine belongs to (`ray start --head` ran here), and "ray://HOST:PORT" or "HOST:PORT" join a
    remote one. workers: default the cluster's GPUs (one
    each), or without GPUs one CPU worker per machine. device: "cpu" for CPU workers even where
    there are GPUs. cpus: CPU cores per worker (default: the cluster's CPUs shared out).
    starting: called once these are checked (and the address answers), before Ray starts (a status line).
    quiet: hold back Ray's own output, as the command line does unless -v: the raylet's notes on stdout
    while the cluster lives, and its core's retry warnings while it starts, when file descriptor 2 goes
    to /dev/null (every thread's stderr, a host program's too). Off by default: each changes the
    whole process. What it changes, close() puts back.
    """

    def __init__(
        self,
        address: str = "local",
        workers: int | None = None,
        *,
        device: str | None = None,
        cpus: int | None = None,
        timeout: float = START_TIMEOUT_S,
        starting: Callable[[], None] | None = None,
        quiet: bool = False,
    ) -> None:
        ray = import_ray()
        self.ray = ray
        self.address = address = address.strip()
        self._owns_runtime = False
        self.gcs_address: str | None = None
        self.gone = False  # the head went away: nothing left to stop
        self._put_back: Callable[[], object] | None = None  # what quiet changed (Ray's printer, RAY_COLOR_PREFIX)
        if workers is not None and workers < 1:
            raise OptionError(f"--workers {workers} must be at least 1")
        if device is not None and device != "cpu" and not device.startswith("cuda"):
            raise OptionError(f"--device {device}: Ray workers run on cuda (one GPU each) or cpu")
        join, name = joined_address(address)
        if join not in ("local", "auto"):
            _probe_address(join, name)
        if starting is not None:
            starting()
        if not ray.is_initialized():
            kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.ERROR)
            sigterm = signal.getsignal(signal.SIGTERM)
            reconnect = "RAY_gcs_rpc_server_reconnect_timeout_s"
            mine = reconnect not in os.environ  # (read by this process's Ray core as ray.init starts it)
            if mine:
                os.environ[reconnect] = GCS_RECONNECT_S
            try:
                with _quiet_stderr() if quiet else contextlib.nullcontext():
                    if join == "local":  # a runtime of its own, even where `ray start` or RAY_ADDRESS names one
                        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers or 1, cpus or 1),
                                 num_gpus=0 if device == "cpu" else None, include_dashboard=False, **kw)  # fmt: skip
                    else:
                        _join_cluster(ray, join, name, kw)
            except (ConnectionError, ray.exceptions.AuthenticationError) as exc:
                raise _refused(name, exc) from None
            finally:  # ray.init replaces the SIGTERM handler (sys.exit, a crash banner): the caller's stays
                if sigterm is not None and threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGTERM, sigterm)
                if mine:
                    os.environ.pop(reconnect, None)
            self._owns_runtime = True
            self._put_back = _quiet_raylet(ray) if quiet else None
        try:
            self._start_workers(workers, device, cpus, timeout)
        except BaseException:
            self.close()
            raise

    def _start_workers(self, workers: int | None, device: str | None, cpus: int | None, timeout: float) -> None:
        ray = self.ray
        resources = ray.cluster_resources()
        gpus, all_cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if device is not None and device.startswith("cuda") and not gpus:
            raise OptionError(f"--device {device}: the Ray cluster has no GPU")
        use_gpu = device != "cpu" and gpus > 0
        nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        n = workers or (gpus if use_gpu else nodes)
        if use_gpu and n > gpus:
            raise OptionError(f"--workers {n}: the Ray cluster has {gpus} GPU{'s' * (gpus != 1)} (one per worker)")
        if not use_gpu and n > all_cpus:
            raise OptionError(f"--workers {n}: the Ray cluster has {all_cpus} CPU{'s' * (all_cpus != 1)}")
        available = ray.available_resources()  # a shared cluster may run other work
        free = int(available.get("CPU", 0))
        cores = (os.cpu_count() or 1) if self.address == "local" else None
        if crowded := _crowding(n, use_gpu, int(available.get("GPU", 0)), free, cores, timeout):
            log.warning("--workers %d: %s", n, crowded)
        per = cpus or max(1, free // n if not use_gpu else min(8, free // max(gpus, 1)))
        self.device = "cuda" if use_gpu else "cpu"
        remote = ray.remote(Worker).options(
            num_cpus=per, num_gpus=1 if use_gpu else 0, max_restarts=ACTOR_RESTARTS, max_task_retries=0,
            max_concurrency=2,
        )  # fmt: skip
        self.actors = [remote.remote() for _ in range(n)]
        self.workers = [WorkerInfo(f"w{i}") for i in range(n)]
        try:
            hellos = ray.get([a.hello.remote() for a in self.actors], timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            what = "1 GPU and " * use_gpu + f"{per} CPU{'s' * (per != 1)}"
            raise OptionError(f"--workers {n}: the Ray cluster did not start {n} workers of {what} each within "
                              f"{timeout:.0f} s (it has {resources})") from None  # fmt: skip
        for w, h in zip(self.workers, hellos, strict=True):
            w.pid, w.host, w.gpu = h["pid"], h["host"], h["gpu"]
        try:
            self.gcs_address = ray.get_runtime_context().gcs_address
        except Exception:  # noqa: BLE001 - Ray Client: not known here
            self.gcs_address = None

    def head_alive(self) -> bool:
        """Whether the cluster's head still answers (False after `ray stop`); True where unknown (Ray Client)."""
        if self.gcs_address is None:
            return True
        host, _, port = self.gcs_address.rpartition(":")
        try:
            _dial(host, int(port), 2)
        except OSError:
            return False
        return True

    def dtype(self, opts: UpscaleOptions) -> Any:
        """The dtype the workers run `opts` in (as resolve_device picks it on their device)."""
        from dove_cli.models import default_dtype

        return default_dtype(opts, self.device)

    def close(self) -> None:
        """Stop the workers (and the Ray runtime this object started or joined)."""
        for actor in [] if self.gone else getattr(self, "actors", []):
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self._owns_runtime and self.ray.is_initialized():
            self.ray.shutdown()
            self._owns_runtime = False
        if self._put_back is not None:
            self._put_back()
            self._put_back = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------- the driver


class SlotCall(enum.Enum):
    """The call a worker's slot has in flight."""

    WARM = "warm"  # Worker.warm: load the model
    PLAN = "plan"  # Worker.plan: a file's plan
    RUN = "run"  # Worker.run: a task (its events come through Worker.events)
    HELLO = "hello"  # Worker.hello, to a worker that died: answered once Ray has restarted it


@dataclass
class _Slot:
    """A worker as the driver sees it."""

    index: int
    actor: Any
    info: WorkerInfo
    state: str = "loading the model"  # (said in the progress lines)
    kind: SlotCall | None = None  # the call in flight
    call: Any = None
    poll: Any = None  # events() in flight while running
    job: Job | None = None
    task: Task | None = None
    written: int = 0  # frames of the task written so far
    accepted: int = 0  # ...of which the driver has the segments
    cancelled: bool = False  # killed by the driver (not a fault)
    dead: bool = False
    since: float = 0.0  # when the call in flight was made

    def line(self) -> str:
        where = f"{self.info.host} pid {self.info.pid}" if self.info.pid else self.info.host
        state = self.state
        if self.kind is SlotCall.RUN and self.task is not None:
            part = self.task.part
            done = max(0, self.written - part.first) * 100 // max(1, part.stop - part.first)
            state += f" ({min(done, 99)}%)"
        return f"{self.info.name} ({where}): {state}"


class _Driver:
    """Hands out plans and tasks to the workers, records segments, joins finished files."""

    def __init__(
        self,
        cluster: Cluster,
        jobs: list[Job],
        opts: CheckedOptions,
        *,
        restorer: Any,
        progress: Callable[[Progress], None] | None,
        on_file: Callable[[int, BatchItem], None] | None,
        batch: bool,
        said: list[str],
    ) -> None:
        self.cluster, self.ray, self.jobs, self.opts = cluster, cluster.ray, jobs, opts
        self.worker_opts = replace(opts, device=cluster.device)
        self.progress, self.on_file, self.batch = progress, on_file, batch
        self.restorer = [self.ray.put(restorer)] if restorer is not None else []
        self.slots = [_Slot(i, a, w) for i, (a, w) in enumerate(zip(cluster.actors, cluster.workers, strict=True))]
        self.inbox: queue.Queue = queue.Queue()  # from the pre-pass thread
        self.prepass_jobs: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.joiner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dove-join")
        self.t_start = time.perf_counter()
        self._last_report = 0.0
        self._status = ""  # the last status reported
        self._head_checked = 0.0
        self._here = threading.local()  # .job: the file this thread works on (its warnings are that file's)
        self.said = said  # warnings about no one file (a folder run's files each list them); one file's: all
        self._told: set[tuple[int | None, str]] = set()  # what workers said that was said here: (file or None, text)
        self.bugs_said: set[tuple[str, str, int]] = set()  # (batch.record_failure)

    @contextlib.contextmanager
    def _about(self, job: Job | None) -> Iterator[None]:
        """What this thread says meanwhile is about `job` (its result's warnings, in a folder run)."""
        before = getattr(self._here, "job", None)
        self._here.job = job
        try:
            yield
        finally:
            self._here.job = before

    def _warnings(self) -> list[str]:
        """Where a warning said now goes (kept_warnings): the list of the file this thread works on."""
        job = getattr(self._here, "job", None)
        return self.said if job is None else job.warnings

    def _say(self, job: Job | None, said: list[Said]) -> None:
        """Say here what a worker said (Said): about `job`, or (None) the run, as one process would have
        said it (kept_warnings lists it). Each once for its file, or for the run (every worker loads the
        model; a file's tasks may meet the same thing)."""
        with self._about(job):
            for s in said:
                key = (None if job is None else job.index, s.text)
                if key in self._told or (None, s.text) in self._told:
                    continue
                self._told.add(key)
                logging.getLogger(s.logger).log(s.level, "%s", s.text)

    # ---------------------------------------------------------------- the loop

    def run(self) -> None:
        if self.cluster.device == "cpu" and not self.restorer and self.opts.model not in ("bilinear", "tiny"):
            n = len(self.slots)
            log.warning("running on the CPU (%d Ray worker%s): very slow; a CUDA GPU is strongly recommended", n,
                        "s" * (n != 1))  # fmt: skip
        # A single file's warnings are kept as upscale() keeps them (upscale_on_ray: in `said`); a folder's, per file.
        with kept_warnings(self._warnings) if self.batch else contextlib.nullcontext():
            self._run()

    def _run(self) -> None:
        prepass = threading.Thread(target=self._prepass_loop, name="dove-prepass", daemon=True)
        prepass.start()
        try:
            for slot in self.slots:
                self._submit(slot, SlotCall.WARM, slot.actor.warm.remote(self.worker_opts, self.restorer))
            self._report(force=True)
            while any(not job.finished for job in self.jobs):
                self._drain_inbox()
                self._schedule()
                self._wait()
                self._collect_joins()
                self._report()
            for slot in self.slots:
                slot.state = "dead" if slot.dead else "done"
            self._report(force=True)
        except KeyboardInterrupt:
            made = [self._frames_made(job) for job in self.jobs]  # before _abort() forgets the tasks
            self._abort()
            sessions = [(job.session, n) for job, n in zip(self.jobs, made, strict=True) if job.active]
            error = Interrupted("interrupted")
            for session, n in reversed(sessions):  # the message of the first file still running
                if session is not None:
                    error = session.interrupted(n)
                    session.release()
            raise error from None
        except BaseException as exc:
            if not self.cluster.gone:
                self._abort()
            said = not isinstance(exc, ClusterGone)  # its line says what is kept (the first file's)
            for job in self.jobs:
                if job.active and job.session is not None:
                    job.session.annotate_failure(None if said else exc, job.frames_total())
                    said = True
                    job.session.release()
            raise
        finally:
            self.stop.set()
            self.prepass_jobs.put(None)
            self.joiner.shutdown(wait=False)

    def _abort(self) -> None:
        """Stop the work in flight: the workers restart without it (nothing half-written is used)."""
        for slot in self.slots:
            if slot.kind is SlotCall.RUN and not slot.dead:
                self._cancel(slot)

    def _cancel(self, slot: _Slot) -> None:
        slot.cancelled = True
        try:
            self.ray.kill(slot.actor, no_restart=False)
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _submit(self, slot: _Slot, kind: SlotCall, call: Any, job: Job | None = None) -> None:
        slot.kind, slot.call, slot.job, slot.since = kind, call, job, time.monotonic()

    def _idle(self, slot: _Slot) -> None:
        """Ready for the next call (an events() poll still in flight is kept: it may carry events of
        the next task)."""
        slot.kind, slot.call, slot.job, slot.task = None, None, None, None
        slot.state = "idle"

    # ---------------------------------------------------------------- jobs

    def _setup(self, job: Job) -> bool:
        """Probe the input, check the output, take the work folder's lock; False if the file fails."""
        with self._about(job):
            return self._set_up(job)

    def _set_up(self, job: Job) -> bool:
        import torch

        try:
            if job.info is None:
                _prepare_job(job, self.opts)
            assert job.info is not None and job.opts is not None
            opts = job.opts
            device, dtype = torch.device(self.cluster.device), self.cluster.dtype(opts)
            fingerprint = resume.run_fingerprint(opts, job.info, device, dtype)
            job.session = resume.Session(job.output, fingerprint, resume=opts.resume, overwrite=opts.overwrite,
                                         note=self.batch)  # fmt: skip
            previous = job.session.check(False)
        except DoveError as exc:
            self._fail(job, exc)
            return False
        plan_opts = replace(self.worker_opts, crop=opts.crop)  # the file's own crop (--crop auto: found per file)
        job.plan_opts = replace(plan_opts, chunk=previous.chunk, tile=previous.tile) if previous else plan_opts
        job.t_start = time.perf_counter()
        return True

    def _start(self, job: Job, plan: Plan) -> None:
        """The plan is known: prepare the work folder and start the pre-pass."""
        with self._about(job):
            self._started(job, plan)

    def _started(self, job: Job, plan: Plan) -> None:
        from dove_cli.upscaling import output_options

        assert job.session is not None and job.info is not None
        job.plan = plan
        try:
            job.made = video_io.make_output_folder(job.output)
            job.session.start(plan.chunk, plan.tile, gaps=True)
            assert job.session.work is not None and job.session.journal is not None
            job.run_id = uuid.uuid4().hex
            (job.session.work.path / RUN_TOKEN).write_text(job.run_id)
            assert job.opts is not None
            writer_options, job.join = output_options(job.opts)
            file_h, file_w = plan.file_size()  # with --compare, both halves
            job.options = resume.segment_options(job.output, written_info(job.info, job.opts), file_w, file_h,
                                                 writer_options=writer_options, join_options=job.join)  # fmt: skip
        except OSError as exc:
            self._fail(job, OutputError(f"{job.output}: cannot prepare the work folder ({exc.strerror})"))
            return
        except DoveError as exc:
            self._fail(job, exc)
            return
        job.changes = sorted(((s, t) for s, t in job.session.journal.tile_changes), key=lambda c: c[0])
        workers = len([s for s in self.slots if not s.dead])
        job.target = max(resume.SEGMENT_MIN_FRAMES, min(TASK_MAX_FRAMES, plan.frames // (workers * TASKS_PER_WORKER)))
        job.state = JobState.RUNNING
        job.prepass = PrePass(job.input, job.output, job.info, job.opts, plan)  # (its crop: --crop auto's, found)
        if job.item is not None and self.on_file:
            job.item.status = "running"
            self.on_file(job.index, job.item)
        self.prepass_jobs.put(job)

    def _prepass_loop(self) -> None:
        """(thread) The pre-passes, one file after another, each segment as soon as it is closed."""
        while not self.stop.is_set():
            job = self.prepass_jobs.get()
            if job is None:
                return
            try:
                assert job.prepass is not None
                with self._about(job):
                    for seg in job.prepass.segments(self.stop):
                        if job.state is JobState.FAILED:
                            break
                        self.inbox.put((job, seg))
                self.inbox.put((job, None))
            except BaseException as exc:  # handed to the driver's loop
                self.inbox.put((job, exc))

    def _drain_inbox(self, timeout: float = 0.0) -> None:
        while True:
            try:
                job, what = self.inbox.get(timeout=timeout)
            except queue.Empty:
                return
            timeout = 0.0
            if job.state is not JobState.RUNNING:
                continue
            if what is None:
                job.prepass_done = True
            elif isinstance(what, BaseException):
                self._fail(job, what)
            else:
                self._add_segment(job, what)

    def _add_segment(self, job: Job, seg: SegmentPlan) -> None:
        assert job.session is not None and job.session.journal is not None
        job.add_segment(seg, next((s for s in job.session.journal.segments if s.first == seg.first), None))

    # ---------------------------------------------------------------- scheduling

    def _schedule(self) -> None:
        for slot in self.slots:
            if slot.dead or slot.kind:
                continue
            job = self._next_to_plan()
            if job is not None:
                job.state = JobState.PLANNING
                slot.state = f"planning {job.input.name}"
                opts = job.plan_opts or self.worker_opts
                call = slot.actor.plan.remote(job.info, opts, job.checked, spoken(), self.restorer)
                self._submit(slot, SlotCall.PLAN, call, job)
                self._report(force=True)  # (a plan can be made between two polls: said all the same)
                continue
            picked = self._next_task()
            if picked is None:
                slot.state = "idle"
                continue
            job, task = picked
            slot.task, slot.written, slot.accepted = task, task.part.first, task.part.first
            slot.cancelled = False
            slot.state = f"{job.input.name} frames {task.part.first}-{task.part.stop - 1}"
            self._submit(slot, SlotCall.RUN, slot.actor.run.remote(task, self.restorer), job)
            if slot.poll is None:
                slot.poll = slot.actor.events.remote(POLL_S)
            job.hand_out(task.id, task.segments)

    def _next_to_plan(self) -> Job | None:
        """The next file to plan: at most two files ahead of those whose pre-pass has ended."""
        ahead = (JobState.PLANNING, JobState.RUNNING)
        if sum(1 for j in self.jobs if j.state in ahead and not (j.state is JobState.RUNNING and j.prepass_done)) >= 2:
            return None
        for job in self.jobs:
            if job.state is JobState.WAITING and (job.session is not None or self._setup(job)):
                return job
        return None

    def _next_task(self) -> tuple[Job, Task] | None:
        """The next task: segments of the first running file with some pending (Job.next_segments)."""
        for job in self.jobs:
            if job.state is not JobState.RUNNING or not (indices := job.next_segments()):
                continue
            assert job.plan is not None and job.session is not None and job.session.work is not None
            assert job.info is not None
            segs = [job.segments[i] for i in indices]
            task = Task(
                id=uuid.uuid4().hex, input=str(job.input), output=str(job.output),
                work=str(job.session.work.path), run_id=job.run_id, info=job.info,
                opts=replace(job.opts or self.opts, device=self.cluster.device), plan=job.plan, options=job.options,
                part=make_part(segs),
                ends=[s.stop for s in segs], tile_changes=list(job.changes), segments=indices, spoken=spoken(),
            )  # fmt: skip
            return job, task
        return None

    # ---------------------------------------------------------------- answers

    def _wait(self) -> None:
        self._check_cluster(every=1.0)  # (calls to workers on a cluster gone never answer)
        refs: dict[Any, tuple[_Slot, str]] = {}
        for slot in self.slots:
            if slot.call is not None:
                refs[slot.call] = (slot, "call")
            if slot.poll is not None:
                refs[slot.poll] = (slot, "poll")
        if not refs:
            self._drain_inbox(timeout=0.05)
            return
        ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=0.05)
        if ready:
            ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            slot, what = refs[ref]
            if what == "poll" and ref is slot.poll:
                self._on_poll(slot, ref)
            elif what == "call" and ref is slot.call:  # not replaced by an earlier answer in this batch
                self._on_call(slot, ref)
        for slot in self.slots:
            if slot.kind is SlotCall.HELLO and time.monotonic() - slot.since > START_TIMEOUT_S:
                self._dead(slot)

    def _on_call(self, slot: _Slot, ref: Any) -> None:
        ray = self.ray
        kind, job = slot.kind, slot.job
        slot.call = None
        try:
            value = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            self._task_error(slot, kind, job, exc)
            return
        except ray.exceptions.RayError as exc:  # the worker died, or cannot be reached
            if kind is not SlotCall.HELLO:
                self._lost(slot, exc)
            elif isinstance(exc, ray.exceptions.ActorDiedError):
                self._dead(slot)
            else:  # restarting: ask again
                time.sleep(0.1)
                self._submit(slot, SlotCall.HELLO, slot.actor.hello.remote())
            return
        if kind is SlotCall.RUN:
            slot.call = None  # its TaskEnded event comes through events()
        elif kind is SlotCall.PLAN:
            assert job is not None
            self._idle(slot)
            plan, said = value
            self._say(job, said)  # its notes and warnings (say_plan), as one process says them
            if job.state is JobState.PLANNING:
                self._start(job, plan)
        else:  # warm, hello
            if kind is SlotCall.WARM:
                self._say(None, value)  # what loading the model said (--attention on a model without it)
            if kind is SlotCall.HELLO:
                slot.info.pid = value["pid"]
            self._idle(slot)

    def _on_poll(self, slot: _Slot, ref: Any) -> None:
        ray = self.ray
        slot.poll = None
        try:
            events = ray.get(ref)
        except ray.exceptions.RayError as exc:
            if slot.kind is SlotCall.RUN:
                self._lost(slot, exc)
            return
        for event in events:
            task, job = slot.task, slot.job
            if task is None or job is None or event.task != task.id:
                continue  # of a task given up on
            if isinstance(event, Written):
                slot.written = event.frames
            elif isinstance(event, TileChanged):
                self._tile_change(job, event.start, event.tile)
            elif isinstance(event, Warned):
                self._say(job, [event.said])
            elif isinstance(event, SegmentDone):
                self._segment(job, slot, event)
            elif isinstance(event, TaskEnded):
                self._task_end(job, slot, event.stats)
        if slot.kind is SlotCall.RUN and slot.poll is None:
            slot.poll = slot.actor.events.remote(POLL_S)

    def _segment(self, job: Job, slot: _Slot, event: SegmentDone) -> None:
        """A worker's segment is whole on disk: saved in the journal if the job keeps it (Job.accept)."""
        assert job.session is not None and job.session.work is not None and job.session.journal is not None
        seg = event.segment
        job.note_late_captions(event.late)
        planned = job.planned(seg)
        if planned is None:
            self._fail(job, RuntimeError(f"{job.input}: a worker wrote frames {seg.first}-{seg.first + seg.frames - 1} "
                                         "as a segment, which the driver's plan does not have"))  # fmt: skip
            return
        slot.accepted = seg.first + seg.frames
        if job.accept(planned.index, seg, [(w, t) for w, t in event.tiles], slot.info.name):
            job.session.journal.segments.append(seg)
            job.session.work.append(seg)
        self._fail_if_given_up(job)

    def _tile_change(self, job: Job, start: int, tile: int) -> None:
        """A worker shrank its tiles (out of memory) from the window at `start` on: said, and listed in
        the journal (Job.tile_change: the segments it makes stale are made again)."""
        assert job.session is not None and job.session.work is not None and job.session.journal is not None
        if not job.tile_change(start, tile):
            return
        with self._about(job):
            log.warning("%s: out of GPU memory at frame %d; tiles of %s from there on", job.input, start,
                        f"{tile} px" if tile else "whole frames")  # fmt: skip
        job.session.journal.tile_changes = [list(c) for c in job.changes]
        self._fail_if_given_up(job)
        job.session.journal.segments = job.saved()
        job.session.work.save(job.session.journal)

    def _task_end(self, job: Job, slot: _Slot, stats: TaskStats) -> None:
        job.add_stats(stats)
        assert slot.task is not None
        job.give_back(slot.task.id, slot.task.segments)  # segments it did not report (none, normally)
        self._fail_if_given_up(job)
        self._idle(slot)

    def _lost(self, slot: _Slot, exc: BaseException) -> None:
        """A worker died (killed, out of host memory, its machine lost): redo its unreported segments
        elsewhere, and wait for Ray to restart it."""
        self._check_cluster()
        task, job, cancelled = slot.task, slot.job, slot.cancelled
        if task is not None and job is not None:
            left = job.give_back(task.id, task.segments, died=not cancelled)
            if left and not cancelled:
                first, last = job.segments[left[0]].first, job.segments[left[-1]].stop - 1
                with self._about(job):
                    log.warning("%s: Ray worker %s died (%s); frames %d-%d go back to the queue", job.input,
                                slot.info.name, type(exc).__name__, first, last)  # fmt: skip
            self._fail_if_given_up(job)
        elif job is not None and slot.kind is SlotCall.PLAN and job.state is JobState.PLANNING:
            job.state = JobState.WAITING  # planned by the next free worker
        slot.poll, slot.task, slot.job, slot.cancelled = None, None, None, False
        slot.state = "restarting"
        self._submit(slot, SlotCall.HELLO, slot.actor.hello.remote())

    def _check_cluster(self, every: float = 0.0) -> None:
        """The cluster went away (`ray stop`): stop at once, rather than wait for workers that will not
        come back (Ray's core would end this process after GCS_RECONNECT_S). `every`: at most that often."""
        now = time.monotonic()
        if now - self._head_checked < every:
            return
        self._head_checked = now
        if not self.cluster.head_alive():
            self.cluster.gone = True
            where = "" if self.batch else f"{self.jobs[0].input}: "
            raise ClusterGone(f"{where}the Ray cluster went away (`ray stop`, or its head node was lost)")

    def _dead(self, slot: _Slot) -> None:
        slot.dead, slot.state, slot.kind, slot.call, slot.poll = True, "dead", None, None, None
        if all(s.dead for s in self.slots):
            raise WorkersLost(f"all {len(self.slots)} Ray workers died")

    def _task_error(self, slot: _Slot, kind: SlotCall | None, job: Job | None, exc: Any) -> None:
        """A call raised: a user mistake (the input, the output, the model) or a bug."""
        from dove_cli.errors import ModelError

        cause = getattr(exc, "cause", None) or exc
        self._idle(slot)
        if kind is SlotCall.WARM or isinstance(cause, ModelError):
            raise _as_error(job, cause, exc)  # a model that cannot load: every file would fail the same way
        if job is not None:
            self._fail(job, _as_error(job, cause, exc), _raised_at(exc))

    def _fail(self, job: Job, exc: BaseException, place: tuple[str, int] | None = None) -> None:
        """Stop a file: its work in flight is dropped, its finished segments are kept for --resume.
        In a folder run the others go on, and a bug is logged as batch.record_failure logs it (`place`:
        where a worker raised it)."""
        if job.finished:
            return
        with self._about(job):
            self._failed(job, exc, place)

    def _fail_if_given_up(self, job: Job) -> None:
        """Fail `job` if its bookkeeping gave up on it (workers kept dying, tiles did not settle)."""
        if job.failing is not None:
            self._fail(job, job.failing)

    def _failed(self, job: Job, exc: BaseException, place: tuple[str, int] | None) -> None:
        job.stop(exc)
        for slot in self.slots:
            if slot.job is job and slot.kind is SlotCall.RUN:
                self._cancel(slot)
        if job.session is not None:
            job.session.annotate_failure(exc, job.plan.frames if job.plan is not None else 0)
            job.session.release()
        video_io.remove_made_folders(job.made)
        if not self.batch:
            raise exc
        if job.item is not None:
            from dove_cli.batch import record_failure

            record_failure(job.item, exc, self.bugs_said, place)
            if self.on_file:
                self.on_file(job.index, job.item)

    # ---------------------------------------------------------------- joining

    def _collect_joins(self) -> None:
        for job in self.jobs:
            if job.state is JobState.RUNNING and job.complete():
                job.state = JobState.JOINING
                job.joining = self.joiner.submit(self._join, job)
            busy = any(slot.job is job and slot.kind is SlotCall.RUN for slot in self.slots)  # its last statistics
            if job.state is JobState.JOINING and job.joining is not None and job.joining.done() and not busy:
                try:
                    job.joining.result()
                except Exception as exc:  # noqa: BLE001 - a folder's other files go on (a bug is logged: _fail)
                    self._fail(job, exc)
                    continue
                job.result = self._result(job)
                job.result.warnings = self.said + job.warnings  # (before its manifest is written)
                job.state = JobState.DONE
                if job.manifest is not None:
                    self._write_manifest(job)
                if job.item is not None:
                    job.item.status, job.item.result = "done", job.result
                    if self.on_file:
                        self.on_file(job.index, job.item)

    def _join(self, job: Job) -> None:
        """(join thread) Copy the segments' packets into the output, as a single run's last step."""
        assert job.session is not None and job.session.work is not None and job.info is not None
        t0 = time.perf_counter()
        assert job.opts is not None
        with self._about(job):
            job.session.check_input(job.info)  # as a single run does before its join: a file still being copied
            resume.join_run(job.output, written_info(job.info, job.opts), job.session.work.path,
                            job.saved(), job.options, job.join, job.late_captions)  # fmt: skip
            job.session.finished()
        job.stages["finalize"] = job.stages.get("finalize", 0.0) + time.perf_counter() - t0

    def _result(self, job: Job) -> UpscaleResult:
        """The file's result, as one process's (UpscaleResult.of_parts): its workers' statistics summed
        (Job.add_stats), the frames, cuts and dropped frames its pre-pass counted, the tile last used."""
        from dove_cli.upscaling import StreamStats, UpscaleResult

        assert job.plan is not None and job.prepass is not None
        job.stages["prepass"] = job.prepass.seconds
        stats = StreamStats(
            written=job.prepass.total or 0, resumed_from=job.resumed, windows_run=job.windows_run,
            cuts=job.prepass.cuts, dropped_frames=job.prepass.dropped, tile_used=tile_at(1 << 62, job.changes, job.plan.tile),
            offload_used=job.offload_used, retries=job.retries,
        )  # fmt: skip
        return UpscaleResult.of_parts(
            job.output, job.plan, stats, job.stages, job.device_stages, seconds=time.perf_counter() - job.t_start,
            peak_host_bytes=job.peak_host, peak_device_bytes=job.peak_device, workers=job.workers, redone=job.redone,
        )  # fmt: skip

    def _write_manifest(self, job: Job) -> None:
        from dove_cli.manifest import write_manifest

        assert job.manifest is not None and job.result is not None
        live = next(s for s in self.slots if not s.dead)
        fingerprint = self.ray.get(live.actor.fingerprint.remote(self.worker_opts, self.restorer))
        opts = job.opts or self.opts
        write_manifest(job.manifest, job.input, opts, job.result, fingerprint, job.output)

    # ---------------------------------------------------------------- progress

    def _frames_made(self, job: Job) -> int:
        """Output frames of `job` made so far: in its saved segments, and written by workers into
        segments not yet closed."""
        busy = sum(max(0, s.written - s.accepted) for s in self.slots if s.kind is SlotCall.RUN and s.job is job)
        return job.frames_done() + busy

    def _stage(self) -> str:
        """What the run is doing, in the words of a single run's statuses."""
        if all(job.finished for job in self.jobs):
            return "done"
        if not self.batch and self.jobs[0].state is JobState.PLANNING:  # (a worker may still be loading the model)
            return "planning"
        kinds = {slot.kind for slot in self.slots}
        if SlotCall.WARM in kinds and SlotCall.RUN not in kinds:
            return "loading model"
        if not self.batch:
            job = self.jobs[0]
            if job.state is JobState.JOINING:
                return "joining segments"
            if job.state is JobState.WAITING or not (job.segments or job.prepass_done):
                return "planning"
        return "upscaling"

    def _report(self, force: bool = False) -> None:
        from dove_cli.upscaling import Progress

        now = time.perf_counter()
        if self.progress is None:
            return
        status = self._stage()
        if not force and status == self._status and now - self._last_report < 0.2:
            return
        self._last_report, self._status = now, status
        done = sum(self._frames_made(job) for job in self.jobs)
        total = sum(job.frames_total() for job in self.jobs if job.state is not JobState.FAILED)
        if self.batch:
            finished = sum(1 for job in self.jobs if job.finished)
            window = f"{finished}/{len(self.jobs)} files"
        else:
            job = self.jobs[0]
            more = "" if job.prepass_done else "+"
            window = f"{len(job.done)}/{len(job.segments)}{more} segments" if job.segments else ""
        lines = [slot.line() for slot in self.slots]
        self.progress(Progress(done, max(total, done), window, now - self.t_start, status, workers=lines))


def _as_error(job: Job | None, exc: BaseException, remote: BaseException) -> BaseException:
    """What a worker raised (`exc`, Ray's `remote` RayTaskError's cause), as the driver raises it: a
    DoveError as it is; a bug in one line, chained to `remote`, whose text is the worker's traceback
    (a log of the error shows it)."""
    if isinstance(exc, DoveError):
        return exc
    where = f"{job.input}: " if job is not None else ""
    error = RuntimeError(f"{where}a Ray worker failed: {type(exc).__name__}: {exc}")
    error.__cause__ = remote
    return error


def _raised_at(remote: BaseException) -> tuple[str, int] | None:
    """(file, line) of the last frame in a worker's traceback (a RayTaskError's text), or None."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', str(remote))
    return (frames[-1][0], int(frames[-1][1])) if frames else None


def _prepare_job(job: Job, opts: UpscaleOptions) -> None:
    """Before any worker: probe the input and check the output as upscale() does (one line if either
    is bad), filling in the job's info, options, manifest and written codec."""
    from dove_cli.upscaling import _check_outputs, probe_input, with_release_file

    job.info, said, job.opts = probe_input(job.input, with_release_file(opts, job.output))  # (--crop auto: found)
    opts = job.opts
    _check_ray_output(job.output)
    if (at := first_discontinuity(job.input)) is not None:
        raise InputError(f"{job.input}: its timestamps jump at about {at:.1f} s (recordings joined?): --ray's workers "
                         "seek by time, which such a file does not allow; run it without --ray, or remux it first "
                         "(ffmpeg -i IN -c copy OUT.mkv makes its times continuous)")  # fmt: skip
    checked = _check_outputs(job.output, job.info, opts, False, said)
    job.manifest, job.checked = checked.manifest, checked


def _check_ray_output(output: Path) -> None:
    if video_io.is_pattern(output) or output.suffix.lower() not in video_io.VIDEO_EXTENSIONS:
        raise OptionError(f"{output}: --ray writes video files (segments joined at the end); write images "
                          "without --ray")  # fmt: skip


# ---------------------------------------------------------------------------------------- entry points


def upscale_on_ray(
    input: str | Path,
    output: str | Path,
    opts: CheckedOptions,
    *,
    cluster: Cluster | None = None,
    progress: Callable[[Progress], None] | None = None,
    restorer: Any = None,
) -> UpscaleResult:
    """`upscale()` with Ray workers (see the module's doc); the same output as one process."""
    seen: list[str] = []
    with kept_warnings(seen):  # as upscale() keeps them: the manifest and the result list them
        return _upscale_on_ray(Path(input), Path(output), opts, cluster, progress, restorer, seen)


def _upscale_on_ray(
    input: Path,
    output: Path,
    opts: CheckedOptions,
    cluster: Cluster | None,
    progress: Callable[[Progress], None] | None,
    restorer: Any,
    seen: list[str],
) -> UpscaleResult:
    job = Job(0, input, output)
    _prepare_job(job, opts)  # a bad input or output fails before Ray starts
    from dove_cli.manifest import ManifestLock, write_failure_manifest

    held = ManifestLock(job.manifest) if job.manifest is not None else None
    if held is not None:
        held.hold()  # another run writing it: refused before Ray starts
    try:
        _run([job], opts, cluster=cluster, progress=progress, restorer=restorer, on_file=None, said=seen)
    except BaseException as exc:
        if job.manifest is not None:  # as upscale() without Ray: a run that began says how it ended
            write_failure_manifest(job.manifest, job.input, opts, job.plan, None, job.output, exc)
        raise
    finally:
        if held is not None:
            held.release()
    assert job.result is not None
    return job.result


def upscale_batch_on_ray(
    items: list[BatchItem],
    opts: CheckedOptions,
    *,
    cluster: Cluster | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_file: Callable[[int, BatchItem], None] | None = None,
    restorer: Any = None,
) -> None:
    """The files of a folder spread over the workers (long ones split into segments); fills in each
    item's status, result or error. Bad options, a model that cannot load and Ctrl-C stop it all."""
    jobs = []
    for index, item in enumerate(items):
        if item.status != "pending":  # skipped, or failed by plan_batch
            if on_file:
                on_file(index, item)
            continue
        jobs.append(Job(index, item.input, item.output, item=item))
    if jobs:
        _run(jobs, opts, cluster=cluster, progress=progress, restorer=restorer, on_file=on_file)


def _run(
    jobs: list[Job],
    opts: CheckedOptions,
    *,
    cluster: Cluster | None,
    progress: Callable[[Progress], None] | None,
    restorer: Any,
    on_file: Callable[[int, BatchItem], None] | None,
    said: list[str] | None = None,
) -> None:
    """Run `jobs` on `cluster` (or on one started for them): a folder's files, or one file's (`said`:
    where its warnings are kept)."""

    def drive(on: Cluster) -> None:
        _Driver(on, jobs, opts, restorer=restorer, progress=progress, on_file=on_file, batch=said is None,
                said=[] if said is None else said).run()  # fmt: skip

    if cluster is not None:
        drive(cluster)
        return

    def starting() -> None:  # (the mistakes that need no runtime, the address too, are said before it: one line)
        if progress is not None:
            from dove_cli.upscaling import Progress

            total = sum(job.info.num_frames for job in jobs if job.info is not None)
            progress(Progress(0, total, "", 0.0, "starting Ray workers"))

    quiet = at_command_line()  # Ray's own output held back for a `dove` command, not in another program
    with Cluster(opts.ray or "local", opts.workers, device=opts.device, starting=starting, quiet=quiet) as own:
        drive(own)


__all__ = [
    "Cluster",
    "ClusterGone",
    "PrePass",
    "SegmentPlan",
    "Worker",
    "WorkersLost",
    "upscale_batch_on_ray",
    "upscale_on_ray",
]
