#!/usr/bin/env bash
# The GPU check behind the README's performance table: one call of at most 560 s on an H100/H200.
#
#   OUT=results bash benchmarks/gpu_check.sh
#
# Writes ${OUT}/gpu_check.jsonl (one JSON object per step: its bench JSON and `step_wall_s`, or its
# failure with the line it printed), ${OUT}/gpu_check.log and ${OUT}/gpu_table.md (benchmarks/gpu_table.py:
# the README's `| what | how | result |` rows, to paste over its "not measured" ones, then a row per step).
# A failing step is recorded and the rest still run, most wanted first, so a lease cut short still reports.
# Steps, with the full CogVideoX1.5-5B architecture and random weights (`--model full-random`), bf16,
# 33 frames of 1280x720 output, one window, unless said: eager; `dove upscale` of a 10 s clip to 480p end
# to end with GPU busy sampled by nvidia-smi; --compile transformer (the first call's seconds are the
# compilation); the 24 GiB plan of 33 frames of 1920x1080 output (--vram 24: its tiles and VAE tiles),
# peak vs the planner's estimate; --attention flash / cudnn; --quantize fp8; --offload model;
# --quantize int8 / nf4 (when bitsandbytes is there).
# Each bench reports per-stage device seconds, peak GPU memory and the planner's estimate of it.
#
# Time: the whole script stays within BUDGET_S seconds (default 560, for a 590 s call): each step has a
# time limit (`timeout -k 10`: a step that ignores SIGTERM is killed 10 s later), and a step whose limit
# no longer fits what is left is not started ("skipped: no time left"; a shorter one after it still may be).
#
# On a machine without PyAV/diffusers (the lent H200 has torch, accelerate, peft, typer, rich), bring
# wheels for its Python (3.12) into .whl/ first (about 45 MB: av 18.1.0, diffusers, importlib_metadata,
# torchao; bitsandbytes, about 100 MB, does not fit the 64 MiB the device tool carries, so the int8/nf4
# steps record a clear failure there); this script installs them to /tmp/site:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl av==18.1.0 diffusers importlib_metadata torchao
# Through the device tool: command `bash benchmarks/gpu_check.sh` with OUT set by the tool, carry [".whl"],
# timeout_s 590: the steps write as they finish, so a run cut at the limit still brings back what it did.
#
# REHEARSE=1 runs every step the same way on the CPU with the tiny model on small frames (the tiled step
# with --tile 48 --vae-tiling, as --vram needs a GPU), with no time limits: a check of this script itself
# (tests/test_gpu_check.py runs it), so that a scarce GPU lease is not spent on a typo.
#
# It takes no arguments: --help (-h) prints this text. It exits 1 when no step succeeded (each failed or was skipped).
set -uo pipefail
case "${1-}" in
  "") ;;
  -h | --help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) echo "gpu_check.sh: unknown argument '$1': it takes none (settings are OUT= and REHEARSE=; see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
OUT=${OUT:-.}
mkdir -p "$OUT"
log="$OUT/gpu_check.log" jsonl="$OUT/gpu_check.jsonl"
: >"$jsonl" && : >"$log"
if [[ ${REHEARSE:-0} == 1 ]]; then  # the tiny model, a 9-frame 64x64 window, a 2 s 16x24 clip; no limits
  model=tiny random=tiny device=cpu size=(--frames 9 --height 64 --width 64) e2e=(32 16 24) slow=1000
  tiled=(--frames 9 --height 64 --width 64 --tile 48 --chunk auto --vae-tiling)
else  # the 5B architecture, one 33-frame window of 720p, 10 s of 214x120
  model=full-random random=full device=cuda size=(--frames 33 --height 720 --width 1280) e2e=(160 120 214) slow=1
  tiled=(--frames 33 --height 1080 --width 1920 --vram 24 --tile auto --chunk auto)
fi
budget=$((${BUDGET_S:-560} * slow)) reserve=15  # reserve: writing the table at the end
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

room() {  # room SECONDS: whether a step of that limit (and its 10 s to be killed) fits what is left
  left=$((budget - SECONDS - reserve)) need=$(($1 * slow + 10))
  ((left < 0)) && left=0
  ((need <= left))
}
fits() {  # fits NAME SECONDS: room for it, or a "skipped" row for it
  room "$2" && return 0
  echo "== $1: skipped, no time left (${left} s left, needs $need s)" | tee -a "$log"
  printf '{"step": "%s", "error": "skipped: no time left (%d s of the %d s budget left, it needs %d s)"}\n' \
    "$1" "$left" "$budget" "$need" >>"$jsonl"
  return 1
}
limited() {  # limited SECONDS COMMAND...: run with that time limit, killed 10 s after it if it hangs on
  local limit=$1
  shift
  timeout -k 10 $((limit * slow)) "$@"
}

if compgen -G ".whl/*.whl" >/dev/null; then
  limited 90 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
dove() { python3 -m dove_cli.cli "$@"; }
limited 15 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>>"$log"
cat "$OUT/gpu.txt"
room 45 && limited 45 python3 -m dove_cli.cli info 2>&1 | tee -a "$log"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record its JSON (and wall time) or its failure
  local name=$1 limit=$2
  shift 2
  fits "$name" "$limit" || return 0
  echo "== $name" | tee -a "$log"
  local t0=$SECONDS out rc=0
  out=$(limited "$limit" "$@" 2>"$tmp/stderr") || rc=$?
  cat "$tmp/stderr" >>"$log"
  python3 - "$name" "$rc" "$((SECONDS - t0))" "$out" "$tmp/stderr" >>"$jsonl" <<'PY'
