#!/usr/bin/env bash
# The GPU check behind the README's performance table: one call, about 8 minutes on an H100/H200.
#
#   OUT=results bash benchmarks/gpu_check.sh
#
# Writes ${OUT}/gpu_check.jsonl (one JSON object per step, a failure with the line it printed),
# ${OUT}/gpu_check.log and ${OUT}/gpu_table.md (the README's rows, benchmarks/gpu_table.py); a failing
# step is recorded and the rest still run, most wanted first, so a lease cut short still reports.
# Steps, with the full CogVideoX1.5-5B architecture and random weights (`--model full-random`), bf16,
# 33 frames of 1280x720 output, one window: eager; `dove upscale` of a 10 s clip to 480p end to end
# with GPU busy sampled by nvidia-smi; --compile transformer; --attention flash / cudnn; --quantize fp8;
# --offload model; --quantize int8 / nf4 (when bitsandbytes is there).
# Each bench reports per-stage device seconds, peak GPU memory and the planner's estimate of it.
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
# REHEARSE=1 runs every step the same way on the CPU with the tiny model on small frames: a check of
# this script itself (tests/test_gpu_check.py runs it), so that a scarce GPU lease is not spent on a typo.
#
# It takes no arguments: --help (-h) prints this text. It exits 1 when every step failed.
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
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
dove() { python3 -m dove_cli.cli "$@"; }
if [[ ${REHEARSE:-0} == 1 ]]; then  # the tiny model, a 9-frame 64x64 window, a 2 s 16x24 clip; no limits
  model=tiny random=tiny device=cpu size=(--frames 9 --height 64 --width 64) e2e=(32 16 24) slow=1000
else  # the 5B architecture, one 33-frame window of 720p, 10 s of 214x120
  model=full-random random=full device=cuda size=(--frames 33 --height 720 --width 1280) e2e=(160 120 214) slow=1
fi
tmp=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>>"$log"
cat "$OUT/gpu.txt"
dove info 2>&1 | tee -a "$log"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record its JSON or its failure
  local name=$1 limit=$2
  shift 2
  echo "== $name" | tee -a "$log"
  local t0=$SECONDS out rc=0
  out=$(timeout $((limit * slow)) "$@" 2>"$tmp/stderr") || rc=$?
  cat "$tmp/stderr" >>"$log"
  python3 - "$name" "$rc" "$((SECONDS - t0))" "$out" "$tmp/stderr" >>"$jsonl" <<'PY'
import json, sys
name, rc, seconds, out, stderr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
lines = [line for line in open(stderr).read().splitlines() if line.strip()]
if rc == 0:
    try:
        print(json.dumps({"step": name, **json.loads(out)}))
        sys.exit()
    except ValueError:
        pass
why = "timed out" if rc == 124 else f"exit {rc}"
print(json.dumps({"step": name, "error": f"{why} after {seconds} s", "said": lines[-1] if lines else ""}))
PY
  tail -n 1 "$jsonl"
}

bench=(bench --model "$model" "${size[@]}" --device "$device" --dtype bf16 --tile 0 --chunk 0 --json)
step eager 100 dove "${bench[@]}" --warmup 1 --repeat 2
# End to end: 10 s at 16 fps (160 frames) of 214x120 to 856x480, the default plan, GPU busy sampled by
# nvidia-smi. (480p input, 4K output, would take minutes of a lease that has 15 in all.)
clip=$tmp/clip.mp4
python3 -c "from pathlib import Path; from dove_cli.bench import synthetic_clip; synthetic_clip(Path('$clip'), ${e2e[0]}, ${e2e[1]}, ${e2e[2]})"
nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 >"$tmp/busy.txt" 2>>"$log" &
smi=$!
t0=$SECONDS
timeout $((120 * slow)) python3 -m dove_cli.cli upscale "$clip" -o "$tmp/x4.mp4" --model "$model" --device "$device" \
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
except (OSError, KeyError, ValueError):
    pass
print(json.dumps(doc))
PY
tail -n 1 "$jsonl"

step compile 200 dove "${bench[@]}" --warmup 1 --repeat 2 --compile transformer
for kernel in flash cudnn; do  # auto is torch's pick; these two are the candidates on Hopper
  step "attention-$kernel" 60 dove "${bench[@]}" --warmup 1 --repeat 2 --attention "$kernel"
done

step quantize-fp8 90 dove "${bench[@]}" --warmup 1 --repeat 1 --quantize fp8
step offload-model 90 dove "${bench[@]}" --warmup 0 --repeat 1 --offload model
# bitsandbytes quantises while loading: save the random model once (11 GB) and load it back.
if python3 -c "import bitsandbytes" 2>/dev/null; then
  timeout $((120 * slow)) python3 -c "import torch; from pathlib import Path; from dove_cli.engine import build_random, save_pretrained
save_pretrained(build_random('$random', device='$device', dtype=torch.bfloat16), Path('$tmp/saved'))" 2>>"$log"
  for q in int8 nf4; do
    step "quantize-$q" 80 dove "${bench[@]/#$model/$tmp/saved}" --warmup 0 --repeat 1 --quantize "$q"
  done
else
  echo '{"step": "quantize-int8, nf4", "error": "skipped: bitsandbytes is not installed"}' | tee -a "$jsonl"
fi
rm -rf "$tmp"
echo "results: $jsonl"
python3 benchmarks/gpu_table.py "$jsonl" | tee "$OUT/gpu_table.md"
# A caller (the device tool, CI) sees a check where nothing ran: exit 1 when no step succeeded.
python3 -c 'import json, sys; sys.exit(not any("error" not in s and not s.get("exit") for s in map(json.loads, open(sys.argv[1]))))' "$jsonl" \
  || { echo "gpu_check.sh: every step failed (see $log)" >&2; exit 1; }
