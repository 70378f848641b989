"""Image patterns (what names one: `is_pattern`; its names and numbers: sequences.py), and output-path
safety: never the input, never an overwrite unasked, folders made only when needed (and removed again
when nothing was written)."""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import re
import stat
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from dove_cli import note
from dove_cli.errors import FileTooLarge, MuxError, OutputError, TempFailure, as_given
from dove_cli.video_io.formats import READ_IMAGE_EXTENSIONS
from dove_cli.video_io.sequences import FIELD, frame_name, frame_number

log = logging.getLogger(__name__)


def ffmpeg_name(path: str | Path) -> str:
    """The name under which FFmpeg (av.open) opens a local file. FFmpeg reads what comes before a
    colon as a protocol (`Teil1:Ende.mp4` -> protocol `Teil1`, `C:\\x.mp4` -> `C`), so every local
    name goes through its `file:` protocol, which takes the rest as it is."""
    return "file:" + os.fspath(path)


WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]")  # C:\Users\..., C:/Users/...


def check_not_windows(path: Path, error: type[Exception]) -> None:
    """A Windows path (`C:\\Users\\...`, pasted into WSL) on Linux or macOS names no file there: FFmpeg
    would read `C:` as a protocol, a folder named `C:\\Users\\...` would be made. Said before any work,
    with the name WSL gives it (drive C: is /mnt/c)."""
    name = str(path)
    if os.name == "posix" and WINDOWS_PATH.match(name):
        wsl = f"/mnt/{name[0].lower()}/" + re.sub(r"[\\/]+", "/", name[3:])
        raise error(f"{name}: this is a Windows path; under WSL write {wsl}")


def same_but_case(path: Path) -> Path | None:
    """The file in `path`'s folder whose name differs from `path`'s only in case (`Sportfest.MP4` for
    `sportfest.mp4`, which Windows would have opened), or None."""
    try:
        names = [p.name for p in path.parent.iterdir()] if path.name else []
    except OSError:
        return None
    match = [n for n in names if n.casefold() == path.name.casefold()]
    return path.with_name(match[0]) if match else None


def why_missing(path: Path, what: str = "file") -> str:
    """Why `path`, which does not exist, names nothing: a broken symbolic link (its target), a loop of
    links, or no such file (with a name that differs only in case, which Windows would have opened)."""
    if path.is_symlink():  # (not "no such file; did you mean NAME?" of the very name given)
        try:
            os.stat(path)  # (follows the link: ELOOP for a loop, ENOENT for a missing target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link in a loop of links"
        return f"a symbolic link to {os.readlink(path)}, which does not exist"
    near = same_but_case(path)
    return f"no such {what}" + (f"; did you mean {near}?" if near else "")


def is_image_path(path: str | Path) -> bool:
    """An image's name: one dove reads (DPX and EXR too; `open_writer` refuses those as outputs)."""
    return Path(path).suffix.lower() in READ_IMAGE_EXTENSIONS


def writes_to(output: Path, path: Path) -> bool:
    """Whether the run writing `output` would write `path` too: the same file however spelled
    (`OUT/../OUT/a.mp4`, a symlinked folder, a link to it), or one of an image pattern's images
    (`frames/000001.png` of `frames/%06d.png`). For a side file (--manifest, --eval-json) that must
    not replace the picture."""
    if path.resolve() == output.resolve():
        return True
    return (
        is_pattern(output)
        and path.parent.resolve() == output.parent.resolve()
        and (frame_number(output, path.name) is not None)
    )


def is_pattern(path: str | Path) -> bool:
    """Whether `path` names an image sequence (frames/%06d.png): an image extension and exactly one
    %d / %0Nd field. Any other `%` is part of a plain name (`50%_speed.mp4`, `clip 100%.png`)."""
    path = Path(path)
    return is_image_path(path) and len(FIELD.findall(path.name)) == 1


def check_fields(path: Path, error: type[Exception]) -> None:
    """An image name with several %d fields is neither a pattern nor a plain name: refuse it."""
    n = len(FIELD.findall(path.name))
    if n > 1 and is_image_path(path):
        raise error(f"{path}: an image pattern takes exactly one %d field (like frames/%06d.png), not {n}")


