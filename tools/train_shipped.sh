#!/usr/bin/env bash
# The embedded default model: the best four-way run (enhanced + bce, 10 epochs) trained on for more
# epochs from its last weights, as two DDP processes (gloo, one thread each: on this 2-core CPU two
# single-thread processes train faster than one two-thread process). Resumable: re-run to continue.
#   tools/train_shipped.sh [DATA] [INIT] [OUT] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/camvid}
INIT=${2:-runs/exp/enhanced_bce/last.safetensors}
OUT=${3:-runs/ship}
EPOCHS=${4:-12}
nice -n 5 .venv/bin/torchrun --nproc_per_node=2 --master_port 29533 .venv/bin/toolkit train --data "$DATA" \
  --arch enhanced --loss bce --width 16 --size 180x240 --crop 176x240 --epochs "$EPOCHS" --batch-size 4 \
  --lr 0.05 --warmup-epochs 0.5 --seed 1 --threads 1 --channels-last --no-progress --resume \
  --init "$INIT" --out "$OUT"
