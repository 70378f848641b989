"""Session-scoped test clips made with the ffmpeg binary (see media.py).

conftest.py registers these fixtures for every test module (pytest_plugins).
Each clip is generated once per test session into pytest's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from media import ffmpeg, make_clip, make_vfr_clip


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_2997(media_dir: Path) -> Path:
    """64x48, 12 frames at 30000/1001, AAC audio (language fra, a title), mov_text subtitles,
    a container title and two chapters."""
    return make_clip(media_dir / "ntsc.mp4", audio=True, subtitles=True, chapters=True)


@pytest.fixture(scope="session")
def clip_2997_mkv(media_dir: Path) -> Path:
    """Like clip_2997 in Matroska, with SRT subtitles."""
    return make_clip(media_dir / "ntsc.mkv", audio=True, subtitles=True, chapters=True)


@pytest.fixture(scope="session")
def clip_vfr(media_dir: Path) -> Path:
    return make_vfr_clip(media_dir / "vfr.mp4")


@pytest.fixture(scope="session")
def clip_10bit(media_dir: Path) -> Path:
    """10-bit grey ramp, one code value per column (300..363), lossless: 8-bit reading would
    merge neighbouring columns."""
    return make_clip(
        media_dir / "ten.mp4",
        pix_fmt="yuv420p10le",
        frames=4,
        vf="format=yuv420p10le,geq=lum='300+X':cb=512:cr=512",
        extra=("-qp", "0"),
    )


def hdr_clip(path: Path, transfer: str) -> Path:
    """HEVC Main 10 HDR as phones write it (BT.2020, tagged hvc1 in MP4): 64x36, 5 frames."""
    return make_clip(path, size="64x36", frames=5, codec="libx265", pix_fmt="yuv420p10le",
                     vf=f"setparams=color_primaries=bt2020:color_trc={transfer}:colorspace=bt2020nc",
                     extra=("-tag:v", "hvc1", "-x265-params", "log-level=error"))  # fmt: skip


@pytest.fixture(scope="session")
def clip_hlg(media_dir: Path) -> Path:
    return hdr_clip(media_dir / "hlg.mp4", "arib-std-b67")


@pytest.fixture(scope="session")
def clip_pq(media_dir: Path) -> Path:
    return hdr_clip(media_dir / "pq.mp4", "smpte2084")


@pytest.fixture(scope="session")
def clip_fullrange(media_dir: Path) -> Path:
    return make_clip(media_dir / "yuvj.mp4", pix_fmt="yuvj420p", frames=6)


@pytest.fixture(scope="session")
def clip_bt709(media_dir: Path) -> Path:
    """Small but converted and tagged as BT.709 (so the matrix matters when reading)."""
    return make_clip(
        media_dir / "bt709.mp4",
        frames=6,
        vf="scale=out_color_matrix=bt709,setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709",
    )


@pytest.fixture(scope="session")
def clip_rotated(media_dir: Path) -> Path:
    """Display matrix rotation of 90 degrees (as phones write), pixels stored 64x48."""
    base = make_clip(media_dir / "unrotated.mp4", frames=6)
    out = media_dir / "rotated.mp4"
    ffmpeg("-display_rotation:v", "90", "-i", base, "-c", "copy", out)
    return out


@pytest.fixture(scope="session")
def clip_odd(media_dir: Path) -> Path:
    return make_clip(media_dir / "odd.mp4", size="63x47", pix_fmt="yuv444p", frames=6)


@pytest.fixture(scope="session")
def clip_offset(media_dir: Path) -> Path:
    """Starts at 1.5 s (video and AAC audio), 15 frames."""
    return make_clip(media_dir / "offset.mp4", frames=15, audio=True, extra=("-output_ts_offset", "1.5"))


@pytest.fixture(scope="session")
def clip_sar(media_dir: Path) -> Path:
    return make_clip(media_dir / "sar.mp4", frames=4, vf="setsar=4/3")


@pytest.fixture(scope="session")
def clip_long_mp4(media_dir: Path) -> Path:
    """30 frames, one keyframe, moov first: cutting it leaves a readable but short file."""
    return make_clip(media_dir / "long.mp4", frames=30, extra=("-g", "30", "-movflags", "+faststart"))


@pytest.fixture(scope="session")
def clip_long_mkv(media_dir: Path) -> Path:
    return make_clip(media_dir / "long.mkv", frames=30, extra=("-g", "30"))


@pytest.fixture(scope="session")
def png_sequence(media_dir: Path) -> Path:
    """Folder of 8 PNGs numbered from 0 (frame_0000.png ...)."""
    folder = media_dir / "seq"
    folder.mkdir()
    src = make_clip(media_dir / "seqsrc.mp4", frames=8)
    ffmpeg("-i", src, "-start_number", "0", folder / "frame_%04d.png")
    return folder


@pytest.fixture(scope="session")
def clip_interlaced(media_dir: Path) -> Path:
    """Interlaced H.264 (top field first, flagged as such): each frame weaves two moving fields."""
    return make_clip(
        media_dir / "interlaced.mp4",
        rate="25",
        frames=10,
        vf="tinterlace=mode=interleave_top",
        extra=("-flags", "+ildct+ilme", "-x264-params", "tff=1"),
    )
