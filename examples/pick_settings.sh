#!/usr/bin/env bash
# Try DOVE settings on 4 seconds of a long video before committing to the whole run: two previews,
# each side by side with the input (512 px tiles; the whole frame in each window), then the plan of
# the full video (windows, memory and time).
#
# Usage: examples/pick_settings.sh IN [START] [DOVE OPTIONS...]   (START like 1:20; default 0)
# The previews go into the folder $OUT (default: IN's name + _settings, in the current folder);
# the options are given to every dove command (e.g. --scale 2 --device cpu).
#
# Without the DOVE weights, give a model that needs none:
#   examples/pick_settings.sh examples/data/demo_316x178.mp4 --model bilinear  # a plain upscale: under a minute
#   examples/pick_settings.sh examples/data/demo_316x178.mp4 --model tiny      # the real code path on random
#       weights: about 10 minutes and 6 GB of memory on a 2-core CPU
set -euo pipefail
in=${1:?usage: $0 IN [START] [DOVE OPTIONS...]}
shift
start=0
if [[ $# -gt 0 && $1 != -* ]]; then start=$1; shift; fi
name=$(basename "${in%.*}")
out=${OUT:-${name}_settings}
mkdir -p "$out"
dove upscale "$in" -o "$out/preview_tile512.mkv" --preview "$start+4s" --tile 512 --compare --overwrite "$@"
dove upscale "$in" -o "$out/preview_whole.mkv" --preview "$start+4s" --tile 0 --compare --overwrite "$@"
dove upscale "$in" -o "$out/${name}_x4.mp4" --dry-run "$@"  # the full video: nothing is written
echo "previews: $out/preview_tile512.mkv $out/preview_whole.mkv"
