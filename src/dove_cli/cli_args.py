"""The `dove` command line's words before and after click reads them: pure functions of argv.

Before: `-v` where a user types it, `~` expanded where a shell did not, a command's options moved
from after `--`, and the mistakes click would misread (a carriage return, an option taken as a
value, another tool's option) said in one line. After: click's usage error as that one line, with
a hint where the words show what was meant. cli.main applies them; foreign.py is the table of other
tools' options.
"""

from __future__ import annotations

import os
import shutil
from itertools import islice
from pathlib import Path
from typing import Any

# typer's (pydantic's) validation words, as a user would say them: its prefix is no news to a user.
TYPER_WORDS = {"Value error, ": "",
               "Input should be a valid integer, unable to parse string as an integer": "not a whole number",
               "Input should be a valid number, unable to parse string as a number": "not a number"}  # fmt: skip


def verbose_first(argv: list[str]) -> list[str]:
    """`-v` / `--verbose` where a user types it (`dove upscale a.mp4 -o b.mp4 -v`) goes before the
    command, where click looks for the app's options (before a `--`, which ends the options)."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [arg for arg in argv[:end] if arg in ("-v", "--verbose")]
    return flags + [arg for i, arg in enumerate(argv) if i >= end or arg not in ("-v", "--verbose")]


def home_expanded(argv: list[str]) -> list[str]:
    """A leading `~` (`~/clips`, `~user/clips`) in an argument, or in the value of `--output=~/x`, as
    the home folder: a shell expands it only unquoted and not after `--opt=`, and a folder literally
    named `~` was made instead (a later `rm -rf ~` would remove the home folder). No option of dove
    takes a value that starts with `~`; `./~` names such a folder."""

    def expanded(arg: str) -> str:
        if arg.startswith("~"):
            return os.path.expanduser(arg)
        option, eq, value = arg.partition("=")
        return f"{option}={os.path.expanduser(value)}" if option.startswith("--") and eq and value[:1] == "~" else arg

    return [expanded(arg) for arg in argv]


def crlf_mistake(args: list[str]) -> str | None:
    """An argument ending in a carriage return (a script saved with Windows line endings; the terminal
    hides it, and no name or value wants one): said with the command that converts the script."""
    crlf = [arg for arg in args if arg.endswith("\r")]
    if not crlf:
        return None
    # stock Ubuntu and WSL have no dos2unix; sed is everywhere
    fix = "dos2unix SCRIPT" if shutil.which("dos2unix") else "sed -i 's/\\r$//' SCRIPT"
    return (f"the argument {crlf[0]!r} ends in a carriage return: is the script saved with Windows line"
            f" endings? ({fix} converts it)")  # fmt: skip


def command_options(args: list[str], group: Any) -> dict[str, bool]:
    """The options of the command of `group` (the app's click group) that `args` run (`upscale`), each
    with whether it takes a value; none for a group of commands (`train`) or no command."""
    from typer.core import TyperGroup

    name = next((arg for arg in args if not arg.startswith("-")), None)
    command = group.commands.get(name or "")
    if command is None or isinstance(command, TyperGroup):
        return {}
    options = [p for p in command.params if p.param_type_name == "option"]
    return {o: not (p.is_flag or p.count) for p in options for o in (*p.opts, *p.secondary_opts)}


def option_name(arg: str, options: dict[str, bool]) -> str | None:
    """The option `arg` is (`--model`, `--model=x`), or None for a file name, an existing file included."""
    name = arg.partition("=")[0] if arg.startswith("--") else arg
    return name if name in options and not os.path.lexists(arg) else None


def positional_words(args: list[str], options: dict[str, bool]) -> list[str]:
    """The words of `args` that are no option nor an option's value: the command, then its arguments
    (every word after `--`, and an existing file's name however it starts)."""
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            words.extend(rest)
        elif (option := option_name(arg, options)) is not None:
            if options[option] and "=" not in arg:
                next(rest, None)
        elif not arg.startswith("-") or os.path.lexists(arg):
            words.append(arg)
    return words


def options_before_dashes(args: list[str], options: dict[str, bool]) -> list[str]:
    """`dove upscale -- -Probe.mp4 -o out.mp4`: after `--` click takes every word as a file name, so
    -o went missing. The command's own options written after it (never an existing file's name) are
    moved, with their values, before it, where they mean what the user meant."""
    if "--" not in args:
        return args
    end = args.index("--")
    moved: list[str] = []
    names: list[str] = []
    rest = iter(args[end + 1 :])
    for arg in rest:
        if (option := option_name(arg, options)) is None:
            names.append(arg)
            continue
        moved.append(arg)
        if options[option] and "=" not in arg:
            moved.extend(islice(rest, 1))  # its value, as it is
    return args[:end] + moved + ["--"] + names


def option_as_value(args: list[str], options: dict[str, bool]) -> str | None:
    """`-o --dry-run` (the name forgotten): click takes the next option as -o's value, and the output
    was then "--dry-run: no extension". Said as the missing value."""
    end = args.index("--") if "--" in args else len(args)
    for said, value in zip(args[:end], args[1:end]):  # noqa: B905 (one shorter)
        if options.get(said) and option_name(value, options):
            missing = "the output name" if said in ("-o", "--output") else "its value"
            return f"{said} got {value!r}, which is an option: {missing} is missing"
    return None


def foreign_mistake(args: list[str], options: dict[str, bool]) -> str | None:
    """Another tool's option typed to `dove upscale` (`-c:v`, `--fp32`, `--outscale`): the dove way, said
    before click guesses a near name (`--fps`) or splits `-ss` into dove's `-s`."""
    from dove_cli.foreign import foreign_option

    name = next((arg for arg in args if not arg.startswith("-")), None)
    return foreign_option(args[args.index(name) + 1 :], options) if name == "upscale" else None


def usage_line(
    message: str, command_path: str | None, unknown: str | None, args: list[str], options: dict[str, bool]
) -> str:
    """click's usage error `message` as dove's one line: typer's words plain, a pointer to the
    command's --help (`command_path`), and a hint where the words show what was meant (`unknown`:
    the option click did not know)."""
    hint = f" (see '{command_path} --help')" if command_path is not None else ""
    for said, plain in TYPER_WORDS.items():
        message = message.replace(said, plain)
    from dove_cli.foreign import several_inputs  # `dove upscale *.mp4 -o out/`

    message = several_inputs(message, args, options) or message
    hints = _dash_name_hint(unknown, args) + _output_hint(message, args, options) + _scale_hint(message)
    return f"{message.rstrip('.')}{hint}{hints}"


def _dash_name_hint(option: str | None, args: list[str]) -> str:
    """`dove upscale -clip.mp4`: a file name starting with '-' is read as options (`No such option:
    -c`); said when an argument starting with the unknown option is a file, or named like a video."""
    from dove_cli.video_io.formats import FOLDER_EXTENSIONS, READ_IMAGE_EXTENSIONS

    known = {*FOLDER_EXTENSIONS, *READ_IMAGE_EXTENSIONS}
    for arg in args:
        if option and arg.startswith(option) and (Path(arg).suffix.lower() in known or Path(arg).is_file()):
            return f"; a file name that starts with '-'? write it as ./{arg}"
    return ""


def _output_hint(message: str, args: list[str], options: dict[str, bool]) -> str:
    """`dove upscale in.mp4 out.mp4` (as cp is written): the last of two names offered as -o's."""
    if not message.startswith("Missing option '--output'"):
        return ""
    words = positional_words(args, options)
    if len(words) <= 2:  # (the first is the command)
        return ""
    if os.path.lexists(words[-1]):  # a second input (`dove upscale a.mp4 b.mp4`): never offered as the output
        return f"; {words[-1]} exists: dove upscale takes one input, and -o names a new file or a folder"
    return f"; did you mean -o {words[-1]}?"


def _scale_hint(message: str) -> str:
    """`--scale 3.5` (Real-ESRGAN's --outscale): the model's factor is whole; another size is --size's."""
    if message.startswith("Invalid value for '--scale'") and "not a whole number" in message:
        return "; the model upscales by a whole factor (2, 3, 4): for another size resample with --size WxH or --size 1080p"
    return ""
