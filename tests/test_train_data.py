"""Training data on the shared demo clips: listing, skipping, sampling order, workers, real pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DEMO, demo_clip
from dove_cli.errors import InputError
from dove_cli.train import data as T
from dove_cli.video_io import read_clip
from media import ffmpeg_frames, make_clip

CROP = (5, 64, 64)


@pytest.fixture(scope="module")
def demo_dir() -> Path:
    demo_clip("001.mp4")
    return DEMO


@pytest.fixture(scope="module")
def dataset(demo_dir) -> T.TrainDataset:
    return T.TrainDataset(T.scan_sources(demo_dir, CROP), T.DataConfig(crop=CROP, seed=3))


def _write_video(path: Path, frames: np.ndarray, lossless: bool = True) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=16)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "yuv444p"
        s.options = {"qp": "0"} if lossless else {}
        for img in frames:
            for p in s.encode(__import__("av").VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_listing_folders_and_list_files(tmp_path, demo_dir):
    files = T.list_media(demo_dir, T.VIDEO_EXTS)
    assert [p.name for p in files] == [f"00{i}.mp4" for i in range(1, 8)]
    listing = tmp_path / "train.txt"
    listing.write_text(f"# two clips\n{demo_dir / '001.mp4'}\n\n{demo_dir / '003.mp4'}\n")
    assert [p.name for p in T.list_media(listing, T.VIDEO_EXTS)] == ["001.mp4", "003.mp4"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .* files"):
        T.list_media(tmp_path / "empty", T.VIDEO_EXTS)


def test_short_small_and_unreadable_clips_are_skipped_and_counted(tmp_path, demo_dir, caplog):
    for name in ("001.mp4", "002.mp4", "003.mp4"):
        (tmp_path / name).symlink_to(demo_dir / name)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    # 002 is 318x180 (too small for 200x200), 003 is 256x128; 001 (256x256, 100 frames) stays
    src = T.scan_sources(tmp_path, (5, 200, 200))
    assert [v.path.name for v in src.videos] == ["001.mp4"]
    assert src.skipped["too_small"] == 2 and src.skipped["unreadable"] == 1
    assert (f"skipped training files: 1 unreadable ({tmp_path / 'sub' / 'broken.mp4'}); 2 too small, under 200 wide "
            "or 200 high (") in caplog.text  # fmt: skip
    assert src.summary() == "1 clip (3 skipped)"  # what the start of training says it trains on
    src = T.scan_sources(tmp_path, (40, 64, 64))  # 002 has 32 frames
    assert src.skipped["too_short"] == 1 and f"1 too short, under 40 frames ({tmp_path / '002.mp4'})" in caplog.text
    caplog.clear()
    with pytest.raises(
        InputError, match=r"no usable clips .*; skipped 1 unreadable \(.*broken.mp4\); 3 too small, "
    ) as err:
        T.scan_sources(tmp_path, (5, 512, 512))
    assert str(err.value).endswith("; a smaller --resolution FRAMESxHxW takes smaller clips")  # what to change
    assert "skipped training files" not in caplog.text  # said once, in the error


def test_a_sound_only_file_is_said_to_have_no_video_stream(tmp_path, caplog):
    """Not "unreadable" (an internal "tuple index out of range" in `dove degrade`): what it lacks."""
    from media import ffmpeg

    (tmp_path / "good.mp4").symlink_to(demo_clip("001.mp4"))
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.1", "-c:a", "aac", tmp_path / "sound.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 10)
    src = T.scan_sources(tmp_path, CROP)
    assert (src.skipped["no_video"], src.skipped["unreadable"]) == (1, 1)
    assert (f"1 unreadable ({tmp_path / 'broken.mp4'}); 1 without a video stream ({tmp_path / 'sound.mp4'})"
            in caplog.text)  # fmt: skip


def test_a_folder_of_images_as_data_is_pointed_to_images(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.JPG"):
        Image.new("RGB", (8, 8)).save(tmp_path / name, format="PNG" if name.endswith("png") else "JPEG")
    with pytest.raises(InputError, match=r": no .* files found; it holds 2 images: give them as --images \(stage 2"):
        T.scan_sources(tmp_path, CROP)


def test_images_with_transparency_are_named_once(tmp_path, caplog):
    """Only real transparency is said (an alpha opaque everywhere changes nothing, as `dove upscale` judges
    it), in one warning."""
    from PIL import Image

    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 200, 255
    rgba[:, :32, 3] = 0  # the left half transparent, white-ish colours under it
    Image.fromarray(rgba).save(tmp_path / "see.png")
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
    Image.fromarray(rgba[:8, :8]).save(tmp_path / "tiny.png")  # too small: skipped
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "001.mp4").symlink_to(demo_clip("001.mp4"))
    src = T.scan_sources(tmp_path / "clips", (1, 64, 64), images=tmp_path)
    assert len(src.images) == 3 and src.summary() == "1 clip and 3 images (1 skipped)"
    said = [r.getMessage() for r in caplog.records if "alpha channel" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"1 image with transparency ({tmp_path / 'see.png'}): the alpha")


def test_many_skipped_files_name_the_first_three_and_count_the_rest(tmp_path, caplog):
    for i in range(5):
        (tmp_path / f"bad{i}.mp4").write_bytes(b"not a video")
    (tmp_path / "good.mp4").symlink_to(demo_clip("001.mp4"))
    T.scan_sources(tmp_path, CROP)
    bad = ", ".join(str(tmp_path / f"bad{i}.mp4") for i in range(3))
    assert f"skipped training files: 5 unreadable ({bad} and 2 more)" in caplog.text


def _noise_clip(path: Path, cut: bool = False) -> Path:
    """30 frames of 64x64 noise (MKV: its header keeps the duration); cut: only its first half
    remains, so the probe counts 30 frames and decoding stops after about 14."""
    _write_video(path, np.random.default_rng(0).integers(0, 255, (30, 64, 64, 3), dtype=np.uint8), lossless=False)
    if cut:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_a_clip_that_fails_partway_is_warned_about_once(tmp_path, caplog):
    good, bad = _noise_clip(tmp_path / "a_good.mkv"), _noise_clip(tmp_path / "b_cut.mkv", cut=True)
    crop = (9, 32, 32)  # 19 intermediate frames: more than the cut clip decodes, wherever they start
    ds = T.TrainDataset(T.scan_sources(tmp_path, crop), T.DataConfig(crop=crop, seed=0))
    loader = T.make_loader(ds, T.GlobalBatchSampler(2, 2, seed=0, end_step=6), num_workers=2)
    batches = list(T.iter_batches(loader))
    assert sum(b["skipped"] for b in batches) >= 3  # drawn and failed several times, in both workers
    assert caplog.text.count(f"skipping {bad}: file ends early: ") == 1
    assert "--ignore-decode-errors" not in caplog.text  # (an upscale's option)
    assert str(good) not in caplog.text


def test_the_only_clip_failing_partway_is_one_line_naming_it(tmp_path):
    bad = _noise_clip(tmp_path / "b_cut.mkv", cut=True)
    crop = (9, 32, 32)
    ds = T.TrainDataset(T.scan_sources(tmp_path, crop), T.DataConfig(crop=crop, seed=0))
    loader = T.make_loader(ds, T.GlobalBatchSampler(1, 1, seed=0, end_step=1), num_workers=1)
    with pytest.raises(InputError) as err:
        list(T.iter_batches(loader))
    assert str(err.value).startswith(f"{bad}: file ends early: ") and "\n" not in str(err.value)
    assert "no other training file" in str(err.value)


def test_samples_are_pure_functions_of_seed_step_position(dataset):
    key = T.SampleKey("video", 2, step=4, position=9)
    a, b = dataset[key], dataset[key]
    assert a["hq"].shape == (3, 5, 64, 64) and a["lq"].shape == (3, 5, 64, 64)
    assert torch.equal(a["hq"], b["hq"]) and torch.equal(a["lq"], b["lq"])
    assert a["hq"].min() >= -1 and a["hq"].max() <= 1 and a["lq"].min() >= -1 and a["lq"].max() <= 1
    c = dataset[T.SampleKey("video", 2, step=5, position=9)]
    assert not torch.equal(a["lq"], c["lq"])
    # the LQ really is a degraded version of the same content: correlated, not equal
    corr = torch.corrcoef(torch.stack([a["hq"].flatten(), a["lq"].flatten()]))[0, 1]
    assert 0.3 < corr < 0.9999


def test_sampler_shards_resumes_and_mixes_images():
    full = T.GlobalBatchSampler(7, 2, seed=1, end_step=10)
    r0 = T.GlobalBatchSampler(7, 1, seed=1, end_step=10, world_size=2, rank=0)
    r1 = T.GlobalBatchSampler(7, 1, seed=1, end_step=10, world_size=2, rank=1)
    for b, x, y in zip(full, r0, r1, strict=False):
        assert b == x + y
    resumed = T.GlobalBatchSampler(7, 2, seed=1, start_step=6, end_step=10)
    assert list(resumed) == list(full)[6:]
    # every epoch visits each clip once
    stream = [k.index for batch in T.GlobalBatchSampler(7, 7, seed=2, end_step=3) for k in batch]
    assert all(sorted(stream[i : i + 7]) == list(range(7)) for i in (0, 7, 14))
    mixed = T.GlobalBatchSampler(7, 2, seed=1, end_step=400, num_images=5, image_ratio=0.8)
    kinds = [b[0].kind for b in mixed]
    assert 0.72 < kinds.count("image") / len(kinds) < 0.88
    assert all(len({k.kind for k in b}) == 1 for b in mixed)


def test_worker_processes_give_the_same_batches(dataset):
    sampler = lambda: T.GlobalBatchSampler(len(dataset), 2, seed=3, end_step=2)  # noqa: E731
    main = list(T.make_loader(dataset, sampler(), num_workers=0))
    workers = list(T.make_loader(dataset, sampler(), num_workers=2))
    assert len(main) == len(workers) == 2
    for a, b in zip(main, workers, strict=False):
        assert torch.equal(a["hq"], b["hq"]) and torch.equal(a["lq"], b["lq"]) and a["kind"] == b["kind"]
    assert main[0]["hq"].shape == (2, 3, 5, 64, 64)


def test_images_are_one_frame_clips(tmp_path, demo_dir):
    from PIL import Image

    frames = read_clip(demo_dir / "005.mp4", 0, 3, 10)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"img{i}.png")
    src = T.scan_sources(demo_dir, CROP, images=tmp_path)
    assert len(src.images) == 3
    ds = T.TrainDataset(src, T.DataConfig(crop=CROP, seed=0, degradation="image_video"))
    item = ds[T.SampleKey("image", 1, 0, 0)]
    assert item["hq"].shape == (3, 1, 64, 64) and item["lq"].shape == (3, 1, 64, 64) and item["kind"] == "image"


@pytest.mark.parametrize(("ext", "rate"), [(".mp4", "25"), (".ts", "25"), (".mkv", "30000/1001")])
def test_a_window_late_in_a_clip_is_the_frames_ffmpeg_decodes_there(tmp_path, ext, rate):
    """Every 2nd frame from frame 14, after a seek to the keyframe before (every 8th is one); an MPEG-TS
    clip (no index: a seek may land late) too. The video starts
    0.48 s after the sound: frames count from the first frame, not from the file's start. A Matroska
    clock of 1 ms puts 29.97 frames/s frame 14 at 467 ms, before 14 / 29.97 s: still frame 14."""
    clip = make_clip(tmp_path / f"clip{ext}", rate=rate, frames=30, audio=True, vf="setpts=PTS+0.5/TB",
                     extra=("-g", "8"))  # fmt: skip
    want = ffmpeg_frames(clip, 64, 48, extra=("-vf", "scale=in_color_matrix=bt601:flags=bicubic"))[14:23:2]
    assert np.array_equal(read_clip(clip, 14, 5, 2), want)
    with pytest.raises(InputError, match=r"ended after 3 of 10 wanted frames$"):
        read_clip(clip, 25, 10, 2)


def test_a_training_clip_with_a_colon_is_read_and_a_bad_one_named_once(tmp_path, monkeypatch):
    """A relative `Teil1:Ende.mp4` was a URL to FFmpeg; an unreadable clip's error named it twice
    (FFmpeg's message carries the name)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Teil1:Ende.mp4").write_bytes(demo_clip("002.mp4").read_bytes())
    assert read_clip(Path("Teil1:Ende.mp4"), 0, 2).shape[0] == 2
    (tmp_path / "bad:clip.mp4").write_text("not a video\n")
    with pytest.raises(
        InputError, match=r"^bad:clip.mp4: not a video FFmpeg can read \(Invalid data found when processing input\)$"
    ):
        read_clip(Path("bad:clip.mp4"), 0, 2)


def test_paired_lq_folders_give_aligned_crops(tmp_path, demo_dir):
    hq = read_clip(demo_dir / "001.mp4", 0, 8, 1)[:, :128, :128]
    lq = F.avg_pool2d(torch.from_numpy(hq).permute(0, 3, 1, 2).float(), 4).round().byte().permute(0, 2, 3, 1).numpy()
    (tmp_path / "hq" / "a").mkdir(parents=True)
    (tmp_path / "lq" / "a").mkdir(parents=True)
    _write_video(tmp_path / "hq" / "a" / "clip.mp4", hq)
    _write_video(tmp_path / "lq" / "a" / "clip.mp4", np.ascontiguousarray(lq))
    src = T.scan_sources(tmp_path / "hq", (4, 64, 64), lq=tmp_path / "lq")
    assert len(src.videos) == 1 and src.lq
    ds = T.TrainDataset(src, T.DataConfig(crop=(4, 64, 64), seed=0))
    hq_c, lq_c = ds._pair(src.videos[0], "video", np.random.default_rng(5))
    assert hq_c.shape == (4, 3, 64, 64) and lq_c.shape == (4, 3, 16, 16)
    assert (F.avg_pool2d(hq_c, 4) - lq_c).abs().max() < 4 / 255  # same place, same frames


def test_raw_dv_training_clips_count_their_frames(tmp_path):
    """FFmpeg's raw DV demuxer says 60000 fps for PAL: a 5-frame clip was counted as 12000 frames,
    and the sampler drew windows far past its end."""
    from media import make_clip

    dv = make_clip(tmp_path / "pal.dv", size="720x576", rate="25", frames=5, codec="dvvideo", extra=("-f", "dv"))
    info = T.probe_video(dv)
    assert info is not None and info.frames == 5
    assert read_clip(dv, 2, 3).shape[0] == 3


def _real_pair_hq(tmp_path: Path, hq: Path, lq_size: str, crop: tuple[int, int, int]) -> torch.Tensor:
    """The HQ frames training takes from a clip whose crop is the whole picture (a real pair's path:
    no degradation in between), [F, H, W, 3] in [0, 1]."""
    (tmp_path / "lq").mkdir()
    make_clip(tmp_path / "lq" / hq.name, size=lq_size, rate="25", frames=crop[0])
    src = T.scan_sources(hq.parent, crop, lq=tmp_path / "lq")
    ds = T.TrainDataset(src, T.DataConfig(crop=crop, seed=0))
    hq_c, _ = ds._pair(src.videos[0], "video", np.random.default_rng(0))
    return hq_c.permute(0, 2, 3, 1)


def test_training_reads_untagged_hd_as_upscale_does(tmp_path):
    """Untagged HD is BT.709, as players and `dove upscale` take it: training read it as BT.601 (up to
    41 codes off), so the model learnt colours inference never feeds it."""
    (tmp_path / "hq").mkdir()
    clip = make_clip(tmp_path / "hq" / "hd.mp4", size="1280x64", rate="25", frames=2)  # 1280 wide: HD
    got = _real_pair_hq(tmp_path, clip, "320x16", (2, 64, 1280)) * 255
    want = ffmpeg_frames(clip, 1280, 64, extra=("-vf", "scale=in_color_matrix=bt709:flags=bicubic"))
    assert np.array_equal(got.round().numpy(), want)
    as_601 = ffmpeg_frames(clip, 1280, 64, extra=("-vf", "scale=in_color_matrix=bt601:flags=bicubic"))
    assert np.abs(as_601.astype(int) - want).max() > 20  # (the clip tells the two apart)


def test_training_keeps_a_10_bit_clip_deeper_than_8_bits(tmp_path):
    """A 10-bit clip is read as `dove upscale` reads it, on the 16-bit scale, not cut to 8 bits."""
    (tmp_path / "hq").mkdir()
    clip = make_clip(tmp_path / "hq" / "deep.mkv", size="64x48", rate="25", frames=2, pix_fmt="yuv444p10le",
                     codec="ffv1")  # fmt: skip
    got = _real_pair_hq(tmp_path, clip, "16x12", (2, 48, 64)).double() * 65535
    zscale = "zscale=matrixin=170m:rangein=limited:matrix=gbr:range=full,format=gbrp16le,format=rgb48le"
    want = ffmpeg_frames(clip, 64, 48, deep=True, extra=("-vf", zscale)).astype(float)
    assert np.abs(got.numpy() - want).max() <= 5  # of 65535 (8 bits would be up to 128 off)


def test_training_finds_every_video_a_folder_upscale_takes(tmp_path):
    """`dove train --data DIR` lists the containers `dove upscale DIR` reads (it missed .m2ts, .mxf, .vob ...)."""
    exts = (".mp4 .mkv .mov .avi .webm .m4v .flv .ts .mts .mpg .mpeg .wmv .y4m .m2ts .mxf .vob .ogv .dv .nut .3gp "
            ".m2v .asf .divx .f4v .mod .tod .mpeg2 .3g2").split()  # fmt: skip
    for ext in exts:
        (tmp_path / f"a{ext}").touch()
    (tmp_path / "notes.txt").touch()
    assert sorted(p.suffix for p in T.list_media(tmp_path, T.VIDEO_EXTS)) == sorted(exts)
    (tmp_path / "bd").mkdir()
    blu_ray = make_clip(tmp_path / "bd" / "00001.m2ts", rate="25", frames=6, extra=("-f", "mpegts"))
    assert [v.path for v in T.scan_sources(blu_ray.parent, (5, 32, 32)).videos] == [blu_ray]


def test_no_usable_clips_names_the_folder_it_looked_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "short.mp4", rate="25", frames=2)
    with pytest.raises(InputError, match=rf"^{tmp_path}: no usable clips \(need >= 5 frames of >= 32x32\); skipped 1"):
        T.scan_sources("", (5, 32, 32))


