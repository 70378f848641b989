"""`dove upscale --eval GT`: the output scored as `dove eval OUTPUT GT` scores it, its mistakes said
before the upscale."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dove_cli import video_io
from dove_cli.errors import DoveError, InputError, OptionError
from dove_cli.metrics.evaluate import ProgressFn, evaluate
from dove_cli.metrics.pairing import check_planned_sizes
from dove_cli.metrics.report import EvalReport, check_result_files
from dove_cli.metrics.selection import fetch_weights, left_to_run, parse_metrics
from dove_cli.video_io.paths import why_missing

if TYPE_CHECKING:
    from dove_cli.options import UpscaleOptions


@dataclass(frozen=True)
class EvalRequest:
    """`dove upscale --eval GT` and its --eval-* options: the output scored as `dove eval OUTPUT GT`
    scores it, right after the upscale. `check` says its mistakes before hours of upscaling; `score`
    runs it after. Messages name the --eval-* flags (the command's own)."""

    gt: Path
    metrics: str | None = None  # --eval-metrics
    json_out: Path | None = None  # --eval-json (`-`: stdout)
    crop_border: int = 0  # --eval-crop-border
    skip_unavailable: bool = False  # --eval-skip-unavailable
    strict: bool = False  # --eval-strict

    @property
    def json_on_stdout(self) -> bool:
        """--eval-json names stdout: its JSON alone goes there, and the table of scores to stderr."""
        from dove_cli.manifest import is_stdout

        return self.json_out is not None and is_stdout(self.json_out)

    def check(
        self, input: Path, output: Path, opts: UpscaleOptions, dry_run: bool = False, recursive: bool = False
    ) -> None:
        """--eval's mistakes before hours of upscaling, not after: with --dry-run or --recursive, the
        metrics, --eval-json, the metric weights (fetched now if missing; --eval-skip-unavailable: those
        not at hand left out, said now, and refused when none is left), and GT against the outputs to be
        (names and sizes; any size that differs with --eval-strict). What is left to fail after the
        upscale is what only reading the output can show (exit 3)."""
        from dove_cli.outputs import is_batch_input
        from dove_cli.streams import check_stdout

        if recursive:
            raise OptionError("--eval matches outputs to GT by name, which sub-folders can repeat: score each folder "
                              "with dove eval OUT_SUB GT_SUB after a --recursive run")  # fmt: skip
        if dry_run:
            raise OptionError("--eval scores an output: it does not go with --dry-run")
        check_stdout("--eval-json's scores" if self.json_on_stdout else "--eval's table of scores")
        if not self.gt.exists() and not video_io.is_pattern(self.gt):  # no images: said by check_planned_sizes
            raise InputError(f"{self.gt} (--eval GT): {why_missing(self.gt, 'file or folder')}")
        names = parse_metrics(self.metrics, True, str(self.gt), option="--eval-metrics")
        json_file = None if self.json_on_stdout else self.json_out
        check_result_files(json_file, None, None, names, [input, self.gt], opts.overwrite, json_option="--eval-json")
        items = planned_outputs(input, output, opts)
        if json_file is not None and (same := [s for s, t in items if video_io.writes_to(t, json_file)]):
            whose = "the output (-o)" if same[0] == input else f"{same[0]}'s output"
            raise OptionError(f"--eval-json {json_file}: is {whose}; give the scores their own name, like "
                              f"{json_file}.json")  # fmt: skip
        self.check_sizes(items, is_batch_input(input), opts)
        left_to_run(names, fetch_weights(names, True, option="--eval-metrics", skip=self.skip_unavailable))

    def check_sizes(self, items: list[tuple[Path, Path]], batch: bool, opts: UpscaleOptions) -> None:
        """The size each output (`items`: each input and its output) will have (`planned_output_size`: --size's, else the input less --crop x
        --scale, or --parity's; --compare doubles it), against GT's, and that --eval-crop-border leaves
        some of it. An input that cannot be read is left to the upscale, which says why (in a folder, per
        file)."""
        from dove_cli.geometry import cropped_info, planned_output_size
        from dove_cli.options import check_options, reader_options
        from dove_cli.upscaling import with_found_crop

        opts = check_options(opts)  # a bad --scale is said as such, not as a size mismatch
        planned: dict[str, tuple[Path, tuple[int, int] | None]] = {}
        for source, target in items:
            name = target.parent.name if video_io.is_pattern(target) else target.stem  # as dove eval names it
            try:
                with video_io.open_reader(source, warn=False, **reader_options(opts)) as reader:
                    file_opts = with_found_crop(
                        reader, opts, []
                    )  # (--crop auto: the upscale finds it again, and says it)
                    info = cropped_info(reader.info, file_opts)
                # --size's, or the model's (--parity: refused where its crop leaves nothing)
                h, w = planned_output_size(info, file_opts)
            except DoveError:
                planned[name] = (target, None)  # its GT is still looked for; its size is unknown
                continue
            if 2 * self.crop_border >= min(w, h):
                raise OptionError(f"--eval-crop-border {self.crop_border} leaves nothing of {target}'s {w}x{h} frames")
            planned[name] = (target, (w, h))
        if planned:
            check_planned_sizes(planned, batch, self.gt, self.strict)

    def score(self, output: Path, opts: UpscaleOptions, progress: ProgressFn | None = None) -> EvalReport:
        """`dove eval OUTPUT GT` after the upscale (its --skip-unavailable and --strict as
        --eval-skip-unavailable and --eval-strict), reading the output as the upscale read its input
        (--parity: bt601); a failure is ScoringFailed, which says the output is fine. Names paired across
        Unicode normalizations are not said again (`check` said them)."""
        from dove_cli.errors import ScoringFailed
        from dove_cli.options import check_options

        untagged = check_options(opts).untagged_matrix
        try:
            return evaluate(
                output,
                self.gt,
                self.metrics,
                device=opts.device,
                progress=progress,
                option="--eval-metrics",
                untagged_matrix=untagged,
                crop_border=self.crop_border,
                skip_unavailable=self.skip_unavailable,
                strict=self.strict,
                say_pairing=False,  # `check` said them, before the upscale
            )
        except DoveError as exc:  # (Ctrl-C, Interrupted, is not one: it stops the command)
            # An input error (a hole, a stray frame) fails `dove eval` the same way: its own text says the fix.
            later = "" if isinstance(exc, InputError) else f"; `dove eval {output} {self.gt}` scores it later"
            raise ScoringFailed(f"{output} was written fine, but scoring it failed: {exc}{later}") from None


def planned_outputs(input: Path, output: Path, opts: UpscaleOptions) -> list[tuple[Path, Path]]:
    """(input, output) of each file `dove upscale INPUT -o OUTPUT` writes: one, or a folder run's."""
    from dove_cli.batch import plan_batch
    from dove_cli.outputs import is_batch_input

    if not is_batch_input(input):
        return [(input, output)]
    return [(i.input, i.output) for i in plan_batch(input, output, overwrite=True, container=opts.container,
                                                     codec=opts.codec)]  # fmt: skip
