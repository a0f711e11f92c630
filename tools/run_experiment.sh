#!/usr/bin/env bash
# The four-way comparison of docs/RESULTS.md: {segnet, enhanced} x {ce, bce}, one budget, CamVid val.
# All four run at once with one thread each (the 2-core machine is shared; running them together
# keeps their conditions equal). Re-running the script resumes any run that was interrupted.
#   tools/run_experiment.sh [DATA] [RUNS_DIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/camvid}
RUNS=${2:-runs/exp}
EPOCHS=${3:-10}
mkdir -p "$RUNS"
for arch in enhanced segnet; do
  for loss in ce bce; do
    name="${arch}_${loss}"
    nohup nice -n 5 .venv/bin/toolkit train --data "$DATA" --arch "$arch" --loss "$loss" --width 16 \
      --size 180x240 --crop 176x240 --epochs "$EPOCHS" --batch-size 8 --seed 0 --threads 1 \
      --channels-last --no-progress --resume --out "$RUNS/$name" > "$RUNS/$name.log" 2>&1 &
    echo "started $name (pid $!)"
  done
done
wait