def temp_sibling(path: Path, suffix: str = "") -> Path:
    return path.with_name(f".{path.stem}.dove-{uuid.uuid4().hex[:8]}.part{suffix}")


def temp_siblings(path: Path, suffix: str = "") -> list[Path]:
    """The files `temp_sibling` may have made beside `path` (a run killed before its rename leaves one)."""
    name = re.compile(rf"\.{re.escape(path.stem)}\.dove-[0-9a-f]{{8}}\.part{re.escape(suffix)}")
    return [p for p in path.parent.glob(f".{glob.escape(path.stem)}.dove-*.part*") if name.fullmatch(p.name)]


def through_links(path: Path) -> Path:
    """The file that `path` names when it is a symlink: written in its place (as ffmpeg and a shell's `>`
    do), so that the link stays a link. Only a link of this user's, or of its folder's owner (the rule of
    Linux's fs.protected_symlinks): another user's link in a shared folder is refused, or writing
    through it would replace a file of this user's anywhere (checked again as the output is renamed into
    place, for a link planted during the run)."""
    if not path.is_symlink():
        return path
    if hasattr(os, "geteuid"):
        owner = os.lstat(path).st_uid
        if owner not in (os.geteuid(), os.stat(path.parent).st_uid):
            raise OutputError(f"{path}: is a link to {os.readlink(path)} made by another user (uid {owner}); "
                              "refused, as writing through it would replace that file (remove the link, or "
                              "choose another name)")  # fmt: skip
    return Path(os.path.realpath(path))


def name_limit(folder: Path) -> int:
    """The longest file name (bytes) the file system of `folder`, or of its nearest existing parent, holds."""
    base = next((p for p in (folder, *folder.parents) if p.is_dir()), Path("."))
    try:
        return os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_name_length(path: Path) -> None:
    """Refuse, before any work, a name that the file system cannot hold with the names dove makes
    beside it (else a run fails when it joins its segments): its hidden temporary (`.NAME.dove-XXXXXXXX.partEXT`,
    20 bytes more than NAME, as a side file's: write_whole) is the longest; `NAME.dove-work` is 10
    more. An image pattern's frames count too, and the temporary of a folder it makes."""
    names = [temp_sibling(path, path.suffix).name]
    if is_pattern(path):
        names.append(frame_name(path, 10**9) + ".part")
        if not path.parent.exists():
            names.append(temp_sibling(path.parent).name)
    longest = max(len(os.fsencode(name)) for name in names)
    limit = name_limit(path.parent.absolute())
    if longest > limit:
        extra = longest - len(os.fsencode(path.name))
        raise OutputError(f"{path}: name too long by {longest - limit} bytes (dove's temporary names for it are "
                          f"up to {extra} bytes longer, and this file system holds names of up to {limit} bytes); "
                          "choose a shorter name")  # fmt: skip


