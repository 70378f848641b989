#!/usr/bin/env bash
# Real-size benchmark for the README's performance table (run on a CUDA machine):
# the full CogVideoX1.5-5B transformer + VAE with random weights, bf16, 33 frames, 720p output.
# Writes one JSON line per configuration to ${OUT:-.}/gpu_bench.jsonl.
set -euo pipefail
out=${OUT:-.}/gpu_bench.jsonl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "${out%.jsonl}.gpu.txt"
for tile in 0 512; do
  dove bench --model full-random --frames 33 --height 720 --width 1280 --dtype bf16 \
    --tile "$tile" --chunk 0 --warmup 1 --repeat 2 --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))' >> "$out"
done
cat "$out"