def test_a_closed_reader_is_freed_without_the_garbage_collector(tmp_path):
    """A reader left for the garbage collector was freed in a forked DataLoader worker, where freeing
    the parent's decoder waited for its threads: the workers hung."""
    import gc
    import weakref

    from dove_cli.video_io import open_reader

    clip = make_clip(tmp_path / "a.mp4", rate="25", frames=8)
    gc.collect()
    gc.disable()
    try:
        with open_reader(clip, warn=False) as reader:
            next(iter(reader))
        freed = weakref.ref(reader)
        del reader
        assert freed() is None
    finally:
        gc.enable()


def test_the_run_folder_lists_each_file_used_or_skipped_and_why(tmp_path):
    """data.json: every file the scan listed, used or not, with its frames and size (as the ffmpeg binary made
    them) and the reason it was skipped; the log says counts and the first names only."""
    import json

    from media import ffmpeg

    data = tmp_path / "data"
    data.mkdir()
    make_clip(data / "a.mp4", frames=6)  # 64x48
    make_clip(data / "short.mp4", frames=3)
    make_clip(data / "small.mp4", frames=6, size="32x48")
    (data / "broken.mp4").write_bytes(b"not a video" * 10)
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.1", "-c:a", "aac", data / "sound.mp4")
    images = tmp_path / "img"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 48)).save(images / "big.png")
    Image.new("RGB", (16, 16)).save(images / "tiny.png")
    src = T.scan_sources(data, (5, 48, 64), images=images)
    T.write_data_record(src, tmp_path)
    got = json.loads((tmp_path / "data.json").read_text())
    assert (got["used"], got["skipped"]) == (2, 5)
    files = {Path(f.pop("path")).relative_to(tmp_path).as_posix(): f for f in got["files"]}
    assert files == {
        "data/a.mp4": {"kind": "video", "frames": 6, "width": 64, "height": 48, "used": True},
        "data/broken.mp4": {"kind": "video", "used": False, "why": "unreadable"},
        "data/short.mp4": {"kind": "video", "frames": 3, "width": 64, "height": 48, "used": False,
                           "why": "too short, under 5 frames"},
        "data/small.mp4": {"kind": "video", "frames": 6, "width": 32, "height": 48, "used": False,
                           "why": "too small, under 64 wide or 48 high"},
        "data/sound.mp4": {"kind": "video", "used": False, "why": "without a video stream"},
        "img/big.png": {"kind": "image", "frames": 1, "width": 64, "height": 48, "used": True},
        "img/tiny.png": {"kind": "image", "frames": 1, "width": 16, "height": 16, "used": False,
                         "why": "too small, under 64 wide or 48 high"},
    }  # fmt: skip


def test_clips_with_a_rotation_tag_are_said_at_the_start(tmp_path):
    """Trained on as stored, as `dove upscale` upscales them by default (--rotate keep); the tags as the
    ffmpeg binary wrote them, the turn in data.json too."""
    from media import ffmpeg

    make_clip(tmp_path / "plain.mp4", frames=6)
    for turn in (90, 180):
        ffmpeg("-display_rotation", turn, "-i", tmp_path / "plain.mp4", "-c", "copy", tmp_path / f"r{turn}.mp4")
    src = T.scan_sources(tmp_path, (5, 48, 64))
    assert src.summary() == ("3 clips; 2 clips carry a rotation tag: trained as stored (rotation does not change "
                             "what super-resolution learns)")  # fmt: skip
    assert {f["path"][-8:]: f.get("rotation") for f in src.files} == {"lain.mp4": None, "/r90.mp4": 90, "r180.mp4": 180}
    (tmp_path / "r90.mp4").unlink()
    assert T.scan_sources(tmp_path, (5, 48, 64)).summary().endswith("; 1 clip carries a rotation tag: trained as stored "
                                                                   "(rotation does not change what super-resolution learns)")  # fmt: skip
