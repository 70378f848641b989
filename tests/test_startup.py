"""Start-up cost: a run that needs no diffusers model must not import diffusers (2.6 s on a 2-core
CPU, most of a short clip's wall time; benchmarks/host_pipeline.py)."""

from __future__ import annotations

import subprocess
import sys

from conftest import demo_clip


def test_a_bilinear_run_with_a_manifest_does_not_import_diffusers(tmp_path):
    code = (
        "import sys\n"
        "from dove_cli.cli import main\n"
        "sys.argv = ['dove', 'upscale', sys.argv[1], '-o', sys.argv[2], '--model', 'bilinear', '--preview', '0+0.5s',"
        " '--manifest', sys.argv[3], '-q']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('diffusers' in sys.modules)\n"
    )
    out, manifest = tmp_path / "out.mp4", tmp_path / "run.json"
    r = subprocess.run([sys.executable, "-c", code, str(demo_clip("001.mp4")), str(out), str(manifest)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert out.exists() and '"diffusers": "' in manifest.read_text()  # the version is still recorded
    assert r.stdout.strip().splitlines()[-1] == "False"
