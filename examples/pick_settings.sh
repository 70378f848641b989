#!/usr/bin/env bash
# Try DOVE settings on 4 seconds of a long video before committing to the whole run.
# Usage: examples/pick_settings.sh in.mp4 [START]   (START like 1:20; default 0)
set -euo pipefail
in=$1; start=${2:-0}
dove upscale "$in" -o preview_tile512.mkv --preview "$start+4s" --tile 512 --compare --overwrite
dove upscale "$in" -o preview_whole.mkv --preview "$start+4s" --tile 0 --compare --overwrite
dove upscale "$in" -o out.mp4 --dry-run        # windows, memory and time for the full video
