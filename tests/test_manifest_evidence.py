"""A manifest as an evidence record (dashcam trial F5): the input's and output's size, time and sha256,
and when a single file's run started and ended. The hashes are checked against hashlib over the files,
and an image sequence's against the `sha256sum` binary, never against dove's own code."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from dove_cli.batch import upscale_batch
from dove_cli.upscaling import upscale
from media import make_clip

OPTS = dict(model="bilinear", scale=2, chunk=9, chunk_overlap=2, tile=0, device="cpu")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def modified(path: Path) -> float:
    return path.stat().st_mtime


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("evidence") / "cam.mp4", frames=4, size="32x24")


def test_a_single_files_manifest_records_the_input_and_output_and_its_times(clip, tmp_path):
    """The manifest held no hash, size or time of the input or output, and no start or end (a folder's
    had them). Now: sizes and sha256 as hashlib reads the files, their times, and the run's start and end."""
    out, manifest = tmp_path / "out.mkv", tmp_path / "run.json"
    before = datetime.now().astimezone().replace(microsecond=0)
    upscale(clip, out, manifest=str(manifest), **OPTS)
    after = datetime.now().astimezone()
    doc = json.loads(manifest.read_text())
    assert (doc["input_sha256"], doc["output_sha256"]) == (sha256(clip), sha256(out))
    assert (doc["input_bytes"], doc["output_bytes"]) == (clip.stat().st_size, out.stat().st_size)
    assert doc["input_images"] is None and doc["output_images"] is None
    for key, path in (("input_modified", clip), ("output_modified", out)):
        assert abs(datetime.fromisoformat(doc[key]).timestamp() - modified(path)) < 0.001
    started, finished = (datetime.fromisoformat(doc[k]) for k in ("started_at", "finished_at"))
    assert before <= started < finished <= after


def test_an_image_sequences_hash_is_sha256sums_listing_hashed(clip, tmp_path):
    """An image-sequence output: one sha256 over the lines `sha256sum` prints for its images in name order,
    their count and their bytes in all; the same for an image-sequence input (a dry run hashes nothing)."""
    frames, manifest = tmp_path / "frames" / "%04d.png", tmp_path / "run.json"
    upscale(clip, frames, manifest=str(manifest), **OPTS)
    images = sorted(p.name for p in frames.parent.iterdir())
    listing = subprocess.run(["sha256sum", *images], cwd=frames.parent, capture_output=True, check=True).stdout
    doc = json.loads(manifest.read_text())
    assert doc["output_sha256"] == hashlib.sha256(listing).hexdigest()
    assert (doc["output_images"], doc["output_bytes"]) == (4, sum((frames.parent / n).stat().st_size for n in images))
    newest = max(modified(frames.parent / n) for n in images)
    assert abs(datetime.fromisoformat(doc["output_modified"]).timestamp() - newest) < 0.001
    again = tmp_path / "again.json"
    upscale(frames, tmp_path / "b.mkv", manifest=str(again), **OPTS)
    doc2 = json.loads(again.read_text())
    assert (doc2["input_sha256"], doc2["input_images"]) == (doc["output_sha256"], 4)
    upscale(clip, tmp_path / "c.mkv", manifest=str(again), dry_run=True, overwrite=True, **OPTS)
    assert json.loads(again.read_text())["input_sha256"] is None  # planned: nothing was read


def test_a_folder_manifest_records_each_files_input_and_output(tmp_path):
    """A folder's entries: each done file's input and output size and sha256 (hashlib), read as it
    ended; a re-run that skips them keeps them in `made`."""
    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "run.json"
    src.mkdir()
    make_clip(src / "a.mp4", frames=3, size="32x24")
    make_clip(src / "b.mkv", frames=2, size="32x24", rate="25")
    upscale_batch(src, out, manifest=manifest, **OPTS)
    files = json.loads(manifest.read_text())["files"]
    for f in files:
        source, made = Path(f["input"]), Path(f["output"])
        assert (f["input_sha256"], f["output_sha256"]) == (sha256(source), sha256(made))
        assert (f["input_bytes"], f["output_bytes"]) == (source.stat().st_size, made.stat().st_size)
        assert abs(datetime.fromisoformat(f["input_modified"]).timestamp() - modified(source)) < 0.001
    assert files[0]["input_sha256"] != files[1]["input_sha256"]
    upscale_batch(src, out, manifest=manifest, **OPTS)
    again = json.loads(manifest.read_text())["files"]
    assert [f["status"] for f in again] == ["skipped", "skipped"] and again[0]["output_sha256"] is None
    assert [f["made"]["output_sha256"] for f in again] == [f["output_sha256"] for f in files]