def write_failed(path: Path, exc: BaseException, detail: str, stream: str = "",
                 written: tuple[int, int] = (0, 0)) -> OutputError:  # fmt: skip
    """The error for a failed write: a full disk or a file-size limit is a TempFailure (exit 75: the
    same command continues once there is room; `written`: the video frames and bytes the file took,
    FileTooLarge.written), a packet the muxer refused a MuxError naming its `stream` kind, anything
    else an OutputError with `detail`. What was kept is not said here: the run's session knows
    (resume.Session.annotate_failure)."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return TempFailure(f"{path}: disk full while writing")
    if code == errno.EDQUOT:
        return TempFailure(f"{path}: disk quota exceeded while writing")
    if code == errno.EFBIG:
        return FileTooLarge(f"{path}: {FileTooLarge.reason}", written)
    if stream:
        return MuxError(f"{path}: write failed ({detail})", stream)
    return OutputError(f"{path}: write failed ({detail})")


def is_special(path: Path) -> bool:
    """A FIFO, a device, a pipe (/dev/stdout, `>(...)`), through links: written to as it is, never read
    (a pipe would wait for ever), never replaced by a file and never "already exists" (a side file
    given as one: --manifest, --json, --csv, --plot)."""
    try:
        return not stat.S_ISREG(mode := os.stat(path).st_mode) and not stat.S_ISDIR(mode)
    except OSError:
        return False


def write_whole(path: Path, data: str | bytes, what: str = "the output") -> None:
    """A side file (a manifest, scores, a plot) whole or not at all: written under a temporary name
    beside it (beside a symlink's target), then renamed onto it; the temporary is removed on any
    failure. A full disk or a kill never leaves half a file that the next run would refuse to replace.
    A special file (`is_special`) is written as it is: renaming a file over a FIFO would leave its
    reader waiting for ever. Text is UTF-8, a name that is not (a Latin-1 byte the file system gave
    as a surrogate) written as its escape, `\\udce9`, as the JSON files and the terminal show it: the
    file stays UTF-8 for any reader. The OSError is raised for the caller to say (write_failed)."""
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else data
    if is_special(path):
        with open_special(path, what) as f:
            f.write(raw)
        return
    target = through_links(path)
    tmp = temp_sibling(target, target.suffix)
    try:
        with open(tmp, "xb") as f:
            f.write(raw)
        replace_keeping_mode(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_keeping_mode(tmp: Path, target: Path) -> None:
    """Rename the finished `tmp` onto `target`. A file it replaces keeps its permissions and, where
    this user may set it, its group (as `cp` and `ffmpeg -y`, which write into the old file, keep them):
    a private 0600 output stays private, not the umask's 0644. Where the file system has no modes
    (FAT), the new file keeps its own."""
    try:
        old = os.stat(target)
    except OSError:
        old = None
    if old is not None and stat.S_ISREG(old.st_mode):
        with contextlib.suppress(OSError):
            os.chown(tmp, -1, old.st_gid)  # (before chmod: a chown may clear the set-id bits)
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
    os.replace(tmp, target)


def umask() -> int:
    """The process's umask: from /proc on Linux (reading it there changes nothing), else by setting it
    and putting it back."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_weights(folder: Path, pattern: str = "*.safetensors") -> None:
    """Give every `.safetensors` file under `folder` (or every file `pattern` matches) the mode any
    other new file gets, 0666 & ~umask: safetensors' `save_file` makes them 0600 whatever the umask, so
    a model or checkpoint shared with a group would have every file readable but its weights; a copied
    file keeps its source's mode. (File systems without modes keep theirs.)"""
    mode = 0o666 & ~umask()
    for path in folder.rglob(pattern):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                os.chmod(path, mode)


def check_writable(path: Path, said: str) -> None:
    """An existing file that this user may not write (chmod 444) is not replaced, even with --overwrite:
    `cp` and `ffmpeg -y` refuse it too. (Replacing needs only the folder's write permission, so the
    file's own is checked here, before any work.)"""
    if path.is_file() and not os.access(path, os.W_OK):
        raise OutputError(f"{said}: is write-protected; make it writable (chmod u+w {path}) or remove it "
                          "to replace it")  # fmt: skip


# A file name for each side file's option, offered when it is given a folder (not the input's name).
SIDE_FILE_NAMES = {"--manifest": "run.json", "--json": "scores.json", "--csv": "scores.csv", "--plot": "scores.png",
                   "--eval-json": "scores.json", "--record": "record.json"}  # fmt: skip


# Names of this process's standard streams: as `-`, never a file to write under a temporary name.
STREAM_NAMES = re.compile(r"/dev/(stdin|stdout|stderr|fd/\d+)|/proc/(self|thread-self|\d+)/fd/\d+")
WHOLE = "the output is written under a temporary name and renamed when whole"


def check_not_stream(path: Path) -> None:
    """A video, image or sequence is written under a temporary name and renamed into place: standard
    output, a named pipe, a device or a socket (or a link to one) can take none of it. Said before any
    work, and such a node is never replaced by a file, not with --overwrite (a pipe's reader would wait
    for ever). A side file (--manifest) is written into them as it is instead (open_special)."""
    name = "/dev/stdout" if str(path) == "-" else os.path.abspath(path)
    if STREAM_NAMES.fullmatch(name):
        stream = "standard output" if name.endswith(("stdout", "/1")) else "a stream"
        raise OutputError(f"{path}: writing to {stream} is not supported ({WHOLE}); give a file name like out.mp4")
    try:
        st = os.stat(path)  # (through links)
    except OSError:
        return
    link = f"is a link to {os.readlink(path)}, " if path.is_symlink() else "is "
    if stat.S_ISCHR(st.st_mode) and os.path.samestat(st, os.stat(os.devnull)):
        raise OutputError(f"{path}: {link}the null device, not a file ({WHOLE}); for a test run, give a file name "
                          "with --dry-run (the plan; nothing is written) or use `dove bench` (the speed)")  # fmt: skip
    if stream := standard_stream(st):  # (a link to /dev/stdout, even where a shell's `>` made that a file)
        raise OutputError(f"{path}: {link}{stream}, which cannot be written ({WHOLE}); give a file name like out.mp4")
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    kind = "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else kind
    raise OutputError(f"{path}: {link}{kind}, which cannot be written ({WHOLE}); write a file, then read that")


def standard_stream(st: os.stat_result) -> str:
    """The name of this process's stream (stdout, stderr) that writes to the file `st` is of, or ""."""
    for fd, stream in ((1, "standard output"), (2, "standard error")):
        with contextlib.suppress(OSError):
            if os.path.samestat(st, os.fstat(fd)):
                return stream
    return ""


def open_special(path: Path, what: str) -> BinaryIO:
    """`path` (a FIFO, a device: `is_special`) opened for writing (`what`: "the manifest", to say).
    A FIFO that nothing reads yet would hold the open without a word once the work is done: said, then
    waited for, as a shell's `>` waits."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # (ENXIO: a FIFO with no reader)
            raise
        log.warning("%s: waiting for a reader of this named pipe, to write %s there", path, what)
        fd = os.open(path, os.O_WRONLY)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "wb")


def check_output(path: Path, overwrite: bool, inputs: Sequence[Path] = (), option: str = "",
                 numbers: Collection[int] | None = None) -> None:  # fmt: skip
    """Fail before any work: never the input, nor a pipe or device (check_not_stream), an existing
    output needs --overwrite, the folder must be creatable (a symlink's target's, which must exist:
    the file is written there), every name dove makes for it must fit. Touches nothing on disk, so it runs before a model loads; the
    writer makes the folder. A side file's `option` (SIDE_FILE_NAMES) is named in each error, its
    folder offered a file name of its own kind, and its name is never a pattern (a plot `p%d.png`
    is one file). An image pattern's `numbers`, where known: those its run writes, the only images
    --overwrite replaces (others there are kept)."""
    said = f"{option} {path}" if option else str(path)
    check_not_windows(path, OutputError)
    if not option:
        check_not_stream(path)
    check_fields(path, OutputError)
    check_name_length(path)
    pattern = is_pattern(path) and not option
    sources = {p.resolve() for p in inputs}
    targets = matching_images(path) if pattern else [path]
    if any(t.resolve() in sources for t in targets):
        raise OutputError(f"{said}: is the input; choose another output name")
    if pattern:
        if path.parent.is_file():
            raise OutputError(f"{path}: {path.parent} is a file, not a folder")
        existing = replaced_images(path, numbers)
        if existing and not overwrite:
            n, names = len(existing), sorted(existing, key=lambda p: frame_number(path, p.name) or 0)
            shown = names[0].name if n == 1 else f"{names[0].name} to {names[-1].name}"
            raise OutputError(f"{path}: {n} of the images this run writes already exist{'s' * (n == 1)} in {path.parent} "
                              f"({shown}); use {as_given('overwrite', True)} to replace {'it' if n == 1 else 'them'} "
                              "(images of other numbers there are kept)")  # fmt: skip
    elif path.is_dir():
        if option:
            raise OutputError(f"{said}: is a folder; give a file name like {path / SIDE_FILE_NAMES[option]}")
        if len(inputs) > 1 or (inputs and inputs[0].is_dir()):  # an image sequence: no one name (a still has its own)
            raise OutputError(f"{path}: is a folder; give a file name such as {path / 'out.mp4'} or an image pattern "
                              f"such as {path / '%06d.png'} (`dove upscale` keeps the images' names in a folder: "
                              f"-o {path}/)")  # fmt: skip
        name = inputs[0].stem + ".mp4" if inputs else "out.mp4"
        raise OutputError(f"{path}: is a folder; give a file name like {path / name}")
    elif path.exists() and not overwrite:
        raise OutputError(f"{said}: already exists (use {as_given('overwrite', True)} to replace it)")
    for t in targets:
        check_writable(t, f"{option} {t}" if option else str(t))
    real = through_links(path)  # a symlink's target is where the file (and its temporary) is written
    if real != path and os.readlink(path).endswith("/"):  # realpath drops the slash: a file named like the folder
        raise OutputError(f"{said}: is a link to a folder, {real}; give a file name")
    if real != path and not real.parent.is_dir():  # not made: a link into an unmounted drive would fill another
        raise OutputError(f"{said}: is a link to {real}, whose folder {real.parent} does not exist")
    folder = real.parent.absolute()
    base = next(p for p in (folder, *folder.parents) if p.exists())
    if not base.is_dir():
        raise OutputError(f"{said}: cannot create folder {folder} ({base} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{said}: folder {base} is not writable")
    check_folder_made(folder, said)


# A folder run's outputs mirror its input's tree under OUT (folders_made_under): those folders are made.
_MADE_UNDER: ContextVar[Path | None] = ContextVar("dove_cli_made_under", default=None)


@contextlib.contextmanager
def folders_made_under(root: Path) -> Iterator[None]:
    """In this block, the folders an output needs under `root` (a folder run's -o OUT) are made as needed."""
    token = _MADE_UNDER.set(root.absolute())
    try:
        yield
    finally:
        _MADE_UNDER.reset(token)


def check_folder_made(folder: Path, said: str) -> None:
    """Only an output's own folder is made (`-o new/x.mp4`, said as it is made), and in a folder run the
    tree under its OUT: where more folders are missing, -o holds a typo far more often than a wish
    (`-o /nonexist/x.mp4` as root made /nonexist), and ffmpeg and cp make none. Refused, naming the
    first missing folder."""
    folder = folder.absolute()
    root = _MADE_UNDER.get()
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    allowed = [p for p in missing if p == folder or root is not None and p.is_relative_to(root)]
    if len(allowed) < len(missing):
        raise OutputError(f"{said}: folder {missing[-1]} does not exist; create it first, or correct the name "
                          "(dove makes only the folder the output goes in, not a path to it)")  # fmt: skip


def matching_images(pattern: Path) -> list[Path]:
    """Files in the pattern's folder that the pattern (frames/%06d.png) could have written (frame_number)."""
    if not pattern.parent.is_dir():
        return []
    return [p for p in pattern.parent.iterdir() if frame_number(pattern, p.name) is not None]


def replaced_images(pattern: Path, numbers: Collection[int] | None) -> list[Path]:
    """The images of `pattern` that a run writing the images `numbers` replaces (None: not known, all
    that it names, `matching_images`)."""
    if numbers is None:
        return matching_images(pattern)
    wanted = set(numbers)
    return [p for p in matching_images(pattern) if frame_number(pattern, p.name) in wanted]


def prepare_output(path: Path, overwrite: bool) -> Path | None:
    """Refuse to replace `path` unless asked; create its folder (returns the topmost one made)."""
    check_output(path, overwrite)
    return make_folder(path.parent, path)


def make_folder(folder: Path, path: Path) -> Path | None:
    """Create `folder` (for writing `path`); returns the topmost folder made, for remove_made_folders."""
    top = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")
    return top


def make_output_folder(output: Path) -> Path | None:
    """make_folder for a run's output, saying so when it creates folders (a typo in -o should not go
    unnoticed). Not said for the trial writer that checks options before a run."""
    made = make_folder(output.parent, output)
    if made is not None:
        note.info("%s: created folder %s", output, output.parent)
    return made


def remove_made_folders(folder: Path | None) -> None:
    """Remove folders this writer created, if they are still empty (nothing left behind)."""
    if folder is None:
        return
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [folder]:
        try:
            d.rmdir()
        except OSError:
            return
