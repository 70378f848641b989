#!/usr/bin/env bash
# The GPU check behind the README's performance table: one call, under 8 minutes on an H100/H200.
#
#   OUT=results bash benchmarks/gpu_check.sh
#
# Writes ${OUT}/gpu_check.jsonl (one JSON object per step) and ${OUT}/gpu_check.log; a failing step
# is recorded and the rest still run. Steps, all with the full CogVideoX1.5-5B architecture and
# random weights (`--model full-random`), bf16, 33 frames of 1280x720 output, one window:
#   eager; --compile transformer; --attention flash / cudnn; --offload model; --quantize int8 / nf4 / fp8 (when the library
#   is there); then `dove upscale` of a 10 s 480p clip end to end with GPU busy sampled by nvidia-smi.
# Each bench reports per-stage device seconds, peak GPU memory and the planner's estimate of it.
#
# On a machine without PyAV/diffusers (the lent H200 has torch, accelerate, peft, typer, rich), bring
# wheels for its Python (3.12) into .whl/ first; this script installs them to /tmp/site:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl av diffusers imageio-ffmpeg bitsandbytes torchao
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.}
mkdir -p "$OUT"
log="$OUT/gpu_check.log" jsonl="$OUT/gpu_check.jsonl"
: >"$jsonl"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
dove() { python3 -m dove_cli.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
dove info 2>&1 | tee -a "$log"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record its JSON (or its failure)
  local name=$1 limit=$2
  shift 2
  echo "== $name" | tee -a "$log"
  local t0=$SECONDS out
  if out=$(timeout "$limit" "$@" 2>>"$log"); then
    python3 -c 'import json,sys; d=json.loads(sys.argv[2]); d["step"]=sys.argv[1]; print(json.dumps(d))' \
      "$name" "$out" >>"$jsonl" || echo "{\"step\": \"$name\", \"error\": \"no JSON\"}" >>"$jsonl"
  else
    echo "{\"step\": \"$name\", \"error\": \"exit $? after $((SECONDS - t0)) s\"}" >>"$jsonl"
  fi
  tail -n 1 "$jsonl"
}

bench=(bench --model full-random --frames 33 --height 720 --width 1280 --dtype bf16 --tile 0 --chunk 0 --json)
step eager 100 dove "${bench[@]}" --warmup 1 --repeat 2
step compile 200 dove "${bench[@]}" --warmup 1 --repeat 2 --compile transformer
for kernel in flash cudnn; do  # auto is torch's pick; these two are the candidates on Hopper
  step "attention-$kernel" 60 dove "${bench[@]}" --warmup 1 --repeat 2 --attention "$kernel"
done

# End to end: 10 s of 854x480 at 16 fps (160 frames), the default plan, GPU busy sampled by nvidia-smi.
clip=/tmp/gpu_check_480p.mp4
python3 -c "from pathlib import Path; from dove_cli.bench import synthetic_clip; synthetic_clip(Path('$clip'), 160, 480, 854)"
nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 >/tmp/busy.txt &
smi=$!
t0=$SECONDS
timeout 150 python3 -m dove_cli.cli upscale "$clip" -o /tmp/gpu_check_x4.mp4 --model full-random --overwrite -q \
  --manifest "$OUT/e2e_manifest.json" 2>>"$log"
rc=$?
kill $smi
python3 - "$rc" "$((SECONDS - t0))" "$OUT/e2e_manifest.json" >>"$jsonl" <<'PY'
import json, sys
busy = [int(x) for x in open("/tmp/busy.txt").read().split() if x.strip().isdigit()]
doc = {"step": "e2e-480p-10s", "exit": int(sys.argv[1]), "wall_s": int(sys.argv[2]),
       "gpu_busy_mean_pct": round(sum(busy) / len(busy), 1) if busy else None, "busy_samples": len(busy)}
try:
    result = json.load(open(sys.argv[3]))["result"]
    doc.update(frames=result["frames"], seconds=result["seconds"], device_stages=result["stages_device_seconds"])
except (OSError, KeyError, ValueError):
    pass
print(json.dumps(doc))
PY
tail -n 1 "$jsonl"

step offload-model 90 dove "${bench[@]}" --warmup 0 --repeat 1 --offload model
step quantize-fp8 90 dove "${bench[@]}" --warmup 1 --repeat 1 --quantize fp8
# bitsandbytes quantises while loading: save the random model once and load it back.
timeout 120 python3 -c "import torch; from pathlib import Path; from dove_cli.engine import build_random, save_pretrained
save_pretrained(build_random('full', device='cuda', dtype=torch.bfloat16), Path('/tmp/full-random'))" 2>>"$log"
for q in int8 nf4; do
  step "quantize-$q" 80 dove "${bench[@]/full-random//tmp/full-random}" --warmup 0 --repeat 1 --quantize "$q"
done
echo "results: $jsonl"