import json, sys
name, rc, seconds, out, stderr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
lines = [line for line in open(stderr).read().splitlines() if line.strip()]
if rc == 0:
    try:
        print(json.dumps({"step": name, "step_wall_s": seconds, **json.loads(out)}))
        sys.exit()
    except ValueError:
        pass
why = "timed out" if rc in (124, 137) else f"exit {rc}"
print(json.dumps({"step": name, "error": f"{why} after {seconds} s", "said": lines[-1] if lines else ""}))
PY
  tail -n 1 "$jsonl"
}

bench=(bench --model "$model" --device "$device" --dtype bf16 --json)
one=("${bench[@]}" "${size[@]}" --tile 0 --chunk 0)  # one whole-frame window of 33 x 720p
# Most wanted first: eager (per-stage times, peak vs estimate), the end-to-end GPU busy, the compile cost.
step eager 90 dove "${one[@]}" --warmup 1 --repeat 2
# End to end: 10 s at 16 fps (160 frames) of 214x120 to 856x480, the default plan, GPU busy sampled by
# nvidia-smi. (480p input, 4K output, would take minutes of a lease that has 15 in all.)
if fits e2e-10s-to-480p 110; then
  echo "== e2e-10s-to-480p" | tee -a "$log"
  clip=$tmp/clip.mp4
  limited 20 python3 -c "from pathlib import Path; from dove_cli.bench import synthetic_clip; synthetic_clip(Path('$clip'), ${e2e[0]}, ${e2e[1]}, ${e2e[2]})" 2>>"$log"
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 >"$tmp/busy.txt" 2>>"$log" &
  smi=$!
  t0=$SECONDS
  limited 80 python3 -m dove_cli.cli upscale "$clip" -o "$tmp/x4.mp4" --model "$model" --device "$device" \
    --overwrite -q --manifest "$OUT/e2e_manifest.json" 2>"$tmp/stderr"
  rc=$?
  kill $smi 2>/dev/null
  cat "$tmp/stderr" >>"$log"
  python3 - "$rc" "$((SECONDS - t0))" "$OUT/e2e_manifest.json" "$tmp/busy.txt" "$tmp/stderr" >>"$jsonl" <<'PY'
import json, sys
busy = [int(x) for x in open(sys.argv[4]).read().split() if x.strip().isdigit()]
said = [line for line in open(sys.argv[5]).read().splitlines() if line.strip()]
doc = {"step": "e2e-10s-to-480p", "exit": int(sys.argv[1]), "wall_s": int(sys.argv[2]),
       "gpu_busy_mean_pct": round(sum(busy) / len(busy), 1) if busy else None, "busy_samples": len(busy)}
if doc["exit"]:
    doc["said"] = said[-1] if said else ""
try:
    result = json.load(open(sys.argv[3]))["result"]
    doc.update(frames=result["frames"], seconds=result["seconds"], device_stages=result["stages_device_seconds"])
except (OSError, KeyError, TypeError, ValueError) as e:
    if not doc["exit"]:
        doc["error"] = f"exit 0 after {doc['wall_s']} s without a result in its manifest ({type(e).__name__}: {e})"
print(json.dumps(doc))
PY
  tail -n 1 "$jsonl"
fi
step compile 150 dove "${one[@]}" --warmup 1 --repeat 2 --compile transformer
# The 24 GiB card's plan of 33 frames of 1080p output (2 tiles of 1440 px + VAE tiles): peak vs estimate.
step tiled-24gib-1080p 80 dove "${bench[@]}" "${tiled[@]}" --warmup 0 --repeat 1
for kernel in flash cudnn; do  # auto is torch's pick; these two are the candidates on Hopper
  step "attention-$kernel" 45 dove "${one[@]}" --warmup 1 --repeat 1 --attention "$kernel"
done
step quantize-fp8 60 dove "${one[@]}" --warmup 1 --repeat 1 --quantize fp8
step offload-model 75 dove "${one[@]}" --warmup 0 --repeat 1 --offload model
# bitsandbytes quantises while loading: save the random model once (11 GB) and load it back.
if ! python3 -c "import bitsandbytes" 2>/dev/null; then
  echo '{"step": "quantize-int8, nf4", "error": "skipped: bitsandbytes is not installed"}' | tee -a "$jsonl"
elif fits "quantize-int8, nf4" $((90 + 60)); then
  limited 90 python3 -c "import torch; from pathlib import Path; from dove_cli.engine import build_random, save_pretrained
save_pretrained(build_random('$random', device='$device', dtype=torch.bfloat16), Path('$tmp/saved'))" 2>>"$log"
  for q in int8 nf4; do
    step "quantize-$q" 60 dove "${one[@]/#$model/$tmp/saved}" --warmup 0 --repeat 1 --quantize "$q"
  done
fi
echo "results: $jsonl"
python3 benchmarks/gpu_table.py "$jsonl" | tee "$OUT/gpu_table.md"
# A caller (the device tool, CI) sees a check where nothing ran: exit 1 when no step succeeded.
python3 -c 'import json, sys; sys.exit(not any("error" not in s and not s.get("exit") for s in map(json.loads, open(sys.argv[1]))))' "$jsonl" \
  || { echo "gpu_check.sh: no step succeeded (see $log)" >&2; exit 1; }
